import type { Clock } from "../core/clock.ts";
import { errorName } from "../core/error-detail.ts";
import { redactUrl } from "../core/redact-url.ts";
import { RollingWindow } from "../policies/rolling-window.ts";
import { isServiceFailureStatus } from "./send/classify.ts";

/** One failed call, as `debugInfo()` lists it. URLs lose their query (it may hold keys). */
export interface ErrorRecord {
  time: number;
  key: string;
  url: string;
  status: number | undefined;
  error: string | undefined;
  durationMs: number;
}

const HISTORY = 50;
const WINDOW_MS = 60_000;

/**
 * Settled calls over the last minute (error rate) and the last failures (StoryCore-Engine's
 * `error_analytics`). Constant memory: a bucketed window and a ring
 * of {@link HISTORY} records.
 */
export class Analytics {
  readonly #window: RollingWindow;
  readonly #clock: Clock;
  #history: ErrorRecord[] = [];
  #calls = 0;
  #failures = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#window = new RollingWindow(clock, WINDOW_MS);
  }

  /**
   * Counts one settled call; `now` is when it settled (the caller has just
   * read the clock). A call without a status failed, unless `failed` says
   * otherwise (work of `execute`, which has none).
   */
  record(
    key: string,
    url: string,
    status: number | undefined,
    error: unknown,
    durationMs: number,
    now: number = this.#clock.now(),
    failed: boolean = status === undefined || isServiceFailureStatus(status),
  ): void {
    this.#window.record(failed, now);
    this.#calls++;
    if (!failed) return;
    this.#failures++;
    this.#history.push({
      time: now,
      key,
      url: redactUrl(url),
      status,
      // A work's own error (through `execute`) may carry any name: URLs in it are cut.
      error: error === undefined ? undefined : errorName(error),
      durationMs,
    });
    if (this.#history.length > HISTORY) this.#history.shift();
  }

  /** Failed / settled calls over the last minute. */
  errorRate(): number {
    return this.#window.rate();
  }

  totals(): { calls: number; failures: number; window: { total: number; failed: number } } {
    return { calls: this.#calls, failures: this.#failures, window: this.#window.counts() };
  }

  recentErrors(): ErrorRecord[] {
    // Copies: a caller that edits what it got (a log formatter) changes no later read.
    return this.#history.map((record) => ({ ...record }));
  }

  /** Forgets history and counts (StoryCore-Engine's `error_analytics.clear_history()`). */
  clearHistory(): void {
    this.#history = [];
    this.#calls = 0;
    this.#failures = 0;
    this.#window.clear();
  }
}
