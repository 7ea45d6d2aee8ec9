/**
 * Outside-in attack on hedged fallback chains: a matrix of hedge delay (0, small, longer than the first answer),
 * 2 or 3 endpoints, how the first (or the hedge) answers (200, 503, 429 with Retry-After, 500, a reset, a hang
 * until aborted, a body that stalls after headers, an answer `validate` turns down or stops reading), method (GET,
 * POST with and without an Idempotency-Key, `retry.idempotencyKey`, a stream body, a `transform` that makes a
 * keyless POST), the caller's abort (before the hedge fires, after, while `validate` reads the winner, during the
 * winner's body read), `timeout.attempt` and `timeout.total`, open and half-open breakers, an active degradation
 * level, adaptive order.
 * Docs: docs/fallback.md "`hedge: { delay }`, for idempotent requests or requests with an `Idempotency-Key` only
 * … when the running endpoint has given no acceptable answer after `delay` (no response headers yet, or a body
 * `validate` is still reading), the next endpoint starts too (`delay` counted from the latest start …); an
 * endpoint that fails while another still runs is left for the next one at once, as without a hedge; the first
 * acceptable answer wins and the others are aborted (their upstreams see the connection closed); all are
 * counted", "such an endpoint is held back, not counted, and tried once nothing else runs", "An endpoint is left
 * for the next one on a network error, a timeout, a 5xx, 429 or 408, or a 2xx whose JSON fails `validate`",
 * "a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not processed",
 * "A body sent once (a stream …) goes to one endpoint only", "`validate` reads at most `maxReplayBytes` of the
 * body, within `timeout.attempt` … a body that stalls … fails validation", "When every endpoint failed, the call
 * resolves with the last response any endpoint gave", "An abort, or `timeout.total` passing, rejects the call
 * with the caller's reason or the `TimeoutError` even when an earlier endpoint's answer was turned down",
 * statistics "a run its caller aborted, or that `timeout.total` ended, is not counted, nor the endpoint it was
 * waiting on; under `timeout.attempt` an endpoint that hangs counts as failed", "`order: \"adaptive\"` ranks
 * endpoints by a decaying recent success rate minus a latency penalty", "an endpoint skipped for its open
 * breaker"; docs/health-and-events.md (`fallback` "`next`: a hedge already running that the call carries on
 * with, else the endpoint next in line, which, when its breaker is open, is passed over in turn with an event of
 * its own", `request` "once per call"); docs/breakers.md ("a caller's abort is neither", "A probe aborted by …
 * a hedge that won frees its slot at once"); docs/degradation.md ("A call that goes down a fallback chain is
 * rewritten once … every endpoint gets that request", level header cross-origin only when named);
 * src/http/resilience-info.ts JSDoc (`attempts` "Attempts in all, across endpoints: each request the layer
 * started (a hedge's too …)").
 * How: `createResilience`, `getResilienceInfo`, `health()`, `debugInfo()` (root), `fallback` (./fallback),
 * `degradation` (./degradation), `recordEvents` (./testing); three node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) on the real clock with short delays (a `TestClock`'s `run` jumps to the hedge
 * timer before a real server answers, as docs/testing.md warns), each exchange's arrival time and connection close
 * observed on the server.
 * Paths: hedged chain (GET, keyed POST, keyless POST, stream body, transform), validate, breakers (open,
 * half-open probe), degradation rewrite, adaptive order, plain call to open a host outside the chain.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a hedge that lost counts in the adaptive ranking as a call that did not serve):
 * 1. docs/fallback.md "`order: \"adaptive\"` ranks endpoints by a decaying recent success rate minus a latency
 *    penalty" with hedging "all are counted" (the doc's own example pairs `order: "adaptive"` with
 *    `hedge: { delay: 2_000 }`). Observed: an endpoint that hangs and loses every call to the hedge keeps
 *    first place for ever: after 5 calls `statistics()` says a `{ calls: 5, successes: 0, successRate: 0 }`,
 *    b `{ calls: 5, successes: 5 }`, yet `ordered()` stays `["a", "b"]`, so every call waits the full `delay`
 *    on a dead primary. Mechanism: a losing hedge goes to `EndpointStats.lost()`
 *    (src/policies/endpoint-stats.ts:46), which bumps `calls` and the latency total but leaves the recent
 *    success rate and recent latency that `adaptiveOrder` ranks by untouched (called from `countLosers`,
 *    src/policies/fallback-chain.ts), so the loser's score stays 1 and ties go to configured order.
 *
 * Held (plain `it`):
 * - Delay longer than the first answer: one request, attempts 1, no fallback event, 256 KiB body whole.
 * - Delay 0, three endpoints: all three start at once; the first answer wins; the two losers see the connection
 *   closed; attempts 3 (info and `request` event); losers counted as calls without success; their breakers,
 *   `health().status`, `debugInfo()` totals and recent errors untouched; no fallback event.
 * - Small delay, three endpoints: each hedge `delay` after the latest start; losers' `meanLatencyMs` is the time
 *   they ran, the winner's its own; the first answering after the hedge started still wins and the hedge counts lost.
 * - GET: 503 / 500 / reset / `validate` rejection / `timeout.attempt` before the delay move on at once with a
 *   fallback event; a 503 of the first while a hedge runs starts the third at once, the event's `next` the running
 *   hedge; a hedge's 503 carries on with the first (`next: "a"`); an attempt timeout beside a running hedge
 *   counts failed; a 429 with Retry-After (on the first or on the hedge) waits in its own loop and the wait is
 *   dropped when the other wins; every endpoint failing gives the last answer or `FallbackExhaustedError` with
 *   each `TimeoutError` (phase attempt, attempts 1).
 * - `validate`: a body that stalls after headers lets the hedge fire and win, the stalled one closed and no
 *   failure of its host; without `validate`, headers win and the caller can abort the stalled body; a stalled
 *   body under `timeout.attempt` fails validation; an answer `validate` stopped reading (too large) returned whole.
 * - Methods: keyed POST hedged with the same body and key; `retry.idempotencyKey` gives the hedge the same key;
 *   a keyless POST is never hedged, stops at a 500 (that answer) or a reset (`FallbackExhaustedError` "stopped
 *   after"), moves on after a 429, resolves with its `validate`-rejected answer; a stream body goes to one
 *   endpoint; a `transform` making the hedge a keyless POST holds it back until the first failed, counted once.
 * - Caller's abort before the hedge, after it, while `validate` reads the winner: rejects with the reason, every
 *   upstream sees the close, nothing counted (stats, breakers, error rate), `request` outcome `aborted`; during
 *   the winner's body read: the read rejects with the reason and the winner's connection closes.
 *   `timeout.total` while hedged: `TimeoutError`, the hedge not counted, the earlier 503 not returned.
 * - Breakers: an open first endpoint is passed over at once with a `circuit open` event; an open hedge endpoint is
 *   passed over when the hedge fires and the third starts; a half-open probe that loses to the hedge frees its slot
 *   and does not re-open the breaker.
 * - Degradation: the first and the hedge get the same rewritten body, the level header stays home, info names the level.
 * - Adaptive: an endpoint that failed ranks second and is started as the hedge.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isFallbackExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { recordEvents } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const D = 60; // a small hedge delay, ms of real time: real servers need the real clock
const once = { maxAttempts: 1 } as const;
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

const ok = (text: string) => (h: Hit) => {
  h.res.setHeader("content-type", "application/json");
  h.res.end(JSON.stringify({ ok: true, from: text }));
};
const statusOf =
  (code: number, headers: Record<string, string> = {}) =>
  (h: Hit) => {
    h.res.writeHead(code, headers);
    h.res.end(`status ${code}`);
  };
const hang = () => {};
const reset = (h: Hit) => h.res.socket?.destroy();
const stallAfterHeaders = (h: Hit) => {
  h.res.writeHead(200, { "content-type": "application/json" });
  h.res.write('{"ok":');
};
const later = (ms: number, then: (h: Hit) => void) => (h: Hit) => {
  const t = setTimeout(() => then(h), ms);
  h.res.on("close", () => clearTimeout(t));
};

const Ok = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (v: unknown) =>
      typeof v === "object" && v !== null && (v as { ok?: unknown }).ok === true
        ? { value: v }
        : { issues: [{ message: "not ok" }] },
  },
};

type Opts = {
  delay?: number;
  n?: 2 | 3;
  validate?: boolean;
  order?: "fixed" | "adaptive";
  extra?: ResilienceOptions;
};

function layer({ delay = D, n = 2, validate = false, order = "fixed", extra = {} }: Opts = {}) {
  const servers = [a, b, c].slice(0, n);
  const names = ["a", "b", "c"].slice(0, n);
  const resilience = createResilience({
    retry: { ...fast, ...once },
    ...extra,
    fallback: fallback([
      {
        name: "gen",
        order,
        hedge: { delay },
        endpoints: servers.map((s, i) => ({
          name: names[i] as string,
          url: `${s.base}/v1`,
          ...(validate ? { validate: Ok } : {}),
        })),
      },
    ]),
  });
  const rec = recordEvents(resilience);
  const stats = () => resilience.health().fallback.gen;
  const breaker = (s: { host: string }) => resilience.health().breakers[s.host];
  return { resilience, rec, stats, breaker, url: `${a.base}/v1/jobs` };
}

/** Settles a little later: lets late events and closes arrive. */
const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

/** Whether the exchange's connection closed within `ms` (a client that hung up, or gave up on an answer). */
async function closedWithin(hit: Hit, ms = 1000): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    hit.closed.then(() => true),
    new Promise<boolean>((res) => {
      timer = setTimeout(() => res(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return r;
}

/** The server handler, with the time each request arrived. */
function timed(server: typeof a, handler: (h: Hit) => void): number[] {
  const times: number[] = [];
  server.on((h) => {
    times.push(performance.now());
    handler(h);
  });
  return times;
}

const big = "x".repeat(256 * 1024);

describe("hedge delay against the first answer", () => {
  it("a delay longer than the first answer: one request, no hedge, no fallback event, body whole", async () => {
    a.on((h) => {
      h.res.setHeader("content-type", "text/plain");
      h.res.end(big);
    });
    const { resilience, rec, stats } = layer({ delay: 2_000 });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.text()).toBe(big);
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(a.hits.length).toBe(1);
    expect(b.hits.length).toBe(0);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 1, fromFallback: false });
    expect(rec.of("fallback")).toEqual([]);
    expect(rec.of("request")).toMatchObject([{ status: 200, attempts: 1, outcome: "response" }]);
    const s = stats();
    expect(s?.fallbacks.a).toMatchObject({ calls: 1, successes: 1 });
    expect(s?.fallbacks.b).toMatchObject({ calls: 0, successes: 0 });
    expect(s?.lastSuccessfulFallback).toBeNull();
    expect(s?.overallSuccessRate).toBe(1);
  });

  it("delay 0 with three endpoints: all three start at once, the first answer wins, the others see the close", async () => {
    a.on(hang);
    b.on(later(40, ok("b")));
    c.on(hang);
    const { resilience, rec, stats, breaker } = layer({ delay: 0, n: 3 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 1]);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(c.hits[0] as Hit)).toBe(true);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 3, fromFallback: true });
    expect(rec.of("request")).toMatchObject([{ status: 200, attempts: 3, outcome: "response" }]);
    // No endpoint failed: the losers were stopped, not passed over.
    expect(rec.of("fallback")).toEqual([]);
    const s = stats();
    expect(s?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(s?.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    expect(s?.fallbacks.c).toMatchObject({ calls: 1, successes: 0 });
    expect(s?.lastSuccessfulFallback).toBe("b");
    expect(s?.overallSuccessRate).toBe(1);
    await settle();
    // A loser aborted by the layer is no failure of its host.
    expect(breaker(a)).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0, lastError: null });
    expect(breaker(c)).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    expect(resilience.health().status).toBe("healthy");
    expect(resilience.debugInfo()).toMatchObject({ totals: { calls: 1, failures: 0 }, recentErrors: [] });
  });

  it("a small delay with three endpoints: each hedge `delay` after the latest start, winner's body whole", async () => {
    const ta = timed(a, hang);
    const tb = timed(b, hang);
    const tc = timed(c, (h) => {
      h.res.setHeader("content-type", "text/plain");
      h.res.end(big);
    });
    const { resilience, stats } = layer({ delay: 100, n: 3 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.text()).toBe(big);
    const [t1, t2, t3] = [ta[0] as number, tb[0] as number, tc[0] as number];
    // Lower bounds with room for a connection set up late: a hedge never starts before its delay.
    expect(t2 - t1).toBeGreaterThanOrEqual(60);
    expect(t3 - t2).toBeGreaterThanOrEqual(60);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", attempts: 3, fromFallback: true });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    const s = stats();
    // A losing hedge counts for the time it ran: a ran about 200 ms, b about 100, c answered at once.
    expect(s?.fallbacks.a?.meanLatencyMs).toBeGreaterThanOrEqual(180);
    expect(s?.fallbacks.b?.meanLatencyMs).toBeGreaterThanOrEqual(85);
    expect(s?.fallbacks.b?.meanLatencyMs).toBeLessThan(180);
    expect(s?.fallbacks.c?.meanLatencyMs).toBeLessThan(80);
  });

  it("the first endpoint answering after the hedge started still wins; the hedge is closed and counted as lost", async () => {
    a.on(later(100, ok("a")));
    b.on(hang);
    const { resilience, rec, stats, breaker } = layer({ delay: 30 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "a" });
    expect(b.hits.length).toBe(1);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 2, fromFallback: false });
    expect(rec.of("fallback")).toEqual([]);
    expect(stats()?.fallbacks.b).toMatchObject({ calls: 1, successes: 0 });
    expect(stats()?.lastSuccessfulFallback).toBeNull();
    await settle();
    expect(breaker(b)).toMatchObject({ failureCount: 0, consecutiveFailures: 0 });
  });
});

describe("how the first endpoint fails, GET", () => {
  it("503 before the delay: the next starts at once, fallback event names it", async () => {
    a.on(statusOf(503));
    b.on(ok("b"));
    const { resilience, rec, stats, breaker } = layer({ delay: 2_000 });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toMatchObject([{ chain: "gen", from: "a", reason: "status 503", next: "b" }]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2, fromFallback: true });
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
  });

  it("a 503 of the first while a hedge runs starts the third at once, the event carrying on with the running hedge", async () => {
    const ta = timed(a, later(180, statusOf(503)));
    const tb = timed(b, hang);
    const tc = timed(c, ok("c"));
    const { resilience, rec, stats } = layer({ delay: 150, n: 3 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "c" });
    const [t1, t2, t3] = [ta[0] as number, tb[0] as number, tc[0] as number];
    expect(t2 - t1).toBeGreaterThanOrEqual(100);
    // a failed at ~180: c starts then, not `delay` after b's start (~300).
    expect(t3 - t1).toBeLessThan(260);
    expect(rec.of("fallback")).toMatchObject([{ from: "a", reason: "status 503", next: "b" }]);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({
      a: { calls: 1, successes: 0 },
      b: { calls: 1, successes: 0 },
      c: { calls: 1, successes: 1 },
    });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", attempts: 3 });
  });

  it("429 with Retry-After: the endpoint's retry wait is where the hedge fires, the wait is dropped when the hedge wins", async () => {
    a.on(statusOf(429, { "retry-after": "1" }));
    b.on(ok("b"));
    const { resilience, rec, stats, breaker } = layer({ delay: D, extra: { retry: { ...fast, maxAttempts: 3 } } });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(700);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    await settle(50);
    expect(a.hits.length).toBe(1);
    expect(rec.of("retry")).toMatchObject([{ key: a.host, attempt: 1, retryAfter: true }]);
    // The hedge that carries on: no failure of a's yet, so no fallback event.
    expect(rec.of("fallback")).toEqual([]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2 });
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    // The 429 itself counted against a (an answer of the host), once.
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
  });

  it("500: left for the next endpoint (GET may be sent twice)", async () => {
    a.on(statusOf(500));
    b.on(ok("b"));
    const { resilience, rec } = layer({ delay: 2_000 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toMatchObject([{ from: "a", reason: "status 500", next: "b" }]);
  });

  it("a connection reset: left for the next at once, a's breaker counts it", async () => {
    a.on(reset);
    b.on(ok("b"));
    const { resilience, rec, breaker, stats } = layer({ delay: 2_000 });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toMatchObject([{ from: "a", next: "b" }]);
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
  });

  it("every endpoint 503: resolves with the last answer given, named by it", async () => {
    a.on(statusOf(503));
    b.on(later(20, statusOf(502)));
    const { resilience, stats } = layer({ delay: 5 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(res.status).toBe(502);
    expect(await res.text()).toBe("status 502");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2, fromFallback: true });
    expect(stats()?.overallSuccessRate).toBe(0);
  });

  it("every endpoint hangs under timeout.attempt: FallbackExhaustedError with each endpoint's TimeoutError", async () => {
    a.on(hang);
    b.on(hang);
    const { resilience, stats, breaker, rec } = layer({ delay: 20, extra: { timeout: { attempt: 80 } } });
    const error = await rejection(resilience.fetch(`${a.base}/v1/jobs`));
    expect(isFallbackExhaustedError(error)).toBe(true);
    const errors = (error as { errors: Record<string, unknown> }).errors;
    expect(isTimeoutError(errors.a)).toBe(true);
    expect(isTimeoutError(errors.b)).toBe(true);
    expect(errors.a).toMatchObject({ phase: "attempt", attempts: 1 });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    // "under timeout.attempt an endpoint that hangs counts as failed"
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 0 } });
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
    expect(breaker(b)).toMatchObject({ failureCount: 1 });
    expect(rec.of("request")).toMatchObject([{ error: "FallbackExhaustedError", attempts: 2, outcome: "error" }]);
  });

  it("timeout.attempt shorter than the delay: the hanging first counts failed and the next starts at its timeout", async () => {
    const ta = timed(a, hang);
    const tb = timed(b, ok("b"));
    const { resilience, stats, breaker, rec } = layer({ delay: 2_000, extra: { timeout: { attempt: 60 } } });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect((tb[0] as number) - (ta[0] as number)).toBeLessThan(500);
    expect(rec.of("fallback")).toMatchObject([{ from: "a", next: "b" }]);
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
  });
});

describe("validate and the hedge", () => {
  it("a 2xx validate rejects: left for the next at once, the event says why", async () => {
    a.on((h) => {
      h.res.setHeader("content-type", "application/json");
      h.res.end('{"ok":false}');
    });
    b.on(ok("b"));
    const { resilience, rec, stats, breaker } = layer({ delay: 2_000, validate: true });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toHaveLength(1);
    expect(rec.of("fallback")[0]).toMatchObject({ from: "a", next: "b" });
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2 });
    // The 2xx is the host's success: validate is the chain's judgement.
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
  });

  it("a body that stalls after headers while validate reads it: the hedge fires, wins, the stalled one is closed", async () => {
    a.on(stallAfterHeaders);
    b.on(ok("b"));
    const { resilience, stats, breaker, rec } = layer({ delay: D, validate: true });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(b.hits.length).toBe(1);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2, fromFallback: true });
    expect(rec.of("fallback")).toEqual([]);
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    await settle();
    expect(breaker(a)).toMatchObject({ failureCount: 0, consecutiveFailures: 0 });
  });

  it("without validate, headers are the acceptable answer: no hedge, the caller reads the stalled body and may abort it", async () => {
    a.on(stallAfterHeaders);
    const { resilience, stats } = layer({ delay: D });
    const controller = new AbortController();
    const res = await resilience.fetch(`${a.base}/v1/jobs`, { signal: controller.signal });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 1 });
    await settle(D * 2);
    expect(b.hits.length).toBe(0);
    const reading = res.text();
    const reason = new Error("caller gave up on the body");
    controller.abort(reason);
    expect(await rejection(reading)).toBe(reason);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 1 });
  });

  it("a validate body that stalls under timeout.attempt fails validation and the chain moves on", async () => {
    a.on(stallAfterHeaders);
    b.on(ok("b"));
    const { resilience, rec, stats } = layer({ delay: 2_000, validate: true, extra: { timeout: { attempt: 60 } } });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toMatchObject([{ from: "a", next: "b" }]);
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
  });
});

describe("methods", () => {
  const post = (headers: Record<string, string> = {}) => ({
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ prompt: "cat" }),
  });

  it("POST with an Idempotency-Key is hedged: both endpoints get the same body and key, the loser is closed", async () => {
    a.on(hang);
    b.on(later(10, ok("b")));
    const { resilience, breaker } = layer({ delay: D });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post({ "idempotency-key": "k-1" }));
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(a.hits[0]?.body).toBe('{"prompt":"cat"}');
    expect(b.hits[0]?.body).toBe('{"prompt":"cat"}');
    expect(a.hits[0]?.headers["idempotency-key"]).toBe("k-1");
    expect(b.hits[0]?.headers["idempotency-key"]).toBe("k-1");
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    await settle();
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
  });

  it("retry.idempotencyKey gives a keyless POST one key, and the hedge carries the same", async () => {
    a.on(hang);
    b.on(ok("b"));
    const { resilience } = layer({ delay: D, extra: { retry: { ...fast, ...once, idempotencyKey: true } } });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post());
    expect(res.status).toBe(200);
    const key = a.hits[0]?.headers["idempotency-key"];
    expect(typeof key).toBe("string");
    expect(b.hits[0]?.headers["idempotency-key"]).toBe(key);
  });

  it("a keyless POST is never hedged; the caller's abort then closes it, nothing counted", async () => {
    a.on(hang);
    const { resilience, stats, breaker, rec } = layer({ delay: 20 });
    const controller = new AbortController();
    const call = resilience.fetch(`${a.base}/v1/jobs`, { ...post(), signal: controller.signal });
    await a.nth(1);
    await settle(120);
    expect(b.hits.length).toBe(0);
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 0 });
    expect(stats()?.overallSuccessRate).toBe(0);
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
    expect(rec.of("request")).toMatchObject([{ outcome: "aborted" }]);
  });

  it("a keyless POST that gets a 500: the chain ends there with that answer, the next is never sent it", async () => {
    a.on(statusOf(500));
    b.on(ok("b"));
    const { resilience } = layer({ delay: 0 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post());
    expect(res.status).toBe(500);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 1 });
    expect(b.hits.length).toBe(0);
  });

  it("a keyless POST reset: FallbackExhaustedError that stopped after a, b never sent it", async () => {
    a.on(reset);
    b.on(ok("b"));
    const { resilience } = layer({ delay: 0 });
    const error = await rejection(resilience.fetch(`${a.base}/v1/jobs`, post()));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).toContain('stopped after "a"');
    expect(b.hits.length).toBe(0);
  });

  it("a keyless POST that gets a 503 or 429 moves on (surely not processed), one at a time", async () => {
    a.on(statusOf(429));
    b.on(ok("b"));
    const { resilience } = layer({ delay: 0 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post());
    expect(await res.json()).toEqual({ ok: true, from: "b" });
  });

  it("a keyed POST whose body is a stream goes to one endpoint only: no hedge, no next", async () => {
    a.on(later(150, statusOf(503)));
    b.on(ok("b"));
    const { resilience } = layer({ delay: 20 });
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        ctl.enqueue(new TextEncoder().encode('{"prompt":"cat"}'));
        ctl.close();
      },
    });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, {
      method: "POST",
      headers: { "idempotency-key": "k-2" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(503);
    expect(a.hits[0]?.body).toBe('{"prompt":"cat"}');
    expect(b.hits.length).toBe(0);
  });

  it("a keyed POST that validate rejects moves on (hedged)", async () => {
    a.on((h) => {
      h.res.setHeader("content-type", "application/json");
      h.res.end('{"ok":false}');
    });
    b.on(ok("b"));
    const { resilience } = layer({ delay: D, validate: true });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post({ "idempotency-key": "k-3" }));
    expect(await res.json()).toEqual({ ok: true, from: "b" });
  });

  it("a keyless POST that validate rejects resolves with that answer, named a", async () => {
    a.on((h) => {
      h.res.setHeader("content-type", "application/json");
      h.res.end('{"ok":false}');
    });
    b.on(ok("b"));
    const { resilience } = layer({ delay: 0, validate: true });
    const res = await resilience.fetch(`${a.base}/v1/jobs`, post());
    expect(await res.json()).toEqual({ ok: false });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a" });
    expect(b.hits.length).toBe(0);
  });
});

describe("the caller's abort and timeout.total", () => {
  it("before the hedge fires: rejects with the reason, a closed, b never sent, nothing counted", async () => {
    a.on(hang);
    b.on(ok("b"));
    const { resilience, stats, breaker, rec } = layer({ delay: 500 });
    const controller = new AbortController();
    const call = resilience.fetch(`${a.base}/v1/jobs`, { signal: controller.signal });
    await a.nth(1);
    const reason = new Error("before hedge");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    await settle(D);
    expect(b.hits.length).toBe(0);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
    expect(rec.of("request")).toMatchObject([{ outcome: "aborted" }]);
    expect(rec.of("fallback")).toEqual([]);
    expect(resilience.health().errorRate).toBe(0);
  });

  it("after the hedge fired: both closed, nothing counted, no fallback event", async () => {
    a.on(hang);
    b.on(hang);
    const { resilience, stats, breaker, rec } = layer({ delay: 20 });
    const controller = new AbortController();
    const call = resilience.fetch(`${a.base}/v1/jobs`, { signal: controller.signal });
    await b.nth(1);
    const reason = new Error("after hedge");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect(stats()?.overallSuccessRate).toBe(0);
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
    expect(breaker(b)).toMatchObject({ failureCount: 0 });
    expect(rec.of("fallback")).toEqual([]);
    expect(rec.of("request")).toMatchObject([{ outcome: "aborted" }]);
  });

  it("during the hedge winner's body read: the read rejects with the reason, the winner's connection closes", async () => {
    a.on(hang);
    b.on((h) => {
      h.res.writeHead(200, { "content-type": "text/plain" });
      h.res.write("part");
    });
    const { resilience, stats, breaker } = layer({ delay: 20 });
    const controller = new AbortController();
    const res = await resilience.fetch(`${a.base}/v1/jobs`, { signal: controller.signal });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2 });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    const reading = res.text();
    const reason = new Error("during body");
    controller.abort(reason);
    expect(await rejection(reading)).toBe(reason);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    // The run was won when the headers came: counted so.
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 1 } });
    await settle();
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
  });

  it("timeout.total while the hedge runs: TimeoutError of phase total, both closed, nothing counted", async () => {
    a.on(hang);
    b.on(hang);
    const { resilience, stats, breaker } = layer({ delay: 20, extra: { timeout: { total: 120 } } });
    const error = await rejection(resilience.fetch(`${a.base}/v1/jobs`));
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: "total" });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
    expect(breaker(b)).toMatchObject({ failureCount: 0 });
  });
});

describe("breakers and the hedge", () => {
  it("the first endpoint's breaker open: passed over at once (no delay), event `circuit open`, no request to it", async () => {
    a.on(statusOf(503));
    b.on(ok("b"));
    const { resilience, rec, stats } = layer({
      delay: 2_000,
      extra: { breaker: { failureThreshold: 1, timeout: 60_000 } },
    });
    await (await resilience.fetch(`${a.base}/v1/jobs`)).text(); // a fails once: open
    expect(resilience.health().breakers[a.host]).toMatchObject({ state: "open" });
    a.reset();
    rec.events.length = 0;
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(a.hits.length).toBe(0);
    expect(rec.of("fallback")).toMatchObject([{ from: "a", reason: "circuit open", next: "b" }]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 1, fromFallback: true });
    // A pass-over is no call of the endpoint.
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
  });

  it("the hedge's endpoint open: passed over when the hedge fires, with its own event, the third starts in its place", async () => {
    b.on(statusOf(503));
    const { resilience, rec, stats } = layer({
      n: 3,
      delay: 50,
      extra: { breaker: { failureThreshold: 1, timeout: 60_000 } },
    });
    // b's host opened by a plain call outside the chain: breakers are per host.
    await (await resilience.fetch(`${b.base}/elsewhere`)).text();
    expect(resilience.health().breakers[b.host]).toMatchObject({ state: "open" });
    b.reset();
    rec.events.length = 0;
    const ta = timed(a, hang);
    const tc = timed(c, ok("c"));
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "c" });
    expect(b.hits.length).toBe(0);
    expect((tc[0] as number) - (ta[0] as number)).toBeGreaterThanOrEqual(40);
    expect(rec.of("fallback")).toMatchObject([{ from: "b", reason: "circuit open", next: "c" }]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", attempts: 2, fromFallback: true });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({
      a: { calls: 1, successes: 0 },
      b: { calls: 0 },
      c: { calls: 1, successes: 1 },
    });
  });

  it("a half-open probe that loses to the hedge frees its slot and does not re-open the breaker", async () => {
    a.on(statusOf(503));
    b.on(ok("b"));
    const { resilience, breaker, rec } = layer({
      delay: 30,
      extra: { breaker: { failureThreshold: 1, timeout: 50, halfOpenMaxCalls: 1, successThreshold: 1 } },
    });
    await (await resilience.fetch(`${a.base}/v1/jobs`)).text();
    expect(breaker(a)).toMatchObject({ state: "open" });
    await settle(80);
    a.reset();
    a.on(hang);
    rec.events.length = 0;
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(a.hits.length).toBe(1); // the probe went
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    await settle();
    expect(breaker(a)?.state).toBe("half_open");
    expect(rec.of("breaker").filter((e) => e.key === a.host)).toMatchObject([{ from: "open", to: "half_open" }]);
    // The slot is free: the next call probes a again instead of passing it over.
    a.on(ok("a"));
    const again = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await again.json()).toEqual({ ok: true, from: "a" });
    expect(a.hits.length).toBe(2);
    expect(breaker(a)?.state).toBe("closed");
  });
});

describe("degradation and adaptive order under a hedge", () => {
  it("an active level rewrites the request once: the first endpoint and the hedge get the same rewritten body", async () => {
    a.on(hang);
    b.on(ok("b"));
    const resilience = createResilience({
      retry: { ...fast, ...once },
      degradation: degradation({
        rules: [{ match: `${a.base}/v1`, params: { steps: "steps" } }],
        levelHeader: "x-degradation-level",
      }),
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 30 },
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    resilience.degradation?.setLevel("medium", "test");
    const res = await resilience.fetch(`${a.base}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k-d" },
      body: JSON.stringify({ steps: 50, prompt: "cat" }),
    });
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(JSON.parse(a.hits[0]?.body ?? "")).toEqual({ steps: 30, prompt: "cat" });
    expect(JSON.parse(b.hits[0]?.body ?? "")).toEqual({ steps: 30, prompt: "cat" });
    expect(a.hits[0]?.headers["x-degradation-level"]).toBe("medium");
    // Another origin: the level header goes only when named in crossOriginHeaders.
    expect(b.hits[0]?.headers["x-degradation-level"]).toBeUndefined();
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium", attempts: 2 });
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
  });

  it("adaptive order: an endpoint that failed ranks after the one that served; the run starts there, the other as its hedge", async () => {
    a.on(statusOf(503));
    b.on(ok("b"));
    const { resilience } = layer({ delay: D, order: "adaptive" });
    for (let i = 0; i < 3; i++) await (await resilience.fetch(`${a.base}/v1/jobs`)).text();
    expect(resilience.fallback?.chain("gen").ordered()).toEqual(["b", "a"]);
    a.reset();
    b.reset();
    const tb = timed(b, hang);
    const ta = timed(a, ok("a"));
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "a" });
    expect((ta[0] as number) - (tb[0] as number)).toBeGreaterThanOrEqual(D / 2);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 2 });
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
  });

  it("adaptive order: an endpoint that answered none of its calls (each lost to the hedge) is still ranked first", async () => {
    // docs/fallback.md: adaptive "ranks endpoints by a decaying recent success rate minus a latency penalty";
    // hedging: "all are counted". The example pairs `order: "adaptive"` with `hedge: { delay: 2_000 }`.
    a.on(hang);
    b.on(ok("b"));
    const { resilience, stats } = layer({ delay: 20, order: "adaptive" });
    await (await resilience.fetch(`${a.base}/v1/jobs`)).text();
    // The statistics say a answered none of its calls, b all of its own.
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0, successRate: 0 });
    // Documented: ranked by recent success, b comes first. Observed: ["a", "b"] for ever, each call paying `delay`.
    expect(resilience.fallback?.chain("gen").ordered()).toEqual(["b", "a"]);
    // So the next calls go to b first, which answers before the hedge's delay: a is not called again.
    for (let i = 0; i < 4; i++) await (await resilience.fetch(`${a.base}/v1/jobs`)).text();
    expect(stats()?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats()?.fallbacks.b).toMatchObject({ calls: 5, successes: 5, successRate: 1 });
    expect(a.hits).toHaveLength(1);
  });
});

describe("a hedge that fails while the first still runs", () => {
  it("two endpoints: the hedge's 503 leaves the call with the first, the event names it as carried on", async () => {
    a.on(later(120, ok("a")));
    b.on(statusOf(503));
    const { resilience, rec, stats } = layer({ delay: 20 });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "a" });
    expect(rec.of("fallback")).toMatchObject([{ from: "b", reason: "status 503", next: "a" }]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 2, fromFallback: false });
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 1 }, b: { calls: 1, successes: 0 } });
    expect(stats()?.lastSuccessfulFallback).toBeNull();
  });

  it("the first's attempt timeout while the hedge runs: counted failed, the event carries on with the hedge", async () => {
    a.on(hang);
    b.on(later(100, ok("b"))); // starts at ~100, answers at ~200; a times out at ~150, b would at ~250
    const { resilience, rec, stats, breaker } = layer({ delay: 100, extra: { timeout: { attempt: 150 } } });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(rec.of("fallback")).toMatchObject([{ from: "a", next: "b" }]);
    expect(rec.of("fallback")[0]?.reason).toMatch(/TimeoutError/);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 1 } });
    expect(breaker(a)).toMatchObject({ failureCount: 1 });
    expect(breaker(b)).toMatchObject({ failureCount: 0 });
  });
});

describe("a hedge the endpoint's transform makes unsafe, and a hedge that must wait", () => {
  it("a transform that makes a keyless POST of the hedge: held back while a runs, sent once a failed, counted once", async () => {
    const ta = timed(a, later(150, statusOf(503)));
    const tb = timed(b, ok("b"));
    const resilience = createResilience({
      retry: { ...fast, ...once },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 20 },
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            {
              name: "b",
              url: `${b.base}/v1`,
              transform: (req) => ({ ...req, method: "POST", body: { wrapped: true } }),
            },
          ],
        },
      ]),
    });
    const rec = recordEvents(resilience);
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(b.hits.length).toBe(1);
    expect(b.hits[0]?.method).toBe("POST");
    // Not beside a: after a's 503 at ~150 ms.
    expect((tb[0] as number) - (ta[0] as number)).toBeGreaterThanOrEqual(130);
    expect(rec.of("fallback")).toMatchObject([{ from: "a", reason: "status 503", next: "b" }]);
    expect(resilience.health().fallback.gen?.fallbacks).toMatchObject({
      a: { calls: 1, successes: 0 },
      b: { calls: 1, successes: 1 },
    });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2 });
  });

  it("a hedge that gets a 429 waits its Retry-After in its own loop; the first answering meanwhile wins and the wait is dropped", async () => {
    a.on(later(150, ok("a")));
    b.on(statusOf(429, { "retry-after": "1" }));
    const { resilience, rec, stats } = layer({ delay: 20, extra: { retry: { ...fast, maxAttempts: 3 } } });
    const t0 = performance.now();
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(performance.now() - t0).toBeLessThan(700);
    expect(await res.json()).toEqual({ ok: true, from: "a" });
    await settle(50);
    expect(b.hits.length).toBe(1);
    expect(rec.of("retry")).toMatchObject([{ key: b.host, retryAfter: true }]);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 1 }, b: { calls: 1, successes: 0 } });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 2, fromFallback: false });
  });
});

describe("answers turned down under a hedge", () => {
  it("a hedge whose answer validate stopped reading (too large) is the last answer: it comes whole", async () => {
    const large = JSON.stringify({ ok: false, pad: "y".repeat(4096) });
    a.on(statusOf(503));
    b.on(
      later(30, (h) => {
        h.res.setHeader("content-type", "application/json");
        h.res.end(large);
      }),
    );
    const { resilience, stats } = layer({ delay: 0, validate: true, extra: { maxReplayBytes: 1024 } });
    const res = await resilience.fetch(`${a.base}/v1/jobs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(large);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2, fromFallback: true });
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 0 } });
    expect(stats()?.overallSuccessRate).toBe(0);
  });

  it("timeout.total after the first's 503, the hedge hanging: TimeoutError, not the 503; the hedge not counted", async () => {
    a.on(statusOf(503));
    b.on(hang);
    const { resilience, stats, breaker } = layer({ delay: 2_000, extra: { timeout: { total: 100 } } });
    const error = await rejection(resilience.fetch(`${a.base}/v1/jobs`));
    expect(isTimeoutError(error)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 0 } });
    expect(breaker(b)).toMatchObject({ failureCount: 0 });
  });

  it("the caller's abort while the hedge winner's body is still read by validate: rejects, nothing counted", async () => {
    a.on(hang);
    b.on(stallAfterHeaders);
    const { resilience, stats, breaker } = layer({ delay: 20, validate: true });
    const controller = new AbortController();
    const call = resilience.fetch(`${a.base}/v1/jobs`, { signal: controller.signal });
    await b.nth(1);
    await settle(20);
    const reason = new Error("while validating");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(await closedWithin(a.hits[0] as Hit)).toBe(true);
    expect(await closedWithin(b.hits[0] as Hit)).toBe(true);
    expect(stats()?.fallbacks).toMatchObject({ a: { calls: 0 }, b: { calls: 0 } });
    expect(breaker(a)).toMatchObject({ failureCount: 0 });
    expect(breaker(b)).toMatchObject({ failureCount: 0 });
  });
});
