import { describe, expect, it } from "vitest";
import { checkMethod, snapshotHeaders } from "../../src/http/request/check-request.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

/** The TypeError `call` throws (or undefined), as its message. */
function messageOf(call: () => unknown): string | undefined {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  return undefined;
}

describe("checkMethod: a method must be a token; the message shows what was given", () => {
  it("normalises a valid method as fetch does: the six it knows upper-cased, any other as written", () => {
    const methods = ["get", "Delete", "head", "oPtions", "post", "put", "Patch", "PROPFIND", "x-custom"];
    expect(methods.map(checkMethod)).toEqual([
      "GET",
      "DELETE",
      "HEAD",
      "OPTIONS",
      "POST",
      "PUT",
      "Patch",
      "PROPFIND",
      "x-custom",
    ]);
    // What fetch itself does with the same names.
    expect(methods.map((method) => new Request("https://a.example/", { method }).method)).toEqual(
      methods.map(checkMethod),
    );
  });

  it.each([
    ["a string with a space", "GE T", 'got "GE T"'],
    ["an empty string", "", 'got ""'],
    ["null", null, "got null"],
    // Shown as every refused value is since the sixty-fourth session (the redaction run): text that is no plain
    // word by its kind, so a URL pasted as the method keeps its key out.
    ["a number", 5, "got 5"],
    ["undefined", undefined, "got undefined"],
    ["an object", { toString: () => "GET" }, "got an object"],
    ["a URL", "https://api.example/v1?key=sk_live_1", "got a string"],
  ])("refuses %s", (_what, method, shown) => {
    expect(messageOf(() => checkMethod(method))).toBe(
      `resilience.fetch: init.method must be an HTTP method name, ${shown}`,
    );
  });
});

describe("snapshotHeaders: names must be tokens, values bytes without CR, LF or NUL", () => {
  it("accepts nothing, a Headers, a record and pairs of valid headers", () => {
    expect(messageOf(() => snapshotHeaders(undefined))).toBeUndefined();
    expect(messageOf(() => snapshotHeaders(new Headers({ "x-a": "1" })))).toBeUndefined();
    expect(messageOf(() => snapshotHeaders({ "x-a": "1", accept: "text/plain; q=0.9" }))).toBeUndefined();
    expect(messageOf(() => snapshotHeaders([["x-a", "1"]]))).toBeUndefined();
    // A tab and obs-text (U+0080 to U+00FF) are allowed in a value.
    expect(snapshotHeaders({ "x-a": "a\tb\u00ff" })).toEqual([["x-a", "a\tb\u00ff"]]);
  });

  it.each([
    ["a name with a space (record)", { "x y": "1" }, 'invalid header name (" " at 1)'],
    ["an empty name (pairs)", [["", "1"]], 'invalid header name ""'],
    ["a name with a colon (pairs)", [["x-a:", "1"]], 'invalid header name (":" at 3)'],
    // fetch refuses a record whose key is a symbol (it cannot be a ByteString); it is not dropped.
    ["a record with a symbol key", { "x-a": "1", [Symbol("s")]: "v" }, "invalid header name symbol"],
    // A number passes the token pattern once turned into a string: only its type refuses it.
    ["a number as a name (pairs)", [[1, "v"]], "invalid header name number"],
    ["null as a name (pairs)", [[null, "v"]], "invalid header name null"],
  ])("refuses %s, describing it", (_what, headers, message) => {
    expect(messageOf(() => snapshotHeaders(headers as HeadersInit))).toBe(`resilience.fetch: ${message}`);
  });

  it("describes an invalid name without quoting it: pairs the wrong way round hold the value there", () => {
    const message = messageOf(() => snapshotHeaders([["Bearer sk-live-SECRET", "authorization"]]));
    expect(message).toBe('resilience.fetch: invalid header name (" " at 6)');
    expect(message).not.toContain("SECRET");
  });

  it("leaves out a symbol key that is not enumerable, as the Fetch standard reads a record (its enumerable keys)", () => {
    const record = Object.defineProperty({ "x-a": "1" }, Symbol("hidden"), { value: "v", enumerable: false });
    expect(snapshotHeaders(record)).toEqual([["x-a", "1"]]);
  });

  it.each([
    ["CR", "a\rb"],
    ["LF", "a\nb"],
    ["NUL", "a\0b"],
    ["a character above U+00FF", "\u20ac 5"],
    // RFC 9110 allows no control character but a tab; Node's fetch refuses each of these.
    ["a control character (U+0001)", "a\x01b"],
    ["DEL", "a\x7fb"],
  ])("refuses a value with %s and names the header, never the value", (_what, value) => {
    const message = messageOf(() => snapshotHeaders([["x-token", `secret${value}`]]));
    expect(message).toBe(
      'resilience.fetch: header "x-token" has a control character (CR, LF, NUL…) or a character above U+00FF in its value',
    );
    expect(message).not.toContain("secret");
  });
});

describe("snapshotHeaders: a copy as the headers are at the call", () => {
  it("copies a record, pairs, a Map and a Headers, so later edits by the caller change nothing", () => {
    const record: Record<string, string> = { "x-a": "1" };
    const pairs: Array<[string, string]> = [["x-a", "1"]];
    const map = new Map([["x-a", "1"]]);
    const headers = new Headers({ "x-a": "1" });
    const copies = [record, pairs, map, headers].map((h) => snapshotHeaders(h as HeadersInit));
    record["x-a"] = "2";
    (pairs[0] as [string, string])[1] = "2";
    map.set("x-a", "2");
    headers.set("x-a", "2");
    expect(copies.map((c) => new Headers(c).get("x-a"))).toEqual(["1", "1", "1", "1"]);
  });

  it("takes a value as fetch does (its string form: a number is its digits, a Latin-1 byte is kept)", () => {
    expect(snapshotHeaders({ "x-n": 5 as unknown as string, "x-l": "caf\u00e9" })).toEqual([
      ["x-n", "5"],
      ["x-l", "caf\u00e9"],
    ]);
  });

  it.each([
    ["a pair of three items", [["x-a", "1", "2"]]],
    ["a pair of one item", [["x-a"]]],
    ["a pair that is no list", ["x-a"]],
  ])("refuses %s, naming the header", (_what, headers) => {
    const message = messageOf(() => snapshotHeaders(headers as unknown as HeadersInit));
    expect(message).toMatch(
      /^resilience\.fetch: (header "x-a" must be a \[name, value\] pair|a header must be a \[name, value\] pair, got string)$/,
    );
  });
});

describe("checkMethod: what fetch forbids", () => {
  it.each(["CONNECT", "trace", "Track"])("refuses %s at once, as fetch does", (method) => {
    expect(messageOf(() => checkMethod(method))).toBe(
      `resilience.fetch: init.method ${JSON.stringify(method)} is one fetch forbids`,
    );
    expect(() => new Request("https://a.example/", { method })).toThrow(TypeError);
  });
});

describe("snapshotHeaders: what is no headers at all", () => {
  it.each([
    ["null", null, "null"],
    ["a string (a token pasted in the wrong place)", "Bearer sk-secret", "string"],
    ["a number", 0, "number"],
    ["false", false, "boolean"],
  ])("refuses %s as fetch does, named by kind, never quoted", (_what, headers, kind) => {
    expect(messageOf(() => snapshotHeaders(headers as never))).toBe(
      `resilience.fetch: headers must be a Headers, a record or [name, value] pairs, got ${kind}`,
    );
  });

  it("leaves no headers as none", () => {
    expect(snapshotHeaders(undefined)).toBeUndefined();
  });
});

describe("the checks through resilience.fetch", () => {
  it("a pair whose name is not a string rejects before anything is sent, and names its type", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, clock: new TestClock(0) });
    const error = await resilience
      .fetch("https://a.example/", { headers: [[7, "v"]] as unknown as HeadersInit })
      .catch((e: unknown) => e);
    expect([error instanceof TypeError, (error as Error).message, sent.length]).toEqual([
      true,
      "resilience.fetch: invalid header name number",
      0,
    ]);
  });

  it("a Request input with a bad init.method names it, and a good one is sent upper-cased", async () => {
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, clock: new TestClock(0) });
    const request = new Request("https://a.example/", { method: "POST", body: "x" });
    await expect(resilience.fetch(request, { method: null as never })).rejects.toThrow(
      "init.method must be an HTTP method name, got null",
    );
    await resilience.fetch("https://a.example/", { method: "delete" });
    expect(sent.map((s) => s.method)).toEqual(["DELETE"]);
  });

  it("a GET or HEAD with a body is refused at once, as fetch refuses it everywhere: never sent, retried or counted", async () => {
    const { fetch, sent } = recordingFetch(() => new Response("ok"));
    const resilience = createResilience({ fetch, clock: new TestClock(0), breaker: { failureThreshold: 1 } });
    for (const method of ["GET", "head", undefined]) {
      await expect(
        resilience.fetch("https://a.example/", { ...(method ? { method } : {}), body: "x" }),
      ).rejects.toThrow(
        new TypeError(`resilience.fetch: a ${(method ?? "GET").toUpperCase()} request cannot have a body`),
      );
    }
    expect(sent).toEqual([]);
    expect(resilience.health().breakers).toEqual({});
    // A GET whose body is null or absent goes.
    await resilience.fetch("https://a.example/", { method: "GET", body: null });
    expect(sent).toHaveLength(1);
  });
});

describe("a header value with spaces or line breaks around it", () => {
  it("is sent trimmed, as fetch sends it (a key read from a file ends with a line break)", async () => {
    const sent: Array<string | null> = [];
    const resilience = createResilience({
      fetch: async (_input, init) => {
        sent.push(new Headers(init?.headers).get("authorization"));
        return new Response("ok");
      },
    });
    for (const headers of [
      { authorization: "Bearer key\n" },
      [["authorization", "\r\n Bearer key\t\r\n"]] as [string, string][],
    ]) {
      expect((await resilience.fetch("https://api.example/", { headers })).status).toBe(200);
    }
    expect(sent).toEqual(["Bearer key", "Bearer key"]);
    await expect(
      resilience.fetch("https://api.example/", { headers: { authorization: "Bearer\nkey" } }),
    ).rejects.toThrow('resilience.fetch: header "authorization" has a control character');
  });
});
