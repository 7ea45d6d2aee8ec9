import { systemClock } from "../core/clock.ts";
import { type CircuitOpenError, isCircuitOpenError, isFallbackExhaustedError, isTimeoutError } from "../core/errors.ts";
import { isCallersFailure } from "../http/send/failure-reason.ts";
import { isAfterRedirect } from "../http/send/follow-redirects.ts";
import { isStoreFailure } from "../stores/unawaited-store.ts";

/**
 * What a Worker's own client hears when `resilience.fetch` had no response
 * to give (it threw), as one upstream would answer when it failed that way,
 * so the client backs off too. A chain's `FallbackExhaustedError` is judged
 * by its endpoints' errors:
 * - a breaker store of one's own threw (whatever it threw): `502`;
 * - the platform refused the request before sending it (a `content-length`
 *   that is no number, a header Node's fetch will not send), at every
 *   endpoint tried, or the caller's own body stream failed while the layer
 *   read it (ahead, or on past `maxReplayBytes`): `400`, the client's own
 *   failure, no upstream's (a `502` would be counted against the proxy by a
 *   client layer in front). A body announced larger than `maxReplayBytes`
 *   goes to fetch unread: its failure is the host's as far as the layer
 *   can tell;
 * - every circuit open: `503` with `Retry-After` for the first to reopen
 *   (between 1 s and a day);
 * - every attempt timed out (or its circuit open): `504`;
 * - anything else: `502`, a redirect's later hop refused by its open circuit
 *   included, and a retry refused after an answer too large to keep: the
 *   first upstream had the request, and a `503` would tell
 *   the client it was declined and may be sent again.
 *
 * `resilientProxy` answers with it; a Hono or plain Worker route can too.
 *
 * @param now the clock the layer runs on, to turn `retryAt` into seconds
 * @example
 * try {
 *   return await resilience.fetch(url, init);
 * } catch (error) {
 *   if (isResilienceError(error)) return failureResponse(error);
 *   throw error;
 * }
 */
export function failureResponse(error: unknown, now: number = systemClock.now()): Response {
  const errors = isFallbackExhaustedError(error) ? Object.values(error.errors) : [error];
  if (errors.some(isStoreFailure)) return Response.json({ error: "upstream unavailable" }, { status: 502 });
  if (errors.length > 0 && errors.every(isCallersFailure)) {
    return Response.json({ error: "the client's request failed" }, { status: 400 });
  }
  // An open circuit declined the request only when it refused the first hop.
  const declined = (e: unknown): e is CircuitOpenError => isCircuitOpenError(e) && !isAfterRedirect(e);
  const open = errors.filter(declined);
  if (open.length > 0 && open.length === errors.length) {
    const retryAt = Math.min(...open.map((e) => e.retryAt));
    // Between 1 s and a day (the most a store may hold), whatever retryAt says.
    // Whole ms first: on a clock with fractions (`performance.now()`), a 30 s
    // spell can read 30000.000000000004 ms, which is not 31 s.
    const seconds = Math.min(86_400, Math.max(1, Math.ceil(Math.round(retryAt - now) / 1000) || 1));
    return Response.json(
      { error: "upstream circuit open" },
      { status: 503, headers: { "retry-after": String(seconds) } },
    );
  }
  if (errors.length > 0 && errors.every((e) => isTimeoutError(e) || declined(e))) {
    return Response.json({ error: "upstream timed out" }, { status: 504 });
  }
  return Response.json({ error: "upstream unavailable" }, { status: 502 });
}
