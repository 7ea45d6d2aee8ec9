import { describe, expect, it } from "vitest";
import { BreakerStateObject } from "../../src/cloudflare/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeStorage, fakeState, stateObject } from "./fake-durable-object.ts";

/**
 * BreakerStateObject in Node, on a fake DurableObjectState and an injected
 * clock (the workerd tests in test/workers cover it in the real runtime).
 */

const T0 = Date.parse("2026-11-28T00:00:00Z");
const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 2,
  timeWindow: 60_000,
  probeTimeout: 5_000,
  failureRate: null,
  minimumCalls: 20,
};

type Verdict = { state: string; gen: number; openUntil: number | null; reason: string | null; lease: number | null };
/** The state's writes; the policy stored beside it goes under its own key, when it changes. */
const snapshots = (storage: FakeStorage) => storage.puts.filter((p) => p.key === "snapshot");

const verdict = async (res: Response) => {
  expect(res.status).toBe(200);
  return (await res.json()) as Verdict;
};

describe("BreakerStateObject requests", () => {
  it("answers only POST, with JSON bodies, on /report and /probe", async () => {
    const clock = new TestClock(T0);
    const { object, post } = stateObject(clock);
    const get = await object.fetch(new Request("https://breaker-state/report"));
    expect(get.status).toBe(405);
    expect(await get.text()).toBe("method not allowed");

    const notJson = await object.fetch(new Request("https://breaker-state/report", { method: "POST", body: "{" }));
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toEqual({ error: "body must be JSON" });

    const badReport = await post("/report", { policy, ok: -1, fail: 0 });
    expect(badReport.status).toBe(400);
    expect(await badReport.json()).toEqual({ error: "invalid report" });

    const badProbe = await post("/probe", { policy: { ...policy, halfOpenMaxCalls: 0 } });
    expect(badProbe.status).toBe(400);
    expect(await badProbe.json()).toEqual({ error: "invalid probe request" });

    const unknown = await post("/elsewhere", { policy });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: "unknown path /elsewhere" });

    // A valid probe on the /report path is not a report, and the reverse.
    expect((await post("/report", { policy })).status).toBe(400);
    expect((await post("/probe", { policy, ok: 0, fail: 0 })).status).toBe(400);
  });

  it("a closed host answers closed with no lease, and writes nothing", async () => {
    const clock = new TestClock(T0);
    const { post, storage } = stateObject(clock);
    expect(await verdict(await post("/probe", { policy }))).toEqual({
      state: "closed",
      gen: 0,
      openUntil: null,
      reason: null,
      changedAt: 0,
      lease: null,
    });
    expect(await verdict(await post("/report", { policy, ok: 5, fail: 1 }))).toEqual({
      state: "closed",
      gen: 0,
      openUntil: null,
      reason: null,
      changedAt: 0,
      lease: null,
    });
    expect(storage.puts).toEqual([]);
    expect(storage.alarms).toEqual([]);
  });
});

describe("BreakerStateObject transitions", () => {
  it("opens on reported failures, persists the trip and sets an alarm for its end", async () => {
    const clock = new TestClock(T0);
    const { post, storage } = stateObject(clock);
    const open = await verdict(await post("/report", { policy, ok: 0, fail: 2 }));
    expect(open).toMatchObject({ state: "open", gen: 1, openUntil: T0 + 1_000, lease: null });
    expect(open.reason).toBe("2 failures in a row (last: reported failures)");
    expect(snapshots(storage)).toHaveLength(1);
    expect(snapshots(storage)[0]).toMatchObject({
      key: "snapshot",
      value: { state: "open", gen: 1, openUntil: T0 + 1_000 },
    });
    expect(storage.alarms).toEqual([T0 + 1_000]);
    // The policy that tripped it, stored with the trip, for an alarm after an eviction.
    expect(storage.puts.filter((p) => p.key === "policy")).toEqual([{ key: "policy", value: policy }]);
    // Still open before its end: a probe is refused, nothing more is written.
    await clock.advance(999);
    expect(await verdict(await post("/probe", { policy }))).toMatchObject({ state: "open", gen: 1, lease: null });
    expect(snapshots(storage)).toHaveLength(1);
  });

  it("grants exactly halfOpenMaxCalls probe leases once open has elapsed, each persisted with an alarm at its expiry", async () => {
    const clock = new TestClock(T0);
    const { post, storage } = stateObject(clock);
    await post("/report", { policy, ok: 0, fail: 2 });
    await clock.advance(1_000);
    const first = await verdict(await post("/probe", { policy }));
    expect(first).toMatchObject({ state: "half_open", gen: 2, lease: T0 + 1_000 + 5_000 });
    await clock.advance(10);
    const second = await verdict(await post("/probe", { policy }));
    expect(second.lease).toBe(T0 + 1_010 + 5_000);
    const third = await verdict(await post("/probe", { policy }));
    expect(third).toMatchObject({ state: "half_open", gen: 2, lease: null });
    // Trip + two leases written; the alarm follows the earliest lease.
    expect(snapshots(storage)).toHaveLength(3);
    expect(snapshots(storage)[2]?.value).toHaveProperty("leases", [T0 + 6_000, T0 + 6_010]);
    expect(storage.alarm).toBe(T0 + 6_000);
  });

  it("a lease given back (ok: null) frees its slot at once and is neither outcome", async () => {
    const clock = new TestClock(T0);
    const { post } = stateObject(clock);
    await post("/report", { policy, ok: 0, fail: 2 });
    await clock.advance(1_000);
    const a = await verdict(await post("/probe", { policy }));
    const b = await verdict(await post("/probe", { policy }));
    expect((await verdict(await post("/probe", { policy }))).lease).toBeNull();
    const back = await verdict(
      await post("/report", { policy, ok: 0, fail: 0, probe: { lease: a.lease as number, gen: a.gen, ok: null } }),
    );
    expect(back).toMatchObject({ state: "half_open", gen: a.gen });
    const again = await verdict(await post("/probe", { policy }));
    expect(again.lease).not.toBeNull();
    // The other probe still decides.
    const closed = await verdict(
      await post("/report", { policy, ok: 0, fail: 0, probe: { lease: b.lease as number, gen: b.gen, ok: true } }),
    );
    expect(closed.state).not.toBe("open");
  });

  it("a probe's success closes, its failure re-opens; a stale or foreign probe changes nothing", async () => {
    const clock = new TestClock(T0);
    const { post, storage } = stateObject(clock);
    await post("/report", { policy, ok: 0, fail: 2 });
    await clock.advance(1_000);
    const a = await verdict(await post("/probe", { policy }));
    const b = await verdict(await post("/probe", { policy }));
    const lease = a.lease as number;
    // Wrong generation, unknown lease: ignored.
    const stale = await verdict(
      await post("/report", { policy, ok: 0, fail: 0, probe: { lease, gen: a.gen - 1, ok: true } }),
    );
    expect(stale).toMatchObject({ state: "half_open", gen: a.gen });
    const failed = await verdict(
      await post("/report", { policy, ok: 0, fail: 0, probe: { lease: b.lease as number, gen: b.gen, ok: false } }),
    );
    expect(failed).toMatchObject({ state: "open", gen: a.gen + 1, openUntil: clock.now() + 1_000 });
    expect(failed.reason).toBe("probe failed: probe failed");

    await clock.advance(1_000);
    const c = await verdict(await post("/probe", { policy }));
    const closed = await verdict(
      await post("/report", { policy, ok: 0, fail: 0, probe: { lease: c.lease as number, gen: c.gen, ok: true } }),
    );
    expect(closed).toMatchObject({ state: "closed", gen: c.gen + 1, openUntil: null });
    // Closing sets no alarm (only an open state's end and a lease's expiry do).
    expect(storage.alarm).not.toBeNull();
    expect(storage.alarms.every((t) => typeof t === "number" && t > T0)).toBe(true);
  });

  it("a lease never reported counts as a failure once it expires, and frees its slot", async () => {
    const clock = new TestClock(T0);
    const { post } = stateObject(clock);
    const one = { ...policy, halfOpenMaxCalls: 1 };
    await post("/report", { policy: one, ok: 0, fail: 2 });
    await clock.advance(1_000);
    const stuck = await verdict(await post("/probe", { policy: one }));
    expect(stuck.lease).toBe(T0 + 6_000);
    await clock.advance(4_999);
    expect((await verdict(await post("/probe", { policy: one }))).lease).toBeNull();
    await clock.advance(1);
    // Expired: re-opened (a failure), then open for `timeout` again.
    const reopened = await verdict(await post("/probe", { policy: one }));
    expect(reopened).toMatchObject({ state: "open", gen: stuck.gen + 1, reason: "probe lease expired", lease: null });
    await clock.advance(1_000);
    const next = await verdict(await post("/probe", { policy: one }));
    expect(next).toMatchObject({ state: "half_open", gen: stuck.gen + 2 });
    expect(typeof next.lease).toBe("number");
  });

  it("spreads a batch's failures evenly among its successes: only a real run of failures opens", async () => {
    const clock = new TestClock(T0);
    const mixed = stateObject(clock);
    // 2 failures among 2 successes: success, failure, success, failure: never two in a row.
    expect(await verdict(await mixed.post("/report", { policy, ok: 2, fail: 2 }))).toMatchObject({ state: "closed" });
    // 2 failures and 1 success: success, failure, failure: two in a row.
    const run = stateObject(clock);
    expect(await verdict(await run.post("/report", { policy, ok: 1, fail: 2 }))).toMatchObject({ state: "open" });
    // A batch's count is exact: one failure is one, not two.
    const single = stateObject(clock);
    expect(await verdict(await single.post("/report", { policy, ok: 0, fail: 1 }))).toMatchObject({ state: "closed" });
    expect(await verdict(await single.post("/report", { policy, ok: 0, fail: 1 }))).toMatchObject({ state: "open" });
    const wide = stateObject(clock);
    const twelve = { ...policy, failureThreshold: 12 };
    expect(await verdict(await wide.post("/report", { policy: twelve, ok: 50, fail: 12 }))).toMatchObject({
      state: "closed",
    });
    expect(await verdict(await wide.post("/report", { policy: twelve, ok: 0, fail: 12 }))).toMatchObject({
      state: "open",
    });
  });

  it("outcomes reported while open do not count (a late batch cannot re-open a recovering host)", async () => {
    const clock = new TestClock(T0);
    const { post } = stateObject(clock);
    const open = await verdict(await post("/report", { policy, ok: 0, fail: 2 }));
    const late = await verdict(await post("/report", { policy, ok: 0, fail: 5 }));
    expect(late).toMatchObject({ state: "open", gen: open.gen, openUntil: open.openUntil });
  });

  it("holds open for a reported Retry-After, at most 24 hours, and ignores a hold already over", async () => {
    const clock = new TestClock(T0);
    const past = stateObject(clock);
    expect(await verdict(await past.post("/report", { policy, ok: 0, fail: 0, holdUntil: T0 }))).toMatchObject({
      state: "closed",
      gen: 0,
    });
    const held = stateObject(clock);
    const hold = await verdict(await held.post("/report", { policy, ok: 0, fail: 0, holdUntil: T0 + 60_000 }));
    expect(hold).toMatchObject({ state: "open", openUntil: T0 + 60_000, reason: "Retry-After" });
    expect(held.storage.alarm).toBe(T0 + 60_000);
    const far = stateObject(clock);
    const capped = await verdict(await far.post("/report", { policy, ok: 0, fail: 0, holdUntil: 1e300 }));
    expect(capped).toMatchObject({ state: "open", openUntil: T0 + 86_400_000 });
    const exactly = stateObject(clock);
    const limit = await verdict(
      await exactly.post("/report", { policy, ok: 0, fail: 0, holdUntil: T0 + 86_400_000 + 1 }),
    );
    expect(limit.openUntil).toBe(T0 + 86_400_000);
  });

  it("its alarm moves open to half-open once due, and does nothing early nor on an object never opened", async () => {
    const clock = new TestClock(T0);
    const idle = stateObject(clock);
    await idle.object.alarm();
    expect(idle.storage.puts).toEqual([]);

    const { object, post, storage } = stateObject(clock);
    await post("/report", { policy, ok: 0, fail: 2 });
    await clock.advance(500);
    await object.alarm();
    expect(snapshots(storage)).toHaveLength(1);
    await clock.advance(500);
    await object.alarm();
    expect(snapshots(storage)).toHaveLength(2);
    expect(snapshots(storage)[1]?.value).toMatchObject({ state: "half_open", gen: 2, reason: "timeout elapsed" });
    // The next probe finds it half-open already (no second transition).
    expect(await verdict(await post("/probe", { policy }))).toMatchObject({ state: "half_open", gen: 2 });
  });
});

describe("BreakerStateObject storage", () => {
  it("a new instance (after eviction) answers from what was stored", async () => {
    const clock = new TestClock(T0);
    const storage = new FakeStorage();
    const first = stateObject(clock, storage);
    await first.post("/report", { policy, ok: 0, fail: 2 });
    const revived = stateObject(clock, storage);
    expect(await verdict(await revived.post("/probe", { policy }))).toMatchObject({
      state: "open",
      gen: 1,
      openUntil: T0 + 1_000,
    });
  });

  it("an alarm before any request (after eviction) moves open to half-open under the stored policy", async () => {
    const clock = new TestClock(T0);
    const storage = new FakeStorage();
    await stateObject(clock, storage).post("/report", { policy, ok: 0, fail: 2 });
    await clock.advance(5_000);
    const revived = stateObject(clock, storage);
    await revived.state.ready;
    await revived.object.alarm();
    expect(snapshots(storage)).toHaveLength(2);
    expect(snapshots(storage)[1]?.value).toMatchObject({ state: "half_open", gen: 2 });
    // The policy did not change: not written again.
    expect(storage.puts.filter((p) => p.key === "policy")).toHaveLength(1);
    // Its probes expire after the stored probeTimeout (5 s), not the default 30 s.
    expect((await verdict(await revived.post("/probe", { policy }))).lease).toBe(clock.now() + 5_000);
  });

  it("an alarm of an object that never stored a policy (an older version's) applies the breaker defaults", async () => {
    const clock = new TestClock(T0);
    const storage = new FakeStorage();
    await stateObject(clock, storage).post("/report", { policy, ok: 0, fail: 2 });
    storage.values.delete("policy");
    await clock.advance(5_000);
    const revived = stateObject(clock, storage);
    await revived.state.ready;
    await revived.object.alarm();
    expect(snapshots(storage).at(-1)?.value).toMatchObject({ state: "half_open", gen: 2 });
  });

  it("a stored reason longer than an isolate reads (300 characters) is cut in the verdict, not refused", async () => {
    const clock = new TestClock(T0);
    const storage = new FakeStorage();
    await stateObject(clock, storage).post("/report", { policy, ok: 0, fail: 2 });
    const stored = storage.values.get("snapshot") as { reason: string };
    storage.values.set("snapshot", { ...stored, reason: "r".repeat(400) });
    const revived = stateObject(clock, storage);
    const answer = await verdict(await revived.post("/probe", { policy }));
    expect(answer).toMatchObject({ state: "open", reason: "r".repeat(300) });
  });

  it("a stored value that is not a snapshot is ignored: the object starts closed", async () => {
    const clock = new TestClock(T0);
    const storage = new FakeStorage();
    storage.values.set("snapshot", { state: "open", gen: "x" });
    const { post } = stateObject(clock, storage);
    expect(await verdict(await post("/probe", { policy }))).toMatchObject({ state: "closed", gen: 0 });
  });

  it("reads wall time when no clock is given", async () => {
    const state = fakeState();
    const object = new BreakerStateObject(state);
    await state.ready;
    const before = Date.now();
    const res = await object.fetch(
      new Request("https://breaker-state/report", {
        method: "POST",
        body: JSON.stringify({ policy, ok: 0, fail: 2 }),
      }),
    );
    const open = (await res.json()) as Verdict;
    expect(open.openUntil).toBeGreaterThanOrEqual(before + 1_000);
    expect(open.openUntil).toBeLessThanOrEqual(Date.now() + 1_000);
  });
});
