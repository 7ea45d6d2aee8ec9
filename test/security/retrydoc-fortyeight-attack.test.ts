/**
 * Outside-in attack on docs/retry.md, section by section, and on the JSDoc of the retry options of the root entry
 * (`RetryOptions`, `RetryOn`, `BudgetOptions`, `TimeoutOptions`, `RetryEvent`, `CircuitOpenError.afterRedirect`) and of
 * `retry(fn)` (./policies): backoff numbers, `Retry-After`, idempotency keys, the retry budget, the error table and
 * the `retry` event, on every path that retries, and where a layer meets another (stacked, installed, two copies).
 *
 * Docs:
 * - docs/retry.md "## Retry": "The delay before retry _n_ is `min(maxDelay, initialDelay × exponentialBase^(n−1))`,
 *   then jittered (`full` by default; `equal`, `decorrelated`, `none`, per Marc Brooker's …)"; "`maxAttempts` counts
 *   all attempts, the first included"; "A `Retry-After` header on 429/503, in one of the forms RFC 9110 allows …,
 *   replaces the computed delay and is never jittered"; "A `Retry-After` longer than `maxRetryAfter` is not slept
 *   through: the call resolves with that response at once … and the host is held open until then"; "Retry events
 *   name a failure the way people do …: `connection refused`, `connection reset`, `DNS lookup failed`, `TLS
 *   failure`, `connect timeout`, `attempt timeout`; a browser's "Failed to fetch" says nothing more, so it stays
 *   `network error`". JSDoc of `RetryEvent.reason`: "`"status 503"`, or the failure as people name it: `"attempt
 *   timeout"`, `"connection refused"`, `"connection reset"`, `"DNS lookup failed"`, `"TLS failure"`, `"connect
 *   timeout"`, else `"network error"` (docs/retry.md)".
 * - docs/retry.md "## Idempotency": "A layer used as another's `fetch` … so is an answer it resolved with: a `429` or
 *   `503` is taken as declined only when it was the inner call's only request (…; and so on down every layer)";
 *   "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one (`crypto.randomUUID()`), the
 *   same on every retry of that call". JSDoc of `RetryOptions.idempotencyKey`: "one key per logical call, reused on
 *   every retry and fallback".
 * - docs/retry.md "## Bodies": "when the layer itself refuses the retry (the host's breaker opened during the wait,
 *   its bulkhead is full), the call settles with that response … one too large or too slow to keep is not: the call
 *   then rejects with the refusal, which a layer or chain in front does not take for "nothing sent": the host had
 *   the request, so a POST without a key goes no further, and the Worker proxy answers it with `502`"; the error
 *   table: `CircuitOpenError` "… a retry refused after an answer too large to keep … also follows a request". JSDoc
 *   of `CircuitOpenError.afterRedirect`: "Absent when nothing of the call was sent"; src/core/errors.ts: "Each
 *   `isX()` guard checks the stable `name` too, so it works across realms and duplicated copies of the package";
 *   `failureResponse` JSDoc: "anything else: `502`, … and a retry refused after an answer too large to keep".
 * - docs/retry.md "## Retry budget": "each call earns `ratio` tokens (0.1), each retry spends one, and
 *   `minPerSecond` (10) free retries a second refill on top"; "An empty bucket means no retry, never a wait".
 * - docs/retry.md "## Redirects": "307/308 replay method and body", "303 turns anything but GET/HEAD into a GET
 *   (body and its headers dropped)".
 * - docs/retry.md "## Generic work": "`execute`'s waits fire the layer's `retry` events …; `retry(fn)` has `onRetry`
 *   instead".
 * - docs/options.md, `fetch` row: "a layer found there, installed with `globalThis.fetch = resilience.fetch` as a
 *   drop-in, is passed for the fetch that was global when that layer was made, so a layer never calls itself, nor
 *   another through the global fetch: stack layers by passing `fetch: other.fetch`"; README.md: "It then sends
 *   through the fetch that was global when it was made, never through itself"; docs/retry.md "## Why retry
 *   carefully": "three attempts per call is three times the load on a server that is already down".
 * - SECURITY.md: "A paid request is never processed twice | without an `Idempotency-Key` …, a POST or PATCH is sent
 *   again … only when it surely was not processed …; never after a 500".
 *
 * How: `createResilience`, `getResilienceInfo`, the error guards (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy`, `failureResponse` (./cloudflare, as a plain handler),
 * `retry` (./policies), `TestClock`, `seededRandom` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) stamping each request with the test clock's time; a transport of the caller's
 * own rejecting as Node's fetch (undici) does when headers time out (first observed through undici's own `fetch`
 * and an `Agent` with a 50 ms `headersTimeout`; undici is no dependency of the project); a second copy of the package
 * (`vi.resetModules()` then `import("../../src/index.ts")`), as an app and an SDK that each bundle a version.
 *
 * Paths: plain call, `Request` input (JSON, FormData), followed redirect (307 with body, 303), fallback chain,
 * degradation rewrite, stacked layers (one copy and two), a layer installed as the global fetch, ky client,
 * `resilientProxy`, `execute`, `retry(fn)`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. JSDoc of `RetryEvent.reason` (a closed list, "else `"network error"`") and docs/retry.md's list of names.
 *    Observed: a real server that sends no headers, reached through undici with a `headersTimeout`, gives `retry`
 *    events whose `reason` is `"response timeout"`; an inner layer's `timeout.total` under an outer layer gives the
 *    outer's `retry` event `"total timeout"`. Neither is named anywhere in the docs or the JSDoc. Source:
 *    src/http/send/failure-reason.ts (`CODES` maps `UND_ERR_HEADERS_TIMEOUT`/`UND_ERR_BODY_TIMEOUT` to "response
 *    timeout"; `reasonOf` names any `TimeoutError` `${phase} timeout`). Fix: list both in the JSDoc and
 *    docs/retry.md (or map them to documented names).
 * 2. docs/retry.md "## Bodies" ("a layer or chain in front does not take [the refusal] for "nothing sent"") with
 *    errors.ts ("works across … duplicated copies of the package") and `afterRedirect`'s JSDoc ("Absent when
 *    nothing of the call was sent"). Observed: an inner layer of another copy (an SDK's own version) with
 *    `idempotencyKey: true` sends a keyless POST, A answers 500 with a 70 kB body (it may have run the job), the
 *    retry's wait is ended by A's breaker opening, and the call rejects with a `CircuitOpenError` whose
 *    `afterRedirect` is absent; an outer chain `[x → A, y → E]` of this copy takes it for "nothing sent" and moves
 *    the job on: E runs it too. `failureResponse` answers that error `503` with `Retry-After` (a client may send it
 *    again) instead of `502`. With one copy both hold (the mark is a module-local WeakSet). Source:
 *    src/http/send/follow-redirects.ts `afterAnswer` adds the error to `failedAfterRedirect` only, never sets a
 *    public field (`afterRedirect` does, since the fix for refused hops, 0db819a); src/http/send/failure-reason.ts
 *    `reasonOf` and src/cloudflare/failure-response.ts `declined` then read the other copy's refusal as "not sent".
 *    Fix: mark it with a field another copy reads (set `afterRedirect`, or a field of its own, on both refusals).
 * 3. docs/options.md "a layer found there, installed with `globalThis.fetch = resilience.fetch` …, so a layer never
 *    calls itself, nor another through the global fetch". Observed: an app installs its layer (one copy), an SDK
 *    makes its own layer with the default transport (another copy of the package, its own version): the SDK's
 *    calls go through the app's whole layer, and a steady 503 reaches the server 9 times (3 × 3) where one layer
 *    sends 3: the retries multiply (the load docs/retry.md warns of), and the app's layer counts the SDK's calls.
 *    With one copy, 3. Source: src/http/global-fetch.ts `pastLayers`/`beneathOf`, a module-local `WeakMap`: another
 *    copy's installed layer is not known as a layer. Fix: record the fetch beneath on the installed function under
 *    a `Symbol.for(…)` key every copy reads.
 * 4. docs/retry.md "## Idempotency" ("a `429` or `503` is taken as declined only when it was the inner call's only
 *    request … and so on down every layer"), SECURITY.md ("never after a 500"). Observed: an inner layer of another
 *    copy with `idempotencyKey: true` sends a keyless POST under key K1, A answers 500 (it may have run the job),
 *    the retry under K1 gets 503 and the inner layer resolves with that 503; the outer layer of this copy takes it
 *    as declined and sends the POST again, under the inner layer's new key K2, and A answers 500 again: two keys,
 *    two possible runs of one paid job. With one copy the outer stops after the inner's answer. Source:
 *    src/http/send/resilience-info.ts `afterOthers` (a module-local `WeakSet`) and `INFO` (`Symbol(…)`, not
 *    `Symbol.for`): another copy's answer carries no mark and no `getResilienceInfo`. Fix: a `Symbol.for` key for
 *    the info (its `attempts`) and for the mark.
 *
 * Held (plain `it`):
 * - Backoff with `seededRandom(11)`, `initialDelay` 100, base 3, `maxDelay` 500, 4 attempts: the waits between the
 *   requests a server saw (on the TestClock) and the `retry` events' `delay` are the documented formula's, drawn
 *   from the same seed, for `none`, `full`, `equal` and `decorrelated`, on the plain, `Request` (PUT, JSON), 307
 *   redirect (PUT with body, the 503 at the target), chain, degradation rewrite (keyed POST, rewritten body the same
 *   on every attempt), stacked, ky and `resilientProxy` paths, and `execute` / `retry(fn)` (`onRetry`) alike.
 * - `Retry-After: 2` on 503 and 429 waits exactly 2,000 ms (`retryAfter: true`), unjittered under `full`; on a 500
 *   the computed delay; `Retry-After: 120` (past `maxRetryAfter` 60 s): one request and the 503 at once on every
 *   path (a chain moves the GET on to its next endpoint at once), and the next call refused with `CircuitOpenError`
 *   (`retryAt` 120 s on) on the plain, `Request`, redirect (the target is held), degradation and ky paths.
 * - `idempotencyKey: true` on a `Request` built from `FormData` (keyless POST), answered 307 to another origin
 *   whose 503 is retried: all four requests carry one UUID v4 key, the same multipart bytes and `content-type`; a
 *   keyed JSON POST answered 303 goes on as a GET without body or `content-type`; a keyless POST with the option off
 *   is not retried after a 500 (one request).
 * - Budget `{ ratio: 0.5, minPerSecond: 1 }`: 4 healthy calls, then a dead host with 6 attempts allowed gets 4
 *   requests (2.5 earned tokens and 1 free: 3 retries, the 4th denied at once, no wait), `health().budget` as the
 *   docs count it, and the free token refills at 1 a second, never above 1.
 * - Controls for defects 2–4 with one copy: the outer chain stops after x (E gets nothing), `failureResponse` says
 *   502; a second layer made after an install sends 3 requests; the stacked keyless POST stops after the inner's 503.
 *
 * Docs-silent (not pinned):
 * - The `RetryOn.methods` JSDoc says other methods "are retried only on 429 and 503 … unless the request carries an
 *   `Idempotency-Key`", while docs/retry.md (and the code) also retry them after a refused connection, DNS or TLS
 *   failure, connect timeout, or a breaker/bulkhead refusal: the JSDoc is narrower than the behaviour.
 * - A stacked outer layer retries an inner layer's `TimeoutError` (attempt or total: it is `isTimeoutError`) but not
 *   its `RetryExhaustedError` (no `TypeError`): an inner timeout is multiplied by the outer's attempts, an inner
 *   network failure is not.
 * - "However long the outage, the free retries add at most `minPerSecond` a second": the bucket starts full
 *   (`minPerSecond` tokens) and refills on top, so the first second of an outage can see up to twice that.
 * - `retry(fn)` retries an `AbortError` its own work throws for a signal other than `options.signal` (docs/retry.md
 *   says "every thrown error except an abort"; the `RetryCallOptions.retryOn` JSDoc says "except the caller's abort").
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  type Jitter,
  type Random,
  type Resilience,
  type RetryEvent,
  type RetryOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const E = httpUpstream();
serveDuringFile(A, B, E);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const BIG = "x".repeat(70_000);
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Every reason a `retry` event may give, as `RetryEvent.reason`'s JSDoc and docs/retry.md name them. */
const NAMED_REASONS = [
  "attempt timeout",
  "connection refused",
  "connection reset",
  "DNS lookup failed",
  "TLS failure",
  "connect timeout",
  // Named since the retrydoc run (defect 1), in both texts.
  "response timeout",
  "total timeout",
  "network error",
];

/** Answers with `status` (and headers, body), stamping the hit's time on `clock` in `times`. */
function answering(
  clock: TestClock,
  times: number[],
  answer: (hit: Hit) => { status: number; headers?: Record<string, string>; body?: string },
) {
  return (hit: Hit) => {
    times.push(clock.now());
    const { status, headers = {}, body = "x" } = answer(hit);
    hit.res.writeHead(status, headers);
    hit.res.end(body);
  };
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - (times[i] as number));

/** The documented delays before retries 1..n, drawn from `random` as the formula says. */
function documentedDelays(
  jitter: Jitter,
  random: Random,
  n: number,
  o: { initialDelay: number; exponentialBase: number; maxDelay: number },
): number[] {
  const out: number[] = [];
  let previous: number | undefined;
  for (let k = 1; k <= n; k++) {
    const capped = Math.min(o.maxDelay, o.initialDelay * o.exponentialBase ** (k - 1));
    let delay: number;
    if (jitter === "none") delay = capped;
    else if (jitter === "full") delay = random() * capped;
    else if (jitter === "equal") delay = capped / 2 + random() * (capped / 2);
    else {
      // Brooker's decorrelated jitter: min(cap, random(base, previous * 3)).
      const high = Math.max(o.initialDelay, (previous ?? o.initialDelay) * 3);
      delay = Math.min(o.maxDelay, o.initialDelay + random() * (high - o.initialDelay));
    }
    previous = delay;
    out.push(delay);
  }
  return out;
}

type PathName = "plain" | "request" | "redirect" | "chain" | "degraded" | "stacked" | "ky" | "proxy";
const PATHS: PathName[] = ["plain", "request", "redirect", "chain", "degraded", "stacked", "ky", "proxy"];

interface Driven {
  /** When the answering server saw each request of the retried endpoint. */
  times: number[];
  events: RetryEvent[];
  status: number;
  bodies: string[];
  layer: Resilience | undefined;
}

/**
 * Drives one call down `path`, the answering server (A; B behind A's 307 on the redirect path) answering by
 * `answer`; a chain's second endpoint (E) answers 200. Methods: GET, but PUT with a body on the `Request` and
 * redirect paths, a keyed POST on the degraded path.
 */
async function drive(
  path: PathName,
  answer: (hit: Hit) => { status: number; headers?: Record<string, string>; body?: string },
  retryOptions: RetryOptions,
  random: Random = seededRandom(1),
  clock = new TestClock(0),
): Promise<Driven> {
  const times: number[] = [];
  const events: RetryEvent[] = [];
  const answerer = path === "redirect" ? B : A;
  answerer.on(answering(clock, times, answer));
  if (path === "redirect") A.on(answering(clock, [], () => ({ status: 307, headers: { location: `${B.base}/x` } })));
  E.on(answering(clock, [], () => ({ status: 200, body: "spare" })));
  const base = { clock, random, budget: false as const, retry: retryOptions };
  let layer: Resilience | undefined;
  let response: Response;
  if (path === "proxy") {
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: base });
    response = await clock.run(proxy.fetch(new Request("http://worker.example/v1/x"), {}, ctx));
  } else {
    if (path === "stacked") {
      const inner = createResilience({ clock, retry: false, budget: false });
      layer = createResilience({ ...base, fetch: inner.fetch });
    } else if (path === "chain") {
      layer = createResilience({
        ...base,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "a", url: `${A.base}/v1` },
              { name: "e", url: `${E.base}/v1` },
            ],
          },
        ]),
      });
    } else if (path === "degraded") {
      const degraded = createResilience({
        ...base,
        degradation: degradation({
          levelHeader: "x-level",
          rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }],
        }),
      });
      degraded.degradation.setLevel("low");
      layer = degraded;
    } else layer = createResilience(base);
    const own = layer;
    own.on("retry", (event) => events.push(event));
    const url = `${A.base}/v1/x`;
    const call =
      path === "request"
        ? own.fetch(
            new Request(url, {
              method: "PUT",
              body: JSON.stringify({ prompt: "p" }),
              headers: { "content-type": "application/json" },
            }),
          )
        : path === "redirect"
          ? own.fetch(url, { method: "PUT", body: "put-body" })
          : path === "degraded"
            ? own.fetch(url, {
                method: "POST",
                body: JSON.stringify({ prompt: "p", steps: 50 }),
                headers: { "content-type": "application/json", "idempotency-key": "k-1" },
              })
            : path === "ky"
              ? createClient({ resilience: own })
                  .get(url, { throwHttpErrors: false })
                  .then((r) => r as Response)
              : own.fetch(url);
    response = await clock.run(call);
  }
  await response.text();
  return { times, events, status: response.status, bodies: answerer.hits.map((h) => h.body), layer };
}

describe("defect 1: a `retry` event's reason outside the documented names", () => {
  it("a transport whose headers timed out (undici's code): the reason is a documented name", async () => {
    // What Node's fetch (undici) rejects with when a server sends no headers within its `headersTimeout`
    // (300 s by default): a TypeError "fetch failed" whose cause carries UND_ERR_HEADERS_TIMEOUT. First
    // observed through undici's own fetch and an Agent with a 50 ms `headersTimeout` against a real server.
    const headersTimeout = () =>
      Promise.reject(
        new TypeError("fetch failed", {
          cause: Object.assign(new Error("Headers Timeout Error"), { code: "UND_ERR_HEADERS_TIMEOUT" }),
        }),
      );
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      fetch: headersTimeout,
      breaker: false,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
    });
    const reasons: string[] = [];
    layer.on("retry", (event) => reasons.push(event.reason));
    await clock.run(rejection(layer.fetch(`${A.base}/slow`)));
    expect(reasons).toHaveLength(1);
    // Observed: "response timeout".
    expect(NAMED_REASONS).toContain(reasons[0]);
  });

  it("an inner layer's timeout.total under an outer layer: the outer's reason is a documented name", async () => {
    A.on(() => {});
    const clock = new TestClock(0);
    const inner = createResilience({ clock, breaker: false, budget: false, timeout: { total: 100 }, retry: false });
    const outer = createResilience({
      clock,
      fetch: inner.fetch,
      breaker: false,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
    });
    const reasons: string[] = [];
    outer.on("retry", (event) => reasons.push(event.reason));
    const call = rejection(outer.fetch(`${A.base}/slow`));
    await A.nth(1);
    await clock.advance(100);
    await clock.advance(10);
    await A.nth(2);
    await clock.advance(100);
    expect(await call).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(reasons).toHaveLength(1);
    // Observed: "total timeout".
    expect(NAMED_REASONS).toContain(reasons[0]);
  });
});

describe("two copies of the package (an app's and an SDK's versions)", () => {
  let other: typeof import("../../src/index.ts");
  beforeAll(async () => {
    vi.resetModules();
    other = await import("../../src/index.ts");
  });

  /**
   * A keyless POST through an outer chain `[x → A, y → E]` over an inner layer (`make`: this copy's or the other's)
   * with `idempotencyKey: true`: A answers the job 500 with a 70 kB body (too large to keep), and the retry's wait is
   * ended by A's breaker opening (another call's 500, `failureThreshold: 2`).
   */
  async function refusedAfterUnkeepable(make: typeof createResilience) {
    const clock = new TestClock(0);
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end(hit.path.includes("jobs") ? BIG : "x");
    });
    E.on((hit) => hit.res.end("spare ran the job"));
    const inner = make({
      clock,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none", idempotencyKey: true },
      breaker: { failureThreshold: 2, timeout: 60_000 },
    });
    const waiting = new Promise<void>((resolve) => inner.on("retry", () => resolve()));
    const outer = createResilience({
      clock,
      budget: false,
      retry: false,
      fetch: inner.fetch,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "x", url: `${A.base}/v1` },
            { name: "y", url: `${E.base}/v1` },
          ],
        },
      ]),
    });
    const call = outer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }).then(
      (response) => ({ status: response.status }),
      (error: unknown) => error,
    );
    await waiting;
    await (await inner.fetch(`${A.base}/trip`)).text();
    const outcome = await call;
    // And the refusal as a plain call of the inner layer meets it, for `failureResponse`.
    A.reset();
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end(hit.path.includes("jobs") ? BIG : "x");
    });
    const direct = make({
      clock,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none", idempotencyKey: true },
      breaker: { failureThreshold: 2, timeout: 60_000 },
    });
    const directWaiting = new Promise<void>((resolve) => direct.on("retry", () => resolve()));
    const refused = rejection(direct.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    await directWaiting;
    await (await direct.fetch(`${A.base}/trip`)).text();
    const error = await refused;
    expect(isCircuitOpenError(error)).toBe(true);
    return { outcome, spare: E.hits.length, error, now: clock.now() };
  }

  it("control, one copy: the outer chain stops after x (E never gets the job); failureResponse says 502", async () => {
    const { outcome, spare, error, now } = await refusedAfterUnkeepable(createResilience);
    expect(spare).toBe(0);
    expect(outcome).toMatchObject({ name: "FallbackExhaustedError" });
    expect(failureResponse(error, now).status).toBe(502);
  });

  it("defect 2: the other copy's refusal after an unkeepable 500: the outer chain does not move the job on", async () => {
    const { spare } = await refusedAfterUnkeepable(other.createResilience);
    // Observed: E ran the job too (the outer call resolves 200 from y).
    expect(spare).toBe(0);
  });

  it("defect 2: failureResponse on the other copy's refusal after an unkeepable 500 answers 502", async () => {
    const { error, now } = await refusedAfterUnkeepable(other.createResilience);
    // Observed: 503 with Retry-After (the error's `afterRedirect` is absent, though A had the request).
    expect(failureResponse(error, now).status).toBe(502);
  });

  /** A layer installed as the global fetch (this copy), then a second layer (`make`) with the default transport. */
  async function installedThenAnother(make: typeof createResilience) {
    const clock = new TestClock(0);
    A.on((hit) => {
      hit.res.writeHead(503);
      hit.res.end("busy");
    });
    const options = { clock, budget: false, breaker: false, retry: { initialDelay: 10, jitter: "none" } } as const;
    const original = globalThis.fetch;
    const app = createResilience(options);
    let appCalls = 0;
    app.on("request", () => appCalls++);
    globalThis.fetch = app.fetch;
    try {
      const sdk = make(options);
      const response = await clock.run(sdk.fetch(`${A.base}/x`));
      await response.text();
      return { requests: A.hits.length, status: response.status, appCalls };
    } finally {
      globalThis.fetch = original;
    }
  }

  it("control, one copy: a layer made after the install passes it over (3 requests, the app's layer hears none)", async () => {
    expect(await installedThenAnother(createResilience)).toEqual({ requests: 3, status: 503, appCalls: 0 });
  });

  it("defect 3: the other copy's layer made after the install does not send through the installed layer", async () => {
    // Observed: { requests: 9, status: 503, appCalls: 3 }: every SDK attempt ran the app's whole retry loop.
    expect(await installedThenAnother(other.createResilience)).toEqual({ requests: 3, status: 503, appCalls: 0 });
  });

  /** An outer layer (this copy) over an inner layer (`make`) with `idempotencyKey: true`; A answers 500, 503, 500, 503 … */
  async function stackedKeylessPost(make: typeof createResilience) {
    const clock = new TestClock(0);
    A.on((hit) => {
      hit.res.writeHead(hit.n % 2 === 1 ? 500 : 503);
      hit.res.end("x");
    });
    const retryOptions = { maxAttempts: 2, initialDelay: 10, jitter: "none" } as const;
    const inner = make({ clock, budget: false, breaker: false, retry: { ...retryOptions, idempotencyKey: true } });
    const outer = createResilience({ clock, budget: false, breaker: false, fetch: inner.fetch, retry: retryOptions });
    const response = await clock.run(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    await response.text();
    const keys = A.hits.map((hit) => hit.headers["idempotency-key"]);
    return { status: response.status, requests: A.hits.length, keys: new Set(keys).size };
  }

  it("control, one copy: the inner layer's 503 after its 500 is not taken as declined (2 requests, 1 key)", async () => {
    expect(await stackedKeylessPost(createResilience)).toEqual({ status: 503, requests: 2, keys: 1 });
  });

  it("defect 4: the other copy's 503 after its 500 is not taken as declined: the job is not sent again", async () => {
    // Observed: { status: 503, requests: 4, keys: 2 }: A answered 500 under two keys.
    expect(await stackedKeylessPost(other.createResilience)).toEqual({ status: 503, requests: 2, keys: 1 });
  });
});

describe("backoff numbers, seededRandom(11), on every path", () => {
  const numbers = { initialDelay: 100, exponentialBase: 3, maxDelay: 500, maxAttempts: 4 };
  const jitters: Jitter[] = ["none", "full", "equal", "decorrelated"];
  for (const jitter of jitters) {
    it(`${jitter}: the waits the servers saw and the retry events are the formula's`, async () => {
      const expected = documentedDelays(jitter, seededRandom(11), 3, numbers);
      for (const path of PATHS) {
        A.reset();
        B.reset();
        E.reset();
        const driven = await drive(path, () => ({ status: 503 }), { ...numbers, jitter }, seededRandom(11));
        expect({ path, count: driven.times.length }).toEqual({ path, count: 4 });
        const seen = gaps(driven.times);
        for (const [i, gap] of seen.entries()) expect(gap).toBeCloseTo(expected[i] as number, 6);
        if (path !== "proxy") expect(driven.events.map((e) => e.delay)).toEqual(expected);
        // The chain ends at e's 200; every other path resolves with the last 503.
        expect(driven.status).toBe(path === "chain" ? 200 : 503);
        // A body is sent whole on every attempt; the rewritten one the same each time.
        if (path === "degraded") {
          expect(new Set(driven.bodies).size).toBe(1);
          expect(driven.bodies[0]).not.toBe('{"prompt":"p","steps":50}');
        }
        if (path === "request") expect(driven.bodies).toEqual(Array(4).fill('{"prompt":"p"}'));
      }
      // execute's retry events and retry(fn)'s onRetry draw the same delays.
      const clock = new TestClock(0);
      const layer = createResilience({ clock, random: seededRandom(11), budget: false, retry: { ...numbers, jitter } });
      const executed: number[] = [];
      layer.on("retry", (event) => executed.push(event.delay));
      const work = () => Promise.reject(new Error("busy"));
      await clock.run(rejection(layer.execute(work)));
      expect(executed).toEqual(expected);
      const hooked: number[] = [];
      await clock.run(
        rejection(
          retry(work, {
            ...numbers,
            jitter,
            clock,
            random: seededRandom(11),
            onRetry: ({ delay }) => void hooked.push(delay),
          }),
        ),
      );
      expect(hooked).toEqual(expected);
    });
  }
});

describe("Retry-After on every path", () => {
  const numbers = { initialDelay: 100, maxAttempts: 2, jitter: "full" } as const;
  for (const path of PATHS) {
    it(`${path}: 2 s on 503 and 429 waited exactly, a 500's ignored, 120 s answered at once and the host held`, async () => {
      for (const status of [503, 429]) {
        A.reset();
        B.reset();
        E.reset();
        const driven = await drive(
          path,
          (hit) => (hit.n === 1 ? { status, headers: { "retry-after": "2" } } : { status: 200 }),
          numbers,
          () => 0.5,
        );
        expect({ status, gaps: gaps(driven.times), final: driven.status }).toEqual({
          status,
          gaps: [2000],
          final: 200,
        });
        if (path !== "proxy") expect(driven.events.map((e) => [e.delay, e.retryAfter])).toEqual([[2000, true]]);
      }
      A.reset();
      B.reset();
      const five = await drive(
        path,
        (hit) => (hit.n === 1 ? { status: 500, headers: { "retry-after": "2" } } : { status: 200 }),
        numbers,
        () => 0.5,
      );
      // The computed delay, full jitter: 0.5 × 100.
      expect(gaps(five.times)).toEqual([50]);
      A.reset();
      B.reset();
      E.reset();
      const clock = new TestClock(0);
      const held = await drive(
        path,
        () => ({ status: 503, headers: { "retry-after": "120" } }),
        numbers,
        () => 0.5,
        clock,
      );
      // A chain moves on to e at once (a GET); elsewhere the 503 comes back after one request.
      expect({ requests: held.times.length, status: held.status }).toEqual({
        requests: 1,
        status: path === "chain" ? 200 : 503,
      });
      if (held.layer && path !== "chain" && path !== "stacked") {
        const next = await rejection(held.layer.fetch(`${A.base}/v1/x`));
        expect(isCircuitOpenError(next)).toBe(true);
        expect((next as { retryAt: number }).retryAt).toBe(clock.now() + 120_000);
      }
    });
  }
});

describe("idempotency keys across attempts, hops and methods", () => {
  it("a keyless POST Request of FormData, 307 to another origin, its 503 retried: one key, same bytes", async () => {
    const clock = new TestClock(0);
    A.on((hit) => {
      hit.res.writeHead(307, { location: `${B.base}/upload` });
      hit.res.end();
    });
    B.on((hit) => {
      hit.res.writeHead(hit.n === 1 ? 503 : 200);
      hit.res.end("x");
    });
    const layer = createResilience({
      clock,
      budget: false,
      retry: { idempotencyKey: true, initialDelay: 10, jitter: "none" },
    });
    const form = new FormData();
    form.set("prompt", "a cat");
    form.set("file", new Blob([new Uint8Array([1, 2, 3])]), "f.bin");
    const response = await clock.run(layer.fetch(new Request(`${A.base}/upload`, { method: "POST", body: form })));
    await response.text();
    expect(response.status).toBe(200);
    const all = [...A.hits, ...B.hits];
    expect(all).toHaveLength(4);
    const keys = new Set(all.map((hit) => hit.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(UUID_V4);
    expect(new Set(all.map((hit) => hit.bytes.toString("base64"))).size).toBe(1);
    expect(new Set(all.map((hit) => hit.headers["content-type"])).size).toBe(1);
    expect(all.map((hit) => hit.method)).toEqual(["POST", "POST", "POST", "POST"]);
    expect(getResilienceInfo(response)?.attempts).toBe(2);
  });

  it("a 303 turns the keyed POST into a GET without body or content-type; the option off: no resend after 500", async () => {
    const clock = new TestClock(0);
    A.on((hit) => {
      hit.res.writeHead(303, { location: `${B.base}/result` });
      hit.res.end();
    });
    B.on((hit) => hit.res.end("done"));
    const layer = createResilience({ clock, budget: false, retry: { idempotencyKey: true } });
    const init = { method: "POST", body: JSON.stringify({ a: 1 }), headers: { "content-type": "application/json" } };
    const response = await clock.run(layer.fetch(`${A.base}/jobs`, init));
    expect(await response.text()).toBe("done");
    expect(B.hits.map((hit) => [hit.method, hit.body, hit.headers["content-type"]])).toEqual([["GET", "", undefined]]);
    A.reset();
    A.on((hit) => {
      hit.res.writeHead(500);
      hit.res.end("x");
    });
    const plain = createResilience({ clock, budget: false });
    const answered = await clock.run(plain.fetch(`${A.base}/jobs`, init));
    await answered.text();
    expect([answered.status, A.hits.length, A.hits[0]?.headers["idempotency-key"]]).toEqual([500, 1, undefined]);
  });
});

describe("the retry budget's tokens", () => {
  it("ratio 0.5, minPerSecond 1: earned then free tokens, a denied retry never waits, the refill", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      breaker: false,
      budget: { ratio: 0.5, minPerSecond: 1 },
      retry: { maxAttempts: 6, initialDelay: 10, jitter: "none", exponentialBase: 1 },
    });
    A.on((hit) => hit.res.end("ok"));
    for (let i = 0; i < 4; i++) await (await layer.fetch(`${A.base}/ok`)).text();
    expect(layer.health().budget).toMatchObject({ tokens: 3, retriesAllowed: 0, retriesDenied: 0 });
    A.reset();
    const times: number[] = [];
    A.on(answering(clock, times, () => ({ status: 503 })));
    const response = await clock.run(layer.fetch(`${A.base}/down`));
    await response.text();
    // 2.5 earned tokens (5 calls × 0.5) buy two retries, the free one a third; the fourth is denied at once.
    expect({ requests: times.length, gaps: gaps(times), status: response.status }).toEqual({
      requests: 4,
      gaps: [10, 10, 10],
      status: 503,
    });
    // Denied at 30 ms, when the free pool had refilled 0.01: the call ends there, with no wait.
    expect(clock.now()).toBe(30);
    expect(layer.health().budget).toMatchObject({ retriesAllowed: 3, retriesDenied: 1 });
    expect(layer.health().budget?.tokens).toBeCloseTo(0.51, 9);
    // The free token refills at 1 a second, never past 1.
    await clock.advance(500);
    expect(layer.health().budget?.tokens).toBeCloseTo(1.01, 9);
    await clock.advance(5000);
    expect(layer.health().budget?.tokens).toBeCloseTo(1.5, 9);
  });
});
