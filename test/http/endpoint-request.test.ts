import { describe, expect, it } from "vitest";
import { endpointRequest, jsonOnce, rebase } from "../../src/fallback/endpoint-request.ts";
import type {
  EndpointRequest,
  FallbackEndpointCommon,
  TransformedRequest,
  UrlEndpoint,
} from "../../src/fallback/fallback-options.ts";
import { type CallRequest, fetchArguments } from "../../src/http/request/call-request.ts";
import { normalizeRequest } from "../../src/http/request/normalize-request.ts";

/** An endpoint that calls a URL: the only kind endpointRequest shapes. */
type Endpoint = FallbackEndpointCommon & UrlEndpoint;

const request = (init: RequestInit = {}, url = "https://a.example/v1/jobs"): CallRequest =>
  normalizeRequest(
    url,
    {
      method: "POST",
      headers: { authorization: "Bearer a", "content-type": "application/json", "x-trace": "t" },
      body: '{"prompt":"p","n":1}',
      ...init,
    },
    { idempotentMethods: new Set(["GET"]), addIdempotencyKey: false, maxReplayBytes: 1000 },
    undefined,
  ) as CallRequest;
const shape = (caller: CallRequest, endpoint: Endpoint, rest = "/jobs", extra: string[] = []) =>
  endpointRequest(caller, endpoint, rest, extra, jsonOnce(caller));
const headersOf = (r: CallRequest) => new Headers(r.headers);

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
    // An endpoint's own query stays in the query, ahead of the caller's, whatever the path below.
    ["https://b.example/v2?key=k", "/jobs", "https://b.example/v2/jobs?key=k"],
    ["https://b.example/v2/?key=k", "/jobs?a=1#f", "https://b.example/v2/jobs?key=k&a=1#f"],
    ["https://b.example/v2?key=k", "jobs?", "https://b.example/v2/jobs?key=k"],
    ["https://b.example/v2", "/jobs?", "https://b.example/v2/jobs?"],
    ["https://b.example/v2", "/a?b=c?d#e?f", "https://b.example/v2/a?b=c?d#e?f"],
  ])("%s + %s", (base, rest, expected) => {
    expect(rebase(base, rest)).toBe(expected);
  });
});

describe("endpointRequest: the call as one endpoint receives it", () => {
  const same: Endpoint = { name: "b", url: "https://a.example/v2" };
  const other: Endpoint = { name: "c", url: "https://c.example/v2" };

  it("keeps the caller's headers on the same origin, and only the allowlist on another", async () => {
    const caller = request({
      headers: {
        authorization: "Bearer a",
        "api-key": "azure",
        "x-api-key": "anthropic",
        "x-goog-api-key": "g",
        "openai-organization": "o",
        "content-type": "application/json",
        accept: "application/json",
        "idempotency-key": "k",
        "x-trace": "t",
      },
    });
    const home = await shape(caller, same);
    expect(home.headers).toBe(caller.headers);
    const away = headersOf(await shape(caller, other));
    expect([...away.keys()].sort()).toEqual(["accept", "content-type", "idempotency-key"]);
    const traced = headersOf(await shape(caller, other, "/jobs", ["x-trace"]));
    expect([traced.get("x-trace"), traced.has("authorization")]).toEqual(["t", false]);
  });

  it("sends an endpoint's own headers everywhere and never edits the caller's", async () => {
    const caller = request();
    const own = headersOf(await shape(caller, { ...other, headers: { "X-Api-Key": "provider-key" } }));
    expect([own.get("x-api-key"), own.has("authorization")]).toEqual(["provider-key", false]);
    expect(headersOf(caller).has("x-api-key")).toBe(false);
  });

  it("decides cross-origin on the URL a transform finally sends to", async () => {
    const caller = request();
    const elsewhere = await shape(caller, { ...same, transform: (r) => ({ ...r, url: "https://evil.example/x" }) });
    expect([elsewhere.url, headersOf(elsewhere).has("authorization")]).toEqual(["https://evil.example/x", false]);
    const setOwn = await shape(caller, {
      ...same,
      transform: (r) => {
        r.headers.set("authorization", "Bearer provider");
        return { ...r, url: "https://c.example/x" };
      },
    });
    expect(headersOf(setOwn).get("authorization")).toBe("Bearer provider");
    const home = await shape(caller, { ...other, transform: (r) => ({ ...r, url: "https://a.example/back" }) });
    expect(headersOf(home).get("authorization")).toBe("Bearer a");
  });

  it("gives a transform its own copy of the body: edits do not reach the next endpoint", async () => {
    const caller = request();
    const json = jsonOnce(caller);
    const editing: Endpoint = {
      ...same,
      transform: (r) => {
        if (r.body) r.body.n = 99;
        return r;
      },
    };
    const edited = await endpointRequest(caller, editing, "", [], json);
    const next = await endpointRequest(caller, { ...same, transform: (r) => r }, "", [], json);
    expect([edited.body, next.body]).toEqual(['{"prompt":"p","n":99}', caller.body]);
  });

  it("sends the caller's bytes untouched unless the transform changed the body", async () => {
    const big = '{"seed":18446744073709551615,"steps":50}';
    const caller = request({ body: big });
    const untouched = await shape(caller, { ...same, transform: (r) => ({ ...r, body: { ...r.body } }) });
    expect(untouched.body).toBe(big);
    // A string is JSON the transform wrote: sent as it is, labelled as JSON.
    const text = await shape(request({ headers: {} }), { ...same, transform: (r) => ({ ...r, body: "[1]" }) });
    expect([text.body, headersOf(text).get("content-type")]).toEqual(["[1]", "application/json"]);
    const changed = await shape(request({ headers: {} }), {
      ...same,
      transform: (r) => ({ ...r, body: { ...r.body, steps: 20 } }),
    });
    expect([changed.body, headersOf(changed).get("content-type")]).toEqual([
      '{"prompt":"p","n":1,"steps":20}',
      "application/json",
    ]);
    // A changed body is JSON: a text/plain label (the platform's, for a string body) becomes JSON's; any other stays.
    const relabel = async (type: string) =>
      headersOf(
        await shape(request({ headers: { "content-type": type } }), {
          ...same,
          transform: (r) => ({ ...r, body: { ...r.body, steps: 20 } }),
        }),
      ).get("content-type");
    expect(await relabel("text/plain;charset=UTF-8")).toBe("application/json");
    expect(await relabel("TEXT/PLAIN")).toBe("application/json");
    expect(await relabel("application/vnd.api+json")).toBe("application/vnd.api+json");
    expect(await relabel('multipart/related; type="application/json"')).toBe("application/json");
  });

  it("keeps the label a transform or the endpoint's headers chose for a changed body, and a Blob's own JSON type", async () => {
    const changed = (r: EndpointRequest): TransformedRequest => ({ ...r, body: "a=1" });
    const labelOf = async (caller: CallRequest, endpoint: Endpoint) =>
      headersOf(await shape(caller, endpoint)).get("content-type");
    const setLabel = (value: string) => (r: EndpointRequest) => {
      r.headers.set("content-type", value);
      return r.headers;
    };
    const setting = (make: (r: EndpointRequest) => Headers): Endpoint => ({
      ...same,
      transform: (r) => ({ ...changed(r), headers: make(r) }),
    });
    expect(await labelOf(request(), setting(setLabel("text/csv")))).toBe("text/csv");
    // Set to the caller's own value, it is still the transform's choice.
    const caller = request({ headers: { "content-type": "text/plain" } });
    expect(await labelOf(caller, setting(setLabel("text/plain")))).toBe("text/plain");
    expect(
      await labelOf(
        caller,
        setting(() => new Headers({ "content-type": "application/x-www-form-urlencoded" })),
      ),
    ).toBe("application/x-www-form-urlencoded");
    // A copy of the caller's headers chooses nothing.
    expect(
      await labelOf(
        caller,
        setting((r) => new Headers(r.headers)),
      ),
    ).toBe("application/json");
    const own: Endpoint = { ...same, headers: { "Content-Type": "text/csv" }, transform: changed };
    expect(await labelOf(caller, own)).toBe("text/csv");
    const blob = (type: string) => request({ body: new Blob(['{"a":1}'], { type }), headers: {} });
    const json: Endpoint = { ...same, transform: (r) => ({ ...r, body: { ...r.body, b: 2 } }) };
    expect(await labelOf(blob("application/vnd.api+json"), json)).toBe("application/vnd.api+json");
    expect(await labelOf(blob("text/plain"), json)).toBe("application/json");
  });

  it("sends an allowlisted header to another origin as the caller sent it, even one another header repeats", async () => {
    // The same value under a name that stays home (a trace id copied into a custom header) does not make the
    // allowlisted one the caller's secret: unchanged, it goes as it was.
    const caller = request({ headers: { "idempotency-key": "key-0123456789", "x-request-id": "key-0123456789" } });
    const sentOn = headersOf(await shape(caller, { ...other, transform: (r) => r }));
    expect([sentOn.get("idempotency-key"), sentOn.has("x-request-id")]).toEqual(["key-0123456789", false]);
  });

  it("refuses a transform that returns no request, naming the endpoint", async () => {
    for (const bad of [undefined, null, "x", {}, { url: 5 }, { url: "https://a.example/", headers: {} }]) {
      const endpoint: Endpoint = { ...same, transform: () => bad as never };
      await expect(shape(request(), endpoint)).rejects.toThrow(
        /fallback endpoint "b": transform\(request\) must return a request object with a url and Headers/,
      );
    }
  });

  it("parses the caller's body once per call, however many endpoints read it", async () => {
    let reads = 0;
    const blob = new Blob(['{"a":1}']);
    const counting = Object.assign(blob, {
      arrayBuffer: () => {
        reads++;
        return Blob.prototype.arrayBuffer.call(blob);
      },
    });
    const json = jsonOnce(request({ body: counting }));
    await json();
    await json();
    expect(reads).toBe(1);
  });

  it("keeps every init field of the caller's on the way to the transport", async () => {
    const caller = request({ redirect: "error", credentials: "include", cache: "no-store", keepalive: true });
    const shaped = await shape(caller, other);
    const [input, init] = fetchArguments(shaped, undefined);
    expect([input, init?.redirect, init?.credentials, init?.cache, init?.keepalive, init?.method]).toEqual([
      "https://c.example/v2/jobs",
      "error",
      "include",
      "no-store",
      true,
      "POST",
    ]);
    const get = fetchArguments({ ...shaped, method: "GET" }, undefined)[1];
    expect(get?.body).toBeNull();
  });
});
