import type { BreakerOptions } from "../core/options/breaker-options.ts";
import { breakerDefaults, resolveBreaker } from "../core/options/breaker-options.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { breakerRules } from "../core/options/option-rules.ts";
import type { BreakerEvent } from "../core/resilience-events.ts";
import { CircuitBreaker } from "../policies/circuit-breaker.ts";
import type { ResolvedOptions } from "./resilience-options.ts";

/**
 * `resilience.breaker(name, options?)`: named breakers for any async work.
 * A name is created once; later calls return the same breaker (options are
 * only read the first time, as StoryCore-Engine's `get_circuit_breaker` does).
 */
export function createNamedBreakers(
  config: ResolvedOptions,
  onChange: (change: BreakerEvent) => void,
): { get: (name: string, options?: BreakerOptions) => CircuitBreaker; all: ReadonlyMap<string, CircuitBreaker> } {
  const all = new Map<string, CircuitBreaker>();
  const base =
    config.breaker ?? resolveBreaker(undefined, { ...breakerDefaults, isFailure: undefined, key: undefined });
  const get = (name: string, options?: BreakerOptions): CircuitBreaker => {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`resilience.breaker(name): expected a non-empty string, got ${JSON.stringify(name)}`);
    }
    const existing = all.get(name);
    if (existing) return existing;
    if (options !== undefined) checkOptions(breakerRules, options, `breaker("${name}")`);
    const policy = resolveBreaker(options, base) as NonNullable<typeof base>;
    const breaker = new CircuitBreaker(name, policy, config.clock, { isFailure: policy.isFailure, onChange });
    all.set(name, breaker);
    return breaker;
  };
  return { get, all };
}
