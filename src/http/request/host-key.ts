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
  if (schemeEnd === 4 || schemeEnd === 5) {
    const scheme = url.slice(0, schemeEnd).toLowerCase();
    if (scheme === "http" || scheme === "https") {
      const start = schemeEnd + 3;
      let end = start;
      let colon = -1;
      while (end < url.length) {
        const c = url.charCodeAt(end);
        if (c === 47 || c === 63 || c === 35 || c === 92) break;
        if (c === 58 && colon < 0) colon = end;
        else if (!(isNameChar(c) || (colon >= 0 && isDigit(c)))) return parsedHost(url);
        end++;
      }
      const name = url.slice(start, colon < 0 ? end : colon).toLowerCase();
      if (!isPlainName(name)) return parsedHost(url);
      if (colon < 0) return name;
      const port = url.slice(colon + 1, end);
      // A canonical port: digits without a leading zero, at most 65535.
      if (port === "" || port.length > 5 || port.charCodeAt(0) === 48 || Number(port) > 65535) return parsedHost(url);
      if (port === (scheme === "https" ? "443" : "80")) return name;
      return `${name}:${port}`;
    }
  }
  return parsedHost(url);
}

/** An ASCII letter, digit, `-` or `.` (before the port, digits count as name characters). */
function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 45 || c === 46;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * A name the URL parser keeps as it is: not empty, and either a dotted-quad
 * IPv4 address written canonically (`127.0.0.1`) or a name whose last label
 * does not start with a digit (any other name ending in a number is read as
 * an IPv4 address, `127.1` becoming `127.0.0.1`; such hosts go to the parser).
 */
function isPlainName(name: string): boolean {
  // Empty labels and Punycode (`xn--`, which the parser validates) are the parser's.
  if (name.length === 0 || name.startsWith(".") || name.includes("..") || name.includes("xn--")) return false;
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  const last = trimmed.slice(trimmed.lastIndexOf(".") + 1);
  if (last.length === 0) return false;
  return isDigit(last.charCodeAt(0)) ? isCanonicalIpv4(name) : true;
}

/** Four decimal parts of 0..255 without leading zeros, as the parser writes an IPv4 address back. */
function isCanonicalIpv4(name: string): boolean {
  const parts = name.split(".");
  return parts.length === 4 && parts.every((part) => /^(?:0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255);
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
