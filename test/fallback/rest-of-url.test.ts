/**
 * What each endpoint of a chain receives after the chain's prefix: the path,
 * the query and the fragment of the caller's URL, and the first endpoint's
 * own query once (docs/fallback.md). A stub transport records the URL each
 * attempt is sent to, fragment included (a server never sees it).
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A layer whose chain is primary `{primary}{own}` (`https://a.example/v1`) then spare `https://b.example/v2`; the primary answers 503. */
function layer(own = "", primary = "https://a.example/v1") {
  const clock = new TestClock(0);
  const sent: string[] = [];
  const resilience = createResilience({
    clock,
    retry: false,
    fetch: async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      sent.push(url);
      return new Response("x", { status: url.startsWith("https://a.example") ? 503 : 200 });
    },
    fallback: fallback([
      {
        name: "gen",
        endpoints: [
          { name: "primary", url: `${primary}${own}` },
          { name: "spare", url: "https://b.example/v2" },
        ],
      },
    ]),
  });
  const call = async (url: string): Promise<string[]> => {
    sent.length = 0;
    await clock.run(resilience.fetch(url));
    return [...sent];
  };
  return { call };
}

describe("the rest of the caller's URL, endpoint by endpoint", () => {
  it.each([
    ["https://a.example/v1", ["https://a.example/v1", "https://b.example/v2"]],
    ["https://a.example/v1?x=1", ["https://a.example/v1?x=1", "https://b.example/v2?x=1"]],
    ["https://a.example/v1?x", ["https://a.example/v1?x", "https://b.example/v2?x"]],
    ["https://a.example/v1#f", ["https://a.example/v1#f", "https://b.example/v2#f"]],
    ["https://a.example/v1/jobs?x=1#f", ["https://a.example/v1/jobs?x=1#f", "https://b.example/v2/jobs?x=1#f"]],
    // A fragment before a question mark: the "?" is part of the fragment.
    ["https://a.example/v1/jobs#a?b", ["https://a.example/v1/jobs#a?b", "https://b.example/v2/jobs#a?b"]],
  ])("%s goes to each endpoint with its path, query and fragment", async (url, expected) => {
    expect(await layer().call(url)).toEqual(expected);
  });

  it.each([
    // The whole URL of the first endpoint: its key once, and to no other endpoint.
    ["https://a.example/v1?key=K", ["https://a.example/v1?key=K", "https://b.example/v2"]],
    ["https://a.example/v1?key=K&x=1", ["https://a.example/v1?key=K&x=1", "https://b.example/v2?x=1"]],
    ["https://a.example/v1?key=K#f", ["https://a.example/v1?key=K#f", "https://b.example/v2#f"]],
    // Another value of the same name is the caller's own parameter: it goes everywhere.
    ["https://a.example/v1?key=K2", ["https://a.example/v1?key=K&key=K2", "https://b.example/v2?key=K2"]],
    ["https://a.example/v1/jobs?x=1", ["https://a.example/v1/jobs?key=K&x=1", "https://b.example/v2/jobs?x=1"]],
  ])("with the first endpoint's own ?key=K, %s is sent as the endpoints' own", async (url, expected) => {
    expect(await layer("?key=K").call(url)).toEqual(expected);
  });
});

describe("slashes below a first URL that ends in `/`, or is a bare origin", () => {
  // The first endpoint gets the URL called, every slash of it; the spare the same path below the prefix.
  it.each([
    ["https://a.example", "https://a.example//x", ["https://a.example//x", "https://b.example/v2//x"]],
    ["https://a.example", "https://a.example//", ["https://a.example//", "https://b.example/v2//"]],
    ["https://a.example", "https://a.example/x", ["https://a.example/x", "https://b.example/v2/x"]],
    ["https://a.example", "https://a.example/", ["https://a.example", "https://b.example/v2"]],
    ["https://a.example/", "https://a.example//x?q=1", ["https://a.example//x?q=1", "https://b.example/v2//x?q=1"]],
    ["https://a.example/v1/", "https://a.example/v1//x", ["https://a.example/v1//x", "https://b.example/v2//x"]],
    ["https://a.example/v1/", "https://a.example/v1//", ["https://a.example/v1//", "https://b.example/v2//"]],
    ["https://a.example/v1/", "https://a.example/v1/x", ["https://a.example/v1/x", "https://b.example/v2/x"]],
    ["https://a.example/v1/", "https://a.example/v1/", ["https://a.example/v1/", "https://b.example/v2"]],
  ])("a chain at %s: %s is sent as the URL called, then below the spare's", async (primary, url, expected) => {
    expect(await layer("", primary).call(url)).toEqual(expected);
  });
});
