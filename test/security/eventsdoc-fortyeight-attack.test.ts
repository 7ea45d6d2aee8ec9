/**
 * Outside-in attack on the events of a layer and on what `debugInfo()`, the analytics and `execute(fn)` promise
 * about them: when each of the eight events fires, with what payload, in what order, what a listener that throws,
 * subscribes or unsubscribes does, and how a call or an `execute` run counts in `health()`/`debugInfo()`.
 *
 * Docs: docs/health-and-events.md, "## Events" to the end ("`resilience.on(name, listener)` returns an
 * unsubscribe function, which ends that subscription only"; "A listener subscribed twice at once is registered
 * once"; "A name that is not one of the eight below (a typo) is a `TypeError` at once, which lists them"; "`retry`
 * fires before each wait (`key`, `attempt`, `delay`, `reason`, `retryAfter`), `execute`'s too (`key` its `breaker`'s
 * name, else `"execute"`; `url` empty; `reason` the thrown error's name, as `debugInfo()` lists it; `retryAfter`
 * false)"; "`request` fires once per call the layer started, when it settles … A call whose `Request` body could not
 * be read fires it (an `error` of `TypeError`, `attempts: 0`), and so does one the transport refused before sending
 * anything …, or whose `Request` body stream, read ahead past `maxReplayBytes`, failed while it was sent, but nothing
 * counts it: not `health()`, analytics, the degradation triggers nor the retry budget"; "`breaker` fires on every
 * state change … (`open` → `half_open` when the first call after `timeout` arrives …)"; "`fallback` fires when a
 * chain passes over an endpoint (`chain`, `from`, `reason`, `next`: after a failure, a hedge already running that
 * the call carries on with, else the endpoint next in line …)"; "`degradation` fires on every level change …; a
 * listener that changes the level again is heard out at once, as `EventTarget` does: listeners after it hear that
 * change first, and the outer `degrade()` returns the level it made"; "`replay` when a body was too large to keep
 * for retries (a `ReadableStream` in `init` is never read ahead to be measured: it goes once, without one)";
 * "`redirect` for each redirect the library follows, told as it turns to the next hop, before that hop's host is
 * asked"; "A listener that throws, or an async one whose promise rejects, is reported (`reportError` or
 * `console.error`) and never breaks the request; the request does not wait for an async listener. As with the DOM's
 * `EventTarget`, an event goes to the listeners subscribed when it fired, less any unsubscribed meanwhile: one that
 * subscribes again while it runs, or adds another, is not called again for that event"), and the paragraph before
 * it ("Work run through `execute(fn)` counts there too …: in the error rate, `debugInfo()`'s totals and failures
 * (keyed by its `breaker`'s name, else `"execute"`, with an empty `url`) and the degradation triggers, by the outcome
 * of the work itself (a `fallback` answering for it leaves it failed); a run its caller aborted is left out. A named
 * breaker's own `.execute(fn)` and a chain's `.execute(input)` count only in that breaker's and that chain's
 * statistics"; "`debugInfo()` adds totals …, the last 50 failures (URLs without their query string …)";
 * "`analytics.clearHistory()` forgets the totals, the failures and the error rate's minute (`errorRate` reads 0
 * after it; the degradation level and its window belong to the level"), with "`health()` returns plain JSON:
 * `status` (`unhealthy` when a breaker is open …), … every breaker (`state`, …)"; the root entry's JSDoc
 * (`HealthSnapshot.breakers` "Per-host breakers (and named ones, under `name`)", `RetryEvent`, `RequestEvent`,
 * `FallbackEvent`, `ReplayEvent`, `RedirectEvent`, `Resilience.execute`/`ExecuteOptions.breaker` "an open breaker
 * ends the retries at once", `Resilience.debugInfo`); docs/fallback.md ("Under `timeout.attempt`, a `respond` or
 * `transform` that has not settled within it fails its endpoint with the attempt's `TimeoutError` (nothing was
 * sent …); a late answer is released").
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) and an origin where nothing listens; `reportError` stubbed to catch reports.
 *
 * Paths: plain call, `Request` input, fallback chain (a `respond` and a `transform` that hang under
 * `timeout.attempt`, a late `transform`, a refused endpoint), hedged chain (hanging `respond`/`transform` beside a
 * running request), followed redirect (to a host whose breaker's timeout has passed; credentials dropped), stacked
 * layers (an outer layer's attempt timeout), ky client, `resilientProxy` (chain route with a hanging `respond`, its
 * health path), degradation (nested level change), `execute` (with and without a named breaker, aborted, with
 * `fallback`), a named breaker's and a layer chain's own `.execute`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; docs/breakers.md already said what happens,
 * and the JSDoc and docs/health-and-events.md now say it too, so a plain `it` asserting that):
 * 1. docs/health-and-events.md "`health()` returns plain JSON: `status` (`unhealthy` when a breaker is open …), …
 *    every breaker (`state`, `failureCount`, …)" and `HealthSnapshot.breakers` JSDoc "Per-host breakers (and named
 *    ones, under `name`)". Observed: once a named breaker is named like a host the layer calls (a user guarding SDK
 *    calls to `api.example` with `execute(fn, { breaker: "api.example" })` beside plain `fetch`es to it), `health()`
 *    and `debugInfo()` list one breaker under that key, the named one: the host's own breaker, open, is gone from
 *    `breakers`, while `status` says `unhealthy` because of it, so nothing listed explains the status, and the host's
 *    `openUntil`, `lastError` and counts cannot be read. src/http/health.ts `createHealth`: the named breakers are
 *    `breakers.set(name, …)` into the same Map after the hosts ("one named like a host takes its place there").
 *
 * Held (plain `it`):
 * - Plain call 503, 503 (threshold 2): `retry` (key host, url without query or fragment, reason `status 503`), then
 *   `breaker` closed → open, then `request` (status 503, attempts 2); `recentErrors` keyed by host, URL cut.
 * - `Request` input: the same payloads, its method; `debugInfo()` keyed by host.
 * - Chain whose `respond` and `transform` hang under `timeout.attempt` (test clock): `fallback` events with the
 *   attempt's `TimeoutError` as reason and the next endpoint as `next`, then `request` last (attempts 2: the first
 *   endpoint's 503 and the spare's answer; the `respond` and the `transform` are no attempts), the call served by
 *   the fourth endpoint at 200 ms; the `transform`'s declared host hears nothing; the late `transform` result sends
 *   nothing and fires no event; `health().fallback` counts both as failed calls.
 * - Hedged chain (delay 10) with a request that never answers beside a hanging `respond` and `transform`: each
 *   `fallback` event's `next` is the entry already running; the call resolves with the last answer (a 503).
 * - Redirect to a host whose breaker's `timeout` has passed: `redirect` first, then that host's `open → half_open`
 *   (the hop asked it), then `half_open → closed`, then `request`; credentials named (never valued) in `dropped`.
 * - Degradation: a listener that degrades again is heard out at once; later listeners hear the inner change first;
 *   the outer `degrade()` returns the level it made.
 * - `execute`: `retry` events (key the breaker's name or `"execute"`, url `""`, reason the error's name or a thrown
 *   value's kind, `retryAfter` false); another run opening the named breaker ends a waiting run's retries at once
 *   (no clock moved) with its last failure; totals/failures keyed by the breaker's name, `url` `""`; an aborted run
 *   left out; a run a `fallback` answered counted as failed; a named breaker's and a layer chain's own `.execute`
 *   counted nowhere but there (their `breaker`/`fallback` events fire, the chain's reason with its URL cut).
 * - The transport's refusal (a header Node's fetch will not send) on a plain call, a `Request`, through an inner
 *   layer and through ky: one `request` event (`TypeError`, attempts 0), nothing counted (totals, error rate,
 *   degradation window, budget tokens), nothing sent. A `Request` body stream that fails after the read-ahead:
 *   the same.
 * - Stacked layers: an outer attempt timeout aborts the inner call: the inner's `request` says `aborted` and counts
 *   nothing; the outer counts one failure.
 * - `replay`: a string, a `Blob` and a `Request` body over `maxReplayBytes` each fire it (url cut, bytes, limit);
 *   a `ReadableStream` given in `init` does not.
 * - Listeners: subscribed twice, called once; a stale unsubscribe leaves the newer subscription; one subscribed or
 *   re-subscribed during an emit is not called for it, one unsubscribed during it is not; a throwing and a
 *   rejecting listener are reported through `reportError`, a never-settling async one does not hold the call;
 *   `on("requests")` is a `TypeError` listing the eight names.
 * - `resilientProxy`: a chain route whose `respond` hangs under `timeout.attempt` is served by the next endpoint;
 *   the health path's JSON counts one good call and the `respond` as a failed chain call.
 * - `clearHistory()` zeroes totals, failures and `errorRate`, keeps the degradation window; on the test clock an
 *   `execute` run counts in `errorRate` for 55 to 60 s by its 5-second step (a success at 4,999 ms until 60 s, a
 *   failure at 5 s until 65 s), `status` `degraded` meanwhile.
 * - A refused origin as a chain's first endpoint: `retry` (`connection refused`), `fallback`, `request` in that order.
 *
 * Docs-silent (not pinned):
 * - `ExecuteOptions.fallback` says it is "called with the last error"; when attempts run out it gets the
 *   `RetryExhaustedError` wrapping that error (its `cause`), as `debugInfo()` lists `RetryExhaustedError` where the
 *   `retry` events said `Error`.
 * - A chain's `fallback` event names a refused connection `TypeError: fetch failed`, where the `retry` event of
 *   the same attempt says `connection refused`.
 * - Through the ky client with ky's own `timeout`, an upstream that is too slow ends as the caller's abort: the
 *   `request` event says `aborted` and neither `health()` nor the degradation triggers count it.
 * - `RequestEvent`'s JSDoc says "Emitted once per settled `resilience.fetch` call"; a call refused at once (the
 *   caller's mistake) or a `data:` URL settles with none, as the guide says.
 * - "Subscribed twice at once, registered once" makes a swap (`const next = on(n, l); previousOff()`) with the
 *   same function end the new subscription too.
 * - `memoryStore()` never fires a `store` event (its writes cannot fail); only kvStore says `ok` per write.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const names = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

type Recorded = [string, Record<string, unknown>];
function record(layer: Pick<Resilience, "on">): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of names) layer.on(name, (event) => seen.push([name, { ...(event as object) }]));
  return seen;
}
const of = (seen: Recorded[], name: string) => seen.filter(([n]) => n === name).map(([, e]) => e);
const order = (seen: Recorded[]) => seen.map(([n]) => n);

function answer(status: number, headers: Record<string, string> = {}) {
  return (h: { res: ServerResponse }) => {
    h.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) h.res.setHeader(k, v);
    h.res.end(status === 200 ? "ok" : "no");
  };
}

/** Real event-loop turns until `ready()` holds. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(ready()).toBe(true);
}

describe("defects", () => {
  it("health() lists a named breaker named like a host in that host's place, as docs/breakers.md says", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 }, breaker: { failureThreshold: 1 } });
    a.on(answer(503));
    await (await layer.fetch(`${a.base}/jobs`)).text(); // the host's breaker opens
    expect(await layer.execute(() => "done", { breaker: a.host })).toBe("done"); // SDK work guarded by name
    const health = layer.health();
    expect(health.status).toBe("unhealthy"); // the open host makes it so
    // First pinned as a defect against "every breaker"; docs/breakers.md had said, and the JSDoc and
    // docs/health-and-events.md now say too, that the named one is listed in the host's place.
    expect(Object.keys(health.breakers)).toEqual([a.host]);
    expect(health.breakers[a.host]?.state).toBe("closed");
  });
});

describe("plain call and Request input", () => {
  it("fires retry, breaker, then request, with cut URLs, and debugInfo keys the failure by host", async () => {
    a.on(answer(503));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 }, breaker: { failureThreshold: 2 } });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/x?key=SECRET#tok=T`);
    expect(res.status).toBe(503);
    expect(order(seen)).toEqual(["retry", "breaker", "request"]);
    expect(of(seen, "retry")).toEqual([
      { key: a.host, url: `${a.base}/x`, attempt: 1, delay: 1, reason: "status 503", retryAfter: false },
    ]);
    expect(of(seen, "breaker")).toEqual([
      expect.objectContaining({
        key: a.host,
        from: "closed",
        to: "open",
        reason: "2 failures in a row (last: status 503)",
      }),
    ]);
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({ key: a.host, url: `${a.base}/x`, method: "GET", status: 503, attempts: 2 }),
    ]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: a.host, url: `${a.base}/x`, status: 503 })]);
    expect(JSON.stringify([seen, info])).not.toMatch(/SECRET|tok=T/);
  });

  it("a Request input fires the same events, with its method", async () => {
    let n = 0;
    a.on((h) => answer(++n === 1 ? 502 : 200)(h));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const seen = record(layer);
    const res = await layer.fetch(new Request(`${a.base}/r?key=SECRET`, { method: "PUT", body: "hi" }));
    expect(res.status).toBe(200);
    expect(order(seen)).toEqual(["retry", "request"]);
    expect(of(seen, "retry")[0]).toMatchObject({ key: a.host, url: `${a.base}/r`, reason: "status 502" });
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({ key: a.host, url: `${a.base}/r`, method: "PUT", status: 200, attempts: 2 }),
    ]);
    expect(a.hits.map((hit) => hit.body)).toEqual(["hi", "hi"]);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
  });
});

describe("a chain whose respond or transform hangs under timeout.attempt", () => {
  it("passes each over with the attempt's TimeoutError, counts them as failed, and sends nothing late", async () => {
    const clock = new TestClock(0);
    let cached = false;
    let shaped = false;
    let release: (value: unknown) => void = () => {};
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 100 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "first", url: `${c.base}/v1` },
            {
              name: "cache",
              respond: () => {
                cached = true;
                return new Promise<Response>(() => {});
              },
            },
            {
              name: "shaped",
              url: `${b.base}/v1`,
              transform: (req) => {
                shaped = true;
                return new Promise((resolve) => {
                  release = () => resolve(req);
                });
              },
            },
            { name: "spare", url: `${a.base}/v1` },
          ],
        },
      ]),
    });
    c.on(answer(503));
    const seen = record(layer);
    const call = layer.fetch(`${c.base}/v1/job?key=SECRET`);
    await until(() => cached);
    await clock.advance(100); // the respond's time runs out
    await until(() => shaped);
    await clock.advance(100); // the transform's too
    const res = await call;
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true, attempts: 2 });
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "first", reason: "status 503", next: "cache" },
      { chain: "gen", from: "cache", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "shaped" },
      { chain: "gen", from: "shaped", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "spare" },
    ]);
    expect(order(seen).at(-1)).toBe("request");
    expect(of(seen, "request")).toEqual([
      expect.objectContaining({ key: "gen", url: `${c.base}/v1/job`, status: 200, attempts: 2, durationMs: 200 }),
    ]);
    const events = seen.length;
    release(undefined); // the transform answers late: nothing goes out
    await clock.advance(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(b.hits).toHaveLength(0);
    expect(seen).toHaveLength(events);
    const info = layer.debugInfo();
    expect(info.breakers[b.host]).toBeUndefined(); // the transform's declared host heard nothing
    expect(info.totals).toEqual({ calls: 1, failures: 0 });
    expect(info.fallback.gen?.fallbacks).toMatchObject({
      cache: { calls: 1, successes: 0 },
      shaped: { calls: 1, successes: 0 },
      spare: { calls: 1, successes: 1 },
    });
    expect(JSON.stringify([seen, info])).not.toContain("SECRET");
  });

  it("in a hedged chain, each pass-over names the entry already running as next", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 100 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 10 },
          endpoints: [
            { name: "slow", url: `${a.base}/v1` },
            { name: "cache", respond: () => new Promise<Response>(() => {}) },
            { name: "shaped", url: `${b.base}/v1`, transform: () => new Promise(() => {}) },
            { name: "spare", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    a.on(() => {}); // never answers
    c.on(answer(503));
    const seen = record(layer);
    const call = layer.fetch(`${a.base}/v1/x`);
    await a.nth(1);
    await clock.advance(10); // cache starts
    await clock.advance(10); // shaped starts
    await clock.advance(10); // spare starts
    await c.nth(1);
    await until(() => of(seen, "fallback").length === 1);
    for (let i = 0; i < 10; i++) await clock.advance(10);
    const res = await call;
    expect(res.status).toBe(503);
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "spare", reason: "status 503", next: "slow" },
      { chain: "gen", from: "slow", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "cache" },
      { chain: "gen", from: "cache", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "shaped" },
      { chain: "gen", from: "shaped", reason: "TimeoutError: attempt timeout of 100 ms exceeded" },
    ]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: "gen", status: 503, attempts: 2 })]);
  });
});

describe("a followed redirect", () => {
  it("tells the hop before its host is asked: redirect, then the hop host's half-open, then its close", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1000, successThreshold: 1 },
    });
    b.on(answer(503));
    await (await layer.fetch(`${b.base}/open`)).text();
    await clock.advance(1000);
    b.on(answer(200));
    a.on(answer(302, { location: `${b.base}/to?key=SECRET` }));
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/from`, {
      headers: { authorization: "Bearer TOKEN", "x-api-key": "KEY", accept: "text/plain" },
    });
    expect(res.status).toBe(200);
    expect(order(seen)).toEqual(["redirect", "breaker", "breaker", "request"]);
    expect(of(seen, "redirect")).toEqual([
      {
        from: `${a.base}/from`,
        to: `${b.base}/to`,
        status: 302,
        crossOrigin: true,
        dropped: ["authorization", "x-api-key"],
      },
    ]);
    expect(of(seen, "breaker")).toEqual([
      expect.objectContaining({ key: b.host, from: "open", to: "half_open", openUntil: null }),
      expect.objectContaining({ key: b.host, from: "half_open", to: "closed" }),
    ]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: a.host, status: 200, attempts: 1 })]);
    const hop = b.hits.at(-1);
    expect(hop?.headers.authorization).toBeUndefined();
    expect(hop?.headers.accept).toBe("text/plain");
    expect(JSON.stringify(seen)).not.toMatch(/SECRET|TOKEN|KEY"/);
  });
});

describe("degradation", () => {
  it("hears out a listener that changes the level again, at once", () => {
    const layer = createResilience({ degradation: degradation({}) });
    const heard: string[] = [];
    layer.on("degradation", (e) => {
      heard.push(`first ${e.from}->${e.to}`);
      if (e.to === "high") layer.degradation.degrade("again");
    });
    layer.on("degradation", (e) => heard.push(`second ${e.from}->${e.to} ${e.percentage}`));
    const made = layer.degradation.degrade("queue full");
    expect(heard).toEqual(["first full->high", "first high->medium", "second high->medium 60", "second full->high 80"]);
    expect(made).toMatchObject({ name: "high", reason: "queue full" });
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "medium", reason: "again" });
  });
});

describe("execute", () => {
  it("fires retry events, and a breaker opened by another run ends a waiting run's retries at once", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 100, maxDelay: 100, jitter: "none" },
    });
    layer.breaker("gpu", { failureThreshold: 2 });
    const seen = record(layer);
    const first = new Error("first");
    const waiting = rejection(
      layer.execute(
        () => {
          throw first;
        },
        { breaker: "gpu" },
      ),
    );
    await clock.waitForTimers(1);
    const other = await rejection(
      layer.execute(
        () => {
          throw new Error("second");
        },
        { breaker: "gpu", retry: false },
      ),
    );
    expect(other).toBeInstanceOf(Error);
    expect(await waiting).toBe(first); // no clock moved: the opening ended the wait
    expect(clock.now()).toBe(0);
    expect(of(seen, "retry")).toEqual([
      { key: "gpu", url: "", attempt: 1, delay: 100, reason: "Error", retryAfter: false },
    ]);
    expect(of(seen, "breaker")).toEqual([expect.objectContaining({ key: "gpu", from: "closed", to: "open" })]);
    expect(of(seen, "request")).toEqual([]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 2, failures: 2 });
    expect(info.recentErrors.map((r) => [r.key, r.url])).toEqual([
      ["gpu", ""],
      ["gpu", ""],
    ]);
    expect(info.errorRate).toBe(1);
  });

  it("keys work without a breaker as execute, leaves an aborted run out, counts a run a fallback answered", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 50, maxDelay: 50, jitter: "none" },
    });
    const seen = record(layer);
    const controller = new AbortController();
    const aborted = rejection(
      layer.execute(
        () => {
          throw new Error("x");
        },
        { signal: controller.signal },
      ),
    );
    await clock.waitForTimers(1);
    controller.abort(new Error("left"));
    expect(await aborted).toEqual(new Error("left"));
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    const answering = layer.execute(
      () => {
        throw "not an Error";
      },
      { retry: { maxAttempts: 2 }, fallback: () => "cached" },
    );
    await clock.waitForTimers(1);
    await clock.advance(50); // the wait before its second attempt
    expect(await answering).toBe("cached");
    expect(of(seen, "retry")).toEqual([
      { key: "execute", url: "", attempt: 1, delay: 50, reason: "Error", retryAfter: false },
      { key: "execute", url: "", attempt: 1, delay: 50, reason: "string", retryAfter: false },
    ]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: "execute", url: "" })]);
  });

  it("a named breaker's and a layer chain's own execute count only there, their events firing", async () => {
    const layer = createResilience({ fallback: fallback([]) });
    const seen = record(layer);
    const chain = layer.fallback.chain<number, number>("work");
    chain.add(
      () => {
        throw new Error("GET https://api.example/v1?api_key=SECRET failed");
      },
      { name: "one" },
    );
    chain.add((n) => n * 2, { name: "two" });
    expect(await chain.execute(3)).toBe(6);
    const named = layer.breaker("db", { failureThreshold: 1 });
    await rejection(
      named.execute(() => {
        throw new Error("down");
      }),
    );
    expect(of(seen, "fallback")).toEqual([
      { chain: "work", from: "one", reason: "Error: GET https://api.example/v1 failed", next: "two" },
    ]);
    expect(of(seen, "breaker")).toEqual([expect.objectContaining({ key: "db", from: "closed", to: "open" })]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 0, failures: 0 });
    expect(info.status).toBe("unhealthy");
    expect(info.fallback.work).toMatchObject({ lastSuccessfulFallback: "two", overallSuccessRate: 1 });
    expect(JSON.stringify([seen, info])).not.toContain("SECRET");
  });
});

describe("what nothing counts", () => {
  function counted(layer: Resilience) {
    const info = layer.debugInfo();
    return {
      totals: info.totals,
      errorRate: info.errorRate,
      samples: info.degradation?.window.samples,
      tokens: info.budget?.tokens,
    };
  }
  const options = () => ({
    retry: { ...fast, maxAttempts: 2 },
    degradation: degradation({}),
    budget: { ratio: 0.5, minPerSecond: 10 },
  });
  const nothing = { totals: { calls: 0, failures: 0 }, errorRate: 0, samples: 0, tokens: 10 };
  const refused = (key: string, url: string) => [
    ["request", expect.objectContaining({ key, url, error: "TypeError", attempts: 0, outcome: "error" })],
  ];

  it("a call the transport refused, on a plain call, a Request, through an inner layer and through ky", async () => {
    const plain = createResilience(options());
    const seenPlain = record(plain);
    expect(
      await rejection(plain.fetch(`${a.base}/x?key=SECRET`, { headers: { expect: "100-continue" } })),
    ).toBeInstanceOf(TypeError);
    expect(seenPlain).toEqual(refused(a.host, `${a.base}/x`));
    expect(counted(plain)).toEqual(nothing);

    const request = createResilience(options());
    const seenRequest = record(request);
    const keepAlive = new Request(`${a.base}/x`, { headers: { "keep-alive": "timeout=5" } });
    expect(await rejection(request.fetch(keepAlive))).toBeInstanceOf(TypeError);
    expect(seenRequest).toEqual(refused(a.host, `${a.base}/x`));
    expect(counted(request)).toEqual(nothing);

    const inner = createResilience(options());
    const outer = createResilience({ ...options(), fetch: inner.fetch });
    const seenOuter = record(outer);
    expect(await rejection(outer.fetch(`${a.base}/x`, { headers: { upgrade: "websocket" } }))).toBeInstanceOf(
      TypeError,
    );
    expect(seenOuter).toEqual(refused(a.host, `${a.base}/x`));
    expect(counted(outer)).toEqual(nothing);
    expect(counted(inner)).toEqual(nothing);

    const layer = createResilience(options());
    const seenKy = record(layer);
    const api = createClient({ resilience: layer });
    expect(await rejection(api.get(`${a.base}/x`, { headers: { expect: "100-continue" } }))).toBeInstanceOf(TypeError);
    expect(seenKy).toEqual(refused(a.host, `${a.base}/x`));
    expect(counted(layer)).toEqual(nothing);
    expect(a.hits).toHaveLength(0);
  });

  it("a Request body stream that fails after the read-ahead", async () => {
    const layer = createResilience({ ...options(), maxReplayBytes: 4 });
    const seen = record(layer);
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ < 2) controller.enqueue(new Uint8Array(5));
        else controller.error(new Error("source gone"));
      },
    });
    const request = new Request(`${a.base}/up`, { method: "PUT", body, duplex: "half" } as RequestInit);
    expect(await rejection(layer.fetch(request))).toBeInstanceOf(TypeError);
    expect(seen).toEqual([["replay", { url: `${a.base}/up`, bytes: 5, limit: 4 }], ...refused(a.host, `${a.base}/up`)]);
    expect(counted(layer)).toEqual(nothing);
  });

  it("an inner layer's call an outer attempt timeout aborted", async () => {
    const clock = new TestClock(0);
    const inner = createResilience({ clock, retry: { ...fast, maxAttempts: 1 } });
    const outer = createResilience({
      clock,
      fetch: inner.fetch,
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 50 },
    });
    const seenInner = record(inner);
    const seenOuter = record(outer);
    a.on(() => {});
    const call = rejection(outer.fetch(`${a.base}/slow`));
    await a.nth(1);
    await clock.advance(50);
    expect(await call).toMatchObject({ name: "TimeoutError" });
    expect(of(seenInner, "request")).toEqual([expect.objectContaining({ outcome: "aborted", attempts: 1 })]);
    expect(inner.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(of(seenOuter, "request")).toEqual([
      expect.objectContaining({ error: "TimeoutError", outcome: "error", attempts: 1 }),
    ]);
    expect(outer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });
});

describe("replay", () => {
  it("fires for bodies too large to keep, never for a stream given in init", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 }, maxReplayBytes: 10 });
    const seen: unknown[] = [];
    layer.on("replay", (event) => seen.push(event));
    await (await layer.fetch(`${a.base}/s?key=SECRET`, { method: "PUT", body: "x".repeat(20) })).text();
    await (await layer.fetch(`${a.base}/b`, { method: "PUT", body: new Blob(["y".repeat(15)]) })).text();
    await (await layer.fetch(new Request(`${a.base}/r`, { method: "PUT", body: "z".repeat(25) }))).text();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(30));
        controller.close();
      },
    });
    const streamed = await layer.fetch(`${a.base}/st`, { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    expect(streamed.status).toBe(200);
    expect(seen).toEqual([
      { url: `${a.base}/s`, bytes: 20, limit: 10 },
      { url: `${a.base}/b`, bytes: 15, limit: 10 },
      { url: `${a.base}/r`, bytes: 25, limit: 10 },
    ]);
    expect(a.hits.at(-1)?.bytes.length).toBe(30);
  });
});

describe("listeners", () => {
  it("as EventTarget: once per listener, stale unsubscribes harmless, changes during an emit apply to the next", async () => {
    const layer = createResilience({ retry: false });
    const heard: string[] = [];
    const twice = () => heard.push("twice");
    const late = () => heard.push("late");
    const moved = () => heard.push("moved");
    const gone = () => heard.push("gone");
    const own = () => heard.push("own");
    let offMoved: () => void = () => {};
    let offGone: () => void = () => {};
    let first = true;
    layer.on("request", twice);
    layer.on("request", twice); // registered once
    layer.on("request", () => {
      heard.push("adder");
      if (!first) return;
      first = false;
      layer.on("request", late); // added during the emit: not called for it
      offMoved(); // subscribed again during the emit: a new registration, not called for it
      offMoved = layer.on("request", moved);
      offGone(); // unsubscribed during the emit: not called
    });
    offMoved = layer.on("request", moved);
    offGone = layer.on("request", gone);
    const offOwn = layer.on("request", own);
    offOwn();
    layer.on("request", own);
    offOwn(); // a stale unsubscribe, called late: the newer subscription stays
    await (await layer.fetch(`${a.base}/1`)).text();
    expect(heard).toEqual(["twice", "adder", "own"]);
    heard.length = 0;
    await (await layer.fetch(`${a.base}/2`)).text();
    expect(heard).toEqual(["twice", "adder", "own", "late", "moved"]);
  });

  it("reports a throwing and a rejecting listener, and does not wait for one that never settles", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (error: unknown) => reported.push(error));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 }, breaker: { failureThreshold: 1 } });
    const thrown = new Error("listener threw");
    const rejected = new Error("listener rejected");
    for (const name of names) {
      layer.on(name, () => {
        throw thrown;
      });
      layer.on(name, async () => {
        throw rejected;
      });
      layer.on(name, () => new Promise<void>(() => {}));
    }
    a.on(answer(503));
    const res = await layer.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // breaker (opens at the first 503, so no retry) and request: each throw and each rejection reported
    expect(reported.filter((e) => e === thrown)).toHaveLength(2);
    expect(reported.filter((e) => e === rejected)).toHaveLength(2);
  });

  it("refuses a misspelt name at once, listing the eight", () => {
    const layer = createResilience();
    expect(() => layer.on("requests" as never, () => {})).toThrow(TypeError);
    expect(() => layer.on("requests" as never, () => {})).toThrow(
      /retry, request, breaker, fallback, degradation, replay, redirect, store/,
    );
  });
});

describe("resilientProxy", () => {
  it("serves a chain route past a respond that hangs, and its health counts one good call", async () => {
    const clock = new TestClock(0);
    let cached = false;
    const proxy = resilientProxy({
      resilience: { clock, retry: { ...fast, maxAttempts: 1 }, timeout: { attempt: 100 } },
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "first", url: `${c.base}/v1` },
              {
                name: "cache",
                respond: () => {
                  cached = true;
                  return new Promise<Response>(() => {});
                },
              },
              { name: "spare", url: `${a.base}/v1` },
            ],
          },
        },
      ],
    });
    c.on(answer(503));
    const served = proxy.fetch(new Request("http://proxy.example/v1/job?key=SECRET"), {}, ctx);
    await until(() => cached);
    await clock.advance(100);
    const res = await served;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("spare");
    expect(res.headers.get("x-resilience-attempts")).toBe("2");
    const health = await (await proxy.fetch(new Request("http://proxy.example/__resilience/health"), {}, ctx)).json();
    expect(health).toMatchObject({ status: "healthy", errorRate: 0 });
    expect(health.fallback.gen.fallbacks).toMatchObject({
      first: { calls: 1, successes: 0 },
      cache: { calls: 1, successes: 0 },
      spare: { calls: 1, successes: 1 },
    });
    expect(JSON.stringify(health)).not.toContain("SECRET");
  });
});

describe("analytics", () => {
  it("clearHistory forgets totals, failures and the error rate, not the degradation window", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 }, degradation: degradation({}) });
    a.on(answer(503));
    await (await layer.fetch(`${a.base}/x`)).text();
    await layer.execute(() => 1);
    expect(layer.debugInfo()).toMatchObject({ totals: { calls: 2, failures: 1 }, errorRate: 0.5 });
    layer.analytics.clearHistory();
    const info = layer.debugInfo();
    expect(info).toMatchObject({ totals: { calls: 0, failures: 0 }, errorRate: 0, recentErrors: [] });
    expect(info.degradation?.window).toMatchObject({ samples: 2, errorRate: 0.5 });
  });

  it("an execute run counts in the error rate for 55 to 60 s, by its 5-second step", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock, retry: false });
    await clock.advance(4_999);
    expect(await layer.execute(() => "late in its step")).toBe("late in its step");
    await clock.advance(1);
    await rejection(
      layer.execute(() => {
        throw new Error("first in its step");
      }),
    );
    expect(layer.health()).toMatchObject({ errorRate: 0.5, status: "degraded" });
    await clock.advance(54_999); // 59,999 ms: both still counted
    expect(layer.health().errorRate).toBe(0.5);
    await clock.advance(1); // 60 s: the success (55.001 s old) is gone, the failure (55 s old) stays
    expect(layer.health().errorRate).toBe(1);
    await clock.advance(4_999); // 64,999 ms: the failure is 59.999 s old
    expect(layer.health().errorRate).toBe(1);
    await clock.advance(1); // 65 s: gone after 60 s
    expect(layer.health()).toMatchObject({ errorRate: 0, status: "healthy" });
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 1 });
  });
});

describe("a refused origin in a chain", () => {
  it("retries it under connection refused, then passes it over", async () => {
    const gone = await refusedOrigin();
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "g",
          endpoints: [
            { name: "p", url: `${gone}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const seen = record(layer);
    const res = await layer.fetch(`${gone}/v1/x`);
    expect(res.status).toBe(200);
    expect(order(seen)).toEqual(["retry", "fallback", "request"]);
    expect(of(seen, "retry")[0]).toMatchObject({ reason: "connection refused", attempt: 1 });
    expect(of(seen, "fallback")[0]).toMatchObject({ from: "p", next: "q" });
    expect(of(seen, "request")[0]).toMatchObject({ key: "g", status: 200, attempts: 3 });
  });
});
