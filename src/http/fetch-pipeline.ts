import type { Clock } from "../core/clock.ts";
import { isBulkheadRejectedError, isCircuitOpenError, isTimeoutError, RetryExhaustedError } from "../core/errors.ts";
import type { Emitter } from "../core/events.ts";
import type { FetchLike } from "../core/options/resilience-options.ts";
import type { ResolvedRetry } from "../core/options/retry-options.ts";
import type { ResolvedTimeout } from "../core/options/timeout-options.ts";
import type { Random } from "../core/random.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import { sleep } from "../core/sleep.ts";
import { backoffDelay } from "../policies/backoff.ts";
import type { BreakerRegistry, HostEntry } from "../policies/breaker-registry.ts";
import { type Deadline, startDeadline } from "../policies/deadline.ts";
import type { RetryBudget } from "../policies/retry-budget.ts";
import { type Outcome, runRetryLoop } from "../policies/retry-loop.ts";
import type { Analytics } from "./analytics.ts";
import { isDeclined, isRetryableError } from "./classify.ts";
import { type PreparedCall, prepareCall } from "./prepare-call.ts";
import { attachInfo } from "./resilience-info.ts";
import { parseRetryAfter } from "./retry-after.ts";
import { runAttempt } from "./run-attempt.ts";

/** What the pipeline is built from; `createResilience` assembles it. */
export interface PipelineParts {
  retry: ResolvedRetry;
  timeout: ResolvedTimeout;
  clock: Clock;
  random: Random;
  /** Returns the transport at call time (so MSW and polyfills can patch fetch). */
  transport: () => FetchLike;
  budget: RetryBudget | undefined;
  events: Emitter<ResilienceEvents>;
  /** Per-host breakers and bulkheads; absent when breakers are off. */
  registry: BreakerRegistry | undefined;
  /** The breaker key of a URL (its host unless `breaker.key` says otherwise). */
  keyOf: (url: string) => string;
  analytics: Analytics;
}

/**
 * Builds `resilience.fetch`: normalise the call once, then run the retry
 * loop of attempts, each decision taken by {@link decideRetry}. Resolves
 * with the last Response when there is one (even a 503, as fetch would);
 * rejects only when there is none.
 */
export function createFetchPipeline(parts: PipelineParts): FetchLike {
  return async function resilientFetch(input, init) {
    const started = parts.clock.now();
    const prepared = prepareCall(input, init, parts.retry);
    const call = prepared instanceof Promise ? await prepared : prepared;
    return runCall(parts, call, started);
  };
}

async function runCall(parts: PipelineParts, call: PreparedCall, started: number): Promise<Response> {
  const { clock, retry, budget } = parts;
  budget?.deposit();
  const key = parts.keyOf(call.url);
  const entry = parts.registry?.entry(key);
  const transport = parts.transport();
  const deadline =
    parts.timeout.total === undefined ? undefined : startDeadline(clock, parts.timeout.total, call.signal);
  const signal = deadline ? deadline.signal : call.signal;
  let attempts = 0;
  let previousDelay: number | undefined;
  const scope = {
    transport,
    clock,
    attemptTimeout: parts.timeout.attempt,
    entry,
    signal,
    onSent: () => {
      attempts++;
    },
  };
  try {
    const { outcome } = await runRetryLoop<Response>({
      maxAttempts: call.replayable ? retry.maxAttempts : 1,
      attempt: () => runAttempt(call, scope),
      next: (outcome, n) => {
        const decision = decideRetry(parts, call, outcome, n, previousDelay, deadline, entry);
        if (decision === undefined) return undefined;
        if (!decision.retryAfter) previousDelay = decision.delay;
        if (outcome.ok) discard(outcome.value);
        if (parts.events.has("retry")) {
          parts.events.emit("retry", { key, url: call.url, attempt: n, ...decision });
        }
        return decision.delay;
      },
      wait: (ms) => sleep(clock, ms, signal),
    });
    if (!outcome.ok) throw outcome.error;
    const response = outcome.value;
    const durationMs = clock.now() - started;
    parts.analytics.record(key, call.url, response.status, undefined, durationMs);
    attachInfo(response, { attempts, endpoint: key, fromFallback: false, degradationLevel: "full", durationMs });
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: call.url,
        method: call.method,
        status: response.status,
        error: undefined,
        attempts,
        durationMs,
        outcome: "response",
      });
    }
    return response;
  } catch (cause) {
    const error = settleError(call, deadline, cause, attempts);
    const aborted = call.signal?.aborted === true && error === call.signal.reason;
    if (!aborted) parts.analytics.record(key, call.url, undefined, error, clock.now() - started);
    if (parts.events.has("request")) {
      parts.events.emit("request", {
        key,
        url: call.url,
        method: call.method,
        status: undefined,
        error: nameOf(error),
        attempts,
        durationMs: clock.now() - started,
        outcome: error === call.signal?.reason && call.signal?.aborted ? "aborted" : "error",
      });
    }
    throw error;
  } finally {
    deadline?.cancel();
  }
}

interface RetryDecision {
  delay: number;
  reason: string;
  retryAfter: boolean;
}

/**
 * Whether attempt `n`'s outcome earns another attempt, and after how long.
 * Order matters: the budget is consulted last, since asking spends a token.
 */
export function decideRetry(
  parts: PipelineParts,
  call: PreparedCall,
  outcome: Outcome<Response>,
  n: number,
  previousDelay: number | undefined,
  deadline: Deadline | undefined,
  entry: HostEntry | undefined,
): RetryDecision | undefined {
  const { retry, clock } = parts;
  if (call.signal?.aborted || deadline?.fired()) return undefined;
  // A retry behind an open breaker would only be refused (or, parked, land in
  // a burst on recovery): settle with what we have instead.
  if (entry && entry.breaker.state === "open") return undefined;
  const idempotent = retry.methods.has(call.method) || call.hasIdempotencyKey;
  let retryAfter: number | undefined;
  let reason: string;
  if (outcome.ok) {
    const status = outcome.value.status;
    if (!retry.statuses.has(status)) return undefined;
    const declined = isDeclined(status);
    if (!idempotent && !declined) return undefined;
    if (declined) {
      retryAfter = parseRetryAfter(outcome.value.headers.get("retry-after"), clock.now());
      // Too long to sleep through: settle with this response instead, and
      // hold the host open until then so other calls do not hammer it.
      if (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) {
        entry?.breaker.hold(
          clock.now() + retryAfter,
          `Retry-After ${Math.round(retryAfter / 1000)} s on status ${status}`,
        );
        return undefined;
      }
    }
    reason = `status ${status}`;
  } else {
    const error = outcome.error;
    if (isCircuitOpenError(error) || isBulkheadRejectedError(error)) return undefined;
    if (!(retry.error ?? isRetryableError)(error) || !idempotent) return undefined;
    reason = nameOf(error);
  }
  const delay = retryAfter ?? backoffDelay(n, retry, parts.random, previousDelay);
  if (deadline && clock.now() + delay >= deadline.at) return undefined;
  if (parts.budget && !parts.budget.tryRetry()) return undefined;
  return { delay, reason, retryAfter: retryAfter !== undefined };
}

/** The error a call rejects with when it has no Response to give. */
function settleError(call: PreparedCall, deadline: Deadline | undefined, cause: unknown, attempts: number): unknown {
  if (call.signal?.aborted) return call.signal.reason;
  if (deadline?.fired()) {
    deadline.error.attempts = attempts;
    return deadline.error;
  }
  if (isCircuitOpenError(cause) || isBulkheadRejectedError(cause)) return cause;
  if (isTimeoutError(cause)) {
    cause.attempts = attempts;
    return cause;
  }
  return new RetryExhaustedError(attempts, cause);
}

/** Frees the connection of a response we will not hand to the caller. */
function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

function nameOf(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
