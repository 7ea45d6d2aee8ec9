/**
 * Outside-in attack on the figures the library reports about what it did: `getResilienceInfo(res)`, the `request`,
 * `retry`, `breaker`, `fallback` and `redirect` events, `health()` (breakers, error rate, budget, chain statistics)
 * and `debugInfo()` (totals, recent failures), checked call by call against what real servers on 127.0.0.1 received.
 * Docs: README.md (`getResilienceInfo(res)` "{ attempts, endpoint, fromFallback, degradationLevel, … }");
 * src/http/resilience-info.ts JSDoc ("Attempts made in all, across endpoints", "After redirects the layer followed
 * it is still that first host, whose breaker counted the answer"); docs/health-and-events.md ("`errorRate` over the
 * last minute (in twelve 5-second steps: a call counts for 55 to 60 seconds)", "A closed breaker shows its live
 * counts; an open or half-open one shows the counts that opened it and the error that did (for one held open by a
 * `Retry-After`, that reason …)", "Work run through `execute(fn)` counts there too … by the outcome of the work
 * itself (a `fallback` answering for it leaves it failed); a run its caller aborted is left out. A named breaker's
 * own `.execute(fn)` and a chain's `.execute(input)` count only in that breaker's and that chain's statistics",
 * "`debugInfo()` adds totals …, the last 50 failures (URLs without their query string …)", "`analytics.clearHistory()`
 * forgets the totals, the failures and the error rate's minute", "`retry` fires before each wait", "`request` fires
 * once per call …", "A call whose `Request` body could not be read fires it (an `error` of `TypeError`, `attempts:
 * 0`), but nothing counts it", "one answer that both trips the breaker and holds it open is one event", "`open` →
 * `open` when an open circuit is held longer (a `Retry-After` beyond `maxRetryAfter` from an answer still in
 * flight …)", "`fallback` fires when a chain passes over an endpoint (… `next`: a hedge already running that the
 * call carries on with …)", "`redirect` for each redirect the library follows"); docs/retry.md ("each call earns
 * `ratio` tokens (0.1), each retry spends one … An empty bucket means no retry, never a wait", "The hops are one
 * attempt … the final status counts against the first host's breaker", "A hop to another host whose breaker
 * refuses calls … is refused … with a `CircuitOpenError` naming that host and nothing sent there (the first host's
 * redirect counts as its success)", "A `Retry-After` hold on the final answer holds the host that sent it, not the
 * first one", "`TimeoutError` | … `attempts` (the call's; in a chain's `errors`, that endpoint's)"); docs/fallback.md
 * ("hedge … all are counted", statistics "under `timeout.attempt` an endpoint that hangs counts as failed");
 * docs/breakers.md (bulkhead `active`/`queued`, "A full queue rejects at once with `BulkheadRejectedError`");
 * docs/degradation.md ("rolling `window` (60 s, and at most the last 256 calls) once `minSamples` (20 …)",
 * "`getResilienceInfo(res).degradationLevel` … name that level").
 * How: `createResilience`, `getResilienceInfo`, `on(...)`, `health()`, `debugInfo()`, `analytics.clearHistory()`,
 * `execute`, `breaker(name).execute`, `fallback.chain(name)` (root); `fallback` (./fallback); `degradation`
 * (./degradation); `createClient` (./ky); `TestClock` (./testing) where waits are involved; node:http servers on
 * 127.0.0.1 that record every request (test/helpers/http-upstream.ts).
 * Paths: plain call, retries with `Retry-After`, a budget that refuses, a breaker opening mid-wait, a `Retry-After`
 * hold (trip and hold in one answer, and one in flight), half-open probes, redirects (to another host, a hold there,
 * a hop refused by that host's open breaker), a chain (network error, status, success; all hanging), hedging (a
 * slow primary, a primary failing beside a running hedge, 50 hedged calls at once), a degradation rewrite and its
 * triggers, a `Request` input with a body (plain and down a chain), one whose body cannot be read, the ky client
 * (success and `HTTPError`), `execute(fn)` (retries, a named breaker, `fallback`, an abort), a bulkhead, and 50
 * concurrent plain calls.
 *
 * Defects pinned: none. (Already documented and not pinned again, per the brief: a chain's `errors` entry for an
 * endpoint whose retries ended on network errors is a bare TypeError; `lastError: null` on a closed breaker with
 * failures; retries whose wait a breaker's opening ended count in `retriesAllowed` though never sent, seen again
 * here; `execute` emits no `retry` events.)
 *
 * Held (plain `it`):
 * - Plain 200: one request, `attempts: 1`, `endpoint` the host, one `request` event, totals 1/0, budget untouched.
 * - 503 + `Retry-After: 2` twice, then 200 (TestClock): 3 requests = `attempts` 3 = `request.attempts`, two
 *   `retry` events of 2,000 ms with `retryAfter: true`, `durationMs` 4,000, `retriesAllowed` 2, the closed breaker's
 *   live `failureCount` 2, `consecutiveFailures` 0, `failureRate` 2/3; totals 1 call, 0 failures.
 * - An empty budget (`minPerSecond: 0`): one request, no `retry` event, `retriesDenied` 1, the 503 counted failed.
 * - Breaker opening mid-wait (server answers held until both arrived): one `breaker` event, both calls settle with
 *   their 503 at once (no time passes on the TestClock), 2 requests = the `attempts` reported.
 * - One answer that trips and holds: one event; an in-flight `Retry-After: 3600` on an open host: `open` → `open`,
 *   `health()` shows that reason as `lastError` and the trip's counts.
 * - Half-open: `health()` keeps the trip's counts through the probes; 3 `breaker` events; live counts after close.
 * - Redirect to another host answering 503: 2 + 2 requests, `attempts` 2 (hops are one attempt), 2 `redirect`
 *   events, the first host's breaker counts both failures and the other host gets none; a `Retry-After: 3600` there
 *   holds that host (one event), and a later hop to it is refused (`CircuitOpenError` naming it, nothing sent there,
 *   `request.attempts` 1, the first host's redirect a success), counted failed.
 * - Chain [refused origin, 503, 200] with 2 attempts each: `attempts` 5 = 2 refused + 2 + 1 requests, `endpoint` "r",
 *   `fromFallback`, two `fallback` events, each host's breaker counts its own, statistics 1 call each.
 * - Chain whose endpoints all hang under `timeout.attempt`: each `TimeoutError` in `errors` has that endpoint's 2
 *   attempts, the call 4; statistics count both as failed.
 * - Hedges: a slow primary loses to the hedge: both requests counted (`attempts` 2), the loser one call, 0
 *   successes, no failure on its breaker; a primary failing beside a running hedge: one `fallback` event whose
 *   `next` is the running hedge; 50 hedged calls at once: `request.attempts` summed = `attempts` summed, at least
 *   every request the servers saw, totals 50/0.
 * - Degradation: `setLevel("low")` rewrites what the server receives on every attempt and `degradationLevel` says
 *   "low"; the triggers step down once after 20+ failures and a second, with one `degradation` event, and the
 *   window holds at most 256 calls.
 * - `Request` input with a body: every attempt and every endpoint received it; an unreadable body: one `request`
 *   event (`TypeError`, `attempts` 0), nothing sent, nothing counted, no host listed.
 * - ky: `attempts` on the response and on `HTTPError.response` match the requests; one call counted.
 * - `execute`: retried work counts once, failed work once (keyed by the breaker's name, empty URL), `fallback`
 *   leaves it failed, an aborted run is left out, `breaker(name).execute` and `chain.execute` stay out of totals.
 * - 50 concurrent plain calls: summed `attempts` = requests received = `request` events' sum, `retriesAllowed` =
 *   requests − calls, `retry` events = `retriesAllowed`, failures = final 503s, `errorRate` = failures / 50,
 *   breaker `failureCount` = 503s received.
 * - Bulkhead: `active`/`queued` in `health()` while held, the rejected call has `attempts` 0 and counts failed.
 * - `errorRate` window: a call counts between 55 and 60 s; `recentErrors` keeps the last 50 without queries;
 *   `clearHistory()` zeroes totals, failures and the rate.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  createResilience,
  type DegradationEvent,
  type FallbackEvent,
  getResilienceInfo,
  type RedirectEvent,
  type RequestEvent,
  type Resilience,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const answer =
  (status: number, headers: Record<string, string> = {}) =>
  (h: Hit) => {
    h.res.writeHead(status, headers);
    h.res.end(String(status));
  };
const later = (ms: number, status: number) => (h: Hit) => {
  setTimeout(() => {
    if (!h.res.destroyed) answer(status)(h);
  }, ms);
};
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function record(layer: Resilience) {
  const retries: RetryEvent[] = [];
  const requests: RequestEvent[] = [];
  const breakers: BreakerEvent[] = [];
  const fallbacks: FallbackEvent[] = [];
  const redirects: RedirectEvent[] = [];
  layer.on("retry", (e) => retries.push(e));
  layer.on("request", (e) => requests.push(e));
  layer.on("breaker", (e) => breakers.push(e));
  layer.on("fallback", (e) => fallbacks.push(e));
  layer.on("redirect", (e) => redirects.push(e));
  return { retries, requests, breakers, fallbacks, redirects };
}

const attemptsOf = (res: Response) => getResilienceInfo(res)?.attempts;

describe("plain calls, retries and the budget", () => {
  it("a plain 200: one request, one attempt, one call, nothing failed", async () => {
    const layer = createResilience({ retry: fast });
    const ev = record(layer);
    const res = await layer.fetch(`${a.base}/x`);
    await res.text();
    expect(a.hits.length).toBe(1);
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 1,
      endpoint: a.host,
      fromFallback: false,
      degradationLevel: "full",
    });
    expect(ev.requests).toMatchObject([{ key: a.host, status: 200, attempts: 1, outcome: "response", method: "GET" }]);
    expect(ev.retries).toEqual([]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 0 });
    expect(info.errorRate).toBe(0);
    expect(info.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    expect(info.budget).toMatchObject({ retriesAllowed: 0, retriesDenied: 0 });
  });

  it("retries with Retry-After: attempts, events, budget and breaker counts match the server", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: { ...fast, maxAttempts: 3 } });
    const ev = record(layer);
    a.on((h) => (h.n < 3 ? answer(503, { "retry-after": "2" })(h) : answer(200)(h)));
    const res = await clock.run(layer.fetch(`${a.base}/x`));
    await res.text();
    expect(a.hits.length).toBe(3);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, durationMs: 4000 });
    expect(ev.retries.map((e) => [e.attempt, e.delay, e.retryAfter, e.reason])).toEqual([
      [1, 2000, true, "status 503"],
      [2, 2000, true, "status 503"],
    ]);
    expect(ev.requests).toMatchObject([{ status: 200, attempts: 3, durationMs: 4000 }]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 0 });
    expect(info.budget).toMatchObject({ retriesAllowed: 2, retriesDenied: 0 });
    expect(info.breakers[a.host]).toMatchObject({
      state: "closed",
      failureCount: 2,
      consecutiveFailures: 0,
      failureRate: 2 / 3,
    });
  });

  it("an empty budget refuses the retry: one request, no retry event, one denial", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 }, budget: { ratio: 0.1, minPerSecond: 0 } });
    const ev = record(layer);
    a.on(answer(503));
    const res = await layer.fetch(`${a.base}/x`);
    await res.text();
    expect(a.hits.length).toBe(1);
    expect(attemptsOf(res)).toBe(1);
    expect(ev.retries).toEqual([]);
    expect(ev.requests).toMatchObject([{ status: 503, attempts: 1 }]);
    const info = layer.debugInfo();
    expect(info.budget).toMatchObject({ retriesAllowed: 0, retriesDenied: 1 });
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors).toMatchObject([{ key: a.host, status: 503 }]);
  });

  it("50 concurrent calls: attempts summed equal the requests the server saw, and every total adds up", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const ev = record(layer);
    a.on((h) => (h.n % 3 === 0 ? answer(200)(h) : answer(503)(h)));
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => layer.fetch(`${a.base}/c${i}`)));
    await Promise.all(all.map((r) => r.text()));
    const attempts = all.reduce((s, r) => s + (attemptsOf(r) ?? 0), 0);
    const failed = all.filter((r) => r.status === 503).length;
    const d = layer.debugInfo();
    expect(attempts).toBe(a.hits.length);
    expect(ev.requests.length).toBe(50);
    expect(ev.requests.reduce((s, e) => s + e.attempts, 0)).toBe(a.hits.length);
    expect(d.budget?.retriesAllowed).toBe(a.hits.length - 50);
    expect(ev.retries.length).toBe(a.hits.length - 50);
    expect(d.totals).toEqual({ calls: 50, failures: failed });
    expect(d.errorRate).toBeCloseTo(failed / 50, 10);
    const served503 = a.hits.filter((h) => h.n % 3 !== 0).length;
    expect(d.breakers[a.host]).toMatchObject({ failureCount: served503, failureRate: served503 / a.hits.length });
  });
});

describe("breakers", () => {
  it("a breaker opening mid-wait: one event, both calls settle at once with the 503 they had", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 5000, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const ev = record(layer);
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const p1 = layer.fetch(`${a.base}/x`);
    const p2 = layer.fetch(`${a.base}/y`);
    await a.nth(2);
    const byPath = (p: string) => held.find((h) => h.path === p) as Hit;
    answer(503)(byPath("/x"));
    while (ev.retries.length === 0) await tick(2);
    answer(503)(byPath("/y"));
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r2.status]).toEqual([503, 503]);
    expect(clock.now()).toBe(1_000_000);
    expect(a.hits.length).toBe(2);
    expect([attemptsOf(r1), attemptsOf(r2)]).toEqual([1, 1]);
    expect(ev.requests.map((e) => e.attempts)).toEqual([1, 1]);
    expect(ev.breakers).toMatchObject([{ from: "closed", to: "open" }]);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      failureCount: 2,
      consecutiveFailures: 2,
      lastError: "status 503",
    });
  });

  it("trip and hold in one answer is one event; a hold from an answer in flight is open -> open", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 }, breaker: { failureThreshold: 1 } });
    const ev = record(layer);
    a.on((h) => (h.n === 2 ? setTimeout(() => answer(503, { "retry-after": "3600" })(h), 30) : answer(503)(h)));
    const [r1, r2] = await Promise.all([layer.fetch(`${a.base}/1`), layer.fetch(`${a.base}/2`)]);
    await Promise.all([r1.text(), r2.text()]);
    expect(a.hits.length).toBe(2);
    expect([attemptsOf(r1), attemptsOf(r2)]).toEqual([1, 1]);
    expect(ev.retries).toEqual([]);
    expect(ev.breakers.map((e) => [e.from, e.to])).toEqual([
      ["closed", "open"],
      ["open", "open"],
    ]);
    expect(ev.breakers[1]?.reason).toBe("Retry-After 3600 s on status 503");
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      failureCount: 1,
      lastError: "Retry-After 3600 s on status 503",
      openUntil: ev.breakers[1]?.openUntil,
    });

    // One answer that both trips and holds: one event.
    const other = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const ev2 = record(other);
    b.on(answer(503, { "retry-after": "3600" }));
    await (await other.fetch(`${b.base}/z`)).text();
    expect(ev2.breakers).toMatchObject([{ from: "closed", to: "open" }]);
  });

  it("half-open probes keep the trip's counts; closed shows live counts again", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2, timeout: 10_000, successThreshold: 2 },
    });
    const ev = record(layer);
    a.on(answer(503));
    for (let i = 0; i < 2; i++) await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    const trip = { failureCount: 2, consecutiveFailures: 2, failureRate: 1, lastError: "status 503" };
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: 1_010_000, ...trip });
    await clock.advance(10_000);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null, ...trip });
    a.on(answer(200));
    await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", ...trip });
    await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "closed",
      failureCount: 0,
      consecutiveFailures: 0,
      lastError: null,
    });
    expect(ev.breakers.map((e) => [e.from, e.to])).toEqual([
      ["closed", "open"],
      ["open", "half_open"],
      ["half_open", "closed"],
    ]);
    expect(a.hits.length).toBe(4);
  });

  it("a bulkhead shows active and queued; the rejected call has no attempt and counts failed", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 }, bulkhead: { maxConcurrent: 2, maxQueue: 3 } });
    const ev = record(layer);
    const held: Hit[] = [];
    a.on((h) => held.push(h));
    const calls = Array.from({ length: 6 }, (_, i) =>
      layer.fetch(`${a.base}/b${i}`).then(
        (r) => r,
        (e: unknown) => e,
      ),
    );
    await a.nth(2);
    await tick(20);
    expect(layer.health().breakers[a.host]).toMatchObject({ active: 2, queued: 3 });
    expect(a.hits.length).toBe(2);
    a.on(answer(200));
    for (const h of held.splice(0)) answer(200)(h);
    const out = await Promise.all(calls);
    expect(out.map((o) => (o instanceof Response ? attemptsOf(o) : (o as Error).name)).sort()).toEqual(
      [1, 1, 1, 1, 1, "BulkheadRejectedError"].sort(),
    );
    expect(a.hits.length).toBe(5);
    expect(ev.requests.reduce((s, e) => s + e.attempts, 0)).toBe(5);
    expect(ev.requests.filter((e) => e.error === "BulkheadRejectedError")).toMatchObject([{ attempts: 0 }]);
    expect(layer.debugInfo().totals).toEqual({ calls: 6, failures: 1 });
    expect(layer.health().breakers[a.host]).toMatchObject({ active: 0, queued: 0, failureCount: 0 });
  });
});

describe("redirects", () => {
  it("a hop to another host answering 503: hops are one attempt, the first host's breaker counts it", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const ev = record(layer);
    a.on(answer(302, { location: `${b.base}/there` }));
    b.on(answer(503));
    const res = await layer.fetch(`${a.base}/x`);
    await res.text();
    expect([a.hits.length, b.hits.length]).toEqual([2, 2]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: a.host });
    expect(res.url).toBe(`${b.base}/there`);
    expect(ev.redirects.length).toBe(2);
    expect(ev.redirects[0]).toMatchObject({ status: 302, crossOrigin: true });
    expect(ev.retries).toMatchObject([{ key: a.host, attempt: 1, reason: "status 503" }]);
    const d = layer.debugInfo();
    expect(d.breakers[a.host]).toMatchObject({ failureCount: 2, consecutiveFailures: 2 });
    expect(d.breakers[b.host]).toBeUndefined();
    expect(d.totals).toEqual({ calls: 1, failures: 1 });
  });

  it("a Retry-After hold at the hop's host holds that host; a later hop there is refused, counted failed", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const ev = record(layer);
    a.on(answer(302, { location: `${b.base}/there` }));
    b.on(answer(503, { "retry-after": "3600" }));
    const res = await layer.fetch(`${a.base}/x`);
    await res.text();
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(attemptsOf(res)).toBe(1);
    expect(ev.retries).toEqual([]);
    expect(ev.breakers).toMatchObject([{ key: b.host, from: "closed", to: "open" }]);
    expect(layer.health().breakers[b.host]).toMatchObject({
      state: "open",
      lastError: "Retry-After 3600 s on status 503",
    });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1 });

    const error = await rejection(layer.fetch(`${a.base}/y`));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: b.host });
    expect([a.hits.length, b.hits.length]).toEqual([2, 1]);
    expect(ev.requests.at(-1)).toMatchObject({ error: "CircuitOpenError", attempts: 1, key: a.host });
    // The first host's redirect counted as its success.
    expect(layer.health().breakers[a.host]).toMatchObject({ consecutiveFailures: 0, failureRate: 0.5 });
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 2 });
  });
});

describe("fallback chains and hedges", () => {
  it("a chain [network error, 503, 200]: attempts across endpoints, events and statistics match", async () => {
    const dead = await refusedOrigin();
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${dead}/v1` },
            { name: "q", url: `${b.base}/v1` },
            { name: "r", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const ev = record(layer);
    b.on(answer(503));
    const res = await layer.fetch(`${dead}/v1/jobs`);
    await res.text();
    expect([b.hits.length, c.hits.length]).toEqual([2, 1]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 5, endpoint: "r", fromFallback: true });
    expect(ev.requests).toMatchObject([{ key: "gen", status: 200, attempts: 5 }]);
    expect(ev.fallbacks.map((e) => [e.from, e.next])).toEqual([
      ["p", "q"],
      ["q", "r"],
    ]);
    expect(ev.retries.map((e) => e.reason)).toEqual(["connection refused", "status 503"]);
    const d = layer.debugInfo();
    const deadHost = new URL(dead).host;
    expect(d.breakers[deadHost]).toMatchObject({ failureCount: 2 });
    expect(d.breakers[b.host]).toMatchObject({ failureCount: 2 });
    expect(d.breakers[c.host]).toMatchObject({ failureCount: 0 });
    expect(d.budget?.retriesAllowed).toBe(2);
    expect(d.totals).toEqual({ calls: 1, failures: 0 });
    expect(d.fallback.gen).toMatchObject({
      lastSuccessfulFallback: "r",
      overallSuccessRate: 1,
      fallbacks: { p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 0 }, r: { calls: 1, successes: 1 } },
    });
  });

  it("a chain whose endpoints hang: each TimeoutError counts its endpoint's attempts, the call all of them", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      timeout: { attempt: 50 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const ev = record(layer);
    a.on(() => {});
    b.on(() => {});
    const error = (await rejection(layer.fetch(`${a.base}/v1/x`))) as { name: string; errors: Record<string, unknown> };
    expect(error.name).toBe("FallbackExhaustedError");
    expect([a.hits.length, b.hits.length]).toEqual([2, 2]);
    expect(error.errors.p).toMatchObject({ name: "TimeoutError", phase: "attempt", attempts: 2 });
    expect(error.errors.q).toMatchObject({ name: "TimeoutError", phase: "attempt", attempts: 2 });
    expect(ev.requests).toMatchObject([{ error: "FallbackExhaustedError", attempts: 4 }]);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    expect(layer.health().fallback.gen).toMatchObject({
      overallSuccessRate: 0,
      fallbacks: { p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 0 } },
    });
  });

  it("a hedge that wins: both requests counted, the loser one call and no failure on its breaker", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 30 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const ev = record(layer);
    a.on(later(300, 200));
    const res = await layer.fetch(`${a.base}/v1/jobs`);
    await res.text();
    await a.hits[0]?.closed;
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(ev.requests).toMatchObject([{ attempts: 2, status: 200 }]);
    expect(ev.fallbacks).toEqual([]);
    const h = layer.health();
    expect(h.fallback.gen).toMatchObject({
      fallbacks: { p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 1 } },
    });
    expect(h.breakers[a.host]).toMatchObject({ failureCount: 0, consecutiveFailures: 0 });
  });

  it("a primary failing beside a running hedge: the fallback event names the running hedge", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 20 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
            { name: "r", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const ev = record(layer);
    a.on(later(60, 503));
    b.on(later(150, 200));
    c.on(later(400, 200));
    const res = await layer.fetch(`${a.base}/v1/x`);
    await res.text();
    await tick(30);
    const seen = a.hits.length + b.hits.length + c.hits.length;
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", attempts: seen });
    expect(a.hits.length).toBe(2);
    expect(ev.fallbacks).toEqual([{ chain: "gen", from: "p", reason: "status 503", next: "q" }]);
    expect(ev.requests).toMatchObject([{ attempts: seen }]);
  });

  it("50 hedged calls at once: attempts summed match the events, cover every request, all calls counted", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 15 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
            { name: "r", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const ev = record(layer);
    a.on((h) => later(h.n % 2 ? 60 : 0, h.n % 3 ? 200 : 503)(h));
    b.on((h) => later(10, h.n % 4 ? 200 : 503)(h));
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => layer.fetch(`${a.base}/v1/j${i}`)));
    await Promise.all(all.map((r) => r.text()));
    await tick(100);
    const attempts = all.reduce((s, r) => s + (attemptsOf(r) ?? 0), 0);
    const seen = a.hits.length + b.hits.length + c.hits.length;
    expect(ev.requests.reduce((s, e) => s + e.attempts, 0)).toBe(attempts);
    // A losing hedge aborted while it connects may never reach its server: counted, not seen.
    expect(attempts).toBeGreaterThanOrEqual(seen);
    expect(layer.debugInfo().totals).toEqual({ calls: 50, failures: 0 });
    const st = layer.health().fallback.gen;
    const successes = Object.values(st?.fallbacks ?? {}).reduce((s, e) => s + e.successes, 0);
    expect(successes).toBe(50);
    expect(st?.overallSuccessRate).toBe(1);
  });
});

describe("degradation, Request bodies, ky", () => {
  it("a rewrite at `low` reaches the server on every attempt and degradationLevel names it", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 }, degradation: degradation({}) });
    const ev = record(layer);
    layer.degradation.setLevel("low");
    a.on((h) => (h.n < 2 ? answer(503)(h) : answer(200)(h)));
    const res = await layer.fetch(`${a.base}/gen`, {
      method: "PUT",
      body: JSON.stringify({ steps: 50, quality: 1 }),
      headers: { "content-type": "application/json" },
    });
    await res.text();
    expect(a.hits.map((h) => h.body)).toEqual(['{"steps":20,"quality":0.6}', '{"steps":20,"quality":0.6}']);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, degradationLevel: "low" });
    expect(ev.requests).toMatchObject([{ attempts: 2, status: 200 }]);
    const d = layer.debugInfo();
    expect(d.degradationLevel).toBe("low");
    expect(d.degradation?.window.samples).toBe(1);
    expect(d.totals).toEqual({ calls: 1, failures: 0 });
  });

  it("the triggers step down once after enough failures and a second; the window holds at most 256 calls", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: false, breaker: false, degradation: degradation({}) });
    const levels: DegradationEvent[] = [];
    layer.on("degradation", (e) => levels.push(e));
    a.on(answer(503));
    for (let i = 0; i < 25; i++) await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    expect(layer.debugInfo().degradation).toMatchObject({ name: "full", window: { samples: 25, errorRate: 1 } });
    await clock.advance(1000);
    await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    expect(levels).toMatchObject([{ from: "full", to: "high", percentage: 80 }]);
    a.on(answer(200));
    for (let i = 0; i < 300; i++) await (await clock.run(layer.fetch(`${a.base}/x`))).text();
    expect(layer.debugInfo().degradation?.window.samples).toBe(256);
    expect(layer.debugInfo().totals).toEqual({ calls: 326, failures: 26 });
    expect(a.hits.length).toBe(326);
  });

  it("a Request input with a body: every attempt and every endpoint received it", async () => {
    const plain = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    a.on((h) => (h.n < 3 ? answer(503)(h) : answer(200)(h)));
    const res = await plain.fetch(new Request(`${a.base}/put`, { method: "PUT", body: "hello" }));
    await res.text();
    expect(a.hits.map((h) => h.body)).toEqual(["hello", "hello", "hello"]);
    expect(attemptsOf(res)).toBe(3);
    expect(plain.health().budget?.retriesAllowed).toBe(2);

    a.reset();
    const chained = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    a.on(answer(503));
    const res2 = await chained.fetch(
      new Request(`${a.base}/v1/jobs?x=1`, {
        method: "PUT",
        body: '{"a":1}',
        headers: { "content-type": "application/json" },
      }),
    );
    await res2.text();
    expect(a.hits.map((h) => [h.path, h.body])).toEqual([
      ["/v1/jobs?x=1", '{"a":1}'],
      ["/v1/jobs?x=1", '{"a":1}'],
    ]);
    expect(b.hits.map((h) => [h.path, h.body])).toEqual([["/v2/jobs?x=1", '{"a":1}']]);
    expect(getResilienceInfo(res2)).toMatchObject({ attempts: 3, endpoint: "q", fromFallback: true });
  });

  it("a Request whose body cannot be read: one request event, nothing sent, nothing counted", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const ev = record(layer);
    const body = new ReadableStream({
      pull(ctl) {
        ctl.error(new Error("broken"));
      },
    });
    const error = await rejection(
      layer.fetch(new Request(`${a.base}/u`, { method: "PUT", body, duplex: "half" } as RequestInit)),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(a.hits.length).toBe(0);
    expect(ev.requests).toMatchObject([{ error: "TypeError", attempts: 0, outcome: "error" }]);
    const d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 0, failures: 0 });
    expect(d.errorRate).toBe(0);
    expect(d.breakers).toEqual({});
  });

  it("ky: attempts on the response and on HTTPError.response match the requests", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const ev = record(layer);
    const api = createClient({ resilience: layer, prefix: a.base });
    a.on((h) => (h.n < 2 ? answer(503)(h) : answer(200)(h)));
    const res = await api.post("jobs", { json: { x: 1 }, headers: { "idempotency-key": "k" } });
    await res.text();
    expect(a.hits.map((h) => h.body)).toEqual(['{"x":1}', '{"x":1}']);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: a.host });

    a.reset();
    a.on(answer(503));
    const error = (await rejection(api.get("jobs?k=1"))) as { name: string; response: Response };
    expect(error.name).toBe("HTTPError");
    expect(a.hits.length).toBe(3);
    expect(getResilienceInfo(error.response)).toMatchObject({ attempts: 3 });
    expect(ev.requests.map((e) => [e.attempts, e.status])).toEqual([
      [2, 200],
      [3, 503],
    ]);
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 1 });
  });
});

describe("execute and analytics", () => {
  it("execute counts the work's outcome once; fallback leaves it failed; an abort is left out", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 }, fallback: fallback([]) });
    let n = 0;
    const value = await layer.execute(async () => {
      n++;
      if (n < 3) throw new Error("x");
      return 1;
    });
    expect([value, n]).toEqual([1, 3]);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
    expect(layer.health().budget?.retriesAllowed).toBe(2);

    let m = 0;
    const error = await rejection(
      layer.execute(
        async () => {
          m++;
          throw new Error("y");
        },
        { breaker: "db" },
      ),
    );
    expect(error).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
    expect(m).toBe(3);
    let d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 2, failures: 1 });
    expect(d.recentErrors).toMatchObject([{ key: "db", url: "", error: "RetryExhaustedError" }]);
    expect(d.breakers.db).toMatchObject({ failureCount: 3, consecutiveFailures: 3 });
    expect(d.errorRate).toBe(0.5);

    const answered = await layer.execute(
      async () => {
        throw new Error("z");
      },
      { retry: false, fallback: () => 7 },
    );
    expect(answered).toBe(7);
    expect(layer.debugInfo().totals).toEqual({ calls: 3, failures: 2 });

    const ac = new AbortController();
    await rejection(
      layer.execute(
        async () => {
          ac.abort(new Error("gone"));
          throw new Error("x");
        },
        { signal: ac.signal },
      ),
    );
    expect(layer.debugInfo().totals).toEqual({ calls: 3, failures: 2 });

    await rejection(
      layer.breaker("svc").execute(async () => {
        throw new Error("s");
      }),
    );
    const chain = layer.fallback.chain("mine");
    chain
      .add(
        async () => {
          throw new Error("no");
        },
        { name: "one" },
      )
      .add(async () => 5, { name: "two" });
    expect(await chain.execute(1)).toBe(5);
    d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 3, failures: 2 });
    expect(d.breakers.svc).toMatchObject({ failureCount: 1 });
    expect(d.fallback.mine).toMatchObject({
      lastSuccessfulFallback: "two",
      fallbacks: { one: { calls: 1, successes: 0 }, two: { calls: 1, successes: 1 } },
    });
  });

  it("errorRate counts a call for 55 to 60 seconds, whatever its phase in a 5-second step", async () => {
    for (const start of [1_001_234, 1_004_999, 1_000_000]) {
      const clock = new TestClock(start);
      const layer = createResilience({ clock, retry: false });
      a.on(answer(503));
      await (await clock.run(layer.fetch(`${a.base}/x`))).text();
      const t0 = clock.now();
      await clock.advance(55_000 - 1);
      expect(layer.health().errorRate).toBe(1);
      await clock.advance(t0 + 60_000 - clock.now());
      expect(layer.health().errorRate).toBe(0);
    }
  });

  it("recentErrors keeps the last 50 without their query; clearHistory forgets totals and the rate", async () => {
    const layer = createResilience({ retry: false, breaker: false });
    a.on(answer(503));
    for (let i = 0; i < 55; i++) await (await layer.fetch(`${a.base}/e${i}?key=secret`)).text();
    const d = layer.debugInfo();
    expect(d.recentErrors.length).toBe(50);
    expect(d.recentErrors[0]?.url).toBe(`${a.base}/e5`);
    expect(d.recentErrors.at(-1)?.url).toBe(`${a.base}/e54`);
    expect(d.totals).toEqual({ calls: 55, failures: 55 });
    expect(d.status).toBe("degraded");
    layer.analytics.clearHistory();
    const cleared = layer.debugInfo();
    expect(cleared.recentErrors).toEqual([]);
    expect(cleared.totals).toEqual({ calls: 0, failures: 0 });
    expect(cleared.errorRate).toBe(0);
    expect(cleared.status).toBe("healthy");
  });
});
