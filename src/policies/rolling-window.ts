import type { Clock } from "../core/clock.ts";

/**
 * Counts outcomes over the last `span` ms in `buckets` slots, so memory is
 * constant whatever the traffic. Used for error rates in health and for the
 * degradation triggers.
 */
export class RollingWindow {
  readonly #clock: Clock;
  readonly #size: number;
  readonly #total: number[];
  readonly #failed: number[];
  #head: number;
  #headStart: number;

  constructor(clock: Clock, span: number, buckets = 12) {
    this.#clock = clock;
    this.#size = span / buckets;
    this.#total = Array(buckets).fill(0);
    this.#failed = Array(buckets).fill(0);
    this.#head = 0;
    this.#headStart = clock.now();
  }

  /** Counts one outcome; `now` saves a clock read when the caller has just taken one. */
  record(failed: boolean, now: number = this.#clock.now()): void {
    this.#roll(now);
    this.#total[this.#head] = (this.#total[this.#head] ?? 0) + 1;
    if (failed) this.#failed[this.#head] = (this.#failed[this.#head] ?? 0) + 1;
  }

  /** Calls and failures inside the window. */
  counts(): { total: number; failed: number } {
    this.#roll(this.#clock.now());
    let total = 0;
    let failed = 0;
    for (let i = 0; i < this.#total.length; i++) {
      total += this.#total[i] ?? 0;
      failed += this.#failed[i] ?? 0;
    }
    return { total, failed };
  }

  /** failed / total, 0 when empty. */
  rate(): number {
    const { total, failed } = this.counts();
    return total === 0 ? 0 : failed / total;
  }

  clear(): void {
    this.#total.fill(0);
    this.#failed.fill(0);
    this.#headStart = this.#clock.now();
  }

  #roll(now: number): void {
    // A clock set back: the newest slot starts now, so the window keeps moving
    // instead of standing still for as long as the step.
    if (now < this.#headStart) this.#headStart = now;
    const steps = Math.floor((now - this.#headStart) / this.#size);
    if (steps <= 0) return;
    const n = this.#total.length;
    for (let i = 0; i < Math.min(steps, n); i++) {
      this.#head = (this.#head + 1) % n;
      this.#total[this.#head] = 0;
      this.#failed[this.#head] = 0;
    }
    this.#headStart += steps * this.#size;
  }
}
