import { describe, expect, it } from "vitest";
import type { FallbackEndpoint } from "../../src/core/options/fallback-options.ts";
import {
  type ChainRequest,
  endpointCall,
  endpointRequest,
  parseJsonBody,
  rebase,
} from "../../src/http/chain-request.ts";

const request = (over: Partial<ChainRequest> = {}): ChainRequest => ({
  method: "POST",
  url: "https://a.example/v1/jobs",
  headers: new Headers({ authorization: "Bearer a", "content-type": "application/json", "x-trace": "t" }),
  rawBody: '{"prompt":"p","n":1}',
  signal: undefined,
  ...over,
});

describe("rebase: the rest of the caller's URL onto an endpoint's base", () => {
  it.each([
    ["https://b.example/v2", "", "https://b.example/v2"],
    ["https://b.example/v2", "/jobs", "https://b.example/v2/jobs"],
    ["https://b.example/v2/", "/jobs", "https://b.example/v2/jobs"],
    ["https://b.example/v2", "jobs", "https://b.example/v2/jobs"],
    ["https://b.example/v2/", "jobs", "https://b.example/v2/jobs"],
    ["https://b.example/v2", "?a=1", "https://b.example/v2?a=1"],
    ["https://b.example/v2?key=k", "?a=1", "https://b.example/v2?key=k&a=1"],
    ["https://b.example/v2?key=k", "#frag", "https://b.example/v2?key=k#frag"],
    ["https://b.example/v2", "#frag", "https://b.example/v2#frag"],
  ])("%s + %s", (base, rest, expected) => {
    expect(rebase(base, rest)).toBe(expected);
  });
});

describe("endpointRequest and endpointCall", () => {
  const plain: FallbackEndpoint = { name: "b", url: "https://b.example/v2" };

  it("shares the caller's headers when nothing changes them, and copies them when something does", async () => {
    const caller = request();
    const same = await endpointRequest(caller, plain, "/jobs", false, []);
    expect(same.headers).toBe(caller.headers);
    const own = await endpointRequest(caller, { ...plain, headers: { "x-own": "1" } }, "/jobs", false, []);
    expect(own.headers.get("x-own")).toBe("1");
    expect(caller.headers.has("x-own")).toBe(false);
    const crossed = await endpointRequest(caller, plain, "/jobs", true, ["x-trace"]);
    expect([crossed.headers.has("authorization"), crossed.headers.has("x-trace")]).toEqual([false, false]);
    expect(caller.headers.get("authorization")).toBe("Bearer a");
    const transformed = await endpointRequest(
      caller,
      {
        ...plain,
        transform: (r) => {
          r.headers.set("x-t", "1");
          return r;
        },
      },
      "",
      false,
      [],
    );
    expect([transformed.headers.get("x-t"), caller.headers.has("x-t")]).toEqual(["1", false]);
  });

  it("gives a transform its own copy of the body: edits do not reach the next endpoint", async () => {
    const caller = request();
    const editing: FallbackEndpoint = {
      ...plain,
      transform: (r) => {
        (r.body as { n: number }).n = 99;
        return r;
      },
    };
    const edited = await endpointRequest(caller, editing, "", false, []);
    const next = await endpointRequest(caller, plain, "", false, []);
    expect([(edited.body as { n: number }).n, (next.body as { n: number }).n]).toEqual([99, 1]);
  });

  it("refuses a transform that returns no request, naming the endpoint", async () => {
    for (const bad of [undefined, null, "x", {}, { url: 5 }]) {
      const endpoint: FallbackEndpoint = { ...plain, transform: () => bad as never };
      await expect(endpointRequest(request(), endpoint, "", false, [])).rejects.toThrow(
        /fallback endpoint "b": transform\(request\) must return a request object with a url/,
      );
    }
  });

  it("parses the caller's body once per call, however many endpoints read it", async () => {
    let reads = 0;
    const blob = new Blob(['{"a":1}']);
    const counting = Object.assign(blob, {
      text: () => {
        reads++;
        return Blob.prototype.text.call(blob);
      },
    });
    const caller = request({ rawBody: counting });
    await parseJsonBody(caller);
    await parseJsonBody(caller);
    expect(reads).toBe(1);
  });

  it("sends the caller's bytes as they are unless a transform left a new body", () => {
    const caller = request();
    const bare = request({ headers: new Headers() });
    const untouched = endpointCall({ ...bare, body: { prompt: "p" }, endpoint: "b" }, bare, false, undefined);
    expect([untouched.body, (untouched.headers as Headers).has("content-type")]).toEqual([caller.rawBody, false]);
    const shaped = { ...caller, headers: new Headers(), body: { prompt: "q" }, endpoint: "b" };
    const call = endpointCall(shaped, caller, true, undefined);
    expect([call.body, call.headers instanceof Headers && call.headers.get("content-type")]).toEqual([
      '{"prompt":"q"}',
      "application/json",
    ]);
    const text = endpointCall(
      { ...caller, headers: new Headers(), body: "raw text", endpoint: "b" },
      caller,
      true,
      undefined,
    );
    expect([text.body, (text.headers as Headers).has("content-type")]).toEqual(["raw text", false]);
    const typed = {
      ...caller,
      headers: new Headers({ "content-type": "application/vnd+json" }),
      body: {},
      endpoint: "b",
    };
    expect((endpointCall(typed, caller, true, undefined).headers as Headers).get("content-type")).toBe(
      "application/vnd+json",
    );
    const noBody = endpointCall(
      { ...caller, headers: new Headers(), body: undefined, endpoint: "b" },
      caller,
      true,
      undefined,
    );
    expect(noBody.body).toBe(caller.rawBody);
  });

  it("upper-cases the method, sends no body with GET or HEAD, and passes the signal", () => {
    const caller = request();
    const signal = new AbortController().signal;
    for (const method of ["get", "HEAD"]) {
      const call = endpointCall({ ...caller, method, body: undefined, endpoint: "b" }, caller, false, signal);
      expect([call.method, call.body, "body" in (call.init ?? {}), call.init?.signal === signal]).toEqual([
        method.toUpperCase(),
        undefined,
        false,
        true,
      ]);
    }
    const post = endpointCall({ ...caller, method: "post", body: undefined, endpoint: "b" }, caller, false, undefined);
    expect([post.method, post.init?.body, "signal" in (post.init ?? {})]).toEqual(["POST", caller.rawBody, false]);
    const empty = endpointCall(
      { ...caller, body: undefined, endpoint: "b" },
      request({ rawBody: null }),
      false,
      undefined,
    );
    expect("body" in (empty.init ?? {})).toBe(false);
    const keyed = endpointCall(
      { ...caller, headers: new Headers({ "idempotency-key": "k" }), body: undefined, endpoint: "b" },
      caller,
      false,
      undefined,
    );
    expect(keyed.hasIdempotencyKey).toBe(true);
  });
});
