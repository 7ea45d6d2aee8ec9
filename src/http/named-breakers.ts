import type { BreakerOptions } from "../core/options/breaker-options.ts";
import { breakerDefaults, resolveBreaker } from "../core/options/breaker-options.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { breakerRules } from "../core/options/option-rules.ts";
import { shownName } from "../core/shown-name.ts";
import type { BreakerRegistry } from "../policies/breaker-registry.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import type { ResolvedOptions } from "./resilience-options.ts";

/**
 * `resilience.breaker(name, options?)`: named breakers for any async work,
 * kept in the layer's one {@link BreakerRegistry}. A name is created once;
 * later calls return the same breaker (options are checked whenever given,
 * but applied only the first time, as StoryCore-Engine's
 * `get_circuit_breaker` reads them). Their options
 * default to the layer's `breaker` options, or to the defaults when per-host
 * breakers are off.
 */
export function namedBreaker(
  config: ResolvedOptions,
  registry: BreakerRegistry,
): (name: string, options?: BreakerOptions) => CircuitBreaker {
  const base =
    config.breaker ?? resolveBreaker(undefined, { ...breakerDefaults, isFailure: undefined, key: undefined });
  return (name, options) => {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`resilience.breaker(name): expected a non-empty string, got ${shownName(name)}`);
    }
    // Checked on every call that passes them, as options are; applied on the first only.
    if (options !== undefined) checkOptions(breakerRules, options, `breaker("${name}")`);
    return registry.named(name, () => resolveBreaker(options, base) as NonNullable<typeof base>);
  };
}
