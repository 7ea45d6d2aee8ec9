import { afterEach, describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience, type RequestEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const URL_ = "https://a.example/v1";

/** A POST Request whose body stream fails when read. */
function unreadableRequest(): Request {
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error(new Error("disk gone"));
    },
  });
  return new Request(URL_, { method: "POST", body, duplex: "half" } as RequestInit & { duplex: string });
}

function withEvents(options: Parameters<typeof createResilience>[0]) {
  const resilience = createResilience(options);
  const events: RequestEvent[] = [];
  resilience.on("request", (event) => events.push(event));
  return { resilience, events };
}

describe("a call that ends before it starts", () => {
  it("rejects at once with the reason of a signal already aborted, reporting and sending nothing", async () => {
    let sent = 0;
    const { resilience, events } = withEvents({
      clock: new TestClock(0),
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
    });
    const controller = new AbortController();
    const reason = new Error("never mind");
    controller.abort(reason);
    await expect(resilience.fetch(URL_, { signal: controller.signal })).rejects.toBe(reason);
    expect(events).toEqual([]);
    expect(sent).toBe(0);
  });
});

describe("a call whose Request body cannot be read", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("rejects with a TypeError whose cause is the body's error (nothing sent: no attempt gave up), and its event names the URL and method", async () => {
    const { resilience, events } = withEvents({ clock: new TestClock(0), fetch: async () => new Response("ok") });
    const error = await resilience.fetch(unreadableRequest()).catch((e: unknown) => e);
    // It was a RetryExhaustedError "after 0 attempts" until the twentieth session.
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("resilience.fetch: the request body could not be read");
    expect(((error as Error).cause as Error).message).toBe("disk gone");
    // Named since the twenty-fifth session (they were "" while the body was being read).
    expect(events).toEqual([expect.objectContaining({ url: URL_, method: "POST", outcome: "error", attempts: 0 })]);
  });

  it("rejects the same way in a browser page, where a failure may get a CORS hint", async () => {
    vi.stubGlobal("document", {});
    const { resilience } = withEvents({ clock: new TestClock(0), fetch: async () => new Response("ok") });
    const error = await resilience.fetch(unreadableRequest()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("resilience.fetch: the request body could not be read");
  });
});

describe("a call the transport refuses before sending anything", () => {
  it("fires its request event (TypeError, attempts 0) and counts nothing, as a body that cannot be read", async () => {
    let sent = 0;
    const { resilience, events } = withEvents({
      clock: new TestClock(0),
      fetch: async () => {
        sent++;
        // What Node's fetch (undici) throws for a header it will not send.
        throw new TypeError("fetch failed", {
          cause: Object.assign(new Error("expect"), { code: "UND_ERR_NOT_SUPPORTED" }),
        });
      },
    });
    const error = await resilience.fetch(URL_, { headers: { expect: "100-continue" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(sent).toBe(1);
    expect(events).toEqual([expect.objectContaining({ url: URL_, error: "TypeError", outcome: "error", attempts: 0 })]);
    const health = resilience.health();
    expect(health.errorRate).toBe(0);
    expect(health.breakers["a.example"]?.failureCount).toBe(0);
  });
});

describe("a call that fails", () => {
  it("reports its duration on the layer's clock", async () => {
    const clock = new TestClock(1_000_000);
    const { resilience, events } = withEvents({
      clock,
      retry: false,
      fetch: () => new Promise((_resolve, reject) => clock.setTimer(() => reject(new TypeError("fetch failed")), 250)),
    });
    await clock.run(resilience.fetch(URL_)).catch(() => {});
    expect(events.map((e) => [e.outcome, e.durationMs])).toEqual([["error", 250]]);
  });

  it("says why in the message, with nothing added outside a browser", async () => {
    const resilience = createResilience({
      clock: new TestClock(0),
      retry: false,
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    const error = await resilience.fetch(URL_).catch((e: unknown) => e);
    expect((error as Error).message).toBe("gave up after 1 attempt to a.example: fetch failed");
  });

  it("counts against the degradation level's error rate", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ minSamples: 10 }),
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    for (let i = 0; i < 10; i++) await resilience.fetch(URL_).catch(() => {});
    await clock.advance(1_000);
    await resilience.fetch(URL_).catch(() => {});
    expect(resilience.degradation.currentLevel()).toMatchObject({
      name: "high",
      reason: expect.stringMatching(/error rate/),
    });
  });
});

describe("a URL that reads no network", () => {
  it("goes to fetch as it is: data: and blob: URLs get no breaker, retry, timeout or event", async () => {
    const sent: unknown[] = [];
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      timeout: { total: 1_000 },
      fetch: async (input) => {
        sent.push(input);
        throw new TypeError("no such blob");
      },
    });
    const events: string[] = [];
    for (const name of ["request", "retry"] as const) resilience.on(name, () => events.push(name));
    const request = new Request("data:,x");
    for (const input of ["data:,", " DATA:text/plain,hi", new URL("blob:https://app.example/1"), request]) {
      await expect(resilience.fetch(input)).rejects.toThrow("no such blob");
    }
    expect(sent).toEqual(["data:,", " DATA:text/plain,hi", new URL("blob:https://app.example/1"), request]);
    expect(events).toEqual([]);
    expect(resilience.health().breakers).toEqual({});
    expect(clock.pending()).toBe(0);
  });
});

describe("a body stream that fails while it is sent", () => {
  /** A stream of `chunks` 100-byte chunks that then fails. */
  const failing = (chunks: number) => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < chunks) controller.enqueue(new Uint8Array(100));
        else controller.error(new Error("disk gone"));
      },
    });
  };
  /** A transport that reads the body it is given, as fetch does, failing as fetch fails. */
  const reading = async (input: RequestInfo | URL, init?: RequestInit) => {
    const body = (input instanceof Request ? input.body : init?.body) as ReadableStream<Uint8Array>;
    try {
      await new Response(body).arrayBuffer();
    } catch (cause) {
      throw new TypeError("fetch failed", { cause });
    }
    return new Response("ok");
  };

  it("a Request body read ahead past maxReplayBytes: the caller's failure, counted by nothing", async () => {
    const { resilience, events } = withEvents({
      clock: new TestClock(0),
      maxReplayBytes: 150,
      breaker: { failureThreshold: 1 },
      budget: { ratio: 0.5, minPerSecond: 0 },
      fetch: reading,
    });
    const request = new Request(URL_, { method: "POST", body: failing(3), duplex: "half" } as RequestInit);
    const error = await resilience.fetch(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(((error as Error).cause as Error).message).toBe("disk gone");
    expect(events).toEqual([expect.objectContaining({ outcome: "error", attempts: 0 })]);
    const health = resilience.health();
    expect(health.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(health.errorRate).toBe(0);
    expect(health.budget?.tokens).toBe(0);
  });

  it("a ReadableStream in init goes to fetch as it is: its failure is that attempt's network error", async () => {
    const { resilience } = withEvents({ clock: new TestClock(0), breaker: { failureThreshold: 1 }, fetch: reading });
    const init = { method: "POST", body: failing(3), duplex: "half" } as RequestInit;
    const error = await resilience.fetch(URL_, init).catch((e: unknown) => e);
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect(resilience.health().breakers["a.example"]?.state).toBe("open");
  });
});
