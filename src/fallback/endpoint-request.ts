import { isHttpToken } from "../core/http-token.ts";
import { isBlob } from "../core/kind-of.ts";
import { type CallRequest, deriveRequest } from "../http/request/call-request.ts";
import { checkMethod, checkPlatformFields, normalizeMethod, snapshotHeaders } from "../http/request/check-request.ts";
import { CROSS_ORIGIN_HEADERS, headersForOrigin, originOf } from "../http/request/cross-origin.ts";
import { copyHeaders, headerOf } from "../http/request/headers.ts";
import { type JsonBody, readJsonBody } from "../http/request/json-body.ts";
import { refuseOverQuota } from "../http/request/normalize-request.ts";
import type { EndpointRequest, FallbackEndpoint, JsonObject, UrlEndpoint } from "./fallback-options.ts";

/** An endpoint that calls the network: the only kind whose request is shaped. */
type UrlFallbackEndpoint = FallbackEndpoint & UrlEndpoint;

/**
 * `rest` (the caller's URL after the chain's prefix: a path, a query, a
 * fragment) put onto `base`: the paths joined with one slash, the queries
 * merged with `base`'s first (an endpoint's own `?key=` stays), the fragment
 * last.
 */
export function rebase(base: string, rest: string): string {
  if (rest === "") return base;
  // Index arithmetic, no regular expression: this runs for every endpoint a call tries.
  const hash = rest.indexOf("#");
  const beforeHash = hash < 0 ? rest : rest.slice(0, hash);
  const at = beforeHash.indexOf("?");
  const restPath = at < 0 ? beforeHash : beforeHash.slice(0, at);
  const restQuery = at < 0 ? undefined : beforeHash.slice(at + 1);
  const baseAt = base.indexOf("?");
  const basePath = baseAt < 0 ? base : base.slice(0, baseAt);
  const baseQuery = baseAt < 0 ? undefined : base.slice(baseAt + 1);
  const path = restPath === "" ? basePath : joinPaths(basePath, restPath);
  const query =
    baseQuery === undefined && restQuery === undefined ? "" : `?${[baseQuery, restQuery].filter(Boolean).join("&")}`;
  return path + query + (hash < 0 ? "" : rest.slice(hash));
}

/** The non-empty parts of a header value between the commas and semicolons that join values. */
function partsOf(value: string): string[] {
  return value
    .split(/[,;]/)
    .map((part) => part.trim())
    .filter((part) => part !== "");
}

/**
 * `path` below `base` with one slash between them: a closing slash of
 * `base` is the first of a `path` that starts with one (`…/v1/` and `/x` is
 * `…/v1/x`, and `//x` is `…/v1//x`), and only that one, so an endpoint at
 * `…/v1//` keeps its path. A `\` closes `base` as `/` does: the URL parser
 * reads it so in an http(s) URL.
 */
function joinPaths(base: string, path: string): string {
  const head = base.endsWith("/") || base.endsWith("\\") ? base.slice(0, -1) : base;
  return head + (path[0] === "/" ? path : `/${path}`);
}

/**
 * The call as one endpoint receives it: rebased onto the endpoint's URL,
 * the endpoint's own headers set, then `transform` applied. When the URL
 * finally sent (after `transform`) is on another origin than the caller's,
 * only the cross-origin allowlist of the caller's headers goes with it; the
 * endpoint's headers and what `transform` set itself are kept. The body is
 * the caller's bytes, unless `transform` returned another body.
 */
export function endpointRequest(
  request: CallRequest,
  endpoint: UrlFallbackEndpoint,
  rest: string,
  crossOriginHeaders: readonly string[],
  json: () => Promise<JsonBody | undefined>,
): CallRequest | Promise<CallRequest> {
  const url = rebase(endpoint.url, rest);
  if (endpoint.transform)
    return transformedRequest(request, endpoint, endpoint.transform, url, crossOriginHeaders, json);
  // Without a transform nothing is awaited: the request is shaped at once.
  const crossOrigin = url !== request.url && originOf(url) !== originOf(request.callerUrl);
  const headers = withOwnHeaders(
    request,
    endpoint,
    crossOrigin ? headersForOrigin(request.headers, crossOriginHeaders).headers : undefined,
  );
  return headers || url !== request.url
    ? deriveRequest(request, { url, headers: headers ?? request.headers })
    : request;
}

/** The endpoint's own headers set over `base` (a copy of the caller's when absent); `undefined` when it has none and `base` is absent. */
function withOwnHeaders(
  request: CallRequest,
  endpoint: FallbackEndpoint,
  base: Headers | undefined,
): Headers | undefined {
  if (!endpoint.headers) return base;
  const headers = base ?? copyHeaders(request.headers);
  for (const [name, value] of Object.entries(endpoint.headers)) headers.set(name, value);
  return headers;
}

/** {@link endpointRequest} for an endpoint with a `transform`. */
async function transformedRequest(
  request: CallRequest,
  endpoint: FallbackEndpoint,
  transform: NonNullable<FallbackEndpoint["transform"]>,
  url: string,
  crossOriginHeaders: readonly string[],
  json: () => Promise<JsonBody | undefined>,
): Promise<CallRequest> {
  const own = endpoint.headers ?? {};
  const view = await endpointView(request, endpoint, url, json);
  for (const [name, value] of Object.entries(own)) view.headers.set(name, value);
  const labelBefore = view.headers.get("content-type");
  // The endpoint's own headers, and what the transform `set`s, are the endpoint's, even a value equal to the
  // caller's, as long as they are sent as set: each name's value after its last `set` (one the transform then
  // `append`s the caller's key to, or replaces in a `Headers` of its own, is judged as any other).
  const setByTransform = new Map<string, string | null>();
  for (const name of Object.keys(own)) setByTransform.set(name.toLowerCase(), view.headers.get(name));
  const { headers: viewHeaders } = view;
  const set = viewHeaders.set;
  viewHeaders.set = (name: string, value: string): void => {
    set.call(viewHeaders, name, value);
    setByTransform.set(String(name).toLowerCase(), viewHeaders.get(name));
  };
  const out = await transform(view);
  if (typeof out !== "object" || out === null || typeof out.url !== "string" || !(out.headers instanceof Headers)) {
    throw new TypeError(
      `fallback endpoint "${endpoint.name}": transform(request) must return a request object with a url and Headers`,
    );
  }
  let headers: Headers;
  try {
    // A value its `Headers` took but fetch refuses (a control character) is the transform's mistake, sent nowhere.
    headers = snapshotHeaders(out.headers) as Headers;
  } catch (error) {
    throw new TypeError(
      `fallback endpoint "${endpoint.name}": transform(request) returned headers fetch cannot send (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (originOf(out.url) !== originOf(request.callerUrl)) {
    // Caller headers outside the allowlist that reach here holding the
    // caller's value, or any part of it, as it was or extended (`append`
    // keeps it: a cookie appended to goes with the caller's session; one
    // value of a header given twice is the caller's too), are the caller's
    // credentials: they stay home, whole. Headers the endpoint names, or
    // that the transform set, are the endpoint's own, as they were set.
    const allowed = new Set([...CROSS_ORIGIN_HEADERS, ...crossOriginHeaders]);
    const caller = copyHeaders(request.headers);
    // Moved under another name (`append`ed, or in a `Headers` of the
    // transform's own, an allowlisted name too), a value is the caller's
    // when it holds one of the caller's values, or parts, of 8 characters
    // or more: a key or a session, not a `1` or a `gzip` any header may hold.
    const secrets = [...caller]
      .flatMap(([name, theirs]) => (allowed.has(name) ? [] : [theirs, ...partsOf(theirs)]))
      .filter((part) => part.length > 7);
    for (const name of new Set(headers.keys())) {
      const sent = headers.get(name) as string;
      if (setByTransform.get(name) === sent) continue;
      // Under its own name: its values as `get` joins them, and each part
      // between the commas and semicolons that join values, as well as every
      // other value of the caller's (moved in by the transform); one of empty
      // parts only (`""`, or `", "` of two: no text but commas, semicolons and
      // spaces) when the sent one is too. An allowlisted one the caller sent
      // goes as it was; under a name the caller did not send (`null`, never
      // blank as text), only its other values are looked for.
      const theirs = allowed.has(name) ? (sent === caller.get(name) ? undefined : null) : caller.get(name);
      if (theirs === undefined) continue;
      if (
        [...partsOf(theirs ?? ""), ...secrets].some((part) => sent.includes(part)) ||
        !/[^\s,;]/.test((theirs as string) + sent)
      )
        headers.delete(name);
    }
  }
  if (out.method !== undefined && !(typeof out.method === "string" && isHttpToken(out.method))) {
    throw new TypeError(
      `fallback endpoint "${endpoint.name}": transform(request) returned method ${JSON.stringify(out.method)}, no HTTP method name`,
    );
  }
  const method = out.method === undefined ? request.method : normalizeMethod(out.method);
  if (method !== request.method) {
    // A method the call's own could not be (one fetch forbids, one its `mode`
    // refuses: a PUT in `no-cors`) fails here, before anything is sent, as
    // the caller's would have at the call: never retried nor counted.
    try {
      checkMethod(method);
      checkPlatformFields(request.init, true, method);
    } catch (error) {
      throw new TypeError(
        `fallback endpoint "${endpoint.name}": transform(request) returned method ${JSON.stringify(method)}, which this call cannot send (${(error as Error).message})`,
        { cause: error },
      );
    }
  }
  let body = request.body;
  if (out.body !== undefined) {
    // An untouched body goes as the caller's bytes (a re-serialisation would
    // change 64-bit integers); a changed one is serialised.
    const parsed = await json();
    const unchanged =
      typeof out.body !== "string" && parsed && JSON.stringify(out.body) === JSON.stringify(parsed.value);
    if (!unchanged) {
      body = typeof out.body === "string" ? out.body : JSON.stringify(out.body);
      // JSON has no text for a symbol, a function or `undefined` in an array's stead: never an empty body.
      if (body === undefined) {
        throw new TypeError(
          `fallback endpoint "${endpoint.name}": transform(request) returned a body JSON cannot carry (a ${typeof out.body})`,
        );
      }
      // The new body, a string too (JSON the transform wrote), goes as JSON
      // unless the transform or the endpoint's `headers` chose its label, or
      // the old label's media type names JSON already (a parameter such as
      // multipart's `type=` does not), a Blob body's own type when no header
      // gives one. Any other label is the old body's (text/plain for a
      // string, a multipart boundary for a FormData, each given by the
      // platform to a `Request` built with it), and never describes this one.
      const label = headers.get("content-type");
      const chosen =
        setByTransform.has("content-type") ||
        (label !== null && label !== labelBefore) ||
        Object.keys(own).some((name) => name.toLowerCase() === "content-type");
      const old = label ?? (isBlob(request.body) ? request.body.type : "");
      if (!chosen) headers.set("content-type", /^[^;]*json/i.test(old) ? old : "application/json");
    }
  }
  // A GET or HEAD carries no body: one it was given is the transform's mistake, else the caller's body stays home.
  if (method === "GET" || method === "HEAD") {
    if (out.body != null) {
      throw new TypeError(`fallback endpoint "${endpoint.name}": transform(request) returned a ${method} with a body`);
    }
    body = null;
  }
  refuseOverQuota(body, request.init);
  return deriveRequest(request, { url: out.url, method, headers, body });
}

/**
 * What `transform` and `respond` see: the rebased URL, a copy of the
 * headers, and the JSON object body, parsed once per call and cloned per
 * endpoint so an edit in place cannot reach the next endpoint.
 */
export async function endpointView(
  request: CallRequest,
  endpoint: FallbackEndpoint,
  url: string,
  json: () => Promise<JsonBody | undefined>,
): Promise<EndpointRequest> {
  const value = (await json())?.value;
  return {
    method: request.method,
    url,
    headers: copyHeaders(request.headers),
    body: isJsonObject(value) ? (structuredClone(value) as JsonObject) : undefined,
    endpoint: endpoint.name,
  };
}

/** The caller's JSON body, read once per call however many endpoints ask. */
export function jsonOnce(request: CallRequest): () => Promise<JsonBody | undefined> {
  let parsed: Promise<JsonBody | undefined> | undefined;
  return () => {
    // Any body in memory, sent once or not (past `maxReplayBytes`, or read
    // whole in a page); a stream is never read here (`readJsonBody` leaves it).
    parsed ??= readJsonBody(request.body, headerOf(request.headers, "content-type"));
    return parsed;
  };
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
