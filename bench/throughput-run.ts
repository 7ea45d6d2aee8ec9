import { loadavg } from "node:os";
import { benchCommit } from "./commit.ts";
import { measureThroughput } from "./storm.ts";

/**
 * Loopback throughput on its own (step 2 of `npm run bench`):
 *
 *   node bench/throughput-run.ts [seconds per turn] [rounds]
 *
 * Bare fetch and the library's defaults take turns at concurrency 50 against
 * one upstream process, the order flipped every round; prints the median
 * rate, the median of the rounds' ratios and their range, with the load
 * average before and after (a shared machine moves single rounds a lot).
 */
const [secondsArg = "3", roundsArg = "10"] = process.argv.slice(2);
const seconds = Number(secondsArg);
const rounds = Number(roundsArg);
if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error("usage: node bench/throughput-run.ts [seconds > 0] [rounds ≥ 1]");
}
const load = () => Number((loadavg()[0] ?? 0).toFixed(2));
const loadBefore = load();
const rows = await measureThroughput(seconds, rounds);
console.log(JSON.stringify({ commit: benchCommit(), seconds, rounds, loadBefore, loadAfter: load(), rows }, null, 2));
