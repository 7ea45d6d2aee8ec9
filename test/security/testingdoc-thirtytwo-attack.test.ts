/**
 * Outside-in attack on docs/testing.md and the `./testing` entry (its JSDoc too), read as promises and used the
 * way a user's own vitest suite with MSW 3 uses them: `setupServer` from "msw/node" (with `corsPreflight()` as the
 * docs set it up, unhandled requests an error), the kit's faults behind `upstream`, a `TestClock` as the layer's
 * clock, `recordEvents` for what the layer did.
 * Docs: docs/testing.md: the builder table ("`status(code, { retryAfter?, headers?, body? })` | answers `code`;
 * `retryAfter` in seconds or as a `Date`", "`networkError()` | the connection fails (fetch rejects) after the
 * request went out: a keyless POST stops there", "`latency(ms, then, { clock? })` | waits before headers (on the
 * injected clock if given)", "`hang()` | never answers; closes when the client aborts", "`sequence` … the last
 * repeats (or `then: "cycle"`)", "`flaky` … reproducibly", "`outage` … an outage window on a clock");
 * "`upstream(method, url, fault)` … records every request: `count()`, `requests`, `bodies`, `header(name)`,
 * `reset()` (after which `sequence` and `flaky` start over)"; "`recordEvents(resilience)` collects the layer's
 * events in order, with `of(type)`, `expectBreakerOpened(key)`, `expectBreakerClosed(key)`, `expectRetries(n,
 * key?)`, `expectFallback(from, next?)`, `expectDegradedTo(level)` (they throw plain Errors …)"; "`TestClock` moves
 * time only when told (`advance(ms)`, or `run(promise)` which fires timers until the promise settles, so backoffs
 * take no real time)"; "Use a stub or MSW with a `TestClock`"; the ky paragraph ("With ky, pass the URL and
 * options (`api.post(url, { body, headers })`), which keep every header"); the component-test snippet, which
 * checks one `Idempotency-Key` for the three requests with `expect(new Set(api.header("idempotency-key")).size)
 * .toBe(1)` (the same line in README.md and in the `upstream` JSDoc example). docs/browsers-and-cors.md "Catching
 * it in your tests" ("With retry.idempotencyKey: true, every call now rejects (RetryExhaustedError, a network error
 * as cause); without it, the 503's Retry-After is not seen"). README.md's breaker test.
 * How: `createResilience`, `getResilienceInfo`, `isRetryExhaustedError`, `isTimeoutError` (root), `fallback`
 * (./fallback), `degradation` (./degradation), `createClient` (./ky), every `./testing` export; MSW 3's
 * `setupServer`.
 * Paths: plain call, chain (p → q), hedge, `Request` input, degradation rewrite, ky client, CORS `respond`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the docs they were written against;
 * fixed since, so plain `it`: the examples in docs/testing.md, README.md and the `upstream` JSDoc also check that
 * no attempt went without a key, and this file's copy of the snippet with them):
 * 1. docs/testing.md component test (also README.md's and the `upstream` JSDoc example): it checks that the three
 *    requests carried one `Idempotency-Key` with `expect(new Set(api.header("idempotency-key")).size).toBe(1)`.
 *    Observed: the test cannot fail when the layer sends no key at all: `header()` gives `null` where the header is
 *    absent, so three keyless requests give `Set {null}`, size 1; and a keyless POST is still retried on 503 (a
 *    declined answer), so the count (3) and `expectRetries(2)` hold too. Run with a layer that sends no key
 *    (`idempotencyKey: false`, standing in for a library that lost the header), every assertion of the snippet
 *    passes. (A fix: also `expect(api.header("idempotency-key")).not.toContain(null)`.)
 *
 * Held (plain `it`):
 * - The snippet as written; with the stronger check (no `null`) too; its first wait is the 503's `Retry-After: 1`
 *   (1000 ms on the clock, `retryAfter: true`), no timer left.
 * - `status`: `Retry-After` in seconds (7000 ms on the clock) and as a `Date` (9000 ms, on a clock started at a
 *   real epoch and on one started at 0); its `headers` and `body` reach the caller on the final answer.
 * - `networkError()`: a GET is retried (3 requests, `RetryExhaustedError` with a `TypeError` cause, reasons
 *   "network error"), a keyless POST goes once, a keyed POST 3 times.
 * - `hang()` under `timeout.attempt` on the clock: 3 attempts, `TimeoutError` of phase "attempt", each hung
 *   request heard its abort, no timer left. `latency(ms)` on the clock answers at exactly `ms`; past the attempt
 *   timeout it times out, its timers cancelled.
 * - Hedge: a primary slowed by `latency` on the clock loses to the hedge after its delay; the primary's request is
 *   aborted; no timer left. Chain p (503) → q: `expectFallback("p", "q")`, `getResilienceInfo` endpoint q.
 * - Degradation: `expectDegradedTo("medium")`, the recorded body is the rewritten one.
 * - ky client: `Retry-After` honoured on the clock, one key and `authorization` on every request; an all-503 call
 *   rejects with ky's `HTTPError` whose response `getResilienceInfo` reads (3 attempts).
 * - `Request` input with a body and `authorization`: every header, the body and one key on each request. Through
 *   ky, as the docs say: such a `Request` without a `content-type` of its own loses its headers under MSW, one
 *   with its own keeps them.
 * - README's breaker test; a long `Retry-After` holds the host open (`expectBreakerOpened`), and after
 *   `advance` it probes and closes (`expectBreakerClosed` after two successes).
 * - The CORS snippet: keyed calls reject `RetryExhaustedError` (cause `TypeError`); keyless ones retry without
 *   seeing `Retry-After`.
 * - `recordEvents`: the same events, in the same order, as listeners of one's own; `stop()` stops it; its
 *   expectations throw plain `Error`s. `upstream.reset()` restarts `sequence` (cycle) and `flaky` (same draws).
 *   `outage` follows the clock.
 * - `run` with MSW does not jump to a pending attempt timeout: a 4 MB POST and a 4 MB answer read inside `run`.
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isRetryExhaustedError,
  isTimeoutError,
  type RetryExhaustedError,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  type Fault,
  flaky,
  hang,
  json,
  latency,
  networkError,
  outage,
  recordEvents,
  sequence,
  status,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";

const server = setupServer(corsPreflight());
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const URL_ = "https://gen.example/v1/images";

/** The docs' code under test: it takes a fetch. */
async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
  const res = await fetchImpl(URL_, { method: "POST", body: JSON.stringify({ prompt }) });
  return (await res.json()) as { url: string };
}

/** The snippet's upstream: two 503s (the first with `Retry-After: 1`), then the image. */
function snippetUpstream() {
  const api = upstream(
    "POST",
    URL_,
    sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
  );
  server.use(api.handler);
  return api;
}

/** A fault that records whether the client's abort reached the request it answers. */
function heard(fault: Fault, aborted: boolean[]): Fault {
  return (request, info) => {
    const i = aborted.push(false) - 1;
    request.signal.addEventListener("abort", () => {
      aborted[i] = true;
    });
    return fault(request, info);
  };
}

describe("the component test of docs/testing.md", () => {
  it("runs as written, and its first wait is the 503's Retry-After", async () => {
    const api = snippetUpstream();
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);

    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    recorder.expectRetries(2);
    // The stronger check: a key on every request.
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(recorder.of("retry")[0]).toMatchObject({ delay: 1000, retryAfter: true, reason: "status 503" });
    expect(clock.pending()).toBe(0);
  });

  it("a layer that sends no key: three keyless requests, still retried on 503", async () => {
    const api = snippetUpstream();
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: false } });
    await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(api.header("idempotency-key")).toEqual([null, null, null]);
  });

  it("its one-key check fails when the layer sends no Idempotency-Key", async () => {
    const api = snippetUpstream();
    const clock = new TestClock();
    // Stands in for a library that lost the header: the snippet's test should catch it.
    const resilience = createResilience({ clock, retry: { idempotencyKey: false } });
    const recorder = recordEvents(resilience);
    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    const snippetAssertions = () => {
      expect(image.url).toBe("https://cdn.example/cat.png");
      expect(api.count()).toBe(3);
      expect(api.header("idempotency-key")).not.toContain(null);
      expect(new Set(api.header("idempotency-key")).size).toBe(1);
      recorder.expectRetries(2);
    };
    expect(snippetAssertions).toThrow();
  });
});

describe("faults as the table says, under the layer and a TestClock", () => {
  it("status: Retry-After in seconds and as a Date, on the clock; headers and body reach the caller", async () => {
    const cases: Array<[TestClock, Fault, number]> = [];
    const epoch = new TestClock(1_700_000_000_000);
    cases.push([new TestClock(), status(429, { retryAfter: 7 }), 7000]);
    cases.push([epoch, status(503, { retryAfter: new Date(epoch.now() + 9000) }), 9000]);
    cases.push([new TestClock(), status(503, { retryAfter: new Date(9000) }), 9000]);
    for (const [clock, first, wait] of cases) {
      const api = upstream("GET", URL_, sequence([first, json({ ok: 1 })]));
      server.use(api.handler);
      const resilience = createResilience({ clock });
      const recorder = recordEvents(resilience);
      const start = clock.now();
      const res = await clock.run(resilience.fetch(URL_));
      expect(res.status).toBe(200);
      expect(clock.now() - start).toBe(wait);
      expect(recorder.of("retry").map((e) => [e.delay, e.retryAfter])).toEqual([[wait, true]]);
      expect(clock.pending()).toBe(0);
      server.resetHandlers();
    }
    const api = upstream("GET", URL_, status(502, { headers: { "x-upstream": "gpu-7" }, body: "queue full" }));
    server.use(api.handler);
    const clock = new TestClock();
    const res = await clock.run(createResilience({ clock }).fetch(URL_));
    expect([res.status, res.headers.get("x-upstream"), await res.text(), api.count()]).toEqual([
      502,
      "gpu-7",
      "queue full",
      3,
    ]);
  });

  it("networkError: a GET is retried, a keyless POST stops there, a keyed POST is retried", async () => {
    const seen: Array<[string, number, string[]]> = [];
    for (const [method, key] of [
      ["GET", false],
      ["POST", false],
      ["POST", true],
    ] as const) {
      const api = upstream(method, URL_, networkError());
      server.use(api.handler);
      const clock = new TestClock();
      const resilience = createResilience({ clock, retry: { idempotencyKey: key } });
      const recorder = recordEvents(resilience);
      const error = (await rejection(
        clock.run(resilience.fetch(URL_, { method, body: method === "POST" ? "{}" : null })),
      )) as RetryExhaustedError;
      expect(isRetryExhaustedError(error)).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(TypeError);
      seen.push([`${method}${key ? " keyed" : ""}`, api.count(), recorder.of("retry").map((e) => e.reason)]);
      expect(clock.pending()).toBe(0);
      server.resetHandlers();
    }
    expect(seen).toEqual([
      ["GET", 3, ["network error", "network error"]],
      ["POST", 1, []],
      ["POST keyed", 3, ["network error", "network error"]],
    ]);
  });

  it("hang: closes when the client aborts (attempt timeouts on the clock), no timer left", async () => {
    const aborted: boolean[] = [];
    const api = upstream("GET", URL_, heard(hang(), aborted));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, timeout: { attempt: 1000 } });
    const error = (await rejection(clock.run(resilience.fetch(URL_)))) as TimeoutError;
    expect(isTimeoutError(error)).toBe(true);
    expect(error.phase).toBe("attempt");
    expect(api.count()).toBe(3);
    await new Promise((r) => setTimeout(r, 5));
    expect(aborted).toEqual([true, true, true]);
    expect(clock.pending()).toBe(0);
  });

  it("latency on the clock: answers at exactly ms; past the attempt timeout it times out, timers cancelled", async () => {
    const clock = new TestClock();
    const api = upstream("GET", URL_, latency(2500, json({ ok: 1 }), { clock }));
    server.use(api.handler);
    const res = await clock.run(createResilience({ clock }).fetch(URL_));
    expect([res.status, clock.now(), api.count()]).toEqual([200, 2500, 1]);

    const slow = new TestClock();
    server.resetHandlers();
    const late = upstream("GET", URL_, latency(2500, json({ ok: 1 }), { clock: slow }));
    server.use(late.handler);
    const error = await rejection(slow.run(createResilience({ clock: slow, timeout: { attempt: 1000 } }).fetch(URL_)));
    expect(isTimeoutError(error)).toBe(true);
    expect(late.count()).toBe(3);
    await new Promise((r) => setTimeout(r, 5));
    expect(slow.pending()).toBe(0);
  });

  it("sequence cycles and flaky repeats its draws after upstream.reset(); outage follows the clock", async () => {
    const clock = new TestClock();
    // biome-ignore lint/suspicious/noThenProperty: the kit names this option `then`
    const cycle = { then: "cycle" } as const;
    const cyc = upstream("GET", "https://a.example/x", sequence([status(500), status(501)], cycle));
    const fl = upstream("GET", "https://b.example/x", flaky(0.5, { seed: 7 }));
    const out = upstream(
      "GET",
      "https://c.example/x",
      outage({ from: 1000, until: 2000, clock }, status(503), json({ up: true })),
    );
    server.use(cyc.handler, fl.handler, out.handler);
    const statuses = async (url: string, n: number) => {
      const got: number[] = [];
      for (let i = 0; i < n; i++) got.push((await fetch(url)).status);
      return got;
    };
    expect(await statuses("https://a.example/x", 4)).toEqual([500, 501, 500, 501]);
    cyc.reset();
    expect(await statuses("https://a.example/x", 1)).toEqual([500]);
    const first = await statuses("https://b.example/x", 12);
    expect(first).toContain(503);
    expect(first).toContain(200);
    fl.reset();
    expect(await statuses("https://b.example/x", 12)).toEqual(first);
    const outs = [(await fetch("https://c.example/x")).status];
    await clock.advance(1000);
    outs.push((await fetch("https://c.example/x")).status);
    await clock.advance(1000);
    outs.push((await fetch("https://c.example/x")).status);
    expect(outs).toEqual([200, 503, 200]);
  });
});

describe("paths: hedge, chain, degradation, ky, Request input", () => {
  it("hedge: the hedge wins after its delay on the clock, the primary is aborted, no timer left", async () => {
    const clock = new TestClock();
    const aborted: boolean[] = [];
    const a = upstream("GET", "https://a.example/v1/x", heard(latency(5000, json({ who: "a" }), { clock }), aborted));
    const b = upstream("GET", "https://b.example/v1/x", json({ who: "b" }));
    server.use(a.handler, b.handler);
    const resilience = createResilience({
      clock,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 100 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const res = await clock.run(resilience.fetch("https://a.example/v1/x"));
    expect(await res.json()).toEqual({ who: "b" });
    expect([clock.now(), a.count(), b.count()]).toEqual([100, 1, 1]);
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(recorder.of("request")).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 5));
    expect(aborted).toEqual([true]);
    expect(clock.pending()).toBe(0);
  });

  it("chain: p's 503 passes over to q; expectFallback sees it", async () => {
    const clock = new TestClock();
    const p = upstream("POST", "https://p.example/v1/jobs", status(503));
    const q = upstream("POST", "https://q.example/v1/jobs", json({ id: "q" }));
    server.use(p.handler, q.handler);
    const resilience = createResilience({
      clock,
      retry: { idempotencyKey: true },
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "q", url: "https://q.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const res = await clock.run(resilience.fetch("https://p.example/v1/jobs", { method: "POST", body: "{}" }));
    expect(await res.json()).toEqual({ id: "q" });
    recorder.expectFallback("p", "q");
    expect(() => recorder.expectFallback("q")).toThrow(Error);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
    expect([p.count(), q.count()]).toEqual([3, 1]);
    expect(clock.pending()).toBe(0);
  });

  it("degradation: expectDegradedTo, and the upstream records the rewritten body", async () => {
    const clock = new TestClock();
    const api = upstream("POST", URL_, json({ ok: 1 }));
    server.use(api.handler);
    const resilience = createResilience({ clock, degradation: degradation() });
    const recorder = recordEvents(resilience);
    resilience.degradation.degrade("x");
    resilience.degradation.degrade("y");
    const res = await clock.run(
      resilience.fetch(URL_, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ steps: 50, quality: 1 }),
      }),
    );
    recorder.expectDegradedTo("medium");
    expect(() => recorder.expectDegradedTo("low")).toThrow(Error);
    expect(api.bodies).toEqual(['{"steps":30,"quality":0.8}']);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
  });

  it("ky client: Retry-After on the clock, one key and every header; an all-503 call is ky's HTTPError", async () => {
    const clock = new TestClock();
    const api = upstream("POST", URL_, sequence([status(503), status(503, { retryAfter: 3 }), json({ url: "u" })]));
    server.use(api.handler);
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);
    const client = createClient({ resilience });
    const out = await clock.run(
      client.post(URL_, { json: { prompt: "a" }, headers: { authorization: "Bearer t" } }).json(),
    );
    expect(out).toEqual({ url: "u" });
    expect(api.count()).toBe(3);
    expect(api.header("authorization")).toEqual(["Bearer t", "Bearer t", "Bearer t"]);
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    expect(api.bodies).toEqual(Array(3).fill('{"prompt":"a"}'));
    expect(recorder.of("retry")[1]).toMatchObject({ delay: 3000, retryAfter: true });

    server.resetHandlers();
    const dead = upstream("GET", URL_, status(503));
    server.use(dead.handler);
    const error = (await rejection(clock.run(client.get(URL_).json()))) as { name: string; response: Response };
    expect(error.name).toBe("HTTPError");
    expect(getResilienceInfo(error.response)?.attempts).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it("ky client with a Request input: without its own content-type its headers vanish under MSW, with one they stay", async () => {
    const clock = new TestClock();
    const api = upstream("POST", URL_, json({ ok: 1 }));
    server.use(api.handler);
    const client = createClient({ resilience: createResilience({ clock }) });
    const headers = { authorization: "Bearer t", "x-trace": "1" };
    await clock.run(client(new Request(URL_, { method: "POST", body: "a", headers })).json());
    await clock.run(
      client(
        new Request(URL_, { method: "POST", body: "b", headers: { ...headers, "content-type": "text/plain" } }),
      ).json(),
    );
    expect(api.header("authorization")).toEqual([null, "Bearer t"]);
    expect(api.header("x-trace")).toEqual([null, "1"]);
    expect(api.bodies).toEqual(["a", "b"]);
  });

  it("Request input with a body and authorization: every header, the body and one key on each request", async () => {
    const clock = new TestClock();
    const api = upstream("POST", URL_, sequence([status(503), json({ url: "u" })]));
    server.use(api.handler);
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const res = await clock.run(
      resilience.fetch(
        new Request(URL_, { method: "POST", body: "hello", headers: { authorization: "Bearer t", "x-trace": "1" } }),
      ),
    );
    expect(res.status).toBe(200);
    expect(api.header("authorization")).toEqual(["Bearer t", "Bearer t"]);
    expect(api.header("x-trace")).toEqual(["1", "1"]);
    expect(api.bodies).toEqual(["hello", "hello"]);
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(api.header("idempotency-key")).not.toContain(null);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
  });
});

describe("breakers, CORS, the recorder, run", () => {
  it("README's breaker test; a long Retry-After holds the host, then it probes and closes", async () => {
    const api = upstream("POST", URL_, status(503));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });
    for (let i = 0; i < 2; i++) await resilience.fetch(URL_, { method: "POST" });
    await expect(resilience.fetch(URL_, { method: "POST" })).rejects.toThrow(/open/i);
    expect(api.count()).toBe(2);
    await clock.advance(10_000);
    await resilience.fetch(URL_, { method: "POST" });
    expect(api.count()).toBe(3);

    server.resetHandlers();
    const held = upstream("GET", URL_, sequence([status(503, { retryAfter: 3600 }), json({ ok: 1 })]));
    server.use(held.handler);
    const c2 = new TestClock();
    const layer = createResilience({ clock: c2 });
    const recorder = recordEvents(layer);
    expect((await c2.run(layer.fetch(URL_))).status).toBe(503);
    recorder.expectBreakerOpened("gen.example");
    await expect(c2.run(layer.fetch(URL_))).rejects.toThrow(/open/i);
    await c2.advance(3_600_000);
    for (let i = 0; i < 2; i++) expect((await c2.run(layer.fetch(URL_))).status).toBe(200);
    recorder.expectBreakerClosed("gen.example");
    expect(held.count()).toBe(3);
    expect(c2.pending()).toBe(0);
  });

  it("the CORS snippet: keyed calls reject as network errors, keyless ones never see Retry-After", async () => {
    const seen: unknown[] = [];
    for (const key of [true, false]) {
      const api = corsPreflight({ allowHeaders: ["content-type", "authorization"], exposeHeaders: [] });
      const images = upstream(
        "POST",
        "https://api.example/v1/images",
        api.respond(sequence([status(503, { retryAfter: 2 }), json({ id: "img_1" })])),
      );
      server.use(api, images.handler);
      const clock = new TestClock();
      const resilience = createResilience({ clock, retry: { idempotencyKey: key } });
      const recorder = recordEvents(resilience);
      const call = clock.run(resilience.fetch("https://api.example/v1/images", { method: "POST", body: "{}" }));
      if (key) {
        const error = (await rejection(call)) as Error;
        seen.push([isRetryExhaustedError(error), error.cause instanceof TypeError, images.count()]);
      } else {
        const res = await call;
        seen.push([res.status, recorder.of("retry").map((e) => e.retryAfter)]);
      }
      server.resetHandlers();
    }
    expect(seen).toEqual([
      [true, true, 3],
      [200, [false]],
    ]);
  });

  it("recordEvents: the listeners' events in order; stop() stops it; expectations throw plain Errors", async () => {
    const api = upstream("GET", URL_, sequence([status(503), status(429), json({ ok: 1 })]));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const own: Array<{ type: string }> = [];
    for (const type of [
      "retry",
      "request",
      "breaker",
      "fallback",
      "degradation",
      "store",
      "replay",
      "redirect",
    ] as const)
      resilience.on(type, (payload) => own.push({ type, ...payload }));
    const recorder = recordEvents(resilience);
    await clock.run(resilience.fetch(URL_));
    expect(recorder.events).toEqual(own);
    expect(recorder.events.map((e) => e.type)).toEqual(["retry", "retry", "request"]);
    expect(recorder.of("retry").map((e) => e.reason)).toEqual(["status 503", "status 429"]);
    recorder.expectRetries(2, "gen.example");
    for (const miss of [
      () => recorder.expectRetries(1),
      () => recorder.expectBreakerOpened("gen.example"),
      () => recorder.expectBreakerClosed("gen.example"),
      () => recorder.expectFallback("p"),
      () => recorder.expectDegradedTo("low"),
    ]) {
      expect(miss).toThrow(Error);
    }
    recorder.stop();
    api.reset();
    await clock.run(resilience.fetch(URL_));
    expect(recorder.events).toHaveLength(3);
    expect(own).toHaveLength(6);
  });

  it("run with MSW never jumps to a pending attempt timeout: a 4 MB POST, a 4 MB answer read inside run", async () => {
    const api = upstream("POST", URL_, json({ ok: 1 }));
    const big = "y".repeat(4 * 1024 * 1024);
    const down = upstream("GET", URL_, json({ big }));
    server.use(api.handler, down.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, timeout: { attempt: 1000, total: 5000 } });
    const res = await clock.run(resilience.fetch(URL_, { method: "POST", body: "x".repeat(4 * 1024 * 1024) }));
    expect([res.status, api.count(), clock.now()]).toEqual([200, 1, 0]);
    expect(api.bodies[0]).toHaveLength(4 * 1024 * 1024);
    const read = await clock.run(resilience.fetch(URL_).then((r) => r.json() as Promise<{ big: string }>));
    expect([read.big.length, clock.now()]).toEqual([big.length, 0]);
  });
});
