import type { BreakerStore, StoreEvent } from "./breaker-store.ts";

/** The methods the layer never awaits, and the `store` event operation each reports. */
const UNAWAITED: Record<PropertyKey, string> = { publish: "write", record: "report", releaseProbe: "probe" };

/**
 * The layer never awaits a store's `publish`, `record` or `releaseProbe`,
 * but one written `async` (a Redis or IndexedDB store) returns a promise
 * anyway, and its rejection would be unhandled: Node ends the process on
 * one. The layer uses this view of the user's store, where what such a
 * promise rejects with becomes a `store` event ("write", "report",
 * "probe"). A synchronous throw still fails the call, as the contract says.
 */
export function unawaitedStore(store: BreakerStore, emit: (event: StoreEvent) => void): BreakerStore {
  return new Proxy(store, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name);
      if (typeof value !== "function") return value;
      // Every method runs on the store itself: a class's keep their `this` and its private fields.
      const operation = UNAWAITED[name];
      if (!operation) return value.bind(target);
      return (key: string, ...rest: unknown[]) => {
        const result = value.call(target, key, ...rest) as Promise<unknown> | undefined;
        result?.then?.(undefined, (error: unknown) =>
          emit({ store: target.name, key, operation, outcome: "failed", detail: String(error) }),
        );
      };
    },
  });
}
