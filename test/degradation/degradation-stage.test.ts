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
});
