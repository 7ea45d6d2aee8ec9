import { redactUrl } from "./redact-url.ts";

/**
 * The host (`url.host`: hostname and non-default port, lowercase) of an
 * absolute http(s) URL, without `new URL()` (about 1 µs a call, a large share
 * of the per-call budget). The quick path only takes a host that the URL
 * parser would give back as written (ASCII letters, digits, `-` and `.`: a
 * name not ending in a number or a canonical IPv4 address; a canonical
 * port); anything else (IPv6, `127.1`, a non-ASCII or invalid name, `:0080`,
 * an empty port) goes to the parser, which refuses what is invalid and
 * normalises the rest, so one host written two ways is one breaker.
 */
export function hostOf(url: string): string {
  const schemeEnd = url.indexOf("://");
  const https = schemeEnd === 5 && isScheme(url, "https");
  if (!https && !(schemeEnd === 4 && isScheme(url, "http"))) return parsedHost(url);
  const start = schemeEnd + 3;
  let end = start;
  let colon = -1;
  let lastDot = start - 1;
  let upper = false;
  for (; end < url.length; end++) {
    const c = url.charCodeAt(end);
    if (c === 47 || c === 63 || c === 35 || c === 92) break;
    if (colon >= 0) {
      if (!isDigit(c)) return parsedHost(url);
    } else if (c === 58) colon = end;
    else if (c === 46) {
      // An empty label (a leading dot, or two dots in a row) is the parser's.
      if (end === lastDot + 1) return parsedHost(url);
      lastDot = end;
    } else if (c >= 65 && c <= 90) upper = true;
    else if (!(isDigit(c) || (c >= 97 && c <= 122) || c === 45)) return parsedHost(url);
  }
  const nameEnd = colon < 0 ? end : colon;
  if (nameEnd === start || !isPlainName(url, start, nameEnd, lastDot)) return parsedHost(url);
  const name = upper ? url.slice(start, nameEnd).toLowerCase() : url.slice(start, nameEnd);
  if (colon < 0) return name;
  // A canonical port: digits without a leading zero, at most 65535.
  const digits = end - colon - 1;
  if (digits === 0 || digits > 5 || url.charCodeAt(colon + 1) === 48) return parsedHost(url);
  const port = url.slice(colon + 1, end);
  if (Number(port) > 65535) return parsedHost(url);
  return port === (https ? "443" : "80") ? name : `${name}:${port}`;
}

/** Whether `url` starts with `scheme` (lowercase letters), in any case. */
function isScheme(url: string, scheme: string): boolean {
  for (let i = 0; i < scheme.length; i++) if ((url.charCodeAt(i) | 0x20) !== scheme.charCodeAt(i)) return false;
  return true;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Whether the parser keeps the name `url[start, end)` (ASCII letters,
 * digits, `-` and `.`, no empty label but a trailing dot) as it is: a name
 * whose last label does not start with a digit and has no `--` (so no
 * Punycode `xn--` label in any case, which the parser validates), or a
 * dotted-quad IPv4 address written
 * canonically. Any other name ending in a number is read as an IPv4 address
 * (`127.1` becomes `127.0.0.1`): such hosts go to the parser.
 */
function isPlainName(url: string, start: number, end: number, lastDot: number): boolean {
  const index = url.indexOf("--", start);
  if (index >= 0 && index < end) return false;
  let labelStart = lastDot + 1;
  if (labelStart === end) {
    // A trailing dot: the last label is the one before it.
    if (lastDot === start) return false;
    labelStart = url.lastIndexOf(".", lastDot - 1) + 1;
    if (labelStart < start) labelStart = start;
  }
  return isDigit(url.charCodeAt(labelStart)) ? isCanonicalIpv4(url, start, end) : true;
}

/** Four decimal parts of 0..255 without leading zeros, as the parser writes an IPv4 address back. */
function isCanonicalIpv4(url: string, start: number, end: number): boolean {
  let parts = 0;
  let value = 0;
  let length = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? url.charCodeAt(i) : 46;
    if (c === 46) {
      if (length === 0 || value > 255 || ++parts > 4) return false;
      value = 0;
      length = 0;
    } else if (isDigit(c)) {
      if (length === 1 && value === 0) return false;
      value = value * 10 + (c - 48);
      length++;
    } else return false;
  }
  return parts === 4;
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
