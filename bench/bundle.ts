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
  { name: "retry alone", code: 'export { retry } from "./src/index.ts";', budget: 1536 },
  { name: "breaker alone", code: 'export { CircuitBreaker } from "./src/index.ts";' },
  {
    name: "core: createResilience, every feature",
    code: 'export { createResilience, getResilienceInfo } from "./src/index.ts";',
    budget: 10_240,
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
