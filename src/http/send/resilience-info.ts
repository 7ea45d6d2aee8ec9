import { realm } from "../../core/realm-shared.ts";
/** What the resilience layer did for one call, attached to its Response. */
export interface ResilienceInfo {
  /**
   * Attempts in all, across endpoints: each request the layer started (a
   * hedge's too, even one given up before it reached the server), with the
   * redirect hops it followed as part of it; an answer from a chain's
   * `respond` is no attempt.
   */
  attempts: number;
  /**
   * The endpoint that served: its name in a fallback chain, else the host
   * the call was sent to. After redirects the layer followed it is still
   * that first host, whose breaker counted the answer (the key of
   * `health().breakers`); `response.url` names where the redirects ended.
   */
  endpoint: string;
  /** True when an endpoint other than the first one served. */
  fromFallback: boolean;
  /** The degradation level applied to the request. */
  degradationLevel: string;
  /** Wall time of the whole call in ms, on the injected clock. */
  durationMs: number;
}

// A symbol-keyed property, not a WeakMap entry: V8's scavenger treats WeakMap
// values as live until the entry is cleared, so one entry per call copied
// each call's info object at every young-generation GC. It is set by plain
// assignment, not `Object.defineProperty` (about 1,900 instructions a call
// more under callgrind, an eighth of the layer's cost on a success). A
// symbol key is invisible to JSON, `Object.keys` and `for…in`; an object
// spread of the Response would copy it (and nothing else: a Response keeps
// its state behind its prototype). It goes away with the Response. A
// registered symbol: another copy of the package (an SDK's) reads it too.
const INFO: unique symbol = Symbol.for("@storycore/resilient-fetch/info") as typeof INFO;

/**
 * Where the info of a Response that takes no property (a transport froze it)
 * is kept instead: made at the first such Response, never on the usual path.
 */
let unextensible: WeakMap<Response, ResilienceInfo> | undefined;

/*
 * Answers that came after another request of their call (a retry, an
 * endpoint before, or a layer's below that did so) are marked in the realm's
 * shared `afterOthers`: an earlier request may have been processed, so a
 * layer in front, of this copy of the package or another, takes no 429 or
 * 503 of these as declined. A layer as another's transport hands its answer
 * up as it is, so the mark goes up every layer.
 */

/** `copy`, marked as `original` is (see `followsOthers`): a layer's copy of an answer answers for it. */
export function sameMark(original: Response, copy: Response): Response {
  const marked = realm().afterOthers;
  if (marked.has(original)) marked.add(copy);
  return copy;
}

/** Whether `response` came after another request of its call. */
export function followsOthers(response: Response): boolean {
  return realm().afterOthers.has(response);
}

/**
 * @internal Records what happened for `response`; `followed`: another request
 * of the call came before it (an endpoint passed over for its open breaker
 * sent none).
 */
export function attachInfo(response: Response, info: ResilienceInfo, followed: boolean): void {
  if (followed) realm().afterOthers.add(response);
  try {
    (response as Response & { [INFO]?: ResilienceInfo })[INFO] = info;
  } catch {
    unextensible ??= new WeakMap();
    unextensible.set(response, info);
  }
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
  if (typeof response !== "object" || response === null) return undefined;
  // Kept aside first: a frozen Response's own property can only be an earlier call's.
  return unextensible?.get(response) ?? (response as Response & { [INFO]?: ResilienceInfo })[INFO];
}
