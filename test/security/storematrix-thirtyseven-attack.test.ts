/**
 * Outside-in attack on shared breaker state: a matrix of layers (`createResilience`) standing for isolates that share
 * one store, crossed with failures, thresholds, transitions, probe leases, `Retry-After` holds, skewed clocks, KV
 * staleness, corrupt or foreign stored values and stores that throw, reject or hang.
 * Docs: docs/breakers.md "Shared breaker state" ("`store: memoryStore()` shares transitions … a host one opened is
 * open for all", "An open state read from any store holds a host a day at most from when the layer merges it, as a
 * `Retry-After` does: a value saying "open until the year 30,000" cannot hold a host for good. Read again, the same
 * value is no news, so its day does not start again"), "A clock set back" ("An open state read back from a store (the
 * layer's own, or another isolate's) dated ahead of this clock, because this one was set back or the writer's runs
 * ahead, waits its own length from now too"); docs/cloudflare.md "The local breaker stays authoritative" (the
 * staleness table, "A store that errs or is slow is ignored (a `store` event says why) and the request goes on under
 * the local breaker. Remote values are validated with zod and a foreign or corrupt one is ignored", "An isolate idle
 * for longer than that sends the calls it starts before that refresh comes back on what it last saw, and refuses from
 * then on", "Reads happen in the background, at most every `refreshInterval`, with `cacheTtl: 30`", "Open keys expire
 * on their own (TTL 60 s past `openUntil`)", "A hold read from KV is cut to 24 hours at most", "A hold from the object
 * is cut to 24 hours at most", "exactly `halfOpenMaxCalls` across isolates while the object answers within
 * `timeout`", "Only a half-open probe waits for the object (at most `timeout`, 250 ms)"); docs/health-and-events.md
 * ("`kvStore` and `durableObjectStore` share a compact state …: such a host shows the shared reason as `lastError` …
 * and counts of 0, and `failureRate` is `null`", `store` events); SECURITY.md "Remote state is validated, never
 * trusted | … a foreign, corrupt or hostile value (extra keys such as `__proto__` included) is ignored with a `store`
 * event", "The library's stores cannot break or stall a request".
 * How: `createResilience`, `memoryStore` (root); `kvStore`, `durableObjectStore`, `BreakerStateObject`
 * (./cloudflare); `TestClock` (./testing). A KV namespace written here (get/getWithMetadata/put/delete/list, locations
 * whose writes reach other locations only after a propagation delay, `cacheTtl` and `expirationTtl` honoured, KV's
 * 60 s TTL floor and one write per key per second); a Durable Object namespace whose stubs call real
 * `BreakerStateObject`s on a fake `state.storage`, each object on a clock of its own; stores of my own that reject.
 * Real upstream on 127.0.0.1 (test/helpers/http-upstream.ts); time moves only on `TestClock`s.
 * Paths: plain calls through two or three layers (one per isolate), concurrent probes, a `Retry-After` hold, `health()`
 * and `breaker`/`store` events of each layer.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a Durable Object verdict dated ahead keeps its spell's length and one read again
 * keeps its first day, an object cuts a stored hold to a day, and a KV value without metadata is reported):
 * 1. docs/breakers.md "An open state read back from a store (the layer's own, or another isolate's) dated ahead of
 *    this clock, because this one was set back or the writer's runs ahead, waits its own length from now too".
 *    Observed with `durableObjectStore`: an isolate whose clock is an hour behind the object's (this one set back,
 *    or the object's ahead) holds a 30 s trip for 1 h 30 s: `health()` shows `openUntil` = now + 1 h 30 s and every
 *    call is refused. `adoptVerdict` (src/cloudflare/durable-object-store.ts, `changedAt: Math.min(verdict.changedAt
 *    ?? 0, now)`) cuts the verdict's future `changedAt` to now and keeps its `openUntil`, so the layer's `adopt`
 *    (which shifts a spell dated ahead back by `changedAt - now`) no longer sees it is dated ahead. `memoryStore` and
 *    `kvStore` with the same skew hold 30 s (held below).
 * 2. docs/breakers.md "An open state read from any store holds a host a day at most from when the layer merges it …
 *    cannot hold a host for good. Read again, the same value is no news, so its day does not start again" and
 *    docs/cloudflare.md "A hold from the object is cut to 24 hours at most". Observed: a `BreakerStateObject` whose
 *    storage holds an open state until 1e300 (written by another version: `fromStored` in
 *    src/stores/shared-snapshot.ts accepts any `openUntil`, unclamped) holds the host for good: each time the isolate
 *    asks again, `adoptVerdict` cuts the same value to "now + 24 h" afresh (`clampHold(answer, now)`), a new
 *    `openUntil`, which the layer merges as news, and the object refuses every probe lease besides. Two days on, the
 *    host is still refused, nothing sent.
 * 3. SECURITY.md "a foreign, corrupt or hostile value … is ignored with a `store` event". Observed: a KV key that holds
 *    a value and no metadata (a foreign writer's, or a version that kept the state in the value) is ignored without
 *    any `store` event: `refresh` (src/cloudflare/kv-store.ts, `if (metadata === null) return;`) treats it as an
 *    absent key.
 *
 * Held (plain `it`):
 * - memoryStore, two layers: A's trip refuses B's next call (nothing sent; B's `breaker` event `closed>open`, reason
 *   `shared: …`; B's `health()` open); after `timeout` B's probes close it and A, half-open, follows; a `Retry-After`
 *   beyond `maxRetryAfter` in A holds B too (`retryAt` an hour on); A's clock an hour ahead, B holds 30 s.
 * - kvStore over an eventually consistent KV (20 s propagation, `cacheTtl` honoured): B, calling every second, refuses
 *   within refreshInterval + propagation + 6 s; the write's `expirationTtl` is ≥ 60 s past `openUntil`, every read
 *   asks `cacheTtl: 30`; B's `health()` shows `shared:` as `lastError`, counts 0, `failureRate` null; an idle isolate
 *   sends its first call on what it last saw and refuses from the refresh on; a writer's clock an hour ahead, the
 *   reader holds 30 s.
 * - kvStore: garbage metadata (a string, wrong types, `__proto__`, an extra key, gen 2^32 + 1, a 201-char reason,
 *   `v: 2`) is ignored with a `validate`/`rejected` event, every call sent, nothing polluted; `u: 1e300` is cut to 24 h
 *   and then probed; a KV whose reads and writes throw, reject or hang answers every call at once, with `read`
 *   `failed`, `write` `failed` and `read` `timeout` events.
 * - durableObjectStore over real objects: A's trip refuses B's next call within `flushInterval` + `verdictTtl`;
 *   exactly `halfOpenMaxCalls` probes across two layers firing six calls at once; an object that hangs holds a probe
 *   250 ms on the clock (a `timeout` event) and the probe then goes under the local breaker, while closed calls never
 *   wait; a verdict with a `__proto__` key is `rejected`; garbage in the object's storage leaves it closed.
 * - A store of my own whose `publish`/`record` return rejecting promises and whose `peek` returns a promise: every
 *   call answered, `write`/`report` `failed` and `read` `skipped` events, no unhandled rejection.
 */
import { describe, expect, it } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
} from "../../src/cloudflare/index.ts";
import {
  type BreakerEvent,
  type BreakerStore,
  CircuitOpenError,
  type Clock,
  createResilience,
  memoryStore,
  type StoreEvent,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { objectNamespace, Storage } from "../helpers/object-namespace.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const up = httpUpstream();
serveDuringFile(up);

const T0 = Date.parse("2026-12-01T00:00:00Z");
const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const failing = () =>
  up.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end("down");
  });

// ---------------------------------------------------------------------------------------------------------------
// A Workers KV stand-in: locations (one per isolate) each see their own writes at once and others' only after
// `propagation` ms; a read with `cacheTtl` is served from the location's cache for that many seconds; values expire
// after `expirationTtl` (at least 60 s, as KV demands); one write per key per second (KV's 429).
// ---------------------------------------------------------------------------------------------------------------

interface KvVersion {
  value: string;
  metadata: unknown;
  expiresAt: number;
  writtenAt: number;
  location: string;
}

class FakeKv {
  readonly versions = new Map<string, KvVersion[]>();
  readonly puts: Array<{ key: string; location: string; metadata: unknown; expirationTtl: number | undefined }> = [];
  readonly reads: Array<{ key: string; location: string; cacheTtl: number | undefined }> = [];
  readonly #caches = new Map<string, Map<string, { at: number; ttl: number; found: KvVersion | undefined }>>();
  readonly #lastWrite = new Map<string, number>();

  readonly clock: Clock;
  readonly propagation: number;

  constructor(clock: Clock, propagation = 0) {
    this.clock = clock;
    this.propagation = propagation;
  }

  /** Writes `metadata` (and `value`) as if from elsewhere, visible everywhere at once (a foreign writer long ago). */
  seed(key: string, metadata: unknown, value = "", ttlMs = DAY): void {
    this.versions.set(key, [
      { value, metadata, expiresAt: this.clock.now() + ttlMs, writtenAt: Number.NEGATIVE_INFINITY, location: "" },
    ]);
  }

  #visible(key: string, location: string, now: number): KvVersion | undefined {
    const list = this.versions.get(key) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i] as KvVersion;
      if (v.location === location || now - v.writtenAt >= this.propagation) return v.expiresAt > now ? v : undefined;
    }
    return undefined;
  }

  at(location: string): KvNamespaceLike & {
    get(key: string): Promise<string | null>;
    delete(key: string): Promise<void>;
    list(): Promise<{ keys: Array<{ name: string }> }>;
  } {
    const cache = this.#caches.get(location) ?? new Map();
    this.#caches.set(location, cache);
    const read = (key: string, cacheTtl: number | undefined): KvVersion | undefined => {
      if (cacheTtl !== undefined && cacheTtl < 30) throw new Error(`Invalid cache_ttl of ${cacheTtl}`);
      this.reads.push({ key, location, cacheTtl });
      const now = this.clock.now();
      const cached = cache.get(key);
      if (cached && now - cached.at < cached.ttl * 1000)
        return cached.found && cached.found.expiresAt > now ? cached.found : undefined;
      const found = this.#visible(key, location, now);
      cache.set(key, { at: now, ttl: cacheTtl ?? 60, found });
      return found;
    };
    return {
      getWithMetadata: async <M>(key: string, options?: { cacheTtl?: number }) => {
        const found = read(key, options?.cacheTtl);
        return {
          value: found ? found.value : null,
          metadata: (found ? structuredClone(found.metadata) : null) as M | null,
        };
      },
      get: async (key: string) => read(key, undefined)?.value ?? null,
      put: async (key: string, value: string, options?: { expirationTtl?: number; metadata?: unknown }) => {
        const now = this.clock.now();
        const ttl = options?.expirationTtl;
        if (ttl !== undefined && !(ttl >= 60)) throw new Error(`KV PUT failed: 400 Invalid expiration_ttl of ${ttl}`);
        if (now - (this.#lastWrite.get(key) ?? Number.NEGATIVE_INFINITY) < 1000)
          throw new Error("KV PUT failed: 429 Too Many Requests");
        if (JSON.stringify(options?.metadata ?? null).length > 1024) throw new Error("metadata too large");
        this.#lastWrite.set(key, now);
        this.puts.push({ key, location, metadata: structuredClone(options?.metadata), expirationTtl: ttl });
        const list = this.versions.get(key) ?? [];
        list.push({
          value,
          metadata: structuredClone(options?.metadata ?? null),
          expiresAt: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl * 1000,
          writtenAt: now,
          location,
        });
        this.versions.set(key, list);
        cache.delete(key);
      },
      delete: async (key: string) => {
        this.versions.delete(key);
        cache.delete(key);
      },
      list: async () => ({ keys: [...this.versions.keys()].map((name) => ({ name })) }),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One layer (an isolate) on `store`: calls to the real upstream on `clock`, its background work collected.
// ---------------------------------------------------------------------------------------------------------------

type Outcome = number | "open" | string;

function isolate(
  clock: TestClock,
  makeStore: (ctx: { waitUntil(p: Promise<unknown>): void }) => BreakerStore,
  breaker: Record<string, unknown> = { failureThreshold: 2, failureRate: undefined, timeout: 30_000 },
  extra: Record<string, unknown> = {},
) {
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const store = makeStore(ctx);
  const resilience = createResilience({ clock, store, retry: false, breaker: breaker as never, ...extra });
  const breakerEvents: BreakerEvent[] = [];
  const storeEvents: StoreEvent[] = [];
  resilience.on("breaker", (e) => breakerEvents.push(e));
  resilience.on("store", (e) => storeEvents.push(e));
  const outcome = (call: Promise<Response>): Promise<Outcome> =>
    call.then(
      async (r) => {
        await r.arrayBuffer();
        return r.status;
      },
      (e: unknown) => (e instanceof CircuitOpenError ? "open" : e instanceof Error ? e.name : String(e)),
    );
  /** The background work handed to `waitUntil` so far, run on the clock (bounded by 50 ms of real time). */
  const settle = async (): Promise<void> => {
    const work = pending.splice(0);
    await clock.run(Promise.race([Promise.all(work), new Promise((r) => setTimeout(r, 50))]));
  };
  const call = async (path = "/x"): Promise<Outcome> => {
    const result = await clock.run(outcome(resilience.fetch(`${up.base}${path}`)));
    await settle();
    return result;
  };
  const health = () => resilience.health().breakers[up.host];
  return { resilience, store, call, outcome, settle, health, breakerEvents, storeEvents, pending };
}

// ===============================================================================================================

describe("memoryStore: layers of one process", () => {
  it("A's trip refuses B's next call, nothing sent; B reports it; B's probes close it and A follows", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const a = isolate(clock, () => store);
    const b = isolate(clock, () => store);
    expect(await b.call()).toBe(200); // B knows the host, closed
    failing();
    expect([await a.call(), await a.call()]).toEqual([503, 503]);
    const sent = up.hits.length;
    expect(await b.call()).toBe("open");
    expect(up.hits.length).toBe(sent);
    expect(b.breakerEvents.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open"]);
    expect(b.breakerEvents[0]?.reason).toMatch(/^shared: /);
    expect(b.health()?.state).toBe("open");
    up.reset();
    await clock.advance(30_000);
    expect([await b.call(), await b.call()]).toEqual([200, 200]); // successThreshold 2
    expect(b.health()?.state).toBe("closed");
    expect(a.health()?.state).toBe("closed");
    expect(await a.call()).toBe(200);
  });

  it("a Retry-After beyond maxRetryAfter in A holds B for it", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const a = isolate(clock, () => store);
    const b = isolate(clock, () => store);
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.setHeader("retry-after", "3600");
      hit.res.end();
    });
    expect(await a.call()).toBe(503);
    const error = await clock.run(b.resilience.fetch(`${up.base}/x`).catch((e: unknown) => e));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).retryAt).toBeGreaterThanOrEqual(clock.now() + HOUR - SECOND);
    expect(up.hits.length).toBe(1);
  });

  it("A's clock an hour ahead: B holds A's 30 s trip for 30 s", async () => {
    const clockA = new TestClock(T0 + HOUR);
    const clockB = new TestClock(T0);
    const store = memoryStore();
    const a = isolate(clockA, () => store);
    const b = isolate(clockB, () => store);
    failing();
    await a.call();
    await a.call();
    expect(await b.call()).toBe("open");
    expect((b.health()?.openUntil as number) - clockB.now()).toBeLessThanOrEqual(30_000);
  });
});

// ===============================================================================================================

describe("kvStore over an eventually consistent KV", () => {
  const kvOptions = { publishJitter: 0 };

  it("B, calling every second, refuses within refreshInterval + propagation + 6 s; TTLs and cacheTtl as documented", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, 20_000);
    const breaker = { failureThreshold: 2, failureRate: undefined, timeout: 300_000 };
    const a = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, ...kvOptions }), breaker);
    // B never trips on its own: what refuses its calls is what it read
    const b = isolate(clock, (ctx) => kvStore(kv.at("b"), { ctx, clock, ...kvOptions }), {
      ...breaker,
      failureThreshold: 1000,
    });
    expect([await a.call(), await b.call()]).toEqual([200, 200]);
    await clock.advance(10_000); // B's last read is 10 s old: the worst case is a read just before the write shows
    failing();
    await a.call();
    await a.call();
    const tripAt = clock.now();
    expect(a.health()?.state).toBe("open");
    let refusedAt: number | undefined;
    while (clock.now() - tripAt < 120_000) {
      await clock.advance(SECOND);
      if ((await b.call()) === "open") {
        refusedAt = clock.now();
        break;
      }
    }
    expect(refusedAt).toBeDefined();
    expect((refusedAt as number) - tripAt).toBeLessThanOrEqual(30_000 + 20_000 + 6_000);
    const open = kv.puts.find((p) => (p.metadata as { s: string }).s === "open");
    if (!open) throw new Error("the trip was never written");
    const u = (open.metadata as { u: number }).u;
    expect(open.expirationTtl).toBeGreaterThanOrEqual(60);
    expect(tripAt + (open.expirationTtl as number) * 1000).toBeGreaterThanOrEqual(u + 60_000 - SECOND);
    expect(kv.reads.every((r) => r.cacheTtl === 30)).toBe(true);
    // B shows the compact shared state
    const shown = b.health();
    expect([shown?.state, shown?.lastError?.startsWith("shared: "), shown?.failureCount, shown?.failureRate]).toEqual([
      "open",
      true,
      0,
      null,
    ]);
  });

  it("an idle isolate sends its first call on what it last saw, and refuses from the refresh on", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, 0);
    const breaker = { failureThreshold: 2, failureRate: undefined, timeout: 300_000 };
    const a = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, ...kvOptions }), breaker);
    const b = isolate(clock, (ctx) => kvStore(kv.at("b"), { ctx, clock, ...kvOptions }), breaker);
    expect(await b.call()).toBe(200);
    failing();
    await a.call();
    await a.call();
    await clock.advance(60_000); // B idle past its refresh and its read's cacheTtl
    const sent = up.hits.length;
    expect(await b.call()).toBe(503);
    expect(up.hits.length).toBe(sent + 1);
    expect(await b.call()).toBe("open");
    expect(up.hits.length).toBe(sent + 1);
  });

  it("a writer's clock an hour ahead: the reader holds the 30 s trip for 30 s", async () => {
    const clockA = new TestClock(T0 + HOUR);
    const clockB = new TestClock(T0);
    const kv = new FakeKv(clockB, 0);
    const a = isolate(clockA, (ctx) => kvStore(kv.at("a"), { ctx, clock: clockA, ...kvOptions }));
    const b = isolate(clockB, (ctx) => kvStore(kv.at("b"), { ctx, clock: clockB, ...kvOptions }));
    failing();
    await a.call();
    await a.call();
    expect(kv.puts.length).toBe(1);
    await b.call(); // first call: B reads in the background
    expect(await b.call()).toBe("open");
    expect((b.health()?.openUntil as number) - clockB.now()).toBeLessThanOrEqual(30_000);
  });

  it("corrupt, foreign and hostile metadata is ignored with a validate event; every call is sent", async () => {
    const cases: Array<[string, unknown]> = [
      ["a string", '{"v":1,"s":"open","g":1,"u":9e15,"w":0,"r":null}'],
      ["wrong types", { v: 1, s: "open", g: "1", u: "9e15", w: 0, r: null }],
      ["v 2", { v: 2, s: "open", g: 1, u: T0 + HOUR, w: T0, r: null }],
      ["an extra key", { v: 1, s: "open", g: 1, u: T0 + HOUR, w: T0, r: null, x: 1 }],
      ["__proto__", JSON.parse(`{"v":1,"s":"open","g":1,"u":${T0 + HOUR},"w":${T0},"r":null,"__proto__":{"p":1}}`)],
      ["gen 2^32 + 1", { v: 1, s: "open", g: 2 ** 32 + 1, u: T0 + HOUR, w: T0, r: null }],
      ["a 201-char reason", { v: 1, s: "open", g: 1, u: T0 + HOUR, w: T0, r: "x".repeat(201) }],
      ["an array", [1, "open"]],
    ];
    for (const [name, metadata] of cases) {
      up.reset();
      const clock = new TestClock(T0);
      const kv = new FakeKv(clock, 0);
      const host = `127.0.0.1:${up.port}`;
      kv.seed(`cb:v1:default:${host}`, metadata);
      const layer = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, ...kvOptions }));
      const outcomes = [await layer.call(), await layer.call(), await layer.call()];
      const rejected = layer.storeEvents.filter((e) => e.operation === "validate" && e.outcome === "rejected");
      expect([name, outcomes, up.hits.length, rejected.length > 0]).toEqual([name, [200, 200, 200], 3, true]);
      expect(({} as { p?: unknown }).p).toBeUndefined();
    }
  });

  it("u: 1e300 holds a host 24 h at most, then it is probed", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, 0);
    kv.seed(`cb:v1:default:${up.host}`, { v: 1, s: "open", g: 3, u: 1e300, w: T0 - 1000, r: "hostile" }, "", 3 * DAY);
    const layer = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, ...kvOptions }));
    expect(await layer.call()).toBe(200); // before the first read comes back
    expect(await layer.call()).toBe("open");
    expect((layer.health()?.openUntil as number) - clock.now()).toBeLessThanOrEqual(DAY);
    for (let i = 0; i < 25; i++) {
      await clock.advance(HOUR);
      await layer.call(); // refreshes go on every 30 s of calls
    }
    expect(up.hits.length).toBeGreaterThan(1); // probed after the day
  });

  it("a KV whose calls throw, reject or hang: every call is answered at once, with store events", async () => {
    const broken = (
      mode: "throw" | "reject" | "hang",
    ): KvNamespaceLike & { getWithMetadata: never; put: (...args: unknown[]) => Promise<void> } => {
      const act = (): never | Promise<never> => {
        if (mode === "throw") throw new Error("kv binding threw");
        if (mode === "reject") return Promise.reject(new Error("kv rejected"));
        return new Promise<never>(() => {});
      };
      return { getWithMetadata: act as never, put: act as never };
    };
    for (const mode of ["throw", "reject", "hang"] as const) {
      up.reset();
      const clock = new TestClock(T0);
      const layer = isolate(clock, (ctx) => kvStore(broken(mode), { ctx, clock, ...kvOptions }));
      expect(await layer.call()).toBe(200);
      failing();
      expect([await layer.call(), await layer.call()]).toEqual([503, 503]);
      expect(await layer.call()).toBe("open");
      await clock.advance(40_000);
      up.reset();
      const started = clock.now();
      expect([await layer.call(), await layer.call()]).toEqual([200, 200]);
      // no call waited on the store: time moved only by background work the helper ran after each call
      expect(clock.now() - started).toBeLessThan(20_000);
      const seen = new Set(layer.storeEvents.map((e) => `${e.operation} ${e.outcome}`));
      if (mode === "hang") expect(seen.has("read timeout")).toBe(true);
      else expect([seen.has("read failed"), seen.has("write failed")]).toEqual([true, true]);
    }
  });
});

// ===============================================================================================================

describe("durableObjectStore over real BreakerStateObjects", () => {
  it("A's trip refuses B's next call within flushInterval + verdictTtl", async () => {
    const clock = new TestClock(T0);
    const ns = objectNamespace(clock);
    const a = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }));
    // B never trips on its own: what refuses its calls is the object's verdict
    const b = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }), {
      failureThreshold: 1000,
      failureRate: undefined,
      timeout: 30_000,
    });
    expect([await a.call(), await b.call()]).toEqual([200, 200]);
    failing();
    await a.call();
    await a.call();
    const tripAt = clock.now();
    let refusedAt: number | undefined;
    while (clock.now() - tripAt < 30_000) {
      await clock.advance(SECOND);
      if ((await b.call()) === "open") {
        refusedAt = clock.now();
        break;
      }
    }
    expect((refusedAt as number) - tripAt).toBeLessThanOrEqual(10_000);
    const shown = b.health();
    expect([shown?.state, shown?.lastError?.startsWith("shared: "), shown?.failureCount, shown?.failureRate]).toEqual([
      "open",
      true,
      0,
      null,
    ]);
  });

  it("exactly halfOpenMaxCalls probes across two layers firing six calls at once", async () => {
    const clock = new TestClock(T0);
    const ns = objectNamespace(clock);
    const breaker = { failureThreshold: 2, failureRate: undefined, timeout: 30_000, halfOpenMaxCalls: 2 };
    const a = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }), breaker);
    const b = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }), breaker);
    expect(await b.call()).toBe(200);
    failing();
    await a.call();
    await a.call();
    await clock.advance(5 * SECOND); // B's closed verdict expires
    await b.call();
    expect(await b.call()).toBe("open");
    await clock.advance(30_000);
    up.reset();
    const held: Array<() => void> = [];
    up.on((hit) => held.push(() => hit.res.end("ok")));
    const calls = [a, b, a, b, a, b].map((layer) => layer.outcome(layer.resilience.fetch(`${up.base}/x`)));
    for (let i = 0; i < 20; i++) await clock.advance(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(up.hits.length).toBe(2);
    for (const release of held) release();
    const outcomes = await clock.run(Promise.all(calls));
    expect(outcomes.filter((o) => o === 200)).toHaveLength(2);
    expect(outcomes.filter((o) => o === "open")).toHaveLength(4);
  });

  it("an object that hangs: a probe waits 250 ms on the clock, then goes under the local breaker; closed calls never wait", async () => {
    const clock = new TestClock(T0);
    const ns = objectNamespace(clock);
    const layer = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }));
    expect(await layer.call()).toBe(200);
    ns.gate = new Promise(() => {});
    let started = clock.now();
    expect(await clock.run(layer.outcome(layer.resilience.fetch(`${up.base}/x`)))).toBe(200);
    expect(clock.now() - started).toBe(0);
    failing();
    await clock.run(layer.outcome(layer.resilience.fetch(`${up.base}/x`)));
    await clock.run(layer.outcome(layer.resilience.fetch(`${up.base}/x`)));
    await clock.advance(30_000);
    up.reset();
    started = clock.now();
    expect(await clock.run(layer.outcome(layer.resilience.fetch(`${up.base}/x`)))).toBe(200);
    expect(clock.now() - started).toBe(250);
    expect(layer.storeEvents.some((e) => e.operation === "probe" && e.outcome === "timeout")).toBe(true);
  });

  it("a verdict with a __proto__ key is rejected with an event; garbage in the object's storage leaves it closed", async () => {
    const clock = new TestClock(T0);
    const hostile: DurableObjectNamespaceLike = {
      idFromName: (n: string) => n,
      get: () => ({
        fetch: async () =>
          new Response(`{"state":"open","gen":1,"openUntil":${T0 + HOUR},"reason":null,"__proto__":{"p":1}}`),
      }),
    };
    const layer = isolate(clock, (ctx) => durableObjectStore(hostile, { ctx, clock, flushInterval: 1 }));
    expect([await layer.call(), await layer.call(), await layer.call()]).toEqual([200, 200, 200]);
    expect(layer.storeEvents.some((e) => e.outcome === "rejected")).toBe(true);
    expect(({} as { p?: unknown }).p).toBeUndefined();

    const storage = new Storage();
    storage.values.set("snapshot", { v: 1, state: "open", gen: "x", openUntil: "forever" });
    const ns = objectNamespace(clock, storage);
    const other = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock, flushInterval: 1 }));
    up.reset();
    expect([await other.call(), await other.call(), await other.call()]).toEqual([200, 200, 200]);
    expect(other.health()?.state).toBe("closed");
  });

  it("defect 1: an isolate an hour behind the object holds a 30 s trip for 30 s, not 1 h 30 s", async () => {
    const objectClock = new TestClock(T0 + HOUR);
    const clockA = new TestClock(T0 + HOUR); // A and the object agree
    const clockB = new TestClock(T0); // B's clock is an hour behind (set back)
    const ns = objectNamespace(objectClock);
    const a = isolate(clockA, (ctx) => durableObjectStore(ns, { ctx, clock: clockA }));
    const b = isolate(clockB, (ctx) => durableObjectStore(ns, { ctx, clock: clockB }));
    failing();
    await a.call();
    await a.call();
    await b.call(); // B's first call: its first verdict is read in the background
    expect(await b.call()).toBe("open");
    // documented: the spell waits its own length (30 s) from now
    expect((b.health()?.openUntil as number) - clockB.now()).toBeLessThanOrEqual(30_000);
  });

  it("defect 2: an object stored open until 1e300 holds the host a day at most", async () => {
    const clock = new TestClock(T0);
    const storage = new Storage();
    storage.values.set("snapshot", {
      v: 1,
      state: "open",
      gen: 7,
      failures: [],
      lastFailureTime: null,
      openUntil: 1e300,
      leases: [],
      successes: 0,
      reason: "written by another version",
      changedAt: T0 - SECOND,
    });
    const ns = objectNamespace(clock, storage);
    const layer = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }));
    await layer.call(); // the first verdict is read in the background
    expect(await layer.call()).toBe("open");
    const mergedAt = clock.now();
    for (let day = 0; day < 2; day++) {
      await clock.advance(DAY + SECOND);
      await layer.call();
      await layer.call();
    }
    // documented: a day at most from when it was merged; the same value read again starts no new day
    expect(layer.health()?.openUntil ?? 0).toBeLessThanOrEqual(mergedAt + DAY);
    expect(up.hits.length).toBeGreaterThan(1);
  });
});

// ===============================================================================================================

describe("kvStore: a foreign value", () => {
  it("defect 3: a key holding a value and no metadata is ignored with a store event", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, 0);
    kv.seed(`cb:v1:default:${up.host}`, null, JSON.stringify({ state: "open", openUntil: T0 + HOUR }));
    const layer = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, publishJitter: 0 }));
    expect([await layer.call(), await layer.call()]).toEqual([200, 200]); // ignored: held
    expect(kv.reads.length).toBeGreaterThan(0);
    expect(layer.storeEvents.map((e) => e.operation)).toContain("validate");
  });

  it("control: the same key with metadata another app wrote is reported", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, 0);
    kv.seed(`cb:v1:default:${up.host}`, { app: "other" }, "x");
    const layer = isolate(clock, (ctx) => kvStore(kv.at("a"), { ctx, clock, publishJitter: 0 }));
    expect([await layer.call(), await layer.call()]).toEqual([200, 200]);
    expect(layer.storeEvents.map((e) => e.operation)).toContain("validate");
  });
});

// ===============================================================================================================

describe("a store of my own that rejects", () => {
  it("publish and record rejecting, peek answering a promise: every call answered, events, no unhandled rejection", async () => {
    const clock = new TestClock(T0);
    const rejecting: BreakerStore = {
      name: "async-redis",
      publish: (async () => {
        throw new Error("redis down");
      }) as never,
      peek: (async () => undefined) as never,
      record: (async () => {
        throw new Error("redis down");
      }) as never,
    };
    const layer = isolate(clock, () => rejecting);
    const { value, unhandled } = await watchUnhandled(async () => {
      const first = await layer.call();
      failing();
      return [first, await layer.call(), await layer.call(), await layer.call()];
    });
    expect(value).toEqual([200, 503, 503, "open"]);
    expect(unhandled).toEqual([]);
    const seen = new Set(layer.storeEvents.map((e) => `${e.operation} ${e.outcome}`));
    expect([...seen].sort()).toEqual(["read skipped", "report failed", "write failed"]);
  });
});
