import type { BrowserBuild } from "../../core/browser-build.ts";
import { isTimeoutError, unlessThrows } from "../../core/errors.ts";
import { type CallRequest, canSendBody } from "../request/call-request.ts";
import { failureReason } from "./failure-reason.ts";
import { isAfterRedirect } from "./follow-redirects.ts";
import { followsOthers } from "./resilience-info.ts";

/**
 * A network failure as fetch reports it: a `TypeError` ("fetch failed" in
 * Node, "Failed to fetch" in Chromium, "NetworkError…" in Firefox, "Load
 * failed" in Safari), a `DOMException` named "NetworkError" (happy-dom's
 * fetch), or, outside pages, a plain `Error` workerd marks `retryable` (its
 * "Network connection lost." for a refused or reset connection; not an
 * `AbortError` or any other named error). Our own `TypeError`s for bad input are raised before any
 * attempt, so they never reach this check.
 */
export function isNetworkError(error: unknown): boolean {
  return unlessThrows(() => {
    if (error instanceof TypeError) return true;
    if (typeof error !== "object" || error === null) return false;
    const { name } = error as { name?: unknown };
    return (
      name === "TypeError" ||
      name === "NetworkError" ||
      (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ &&
        name === "Error" &&
        (error as { retryable?: unknown }).retryable === true)
    );
  }, false);
}

/** The default `retryOn.error` for HTTP: network errors and attempt timeouts. */
export function isRetryableError(error: unknown): boolean {
  return isNetworkError(error) || isTimeoutError(error);
}

/** 429 and 503: the server declined the work, so even a POST may be retried. */
export function isDeclined(status: number): boolean {
  return status === 429 || status === 503;
}

/**
 * Whether an outcome counts against a host's health: network errors,
 * timeouts, 5xx and 429. Other 4xx are the caller's fault and prove the
 * service is up.
 */
export function isServiceFailureStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/**
 * Whether a call may be sent again (a retry, or the next endpoint of a
 * chain) without risking that the server processes it twice. An idempotent
 * request may; one that is not (a POST without an `Idempotency-Key`) only
 * when it surely was not processed: 429 and 503 (the server declined the
 * work), or a failure before the request reached the server (connection
 * refused, DNS, TLS, the breaker or bulkhead refused it). A server that
 * answered with a redirect may have processed it: what happens at the
 * redirect's target does not count. A body that could not be kept for replay
 * and was sent once is never sent again.
 */
export function maySendAgain(request: CallRequest, outcome: { value: Response } | { error: unknown }): boolean {
  if (!canSendBody(request)) return false;
  if (request.idempotent) return true;
  // A server that answered with a redirect may have processed the request
  // (a 303 after a POST says it did): what the redirect's target answers or
  // how reaching it failed says nothing about that.
  // A layer's answer (a layer as the transport) that came after another
  // request may follow one that was processed, under a key of its own: as
  // its error is, it is taken as declined only when it was the only one.
  if ("value" in outcome) {
    const { value } = outcome;
    return !value.redirected && isDeclined(value.status) && !followsOthers(value);
  }
  return failureReason(outcome.error).notSent && !isAfterRedirect(outcome.error);
}
