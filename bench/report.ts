/** Turns the results into Markdown tables and simple SVG bar charts. */
import type { FlakyRow, FlakyRun } from "./flaky.ts";

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n");
}

export function barChart(
  title: string,
  bars: Array<{ label: string; value: number }>,
  unit: string,
  target?: number,
): string {
  const width = 760;
  const left = 280;
  const rowH = 26;
  const max = Math.max(target ?? 0, ...bars.map((b) => b.value)) * 1.1 || 1;
  const x = (v: number) => left + ((width - left - 70) * v) / max;
  const rows = bars
    .map((b, i) => {
      const y = 34 + i * rowH;
      return `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escapeXml(b.label)}</text><rect x="${left}" y="${y + 3}" width="${Math.max(1, x(b.value) - left).toFixed(1)}" height="16" fill="#4a78c2"/><text x="${(x(b.value) + 5).toFixed(1)}" y="${y + 15}">${fmt(b.value)} ${unit}</text>`;
    })
    .join("\n");
  const height = 44 + bars.length * rowH;
  const targetLine =
    target === undefined
      ? ""
      : `<line x1="${x(target)}" y1="28" x2="${x(target)}" y2="${height - 6}" stroke="#d33a2c" stroke-dasharray="4 3"/><text x="${x(target) + 4}" y="26" fill="#d33a2c">target ${fmt(target)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img" aria-labelledby="t"><title id="t">${escapeXml(title)}</title><rect width="100%" height="100%" fill="#fff"/><text x="10" y="18" font-weight="bold">${escapeXml(title)}</text>${rows}${targetLine}</svg>\n`;
}

export function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const pct2 = (v: number): string => `${v.toFixed(2)}%`;

/** The random-503 rows: served next to 1 − p^attempts, the ceiling on the run's draws, and each lost call's cause. */
export function flakyTable(rows: FlakyRow[]): string {
  return table(
    [
      "variant",
      "calls",
      "served",
      "1 − p³ ± 1 s.e.",
      "ceiling on these draws",
      "lost: every attempt 503",
      "lost: refused by a breaker",
      "lost: retry withheld",
      "budget denials / breaker opens",
      "attempts per call",
      "wall time",
    ],
    rows.map((r) => [
      r.variant,
      r.calls,
      `${pct2(r.servedPct)} (${r.served})`,
      `${pct2(r.expectedPct)} ± ${r.standardErrorPct.toFixed(2)}`,
      `${pct2(r.ceilingPct)} (${Math.round((r.ceilingPct * r.calls) / 100)})`,
      r.lostAllAttemptsFailed,
      r.refusedByBreaker,
      r.lostRetryWithheld,
      r.library ? `${r.library.retriesDeniedByBudget} / ${r.library.breakerOpens}` : "—",
      fmt(r.attemptsPerCall),
      `${fmt(r.seconds)} s`,
    ]),
  );
}

/** How to read {@link flakyTable}, for a run with `seed`. */
export function flakyMethod(seed: number): string {
  return [
    `Call _i_ asks for \`/gen/x?call=i\`; the upstream answers its _k_-th attempt with draw _k_ of call _i_'s stream under seed ${seed}`,
    `(\`bench/seeded.ts\`), so every variant meets the same 503s call by call whatever its delays, and a rerun with the seed meets them again.`,
    `_1 − p³_: the mean share served by a client making 3 independent attempts, with one standard error for the row's number of calls.`,
    `_Ceiling on these draws_: the calls whose 3 draws were not all 503, the most any 3-attempt client could serve in this run.`,
    `Each unserved call is put down to one cause: every attempt met a 503 (chance), a breaker refused it, or it ended with fewer than 3 attempts`,
    `and no refusal (a retry withheld: budget, open breaker or policy). Budget denials and breaker openings are this library's own counters.`,
  ].join("\n");
}

/** One `bench/flaky-run.ts` run as Markdown: the machine, the command, the method and the table. */
export function flakyMarkdown(run: FlakyRun): string {
  const p = run.failRate;
  const variants = run.rows.map((r) => JSON.stringify(r.variant)).join(" ");
  return [
    `# Random 503s: ${Math.round(p * 100)}% of requests, ${run.calls.toLocaleString("en")} calls, seed ${run.seed}`,
    ``,
    `Commit ${run.commit}, ${run.date}. Node ${run.node}, ${run.cpus}; load average ${run.loadAverage} at the start`,
    `(counts depend on time only through the retry budget's per-second floor and the breakers' windows; wall times depend on the load). ${Math.round(run.seconds)} s in all.`,
    ``,
    `\`node bench/flaky-run.ts ${p} ${run.calls} ${run.clients} --seed ${run.seed} ${variants}\``,
    ``,
    `GETs from ${run.clients} sequential clients sharing one instance; ${Math.round(p * 100)}% of requests answered 503.`,
    flakyMethod(run.seed),
    ``,
    flakyTable(run.rows),
    ``,
  ].join("\n");
}
