import type { Refine } from "./check-options.ts";

/**
 * Whether a URL reads as it is written. The URL parser drops spaces and
 * control characters around a URL, and tabs and newlines inside it: a path
 * put after such a prefix would go after them (`/v1%20/x`, `/v1%1F/x`).
 */
export const writtenAsParsed = (url: string): boolean =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  url.trim() === url && !/[\0-\x1f]/.test(url);

/** As the parser reads it: `https:user:pass@host` and `https://u:p@ss@host` have credentials too. */
export const hasCredentials = (url: URL): boolean => url.username !== "" || url.password !== "";

const ANY_BASE = "http://base.invalid/";

const credentialed = (url: string, base?: string): boolean =>
  URL.canParse(url, base) && hasCredentials(new URL(url, base));

/**
 * The checks of a URL that prefixes others (a chain endpoint's `url`, a
 * degradation rule's `match`): the caller's path and query go after it, or
 * are compared after it.
 */
export const prefixChecks: readonly Refine[] = [
  // A fragment would swallow them.
  [(url: string) => !url.includes("#"), "a URL without a #fragment"],
  [writtenAsParsed, "a URL without spaces around it or control characters"],
  // fetch refuses a URL with credentials; they belong in `headers`. Read
  // alone, as fetch outside a page reads it (`http:u:p@host`: against an
  // http base it would be a path), and against a base, as a page reads a
  // relative one (`//user:pass@host/v1`).
  [
    (url: string) => !credentialed(url) && !credentialed(url, ANY_BASE),
    "a URL without credentials (a user or password goes in `headers`)",
  ],
];

/**
 * An http(s) prefix the URL parser reads, absolute or relative (a chain endpoint's
 * `url` is checked as an absolute one instead): one it refuses (a port past
 * 65535, `http://[::1`, `https://`) starts no request's URL, as the layer
 * refuses such a URL before sending.
 */
export const parsesAsPrefix: Refine = [
  // Of http(s) too: the layer sends no other scheme (a typo such as `htps:` never matched).
  (url: string) => URL.canParse(url, ANY_BASE) && /^https?:$/.test(new URL(url, ANY_BASE).protocol),
  "an http(s) URL the URL parser reads (one a request's URL can start with)",
];
