import { trimOws } from "../../core/trim.ts";

/**
 * The referrer of each request of a call whose redirects the library
 * follows (outside browsers), the first and every later hop's: worked out
 * here as the Referrer Policy standard determines it and sent as it is,
 * because undici applies some policies wrongly (it sends the origin under
 * `no-referrer-when-downgrade` with no downgrade, none under `same-origin`
 * to the same origin, and a `data:` referrer under `no-referrer`).
 */

/**
 * The referrer a request to `target` carries under `policy` (`""` for none;
 * the default policy is `strict-origin-when-cross-origin`). Only an http(s)
 * referrer is carried on: a local one (`data:`, `blob:`, `about:`) is never
 * sent, as the standard says, and any other scheme is not carried past the
 * first hop (none is the safe side of what a platform might send).
 */
export function sentReferrer(referrer: string, policy: string, target: string): string {
  const from = URL.canParse(referrer) ? new URL(referrer) : undefined;
  if (!from || !/^https?:$/.test(from.protocol)) return "";
  from.username = from.password = from.hash = "";
  const to = new URL(target);
  const origin = `${from.origin}/`;
  const full = from.href.length > 4096 ? origin : from.href;
  const same = from.origin === to.origin;
  const downgrade = trustworthy(from) && !trustworthy(to);
  switch (policy) {
    case "no-referrer":
      return "";
    case "origin":
      return origin;
    case "unsafe-url":
      return full;
    case "same-origin":
      return same ? full : "";
    case "origin-when-cross-origin":
      return same ? full : origin;
    case "strict-origin":
      return downgrade ? "" : origin;
    case "no-referrer-when-downgrade":
      return downgrade ? "" : full;
    default:
      return same ? full : downgrade ? "" : origin;
  }
}

/** A potentially trustworthy URL: https, or a loopback host (`localhost.` and `x.localhost.` too, as Secure Contexts says). */
const trustworthy = (url: URL): boolean =>
  url.protocol === "https:" || /^(?:(?:.+\.)?localhost\.?|127(?:\.\d+){3}|\[::1\])$/.test(url.hostname);

const REFERRER_POLICY =
  /^(?:no-referrer(?:-when-downgrade)?|same-origin|(?:strict-)?origin(?:-when-cross-origin)?|unsafe-url)$/;

/**
 * The policy a response's `Referrer-Policy` sets (`undefined` for none): the
 * last known token, as the standard parses the header (`1#policy-token`).
 * A value that does not parse (a quoted string, a character that is no
 * letter or `-`, such as a no-break space) sets none at all, and only
 * spaces and tabs surround a token.
 */
export function referrerPolicyOf(response: Response): ReferrerPolicy | undefined {
  const value = response.headers.get("referrer-policy");
  if (value === null) return undefined;
  let policy: ReferrerPolicy | undefined;
  for (const element of value.split(",")) {
    const token = trimOws(element);
    // Empty list elements are allowed (`a, , b`).
    if (token === "") continue;
    if (!/^[A-Za-z-]+$/.test(token)) return undefined;
    if (REFERRER_POLICY.test(token)) policy = token as ReferrerPolicy;
  }
  return policy;
}
