import { describe, expect, it } from "vitest";
import { locate, spliceJson } from "../../src/degradation/json-splice.ts";

describe("locate", () => {
  it("finds array elements past the ninth", () => {
    const text = "[0,1,2,3,4,5,6,7,8,9,10,11]";
    expect(text.slice(locate(text, ["11"])?.start, locate(text, ["11"])?.end)).toBe("11");
  });

  it("takes only plain digit strings as array indices", () => {
    for (const segment of ["+1", " 1", "1 ", "1e0", "0x1", "1.", "a1", "1a"]) {
      expect(locate("[10,20]", [segment]), segment).toBeUndefined();
    }
  });

  it("ends a number that closes the text at the text's end", () => {
    expect(locate("5", [])).toEqual({ start: 0, end: 1 });
    expect(locate("-1.5e3", [])).toEqual({ start: 0, end: 6 });
  });
});

describe("spliceJson", () => {
  it("skips brackets inside strings when stepping over an object or array", () => {
    const text = '{"a": {"s": "}]"}, "b": ["[", "\\"]"], "quality": 1}';
    expect(spliceJson(text, [{ path: ["quality"], value: 0.8 }])).toBe(
      '{"a": {"s": "}]"}, "b": ["[", "\\"]"], "quality": 0.8}',
    );
  });

  it("replaces a document that is a single number", () => {
    expect(spliceJson("5", [{ path: [], value: 6 }])).toBe("6");
  });
});
