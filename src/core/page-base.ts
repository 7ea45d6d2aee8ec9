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
 * The origin the browser sends: `self.origin`, which is `"null"` in a
 * sandboxed page or a `data:` worker (where `location.origin` still names
 * the URL's), then `location.origin` where `self.origin` is missing.
 */
export function pageOrigin(): string | undefined {
  const scope = globalThis as { origin?: unknown; location?: { origin?: unknown } };
  // A page's script may replace `self.origin` (a global `var origin = 1`): then the URL's is read.
  const origin = typeof scope.origin === "string" ? scope.origin : scope.location?.origin;
  return typeof origin === "string" ? origin : undefined;
}
