/**
 * Outside-in attack on docs/storycore-mapping.md and docs/recipes.md (with the README `…/policies` row and the
 * docs/health-and-events.md, docs/fallback.md and docs/degradation.md sentences they lean on): the generic pieces on the
 * real clock after the latest `FallbackChain` change (a layer's chains take `systemClock` unwrapped), the mapping's
 * "counts as every `resilience.fetch` call does" on every path, and the recipes' timeout and body rules.
 *
 * Docs:
 * - docs/storycore-mapping.md: "As in that system, work run through `system.execute(fn)` counts in `health()`'s
 *   `errorRate` and in the automatic degradation triggers, as every `resilience.fetch` call does"; "The parameter
 *   names the default rewriting rule reads: `quality`, `resolution`, `steps`, `model`, `features`."
 * - docs/health-and-events.md: "by the outcome of the work itself (a `fallback` answering for it leaves it failed)".
 * - docs/degradation.md: "a failed call is one a 5xx or 429 answered or an error ended, as in `health().errorRate`";
 *   "A breach steps down one level per `stepInterval` (10 s)".
 * - docs/fallback.md: "`.run(input, options)` (resolves with what happened …)"; `hedge` "for idempotent requests or
 *   requests with an … key".
 * - README.md: "`…/policies` | `retry(fn)`, `CircuitBreaker`, …, `FallbackChain`, the level machine, for any async work".
 * - docs/recipes.md: "A client's or SDK's own `timeout` aborts the whole call, retries included: the layer sees the
 *   caller's abort and stops."; "(ofetch sets up its `timeout` only for a call that passes no `signal` …)"; "axios with
 *   `adapter: "fetch"` and `env: { fetch: resilience.fetch }`; its `timeout` is the caller's deadline."
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `FallbackChain`, `retry`, `systemClock` (./policies), `TestClock` (./testing); the ofetch and axios recipes
 * (examples/recipes, type-only import of the package name) over ofetch and axios; two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), each its own origin. Real timers of 100 s or more are
 * tracked through the global `setTimeout`/`clearTimeout` (as the real clock sets them): each such test asserts one was
 * set and none is left alive.
 *
 * Paths: plain call, `Request` input, chain (./fallback), hedge, redirect the layer follows (307, same and cross
 * origin), degradation rewrite, the ky client, `execute(fn)`, the ofetch and axios recipes, `new FallbackChain` on
 * `systemClock` and on no clock, `retry(fn)` on the real clock. `resilientProxy` exposes no `health()`: not driven.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every sentence driven held on every path.
 *
 * Held (plain `it`):
 * - One failing call counts once (`debugInfo().totals` {1, 1}, `errorRate` 1, no clock timer left) on every path:
 *   plain, `Request`, chain (both 503), hedge (both 503), 307 to a 503, rewritten POST, ky `HTTPError`, `execute`;
 *   `execute` with a `fallback` answering still counts failed.
 * - Triggers: 25 failing `execute` runs and 25 failing ky calls both step `full` → `high` ("error rate 1.00 > 0.1");
 *   25 chain calls the spare served stay `full` with 0 failures though the primary 503'd each time.
 * - At `medium` the documented example body leaves rewritten on a hedge (both endpoints, with `idempotencyKey`), on
 *   both hops of a cross-origin 307, through ky's `json` and the ofetch recipe's object body.
 * - Real clock: `new FallbackChain(…, { clock: systemClock })` hedged runs (won before the delay, all failed,
 *   aborted in the wait) and `retry(fn)` aborted mid-wait leave no `Timeout` alive; an aborted `run` resolves
 *   `{ ok: false }`, an aborted `execute` rejects even while its entry never settles; a layer on the real clock
 *   with a 10-minute hedge leaves no timer after the primary serves or 503s.
 * - ofetch and axios recipes: the client's `timeout` (30 ms) during the layer's 10-minute retry wait ends the call
 *   (`FetchError` with `TimeoutError` cause / `AxiosError` `ETIMEDOUT`), one request sent, the layer's `request`
 *   event `aborted`, no timer left; ofetch given a `signal` ignores its own `timeout`.
 *
 * Docs-silent (not pinned):
 * - A POST without an idempotency key on a hedged chain starts no hedge timer at all (the hedge waits for the
 *   primary however long): documented in docs/fallback.md's `hedge` item, not in the recipes, whose SDK calls are
 *   POSTs (chat completions, messages, predictions) that a hedged chain will therefore never hedge without
 *   `retry: { idempotencyKey: true }`.
 * - `nextLevel` given an input `type` it does not know returns `undefined` (no `TypeError`, unlike an unknown level
 *   name in `set`); only a JavaScript caller can reach it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAxios } from "../../examples/recipes/axios.ts";
import { createOfetch } from "../../examples/recipes/ofetch.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain, retry, systemClock } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const main = httpUpstream();
const spare = httpUpstream();
serveDuringFile(main, spare);

const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

const tick = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
};

/**
 * Real timers of 100 s or more (the hedges and retry waits driven here are 10 minutes), set through the global
 * `setTimeout` as the library's real clock sets them: those neither fired nor cleared are alive.
 */
const long = new Set<unknown>();
let longMade = 0;
const realSet = globalThis.setTimeout;
const realClear = globalThis.clearTimeout;
beforeEach(() => {
  long.clear();
  longMade = 0;
  globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle = realSet(
      (...a: unknown[]) => {
        long.delete(handle);
        callback(...a);
      },
      ms,
      ...args,
    );
    if ((ms ?? 0) >= 100_000) {
      long.add(handle);
      longMade++;
    }
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((handle?: Parameters<typeof clearTimeout>[0]) => {
    long.delete(handle);
    realClear(handle);
  }) as typeof clearTimeout;
});
afterEach(() => {
  globalThis.setTimeout = realSet;
  globalThis.clearTimeout = realClear;
});

function answer503(hit: Hit): void {
  hit.res.statusCode = 503;
  hit.res.end("down");
}

/** A layer on a test clock, one attempt per call, no CPU/memory trigger. */
function layer(clock: TestClock, extra: Record<string, unknown> = {}): Resilience {
  return createResilience({
    clock,
    retry: { maxAttempts: 1 },
    degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    ...extra,
  } as never);
}

function chainOf(hedge?: number) {
  return fallback([
    {
      name: "gen",
      ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
      endpoints: [
        { name: "a", url: `${main.base}/v1` },
        { name: "b", url: `${spare.base}/v1` },
      ],
    },
  ]);
}

type PathRun = (clock: TestClock) => Promise<{ layer: Resilience; done: Promise<unknown> }>;

const paths: Record<string, PathRun> = {
  "plain call": async (clock) => {
    const l = layer(clock);
    return { layer: l, done: l.fetch(`${main.base}/x`) };
  },
  "Request input": async (clock) => {
    const l = layer(clock);
    return { layer: l, done: l.fetch(new Request(`${main.base}/x`, { method: "POST", body: "{}" })) };
  },
  "chain (./fallback)": async (clock) => {
    spare.on(answer503);
    const l = layer(clock, { fallback: chainOf() });
    return { layer: l, done: l.fetch(`${main.base}/v1/x`) };
  },
  hedge: async (clock) => {
    spare.on(answer503);
    main.on(() => {}); // held until the spare has answered
    const l = layer(clock, { fallback: chainOf(50) });
    const done = l.fetch(`${main.base}/v1/x`);
    const held = await main.nth(1);
    await clock.advance(50);
    await spare.nth(1);
    await tick();
    answer503(held);
    return { layer: l, done };
  },
  "redirect followed": async (clock) => {
    main.on((hit) => {
      if (hit.path === "/r") {
        hit.res.statusCode = 307;
        hit.res.setHeader("location", "/x");
        hit.res.end();
      } else answer503(hit);
    });
    const l = layer(clock);
    return { layer: l, done: l.fetch(`${main.base}/r`) };
  },
  "degradation rewrite": async (clock) => {
    const l = layer(clock);
    l.degradation?.setLevel("medium");
    const done = l.fetch(`${main.base}/x`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ quality: 1, steps: 50 }),
    });
    return { layer: l, done };
  },
  "ky client (./ky)": async (clock) => {
    const l = layer(clock);
    const ky = createClient({ resilience: l, prefix: main.base });
    return { layer: l, done: ky.get("x").text() };
  },
};

describe('mapping: "work run through `system.execute(fn)` counts in `health()`\'s `errorRate` … as every `resilience.fetch` call does"', () => {
  it("execute(fn) that throws counts one failed call", async () => {
    const clock = new TestClock();
    const l = layer(clock);
    await rejection(l.execute(() => Promise.reject(new Error("GPU busy"))));
    expect(l.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    expect(l.health().errorRate).toBe(1);
  });

  for (const [name, run] of Object.entries(paths)) {
    it(`${name}: one failing call counts once as a failed call`, async () => {
      main.on(answer503);
      const clock = new TestClock();
      const { layer: l, done } = await run(clock);
      pending.push(done.catch(() => {}));
      await done.catch(() => {});
      expect(l.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
      expect(l.health().errorRate).toBe(1);
      expect(clock.pending()).toBe(0);
    });
  }
});

describe("generic pieces on the real clock leave no timer alive", () => {
  it("new FallbackChain(name, { clock: systemClock }): a hedged run won before the delay cancels its timer", async () => {
    const chain = new FallbackChain<number, string>("real", { clock: systemClock })
      .add(async () => "fast", { name: "a" })
      .add(async () => "b", { name: "b" });
    const result = await chain.run(1, { hedgeDelay: 600_000 });
    expect(result).toMatchObject({ ok: true, value: "fast" });
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
});

describe("mapping: the automatic degradation triggers, fed per call on each path", () => {
  const levelAfter25 = async (call: (l: Resilience) => Promise<unknown>, extra: Record<string, unknown> = {}) => {
    const clock = new TestClock();
    const l = layer(clock, { breaker: false, ...extra });
    for (let i = 0; i < 25; i++) {
      await call(l).catch(() => {});
      await clock.advance(500);
    }
    return { level: l.degradation?.currentLevel().name, totals: l.debugInfo().totals, errorRate: l.health().errorRate };
  };

  it("execute(fn) failing 25 times steps full -> high, as the ky client's failing calls do", async () => {
    main.on(answer503);
    const viaExecute = await levelAfter25((l) => l.execute(() => Promise.reject(new Error("GPU busy"))));
    const viaKy = await levelAfter25((l) => createClient({ resilience: l, prefix: main.base }).get("x").text());
    expect(viaExecute).toEqual({ level: "high", totals: { calls: 25, failures: 25 }, errorRate: 1 });
    expect(viaKy).toEqual(viaExecute);
  });

  it("a chain whose spare serves every call counts 25 good calls: the primary's 503s feed nothing", async () => {
    main.on(answer503);
    const viaChain = await levelAfter25((l) => l.fetch(`${main.base}/v1/x`).then((r) => r.text()), {
      fallback: chainOf(),
    });
    expect(main.hits).toHaveLength(25);
    expect(viaChain).toEqual({ level: "full", totals: { calls: 25, failures: 0 }, errorRate: 0 });
  });
});

describe("recipes point 2: \"A client's or SDK's own `timeout` aborts the whole call, retries included: the layer sees the caller's abort and stops.\"", () => {
  for (const client of ["ofetch", "axios"] as const) {
    it(`${client} recipe: its timeout during the layer's 10-minute wait ends the call, no 2nd attempt, no timer left`, async () => {
      main.on(answer503);
      const l = createResilience({ retry: { initialDelay: 600_000, maxDelay: 600_000, jitter: "none" } });
      const outcomes: string[] = [];
      l.on("request", (e) => void outcomes.push(e.outcome));
      const started = Date.now();
      const error = (await rejection(
        client === "ofetch"
          ? createOfetch(l, main.base)("/x", { timeout: 30 })
          : createAxios(l, main.base).get("/x", { timeout: 30 }),
      )) as { name: string; code?: string; cause?: { name: string } };
      expect(Date.now() - started).toBeLessThan(2_000);
      if (client === "ofetch") expect(error).toMatchObject({ name: "FetchError", cause: { name: "TimeoutError" } });
      else expect(error).toMatchObject({ name: "AxiosError", code: "ETIMEDOUT" });
      await tick(10);
      expect(main.hits).toHaveLength(1);
      expect(outcomes).toEqual(["aborted"]);
      expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
    });
  }
});

describe("generic pieces and a layer on the real clock: more runs that leave no timer", () => {
  it("new FallbackChain on systemClock: both entries fail before the hedge delay", async () => {
    const chain = new FallbackChain<number, string>("real2", { clock: systemClock })
      .add(
        async () => {
          throw new Error("a down");
        },
        { name: "a" },
      )
      .add(
        async () => {
          throw new Error("b down");
        },
        { name: "b" },
      );
    const result = await chain.run(1, { hedgeDelay: 600_000 });
    expect(result.ok).toBe(false);
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
  it("new FallbackChain on systemClock: a caller aborting in the hedge wait ends the run { ok: false }", async () => {
    const ctl = new AbortController();
    const chain = new FallbackChain<number, string>("real3", { clock: systemClock })
      .add((_i, { signal }) => new Promise((_r, j) => signal?.addEventListener("abort", () => j(signal.reason))), {
        name: "a",
      })
      .add(async () => "b", { name: "b" });
    const run = chain.run(1, { hedgeDelay: 600_000, signal: ctl.signal });
    await tick(2);
    ctl.abort(new Error("bye"));
    expect(await run).toMatchObject({ ok: false, tried: ["a"] });
    await tick(2);
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
  it("new FallbackChain without a clock: execute aborted while its entry never settles rejects at once", async () => {
    const ctl = new AbortController();
    const chain = new FallbackChain<number, string>("real4")
      .add(() => new Promise(() => {}), { name: "a" })
      .add(async () => "b", { name: "b" });
    const run = chain.execute(1, { signal: ctl.signal });
    await tick(2);
    ctl.abort(new Error("bye"));
    let t: ReturnType<typeof setTimeout> | undefined;
    const err = await Promise.race([
      rejection(run),
      new Promise((r) => {
        t = setTimeout(() => r("HUNG"), 50);
      }),
    ]);
    clearTimeout(t);
    expect(err).toMatchObject({ message: "bye" });
    expect(long.size).toBe(0);
  });
  it("retry(fn) on the real clock aborted mid-wait", async () => {
    const ctl = new AbortController();
    const call = retry(() => Promise.reject(new Error("x")), {
      initialDelay: 600_000,
      maxDelay: 600_000,
      jitter: "none",
      signal: ctl.signal,
    });
    await tick(2);
    ctl.abort(new Error("bye"));
    expect(await rejection(call)).toMatchObject({ message: "bye" });
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
  it("a layer on the real clock, 10-minute hedge: the primary serves", async () => {
    const l = createResilience({ fallback: chainOf(600_000) });
    const res = await l.fetch(`${main.base}/v1/x`);
    await res.text();
    await tick(2);
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
  it("a layer on the real clock, 10-minute hedge: the primary 503s, the spare serves", async () => {
    main.on(answer503);
    const l = createResilience({ retry: { maxAttempts: 1 }, fallback: chainOf(600_000) });
    const res = await l.fetch(`${main.base}/v1/x`);
    expect(res.status).toBe(200);
    await res.text();
    await tick(2);
    expect({ made: longMade > 0, alive: long.size }).toEqual({ made: true, alive: 0 });
  });
  it("execute with a `fallback` answering still counts one failed call", async () => {
    const clock = new TestClock();
    const l = layer(clock);
    const v = await l.execute(() => Promise.reject(new Error("GPU busy")), { fallback: () => "spare" });
    expect(v).toBe("spare");
    expect(l.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });
});

const WRITTEN = { quality: 1.0, resolution: "1080p", steps: 50, model: "premium" };
const MEDIUM = { quality: 0.8, resolution: "720p", steps: 30, model: "standard" };

describe("mapping: the default rule rewrites at medium on the hedge, redirect, ky and ofetch paths", () => {
  it("hedge (with idempotencyKey): both endpoints get the rewritten body", async () => {
    main.on(() => {});
    const clock = new TestClock();
    const l = layer(clock, { fallback: chainOf(50), retry: { maxAttempts: 1, idempotencyKey: true } });
    l.degradation?.setLevel("medium");
    const done = l.fetch(`${main.base}/v1/x`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(WRITTEN),
    });
    pending.push(done.catch(() => {}));
    const held = await main.nth(1);
    await clock.advance(50);
    const s = await spare.nth(1);
    const res = await done;
    expect(res.status).toBe(200);
    held.res.end("late");
    expect(JSON.parse(held.body)).toEqual(MEDIUM);
    expect(JSON.parse(s.body)).toEqual(MEDIUM);
  });
  it("cross-origin 307: the replayed body is the rewritten one", async () => {
    main.on((hit) => {
      if (hit.path === "/r") {
        hit.res.statusCode = 307;
        hit.res.setHeader("location", `${spare.base}/x`);
        hit.res.end();
      } else hit.res.end("ok");
    });
    const clock = new TestClock();
    const l = layer(clock);
    l.degradation?.setLevel("medium");
    const res = await l.fetch(`${main.base}/r`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(WRITTEN),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse((main.hits[0] as Hit).body)).toEqual(MEDIUM);
    expect(JSON.parse((spare.hits[0] as Hit).body)).toEqual(MEDIUM);
  });
  it("ky client: `json` leaves rewritten", async () => {
    const clock = new TestClock();
    const l = layer(clock);
    l.degradation?.setLevel("medium");
    const ky = createClient({ resilience: l, prefix: main.base });
    expect(await ky.post("x", { json: WRITTEN }).text()).toBe("ok");
    expect(JSON.parse((main.hits[0] as Hit).body)).toEqual(MEDIUM);
  });
  it("ofetch recipe: an object body leaves rewritten", async () => {
    const clock = new TestClock();
    const l = layer(clock);
    l.degradation?.setLevel("medium");
    const api = createOfetch(l, main.base);
    expect(await api("/x", { method: "POST", body: WRITTEN })).toBe("ok");
    expect(JSON.parse((main.hits[0] as Hit).body)).toEqual(MEDIUM);
  });
});

describe("ofetch recipe", () => {
  it("a call with its own signal: ofetch's timeout is not applied", async () => {
    main.on(() => {});
    const resilience = createResilience({ retry: { maxAttempts: 1 } });
    const api = createOfetch(resilience, main.base);
    const ctl = new AbortController();
    let settled = false;
    const call = api("/hang", { signal: ctl.signal, timeout: 20 }).finally(() => {
      settled = true;
    });
    pending.push(call.catch(() => {}));
    await main.nth(1);
    await new Promise((r) => setTimeout(r, 60));
    expect(settled).toBe(false);
    ctl.abort(new Error("stop"));
    await rejection(call);
  });
});
