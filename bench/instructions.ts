/**
 * Instructions added per call, counted by callgrind instead of timed:
 *
 *   node bench/instructions.ts [calls] [warmup] [variant …]
 *
 * Wall-clock and CPU times move with whatever else runs on the machine; an
 * instruction count of the same work does not (callgrind runs the process on
 * one simulated core, GC included, and `--single-threaded` keeps V8's
 * background work on it; `--no-incremental-marking`, see below). Each variant and body mode runs in its own
 * `valgrind --tool=callgrind` process; the figure is the instructions of the
 * measured calls (`bench/instructions-child.ts`) divided by their number,
 * minus bare fetch's in the same mode. It needs valgrind (`callgrind`,
 * `callgrind_control`, `callgrind_annotate`); it is not part of
 * `npm run bench`, which measures time. Runs one process per core at most.
 * Prints one JSON object (rows, Node, commit, settings).
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { benchCommit } from "./commit.ts";
import { BODY_MODES, type BodyMode } from "./overhead.ts";
import { table } from "./report.ts";
import { variants } from "./variants.ts";

const run = promisify(execFile);
const [callsArg = "5000", warmupArg = "25000", ...only] = process.argv.slice(2);
const calls = Number(callsArg);
const warmup = Number(warmupArg);
if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(warmup) || warmup < 0) {
  throw new Error("usage: node bench/instructions.ts [calls ≥ 1] [warmup ≥ 0] [variant …]");
}
for (const name of only) if (!variants[name]) throw new Error(`unknown variant ${name}`);
const names = [
  "bare fetch",
  ...(only.length > 0 ? only : ["resilient-fetch (defaults)"]).filter((n) => n !== "bare fetch"),
];

/** Instructions per measured call of one variant in one mode. */
async function count(name: string, mode: BodyMode): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "rf-callgrind-"));
  try {
    await run(
      "valgrind",
      [
        "--tool=callgrind",
        `--callgrind-out-file=${join(dir, "out")}`,
        process.execPath,
        "--predictable",
        "--single-threaded",
        // Under valgrind a call takes ~50 times its real time, and V8 drives
        // incremental marking by real-time tasks: a marking cycle then
        // stepped on every allocation for the whole run (bare fetch counted
        // 43,800 instead of 22,100). Without it a major GC is one atomic
        // pause, counted when the allocations of the measured calls cause it.
        "--no-incremental-marking",
        new URL("./instructions-child.ts", import.meta.url).pathname,
        name,
        String(calls),
        String(warmup),
        mode,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    // The child zeroes the counters after its warm-up and dumps after the
    // measured calls: that dump is `out.1` (`out` holds the rest).
    const dump = readdirSync(dir).find((f) => f === "out.1");
    if (!dump) throw new Error(`${name} ${mode}: callgrind wrote no dump of the measured calls`);
    const annotated = execFileSync("callgrind_annotate", [join(dir, dump)], { encoding: "utf8" });
    const total = /^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/m.exec(annotated)?.[1];
    if (!total) throw new Error(`${name} ${mode}: no PROGRAM TOTALS in callgrind_annotate's output`);
    return Number(total.replaceAll(",", "")) / calls;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const jobs = names.flatMap((name) => BODY_MODES.map((mode) => ({ name, mode })));
const results = new Map<string, number>();
const slots = Math.max(1, Math.min(cpus().length, jobs.length));
let next = 0;
await Promise.all(
  Array.from({ length: slots }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++] as (typeof jobs)[number];
      results.set(`${job.mode}\u0000${job.name}`, await count(job.name, job.mode));
    }
  }),
);
const rows = jobs.map(({ name, mode }) => {
  const own = results.get(`${mode}\u0000${name}`) as number;
  const bare = results.get(`${mode}\u0000bare fetch`) as number;
  return { variant: name, mode, instructionsPerCall: Math.round(own), addedPerCall: Math.round(own - bare) };
});
const commit = benchCommit();
process.stderr.write(
  `${table(
    ["variant", "body", "instructions per call", "added over bare fetch"],
    rows.map((r) => [r.variant, r.mode, r.instructionsPerCall, r.addedPerCall]),
  )}\n`,
);
console.log(
  JSON.stringify({
    commit,
    node: process.version,
    date: new Date().toISOString(),
    calls,
    warmup,
    tool: "valgrind --tool=callgrind, node --predictable --single-threaded --no-incremental-marking",
    rows,
  }),
);
