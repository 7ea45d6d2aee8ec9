import { describe, expect, it } from "vitest";
import { editQuery } from "../../src/degradation/query-edit.ts";

const halve = (value: string) => String(Number(value) / 2);

describe("editQuery: only the named parameter's values change", () => {
  it("keeps every other byte as written", () => {
    expect(editQuery("https://a.example/g?path=a/b&x=a%20b&flag&t=1:2&steps=50#f", "steps", halve)).toBe(
      "https://a.example/g?path=a/b&x=a%20b&flag&t=1:2&steps=25#f",
    );
  });

  it("edits each place of a repeated parameter, from its own value", () => {
    expect(editQuery("https://a.example/?steps=50&a=1&steps=10", "steps", halve)).toBe(
      "https://a.example/?steps=25&a=1&steps=5",
    );
  });

  it("reads names and values as URLSearchParams does: + is a space, escapes decoded, a bad escape kept", () => {
    const seen: string[] = [];
    const url = "https://a.example/?st%65ps=a+b%21&steps=%zz&steps";
    const record = (value: string) => {
      seen.push(value);
      return value;
    };
    expect(editQuery(url, "steps", record)).toBe(url);
    expect(seen).toEqual(["a b!", "%zz", ""]);
    expect(editQuery("https://a.example/?my+name=1", "my name", () => "x y")).toBe("https://a.example/?my+name=x%20y");
  });

  it("returns the URL itself when nothing changes: no query, no such parameter, or the same value", () => {
    for (const url of [
      "https://a.example/g",
      "https://a.example/g?a=1",
      "https://a.example/g?steps=050",
      "https://a.example/?#steps=1",
    ]) {
      expect(editQuery(url, "steps", (value) => value)).toBe(url);
    }
    expect(editQuery("https://a.example/g?a=1", "steps", halve)).toBe("https://a.example/g?a=1");
    // Spaces and control characters at the ends, which the URL parser drops: kept when nothing changes.
    expect(editQuery(" https://a.example/g?a=1\t ", "steps", halve)).toBe(" https://a.example/g?a=1\t ");
    expect(editQuery(" https://a.example/g?steps=50\n", "steps", halve)).toBe("https://a.example/g?steps=25");
  });

  it("reads a URL with a long run of spaces inside it in one pass (a trailing-trim pattern is quadratic there)", () => {
    const url = `https://a.example/g?q=${" ".repeat(200_000)}x&steps=50`;
    expect(editQuery(url, "steps", halve)).toBe(`https://a.example/g?q=${" ".repeat(200_000)}x&steps=25`);
  });

  it("takes the query from the first ?, a later ? being part of a value", () => {
    expect(editQuery("https://a.example/g?q=a?b&steps=50", "steps", halve)).toBe("https://a.example/g?q=a?b&steps=25");
  });

  it("does not read a query in the fragment", () => {
    expect(editQuery("https://a.example/g#x?steps=50", "steps", halve)).toBe("https://a.example/g#x?steps=50");
  });
});
