/**
 * Mutants of the twenty-third session's lines that its tests let live
 * (Stryker over `git diff 798561f 76131aa -- src`), killed here through the
 * public entries: a retry the breaker or a full bulkhead refuses after a
 * network error ends the call with that error, once, without another wait; resetting a named
 * breaker does not end the waits behind it (only its opening does).
 */
import { describe, expect, it } from "vitest";
import { createResilience, isRetryExhaustedError, memoryStore, type RetryEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

describe("a retry refused by an open breaker after a network error", () => {
  it("ends the call with RetryExhaustedError, the network error its cause, after one wait and one attempt", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const lost = new TypeError("fetch failed");
    let sentByB = 0;
    const b = createResilience({
      clock,
      store,
      retry: { maxAttempts: 3, initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
      fetch: async () => {
        sentByB++;
        throw lost;
      },
    });
    const a = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 60_000 },
      fetch: async () => new Response(null, { status: 503 }),
    });
    const retries: RetryEvent[] = [];
    b.on("retry", (event) => retries.push(event));
    const call = b.fetch("https://gen.example/v1/images").catch((error: unknown) => error);
    await flush();
    expect(retries).toHaveLength(1);
    // Another layer opens the host while B waits (a store's open is read when the retry leaves).
    expect((await a.fetch("https://gen.example/v1/other")).status).toBe(503);
    await clock.advance(1_000);
    await flush();
    const error = await call;
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBe(lost);
    expect(sentByB).toBe(1);
    // No second wait: the refusal ended the retries.
    expect(retries).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("a retry refused by a full bulkhead after a network error", () => {
  it("ends the call with that error at once: no second wait for a slot", async () => {
    const clock = new TestClock(0);
    const lost = new TypeError("fetch failed");
    let sent = 0;
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: (input) => {
        sent++;
        if (String(input).endsWith("/hung")) return new Promise<Response>(() => {});
        return Promise.reject(lost);
      },
    });
    const retries: RetryEvent[] = [];
    layer.on("retry", (event) => retries.push(event));
    const call = layer.fetch("https://gen.example/v1/images").catch((error: unknown) => error);
    await flush();
    // A call that hangs takes the host's one slot while the first waits to retry.
    const controller = new AbortController();
    const hung = layer.fetch("https://gen.example/hung", { signal: controller.signal }).catch(() => undefined);
    await flush();
    await clock.advance(1_000);
    await flush();
    const error = await call;
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBe(lost);
    expect(retries).toHaveLength(1);
    expect(sent).toBe(2);
    controller.abort();
    await hung;
  });
});

describe("a named breaker's waits", () => {
  it("are not ended by resetting the breaker: the call waits out its backoff and runs again", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
    });
    const breaker = layer.breaker("upscaler", { failureThreshold: 5 });
    let runs = 0;
    const call = layer.execute(
      async () => {
        runs++;
        if (runs === 1) throw new Error("busy");
        return "upscaled";
      },
      { breaker: "upscaler" },
    );
    await flush();
    expect(runs).toBe(1);
    breaker.reset();
    await flush();
    // Still waiting: only an opening ends the wait.
    expect(runs).toBe(1);
    await clock.advance(1_000);
    expect(await call).toBe("upscaled");
    expect(runs).toBe(2);
  });
});
