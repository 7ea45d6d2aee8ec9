/** The members of `RequestInit` that fetch reads, its own or inherited. */
const INIT_MEMBERS =
  "method headers body referrer referrerPolicy mode credentials cache redirect integrity keepalive signal duplex priority window".split(
    " ",
  );

/**
 * The caller's `init` read once, as fetch reads it when called, into an
 * object of the call's own: its own enumerable fields (runtime extensions
 * such as `cf` or `dispatcher` among them), then each member fetch knows
 * that it holds otherwise (inherited from a class or `Object.create`,
 * non-enumerable, behind a `Proxy`'s trap, a `Request` given as `init`).
 * Every later step copies this object with a spread and reads it as often
 * as it needs: a getter runs once, and a caller that edits its `init` for
 * its next call changes nothing in this one.
 */
export function plainInit(init: RequestInit | undefined): RequestInit | undefined {
  if (init == null) return undefined;
  // fetch refuses an `init` that is no object (`fetch(url, "POST")`), at once.
  if (typeof init !== "object" && typeof init !== "function") {
    throw new TypeError(`resilience.fetch: init must be an object, got ${typeof init}`);
  }
  const plain: Record<string, unknown> = { ...init };
  for (const member of INIT_MEMBERS) {
    if (!(member in plain)) {
      const value = (init as Record<string, unknown>)[member];
      if (value !== undefined) plain[member] = value;
    }
  }
  return plain as RequestInit;
}
