import type { BreakerSnapshot } from "../breaker-snapshot.ts";
import type { Clock } from "../clock.ts";
import type { Random } from "../random.ts";
import type { BreakerOptions, ResolvedBreaker, ResolvedBreakerPolicy } from "./breaker-options.ts";
import type { BudgetOptions, ResolvedBudget } from "./budget-options.ts";
import type { BulkheadOptions, ResolvedBulkhead } from "./bulkhead-options.ts";
import type { DegradationOptions, ResolvedDegradation } from "./degradation-options.ts";
import type { FallbackChainOptions } from "./fallback-options.ts";
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
  /** Per-host circuit breakers; `false` turns them off. */
  breaker?: BreakerOptions | false;
  /** Per-host concurrency limit. Off by default. */
  bulkhead?: BulkheadOptions;
  /**
   * Where breaker transitions are shared (`memoryStore()`, `kvStore(…)`,
   * `durableObjectStore(…)`).
   * @default none: each instance's breakers are its own
   */
  store?: BreakerStoreLike;
  /** Fallback chains across endpoints and providers. */
  fallback?: FallbackChainOptions[];
  /** Graceful degradation: levels, triggers and request rewriting rules. */
  degradation?: DegradationOptions;
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
  crossOriginHeaders?: string[];
  /**
   * Who follows the redirects of a `redirect: "follow"` call. `"library"`
   * follows them hop by hop with `redirect: "manual"` and, from the first
   * hop to another origin on, sends only the cross-origin allowlist (see
   * `crossOriginHeaders`); `"platform"` leaves them to `fetch`, which drops
   * only `Authorization` and cookies. Browsers hide redirect responses from script, so there
   * only `"platform"` works.
   * @default "platform" in browsers (a `document` or `importScripts` exists), else "library"
   */
  redirects?: "library" | "platform";
  /**
   * Largest request body kept in memory for retries and fallbacks, in bytes.
   * A larger one is sent once, without retries, and a `replay` event says so.
   * @default 8388608 (8 MiB)
   */
  maxReplayBytes?: number;
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

/** Why a store was bypassed or what it did, as the `store` event reports it. */
export interface StoreEvent {
  store: string;
  key: string;
  /** "read", "write", "report", "probe", "validate", "budget", "waitUntil". */
  operation: string;
  /** "ok", "skipped", "failed", "timeout", "rejected". */
  outcome: string;
  detail?: string;
}

export type StoreEventListener = (event: StoreEvent) => void;

/** Something that keeps background work alive (a Worker's `ExecutionContext`). */
export interface WaitUntilLike {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * The store contract as options see it (documented in
 * `stores/breaker-store.ts`; core cannot import from stores). Only `name`,
 * `publish` and `peek` are required; the rest serve remote coordinators.
 */
export interface BreakerStoreLike {
  readonly name: string;
  publish(key: string, snapshot: BreakerSnapshot): void;
  peek(key: string, now: number): BreakerSnapshot | undefined;
  /** One settled attempt for `key` (for stores that batch outcomes); `probe` is a remote lease. */
  record?(key: string, failed: boolean, now: number, probe?: string): void;
  /**
   * Asks for a remote probe lease before a half-open probe leaves. `true` or
   * a lease id grants it, `false` refuses; a store that cannot answer in time
   * resolves `undefined` and the local breaker decides.
   */
  acquireProbe?(key: string, now: number): Promise<boolean | string | undefined>;
  /** The current request's context, for background work (`ctx.waitUntil`). */
  bindContext?(ctx: WaitUntilLike): void;
  /** Subscribes to the store's events; returns the unsubscribe function. */
  connect?(listener: StoreEventListener): () => void;
  /** Receives the layer's breaker thresholds (a coordinator applies them). */
  configure?(policy: ResolvedBreakerPolicy): void;
}

/** @internal Options with every default applied. */
export interface ResolvedOptions {
  retry: ResolvedRetry;
  budget: ResolvedBudget | undefined;
  timeout: ResolvedTimeout;
  breaker: ResolvedBreaker | undefined;
  bulkhead: ResolvedBulkhead | undefined;
  store: BreakerStoreLike | undefined;
  fallback: FallbackChainOptions[];
  degradation: ResolvedDegradation;
  crossOriginHeaders: string[];
  /** Unset means the runtime decides (see `defaultRedirectMode`). */
  redirects: "library" | "platform" | undefined;
  maxReplayBytes: number;
  fetch: FetchLike | undefined;
  clock: Clock;
  random: Random;
}
