import { errorDetail } from "../core/error-detail.ts";
import type { StoreEvent, StoreEventListener, WaitUntilLike } from "./breaker-store.ts";

/**
 * Background work and events for a store that lives across requests in an
 * isolate: tasks go through `ctx.waitUntil` of the requests in flight (each
 * bound by `bindContext` while it runs), never awaited by a request, errors
 * swallowed into events. Nothing here runs at module scope.
 */
export class Background {
  /** The contexts of the requests in flight, and the last one bound (for work after they all ended). */
  readonly #active = new Set<WaitUntilLike>();
  #last: WaitUntilLike | undefined;
  /** Each listener with what says whether it hears events now (none: always). */
  readonly #listeners = new Map<StoreEventListener, (() => boolean) | undefined>();
  readonly #store: string;

  constructor(store: string, ctx: WaitUntilLike | undefined) {
    this.#store = store;
    this.#last = ctx;
  }

  /**
   * Binds a request's context while it runs; the function returned releases
   * it when the request ends. Requests overlap in an isolate: a task goes to
   * every request in flight when it starts (so it lives while any of them
   * does, its own request among them), not only to the last one bound.
   */
  bind(ctx: WaitUntilLike): () => void {
    this.#active.add(ctx);
    this.#last = ctx;
    return () => {
      this.#active.delete(ctx);
    };
  }

  /**
   * Starts `task` and hands it to `ctx.waitUntil` (see {@link bind}). A
   * `waitUntil` that throws (called after the response, or a foreign
   * context) only costs the task that extension: it becomes an event, never
   * a failed call. What the task throws past its own handling (a clock of
   * yours reading NaN in a write's wait) is a `background` event, outcome
   * `failed`: the work it was doing (a trip's write) is lost, never silently.
   */
  run(key: string, task: () => Promise<void>): void {
    const promise = task().catch((error: unknown) =>
      this.emit(() => ({ key, operation: "background", outcome: "failed", detail: errorDetail(error) })),
    );
    const contexts = this.#active.size > 0 ? [...this.#active] : this.#last ? [this.#last] : [];
    for (const ctx of contexts) {
      try {
        ctx.waitUntil(promise);
      } catch (error) {
        this.emit(() => ({ key, operation: "waitUntil", outcome: "failed", detail: errorDetail(error) }));
      }
    }
  }

  connect(listener: StoreEventListener, listening?: () => boolean): () => void {
    this.#listeners.set(listener, listening);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Tells the listeners; `event` may be a function that builds it, called
   * only when someone listens (an error's text is read only then).
   */
  emit(event: Omit<StoreEvent, "store"> | (() => Omit<StoreEvent, "store">)): void {
    const hearing = [...this.#listeners].filter(([, listening]) => listening?.() ?? true);
    if (hearing.length === 0) return;
    if (typeof event === "function") event = event();
    for (const [listener] of hearing) {
      try {
        listener({ store: this.#store, ...event });
      } catch {
        // A listener must not break the store.
      }
    }
  }
}
