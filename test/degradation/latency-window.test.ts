import { describe, expect, it } from "vitest";
import { LatencyWindow } from "../../src/degradation/latency-window.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

describe("LatencyWindow", () => {
  it("still counts a call made exactly one window ago, and drops it a millisecond later", async () => {
    const clock = new TestClock();
    const window = new LatencyWindow(clock, 1_000);
    window.record(50, true, clock.now());
    await clock.advance(1_000);
    expect(window.summary()).toEqual({ samples: 1, errorRate: 1, p95: 50 });
    await clock.advance(1);
    expect(window.summary()).toEqual({ samples: 0, errorRate: 0, p95: undefined });
  });
});
