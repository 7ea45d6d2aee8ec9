/** What the resilience layer did for one call, attached to its Response. */
export interface ResilienceInfo {
  /** Attempts made in all, across endpoints. */
  attempts: number;
  /** The endpoint that served: its name in a fallback chain, else the host. */
  endpoint: string;
  /** True when an endpoint other than the first one served. */
  fromFallback: boolean;
  /** The degradation level applied to the request. */
  degradationLevel: string;
  /** Wall time of the whole call in ms, on the injected clock. */
  durationMs: number;
}

// A WeakMap, not a property on the Response: responses stay standard objects
// and the entry goes away with them.
const infoByResponse = new WeakMap<Response, ResilienceInfo>();

/** @internal Records what happened for `response`. */
export function attachInfo(response: Response, info: ResilienceInfo): void {
  infoByResponse.set(response, info);
}

/**
 * What the resilience layer did for the call that produced `response`, or
 * `undefined` for a response it did not produce.
 *
 * @example
 * const res = await resilience.fetch(url);
 * getResilienceInfo(res); // { attempts: 2, endpoint: "api.example", fromFallback: false, … }
 */
export function getResilienceInfo(response: Response): ResilienceInfo | undefined {
  return infoByResponse.get(response);
}
