import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** Work that throws each of `errors` in turn, then returns "done"; counts its calls. */
function failingThen(errors: unknown[]) {
  let calls = 0;
  const fn = async () => {
    calls++;
    if (errors.length > 0) throw errors.shift();
    return "done";
  };
  return { fn, calls: () => calls };
}

describe("resilience.execute: which errors are retried", () => {
  it("follows the instance's retryOn.error when the call names none", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: { retryOn: { error: (e) => (e as Error).message === "transient" } },
    });
    const permanent = failingThen([new Error("permanent")]);
    await expect(clock.run(resilience.execute(permanent.fn))).rejects.toThrow("permanent");
    expect(permanent.calls()).toBe(1);
    const transient = failingThen([new Error("transient")]);
    expect(await clock.run(resilience.execute(transient.fn))).toBe("done");
  });

  it("prefers the call's own retryOn.error over the instance's", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { retryOn: { error: () => false } } });
    const work = failingThen([new Error("transient")]);
    const done = resilience.execute(work.fn, { retry: { retryOn: { error: () => true } } });
    expect(await clock.run(done)).toBe("done");
    expect(work.calls()).toBe(2);
  });

  it.each([
    ["null", null],
    ["undefined", undefined],
  ])("retries work that throws %s", async (_name, thrown) => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const work = failingThen([thrown]);
    expect(await clock.run(resilience.execute(work.fn))).toBe("done");
    expect(work.calls()).toBe(2);
  });
});

describe("resilience.execute: the retry budget", () => {
  it("works without one (budget: false)", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, budget: false });
    const work = failingThen([new Error("once")]);
    expect(await clock.run(resilience.execute(work.fn))).toBe("done");
  });

  it("spends it: an empty budget allows no retry", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, budget: { ratio: 0, minPerSecond: 0 } });
    const work = failingThen([new Error("once")]);
    await expect(clock.run(resilience.execute(work.fn))).rejects.toThrow("once");
    expect(work.calls()).toBe(1);
  });
});

describe("resilience.execute: the caller's signal", () => {
  it("ends the retries when it aborts during a backoff", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 5, initialDelay: 1_000, jitter: "none" },
    });
    const work = failingThen([new Error("a"), new Error("b"), new Error("c"), new Error("d")]);
    const controller = new AbortController();
    const reason = new Error("caller left");
    clock.setTimer(() => controller.abort(reason), 500);
    await expect(clock.run(resilience.execute(work.fn, { signal: controller.signal }))).rejects.toBe(reason);
    expect(work.calls()).toBe(1);
  });

  it("skips the fallback once it has aborted", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 1_000, jitter: "none" } });
    const controller = new AbortController();
    const reason = new Error("caller left");
    clock.setTimer(() => controller.abort(reason), 500);
    let fellBack = 0;
    const work = failingThen([new Error("a"), new Error("b"), new Error("c")]);
    const done = resilience.execute(work.fn, {
      signal: controller.signal,
      fallback: () => {
        fellBack++;
        return "fallback";
      },
    });
    await expect(clock.run(done)).rejects.toBe(reason);
    expect(fellBack).toBe(0);
  });
});

describe("resilience.execute: its outcome counts where a call's does", () => {
  it("a failure and a success count in health()'s error rate and debugInfo(), named by the breaker or 'execute'", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: false });
    await resilience.execute(async () => "ok");
    const failed = await resilience
      .execute(() => Promise.reject(new RangeError("model down")), { breaker: "video" })
      .catch(() => undefined);
    await resilience.execute(() => Promise.reject(new Error("x"))).catch(() => undefined);
    expect(failed).toBeUndefined();
    expect(resilience.health().errorRate).toBeCloseTo(2 / 3);
    const info = resilience.debugInfo();
    expect(info.totals).toEqual({ calls: 3, failures: 2 });
    expect(info.recentErrors.map((e) => [e.key, e.url, e.status, e.error])).toEqual([
      ["video", "", undefined, "RetryExhaustedError"],
      ["execute", "", undefined, "RetryExhaustedError"],
    ]);
  });

  it("the work's outcome before `fallback` answers for it; an aborted run is no failure", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: false });
    const answer = await resilience.execute(() => Promise.reject(new Error("down")), { fallback: () => "cached" });
    expect(answer).toBe("cached");
    const controller = new AbortController();
    const running = resilience.execute(() => new Promise<never>(() => {}), { signal: controller.signal });
    controller.abort(new Error("left"));
    await expect(running).rejects.toThrow("left");
    expect(resilience.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("moves the degradation triggers: failing work steps the level down", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      degradation: degradation({ minSamples: 1, stepInterval: 0, triggers: { memoryUsage: 1, cpuUsage: 1 } }),
    });
    await resilience.execute(() => Promise.reject(new Error("down"))).catch(() => undefined);
    expect(resilience.degradation.currentLevel()).toMatchObject({
      name: "high",
      reason: expect.stringContaining("error rate"),
    });
  });
});

describe("resilience.execute: retry events", () => {
  it("fires one before each wait, as a call does, naming the work's breaker, error and delay", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, random: () => 0.5, retry: { jitter: "none", initialDelay: 100 } });
    const events: unknown[] = [];
    resilience.on("retry", (event) => events.push(event));
    class QuotaError extends Error {
      override name = "QuotaError https://api.example/?key=sk-secret";
    }
    const work = failingThen([new TypeError("first"), new QuotaError("second")]);
    expect(await clock.run(resilience.execute(work.fn, { breaker: "render" }))).toBe("done");
    expect(events).toEqual([
      { key: "render", url: "", attempt: 1, delay: 100, reason: "TypeError", retryAfter: false },
      // The name is shown as `debugInfo()` shows it: a URL in it loses its query.
      { key: "render", url: "", attempt: 2, delay: 200, reason: "QuotaError https://api.example/", retryAfter: false },
    ]);
  });

  it("keys work without a breaker as `execute`, names a thrown non-Error by its kind, and fires none for a wait the budget refused", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, budget: { ratio: 0.01, minPerSecond: 1 } });
    const reasons: string[] = [];
    resilience.on("retry", (event) => reasons.push(`${event.key} ${event.reason}`));
    const work = failingThen(["thrown string", 42, 43]);
    await expect(clock.run(resilience.execute(work.fn))).rejects.toThrow();
    // One token: one retry, one event; the budget's refusal ends the call without a wait.
    expect(reasons).toEqual(["execute string"]);
    expect(work.calls()).toBe(2);
  });
});
