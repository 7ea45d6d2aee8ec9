import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FallbackChain, RetryBudget } from "../../src/policies/index.ts";

describe("retry budget (property)", () => {
  it("never goes negative and never allows more retries than ratio × requests + minPerSecond × time", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(
          fc.oneof(
            fc.constant({ op: "deposit" as const }),
            fc.constant({ op: "retry" as const }),
            fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 2_000 }) }),
          ),
          { maxLength: 400 },
        ),
        (ratio, minPerSecond, ops) => {
          let now = 0;
          const budget = new RetryBudget({ ratio, minPerSecond }, { now: () => now, setTimer: () => () => {} });
          let deposits = 0;
          let allowed = 0;
          for (const o of ops) {
            if (o.op === "deposit") {
              budget.deposit();
              deposits++;
            } else if (o.op === "retry") {
              if (budget.tryRetry()) allowed++;
            } else now += o.ms;
            if (budget.snapshot().tokens < 0) return false;
            // The free pool starts full (one second's worth) and refills at minPerSecond.
            if (allowed > ratio * deposits + minPerSecond * (1 + now / 1000) + 1e-9) return false;
          }
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("adaptive fallback order (property)", () => {
  it("never starves a recovered endpoint: after it has been idle a while, quality decides again", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            bestOk: fc.boolean(),
            otherOk: fc.boolean(),
            bestLatency: fc.integer({ min: 0, max: 120_000 }),
            otherLatency: fc.integer({ min: 0, max: 5_000 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (history) => {
          let now = 0;
          let plan = history[0] as (typeof history)[number];
          const clock = { now: () => now, setTimer: () => () => {} };
          const chain = new FallbackChain<number, string>("p", { order: "adaptive", clock });
          chain.add(
            () => {
              now += plan.bestLatency;
              if (!plan.bestOk) throw new Error("best failed");
              return "best";
            },
            { name: "best", expectedQuality: 1 },
          );
          chain.add(
            () => {
              now += plan.otherLatency;
              if (!plan.otherOk) throw new Error("other failed");
              return "other";
            },
            { name: "other", expectedQuality: 0.8 },
          );
          for (const step of history) {
            plan = step;
            await chain.run(0);
            now += 1_000;
          }
          // However badly "best" did, it has recovered and been idle for 15 minutes.
          now += 15 * 60_000;
          return chain.ordered()[0] === "best";
        },
      ),
      { numRuns: 300 },
    );
  });

  it("does prefer the endpoint that succeeds while the other keeps failing", async () => {
    let now = 0;
    const clock = { now: () => now, setTimer: () => () => {} };
    const chain = new FallbackChain<number, string>("q", { order: "adaptive", clock });
    chain.add(() => Promise.reject(new Error("down")), { name: "best", expectedQuality: 1 });
    chain.add(() => "ok", { name: "other", expectedQuality: 0.5 });
    for (let i = 0; i < 5; i++) {
      await chain.run(0);
      now += 1_000;
    }
    expect(chain.ordered()).toEqual(["other", "best"]);
  });
});
