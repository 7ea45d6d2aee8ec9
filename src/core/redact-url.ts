/**
 * A URL as events, errors and health show it: without its userinfo
 * (`user:pass@`), query string or fragment, which carry credentials and API
 * keys (`?key=…`). Works on text that does not parse as a URL too, so an
 * invalid URL's error message cannot leak them either.
 */
export function redactUrl(url: string): string {
  // The authority starts after the scheme (if any) and any slashes (the URL parser
  // also reads `https:user:pass@host` and `https:\\host` as an authority).
  const start = /^(?:[a-z][a-z\d+.-]*:)?[\\/]*/i.exec(url)?.[0].length ?? 0;
  const at = url.lastIndexOf("@");
  if (at >= start && !URL.canParse(url)) {
    // Text no parser reads may hide userinfo anywhere before its last `@`
    // (a key holding `/`, `?` or `#`): all of it goes.
    return url.slice(0, start) + withoutQuery(url.slice(at + 1));
  }
  const head = withoutQuery(url);
  // Parsed, the authority ends at the next slash or backslash.
  const slash = head.slice(start).search(/[\\/]/);
  const end = slash < 0 ? head.length : start + slash;
  const userinfo = head.lastIndexOf("@", end - 1);
  return userinfo < start ? head : head.slice(0, start) + head.slice(userinfo + 1);
}

function withoutQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/**
 * A URL quoted in text: from its scheme to the next space. A URL may hold
 * `)` or `'` (`/wiki/A_(b)`, `/o'brien`), so nothing else ends it, even
 * where it ends a parenthesis (Deno's "for url (https://…): …"). An
 * `http:`, `https:`, `ws:` or `wss:` needs no slashes (the URL parser reads
 * `https:user:pass@host` as `https://user:pass@host`). A match starts only
 * where a scheme can (no scheme character before it), so text from a
 * hostile endpoint is read in linear time.
 */
export const URL_IN_TEXT: RegExp = /(?<![\w+.-])(?:[a-z\d+.-]+:\/\/|(?:https?|wss?):)\S*/gi;

/** What may close the text around a URL with a query: kept when the query goes. */
const CLOSING = `)'",.;:]`;

/**
 * Text that may quote URLs (a platform's error message: Deno's names the URL,
 * query and all; Node's names a URL with credentials it refused), with each
 * URL's userinfo, query and fragment cut, as {@link redactUrl} cuts them. A
 * query runs to the next space, less the closing punctuation it ends on, kept.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => {
    const query = url.search(/[?#]/);
    if (query < 0) return redactUrl(url);
    let end = url.length;
    while (end > query + 1 && CLOSING.includes(url.charAt(end - 1))) end--;
    return redactUrl(url.slice(0, query)) + url.slice(end);
  });
}

/**
 * `error` with the URLs quoted in its message, stack and causes (five deep)
 * cut: a platform's error (Deno's names the URL, query and all) reaches
 * callers as a cause, and a logger that prints causes must find no key
 * there either. An error whose message cannot be set (a `DOMException`'s,
 * a frozen one) is replaced by a plain `Error` of the same name and `code`
 * saying the same without the URL.
 */
export function redactErrorChain(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth >= 5) return error;
  const cause = redactErrorChain(error.cause, depth + 1);
  const message = redactUrlsIn(error.message);
  const stack = typeof error.stack === "string" ? redactUrlsIn(error.stack) : error.stack;
  if (message === error.message && stack === error.stack && cause === error.cause) return error;
  try {
    error.message = message;
    if (stack !== undefined) error.stack = stack;
    if (cause !== error.cause) error.cause = cause;
  } catch {
    // Read-only or frozen: replaced below.
  }
  if (error.message === message && error.cause === cause) return error;
  const copy = new Error(message, cause === undefined ? undefined : { cause });
  copy.name = error.name;
  // The platform's code (`ECONNREFUSED`) is what a logger or a retry rule reads.
  const { code } = error as { code?: unknown };
  if (typeof code === "string") Object.assign(copy, { code });
  return copy;
}
