/**
 * Outside-in attack on docs/retry.md (## Retry, ## Idempotency, ## Retry budget, ## Timeouts, ## Redirects, the
 * error table) and README.md's "This library retries what is safe to retry, only as often as a retry budget
 * allows", driven on the paths earlier retry runs (retrydoc-fortyeight, hedgekeys-fiftyone) drove least: a redirect
 * that never ends, a redirect whose target fails, a hedge that wins during a retry's wait, ky and the proxy.
 *
 * Docs:
 * - docs/retry.md "## Retry": "Retried by default: network errors, attempt timeouts and statuses 408, 425, 429,
 *   500, 502, 503, 504"; error table: `RetryExhaustedError` "the last attempt failed without a response" with
 *   "`attempts`, `endpoint` (the breaker's key: the host, or what `breaker.key` gives for the URL), `cause`".
 * - docs/retry.md "## Idempotency": "GET, HEAD, OPTIONS, PUT and DELETE retry freely. A POST or PATCH without an
 *   `Idempotency-Key` (an empty one, or one of spaces, is none …) is sent again (retried, or passed to the next
 *   endpoint of a chain: one rule for both) only when it surely was not processed: on 429 and 503"; "Nor after a
 *   redirect: … whatever the redirect's target then answers or however reaching it fails"; "With
 *   `retry.idempotencyKey: true`, POST and PATCH requests without a key get one …, the same on every retry of that
 *   call (a POST or PATCH that a chain's `transform` makes of another method gets one of its own, the same on
 *   every retry of that endpoint)".
 * - docs/retry.md "## Retry budget": "A retry is paid for when it is allowed, before its wait: one that never goes
 *   (… a hedge wins …) keeps its token spent and counts in `retriesAllowed`".
 * - docs/retry.md "## Timeouts": "a wait that would end past it is not started (the call settles as if that had
 *   been its last attempt: with its response …)".
 * - docs/retry.md "## Redirects": "at most 20 hops (then a `TypeError`)"; "Whatever ends a followed redirect (a
 *   later hop's failure, or a `TypeError` of the follower itself: … too many hops …) is a failure after the first
 *   server answered: a request that is not idempotent is not sent again, an idempotent one is retried as after any
 *   failure, and the call rejects … with a `RetryExhaustedError` whose `cause` is that failure"; "The hops are one
 *   attempt: the attempt timeout covers them all"; "307/308 replay method and body (a body sent once, … one larger
 *   than `maxReplayBytes` …, cannot be: a `TypeError`)"; "a `redirect: "error"` call that meets a redirect is
 *   refused by the platform with the `TypeError` of a network failure …, so it is retried like one".
 * - docs/retry.md "## Bodies": "a `Request` input's body is read into bytes once and replayed (… it goes with a
 *   `content-length`, where fetch would send the `Request`'s stream chunked)"; "A `ReadableStream` body, or one
 *   larger than `maxReplayBytes`, is sent once on every path"; "every body sent through ky … is measured in the
 *   bytes it sends".
 * - docs/retry.md "## ky": "The layer's errors reach you as they are: one that ky would wrap in its `NetworkError`
 *   … comes unwrapped"; docs/cloudflare.md: "`502` when no endpoint answered otherwise".
 *
 * How: `createResilience`, `getResilienceInfo`, `isRetryExhaustedError`, `isTimeoutError` (root), `fallback`
 * (./fallback, with and without `hedge`, a `transform`), `degradation` (./degradation, level "low" rewriting a JSON
 * body), `createClient` (./ky), `resilientProxy` (./cloudflare, as a plain handler), `TestClock` (./testing:
 * `run` for backoffs, manual `advance` once the server has the request for hedge and timeout timing); three
 * node:http servers on 127.0.0.1 (A, B behind A's redirects, E a chain's second endpoint) and a refused origin.
 *
 * Paths: plain call, `Request` input with a body (POST, PUT), followed redirect (302 loop, 307/308 to B or to a
 * refused origin, `redirect: "error"`), fallback chain, hedged chain, degradation rewrite, `transform`,
 * `resilientProxy`, ky client. The method × status matrix runs on plain, `Request`, ky, proxy and chain.
 *
 * Defects pinned: none. Every sentence driven held on every path tried.
 *
 * Held (plain `it`):
 * - A 302 loop: 21 requests an attempt (20 hops followed), a GET retried (2 × 21), rejecting `RetryExhaustedError`
 *   (`attempts` 2, `cause` a `TypeError`); the same through ky (unwrapped, no `NetworkError`); a keyless POST
 *   `Request` stops after one attempt; the proxy answers 502.
 * - Keyless POST after a redirect: 307 to a refused origin rejects after one request (a GET is retried, 3); in a
 *   chain E never gets it; in a hedged chain a 307 target's 503 comes back and E gets nothing; ky's POST 308 → 429:
 *   one request each, the body carried to B.
 * - A hedge that wins during A's 5 s retry wait: `retriesAllowed` 1, the earned token (ratio 1, no free retries)
 *   stays spent.
 * - `timeout.total` 1 s and a 503 `Retry-After: 2`: ky, the proxy and a `Request` PUT settle with that 503 at once.
 * - The attempt timeout covers the hops: A answering its 307 at 600 ms, B silent, the `TimeoutError` (phase
 *   `attempt`) comes at 1,000 ms, not before (plain GET, `Request` PUT whose body reached B).
 * - A keyed POST `Request`, 308, B's 503 retried: all 4 requests POST, same bytes, `content-length`, no chunking.
 * - `maxReplayBytes` 16: ky's keyed JSON POST is not retried on 503; a 307 cannot replay it (`RetryExhaustedError`,
 *   `cause` `TypeError`, B gets nothing).
 * - A degradation-rewritten keyless POST: 500 not sent again, 429 sent again with the same rewritten body; with
 *   `idempotencyKey: true`, one UUID on every retry after 500.
 * - A `transform` making E's request a POST: one UUID on both of E's attempts, none on A's GETs.
 * - `RetryExhaustedError.endpoint` is what `breaker.key` gives (ky, refused origin), `attempts` 3.
 * - Method × status matrix (plain, `Request`, ky, proxy, chain): GET and DELETE retried on the seven statuses;
 *   keyless POST, PATCH and a key of spaces only on 429/503; a keyed POST on all seven; 400/404/409/501 never.
 * - `idempotencyKey: true` with a key of spaces: a generated UUID, the same on the retry after 500, on all 5 paths.
 * - `redirect: "error"` meeting a 307: retried as a network failure (3 requests, B none), plain, `Request`, ky.
 *
 * Docs-silent (not pinned):
 * - A GET whose 307 target refuses the connection rejects with a `RetryExhaustedError` whose `endpoint` is the first
 *   host (the one whose breaker counts the attempt), not the target that failed.
 * - A lowercase `patch` never reaches a node:http server (its parser refuses the method before any handler runs),
 *   as docs/retry.md warns ("`patch` goes as `patch`, which most servers refuse"): the matrix uses `PATCH`.
 * - The budget's free pool refills during a hedge delay: with the defaults, a retry paid for and never sent may
 *   show no drop in `tokens` (10 → 10.1 after 100 ms), only in `retriesAllowed`.
 */
import type { ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isRetryExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const E = httpUpstream();
serveDuringFile(A, B, E);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const quick = { initialDelay: 10, jitter: "none" } as const;

const status =
  (code: number, headers: Record<string, string> = {}) =>
  (hit: { res: ServerResponse }) => {
    hit.res.writeHead(code, headers);
    hit.res.end("x");
  };

/** Yields real turns until `check()` holds (a server got its request). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(check()).toBe(true);
}

function chainOf(extra: Partial<ResilienceOptions> = {}, hedge?: number) {
  return createResilience({
    ...extra,
    fallback: fallback([
      {
        name: "gen",
        ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
        endpoints: [
          { name: "a", url: `${A.base}/v1` },
          { name: "e", url: `${E.base}/v1` },
        ],
      },
    ]),
  });
}

describe("a followed redirect that never ends: 20 hops, then a TypeError, an idempotent call retried", () => {
  const loop = () =>
    A.on((hit) => {
      hit.res.writeHead(302, { location: `${A.base}/v1/loop?n=${hit.n}` });
      hit.res.end();
    });
  it("plain GET: 21 requests an attempt, 2 attempts, RetryExhaustedError whose cause is the TypeError", async () => {
    loop();
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: { ...quick, maxAttempts: 2 } });
    const error = await clock.run(rejection(layer.fetch(`${A.base}/v1/x`)));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as { attempts: number }).attempts).toBe(2);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(A.hits.length).toBe(42);
  });
  it("ky GET: the layer's RetryExhaustedError reaches the caller as it is (not ky's NetworkError)", async () => {
    loop();
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: { ...quick, maxAttempts: 2 } });
    const api = createClient({ resilience: layer });
    const error = await clock.run(rejection(api.get(`${A.base}/v1/x`)));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(A.hits.length).toBe(42);
  });
  it("a keyless POST Request with a body: not sent again after the follower's TypeError (21 requests)", async () => {
    loop();
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: { ...quick, maxAttempts: 3 } });
    const request = new Request(`${A.base}/v1/x`, { method: "POST", body: "job" });
    const error = await clock.run(rejection(layer.fetch(request)));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as { attempts: number }).attempts).toBe(1);
    // 302 turns the POST into a GET: only the first request carries the body.
    expect(A.hits.length).toBe(21);
    expect(A.hits[0]?.method).toBe("POST");
    expect(A.hits[1]?.method).toBe("GET");
  });
  it("resilientProxy GET: the exhausted call is a 502, after 2 × 21 requests", async () => {
    loop();
    const clock = new TestClock(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, budget: false, retry: { ...quick, maxAttempts: 2 } },
    });
    const response = await clock.run(proxy.fetch(new Request("http://worker.example/v1/x"), {}, ctx));
    await response.text();
    expect([response.status, A.hits.length]).toEqual([502, 42]);
  });
});

describe("Nor after a redirect: whatever the target answers or however reaching it fails", () => {
  it("a keyless POST Request, 307 to a refused origin: one request, RetryExhaustedError, cause a TypeError", async () => {
    const dead = await refusedOrigin();
    A.on(status(307, { location: `${dead}/v1/x` }));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: quick });
    const request = new Request(`${A.base}/v1/x`, { method: "POST", body: '{"prompt":"p"}' });
    const error = await clock.run(rejection(layer.fetch(request)));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(A.hits.length).toBe(1);
  });
  it("the same GET is retried as after any failure (3 requests, attempts 3)", async () => {
    const dead = await refusedOrigin();
    A.on(status(307, { location: `${dead}/v1/x` }));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: quick });
    const error = await clock.run(rejection(layer.fetch(`${A.base}/v1/x`)));
    expect((error as { attempts: number }).attempts).toBe(3);
    expect(A.hits.length).toBe(3);
  });
  it("in a chain: the keyless POST is not passed to the next endpoint after the 307's target was refused", async () => {
    const dead = await refusedOrigin();
    A.on(status(307, { location: `${dead}/v1/x` }));
    const clock = new TestClock(0);
    const layer = chainOf({ clock, budget: false, retry: quick });
    const settled = await clock.run(
      layer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }).then(
        (r) => r.status,
        (e: unknown) => e,
      ),
    );
    expect(typeof settled).not.toBe("number");
    expect([A.hits.length, E.hits.length]).toEqual([1, 0]);
  });
  it("in a hedged chain: the keyless POST whose 307 target answers 503 goes nowhere else", async () => {
    A.on(status(307, { location: `${B.base}/v1/x` }));
    B.on(status(503));
    const clock = new TestClock(0);
    const layer = chainOf({ clock, budget: false, retry: quick }, 50);
    const response = await clock.run(layer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }));
    await response.text();
    expect([response.status, A.hits.length, B.hits.length, E.hits.length]).toEqual([503, 1, 1, 0]);
  });
  it("ky POST (a Request with a body), 308 to a target that answers 429: not sent again", async () => {
    A.on(status(308, { location: `${B.base}/v1/x` }));
    B.on(status(429));
    const clock = new TestClock(0);
    const api = createClient({ resilience: createResilience({ clock, budget: false, retry: quick }) });
    const response = await clock.run(
      api.post(`${A.base}/v1/x`, { json: { prompt: "p" }, throwHttpErrors: false }).then((r) => r as Response),
    );
    await response.text();
    expect([response.status, A.hits.length, B.hits.length]).toEqual([429, 1, 1]);
    expect(B.hits[0]?.body).toBe('{"prompt":"p"}');
  });
});

describe("a retry paid for and never sent: a hedge won during its wait", () => {
  it("the token stays spent and the retry counts in retriesAllowed", async () => {
    A.on(status(503));
    E.on(status(200));
    const clock = new TestClock(0);
    const layer = chainOf(
      { clock, budget: { ratio: 1, minPerSecond: 0 }, retry: { initialDelay: 5_000, jitter: "none" } },
      100,
    );
    const call = layer.fetch(`${A.base}/v1/x`);
    await A.nth(1);
    await clock.waitForTimers(2);
    await clock.advance(100);
    await E.nth(1);
    const response = await call;
    await response.text();
    expect([response.status, A.hits.length, E.hits.length]).toEqual([200, 1, 1]);
    const budget = layer.health().budget;
    expect(budget).toMatchObject({ retriesAllowed: 1, retriesDenied: 0 });
    // Earned 1 for the call (ratio 1, no free retries), spent on the retry that never went.
    expect(budget?.tokens).toBeCloseTo(0, 9);
  });
});

describe("timeout.total: a wait that would end past it is not started", () => {
  const paths = ["ky", "proxy", "request"] as const;
  for (const path of paths) {
    it(`${path}: a 503 with Retry-After 2 under total 1 s settles with that 503 at once`, async () => {
      A.on(status(503, { "retry-after": "2" }));
      const clock = new TestClock(0);
      const options = { clock, budget: false as const, timeout: { total: 1_000 } };
      let response: Response;
      if (path === "proxy") {
        const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: options });
        response = await clock.run(proxy.fetch(new Request("http://worker.example/v1/x"), {}, ctx));
      } else if (path === "ky") {
        const api = createClient({ resilience: createResilience(options) });
        response = (await clock.run(api.get(`${A.base}/v1/x`, { throwHttpErrors: false }))) as Response;
      } else {
        const layer = createResilience(options);
        response = await clock.run(layer.fetch(new Request(`${A.base}/v1/x`, { method: "PUT", body: "payload" })));
      }
      await response.text();
      expect([response.status, A.hits.length, clock.now()]).toEqual([503, 1, 0]);
    });
  }
});

describe("the hops are one attempt: the attempt timeout covers them all", () => {
  for (const path of ["plain", "request"] as const) {
    it(`${path}: 600 ms at the first host, the hop's host silent: the timeout ends at 1,000 ms, not later`, async () => {
      let held: ServerResponse | undefined;
      A.on((hit) => {
        held = hit.res;
      });
      B.on(() => {});
      const clock = new TestClock(0);
      const layer = createResilience({
        clock,
        budget: false,
        retry: { maxAttempts: 1 },
        timeout: { attempt: 1_000 },
      });
      let settled: unknown;
      const call =
        path === "plain"
          ? layer.fetch(`${A.base}/v1/x`)
          : layer.fetch(new Request(`${A.base}/v1/x`, { method: "PUT", body: "payload" }));
      call.then(
        () => {
          settled = "resolved";
        },
        (e: unknown) => {
          settled = e;
        },
      );
      await A.nth(1);
      await clock.advance(600);
      held?.writeHead(307, { location: `${B.base}/v1/x` });
      held?.end();
      await B.nth(1);
      await clock.advance(399);
      expect(settled).toBeUndefined();
      await clock.advance(1);
      await until(() => settled !== undefined);
      expect(isTimeoutError(settled)).toBe(true);
      expect((settled as { phase: string }).phase).toBe("attempt");
      if (path === "request") expect(B.hits[0]?.body).toBe("payload");
    });
  }
});

describe("a Request's body read into bytes, replayed on a 308's retries", () => {
  it("a keyed POST Request, 308 to B, B's 503 retried: same bytes with a content-length every time", async () => {
    A.on(status(308, { location: `${B.base}/v1/x` }));
    B.on((hit) => status(hit.n === 1 ? 503 : 200)(hit));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, budget: false, retry: quick });
    const body = JSON.stringify({ prompt: "a cat", steps: 30 });
    const request = new Request(`${A.base}/v1/x`, {
      method: "POST",
      body,
      headers: { "idempotency-key": "k-308", "content-type": "application/json" },
    });
    const response = await clock.run(layer.fetch(request));
    await response.text();
    expect(response.status).toBe(200);
    const all = [...A.hits, ...B.hits];
    expect(all.length).toBe(4);
    for (const hit of all) {
      expect([hit.method, hit.body, hit.headers["content-length"], hit.headers["transfer-encoding"]]).toEqual([
        "POST",
        body,
        String(Buffer.byteLength(body)),
        undefined,
      ]);
      expect(hit.headers["idempotency-key"]).toBe("k-308");
    }
    expect(getResilienceInfo(response)?.attempts).toBe(2);
  });
});

describe("a body past maxReplayBytes is sent once on every path", () => {
  it("ky POST (its Request measured in bytes): a 503 is not retried", async () => {
    A.on(status(503));
    const clock = new TestClock(0);
    const api = createClient({
      resilience: createResilience({ clock, budget: false, maxReplayBytes: 16, retry: quick }),
    });
    const response = (await clock.run(
      api.post(`${A.base}/v1/x`, {
        json: { prompt: "a long prompt past the limit" },
        headers: { "idempotency-key": "k" },
        throwHttpErrors: false,
      }),
    )) as Response;
    await response.text();
    expect([response.status, A.hits.length]).toEqual([503, 1]);
  });
  it("ky POST: a 307 cannot replay it: RetryExhaustedError with the TypeError, B gets nothing", async () => {
    A.on(status(307, { location: `${B.base}/v1/x` }));
    const clock = new TestClock(0);
    const api = createClient({
      resilience: createResilience({ clock, budget: false, maxReplayBytes: 16, retry: quick }),
    });
    const error = await clock.run(
      rejection(api.post(`${A.base}/v1/x`, { json: { prompt: "a long prompt past the limit" } })),
    );
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect([A.hits.length, B.hits.length]).toEqual([1, 0]);
  });
});

describe("idempotency on the degradation rewrite", () => {
  const rewriting = (clock: TestClock, extra: Partial<ResilienceOptions> = {}) => {
    const layer = createResilience({
      clock,
      budget: false,
      retry: quick,
      ...extra,
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }),
    });
    layer.degradation.setLevel("low");
    return layer;
  };
  const init = {
    method: "POST",
    body: JSON.stringify({ prompt: "p", steps: 50 }),
    headers: { "content-type": "application/json" },
  };
  it("a rewritten keyless POST: 500 not sent again, 429 sent again with the same rewritten body", async () => {
    const clock = new TestClock(0);
    A.on(status(500));
    const five = await clock.run(rewriting(clock).fetch(`${A.base}/v1/x`, init));
    await five.text();
    expect([five.status, A.hits.length]).toEqual([500, 1]);
    A.reset();
    A.on((hit) => status(hit.n < 3 ? 429 : 200)(hit));
    const ok = await clock.run(rewriting(clock).fetch(`${A.base}/v1/x`, init));
    await ok.text();
    expect([ok.status, A.hits.length]).toEqual([200, 3]);
    expect(new Set(A.hits.map((h) => h.body)).size).toBe(1);
    expect(A.hits[0]?.body).not.toBe(init.body);
  });
  it("idempotencyKey: true: the rewritten POST keeps one generated key on every retry", async () => {
    const clock = new TestClock(0);
    A.on((hit) => status(hit.n < 3 ? 500 : 200)(hit));
    const ok = await clock.run(
      rewriting(clock, { retry: { ...quick, idempotencyKey: true } }).fetch(`${A.base}/v1/x`, init),
    );
    await ok.text();
    expect([ok.status, A.hits.length]).toEqual([200, 3]);
    const keys = new Set(A.hits.map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(UUID_V4);
  });
});

describe("a POST a chain's transform makes of a GET gets a key of its own", () => {
  it("the same on every retry of that endpoint; the GET before it carries none", async () => {
    A.on(status(500));
    E.on((hit) => status(hit.n === 1 ? 503 : 200)(hit));
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      budget: false,
      retry: { ...quick, maxAttempts: 2, idempotencyKey: true },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "e", url: `${E.base}/v1`, transform: (req) => ({ ...req, method: "POST", body: "made" }) },
          ],
        },
      ]),
    });
    const response = await clock.run(layer.fetch(`${A.base}/v1/x`));
    await response.text();
    expect([response.status, A.hits.length, E.hits.length]).toEqual([200, 2, 2]);
    expect(A.hits.map((h) => h.headers["idempotency-key"])).toEqual([undefined, undefined]);
    const keys = E.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys[0]).toMatch(UUID_V4);
    expect(keys[1]).toBe(keys[0]);
    expect(E.hits.map((h) => [h.method, h.body])).toEqual([
      ["POST", "made"],
      ["POST", "made"],
    ]);
  });
});

describe("RetryExhaustedError's endpoint is the breaker's key", () => {
  it("ky, a refused origin: what breaker.key gives for the URL, attempts 3", async () => {
    const dead = await refusedOrigin();
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      budget: false,
      retry: quick,
      breaker: { key: (url: URL) => `gen:${url.pathname.split("/")[1]}` },
    });
    const api = createClient({ resilience: layer });
    const error = await clock.run(rejection(api.get(`${dead}/v9/x`)));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as { endpoint: string; attempts: number }).endpoint).toBe("gen:v9");
    expect((error as { attempts: number }).attempts).toBe(3);
  });
});

type Path = "plain" | "request" | "ky" | "proxy" | "chain";
const MATRIX_PATHS: Path[] = ["plain", "request", "ky", "proxy", "chain"];

/** Sends one call down `path` with `method` and `headers` (and a body unless GET); A answers `code` always. */
async function requestsFor(
  path: Path,
  method: string,
  headers: Record<string, string>,
  code: number,
  retry: Record<string, unknown> = {},
): Promise<{ count: number; keys: Array<string | undefined> }> {
  A.reset();
  E.reset();
  A.on(status(code));
  const clock = new TestClock(0);
  const options = { clock, budget: false as const, retry: { ...quick, maxAttempts: 2, ...retry } };
  const url = `${A.base}/v1/x`;
  const bodyless = method.toUpperCase() === "GET" || method.toUpperCase() === "DELETE";
  const init: { method: string; headers: Record<string, string>; body?: string } = bodyless
    ? { method, headers }
    : { method, headers, body: "job" };
  let response: Response | undefined;
  if (path === "proxy") {
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: options });
    response = await clock.run(proxy.fetch(new Request("http://worker.example/v1/x", init), {}, ctx));
  } else if (path === "ky") {
    const api = createClient({ resilience: createResilience(options) });
    response = (await clock.run(api(url, { ...init, throwHttpErrors: false }).then((r) => r as Response))) as Response;
  } else if (path === "chain") {
    const layer = chainOf(options);
    await clock.run(
      layer.fetch(url, init).then(
        (r) => r.text(),
        () => undefined,
      ),
    );
  } else {
    const layer = createResilience(options);
    response = await clock.run(path === "request" ? layer.fetch(new Request(url, init)) : layer.fetch(url, init));
  }
  await response?.text();
  return { count: A.hits.length, keys: A.hits.map((h) => h.headers["idempotency-key"] as string | undefined) };
}

describe("which methods and statuses are retried, on every path", () => {
  for (const path of MATRIX_PATHS) {
    it(`${path}: GET and delete retried on the seven statuses only; a keyless POST or PATCH on 429 and 503 only`, async () => {
      const seen: string[] = [];
      const expectCount = async (method: string, headers: Record<string, string>, code: number, want: number) => {
        const { count } = await requestsFor(path, method, headers, code);
        if (count !== want) seen.push(`${method} ${JSON.stringify(headers)} ${code}: ${count} requests, want ${want}`);
      };
      for (const code of [408, 425, 429, 500, 502, 503, 504]) {
        await expectCount("GET", {}, code, 2);
        await expectCount("delete", {}, code, 2);
        await expectCount("POST", {}, code, code === 429 || code === 503 ? 2 : 1);
        await expectCount("PATCH", {}, code, code === 429 || code === 503 ? 2 : 1);
        await expectCount("POST", { "idempotency-key": "   " }, code, code === 429 || code === 503 ? 2 : 1);
        await expectCount("POST", { "idempotency-key": "k" }, code, 2);
      }
      for (const code of [400, 404, 409, 501]) await expectCount("GET", {}, code, 1);
      expect(seen).toEqual([]);
    });
  }
});

describe("idempotencyKey: true and a key of spaces, which is none", () => {
  for (const path of MATRIX_PATHS) {
    it(`${path}: the POST gets a generated key, the same on the retry after a 500`, async () => {
      const { count, keys } = await requestsFor(path, "POST", { "idempotency-key": "  " }, 500, {
        idempotencyKey: true,
      });
      expect(count).toBe(2);
      expect(keys[0]).toMatch(UUID_V4);
      expect(keys[1]).toBe(keys[0]);
    });
  }
});

describe('redirect: "error" meeting a redirect: retried as a network failure', () => {
  for (const path of ["plain", "request", "ky"] as const) {
    it(`${path}: 3 requests, RetryExhaustedError`, async () => {
      A.on(status(307, { location: `${B.base}/v1/x` }));
      const clock = new TestClock(0);
      const layer = createResilience({ clock, budget: false, retry: quick });
      const url = `${A.base}/v1/x`;
      const call =
        path === "plain"
          ? layer.fetch(url, { redirect: "error" })
          : path === "request"
            ? layer.fetch(new Request(url, { redirect: "error" }))
            : createClient({ resilience: layer }).get(url, { redirect: "error" });
      const error = await clock.run(rejection(call));
      expect(isRetryExhaustedError(error)).toBe(true);
      expect([A.hits.length, B.hits.length]).toEqual([3, 0]);
    });
  }
});
