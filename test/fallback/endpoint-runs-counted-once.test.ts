/**
 * docs/fallback.md on a chain's per-endpoint statistics: an endpoint run
 * counts once, however many attempts its retries made, while its host's
 * breaker counts each attempt.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("a chain's endpoint statistics beside its host's breaker", () => {
  it("count one run where the breaker counts each attempt", async () => {
    const guide = readFileSync(new URL("../../docs/fallback.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "an endpoint's run counts once, however many attempts its retries made, where its host's breaker counts each attempt",
    );
    const clock = new TestClock();
    const statuses = [503, 503, 200];
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, jitter: "none" },
      fetch: async () => new Response("ok", { status: statuses.shift() ?? 200 }),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const response = await clock.run(layer.fetch("https://a.example/v1"));
    expect(response.status).toBe(200);
    expect(statuses).toEqual([]);
    const stats = layer.fallback.chain("gen").statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 1, successRate: 1 });
    expect(stats.fallbacks.b?.calls ?? 0).toBe(0);
    const breaker = layer.health().breakers["a.example"];
    expect(breaker).toMatchObject({ state: "closed" });
    expect(breaker?.failureCount).toBe(2);
  });
});
