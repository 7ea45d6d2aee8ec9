/**
 * Outside-in attack on docs/storycore-mapping.md, the README's "Upgrading from 0.1" note (with the CHANGELOG
 * migration code it points to) and entries table, examples/storycore-parity, and the `./policies` generic pieces
 * used for non-HTTP async work (`retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level
 * machine, `adjustParameters`, `defaultLevels`). Aimed at what mapping-fiftyseven, mappingdoc-fiftyfive,
 * migration-twentythree and badinput-fiftyeight did not drive.
 *
 * Docs:
 * - src/policies/index.ts (the `./policies` entry's JSDoc): "The machines are pure functions over plain data
 *   (`transition`, `nextLevel`), usable to drive state stored elsewhere."; src/policies/breaker-state.ts
 *   `transition`: "same state, input and time, same result; the state passed in is never mutated. An unchanged
 *   state is returned as the same object"; docs/breakers.md "its state is plain versioned JSON (`toJSON()`: `v`,
 *   `state`, `gen` …, with `gen` +1 on every transition".
 * - docs/storycore-mapping.md: "The five degradation levels (`full` 100%, `high` 80%, `medium` 60%, `low` 40%,
 *   `minimal` 20%) with their quality multipliers, resolution scales, step caps and feature tiers"; "The trigger
 *   thresholds: error rate 0.1, response time 30 s, memory 0.9, CPU 0.95."; "As in that system, work run through
 *   `system.execute(fn)` counts in `health()`'s `errorRate` and in the automatic degradation triggers, as every
 *   `resilience.fetch` call does"; the Names rows; "`examples/storycore-parity/engines.ts` rewrites the guide's three
 *   integration examples … Run it with `npm run example:parity`."
 * - src/core/levels.ts `defaultLevels`: "The guide's table, frozen to the last array".
 * - README.md: "**Upgrading from 0.1**: wrap the 0.1 `fallback` array and `degradation` object in `fallback([…])` and
 *   `degradation({…})` from their entries (the old shapes are a `ConfigError` that says so), import `retry`,
 *   `CircuitBreaker` and the other generic policies from `…/policies`, rename `sensitiveHeaders` to
 *   `crossOriginHeaders` …, and note the breaker's new defaults: `failureThreshold` counts failures in a row (12),
 *   beside a 50% failure-rate rule." CHANGELOG.md: "`resilience.fallbackChain(name)` is now
 *   `resilience.fallback.chain(name)`; `resilience.fallback` and `resilience.degradation` are `undefined` without
 *   their stage (typed so …)"; "a 30 s open `timeout` (was 60 s) … `halfOpenMaxCalls` (3) and `successThreshold` (2)
 *   are unchanged."
 * - docs/options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`
 *   naming its path too."; docs/retry.md "Both check all their options before the first attempt (a `ConfigError`
 *   naming the path …) … rejects the call, never throws"; docs/fallback.md run/execute options "one of the wrong type
 *   or one that cannot be read rejects with a `ConfigError` naming it"; docs/breakers.md hold "`NaN` or `Infinity`
 *   is a `TypeError`".
 *
 * How: `createResilience`, `getResilienceInfo`, `ConfigError` (root); `fallback` (./fallback); `degradation`
 * (./degradation); `createClient` (./ky); `resilientProxy` (./cloudflare); the `./policies` exports; `TestClock`
 * (./testing) for every wait; one node:http server on 127.0.0.1 (test/helpers/http-upstream.ts) for the rewrite that
 * generic work's failures bring about; `fast-check` for the breaker machine; the example run as its npm script does
 * (`node examples/storycore-parity/engines.ts` over the built package; built first when dist/ is missing).
 *
 * Paths: generic work (`execute`, named breakers, layer chains, standalone policies, the pure machines fed states
 * read back from JSON), plain `resilience.fetch` POSTs rewritten at a level generic work set, the example itself.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the sixtieth session, so plain `it`):
 * 1. ./policies: "The machines are pure functions over plain data (`transition`, `nextLevel`), usable to drive
 *    state stored elsewhere." Observed: `initialLevelState(now)` holds `lastStep: -Infinity`, which JSON (KV,
 *    localStorage, a Durable Object's JSON) stores as `null`; fed back, the machine decides otherwise: on a clock
 *    that starts at 0 (`TestClock`, a `performance.now()` clock) a breach at 5 s steps a fresh state down to `high`
 *    and leaves the same state read back from JSON at `full` (`5000 - null` is read as inside `stepInterval`).
 *    `transition`'s snapshots survive JSON whole (held below).
 *
 * Held (plain `it`):
 * - The example, run as `npm run example:parity` runs it: video served by `wan` after `hunyuan` failed, the workflow
 *   at `medium` renders `720p`, `lastSuccessfulFallback` `wan_standard`, the named breakers listed; exit 0.
 * - Migration: 0.1's minimal shapes (`degradation: {}`, `fallback: []`), and `true` or `null` there, are `ConfigError`s naming the
 *   wrapper on root and ky (the proxy's `fallback` naming its routes); `sensitiveHeaders` even `undefined` names
 *   `crossOriginHeaders`; the CHANGELOG's after-code compiles and runs, `fallbackChain` gone (a type error too); a
 *   ported `get_circuit_breaker` opens on 12 in a row (not 11 + a success + 11), stays open 30 s, then 3 probes,
 *   2 successes close.
 * - `defaultLevels` equals degradation.md's table and is frozen to the last array; `adjustParameters(p,
 *   defaultLevels[l], docs' ladders)` equals `system.degradation.adjust(p)` at each of the five levels.
 * - `nextLevel` on the mapping's thresholds: 0.1, 30 000 ms, 0.9 and 0.95 hold; just above each steps down.
 * - `transition` (3,000 random runs over deep-frozen states): never mutates, deterministic, an unchanged state comes
 *   back as the same object, every change of state name is `gen` + 1, every snapshot survives JSON.
 * - 21 failing `execute`s (no HTTP) raise `errorRate` and step the level to `high`; the next POST to a real server
 *   goes out rewritten (quality 0.9, 720p), `degradationLevel` "high".
 * - Bad input to each generic piece, at once, by path, fn never run, no timer armed: `CircuitBreaker` (revoked
 *   options, a throwing `isFailure` getter, revoked `initial`, no clock, NaN timeout, rate 0), `RetryBudget`
 *   (revoked/empty clock, Infinity ratio, negative refill, NaN deposit), `Bulkhead` (-1, "2", Infinity, 2.5,
 *   missing), `FallbackChain` (bad order/clock, revoked options; `add` quality -1/"1"; `execute`/`run` revoked
 *   options, revoked or throwing signal, NaN/-1 hedge), `retry(fn)` (revoked onRetry/budget/clock/retryOn, getter
 *   maxAttempts), the level's `configureTriggers`/`setLevel`/`adjust`, `nextLevel` "set" to an unknown level, a
 *   breaker's `hold(NaN)`.
 *
 * Docs-silent (not pinned; the 0.1 default degradation now written in README.md's note and CHANGELOG.md, sixtieth
 * session, asserted in "upgrading from 0.1" below; `execute.breaker` named twice fixed the same session, asserted in
 * test/policies/generic-promises.test.ts):
 * - A named breaker's `execute(fn, signal)` given a revoked Proxy rejects with the engine's "Cannot perform 'get' on
 *   a proxy that has been revoked", and a signal whose `aborted` getter throws with that getter's error (as
 *   `resilience.fetch` treats `init.signal`), where `execute`, `retry(fn)` and a chain's `execute`/`run` name
 *   `…signal` in a `ConfigError`.
 * - `FallbackChain#add(fn, revokedProxy)` throws the engine's TypeError, and `add(fn, { get name() { throw } })` the
 *   getter's error; `add`'s other mistakes are `TypeError`s naming the option.
 * - `Bulkhead`'s key is not checked (`undefined`, `123` taken); `acquire({})` takes a free slot with an object that
 *   is no signal, and queued throws "signal?.addEventListener is not a function"; a revoked Proxy as its signal
 *   throws the engine's error synchronously. `CircuitBreaker#success/failure/release(undefined)` throw "Cannot read
 *   properties of undefined"; `degrade(revokedProxy)` the engine's error from `String()`.
 * - `new RetryBudget({ ratio: 2, … })` is taken (no upper bound, as the layer's `budget.ratio`).
 * - `execute(fn, { breaker: revokedProxy })` lists `execute.breaker` twice in one message.
 * - 0.1 made degradation on by default (`resilience.degradation` always there, the default rule rewriting every JSON
 *   body); a 0.1 config with no `degradation` key now runs without it, silently; the README note speaks only of
 *   wrapping an object (the CHANGELOG's "opt-in entries" implies it). `degradation: false` / `fallback: false` are
 *   refused with the "after 0.1.0 the options go through it" message, though 0.1 never took `false` there.
 * - `nextLevel`/`transition` with an unknown input `type` return `undefined`; `backoffDelay` with an unknown
 *   `jitter` returns `undefined`, with `n` NaN returns NaN; `adjustParameters` without a table throws "Cannot read
 *   properties of undefined (reading 'resolutions')".
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  adjustParameters,
  type BreakerInput,
  Bulkhead,
  CircuitBreaker,
  defaultLevels,
  FallbackChain,
  type GenerationParams,
  initialBreakerState,
  initialLevelState,
  LEVEL_NAMES,
  type LevelState,
  type MachineSettings,
  nextLevel,
  type ResolvedBreakerPolicy,
  RetryBudget,
  retry,
  type Signals,
  transition,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const api = httpUpstream();
serveDuringFile(api);

const revoked = (): object => {
  const p = Proxy.revocable({}, {});
  p.revoke();
  return p.proxy;
};

/** docs/degradation.md's ladders (`2160p … 360p`, multiple 8, `premium → standard → basic`). */
const DOC_TABLE = {
  resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
  sizeMultiple: 8,
  models: [["premium", "standard", "basic"]],
};

/** The mapping's thresholds and degradation.md's pace, as the machine takes them. */
const SETTINGS: MachineSettings = {
  triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
  minSamples: 20,
  stepInterval: 10_000,
  restoreAfter: 60_000,
};

const breach: Signals = { samples: 20, errorRate: 0.5, p95: undefined, memory: undefined, cpu: undefined, floor: 0 };

describe("the guide's examples, ported (examples/storycore-parity)", () => {
  it("runs as `npm run example:parity` runs it, with the results the guide's flow gives", () => {
    if (!existsSync("dist/index.js") || !existsSync("dist/policies/index.js")) {
      execFileSync("npm", ["run", "build"], { stdio: "ignore" });
    }
    const out = execFileSync(process.execPath, ["examples/storycore-parity/engines.ts"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    // hunyuan's first call fails (1 % 3), the chain moves to wan, which serves.
    expect(out).toMatch(/video: \{ engine: 'wan', prompt: 'A story scene', duration: 10, quality: 1 \}/);
    expect(out).toContain("engine: 'qwen'");
    // setLevel("medium") before the workflow: 1080p becomes 720p in its output phase.
    expect(out).toContain("result: 'video:story(medium)+enhanced@720p'");
    expect(out).toContain("lastSuccessfulFallback: 'wan_standard'");
    expect(out).toMatch(/hunyuan_premium: \{ calls: 1, successes: 0/);
    for (const name of ["hunyuan_video", "wan_video", "video_generation", "qwen_image", "workflow_execution"]) {
      expect(out).toContain(`'${name}'`);
    }
  }, 120_000);
});

describe("upgrading from 0.1: the note's before and after", () => {
  it("degradation, on by default in 0.1, is off without degradation({}), as the note now says", async () => {
    const bodies: string[] = [];
    const layer = createResilience({
      retry: false,
      breaker: false,
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        bodies.push(await new Request(input, init).text());
        return new Response("busy", { status: 503 });
      },
    } as never);
    expect((layer as { degradation?: unknown }).degradation).toBeUndefined();
    const body = JSON.stringify({ quality: "high", resolution: "1080p", steps: 50, model: "premium" });
    for (let i = 0; i < 40; i++) await layer.fetch("https://gen.example/v1", { method: "POST", body });
    expect(new Set(bodies)).toEqual(new Set([body]));
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(readme).toContain(
      "degradation, on by default in 0.1, is now off unless you pass `degradation({})`: a 0.1 configuration without a `degradation` key no longer rewrites requests",
    );
  });

  it("0.1's minimal shapes are a ConfigError naming the wrapper, on root, ky and the proxy", () => {
    const route = { path: "/", upstream: `${api.base}/v1` };
    const cases: Array<[object, string, RegExp]> = [
      [{ degradation: {} }, "degradation", /degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/],
      [{ degradation: true }, "degradation", /degradation\(…\)/],
      [{ degradation: null }, "degradation", /degradation\(…\)/],
      [{ fallback: [] }, "fallback", /fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/],
      [{ fallback: {} }, "fallback", /fallback\(…\)/],
    ];
    for (const [options, path, says] of cases) {
      const root = catchError(() => createResilience(options as never));
      expect(root).toBeInstanceOf(ConfigError);
      expect((root as ConfigError).path).toBe(path);
      expect((root as Error).message).toMatch(says);
      const ky = catchError(() => createClient({ resilience: options as never }));
      expect((ky as ConfigError).path).toBe(`resilience.${path}`);
      expect((ky as Error).message).toMatch(says);
      const proxy = catchError(() => resilientProxy({ routes: [route], resilience: options as never }));
      expect((proxy as ConfigError).path).toBe(`resilience.${path}`);
      expect((proxy as Error).message).toMatch(path === "fallback" ? /chains go in its routes/ : says);
    }
    // sensitiveHeaders, even left undefined, names what replaced it.
    for (const options of [{ sensitiveHeaders: [] }, { sensitiveHeaders: undefined }]) {
      const error = catchError(() => createResilience(options as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/"sensitiveHeaders" \(after 0\.1\.0: "crossOriginHeaders"/);
    }
  });

  it("the CHANGELOG's after-code compiles and runs; fallbackChain is gone, fallback.chain takes its place", async () => {
    const clock = new TestClock();
    // As the CHANGELOG writes it, with 0.1's (empty) chains and options.
    const resilience = createResilience({ clock, fallback: fallback([]), degradation: degradation({}) });
    // @ts-expect-error 0.1's resilience.fallbackChain(name) is no longer there
    expect(resilience.fallbackChain).toBeUndefined();
    const chain = resilience.fallback.chain<number, string>("upscale").add(async (n) => `x${n}`, { name: "gpu" });
    expect(resilience.fallback.chain("upscale")).toBe(chain);
    await expect(chain.execute(4)).resolves.toBe("x4");
    // Typed as present: no `?.` needed once the stage is given.
    expect(resilience.degradation.adjust({ steps: 50 })).toEqual({ steps: 50 });
    const bare = createResilience({ clock });
    expect(bare.fallback).toBeUndefined();
    expect(bare.degradation).toBeUndefined();
  });

  it("a ported get_circuit_breaker: 12 failures in a row open (11 + a success + 11 do not); 30 s open; 3 probes, 2 close", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock });
    const cb = system.breaker("hunyuan_video");
    const fail = (): Promise<unknown> => cb.execute(async () => Promise.reject(new Error("GPU busy"))).catch((e) => e);
    for (let i = 0; i < 11; i++) await fail();
    await cb.execute(async () => "ok");
    for (let i = 0; i < 11; i++) await fail();
    expect(cb.state).toBe("closed");
    await fail();
    expect(cb.state).toBe("open");
    let ran = false;
    const refused = await cb
      .execute(async () => {
        ran = true;
      })
      .catch((e) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(ran).toBe(false);
    await clock.advance(29_999);
    expect(cb.state).toBe("open");
    await clock.advance(1);
    expect(cb.state).toBe("half_open");
    const gates: Array<() => void> = [];
    const probes = [0, 1, 2].map(() => cb.execute(() => new Promise<void>((r) => gates.push(r))));
    await expect(cb.execute(async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
    gates[0]?.();
    await probes[0];
    expect(cb.state).toBe("half_open");
    gates[1]?.();
    await probes[1];
    expect(cb.state).toBe("closed");
    gates[2]?.();
    await probes[2];
  });
});

describe("numbers kept, through the generic pieces", () => {
  it("defaultLevels is degradation.md's table, frozen to the last array", () => {
    const table = {
      full: [100, 1.0, 1.0, null, ["all"], 0],
      high: [80, 0.9, 0.95, null, ["core", "enhancements"], 0],
      medium: [60, 0.8, 0.9, 30, ["core"], 1],
      low: [40, 0.6, 0.8, 20, ["basic"], 2],
      minimal: [20, 0.4, 0.7, 10, ["essential"], 2],
    } as const;
    expect([...LEVEL_NAMES]).toEqual(["full", "high", "medium", "low", "minimal"]);
    for (const name of LEVEL_NAMES) {
      const l = defaultLevels[name];
      expect([l.percentage, l.qualityMultiplier, l.resolutionScale, l.maxSteps, l.features, l.modelStep]).toEqual(
        table[name],
      );
      expect(Object.isFrozen(l) && Object.isFrozen(l.features)).toBe(true);
      expect(() => {
        (l as { maxSteps: number | null }).maxSteps = 1;
      }).toThrow(TypeError);
      expect(() => (l.features as string[]).push("x")).toThrow(TypeError);
    }
    expect(Object.isFrozen(defaultLevels) && Object.isFrozen(LEVEL_NAMES)).toBe(true);
  });

  it("adjustParameters(p, defaultLevels[level], the documented ladders) is system.degradation.adjust(p) at every level", () => {
    const system = createResilience({ clock: new TestClock(), degradation: degradation() });
    const inputs: GenerationParams[] = [
      { quality: 1.0, resolution: "1080p", steps: 50, model: "premium" },
      { quality: 0.9, resolution: "1920x1080", steps: 25, model: "standard", features: ["core", "basic", 7] },
      { quality: 0.3, resolution: "4320p", steps: 10, model: "basic", features: ["essential", "enhancements"] },
      { resolution: "360p", model: "other", prompt: "a cat", extra: { steps: 99 } },
      { resolution: "720×720", steps: 31, features: ["all"] },
    ];
    for (const name of LEVEL_NAMES) {
      system.degradation.setLevel(name, "parity");
      for (const p of inputs)
        expect(adjustParameters(p, defaultLevels[name], DOC_TABLE)).toEqual(system.degradation.adjust(p));
    }
    // The guide's example at medium, exactly.
    expect(adjustParameters(inputs[0] as GenerationParams, defaultLevels.medium, DOC_TABLE)).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
  });

  it("nextLevel on the mapping's thresholds: 0.1, 30 s, 0.9 and 0.95 hold; just above each steps down one level", () => {
    const signals = (over: Partial<Signals>) => ({ ...breach, errorRate: 0, ...over });
    const cases: Array<[Partial<Signals>, Partial<Signals>]> = [
      [{ errorRate: 0.1 }, { errorRate: 0.1001 }],
      [{ p95: 30_000 }, { p95: 30_001 }],
      [{ memory: 0.9 }, { memory: 0.901 }],
      [{ cpu: 0.95 }, { cpu: 0.951 }],
    ];
    for (const [at, above] of cases) {
      const start = initialLevelState(1_000_000);
      expect(nextLevel(start, { type: "evaluate", signals: signals(at) }, 1_000_000, SETTINGS).index).toBe(0);
      const stepped = nextLevel(start, { type: "evaluate", signals: signals(above) }, 1_000_000, SETTINGS);
      expect(LEVEL_NAMES[stepped.index]).toBe("high");
    }
    // Too few calls for the error rate: 19 failing of 19 hold.
    const few = nextLevel(
      initialLevelState(0),
      { type: "evaluate", signals: { ...breach, samples: 19, errorRate: 1 } },
      0,
      SETTINGS,
    );
    expect(few.index).toBe(0);
  });
});

describe("the pure machines, driving state stored elsewhere", () => {
  it("a LevelState read back from JSON drives nextLevel as the state itself does", () => {
    const fresh = initialLevelState(0);
    const stored = JSON.parse(JSON.stringify(fresh)) as LevelState;
    expect(stored).toEqual(fresh); // lastStep is null until the level first moves: plain JSON
    const input = { type: "evaluate", signals: breach } as const;
    const a = nextLevel(fresh, input, 5_000, SETTINGS);
    const b = nextLevel(stored, input, 5_000, SETTINGS);
    expect(LEVEL_NAMES[a.index]).toBe("high");
    expect(LEVEL_NAMES[b.index]).toBe("high");
  });

  it("transition: pure, never mutates, same object when unchanged, gen +1 per change of state, JSON-safe", () => {
    const policy: ResolvedBreakerPolicy = {
      failureThreshold: 3,
      successThreshold: 2,
      timeout: 1_000,
      halfOpenMaxCalls: 2,
      timeWindow: 1_000,
      probeTimeout: 500,
      failureRate: 0.5,
      minimumCalls: 4,
    } as ResolvedBreakerPolicy;
    const deepFreeze = <T>(o: T): T => {
      if (o && typeof o === "object" && !Object.isFrozen(o)) {
        Object.freeze(o);
        for (const v of Object.values(o)) deepFreeze(v);
      }
      return o;
    };
    const step = fc.oneof(
      fc.constantFrom("request", "tick", "reset", "success", "failure", "release"),
      fc.integer({ min: -2_000, max: 5_000 }).map((d) => ({ hold: d })),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(step, fc.integer({ min: -300, max: 1_500 }), fc.nat(3)), { maxLength: 40 }),
        (seq) => {
          let now = 10_000;
          let s = deepFreeze(initialBreakerState(now));
          const permits: Array<{ lease: number | null; gen: number }> = [];
          for (const [kind, dt, pick] of seq) {
            now += dt;
            const permit = permits[pick % Math.max(1, permits.length)] ?? { lease: null, gen: s.gen };
            const input: BreakerInput =
              typeof kind === "object"
                ? { type: "hold", until: now + kind.hold, reason: "h" }
                : kind === "success" || kind === "release"
                  ? { type: kind, ...permit }
                  : kind === "failure"
                    ? { type: "failure", ...permit, reason: "x" }
                    : { type: kind };
            const before = JSON.stringify(s);
            const a = transition(s, input, now, policy);
            const b = transition(s, input, now, policy);
            expect(JSON.stringify(b)).toBe(JSON.stringify(a));
            expect(JSON.stringify(s)).toBe(before);
            if (JSON.stringify(a.state) === before) expect(a.state).toBe(s);
            if (a.state.state !== s.state) expect(a.state.gen).toBe(s.gen + 1);
            expect(JSON.parse(JSON.stringify(a.state))).toEqual(a.state);
            if (input.type === "request" && a.admitted) permits.push({ lease: a.lease, gen: a.state.gen });
            s = deepFreeze(a.state);
          }
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe("generic work feeds health() and the triggers, as resilience.fetch calls do", () => {
  it("21 failing execute()s raise errorRate and step the level; the next POST to a real server goes out rewritten", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      retry: false,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });
    const work = (): Promise<unknown> =>
      system.execute(async () => Promise.reject(new Error("GPU busy"))).catch((e) => e);
    for (let i = 0; i < 20; i++) await work();
    expect(system.health().errorRate).toBe(1);
    expect(system.degradation.currentLevel().name).toBe("full"); // evaluated at most once a second
    await clock.advance(1_000);
    await work();
    expect(system.degradation.currentLevel().name).toBe("high");
    const res = await clock.run(
      system.fetch(`${api.base}/v1/video`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ quality: 1, resolution: "1080p", steps: 50, prompt: "A story scene" }),
      }),
    );
    expect(res.status).toBe(200);
    await res.text();
    expect(JSON.parse((await api.nth(1)).body)).toEqual({
      quality: 0.9,
      resolution: "720p",
      steps: 50,
      prompt: "A story scene",
    });
    expect(getResilienceInfo(res)?.degradationLevel).toBe("high");
  });
});

describe("bad input to each generic piece: a clear error naming what is wrong, at once", () => {
  const policy = {
    failureThreshold: 3,
    successThreshold: 2,
    timeout: 1_000,
    halfOpenMaxCalls: 3,
    timeWindow: 1_000,
    probeTimeout: 1_000,
    failureRate: 0.5,
    minimumCalls: 10,
  } as ResolvedBreakerPolicy;

  it("constructors throw a ConfigError (or TypeError) naming the path; nothing is armed", () => {
    const clock = new TestClock();
    const cases: Array<[() => unknown, RegExp]> = [
      [
        () => new CircuitBreaker("k", policy, clock, revoked() as never),
        /^CircuitBreaker: expected a value that can be read/,
      ],
      [
        () =>
          new CircuitBreaker("k", policy, clock, {
            get isFailure(): () => boolean {
              throw new Error("boom");
            },
          }),
        /^CircuitBreaker\.isFailure: expected a value that can be read/,
      ],
      [
        () => new CircuitBreaker("k", policy, clock, { initial: revoked() as never }),
        /^CircuitBreaker\.initial: expected a value that can be read/,
      ],
      [
        () => new CircuitBreaker("k", policy, undefined as never),
        /^CircuitBreaker\.clock: expected object, received undefined/,
      ],
      [
        () => new CircuitBreaker("k", { ...policy, timeout: Number.NaN }, clock),
        /^CircuitBreaker\.timeout: expected number, received NaN/,
      ],
      [
        () => new CircuitBreaker("k", { ...policy, failureRate: 0 }, clock),
        /^CircuitBreaker\.failureRate: expected a value > 0/,
      ],
      [
        () => new CircuitBreaker("k", undefined as never, clock),
        /^CircuitBreaker: expected object, received undefined/,
      ],
      [
        () => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, revoked() as never),
        /^RetryBudget\.clock: expected a value that can be read/,
      ],
      [
        () => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, {} as never),
        /^RetryBudget\.clock\.now: expected a function/,
      ],
      [
        () => new RetryBudget({ ratio: Number.POSITIVE_INFINITY, minPerSecond: 1 }, clock),
        /^RetryBudget\.ratio: expected number, received Infinity/,
      ],
      [
        () => new RetryBudget({ ratio: 0.1, minPerSecond: -1 }, clock),
        /^RetryBudget\.minPerSecond: expected a value >= 0, received -1/,
      ],
      [() => new RetryBudget(undefined as never, clock), /^RetryBudget: expected object, received undefined/],
      [() => new Bulkhead("k", -1, 0), /^Bulkhead\.maxConcurrent: expected a value >= 1, received -1/],
      [() => new Bulkhead("k", "2" as never, 0), /^Bulkhead\.maxConcurrent: expected number, received "2"/],
      [() => new Bulkhead("k", 2.5, 0), /^Bulkhead\.maxConcurrent: expected an integer, received 2\.5/],
      [() => new Bulkhead("k", 1, Number.POSITIVE_INFINITY), /^Bulkhead\.maxQueue: expected number, received Infinity/],
      [() => new Bulkhead("k", 1, undefined as never), /^Bulkhead\.maxQueue: expected number, received undefined/],
      [
        () => new FallbackChain("c", { order: "random" as never }),
        /^FallbackChain\.order: expected one of "fixed", "adaptive"/,
      ],
      [
        () => new FallbackChain("c", { clock: { now: 5 } as never }),
        /^FallbackChain\.clock\.now: expected a function, received 5/,
      ],
      [() => new FallbackChain("c", revoked() as never), /^FallbackChain: expected a value that can be read/],
    ];
    for (const [make, says] of cases) {
      const error = catchError(make);
      expect(error, String(says)).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(says);
    }
    const chain = new FallbackChain<number, number>("c");
    for (const q of [-1, "1"]) {
      expect(() => chain.add(async () => 1, { name: "a", expectedQuality: q as number })).toThrow(
        /^fallbackChain\("c"\)\.add: expectedQuality must be within 0\.\.1/,
      );
    }
    expect(() => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, clock).deposit(Number.NaN)).toThrow(
      /^RetryBudget#deposit: count must be a finite number/,
    );
    const cb = system().breaker("gpu");
    expect(() => cb.hold(Number.NaN, "r")).toThrow(/^breaker\.hold\(until\): expected a time in ms, got NaN/);
    expect(() => cb.hold("5" as never, "r")).toThrow(/got string/);
    expect(() =>
      nextLevel(initialLevelState(0), { type: "set", level: "MEDIUM" as never, reason: "r" }, 0, SETTINGS),
    ).toThrow(/^nextLevel: unknown level "MEDIUM", expected one of full, high, medium, low, minimal/);
    expect(clock.pending()).toBe(0);
  });

  it("retry(fn), a chain's execute and run reject (never throw) naming the option; fn never runs; no timer", async () => {
    const clock = new TestClock();
    let ran = 0;
    const fn = async (): Promise<number> => ++ran;
    const throwingSignal = {
      get aborted(): boolean {
        throw new Error("boom");
      },
      addEventListener() {},
      removeEventListener() {},
    };
    const retries: Array<[() => Promise<unknown>, string]> = [
      [() => retry(fn, { clock, onRetry: revoked() as never }), "retry.onRetry"],
      [() => retry(fn, { clock, budget: revoked() as never }), "retry.budget"],
      [() => retry(fn, { clock: revoked() as never }), "retry.clock"],
      [() => retry(fn, { clock, retryOn: revoked() as never }), "retry.retryOn"],
      [() => retry(fn, { clock, signal: throwingSignal as never }), "retry.signal"],
      [
        () =>
          retry(fn, {
            clock,
            get maxAttempts(): number {
              throw new Error("boom");
            },
          }),
        "retry.maxAttempts",
      ],
    ];
    for (const [call, path] of retries) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call();
      }).not.toThrow();
      const error = await promise?.catch((e) => e);
      expect(error, path).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
    const chain = new FallbackChain<number, number>("c", { clock }).add(fn, { name: "a" });
    const chains: Array<[() => Promise<unknown>, string]> = [
      [() => chain.execute(1, revoked() as never), 'fallbackChain("c").execute'],
      [() => chain.execute(1, { signal: revoked() as never }), 'fallbackChain("c").execute.signal'],
      [() => chain.execute(1, { signal: throwingSignal as never }), 'fallbackChain("c").execute.signal'],
      [() => chain.run(1, revoked() as never), 'fallbackChain("c").run'],
      [() => chain.run(1, { hedgeDelay: Number.NaN }), 'fallbackChain("c").run.hedgeDelay'],
      [() => chain.run(1, { hedgeDelay: -1 }), 'fallbackChain("c").run.hedgeDelay'],
    ];
    for (const [call, path] of chains) {
      const error = await call().catch((e) => e);
      expect(error, path).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
    expect(ran).toBe(0);
    expect(chain.statistics().fallbacks.a?.calls).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("the level's manual controls name what is wrong; the level stays where it was", () => {
    const { degradation: level } = createResilience({ clock: new TestClock(), degradation: degradation() });
    const configCases: Array<[unknown, string]> = [
      [revoked(), "degradation.triggers"],
      [{ errorRate: Number.NaN }, "degradation.triggers.errorRate"],
      [{ errorRate: 2 }, "degradation.triggers.errorRate"],
      [{ responseTime: -1 }, "degradation.triggers.responseTime"],
      [
        {
          get cpuUsage(): number {
            throw new Error("boom");
          },
        },
        "degradation.triggers.cpuUsage",
      ],
      [null, "degradation.triggers"],
    ];
    for (const [triggers, path] of configCases) {
      const error = catchError(() => level.configureTriggers(triggers as never));
      expect(error, path).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
    for (const name of [revoked(), 2, " medium", "MEDIUM"]) {
      expect(() => level.setLevel(name as never)).toThrow(
        /^degradation\.setLevel\(name\): expected one of "full", "high", "medium", "low", "minimal"/,
      );
    }
    for (const params of [[], "x", null]) {
      expect(() => level.adjust(params as never)).toThrow(/^degradation\.adjust\(params\): expected an object/);
    }
    expect(level.currentLevel()).toMatchObject({ name: "full", pinned: false });
  });
});

function system() {
  return createResilience({ clock: new TestClock() });
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
