/**
 * Recipe: ofetch on the resilience layer.
 *
 * - Retries: ofetch retries GETs once by default (on 408, 409, 425, 429,
 *   500, 502, 503, 504 and on any error `fetch` throws, an open breaker
 *   included), on top of the layer: `retry: 0` turns that off.
 * - Timeouts: ofetch's `timeout` aborts the whole call, retries included,
 *   when the call passes no `signal` (ofetch ignores its `timeout` then):
 *   a call with a signal of its own passes
 *   `AbortSignal.any([signal, AbortSignal.timeout(ms)])`. The layer's
 *   `timeout.attempt` catches one hung attempt.
 * - Errors: a final non-2xx response is ofetch's `FetchError`
 *   (`error.statusCode`); what the layer throws is `FetchError.cause`.
 */
import type { Resilience } from "@storycore/resilient-fetch";
import { type $Fetch, ofetch } from "ofetch";

export function createOfetch(resilience: Resilience, baseURL: string): $Fetch {
  return ofetch.create({ baseURL, retry: 0, timeout: 120_000 }, { fetch: resilience.fetch });
}
