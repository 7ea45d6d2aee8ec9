import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import type { Clock } from "../core/clock.ts";
import type { ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import type { StoreEvent, StoreEventListener } from "../core/resilience-events.ts";

export type { StoreEvent, StoreEventListener };

/** Something that keeps background work alive (a Worker's `ExecutionContext`). */
export interface WaitUntilLike {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Where breaker transitions are shared between isolates, tabs or instances:
 * the one store contract (`memoryStore`, `kvStore`, `durableObjectStore`
 * implement it; a new store is one new file beside them).
 * The local breaker stays authoritative for its own traffic: a
 * store only spreads transitions so others trip sooner and recover together.
 * `publish`, `peek` and `record` must never throw or make a request wait
 * (the layer calls them on the request's path and does not catch what they
 * throw: the call would fail with it): a store that needs I/O does it in the
 * background and serves `peek` from what it last saw. A promise that
 * `publish`, `record` or `releaseProbe` returns (a method written `async`) is
 * not awaited: what it rejects with becomes a `store` event ("write",
 * "report", "probe"; outcome "failed"), never an unhandled rejection. A
 * promise from `peek` is no snapshot (a "read" event, outcome "skipped"),
 * nor is one the breaker cannot merge (docs/breakers.md, "Shared breaker state", spells out
 * which it can); `null`
 * is nothing seen, as `undefined` is. `peek` may return the
 * same snapshot as a new, equal object each time (a store that keeps JSON):
 * one the layer merged already is no news. Only `acquireProbe` is awaited, and only for a half-open
 * probe, bounded by the store's own timeout. Only `name`, `publish` and
 * `peek` are required; the rest serve remote coordinators.
 */
export interface BreakerStore {
  /** A name for health and events, e.g. "memory", "kv", "durable-object". */
  readonly name: string;
  /** Shares a local transition of `key`. */
  publish(key: string, snapshot: BreakerSnapshot): void;
  /** The freshest snapshot of `key` seen from elsewhere, without waiting. */
  peek(key: string, now: number): BreakerSnapshot | undefined;
  /** One settled attempt for `key` (for stores that batch outcomes); `probe` is a remote lease. */
  record?(key: string, failed: boolean, now: number, probe?: string): void;
  /**
   * Gives back a remote lease (`probe`, from `acquireProbe`) unused: the
   * probe was aborted, by its caller, `timeout.total` or a hedge that won,
   * so it is neither a success nor a failure, and another may probe at once.
   */
  releaseProbe?(key: string, probe: string): void;
  /**
   * Asks for a remote probe lease before a half-open probe leaves. `true` or
   * a lease id grants it, `false` refuses; a store that cannot answer in time
   * resolves `undefined` and the local breaker decides (as it does when
   * this rejects or throws). `signal` is the probe's caller's: once it
   * aborts, nobody waits for the answer (a lease it grants later is given
   * back through `releaseProbe`), so a store's own bound on the ask should
   * then hold no process.
   */
  acquireProbe?(key: string, now: number, signal?: AbortSignal): Promise<boolean | string | undefined>;
  /**
   * A request's context, for background work (`ctx.waitUntil`) while it
   * runs; may return a function that releases it when the request ends.
   */
  // `void`, not `undefined`: a store written before the release, whose
  // method is declared `(): void`, still fits the contract.
  // biome-ignore lint/suspicious/noConfusingVoidType: see above
  bindContext?(ctx: WaitUntilLike): void | (() => void);
  /**
   * Subscribes to the store's events; returns the unsubscribe function.
   * `listening`, when given, says whether anyone hears them now (the layer
   * passes one): while no subscriber's says so, a store builds no event. A
   * layer subscribes when it gets its first `store` listener and
   * unsubscribes when its last goes, so a store that lives across layers
   * (a layer per request) keeps none of them for nothing.
   */
  connect?(listener: StoreEventListener, listening?: () => boolean): () => void;
  /**
   * Receives the layer's breaker thresholds (a coordinator applies them) and
   * its clock: the instants a layer publishes and reads are on it, so a
   * store made without a clock of its own runs on the first layer's.
   */
  configure?(policy: ResolvedBreakerPolicy, clock?: Clock): void;
}

/** @deprecated After 0.1.0 the contract is one interface: use {@link BreakerStore}. */
export type BreakerStoreLike = BreakerStore;

export type { BreakerSnapshot };
