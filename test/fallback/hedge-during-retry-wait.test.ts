import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * docs/fallback.md, `hedge: { delay }`: the next endpoint starts when the
 * running one "has given no acceptable answer after `delay` (…, or it waits
 * to retry, a `Retry-After` too)".
 */
describe("a hedge while the running endpoint waits to retry", () => {
  it("starts the next endpoint at `delay`, during the first one's Retry-After wait, and that one wins", async () => {
    const clock = new TestClock(0);
    const started: Array<[string, number]> = [];
    const resilience = createResilience({
      clock,
      fetch: async (input) => {
        const url = String(input instanceof Request ? input.url : input);
        const host = new URL(url).host;
        started.push([host, clock.now()]);
        if (host === "p.example") return new Response("busy", { status: 503, headers: { "retry-after": "3" } });
        return new Response("ok");
      },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "q", url: "https://q.example/v1" },
          ],
        },
      ]),
    });
    const response = await clock.run(resilience.fetch("https://p.example/v1/x"));
    expect(await response.text()).toBe("ok");
    expect(getResilienceInfo(response)?.endpoint).toBe("q");
    // p answered 503 at 0 and waits 3 s to retry; q starts at 1 s and wins, so p is never asked again.
    expect(started).toEqual([
      ["p.example", 0],
      ["q.example", 1_000],
    ]);
  });
});
