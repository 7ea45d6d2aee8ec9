import type { ResolvedOptions } from "../core/options/resilience-options.ts";
import type { RetryOptions } from "../core/options/retry-options.ts";
import { retrySchema } from "../core/options/schema.ts";
import { validate } from "../core/options/validate.ts";
import { type AttemptContext, retry } from "../policies/retry.ts";
import type { RetryBudget } from "../policies/retry-budget.ts";

/** Options of `resilience.execute` (the seed's `execute_with_resilience`). */
export interface ExecuteOptions {
  /**
   * Retry options for this work, over the instance's; `false` for one attempt.
   * @default the instance's `retry` options
   */
  retry?: RetryOptions | false;
  signal?: AbortSignal;
}

export type Execute = <T>(fn: (context: AttemptContext) => T | Promise<T>, options?: ExecuteOptions) => Promise<T>;

/**
 * `execute(fn)` runs any async work, not only HTTP, with the instance's
 * retry options, clock, randomness and shared retry budget. Thrown errors
 * are retried unless `retryOn.error` says otherwise.
 */
export function createExecute(config: ResolvedOptions, budget: RetryBudget | undefined): Execute {
  const base = config.retry;
  return (fn, options = {}) => {
    if (options.retry !== undefined && options.retry !== false) validate(retrySchema, options.retry, "execute.retry");
    const own = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
    budget?.deposit();
    return retry(fn, {
      maxAttempts: base.maxAttempts,
      initialDelay: base.initialDelay,
      maxDelay: base.maxDelay,
      exponentialBase: base.exponentialBase,
      jitter: base.jitter,
      ...(base.error ? { retryOn: { error: base.error } } : {}),
      ...own,
      clock: config.clock,
      random: config.random,
      ...(budget ? { budget } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  };
}
