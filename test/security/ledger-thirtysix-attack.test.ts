/**
 * Outside-in attack on the library's accounting: every figure it reports about calls, checked against what a real
 * node:http server on 127.0.0.1 recorded arriving and what the caller saw.
 * Docs: docs/health-and-events.md ("`request` fires once per call the layer started, when it settles (`status` or
 * `error`, `attempts`, `durationMs`, `outcome`)", "`debugInfo()` adds totals (of calls that settled with a response
 * or an error: a call its caller aborted is left out …), the last 50 failures", "`retry` fires before each wait",
 * "`redirect` for each redirect the library follows", bulkhead "`active`/`queued`"); src/http/resilience-info.ts
 * JSDoc ("Attempts in all, across endpoints: each request the layer started (a hedge's too …), with the redirect
 * hops it followed as part of it", "True when an endpoint other than the first one served", "After redirects the
 * layer followed it is still that first host, whose breaker counted the answer"); src/policies/retry-budget.ts JSDoc
 * (`retriesAllowed` "Retries the budget let go, each for a token", `retriesDenied`); docs/retry.md ("The hops are
 * one attempt … the final status counts against the first host's breaker", "a wait that would end past it is not
 * started (the call settles with the last response instead)", "A full queue rejects at once with
 * `BulkheadRejectedError`"); docs/fallback.md (hedge "the first acceptable answer wins and the others are aborted
 * …; all are counted", statistics `calls`, `successes`, `lastSuccessfulFallback`); docs/breakers.md ("a caller's
 * abort is neither" success nor failure); docs/degradation.md ("A call takes the level it finds when it starts: its
 * rewritten body … and `getResilienceInfo(res).degradationLevel` all name that level").
 * How: `createResilience`, `getResilienceInfo`, `on(...)`, `health()`, `debugInfo()` (root); `fallback`
 * (./fallback); `degradation` (./degradation); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) that
 * record each request; a small xorshift PRNG for seeded scenarios.
 * Paths: plain call (503/429 with and without `Retry-After`, 500, 404, resets, slow answers cut by
 * `timeout.attempt`, caller aborts at random moments, GET and keyless POST, 30 calls at once per seed), bulkhead
 * (a queued caller that aborts, a full queue), a hedged chain (a fast hedge; a loser waiting out its own retry), a
 * degradation rewrite of a `Request` input's body, a redirect followed by the library to a host answering 503,
 * `timeout.total` shorter than a `Retry-After`.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - Fuzz (8 seeds × 30 concurrent calls): one `request` event per call; `getResilienceInfo` attempts and
 *   `durationMs` equal the event's; the requests the server received are at most the attempts reported and at
 *   least those of calls not aborted; `retry` events = `retriesAllowed`; `debugInfo().totals` = events not aborted,
 *   its failures = those settled with no response, 5xx or 429; `recentErrors` holds them (up to 50); the closed
 *   breaker's `failureCount` lies between the failing answers of calls not aborted and the attempts made; no
 *   bulkhead slot is left held.
 * - Bulkhead `maxConcurrent: 1, maxQueue: 2`: `active`/`queued` 1/2, then 1/1 once a queued caller aborts, 0/0 at
 *   the end; the fourth call is a `BulkheadRejectedError` with `attempts: 0`, the aborted one `outcome: "aborted"`
 *   and left out of totals; the server saw 2 requests.
 * - Hedged chain, slow primary, fast hedge: `attempts` 2, `endpoint` "q", `fromFallback` true, each server one
 *   request; statistics count both (the loser a call, no success), `lastSuccessfulFallback` "q"; the primary's
 *   aborted attempt is no failure of its host's breaker.
 * - Hedge whose loser waits out its own retry (503, backoff 200 ms) under a degradation rewrite of a `Request`
 *   body: both endpoints got the rewritten body; `attempts` 2, `degradationLevel` "medium"; one `retry` event and
 *   `retriesAllowed` 1; the primary's host counted its one 503.
 * - Redirect a → b, b answers 503, three attempts: 3 + 3 requests, `attempts` 3, 3 `redirect` events, 2 `retry`
 *   events; a's breaker counts 3 failures, b has none; one failure in totals and `recentErrors` (status 503).
 * - `timeout.total` 300 ms against `Retry-After: 1`: the wait is not started, one request, `attempts` 1, no `retry`
 *   event, no token spent.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  type RedirectEvent,
  type RequestEvent,
  type RetryEvent,
} from "../../src/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** xorshift32: the same scenarios on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

type Act = "200" | "404" | "500" | "503" | "503ra" | "429" | "reset" | "slow";
const ACTS: Act[] = ["200", "503", "503ra", "429", "500", "reset", "slow", "404"];
const FAILING = new Set<Act>(["500", "503", "503ra", "429", "reset", "slow"]);

describe("ledger: seeded calls against a real server", () => {
  it("every figure agrees with what the server received (8 seeds × 30 concurrent calls)", async () => {
    for (let seed = 1; seed <= 8; seed++) {
      a.reset();
      const rnd = prng(seed);
      const scripts = new Map<string, Act[]>();
      const served = new Map<string, Act[]>();
      a.on((hit: Hit) => {
        const id = (hit.path.split("/")[2] ?? "").split("?")[0] as string;
        const done = served.get(id) ?? [];
        const act = scripts.get(id)?.[done.length] ?? "200";
        done.push(act);
        served.set(id, done);
        if (act === "reset") return void hit.req.socket.destroy();
        if (act === "slow") {
          setTimeout(() => {
            if (!hit.res.destroyed) hit.res.end("late");
          }, 150);
          return;
        }
        hit.res.writeHead(act === "503ra" ? 503 : Number(act), act === "503ra" ? { "retry-after": "0" } : {});
        hit.res.end("x");
      });
      const r = createResilience({
        retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 3, jitter: "none" },
        timeout: { attempt: 60 },
        breaker: { failureThreshold: 1000 },
        bulkhead: { maxConcurrent: 100, maxQueue: 100 },
      });
      const requests: RequestEvent[] = [];
      const retries: RetryEvent[] = [];
      r.on("request", (e) => requests.push(e));
      r.on("retry", (e) => retries.push(e));
      const calls = Array.from({ length: 30 }, (_, i) => {
        const id = `s${seed}c${i}`;
        scripts.set(
          id,
          Array.from({ length: 3 }, () => ACTS[Math.floor(rnd() * ACTS.length)] as Act),
        );
        const controller = new AbortController();
        const abortAt = rnd() < 0.2 ? Math.floor(rnd() * 80) : -1;
        const timer = abortAt >= 0 ? setTimeout(() => controller.abort(new Error("caller left")), abortAt) : undefined;
        const post = rnd() < 0.3;
        return r
          .fetch(`${a.base}/c/${id}?key=secret`, {
            method: post ? "POST" : "GET",
            signal: controller.signal,
            ...(post ? { body: "job" } : {}),
          })
          .then(
            async (res) => {
              const info = getResilienceInfo(res);
              await res.text().catch(() => "");
              return { id, info };
            },
            () => ({ id, info: undefined }),
          )
          .finally(() => clearTimeout(timer));
      });
      const results = await Promise.all(calls);
      await wait(200); // late answers to attempts given up, before the server's record is read

      expect(requests).toHaveLength(30);
      for (const { id, info } of results) {
        const event = requests.find((e) => e.url.endsWith(`/c/${id}`));
        expect(event, id).toBeDefined();
        if (info) {
          expect(info.attempts, id).toBe(event?.attempts);
          expect(info.durationMs, id).toBe(event?.durationMs);
          expect(info.endpoint).toBe(a.host);
        }
      }
      const attempts = requests.reduce((sum, e) => sum + e.attempts, 0);
      const notAborted = requests.filter((e) => e.outcome !== "aborted");
      const attemptsNotAborted = notAborted.reduce((sum, e) => sum + e.attempts, 0);
      expect(a.hits.length).toBeLessThanOrEqual(attempts);
      expect(a.hits.length).toBeGreaterThanOrEqual(attemptsNotAborted);

      const debug = r.debugInfo();
      expect(retries.length).toBe(debug.budget?.retriesAllowed);
      const failed = notAborted.filter((e) => e.status === undefined || e.status >= 500 || e.status === 429);
      expect(debug.totals).toEqual({ calls: notAborted.length, failures: failed.length });
      expect(debug.recentErrors).toHaveLength(Math.min(50, failed.length));
      for (const record of debug.recentErrors) expect(record.url).not.toContain("secret");

      const abortedIds = new Set(
        requests.filter((e) => e.outcome === "aborted").map((e) => e.url.split("/c/")[1] as string),
      );
      let failingKept = 0;
      for (const [id, acts] of served)
        if (!abortedIds.has(id)) failingKept += acts.filter((act) => FAILING.has(act)).length;
      const breaker = debug.breakers[a.host];
      expect(breaker?.state).toBe("closed");
      expect(breaker?.failureCount).toBeGreaterThanOrEqual(failingKept);
      // An answer the server sent in time may still miss a 60 ms attempt timeout on a busy machine: the upper
      // bound is the attempts the layer made, not the failing answers the server chose.
      expect(breaker?.failureCount).toBeLessThanOrEqual(attempts);
      expect(breaker?.active).toBe(0);
      expect(breaker?.queued).toBe(0);
    }
  });

  it("bulkhead: occupancy, a queued caller's abort and a full queue are reported as they happened", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("ok"), 80));
    const r = createResilience({ bulkhead: { maxConcurrent: 1, maxQueue: 2 }, retry: false });
    const events: RequestEvent[] = [];
    r.on("request", (e) => events.push(e));
    const controller = new AbortController();
    const settled = [0, 1, 2, 3].map((i) =>
      r.fetch(`${a.base}/x${i}`, i === 2 ? { signal: controller.signal } : {}).then(
        async (res) => `${res.status} ${getResilienceInfo(res)?.attempts} ${await res.text()}`,
        (error: Error) => error.name,
      ),
    );
    await wait(10);
    expect(r.health().breakers[a.host]).toMatchObject({ active: 1, queued: 2 });
    controller.abort(new Error("gone"));
    await wait(5);
    expect(r.health().breakers[a.host]).toMatchObject({ active: 1, queued: 1 });
    expect(await Promise.all(settled)).toEqual(["200 1 ok", "200 1 ok", "Error", "BulkheadRejectedError"]);
    expect(a.hits).toHaveLength(2);
    const byUrl = (i: number) => events.find((e) => e.url.endsWith(`/x${i}`));
    expect(byUrl(2)).toMatchObject({ outcome: "aborted", attempts: 0 });
    expect(byUrl(3)).toMatchObject({ outcome: "error", error: "BulkheadRejectedError", attempts: 0 });
    expect(r.debugInfo().totals).toEqual({ calls: 3, failures: 1 });
    expect(r.health().breakers[a.host]).toMatchObject({ active: 0, queued: 0, failureCount: 0 });
  });
});

describe("ledger: chains, hedges, rewrites and redirects", () => {
  it("a hedge that wins: attempts, endpoint, statistics and the loser's host agree with the servers", async () => {
    a.on((hit) => {
      setTimeout(() => {
        if (!hit.res.destroyed) hit.res.end("slow");
      }, 200);
    });
    b.on((hit) => hit.res.end("fast"));
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 20 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const events: RequestEvent[] = [];
    r.on("request", (e) => events.push(e));
    const res = await r.fetch(`${a.base}/v1/job`);
    expect(await res.text()).toBe("fast");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ key: "c", attempts: 2, status: 200, outcome: "response" });
    const debug = r.debugInfo();
    const stats = debug.fallback.c;
    expect(stats?.lastSuccessfulFallback).toBe("q");
    expect(stats?.fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.fallbacks.q).toMatchObject({ calls: 1, successes: 1 });
    expect(debug.breakers[a.host]).toMatchObject({ failureCount: 0, consecutiveFailures: 0 });
    expect(debug.totals).toEqual({ calls: 1, failures: 0 });
  });

  it("a loser waiting out its own retry, under a rewrite of a Request body: every figure names what went out", async () => {
    a.on((hit) => {
      hit.res.writeHead(503);
      hit.res.end("no");
    });
    b.on((hit) => setTimeout(() => hit.res.end(hit.body), 60));
    const r = createResilience({
      retry: { maxAttempts: 3, initialDelay: 200, jitter: "none" },
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 20 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    r.degradation?.setLevel("medium");
    const retries: RetryEvent[] = [];
    r.on("retry", (e) => retries.push(e));
    const request = new Request(`${a.base}/v1/job`, {
      method: "POST",
      headers: { "idempotency-key": "k1", "content-type": "application/json" },
      body: JSON.stringify({ steps: 50 }),
    });
    const res = await r.fetch(request);
    expect(await res.text()).toBe('{"steps":30}');
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", degradationLevel: "medium" });
    expect(a.hits.map((h) => h.body)).toEqual(['{"steps":30}']);
    expect(b.hits.map((h) => h.body)).toEqual(['{"steps":30}']);
    await wait(20);
    expect(retries).toHaveLength(1);
    const debug = r.debugInfo();
    expect(debug.budget?.retriesAllowed).toBe(1);
    expect(debug.breakers[a.host]).toMatchObject({ failureCount: 1, consecutiveFailures: 1 });
    expect(debug.degradation?.window.samples).toBe(1);
  });

  it("a redirect to a host answering 503: hops are one attempt, counted against the first host", async () => {
    a.on((hit) => {
      hit.res.writeHead(302, { location: `${b.base}/t` });
      hit.res.end();
    });
    b.on((hit) => {
      hit.res.writeHead(503);
      hit.res.end("no");
    });
    const r = createResilience({ retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" } });
    const redirects: RedirectEvent[] = [];
    const retries: RetryEvent[] = [];
    r.on("redirect", (e) => redirects.push(e));
    r.on("retry", (e) => retries.push(e));
    const res = await r.fetch(`${a.base}/s`);
    await res.text();
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: a.host });
    expect([a.hits.length, b.hits.length]).toEqual([3, 3]);
    expect(redirects).toHaveLength(3);
    expect(retries).toHaveLength(2);
    const debug = r.debugInfo();
    expect(debug.breakers[a.host]).toMatchObject({ failureCount: 3, consecutiveFailures: 3 });
    expect(debug.breakers[b.host]?.failureCount ?? 0).toBe(0);
    expect(debug.totals).toEqual({ calls: 1, failures: 1 });
    expect(debug.recentErrors.map((e) => e.status)).toEqual([503]);
  });

  it("timeout.total shorter than a Retry-After: no wait started, no retry event, no token spent", async () => {
    a.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "1" });
      hit.res.end("no");
    });
    const r = createResilience({ retry: { maxAttempts: 3 }, timeout: { total: 300 } });
    const retries: RetryEvent[] = [];
    r.on("retry", (e) => retries.push(e));
    const res = await r.fetch(`${a.base}/s`);
    await res.text();
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)?.attempts).toBe(1);
    expect(a.hits).toHaveLength(1);
    expect(retries).toHaveLength(0);
    expect(r.health().budget).toMatchObject({ retriesAllowed: 0, retriesDenied: 0 });
  });
});
