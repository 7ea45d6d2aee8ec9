import { describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { createResilience, FallbackExhaustedError } from "../../src/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

// The proxy run in Node (behind Hono's Node server, say), on Node's own fetch,
// which refuses some requests before sending them: the client's mistake
// must not reach its client as the upstream's failure (a 502), which a
// client layer in front retries and counts against the proxy's host.
const api = httpUpstream();
serveDuringFile(api);

const ctx = { waitUntil: () => {} };

describe("the proxy and what its client got wrong", () => {
  it("forwards an upload sent under `expect: 100-continue` (curl's large uploads), without the `expect`", async () => {
    api.reset();
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: api.base }] });
    const request = new Request("https://proxy.example/v1/upload", {
      method: "PUT",
      body: "frame-bytes",
      headers: { expect: "100-continue", "content-type": "application/octet-stream" },
    });
    const response = await proxy.fetch(request, {}, ctx);
    expect([response.status, await response.text()]).toEqual([200, "ok"]);
    expect(api.hits.map((hit) => [hit.method, hit.path, hit.body])).toEqual([["PUT", "/v1/upload", "frame-bytes"]]);
    expect(api.hits[0]?.headers.expect).toBeUndefined();
  });

  it("answers 400, not 502, for a request Node's fetch refuses unsent, and counts nothing against the upstream", async () => {
    api.reset();
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: api.base }] });
    const request = new Request("https://proxy.example/v1/upload", {
      method: "PUT",
      body: "frame-bytes",
      headers: { "content-length": "abc" },
    });
    const response = await proxy.fetch(request, {}, ctx);
    expect([response.status, await response.json()]).toEqual([400, { error: "the client's request failed" }]);
    expect(api.hits).toEqual([]);
    const health = await (await proxy.fetch(new Request("https://proxy.example/__resilience/health"), {}, ctx)).json();
    expect(Object.values(health.breakers as Record<string, { consecutiveFailures: number }>)).toEqual([
      expect.objectContaining({ consecutiveFailures: 0 }),
    ]);
  });

  it("answers 400 for a chain whose every endpoint refused so, and 502 when another's failure was the upstream's", async () => {
    const resilience = createResilience({ retry: false });
    const refused = await resilience
      .fetch(`${api.base}/v1`, { method: "PUT", body: "x", headers: { "content-length": "abc" } })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failureResponse(refused).status).toBe(400);
    expect(failureResponse(new FallbackExhaustedError("uploads", { api: refused, spare: refused })).status).toBe(400);
    const mixed = new FallbackExhaustedError("uploads", { api: refused, spare: new TypeError("fetch failed") });
    expect(failureResponse(mixed).status).toBe(502);
    // A look-alike made by hand is no refusal: only the runtime's own error is.
    expect(failureResponse(new TypeError("fetch failed", { cause: { code: "ECONNRESET" } })).status).toBe(502);
  });
});
