/**
 * What a relative URL resolves against where fetch resolves it: a page's
 * `document.baseURI` (which a `<base href>` moves off the page's own
 * address), a worker's `location.href`; `undefined` outside browsers.
 */
export function pageBase(): string | undefined {
  const scope = globalThis as { document?: { baseURI?: unknown }; location?: { href?: string } };
  const base = scope.document?.baseURI;
  return typeof base === "string" ? base : scope.location?.href;
}

/**
 * The origin the browser sends: `self.origin` where only it can tell (a
 * sandboxed page or a `data:` worker says `"null"` there while
 * `location.origin` names the URL's; an `about:blank` or `srcdoc` frame,
 * which inherits its parent's origin, has `"null"` in `location.origin`),
 * else `location.origin`: a page's script may replace `self.origin` (a
 * global `var origin = …`), never its location.
 */
export function pageOrigin(): string | undefined {
  const scope = globalThis as { origin?: unknown; location?: { origin?: unknown } };
  const own = scope.origin;
  const url = scope.location?.origin;
  const origin = own === "null" || (typeof own === "string" && (url === undefined || url === "null")) ? own : url;
  return typeof origin === "string" ? origin : undefined;
}
