import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "fallback/index": "src/fallback/index.ts",
    "degradation/index": "src/degradation/index.ts",
    "policies/index": "src/policies/index.ts",
    "ky/index": "src/ky/index.ts",
    "cloudflare/index": "src/cloudflare/index.ts",
    "testing/index": "src/testing/index.ts",
    "testing/clock": "src/testing/clock.ts",
  },
  format: ["esm"],
  target: "es2022",
  platform: "neutral",
  dts: true,
  clean: true,
  splitting: true,
  treeshake: true,
  external: ["ky", "msw", "zod"],
});
