import { pageBase } from "../../core/page-base.ts";
import { redactUrl } from "../../core/redact-url.ts";

/**
 * A host the URL parser gives back as written, so it needs no parsing: an
 * http(s) scheme in any case, then a name of ASCII letters, digits, `-` and
 * `.` (no empty label but a trailing dot, no `--`, the last label not
 * starting with a digit) or a dotted-quad IPv4 address written canonically,
 * then an optional canonical port (no leading zero), then the end of the
 * authority. A name ending in a number is an IPv4 address to the parser
 * (`127.1` is `127.0.0.1`), and `--` may be Punycode it validates: both are
 * left to it.
 */
const PLAIN_HOST =
  /^http(s?):\/\/((?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)|(?:[a-z\d-]+\.)*[a-z-][a-z\d-]*\.?)(?::([1-9]\d{0,4}))?(?=[/?#\\]|$)/i;

/**
 * The host (`url.host`: hostname and non-default port, lowercase) of an
 * absolute http(s) URL, without `new URL()` (about 1 µs a call, a large share
 * of the per-call budget) when the host is plain (see `PLAIN_HOST`); anything
 * else (IPv6, `127.1`, a non-ASCII or invalid name, `:0080`, an empty port)
 * goes to the parser, which refuses what is invalid and normalises the rest,
 * so one host written two ways is one breaker.
 */
export function hostOf(url: string): string {
  // Most callers call one URL again and again (a generation endpoint): its
  // host is kept from the last call, which saves the match (about 0.1 µs).
  if (url === lastUrl) return lastHost;
  const plain = PLAIN_HOST.exec(url);
  const name = plain?.[2];
  const port = plain?.[3];
  // Only a plain absolute URL's host is kept: a relative one's depends on the page's address.
  if (!name || name.includes("--") || Number(port) > 65535) return parsedHost(url);
  let host = name.toLowerCase();
  if (port !== undefined && port !== (plain[1] ? "443" : "80")) host = `${host}:${port}`;
  lastUrl = url;
  lastHost = host;
  return host;
}
let lastUrl: string | undefined;
let lastHost = "";

function parsedHost(url: string): string {
  return parseRequestUrl(url).host;
}

/**
 * `url` parsed (against the page's address in a browser), or a `TypeError`
 * naming it without its query, fragment or credentials; a URL with
 * `user:pass@` is refused too (see {@link refuseUserinfo}), and one of a
 * scheme fetch does not send over HTTP (`wss:`, `ftp:`): the platform would
 * fail it as a network error, retried and counted against a host that
 * shares its name with the https one. (A plain http(s) URL's host is found
 * without parsing: see `hostOf`.)
 */
export function parseRequestUrl(url: string): URL {
  const base = pageBase();
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    throw new TypeError(`resilience.fetch: invalid URL ${JSON.stringify(redactUrl(url))}`);
  }
  refuseUserinfo(parsed);
  // `data:` and `blob:` read no network, and a call sets them aside before
  // this (a `transform` may still give one, sent as any other).
  if (!/^(?:https?|data|blob):$/.test(parsed.protocol)) {
    // The scheme alone is named: one that wraps a URL (`jdbc:postgresql://u:pw@…`) hides its userinfo from the redaction.
    throw new TypeError(`resilience.fetch: a ${parsed.protocol} URL is no http(s) URL, which fetch sends`);
  }
  return parsed;
}

/**
 * A URL with `user:pass@` is refused by fetch everywhere; it is refused here
 * at once (before any attempt, never counted against the host), with the
 * credentials cut from the message.
 */
function refuseUserinfo(url: URL): void {
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      `resilience.fetch: ${redactUrl(url.href)} includes credentials (user:pass@); send them in a header`,
    );
  }
}
