import { withDefaults } from "./with-defaults.ts";

/**
 * Per-host circuit breakers (the `CircuitBreakerConfig` of the StoryCore-Engine
 * error-handling guide). Two rules open a closed breaker, whichever comes
 * first: `failureThreshold` failed attempts in a row (a host that is down),
 * or a `failureRate` of at least `minimumCalls` attempts inside `timeWindow`
 * (a host failing most of the time). Sporadic failures of a flaky API trip
 * neither. Why these defaults: see docs/breakers.md.
 */
export interface BreakerOptions {
  /**
   * Failed attempts in a row that open the circuit (any success restarts the
   * count), like Envoy's `consecutive_5xx` and cockatiel's
   * `ConsecutiveBreaker`. 12 is four calls that each failed all three
   * default attempts.
   * @default 12
   */
  failureThreshold?: number | undefined;
  /**
   * Successful probes in half-open that close it again.
   * @default 2
   */
  successThreshold?: number | undefined;
  /**
   * How long the circuit stays open before probes are let through, in ms.
   * @default 30000
   */
  timeout?: number | undefined;
  /**
   * Probes allowed in flight while half-open.
   * @default 3
   */
  halfOpenMaxCalls?: number | undefined;
  /**
   * Rolling window of the failure rate, in ms (10 buckets).
   * @default 30000
   */
  timeWindow?: number | undefined;
  /**
   * How long a probe may stay unreported before its slot is freed and it
   * counts as a failure (its caller vanished), in ms.
   * @default 30000
   */
  probeTimeout?: number | undefined;
  /**
   * Which thrown errors count as failures (the guide's `expected_exception`).
   * HTTP responses are classified by status: 5xx and 429 are failures.
   * @default every error except the caller's abort
   */
  isFailure?: ((error: unknown) => boolean) | undefined;
  /**
   * Share of failed attempts inside `timeWindow` that opens the circuit,
   * once at least `minimumCalls` attempts fell inside it (resilience4j's
   * `failureRateThreshold`, opossum's `errorThresholdPercentage`). `1` opens
   * only when every attempt in the window failed.
   * @default 0.5
   */
  failureRate?: number | undefined;
  /**
   * Attempts inside `timeWindow` before the failure rate is judged
   * (resilience4j's `minimumNumberOfCalls`, Polly's `MinimumThroughput`).
   * @default 100
   */
  minimumCalls?: number | undefined;
  /**
   * The breaker key of a request URL: the URL the caller asked for, before a
   * degradation rewrite changes its query (a redirect hop is admitted by
   * the key of the hop's own URL).
   * @default (url) => url.host
   */
  key?: ((url: URL) => string) | undefined;
  /**
   * Breakers kept at most (least recently used evicted first), so memory
   * stays flat whatever the number of hosts.
   * @default 1000
   */
  maxHosts?: number | undefined;
}

/** The numbers a breaker's policy cannot run without (`failureRate` may be left out: the rate rule is then off). */
export const policyNumbers: readonly (keyof ResolvedBreakerPolicy)[] = [
  "failureThreshold",
  "successThreshold",
  "timeout",
  "halfOpenMaxCalls",
  "timeWindow",
  "probeTimeout",
  "minimumCalls",
];

/** The state-machine part of the options, all resolved. */
export interface ResolvedBreakerPolicy {
  failureThreshold: number;
  successThreshold: number;
  timeout: number;
  halfOpenMaxCalls: number;
  timeWindow: number;
  probeTimeout: number;
  /** `undefined`: the rate rule is off (only `failureThreshold` in a row opens). */
  failureRate: number | undefined;
  minimumCalls: number;
}

export interface ResolvedBreaker extends ResolvedBreakerPolicy {
  isFailure: ((error: unknown) => boolean) | undefined;
  key: ((url: URL) => string) | undefined;
  maxHosts: number;
}

export const breakerDefaults: Readonly<Omit<ResolvedBreaker, "isFailure" | "key" | "failureRate">> & {
  readonly failureRate: number;
} = {
  failureThreshold: 12,
  successThreshold: 2,
  timeout: 30_000,
  halfOpenMaxCalls: 3,
  timeWindow: 30_000,
  probeTimeout: 30_000,
  failureRate: 0.5,
  minimumCalls: 100,
  maxHosts: 1000,
};

/** Applies defaults over `base` (itself defaulted); `false` turns breakers off. */
export function resolveBreaker(
  options: BreakerOptions | false | undefined,
  base?: ResolvedBreaker,
): ResolvedBreaker | undefined {
  if (options === false) return undefined;
  return withDefaults(base ?? { ...breakerDefaults, isFailure: undefined, key: undefined }, options ?? {});
}
