/**
 * Outside-in attack on the errors the library gives its users, on every path.
 * Docs: docs/retry.md ("Fetch semantics are kept": the error table, its fields, "A caller's abort is never a
 * failure … rejects with `signal.reason`", "Each class has a cross-realm guard"; "The body of a response nobody
 * will read (… a fallback answer it rejects …) is drained … and cancelled otherwise"; "Messages never show the
 * URL's userinfo, query or fragment"; "Generic work": `execute`/`retry(fn)` and `RetryExhaustedError`, "Under
 * `execute`'s `breaker` … rejects with that `CircuitOpenError`"; redirects: "refused … with a `CircuitOpenError`
 * naming that host"), docs/fallback.md ("or rejects with `FallbackExhaustedError` (`errors` per endpoint) if none
 * gave one …; an endpoint skipped for its open breaker has that breaker's `CircuitOpenError` there, with
 * `retryAt`"), docs/breakers.md ("OPEN fails fast with `CircuitOpenError`", bulkheads, a store's `publish`,
 * `peek` and `record` "what they throw fails the call"), docs/options.md (`ConfigError` naming the path),
 * docs/health-and-events.md ("A listener that throws … never breaks the request"), docs/cloudflare.md
 * (`failureResponse`: 503 + Retry-After / 504 / 502), README.md ("It resolves with a response, even a 503 …
 * and rejects when it has none, or when the call is aborted or its `timeout.total` passes"), SECURITY.md (no
 * secret in errors; "a header value it refuses is named, never quoted").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `retry`, `CircuitBreaker`, `FallbackChain` (./policies), `failureResponse` (./cloudflare), `TestClock`
 * (./testing); real node:http servers on 127.0.0.1 (refused origin, a hanging server, a redirecting one, a 503
 * one), scripted transports elsewhere; `node:vm` for errors of another realm; a breaker store of one's own.
 * Paths: plain call, fallback chain (fixed and hedged), redirect followed by the library, degradation rewrite,
 * `Request` input (its own signal too), ky client, `execute` and named breakers, `retry(fn)`, `CircuitBreaker`,
 * `FallbackChain`, `failureResponse`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a chain's peek failure stops the chain where the send meets it, releasing the answer it moved on from; each endpoint's TimeoutError counts its own attempts; a store's failure documented as a RetryExhaustedError):
 * 1. docs/fallback.md "When every endpoint failed, the call resolves with the last response any endpoint gave
 *    …, or rejects with `FallbackExhaustedError` (`errors` per endpoint) if none gave one (a chain that stopped
 *    early says after which endpoint and why …)", and docs/retry.md's table "`RetryExhaustedError` … `endpoint`
 *    (the host)". Observed: a chain call whose breaker store's `peek` throws rejects with `RetryExhaustedError`
 *    "gave up after 0 attempts to c": its `endpoint` is the chain's name, not a host, and no attempt was made.
 *    A `record` or `publish` that throws gives `FallbackExhaustedError` ("stopped after "p": the breaker store
 *    threw"). Cause: `skipReason` (src/fallback/try-endpoints.ts) asks `parts.registry.known(key)?.breaker
 *    .isOpen()`, which reads the store; its throw escapes `FallbackChain.run` (#next → `options.skip`), so
 *    `served()` never builds the chain's error, and `settleError` (src/http/resilient-fetch.ts) wraps it as a
 *    `RetryExhaustedError` keyed by `call.key`, which for a chain is the route's name.
 * 2. docs/retry.md "The body of a response nobody will read (one the layer retries past, a redirect it follows,
 *    a fallback answer it rejects, a hedge that lost) is drained in the background when it is small (up to 64
 *    KiB, within 1 s) …, and cancelled otherwise." Observed: the first endpoint answers 503 (a 100 KB body), the
 *    chain moves on, and the store's `peek` throws for the second endpoint's host: the call rejects, and the
 *    503's body is never read nor cancelled (still open after 1.5 s). With a `publish` that throws instead, the
 *    body is cancelled. Same cause as 1: the throw leaves `FallbackChain.run` past the code that discards
 *    `lastRejected`.
 * 3. docs/retry.md's table: "`TimeoutError` | `timeout.attempt` or `timeout.total` ran out with no response |
 *    `phase`, `timeout`, `attempts`". Observed: in a chain whose endpoints each made two attempts that ran out
 *    of `timeout.attempt`, the `TimeoutError` of each endpoint in `FallbackExhaustedError.errors` says
 *    `attempts: 0` (fixed and hedged chains alike); only `settleError` sets `attempts`, on the error the call
 *    itself rejects with.
 * 4. docs/retry.md's table: "`RetryExhaustedError` | the last attempt failed without a response (a network
 *    error)" (and the class's own doc, "Every attempt failed without a Response"). Observed: a plain call whose
 *    store's `peek` throws sends nothing and rejects with `RetryExhaustedError` "gave up after 0 attempts to
 *    a.example", `attempts: 0`; a `peek` that throws a `TypeError` rejects with that `TypeError` instead.
 *    `settleError` turns any other error into a `RetryExhaustedError`, whatever the attempts.
 *
 * Held (plain `it`):
 * - Real refused origin: `RetryExhaustedError` with `attempts` 3, `endpoint` the host:port, `cause` the
 *   platform's `TypeError`, its `name`, guards, no query in the message; a `Request` input and a degradation
 *   rewrite reject the same.
 * - Every attempt a 503 (real server): the call resolves with the 503; a chain whose last endpoint fails with
 *   no response resolves with the earlier endpoint's 503.
 * - A caller's abort rejects with `signal.reason` (an `Error`, a string, none: the `AbortError`) against a
 *   real hanging server; through a hedged chain, a `Request`'s own signal, ky, `execute`, a named breaker,
 *   `retry(fn)` and `FallbackChain.execute`.
 * - `timeout.attempt` on every attempt: `TimeoutError` `attempt` with `attempts` 2 (also when the transport
 *   rejects with an error of its own); `timeout.total`: phase `total`, on a plain call, in a chain, in ky.
 * - An open breaker on the first attempt: `CircuitOpenError` with `key` and `retryAt` (clock + 30 s) on a plain
 *   call, a degradation rewrite, a `Request` input and ky; a half-open named breaker with its probe taken
 *   reports the lease's expiry; `failureResponse` answers 503 with its `Retry-After`.
 * - A redirect (real servers) to a host whose breaker is open: `CircuitOpenError` naming that host, nothing
 *   sent there; in a chain, both endpoints' errors are `CircuitOpenError`; `failureResponse` 502 for both (503
 *   when this run was written: a refused later hop is not "declined", the first upstream had the request).
 * - A full bulkhead: `BulkheadRejectedError` with `key`; `failureResponse` 502.
 * - Chains: every endpoint failing with no response gives `FallbackExhaustedError` with `errors` per endpoint
 *   (open ones with `retryAt`), a keyless POST stopped early says after which endpoint and why; timeouts give
 *   `failureResponse` 504.
 * - `execute`: `RetryExhaustedError` without `endpoint` and with the URL's query cut; its open breaker's
 *   `CircuitOpenError`; `retry(fn)`'s `RetryExhaustedError`; `FallbackChain` and a layer's chain.
 * - `ConfigError` names the path (`retry.maxAttempts`, `fallback.0.endpoints.1.url`,
 *   `degradation.levels.medium.maxSteps`, `resilience.retry.maxAttempts` through ky and the proxy,
 *   `routes.1.chain.endpoints.0.url`, `execute.signal`, `breaker("x").failureThreshold`); `path` field equal.
 * - The guards recognise errors from another realm (`node:vm`) by name; `isTimeoutError` refuses a
 *   DOMException "TimeoutError"; errors from the fallback and degradation entries pass the root's `instanceof`.
 * - Listeners that throw (sync and async) never break a plain call or a chain.
 * - Secrets: a header value the layer refuses is not quoted; a platform message or a thrown string naming the
 *   URL has its query cut on a plain call and in a chain's errors.
 */
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  ResilienceError,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const upA = httpUpstream();
const upB = httpUpstream();
serveDuringFile(upA, upB);

afterEach(() => {
  vi.restoreAllMocks();
});

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** A transport that waits for its attempt's signal and rejects with its reason. */
const hangUntilAborted = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
  new Promise((_, reject) => {
    const signal = init?.signal;
    signal?.addEventListener("abort", () => reject(signal.reason));
  });

const networkFailure = async (): Promise<Response> => {
  throw new TypeError("fetch failed");
};

/** A breaker store of one's own: `memoryStore`'s contract, with what a test replaces. */
function ownStore(over: Partial<BreakerStore>): BreakerStore {
  return { name: "own", publish() {}, peek: () => undefined, ...over } as BreakerStore;
}

const twoEndpoints = (hedge?: number) =>
  fallback([
    {
      name: "c",
      ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
      endpoints: [
        { name: "p", url: "https://p.example/v1" },
        { name: "s", url: "https://s.example/v1" },
      ],
    },
  ]);

describe("defects", () => {
  it("a chain whose store's peek throws rejects with FallbackExhaustedError, not a RetryExhaustedError keyed by the chain", async () => {
    const sent: string[] = [];
    const r = createResilience({
      fetch: async (input) => {
        sent.push(String(input));
        return new Response("ok");
      },
      retry: false,
      store: ownStore({
        peek: () => {
          throw new Error("peek broke");
        },
      }),
      fallback: twoEndpoints(),
    });
    const error = await rejection(r.fetch("https://p.example/v1/x"));
    expect(sent).toEqual([]);
    // fallback.md: a chain with no response to give rejects with FallbackExhaustedError (errors per endpoint);
    // retry.md: a RetryExhaustedError's `endpoint` is the host. Observed: RetryExhaustedError, endpoint "c".
    if (isRetryExhaustedError(error)) expect(error.endpoint).not.toBe("c");
    expect(isFallbackExhaustedError(error)).toBe(true);
  });

  it("(contrast) a chain whose store's record throws says it stopped: FallbackExhaustedError", async () => {
    const r = createResilience({
      fetch: async () => new Response("ok"),
      retry: false,
      store: ownStore({
        record: () => {
          throw new Error("record broke");
        },
      }),
      fallback: twoEndpoints(),
    });
    const error = await rejection(r.fetch("https://p.example/v1/x"));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect((error as Error).message).toContain('stopped after "p": the breaker store threw');
  });

  it("the 503 a chain moved on from is released when the next endpoint's store peek throws", async () => {
    let cancelled = false;
    const body = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(100_000));
        },
        cancel() {
          cancelled = true;
        },
      });
    const r = createResilience({
      fetch: async () => new Response(body(), { status: 503 }),
      retry: false,
      store: ownStore({
        peek: (key: string) => {
          if (key === "s.example") throw new Error("peek broke");
          return undefined;
        },
      }),
      fallback: twoEndpoints(),
    });
    await rejection(r.fetch("https://p.example/v1/x"));
    // retry.md: a fallback answer nobody reads is drained when small (64 KiB, 1 s), cancelled otherwise.
    await vi.waitFor(() => expect(cancelled).toBe(true), { timeout: 1500, interval: 20 });
  });

  it("(contrast) the same 503 is cancelled when the store's publish throws instead", async () => {
    let cancelled = false;
    const body = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(100_000));
        },
        cancel() {
          cancelled = true;
        },
      });
    const r = createResilience({
      fetch: async () => new Response(body(), { status: 503 }),
      retry: false,
      breaker: { failureThreshold: 1 },
      store: ownStore({
        publish: () => {
          throw new Error("publish broke");
        },
      }),
      fallback: twoEndpoints(),
    });
    await rejection(r.fetch("https://p.example/v1/x"));
    await vi.waitFor(() => expect(cancelled).toBe(true), { timeout: 1500, interval: 20 });
  });

  it("each endpoint's TimeoutError in a chain's errors carries its attempts", async () => {
    for (const hedge of [undefined, 30]) {
      const clock = new TestClock();
      const r = createResilience({
        clock,
        fetch: hangUntilAborted,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
        timeout: { attempt: 100 },
        fallback: twoEndpoints(hedge),
      });
      const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
      expect(isFallbackExhaustedError(error)).toBe(true);
      const errors = (error as FallbackExhaustedError).errors;
      for (const name of ["p", "s"]) {
        const timeout = errors[name] as TimeoutError;
        expect(isTimeoutError(timeout)).toBe(true);
        expect(timeout.phase).toBe("attempt");
        // retry.md: TimeoutError's fields are phase, timeout, attempts; each endpoint made 2. Observed: 0.
        expect(timeout.attempts).toBe(2);
      }
    }
  });

  // Made exact in docs/retry.md and docs/breakers.md instead: a store's failure is a RetryExhaustedError whose
  // cause is the store's error, attempts 0 when nothing was sent; a TypeError from the store is no exception.
  it("a store's peek that throws before any attempt: RetryExhaustedError, the store's error its cause, attempts 0", async () => {
    for (const thrown of [new Error("peek broke"), new TypeError("peek broke")]) {
      let sent = 0;
      const r = createResilience({
        fetch: async () => {
          sent++;
          return new Response("ok");
        },
        store: ownStore({
          peek: () => {
            throw thrown;
          },
        }),
      });
      const error = await rejection(r.fetch("https://a.example/x"));
      expect(sent).toBe(0);
      expect(isRetryExhaustedError(error)).toBe(true);
      expect((error as RetryExhaustedError).attempts).toBe(0);
      expect((error as RetryExhaustedError).endpoint).toBe("a.example");
      expect((error as RetryExhaustedError).cause).toBe(thrown);
    }
  });
});

describe("held: plain calls against real servers", () => {
  it("a refused origin: RetryExhaustedError with attempts, the host, the platform's cause; no query", async () => {
    const origin = await refusedOrigin();
    const host = new URL(origin).host;
    const r = createResilience({ retry: { initialDelay: 1, maxDelay: 2 } });
    for (const input of [
      `${origin}/x?key=SECRET`,
      new Request(`${origin}/x?key=SECRET`, { method: "PUT", body: "hi" }),
    ] as const) {
      const error = await rejection(r.fetch(input));
      expect(error).toBeInstanceOf(RetryExhaustedError);
      expect(error).toBeInstanceOf(ResilienceError);
      const e = error as RetryExhaustedError;
      expect(e.name).toBe("RetryExhaustedError");
      expect(e.attempts).toBe(3);
      expect(e.endpoint).toBe(host);
      expect(e.cause).toBeInstanceOf(TypeError);
      expect(isResilienceError(e) && isRetryExhaustedError(e)).toBe(true);
      expect(e.message).toContain(`gave up after 3 attempts to ${host}`);
      expect(e.message).not.toContain("SECRET");
    }
  });

  it("through a degradation rewrite the same RetryExhaustedError, recognised by the root's class", async () => {
    const origin = await refusedOrigin();
    const r = createResilience({ retry: false, degradation: degradation({}) });
    r.degradation.setLevel("medium");
    const error = await rejection(r.fetch(`${origin}/v1`, { method: "PUT", body: JSON.stringify({ steps: 50 }) }));
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).attempts).toBe(1);
  });

  it("every attempt a 503: the call resolves with the 503, as fetch would", async () => {
    upA.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const r = createResilience({ retry: { initialDelay: 1, maxDelay: 2 } });
    const res = await r.fetch(`${upA.base}/x`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("busy");
    expect(upA.hits.length).toBe(3);
  });

  it("a chain whose last endpoint gives no response resolves with the earlier endpoint's 503", async () => {
    const origin = await refusedOrigin();
    upA.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${upA.base}/v1` },
            { name: "dead", url: `${origin}/v1` },
          ],
        },
      ]),
    });
    const res = await r.fetch(`${upA.base}/v1/x`);
    expect(res.status).toBe(503);
  });

  it("a caller's abort rejects with signal.reason against a real hanging server", async () => {
    upA.on(() => {}); // never answers
    const r = createResilience({});
    for (const reason of [new Error("mine"), "why", undefined]) {
      const controller = new AbortController();
      const p = r.fetch(`${upA.base}/hang`, { signal: controller.signal });
      await upA.nth(upA.hits.length + 1);
      controller.abort(reason);
      const error = await rejection(p);
      expect(error).toBe(controller.signal.reason);
      if (reason === undefined) expect((error as DOMException).name).toBe("AbortError");
      expect(isResilienceError(error)).toBe(false);
    }
  });

  it("a redirect to a host whose breaker is open: CircuitOpenError naming that host, nothing sent there", async () => {
    upB.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    upA.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `${upB.base}/target?token=SECRET`);
      hit.res.end();
    });
    const r = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    expect((await r.fetch(`${upB.base}/x`)).status).toBe(503);
    const error = await rejection(r.fetch(`${upA.base}/go`));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).key).toBe(upB.host);
    expect(upB.hits.length).toBe(1);
    // The first upstream had the request: a 502, not a 503 that says it was declined.
    expect(failureResponse(error).status).toBe(502);
    expect((error as Error).message).not.toContain("SECRET");
  });

  it("in a chain, an endpoint redirected to an open host has that CircuitOpenError; failureResponse 502", async () => {
    upB.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    upA.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `${upB.base}/t`);
      hit.res.end();
    });
    const r = createResilience({
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${upA.base}/go` },
            { name: "b", url: `${upB.base}/v1` },
          ],
        },
      ]),
    });
    expect((await r.fetch(`${upB.base}/x`)).status).toBe(503);
    const error = await rejection(r.fetch(`${upA.base}/go/x`));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const errors = (error as FallbackExhaustedError).errors;
    expect(isCircuitOpenError(errors.a) && isCircuitOpenError(errors.b)).toBe(true);
    expect(typeof (errors.b as CircuitOpenError).retryAt).toBe("number");
    // Endpoint a's upstream answered with the redirect: not every endpoint declined, so no 503.
    expect(failureResponse(error).status).toBe(502);
  });
});

describe("held: aborts and timeouts on the other paths", () => {
  it("a caller's abort rejects with its reason: hedged chain, a Request's own signal, ky", async () => {
    const clock = new TestClock();
    const chained = createResilience({ clock, fetch: hangUntilAborted, fallback: twoEndpoints(10) });
    const c1 = new AbortController();
    const p1 = chained.fetch("https://p.example/v1/x", { signal: c1.signal });
    await clock.advance(20);
    c1.abort(new Error("mine"));
    expect(await rejection(p1)).toBe(c1.signal.reason);

    const plain = createResilience({ fetch: hangUntilAborted });
    const c2 = new AbortController();
    const p2 = plain.fetch(new Request("https://a.example/x", { signal: c2.signal }));
    c2.abort(new Error("request's own"));
    expect(await rejection(p2)).toBe(c2.signal.reason);

    const c3 = new AbortController();
    const p3 = createClient({ resilience: { fetch: hangUntilAborted } }).get("https://a.example/x", {
      signal: c3.signal,
    });
    c3.abort(new Error("ky's caller"));
    expect(await rejection(p3)).toBe(c3.signal.reason);
  });

  it("a caller's abort rejects with its reason: execute, a named breaker, retry(fn), FallbackChain", async () => {
    const r = createResilience({});
    const never = () => new Promise<never>(() => {});
    const runs: Array<(signal: AbortSignal) => Promise<unknown>> = [
      (signal) => r.execute(never, { signal }),
      (signal) => r.breaker("work").execute(never, signal),
      (signal) => retry(never, { signal }),
      (signal) => new FallbackChain<number, number>("g").add(never, { name: "a" }).execute(1, { signal }),
    ];
    for (const run of runs) {
      const controller = new AbortController();
      const p = run(controller.signal);
      controller.abort(new Error("gone"));
      expect(await rejection(p)).toBe(controller.signal.reason);
    }
  });

  it("timeout.attempt on every attempt: TimeoutError attempt, attempts 2, whatever the transport rejects with", async () => {
    const ownAbort = (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
      new Promise((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      });
    for (const transport of [hangUntilAborted, ownAbort]) {
      const clock = new TestClock();
      const r = createResilience({
        clock,
        fetch: transport,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
        timeout: { attempt: 100 },
      });
      const error = await rejection(clock.run(r.fetch("https://a.example/x")));
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).phase).toBe("attempt");
      expect((error as TimeoutError).timeout).toBe(100);
      expect((error as TimeoutError).attempts).toBe(2);
    }
  });

  it("timeout.total: TimeoutError total on a plain call, in a chain and through ky; failureResponse 504", async () => {
    const clock = new TestClock();
    const plain = createResilience({
      clock,
      fetch: hangUntilAborted,
      retry: { maxAttempts: 3, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 100, total: 150 },
    });
    const e1 = await rejection(clock.run(plain.fetch("https://a.example/x")));
    expect(isTimeoutError(e1) && (e1 as TimeoutError).phase === "total").toBe(true);
    expect((e1 as TimeoutError).attempts).toBe(2);
    expect(failureResponse(e1).status).toBe(504);

    const chained = createResilience({
      clock,
      fetch: hangUntilAborted,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 100, total: 150 },
      fallback: twoEndpoints(),
    });
    const e2 = await rejection(clock.run(chained.fetch("https://p.example/v1/x")));
    expect(isTimeoutError(e2) && (e2 as TimeoutError).phase === "total").toBe(true);

    const e3 = await rejection(
      createClient({ resilience: { fetch: hangUntilAborted, timeout: { total: 30 } } }).get("https://a.example/x"),
    );
    expect(isTimeoutError(e3) && (e3 as TimeoutError).phase === "total").toBe(true);
  });

  it("a chain whose endpoints all time out: FallbackExhaustedError, failureResponse 504", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      fetch: hangUntilAborted,
      retry: false,
      timeout: { attempt: 100 },
      fallback: twoEndpoints(),
    });
    const error = await rejection(clock.run(r.fetch("https://p.example/v1/x")));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(failureResponse(error).status).toBe(504);
  });
});

describe("held: breakers and bulkheads", () => {
  it("an open breaker on the first attempt: CircuitOpenError key and retryAt, on a plain call, a rewrite, a Request, ky", async () => {
    const clock = new TestClock();
    let sent = 0;
    const r = createResilience({
      clock,
      fetch: async () => {
        sent++;
        return new Response("x", { status: 503 });
      },
      retry: false,
      breaker: { failureThreshold: 1 },
      degradation: degradation({}),
    });
    await r.fetch("https://b.example/x");
    const api = createClient({ resilience: r });
    for (const call of [
      () => r.fetch("https://b.example/x"),
      () => r.fetch("https://b.example/x", { method: "POST", body: JSON.stringify({ steps: 50 }) }),
      () => r.fetch(new Request("https://b.example/x", { method: "PUT", body: "x" })),
      () => api.get("https://b.example/x"),
    ]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect((error as CircuitOpenError).key).toBe("b.example");
      expect((error as CircuitOpenError).retryAt).toBe(30_000);
      expect((error as Error).message).toBe('circuit for "b.example" is open until 1970-01-01T00:00:30.000Z');
      const answer = failureResponse(error, clock.now());
      expect([answer.status, answer.headers.get("retry-after")]).toEqual([503, "30"]);
    }
    expect(sent).toBe(1);
  });

  it("a half-open named breaker whose probe slot is taken: CircuitOpenError at the lease's expiry", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock });
    const b = r.breaker("up", { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1, probeTimeout: 5000 });
    await rejection(
      b.execute(() => {
        throw new Error("x");
      }),
    );
    await clock.advance(1000);
    void b.execute(() => new Promise(() => {})).catch(() => {});
    const error = await rejection(b.execute(() => 1));
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).key).toBe("up");
    expect((error as CircuitOpenError).retryAt).toBe(6000);
  });

  it("a full bulkhead: BulkheadRejectedError with the host; failureResponse 502", async () => {
    const r = createResilience({ fetch: () => new Promise(() => {}), bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    void r.fetch("https://a.example/x").catch(() => {});
    const error = await rejection(r.fetch("https://a.example/y"));
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(isBulkheadRejectedError(error)).toBe(true);
    expect((error as BulkheadRejectedError).key).toBe("a.example");
    expect(failureResponse(error).status).toBe(502);
  });
});

describe("held: chains", () => {
  it("no endpoint gave a response: FallbackExhaustedError with errors per endpoint, open ones with retryAt", async () => {
    const failing = createResilience({ fetch: networkFailure, retry: false, fallback: twoEndpoints() });
    const e1 = await rejection(failing.fetch("https://p.example/v1/x"));
    expect(e1).toBeInstanceOf(FallbackExhaustedError);
    expect((e1 as FallbackExhaustedError).chain).toBe("c");
    expect(Object.keys((e1 as FallbackExhaustedError).errors)).toEqual(["p", "s"]);
    expect(failureResponse(e1).status).toBe(502);

    const clock = new TestClock();
    const open = createResilience({
      clock,
      fetch: async () => new Response("x", { status: 503 }),
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: twoEndpoints(),
    });
    await open.fetch("https://p.example/v1/x");
    const e2 = await rejection(open.fetch("https://p.example/v1/x"));
    const errors = (e2 as FallbackExhaustedError).errors;
    expect((errors.p as CircuitOpenError).retryAt).toBe(30_000);
    expect((errors.s as CircuitOpenError).key).toBe("s.example");
    expect(failureResponse(e2, clock.now()).headers.get("retry-after")).toBe("30");
  });

  it("a keyless POST after a reset stops the chain and says after which endpoint and why", async () => {
    const reset = async (): Promise<Response> => {
      throw new TypeError("fetch failed", {
        cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }),
      });
    };
    const r = createResilience({ fetch: reset, retry: false, fallback: twoEndpoints() });
    const error = await rejection(r.fetch("https://p.example/v1/x", { method: "POST", body: "{}" }));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as Error).message).toContain('stopped after "p"');
    expect((error as Error).message).toContain("Idempotency-Key");
  });
});

describe("held: generic work", () => {
  it("execute: RetryExhaustedError without an endpoint, the URL's query cut; its open breaker's CircuitOpenError", async () => {
    const r = createResilience({ retry: { initialDelay: 1, maxDelay: 2, maxAttempts: 2 } });
    const error = await rejection(
      r.execute(() => {
        throw new Error("GET https://x.example/a?api_key=SECRET returned 503");
      }),
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).attempts).toBe(2);
    expect((error as RetryExhaustedError).endpoint).toBeUndefined();
    expect((error as Error).message).not.toContain("SECRET");
    expect(String((error as Error).cause)).not.toContain("SECRET");

    r.breaker("up", { failureThreshold: 1 });
    await rejection(
      r.execute(
        () => {
          throw new Error("x");
        },
        { breaker: "up", retry: false },
      ),
    );
    const open = await rejection(r.execute(() => 1, { breaker: "up" }));
    expect(isCircuitOpenError(open) && (open as CircuitOpenError).key === "up").toBe(true);
  });

  it("retry(fn), CircuitBreaker and FallbackChain reject with the library's classes", async () => {
    const e1 = await rejection(
      retry(
        () => {
          throw new Error("boom");
        },
        { maxAttempts: 2, initialDelay: 1 },
      ),
    );
    expect(e1).toBeInstanceOf(RetryExhaustedError);
    expect((e1 as RetryExhaustedError).attempts).toBe(2);

    const clock = new TestClock();
    const breaker = new CircuitBreaker(
      "k",
      {
        failureThreshold: 1,
        successThreshold: 1,
        timeout: 1000,
        halfOpenMaxCalls: 1,
        timeWindow: 1000,
        probeTimeout: 1000,
        failureRate: 1,
        minimumCalls: 100,
      },
      clock,
    );
    await rejection(
      breaker.execute(() => {
        throw new Error("x");
      }),
    );
    const e2 = await rejection(breaker.execute(() => 1));
    expect(e2).toBeInstanceOf(CircuitOpenError);
    expect((e2 as CircuitOpenError).retryAt).toBe(1000);

    const e3 = await rejection(
      new FallbackChain<number, number>("g")
        .add(
          () => {
            throw new Error("a");
          },
          { name: "a" },
        )
        .execute(1),
    );
    expect(e3).toBeInstanceOf(FallbackExhaustedError);
    expect(Object.keys((e3 as FallbackExhaustedError).errors)).toEqual(["a"]);
  });
});

describe("held: ConfigError names the path", () => {
  it("on every entry", async () => {
    const cases: Array<[() => unknown, string]> = [
      [() => createResilience({ retry: { maxAttempts: 0 } }), "retry.maxAttempts"],
      [
        () =>
          fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: "https://a.example" },
                { name: "b", url: "ftp://b.example" },
              ],
            },
          ]),
        "fallback.0.endpoints.1.url",
      ],
      [() => degradation({ levels: { medium: { maxSteps: -1 } } }), "degradation.levels.medium.maxSteps"],
      [() => createClient({ resilience: { retry: { maxAttempts: 0 } } }), "resilience.retry.maxAttempts"],
      [
        () =>
          resilientProxy({
            routes: [{ path: "/a", upstream: "https://a.example" }],
            resilience: { retry: { maxAttempts: 0 } },
          }),
        "resilience.retry.maxAttempts",
      ],
      [
        () =>
          resilientProxy({
            routes: [
              { path: "/a", upstream: "https://a.example" },
              { path: "/b", chain: { name: "c", endpoints: [{ name: "x", url: "ftp://x.example" }] } },
            ],
          }),
        "routes.1.chain.endpoints.0.url",
      ],
      [() => createResilience({}).execute(() => 1, { signal: "x" as unknown as AbortSignal }), "execute.signal"],
      [() => createResilience({}).breaker("x", { failureThreshold: 0 }), 'breaker("x").failureThreshold'],
    ];
    for (const [make, path] of cases) {
      let thrown: unknown;
      try {
        await make();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect(isConfigError(thrown)).toBe(true);
      expect((thrown as ConfigError).path).toBe(path);
      expect((thrown as Error).message.startsWith(`${path}: `)).toBe(true);
    }
  });
});

describe("held: guards, names and secrets", () => {
  it("the guards know errors of another realm by name; isTimeoutError refuses a DOMException TimeoutError", () => {
    const foreign = runInNewContext(`
      const make = (name, extra) => Object.assign(new Error("x"), { name }, extra);
      [make("RetryExhaustedError", { attempts: 2 }), make("CircuitOpenError", { key: "k", retryAt: 1 }),
       make("TimeoutError", { phase: "total" }), make("FallbackExhaustedError", { chain: "c", errors: {} }),
       make("BulkheadRejectedError", { key: "k" }), make("ConfigError", { path: "retry" })]
    `) as unknown[];
    // Since the fifty-first session each carries the fields its class sets: a name alone is not enough.
    expect(foreign[0] instanceof Error).toBe(false);
    expect(isRetryExhaustedError(foreign[0])).toBe(true);
    expect(isCircuitOpenError(foreign[1])).toBe(true);
    expect(isTimeoutError(foreign[2])).toBe(true);
    expect(isFallbackExhaustedError(foreign[3])).toBe(true);
    expect(isBulkheadRejectedError(foreign[4])).toBe(true);
    expect(isConfigError(foreign[5])).toBe(true);
    expect(foreign.every(isResilienceError)).toBe(true);
    expect(isTimeoutError(new DOMException("x", "TimeoutError"))).toBe(false);
    expect(isResilienceError({ name: "CircuitOpenError" })).toBe(false);
    expect(isResilienceError(runInNewContext('Object.assign(new Error("x"), { name: "CircuitOpenError" })'))).toBe(
      false,
    );
  });

  it("a listener that throws, sync or async, breaks neither a plain call nor a chain", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const f = async (input: RequestInfo | URL): Promise<Response> => {
      if (new URL(String(input)).host === "p.example") throw new TypeError("fetch failed");
      return new Response("from s");
    };
    const r = createResilience({ fetch: f, retry: false, fallback: twoEndpoints() });
    r.on("fallback", () => {
      throw new Error("listener");
    });
    r.on("request", async () => {
      throw new Error("async listener");
    });
    expect(await (await r.fetch("https://p.example/v1/x")).text()).toBe("from s");
    const plain = await rejection(r.fetch("https://p.example/other"));
    expect(plain).toBeInstanceOf(RetryExhaustedError);
  });

  it("no secret in the errors: a refused header value is not quoted; a quoted URL loses its query", async () => {
    const r = createResilience({ fetch: async () => new Response("ok") });
    const e1 = await rejection(r.fetch("https://a.example/x", { headers: { authorization: "Bearer SECRET\r\nx" } }));
    expect(e1).toBeInstanceOf(TypeError);
    expect((e1 as Error).message).not.toContain("SECRET");

    const quoting = async (input: RequestInfo | URL): Promise<Response> => {
      throw `fail ${String(input instanceof Request ? input.url : input)}`;
    };
    const plain = createResilience({ fetch: quoting, retry: false });
    const e2 = await rejection(plain.fetch("https://a.example/x?key=SECRET"));
    expect(JSON.stringify([(e2 as Error).message, String((e2 as Error).cause)])).not.toContain("SECRET");

    const chained = createResilience({ fetch: quoting, retry: false, fallback: twoEndpoints() });
    const e3 = await rejection(chained.fetch("https://p.example/v1/x?key=SECRET"));
    const errors = Object.values((e3 as FallbackExhaustedError).errors).map(String);
    expect(JSON.stringify([(e3 as Error).message, errors])).not.toContain("SECRET");
  });
});
