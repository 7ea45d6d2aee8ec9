import { describe, expect, it } from "vitest";
import { type KvNamespaceLike, kvStore } from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { memoryStore, type StoreEvent } from "../../src/index.ts";
import { Background } from "../../src/stores/background.ts";
import { TestClock } from "../../src/testing/index.ts";
import { fakeCtx } from "./fake-durable-object.ts";

/**
 * kvStore rule by rule through its API (publish / peek), over a namespace
 * that records every call and answers what the test plants: the small
 * counterpart of the 20-isolate simulations in kv-store.test.ts.
 */

const T0 = Date.parse("2026-11-28T00:00:00Z");
const KEY = "gen.example";
const KV_KEY = `cb:v1:default:${KEY}`;

class RecordingKv implements KvNamespaceLike {
  readonly reads: { key: string; options: unknown }[] = [];
  readonly puts: { key: string; value: string; options: { expirationTtl?: number; metadata?: unknown } }[] = [];
  metadata: unknown = null;
  readError: Error | undefined;
  putError: Error | undefined;
  hold: Promise<void> | undefined;

  async getWithMetadata<M>(key: string, options?: unknown): Promise<{ value: string | null; metadata: M | null }> {
    this.reads.push({ key, options });
    if (this.hold) await this.hold;
    if (this.readError) throw this.readError;
    return { value: "", metadata: this.metadata as M | null };
  }

  putCalls = 0;

  async put(key: string, value: string, options: { expirationTtl?: number; metadata?: unknown } = {}): Promise<void> {
    this.putCalls++;
    if (this.putError) throw this.putError;
    this.puts.push({ key, value, options });
  }
}

function snap(
  state: BreakerSnapshot["state"],
  gen: number,
  openUntil: number | null,
  reason: string | null = state,
): BreakerSnapshot {
  return {
    v: 1,
    state,
    gen,
    failures: [],
    window: null,
    lastFailureTime: null,
    openUntil,
    leases: [],
    successes: 0,
    reason,
    changedAt: T0,
  };
}

const shared = (s: string, g: number, u: number | null, w = T0, r: string | null = s) => ({ v: 1, s, g, u, w, r });

function setup(options: Parameters<typeof kvStore>[1] = {}) {
  const clock = new TestClock(T0);
  const kv = new RecordingKv();
  const ctx = fakeCtx();
  const store = kvStore(kv, { ctx, clock, random: () => 0, publishJitter: 0, ...options });
  const events: StoreEvent[] = [];
  store.connect?.((e) => events.push(e));
  const settle = () => clock.run(ctx.settle());
  return { clock, kv, ctx, store, events, settle };
}

describe("kvStore options", () => {
  it("refuses a namespace without getWithMetadata and put, and intervals under a second", () => {
    const message = "kvStore(namespace): expected a KV namespace binding with getWithMetadata() and put()";
    expect(() => kvStore(undefined as never)).toThrow(new TypeError(message));
    expect(() => kvStore({ put: async () => {} } as never)).toThrow(message);
    expect(() => kvStore({ getWithMetadata: async () => ({}) } as never)).toThrow(message);
    const kv = new RecordingKv();
    expect(() => kvStore(kv, { refreshInterval: 999 })).toThrow(
      new TypeError("kvStore: refreshInterval must be >= 1000 ms and finite, got 999"),
    );
    // An endless interval would hold a write back for good, and a timer past 2^31 - 1 ms fires at once.
    expect(() => kvStore(kv, { refreshInterval: Number.POSITIVE_INFINITY })).toThrow(
      new TypeError("kvStore: refreshInterval must be >= 1000 ms and finite, got Infinity"),
    );
    expect(() => kvStore(kv, { minPublishInterval: Number.POSITIVE_INFINITY })).toThrow(
      /minPublishInterval must be >= 1000 ms and finite .*got Infinity/,
    );
    expect(() => kvStore(kv, { refreshInterval: Number.NaN })).toThrow(/refreshInterval/);
    expect(() => kvStore(kv, { minPublishInterval: 999 })).toThrow(/minPublishInterval must be >= 1000 ms/);
    expect(() => kvStore(kv, { refreshInterval: 1_000, minPublishInterval: 1_000 })).not.toThrow();
    expect(kvStore(kv).name).toBe("kv");
  });
});

describe("kvStore reads", () => {
  it("reads its scoped key with a 30 s cacheTtl, at most every refreshInterval", async () => {
    const { kv, store, clock, settle } = setup({ refreshInterval: 2_000, scope: "app" });
    store.peek(KEY, clock.now());
    await settle();
    expect(kv.reads).toEqual([{ key: `cb:v1:app:${KEY}`, options: { cacheTtl: 30 } }]);
    await clock.advance(1_999);
    store.peek(KEY, clock.now());
    await settle();
    expect(kv.reads).toHaveLength(1);
    await clock.advance(1);
    store.peek(KEY, clock.now());
    await settle();
    expect(kv.reads).toHaveLength(2);
  });

  it("a read that never returns blocks the next for 10 s only", async () => {
    const { kv, store, clock } = setup({ refreshInterval: 1_000 });
    kv.hold = new Promise<void>(() => {});
    store.peek(KEY, clock.now());
    await clock.advance(1_000);
    store.peek(KEY, clock.now());
    await clock.advance(8_999);
    store.peek(KEY, clock.now());
    expect(kv.reads).toHaveLength(1);
    await clock.advance(1);
    store.peek(KEY, clock.now());
    expect(kv.reads).toHaveLength(2);
  });

  it("a failed read says so, and the next refresh still goes", async () => {
    const { kv, store, clock, settle, events } = setup({ refreshInterval: 1_000 });
    kv.readError = new Error("KV read failed");
    store.peek(KEY, clock.now());
    await settle();
    expect(events).toEqual([
      { store: "kv", key: KEY, operation: "read", outcome: "failed", detail: "Error: KV read failed" },
    ]);
    kv.readError = undefined;
    kv.metadata = shared("open", 1, T0 + 60_000);
    await clock.advance(1_000);
    store.peek(KEY, clock.now());
    await settle();
    expect(kv.reads).toHaveLength(2);
    expect(store.peek(KEY, clock.now())?.state).toBe("open");
  });

  it("adopts a newer shared snapshot exactly, never an older one", async () => {
    const { kv, store, clock, settle } = setup({ refreshInterval: 1_000 });
    const read = async (metadata: unknown) => {
      kv.metadata = metadata;
      await clock.advance(1_000);
      store.peek(KEY, clock.now());
      await settle();
      return store.peek(KEY, clock.now());
    };
    expect(store.peek(KEY, clock.now())).toBeUndefined();
    await settle(); // nothing planted yet: metadata null
    expect(store.peek(KEY, clock.now())).toBeUndefined();
    expect(await read(shared("open", 2, T0 + 60_000, T0 + 5, "3 failures"))).toEqual({
      v: 1,
      state: "open",
      gen: 2,
      failures: [],
      window: null,
      lastFailureTime: null,
      openUntil: T0 + 60_000,
      leases: [],
      successes: 0,
      reason: "3 failures",
      changedAt: T0 + 5,
    });
    // Written earlier, or at the same time with a generation not above: kept as is,
    // whatever the generation (isolates count theirs apart: they order nothing).
    expect((await read(shared("closed", 9, null, T0 + 4)))?.state).toBe("open");
    expect((await read(shared("closed", 2, null, T0 + 5)))?.state).toBe("open");
    expect((await read(shared("closed", 1, null, T0 + 5)))?.state).toBe("open");
    // Written later, with any generation: adopted (a new isolate's first open is generation 1).
    expect(await read(shared("closed", 2, null, T0 + 6))).toMatchObject({ state: "closed", gen: 2, changedAt: T0 + 6 });
    expect(await read(shared("open", 1, T0 + 90_000, T0 + 7))).toMatchObject({ state: "open", gen: 1 });
    // A write time from the future counts as now: it cannot outrank every later write.
    const future = await read(shared("closed", 1, null, clock.now() + 3_600_000));
    expect(future).toMatchObject({ state: "closed", changedAt: clock.now() });
    await clock.advance(1);
    expect(await read(shared("open", 1, T0 + 90_000, clock.now()))).toMatchObject({ state: "open" });
  });

  it("ignores a foreign or corrupt value with an event, and cuts an absurd hold to 24 h", async () => {
    const { kv, store, clock, settle, events } = setup();
    kv.metadata = { s: "open" };
    store.peek(KEY, clock.now());
    await settle();
    expect(events).toEqual([
      {
        store: "kv",
        key: KEY,
        operation: "validate",
        outcome: "rejected",
        detail: "a foreign or corrupt value was ignored",
      },
    ]);
    expect(store.peek(KEY, clock.now())).toBeUndefined();
    const far = setup();
    far.kv.metadata = shared("open", 1, 1e300);
    far.store.peek(KEY, far.clock.now());
    await far.settle();
    expect(far.store.peek(KEY, far.clock.now())?.openUntil).toBe(T0 + 86_400_000);
  });
});

describe("kvStore writes", () => {
  it("writes open and closed snapshots with their expiry, never half-open", async () => {
    const { kv, store, clock, settle, events } = setup({ minPublishInterval: 1_000 });
    store.publish(KEY, snap("half_open", 2, null));
    await settle();
    expect(kv.puts).toEqual([]);
    expect(events).toEqual([]);

    store.publish(KEY, snap("open", 1, T0 + 120_000, "x".repeat(300)));
    await settle();
    expect(kv.puts).toEqual([
      {
        key: KV_KEY,
        value: "",
        options: { expirationTtl: 180, metadata: shared("open", 1, T0 + 120_000, T0, "x".repeat(200)) },
      },
    ]);
    expect(events).toEqual([{ store: "kv", key: KEY, operation: "write", outcome: "ok", detail: "open" }]);
    // What it wrote is what it now serves.
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "open", gen: 1, openUntil: T0 + 120_000 });

    const ttl = async (s: BreakerSnapshot) => {
      await clock.advance(1_000);
      store.publish(KEY, s);
      await settle();
      return kv.puts.at(-1)?.options.expirationTtl;
    };
    expect(await ttl(snap("closed", 2, null))).toBe(86_400);
    expect(await ttl(snap("open", 3, clock.now() + 1_000 + 1_500))).toBe(62);
    expect(await ttl({ ...snap("open", 5, clock.now() + 1_000 + 90_000), reason: null })).toBe(150);
    expect(kv.puts.at(-1)?.options.metadata).toMatchObject({ r: null });
    // An open snapshot with no end (a fresh store: nothing shared yet) lives the minimum 60 s.
    const fresh = setup();
    fresh.store.publish(KEY, snap("open", 1, null));
    await fresh.settle();
    expect(fresh.kv.puts[0]?.options).toMatchObject({ expirationTtl: 60, metadata: { u: null, r: "open" } });
  });

  it("skips a write the shared value already says (open within 1 s, or closed at the same generation or later)", async () => {
    const cases: [unknown, BreakerSnapshot, boolean][] = [
      [shared("open", 1, T0 + 60_000), snap("open", 2, T0 + 61_000), true],
      [shared("open", 1, T0 + 60_000), snap("open", 2, T0 + 61_001), false],
      [shared("closed", 1, null), snap("open", 2, T0 + 1_000), false],
      [shared("closed", 3, null), snap("closed", 3, null), true],
      [shared("closed", 4, null), snap("closed", 3, null), true],
      [shared("closed", 2, null), snap("closed", 3, null), false],
      [shared("open", 5, T0 + 60_000), snap("closed", 3, null), false],
    ];
    for (const [remote, local, skipped] of cases) {
      const { kv, store, clock, settle, events } = setup();
      kv.metadata = remote;
      store.peek(KEY, clock.now());
      await settle();
      store.publish(KEY, local);
      await settle();
      expect(kv.puts.length, JSON.stringify([remote, local.state, local.gen])).toBe(skipped ? 0 : 1);
      if (skipped) {
        expect(events).toEqual([
          { store: "kv", key: KEY, operation: "write", outcome: "skipped", detail: `remote already ${local.state}` },
        ]);
      }
    }
  });

  it("holds a write back until minPublishInterval has passed, then writes the latest, in the waitUntil of the call that held it", async () => {
    const { kv, store, clock, ctx, settle } = setup({ minPublishInterval: 5_000, refreshInterval: 60_000 });
    store.publish(KEY, snap("open", 1, T0 + 1_000));
    await settle();
    await clock.advance(1_000);
    const before = ctx.tasks.length;
    store.publish(KEY, snap("closed", 2, null));
    expect(ctx.tasks.length).toBe(before + 1);
    store.peek(KEY, clock.now());
    await clock.advance(3_999);
    store.peek(KEY, clock.now());
    expect(kv.puts).toHaveLength(1);
    await clock.advance(1);
    await settle();
    expect(kv.puts).toHaveLength(2);
    expect(kv.puts[1]?.options.metadata).toMatchObject({ s: "closed", g: 2 });
    // Written: nothing left to send.
    await clock.advance(10_000);
    store.peek(KEY, clock.now());
    await settle();
    expect(kv.puts).toHaveLength(2);
    // Exactly minPublishInterval after the last write, a publish goes at once.
    store.publish(KEY, snap("open", 3, clock.now() + 30_000));
    await clock.advance(5_000);
    store.publish(KEY, snap("closed", 4, null));
    await settle();
    expect(kv.puts.map((p) => (p.options.metadata as { g: number }).g)).toEqual([1, 2, 3, 4]);
  });

  it("waits a random share of publishJitter (1 s by default) before writing", async () => {
    const { kv, store, clock, settle } = setup({ random: () => 0.5, publishJitter: undefined as never });
    store.publish(KEY, snap("open", 1, T0 + 60_000));
    await clock.advance(499);
    expect(kv.puts).toHaveLength(0);
    await clock.advance(1);
    await settle();
    expect(kv.puts).toHaveLength(1);
  });

  it("keeps to writeBudget per day, and starts again the next day", async () => {
    const { kv, store, clock, settle, events } = setup({ writeBudget: 1, minPublishInterval: 1_000 });
    store.publish(KEY, snap("open", 1, T0 + 1_000));
    await clock.advance(1_000);
    store.publish(KEY, snap("closed", 2, null));
    await settle();
    expect(kv.puts).toHaveLength(1);
    expect(events.at(-1)).toEqual({
      store: "kv",
      key: KEY,
      operation: "budget",
      outcome: "skipped",
      detail: "daily write budget of 1 used",
    });
    await clock.advance(86_400_000);
    store.publish(KEY, snap("open", 3, clock.now() + 1_000));
    await settle();
    expect(kv.puts).toHaveLength(2);
  });

  it("a refused write is skipped when KV says 429, failed otherwise; neither reaches the caller", async () => {
    for (const [message, outcome] of [
      ["429 Too Many Requests", "skipped"],
      ["KV PUT failed: too many writes", "skipped"],
      ["KV PUT failed: 500", "failed"],
    ] as const) {
      const { kv, store, settle, events, clock } = setup();
      kv.putError = new Error(message);
      store.publish(KEY, snap("open", 1, T0 + 60_000));
      await settle();
      // Tried once more after minPublishInterval, then left alone.
      const refusal = { store: "kv", key: KEY, operation: "write", outcome, detail: `Error: ${message}` };
      expect(events).toEqual([refusal, refusal]);
      expect(kv.putCalls).toBe(2);
      expect(store.peek(KEY, clock.now())).toBeUndefined();
    }
  });

  it("runs its background work in the context bound last, and without one runs it all the same", async () => {
    const { kv, store, clock, settle } = setup();
    const next = fakeCtx();
    store.bindContext(next);
    store.publish(KEY, snap("open", 1, T0 + 60_000));
    expect(next.tasks).toHaveLength(1);
    await clock.run(next.settle());
    await settle();
    expect(kv.puts).toHaveLength(1);

    const bare = new RecordingKv();
    const alone = kvStore(bare, { clock, random: () => 0, publishJitter: 0 });
    const events: StoreEvent[] = [];
    const off = alone.connect?.((e) => events.push(e));
    alone.publish(KEY, snap("open", 1, T0 + 60_000));
    await clock.advance(0);
    expect(bare.puts).toHaveLength(1);
    expect(events).toEqual([{ store: "kv", key: KEY, operation: "write", outcome: "ok", detail: "open" }]);
    off?.();
    await clock.advance(1_000_000);
    alone.publish(KEY, snap("closed", 2, null));
    await clock.advance(0);
    expect(bare.puts).toHaveLength(2);
    expect(events).toHaveLength(1); // unsubscribed
  });
});

describe("memoryStore", () => {
  it("accepts a single key, and refuses less", () => {
    const store = memoryStore({ maxKeys: 1 });
    store.publish("a", snap("open", 1, T0));
    store.publish("b", snap("open", 1, T0));
    expect(store.peek("a", T0)).toBeUndefined();
    expect(store.peek("b", T0)?.state).toBe("open");
    expect(() => memoryStore({ maxKeys: 0 })).toThrow("memoryStore({ maxKeys }): expected an integer >= 1, got 0");
    expect(() => memoryStore({ maxKeys: 1.5 })).toThrow(TypeError);
  });
});

describe("Background: a task goes to the requests in flight", () => {
  it("hands a task to every bound context until it is released, then to the last one bound", () => {
    const seen: string[] = [];
    const ctx = (name: string) => ({ waitUntil: () => void seen.push(name) });
    const background = new Background("kv", undefined);
    background.run("k", async () => {});
    expect(seen).toEqual([]);
    const releaseA = background.bind(ctx("A"));
    const releaseB = background.bind(ctx("B"));
    releaseB();
    background.run("k", async () => {});
    expect(seen).toEqual(["A"]);
    releaseA();
    background.run("k", async () => {});
    expect(seen).toEqual(["A", "B"]);
  });
});
