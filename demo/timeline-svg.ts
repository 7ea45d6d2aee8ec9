import type { CallRecord, Sample } from "./run-log.ts";

const STATE_COLOR: Record<string, string> = { closed: "#2e9e44", half_open: "#e8a317", open: "#d33a2c" };
const LEVELS = ["full", "high", "medium", "low", "minimal"];
const LEVEL_COLOR = "#5b4bd6";
const LIBRARY_COLOR = "#2e7bd6";
const PLAIN_COLOR = "#e07b00";
const W = 960;
const H = 380;
const LEFT = 150;
const SERVED_TOP = 240;
const SERVED_BOTTOM = 300;

/**
 * The run as an SVG: a lane per breaker of the library (green closed, amber
 * half-open, red open), its degradation level as a step line, and the share
 * of calls served per second by each lane (the library, plain fetch), with
 * the phases marked along the top and a legend below.
 */
export function timelineSvg(
  samples: Sample[],
  calls: CallRecord[],
  plainCalls: CallRecord[],
  started: number,
  totalMs: number,
): string {
  const plot = W - LEFT - 20;
  const x = (t: number) => LEFT + (plot * Math.min(totalMs, Math.max(0, t))) / totalMs;
  const lane = (y: number, label: string, key: "premium" | "standard") => {
    // One rectangle per run of the same state.
    const rects: string[] = [];
    let from = 0;
    for (let i = 1; i < samples.length; i++) {
      const start = samples[from] as Sample;
      const current = samples[i] as Sample;
      if (current[key] === start[key] && i < samples.length - 1) continue;
      const width = Math.max(0.5, x(current.t) - x(start.t)).toFixed(1);
      const fill = STATE_COLOR[start[key]] ?? "#999";
      rects.push(
        `<rect x="${x(start.t).toFixed(1)}" y="${y}" width="${width}" height="22" fill="${fill}"><title>${start[key]}</title></rect>`,
      );
      from = i;
    }
    return `<text x="10" y="${y + 16}" class="l">${label}</text>${rects.join("")}`;
  };
  const levelY = (level: string) => 150 + 14 * LEVELS.indexOf(level);
  const changes = samples.filter((s, i) => i === 0 || i === samples.length - 1 || s.level !== samples[i - 1]?.level);
  const levelPath = changes
    .map(
      (s, i) =>
        `${i === 0 ? "M" : "L"}${x(s.t).toFixed(1)},${levelY(changes[i - 1]?.level ?? s.level)} L${x(s.t).toFixed(1)},${levelY(s.level)}`,
    )
    .join(" ");
  const phases: string[] = [];
  let current = "";
  for (const s of samples) {
    if (s.phase !== current) {
      current = s.phase;
      // Alternate label rows so neighbouring phase names do not overlap.
      const labelY = 12 + 12 * (phases.length % 2);
      phases.push(
        `<line x1="${x(s.t)}" y1="26" x2="${x(s.t)}" y2="${SERVED_BOTTOM + 5}" class="p"/><text x="${x(s.t) + 3}" y="${labelY}" class="s">${escapeXml(s.phase)}</text>`,
      );
    }
  }
  const legend = [
    swatch(LEFT, STATE_COLOR.closed, "closed"),
    swatch(LEFT + 70, STATE_COLOR.half_open, "half-open"),
    swatch(LEFT + 155, STATE_COLOR.open, "open"),
    stroke(LEFT + 230, LEVEL_COLOR, "", "degradation level"),
    stroke(LEFT + 375, LIBRARY_COLOR, "", "served: resilient-fetch"),
    stroke(LEFT + 545, PLAIN_COLOR, "5 3", "served: plain fetch"),
  ].join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" role="img" aria-labelledby="title">
<title id="title">Demo timeline: the library's breaker state per provider and degradation level, and the share of calls served by plain fetch and by the library, over ${(totalMs / 1000).toFixed(0)} s</title>
<style>.l{font-size:12px;fill:#222}.s{font-size:10px;fill:#555}.p{stroke:#bbb;stroke-dasharray:3 3}</style>
<rect width="${W}" height="${H}" fill="#fff"/>
${phases.join("\n")}
${lane(40, "premium breaker", "premium")}
${lane(80, "standard breaker", "standard")}
<text x="10" y="170" class="l">degradation level</text>
${LEVELS.map((l) => `<text x="${LEFT - 6}" y="${levelY(l) + 4}" class="s" text-anchor="end">${l}</text>`).join("")}
<path d="${levelPath}" fill="none" stroke="${LEVEL_COLOR}" stroke-width="2"/>
<text x="10" y="275" class="l">served per second</text>
<line x1="${LEFT}" y1="${SERVED_TOP}" x2="${W - 20}" y2="${SERVED_TOP}" class="p"/><line x1="${LEFT}" y1="${SERVED_BOTTOM}" x2="${W - 20}" y2="${SERVED_BOTTOM}" class="p"/>
<text x="${LEFT - 6}" y="${SERVED_TOP + 4}" class="s" text-anchor="end">100%</text><text x="${LEFT - 6}" y="${SERVED_BOTTOM + 4}" class="s" text-anchor="end">0%</text>
<path d="${servedPath(plainCalls, started, x)}" fill="none" stroke="${PLAIN_COLOR}" stroke-width="2" stroke-dasharray="5 3"/>
<path d="${servedPath(calls, started, x)}" fill="none" stroke="${LIBRARY_COLOR}" stroke-width="2"/>
<text x="${LEFT}" y="322" class="s">0 s</text><text x="${W - 20}" y="322" class="s" text-anchor="end">${(totalMs / 1000).toFixed(0)} s</text>
<g class="legend" transform="translate(0 350)"><text x="10" y="10" class="l">legend</text>${legend}</g>
</svg>
`;
}

/** The share of calls served in each second, as a path over the "served" band. */
export function servedPath(calls: CallRecord[], started: number, x: (t: number) => number): string {
  const buckets: Array<{ total: number; ok: number }> = [];
  for (const c of calls) {
    const b = Math.floor((c.end - started) / 1000);
    const bucket = buckets[b] ?? { total: 0, ok: 0 };
    buckets[b] = bucket;
    bucket.total++;
    if (c.ok) bucket.ok++;
  }
  const band = SERVED_BOTTOM - SERVED_TOP;
  return buckets
    .map((b, i) =>
      b ? `L${x(i * 1000 + 500).toFixed(1)},${(SERVED_BOTTOM - band * (b.ok / b.total)).toFixed(1)}` : "",
    )
    .filter(Boolean)
    .join(" ")
    .replace(/^L/, "M");
}

function swatch(x: number, fill: string | undefined, label: string): string {
  return `<rect x="${x}" y="0" width="14" height="12" fill="${fill}"/><text x="${x + 18}" y="10" class="s">${label}</text>`;
}

function stroke(x: number, color: string, dash: string, label: string): string {
  const dashed = dash ? ` stroke-dasharray="${dash}"` : "";
  return `<line x1="${x}" y1="6" x2="${x + 24}" y2="6" stroke="${color}" stroke-width="2"${dashed}/><text x="${x + 30}" y="10" class="s">${label}</text>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
