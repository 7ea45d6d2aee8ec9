import type { Clock } from "../core/clock.ts";

const CAPACITY = 256;

/**
 * The last {@link CAPACITY} settled calls (time, latency, failed) in a ring:
 * error rate and p95 latency over a rolling window, in constant memory.
 */
export class LatencyWindow {
  readonly #clock: Clock;
  readonly #span: number;
  readonly #times = new Float64Array(CAPACITY);
  readonly #latencies = new Float64Array(CAPACITY);
  readonly #failed = new Uint8Array(CAPACITY);
  #next = 0;
  #size = 0;

  constructor(clock: Clock, span: number) {
    this.#clock = clock;
    this.#span = span;
  }

  /** One settled call, at `now` on the clock. */
  record(latencyMs: number, failed: boolean, now: number): void {
    this.#times[this.#next] = now;
    this.#latencies[this.#next] = latencyMs;
    this.#failed[this.#next] = failed ? 1 : 0;
    this.#next = (this.#next + 1) % CAPACITY;
    this.#size = Math.min(CAPACITY, this.#size + 1);
  }

  /** Samples in the window, their error rate and p95 latency. */
  summary(): { samples: number; errorRate: number; p95: number | undefined } {
    const now = this.#clock.now();
    const since = now - this.#span;
    const latencies: number[] = [];
    let failed = 0;
    for (let i = 0; i < this.#size; i++) {
      // A sample ahead of now was taken before a clock set back: left out, or it would count for the step's length.
      const at = this.#times[i] as number;
      if (at < since || at > now) continue;
      latencies.push(this.#latencies[i] as number);
      failed += this.#failed[i] as number;
    }
    if (latencies.length === 0) return { samples: 0, errorRate: 0, p95: undefined };
    latencies.sort((a, b) => a - b);
    const p95 = latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.95) - 1)];
    return { samples: latencies.length, errorRate: failed / latencies.length, p95 };
  }

  clear(): void {
    this.#size = 0;
    this.#next = 0;
  }
}
