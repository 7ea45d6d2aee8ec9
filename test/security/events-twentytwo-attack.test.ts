/**
 * Outside-in attack on what the layer reports: `health()`, `debugInfo()`, analytics and events. Docs:
 * docs/health-and-events.md (all), `getResilienceInfo` (README, docs/fallback.md), docs/breakers.md (`breaker`
 * events, bulkhead fields), docs/degradation.md (`degradation` events, the 256-call window), docs/retry.md
 * (redirects: one attempt, events), docs/cloudflare.md (the proxy's health endpoint), SECURITY.md (no query in
 * events, errors, health or debugInfo).
 * How: root, `./fallback`, `./degradation`, `./cloudflare`, `./testing` (TestClock); stub transports
 * (`hostFetch` and inline scripted fetches); time moves only on the TestClock. Paths: plain call with retries,
 * fallback chain with retries, hedge (the loser, a late winner), a followed redirect whose hop fails, a
 * degradation level change, a `Request` input, caller abort (plain and hedged), `timeout.total`, a call refused by
 * an open breaker, a full bulkhead, the Worker proxy's health JSON; window edges (50 failures, 5-second steps,
 * 256 calls).
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour):
 * (none found: every count, field, order and window edge checked below matched the docs)
 *
 * Held (plain `it`):
 * - plain call, two 503s then 200: `retry` ×2 before `request` (attempts 3), one call counted, no failure;
 * - chain, endpoint a retried to exhaustion then b serves: one `fallback` event, one `request` keyed by the chain
 *   (attempts 4 = 3 + 1), totals 1 call 0 failures, statistics a 1/0 and b 1/1 (no double counting across retry
 *   and chain);
 * - hedge: the late loser gets no `fallback` event, nothing is emitted after the call settled, both endpoints are
 *   counted in `statistics()`, the loser's breaker hears no failure; a caller's abort during a hedge counts
 *   neither endpoint nor the call;
 * - a followed redirect whose hop answers 503, then retried: one call, attempts 2, one `redirect` event per hop
 *   followed (URLs cut), the hop's status on the first host's breaker; 21 redirects: 20 events;
 * - caller abort: `request` outcome "aborted", left out of totals and error rate; `timeout.total` on a `Request`
 *   input: counted, `recentErrors` URL without its query;
 * - a call refused by an open breaker: `request` with attempts 0, counted as a failure; a bulkhead-rejected call
 *   likewise, a queued caller's abort not counted, `active`/`queued` back to 0;
 * - `recentErrors` keeps the last 50 (the 51st failure pushes out the first); `errorRate` forgets a call
 *   55–60 s after it (5-second steps);
 * - degradation: the `degradation` event fields (`from`, `to`, `percentage`, `reason`), `getResilienceInfo`'s
 *   level is the level the call started at, window `samples` caps at 256;
 * - a `Retry-After` beyond `maxRetryAfter`: one `breaker` event, `openUntil` equal in event and `health()`;
 *   one in flight after the trip: `open` → `open`;
 * - listeners: a throwing and an async-rejecting listener are reported, the next listener still runs, the call
 *   resolves; a typo in `on` lists the eight names;
 * - `resilientProxy`'s health endpoint: `health()` as JSON, the open breaker, no query.
 *
 * Undocumented (not pinned): `open` → `half_open` is emitted lazily, when the next call arrives, although
 * `health()` already reads `half_open` before (the docs say a state reads "as a call would find it now", and the
 * event "fires on every state change" without saying when); a breaker held open by `Retry-After` shows the
 * reason text ("Retry-After 3600 s on status 503") as `lastError` rather than "status 503";
 * `analytics.clearHistory()` also empties the error-rate window (the docs name only totals and failures); the
 * `fallback` event's `reason` for a network error is "TypeError: <message>" while `retry` says "network error";
 * a listener added mid-call gets no `fallback` events for that call (the chain reads `has("fallback")` at start).
 */
import { describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

type Layer = ReturnType<typeof createResilience>;
const NAMES = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

/** Every event, in order, as `[name, event]`. */
function record(layer: Layer): Array<[string, Record<string, unknown>] | string> {
  const log: Array<[string, Record<string, unknown>] | string> = [];
  for (const name of NAMES) layer.on(name, (e: unknown) => log.push([name, e as Record<string, unknown>]));
  return log;
}
const names = (log: Array<[string, unknown] | string>) => log.map((x) => (typeof x === "string" ? x : x[0]));
const turn = (ms = 2) => new Promise((resolve) => setTimeout(resolve, ms));
const hang = (req: Request) =>
  new Promise<Response>((_, reject) => req.signal.addEventListener("abort", () => reject(req.signal.reason)));
const twoEndpoints = (extra: object = {}) =>
  fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "a", url: "https://a.example/v1" },
        { name: "b", url: "https://b.example/v1" },
      ],
    },
  ]);

describe("counts per call: retries, chains, hedges, redirects", () => {
  it("plain call with retries: retry ×2 then one request; one call counted, no failure", async () => {
    const clock = new TestClock();
    let n = 0;
    const layer = createResilience({
      clock,
      retry: FAST,
      fetch: async () => (++n < 3 ? new Response("x", { status: 503 }) : new Response("ok")),
    });
    const log = record(layer);
    const r = await clock.run(layer.fetch("https://a.example/x?key=SECRET"));
    expect(names(log)).toEqual(["retry", "retry", "request"]);
    expect(log[2]).toEqual([
      "request",
      expect.objectContaining({ url: "https://a.example/x", status: 200, attempts: 3, outcome: "response" }),
    ]);
    expect(getResilienceInfo(r)).toMatchObject({ attempts: 3, endpoint: "a.example", fromFallback: false });
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
    expect(layer.health().errorRate).toBe(0);
    expect(JSON.stringify(log)).not.toContain("SECRET");
  });

  it("chain: endpoint a retried to exhaustion, b serves: one fallback event, one call, each endpoint once", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503), "b.example": status(200) });
    const layer = createResilience({ clock, retry: FAST, fetch: t.fetch, fallback: twoEndpoints() });
    const log = record(layer);
    const r = await clock.run(layer.fetch("https://a.example/v1/x?key=SECRET"));
    expect(names(log)).toEqual(["retry", "retry", "fallback", "request"]);
    expect(log[2]?.[1]).toEqual({ chain: "c", from: "a", reason: "status 503", next: "b" });
    expect(log[3]?.[1]).toMatchObject({ key: "c", status: 200, attempts: 4 });
    expect(getResilienceInfo(r)).toMatchObject({ attempts: 4, endpoint: "b", fromFallback: true });
    const d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 1, failures: 0 });
    expect(d.recentErrors).toEqual([]);
    expect(d.fallback.c?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 1 } });
  });

  it("hedge: the loser gets no fallback event and no breaker failure, both counted, nothing after settling", async () => {
    const clock = new TestClock();
    const t = hostFetch({
      "a.example": (req) =>
        new Promise((resolve, reject) => {
          clock.setTimer(() => resolve(new Response("a")), 5_000);
          req.signal.addEventListener("abort", () => reject(req.signal.reason));
        }),
      "b.example": status(200),
    });
    const layer = createResilience({
      clock,
      retry: FAST,
      fetch: t.fetch,
      fallback: twoEndpoints({ hedge: { delay: 1_000 } }),
    });
    const log = record(layer);
    const r = await clock.run(layer.fetch("https://a.example/v1/x"));
    log.push("settled");
    await clock.advance(10_000);
    await turn(5);
    expect(names(log)).toEqual(["request", "settled"]);
    expect(getResilienceInfo(r)).toMatchObject({ attempts: 2, endpoint: "b", fromFallback: true, durationMs: 1_000 });
    const h = layer.health();
    expect(h.fallback.c?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 1 } });
    expect(h.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
  });

  it("a caller's abort during a hedge: neither endpoint nor the call is counted", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": hang, "b.example": hang });
    const layer = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: twoEndpoints({ hedge: { delay: 1_000 } }),
    });
    const log = record(layer);
    const controller = new AbortController();
    const call = layer.fetch("https://a.example/v1/x", { signal: controller.signal }).catch((e: Error) => e.name);
    await turn();
    await clock.advance(1_000);
    await turn();
    expect(t.log.length).toBe(2);
    controller.abort();
    expect(await call).toBe("AbortError");
    expect(log).toEqual([["request", expect.objectContaining({ outcome: "aborted", attempts: 2 })]]);
    expect(layer.health().fallback.c?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });

  it("a followed redirect whose hop fails, retried: one call, one attempt per hop chain, events per hop", async () => {
    const clock = new TestClock();
    const t = hostFetch({
      "a.example": () => new Response(null, { status: 302, headers: { location: "https://b.example/y?tok=SECRET#f" } }),
      "b.example": (_req, n) => (n === 1 ? new Response(null, { status: 503 }) : new Response("b")),
    });
    const layer = createResilience({ clock, retry: FAST, fetch: t.fetch });
    const log = record(layer);
    const r = await clock.run(layer.fetch("https://a.example/x?key=SECRET"));
    expect(names(log)).toEqual(["redirect", "retry", "redirect", "request"]);
    expect(log[0]?.[1]).toMatchObject({ from: "https://a.example/x", to: "https://b.example/y", status: 302 });
    expect(getResilienceInfo(r)?.attempts).toBe(2);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
    // docs/retry.md: "the final status counts against the first host's breaker".
    expect(Object.keys(layer.health().breakers)).toEqual(["a.example"]);
    expect(layer.health().breakers["a.example"]?.failureCount).toBe(1);
    expect(JSON.stringify(log)).not.toContain("SECRET");
  });

  it("21 redirects: 20 `redirect` events (one per redirect followed), one failed call", async () => {
    const clock = new TestClock();
    let n = 0;
    const layer = createResilience({
      clock,
      retry: false,
      fetch: async () => new Response(null, { status: 302, headers: { location: `/h${++n}?k=SECRET` } }),
    });
    const log = record(layer);
    await clock.run(layer.fetch("https://a.example/").catch(() => undefined));
    expect(n).toBe(21);
    expect(names(log).filter((x) => x === "redirect").length).toBe(20);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    expect(JSON.stringify([log, layer.debugInfo()])).not.toContain("SECRET");
  });
});

describe("what is counted: aborts, timeouts, refusals", () => {
  it("caller abort left out; `timeout.total` on a `Request` input counted, its URL cut", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": hang });
    const layer = createResilience({ clock, retry: FAST, fetch: t.fetch, timeout: { total: 1_000 } });
    const log = record(layer);
    const controller = new AbortController();
    const aborted = layer.fetch("https://a.example/x?key=SECRET", { signal: controller.signal }).catch((e: Error) => e);
    await turn(1);
    controller.abort();
    expect(((await aborted) as Error).name).toBe("AbortError");
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    const timedOut = await clock.run(
      layer.fetch(new Request("https://a.example/y?key=SECRET#f")).catch((e: Error) => e),
    );
    expect((timedOut as Error).name).toBe("TimeoutError");
    expect(log.map((x) => (x as [string, Record<string, unknown>])[1].outcome)).toEqual(["aborted", "error"]);
    const d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 1, failures: 1 });
    expect(d.errorRate).toBe(1);
    expect(d.recentErrors).toEqual([
      {
        time: 1_000,
        key: "a.example",
        url: "https://a.example/y",
        status: undefined,
        error: "TimeoutError",
        durationMs: 1_000,
      },
    ]);
    expect(JSON.stringify([log, d])).not.toContain("SECRET");
  });

  it("a call refused by an open breaker: `request` with attempts 0, counted as a failure, status unhealthy", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("x", { status: 503 }),
    });
    const log = record(layer);
    await layer.fetch("https://a.example/x");
    const refused = await layer.fetch("https://a.example/x").catch((e: Error) => e.name);
    expect(refused).toBe("CircuitOpenError");
    expect(names(log)).toEqual(["breaker", "request", "request"]);
    expect(log[2]?.[1]).toMatchObject({ error: "CircuitOpenError", attempts: 0, outcome: "error" });
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 2 });
    expect(layer.health().status).toBe("unhealthy");
  });

  it("bulkhead: a rejected call counted, a queued caller's abort not, `active`/`queued` exact", async () => {
    const clock = new TestClock();
    const pending: Array<(r: Response) => void> = [];
    const layer = createResilience({
      clock,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      fetch: () => new Promise((resolve) => pending.push(resolve)),
    });
    const first = layer.fetch("https://a.example/1");
    const controller = new AbortController();
    const queued = layer.fetch("https://a.example/2", { signal: controller.signal }).catch((e: Error) => e.name);
    const rejected = layer.fetch("https://a.example/3").catch((e: Error) => e.name);
    await turn();
    expect(layer.health().breakers["a.example"]).toMatchObject({ active: 1, queued: 1 });
    expect(await rejected).toBe("BulkheadRejectedError");
    controller.abort();
    expect(await queued).toBe("AbortError");
    expect(layer.health().breakers["a.example"]).toMatchObject({ active: 1, queued: 0 });
    pending[0]?.(new Response("ok"));
    await first;
    expect(layer.health().breakers["a.example"]).toMatchObject({ active: 0, queued: 0 });
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 1 });
  });
});

describe("window edges", () => {
  it("the last 50 failures; a call leaves the error rate 55 to 60 s after it", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: false, fetch: hostFetch({}).fetch });
    await clock.advance(4_999); // the last millisecond of the first 5-second step
    for (let i = 0; i < 51; i++) await layer.fetch(`https://a.example/${i}?k=SECRET`).catch(() => undefined);
    const d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 51, failures: 51 });
    expect(d.recentErrors.length).toBe(50);
    expect(d.recentErrors[0]?.url).toBe("https://a.example/1");
    expect(d.recentErrors[49]?.url).toBe("https://a.example/50");
    await clock.advance(55_000);
    expect(layer.health().errorRate).toBe(1); // 55 s after
    await clock.advance(1);
    expect(layer.health().errorRate).toBe(0); // 55.001 s after: gone
    expect(layer.debugInfo().totals.calls).toBe(51);
  });

  it("the degradation window holds at most the last 256 calls", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("ok"),
      degradation: degradation({}),
    });
    for (let i = 0; i < 257; i++) await layer.fetch("https://a.example/");
    expect(layer.debugInfo().degradation?.window.samples).toBe(256);
    expect(layer.debugInfo().totals.calls).toBe(257);
  });
});

describe("level, breaker and listener events", () => {
  it("degradation: event fields; a call's info names the level it started at", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status: 503 }),
      degradation: degradation({ minSamples: 3 }),
    });
    const log = record(layer);
    const levels: string[] = [];
    for (let i = 0; i < 4; i++) {
      levels.push(getResilienceInfo(await layer.fetch("https://a.example/x"))?.degradationLevel ?? "?");
      await clock.advance(1_000);
    }
    expect(levels).toEqual(["full", "full", "full", "high"]);
    expect(names(log)).toEqual(["request", "request", "degradation", "request", "request"]);
    expect(log[2]?.[1]).toEqual({ from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" });
    layer.degradation?.setLevel("minimal");
    layer.degradation?.restore();
    expect(log.slice(-2).map((x) => x[1])).toEqual([
      { from: "high", to: "minimal", percentage: 20, reason: "set manually" },
      { from: "minimal", to: "low", percentage: 40, reason: "restored" },
    ]);
    expect(layer.health().degradationLevel).toBe("low");
  });

  it("a Retry-After hold: one breaker event, `openUntil` equal in event and health; in flight after a trip: open → open", async () => {
    const clock = new TestClock();
    const pending: Array<(r: Response) => void> = [];
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: () => new Promise((resolve) => pending.push(resolve)),
    });
    const log = record(layer);
    const one = layer.fetch("https://a.example/1");
    const two = layer.fetch("https://a.example/2");
    await turn();
    pending[0]?.(new Response("x", { status: 503 }));
    await one;
    pending[1]?.(new Response("x", { status: 503, headers: { "retry-after": "3600" } }));
    await two;
    const breakers = log.filter((x) => x[0] === "breaker").map((x) => x[1]);
    expect(breakers).toMatchObject([
      { from: "closed", to: "open", gen: 1, openUntil: 30_000 },
      { from: "open", to: "open", gen: 2, openUntil: 3_600_000 },
    ]);
    expect(layer.health().breakers["a.example"]).toMatchObject({ state: "open", gen: 2, openUntil: 3_600_000 });
  });

  it("listeners that throw or reject are reported, the others run, the call resolves; a typo lists the eight", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: FAST, fetch: async () => new Response("x", { status: 503 }) });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const report = (globalThis as { reportError?: unknown }).reportError;
    const seen: string[] = [];
    try {
      layer.on("retry", () => {
        throw new Error("boom");
      });
      layer.on("retry", () => {
        seen.push("second");
      });
      layer.on("request", async () => {
        throw new Error("async boom");
      });
      const r = await clock.run(layer.fetch("https://a.example/"));
      await turn();
      expect(r.status).toBe(503);
      expect(seen).toEqual(["second", "second"]);
      if (typeof report !== "function") {
        expect(errors.mock.calls.map((c) => String(c[1]))).toEqual(["Error: boom", "Error: boom", "Error: async boom"]);
      }
    } finally {
      errors.mockRestore();
    }
    expect(() => layer.on("requests" as "request", () => {})).toThrow(
      /retry, request, breaker, fallback, degradation, replay, redirect, store/,
    );
  });

  it("resilientProxy's health endpoint answers `health()` as JSON: the open breaker, no query", async () => {
    const t = hostFetch({ "up.example": status(503) });
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://up.example/v1" }],
      resilience: { fetch: t.fetch, retry: false, breaker: { failureThreshold: 1 } },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} } as unknown as Parameters<typeof proxy.fetch>[2];
    const answer = await proxy.fetch(new Request("https://w.example/v1/x?key=SECRET"), {}, ctx);
    expect(answer.status).toBe(503);
    const health = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    const text = await health.text();
    expect(text).not.toContain("SECRET");
    expect(JSON.parse(text)).toMatchObject({
      status: "unhealthy",
      errorRate: 1,
      degradationLevel: "full",
      breakers: { "up.example": { state: "open", lastError: "status 503", failureCount: 1 } },
      fallback: {},
    });
  });
});
