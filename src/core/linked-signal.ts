/**
 * `AbortSignal.any([parent, own])`: aborted when either is, with its reason.
 *
 * A caller's signal may live for hours and serve every call (an app-wide
 * shutdown signal), and Node's `AbortSignal.any` keeps about 270 bytes on
 * the source for each signal it ever made from it, until the source itself
 * goes (nodejs/node#54614): a million calls, a quarter of a gigabyte. Here
 * a source gets one listener of its own, and each signal made from it a
 * weak reference, dropped once that signal is collected: memory follows
 * the calls alive, not the calls made. The signal keeps following the
 * source after its call settled, as fetch's own does (aborting it still
 * cancels a body being read). Where weak references are not weak (workerd
 * without its `enable_weak_ref` flag) or missing, `AbortSignal.any` it is.
 */
export function linkedSignal(parent: AbortSignal, own: AbortSignal): AbortSignal {
  if (!weakRefsWork()) return AbortSignal.any([parent, own]);
  if (parent.aborted) return AbortSignal.abort(parent.reason);
  if (own.aborted) return AbortSignal.abort(own.reason);
  const controller = new AbortController();
  const { signal } = controller;
  controllers.set(signal, controller);
  own.addEventListener("abort", () => controller.abort(own.reason), { once: true });
  let followers = followersOf.get(parent);
  if (!followers) {
    const made: Followers = { refs: new Set(), pruneAt: 64 };
    followers = made;
    followersOf.set(parent, made);
    parent.addEventListener(
      "abort",
      () => {
        for (const ref of made.refs) {
          const follower = ref.deref();
          if (follower) controllers.get(follower)?.abort(parent.reason);
        }
        made.refs.clear();
      },
      { once: true },
    );
  }
  const ref = new WeakRef(signal);
  followers.refs.add(ref);
  // Dropped once collected; and, where no collection is reported, in
  // batches, each after the set doubled: linear in the calls made.
  collected ??= typeof FinalizationRegistry === "function" ? new FinalizationRegistry(forget) : undefined;
  collected?.register(signal, { refs: followers.refs, ref });
  if (followers.refs.size >= followers.pruneAt) {
    for (const ref of followers.refs) if (!ref.deref()) followers.refs.delete(ref);
    followers.pruneAt = Math.max(64, followers.refs.size * 2);
  }
  return signal;
}

interface Followers {
  refs: Set<WeakRef<AbortSignal>>;
  pruneAt: number;
}

/** Made at the first link (nothing at module scope but plain maps). */
let collected: FinalizationRegistry<{ refs: Set<WeakRef<AbortSignal>>; ref: WeakRef<AbortSignal> }> | undefined;

function forget({ refs, ref }: { refs: Set<WeakRef<AbortSignal>>; ref: WeakRef<AbortSignal> }): void {
  refs.delete(ref);
}

/** Each source's followers; keyed weakly, so a source that goes takes them along. */
const followersOf = new WeakMap<AbortSignal, Followers>();

/** Each signal's controller, alive as long as the signal is. */
const controllers = new WeakMap<AbortSignal, AbortController>();

/** workerd holds a `WeakRef`'s target for good unless its `enable_weak_ref` flag is on: no way to tell, so not there. */
const weakRefsWork = (): boolean =>
  typeof WeakRef === "function" &&
  (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent !== "Cloudflare-Workers";
