import { Emitter, type Listener } from "../core/events.ts";
import type { FetchLike, ResilienceOptions } from "../core/options/resilience-options.ts";
import { resolveOptions } from "../core/options/resolve-options.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import { RetryBudget } from "../policies/retry-budget.ts";
import { createExecute, type Execute } from "./execute.ts";
import { createFetchPipeline } from "./fetch-pipeline.ts";
import { createHealth, type HealthSnapshot } from "./health.ts";

/** One resilience layer: its `fetch`, generic `execute`, events and health. */
export interface Resilience {
  /**
   * A bound, fetch-compatible function: retries, budgets and timeouts applied.
   * Resolves with the last Response (even a 503); rejects only without one.
   */
  readonly fetch: FetchLike;
  /** Runs any async work under the same retry policy and budget. */
  readonly execute: Execute;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof ResilienceEvents>(name: K, listener: Listener<ResilienceEvents[K]>): () => void;
  /** A plain-JSON snapshot of the layer's state. */
  health(): HealthSnapshot;
}

/**
 * Creates a resilience layer (the seed's `ErrorHandlingSystem()`). Options
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
  const userFetch = config.fetch;
  const transport = userFetch ? () => userFetch : globalFetch;
  const fetch = createFetchPipeline({
    retry: config.retry,
    timeout: config.timeout,
    clock: config.clock,
    random: config.random,
    transport,
    budget,
    events,
  });
  return {
    fetch,
    execute: createExecute(config, budget),
    on: (name, listener) => events.on(name, listener),
    health: createHealth(config, budget),
  };
}

function globalFetch(): FetchLike {
  const fetch = globalThis.fetch;
  if (typeof fetch !== "function") {
    throw new TypeError("resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option");
  }
  return fetch;
}
