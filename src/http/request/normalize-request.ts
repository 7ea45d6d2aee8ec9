import type { BrowserBuild } from "../../core/browser-build.ts";
import { isStringObject } from "../../core/kind-of.ts";
import { type CallRequest, isSourceless, requestBodyStreams } from "./call-request.ts";
import { checkMethod, checkPlatformFields, snapshotHeaders } from "./check-request.ts";
import { copyHeaders, hasIdempotencyKey } from "./headers.ts";
import { byteSize, isReplayable, readForReplay, snapshotBody, utf8Length } from "./replay-body.ts";

/** What normalising a call needs from the layer's options. */
export interface NormalizeOptions {
  /** Methods retried freely (no idempotency key needed). */
  idempotentMethods: ReadonlySet<string>;
  /** Add an `Idempotency-Key` to POST and PATCH that have none. */
  addIdempotencyKey: boolean;
  maxReplayBytes: number;
  /** The library follows redirects (and so checks `integrity` itself). */
  follows?: boolean;
}

/**
 * Turns `(input, init)` into the call's {@link CallRequest}: checks the
 * caller's input (a bad one throws a `TypeError` at once), decides whether
 * the body can be replayed, adds an idempotency key when asked. The common
 * case (a URL, a replayable body) stays synchronous; a `Request` with a body
 * has its body read, bounded by `maxReplayBytes` and by `signal`. `signal`
 * is the call's (its deadline's, else the caller's) and becomes the
 * request's; without it the request keeps the caller's own.
 *
 * The headers (`init`'s, else a `Request`'s own) and a body of bytes, a
 * form or search params are taken as they are now, as fetch takes them when
 * it is called: a caller that edits them for its next call while this one
 * still waits or retries changes nothing here.
 */
export function normalizeRequest(
  input: string | URL | Request,
  init: RequestInit | undefined,
  options: NormalizeOptions,
  signal: AbortSignal | undefined,
): CallRequest | Promise<CallRequest> {
  const { url, method, carried, headers, request } = checkInput(input, init, options.follows);
  // A `Request`'s own body, unless `init` gives another (`body: null` gives
  // none: fetch then sends the `Request`'s own, and so does this).
  if (request && init?.body == null && request.body !== null)
    return readRequestBody(request, url, method, headers, carried ?? {}, options, signal);
  // A body given in `init`, with a URL or a `Request` (whose own body it replaces).
  let body = init?.body ?? null;
  // A number, a boolean or a String object, which fetch sends as its text,
  // becomes that text once, here: then measured, copied and replayed as a
  // string. An object of a kind fetch does not name is passed on as given (a
  // transport of one's own may take more kinds than fetch: a polyfill's
  // Blob), and sent once. A symbol, which fetch cannot make text of, is the
  // caller's mistake: the template throws its TypeError ("Cannot convert a
  // Symbol value to a string").
  if (
    (typeof body !== "object" && typeof body !== "function" && typeof body !== "string") ||
    // (No body, the common case, asks nothing more.)
    (body !== null && isStringObject(body))
  )
    body = `${body}`;
  let allowed = isReplayable(body);
  let oversize: number | undefined;
  if (body !== null && allowed) {
    const size = byteSize(body, options.maxReplayBytes);
    if (size > options.maxReplayBytes) {
      allowed = false;
      oversize = size;
    }
    // Copied whatever its size: the first send may come after an await (a rule, a chain, a queue).
    body = snapshotBody(body);
  }
  // A stream sent without `duplex` would be refused by the platform: the
  // request is then built with it rather than passed on as given. The
  // caller's own `init` goes while nothing in it was copied.
  let sent = init;
  if (headers !== init?.headers || body !== (init?.body ?? null)) {
    // A `Request` rebuilt with a non-empty `init` loses its referrer and
    // policy (the Fetch standard resets them): they go in it, unless `init` names them.
    sent = request ? overridden(referrerOf(request), init) : { ...init };
    if (headers) sent.headers = headers;
    if (body !== null) sent.body = body;
  }
  const original =
    allowed || (init as { duplex?: string } | undefined)?.duplex !== undefined ? ([input, sent] as const) : undefined;
  return build(url, method, headers, body, carried, original, allowed, oversize, options, signal);
}

/**
 * What fetch refuses before it looks at the caller's signal (its `Request`
 * constructor's checks), at once with a `TypeError`: a bad method or
 * header, an `integrity` or `redirect` the platform cannot keep, a GET or
 * HEAD with a body, a keepalive request with a stream. A call whose signal
 * is already aborted is checked too, so that its caller's mistake is not
 * hidden behind the abort.
 */
export function checkInput(
  input: string | URL | Request,
  init: RequestInit | undefined,
  follows: boolean | undefined,
): {
  url: string;
  method: string;
  carried: RequestInit | undefined;
  headers: HeadersInit | undefined;
  request: Request | undefined;
} {
  let url: string;
  let method: string;
  let carried = init;
  const request = typeof input === "string" || input instanceof URL ? undefined : input;
  if (!request) {
    url = typeof input === "string" ? input : (input as URL).href;
    method = init?.method === undefined ? "GET" : checkMethod(init.method);
  } else {
    url = request.url;
    method = init?.method === undefined ? request.method : checkMethod(init.method);
    // `signal: null` in `init` leaves the `Request`'s signal behind, as fetch does.
    carried = {
      ...overridden(requestProperties(request), init),
      signal: init?.signal !== undefined ? init.signal : request.signal,
    };
  }
  // `init`'s headers (even `null`, which fetch refuses), else a `Request`'s own, copied now.
  const headers = snapshotHeaders(init?.headers !== undefined ? init.headers : request?.headers);
  // Judged on what goes: a `Request`'s own `redirect` with `init`'s `integrity`.
  checkPlatformFields(carried, follows, method);
  if ((method === "GET" || method === "HEAD") && (init?.body ?? request?.body ?? null) !== null) {
    throw new TypeError(`resilience.fetch: a ${method} request cannot have a body`);
  }
  // A stream body goes only in `cors` or `same-origin` mode, and never with `keepalive`: fetch refuses either everywhere.
  if ((carried?.keepalive || carried?.mode === "no-cors") && isSourceless(init?.body)) {
    throw new TypeError(
      `resilience.fetch: a ${carried.keepalive ? "keepalive" : "no-cors"} request cannot have a stream body`,
    );
  }
  return { url, method, carried, headers, request };
}

/**
 * fetch refuses a Request whose body was read: so does the layer, at once.
 * `locked`: a body a reader holds counts as read (a call aborted before it
 * began says so, as fetch does, rather than its abort).
 */
export function refuseReadBody(input: Request, locked = false): void {
  if (input.bodyUsed || locked) throw new TypeError("resilience.fetch: the Request's body was already read (bodyUsed)");
}

/**
 * A `Request`'s own body, read for replay up to `maxReplayBytes` (one
 * announced as larger is not read into memory).
 */
function readRequestBody(
  input: Request,
  url: string,
  method: string,
  headers: HeadersInit | undefined,
  carried: RequestInit,
  options: NormalizeOptions,
  signal: AbortSignal | undefined,
): CallRequest | Promise<CallRequest> {
  refuseReadBody(input);
  const source = input.body as ReadableStream<Uint8Array>;
  // A keepalive request cannot send a stream (fetch refuses it), nor can a
  // page send one of the layer's making to an HTTP/1.1 server (Chromium
  // sends a stream body over HTTP/2 only, and preflights it across origins):
  // the body is read whole, kept for replay only within the limit. Read as
  // any other, under the caller's signal and `timeout.total` (a body that
  // stalls is given up, its source cancelled).
  if (carried.keepalive || (globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) {
    return readForReplay(source, Number.POSITIVE_INFINITY, signal).then((read) => {
      const { bytes } = read as { bytes: Uint8Array<ArrayBuffer> };
      const over = bytes.byteLength > options.maxReplayBytes;
      return build(
        url,
        method,
        headers,
        bytes,
        carried,
        undefined,
        !over,
        over ? bytes.byteLength : undefined,
        options,
        signal,
      );
    });
  }
  const declared = Number(input.headers.get("content-length") ?? Number.NaN);
  if (declared > options.maxReplayBytes) {
    // For the redirect follower (the browser build reads every body whole, above).
    requestBodyStreams.add(source);
    // Unread and as it is: a platform's own stream keeps its length (workerd sends a stream
    // of our making chunked, without the `content-length` an upload API may require).
    const call = build(url, method, headers, source, carried, undefined, false, declared, options, signal);
    call.replay.held = source;
    return call;
  }
  return readForReplay(source, options.maxReplayBytes, signal).then((read) => {
    if ("bytes" in read)
      return build(url, method, headers, read.bytes, carried, undefined, true, undefined, options, signal);
    requestBodyStreams.add(read.stream);
    const call = build(url, method, headers, read.stream, carried, undefined, false, read.read, options, signal);
    call.replay.held = read.stream;
    return call;
  });
}

/**
 * `headers` with a fresh `Idempotency-Key`, when the options ask for one and
 * `name` (a method, upper-cased) is a POST or PATCH; else `undefined`. The
 * caller checks first that the headers carry no key.
 */
export function keyedHeaders(
  headers: HeadersInit | undefined,
  name: string,
  options: NormalizeOptions,
): Headers | undefined {
  if (!options.addIdempotencyKey || (name !== "POST" && name !== "PATCH")) return undefined;
  const withKey = copyHeaders(headers);
  withKey.set("Idempotency-Key", randomKey());
  return withKey;
}

/**
 * A random UUID (v4). `crypto.randomUUID` exists only in secure contexts: a
 * page served over plain `http://` from a host other than localhost (an
 * intranet, a LAN address) has `crypto.getRandomValues` alone, which makes
 * the same 122 random bits.
 */
function randomKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function build(
  url: string,
  method: string,
  headers: HeadersInit | undefined,
  body: BodyInit | null | undefined,
  init: RequestInit | undefined,
  original: CallRequest["original"],
  allowed: boolean,
  oversize: number | undefined,
  options: NormalizeOptions,
  signal: AbortSignal | undefined,
): CallRequest {
  refuseOverQuota(body, init);
  // Policy reads a method by name, whatever its case (`patch` is PATCH to it); it goes as fetch sends it.
  const name = method.toUpperCase();
  let idempotent = options.idempotentMethods.has(name);
  // GET and the other freely retried methods skip the header scan, unless a
  // key is asked for: a POST or PATCH listed in `retryOn.methods` gets it too.
  if ((!idempotent || options.addIdempotencyKey) && !dropsKey(init)) {
    const own = hasIdempotencyKey(headers);
    idempotent ||= own;
    const keyed = own ? undefined : keyedHeaders(headers, name, options);
    if (keyed) {
      headers = keyed;
      original = undefined;
      idempotent = true;
    }
  }
  return {
    url,
    method,
    headers,
    body,
    init,
    signal: signal ?? init?.signal ?? undefined,
    replay: { allowed: allowed || body == null, oversize, sends: 0 },
    idempotent,
    callerUrl: url,
    original,
  };
}

/**
 * Whether no `Idempotency-Key` can reach the server: a page's `no-cors`
 * request goes with the no-CORS-safelisted headers only (Chromium drops the
 * rest, a key the caller set or the layer added), so a POST is keyless
 * whatever its headers say. Server runtimes send every header.
 */
export function dropsKey(init: RequestInit | undefined): boolean {
  return !!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ && init?.mode === "no-cors";
}

/** The Fetch standard's cap on the bytes of keepalive requests in flight. */
const KEEPALIVE_QUOTA = 64 * 1024;

/**
 * Browsers refuse a keepalive request whose body alone passes the quota
 * with the bare "Failed to fetch" a CORS refusal gives, before sending
 * anything: the layer says why, at once, and no host is blamed. Checked on
 * the body made (the page's build only), and again on one a degradation
 * rewrite or a `transform` made. A FormData is measured without its
 * multipart framing, so one just under the cap may still meet fetch's refusal.
 */
export function refuseOverQuota(body: BodyInit | null | undefined, init: RequestInit | undefined): void {
  if (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ || !init?.keepalive) return;
  if (body == null || !isReplayable(body)) return;
  // A string measured in its UTF-8 bytes, as the message says, however far past the quota.
  const size = typeof body === "string" ? utf8Length(body) : byteSize(body, KEEPALIVE_QUOTA);
  if (size > KEEPALIVE_QUOTA)
    throw new TypeError(
      `resilience.fetch: browsers send a keepalive request body of 64 KiB at most, got ${size} bytes`,
    );
}

/**
 * What a `Request` carries besides its URL, method, headers, body and
 * signal, for when the call is sent elsewhere or with another body. Only
 * values other than the defaults are copied: some runtimes (workerd) refuse
 * fields they do not implement even when given their default value.
 */
export function requestProperties(request: Request): RequestInit {
  const init: RequestInit = {};
  if (request.redirect !== "follow") init.redirect = request.redirect;
  if (request.credentials !== undefined && request.credentials !== "same-origin")
    init.credentials = request.credentials;
  if (request.cache !== undefined && request.cache !== "default") init.cache = request.cache;
  if (request.mode !== undefined && request.mode !== "cors" && request.mode !== "navigate") init.mode = request.mode;
  if (request.integrity) init.integrity = request.integrity;
  if (request.keepalive) init.keepalive = request.keepalive;
  return Object.assign(init, referrerOf(request));
}

/**
 * A `Request`'s `properties` with what `init` gives instead, as fetch reads
 * an `init` over a `Request`: a member that is `undefined` is absent, so it
 * leaves the `Request`'s own (a spread would wipe it).
 */
export function overridden(properties: RequestInit, init: RequestInit | undefined): RequestInit {
  const out: Record<string, unknown> = { ...properties };
  if (init) for (const [key, value] of Object.entries(init)) if (value !== undefined) out[key] = value;
  return out;
}

/**
 * A `Request`'s referrer and policy when they are not the defaults: `""` is
 * "no referrer", and `about:client` the default that any `init` falls back to.
 */
function referrerOf(request: Request): RequestInit {
  const init: RequestInit = {};
  if (request.referrerPolicy) init.referrerPolicy = request.referrerPolicy;
  if (request.referrer !== undefined && request.referrer !== "about:client") init.referrer = request.referrer;
  return init;
}
