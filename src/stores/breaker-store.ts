import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import type { BreakerStoreLike } from "../core/options/resilience-options.ts";

export type { StoreEvent } from "../core/options/resilience-options.ts";

/**
 * Where breaker transitions are shared between isolates, tabs or instances.
 * The local breaker stays authoritative for its own traffic: a
 * store only spreads transitions so others trip sooner and recover together.
 * `publish`, `peek` and `record` never throw into a request or make it wait:
 * a store that needs I/O does it in the background and serves `peek` from
 * what it last saw. Only `acquireProbe` is awaited, and only for a half-open
 * probe, bounded by the store's own timeout.
 */
export interface BreakerStore extends BreakerStoreLike {
  /** A name for health and events, e.g. "memory", "kv", "durable-object". */
  readonly name: string;
  /** Shares a local transition of `key`. */
  publish(key: string, snapshot: BreakerSnapshot): void;
  /** The freshest snapshot of `key` seen from elsewhere, without waiting. */
  peek(key: string, now: number): BreakerSnapshot | undefined;
}

export type { StoreEventListener } from "../core/options/resilience-options.ts";
export type { BreakerSnapshot };
