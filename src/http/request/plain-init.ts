/** The members of `RequestInit` that fetch reads, its own or inherited. */
const INIT_MEMBERS =
  "method headers body referrer referrerPolicy mode credentials cache redirect integrity keepalive signal duplex priority window".split(
    " ",
  );

/**
 * The caller's `init` as a plain object, so that copying it (`{ ...init }`,
 * as every step that changes the request does) keeps every field fetch
 * would read: fetch reads an `init` member wherever it comes from, while a
 * spread copies only own ones. An `init` built on a prototype (a class, an
 * `Object.create` of defaults, a `Request` given as `init`) gets its
 * inherited members copied in; a plain object is returned as it is.
 */
export function plainInit(init: RequestInit | undefined): RequestInit | undefined {
  if (init == null || typeof init !== "object") return init;
  const proto: unknown = Object.getPrototypeOf(init);
  if (proto === Object.prototype || proto === null) return init;
  const plain: Record<string, unknown> = { ...init };
  for (const member of INIT_MEMBERS) {
    if (!(member in plain) && (init as Record<string, unknown>)[member] !== undefined) {
      plain[member] = (init as Record<string, unknown>)[member];
    }
  }
  return plain as RequestInit;
}
