import { describe, expect, it } from "vitest";
import { ChainRouter } from "../../src/fallback/chain-router.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

describe("choosing a chain and its order", () => {
  it("sends a URL under a first endpoint URL that ends with a slash down that chain", () => {
    const chains = [{ name: "c", endpoints: [{ name: "a", url: "https://a.example/v1/" }] }];
    const router = new ChainRouter(chains, new TestClock(), async () => new Response());
    expect(router.match("https://a.example/v1/jobs")?.rest).toBe("jobs");
  });

  it("tries, in adaptive order with no history, the endpoint of higher expected quality first", () => {
    const resilience = createResilience({
      fetch: async () => new Response("ok"),
      fallback: fallback([
        {
          name: "c",
          order: "adaptive",
          endpoints: [
            { name: "draft", url: "https://a.example/v1", expectedQuality: 0.5 },
            { name: "best", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    expect(resilience.fallback.chain("c").ordered()).toEqual(["best", "draft"]);
  });
});
