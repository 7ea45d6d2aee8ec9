import type { StoreEvent, StoreEventListener, WaitUntilLike } from "./breaker-store.ts";

/**
 * Background work and events for a store that lives across requests in an
 * isolate: tasks go through the current request's `ctx.waitUntil` (bound per
 * request by `bindContext`), never awaited by the request, errors swallowed
 * into events. Nothing here runs at module scope.
 */
export class Background {
  #ctx: WaitUntilLike | undefined;
  readonly #listeners = new Set<StoreEventListener>();
  readonly #store: string;

  constructor(store: string, ctx: WaitUntilLike | undefined) {
    this.#store = store;
    this.#ctx = ctx;
  }

  bind(ctx: WaitUntilLike): void {
    this.#ctx = ctx;
  }

  /**
   * Starts `task` and hands it to `ctx.waitUntil`. A `waitUntil` that throws
   * (called after the response, or a foreign context) only costs the task its
   * extension: it becomes an event, never a failed call.
   */
  run(key: string, task: () => Promise<void>): void {
    const promise = task().catch(() => {});
    try {
      this.#ctx?.waitUntil(promise);
    } catch (error) {
      this.emit({ key, operation: "waitUntil", outcome: "failed", detail: String(error) });
    }
  }

  connect(listener: StoreEventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(event: Omit<StoreEvent, "store">): void {
    for (const listener of this.#listeners) {
      try {
        listener({ store: this.#store, ...event });
      } catch {
        // A listener must not break the store.
      }
    }
  }
}
