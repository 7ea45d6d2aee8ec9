/**
 * A signal every runtime's fetch takes. A caller's signal is read by its
 * shape (`isListenableSignal`), and Node's fetch takes any such object, but
 * Deno's, Bun's, browsers' and `AbortSignal.any` take only the platform's
 * own (a polyfill's or an SDK's signal is refused with a `TypeError`, which
 * would pass for a network failure). This realm's is returned as it is; any
 * other (another realm's too, which costs nothing but the follower) is
 * followed by one of this realm's, aborted with its reason.
 */
export function platformSignal(signal: AbortSignal): AbortSignal {
  if (typeof AbortSignal !== "function" || (signal as unknown) instanceof AbortSignal) return signal;
  let follower = followers.get(signal);
  if (!follower) {
    // One follower per source, not per call: a long-lived source gets one listener, ever.
    const controller = new AbortController();
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
    // Kept once it follows: a signal that threw when listened to gets no deaf follower.
    follower = controller.signal;
    followers.set(signal, follower);
  }
  return follower;
}

/** Each such signal's follower, keyed weakly: it goes with its source. */
const followers = new WeakMap<AbortSignal, AbortSignal>();
