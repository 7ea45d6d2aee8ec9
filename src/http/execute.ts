import { errorName } from "../core/error-detail.ts";
import { isCircuitOpenError, RetryExhaustedError, unlessThrows } from "../core/errors.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { executeRules } from "../core/options/option-rules.ts";
import type { RetryOptions } from "../core/options/retry-options.ts";
import { withDefaults } from "../core/options/with-defaults.ts";
import { redactErrorChain } from "../core/redact-url.ts";
import type { Wakers } from "../core/sleep.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import { type AttemptContext, retryChecked } from "../policies/retry.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { ResolvedOptions } from "./resilience-options.ts";

/** Options of `resilience.execute` (StoryCore-Engine's `execute_with_resilience`). */
export interface ExecuteOptions<T = unknown> {
  /**
   * Retry options for this work, over the instance's; `false` for one attempt.
   * @default the instance's `retry` options
   */
  retry?: RetryOptions | false | undefined;
  /**
   * Run every attempt behind the named breaker (StoryCore-Engine's
   * `circuit_breaker_name`); an open breaker ends the retries at once.
   */
  breaker?: string | undefined;
  /** What to answer when every attempt failed (or the breaker is open): called with the last error. */
  fallback?: ((error: unknown) => T | Promise<T>) | undefined;
  signal?: AbortSignal | undefined;
}

export type Execute = <T>(fn: (context: AttemptContext) => T | Promise<T>, options?: ExecuteOptions<T>) => Promise<T>;

/**
 * `execute(fn)` runs any async work, not only HTTP, with the instance's
 * retry options, clock, randomness and shared retry budget; optionally
 * behind a named breaker and with a fallback. Thrown errors are retried
 * unless `retryOn.error` says otherwise; an open breaker is not retried.
 * Its outcome counts where a call's does (`health()`'s error rate,
 * `debugInfo()`, the degradation triggers), as StoryCore-Engine's
 * `execute_with_resilience` feeds its error analytics.
 */
export function createExecute(
  config: ResolvedOptions,
  parts: Pick<PipelineParts, "budget" | "analytics" | "levels" | "events">,
  breakerNamed: (name: string) => CircuitBreaker,
  waitingOn: (breaker: CircuitBreaker) => Wakers | undefined,
): Execute {
  const base = config.retry;
  const { budget, analytics, levels, events } = parts;
  const { clock } = config;
  return (fn, options = {}) => {
    // A promise's function rejects, never throws: a `.catch()` on the call hears a bad argument too, as `retry(fn)`'s and fetch's do.
    try {
      if (typeof fn !== "function")
        throw new TypeError(`resilience.execute(fn): fn must be a function, got ${typeof fn}`);
      checkOptions(executeRules, options, "execute");
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal } = options;
    // Nothing is tried for a caller already gone: no token earned, none spent.
    if (signal?.aborted) return Promise.reject(signal.reason);
    const own = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
    const isRetryable = own.retryOn?.error ?? base.error;
    let started: number;
    let breaker: CircuitBreaker | undefined;
    try {
      // Each reads the clock (a breaker made now too): what a clock of yours throws rejects the call, never throws.
      breaker = options.breaker === undefined ? undefined : breakerNamed(options.breaker);
      budget?.deposit();
      started = clock.now();
    } catch (error) {
      return Promise.reject(error);
    }
    const attempt = breaker ? (ctx: AttemptContext) => breaker.execute(() => fn(ctx), signal) : fn;
    // The work's outcome, before `fallback` answers for it; a run its caller aborted is no failure. One a
    // `degradation` listener aborted on the move its own outcome set off fed the triggers; it is left out of the
    // error rate and totals and rejects with the abort's reason, as a call does.
    const settled = (error: unknown, failed: boolean): void => {
      if (failed && signal?.aborted) return;
      const ended = clock.now();
      const durationMs = Math.max(0, ended - started);
      levels?.observe(durationMs, failed);
      if (signal?.aborted) throw signal.reason;
      analytics.record(options.breaker ?? "execute", "", undefined, error, durationMs, ended, failed);
    };
    const run = retryChecked(attempt, withDefaults(base, own), {
      // An open breaker refuses every attempt: retrying it only burns the
      // budget, and a retry parked behind it would go through as its probe.
      retryOn: {
        error: (error) =>
          !isCircuitOpenError(error) &&
          breaker?.state !== "open" &&
          (isRetryable ? isRetryable(error) : !signal?.aborted),
      },
      clock: config.clock,
      random: config.random,
      budget,
      signal,
      // The breaker opening ends a wait behind it: the call ends then with its last failure.
      wakers: breaker && waitingOn(breaker),
      // Each wait is a `retry` event, as a call's are: the work has no URL nor status, so its error's name is the reason.
      onRetry: ({ attempt, delay, error }) => {
        if (events.has("retry"))
          events.emit("retry", {
            key: options.breaker ?? "execute",
            url: "",
            attempt,
            delay,
            reason: errorName(error),
            retryAfter: false,
          });
      },
    }).then(
      (value) => {
        settled(undefined, false);
        return value;
      },
      (error: unknown) => {
        // Recorded as the caller gets it (an open breaker's refusal as itself).
        const given = redactExhausted(error);
        settled(given, true);
        throw given;
      },
    );
    const { fallback } = options;
    if (!fallback) return run;
    return run.catch((error: unknown) => {
      if (signal?.aborted) throw error;
      return fallback(error);
    });
  };
}

/**
 * The error to reject with. The layer's own error quotes the last failure,
 * whose text may name a URL (an SDK's "GET https://…?api_key=… returned
 * 503"): it and its causes have the URLs cut, as `resilience.fetch` cuts
 * them. Any other error is the work's own, given as it was. A last attempt the open breaker refused
 * (one attempt, or the last of several) never ran: the call failed because
 * the circuit is open, so it rejects with that `CircuitOpenError`, as an
 * earlier refusal does (it is never retried). Its message names the
 * breaker as given: a name is a label the caller chose (SECURITY.md).
 */
function redactExhausted(error: unknown): unknown {
  // The work's own value may throw when looked at: it is given as it was.
  if (!unlessThrows(() => error instanceof RetryExhaustedError, false)) return error;
  const exhausted = error as RetryExhaustedError;
  if (isCircuitOpenError(exhausted.cause)) return exhausted.cause;
  // Its message, stack (Chromium writes the stack's first line at once)
  // and causes.
  return redactErrorChain(exhausted);
}
