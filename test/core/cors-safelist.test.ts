import { describe, expect, it } from "vitest";
import { isCorsSafelisted } from "../../src/core/cors-safelist.ts";

describe("isCorsSafelisted: the Fetch standard's safelist, by name and value", () => {
  it("content-type: a form or text type, parameters after `;` allowed", () => {
    expect(isCorsSafelisted("content-type", "text/plain;charset=utf-8")).toBe(true);
    expect(isCorsSafelisted("content-type", " Multipart/Form-Data ; boundary=x")).toBe(true);
    expect(isCorsSafelisted("content-type", "application/json")).toBe(false);
    expect(isCorsSafelisted("content-type", "text/plainx")).toBe(false);
  });

  it("range: one range whose last byte, when given, is not before the first, compared as whole numbers", () => {
    const range = (value: string) => isCorsSafelisted("range", value);
    expect(range("bytes=0-")).toBe(true);
    expect(range("bytes=5-5")).toBe(true);
    expect(range("bytes=5-4")).toBe(false);
    // Leading zeros do not count; inner zeros do.
    expect(range("bytes=007-10")).toBe(true);
    expect(range("bytes=100-1000")).toBe(true);
    expect(range("bytes=1000-100")).toBe(false);
    expect(range("bytes=100-0100")).toBe(true);
    expect(range("bytes=0100-99")).toBe(false);
    expect(range("bytes=000-0")).toBe(true);
    // Same length, compared digit by digit; past 2^53 as well.
    expect(range("bytes=19-21")).toBe(true);
    expect(range("bytes=21-19")).toBe(false);
    expect(range("bytes=9007199254740993-9007199254740992")).toBe(false);
    // Other headers have no range rule.
    expect(isCorsSafelisted("accept", "5-3")).toBe(true);
  });
});
