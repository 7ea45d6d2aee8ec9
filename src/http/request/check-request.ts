import type { BrowserBuild } from "../../core/browser-build.ts";
import { isHttpToken } from "../../core/http-token.ts";

/** RFC 9110 token characters: what a method and a header name may be made of. */
/** What no header value may hold (the platform would refuse it, or worse, split the request). */
const BAD_VALUE = /[\0\r\n]/;

/**
 * The caller's own mistakes, found before anything is sent: a method that is
 * not a token, a header that is not valid, a port out of range. They throw a
 * `TypeError` at once; they are never retried and never count against the
 * host's breaker, which must hear only about the host.
 */
export function checkMethod(method: unknown): string {
  if (typeof method !== "string" || !isHttpToken(method)) {
    throw new TypeError(`resilience.fetch: init.method must be an HTTP method name, got ${show(method)}`);
  }
  return method.toUpperCase();
}

/**
 * Header names and values given as a record or pairs (a `Headers` was
 * checked when it was built). The message names the header, never its value.
 */
export function checkHeaders(headers: HeadersInit | undefined): void {
  if (!headers || headers instanceof Headers) return;
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const pair of pairs) {
    const [name, value] = pair as [unknown, unknown];
    if (typeof name !== "string" || !isHttpToken(name)) {
      throw new TypeError(`resilience.fetch: invalid header name ${show(name)}`);
    }
    if (BAD_VALUE.test(String(value))) {
      throw new TypeError(`resilience.fetch: header "${name}" has a CR, LF or NUL in its value`);
    }
  }
}

/**
 * A field the runtime's fetch refuses whatever the server answers (workerd
 * refuses `redirect: "error"` and any `integrity`): the runtime's own
 * `Request` constructor says so, so the call fails at once, never retried
 * nor counted against a healthy host's breaker. `integrity` is not the
 * runtime's to judge when the library follows the call's redirects (it
 * checks the final answer itself).
 */
export function checkPlatformFields(init: RequestInit | undefined, follows: boolean | undefined): void {
  // Browsers take both fields: the browser build leaves the check out.
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) return;
  const redirect = init?.redirect;
  const integrity = follows && (redirect ?? "follow") === "follow" ? "" : (init?.integrity ?? "");
  // Without a global `Request` (a runtime given its `fetch` as an option) there is nothing to ask.
  if ((redirect !== "error" && !integrity) || typeof Request !== "function") return;
  try {
    new Request("http://localhost/", { redirect: redirect ?? "follow", integrity });
  } catch (error) {
    throw new TypeError(`resilience.fetch: this runtime refuses the call: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : value === null ? "null" : typeof value;
}
