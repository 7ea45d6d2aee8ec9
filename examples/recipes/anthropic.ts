/**
 * Recipe: `@anthropic-ai/sdk` on the resilience layer.
 *
 * - Retries: `maxRetries: 0` turns the SDK's own off; the layer retries,
 *   under its budget and breakers.
 * - 529: Anthropic answers `529 overloaded_error` when it declines the work.
 *   The layer retries a POST only on 429 and 503 (the statuses that say the
 *   work was not done) unless it has an `Idempotency-Key`, so a 529 on
 *   `messages.create` would not be retried. `overloadedAs503` makes the layer
 *   see a 529 as the 503 it means (retried, counted by the breaker) and gives
 *   the SDK its 529 back, so `OverloadedError` still reaches you when every
 *   attempt was overloaded. A 529 reached through a redirect the platform
 *   followed stays a 529 (not retried): the first host may have done the work.
 * - Transport: without `options.fetch`, a bare layer (no retries, no
 *   breaker) beneath this one, which reaches the global fetch at call time
 *   (MSW patches it) as every layer without a `fetch` option does: past a
 *   layer installed there (this one, or an app's, which would retry each
 *   attempt again) and past a wrapper installed over one.
 * - Timeouts: the SDK's `timeout` aborts the whole call, retries included;
 *   the layer's `timeout.attempt` catches one hung attempt. A hung
 *   `messages.create` (a POST) is not retried without an `Idempotency-Key`.
 * - Errors: what the layer throws reaches you as the SDK's
 *   `APIConnectionError` with the layer's error as `cause`; an error whose
 *   text says "timeout" or "timed out" as `APIConnectionTimeoutError`, which the SDK (1.14)
 *   throws without a `cause`, so the layer's error does not reach you there:
 *   a `TimeoutError`, and a chain's `FallbackExhaustedError` when one of its
 *   endpoints timed out (its message quotes each endpoint's error).
 */
import Anthropic from "@anthropic-ai/sdk";
import {
  createResilience,
  type Resilience,
  type ResilienceOptions,
  RetryExhaustedError,
} from "@storycore/resilient-fetch";

/** The longest a caller waits for one message, retries included. */
export const CALL_TIMEOUT_MS = 300_000;

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const MARK = "x-resilience-was-529";

/** Re-labels a response with a new status, same body and headers. */
function withStatus(response: Response, status: number, headers: Headers): Response {
  return new Response(response.body, { status, statusText: response.statusText, headers });
}

/**
 * A layer whose transport shows it Anthropic's 529 as 503, and the fetch the
 * SDK should use (`sdkFetch`), which turns it back into 529.
 */
export function overloadedAs503(options: ResilienceOptions = {}): { resilience: Resilience; sdkFetch: Fetch } {
  // Without a `fetch`, a bare layer's (no retries, no breaker): a layer without a `fetch` option finds the global
  // fetch at call time (MSW's patch too) past any layer installed there, this one included, and past a wrapper
  // installed over one. A transport that read the global fetch itself would call this layer once it is installed.
  // It follows redirects as this layer asks it to (`redirects: "platform"` hands them to the platform's fetch).
  const bare = createResilience({ retry: false, breaker: false, redirects: options.redirects });
  // Its one attempt's failure is handed on as fetch's own (a `TypeError` for a refused connection), not wrapped
  // in its `RetryExhaustedError`: this layer then retries it as it retries any network error.
  const transport: Fetch =
    options.fetch ??
    ((input, init) =>
      bare.fetch(input, init).catch((error: unknown) => {
        throw error instanceof RetryExhaustedError ? error.cause : error;
      }));
  const resilience = createResilience({
    ...options,
    fetch: async (input, init) => {
      const response = await transport(input, init);
      // A 529 at the end of redirects the platform followed (`redirects: "platform"`) stays as it is: a new
      // Response is not `redirected`, so the 503 would read as the first host's own refusal and a keyless POST,
      // which that host may have processed before it redirected, would be sent again.
      if (response.status !== 529 || response.redirected) return response;
      const headers = new Headers(response.headers);
      headers.set(MARK, "1");
      return withStatus(response, 503, headers);
    },
  });
  const sdkFetch: Fetch = async (input, init) => {
    const response = await resilience.fetch(input, init);
    if (!response.headers.has(MARK)) return response;
    const headers = new Headers(response.headers);
    headers.delete(MARK);
    return withStatus(response, 529, headers);
  };
  return { resilience, sdkFetch };
}

/** An Anthropic client whose requests go through `fetch` (`sdkFetch` above, or `resilience.fetch`). */
export function createAnthropic(fetch: Fetch, options: { apiKey: string; baseURL: string }): Anthropic {
  return new Anthropic({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    fetch,
    maxRetries: 0,
    timeout: CALL_TIMEOUT_MS,
  });
}
