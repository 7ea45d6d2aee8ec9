import { type HttpHandler, HttpResponse, http } from "msw";
import { isCorsSafelisted } from "../core/cors-safelist.ts";
import { shownValue } from "../core/shown-name.ts";
import { checkOptionsObject, type Fault } from "./faults.ts";

/** What a cross-origin API lets a browser page send and read. */
export interface CorsPolicy {
  /**
   * Request headers the API's preflight allows beyond the CORS-safelisted
   * ones (`accept`, `accept-language`, `content-language`, and `content-type`
   * with a form or text value). `"*"` allows every header.
   * @default "*"
   */
  allowHeaders?: "*" | readonly string[] | undefined;
  /**
   * Response headers the API exposes to page scripts beyond the safelisted
   * ones (`cache-control`, `content-language`, `content-length`,
   * `content-type`, `expires`, `last-modified`, `pragma`). A header not
   * exposed is invisible to `fetch` in a browser: a `Retry-After` the API
   * does not list here cannot be honoured. `"*"` exposes every header.
   * @default "*"
   */
  exposeHeaders?: "*" | readonly string[] | undefined;
}

/** The preflight handler, and what a browser lets through of an answer under the same policy. */
export interface CorsPreflight extends HttpHandler {
  /**
   * Wraps a fault so its answers look the way a browser shows them to page
   * code under this policy, in any environment (Node sends no preflight):
   * a request with a header the preflight would refuse (judged by name and
   * value), a method it does not list as written, or `credentials:
   * "include"` fails as a network error before the fault sees it; headers
   * page code cannot set are ignored; headers not exposed are removed from
   * the response, save a redirect's `Location` (the browser follows a
   * redirect without showing it to page code, and so does the client here);
   * `Access-Control-Allow-Origin: *` is added. MSW in Node
   * hands over a request rebuilt from the wire: its `credentials` reads
   * `"same-origin"`, and a lower-case `patch` reaches no handler.
   */
  respond(fault: Fault): Fault;
}

/** The statuses a browser follows (the Fetch standard's redirect statuses). */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const SAFELISTED_REQUEST = new Set(["accept", "accept-language", "content-language", "content-type", "range"]);
const SAFELISTED_RESPONSE = new Set([
  "cache-control",
  "content-language",
  "content-length",
  "content-type",
  "expires",
  "last-modified",
  "pragma",
]);
/**
 * Headers page code cannot set (the Fetch standard's forbidden request
 * headers): the runtime sets them or drops them, and a preflight never asks
 * about them.
 */
const RUNTIME_SET = new Set([
  "accept-charset",
  "accept-encoding",
  "access-control-request-headers",
  "access-control-request-method",
  "cookie2",
  "set-cookie",
  "connection",
  "content-length",
  "cookie",
  "date",
  "dnt",
  "expect",
  "host",
  "keep-alive",
  "origin",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "via",
]);

// Around each method only tabs and spaces go, as the browser splits the value (`\s` would take a no-break space too).
const FORBIDDEN_OVERRIDE = /(?:^|,)[ \t]*(?:connect|trace|track)[ \t]*(?:,|$)/i;

/** The methods the preflight answer lists: compared as written (a browser sends `patch` as it is, and it is no `PATCH`). */
const ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

function headerList(name: string, value: "*" | readonly string[] | undefined): "*" | Set<string> {
  if (value === undefined || value === "*") return "*";
  const expected = `corsPreflight({ ${name} }): expected "*" or an array of header names`;
  if (!Array.isArray(value)) throw new TypeError(`${expected}, got ${shownValue(value)}`);
  // The entry refused is shown as the layer shows a header name it refuses: text by its kind alone (a pair
  // written the wrong way round, `"Bearer …"`, holds a value there), never the whole list.
  const bad = value.findIndex((h) => typeof h !== "string" || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(h));
  if (bad !== -1) {
    const entry = value[bad];
    throw new TypeError(`${expected}, got ${typeof entry === "string" ? "a string" : shownValue(entry)} at ${bad}`);
  }
  return new Set(value.map((h) => h.toLowerCase()));
}

/**
 * Would a browser list this request header in a preflight (and need it
 * allowed)? On the request itself, by name and value, as the Fetch standard
 * judges it; in a preflight, which names headers without their values, by
 * name only (and happy-dom lists `content-type` always).
 */
function needsAllowing(name: string, value: string | undefined): boolean {
  if (RUNTIME_SET.has(name) || name.startsWith("sec-") || name.startsWith("proxy-")) return false;
  // A method override naming a forbidden method is forbidden too: dropped, never asked about.
  if (/^x-(?:http-method|http-method-override|method-override)$/.test(name) && FORBIDDEN_OVERRIDE.test(value ?? ""))
    return false;
  return value === undefined ? !SAFELISTED_REQUEST.has(name) : !isCorsSafelisted(name, value);
}

/**
 * Answers CORS preflights (`OPTIONS`) the way an API with `policy` does.
 * DOM environments such as happy-dom send one before each cross-origin
 * request; without this handler MSW reports it as unhandled. With no
 * options it allows every header and exposes every header (a permissive
 * API). Given `allowHeaders`, a preflight asking for any other header
 * fails as a network error, as a browser refuses it (happy-dom does not
 * check allowed headers itself, so the handler does); wrap the upstream's
 * fault with `respond` to see the same refusal in Node and to hide headers
 * the API does not expose.
 *
 * @example
 * const server = setupServer(corsPreflight()); // permissive
 * @example
 * const strict = corsPreflight({ allowHeaders: ["content-type", "authorization"], exposeHeaders: [] });
 * server.use(strict, upstream("POST", url, strict.respond(status(503, { retryAfter: 2 }))).handler);
 * // idempotencyKey: true now fails like "Failed to fetch"; Retry-After is not seen.
 */
export function corsPreflight(policy: CorsPolicy = {}): CorsPreflight {
  // A typo (`allowHeader`) would leave the policy permissive, and the test proving nothing.
  checkOptionsObject("corsPreflight(policy)", policy, ["allowHeaders", "exposeHeaders"]);
  const allow = headerList("allowHeaders", policy.allowHeaders);
  const expose = headerList("exposeHeaders", policy.exposeHeaders);
  // Names are compared in lower case: some runtimes (happy-dom under MSW) keep the case they were sent in.
  const allowed = (header: string, value?: string) => {
    const name = header.toLowerCase();
    return allow === "*" || allow.has(name) || !needsAllowing(name, value);
  };

  const handler = http.options("*", ({ request }) => {
    const asked = (request.headers.get("access-control-request-headers") ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== "");
    if (asked.some((h) => !allowed(h))) return HttpResponse.error();
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": ALLOWED_METHODS.join(", "),
        "access-control-allow-headers": allow === "*" ? "*" : [...allow].join(", "),
        "access-control-max-age": "600",
      },
    });
  });

  const respond = (fault: Fault): Fault => {
    if (typeof fault !== "function") throw new TypeError("corsPreflight(…).respond(fault): fault must be a function");
    return async (request, info) => {
      // A method the preflight does not list, or a credentialed request to an
      // answer that allows any origin (`*`), is refused as a browser refuses it.
      if (!ALLOWED_METHODS.includes(request.method) || request.credentials === "include") return HttpResponse.error();
      for (const [name, value] of request.headers) {
        if (!allowed(name, value)) return HttpResponse.error();
      }
      const answer = await fault(request, info);
      if (answer.type === "error") return answer;
      const headers = new Headers();
      // A redirect's `Location` is read by the browser, which follows it without showing it to page code,
      // not by the page: it stays, so the client here follows it too, exposed or not.
      const redirect = REDIRECT_STATUSES.has(answer.status);
      for (const [name, value] of answer.headers) {
        const lower = name.toLowerCase();
        // A browser never shows Set-Cookie to page code, whatever is exposed.
        if (lower === "set-cookie" || lower === "set-cookie2") continue;
        if (expose === "*" || expose.has(lower) || SAFELISTED_RESPONSE.has(lower) || (redirect && lower === "location"))
          headers.append(name, value);
      }
      headers.set("access-control-allow-origin", "*");
      if (expose !== "*" && expose.size > 0) headers.set("access-control-expose-headers", [...expose].join(", "));
      if (expose === "*") headers.set("access-control-expose-headers", "*");
      return new HttpResponse(answer.body, { status: answer.status, statusText: answer.statusText, headers });
    };
  };

  return Object.assign(handler, { respond });
}
