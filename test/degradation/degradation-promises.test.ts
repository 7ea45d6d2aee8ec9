/**
 * The promises of docs/degradation.md and docs/health-and-events.md (and the
 * README's sentences about degradation, health and analytics), checked as a
 * demanding user would: through the public API only, on a TestClock and a
 * stub fetch. A check kept as `it.fails` documents a defect found here.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { ConfigError, createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

type Seen = { url: string; method: string; headers: Headers; body: string };

/** A layer on a TestClock and a stub fetch that records what left and answers `answer()`. */
function setup(
  options: DegradationOptions = {},
  more: ResilienceOptions & { answer?: (seen: Seen, clock: TestClock) => Response | Promise<Response> } = {},
) {
  const clock = new TestClock(1_000_000);
  const sent: Seen[] = [];
  const { answer, ...rest } = more;
  const resilience = createResilience({
    clock,
    retry: false,
    fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      const seen = { url: request.url, method: request.method, headers: request.headers, body: await request.text() };
      sent.push(seen);
      return answer ? answer(seen, clock) : new Response("ok");
    },
    ...rest,
    // Memory and CPU are the real process's: thresholds of 1 keep them out of the way.
    degradation: degradation({
      browserSignals: false,
      ...options,
      triggers: { memoryUsage: 1, cpuUsage: 1, ...options.triggers },
    }),
  });
  return { clock, sent, resilience, levels: resilience.degradation };
}

const post = (body: unknown, type = "application/json"): RequestInit => ({
  method: "POST",
  headers: { "content-type": type },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe("the five levels and adjust(params)", () => {
  const all = {
    quality: 1,
    resolution: "2160p",
    steps: 100,
    model: "premium",
    features: ["all", "core", "enhancements", "basic", "essential"],
    seed: 7,
  };
  const expected = {
    full: { percentage: 100, quality: 1, resolution: "2160p", steps: 100, model: "premium", features: all.features },
    // 2160 × 0.95 = 2052 → snapped down to 1440p
    high: {
      percentage: 80,
      quality: 0.9,
      resolution: "1440p",
      steps: 100,
      model: "premium",
      features: ["core", "enhancements"],
    },
    medium: { percentage: 60, quality: 0.8, resolution: "1440p", steps: 30, model: "standard", features: ["core"] },
    low: { percentage: 40, quality: 0.6, resolution: "1440p", steps: 20, model: "basic", features: ["basic"] },
    minimal: { percentage: 20, quality: 0.4, resolution: "1440p", steps: 10, model: "basic", features: ["essential"] },
  } as const;

  for (const [name, want] of Object.entries(expected)) {
    it(`${name}: the table's percentage, multiplier, scale, step cap, model step and feature tiers`, () => {
      const { levels } = setup();
      levels.setLevel(name as keyof typeof expected);
      expect(levels.currentLevel().percentage).toBe(want.percentage);
      const { percentage: _p, ...params } = want;
      expect(levels.adjust(all)).toEqual({ ...params, seed: 7 });
    });
  }

  it("the doc's example at medium, exactly; the resolution ladder; WxH sizes; unknown fields pass through", () => {
    const { levels } = setup();
    levels.setLevel("medium");
    expect(levels.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" })).toStrictEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
    // 1024 × 0.9 = 921.6 → 920 (a multiple of 8); 768 × 0.9 = 691.2 → 688
    expect(levels.adjust({ resolution: "1024x768", prompt: "a cat", extra: { deep: 1 } })).toEqual({
      resolution: "920x688",
      prompt: "a cat",
      extra: { deep: 1 },
    });
    // steps below the cap are kept; a model on no ladder is kept
    expect(levels.adjust({ steps: 12, model: "mine" })).toEqual({ steps: 12, model: "mine" });
    levels.setLevel("high");
    // 1080 × 0.95 = 1026 → 720p, "snapped down the ladder"
    expect(levels.adjust({ resolution: "1080p" })).toEqual({ resolution: "720p" });
  });

  it("every number in the table can be overridden per level; sizeMultiple and models are options", () => {
    const { levels } = setup({
      levels: { medium: { maxSteps: 40, qualityMultiplier: 0.5, percentage: 55, features: ["x"], modelStep: 2 } },
      sizeMultiple: 64,
      models: [["a", "b", "c"]],
    });
    levels.setLevel("medium");
    expect(levels.currentLevel().percentage).toBe(55);
    expect(
      levels.adjust({ steps: 50, quality: 1, features: ["x", "core"], model: "a", resolution: "1024x1024" }),
    ).toEqual({
      steps: 40,
      quality: 0.5,
      features: ["x"],
      model: "c",
      resolution: "896x896", // 921.6 rounded down to a multiple of 64
    });
  });

  // Was a defect, fixed: a resolution below the ladder's last rung is raised, not lowered.
  // docs/degradation.md: "`resolution` scaled then snapped down the ladder
  // (`2160p, 1440p, 1080p, 720p, 480p, 360p`)" and the table's
  // resolutionScale ≤ 1 at every level. Reproduction:
  //   levels.setLevel("high"); levels.adjust({ resolution: "240p" })
  //   → { resolution: "360p" } (240 × 0.95 = 228 has no rung at or below it,
  //   so the ladder's last rung is returned: a degraded request asks for MORE
  //   pixels than the caller's). The same happens at every level, `full` included.
  it("never raises a resolution: 240p at high stays at most 240p", () => {
    const { levels } = setup();
    levels.setLevel("high");
    const out = levels.adjust({ resolution: "240p" }).resolution as string;
    expect(Number.parseInt(out, 10)).toBeLessThanOrEqual(240);
  });
});

describe("resilience.fetch rewrites requests by rule", () => {
  it("without the stage: untouched, health says full and resilience.degradation is undefined", async () => {
    const seen: string[] = [];
    const resilience = createResilience({
      clock: new TestClock(),
      fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
        seen.push(String(init?.body));
        return new Response("ok");
      },
    });
    expect(resilience.degradation).toBeUndefined();
    const res = await resilience.fetch("https://gen.example/v1", post({ steps: 50 }));
    expect(seen).toEqual(['{"steps":50}']);
    expect(resilience.health().degradationLevel).toBe("full");
    expect(resilience.debugInfo().degradation).toBeNull();
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
  });

  it("at full nothing is touched: the body goes byte for byte", async () => {
    const { resilience, sent } = setup();
    // 900p is off the ladder: any rewrite at all would snap it to 720p
    const body = '{ "steps" : 50,  "quality":1.0, "resolution":"900p", "features": ["x"] }';
    const res = await resilience.fetch("https://gen.example/v1", post(body));
    expect(sent[0]?.body).toBe(body);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
  });

  it("the default rule reads top-level JSON fields; other fields keep their bytes", async () => {
    const { resilience, sent, levels } = setup();
    levels.setLevel("medium");
    const res = await resilience.fetch(
      "https://gen.example/v1",
      post(
        '{"prompt":"a  cat", "steps": 50, "quality": 1, "resolution": "1080p", "model": "premium", "features": ["core","enhancements"], "parameters": {"steps": 99}}',
      ),
    );
    expect(JSON.parse(sent[0]?.body ?? "")).toEqual({
      prompt: "a  cat",
      steps: 30,
      quality: 0.8,
      resolution: "720p",
      model: "standard",
      features: ["core"],
      parameters: { steps: 99 }, // not top level: the default rule leaves it
    });
    expect(sent[0]?.body).toContain('"prompt":"a  cat"');
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
  });

  it("rules per URL prefix (the longest wins, else the global one): body path, query, header", async () => {
    const { resilience, sent, levels } = setup({
      rules: [
        { params: { steps: "steps" } },
        { match: "https://gen.example/", params: { steps: "parameters.num_inference_steps" } },
        { match: "https://gen.example/v1/q", params: { steps: { query: "n" }, model: { header: "x-model" } } },
      ],
    });
    levels.setLevel("low");
    await resilience.fetch("https://other.example/x", post({ steps: 50, parameters: { num_inference_steps: 50 } }));
    await resilience.fetch("https://gen.example/v2", post({ steps: 50, parameters: { num_inference_steps: 50 } }));
    await resilience.fetch("https://gen.example/v1/q?n=50&k=v", {
      ...post({ steps: 50, parameters: { num_inference_steps: 50 } }),
      headers: { "content-type": "application/json", "x-model": "premium" },
    });
    expect(JSON.parse(sent[0]?.body ?? "")).toEqual({ steps: 20, parameters: { num_inference_steps: 50 } });
    expect(JSON.parse(sent[1]?.body ?? "")).toEqual({ steps: 50, parameters: { num_inference_steps: 20 } });
    expect(JSON.parse(sent[2]?.body ?? "")).toEqual({ steps: 50, parameters: { num_inference_steps: 50 } });
    expect(new URL(sent[2]?.url ?? "").searchParams.get("n")).toBe("20");
    expect(new URL(sent[2]?.url ?? "").searchParams.get("k")).toBe("v");
    expect(sent[2]?.headers.get("x-model")).toBe("basic");
  });

  it("rules: [] turns rewriting off; non-JSON bodies are left alone", async () => {
    const off = setup({ rules: [] });
    off.levels.setLevel("minimal");
    await off.resilience.fetch("https://gen.example/v1", post({ steps: 50 }));
    expect(off.sent[0]?.body).toBe('{"steps":50}');

    const text = setup();
    text.levels.setLevel("minimal");
    await text.resilience.fetch(
      "https://gen.example/v1",
      post("resolution=1080p&steps=50", "application/x-www-form-urlencoded"),
    );
    await text.resilience.fetch("https://gen.example/v1", post('{"steps": 50', "application/json"));
    expect(text.sent.map((s) => s.body)).toEqual(["resolution=1080p&steps=50", '{"steps": 50']);
  });

  it("levelHeader sends the level's name, to the same origin", async () => {
    const { resilience, sent, levels } = setup({ levelHeader: "x-degradation-level" });
    await resilience.fetch("https://gen.example/v1");
    levels.degrade("busy");
    await resilience.fetch("https://gen.example/v1");
    expect(sent.map((s) => s.headers.get("x-degradation-level"))).toEqual(["full", "high"]);
  });

  it("paths may not name __proto__, constructor or prototype (a ConfigError); rewriting walks own properties", async () => {
    for (const bad of ["__proto__.steps", "a.constructor", "prototype", { body: "x.__proto__" }]) {
      expect(() => degradation({ rules: [{ params: { steps: bad } }] })).toThrow(ConfigError);
    }
    const { resilience, sent, levels } = setup({ rules: [{ params: { steps: "toString" } }] });
    levels.setLevel("minimal");
    await resilience.fetch("https://gen.example/v1", post({ steps: 50 }));
    expect(sent[0]?.body).toBe('{"steps":50}');
  });
});

describe("manual control", () => {
  it("degrade steps down one, restore up one, currentLevel reports { name, percentage, since, reason, pinned }", async () => {
    const { levels, clock } = setup();
    expect(levels.currentLevel()).toEqual({
      name: "full",
      percentage: 100,
      since: 1_000_000,
      reason: "initial",
      pinned: false,
    });
    await clock.advance(5);
    expect(levels.degrade("GPU queue full")).toEqual({
      name: "high",
      percentage: 80,
      since: 1_000_005,
      reason: "GPU queue full",
      pinned: false,
    });
    for (let i = 0; i < 6; i++) levels.degrade("more");
    expect(levels.currentLevel().name).toBe("minimal");
    expect(levels.restore().name).toBe("low");
    for (let i = 0; i < 6; i++) levels.restore();
    expect(levels.currentLevel().name).toBe("full");
  });

  it("setLevel pins: triggers leave it alone until restore()", async () => {
    const { levels, resilience, clock } = setup(
      { minSamples: 1, stepInterval: 0 },
      { answer: () => new Response("busy", { status: 503 }) },
    );
    expect(levels.setLevel("high")).toMatchObject({ name: "high", pinned: true });
    for (let i = 0; i < 5; i++) {
      await resilience.fetch("https://gen.example/v1");
      await clock.advance(1_000);
    }
    expect(levels.currentLevel()).toMatchObject({ name: "high", pinned: true });
    expect(levels.restore()).toMatchObject({ name: "full", pinned: false });
    await resilience.fetch("https://gen.example/v1");
    expect(levels.currentLevel().name).toBe("high"); // triggers act again
  });
});

describe("one stage, several layers", () => {
  it("each layer it joins gets its own level", () => {
    const stage = degradation({ browserSignals: false });
    const a = createResilience({ clock: new TestClock(), degradation: stage });
    const b = createResilience({ clock: new TestClock(), degradation: stage });
    a.degradation.degrade("only a");
    expect(a.degradation.levelName()).toBe("high");
    expect(b.degradation.levelName()).toBe("full");
  });
});

describe("automatic triggers", () => {
  const failing = (seen: Seen) => new Response("no", { status: seen.url.includes("fail") ? 503 : 200 });

  it("wait for minSamples (20) calls in the window, then step down one level per stepInterval (10 s)", async () => {
    const { levels, resilience, clock } = setup({}, { answer: failing, breaker: false });
    for (let i = 0; i < 19; i++) await resilience.fetch("https://gen.example/fail");
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/ok"); // 20 samples, 19 failed: evaluated now
    expect(levels.currentLevel()).toMatchObject({ name: "high", reason: expect.stringContaining("error rate") });
    // evaluated again each second, but only one step per 10 s
    for (let t = 1; t < 10; t++) {
      await clock.advance(1_000);
      await resilience.fetch("https://gen.example/fail");
      expect(levels.levelName()).toBe("high");
    }
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/fail");
    expect(levels.levelName()).toBe("medium");
  });

  it("fewer than minSamples never trigger a step", async () => {
    const { levels, resilience, clock } = setup({}, { answer: failing, breaker: false });
    for (let i = 0; i < 19; i++) {
      await clock.advance(1_000);
      await resilience.fetch("https://gen.example/fail");
    }
    expect(levels.levelName()).toBe("full");
  });

  it("evaluated at most once a second as calls settle; no timers, so no traffic means no move", async () => {
    const { levels, resilience, clock } = setup(
      { minSamples: 1, stepInterval: 0 },
      { answer: failing, breaker: false },
    );
    await resilience.fetch("https://gen.example/fail");
    expect(levels.levelName()).toBe("high");
    await clock.advance(999);
    await resilience.fetch("https://gen.example/fail");
    expect(levels.levelName()).toBe("high");
    await clock.advance(1);
    await resilience.fetch("https://gen.example/fail");
    expect(levels.levelName()).toBe("medium");
    await clock.advance(600_000);
    expect(levels.levelName()).toBe("medium");
    expect(clock.pending()).toBe(0);
  });

  it("p95 latency over its threshold (configureTriggers({ responseTime })) steps down", async () => {
    const { levels, resilience, clock } = setup(
      { minSamples: 1 },
      {
        answer: async (_seen, clock) => {
          await clock.advance(500);
          return new Response("slow");
        },
      },
    );
    await resilience.fetch("https://gen.example/v1");
    expect(levels.levelName()).toBe("full"); // 500 ms < 30 s
    levels.configureTriggers({ responseTime: 400 });
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/v1");
    expect(levels.currentLevel()).toMatchObject({ name: "high", reason: expect.stringContaining("p95") });
  });

  it("configureTriggers replaces thresholds; unnamed ones keep their value", async () => {
    const { levels, resilience, clock } = setup(
      { minSamples: 2, stepInterval: 0 },
      { answer: failing, breaker: false },
    );
    levels.configureTriggers({ errorRate: 0.6 });
    levels.configureTriggers({ responseTime: 60_000 }); // errorRate keeps 0.6
    await resilience.fetch("https://gen.example/fail");
    await resilience.fetch("https://gen.example/ok"); // 0.5 ≤ 0.6
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/ok");
    expect(levels.levelName()).toBe("full");
    levels.configureTriggers({ errorRate: 0.2 });
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/fail"); // 2 of 4 > 0.2
    expect(levels.levelName()).toBe("high");
  });

  it("steps up only after a whole restoreAfter (60 s) clearly healthy, one level at a time", async () => {
    const { levels, resilience, clock } = setup({ minSamples: 1, window: 5_000 }, { answer: failing, breaker: false });
    levels.degrade("by hand");
    levels.degrade("by hand");
    await resilience.fetch("https://gen.example/ok"); // healthy from here
    const start = clock.now();
    while (clock.now() - start < 59_000) {
      await clock.advance(1_000);
      await resilience.fetch("https://gen.example/ok");
      if (clock.now() - start < 60_000) expect(levels.levelName()).toBe("medium");
    }
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/ok");
    expect(levels.currentLevel()).toMatchObject({ name: "high", reason: "healthy" });
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/ok");
    expect(levels.levelName()).toBe("high"); // one level at a time
  });

  it("an error rate between half the threshold and the threshold holds the level (no flapping)", async () => {
    // 3 failures in 40 calls = 0.075: above 0.05, not above 0.1
    const { levels, resilience, clock } = setup({ window: 1_000_000 }, { answer: failing, breaker: false });
    levels.degrade("by hand");
    for (let i = 0; i < 37; i++) await resilience.fetch("https://gen.example/ok");
    for (let i = 0; i < 3; i++) await resilience.fetch("https://gen.example/fail");
    for (let s = 0; s < 200; s++) {
      await clock.advance(1_000);
      await resilience.fetch(s % 13 === 0 ? "https://gen.example/fail" : "https://gen.example/ok");
      const rate = resilience.debugInfo().degradation?.window.errorRate ?? 0;
      if (rate > 0.05 && rate <= 0.1) expect(levels.levelName()).toBe("high");
    }
  });

  // docs/degradation.md: the window is 60 s "and at most the last 256 calls".
  // (The docs said 60 s alone; the bound keeps the window's memory fixed.)
  it("judges the error rate over the last 256 calls of the 60 s window", async () => {
    const { levels, resilience, clock } = setup({ stepInterval: 0 }, { answer: failing, breaker: false });
    for (let i = 0; i < 40; i++) await resilience.fetch("https://gen.example/fail");
    for (let i = 0; i < 260; i++) await resilience.fetch("https://gen.example/ok");
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/ok");
    expect(resilience.health().errorRate).toBeGreaterThan(0.1);
    expect(resilience.debugInfo().degradation?.window).toMatchObject({ samples: 256, errorRate: 0 });
    expect(levels.levelName()).toBe("full");
  });

  it("a browser floor (navigator.connection slow-2g) moves the level at once", async () => {
    vi.stubGlobal("navigator", { connection: { effectiveType: "slow-2g" } });
    const { levels, resilience } = setup({ browserSignals: true });
    await resilience.fetch("https://gen.example/v1");
    expect(levels.currentLevel()).toMatchObject({ name: "minimal" });
  });

  it("the default error-rate threshold is the guide's 0.1 (above it, not at it)", async () => {
    const { levels, resilience, clock } = setup(
      { minSamples: 10, stepInterval: 0 },
      { answer: failing, breaker: false },
    );
    for (let i = 0; i < 9; i++) await resilience.fetch("https://gen.example/ok");
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/fail"); // 1 of 10 = 0.1: not above
    expect(levels.levelName()).toBe("full");
    await clock.advance(1_000);
    for (let i = 0; i < 4; i++) await resilience.fetch("https://gen.example/ok");
    await clock.advance(1_000);
    await resilience.fetch("https://gen.example/fail"); // 2 of 15 = 0.133
    expect(levels.currentLevel()).toMatchObject({ name: "high", reason: expect.stringContaining("error rate") });
  });

  it("the default response-time threshold is the guide's 30 s of p95 latency", async () => {
    let latency = 30_000;
    const { levels, resilience } = setup(
      { minSamples: 1 },
      {
        answer: async (_seen, clock) => {
          await clock.advance(latency);
          return new Response("slow");
        },
      },
    );
    await resilience.fetch("https://gen.example/v1"); // p95 30 000 ms: not above
    expect(levels.levelName()).toBe("full");
    latency = 30_001;
    await resilience.fetch("https://gen.example/v1");
    expect(levels.currentLevel()).toMatchObject({ name: "high", reason: expect.stringContaining("p95") });
  });
});

describe("degradation events", () => {
  it("fire on every level change with { from, to, percentage, reason }, manual or automatic, and only then", async () => {
    const { levels, resilience } = setup(
      { minSamples: 1, stepInterval: 0 },
      { answer: () => new Response("no", { status: 503 }), breaker: false },
    );
    const events: unknown[] = [];
    resilience.on("degradation", (e) => events.push(e));
    levels.degrade("GPU queue full");
    levels.setLevel("minimal", "ops");
    levels.degrade("nothing below"); // no change: no event
    levels.restore();
    levels.restore();
    await resilience.fetch("https://gen.example/v1");
    expect(events).toEqual([
      { from: "full", to: "high", percentage: 80, reason: "GPU queue full" },
      { from: "high", to: "minimal", percentage: 20, reason: "ops" },
      { from: "minimal", to: "low", percentage: 40, reason: "restored" },
      { from: "low", to: "medium", percentage: 60, reason: "restored" },
      { from: "medium", to: "low", percentage: 40, reason: expect.stringContaining("error rate") },
    ]);
  });
});

describe("health()", () => {
  it("status: healthy, degraded above a 10% error rate (not at it), unhealthy when a breaker is open", async () => {
    const { resilience, clock } = setup(
      {},
      {
        answer: (seen) => new Response("x", { status: seen.url.includes("fail") ? 503 : 200 }),
        breaker: { failureThreshold: 3 },
      },
    );
    for (let i = 0; i < 9; i++) await resilience.fetch("https://a.example/ok");
    await resilience.fetch("https://b.example/fail");
    expect(resilience.health()).toMatchObject({ status: "healthy", errorRate: 0.1 });
    await resilience.fetch("https://b.example/fail");
    expect(resilience.health().status).toBe("degraded");
    await resilience.fetch("https://b.example/fail");
    const h = resilience.health();
    expect(h.status).toBe("unhealthy");
    expect(h.breakers["b.example"]).toMatchObject({
      state: "open",
      failureCount: expect.any(Number),
      consecutiveFailures: 3,
      lastError: expect.stringContaining("503"),
      openUntil: clock.now() + 30_000,
    });
    expect(h.breakers["a.example"]).toMatchObject({ state: "closed", lastError: null, consecutiveFailures: 0 });
    expect(h.fallback).toEqual({});
    expect(JSON.parse(JSON.stringify(h))).toEqual(h); // plain JSON
    // errorRate is over the last minute
    await clock.advance(61_000);
    expect(resilience.health().errorRate).toBe(0);
  });

  it("degradationLevel follows the level", () => {
    const { resilience, levels } = setup();
    levels.setLevel("low");
    expect(resilience.health().degradationLevel).toBe("low");
  });
});

describe("debugInfo() and analytics.clearHistory()", () => {
  it("totals, the last 50 failures without their query string, the level and its window; clearHistory forgets", async () => {
    const { resilience, levels } = setup(
      {},
      { answer: (seen) => new Response("x", { status: seen.url.includes("fail") ? 503 : 200 }), breaker: false },
    );
    await resilience.fetch("https://gen.example/ok");
    for (let i = 0; i < 55; i++) await resilience.fetch(`https://gen.example/fail/${i}?key=SECRET#frag`);
    levels.degrade("x");
    const info = resilience.debugInfo();
    expect(info.totals).toEqual({ calls: 56, failures: 55 });
    expect(info.recentErrors).toHaveLength(50);
    expect(info.recentErrors[49]).toMatchObject({ url: "https://gen.example/fail/54", status: 503 });
    expect(info.recentErrors[0]?.url).toBe("https://gen.example/fail/5");
    expect(JSON.stringify(info)).not.toContain("SECRET");
    expect(info.degradation).toMatchObject({
      name: "high",
      reason: "x",
      window: { samples: 56, errorRate: 55 / 56 },
    });
    expect(info.options).toBeDefined();
    resilience.analytics.clearHistory();
    const after = resilience.debugInfo();
    expect(after.totals).toEqual({ calls: 0, failures: 0 });
    expect(after.recentErrors).toEqual([]);
    expect(after.errorRate).toBe(0);
  });
});

describe("request, retry and breaker events", () => {
  it("carry the documented fields", async () => {
    let n = 0;
    const { resilience, clock } = setup(
      {},
      {
        retry: { maxAttempts: 2, initialDelay: 100 },
        breaker: { failureThreshold: 2 },
        answer: () => new Response("x", { status: n++ === 0 ? 503 : 500 }),
      },
    );
    const retries: unknown[] = [];
    const requests: unknown[] = [];
    const breakers: unknown[] = [];
    resilience.on("retry", (e) => retries.push(e));
    resilience.on("request", (e) => requests.push(e));
    resilience.on("breaker", (e) => breakers.push(e));
    const res = await clock.run(resilience.fetch("https://gen.example/v1?key=SECRET"));
    expect(res.status).toBe(500);
    expect(retries).toEqual([
      expect.objectContaining({
        key: "gen.example",
        attempt: 1,
        delay: expect.any(Number),
        reason: "status 503",
        retryAfter: false,
      }),
    ]);
    expect(requests).toEqual([
      expect.objectContaining({
        status: 500,
        error: undefined,
        attempts: 2,
        durationMs: expect.any(Number),
        outcome: "response",
      }),
    ]);
    expect(JSON.stringify(requests)).not.toContain("SECRET");
    expect(breakers).toEqual([
      expect.objectContaining({
        key: "gen.example",
        from: "closed",
        to: "open",
        reason: expect.any(String),
        gen: expect.any(Number),
        openUntil: expect.any(Number),
      }),
    ]);
    await expect(resilience.fetch("https://gen.example/v1")).rejects.toThrow();
    expect(requests[1]).toMatchObject({ status: undefined, error: "CircuitOpenError", outcome: "error" });
  });

  it("on() returns an unsubscribe function", async () => {
    const { resilience } = setup();
    const seen: unknown[] = [];
    const off = resilience.on("request", (e) => seen.push(e));
    await resilience.fetch("https://gen.example/v1");
    off();
    await resilience.fetch("https://gen.example/v1");
    expect(seen).toHaveLength(1);
  });

  it("a listener that throws is reported and never breaks the request or a level change", async () => {
    const reported: unknown[] = [];
    const report = (e: unknown) => reported.push(e);
    vi.spyOn(console, "error").mockImplementation((_m: unknown, e: unknown) => report(e));
    vi.stubGlobal("reportError", report);
    const { resilience, levels } = setup();
    resilience.on("request", () => {
      throw new Error("listener broke");
    });
    resilience.on("degradation", () => {
      throw new Error("listener broke too");
    });
    const res = await resilience.fetch("https://gen.example/v1");
    expect(await res.text()).toBe("ok");
    expect(levels.degrade("x").name).toBe("high");
    expect(reported.map((e) => (e as Error).message)).toEqual(["listener broke", "listener broke too"]);
  });
});

describe("bad input is refused at once with a clear error", () => {
  it("degradation(options) names the path", () => {
    expect(() => degradation({ levels: { medium: { maxSteps: 0 } } })).toThrow(/degradation\.levels\.medium\.maxSteps/);
    expect(() => degradation({ triggers: { errorRate: 2 } })).toThrow(/degradation\.triggers\.errorRate/);
    expect(() => degradation({ window: -1 })).toThrow(ConfigError);
    expect(() => degradation({ bogus: 1 } as DegradationOptions)).toThrow(/bogus/);
  });

  it("setLevel, configureTriggers, adjust, on", () => {
    const { levels, resilience } = setup();
    expect(() => levels.setLevel("bogus" as "low")).toThrow(/setLevel.*"full".*"bogus"/);
    expect(() => levels.configureTriggers({ errorRate: 1.5 })).toThrow(/errorRate/);
    expect(() => levels.configureTriggers({ responseTime: Number.NaN })).toThrow(/responseTime/);
    expect(() => levels.configureTriggers({ errRate: 0.2 } as never)).toThrow(/errRate/);
    expect(() => levels.configureTriggers(null as never)).toThrow(/degradation\.triggers/);
    expect(() => levels.adjust(null as never)).toThrow(/adjust/);
    expect(() => levels.adjust([] as never)).toThrow(/adjust/);
    expect(() => resilience.on("request", 5 as never)).toThrow(/listener must be a function/);
    expect(levels.currentLevel()).toMatchObject({ name: "full", pinned: false });
  });

  // Was a defect, fixed (input checking; no doc sentence promises this one,
  // the rule that bad input is refused at once does): setLevel's `reason` is neither
  // checked nor made a string (degrade's is: String(reason)), so a non-string
  // reaches currentLevel(), debugInfo() and the `degradation` event, whose
  // `reason` is typed `string` (docs: "`degradation` fires on every level
  // change (`from`, `to`, `percentage`, `reason`)"). Reproduction:
  //   resilience.degradation.setLevel("low", { why: 1 })
  //   → { name: "low", …, reason: { why: 1 }, pinned: true }, no error.
  it("setLevel(name, reason) refuses a non-string reason (or makes it a string, as degrade does)", () => {
    const { levels } = setup();
    let report: unknown;
    try {
      report = levels.setLevel("low", { why: 1 } as never);
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      return;
    }
    expect(typeof (report as { reason: unknown }).reason).toBe("string");
  });

  // Was a defect, fixed: on() accepted any event name, so a typo subscribed to
  // an event that never fires, silently (only TypeScript's types caught it).
  it("on() refuses an unknown event name at once, listing the names there are", () => {
    const { resilience } = setup();
    expect(() => resilience.on("degradations" as never, () => {})).toThrow(TypeError);
    expect(() => resilience.on("degradations" as never, () => {})).toThrow(/expected one of retry, request, breaker/);
    // Inherited names are not events either.
    expect(() => resilience.on("toString" as never, () => {})).toThrow(/unknown event/);
  });
});

describe("docs/degradation.md: a resolution is snapped down the ladder", () => {
  it("any scale below 1 drops a rung: high's 0.95 already takes 1080p to 720p, and 2160p to 1440p", () => {
    const { levels } = setup();
    const at = (level: "full" | "high" | "medium", resolution: string) => {
      levels.setLevel(level);
      return levels.adjust({ resolution }).resolution;
    };
    expect([at("full", "1080p"), at("high", "1080p"), at("medium", "1080p")]).toEqual(["1080p", "720p", "720p"]);
    expect([at("high", "2160p"), at("high", "360p")]).toEqual(["1440p", "360p"]);
  });
});
