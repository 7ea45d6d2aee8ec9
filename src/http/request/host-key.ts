import { redactUrl } from "./redact-url.ts";

/**
 * The host (`url.host`: hostname and non-default port, lowercase) of an
 * absolute http(s) URL, without `new URL()` (about 1 µs a call, a large share
 * of the per-call budget). Anything unusual falls back to the URL parser.
 */
export function hostOf(url: string): string {
  const schemeEnd = url.indexOf("://");
  if (schemeEnd === 4 || schemeEnd === 5) {
    const scheme = url.slice(0, schemeEnd).toLowerCase();
    if (scheme === "http" || scheme === "https") {
      const start = schemeEnd + 3;
      let end = start;
      while (end < url.length) {
        const c = url.charCodeAt(end);
        // "/" "?" "#" "\\" end the authority; "@" (userinfo) and "%" need the parser.
        if (c === 47 || c === 63 || c === 35 || c === 92) break;
        if (c === 64 || c === 37) return parsedHost(url);
        end++;
      }
      const host = url.slice(start, end).toLowerCase();
      if (host.length === 0 || !validPort(host)) return parsedHost(url);
      if (scheme === "https" && host.endsWith(":443")) return host.slice(0, -4);
      if (scheme === "http" && host.endsWith(":80")) return host.slice(0, -3);
      return host;
    }
  }
  return parsedHost(url);
}

/** No port, or digits within 0..65535 (anything else is for the URL parser to refuse). */
function validPort(host: string): boolean {
  const colon = host.lastIndexOf(":");
  if (colon < 0 || host.endsWith("]")) return true;
  const port = host.slice(colon + 1);
  return port === "" || (/^\d{1,5}$/.test(port) && Number(port) <= 65535);
}

function parsedHost(url: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    throw new TypeError(`resilience.fetch: invalid URL ${JSON.stringify(redactUrl(url))}`);
  }
  refuseUserinfo(parsed);
  return parsed.host;
}

/**
 * A URL with `user:pass@` is refused by fetch everywhere; it is refused here
 * at once (before any attempt, never counted against the host), with the
 * credentials cut from the message.
 */
export function refuseUserinfo(url: URL): void {
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      `resilience.fetch: ${redactUrl(url.href)} includes credentials (user:pass@); send them in a header`,
    );
  }
}
