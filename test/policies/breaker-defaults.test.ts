import { describe, expect, it } from "vitest";
import { breakerDefaults, resolveBreaker } from "../../src/core/options/breaker-options.ts";
import { seededRandom } from "../../src/core/random.ts";
import { CircuitBreaker } from "../../src/policies/circuit-breaker.ts";

/**
 * The default breaker under the traffic its defaults were chosen for: calls
 * of up to three attempts (the default `maxAttempts`), one after another,
 * each attempt failing at random with probability `p` (seeded). Time moves
 * 50 ms per attempt and `retryDelay` ms before each retry. Returns how many calls were
 * served, refused by the breaker, and the attempts sent.
 */
function run(p: number, calls: number, seed: number, policy = resolveBreaker(undefined), retryDelay = 500) {
  if (!policy) throw new Error("breaker off");
  let now = 0;
  const clock = { now: () => now, setTimer: () => () => {} };
  const breaker = new CircuitBreaker("host", policy, clock);
  const random = seededRandom(seed);
  let served = 0;
  let refused = 0;
  let attempts = 0;
  let firstRefusedCall: number | null = null;
  for (let call = 1; call <= calls; call++) {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const permit = breaker.tryAcquire();
      if (!permit) {
        if (attempt === 1) {
          refused++;
          firstRefusedCall ??= call;
        }
        break;
      }
      attempts++;
      now += 50;
      if (random() < p) {
        breaker.failure(permit, "status 503");
        now += retryDelay;
      } else {
        breaker.success(permit);
        served++;
        break;
      }
    }
  }
  return { served, refused, attempts, firstRefusedCall, breaker };
}

describe("default breaker policy", () => {
  it("is 12 failures in a row or a 50% failure rate over at least 100 attempts in 30 s, open 30 s", () => {
    expect(breakerDefaults).toMatchObject({
      failureThreshold: 12,
      failureRate: 0.5,
      minimumCalls: 100,
      timeWindow: 30_000,
      timeout: 30_000,
      successThreshold: 2,
      halfOpenMaxCalls: 3,
    });
  });

  it("never refuses a call of an API failing 10% of attempts at random (2,000 calls, 5 seeds)", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = run(0.1, 2_000, seed);
      expect(r.refused).toBe(0);
      expect(r.served / 2_000).toBeGreaterThanOrEqual(0.995);
    }
  });

  it("never refuses a call of an API failing 30% of attempts at random (2,000 calls, 5 seeds)", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const withBreaker = run(0.3, 2_000, seed);
      expect(withBreaker.refused).toBe(0);
      // Served exactly as many as the same retries with no breaker at all (a breaker that never opens).
      const never = run(0.3, 2_000, seed, {
        ...breakerDefaults,
        failureThreshold: 1e9,
        failureRate: 1,
        isFailure: undefined,
        key: undefined,
      });
      expect(withBreaker.served).toBe(never.served);
    }
  });

  it("opens on a full outage during the fourth call (12 attempts) and refuses the fifth without sending", () => {
    const r = run(1, 10, 1);
    expect(r.firstRefusedCall).toBe(5);
    expect(r.attempts).toBe(12);
    expect(r.breaker.toJSON()).toMatchObject({
      state: "open",
      reason: "12 failures in a row (last: status 503)",
      trip: { consecutive: 12, failures: 12, calls: 12, rate: 1, lastError: "status 503" },
    });
  });

  it("opens on the failure rate when a host fails most attempts without long runs", () => {
    // 70% failing, busy enough for 100 attempts in 30 s (no retry delay here): the rate rule acts
    // at the 100th attempt, before a run of 12 (1.4% per start) comes up with this seed.
    const r = run(0.7, 200, 9, resolveBreaker(undefined), 0);
    const s = r.breaker.toJSON();
    expect(r.refused).toBeGreaterThan(0);
    expect(s.state).toBe("open");
    expect(s.reason).toMatch(/^failure rate 0\.\d\d over 10\d calls/);
    expect(s.trip?.calls).toBeGreaterThanOrEqual(100);
    expect(s.trip?.rate).toBeGreaterThanOrEqual(0.5);
  });

  it("a success ends a run: 11 failures, a success, 11 failures leave it closed", () => {
    const policy = resolveBreaker(undefined);
    if (!policy) throw new Error("breaker off");
    const breaker = new CircuitBreaker("host", policy, { now: () => 0, setTimer: () => () => {} });
    const fail = (n: number) => {
      for (let i = 0; i < n; i++) breaker.failure(breaker.acquire(), "status 503");
    };
    fail(11);
    breaker.success(breaker.acquire());
    fail(11);
    expect(breaker.toJSON()).toMatchObject({ state: "closed", failures: expect.any(Array) });
    expect(breaker.toJSON().failures).toHaveLength(11);
    fail(1);
    expect(breaker.toJSON().state).toBe("open");
  });
});
