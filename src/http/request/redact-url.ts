/**
 * A URL as events, errors and health show it: without its userinfo
 * (`user:pass@`), query string or fragment, which carry credentials and API
 * keys (`?key=…`). Works on text that does not parse as a URL too, so an
 * invalid URL's error message cannot leak them either.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  const head = cut < 0 ? url : url.slice(0, cut);
  const scheme = head.indexOf("//");
  if (scheme < 0) return head;
  const authorityEnd = head.indexOf("/", scheme + 2);
  const authority = head.slice(scheme + 2, authorityEnd < 0 ? undefined : authorityEnd);
  const at = authority.lastIndexOf("@");
  if (at < 0) return head;
  return head.slice(0, scheme + 2) + authority.slice(at + 1) + (authorityEnd < 0 ? "" : head.slice(authorityEnd));
}
