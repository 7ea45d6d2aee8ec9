/**
 * What every copy of the package loaded in this realm shares (an app's own
 * and the one an SDK bundles): the marks one copy's layer leaves on its
 * answers and errors, which a layer of another copy in front of it reads,
 * and what lies beneath a layer installed as the global fetch. Sets of each
 * copy's own would see that copy's marks only: an SDK's layer sending
 * through an app's installed one would multiply its attempts, and one in
 * front of another copy's would send a keyless POST again after a 500.
 * Kept under a registered symbol whose name carries this shape's version,
 * made at first use (importing the package touches no global). Where the
 * global cannot hold it (frozen, or something else is there), each copy
 * keeps its own, and marks are read within that copy only.
 */
export interface RealmShared {
  /** Answers that came after another request of their call (see `followsOthers`). */
  readonly afterOthers: WeakSet<object>;
  /** Errors after the host had the request: a redirect's later hop, a retry refused after an answer. */
  readonly afterSent: WeakSet<object>;
  /** A layer's `fetch` → the fetch beneath it (see `globalFetch`). */
  readonly beneath: WeakMap<object, unknown>;
  /** The request a layer is handing the global fetch right now. */
  sending: unknown;
}

const KEY = Symbol.for("@storycore/resilient-fetch/realm@1");

let known: RealmShared | undefined;

export function realm(): RealmShared {
  if (known) return known;
  const own: RealmShared = {
    afterOthers: new WeakSet(),
    afterSent: new WeakSet(),
    beneath: new WeakMap(),
    sending: undefined,
  };
  try {
    const global = globalThis as { [KEY]?: unknown };
    global[KEY] ??= own;
    const found = global[KEY] as Partial<RealmShared>;
    // Something else there (a value, a frozen copy that could not take `sending`), or a getter that
    // throws: this copy's own, as if no other copy were loaded.
    known =
      found.afterOthers instanceof WeakSet &&
      found.afterSent instanceof WeakSet &&
      found.beneath instanceof WeakMap &&
      !Object.isFrozen(found)
        ? (found as RealmShared)
        : own;
  } catch {
    // A global that takes no property there (frozen).
    known = own;
  }
  return known;
}
