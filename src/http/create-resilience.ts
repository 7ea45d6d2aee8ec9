import type { BrowserBuild } from "../core/browser-build.ts";
import { Emitter, type Listener } from "../core/events.ts";
import type { BreakerOptions } from "../core/options/breaker-options.ts";
import { type ResilienceEvents, resilienceEventNames } from "../core/resilience-events.ts";
import { BreakerRegistry } from "../policies/breaker-registry.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import { RetryBudget } from "../policies/retry-budget.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { unawaitedStore } from "../stores/unawaited-store.ts";
import { Analytics } from "./analytics.ts";
import { createExecute, type Execute } from "./execute.ts";
import { globalFetch } from "./global-fetch.ts";
import { createDebugInfo, createHealth, type DebugInfo, type HealthSnapshot } from "./health.ts";
import { namedBreaker } from "./named-breakers.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import { createKeyOf } from "./request/key-of.ts";
import type { FetchLike, ResilienceOptions } from "./resilience-options.ts";
import { createResilientFetch } from "./resilient-fetch.ts";
import { resolveOptions } from "./resolve-options.ts";
import { bytesAsBlob } from "./send/bytes-as-blob.ts";
import { defaultRedirectMode, followingFetch } from "./send/follow-redirects.ts";
import { admitHop } from "./send/send-attempt.ts";
import type { DegradationControl, DegradationStage, FallbackChains, FallbackStage, StageHandles } from "./stages.ts";

/**
 * One resilience layer: its `fetch`, generic `execute`, breakers, events and
 * health, and the handles of the opt-in stages it was created with.
 */
export interface Resilience {
  /**
   * A bound, fetch-compatible function: retries, budgets, per-host breakers
   * and timeouts applied. Resolves with a Response (even a 503) whenever it
   * has one to give; rejects when it has none, or on an abort or `timeout.total`.
   */
  readonly fetch: FetchLike;
  /** Runs any async work under the same retry policy and budget. */
  readonly execute: Execute;
  /**
   * A named breaker for any async work (StoryCore-Engine's `get_circuit_breaker`):
   * created on first use with `options` over the instance's `breaker`
   * options, then returned as is.
   */
  breaker(name: string, options?: BreakerOptions): CircuitBreaker;
  /**
   * The fallback chains, by name (`resilience.fallback.chain(name)`, the
   * StoryCore-Engine guide's `get_fallback_chain`); `undefined` unless the
   * layer was created with the `fallback` stage.
   */
  readonly fallback: FallbackChains | undefined;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof ResilienceEvents>(name: K, listener: Listener<ResilienceEvents[K]>): () => void;
  /** A plain-JSON snapshot of the layer's state. */
  health(): HealthSnapshot;
  /** `health()` plus recent errors, totals and the options in force. */
  debugInfo(): DebugInfo;
  /**
   * Graceful degradation: levels, triggers, `adjust(params)`; `undefined`
   * unless the layer was created with the `degradation` stage.
   */
  readonly degradation: DegradationControl | undefined;
  /** StoryCore-Engine's `error_analytics`. */
  readonly analytics: { clearHistory(): void };
}

/**
 * Creates a resilience layer (StoryCore-Engine's `ErrorHandlingSystem()`). Options
 * are validated at once: a bad value throws `ConfigError` naming its path.
 *
 * @example
 * const resilience = createResilience({ retry: { maxAttempts: 4 }, timeout: { total: 120_000 } });
 * const res = await resilience.fetch("https://api.example/v1/images", { method: "POST", body });
 */
export function createResilience<
  F extends FallbackStage | false | undefined = undefined,
  D extends DegradationStage | false | undefined = undefined,
>(options?: ResilienceOptions & { fallback?: F; degradation?: D }): Resilience & StageHandles<F, D> {
  const config = resolveOptions(options);
  const events = new Emitter<ResilienceEvents>(resilienceEventNames);
  const budget = config.budget ? new RetryBudget(config.budget, config.clock) : undefined;
  const analytics = new Analytics(config.clock);
  const onChange = (change: ResilienceEvents["breaker"]): void => events.emit("breaker", change);
  const onStore = (event: ResilienceEvents["store"]): void => events.emit("store", event);
  // Built only when someone listens (an event object is not built for no one).
  const store = config.store && unawaitedStore(config.store, (build) => events.has("store") && onStore(build()));
  const breakers = new BreakerRegistry(config.breaker, config.clock, {
    bulkhead: config.bulkhead,
    store,
    onChange,
  });
  // The pipeline sees the registry only when per-host breakers are on.
  const registry = breakers.perHost ? breakers : undefined;
  const breaker = namedBreaker(config, breakers);
  // Without a `fetch` of its own, the layer sends through the global one, past itself when installed there.
  const global = globalFetch();
  const userFetch = config.fetch && global.given(config.fetch);
  const redirects = config.redirects ?? defaultRedirectMode();
  const platform = userFetch
    ? () => userFetch
    : !(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ && redirects === "platform"
      ? blobbingGlobalFetch(global.found)
      : global.found;
  // The flag is read at each use: a bundler folds that expression, not a variable holding it.
  const following =
    !(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ && redirects === "library"
      ? followingFetch(
          platform,
          config.crossOriginHeaders,
          events,
          config.maxReplayBytes,
          (url, from, signal, fromKey) => admitHop(parts, url, from, signal, fromKey),
        )
      : undefined;
  const parts: PipelineParts = {
    retry: config.retry,
    timeout: config.timeout,
    clock: config.clock,
    random: config.random,
    // Asked for once as each call starts: a runtime without fetch is the
    // caller's mistake, refused at once, never an attempt that failed.
    transport: following
      ? () => {
          platform();
          return following;
        }
      : platform,
    platform,
    budget,
    events,
    registry,
    keyOf: createKeyOf(config.breaker?.key),
    analytics,
    chains: undefined,
    levels: undefined,
    store: config.breaker ? store : undefined,
    ownTimeouts: following ? new WeakMap() : undefined,
    maxReplayBytes: config.maxReplayBytes,
    crossOriginHeaders: config.crossOriginHeaders,
    normalize: {
      idempotentMethods: config.retry.methods,
      addIdempotencyKey: config.retry.idempotencyKey,
      maxReplayBytes: config.maxReplayBytes,
      follows: following !== undefined,
    },
  };
  if (config.breaker) {
    // The thresholds alone, plain numbers a store may hand on (by `postMessage` too): not your `isFailure` or `key`.
    const { isFailure, key, maxHosts, ...thresholds } = config.breaker;
    store?.configure?.(thresholds, config.clock);
  }
  // The opt-in stages join after the parts exist: they run on them.
  const chains = config.fallback?.join(parts);
  const levels = config.degradation?.join(parts);
  parts.chains = chains?.stage;
  parts.levels = levels?.stage;
  // Recorded as a layer's, whatever its transport: installed, it is passed over, and a request handed back to
  // it (by a wrapper installed over it) while another layer sends it goes to the fetch beneath it.
  const fetch = global.own(createResilientFetch(parts));
  const sources = { config, redirects, budget, registry, named: breakers.namedBreakers(), analytics, parts };
  const health = createHealth(sources);
  const layer: Resilience = {
    fetch,
    execute: createExecute(
      config,
      parts,
      (name) => breaker(name),
      (named) => breakers.waitingOn(named),
    ),
    breaker,
    fallback: chains?.handle,
    on: store?.connect ? storeEventsOnDemand(events, store, onStore) : (name, listener) => events.on(name, listener),
    degradation: levels?.handle,
    health,
    debugInfo: createDebugInfo(sources, health),
    analytics: { clearHistory: () => analytics.clearHistory() },
  };
  // The handles' types follow the stages passed (see `StageHandles`).
  return layer as Resilience & StageHandles<F, D>;
}

/**
 * The layer's `on`, which subscribes to a store's events only while the
 * layer has a `store` listener: a store lives across layers (one per
 * isolate, a layer per request), and one that kept every layer it ever
 * told would keep them all, and their listeners, for its life.
 */
function storeEventsOnDemand(
  events: Emitter<ResilienceEvents>,
  store: BreakerStore,
  onStore: (event: ResilienceEvents["store"]) => void,
): Resilience["on"] {
  let disconnect: (() => void) | undefined;
  return (name, listener) => {
    const off = events.on(name, listener);
    if (name !== "store") return off;
    disconnect ??= store.connect?.(onStore, () => events.has("store")) ?? (() => {});
    return () => {
      off();
      if (events.has("store")) return;
      disconnect?.();
      disconnect = undefined;
    };
  };
}

/** The global fetch sent bytes as a `Blob` (see bytes-as-blob.ts), wrapped once per fetch it finds. */
function blobbingGlobalFetch(globalFetch: () => FetchLike): () => FetchLike {
  let found: FetchLike | undefined;
  let wrapped: FetchLike | undefined;
  return () => {
    const fetch = globalFetch();
    if (fetch !== found) {
      found = fetch;
      wrapped = bytesAsBlob(fetch);
    }
    return wrapped as FetchLike;
  };
}
