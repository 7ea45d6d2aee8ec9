import { shownValue } from "./shown-name.ts";

/**
 * A minimal typed emitter. Emitters check `has(name)` before building an
 * event, so an unobserved event costs nothing on the hot path.
 */
export type Listener<T> = (event: T) => void;

/**
 * A subscription: each listener by its registration (a listener is
 * registered once however often it subscribes), so one unsubscribed and
 * subscribed again during a dispatch is a new registration, which that
 * dispatch does not reach.
 */
type Registrations<T> = Map<Listener<T>, { listener: Listener<T> }>;

export class Emitter<Events extends object> {
  #listeners: { [K in keyof Events]?: Registrations<Events[K]> } = {};

  /** `names`: every event there is; subscribing to any other name is a typo, refused at once. */
  constructor(names: readonly (keyof Events)[]) {
    for (const name of names) this.#listeners[name] = new Map();
  }

  /** Subscribes; the returned function unsubscribes this subscription (idempotent). */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    // A name is a string: anything else (an object whose toString says "retry") is refused, never converted.
    const set = typeof name === "string" && Object.hasOwn(this.#listeners, name) ? this.#listeners[name] : undefined;
    if (!set) {
      throw new TypeError(
        // Shown as refused values are: a URL passed here by mistake (arguments swapped) keeps its key out.
        `on(${shownValue(name)}, listener): unknown event, expected one of ${Object.keys(this.#listeners).join(", ")}`,
      );
    }
    if (typeof listener !== "function") {
      throw new TypeError(`on("${String(name)}", listener): listener must be a function, got ${typeof listener}`);
    }
    const registration = set.get(listener) ?? { listener };
    set.set(listener, registration);
    // Only its own registration: a stale unsubscribe (a cleanup run after the
    // listener subscribed again) leaves the newer one alone.
    return () => {
      if (set.get(listener) === registration) set.delete(listener);
    };
  }

  has(name: keyof Events): boolean {
    const set = this.#listeners[name];
    return set !== undefined && set.size > 0;
  }

  /**
   * Delivers to every listener. A listener that throws must not break the
   * request that emitted, so its error is reported, not propagated; an async
   * listener's rejection likewise (left alone, it would be an unhandled
   * rejection, which ends a Node process). As DOM's `EventTarget` does, it
   * delivers to the listeners there when it began, but not to one removed
   * since: a listener that subscribes again while it runs (or adds another)
   * is not called again for the same event.
   */
  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.#listeners[name];
    if (!set) return;
    for (const registration of [...set.values()]) {
      const { listener } = registration;
      if (set.get(listener) !== registration) continue;
      try {
        reportRejection(listener(event));
      } catch (error) {
        reportFailure(error);
      }
    }
  }

  listenerCount(): number {
    let count = 0;
    for (const key in this.#listeners) count += this.#listeners[key]?.size ?? 0;
    return count;
  }
}

/**
 * A listener's or hook's result: when it is a promise (an async function),
 * its rejection is reported as a thrown error would be, never left
 * unhandled (which ends a Node process). The hooks' callers cannot await
 * them: they run inside synchronous state changes.
 */
export function reportRejection(result: unknown): void {
  try {
    if (typeof (result as PromiseLike<void> | undefined)?.then === "function")
      (result as PromiseLike<void>).then(undefined, reportFailure);
  } catch (error) {
    // A `then` that cannot be read or called is the listener's failure too.
    reportFailure(error);
  }
}

/**
 * Reports a listener's or hook's failure that has no caller to reach:
 * `reportError`, else `console.error`. Reporting itself may throw (a value
 * whose printing throws, a `console` replaced by a test): that has nowhere
 * left to go, and must not break the request either.
 */
export function reportFailure(error: unknown): void {
  try {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (typeof report === "function") report(error);
    else console.error("[resilient-fetch] a listener or hook failed:", error);
  } catch {}
}
