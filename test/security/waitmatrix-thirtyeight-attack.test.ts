/**
 * Outside-in attack on waiting: how long the layer waits between attempts, and when it gives up instead, across
 * every path that retries, with one upstream script driven through each path and the waits compared.
 * Docs: docs/retry.md ("The delay before retry _n_ is `min(maxDelay, initialDelay × exponentialBase^(n−1))`, then
 * jittered (`full` by default; `equal`, `decorrelated`, `none` …)", "A `Retry-After` header on 429/503, in one of the
 * forms RFC 9110 allows (delay-seconds, or an HTTP date: IMF-fixdate, RFC 850 or asctime), replaces the computed delay
 * and is never jittered; anything else … falls back to the computed delay", "a leap second (`23:59:60`) as the second
 * after `:59`", "A `Retry-After` longer than `maxRetryAfter` is not slept through: the call resolves with that
 * response at once (in a fallback chain, the next endpoint is tried instead, as after any 503), and the host is held
 * open until then, for at most 24 hours whatever the header says", "An empty bucket means no retry, never a wait",
 * "`timeout.total` bounds the whole call …, waits included, and a wait that would end past it is not started (the
 * call settles with the last response instead)", "A caller's abort is never a failure: it stops the wait or the
 * attempt at once and rejects with `signal.reason`", "A `Retry-After` hold on the final answer holds the host that
 * sent it, not the first one", "`execute`'s waits fire the layer's `retry` events …; `retry(fn)` has `onRetry`
 * instead"); docs/health-and-events.md ("`retry` fires before each wait (`key`, `attempt`, `delay`, `reason`,
 * `retryAfter`)"); docs/breakers.md ("OPEN fails fast with `CircuitOpenError` and sends nothing. After `timeout` … it
 * is HALF_OPEN", "when the breaker of the host a call addresses opens during the call, in this layer, the call's
 * retry wait ends and it settles then with the response it has", "With `execute`'s `breaker`, once that breaker opens
 * no retry waits behind it"); docs/cloudflare.md (`resilientProxy` "answers `503` with `Retry-After` when the circuit
 * is open …, `Retry-After` then naming the first to reopen"; `failureResponse`: "between 1 s and a day"); sleep.ts
 * "A wait past what a timer holds (a `Retry-After` of days, allowed by `maxRetryAfter`) is slept in steps".
 * How: `createResilience` (`clock` a `TestClock` from ./testing, `fetch` the global fetch wrapped to count requests
 * in flight), `getResilienceInfo`, `fallback` (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare,
 * run as a plain handler), `retry` (./policies), `resilience.execute`; two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) that stamp each request with the test clock's time. The test clock moves only
 * when no request is in flight (`settle` below), to the next timer the layer set, so a recorded hit time is the
 * exact wait the layer chose, and nothing sleeps for real.
 * Paths: plain call, `Request` input, fallback chain (`[p, q]`), the same chain with a hedge, redirect (302 to
 * another origin) then 503/429, ky client, `resilientProxy` (its pass-through and its own `failureResponse`
 * answers), `execute`, `retry(fn)`.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none found. Every case of the matrix waited
 * what the docs give on every path, and gave up at once where they say so.
 *
 * Held (plain `it`):
 * - Matrix, 12 upstream scripts × 7 HTTP paths (plain, `Request`, chain, hedged chain, ky, proxy, redirect): computed
 *   backoff 100 then 200 ms; `Retry-After: 2` on 503 and on 429 (2,000 ms, `retryAfter: true`, reason `status 503`
 *   / `status 429`); the same header on a 500 ignored (computed 100 ms); IMF-fixdate, RFC 850 and asctime dates (3,
 *   4, 5 s); a past date (0 ms); garbage and two `Retry-After` lines (computed 100 ms); 120 s and 99999999999 s past
 *   `maxRetryAfter` (60 s): no wait, the 503 at once with 1 attempt, while a chain (and a hedged one) goes to `q` at
 *   once. The same hit times, `retry` events and attempts on every path (`getResilienceInfo`, or the proxy's
 *   `x-resilience-attempts`).
 * - A hold past `maxRetryAfter`: the next call is refused with `CircuitOpenError` whose `retryAt` is 120 s on, a
 *   huge header holds 24 h exactly; after a redirect the target host is held, not the first; the proxy answers its
 *   own 503 with `Retry-After` 119 s after 1.5 s, 86399 for the huge one; a chain route with both endpoints held
 *   names the first to reopen (120).
 * - `maxDelay` caps the computed delay (100, 300, 300) alike for `fetch`, `execute` (its `retry` events) and
 *   `retry(fn)` (`onRetry`). Jitter: `full` in [0, capped], `equal` in [capped/2, capped], `decorrelated` in
 *   [initialDelay, min(maxDelay, 3 × previous)]; each event's delay is the wait taken. `Retry-After` under `full`
 *   jitter is exact.
 * - `timeout.total`: a `Retry-After` (3 s) past the time left (2 s) is not waited: the 503 at once, on the plain,
 *   `Request`, ky, proxy and redirect paths, and a chain moves to `q` at once; a second backoff (200 ms) past the
 *   time left (50 ms) ends the call with the 503 at 100 ms, not at the deadline.
 * - Budget (`minPerSecond: 0`): an empty bucket gives the 503 at once, no `retry` event.
 * - A `Retry-After` of 3,000,000 s, allowed by `maxRetryAfter`, is waited exactly (slept in steps past 2^31 − 1 ms);
 *   a leap-second date (`23:59:60`) 60 s ahead with `maxRetryAfter` 60 s is waited 60 s, not refused.
 * - The breaker's open spell: refused at 9,999 ms (proxy `Retry-After: 1`), the probe goes at 10,000 ms.
 * - A breaker opened by another call ends a waiting retry at once with its 503; `execute` under a named breaker
 *   another caller opened ends its wait at once.
 * - A caller's abort during a 30 s wait rejects at once with `signal.reason`, no timer left, on the chain, hedge, ky,
 *   redirect, proxy, `execute` and `retry(fn)` paths.
 *
 * Docs-silent when written (not pinned; in docs/retry.md and docs/fallback.md since, the last one already was):
 * - Several `Retry-After` lines reach the layer joined (`2, 2`) and fall back to the computed delay.
 * - A wait dropped for `timeout.total` after a network error rejects at once with `RetryExhaustedError` (no response
 *   to settle with), not `TimeoutError`.
 * - A hedge's delay runs during the running endpoint's `Retry-After` wait: with `delay` 1 s and `Retry-After: 3`, `q`
 *   starts at 1 s and wins.
 * - `execute` whose wait a breaker opening ended rejects with the work's own last error, not `RetryExhaustedError`
 *   (docs/retry.md: "the call ends with the failure that opened it").
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  type ResilienceOptions,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);

const START = Date.UTC(2030, 5, 1, 0, 0, 0); // Sat, 01 Jun 2030 00:00:00 GMT
const ctx = { waitUntil: () => {} };
const base = { maxAttempts: 3, initialDelay: 100, maxDelay: 60_000, jitter: "none" as const };

/** The test clock, knowing when its next timer is due. */
class Clock extends TestClock {
  readonly live: Array<{ at: number }> = [];
  override setTimer(callback: () => void, ms: number): () => void {
    const timer = { at: this.now() + (ms > 0 ? Math.min(ms, 2_147_483_647) : 0) };
    this.live.push(timer);
    const drop = () => {
      const i = this.live.indexOf(timer);
      if (i >= 0) this.live.splice(i, 1);
    };
    const cancel = super.setTimer(() => {
      drop();
      callback();
    }, ms);
    return () => {
      drop();
      cancel();
    };
  }
}

/** A clock, a transport that counts requests in flight, and `settle`, which moves time only while none is. */
function rig(start = START) {
  const clock = new Clock(start);
  let inflight = 0;
  const transport = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    inflight++;
    return fetch(input, init).finally(() => inflight--);
  };
  const settle = async <T>(promise: Promise<T>): Promise<T> => {
    let done = false;
    promise.then(
      () => (done = true),
      () => (done = true),
    );
    for (let idle = 0, i = 0; i < 5000 && !done; i++) {
      await new Promise((r) => setTimeout(r, 1));
      if (done) break;
      if (inflight > 0 || clock.live.length === 0) idle = 0;
      else if (++idle >= 3) {
        idle = 0;
        await clock.advance(Math.max(0, Math.min(...clock.live.map((t) => t.at)) - clock.now()));
      }
    }
    return promise;
  };
  return { clock, transport, settle };
}

type Answer = (h: Hit) => void;
const answer =
  (status: number, headers: Record<string, string | string[]> = {}): Answer =>
  (h) => {
    h.res.statusCode = status;
    for (const [name, value] of Object.entries(headers)) h.res.setHeader(name, value);
    h.res.end(`status ${status}`);
  };
const redirectTo = (target: string): Answer => answer(302, { location: target });

/** Answers in order (the last repeats), stamping each request with the test clock's time since START. */
function script(server: typeof up, answers: Answer[], clock: TestClock, start = START): number[] {
  const times: number[] = [];
  server.on((h) => {
    times.push(clock.now() - start);
    (answers[Math.min(h.n - 1, answers.length - 1)] as Answer)(h);
  });
  return times;
}

const PATHS = ["plain", "request", "chain", "hedge", "ky", "proxy", "redirect"] as const;
type Path = (typeof PATHS)[number];

interface Run {
  status: number | string;
  times: number[];
  spareHits: number;
  events: Array<[number, boolean, string]>;
  attempts: number | undefined;
  retryAfter: string | null;
  error?: unknown;
}

/** Drives `answers` (the upstream's, or the redirect target's) through one path. */
async function through(path: Path, answers: Answer[], extra: Partial<ResilienceOptions> = {}): Promise<Run> {
  up.reset();
  spare.reset();
  const { clock, transport, settle } = rig();
  const options: ResilienceOptions = { clock, fetch: transport, retry: base, ...extra };
  let times: number[];
  if (path === "redirect") {
    up.on(redirectTo(`${spare.base}/y`));
    times = script(spare, answers, clock);
  } else {
    times = script(up, answers, clock);
    spare.on(answer(200));
  }
  const events: Run["events"] = [];
  const listen = (r: ReturnType<typeof createResilience>) =>
    r.on("retry", (e: RetryEvent) => events.push([e.delay, e.retryAfter, e.reason]));
  let result: unknown;
  try {
    if (path === "proxy") {
      const proxy = resilientProxy({ routes: [{ path: "/", upstream: up.base }], resilience: options });
      result = await settle(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
    } else if (path === "ky") {
      const r = createResilience(options);
      listen(r);
      result = await settle(createClient({ resilience: r }).get(`${up.base}/x`, { throwHttpErrors: false }));
    } else {
      const chain =
        path === "chain" || path === "hedge"
          ? fallback([
              {
                name: "gen",
                ...(path === "hedge" ? { hedge: { delay: 1_000_000 } } : {}),
                endpoints: [
                  { name: "p", url: `${up.base}/x` },
                  { name: "q", url: `${spare.base}/x` },
                ],
              },
            ])
          : undefined;
      const r = createResilience({ ...options, ...(chain ? { fallback: chain } : {}) });
      listen(r);
      result = await settle(r.fetch(path === "request" ? new Request(`${up.base}/x`) : `${up.base}/x`));
    }
  } catch (error) {
    result = error;
  }
  const response = result instanceof Response ? result : undefined;
  await response?.text();
  const attemptsHeader = response?.headers.get("x-resilience-attempts");
  return {
    status: response ? response.status : String(result),
    times,
    spareHits: path === "redirect" ? 0 : spare.hits.length,
    events: path === "proxy" ? [] : events,
    attempts: response
      ? path === "proxy"
        ? Number(attemptsHeader)
        : getResilienceInfo(response)?.attempts
      : undefined,
    retryAfter: response?.headers.get("retry-after") ?? null,
    error: response ? undefined : result,
  };
}

describe("the wait matrix: each Retry-After or backoff case through each path", () => {
  const waited = (times: number[], delays: Array<[number, boolean, string]>) => ({ times, delays });
  const cases: Array<{
    name: string;
    answers: Answer[];
    expect: { times: number[]; delays: Array<[number, boolean, string]>; status: number; attempts: number };
  }> = [
    {
      name: "computed backoff (no header)",
      answers: [answer(503), answer(503), answer(200)],
      expect: {
        ...waited(
          [0, 100, 300],
          [
            [100, false, "status 503"],
            [200, false, "status 503"],
          ],
        ),
        status: 200,
        attempts: 3,
      },
    },
    {
      name: "Retry-After: 2 on a 503",
      answers: [answer(503, { "retry-after": "2" }), answer(200)],
      expect: { ...waited([0, 2000], [[2000, true, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "Retry-After: 2 on a 429",
      answers: [answer(429, { "retry-after": "2" }), answer(200)],
      expect: { ...waited([0, 2000], [[2000, true, "status 429"]]), status: 200, attempts: 2 },
    },
    {
      name: "Retry-After: 2 on a 500 (not honoured)",
      answers: [answer(500, { "retry-after": "2" }), answer(200)],
      expect: { ...waited([0, 100], [[100, false, "status 500"]]), status: 200, attempts: 2 },
    },
    {
      name: "an IMF-fixdate 3 s ahead",
      answers: [answer(503, { "retry-after": "Sat, 01 Jun 2030 00:00:03 GMT" }), answer(200)],
      expect: { ...waited([0, 3000], [[3000, true, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "an RFC 850 date 4 s ahead",
      answers: [answer(503, { "retry-after": "Saturday, 01-Jun-30 00:00:04 GMT" }), answer(200)],
      expect: { ...waited([0, 4000], [[4000, true, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "an asctime date 5 s ahead",
      answers: [answer(503, { "retry-after": "Sat Jun  1 00:00:05 2030" }), answer(200)],
      expect: { ...waited([0, 5000], [[5000, true, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "a date in the past",
      answers: [answer(503, { "retry-after": "Fri, 31 May 2030 00:00:00 GMT" }), answer(200)],
      expect: { ...waited([0, 0], [[0, true, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "garbage",
      answers: [answer(503, { "retry-after": "soon" }), answer(200)],
      expect: { ...waited([0, 100], [[100, false, "status 503"]]), status: 200, attempts: 2 },
    },
    {
      name: "two Retry-After lines",
      answers: [answer(503, { "retry-after": ["2", "2"] }), answer(200)],
      expect: { ...waited([0, 100], [[100, false, "status 503"]]), status: 200, attempts: 2 },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: the same documented wait on every path`, async () => {
      for (const path of PATHS) {
        const run = await through(path, c.answers);
        expect({ path, times: run.times, status: run.status, attempts: run.attempts, spare: run.spareHits }).toEqual({
          path,
          times: c.expect.times,
          status: c.expect.status,
          attempts: c.expect.attempts,
          spare: 0,
        });
        if (path !== "proxy") expect({ path, events: run.events }).toEqual({ path, events: c.expect.delays });
      }
    });
  }

  for (const value of ["120", "99999999999"]) {
    it(`Retry-After ${value} past maxRetryAfter: no wait on any path; a chain moves on at once`, async () => {
      for (const path of PATHS) {
        const run = await through(path, [answer(503, { "retry-after": value }), answer(200)]);
        const chain = path === "chain" || path === "hedge";
        expect({ path, times: run.times, events: run.events }).toEqual({ path, times: [0], events: [] });
        expect({ path, status: run.status, attempts: run.attempts, spare: run.spareHits }).toEqual({
          path,
          status: chain ? 200 : 503,
          attempts: chain ? 2 : 1,
          spare: chain ? 1 : 0,
        });
        if (!chain) expect(run.retryAfter).toBe(value); // the upstream's own answer, passed on as it is
      }
    });
  }
});

describe("holding a host open instead of waiting", () => {
  for (const [value, held] of [
    ["120", 120_000],
    ["99999999999", 86_400_000],
  ] as const) {
    it(`a 503 with Retry-After ${value} holds its host ${held} ms (24 h at most)`, async () => {
      up.reset();
      const { clock, transport, settle } = rig();
      const r = createResilience({ clock, fetch: transport, retry: base });
      script(up, [answer(503, { "retry-after": value }), answer(200)], clock);
      expect((await settle(r.fetch(`${up.base}/x`))).status).toBe(503);
      const refused = (await r.fetch(`${up.base}/x`).catch((e: unknown) => e)) as CircuitOpenError;
      expect(isCircuitOpenError(refused)).toBe(true);
      expect(refused.retryAt - clock.now()).toBe(held);
      expect(up.hits.length).toBe(1);
    });

    it(`the proxy passes the 503 on, then answers its own 503 with Retry-After (${value})`, async () => {
      up.reset();
      const { clock, transport, settle } = rig();
      const proxy = resilientProxy({
        routes: [{ path: "/", upstream: up.base }],
        resilience: { clock, fetch: transport, retry: base },
      });
      script(up, [answer(503, { "retry-after": value })], clock);
      const first = await settle(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
      expect([first.status, first.headers.get("retry-after"), first.headers.get("x-resilience-attempts")]).toEqual([
        503,
        value,
        "1",
      ]);
      await clock.advance(1_500);
      const second = await settle(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
      expect(second.status).toBe(503);
      expect(second.headers.get("retry-after")).toBe(String(Math.ceil((held - 1_500) / 1000)));
      expect(up.hits.length).toBe(1);
    });
  }

  it("after a redirect, the host that sent the Retry-After is held, not the first", async () => {
    up.reset();
    spare.reset();
    const { clock, transport, settle } = rig();
    const r = createResilience({ clock, fetch: transport, retry: base });
    up.on(redirectTo(`${spare.base}/y`));
    script(spare, [answer(503, { "retry-after": "120" })], clock);
    expect((await settle(r.fetch(`${up.base}/x`))).status).toBe(503);
    const direct = (await r.fetch(`${spare.base}/x`).catch((e: unknown) => e)) as CircuitOpenError;
    const via = (await settle(r.fetch(`${up.base}/x`)).catch((e: unknown) => e)) as CircuitOpenError;
    expect([direct.key, direct.retryAt - clock.now()]).toEqual([spare.host, 120_000]);
    expect([via.key, via.retryAt - clock.now()]).toEqual([spare.host, 120_000]);
    const breakers = r.health().breakers;
    expect(breakers[up.host]?.state).toBe("closed");
    expect(breakers[spare.host]?.state).toBe("open");
  });

  it("a proxy chain route with every endpoint held answers Retry-After for the first to reopen", async () => {
    up.reset();
    spare.reset();
    const { clock, transport, settle } = rig();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${up.base}/x` },
              { name: "q", url: `${spare.base}/x` },
            ],
          },
        },
      ],
      resilience: { clock, fetch: transport, retry: base },
    });
    script(up, [answer(503, { "retry-after": "300" })], clock);
    script(spare, [answer(429, { "retry-after": "120" })], clock);
    const first = await settle(proxy.fetch(new Request("http://worker.example/v/a"), {}, ctx));
    expect([first.status, first.headers.get("retry-after")]).toEqual([429, "120"]);
    const second = await settle(proxy.fetch(new Request("http://worker.example/v/a"), {}, ctx));
    expect([second.status, second.headers.get("retry-after")]).toEqual([503, "120"]);
    expect([up.hits.length, spare.hits.length]).toEqual([1, 1]);
  });

  it("the breaker's open spell: refused until `timeout`, then the probe goes (plain call and proxy alike)", async () => {
    up.reset();
    const { clock, transport, settle } = rig();
    const options = {
      clock,
      fetch: transport,
      retry: false as const,
      breaker: { failureThreshold: 1, timeout: 10_000 },
    };
    const r = createResilience(options);
    const times = script(up, [answer(503), answer(200)], clock);
    expect((await settle(r.fetch(`${up.base}/x`))).status).toBe(503);
    const refused = (await r.fetch(`${up.base}/x`).catch((e: unknown) => e)) as CircuitOpenError;
    expect(refused.retryAt - START).toBe(10_000);
    await clock.advance(9_999);
    expect(isCircuitOpenError(await r.fetch(`${up.base}/x`).catch((e: unknown) => e))).toBe(true);
    await clock.advance(1);
    expect((await settle(r.fetch(`${up.base}/x`))).status).toBe(200);
    expect(times).toEqual([0, 10_000]);

    up.reset();
    const proxied = rig();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: up.base }],
      resilience: { ...options, clock: proxied.clock, fetch: proxied.transport },
    });
    const proxyTimes = script(up, [answer(503), answer(200)], proxied.clock);
    const call = () => proxied.settle(proxy.fetch(new Request("http://worker.example/x"), {}, ctx));
    const seen: Array<[number, string | null]> = [];
    const look = async () => {
      const res = await call();
      seen.push([res.status, res.headers.get("retry-after")]);
    };
    await look();
    await look();
    await proxied.clock.advance(9_999);
    await look();
    await proxied.clock.advance(1);
    await look();
    expect(seen).toEqual([
      [503, null],
      [503, "10"],
      [503, "1"],
      [200, null],
    ]);
    expect(proxyTimes).toEqual([0, 10_000]);
  });
});

describe("the numbers of the backoff", () => {
  it("maxDelay caps the computed delay alike for fetch, execute and retry(fn)", async () => {
    const numbers = { maxAttempts: 4, initialDelay: 100, exponentialBase: 10, maxDelay: 300, jitter: "none" as const };
    up.reset();
    const { clock, transport, settle } = rig();
    const r = createResilience({ clock, fetch: transport, retry: numbers });
    const fetchDelays: number[] = [];
    r.on("retry", (e) => {
      if (e.key !== "execute") fetchDelays.push(e.delay);
    });
    const fetchTimes = script(up, [answer(503)], clock);
    expect((await settle(r.fetch(`${up.base}/x`))).status).toBe(503);

    const executeDelays: number[] = [];
    const executeTimes: number[] = [];
    const startedAt = clock.now();
    r.on("retry", (e) => {
      if (e.key === "execute") executeDelays.push(e.delay);
    });
    const executed = await clock
      .run(
        r.execute(() => {
          executeTimes.push(clock.now() - startedAt);
          throw new Error("busy");
        }),
      )
      .catch((e: unknown) => e);

    const onRetry: number[] = [];
    const retryTimes: number[] = [];
    const own = new TestClock();
    const retried = await own
      .run(
        retry(
          () => {
            retryTimes.push(own.now());
            throw new Error("busy");
          },
          { ...numbers, clock: own, onRetry: (e) => void onRetry.push(e.delay) },
        ),
      )
      .catch((e: unknown) => e);

    expect(fetchTimes).toEqual([0, 100, 400, 700]);
    expect(fetchDelays).toEqual([100, 300, 300]);
    expect(executeDelays).toEqual([100, 300, 300]);
    expect(executeTimes).toEqual([0, 100, 400, 700]);
    expect(onRetry).toEqual([100, 300, 300]);
    expect(retryTimes).toEqual([0, 100, 400, 700]);
    expect(executed).toMatchObject({ name: "RetryExhaustedError", attempts: 4 });
    expect(retried).toMatchObject({ name: "RetryExhaustedError", attempts: 4 });
  });

  for (const jitter of ["full", "equal", "decorrelated"] as const) {
    it(`${jitter} jitter stays within its bounds, and each event's delay is the wait taken`, async () => {
      up.reset();
      const { clock, transport, settle } = rig();
      const r = createResilience({
        clock,
        fetch: transport,
        budget: false,
        retry: { maxAttempts: 6, initialDelay: 100, maxDelay: 1000, jitter },
      });
      const delays: number[] = [];
      r.on("retry", (e) => delays.push(e.delay));
      const times = script(up, [answer(503)], clock);
      await settle(r.fetch(`${up.base}/x`));
      expect(delays.length).toBe(5);
      delays.forEach((delay, i) => {
        const capped = Math.min(1000, 100 * 2 ** i);
        const [low, high] =
          jitter === "full"
            ? [0, capped]
            : jitter === "equal"
              ? [capped / 2, capped]
              : [100, Math.min(1000, Math.max(100, (delays[i - 1] ?? 100) * 3))];
        expect(delay).toBeGreaterThanOrEqual(low);
        expect(delay).toBeLessThanOrEqual(high);
        expect((times[i + 1] as number) - (times[i] as number)).toBeCloseTo(delay, 2);
      });
    });
  }

  it("a Retry-After is never jittered, even under full jitter", async () => {
    const run = await through("plain", [answer(503, { "retry-after": "2" })], {
      retry: { maxAttempts: 3, initialDelay: 100, jitter: "full" },
    });
    expect(run.times).toEqual([0, 2000, 4000]);
    expect(run.events.map(([delay, retryAfter]) => [delay, retryAfter])).toEqual([
      [2000, true],
      [2000, true],
    ]);
  });

  it("a Retry-After of days, allowed by maxRetryAfter, is waited exactly (in steps past the longest timer)", async () => {
    const run = await through("plain", [answer(503, { "retry-after": "3000000" }), answer(200)], {
      retry: { ...base, maxRetryAfter: 4e9 },
    });
    expect(run.times).toEqual([0, 3e9]);
    expect(run.status).toBe(200);
  });

  it("a leap-second date exactly maxRetryAfter ahead is waited, not refused", async () => {
    up.reset();
    const start = Date.UTC(2030, 4, 31, 23, 59, 0);
    const { clock, transport, settle } = rig(start);
    const r = createResilience({ clock, fetch: transport, retry: base });
    const times = script(
      up,
      [answer(503, { "retry-after": "Fri, 31 May 2030 23:59:60 GMT" }), answer(200)],
      clock,
      start,
    );
    const res = await settle(r.fetch(`${up.base}/x`));
    expect(res.status).toBe(200);
    expect(times).toEqual([0, 60_000]);
  });
});

describe("giving up instead of waiting", () => {
  it("timeout.total: a Retry-After past the time left is not waited, on every path", async () => {
    for (const path of PATHS) {
      const run = await through(path, [answer(503, { "retry-after": "3" }), answer(200)], { timeout: { total: 2000 } });
      const chain = path === "chain" || path === "hedge";
      expect({ path, times: run.times, events: run.events }).toEqual({ path, times: [0], events: [] });
      expect({ path, status: run.status, attempts: run.attempts }).toEqual({
        path,
        status: chain ? 200 : 503,
        attempts: chain ? 2 : 1,
      });
    }
  });

  it("timeout.total: a backoff past the time left ends the call then with its response, not at the deadline", async () => {
    for (const path of PATHS) {
      up.reset();
      const run = await through(path, [answer(503)], { timeout: { total: 150 } });
      const chain = path === "chain" || path === "hedge"; // p gives up at 100 ms, and q serves
      expect({ path, times: run.times, status: run.status, attempts: run.attempts, spare: run.spareHits }).toEqual({
        path,
        times: [0, 100],
        status: chain ? 200 : 503,
        attempts: chain ? 3 : 2,
        spare: chain ? 1 : 0,
      });
    }
  });

  it("an empty retry budget gives the answer at once, never a wait", async () => {
    for (const path of ["plain", "request", "ky", "redirect"] as const) {
      const run = await through(path, [answer(503, { "retry-after": "2" }), answer(200)], {
        budget: { ratio: 0.1, minPerSecond: 0 },
      });
      expect({ path, times: run.times, status: run.status, events: run.events }).toEqual({
        path,
        times: [0],
        status: 503,
        events: [],
      });
    }
  });

  it("a breaker opened by another call ends a waiting retry at once with its 503", async () => {
    up.reset();
    const { clock, transport, settle } = rig();
    const r = createResilience({ clock, fetch: transport, retry: base, breaker: { failureThreshold: 2 } });
    const times = script(up, [answer(503, { "retry-after": "5" })], clock);
    const first = r.fetch(`${up.base}/a`);
    await up.nth(1);
    await new Promise((res) => setTimeout(res, 20));
    const second = r.fetch(`${up.base}/b`);
    const [a, b] = await Promise.all([settle(first), settle(second)]);
    expect([a.status, b.status]).toEqual([503, 503]);
    expect(times).toEqual([0, 0]);
    expect(clock.now()).toBe(START);
  });

  it("execute under a named breaker another caller opened ends its wait at once", async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: { ...base, maxAttempts: 5, initialDelay: 5000 } });
    const breaker = r.breaker("upscaler", { failureThreshold: 2 });
    let runs = 0;
    const work = r.execute(
      () => {
        runs++;
        throw new Error(`run ${runs}`);
      },
      { breaker: "upscaler" },
    );
    await clock.waitForTimers(1);
    await breaker.execute(() => Promise.reject(new Error("other"))).catch(() => {});
    const error = await clock.run(work).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(runs).toBe(1);
    expect(clock.now()).toBe(START);
  });

  it("a caller's abort during a 30 s wait rejects at once with its reason, no timer left, on every path", async () => {
    for (const path of ["plain", "chain", "hedge", "ky", "redirect", "proxy", "execute", "retry(fn)"] as const) {
      up.reset();
      spare.reset();
      const { clock, transport } = rig();
      const controller = new AbortController();
      const reason = new Error(`caller left (${path})`);
      const abortSoon = () => setTimeout(() => controller.abort(reason), 20);
      const options = { clock, fetch: transport, retry: base };
      if (path === "redirect") {
        up.on(redirectTo(`${spare.base}/y`));
        script(spare, [answer(503, { "retry-after": "30" }), answer(200)], clock);
      } else {
        script(up, [answer(503, { "retry-after": "30" }), answer(200)], clock);
        script(spare, [answer(503, { "retry-after": "30" })], clock);
      }
      let call: Promise<unknown>;
      if (path === "proxy") {
        const proxy = resilientProxy({ routes: [{ path: "/", upstream: up.base }], resilience: options });
        call = proxy.fetch(new Request("http://worker.example/x", { signal: controller.signal }), {}, ctx);
        void up.nth(1).then(abortSoon);
      } else if (path === "execute") {
        call = createResilience(options).execute(
          () => {
            throw new Error("busy");
          },
          { signal: controller.signal, retry: { initialDelay: 30_000 } },
        );
        abortSoon();
      } else if (path === "retry(fn)") {
        call = retry(
          () => {
            throw new Error("busy");
          },
          { ...base, initialDelay: 30_000, clock, signal: controller.signal },
        );
        abortSoon();
      } else {
        const endpoints = [
          { name: "p", url: `${up.base}/x` },
          { name: "q", url: `${spare.base}/x` },
        ];
        const chain =
          path === "chain" || path === "hedge"
            ? fallback([{ name: "gen", ...(path === "hedge" ? { hedge: { delay: 1_000_000 } } : {}), endpoints }])
            : undefined;
        const r = createResilience({ ...options, ...(chain ? { fallback: chain } : {}) });
        r.on("retry", abortSoon);
        call =
          path === "ky"
            ? createClient({ resilience: r }).get(`${up.base}/x`, { signal: controller.signal })
            : r.fetch(`${up.base}/x`, { signal: controller.signal });
      }
      const settled = await call.catch((e: unknown) => e);
      expect({ path, same: settled === reason, now: clock.now(), pending: clock.pending() }).toEqual({
        path,
        same: true,
        now: START,
        pending: 0,
      });
    }
  });
});
