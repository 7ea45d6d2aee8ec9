import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BreakerSnapshot,
  initialBreakerState,
  transition,
  windowCounts,
} from "../../src/policies/breaker-state.ts";
import { CircuitBreaker } from "../../src/policies/circuit-breaker.ts";

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
