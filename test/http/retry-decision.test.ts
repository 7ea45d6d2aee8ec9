import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { type BreakerStore, CircuitOpenError, createResilience, RetryExhaustedError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const URL_ = "https://a.example/v1";

describe("when a retry is decided against", () => {
  it("does not retry once the caller has aborted, even a status worth retrying", async () => {
    const clock = new TestClock(0);
    const controller = new AbortController();
    let sent = 0;
    const resilience = createResilience({
      clock,
      fetch: async () => {
        sent++;
        controller.abort(new Error("left")); // the caller gives up as the answer arrives
        return new Response(null, { status: 503 });
      },
    });
    const retries: unknown[] = [];
    resilience.on("retry", (event) => retries.push(event));
    await clock.run(resilience.fetch(URL_, { signal: controller.signal })).catch(() => {});
    expect(sent).toBe(1);
    expect(retries).toEqual([]);
  });

  it("does not retry a refused probe, even when retryOn.error would retry any error", async () => {
    const clock = new TestClock(0);
    const answers: (boolean | undefined)[] = [false];
    const store: BreakerStore = {
      name: "fake",
      publish: (_key: string, _snapshot: BreakerSnapshot) => {},
      peek: () => undefined,
      acquireProbe: async () => answers.shift(),
    };
    let sent = 0;
    const resilience = createResilience({
      clock,
      store,
      retry: { maxAttempts: 3, retryOn: { error: () => true } },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response(null, { status: sent++ === 0 ? 500 : 200 }),
    });
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(500);
    expect(resilience.health().breakers["a.example"]?.state).toBe("open");
    await clock.advance(1_000);
    const probe = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(probe).toBeInstanceOf(CircuitOpenError);
    expect(sent).toBe(1);
  });

  it("does not retry an error retryOn.error does not name (by default, one that is not a network error)", async () => {
    const clock = new TestClock(0);
    const bug = new Error("a bug in a custom transport");
    let sent = 0;
    const resilience = createResilience({
      clock,
      fetch: async () => {
        sent++;
        throw bug;
      },
    });
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).cause).toBe(bug);
    expect(sent).toBe(1);
  });

  it("settles with a response whose Retry-After is too long, with breakers off", async () => {
    const clock = new TestClock(0);
    let sent = 0;
    const resilience = createResilience({
      clock,
      breaker: false,
      fetch: async () => {
        sent++;
        return new Response(null, { status: 429, headers: { "retry-after": "120" } });
      },
    });
    const response = await clock.run(resilience.fetch(URL_));
    expect(response.status).toBe(429);
    expect(sent).toBe(1);
  });
});

describe("Retry-After", () => {
  it("is read on a 429 or 503 only: a 500 that sends one is retried after the computed backoff", async () => {
    const clock = new TestClock(0);
    const sentAt: number[] = [];
    const resilience = createResilience({
      clock,
      breaker: false,
      retry: { jitter: "none", initialDelay: 100 },
      fetch: async () => {
        sentAt.push(clock.now());
        return sentAt.length === 1
          ? new Response(null, { status: 500, headers: { "retry-after": "120" } })
          : new Response("ok");
      },
    });
    const response = await clock.run(resilience.fetch(URL_));
    expect(response.status).toBe(200);
    expect(sentAt).toEqual([0, 100]);
  });
});
