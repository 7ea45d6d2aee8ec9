/**
 * Recipe: the `replicate` client on the resilience layer.
 *
 * - Retries: the client has no switch for its own retries. Around every
 *   request it makes up to 6 calls to `fetch` (5 retries; on 429 and 5xx for
 *   GET, on 429 only otherwise, and after ANY error `fetch` throws, which it
 *   swallows until the last call). In replicate 1.4.0 it almost never waits
 *   between them: it sleeps only when its jittered delay is a whole number. On the bare layer, a GET to a host that stays down is then
 *   6 × the layer's attempts, and a `CircuitOpenError` is asked for 6 times.
 *   `replicateFetch` stops that: the client passes the same `init` object to
 *   each of its retries, so once the layer has settled a request (a failed
 *   response or an error), the client's repeats get that same outcome back
 *   without the layer being called again. Retries then happen once, in the
 *   layer.
 * - Timeouts: the client has no timeout; pass `signal` (e.g.
 *   `AbortSignal.timeout(ms)`) to `predictions.create` and
 *   `predictions.get` to bound a call (`run`'s `signal` reaches none of its
 *   requests: it only cancels the prediction between polls and resolves),
 *   and set the layer's `timeout.attempt` for one hung attempt. A file in
 *   the `input` is uploaded first without that signal: upload it with
 *   `replicate.files.create(blob, {}, { signal })` and pass its `urls.get`. Creating a prediction is a POST:
 *   a hung attempt is not retried without an `Idempotency-Key`.
 * - Errors: a final non-2xx response becomes the client's `ApiError`
 *   (`error.response.status`); what the layer throws (`CircuitOpenError`,
 *   `RetryExhaustedError`, …) reaches you as is, not wrapped.
 */
import type { Resilience } from "@storycore/resilient-fetch";
import Replicate from "replicate";

type Fetch = (input: Request | string, init?: RequestInit) => Promise<Response>;
type Settled = { ok: true; response: Response } | { ok: false; error: unknown };

/** `resilience.fetch`, answering the client's own repeats of a settled request without calling the layer again. */
export function replicateFetch(resilience: Resilience): Fetch {
  const settled = new WeakMap<RequestInit, Settled>();
  return async (input, init) => {
    const earlier = init ? settled.get(init) : undefined;
    if (earlier) {
      if (!earlier.ok) throw earlier.error;
      return earlier.response.clone();
    }
    try {
      const response = await resilience.fetch(input, init);
      // Only a failed response is repeated by the client; keep an unread copy for it.
      if (init && !response.ok) settled.set(init, { ok: true, response: response.clone() });
      return response;
    } catch (error) {
      if (init) settled.set(init, { ok: false, error });
      throw error;
    }
  };
}

/** A Replicate client whose requests go through the layer, retried there only. */
export function createReplicate(resilience: Resilience, options: { auth: string; baseUrl: string }): Replicate {
  return new Replicate({ auth: options.auth, baseUrl: options.baseUrl, fetch: replicateFetch(resilience) });
}
