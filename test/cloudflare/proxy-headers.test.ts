import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";

const ctx = { waitUntil: () => {} };

/** A proxy on one upstream whose transport records the headers it got and answers with `answer`. */
function proxyRecording(answer: () => Response = () => new Response("ok")) {
  const seen: Headers[] = [];
  const proxy = resilientProxy({
    routes: [{ path: "/", upstream: "https://up.example" }],
    resilience: {
      fetch: async (input, init) => {
        seen.push(new Request(input, init).headers);
        return answer();
      },
    },
  });
  return { proxy, seen };
}

describe("what the proxy forwards", () => {
  it("drops Cloudflare's headers about the end user by their exact names, and keeps headers that only contain them", async () => {
    const { proxy, seen } = proxyRecording();
    const headers = {
      "cf-connecting-ip": "203.0.113.7",
      "x-forwarded-for": "203.0.113.7",
      "x-real-ip": "203.0.113.7",
      "true-client-ip": "203.0.113.7",
      "x-trace-cf-id": "kept",
      "x-real-ipv6-hint": "kept",
      "true-client-ip-note": "kept",
    };
    await proxy.fetch(new Request("https://proxy.example/x", { headers }), {}, ctx);
    const sent = seen[0] as Headers;
    expect(
      [...sent.keys()]
        .filter((name) => name.startsWith("x-") || name.startsWith("cf-") || name.startsWith("true-"))
        .sort(),
    ).toEqual(["true-client-ip-note", "x-real-ipv6-hint", "x-trace-cf-id"]);
  });

  it("drops what a proxy before it says about the user, and the client's credentials for a proxy", async () => {
    const { proxy, seen } = proxyRecording();
    const headers = {
      forwarded: "for=203.0.113.7",
      "x-client-ip": "203.0.113.7",
      "proxy-authorization": "Basic c2VjcmV0",
      "x-forwarded-host-note": "dropped (x-forwarded-*)",
      "forwarded-note": "kept",
      authorization: "Bearer for-the-provider",
    };
    await proxy.fetch(new Request("https://proxy.example/x", { headers }), {}, ctx);
    const sent = seen[0] as Headers;
    expect([...sent.keys()].filter((name) => name !== "content-type").sort()).toEqual([
      "authorization",
      "forwarded-note",
    ]);
  });

  it("drops the headers Connection names as the hop's, both ways, and ignores names that are no token", async () => {
    const { proxy, seen } = proxyRecording(
      () => new Response("ok", { headers: { connection: "x-up-hop", "x-up-hop": "1", "x-upstream": "1" } }),
    );
    const response = await proxy.fetch(
      new Request("https://proxy.example/x", {
        headers: { connection: "X-Client-Hop, bad name, ,keep-alive", "x-client-hop": "1", "x-client": "1" },
      }),
      {},
      ctx,
    );
    expect([...(seen[0] as Headers).keys()].filter((name) => name.startsWith("x-"))).toEqual(["x-client"]);
    expect(response.headers.get("x-up-hop")).toBeNull();
    expect(response.headers.get("x-upstream")).toBe("1");
  });

  it("does not relay the upstream hop's connection headers to the client", async () => {
    const { proxy } = proxyRecording(
      () => new Response("ok", { headers: { "keep-alive": "timeout=5", trailer: "x-sum", "x-upstream": "1" } }),
    );
    const res = await proxy.fetch(new Request("https://proxy.example/x"), {}, ctx);
    expect([res.headers.get("keep-alive"), res.headers.get("trailer"), res.headers.get("x-upstream")]).toEqual([
      null,
      null,
      "1",
    ]);
  });
});
