/**
 * Outside-in attack on docs/options.md and docs/health-and-events.md through the per-call options (`execute(fn, {
 * retry })`, `breaker(name, options)`, `fallback.chain(name, options)`, `degradation.configureTriggers`, a ky call's
 * own options), the budget's quoted defaults on every way in, and the events and `health()` after failures reached
 * through a hedge, the ky client and `resilientProxy`. Aimed at what optionsdoc-fiftyfour (root/ky/proxy rows),
 * optionsdoc-fiftytwo (value shapes), optionsrows-fortysix (row defaults) and healthevents-fortyfour did not drive.
 *
 * Docs:
 * - docs/options.md: "throws `ConfigError` naming the path and the expected value"; "A value that cannot be read (a
 *   getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too. `undefined` never wipes a
 *   default."; "createClient refuses only ky's `retry` and `fetch`"; "What validates what": "**Options**
 *   (`createResilience`, `execute(fn, { retry })`, `breaker(name, options)`, `degradation.configureTriggers`): a
 *   small table-driven checker"; rows `budget.ratio` "`0.1` | tokens earned per call", `budget.minPerSecond` "`10` |
 *   free retries per second", `maxReplayBytes` "largest body kept for retries … larger ones go once",
 *   `degradation.levels` "per-level overrides", `degradation.triggers` "step-down thresholds".
 * - docs/health-and-events.md: "`health()` returns plain JSON: `status` (`unhealthy` when a breaker is open,
 *   `degraded` above a 10% error rate), `errorRate` …, `degradationLevel` …, every breaker (`state`, `failureCount`,
 *   `consecutiveFailures`, …), the budget's tokens, and `fallback`: each chain's statistics (`{}` without the
 *   fallback stage)"; "`request` fires once per call the layer started, when it settles (`status` or `error`,
 *   `attempts`, `durationMs`, `outcome`)"; "`retry` fires before each wait (`key`, `attempt`, `delay`, `reason`,
 *   `retryAfter`)"; "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`, `next`: after a
 *   failure, a hedge already running that the call carries on with …)"; "`degradation` fires on every level change
 *   (`from`, `to`, `percentage`, `reason`"; "`replay` when a body was too large to keep for retries".
 * - src/http/named-breakers.ts JSDoc: "Their options default to the layer's `breaker` options"; src/http/execute.ts
 *   `ExecuteOptions.retry`: "Retry options for this work, over the instance's"; graceful-degradation.ts
 *   `configureTriggers`: "unnamed ones keep their value".
 *
 * How: `createResilience`, `getResilienceInfo`, `ConfigError` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, fake `ctx`), `TestClock` (./testing); two
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) answering 503 or 200.
 *
 * Paths: plain call, `Request` input, fallback chain, hedged chain, degradation rewrite (a level override), ky client
 * (its own options and on a given layer), `resilientProxy` (upstream route, its health path), `execute`, named
 * breakers, `fallback.chain(name, options)`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found: every sentence driven below held on the paths tried.
 *
 * Held (plain `it`):
 * - Per-call options are refused at once (thrown, or for `execute` rejected before its work runs) with a
 *   `ConfigError` naming their path: `breaker("n").timeout`, `breaker("n").key`, `fallback.chain.order` (a bad value
 *   and a getter that throws), `fallback.chain` (a typo, a revoked Proxy), `degradation.triggers.errorRate`,
 *   `degradation.triggers` (a typo, a revoked Proxy), `execute.retry.maxAttempts`, `execute` (revoked); a ky call's
 *   `retry`/`fetch`, and `extend({ fetch })`, throw a `ConfigError` before anything is sent.
 * - `undefined` in per-call options keeps the value in force: `execute`'s `maxAttempts` the layer's 5, a named
 *   breaker's `failureThreshold` the layer's 2, `configureTriggers({ errorRate: undefined })` the stage's 1.
 * - The budget's defaults by behaviour: 10 free retries at once (11 requests for `maxAttempts: 30`, tokens 0.1 left),
 *   10 more a second later, on the plain call, ky, the proxy (its health JSON), a chain and `execute`; `health()`
 *   names `ratio` 0.1 and `minPerSecond` 10.
 * - A body over `maxReplayBytes` goes once with one `replay` event (`url`, `bytes`, `limit`) on plain, `Request`,
 *   ky (`body` and `json`) and a chain (which then does not move on).
 * - ky on a hedged chain whose endpoints both answer 503: `HTTPError` 503, `fallback` events a → b (the running
 *   hedge) and b → none, one `request` event (`status`, `attempts` 2, `durationMs`, `outcome`), then `health()`
 *   `degraded` at `errorRate` 1, each host's breaker one failure, the chain's statistics 0 of 1 each.
 * - The proxy's health JSON after a 503 retried once: `degraded`, `errorRate` 1, the host's breaker 2 in a row,
 *   `fallback` `{}`, `degradationLevel` "full".
 * - A level override (`low.percentage: 55`): the `degradation` event, `currentLevel()`, `debugInfo().degradation`,
 *   `health().degradationLevel`, `getResilienceInfo(res).degradationLevel` and the level header all agree.
 *
 * Docs-silent (not pinned):
 * - `createClient({ retry: undefined })` is refused like `retry: 1` (`"retry" in options`), where for the layer's
 *   own options `undefined` never wipes a default; the docs say only that ky's `retry` is refused.
 * - A chain whose first endpoint got a body over `maxReplayBytes` and answered 503 resolves with that 503 without
 *   asking the next endpoint (docs/fallback.md says such a body "goes to one endpoint only"; no `fallback` event).
 */
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const NAMES = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
const fail = (hit: Hit): void => {
  hit.res.statusCode = 503;
  hit.res.end("no");
};

let clocks: TestClock[] = [];
afterEach(() => {
  for (const clock of clocks) expect(clock.pending()).toBe(0);
  clocks = [];
});
function testClock(): TestClock {
  const clock = new TestClock();
  clocks.push(clock);
  return clock;
}

function record(r: Resilience): Array<[string, Record<string, unknown>]> {
  const events: Array<[string, Record<string, unknown>]> = [];
  for (const name of NAMES) r.on(name, (e) => events.push([name, e as unknown as Record<string, unknown>]));
  return events;
}

/** The `ConfigError` `run` throws, as `path: message`; anything else fails the test. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return `${(error as ConfigError).path} | ${(error as Error).message}`;
  }
  throw new Error("not refused");
}

function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

describe("per-call options: refused at once, by path", () => {
  const layer = () =>
    createResilience({
      fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: `${A.base}/c` }] }]),
      degradation: degradation({}),
    });

  it("breaker(name, options), fallback.chain(name, options) and configureTriggers throw a ConfigError naming the path", () => {
    const r = layer();
    expect(refusal(() => r.breaker("n", { timeout: -1 }))).toBe(
      'breaker("n").timeout | breaker("n").timeout: expected a value >= 0, received -1',
    );
    expect(refusal(() => r.breaker("n", { key: 5 } as never))).toBe(
      'breaker("n").key | breaker("n").key: expected a function, received 5',
    );
    expect(refusal(() => r.breaker("n", revoked() as never))).toMatch(/^breaker\("n"\) \| .*cannot be read$/);
    expect(refusal(() => r.fallback.chain("z", { order: "random" } as never))).toBe(
      'fallback.chain.order | fallback.chain.order: expected one of "fixed", "adaptive", received "random"',
    );
    const throwing = {
      get order(): "fixed" {
        throw new Error("getter");
      },
    };
    expect(refusal(() => r.fallback.chain("z", throwing))).toMatch(/^fallback\.chain\.order \| .*cannot be read$/);
    expect(refusal(() => r.fallback.chain("z", { order: "fixed", ordr: 1 } as never))).toBe(
      'fallback.chain | fallback.chain: unknown option "ordr"',
    );
    expect(refusal(() => r.fallback.chain("z", revoked() as never))).toMatch(/^fallback\.chain \| .*cannot be read$/);
    expect(refusal(() => r.degradation.configureTriggers({ errorRate: 2 }))).toBe(
      "degradation.triggers.errorRate | degradation.triggers.errorRate: expected a value <= 1, received 2",
    );
    expect(refusal(() => r.degradation.configureTriggers({ errorrate: 0.2 } as never))).toBe(
      'degradation.triggers | degradation.triggers: unknown option "errorrate"',
    );
    expect(refusal(() => r.degradation.configureTriggers(revoked() as never))).toMatch(/cannot be read$/);
  });

  it("execute(fn, options) rejects before its work runs, naming the path", async () => {
    const r = layer();
    let ran = 0;
    const work = () => ++ran;
    const bad = await r.execute(work, { retry: { maxAttempts: 0 } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as ConfigError).path).toBe("execute.retry.maxAttempts");
    const unreadable = await r.execute(work, revoked() as never).catch((e: unknown) => e);
    expect((unreadable as ConfigError).path).toBe("execute");
    const typo = await r.execute(work, { retry: { maxAttemps: 2 } } as never).catch((e: unknown) => e);
    expect((typo as Error).message).toBe('execute.retry: unknown option "maxAttemps"');
    expect(ran).toBe(0);
  });

  it("a ky call's own retry or fetch, and extend({ fetch }), throw a ConfigError before anything is sent", () => {
    const api = createClient({ prefix: A.base });
    expect(refusal(() => api.get("x", { retry: 2 } as never))).toMatch(
      /^retry \| retry: set retries and the transport/,
    );
    expect(refusal(() => api.post("x", { fetch: globalThis.fetch } as never))).toMatch(/^fetch \| /);
    expect(refusal(() => api.extend({ fetch: globalThis.fetch } as never))).toMatch(/^fetch \| /);
    expect(A.hits.length).toBe(0);
  });
});

describe("`undefined` never wipes what is in force, in per-call options", () => {
  it("execute's retry over the layer's: maxAttempts undefined keeps the layer's 5", async () => {
    const clock = testClock();
    const r = createResilience({ clock, retry: { maxAttempts: 5, initialDelay: 0, jitter: "none" } });
    let runs = 0;
    const work = () => {
      runs++;
      throw new Error("down");
    };
    await clock.run(r.execute(work, { retry: { maxAttempts: undefined, initialDelay: undefined } }).catch(() => {}));
    expect(runs).toBe(5);
  });

  it("a named breaker's failureThreshold undefined keeps the layer's 2", async () => {
    const r = createResilience({ breaker: { failureThreshold: 2 } });
    const named = r.breaker("n", { failureThreshold: undefined });
    for (let i = 0; i < 2; i++) {
      await r.execute(() => Promise.reject(new Error("down")), { breaker: "n", retry: false }).catch(() => {});
    }
    expect(named.state).toBe("open");
    expect(r.health().breakers.n).toMatchObject({ state: "open", consecutiveFailures: 2 });
    expect(r.health().status).toBe("unhealthy");
  });

  it("configureTriggers({ errorRate: undefined }) keeps the stage's 1: failures never step down", async () => {
    A.on(fail);
    const clock = testClock();
    const make = (errorRate?: number) =>
      createResilience({
        clock,
        retry: false,
        degradation: degradation({ triggers: { errorRate }, minSamples: 1, browserSignals: false }),
      });
    const kept = make(1);
    kept.degradation.configureTriggers({ errorRate: undefined, responseTime: 60_000 });
    const plain = make();
    for (const r of [kept, plain]) {
      for (let i = 0; i < 3; i++) {
        await clock.run(r.fetch(`${A.base}/x`));
        await clock.advance(11_000);
      }
    }
    expect(kept.degradation.currentLevel().name).toBe("full");
    expect(plain.degradation.currentLevel()).toMatchObject({ name: "low", reason: "error rate 1.00 > 0.1" });
  });
});

describe("budget.ratio 0.1 / minPerSecond 10 on every way in", () => {
  const retry = { maxAttempts: 30, initialDelay: 0, jitter: "none" as const };
  type Way = "plain" | "ky" | "chain" | "execute";

  async function once(way: Way, r: Resilience, clock: TestClock): Promise<number> {
    A.reset();
    B.reset();
    A.on(fail);
    B.on(fail);
    let runs = 0;
    if (way === "plain" || way === "chain") await clock.run(r.fetch(`${A.base}/x`));
    if (way === "ky") await clock.run(createClient({ resilience: r }).get(`${A.base}/x`, { throwHttpErrors: false }));
    if (way === "execute") {
      const work = () => {
        runs++;
        throw new Error("down");
      };
      await clock.run(r.execute(work).catch(() => {}));
    }
    return A.hits.length + B.hits.length + runs;
  }

  for (const way of ["plain", "ky", "chain", "execute"] as const) {
    it(`${way}: 10 free retries at once, 10 more a second later`, async () => {
      const clock = testClock();
      const chains = fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: A.base },
            { name: "b", url: B.base },
          ],
        },
      ]);
      const r = createResilience({ clock, retry, breaker: false, fallback: way === "chain" ? chains : undefined });
      const retries: unknown[] = [];
      r.on("retry", (e) => retries.push(e));
      const extra = way === "chain" ? 1 : 0; // the chain's next endpoint is no retry
      expect(await once(way, r, clock)).toBe(11 + extra);
      expect(retries).toHaveLength(10);
      expect(r.health().budget).toMatchObject({ ratio: 0.1, minPerSecond: 10, retriesAllowed: 10 });
      expect(r.health().budget?.tokens).toBeCloseTo(0.1, 9);
      await clock.advance(1000);
      expect(await once(way, r, clock)).toBe(11 + extra);
      expect(r.health().budget?.retriesAllowed).toBe(20);
    });
  }

  it("proxy: the same 11 requests, and its health JSON shows the budget", async () => {
    A.on(fail);
    const clock = testClock();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: { clock, retry, breaker: false },
    });
    const res = await clock.run(proxy.fetch(new Request("https://w.test/v1/x"), {}, ctx));
    expect(res.status).toBe(503);
    expect(A.hits.length).toBe(11);
    const health = await (await proxy.fetch(new Request("https://w.test/__resilience/health"), {}, ctx)).json();
    expect(health.budget).toMatchObject({ ratio: 0.1, minPerSecond: 10, retriesAllowed: 10, retriesDenied: 1 });
  });
});

describe("events and health() after failures, off the plain path", () => {
  it("a body over maxReplayBytes goes once, with one replay event, on plain, Request, ky and a chain", async () => {
    for (const way of ["plain", "request", "ky", "kyjson", "chain"] as const) {
      A.reset();
      B.reset();
      A.on(fail);
      const clock = testClock();
      const chains = fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/c` },
            { name: "b", url: `${B.base}/c` },
          ],
        },
      ]);
      const r = createResilience({
        clock,
        maxReplayBytes: 10,
        retry: { maxAttempts: 2, initialDelay: 0, jitter: "none", retryOn: { methods: ["POST"] } },
        fallback: way === "chain" ? chains : undefined,
      });
      const events = record(r);
      const body = "x".repeat(50);
      const url = way === "chain" ? `${A.base}/c` : `${A.base}/p`;
      const api = createClient({ resilience: r });
      const call =
        way === "request"
          ? r.fetch(new Request(url, { method: "POST", body }))
          : way === "ky"
            ? api.post(url, { body, throwHttpErrors: false })
            : way === "kyjson"
              ? api.post(url, { json: { a: body }, throwHttpErrors: false })
              : r.fetch(url, { method: "POST", body });
      const res = (await clock.run(call)) as Response;
      expect(res.status, way).toBe(503);
      expect([A.hits.length, B.hits.length], way).toEqual([1, 0]);
      const replays = events.filter(([n]) => n === "replay").map(([, e]) => e);
      expect(replays, way).toEqual([{ url, bytes: way === "kyjson" ? 58 : 50, limit: 10 }]);
      expect(
        events.filter(([n]) => n === "request").map(([, e]) => e.attempts),
        way,
      ).toEqual([1]);
    }
  });

  it("ky on a hedged chain of two 503s: fallback events, one request event, then health() degraded", async () => {
    A.on(fail);
    B.on(fail);
    const clock = testClock();
    const r = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 0 },
          endpoints: [
            { name: "a", url: A.base },
            { name: "b", url: B.base },
          ],
        },
      ]),
    });
    const events = record(r);
    const out = await clock.run(
      createClient({ resilience: r })
        .get(`${A.base}/x`)
        .then(
          (res) => res.status,
          (e: { name: string; response?: Response }) => `${e.name} ${e.response?.status}`,
        ),
    );
    expect(out).toBe("HTTPError 503");
    expect(events.map(([n]) => n)).toEqual(["fallback", "fallback", "request"]);
    expect(events[0]?.[1]).toEqual({ chain: "c", from: "a", reason: "status 503", next: "b" });
    expect(events[1]?.[1]).toMatchObject({ chain: "c", from: "b", reason: "status 503" });
    expect(events[2]?.[1]).toMatchObject({ key: "c", status: 503, attempts: 2, outcome: "response" });
    expect(typeof events[2]?.[1].durationMs).toBe("number");
    const health = r.health();
    expect(health).toMatchObject({ status: "degraded", errorRate: 1, degradationLevel: "full" });
    expect(health.breakers[A.host]).toMatchObject({ state: "closed", failureCount: 1, consecutiveFailures: 1 });
    expect(health.breakers[B.host]).toMatchObject({ state: "closed", failureCount: 1, consecutiveFailures: 1 });
    expect(health.fallback.c?.fallbacks).toMatchObject({
      a: { calls: 1, successes: 0 },
      b: { calls: 1, successes: 0 },
    });
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
  });

  it("the proxy's health JSON after a 503 retried once", async () => {
    A.on(fail);
    const clock = testClock();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: { clock, retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } },
    });
    const res = await clock.run(proxy.fetch(new Request("https://w.test/v1/x"), {}, ctx));
    expect([res.status, res.headers.get("x-resilience-attempts")]).toEqual([503, "2"]);
    const health = await (await proxy.fetch(new Request("https://w.test/__resilience/health"), {}, ctx)).json();
    expect(health).toMatchObject({ status: "degraded", errorRate: 1, degradationLevel: "full", fallback: {} });
    expect(health.breakers[A.host]).toMatchObject({
      state: "closed",
      failureCount: 2,
      consecutiveFailures: 2,
      failureRate: 1,
      lastError: null,
    });
  });

  it("a level override's percentage: event, currentLevel, debugInfo, health, getResilienceInfo and header agree", async () => {
    const clock = testClock();
    const r = createResilience({
      clock,
      degradation: degradation({ levels: { low: { percentage: 55 } }, levelHeader: "x-level" }),
    });
    const events = record(r);
    r.degradation.setLevel("low");
    const res = await clock.run(
      r.fetch(`${A.base}/q`, { method: "POST", body: JSON.stringify({ steps: 50, quality: 1 }) }),
    );
    expect(events[0]).toEqual(["degradation", { from: "full", to: "low", percentage: 55, reason: "set manually" }]);
    expect(r.degradation.currentLevel()).toMatchObject({ name: "low", percentage: 55 });
    expect(r.debugInfo().degradation).toMatchObject({ name: "low", percentage: 55 });
    expect(r.health().degradationLevel).toBe("low");
    expect(getResilienceInfo(res)?.degradationLevel).toBe("low");
    expect(A.hits[0]?.headers["x-level"]).toBe("low");
    expect(JSON.parse(A.hits[0]?.body ?? "{}")).toEqual({ steps: 20, quality: 0.6 });
  });
});
