/**
 * Outside-in attack on docs/storycore-mapping.md, the README's StoryCore pieces (the `…/policies` row, the mapping in
 * "Learn more", `example:parity`) and examples/storycore-parity, from outside, on arbitrary async work and on real
 * 127.0.0.1 servers.
 *
 * Docs:
 * - docs/storycore-mapping.md, Names: "`ErrorHandlingSystem()` | `createResilience({ …, fallback: fallback([…]),
 *   degradation: degradation() })` (the last two from their entries)"; "`system.get_circuit_breaker('x')`,
 *   `cb.execute(fn)` | `system.breaker("x")`, `.execute(fn)`"; "`system.get_fallback_chain('x').add_fallback(fn,
 *   name=…)` | `system.fallback.chain("x").add(fn, { name, expectedQuality })`";
 *   "`system.graceful_degradation.adjust_parameters(p)` | `system.degradation.adjust(p)`";
 *   "`system.execute_with_resilience(fn, circuit_breaker_name='x', enable_retry=True)` | `system.execute(fn, {
 *   breaker: "x" })`"; "`chain.get_statistics()`, `system.get_system_health()` | `chain.statistics()`,
 *   `system.health()`".
 * - docs/storycore-mapping.md, Numbers kept: "The five degradation levels (`full` 100%, `high` 80%, `medium` 60%,
 *   `low` 40%, `minimal` 20%) with their quality multipliers, resolution scales, step caps and feature tiers: the
 *   table in [degradation](degradation.md)."; "The parameter names the default rewriting rule reads: `quality`,
 *   `resolution`, `steps`, `model`, `features`."; "The trigger thresholds: error rate 0.1, response time 30 s,
 *   memory 0.9, CPU 0.95."; "As in that system, work run through `system.execute(fn)` counts in `health()`'s
 *   `errorRate` and in the automatic degradation triggers, as every `resilience.fetch` call does".
 * - docs/storycore-mapping.md: "`examples/storycore-parity/engines.ts` rewrites the guide's three integration
 *   examples … Run it with `npm run example:parity`."; examples/storycore-parity/README.md: "(it builds first …)".
 * - README.md: "`…/policies` | `retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level
 *   machine, for any async work".
 * - Leaned on: docs/health-and-events.md ("Work run through `execute(fn)` counts there too … in the error rate,
 *   `debugInfo()`'s totals and failures (keyed by its `breaker`'s name, else `"execute"`, with an empty `url`) and
 *   the degradation triggers, by the outcome of the work itself (a `fallback` answering for it leaves it failed); a
 *   run its caller aborted is left out."; "`degraded` above a 10% error rate"); docs/degradation.md (the table,
 *   "`resilience.fetch` applies the level to requests before they leave", "A call that goes down a fallback chain
 *   is rewritten once … every endpoint gets that request", "evaluated at most once a second as calls settle");
 *   docs/breakers.md (defaults 12 in a row, 30 s open; named breakers "like `get_circuit_breaker`");
 *   docs/retry.md ("`retry(fn, options)` … is the same loop on its own").
 *
 * How: `createResilience`, `getResilienceInfo`, the errors (root); `fallback` (./fallback); `degradation`,
 * `defaultLevels` (./degradation); `createClient` (./ky); `retry`, `CircuitBreaker`, `FallbackChain`, `nextLevel`,
 * `initialLevelState`, `adjustParameters`, `defaultLevels`, `LEVEL_NAMES` (./policies); `TestClock` (./testing) for
 * every layer; two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) answering 200/503 or holding
 * answers while the clock moves; `process.cpuUsage`/`constrainedMemory` stubbed quiet where a trigger is read (a
 * TestClock reads CPU high). `npm run example:parity` was run as documented (Node 22.23): it built, exited 0 and
 * printed wan / qwen / `video:story(medium)+enhanced@720p`, the video chain's statistics and five breaker names.
 *
 * Paths: generic work (named breakers, `execute` with and without a breaker, the layer's generic chains, the
 * ./policies classes and level machine), plain call, `Request` input, fallback chain (primary 503, backup serves;
 * both 503), hedged chain, degradation rewrite at every level, the ky client (`json`, 503 as HTTPError, held
 * answers), the guide's video engine with its engines as HTTP clients of the two servers.
 *
 * Defects pinned: none. Every behavioural sentence of the mapping held on every path driven.
 *
 * Held (plain `it`):
 * - `breaker("x")` is one breaker per name and the same one `execute(fn, { breaker: "x" })` runs behind: opened by
 *   12 failures of either, the other refuses (`CircuitOpenError`, fn not run); `health()` lists it open, `unhealthy`.
 * - `execute(fn, { breaker })` retries by default (3 attempts on the layer's clock), then `RetryExhaustedError`.
 * - `fallback.chain("x")` is one chain per name; `add(fn, { name, expectedQuality })` falls through to the next;
 *   `statistics()` equals `health().fallback.x`; all failing is `FallbackExhaustedError`.
 * - `adjust(p)` at each level gives the table's row and leaves `p` as it was; `defaultLevels` is the same in
 *   ./policies and ./degradation.
 * - Counting: every path adds exactly one call to `debugInfo().totals` (plain ok/503 after 2 attempts, `Request`
 *   ok/503, chain served by the backup / both 503, ky ok / 503 HTTPError, `execute` ok / failing / under a named
 *   breaker), failures only for the failed ones; `recentErrors` names `execute` and the breaker with an empty url.
 * - `execute` alone: 1 failure in 10 `healthy`, 2 in 11 `degraded`; error-rate trigger 2 in 20 holds `full`, 3 in 21
 *   steps to `high` (80%); execute and fetch (ky, `Request`, chain) share one window; p95 of 30000 ms holds, 30001
 *   ms steps down, fed by `execute` alone and by 20 ky calls held on the clock plus one `execute`.
 * - `execute` with a `fallback` answering counts as failed; one its caller aborted is left out of totals and window.
 * - At each of the five levels, ky's `json`, a plain call and a `Request` down a hedged chain (both endpoints) send
 *   exactly `adjust(p)` (itself checked against the table); at `full` the bytes as written.
 * - A level the execute-fed triggers chose (`high`) is the one ky, `Request` and chain calls are rewritten at and
 *   report in `getResilienceInfo`, and `health().degradationLevel` names.
 * - The guide's video engine on real servers: hunyuan (503) fails over to wan 12 times, then its breaker is open
 *   and passed over (13th call never reaches it, `fallback` event with `CircuitOpenError`); every video comes back
 *   adjusted at `medium`; `health()`: `unhealthy`, error rate 0, chain statistics; totals 13 calls, 0 failures.
 * - ./policies on their own: `retry(fn)` 3 attempts at 0/1000/3000 ms, `RetryExhaustedError` (attempts 3, cause the
 *   last); `new CircuitBreaker` with the documented defaults opens at 12, refuses until 30 s, then probes; a
 *   `FallbackChain` around it serves from the next; `nextLevel` at 0.1 / 30 s / 0.9 / 0.95 holds and just above
 *   steps; `adjustParameters` gives the documented medium example.
 *
 * Docs-silent (not pinned):
 * - `execute(() => resilience.fetch(url))` counts one failing call twice: the fetch's 503 as a failure and the work
 *   (which resolved with that 503) as a success, so one 503 reads `errorRate` 0.5 and the window 1 in 2.
 * - A ky client given its own `timeout` aborts a hung call through its signal: the layer takes that as the caller's
 *   abort, so a provider that hangs behind ky's timeout counts nowhere (`totals` 0, window empty, `errorRate` 0).
 * - A layer's generic chain counts an entry refused by its open named breaker as a failed call in `statistics()`
 *   (hunyuan_premium 13 calls, 0 successes, though it ran 12 times), where an HTTP endpoint passed over for its open
 *   breaker "is not counted"; the `fallback` reason is the error's text (`CircuitOpenError: circuit for …`), not the
 *   HTTP chains' "circuit open".
 * - With a breaker that opens on a middle attempt, `execute` rejects with the work's own error (`Error: GPU busy`);
 *   opening on the last attempt it is `RetryExhaustedError` around it.
 * - The levels keep stepping down (one per 10 s) after failures stop, until they leave the 60 s window: 21 failing
 *   `execute`s in 20 s, then only good ones, took the level to `minimal` at 49 s.
 * - `new CircuitBreaker(key, policy, clock)` takes a whole resolved policy: `{ clock }` alone is a `ConfigError`
 *   listing seven missing numbers; there are no defaults as `breaker("x")` has.
 * - The example's `health().breakers` lists five of the seven breakers the engines name (flux_image, newbie_image
 *   appear once used), where `get_circuit_breaker` in the guide's `__init__` would make them at once.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { degradation, type LevelName, defaultLevels as levelsOfDegradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  RetryExhaustedError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  adjustParameters,
  CircuitBreaker,
  defaultLevels,
  FallbackChain,
  type GenerationParams,
  initialLevelState,
  LEVEL_NAMES,
  nextLevel,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const api = httpUpstream();
const spare = httpUpstream();
serveDuringFile(api, spare);

const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) hit.res.end("late");
  vi.restoreAllMocks();
});

/** Memory and CPU read as quiet: only the error rate and the latency move the level (a TestClock reads CPU high). */
function quietMachine(): void {
  vi.spyOn(process, "constrainedMemory").mockReturnValue(undefined as unknown as number);
  vi.spyOn(process, "cpuUsage").mockImplementation(() => ({ user: 0, system: 0 }));
}

const answer =
  (code: number, body = `{"status":${code}}`) =>
  (hit: Hit): void => {
    hit.res.writeHead(code, { "content-type": "application/json" }).end(body);
  };

const boom = (): Promise<never> => Promise.reject(new Error("GPU busy"));
const fine = (): Promise<string> => Promise.resolve("ok");

/** docs/degradation.md's table, which docs/storycore-mapping.md points to. */
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
const FEATURES = ["core", "enhancements", "basic", "essential", "extra"];
const PARAMS = {
  prompt: "a cat",
  quality: 0.9,
  resolution: "1080p",
  size: "1000x1000",
  steps: 50,
  model: "premium",
  features: FEATURES,
};

describe("Names: ErrorHandlingSystem, ported", () => {
  it("breaker(\"x\") and execute(fn, { breaker: \"x\" }) are one breaker, as get_circuit_breaker('x') and circuit_breaker_name='x' are", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, retry: false, fallback: fallback([]), degradation: degradation() });
    const cb = system.breaker("hunyuan_video");
    expect(system.breaker("hunyuan_video")).toBe(cb);
    // 12 failures in a row through cb.execute (the layer's default breaker) open it.
    for (let i = 0; i < 12; i++) await expect(cb.execute(boom)).rejects.toThrow("GPU busy");
    expect(cb.state).toBe("open");
    let ran = 0;
    const refused = await system
      .execute(
        () => {
          ran++;
          return "x";
        },
        { breaker: "hunyuan_video" },
      )
      .catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(ran).toBe(0);
    expect(system.health()).toMatchObject({ status: "unhealthy" });
    expect(system.health().breakers.hunyuan_video?.state).toBe("open");

    // The other way: opened through execute(fn, { breaker }), cb refuses.
    for (let i = 0; i < 12; i++) await system.execute(boom, { breaker: "wan_video" }).catch(() => {});
    expect(system.breaker("wan_video").state).toBe("open");
    await expect(system.breaker("wan_video").execute(fine)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it("execute(fn, { breaker }) retries by default (enable_retry=True): three attempts on the layer's clock", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    let n = 0;
    const value = await clock.run(
      system.execute(
        async () => {
          n++;
          if (n < 3) throw new Error("GPU busy");
          return "frame";
        },
        { breaker: "video_generation" },
      ),
    );
    expect([value, n]).toEqual(["frame", 3]);
    n = 0;
    const error = await clock.run(system.execute(boom, { breaker: "video_generation" })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
  });

  it('fallback.chain("x").add(fn, { name, expectedQuality }): the first that serves wins; statistics() is health().fallback.x', async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, retry: false, fallback: fallback([]), degradation: degradation() });
    const chain = system.fallback
      .chain<GenerationParams, string>("video_generation")
      .add(boom, { name: "hunyuan_premium", expectedQuality: 1 })
      .add(async (r) => `wan:${r.prompt}`, { name: "wan_standard", expectedQuality: 0.8 });
    expect(system.fallback.chain("video_generation")).toBe(chain);
    expect(await chain.execute({ prompt: "scene" })).toBe("wan:scene");
    const stats = chain.statistics();
    expect(stats).toMatchObject({
      lastSuccessfulFallback: "wan_standard",
      overallSuccessRate: 1,
      fallbacks: {
        hunyuan_premium: { calls: 1, successes: 0 },
        wan_standard: { calls: 1, successes: 1 },
      },
    });
    expect(system.health().fallback.video_generation).toEqual(stats);
    const dead = system.fallback.chain<string, string>("dead").add(boom, { name: "only" });
    await expect(dead.execute("x")).rejects.toBeInstanceOf(FallbackExhaustedError);
  });

  it("degradation.adjust(p) at each of the five levels: the table's row (adjust_parameters), p left as it was", () => {
    const system = createResilience({ degradation: degradation() });
    for (const name of LEVEL_NAMES) {
      system.degradation.setLevel(name);
      const t = TABLE[name];
      expect(system.degradation.currentLevel().percentage).toBe(t.percentage);
      const p = { quality: 1, steps: 50, model: "premium", features: [...FEATURES] };
      const copy = structuredClone(p);
      expect(system.degradation.adjust(p)).toEqual({
        quality: t.q,
        steps: t.steps === null ? 50 : t.steps,
        model: ["premium", "standard", "basic"][t.modelStep],
        features: t.features.includes("all") ? FEATURES : FEATURES.filter((f) => t.features.includes(f)),
      });
      expect(p).toEqual(copy);
      expect(defaultLevels[name]).toEqual(levelsOfDegradation[name]);
    }
  });
});

/** A layer on `clock` with the degradation stage; `retry` as given. */
function layer(clock: TestClock, extra: { retry?: false; breaker?: false } = {}) {
  return createResilience({
    clock,
    retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
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
    ...(extra.breaker === false ? { breaker: false as const } : {}),
    ...(extra.retry === false ? { retry: false as const } : {}),
  });
}

const json = (body: unknown, method = "POST"): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("execute(fn) counts in health()'s errorRate and the triggers, as every resilience.fetch call does", () => {
  it("each call counts once in debugInfo().totals on every fetch path (plain, Request, chain, ky), and so does execute", async () => {
    const clock = new TestClock();
    const system = layer(clock);
    const ky = createClient({ resilience: system });
    api.on((hit) => (hit.path.includes("fail") || hit.path.startsWith("/chain") ? answer(503)(hit) : answer(200)(hit)));
    spare.on((hit) => (hit.path.includes("fail") ? answer(503)(hit) : answer(200)(hit)));
    const totals = () => system.debugInfo().totals;
    const steps: Array<[string, () => Promise<unknown>, boolean]> = [
      ["plain ok", () => system.fetch(`${api.base}/ok`), false],
      ["plain 503 (2 attempts)", () => system.fetch(`${api.base}/fail`), true],
      ["Request ok", () => system.fetch(new Request(`${api.base}/ok`)), false],
      ["Request 503", () => system.fetch(new Request(`${api.base}/fail`)), true],
      ["chain served by the backup", () => system.fetch(`${api.base}/chain/x`), false],
      ["chain, both 503", () => system.fetch(`${api.base}/chain/fail`), true],
      ["ky ok", () => ky.get(`${api.base}/ok`).text(), false],
      [
        "ky 503 (HTTPError)",
        () =>
          ky
            .get(`${api.base}/fail`)
            .text()
            .catch(() => "HTTPError"),
        true,
      ],
      ["execute ok", () => system.execute(fine), false],
      ["execute failing (2 attempts)", () => system.execute(boom).catch(() => "failed"), true],
      ["execute with a named breaker, failing", () => system.execute(boom, { breaker: "b" }).catch(() => 0), true],
    ];
    const seen: Array<[string, { calls: number; failures: number }]> = [];
    for (const [name, run] of steps) {
      const before = totals();
      await clock.run(run());
      const after = totals();
      seen.push([name, { calls: after.calls - before.calls, failures: after.failures - before.failures }]);
    }
    expect(seen).toEqual(steps.map(([name, , failed]) => [name, { calls: 1, failures: failed ? 1 : 0 }]));
    const failures = system.debugInfo().recentErrors.slice(-2);
    expect(failures.map((f) => [f.key, f.url, f.status, f.error])).toEqual([
      ["execute", "", undefined, "RetryExhaustedError"],
      ["b", "", undefined, "RetryExhaustedError"],
    ]);
  });

  it("health(): execute alone makes it degraded above 10% (1 failure in 10 healthy, 2 in 11 degraded)", async () => {
    const clock = new TestClock();
    const system = layer(clock, { retry: false });
    for (let i = 0; i < 9; i++) await system.execute(fine);
    await system.execute(boom).catch(() => {});
    expect(system.health()).toMatchObject({ status: "healthy", errorRate: 0.1 });
    await system.execute(boom, { breaker: "upscaler" }).catch(() => {});
    expect(system.health()).toMatchObject({ status: "degraded", errorRate: 2 / 11 });
  });

  it("the error-rate trigger (0.1) fed by execute alone: 2 in 20 hold full, 3 in 21 step down to high", async () => {
    quietMachine();
    const clock = new TestClock();
    const system = layer(clock, { retry: false, breaker: false });
    for (let i = 0; i < 17; i++) await system.execute(fine);
    await system.execute(boom).catch(() => {});
    await system.execute(boom, { breaker: "upscaler" }).catch(() => {});
    await clock.advance(1_000);
    await system.execute(fine);
    expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 20, errorRate: 0.1 });
    expect(system.degradation.currentLevel().name).toBe("full");
    await clock.advance(1_000);
    await system.execute(boom).catch(() => {});
    expect(system.degradation.currentLevel()).toMatchObject({ name: "high", percentage: 80 });
  });

  it("the same trigger fed by execute and fetch together (ky, Request, chain): one window, one rate", async () => {
    quietMachine();
    const clock = new TestClock();
    const system = layer(clock, { retry: false, breaker: false });
    const ky = createClient({ resilience: system });
    api.on((hit) => (hit.path.includes("fail") || hit.path.startsWith("/chain") ? answer(503)(hit) : answer(200)(hit)));
    spare.on(answer(200));
    for (let i = 0; i < 5; i++) await system.execute(fine);
    for (let i = 0; i < 4; i++) await ky.get(`${api.base}/ok`).text();
    for (let i = 0; i < 4; i++) await system.fetch(new Request(`${api.base}/ok`));
    for (let i = 0; i < 4; i++) await system.fetch(`${api.base}/chain/x`); // the backup serves: good calls
    await system.execute(boom).catch(() => {});
    await ky.get(`${api.base}/fail`).catch(() => {});
    await clock.advance(1_000);
    await system.execute(fine);
    expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 20, errorRate: 0.1 });
    expect(system.degradation.currentLevel().name).toBe("full");
    await clock.advance(1_000);
    await system.fetch(new Request(`${api.base}/fail`));
    expect(system.degradation.currentLevel().name).toBe("high");
  });

  for (const [latency, level] of [
    [30_000, "full"],
    [30_001, "high"],
  ] as const) {
    it(`the response-time trigger (30 s) fed by execute: a p95 of ${latency} ms leaves the level at ${level}`, async () => {
      quietMachine();
      const clock = new TestClock();
      const system = layer(clock, { retry: false, breaker: false });
      const slow = () => new Promise<string>((resolve) => clock.setTimer(() => resolve("frame"), latency));
      const runs = Array.from({ length: 20 }, () => system.execute(slow));
      await clock.advance(latency);
      await Promise.all(runs);
      await clock.advance(1_000);
      await system.execute(fine);
      expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 21, p95: latency });
      expect(system.degradation.currentLevel().name).toBe(level);
    });
  }

  it("a `fallback` answering for the work leaves it failed; a run its caller aborted is left out", async () => {
    const clock = new TestClock();
    const system = layer(clock, { retry: false });
    expect(await system.execute(boom, { fallback: () => "cached" })).toBe("cached");
    expect(system.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    const controller = new AbortController();
    const run = system.execute(() => new Promise(() => {}), { signal: controller.signal });
    controller.abort(new Error("user left"));
    await expect(run).rejects.toThrow("user left");
    expect(system.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    expect(system.debugInfo().degradation?.window.samples).toBe(1);
  });
});

describe("Numbers kept over HTTP: the default rule rewrites quality, resolution, steps, model, features as adjust(p) does", () => {
  for (const name of LEVEL_NAMES) {
    it(`at ${name}: ky's json, a Request down a hedged chain (both endpoints) and a plain call send adjust(p)`, async () => {
      const clock = new TestClock();
      const system = createResilience({
        clock,
        retry: false,
        fallback: fallback([
          {
            name: "video",
            hedge: { delay: 1_000 },
            endpoints: [
              { name: "hunyuan", url: `${api.base}/video` },
              { name: "wan", url: `${spare.base}/video` },
            ],
          },
        ]),
        degradation: degradation(),
      });
      const ky = createClient({ resilience: system });
      api.on((hit) => (hit.path.startsWith("/video") ? held.push(hit) : answer(200)(hit)));
      spare.on(answer(200));
      system.degradation.setLevel(name);
      const want = system.degradation.adjust(PARAMS);
      const t = TABLE[name];
      // The row itself, so that adjust cannot agree with the rewrite by both being wrong.
      expect(want).toEqual({
        ...PARAMS,
        quality: Number((0.9 * t.q).toPrecision(12)),
        resolution: { full: "1080p", high: "720p", medium: "720p", low: "720p", minimal: "720p" }[name],
        steps: t.steps ?? 50,
        model: ["premium", "standard", "basic"][t.modelStep],
        features: t.features.includes("all") ? FEATURES : FEATURES.filter((f) => t.features.includes(f)),
      });
      await ky.post(`${api.base}/ky`, { json: PARAMS }).text();
      await system.fetch(`${api.base}/plain`, json(PARAMS));
      const hedged = system.fetch(new Request(`${api.base}/video/jobs`, json(PARAMS, "PUT")));
      await api.nth(3);
      await clock.advance(1_000);
      const res = await hedged;
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "wan", degradationLevel: name });
      const bodies = [
        ...api.hits.map((h) => [h.path, JSON.parse(h.body)]),
        ...spare.hits.map((h) => [h.path, JSON.parse(h.body)]),
      ];
      expect(bodies).toEqual([
        ["/ky", want],
        ["/plain", want],
        ["/video/jobs", want],
        ["/video/jobs", want],
      ]);
      if (name === "full") expect(api.hits[0]?.body).toBe(JSON.stringify(PARAMS));
    });
  }

  it("a level the execute-fed triggers chose is the one HTTP calls (ky, Request, chain) are sent at, and health() names", async () => {
    quietMachine();
    const clock = new TestClock();
    const system = layer(clock, { retry: false, breaker: false });
    const ky = createClient({ resilience: system });
    api.on((hit) => (hit.path.startsWith("/chain") ? answer(503)(hit) : answer(200)(hit)));
    spare.on(answer(200));
    for (let i = 0; i < 21; i++) {
      await system.execute(boom, { breaker: "hunyuan_video" }).catch(() => {});
      await clock.advance(100);
    }
    await clock.advance(1_000);
    await system.execute(boom).catch(() => {});
    expect(system.health()).toMatchObject({ degradationLevel: "high", status: "unhealthy" });
    const want = { quality: 0.9, steps: 50, model: "premium", resolution: "720p" };
    const body = { quality: 1, steps: 50, model: "premium", resolution: "1080p" };
    const viaKy = await ky.post(`${api.base}/ky`, { json: body });
    const viaRequest = await system.fetch(new Request(`${api.base}/req`, json(body)));
    const viaChain = await system.fetch(`${api.base}/chain/x`, json(body, "PUT"));
    for (const res of [viaKy, viaRequest, viaChain]) expect(getResilienceInfo(res)?.degradationLevel).toBe("high");
    expect([...api.hits, ...spare.hits].map((h) => JSON.parse(h.body))).toEqual([want, want, want, want]);
  });
});

describe("the response-time trigger (30 s) fed by ky calls and execute in one window", () => {
  for (const [latency, level] of [
    [30_000, "full"],
    [30_001, "high"],
  ] as const) {
    it(`20 ky calls the server holds ${latency} ms on the clock, then one execute: ${level}`, async () => {
      quietMachine();
      const clock = new TestClock();
      const system = layer(clock, { retry: false, breaker: false });
      const ky = createClient({ resilience: system });
      api.on((hit) => held.push(hit));
      const calls = Array.from({ length: 20 }, (_, i) => ky.get(`${api.base}/slow/${i}`).text());
      await api.nth(20);
      await clock.advance(latency);
      for (const hit of held.splice(0)) hit.res.end("late");
      await Promise.all(calls);
      await clock.advance(1_000);
      await system.execute(fine);
      expect(system.debugInfo().degradation?.window).toMatchObject({ samples: 21, p95: latency });
      expect(system.degradation.currentLevel().name).toBe(level);
    });
  }
});

describe("the guide's video engine, ported onto real servers (hunyuan on one, wan on the other)", () => {
  it("a dead hunyuan: wan serves each video; hunyuan's breaker opens after 12 and is passed over; health() says so", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 50 },
      fallback: fallback([]),
      degradation: degradation(),
    });
    api.on(answer(503));
    spare.on((hit) => answer(200, hit.body)(hit));
    const engine = (base: string) => async (r: GenerationParams) => {
      const res = await fetch(`${base}/generate`, json(r));
      if (!res.ok) throw new Error(`status ${res.status}`);
      return (await res.json()) as GenerationParams;
    };
    const hunyuanBreaker = system.breaker("hunyuan_video");
    const wanBreaker = system.breaker("wan_video");
    const chain = system.fallback
      .chain<GenerationParams, GenerationParams>("video_generation")
      .add((r) => hunyuanBreaker.execute(() => engine(api.base)(r)), { name: "hunyuan_premium", expectedQuality: 1 })
      .add((r) => wanBreaker.execute(() => engine(spare.base)(r)), { name: "wan_standard", expectedQuality: 0.8 });
    const fallbacks: string[] = [];
    system.on("fallback", (e) => fallbacks.push(`${e.from}->${e.next}: ${e.reason}`));
    system.degradation.setLevel("medium");
    const generateVideo = (request: GenerationParams) =>
      system.execute(() => chain.execute(system.degradation.adjust(request)), { breaker: "video_generation" });
    for (let i = 0; i < 13; i++) {
      const video = await generateVideo({ prompt: `scene ${i}`, quality: 1, steps: 50, resolution: "1080p" });
      expect(video).toEqual({ prompt: `scene ${i}`, quality: 0.8, steps: 30, resolution: "720p" });
    }
    expect(api.hits).toHaveLength(12);
    expect(spare.hits).toHaveLength(13);
    expect(hunyuanBreaker.state).toBe("open");
    // Twelve failures, then one pass-over of the open breaker: each hands the video to wan.
    expect(fallbacks).toHaveLength(13);
    expect(fallbacks.every((f) => f.startsWith("hunyuan_premium->wan_standard: "))).toBe(true);
    expect(fallbacks[12]).toMatch(/CircuitOpenError/);
    expect(system.health()).toMatchObject({
      status: "unhealthy",
      errorRate: 0,
      breakers: {
        hunyuan_video: { state: "open" },
        wan_video: { state: "closed" },
        video_generation: { state: "closed" },
      },
      fallback: { video_generation: { lastSuccessfulFallback: "wan_standard", overallSuccessRate: 1 } },
    });
    expect(system.debugInfo().totals).toEqual({ calls: 13, failures: 0 });
  });
});

describe("the generic pieces on their own (./policies), for any async work", () => {
  it("retry(fn): three attempts by default on the given clock, then RetryExhaustedError with the last error as cause", async () => {
    const clock = new TestClock();
    let n = 0;
    const error = await clock
      .run(
        retry(
          async () => {
            n++;
            throw new Error(`GPU busy ${n}`);
          },
          { clock, jitter: "none" },
        ),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect([n, (error as RetryExhaustedError).attempts, ((error as Error).cause as Error).message]).toEqual([
      3,
      3,
      "GPU busy 3",
    ]);
    // 1000 then 2000 ms (initialDelay, exponentialBase 2) before the second and third attempts.
    expect(clock.now()).toBe(3_000);
  });

  it("CircuitBreaker: 12 failures in a row open it, 30 s later it lets a probe through; FallbackChain serves from the next", async () => {
    const clock = new TestClock();
    // The documented defaults (docs/breakers.md's table), spelt out: the class takes a resolved policy and a clock.
    const policy = {
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
    };
    const cb = new CircuitBreaker("engine", policy, clock);
    for (let i = 0; i < 11; i++) await cb.execute(boom).catch(() => {});
    expect(cb.state).toBe("closed");
    await cb.execute(boom).catch(() => {});
    expect(cb.state).toBe("open");
    await expect(cb.execute(fine)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(29_999);
    await expect(cb.execute(fine)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(1);
    expect(await cb.execute(fine)).toBe("ok");
    const chain = new FallbackChain<string, string>("image", { clock })
      .add(() => cb.execute(boom), { name: "qwen", expectedQuality: 1 })
      .add(async (p) => `flux:${p}`, { name: "flux", expectedQuality: 0.8 });
    expect(await chain.execute("landscape")).toBe("flux:landscape");
    expect(chain.statistics()).toMatchObject({ lastSuccessfulFallback: "flux", overallSuccessRate: 1 });
  });

  it("the level machine at the mapping's thresholds: error rate 0.1, response time 30 s, memory 0.9, CPU 0.95", () => {
    const settings = {
      triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
      minSamples: 20,
      stepInterval: 10_000,
      restoreAfter: 60_000,
    };
    const quiet = { samples: 20, errorRate: 0, p95: 100, memory: 0.5, cpu: 0.5, floor: 0 };
    const level = (signals: Partial<typeof quiet>) =>
      LEVEL_NAMES[
        nextLevel(initialLevelState(0), { type: "evaluate", signals: { ...quiet, ...signals } }, 1_000, settings).index
      ];
    expect([
      level({ errorRate: 0.1 }),
      level({ errorRate: 0.11 }),
      level({ p95: 30_000 }),
      level({ p95: 30_001 }),
      level({ memory: 0.9 }),
      level({ memory: 0.91 }),
      level({ cpu: 0.95 }),
      level({ cpu: 0.96 }),
    ]).toEqual(["full", "high", "full", "high", "full", "high", "full", "high"]);
    // adjustParameters with the exported table gives adjust's row (the mapping's adjust_parameters).
    expect(
      adjustParameters({ quality: 1, resolution: "1080p", steps: 50, model: "premium" }, defaultLevels.medium, {
        resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
        sizeMultiple: 8,
        models: [["premium", "standard", "basic"]],
      }),
    ).toEqual({ quality: 0.8, resolution: "720p", steps: 30, model: "standard" });
  });
});
