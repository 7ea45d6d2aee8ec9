/**
 * Outside-in attack on docs/health-and-events.md, sentence by sentence: what `health()`, `debugInfo()`,
 * `getResilienceInfo` and `analytics.clearHistory()` report, and when each of the eight events fires, how often,
 * with which fields, checked against each other (events against counts) on every path a call can take.
 *
 * Docs: docs/health-and-events.md "## Health" ("`health()` returns plain JSON: `status` (`unhealthy` when a breaker
 * is open, `degraded` above a 10% error rate), `errorRate` …, `degradationLevel` …, every breaker (`state`,
 * `failureCount`, `consecutiveFailures`, `failureRate`, `lastError`, `reason`, `lastFailureTime`, `openUntil`, `gen`,
 * bulkhead `active`/`queued` …), the budget's tokens, and `fallback`"; "A breaker's `state` is as a call would find it
 * now: … a half-open one whose probe lease ran out unreported reads `open` (the next call re-opens it)"; "an open or
 * half-open one shows the counts that opened it and the error that did (for one held open by a `Retry-After`, that
 * reason: `Retry-After 3600 s on status 503`), and an open one until when it stays open (`openUntil`; `null` while
 * half-open, and for one that reads `open` because a probe's lease ran out, until the next call re-opens it for
 * `timeout`)"; "Through `memoryStore()` it shows that layer's counts and error"; "Work run through `execute(fn)` counts
 * there too … keyed by its `breaker`'s name …, with an empty `url`"; "`debugInfo()` adds totals …, the last 50
 * failures (URLs without their query string, which may hold keys), the degradation level and its window"; "##
 * Events": "`retry` fires before each wait (`key`, `attempt`, `delay`, `reason`, `retryAfter`), `execute`'s too";
 * "`request` fires once per call the layer started, when it settles (`status` or `error`, `attempts`, `durationMs`,
 * `outcome`)"; "`breaker` fires on every state change (`key`, `from`, `to`, `reason`, `gen`, `openUntil`) when a call
 * makes it …, and `open` → `open` when an open circuit is held longer (a `Retry-After` beyond `maxRetryAfter` from an
 * answer still in flight, or a later opening shared through a store): one answer that both trips the breaker and
 * holds it open is one event, until the later time"; "`fallback` fires when a chain passes over an endpoint";
 * "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason` …)"; "`redirect` for each
 * redirect the library follows, told as it turns to the next hop"; "A listener that throws, or an async one whose
 * promise rejects, is reported (`reportError` or `console.error`) and never breaks the request". The JSDoc of the
 * root entry: `Resilience.health` "A plain-JSON snapshot of the layer's state", `Resilience.debugInfo` "`health()`
 * plus recent errors, totals and the options in force", `ResilienceInfo` (`attempts`, `durationMs`,
 * `degradationLevel`), `CircuitBreaker.toJSON` "Plain serialisable state"; docs/breakers.md "its state is plain
 * versioned JSON (`toJSON()`: `v`, `state`, `gen` …, with `gen` +1 on every transition"; docs/retry.md "## Retry
 * budget" ("each retry spends one … A retry is paid for when it is allowed, before its wait"); SECURITY.md "Nothing
 * outlives its call: every timer is cleared when its call settles", "No secret in events, errors, `health()` or
 * `debugInfo()`".
 *
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); three node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts), each answering from a script (503, 503 with `Retry-After`,
 * 307 to another server, 200, or never). Every check of a call is made against the others: the `request` event
 * against `getResilienceInfo`, the `retry` events against the budget's `retriesAllowed`, the `breaker` events against
 * `health()`'s `gen`/`state`/`openUntil`, the totals and the degradation window against the calls made, the test
 * clock's `pending()` after the call, the bulkheads' `active`/`queued`.
 *
 * Paths: plain call, `Request` input, fallback chain, hedged chain, redirect (307 to another host), degradation
 * rewrite (query rule; a level set by hand and levels moved by the error-rate trigger), ky client, `execute` (with a
 * named breaker), `resilientProxy` (upstream and chain routes, its health endpoint), two layers on one `memoryStore`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-first session, so plain
 * `it`):
 * 1. `Resilience.health` JSDoc "A plain-JSON snapshot of the layer's state" (`debugInfo()` is "`health()` plus recent
 *    errors …"), docs/health-and-events.md "`debugInfo()` adds … the last 50 failures (URLs without their query
 *    string, which may hold keys)". Observed: the records in `debugInfo().recentErrors` are the layer's own objects,
 *    not copies: a caller that edits the list it got (a log formatter writing `time` as an ISO string, a handler
 *    putting the full URL back for its own log) changes what every later `debugInfo()` reports: the next one lists
 *    `time` as a string and the URL with its `?key=`. Every other part of `debugInfo()` (breakers, totals, budget,
 *    chain statistics, the degradation report) is built anew and unaffected. src/http/analytics.ts
 *    `Analytics.recentErrors()` returns `[...this.#history]`, a new array of the same records. Fix: copy each
 *    record (`this.#history.map((r) => ({ ...r }))`) or freeze them as they are pushed.
 * 2. docs/health-and-events.md "`breaker` fires on every state change" and "`status` (`unhealthy` when a breaker is
 *    open …)"; docs/breakers.md "its state is plain versioned JSON (`toJSON()`: `v`, `state`, `gen` …, with `gen` +1
 *    on every transition)"; `CircuitBreaker.toJSON` JSDoc "Plain serialisable state". Observed: a named breaker's
 *    `toJSON()` (`resilience.breaker("svc").toJSON()`) returns the breaker's live state object: setting `state` on
 *    what it returned (a caller that tidies a snapshot before logging or storing it) closes the open breaker with
 *    `gen` unchanged and no `breaker` event; `health()` then lists it closed, `status` is no longer `unhealthy`, and
 *    `execute(fn, { breaker: "svc" })` runs work the open circuit should refuse. src/policies/circuit-breaker.ts
 *    `CircuitBreaker.toJSON()` returns `this.#s` (the same object `#apply` keeps and, for per-host breakers, hands to
 *    a store's `publish`). Fix: return a copy (or freeze each state `transition` makes).
 *
 * Held (plain `it`):
 * - On every path (plain, `Request` POST with a key, chain, hedged chain, 307 to another host, degradation rewrite,
 *   ky, `execute`), with and without listeners that throw and reject on all eight names (reported through
 *   `console.error`, the call unaffected): one `request` event per call, the last of the call's events, whose
 *   `attempts`, `durationMs` and `status` are `getResilienceInfo`'s; as many `retry` events as the budget's
 *   `retriesAllowed` grew; totals and the degradation window +1, failures as the final status says; no timer left on
 *   the test clock; bulkheads at 0/0; every breaker's `gen` that of its last `breaker` event; the events in the order
 *   the doc gives (`redirect` before each hop, `retry` before each wait, `fallback` at each pass-over); no query
 *   (`?key=…`, a `Location`'s `?tok=…`) in any event, `health()` or `debugInfo()`.
 * - One answer that trips the breaker and holds it (503 with `Retry-After: 3600`, threshold 1) is one `breaker` event
 *   until the later time, on a plain call, a `Request`, a chain and a hedged chain; after a redirect the hold goes to
 *   the host that sent it and the trip to the first host, one event each; `health()` shows the hold's reason as
 *   `reason` and `lastError`, and the event's `openUntil`.
 * - An answer still in flight that holds an open breaker longer fires `open` → `open` with the later `openUntil`; a
 *   later opening shared through `memoryStore()` does the same in the layer that opened first, whose `health()` then
 *   shows the other layer's reason, counts and error.
 * - A probe whose lease ran out: `health()` reads `open`, `openUntil` `null`, `status` `unhealthy`, no event; the late
 *   answer re-opens it (`half_open` → `open`, "probe lease expired", `openUntil` = then + `timeout`), the call itself
 *   resolves with that answer, counted as a success.
 * - Degradation triggers: each level change is one `degradation` event (`percentage` of the new level, the trigger's
 *   reason), fired as the call that moved it settles, before its `request` event; `debugInfo().degradation` is
 *   `currentLevel()` with the window; each call's `getResilienceInfo(res).degradationLevel` is the level it started at
 *   and its query on the wire was rewritten for it; the `request` event's URL has no query.
 * - `resilientProxy`'s health endpoint: after an upstream route's 503 and a chain route served by its spare, the JSON
 *   lists both hosts' breakers, the error rate and the chain's statistics, holds no query, `no-store`; `HEAD` has no
 *   body; with a token set, 401 without it.
 * - `execute`: `retry` events keyed by the breaker's name, `url` `""`, reason the error's name; no `request` event;
 *   the run counted once in totals under that name.
 *
 * Docs-silent (not pinned):
 * - The `replay` event's `bytes` is not the body's size in bytes: a string past the limit is given by its length in
 *   UTF-16 units (`"é".repeat(20)`, 40 bytes sent, says 20), and a `Request` body by what was read ahead of it
 *   (src/http/request/replay-body.ts `byteSize`, normalize-request.ts `readRequestBody`).
 * - A store's `publish(key, snapshot)` is handed the per-host breaker's live state (the object of defect 2): a store
 *   of one's own that edits it before persisting (trims `reason`, drops `trip`) edits the local breaker.
 * - A `health()` read brings another layer's close in through `memoryStore()` as this layer's own (`open` → `closed`,
 *   "shared: 2 successful probes"), an event fired by the read, not by a call, and `from: "open"` although the read
 *   before showed `half_open` (its timeout had passed).
 * - After a redirect that held the target's breaker, that host's entry shows `lastFailureTime: null` and counts of 0
 *   (the failure counted against the first host), as its `openUntil` and reason show the hold.
 * - `debugInfo()` is not plain JSON as `health()` is: `recentErrors` records carry `status: undefined` or
 *   `error: undefined`, and the degradation window `p95: undefined`, keys `JSON.stringify` drops.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, memoryStore, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

afterEach(() => {
  vi.restoreAllMocks();
});

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
  return (hit: { res: ServerResponse }) => {
    hit.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) hit.res.setHeader(k, v);
    hit.res.end(status === 200 ? "ok" : "no");
  };
}

/** Answers in turn from `list` ("hang" never answers), then 200. */
function script(server: HttpUpstream, list: Array<number | "hang" | ((hit: Hit) => void)>): void {
  const queue = [...list];
  server.on((hit) => {
    const next = queue.shift() ?? 200;
    if (next === "hang") return;
    if (typeof next === "function") next(hit);
    else answer(next)(hit);
  });
}

/**
 * Settles `promise`, firing the test clock's timers (backoffs, hedge delays) one millisecond at a time, only while
 * one is pending: no attempt timeout is set where this is used, so a timer never races a server's answer.
 */
async function drive<T>(clock: TestClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  tracked.catch(() => {});
  for (let i = 0; i < 5_000 && !done; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (!done && clock.pending() > 0) await clock.advance(1);
  }
  return tracked;
}

/** Real event-loop turns until `ready()` holds. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(ready()).toBe(true);
}

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

function matrixLayer(clock: TestClock) {
  return createResilience({
    clock,
    retry: { ...fast, maxAttempts: 3 },
    breaker: { failureThreshold: 5, timeout: 1_000 },
    bulkhead: { maxConcurrent: 4, maxQueue: 4 },
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "p", url: `${a.base}/c` },
          { name: "s", url: `${b.base}/c` },
        ],
      },
      {
        name: "hed",
        hedge: { delay: 20 },
        endpoints: [
          { name: "hp", url: `${a.base}/h` },
          { name: "hs", url: `${b.base}/h` },
        ],
      },
    ]),
    degradation: degradation({
      minSamples: 100,
      triggers: { memoryUsage: 1, cpuUsage: 1 },
      rules: [{ params: { quality: { query: "quality" } } }],
    }),
  });
}

type PathName = "plain" | "request" | "chain" | "hedge" | "redirect" | "degraded" | "ky" | "execute";

interface PathCase {
  name: PathName;
  /** Scripts the servers. */
  serve(): void;
  /** The call. */
  call(layer: ReturnType<typeof matrixLayer>): Promise<unknown>;
  /** The events of the call, in order. */
  events: string[];
  attempts?: number;
  status?: number;
  /** Query on the wire of the server that served. */
  wire?: () => string | undefined;
}

const cases: PathCase[] = [
  {
    name: "plain",
    serve: () => script(a, [503, 200]),
    call: (layer) => layer.fetch(`${a.base}/x?quality=100&key=SECRET`),
    events: ["retry", "request"],
    attempts: 2,
    status: 200,
  },
  {
    name: "request",
    serve: () => script(a, [503, 200]),
    call: (layer) =>
      layer.fetch(
        new Request(`${a.base}/x?key=SECRET`, {
          method: "POST",
          headers: { "idempotency-key": "k-1", "content-type": "application/json" },
          body: '{"quality":100}',
        }),
      ),
    events: ["retry", "request"],
    attempts: 2,
    status: 200,
  },
  {
    name: "chain",
    serve: () => {
      script(a, [503, 503, 503]);
      script(b, [200]);
    },
    call: (layer) => layer.fetch(`${a.base}/c/x?key=SECRET`),
    events: ["retry", "retry", "fallback", "request"],
    attempts: 4,
    status: 200,
  },
  {
    name: "hedge",
    serve: () => {
      script(a, ["hang"]);
      script(b, [200]);
    },
    call: (layer) => layer.fetch(`${a.base}/h/x?key=SECRET`),
    events: ["request"],
    attempts: 2,
    status: 200,
  },
  {
    name: "redirect",
    serve: () => {
      script(a, [
        answer(307, { location: `${b.base}/there?tok=SECRET` }),
        answer(307, { location: `${b.base}/there?tok=SECRET` }),
      ]);
      script(b, [503, 200]);
    },
    call: (layer) => layer.fetch(`${a.base}/x?key=SECRET`),
    events: ["redirect", "retry", "redirect", "request"],
    attempts: 2,
    status: 200,
  },
  {
    name: "degraded",
    serve: () => script(a, [503, 200]),
    call: (layer) => {
      layer.degradation.setLevel("medium");
      return layer.fetch(`${a.base}/x?quality=100&key=SECRET`);
    },
    events: ["degradation", "retry", "request"],
    attempts: 2,
    status: 200,
    wire: () => a.hits.at(-1)?.path,
  },
  {
    name: "ky",
    serve: () => script(a, [503, 200]),
    call: (layer) => createClient({ resilience: layer })(`${a.base}/x?key=SECRET`),
    events: ["retry", "request"],
    attempts: 2,
    status: 200,
  },
  {
    name: "execute",
    serve: () => {},
    call: (layer) => {
      let n = 0;
      return layer.execute(
        () => {
          n++;
          if (n < 3) throw new Error(`GET ${a.base}/x?key=SECRET failed`);
          return "done";
        },
        { breaker: "svc" },
      );
    },
    events: ["retry", "retry"],
  },
];

describe("defects", () => {
  it("debugInfo()'s recent errors are a snapshot: editing one leaves the next debugInfo() as it was", async () => {
    a.on(answer(503));
    const layer = createResilience({ retry: { maxAttempts: 1 } });
    await (await layer.fetch(`${a.base}/jobs?key=SECRET`)).text();
    const first = layer.debugInfo();
    const failure = first.recentErrors[0] as { url: string; time: unknown };
    expect(failure.url).toBe(`${a.base}/jobs`);
    // A log formatter edits the list it was given: the time as text, the URL as the caller knows it.
    failure.time = new Date(failure.time as number).toISOString();
    failure.url = `${a.base}/jobs?key=SECRET`;
    // Everything else in the first snapshot is the caller's too, and editing it changes nothing.
    (first.totals as { calls: number }).calls = 99;
    const next = layer.debugInfo();
    expect(next.totals.calls).toBe(1);
    expect(next.recentErrors).toEqual([expect.objectContaining({ url: `${a.base}/jobs`, status: 503 })]);
    expect(typeof next.recentErrors[0]?.time).toBe("number");
    expect(JSON.stringify(next)).not.toContain("SECRET");
  });

  it("a named breaker's toJSON() is a snapshot: editing it neither closes the breaker nor does so unheard", async () => {
    const clock = new TestClock(1_000);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 60_000 },
    });
    const seen = record(layer);
    await expect(layer.execute(() => Promise.reject(new Error("down")), { breaker: "svc" })).rejects.toThrow();
    expect(layer.health().breakers.svc).toMatchObject({ state: "open", gen: 1 });
    // A caller tidies the snapshot it took before logging or storing it.
    const snapshot = layer.breaker("svc").toJSON() as unknown as Record<string, unknown>;
    snapshot.state = "closed";
    // The breaker is as it was: open, and the layer unhealthy, as the one `breaker` event says.
    expect(layer.breaker("svc").state).toBe("open");
    const health = layer.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers.svc).toMatchObject({ state: "open", gen: 1 });
    let ran = false;
    await expect(
      layer.execute(
        () => {
          ran = true;
          return "ran";
        },
        { breaker: "svc" },
      ),
    ).rejects.toMatchObject({ name: "CircuitOpenError" });
    expect(ran).toBe(false);
    expect(of(seen, "breaker")).toEqual([expect.objectContaining({ key: "svc", from: "closed", to: "open", gen: 1 })]);
  });
});

describe("every path: the events agree with health(), debugInfo() and getResilienceInfo", () => {
  for (const throwing of [false, true]) {
    for (const path of cases) {
      it(`${path.name}${throwing ? ", beside listeners that throw and reject" : ""}`, async () => {
        const reported = vi.spyOn(console, "error").mockImplementation(() => {});
        const clock = new TestClock(10_000);
        const layer = matrixLayer(clock);
        if (throwing) {
          for (const name of names) {
            layer.on(name, () => {
              throw new Error(`listener of ${name} failed`);
            });
            layer.on(name, async () => {
              throw new Error(`async listener of ${name} failed`);
            });
          }
        }
        const seen = record(layer);
        path.serve();
        const before = layer.debugInfo();
        const outcome = await drive(clock, path.call(layer));
        if (outcome instanceof Response) await outcome.text();
        await until(() => clock.pending() === 0);
        const info = layer.debugInfo();

        expect(order(seen)).toEqual(path.events);
        // As many retry events as the budget paid for.
        expect((info.budget?.retriesAllowed ?? 0) - (before.budget?.retriesAllowed ?? 0)).toBe(
          of(seen, "retry").length,
        );
        if (path.name === "execute") {
          expect(outcome).toBe("done");
          expect(of(seen, "retry")).toEqual([
            { key: "svc", url: "", attempt: 1, delay: 1, reason: "Error", retryAfter: false },
            { key: "svc", url: "", attempt: 2, delay: 2, reason: "Error", retryAfter: false },
          ]);
          expect(info.breakers.svc).toMatchObject({ state: "closed", failureCount: 2 });
        } else {
          const res = outcome as Response;
          expect(res.status).toBe(path.status);
          const [request] = of(seen, "request");
          const resInfo = getResilienceInfo(res);
          expect(request).toMatchObject({
            status: res.status,
            attempts: path.attempts,
            durationMs: resInfo?.durationMs,
            outcome: "response",
          });
          expect(resInfo?.attempts).toBe(path.attempts);
          expect(request?.url).not.toMatch(/[?#]/);
        }
        expect(info.totals).toEqual({ calls: before.totals.calls + 1, failures: before.totals.failures });
        expect(info.degradation?.window.samples).toBe((before.degradation?.window.samples ?? 0) + 1);
        expect(clock.pending()).toBe(0);
        for (const [key, breaker] of Object.entries(info.breakers)) {
          expect({ key, active: breaker.active ?? 0, queued: breaker.queued ?? 0 }).toEqual({
            key,
            active: 0,
            queued: 0,
          });
          const last = of(seen, "breaker")
            .filter((e) => e.key === key)
            .at(-1);
          expect(breaker.gen).toBe(last?.gen ?? 0);
        }
        for (const e of of(seen, "redirect")) expect(e).toMatchObject({ from: `${a.base}/x`, to: `${b.base}/there` });
        if (path.name === "chain")
          expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "p", reason: "status 503", next: "s" }]);
        if (path.name === "degraded") {
          expect(of(seen, "degradation")).toEqual([
            { from: "full", to: "medium", percentage: 60, reason: "set manually" },
          ]);
          expect(getResilienceInfo(outcome as Response)?.degradationLevel).toBe("medium");
          expect(path.wire?.()).toBe("/x?quality=80&key=SECRET");
        }
        expect(JSON.stringify([seen, info, layer.health()])).not.toContain("SECRET");
        // The throwing and rejecting listeners were reported, each, and broke nothing.
        if (throwing) expect(reported.mock.calls.length).toBe(2 * seen.length);
        else expect(reported).not.toHaveBeenCalled();
      });
    }
  }
});

describe("breaker events: one per trip and hold, open → open when held longer", () => {
  for (const path of ["plain", "request", "chain", "hedge"] as const) {
    it(`a 503 that trips and holds is one event until the later time (${path})`, async () => {
      const clock = new TestClock(1_000);
      script(a, [answer(503, { "retry-after": "3600" })]);
      script(c, [200]);
      const layer = createResilience({
        clock,
        retry: { ...fast, maxAttempts: 3 },
        breaker: { failureThreshold: 1, timeout: 1_000 },
        fallback: fallback([
          {
            name: "gen",
            ...(path === "hedge" ? { hedge: { delay: 50 } } : {}),
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "s", url: `${c.base}/v1` },
            ],
          },
        ]),
      });
      const seen = record(layer);
      const url = path === "chain" || path === "hedge" ? `${a.base}/v1/x` : `${a.base}/x`;
      const res = await drive(clock, layer.fetch(path === "request" ? new Request(url) : url));
      await res.text();
      expect(res.status).toBe(path === "chain" || path === "hedge" ? 200 : 503);
      expect(of(seen, "breaker")).toEqual([
        {
          key: a.host,
          from: "closed",
          to: "open",
          reason: "Retry-After 3600 s on status 503",
          gen: 1,
          openUntil: 1_000 + 3_600_000,
        },
      ]);
      expect(layer.health().breakers[a.host]).toMatchObject({
        state: "open",
        reason: "Retry-After 3600 s on status 503",
        lastError: "Retry-After 3600 s on status 503",
        openUntil: 3_601_000,
        gen: 1,
      });
      expect(clock.pending()).toBe(0);
    });
  }

  it("after a 307, the hold goes to the host that sent it and the trip to the first host: one event each", async () => {
    const clock = new TestClock(1_000);
    script(a, [answer(307, { location: `${b.base}/y?tok=SECRET` })]);
    script(b, [answer(503, { "retry-after": "3600" })]);
    const layer = createResilience({ clock, retry: { ...fast, maxAttempts: 3 }, breaker: { failureThreshold: 1 } });
    const seen = record(layer);
    const res = await drive(clock, layer.fetch(`${a.base}/x?key=SECRET`));
    expect(res.status).toBe(503);
    expect(order(seen)).toEqual(["redirect", "breaker", "breaker", "request"]);
    expect(of(seen, "breaker")).toEqual([
      expect.objectContaining({
        key: b.host,
        to: "open",
        reason: "Retry-After 3600 s on status 503",
        openUntil: 3_601_000,
      }),
      expect.objectContaining({ key: a.host, to: "open", reason: "1 failure in a row (last: status 503)" }),
    ]);
    const health = layer.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers[b.host]).toMatchObject({ state: "open", openUntil: 3_601_000 });
    expect(health.breakers[a.host]).toMatchObject({ state: "open", failureCount: 1, lastError: "status 503" });
    expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain("SECRET");
  });

  it("an answer still in flight that holds the open breaker longer fires open → open with the later time", async () => {
    const clock = new TestClock(1_000);
    const held: Array<(status: number, headers?: Record<string, string>) => void> = [];
    a.on((hit) => held.push((status, headers) => answer(status, headers)(hit)));
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
    });
    const seen = record(layer);
    const one = layer.fetch(`${a.base}/x`);
    await a.nth(1);
    const two = layer.fetch(`${a.base}/y`);
    await a.nth(2);
    held[0]?.(503);
    await (await one).text();
    await clock.advance(10);
    held[1]?.(503, { "retry-after": "3600" });
    await (await two).text();
    expect(of(seen, "breaker")).toEqual([
      {
        key: a.host,
        from: "closed",
        to: "open",
        reason: "1 failure in a row (last: status 503)",
        gen: 1,
        openUntil: 2_000,
      },
      {
        key: a.host,
        from: "open",
        to: "open",
        reason: "Retry-After 3600 s on status 503",
        gen: 2,
        openUntil: 3_601_010,
      },
    ]);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: 3_601_010, gen: 2 });
  });

  it("a later opening shared through memoryStore() is open → open in the layer that opened first, with the other's counts", async () => {
    const clock = new TestClock(1_000);
    const store = memoryStore();
    const options = { clock, store, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1, timeout: 1_000 } };
    const one = createResilience(options);
    const two = createResilience(options);
    const seenOne = record(one);
    const held: Array<(status: number, headers?: Record<string, string>) => void> = [];
    a.on((hit) => held.push((status, headers) => answer(status, headers)(hit)));
    const inFlight = two.fetch(`${a.base}/y`);
    await a.nth(1);
    const first = one.fetch(`${a.base}/x`);
    await a.nth(2);
    held[1]?.(503);
    await (await first).text();
    await clock.advance(10);
    held[0]?.(503, { "retry-after": "3600" });
    await (await inFlight).text();
    expect(one.health().breakers[a.host]).toMatchObject({
      state: "open",
      reason: "shared: Retry-After 3600 s on status 503",
      lastError: "Retry-After 3600 s on status 503",
      openUntil: 3_601_010,
      failureCount: 1,
    });
    expect(of(seenOne, "breaker")).toEqual([
      expect.objectContaining({ from: "closed", to: "open", gen: 1, openUntil: 2_000 }),
      expect.objectContaining({
        from: "open",
        to: "open",
        reason: "shared: Retry-After 3600 s on status 503",
        openUntil: 3_601_010,
      }),
    ]);
  });
});

describe("a probe whose lease ran out", () => {
  it("reads open with openUntil null and no event, until its late answer re-opens it for timeout", async () => {
    const clock = new TestClock(1_000);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, probeTimeout: 500 },
    });
    const seen = record(layer);
    a.on(answer(503));
    await (await layer.fetch(`${a.base}/x`)).text();
    await clock.advance(1_000);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null });
    let release: () => void = () => {};
    a.on((hit) => {
      release = () => answer(200)(hit);
    });
    const probe = layer.fetch(`${a.base}/x`);
    await a.nth(2);
    await clock.advance(500);
    const events = seen.length;
    const health = layer.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers[a.host]).toMatchObject({ state: "open", openUntil: null, gen: 2 });
    expect(seen).toHaveLength(events);
    release();
    const res = await probe;
    await res.text();
    expect(res.status).toBe(200);
    expect(of(seen, "breaker").at(-1)).toEqual({
      key: a.host,
      from: "half_open",
      to: "open",
      reason: "probe lease expired",
      gen: 3,
      openUntil: 3_500,
    });
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      openUntil: 3_500,
      gen: 3,
      lastError: "probe lease expired",
      lastFailureTime: 2_500,
    });
    // The late answer itself is the call's: a success in the totals.
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 1 });
  });
});

describe("degradation moved by its trigger", () => {
  it("fires one event per level change, before the request event, and each call carries the level it started at", async () => {
    const clock = new TestClock(1_000);
    a.on(answer(503));
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      degradation: degradation({
        minSamples: 2,
        stepInterval: 1_000,
        triggers: { errorRate: 0.1, memoryUsage: 1, cpuUsage: 1 },
        rules: [{ params: { quality: { query: "quality" }, model: { query: "model" } } }],
      }),
    });
    const seen = record(layer);
    const levels: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) {
      const res = await layer.fetch(`${a.base}/v1/x?quality=100&model=premium&key=SECRET`);
      await res.text();
      levels.push(getResilienceInfo(res)?.degradationLevel);
      await clock.advance(1_000);
    }
    expect(levels).toEqual(["full", "full", "high", "medium"]);
    expect(a.hits.map((hit) => hit.path)).toEqual([
      "/v1/x?quality=100&model=premium&key=SECRET",
      "/v1/x?quality=100&model=premium&key=SECRET",
      "/v1/x?quality=90&model=premium&key=SECRET",
      "/v1/x?quality=80&model=standard&key=SECRET",
    ]);
    expect(order(seen)).toEqual([
      "request",
      "degradation",
      "request",
      "degradation",
      "request",
      "degradation",
      "request",
    ]);
    expect(of(seen, "degradation")).toEqual([
      { from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" },
      { from: "high", to: "medium", percentage: 60, reason: "error rate 1.00 > 0.1" },
      { from: "medium", to: "low", percentage: 40, reason: "error rate 1.00 > 0.1" },
    ]);
    const info = layer.debugInfo();
    expect(info.degradationLevel).toBe("low");
    expect(info.degradation).toEqual({
      ...layer.degradation.currentLevel(),
      window: { samples: 4, errorRate: 1, p95: 0 },
    });
    expect(info.recentErrors.map((e) => e.url)).toEqual(Array(4).fill(`${a.base}/v1/x`));
    expect(JSON.stringify([seen, info])).not.toContain("SECRET");
  });
});

describe("resilientProxy's health endpoint", () => {
  it("answers the layer's health as JSON (both routes' hosts, the chain's statistics), HEAD without a body, 401 without the token", async () => {
    a.on(answer(503));
    b.on(answer(200));
    const proxy = resilientProxy<Record<string, string>>({
      routes: [
        { path: "/up", upstream: `${a.base}/v1` },
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/g` },
              { name: "s", url: `${b.base}/g` },
            ],
          },
        },
      ],
      resilience: { retry: { maxAttempts: 1 }, breaker: { failureThreshold: 5 } },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const up = await proxy.fetch(new Request("https://edge.example/up/x?key=SECRET"), {}, ctx);
    expect(up.status).toBe(503);
    await up.text();
    const gen = await proxy.fetch(new Request("https://edge.example/gen/x?key=SECRET"), {}, ctx);
    expect(gen.status).toBe(200);
    expect(gen.headers.get("x-resilience-endpoint")).toBe("s");
    await gen.text();
    const res = await proxy.fetch(new Request("https://edge.example/__resilience/health"), {}, ctx);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const text = await res.text();
    const health = JSON.parse(text);
    expect(health).toMatchObject({
      status: "degraded",
      errorRate: 0.5,
      degradationLevel: "full",
      breakers: {
        [a.host]: { state: "closed", failureCount: 2, consecutiveFailures: 2, lastError: null },
        [b.host]: { state: "closed", failureCount: 0 },
      },
      fallback: {
        gen: {
          lastSuccessfulFallback: "s",
          overallSuccessRate: 1,
          fallbacks: { p: { calls: 1, successes: 0 }, s: { calls: 1, successes: 1 } },
        },
      },
    });
    expect(text).not.toContain("SECRET");
    const head = await proxy.fetch(
      new Request("https://edge.example/__resilience/health", { method: "HEAD" }),
      {},
      ctx,
    );
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const locked = await proxy.fetch(
      new Request("https://edge.example/__resilience/health"),
      { RESILIENCE_HEALTH_TOKEN: "t0k" },
      ctx,
    );
    expect(locked.status).toBe(401);
    expect(await locked.text()).not.toContain(a.host);
  });
});
