import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { ConfigError, createResilience, memoryStore, type ReplayEvent } from "../../src/index.ts";
import { json, recordEvents, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/images";

describe("secrets never leave in events, errors or health", () => {
  it("drops query strings (API keys) from event and health URLs, and never records headers", async () => {
    route(server, "GET", URL_, status(503), status(503), status(503));
    const clock = new TestClock();
    const resilience = createResilience({ clock, breaker: { failureThreshold: 2 } });
    const recorder = recordEvents(resilience);
    await clock.run(
      resilience.fetch(`${URL_}?api_key=sk-secret-123#frag`, { headers: { authorization: "Bearer sk-secret-456" } }),
    );
    const error = await clock.run(resilience.fetch(`${URL_}?api_key=sk-secret-123`)).catch((e: unknown) => e);
    const everything = JSON.stringify([
      recorder.events,
      resilience.health(),
      resilience.debugInfo(),
      String(error),
      (error as Error).message,
    ]);
    expect(everything).not.toContain("sk-secret");
    expect(everything).toContain(URL_);
  });

  it("keeps a URL's path as written (SECURITY.md's limit: a key in the path shows)", async () => {
    const inPath = "https://gen.example/bot123:path-token/send";
    route(server, "GET", inPath, status(503), status(503), status(503));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const recorder = recordEvents(resilience);
    await clock.run(resilience.fetch(`${inPath}?api_key=sk-secret-789`));
    for (const shown of [recorder.events, resilience.debugInfo()]) {
      expect(JSON.stringify(shown)).not.toContain("sk-secret");
      expect(JSON.stringify(shown)).toContain("/bot123:path-token/send");
    }
  });
});

describe("replay limit", () => {
  it("sends a body over maxReplayBytes once, without retries, and says so", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, maxReplayBytes: 1_000 });
    const events: ReplayEvent[] = [];
    resilience.on("replay", (e) => events.push(e));
    const res = await clock.run(resilience.fetch(`${URL_}?k=secret`, { method: "PUT", body: "x".repeat(1_001) }));
    expect(res.status).toBe(503);
    expect(upstream.count()).toBe(1);
    expect(events).toEqual([{ url: URL_, bytes: 1_001, limit: 1_000 }]);
  });

  it("sends a ReadableStream in init once without a replay event: it is never read ahead to be measured", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, maxReplayBytes: 1_000 });
    const events: ReplayEvent[] = [];
    resilience.on("replay", (e) => events.push(e));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("small"));
        controller.close();
      },
    });
    const init = { method: "PUT", body, duplex: "half" } as RequestInit & { duplex: string };
    const res = await clock.run(resilience.fetch(URL_, init));
    expect(res.status).toBe(503);
    expect(upstream.count()).toBe(1);
    expect(events).toEqual([]);
  });

  it("keeps retrying a body at the limit, counting UTF-8 bytes", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const clock = new TestClock();
    const resilience = createResilience({ clock, maxReplayBytes: 1_000 });
    await clock.run(resilience.fetch(URL_, { method: "PUT", body: new Uint8Array(1_000) }));
    expect(upstream.count()).toBe(2);
    // 400 characters of 3 bytes each are 1,200 bytes: over the limit.
    const wide = route(server, "PATCH", URL_, status(503), json({}));
    await clock.run(
      resilience.fetch(URL_, { method: "PATCH", body: "€".repeat(400), headers: { "idempotency-key": "k" } }),
    );
    expect(wide.count()).toBe(1);
  });

  it("does not read a Request body announced as larger than the limit", async () => {
    const upstream = route(server, "PUT", URL_, status(503), json({}));
    const resilience = createResilience({ maxReplayBytes: 10, retry: { initialDelay: 0, maxDelay: 0 } });
    const request = new Request(URL_, { method: "PUT", body: "y".repeat(50), headers: { "content-length": "50" } });
    expect((await resilience.fetch(request)).status).toBe(503);
    expect(upstream.count()).toBe(1);
    expect(upstream.bodies[0]).toBe("y".repeat(50));
  });
});

describe("a key given as an option's value (SECURITY.md, Limits)", () => {
  it("is quoted where it is plain text, so the Limits say it, and a URL in it is cut", async () => {
    const security = (await readFile(new URL("../../SECURITY.md", import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(security).toContain(
      "A refused option value that is text is quoted, so that `\"5\"` is not read as the number 5: a key pasted where a number, a level or a name belongs (`maxAttempts: process.env.API_KEY`) shows in the `ConfigError`, and so it does in every refusal that shows what it was given (`setLevel`'s, `on`'s, a method's, a store's, the testing kit's, and the runtime's own for an `init` field or method its `Request` refuses, `mode: \"sk_live_…\"`, on the ky client's calls too). A URL in it is cut (and outside the layer's options, text that is no plain word, letters, digits, spaces and `_.,+-`, is named `a string`); a header value is never quoted.",
    );
    const key = "sk_live_51Habc";
    const refusal = (make: () => unknown) => (thrown(make) as Error).message;
    const option = refusal(() => createResilience({ retry: { maxAttempts: key as never } }));
    expect(() => createResilience({ retry: { maxAttempts: key as never } })).toThrow(ConfigError);
    expect(option).toContain(`"${key}"`);
    expect(refusal(() => createResilience({ retry: { maxAttempts: `${key}/x y` as never } }))).toContain(key);
    expect(
      refusal(() => createResilience({ retry: { maxAttempts: `https://a.example/?k=${key}` as never } })),
    ).not.toContain(key);
    const levels = createResilience({ degradation: degradation() }).degradation;
    expect(refusal(() => levels.setLevel(key as never))).toContain(`"${key}"`);
    expect(refusal(() => levels.setLevel(`${key}/x` as never))).toContain("got a string");
    expect(refusal(() => memoryStore(key as never))).toContain(`"${key}"`);
    expect(refusal(() => status(key as never))).toContain(`"${key}"`);
    const layer = createResilience({ retry: false, fetch: async () => new Response("sent") });
    expect(refusal(() => layer.on(key as never, () => {}))).toContain(`"${key}"`);
    for (const init of [{ method: `Bearer ${key}` }, { mode: key }]) {
      const error = await rejection(layer.fetch("https://api.example/v1", init as RequestInit));
      expect((error as Error).message).toContain(key);
    }
  });
});
