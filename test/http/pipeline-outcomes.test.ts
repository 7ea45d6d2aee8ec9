import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { degradation } from "../../src/degradation/index.ts";
import {
  type BreakerStoreLike,
  CircuitOpenError,
  createResilience,
  type RequestEvent,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

function failing(clock: TestClock, ms: number, error: () => unknown) {
  return async (): Promise<Response> => {
    await new Promise<void>((resolve) => clock.setTimer(resolve, ms));
    throw error();
  };
}

describe("how a call settles: events, analytics and errors", () => {
  it("reports a rejected call once, with its duration, and counts it as a failure", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: failing(clock, 250, () => new TypeError("fetch failed")),
    });
    const events: RequestEvent[] = [];
    resilience.on("request", (e) => events.push(e));
    const error = await clock.run(resilience.fetch("https://a.example/x?key=s", { method: "POST" })).catch((e) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(events).toEqual([
      {
        key: "a.example",
        url: "https://a.example/x",
        method: "POST",
        status: undefined,
        error: "RetryExhaustedError",
        attempts: 1,
        durationMs: 250,
        outcome: "error",
      },
    ]);
    const info = resilience.debugInfo();
    expect(info.recentErrors).toEqual([
      {
        time: 250,
        key: "a.example",
        url: "https://a.example/x",
        status: undefined,
        error: "RetryExhaustedError",
        durationMs: 250,
      },
    ]);
    expect(resilience.health().errorRate).toBe(1);
  });

  it("reports a caller's abort as aborted, rejects with its reason, and does not count it", async () => {
    const clock = new TestClock(0);
    const controller = new AbortController();
    const reason = new Error("user left");
    const resilience = createResilience({
      clock,
      degradation: degradation(),
      fetch: (_input, init) =>
        new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
    });
    const events: RequestEvent[] = [];
    resilience.on("request", (e) => events.push(e));
    const call = resilience.fetch("https://a.example/", { signal: controller.signal });
    clock.setTimer(() => controller.abort(reason), 100);
    expect(await clock.run(call).catch((e) => e)).toBe(reason);
    expect(events.map((e) => [e.outcome, e.error, e.durationMs])).toEqual([["aborted", "Error", 100]]);
    expect(resilience.debugInfo().recentErrors).toEqual([]);
    expect(resilience.health().errorRate).toBe(0);
    expect(resilience.degradation.window().samples).toBe(0);
  });

  it("a total timeout rejects with TimeoutError carrying the attempts made", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      timeout: { total: 1_000 },
      retry: { initialDelay: 100, maxDelay: 100, jitter: "none", maxAttempts: 10 },
      fetch: failing(clock, 300, () => new TypeError("fetch failed")),
    });
    const error = await clock.run(resilience.fetch("https://a.example/")).catch((e) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect([error.phase, error.attempts]).toEqual(["total", 3]);
  });

  it("an attempt timeout is a TimeoutError of phase attempt, unless the caller aborted first", async () => {
    const clock = new TestClock(0);
    const hang = (_input: RequestInfo | URL, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
      );
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 500 }, fetch: hang });
    const timedOut = await clock.run(resilience.fetch("https://a.example/")).catch((e) => e);
    expect([timedOut.name, timedOut.phase, timedOut.attempts]).toEqual(["TimeoutError", "attempt", 1]);
    const controller = new AbortController();
    const reason = new Error("mine");
    const call = resilience.fetch("https://a.example/", { signal: controller.signal });
    clock.setTimer(() => controller.abort(reason), 100);
    expect(await clock.run(call).catch((e) => e)).toBe(reason);
  });

  it("passes every field of the caller's init through, as it was at the call", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, redirects: "platform" });
    const cf = { cacheTtl: 5 };
    const init = { method: "PUT", body: "x", cache: "no-store" as const, cf };
    const call = resilience.fetch("https://a.example/", init);
    init.method = "DELETE"; // the caller reuses its object for its next call
    await call;
    expect(sent[0]?.init).toEqual({ method: "PUT", body: "x", cache: "no-store", cf });
    const controller = new AbortController();
    await resilience.fetch("https://a.example/", { signal: controller.signal });
    expect(sent[1]?.init?.signal).toBe(controller.signal);
  });

  it("sends a copy of the caller's headers, taken at the call, with the rest of its init", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, redirects: "platform" });
    const headers = { a: "1" };
    const init = { headers, cache: "no-store" as const };
    const call = resilience.fetch("https://a.example/", init);
    headers.a = "2"; // the caller prepares its next call
    await call;
    expect(sent[0]?.init).not.toBe(init);
    expect([new Headers(sent[0]?.init?.headers).get("a"), sent[0]?.init?.cache]).toEqual(["1", "no-store"]);
  });
});

describe("a half-open probe and a coordinating store", () => {
  function storeGranting(answer: boolean | string | undefined) {
    const records: [string, boolean, string | undefined][] = [];
    const store: BreakerStoreLike = {
      name: "fake",
      publish: (_key: string, _snapshot: BreakerSnapshot) => {},
      peek: () => undefined,
      record: (key, failed, _now, probe) => records.push([key, failed, probe]),
      acquireProbe: async () => answer,
    };
    return { store, records };
  }

  async function openThenProbe(answer: boolean | string | undefined, status = 200) {
    const clock = new TestClock(0);
    const { store, records } = storeGranting(answer);
    let n = 0;
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response(null, { status: n++ === 0 ? 503 : status }),
    });
    await clock.run(resilience.fetch("https://a.example/"));
    await clock.advance(1_000);
    const probe = await clock.run(resilience.fetch("https://a.example/")).catch((e) => e);
    return { probe, records, resilience, sent: n };
  }

  it("a refused lease fails fast without sending, and leaves the breaker able to probe again", async () => {
    const { probe, sent, resilience } = await openThenProbe(false);
    expect(probe).toBeInstanceOf(CircuitOpenError);
    expect(sent).toBe(1);
    expect(resilience.health().breakers["a.example"]?.state).toBe("half_open");
  });

  it("a granted lease id travels with the probe's outcome", async () => {
    const { probe, records } = await openThenProbe("lease-7");
    expect(probe.status).toBe(200);
    expect(records).toEqual([
      ["a.example", true, undefined],
      ["a.example", false, "lease-7"],
    ]);
  });

  it("an unanswered store leaves the local breaker in charge", async () => {
    const { probe, records } = await openThenProbe(undefined, 503);
    expect(probe.status).toBe(503);
    expect(records.at(-1)).toEqual(["a.example", true, undefined]);
  });

  it("a store whose lease request throws or rejects leaves the local breaker in charge, the probe sent", async () => {
    for (const acquireProbe of [
      async () => Promise.reject(new Error("binding gone")),
      () => {
        throw new Error("binding gone");
      },
    ]) {
      const clock = new TestClock(0);
      const { store } = storeGranting(undefined);
      let n = 0;
      const resilience = createResilience({
        clock,
        store: { ...store, acquireProbe: acquireProbe as NonNullable<BreakerStoreLike["acquireProbe"]> },
        retry: false,
        breaker: { failureThreshold: 1, timeout: 1_000 },
        fetch: async () => new Response(null, { status: n++ === 0 ? 503 : 200 }),
      });
      await clock.run(resilience.fetch("https://a.example/"));
      await clock.advance(1_000);
      const probe = await clock.run(resilience.fetch("https://a.example/"));
      expect([probe.status, n]).toEqual([200, 2]);
    }
  });

  it("a store whose peek throws once the lease is granted: the call fails with it, the lease goes back, the slot is free", async () => {
    const clock = new TestClock(0);
    const released: string[] = [];
    let peekThrows = false;
    let grants = 0;
    const store: BreakerStoreLike = {
      name: "fake",
      publish: () => {},
      peek: () => {
        if (peekThrows) {
          peekThrows = false; // once
          throw new Error("peek broke");
        }
        return undefined;
      },
      acquireProbe: async () => {
        peekThrows = grants++ === 0; // the read after the first grant throws
        return `lease-${grants}`;
      },
      releaseProbe: (_key, lease) => released.push(lease),
    };
    let n = 0;
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: async () => new Response(null, { status: n++ === 0 ? 503 : 200 }),
    });
    await clock.run(resilience.fetch("https://a.example/"));
    await clock.advance(1_000);
    const probe = await clock.run(resilience.fetch("https://a.example/")).catch((e: unknown) => e);
    expect([(probe as Error).name, (probe as Error).message, ((probe as Error).cause as Error).message]).toEqual([
      "RetryExhaustedError",
      "gave up after 0 attempts to a.example: peek broke",
      "peek broke",
    ]);
    expect([released, n]).toEqual([["lease-1"], 1]);
    // The local probe slot was given back: the next call probes.
    expect((await clock.run(resilience.fetch("https://a.example/"))).status).toBe(200);
  });

  it("the caller's abort while the store is asked for a lease settles the call and frees the slot at once", async () => {
    const clock = new TestClock(0);
    const { store } = storeGranting(undefined);
    let asked = 0;
    let n = 0;
    const resilience = createResilience({
      clock,
      // The first lease request never answers (an object that hangs past any timeout of its own).
      store: { ...store, acquireProbe: () => (asked++ === 0 ? new Promise(() => {}) : Promise.resolve(true)) },
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: async () => new Response(null, { status: n++ === 0 ? 503 : 200 }),
    });
    await clock.run(resilience.fetch("https://a.example/"));
    await clock.advance(1_000);
    const controller = new AbortController();
    const waiting = resilience.fetch("https://a.example/", { signal: controller.signal });
    await clock.advance(0);
    controller.abort(new Error("left the page"));
    await expect(waiting).rejects.toThrow("left the page");
    const next = await clock.run(resilience.fetch("https://a.example/"));
    expect([next.status, asked, n]).toEqual([200, 2, 2]);
  });

  it("a network error is recorded as a failure; an abort is not recorded at all", async () => {
    const clock = new TestClock(0);
    const { store, records } = storeGranting(true);
    const controller = new AbortController();
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      fetch: (_input, init) =>
        init?.signal
          ? new Promise((_r, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason)))
          : Promise.reject(new TypeError("fetch failed")),
    });
    await clock.run(resilience.fetch("https://a.example/")).catch(() => {});
    const call = resilience.fetch("https://a.example/", { signal: controller.signal });
    clock.setTimer(() => controller.abort(new Error("left")), 10);
    await clock.run(call).catch(() => {});
    expect(records).toEqual([["a.example", true, undefined]]);
    expect(resilience.health().breakers["a.example"]?.failureCount).toBe(1);
  });
});
