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

describe("the first endpoint's own parameters, however the caller re-encodes them", () => {
  /** The URLs each endpoint was sent, the first answering 503 so the call moves on. */
  const sent = async (first: string, call: string) => {
    const urls: string[] = [];
    const resilience = createResilience({
      retry: { maxAttempts: 1 },
      breaker: false,
      fetch: async (input) => {
        const url = input instanceof Request ? input.url : String(input);
        urls.push(url);
        return new Response(null, { status: url.startsWith("https://a.example") ? 503 : 200 });
      },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: first },
            { name: "b", url: "https://b.example/v2" },
          ],
        },
      ]),
    });
    await resilience.fetch(call);
    return urls;
  };

  // A `+` is a space to a form and itself to a URL: written `%2B` by the caller, it is still the endpoint's `+`.
  it.each([
    ["with a value", "sig=a+b", "sig=a%2Bb"],
    ["without `=`", "tok+en", "tok%2Ben"],
    ["with an empty name", "=v+w", "=v%2Bw"],
  ])("%s: left out for the next endpoint", async (_, own, written) => {
    const urls = await sent(`https://a.example/v1?${own}`, `https://a.example/v1/x?${written}&q=1`);
    expect(urls).toEqual([`https://a.example/v1/x?${own}&q=1`, "https://b.example/v2/x?q=1"]);
  });

  it.each([
    ["another value", "sig=a+b", "sig=a%2Bc"],
    ["a name that only ends like it", "tok+en", "xtok%2Ben"],
    ["a value where the name was", "=v+w", "v%2Bw="],
    // Split where written, then decoded: an encoded `=` is part of the name, `=` and `+` alike.
    ["a name holding the value's text", "=v+w", "%3Dv%2Bw"],
    ["a name and value that join to its text", "tok+en", "tok%2Be=tok%2Ben"],
  ])("%s: the caller's, sent on", async (_, own, written) => {
    const urls = await sent(`https://a.example/v1?${own}`, `https://a.example/v1/x?${written}&q=1`);
    expect(urls.at(-1)).toBe(`https://b.example/v2/x?${written}&q=1`);
  });
});
