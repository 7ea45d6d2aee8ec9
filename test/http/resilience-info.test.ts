import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";

describe("getResilienceInfo", () => {
  it("answers undefined, without throwing, for null or undefined (a call that gave no Response)", () => {
    expect(getResilienceInfo(null as unknown as Response)).toBeUndefined();
    expect(getResilienceInfo(undefined as unknown as Response)).toBeUndefined();
  });

  it("answers undefined for a Response the layer did not produce", () => {
    expect(getResilienceInfo(new Response("x"))).toBeUndefined();
  });

  it("counts the requests the layer started, across endpoints; a chain's `respond` answer is no attempt", async () => {
    const sent: string[] = [];
    const resilience = createResilience({
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
      fetch: async (input) => {
        sent.push(String(input));
        return new Response("busy", { status: 503 });
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "cached", respond: () => new Response("from cache") },
          ],
        },
      ]),
    });
    const res = await resilience.fetch("https://primary.example/v1/jobs");
    expect(await res.text()).toBe("from cache");
    expect(sent).toHaveLength(2);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "cached", fromFallback: true });
  });
});
