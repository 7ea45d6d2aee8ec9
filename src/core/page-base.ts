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
 * The origin the browser sends: `"null"` when `self.origin` says so (a
 * sandboxed page or a `data:` worker, where `location.origin` still names
 * the URL's), else `location.origin`, else `self.origin`. A page's script
 * may replace `self.origin` (a global `var origin = …`), not its location.
 */
export function pageOrigin(): string | undefined {
  const scope = globalThis as { origin?: unknown; location?: { origin?: unknown } };
  const own = scope.origin;
  const origin = own === "null" ? own : (scope.location?.origin ?? own);
  return typeof origin === "string" ? origin : undefined;
}
