import { defineConfig, type Options } from "tsup";

const entry = {
  index: "src/index.ts",
  "fallback/index": "src/fallback/index.ts",
  "degradation/index": "src/degradation/index.ts",
  "policies/index": "src/policies/index.ts",
  "ky/index": "src/ky/index.ts",
  "cloudflare/index": "src/cloudflare/index.ts",
  "testing/index": "src/testing/index.ts",
  "testing/clock": "src/testing/clock.ts",
};

const common: Options = {
  entry,
  format: ["esm"],
  target: "es2022",
  platform: "neutral",
  splitting: true,
  treeshake: true,
  external: ["ky", "msw", "zod"],
};

/**
 * Two builds of the same source (see src/core/browser-build.ts): `dist` for
 * Node, Deno, Bun and workerd, and `dist/browser` (the `browser` export
 * condition) without what only runs outside browsers. Each folds the flag,
 * so neither carries the other's branch. One set of types serves both.
 */
export default defineConfig([
  {
    ...common,
    outDir: "dist",
    dts: true,
    clean: false,
    define: { "globalThis.__RESILIENT_FETCH_BROWSER__": "false" },
  },
  {
    ...common,
    outDir: "dist/browser",
    dts: false,
    clean: false,
    define: { "globalThis.__RESILIENT_FETCH_BROWSER__": "true" },
  },
]);
