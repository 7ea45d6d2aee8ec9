import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";

const ctx = { waitUntil: () => {} };
const encoder = new TextEncoder();

/** A client upload: `chunks` then, unless `end`, a stream that stays open. */
function upload(chunks: string[], end: boolean) {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(encoder.encode(chunks[i++]));
      else if (end) controller.close();
      else return new Promise<void>(() => {});
    },
  });
}

describe("the proxy's upload: bounded, never held whole", () => {
  it("starts the attempt after maxReplayBytes of an upload that is still coming, and sends it once", async () => {
    const started: string[] = [];
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        maxReplayBytes: 1000,
        retry: false,
        fetch: async (input) => {
          started.push(input instanceof Request ? input.url : String(input));
          return new Response("accepted", { status: 202 });
        },
      },
    });
    const body = upload(["a".repeat(800), "b".repeat(800)], false);
    const request = new Request("https://proxy.example/jobs", { method: "POST", body, duplex: "half" } as RequestInit);
    const res = await proxy.fetch(request, {}, ctx);
    expect(res.status).toBe(202);
    expect(started).toEqual(["https://up.example/jobs"]);
  });

  it("retries a small upload with the same bytes", async () => {
    const bodies: string[] = [];
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        retry: { initialDelay: 0, jitter: "none" },
        fetch: async (input, init) => {
          const request = new Request(input, init);
          bodies.push(await request.text());
          return bodies.length === 1 ? new Response("busy", { status: 503 }) : new Response("ok");
        },
      },
    });
    const body = upload(['{"prompt":', '"waves"}'], true);
    const request = new Request("https://proxy.example/jobs", {
      method: "POST",
      body,
      headers: { "idempotency-key": "k1" },
      duplex: "half",
    } as RequestInit);
    const res = await proxy.fetch(request, {}, ctx);
    expect(await res.text()).toBe("ok");
    expect(bodies).toEqual(['{"prompt":"waves"}', '{"prompt":"waves"}']);
  });
});
