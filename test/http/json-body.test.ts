import { describe, expect, it } from "vitest";
import { readJsonBody } from "../../src/http/request/json-body.ts";

describe("readJsonBody", () => {
  it("reads only objects and arrays when the content type names something other than JSON", async () => {
    expect(await readJsonBody("42", "text/plain")).toBeUndefined();
    expect(await readJsonBody("true", "application/x-www-form-urlencoded")).toBeUndefined();
    expect(await readJsonBody('{"a":1}', "text/plain")).toEqual({ text: '{"a":1}', value: { a: 1 } });
  });

  it("attempts a body without a JSON content type only when it starts with { or [", async () => {
    // A JSON string that holds a brace is JSON, but not a body to rewrite.
    expect(await readJsonBody('"{"')).toBeUndefined();
    expect(await readJsonBody('"a [b]"', "text/plain")).toBeUndefined();
    expect(await readJsonBody('"{"', "application/json")).toEqual({ text: '"{"', value: "{" });
  });

  it("leaves bytes labelled with a charset other than UTF-8 unread, and reads a string whatever its label", async () => {
    const bytes = new TextEncoder().encode('{"a":1}');
    const read = { text: '{"a":1}', value: { a: 1 } };
    expect(await readJsonBody(bytes, "application/json; charset=iso-8859-1")).toBeUndefined();
    expect(await readJsonBody(bytes, "application/json;charset=UTF-16")).toBeUndefined();
    expect(await readJsonBody(new Blob([bytes], { type: "application/json; charset=latin1" }))).toBeUndefined();
    expect(await readJsonBody(bytes, "application/json; charset=no-such-charset")).toBeUndefined();
    const utf8Labels = [
      "application/json",
      "application/json; charset=utf-8",
      'application/json; charset="UTF8"',
      "application/json; charset=unicode-1-1-utf-8", // the Encoding Standard reads it as UTF-8
      // As fetch's MIME parser reads them: a bare value without its trailing whitespace, a quoted one unescaped.
      "application/json; charset=utf-8 \t",
      'application/json; charset="ut\\f-8"',
    ];
    // Whitespace inside a bare value stays, and names no charset a decoder knows.
    expect(await readJsonBody(bytes, "application/json; charset=utf -8")).toBeUndefined();
    for (const label of utf8Labels) {
      expect(await readJsonBody(bytes, label)).toEqual(read);
    }
    expect(await readJsonBody(new Blob([bytes], { type: "application/json; charset=utf-8" }))).toEqual(read);
    expect(await readJsonBody('{"a":1}', "application/json; charset=iso-8859-1")).toEqual(read);
  });
});
