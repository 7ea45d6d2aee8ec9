import { describe, expect, it } from "vitest";
import { isNetworkError } from "../../src/http/send/classify.ts";

describe("isNetworkError", () => {
  it("counts any TypeError, whatever name a subclass gives it", () => {
    class TransportError extends TypeError {
      override name = "TransportError";
    }
    expect(isNetworkError(new TransportError("socket hang up"))).toBe(true);
  });

  it("answers false, without throwing, for null, undefined and primitives", () => {
    expect(isNetworkError(null)).toBe(false);
    expect(isNetworkError(undefined)).toBe(false);
    expect(isNetworkError("TypeError")).toBe(false);
  });
});
