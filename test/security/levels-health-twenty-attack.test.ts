/**
 * Outside-in attack on docs/degradation.md (byte-exact rewriting of JSON body, query and header targets, the
 * automatic error-rate trigger's pace, `getResilienceInfo(res).degradationLevel`, `degradation` events) and
 * docs/health-and-events.md (what `health()`, `debugInfo()` totals, the degradation window and the `request` event
 * count), on a plain call, a `Request` input with a body, the ky client, a followed 307 and a fallback chain. How:
 * public entries only (root, `./degradation`, `./fallback`, `./ky`, `./testing`'s TestClock); `hostFetch` records
 * each request as the platform builds it; zero retry delays; time moves only on the TestClock. Not repeated: bytes
 * that are no UTF-8, BOMs, 64-bit seeds, repeated query parameters (chains-levels-nineteen-attack), breaker counting
 * on hops (breakers-health-nineteen-attack), levels moving while a body is read (health-after-fixes-attack).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. docs/degradation.md: "Only the values a rule changes are rewritten: the other bytes of a JSON body (…) … stay
 *    as you wrote them". A JSON `features` list the level keeps whole at `high` (`[ "core" , "enhancements" ]`,
 *    or Python's `json.dumps` spacing `["core", "enhancements"]`) is re-serialised (`["core","enhancements"]`):
 *    bytes of a value no rule changed are rewritten. Cause: src/degradation/rewrite-request.ts:53 compares the
 *    adjusted value by identity (`next !== value`), and `adjustFeatures` (src/policies/adjust-parameters.ts:98)
 *    always returns a new array from `filter`; the query target compares as text (rewrite-request.ts:62-66), the
 *    body target does not.
 * 2. docs/degradation.md, the same sentence: a `{ header: "x-steps" }` value the level does not change (`20.0`
 *    under `medium`'s cap of 30; `core, enhancements` at `high`) arrives respelt (`20`, `core,enhancements`).
 *    Cause: src/degradation/rewrite-request.ts:72 always `headers.set(…)`s the adjusted text, where the query
 *    target keeps a value's own spelling when its value is unchanged.
 * 3. docs/retry.md: "A body stream that fails during that read fails the call with a `TypeError` ("the request
 *    body could not be read"), its `cause` the stream's error: nothing was sent, retried or counted." and
 *    docs/health-and-events.md ("a `TypeError` … nothing was tried, and `health()` does not count it either";
 *    "a call its caller aborted is left out, as it is from the error rate and the degradation triggers"). A
 *    `Request` whose body stream errors is counted: `debugInfo().totals` `{ calls: 1, failures: 1 }`,
 *    `health().errorRate` 1 (status `degraded`), a failure in `recentErrors` with `url: ""`, and a failed sample
 *    in the degradation window (enough of them step the level down for the caller's own broken streams); the
 *    same down a fallback chain. Cause: src/http/resilient-fetch.ts:161-164 records every non-aborted rejection
 *    (`analytics.record`, `levels?.observe(durationMs, true)`), the body-read `TypeError` made by `settleError`
 *    (attempts 0, no request) included.
 *
 * Held (plain `it`): the error-rate trigger steps one level per `stepInterval` once `minSamples` calls are in the
 * window, evaluated as calls settle (first step at the first evaluation a second after 20 failures), then steps
 * back one level per `restoreAfter` of clearly healthy calls, each change one `degradation` event with `from`,
 * `to`, `percentage`, `reason`; a `Request` input and a ky POST at `medium` get their JSON body, `{ query }` and
 * `{ header }` targets and level header rewritten once, and `getResilienceInfo` names `medium`; a followed 307
 * replays the rewritten body with the level header on the same origin, one attempt, one sample in the window;
 * a caller's mistakes found after a `Request` body must be read (bad header value, forbidden method, GET with a
 * body) reject with a `TypeError` with no `request` event and nothing counted.
 *
 * Suspicious, not pinned:
 * - `adjust({ quality: 1e303 })` at `medium` gives `Infinity` (and a JSON body's `"quality":1e303` is sent as
 *   `"quality":null`); `adjust({ quality: 4e-7 })` at `high` gives 0: `adjustQuality` rounds
 *   `quality * multiplier * 1e6` (src/policies/adjust-parameters.ts:54), which overflows or rounds away values
 *   "multiplied" should keep. Absurd inputs for a quality, so only noted.
 * - `execute(fn)` emits no `retry` event before its waits ("`retry` fires before each wait"); the event's fields
 *   (`key` a host, `url`) are HTTP's, so this reads as fetch-only. (Changed in the thirty-fourth session: it emits
 *   one per wait, test/http/execute.test.ts.)
 * - the `request` event for a call whose `Request` body could not be read carries `url: ""` and `method: ""`,
 *   though the call's URL and method were known (src/http/resilient-fetch.ts:160, `request?.url ?? ""`).
 * - `debugInfo().options.timeout` is `{ attempt: undefined, total: undefined }`, `{}` once serialised, and the
 *   degradation window's `p95` is `undefined` with no samples: not quite the "plain JSON" `health()` promises.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type RequestEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { header, hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

const ok = () => new Response("ok");
const JSON_CT = { "content-type": "application/json" };

/** A `Request` whose body stream fails when read. */
const brokenBody = (url: string) =>
  new Request(url, {
    method: "POST",
    body: new ReadableStream({
      pull(controller) {
        controller.error(new Error("disk gone"));
      },
    }),
    duplex: "half",
  } as RequestInit);

describe("defects: values no rule changed are respelt", () => {
  // docs/degradation.md: "Only the values a rule changes are rewritten: the other bytes of a JSON body (…)
  // … stay as you wrote them".
  it("a JSON features list the level keeps whole is sent as written (odd spacing, Python's spacing)", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation(),
    });
    layer.degradation.setLevel("high");
    const odd = '{"features": [ "core" , "enhancements" ], "steps": 5}';
    const python = '{"prompt": "a cat", "features": ["core", "enhancements"], "quality": 1.0}';
    await layer.fetch("https://a.test/gen", { method: "POST", headers: JSON_CT, body: odd });
    await layer.fetch("https://a.test/gen", { method: "POST", headers: JSON_CT, body: python });
    // `quality` is the one value the level changes (1.0 → 0.9).
    expect(net.log.map((r) => r.text)).toEqual([
      odd,
      '{"prompt": "a cat", "features": ["core", "enhancements"], "quality": 0.9}',
    ]);
  });

  it("control: the same features list in a { query } target keeps its spelling", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation({ rules: [{ params: { features: { query: "f" } } }] }),
    });
    layer.degradation.setLevel("high");
    await layer.fetch("https://a.test/gen?f=core,%20enhancements&x=1");
    expect(net.log[0]?.url).toBe("https://a.test/gen?f=core,%20enhancements&x=1");
  });

  it("a { header } value the level does not change keeps its spelling (steps 20.0 at medium, features at high)", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation({ rules: [{ params: { steps: { header: "x-steps" }, features: { header: "x-f" } } }] }),
    });
    layer.degradation.setLevel("medium");
    await layer.fetch("https://a.test/gen", { headers: { "x-steps": "50", "x-f": "core" } });
    expect(header(net.log[0], "x-steps")).toBe("30");
    await layer.fetch("https://a.test/gen", { headers: { "x-steps": "20.0" } });
    layer.degradation.setLevel("high");
    await layer.fetch("https://a.test/gen", { headers: { "x-f": "core, enhancements" } });
    expect([header(net.log[1], "x-steps"), header(net.log[2], "x-f")]).toEqual(["20.0", "core, enhancements"]);
  });
});

describe("defect: a Request body that cannot be read is counted", () => {
  // docs/retry.md: "A body stream that fails during that read fails the call with a `TypeError` (…), its `cause`
  // the stream's error: nothing was sent, retried or counted." docs/health-and-events.md: "… a `TypeError` …:
  // nothing was tried, and `health()` does not count it either".
  it("plain call: the TypeError leaves totals, the error rate and the degradation window untouched", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation(),
    });
    const error = await layer.fetch(brokenBody("https://a.test/jobs")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(((error as Error).cause as Error).message).toBe("disk gone");
    expect(net.log).toHaveLength(0);
    const info = layer.debugInfo();
    expect({
      totals: info.totals,
      errorRate: info.errorRate,
      status: info.status,
      recent: info.recentErrors.length,
      samples: layer.degradation.window().samples,
    }).toEqual({ totals: { calls: 0, failures: 0 }, errorRate: 0, status: "healthy", recent: 0, samples: 0 });
  });

  it("down a fallback chain: the same, and the chain's endpoints are not tried", async () => {
    const net = hostFetch({ "a.test": ok, "b.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation(),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: "https://a.test/v1" },
            { name: "s", url: "https://b.test/v1" },
          ],
        },
      ]),
    });
    const error = await layer.fetch(brokenBody("https://a.test/v1/jobs")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(net.log).toHaveLength(0);
    expect([layer.debugInfo().totals, layer.health().errorRate, layer.degradation.window().samples]).toEqual([
      { calls: 0, failures: 0 },
      0,
      0,
    ]);
  });
});

describe("held", () => {
  it("the error-rate trigger: one step per stepInterval after minSamples, one step up per restoreAfter", async () => {
    const clock = new TestClock(0);
    let failing = true;
    const net = hostFetch({ "a.test": () => new Response("x", { status: failing ? 503 : 200 }) });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: 1 },
      breaker: false,
      clock,
      fetch: net.fetch,
      degradation: degradation(),
    });
    const events: Array<{ t: number; from: string; to: string; percentage: number; reason: string }> = [];
    layer.on("degradation", (e) => events.push({ t: clock.now(), ...e }));
    // 20 failures at t=0: the first call's evaluation saw one sample; the next comes a second later.
    for (let i = 0; i < 20; i++) await layer.fetch("https://a.test/x");
    expect(layer.degradation.levelName()).toBe("full");
    for (let t = 0; t < 40; t++) {
      await clock.advance(1_000);
      await layer.fetch("https://a.test/x");
    }
    expect(events.map((e) => [e.t, e.from, e.to, e.percentage])).toEqual([
      [1_000, "full", "high", 80],
      [11_000, "high", "medium", 60],
      [21_000, "medium", "low", 40],
      [31_000, "low", "minimal", 20],
    ]);
    expect(events[0]?.reason).toBe("error rate 1.00 > 0.1");
    failing = false;
    for (let t = 0; t < 300; t++) {
      await clock.advance(1_000);
      await layer.fetch("https://a.test/x");
    }
    const ups = events.slice(4);
    expect(ups.map((e) => [e.from, e.to, e.reason])).toEqual([
      ["minimal", "low", "healthy"],
      ["low", "medium", "healthy"],
      ["medium", "high", "healthy"],
      ["high", "full", "healthy"],
    ]);
    for (let i = 1; i < ups.length; i++) expect((ups[i]?.t ?? 0) - (ups[i - 1]?.t ?? 0)).toBe(60_000);
    expect(layer.health()).toMatchObject({ degradationLevel: "full", errorRate: 0, status: "healthy" });
  });

  it("a Request input and a ky POST at medium: body, query, header and level header rewritten once", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation({
        levelHeader: "x-level",
        rules: [{ params: { model: { header: "x-model" }, steps: { query: "steps" }, quality: "q" } }],
      }),
    });
    layer.degradation.setLevel("medium");
    const res = await layer.fetch(
      new Request("https://a.test/x?steps=50&a=b", {
        method: "POST",
        headers: { "x-model": "premium", ...JSON_CT },
        body: '{"q":1, "seed":1}',
      }),
    );
    const api = createClient({ resilience: layer });
    const viaKy = await api.post("https://a.test/y?steps=50", { json: { q: 1 }, headers: { "x-model": "premium" } });
    for (const [i, r] of [res, viaKy].entries()) {
      expect(getResilienceInfo(r)).toMatchObject({ degradationLevel: "medium", attempts: 1 });
      expect(header(net.log[i], "x-model")).toBe("standard");
      expect(header(net.log[i], "x-level")).toBe("medium");
    }
    expect(net.log.map((r) => [r.url, r.text])).toEqual([
      ["https://a.test/x?steps=30&a=b", '{"q":0.8, "seed":1}'],
      ["https://a.test/y?steps=30", '{"q":0.8}'],
    ]);
  });

  it("a followed 307 replays the rewritten body with the level header; one attempt, one sample", async () => {
    const net = hostFetch({
      "a.test": (_r, n) =>
        n === 1 ? new Response(null, { status: 307, headers: { location: "/v2/jobs" } }) : new Response("done"),
    });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation({ levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("low");
    const seen: RequestEvent[] = [];
    layer.on("request", (e) => seen.push(e));
    const res = await layer.fetch("https://a.test/v1/jobs", {
      method: "POST",
      headers: JSON_CT,
      body: '{"steps": 50, "model": "premium"}',
    });
    expect(await res.text()).toBe("done");
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level")])).toEqual([
      ["https://a.test/v1/jobs", '{"steps": 20, "model": "basic"}', "low"],
      ["https://a.test/v2/jobs", '{"steps": 20, "model": "basic"}', "low"],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ degradationLevel: "low", attempts: 1 });
    expect(seen.map((e) => [e.status, e.attempts, e.outcome])).toEqual([[200, 1, "response"]]);
    expect(layer.degradation.window().samples).toBe(1);
  });

  it("a caller's mistake found with a Request body to read: a TypeError, no request event, nothing counted", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = createResilience({
      retry: FAST,
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation(),
    });
    const seen: RequestEvent[] = [];
    layer.on("request", (e) => seen.push(e));
    const req = () => new Request("https://a.test/x", { method: "POST", body: "x" });
    const calls = [
      () => layer.fetch(req(), { headers: { "x-a": "a\u0100" } }),
      () => layer.fetch(req(), { method: "TRACE" }),
      () => layer.fetch(req(), { method: "GET" }),
      () => layer.fetch("https://a.test/x", { method: "GET", body: "x" }),
    ];
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(TypeError);
    expect(seen).toEqual([]);
    expect(net.log).toHaveLength(0);
    expect([layer.debugInfo().totals, layer.degradation.window().samples]).toEqual([{ calls: 0, failures: 0 }, 0]);
  });

  it("control: a 503 down a chain whose spare answers is one good call in health and the window", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: 1 },
      clock: new TestClock(0),
      fetch: net.fetch,
      degradation: degradation(),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: "https://a.test/v1" },
            { name: "s", url: "https://b.test/v1" },
          ],
        },
      ]),
    });
    const res = await layer.fetch("https://a.test/v1/x");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "s", fromFallback: true, degradationLevel: "full" });
    expect([layer.debugInfo().totals, layer.degradation.window()]).toEqual([
      { calls: 1, failures: 0 },
      { samples: 1, errorRate: 0, p95: 0 },
    ]);
  });
});
