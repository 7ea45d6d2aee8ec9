import type { StandardSchemaLike } from "../standard-schema.ts";

/**
 * The request as a fallback endpoint's `transform` and `respond` see it:
 * already rebased onto the endpoint's URL, with credentials dropped when it
 * crosses origins, and the JSON body parsed.
 */
export interface EndpointRequest {
  method: string;
  url: string;
  headers: Headers;
  /** The parsed JSON body; `undefined` when there is none or it is not JSON. */
  body: unknown;
  /** The endpoint's name. */
  endpoint: string;
}

/** One provider or source in a fallback chain. */
export interface FallbackEndpoint {
  /** Unique in its chain; shown in events, statistics and `getResilienceInfo`. */
  name: string;
  /**
   * Base URL. The first endpoint's `url` selects the chain: a request whose
   * URL starts with it goes down the chain, and the rest of its path and
   * query are rebased onto each endpoint's `url`.
   */
  url?: string;
  /**
   * Answers without the network (Cache API, a placeholder, a last good
   * answer). An endpoint has either `url` or `respond`.
   */
  respond?: (request: EndpointRequest) => Response | Promise<Response>;
  /**
   * 0..1, how good this endpoint's output is; breaks ties in adaptive order.
   * @default 1
   */
  expectedQuality?: number;
  /** Headers set for this endpoint (e.g. its own API key); they are kept across origins. */
  headers?: Record<string, string>;
  /** Rewrites method, URL, headers and JSON body for this provider's API shape. */
  transform?: (request: EndpointRequest) => EndpointRequest | Promise<EndpointRequest>;
  /** A 2xx whose JSON fails this schema is a failure, and the chain moves on. */
  validate?: StandardSchemaLike;
}

/** A fallback chain for `resilience.fetch`. */
export interface FallbackChainOptions {
  name: string;
  /**
   * `fixed` keeps the order given; `adaptive` prefers endpoints with a better
   * recent success rate and latency, `expectedQuality` breaking ties.
   * @default "fixed"
   */
  order?: "fixed" | "adaptive";
  /**
   * Start the next endpoint too when no response headers arrived after
   * `delay` ms; the first acceptable answer wins, the other is aborted. Only
   * for idempotent requests or requests with an `Idempotency-Key`.
   */
  hedge?: { delay: number };
  endpoints: FallbackEndpoint[];
}
