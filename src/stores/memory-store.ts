import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import { LruMap } from "../core/lru-map.ts";
import { withDefaults } from "../core/options/with-defaults.ts";
import { shownValue } from "../core/shown-name.ts";
import type { BreakerStore } from "./breaker-store.ts";
import { readStoreOptions } from "./store-options.ts";

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Keys kept at most, least recently published evicted first.
   * @default 1000
   */
  maxKeys?: number | undefined;
}

/**
 * Shares breaker state between `Resilience` instances of one process, tab or
 * isolate: pass the same store to each, and a host one of them opened is
 * open for all. Without a store, each instance's breakers are its own (the
 * same behaviour with nothing shared). Staleness: none; write cost: one Map
 * write per transition.
 *
 * @example
 * const store = memoryStore();
 * const images = createResilience({ store });
 * const videos = createResilience({ store }); // sees the breakers `images` opened
 */
export function memoryStore(options?: MemoryStoreOptions): BreakerStore {
  // `null` is kept, for the check below to refuse, as a layer's option checker refuses it.
  const { maxKeys } = withDefaults({ maxKeys: 1000 }, readStoreOptions("memoryStore", options, ["maxKeys"]));
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new TypeError(`memoryStore({ maxKeys }): expected an integer >= 1, got ${shownValue(maxKeys)}`);
  }
  const snapshots = new LruMap<string, BreakerSnapshot>(maxKeys);
  return {
    name: "memory",
    publish: (key, snapshot) => snapshots.set(key, snapshot),
    peek: (key) => snapshots.peek(key),
  };
}
