import { CircuitOpenError, isBulkheadRejectedError, isCircuitOpenError, isTimeoutError } from "../../core/errors.ts";
import { redactUrl } from "../../core/redact-url.ts";
import { sleep } from "../../core/sleep.ts";
import { untilAborted } from "../../core/until-aborted.ts";
import type { HostEntry } from "../../policies/breaker-registry.ts";
import type { Deadline } from "../../policies/deadline.ts";
import { type Outcome, runRetryLoop } from "../../policies/retry-loop.ts";
import type { PipelineParts } from "../pipeline-parts.ts";
import { type CallRequest, canSendBody } from "../request/call-request.ts";
import { discardBody, keepBody } from "./discard-body.ts";
import { afterAnswer, isAfterRedirect } from "./follow-redirects.ts";
import { decideRetry } from "./retry-decision.ts";
import { type AttemptScope, sendAttempt } from "./send-attempt.ts";

/** What one call carries down every endpoint it tries. */
export interface CallState {
  /** The whole-call deadline (`timeout.total`), when set. */
  deadline: Deadline | undefined;
  /** Attempts that actually left, across all endpoints. */
  attempts: number;
}

/**
 * Sends `request` to one host, behind its breaker, retrying as the retry
 * policy allows: resolves with the last Response (whatever its status) or
 * throws the last attempt's error. Mapping errors for the caller is the
 * entry's business.
 */
export function sendWithRetries(
  parts: PipelineParts,
  request: CallRequest,
  key: string,
  state: CallState,
): Promise<Response> {
  const entry = parts.registry?.entry(key);
  const scope: AttemptScope = {
    transport: parts.transport(),
    clock: parts.clock,
    attemptTimeout: parts.timeout.attempt,
    entry,
    sent: state,
    attempts: 0,
    store: parts.store,
    deadline: state.deadline,
    maxRetryAfter: parts.retry.maxRetryAfter,
    sync: entry && parts.store ? () => parts.registry?.sync(key, entry) : undefined,
    registry: parts.registry,
    keyOf: parts.keyOf,
    ownTimeouts: parts.ownTimeouts,
  };
  // The call holds its host's entry until it settles: `maxHosts` never evicts it meanwhile.
  if (entry) entry.holders++;
  // The first attempt is made before the retry loop is built, as one promise
  // step: most calls end with it, on a status the policy never retries, and
  // then the loop (its async frame, closures, outcome objects, the retry
  // decision) is not worth its cost. The loop then starts from this outcome.
  return sendAttempt(request, scope).then(
    (response) => {
      if (parts.retry.statuses.has(response.status)) {
        return retryAfterFirst(parts, request, key, state, scope, { ok: true, value: response });
      }
      if (entry) parts.registry?.release(key, entry);
      return response;
    },
    (error: unknown) => retryAfterFirst(parts, request, key, state, scope, { ok: false, error }),
  );
}

/** The retry loop, from the first attempt's outcome on. */
async function retryAfterFirst(
  parts: PipelineParts,
  request: CallRequest,
  key: string,
  state: CallState,
  scope: AttemptScope,
  first: Outcome<Response>,
): Promise<Response> {
  const { clock, retry } = parts;
  const { entry } = scope;
  // Made for the first call that may wait to retry this host (most hosts never need one).
  if (entry) entry.waiting ??= new Set();
  let previousDelay: number | undefined;
  // The response a retry is meant to improve on is kept (a small body, read
  // into memory at once, so its connection goes back to the pool): when the
  // layer itself refuses the retry (the breaker opened meanwhile, the
  // bulkhead is full), the call settles with that response.
  let kept: Promise<Response | undefined> | undefined;
  // Its body may still be arriving: the caller's abort or the deadline settles the call at once.
  const keptNow = (previous: Promise<Response | undefined>) =>
    untilAborted(previous, request.signal, (late) => void late?.body?.cancel());
  // The last attempt's outcome: when it got no response, a retry the layer
  // refuses settles the call with its error, as the last attempt failing.
  let last: Outcome<Response> | undefined;
  let refused = false;
  const retried = () => {
    // What the store says now: another layer may have opened the host
    // during the backoff (a retry waits seconds, a call only milliseconds).
    scope.sync?.();
    return sendAttempt(request, scope).then(
      (response) => {
        kept = undefined;
        return response;
      },
      (error: unknown) => {
        const previous = kept;
        kept = undefined;
        // Only a refusal of the retry itself settles with what came before: a
        // redirect's hop refused after the host had this attempt is its failure.
        if (!(isCircuitOpenError(error) || isBulkheadRejectedError(error)) || isAfterRedirect(error)) throw error;
        if (!previous) {
          refused = true;
          throw last?.ok === false ? last.error : error;
        }
        return keptNow(previous).then((response) => {
          if (!response) throw afterAnswer(error);
          refused = true;
          return response;
        });
      },
    );
  };
  let outcome: Outcome<Response>;
  try {
    ({ outcome } = await runRetryLoop<Response>({
      maxAttempts: retry.maxAttempts,
      attempt: (n) => (n > 1 ? retried() : first.ok ? Promise.resolve(first.value) : Promise.reject(first.error)),
      next: (outcome, n) => {
        if (refused || !canSendBody(request)) return undefined;
        let decision: ReturnType<typeof decideRetry>;
        try {
          decision = decideRetry(parts, request, outcome, n, previousDelay, state.deadline, entry);
        } catch (error) {
          // A clock of yours that reads wrong ends the call: the answer in hand is let go.
          if (outcome.ok) discardBody(outcome.value);
          throw error;
        }
        if (decision === undefined) return undefined;
        if (!decision.retryAfter) previousDelay = decision.delay;
        if (outcome.ok) kept = keepBody(outcome.value);
        last = outcome;
        if (parts.events.has("retry"))
          parts.events.emit("retry", { key, url: redactUrl(request.url), attempt: n, ...decision });
        return decision.delay;
      },
      // The host's breaker opening ends the wait: the call settles then, sending nothing more.
      wait: (ms) => sleep(clock, ms, request.signal, entry?.waiting),
    }));
  } finally {
    if (entry) parts.registry?.release(key, entry);
  }
  if (!outcome.ok) {
    // An endpoint's own attempts, as its error in a chain's `errors` shows them
    // (the error a call rejects with counts the call's: see `settleError`).
    if (isTimeoutError(outcome.error)) outcome.error.attempts = scope.attempts;
    throw outcome.error;
  }
  // Kept still: a wait the opening ended, so the call settles with the response it kept.
  if (kept) {
    const response = await keptNow(kept);
    if (!response) throw afterAnswer(new CircuitOpenError(key, (entry as HostEntry).breaker.retryAt()));
    return response;
  }
  return outcome.value;
}
