import { describe, expect, it } from "vitest";
import type { EndpointStats } from "../../src/policies/endpoint-stats.ts";
import { adaptiveOrder } from "../../src/policies/endpoint-stats.ts";

/** An endpoint whose recent success rate is `success` and whose latency costs nothing. */
const endpoint = (name: string, success: number, expectedQuality = 1) => ({
  name,
  expectedQuality,
  stats: { recentSuccess: () => success, recentLatency: () => 0 } as unknown as EndpointStats,
});
const order = (...entries: ReturnType<typeof endpoint>[]) => adaptiveOrder(entries, 0).map((e) => e.name);

describe("adaptiveOrder", () => {
  it("ranks by score; scores within 0.05 of the best of their run tie, broken by quality, then configured order", () => {
    expect(order(endpoint("a", 0.5), endpoint("b", 1))).toEqual(["b", "a"]);
    expect(order(endpoint("a", 0.95), endpoint("b", 1))).toEqual(["a", "b"]); // 0.05 itself is a tie
    expect(order(endpoint("a", 0.96, 0.5), endpoint("b", 1, 0.9))).toEqual(["b", "a"]);
  });

  it("does not chain ties: an endpoint more than 0.05 below the best of its run ranks after that run", () => {
    // a ties b and b ties c, but a is 0.056 below c: judged pair by pair, the order hung on the sort's
    // comparisons and kept the failing a first (a, b, c).
    for (const configured of [
      ["a", "b", "c"],
      ["c", "b", "a"],
      ["b", "a", "c"],
    ]) {
      const scores: Record<string, number> = { a: 0.944, b: 0.985, c: 1 };
      const ranked = order(...configured.map((name) => endpoint(name, scores[name] as number)));
      expect(ranked.at(-1)).toBe("a");
      expect(ranked.slice(0, 2)).toEqual(configured.filter((name) => name !== "a"));
    }
  });
});
