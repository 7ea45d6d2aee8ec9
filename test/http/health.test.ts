import { describe, expect, it } from "vitest";
import { CircuitOpenError, ConfigError, createResilience, memoryStore } from "../../src/index.ts";
import { json, status, TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();

describe("resilience.breaker(name) for any async work", () => {
  it("executes, opens, fails fast, resets, and serialises plain state", async () => {
    const clock = new TestClock(500);
    const resilience = createResilience({ clock });
    const breaker = resilience.breaker("upscaler", { failureThreshold: 2, timeout: 1_000 });
    expect(resilience.breaker("upscaler")).toBe(breaker);
    expect(await breaker.execute(() => "ok")).toBe("ok");
    for (let i = 0; i < 2; i++)
      await expect(breaker.execute(() => Promise.reject(new Error("gpu oom")))).rejects.toThrow("gpu oom");
    expect(breaker.state).toBe("open");
    let ran = false;
    await expect(
      breaker.execute(() => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(CircuitOpenError);
    expect(ran).toBe(false);
    const json = JSON.parse(JSON.stringify(breaker));
    expect(json).toMatchObject({ v: 1, state: "open", gen: 1, openUntil: 1_500, lastFailureTime: 500 });
    breaker.reset();
    expect(breaker.state).toBe("closed");
    expect(breaker.toJSON().gen).toBe(2);
    expect(resilience.health().breakers.upscaler).toMatchObject({ state: "closed", gen: 2 });
  });

  it("honours isFailure (expected_exception in the StoryCore-Engine error-handling guide)", async () => {
    const resilience = createResilience();
    const breaker = resilience.breaker("strict", { failureThreshold: 1, isFailure: (e) => !(e instanceof RangeError) });
    await expect(breaker.execute(() => Promise.reject(new RangeError("bad input")))).rejects.toThrow();
    expect(breaker.state).toBe("closed");
    await expect(breaker.execute(() => Promise.reject(new Error("down")))).rejects.toThrow();
    expect(breaker.state).toBe("open");
  });

  it("validates its arguments", () => {
    const resilience = createResilience();
    expect(() => resilience.breaker("")).toThrow(TypeError);
    expect(() => resilience.breaker("x", { failureThreshold: 0 })).toThrow(ConfigError);
    expect(() => resilience.breaker("x", { failureThreshold: 0 })).toThrow(/breaker\("x"\)\.failureThreshold/);
  });

  it("opens on a failure rate over minimumCalls when failureRate is set", async () => {
    const resilience = createResilience();
    const breaker = resilience.breaker("rate", { failureRate: 0.5, minimumCalls: 10 });
    for (let i = 0; i < 4; i++) await breaker.execute(() => 1);
    for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("closed"); // 9 calls: below minimumCalls
    await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("open"); // 6 of 10 failed
    expect(breaker.toJSON().reason).toMatch(/failure rate 0.60 over 10 calls/);
  });
});

describe("health(), debugInfo() and analytics", () => {
  it("budget.retriesAllowed counts a retry let go before its wait, though the breaker's opening then ended it unsent", async () => {
    const clock = new TestClock(0);
    let sent = 0;
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 1_000, jitter: "none" },
      breaker: { failureThreshold: 2, timeout: 60_000 },
      fetch: async () => {
        sent++;
        return new Response("x", { status: 503 });
      },
    });
    const first = resilience.fetch("https://api.example/a");
    await flush();
    // The first call waits for its retry; the second's 503 opens the host, which ends that wait.
    expect(resilience.health().budget?.retriesAllowed).toBe(1);
    const second = resilience.fetch("https://api.example/b");
    expect([(await first).status, (await second).status]).toEqual([503, 503]);
    expect(sent).toBe(2);
    expect(resilience.health().budget).toMatchObject({ retriesAllowed: 1, retriesDenied: 0 });
    expect(clock.now()).toBe(0);
  });

  it("budget.retriesAllowed counts a retry a full bulkhead then refused: the call ends on its last answer", async () => {
    const clock = new TestClock(0);
    let sent = 0;
    let release: (() => void) | undefined;
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1_000, jitter: "none" },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: async (input) => {
        sent++;
        if (String(input).endsWith("/slow")) await new Promise<void>((done) => (release = done));
        return new Response("x", { status: String(input).endsWith("/slow") ? 200 : 503 });
      },
    });
    const first = resilience.fetch("https://api.example/a");
    await flush();
    const holder = resilience.fetch("https://api.example/slow");
    await flush();
    await clock.advance(1_000);
    expect((await first).status).toBe(503);
    expect(sent).toBe(2);
    expect(resilience.health().budget).toMatchObject({ retriesAllowed: 1, retriesDenied: 0 });
    release?.();
    expect((await holder).status).toBe(200);
  });

  it("lastFailureTime: the last failure counted, null before any and again once a spell ends in a close", async () => {
    const clock = new TestClock(10_000);
    let fail = true;
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2, timeout: 1_000, successThreshold: 1 },
      fetch: async () => new Response("x", { status: fail ? 503 : 200 }),
    });
    const lastFailure = () => resilience.health().breakers["api.example"]?.lastFailureTime;
    await resilience.fetch("https://api.example/a");
    expect(lastFailure()).toBe(10_000);
    await clock.advance(50);
    await resilience.fetch("https://api.example/a");
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "open", lastFailureTime: 10_050 });
    await clock.advance(1_000);
    fail = false;
    await resilience.fetch("https://api.example/a");
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "closed", lastFailureTime: null });
  });

  it("reports breakers, error rate, budget and status as plain JSON", async () => {
    route(server, "GET", "https://bad.example/x", status(503));
    route(server, "GET", "https://good.example/x?api_key=secret", json({}));
    const clock = new TestClock(1_000);
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2 } });
    await resilience.fetch("https://good.example/x?api_key=secret");
    await resilience.fetch("https://bad.example/x");
    await resilience.fetch("https://bad.example/x");
    const health = resilience.health();
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
    expect(health).toMatchObject({
      status: "unhealthy",
      errorRate: 2 / 3,
      breakers: {
        "bad.example": {
          state: "open",
          failureCount: 2,
          consecutiveFailures: 2,
          failureRate: 1,
          lastError: "status 503",
          lastFailureTime: 1_000,
          openUntil: 31_000,
          reason: "2 failures in a row (last: status 503)",
        },
        "good.example": {
          state: "closed",
          failureCount: 0,
          consecutiveFailures: 0,
          failureRate: 0,
          lastError: null,
          lastFailureTime: null,
          openUntil: null,
        },
      },
    });
    expect(health.budget?.tokens).toBeGreaterThan(0);
    const debug = resilience.debugInfo();
    expect(debug.totals).toEqual({ calls: 3, failures: 2 });
    expect(debug.recentErrors).toEqual([
      expect.objectContaining({ key: "bad.example", url: "https://bad.example/x", status: 503 }),
      expect.objectContaining({ key: "bad.example", status: 503 }),
    ]);
    expect(JSON.stringify(debug)).not.toContain("secret");
    resilience.analytics.clearHistory();
    expect(resilience.debugInfo().recentErrors).toEqual([]);
    expect(resilience.health().errorRate).toBe(0);
  });

  it("counts failures in the rate window while closed; a run of failures in a row outlives the window", async () => {
    const upstream = route(server, "GET", "https://flaky.example/x", status(500), status(500), status(500), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 5, timeWindow: 10_000 } });
    const flaky = () => resilience.health().breakers["flaky.example"];
    await resilience.fetch("https://flaky.example/x");
    await resilience.fetch("https://flaky.example/x");
    expect(flaky()).toMatchObject({ failureCount: 2, consecutiveFailures: 2, failureRate: 1 });
    await clock.advance(10_000);
    expect(flaky()).toMatchObject({ failureCount: 0, consecutiveFailures: 2, failureRate: null });
    await resilience.fetch("https://flaky.example/x");
    expect(flaky()).toMatchObject({ state: "closed", failureCount: 1, consecutiveFailures: 3, failureRate: 1 });
    await resilience.fetch("https://flaky.example/x");
    expect(flaky()).toMatchObject({ state: "closed", failureCount: 1, consecutiveFailures: 0, failureRate: 0.5 });
    expect(upstream.count()).toBe(4);
  });

  it("an open breaker says what opened it, and until when, through a failed probe", async () => {
    route(server, "GET", "https://down.example/x", status(503));
    const clock = new TestClock(5_000);
    const resilience = createResilience({ clock, retry: false });
    for (let i = 0; i < 12; i++) await resilience.fetch("https://down.example/x");
    const opened = {
      state: "open",
      failureCount: 12,
      consecutiveFailures: 12,
      failureRate: 1,
      lastError: "status 503",
      openUntil: 35_000,
      reason: "12 failures in a row (last: status 503)",
    };
    expect(resilience.health().breakers["down.example"]).toMatchObject(opened);
    await clock.advance(30_000);
    expect(resilience.health().breakers["down.example"]).toMatchObject({
      ...opened,
      state: "half_open",
      openUntil: null,
    });
    await resilience.fetch("https://down.example/x"); // the probe fails: open again, same trip
    expect(resilience.health().breakers["down.example"]).toMatchObject({
      ...opened,
      openUntil: 65_000,
      reason: "probe failed: status 503",
    });
  });

  it("an open breaker tripped by the failure rate shows the rate and the counts of the window", async () => {
    route(server, "GET", "https://half.example/x", json({}), status(502), json({}), status(502));
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: false, breaker: { failureRate: 0.5, minimumCalls: 4 } });
    for (let i = 0; i < 4; i++) await resilience.fetch("https://half.example/x");
    expect(resilience.health().breakers["half.example"]).toMatchObject({
      state: "open",
      failureCount: 2,
      consecutiveFailures: 1,
      failureRate: 0.5,
      lastError: "status 502",
      openUntil: 30_000,
      reason: "failure rate 0.50 over 4 calls (last: status 502)",
    });
  });

  it("the error rate covers the last minute only", async () => {
    route(server, "GET", "https://bad.example/y", status(500));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: false });
    await resilience.fetch("https://bad.example/y");
    expect(resilience.health().errorRate).toBe(1);
    await clock.advance(61_000);
    expect(resilience.health().errorRate).toBe(0);
  });

  it("rejects a bad store and a bad bulkhead by name", () => {
    expect(() => createResilience({ store: {} as never })).toThrow(/store\.name/);
    expect(() => createResilience({ bulkhead: { maxConcurrent: 0 } })).toThrow(/bulkhead\.maxConcurrent/);
    expect(() => memoryStore({ maxKeys: 0 })).toThrow(/maxKeys/);
    expect(() => createResilience({ breaker: { maxHosts: 0 } })).toThrow(/breaker\.maxHosts/);
  });
});
