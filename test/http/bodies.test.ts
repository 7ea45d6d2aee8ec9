import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { json, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/images";

describe("request bodies", () => {
  it("replays a Request input's body on every retry", async () => {
    const upstream = route(server, "PUT", URL_, status(503), status(500), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const request = new Request(URL_, {
      method: "PUT",
      body: JSON.stringify({ prompt: "a fox" }),
      headers: { "x-trace": "t1" },
    });
    expect((await clock.run(resilience.fetch(request))).status).toBe(200);
    expect(upstream.bodies).toEqual(Array(3).fill('{"prompt":"a fox"}'));
    expect(upstream.requests.map((r) => r.headers.get("x-trace"))).toEqual(["t1", "t1", "t1"]);
  });

  it.each([
    ["a string", () => "plain"],
    ["bytes", () => new TextEncoder().encode("plain")],
    ["a Blob", () => new Blob(["plain"])],
    ["URLSearchParams", () => new URLSearchParams({ p: "plain" })],
  ])("replays %s", async (_name, make) => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    await clock.run(resilience.fetch(URL_, { method: "PUT", body: make() }));
    expect(upstream.count()).toBe(2);
    expect(upstream.bodies[0]).toBe(upstream.bodies[1]);
    expect(upstream.bodies[0]?.length).toBeGreaterThan(0);
  });

  it("replays a FormData's fields, encoded by fetch at each send under a new boundary its content-type names", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const form = new FormData();
    form.set("prompt", "a fox");
    await clock.run(resilience.fetch(URL_, { method: "PUT", body: form }));
    const boundaries = upstream.requests.map((r) => /boundary=(\S+)/.exec(r.headers.get("content-type") ?? "")?.[1]);
    expect(boundaries).toHaveLength(2);
    expect(boundaries[0]).not.toBe(boundaries[1]);
    upstream.bodies.forEach((body, i) => {
      expect(body).toContain(`--${boundaries[i]}`);
      expect(body.split(`--${boundaries[i]}`).join("")).toBe(upstream.bodies[0]?.split(`--${boundaries[0]}`).join(""));
    });
  });

  it("sends a ReadableStream body once, with retries off for that call", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("streamed"));
        controller.close();
      },
    });
    const res = await clock.run(resilience.fetch(URL_, { method: "PUT", body, duplex: "half" } as RequestInit));
    expect(res.status).toBe(503);
    expect(upstream.count()).toBe(1);
    expect(upstream.bodies).toEqual(["streamed"]);
  });
});

describe("response bodies", () => {
  it("hands over a streamed response chunk by chunk, before the upstream finishes", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let finished = false;
    server.use(
      http.get(URL_, () => {
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("data: frame-1\n\n"));
            await gate;
            controller.enqueue(new TextEncoder().encode("data: frame-2\n\n"));
            controller.close();
            finished = true;
          },
        });
        return new HttpResponse(body, { headers: { "content-type": "text/event-stream" } });
      }),
    );
    const resilience = createResilience();
    const res = await resilience.fetch(URL_);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("data: frame-1\n\n");
    expect(finished).toBe(false);
    release();
    const second = await reader.read();
    expect(new TextDecoder().decode(second.value)).toBe("data: frame-2\n\n");
    expect((await reader.read()).done).toBe(true);
    expect(finished).toBe(true);
  });

  it("cancels the body of a response it retries past", async () => {
    let cancelled = false;
    let calls = 0;
    let onCancel = (): void => {};
    const cancelSeen = new Promise<void>((resolve) => {
      onCancel = resolve;
    });
    server.use(
      http.get(URL_, () => {
        calls++;
        if (calls > 1) return HttpResponse.json({});
        const body = new ReadableStream({
          pull(controller) {
            controller.enqueue(new TextEncoder().encode("x"));
          },
          cancel() {
            cancelled = true;
            onCancel();
          },
        });
        return new HttpResponse(body, { status: 503 });
      }),
    );
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    await clock.run(resilience.fetch(URL_));
    expect(calls).toBe(2);
    // The cancel reaches the stream through MSW's plumbing a few ticks later:
    // wait for it (no timer: the test times out, and fails, if it never comes).
    await cancelSeen;
    expect(cancelled).toBe(true);
  });
});
