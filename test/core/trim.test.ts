import { describe, expect, it } from "vitest";
import { trimHeaderValue, trimOws } from "../../src/core/trim.ts";

describe("trimOws: HTTP's optional whitespace (space, tab) around a value", () => {
  it.each([
    ["  2\t", "2"],
    ["\t \t", ""],
    ["", ""],
    ["a b", "a b"],
    ["\u00a02\u00a0", "\u00a02\u00a0"], // a no-break space is a byte of the value
    ["\r\n2\r\n", "\r\n2\r\n"], // CR and LF are no optional whitespace
    [` 1${" ".repeat(8)}x `, `1${" ".repeat(8)}x`],
  ])("%j -> %j", (value, expected) => {
    expect(trimOws(value)).toBe(expected);
  });
});

describe("trimHeaderValue: what fetch trims around a header's value", () => {
  it.each([
    ["\r\n key\t\n", "key"],
    [" \r\n\t ", ""],
    ["\u00a0key", "\u00a0key"],
    ["a\r\nb", "a\r\nb"],
  ])("%j -> %j", (value, expected) => {
    expect(trimHeaderValue(value)).toBe(expected);
  });
});
