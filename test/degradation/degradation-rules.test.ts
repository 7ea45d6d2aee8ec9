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
