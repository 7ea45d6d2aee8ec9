import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

/**
 * An endpoint whose URL carries its own query (an API key as `?key=`, as
 * some providers take it): the chain is chosen by the URL before that
 * query, and each endpoint gets the caller's path below its own, its own
 * query first, then the caller's.
 */
describe("endpoints with a query in their url", () => {
  it("the first endpoint's query does not stop the chain matching, and each endpoint keeps its own query", async () => {
    const { fetch, sent } = recordingFetch((s) =>
      s.url.startsWith("https://up.example") ? new Response("busy", { status: 503 }) : new Response("ok"),
    );
    const resilience = createResilience({
      fetch,
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "up", url: "https://up.example/v1?key=K" },
            { name: "spare", url: "https://spare.example/v2?key=S" },
          ],
        },
      ]),
    });
    const res = await resilience.fetch("https://up.example/v1/models/m:generate?alt=sse");
    expect(await res.text()).toBe("ok");
    expect(sent.map((s) => s.url)).toEqual([
      "https://up.example/v1/models/m:generate?key=K&alt=sse",
      "https://spare.example/v2/models/m:generate?key=S&alt=sse",
    ]);
  });

  it("a URL only sharing the prefix's text does not select the chain", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({
      fetch,
      retry: false,
      fallback: fallback([{ name: "gen", endpoints: [{ name: "up", url: "https://up.example/v1?key=K" }] }]),
    });
    await resilience.fetch("https://up.example/v10/x");
    expect(sent.map((s) => s.url)).toEqual(["https://up.example/v10/x"]);
  });
});
