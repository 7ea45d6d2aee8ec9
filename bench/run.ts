/**
 * `npm run bench` (`--quick` for under a minute): every figure in one run, on
 * this machine, as ratios where times are noisy. Writes bench/results/
 * results.json, results.md and SVG charts, and prints the Markdown.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";
import { measureBundles } from "./bundle.ts";
import { runChild } from "./child.ts";
import { measureEdge } from "./edge.ts";
import { measureOverhead } from "./overhead.ts";
import { barChart, fmt, table } from "./report.ts";
import { measurePartial, measureStorm, measureThroughput } from "./storm.ts";

const quick = process.argv.includes("--quick");
const out = resolve(import.meta.dirname, "results");
mkdirSync(out, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);
const started = Date.now();

const versions = Object.fromEntries(
  ["ky", "cockatiel", "opossum", "p-retry", "ofetch"].map((p) => [
    p,
    JSON.parse(readFileSync(resolve("node_modules", p, "package.json"), "utf8")).version,
  ]),
);
const machine = {
  node: process.version,
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  quick,
};

log("1/7 success-path overhead (each variant in its own process, interleaved rounds)");
const overhead = await measureOverhead(quick ? 3 : 5, quick ? 60_000 : 200_000);
log("2/7 loopback throughput");
const throughput = await measureThroughput(quick ? 1 : 3, quick ? 2 : 3);
log("3/7 retry storm (open loop, 200 calls/s)");
const storm = await measureStorm(
  quick ? { healthy: 300, outage: 1_500, after: 2_500 } : { healthy: 1_000, outage: 5_000, after: 4_000 },
);
log("4/7 partial failure (30% random 503s)");
const partial = await measurePartial(quick ? 400 : 1_000);
log("5/7 bundle sizes");
const bundles = await measureBundles();
log("6/7 memory and scale");
const memory = await runChild<{
  calls: number;
  hosts: number;
  heapMb: number[];
  breakers: number;
  nsPerCallByHosts: Record<string, number>;
}>("./memory-child.ts", quick ? ["200000", "20000"] : ["1000000", "100000"], ["--expose-gc"]);
log("7/7 edge store cost (fake KV, in-memory Durable Object)");
const edge = await measureEdge(10_000);

const results = {
  machine,
  versions,
  overhead,
  throughput,
  storm,
  partial,
  bundles,
  memory,
  edge,
  seconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(resolve(out, "results.json"), `${JSON.stringify(results, null, 2)}\n`);

const md = [
  `# Benchmarks`,
  ``,
  `Node ${machine.node}, ${machine.cpus}, ${machine.memoryGiB} GiB${quick ? ", --quick" : ""}; ${Object.entries(
    versions,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}. Medians over interleaved rounds; ranges in brackets.`,
  ``,
  `## Success-path overhead (stub fetch, body not read)`,
  table(
    ["variant", "added per call", "range"],
    overhead.map((r) => [
      r.variant,
      `${fmt(r.addedNs / 1000)} µs`,
      `${fmt(r.minNs / 1000)} – ${fmt(r.maxNs / 1000)} µs`,
    ]),
  ),
  ``,
  `## Loopback throughput (concurrency 50)`,
  table(
    ["variant", "req/s", "× bare fetch"],
    throughput.map((r) => [r.variant, Math.round(r.reqPerSec), fmt(r.ratioToBare)]),
  ),
  ``,
  `## Retry storm (200 calls/s; healthy, then 503s, then healthy; breakers open 2 s)`,
  table(
    [
      "variant",
      "amplification",
      "recovery burst × offered",
      "success",
      "outage calls served",
      "first success after recovery",
      "p99",
    ],
    storm.map((r) => [
      r.variant,
      fmt(r.amplification),
      fmt(r.recoveryBurst),
      `${fmt(r.successPct)}%`,
      `${fmt(r.outageSuccessPct)}%`,
      r.firstSuccessMs === null ? "none" : `${r.firstSuccessMs} ms`,
      `${r.p99Ms} ms`,
    ]),
  ),
  ``,
  `## Partial failure (primary fails 30% at random; healthy alternate)`,
  table(
    ["variant", "success", "attempts per call"],
    partial.map((r) => [r.variant, `${fmt(r.successPct)}%`, fmt(r.attemptsPerCall)]),
  ),
  ``,
  `## Bundle size (esbuild, minified, browser)`,
  table(
    ["entry", "min", "gzip", "brotli", "budget (gzip)"],
    bundles.map((b) => [
      b.name,
      b.minBytes,
      b.gzipBytes,
      b.brotliBytes,
      b.budget ? `${b.budget} ${b.gzipBytes <= b.budget ? "met" : `missed by ${b.gzipBytes - b.budget} B`}` : "",
    ]),
  ),
  ``,
  `## Memory and scale (${memory.calls.toLocaleString("en")} calls over ${memory.hosts.toLocaleString("en")} hosts, one instance)`,
  `Heap after GC at each fifth: ${memory.heapMb.map((m) => `${fmt(m)} MB`).join(" → ")}; breakers held: ${memory.breakers}. Cost per call by distinct hosts: ${Object.entries(
    memory.nsPerCallByHosts,
  )
    .map(([k, v]) => `${k}: ${fmt(v / 1000)} µs`)
    .join(", ")}.`,
  ``,
  `## Edge store cost (20 isolates)`,
  table(
    ["store", "scenario", "calls", "KV reads / 10k", "KV writes / 10k", "object calls / 10k"],
    edge.map((r) => [r.store, r.scenario, r.calls, fmt(r.readsPer10k), fmt(r.writesPer10k), fmt(r.objectCallsPer10k)]),
  ),
  ``,
].join("\n");
writeFileSync(resolve(out, "results.md"), md);
writeFileSync(
  resolve(out, "overhead.svg"),
  barChart(
    "Success-path overhead added per call (µs)",
    overhead.map((r) => ({ label: r.variant, value: r.addedNs / 1000 })),
    "µs",
    2,
  ),
);
writeFileSync(
  resolve(out, "amplification.svg"),
  barChart(
    "Outage amplification: attempts per call during the outage",
    storm.map((r) => ({ label: r.variant, value: r.amplification })),
    "×",
    1.1,
  ),
);
console.log(md);
log(`wrote ${out}/results.{json,md}, overhead.svg, amplification.svg in ${results.seconds} s`);
