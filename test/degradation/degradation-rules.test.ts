import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { ConfigError } from "../../src/index.ts";

describe("resolution ladder option", () => {
  it("accepts rungs written as digits and p, in either case", () => {
    expect(() => degradation({ resolutions: ["1080p", "720P", "5p"] })).not.toThrow();
  });

  it("refuses rungs with anything before the digits or after the p", () => {
    for (const rung of ["x1080p", "1080px", "p", "1080 p"]) {
      expect(() => degradation({ resolutions: [rung] }), rung).toThrow(
        new ConfigError(
          "degradation.resolutions.0",
          `expected a resolution such as "720p", received ${JSON.stringify(rung)}`,
        ),
      );
    }
  });
});

describe("a rule's match", () => {
  it("is refused when its scheme only ends in http(s) (no request is sent on it)", () => {
    for (const match of ["xhttps://gen.example/v1", "web+http://gen.example/v1"]) {
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).toThrow(ConfigError);
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).toThrow(
        "an http(s) URL the URL parser reads (one a request's URL can start with)",
      );
    }
    expect(() =>
      degradation({ rules: [{ match: "https://gen.example/v1", params: { steps: "steps" } }] }),
    ).not.toThrow();
  });
});
