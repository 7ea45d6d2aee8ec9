/**
 * Outside-in attack on graceful degradation (docs/degradation.md, README.md's degradation lines, docs/options.md's
 * `degradation.…` rows, the `degradation` event and `health()` of docs/health-and-events.md).
 *
 * Docs:
 * - docs/degradation.md: "`resilience.fetch` applies the level to requests before they leave"; "the other bytes of a
 *   JSON body (… and its kind: a string, bytes or a Blob of the same type …; a `content-length` that came with the
 *   old body, as the Worker proxy forwards the client's, is dropped for fetch to count the new one)"; "A call that
 *   goes down a fallback chain is rewritten once, by the rule its own URL selects, before the chain: every endpoint
 *   gets that request"; "each place of a repeated query parameter is adjusted from its own value; a header's value
 *   is read whole first, so a `features` list … is one value"; "`levelHeader: "x-degradation-level"` sends the
 *   level's name, in place of any value the request had for that header".
 * - docs/degradation.md: "evaluated at most once a second as calls settle (no timers, so levels move only while
 *   traffic flows)"; "once `minSamples` (20, at most 256) calls are in it"; "a failed call is one a 5xx or 429
 *   answered or an error ended, as in `health().errorRate`"; "Stepping up needs the signals to be clearly healthy
 *   (…) for a whole `restoreAfter` (60 s), one level at a time"; "`configureTriggers({ errorRate, responseTime,
 *   memoryUsage, cpuUsage })`"; "`degradation(options)` checks its options at once
 *   (`degradation.levels.medium.maxSteps` …)".
 * - docs/health-and-events.md: "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason` …)";
 *   "`debugInfo()` adds … the degradation level and its window".
 * - docs/options.md: "`degradation.levelHeader` | none | header carrying the applied level".
 *
 * How: root (`createResilience`, `getResilienceInfo`), ./degradation (`degradation`), ./fallback (`fallback`), ./ky
 * (`createClient`), ./cloudflare (`resilientProxy`, called directly in Node with `Request`s), ./testing
 * (`TestClock`); two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) recording the exact bytes.
 *
 * Paths: plain call (string URL, `init.body` as offset `Uint8Array`/`DataView` views), `Request` input, the ky
 * client (`json` + `searchParams` + a header), a chain whose spare is a `respond` endpoint, the Worker proxy
 * (upstream route, query + header + body rules, level reached by its own triggers), trigger evaluation and recovery
 * on a `TestClock`, bulkhead refusals and total timeouts as failed samples, `configureTriggers`, bad options.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found on these paths.
 *
 * Held (plain `it`):
 * - A JSON body given as a `Uint8Array` or `DataView` over part of a larger buffer (garbage around it) is read
 *   from its own bytes only, rewritten at `medium` (`steps` 30, `quality` 0.8) with a `content-length` counting the
 *   new bytes; a view the level keeps goes as its own 12 bytes.
 * - 25 failing calls settling at one instant are one evaluation (with 1 sample): the level stays `full`; a call
 *   999 ms later does not evaluate, one 1000 ms later steps to `high`. The event has exactly the four documented
 *   keys, agreeing with `currentLevel()`, `health()` and `debugInfo().degradation` (27 samples, rate 1).
 * - Three `degrade()` calls, then one good call a second (`restoreAfter` 20 s): up one level at 21, 41 and 61 s
 *   (each a whole `restoreAfter` after the last), reason "healthy", percentages 60/80/100; never two at once.
 * - A `BulkheadRejectedError` and a `timeout.total` `TimeoutError` are failed samples in the window, as in
 *   `health().errorRate` and the totals (p95 5000 ms for the timed-out call).
 * - `configureTriggers` keeps unnamed thresholds, a lower `errorRate` steps down at the next evaluation with a
 *   reason naming it; bad triggers and 14 bad `degradation(…)` options are `ConfigError`s naming their path.
 * - A chain whose spare is `respond`: the spare sees the request rewritten once (query, header, nested body path),
 *   with the level header, for a string call, a `Request` and the ky client; the first endpoint got the same bytes;
 *   `degradationLevel` `medium`, `fromFallback`.
 * - Query/header `features`: each place of a repeated query parameter filtered from its own value; a header sent
 *   twice read whole (`core, essential` → `essential`); a quality header sent twice adjusted value by value.
 * - `resilientProxy`: at `full` the level header replaces the client's own (`bogus` → `full`) with nothing else
 *   touched; after its triggers reach `medium`, `steps` in the query → 30 (`x=a%2Fb` kept), `x-model` → `standard`,
 *   a JSON body's `steps` → 30 with a right `content-length`, and `x-degradation-level: medium` on the answers.
 *
 * Docs-silent (not pinned):
 * - `models` with a name twice in one ladder (`["a","b","a"]`) or in two ladders is taken: at `medium` `b` moves
 *   "down" to `a`, the ladder's best; the first ladder holding a name wins.
 * - A `match` that is relative (`/v1`) is taken in Node, where no request URL can be relative.
 * - `setLevel` to the level it is at "moves nothing" for the pace of steps, yet `currentLevel().since` becomes now
 *   and `reason` the new one (no event).
 * - A query `features` place that keeps no tier is sent empty (`f=core` → `f=` at `minimal`), not dropped.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const a = httpUpstream();
serveDuringFile(a);
const json = { "content-type": "application/json" };
const quiet = { browserSignals: false, triggers: { cpuUsage: 1 } } as const;

describe("bodies given as views over a larger buffer", () => {
  it("are read from their own bytes, rewritten, and counted anew", async () => {
    const layer = createResilience({ retry: false, degradation: degradation({ browserSignals: false }) });
    layer.degradation.setLevel("medium");
    const text = '{"steps":50,"quality":1}';
    const buf = new TextEncoder().encode(`GARBAGE${text}TRAILING`).buffer;
    await layer.fetch(`${a.base}/u8`, { method: "POST", headers: json, body: new Uint8Array(buf, 7, text.length) });
    await layer.fetch(`${a.base}/dv`, { method: "POST", headers: json, body: new DataView(buf, 7, text.length) });
    const kept = new TextEncoder().encode('XX{"steps":20}YY');
    const res = await layer.fetch(`${a.base}/kept`, { method: "POST", headers: json, body: kept.subarray(2, 14) });
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    const want = '{"steps":30,"quality":0.8}';
    expect(a.hits.map((h) => [h.path, h.headers["content-length"], h.body])).toEqual([
      ["/u8", String(want.length), want],
      ["/dv", String(want.length), want],
      ["/kept", "12", '{"steps":20}'],
    ]);
  });
});

describe("trigger evaluation and recovery on a TestClock", () => {
  it("evaluates at most once a second: 25 failures at one instant move nothing until a call 1 s later", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: false, degradation: degradation(quiet) });
    const events: Array<Record<string, unknown>> = [];
    layer.on("degradation", (e) => {
      const c = layer.degradation.currentLevel();
      events.push({ ...e, at: clock.now(), keys: Object.keys(e).sort(), now: c.name, health: layer.health() });
    });
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("x");
    });
    for (let i = 0; i < 25; i++) await layer.fetch(`${a.base}/bad`);
    expect(layer.health().degradationLevel).toBe("full");
    expect(layer.debugInfo().degradation?.window).toEqual({ samples: 25, errorRate: 1, p95: 0 });
    await clock.advance(999);
    await layer.fetch(`${a.base}/bad`);
    expect(layer.health().degradationLevel).toBe("full");
    expect(events).toEqual([]);
    await clock.advance(1);
    await layer.fetch(`${a.base}/bad`);
    expect(events).toHaveLength(1);
    const [e] = events as [Record<string, unknown> & { health: { degradationLevel: string } }];
    expect(e.keys).toEqual(["from", "percentage", "reason", "to"]);
    expect([e.from, e.to, e.percentage, e.at, e.now, e.health.degradationLevel]).toEqual([
      "full",
      "high",
      80,
      1000,
      "high",
      "high",
    ]);
    expect(e.reason).toBe("error rate 1.00 > 0.1");
    expect(layer.debugInfo().degradation).toMatchObject({ name: "high", percentage: 80, since: 1000 });
    expect(layer.debugInfo().degradation?.window).toMatchObject({ samples: 27, errorRate: 1 });
  });

  it("steps up one level per whole restoreAfter of healthy calls after manual steps down", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ ...quiet, restoreAfter: 20_000 }),
    });
    const seen: string[] = [];
    layer.on("degradation", (e) => seen.push(`${clock.now()} ${e.from}>${e.to} ${e.percentage} ${e.reason}`));
    layer.degradation.degrade("x");
    layer.degradation.degrade("y");
    layer.degradation.degrade("z");
    const levels: string[] = [];
    for (let t = 1; t <= 80; t++) {
      await clock.advance(1000);
      const res = await layer.fetch(`${a.base}/ok`);
      levels.push(getResilienceInfo(res)?.degradationLevel ?? "?");
    }
    expect(seen).toEqual([
      "0 full>high 80 x",
      "0 high>medium 60 y",
      "0 medium>low 40 z",
      "21000 low>medium 60 healthy",
      "41000 medium>high 80 healthy",
      "61000 high>full 100 healthy",
    ]);
    // Each call goes at the level it found when it started.
    expect(levels.slice(0, 21).every((l) => l === "low")).toBe(true);
    expect([levels[21], levels[41], levels[61], levels[79]]).toEqual(["medium", "high", "full", "full"]);
  });

  it("counts a bulkhead refusal and a total timeout as failed samples, as health() does", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 100 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      timeout: { total: 5000 },
      degradation: degradation(quiet),
    });
    const held: Array<() => void> = [];
    a.on((hit) => {
      if (hit.path === "/hold") held.push(() => hit.res.end("x"));
      else hit.res.end("ok");
    });
    const first = layer.fetch(`${a.base}/hold`).then(
      () => "resolved",
      (e: Error) => e.name,
    );
    await a.nth(1);
    const second = await rejection(layer.fetch(`${a.base}/other`));
    expect((second as Error).name).toBe("BulkheadRejectedError");
    expect(layer.debugInfo().degradation?.window).toEqual({ samples: 1, errorRate: 1, p95: 0 });
    await clock.advance(5000);
    expect(await first).toBe("TimeoutError");
    expect(layer.debugInfo().degradation?.window).toEqual({ samples: 2, errorRate: 1, p95: 5000 });
    expect(layer.health().errorRate).toBe(1);
    expect(layer.debugInfo().totals).toMatchObject({ calls: 2, failures: 2 });
    for (const end of held) end();
  });

  it("configureTriggers keeps unnamed thresholds and a lower errorRate steps down at the next evaluation", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ ...quiet, minSamples: 10, triggers: { errorRate: 0.5, cpuUsage: 1 } }),
    });
    layer.degradation.configureTriggers({ responseTime: 60_000 });
    a.on((hit) => {
      hit.res.statusCode = hit.path === "/bad" ? 500 : 200;
      hit.res.end("x");
    });
    const reasons: string[] = [];
    layer.on("degradation", (e) => reasons.push(e.reason));
    // 3 of 10 failing: 0.3 is below the 0.5 kept by the partial configureTriggers.
    for (let i = 0; i < 10; i++) await layer.fetch(`${a.base}/${i < 3 ? "bad" : "good"}`);
    await clock.advance(1000);
    await layer.fetch(`${a.base}/good`);
    expect(layer.health().degradationLevel).toBe("full");
    layer.degradation.configureTriggers({ errorRate: 0.2 });
    await clock.advance(1000);
    await layer.fetch(`${a.base}/good`);
    expect(layer.health().degradationLevel).toBe("high");
    expect(reasons).toEqual(["error rate 0.25 > 0.2"]);
    for (const [bad, path] of [
      [{ errorRate: 2 }, "degradation.triggers.errorRate"],
      [{ responseTime: 0 }, "degradation.triggers.responseTime"],
      [{ cpuUsage: Number.NaN }, "degradation.triggers.cpuUsage"],
      [{ bogus: 1 }, "degradation.triggers"],
      [null, "degradation.triggers"],
    ] as const) {
      const error = thrown(() => layer.degradation.configureTriggers(bad as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message.startsWith(`${path}:`)).toBe(true);
    }
    // A refused call changed nothing.
    expect(layer.health().degradationLevel).toBe("high");
  });
});

describe("bad options are refused at once, naming the path", () => {
  const cases: Array<[string, unknown]> = [
    ["degradation.rules.0.params.steps.query", { rules: [{ params: { steps: { query: "" } } }] }],
    ["degradation.rules.0.params.steps.header", { rules: [{ params: { steps: { header: "x y" } } }] }],
    ["degradation.rules.0.params.steps", { rules: [{ params: { steps: "a..b" } }] }],
    ["degradation.rules.0.params.steps", { rules: [{ params: { steps: "x.constructor" } }] }],
    ["degradation.rules.0.params", { rules: [{ params: { stepz: "x" } }] }],
    ["degradation.rules.0.params", { rules: [{ params: { steps: "v", quality: { body: "v" } } }] }],
    ["degradation.rules.0.match", { rules: [{ match: "http://a.example/v1#x", params: {} }] }],
    ["degradation.models.0", { models: [[]] }],
    ["degradation.resolutions.0", { resolutions: ["abc"] }],
    ["degradation.levels.medium", { levels: { medium: { maxStep: 30 } } }],
    ["degradation.levels.low.qualityMultiplier", { levels: { low: { qualityMultiplier: 0 } } }],
    ["degradation.minSamples", { minSamples: 257 }],
    ["degradation.restoreAfter", { restoreAfter: Number.POSITIVE_INFINITY }],
    ["degradation.levelHeader", { levelHeader: "Authorization: Bearer sekrit-token" }],
  ];
  for (const [path, options] of cases) {
    it(`${path} ← ${JSON.stringify(options).slice(0, 70)}`, () => {
      const error = thrown(() => degradation(options as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message.startsWith(`${path}:`)).toBe(true);
      expect((error as Error).message).not.toContain("sekrit");
    });
  }
});

describe("a chain whose spare answers with respond", () => {
  it("hands the spare the request rewritten once, on every entry", async () => {
    const seen: string[] = [];
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            {
              name: "r",
              respond: (req) => {
                const h = (n: string) => req.headers.get(n);
                seen.push(`${new URL(req.url).search} ${h("x-level")} ${h("x-model")} ${JSON.stringify(req.body)}`);
                return new Response("cached");
              },
            },
          ],
        },
      ]),
      degradation: degradation({
        browserSignals: false,
        levelHeader: "x-level",
        rules: [
          { params: { steps: "steps", quality: "quality" } },
          {
            match: `${a.base}/v1/q`,
            params: { steps: { query: "steps" }, model: { header: "x-model" }, quality: "p.q" },
          },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("x");
    });
    const body = '{"p":{"q":1},"steps":50}';
    const r1 = await layer.fetch(`${a.base}/v1/q?steps=50`, {
      method: "POST",
      headers: { ...json, "x-model": "premium" },
      body,
    });
    const r2 = await layer.fetch(
      new Request(`${a.base}/v1/x`, { method: "POST", headers: json, body: '{"quality":1,"steps":50}' }),
    );
    const r3 = await createClient({ resilience: layer }).post(`${a.base}/v1/q`, {
      json: { p: { q: 1 }, steps: 50 },
      searchParams: { steps: 50 },
      headers: { "x-model": "premium" },
    });
    expect(seen).toEqual([
      '?steps=30 medium standard {"p":{"q":0.8},"steps":50}',
      ' medium null {"quality":0.8,"steps":30}',
      '?steps=30 medium standard {"p":{"q":0.8},"steps":50}',
    ]);
    expect(a.hits.map((h) => `${h.path} ${h.headers["x-level"]} ${h.headers["x-model"]} ${h.body}`)).toEqual([
      '/v1/q?steps=30 medium standard {"p":{"q":0.8},"steps":50}',
      '/v1/x medium undefined {"quality":0.8,"steps":30}',
      '/v1/q?steps=30 medium standard {"p":{"q":0.8},"steps":50}',
    ]);
    for (const r of [r1, r2, r3]) {
      expect(await r.text()).toBe("cached");
      expect(getResilienceInfo(r)).toMatchObject({ endpoint: "r", fromFallback: true, degradationLevel: "medium" });
    }
  });
});

describe("features and numbers in queries and headers", () => {
  it("adjusts each query place from its own value and reads a header sent twice whole", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({
        browserSignals: false,
        rules: [
          { match: `${a.base}/q`, params: { features: { query: "f" }, quality: { query: "q" } } },
          { match: `${a.base}/h`, params: { features: { header: "x-f" }, quality: { header: "x-q" } } },
        ],
      }),
    });
    layer.degradation.setLevel("minimal");
    await layer.fetch(`${a.base}/q?f=core&f=essential&f=core,essential&q=1&q=&q=abc`);
    await layer.fetch(`${a.base}/h`, { headers: { "x-f": "core, essential", "x-q": "1" } });
    await layer.fetch(`${a.base}/h`, {
      headers: [
        ["x-f", "core"],
        ["x-f", "essential"],
        ["x-q", "1"],
        ["x-q", "0.5"],
      ],
    });
    await layer.fetch(`${a.base}/h`, { headers: { "x-f": "essential, essential2" } });
    expect(a.hits.map((h) => `${h.path} ${h.headers["x-f"]} ${h.headers["x-q"]}`)).toEqual([
      "/q?f=&f=essential&f=essential&q=0.4&q=&q=abc undefined undefined",
      "/h essential 0.4",
      "/h essential 0.4, 0.2",
      "/h essential undefined",
    ]);
  });
});

describe("the Worker proxy called directly", () => {
  it("sends the level header at full in place of the client's, and rewrites once its triggers reach medium", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: `${a.base}/v1` }],
      resilience: {
        clock,
        retry: false,
        breaker: false,
        degradation: degradation({
          ...quiet,
          minSamples: 2,
          stepInterval: 0,
          levelHeader: "x-level",
          rules: [
            { params: { steps: "steps" } },
            { match: `${a.base}/v1/q`, params: { steps: { query: "steps" }, model: { header: "x-model" } } },
          ],
        }),
      },
    });
    a.on((hit) => {
      hit.res.statusCode = hit.path.includes("bad") ? 500 : 200;
      hit.res.end("x");
    });
    const env = {};
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const call = (path: string, init?: RequestInit) =>
      proxy.fetch(new Request(`http://w.example${path}`, init), env, ctx);
    const r0 = await call("/gen/q?steps=50", { headers: { "x-model": "premium", "x-level": "bogus" } });
    expect(r0.headers.get("x-degradation-level")).toBe("full");
    // Two failures, then one a second later (evaluated), then one more a second later: full → high → medium.
    await call("/gen/bad");
    await clock.advance(1000);
    await call("/gen/bad");
    await clock.advance(1000);
    await call("/gen/bad");
    const r1 = await call("/gen/q?steps=50&x=a%2Fb", { headers: { "x-model": "premium" } });
    const sent = '{"steps":50,"quality":1 , "seed": 12345678901234567890}';
    const r2 = await call("/gen/body", {
      method: "POST",
      headers: { ...json, "content-length": String(sent.length) },
      body: sent,
    });
    expect([r1.headers.get("x-degradation-level"), r2.headers.get("x-degradation-level")]).toEqual([
      "medium",
      "medium",
    ]);
    const rewritten = '{"steps":30,"quality":1 , "seed": 12345678901234567890}';
    expect(a.hits.map((h) => `${h.path} ${h.headers["x-level"]} ${h.headers["x-model"]} ${h.body}`)).toEqual([
      "/v1/q?steps=50 full premium ",
      "/v1/bad full undefined ",
      "/v1/bad full undefined ",
      "/v1/bad high undefined ",
      "/v1/q?steps=30&x=a%2Fb medium standard ",
      `/v1/body medium undefined ${rewritten}`,
    ]);
    expect(a.hits[5]?.headers["content-length"]).toBe(String(rewritten.length));
  });
});
