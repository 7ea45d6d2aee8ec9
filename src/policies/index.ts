/**
 * `@storycore/resilient-fetch/policies`: the policies behind
 * `resilience.fetch`, for any async work (StoryCore-Engine's decorators and
 * classes): `retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`,
 * `FallbackChain`, the five-level machine and `adjustParameters`. The
 * machines are pure functions over plain data (`transition`, `nextLevel`),
 * usable to drive state stored elsewhere.
 */
export { type Clock, systemClock } from "../core/clock.ts";
export { defaultLevels, LEVEL_NAMES, type LevelName, type LevelSettings } from "../core/levels.ts";
export type { ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
export type { BudgetOptions, ResolvedBudget } from "../core/options/budget-options.ts";
export { adjustParameters, type GenerationParams, type ParameterTable } from "./adjust-parameters.ts";
export { type BackoffOptions, backoffDelay, exponentialDelay } from "./backoff.ts";
export {
  type BreakerHold,
  type BreakerInput,
  type BreakerStep,
  initialBreakerState,
  transition,
} from "./breaker-state.ts";
export { Bulkhead } from "./bulkhead.ts";
export { type BreakerPermit, CircuitBreaker } from "./circuit-breaker.ts";
export {
  initialLevelState,
  type LevelInput,
  type LevelState,
  type MachineSettings,
  nextLevel,
  type Signals,
} from "./degradation-machine.ts";
export type { EndpointStatistics } from "./endpoint-stats.ts";
export {
  type ChainResult,
  type ChainRunOptions,
  type ChainStatistics,
  FallbackChain,
  type FallbackFn,
  type FallbackOrder,
} from "./fallback-chain.ts";
export { type AttemptContext, type RetryCallOptions, type RetryGate, retry } from "./retry.ts";
export { RetryBudget, type RetryBudgetSnapshot } from "./retry-budget.ts";
