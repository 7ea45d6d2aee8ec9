import { backoffDelay } from "../policies/backoff.ts";
import type { HostEntry } from "../policies/breaker-registry.ts";
import type { Deadline } from "../policies/deadline.ts";
import type { Outcome } from "../policies/retry-loop.ts";
import { isDeclined, isRetryableError } from "./classify.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { PreparedCall } from "./prepare-call.ts";
import { parseRetryAfter } from "./retry-after.ts";

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
    if (!(retry.error ?? isRetryableError)(error) || !idempotent) return undefined;
    reason = error instanceof Error ? error.name : typeof error;
  }
  const delay = retryAfter ?? backoffDelay(n, retry, parts.random, previousDelay);
  if (deadline && clock.now() + delay >= deadline.at) return undefined;
  if (parts.budget && !parts.budget.tryRetry()) return undefined;
  return { delay, reason, retryAfter: retryAfter !== undefined };
}
