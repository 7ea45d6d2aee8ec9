/**
 * Outside-in attack on docs/health-and-events.md, from inside the listeners: what a listener sees when it reads
 * `health()`/`debugInfo()` as an event fires, what happens when it re-enters the layer (`fetch`, `degrade()`,
 * `breaker(name).reset()`) or aborts the very call that fired the event, and the analytics numbers and windows on a
 * `TestClock` after mixed outcomes.
 *
 * Docs:
 * - docs/health-and-events.md: "`errorRate` over the last minute (in twelve 5-second steps: a call counts for 55 to
 *   60 seconds)"; "`status` (`unhealthy` when a breaker is open, `degraded` above a 10% error rate)"; "Work run
 *   through `execute(fn)` counts there too … by the outcome of the work itself (a `fallback` answering for it leaves
 *   it failed); a run its caller aborted is left out. A named breaker's own `.execute(fn)` and a chain's
 *   `.execute(input)` count only in that breaker's and that chain's statistics."; "`debugInfo()` adds totals (of calls
 *   that settled with a response or an error: a call its caller aborted is left out, as it is from the error rate and
 *   the degradation triggers)"; "`analytics.clearHistory()` forgets the totals, the failures and the error rate's
 *   minute (`errorRate` reads 0 after it; the degradation level and its window belong to the level …)"; "`retry`
 *   fires before each wait"; "`request` fires once per call the layer started, when it settles"; "A call whose
 *   `Request` body could not be read fires it (an `error` of `TypeError`, `attempts: 0`) … but nothing counts it";
 *   "`redirect` … told as it turns to the next hop, before that hop's host is asked"; "`degradation` fires on every
 *   level change"; "an event goes to the listeners subscribed when it fired … one that subscribes again while it
 *   runs, or adds another, is not called again for that event".
 * - docs/degradation.md: "Automatic triggers are fed by every call that settles without the caller aborting it".
 * - docs/fallback.md: "a new chain for any async work, reported in `health().fallback` beside the others (an entry it
 *   passes over is a `fallback` event, as an endpoint is …)".
 * - docs/cloudflare.md: "A request for no route, or for the health path, sends nothing upstream"; "`400` when the
 *   request failed of the client's own making".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) answering by path (status in the path, a 307 to the other server).
 *
 * Paths: plain call, `Request` input (a body stream that fails), chain (503 then a `respond` endpoint; a layer
 * chain's `.execute`), redirect (307 to another host), degradation (by hand and by the error-rate trigger, a
 * rewrite rule), `execute` (with `fallback`, with a named breaker, aborted), named breaker `.execute`,
 * `resilientProxy` and its health endpoint.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-second session 1 was answered
 * by the docs: degradation.md now says such a call has fed the triggers already and stays in the window; plain `it`):
 * 1. docs/health-and-events.md "`debugInfo()` adds totals (…: a call its caller aborted is left out, as it is from
 *    the error rate and the degradation triggers)", docs/degradation.md "Automatic triggers are fed by every call
 *    that settles without the caller aborting it". Observed: a `degradation` listener that aborts the caller's
 *    controller (stop the work in flight when the level drops) makes the call that moved the level reject with the
 *    abort's reason, its `request` event `outcome: "aborted"`, and it is left out of `totals` and `errorRate`, but
 *    its sample stays in the degradation window (`debugInfo().degradation.window.samples` 2 where `totals.calls` is
 *    1) and feeds the triggers for the next minute. src/http/resilient-fetch.ts `send` calls `levels.observe(…)`
 *    (which emits the event) before its second `heardAbort()`; the code's own comment says such a call is "counted
 *    nowhere". Path: plain call under the error-rate trigger. Test "defect 1: …".
 *
 * Held (plain `it`):
 * - A `breaker` listener (closed → open) reading `health()` sees the host open with the event's `gen`, `openUntil`
 *   and reason, `status` `unhealthy`; a `fetch` it makes to that host is refused (`CircuitOpenError`, nothing sent),
 *   and its `request` event comes before the outer call's; the outer's `debugInfo().totals` counts both.
 * - A `degradation` listener reading `health()`/`debugInfo()` sees the new level; a `fetch` it makes goes at that
 *   level (query rewritten, `getResilienceInfo(..).degradationLevel`); a `request` listener it adds hears that call.
 * - A listener that aborts the caller from a `retry`, `redirect`, `breaker`, `fallback` or `replay` event: the call
 *   rejects with that reason, its `request` event (`aborted`) is last, nothing more is sent (not the hop, not the next
 *   endpoint, not the retry), no timer is left, and totals and `errorRate` leave it out.
 * - A `retry` listener finds the retry already paid (`retriesAllowed` +1) and no wait scheduled yet; a `request`
 *   listener finds its own call in `debugInfo().totals`.
 * - Mixed outcomes: 200, 404, 400 count as good, 429 and 500 as failed; a chain answered by `respond` counts once
 *   under the chain's name; `execute` with a `fallback` that answered counts failed (`"execute"`, `url` ""); a
 *   succeeding `execute` counts; an aborted `execute`, a named breaker's `.execute`, a layer chain's `.execute` and
 *   a `Request` whose body could not be read (its event: `TypeError`, `attempts: 0`) count nowhere: totals 8/3,
 *   `errorRate` 0.375, `degraded`.
 * - TestClock windows: a call 4,999 ms after the layer was made counts in `errorRate` until 60,000 ms (55,001 ms);
 *   the degradation window keeps it a full 60 s; `clearHistory()` zeroes `errorRate` and totals, not the
 *   degradation window; a call just after it counts a full 60 s.
 * - `resilientProxy`: after 200, 503 and 404 from the upstream, a path with no route, the health path and a client
 *   body that failed (400), the health JSON reads `errorRate` 1/3, `degraded`, one breaker with `failureCount` 1.
 *
 * Docs-silent (not pinned):
 * - After a redirect, a `retry` event's `url` (and the `request` event's, and `debugInfo()`'s failure) is the
 *   caller's URL and `key` the first host, though the 503 came from the hop: "where the failed attempt went" reads
 *   as the first URL the attempt was sent to.
 * - A `breaker` listener that calls `breaker(name).reset()` on the trip: the listeners after it hear `open` →
 *   `closed` (gen 2) before `closed` → `open` (gen 1), as `EventTarget` nests; their last event is not the state.
 *   `execute` then retries behind the closed breaker (three attempts, three trips and resets).
 * - A `fallback` listener that aborts the caller: the endpoint that had failed stays counted in the chain's
 *   statistics (calls 1, successes 0).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const T0 = 1_000_000;
const names = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
const calm = { memoryUsage: 1, cpuUsage: 1 };
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** Answers with the status the path names (`/s404`), a 307 to `b` for `/r…`, else 503. */
function byPath(hit: Hit): void {
  if (hit.path.startsWith("/r")) {
    hit.res.writeHead(307, { location: `${b.base}/t?tok=SECRET` });
    hit.res.end();
    return;
  }
  const m = /\/s(\d{3})/.exec(hit.path);
  hit.res.statusCode = m ? Number(m[1]) : 503;
  hit.res.end("x");
}

function recordAll(layer: Pick<Resilience, "on">): string[] {
  const seen: string[] = [];
  for (const name of names) layer.on(name, () => seen.push(name));
  return seen;
}

describe("defects", () => {
  it("defect 1, answered by the docs: a call a degradation listener aborted stays in the window, as degradation.md says", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: false,
      degradation: degradation({ minSamples: 2, triggers: calm }),
    });
    a.on(byPath);
    const outcomes: string[] = [];
    const ctl = new AbortController();
    layer.on("degradation", () => ctl.abort(new Error("level dropped: stop")));
    layer.on("request", (e) => outcomes.push(e.outcome));
    expect((await layer.fetch(`${a.base}/x`)).status).toBe(503);
    await clock.advance(1_500);
    const error = await rejection(layer.fetch(`${a.base}/x`, { signal: ctl.signal }));
    expect(String(error)).toContain("level dropped");
    expect(outcomes).toEqual(["response", "aborted"]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.degradation?.name).toBe("high");
    // First pinned expecting the window to leave it out as the totals do; it fed the triggers before the listener
    // aborted it (its own sample set off the move), which degradation.md now says.
    expect(info.degradation?.window.samples).toBe(2);
    const doc = readFileSync(new URL("../../docs/degradation.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "Automatic triggers are fed by every call that settles without the caller aborting it (one a `degradation` listener aborts, on the move its own settling set off, has fed them already and stays in the window, though it rejects with the abort's reason and the error rate and totals leave it out)",
    );
  });
});

describe("listeners that read and re-enter the layer", () => {
  it("a breaker listener sees health() open as the event says; its own fetch is refused, nothing sent", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
    });
    a.on(byPath);
    const seen: unknown[] = [];
    let nested: Promise<string> | undefined;
    layer.on("breaker", (e) => {
      const h = layer.health();
      const entry = h.breakers[a.host];
      seen.push([e.to, entry?.state, entry?.gen === e.gen, entry?.openUntil === e.openUntil, entry?.reason, h.status]);
      nested ??= layer.fetch(`${a.base}/n`).then(
        (r) => `status ${r.status}`,
        (err: Error) => err.name,
      );
    });
    layer.on("request", (e) => seen.push([e.url, e.status ?? e.error, e.attempts, layer.debugInfo().totals.calls]));
    const res = await layer.fetch(`${a.base}/x?key=SECRET`);
    expect(res.status).toBe(503);
    expect(await nested).toBe("CircuitOpenError");
    expect(a.hits.map((h) => h.path)).toEqual(["/x?key=SECRET"]);
    expect(seen).toEqual([
      ["open", "open", true, true, "1 failure in a row (last: status 503)", "unhealthy"],
      [`${a.base}/n`, "CircuitOpenError", 0, 1],
      [`${a.base}/x`, 503, 1, 2],
    ]);
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 2 });
  });

  it("a degradation listener sees the new level; its fetch goes at it, heard by a request listener it adds", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      degradation: degradation({ minSamples: 200, triggers: calm, rules: [{ params: { quality: { query: "q" } } }] }),
    });
    const seen: unknown[] = [];
    let nested: Promise<Response> | undefined;
    layer.on("degradation", (e) => {
      seen.push([e.from, e.to, layer.health().degradationLevel, layer.debugInfo().degradation?.name]);
      layer.on("request", (r) => seen.push(["request", r.url, r.status]));
      nested ??= layer.fetch(`${a.base}/n?q=100&key=SECRET`);
    });
    const made = layer.degradation?.degrade("by hand");
    expect(made?.name).toBe("high");
    const res = await (nested as Promise<Response>);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("high");
    expect(a.hits.map((h) => new URL(h.path, a.base).searchParams.get("q"))).toEqual(["90"]);
    expect(seen).toEqual([
      ["full", "high", "high", "high"],
      ["request", `${a.base}/n`, 200],
    ]);
  });

  it("a retry listener finds the retry paid and no wait yet; a request listener finds its call counted", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" } });
    let n = 0;
    a.on((hit) => {
      n++;
      hit.res.statusCode = n < 3 ? 503 : 200;
      hit.res.end("x");
    });
    const seen: unknown[] = [];
    layer.on("retry", (e) => seen.push(["retry", e.attempt, layer.health().budget?.retriesAllowed, clock.pending()]));
    layer.on("request", (e) => seen.push(["request", e.attempts, layer.debugInfo().totals, clock.pending()]));
    const res = await clock.run(layer.fetch(`${a.base}/x`));
    expect(res.status).toBe(200);
    expect(seen).toEqual([
      ["retry", 1, 1, 0],
      ["retry", 2, 2, 0],
      ["request", 3, { calls: 1, failures: 0 }, 0],
    ]);
  });

  for (const kind of ["retry", "redirect", "breaker", "fallback", "replay"] as const) {
    it(`a ${kind} listener that aborts the caller: nothing more sent, no timer, counted nowhere`, async () => {
      const clock = new TestClock(T0);
      const layer = createResilience({
        clock,
        retry: { maxAttempts: 3, initialDelay: 50, jitter: "none" },
        breaker: { failureThreshold: kind === "breaker" ? 1 : 50 },
        maxReplayBytes: 4,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/c` },
              { name: "q", url: `${b.base}/c` },
            ],
          },
        ]),
      });
      a.on(byPath);
      const ctl = new AbortController();
      const seen = recordAll(layer);
      const outcomes: string[] = [];
      layer.on("request", (e) => outcomes.push(e.outcome));
      layer.on(kind, () => ctl.abort(new Error(`stopped by ${kind}`)));
      const url = kind === "redirect" ? `${a.base}/r` : kind === "fallback" ? `${a.base}/c/x` : `${a.base}/x`;
      const init: RequestInit = {
        signal: ctl.signal,
        ...(kind === "replay" ? { method: "PUT", body: "0123456789" } : {}),
      };
      const error = await clock.run(rejection(layer.fetch(url, init)));
      expect(String(error)).toContain(`stopped by ${kind}`);
      expect(seen.at(-1)).toBe("request");
      expect(seen.filter((s) => s === kind)).toHaveLength(1);
      expect(outcomes).toEqual(["aborted"]);
      expect(a.hits).toHaveLength({ retry: 1, redirect: 1, breaker: 1, fallback: 3, replay: 0 }[kind]);
      expect(b.hits).toHaveLength(0);
      expect(clock.pending()).toBe(0);
      const info = layer.debugInfo();
      expect(info.totals).toEqual({ calls: 0, failures: 0 });
      expect(info.errorRate).toBe(0);
      expect(info.recentErrors).toEqual([]);
    });
  }
});

describe("analytics after mixed outcomes", () => {
  it("counts calls and execute runs as documented, and leaves out what the docs leave out", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 100 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/c` },
            { name: "cached", respond: () => new Response("cached") },
          ],
        },
      ]),
    });
    a.on(byPath);
    const requests: unknown[] = [];
    const passed: unknown[] = [];
    layer.on("request", (e) => requests.push([e.key, e.url, e.status ?? e.error, e.attempts, e.outcome]));
    layer.on("fallback", (e) => passed.push([e.chain, e.from, e.next]));
    for (const s of [200, 404, 429, 500, 400]) await layer.fetch(`${a.base}/s${s}?key=SECRET`);
    const chained = await layer.fetch(`${a.base}/c/x?key=SECRET`);
    expect(getResilienceInfo(chained)).toMatchObject({ endpoint: "cached", fromFallback: true, attempts: 1 });
    const failing = () => {
      throw new Error("work failed");
    };
    expect(await layer.execute(failing, { retry: false, fallback: () => "answered" })).toBe("answered");
    expect(await layer.execute(() => 1, { retry: false })).toBe(1);
    await rejection(layer.breaker("svc").execute(failing));
    const thumb = layer.fallback
      .chain("thumb")
      .add(async () => Promise.reject(new Error("gpu down")), { name: "gpu" })
      .add(async () => "cpu", { name: "cpu" });
    expect(await thumb.execute(undefined)).toBe("cpu");
    const ctl = new AbortController();
    const aborted = layer.execute(
      () => new Promise((_resolve, reject) => setTimeout(() => reject(new Error("late")), 2)),
      { retry: false, signal: ctl.signal },
    );
    ctl.abort();
    await rejection(aborted);
    const unreadable = new ReadableStream({ pull: (c) => c.error(new TypeError("source broke")) });
    const init = { method: "PUT", body: unreadable, duplex: "half" } as RequestInit;
    expect(await rejection(layer.fetch(new Request(`${a.base}/s200`, init)))).toBeInstanceOf(TypeError);

    const h = `${a.host}`;
    expect(requests).toEqual([
      [h, `${a.base}/s200`, 200, 1, "response"],
      [h, `${a.base}/s404`, 404, 1, "response"],
      [h, `${a.base}/s429`, 429, 1, "response"],
      [h, `${a.base}/s500`, 500, 1, "response"],
      [h, `${a.base}/s400`, 400, 1, "response"],
      ["gen", `${a.base}/c/x`, 200, 1, "response"],
      [h, `${a.base}/s200`, "TypeError", 0, "error"],
    ]);
    expect(passed).toEqual([
      ["gen", "p", "cached"],
      ["thumb", "gpu", "cpu"],
    ]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 8, failures: 3 });
    expect(info.errorRate).toBe(3 / 8);
    expect(info.status).toBe("degraded");
    expect(info.recentErrors.map((e) => [e.key, e.url, e.status, e.error])).toEqual([
      [h, `${a.base}/s429`, 429, undefined],
      [h, `${a.base}/s500`, 500, undefined],
      ["execute", "", undefined, "RetryExhaustedError"],
    ]);
    expect(info.breakers.svc).toMatchObject({ state: "closed", failureCount: 1 });
    expect(info.fallback.thumb).toMatchObject({ lastSuccessfulFallback: "cpu" });
    expect(JSON.stringify(info)).not.toContain("SECRET");
  });
});

describe("windows on a TestClock", () => {
  it("errorRate keeps a call 55 to 60 s by 5 s steps; the degradation window 60 s; clearHistory only the first", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: false,
      degradation: degradation({ minSamples: 200, triggers: calm }),
    });
    a.on(byPath);
    await clock.advance(4_999);
    expect((await layer.fetch(`${a.base}/bad`)).status).toBe(503);
    const read = () => {
      const d = layer.debugInfo();
      return [clock.now() - T0, d.errorRate, d.status, d.degradation?.window.samples, d.totals.calls];
    };
    const seen = [read()];
    for (const step of [55_000, 1, 4_999, 1]) {
      await clock.advance(step);
      seen.push(read());
    }
    expect(seen).toEqual([
      [4_999, 1, "degraded", 1, 1],
      [59_999, 1, "degraded", 1, 1],
      [60_000, 0, "healthy", 1, 1],
      [64_999, 0, "healthy", 1, 1],
      [65_000, 0, "healthy", 0, 1],
    ]);

    expect((await layer.fetch(`${a.base}/bad`)).status).toBe(503);
    await clock.advance(2_500);
    layer.analytics.clearHistory();
    let d = layer.debugInfo();
    expect([d.errorRate, d.status, d.totals, d.recentErrors, d.degradation?.window.samples]).toEqual([
      0,
      "healthy",
      { calls: 0, failures: 0 },
      [],
      1,
    ]);
    expect((await layer.fetch(`${a.base}/bad`)).status).toBe(503);
    await clock.advance(59_999);
    d = layer.debugInfo();
    expect([d.errorRate, d.totals.calls]).toEqual([1, 1]);
    await clock.advance(1);
    expect(layer.health().errorRate).toBe(0);
  });

  it("status turns degraded only above 10%: one failure in ten calls is healthy, two in eleven degraded", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: { maxAttempts: 1 }, breaker: false });
    a.on(byPath);
    await layer.fetch(`${a.base}/bad`);
    for (let i = 0; i < 9; i++) await layer.fetch(`${a.base}/s200`);
    expect([layer.health().errorRate, layer.health().status]).toEqual([0.1, "healthy"]);
    await layer.fetch(`${a.base}/bad`);
    expect(layer.health().status).toBe("degraded");
  });
});

describe("resilientProxy health after mixed outcomes", () => {
  it("counts the upstream's answers only: not a path without a route, the health path nor a client's 400", async () => {
    const clock = new TestClock(T0);
    const proxy = resilientProxy({
      routes: [{ path: "/up", upstream: `${a.base}/v1?key=SECRET` }],
      resilience: { clock, retry: { maxAttempts: 1 } },
    });
    a.on(byPath);
    const go = async (path: string, init?: RequestInit) =>
      (await proxy.fetch(new Request(`https://w.example${path}`, init), {}, ctx)).status;
    const statuses = [await go("/up/s200"), await go("/up/x"), await go("/up/s404"), await go("/none")];
    statuses.push(await go("/__resilience/health"));
    const broken = new ReadableStream({ pull: (c) => c.error(new TypeError("client left")) });
    statuses.push(await go("/up/s200", { method: "PUT", body: broken, duplex: "half" } as RequestInit));
    expect(statuses).toEqual([200, 503, 404, 404, 200, 400]);
    expect(a.hits).toHaveLength(3);
    const res = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    const text = await res.text();
    expect(text).not.toContain("SECRET");
    const h = JSON.parse(text);
    expect(h.errorRate).toBeCloseTo(1 / 3, 10);
    expect(h.status).toBe("degraded");
    expect(Object.keys(h.breakers)).toEqual([a.host]);
    expect(h.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1, lastFailureTime: T0 });
  });
});
