/**
 * Outside-in attack on docs/degradation.md, the degradation parts of
 * docs/health-and-events.md and the shared breaker stores of
 * docs/cloudflare.md, through the public entries only: `resilience.fetch`
 * (plain calls, `Request` inputs, chains), `resilience.degradation`, and
 * layers sharing a `kvStore` over the fake KV of test/cloudflare. Time moves
 * only on a `TestClock`.
 *
 * Each test but the controls pinned a defect: its body asserts the documented
 * behaviour, quoted above it, and failed on the code it was written against.
 * All are fixed.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { CircuitOpenError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { kvIsolate } from "../cloudflare/kv-isolate.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const GEN = "https://gen.example/v1/images";
const T0 = Date.parse("2026-11-28T00:00:00Z");

/** What `quality: 1` becomes at each level (the table's qualityMultiplier). */
const QUALITY: Record<string, number> = { full: 1, high: 0.9, medium: 0.8, low: 0.6, minimal: 0.4 };
/** What `steps: 50` becomes at each level (the table's maxSteps). */
const STEPS: Record<string, number> = { full: 50, high: 50, medium: 30, low: 20, minimal: 10 };

function degradedLayer(options: Parameters<typeof degradation>[0] = {}) {
  const clock = new TestClock(T0);
  const upstream = recordingFetch();
  const resilience = createResilience({
    clock,
    retry: false,
    breaker: false,
    fetch: upstream.fetch,
    degradation: degradation({ levelHeader: "x-degradation-level", browserSignals: false, ...options }),
  });
  return { clock, upstream, resilience, levels: resilience.degradation };
}

const jsonRequest = (body: unknown) =>
  new Request(GEN, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("the level a call is rewritten for is the level it reports (docs/degradation.md)", () => {
  // docs/degradation.md: "`getResilienceInfo(res).degradationLevel` says which
  // level was applied" and "`levelHeader` … sends the level's name". A
  // `Request` input's body is read before the call is rewritten: a level that
  // moves meanwhile (another call settling, an operator's setLevel) must not
  // split one call between two levels.
  it("a Request whose level moves while its body is read: body, header and info name one level (high → minimal)", async () => {
    const { upstream, resilience, levels } = degradedLayer();
    levels.setLevel("high");
    const pending = resilience.fetch(jsonRequest({ quality: 1, steps: 50 }));
    levels.setLevel("minimal"); // while the Request's body is being read
    const res = await pending;
    const applied = getResilienceInfo(res)?.degradationLevel as string;
    const sent = JSON.parse(upstream.sent[0]?.body ?? "null") as { quality: number; steps: number };
    expect(upstream.sent[0]?.headers.get("x-degradation-level")).toBe(applied);
    expect(sent).toEqual({ quality: QUALITY[applied], steps: STEPS[applied] });
  });

  it("a Request whose level is set back to full while its body is read is not reported as degraded and untouched", async () => {
    const { upstream, resilience, levels } = degradedLayer();
    levels.setLevel("medium");
    const pending = resilience.fetch(jsonRequest({ quality: 1, steps: 50 }));
    levels.setLevel("full");
    const res = await pending;
    const applied = getResilienceInfo(res)?.degradationLevel as string;
    const sent = JSON.parse(upstream.sent[0]?.body ?? "null") as { quality: number; steps: number };
    expect(upstream.sent[0]?.headers.get("x-degradation-level")).toBe(applied);
    expect(sent).toEqual({ quality: QUALITY[applied], steps: STEPS[applied] });
  });

  it("control: a string body, whose level cannot move before the rewrite, is consistent", async () => {
    const { upstream, resilience, levels } = degradedLayer();
    levels.setLevel("high");
    const pending = resilience.fetch(GEN, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ quality: 1, steps: 50 }),
    });
    levels.setLevel("minimal");
    const res = await pending;
    expect(getResilienceInfo(res)?.degradationLevel).toBe("high");
    expect(JSON.parse(upstream.sent[0]?.body ?? "null")).toEqual({ quality: 0.9, steps: 50 });
  });
});

describe("rewriting changes only what a rule names (SECURITY.md, docs/degradation.md)", () => {
  // docs/degradation.md: "Only the values a rule changes are rewritten: the
  // other bytes of a JSON body … stay as you wrote them"; SECURITY.md
  // "Rewriting changes only what a rule names". The rewritten body goes out
  // as a string, and fetch labels a string `text/plain;charset=UTF-8`: a
  // Blob's own type, or the absence of any content-type on bytes, is lost.
  it("a Blob typed application/json, and bytes sent without a content-type, keep their content-type when rewritten", async () => {
    const { upstream, resilience, levels } = degradedLayer();
    levels.setLevel("medium");
    await resilience.fetch(GEN, {
      method: "POST",
      body: new Blob([JSON.stringify({ quality: 1, seed: 1 })], { type: "application/json" }),
    });
    await resilience.fetch(GEN, { method: "POST", body: new TextEncoder().encode('{"quality":1,"seed":1}') });
    // The rewrite itself happened: only the label is wrong.
    expect(upstream.sent.map((s) => JSON.parse(s.body ?? "null"))).toEqual([
      { quality: 0.8, seed: 1 },
      { quality: 0.8, seed: 1 },
    ]);
    expect(upstream.sent.map((s) => s.headers.get("content-type"))).toEqual(["application/json", null]);
  });

  it("control: at full the same Blob and bytes go with the content-type fetch gives them", async () => {
    const { upstream, resilience } = degradedLayer({ levelHeader: undefined });
    await resilience.fetch(GEN, {
      method: "POST",
      body: new Blob([JSON.stringify({ quality: 1 })], { type: "application/json" }),
    });
    await resilience.fetch(GEN, { method: "POST", body: new TextEncoder().encode('{"quality":1}') });
    expect(upstream.sent.map((s) => s.headers.get("content-type"))).toEqual(["application/json", null]);
  });

  // SECURITY.md: "degradation rules edit the JSON text in place: every other
  // byte (64-bit integers, key order, spacing) arrives as sent". Bytes are
  // decoded with TextDecoder's default, which drops a leading byte-order mark.
  it("a JSON body in bytes that starts with a UTF-8 byte-order mark keeps it when rewritten", async () => {
    const seen: Uint8Array[] = [];
    const resilience = createResilience({
      clock: new TestClock(T0),
      retry: false,
      fetch: async (input, init) => {
        seen.push(new Uint8Array(await new Request(input, init).arrayBuffer()));
        return new Response("ok");
      },
      degradation: degradation({ browserSignals: false }),
    });
    resilience.degradation.setLevel("medium");
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"quality":1,"seed":1}')]);
    await resilience.fetch(GEN, { method: "POST", headers: { "content-type": "application/json" }, body: bytes });
    const out = seen[0] as Uint8Array;
    expect([...out]).toEqual([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"quality":0.8,"seed":1}')]);
  });
});

describe("automatic triggers: stepping up needs clearly healthy signals (docs/degradation.md)", () => {
  // docs/degradation.md: "Stepping up needs the signals to be clearly healthy
  // (error rate at most half its threshold, p95 at most 80% of its threshold)
  // for a whole `restoreAfter` (60 s)". The docs also say the error rate is
  // judged "once `minSamples` (20) calls are in it"; read strictly, a window
  // of 5 calls that all failed has no error rate, so this is a reading, not a
  // certainty: a window whose every call failed is not "clearly healthy".
  it("after an automatic step down, a trickle of calls that all fail never steps the level back up", async () => {
    const clock = new TestClock(T0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("down", { status: 503 }),
      degradation: degradation({ browserSignals: false }),
    });
    const levels = resilience.degradation;
    const moves: { from: string; to: string; reason: string }[] = [];
    resilience.on("degradation", (e) => moves.push({ from: e.from, to: e.to, reason: e.reason }));
    for (let i = 0; i < 20; i++) await resilience.fetch(GEN);
    await clock.advance(1_000);
    await resilience.fetch(GEN);
    expect(levels.levelName()).toBe("high");
    // Traffic drops to one call every 15 s, every one a 503, for 4 minutes.
    for (let t = 0; t < 16; t++) {
      await clock.advance(15_000);
      expect((await resilience.fetch(GEN)).status).toBe(503);
    }
    expect(levels.window()).toMatchObject({ errorRate: 1 });
    // Every move was down: none of them "healthy".
    const order = ["full", "high", "medium", "low", "minimal"];
    expect(moves.filter((m) => order.indexOf(m.to) < order.indexOf(m.from))).toEqual([]);
  });

  // The other side of the fix: a quiet app (fewer than `minSamples` calls a
  // window) whose calls succeed again still climbs back, one level per
  // `restoreAfter`, on the few calls it makes.
  it("after an automatic step down, a trickle of calls that succeed steps the level back up", async () => {
    const clock = new TestClock(T0);
    let status = 503;
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status }),
      degradation: degradation({ browserSignals: false }),
    });
    for (let i = 0; i < 20; i++) await resilience.fetch(GEN);
    await clock.advance(1_000);
    await resilience.fetch(GEN);
    expect(resilience.degradation.levelName()).toBe("high");
    status = 200;
    // The failures leave the 60 s window first; then one good call every 15 s.
    await clock.advance(61_000);
    for (let t = 0; t < 6; t++) {
      await clock.advance(15_000);
      await resilience.fetch(GEN);
    }
    expect(resilience.degradation.currentLevel()).toMatchObject({ name: "full", reason: "healthy" });
  });
});

describe("kvStore: an open seen elsewhere (docs/cloudflare.md)", () => {
  const isolate = (kv: FakeKv, clock: TestClock, pending: Promise<unknown>[], timeout: number) =>
    kvIsolate(kv, clock, pending, { failureThreshold: 1, timeout }, GEN);

  // docs/cloudflare.md: "A remote snapshot may push a breaker toward open, and
  // toward closed only when its generation is newer", and the table:
  // staleness (open seen elsewhere) "≤ refreshInterval (30 s) + KV propagation".
  // Generations are counted per isolate: a new isolate's first trip is
  // generation 1, below what an isolate that has tripped and recovered has seen.
  it("an open written by a new isolate (generation 1) reaches an isolate that saw a closed of a higher generation", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const x = isolate(kv, clock, pending, 1_000);
    // X trips and recovers: it writes open (gen 1), then closed (gen 3).
    x.up.ok = false;
    expect(await x.call()).toBe(503);
    x.up.ok = true;
    await clock.advance(1_000);
    expect(await x.call()).toBe(200); // the probe closes X's breaker
    await clock.advance(6_000);
    expect(await x.call()).toBe(200); // the held-back closed is written now
    expect(kv.attempts.map((a) => [a.state, a.gen])).toEqual([
      ["open", 1],
      ["closed", 3],
    ]);
    // A new isolate Z sees the host fail and trips: open, gen 1, for 10 minutes.
    await clock.advance(2_000);
    const z = isolate(kv, clock, pending, 600_000);
    z.up.ok = false;
    expect(await z.call()).toBe(503);
    expect(kv.attempts.at(-1)).toMatchObject({ state: "open", gen: 1, accepted: true });
    // Well past refreshInterval + propagation (and KV's 30 s cacheTtl), X reads the key again.
    await clock.advance(31_000);
    expect(await x.call()).toBe(200); // this call's peek starts the background read
    await clock.advance(1_000);
    const before = x.up.calls;
    expect(await x.call()).toBeInstanceOf(CircuitOpenError);
    expect(x.up.calls).toBe(before);
  });

  it("control: the same open reaches an isolate that never tripped (its generation is 0)", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const x = isolate(kv, clock, pending, 1_000);
    expect(await x.call()).toBe(200);
    const z = isolate(kv, clock, pending, 600_000);
    z.up.ok = false;
    expect(await z.call()).toBe(503);
    await clock.advance(31_000);
    expect(await x.call()).toBe(200);
    await clock.advance(1_000);
    const before = x.up.calls;
    expect(await x.call()).toBeInstanceOf(CircuitOpenError);
    expect(x.up.calls).toBe(before);
  });

  // docs/cloudflare.md: staleness (open seen elsewhere) "≤ refreshInterval
  // (30 s) + KV propagation"; kvStore "swallows KV's 429" (the code's comment:
  // "another isolate is writing this key: theirs will do"). Another isolate's
  // write within the same second may say something else.
  it("an open whose write KV refused (429, another isolate's write of a shorter open) still reaches the others", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const w = isolate(kv, clock, pending, 5_000); // trips for 5 s
    const z = isolate(kv, clock, pending, 600_000); // trips for 10 minutes
    const x = isolate(kv, clock, pending, 600_000); // never sees the host fail itself
    w.up.ok = false;
    z.up.ok = false;
    expect(await w.call()).toBe(503);
    await clock.advance(500);
    expect(await z.call()).toBe(503);
    // Z's refused write is tried again once minPublishInterval (5 s) has passed, inside its waitUntil.
    expect(kv.attempts.map((a) => a.accepted)).toEqual([true, false, true]);
    await clock.advance(31_000);
    expect(await x.call()).toBe(200); // X's peek starts its background read
    await clock.advance(1_000);
    const before = x.up.calls;
    expect(await x.call()).toBeInstanceOf(CircuitOpenError);
    expect(x.up.calls).toBe(before);
  });
});
