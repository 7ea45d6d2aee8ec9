/**
 * Draws the README's overhead chart from a committed overhead run, so the
 * chart and the figures quoted beside it come from the same run:
 *
 *   node bench/overhead-chart.ts docs/benchmarks/overhead-<date>-<commit>.json [out.svg]
 *
 * The JSON is what `node bench/overhead-run.ts` prints on stdout. `npm run
 * bench` draws the same chart from its own first step.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { barChart } from "./report.ts";

const [input, output = "docs/benchmarks/overhead.svg"] = process.argv.slice(2);
if (!input) throw new Error("usage: node bench/overhead-chart.ts <overhead run .json> [out.svg]");
const run = JSON.parse(readFileSync(input, "utf8")) as {
  rows: Array<{ variant: string; mode: "unread" | "read"; addedNs: number }>;
};
writeFileSync(
  output,
  barChart(
    "Success-path overhead added per call (µs)",
    run.rows.map((r) => ({ label: `${r.variant}${r.mode === "read" ? " (body read)" : ""}`, value: r.addedNs / 1000 })),
    "µs",
    1.5,
  ),
);
console.log(`wrote ${output}`);
