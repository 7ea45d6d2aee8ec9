import { describe, expect, it } from "vitest";
import { getResilienceInfo } from "../../src/index.ts";

describe("getResilienceInfo", () => {
  it("answers undefined, without throwing, for null or undefined (a call that gave no Response)", () => {
    expect(getResilienceInfo(null as unknown as Response)).toBeUndefined();
    expect(getResilienceInfo(undefined as unknown as Response)).toBeUndefined();
  });

  it("answers undefined for a Response the layer did not produce", () => {
    expect(getResilienceInfo(new Response("x"))).toBeUndefined();
  });
});
