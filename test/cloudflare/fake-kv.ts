import type { KvNamespaceLike } from "../../src/cloudflare/index.ts";
import type { Clock } from "../../src/core/clock.ts";

interface Entry {
  value: string;
  metadata: unknown;
  expiresAt: number;
}

/**
 * Workers KV as the research describes it, for many isolates in one process
 * (local KV in workerd is strongly consistent and cannot show this):
 * - each location's reads are cached for `staleness` ms (negative results too);
 * - at most one write per key per second, else "429 Too Many Requests";
 * - `expirationTtl` below 60 s is an error; entries expire;
 * - counters for reads, writes and rejected writes.
 */
export class FakeKv {
  readonly #clock: Clock;
  readonly #staleness: number;
  readonly #central = new Map<string, Entry>();
  readonly #lastWrite = new Map<string, number>();
  readonly writeTimes = new Map<string, number[]>();
  readonly stats = { reads: 0, writes: 0, rejected: 0 };

  constructor(clock: Clock, options: { staleness: number }) {
    this.#clock = clock;
    this.#staleness = options.staleness;
  }

  /** Writes directly to the central store (a test planting a value). */
  plant(key: string, metadata: unknown): void {
    this.#central.set(key, { value: "", metadata, expiresAt: Number.POSITIVE_INFINITY });
  }

  /** The most writes any key took within one second. */
  maxWritesPerKeyPerSecond(): number {
    let max = 0;
    for (const times of this.writeTimes.values()) {
      for (let i = 0; i < times.length; i++) {
        const within = times.filter((t) => t >= (times[i] as number) && t < (times[i] as number) + 1_000).length;
        max = Math.max(max, within);
      }
    }
    return max;
  }

  /** A namespace as seen from one location (its own read cache). */
  location(): KvNamespaceLike {
    const cache = new Map<string, { entry: Entry | undefined; fetchedAt: number }>();
    return {
      getWithMetadata: async <M>(key: string, options?: { cacheTtl?: number }) => {
        if (options?.cacheTtl !== undefined && options.cacheTtl < 30)
          throw new Error("Invalid cacheTtl: must be at least 30");
        this.stats.reads++;
        const now = this.#clock.now();
        let cached = cache.get(key);
        if (!cached || now - cached.fetchedAt >= this.#staleness) {
          const entry = this.#central.get(key);
          cached = { entry: entry && entry.expiresAt > now ? { ...entry } : undefined, fetchedAt: now };
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
        const last = this.#lastWrite.get(key);
        if (last !== undefined && now - last < 1_000) {
          this.stats.rejected++;
          throw new Error("KV PUT failed: 429 Too Many Requests");
        }
        this.#lastWrite.set(key, now);
        this.stats.writes++;
        const times = this.writeTimes.get(key) ?? [];
        times.push(now);
        this.writeTimes.set(key, times);
        const ttl = options?.expirationTtl;
        this.#central.set(key, {
          value,
          metadata: options?.metadata ?? null,
          expiresAt: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl * 1_000,
        });
      },
    };
  }
}
