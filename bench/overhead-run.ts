/**
 * The success-path overhead on its own (step 1 of `npm run bench`):
 *
 *   node bench/overhead-run.ts [rounds] [calls] [variant …]
 *
 * Each variant in its own process, rounds interleaved, body unread and read,
 * each compared with bare fetch in the same round and mode. Prints one JSON
 * object (the rows, Node, CPUs, load average before and after, the commit)
 * and the tables to stderr. Times move with other work on the machine: read
 * the load averages and the ranges before the medians.
 */

import { cpus, loadavg } from "node:os";
import { benchCommit } from "./commit.ts";
import { measureOverhead, type OverheadRow } from "./overhead.ts";
import { fmt, table } from "./report.ts";

const [roundsArg = "5", callsArg = "200000", ...only] = process.argv.slice(2);
const rounds = Number(roundsArg);
const calls = Number(callsArg);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(calls) || calls < 1) {
  throw new Error("usage: node bench/overhead-run.ts [rounds ≥ 1] [calls ≥ 1] [variant …]");
}
const commit = benchCommit();
const load = () => Number((loadavg()[0] ?? 0).toFixed(2));
const loadBefore = load();
const date = new Date().toISOString();
const rows = await measureOverhead(rounds, calls, only.length > 0 ? only : undefined);
const loadAfter = load();
const us = (ns: number) => `${fmt(ns / 1000)} µs`;
const render = (mode: OverheadRow["mode"]) =>
  table(
    ["variant", "added per call", "range", "CPU added"],
    rows
      .filter((r) => r.mode === mode)
      .map((r) => [r.variant, us(r.addedNs), `${us(r.minNs)} – ${us(r.maxNs)}`, us(r.cpuAddedNs)]),
  );
process.stderr.write(
  `load average ${loadBefore} → ${loadAfter}; ${rounds} rounds of ${calls} calls\n\nbody not read\n${render("unread")}\n\nbody read\n${render("read")}\n`,
);
console.log(
  JSON.stringify({
    commit,
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    loadAverage: { before: loadBefore, after: loadAfter },
    date,
    rounds,
    calls,
    rows,
  }),
);
