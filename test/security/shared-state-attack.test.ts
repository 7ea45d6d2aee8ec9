/**
 * Outside-in attack on today's rework of shared breaker state (`adopt`
 * ordering by `changedAt`, KV values dated by their state's start, the
 * object's verdict carrying `changedAt`): real layers (`createResilience`)
 * over `memoryStore`, `kvStore` on the fake KV and `durableObjectStore` on
 * fake Durable Objects, time moving only on a `TestClock`. Public entries only.
 *
 * Two tests pinned defects (they failed on the code they were written
 * against; both are fixed); the others are what held.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore } from "../../src/cloudflare/index.ts";
import { type BreakerStore, CircuitOpenError, createResilience, memoryStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";

const T0 = Date.parse("2026-12-01T00:00:00Z");
const HOST = "gen.example";
const URL_ = `https://${HOST}/v1/x`;
const turns = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * One layer on `store`, with an upstream the test switches: `up.ok` (200 or
 * 503) and `up.hang` (calls wait for `answer`). `call()` runs one call to its
 * end, then `background()` (the store's waitUntil work): the status, or "open".
 */
function layer(
  clock: TestClock,
  store: BreakerStore,
  breaker: Record<string, number>,
  background: () => Promise<unknown> = async () => {},
) {
  const waiting: Array<(status: number) => void> = [];
  const up = { ok: true, hang: false, sent: 0 };
  const events: string[] = [];
  const resilience = createResilience({
    clock,
    store,
    retry: false,
    breaker: { failureRate: undefined, ...breaker } as never,
    fetch: () => {
      up.sent++;
      if (up.hang)
        return new Promise<Response>((resolve) => waiting.push((s) => resolve(new Response(null, { status: s }))));
      return Promise.resolve(new Response(null, { status: up.ok ? 200 : 503 }));
    },
  });
  resilience.on("breaker", (e) => events.push(`${e.from}>${e.to}`));
  const call = async (): Promise<number | string> => {
    try {
      const res = await clock.run(resilience.fetch(URL_));
      return res.status;
    } catch (error) {
      return error instanceof CircuitOpenError ? "open" : String(error);
    } finally {
      await clock.run(background());
    }
  };
  /** Answers every call waiting on the upstream. */
  const answer = async (status: number) => {
    for (const resolve of waiting.splice(0)) resolve(status);
    await turns();
  };
  return { resilience, up, events, call, answer, store, health: () => resilience.health().breakers[HOST] };
}

/** One isolate on the fake KV: its own location and kvStore (reads every second, writes every second, no jitter). */
function kvLayer(kv: FakeKv, clock: TestClock, breaker: Record<string, number>) {
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const store = kvStore(kv.location(), {
    ctx,
    clock,
    random: () => 0,
    refreshInterval: 1_000,
    minPublishInterval: 1_000,
  });
  return layer(clock, store, breaker, () => Promise.all(pending.splice(0)));
}

/** One isolate on the fake Durable Object namespace. */
function doLayer(ns: FakeNamespace, clock: TestClock, breaker: Record<string, number>) {
  const ctx = fakeCtx();
  const store = durableObjectStore(ns, { ctx, clock });
  return layer(clock, store, breaker, () => ctx.settle());
}

// ---------------------------------------------------------------------------

describe("health() of a breaker that took a half-open from elsewhere (docs/health-and-events.md)", () => {
  const breaker = { failureThreshold: 3, successThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 };

  /** A trips on 3 × 503 and, after its timeout, sends its probe (held); B, new, then makes its first call. */
  async function adoptedHalfOpen() {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const a = layer(clock, store, breaker);
    a.up.ok = false;
    for (let i = 0; i < 3; i++) expect(await a.call()).toBe(503);
    await clock.advance(1_000);
    a.up.hang = true;
    const probe = a.resilience.fetch(URL_);
    await turns();
    const b = layer(clock, store, breaker);
    b.up.hang = true;
    const first = b.resilience.fetch(URL_); // B (closed) takes A's half-open: its call goes as a probe
    await turns();
    return { a, b, probe, first };
  }

  // docs/health-and-events.md: "A closed breaker shows its live counts; an open or
  // half-open one shows the counts that opened it, the error that did, and until when it
  // stays open." src/http/health.ts: `lastError` is "The error or status that opened it".
  //
  // What happens: `adopt` (src/policies/breaker-state.ts, the `remote.state ===
  // "half_open"` branch) builds the trip record from the LOCAL closed breaker
  // (`tripOf(s, reason)`): B, which never failed, reports `consecutiveFailures: 0`,
  // `failureCount: 0` and as `lastError` its own transition reason "shared: timeout
  // elapsed" (no error at all), although the memoryStore snapshot it adopted carries A's
  // trip (3 failures in a row, "status 503"). Adopting A's OPEN instead copies that trip
  // (`remote.trip`), so the same host reads differently depending on when B looked.
  it("an adopted half-open reports the failures and the error that opened the host, not its own reason", async () => {
    const { a, b, probe, first } = await adoptedHalfOpen();
    expect(a.health()).toMatchObject({ state: "half_open", consecutiveFailures: 3, lastError: "status 503" });
    expect(b.health()?.state).toBe("half_open");
    try {
      expect(b.health()).toMatchObject({ consecutiveFailures: 3, failureCount: 3, lastError: "status 503" });
    } finally {
      await a.answer(200);
      await b.answer(200);
      await Promise.all([probe, first]);
    }
  });

  it("control: the breaker event of the adopted half-open, and both layers closed once the probes succeed", async () => {
    const { a, b, probe, first } = await adoptedHalfOpen();
    expect(b.events).toEqual(["closed>half_open"]);
    expect(b.health()).toMatchObject({ openUntil: null, reason: "shared: timeout elapsed" });
    expect(b.resilience.health().status).toBe("healthy"); // half-open is not "open"
    expect(await b.call()).toBe("open"); // its one probe slot is taken
    await a.answer(200);
    await b.answer(200);
    expect((await probe).status).toBe(200);
    expect((await first).status).toBe(200);
    expect([a.health()?.state, b.health()?.state]).toEqual(["closed", "closed"]);
  });
});

// ---------------------------------------------------------------------------

describe("kvStore: a remote open reaches a half-open isolate (docs/cloudflare.md)", () => {
  const breaker = {
    failureThreshold: 1,
    successThreshold: 1,
    timeout: 60_000,
    halfOpenMaxCalls: 2,
    probeTimeout: 600_000,
  };

  /** B trips, and after its timeout holds one probe in flight; C, a new isolate, trips 100 ms later; B reads C's open. */
  async function halfOpenMeetsNewTrip(bTrips: boolean) {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const b = kvLayer(kv, clock, breaker);
    let probe: Promise<Response> | undefined;
    if (bTrips) {
      b.up.ok = false;
      expect(await b.call()).toBe(503); // B open (generation 1), written
      await clock.advance(60_000);
      b.up.hang = true;
      probe = b.resilience.fetch(URL_); // B half-open (generation 2), probe 1 of 2 in flight
      probe.catch(() => {});
      await turns();
      expect(b.health()?.state).toBe("half_open");
    } else {
      expect(await b.call()).toBe(200);
      b.up.hang = true;
    }
    await clock.advance(100);
    const c = kvLayer(kv, clock, breaker);
    c.up.ok = false;
    expect(await c.call()).toBe(503); // C, a new isolate: open, generation 1, written
    expect(kv.attempts.at(-1)).toMatchObject({ state: "open", gen: 1, accepted: true });
    await clock.advance(31_000); // past B's location cache (cacheTtl 30 s)
    b.store.peek(HOST, clock.now()); // B's background read
    await clock.run(turns());
    expect(b.store.peek(HOST, clock.now())).toMatchObject({
      state: "open",
      gen: 1,
      changedAt: T0 + 60_100 - (bTrips ? 0 : 60_000),
    });
    const sent = b.up.sent;
    const outcome = await Promise.race([b.call(), turns().then(() => "reached the host")]);
    const reached = b.up.sent - sent;
    await b.answer(503);
    return { outcome, reached, b };
  }

  // docs/cloudflare.md: "A remote snapshot may push a breaker toward open, a closed one
  // toward half-open (…), and toward closed only when it closed after the local breaker
  // last changed, so a late, older `closed` is ignored. Times order them, not
  // generations: each isolate, and the object, counts its own (a new isolate's first
  // trip is generation 1)." docs/breakers.md: "A remote snapshot may push a breaker
  // toward open".
  //
  // What happens: `adopt` (src/policies/breaker-state.ts) still orders a remote open
  // against a half-open breaker by GENERATION: `if (s.state !== "open" && remote.gen <
  // s.gen && s.state === "half_open") return s;`. B, half-open at generation 2 since
  // +60 s, reads C's open (generation 1, begun at +60.1 s, later than B's half-open, open
  // for another 29 s) and ignores it: B's next call is admitted as its second probe and
  // reaches the host C just found down. Any half-open isolate ignores every fresh
  // isolate's first trip this way.
  it("a half-open isolate takes a later open from a new isolate (generation 1): its next call does not reach the host", async () => {
    const { outcome, reached, b } = await halfOpenMeetsNewTrip(true);
    expect(reached).toBe(0);
    expect(outcome).toBe("open");
    expect(b.health()?.state).toBe("open");
  });

  it("control: a closed isolate takes the same open (its call fails fast)", async () => {
    const { outcome, reached, b } = await halfOpenMeetsNewTrip(false);
    expect(reached).toBe(0);
    expect(outcome).toBe("open");
    expect(b.health()?.state).toBe("open");
  });
});

// ---------------------------------------------------------------------------
// What held.

describe("held: a KV value from an old writer (w = 0)", () => {
  const breaker = { failureThreshold: 1, successThreshold: 1, timeout: 60_000, halfOpenMaxCalls: 1 };
  const KEY = `cb:v1:default:${HOST}`;

  it("an open dated 0 but still running is adopted by a fresh isolate", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    kv.plant(KEY, { v: 1, s: "open", g: 7, u: T0 + 60_000, w: 0, r: "old writer" });
    const b = kvLayer(kv, clock, breaker);
    expect(await b.call()).toBe(200); // first use: the read is in the background
    expect(await b.call()).toBe("open");
    expect(b.health()).toMatchObject({ state: "open", openUntil: T0 + 60_000, reason: "shared: old writer" });
  });

  it("a closed dated 0 never closes a local open", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const b = kvLayer(kv, clock, breaker);
    b.up.ok = false;
    expect(await b.call()).toBe(503); // open, written
    kv.plant(KEY, { v: 1, s: "closed", g: 99, u: null, w: 0, r: "old writer" });
    await clock.advance(31_000); // past the location's cache
    expect(await b.call()).toBe("open");
    expect(await b.call()).toBe("open");
    expect(b.health()?.state).toBe("open");
  });
});

describe("held: durableObjectStore with successThreshold 2, halfOpenMaxCalls 2, two isolates", () => {
  it("exactly two probes reach the host across both isolates, then both close and stay closed", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeNamespace(clock);
    const breaker = { failureThreshold: 2, successThreshold: 2, timeout: 1_000, halfOpenMaxCalls: 2 };
    const a = doLayer(ns, clock, breaker);
    const b = doLayer(ns, clock, breaker);
    a.up.ok = false;
    b.up.ok = false;
    expect([await a.call(), await a.call()]).toEqual([503, 503]); // A trips, reported at once
    expect(await b.call()).toBe(503); // B's first call, before it knew
    expect(await b.call()).toBe("open"); // now B has the object's open
    await clock.advance(1_000);
    a.up.ok = true;
    b.up.ok = true;
    a.up.hang = true;
    b.up.hang = true;
    const [sentA, sentB] = [a.up.sent, b.up.sent];
    const calls = [a, b, a, b, a, b].map((x) => x.resilience.fetch(URL_));
    for (const c of calls) c.catch(() => {});
    for (let i = 0; i < 10; i++) await clock.advance(0);
    expect(a.up.sent - sentA + (b.up.sent - sentB)).toBe(2);
    await a.answer(200);
    await b.answer(200);
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(2);
    a.up.hang = false;
    b.up.hang = false;
    const after: (number | string)[] = [];
    for (let i = 0; i < 4; i++) {
      await clock.advance(500);
      after.push(await a.call(), await b.call());
    }
    expect(after).toEqual(Array(8).fill(200));
    expect([a.health()?.state, b.health()?.state]).toEqual(["closed", "closed"]);
  });
});

describe("held: memoryStore recovery, three layers", () => {
  it("probes that succeed in the same millisecond close every layer; no layer re-opens on a healthy host", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const breaker = { failureThreshold: 1, successThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 };
    const [x, y, z] = [layer(clock, store, breaker), layer(clock, store, breaker), layer(clock, store, breaker)];
    const ls = [x, y, z];
    x.up.ok = false;
    expect(await x.call()).toBe(503);
    expect([await y.call(), await z.call()]).toEqual(["open", "open"]);
    await clock.advance(1_000);
    x.up.ok = true; // the host is back
    for (const l of ls) l.up.hang = true;
    const probes = ls.map((l) => l.resilience.fetch(URL_));
    for (const p of probes) p.catch(() => {});
    await turns();
    for (const l of ls) await l.answer(200); // all in the same millisecond
    await Promise.allSettled(probes);
    for (const l of ls) l.up.hang = false;
    const marks = ls.map((l) => l.events.length);
    for (let i = 0; i < 30; i++) {
      await clock.advance(200);
      for (const l of ls) expect(await l.call()).toBe(200);
    }
    expect(ls.map((l) => l.health()?.state)).toEqual(["closed", "closed", "closed"]);
    expect(ls.map((l, i) => l.events.slice(marks[i]))).toEqual([[], [], []]);
  });
});
