import type { Clock } from "../core/clock.ts";
import { CircuitOpenError } from "../core/errors.ts";
import type { BreakerStoreLike, FetchLike } from "../core/options/resilience-options.ts";
import type { HostEntry } from "../policies/breaker-registry.ts";
import type { Deadline } from "../policies/deadline.ts";
import { isServiceFailureStatus } from "./classify.ts";
import type { PreparedCall } from "./prepare-call.ts";
import { sendAttempt } from "./send-attempt.ts";

/** What one attempt needs besides the call itself. */
export interface AttemptScope {
  transport: FetchLike;
  clock: Clock;
  attemptTimeout: number | undefined;
  /** The host's breaker and bulkhead; absent when breakers are off. */
  entry: HostEntry | undefined;
  /** The signal attempts run under (caller's, or caller's + total deadline). */
  signal: AbortSignal | undefined;
  /** Counts attempts that actually left (a refused one does not). */
  onSent: () => void;
  /** The shared breaker store, when one is configured. */
  store: BreakerStoreLike | undefined;
  deadline: Deadline | undefined;
}

/**
 * One attempt under the host's policies: the breaker admits it or refuses
 * with {@link CircuitOpenError} before anything is sent; the bulkhead holds a
 * slot until headers arrive; the outcome is reported to the breaker (5xx,
 * 429, network errors and timeouts as failures; other statuses as successes;
 * an abort of the call as neither).
 */
export async function runAttempt(call: PreparedCall, scope: AttemptScope): Promise<Response> {
  const { entry, signal } = scope;
  if (signal?.aborted) throw signal.reason;
  let release: (() => void) | undefined;
  if (entry?.bulkhead) {
    const acquired = entry.bulkhead.acquire(signal);
    release = typeof acquired === "function" ? acquired : await acquired;
  }
  try {
    const breaker = entry?.breaker;
    const permit = breaker?.tryAcquire();
    if (breaker && !permit) throw new CircuitOpenError(breaker.key, breaker.retryAt());
    const { store } = scope;
    let lease: string | undefined;
    // A half-open probe asks a coordinating store (a Durable Object) for one
    // of its few leases; only then is anything awaited, and the store bounds
    // the wait itself (an unreachable store leaves the local breaker in charge).
    if (breaker && permit && permit.lease !== null && store?.acquireProbe) {
      const granted = await store.acquireProbe(breaker.key, scope.clock.now());
      if (granted === false) {
        breaker.release(permit);
        throw new CircuitOpenError(breaker.key, breaker.retryAt());
      }
      if (typeof granted === "string") lease = granted;
    }
    scope.onSent();
    let response: Response;
    try {
      response = await sendAttempt(scope.transport, call, signal, scope.attemptTimeout, scope.clock, scope.deadline);
    } catch (error) {
      const aborted = signal?.aborted === true;
      // The store hears the outcome first: if it trips the breaker, the flush
      // that the trip triggers then carries this failure too.
      if (breaker && !aborted) store?.record?.(breaker.key, true, scope.clock.now(), lease);
      if (breaker && permit) breaker.reportError(permit, error, aborted);
      throw error;
    }
    if (breaker && permit) {
      const failed = isServiceFailureStatus(response.status);
      store?.record?.(breaker.key, failed, scope.clock.now(), lease);
      if (failed) breaker.failure(permit, `status ${response.status}`);
      else breaker.success(permit);
    }
    return response;
  } finally {
    release?.();
  }
}
