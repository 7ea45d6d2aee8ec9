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

/** A URL quoted in text: from its scheme to a space, a quote or a closing parenthesis. */
export const URL_IN_TEXT: RegExp = /\b[a-z][a-z\d+.-]*:\/\/[^\s)'"]*/gi;

/**
 * Text that may quote URLs (a platform's error message: Deno's names the URL,
 * query and all; Node's names a URL with credentials it refused), with each
 * URL's userinfo, query and fragment cut.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(/(\b[a-z][a-z\d+.-]*:\/\/)(?:[^\s/?#@)'"]*@)?([^\s?#)'"]*)(?:[?#][^\s)'"]*)?/gi, "$1$2");
}

/**
 * Cuts the URLs quoted in the messages of `error` and its causes, five deep:
 * a platform's error (Deno's names the URL, query and all) reaches callers as
 * a cause, and a logger that prints causes must find no key there either.
 */
export function redactErrorChain(error: unknown): void {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const message = redactUrlsIn(current.message);
    if (message !== current.message) {
      try {
        current.message = message;
      } catch {
        // A frozen error keeps its message: nothing else can be done with it.
      }
    }
    current = current.cause;
  }
}
