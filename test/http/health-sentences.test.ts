/**
 * Three sentences of docs/health-and-events.md checked through the public
 * API: a breaker held open by a `Retry-After` shows that reason as its
 * `lastError`; `analytics.clearHistory()` empties the error rate's minute
 * too; `open` → `half_open` fires when the first call after `timeout`
 * arrives, while `health()` reads `half_open` as soon as `timeout` passed.
 */
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
