import { describe, expect, it } from "vitest";
import { standIn } from "../../src/http/send/stand-in.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("a response standing in for another", () => {
  it("reports the url and redirected it was given, and so does every clone of it", async () => {
    const copy = standIn(new Response("body"), "https://api.example/v1/x", true);
    const clone = copy.clone();
    const again = clone.clone();
    for (const r of [copy, clone, again]) expect([r.url, r.redirected]).toEqual(["https://api.example/v1/x", true]);
    expect(await again.text()).toBe("body");
    expect(await copy.text()).toBe("body");
  });

  it("a redirect the layer followed: the answer's clone is redirected, from the last hop's URL", async () => {
    const fetch = async (input: RequestInfo | URL) =>
      String(input).endsWith("/from")
        ? new Response(null, { status: 302, headers: { location: "https://api.example/to" } })
        : new Response("done");
    const resilience = createResilience({ clock: new TestClock(), fetch, redirects: "library" });
    const response = await resilience.fetch("https://api.example/from");
    const clone = response.clone();
    expect([clone.url, clone.redirected]).toEqual(["https://api.example/to", true]);
    expect(await clone.text()).toBe("done");
  });
});
