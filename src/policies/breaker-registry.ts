import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import type { Clock } from "../core/clock.ts";
import { LruMap } from "../core/lru-map.ts";
import type { ResolvedBreaker } from "../core/options/breaker-options.ts";
import type { ResolvedBulkhead } from "../core/options/bulkhead-options.ts";
import type { BreakerEvent } from "../core/resilience-events.ts";
import { type Wakers, wakeAll } from "../core/sleep.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { Bulkhead } from "./bulkhead.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";

/** One host's policies. */
export interface HostEntry {
  readonly breaker: CircuitBreaker;
  readonly bulkhead: Bulkhead | undefined;
  /** The last remote snapshot merged, so the same one is not merged twice. */
  adopted: BreakerSnapshot | undefined;
  /** Calls holding this entry now (from their first attempt to their settling, backoffs included). */
  holders: number;
  /**
   * The backoffs of calls waiting to retry this host, ended when its breaker
   * opens: a retry is never parked behind an open breaker (made on first wait).
   */
  waiting: Wakers | undefined;
}

export interface RegistryOptions {
  bulkhead?: ResolvedBulkhead | undefined;
  store?: BreakerStore | undefined;
  onChange?: ((change: BreakerEvent) => void) | undefined;
}

/**
 * Every breaker of a layer, in one place. Per-host breakers (and bulkheads)
 * are created on first use and LRU-bounded by `maxHosts`, so a client that
 * talks to 100k hosts keeps at most that many. When a store is set, each
 * lookup merges the store's latest snapshot (a synchronous read of what the
 * store last saw) and every local transition is published to it. Named
 * breakers (`resilience.breaker(name)`) live beside them, kept for the
 * layer's life and never shared through the store.
 */
export class BreakerRegistry {
  /** The per-host policy; `undefined` when per-host breakers are off (named ones still work). */
  readonly #policy: ResolvedBreaker | undefined;
  readonly #clock: Clock;
  readonly #options: RegistryOptions;
  readonly #entries: LruMap<string, HostEntry>;
  readonly #named = new Map<string, CircuitBreaker>();
  /** The backoffs of `execute` calls behind each named breaker, ended when it opens. */
  readonly #namedWaiting = new WeakMap<CircuitBreaker, Wakers>();
  #adopting = false;

  constructor(policy: ResolvedBreaker | undefined, clock: Clock, options: RegistryOptions = {}) {
    this.#policy = policy;
    this.#clock = clock;
    this.#options = options;
    // A host that calls hold (in flight, queued, or waiting to retry) keeps
    // its entry: their outcomes would reach a breaker nobody asks any more,
    // and a fresh bulkhead beside the old one would let more than
    // maxConcurrent through.
    this.#entries = new LruMap(policy?.maxHosts ?? 0, (entry) => entry.holders > 0);
  }

  /** Whether per-host breakers are on. */
  get perHost(): boolean {
    return this.#policy !== undefined;
  }

  /** The breaker called `name`, created with `policy()` the first time, then returned as is. */
  named(name: string, policy: () => ResolvedBreaker): CircuitBreaker {
    let breaker = this.#named.get(name);
    if (!breaker) {
      const resolved = policy();
      const waiting: Wakers = new Set();
      breaker = new CircuitBreaker(name, resolved, this.#clock, {
        isFailure: resolved.isFailure,
        onChange: (change) => {
          this.#options.onChange?.(change);
          if (change.to === "open") wakeAll(waiting);
        },
      });
      this.#named.set(name, breaker);
      this.#namedWaiting.set(breaker, waiting);
    }
    return breaker;
  }

  /** The waits behind a named breaker, ended when it opens. */
  waitingOn(breaker: CircuitBreaker): Wakers | undefined {
    return this.#namedWaiting.get(breaker);
  }

  /** The named breakers, by name. */
  namedBreakers(): ReadonlyMap<string, CircuitBreaker> {
    return this.#named;
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
    this.sync(key, entry);
    return entry;
  }

  /**
   * Merges what the store says about `key` into its entry (a host another
   * layer opened is open here too); `health()` calls it for every entry, so
   * it reports what the next call would meet. The LRU order is left alone.
   */
  sync(key: string, entry: HostEntry): void {
    const store = this.#options.store;
    if (!store) return;
    const remote = store.peek(key, this.#clock.now());
    const adopted = entry.adopted;
    // The same snapshot again (the same object, or an equal copy from a store
    // that keeps JSON) is no news: merged twice, an old half-open would
    // push back a breaker that closed since.
    if (
      remote !== undefined &&
      (adopted === undefined ||
        remote.gen !== adopted.gen ||
        remote.state !== adopted.state ||
        remote.changedAt !== adopted.changedAt ||
        remote.openUntil !== adopted.openUntil)
    ) {
      entry.adopted = remote;
      this.#adopting = true;
      try {
        entry.breaker.adopt(remote);
      } finally {
        this.#adopting = false;
      }
    }
  }

  /**
   * The entry for `key` as the shared store says it now, made only for a host
   * the store holds open or half-open (a chain passing an endpoint over, a
   * redirect's hop): a host another layer opened is open here too, and a
   * closed one nobody holds here gets no breaker. A use, for the LRU: an
   * open breaker that refused a pass-over or a hop is not the one evicted.
   */
  known(key: string): HostEntry | undefined {
    const entry = this.#entries.get(key);
    const store = this.#options.store;
    if (!store) return entry;
    if (entry) {
      this.sync(key, entry);
      return entry;
    }
    const now = this.#clock.now();
    const remote = store.peek(key, now);
    // Open, or half-open (open past its time): a hop to it is refused, or is its probe.
    return remote !== undefined && remote.state !== "closed" ? this.entry(key) : undefined;
  }

  /**
   * One holder of `key`'s entry lets go, once the breaker heard its outcome:
   * the last one out of an entry past `maxHosts` (a burst of hosts in use)
   * evicts it when its breaker is closed, so the registry is back within
   * `maxHosts` when calls settle. An open or half-open one stays to refuse
   * the next call, until a new host needs its room.
   */
  release(key: string, entry: HostEntry): void {
    entry.holders--;
    // Past `maxHosts` only: the breaker's state reads the clock, which a call need not pay for.
    if (
      entry.holders === 0 &&
      this.#entries.over &&
      entry.breaker.state === "closed" &&
      this.#entries.peek(key) === entry
    ) {
      this.#entries.freed(key);
    }
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
    // Only called when per-host breakers are on (the pipeline has no registry otherwise).
    const policy = this.#policy as ResolvedBreaker;
    const breaker = new CircuitBreaker(key, policy, this.#clock, {
      isFailure: policy.isFailure,
      onChange: (change, snapshot) => {
        try {
          // A merged remote snapshot is not echoed back to the store.
          if (store && !this.#adopting) store.publish(key, snapshot);
        } finally {
          // A store that throws fails the call (its contract says so), but the
          // change happened: it is still told, and the waiting calls woken.
          onChange?.(change);
          // A call woken from its backoff settles then with what it has, sending nothing more.
          if (change.to === "open") wakeAll(entry.waiting);
        }
      },
    });
    const entry: HostEntry = {
      breaker,
      bulkhead: bulkhead ? new Bulkhead(key, bulkhead.maxConcurrent, bulkhead.maxQueue) : undefined,
      adopted: undefined,
      holders: 0,
      waiting: undefined,
    };
    return entry;
  }
}
