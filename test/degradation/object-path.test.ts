import { describe, expect, it } from "vitest";
import { getPath, splitPath } from "../../src/degradation/object-path.ts";

describe("splitPath", () => {
  it("splits a dotted path into its segments", () => {
    expect(splitPath("parameters.num_inference_steps")).toEqual(["parameters", "num_inference_steps"]);
    expect(splitPath("quality")).toEqual(["quality"]);
  });

  it("rejects an empty segment with a TypeError naming the path", () => {
    expect(() => splitPath("a..b")).toThrow(new TypeError('path "a..b": empty segment'));
    expect(() => splitPath("")).toThrow(new TypeError('path "": empty segment'));
    expect(() => splitPath("a.")).toThrow(TypeError);
  });

  it("rejects __proto__, constructor and prototype segments with a TypeError naming the segment", () => {
    expect(() => splitPath("a.__proto__.b")).toThrow(
      new TypeError('path "a.__proto__.b": segment "__proto__" is not allowed'),
    );
    expect(() => splitPath("constructor")).toThrow(
      new TypeError('path "constructor": segment "constructor" is not allowed'),
    );
    expect(() => splitPath("x.prototype")).toThrow(
      new TypeError('path "x.prototype": segment "prototype" is not allowed'),
    );
  });
});

describe("getPath", () => {
  it("follows own properties and array indices", () => {
    const root = { parameters: { steps: 30, list: [10, 20] } };
    expect(getPath(root, ["parameters", "steps"])).toBe(30);
    expect(getPath(root, ["parameters", "list", "1"])).toBe(20);
    expect(getPath(root, [])).toBe(root);
  });

  it("gives undefined when a segment is absent", () => {
    expect(getPath({ a: { b: 1 } }, ["a", "c"])).toBeUndefined();
  });

  it("gives undefined, without throwing, when the path runs into null or a primitive", () => {
    expect(getPath({ a: null }, ["a", "b"])).toBeUndefined();
    expect(getPath(null, ["a"])).toBeUndefined();
    expect(getPath({ a: "text" }, ["a", "length"])).toBeUndefined();
    expect(getPath({ a: 5 }, ["a", "b"])).toBeUndefined();
  });

  it("does not read inherited properties", () => {
    const child = Object.create({ inherited: 1 }) as Record<string, unknown>;
    expect(getPath({ a: child }, ["a", "inherited"])).toBeUndefined();
    expect(getPath({}, ["toString"])).toBeUndefined();
  });
});
