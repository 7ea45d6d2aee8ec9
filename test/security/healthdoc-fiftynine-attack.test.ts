/**
 * Outside-in attack on docs/health-and-events.md, on the paths earlier health runs (fortytwo, fortyfour, fiftyfive,
 * twentyeight, breaker-health-docs) drove least: a hedged chain where the hedge fails first, where both legs fail,
 * where breakers are open as the hedge would start, where the primary waits out a `Retry-After`; a redirect across
 * hosts inside a hedged chain and after a `transform`; a degradation rewrite under a `breaker.key` that reads the
 * rewritten parameter; `Request` input; `resilientProxy` in Node over a `memoryStore()` another layer writes; the
 * ky client `createClient` (its own `timeout`, a chain whose circuits are all open).
 *
 * Docs:
 * - docs/health-and-events.md: "`health()` returns plain JSON: `status` (`unhealthy` when a breaker is open,
 *   `degraded` above a 10% error rate)"; "every breaker (`state`, `failureCount`, `consecutiveFailures`,
 *   `failureRate`, `lastError`, `reason`, `lastFailureTime`, `openUntil`, `gen` …)"; "for one held open by a
 *   `Retry-After`, that reason: `Retry-After 3600 s on status 503`"; "Through `memoryStore()` it shows that
 *   layer's counts and error"; "`debugInfo()` adds totals (of calls that settled with a response or an error: a
 *   call its caller aborted is left out …), the last 50 failures (URLs without their query string, which may hold
 *   keys)"; "`retry` fires before each wait (`key`, `attempt`, `delay`, `reason`, `retryAfter`)"; "`request`
 *   fires once per call the layer started, when it settles (`status` or `error`, `attempts`, `durationMs`,
 *   `outcome`)"; "`breaker` fires on every state change (`key`, `from`, `to`, `reason`, `gen`, `openUntil`)";
 *   "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`, `next`: after a failure, a
 *   hedge already running that the call carries on with, else the endpoint next in line; for one passed over for
 *   its open breaker, the endpoint next in line, else a hedge already running …)"; "`replay` when a body was too
 *   large to keep for retries"; "`redirect` for each redirect the library follows, told as it turns to the next
 *   hop"; "or whose `Request` body stream, read ahead past `maxReplayBytes`, failed while it was sent, but nothing
 *   counts it: not `health()`, analytics …".
 * - docs/fallback.md: "an endpoint that fails while another still runs is left for the next one at once"; "A hedge
 *   that lost counts there as a call that did not serve, as in `statistics()` (its host's breaker does not count
 *   it)"; "When every endpoint failed, the call resolves with the last response any endpoint gave".
 * - docs/degradation.md: "The breaker key … is taken from the URL the caller asked for, before the rewrite … a
 *   `breaker.key` that reads a query parameter a rule rewrites reads the caller's value".
 * - docs/cloudflare.md: "answers `503` with `Retry-After` when the circuit is open", "adds `x-resilience-endpoint`
 *   …, `x-resilience-attempts` and `x-degradation-level` to the responses the upstreams gave (its own 502, 503 and
 *   504 carry none of the three)", "`400` when … the client's body stream failed while the layer read it ahead".
 * - SECURITY.md: "URLs lose their userinfo …, query string and fragment … before they reach any of them".
 *
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `resilientProxy` (./cloudflare), `createClient` (./ky), `TestClock` (./testing); three
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) whose answers the test releases by hand, so a
 * hedge's timing is exact on the test clock.
 *
 * Paths: hedged chain (hedge fails under a running primary with 2 and 3 endpoints; both legs fail; both held open
 * by `Retry-After`, then a ky call meeting both open; breakers open as the hedge would start; primary waiting out
 * a `Retry-After`; a body past `maxReplayBytes`), redirect across hosts (inside a hedged chain; after a
 * `transform`, with retries), a `transform` to a URL with userinfo, degradation rewrite with `breaker.key` (plain
 * and ky), `Request` input, `resilientProxy` (memoryStore shared with another layer, a hedged chain route, the
 * health path, a client body stream that fails), ky with its own `timeout`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found; every sentence driven held.
 *
 * Held (plain `it`): see each test's name; in short, on every path above the `request` event fires once with
 * `attempts` equal to `getResilienceInfo` and the requests sent, `fallback` events name `next` as documented, a
 * hedge's loser is counted by neither its breaker nor `health()`, a hedge's failure is, hop hosts are never
 * listed, the breaker key is the caller's, the proxy's health JSON shows the other layer's counts and error, and no
 * query, fragment or userinfo reaches an event, `health()`, `debugInfo()`, an error or a proxy header.
 *
 * Docs-silent (not pinned):
 * - With three endpoints, a hedge that fails under a running primary starts the third at once, yet its `fallback`
 *   event names the primary (the leg "already running") as `next`, not the third it started; with every later
 *   circuit open at hedge time the event's `next` is the primary too. Read with the `FallbackEvent` JSDoc ("one
 *   already running (a hedge) that the run carries on with"), not a defect.
 * - When both legs fail, the second `fallback` event has no `next` key at all (not `next: undefined`), and the call
 *   resolves with whichever leg answered last, `getResilienceInfo` naming it (`fromFallback` false when that is
 *   the primary).
 * - A primary waiting out a `Retry-After` when its hedge wins: the budget's `retriesAllowed` counts the retry
 *   that was never sent, and no `fallback` event marks the primary passed over.
 * - A `retry` event after a `transform` names the transformed URL (query cut) and its host, not the caller's URL
 *   the `RetryEvent` JSDoc calls "the call's URL". (The JSDoc was wrong, the behaviour right: the JSDoc and
 *   docs/health-and-events.md now say the failed attempt's URL, the endpoint's after its `transform`, fifty-ninth
 *   session; asserted in test/http/health-sentences.test.ts.)
 * - A client body that fails past `maxReplayBytes` through the proxy leaves the upstream's breaker listed in
 *   `health()` (all counts 0, `failureRate` null).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, memoryStore, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const SECRET = "S3CR3T";
const ctx = { waitUntil() {}, passThroughOnException() {} };
const names = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
type Recorded = [string, Record<string, unknown>];

function record(layer: Pick<Resilience, "on">): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of names) layer.on(name, (event) => seen.push([name, { ...(event as object) }]));
  return seen;
}
const of = (seen: Recorded[], name: string) => seen.filter(([n]) => n === name).map(([, e]) => e);
const kinds = (seen: Recorded[]) => seen.map(([n]) => n);

function finish(h: Hit, status: number, headers: Record<string, string> = {}) {
  h.res.writeHead(status, headers);
  h.res.end(status === 200 ? "ok" : "no");
}
const hold = () => {};
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

type Endpoint = Parameters<typeof fallback>[0][number]["endpoints"][number];
const p = () => ({ name: "p", url: `${a.base}/v1` });
const q = () => ({ name: "q", url: `${b.base}/v1` });
const r = () => ({ name: "r", url: `${c.base}/v1` });

function hedged(clock: TestClock, endpoints: Endpoint[], extra: object = {}) {
  return createResilience({
    clock,
    retry: { maxAttempts: 1 },
    ...extra,
    fallback: fallback([{ name: "gen", endpoints, hedge: { delay: 1000 } }]),
  });
}

/** Every field of a closed breaker that counted nothing. */
const untouched = { state: "closed", failureCount: 0, consecutiveFailures: 0, lastFailureTime: null, lastError: null };

describe("a hedged chain", () => {
  it("both legs fail (a `Request` input): two fallback events, one request event, both hosts counted once", async () => {
    const clock = new TestClock();
    a.on(hold);
    b.on(hold);
    const layer = hedged(clock, [p(), q()]);
    const seen = record(layer);
    const input = new Request(`${a.base}/v1/x?key=${SECRET}#f${SECRET}`, { headers: { "idempotency-key": "k1" } });
    const call = layer.fetch(input);
    const first = await a.nth(1);
    await clock.advance(1000);
    const hedge = await b.nth(1);
    finish(first, 503);
    await tick();
    finish(hedge, 503);
    const res = await call;

    expect(res.status).toBe(503); // the last response any endpoint gave
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(kinds(seen)).toEqual(["fallback", "fallback", "request"]);
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "p", reason: "status 503", next: "q" },
      { chain: "gen", from: "q", reason: "status 503" },
    ]);
    expect(of(seen, "request")).toEqual([
      {
        key: "gen",
        url: `${a.base}/v1/x`,
        method: "GET",
        status: 503,
        error: undefined,
        attempts: 2,
        durationMs: 1000,
        outcome: "response",
      },
    ]);
    const info = layer.debugInfo();
    expect(info.status).toBe("degraded");
    expect(info.errorRate).toBe(1);
    // a hedge that failed is no loser: its host's breaker counts it
    for (const host of [a.host, b.host]) {
      expect(info.breakers[host]).toMatchObject({
        state: "closed",
        failureCount: 1,
        consecutiveFailures: 1,
        failureRate: 1,
        lastFailureTime: 1000,
      });
    }
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors).toEqual([
      { time: 1000, key: "gen", url: `${a.base}/v1/x`, status: 503, durationMs: 1000 },
    ]);
    expect(info.fallback.gen?.fallbacks).toMatchObject({
      p: { calls: 1, successes: 0 },
      q: { calls: 1, successes: 0 },
    });
    expect(JSON.stringify([seen, info])).not.toContain(SECRET);
  });

  it("a hedge failing under a running primary: the next endpoint starts at once, the loser is counted by nothing", async () => {
    for (const three of [false, true]) {
      a.reset();
      b.reset();
      c.reset();
      const clock = new TestClock();
      a.on(hold);
      b.on(hold);
      c.on(hold);
      const layer = hedged(clock, three ? [p(), q(), r()] : [p(), q()]);
      const seen = record(layer);
      const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`);
      const first = await a.nth(1);
      await clock.advance(1000);
      finish(await b.nth(1), 503);
      if (three) await c.nth(1); // "left for the next one at once", no second hedge delay
      await tick();
      expect(c.hits).toHaveLength(three ? 1 : 0);
      finish(first, 200);
      const res = await call;
      if (three) await (c.hits[0] as Hit).closed; // the loser's upstream saw the connection closed

      expect(await res.text()).toBe("ok");
      expect(getResilienceInfo(res)).toMatchObject({ attempts: three ? 3 : 2, endpoint: "p", fromFallback: false });
      expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "q", reason: "status 503", next: "p" }]);
      expect(of(seen, "request")).toEqual([
        expect.objectContaining({ key: "gen", status: 200, attempts: three ? 3 : 2, outcome: "response" }),
      ]);
      const health = layer.health();
      expect(health.status).toBe("healthy");
      expect(health.errorRate).toBe(0);
      expect(health.breakers[a.host]).toMatchObject(untouched);
      expect(health.breakers[b.host]).toMatchObject({ failureCount: 1, consecutiveFailures: 1, lastFailureTime: 1000 });
      if (three) {
        expect(health.breakers[c.host]).toMatchObject({ ...untouched, failureRate: null });
        expect(health.fallback.gen?.fallbacks.r).toMatchObject({ calls: 1, successes: 0 });
      }
      expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain(SECRET);
    }
  });

  it("breakers open as the hedge would start: `circuit open` events name the next in line, else the running leg", async () => {
    for (const variant of ["r open, p fails under q", "q open at hedge time", "only q, open"] as const) {
      a.reset();
      b.reset();
      c.reset();
      const clock = new TestClock();
      const layer = hedged(clock, variant === "only q, open" ? [p(), q()] : [p(), q(), r()]);
      const opened = variant === "r open, p fails under q" ? c : b;
      opened.on((h) => finish(h, 503, { "retry-after": "3600" }));
      await layer.fetch(`${opened.base}/warm`);
      opened.reset();
      a.on(hold);
      b.on(hold);
      c.on(hold);
      const seen = record(layer);
      const call = layer.fetch(`${a.base}/v1/x`);
      const first = await a.nth(1);
      await clock.advance(1000);
      await tick();
      await tick();
      if (variant === "r open, p fails under q") {
        finish(first, 503);
        await tick();
        finish(await b.nth(1), 200);
      } else finish(first, 200);
      const res = await call;
      expect(res.status).toBe(200);
      const events = of(seen, "fallback");
      if (variant === "r open, p fails under q") {
        expect(events).toEqual([
          { chain: "gen", from: "p", reason: "status 503", next: "q" },
          { chain: "gen", from: "r", reason: "circuit open", next: "q" },
        ]);
        expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
      } else if (variant === "q open at hedge time") {
        expect(events).toEqual([{ chain: "gen", from: "q", reason: "circuit open", next: "r" }]);
        expect(c.hits).toHaveLength(1);
        expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "p" });
      } else {
        expect(events).toEqual([{ chain: "gen", from: "q", reason: "circuit open", next: "p" }]);
        expect(getResilienceInfo(res)).toMatchObject({ attempts: 1, endpoint: "p" });
      }
      expect(b.hits.length + c.hits.length).toBe(variant === "only q, open" ? 0 : 1); // no open host asked
      expect(of(seen, "request")).toHaveLength(1);
      expect(of(seen, "breaker")).toEqual([]); // nothing changed state
      expect(layer.health().status).toBe("unhealthy");
    }
  });

  it("a primary waiting out a `Retry-After` when the hedge starts: one retry event, the wait never ends in a send", async () => {
    const clock = new TestClock();
    a.on((h) => finish(h, 503, { "retry-after": "5" }));
    b.on(hold);
    const layer = hedged(clock, [p(), q()], { retry: { maxAttempts: 2 } });
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`);
    await a.nth(1);
    await tick();
    await clock.advance(1000);
    finish(await b.nth(1), 200);
    const res = await call;
    await clock.advance(10_000);
    expect(a.hits).toHaveLength(1);
    expect(kinds(seen)).toEqual(["retry", "request"]);
    expect(of(seen, "retry")).toEqual([
      { key: a.host, url: `${a.base}/v1/x`, attempt: 1, delay: 5000, reason: "status 503", retryAfter: true },
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(of(seen, "request")[0]).toMatchObject({ status: 200, attempts: 2, durationMs: 1000 });
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({ failureCount: 1, lastFailureTime: 0, state: "closed" });
    expect(health.breakers[b.host]).toMatchObject(untouched);
  });

  it("both legs held open by `Retry-After`: one breaker event each; a ky call then meets both open", async () => {
    const clock = new TestClock();
    a.on(hold);
    b.on(hold);
    const layer = hedged(clock, [p(), q()]);
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`);
    const first = await a.nth(1);
    await clock.advance(1000);
    finish(await b.nth(1), 503, { "retry-after": "3600" });
    await tick();
    finish(first, 503, { "retry-after": "3600" });
    const res = await call;
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "p", fromFallback: false });
    const held = {
      from: "closed",
      to: "open",
      reason: "Retry-After 3600 s on status 503",
      gen: 1,
      openUntil: 3_601_000,
    };
    expect(seen.map(([n, e]) => (n === "breaker" ? e.key : n))).toEqual([
      b.host,
      "fallback",
      a.host,
      "fallback",
      "request",
    ]);
    expect(of(seen, "breaker")).toEqual([
      { key: b.host, ...held },
      { key: a.host, ...held },
    ]);
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "q", reason: "status 503", next: "p" },
      { chain: "gen", from: "p", reason: "status 503" },
    ]);

    seen.length = 0;
    const api = createClient({ resilience: layer });
    const error = await api.get(`${a.base}/v1/y`, { searchParams: { key: SECRET } }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.name).toBe("FallbackExhaustedError");
    expect(`${error?.message} ${error?.stack}`).not.toContain(SECRET);
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "p", reason: "circuit open", next: "q" },
      { chain: "gen", from: "q", reason: "circuit open" },
    ]);
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({
        url: `${a.base}/v1/y`,
        error: "FallbackExhaustedError",
        attempts: 0,
        outcome: "error",
      }),
    ]);
    expect(a.hits.length + b.hits.length).toBe(2);
    const info = layer.debugInfo();
    expect(info.status).toBe("unhealthy");
    for (const host of [a.host, b.host]) {
      expect(info.breakers[host]).toMatchObject({
        state: "open",
        openUntil: 3_601_000,
        reason: "Retry-After 3600 s on status 503",
        lastError: "Retry-After 3600 s on status 503",
        failureCount: 1,
        lastFailureTime: 1000,
      });
    }
    expect(info.totals).toEqual({ calls: 2, failures: 2 });
    expect(JSON.stringify([seen, info])).not.toContain(SECRET);
  });

  it("a body past `maxReplayBytes`: one replay event (URL cut), no hedge sent, the spare not counted", async () => {
    const clock = new TestClock();
    a.on(hold);
    b.on(hold);
    const layer = hedged(clock, [p(), q()], { maxReplayBytes: 1024 });
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`, {
      method: "POST",
      headers: { "idempotency-key": "k2" },
      body: "x".repeat(2048),
    });
    const first = await a.nth(1);
    await clock.advance(1000);
    await tick();
    expect(b.hits).toHaveLength(0);
    finish(first, 503);
    const res = await call;
    expect(res.status).toBe(503);
    expect(of(seen, "replay")).toEqual([{ url: `${a.base}/v1/x`, bytes: 2048, limit: 1024 }]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ method: "POST", status: 503, attempts: 1 })]);
    expect(layer.health().fallback.gen?.fallbacks.q).toMatchObject({ calls: 0 });
    expect(b.hits).toHaveLength(0);
  });
});

describe("redirects across hosts", () => {
  it("inside a hedged chain: the redirect event names both hosts, the first host counts, the hop's is not listed", async () => {
    const clock = new TestClock();
    a.on((h) => finish(h, 307, { location: `${c.base}/moved?hk=${SECRET}#x` }));
    c.on(hold);
    b.on(hold);
    const layer = hedged(clock, [p(), q()]);
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`, { headers: { authorization: `Bearer ${SECRET}` } });
    const hop = await c.nth(1);
    expect(hop.headers.authorization).toBeUndefined();
    await clock.advance(1000);
    const spare = await b.nth(1);
    finish(hop, 503);
    await tick();
    finish(spare, 200);
    const res = await call;
    expect(kinds(seen)).toEqual(["redirect", "fallback", "request"]);
    expect(of(seen, "redirect")).toEqual([
      {
        from: `${a.base}/v1/x`,
        to: `${c.base}/moved`,
        status: 307,
        crossOrigin: true,
        dropped: ["authorization"],
      },
    ]);
    expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "p", reason: "status 503", next: "q" }]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    const health = layer.health();
    expect(Object.keys(health.breakers).sort()).toEqual([a.host, b.host].sort());
    expect(health.breakers[a.host]).toMatchObject({ failureCount: 1, lastFailureTime: 1000 });
    expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain(SECRET);
  });

  it("after a `transform`: retry events keyed by each endpoint's host, the hop told from the transformed URL", async () => {
    const clock = new TestClock();
    a.on((h) => finish(h, 503));
    b.on((h) => (h.n < 2 ? finish(h, 503) : finish(h, 307, { location: `${c.base}/hop?hk=${SECRET}` })));
    c.on((h) => finish(h, 200));
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            p(),
            { ...q(), transform: (req) => ({ ...req, url: `${b.base}/v2/t?tk=${SECRET}#frag${SECRET}` }) },
          ],
        },
      ]),
    });
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x?key=${SECRET}`);
    for (let i = 0; i < 10; i++) {
      await tick();
      await clock.advance(5);
    }
    const res = await call;
    expect(res.status).toBe(200);
    expect(kinds(seen)).toEqual(["retry", "fallback", "retry", "redirect", "request"]);
    expect(of(seen, "retry").map((e) => [e.key, e.url, e.attempt, e.reason])).toEqual([
      [a.host, `${a.base}/v1/x`, 1, "status 503"],
      [b.host, `${b.base}/v2/t`, 1, "status 503"],
    ]);
    expect(of(seen, "redirect")[0]).toMatchObject({ from: `${b.base}/v2/t`, to: `${c.base}/hop`, crossOrigin: true });
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 4, endpoint: "q", fromFallback: true });
    expect(of(seen, "request")[0]).toMatchObject({ attempts: 4, url: `${a.base}/v1/x` });
    const health = layer.health();
    expect(health.breakers[c.host]).toBeUndefined();
    expect(health.breakers[b.host]).toMatchObject({ failureCount: 1, consecutiveFailures: 0 });
    expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain(SECRET);
  });

  it("a `transform` to a URL with userinfo: refused unsent, its reason cut of the password and query", async () => {
    a.on((h) => finish(h, 503));
    const layer = createResilience({
      clock: new TestClock(),
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            p(),
            { ...r(), transform: (req) => ({ ...req, url: `http://user:pw${SECRET}@${c.host}/v2?tk=${SECRET}` }) },
          ],
        },
      ]),
    });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(503);
    expect(c.hits).toHaveLength(0);
    const events = of(seen, "fallback");
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ from: "r", reason: expect.stringContaining("TypeError") });
    expect(JSON.stringify([seen, layer.debugInfo()])).not.toMatch(new RegExp(`${SECRET}|user:pw`));
  });
});

describe("a degradation rewrite under a `breaker.key` that reads the rewritten parameter", () => {
  function layered(clock: TestClock) {
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, jitter: "none", initialDelay: 10 },
      breaker: { key: (url: URL) => url.searchParams.get("model") ?? url.host },
      degradation: degradation({ rules: [{ match: `${a.base}/gen`, params: { model: { query: "model" } } }] }),
    });
    layer.degradation?.setLevel("medium");
    return layer;
  }
  async function drive(clock: TestClock, promise: Promise<unknown>) {
    let done = false;
    void promise.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 20 && !done; i++) {
      await tick();
      await clock.advance(10);
    }
  }

  it("plain call: the server gets `standard`, every event and health() key the caller's `premium`", async () => {
    const clock = new TestClock();
    a.on((h) => finish(h, h.n < 3 ? 503 : 200));
    const layer = layered(clock);
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/gen?model=premium&key=${SECRET}`);
    await drive(clock, call);
    const res = await call;
    expect(a.hits.map((h) => h.path)).toEqual(Array(3).fill(`/gen?model=standard&key=${SECRET}`));
    expect(of(seen, "retry").map((e) => [e.key, e.url, e.attempt, e.delay])).toEqual([
      ["premium", `${a.base}/gen`, 1, 10],
      ["premium", `${a.base}/gen`, 2, 20],
    ]);
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({ key: "premium", url: `${a.base}/gen`, status: 200, attempts: 3 }),
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "premium", degradationLevel: "medium" });
    const health = layer.health();
    expect(Object.keys(health.breakers)).toEqual(["premium"]);
    expect(health.breakers.premium).toMatchObject({ failureCount: 2, consecutiveFailures: 0, lastFailureTime: 10 });
    expect(health.degradationLevel).toBe("medium");
    expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain(SECRET);
  });

  it("ky client: an `HTTPError` after retries, keyed `premium`, the query cut from the error and recentErrors", async () => {
    const clock = new TestClock();
    a.on((h) => finish(h, 503));
    const layer = layered(clock);
    const seen = record(layer);
    const api = createClient({ resilience: layer });
    const call = api.get(`${a.base}/gen`, { searchParams: { model: "premium", key: SECRET } }).then(
      () => null,
      (e: Error & { response?: Response }) => e,
    );
    await drive(clock, call);
    const error = await call;
    expect(error?.name).toBe("HTTPError");
    expect(`${error?.message} ${error?.stack}`).not.toContain(SECRET);
    expect(getResilienceInfo(error?.response as Response)).toMatchObject({
      attempts: 3,
      endpoint: "premium",
      degradationLevel: "medium",
    });
    expect(of(seen, "retry").map((e) => e.key)).toEqual(["premium", "premium"]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: "premium", status: 503, attempts: 3 })]);
    const info = layer.debugInfo();
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: "premium", url: `${a.base}/gen`, status: 503 })]);
    expect(info.breakers.standard).toBeUndefined();
    expect(JSON.stringify([seen, info])).not.toContain(SECRET);
  });
});

describe("resilientProxy in Node over a shared memoryStore()", () => {
  it("health shows the other layer's opening and counts; a hedged chain route's headers; nothing secret", async () => {
    const clock = new TestClock();
    const shared = memoryStore();
    a.on((h) => finish(h, 503));
    const other = createResilience({
      clock,
      store: shared,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2 },
    });
    await other.fetch(`${a.base}/v1/a`);
    await other.fetch(`${a.base}/v1/b`);
    const proxy = resilientProxy({
      routes: [
        { path: "/up", upstream: `${a.base}/v1?key=${SECRET}` },
        { path: "/gen", chain: { name: "gen", hedge: { delay: 1000 }, endpoints: [r(), q()] } },
      ],
      store: () => shared,
      resilience: { clock, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 2 } },
    });
    const health = async () =>
      (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).text();
    // a fresh layer lists no host yet
    expect(JSON.parse(await health())).toMatchObject({ status: "healthy", breakers: {} });

    const refused = await proxy.fetch(new Request(`https://w.example/up/x?token=${SECRET}`), {}, ctx);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    for (const h of ["x-resilience-endpoint", "x-resilience-attempts", "x-degradation-level"])
      expect(refused.headers.has(h)).toBe(false);
    expect(a.hits).toHaveLength(2); // the other layer's two, nothing from the proxy

    c.on(hold);
    b.on(hold);
    const call = proxy.fetch(new Request(`https://w.example/gen/x?token=${SECRET}`), {}, ctx);
    const primary = await c.nth(1);
    await clock.advance(1000);
    finish(await b.nth(1), 200);
    const won = await call;
    await primary.closed;
    expect(won.status).toBe(200);
    expect(won.headers.get("x-resilience-endpoint")).toBe("q");
    expect(won.headers.get("x-resilience-attempts")).toBe("2");
    expect(won.headers.get("x-degradation-level")).toBe("full");

    const text = await health();
    expect(text).not.toContain(SECRET);
    const json = JSON.parse(text);
    expect(json.status).toBe("unhealthy");
    expect(json.errorRate).toBe(0.5); // the refused call failed, the hedged one served
    expect(json.breakers[a.host]).toMatchObject({
      state: "open",
      failureCount: 2,
      consecutiveFailures: 2,
      lastError: "status 503",
      openUntil: 30_000,
      reason: expect.stringContaining("2 failures in a row (last: status 503)"),
    });
    expect(json.breakers[c.host]).toMatchObject({ ...untouched, failureRate: null }); // the losing primary
    expect(json.breakers[b.host]).toMatchObject(untouched);
    expect(json.fallback.gen).toMatchObject({
      lastSuccessfulFallback: "q",
      fallbacks: { r: { calls: 1, successes: 0 }, q: { calls: 1, successes: 1 } },
    });
  });

  it("a client body stream that fails, short or past `maxReplayBytes`: 400, nothing sent, nothing counted", async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/up", upstream: `${a.base}/v1` }],
      resilience: { retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" }, maxReplayBytes: 1024 },
    });
    for (const size of [100, 4000]) {
      const body = new ReadableStream<Uint8Array>({
        start: (ctl) => ctl.enqueue(new Uint8Array(size).fill(65)),
        pull: (ctl) => ctl.error(new TypeError(`boom ${SECRET}`)),
      });
      const init = { method: "PUT", body, duplex: "half" } as RequestInit;
      const res = await proxy.fetch(new Request(`https://w.example/up/x?key=${SECRET}`, init), {}, ctx);
      expect(res.status).toBe(400);
      expect(await res.text()).not.toContain(SECRET);
    }
    expect(a.hits).toHaveLength(0);
    const text = await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).text();
    const json = JSON.parse(text);
    expect(json).toMatchObject({ status: "healthy", errorRate: 0 });
    for (const breaker of Object.values(json.breakers)) expect(breaker).toMatchObject(untouched);
    expect(text).not.toContain(SECRET);
  });
});

describe("the ky client's own timeout", () => {
  it("is the caller's abort: a request event `aborted`, left out of totals and the error rate", async () => {
    a.on(hold);
    const layer = createResilience({ clock: new TestClock(), retry: { maxAttempts: 3 } });
    const seen = record(layer);
    const api = createClient({ resilience: layer, timeout: 30 });
    const error = await api.get(`${a.base}/v1/y?key=${SECRET}`).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.name).toBe("TimeoutError");
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({ url: `${a.base}/v1/y`, outcome: "aborted", attempts: 1, status: undefined }),
    ]);
    expect(of(seen, "retry")).toEqual([]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 0, failures: 0 });
    expect(info.errorRate).toBe(0);
    expect(info.breakers[a.host]).toMatchObject(untouched);
    expect(JSON.stringify([seen, info, error?.message])).not.toContain(SECRET);
  });
});
