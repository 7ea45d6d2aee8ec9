/**
 * Outside-in attack on the JSDoc of the root and `./policies` exports. Docs: the TSDoc of
 * `RetryEvent`, `BreakerEvent`, `FallbackChain`, `retry`, `RetryBudget`, `Resilience.breaker`,
 * `ExecuteOptions`, `CircuitBreaker.execute`, `HealthSnapshot`; docs/retry.md ("Retry events name a failure…").
 * How: `createResilience` with an injected `fetch` and `TestClock`, `retry`, `RetryBudget`,
 * `CircuitBreaker`, `FallbackChain` from `./policies`, `fallback` from `./fallback`.
 * Paths: plain call (network error, attempt timeout, 503s), `execute` with a named breaker,
 * `resilience.fallback.chain`, `retry(fn)` on its own.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all three were in the JSDoc, which now says what the code does and what docs/retry.md says, so plain `it`
 * asserting the corrected sentences):
 * 1. src/core/resilience-events.ts, `RetryEvent.reason`: "`"status 503"`, or the error's name.".
 *    Observed: a fetch that rejects with a `TypeError` gives `reason: "network error"`, an attempt
 *    timeout (`TimeoutError`) gives `reason: "attempt timeout"`: the failure as people say it, which
 *    is what docs/retry.md ("Retry events name a failure the way people do") says: the JSDoc and the
 *    guide contradict each other.
 * 2. src/core/resilience-events.ts, `BreakerEvent.reason`: "Why, e.g. "5 failures within 300000 ms
 *    (last: status 503)"." Observed: five 503s in a row (failureThreshold 5) open the breaker with
 *    `reason: "5 failures in a row (last: status 503)"`; no reason of that "within N ms" form exists.
 * 3. src/policies/fallback-chain.ts, `FallbackChain` @example: "const chain =
 *    resilience.fallbackChain("thumbnail");". Observed: a `Resilience` has no `fallbackChain`
 *    (`typeof resilience.fallbackChain` is "undefined", with or without the fallback stage); the
 *    example throws "resilience.fallbackChain is not a function". The chain is
 *    `resilience.fallback.chain(name)`, and only with the fallback stage.
 *
 * Held (plain `it`):
 * - `retry(fn)`: "Rejects with RetryExhaustedError (its cause the last error) when every attempt
 *   failed", and `onRetry` gets the retry number and delay before each wait.
 * - `RetryBudget`: "An empty bucket refuses the retry at once; it never makes a caller wait", and
 *   `minPerSecond` free retries refill a second.
 * - `Resilience.breaker(name, options)`: "created on first use … then returned as is" (later options ignored).
 * - `ExecuteOptions.breaker`: "an open breaker ends the retries at once", and `fallback` is
 *   "called with the last error".
 * - `HealthSnapshot.status`: "`unhealthy` when any breaker is open" (a named one too).
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  CircuitOpenError,
  createResilience,
  type RetryEvent,
  RetryExhaustedError,
} from "../../src/index.ts";
import { FallbackChain, RetryBudget, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

describe("RetryEvent.reason: the status, or the failure as people name it", () => {
  it('"`"attempt timeout"` … else `"network error"`": a network TypeError and an attempt timeout', async () => {
    const clock = new TestClock(0);
    // First call: a fetch that rejects with a TypeError, then answers 200.
    let n = 0;
    const failing = createResilience({
      clock,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      fetch: async () => {
        n++;
        if (n === 1) throw new TypeError("fetch failed");
        return new Response("ok");
      },
    });
    const reasons: string[] = [];
    failing.on("retry", (event: RetryEvent) => reasons.push(event.reason));
    const first = failing.fetch("https://api.example/a");
    await flush();
    await clock.advance(10);
    expect((await first).status).toBe(200);

    // Second call: an attempt that never answers, cut by `timeout.attempt`.
    let m = 0;
    const hanging = createResilience({
      clock,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      timeout: { attempt: 100 },
      fetch: (_input, init) => {
        m++;
        if (m > 1) return Promise.resolve(new Response("ok"));
        return new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true });
        });
      },
    });
    hanging.on("retry", (event: RetryEvent) => reasons.push(event.reason));
    const second = hanging.fetch("https://api.example/b");
    await flush();
    await clock.advance(100);
    await flush();
    await clock.advance(10);
    expect((await second).status).toBe(200);

    // The JSDoc said "the error's name" (["TypeError", "TimeoutError"]); docs/retry.md and the code name the failure.
    expect(reasons).toEqual(["network error", "attempt timeout"]);
  });

  it("a retried 503 is named by its status", async () => {
    const clock = new TestClock(0);
    let n = 0;
    const resilience = createResilience({
      clock,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      fetch: async () => new Response(null, { status: ++n === 1 ? 503 : 200 }),
    });
    const events: RetryEvent[] = [];
    resilience.on("retry", (event) => events.push(event));
    const call = resilience.fetch("https://api.example/x?key=secret");
    await flush();
    await clock.advance(10);
    expect((await call).status).toBe(200);
    expect(events).toEqual([
      {
        key: "api.example",
        url: "https://api.example/x",
        attempt: 1,
        delay: 10,
        reason: "status 503",
        retryAfter: false,
      },
    ]);
  });
});

describe("BreakerEvent.reason", () => {
  it('"Why, e.g. "5 failures in a row (last: status 503)"" (the JSDoc said "5 failures within 300000 ms")', async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 5, timeWindow: 300_000 },
      fetch: async () => new Response(null, { status: 503 }),
    });
    const changes: BreakerEvent[] = [];
    resilience.on("breaker", (change) => changes.push(change));
    for (let i = 0; i < 5; i++) expect((await resilience.fetch("https://api.example/")).status).toBe(503);
    expect(changes.map((c) => [c.from, c.to])).toEqual([["closed", "open"]]);
    expect(changes[0]?.reason).toBe("5 failures in a row (last: status 503)");
  });
});

describe("FallbackChain @example", () => {
  it('"const chain = new FallbackChain<Request, Blob>("thumbnail")" then add and execute (the example said resilience.fallbackChain, which no layer has)', async () => {
    const renderGpu = async (req: string) => `gpu:${req}`;
    const renderCpu = async (req: string) => `cpu:${req}`;
    for (const resilience of [createResilience(), createResilience({ fallback: fallback([]) })])
      expect((resilience as unknown as Record<string, unknown>).fallbackChain).toBeUndefined();
    const chain = new FallbackChain<string, string>("thumbnail");
    chain.add((req) => renderGpu(req), { name: "gpu", expectedQuality: 1 });
    chain.add((req) => renderCpu(req), { name: "cpu", expectedQuality: 0.6 });
    expect(await chain.execute("cat")).toBe("gpu:cat");
  });

  it("the chain the layer does give (resilience.fallback.chain) runs the example's entries", async () => {
    const resilience = createResilience({ fallback: fallback([]) });
    const chain = resilience.fallback.chain<string, string>("thumbnail");
    chain.add(
      async () => {
        throw new Error("no gpu");
      },
      { name: "gpu", expectedQuality: 1 },
    );
    chain.add(async (req) => `cpu:${req}`, { name: "cpu", expectedQuality: 0.6 });
    expect(await chain.execute("cat")).toBe("cpu:cat");
    expect(resilience.health().fallback.thumbnail?.lastSuccessfulFallback).toBe("cpu");
  });
});

describe("retry(fn) and RetryBudget", () => {
  it("rejects with RetryExhaustedError whose cause is the last error; onRetry sees each retry and its delay", async () => {
    const clock = new TestClock(0);
    const errors = [new Error("one"), new Error("two"), new Error("three")];
    const seen: Array<[number, number]> = [];
    let k = 0;
    const run = retry(
      () => {
        throw errors[k++];
      },
      {
        clock,
        maxAttempts: 3,
        initialDelay: 100,
        jitter: "none",
        onRetry: ({ attempt, delay }) => {
          seen.push([attempt, delay]);
        },
      },
    );
    const settled = run.then(
      () => undefined,
      (error: unknown) => error,
    );
    await flush();
    await clock.advance(100);
    await flush();
    await clock.advance(200);
    const error = await settled;
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).attempts).toBe(3);
    expect((error as RetryExhaustedError).cause).toBe(errors[2]);
    expect((error as RetryExhaustedError).endpoint).toBeUndefined();
    expect(seen).toEqual([
      [1, 100],
      [2, 200],
    ]);
  });

  it("an empty RetryBudget refuses at once, and minPerSecond free retries come back a second later", async () => {
    const clock = new TestClock(0);
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 2 }, clock);
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
    await clock.advance(1_000);
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
    expect(budget.snapshot()).toMatchObject({ retriesAllowed: 4, retriesDenied: 2, ratio: 0.1, minPerSecond: 2 });
  });
});

describe("named breakers and execute", () => {
  it("breaker(name, options) is created on first use, then returned as is", () => {
    const resilience = createResilience({ breaker: { failureThreshold: 7 } });
    const first = resilience.breaker("upscaler", { failureThreshold: 2 });
    expect(resilience.breaker("upscaler", { failureThreshold: 50 })).toBe(first);
    first.failure(first.acquire(), "x");
    first.failure(first.acquire(), "x");
    expect(first.state).toBe("open");
    expect(resilience.health()).toMatchObject({ status: "unhealthy", breakers: { upscaler: { state: "open" } } });
  });

  it("execute with an open breaker ends the retries at once, and fallback gets the last error", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 5, initialDelay: 10, jitter: "none" } });
    resilience.breaker("gpu", { failureThreshold: 1 });
    let calls = 0;
    const failure = new Error("gpu down");
    const seen: unknown[] = [];
    const answer = await resilience.execute(
      () => {
        calls++;
        throw failure;
      },
      {
        breaker: "gpu",
        fallback: (error) => {
          seen.push(error);
          return "cpu";
        },
      },
    );
    expect([answer, calls, seen]).toEqual(["cpu", 1, [failure]]);
    // The next call finds it open: nothing runs, the fallback gets the CircuitOpenError.
    const again = await resilience.execute(
      () => {
        calls++;
        return "gpu";
      },
      { breaker: "gpu", fallback: (error) => error },
    );
    expect(again).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(1);
  });
});
