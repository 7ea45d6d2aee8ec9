import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import type { Clock } from "../core/clock.ts";
import { LruMap } from "../core/lru-map.ts";
import type { ResolvedBreaker } from "../core/options/breaker-options.ts";
import type { ResolvedBulkhead } from "../core/options/bulkhead-options.ts";
import type { BreakerEvent } from "../core/resilience-events.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { Bulkhead } from "./bulkhead.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";

/** One host's policies. */
export interface HostEntry {
  readonly breaker: CircuitBreaker;
  readonly bulkhead: Bulkhead | undefined;
  /** The last remote snapshot merged, so the same one is not merged twice. */
  adopted: BreakerSnapshot | undefined;
}

export interface RegistryOptions {
  bulkhead?: ResolvedBulkhead | undefined;
  store?: BreakerStore | undefined;
  onChange?: ((change: BreakerEvent) => void) | undefined;
}

/**
 * Per-key breakers (and bulkheads), created on first use and LRU-bounded by
 * `maxHosts`, so a client that talks to 100k hosts keeps at most that many.
 * When a store is set, each lookup merges the store's latest snapshot (a
 * synchronous read of what the store last saw) and every local transition is
 * published to it.
 */
export class BreakerRegistry {
  readonly #policy: ResolvedBreaker;
  readonly #clock: Clock;
  readonly #options: RegistryOptions;
  readonly #entries: LruMap<string, HostEntry>;
  #adopting = false;

  constructor(policy: ResolvedBreaker, clock: Clock, options: RegistryOptions = {}) {
    this.#policy = policy;
    this.#clock = clock;
    this.#options = options;
    this.#entries = new LruMap(policy.maxHosts);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for `key`, created if needed, synchronised with the store. */
  entry(key: string): HostEntry {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = this.#create(key);
      this.#entries.set(key, entry);
    }
    const store = this.#options.store;
    if (store) {
      const remote = store.peek(key, this.#clock.now());
      if (remote !== undefined && remote !== entry.adopted) {
        entry.adopted = remote;
        this.#adopting = true;
        try {
          entry.breaker.adopt(remote);
        } finally {
          this.#adopting = false;
        }
      }
    }
    return entry;
  }

  /** The entry for `key` if it exists, without creating or touching it. */
  peek(key: string): HostEntry | undefined {
    return this.#entries.peek(key);
  }

  entries(): IterableIterator<[string, HostEntry]> {
    return this.#entries.entries();
  }

  clear(): void {
    this.#entries.clear();
  }

  #create(key: string): HostEntry {
    const { store, onChange, bulkhead } = this.#options;
    const breaker = new CircuitBreaker(key, this.#policy, this.#clock, {
      isFailure: this.#policy.isFailure,
      onChange: (change, snapshot) => {
        // A merged remote snapshot is not echoed back to the store.
        if (store && !this.#adopting) store.publish(key, snapshot);
        onChange?.(change);
      },
    });
    return {
      breaker,
      bulkhead: bulkhead ? new Bulkhead(key, bulkhead.maxConcurrent, bulkhead.maxQueue) : undefined,
      adopted: undefined,
    };
  }
}
