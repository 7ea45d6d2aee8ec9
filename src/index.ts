export type { BreakerSnapshot, BreakerStateName, RateWindow, TripRecord } from "./core/breaker-snapshot.ts";
export type { Clock } from "./core/clock.ts";
export { systemClock } from "./core/clock.ts";
export {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  FallbackExhaustedError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  ResilienceError,
  RetryExhaustedError,
  TimeoutError,
  type TimeoutPhase,
} from "./core/errors.ts";
export type { Listener } from "./core/events.ts";
export type { BreakerOptions, ResolvedBreakerPolicy } from "./core/options/breaker-options.ts";
export type { BudgetOptions, ResolvedBudget } from "./core/options/budget-options.ts";
export type { BulkheadOptions } from "./core/options/bulkhead-options.ts";
export {
  type DegradationOptions,
  type DegradationRule,
  type DegradationTriggers,
  defaultLevels,
  type LevelName,
  type LevelSettings,
  type ParamLocation,
  type ResolvedDegradation,
} from "./core/options/degradation-options.ts";
export type {
  EndpointRequest,
  FallbackChainOptions,
  FallbackEndpoint,
  JsonObject,
  TransformedRequest,
} from "./core/options/fallback-options.ts";
export type {
  BreakerStoreLike,
  FetchLike,
  ResilienceOptions,
  StoreEvent,
  StoreEventListener,
  WaitUntilLike,
} from "./core/options/resilience-options.ts";
export type { Jitter, RetryOn, RetryOptions } from "./core/options/retry-options.ts";
export type { TimeoutOptions } from "./core/options/timeout-options.ts";
export type { Random } from "./core/random.ts";
export type {
  BreakerEvent,
  DegradationEvent,
  FallbackEvent,
  RedirectEvent,
  ReplayEvent,
  RequestEvent,
  ResilienceEvents,
  RetryEvent,
} from "./core/resilience-events.ts";
export type { StandardResult, StandardSchemaLike } from "./core/standard-schema.ts";
export type { ErrorRecord } from "./http/analytics.ts";
export { createResilience, type Resilience } from "./http/create-resilience.ts";
export type { Execute, ExecuteOptions } from "./http/execute.ts";
export { type CurrentLevel, GracefulDegradation } from "./http/graceful-degradation.ts";
export type { BreakerHealth, DebugInfo, HealthSnapshot } from "./http/health.ts";
export { getResilienceInfo, type ResilienceInfo } from "./http/resilience-info.ts";
export { parseRetryAfter } from "./http/retry-after.ts";
export { adjustParameters, type GenerationParams, type ParameterTable } from "./policies/adjust-parameters.ts";
export { type BackoffOptions, backoffDelay, exponentialDelay } from "./policies/backoff.ts";
export { type BreakerInput, type BreakerStep, initialBreakerState, transition } from "./policies/breaker-state.ts";
export { Bulkhead } from "./policies/bulkhead.ts";
export { type BreakerPermit, CircuitBreaker } from "./policies/circuit-breaker.ts";
export {
  initialLevelState,
  type LevelInput,
  type LevelState,
  type MachineSettings,
  nextLevel,
  type Signals,
} from "./policies/degradation-machine.ts";
export type { EndpointStatistics } from "./policies/endpoint-stats.ts";
export {
  type ChainResult,
  type ChainRunOptions,
  type ChainStatistics,
  FallbackChain,
  type FallbackFn,
  type FallbackOrder,
} from "./policies/fallback-chain.ts";
export { type AttemptContext, type RetryCallOptions, type RetryGate, retry } from "./policies/retry.ts";
export { RetryBudget, type RetryBudgetSnapshot } from "./policies/retry-budget.ts";
export type { BreakerStore } from "./stores/breaker-store.ts";
export { type MemoryStoreOptions, memoryStore } from "./stores/memory-store.ts";
