/**
 * Outside-in attack on `durableObjectStore` / `BreakerStateObject` and `kvStore` shared breaker state in real workerd
 * when isolates' clocks disagree by small amounts (0.9, 1.0, 1.1, 5 s, ahead and behind) and a report takes time on
 * the wire (0–1.5 s), two isolates trip one host 5 ms apart, and a KV serves an older value.
 *
 * Docs:
 * - docs/cloudflare.md: "A local trip also holds a closed object open for the local open spell, with the isolate's
 *   reason (a hold goes as the time it has left, so an isolate's clock and the object's need not agree; clocks within
 *   a second of each other are taken to agree, and the hold's end is read as sent; an open object keeps its own spell,
 *   …"; table: "exactly `halfOpenMaxCalls` across isolates while the object answers within `timeout` (250 ms)"; KV:
 *   "A value dated ahead of the reader's clock (a writer's clock ahead, …) counts as written when it was first read, its
 *   open spell keeping its length from then"; "of two values of the key the later change counts".
 * - src/cloudflare/do-protocol.ts JSDoc `sentAt`: "the object holds for `holdUntil - sentAt` from its own now".
 * - CHANGELOG.md (Fixed): "(clocks within a second of each other are taken to agree: the hold's end is read as sent,
 *   so the report's time on the wire does not make a new open spell)".
 * - docs/health-and-events.md: "`breaker` fires on every state change …, and `open` → `open` when an open circuit is
 *   held longer (a `Retry-After` beyond `maxRetryAfter` from an answer still in flight, or a later opening shared
 *   through a store)".
 *
 * How: inside workerd (project `workers`): `durableObjectStore`, `kvStore` (./cloudflare), `createResilience` (root),
 * `TestClock`, `recordEvents` (./testing). The object is the real `BreakerStateObject` as `ClockedStateObject`
 * (`CLOCKED_STATE`, its TestClock = "real" time, moved through `runInDurableObject`); each isolate is a layer + store
 * on a TestClock `offset` ms from it. A wrapping namespace records requests and holds a report carrying a hold while
 * the test moves every clock by the wire time. Upstream: a counting `fetch` per isolate (status set by the test).
 * KV: a fake of my own that keeps every version and can serve an older one. `breaker` events and `health()` read.
 *
 * Paths: plain calls through layers over both stores (trips, probes), `health()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-seventh session, so plain
 * `it`: 2 and 3 in the store, which now reads the object's end for its own hold as its own spell's; 1 by correcting
 * cloudflare.md, which now says the object sees the clocks' difference and the time on the wire as one, and may hold
 * a host that much longer than the isolate's spell):
 * 1. cloudflare.md "clocks within a second of each other are taken to agree, and the hold's end is read as sent".
 *    Observed: the object tests `now − sentAt`, which is clock difference plus time on the wire, against 1 s: an
 *    isolate 0.9 s behind whose report spends 200 ms on the wire gets its hold re-timed (stored end = sent end +
 *    1.1 s), and the object holds 30.2 s after the trip instead of the local 30 s spell (another isolate refused at
 *    30.1 s). Clocks that agree exactly with a report 1.5 s on the wire (it times out at 250 ms, the hold goes again
 *    5 s on): stored end = sent end + 1.5 s.
 * 2. CHANGELOG "so the report's time on the wire does not make a new open spell" (health-and-events.md lists no other
 *    cause of `open` → `open`). Observed in both cases of 1: the isolate reads its own trip back as a later spell,
 *    a second `breaker` event to `open`, `gen` 2, and refuses 200 ms (1.5 s) past its 30 s `timeout`.
 * 3. cloudflare.md "an isolate's clock and the object's need not agree" (with health-and-events.md's `open` → `open`
 *    list). Observed: an isolate 1.1 s or 5 s behind the object whose report spends 5 ms on the wire: its own trip
 *    comes back as a second open event (gen 2), its spell 5 ms longer: the answer is dated ahead of the isolate, so
 *    it is re-dated to when it was read, a round trip after the local trip, and always ends later.
 *
 * Held (plain `it`):
 * - No time on the wire, clocks −5, −1.1, −1.0, −0.9, 0, +0.9, +1.0, +1.1, +5 s off: the report's `holdUntil −
 *   sentAt` is 30 000; |offset| < 1 s stores the end as sent, else the object's now + 30 s; one open event, gen 1.
 * - Clocks 0 s apart with 200 or 900 ms on the wire, +0.9 s with 200 ms, −0.9 s with 50 ms: end as sent, one event.
 * - Isolates 1.1 s / 5 s ahead with 5 ms on the wire: the object's end comes back earlier than theirs: no new event.
 * - Two isolates (+0.9 s, in step) trip 5 ms apart: the object keeps the first spell (+0.9 s as sent), both refused
 *   until it ends, then of 6 concurrent calls exactly 3 (`halfOpenMaxCalls`) reach the upstream, object closed.
 * - KV: a writer 1.1 s / 5 s ahead trips; an in-step reader holds it 30 s from its first read; a later trip 7 s on is
 *   one `open` → `open` (documented); the first value served again (stale) is ignored; one probe at the later end.
 *
 * Docs-silent (not pinned):
 * - Exactly 1.0 s apart is not "within a second" (the check is `< 1000`): the hold is re-timed.
 * - An in-step isolate that tripped 5 ms after one 0.9 s ahead takes the object's end (0.9 s later) as its spell held
 *   longer: `open` → `open`, gen 2, though that trip came first (within the clocks' documented tolerance).
 * - KV, a writer 5 s behind: an in-step reader holds its 30 s trip only 25 s, its probe reaching the upstream then.
 * - KV, a close from a writer 5 s ahead (dated 3 s after a trip made 2 s after it in real time), served stale after
 *   that trip: "the later change counts" by date, so it closes the reader while the trip's spell runs; its calls go.
 */

import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
} from "../../src/cloudflare/index.ts";
import { createResilience } from "../../src/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { recordingCtx } from "./recording-ctx.ts";
import type { ClockedStateObject } from "./worker.ts";

let seq = 0;
const unique = (what: string) => `${what}-${Date.now().toString(36)}-${seq++}`;
const H = 30_000; // the breaker `timeout`: a local open spell
type Stored = { state: string; openUntil: number | null; gen: number };

const stubOf = (ns: DurableObjectNamespaceLike, name: string) => ns.get(ns.idFromName(name) as never);
const storedOf = (name: string) =>
  runInDurableObject(
    stubOf(env.CLOCKED_STATE, name),
    async (_i, state) => (await state.storage.get("snapshot")) as Stored | undefined,
  );
const objectNow = (name: string) =>
  runInDurableObject(stubOf(env.CLOCKED_STATE, name), (o: ClockedStateObject) => o.clock.now());
const moveObject = (name: string, ms: number) =>
  runInDurableObject(stubOf(env.CLOCKED_STATE, name), (o: ClockedStateObject) => o.clock.advance(ms));

/** `CLOCKED_STATE`, each request recorded; a `/report` carrying a hold is held (until `release`) when `gateHolds`. */
function watched(gateHolds: () => boolean) {
  const base = env.CLOCKED_STATE as DurableObjectNamespaceLike;
  const sent: Array<{ path: string; body: Record<string, unknown> }> = [];
  const gates: Array<() => void> = [];
  const inFlight: Promise<unknown>[] = [];
  const ns: DurableObjectNamespaceLike = {
    idFromName: (name) => base.idFromName(name),
    get: (id) => {
      const stub = base.get(id);
      return {
        fetch: async (input, init) => {
          const path = new URL(input).pathname;
          const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
          sent.push({ path, body });
          const held =
            path === "/report" && body.holdUntil !== undefined && gateHolds()
              ? new Promise<void>((resolve) => gates.push(resolve))
              : undefined;
          const answer = (async () => {
            await held;
            return stub.fetch(input, init);
          })();
          inFlight.push(answer.catch(() => {}));
          return answer;
        },
      };
    },
  };
  const release = () => {
    for (const open of gates.splice(0)) open();
  };
  /** Every request the object was sent has reached it and been answered (one timed out included). */
  const drain = async () => {
    for (let seen = 0; seen < inFlight.length; ) await Promise.all(inFlight.slice(seen++));
  };
  return { ns, sent, release, drain, gated: () => gates.length, holds: () => sent.filter((s) => s.body.holdUntil) };
}

/**
 * One isolate: a layer over `store` on a clock `offset` ms from the "real" time `t0` (the object's clock), an upstream
 * whose status the test sets. The object's own policy needs 50 failures in a row: only a hold opens it.
 */
function isolate(
  makeStore: (clock: { now(): number; setTimer(cb: () => void, ms: number): () => void }, ctx: never) => unknown,
  t0: number,
  offset: number,
) {
  const tc = new TestClock(t0);
  const clock = { now: () => tc.now() + offset, setTimer: (cb: () => void, ms: number) => tc.setTimer(cb, ms) };
  const c = recordingCtx();
  const up = { status: 200, calls: 0, wait: undefined as Promise<void> | undefined };
  const layer = createResilience({
    store: makeStore(clock, c.ctx as never) as never,
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 1, timeout: H },
    clock,
    fetch: async () => {
      up.calls++;
      await up.wait;
      return new Response("answer", { status: up.status });
    },
  });
  const rec = recordEvents(layer);
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
  /** The `breaker` events for `host` to `open`, as [gen, openUntil − offset] (the spell's end in real time). */
  const opens = (host: string) =>
    rec
      .of("breaker")
      .filter((e) => e.key === host && e.to === "open")
      .map((e) => [e.gen, Number(e.openUntil) - offset]);
  return { tc, clock, layer, up, rec, call, opens, settle: c.settle, offset };
}

/** One host's object on its own clock, and isolates whose clocks sit `offset` ms from it. */
async function doWorld(host: string, gateHolds: () => boolean = () => false) {
  const scope = unique("skew");
  const name = `cb:${scope}:${host}`;
  const t0 = await objectNow(name);
  const obj = watched(gateHolds);
  const isolates: Array<ReturnType<typeof isolate>> = [];
  const add = (offset: number) => {
    const iso = isolate(
      (clock, ctx) => durableObjectStore(obj.ns, { ctx, scope, clock, policy: { failureThreshold: 50 } }),
      t0,
      offset,
    );
    isolates.push(iso);
    return iso;
  };
  /** Real time passes: every isolate's clock and the object's. */
  const pass = async (ms: number) => {
    for (const iso of isolates) await iso.tc.advance(ms);
    await moveObject(name, ms);
  };
  return { name, t0, obj, add, pass };
}

/** An isolate's first verdict (closed), then a trip (503) whose report may be held on the wire for `wire` ms. */
async function tripWithWire(offset: number, wire: number, host = "wire.example") {
  let gate = false;
  const w = await doWorld(host, () => gate);
  const iso = w.add(offset);
  expect(await iso.call(host)).toBe("200");
  iso.up.status = 503;
  gate = wire > 0;
  expect(await iso.call(host, !gate)).toBe("503");
  if (gate) {
    expect(w.obj.gated()).toBe(1);
    await w.pass(wire);
    w.obj.release();
    gate = false;
    await w.obj.drain();
    await iso.settle();
  }
  const sent = w.obj.holds()[0]?.body ?? {};
  return { w, iso, sent, host };
}

describe("durableObjectStore: a trip from an isolate whose clock is 0.9, 1.0, 1.1 or 5 s off, nothing on the wire", () => {
  for (const offset of [-5_000, -1_100, -1_000, -900, 0, 900, 1_000, 1_100, 5_000]) {
    const agree = Math.abs(offset) < 1_000;
    it(`held: ${offset / 1000} s: ${agree ? "the hold's end is read as sent" : "the object holds holdUntil − sentAt from its own now"}; one open event (gen 1) in the isolate`, async () => {
      const { w, iso, sent, host } = await tripWithWire(offset, 0);
      expect(Number(sent.holdUntil) - Number(sent.sentAt)).toBe(H);
      const snap = await storedOf(w.name);
      expect(snap?.state).toBe("open");
      expect(Number(snap?.openUntil) - w.t0).toBe(agree ? offset + H : H);
      // The isolate reads its own spell back (health() syncs as the next call would): no new spell.
      await w.pass(100);
      const health = await iso.layer.health();
      expect(health.breakers[host]).toMatchObject({ state: "open", gen: 1, openUntil: w.t0 + offset + H });
      expect(iso.opens(host)).toEqual([[1, w.t0 + H]]);
    });
  }
});

describe("durableObjectStore: clocks within a second of each other, a report with time on the wire", () => {
  for (const [offset, wire] of [
    [0, 200],
    [0, 900],
    [900, 200],
    [-900, 50],
  ] as const) {
    it(`held: clocks ${offset / 1000} s apart, ${wire} ms on the wire: the hold's end read as sent, no second open event`, async () => {
      const { w, iso, sent, host } = await tripWithWire(offset, wire);
      expect(Number((await storedOf(w.name))?.openUntil)).toBe(Number(sent.holdUntil));
      await w.pass(5_000); // a report timed out (900 ms > 250 ms) goes again a flushInterval later
      expect(await iso.call(host)).toBe("CircuitOpenError");
      await iso.layer.health();
      expect(iso.opens(host)).toEqual([[1, w.t0 + H]]);
    });
  }

  // Asserted before the fix that the object stores the end as sent (it cannot: it measures the clocks' difference
  // with the time on the wire), another isolate going at 30.1 s. The guide now says the object then counts the hold
  // from its own now, up to the time on the wire longer; this asserts that.
  it("DEFECT 1 (guide corrected): clocks 0.9 s apart, 200 ms on the wire: the difference the object sees is 1.1 s, so it holds the 30 s from its own now (+1.1 s), refusing past the local spell", async () => {
    const { w, sent } = await tripWithWire(-900, 200);
    const other = w.add(0); // an isolate whose clock agrees with the object's, its first calls now
    expect(await other.call("wire.example")).toBe("200"); // the verdict read in the background
    const snap = await storedOf(w.name);
    expect(Number(snap?.openUntil) - Number(sent.holdUntil)).toBe(1_100);
    await w.pass(H - 200 + 100);
    // cloudflare.md now: "otherwise the hold counts from the object's now, so the object may hold the host open
    // that much longer than the isolate's spell".
    expect(await other.call("wire.example")).toBe("CircuitOpenError");
  });

  it("DEFECT 2 (fixed): clocks 0.9 s apart, 200 ms on the wire: the isolate reads its own spell back as its own (one open event, gen 1); its probe waits for the object's end", async () => {
    const { w, iso, host } = await tripWithWire(-900, 200);
    await iso.layer.health();
    // CHANGELOG: "(clocks within a second of each other are taken to agree: … so the report's time on the wire does
    // not make a new open spell)"; health-and-events.md: `open` → `open` only "when an open circuit is held longer
    // (a `Retry-After` …, or a later opening shared through a store)": there was no other opening.
    expect(iso.opens(host)).toEqual([[1, w.t0 + H]]);
    iso.up.status = 200;
    await w.pass(H - 200 + 100); // 30.1 s after the trip: its spell is over, the object's (+1.1 s, less 0.9) not yet
    expect(await iso.call(host)).toBe("CircuitOpenError"); // the object grants no probe before its end
    await w.pass(1_100);
    expect(await iso.call(host)).toBe("200"); // one probe, at the object's end
    expect(iso.up.calls).toBe(3);
    // The spell ends once: half-open at its end, its probe served, never open again.
    const toStates = iso.rec
      .of("breaker")
      .filter((e) => e.key === host)
      .map((e) => e.to);
    expect(toStates.slice(0, 2)).toEqual(["open", "half_open"]);
    expect(toStates.filter((to) => to === "open")).toHaveLength(1);
  });

  it("DEFECT 3 (fixed; the object's end as the guide now says): clocks that agree, a report 1.5 s on the wire: the object holds 31.5 s, the isolate keeps one open spell (gen 1)", async () => {
    const { w, iso, sent, host } = await tripWithWire(0, 1_500);
    expect(iso.rec.of("store").map((e) => `${e.operation}/${e.outcome}`)).toEqual(["report/timeout"]);
    await w.pass(5_000); // the hold goes again with the next report, which reads the object's verdict
    expect(await iso.call(host)).toBe("CircuitOpenError");
    await iso.layer.health();
    const opens = iso.opens(host);
    const snap = await storedOf(w.name);
    expect({ end: Number(snap?.openUntil) - Number(sent.holdUntil), opens }).toEqual({
      end: 1_500,
      opens: [[1, w.t0 + H]],
    });
  });
});

describe("durableObjectStore: clocks more than a second apart, a few ms on the wire", () => {
  for (const offset of [-1_100, -5_000]) {
    it(`DEFECT 4 (fixed): an isolate ${-offset / 1000} s behind, its report 5 ms on the wire: its own trip comes back as its own spell, no second open event`, async () => {
      const { w, iso, host } = await tripWithWire(offset, 5);
      await iso.layer.health();
      // cloudflare.md: "a hold goes as the time it has left, so an isolate's clock and the object's need not agree";
      // health-and-events.md lists `open` → `open` for a hold or "a later opening shared through a store" only.
      expect(iso.opens(host)).toEqual([[1, w.t0 + H]]);
    });
  }

  it("held: an isolate 1.1 s or 5 s ahead, 5 ms on the wire: the object's end comes back earlier than its own, no second event", async () => {
    for (const offset of [1_100, 5_000]) {
      const { w, iso, host } = await tripWithWire(offset, 5);
      expect(Number((await storedOf(w.name))?.openUntil) - w.t0).toBe(H + 5);
      await iso.layer.health();
      expect(iso.opens(host)).toEqual([[1, w.t0 + H]]);
    }
  });
});

describe("durableObjectStore: two isolates 0.9 s apart trip the same host 5 ms apart", () => {
  it("held: the object keeps the first spell (read as sent, +0.9 s), both refused until it ends, exactly halfOpenMaxCalls (3) probes reach the upstream across both", async () => {
    const host = "both.example";
    const w = await doWorld(host);
    const a = w.add(900);
    const b = w.add(0);
    for (const i of [a, b]) expect(await i.call(host)).toBe("200");
    a.up.status = 503;
    b.up.status = 503;
    expect(await a.call(host)).toBe("503");
    await w.pass(5);
    expect(await b.call(host)).toBe("503");
    expect(Number((await storedOf(w.name))?.openUntil) - w.t0).toBe(H + 900);
    for (const i of [a, b]) await i.layer.health();
    expect(a.opens(host)).toEqual([[1, w.t0 + H]]);
    // Docs-silent: b takes a's end (0.9 s later on the object's clock) as its own spell held longer: open → open, gen 2.
    expect(b.opens(host)).toEqual([
      [1, w.t0 + H + 5],
      [2, w.t0 + H + 900],
    ]);
    // Both local spells end; the object's (0.9 s longer: clocks "taken to agree") refuses their probes.
    await w.pass(H);
    expect([await a.call(host), await b.call(host)]).toEqual(["CircuitOpenError", "CircuitOpenError"]);
    await w.pass(900);
    a.up.status = 200;
    b.up.status = 200;
    let answer = () => {};
    a.up.wait = new Promise<void>((resolve) => {
      answer = resolve;
    });
    b.up.wait = a.up.wait;
    // Both isolates call at once while the probe is out (its upstream answers only when the test says).
    const calls = [a, b, a, b, a, b].map((i) => i.call(host, false));
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
    answer();
    const got = await Promise.all(calls);
    await Promise.all([a.settle(), b.settle()]);
    // `halfOpenMaxCalls` (3, the default) across the two isolates, not per isolate.
    expect(got.filter((g) => g === "200")).toHaveLength(3);
    expect(got.filter((g) => g === "CircuitOpenError")).toHaveLength(3);
    expect(a.up.calls + b.up.calls).toBe(2 + 2 + 3);
    expect((await storedOf(w.name))?.state).toBe("closed");
  });
});

/** A KV of my own: every value written kept; each read serves the latest, or the version `serve` picks (a stale replica). */
function fakeKv() {
  const versions: unknown[] = [];
  let serve: number | undefined;
  const kv: KvNamespaceLike = {
    getWithMetadata: async <M>() => {
      const metadata = (serve === undefined ? versions.at(-1) : versions[serve]) ?? null;
      return { value: metadata === null ? null : "", metadata: metadata as M | null };
    },
    put: async (_key, _value, options) => {
      versions.push(structuredClone(options?.metadata));
    },
  };
  const serveVersion = (i: number | undefined) => {
    serve = i;
  };
  return { kv, versions, serveVersion };
}

async function kvWorld() {
  const t0 = Date.now();
  const store = fakeKv();
  const isolates: Array<ReturnType<typeof isolate>> = [];
  const add = (offset: number) => {
    const iso = isolate(
      (clock, ctx) => kvStore(store.kv, { ctx, clock, random: () => 0, refreshInterval: 5_000 }),
      t0,
      offset,
    );
    isolates.push(iso);
    return iso;
  };
  const pass = async (ms: number) => {
    for (const iso of isolates) await iso.tc.advance(ms);
    for (const iso of isolates) await iso.settle();
  };
  return { t0, store, add, pass };
}

describe("kvStore: writers whose clocks disagree, a KV that serves an older value", () => {
  for (const offset of [1_100, 5_000]) {
    it(`held: a writer ${offset / 1000} s ahead trips; a reader in step holds it ${H / 1000} s from its first read, takes a later trip (one open → open), ignores the older value served again, probes at the later end`, async () => {
      const host = "kv.example";
      const w = await kvWorld();
      const writer = w.add(offset);
      const reader = w.add(0);
      const later = w.add(0);
      writer.up.status = 503;
      expect(await writer.call(host)).toBe("503");
      await w.pass(100);
      expect(w.store.versions).toHaveLength(1);
      expect(await reader.call(host)).toBe("200"); // first use: its read goes in the background
      expect(await reader.call(host)).toBe("CircuitOpenError");
      expect(reader.opens(host)).toEqual([[2, w.t0 + 100 + H]]); // dated ahead: counted from its first read
      // Another isolate trips 7 s later (a later change), then the KV serves the first value again (a stale copy).
      await w.pass(6_900);
      later.up.status = 503;
      expect(await later.call(host)).toBe("503");
      await w.pass(2_100);
      expect(w.store.versions).toHaveLength(2);
      expect(await reader.call(host)).toBe("CircuitOpenError"); // its refresh reads the later trip
      w.store.serveVersion(0);
      await w.pass(5_000);
      expect(await reader.call(host)).toBe("CircuitOpenError"); // …then the older copy
      await w.pass(5_000);
      expect(await reader.call(host)).toBe("CircuitOpenError");
      await reader.layer.health();
      // One more open event, for the later opening (documented), none for the old value coming back.
      expect(reader.opens(host)).toEqual([
        [2, w.t0 + 100 + H],
        [3, w.t0 + 7_000 + H],
      ]);
      await w.pass(w.t0 + 7_000 + H - reader.clock.now());
      expect(await reader.call(host)).toBe("200"); // its probe, at the later trip's end
      expect(reader.up.calls).toBe(2);
    });
  }

  it("docs-silent (observed): a writer 5 s behind trips; a reader in step holds its 30 s spell only 25 s and its probe reaches the upstream then", async () => {
    const host = "behind.example";
    const w = await kvWorld();
    const writer = w.add(-5_000);
    const reader = w.add(0);
    writer.up.status = 503;
    expect(await writer.call(host)).toBe("503");
    await w.pass(100);
    expect(w.store.versions[0]).toMatchObject({ s: "open", w: w.t0 - 5_000, u: w.t0 - 5_000 + H });
    expect(await reader.call(host)).toBe("200"); // first use: its read goes in the background
    expect(await reader.call(host)).toBe("CircuitOpenError");
    expect(reader.opens(host)).toEqual([[2, w.t0 + 25_000]]);
    await w.pass(25_000 - 100);
    expect(await reader.call(host)).toBe("200"); // 25 s after the trip: a probe, the writer's spell 5 s from its end
    expect(reader.up.calls).toBe(2);
  });

  it("docs-silent (observed): a close from a writer 5 s ahead, served stale after a trip 2 s later, closes a reader while that trip's spell runs", async () => {
    const host = "stale.example";
    const w = await kvWorld();
    const ahead = w.add(5_000);
    const tripper = w.add(0);
    const reader = w.add(0);
    // `ahead` trips and, 30 s on, closes with a probe: its close is dated 5 s ahead of real time.
    ahead.up.status = 503;
    expect(await ahead.call(host)).toBe("503");
    await w.pass(H + 1);
    ahead.up.status = 200;
    expect([await ahead.call(host), await ahead.call(host)]).toEqual(["200", "200"]); // successThreshold 2
    await w.pass(2_000);
    const closeAt = w.store.versions.length - 1;
    expect(w.store.versions[closeAt]).toMatchObject({ s: "closed", w: w.t0 + 5_000 + H + 1 });
    // Real time t0 + 32 s, 2 s after that close: `tripper` trips (a later change, dated t0 + 32 s), the reader reads it.
    tripper.up.status = 503;
    expect(await tripper.call(host)).toBe("503");
    await w.pass(1);
    expect(w.store.versions.at(-1)).toMatchObject({ s: "open", w: w.t0 + 32_001, u: w.t0 + 32_001 + H });
    expect(await reader.call(host)).toBe("200"); // first use: its read goes in the background
    expect(await reader.call(host)).toBe("CircuitOpenError");
    w.store.serveVersion(closeAt); // a stale copy: `ahead`'s close, written 2 s before the trip, dated 3 s after it
    await w.pass(5_000);
    expect(await reader.call(host)).toBe("CircuitOpenError"); // this call's refresh reads the close
    expect(await reader.call(host)).toBe("200"); // the tripper's spell runs to t0 + 62 s; the reader's calls go
    expect(reader.rec.of("breaker").map((e) => e.to)).toEqual(["open", "closed"]);
    expect(reader.up.calls).toBe(2);
  });
});
