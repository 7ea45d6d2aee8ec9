import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import { errorDetail } from "../core/error-detail.ts";
import type { BreakerStore, StoreEvent } from "./breaker-store.ts";
import { readableSnapshot } from "./readable-snapshot.ts";

/** What a store threw: the store's failure, not the caller's request (see `isStoreFailure`). */
const thrownByStores = new WeakSet<object>();

/**
 * Whether `error` was thrown by a store's method. A call failed by it is
 * counted as any failed call is; a `TypeError` from anywhere else before
 * an attempt is the caller's own request (a body that could not be read).
 */
export function isStoreFailure(error: unknown): boolean {
  return Object(error) === error && thrownByStores.has(error as object);
}

/** Marks `error` as a store's (a copy of one the redaction made, say). */
export function markStoreFailure(error: unknown): void {
  if (Object(error) === error) thrownByStores.add(error as object);
}

/**
 * Runs a store's method, marking what it throws as the store's. A thrown
 * value that is no object (a string, `null`) is wrapped in an `Error`
 * holding it as its `cause`, to be known again (never quoted: it may be
 * anything).
 */
function marked<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    const known =
      Object(error) === error
        ? (error as object)
        : new Error("the breaker store threw a value that is no Error", { cause: error });
    thrownByStores.add(known);
    throw known;
  }
}

/**
 * The layer never awaits a store's `publish`, `record` or `releaseProbe`,
 * but one written `async` (a Redis or IndexedDB store) returns a promise
 * anyway, and its rejection would be unhandled: Node ends the process on
 * one. The layer uses this view of the user's store, where what such a
 * promise (or any thenable) rejects with becomes a `store` event ("write",
 * "report", "probe"). A `peek` must answer at once: a promise from one is
 * no snapshot, and a `store` event ("read", "skipped") says so. A
 * synchronous throw still fails the call, as the contract says.
 */
export function unawaitedStore(store: BreakerStore, emit: (build: () => StoreEvent) => void): BreakerStore {
  const name = store.name;
  const caught = (operation: string, key: string, result: unknown): boolean => {
    if (typeof (result as PromiseLike<unknown> | undefined)?.then !== "function") return false;
    // `Promise.resolve` calls a thenable's `then` as a promise would, with
    // both callbacks: one that throws, or calls them oddly, is a rejection here.
    Promise.resolve(result).catch((error: unknown) =>
      emit(() => ({ store: name, key, operation, outcome: "failed", detail: errorDetail(error) })),
    );
    return true;
  };
  const { record, releaseProbe, acquireProbe, bindContext, connect, configure } = store;
  // A new object of bound methods, not a Proxy: a frozen store's methods
  // cannot be handed out bound through one. Each runs on the store itself
  // (a class's keep their `this` and its private fields); an absent one is
  // `undefined` here, which the layer reads as absent (it calls them with `?.`).
  return {
    name,
    publish: (key: string, snapshot: BreakerSnapshot) => {
      caught(
        "write",
        key,
        marked(() => store.publish(key, snapshot)),
      );
    },
    peek: (key: string, now: number) => {
      const seen = marked(() => store.peek(key, now));
      // `null` is nothing seen, as `undefined` is: a missing key read back as JSON.
      if (seen == null) return undefined;
      const promised = caught("read", key, seen);
      // A getter of the store's that throws is the store's failure, as a throw from `peek` is.
      const readable = promised ? undefined : marked(() => readableSnapshot(seen));
      if (readable) return readable;
      emit(() => ({
        store: name,
        key,
        operation: "read",
        outcome: "skipped",
        detail: promised
          ? "peek returned a promise: it must answer at once"
          : "peek returned no snapshot the breaker can merge",
      }));
      return undefined;
    },
    record:
      record &&
      ((key, failed, now, probe) =>
        caught(
          "report",
          key,
          marked(() => record.call(store, key, failed, now, probe)),
        )),
    releaseProbe:
      releaseProbe &&
      ((key, probe) =>
        caught(
          "probe",
          key,
          marked(() => releaseProbe.call(store, key, probe)),
        )),
    // Its rejection or throw is caught where it is awaited (the local breaker decides).
    acquireProbe: acquireProbe?.bind(store),
    bindContext: bindContext?.bind(store),
    // What a store hands over is cut as the layer's own events are: a client's error may quote a URL, key and all.
    connect:
      connect &&
      ((listener, listening) =>
        connect.call(
          store,
          (event) => listener(event?.detail ? { ...event, detail: errorDetail(event.detail) } : event),
          listening,
        )),
    configure: configure?.bind(store),
  } as BreakerStore;
}
