import { describe, expect, it } from "vitest";
import { Analytics } from "../../src/http/analytics.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("Analytics (StoryCore-Engine's error_analytics)", () => {
  it("counts 5xx, 429 and errors as failures, anything else as a success", () => {
    const clock = new TestClock(0);
    const analytics = new Analytics(clock);
    for (const status of [200, 204, 302, 400, 404, 428]) analytics.record("a", "https://a/x", status, undefined, 1);
    for (const status of [429, 500, 503]) analytics.record("a", "https://a/x", status, undefined, 1);
    analytics.record("a", "https://a/x", undefined, new TypeError("fetch failed"), 1);
    expect(analytics.totals()).toEqual({ calls: 10, failures: 4, window: { total: 10, failed: 4 } });
    expect(analytics.errorRate()).toBeCloseTo(0.4);
    expect(analytics.recentErrors().map((e) => e.status ?? e.error)).toEqual([429, 500, 503, "TypeError"]);
  });

  it("records each failure with its time, key, duration and a URL without query or fragment", async () => {
    const clock = new TestClock(1_000);
    const analytics = new Analytics(clock);
    await clock.advance(250);
    analytics.record("api.example", "https://api.example/v1/img?api_key=secret#frag", 503, undefined, 42);
    analytics.record("api.example", "https://api.example/v1/img", undefined, "a string thrown", 7);
    expect(analytics.recentErrors()).toEqual([
      {
        time: 1_250,
        key: "api.example",
        url: "https://api.example/v1/img",
        status: 503,
        error: undefined,
        durationMs: 42,
      },
      {
        time: 1_250,
        key: "api.example",
        url: "https://api.example/v1/img",
        status: undefined,
        error: "string",
        durationMs: 7,
      },
    ]);
  });

  it("keeps the last 50 failures only, oldest dropped first, and hands out a copy", () => {
    const analytics = new Analytics(new TestClock(0));
    for (let i = 0; i < 51; i++) analytics.record("k", `https://a/${i}`, 500, undefined, i);
    const errors = analytics.recentErrors();
    expect(errors).toHaveLength(50);
    expect([errors[0]?.url, errors[49]?.url]).toEqual(["https://a/1", "https://a/50"]);
    errors.length = 0;
    expect(analytics.recentErrors()).toHaveLength(50);
  });

  it("forgets the window after a minute, and everything on clearHistory()", async () => {
    const clock = new TestClock(0);
    const analytics = new Analytics(clock);
    analytics.record("k", "https://a/", 500, undefined, 1);
    await clock.advance(61_000);
    expect(analytics.errorRate()).toBe(0);
    expect(analytics.totals()).toEqual({ calls: 1, failures: 1, window: { total: 0, failed: 0 } });
    analytics.record("k", "https://a/", 500, undefined, 1);
    analytics.clearHistory();
    expect(analytics.totals()).toEqual({ calls: 0, failures: 0, window: { total: 0, failed: 0 } });
    expect(analytics.recentErrors()).toEqual([]);
  });
});
