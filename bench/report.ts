/** Turns the results into Markdown tables and simple SVG bar charts. */
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
