import { describe, expect, it } from "vitest";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { breakerDefaults } from "../../src/core/options/breaker-options.ts";
import type { StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";
import { FakeNamespace, fakeCtx } from "./fake-durable-object.ts";

/**
 * durableObjectStore in Node, over a fake namespace whose objects are real
 * BreakerStateObjects on fake storage, on one injected clock.
 */

const T0 = Date.parse("2026-11-28T00:00:00Z");
const { maxHosts: _maxHosts, ...thresholds } = breakerDefaults;
const policy = {
  ...thresholds,
  failureThreshold: 3,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  failureRate: undefined,
} as never;
const KEY = "gen.example";

function setup(options: Parameters<typeof durableObjectStore>[1] = {}) {
  const clock = new TestClock(T0);
  const namespace = new FakeNamespace(clock);
  const ctx = fakeCtx();
  const store = durableObjectStore(namespace, { ctx, clock, policy, ...options });
  const events: StoreEvent[] = [];
  store.connect?.((e) => events.push(e));
  const reports = () => namespace.requests.filter((r) => r.path === "/report").map((r) => r.body);
  return { clock, namespace, ctx, store, events, reports };
}

const openSnapshot = (now: number, reason: string, openUntil: number): BreakerSnapshot => ({
  v: 1,
  state: "open",
  gen: 1,
  failures: [],
  window: null,
  lastFailureTime: now,
  openUntil,
  leases: [],
  successes: 0,
  reason,
  changedAt: now,
});

describe("durableObjectStore setup", () => {
  it("refuses something that is not a namespace binding", () => {
    const message =
      "durableObjectStore(namespace): expected a Durable Object namespace binding with idFromName() and get()";
    expect(() => durableObjectStore(undefined as never)).toThrow(new TypeError(message));
    expect(() => durableObjectStore({ idFromName: () => "x" } as never)).toThrow(message);
    expect(() => durableObjectStore({ get: () => ({}) } as never)).toThrow(message);
  });

  it("names one object per scope and host, and sends the configured policy", async () => {
    const { store, namespace, ctx, clock } = setup({ scope: "video" });
    expect(store.name).toBe("durable-object");
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.names).toEqual(["cb:video:gen.example"]);
    expect(namespace.requests[0]?.contentType).toBe("application/json");
    expect(namespace.requests[0]?.body.policy).toMatchObject({ failureThreshold: 3, failureRate: null });
    // The store's own policy is every sharing layer's: a layer's thresholds do not replace it.
    store.configure({ ...(policy as object), failureThreshold: 7 } as never);
    await clock.advance(5_000);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests[1]?.body.policy).toMatchObject({ failureThreshold: 3 });
    // Without one, the store sends the thresholds of the layer made with it.
    const bare = setup({ policy: undefined });
    bare.store.configure({ ...(policy as object), failureThreshold: 7 } as never);
    bare.store.peek(KEY, bare.clock.now());
    await bare.ctx.settle();
    expect(bare.namespace.requests[0]?.body.policy).toMatchObject({ failureThreshold: 7, failureRate: null });

    const plain = setup();
    plain.store.peek(KEY, plain.clock.now());
    await plain.ctx.settle();
    expect(plain.namespace.names).toEqual(["cb:default:gen.example"]);
  });

  it("without a policy it sends the breaker defaults", async () => {
    const clock = new TestClock(T0);
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const store = durableObjectStore(namespace, { ctx, clock });
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests[0]?.body.policy).toEqual({
      failureThreshold: breakerDefaults.failureThreshold,
      successThreshold: breakerDefaults.successThreshold,
      timeout: breakerDefaults.timeout,
      halfOpenMaxCalls: breakerDefaults.halfOpenMaxCalls,
      timeWindow: breakerDefaults.timeWindow,
      probeTimeout: breakerDefaults.probeTimeout,
      failureRate: breakerDefaults.failureRate,
      minimumCalls: breakerDefaults.minimumCalls,
    });
  });
});

describe("durableObjectStore batching", () => {
  it("asks once for an unknown host, then trusts a closed verdict for verdictTtl", async () => {
    const { store, namespace, ctx, clock } = setup({ verdictTtl: 2_000, flushInterval: 10_000 });
    expect(store.peek(KEY, clock.now())).toBeUndefined();
    await ctx.settle();
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "closed", gen: 0 });
    await clock.advance(1_999);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(1);
    // The verdict expired but nothing happened and the last flush is recent: still no call.
    await clock.advance(1);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(1);
    // Something to report: a call.
    store.record?.(KEY, false, clock.now());
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(2);
    expect(namespace.requests[1]?.body).toMatchObject({ ok: 1, fail: 0 });
  });

  it("outcomes wait for the closed verdict to expire (verdictTtl), not only for flushInterval", async () => {
    const { store, ctx, clock, reports } = setup({ verdictTtl: 2_000, flushInterval: 10_000 });
    store.peek(KEY, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    store.record?.(KEY, false, clock.now());
    store.peek(KEY, clock.now());
    await clock.advance(999);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(reports()).toHaveLength(1);
    await clock.advance(1);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ ok: 1, fail: 0 });
  });

  it("asks again after flushInterval even with nothing to report", async () => {
    const { store, namespace, ctx, clock } = setup({ verdictTtl: 1_000, flushInterval: 3_000 });
    store.peek(KEY, clock.now());
    await ctx.settle();
    await clock.advance(2_999);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(1);
    await clock.advance(1);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(2);
    expect(namespace.requests[1]?.body).toMatchObject({ ok: 0, fail: 0 });
  });

  it("sends failures at once at flushThreshold, others at flushInterval; the object opens and the store stops calling", async () => {
    const { store, namespace, ctx, clock, reports } = setup({ flushInterval: 5_000 });
    store.record?.(KEY, true, clock.now());
    store.record?.(KEY, true, clock.now());
    await ctx.settle();
    expect(reports()).toEqual([]);
    store.record?.(KEY, true, clock.now());
    await ctx.settle();
    expect(reports()).toHaveLength(1);
    expect(reports()[0]).toMatchObject({ ok: 0, fail: 3 });
    expect(reports()[0]).not.toHaveProperty("holdUntil");
    const open = store.peek(KEY, clock.now());
    expect(open).toMatchObject({ state: "open", gen: 1, openUntil: T0 + 1_000 });
    // Open: recorded outcomes and lookups make no call until it ends.
    for (let i = 0; i < 5; i++) store.record?.(KEY, true, clock.now());
    store.peek(KEY, clock.now());
    await clock.advance(999);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(1);
    await clock.advance(1);
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(namespace.requests).toHaveLength(2);
  });

  it("sends successes once flushInterval has passed since the last flush", async () => {
    const { store, ctx, clock, reports } = setup({ flushInterval: 5_000, verdictTtl: 60_000 });
    store.peek(KEY, clock.now());
    await ctx.settle();
    store.record?.(KEY, false, clock.now());
    await clock.advance(4_999);
    store.record?.(KEY, false, clock.now());
    await ctx.settle();
    expect(reports()).toHaveLength(1);
    await clock.advance(1);
    store.record?.(KEY, false, clock.now());
    await ctx.settle();
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ ok: 3, fail: 0 });
  });

  it("a local open is sent at once as a hold with its reason (a trip or a Retry-After); an open verdict already known is not sent again", async () => {
    const { store, ctx, clock, reports } = setup();
    store.publish(KEY, openSnapshot(T0, "Retry-After: 120 s", T0 + 120_000));
    await ctx.settle();
    expect(reports()).toEqual([
      expect.objectContaining({ ok: 0, fail: 0, holdUntil: T0 + 120_000, reason: "Retry-After: 120 s" }),
    ]);
    expect(store.peek(KEY, clock.now())).toMatchObject({
      state: "open",
      openUntil: T0 + 120_000,
      reason: "Retry-After: 120 s",
    });
    store.publish(KEY, openSnapshot(T0, "3 failures in a row", T0 + 1_000));
    await ctx.settle();
    expect(reports()).toHaveLength(1);
    // A closed snapshot is not news.
    const other = setup();
    other.store.publish(KEY, { ...openSnapshot(T0, "closed", T0), state: "closed", openUntil: null });
    await other.ctx.settle();
    expect(other.reports()).toEqual([]);
    // An open snapshot without a reason is news too, never an error.
    const bare = setup();
    expect(() => bare.store.publish(KEY, { ...openSnapshot(T0, "x", T0 + 1_000), reason: null })).not.toThrow();
    await bare.ctx.settle();
    expect(bare.reports()).toEqual([expect.objectContaining({ holdUntil: T0 + 1_000 })]);
    expect(bare.reports()[0]).not.toHaveProperty("reason");
    // A trip holds the object open for its spell too: batched counts alone
    // cannot say it happened (the object spreads a batch's failures).
    other.store.publish(KEY, openSnapshot(T0, "3 failures in a row", T0 + 1_000));
    await other.ctx.settle();
    expect(other.reports()).toEqual([
      expect.objectContaining({ holdUntil: T0 + 1_000, reason: "3 failures in a row" }),
    ]);
    expect(other.store.peek(KEY, clock.now())).toMatchObject({ state: "open", reason: "3 failures in a row" });
  });

  it("news that comes while a flush is in flight goes as soon as it returns", async () => {
    const { store, namespace, ctx, clock, reports } = setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    namespace.answer = async (request) => {
      await gate;
      namespace.answer = undefined;
      const entry = namespace.object("cb:default:gen.example");
      return entry.object.fetch(request);
    };
    store.peek(KEY, clock.now()); // first flush, held
    await clock.advance(0);
    store.publish(KEY, openSnapshot(T0, "Retry-After: 60 s", T0 + 60_000));
    await clock.advance(0);
    expect(reports()).toHaveLength(1);
    release();
    await ctx.settle();
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ holdUntil: T0 + 60_000 });
  });

  it("a routine flush that finds one in flight waits for the next occasion", async () => {
    const { store, namespace, ctx, clock, reports } = setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    namespace.answer = async (request) => {
      await gate;
      return namespace.object("cb:default:gen.example").object.fetch(request);
    };
    store.peek(KEY, clock.now());
    await clock.advance(0);
    store.record?.(KEY, false, clock.now());
    store.peek(KEY, clock.now()); // no verdict yet and an outcome waiting: a routine flush, refused
    release();
    await ctx.settle();
    expect(reports()).toHaveLength(1);
  });

  it("urgent news still goes after a report that failed", async () => {
    const { store, namespace, ctx, clock, reports } = setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    namespace.answer = async () => {
      await gate;
      namespace.answer = undefined;
      throw new Error("object restarted");
    };
    store.peek(KEY, clock.now());
    await clock.advance(0);
    store.publish(KEY, openSnapshot(T0, "Retry-After: 60 s", T0 + 60_000));
    release();
    await ctx.settle();
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ holdUntil: T0 + 60_000 });
  });

  it("failures that reach the threshold while a flush is in flight go when it returns", async () => {
    const { store, namespace, ctx, clock, reports } = setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    namespace.answer = async (request) => {
      await gate;
      return namespace.object("cb:default:gen.example").object.fetch(request);
    };
    store.peek(KEY, clock.now());
    await clock.advance(0);
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    expect(reports()).toHaveLength(1);
    release();
    await ctx.settle();
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ fail: 3 });
  });

  it("a flush that never returns stops blocking the next after 10 s", async () => {
    const { store, namespace, ctx, clock, reports } = setup({ timeout: 60_000 });
    namespace.answer = () => new Promise<Response>(() => {});
    store.peek(KEY, clock.now());
    await clock.advance(9_999);
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    expect(reports()).toHaveLength(1);
    await clock.advance(1);
    store.record?.(KEY, true, clock.now());
    await clock.advance(0);
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ fail: 4 });
    expect(ctx.tasks).toHaveLength(2);
  });
});

describe("durableObjectStore probes", () => {
  it("a closed host grants every probe; a half-open one grants halfOpenMaxCalls leases, reported back by record", async () => {
    const { store, ctx, clock, reports } = setup();
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(true);
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    const lease = await store.acquireProbe?.(KEY, clock.now());
    expect(lease).toBe(String(T0 + 1_000 + breakerDefaults.probeTimeout));
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "half_open", gen: 2 });
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(false);
    // The probe's outcome goes back with its lease: the object closes.
    store.record?.(KEY, false, clock.now(), lease as string);
    await ctx.settle();
    expect(reports().at(-1)).toMatchObject({
      ok: 0,
      fail: 0,
      probe: { lease: T0 + 1_000 + breakerDefaults.probeTimeout, gen: 2, ok: true },
    });
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "closed", gen: 3 });
  });

  it("a failed probe re-opens; an unknown lease is an ordinary outcome", async () => {
    const { store, ctx, clock, reports } = setup();
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    const lease = (await store.acquireProbe?.(KEY, clock.now())) as string;
    store.record?.(KEY, true, clock.now(), "12345");
    await ctx.settle();
    expect(reports().at(-1)).not.toHaveProperty("probe");
    store.record?.(KEY, true, clock.now(), lease);
    await ctx.settle();
    expect(reports().at(-1)).toMatchObject({ probe: { ok: false } });
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "open", openUntil: clock.now() + 1_000 });
    // The lease was used: the same lease again is an ordinary outcome.
    const count = reports().length;
    store.record?.(KEY, true, clock.now(), lease);
    await ctx.settle();
    expect(reports()).toHaveLength(count);
  });

  it("leaves the decision to the local breaker when the object is slow, fails or answers nonsense", async () => {
    const slow = setup({ timeout: 250 });
    slow.namespace.answer = () => new Promise<Response>(() => {});
    const pending = slow.store.acquireProbe?.(KEY, slow.clock.now());
    await slow.clock.advance(249);
    let settled = false;
    void pending?.then(() => {
      settled = true;
    });
    await slow.clock.advance(0);
    expect(settled).toBe(false);
    await slow.clock.advance(1);
    expect(await pending).toBeUndefined();
    expect(slow.events).toEqual([
      { store: "durable-object", key: KEY, operation: "probe", outcome: "timeout", detail: "no answer within 250 ms" },
    ]);

    const failing = setup();
    failing.namespace.answer = () => Promise.reject(new Error("object unreachable"));
    expect(await failing.store.acquireProbe?.(KEY, failing.clock.now())).toBeUndefined();
    expect(failing.events).toEqual([
      {
        store: "durable-object",
        key: KEY,
        operation: "probe",
        outcome: "failed",
        detail: "Error: object unreachable",
      },
    ]);

    const erroring = setup();
    erroring.namespace.answer = async () =>
      Response.json({ state: "closed", gen: 0, openUntil: null, reason: null }, { status: 500 });
    expect(await erroring.store.acquireProbe?.(KEY, erroring.clock.now())).toBeUndefined();
    const lying = setup();
    lying.namespace.answer = async () => Response.json({ state: "closed", gen: -1, openUntil: null, reason: null });
    expect(await lying.store.acquireProbe?.(KEY, lying.clock.now())).toBeUndefined();
    // A timer is never left behind.
    expect(failing.clock.pending()).toBe(0);
    expect(erroring.clock.pending()).toBe(0);
    expect(erroring.events).toEqual([
      {
        store: "durable-object",
        key: KEY,
        operation: "probe",
        outcome: "rejected",
        detail: "unexpected answer (status 500)",
      },
    ]);
    // A corrupt answer is told apart from an object that erred, as a corrupt KV value is.
    expect(lying.events).toEqual([
      {
        store: "durable-object",
        key: KEY,
        operation: "validate",
        outcome: "rejected",
        detail: "a foreign or corrupt answer was ignored",
      },
    ]);
    for (const s of [erroring, lying]) expect(s.store.peek(KEY, s.clock.now())).toBeUndefined();
  });

  it("ignores an open verdict without an end, as corrupt: the local breaker decides", async () => {
    const { store, namespace, ctx, clock, events } = setup();
    namespace.answer = async () =>
      Response.json({ state: "open", gen: 3, openUntil: null, reason: "held", changedAt: T0 });
    store.peek(KEY, clock.now());
    await ctx.settle();
    expect(store.peek(KEY, clock.now())).toBeUndefined();
    expect(events).toEqual([
      {
        store: "durable-object",
        key: KEY,
        operation: "validate",
        outcome: "rejected",
        detail: "a foreign or corrupt answer was ignored",
      },
    ]);
  });

  it("a lease the object grants after the bound is given back at once, so the object does not reopen on its expiry", async () => {
    const { store, namespace, ctx, clock, reports } = setup({ timeout: 250 });
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    // The object is slow for one probe: it answers (and grants) after 400 ms.
    namespace.answer = async (request) => {
      namespace.answer = undefined;
      await new Promise((resolve) => clock.setTimer(() => resolve(undefined), 400));
      const object = namespace.object(`cb:default:${KEY}`);
      return object.object.fetch(request);
    };
    const pending = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await pending).toBeUndefined();
    await clock.advance(150);
    await ctx.settle();
    const lease = T0 + 1_400 + breakerDefaults.probeTimeout;
    expect(reports().at(-1)).toMatchObject({ ok: 0, fail: 0, probe: { lease, gen: 2, ok: null } });
    // Given back: the next probe gets a lease of its own, and once it
    // succeeds the host closes; the late lease's expiry changes nothing.
    const next = await store.acquireProbe?.(KEY, clock.now());
    expect(typeof next).toBe("string");
    store.record?.(KEY, false, clock.now(), next as string);
    await ctx.settle();
    await clock.advance(breakerDefaults.probeTimeout + 1);
    await ctx.settle();
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(true);
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "closed" });
  });

  it("a late answer that grants no lease, or is no success, is not reported back; nor is a late answer to a report", async () => {
    const { store, namespace, ctx, clock, reports } = setup({ timeout: 250 });
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    const reported = reports().length;
    const late = (answer: Response) => async () => {
      namespace.answer = undefined;
      await new Promise((resolve) => clock.setTimer(() => resolve(undefined), 400));
      return answer;
    };
    // An answer after the bound that holds no lease: nothing to give back.
    namespace.answer = late(Response.json({ state: "open", gen: 1, openUntil: T0 + 5_000, reason: "x", lease: null }));
    const first = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await first).toBeUndefined();
    await clock.advance(150);
    await ctx.settle();
    // An answer after the bound that holds a lease, but with an error status: no grant to give back either.
    namespace.answer = late(
      Response.json({ state: "half_open", gen: 2, openUntil: null, reason: "x", lease: T0 + 9_000 }, { status: 500 }),
    );
    const second = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await second).toBeUndefined();
    await clock.advance(150);
    await ctx.settle();
    // Nor one whose answer says nothing of a lease.
    namespace.answer = late(Response.json({ state: "open", gen: 1, openUntil: T0 + 5_000, reason: "x" }));
    const third = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await third).toBeUndefined();
    await clock.advance(150);
    await ctx.settle();
    expect(reports().length).toBe(reported);
    // A report the object answers only after the bound: its late answer is dropped, never an unhandled error.
    const { unhandled } = await watchUnhandled(async () => {
      namespace.answer = late(Response.json({ state: "closed", gen: 3, openUntil: null, reason: null, lease: null }));
      for (let i = 0; i < 3; i++) store.record?.(`${KEY}.other`, true, clock.now());
      await clock.advance(250);
      await clock.advance(150);
      await ctx.settle();
    });
    expect(unhandled).toEqual([]);
  });

  it("a given-back lease's answer is adopted: the object's state after the give-back is the one the store shows", async () => {
    const { store, namespace, ctx, clock } = setup({ timeout: 250 });
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    namespace.answer = async (request) => {
      namespace.answer = undefined;
      await new Promise((resolve) => clock.setTimer(() => resolve(undefined), 400));
      return namespace.object(`cb:default:${KEY}`).object.fetch(request);
    };
    const pending = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await pending).toBeUndefined();
    const before = store.peek(KEY, clock.now());
    await clock.advance(150);
    await ctx.settle();
    // The object, given its lease back, is half-open with no probe out: the store now says so.
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "half_open", gen: 2 });
    expect(before).not.toMatchObject({ state: "half_open", gen: 2 });
  });

  it("a give-back the object does not take says so once, and the store keeps what it knew", async () => {
    const { store, namespace, ctx, clock, events } = setup({ timeout: 250 });
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    await clock.advance(1_000);
    namespace.answer = async (request) => {
      await new Promise((resolve) => clock.setTimer(() => resolve(undefined), 400));
      // The lease is granted late; the object is unreachable for the give-back that follows.
      namespace.answer = () => Promise.reject(new Error("object unreachable"));
      return namespace.object(`cb:default:${KEY}`).object.fetch(request);
    };
    const pending = store.acquireProbe?.(KEY, clock.now());
    await clock.advance(250);
    expect(await pending).toBeUndefined();
    const known = store.peek(KEY, clock.now());
    events.length = 0;
    await clock.advance(150);
    await ctx.settle();
    expect(events).toEqual([
      {
        store: "durable-object",
        key: KEY,
        operation: "report",
        outcome: "failed",
        detail: "Error: object unreachable",
      },
    ]);
    expect(store.peek(KEY, clock.now())).toEqual(known);
  });

  it("a background report that fails says so and changes nothing", async () => {
    const { store, namespace, ctx, clock, events } = setup();
    namespace.answer = () => Promise.reject(new Error("down"));
    for (let i = 0; i < 3; i++) store.record?.(KEY, true, clock.now());
    await ctx.settle();
    expect(events).toEqual([
      { store: "durable-object", key: KEY, operation: "report", outcome: "failed", detail: "Error: down" },
    ]);
    expect(store.peek(KEY, clock.now())).toBeUndefined();
  });

  it("cuts an absurd hold from the object to 24 hours", async () => {
    const { store, namespace, clock } = setup();
    namespace.answer = async () =>
      Response.json({ state: "open", gen: 4, openUntil: 1e300, reason: "hold", lease: null });
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(false);
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "open", gen: 4, openUntil: T0 + 86_400_000 });
  });

  it("keeps the day it first cut an absurd hold to when it reads the same verdict again", async () => {
    const { store, namespace, clock } = setup();
    namespace.answer = async () =>
      Response.json({ state: "open", gen: 4, openUntil: 1e300, reason: "hold", lease: null, changedAt: T0 });
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(false);
    // Half a day later the same verdict, read again, still ends a day after it was first read.
    await clock.advance(43_200_000);
    expect(await store.acquireProbe?.(KEY, clock.now())).toBe(false);
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "open", openUntil: T0 + 86_400_000 });
  });

  it("uses the context bound last for its background work", async () => {
    const { store, clock } = setup();
    const next = fakeCtx();
    store.bindContext(next);
    store.peek(KEY, clock.now());
    expect(next.tasks).toHaveLength(1);
    await next.settle();
    expect(store.peek(KEY, clock.now())).toMatchObject({ state: "closed" });
  });
});

describe("durableObjectStore and a clock set back", () => {
  it("drops its cached verdict and reports at the first look after the step, not a day later", async () => {
    const clock = new TestClock(T0); // the object's clock
    let offset = 0;
    const local = { now: () => clock.now() + offset, setTimer: clock.setTimer.bind(clock) };
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const store = durableObjectStore(namespace, { ctx, clock: local, policy });
    store.peek(KEY, local.now());
    await ctx.settle();
    store.record?.(KEY, false, local.now());
    await clock.advance(5_000);
    store.peek(KEY, local.now()); // a flush interval later: the success is reported
    await ctx.settle();
    const reported = namespace.requests.length;
    store.record?.(KEY, true, local.now());
    offset = -86_400_000; // the isolate's clock set back a day
    await clock.advance(5_000);
    store.peek(KEY, local.now());
    await ctx.settle();
    // Without the check the failure waited for the isolate's clock to come back a day later.
    expect(namespace.requests.length).toBe(reported + 1);
    expect(namespace.requests.at(-1)?.body).toMatchObject({ fail: 1 });
  });

  it("re-times a hold that waited on a report in flight when the clock is set back before its answer", async () => {
    const clock = new TestClock(T0); // the object's clock
    let offset = 0;
    const local = { now: () => clock.now() + offset, setTimer: clock.setTimer.bind(clock) };
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const store = durableObjectStore(namespace, { ctx, clock: local, policy });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    namespace.answer = async (request) => {
      await gate;
      namespace.answer = undefined;
      return namespace.object(`cb:default:${KEY}`).object.fetch(request);
    };
    store.peek(KEY, local.now()); // a first report, held
    await clock.advance(0);
    store.publish(KEY, openSnapshot(local.now(), "1 failure in a row", local.now() + 30_000)); // waits on it
    offset = -600_000; // the isolate's clock set back 10 minutes while the report is out
    release();
    await ctx.settle();
    const holds = namespace.requests.filter((r) => r.body.holdUntil !== undefined);
    // Without the re-timing the hold went with the old clock's deadline: 10 minutes and 30 s from the new now.
    expect(holds.map((r) => (r.body.holdUntil as number) - local.now())).toEqual([30_000]);
  });
});
