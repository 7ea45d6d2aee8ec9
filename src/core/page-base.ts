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
