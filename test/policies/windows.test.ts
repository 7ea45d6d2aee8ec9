import { describe, expect, it } from "vitest";
import { LatencyWindow } from "../../src/degradation/latency-window.ts";
import { EndpointStats } from "../../src/policies/endpoint-stats.ts";
import { RollingWindow } from "../../src/policies/rolling-window.ts";

const clockAt = () => {
  let now = 0;
  return {
    clock: { now: () => now, setTimer: () => () => {} },
    set: (t: number) => {
      now = t;
    },
  };
};

describe("RollingWindow", () => {
  it("counts calls and failures inside the span, bucket by bucket", () => {
    const { clock, set } = clockAt();
    const w = new RollingWindow(clock, 12_000, 12); // 1 s buckets
    w.record(true);
    w.record(false);
    set(5_500);
    w.record(true);
    expect(w.counts()).toEqual({ total: 3, failed: 2 });
    expect(w.rate()).toBeCloseTo(2 / 3);
    set(12_500); // the first bucket (0–1 s) has left the span, the 5.5 s one has not
    expect(w.counts()).toEqual({ total: 1, failed: 1 });
    // Buckets leave whole: the 5–6 s bucket is in the window until 17 s, when the 17–18 s bucket opens.
    set(16_999);
    expect(w.counts()).toEqual({ total: 1, failed: 1 });
    set(17_000);
    expect(w.counts()).toEqual({ total: 0, failed: 0 });
    expect(w.rate()).toBe(0);
  });

  it("forgets everything after a long gap, and on clear()", () => {
    const { clock, set } = clockAt();
    const w = new RollingWindow(clock, 1_000, 4);
    for (let i = 0; i < 10; i++) w.record(i % 2 === 0);
    set(100_000);
    w.record(false);
    expect(w.counts()).toEqual({ total: 1, failed: 0 });
    w.clear();
    expect(w.counts()).toEqual({ total: 0, failed: 0 });
  });
});

describe("LatencyWindow", () => {
  it("reports samples, error rate and the 95th percentile inside the window", () => {
    const { clock, set } = clockAt();
    const w = new LatencyWindow(clock, 10_000);
    expect(w.summary()).toEqual({ samples: 0, errorRate: 0, p95: undefined });
    for (let i = 100; i >= 1; i--) w.record(i, i % 4 === 0, clock.now()); // out of order on purpose
    expect(w.summary()).toEqual({ samples: 100, errorRate: 0.25, p95: 95 });
    set(9_999);
    expect(w.summary().samples).toBe(100);
    set(10_001);
    w.record(7, true, clock.now());
    expect(w.summary()).toEqual({ samples: 1, errorRate: 1, p95: 7 });
  });

  it("keeps a bounded ring of the latest 256 calls", () => {
    const { clock } = clockAt();
    const w = new LatencyWindow(clock, 60_000);
    for (let i = 0; i < 300; i++) w.record(i < 44 ? 1_000_000 : 1, false, clock.now());
    const { samples, p95 } = w.summary();
    expect(samples).toBe(256);
    expect(p95).toBe(1); // the 44 slow ones were overwritten
    w.clear();
    expect(w.summary().samples).toBe(0);
  });
});

describe("EndpointStats", () => {
  it("counts calls, successes and mean latency exactly", () => {
    const s = new EndpointStats();
    expect(s.snapshot()).toEqual({ calls: 0, successes: 0, successRate: 0, meanLatencyMs: 0 });
    expect(s.recentSuccess(0)).toBe(1);
    expect(s.recentLatency(0)).toBe(0);
    s.record(true, 100, 0);
    s.record(false, 300, 0);
    expect(s.snapshot()).toEqual({ calls: 2, successes: 1, successRate: 0.5, meanLatencyMs: 200 });
  });

  it("keeps decaying averages: 20% per outcome, halving toward health every 60 s idle", () => {
    const s = new EndpointStats();
    s.record(false, 1_000, 0);
    expect(s.recentSuccess(0)).toBeCloseTo(0.8);
    expect(s.recentLatency(0)).toBe(1_000);
    s.record(true, 2_000, 0);
    expect(s.recentSuccess(0)).toBeCloseTo(0.84);
    expect(s.recentLatency(0)).toBeCloseTo(1_200);
    expect(s.recentSuccess(60_000)).toBeCloseTo(1 - 0.16 / 2);
    expect(s.recentLatency(60_000)).toBeCloseTo(600);
    expect(s.recentSuccess(-5)).toBeCloseTo(0.84); // a clock that steps back changes nothing
  });
});
