import type { CallRecord, Sample } from "./run-log.ts";

const STATE_COLOR: Record<string, string> = { closed: "#2e9e44", half_open: "#e8a317", open: "#d33a2c" };
const LEVELS = ["full", "high", "medium", "low", "minimal"];

/**
 * The run as an SVG: a lane per breaker (green closed, amber half-open, red
 * open), the degradation level as a step line, and the share of calls served
 * per second, with the phases marked along the top.
 */
export function timelineSvg(samples: Sample[], calls: CallRecord[], started: number, totalMs: number): string {
  const W = 960;
  const left = 150;
  const plot = W - left - 20;
  const x = (t: number) => left + (plot * Math.min(totalMs, Math.max(0, t))) / totalMs;
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
  const buckets: Array<{ total: number; ok: number }> = [];
  for (const c of calls) {
    const b = Math.floor((c.end - started) / 1000);
    buckets[b] ??= { total: 0, ok: 0 };
    (buckets[b] as { total: number; ok: number }).total++;
    if (c.ok) (buckets[b] as { total: number; ok: number }).ok++;
  }
  const served = buckets
    .map((b, i) =>
      b ? `${i === 0 ? "M" : "L"}${x(i * 1000 + 500).toFixed(1)},${(300 - 60 * (b.ok / b.total)).toFixed(1)}` : "",
    )
    .filter(Boolean)
    .join(" ")
    .replace(/^L/, "M");
  const phases: string[] = [];
  let current = "";
  for (const s of samples) {
    if (s.phase !== current) {
      current = s.phase;
      // Alternate label rows so neighbouring phase names do not overlap.
      const labelY = 12 + 12 * (phases.length % 2);
      phases.push(
        `<line x1="${x(s.t)}" y1="26" x2="${x(s.t)}" y2="305" class="p"/><text x="${x(s.t) + 3}" y="${labelY}" class="s">${escapeXml(s.phase)}</text>`,
      );
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="330" viewBox="0 0 ${W} 330" font-family="sans-serif" role="img" aria-labelledby="title">
<title id="title">Demo timeline: breaker state per provider, degradation level and share of calls served, over ${(totalMs / 1000).toFixed(0)} s</title>
<style>.l{font-size:12px;fill:#222}.s{font-size:10px;fill:#555}.p{stroke:#bbb;stroke-dasharray:3 3}</style>
<rect width="${W}" height="330" fill="#fff"/>
${phases.join("\n")}
${lane(40, "premium breaker", "premium")}
${lane(80, "standard breaker", "standard")}
<text x="10" y="170" class="l">degradation level</text>
${LEVELS.map((l) => `<text x="${left - 6}" y="${levelY(l) + 4}" class="s" text-anchor="end">${l}</text>`).join("")}
<path d="${levelPath}" fill="none" stroke="#5b4bd6" stroke-width="2"/>
<text x="10" y="275" class="l">served per second</text>
<line x1="${left}" y1="240" x2="${W - 20}" y2="240" class="p"/><line x1="${left}" y1="300" x2="${W - 20}" y2="300" class="p"/>
<text x="${left - 6}" y="244" class="s" text-anchor="end">100%</text><text x="${left - 6}" y="304" class="s" text-anchor="end">0%</text>
<path d="${served}" fill="none" stroke="#2e7bd6" stroke-width="2"/>
<text x="${left}" y="322" class="s">0 s</text><text x="${W - 20}" y="322" class="s" text-anchor="end">${(totalMs / 1000).toFixed(0)} s</text>
</svg>
`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
