/**
 * `npm run bench`: every figure in one run, on this machine, as ratios where
 * times are noisy. A full run writes docs/benchmarks/results-<date>-<commit>.json
 * and .md (committed: every figure quoted in the README and docs comes from one
 * of them) and the SVG charts; `--quick` (a few minutes, smaller samples)
 * writes bench/results/ (ignored by git: quick figures are not quoted).
 * `--out DIR` writes elsewhere.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { resolve } from "node:path";
import { measureBundles } from "./bundle.ts";
import { runChild } from "./child.ts";
import { benchCommit, git } from "./commit.ts";
import { measureEdge } from "./edge.ts";
import { type FlakyRow, flakyPolicies, flakyVariantNames, measureFlaky, measureOutage } from "./flaky.ts";
import { measureOverhead } from "./overhead.ts";
import { barChart, flakyMethod, flakyTable, fmt, table } from "./report.ts";
import { DEFAULT_SEED } from "./seeded.ts";
import { measurePartial, measureStorm, measureThroughput, STORM_BREAKER_TIMEOUT } from "./storm.ts";

const quick = process.argv.includes("--quick");
const outFlag = process.argv.indexOf("--out");
const date = new Date().toISOString().slice(0, 10);
const out =
  outFlag > 0 && process.argv[outFlag + 1]
    ? resolve(process.argv[outFlag + 1] as string)
    : resolve(import.meta.dirname, quick ? "results" : "../docs/benchmarks");
mkdirSync(out, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);
const started = Date.now();

const packageVersion = (p: string): string =>
  JSON.parse(readFileSync(resolve("node_modules", p, "package.json"), "utf8")).version;
const versions = Object.fromEntries(
  ["ky", "cockatiel", "opossum", "p-retry", "ofetch"].map((p) => [p, packageVersion(p)]),
);
const machine = {
  node: process.version,
  os: `${type()} ${release()}`,
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  /** 1-minute load average when the run started: other work on the machine shows here. */
  loadAverageAtStart: Number((loadavg()[0] ?? 0).toFixed(2)),
  // BENCH_COMMIT: the commit an exported tree (git archive, no .git) was taken from.
  commit: benchCommit(),
  /** Uncommitted changes in src/ or bench/ when the run started. */
  dirty: process.env.BENCH_COMMIT ? false : git("status", "--porcelain", "--", "src", "bench") !== "",
  quick,
  date: new Date().toISOString(),
};
// Date and commit: two full runs of one day stay apart.
const base = quick ? "results" : `results-${date}-${machine.commit}`;
const { name, version } = JSON.parse(readFileSync(resolve("package.json"), "utf8")) as {
  name: string;
  version: string;
};
const self = { name, version };

log("1/9 success-path overhead, body unread and read (each variant in its own process, interleaved rounds)");
const overhead = await measureOverhead(quick ? 3 : 5, quick ? 60_000 : 200_000);
log("2/9 loopback throughput");
const throughput = await measureThroughput(quick ? 1 : 3, quick ? 2 : 6);
log("3/9 retry storm (open loop, 200 calls/s)");
const storm = await measureStorm(
  quick ? { healthy: 300, outage: 1_500, after: 6_500 } : { healthy: 1_000, outage: 5_000, after: 8_000 },
);
// This library's variants get the large sample (the targets are about its
// defaults: at 30% one standard error over 10,000 calls is 0.16 points, over
// 1,000 it was 0.5); the peers a smaller one, on the first calls of the same draws.
const flakyCalls = quick ? { library: 120, peers: 120 } : { library: 10_000, peers: 2_000 };
const flakySeed = DEFAULT_SEED;
const ownVariants = flakyVariantNames.filter((n) => n.startsWith("resilient-fetch"));
const peerVariants = flakyVariantNames.filter((n) => !n.startsWith("resilient-fetch"));
const measureFlakyRow = async (rate: number): Promise<FlakyRow[]> => [
  ...(await measureFlaky(rate, flakyCalls.library, 4, ownVariants, flakySeed)),
  ...(await measureFlaky(rate, flakyCalls.peers, 4, peerVariants, flakySeed)),
];
log("4/9 10% random 503s");
const flaky10 = await measureFlakyRow(0.1);
log("5/9 30% random 503s");
const flaky30 = await measureFlakyRow(0.3);
log("6/9 full outage, one call at a time");
const outage = await measureOutage(quick ? 8 : 12);
log("7/9 partial failure with an alternate (30% random 503s)");
const partial = await measurePartial(quick ? 400 : 1_000);
log("8/9 bundle sizes");
const bundles = await measureBundles();
log("9/9 memory and scale, then edge store cost");
const memory = await runChild<{
  calls: number;
  hosts: number;
  heapMb: number[];
  breakers: number;
  nsPerCallByHosts: Record<string, number>;
}>("./memory-child.ts", quick ? ["200000", "20000"] : ["1000000", "100000"], ["--expose-gc"]);
const edge = await measureEdge(10_000);

const results = {
  library: self,
  machine,
  versions,
  policies: flakyPolicies,
  overhead,
  throughput,
  storm,
  flakySettings: { seed: flakySeed, calls: flakyCalls, clients: 4 },
  flaky10,
  flaky30,
  outage,
  partial,
  bundles,
  memory,
  edge,
  seconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(resolve(out, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
// The repository's formatter owns the committed layout (short arrays on one line).
try {
  execFileSync("npx", ["biome", "format", "--write", resolve(out, `${base}.json`)], { stdio: "ignore" });
} catch {
  log("biome could not format the JSON (kept as written)");
}

const kib = (bytes: number) => `${fmt(bytes / 1024)} KiB`;
const flakyHow = [
  flakyMethod(flakySeed),
  `This library's variants make ${flakyCalls.library.toLocaleString("en")} calls, the peers ${flakyCalls.peers.toLocaleString("en")} (the first calls of the same draws).`,
].join("\n");
const overheadRows = (mode: "unread" | "read") =>
  overhead
    .filter((r) => r.mode === mode)
    .map((r) => [
      r.variant,
      `${fmt(r.addedNs / 1000)} µs`,
      `${fmt(r.minNs / 1000)} – ${fmt(r.maxNs / 1000)} µs`,
      `${fmt(r.cpuAddedNs / 1000)} µs`,
    ]);

const md = [
  `# Benchmarks${quick ? " (--quick)" : ""}`,
  ``,
  `${self.name} ${self.version} at commit ${machine.commit}${machine.dirty ? " (with uncommitted changes)" : ""}, ${machine.date}.`,
  `Node ${machine.node}, ${machine.os}, ${machine.cpus}, ${machine.memoryGiB} GiB; load average ${machine.loadAverageAtStart} at the start`,
  `(the machine is shared: other work runs on the same cores, so times are noisy and ratios matter more than absolute figures).`,
  `Peers: ${Object.entries(versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}. Medians over interleaved rounds; ranges in brackets. ${results.seconds} s in all.`,
  ``,
  `## How each peer is configured`,
  ``,
  ...Object.entries(flakyPolicies).map(([k, v]) => `- **${k}**: ${v}.`),
  `- **ofetch** (storm): \`retry: 2\` (its default is 1 for GET, 0 for POST), \`retryDelay\` left at its default of 0 ms, no breaker.`,
  `- **ky** (storm): defaults as above, \`timeout: false\`. **p-retry** (storm): \`retries: 2\`.`,
  `- **opossum** (storm, overhead): \`timeout: false\` (its default 10 s timeout is switched off), \`resetTimeout\` ${STORM_BREAKER_TIMEOUT / 1000} s.`,
  `- In the storm every breaker opens for ${STORM_BREAKER_TIMEOUT / 1000} s (this library's \`breaker.timeout\`, cockatiel's \`halfOpenAfter\`, opossum's \`resetTimeout\`) so recoveries compare; every other setting is as listed.`,
  ``,
  `## Success-path overhead (stub fetch, same 11-byte JSON body for every variant)`,
  `Added per call over bare \`fetch\` in the same round: wall clock (median, range over rounds) and CPU time of the process (median).`,
  ``,
  `### Body not read`,
  table(["variant", "added per call", "range", "CPU added"], overheadRows("unread")),
  ``,
  `### Body read (\`await response.text()\`)`,
  table(["variant", "added per call", "range", "CPU added"], overheadRows("read")),
  ``,
  `## Loopback throughput (concurrency 50)`,
  table(
    ["variant", "req/s", "× bare fetch", "range over rounds"],
    throughput.map((r) => [
      r.variant,
      Math.round(r.reqPerSec),
      fmt(r.ratioToBare),
      `${fmt(r.ratioRange[0])}–${fmt(r.ratioRange[1])}`,
    ]),
  ),
  ``,
  `## Random 503s: GETs from 4 sequential clients, 10% of requests answered 503 (seed ${flakySeed})`,
  flakyHow,
  ``,
  flakyTable(flaky10),
  ``,
  `## Random 503s: the same with 30% of requests answered 503`,
  `With 3 attempts a call fails only when all three do: 0.3³ = 2.7% on average, so a 3-attempt client serves 97.3% on average; the ceiling column is what chance allowed in this run.`,
  ``,
  flakyTable(flaky30),
  ``,
  `## Full outage, one call at a time (every request answered 503)`,
  table(
    ["variant", "calls before the breaker refused one", "requests by then", "requests per call", "calls"],
    outage.map((r) => [
      r.variant,
      r.callsToOpen === null ? "never" : r.callsToOpen,
      r.attemptsToOpen ?? "—",
      fmt(r.attemptsPerCall),
      r.calls,
    ]),
  ),
  ``,
  `## Retry storm (200 calls/s open loop; healthy, then 503s, then healthy; breakers open ${STORM_BREAKER_TIMEOUT / 1000} s)`,
  `Recovery burst: the peak request rate at the primary over the ${(3 * STORM_BREAKER_TIMEOUT) / 1000} s after it recovers (three breaker timeouts), over the offered rate, in 1 s windows and in 100 ms buckets.`,
  table(
    [
      "variant",
      "amplification",
      "recovery burst (1 s) × offered",
      "recovery burst (100 ms) × offered",
      "success",
      "outage calls served",
      "first success after recovery",
      "p99",
    ],
    storm.map((r) => [
      r.variant,
      fmt(r.amplification),
      fmt(r.recoveryBurst),
      fmt(r.recoveryBurst100ms),
      `${fmt(r.successPct)}%`,
      `${fmt(r.outageSuccessPct)}%`,
      r.firstSuccessMs === null ? "none" : `${r.firstSuccessMs} ms`,
      `${r.p99Ms} ms`,
    ]),
  ),
  ``,
  `## Partial failure (primary fails 30% at random; healthy alternate; 20 concurrent clients)`,
  table(
    ["variant", "success", "requests per call (both)", "requests to the primary per call"],
    partial.map((r) => [r.variant, `${fmt(r.successPct)}%`, fmt(r.attemptsPerCall), fmt(r.primaryPerCall)]),
  ),
  ``,
  `## Bundle size (esbuild, minified, browser; bytes, then KiB)`,
  `Gzip and brotli at their Node defaults. \`size-limit\` in \`npm test\` measures gzip of the built \`dist/browser\`; the budgets here are compared with gzip.`,
  table(
    ["entry", "minified", "gzip", "brotli", "budget (gzip)"],
    bundles.map((b) => [
      b.name,
      `${b.minBytes} B (${kib(b.minBytes)})`,
      `${b.gzipBytes} B (${kib(b.gzipBytes)})`,
      `${b.brotliBytes} B (${kib(b.brotliBytes)})`,
      b.budget ? `${kib(b.budget)} ${b.gzipBytes <= b.budget ? "met" : `missed by ${b.gzipBytes - b.budget} B`}` : "",
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
writeFileSync(resolve(out, `${base}.md`), md);
try {
  execFileSync("npx", ["biome", "format", "--write", resolve(out, `${base}.md`)], { stdio: "ignore" });
} catch {
  log("biome could not format the Markdown (kept as written)");
}
writeFileSync(
  resolve(out, "overhead.svg"),
  barChart(
    "Success-path overhead added per call (µs)",
    overhead.map((r) => ({ label: `${r.variant}${r.mode === "read" ? " (body read)" : ""}`, value: r.addedNs / 1000 })),
    "µs",
    // The target with defaults (docs/targets.md).
    1.5,
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
log(`wrote ${out}/${base}.{json,md}, overhead.svg, amplification.svg in ${results.seconds} s`);
