/**
 * Outside-in checks of docs/retry.md, docs/breakers.md,
 * docs/health-and-events.md and docs/options.md on the paths least likely to
 * have been tested: a fallback chain (plain and hedged), a redirect the
 * library follows (`redirects: "library"`), a `Request` input with its own
 * signal/method/redirect mode, and the ky client from `createClient`. Public
 * API only; real `node:http` servers on 127.0.0.1 where no timer races the
 * network, a stub `fetch` where one would. Time moves only on `TestClock`
 * (or vitest fake timers for ky's own timer).
 *
 * Claims checked (all held unless listed under defects):
 * - retry.md: a `Retry-After` on 429/503 in delay-seconds, asctime or RFC 850
 *   form "replaces the computed delay and is never jittered" (chain endpoint,
 *   redirect target, Request input with decorrelated jitter); a 502's
 *   `Retry-After` and `1.5` fall back to the computed delay (ky client).
 * - retry.md/breakers.md: "A `Retry-After` longer than `maxRetryAfter` ... the
 *   host is held open until then, for at most 24 hours" (redirect target: the
 *   first host is held; chain endpoint through ky: capped at 24 h).
 * - retry.md: the generated `Idempotency-Key` is "the same on every retry of
 *   that call", across a followed 307 (and for `post`/`patch` in any case);
 *   a POST/PATCH without key is not re-sent after a 500, is after a 503.
 * - retry.md: retry budget, 20 calls with `minPerSecond: 0` against a 503 get
 *   2 retries, the same for `Request` inputs; an empty bucket never stops a
 *   chain from moving on.
 * - retry.md: "a wait that would end past [timeout.total] is not started (the
 *   call settles with the last response instead)" (Request input, chain, ky).
 * - retry.md: failure names (`connection refused` at a chain endpoint,
 *   `connection reset` at a redirect target, `attempt timeout` through ky);
 *   `TimeoutError` fields; `RetryExhaustedError.endpoint` is the host.
 * - retry.md: `redirect: "error"` meeting a redirect is retried and counted
 *   (Request input, ky); a Location with credentials never shows them.
 * - breakers.md: a redirect target's 503s count against the first host's
 *   breaker, which opens on the fifth call; an attempt cut by `timeout.total`
 *   is no failure (followed redirect, hedged chain); a retry is never parked
 *   behind an open breaker (chain: goes on to the spare); a call to an open
 *   host is refused with `CircuitOpenError` before it would queue; the
 *   bulkhead slot is held across a followed redirect and freed on abort.
 * - health-and-events.md: `status`/`errorRate` (10% is not "above 10%", the
 *   last minute only, an abort is no failure); a held-open breaker reads
 *   `half_open` once its time passed; bulkhead `active`/`queued`; no query in
 *   event/debugInfo URLs of chain endpoints; `request` is not fired (and
 *   `health()` counts nothing) for calls refused before they started (chain,
 *   ky, Request input); an unknown event name is a `TypeError` listing the
 *   eight; a throwing listener is reported and never breaks the request.
 * - options.md: `ConfigError` naming the path, through `createClient`'s
 *   `resilience` options.
 *
 * Defects found (each an `it.fails` on the code it was written against; fixed):
 * 1. docs/retry.md: "ky's 10 s timeout off unless you pass one (use
 *    `resilience.timeout`)" (and docs/options.md: "`undefined` never wipes a
 *    default"): `createClient({ timeout: undefined })` does not pass a
 *    timeout, yet the client rejects with ky's `TimeoutError` after 10 s; the
 *    same for `api.extend(UNSET_TIMEOUT)` and for a call's own
 *    `{ timeout: undefined }` (a config object with an optional timeout).
 */
import type { Options } from "ky";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  ConfigError,
  createResilience,
  type FallbackEvent,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isRetryExhaustedError,
  isTimeoutError,
  type RedirectEvent,
  type RequestEvent,
  type ResilienceOptions,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream(); // the primary origin
const S = httpUpstream(); // the spare endpoint's origin
const C = httpUpstream(); // a redirect target's origin
let REFUSED = "";
serveDuringFile(P, S, C);
beforeAll(async () => {
  REFUSED = await refusedOrigin();
});

const status =
  (code: number, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(`${code}`);
  };
/** Answers the nth request with the nth handler; the last repeats. */
const seq =
  (...handlers: Handler[]): Handler =>
  (hit) =>
    (handlers[Math.min(hit.n - 1, handlers.length - 1)] as Handler)(hit);
const ok = status(200);
const hang: Handler = () => {};

function layer(options: ResilienceOptions = {}, start = 0) {
  const clock = new TestClock(start);
  const resilience = createResilience({ clock, redirects: "library", ...options });
  const retries: RetryEvent[] = [];
  const requests: RequestEvent[] = [];
  const redirects: RedirectEvent[] = [];
  const fallbacks: FallbackEvent[] = [];
  resilience.on("retry", (e) => retries.push(e));
  resilience.on("request", (e) => requests.push(e));
  resilience.on("redirect", (e) => redirects.push(e));
  resilience.on("fallback", (e) => fallbacks.push(e));
  return { clock, resilience, retries, requests, redirects, fallbacks };
}

/** Chain "gen": primary P/v1 → spare S/v2. */
const chain = (extra: Record<string, unknown> = {}) =>
  fallback([
    {
      name: "gen",
      ...extra,
      endpoints: [
        { name: "primary", url: `${P.base}/v1` },
        { name: "spare", url: `${S.base}/v2` },
      ],
    },
  ]);

/** A stub transport that answers at once (no real network to race the TestClock). */
function stub(
  answer: (url: string, n: number, init: RequestInit | undefined, input: unknown) => Response | Promise<Response>,
) {
  const seen: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    seen.push(url);
    return answer(url, seen.length, init, input);
  };
  return { fetch, seen };
}

/** A transport that never answers, rejecting with its signal's reason on abort. */
const hangingFetch = (input: unknown, init?: RequestInit) =>
  new Promise<Response>((_resolve, reject) => {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    signal?.addEventListener("abort", () => reject(signal.reason));
  });

describe("Retry-After on the less travelled paths (docs/retry.md)", () => {
  it("control: on a chain endpoint, 503/429 Retry-After replaces the delay, unjittered", async () => {
    P.on(seq(status(503, { "retry-after": "2" }), status(429, { "retry-after": "3" }), ok));
    const { clock, resilience, retries } = layer({ fallback: chain(), random: () => 0.01 });
    const res = await clock.run(resilience.fetch(`${P.base}/v1/x`));
    expect(res.status).toBe(200);
    expect(retries.map((r) => [r.delay, r.retryAfter, r.key])).toEqual([
      [2000, true, P.host],
      [3000, true, P.host],
    ]);
    expect(clock.now()).toBe(5000);
  });

  it("control: an asctime Retry-After at a followed redirect's target", async () => {
    const t0 = Date.UTC(2026, 0, 1);
    P.on(status(302, { location: `${C.base}/c` }));
    C.on(seq(status(503, { "retry-after": "Thu Jan  1 00:00:07 2026" }), ok));
    const { clock, resilience, retries } = layer({ random: () => 0.01 }, t0);
    const res = await clock.run(resilience.fetch(`${P.base}/a`));
    expect(res.status).toBe(200);
    expect(retries.map((r) => [r.delay, r.retryAfter])).toEqual([[7000, true]]);
  });

  it("control: an RFC 850 Retry-After on a chain endpoint", async () => {
    const t0 = Date.UTC(2026, 0, 1);
    P.on(seq(status(503, { "retry-after": "Thursday, 01-Jan-26 00:00:04 GMT" }), ok));
    const { clock, resilience, retries } = layer({ random: () => 0.01, fallback: chain() }, t0);
    const res = await clock.run(resilience.fetch(`${P.base}/v1/a`));
    expect(res.status).toBe(200);
    expect(retries.map((r) => [r.delay, r.retryAfter])).toEqual([[4000, true]]);
  });

  it("control: a Request input under decorrelated jitter and random 0.999: 429's 3 s and 503's 0 s are taken as they are", async () => {
    const st = stub((_u, n) =>
      n === 1
        ? new Response("", { status: 429, headers: { "retry-after": "3" } })
        : n === 2
          ? new Response("", { status: 503, headers: { "retry-after": "0" } })
          : new Response("ok"),
    );
    const { clock, resilience, retries } = layer({
      fetch: st.fetch,
      random: () => 0.999,
      retry: { jitter: "decorrelated" },
    });
    const res = await clock.run(resilience.fetch(new Request(`${P.base}/a`, { method: "DELETE" })));
    expect(res.status).toBe(200);
    expect(retries.map((r) => [r.delay, r.retryAfter])).toEqual([
      [3000, true],
      [0, true],
    ]);
  });

  it("control: through ky, a 502's Retry-After and a `1.5` fall back to the computed delay", async () => {
    P.on(seq(status(502, { "retry-after": "5" }), status(503, { "retry-after": "1.5" }), ok));
    const { clock, resilience, retries } = layer({ retry: { jitter: "none" } });
    const api = createClient({ resilience });
    const res = await clock.run(api.get(`${P.base}/a`));
    expect(res.status).toBe(200);
    expect(retries.map((r) => [r.delay, r.retryAfter])).toEqual([
      [1000, false],
      [2000, false],
    ]);
  });

  it("control: a Retry-After above maxRetryAfter at a redirect target settles at once and holds that target open until then", async () => {
    // The first host's until the README attack of the fifteenth session: the host that asked is held now.
    P.on(status(302, { location: `${C.base}/c` }));
    C.on(status(503, { "retry-after": "120" }));
    const { clock, resilience } = layer();
    const res = await clock.run(resilience.fetch(`${P.base}/a`));
    expect(res.status).toBe(503);
    expect(P.hits.length + C.hits.length).toBe(2);
    expect(clock.now()).toBe(0);
    const breaker = resilience.health().breakers[C.host];
    expect(breaker?.state).toBe("open");
    expect(breaker?.openUntil).toBe(120_000);
    expect(resilience.health().breakers[P.host]?.state).toBe("closed");
  });

  it("control: a huge Retry-After on a chain endpoint through ky holds that host open for at most 24 hours; the spare answers", async () => {
    P.on(status(429, { "retry-after": "999999999" }));
    S.on(ok);
    const { clock, resilience } = layer({ fallback: chain() });
    const res = await clock.run(createClient({ resilience }).get(`${P.base}/v1/a`));
    expect(res.status).toBe(200);
    const breaker = resilience.health().breakers[P.host];
    expect(breaker?.state).toBe("open");
    expect(breaker?.openUntil).toBe(86_400_000);
  });

  it("control: a held-open breaker reads half_open in health() once its time passed (docs/health-and-events.md)", async () => {
    const st = stub(() => new Response("busy", { status: 503, headers: { "retry-after": "120" } }));
    const { clock, resilience } = layer({ fetch: st.fetch });
    await clock.run(resilience.fetch(`${P.base}/a`));
    expect(resilience.health().breakers[P.host]?.state).toBe("open");
    await clock.advance(120_001);
    expect(resilience.health().breakers[P.host]?.state).toBe("half_open");
  });

  it("control: a wait that would end past timeout.total is not started: the call settles with the 503 (Request input, ky) or the chain moves on", async () => {
    const st = stub((url) =>
      url.includes("/v1") ? new Response("busy", { status: 503, headers: { "retry-after": "5" } }) : new Response("ok"),
    );
    const chained = layer({ timeout: { total: 3000 }, fallback: chain(), fetch: st.fetch });
    const r1 = await chained.clock.run(chained.resilience.fetch(`${P.base}/v1/a`));
    expect(r1.status).toBe(200);
    expect(chained.clock.now()).toBe(0);
    const plain = layer({ timeout: { total: 3000 }, fetch: st.fetch });
    const r2 = await plain.clock.run(plain.resilience.fetch(new Request(`${P.base}/v1/a`)));
    expect(r2.status).toBe(503);
    const viaKy = await plain.clock
      .run(createClient({ resilience: plain.resilience }).get(`${P.base}/v1/a`))
      .catch((e) => e);
    expect(viaKy.name).toBe("HTTPError");
    expect(viaKy.response.status).toBe(503);
    expect(plain.clock.now()).toBe(0);
  });
});

describe("idempotency and the budget (docs/retry.md)", () => {
  it("control: the generated Idempotency-Key is the same across a followed 307 and the retry after its target's 503", async () => {
    P.on(status(307, { location: `${C.base}/c` }));
    C.on(seq(status(503), ok));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const res = await clock.run(resilience.fetch(`${P.base}/a`, { method: "POST", body: "x" }));
    expect(res.status).toBe(200);
    expect(P.hits.length).toBe(2);
    const keys = [...P.hits, ...C.hits].map((h) => h.headers["idempotency-key"]);
    expect(keys[0]).toBeTruthy();
    expect(new Set(keys).size).toBe(1);
  });

  for (const method of ["post", "patch", "Post", "PATCH"]) {
    it(`control: method "${method}": a generated key on each retry; without a key not re-sent after a 500, re-sent after a 503`, async () => {
      const keys: (string | null)[] = [];
      const first500 = stub((_u, n) => (n === 1 ? new Response("x", { status: 500 }) : new Response("ok")));
      const keyed = layer({
        retry: { idempotencyKey: true },
        fetch: (input, init) => {
          keys.push(new Headers(init?.headers).get("idempotency-key"));
          return first500.fetch(input as RequestInfo, init);
        },
      });
      expect((await keyed.clock.run(keyed.resilience.fetch(`${P.base}/a`, { method, body: "x" }))).status).toBe(200);
      expect(keys.length).toBe(2);
      expect(keys[0]).toBeTruthy();
      expect(keys[1]).toBe(keys[0]);

      const again500 = stub((_u, n) => (n === 1 ? new Response("x", { status: 500 }) : new Response("ok")));
      const bare = layer({ fetch: again500.fetch });
      const r2 = await bare.clock.run(bare.resilience.fetch(new Request(`${P.base}/a`, { method, body: "x" })));
      expect([r2.status, again500.seen.length]).toEqual([500, 1]);

      const first503 = stub((_u, n) => (n === 1 ? new Response("x", { status: 503 }) : new Response("ok")));
      const declined = layer({ fetch: first503.fetch });
      const r3 = await declined.clock.run(declined.resilience.fetch(`${P.base}/a`, { method, body: "x" }));
      expect([r3.status, first503.seen.length]).toEqual([200, 2]);
    });
  }

  it("control: budget with minPerSecond 0: 20 calls against a 503 get 2 retries, URL or Request input alike", async () => {
    for (const asRequest of [false, true]) {
      const st = stub(() => new Response("busy", { status: 503 }));
      const { clock, resilience } = layer({ budget: { minPerSecond: 0 }, breaker: false, fetch: st.fetch });
      for (let i = 0; i < 20; i++) {
        await clock.run(resilience.fetch(asRequest ? new Request(`${P.base}/a`) : `${P.base}/a`));
      }
      expect(st.seen.length).toBe(22);
    }
  });

  it("control: an empty budget never stops a chain from passing a Request input on to the spare", async () => {
    const st = stub((url) => (url.includes("/v1") ? new Response("busy", { status: 503 }) : new Response("ok")));
    const { clock, resilience } = layer({ budget: { ratio: 0, minPerSecond: 0 }, fallback: chain(), fetch: st.fetch });
    const res = await clock.run(resilience.fetch(new Request(`${P.base}/v1/a`)));
    expect(res.status).toBe(200);
    expect(st.seen).toEqual([`${P.base}/v1/a`, `${S.base}/v2/a`]);
  });
});

describe("failures, errors and redirects (docs/retry.md, docs/breakers.md)", () => {
  it("control: retry events name the failure on a chain endpoint (ky), at a redirect target (Request input), and through ky's timeout path", async () => {
    const gen = fallback([
      {
        name: "g",
        endpoints: [
          { name: "dead", url: `${REFUSED}/v1` },
          { name: "spare", url: `${S.base}/v2` },
        ],
      },
    ]);
    S.on(ok);
    const chained = layer({ fallback: gen });
    await chained.clock.run(createClient({ resilience: chained.resilience }).get(`${REFUSED}/v1/x`));
    expect(chained.retries.map((r) => r.reason)).toEqual(["connection refused", "connection refused"]);

    P.on(status(302, { location: `${C.base}/c` }));
    C.on((hit) => hit.req.socket.destroy());
    const redirected = layer();
    await redirected.clock.run(redirected.resilience.fetch(new Request(`${P.base}/a`))).catch((e) => e);
    expect(redirected.retries.map((r) => [r.reason, r.key])).toEqual([
      ["connection reset", P.host],
      ["connection reset", P.host],
    ]);

    const timed = layer({ fetch: hangingFetch as never, timeout: { attempt: 100 } });
    const err = await timed.clock
      .run(
        createClient({ resilience: timed.resilience }).post(`${P.base}/a`, {
          json: {},
          headers: { "idempotency-key": "k" },
        }),
      )
      .catch((e) => e);
    expect(isTimeoutError(err)).toBe(true);
    expect([err.phase, err.timeout, err.attempts]).toEqual(["attempt", 100, 3]);
    expect(timed.retries.map((r) => r.reason)).toEqual(["attempt timeout", "attempt timeout"]);
  });

  it("control: a GET redirected to a refused origin: RetryExhaustedError naming the first host, attempts 3", async () => {
    P.on(status(302, { location: `${REFUSED}/c` }));
    const { clock, resilience } = layer();
    const err = await clock.run(resilience.fetch(`${P.base}/a`)).catch((e) => e);
    expect(isRetryExhaustedError(err)).toBe(true);
    expect([err.endpoint, err.attempts, P.hits.length]).toEqual([P.host, 3, 3]);
  });

  it("control: a redirect to a URL with credentials never shows them (message, events, debugInfo)", async () => {
    P.on(status(302, { location: `http://user:s3cret@${REFUSED.slice(7)}/c?tok=Q1#frag` }));
    const l = layer();
    const err = await l.clock.run(l.resilience.fetch(`${P.base}/a`)).catch((e) => e);
    const all = JSON.stringify({
      m: String(err),
      c: String(err.cause),
      e: [l.redirects, l.retries, l.requests],
      d: l.resilience.debugInfo(),
    });
    expect(all).not.toMatch(/s3cret|Q1|frag/);
  });

  it('control: redirect: "error" meeting a redirect is retried and counted (Request input and ky)', async () => {
    P.on(status(302, { location: `${C.base}/c` }));
    const viaRequest = layer();
    const err = await viaRequest.clock
      .run(viaRequest.resilience.fetch(new Request(`${P.base}/a`, { redirect: "error" })))
      .catch((e) => e);
    expect([isRetryExhaustedError(err), err.attempts, P.hits.length, C.hits.length]).toEqual([true, 3, 3, 0]);
    expect(viaRequest.resilience.health().breakers[P.host]?.failureCount).toBe(3);
    const viaKy = layer();
    const kyErr = await viaKy.clock
      .run(createClient({ resilience: viaKy.resilience }).get(`${P.base}/a`, { redirect: "error" }))
      .catch((e) => e);
    expect(isRetryExhaustedError(kyErr)).toBe(true);
    expect([P.hits.length, C.hits.length, viaKy.redirects.length]).toEqual([6, 0, 0]);
  });

  it("control: a redirect target's 503s count against the first host: the fifth call is refused, nothing sent", async () => {
    P.on(status(302, { location: `${C.base}/c` }));
    C.on(status(503));
    const { clock, resilience } = layer();
    for (let i = 0; i < 4; i++) await clock.run(resilience.fetch(`${P.base}/a`));
    const err = await clock.run(resilience.fetch(`${P.base}/a`)).catch((e) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect([P.hits.length, C.hits.length]).toEqual([12, 12]);
    expect(Object.keys(resilience.health().breakers)).toEqual([P.host]);
    expect(resilience.health().status).toBe("unhealthy");
  });

  it("control: an attempt cut by timeout.total is no failure (followed redirect whose target hangs; hedged chain)", async () => {
    P.on(status(302, { location: `${C.base}/c` }));
    C.on(hang);
    const redirected = layer({ timeout: { total: 1000 } });
    const e1 = await redirected.clock.run(redirected.resilience.fetch(`${P.base}/a`)).catch((e) => e);
    expect([isTimeoutError(e1), e1.phase]).toEqual([true, "total"]);
    expect(redirected.resilience.health().breakers[P.host]?.failureCount).toBe(0);

    const hedged = layer({
      timeout: { total: 1000 },
      fallback: chain({ hedge: { delay: 200 } }),
      fetch: hangingFetch as never,
    });
    const e2 = await hedged.clock.run(hedged.resilience.fetch(`${P.base}/v1/a`)).catch((e) => e);
    expect([isTimeoutError(e2), e2.phase]).toEqual([true, "total"]);
    for (const breaker of Object.values(hedged.resilience.health().breakers)) expect(breaker.failureCount).toBe(0);
  });

  it("control: a breaker opening mid-call parks no retry: a chain goes on to the spare, a plain call settles with its 503", async () => {
    const st = stub((url) => (url.includes("/v1") ? new Response("busy", { status: 503 }) : new Response("ok")));
    const chained = layer({ breaker: { failureThreshold: 2 }, fallback: chain(), fetch: st.fetch });
    expect((await chained.clock.run(chained.resilience.fetch(`${P.base}/v1/a`))).status).toBe(200);
    expect(st.seen).toEqual([`${P.base}/v1/a`, `${P.base}/v1/a`, `${S.base}/v2/a`]);
    const st2 = stub(() => new Response("busy", { status: 503 }));
    const plain = layer({ breaker: { failureThreshold: 2 }, fetch: st2.fetch });
    expect((await plain.clock.run(plain.resilience.fetch(`${P.base}/v1/a`))).status).toBe(503);
    expect(st2.seen.length).toBe(2);
  });

  it("control: an open host is refused with CircuitOpenError before it would queue; the bulkhead slot is held across a followed redirect", async () => {
    const st = stub(() => new Response("busy", { status: 503, headers: { "retry-after": "120" } }));
    const held = layer({ bulkhead: { maxConcurrent: 1 }, fetch: st.fetch });
    await held.clock.run(held.resilience.fetch(`${P.base}/a`));
    expect(isCircuitOpenError(await held.resilience.fetch(`${P.base}/a`).catch((e) => e))).toBe(true);

    P.on(status(302, { location: `${C.base}/c` }));
    C.on(hang);
    const l = layer({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const ac = new AbortController();
    const a = l.resilience.fetch(`${P.base}/a`, { signal: ac.signal }).catch((e) => e);
    await C.nth(1);
    const b = l.resilience.fetch(new Request(`${P.base}/b`, { signal: ac.signal })).catch((e) => e);
    await Promise.resolve();
    expect(l.resilience.health().breakers[P.host]).toMatchObject({ active: 1, queued: 1 });
    expect(isBulkheadRejectedError(await l.resilience.fetch(`${P.base}/c`).catch((e) => e))).toBe(true);
    ac.abort(new Error("stop"));
    expect(String(await a)).toBe("Error: stop");
    expect(String(await b)).toBe("Error: stop");
    expect(l.resilience.health().breakers[P.host]).toMatchObject({ active: 0, queued: 0, failureCount: 0 });
  });

  it("control: custom retryOn.methods retries a POST after a 500 on a chain endpoint; retryOn.statuses without 503 does not retry it", async () => {
    const st = stub((url, n) =>
      url.includes("/v1") && n === 1 ? new Response("x", { status: 500 }) : new Response("ok"),
    );
    const posts = layer({ retry: { retryOn: { methods: ["POST"] } }, fallback: chain(), fetch: st.fetch });
    expect(
      (await posts.clock.run(posts.resilience.fetch(`${P.base}/v1/a`, { method: "POST", body: "x" }))).status,
    ).toBe(200);
    expect(st.seen).toEqual([`${P.base}/v1/a`, `${P.base}/v1/a`]);
    const st2 = stub((url) => (url.includes("/v1") ? new Response("x", { status: 503 }) : new Response("ok")));
    const statuses = layer({ retry: { retryOn: { statuses: [500] } }, fallback: chain(), fetch: st2.fetch });
    expect((await statuses.clock.run(statuses.resilience.fetch(`${P.base}/v1/a`))).status).toBe(200);
    expect(st2.seen).toEqual([`${P.base}/v1/a`, `${S.base}/v2/a`]);
  });
});

describe("health() and events (docs/health-and-events.md)", () => {
  it("control: errorRate: an abort is no failure, 10% is not above 10%, the window is the last minute", async () => {
    let answer = 200;
    const st = stub(() => new Response("", { status: answer }));
    const { clock, resilience } = layer({ fetch: st.fetch, retry: false });
    for (let i = 0; i < 9; i++) await resilience.fetch(`${P.base}/a`);
    const aborted = layer({ fetch: hangingFetch as never });
    const ac = new AbortController();
    const pending = aborted.resilience.fetch(new Request(`${P.base}/a`, { signal: ac.signal })).catch((e) => e);
    ac.abort(new Error("bye"));
    expect(String(await pending)).toBe("Error: bye");
    expect(aborted.resilience.health().errorRate).toBe(0);
    answer = 500;
    await resilience.fetch(`${P.base}/a`);
    expect([resilience.health().status, resilience.health().errorRate]).toEqual(["healthy", 0.1]);
    await resilience.fetch(`${P.base}/a`);
    expect(resilience.health().status).toBe("degraded");
    await clock.advance(61_000);
    expect([resilience.health().status, resilience.health().errorRate]).toEqual(["healthy", 0]);
  });

  it("control: no query string in event or debugInfo URLs of chain endpoints whose URLs carry a key", async () => {
    const st = stub(() => new Response("busy", { status: 503 }));
    const gen = fallback([
      {
        name: "gen",
        endpoints: [
          { name: "primary", url: `${P.base}/v1?api_key=SECRET1` },
          { name: "spare", url: `${S.base}/v2?api_key=SECRET2` },
        ],
      },
    ]);
    const { clock, resilience, retries, requests, fallbacks } = layer({ fallback: gen, fetch: st.fetch });
    await clock.run(resilience.fetch(`${P.base}/v1?api_key=SECRET1`));
    expect(st.seen.length).toBe(6);
    expect(JSON.stringify({ retries, requests, fallbacks, d: resilience.debugInfo() })).not.toContain("SECRET");
  });

  it("control: calls refused before they started fire no request event and are not counted (chain, ky, Request input)", async () => {
    const st = stub(() => new Response("ok"));
    const { clock, resilience, requests } = layer({ fallback: chain(), fetch: st.fetch });
    const api = createClient({ resilience });
    const ac = new AbortController();
    ac.abort(new Error("mine"));
    const used = new Request(`${P.base}/v1/a`, { method: "POST", body: "x" });
    await used.text();
    const outcomes = [
      await clock.run(resilience.fetch(new Request(`${P.base}/v1/a`, { signal: ac.signal }))).catch((e) => e),
      await clock.run(api.get(`${P.base}/v1/a`, { signal: ac.signal })).catch((e) => e),
      await clock.run(resilience.fetch(used)).catch((e) => e),
      await clock.run(resilience.fetch(`${P.base}/v1/a`, { method: "BA D" })).catch((e) => e),
      await clock.run(resilience.fetch(`${P.base}/v1/a`, { headers: { "x-a": "a\rb" } })).catch((e) => e),
    ];
    expect(outcomes.map((e) => (e as Error).name)).toEqual(["Error", "Error", "TypeError", "TypeError", "TypeError"]);
    expect(requests).toEqual([]);
    expect(st.seen).toEqual([]);
    expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });

  it("control: an unknown event name is a TypeError listing the eight names", () => {
    const { resilience } = layer();
    expect(() => resilience.on("retyr" as never, () => {})).toThrow(
      /retry, request, breaker, fallback, degradation, replay, redirect, store/,
    );
  });

  it("control: throwing redirect and request listeners are reported and never break a followed redirect", async () => {
    const reported = vi.fn();
    const original = globalThis.reportError;
    globalThis.reportError = reported;
    try {
      P.on(status(302, { location: `${C.base}/c` }));
      C.on(ok);
      const { clock, resilience } = layer();
      resilience.on("redirect", () => {
        throw new Error("boom");
      });
      resilience.on("request", () => {
        throw new Error("boom2");
      });
      const res = await clock.run(resilience.fetch(`${P.base}/a`));
      expect(res.status).toBe(200);
      expect(reported).toHaveBeenCalledTimes(2);
    } finally {
      globalThis.reportError = original;
    }
  });
});

describe("options through createClient (docs/options.md, docs/retry.md ## ky)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("control: bad resilience options given to createClient are a ConfigError naming the path, at once", () => {
    const cases: Array<[unknown, string]> = [
      [{ retry: { maxAttempts: 0 } }, "retry.maxAttempts"],
      [{ retry: { maxAtempts: 3 } }, "retry"],
      [{ timeout: { attempt: -1 } }, "timeout.attempt"],
      [{ budget: { ratio: -1 } }, "budget.ratio"],
      [{ breaker: { failureThreshold: 0 } }, "breaker.failureThreshold"],
    ];
    for (const [bad, path] of cases) {
      const err = (() => {
        try {
          createClient({ resilience: bad as never });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      // Under `resilience`, as the caller wrote it (since the twenty-fourth session).
      expect((err as ConfigError).path).toBe(`resilience.${path}`);
    }
    expect(() => createClient({ resilience: { retry: { maxAttempts: 0 } } })).toThrow(
      "resilience.retry.maxAttempts: expected a value >= 1, received 0",
    );
  });

  /** Whether a GET on `api` to a transport that never answers is still pending after 11 s of fake time. */
  async function pendingAfter11s(call: () => Promise<unknown>): Promise<string> {
    let settled = "pending";
    call().then(
      () => {
        settled = "resolved";
      },
      (e) => {
        settled = String(e);
      },
    );
    await vi.advanceTimersByTimeAsync(11_000);
    return settled;
  }

  it("control: without a timeout option ky's 10 s timeout is off", async () => {
    vi.useFakeTimers();
    const api = createClient({ resilience: { fetch: hangingFetch as never } });
    expect(await pendingAfter11s(() => api.get("http://127.0.0.1:9/x"))).toBe("pending");
  });

  // What a config object with an optional timeout passes (ky's types refuse it under exactOptionalPropertyTypes).
  const UNSET_TIMEOUT = { timeout: undefined } as unknown as Options;

  it("createClient({ timeout: undefined }) passes no timeout, so ky's 10 s timeout stays off", async () => {
    vi.useFakeTimers();
    const api = createClient({ ...UNSET_TIMEOUT, resilience: { fetch: hangingFetch as never } });
    expect(await pendingAfter11s(() => api.get("http://127.0.0.1:9/x"))).toBe("pending");
  });

  it("api.extend(UNSET_TIMEOUT) passes no timeout, so ky's 10 s timeout stays off", async () => {
    vi.useFakeTimers();
    const api = createClient({ resilience: { fetch: hangingFetch as never } }).extend(UNSET_TIMEOUT);
    expect(await pendingAfter11s(() => api.get("http://127.0.0.1:9/x"))).toBe("pending");
  });

  it("a call's { timeout: undefined } passes no timeout, so ky's 10 s timeout stays off", async () => {
    vi.useFakeTimers();
    const api = createClient({ resilience: { fetch: hangingFetch as never } });
    expect(await pendingAfter11s(() => api.get("http://127.0.0.1:9/x", UNSET_TIMEOUT))).toBe("pending");
  });
});
