import { describe, expect, it } from "vitest";
import { kvStore } from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "./fake-kv.ts";

/**
 * kvStore's write discipline, one rule at a time, against a fake KV that
 * records every attempted write (refused ones too): each test here fails when
 * the rule it names is removed from `src/cloudflare/kv-store.ts`.
 */

const KEY = "gen.example";
const KV_KEY = `cb:v1:default:${KEY}`;
const T0 = Date.parse("2026-11-28T00:00:00Z");

function snapshot(state: BreakerSnapshot["state"], gen: number, openUntil: number | null): BreakerSnapshot {
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
    reason: state,
    changedAt: T0,
  } as BreakerSnapshot;
}

function setup(options: { publishJitter?: number; writeDelay?: (n: number) => number; seed?: number } = {}) {
  const clock = new TestClock(T0);
  const kv = new FakeKv(clock, { propagation: 0, ...(options.writeDelay ? { writeDelay: options.writeDelay } : {}) });
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const isolate = () => {
    const store = kvStore(kv.location(), {
      ctx,
      clock,
      random: seededRandom(options.seed ?? 1),
      publishJitter: options.publishJitter ?? 0,
    });
    const events: StoreEvent[] = [];
    store.connect?.((e) => events.push(e));
    return { store, events };
  };
  /** Lets background work finish, firing timers (jitter, write delays) on the way. */
  const settle = async () => {
    while (pending.length > 0) await clock.run(Promise.all(pending.splice(0)));
  };
  return { clock, kv, isolate, settle };
}

describe("kvStore writes", () => {
  it("writes at most once per minPublishInterval per isolate, then the latest state it held back", async () => {
    const { clock, kv, isolate, settle } = setup();
    const { store } = isolate();
    store.publish(KEY, snapshot("open", 1, T0 + 30_000));
    await settle();
    await clock.advance(200);
    store.publish(KEY, snapshot("closed", 2, null));
    await clock.advance(100);
    store.publish(KEY, snapshot("open", 3, clock.now() + 60_000));
    await clock.advance(4_699);
    // Only the first went out (no 429 needed to stop the others: they were never attempted).
    expect(kv.attempts.map((a) => [a.gen, a.accepted])).toEqual([[1, true]]);
    // When the interval ends the latest held back goes, with no call or lookup to start it.
    await clock.advance(1);
    await settle();
    expect(kv.attempts.map((a) => [a.gen, a.state, a.at - T0, a.accepted])).toEqual([
      [1, "open", 0, true],
      [3, "open", 5_000, true],
    ]);
  });

  it("writes a transition held during the previous write's jitter in the task that held it, when the moved interval ends", async () => {
    const { clock, kv } = setup();
    const tasks: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void tasks.push(p) };
    const store = kvStore(kv.location(), { ctx, clock, random: () => 0.5, publishJitter: 400 });
    store.publish(KEY, snapshot("open", 1, T0 + 30_000)); // written at T0 + 200 (the jitter)
    await clock.advance(100);
    store.publish(KEY, snapshot("closed", 2, null)); // held: the interval runs from T0 + 200 once that write lands
    expect(tasks).toHaveLength(2);
    await clock.run(Promise.all([...tasks]));
    // Its own task waited on past T0 + 5,000 (where it first looked) to T0 + 5,200: no third task was started.
    expect(tasks).toHaveLength(2);
    expect(kv.attempts.map((a) => [a.gen, a.at - T0, a.accepted])).toEqual([
      [1, 200, true],
      [2, 5_200, true],
    ]);
  });

  it("spreads the writes of isolates that trip together over publishJitter", async () => {
    const { clock, kv, settle } = setup();
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const stores = Array.from({ length: 20 }, (_, i) =>
      kvStore(kv.location(), { ctx, clock, random: seededRandom(100 + i), publishJitter: 1_000 }),
    );
    for (const store of stores) store.publish(KEY, snapshot("open", 1, T0 + 30_000));
    // Until every write, and every write it started (a retry), has settled.
    while (pending.length > 0) await clock.run(Promise.all(pending.splice(0)));
    await settle();
    const first = kv.attempts.filter((a) => a.at - T0 < 5_000);
    const times = first.map((a) => a.at - T0);
    expect(times).toHaveLength(20);
    expect(times.every((t) => t >= 0 && t < 1_000)).toBe(true);
    // Spread over the jitter, not a burst at one instant (seeded, so reproducible).
    expect(new Set(times).size).toBe(20);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(500);
    // KV refuses a second write to a key within a second: each refused isolate
    // tries once more, 5 s (minPublishInterval) or more after its refusal, and
    // then leaves it to the others.
    const refused = first.filter((a) => !a.accepted);
    expect(refused.length).toBeGreaterThan(0);
    const again = kv.attempts.filter((a) => a.at - T0 >= 5_000);
    expect(again.map((a) => a.location).sort()).toEqual(refused.map((a) => a.location).sort());
    for (const retry of again) {
      const before = refused.find((a) => a.location === retry.location);
      expect(retry.at - (before?.at ?? Number.NaN)).toBeGreaterThanOrEqual(5_000);
    }
  });

  it("skips a write when the last remote state it read says the same", async () => {
    const { clock, kv, isolate, settle } = setup();
    kv.plant(KV_KEY, { v: 1, s: "open", g: 5, u: T0 + 60_000, w: T0, r: "elsewhere" });
    const { store, events } = isolate();
    store.peek(KEY, clock.now()); // a background read learns the remote open
    await settle();
    store.publish(KEY, snapshot("open", 1, T0 + 30_000));
    await settle();
    expect(kv.attempts).toEqual([]);
    expect(events).toContainEqual({
      store: "kv",
      key: KEY,
      operation: "write",
      outcome: "skipped",
      detail: "remote already open",
    });
    // An open that lasts longer than the remote one is news: written.
    store.publish(KEY, snapshot("open", 2, T0 + 120_000));
    await settle();
    expect(kv.attempts.map((a) => a.gen)).toEqual([2]);
  });

  it("keeps the newest snapshot when an older write lands last", async () => {
    // The first write takes 3 s to land; the second, issued 1.5 s later, lands at once.
    const { clock, kv, isolate } = setup({ writeDelay: (n) => (n === 0 ? 3_000 : 0) });
    const a = isolate();
    const b = isolate();
    const reader = isolate();
    a.store.publish(KEY, snapshot("closed", 4, null));
    await clock.advance(1_500);
    b.store.publish(KEY, snapshot("open", 5, T0 + 60_000));
    await clock.advance(10);
    reader.store.peek(KEY, clock.now()); // reads the open, in the background
    await clock.advance(10);
    expect(reader.store.peek(KEY, clock.now())).toMatchObject({ state: "open", gen: 5 });
    await clock.advance(2_000); // the older closed lands now, last: KV keeps it
    expect(kv.attempts.map((x) => [x.gen, x.accepted])).toEqual([
      [4, true],
      [5, true],
    ]);
    const fresh = await kv.location().getWithMetadata<{ s: string; g: number }>(KV_KEY, { cacheTtl: 30 });
    expect(fresh.metadata).toMatchObject({ s: "closed", g: 4 });
    await clock.advance(30_000);
    reader.store.peek(KEY, clock.now()); // the next refresh reads the older closed…
    await clock.advance(10);
    expect(kv.stats.reads).toBe(3);
    // …and the reader does not go back to it.
    expect(reader.store.peek(KEY, clock.now())).toMatchObject({ state: "open", gen: 5 });
  });

  it("never makes a call wait for a slow read, and turns a failed read into an event", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    kv.readDelay = 10_000;
    const pending: Promise<unknown>[] = [];
    const store = kvStore(kv.location(), { ctx: { waitUntil: (p) => void pending.push(p) }, clock });
    const events: StoreEvent[] = [];
    store.connect?.((e) => events.push(e));
    const resilience = createResilience({ clock, store, retry: false, fetch: async () => new Response("ok") });
    // The clock is not moved: a call that waited for the 10 s read could not finish.
    const turns = (n: number) =>
      Array.from({ length: n }).reduce<Promise<void>>(
        (p) => p.then(() => new Promise((r) => setTimeout(r, 0))),
        Promise.resolve(),
      );
    const first = resilience.fetch(`https://${KEY}/`);
    expect(await Promise.race([first.then((r) => r.status), turns(20).then(() => "waited")])).toBe(200);
    expect(kv.stats.reads).toBe(1);
    await clock.advance(10_000);
    await Promise.all(pending.splice(0));
    kv.readDelay = 0;
    kv.failNextReads(1);
    await clock.advance(30_000);
    expect((await resilience.fetch(`https://${KEY}/`)).status).toBe(200);
    await Promise.all(pending.splice(0));
    expect(kv.stats.failedReads).toBe(1);
    expect(events).toEqual([
      {
        store: "kv",
        key: KEY,
        operation: "read",
        outcome: "failed",
        detail: "Error: KV GET failed: 500 Internal Server Error",
      },
    ]);
  });
});

describe("the fake KV itself", () => {
  it("serves a location's cached read for the cacheTtl it asked for", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const reader = kv.location();
    const writer = kv.location();
    expect((await reader.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toBeNull();
    await writer.put(KV_KEY, "", { metadata: { s: "open" } });
    await clock.advance(29_999);
    expect((await reader.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toBeNull(); // cached
    await clock.advance(1);
    expect((await reader.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toEqual({ s: "open" });
    await expect(reader.getWithMetadata(KV_KEY, { cacheTtl: 10 })).rejects.toThrow(/at least 30/);
  });

  it("records refused writes and shows others' writes only after propagation", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 20_000 });
    const a = kv.location();
    const b = kv.location();
    await a.put(KV_KEY, "", { metadata: { s: "open", g: 1 } });
    await expect(b.put(KV_KEY, "", { metadata: { s: "open", g: 2 } })).rejects.toThrow(/429/);
    expect(kv.attempts.map((x) => [x.gen, x.accepted])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(kv.maxWritesPerKeyPerSecond()).toBe(1);
    expect(kv.maxWritesPerKeyPerSecond("attempted")).toBe(2);
    expect((await a.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toEqual({ s: "open", g: 1 });
    expect((await b.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toBeNull();
    await clock.advance(30_000);
    expect((await b.getWithMetadata(KV_KEY, { cacheTtl: 30 })).metadata).toEqual({ s: "open", g: 1 });
  });
});
