import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { RetryBudget } from "../../src/policies/index.ts";
import { status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();

describe("retry budget", () => {
  it("refuses a retry when empty, without waiting", () => {
    const clock = new TestClock();
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0 }, clock);
    expect(budget.tryRetry()).toBe(false);
    budget.deposit();
    expect(budget.tryRetry()).toBe(false);
    budget.deposit();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot()).toMatchObject({ retriesAllowed: 1, retriesDenied: 2 });
  });

  it("refills minPerSecond free retries a second, capped at one second's worth", async () => {
    const clock = new TestClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 2 }, clock);
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
    await clock.advance(500);
    expect([budget.tryRetry(), budget.tryRetry()]).toEqual([true, false]);
    await clock.advance(60_000);
    expect(budget.snapshot().tokens).toBe(2);
  });

  it("deposit returns how many requests it kept: none with a ratio of 0, and refuses a count that is no number", () => {
    const none = new RetryBudget({ ratio: 0, minPerSecond: 0 }, new TestClock());
    expect(none.deposit()).toBe(0);
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0 }, new TestClock());
    expect(budget.deposit(2)).toBe(2);
    for (const count of [Number.NaN, Number.POSITIVE_INFINITY, "1"]) {
      expect(() => budget.deposit(count as number)).toThrow(
        /^RetryBudget#deposit: count must be a finite number, got /,
      );
    }
    // Named with its type: a string "1" does not read as the number 1.
    expect(() => budget.deposit("1" as unknown as number)).toThrow("got string 1");
    expect(budget.deposit(-1)).toBe(-1);
    expect(budget.tryRetry()).toBe(false);
    expect(budget.deposit()).toBe(1);
    expect(budget.tryRetry()).toBe(true);
  });

  it("takes a fractional count as that share of a request, and a retry may leave a fraction", () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0 }, new TestClock());
    expect(budget.deposit(0.5)).toBe(0.5);
    expect(budget.snapshot().tokens).toBe(0.25);
    expect(budget.deposit(1.5)).toBe(1.5);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot().tokens).toBe(0);
    const third = new RetryBudget({ ratio: 0.3, minPerSecond: 0 }, new TestClock());
    third.deposit(4);
    expect(third.tryRetry()).toBe(true);
    // 4 - 1 / 0.3 requests left: the cap keeps 100 minus that, a fraction, and taking it back is exact.
    const kept = third.deposit(200);
    expect(Number.isInteger(kept)).toBe(false);
    expect(third.deposit(-kept)).toBe(-kept);
    expect(third.snapshot().tokens).toBeCloseTo(0.2, 12);
  });

  it("counts a token whole only above 1 - 1e-9 (a rounding error), not at it", () => {
    const budget = new RetryBudget({ ratio: 1 - 1e-9, minPerSecond: 0 }, new TestClock());
    budget.deposit();
    expect(budget.tryRetry()).toBe(false);
    budget.deposit();
    expect(budget.tryRetry()).toBe(true);
  });

  it("caps earned tokens at the credit of the last 100 requests", () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new TestClock());
    for (let i = 0; i < 10_000; i++) budget.deposit();
    expect(budget.snapshot().tokens).toBeCloseTo(10);
  });

  it("alone (breakers off) keeps a full outage near 1.1 attempts per call", async () => {
    const upstream = route(server, "GET", "https://down.example/x", status(503));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      breaker: false,
      budget: { ratio: 0.1, minPerSecond: 0 },
      retry: { initialDelay: 1, maxDelay: 1 },
    });
    const calls = 200;
    await clock.run(Promise.all(Array.from({ length: calls }, () => resilience.fetch("https://down.example/x"))));
    expect(upstream.count() / calls).toBeLessThanOrEqual(1.1);
    expect(upstream.count()).toBeGreaterThan(calls);
    expect(resilience.health().budget?.retriesDenied).toBeGreaterThan(0);
  });

  it("budget: false leaves retries to maxAttempts alone", async () => {
    const upstream = route(server, "GET", "https://down.example/y", status(503));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      budget: false,
      breaker: false,
      retry: { initialDelay: 1, maxDelay: 1 },
    });
    await clock.run(Promise.all(Array.from({ length: 50 }, () => resilience.fetch("https://down.example/y"))));
    expect(upstream.count()).toBe(150);
    expect(resilience.health().budget).toBeNull();
  });
});
