import type { Clock } from "../core/clock.ts";
import { isTimeoutError, RetryExhaustedError } from "../core/errors.ts";
import type { Emitter } from "../core/events.ts";
import type { FetchLike } from "../core/options/resilience-options.ts";
import type { ResolvedRetry } from "../core/options/retry-options.ts";
import type { ResolvedTimeout } from "../core/options/timeout-options.ts";
import type { Random } from "../core/random.ts";
import type { ResilienceEvents } from "../core/resilience-events.ts";
import { sleep } from "../core/sleep.ts";
import { backoffDelay } from "../policies/backoff.ts";
import { type Deadline, startDeadline } from "../policies/deadline.ts";
import type { RetryBudget } from "../policies/retry-budget.ts";
import { type Outcome, runRetryLoop } from "../policies/retry-loop.ts";
import { isDeclined, isRetryableError } from "./classify.ts";
import { hostOf } from "./host-key.ts";
import { type PreparedCall, prepareCall } from "./prepare-call.ts";
import { attachInfo } from "./resilience-info.ts";
import { parseRetryAfter } from "./retry-after.ts";
import { sendAttempt } from "./send-attempt.ts";

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
  const key = hostOf(call.url);
  const transport = parts.transport();
  const deadline =
    parts.timeout.total === undefined ? undefined : startDeadline(clock, parts.timeout.total, call.signal);
  const signal = deadline ? deadline.signal : call.signal;
  let attempts = 0;
  let previousDelay: number | undefined;
  try {
    const { outcome } = await runRetryLoop<Response>({
      maxAttempts: call.replayable ? retry.maxAttempts : 1,
      attempt: () => {
        attempts++;
        if (signal?.aborted) return Promise.reject(signal.reason);
        return sendAttempt(transport, call, signal, parts.timeout.attempt, clock);
      },
      next: (outcome, n) => {
        const decision = decideRetry(parts, call, outcome, n, previousDelay, deadline);
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
): RetryDecision | undefined {
  const { retry, clock } = parts;
  if (call.signal?.aborted || deadline?.fired()) return undefined;
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
      // Too long to sleep through: settle with this response instead.
      if (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) return undefined;
    }
    reason = `status ${status}`;
  } else {
    if (!(retry.error ?? isRetryableError)(outcome.error) || !idempotent) return undefined;
    reason = nameOf(outcome.error);
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
