import { brotliCompressSync, gzipSync } from "node:zlib";
import { build } from "esbuild";

export interface BundleRow {
  name: string;
  minBytes: number;
  gzipBytes: number;
  brotliBytes: number;
  budget?: number;
}

const cases: Array<{ name: string; code: string; budget?: number }> = [
  { name: "retry alone (./policies)", code: 'export { retry } from "./src/policies/index.ts";', budget: 1536 },
  { name: "breaker alone (./policies)", code: 'export { CircuitBreaker } from "./src/policies/index.ts";' },
  { name: "root: createResilience", code: 'export { createResilience } from "./src/index.ts";', budget: 8_192 },
  {
    name: "root + ./fallback",
    code: 'export { createResilience } from "./src/index.ts"; export { fallback } from "./src/fallback/index.ts";',
  },
  {
    name: "root + ./degradation",
    code: 'export { createResilience } from "./src/index.ts"; export { degradation } from "./src/degradation/index.ts";',
  },
  {
    name: "everything: root + ./fallback + ./degradation",
    code: 'export { createResilience, getResilienceInfo } from "./src/index.ts"; export { fallback } from "./src/fallback/index.ts"; export { degradation } from "./src/degradation/index.ts";',
    budget: 16_384,
  },
  { name: "./ky (without ky)", code: 'export * from "./src/ky/index.ts";' },
  { name: "./cloudflare", code: 'export * from "./src/cloudflare/index.ts";' },
  { name: "ky (for comparison)", code: 'export { default } from "ky";' },
  {
    name: "cockatiel retry+breaker+fallback+timeout+bulkhead",
    code: 'export { retry, circuitBreaker, fallback, timeout, bulkhead, wrap, handleAll, ConsecutiveBreaker, ExponentialBackoff } from "cockatiel";',
  },
  { name: "p-retry (for comparison)", code: 'export { default } from "p-retry";' },
];

/** esbuild, minified, browser platform; then gzip and brotli. */
export async function measureBundles(): Promise<BundleRow[]> {
  const rows: BundleRow[] = [];
  for (const c of cases) {
    const result = await build({
      stdin: { contents: c.code, resolveDir: process.cwd(), loader: "ts" },
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      write: false,
      external: c.name.startsWith("./ky") ? ["ky"] : [],
      // The browser build, as a page's bundler picks it (see src/core/browser-build.ts).
      define: { "globalThis.__RESILIENT_FETCH_BROWSER__": "true" },
    });
    const code = (result.outputFiles[0] as { contents: Uint8Array }).contents;
    rows.push({
      name: c.name,
      minBytes: code.length,
      gzipBytes: gzipSync(code).length,
      brotliBytes: brotliCompressSync(code).length,
      ...(c.budget ? { budget: c.budget } : {}),
    });
  }
  return rows;
}
