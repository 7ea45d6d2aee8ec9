/**
 * Outside-in attack on docs/storycore-mapping.md, the README's StoryCore pieces (the `…/policies` row, the mapping in
 * "Learn more") and examples/storycore-parity: the generic pieces used for non-HTTP async work, checked against what
 * the HTTP layer does with the same numbers (backoff and jitter, breaker thresholds and half-open, budget, levels).
 * Aimed at what parity-fiftythree, mapping-thirtytwo and kitmapping-fortyfive did not drive.
 *
 * Docs:
 * - docs/storycore-mapping.md: "This library brings the same model to HTTP, behind one fetch-compatible function, so
 *   code ported from that system keeps its concepts and its numbers."; the Names rows "`system.get_circuit_breaker('x')`,
 *   `cb.execute(fn)` | `system.breaker("x")`, `.execute(fn)`", "`system.execute_with_resilience(fn,
 *   circuit_breaker_name='x', enable_retry=True)` | `system.execute(fn, { breaker: "x" })`", "`chain.get_statistics()`
 *   … | `chain.statistics()` …"; "The five degradation levels (`full` 100%, `high` 80%, `medium` 60% …)".
 * - README.md: "`…/policies` | `retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level
 *   machine, for any async work".
 * - docs/retry.md: "`retry(fn, options)` … is the same loop on its own"; "Both check all their options before the first
 *   attempt (a `ConfigError` naming the path …) … rejects the call, never throws"; "`execute` takes the layer's whole
 *   `retry` shape, those four included … and they change nothing there"; "a caller's abort while it [`onRetry`] runs
 *   settles the call at once". src/policies/retry.ts JSDoc: "`retry` only spends: a `RetryBudget` earns its `ratio`
 *   from the calls you deposit (`budget.deposit()` once per call, as `resilience.execute` does)".
 * - docs/breakers.md: named breakers' "options are applied on first use only (… a bad value or a typo is a
 *   `ConfigError` every time)"; "with a signal aborted already it rejects with its reason without running `fn` (the
 *   breaker hears nothing)"; "`failureThreshold` (12) … in a row", "`failureRate` (0.5) of at least `minimumCalls`
 *   (100)"; "at most `halfOpenMaxCalls` (3) probes … `successThreshold` (2) successes close".
 * - docs/health-and-events.md: "A named breaker's own `.execute(fn)` and a chain's `.execute(input)` count only in
 *   that breaker's and that chain's statistics"; execute's `retry` event ("`key` its `breaker`'s name …; `url` empty;
 *   `reason` the thrown error's name …; `retryAfter` false").
 * - docs/fallback.md: "`.add(fn, { name, expectedQuality })` (any other option is a `TypeError`)"; a configured
 *   chain's "`add`, `execute` and `run` throw a `TypeError` that says so"; "a run its caller aborted … is not
 *   counted". docs/degradation.md: "`setLevel(name)` (pins the level: triggers leave it alone until `restore()`)";
 *   stepping up "for a whole `restoreAfter` (60 s), one level at a time".
 *
 * How: `createResilience`, the errors (root); `fallback` (./fallback); `degradation` (./degradation); `retry`,
 * `FallbackChain`, `RetryBudget`, `nextLevel`, `initialLevelState` (./policies); `TestClock` (./testing) on every
 * path; one node:http server on 127.0.0.1 (test/helpers/http-upstream.ts) answering 503/200 by request number; a
 * repeatable `random` given alike to `retry(fn)` and to layers. CPU and memory triggers set to 1 where the level is
 * watched (a TestClock reads CPU high).
 *
 * Paths: generic work (`retry(fn)`, `execute`, named breakers, the layer's generic chains, `new FallbackChain`, the
 * level machine) beside plain `resilience.fetch` calls to the server.
 *
 * Defects pinned: none. Every sentence driven held.
 *
 * Held (plain `it`):
 * - With the same numbers and `random`, `retry(fn)`, `execute(fn)` and `resilience.fetch` (503s) wait the same delays
 *   before each retry under each jitter (`none`, `full`, `equal`, `decorrelated`), attempts start exactly then (not
 *   1 ms early on the fetch path); `none` with base 3, cap 250: 100, 250, 250.
 * - `retry(fn)` rejects (never throws) `retryOn.statuses`/`methods` (path `retry.retryOn`), `maxRetryAfter`,
 *   `idempotencyKey` and a typo with a `ConfigError`, fn never run; `execute` takes the four and they change nothing;
 *   its typo names `execute.retry…`.
 * - `breaker(name, options)` checks later options every time, keeps the first; a generic chain's `add` refuses an
 *   unknown option, a quality outside 0..1 (NaN too) and a second entry of one name.
 * - Aborts: `retry(fn)` mid-wait and mid-`onRetry` settles with the reason, no further attempt, no timer left;
 *   `execute` aborted counts nowhere; a named breaker's aborted work and an already-aborted signal leave it closed.
 * - Named breakers' and chains' own `.execute` count only in their statistics (`errorRate` 0, totals 0, `healthy`).
 * - Named breaker and per-host breaker open at the same attempt under the 0.5-of-100 rate rule (never 12 in a row);
 *   half-open after 30 s with 3 probes, a 4th refused, closed after 2 successes; events closed>open (openUntil
 *   30000) > half_open > closed.
 * - execute's `retry` events (key, empty url, reason `GpuBusyError`, delays 1000/2000, `retryAfter` false);
 *   `retry: false` (enable_retry=False) one attempt.
 * - `retry(fn, { budget })` with a deposit per call spends exactly as `execute` under the layer's budget (27 attempts
 *   for 25 calls at ratio 0.1, 2 allowed / 23 denied in both snapshots).
 * - Generic chains on a clock: `meanLatencyMs` from the clock, `lastSuccessfulFallback` kept when the first serves
 *   again; an aborted `new FallbackChain` run rejects with the reason and leaves statistics as they were.
 * - The level machine and the layer agree step for step: `setLevel` pins against 40 failing `execute`s, `restore()`
 *   unpins one step up; healthy work lifts one level per 60 s, from `medium` to `full`.
 *
 * Docs-silent (not pinned):
 * - docs/fallback.md says a configured chain's `add`, `execute` and `run` "throw a `TypeError`": `add` throws, while
 *   `execute` and `run` (async) return a rejected promise, so a `try` around an un-awaited call does not catch it.
 *   Likewise a named breaker's `execute` "refuses … a `signal` that is no `AbortSignal` at once" by rejecting.
 */
import { afterEach, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  isConfigError,
  RetryExhaustedError,
} from "../../src/index.ts";
import {
  FallbackChain,
  initialLevelState,
  type LevelState,
  type MachineSettings,
  nextLevel,
  RetryBudget,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const api = httpUpstream();
serveDuringFile(api);

const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

/** A repeatable random source: the same draws in the same order for each path. */
function draws(): () => number {
  const seq = [0.3, 0.7, 0.5, 0.9, 0.1];
  let i = 0;
  return () => seq[i++ % seq.length] as number;
}

/** Real turns, for I/O a test waits on (never timers the clock holds). */
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
};

const NUMBERS = { maxAttempts: 4, initialDelay: 100, maxDelay: 250, exponentialBase: 3 } as const;

describe("backoff figures: retry(fn), execute(fn) and resilience.fetch on the same numbers wait the same", () => {
  for (const jitter of ["none", "full", "equal", "decorrelated"] as const) {
    it(`jitter ${jitter}: the same delays before each retry, and attempts start exactly then`, async () => {
      // retry(fn) on its own.
      const c1 = new TestClock();
      const t1: number[] = [];
      const d1: number[] = [];
      const r1 = retry(
        () => {
          t1.push(c1.now());
          throw new Error("GPU busy");
        },
        { ...NUMBERS, jitter, clock: c1, random: draws(), onRetry: (e) => void d1.push(e.delay) },
      );
      pending.push(r1.catch(() => {}));
      await c1.advance(10_000);
      await expect(r1).rejects.toBeInstanceOf(RetryExhaustedError);

      // execute(fn) on a layer with the same numbers.
      const c2 = new TestClock();
      const layer = createResilience({ clock: c2, random: draws(), retry: { ...NUMBERS, jitter } });
      const d2: number[] = [];
      layer.on("retry", (e) => void d2.push(e.delay));
      const t2: number[] = [];
      const r2 = layer.execute(() => {
        t2.push(c2.now());
        throw new Error("GPU busy");
      });
      pending.push(r2.catch(() => {}));
      await c2.advance(10_000);
      await expect(r2).rejects.toBeInstanceOf(RetryExhaustedError);

      // resilience.fetch against a 503 on 127.0.0.1.
      api.on((hit) => {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      });
      const c3 = new TestClock();
      const http = createResilience({ clock: c3, random: draws(), retry: { ...NUMBERS, jitter } });
      const d3: number[] = [];
      http.on("retry", (e) => void d3.push(e.delay));
      const t3: number[] = [];
      const r3 = http.fetch(`${api.base}/gen`);
      pending.push(r3.catch(() => {}));
      for (let n = 1; n <= 4; n++) {
        await api.nth(n);
        t3.push(c3.now());
        if (n === 4) break;
        while (d3.length < n) await turns(1);
        const wait = d3[n - 1] as number;
        if (wait >= 1) {
          await c3.advance(wait - 1);
          await turns();
          expect(api.hits.length).toBe(n); // not a millisecond early
        }
        await c3.advance(Math.min(wait, 1));
      }
      const res = await r3;
      expect(res.status).toBe(503);

      expect(d1).toHaveLength(3);
      expect(d2).toEqual(d1);
      expect(d3.map((d) => Math.round(d * 1000))).toEqual(d1.map((d) => Math.round(d * 1000)));
      expect(t2).toEqual(t1);
      expect(t3.map(Math.ceil)).toEqual(t1.map(Math.ceil));
      if (jitter === "none") expect(d1).toEqual([100, 250, 250]);
    });
  }
});

describe("options refused with clear errors on the generic pieces", () => {
  it("retry(fn) refuses each HTTP-only option of resilience.fetch by path, as a rejection, before any attempt", async () => {
    let ran = 0;
    const fn = () => ++ran;
    for (const [options, path] of [
      [{ retryOn: { statuses: [503] } }, "retry.retryOn"],
      [{ retryOn: { methods: ["POST"] } }, "retry.retryOn"],
      [{ maxRetryAfter: 1000 }, "retry"],
      [{ idempotencyKey: true }, "retry"],
      [{ maxAtempts: 3 }, "retry"],
    ] as const) {
      const call = retry(fn, options as never);
      await expect(call).rejects.toBeInstanceOf(ConfigError);
      await expect(call).rejects.toMatchObject({ path });
    }
    expect(ran).toBe(0);
  });

  it("execute(fn) takes the layer's whole retry shape, the four HTTP-only options included, and changes nothing by them", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: { jitter: "none" } });
    let ran = 0;
    const call = layer.execute(
      () => {
        ran++;
        throw new Error("x");
      },
      {
        retry: {
          maxAttempts: 2,
          initialDelay: 10,
          retryOn: { statuses: [418], methods: ["POST"] },
          maxRetryAfter: 5,
          idempotencyKey: true,
        },
      },
    );
    pending.push(call.catch(() => {}));
    await clock.advance(10);
    await expect(call).rejects.toMatchObject({ name: "RetryExhaustedError", attempts: 2 });
    expect(ran).toBe(2);
    // And a typo in it is a ConfigError naming execute's path, as a rejection.
    const typo = layer.execute(() => 1, { retry: { maxAtempts: 2 } as never });
    await expect(typo).rejects.toSatisfy((e: unknown) => isConfigError(e) && /execute\.retry/.test(e.path));
  });

  it("breaker(name, options): options applied on first use; a bad value or a typo passed again is a ConfigError every time", async () => {
    const layer = createResilience({ clock: new TestClock() });
    const b = layer.breaker("upscaler", { failureThreshold: 2 });
    expect(() => layer.breaker("upscaler", { failureThreshold: -1 })).toThrow(ConfigError);
    expect(() => layer.breaker("upscaler", { failureThreshhold: 2 } as never)).toThrow(ConfigError);
    // The first options hold: two failures open it, whatever the later (valid) call asked.
    expect(layer.breaker("upscaler", { failureThreshold: 50 })).toBe(b);
    for (let i = 0; i < 2; i++) await expect(b.execute(() => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(b.state).toBe("open");
  });

  it("chain add(): an option other than name/expectedQuality, or a quality outside 0..1, is a TypeError; an HTTP chain's add/execute/run refuse", async () => {
    const layer = createResilience({
      clock: new TestClock(),
      fallback: fallback([{ name: "images", endpoints: [{ name: "p", url: `${api.base}/a` }] }]),
    });
    const chain = layer.fallback.chain<string, string>("video_generation");
    expect(() => chain.add(async (s) => s, { name: "a", quality: 1 } as never)).toThrow(TypeError);
    expect(() => chain.add(async (s) => s, { name: "a", expectedQuality: 1.5 })).toThrow(TypeError);
    expect(() => chain.add(async (s) => s, { name: "a", expectedQuality: Number.NaN })).toThrow(TypeError);
    chain.add(async (s) => s, { name: "a" });
    expect(() => chain.add(async (s) => s, { name: "a" })).toThrow(/exists already/);
    const http = layer.fallback.chain("images") as unknown as FallbackChain<unknown, unknown>;
    expect(() => http.add(async () => 1, { name: "x" })).toThrow(TypeError);
    // execute and run are async: they reject with that TypeError (docs/fallback.md said "throw" of all three until
    // the fifty-fifth session; it now says `add` throws and `execute` and `run` reject).
    await expect(http.execute(1)).rejects.toThrow(/runs through resilience.fetch only/);
    await expect(http.run(1)).rejects.toThrow(/runs through resilience.fetch only/);
  });
});

describe("aborts and counting of the generic pieces", () => {
  it("retry(fn, { signal }): an abort during the wait rejects with signal.reason at once; no attempt after it", async () => {
    const clock = new TestClock();
    const ac = new AbortController();
    let attempts = 0;
    const call = retry(
      () => {
        attempts++;
        throw new Error("busy");
      },
      { clock, signal: ac.signal, jitter: "none" },
    );
    pending.push(call.catch(() => {}));
    await clock.waitForTimers(1);
    const reason = new Error("user left");
    ac.abort(reason);
    await expect(call).rejects.toBe(reason);
    await clock.advance(60_000);
    expect(attempts).toBe(1);
    expect(clock.pending()).toBe(0);
  });

  it("execute(fn, { signal }) aborted mid-wait counts nowhere; breaker('x').execute and a generic chain's execute count only in their own statistics", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
      fallback: fallback([]),
    });
    const ac = new AbortController();
    const aborted = system.execute(
      () => {
        throw new Error("busy");
      },
      { signal: ac.signal },
    );
    pending.push(aborted.catch(() => {}));
    await clock.waitForTimers(1);
    ac.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");

    const b = system.breaker("qwen_image");
    for (let i = 0; i < 5; i++) await expect(b.execute(() => Promise.reject(new Error("oom")))).rejects.toThrow("oom");
    const chain = system.fallback.chain<number, number>("image_quality").add(
      async () => {
        throw new Error("down");
      },
      { name: "only" },
    );
    for (let i = 0; i < 5; i++) await expect(chain.execute(1)).rejects.toBeInstanceOf(FallbackExhaustedError);

    expect(chain.statistics().fallbacks.only).toMatchObject({ calls: 5, successes: 0 });
    expect(system.health().breakers.qwen_image).toBeDefined();
    expect(system.health().errorRate).toBe(0);
    expect(system.debugInfo().totals).toMatchObject({ calls: 0 });
    expect(system.health().status).toBe("healthy");
  });

  it("breaker('x').execute(fn, signal) with a signal aborted already rejects with its reason, fn not run, the breaker hears nothing", async () => {
    const system = createResilience({ clock: new TestClock() });
    const b = system.breaker("wan_video", { failureThreshold: 1 });
    const ac = new AbortController();
    const reason = new Error("gone");
    ac.abort(reason);
    let ran = false;
    await expect(
      b.execute(async () => {
        ran = true;
      }, ac.signal),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
    expect(b.state).toBe("closed");
    await expect(b.execute(() => 1, "not a signal" as never)).rejects.toThrow(TypeError);
  });

  it("a generic chain's statistics on the layer's clock: meanLatencyMs, lastSuccessfulFallback kept when the first serves again", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]) });
    let primaryUp = false;
    const wait = (ms: number) => new Promise<void>((r) => clock.setTimer(r, ms));
    const chain = system.fallback
      .chain<string, string>("video_generation")
      .add(
        async (r) => {
          await wait(400);
          if (!primaryUp) throw new Error("GPU busy");
          return `hunyuan:${r}`;
        },
        { name: "hunyuan_premium", expectedQuality: 1 },
      )
      .add(
        async (r) => {
          await wait(200);
          return `wan:${r}`;
        },
        { name: "wan_standard", expectedQuality: 0.8 },
      );
    expect(chain.statistics().lastSuccessfulFallback).toBeNull();
    expect(await clock.run(chain.execute("a"))).toBe("wan:a");
    primaryUp = true;
    expect(await clock.run(chain.execute("b"))).toBe("hunyuan:b");
    const s = chain.statistics();
    expect(s.lastSuccessfulFallback).toBe("wan_standard");
    expect(s.overallSuccessRate).toBe(1);
    expect(s.fallbacks.hunyuan_premium).toMatchObject({ calls: 2, successes: 1, successRate: 0.5, meanLatencyMs: 400 });
    expect(s.fallbacks.wan_standard).toMatchObject({ calls: 1, successes: 1, meanLatencyMs: 200 });
  });
});

describe("the level machine (./policies) against the layer's levels on the same numbers", () => {
  const settings: MachineSettings = {
    triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
    minSamples: 20,
    stepInterval: 10_000,
    restoreAfter: 60_000,
  };

  it("setLevel pins (triggers leave it), restore() unpins and steps one up, in the machine and in the layer alike", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      retry: false,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });
    system.degradation.setLevel("medium", "demo: high load");
    let s: LevelState = nextLevel(initialLevelState(0), { type: "set", level: "medium", reason: "demo" }, 0, settings);
    const bad = { samples: 40, errorRate: 1, p95: 1, memory: undefined, cpu: undefined, floor: 0 };
    for (let i = 0; i < 40; i++) {
      await expect(system.execute(() => Promise.reject(new Error("x")))).rejects.toThrow();
      await clock.advance(1000);
      s = nextLevel(s, { type: "evaluate", signals: bad }, clock.now(), settings);
    }
    expect(system.degradation.currentLevel()).toMatchObject({ name: "medium", percentage: 60, pinned: true });
    expect(s).toMatchObject({ index: 2, pinned: true });
    system.degradation.restore();
    s = nextLevel(s, { type: "restore" }, clock.now(), settings);
    expect(system.degradation.currentLevel()).toMatchObject({ name: "high", percentage: 80, pinned: false });
    expect(s).toMatchObject({ index: 1, pinned: false });
    expect(() => system.degradation.setLevel("ultra" as never)).toThrow(TypeError);
  });

  it("stepping back up: clearly healthy (0 errors) for a whole 60 s lifts one level, in the machine and in the layer", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      retry: false,
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });
    system.degradation.degrade("load");
    system.degradation.degrade("load");
    expect(system.degradation.currentLevel().name).toBe("medium");
    let s: LevelState = initialLevelState(0);
    s = nextLevel(s, { type: "degrade", reason: "load" }, 0, settings);
    s = nextLevel(s, { type: "degrade", reason: "load" }, 0, settings);
    const good = { samples: 1, errorRate: 0, p95: 5, memory: undefined, cpu: undefined, floor: 0 };
    const layerAt: string[] = [];
    const machineAt: number[] = [];
    for (let t = 1; t <= 130; t++) {
      await clock.advance(1000);
      await system.execute(() => "ok");
      s = nextLevel(s, { type: "evaluate", signals: good }, clock.now(), settings);
      layerAt.push(system.degradation.currentLevel().name);
      machineAt.push(s.index);
    }
    const names = ["full", "high", "medium", "low", "minimal"];
    expect(layerAt).toEqual(machineAt.map((i) => names[i]));
    expect(layerAt.indexOf("high")).toBeGreaterThanOrEqual(59);
    expect(layerAt.indexOf("high")).toBeLessThanOrEqual(61);
    expect(layerAt.at(-1)).toBe("full");
  });
});

describe("named breakers against per-host breakers on the same numbers", () => {
  /** A named breaker's outcomes and a host's, fed the same sequence; returns the attempt index each opened at. */
  async function openedAt(pattern: boolean[]): Promise<{ named: number; host: number }> {
    const c1 = new TestClock();
    const system = createResilience({ clock: c1, retry: false });
    const b = system.breaker("hunyuan_video");
    let named = -1;
    for (const [i, ok] of pattern.entries()) {
      await b.execute(() => (ok ? "ok" : Promise.reject(new Error("GPU busy")))).catch(() => {});
      if (named < 0 && b.state === "open") named = i + 1;
    }
    let i = 0;
    api.on((hit) => {
      hit.res.statusCode = pattern[hit.n - 1] ? 200 : 503;
      hit.res.end("x");
    });
    const http = createResilience({ clock: new TestClock(), retry: false });
    let host = -1;
    http.on("breaker", (e) => {
      if (host < 0 && e.to === "open") host = i;
    });
    for (i = 1; i <= pattern.length && host < 0; i++) await (await http.fetch(`${api.base}/gen`)).text();
    return { named, host };
  }

  it("the rate rule (0.5 of at least 100 in 30 s): 50 successes then failures open both at the same attempt", async () => {
    const pattern: boolean[] = Array.from({ length: 50 }, () => true);
    // Then 11 failures and a success, repeated: never 12 in a row; the rate rule alone can open.
    while (pattern.length < 160) pattern.push(...Array.from({ length: 11 }, () => false), true);
    // Where the rule says: the first failure at which at least 100 attempts hold at least 50% failures.
    let failures = 0;
    let expected = -1;
    for (const [i, ok] of pattern.entries()) {
      if (!ok) failures++;
      if (expected < 0 && !ok && i + 1 >= 100 && failures / (i + 1) >= 0.5) expected = i + 1;
    }
    const { named, host } = await openedAt(pattern);
    expect(named).toBe(expected);
    expect(host).toBe(named);
  });

  it("half-open: after 30 s, 3 probes in flight, a 4th refused, 2 successes close; breaker events alike", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, retry: false });
    const events: Array<{ key: string; from: string; to: string; openUntil: number | null }> = [];
    system.on("breaker", (e) => void events.push({ key: e.key, from: e.from, to: e.to, openUntil: e.openUntil }));
    const b = system.breaker("wan_video");
    for (let i = 0; i < 12; i++) await b.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    await expect(b.execute(() => "never")).rejects.toMatchObject({ name: "CircuitOpenError", key: "wan_video" });
    await clock.advance(30_000);
    const gates: Array<() => void> = [];
    const probes = [0, 1, 2].map(() => b.execute(() => new Promise<string>((r) => gates.push(() => r("ok")))));
    pending.push(...probes);
    await turns();
    expect(gates).toHaveLength(3);
    await expect(b.execute(() => "fourth")).rejects.toMatchObject({ name: "CircuitOpenError" });
    gates[0]?.();
    await probes[0];
    expect(b.state).toBe("half_open");
    gates[1]?.();
    await probes[1];
    expect(b.state).toBe("closed");
    gates[2]?.();
    await Promise.all(probes);
    expect(events.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open", "half_open>closed"]);
    expect(events[0]).toMatchObject({ key: "wan_video", openUntil: 30_000 });
  });
});

describe("execute's events and enable_retry", () => {
  it("a retry event per wait: key the breaker's name, url empty, reason the thrown error's name, retryAfter false", async () => {
    class GpuBusyError extends Error {
      override name = "GpuBusyError";
    }
    const clock = new TestClock();
    const system = createResilience({ clock, retry: { jitter: "none" } });
    const seen: unknown[] = [];
    system.on("retry", (e) => void seen.push(e));
    const call = system.execute(
      () => {
        throw new GpuBusyError("queue full");
      },
      { breaker: "hunyuan_video" },
    );
    pending.push(call.catch(() => {}));
    await clock.advance(3000);
    await expect(call).rejects.toBeInstanceOf(RetryExhaustedError);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({
      key: "hunyuan_video",
      url: "",
      attempt: 1,
      delay: 1000,
      reason: "GpuBusyError",
      retryAfter: false,
    });
    expect(seen[1]).toMatchObject({ attempt: 2, delay: 2000 });
    expect(system.debugInfo().recentErrors.at(-1)).toMatchObject({ key: "hunyuan_video", url: "" });
  });

  it("execute(fn, { retry: false }) (enable_retry=False): one attempt, the work's own error", async () => {
    const system = createResilience({ clock: new TestClock() });
    let ran = 0;
    const err = new Error("once");
    await expect(
      system.execute(
        () => {
          ran++;
          throw err;
        },
        { retry: false, breaker: "x" },
      ),
    ).rejects.toSatisfy((e: unknown) => e === err || (e instanceof RetryExhaustedError && e.cause === err));
    expect(ran).toBe(1);
  });

  it("a named breaker's work its caller aborts is neither failure nor success (isFailure: every error but an abort)", async () => {
    const system = createResilience({ clock: new TestClock() });
    const b = system.breaker("flux_image", { failureThreshold: 1 });
    const ac = new AbortController();
    const run = b.execute(
      () =>
        new Promise((_, reject) => ac.signal.addEventListener("abort", () => reject(ac.signal.reason), { once: true })),
      ac.signal,
    );
    ac.abort(new Error("user left"));
    await expect(run).rejects.toThrow("user left");
    expect(b.state).toBe("closed");
    expect(system.health().breakers.flux_image).toMatchObject({ state: "closed" });
  });
});

describe("budget, hooks and standalone chains", () => {
  it("retry(fn, { budget }) with one deposit per call spends as execute does under the layer's budget (ratio 0.1, no free retries)", async () => {
    const numbers = { maxAttempts: 2, initialDelay: 0, jitter: "none" } as const;
    const c1 = new TestClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, c1);
    let own = 0;
    for (let i = 0; i < 25; i++) {
      budget.deposit();
      const call = retry(
        () => {
          own++;
          throw new Error("busy");
        },
        { ...numbers, clock: c1, budget },
      );
      pending.push(call.catch(() => {}));
      await c1.advance(0);
      await expect(call).rejects.toBeInstanceOf(RetryExhaustedError);
    }
    const c2 = new TestClock();
    const system = createResilience({ clock: c2, retry: numbers, budget: { ratio: 0.1, minPerSecond: 0 } });
    let layer = 0;
    for (let i = 0; i < 25; i++) {
      const call = system.execute(() => {
        layer++;
        throw new Error("busy");
      });
      pending.push(call.catch(() => {}));
      await c2.advance(0);
      await expect(call).rejects.toBeInstanceOf(RetryExhaustedError);
    }
    expect(own).toBe(27); // 25 calls, a retry for each 10 deposits
    expect(layer).toBe(own);
    expect(system.health().budget).toMatchObject({ retriesAllowed: 2, retriesDenied: 23 });
    expect(budget.snapshot()).toMatchObject({ retriesAllowed: 2, retriesDenied: 23 });
  });

  it("retry(fn): an async onRetry is awaited before the wait; a caller's abort while it runs settles the call at once", async () => {
    const clock = new TestClock();
    const ac = new AbortController();
    let attempts = 0;
    let hookStarted = false;
    const call = retry(
      () => {
        attempts++;
        throw new Error("busy");
      },
      {
        clock,
        signal: ac.signal,
        onRetry: () => {
          hookStarted = true;
          return new Promise<void>(() => {}); // never settles
        },
      },
    );
    pending.push(call.catch(() => {}));
    await turns();
    expect(hookStarted).toBe(true);
    const reason = new Error("gone");
    ac.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(attempts).toBe(1);
    expect(clock.pending()).toBe(0);
  });

  it("new FallbackChain(name, { clock }).execute(input, { signal }): an abort mid-entry rejects with the reason; that run is not counted", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<string, string>("image_quality", { clock })
      .add(
        async () => {
          throw new Error("qwen down");
        },
        { name: "qwen_ultra" },
      )
      .add(
        (_r, { signal }) =>
          new Promise<string>((resolve) => {
            const t = clock.setTimer(() => resolve("flux"), 5000);
            signal?.addEventListener("abort", t, { once: true });
          }),
        { name: "flux_high", expectedQuality: 0.8 },
      );
    expect(await clock.run(chain.execute("a"))).toBe("flux");
    const ac = new AbortController();
    const run = chain.execute("b", { signal: ac.signal });
    pending.push(run.catch(() => {}));
    await clock.advance(1000);
    const reason = new Error("user left");
    ac.abort(reason);
    await expect(run).rejects.toBe(reason);
    const s = chain.statistics();
    expect(s.overallSuccessRate).toBe(1);
    expect(s.fallbacks.flux_high).toMatchObject({ calls: 1, successes: 1, meanLatencyMs: 5000 });
    expect(s.lastSuccessfulFallback).toBe("flux_high");
    expect(() => new FallbackChain("x", { clok: clock } as never)).toThrow(/clok/);
  });
});
