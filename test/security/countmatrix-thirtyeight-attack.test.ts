/**
 * Outside-in attack on what the layer COUNTS: a differential matrix of outcomes (200, 404, 429, 503 then 200, 503
 * exhausted, network error, reset after the request, attempt timeout, total timeout, the caller's abort before /
 * during / after, an open breaker's refusal, a full bulkhead, a transport refusal, an unreadable or failing body)
 * against the paths a call takes, checked in every place that counts: `health()` (error rate, breakers'
 * `failureCount` / `consecutiveFailures` / `failureRate` / `lastError`, budget), `debugInfo()` (totals, recent
 * failures, the degradation window), the `request` event, a chain's `statistics()`, and the servers' own tally.
 * Docs: docs/health-and-events.md ("A call whose `Request` body could not be read fires it (an `error` of
 * `TypeError`, `attempts: 0`), and so does one the transport refused before sending anything …, but nothing counts
 * it: not `health()`, analytics nor the degradation triggers", "`request` fires … not for one refused before it
 * started (… a signal already aborted: nothing was tried, and `health()` does not count it either)", "`debugInfo()`
 * adds totals (of calls that settled with a response or an error: a call its caller aborted is left out, as it is
 * from the error rate and the degradation triggers)", "Work run through `execute(fn)` counts there too … keyed by its
 * `breaker`'s name, else `"execute"`, with an empty `url` … a run its caller aborted is left out. A named breaker's
 * own `.execute(fn)` and a chain's `.execute(input)` count only in that breaker's and that chain's statistics",
 * health: the budget's tokens); docs/breakers.md ("Network errors, attempt timeouts, 5xx and 429 are failures; other
 * 4xx are the caller's fault and count as successes of the service; a caller's abort is neither, and so is an attempt
 * cut by `timeout.total`", "A full queue rejects at once with `BulkheadRejectedError`", "a queued caller that aborts
 * leaves the queue"); docs/retry.md ("A body stream that fails during that read fails the call with a `TypeError`
 * … nothing was sent, retried or counted", transport refusal: "no retry, no attempt counted, the host's breaker and
 * the error rate hear nothing", "each call earns `ratio` tokens (0.1), each retry spends one", "The hops are one
 * attempt … the final status counts against the first host's breaker"); docs/fallback.md (statistics: "a run its
 * caller aborted, or that `timeout.total` ended, is not counted, nor the endpoint it was waiting on", "A hedge that
 * lost counts there as a call that did not serve … (its host's breaker does not count it)"); docs/degradation.md
 * ("Automatic triggers are fed by every call that settles without the caller aborting it").
 * How: `createResilience`, `on("request")`, `health()`, `debugInfo()`, `execute`, `breaker(name).execute` (root);
 * `fallback` (./fallback); `degradation({ rules: [] })` (./degradation, for its window in `debugInfo()`);
 * `createClient` (./ky); `resilientProxy` (./cloudflare) called in Node as a plain handler; node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts) that record every request. Waits are real and short (≤ 50 ms) against
 * the sockets; retries use 1–2 ms backoffs.
 * Paths: plain call, `Request` input, a chain that moves on, a hedge with winner and loser, a redirect followed to
 * another host, `execute(fn)` (with and without a breaker), a named breaker's `.execute`, the ky client,
 * `resilientProxy` as a plain handler.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a call the transport refused earns the retry budget no token, and a `Request` body
 * stream failing past the read-ahead is the caller's failure, counted by nothing):
 * 1. docs/health-and-events.md: a call "the transport refused before sending anything" fires `request` "but nothing
 *    counts it: not `health()`, analytics nor the degradation triggers" (docs/retry.md: "no retry, no attempt
 *    counted"). Observed: each such call (a header Node's fetch will not send, `expect: 100-continue`) earns the
 *    retry budget its `ratio`: `health().budget.tokens` goes 0 → 1 over ten refused calls (`minPerSecond: 0`), and
 *    that credit pays for a retry of a later 503 (the upstream gets 2 requests, not 1). The other calls the docs
 *    leave out earn nothing (a signal already aborted, an unreadable `Request` body: tokens stay 0). From
 *    src/http/resilient-fetch.ts `send()`: `parts.budget?.deposit()` runs before the transport is called, and the
 *    refusal found later (src/http/send/send-attempt.ts `isPlatformRefusal`) takes back the attempt, not the deposit.
 * 2. The same failing `Request` body stream is counted or not depending on `maxReplayBytes`, with no doc saying so.
 *    docs/retry.md: "A body stream that fails during that read fails the call with a `TypeError` … nothing was sent,
 *    retried or counted" (held below, limit 1,000: the host's breaker hears nothing). With the limit below the
 *    stream's first chunk, the same stream failing on its second pull is sent on and fails inside the transport:
 *    the call rejects with `RetryExhaustedError` (cause `TypeError: fetch failed` ← the stream's `Error`), the host's
 *    breaker counts it as the host's network error (docs/breakers.md counts the host's failures only), and two such
 *    calls (`failureThreshold: 2`) open the breaker of a host that never failed: the next plain GET to it is refused
 *    with `CircuitOpenError`. From src/http/send/send-attempt.ts `sendAttempt` (any transport rejection that is no
 *    abort or platform refusal goes to `breaker.reportError` as a failure) and src/http/resilient-fetch.ts (the call
 *    is left out only when `attempts === 0`).
 *
 * Held (plain `it`):
 * - Plain call, each outcome, every place agreeing (totals = degradation window samples, failures = recent failures
 *   = error rate × calls = window error rate × samples): 200 and 404 count a success and a breaker success; 429 and
 *   503 exhausted one failed call and two failed attempts (`failureRate` 1), one retry allowed; 503 then 200 one
 *   good call, breaker 1 of 2 failed, `consecutiveFailures` 0; a refused origin and a reset (GET) one failed call
 *   (`RetryExhaustedError`) and two failed attempts; an attempt timeout two failed attempts; `timeout.total` one
 *   failed call and nothing on the breaker (`failureRate` null).
 * - The caller's abort: before the call, no `request` event, nothing counted, no host listed, no token earned;
 *   during, one `aborted` event, nothing counted anywhere, the breaker neither; after the response (body reading),
 *   the call stays one success; a queued caller's abort leaves the queue (`queued` 0) uncounted.
 * - An open breaker's refusal (`attempts` 0) and a full bulkhead count one failed call each and nothing on the
 *   breaker; an unreadable `Request` body and a transport refusal fire an `error` event with `attempts` 0 and
 *   count nothing (no attempt, breaker silent, totals 0).
 * - `Request` input: a 503 exhausted counts exactly as the plain call does.
 * - Chain that moves on (503 ×2, then 200): one good call, `attempts` 3, p's breaker 2 failures, statistics p 0/1,
 *   q 1/1; `timeout.total` in the chain: one failed call, p counted, q (waited on) not; the caller's abort: the run
 *   and q uncounted, totals 0.
 * - Hedge: the loser counted in statistics (1 call, 0 successes) and not on its breaker; one call in totals.
 * - Redirect to another host answering 503: the first host's breaker counts both attempts, the other host is not
 *   listed, the failure is keyed by the first host.
 * - `execute(fn)`: retried work counts once (keyed `"execute"`, empty URL); under a breaker, each attempt on the
 *   breaker; a named breaker's own `.execute` only on the breaker; an aborted run left out (its attempt stays on
 *   the breaker).
 * - ky: an `HTTPError` 503 counts as the plain call; ky's own timeout is the caller's abort, left out.
 * - `resilientProxy` as a plain Node handler: its health endpoint shows the 503's counts; a client's abort and a
 *   refused header (502) leave them unchanged.
 *
 * Docs-silent (not pinned):
 * - A chain whose endpoints all answer 408 resolves with the 408: the error rate counts a success (and the breakers
 *   count 408 as a success), while the chain's statistics count each endpoint failed (`overallSuccessRate` 0).
 * - A bulkhead rejection in a chain counts as that endpoint's failed call in statistics (latency ~0) and nothing on
 *   its breaker.
 * - Calls an open breaker or a full bulkhead refused, and calls the caller aborted mid-way, earn budget tokens.
 * - With `timeout.attempt` equal to `timeout.total`, the hanging attempt settles as the total timeout (the breaker
 *   hears nothing).
 * - A transport-refused call leaves its host listed in `health().breakers` with zero counts.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  type RequestEvent,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
type Options = NonNullable<Parameters<typeof createResilience>[0]>;

const answer =
  (status: number) =>
  (h: Hit): void => {
    h.res.statusCode = status;
    h.res.end(String(status));
  };
const hang = (): void => {};
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A layer with two attempts, the degradation window in `debugInfo()`, and its `request` events. */
function layer(extra: Options = {}) {
  const r = createResilience({ retry: { ...fast, maxAttempts: 2 }, degradation: degradation({ rules: [] }), ...extra });
  const events: RequestEvent[] = [];
  r.on("request", (e) => events.push(e));
  return { r, events };
}

/** Every place that counts, for one host or name. */
function places(r: Resilience, key?: string) {
  const d = r.debugInfo();
  const breaker = key === undefined ? undefined : d.breakers[key];
  return {
    calls: d.totals.calls,
    failures: d.totals.failures,
    recent: d.recentErrors.map((e) => ({ key: e.key, url: e.url, status: e.status, error: e.error })),
    samples: d.degradation?.window.samples,
    breaker: breaker && {
      state: breaker.state,
      failureCount: breaker.failureCount,
      consecutiveFailures: breaker.consecutiveFailures,
      failureRate: breaker.failureRate,
    },
    retriesAllowed: d.budget?.retriesAllowed,
  };
}

/** The places that count the same calls agree: totals, recent failures, error rate, degradation window. */
function expectAgree(r: Resilience): void {
  const d = r.debugInfo();
  const { calls, failures } = d.totals;
  expect(d.recentErrors.length).toBe(Math.min(failures, 50));
  expect(d.degradation?.window.samples).toBe(calls);
  const rate = calls === 0 ? 0 : failures / calls;
  expect(d.errorRate).toBeCloseTo(rate, 10);
  expect(d.degradation?.window.errorRate).toBeCloseTo(rate, 10);
}

const outcome = (p: Promise<Response>) =>
  p.then(
    (res) => res.status,
    (e: unknown) => (e as Error).name,
  );
const brief = (events: RequestEvent[]) => events.map((e) => ({ outcome: e.outcome, attempts: e.attempts }));

/** A body stream whose first pull gives 100 bytes and whose second fails (a file that went away). */
function failingStream(): ReadableStream<Uint8Array> {
  let pulls = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(new TextEncoder().encode("x".repeat(100)));
      else c.error(new Error("disk gone"));
    },
  });
}

describe("plain call: each outcome in every place", () => {
  const cases: Array<{
    name: string;
    on: (h: Hit) => void;
    status: number | string;
    hits: number;
    failed: boolean;
    breaker: { failureCount: number; consecutiveFailures: number; failureRate: number };
    retries: number;
  }> = [
    {
      name: "200",
      on: answer(200),
      status: 200,
      hits: 1,
      failed: false,
      breaker: { failureCount: 0, consecutiveFailures: 0, failureRate: 0 },
      retries: 0,
    },
    {
      name: "404",
      on: answer(404),
      status: 404,
      hits: 1,
      failed: false,
      breaker: { failureCount: 0, consecutiveFailures: 0, failureRate: 0 },
      retries: 0,
    },
    {
      name: "429",
      on: answer(429),
      status: 429,
      hits: 2,
      failed: true,
      breaker: { failureCount: 2, consecutiveFailures: 2, failureRate: 1 },
      retries: 1,
    },
    {
      name: "503 exhausted",
      on: answer(503),
      status: 503,
      hits: 2,
      failed: true,
      breaker: { failureCount: 2, consecutiveFailures: 2, failureRate: 1 },
      retries: 1,
    },
    {
      name: "503 then 200",
      on: (h) => answer(h.n === 1 ? 503 : 200)(h),
      status: 200,
      hits: 2,
      failed: false,
      breaker: { failureCount: 1, consecutiveFailures: 0, failureRate: 0.5 },
      retries: 1,
    },
    {
      name: "reset after the request (GET, retried)",
      on: (h) => h.res.socket?.destroy(),
      status: "RetryExhaustedError",
      hits: 2,
      failed: true,
      breaker: { failureCount: 2, consecutiveFailures: 2, failureRate: 1 },
      retries: 1,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.failed ? "one failed call" : "one good call"}, the attempts on the breaker, places agree`, async () => {
      a.on(c.on);
      const { r, events } = layer();
      expect(await outcome(r.fetch(`${a.base}/x?key=secret`))).toBe(c.status);
      expect(a.hits.length).toBe(c.hits);
      const p = places(r, a.host);
      expect(p).toMatchObject({ calls: 1, failures: c.failed ? 1 : 0, samples: 1, retriesAllowed: c.retries });
      expect(p.breaker).toEqual({ state: "closed", ...c.breaker });
      expect(brief(events)).toEqual([
        { outcome: c.failed && typeof c.status === "string" ? "error" : "response", attempts: c.hits },
      ]);
      if (c.failed) expect(p.recent[0]).toMatchObject({ key: a.host, url: `${a.base}/x` });
      expectAgree(r);
    });
  }

  it("a refused origin: one failed call, two failed attempts", async () => {
    const origin = await refusedOrigin();
    const { r, events } = layer();
    expect(await outcome(r.fetch(`${origin}/x`))).toBe("RetryExhaustedError");
    const host = new URL(origin).host;
    expect(places(r, host)).toMatchObject({
      calls: 1,
      failures: 1,
      breaker: { failureCount: 2, consecutiveFailures: 2, failureRate: 1 },
    });
    expect(brief(events)).toEqual([{ outcome: "error", attempts: 2 }]);
    expectAgree(r);
  });

  it("an attempt timeout counts each attempt on the breaker; `timeout.total` counts the call only", async () => {
    a.on(hang);
    const attempt = layer({ timeout: { attempt: 20 } });
    expect(await outcome(attempt.r.fetch(`${a.base}/x`))).toBe("TimeoutError");
    expect(places(attempt.r, a.host)).toMatchObject({
      calls: 1,
      failures: 1,
      breaker: { failureCount: 2, consecutiveFailures: 2, failureRate: 1 },
    });
    expectAgree(attempt.r);

    const total = layer({ timeout: { total: 30 } });
    expect(await outcome(total.r.fetch(`${a.base}/x`))).toBe("TimeoutError");
    expect(places(total.r, a.host)).toMatchObject({
      calls: 1,
      failures: 1,
      breaker: { failureCount: 0, consecutiveFailures: 0, failureRate: null },
    });
    expect(brief(total.events)).toEqual([{ outcome: "error", attempts: 1 }]);
    expectAgree(total.r);
  });

  it("the caller's abort before, during and after: nothing counted, but the finished call", async () => {
    a.on(hang);
    const { r, events } = layer({ budget: { minPerSecond: 0 } });
    const before = new AbortController();
    before.abort();
    expect(await outcome(r.fetch(`${a.base}/x`, { signal: before.signal }))).toBe("AbortError");
    expect(events).toEqual([]);
    expect(r.health().breakers).toEqual({});
    expect(r.health().budget?.tokens).toBe(0);

    const during = new AbortController();
    const call = outcome(r.fetch(`${a.base}/x`, { signal: during.signal }));
    await a.nth(1);
    during.abort();
    expect(await call).toBe("AbortError");
    expect(brief(events)).toEqual([{ outcome: "aborted", attempts: 1 }]);
    expect(places(r, a.host)).toMatchObject({
      calls: 0,
      failures: 0,
      breaker: { failureCount: 0, consecutiveFailures: 0, failureRate: null },
    });

    a.on((h) => h.res.write("part of a body"));
    const after = new AbortController();
    const res = await r.fetch(`${a.base}/y`, { signal: after.signal });
    after.abort();
    await res.text().catch(() => {});
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 0, breaker: { failureCount: 0, failureRate: 0 } });
    expectAgree(r);
  });

  it("an open breaker's refusal and a full bulkhead: one failed call each, nothing on the breaker", async () => {
    a.on(answer(503));
    const open = layer({ retry: false, breaker: { failureThreshold: 1 } });
    await open.r.fetch(`${a.base}/x`);
    const refused = await open.r.fetch(`${a.base}/x`).catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(a.hits.length).toBe(1);
    expect(brief(open.events)).toEqual([
      { outcome: "response", attempts: 1 },
      { outcome: "error", attempts: 0 },
    ]);
    expect(places(open.r, a.host)).toMatchObject({
      calls: 2,
      failures: 2,
      breaker: { state: "open", failureCount: 1, consecutiveFailures: 1 },
    });
    expectAgree(open.r);

    a.on(hang);
    const full = layer({ retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const holder = new AbortController();
    const held = full.r.fetch(`${a.base}/x`, { signal: holder.signal }).catch(() => undefined);
    await a.nth(2);
    expect(await outcome(full.r.fetch(`${a.base}/x`))).toBe("BulkheadRejectedError");
    expect(places(full.r, a.host)).toMatchObject({ calls: 1, failures: 1, breaker: { failureCount: 0 } });
    holder.abort();
    await held;
    expect(places(full.r, a.host)).toMatchObject({ calls: 1, failures: 1 });
    expectAgree(full.r);
  });

  it("a queued caller's abort leaves the queue, uncounted", async () => {
    a.on(hang);
    const { r, events } = layer({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const first = new AbortController();
    const second = new AbortController();
    const p1 = r.fetch(`${a.base}/x`, { signal: first.signal }).catch(() => undefined);
    await a.nth(1);
    const p2 = r.fetch(`${a.base}/x`, { signal: second.signal }).catch(() => undefined);
    await wait(5);
    expect(r.health().breakers[a.host]).toMatchObject({ active: 1, queued: 1 });
    second.abort();
    await p2;
    expect(r.health().breakers[a.host]).toMatchObject({ active: 1, queued: 0 });
    expect(brief(events)).toEqual([{ outcome: "aborted", attempts: 0 }]);
    first.abort();
    await p1;
    expect(places(r)).toMatchObject({ calls: 0, failures: 0, samples: 0 });
  });

  it("an unreadable `Request` body and a transport refusal: an event with attempts 0, nothing counted", async () => {
    const { r, events } = layer();
    const unreadable = new Request(`${a.base}/x`, {
      method: "POST",
      body: new ReadableStream({
        pull(c) {
          c.error(new Error("boom"));
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(await outcome(r.fetch(unreadable))).toBe("TypeError");
    expect(r.health().breakers).toEqual({});
    expect(await outcome(r.fetch(`${a.base}/x`, { headers: { expect: "100-continue" } }))).toBe("TypeError");
    expect(a.hits.length).toBe(0);
    expect(brief(events)).toEqual([
      { outcome: "error", attempts: 0 },
      { outcome: "error", attempts: 0 },
    ]);
    expect(places(r, a.host)).toMatchObject({
      calls: 0,
      failures: 0,
      samples: 0,
      breaker: { failureCount: 0, failureRate: null },
    });
  });

  it("a `Request` body stream failing within the read-ahead counts nothing, on the breaker neither", async () => {
    const { r } = layer({ maxReplayBytes: 1_000, breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 2; i++) {
      const req = new Request(`${a.base}/up`, { method: "POST", body: failingStream(), duplex: "half" } as RequestInit);
      expect(await outcome(r.fetch(req))).toBe("TypeError");
    }
    expect(await outcome(r.fetch(`${a.base}/ok`))).toBe(200);
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 0, breaker: { failureCount: 0 } });
  });
});

describe("the same outcome through other paths", () => {
  it("`Request` input: a 503 exhausted counts exactly as the plain call", async () => {
    a.on(answer(503));
    const plain = layer();
    await plain.r.fetch(`${a.base}/x`, { method: "PUT", body: "x" });
    const viaRequest = layer();
    await viaRequest.r.fetch(new Request(`${a.base}/x`, { method: "PUT", body: "x" }));
    expect(a.hits.length).toBe(4);
    expect(places(viaRequest.r, a.host)).toEqual(places(plain.r, a.host));
    expect(brief(viaRequest.events)).toEqual(brief(plain.events));
  });

  const chain = (extra: object = {}) =>
    fallback([
      {
        name: "c",
        ...extra,
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "q", url: `${b.base}/v1` },
        ],
      },
    ]);
  const stats = (r: Resilience) => r.health().fallback.c;

  it("a chain that moves on: one good call, each host's own attempts, each endpoint's own statistics", async () => {
    a.on(answer(503));
    const { r, events } = layer({ fallback: chain() });
    const res = await r.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "q", fromFallback: true });
    expect(brief(events)).toEqual([{ outcome: "response", attempts: 3 }]);
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 0, breaker: { failureCount: 2 } });
    expect(places(r, b.host).breaker).toMatchObject({ failureCount: 0, failureRate: 0 });
    expect(stats(r)?.fallbacks).toMatchObject({ p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 1 } });
    expect(stats(r)?.overallSuccessRate).toBe(1);
    expectAgree(r);
  });

  it("a chain under `timeout.total`: one failed call, the endpoint waited on uncounted", async () => {
    a.on(answer(503));
    b.on(hang);
    const { r } = layer({ fallback: chain(), timeout: { total: 40 } });
    expect(await outcome(r.fetch(`${a.base}/v1/x`))).toBe("TimeoutError");
    expect(places(r)).toMatchObject({ calls: 1, failures: 1 });
    expect(stats(r)?.fallbacks).toMatchObject({ p: { calls: 1, successes: 0 }, q: { calls: 0 } });
    expect(places(r, b.host).breaker).toMatchObject({ failureCount: 0, failureRate: null });
    expectAgree(r);
  });

  it("a chain the caller aborts: neither the run nor the endpoint waited on counted", async () => {
    a.on(answer(503));
    b.on(hang);
    const { r, events } = layer({ fallback: chain() });
    const controller = new AbortController();
    const call = outcome(r.fetch(`${a.base}/v1/x`, { signal: controller.signal }));
    await b.nth(1);
    controller.abort();
    expect(await call).toBe("AbortError");
    expect(brief(events)).toEqual([{ outcome: "aborted", attempts: 3 }]);
    expect(places(r)).toMatchObject({ calls: 0, failures: 0, samples: 0 });
    expect(stats(r)).toMatchObject({ overallSuccessRate: 0, fallbacks: { q: { calls: 0 } } });
    expect(places(r, b.host).breaker).toMatchObject({ failureCount: 0, failureRate: null });
  });

  it("a hedge: the loser counts in statistics, not on its breaker; one call in totals", async () => {
    a.on(hang);
    const { r, events } = layer({ fallback: chain({ hedge: { delay: 20 } }) });
    const res = await r.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(200);
    expect(brief(events)).toEqual([{ outcome: "response", attempts: 2 }]);
    expect(stats(r)?.fallbacks).toMatchObject({ p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 1 } });
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 0, breaker: { failureCount: 0, failureRate: null } });
    await a.hits[0]?.closed;
    expectAgree(r);
  });

  it("a redirect to another host: the first host's breaker counts the final 503s, the other is not listed", async () => {
    a.on((h) => {
      h.res.statusCode = 302;
      h.res.setHeader("location", `${b.base}/y`);
      h.res.end();
    });
    b.on(answer(503));
    const { r, events } = layer();
    expect(await outcome(r.fetch(`${a.base}/x`))).toBe(503);
    expect(a.hits.length + b.hits.length).toBe(4);
    expect(brief(events)).toEqual([{ outcome: "response", attempts: 2 }]);
    const p = places(r, a.host);
    expect(p).toMatchObject({ calls: 1, failures: 1, breaker: { failureCount: 2, consecutiveFailures: 2 } });
    expect(p.recent).toEqual([{ key: a.host, url: `${a.base}/x`, status: 503, error: undefined }]);
    expect(Object.keys(r.health().breakers)).toEqual([a.host]);
    expectAgree(r);
  });

  it("`execute(fn)`, under a breaker, a named breaker's own `.execute` and an aborted run", async () => {
    const { r } = layer();
    await r.execute(() => Promise.reject(new Error("work failed"))).catch(() => {});
    expect(places(r).recent).toEqual([{ key: "execute", url: "", status: undefined, error: "RetryExhaustedError" }]);
    await r.execute(() => Promise.reject(new Error("gpu failed")), { breaker: "gpu" }).catch(() => {});
    expect(places(r, "gpu")).toMatchObject({ calls: 2, failures: 2, breaker: { failureCount: 2 } });
    await r
      .breaker("gpu")
      .execute(() => Promise.reject(new Error("own")))
      .catch(() => {});
    expect(places(r, "gpu")).toMatchObject({ calls: 2, failures: 2, breaker: { failureCount: 3 } });
    const controller = new AbortController();
    const run = r
      .execute(() => Promise.reject(new Error("slow")), {
        breaker: "gpu2",
        signal: controller.signal,
        retry: { maxAttempts: 3, initialDelay: 1_000, maxDelay: 1_000 },
      })
      .catch((e: unknown) => (e as Error).name);
    await wait(10);
    controller.abort();
    expect(await run).toBe("AbortError");
    expect(places(r, "gpu2")).toMatchObject({ calls: 2, failures: 2, breaker: { failureCount: 1 } });
    expectAgree(r);
  });

  it("ky: an `HTTPError` 503 counts as the plain call; ky's own timeout is the caller's abort", async () => {
    a.on(answer(503));
    const { r, events } = layer();
    const api = createClient({ resilience: r });
    const error = await api.get(`${a.base}/x`).catch((e: unknown) => e as Error);
    expect(error).toMatchObject({ name: "HTTPError" });
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 1, breaker: { failureCount: 2 } });
    a.on(hang);
    const timed = createClient({ resilience: r, timeout: 30 });
    const late = await timed.get(`${a.base}/y`).catch((e: unknown) => e as Error);
    expect(late).toMatchObject({ name: "TimeoutError" });
    expect(brief(events)).toEqual([
      { outcome: "response", attempts: 2 },
      { outcome: "aborted", attempts: 1 },
    ]);
    expect(places(r, a.host)).toMatchObject({ calls: 1, failures: 1, breaker: { failureCount: 2 } });
    expectAgree(r);
  });

  it("`resilientProxy` as a plain Node handler: a 503 counted, a client's abort and a refused header not", async () => {
    a.on(answer(503));
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...fast, maxAttempts: 2 } },
    });
    const ctx = { waitUntil() {} };
    const health = async () =>
      (await (await proxy.fetch(new Request("http://proxy.test/__resilience/health"), {}, ctx)).json()) as {
        errorRate: number;
        breakers: Record<string, { failureCount: number; consecutiveFailures: number }>;
      };
    const res = await proxy.fetch(new Request("http://proxy.test/v1/x"), {}, ctx);
    expect(res.status).toBe(503);
    expect(res.headers.get("x-resilience-attempts")).toBe("2");
    const counted = await health();
    expect(counted.errorRate).toBe(1);
    expect(counted.breakers[a.host]).toMatchObject({ failureCount: 2, consecutiveFailures: 2 });

    a.on(hang);
    const client = new AbortController();
    const gone = proxy.fetch(new Request("http://proxy.test/v1/y", { signal: client.signal }), {}, ctx);
    await a.nth(3);
    client.abort();
    await expect(gone).rejects.toMatchObject({ name: "AbortError" });
    const refused = await proxy.fetch(
      new Request("http://proxy.test/v1/z", { headers: { "content-length": "abc" } }),
      {},
      ctx,
    );
    // A 400 since the fiftieth session (a 502 before, which a client layer counts against the proxy); the
    // refused header was `expect: 100-continue`, which the proxy now drops and sends without.
    expect(refused.status).toBe(400);
    const after = await health();
    expect(after.errorRate).toBe(1);
    expect(after.breakers[a.host]).toMatchObject({ failureCount: 2, consecutiveFailures: 2 });
  });
});

describe("defects", () => {
  it("a call the transport refused earns no retry token (health().budget counts nothing of it)", async () => {
    a.on(answer(503));
    const { r, events } = layer({ budget: { minPerSecond: 0 } });
    for (let i = 0; i < 10; i++) {
      expect(await outcome(r.fetch(`${a.base}/x`, { headers: { expect: "100-continue" } }))).toBe("TypeError");
    }
    expect(events.length).toBe(10);
    expect(a.hits.length).toBe(0);
    // Documented: nothing counts it, `health()` included (observed: 0.9999999999999999, ten calls' ratio).
    expect(r.health().budget?.tokens).toBe(0);
    // So a later 503 has no credit for a retry: one request (observed: two, the refused calls paid for it).
    await r.fetch(`${a.base}/x`);
    expect(a.hits.length).toBe(1);
  });

  it("a `Request` body stream failing past the read-ahead is not counted against a healthy host", async () => {
    // The stream's first chunk (100 bytes) passes the limit: the rest is sent as a stream, and fails on its way.
    const { r } = layer({ maxReplayBytes: 10, breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 2; i++) {
      const req = new Request(`${a.base}/up`, { method: "POST", body: failingStream(), duplex: "half" } as RequestInit);
      await r.fetch(req).catch(() => undefined);
    }
    // As within the read-ahead (held above): the host's breaker hears nothing of the caller's failing stream
    // (observed: failureCount 2, "2 failures in a row (last: TypeError)", open).
    expect(places(r, a.host).breaker).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    // And the host, which never failed, is still called (observed: CircuitOpenError, nothing sent).
    expect(await outcome(r.fetch(`${a.base}/ok`))).toBe(200);
  });
});
