/**
 * Outside-in attack on docs/health-and-events.md: the sentences and combinations the fortytwo and fortyfour runs
 * (test/security/healthdoc-fortytwo-attack.test.ts, healthevents-fortyfour-attack.test.ts) did not drive.
 *
 * Docs:
 * - docs/health-and-events.md: "`degradationLevel` (`"full"` without the degradation stage)"; "`fallback`: each
 *   chain's statistics (`{}` without the fallback stage)"; "a named breaker named like a host is listed in that
 *   host's place"; "an open one whose `timeout` passed reads `half_open`, and a half-open one whose probe lease
 *   ran out unreported reads `open` (the next call re-opens it)"; "`null` while half-open, and for one that reads
 *   `open` because a probe's lease ran out, until the next call re-opens it for `timeout`"; "`lastFailureTime` …
 *   `null` before any and again once a spell ends in a close (a close starts clean, as the counts do)"; "a store of
 *   your own whose `peek` throws fails the calls that meet it, not `health()`: the host shows its local state, and
 *   a `store` event (`read`, outcome `failed`) says why"; "such a host shows the shared reason as `lastError` …
 *   and counts of 0, and `failureRate` is `null`"; "Work run through `execute(fn)` counts there too … keyed by
 *   its `breaker`'s name … (a `fallback` answering for it leaves it failed); a run its caller aborted is left
 *   out. A named breaker's own `.execute(fn)` and a chain's `.execute(input)` count only in that breaker's and
 *   that chain's statistics"; "A listener subscribed twice at once is registered once"; "one called late, after
 *   the same listener subscribed again …, leaves the newer subscription be"; "`execute`'s too (`key` its
 *   `breaker`'s name, else `"execute"`; `url` empty; `reason` the thrown error's name …; `retryAfter` false)";
 *   "A call whose `Request` body could not be read fires it (an `error` of `TypeError`, `attempts: 0`), and so
 *   does one the transport refused before sending anything (a header Node's fetch will not send …) … but nothing
 *   counts it: not `health()`, analytics, the degradation triggers nor the retry budget"; "`open` → `half_open`
 *   when the first call after `timeout` arrives, though `health()` reads `half_open` as soon as `timeout` has
 *   passed"; "a listener that changes the level again is heard out at once, as `EventTarget` does: listeners
 *   after it hear that change first"; "a `ReadableStream` in `init` is never read ahead to be measured: it goes
 *   once, without one"; "`kvStore` says `ok` for each write that went through, `timeout` for a read that never
 *   answered".
 * - SECURITY.md: "URLs lose their userinfo …, query string and fragment … before they reach any of them".
 * - docs/cloudflare.md: "the layer follows an upstream's redirects itself", "`GET /__resilience/health` returns
 *   `health()` as JSON"; docs/retry.md: hops are one attempt, counted against the first host.
 *
 * How: `createResilience`, `getResilienceInfo`, `isCircuitOpenError` (root), `fallback` (./fallback),
 * `degradation` (./degradation), `createClient` (./ky), `resilientProxy`, `kvStore` over an in-memory KV namespace
 * of the test's own (./cloudflare), `recordEvents`, `TestClock` (./testing); a `BreakerStore` of the test's own
 * whose `peek` throws; node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) answering 200/302/307/500/503
 * or never.
 *
 * Paths: plain call, `execute(fn)` (named breaker, `fallback`, caller abort), a named breaker's and a chain's own
 * `execute`, fallback chain (same-origin endpoints, a refused header), redirect (real 302/307, a `Location` with
 * userinfo), degradation rewrite followed by a redirect, `Request` input (an unreadable body stream), a
 * `ReadableStream` body in `init`, `resilientProxy` (upstream route that redirects, health path), ky client (PUT
 * through a 307 and retries), two layers sharing a `kvStore`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * (none: every sentence driven below held on the paths tried)
 *
 * Held (plain `it`):
 * - Without stages: `degradationLevel` "full", `fallback` {}, `debugInfo().degradation` null.
 * - `execute` with `breaker: "upscaler"`: `retry` event key "upscaler", url "", reason the error's name,
 *   `retryAfter` false; `recentErrors` keyed so with url ""; no `request` event. A thrown name holding a URL is
 *   redacted in `reason`; a string or number gives its kind. A `fallback` answering leaves the run failed
 *   (errorRate 1); a run whose caller aborted is left out. `breaker(n).execute` and a chain's `execute` leave
 *   totals and `errorRate` at 0, counting in their own statistics.
 * - `on`: a listener subscribed twice hears once; an old unsubscribe after re-subscribing leaves the new one.
 * - Breaker on the clock: no event at `timeout`, `health()` already `half_open` with `openUntil` null and the
 *   counts that opened it; the first call fires open→half_open then half_open→closed (distinct `gen`s); after the
 *   close counts 0 and `lastFailureTime` null. A probe whose lease ran out reads `open` with `openUntil` null; the
 *   next call is refused and re-opens it for `timeout` (half_open→open event with that `openUntil`).
 * - A named breaker named like a host replaces it in `health().breakers`; the open host keeps `unhealthy`.
 * - A degradation listener that sets the level again: its change is heard by all first; `degrade()` returns
 *   "high" (the level it made) while `currentLevel()` reads "minimal".
 * - Unreadable `Request` body and a `transfer-encoding` header (plain call, and a chain whose endpoints share the
 *   origin): `TypeError`, one `request` event with `attempts: 0`, nothing sent, totals/errorRate/budget/chain
 *   statistics/breakers unchanged, no key in any event or error.
 * - A `ReadableStream` body on a 503: sent once, no `replay` event, attempts 1.
 * - A `peek` that throws: `health()` returns the local open breaker, one `store` event (read, failed) with the
 *   URL in its detail redacted; a call to another host rejects.
 * - A `Location` with userinfo/query/fragment: refused (no hop, no `redirect` event), nothing secret anywhere.
 * - Rewrite then 307 then 503/200: events redirect, retry, redirect, request; info attempts 2, endpoint the first
 *   host, level "low"; the hop's host not in `health()`.
 * - ky PUT through a 307 with two 503s: body re-sent each hop, one `request` event (attempts 3), info on the
 *   response, `expectRetries(2)` from `recordEvents`.
 * - `resilientProxy` upstream route redirecting to a 500: `x-resilience-attempts` 2, endpoint the first host, the
 *   health path's JSON counts both against the first host, the hop not listed, errorRate 1, `degraded`.
 * - Two layers on one `kvStore`: the writer's `store` event write/ok; the reader's `health()` shows the host open
 *   with `lastError` "shared: 2 failures in a row (last: status 503)", counts 0, `failureRate` null; a read that
 *   never answers is reported `timeout` at the next read.
 *
 * Docs-silent (not pinned):
 * - "`reason` the thrown error's name, as `debugInfo()` lists it": after retries `debugInfo()` lists the run as
 *   `RetryExhaustedError`, not the thrown error's name the `retry` event gives; read as "named the same way".
 * - "the outer `degrade()` returns the level it made, as `currentLevel()` reads it" can be read as the level
 *   `currentLevel()` reads after the listener ("minimal"); it returns the one it made ("high"), as
 *   levelmatrix-thirtynine pins.
 * - A closed breaker's `lastError` is `null` after failures that did not open it (only open/half-open promise it).
 * - A chain's later endpoint on another origin does not get the caller's refused header (cross-origin allowlist),
 *   so the chain moves on and answers instead of rejecting with the `TypeError`.
 * - A redirect to a URL with credentials is treated as a network error and retried, counting against the host.
 * - kvStore's read timeout is only noticed at the next refresh (`refreshInterval` on), not 10 s after the read.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
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

function answer(status: number, headers: Record<string, string> = {}) {
  return (h: { res: ServerResponse }) => {
    h.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) h.res.setHeader(k, v);
    h.res.end(status === 200 ? "ok" : "no");
  };
}
const SECRET = "S3CR3T";
const noSecret = (value: unknown) => expect(JSON.stringify(value)).not.toContain(SECRET);

describe("health() without stages", () => {
  it('reads degradationLevel "full", fallback {} and debugInfo().degradation null', async () => {
    const layer = createResilience({ retry: false });
    await layer.fetch(`${a.base}/x`);
    const health = layer.health();
    expect(health.degradationLevel).toBe("full");
    expect(health.fallback).toEqual({});
    expect(layer.debugInfo().degradation).toBeNull();
  });
});

describe("execute(fn)", () => {
  it("keys retry events and failures by the breaker's name, url empty, reason the error's name", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const rec = recordEvents(layer);
    class QuotaError extends Error {
      override name = "QuotaError";
    }
    await expect(
      layer.execute(
        () => {
          throw new QuotaError(`nope ${a.base}/k?key=${SECRET}`);
        },
        { breaker: "upscaler" },
      ),
    ).rejects.toThrow();
    expect(rec.of("retry")).toEqual([
      expect.objectContaining({ key: "upscaler", url: "", attempt: 1, reason: "QuotaError", retryAfter: false }),
    ]);
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: "upscaler", url: "" })]);
    noSecret(info);
    noSecret(rec.events);
    expect(rec.of("request")).toEqual([]);
  });

  it("a thrown name holding a URL, or a value that is no Error: reason redacted, or the value's kind", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const rec = recordEvents(layer);
    const named = Object.assign(new Error("m"), { name: `Bad http://u:${SECRET}@h.example/p?key=${SECRET}#${SECRET}` });
    for (const thrown of [named, `plain http://h.example/p?key=${SECRET}`, 42]) {
      const error = await rejection(
        layer.execute(() => {
          throw thrown;
        }),
      );
      noSecret(String(error));
    }
    expect(rec.of("retry").map((e) => e.reason)).toEqual(["Bad http://h.example/p", "string", "number"]);
    noSecret(rec.events);
    noSecret(layer.debugInfo());
  });

  it("a fallback answering leaves the run failed; a run its caller aborted is left out", async () => {
    const layer = createResilience({ retry: false });
    const value = await layer.execute(
      () => {
        throw new Error("down");
      },
      { fallback: () => "spare" },
    );
    expect(value).toBe("spare");
    expect(layer.health().errorRate).toBe(1);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
    const ac = new AbortController();
    const run = layer.execute(
      async () => {
        ac.abort(new Error("gone"));
        throw new Error("after abort");
      },
      { signal: ac.signal },
    );
    await rejection(run);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("a named breaker's own execute and a chain's execute count only in their own statistics", async () => {
    const layer = createResilience({ retry: false, fallback: fallback([]) });
    const breaker = layer.breaker("own");
    await rejection(
      breaker.execute(() => {
        throw new Error("x");
      }),
    );
    const chain = layer.fallback.chain<string, string>("work");
    chain.add(
      () => {
        throw new Error("first");
      },
      { name: "one" },
    );
    chain.add((input) => `two:${input}`, { name: "two" });
    expect(await chain.execute("in")).toBe("two:in");
    const info = layer.debugInfo();
    expect(info.totals).toEqual({ calls: 0, failures: 0 });
    expect(layer.health().errorRate).toBe(0);
    expect(layer.health().breakers.own).toMatchObject({ failureCount: 1 });
    expect(layer.health().fallback.work).toMatchObject({ fallbacks: { one: { calls: 1 }, two: { successes: 1 } } });
  });
});

describe("on()", () => {
  it("registers a listener subscribed twice once; a late unsubscribe leaves the newer subscription", async () => {
    const layer = createResilience({ retry: false });
    const heard: number[] = [];
    const listener = (e: { attempts: number }) => heard.push(e.attempts);
    const first = layer.on("request", listener);
    const second = layer.on("request", listener);
    await layer.fetch(`${a.base}/x`);
    expect(heard).toEqual([1]);
    first();
    second();
    await layer.fetch(`${a.base}/x`);
    expect(heard).toEqual([1]);
    const again = layer.on("request", listener);
    first();
    await layer.fetch(`${a.base}/x`);
    expect(heard).toEqual([1, 1]);
    again();
  });
});

describe("breaker states as health() reads them", () => {
  it("reads half_open once timeout passed, with no event until a call; a close clears lastFailureTime", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2, timeout: 10_000, successThreshold: 1 },
    });
    const rec = recordEvents(layer);
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    await layer.fetch(`${a.base}/x`);
    const open = layer.health().breakers[a.host];
    expect(open).toMatchObject({ state: "open", failureCount: 2, openUntil: 1_010_000, lastError: "status 503" });
    expect(open?.lastFailureTime).toBe(1_000_000);
    await clock.advance(10_000);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null, failureCount: 2 });
    expect(layer.health().status).not.toBe("unhealthy");
    expect(rec.of("breaker").map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open"]);
    a.on(answer(200));
    await layer.fetch(`${a.base}/x`);
    const changes = rec.of("breaker");
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open", "half_open>closed"]);
    const gens = changes.map((e) => e.gen);
    expect(new Set(gens).size).toBe(3);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "closed",
      failureCount: 0,
      consecutiveFailures: 0,
      lastFailureTime: null,
      openUntil: null,
    });
  });

  it("a probe whose lease ran out reads open with openUntil null, and the next call re-opens it for timeout", async () => {
    const clock = new TestClock(2_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1_000_000 },
      breaker: { failureThreshold: 1, timeout: 10_000, probeTimeout: 5_000 },
    });
    const rec = recordEvents(layer);
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    await clock.advance(10_000);
    a.on(() => {}); // the probe hangs
    const ac = new AbortController();
    const probe = layer.fetch(`${a.base}/x`, { signal: ac.signal });
    await a.nth(2);
    expect(layer.health().breakers[a.host]?.state).toBe("half_open");
    await clock.advance(5_001);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: null });
    const refused = await rejection(layer.fetch(`${a.base}/x`));
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: clock.now() + 10_000 });
    expect(rec.of("breaker").at(-1)).toMatchObject({ from: "half_open", to: "open", openUntil: clock.now() + 10_000 });
    ac.abort();
    await rejection(probe);
  });
});

describe("a named breaker named like a host", () => {
  it("is listed in the host's place, and the open host still makes status unhealthy", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    layer.breaker(a.host);
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(health.status).toBe("unhealthy");
  });
});

describe("degradation listeners that move the level again", () => {
  it("are heard out at once: later listeners hear the inner change first; degrade() returns the level it made", () => {
    const layer = createResilience({ degradation: degradation({}) });
    const heard: string[] = [];
    let once = true;
    layer.on("degradation", (e) => {
      heard.push(`first ${e.from}>${e.to}`);
      if (once) {
        once = false;
        layer.degradation.setLevel("minimal");
      }
    });
    layer.on("degradation", (e) => heard.push(`second ${e.from}>${e.to}`));
    const made = layer.degradation.degrade("test");
    expect(heard).toEqual(["first full>high", "first high>minimal", "second high>minimal", "second full>high"]);
    expect(made.name).toBe("high");
    expect(layer.degradation.currentLevel().name).toBe("minimal");
  });
});

function broken(): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode("part"));
      } else controller.error(new Error(`disk gone ${SECRET}`));
    },
  });
}

describe("calls that failed for their own request", () => {
  it("a Request body that could not be read: request event (TypeError, attempts 0), counted nowhere", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock, retry: fast });
    const rec = recordEvents(layer);
    const budgetBefore = layer.health().budget;
    const req = new Request(`${a.base}/up?key=${SECRET}`, { method: "POST", body: broken(), duplex: "half" } as never);
    const error = await rejection(layer.fetch(req));
    expect((error as Error).name).toBe("TypeError");
    noSecret(String(error));
    expect(a.hits).toHaveLength(0);
    expect(rec.of("request")).toEqual([
      expect.objectContaining({ url: `${a.base}/up`, attempts: 0, error: "TypeError", outcome: "error" }),
    ]);
    noSecret(rec.events);
    const health = layer.health();
    expect(health.errorRate).toBe(0);
    expect(health.budget).toEqual(budgetBefore);
    expect(health.breakers[a.host]?.failureCount ?? 0).toBe(0);
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });

  it("a header Node's fetch will not send, on a plain call and through a chain: request event, counted nowhere", async () => {
    const layer = createResilience({
      retry: fast,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${a.base}/v2` },
          ],
        },
      ]),
    });
    const rec = recordEvents(layer);
    const budgetBefore = layer.health().budget;
    const init = { headers: { "transfer-encoding": "chunked" } };
    const plain = await rejection(layer.fetch(`${c.base}/x?key=${SECRET}`, init));
    expect((plain as Error).name).toBe("TypeError");
    const chained = await rejection(layer.fetch(`${a.base}/v1/x?key=${SECRET}`, init));
    expect((chained as Error).name).toBe("TypeError");
    noSecret([String(plain), String(chained)]);
    expect(a.hits.length + b.hits.length + c.hits.length).toBe(0);
    expect(rec.of("request").map((e) => [e.attempts, e.error])).toEqual([
      [0, "TypeError"],
      [0, "TypeError"],
    ]);
    noSecret(rec.events);
    const health = layer.health();
    expect(health.errorRate).toBe(0);
    expect(health.budget).toEqual(budgetBefore);
    expect(health.fallback.gen?.fallbacks.p).toMatchObject({ calls: 0 });
    expect(health.fallback.gen?.fallbacks.q).toMatchObject({ calls: 0 });
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });

  it("a ReadableStream in init goes once, without a replay event, though the answer is retryable", async () => {
    const layer = createResilience({ retry: fast });
    const rec = recordEvents(layer);
    a.on(answer(503));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("hello"));
        controller.close();
      },
    });
    const res = await layer.fetch(`${a.base}/up`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(503);
    expect(a.hits).toHaveLength(1);
    expect(a.hits[0]?.body).toBe("hello");
    expect(rec.of("replay")).toEqual([]);
    expect(rec.of("request")).toEqual([expect.objectContaining({ status: 503, attempts: 1 })]);
    expect(getResilienceInfo(res)?.attempts).toBe(1);
  });
});

describe("a store of your own whose peek throws", () => {
  it("fails the calls that meet it, not health(): local state shown, a store read/failed event says why", async () => {
    let throwing = false;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek(): BreakerSnapshot | undefined {
        if (throwing) throw new Error(`peek broke at ${c.base}/state?key=${SECRET}#${SECRET}`);
        return undefined;
      },
    };
    const layer = createResilience({ retry: false, store, breaker: { failureThreshold: 1 } });
    const rec = recordEvents(layer);
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    throwing = true;
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({ state: "open", failureCount: 1 });
    expect(rec.of("store")).toEqual([
      expect.objectContaining({ store: "mine", key: a.host, operation: "read", outcome: "failed" }),
    ]);
    noSecret(rec.of("store"));
    expect(await rejection(layer.fetch(`${b.base}/y`))).toBeInstanceOf(Error);
  });
});

describe("redirects: URLs in every event and error", () => {
  it("a Location with userinfo, query and fragment reaches no event, error, health() or debugInfo()", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const rec = recordEvents(layer);
    a.on(answer(302, { location: `http://u:${SECRET}@${b.host}/next?key=${SECRET}#${SECRET}` }));
    b.on(answer(503));
    const outcome = await layer.fetch(`${a.base}/x?key=${SECRET}`).then(
      (res) => res.status,
      (error: unknown) => error,
    );
    // Refused as fetch refuses it (a network error, retried): no hop followed, so no redirect event.
    expect(b.hits).toHaveLength(0);
    expect(rec.of("redirect")).toEqual([]);
    expect(rec.of("request")).toEqual([expect.objectContaining({ url: `${a.base}/x`, attempts: 2 })]);
    noSecret(rec.events);
    noSecret(layer.debugInfo());
    if (outcome instanceof Error) {
      noSecret([String(outcome), outcome.stack, String((outcome as { cause?: unknown }).cause)]);
      expect(String((outcome as { cause?: unknown }).cause)).toContain("credentials");
    } else expect.unreachable("a redirect to a URL with credentials is refused");
  });

  it("a degradation rewrite followed by a redirect: level, first host and one attempt per hop chain", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      degradation: degradation({ rules: [{ match: `${a.base}/gen`, params: { steps: { query: "steps" } } }] }),
    });
    layer.degradation.setLevel("low");
    const rec = recordEvents(layer);
    a.on(answer(307, { location: `${b.base}/gen2?key=${SECRET}` }));
    b.on((h) => answer(h.n < 2 ? 503 : 200)(h));
    const res = await layer.fetch(`${a.base}/gen?steps=50&key=${SECRET}`);
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.path)).toEqual(["/gen?steps=20&key=S3CR3T", "/gen?steps=20&key=S3CR3T"]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: a.host, degradationLevel: "low" });
    expect(rec.events.map((e) => e.type)).toEqual(["redirect", "retry", "redirect", "request"]);
    expect(rec.of("retry")[0]).toMatchObject({ key: a.host, url: `${a.base}/gen`, reason: "status 503" });
    expect(rec.of("request")[0]).toMatchObject({ key: a.host, status: 200, attempts: 2 });
    noSecret(rec.events);
    const health = layer.health();
    expect(health.breakers[b.host]).toBeUndefined();
    expect(health.breakers[a.host]).toMatchObject({ failureCount: 1 });
  });
});

describe("the ky client", () => {
  it("a Request through ky following a redirect: one request event, info attempts = hop chains, events in order", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const rec = recordEvents(layer);
    const api = createClient({ resilience: layer });
    a.on(answer(307, { location: `${b.base}/land?key=${SECRET}` }));
    b.on((h) => answer(h.n < 3 ? 503 : 200)(h));
    const res = await api.put(`${a.base}/job?key=${SECRET}`, { json: { prompt: "waves" } });
    expect(res.status).toBe(200);
    expect(b.hits.map((h) => h.body)).toEqual(Array(3).fill('{"prompt":"waves"}'));
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: a.host, fromFallback: false });
    expect(rec.events.map((e) => e.type)).toEqual(["redirect", "retry", "redirect", "retry", "redirect", "request"]);
    expect(rec.of("request")).toEqual([
      expect.objectContaining({ key: a.host, method: "PUT", status: 200, attempts: 3, outcome: "response" }),
    ]);
    rec.expectRetries(2, a.host);
    noSecret(rec.events);
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
  });
});

describe("resilientProxy", () => {
  it("follows an upstream's redirect and reports it on the health path: first host counted, hop not listed", async () => {
    a.on(answer(302, { location: `${b.base}/final?key=${SECRET}` }));
    b.on(answer(500));
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...fast, maxAttempts: 2 } },
    });
    const res = await proxy.fetch(new Request(`https://w.example/v1/x?key=${SECRET}`), {}, ctx);
    expect(res.status).toBe(500);
    expect(res.headers.get("x-resilience-attempts")).toBe("2");
    expect(res.headers.get("x-resilience-endpoint")).toBe(a.host);
    expect(b.hits).toHaveLength(2);
    const body = await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).text();
    noSecret(body);
    const health = JSON.parse(body);
    expect(health.breakers[b.host]).toBeUndefined();
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 2 });
    expect(health.degradationLevel).toBe("full");
    expect(health.errorRate).toBe(1);
    expect(health.status).toBe("degraded");
  });
});

describe("kvStore through health()", () => {
  it("a host another isolate opened shows the shared reason, counts 0, failureRate null; store events ok/timeout", async () => {
    const clock = new TestClock(5_000_000);
    const kept = new Map<string, { value: string; metadata: unknown }>();
    let hang = false;
    const ns = {
      getWithMetadata: <M>(key: string) =>
        hang
          ? new Promise<never>(() => {})
          : Promise.resolve({
              value: kept.get(key)?.value ?? null,
              metadata: (kept.get(key)?.metadata ?? null) as M | null,
            }),
      put: async (key: string, value: string, options?: { metadata?: unknown }) => {
        kept.set(key, { value, metadata: options?.metadata });
      },
    };
    const opts = { clock, publishJitter: 0, minPublishInterval: 1_000 };
    const breaker = { failureThreshold: 2, timeout: 600_000 };
    const one = createResilience({ clock, retry: false, breaker, store: kvStore(ns, opts) });
    const two = createResilience({ clock, retry: false, breaker, store: kvStore(ns, opts) });
    const recOne = recordEvents(one);
    const recTwo = recordEvents(two);
    await two.fetch(`${a.base}/x`);
    a.on(answer(503));
    await one.fetch(`${a.base}/x`);
    await one.fetch(`${a.base}/x`);
    await clock.advance(1);
    expect(recOne.of("store")).toEqual([expect.objectContaining({ operation: "write", outcome: "ok", key: a.host })]);
    await clock.advance(30_000);
    two.health(); // starts the read, as the next call would
    await clock.advance(1);
    const shared = two.health().breakers[a.host];
    expect(shared).toMatchObject({ state: "open", failureCount: 0, consecutiveFailures: 0, failureRate: null });
    expect(shared?.lastError).toMatch(/^shared: 2 failures in a row \(last: status 503\)$/);
    expect(two.health().status).toBe("unhealthy");
    hang = true;
    await clock.advance(30_000);
    two.health(); // a read that never answers
    await clock.advance(30_000);
    two.health(); // the next read says so
    expect(recTwo.of("store")).toContainEqual(expect.objectContaining({ operation: "read", outcome: "timeout" }));
    expect(two.health().breakers[a.host]?.state).toBe("open");
  });
});
