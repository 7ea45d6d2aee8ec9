/**
 * Recipe: the `openai` SDK (OpenAI and Azure OpenAI) on the resilience layer.
 *
 * - Retries: `maxRetries: 0` turns the SDK's own off, so a call is retried
 *   once, in the layer, under its budget and breakers (with both on, a 503
 *   would be retried 3 × 3 times).
 * - Timeouts: the SDK's `timeout` aborts the whole call, retries included
 *   (the layer sees it as the caller's abort and stops). Set it to the
 *   longest you will wait for an answer; set the layer's `timeout.attempt`
 *   to catch one hung attempt. Chat completions are POSTs: a hung attempt
 *   is only retried when the request has an `Idempotency-Key`
 *   (`retry.idempotencyKey: true`); otherwise the call fails at once with
 *   the SDK's `APIConnectionTimeoutError`, whose `cause` is the layer's
 *   `TimeoutError` (`phase: "attempt"`).
 * - Errors: the SDK wraps whatever `fetch` throws in `APIConnectionError`
 *   (`APIConnectionTimeoutError` when the message mentions a timeout);
 *   the layer's error (`CircuitOpenError`, `RetryExhaustedError`,
 *   `TimeoutError`, `FallbackExhaustedError`) is its `cause`. A final 5xx
 *   response is not thrown by the layer: the SDK turns it into its own
 *   status error (`InternalServerError`, …).
 */
import { isResilienceError, type Resilience, type ResilienceError } from "@storycore/resilient-fetch";
import OpenAI, { AzureOpenAI } from "openai";

/** The longest a caller waits for one completion, retries included. */
export const CALL_TIMEOUT_MS = 120_000;

/** An OpenAI client (or any OpenAI-compatible API) whose requests go through `resilience`. */
export function createOpenAI(resilience: Resilience, options: { apiKey: string; baseURL: string }): OpenAI {
  return new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    fetch: resilience.fetch,
    maxRetries: 0,
    timeout: CALL_TIMEOUT_MS,
  });
}

/** The same for an Azure OpenAI deployment. */
export function createAzureOpenAI(
  resilience: Resilience,
  options: { apiKey: string; endpoint: string; deployment: string; apiVersion: string },
): AzureOpenAI {
  return new AzureOpenAI({ ...options, fetch: resilience.fetch, maxRetries: 0, timeout: CALL_TIMEOUT_MS });
}

/** The layer's error behind an SDK error, if there is one (`APIConnectionError.cause`). */
export function resilienceCause(error: unknown): ResilienceError | undefined {
  if (error instanceof OpenAI.APIConnectionError && isResilienceError(error.cause)) return error.cause;
  return undefined;
}
