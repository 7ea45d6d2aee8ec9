import type { Clock } from "../core/clock.ts";
import type { BreakerOptions, ResolvedBreaker } from "../core/options/breaker-options.ts";
import type { BudgetOptions, ResolvedBudget } from "../core/options/budget-options.ts";
import type { BulkheadOptions, ResolvedBulkhead } from "../core/options/bulkhead-options.ts";
import type { ResolvedRetry, RetryOptions } from "../core/options/retry-options.ts";
import type { ResolvedTimeout, TimeoutOptions } from "../core/options/timeout-options.ts";
import type { Random } from "../core/random.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import type { DegradationStage, FallbackStage } from "./stages.ts";

/** A fetch-compatible function. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of `createResilience`; every field is optional. */
export interface ResilienceOptions {
  /** Retry policy; `false` makes every call a single attempt. */
  retry?: RetryOptions | false | undefined;
  /** Retry budget shared by all calls; `false` turns it off. */
  budget?: BudgetOptions | false | undefined;
  timeout?: TimeoutOptions | undefined;
  /** Per-host circuit breakers; `false` turns them off. */
  breaker?: BreakerOptions | false | undefined;
  /** Per-host concurrency limit. Off by default. */
  bulkhead?: BulkheadOptions | undefined;
  /**
   * Where breaker transitions are shared (`memoryStore()`, `kvStore(…)`,
   * `durableObjectStore(…)`).
   * @default none: each instance's breakers are its own
   */
  store?: BreakerStore | undefined;
  /**
   * Fallback chains across endpoints and providers: what `fallback([…])`
   * from `@storycore/resilient-fetch/fallback` returns; `false` for none.
   * @default none
   */
  fallback?: FallbackStage | false | undefined;
  /**
   * Graceful degradation (levels, triggers, request rewriting): what
   * `degradation({…})` from `@storycore/resilient-fetch/degradation` returns;
   * `false` for none.
   * @default none: every call goes out at the `full` level, untouched
   */
  degradation?: DegradationStage | false | undefined;
  /**
   * Request headers that may go to another origin (a fallback endpoint, a
   * hedge, a redirect or a `transform` pointing elsewhere) besides the
   * allowlist: `accept`, `accept-language`, `content-language`,
   * `content-type`, `idempotency-key`, `user-agent`. Every other header of
   * the caller's (`Authorization`, `Cookie`, `x-api-key`, `api-key`…) stays
   * with the origin the caller addressed; an endpoint's own `headers` are
   * always sent.
   * @default []
   */
  crossOriginHeaders?: readonly string[] | undefined;
  /**
   * Who follows the redirects of a `redirect: "follow"` call. `"library"`
   * follows them hop by hop with `redirect: "manual"` and, from the first
   * hop to another origin on, sends only the cross-origin allowlist (see
   * `crossOriginHeaders`); `"platform"` leaves them to `fetch`, which drops
   * only `Authorization` and cookies. Browsers hide redirect responses from script, so there
   * only `"platform"` works, and the browser build (the package's `browser`
   * export condition) refuses `"library"` with a `ConfigError`.
   * @default "platform" in browsers (a `document` or `importScripts` exists) and in the browser build, else "library"
   */
  redirects?: "library" | "platform" | undefined;
  /**
   * Largest request body kept in memory for retries and fallbacks, in bytes.
   * A larger one is sent once, without retries, and a `replay` event says so.
   * @default 8388608 (8 MiB)
   */
  maxReplayBytes?: number | undefined;
  /**
   * The transport.
   * @default `globalThis.fetch`, looked up at call time so MSW and polyfills can patch it
   */
  fetch?: FetchLike | undefined;
  /** Injected time (tests). @default the system clock */
  clock?: Clock | undefined;
  /** Injected randomness (tests). @default Math.random */
  random?: Random | undefined;
}

/** @internal Options with every default applied. */
export interface ResolvedOptions {
  retry: ResolvedRetry;
  budget: ResolvedBudget | undefined;
  timeout: ResolvedTimeout;
  breaker: ResolvedBreaker | undefined;
  bulkhead: ResolvedBulkhead | undefined;
  store: BreakerStore | undefined;
  fallback: FallbackStage | undefined;
  degradation: DegradationStage | undefined;
  crossOriginHeaders: string[];
  /** Unset means the runtime decides (see `defaultRedirectMode`). */
  redirects: "library" | "platform" | undefined;
  maxReplayBytes: number;
  fetch: FetchLike | undefined;
  clock: Clock;
  random: Random;
}
