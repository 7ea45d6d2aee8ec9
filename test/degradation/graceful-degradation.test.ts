import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

describe("automatic evaluation", () => {
  it("evaluates the triggers at most once a second as calls settle", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: async () => new Response("busy", { status: 503 }),
      degradation: degradation({
        minSamples: 1,
        stepInterval: 0,
        browserSignals: false,
        triggers: { errorRate: 0.1, memoryUsage: 1, cpuUsage: 1 },
      }),
    });
    await resilience.fetch("https://a.example/x");
    expect(resilience.degradation.levelName()).toBe("high");
    await clock.advance(999);
    await resilience.fetch("https://a.example/x");
    expect(resilience.degradation.levelName()).toBe("high");
    await clock.advance(1);
    await resilience.fetch("https://a.example/x");
    expect(resilience.degradation.levelName()).toBe("medium");
  });
});
