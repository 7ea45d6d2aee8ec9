import { describe, expect, it } from "vitest";
import * as z from "zod";
import { systemClock } from "../../src/core/clock.ts";
import { redactUrl } from "../../src/core/redact-url.ts";
import { validateResponse as validate } from "../../src/fallback/validate-response.ts";
import { headersForOrigin } from "../../src/http/request/cross-origin.ts";
import { copyHeaders, headerOf } from "../../src/http/request/headers.ts";
import { readJsonBody as readJson } from "../../src/http/request/json-body.ts";
import { createKeyOf } from "../../src/http/request/key-of.ts";
import { isDeclined, isNetworkError, isRetryableError, isServiceFailureStatus } from "../../src/http/send/classify.ts";
import { TimeoutError } from "../../src/index.ts";

describe("small HTTP helpers", () => {
  it("headerOf reads any HeadersInit, case-insensitively, without building Headers", () => {
    expect(headerOf(undefined, "a")).toBeNull();
    expect(headerOf(new Headers({ "X-A": "1" }), "x-a")).toBe("1");
    expect(headerOf([["X-A", "1"]], "x-A")).toBe("1");
    expect(headerOf([["x-b", "2"]], "x-a")).toBeNull();
    expect(headerOf({ "X-A": "1" }, "x-a")).toBe("1");
    expect(headerOf({ "x-b": "2" }, "x-a")).toBeNull();
  });

  it("copyHeaders copies any HeadersInit into a new, independent Headers", () => {
    const original = new Headers({ a: "1" });
    const copy = copyHeaders(original);
    copy.set("b", "2");
    expect([...original]).toEqual([["a", "1"]]);
    expect([...copy]).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
    expect([...copyHeaders({ c: "3" })]).toEqual([["c", "3"]]);
    expect([...copyHeaders(undefined)]).toEqual([]);
  });

  it("headersForOrigin keeps the allowlist and the named extras, and names what it dropped", () => {
    const headers = new Headers({ authorization: "a", "content-type": "t/x", "x-api-key": "k", "x-trace": "t" });
    const { headers: kept, dropped } = headersForOrigin(headers, ["x-trace"]);
    expect([[...kept], dropped]).toEqual([
      [
        ["content-type", "t/x"],
        ["x-trace", "t"],
      ],
      ["authorization", "x-api-key"],
    ]);
    expect(headers.get("authorization")).toBe("a");
  });

  it("redactUrl cuts the query string and the fragment, whichever comes first", () => {
    expect(redactUrl("https://a.example/p?key=s#f")).toBe("https://a.example/p");
    expect(redactUrl("https://a.example/p#f?x")).toBe("https://a.example/p");
    expect(redactUrl("https://a.example/p")).toBe("https://a.example/p");
    expect(redactUrl("https://user:pass@a.example/p?k=1")).toBe("https://a.example/p");
    expect(redactUrl("https://user:pass@a.example")).toBe("https://a.example");
    expect(redactUrl("not a url?key=secret")).toBe("not a url");
  });

  it("classifies statuses and errors", () => {
    expect([429, 503, 500, 502].map(isDeclined)).toEqual([true, true, false, false]);
    expect([499, 500, 599, 429, 428, 404].map(isServiceFailureStatus)).toEqual([false, true, true, true, false, false]);
    expect(isNetworkError(new TypeError("fetch failed"))).toBe(true);
    expect(isNetworkError({ name: "TypeError" })).toBe(true);
    expect(isNetworkError(new DOMException("x", "NetworkError"))).toBe(true);
    expect(isNetworkError(new DOMException("x", "AbortError"))).toBe(false);
    expect(isNetworkError(new Error("x"))).toBe(false);
    expect(isNetworkError(null)).toBe(false);
    expect(isNetworkError("TypeError")).toBe(false);
    expect(isRetryableError(new TimeoutError("attempt", 10))).toBe(true);
    expect(isRetryableError(new RangeError("x"))).toBe(false);
  });

  it("readJsonBody parses JSON from strings, bytes and Blobs, and gives up quietly otherwise", async () => {
    const readJsonBody = async (body: BodyInit | null | undefined, type?: string) =>
      (await readJson(body, type))?.value;
    expect(await readJson(' {"a":1}')).toEqual({ text: ' {"a":1}', value: { a: 1 } });
    const bytes = new TextEncoder().encode('{"a":1}');
    expect(await readJsonBody('{"a":1}')).toEqual({ a: 1 });
    expect(await readJsonBody(" [1]")).toEqual([1]);
    expect(await readJsonBody(bytes)).toEqual({ a: 1 });
    expect(await readJsonBody(bytes.buffer)).toEqual({ a: 1 });
    expect(await readJsonBody(new Blob(['{"a":1}']))).toEqual({ a: 1 });
    expect(await readJsonBody("42")).toBeUndefined(); // not an object without a JSON content type
    expect(await readJsonBody("42", "application/json")).toBe(42);
    expect(await readJsonBody("{not json", "application/json")).toBeUndefined();
    expect(await readJsonBody("plain text")).toBeUndefined();
    expect(await readJsonBody(new URLSearchParams("a=1"))).toBeUndefined();
    expect(await readJsonBody(null)).toBeUndefined();
    expect(await readJsonBody(undefined)).toBeUndefined();
  });

  it("createKeyOf uses the host by default, a custom key when given, and refuses an empty one", () => {
    expect(createKeyOf(undefined)("https://API.example:443/x")).toBe("api.example");
    const byPath = createKeyOf((url) => `${url.host}${url.pathname.split("/").slice(0, 2).join("/")}`);
    expect(byPath("https://api.example/v1/images?x=1")).toBe("api.example/v1");
    expect(() => createKeyOf(() => "")("https://a.example/")).toThrow(
      /non-empty string, got "" for https:\/\/a\.example\//,
    );
    expect(() => createKeyOf(() => 5 as unknown as string)("https://a.example/")).toThrow(TypeError);
  });

  it("validateResponse names where a body fails its schema, and leaves the body unread", async () => {
    const bounds = { clock: systemClock, timeout: 1000, maxBytes: 1000, signal: undefined };
    const validateResponse = (response: Response, schema: Parameters<typeof validate>[1]) =>
      validate(response, schema, bounds);
    const schema = z.object({ job: z.object({ id: z.string() }) });
    const good = Response.json({ job: { id: "7" } });
    expect(await validateResponse(good, schema)).toBeUndefined();
    expect(await good.json()).toEqual({ job: { id: "7" } });
    expect(await validateResponse(Response.json({ job: { id: 7 } }), schema)).toMatch(/^invalid body at job\.id: /);
    expect(await validateResponse(Response.json(5), schema)).toMatch(/^invalid body: /);
    expect(await validateResponse(new Response("<html>"), schema)).toBe("invalid body: not JSON");
    const bare = { "~standard": { version: 1, vendor: "x", validate: () => ({ issues: [{ message: "" }] }) } };
    expect(await validateResponse(Response.json({}), bare as never)).toBe("invalid body: ");
    const noIssues = { "~standard": { version: 1, vendor: "x", validate: () => ({ issues: [] }) } };
    expect(await validateResponse(Response.json({}), noIssues as never)).toBe("invalid body: schema mismatch");
    const keyed = {
      "~standard": {
        version: 1,
        vendor: "x",
        validate: () => ({ issues: [{ message: "m", path: [{ key: "a" }, 0] }] }),
      },
    };
    expect(await validateResponse(Response.json({}), keyed as never)).toBe("invalid body at a.0: m");
  });
});
