/**
 * Sentences of docs/health-and-events.md checked through the public
 * API: a breaker held open by a `Retry-After` shows that reason as its
 * `lastError`; `analytics.clearHistory()` empties the error rate's minute
 * too; `open` → `half_open` fires when the first call after `timeout`
 * arrives, while `health()` reads `half_open` as soon as `timeout` passed;
 * a `retry` event's `url` in a chain and after followed redirects; an event
 * a listener sets off is heard out at once.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const URL_ = "https://gen.example/v1/images";

describe("health and events: the sentences on holds, clearHistory and half-open", () => {
  it("shows a Retry-After hold's reason as the open breaker's lastError", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      fetch: async () => new Response("busy", { status: 503, headers: { "retry-after": "3600" } }),
    });
    await layer.fetch(URL_);
    const breaker = layer.health().breakers["gen.example"];
    expect({ state: breaker?.state, lastError: breaker?.lastError }).toEqual({
      state: "open",
      lastError: "Retry-After 3600 s on status 503",
    });
  });

  it("reads errorRate 0 after analytics.clearHistory()", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("down", { status: 500 }),
    });
    await layer.fetch(URL_);
    expect(layer.health().errorRate).toBe(1);
    layer.analytics.clearHistory();
    expect(layer.health().errorRate).toBe(0);
  });

  it("fires open → half_open with the first call after timeout, not when timeout passes", async () => {
    const clock = new TestClock();
    let answer = 503;
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response("", { status: answer }),
    });
    const changes: string[] = [];
    layer.on("breaker", (e) => changes.push(`${e.from}→${e.to}`));
    await layer.fetch(URL_);
    await clock.advance(1_000);
    expect(layer.health().breakers["gen.example"]?.state).toBe("half_open");
    expect(changes).toEqual(["closed→open"]);
    answer = 200;
    await layer.fetch(URL_);
    expect(changes.slice(0, 2)).toEqual(["closed→open", "open→half_open"]);
  });
});

describe("health and events: where a retry event's url points", () => {
  it("names the URL the failed attempt went to: in a chain, the endpoint's after its transform", async () => {
    const guide = (await readFile(new URL("../../docs/health-and-events.md", import.meta.url), "utf8")).replace(
      /\s+/g,
      " ",
    );
    expect(guide).toContain(
      "`url` is where the failed attempt went, without its query: in a chain, the endpoint's URL after its `transform`, not the caller's",
    );
    const { fallback } = await import("../../src/fallback/index.ts");
    const clock = new TestClock();
    const sent: string[] = [];
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 100, jitter: "none" },
      fetch: async (input) => {
        const url = input instanceof Request ? input.url : String(input);
        sent.push(url);
        return new Response("x", { status: url.startsWith("https://a.example") ? 503 : sent.length >= 4 ? 200 : 503 });
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1/images" },
            {
              name: "b",
              url: "https://b.example/v2/images",
              transform: (req) => ({ ...req, url: `https://c.example/v3/render?key=SECRET` }),
            },
          ],
        },
      ]),
    });
    const retries: Array<[string, string]> = [];
    layer.on("retry", (event) => retries.push([event.key, event.url]));
    const res = await clock.run(layer.fetch("https://a.example/v1/images?caller=1"));
    expect(res.status).toBe(200);
    expect(sent).toEqual([
      "https://a.example/v1/images?caller=1",
      "https://a.example/v1/images?caller=1",
      "https://c.example/v3/render?key=SECRET",
      "https://c.example/v3/render?key=SECRET",
    ]);
    expect(retries).toEqual([
      ["a.example", "https://a.example/v1/images"],
      ["c.example", "https://c.example/v3/render"],
    ]);
  });

  it("names where a followed attempt began in `retry`, its hops in `redirect` events", async () => {
    const guide = (await readFile(new URL("../../docs/health-and-events.md", import.meta.url), "utf8")).replace(
      /\s+/g,
      " ",
    );
    expect(guide).toContain(
      "after redirects the layer followed, where the attempt began (its hops are one attempt, each in a `redirect` event)",
    );
    const clock = new TestClock();
    const sent: string[] = [];
    const layer = createResilience({
      clock,
      redirects: "library",
      retry: { maxAttempts: 2, initialDelay: 100, jitter: "none" },
      fetch: async (input) => {
        const url = input instanceof Request ? input.url : String(input);
        sent.push(url);
        if (url.startsWith("https://a.example")) {
          return new Response(null, { status: 302, headers: { location: "https://b.example/hop?token=SECRET" } });
        }
        return new Response("busy", { status: sent.length >= 4 ? 200 : 503 });
      },
    });
    const retries: string[] = [];
    const hops: string[] = [];
    layer.on("retry", (event) => retries.push(event.url));
    layer.on("redirect", (event) => hops.push(event.to));
    const res = await clock.run(layer.fetch("https://a.example/v1/start?caller=1"));
    expect(res.status).toBe(200);
    expect(sent).toEqual([
      "https://a.example/v1/start?caller=1",
      "https://b.example/hop?token=SECRET",
      "https://a.example/v1/start?caller=1",
      "https://b.example/hop?token=SECRET",
    ]);
    expect(retries).toEqual(["https://a.example/v1/start"]);
    expect(hops).toHaveLength(2);
  });
});

describe("health and events: an event a listener sets off", () => {
  it("is heard out at once, so the listeners after it hear the later change first", async () => {
    const guide = (await readFile(new URL("../../docs/health-and-events.md", import.meta.url), "utf8")).replace(
      /\s+/g,
      " ",
    );
    expect(guide).toContain(
      "An event a listener sets off (a `breaker(name).reset()` from a `breaker` listener) is heard out at once, as `EventTarget` nests it: the listeners after that one hear the later event first, so the last event a listener heard need not be the state now (read `health()` for that).",
    );
    const layer = createResilience({ clock: new TestClock(), retry: false });
    const jobs = layer.breaker("jobs", { failureThreshold: 1 });
    const later: string[] = [];
    layer.on("breaker", (event) => {
      if (event.to === "open") jobs.reset();
    });
    layer.on("breaker", (event) => later.push(`${event.from}→${event.to}`));
    await expect(
      jobs.execute(async () => {
        throw new Error("down");
      }),
    ).rejects.toThrow("down");
    expect(later).toEqual(["open→closed", "closed→open"]);
    expect(jobs.state).toBe("closed");
    expect(layer.health().breakers.jobs?.state).toBe("closed");
  });
});
