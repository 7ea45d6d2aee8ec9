/**
 * What every copy of the package loaded in this realm shares (an app's own
 * and the one an SDK bundles): the marks one copy's layer leaves on its
 * answers and errors, which a layer of another copy in front of it reads,
 * and what lies beneath a layer installed as the global fetch. Sets of each
 * copy's own would see that copy's marks only: an SDK's layer sending
 * through an app's installed one would multiply its attempts, and one in
 * front of another copy's would send a keyless POST again after a 500.
 * Kept under a registered symbol whose name carries this shape's version,
 * made at first use (importing the package touches no global).
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
  let found: unknown;
  try {
    const global = globalThis as { [KEY]?: unknown };
    found = global[KEY] ??= own;
  } catch {}
  // A global that takes no property (frozen), or holds something else there: this copy's own, as before.
  const shared = found as Partial<RealmShared> | undefined;
  known =
    shared?.afterOthers instanceof WeakSet && shared.afterSent instanceof WeakSet && shared.beneath instanceof WeakMap
      ? (shared as RealmShared)
      : own;
  return known;
}
