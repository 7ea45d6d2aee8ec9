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
});
