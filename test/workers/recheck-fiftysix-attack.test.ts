/**
 * Outside-in attack on the fifty-sixth session's fixes to `durableObjectStore` and `BreakerStateObject`, in real
 * workerd: a hold sent with its `sentAt`, answers from the object that are no verdict, a hold re-timed when the
 * isolate's clock is set back while a report is out.
 *
 * Docs:
 * - docs/cloudflare.md: "A local trip also holds a closed object open for the local open spell, with the isolate's
 *   reason (a hold goes as the time it has left, so an isolate's clock and the object's need not agree; an open object
 *   keeps its own spell, …; a half-open one lets its probes decide), and a `Retry-After` hold holds it whatever its
 *   state"; "Remote values are validated with zod and a foreign or corrupt one (an object's open verdict with no end
 *   too) is ignored, with a `store` event (`validate`, `rejected`) each time a refresh reads it"; "A store that errs or
 *   is slow is ignored (a `store` event says why) and the request goes on under the local breaker"; "a trip or hold
 *   that report carried goes again with the next one, … a clock set back meanwhile waits the hold's spell again from
 *   the new time, as the local breaker's does".
 * - CHANGELOG.md (Fixed): "A report now carries its `sentAt` beside `holdUntil`, and the object holds for the time left
 *   from its own now"; "an answer from the object that is no verdict (a field too many, an open verdict with no end) is
 *   a `store` event (`validate`, `rejected`) …, no longer the `rejected` event of an object that erred"; "a trip or
 *   hold set while a report was out … now waits its own length again from the new time".
 * - SECURITY.md: "a host is held open for at most 24 hours whatever a header says". docs/breakers.md: "A step ahead (a
 *   laptop that slept) counts as time that passed".
 *
 * How: inside workerd (`@cloudflare/vitest-plugin`, project `workers`): `durableObjectStore` (./cloudflare),
 * `createResilience` (root), `TestClock` (./testing). Objects: the real `BreakerStateObject` (`BREAKER_STATE`, wall
 * clock) and `ClockedStateObject` (`CLOCKED_STATE`, the same class on a TestClock moved through `runInDurableObject`,
 * alarms run with `runDurableObjectAlarm`), so spells are asserted to the millisecond on the object's clock. A
 * wrapping namespace records each request and can hold it, answer 500, HTML, cut JSON, or rewrite the verdict. Each
 * isolate's layer and store share a clock over a TestClock with a movable offset (behind, ahead, stepped). Hand-made
 * reports are POSTed to the object's `/report` as raw JSON text.
 *
 * Paths: plain calls through layers over `durableObjectStore` (trips, `Retry-After` holds, probes), and the object's
 * `/report` driven directly.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-sixth session, so plain `it`):
 * 1. cloudflare.md "a foreign or corrupt one … is ignored, with a `store` event (`validate`, `rejected`)" (and the
 *    CHANGELOG's "an answer from the object that is no verdict … is a `store` event (`validate`, `rejected`)").
 *    Observed: an object answering 200 with an HTML page (a binding to a foreign service) or with JSON cut short
 *    (`{"state":"closed","gen":0,"openUn`) is ignored, but the event is `report`/`failed` with "SyntaxError: Unexpected
 *    token …": `call` reads `answer.json()` inside its `try`, so a body that is no JSON never reaches the zod check
 *    and is told as a failed request, not a foreign answer. Tests "DEFECT: a foreign answer (an HTML page) …" and
 *    "DEFECT: a corrupt answer (JSON cut short) …".
 *
 * Held (plain `it`):
 * - Isolates 10 min behind, in step and 10 min ahead each trip: the report carries `sentAt` = its now and `holdUntil -
 *   sentAt` = 60 000; the object stores open until its own now + 60 s exactly, its alarm then, half-open by it.
 * - An isolate 10 min behind reads another's trip: refused for 60 s by its clock, not 11 min; then its call goes.
 * - On one object: a trip (behind) opens 60 s; a trip (ahead) 10 s later keeps that spell; a `Retry-After: 100` (behind)
 *   holds to +110 s with its reason, alarm moved.
 * - Hand-made: `sentAt` null (NaN), "0", ±1e309, `holdUntil` 1e309 or null: 400, nothing stored. `sentAt` 0 / -1e308 /
 *   -5 with far `holdUntil`: open exactly 24 h of the object's clock (a `Retry-After` on an open object too), alarm
 *   then, half-open a day on. `sentAt` 1e15, -5e12, 0 with `holdUntil` = `sentAt` + 30 s: 30 s; `holdUntil` ahead of the
 *   object but before `sentAt`: closed. `sentAt` without `holdUntil`: nothing. No `sentAt`: read on the object's clock
 *   (30 s; at now: closed; 10 days: 24 h, reason "Retry-After"). Half-open: a trip with `sentAt` changes nothing, a
 *   `Retry-After` hold with `sentAt` 1e15 opens it 45 s.
 * - A field too many, or `{state:"open", openUntil:null}`, on every report: one `validate`/`rejected` per report, calls
 *   go, the local breaker trips and refuses; on `/probe`: the same event, each probe goes under the local breaker.
 * - An object answering 500 (JSON): `report`/`rejected` and `probe`/`rejected`, never `validate`.
 * - A trip while a routine report is out, the isolate set back 10 min before it is answered (200, or 500): the hold
 *   goes as it returns with `holdUntil - sentAt` = 60 000 and its reason; the object opens exactly 60 s; the local
 *   breaker still refuses at 59 999 ms. Set ahead 10 min instead: no hold goes, the object stays closed, the call goes.
 *
 * Docs-silent (not pinned):
 * - An object answering 500 with a text body (as a platform error page would) gives `report`/`failed`
 *   ("SyntaxError …"), not the `rejected` of the 500 with a JSON body.
 * - An alarm run while the object's own clock is short of `openUntil` does nothing and is not set again (only a moved
 *   test clock can make it early: Workers alarms fire at their time).
 */

import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type DurableObjectNamespaceLike, durableObjectStore } from "../../src/cloudflare/index.ts";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingCtx } from "./recording-ctx.ts";
import type { ClockedStateObject } from "./worker.ts";

let seq = 0;
const unique = (what: string) => `${what}-${Date.now().toString(36)}-${seq++}`;
const DAY = 86_400_000;
type Stored = { state: string; openUntil: number | null; reason: string | null; gen: number };

const stubOf = (ns: DurableObjectNamespaceLike, name: string) => ns.get(ns.idFromName(name) as never);
/** The object's stored snapshot and alarm. */
const storedOf = (ns: DurableObjectNamespaceLike, name: string) =>
  runInDurableObject(stubOf(ns, name), async (_i, state) => ({
    snap: (await state.storage.get("snapshot")) as Stored | undefined,
    alarm: await state.storage.getAlarm(),
  }));
/** The clocked object's own now (its TestClock stands still unless moved). */
const objectNow = (name: string) =>
  runInDurableObject(stubOf(env.CLOCKED_STATE, name), (o: ClockedStateObject) => o.clock.now());
const moveObject = (name: string, ms: number) =>
  runInDurableObject(stubOf(env.CLOCKED_STATE, name), (o: ClockedStateObject) => o.clock.advance(ms));

const wirePolicy = {
  failureThreshold: 5,
  successThreshold: 1,
  timeout: 30_000,
  halfOpenMaxCalls: 1,
  timeWindow: 60_000,
  probeTimeout: 10_000,
  failureRate: null,
  minimumCalls: 10,
};
/** A hand-made report, its body as raw JSON text, POSTed straight to the object named `name`. */
async function postRaw(ns: DurableObjectNamespaceLike, name: string, body: string) {
  const answer = await stubOf(ns, name).fetch("https://breaker-state/report", {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
  return { status: answer.status, verdict: (await answer.json()) as Record<string, unknown> };
}
const post = (ns: DurableObjectNamespaceLike, name: string, fields: Record<string, unknown>) =>
  postRaw(ns, name, JSON.stringify({ policy: wirePolicy, ok: 0, fail: 0, ...fields }));

type Plan = (
  path: string,
  n: number,
) =>
  | undefined
  | "gate"
  | "gate500"
  | "500"
  | "500text"
  | "200text"
  | "200cut"
  | ((verdict: Record<string, unknown>) => unknown);
/** The namespace `base`, each request recorded; `plan` may hold it (until `release`), fail it or rewrite its answer. */
function watched(base: DurableObjectNamespaceLike, plan: Plan = () => undefined) {
  const sent: Array<{ path: string; body: Record<string, unknown> }> = [];
  const gates: Array<() => void> = [];
  const ns: DurableObjectNamespaceLike = {
    idFromName: (name) => base.idFromName(name),
    get: (id) => {
      const stub = base.get(id);
      return {
        fetch: async (input, init) => {
          const path = new URL(input).pathname;
          sent.push({ path, body: JSON.parse(String(init?.body)) as Record<string, unknown> });
          const how = plan(path, sent.length);
          if (how === "gate" || how === "gate500") await new Promise<void>((resolve) => gates.push(resolve));
          if (how === "gate500") return Response.json({ error: "busy" }, { status: 500 });
          if (how === "500") return Response.json({ error: "busy" }, { status: 500 });
          if (how === "500text") return new Response("Internal Server Error", { status: 500 });
          if (how === "200text")
            return new Response("<html>a foreign service</html>", { headers: { "content-type": "text/html" } });
          if (how === "200cut") return new Response('{"state":"closed","gen":0,"openUn');
          const answer = await stub.fetch(input, init);
          if (typeof how === "function") return Response.json(how((await answer.json()) as Record<string, unknown>));
          return answer;
        },
      };
    },
  };
  const release = () => {
    for (const open of gates.splice(0)) open();
  };
  return { ns, sent, release, gated: () => gates.length, reports: () => sent.filter((s) => s.path === "/report") };
}

/**
 * One isolate: a layer over `durableObjectStore(ns)` on a clock of its own (`offset` from the real time, movable),
 * an upstream whose status and `Retry-After` the test sets. The store's own policy needs 50 failures in a row, so
 * only a hold opens the object.
 */
function isolate(ns: DurableObjectNamespaceLike, scope: string, offset = 0, store: Record<string, unknown> = {}) {
  const tc = new TestClock(Date.now());
  const clock = {
    offset,
    now: () => tc.now() + clock.offset,
    setTimer: (cb: () => void, ms: number) => tc.setTimer(cb, ms),
  };
  const c = recordingCtx();
  const up = { status: 200, calls: 0, retryAfter: undefined as string | undefined };
  const layer = createResilience({
    store: durableObjectStore(ns, { ctx: c.ctx, scope, clock, policy: { failureThreshold: 50 }, ...store }),
    retry: { maxAttempts: 1, maxRetryAfter: 1_000 },
    breaker: { failureThreshold: 1, timeout: 60_000 },
    clock,
    fetch: async () => {
      up.calls++;
      const headers: Record<string, string> = up.retryAfter ? { "retry-after": up.retryAfter } : {};
      return new Response("answer", { status: up.status, headers });
    },
  });
  const events: StoreEvent[] = [];
  layer.on("store", (e) => events.push(e));
  /** One call to `host`; its background work settled unless `settle` is false. */
  const call = async (host: string, settle = true): Promise<string> => {
    const got = await layer.fetch(`https://${host}/x`).then(
      async (r) => {
        await r.text();
        return String(r.status);
      },
      (e: unknown) => (e as Error).name,
    );
    if (settle) await c.settle();
    else for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
    return got;
  };
  return { tc, clock, layer, up, events, call, settle: c.settle };
}
const objectName = (scope: string, host: string) => `cb:${scope}:${host}`;

describe("a hold goes as the time it has left: isolates whose clocks differ from the object's", () => {
  for (const [label, offset] of [
    ["10 min behind", -600_000],
    ["in step", 0],
    ["10 min ahead", 600_000],
  ] as const) {
    it(`held: an isolate ${label} trips: the object holds its own 60 s from its own now, its alarm then`, async () => {
      const scope = unique("skew");
      const obj = watched(env.CLOCKED_STATE);
      const iso = isolate(obj.ns, scope, offset);
      expect(await iso.call("skew.example")).toBe("200"); // first verdict, closed
      iso.up.status = 503;
      expect(await iso.call("skew.example")).toBe("503"); // the trip, reported at once
      const sent = obj.reports().at(-1)?.body ?? {};
      expect([sent.sentAt, Number(sent.holdUntil) - Number(sent.sentAt)]).toEqual([iso.clock.now(), 60_000]);
      const name = objectName(scope, "skew.example");
      const t = await objectNow(name);
      const { snap, alarm } = await storedOf(env.CLOCKED_STATE, name);
      // Clocks within a second of each other are taken to agree (cloudflare.md): the hold's end is then read as sent,
      // the report's milliseconds on the wire not added (the isolate would take a later end for a new spell).
      const end = offset === 0 ? Number(sent.holdUntil) : t + 60_000;
      if (offset === 0) expect(Math.abs(end - (t + 60_000))).toBeLessThan(1_000);
      expect(snap).toMatchObject({
        state: "open",
        openUntil: end,
        reason: "1 failure in a row (last: status 503)",
      });
      expect(alarm).toBe(end);
      // The object's spell ends on its own clock: half-open at its 60 s, by the alarm.
      await moveObject(name, 60_000);
      await runDurableObjectAlarm(stubOf(env.CLOCKED_STATE, name));
      expect((await storedOf(env.CLOCKED_STATE, name)).snap?.state).toBe("half_open");
    });
  }

  it("held: an isolate 10 min behind reads another's trip from the object: refused for the 60 s that trip has left, then its call goes", async () => {
    const scope = unique("reader");
    const host = "reader.example";
    const name = objectName(scope, host);
    const tripper = isolate(env.CLOCKED_STATE, scope);
    const reader = isolate(env.CLOCKED_STATE, scope, -600_000);
    expect(await tripper.call(host)).toBe("200");
    tripper.up.status = 503;
    expect(await tripper.call(host)).toBe("503");
    expect(await reader.call(host)).toBe("200"); // its first call goes, the verdict read in the background
    expect(await reader.call(host)).toBe("CircuitOpenError");
    await reader.tc.advance(59_999);
    expect(await reader.call(host)).toBe("CircuitOpenError");
    expect(reader.up.calls).toBe(1);
    // The object's own 60 s end (its alarm): the reader, 60 s on by its clock, probes.
    await moveObject(name, 60_000);
    await runDurableObjectAlarm(stubOf(env.CLOCKED_STATE, name));
    await reader.tc.advance(1);
    expect(await reader.call(host)).toBe("200");
    expect(reader.up.calls).toBe(2);
  });

  it("held: Retry-After holds and trips from isolates 10 min behind and ahead on one object: a hold lengthens the open spell, a trip does not", async () => {
    const scope = unique("ra");
    const host = "ra.example";
    const name = objectName(scope, host);
    const behind = isolate(env.CLOCKED_STATE, scope, -600_000);
    const ahead = isolate(env.CLOCKED_STATE, scope, 600_000);
    const late = isolate(env.CLOCKED_STATE, scope, -600_000);
    for (const i of [behind, ahead, late]) expect(await i.call(host)).toBe("200");
    const t = await objectNow(name);
    behind.up.status = 503;
    await behind.call(host); // a trip: 60 s
    expect((await storedOf(env.CLOCKED_STATE, name)).snap?.openUntil).toBe(t + 60_000);
    await moveObject(name, 10_000);
    ahead.up.status = 503;
    await ahead.call(host); // a second trip on an open object: it keeps its own spell
    expect((await storedOf(env.CLOCKED_STATE, name)).snap).toMatchObject({ state: "open", openUntil: t + 60_000 });
    late.up.status = 503;
    late.up.retryAfter = "100";
    expect(await late.call(host)).toBe("503"); // Retry-After 100 s, past maxRetryAfter: a hold
    const { snap, alarm } = await storedOf(env.CLOCKED_STATE, name);
    expect(snap).toMatchObject({ state: "open", openUntil: t + 110_000, reason: "Retry-After 100 s on status 503" });
    expect(alarm).toBe(t + 110_000);
  });
});

describe("hand-made reports POSTed to the object: sentAt absurd, absent, alone", () => {
  const fresh = async () => {
    const name = unique("hand");
    return { name, t: await objectNow(name) };
  };
  const held = async (name: string) => (await storedOf(env.CLOCKED_STATE, name)).snap;

  it("held: a sentAt or holdUntil that is no finite number is refused (400), nothing stored", async () => {
    const { name } = await fresh();
    const base = `"policy":${JSON.stringify(wirePolicy)},"ok":0,"fail":0`;
    for (const tail of [
      `"holdUntil":1,"sentAt":null`, // NaN, as JSON.stringify writes it
      `"holdUntil":1,"sentAt":"0"`,
      `"holdUntil":1,"sentAt":1e309`,
      `"holdUntil":1,"sentAt":-1e309`,
      `"holdUntil":1e309,"sentAt":0`,
      `"holdUntil":null,"sentAt":0`,
    ]) {
      expect((await postRaw(env.CLOCKED_STATE, name, `{${base},${tail}}`)).status).toBe(400);
    }
    expect(await held(name)).toBeUndefined();
  });

  it("held: an absurd spell (sentAt 0 or -1e308, far-future holdUntil) is cut to 24 h of the object's clock, its alarm then", async () => {
    for (const [sentAt, holdUntil] of [
      [0, 1e15],
      [-1e308, 1e308],
      [-5, Number.MAX_SAFE_INTEGER],
    ]) {
      const { name, t } = await fresh();
      const { verdict } = await post(env.CLOCKED_STATE, name, { sentAt, holdUntil, reason: "2 failures in a row" });
      expect(verdict).toMatchObject({ state: "open", openUntil: t + DAY });
      expect((await storedOf(env.CLOCKED_STATE, name)).alarm).toBe(t + DAY);
    }
    // A Retry-After hold on an object already open: cut to 24 h too.
    const { name, t } = await fresh();
    await post(env.CLOCKED_STATE, name, { sentAt: 0, holdUntil: 30_000, reason: "1 failure in a row" });
    const { verdict } = await post(env.CLOCKED_STATE, name, {
      sentAt: -1e308,
      holdUntil: 1e308,
      reason: "Retry-After 90000000 s on status 429",
    });
    expect(verdict).toMatchObject({ state: "open", openUntil: t + DAY });
    await moveObject(name, DAY);
    await runDurableObjectAlarm(stubOf(env.CLOCKED_STATE, name));
    expect((await held(name))?.state).toBe("half_open");
  });

  it("held: sentAt far in the future or past counts only as the start of the spell: holdUntil - sentAt from the object's now", async () => {
    for (const sentAt of [1e15, -5e12, 0]) {
      const { name, t } = await fresh();
      const { verdict } = await post(env.CLOCKED_STATE, name, { sentAt, holdUntil: sentAt + 30_000, reason: "x" });
      expect(verdict).toMatchObject({ state: "open", openUntil: t + 30_000, reason: "x" });
    }
    // holdUntil ahead of the object's clock but before sentAt: no time left, no hold.
    const { name, t } = await fresh();
    const { verdict } = await post(env.CLOCKED_STATE, name, { sentAt: t + 1e6, holdUntil: t + 30_000, reason: "x" });
    expect(verdict).toMatchObject({ state: "closed" });
    expect(await held(name)).toBeUndefined();
  });

  it("held: sentAt with no holdUntil holds nothing; a report without sentAt reads holdUntil on the object's clock, cut to 24 h", async () => {
    const a = await fresh();
    expect((await post(env.CLOCKED_STATE, a.name, { sentAt: 0, reason: "1 failure in a row" })).verdict).toMatchObject({
      state: "closed",
    });
    expect(await held(a.name)).toBeUndefined();
    const b = await fresh();
    const ok = await post(env.CLOCKED_STATE, b.name, {
      holdUntil: b.t + 30_000,
      reason: "Retry-After 30 s on status 429",
    });
    expect(ok.verdict).toMatchObject({ state: "open", openUntil: b.t + 30_000 });
    const c = await fresh();
    expect((await post(env.CLOCKED_STATE, c.name, { holdUntil: c.t })).verdict).toMatchObject({ state: "closed" });
    const d = await fresh();
    expect((await post(env.CLOCKED_STATE, d.name, { holdUntil: d.t + 10 * DAY })).verdict).toMatchObject({
      state: "open",
      openUntil: d.t + DAY,
      reason: "Retry-After",
    });
  });

  it("held: half-open, a trip with sentAt leaves the probes to decide; a Retry-After hold with sentAt holds it", async () => {
    const { name, t } = await fresh();
    await post(env.CLOCKED_STATE, name, { sentAt: 5, holdUntil: 1_005, reason: "1 failure in a row" });
    await moveObject(name, 1_000);
    await runDurableObjectAlarm(stubOf(env.CLOCKED_STATE, name));
    expect((await held(name))?.state).toBe("half_open");
    const trip = await post(env.CLOCKED_STATE, name, {
      sentAt: -1e12,
      holdUntil: -1e12 + 60_000,
      reason: "3 failures",
    });
    expect(trip.verdict).toMatchObject({ state: "half_open" });
    const hold = await post(env.CLOCKED_STATE, name, {
      sentAt: 1e15,
      holdUntil: 1e15 + 45_000,
      reason: "Retry-After 45 s on status 503",
    });
    expect(hold.verdict).toMatchObject({ state: "open", openUntil: t + 1_000 + 45_000 });
  });
});

describe("an answer from the object that is no verdict, and an object that errs", () => {
  const corrupt = {
    "a field too many": (v: Record<string, unknown>) => ({ ...v, extra: 1 }),
    "an open verdict with no end": (v: Record<string, unknown>) => ({ ...v, state: "open", openUntil: null }),
  };
  for (const [label, rewrite] of Object.entries(corrupt)) {
    it(`held: ${label} on every report: a validate/rejected event each time, calls go under the local breaker`, async () => {
      const scope = unique("nv");
      const obj = watched(env.BREAKER_STATE, (path) => (path === "/report" ? rewrite : undefined));
      const iso = isolate(obj.ns, scope, 0, { flushInterval: 1_000 });
      for (let i = 0; i < 3; i++) {
        expect(await iso.call("nv.example")).toBe("200");
        await iso.tc.advance(1_000);
      }
      expect(await iso.call("nv.example")).toBe("200");
      expect(obj.reports()).toHaveLength(4);
      expect(iso.events.map((e) => [e.operation, e.outcome, e.key])).toEqual(
        Array(4).fill(["validate", "rejected", "nv.example"]),
      );
      // The local breaker decides: a failure trips it, and it refuses.
      iso.up.status = 503;
      expect(await iso.call("nv.example")).toBe("503");
      expect(await iso.call("nv.example")).toBe("CircuitOpenError");
      expect(iso.up.calls).toBe(5);
    });
  }

  it("held: a probe answered with no verdict (an open one with no end, a field too many): validate/rejected, the probe goes under the local breaker", async () => {
    const scope = unique("nvp");
    let n = 0;
    const obj = watched(env.BREAKER_STATE, (path) =>
      path === "/probe"
        ? n++ === 0
          ? corrupt["an open verdict with no end"]
          : corrupt["a field too many"]
        : undefined,
    );
    const iso = isolate(obj.ns, scope);
    await iso.call("nvp.example");
    iso.up.status = 503;
    await iso.call("nvp.example"); // the trip; the object holds 60 s of the real clock
    await iso.tc.advance(60_000); // locally half-open
    iso.events.length = 0;
    const before = iso.up.calls;
    expect(await iso.call("nvp.example")).toBe("503"); // the probe went, and failed
    expect(iso.up.calls).toBe(before + 1);
    await iso.tc.advance(60_000);
    iso.up.status = 200;
    expect(await iso.call("nvp.example")).toBe("200"); // the probe went, and closed the local breaker
    expect(await iso.call("nvp.example")).toBe("200");
    // Three probes asked (the local breaker closes after its second success), each answer no verdict.
    expect(obj.sent.filter((s) => s.path === "/probe")).toHaveLength(3);
    expect(iso.up.calls).toBe(before + 3);
    expect(iso.events.map((e) => [e.operation, e.outcome, e.detail])).toEqual(
      Array(3).fill(["validate", "rejected", "a foreign or corrupt answer was ignored"]),
    );
  });

  it("held: an object that answers 500 (JSON) is a report/rejected, then probe/rejected event, not validate", async () => {
    const scope = unique("err");
    const obj = watched(env.BREAKER_STATE, () => "500");
    const iso = isolate(obj.ns, scope);
    await iso.call("err.example");
    iso.up.status = 503;
    await iso.call("err.example");
    await iso.tc.advance(60_000);
    expect(await iso.call("err.example")).toBe("503"); // the local probe goes
    const seen = iso.events.map((e) => `${e.operation} ${e.outcome} ${e.detail}`);
    expect(new Set(seen)).toEqual(
      new Set(["report rejected unexpected answer (status 500)", "probe rejected unexpected answer (status 500)"]),
    );
    expect(seen.slice(0, 2)).toEqual(Array(2).fill("report rejected unexpected answer (status 500)"));
  });

  for (const [label, body] of [
    ["a foreign answer (an HTML page)", "200text"],
    ["a corrupt answer (JSON cut short)", "200cut"],
  ] as const) {
    it(`DEFECT (fixed): ${label} with status 200 is a validate/rejected event, not report/failed`, async () => {
      const scope = unique("foreign");
      const obj = watched(env.BREAKER_STATE, (path) => (path === "/report" ? body : undefined));
      const iso = isolate(obj.ns, scope);
      expect(await iso.call("foreign.example")).toBe("200");
      expect(iso.events.map((e) => [e.operation, e.outcome])).toEqual([["validate", "rejected"]]);
    });
  }
});

describe("a hold waiting while a report is out, the isolate's clock stepped before the answer", () => {
  const setUp = async (scope: string, plan: Plan) => {
    const obj = watched(env.CLOCKED_STATE, plan);
    const iso = isolate(obj.ns, scope);
    const host = "step.example";
    expect(await iso.call(host)).toBe("200"); // report 1: the first verdict
    await iso.tc.advance(5_000);
    expect(await iso.call(host, false)).toBe("200"); // report 2, routine, held out
    expect(obj.gated()).toBe(1);
    iso.up.status = 503;
    expect(await iso.call(host, false)).toBe("503"); // the trip: its hold waits on report 2
    expect(obj.reports()).toHaveLength(2);
    return { obj, iso, host, name: objectName(scope, host) };
  };

  for (const [label, mode] of [
    ["answered", "gate"],
    ["answered 500", "gate500"],
  ] as const) {
    it(`held: set back 10 min, the report out ${label}: the hold goes as it returns, with its 60 s; the object holds 60 s, not 11 min`, async () => {
      const scope = unique("back");
      const { obj, iso, host, name } = await setUp(scope, (_p, n) => (n === 2 ? mode : undefined));
      iso.clock.offset -= 600_000;
      obj.release();
      await iso.settle();
      expect(obj.reports()).toHaveLength(3); // at once: no flushInterval waited, though report 2 failed
      const trip = obj.reports()[2]?.body ?? {};
      expect([trip.sentAt, Number(trip.holdUntil) - Number(trip.sentAt)]).toEqual([iso.clock.now(), 60_000]);
      expect(trip.reason).toBe("1 failure in a row (last: status 503)");
      const t = await objectNow(name);
      expect((await storedOf(env.CLOCKED_STATE, name)).snap).toMatchObject({ state: "open", openUntil: t + 60_000 });
      // The local breaker waits its own 60 s from the step, as the object does.
      await iso.tc.advance(59_999);
      expect(await iso.call(host)).toBe("CircuitOpenError");
      expect(iso.up.calls).toBe(3);
    });
  }

  it("held: set ahead 10 min while the report is out: the waiting hold has no time left, the object stays closed; locally the spell ran out", async () => {
    const scope = unique("ahead");
    const { obj, iso, host, name } = await setUp(scope, (_p, n) => (n === 2 ? "gate" : undefined));
    iso.clock.offset += 600_000;
    obj.release();
    await iso.settle();
    const trip = obj.reports()[2]?.body;
    if (trip?.holdUntil !== undefined) expect(Number(trip.holdUntil) - Number(trip.sentAt)).toBeLessThanOrEqual(0);
    expect((await storedOf(env.CLOCKED_STATE, name)).snap).toBeUndefined();
    iso.up.status = 200;
    expect(await iso.call(host)).toBe("200"); // a step ahead counts as time that passed
  });
});
