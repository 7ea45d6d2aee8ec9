/**
 * A URL as events, errors and health show it: without its userinfo
 * (`user:pass@`), query string or fragment, which carry credentials and API
 * keys (`?key=…`). Works on text that does not parse as a URL too, so an
 * invalid URL's error message cannot leak them either.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  const head = cut < 0 ? url : url.slice(0, cut);
  // The authority starts after the scheme (if any) and any slashes (the URL parser
  // also reads `https:user:pass@host` and `https:\\host` as an authority)
  // and ends at the next slash or backslash.
  const start = /^(?:[a-z][a-z\d+.-]*:)?[\\/]*/i.exec(head)?.[0].length ?? 0;
  const slash = head.slice(start).search(/[\\/]/);
  const end = slash < 0 ? head.length : start + slash;
  const at = head.lastIndexOf("@", end - 1);
  if (at < start) return head;
  return head.slice(0, start) + head.slice(at + 1);
}

/**
 * Text that may quote URLs (a platform's error message: Deno's names the URL,
 * query and all), with each URL's query and fragment cut. Userinfo needs no
 * cut: a URL with `user:pass@` is refused before it reaches the platform.
 */
export function redactUrlsIn(text: string): string {
  return text.replace(/(\b[a-z][a-z\d+.-]*:\/\/[^\s?#)'"]*)[?#][^\s)'"]*/gi, "$1");
}
