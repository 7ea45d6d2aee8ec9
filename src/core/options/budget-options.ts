import { withDefaults } from "./with-defaults.ts";

/**
 * The retry budget: a token bucket per `Resilience` instance that keeps an
 * outage from being multiplied by retries (Google SRE book, ch. 21: a
 * per-client budget of 10% brings load under retries from ~3x to ~1.1x).
 */
export interface BudgetOptions {
  /**
   * Tokens earned by every request; each retry spends one.
   * @default 0.1
   */
  ratio?: number | undefined;
  /**
   * Free retries a second on top of the earned ones, so a quiet client can
   * still retry.
   * @default 10
   */
  minPerSecond?: number | undefined;
}

export interface ResolvedBudget {
  ratio: number;
  minPerSecond: number;
}

export const budgetDefaults: Readonly<ResolvedBudget> = { ratio: 0.1, minPerSecond: 10 };

/** `false` turns the budget off (retries limited by `maxAttempts` only). */
export function resolveBudget(options: BudgetOptions | false | undefined): ResolvedBudget | undefined {
  if (options === false) return undefined;
  return withDefaults(budgetDefaults, options ?? {});
}
