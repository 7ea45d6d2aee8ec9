import { Emitter, type Listener } from "../core/events.ts";
import type { BreakerOptions } from "../core/options/breaker-options.ts";
import type { FetchLike, ResilienceOptions } from "../core/options/resilience-options.ts";
import { resolveOptions } from "../core/options/resolve-options.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import { BreakerRegistry } from "../policies/breaker-registry.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import { FallbackChain } from "../policies/fallback-chain.ts";
import { RetryBudget } from "../policies/retry-budget.ts";
import { Analytics } from "./analytics.ts";
import { ChainRouter } from "./chain-router.ts";
import { createExecute, type Execute } from "./execute.ts";
import { defaultRedirectMode, followingFetch } from "./follow-redirects.ts";
import { GracefulDegradation } from "./graceful-degradation.ts";
import { createDebugInfo, createHealth, type DebugInfo, type HealthSnapshot } from "./health.ts";
import { createKeyOf } from "./key-of.ts";
import { createNamedBreakers } from "./named-breakers.ts";
import { createResilientFetch } from "./resilient-fetch.ts";
import { type ChainCall, tryEndpoint } from "./try-endpoints.ts";

/** One resilience layer: its `fetch`, generic `execute`, breakers, events and health. */
export interface Resilience {
  /**
   * A bound, fetch-compatible function: retries, budgets, per-host breakers
   * and timeouts applied. Resolves with the last Response (even a 503);
   * rejects only without one.
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
   * A fallback chain by name (StoryCore-Engine's `get_fallback_chain`). A chain
   * configured in `fallback` is returned with its HTTP endpoints (its input
   * is the caller's request); any other name gets a new chain for any async
   * work, filled with `add(fn, { name, expectedQuality })`.
   */
  fallbackChain<I = unknown, O = unknown>(
    name: string,
    options?: { order?: "fixed" | "adaptive" },
  ): FallbackChain<I, O>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof ResilienceEvents>(name: K, listener: Listener<ResilienceEvents[K]>): () => void;
  /** A plain-JSON snapshot of the layer's state. */
  health(): HealthSnapshot;
  /** `health()` plus recent errors, totals and the options in force. */
  debugInfo(): DebugInfo;
  /** Graceful degradation: levels, triggers, `adjust(params)`. */
  readonly degradation: GracefulDegradation;
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
export function createResilience(options?: ResilienceOptions): Resilience {
  const config = resolveOptions(options);
  const events = new Emitter<ResilienceEvents>();
  const budget = config.budget ? new RetryBudget(config.budget, config.clock) : undefined;
  const analytics = new Analytics(config.clock);
  const onChange = (change: ResilienceEvents["breaker"]): void => events.emit("breaker", change);
  const registry = config.breaker
    ? new BreakerRegistry(config.breaker, config.clock, { bulkhead: config.bulkhead, store: config.store, onChange })
    : undefined;
  const named = createNamedBreakers(config, onChange);
  const router = new ChainRouter<ChainCall>(config.fallback, config.clock, tryEndpoint);
  const degradation = new GracefulDegradation(config.degradation, config.clock, events);
  const userFetch = config.fetch;
  const platform = userFetch ? () => userFetch : globalFetch;
  const redirects = config.redirects ?? defaultRedirectMode();
  const following = redirects === "library" ? followingFetch(platform, config.crossOriginHeaders, events) : undefined;
  const parts = {
    retry: config.retry,
    timeout: config.timeout,
    clock: config.clock,
    random: config.random,
    transport: following ? () => following : platform,
    budget,
    events,
    registry,
    keyOf: createKeyOf(config.breaker?.key),
    analytics,
    router,
    degradation,
    degradationConfig: config.degradation,
    store: config.breaker ? config.store : undefined,
    maxReplayBytes: config.maxReplayBytes,
    crossOriginHeaders: config.crossOriginHeaders,
    normalize: {
      idempotentMethods: config.retry.methods,
      addIdempotencyKey: config.retry.idempotencyKey,
      maxReplayBytes: config.maxReplayBytes,
    },
  };
  config.store?.connect?.((event) => events.emit("store", event));
  if (config.breaker) config.store?.configure?.(config.breaker);
  const fetch = createResilientFetch(parts);
  const chains = new Map<string, FallbackChain<unknown, unknown>>();
  for (const route of router.routes) chains.set(route.options.name, route.chain as FallbackChain<unknown, unknown>);
  const sources = { config, redirects, budget, registry, named: named.all, analytics, chains, degradation };
  const health = createHealth(sources);
  return {
    fetch,
    execute: createExecute(config, budget, (name) => named.get(name)),
    breaker: named.get,
    fallbackChain: <I, O>(name: string, options?: { order?: "fixed" | "adaptive" }) => {
      if (typeof name !== "string" || name.length === 0) {
        throw new TypeError(`resilience.fallbackChain(name): expected a non-empty string, got ${JSON.stringify(name)}`);
      }
      let chain = chains.get(name);
      if (!chain) {
        chain = new FallbackChain(name, { order: options?.order, clock: config.clock });
        chains.set(name, chain);
      }
      return chain as FallbackChain<I, O>;
    },
    on: (name, listener) => events.on(name, listener),
    degradation,
    health,
    debugInfo: createDebugInfo(sources, health),
    analytics: { clearHistory: () => analytics.clearHistory() },
  };
}

function globalFetch(): FetchLike {
  const fetch = globalThis.fetch;
  if (typeof fetch !== "function") {
    throw new TypeError("resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option");
  }
  return fetch;
}
