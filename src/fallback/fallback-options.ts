import type { StandardSchemaLike } from "../core/standard-schema.ts";

/** A JSON object, as parsed from a request body. */
export type JsonObject = { [key: string]: unknown };

/**
 * The request as a fallback endpoint's `transform` and `respond` see it:
 * rebased onto the endpoint's URL, with the caller's headers (a copy) and
 * the endpoint's own `headers`, and the JSON body parsed.
 */
export interface EndpointRequest {
  method: string;
  url: string;
  /** A copy: edit it freely. */
  headers: Headers;
  /**
   * The parsed body when the request carries a JSON object (a copy per
   * endpoint); `undefined` when there is none, or it is not a JSON object
   * (those bodies are sent as they are).
   */
  body: JsonObject | undefined;
  /** The endpoint's name. */
  endpoint: string;
}

/**
 * What a `transform` returns: the request for this provider. A `body` that
 * is a string is sent as it is; any other value is sent as JSON; either goes
 * as `application/json` unless the transform `set` a `content-type` on the
 * headers it was given (or returns one other than the caller's), the
 * endpoint's `headers` name one, or the caller's names a JSON type. An
 * unchanged or absent `body` sends the caller's bytes untouched. When `url`
 * is on another origin than the caller's, the caller's headers outside the
 * cross-origin allowlist are removed unless the endpoint sets them itself.
 */
export interface TransformedRequest {
  method: string;
  url: string;
  headers: Headers;
  body?: unknown | undefined;
  endpoint?: string | undefined;
}

/** What every endpoint of a fallback chain can set, whether it calls a `url` or answers with `respond`. */
export interface FallbackEndpointCommon {
  /** Unique in its chain; shown in events, statistics and `getResilienceInfo`. */
  name: string;
  /**
   * 0..1, how good this endpoint's output is; breaks ties in adaptive order.
   * @default 1
   */
  expectedQuality?: number | undefined;
  /** Headers set for this endpoint (e.g. its own API key); they are sent even across origins. */
  headers?: Record<string, string> | undefined;
  /**
   * Rewrites method, URL, headers and JSON body for this provider's API shape.
   * Under `timeout.attempt`, one that has not settled within it fails the
   * endpoint with a `TimeoutError`, nothing sent.
   * @example
   * transform: (req) => ({ ...req, body: { ...req.body, steps: 20 } })
   */
  transform?: ((request: EndpointRequest) => TransformedRequest | Promise<TransformedRequest>) | undefined;
  /**
   * A 2xx whose JSON fails this schema, or is not read and judged within
   * `timeout.attempt` (else 30 s; under `timeout.total` alone, the deadline
   * rejects the call), is a failure: the chain moves on where it would after
   * a 5xx (a POST without an `Idempotency-Key` stops there).
   */
  validate?: StandardSchemaLike | undefined;
}

/**
 * One provider or source in a fallback chain: it calls a `url`, or it
 * answers with `respond` (never both, never neither).
 */
export type FallbackEndpoint = FallbackEndpointCommon & (UrlEndpoint | RespondEndpoint);

/** An endpoint that calls the network. */
export interface UrlEndpoint {
  /**
   * Base URL. The first endpoint's `url` selects the chain: a request whose
   * URL starts with it goes down the chain, and the rest of its path and
   * query are rebased onto each endpoint's `url`.
   */
  url: string;
  respond?: undefined;
}

/** An endpoint that answers without the network. */
export interface RespondEndpoint {
  /**
   * Answers without the network (Cache API, a placeholder, a last good
   * answer). Under `timeout.attempt`, one that has not settled within it
   * fails the endpoint with a `TimeoutError`, and the chain moves on.
   */
  respond: (request: EndpointRequest) => Response | Promise<Response>;
  url?: undefined;
}

/** A fallback chain for `resilience.fetch`. */
export interface FallbackChainOptions {
  name: string;
  /**
   * `fixed` keeps the order given; `adaptive` prefers endpoints with a better
   * recent success rate and latency, `expectedQuality` breaking ties.
   * @default "fixed"
   */
  order?: "fixed" | "adaptive" | undefined;
  /**
   * Start the next endpoint too when the running one has given no acceptable
   * answer after `delay` ms (no headers yet, or a body `validate` is still
   * reading); the first acceptable answer wins, the other is aborted. Only
   * for idempotent requests or requests with an `Idempotency-Key`.
   */
  hedge?: { delay: number } | undefined;
  endpoints: readonly FallbackEndpoint[];
}
