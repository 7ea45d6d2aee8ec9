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
  readonly #earnedCap: number;
  #earned = 0;
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
    this.#earnedCap = options.ratio * 100;
    this.#free = options.minPerSecond;
    this.#lastRefill = clock.now();
  }

  /**
   * Records `count` logical requests (one by default); a negative count takes
   * back ones that turned out to be none (a call its platform refused before
   * sending anything). Returns how many were kept: fewer, or none, as the
   * budget reaches its most (or 0), so that taking back that many undoes
   * exactly what was kept.
   */
  deposit(count = 1): number {
    // NaN would stop the budget earning for good: refused at once.
    if (!Number.isFinite(count))
      throw new TypeError(`RetryBudget#deposit: count must be a finite number, got ${String(count)}`);
    const before = this.#earned;
    this.#earned = Math.max(0, Math.min(this.#earnedCap, before + count * this.#ratio));
    // With a `ratio` of 0 nothing is ever kept (and 0 / 0 is no count).
    return this.#ratio && (this.#earned - before) / this.#ratio;
  }

  /** Spends a token for one retry; false when none is left. */
  tryRetry(): boolean {
    this.#refill();
    // Ten deposits of 0.1 add up to 0.9999999999999999: a token is whole
    // within a rounding error of the sum.
    if (this.#earned > 1 - 1e-9) this.#earned = Math.max(0, this.#earned - 1);
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
      tokens: this.#earned + this.#free,
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
