/**
 * One random-503 scenario on its own, for comparing two trees of this
 * library (e.g. the breaker defaults before and after a change), or for a
 * larger sample than `npm run bench` takes:
 *
 *   node bench/flaky-run.ts <failRate> <calls> <clients> [--seed N] [--out DIR] [variant …]
 *
 * The 503s are drawn from the seed (default 1, bench/seeded.ts), call by
 * call, so a run with the same seed meets the same answers. Prints one JSON
 * object: the rows, the seed, Node, CPUs, load average and the commit
 * (BENCH_COMMIT for an exported tree without .git); a summary goes to stderr.
 * With `--out DIR` it also writes the JSON and a Markdown table there as
 * flaky-<rate>pct-<date>-<commit>.{json,md}.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { benchCommit } from "./commit.ts";
import { type FlakyRun, measureFlaky } from "./flaky.ts";
import { flakyMarkdown } from "./report.ts";
import { DEFAULT_SEED } from "./seeded.ts";

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const seed = Number(option("--seed") ?? DEFAULT_SEED);
const out = option("--out");
const [rate, calls, clients, ...only] = args;
const failRate = Number(rate);
const n = Number(calls);
const c = Number(clients);
if (
  !(failRate >= 0 && failRate <= 1) ||
  !Number.isInteger(n) ||
  n < 1 ||
  !Number.isInteger(c) ||
  c < 1 ||
  !Number.isInteger(seed)
) {
  throw new Error(
    "usage: node bench/flaky-run.ts <failRate 0..1> <calls ≥ 1> <clients ≥ 1> [--seed <integer>] [--out DIR] [variant …]",
  );
}
const commit = benchCommit();
const started = new Date().toISOString();
const load = Number((loadavg()[0] ?? 0).toFixed(2));
const rows = await measureFlaky(failRate, n, c, only.length > 0 ? only : undefined, seed);
const pct = (v: number) => `${v.toFixed(2)}%`;
for (const r of rows) {
  process.stderr.write(
    `${r.variant}: served ${pct(r.servedPct)} (${r.served}/${r.calls}); 1 − ${failRate}^${r.attempts} = ${pct(r.expectedPct)} ± ${r.standardErrorPct.toFixed(2)} (1 s.e.); ceiling on these draws ${pct(r.ceilingPct)}; lost: ${r.lostAllAttemptsFailed} every attempt 503, ${r.refusedByBreaker} refused by a breaker, ${r.lostRetryWithheld} retry withheld${r.library ? ` (budget denied ${r.library.retriesDeniedByBudget} retries, breaker opened ${r.library.breakerOpens} times)` : ""}\n`,
  );
}
const result: FlakyRun = {
  commit,
  node: process.version,
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
  loadAverage: load,
  date: started,
  seconds: rows.reduce((sum, r) => sum + r.seconds, 0),
  failRate,
  seed,
  calls: n,
  clients: c,
  rows,
};
console.log(JSON.stringify(result));
if (out) {
  mkdirSync(out, { recursive: true });
  const base = resolve(out, `flaky-${Math.round(failRate * 100)}pct-${started.slice(0, 10)}-${commit}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${base}.md`, flakyMarkdown(result));
  try {
    execFileSync("npx", ["biome", "format", "--write", `${base}.json`, `${base}.md`], { stdio: "ignore" });
  } catch {
    process.stderr.write("biome could not format the results (kept as written)\n");
  }
  process.stderr.write(`wrote ${base}.{json,md}\n`);
}
