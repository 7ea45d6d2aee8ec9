import { type Clock, systemClock } from "../core/clock.ts";
import type { ResolvedBudget } from "../core/options/budget-options.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { budgetRules, clockArgRules } from "../core/options/option-rules.ts";

/** Plain state of a {@link RetryBudget}, as `health()` shows it. */
export interface RetryBudgetSnapshot {
  tokens: number;
  ratio: number;
  minPerSecond: number;
  /**
   * Retries the budget let go, each for a token. A retry is let go before
   * its wait: one whose wait a breaker's opening then ended, or that a full
   * bulkhead refused, counts here though it was never sent.
   */
  retriesAllowed: number;
  /** Retries refused for want of a token: the call ended on its last answer instead. */
  retriesDenied: number;
}

/**
 * A token bucket shared by every call of one `Resilience` (SRE book ch. 21,
 * Finagle's RetryBudget). Two pools:
 * - earned: each request adds `ratio`, capped at the credit of the last 100
 *   requests, so a long healthy spell cannot bank an unbounded retry burst;
 * - free: refills at `minPerSecond` up to `minPerSecond` (one retry's worth
 *   at least), so a quiet client can still retry.
 * An empty bucket refuses the retry at once; it never makes a caller wait.
 */
export class RetryBudget {
  readonly #clock: Clock;
  readonly #ratio: number;
  readonly #perSecond: number;
  /**
   * Requests credited, at most 100: kept in requests, not tokens, so a
   * deposit taken back is undone exactly (a retry takes `1 / ratio`, which
   * may leave a fraction).
   */
  #credit = 0;
  #free: number;
  #lastRefill: number;
  #allowed = 0;
  #denied = 0;

  constructor(options: ResolvedBudget, clock: Clock = systemClock) {
    checkOptions(budgetRules, options, "RetryBudget", ["ratio", "minPerSecond"]);
    checkOptions(clockArgRules, { clock }, "RetryBudget");
    this.#clock = clock;
    this.#ratio = options.ratio;
    this.#perSecond = options.minPerSecond;
    this.#free = options.minPerSecond;
    this.#lastRefill = clock.now();
  }

  /**
   * Records `count` logical requests (one by default; a fraction counts as
   * that share of one); a negative count takes back ones that turned out to
   * be none (a call its platform refused before sending anything). Returns
   * how many were kept: fewer, or none, as the budget reaches its most (or
   * 0), so that taking back that many undoes exactly what was kept.
   */
  deposit(count = 1): number {
    // NaN would stop the budget earning for good: refused at once.
    if (!Number.isFinite(count))
      throw new TypeError(`RetryBudget#deposit: count must be a finite number, got ${typeof count} ${String(count)}`);
    // `0 - credit`, not `-credit`: nothing taken back from nothing is 0, not -0.
    const kept = Math.max(0 - this.#credit, Math.min(100 - this.#credit, count));
    this.#credit += kept;
    // With a `ratio` of 0 nothing is ever earned.
    return this.#ratio && kept;
  }

  /** Spends a token for one retry; false when none is left. */
  tryRetry(): boolean {
    this.#refill();
    // A token is whole within a rounding error of the product (a ratio of
    // 1 - 1e-9 earns 0.999999999 a request: not a token, but two are).
    if (this.#credit * this.#ratio > 1 - 1e-9) this.#credit = Math.max(0, this.#credit - 1 / this.#ratio);
    else if (this.#free >= 1) this.#free -= 1;
    else {
      this.#denied++;
      return false;
    }
    this.#allowed++;
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    this.#refill();
    return {
      tokens: this.#credit * this.#ratio + this.#free,
      ratio: this.#ratio,
      minPerSecond: this.#perSecond,
      retriesAllowed: this.#allowed,
      retriesDenied: this.#denied,
    };
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#lastRefill;
    // Up to one retry's worth at least: `minPerSecond: 0.5` is one free retry every 2 s.
    if (elapsed > 0)
      this.#free = Math.min(Math.max(this.#perSecond, 1), this.#free + (elapsed * this.#perSecond) / 1000);
    // Taken after a clock set back too: the refill goes on from now, not from where the clock was.
    this.#lastRefill = now;
  }
}
