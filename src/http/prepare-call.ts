import type { ResolvedRetry } from "../core/options/retry-options.ts";
import { copyHeaders, headerOf } from "./headers.ts";

/** One logical call, normalised once so every attempt can replay it. */
export interface PreparedCall {
  /** What each attempt passes to the transport as its first argument. */
  input: RequestInfo | URL;
  /** What each attempt passes as `init` (a per-attempt signal is added to a copy). */
  init: RequestInit | undefined;
  url: string;
  method: string;
  /** The request headers as given (from `init`, else from a `Request` input). */
  headers: HeadersInit | undefined;
  /** The request body, replayable unless `replayable` is false. */
  body: BodyInit | null | undefined;
  /** The caller's signal (from `init`, else from a `Request` input). */
  signal: AbortSignal | undefined;
  /** False for a `ReadableStream` body: it can be sent once only. */
  replayable: boolean;
  /** The request carries an `Idempotency-Key`, so POST and PATCH may be retried. */
  hasIdempotencyKey: boolean;
  /** Set when the body was too large to keep for replay: its size in bytes. */
  oversize?: number | undefined;
}

/**
 * Normalises `(input, init)`. The common case (a URL string or `URL`, a
 * replayable body) stays synchronous and allocation-light; only a `Request`
 * with a body needs the async path, to read its body into bytes once.
 */
export function prepareCall(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  retry: ResolvedRetry,
  maxReplayBytes: number,
): PreparedCall | Promise<PreparedCall> {
  if (typeof input === "string" || input instanceof URL) {
    const url = typeof input === "string" ? input : input.href;
    const method = init?.method ? init.method.toUpperCase() : "GET";
    const body = init?.body;
    const call = finish(input, init, url, method, init?.headers, init?.signal ?? undefined, isReplayable(body), retry);
    if (body != null && call.replayable) {
      const size = byteSize(body, maxReplayBytes);
      if (size !== undefined && size > maxReplayBytes) return { ...call, replayable: false, oversize: size };
    }
    return call;
  }
  if (!isRequest(input)) {
    throw new TypeError(`resilience.fetch(input): expected a URL string, URL or Request, got ${describe(input)}`);
  }
  const method = (init?.method ?? input.method).toUpperCase();
  const signal = init?.signal ?? input.signal;
  const headers = init?.headers ?? input.headers;
  if (init?.body !== undefined || input.body === null) {
    return finish(input, init, input.url, method, headers, signal, isReplayable(init?.body), retry);
  }
  // A body announced as larger than the replay limit is not read into memory:
  // it is sent once, as it is.
  const declared = Number(input.headers.get("content-length") ?? Number.NaN);
  if (declared > maxReplayBytes) {
    return { ...finish(input, init, input.url, method, headers, signal, false, retry), oversize: declared };
  }
  return input.arrayBuffer().then((bytes) => {
    const call = finish(input, { ...init, body: bytes }, input.url, method, headers, signal, true, retry);
    return bytes.byteLength > maxReplayBytes ? { ...call, replayable: false, oversize: bytes.byteLength } : call;
  });
}

function finish(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  url: string,
  method: string,
  headers: HeadersInit | undefined,
  signal: AbortSignal | undefined,
  replayable: boolean,
  retry: ResolvedRetry,
): PreparedCall {
  // Only methods that are not retried freely care about idempotency keys; GET
  // skips the header scan entirely.
  let hasIdempotencyKey = false;
  if (!retry.methods.has(method)) {
    hasIdempotencyKey = headerOf(headers, "idempotency-key") !== null;
    if (!hasIdempotencyKey && retry.idempotencyKey && (method === "POST" || method === "PATCH")) {
      const withKey = copyHeaders(headers);
      withKey.set("Idempotency-Key", crypto.randomUUID());
      init = { ...init, headers: withKey };
      hasIdempotencyKey = true;
    }
  }
  return {
    input,
    init,
    url,
    method,
    headers: init?.headers ?? headers,
    body: init?.body,
    signal,
    replayable,
    hasIdempotencyKey,
  };
}

/**
 * A replayable body's size in bytes, or `undefined` when it cannot be told
 * cheaply (FormData). A string is only encoded when its length leaves the
 * answer open: UTF-8 takes 1 to 3 bytes per UTF-16 unit.
 */
function byteSize(body: BodyInit, limit: number): number | undefined {
  if (typeof body === "string") {
    if (body.length > limit || body.length * 3 <= limit) return body.length;
    return new TextEncoder().encode(body).byteLength;
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (typeof Blob !== "undefined" && body instanceof Blob) return body.size;
  if (body instanceof URLSearchParams) return body.toString().length;
  return undefined;
}

/** Bodies that can be sent again as they are; a stream is consumed by one send. */
export function isReplayable(body: BodyInit | null | undefined): boolean {
  return (
    body == null ||
    typeof body === "string" ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    (typeof Blob !== "undefined" && body instanceof Blob) ||
    (typeof FormData !== "undefined" && body instanceof FormData)
  );
}

function isRequest(value: unknown): value is Request {
  return typeof Request !== "undefined" && value instanceof Request;
}

function describe(value: unknown): string {
  return value === null ? "null" : typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
}
