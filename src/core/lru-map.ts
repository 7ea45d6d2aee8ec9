/**
 * A Map bounded to `max` entries that evicts the least recently used one
 * not `inUse` (an entry something still holds: evicting it would let a
 * fresh one be made beside it). While every entry is in use it grows past
 * `max`, and shrinks back as they are freed (`freed`); never past `cap`, where the
 * oldest go even in use (a store's keys: a flood of hosts an attacker names
 * cannot grow it without bound; a host's breaker, held by calls in flight,
 * has no cap, or a fresh bulkhead beside it would let more calls through).
 * Relies on Map's insertion order: a read moves the key to the end.
 */
export class LruMap<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();
  readonly #inUse: ((value: V) => boolean) | undefined;
  readonly #cap: number;
  /** The most recently used key (the map's last): reading it again moves nothing. */
  #newest: K | undefined;

  constructor(max: number, inUse?: (value: V) => boolean, cap: number = Number.POSITIVE_INFINITY) {
    this.#max = max;
    this.#inUse = inUse;
    this.#cap = cap;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    // A delete and set per read, even of the key already last, made V8 shrink
    // and regrow the Map's table: ~150 bytes of garbage per call for one host.
    if (value !== undefined && key !== this.#newest) {
      this.#map.delete(key);
      this.#map.set(key, value);
      this.#newest = key;
    }
    return value;
  }

  /** Reads without touching recency. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    this.#newest = key;
    if (this.#map.size > this.#max) {
      // Every entry no longer in use goes, oldest first, until the map is back
      // to `max`: after a burst of entries in use, it shrinks as they free up.
      // Past `cap`, the oldest go whatever holds them.
      for (const [oldest, entry] of this.#map) {
        if (oldest === key || this.#map.size <= this.#max) break; // the entry just set is never evicted
        if (!this.#inUse?.(entry) || this.#map.size > this.#cap) this.#map.delete(oldest);
      }
    }
  }

  /**
   * `key`'s entry is no longer in use: past `max`, it goes now. It is then
   * the least recently used entry not in use, since `set` left none other
   * past `max` and each freed since went as this one does; so a burst of
   * entries in use shrinks back as its holders let go, not only when new
   * entries come.
   */
  freed(key: K): void {
    if (this.over) this.delete(key);
  }

  /** Whether the map holds more than `max` entries (a burst of entries in use). */
  get over(): boolean {
    return this.#map.size > this.#max;
  }

  delete(key: K): boolean {
    if (key === this.#newest) this.#newest = undefined;
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
    this.#newest = undefined;
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}
