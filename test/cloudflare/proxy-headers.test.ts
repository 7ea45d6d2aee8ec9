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
