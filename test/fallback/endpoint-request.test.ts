import { describe, expect, it } from "vitest";
import { endpointRequest, jsonOnce } from "../../src/fallback/endpoint-request.ts";
import type { EndpointRequest, FallbackEndpointCommon, UrlEndpoint } from "../../src/fallback/fallback-options.ts";
import type { CallRequest } from "../../src/http/request/call-request.ts";
import { normalizeRequest } from "../../src/http/request/normalize-request.ts";

/** An endpoint that calls a URL: the only kind endpointRequest shapes. */
type Endpoint = FallbackEndpointCommon & UrlEndpoint;

const request = (init: RequestInit = {}, url = "https://a.example/v1/jobs"): CallRequest =>
  normalizeRequest(
    url,
    {
      method: "POST",
      headers: { authorization: "Bearer a", "content-type": "application/json" },
      body: '{"prompt":"p"}',
      ...init,
    },
    { idempotentMethods: new Set(["GET"]), addIdempotencyKey: false, maxReplayBytes: 1000 },
    undefined,
  ) as CallRequest;
const shape = (caller: CallRequest, endpoint: Endpoint, rest = "/jobs") =>
  endpointRequest(caller, endpoint, rest, [], jsonOnce(caller));
const headersOf = (r: CallRequest) => new Headers(r.headers);
const same: Endpoint = { name: "b", url: "https://a.example/v2" };
const other: Endpoint = { name: "c", url: "https://c.example/v2" };

/** What a transform was shown, for each caller body. */
async function viewOf(body: string): Promise<EndpointRequest["body"] | "not called"> {
  let seen: EndpointRequest["body"] | "not called" = "not called";
  await shape(request({ body }), {
    ...same,
    transform: (r) => {
      seen = r.body;
      return r;
    },
  });
  return seen;
}

describe("endpointRequest: the request a transform sees and returns", () => {
  it("sends an endpoint on the caller's origin its own headers and the caller's", async () => {
    const caller = request();
    const shaped = await shape(caller, { name: "local", url: "https://a.example/v1", headers: { "x-own": "1" } });
    expect([shaped.url, headersOf(shaped).get("x-own"), headersOf(shaped).get("authorization")]).toEqual([
      "https://a.example/v1/jobs",
      "1",
      "Bearer a",
    ]);
  });

  it("shows the transform the endpoint's own headers", async () => {
    let seen: string | null = null;
    await shape(request(), {
      ...other,
      headers: { "x-api-key": "provider" },
      transform: (r) => {
        seen = r.headers.get("x-api-key");
        return r;
      },
    });
    expect(seen).toBe("provider");
  });

  it("refuses a transform whose url is not a string, naming the endpoint", async () => {
    const endpoint: Endpoint = { ...same, transform: () => ({ url: 5, headers: new Headers() }) as never };
    await expect(shape(request(), endpoint)).rejects.toThrow(
      new TypeError('fallback endpoint "b": transform(request) must return a request object with a url and Headers'),
    );
  });

  it("keeps, on another origin, the allowlisted caller headers and the endpoint's own, even with the caller's value", async () => {
    const caller = request({
      headers: { authorization: "Bearer a", "content-type": "application/json", "x-api-key": "shared" },
    });
    const shaped = await shape(caller, { ...other, headers: { "X-Api-Key": "shared" }, transform: (r) => r });
    const sent = headersOf(shaped);
    expect([sent.get("content-type"), sent.get("x-api-key"), sent.has("authorization")]).toEqual([
      "application/json",
      "shared",
      false,
    ]);
  });

  it("on another origin, an empty piece of the caller's value (a trailing comma) holds back no value the transform appended anew", async () => {
    const caller = request({ headers: { "x-tenant": "acme," } });
    const shaped = await shape(caller, {
      ...other,
      transform: (r) => {
        // Not `set`: deleted, then appended, the value the endpoint's own.
        r.headers.delete("x-tenant");
        r.headers.append("x-tenant", "partner-7");
        return r;
      },
    });
    expect(headersOf(shaped).get("x-tenant")).toBe("partner-7");
    // The caller's own value, appended to, still stays home.
    const appended = await shape(caller, {
      ...other,
      transform: (r) => {
        r.headers.append("x-tenant", "partner-7");
        return r;
      },
    });
    expect(headersOf(appended).has("x-tenant")).toBe(false);
  });

  it("on another origin, a header under a new name stays home when it holds a caller's value or part of 8 characters or more", async () => {
    const caller = request({
      headers: { "x-api-key": "sk-12345678", "x-flags": "1; beta", cookie: "a=1; s=session99" },
    });
    const shaped = await shape(caller, {
      ...other,
      transform: (r) => {
        r.headers.append("x-provider-key", r.headers.get("x-api-key") as string);
        r.headers.append("x-session", "s=session99");
        // Short values any header may hold: the endpoint's own.
        r.headers.append("x-version", "1");
        r.headers.append("x-channel", "beta");
        return r;
      },
    });
    const sent = headersOf(shaped);
    expect([sent.has("x-provider-key"), sent.has("x-session")]).toEqual([false, false]);
    expect([sent.get("x-version"), sent.get("x-channel")]).toEqual(["1", "beta"]);
    // Written with `set`, it is the endpoint's, whatever it holds.
    const chosen = await shape(caller, {
      ...other,
      transform: (r) => {
        r.headers.set("x-provider-key", r.headers.get("x-api-key") as string);
        return r;
      },
    });
    expect(headersOf(chosen).get("x-provider-key")).toBe("sk-12345678");
  });

  it("sends the method a transform returns, as fetch normalises it, and the caller's when a JavaScript transform returns none", async () => {
    const purge = await shape(request(), { ...same, transform: (r) => ({ ...r, method: "purge" }) });
    const put = await shape(request(), { ...same, transform: (r) => ({ ...r, method: "put" }) });
    expect([purge.method, put.method]).toEqual(["purge", "PUT"]);
    const none = await shape(request(), { ...same, transform: (r) => ({ url: r.url, headers: r.headers }) as never });
    expect([none.method, none.body]).toEqual(["POST", '{"prompt":"p"}']);
  });

  it("sends the caller's body when the transform returns none", async () => {
    const caller = request({ body: '{"prompt":"p", "n": 1.0}' });
    const shaped = await shape(caller, {
      ...same,
      transform: (r) => ({ method: r.method, url: r.url, headers: r.headers }),
    });
    expect(shaped.body).toBe('{"prompt":"p", "n": 1.0}');
  });

  it("sends a string body from the transform as it is, even when the caller's JSON is that string", async () => {
    const shaped = await shape(request({ body: '"hello"' }), { ...same, transform: (r) => ({ ...r, body: "hello" }) });
    expect(shaped.body).toBe("hello");
  });

  it("serialises an object body the transform changed", async () => {
    const shaped = await shape(request(), { ...same, transform: (r) => ({ ...r, body: { prompt: "q" } }) });
    expect(shaped.body).toBe('{"prompt":"q"}');
  });

  it("sends the caller's bytes for a JSON scalar body the transform returns unchanged", async () => {
    const shaped = await shape(request({ body: "1e3" }), { ...same, transform: (r) => ({ ...r, body: 1000 }) });
    expect(shaped.body).toBe("1e3");
  });

  it("shows the transform a JSON object body only, not an array, a scalar or null", async () => {
    expect(await viewOf('{"a":1}')).toEqual({ a: 1 });
    expect(await viewOf("[1,2]")).toBeUndefined();
    expect(await viewOf("5")).toBeUndefined();
    expect(await viewOf("null")).toBeUndefined();
    expect(await viewOf('"text"')).toBeUndefined();
  });
});
