import { stripVTControlCharacters } from "node:util";
import type { ProviderStats } from "./fake-api.ts";
import type { Summary } from "./run-log.ts";

const LEVELS = ["full", "high", "medium", "low", "minimal"];
const COLOR: Record<string, string> = { closed: "\x1b[32m", open: "\x1b[31m", half_open: "\x1b[33m" };
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

/** One lane's figures so far: its summary, and for the library its breakers and level right now. */
export interface Lane {
  summary: Summary;
  breakers?: { premium: string; standard: string };
  level?: string;
}

/**
 * The rows both the live view and the final summary show, one column per
 * lane, so the two runs of the same day read side by side. `color` adds
 * terminal colours to breaker states and the level meter.
 */
export function compareRows(plain: Lane, library: Lane, options: { final: boolean; color: boolean }): string[][] {
  const { color } = options;
  const breaker = (lane: Lane, key: "premium" | "standard") => {
    const state = lane.breakers?.[key];
    if (state === undefined) return "none";
    return color ? `${COLOR[state] ?? ""}● ${state}${RESET}` : state;
  };
  const level = (lane: Lane) => {
    if (lane.level === undefined) return "none (always full)";
    const at = Math.max(0, LEVELS.indexOf(lane.level));
    const meter = color ? `${"▮".repeat(5 - at)}${DIM}${"▯".repeat(at)}${RESET} ` : "";
    return `${meter}${lane.level}`;
  };
  const rows: string[][] = [
    ["", "plain fetch", "resilient-fetch"],
    ["calls", ...both(plain, library, (s) => String(s.calls))],
    ["served", ...both(plain, library, (s) => `${s.served} (${s.servedPct}%)`)],
    ["served by endpoint", ...both(plain, library, (s) => byEndpoint(s.byEndpoint))],
    ["attempts per call", ...both(plain, library, (s) => s.attemptsPerCall.toFixed(2))],
    ["latency p50 / p95 (all calls)", ...both(plain, library, (s) => `${s.p50Ms} ms / ${s.p95Ms} ms`)],
    ["premium breaker", breaker(plain, "premium"), breaker(library, "premium")],
    ["standard breaker", breaker(plain, "standard"), breaker(library, "standard")],
    ["degradation level", level(plain), level(library)],
  ];
  if (options.final) {
    rows.push(["time in each level", "none", byEndpoint(library.summary.secondsInLevel, " s")]);
  }
  rows.push(
    ["premium received", ...both(plain, library, (s) => received(s.upstream.premium))],
    ["standard received", ...both(plain, library, (s) => received(s.upstream.standard))],
  );
  return rows;
}

/**
 * The machine-readable summary of `--json`: the same figures as the final
 * text summary, the library's breaker states and level at the end included.
 */
export function summaryJson(plain: Lane, library: Lane, timeline: string): Record<string, unknown> {
  const { seed, seconds, ...plainFetch } = plain.summary;
  const { seed: _seed, seconds: _seconds, ...summary } = library.summary;
  const resilientFetch = { ...summary, breakers: library.breakers, level: library.level };
  return { seed, seconds, plainFetch, resilientFetch, timeline };
}

/**
 * Rows as aligned text lines; colour codes do not count towards a column's
 * width. `minWidths` keeps columns from jumping as figures grow in a live view.
 */
export function formatRows(rows: string[][], minWidths: number[] = []): string[] {
  const visible = (s: string) => stripVTControlCharacters(s).length;
  const widths = [minWidths[0] ?? 0, minWidths[1] ?? 0, minWidths[2] ?? 0];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, visible(cell));
  }
  return rows.map((row) =>
    `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - visible(cell) + 3))).join("")}`.trimEnd(),
  );
}

function both(plain: Lane, library: Lane, cell: (s: Summary) => string): [string, string] {
  return [cell(plain.summary), cell(library.summary)];
}

function byEndpoint(counts: Record<string, number>, unit = ""): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? "none" : entries.map(([k, v]) => `${k} ${v}${unit}`).join(", ");
}

/** What reached one provider: requests and how they ended, and the last parameters it was asked for. */
export function received(stats: ProviderStats | undefined): string {
  if (!stats || stats.requests === 0) return "0 requests";
  const last = stats.lastSteps === undefined ? "" : `, last ${stats.lastSteps} steps @ ${stats.lastResolution}`;
  return `${stats.requests} (ok ${stats.ok}, 503 ${stats.failed}, reset ${stats.reset}${last})`;
}
