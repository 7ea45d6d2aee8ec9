import { isCorsSafelisted } from "../core/cors-safelist.ts";
import { kindOf } from "../core/kind-of.ts";
import { pageBase, pageOrigin } from "../core/page-base.ts";
import { trimOws } from "../core/trim.ts";

/**
 * What a browser's fetch says when it refuses a cross-origin response or its
 * preflight, in the three engines: it says nothing more, on purpose (the
 * reason goes to the console only). A refused connection or a DNS failure
 * reads the same, which is why the hint says "probably".
 */
const BROWSER_NETWORK_ERRORS = [
  /^Failed to fetch\b/, // Chromium
  /^NetworkError when attempting to fetch resource/, // Firefox
  /^Load failed$/, // Safari
];

/**
 * Headers a page's fetch never sends (the Fetch standard's forbidden names,
 * and `user-agent`, which Chromium drops too): no preflight asks for them.
 */
const NEVER_SENT =
  /^(?:accept-(?:charset|encoding)|access-control-request-(?:headers|method)|connection|content-length|cookie2?|date|dnt|expect|host|keep-alive|origin|referer|set-cookie|te|trailer|transfer-encoding|upgrade|user-agent|via|proxy-.*|sec-.*)$/;

/**
 * The standard forbids the method-override headers too when one of their
 * values names a method fetch refuses (`CONNECT`, `TRACE`, `TRACK`).
 */
const isForbiddenOverride = (name: string, value: string): boolean =>
  /^x-(?:http-method|http-method-override|method-override)$/.test(name) &&
  value.split(",").some((method) => /^(?:connect|trace|track)$/i.test(trimOws(method)));

/**
 * The headers a preflight must allow: every one the browser sends but those
 * safelisted by name and value.
 */
function unsafeHeaders(headers: Headers): string[] {
  return [...headers]
    .filter(
      ([name, value]) => !NEVER_SENT.test(name) && !isForbiddenOverride(name, value) && !isCorsSafelisted(name, value),
    )
    .map(([name]) => name);
}

/** Where the call ran, when the caller knows better than the globals. */
export interface CorsHintContext {
  /** Whether the code runs in a browser page. @default `typeof document !== "undefined"` */
  inBrowser?: boolean;
  /** The page's origin, as the browser sends it. @default `self.origin`, else `location.origin` */
  origin?: string;
  /** The request's headers: those a preflight must allow are named in the hint. */
  headers?: Headers;
  /**
   * Whether the request body was a `ReadableStream`: Chromium sends one only
   * over HTTP/2 or later, and over HTTP/1.1 refuses it with the same
   * "Failed to fetch", whatever the origin.
   */
  stream?: boolean;
}

/**
 * A short hint when `error` is probably a browser's CORS refusal of a call to
 * `url`: a `TypeError` such as "Failed to fetch" (found on the error or its
 * `cause` chain), in a browser page, for a URL of another origin. With
 * `stream`, it names the streamed body first, on any origin. Returns
 * `undefined` otherwise (Node, same origin without a stream, any other error).
 *
 * @example
 * corsHint(new TypeError("Failed to fetch"), "https://api.example/v1/images", { origin: "https://app.example", inBrowser: true })
 * // "probably refused by the browser's CORS rules: https://api.example must …"
 */
export function corsHint(error: unknown, url: string | URL, context: CorsHintContext = {}): string | undefined {
  const inBrowser = context.inBrowser ?? typeof document !== "undefined";
  if (!inBrowser || !isBrowserNetworkError(error)) return undefined;
  const reasons = [
    context.stream && "the streamed request body (Chromium streams uploads over HTTP/2+ only)",
    crossOriginHint(url, context),
  ].filter(Boolean);
  return reasons.length > 0 ? `probably ${reasons.join("; or ")}` : undefined;
}

function crossOriginHint(url: string | URL, context: CorsHintContext): string | undefined {
  const origin = context.origin ?? pageOrigin();
  let target: URL;
  try {
    // Where fetch resolved it (a `<base href>`, a sandboxed page's own address); an opaque origin ("null") is no base.
    target = new URL(url, pageBase() ?? (origin === "null" ? undefined : origin));
  } catch {
    return undefined;
  }
  if (origin === undefined || target.origin === origin) return undefined;
  const custom = context.headers ? unsafeHeaders(context.headers) : [];
  const headers = custom.length > 0 ? ` and the request headers ${custom.join(", ")}` : "";
  // The browser hides a redirect it followed: the origin that refused may be the one it led to.
  return (
    `refused by the browser's CORS rules: ${target.origin} must allow the origin ${origin}${headers} ` +
    "in its preflight (OPTIONS) answer, and send Access-Control-Allow-Origin on every answer, errors and " +
    "gateway 5xx included, as must any origin it redirects to (which sees the origin null); the browser " +
    "console names the exact cause"
  );
}

function isBrowserNetworkError(error: unknown): boolean {
  let current = error;
  // Follow a few causes: the library wraps the TypeError (RetryExhaustedError).
  // An error of any realm: an iframe's fetch used as the transport throws its own.
  for (let depth = 0; depth < 5 && kindOf(current) === "Error"; depth++) {
    const { name, message } = current as Error;
    if (name === "TypeError" && BROWSER_NETWORK_ERRORS.some((re) => re.test(message))) return true;
    current = (current as Error).cause;
  }
  return false;
}
