import { stripVTControlCharacters } from "node:util";
import { compareRows, formatRows, type Lane } from "./compare.ts";

export interface ViewState {
  elapsed: number;
  total: number;
  phase: string;
  plain: Lane;
  library: Lane;
}

/**
 * The live terminal view: a progress bar with the phase of the day, then the
 * two lanes side by side (plain fetch, the library). On a terminal it redraws
 * in place; piped, it prints the two served shares now and then.
 */
export class LiveView {
  readonly #tty: boolean;
  #drawn = 0;
  #lastPrinted = -Infinity;

  constructor(tty: boolean) {
    this.#tty = tty;
  }

  render(v: ViewState): void {
    if (this.#tty) {
      const lines = frameLines(v);
      if (this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}F`);
      for (const line of lines) process.stdout.write(`\x1b[2K${line}\n`);
      this.#drawn = lines.length;
    } else if (v.elapsed - this.#lastPrinted >= 3_000) {
      this.#lastPrinted = v.elapsed;
      const p = v.plain.summary;
      const l = v.library.summary;
      console.log(
        stripVTControlCharacters(
          `${(v.elapsed / 1000).toFixed(1).padStart(5)} s  ${v.phase.padEnd(46)} served: plain fetch ${p.servedPct}%, resilient-fetch ${l.servedPct}% (level ${v.library.level}, premium breaker ${v.library.breakers?.premium})`,
        ),
      );
    }
  }
}

/** The lines of one frame. */
function frameLines(v: ViewState): string[] {
  const width = 30;
  const done = Math.min(width, Math.round((width * v.elapsed) / v.total));
  const bar = `${"█".repeat(done)}${"░".repeat(width - done)}`;
  return [
    `  ${bar} ${(v.elapsed / 1000).toFixed(1).padStart(5)} s / ${v.total / 1000} s   ${v.phase}`,
    "",
    ...formatRows(compareRows(v.plain, v.library, { final: false, color: true }), [18, 52]),
  ];
}
