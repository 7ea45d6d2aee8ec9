import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResolvedBreakerPolicy } from "../../src/core/options/breaker-options.ts";
import {
  type BreakerSnapshot,
  initialBreakerState,
  transition,
  windowCounts,
} from "../../src/policies/breaker-state.ts";
import { CircuitBreaker } from "../../src/policies/circuit-breaker.ts";
import { TestClock } from "../../src/testing/index.ts";

// A rate rule out of reach of short runs of failures in a row, so most runs
// stay closed and pile up successes between reads.
const policy = {
  failureThreshold: 4,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 5_000,
  probeTimeout: 700,
  failureRate: 0.6,
  minimumCalls: 6,
};

type Op = { kind: "advance"; ms: number } | { kind: "success" | "failure" | "read" };

const op: fc.Arbitrary<Op> = fc.oneof(
  // Steps below, across and far beyond a 500 ms bucket and the whole window.
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 7_000 }) }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("success" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("failure" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("read" as const) }) },
);

describe("a breaker's successes, counted in batches", () => {
  it("leave the same snapshot as the pure transition applied to each success in turn", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), fc.array(op, { maxLength: 120 }), (start, ops) => {
        let time = start;
        const clock = { now: () => time, setTimer: () => () => {} };
        const breaker = new CircuitBreaker("batch", policy, clock);
        let expected: BreakerSnapshot = initialBreakerState(time);
        for (const o of ops) {
          if (o.kind === "advance") {
            time += o.ms;
            continue;
          }
          if (o.kind === "read") {
            expect(breaker.toJSON()).toEqual(expected);
            continue;
          }
          const admitted = transition(expected, { type: "request" }, time, policy);
          const permit = breaker.tryAcquire();
          expect(permit !== undefined).toBe(admitted.admitted);
          expected = admitted.state;
          if (!permit) continue;
          const outcome =
            o.kind === "success" ? { type: "success" as const } : { type: "failure" as const, reason: "x" };
          expected = transition(expected, { ...outcome, lease: admitted.lease, gen: expected.gen }, time, policy).state;
          if (o.kind === "success") breaker.success(permit);
          else breaker.failure(permit, "x");
        }
        expect(breaker.toJSON()).toEqual(expected);
        expect(breaker.windowCounts()).toEqual(windowCounts(expected.window, time, policy.timeWindow));
      }),
      { numRuns: 400 },
    );
  });

  it("count a burst of successes across bucket edges where each one fell", () => {
    let time = 1_000;
    const breaker = new CircuitBreaker("edges", policy, { now: () => time, setTimer: () => () => {} });
    // 3 successes in the first 500 ms bucket, 2 in the next, none in the third, 1 in the fourth.
    for (const at of [1_000, 1_200, 1_499, 1_500, 1_999, 2_600]) {
      time = at;
      const permit = breaker.tryAcquire();
      if (!permit) throw new Error("refused while closed");
      breaker.success(permit);
    }
    const { window } = breaker.toJSON();
    expect(window?.calls.slice(-4)).toEqual([3, 2, 0, 1]);
    expect(breaker.windowCounts()).toEqual({ calls: 6, failures: 0 });
  });
});

/**
 * Successes at the given times (ms) through a breaker and through the pure
 * transition, one success input each; "read" compares the two snapshots.
 * Returns the breaker's snapshot at the end, after a last comparison.
 */
async function successesAt(
  p: ResolvedBreakerPolicy,
  steps: Array<number | "read">,
  start = 0,
): Promise<BreakerSnapshot> {
  const clock = new TestClock(start);
  const breaker = new CircuitBreaker("at", p, clock);
  let expected = initialBreakerState(start);
  for (const step of steps) {
    if (step === "read") {
      expect(breaker.toJSON()).toEqual(expected);
      continue;
    }
    await clock.advance(step - clock.now());
    breaker.success(breaker.acquire());
    expected = transition(expected, { type: "success", lease: null, gen: -1 }, step, p).state;
  }
  expect(breaker.toJSON()).toEqual(expected);
  return breaker.toJSON();
}

describe("a batch of successes holds only successes of one bucket", () => {
  it("counts two successes four buckets apart in their own buckets, before any window exists", async () => {
    const { window } = await successesAt(policy, [1_000, 3_000]);
    expect(window).toEqual({ start: 3_000, calls: [0, 0, 0, 0, 0, 1, 0, 0, 0, 1], failures: Array(10).fill(0) });
  });

  it("counts successes far past the window's start in their own bucket", async () => {
    // The window starts at 1 000; 1 001 is in its first bucket, 251 000 is 500 buckets later.
    const { window } = await successesAt(policy, [1_000, "read", 1_001, 251_000]);
    expect(window).toEqual({ start: 251_000, calls: [...Array(9).fill(0), 1], failures: Array(10).fill(0) });
  });

  it("counts successes in their own buckets on a clock that reads below zero", async () => {
    // A clock may pick any origin; TestClock takes a negative start.
    const { window } = await successesAt(policy, [-1_000, 1_000], -1_000);
    expect(window).toEqual({ start: 1_000, calls: [0, 0, 0, 0, 0, 1, 0, 0, 0, 1], failures: Array(10).fill(0) });
  });

  it("keeps buckets shorter than a millisecond apart (a 5 ms window)", async () => {
    const { window } = await successesAt({ ...policy, timeWindow: 5 }, [1_000, 1_001]);
    expect(window).toEqual({ start: 1_001, calls: [0, 0, 0, 0, 0, 0, 0, 1, 0, 1], failures: Array(10).fill(0) });
  });
});

describe("a breaker's rate window", () => {
  it("counts a success in the newest bucket, moved back to now, when the clock was set back before the window started", () => {
    // TestClock only moves forward; a wall clock can be set back.
    let time = 10_000;
    const breaker = new CircuitBreaker("set-back", policy, { now: () => time, setTimer: () => () => {} });
    let expected = initialBreakerState(time);
    const succeed = () => {
      breaker.success(breaker.acquire());
      expected = transition(expected, { type: "success", lease: null, gen: -1 }, time, policy).state;
    };
    succeed();
    expect(breaker.toJSON().window?.start).toBe(10_000);
    time = 9_000;
    succeed();
    expect(breaker.toJSON()).toEqual(expected);
    // The window keeps moving from the earlier time (docs/breakers.md "A clock set back").
    expect(breaker.toJSON().window).toEqual({
      start: 9_000,
      calls: [...Array(9).fill(0), 2],
      failures: Array(10).fill(0),
    });
    expect(breaker.windowCounts()).toEqual({ calls: 2, failures: 0 });
  });

  it("never changes a snapshot it has handed out", async () => {
    const clock = new TestClock(1_000);
    const breaker = new CircuitBreaker("frozen", policy, clock);
    breaker.success(breaker.acquire());
    const first = breaker.toJSON();
    const copy = structuredClone(first);
    // More outcomes in the same 500 ms bucket.
    await clock.advance(100);
    breaker.success(breaker.acquire());
    expect(breaker.windowCounts()).toEqual({ calls: 2, failures: 0 });
    await clock.advance(100);
    breaker.failure(breaker.acquire(), "x");
    expect(breaker.windowCounts()).toEqual({ calls: 3, failures: 1 });
    expect(first).toEqual(copy);
  });
});
