import { describe, expect, it } from "vitest";
import { CircuitOpenError } from "../../src/index.ts";
import { CircuitBreaker, type ResolvedBreakerPolicy } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

// 2 failures in a row open it for 1 s; two probes at a time, each leased for 700 ms.
const policy: ResolvedBreakerPolicy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 2,
  timeWindow: 5_000,
  probeTimeout: 700,
  failureRate: undefined,
  minimumCalls: 10,
};
// The same with the rate rule on, out of reach of these short runs.
const withRate: ResolvedBreakerPolicy = { ...policy, failureRate: 0.5, minimumCalls: 100 };

function openNow(breaker: CircuitBreaker): void {
  for (let i = 0; i < policy.failureThreshold; i++) breaker.failure(breaker.acquire(), "status 503");
  expect(breaker.state).toBe("open");
}

describe("CircuitBreaker.retryAt()", () => {
  it("is now while closed", async () => {
    const clock = new TestClock(5_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    expect(breaker.retryAt()).toBe(5_000);
    breaker.success(breaker.acquire());
    await clock.advance(250);
    expect(breaker.retryAt()).toBe(5_250);
  });

  it("is never in the past: once a probe's lease ran out unreported, it is when the re-opened circuit lets probes in", async () => {
    const clock = new TestClock(10_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    openNow(breaker);
    await clock.advance(1_000);
    breaker.acquire();
    breaker.acquire(); // both probe slots, leased until 11 700
    await clock.advance(1_000);
    expect(breaker.retryAt()).toBe(12_000 + policy.timeout);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    expect(breaker.retryAt()).toBe(12_000 + policy.timeout);
  });

  it("is now while a half-open circuit has a free probe slot", async () => {
    const clock = new TestClock(10_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    openNow(breaker);
    await clock.advance(1_000);
    breaker.acquire(); // one of two probe slots
    expect(breaker.toJSON()).toMatchObject({ state: "half_open", leases: [11_700] });
    expect(breaker.retryAt()).toBe(11_000);
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it("is when the earliest probe lease expires while every probe slot of a half-open circuit is taken", async () => {
    const clock = new TestClock(10_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    openNow(breaker);
    await clock.advance(1_000);
    breaker.acquire(); // leased until 11 700
    await clock.advance(100);
    breaker.acquire(); // leased until 11 800
    await clock.advance(200);
    expect(breaker.toJSON()).toMatchObject({ state: "half_open", leases: [11_700, 11_800] });
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.retryAt()).toBe(11_700);
    let refused: unknown;
    try {
      breaker.acquire();
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({ key: "k", retryAt: 11_700 });
  });

  it("is a full timeout away once one of the taken probe leases ran out, though another still runs", async () => {
    const clock = new TestClock(10_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    openNow(breaker);
    await clock.advance(1_000);
    breaker.acquire(); // leased until 11 700
    await clock.advance(100);
    breaker.acquire(); // leased until 11 800
    await clock.advance(650); // 11 750: the first lease ran out, the second has 50 ms left
    // The next request re-opens the circuit for `timeout`: not the expired lease's time, already past.
    expect(breaker.retryAt()).toBe(11_750 + policy.timeout);
  });
});

describe("CircuitBreaker permits and successes", () => {
  it("hands out one shared, frozen permit while closed, so the healthy path allocates nothing", () => {
    const breaker = new CircuitBreaker("k", withRate, new TestClock(0));
    const permit = breaker.tryAcquire();
    expect(permit).toEqual({ lease: null, gen: -1 });
    expect(Object.isFrozen(permit)).toBe(true);
    expect(breaker.acquire()).toBe(permit);
  });

  it("keeps no rate window when the rate rule is off", () => {
    const breaker = new CircuitBreaker("k", policy, new TestClock(0));
    for (let i = 0; i < 3; i++) breaker.success(breaker.acquire());
    expect(breaker.toJSON().window).toBeNull();
    expect(breaker.windowCounts()).toEqual({ calls: 0, failures: 0 });
  });

  it("counts a success reported after the circuit opened (a call admitted while closed) nowhere", () => {
    const breaker = new CircuitBreaker("k", withRate, new TestClock(0));
    const late = breaker.acquire();
    openNow(breaker);
    const before = breaker.toJSON();
    expect(before.window).toBeNull();
    breaker.success(late);
    expect(breaker.toJSON()).toEqual(before);
    expect(breaker.windowCounts()).toEqual({ calls: 0, failures: 0 });
  });

  it("windowCounts() includes successes not yet read through toJSON()", () => {
    const breaker = new CircuitBreaker("k", withRate, new TestClock(0));
    for (let i = 0; i < 3; i++) breaker.success(breaker.acquire());
    expect(breaker.windowCounts()).toEqual({ calls: 3, failures: 0 });
    expect(breaker.toJSON().window?.calls[9]).toBe(3);
  });
});

describe("CircuitBreaker.execute()", () => {
  const threshold1 = { ...withRate, failureThreshold: 1 };

  it("counts a call that rejects with its aborted signal's reason as neither success nor failure", async () => {
    const breaker = new CircuitBreaker("k", threshold1, new TestClock(0));
    const controller = new AbortController();
    const work = breaker.execute(() => {
      controller.abort();
      throw controller.signal.reason;
    }, controller.signal);
    await expect(work).rejects.toBe(controller.signal.reason);
    expect(breaker.state).toBe("closed");
    expect(breaker.windowCounts()).toEqual({ calls: 0, failures: 0 });
  });

  it("counts a call that fails with its own error after its signal aborted as a failure", async () => {
    const breaker = new CircuitBreaker("k", threshold1, new TestClock(0));
    const controller = new AbortController();
    const work = breaker.execute(() => {
      controller.abort();
      throw new Error("gpu oom");
    }, controller.signal);
    await expect(work).rejects.toThrow("gpu oom");
    expect(breaker.toJSON()).toMatchObject({ state: "open", reason: "1 failure in a row (last: Error)" });
  });

  it("counts an error isFailure turns down as a success, which ends a run of failures", async () => {
    const breaker = new CircuitBreaker("k", policy, new TestClock(0), { isFailure: (e) => !(e instanceof RangeError) });
    const fail = (error: Error) => expect(breaker.execute(() => Promise.reject(error))).rejects.toBe(error);
    await fail(new Error("down"));
    expect(breaker.toJSON().failures).toHaveLength(1);
    await fail(new RangeError("bad input"));
    expect(breaker.toJSON().failures).toHaveLength(0);
    await fail(new Error("down"));
    expect(breaker.toJSON()).toMatchObject({ state: "closed", failures: [0] });
  });

  it("gives an aborted probe's slot back for the next request", async () => {
    const clock = new TestClock(0);
    const breaker = new CircuitBreaker("k", { ...policy, halfOpenMaxCalls: 1 }, clock);
    openNow(breaker);
    await clock.advance(policy.timeout);
    const controller = new AbortController();
    const probe = breaker.execute(() => {
      expect(breaker.toJSON().leases).toHaveLength(1);
      controller.abort();
      throw controller.signal.reason;
    }, controller.signal);
    await expect(probe).rejects.toBe(controller.signal.reason);
    expect(breaker.toJSON()).toMatchObject({ state: "half_open", leases: [] });
    expect(breaker.tryAcquire()).toEqual({ lease: policy.timeout + policy.probeTimeout, gen: 2 });
  });
});

describe("CircuitBreaker.state: as a caller would see it now", () => {
  it("reads half_open once the timeout passed, and open again once a probe's lease ran out unreported", async () => {
    const clock = new TestClock(0);
    const breaker = new CircuitBreaker("k", policy, clock);
    openNow(breaker);
    await clock.advance(999);
    expect(breaker.state).toBe("open");
    await clock.advance(1);
    expect(breaker.state).toBe("half_open");
    breaker.acquire(); // a probe whose caller vanishes
    await clock.advance(699);
    expect(breaker.state).toBe("half_open");
    await clock.advance(1);
    expect(breaker.state).toBe("open");
    // The next request agrees: refused, the circuit re-opened.
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    expect(breaker.state).toBe("open");
  });
});

describe("CircuitBreaker: the rate rule is judged as a failure is counted", () => {
  it("50 failures then 50 successes leave it closed; the next failure opens it (docs/breakers.md)", () => {
    const clock = new TestClock(0);
    const rate = { ...withRate, failureThreshold: 1_000, timeWindow: 30_000 };
    const breaker = new CircuitBreaker("k", rate, clock);
    for (let i = 0; i < 50; i++) breaker.failure(breaker.acquire(), "status 503");
    for (let i = 0; i < 50; i++) breaker.success(breaker.acquire());
    expect(breaker.state).toBe("closed");
    breaker.failure(breaker.acquire(), "status 503");
    expect(breaker.state).toBe("open");
    expect(breaker.toJSON().reason).toBe("failure rate 0.50 over 101 calls (last: status 503)");
  });
});

describe("CircuitBreaker.isOpen(): open now, with what time did applied", () => {
  it("is false while closed, true while open, and turns an open circuit whose timeout passed half-open", async () => {
    const clock = new TestClock(10_000);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("k", policy, clock, { onChange: (c) => changes.push(`${c.from}→${c.to}`) });
    expect(breaker.isOpen()).toBe(false);
    openNow(breaker);
    expect(breaker.isOpen()).toBe(true);
    await clock.advance(1_000);
    expect(breaker.isOpen()).toBe(false);
    expect([breaker.toJSON().state, changes]).toEqual(["half_open", ["closed→open", "open→half_open"]]);
  });

  it("re-opens a half-open circuit whose probe lease ran out, with a free slot too, and takes no probe slot", async () => {
    const clock = new TestClock(10_000);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("k", policy, clock, { onChange: (c) => changes.push(`${c.to} ${c.reason}`) });
    openNow(breaker);
    await clock.advance(1_000);
    expect(breaker.isOpen()).toBe(false);
    expect(breaker.toJSON().leases).toEqual([]);
    breaker.acquire(); // one of two slots, leased until 11 700; never reported
    await clock.advance(700);
    // `state` reads open, and `retryAt()` says now (a slot is free): only applying time re-opens it.
    expect([breaker.state, breaker.retryAt()]).toEqual(["open", 11_700]);
    expect(breaker.isOpen()).toBe(true);
    expect(changes.at(-1)).toBe("open probe lease expired");
    expect(breaker.retryAt()).toBe(11_700 + policy.timeout);
  });
});
