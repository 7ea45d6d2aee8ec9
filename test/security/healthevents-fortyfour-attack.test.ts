/**
 * Outside-in attack on `health()`, `debugInfo()`, the events and `getResilienceInfo`, on every path a call takes:
 * plain call, fallback chain, hedged chain, redirect, degradation rewrite, `Request` input, `resilientProxy` and
 * the ky client.
 * Docs: docs/health-and-events.md ("`health()` returns plain JSON: `status` (`unhealthy` when a breaker is open,
 * `degraded` above a 10% error rate), `errorRate` over the last minute (in twelve 5-second steps: a call counts
 * for 55 to 60 seconds)"; "for one held open by a `Retry-After`, that reason: `Retry-After 3600 s on status
 * 503`"; "With a shared `store`, `health()` first reads what the store says about each host it lists … Through
 * `memoryStore()` it shows that layer's counts and error"; "`debugInfo()` adds totals (of calls that settled
 * with a response or an error …), the last 50 failures (URLs without their query string, which may hold keys)";
 * "`analytics.clearHistory()` forgets the totals, the failures and the error rate's minute (`errorRate` reads 0
 * after it"; "`request` fires once per call the layer started, when it settles (`status` or `error`,
 * `attempts`, `durationMs`, `outcome`), and not for one refused before it started (the caller's mistake, a
 * `TypeError`, or a signal already aborted: nothing was tried, and `health()` does not count it either)";
 * "`breaker` fires on every state change … and `open` → `open` when an open circuit is held longer (a
 * `Retry-After` beyond `maxRetryAfter` from an answer still in flight …): one answer that both trips the breaker
 * and holds it open is one event"; "`fallback` fires when a chain passes over an endpoint (`chain`, `from`,
 * `reason`, `next`: a hedge already running that the call carries on with, else the endpoint next in line,
 * which, when its breaker is open, is passed over in turn with an event of its own, `reason` "circuit open")";
 * "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason`"; "`redirect` for each
 * redirect the library follows … (a hop whose breaker refuses it has its event too, and the call's
 * `CircuitOpenError` then names that host)"; "A listener that throws, or an async one whose promise rejects, is
 * reported (`reportError` or `console.error`) and never breaks the request"; "a name that is not one of the
 * eight below (a typo) is a `TypeError` at once, which lists them"); docs/retry.md ("The hops are one attempt:
 * … the final status counts against the first host's breaker", "A `Retry-After` hold on the final answer holds
 * the host that sent it, not the first one", ky: "`getResilienceInfo` reads the response ky resolves with (or
 * `error.response` of its `HTTPError`)"); docs/fallback.md ("A hedge that lost counts there as a call that did
 * not serve, as in `statistics()` (its host's breaker does not count it)", "`getResilienceInfo(res)` says which
 * `endpoint` served and whether `fromFallback`", hedging "all are counted"); docs/degradation.md ("its rewritten
 * body, its level header and `getResilienceInfo(res).degradationLevel` all name that level"); docs/cloudflare.md
 * ("`GET /__resilience/health` returns `health()` as JSON", "adds `x-resilience-endpoint` …
 * `x-resilience-attempts` and `x-degradation-level`"); README ("`getResilienceInfo(res)` // { attempts,
 * endpoint, fromFallback, degradationLevel, … }").
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `resilientProxy` (./cloudflare), `createClient` (./ky), `TestClock` (./testing); node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts), and a `fetch` option of the test's own for the clock test.
 * Paths: plain call, fallback chain (with an endpoint whose breaker is open), hedged chain (hedge wins; primary
 * fails while the hedge runs; bulkhead counts), redirect (307/302 to another origin, `Retry-After` on the hop,
 * a hop refused by its open breaker), degradation rewrite (query parameter at `low`), `Request` input (signal
 * already aborted, body already read), `resilientProxy` (upstream route and chain route, health path), ky client
 * (retried success, `HTTPError`, pre-aborted signal), `memoryStore()` shared by two layers, `execute`-free.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour):
 * (none: every promise driven below held on the paths tried)
 *
 * Held (plain `it`):
 * - Hedge that wins: `getResilienceInfo` attempts 2 (both counted), endpoint the hedge, `fromFallback`; one
 *   `request` event (key the chain, attempts 2); the loser's host breaker counts nothing; totals 1 call, 0
 *   failures; the chain's statistics count the loser as a call that did not serve; bulkhead `active` back to 0.
 * - Primary that fails while its hedge runs: one `fallback` event whose `next` is the hedge already running.
 * - Chain with an endpoint whose breaker is open: `fallback` events in order, the open one passed over with
 *   `reason: "circuit open"` and `next` the endpoint after it; `request` attempts count only requests sent.
 * - Redirect to another origin answered 503: one `redirect` event per attempt, URLs without query or fragment;
 *   `retry` keyed by the first host; attempts 2 (hops are one attempt); the first host's breaker counts both
 *   failures, the hop's host is not listed; `recentErrors` URL without query; endpoint the first host.
 * - `Retry-After 3600` on a plain call: one `breaker` event (closed → open, the `Retry-After` reason), `health()`
 *   `unhealthy`, `reason` and `lastError` the `Retry-After` text, `openUntil` an hour on. On a redirect's hop:
 *   the hop's host is held, not the first one. An answer in flight that holds an open breaker longer: one
 *   `open` → `open` event, `health()` showing the later `openUntil` and the `Retry-After` reason.
 * - A hop refused by its open breaker (opened by a sibling through `memoryStore()`): `redirect` event, then the
 *   call's `CircuitOpenError` names the hop's host (`afterRedirect`); nothing reaches it; the sibling's
 *   `health()` shows the shared reason and the opener's counts.
 * - `Request` input with its signal already aborted, or its body already read, and ky with an aborted signal:
 *   no `request` event, totals 0, nothing sent.
 * - ky: `getResilienceInfo` on the resolved response (attempts 2 after a retry) and on `HTTPError.response`;
 *   the error's message without the query.
 * - Degradation at `low`: the query rewritten, `getResilienceInfo(res).degradationLevel` `low`, a `degradation`
 *   event with `percentage` 40, `debugInfo().degradation` with its window.
 * - `resilientProxy`: `x-resilience-*` headers (attempts across a chain, endpoint the spare), the health path's
 *   JSON the layer's `health()` (a `Retry-After` hold shown there).
 * - Throwing and rejecting listeners are reported through `reportError`, the call resolves.
 * - `on("requests")` is a `TypeError` listing all eight names.
 * - 55 failures keep the last 50 (URLs without query); `clearHistory()` zeroes totals and `errorRate`.
 * - `errorRate` on the test clock: a call at the start of a 5 s step counts until 60 s, one at its end 55 s;
 *   `degraded` strictly above 10%.
 *
 * Docs-silent (not pinned):
 * - The unsubscribe function `on` returned removed the listener however it was subscribed since: an old
 *   unsubscribe, called after the same function subscribed again, removed the new subscription too. Since
 *   changed: an unsubscribe ends its own subscription only (test/core/core-units.test.ts, "Emitter"); a listener
 *   subscribed twice is still registered once, as with `EventTarget`.
 * - A hedge that wins over a slow primary fires no `fallback` event for the endpoint it overtook.
 * - A host held open by a `Retry-After` on a redirect's hop shows counts of 0 and `lastFailureTime: null` (the
 *   hop's answer counted against the first host).
 * - Through two layers, `getResilienceInfo` shows the outer call only (an inner chain's endpoint is hidden).
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
const d = httpUpstream();
serveDuringFile(a, b, c, d);

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

function answer(status: number, ms = 0, headers: Record<string, string> = {}) {
  return (h: { res: ServerResponse }) =>
    setTimeout(() => {
      h.res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) h.res.setHeader(k, v);
      h.res.end(status === 200 ? "ok" : "no");
    }, ms);
}
const redirectTo = (location: string, status = 302) => answer(status, 0, { location });
const held = answer(503, 0, { "retry-after": "3600" });

describe("a hedged chain", () => {
  function hedged(extra: object = {}) {
    return createResilience({
      retry: { ...fast, maxAttempts: 1 },
      ...extra,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
          hedge: { delay: 10 },
        },
      ]),
    });
  }

  it("counts both requests in getResilienceInfo and one call in health, the loser's breaker hearing nothing", async () => {
    a.on(answer(200, 80));
    b.on(answer(200));
    const layer = hedged({ bulkhead: { maxConcurrent: 2, maxQueue: 2 } });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/v1/x?key=SECRET`);
    expect(await res.text()).toBe("ok");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    await (await a.nth(1)).closed; // the loser's upstream saw the connection closed
    const requests = of(seen, "request");
    expect(requests).toEqual([
      expect.objectContaining({ key: "gen", url: `${a.base}/v1/x`, status: 200, attempts: 2, outcome: "response" }),
    ]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 0 });
    expect(info.errorRate).toBe(0);
    expect(info.breakers[a.host]).toMatchObject({
      state: "closed",
      failureCount: 0,
      consecutiveFailures: 0,
      lastFailureTime: null,
      active: 0,
      queued: 0,
    });
    expect(info.breakers[b.host]).toMatchObject({ state: "closed", failureCount: 0, active: 0 });
    expect(info.fallback.gen?.fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
    expect(info.fallback.gen?.fallbacks.q).toMatchObject({ calls: 1, successes: 1 });
    expect(JSON.stringify([seen, info])).not.toContain("SECRET");
  });

  it("names the hedge already running as `next` when the primary fails under it", async () => {
    a.on(answer(503, 30));
    b.on(answer(200, 60));
    const layer = hedged();
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "p", reason: "status 503", next: "q" }]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(layer.health().breakers[a.host]).toMatchObject({ failureCount: 1, consecutiveFailures: 1 });
  });
});

describe("a chain with an endpoint whose breaker is open", () => {
  it("passes it over with an event of its own, in order", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
            { name: "r", url: `${c.base}/v1` },
            { name: "s", url: `${d.base}/v1` },
          ],
        },
      ]),
    });
    c.on(answer(503));
    await (await layer.fetch(`${c.base}/elsewhere`)).text(); // r's host opens
    a.on(answer(503));
    b.on(answer(503));
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(of(seen, "fallback")).toEqual([
      { chain: "gen", from: "p", reason: "status 503", next: "q" },
      { chain: "gen", from: "q", reason: "status 503", next: "r" },
      { chain: "gen", from: "r", reason: "circuit open", next: "s" },
    ]);
    expect(c.hits.length).toBe(1); // the earlier call only
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "s", fromFallback: true });
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: "gen", attempts: 3, status: 200 })]);
    expect(layer.health().status).toBe("unhealthy");
  });
});

describe("a redirect the layer follows", () => {
  it("reports each hop, counts the final status against the first host, one attempt per hop chain", async () => {
    a.on(redirectTo(`${b.base}/to?key=SECRET#token=T`));
    b.on(answer(503));
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/from?key=S1`);
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: a.host, fromFallback: false });
    const hop = { from: `${a.base}/from`, to: `${b.base}/to`, status: 302, crossOrigin: true, dropped: [] };
    expect(of(seen, "redirect")).toEqual([hop, hop]);
    expect(of(seen, "retry")).toEqual([
      { key: a.host, url: `${a.base}/from`, attempt: 1, delay: 1, reason: "status 503", retryAfter: false },
    ]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: a.host, attempts: 2, status: 503 })]);
    const info = layer.debugInfo();
    expect(info.breakers[a.host]).toMatchObject({ failureCount: 2, consecutiveFailures: 2 });
    expect(Object.keys(info.breakers)).toEqual([a.host]);
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: a.host, url: `${a.base}/from`, status: 503 })]);
    expect(JSON.stringify([seen, info])).not.toMatch(/SECRET|token=T|S1/);
  });

  it("holds the hop's host for its Retry-After, not the first one, with one breaker event", async () => {
    a.on(redirectTo(`${b.base}/to`, 307));
    b.on(held);
    const layer = createResilience({ retry: fast });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    expect(b.hits.length).toBe(1);
    expect(of(seen, "breaker")).toEqual([
      expect.objectContaining({ key: b.host, from: "closed", to: "open", reason: "Retry-After 3600 s on status 503" }),
    ]);
    const health = layer.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers[b.host]).toMatchObject({ state: "open", reason: "Retry-After 3600 s on status 503" });
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1 });
  });

  it("reports a hop its open breaker refuses, and the call's CircuitOpenError names that host", async () => {
    const store = memoryStore();
    const opener = createResilience({ store, retry: false, breaker: { failureThreshold: 3 } });
    const layer = createResilience({ store, retry: false, breaker: { failureThreshold: 3 } });
    b.on(answer(503));
    for (let i = 0; i < 3; i++) await (await opener.fetch(`${b.base}/x`)).text();
    a.on(redirectTo(`${b.base}/to`));
    const seen = record(layer);
    const error = await rejection(layer.fetch(`${a.base}/from`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).key).toBe(b.host);
    expect((error as CircuitOpenError).afterRedirect).toBe(true);
    expect(b.hits.length).toBe(3);
    expect(of(seen, "redirect")).toEqual([expect.objectContaining({ from: `${a.base}/from`, to: `${b.base}/to` })]);
    expect(of(seen, "request")).toEqual([expect.objectContaining({ key: a.host, error: "CircuitOpenError" })]);
    const health = layer.health();
    expect(health.breakers[b.host]).toMatchObject({
      state: "open",
      reason: "shared: 3 failures in a row (last: status 503)",
      failureCount: 3,
      consecutiveFailures: 3,
      lastError: "status 503",
    });
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
  });
});

describe("Retry-After holds on a plain call", () => {
  it("is one event when one answer trips and holds, and shows its reason in health()", async () => {
    a.on(held);
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const seen = record(layer);
    const res = await layer.fetch(`${a.base}/x`);
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)?.attempts).toBe(1);
    const breaker = of(seen, "breaker");
    expect(breaker).toEqual([
      expect.objectContaining({ key: a.host, from: "closed", to: "open", reason: "Retry-After 3600 s on status 503" }),
    ]);
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({
      state: "open",
      reason: "Retry-After 3600 s on status 503",
      lastError: "Retry-After 3600 s on status 503",
      openUntil: breaker[0]?.openUntil,
    });
    expect((health.breakers[a.host]?.openUntil as number) - health.time).toBeGreaterThan(3_590_000);
  });

  it("fires open → open when an answer in flight holds the open breaker longer", async () => {
    a.on((h) => (h.path === "/fast" ? answer(500)(h) : answer(503, 40, { "retry-after": "3600" })(h)));
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    const seen = record(layer);
    const slow = layer.fetch(`${a.base}/slow`);
    await a.nth(1);
    await (await layer.fetch(`${a.base}/fast`)).text();
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", lastError: "status 500" });
    await (await slow).text();
    const breaker = of(seen, "breaker");
    expect(breaker.map((e) => [e.from, e.to, e.reason])).toEqual([
      ["closed", "open", "1 failure in a row (last: status 500)"],
      ["open", "open", "Retry-After 3600 s on status 503"],
    ]);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      openUntil: breaker[1]?.openUntil,
      lastError: "Retry-After 3600 s on status 503",
    });
  });
});

describe("calls refused before they started", () => {
  it("fire no request event and count nowhere (Request input, ky)", async () => {
    const layer = createResilience({
      retry: fast,
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
    const seen = record(layer);
    const gone = new AbortController();
    gone.abort(new Error("gone"));
    expect(await rejection(layer.fetch(new Request(`${a.base}/v1/x`, { signal: gone.signal })))).toBe(
      gone.signal.reason,
    );
    const used = new Request(`${a.base}/v1/x`, { method: "POST", body: "abc" });
    await used.text();
    expect(await rejection(layer.fetch(used))).toBeInstanceOf(TypeError);
    const api = createClient({ resilience: layer });
    expect(await rejection(api.get(`${a.base}/plain`, { signal: gone.signal }))).toBe(gone.signal.reason);
    expect(seen).toEqual([]);
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(a.hits.length + b.hits.length).toBe(0);
  });
});

describe("the ky client", () => {
  it("lets getResilienceInfo read the resolved response and HTTPError.response", async () => {
    a.on((h) => answer(h.n < 2 ? 503 : 200)(h));
    const layer = createResilience({ retry: fast });
    const seen = record(layer);
    const api = createClient({ resilience: layer });
    const res = await api.get(`${a.base}/x?key=SECRET`);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: a.host, fromFallback: false });
    a.on(answer(404));
    const error = (await rejection(api.get(`${a.base}/y?key=SECRET`))) as Error & { response: Response };
    expect(error.name).toBe("HTTPError");
    expect(error.message).not.toContain("SECRET");
    expect(getResilienceInfo(error.response)).toMatchObject({ attempts: 1, endpoint: a.host });
    expect(of(seen, "request").map((e) => [e.status, e.attempts])).toEqual([
      [200, 2],
      [404, 1],
    ]);
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 0 });
  });
});

describe("a degradation rewrite", () => {
  it("names the level it applied in getResilienceInfo, the event and debugInfo", async () => {
    const layer = createResilience({
      retry: fast,
      degradation: degradation({ rules: [{ match: `${a.base}/gen`, params: { steps: { query: "steps" } } }] }),
    });
    const seen = record(layer);
    layer.degradation.setLevel("low");
    const res = await layer.fetch(`${a.base}/gen?steps=50&key=SECRET`);
    expect(a.hits[0]?.path).toBe("/gen?steps=20&key=SECRET");
    expect(getResilienceInfo(res)?.degradationLevel).toBe("low");
    expect(of(seen, "degradation")).toEqual([{ from: "full", to: "low", percentage: 40, reason: "set manually" }]);
    const info = layer.debugInfo();
    expect(info.degradationLevel).toBe("low");
    expect(info.degradation).toMatchObject({ name: "low", pinned: true, window: { samples: 1, errorRate: 0 } });
    expect(of(seen, "request")).toEqual([expect.objectContaining({ url: `${a.base}/gen`, status: 200 })]);
  });
});

describe("resilientProxy", () => {
  it("passes getResilienceInfo on as headers and health() on its health path", async () => {
    a.on(answer(503));
    b.on(answer(200));
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        },
        { path: "/held", upstream: `${c.base}/held` },
      ],
      resilience: { retry: fast },
    });
    const res = await proxy.fetch(new Request("https://w.example/v1/x?key=1"), {}, ctx);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-attempts")).toBe("4");
    expect(res.headers.get("x-resilience-endpoint")).toBe("q");
    expect(res.headers.get("x-degradation-level")).toBe("full");
    c.on(held);
    const heldRes = await proxy.fetch(new Request("https://w.example/held"), {}, ctx);
    expect(heldRes.status).toBe(503);
    expect(heldRes.headers.get("x-resilience-attempts")).toBe("1");
    const health = await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).json();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers[c.host]).toMatchObject({ state: "open", reason: "Retry-After 3600 s on status 503" });
    expect(health.fallback.gen.fallbacks.q).toMatchObject({ calls: 1, successes: 1 });
  });
});

describe("listeners", () => {
  it("reports a throwing and a rejecting listener and never breaks the call", async () => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (e: unknown) => reported.push(e));
    a.on((h) => answer(h.n < 2 ? 503 : 200)(h));
    const layer = createResilience({ retry: fast });
    layer.on("request", () => {
      throw new Error("boom-request");
    });
    layer.on("retry", async () => {
      throw new Error("boom-retry");
    });
    const res = await layer.fetch(`${a.base}/x`);
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 5));
    expect(reported.map((e) => (e as Error).message).sort()).toEqual(["boom-request", "boom-retry"]);
  });

  it("refuses a misspelt event name with a TypeError listing the eight", () => {
    const layer = createResilience();
    let error: unknown;
    try {
      layer.on("requests" as "request", () => {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    for (const name of names) expect((error as Error).message).toContain(name);
  });
});

describe("bounded counts and the error rate's minute", () => {
  it("keeps the last 50 failures without their query, and clearHistory forgets them", async () => {
    a.on(answer(500));
    const layer = createResilience({ retry: false, breaker: false });
    for (let i = 0; i < 55; i++) await (await layer.fetch(`${a.base}/n${i}?key=SECRET`)).text();
    const info = layer.debugInfo();
    expect(info.recentErrors.length).toBe(50);
    expect(info.recentErrors[0]?.url).toBe(`${a.base}/n5`);
    expect(info.recentErrors.at(-1)?.url).toBe(`${a.base}/n54`);
    expect(info.totals).toEqual({ calls: 55, failures: 55 });
    expect(info.status).toBe("degraded");
    layer.analytics.clearHistory();
    const after = layer.debugInfo();
    expect(after.totals).toEqual({ calls: 0, failures: 0 });
    expect(after.recentErrors).toEqual([]);
    expect(after.errorRate).toBe(0);
    expect(after.status).toBe("healthy");
  });

  it("counts a call for 55 to 60 seconds, degraded strictly above 10%", async () => {
    const clock = new TestClock(0);
    let status = 500;
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status }),
    });
    await layer.fetch("https://api.example/x"); // at 0, the start of a step
    await clock.advance(4_999);
    await layer.fetch("https://api.example/x"); // at the end of the same step
    await clock.advance(59_999 - 4_999);
    expect(layer.health().errorRate).toBe(1); // both still in the minute
    await clock.advance(1);
    expect(layer.health().errorRate).toBe(0); // at 60 s: both gone (the second counted 55 s)
    status = 200;
    for (let i = 0; i < 9; i++) await layer.fetch("https://api.example/x");
    status = 500;
    await layer.fetch("https://api.example/x");
    expect(layer.health()).toMatchObject({ errorRate: 0.1, status: "healthy" });
    await layer.fetch("https://api.example/x");
    expect(layer.health().status).toBe("degraded");
  });
});
