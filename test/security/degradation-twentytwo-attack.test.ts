/**
 * Outside-in attack on graceful degradation's numbers, at their edges. Docs: docs/degradation.md (all), the
 * `degradation.*` rows of docs/options.md, docs/health-and-events.md (`degradation` event, `degradationLevel`,
 * `debugInfo()`'s level window), docs/storycore-mapping.md (the five levels), docs/breakers.md "A clock set back".
 * How: root, `./degradation`, `./policies` (`nextLevel`), `./cloudflare`, `./ky`, `./fallback`, `./testing`
 * (TestClock); `hostFetch` stub transports; time moves only on the TestClock. Paths: `adjust`, plain call with a
 * JSON body, `Request` input, ky, the Worker proxy (`x-degradation-level`), a fallback chain, the generic machine.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a `WxH` size floors with a 1e-9 tolerance, `quality` keeps 12 significant digits):
 * 1. docs/degradation.md: "`resolution` scaled then snapped down the ladder (…), or a `WxH` size scaled and rounded
 *    down to a multiple of `sizeMultiple` (8)". At `minimal` (0.7) `adjust({ resolution: "720x720" })` gives
 *    "496x496" (720 × 0.7 = 504, a multiple of 8), "1440x1440" gives "1000x1000" (not 1008), and with
 *    `sizeMultiple: 1` "720x720" gives "503x503". `720 * 0.7` is 503.99999999999994 in floating point and is
 *    floored as it is (src/policies/adjust-parameters.ts, `adjustResolution`; the `NNNNp` branch has a 1e-9
 *    tolerance, the `WxH` branch none). 16 sizes up to 8192 are hit at 0.7 (720, 1360, 1440, 2640, 2720, …).
 * 2. The same sentence on the request path ("`resilience.fetch` applies the level to requests before they
 *    leave"): a JSON body's `"size":"720x720"` (plain call, `Request` input) and the Worker proxy's `?size=1440x720`
 *    go out as `496x496` / `1000x496`, with `x-degradation-level` naming the level.
 * 3. docs/degradation.md: "`quality` multiplied". `adjustQuality` rounds the product to 6 decimals: at `high`
 *    `adjust({ quality: 4e-7 })` is 0 (not 3.6e-7) and `0.123456789` becomes 0.111111 (not 0.1111111101): a
 *    positive quality is rounded to nothing (src/policies/adjust-parameters.ts, `adjustQuality`, `* 1e6`). (Noted
 *    as "suspicious" by levels-health-twenty-attack; pinned here as the doc states a plain multiplication.)
 *
 * Held (plain `it`):
 * - the table at `high`, `low`, `minimal` through `adjust` (0.8 × 0.9 → 0.72, ladder ends: 4320p → 2160p,
 *   360p and 240p stay, a 5x5 size stays), a `levels` override (`percentage`, `qualityMultiplier`, `maxSteps`,
 *   `modelStep`) shows in `adjust`, `currentLevel()` and the `degradation` event; `full` overrides leave requests
 *   untouched;
 * - `minSamples`: 19 failing calls in the window hold, the 20th steps down (event `from`/`to`/`percentage`/
 *   `reason`); `stepInterval`: a breach 9 999 ms after a step holds, at 10 000 ms steps; `restoreAfter`: 59 999 ms
 *   of health holds, 60 000 ms steps up one level; the 256-call cap (26 failures after 300 successes is a breach);
 * - a retried call (3 attempts) is one sample, a chain's served fallback a success, a call refused by an open
 *   breaker a failure, an aborted call none; `setLevel` pins against a breach, `restore()` unpins;
 * - `nextLevel` from `./policies` at `stepInterval` / `restoreAfter` exactly, and after a clock set back.
 *
 * Undocumented (not pinned; read from src, not tested): the browser floor only applies at an evaluation, so the first call on a slow-2g
 * device leaves at `full`; a manual `restore()`/`degrade()`/`setLevel()` resets the automatic `stepInterval`
 * pace (a breach right after `restore()` waits 10 s); the rolling window keeps a sample exactly `window` ms old;
 * a query/header `steps=0x40` is read as 64 (Number()) and capped; `WxH` with `×` or spaces is sent back as `x`.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { initialLevelState, type MachineSettings, nextLevel, type Signals } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch } from "../helpers/host-fetch.ts";

const JSON_CT = { "content-type": "application/json" };

/** A layer whose host g.test answers 500 while `mode.fail`, else 200. */
function setup(opts: DegradationOptions, extra: Record<string, unknown> = {}) {
  const clock = new TestClock();
  const mode = { fail: true };
  const net = hostFetch({
    "g.test": () => (mode.fail ? new Response("no", { status: 500 }) : new Response("ok")),
  });
  const layer = createResilience({
    fetch: net.fetch,
    clock,
    retry: false,
    breaker: false,
    ...extra,
    degradation: degradation({ browserSignals: false, ...opts }),
  });
  const events: Array<Record<string, unknown>> = [];
  layer.on("degradation", (e) => events.push({ ...e }));
  const calls = async (n: number) => {
    for (let i = 0; i < n; i++) await layer.fetch("https://g.test/x");
  };
  return { clock, mode, net, layer, events, calls };
}

describe("degradation numbers at their edges", () => {
  it("held: the level table through adjust at high, low, minimal, ladder ends", () => {
    const { layer } = setup({});
    const d = layer.degradation;
    const p = {
      quality: 0.8,
      resolution: "1080p",
      steps: 50,
      model: "premium",
      features: ["core", "enhancements", "x"],
    };
    d.setLevel("high");
    expect(d.adjust(p)).toEqual({ ...p, quality: 0.72, resolution: "720p", features: ["core", "enhancements"] });
    expect(d.adjust({ resolution: "4320p" }).resolution).toBe("2160p");
    expect(d.adjust({ resolution: "2160p" }).resolution).toBe("1440p");
    expect(d.adjust({ resolution: "1920x1080" }).resolution).toBe("1824x1024");
    d.setLevel("low");
    expect(d.adjust({ ...p, features: ["basic", "core"] })).toEqual({
      quality: 0.48,
      resolution: "720p",
      steps: 20,
      model: "basic",
      features: ["basic"],
    });
    d.setLevel("minimal");
    expect(d.adjust({ quality: 1, resolution: "360p", steps: 9, model: "standard" })).toEqual({
      quality: 0.4,
      resolution: "360p",
      steps: 9,
      model: "basic",
    });
    expect(d.adjust({ resolution: "240p" }).resolution).toBe("240p");
    expect(d.adjust({ resolution: "480p" }).resolution).toBe("360p");
    expect(d.adjust({ resolution: "5x5" }).resolution).toBe("5x5");
    d.setLevel("medium");
    expect(d.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" })).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
  });

  // docs/degradation.md: "or a `WxH` size scaled and rounded down to a multiple of `sizeMultiple` (8)"
  it("defect 1: a WxH size at minimal is 720 × 0.7 = 504 (a multiple of 8), not 496", () => {
    const { layer } = setup({});
    layer.degradation.setLevel("minimal");
    const one = setup({ sizeMultiple: 1 }).layer;
    one.degradation.setLevel("minimal");
    expect([
      layer.degradation.adjust({ resolution: "720x720" }).resolution,
      layer.degradation.adjust({ resolution: "1440x1440" }).resolution,
      one.degradation.adjust({ resolution: "720x720" }).resolution,
    ]).toEqual(["504x504", "1008x1008", "504x504"]);
  });

  it("defect 2: the request path rounds WxH the same way (JSON body, Request, Worker proxy query)", async () => {
    const { layer, net } = setup({ rules: [{ params: { resolution: "size" } }] });
    layer.degradation.setLevel("minimal");
    await layer.fetch("https://g.test/a", { method: "POST", headers: JSON_CT, body: '{"size":"720x720"}' });
    await layer.fetch(
      new Request("https://g.test/b", { method: "POST", headers: JSON_CT, body: '{"size":"1440x720","n":1}' }),
    );
    const clock = new TestClock();
    const pnet = hostFetch({ "u.test": () => new Response("no", { status: 500 }) });
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: "https://u.test/v1" }],
      resilience: {
        fetch: pnet.fetch,
        retry: false,
        clock,
        breaker: false,
        // `high` given minimal's scale (an override): one failing call steps there.
        degradation: degradation({
          minSamples: 1,
          stepInterval: 0,
          triggers: { errorRate: 0 },
          browserSignals: false,
          levels: { high: { resolutionScale: 0.7 } },
          rules: [{ params: { resolution: { query: "size" } } }],
        }),
      },
    });
    const ctx = { waitUntil() {} };
    await proxy.fetch(new Request("https://p.example/gen/x"), {}, ctx);
    const res = await proxy.fetch(new Request("https://p.example/gen/q?size=1440x720"), {}, ctx);
    expect(res.headers.get("x-degradation-level")).toBe("high");
    expect([net.log[0]?.text, net.log[1]?.text, pnet.log[1]?.url]).toEqual([
      '{"size":"504x504"}',
      '{"size":"1008x504","n":1}',
      "https://u.test/v1/q?size=1008x504",
    ]);
  });

  // docs/degradation.md: "`quality` multiplied"
  it("defect 3: quality is multiplied, not rounded to six decimals (4e-7 at high is not 0)", () => {
    const { layer } = setup({});
    layer.degradation.setLevel("high");
    expect(layer.degradation.adjust({ quality: 4e-7 }).quality).toBeGreaterThan(0);
    expect(layer.degradation.adjust({ quality: 0.123456789 }).quality).toBeCloseTo(0.1111111101, 9);
  });

  it("held: a levels override shows in adjust, currentLevel and the event; full's overrides leave requests", async () => {
    const { layer, net, events } = setup({
      levelHeader: "x-level",
      levels: {
        full: { qualityMultiplier: 0.5, maxSteps: 1 },
        high: { percentage: 85, qualityMultiplier: 0.75, maxSteps: 7, modelStep: 5 },
      },
    });
    const body = '{"quality":1,"steps":50}';
    await layer.fetch("https://g.test/a", { method: "POST", headers: JSON_CT, body });
    expect(layer.degradation.adjust({ quality: 1, steps: 50 })).toEqual({ quality: 0.5, steps: 1 });
    layer.degradation.degrade("gpu");
    await layer.fetch("https://g.test/a", { method: "POST", headers: JSON_CT, body });
    expect(net.log.map((r) => r.text)).toEqual([body, '{"quality":0.75,"steps":7}']);
    expect(layer.degradation.adjust({ model: "premium" }).model).toBe("basic");
    expect(layer.degradation.currentLevel().percentage).toBe(85);
    expect(events).toEqual([{ from: "full", to: "high", percentage: 85, reason: "gpu" }]);
  });

  it("held: 19 failing calls hold, the 20th in the window steps down one level", async () => {
    const { clock, layer, events, calls } = setup({});
    await calls(18); // t=0: the first call evaluates (1 sample)
    await clock.advance(1000);
    await calls(1); // 19 samples: too few
    expect(layer.health().degradationLevel).toBe("full");
    await clock.advance(1000);
    await calls(1); // 20
    expect(layer.health().degradationLevel).toBe("high");
    expect(events).toEqual([{ from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" }]);
    expect(layer.debugInfo().degradation?.window).toMatchObject({ samples: 20, errorRate: 1 });
  });

  it("held: stepInterval — a breach 9 999 ms after a step holds, at 10 000 ms it steps", async () => {
    for (const [wait, level] of [
      [9_999, "high"],
      [10_000, "medium"],
    ] as const) {
      const { clock, layer, calls } = setup({});
      await calls(20);
      await clock.advance(1000);
      await calls(1); // step at t=1000
      expect(layer.degradation.currentLevel()).toMatchObject({ name: "high", since: 1000 });
      await clock.advance(wait);
      await calls(1);
      expect(layer.health().degradationLevel).toBe(level);
    }
  });

  it("held: restoreAfter — 59 999 ms of health hold, 60 000 ms step up one level", async () => {
    for (const [wait, level] of [
      [59_999, "low"],
      [60_000, "medium"],
    ] as const) {
      const { clock, layer, mode, calls } = setup({});
      mode.fail = false;
      layer.degradation.setLevel("low");
      layer.degradation.restore(); // medium, unpinned
      layer.degradation.degrade(); // low
      await calls(1); // t=0: healthy, healthySince 0
      await clock.advance(wait);
      await calls(1);
      expect(layer.health().degradationLevel).toBe(level);
    }
  });

  it("held: the window holds at most the last 256 calls (26 failures after 300 successes is a breach)", async () => {
    const { clock, layer, mode, calls } = setup({});
    mode.fail = false;
    await calls(300);
    mode.fail = true;
    await calls(25);
    await clock.advance(1000);
    await calls(1);
    expect(layer.debugInfo().degradation?.window.samples).toBe(256);
    expect(layer.health().degradationLevel).toBe("high");
  });

  it("held: what the triggers count — one sample per retried call, a served fallback a success, abort none", async () => {
    const clock = new TestClock();
    let n = 0;
    const net = hostFetch({
      "g.test": () => new Response("x", { status: n++ < 2 ? 503 : 200 }),
      "a.test": () => new Response("x", { status: 503 }),
      "b.test": () => new Response("ok"),
    });
    const layer = createResilience({
      fetch: net.fetch,
      clock,
      retry: { initialDelay: 0, maxDelay: 0, jitter: "none" },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.test/v1" },
            { name: "b", url: "https://b.test/v1" },
          ],
        },
      ]),
      degradation: degradation({ browserSignals: false }),
    });
    await clock.run(layer.fetch("https://g.test/x"));
    const res = await clock.run(layer.fetch("https://a.test/v1/y"));
    expect(getResilienceInfo(res)?.fromFallback).toBe(true);
    const ac = new AbortController();
    const pending = layer.fetch("https://b.test/v1/z", { signal: ac.signal });
    ac.abort();
    await pending.catch(() => {});
    expect(layer.debugInfo().degradation?.window).toMatchObject({ samples: 2, errorRate: 0 });
  });

  it("held: a call refused by an open breaker is a failed sample (nothing sent)", async () => {
    const { layer, net } = setup({}, { breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 3; i++) await layer.fetch("https://g.test/x").catch(() => undefined);
    expect(net.log.length).toBe(2);
    expect(layer.debugInfo().degradation?.window).toMatchObject({ samples: 3, errorRate: 1 });
  });

  it("held: setLevel pins against a breach; restore() unpins and the triggers act again", async () => {
    const { clock, layer, calls } = setup({ stepInterval: 0 });
    layer.degradation.setLevel("high");
    await calls(25);
    await clock.advance(1000);
    await calls(1);
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "high", pinned: true });
    layer.degradation.restore();
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "full", pinned: false });
    await clock.advance(1000);
    await calls(1);
    expect(layer.health().degradationLevel).toBe("high");
  });

  it("held: ky and a Request input carry the table's numbers at low", async () => {
    const { layer, net, mode } = setup({ levelHeader: "x-level" });
    mode.fail = false;
    layer.degradation.setLevel("low");
    const ky = createClient({ resilience: layer });
    await ky.post("https://g.test/k", { json: { quality: 0.9, steps: 25, resolution: "1440p" } });
    await layer.fetch(
      new Request("https://g.test/r", { method: "POST", headers: JSON_CT, body: '{"quality":0.7,"model":"x"}' }),
    );
    expect(net.log.map((r) => [r.text, r.headers.find(([k]) => k === "x-level")?.[1]])).toEqual([
      ['{"quality":0.54,"steps":20,"resolution":"1080p"}', "low"],
      ['{"quality":0.42,"model":"x"}', "low"],
    ]);
  });
});

describe("the generic level machine (./policies)", () => {
  const settings: MachineSettings = {
    triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
    minSamples: 20,
    stepInterval: 10_000,
    restoreAfter: 60_000,
  };
  const bad: Signals = { samples: 20, errorRate: 0.15, p95: 10, memory: undefined, cpu: undefined, floor: 0 };
  const good: Signals = { ...bad, errorRate: 0.05, p95: 24_000 };
  const slow: Signals = { ...bad, errorRate: 0, p95: 30_001 };

  it("held: steps at stepInterval exactly, recovers at restoreAfter exactly, p95 edges", () => {
    let s = nextLevel(initialLevelState(0), { type: "evaluate", signals: bad }, 0, settings);
    expect(s.index).toBe(1);
    expect(nextLevel(s, { type: "evaluate", signals: slow }, 9_999, settings).index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals: slow }, 10_000, settings);
    expect(s.index).toBe(2);
    s = nextLevel(s, { type: "evaluate", signals: good }, 20_000, settings);
    expect(nextLevel(s, { type: "evaluate", signals: good }, 79_999, settings).index).toBe(2);
    s = nextLevel(s, { type: "evaluate", signals: good }, 80_000, settings);
    expect(s.index).toBe(1);
    // A value between the thresholds resets the healthy time.
    const mid = nextLevel(s, { type: "evaluate", signals: { ...good, p95: 24_001 } }, 100_000, settings);
    expect(nextLevel(mid, { type: "evaluate", signals: good }, 140_000, settings).index).toBe(1);
  });

  it("held: a clock set back counts the pace from now, lengthening a wait by the step at most", () => {
    const s = nextLevel(initialLevelState(0), { type: "evaluate", signals: bad }, 50_000, settings);
    // set back by 30 s: the next step comes 10 s after the new now, not at 60 000 nor at 80 000
    const back = nextLevel(s, { type: "evaluate", signals: bad }, 20_000, settings);
    expect(back.index).toBe(1);
    expect(nextLevel(back, { type: "evaluate", signals: bad }, 29_999, settings).index).toBe(1);
    expect(nextLevel(back, { type: "evaluate", signals: bad }, 30_000, settings).index).toBe(2);
  });
});
