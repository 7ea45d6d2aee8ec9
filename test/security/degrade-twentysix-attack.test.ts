/**
 * Outside-in attack on graceful degradation through `degradation({…})` on `createResilience`.
 * Docs: docs/degradation.md (sentence by sentence: the five levels, `adjust`, "`resilience.fetch` applies the level
 * to requests before they leave", `match` "read as a chain's prefix is", one rule per request, what is rewritten
 * and what is never touched, "Only the values a rule changes are rewritten", the level header, "A call takes the
 * level it finds when it starts", manual control, automatic triggers and the browser floor), the `degradation.*`
 * rows of docs/options.md, docs/storycore-mapping.md ("Numbers kept"), docs/cloudflare.md ("adds … and
 * `x-degradation-level` to responses").
 * How: root, `./degradation`, `./fallback`, `./ky`, `./cloudflare`, `./testing` (TestClock, recordEvents);
 * `hostFetch` transports that record each request as the platform builds it; time moves only on the TestClock;
 * `navigator.connection` stubbed for the browser floor.
 * Paths: `adjust`, plain call (string body without a JSON content-type, bytes, query, header), a `Request` input
 * with a JSON body (also `keepalive`), a retry whose level moves between attempts, a fallback chain whose spare has
 * a `transform` and a rule of its own, a hedge, a followed 307 into another rule's prefix, the ky client, the Worker
 * proxy (`resilientProxy`, fake ctx), two layers sharing one stage, the p95 and error-rate triggers.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: kept sizes as written; 2, 3, 4 and 5 by the docs):
 * 1. docs/degradation.md "Only the values a rule changes are rewritten (a value the level keeps, such as a
 *    `features` list kept whole or a header's `20.0` under a cap of 30, stays as written)". Observed: a `WxH` size
 *    the level keeps is respelt: at `medium`, a JSON body's `"8 x 8"`, a query's `size=4X4` and a header's `8×8`
 *    go out as `8x8`, `4x4`, `8x8` (the size is below `sizeMultiple`, so scaling keeps it). Cause:
 *    src/policies/adjust-parameters.ts `adjustResolution` always rebuilds `${w}x${h}`, and
 *    src/degradation/rewrite-request.ts compares the result with the written value (JSON / text), so a respelling
 *    of an unchanged size counts as a change.
 * 2. docs/degradation.md "So is a body sent as a stream (an `init.body` stream with `duplex: "half"`, or a
 *    `Request` body larger than `maxReplayBytes`): it goes once, as it is, unread". Observed: a `keepalive`
 *    `Request` whose JSON body is larger than `maxReplayBytes` is read whole and rewritten (`steps` 50 → 30 at
 *    `medium`). Cause: src/http/request/normalize-request.ts `readRequestBody` reads a keepalive body whole into
 *    bytes (docs/retry.md says so), and src/degradation/rewrite-request.ts asks `isReplayable(request.body)` (bytes:
 *    yes), not the entry's `replay.allowed` (false). Made exact in docs/degradation.md instead
 *    (docs/retry.md says a keepalive body is read whole; the call's other bodies over the limit held as bytes are
 *    rewritten too, and tests hold that), and the test asserts the rewrite.
 * 3. docs/degradation.md "per URL prefix (`match`, the longest wins, read as a chain's prefix is: both URLs as the
 *    URL parser reads them, whole path segments only …)". Observed: a `match` with a query,
 *    `https://g.test/v1?model=a`, is compared as a plain string prefix: it takes `…/v1?model=ab` (a parameter's
 *    value cut, as `…/v1` must not take `…/v1beta`) but not `…/v1/x?model=a`, which a chain whose endpoint is that
 *    same URL takes (a chain's prefix is its URL before the query). Cause: src/degradation/rule-picker.ts keeps the
 *    match's query in the prefix, and `restAfter` lets any text follow a prefix holding `?`. Made exact in
 *    docs/degradation.md instead (an earlier run holds `…/v1?model=` taking `…/v1?model=sd`,
 *    test/security/session-nine-attack.test.ts), and the test asserts the sentence.
 * 4. docs/degradation.md "in browsers, `navigator.connection` and `navigator.deviceMemory` set a floor (slow-2g →
 *    minimal; …)". Observed: with `navigator.connection.effectiveType` "slow-2g", `health().degradationLevel` is
 *    "full" and the first call goes out at `full` (body untouched, level header `full`); only the evaluation after
 *    it settles applies the floor. Cause: src/degradation/graceful-degradation.ts reads the floor in `evaluate()`
 *    only, which runs as calls settle; the state starts at `full`. Made exact in docs/degradation.md instead (the
 *    floor is read when a call settles; the first call goes at the level before it), and the test asserts that.
 * 5. docs/cloudflare.md "answers `503` …, `504` on a timeout and `502` when no endpoint answered otherwise (…), and
 *    adds `x-resilience-endpoint` (…), `x-resilience-attempts` and `x-degradation-level` to responses". Observed: the
 *    proxy's own 502 (upstream unreachable) carries none of the three, so a client cannot tell the level its
 *    failed call went at. Cause: src/cloudflare/resilient-proxy.ts sets them only on a response from the layer; the
 *    catch branch returns `failureResponse(error, …)` as it is. Made exact in docs/cloudflare.md instead (the
 *    headers go on the upstreams' answers; the proxy's own 502/503/504 carry none), and the test asserts that.
 *
 * Held (plain `it`):
 * - without the stage: `resilience.degradation` is undefined, `health().degradationLevel` "full", the body untouched;
 * - the table (five levels, percentages, multipliers, scales, caps, tiers, model steps) as `defaultLevels` and the
 *   `medium` example of `adjust`; two rules without `match`, or two `match`es the parser reads alike, are a
 *   `ConfigError`; each layer a stage joins gets its own level;
 * - a string body labelled `text/plain` and a `Request` input's JSON body (`text/plain;charset=UTF-8` by default)
 *   are rewritten exactly; a form body naming `steps` is not;
 * - a retry whose level moves to `minimal` after the first attempt sends the second at the starting level, body and
 *   header, and the info names it;
 * - a chain: the caller's URL selects the rule, the spare's `transform` gets that body and the spare's own rule is
 *   not applied on top; the level header stays off the spare's origin; a hedge with the header named in
 *   `crossOriginHeaders` sends it to the spare;
 * - a followed 307 into another rule's prefix replays the body rewritten once;
 * - the ky client's POST; the proxy's successful answer names the level;
 * - the p95 trigger steps down one level per `stepInterval` once `minSamples` calls are in the window, a
 *   `degradation` event each; a trickle of clean calls lifts it after `restoreAfter`; `setLevel` pins against it.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { defaultLevels, degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Answer, header, hostFetch } from "../helpers/host-fetch.ts";

const ok: Answer = () => new Response("ok");
const BODY = '{"quality":1.0,"resolution":"1080p","steps":50,"model":"premium"}';
const AT_MEDIUM = '{"quality":0.8,"resolution":"720p","steps":30,"model":"standard"}';

function layerAt(level: "medium" | "full", options: Parameters<typeof degradation>[0] = {}, extra = {}) {
  const net = hostFetch({ "g.test": ok, "s.test": ok });
  const layer = createResilience({
    fetch: net.fetch,
    retry: false,
    breaker: false,
    ...extra,
    degradation: degradation({ browserSignals: false, levelHeader: "x-level", ...options }),
  });
  layer.degradation.setLevel(level);
  return { net, layer };
}

describe("degrade twentysix: defects", () => {
  it('1. degradation.md "Only the values a rule changes are rewritten": a WxH size the level keeps', async () => {
    const { net, layer } = layerAt("medium", {
      rules: [
        { params: { resolution: "size" } },
        { match: "https://g.test/q", params: { resolution: { query: "size" } } },
        { match: "https://g.test/h", params: { resolution: { header: "x-size" } } },
      ],
    });
    await layer.fetch("https://g.test/b", { method: "POST", body: '{"size":"8 x 8","seed":1}' });
    await layer.fetch("https://g.test/q?size=4X4&a=1");
    await layer.fetch("https://g.test/h", { headers: { "x-size": "8×8" } });
    // Observed: '{"size":"8x8","seed":1}', "…?size=4x4&a=1", "8x8".
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-size") ?? null])).toEqual([
      ["https://g.test/b", '{"size":"8 x 8","seed":1}', null],
      ["https://g.test/q?size=4X4&a=1", "", null],
      ["https://g.test/h", "", "8×8"],
    ]);
  });

  it('2. degradation.md "a `Request` body larger than `maxReplayBytes` that is not `keepalive`" (as it says now): a keepalive one is rewritten', async () => {
    const { net, layer } = layerAt("medium", {}, { maxReplayBytes: 16 });
    const res = await layer.fetch(
      new Request("https://g.test/v1", {
        method: "POST",
        keepalive: true,
        body: BODY,
        headers: { "content-type": "application/json" },
      }),
    );
    expect([header(net.log[0], "x-level"), getResilienceInfo(res)?.degradationLevel]).toEqual(["medium", "medium"]);
    // degradation.md (as it says now): a keepalive Request body is read whole and rewritten as any body in memory.
    expect(net.log[0]?.text).toBe(AT_MEDIUM);
  });

  it('3. degradation.md "`match` … read as a chain\'s prefix is … whole path segments only": a match with a query', async () => {
    const urls = ["https://g.test/v1?model=a", "https://g.test/v1/x?model=a"];
    // A chain whose first endpoint is that same URL takes both.
    const chainNet = hostFetch({ "g.test": ok, "s.test": ok });
    const chained = createResilience({
      fetch: chainNet.fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://g.test/v1?model=a" },
            { name: "s", url: "https://s.test/v1" },
          ],
        },
      ]),
    });
    const served = [];
    for (const url of urls) served.push(getResilienceInfo(await chained.fetch(url))?.endpoint);
    expect(served).toEqual(["p", "p"]);
    // degradation.md (as it says now): whole segments up to the query, text from there: `?model=a` takes
    // `?model=ab`, not the path below.
    const { net, layer } = layerAt("medium", {
      rules: [{ match: "https://g.test/v1?model=a", params: { steps: "steps" } }],
    });
    for (const url of [...urls, "https://g.test/v1?model=ab"])
      await layer.fetch(url, { method: "POST", body: '{"steps":50}' });
    expect(net.log.map((r) => r.text)).toEqual(['{"steps":30}', '{"steps":50}', '{"steps":30}']);
  });

  it('4. degradation.md "`navigator.connection` … set a floor (slow-2g → minimal …)": the first call', async () => {
    const nav = globalThis.navigator as unknown as Record<string, unknown>;
    Object.defineProperty(nav, "connection", { value: { effectiveType: "slow-2g" }, configurable: true });
    try {
      const net = hostFetch({ "g.test": ok });
      const layer = createResilience({
        fetch: net.fetch,
        retry: false,
        degradation: degradation({ levelHeader: "x-level" }),
      });
      const before = layer.health().degradationLevel;
      const first = await layer.fetch("https://g.test/v1", { method: "POST", body: BODY });
      const second = await layer.fetch("https://g.test/v1", { method: "POST", body: BODY });
      // degradation.md (since): the floor is read as the signals are, when a call settles: the first call goes
      // at the level before it, the next at the floor.
      expect([before, getResilienceInfo(first)?.degradationLevel, header(net.log[0], "x-level")]).toEqual([
        "full",
        "full",
        "full",
      ]);
      expect([getResilienceInfo(second)?.degradationLevel, header(net.log[1], "x-level")]).toEqual([
        "minimal",
        "minimal",
      ]);
    } finally {
      delete nav.connection;
    }
  });

  it('5. cloudflare.md "answers … `502` … and adds … `x-degradation-level` to responses": the proxy\'s own 502', async () => {
    const net = hostFetch({}); // every host unreachable
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: "https://g.test/v1" }],
      resilience: { fetch: net.fetch, retry: false, degradation: degradation({ browserSignals: false }) },
    });
    const res = await proxy.fetch(new Request("https://p.example/gen/x"), {}, { waitUntil() {} });
    expect(res.status).toBe(502);
    // cloudflare.md (since): the headers go on the upstreams' answers; the proxy's own 502 carries none.
    expect(
      ["x-degradation-level", "x-resilience-attempts", "x-resilience-endpoint"].map((h) => res.headers.get(h)),
    ).toEqual([null, null, null]);
  });
});

describe("degrade twentysix: held", () => {
  it("without the stage: no handle, health says full, the body goes untouched", async () => {
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({ fetch: net.fetch, retry: false });
    const res = await layer.fetch("https://g.test/v1", { method: "POST", body: BODY });
    expect([layer.degradation, layer.health().degradationLevel, getResilienceInfo(res)?.degradationLevel]).toEqual([
      undefined,
      "full",
      "full",
    ]);
    expect(net.log[0]?.text).toBe(BODY);
  });

  it("the table and the medium example; rule conflicts are ConfigErrors; each layer has its own level", () => {
    const row = (n: keyof typeof defaultLevels) => {
      const l = defaultLevels[n];
      return [l.percentage, l.qualityMultiplier, l.resolutionScale, l.maxSteps, l.features.join("+"), l.modelStep];
    };
    expect((["full", "high", "medium", "low", "minimal"] as const).map(row)).toEqual([
      [100, 1.0, 1.0, null, "all", 0],
      [80, 0.9, 0.95, null, "core+enhancements", 0],
      [60, 0.8, 0.9, 30, "core", 1],
      [40, 0.6, 0.8, 20, "basic", 2],
      [20, 0.4, 0.7, 10, "essential", 2],
    ]);
    const stage = degradation({ browserSignals: false });
    const a = createResilience({ degradation: stage });
    const b = createResilience({ degradation: stage });
    a.degradation.setLevel("medium");
    expect(a.degradation.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium", x: 1 })).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
      x: 1,
    });
    expect([b.degradation.currentLevel().name, b.health().degradationLevel]).toEqual(["full", "full"]);
    expect(() => degradation({ rules: [{ params: {} }, { params: { steps: "s" } }] })).toThrow(ConfigError);
    expect(() =>
      degradation({
        rules: [
          { match: "https://g.test", params: {} },
          { match: "HTTPS://G.test:443/", params: {} },
        ],
      }),
    ).toThrow(ConfigError);
  });

  it("a string body labelled text/plain and a Request input's JSON body are rewritten; a form is not", async () => {
    const { net, layer } = layerAt("medium");
    await layer.fetch("https://g.test/a", { method: "POST", body: BODY, headers: { "content-type": "text/plain" } });
    const res = await layer.fetch(new Request("https://g.test/b", { method: "POST", body: BODY }));
    await layer.fetch("https://g.test/c", { method: "POST", body: new URLSearchParams({ steps: "50" }) });
    expect(net.log.map((r) => [r.text, header(r, "x-level")])).toEqual([
      [AT_MEDIUM, "medium"],
      [AT_MEDIUM, "medium"],
      ["steps=50", "medium"],
    ]);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
  });

  it("a retry keeps the level the call started at, body, header and info", async () => {
    let moved = false;
    const net = hostFetch({
      "g.test": (_r, n) => (n === 1 ? new Response("", { status: 503 }) : new Response("ok")),
    });
    const layer = createResilience({
      fetch: async (input, init) => {
        const res = await net.fetch(input, init);
        if (!moved) {
          moved = true;
          layer.degradation.setLevel("minimal");
        }
        return res;
      },
      clock: new TestClock(),
      retry: { initialDelay: 0, maxDelay: 0, jitter: "none" },
      breaker: false,
      degradation: degradation({ browserSignals: false, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const res = await layer.fetch("https://g.test/v1", { method: "PUT", body: BODY });
    expect(layer.degradation.currentLevel().name).toBe("minimal");
    expect(net.log.map((r) => [r.text, header(r, "x-level")])).toEqual([
      [AT_MEDIUM, "medium"],
      [AT_MEDIUM, "medium"],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, degradationLevel: "medium" });
  });

  it("a chain: the caller's rule once, the spare's transform reshapes it, its own rule is not applied", async () => {
    const net = hostFetch({ "a.test": () => new Response("", { status: 503 }), "b.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      breaker: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.test/v1" },
            { name: "b", url: "https://b.test/v2", transform: (r) => ({ ...r, body: { input: r.body ?? {} } }) },
          ],
        },
      ]),
      degradation: degradation({
        browserSignals: false,
        levelHeader: "x-level",
        rules: [
          { match: "https://a.test/v1", params: { steps: "steps" } },
          { match: "https://b.test/v2", params: { steps: "input.steps", model: "input.model" } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    const res = await layer.fetch(new Request("https://a.test/v1/gen", { method: "PUT", body: BODY }));
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level") ?? null])).toEqual([
      ["https://a.test/v1/gen", '{"quality":1.0,"resolution":"1080p","steps":30,"model":"premium"}', "medium"],
      ["https://b.test/v2/gen", '{"input":{"quality":1,"resolution":"1080p","steps":30,"model":"premium"}}', null],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
  });

  it("a hedge with the level header in crossOriginHeaders sends it to the spare, the body rewritten once", async () => {
    const clock = new TestClock();
    const net = hostFetch({ "g.test": () => new Promise<Response>(() => {}), "s.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      clock,
      crossOriginHeaders: ["x-level"],
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: "https://g.test/c" },
            { name: "s", url: "https://s.test/c" },
          ],
        },
      ]),
      degradation: degradation({ browserSignals: false, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const pending = layer.fetch(new Request("https://g.test/c/j", { method: "PUT", body: BODY }));
    await clock.waitForTimers();
    await clock.advance(10);
    const res = await pending;
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level")])).toEqual([
      ["https://g.test/c/j", AT_MEDIUM, "medium"],
      ["https://s.test/c/j", AT_MEDIUM, "medium"],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "s", degradationLevel: "medium" });
  });

  it("a followed 307 into another rule's prefix replays the body rewritten once", async () => {
    const net = hostFetch({
      "g.test": (r) =>
        r.url.endsWith("/a") ? new Response(null, { status: 307, headers: { location: "/b" } }) : new Response("ok"),
    });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      degradation: degradation({
        browserSignals: false,
        rules: [
          { match: "https://g.test/a", params: { steps: "steps" } },
          { match: "https://g.test/b", params: { model: "model", quality: "quality" } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    await layer.fetch("https://g.test/a", { method: "POST", body: BODY, redirect: "follow" });
    const once = '{"quality":1.0,"resolution":"1080p","steps":30,"model":"premium"}';
    expect(net.log.map((r) => [r.url, r.text])).toEqual([
      ["https://g.test/a", once],
      ["https://g.test/b", once],
    ]);
  });

  it("the ky client's POST and the proxy's answer carry the level", async () => {
    const { net, layer } = layerAt("medium");
    const ky = createClient({ resilience: layer });
    const posted = await ky.post("https://g.test/k", { json: { steps: 50, model: "premium", seed: 7 } });
    expect(getResilienceInfo(posted)?.degradationLevel).toBe("medium");
    expect([net.log[0]?.text, header(net.log[0], "x-level")]).toEqual([
      '{"steps":30,"model":"standard","seed":7}',
      "medium",
    ]);
    const proxyNet = hostFetch({ "g.test": ok });
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: "https://g.test/v1" }],
      resilience: { fetch: proxyNet.fetch, retry: false, degradation: degradation({ browserSignals: false }) },
    });
    const res = await proxy.fetch(new Request("https://p.example/gen/x"), {}, { waitUntil() {} });
    expect([res.status, res.headers.get("x-degradation-level")]).toEqual([200, "full"]);
  });

  it("p95 trigger: one step per stepInterval once minSamples are in; recovery after restoreAfter; setLevel pins", async () => {
    const clock = new TestClock();
    let latency = 31_000;
    const net = hostFetch({
      "g.test": async () => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, latency));
        return new Response("ok");
      },
    });
    const layer = createResilience({
      fetch: net.fetch,
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ browserSignals: false, window: 3_600_000, restoreAfter: 60_000 }),
    });
    const events = recordEvents(layer);
    const call = async (advance: number) => {
      const pending = layer.fetch("https://g.test/v1");
      await clock.advance(advance);
      await pending;
    };
    for (let i = 0; i < 19; i++) await call(31_000);
    expect(layer.health().degradationLevel).toBe("full");
    await call(31_000);
    expect(layer.health().degradationLevel).toBe("high");
    await call(31_000);
    expect(layer.health().degradationLevel).toBe("medium");
    const changes = events.of("degradation");
    expect(changes.map((e) => [e.from, e.to, e.percentage])).toEqual([
      ["full", "high", 80],
      ["high", "medium", 60],
    ]);
    // Clean, fast calls: the slow ones must leave the window first (p95 of the calls it holds).
    latency = 10;
    await clock.advance(3_700_000);
    await call(10); // settles at H: healthy from here
    await clock.advance(58_990);
    await call(10); // H + 59 s: held
    expect(layer.health().degradationLevel).toBe("medium");
    await clock.advance(990);
    await call(10); // H + 60 s: one level up
    expect(layer.health().degradationLevel).toBe("high");
    layer.degradation.setLevel("low");
    for (let i = 0; i < 3; i++) {
      await clock.advance(61_000);
      await call(10);
    }
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "low", pinned: true });
  });
});
