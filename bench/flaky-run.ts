/**
 * One random-503 scenario on its own, for comparing two trees of this
 * library (e.g. the breaker defaults before and after a change):
 *
 *   node bench/flaky-run.ts <failRate> <calls> <clients> [variant …]
 *
 * Prints one JSON object: the rows, Node, CPUs, load average and the commit
 * (BENCH_COMMIT for an exported tree without .git).
 */
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { measureFlaky } from "./flaky.ts";

const [rate, calls, clients, ...only] = process.argv.slice(2);
const failRate = Number(rate);
const n = Number(calls);
const c = Number(clients);
if (!(failRate >= 0 && failRate <= 1) || !Number.isInteger(n) || n < 1 || !Number.isInteger(c) || c < 1) {
  throw new Error("usage: node bench/flaky-run.ts <failRate 0..1> <calls ≥ 1> <clients ≥ 1> [variant …]");
}
let commit = process.env.BENCH_COMMIT;
if (!commit) {
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    commit = "unknown";
  }
}
const rows = await measureFlaky(failRate, n, c, only.length > 0 ? only : undefined);
console.log(
  JSON.stringify({
    commit,
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    loadAverage: Number((loadavg()[0] ?? 0).toFixed(2)),
    date: new Date().toISOString(),
    failRate,
    calls: n,
    clients: c,
    rows,
  }),
);
