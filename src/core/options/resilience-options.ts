import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { BudgetOptions, ResolvedBudget } from "./budget-options.ts";
import type { ResolvedRetry, RetryOptions } from "./retry-options.ts";
import type { ResolvedTimeout, TimeoutOptions } from "./timeout-options.ts";

/** A fetch-compatible function. */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** Options of `createResilience`; every field is optional. */
export interface ResilienceOptions {
  /** Retry policy; `false` makes every call a single attempt. */
  retry?: RetryOptions | false;
  /** Retry budget shared by all calls; `false` turns it off. */
  budget?: BudgetOptions | false;
  timeout?: TimeoutOptions;
  /**
   * The transport.
   * @default `globalThis.fetch`, looked up at call time so MSW and polyfills can patch it
   */
  fetch?: FetchLike;
  /** Injected time (tests). @default the system clock */
  clock?: Clock;
  /** Injected randomness (tests). @default Math.random */
  random?: Random;
}

/** @internal Options with every default applied. */
export interface ResolvedOptions {
  retry: ResolvedRetry;
  budget: ResolvedBudget | undefined;
  timeout: ResolvedTimeout;
  fetch: FetchLike | undefined;
  clock: Clock;
  random: Random;
}
