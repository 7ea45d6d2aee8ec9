/**
 * Outside-in attack on the degradation level over time, as a front-end calling a flaky image API lives it.
 * Docs: docs/degradation.md ("Automatic triggers are fed by every call that settles without the caller aborting it,
 * and evaluated at most once a second as calls settle (no timers, so levels move only while traffic flows): error
 * rate and p95 latency over a rolling `window` (60 s, and at most the last 256 calls …) once `minSamples` (20, at
 * most 256) calls are in it"; "A breach steps down one level per `stepInterval` (10 s). Stepping up needs the
 * signals to be clearly healthy (error rate at most half its threshold, p95 at most 80% of its threshold, judged on
 * the calls the window holds even when they are fewer than `minSamples` …) for a whole `restoreAfter` (60 s), one
 * level at a time; values in between hold the level"; "`setLevel(name)` (pins the level: triggers leave it alone
 * until `restore()`)"; "A call takes the level it finds when it starts"; "each layer it joins gets its own level"),
 * docs/health-and-events.md ("Work run through `execute(fn)` counts there too … and the degradation triggers, by
 * the outcome of the work itself (a `fallback` answering for it leaves it failed); a run its caller aborted is left
 * out. A named breaker's own `.execute(fn)` and a chain's `.execute(input)` count only in that breaker's and that
 * chain's statistics"; "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason`)";
 * `analytics.clearHistory()` "the degradation level and its window belong to the level"), docs/storycore-mapping.md
 * ("The trigger thresholds: error rate 0.1, response time 30 s, memory 0.9, CPU 0.95"), JSDoc of the `./degradation`
 * entry (`DegradationOptions.minSamples` "Calls needed in the window before triggers act", `stepInterval` "At most
 * one automatic step down per this many ms", `configureTriggers` "unnamed ones keep their value").
 * How: `createResilience`, `getResilienceInfo` (root), `degradation` (./degradation), `fallback` (./fallback),
 * `createClient` (./ky), `TestClock` (./testing); a stub transport whose slow answers wait on the TestClock (and
 * cancel their timer on abort), `navigator` stubbed empty (no CPU meter, no browser floor) unless a case sets it,
 * `process.constrainedMemory` stubbed for the memory case.
 * Paths: plain call (JSON body rewritten per level, level header), fallback chain (spare serving, every endpoint
 * failing), hedged chain, `Request` input (its own signal), ky client (HTTPError, ky's `timeout`), `execute`
 * (plain, `fallback`, aborted), a named breaker's `.execute`, a generic chain's `.execute`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * both made exact in the JSDoc since, so plain `it` asserting the new sentences):
 * 1. src/degradation/degradation-options.ts JSDoc of `DegradationOptions.minSamples`: "Calls needed in the window
 *    before triggers act. @default 20". Observed: the memory trigger acts on the very first settled call (memory at
 *    0.95 of `process.constrainedMemory()`, `minSamples: 20`: `full` → `high` after one call, reason "memory 0.95 >
 *    0.9"). docs/degradation.md says this ("memory and CPU where the runtime tells", outside the `minSamples`
 *    clause), and src/policies/degradation-machine.ts `breachReason` gates only error rate and p95 on `enough`; the
 *    JSDoc an editor shows for the option says the opposite.
 * 2. The same file's JSDoc of `stepInterval`: "At most one automatic step down per this many ms. @default 10000".
 *    Observed: the browser floor is an automatic step down that ignores it: on a slow-2g connection the level goes
 *    `full` → `minimal` (four levels) at the first evaluation, and a 2g connection that appears 1 s after a breach
 *    step (`full` → `high`) takes the level to `low` at once. Cause: src/policies/degradation-machine.ts `evaluate`
 *    applies `signals.floor` before and regardless of `stepInterval` ("The environment's floor applies at once").
 *    docs/degradation.md ("set a floor … the first call goes at the level before it") agrees with the code.
 *
 * Held (plain `it`):
 * - error rate, one failing call a second: the 20th (t = 19 s) steps `full` → `high`, then one level per 10 s (29,
 *   39, 49 s), one `degradation` event each with exactly `from`, `to`, `percentage`, `reason`; the call that trips
 *   went at the level before; each call sends the level it found (`steps` 50, 50, 30, 20, 10 and `x-level`);
 * - recovery, one good call a second after 60 failures: the level holds until the window's failures fall to 5%
 *   (t = 117 s), then steps up one level per `restoreAfter` (177, 237, 297, 357 s), reason "healthy";
 * - the window is by time (19 failures, 61 s of quiet, one failure: no breach) and at most 256 calls (26 failures
 *   after 300 good calls breach: 26/256 > 0.1, though 26/326 is not);
 * - hysteresis: an error rate of 1 in 15 (between 5% and 10%) neither lowers nor lifts `high` for 5 minutes;
 * - p95, one 31 s call started each second: `high` at the settle of the 20th (t = 50 s), then one level per 10 s;
 *   at 25 s (between 80% and 100% of 30 s) the level holds; at 20 s it is healthy once the window holds at most 5%
 *   of 25 s calls (t = 327 s) and steps up `restoreAfter` later (387 s); a slow `execute` work feeds it too;
 * - what counts: 404 no failure; 429, 500, a network error, `timeout.total`, an open breaker's `CircuitOpenError`
 *   one failed sample each; the caller's abort (its `signal`, a `Request`'s own signal, ky's `timeout`) none;
 *   a chain's spare serving after the primary's 503 a success (the body rewritten once, both endpoints get
 *   `steps` 30 at `medium`); a chain whose every endpoint answers 503 a failure;
 *   a hedged chain one sample lasting the hedge delay; ky's `HTTPError` on a 500 one failure;
 * - `execute`: a failing work is a failed sample, also when `fallback` answers; an aborted run none; a named
 *   breaker's `.execute` and a generic chain's `.execute` none;
 * - `setLevel` pins against a breach and against health, `restore()` steps up one and unpins, then the triggers act
 *   again; `degrade`/`restore` one event each, none for a move that changes nothing;
 * - `configureTriggers` at runtime: acts at the next evaluation (at most once a second), moves the recovery bar to
 *   half the new threshold, keeps the unnamed thresholds (and `{ errorRate: undefined }`), refuses a typo or 1.5
 *   with `ConfigError`; one stage in two layers: each has its own level and thresholds; two layers share nothing;
 * - no timer: after calls (plain, hedged, aborted, slow) the TestClock has no timer pending; ten quiet minutes move nothing (level,
 *   `health()`), the window empties by time; `analytics.clearHistory()` leaves the level; after the quiet one good
 *   call starts the healthy spell and the level lifts `restoreAfter` later, not at once;
 * - the browser floor as docs/degradation.md says: a 2g connection seen 1 s after a breach step takes `high` to
 *   `low` at once, reason "device or network limits"; the call that saw it went at the level before.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

type Kind = "ok" | "404" | "429" | "500" | "503" | "net" | "slow" | "hang";

/** What one request carried: host, level header, `steps` of its JSON body. */
interface Sent {
  host: string;
  level: string | null;
  steps: unknown;
}

/**
 * A layer on a TestClock over a stub transport: `g.test` answers as `mode` says (a slow answer waits `ms` on the
 * clock, and cancels its timer when aborted, as does a hang), every other host answers 200.
 */
function setup(opts: DegradationOptions = {}, extra: Partial<ResilienceOptions> = {}) {
  const clock = new TestClock();
  const mode: { kind: Kind; ms: number } = { kind: "ok", ms: 0 };
  const sent: Sent[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const text = request.body ? await request.text() : "";
    const host = new URL(request.url).host;
    sent.push({ host, level: request.headers.get("x-level"), steps: text ? JSON.parse(text).steps : undefined });
    if (host !== "g.test") return new Response("spare");
    const kind = mode.kind;
    if (kind === "net") throw new TypeError("fetch failed");
    if (kind === "ok") return new Response("ok");
    if (kind === "slow" || kind === "hang") {
      return new Promise((resolve, reject) => {
        const cancel = kind === "slow" ? clock.setTimer(() => resolve(new Response("ok")), mode.ms) : () => {};
        request.signal.addEventListener("abort", () => {
          cancel();
          reject(request.signal.reason);
        });
      });
    }
    return new Response("no", { status: Number(kind) });
  };
  const layer = createResilience({
    fetch,
    clock,
    retry: false,
    breaker: false,
    ...extra,
    degradation: degradation({ browserSignals: false, levelHeader: "x-level", ...opts }),
  });
  const events: Array<Record<string, unknown>> = [];
  layer.on("degradation", (e) => events.push({ ...e }));
  const at: Array<[number, string]> = [];
  layer.on("degradation", (e) => at.push([clock.now(), e.to]));
  const init = (): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "k1" },
    body: '{"steps":50,"prompt":"a cat"}',
  });
  /** One call to the flaky API, settled (rejections returned). */
  const call = (url = "https://g.test/v1/images", more: RequestInit = {}) =>
    clock.run(layer.fetch(url, { ...init(), ...more })).catch((e: unknown) => e);
  const level = () => layer.degradation.levelName();
  const window = () => layer.debugInfo().degradation?.window;
  return { clock, mode, sent, layer, events, at, call, level, window, init };
}

/** `n` calls one second apart, each settled before the next starts. */
async function everySecond(s: ReturnType<typeof setup>, n: number, each?: () => void): Promise<void> {
  for (let i = 0; i < n; i++) {
    await s.call();
    each?.();
    await s.clock.advance(1000);
  }
}

beforeEach(() => {
  // Node 22 has `navigator.hardwareConcurrency`: without this, the real CPU meter would read this process.
  vi.stubGlobal("navigator", {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("error rate over time: the moment and order of each step", () => {
  it("steps down at the 20th failure, then one level per stepInterval; each call sends the level it found", async () => {
    const s = setup();
    s.mode.kind = "500";
    const trace: string[] = [];
    await everySecond(s, 52, () => trace.push(`${s.clock.now()}:${s.level()}`));
    expect(s.at).toEqual([
      [19_000, "high"],
      [29_000, "medium"],
      [39_000, "low"],
      [49_000, "minimal"],
    ]);
    expect(s.events[0]).toEqual({ from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" });
    expect(s.events.map((e) => `${e.from}>${e.to}:${e.percentage}`)).toEqual([
      "full>high:80",
      "high>medium:60",
      "medium>low:40",
      "low>minimal:20",
    ]);
    expect(s.events.every((e) => Object.keys(e).sort().join() === "from,percentage,reason,to")).toBe(true);
    // The call that trips a step went at the level before it; the next goes at the new one.
    const byCall = s.sent.map((x) => `${x.level}/${x.steps}`);
    expect(byCall[18]).toBe("full/50");
    expect(byCall[19]).toBe("full/50");
    expect(byCall[20]).toBe("high/50");
    expect(byCall[28]).toBe("high/50");
    expect(byCall[29]).toBe("high/50");
    expect(byCall[30]).toBe("medium/30");
    expect(byCall[40]).toBe("low/20");
    expect(byCall[50]).toBe("minimal/10");
    expect(trace[19]).toBe("19000:high");
    expect(s.window()).toMatchObject({ errorRate: 1 });
  });

  it("recovers one level per restoreAfter once the window's failures fall to half the threshold", {
    timeout: 30_000,
  }, async () => {
    const s = setup();
    s.mode.kind = "500";
    await everySecond(s, 60);
    expect(s.level()).toBe("minimal");
    s.mode.kind = "ok";
    await everySecond(s, 300);
    // Failures at 0..59 s: at t = 117 s the window [57 s, 117 s] holds 3 of 61 (0.049 ≤ 0.05): healthy from then.
    expect(s.at.slice(4)).toEqual([
      [177_000, "low"],
      [237_000, "medium"],
      [297_000, "high"],
      [357_000, "full"],
    ]);
    expect(s.events.slice(4).every((e) => e.reason === "healthy")).toBe(true);
    expect(s.events).toHaveLength(8);
    expect(s.layer.degradation.currentLevel()).toMatchObject({ name: "full", since: 357_000, pinned: false });
  });

  it("the window is by time (60 s) and by count (the last 256 calls)", async () => {
    const s = setup();
    s.mode.kind = "500";
    await everySecond(s, 19);
    await s.clock.advance(61_000);
    await s.call();
    expect(s.level()).toBe("full");
    expect(s.window()).toMatchObject({ samples: 1, errorRate: 1 });

    const c = setup();
    // 300 good calls within the minute, then 26 failures: 26/256 > 0.1 (the count cap), 26/326 would not be.
    for (let i = 0; i < 300; i++) await c.call();
    c.mode.kind = "500";
    for (let i = 0; i < 25; i++) await c.call();
    await c.clock.advance(1000);
    await c.call();
    expect(c.window()).toMatchObject({ samples: 256 });
    expect(c.level()).toBe("high");
  });

  it("an error rate between half the threshold and the threshold holds the level both ways", {
    timeout: 30_000,
  }, async () => {
    const s = setup();
    s.layer.degradation.degrade("queue full");
    expect(s.level()).toBe("high");
    let n = 0;
    for (let i = 0; i < 300; i++) {
      s.mode.kind = n++ % 15 === 0 ? "500" : "ok";
      await s.call();
      await s.clock.advance(1000);
      if (i > 60) {
        const rate = s.window()?.errorRate ?? 0;
        expect(rate).toBeGreaterThan(0.05);
        expect(rate).toBeLessThanOrEqual(0.1);
      }
    }
    expect(s.level()).toBe("high");
    expect(s.events).toHaveLength(1);
    s.mode.kind = "ok";
    await everySecond(s, 130);
    expect(s.level()).toBe("full");
    expect(s.events).toHaveLength(2);
  });
});

describe("p95 latency over time: slow answers", () => {
  it("one call started each second: breach above 30 s, hold between 24 and 30 s, recover at 20 s", {
    timeout: 30_000,
  }, async () => {
    const s = setup();
    const pending: Array<Promise<unknown>> = [];
    const start = (ms: number, n: number) => async () => {
      for (let i = 0; i < n; i++) {
        s.mode.kind = "slow";
        s.mode.ms = ms;
        pending.push(s.layer.fetch("https://g.test/v1/images", s.init()));
        await s.clock.advance(1000);
      }
    };
    await start(31_000, 65)();
    // Call k starts at k s and settles at k + 31 s: the 20th (k = 19) settles at 50 s.
    expect(s.at.slice(0, 2)).toEqual([
      [50_000, "high"],
      [60_000, "medium"],
    ]);
    expect(s.events[0]?.reason).toBe("p95 latency 31000 ms > 30000 ms");
    // While the 31 s calls still settle, the level keeps stepping down; once they left the window, 25 s holds.
    await start(25_000, 100)();
    const steps = s.at.length;
    await start(25_000, 80)();
    expect(s.at.length).toBe(steps); // 25 s is neither a breach nor clearly healthy
    await start(20_000, 150)();
    // The last 25 s call settles at 269 s; from 327 s the window holds at most 3 of them (p95 20 s): healthy then,
    // one level up restoreAfter later.
    expect(s.at.slice(3)).toEqual([
      [80_000, "minimal"],
      [387_000, "low"],
    ]);
    expect(s.events.at(-1)?.reason).toBe("healthy");
    await s.clock.advance(30_000);
    await Promise.all(pending);
    expect(s.clock.pending()).toBe(0);
  });
});

describe("what a settled call counts as", () => {
  it("404 none; 429, 500, a network error, timeout.total, an open breaker one failure each", async () => {
    const sample = async (kind: Kind, extra: Partial<ResilienceOptions> = {}) => {
      const s = setup({ minSamples: 1 }, extra);
      s.mode.kind = kind;
      await s.call();
      return { window: s.window(), level: s.level(), errorRate: s.layer.health().errorRate };
    };
    expect(await sample("404")).toEqual({ window: { samples: 1, errorRate: 0, p95: 0 }, level: "full", errorRate: 0 });
    for (const kind of ["429", "500", "net"] as const) {
      expect(await sample(kind)).toEqual({ window: { samples: 1, errorRate: 1, p95: 0 }, level: "high", errorRate: 1 });
    }
    const t = setup({ minSamples: 1 }, { timeout: { total: 100 } });
    t.mode.kind = "hang";
    expect(String(await t.call())).toContain("TimeoutError");
    expect(t.window()).toEqual({ samples: 1, errorRate: 1, p95: 100 });

    const b = setup({ minSamples: 3 }, { breaker: { failureThreshold: 1 } });
    b.mode.kind = "500";
    await b.call();
    const refused = await b.call();
    expect((refused as Error).name).toBe("CircuitOpenError");
    expect(b.sent).toHaveLength(1);
    await b.clock.advance(1000);
    await b.call();
    expect(b.window()).toMatchObject({ samples: 3, errorRate: 1 });
    expect(b.level()).toBe("high");
  });

  it("the caller's abort counts none: its signal, a Request's own signal, ky's timeout", async () => {
    const s = setup({ minSamples: 1 });
    s.mode.kind = "hang";
    const c = new AbortController();
    const p = s.layer.fetch("https://g.test/v1/images", { ...s.init(), signal: c.signal }).catch((e) => e);
    await s.clock.advance(5);
    c.abort();
    expect((await p).name).toBe("AbortError");
    const d = new AbortController();
    const q = s.layer
      .fetch(new Request("https://g.test/v1/images", { ...s.init(), signal: d.signal }))
      .catch((e: unknown) => e);
    await s.clock.advance(5);
    d.abort();
    expect(((await q) as Error).name).toBe("AbortError");
    const api = createClient({ resilience: s.layer, timeout: 50 });
    const k = await api
      .get("https://g.test/v1/images")
      .text()
      .catch((e: unknown) => e);
    expect((k as Error).name).toBe("TimeoutError");
    expect(s.window()).toEqual({ samples: 0, errorRate: 0, p95: undefined });
    expect(s.layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(s.level()).toBe("full");
    expect(s.clock.pending()).toBe(0);
  });

  it("chains: a spare serving after a 503 is a success, every endpoint 503 a failure, a hedge one sample", async () => {
    const chain = (hedge?: number) =>
      fallback([
        {
          name: "img",
          hedge: hedge === undefined ? undefined : { delay: hedge },
          endpoints: [
            { name: "a", url: "https://g.test/v1" },
            { name: "b", url: "https://b.test/v1" },
          ],
        },
      ]);
    const s = setup({ minSamples: 1 }, { fallback: chain(), crossOriginHeaders: ["x-level"] });
    s.mode.kind = "503";
    const served = (await s.call()) as Response;
    expect(getResilienceInfo(served)).toMatchObject({ endpoint: "b", fromFallback: true, degradationLevel: "full" });
    expect(s.window()).toMatchObject({ samples: 1, errorRate: 0 });
    // The body was rewritten once, by the caller's URL, and both endpoints got it.
    s.layer.degradation.setLevel("medium");
    await s.clock.advance(1000);
    await s.call();
    expect(s.sent.slice(2).map((x) => `${x.host}:${x.level}/${x.steps}`)).toEqual([
      "g.test:medium/30",
      "b.test:medium/30",
    ]);

    const failing = createResilience({
      fetch: async () => new Response("busy", { status: 503 }),
      clock: s.clock,
      retry: false,
      breaker: false,
      fallback: chain(),
      degradation: degradation({ browserSignals: false, minSamples: 1 }),
    });
    const last = await s.clock.run(failing.fetch("https://g.test/v1/x"));
    expect(last.status).toBe(503);
    expect(failing.debugInfo().degradation?.window).toEqual({ samples: 1, errorRate: 1, p95: 0 });
    expect(failing.degradation.levelName()).toBe("high");

    const h = setup({ minSamples: 1 }, { fallback: chain(100) });
    h.mode.kind = "slow";
    h.mode.ms = 5000;
    const won = await h.clock.run(h.layer.fetch("https://g.test/v1/x"));
    expect(await won.text()).toBe("spare");
    expect(getResilienceInfo(won)).toMatchObject({ endpoint: "b", durationMs: 100 });
    expect(h.window()).toEqual({ samples: 1, errorRate: 0, p95: 100 });
    expect(h.clock.pending()).toBe(0);
  });

  it("ky: an HTTPError on a 500 is one failed sample; a Request input counts as a call", async () => {
    const s = setup({ minSamples: 2 });
    s.mode.kind = "500";
    const api = createClient({ resilience: s.layer });
    const error = await s.clock
      .run(api.post("https://g.test/v1/images", { json: { steps: 50 } }).text())
      .catch((e) => e);
    expect((error as Error).name).toBe("HTTPError");
    expect(s.window()).toMatchObject({ samples: 1, errorRate: 1 });
    await s.clock.advance(1000);
    await s.clock.run(s.layer.fetch(new Request("https://g.test/v1/images", s.init())));
    expect(s.window()).toMatchObject({ samples: 2, errorRate: 1 });
    expect(s.level()).toBe("high");
    // The next ky call goes at `high`; the one after a manual step at `medium` is rewritten.
    s.layer.degradation.degrade();
    await s.clock.run(api.post("https://g.test/v1/images", { json: { steps: 50 } }).text()).catch(() => {});
    expect(s.sent.at(-1)).toEqual({ host: "g.test", level: "medium", steps: 30 });
  });
});

describe("execute(fn) and the other executors", () => {
  it("a failing work is a failed sample, also when fallback answers; an aborted run none", async () => {
    const s = setup({ minSamples: 1 });
    const answer = await s.clock.run(
      s.layer.execute(
        async () => {
          throw new Error("GPU out of memory");
        },
        { retry: false, fallback: () => "placeholder" },
      ),
    );
    expect(answer).toBe("placeholder");
    expect(s.window()).toEqual({ samples: 1, errorRate: 1, p95: 0 });
    expect(s.events).toEqual([{ from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" }]);

    const a = setup({ minSamples: 1 });
    const c = new AbortController();
    const run = a.layer
      .execute(() => new Promise((resolve) => a.clock.setTimer(() => resolve("late"), 1000)), {
        signal: c.signal,
        retry: false,
      })
      .catch((e: unknown) => e);
    await a.clock.advance(100);
    c.abort();
    expect(((await run) as Error).name).toBe("AbortError");
    await a.clock.advance(2000);
    expect(a.window()).toEqual({ samples: 0, errorRate: 0, p95: undefined });

    // A slow work feeds the p95 trigger as a slow call does.
    const slow = setup({ minSamples: 1 });
    await slow.clock.run(
      slow.layer.execute(() => new Promise((resolve) => slow.clock.setTimer(() => resolve(1), 31_000))),
    );
    expect(slow.level()).toBe("high");
    expect(slow.events[0]?.reason).toBe("p95 latency 31000 ms > 30000 ms");
  });

  it("a named breaker's .execute and a generic chain's .execute count only in their own statistics", async () => {
    const s = setup(
      { minSamples: 1 },
      { fallback: fallback([{ name: "img", endpoints: [{ name: "a", url: "https://g.test/v1" }] }]) },
    );
    await s.clock
      .run(
        s.layer.breaker("gpu").execute(async () => {
          throw new Error("gpu");
        }),
      )
      .catch(() => {});
    const chains = s.layer.fallback;
    if (!chains) throw new Error("the fallback stage joined");
    const chain = chains.chain("local");
    chain.add(
      async () => {
        throw new Error("no");
      },
      { name: "first" },
    );
    await s.clock.run(chain.execute("x")).catch(() => {});
    expect(s.window()).toEqual({ samples: 0, errorRate: 0, p95: undefined });
    expect(s.level()).toBe("full");
  });
});

describe("manual control, runtime thresholds, layers", () => {
  it("setLevel pins against a breach and against health; restore steps up one and unpins", {
    timeout: 30_000,
  }, async () => {
    const s = setup({ minSamples: 5 });
    s.layer.degradation.setLevel("medium", "maintenance");
    s.mode.kind = "500";
    await everySecond(s, 40);
    expect(s.layer.degradation.currentLevel()).toMatchObject({ name: "medium", pinned: true, reason: "maintenance" });
    s.mode.kind = "ok";
    await everySecond(s, 200);
    expect(s.level()).toBe("medium");
    expect(s.sent.at(-1)).toMatchObject({ level: "medium", steps: 30 });
    expect(s.events).toEqual([{ from: "full", to: "medium", percentage: 60, reason: "maintenance" }]);
    expect(s.layer.degradation.restore()).toMatchObject({ name: "high", pinned: false, reason: "restored" });
    await everySecond(s, 61);
    expect(s.level()).toBe("full");
    expect(s.events.map((e) => `${e.to}:${e.reason}`)).toEqual(["medium:maintenance", "high:restored", "full:healthy"]);
    // A move that changes nothing fires nothing.
    s.layer.degradation.restore();
    s.layer.degradation.setLevel("full");
    s.layer.degradation.restore();
    expect(s.events).toHaveLength(3);
  });

  it("configureTriggers acts at the next evaluation, moves the recovery bar, keeps what it does not name", async () => {
    const s = setup({ minSamples: 5 });
    const d = s.layer.degradation;
    // 1 failure in 5 calls: 0.2 breaches the default 0.1 … raise the threshold first.
    d.configureTriggers({ errorRate: 0.5 });
    d.configureTriggers({ responseTime: 60_000, errorRate: undefined });
    let i = 0;
    for (; i < 30; i++) {
      s.mode.kind = i % 5 === 0 ? "500" : "ok";
      await s.call();
      await s.clock.advance(1000);
    }
    expect(s.level()).toBe("full");
    d.degrade();
    // 0.2 ≤ 0.5 / 2: healthy under the new bar, so the level lifts after restoreAfter.
    for (; i < 100; i++) {
      s.mode.kind = i % 5 === 0 ? "500" : "ok";
      await s.call();
      await s.clock.advance(1000);
    }
    expect(s.level()).toBe("full");
    // Lowered again: the same traffic breaches, at the next evaluation, not within the same second.
    await s.call();
    d.configureTriggers({ errorRate: 0.1 });
    s.mode.kind = "500";
    await s.call();
    expect(s.level()).toBe("full");
    await s.clock.advance(1000);
    await s.call();
    expect(s.level()).toBe("high");
    expect(() => d.configureTriggers({ errrorRate: 0.2 } as never)).toThrow(ConfigError);
    expect(() => d.configureTriggers({ errorRate: 1.5 })).toThrow(ConfigError);
  });

  it("one stage in two layers, and two layers: levels, windows and thresholds are each their own", async () => {
    const stage = degradation({ browserSignals: false, minSamples: 2 });
    const clock = new TestClock();
    const make = (answer: (n: number) => number) => {
      let n = 0;
      return createResilience({
        fetch: async () => new Response("x", { status: answer(n++) }),
        clock,
        retry: false,
        breaker: false,
        degradation: stage,
      });
    };
    const half = (n: number) => (n % 2 === 0 ? 500 : 200);
    const tolerant = make(half);
    const strict = make(half);
    const idle = make(() => 200);
    const idleEvents: string[] = [];
    idle.on("degradation", (e) => idleEvents.push(e.to));
    tolerant.degradation.configureTriggers({ errorRate: 0.9 });
    for (const layer of [tolerant, strict]) {
      await clock.run(layer.fetch("https://g.test/"));
      await clock.advance(1000);
      await clock.run(layer.fetch("https://g.test/"));
    }
    // 1 of 2 failed in each: 0.5 breaches the stage's 0.1 (strict), not the 0.9 one layer set for itself.
    expect(tolerant.degradation.levelName()).toBe("full");
    expect(strict.degradation.levelName()).toBe("high");
    expect(idle.debugInfo().degradation?.window).toEqual({ samples: 0, errorRate: 0, p95: undefined });
    strict.degradation.setLevel("minimal");
    expect(idle.degradation.levelName()).toBe("full");
    expect(tolerant.degradation.levelName()).toBe("full");
    expect(idleEvents).toEqual([]);
  });

  it("no timer runs: ten quiet minutes move nothing, the window empties by time, clearHistory keeps the level", async () => {
    const s = setup();
    s.mode.kind = "500";
    await everySecond(s, 25);
    expect(s.level()).toBe("high");
    expect(s.clock.pending()).toBe(0);
    const health = s.layer.health();
    await s.clock.advance(600_000);
    expect(s.level()).toBe("high");
    expect(s.layer.health().degradationLevel).toBe(health.degradationLevel);
    expect(s.events).toHaveLength(1);
    expect(s.window()).toEqual({ samples: 0, errorRate: 0, p95: undefined });
    s.layer.analytics.clearHistory();
    expect(s.layer.health().errorRate).toBe(0);
    expect(s.layer.debugInfo().degradation).toMatchObject({ name: "high", since: 19_000 });
    // After the quiet, one good call starts the healthy spell; the level lifts restoreAfter later, not at once.
    s.mode.kind = "ok";
    await s.call();
    expect(s.level()).toBe("high");
    await s.clock.advance(60_000);
    await s.call();
    expect(s.level()).toBe("full");
  });
});

describe("JSDoc of the ./degradation entry", () => {
  // Made exact in the JSDoc instead: DegradationOptions.minSamples: "Calls needed in the window before the
  // error-rate and p95 triggers act (the memory trigger and the browser floor need none)".
  it("defect 1: minSamples holds the error-rate and p95 triggers; the memory one acts on the first call", async () => {
    vi.spyOn(process, "constrainedMemory").mockImplementation(() => process.memoryUsage().rss / 0.95);
    const s = setup({ minSamples: 20 });
    await s.call();
    expect(s.window()).toMatchObject({ samples: 1 });
    expect(s.level()).toBe("high");
  });

  // Made exact in the JSDoc instead: DegradationOptions.stepInterval: "At most one step down per this many ms by
  // the error-rate, p95 and memory triggers; the browser floor … applies at once, however many levels it skips".
  it("defect 2: a browser floor applies at once, skipping levels, whatever stepInterval says", async () => {
    vi.stubGlobal("navigator", { connection: { effectiveType: "slow-2g" } });
    const s = setup({ browserSignals: true });
    await s.call();
    await s.clock.advance(1000);
    await s.call();
    expect(s.events.map((e) => `${e.from}>${e.to}`)).toEqual(["full>minimal"]);
  });

  it("held: the floor meets the docs/degradation.md sentence (the first call goes at the level before it)", async () => {
    const nav: { connection?: { effectiveType: string } } = {};
    vi.stubGlobal("navigator", nav);
    const s = setup({ browserSignals: true, minSamples: 1 });
    s.mode.kind = "500";
    await s.call();
    expect(s.level()).toBe("high");
    nav.connection = { effectiveType: "2g" };
    await s.clock.advance(1000);
    await s.call();
    expect(s.at).toEqual([
      [0, "high"],
      [1000, "low"],
    ]);
    expect(s.events[1]?.reason).toBe("device or network limits");
    expect(s.sent.map((x) => x.level)).toEqual(["full", "high"]);
  });
});
