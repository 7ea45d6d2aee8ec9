import type { EndpointRequest, FallbackEndpoint } from "../core/options/fallback-options.ts";
import { dropCredentials } from "./credentials.ts";
import { copyHeaders } from "./headers.ts";
import { readJsonBody } from "./json-body.ts";
import { isReplayable, type PreparedCall } from "./prepare-call.ts";

/** The caller's request as a chain sees it, before any endpoint rewrites it. */
export interface ChainRequest {
  method: string;
  url: string;
  headers: Headers;
  /** The body as the caller gave it (replayable). */
  rawBody: BodyInit | null | undefined;
  signal: AbortSignal | undefined;
}

export function toChainRequest(call: PreparedCall): ChainRequest {
  return {
    method: call.method,
    url: call.url,
    headers: copyHeaders(call.headers),
    rawBody: call.body,
    signal: call.signal,
  };
}

/**
 * Joins an endpoint's base URL with the rest of the caller's URL (the part
 * after the chain's prefix), without doubling or losing the slash between.
 */
export function rebase(base: string, rest: string): string {
  if (rest === "") return base;
  if (rest.startsWith("?") || rest.startsWith("#")) {
    return rest.startsWith("?") && base.includes("?") ? `${base}&${rest.slice(1)}` : base + rest;
  }
  if (base.endsWith("/") && rest.startsWith("/")) return base + rest.slice(1);
  if (!base.endsWith("/") && !rest.startsWith("/")) return `${base}/${rest}`;
  return base + rest;
}

/**
 * The request for one endpoint: rebased URL, credentials dropped when its
 * origin differs from the caller's (unless the endpoint sets them itself),
 * the endpoint's own headers, the JSON body parsed, then `transform`.
 */
export async function endpointRequest(
  request: ChainRequest,
  endpoint: FallbackEndpoint,
  rest: string,
  /** Whether the endpoint's origin differs from the caller's (decided once, when the chain is built). */
  crossOrigin: boolean,
  sensitive: readonly string[],
): Promise<EndpointRequest> {
  const url = endpoint.url === undefined ? request.url : rebase(endpoint.url, rest);
  // Copy the headers only when this endpoint changes them.
  const changes = crossOrigin || endpoint.headers !== undefined || endpoint.transform !== undefined;
  const headers = changes ? copyHeaders(request.headers) : request.headers;
  if (crossOrigin) dropCredentials(headers, sensitive);
  for (const [name, value] of Object.entries(endpoint.headers ?? {})) headers.set(name, value);
  const body = await parseJsonBody(request);
  // Each endpoint gets its own copy: a transform that edits the body in place
  // must not change what the next endpoint receives.
  const shaped: EndpointRequest = {
    method: request.method,
    url,
    headers,
    body: endpoint.transform && body !== undefined ? structuredClone(body) : body,
    endpoint: endpoint.name,
  };
  if (!endpoint.transform) return shaped;
  const transformed = await endpoint.transform(shaped);
  if (typeof transformed !== "object" || transformed === null || typeof transformed.url !== "string") {
    throw new TypeError(
      `fallback endpoint "${endpoint.name}": transform(request) must return a request object with a url`,
    );
  }
  return transformed;
}

/**
 * Turns an endpoint request back into a call. The caller's bytes are sent as
 * they are, unless a `transform` ran and left a JSON body, which is then
 * serialised (a string body is sent as it is).
 */
export function endpointCall(
  shaped: EndpointRequest,
  request: ChainRequest,
  transformed: boolean,
  signal: AbortSignal | undefined,
): PreparedCall {
  const changed = transformed && shaped.body !== undefined;
  const body: BodyInit | null | undefined = changed
    ? typeof shaped.body === "string"
      ? shaped.body
      : JSON.stringify(shaped.body)
    : request.rawBody;
  if (changed && typeof shaped.body !== "string" && shaped.body !== undefined && !shaped.headers.has("content-type")) {
    shaped.headers.set("content-type", "application/json");
  }
  const method = shaped.method.toUpperCase();
  const sendsBody = method !== "GET" && method !== "HEAD" && body != null;
  const init: RequestInit = {
    method,
    headers: shaped.headers,
    ...(sendsBody ? { body } : {}),
    ...(signal ? { signal } : {}),
  };
  return {
    input: shaped.url,
    init,
    url: shaped.url,
    method,
    headers: shaped.headers,
    body: sendsBody ? body : undefined,
    signal,
    replayable: isReplayable(sendsBody ? body : undefined),
    hasIdempotencyKey: shaped.headers.has("idempotency-key"),
  };
}

const parsed = new WeakMap<ChainRequest, Promise<unknown>>();

/** The caller's body as JSON, parsed once per call; `undefined` when it is not JSON. */
export function parseJsonBody(request: ChainRequest): Promise<unknown> {
  let result = parsed.get(request);
  if (!result) {
    result = readJsonBody(request.rawBody, request.headers.get("content-type"));
    parsed.set(request, result);
  }
  return result;
}
