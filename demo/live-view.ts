import { stripVTControlCharacters } from "node:util";
import type { ProviderStats } from "./fake-api.ts";
import type { Sample } from "./run-log.ts";

const COLOR = {
  closed: "\x1b[32m",
  open: "\x1b[31m",
  half_open: "\x1b[33m",
  reset: "\x1b[0m",
  dim: "\x1b[2m",
} as const;
const LEVELS = ["full", "high", "medium", "low", "minimal"];

/** One provider in the view: its address and what reached it. */
type HostView = { url: string } & ProviderStats;

export interface ViewState {
  sample: Sample;
  elapsed: number;
  total: number;
  calls: number;
  served: number;
  p95: number;
  premium: HostView;
  standard: HostView;
}

/**
 * The live terminal view: one line per host with its breaker state, a level
 * indicator, counts and a progress bar. On a terminal it redraws in place;
 * piped, it prints a line now and then.
 */
export class LiveView {
  readonly #tty: boolean;
  #drawn = 0;
  #lastPrinted = -Infinity;

  constructor(tty: boolean) {
    this.#tty = tty;
  }

  render(v: ViewState): void {
    const lines = this.#lines(v);
    if (this.#tty) {
      if (this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}F`);
      for (const line of lines) process.stdout.write(`\x1b[2K${line}\n`);
      this.#drawn = lines.length;
    } else if (v.elapsed - this.#lastPrinted >= 3_000) {
      this.#lastPrinted = v.elapsed;
      console.log(lines.map((l) => stripVTControlCharacters(l)).join(" | "));
    }
  }

  #lines(v: ViewState): string[] {
    const width = 30;
    const done = Math.min(width, Math.round((width * v.elapsed) / v.total));
    const bar = `${"█".repeat(done)}${"░".repeat(width - done)}`;
    const level = LEVELS.indexOf(v.sample.level);
    const meter = `${"▮".repeat(5 - level)}${COLOR.dim}${"▯".repeat(level)}${COLOR.reset}`;
    const host = (name: string, state: string, s: ViewState["premium"]) => {
      const c = COLOR[state as keyof typeof COLOR] ?? "";
      return `  ${name.padEnd(9)} ${s.url.padEnd(22)} ${c}● ${state.padEnd(9)}${COLOR.reset} requests ${String(s.requests).padStart(4)}  ok ${String(s.ok).padStart(4)}  503 ${String(s.failed).padStart(3)}  reset ${String(s.reset).padStart(3)}  last steps ${s.lastSteps ?? "-"} @ ${s.lastResolution ?? "-"}`;
    };
    return [
      `  ${bar} ${(v.elapsed / 1000).toFixed(1).padStart(5)} s / ${v.total / 1000} s   ${v.sample.phase}`,
      host("premium", v.sample.premium, v.premium),
      host("standard", v.sample.standard, v.standard),
      `  level ${meter} ${v.sample.level.padEnd(8)} calls ${v.calls}  served ${v.calls ? ((100 * v.served) / v.calls).toFixed(1) : "0.0"}%  p95 ${Math.round(v.p95)} ms`,
    ];
  }
}
