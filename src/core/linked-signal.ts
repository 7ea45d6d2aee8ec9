import type { BrowserBuild } from "./browser-build.ts";

/**
 * `AbortSignal.any([parent, own])`: aborted when either is, with its reason.
 *
 * A caller's signal may live for hours and serve every call (an app-wide
 * shutdown signal), and Node's `AbortSignal.any` keeps 170–270 bytes on
 * the source for each signal it ever made from it, until the source itself
 * goes (nodejs/node#54614): a million calls, a quarter of a gigabyte. Here
 * a source gets one listener of its own, and each signal made from it a
 * weak reference, dropped once that signal is collected: memory follows
 * the calls alive, not the calls made. The signal keeps following the
 * source after its call settled, as fetch's own does (aborting it still
 * cancels a body being read). Where weak references are not weak (workerd
 * without its `enable_weak_ref` flag) or missing, and in a page's build,
 * `AbortSignal.any` it is.
 */
export function linkedSignal(parent: AbortSignal, own: AbortSignal): AbortSignal {
  if (
    // A page's build: browsers hold a signal's dependants weakly, and a page
    // makes no million calls on one signal, so their own is enough there.
    (globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ ||
    typeof FinalizationRegistry !== "function" ||
    (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent === "Cloudflare-Workers"
  )
    return AbortSignal.any([parent, own]);
  if (parent.aborted || own.aborted) return AbortSignal.abort(parent.aborted ? parent.reason : own.reason);
  const controller = new AbortController();
  const abort = (source: AbortSignal) => () => controller.abort(source.reason);
  own.addEventListener("abort", abort(own), { once: true });
  let followers = followersOf.get(parent);
  if (!followers) {
    followers = new Set();
    followersOf.set(parent, followers);
    parent.addEventListener("abort", abortAll(followers), { once: true });
  }
  // The signal holds its abort (below), so the reference lives as long as it.
  const onParent = abort(parent);
  const ref = new WeakRef(onParent);
  followers.add(ref);
  collected ??= new FinalizationRegistry(([refs, gone]) => refs.delete(gone));
  collected.register(controller.signal, [followers, ref]);
  aborts.set(controller.signal, onParent);
  return controller.signal;
}

/** The source's listener, made apart so that it holds its followers and nothing of the call that made it. */
function abortAll(followers: Set<WeakRef<() => void>>): () => void {
  return () => {
    for (const ref of followers) ref.deref()?.();
  };
}

/**
 * Keeps `signal`, when it is a linked one, alive while `owner` is (the
 * response an attempt got): a transport whose body follows the signal by a
 * listener alone holds no signal, and a signal held by nothing would be
 * collected, its body then deaf to the caller's abort. `AbortSignal.any`
 * keeps such a signal until its source aborts; this, until the response goes.
 * Any other signal costs one map lookup.
 */
export function keepWhile(owner: object, signal: AbortSignal): void {
  if (!aborts.has(signal)) return;
  // Added to what the owner keeps already (an attempt's signal, then its call's).
  const kept = keptBy.get(owner);
  if (kept) kept.push(signal);
  else keptBy.set(owner, [signal]);
}

/** What `from` keeps alive, kept by `to` as well (a response rebuilt around the same body). */
export function keepAsWell(to: object, from: object): void {
  const kept = keptBy.get(from);
  if (kept) keptBy.set(to, kept);
}

const keptBy = new WeakMap<object, unknown[]>();

/** Each source's followers, each the abort of one signal; keyed weakly, so a source that goes takes them along. */
const followersOf = new WeakMap<AbortSignal, Set<WeakRef<() => void>>>();

/** Each signal's abort, alive as long as the signal is. */
const aborts = new WeakMap<AbortSignal, () => void>();

/** Made at the first link (nothing at module scope but plain maps). */
let collected: FinalizationRegistry<[Set<WeakRef<() => void>>, WeakRef<() => void>]> | undefined;
