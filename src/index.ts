/**
 * `@storycore/resilient-fetch`: `createResilience` and what a caller of its
 * `fetch` needs (retry with jitter, Retry-After and budgets, per-host
 * breakers and bulkheads, timeouts, redirects, events, health). Fallback
 * chains (`…/fallback`) and graceful degradation (`…/degradation`) are opt-in
 * entries; the policies for any async work are in `…/policies`.
 */
export type { BreakerSnapshot, BreakerStateName, RateWindow, TripRecord } from "./core/breaker-snapshot.ts";
export type { Clock } from "./core/clock.ts";
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
export type { LevelName } from "./core/levels.ts";
export type { BreakerOptions, ResolvedBreakerPolicy } from "./core/options/breaker-options.ts";
export type { BudgetOptions } from "./core/options/budget-options.ts";
export type { BulkheadOptions } from "./core/options/bulkhead-options.ts";
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
  StoreEvent,
  StoreEventListener,
} from "./core/resilience-events.ts";
export type { StandardResult, StandardSchemaLike } from "./core/standard-schema.ts";
export type { ErrorRecord } from "./http/analytics.ts";
export { createResilience, type Resilience } from "./http/create-resilience.ts";
export type { Execute, ExecuteOptions } from "./http/execute.ts";
export type { BreakerHealth, DebugInfo, HealthSnapshot } from "./http/health.ts";
export type { FetchLike, ResilienceOptions } from "./http/resilience-options.ts";
export { getResilienceInfo, type ResilienceInfo } from "./http/send/resilience-info.ts";
export type {
  DegradationControl,
  DegradationStage,
  FallbackChains,
  FallbackStage,
  HandleOf,
  LevelReport,
  StageHandles,
} from "./http/stages.ts";
export type { BreakerPermit, CircuitBreaker } from "./policies/circuit-breaker.ts";
export type { ChainStatistics } from "./policies/fallback-chain.ts";
export type { RetryBudgetSnapshot } from "./policies/retry-budget.ts";
export type { BreakerStore, BreakerStoreLike, WaitUntilLike } from "./stores/breaker-store.ts";
export { type MemoryStoreOptions, memoryStore } from "./stores/memory-store.ts";
