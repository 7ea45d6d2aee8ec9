import type { BrowserBuild } from "../../core/browser-build.ts";
import { bodyKind } from "../../core/kind-of.ts";
import { copyHeaders, headerOf } from "./headers.ts";

/**
 * fetch's `HeadersInit`, spelled from `RequestInit`, which both the DOM lib
 * and @types/node declare: a Node-only project (no DOM lib) has no global
 * `HeadersInit`, `BodyInit` or `RequestInfo`.
 */
export type RequestHeaders = NonNullable<RequestInit["headers"]>;
/** fetch's `BodyInit`, spelled the same way. */
export type RequestBody = NonNullable<RequestInit["body"]>;

/**
 * The one request value of a call. `resilience.fetch` normalises
 * `(input, init)` into a `CallRequest` once, at the entry; every later step
 * (a degradation rule, a fallback endpoint, its `transform`, a hedge, a
 * redirect) derives a copy that changes only the URL, the headers or the
 * body. Nothing rebuilds the request from a subset of the caller's `init`,
 * and nothing recomputes whether the body may be sent again: that is
 * decided at the entry and shared by every copy through `replay`.
 */
export interface CallRequest {
  /** Where this copy goes (absolute). */
  readonly url: string;
  /** Upper-cased. */
  readonly method: string;
  /** The headers as given; copied (never edited in place) by a step that changes them. */
  readonly headers: RequestHeaders | undefined;
  /** Bytes (or a string, Blob, form…) that can be sent again, or a stream sent once. */
  readonly body: RequestBody | null | undefined;
  /**
   * Everything else the caller asked of fetch, whole: `redirect`,
   * `credentials`, `cache`, `mode`, `keepalive`, `referrer`,
   * `referrerPolicy`, `integrity`, `priority`, `duplex` and runtime
   * extensions (`cf`, `dispatcher`). For a `Request` input, its own
   * non-default properties, then the caller's `init` over them.
   */
  readonly init: RequestInit | undefined;
  /** The caller's signal (from `init`, else from a `Request` input), or the call's deadline. */
  readonly signal: AbortSignal | undefined;
  /** Shared by every copy of one call. */
  readonly replay: ReplayState;
  /** Safe to send twice: a method retried freely, or an `Idempotency-Key`. */
  readonly idempotent: boolean;
  /** The URL the caller asked for: its origin is the only one the caller's credentials go to. */
  readonly callerUrl: string;
  /**
   * The caller's own `(input, init)` while no step changed the request: sent
   * as they are (a `Request` input then keeps every property it has).
   */
  readonly original: readonly [input: string | URL | Request, init: RequestInit | undefined] | undefined;
}

/** Whether a call's body may be sent more than once; decided once, at the entry. */
export interface ReplayState {
  /** False for a stream, or a body larger than `maxReplayBytes`. */
  readonly allowed: boolean;
  /** Set when the body was too large to keep for replay: its size in bytes (or the bytes read before giving up). */
  readonly oversize: number | undefined;
  /** How many times the body was handed to the transport, on any endpoint. */
  sends: number;
  /**
   * A `Request`'s body stream sent once (read past `maxReplayBytes`, or
   * announced larger) while the layer holds it: cleared when it is handed to
   * the transport; the call cancels it if it ends still held (the caller's
   * source closes, as fetch's abort closes it).
   */
  held?: ReadableStream<Uint8Array> | undefined;
}

/** A copy of `request` with some of its URL, method, headers, body or signal changed. */
export function deriveRequest(
  request: CallRequest,
  changes: {
    url?: string;
    method?: string;
    headers?: HeadersInit | undefined;
    body?: BodyInit | null | undefined;
    signal?: AbortSignal | undefined;
  },
): CallRequest {
  const newBody = "body" in changes && changes.body !== request.body;
  const changed =
    newBody ||
    ("url" in changes && changes.url !== request.url) ||
    ("method" in changes && changes.method !== request.method) ||
    ("headers" in changes && changes.headers !== request.headers);
  const derived = { ...request, ...changes, original: changed ? undefined : request.original };
  // Another body has another length: the old `content-length` (the Worker
  // proxy forwards the client's) would have fetch refuse to send it.
  if (newBody && headerOf(derived.headers, "content-length") !== null) {
    const headers = copyHeaders(derived.headers);
    headers.delete("content-length");
    derived.headers = headers;
  }
  return derived;
}

/**
 * The body may be sent once more: it can be replayed, or it was never sent.
 * Every place that would send it again (a retry, the next endpoint, a
 * hedge) asks this.
 */
export function canSendBody(request: CallRequest): boolean {
  return request.replay.allowed || request.replay.sends === 0 || request.body == null;
}

/**
 * Whether the body of an `init` that {@link fetchArguments} built for a
 * changed request may be sent again: the entry's decision, for the redirect
 * follower, which only sees the transport's arguments. A rule or a
 * `transform` that moves the body across `maxReplayBytes` changes nothing,
 * on a 307/308 as on a retry. (The caller's own arguments carry no entry:
 * the follower measures the same body the entry measured.)
 */
export const replayDecisions: WeakMap<RequestInit, boolean> = new WeakMap();

/**
 * The breaker key of the attempt an `init` that {@link fetchArguments} built
 * for a changed request goes out under, for the redirect follower: a hop
 * back to that key is part of the attempt its breaker admitted, and any
 * other key's breaker is asked. The follower sees the URL sent, which a
 * degradation rule may have rewritten (a `breaker.key` that reads a
 * parameter the rule changes then names another breaker).
 */
export const attemptKeys: WeakMap<RequestInit, string> = new WeakMap();

/**
 * Streams that carry a `Request` input's body on (past `maxReplayBytes`: the
 * part read ahead and the rest, or one announced larger), for the redirect
 * follower: fetch cannot tell how a `Request`'s body was made (a string or
 * a stream), so it takes one as a body with a source, as most are.
 */
export const requestBodyStreams: WeakSet<object> = new WeakSet();

/**
 * Whether `body` is read as it is sent, with nothing to send again: a stream
 * or an async iterable (Node's fetch takes one). Any other value (a string,
 * bytes, a number fetch turns into text) has a source.
 */
export function isSourceless(body: unknown): boolean {
  return (
    typeof body === "object" &&
    body !== null &&
    (isStream(body) || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function")
  );
}

/** `(input, init)` for the transport, under `signal`. */
export function fetchArguments(
  request: CallRequest,
  signal: AbortSignal | undefined,
): [input: RequestInfo | URL, init: RequestInit | undefined] {
  const { original } = request;
  if (original) {
    const [input, init] = original;
    // Reuse the caller's init object when it already carries the right signal.
    if (signal === (init?.signal ?? undefined)) return [input, init];
    return [input, { ...init, signal: signal ?? null }];
  }
  const { body } = request;
  const sendsBody = body != null && request.method !== "GET" && request.method !== "HEAD";
  const init: RequestInit = {
    ...request.init,
    method: request.method,
    headers: request.headers ?? {},
    body: sendsBody ? body : null,
    signal: signal ?? null,
  };
  if (sendsBody) {
    // A stream body needs `duplex: "half"` (Node, Deno, Chromium).
    if (isSourceless(body)) (init as { duplex?: string }).duplex = "half";
    // Browsers follow redirects themselves: their build has no follower to tell.
    if (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) replayDecisions.set(init, request.replay.allowed);
  }
  return [request.url, init];
}

/** Whether `body` is a stream: sent once, with `duplex: "half"`. */
export function isStream(body: unknown): boolean {
  return bodyKind(body) === "ReadableStream";
}
