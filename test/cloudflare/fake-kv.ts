import type { KvNamespaceLike } from "../../src/cloudflare/index.ts";
import type { Clock } from "../../src/core/clock.ts";
import { sleep } from "../../src/core/sleep.ts";

interface Entry {
  value: string;
  metadata: unknown;
  expiresAt: number;
}

/** One version of a key in the central store, and where it came from. */
interface Version {
  entry: Entry;
  location: number;
  landedAt: number;
}

/** Every write a store attempted, accepted or refused: what the assertions count. */
export interface WriteAttempt {
  key: string;
  /** When the store called `put`. */
  at: number;
  /** `false` when KV refused it with 429 (another write to the key within 1 s). */
  accepted: boolean;
  /** The state and generation the store tried to share (from the metadata). */
  state: string | undefined;
  gen: number | undefined;
  location: number;
}

export interface FakeKvOptions {
  /** How long a write takes to reach other locations, in ms (the writer's own location sees it at once). */
  propagation: number;
  /** How long the `n`-th write (0-based) takes to land, in ms: unequal delays reorder concurrent writes. @default 0 */
  writeDelay?: (n: number) => number;
}

/**
 * Workers KV for many isolates in one process, as the KV documentation
 * describes it (local KV in workerd is strongly consistent and cannot show
 * any of this):
 * - each location caches a read for the `cacheTtl` it asked for (60 s when
 *   unset; below 30 is an error), and a write reaches other locations after
 *   `propagation` ms;
 * - at most one write per key per second, else "429 Too Many Requests";
 *   every attempt is recorded, refused ones too, so a store that writes too
 *   often shows up even though KV stops it;
 * - writes can land out of order (`writeDelay`), last landed wins;
 * - reads can be made to fail or take time, on demand;
 * - `expirationTtl` below 60 s is an error; entries expire.
 * Time is the injected clock's.
 */
export class FakeKv {
  readonly #clock: Clock;
  readonly #options: FakeKvOptions;
  readonly #central = new Map<string, Version[]>();
  readonly #lastAccepted = new Map<string, number>();
  #locations = 0;
  #writes = 0;
  #failReads = 0;
  /** Every `put` attempted, in call order. */
  readonly attempts: WriteAttempt[] = [];
  readonly stats = { reads: 0, writes: 0, rejected: 0, failedReads: 0 };
  /** Added to every read, in ms (on the injected clock). */
  readDelay = 0;

  constructor(clock: Clock, options: FakeKvOptions) {
    this.#clock = clock;
    this.#options = options;
  }

  /** Writes directly to the central store, visible everywhere at once (a test planting a value). */
  plant(key: string, metadata: unknown): void {
    const versions = this.#central.get(key) ?? [];
    versions.push({
      entry: { value: "", metadata, expiresAt: Number.POSITIVE_INFINITY },
      location: -1,
      landedAt: Number.NEGATIVE_INFINITY,
    });
    this.#central.set(key, versions);
  }

  /** The next `count` reads fail as KV's do under an incident. */
  failNextReads(count: number): void {
    this.#failReads = count;
  }

  /** The most writes any key took within one second: accepted ones, or every attempt. */
  maxWritesPerKeyPerSecond(which: "accepted" | "attempted" = "accepted"): number {
    const byKey = new Map<string, number[]>();
    for (const a of this.attempts) {
      if (which === "accepted" && !a.accepted) continue;
      byKey.set(a.key, [...(byKey.get(a.key) ?? []), a.at]);
    }
    let max = 0;
    for (const times of byKey.values()) {
      for (const start of times) max = Math.max(max, times.filter((t) => t >= start && t < start + 1_000).length);
    }
    return max;
  }

  /** What a location reads for `key` now: its own writes at once, others' after `propagation`. */
  #visible(key: string, location: number, now: number): Entry | undefined {
    const versions = this.#central.get(key) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i] as Version;
      if (v.location === location || v.landedAt + this.#options.propagation <= now) {
        return v.entry.expiresAt > now ? { ...v.entry } : undefined;
      }
    }
    return undefined;
  }

  /** A namespace as seen from one location (its own read cache). */
  location(): KvNamespaceLike {
    const location = this.#locations++;
    const cache = new Map<string, { entry: Entry | undefined; fetchedAt: number; ttlMs: number }>();
    return {
      getWithMetadata: async <M>(key: string, options?: { cacheTtl?: number }) => {
        if (options?.cacheTtl !== undefined && options.cacheTtl < 30)
          throw new Error("Invalid cacheTtl: must be at least 30");
        this.stats.reads++;
        if (this.readDelay > 0) await sleep(this.#clock, this.readDelay);
        if (this.#failReads > 0) {
          this.#failReads--;
          this.stats.failedReads++;
          throw new Error("KV GET failed: 500 Internal Server Error");
        }
        const now = this.#clock.now();
        let cached = cache.get(key);
        if (!cached || now - cached.fetchedAt >= cached.ttlMs) {
          cached = {
            entry: this.#visible(key, location, now),
            fetchedAt: now,
            ttlMs: (options?.cacheTtl ?? 60) * 1_000,
          };
          cache.set(key, cached);
        }
        const entry = cached.entry && cached.entry.expiresAt > now ? cached.entry : undefined;
        return { value: entry ? entry.value : null, metadata: (entry ? entry.metadata : null) as M | null };
      },
      put: async (key, value, options) => {
        const now = this.#clock.now();
        if (options?.expirationTtl !== undefined && options.expirationTtl < 60) {
          throw new Error(
            `KV PUT failed: 400 Invalid expiration_ttl of ${options.expirationTtl}. Expiration TTL must be at least 60.`,
          );
        }
        const meta = options?.metadata as { s?: string; g?: number } | undefined;
        const last = this.#lastAccepted.get(key);
        const accepted = last === undefined || now - last >= 1_000;
        this.attempts.push({ key, at: now, accepted, state: meta?.s, gen: meta?.g, location });
        if (!accepted) {
          this.stats.rejected++;
          throw new Error("KV PUT failed: 429 Too Many Requests");
        }
        this.#lastAccepted.set(key, now);
        this.stats.writes++;
        const delay = this.#options.writeDelay?.(this.#writes++) ?? 0;
        if (delay > 0) await sleep(this.#clock, delay);
        const ttl = options?.expirationTtl;
        const landedAt = this.#clock.now();
        const versions = this.#central.get(key) ?? [];
        versions.push({
          entry: {
            value,
            metadata: options?.metadata ?? null,
            expiresAt: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl * 1_000,
          },
          location,
          landedAt,
        });
        this.#central.set(key, versions);
      },
    };
  }
}
