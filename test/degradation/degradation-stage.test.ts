import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience } from "../../src/index.ts";

describe("degradation stage", () => {
  it("at full without a level header, hands the call to the transport without waiting a turn", async () => {
    const order: string[] = [];
    const fetch = async () => {
      order.push("transport");
      return new Response("ok");
    };
    const resilience = createResilience({ fetch, retry: false, degradation: degradation() });
    const response = resilience.fetch("https://a.example/x");
    order.push("returned");
    await response;
    expect(order).toEqual(["transport", "returned"]);
  });

  it("takes the breaker key from the caller's URL, before the rewrite changes its query (docs/degradation.md)", async () => {
    const sent: string[] = [];
    const fetch = async (input: RequestInfo | URL) => {
      sent.push(String(input instanceof Request ? input.url : input));
      return new Response("ok");
    };
    const resilience = createResilience({
      fetch,
      retry: false,
      breaker: { key: (url) => `${url.host} ${url.searchParams.get("q")}` },
      degradation: degradation({ rules: [{ params: { quality: { query: "q" } } }] }),
    });
    resilience.degradation.setLevel("minimal", "test");
    await resilience.fetch("https://a.example/x?q=1");
    // The request left rewritten, its breaker the one of the URL the caller asked for.
    expect(sent).toHaveLength(1);
    expect(new URL(sent[0] as string).searchParams.get("q")).toBe("0.4");
    expect(Object.keys(resilience.health().breakers)).toEqual(["a.example 1"]);
  });
});
