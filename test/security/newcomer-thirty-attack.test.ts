/**
 * Outside-in attack on a newcomer's first hour: README.md top to bottom, then docs/testing.md and
 * docs/options.md, each checkable sentence tried as a user would paste it.
 * Docs: README.md (the Quick start snippet and its catch comment; "`resilience.fetch` is a bound … It resolves
 * with a response, even a 503 … rejects when it has none"; the test-suite snippet, both tests; the 0.1 upgrade
 * note; the breaker's defaults "12 … beside a 50% failure-rate rule"; the bench row "dead API, one call at a
 * time: calls sent before the breaker refuses: 4"). docs/testing.md (the builders' refusals and clamps,
 * `upstream`, `recordEvents`, `TestClock` "fires the next timer after three real turns", "a timer that throws
 * rejects `advance` or `run` with its error, time left at that timer's", a delay past 2^31 − 1, fake timers and
 * `vi.setSystemTime` without a `clock`, a clock set back, `stream` breaking with `TypeError: terminated`, the MSW
 * Headers quirk and the ky paragraph added on 2026-12-03). docs/options.md (every default in the table that
 * `health()`/`debugInfo()` show, the `ConfigError` path and message, unknown keys, unreadable values,
 * `undefined`, the ky/proxy `resilience.` paths, "refuses only a key one or two letters from `resilience`",
 * options kept as read, `timeout.attempt` and `hedge.delay` at most 2,147,483,647, the `fetch` row's "an
 * answer that is no `Response` … is a network error (one of another realm … is known by its shape …)").
 * How: `createResilience`, `getResilienceInfo`, `isResilienceError` (root), `fallback` (./fallback),
 * `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare), the kit (./testing)
 * under MSW's `setupServer` (as the README does), a recording transport (test/helpers/recording-fetch.ts),
 * `TestClock` and vitest's fake timers.
 * Paths: plain call, `Request` input, fallback chain (fixed, hedged), degradation rewrite inside a chain, the
 * ky client (URL + options and `Request` input), the proxy's options, the kit's faults called directly.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: both made exact in the docs instead, each test now asserting the new sentence: docs/options.md names ky's retry and fetch among what createClient refuses, docs/testing.md narrows the MSW quirk to a bodied Request with no content-type of its own):
 * 1. docs/options.md "ky's own options are ky's to judge (it passes a key it does not know on to `fetch`, as a
 *    platform's `cf` or `next`), so `createClient` refuses only a key one or two letters from `resilience`
 *    (`resilence`), which would leave the client on a default layer." Observed: `createClient({ retry: 2 })`
 *    and `createClient({ fetch })`, ky's own options, are refused too, with a `ConfigError` ("set retries and
 *    the transport on the resilience layer"): `refuseOwn` in src/ky/index.ts. The refusal is deliberate (the
 *    JSDoc says so); the sentence's "only" is too broad.
 * 2. docs/testing.md "`new Headers(request.headers)` of a `Request` built with a body then keeps only the
 *    content-type" and "Through the ky client it cannot: … so under MSW a `Request` built with a body reaches
 *    the layer, and the upstream, without them." Observed (MSW 3.0.5, Node): a bodied `Request` whose
 *    `content-type` was set by the caller keeps every header through that copy, and through `api(request)` the
 *    upstream gets `authorization` and a custom header; the loss happens only when the content-type came from
 *    the body (none given). MSW's behaviour, described too broadly.
 *
 * Held (plain `it`):
 * - The README's test-suite snippet, both tests, pasted (one server with `corsPreflight()`).
 * - Quick start as written: a POST answered 503 by `primary` goes 4 attempts (initialDelay 500, full jitter:
 *   each wait ≤ 500·2^n) then to `backup`; `getResilienceInfo` shows attempts 5, endpoint "backup",
 *   fromFallback true, degradationLevel "full". A dropped connection on the keyless POST rejects with a
 *   resilience error and `backup` is never called; with `idempotencyKey: true` it moves on. The same with a
 *   bodied `Request` input at level `medium`: both endpoints get `steps: 30, resolution: "720p"`, and the
 *   info says "medium"; through the ky client on that layer too.
 * - Defaults: a GET 503 goes 3 attempts, waits 1000 and 2000 ms at `random` ≈ 1 (jitter "full"); a dead API
 *   one call at a time: 4 calls sent, the 5th refused with `CircuitOpenError`; `health()` then shows open,
 *   12 in a row, openUntil +30000, "unhealthy", retry { 3, 1000, 60000, "full" }, budget ratio 0.1 and 10/s;
 *   `debugInfo().options.breaker` shows 12 / 2 / 30000 / 3 / 30000 / 30000 / 0.5 / 100 / 1000. The rate rule:
 *   50 failures of 100 (never 12 in a row) open, 49 do not. `Retry-After: 60` is slept through, 61 is not.
 * - `resilience.fetch` destructured works; a chain whose last endpoint fails gives the last answer (a's 503);
 *   a plain call whose last attempt failed rejects (the README says "the last attempt's").
 * - options.md: message and path as shown (root, ky, proxy), unknown keys, unreadable values, `undefined`,
 *   the 0.1 shapes, bounds of `timeout.attempt` and `hedge.delay`; edits to retry, chains, rules and the ky
 *   client's headers after creation change nothing.
 * - `fetch` answers: `{}`, `undefined` and `Response.error()` are network errors (retried, a chain moves on
 *   for a GET); a foreign Response-shaped object is taken; one without `blob()` is not.
 * - The kit: `run` lets work of up to three `setTimeout(0)` turns settle before a timer, not four; a throwing
 *   timer rejects `advance`/`run` at its time; 2^32 fires at 2^31 − 1 (TestClock and `latency` on real
 *   timers); an aborted request ends a `latency` at once as a network error; a cancelled stream leaves no
 *   timer; `stream(…, { breakAfter })` gives `TypeError: terminated` through the layer and ky; the recorder's
 *   expectations throw plain Errors; fake timers and `vi.setSystemTime` drive the layer, and a clock set back
 *   makes an open breaker wait its timeout again from that date.
 * - ky through MSW with URL + options keeps every header; `createClient` refuses keys within two edits of
 *   `resilience` (case too) and takes `resilienceOptions` or other keys.
 */
import ky from "ky";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isResilienceError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  json,
  latency,
  networkError,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const server = setupServer(corsPreflight()); // a DOM environment (happy-dom) preflights cross-origin requests
beforeAll(() => server.listen());
afterEach(() => {
  server.resetHandlers();
  vi.useRealTimers();
});
afterAll(() => server.close());

// The README's code under test, as pasted.
async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
  const res = await fetchImpl("https://gen.example/v1/images", { method: "POST", body: JSON.stringify({ prompt }) });
  return (await res.json()) as { url: string };
}

const status503 = (body = "down") => new Response(body, { status: 503 });
const dropped = () => Promise.reject(new TypeError("fetch failed"));
const urlOf = (input: RequestInfo | URL) => (input instanceof Request ? input.url : String(input));

describe("README: In a test suite, pasted", () => {
  it("shows the image after two 503s", async () => {
    const api = upstream(
      "POST",
      "https://gen.example/v1/images",
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);

    const image = await clock.run(generateImage(resilience.fetch, "a cat")); // backoffs take no real time
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    expect(api.header("idempotency-key")[0]).toBeTruthy();
    recorder.expectRetries(2);
  });

  it("stops calling a dead API, then probes it after the breaker's timeout", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", status(503));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });

    for (let i = 0; i < 2; i++) await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    await expect(resilience.fetch("https://gen.example/v1/images", { method: "POST" })).rejects.toThrow(/open/i);
    expect(api.count()).toBe(2);
    const open = resilience.health();
    expect(open.status).toBe("unhealthy");
    expect(open.breakers["gen.example"]).toMatchObject({ state: "open", openUntil: 10_000, consecutiveFailures: 2 });

    await clock.advance(10_000); // the breaker half-opens: the next call is a probe
    await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    expect(api.count()).toBe(3);
  });
});

describe("README: Quick start, in a front-end app", () => {
  function quickStart(clock: TestClock, extra: { idempotencyKey?: boolean; degradation?: boolean } = {}) {
    return createResilience({
      clock,
      retry: { maxAttempts: 4, initialDelay: 500, ...(extra.idempotencyKey ? { idempotencyKey: true } : {}) },
      timeout: { attempt: 30_000, total: 120_000 },
      ...(extra.degradation ? { degradation: degradation({}) } : {}),
      fallback: fallback([
        {
          name: "images",
          endpoints: [
            { name: "primary", url: "https://gen.example/v1/images" },
            { name: "backup", url: "https://backup.example/v1/images", expectedQuality: 0.8 },
          ],
        },
      ]),
    });
  }
  const body = JSON.stringify({ prompt: "a cat", steps: 50, resolution: "1080p" });
  const init = { method: "POST", headers: { "content-type": "application/json" }, body };

  it("a 503 from primary: 4 attempts with backoff, then backup; getResilienceInfo says so", async () => {
    const primary = upstream("POST", "https://gen.example/v1/images", status(503));
    const backup = upstream("POST", "https://backup.example/v1/images", json({ from: "backup" }));
    server.use(primary.handler, backup.handler);
    const clock = new TestClock();
    const resilience = quickStart(clock);
    const delays: number[] = [];
    resilience.on("retry", (e) => delays.push(e.delay));
    const res = await clock.run(resilience.fetch("https://gen.example/v1/images", init));
    expect(await res.json()).toEqual({ from: "backup" });
    expect(primary.count()).toBe(4);
    expect(backup.count()).toBe(1);
    expect(delays).toHaveLength(3);
    for (const [n, d] of delays.entries()) expect(d).toBeLessThanOrEqual(500 * 2 ** n);
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 5,
      endpoint: "backup",
      fromFallback: true,
      degradationLevel: "full",
    });
  });

  it("a dropped connection on a keyless POST stops the chain with a resilience error; with a key it moves on", async () => {
    for (const idempotencyKey of [false, true]) {
      const primary = upstream("POST", "https://gen.example/v1/images", networkError());
      const backup = upstream("POST", "https://backup.example/v1/images", json({ from: "backup" }));
      server.use(primary.handler, backup.handler);
      const clock = new TestClock();
      const resilience = quickStart(clock, { idempotencyKey });
      const outcome = await clock.run(resilience.fetch("https://gen.example/v1/images", init)).then(
        (res) => res.status,
        (error: unknown) => (isResilienceError(error) ? "resilience error" : "other"),
      );
      if (idempotencyKey) {
        expect(outcome).toBe(200);
        expect(backup.count()).toBe(1);
      } else {
        expect(outcome).toBe("resilience error");
        expect(primary.count()).toBe(1);
        expect(backup.count()).toBe(0);
      }
      server.resetHandlers();
    }
  });

  it("a bodied Request input at level medium: both endpoints get the rewritten parameters; ky on the layer too", async () => {
    const primary = upstream("POST", "https://gen.example/v1/images", status(503));
    const backup = upstream("POST", "https://backup.example/v1/images", json({ from: "backup" }));
    server.use(primary.handler, backup.handler);
    const clock = new TestClock();
    const resilience = quickStart(clock, { degradation: true });
    resilience.degradation?.degrade("GPU queue full");
    resilience.degradation?.degrade("GPU queue full");
    const res = await clock.run(resilience.fetch(new Request("https://gen.example/v1/images", init)));
    expect(res.status).toBe(200);
    const rewritten = { prompt: "a cat", steps: 30, resolution: "720p" };
    for (const b of [...primary.bodies, ...backup.bodies]) expect(JSON.parse(b)).toEqual(rewritten);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "backup", degradationLevel: "medium" });

    const api = createClient({ resilience });
    const viaKy = await clock.run(api.post("https://gen.example/v1/images", { json: JSON.parse(body) }));
    expect(getResilienceInfo(viaKy)).toMatchObject({ endpoint: "backup", fromFallback: true });
    expect(JSON.parse(backup.bodies[1] as string)).toEqual(rewritten);
  });
});

describe("README: resolves with a response whenever it has one, rejects when it has none", () => {
  const chain = fallback([
    {
      name: "c",
      endpoints: [
        { name: "a", url: "https://a.example" },
        { name: "b", url: "https://b.example" },
      ],
    },
  ]);

  it("bound: destructured `fetch` works; in a chain, b's failure gives back a's 503", async () => {
    const clock = new TestClock();
    const { fetch } = createResilience({
      clock,
      fallback: chain,
      fetch: async (input) => (urlOf(input).startsWith("https://a.") ? status503("from a") : dropped()),
    });
    const res = await clock.run(fetch("https://a.example/x"));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("from a");
  });

  it("a plain call whose last attempt failed rejects (the sentence says: the last attempt's)", async () => {
    const clock = new TestClock();
    let n = 0;
    const resilience = createResilience({ clock, fetch: async () => (++n < 3 ? status503() : dropped()) });
    await expect(clock.run(resilience.fetch("https://api.example/x"))).rejects.toThrow(/3 attempts/);
  });
});

describe("README and options.md: the defaults, as health() and debugInfo() show them", () => {
  it("3 attempts, waits 1000 and 2000 ms; a dead API: 4 calls sent, the 5th refused; health after", async () => {
    const clock = new TestClock();
    const times: number[] = [];
    const { fetch } = recordingFetch(() => {
      times.push(clock.now());
      return status503();
    });
    const resilience = createResilience({ clock, fetch, random: () => 0.999_999 });
    const outcomes: Array<number | string> = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(
        await clock.run(resilience.fetch("https://api.example/x")).then(
          (res) => getResilienceInfo(res)?.attempts ?? -1,
          (error: Error) => error.name,
        ),
      );
    }
    expect(outcomes).toEqual([3, 3, 3, 3, "CircuitOpenError"]);
    expect(times[1]).toBeCloseTo(1000, 0);
    expect((times[2] as number) - (times[1] as number)).toBeCloseTo(2000, 0);
    const health = resilience.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers["api.example"]).toMatchObject({
      state: "open",
      consecutiveFailures: 12,
      openUntil: (times[11] as number) + 30_000,
    });
    expect(health.retry).toEqual({ maxAttempts: 3, initialDelay: 1000, maxDelay: 60_000, jitter: "full" });
    expect(health.budget).toMatchObject({ ratio: 0.1, minPerSecond: 10, retriesDenied: 0 });
    expect(resilience.debugInfo().options.breaker).toEqual({
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
      maxHosts: 1000,
    });
  });

  it("the 50% failure-rate rule over 100 calls: 50 failures open, 49 do not", async () => {
    for (const failures of [50, 49]) {
      let n = 0;
      const resilience = createResilience({
        retry: false,
        fetch: async () => {
          n++;
          return new Response("x", { status: n % 2 === 0 && n <= failures * 2 ? 503 : 200 });
        },
      });
      for (let i = 0; i < 100; i++) await resilience.fetch("https://api.example/x");
      expect(resilience.health().breakers["api.example"]?.state).toBe(failures === 50 ? "open" : "closed");
    }
  });

  it("maxRetryAfter 60000: Retry-After 60 is slept through, 61 is not", async () => {
    for (const seconds of [60, 61]) {
      const clock = new TestClock();
      const { fetch, sent } = recordingFetch(
        () => new Response("x", { status: 503, headers: { "retry-after": String(seconds) } }),
      );
      const resilience = createResilience({ clock, fetch });
      await clock.run(resilience.fetch("https://api.example/x"));
      expect(sent.length).toBe(seconds === 60 ? 3 : 1);
    }
  });
});

describe("options.md: checking, paths, copies and bounds", () => {
  it("a ConfigError names the path as the caller wrote it, at the root, in the ky client and the proxy", () => {
    const message = "retry.maxAttempts: expected a value >= 1, received 0";
    expect(() => createResilience({ retry: { maxAttempts: 0 } })).toThrow(message);
    expect(() => createClient({ resilience: { retry: { maxAttempts: 0 } } })).toThrow(`resilience.${message}`);
    expect(() =>
      resilientProxy({
        routes: [{ path: "/a", upstream: "https://a.example" }],
        resilience: { retry: { maxAttempts: 0 } },
      }),
    ).toThrow(`resilience.${message}`);
    expect(() => createResilience({ retry: { maxAttempt: 4 } } as never)).toThrow(/unknown option "maxAttempt"/);
    expect(() =>
      fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.example", expectedQuallity: 1 }] }] as never),
    ).toThrow(/fallback\.0\.endpoints\.0: unknown option/);
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    expect(() => createResilience({ breaker: revoked.proxy as never })).toThrow(/^breaker: .*cannot be read/);
    expect(() =>
      createResilience({
        retry: {
          get maxAttempts(): number {
            throw new Error("no");
          },
        },
      }),
    ).toThrow(/^retry\.maxAttempts: .*cannot be read/);
    expect(() => createResilience({ fallback: [] } as never)).toThrow(/fallback\(…\)/);
    expect(() => createResilience({ degradation: {} } as never)).toThrow(/degradation\(…\)/);
  });

  it("undefined never wipes a default", () => {
    const resilience = createResilience({
      retry: { maxAttempts: undefined, initialDelay: undefined },
      breaker: undefined,
      budget: undefined,
    });
    expect(resilience.health().retry).toEqual({ maxAttempts: 3, initialDelay: 1000, maxDelay: 60_000, jitter: "full" });
    expect(resilience.debugInfo().options.breaker?.failureThreshold).toBe(12);
    expect(resilience.health().budget).toMatchObject({ ratio: 0.1, minPerSecond: 10 });
  });

  it("timeout.attempt and hedge.delay: at most 2,147,483,647", () => {
    const hedged = (delay: number) =>
      fallback([
        {
          name: "c",
          hedge: { delay },
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
          ],
        },
      ]);
    expect(() => createResilience({ timeout: { attempt: 2_147_483_647 } })).not.toThrow();
    expect(() => createResilience({ timeout: { attempt: 2_147_483_648 } })).toThrow(/timeout\.attempt/);
    expect(() => hedged(2_147_483_647)).not.toThrow();
    expect(() => hedged(2_147_483_648)).toThrow(/hedge\.delay/);
  });

  it("an edit to the objects afterwards changes nothing: retry, chains, rules, ky headers", async () => {
    const clock = new TestClock();
    const { fetch, sent } = recordingFetch(() => status503());
    const retry = { maxAttempts: 2, retryOn: { statuses: [503] } };
    const endpoints = [
      { name: "a", url: "https://a.example", headers: { "x-k": "1" } },
      { name: "b", url: "https://b.example" },
    ];
    const rules = [{ match: "https://a.example", params: { steps: "steps" } }];
    const resilience = createResilience({
      clock,
      fetch,
      retry,
      fallback: fallback([{ name: "c", endpoints }]),
      degradation: degradation({ rules }),
    });
    retry.maxAttempts = 5;
    retry.retryOn.statuses.length = 0;
    endpoints.pop();
    (endpoints[0] as { url: string }).url = "https://evil.example";
    (endpoints[0] as { headers: Record<string, string> }).headers["x-k"] = "2";
    (rules[0] as { params: { steps: string } }).params.steps = "nope";
    resilience.degradation?.degrade("x");
    resilience.degradation?.degrade("x");
    await clock.run(
      resilience.fetch("https://a.example/x", {
        method: "PUT",
        body: JSON.stringify({ steps: 50 }),
        headers: { "content-type": "application/json" },
      }),
    );
    expect(sent.map((s) => `${s.url} ${s.headers.get("x-k")} ${s.body}`)).toEqual([
      'https://a.example/x 1 {"steps":30}',
      'https://a.example/x 1 {"steps":30}',
      'https://b.example/x null {"steps":30}',
      'https://b.example/x null {"steps":30}',
    ]);

    const headers = { authorization: "Bearer a" };
    const searchParams = { q: "1" };
    const api = createClient({ resilience: { fetch, retry: false }, headers, searchParams });
    headers.authorization = "Bearer b";
    searchParams.q = "2";
    sent.length = 0;
    await api.get("https://k.example/x", { throwHttpErrors: false });
    expect(sent.map((s) => `${s.url} ${s.headers.get("authorization")}`)).toEqual(["https://k.example/x?q=1 Bearer a"]);
  });
});

describe("options.md: the `fetch` row, answers that are no Response", () => {
  const shaped = () => ({
    status: 200,
    ok: true,
    statusText: "",
    type: "default",
    url: "",
    redirected: false,
    headers: new Headers({ "content-type": "text/plain" }),
    body: null,
    bodyUsed: false,
    clone: () => shaped(),
    text: async () => "foreign",
    json: async () => ({}),
    arrayBuffer: async () => new ArrayBuffer(0),
    blob: async () => new Blob([]),
  });

  it("{}, undefined and Response.error() are network errors: retried, then a RetryExhaustedError", async () => {
    for (const answer of [
      () => ({}),
      () => undefined,
      () => Response.error(),
      () => ({ ...shaped(), blob: undefined }),
    ]) {
      const clock = new TestClock();
      let n = 0;
      const resilience = createResilience({
        clock,
        fetch: async () => {
          n++;
          return answer() as unknown as Response;
        },
      });
      await expect(clock.run(resilience.fetch("https://api.example/x"))).rejects.toThrow(/3 attempts.*network error/);
      expect(n).toBe(3);
    }
  });

  it("a Response of another realm, known by its shape, is taken; in a chain a non-answer moves a GET on", async () => {
    const clock = new TestClock();
    const foreign = createResilience({ clock, fetch: async () => shaped() as unknown as Response });
    const res = await clock.run(foreign.fetch("https://api.example/x"));
    expect(await res.text()).toBe("foreign");

    const chained = createResilience({
      clock,
      retry: false,
      fetch: async (input) => (urlOf(input).startsWith("https://a.") ? ({} as Response) : new Response("b")),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
          ],
        },
      ]),
    });
    const moved = await clock.run(chained.fetch("https://a.example/x"));
    expect(await moved.text()).toBe("b");
    expect(getResilienceInfo(moved)).toMatchObject({ endpoint: "b", fromFallback: true });
  });
});

describe("options.md: createClient and keys near `resilience`", () => {
  it("refuses keys one or two letters from `resilience` (case too), takes others", () => {
    for (const key of ["resilence", "resiliance", "Resilience", "resilinece", "resilienc", "resiliences"]) {
      expect(() => createClient({ [key]: {} } as never), key).toThrow(/did you mean "resilience"/);
    }
    for (const key of ["resilienceOptions", "foo", "cf"]) {
      expect(() => createClient({ [key]: {} } as never), key).not.toThrow();
    }
  });

  // Made exact in docs/options.md instead: it refuses only ky's `retry` and `fetch` and such keys.
  it("refuses only ky's `retry` and `fetch` and such keys", () => {
    expect(() => createClient({ retry: 2 } as never)).toThrow(
      /^retry: set retries and the transport on the resilience layer/,
    );
    expect(() => createClient({ fetch: globalThis.fetch } as never)).toThrow(/^fetch: set retries and the transport/);
    expect(() => createClient({ timeout: 1_000, hooks: {}, cf: {} } as never)).not.toThrow();
  });
});

describe("testing.md: the MSW Headers quirk and the ky client", () => {
  const headers = { authorization: "Bearer t", "x-custom": "c", "content-type": "application/json" };
  const seen = (api: ReturnType<typeof upstream>) =>
    api.requests.map((r) => [r.headers.get("authorization"), r.headers.get("x-custom")]);

  it("with ky, the URL and options keep every header under MSW, across a retry", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", sequence([status(503), json({ ok: 1 })]));
    server.use(api.handler);
    const clock = new TestClock();
    const client = createClient({ resilience: { clock, retry: { idempotencyKey: true } } });
    await clock.run(client.post("https://gen.example/v1/images", { body: "{}", headers }).json());
    expect(seen(api)).toEqual([
      ["Bearer t", "c"],
      ["Bearer t", "c"],
    ]);
  });

  it("the quirk as documented: a bodied Request with no content-type given keeps only the content-type", () => {
    const copy = new Headers(
      new Request("https://q.example/", { method: "POST", body: "{}", headers: { authorization: "Bearer t" } }).headers,
    );
    expect([...copy.keys()]).toEqual(["content-type"]);
  });

  // Made exact in docs/testing.md instead: only a bodied Request with no content-type of its own loses them.
  it("through ky, a bodied Request without a content-type of its own reaches the upstream without its headers; one with keeps them", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", json({ ok: 1 }));
    server.use(api.handler);
    const client = createClient({ resilience: { retry: false } });
    const { "content-type": _given, ...withoutType } = headers;
    for (const sent of [withoutType, headers]) {
      await client(new Request("https://gen.example/v1/images", { method: "POST", headers: sent, body: "{}" })).json();
    }
    expect(seen(api)).toEqual([
      [null, null],
      ["Bearer t", "c"],
    ]);
  });

  it("plain ky on resilience.fetch (the README's drop-in) takes a bodied Request input", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", json({ ok: 1 }));
    server.use(api.handler);
    const resilience = createResilience({});
    const request = new Request("https://gen.example/v1/images", { method: "POST", headers, body: "{}" });
    expect(await ky(request, { fetch: resilience.fetch, retry: 0 }).json()).toEqual({ ok: 1 });
  });
});

describe("testing.md: the kit", () => {
  it("run lets three real turns of work settle before it fires a timer, not four", async () => {
    const results: string[] = [];
    for (const turns of [3, 4]) {
      const clock = new TestClock();
      const work = new Promise<string>((resolve, reject) => {
        clock.setTimer(() => reject(new Error("timer")), 1000);
        let k = 0;
        const step = () => (++k >= turns ? resolve("io") : setTimeout(step, 0));
        setTimeout(step, 0);
      });
      results.push(await clock.run(work).catch((error: Error) => error.message));
    }
    expect(results).toEqual(["io", "timer"]);
  });

  it("a timer that throws rejects advance and run with its error, time left at that timer's", async () => {
    const boom = new Error("boom");
    const clock = new TestClock(5);
    const fired: number[] = [];
    clock.setTimer(() => fired.push(1), 50);
    clock.setTimer(() => {
      throw boom;
    }, 100);
    clock.setTimer(() => fired.push(3), 200);
    await expect(clock.advance(500)).rejects.toBe(boom);
    expect(clock.now()).toBe(105);
    expect(fired).toEqual([1]);
    const other = new TestClock();
    other.setTimer(() => {
      throw boom;
    }, 100);
    await expect(other.run(new Promise(() => {}))).rejects.toBe(boom);
    expect(other.now()).toBe(100);
  });

  it("a delay past 2^31 − 1 ms waits that long: on the TestClock and in latency on real timers", async () => {
    const clock = new TestClock();
    let fired = false;
    clock.setTimer(() => {
      fired = true;
    }, 2 ** 32);
    await clock.advance(2 ** 31 - 2);
    expect(fired).toBe(false);
    await clock.advance(1);
    expect(fired).toBe(true);

    vi.useFakeTimers();
    let answered = false;
    const wait = Promise.resolve(latency(2 ** 32, json({}))(new Request("https://x.example/"), { attempt: 1 })).then(
      () => {
        answered = true;
      },
    );
    await vi.advanceTimersByTimeAsync(2 ** 31 - 2);
    expect(answered).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(answered).toBe(true);
    await wait;
  });

  it("an aborted request ends a latency at once as a network error; a cancelled stream leaves no timer", async () => {
    const aborted = new AbortController();
    aborted.abort();
    const res = await latency(10, json({}))(new Request("https://x.example/", { signal: aborted.signal }), {
      attempt: 1,
    });
    expect(res.type).toBe("error");

    const clock = new TestClock();
    const streamed = await stream(["a", "b"], { interval: 1000, clock })(new Request("https://x.example/"), {
      attempt: 1,
    });
    const reader = (streamed.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const next = reader.read();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(clock.pending()).toBe(1);
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(clock.pending()).toBe(0);
    expect((await next).done).toBe(true);
  });

  it("a stream that breaks mid-body: TypeError terminated through the layer and through ky", async () => {
    server.use(upstream("GET", "https://s.example/x", stream(["a", "b", "c"], { breakAfter: 1 })).handler);
    const viaLayer = await createResilience({}).fetch("https://s.example/x");
    await expect(viaLayer.text()).rejects.toThrow(/terminated/);
    await expect(createClient({}).get("https://s.example/x").text()).rejects.toThrow(/terminated/);
  });

  it("the recorder's expectations pass when met and throw plain Errors when not", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: async (input) => new Response("x", { status: urlOf(input).startsWith("https://a.") ? 503 : 200 }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example" },
          ],
        },
      ]),
      degradation: degradation({}),
    });
    const recorder = recordEvents(resilience);
    await clock.run(resilience.fetch("https://a.example/x"));
    resilience.degradation?.degrade("x");
    recorder.expectFallback("a", "b");
    recorder.expectDegradedTo("high");
    recorder.expectRetries(0);
    for (const miss of [
      () => recorder.expectFallback("b"),
      () => recorder.expectDegradedTo("low"),
      () => recorder.expectBreakerOpened("a.example"),
      () => recorder.expectRetries(1),
    ]) {
      let thrown: unknown;
      try {
        miss();
      } catch (error) {
        thrown = error;
      }
      expect(Object.getPrototypeOf(thrown)).toBe(Error.prototype);
    }
  });

  it("without a clock, fake timers and setSystemTime drive the layer; a clock set back restarts the wait", async () => {
    const T = 1_800_000_000_000;
    vi.useFakeTimers({ now: T });
    let sent = 0;
    const resilience = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, timeout: 10_000 },
      fetch: async () => {
        sent++;
        return status503();
      },
    });
    await resilience.fetch("https://api.example/x");
    expect(resilience.health().breakers["api.example"]?.openUntil).toBe(T + 10_000);
    const outcome = () =>
      resilience.fetch("https://api.example/x").then(
        (res) => res.status,
        (error: Error) => error.name,
      );
    vi.setSystemTime(T - 5000); // set back: the breaker waits its timeout again from here
    expect(await outcome()).toBe("CircuitOpenError");
    vi.setSystemTime(T + 4999);
    expect(await outcome()).toBe("CircuitOpenError");
    vi.setSystemTime(T + 5000);
    expect(await outcome()).toBe(503);
    expect(sent).toBe(2);
  });
});
