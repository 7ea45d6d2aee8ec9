import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";

describe("fallback(chains)", () => {
  it("lists the names of the chains it holds", () => {
    const stage = fallback([
      { name: "images", endpoints: [{ name: "a", url: "https://a.example/img" }] },
      { name: "video", endpoints: [{ name: "b", url: "https://a.example/video" }] },
    ]);
    expect(stage.chains).toEqual(["images", "video"]);
  });
});
