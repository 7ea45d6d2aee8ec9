import { isBulkheadRejectedError, isCircuitOpenError } from "../../core/errors.ts";
import { backoffDelay } from "../../policies/backoff.ts";
import type { HostEntry } from "../../policies/breaker-registry.ts";
import type { Deadline } from "../../policies/deadline.ts";
import type { Outcome } from "../../policies/retry-loop.ts";
import { isStoreFailure } from "../../stores/unawaited-store.ts";
import type { PipelineParts } from "../pipeline-parts.ts";
import type { CallRequest } from "../request/call-request.ts";
import { isDeclined, isRetryableError, maySendAgain } from "./classify.ts";
import { failureReason, isPlatformRefusal } from "./failure-reason.ts";
import { retryAfterOf } from "./retry-after.ts";

export interface RetryDecision {
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
  request: CallRequest,
  outcome: Outcome<Response>,
  n: number,
  previousDelay: number | undefined,
  deadline: Deadline | undefined,
  entry: HostEntry | undefined,
): RetryDecision | undefined {
  const { retry, clock } = parts;
  if (request.signal?.aborted || deadline?.fired()) return undefined;
  // A retry behind an open breaker would only be refused (or, parked, land in
  // a burst on recovery): settle with what we have instead.
  if (entry && entry.breaker.state === "open") return undefined;
  // Nor one the store failed (what it throws fails the call), nor a request the platform refused (the caller's).
  if (
    !outcome.ok &&
    (isCircuitOpenError(outcome.error) ||
      isBulkheadRejectedError(outcome.error) ||
      isStoreFailure(outcome.error) ||
      isPlatformRefusal(outcome.error))
  )
    return undefined;
  // The same rule as moving to the next endpoint: a request that is not
  // idempotent goes again only when it surely was not processed.
  if (!maySendAgain(request, outcome)) return undefined;
  let retryAfter: number | undefined;
  let reason: string;
  if (outcome.ok) {
    const status = outcome.value.status;
    if (!retry.statuses.has(status)) return undefined;
    if (isDeclined(status)) {
      retryAfter = retryAfterOf(outcome.value, clock.now());
      // Too long to sleep through: settle with this response instead (the
      // attempt held the host open until then: see `retryAfterHold`).
      if (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) return undefined;
    }
    reason = `status ${status}`;
  } else {
    if (!(retry.error ?? isRetryableError)(outcome.error)) return undefined;
    reason = failureReason(outcome.error).reason;
  }
  const delay = retryAfter ?? backoffDelay(n, retry, parts.random, previousDelay);
  if (deadline && delay >= deadline.remaining()) return undefined;
  if (parts.budget && !parts.budget.tryRetry()) return undefined;
  return { delay, reason, retryAfter: retryAfter !== undefined };
}
