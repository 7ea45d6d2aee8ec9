/** Per-host circuit breakers (the seed's `CircuitBreakerConfig`). */
export interface BreakerOptions {
  /**
   * Failures inside `timeWindow` that open the circuit.
   * @default 5
   */
  failureThreshold?: number;
  /**
   * Successful probes in half-open that close it again.
   * @default 2
   */
  successThreshold?: number;
  /**
   * How long the circuit stays open before probes are let through, in ms.
   * @default 60000
   */
  timeout?: number;
  /**
   * Probes allowed in flight while half-open.
   * @default 3
   */
  halfOpenMaxCalls?: number;
  /**
   * Rolling window in which failures are counted, in ms.
   * @default 300000
   */
  timeWindow?: number;
  /**
   * How long a probe may stay unreported before its slot is freed and it
   * counts as a failure (its caller vanished), in ms.
   * @default 30000
   */
  probeTimeout?: number;
  /**
   * Which thrown errors count as failures (the seed's `expected_exception`).
   * HTTP responses are classified by status: 5xx and 429 are failures.
   * @default every error except the caller's abort
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * Open on a failure rate instead of a count (resilience4j style), once at
   * least `minimumCalls` calls fell inside `timeWindow`. Off by default: rate
   * breakers confuse low-volume clients.
   * @default undefined
   */
  failureRate?: number;
  /** @default 20 */
  minimumCalls?: number;
  /**
   * The breaker key of a request URL.
   * @default (url) => url.host
   */
  key?: (url: URL) => string;
  /**
   * Breakers kept at most (least recently used evicted first), so memory
   * stays flat whatever the number of hosts.
   * @default 1000
   */
  maxHosts?: number;
}

/** The state-machine part of the options, all resolved. */
export interface ResolvedBreakerPolicy {
  failureThreshold: number;
  successThreshold: number;
  timeout: number;
  halfOpenMaxCalls: number;
  timeWindow: number;
  probeTimeout: number;
  failureRate: number | undefined;
  minimumCalls: number;
}

export interface ResolvedBreaker extends ResolvedBreakerPolicy {
  isFailure: ((error: unknown) => boolean) | undefined;
  key: ((url: URL) => string) | undefined;
  maxHosts: number;
}

export const breakerDefaults: Readonly<Omit<ResolvedBreaker, "isFailure" | "key" | "failureRate">> = {
  failureThreshold: 5,
  successThreshold: 2,
  timeout: 60_000,
  halfOpenMaxCalls: 3,
  timeWindow: 300_000,
  probeTimeout: 30_000,
  minimumCalls: 20,
  maxHosts: 1000,
};

/** Applies defaults over `base` (itself defaulted); `false` turns breakers off. */
export function resolveBreaker(
  options: BreakerOptions | false | undefined,
  base?: ResolvedBreaker,
): ResolvedBreaker | undefined {
  if (options === false) return undefined;
  const d = base ?? { ...breakerDefaults, isFailure: undefined, key: undefined, failureRate: undefined };
  const o = options ?? {};
  return {
    failureThreshold: o.failureThreshold ?? d.failureThreshold,
    successThreshold: o.successThreshold ?? d.successThreshold,
    timeout: o.timeout ?? d.timeout,
    halfOpenMaxCalls: o.halfOpenMaxCalls ?? d.halfOpenMaxCalls,
    timeWindow: o.timeWindow ?? d.timeWindow,
    probeTimeout: o.probeTimeout ?? d.probeTimeout,
    isFailure: o.isFailure ?? d.isFailure,
    failureRate: o.failureRate ?? d.failureRate,
    minimumCalls: o.minimumCalls ?? d.minimumCalls,
    key: o.key ?? d.key,
    maxHosts: o.maxHosts ?? d.maxHosts,
  };
}
