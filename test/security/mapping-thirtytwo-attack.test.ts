/**
 * Outside-in attack on docs/storycore-mapping.md (how the StoryCore-Engine error-handling guide maps onto this
 * library) and the example it points to, examples/storycore-parity/engines.ts.
 * Docs: docs/storycore-mapping.md, every row of "Names" (`ErrorHandlingSystem()` → "`createResilience({ …, fallback:
 * fallback([…]), degradation: degradation() })`"; "`system.breaker("x")`, `.execute(fn)`"; "`system.fallback.chain("x")
 * .add(fn, { name, expectedQuality })`"; "`system.degradation.adjust(p)`"; `execute_with_resilience(fn,
 * circuit_breaker_name='x', enable_retry=True)` → "`system.execute(fn, { breaker: "x" })`"; "`chain.statistics()`,
 * `system.health()`") and every line of "Numbers kept" ("The five degradation levels (`full` 100%, `high` 80%,
 * `medium` 60%, `low` 40%, `minimal` 20%) with their quality multipliers, resolution scales, step caps and feature
 * tiers: the table in degradation"; "The parameter names the default rewriting rule reads: `quality`, `resolution`,
 * `steps`, `model`, `features`"; "The trigger thresholds: error rate 0.1, response time 30 s, memory 0.9, CPU 0.95");
 * "The guide's examples, ported … Run it with `npm run build && node examples/storycore-parity/engines.ts`".
 * With them the sentences they lean on: docs/degradation.md's table and its medium example ("`{ quality: 1.0,
 * resolution: "1080p", steps: 50, model: "premium" }` becomes exactly `{ quality: 0.8, resolution: "720p", steps: 30,
 * model: "standard" }`"), "evaluated at most once a second as calls settle", "configureTriggers" (unnamed thresholds
 * keep their value); docs/health-and-events.md ("`unhealthy` when a breaker is open, `degraded` above a 10% error
 * rate", "`analytics.clearHistory()` forgets the totals, the failures and the error rate's minute … the degradation
 * level and its window belong to the level"); docs/fallback.md (a `chain(name)` for any async work "reported in
 * `health().fallback`"); docs/breakers.md (named breakers "share `health().breakers`"); docs/retry.md (`execute`
 * retries "every thrown error except an abort").
 * How: `createResilience`, `getResilienceInfo`, `isCircuitOpenError`, `RetryExhaustedError` (root); `fallback`
 * (./fallback); `degradation` (./degradation); `adjustParameters`, `defaultLevels`, `LEVEL_NAMES`, `FallbackChain`,
 * `CircuitBreaker`, `retry` (./policies); `TestClock` (./testing) for every clock; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); Node's `process.constrainedMemory`/`memoryUsage`/`cpuUsage` stubbed for the memory
 * and CPU triggers (the readings docs/degradation.md names). The example was also run as documented (`npm run build &&
 * node examples/storycore-parity/engines.ts`, Node 22): it exits 0 and prints what the port below asserts.
 * Paths: generic work (named breakers, `execute` with a named breaker, the layer's generic chains, the ./policies
 * classes), plain call, chain (primary 503, spare serves), `Request` input, rewrite by degradation level at each of
 * the five levels, automatic triggers fed by plain calls.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - The layer built as the mapping says has `breaker`, `fallback.chain`, `degradation.adjust`, `execute`, `health`,
 *   `analytics.clearHistory`. `breaker("x")` is one breaker per name; `.execute(fn)` runs fn, opens after 12 failures
 *   in a row (refusing with `CircuitOpenError`), and shows in `health().breakers` with `status: "unhealthy"`.
 * - `execute(fn, { breaker })` retries by default (3 attempts on the `TestClock`), succeeding on the third, and ends
 *   in `RetryExhaustedError` after 3 failures.
 * - `fallback.chain("x")` is one chain per name; `add(fn, { name, expectedQuality })` chains; `statistics()`
 *   (`lastSuccessfulFallback`, `overallSuccessRate`, per entry counts) equals `health().fallback.x`.
 * - `defaultLevels` and `LEVEL_NAMES` hold the table; `setLevel(name)` reports its percentage (in `currentLevel()`,
 *   the `degradation` event and `health().degradationLevel`); `adjust()` applies each row (quality multiplier, a
 *   `WxH` scaled and floored to 8, steps cap, feature tiers, model rungs); `adjustParameters` and `adjust` give the
 *   documented medium example exactly.
 * - Over HTTP, at each of the five levels, the default rule rewrites `quality`, `resolution`, `steps`, `model`,
 *   `features` at the top level of the JSON body to the same row on a plain call, on a chain (both endpoints) and on
 *   a `Request` input; at `full` the body leaves byte for byte as written.
 * - Triggers: error rate 2 in 20 (0.1) holds `full`, 3 in 21 steps to `high`; p95 30000 ms holds, 30001 ms steps
 *   down; memory 0.9 holds, 0.901 steps down (with `errorRate` reconfigured: the other thresholds keep theirs); CPU
 *   0.95 of all cores holds, 0.951 steps down.
 * - `health()`: 1 failure in 10 calls is `healthy`, 2 in 11 `degraded`; `clearHistory()` zeroes the error rate and
 *   totals and leaves the level's window.
 * - The example's three integrations, ported through the source entries, give what it prints (wan after a failing
 *   hunyuan, qwen, `video:story(medium)+enhanced@720p` at medium), its statistics and the breakers and chains
 *   `health()` lists.
 * - `new FallbackChain`, `new CircuitBreaker` and `retry(fn)` from ./policies do the same on their own.
 *
 * Noted, not pinned (no sentence promises otherwise): work run through `execute` (and the layer's generic chains)
 * feeds neither `health().errorRate`/`status`/`debugInfo().totals` nor the degradation triggers, which only calls of
 * `resilience.fetch` feed: the ported example, which runs every engine through `execute`, reports `healthy` and stays
 * at `full` however often its engines fail, unless a named breaker opens. Changed in the thirty-second session:
 * `execute`'s work now counts there (docs/health-and-events.md, docs/storycore-mapping.md), tested in
 * test/http/execute.test.ts; a layer's generic chain and a named breaker's own `.execute` count in their own
 * statistics only, as documented.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { degradation, type LevelName } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError, RetryExhaustedError } from "../../src/index.ts";
import {
  adjustParameters,
  CircuitBreaker,
  defaultLevels,
  FallbackChain,
  type GenerationParams,
  LEVEL_NAMES,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const api = httpUpstream();
const spare = httpUpstream();
serveDuringFile(api, spare);

afterEach(() => {
  vi.restoreAllMocks();
});

/** docs/degradation.md's table, as docs/storycore-mapping.md names it. */
const TABLE: Record<
  LevelName,
  { percentage: number; q: number; r: number; steps: number | null; features: string[]; modelStep: number }
> = {
  full: { percentage: 100, q: 1.0, r: 1.0, steps: null, features: ["all"], modelStep: 0 },
  high: { percentage: 80, q: 0.9, r: 0.95, steps: null, features: ["core", "enhancements"], modelStep: 0 },
  medium: { percentage: 60, q: 0.8, r: 0.9, steps: 30, features: ["core"], modelStep: 1 },
  low: { percentage: 40, q: 0.6, r: 0.8, steps: 20, features: ["basic"], modelStep: 2 },
  minimal: { percentage: 20, q: 0.4, r: 0.7, steps: 10, features: ["essential"], modelStep: 2 },
};

const MODELS = ["premium", "standard", "basic"];
const ALL_FEATURES = ["core", "enhancements", "basic", "essential", "extra"];
const GEN = { prompt: "p", quality: 1, resolution: "1000x1000", steps: 50, model: "premium", features: ALL_FEATURES };

/** What the table says `GEN` becomes at `level`. */
function expected(level: LevelName): GenerationParams {
  const t = TABLE[level];
  const side = t.r === 1 ? 1000 : Math.floor((1000 * t.r) / 8) * 8;
  return {
    prompt: "p",
    quality: t.q,
    resolution: `${side}x${side}`,
    steps: t.steps === null ? 50 : Math.min(50, t.steps),
    model: MODELS[Math.min(2, t.modelStep)] as string,
    features: t.features.includes("all") ? ALL_FEATURES : ALL_FEATURES.filter((f) => t.features.includes(f)),
  };
}

describe("names: the guide's system, ported", () => {
  it("createResilience({ fallback: fallback([]), degradation: degradation() }) has breaker, fallback.chain, degradation.adjust, execute, health", () => {
    const system = createResilience({ fallback: fallback([]), degradation: degradation() });
    expect(typeof system.breaker).toBe("function");
    expect(typeof system.fallback.chain).toBe("function");
    expect(typeof system.degradation.adjust).toBe("function");
    expect(typeof system.execute).toBe("function");
    expect(typeof system.health).toBe("function");
    expect(typeof system.analytics.clearHistory).toBe("function");
  });

  it('breaker("x") is one breaker per name; .execute(fn) runs fn; it opens after 12 failures in a row and health() lists it', async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    const cb = system.breaker("hunyuan_video");
    expect(system.breaker("hunyuan_video")).toBe(cb);
    await expect(cb.execute(async () => "frame")).resolves.toBe("frame");
    for (let i = 0; i < 12; i++) await rejection(cb.execute(() => Promise.reject(new Error("GPU busy"))));
    expect(cb.state).toBe("open");
    const refused = await rejection(cb.execute(async () => "never"));
    expect(isCircuitOpenError(refused)).toBe(true);
    const health = system.health();
    expect(health.breakers.hunyuan_video?.state).toBe("open");
    expect(health.status).toBe("unhealthy");
  });

  it("execute(fn, { breaker }) retries by default (enable_retry=True): 3 attempts, behind the named breaker", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    let calls = 0;
    const value = await clock.run(
      system.execute(
        async () => {
          calls++;
          if (calls < 3) throw new Error("GPU busy");
          return "video";
        },
        { breaker: "video_generation" },
      ),
    );
    expect(value).toBe("video");
    expect(calls).toBe(3);
    expect(system.health().breakers.video_generation?.state).toBe("closed");
    let failing = 0;
    const error = await rejection(
      clock.run(
        system.execute(
          () => {
            failing++;
            return Promise.reject(new Error("GPU busy"));
          },
          { breaker: "video_generation" },
        ),
      ),
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(failing).toBe(3);
  });

  it('fallback.chain("x") is one chain per name; add(fn, { name, expectedQuality }); statistics() and health().fallback', async () => {
    const system = createResilience({ fallback: fallback([]), degradation: degradation() });
    const chain = system.fallback
      .chain<GenerationParams, string>("video_generation")
      .add(() => Promise.reject(new Error("GPU busy")), { name: "hunyuan_premium", expectedQuality: 1 })
      .add(async (r) => `wan:${String(r.prompt)}`, { name: "wan_standard", expectedQuality: 0.8 });
    expect(system.fallback.chain("video_generation")).toBe(chain);
    await expect(chain.execute({ prompt: "scene" })).resolves.toBe("wan:scene");
    const stats = chain.statistics();
    expect(stats.lastSuccessfulFallback).toBe("wan_standard");
    expect(stats.overallSuccessRate).toBe(1);
    expect(stats.fallbacks.hunyuan_premium).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.wan_standard).toMatchObject({ calls: 1, successes: 1 });
    expect(system.health().fallback.video_generation).toEqual(stats);
  });
});

describe("numbers kept: the five levels", () => {
  it("defaultLevels (./policies and ./degradation) hold the table's percentages, multipliers, scales, caps and tiers", () => {
    expect([...LEVEL_NAMES]).toEqual(["full", "high", "medium", "low", "minimal"]);
    for (const name of LEVEL_NAMES) {
      const t = TABLE[name];
      expect(defaultLevels[name]).toEqual({
        percentage: t.percentage,
        qualityMultiplier: t.q,
        resolutionScale: t.r,
        maxSteps: t.steps,
        features: t.features,
        modelStep: t.modelStep,
      });
    }
  });

  it("system.degradation: setLevel(name) reports the table's percentage (currentLevel, event, health) and adjust() applies its row", () => {
    const system = createResilience({ degradation: degradation() });
    const seen: Array<{ to: string; percentage: number }> = [];
    system.on("degradation", (e) => seen.push({ to: e.to, percentage: e.percentage }));
    for (const name of ["minimal", "low", "medium", "high", "full"] as const) {
      const level = system.degradation.setLevel(name);
      expect(level).toMatchObject({ name, percentage: TABLE[name].percentage, pinned: true });
      expect(system.health().degradationLevel).toBe(name);
      expect(system.degradation.adjust(GEN)).toEqual(expected(name));
    }
    expect(seen).toEqual(
      (["minimal", "low", "medium", "high", "full"] as const).map((to) => ({ to, percentage: TABLE[to].percentage })),
    );
  });

  it("adjustParameters (./policies) gives the documented medium example exactly", () => {
    const table = {
      resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
      sizeMultiple: 8,
      models: [MODELS],
    };
    expect(
      adjustParameters({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" }, defaultLevels.medium, table),
    ).toEqual({ quality: 0.8, resolution: "720p", steps: 30, model: "standard" });
    const system = createResilience({ degradation: degradation() });
    system.degradation.setLevel("medium");
    expect(system.degradation.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" })).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
  });
});

const jsonInit = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("numbers kept: the default rule reads quality, resolution, steps, model, features (HTTP)", () => {
  for (const name of LEVEL_NAMES) {
    it(`plain call, chain and Request input at ${name}: the body that leaves is the table's row`, async () => {
      const system = createResilience({
        retry: false,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${api.base}/chain` },
              { name: "backup", url: `${spare.base}/chain` },
            ],
          },
        ]),
        degradation: degradation(),
      });
      api.on((hit) => {
        if (hit.path.startsWith("/chain")) hit.res.writeHead(503).end();
        else hit.res.end("ok");
      });
      system.degradation.setLevel(name);
      const plain = await system.fetch(`${api.base}/plain`, jsonInit(GEN));
      expect(getResilienceInfo(plain)?.degradationLevel).toBe(name);
      const chained = await system.fetch(`${api.base}/chain/x`, jsonInit(GEN));
      expect(getResilienceInfo(chained)?.fromFallback).toBe(true);
      const req = await system.fetch(new Request(`${api.base}/req`, jsonInit(GEN)));
      expect(req.status).toBe(200);
      const want = name === "full" ? GEN : expected(name);
      expect(api.hits.map((h) => [h.path, JSON.parse(h.body)])).toEqual([
        ["/plain", want],
        ["/chain/x", want],
        ["/req", want],
      ]);
      expect(spare.hits.map((h) => [h.path, JSON.parse(h.body)])).toEqual([["/chain/x", want]]);
      if (name === "full") expect(api.hits[0]?.body).toBe(JSON.stringify(GEN));
    });
  }
});

/** A layer on `clock` whose only moving part is the level: no retries, no breakers. */
function levelled(clock: TestClock) {
  return createResilience({ clock, retry: false, breaker: false, degradation: degradation() });
}

describe("numbers kept: the trigger thresholds (error rate 0.1, response time 30 s, memory 0.9, CPU 0.95)", () => {
  it("error rate: 2 failures in 20 calls (0.1) hold full; a third (3 in 21) steps down to high", async () => {
    const clock = new TestClock();
    const system = levelled(clock);
    api.on((hit) => (hit.path === "/fail" ? hit.res.writeHead(500).end() : hit.res.end("ok")));
    const call = async (path: string) => (await system.fetch(`${api.base}${path}`)).status;
    for (let i = 0; i < 17; i++) await call("/ok");
    await call("/fail");
    await call("/fail");
    await clock.advance(1_000);
    await call("/ok");
    expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 20, errorRate: 0.1 });
    expect(system.degradation.currentLevel().name).toBe("full");
    await clock.advance(1_000);
    await call("/fail");
    expect(system.degradation.currentLevel().name).toBe("high");
  });

  for (const [latency, level] of [
    [30_000, "full"],
    [30_001, "high"],
  ] as const) {
    it(`response time: a p95 of ${latency} ms over 21 calls leaves the level at ${level}`, async () => {
      const clock = new TestClock();
      const system = levelled(clock);
      const held: Array<() => void> = [];
      api.on((hit) => {
        if (hit.path === "/slow") held.push(() => hit.res.end("late"));
        else hit.res.end("ok");
      });
      for (let i = 0; i < 18; i++) await system.fetch(`${api.base}/fast`);
      const slow = [system.fetch(`${api.base}/slow`), system.fetch(`${api.base}/slow`)];
      await api.nth(20);
      await clock.advance(latency);
      for (const release of held) release();
      await Promise.all(slow);
      // Evaluated at most once a second, as calls settle: one more call a second later.
      await clock.advance(1_000);
      await system.fetch(`${api.base}/fast`);
      expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 21, p95: latency });
      expect(system.degradation.currentLevel().name).toBe(level);
    });
  }

  for (const [rss, level] of [
    [900, "full"],
    [901, "high"],
  ] as const) {
    it(`memory: ${rss / 1000} of the constrained memory leaves the level at ${level}`, async () => {
      vi.spyOn(process, "constrainedMemory").mockReturnValue(1_000);
      vi.spyOn(process, "memoryUsage").mockReturnValue({
        rss,
        heapTotal: 0,
        heapUsed: 0,
        external: 0,
        arrayBuffers: 0,
      });
      const clock = new TestClock();
      const system = levelled(clock);
      // configureTriggers names one threshold: the others keep theirs.
      system.degradation.configureTriggers({ errorRate: 0.5 });
      await system.fetch(`${api.base}/ok`);
      expect(system.degradation.currentLevel().name).toBe(level);
    });
  }

  for (const [share, level] of [
    [0.95, "full"],
    [0.951, "high"],
  ] as const) {
    it(`CPU: ${share} of all cores leaves the level at ${level}`, async () => {
      vi.spyOn(process, "constrainedMemory").mockReturnValue(undefined as unknown as number);
      const cores = navigator.hardwareConcurrency;
      let used = 0;
      vi.spyOn(process, "cpuUsage").mockImplementation(() => ({ user: used, system: 0 }));
      const clock = new TestClock();
      const system = levelled(clock);
      await system.fetch(`${api.base}/ok`);
      await clock.advance(1_000);
      used += Math.round(share * 1_000 * 1_000 * cores);
      await system.fetch(`${api.base}/ok`);
      expect(system.degradation.currentLevel().name).toBe(level);
    });
  }
});

describe("health and analytics (get_system_health, error_analytics)", () => {
  it("health(): 1 failure in 10 calls (0.1) is healthy, 2 in 11 degraded; analytics.clearHistory() forgets the minute, not the level's window", async () => {
    const clock = new TestClock();
    const system = levelled(clock);
    api.on((hit) => (hit.path === "/fail" ? hit.res.writeHead(503).end() : hit.res.end("ok")));
    for (let i = 0; i < 9; i++) await system.fetch(`${api.base}/ok`);
    await system.fetch(`${api.base}/fail`);
    expect(system.health()).toMatchObject({ status: "healthy", errorRate: 0.1, degradationLevel: "full" });
    await system.fetch(`${api.base}/fail`);
    expect(system.health()).toMatchObject({ status: "degraded", errorRate: 2 / 11 });
    expect(system.debugInfo().totals).toEqual({ calls: 11, failures: 2 });
    system.analytics.clearHistory();
    expect(system.health()).toMatchObject({ status: "healthy", errorRate: 0 });
    expect(system.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(system.debugInfo().degradation?.window.samples).toBe(11);
  });
});

describe("examples/storycore-parity/engines.ts, through the source entries", () => {
  it("the three integrations give what the example prints: wan after a failing hunyuan, qwen, and a workflow at medium", async () => {
    const system = createResilience({
      retry: { maxAttempts: 3, initialDelay: 50 },
      fallback: fallback([]),
      degradation: degradation(),
    });
    let hunyuanCalls = 0;
    const hunyuan = (r: GenerationParams) =>
      ++hunyuanCalls % 3 === 0 ? Promise.resolve({ engine: "hunyuan", ...r }) : Promise.reject(new Error("GPU busy"));
    const hunyuanBreaker = system.breaker("hunyuan_video");
    const wanBreaker = system.breaker("wan_video");
    const videoChain = system.fallback
      .chain<GenerationParams, object>("video_generation")
      .add((r) => hunyuanBreaker.execute(() => hunyuan(r)), { name: "hunyuan_premium", expectedQuality: 1 })
      .add((r) => wanBreaker.execute(async () => ({ engine: "wan", ...r })), {
        name: "wan_standard",
        expectedQuality: 0.8,
      })
      .add(async (r) => ({ engine: "cache", prompt: r.prompt }), { name: "cached_fallback", expectedQuality: 0.4 });
    const video = await system.execute(
      () => videoChain.execute(system.degradation.adjust({ prompt: "A story scene", duration: 10, quality: 1.0 })),
      { breaker: "video_generation" },
    );
    expect(video).toEqual({ engine: "wan", prompt: "A story scene", duration: 10, quality: 1 });

    const imageChain = system.fallback
      .chain<GenerationParams, object>("image_quality")
      .add((r) => system.breaker("qwen_image").execute(async () => ({ engine: "qwen", ...r })), {
        name: "qwen_ultra",
        expectedQuality: 1,
      })
      .add((r) => system.breaker("flux_image").execute(async () => ({ engine: "flux", ...r })), {
        name: "flux_high",
        expectedQuality: 0.8,
      });
    const image = await system.execute(() =>
      imageChain.execute(
        system.degradation.adjust({ prompt: "A beautiful landscape", style: "realistic", resolution: "1024x1024" }),
      ),
    );
    expect(image).toEqual({
      engine: "qwen",
      prompt: "A beautiful landscape",
      style: "realistic",
      resolution: "1024x1024",
    });

    system.degradation.setLevel("medium", "demo: high load");
    const generation = system.fallback
      .chain<GenerationParams, string>("content_generation")
      .add(async (c) => `story(${String(c.length)})`, { name: "llm" });
    const processing = system.fallback
      .chain<string, string>("content_processing")
      .add(async (content) => `${content}+enhanced`, { name: "enhancer" })
      .add(async (content) => content, { name: "passthrough", expectedQuality: 0.5 });
    const output = system.fallback
      .chain<{ processed: string; output: GenerationParams }, string>("output_generation")
      .add(async ({ processed, output: o }) => `${String(o.format)}:${processed}@${String(o.resolution)}`, {
        name: "renderer",
      });
    const adjustedOutput = system.degradation.adjust({ format: "video", quality: 1.0, resolution: "1080p" });
    expect(adjustedOutput).toEqual({ format: "video", quality: 0.8, resolution: "720p" });
    const result = await system.execute(
      async () => {
        const content = await generation.execute(system.degradation.adjust({ type: "story", length: "medium" }));
        const processed = await processing.execute(content);
        return output.execute({ processed, output: adjustedOutput });
      },
      { breaker: "workflow_execution" },
    );
    expect(result).toBe("video:story(medium)+enhanced@720p");

    expect(videoChain.statistics()).toMatchObject({
      lastSuccessfulFallback: "wan_standard",
      overallSuccessRate: 1,
      fallbacks: {
        hunyuan_premium: { calls: 1, successes: 0, successRate: 0 },
        wan_standard: { calls: 1, successes: 1, successRate: 1 },
        cached_fallback: { calls: 0, successes: 0, successRate: 0 },
      },
    });
    const health = system.health();
    expect(Object.keys(health.breakers)).toEqual([
      "hunyuan_video",
      "wan_video",
      "video_generation",
      "qwen_image",
      "workflow_execution",
    ]);
    expect(health.degradationLevel).toBe("medium");
    expect(Object.keys(health.fallback)).toEqual([
      "video_generation",
      "image_quality",
      "content_generation",
      "content_processing",
      "output_generation",
    ]);
  });
});

describe("the generic pieces on their own (./policies)", () => {
  it("new FallbackChain, new CircuitBreaker and retry(fn) do what the layer's do", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<string, string>("video_generation", { clock })
      .add(() => Promise.reject(new Error("GPU busy")), { name: "hunyuan_premium" })
      .add(async (p) => `wan:${p}`, { name: "wan_standard", expectedQuality: 0.8 });
    await expect(chain.execute("scene")).resolves.toBe("wan:scene");
    expect(chain.statistics().lastSuccessfulFallback).toBe("wan_standard");
    const cb = new CircuitBreaker(
      "hunyuan",
      {
        failureThreshold: 2,
        successThreshold: 1,
        timeout: 1_000,
        halfOpenMaxCalls: 1,
        timeWindow: 30_000,
        probeTimeout: 1_000,
        failureRate: undefined,
        minimumCalls: 100,
      },
      clock,
    );
    await rejection(cb.execute(() => Promise.reject(new Error("x"))));
    await rejection(cb.execute(() => Promise.reject(new Error("x"))));
    expect(cb.state).toBe("open");
    let n = 0;
    const value = await clock.run(
      retry(
        async () => {
          if (++n < 3) throw new Error("GPU busy");
          return n;
        },
        { clock },
      ),
    );
    expect(value).toBe(3);
  });
});
