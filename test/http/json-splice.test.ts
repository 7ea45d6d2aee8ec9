import { describe, expect, it } from "vitest";
import { locate, spliceJson } from "../../src/degradation/json-splice.ts";

describe("spliceJson: edits JSON values in place, every other byte as sent", () => {
  it("finds values in nested objects and arrays, after strings with escapes and nested values", () => {
    const text = '{ "a\\"b": "x\\\\\\"}", "list": [ {"n": [1, 2]}, {"steps": 50} ] , "deep": {"k": {"v": true}} }';
    expect(JSON.parse(text)).toBeTruthy();
    const steps = locate(text, ["list", "1", "steps"]);
    expect(steps && text.slice(steps.start, steps.end)).toBe("50");
    const inner = locate(text, ["list", "0", "n", "1"]);
    expect(inner && text.slice(inner.start, inner.end)).toBe("2");
    const deep = locate(text, ["deep", "k", "v"]);
    expect(deep && text.slice(deep.start, deep.end)).toBe("true");
    const escaped = locate(text, ['a"b']);
    expect(escaped && text.slice(escaped.start, escaped.end)).toBe('"x\\\\\\"}"');
  });

  it("gives nothing for paths that do not exist or do not fit the value", () => {
    const text = '{"a": [1, 2], "o": {}, "s": "t", "e": []}';
    for (const path of [["b"], ["a", "2"], ["a", "x"], ["o", "k"], ["s", "0"], ["e", "0"], ["a", "0", "k"]]) {
      expect([path, locate(text, path)]).toEqual([path, undefined]);
    }
  });

  it("edits the last of repeated keys, as JSON.parse reads it", () => {
    const text = '{"steps": 10, "steps": 50}';
    expect(spliceJson(text, [{ path: ["steps"], value: 30 }])).toBe('{"steps": 10, "steps": 30}');
  });

  it("applies several edits, in any order, without shifting each other", () => {
    const text = '{"quality": 1, "p": "keep", "steps": 50, "size": "1920x1080"}';
    const out = spliceJson(text, [
      { path: ["steps"], value: 30 },
      { path: ["quality"], value: 0.75 },
      { path: ["size"], value: "1280x720" },
      { path: ["absent"], value: 1 },
    ]);
    expect(out).toBe('{"quality": 0.75, "p": "keep", "steps": 30, "size": "1280x720"}');
  });

  it("replaces a whole array or object value, whitespace around it kept", () => {
    const text = '{"features": [ "a", "b" ] ,\n "o": {"x": 1}}';
    expect(spliceJson(text, [{ path: ["features"], value: ["a"] }])).toBe('{"features": ["a"] ,\n "o": {"x": 1}}');
    expect(spliceJson(text, [{ path: ["o"], value: { y: 2 } }])).toBe('{"features": [ "a", "b" ] ,\n "o": {"y":2}}');
  });
});
