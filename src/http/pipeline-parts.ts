import type { Clock } from "../core/clock.ts";
import type { TimeoutError } from "../core/errors.ts";
import type { Emitter } from "../core/events.ts";
import type { ResolvedRetry } from "../core/options/retry-options.ts";
import type { ResolvedTimeout } from "../core/options/timeout-options.ts";
import type { Random } from "../core/random.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import type { BreakerRegistry } from "../policies/breaker-registry.ts";
import type { RetryBudget } from "../policies/retry-budget.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import type { Analytics } from "./analytics.ts";
import type { NormalizeOptions } from "./request/normalize-request.ts";
import type { FetchLike } from "./resilience-options.ts";
import type { ChainStage, LevelStage } from "./stages.ts";

/** What the fetch pipeline is built from; `createResilience` assembles it. */
export interface PipelineParts {
  retry: ResolvedRetry;
  timeout: ResolvedTimeout;
  clock: Clock;
  random: Random;
  /** Returns the transport at call time (so MSW and polyfills can patch fetch). */
  transport: () => FetchLike;
  /** The same without the redirect follower: a URL that reads no network goes to it as it is. */
  platform: () => FetchLike;
  budget: RetryBudget | undefined;
  events: Emitter<ResilienceEvents>;
  /** Per-host breakers and bulkheads; absent when breakers are off. */
  registry: BreakerRegistry | undefined;
  /** The breaker key of a URL (its host unless `breaker.key` says otherwise). */
  keyOf: (url: string) => string;
  analytics: Analytics;
  /** Headers (lower-cased) sent to other origins besides the allowlist. */
  crossOriginHeaders: readonly string[];
  maxReplayBytes: number;
  /** What normalising a call at the entry needs. */
  normalize: NormalizeOptions;
  /** The shared breaker store, if any (outcome batching, probe leases). */
  store: BreakerStore | undefined;
  /**
   * The attempt timeout this layer fired, by the signal of the attempt it
   * cut, when it follows redirects itself: a hop's abort by its own
   * attempt's timeout is the hop's failure, and any other abort (a timeout
   * of an outer layer's attempt, or of a sibling call, given as a reason
   * among them) is the caller's.
   */
  ownTimeouts: WeakMap<AbortSignal, TimeoutError> | undefined;
  /** Fallback chains by URL prefix, when the `fallback` stage joined. */
  chains: ChainStage | undefined;
  /** Graceful degradation, when the `degradation` stage joined. */
  levels: LevelStage | undefined;
}
