import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { rulePicker } from "../../src/degradation/rule-picker.ts";
import { createResilience } from "../../src/index.ts";

const rule = (match: string | undefined, name: string) => ({ match, params: { steps: name } });

describe("rulePicker: a rule's match is a URL prefix read as a chain's is", () => {
  const pick = rulePicker([
    rule(undefined, "global"),
    rule("https://gen.example/v1", "v1"),
    rule("https://gen.example/v1/images", "images"),
    rule("https://other.example/q?model=", "query"),
  ]);
  const picked = (url: string) => pick(url)?.params.steps;

  it.each([
    ["the prefix itself", "https://gen.example/v1", "v1"],
    ["a path under it", "https://gen.example/v1/video", "v1"],
    ["its query", "https://gen.example/v1?x=1", "v1"],
    ["the longest", "https://gen.example/v1/images/x", "images"],
    ["another case and the default port", "HTTPS://GEN.example:443/v1/video", "v1"],
    ["dot segments", "https://gen.example/v2/../v1/video", "v1"],
    ["a prefix into the query", "https://other.example/q?model=x", "query"],
    ["not a longer segment", "https://gen.example/v1beta/models", "global"],
    ["not a longer host", "https://gen.example.evil/v1", "global"],
    ["not another host", "https://other.example/v1", "global"],
    ["a URL the parser refuses, compared as written", "https://gen.example:99999/v1", "global"],
  ])("%s", (_what, url, expected) => {
    expect(picked(url)).toBe(expected);
  });

  it("refuses a second rule without match, or one with the same match as the URL parser reads it", () => {
    for (const rules of [
      [rule(undefined, "a"), rule(undefined, "b")],
      [rule("https://gen.example/v1", "a"), rule("HTTPS://gen.example:443/v1", "b")],
    ])
      expect(() => rulePicker(rules)).toThrow(
        "degradation.rules: expected one rule per `match` (a second never applies), received an array",
      );
  });

  it("without a global rule, a URL no match takes gets none", () => {
    expect(rulePicker([rule("https://gen.example/v1", "v1")])("https://gen.example/v10")).toBeUndefined();
    expect(rulePicker([])("https://gen.example/v1")).toBeUndefined();
  });
});

describe("degradation rules through resilience.fetch", () => {
  async function stepsSent(url: string | Request): Promise<unknown> {
    let body = "";
    const resilience = createResilience({
      retry: false,
      fetch: async (input, init) => {
        body = await new Request(input, init).text();
        return new Response("ok");
      },
      degradation: degradation({
        rules: [{ match: "https://gen.example/v1", params: { steps: "parameters.steps" } }],
      }),
    });
    resilience.degradation.setLevel("minimal", "test");
    const init = { method: "POST", body: JSON.stringify({ parameters: { steps: 40 } }) };
    await (typeof url === "string" ? resilience.fetch(url, init) : resilience.fetch(new Request(url, init)));
    return JSON.parse(body).parameters.steps;
  }

  it("rewrites a call however its URL is written, a string or a Request alike", async () => {
    const rewritten = await stepsSent("https://gen.example/v1/images");
    expect(rewritten).toBeLessThan(40);
    expect(await stepsSent("HTTPS://GEN.EXAMPLE/v1/images")).toBe(rewritten);
    expect(await stepsSent(new Request("HTTPS://GEN.EXAMPLE/v1/images"))).toBe(rewritten);
  });

  it("leaves a call under a longer segment alone (…/v1beta is not …/v1)", async () => {
    expect(await stepsSent("https://gen.example/v1beta/images")).toBe(40);
  });
});
