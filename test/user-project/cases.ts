import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createResilience } from "@storycore/resilient-fetch";
import { corsPreflight, type Fault, json, sequence, TestClock, upstream } from "@storycore/resilient-fetch/testing";
import { HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";

/** A cross-origin API: every answer carries the CORS header a browser needs to read it. */
const CORS = { "access-control-allow-origin": "*" };

/**
 * A gateway 503 whose body is still arriving when the client decides to
 * retry: eight chunks, each a macrotask after the last (a real upstream's
 * body comes in over several reads, not at once).
 */
function streaming503(): Fault {
  return () => {
    const encoder = new TextEncoder();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 8) {
          controller.close();
          return;
        }
        if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 0));
        controller.enqueue(encoder.encode(`upstream overloaded (${sent++})\n`.repeat(64)));
      },
    });
    return new HttpResponse(body, { status: 503, headers: { ...CORS, "content-type": "text/plain" } });
  };
}

/**
 * A real API on 127.0.0.1 (cross-origin to happy-dom's document), for the
 * requests MSW lets through: each path's first request gets a 503 whose body
 * is sent in part, the rest only once the retry has arrived, so the body is
 * certainly still streaming when the client moves on; later requests get a 200.
 */
async function startRealApi() {
  const unfinished: Array<{ res: ServerResponse; rest: number }> = [];
  const seen = new Map<string, number>();
  let finished = 0;
  const finishedWaiters: Array<() => void> = [];
  const server = createServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    req.resume();
    const n = (seen.get(req.url ?? "") ?? 0) + 1;
    seen.set(req.url ?? "", n);
    if (n === 1) {
      // "close" also fires when the client hangs up early: either way the body is over.
      res.on("close", () => {
        finished++;
        for (const wake of finishedWaiters.splice(0)) wake();
      });
      res.writeHead(503, { "content-type": "text/plain" });
      res.write("overloaded\n".repeat(100));
      unfinished.push({ res, rest: 20 });
      return;
    }
    // The retry is here: the first answer's body goes on arriving now.
    for (const { res: first, rest } of unfinished.splice(0)) {
      for (let i = 0; i < rest; i++) first.write("overloaded\n".repeat(100));
      first.end();
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: 1, status: "done" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves once `n` streamed 503 bodies are over (sent to their end, or hung up on). */
    streamedBodies: (n: number) =>
      new Promise<void>((resolve) => {
        if (finished >= n) resolve();
        else finishedWaiters.push(() => (finished >= n ? resolve() : undefined));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The tests a user of the library writes, the same in each environment. */
export function defineUserTests(environment: "node" | "happy-dom"): void {
  const server = setupServer(corsPreflight());
  let realApi: Awaited<ReturnType<typeof startRealApi>>;
  beforeAll(async () => {
    realApi = await startRealApi();
    server.listen({
      // Requests to the real API go to the network, as unmocked requests do
      // in a user's project; any other unmocked request is a mistake.
      onUnhandledFrame: ({ frame, defaults }) => {
        const url = (frame.data as { request?: Request }).request?.url;
        if (!url?.startsWith(realApi.url)) defaults.error();
      },
    });
  });
  afterEach(() => server.resetHandlers());
  afterAll(async () => {
    server.close();
    await realApi.close();
  });

  it(`runs in ${environment}`, () => {
    expect(typeof document === "undefined" ? "node" : "happy-dom").toBe(environment);
  });

  it("retries a GET past a cross-origin 503 whose body is still streaming", async () => {
    const api = upstream(
      "GET",
      "https://gen.example/v1/jobs/1",
      sequence([streaming503(), json({ id: 1, status: "done" }, { headers: CORS })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock });

    const response = await clock.run(resilience.fetch("https://gen.example/v1/jobs/1"));

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: 1, status: "done" });
    expect(api.count()).toBe(2);
  });

  it("retries a POST with an idempotency key past the same 503, one key for both attempts", async () => {
    const api = upstream(
      "POST",
      "https://gen.example/v1/images",
      sequence([streaming503(), json({ url: "https://cdn.example/cat.png" }, { headers: CORS })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });

    const response = await clock.run(
      resilience.fetch("https://gen.example/v1/images", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a cat" }),
      }),
    );

    expect(await response.json()).toEqual({ url: "https://cdn.example/cat.png" });
    expect(api.count()).toBe(2);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    expect(api.bodies).toEqual([JSON.stringify({ prompt: "a cat" }), JSON.stringify({ prompt: "a cat" })]);
  });

  it("retries past a real cross-origin 503 whose body is still streaming, and leaves nothing behind", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock });

    const response = await clock.run(resilience.fetch(`${realApi.url}/v1/jobs/2`));

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: 1, status: "done" });
    // The 503's body went on arriving after the retry; the run must see it
    // through without an error of its own (vitest fails on one).
    await realApi.streamedBodies(1);
  });
}
