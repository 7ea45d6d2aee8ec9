import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type BreakerStore, createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * A store of one's own whose `peek` throws fails the call that meets it (the
 * store contract says so), but not `health()`: the report of every host
 * (and the Worker's health endpoint built on it) shows each host's local
 * state, and a `store` event says what the read met.
 */
describe("health() over a store whose peek throws", () => {
  it("reports the local state and a store event, without throwing", async () => {
    let broken = false;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek() {
        if (broken) throw new Error("redis down at https://admin:pw@redis.example/?token=abc");
        return undefined;
      },
    };
    const resilience = createResilience({ clock: new TestClock(), store, fetch: async () => new Response("ok") });
    const events: StoreEvent[] = [];
    resilience.on("store", (e) => events.push(e));
    expect((await resilience.fetch("https://api.example/x")).status).toBe(200);
    broken = true;
    const health = resilience.health();
    expect(health.breakers["api.example"]).toMatchObject({ state: "closed" });
    expect(health.status).toBe("healthy");
    expect(events).toEqual([
      {
        store: "mine",
        key: "api.example",
        operation: "read",
        outcome: "failed",
        detail: "Error: redis down at https://redis.example/",
      },
    ]);
    // A call still fails with the store's error, as the contract says.
    await expect(resilience.fetch("https://api.example/x")).rejects.toThrow(/redis down/);
  });

  it("an async peek is a skipped read on health() too: a store listener calling health() hears its own read (docs/breakers.md)", async () => {
    const store = { name: "async", publish() {}, peek: async () => undefined } as unknown as BreakerStore;
    const resilience = createResilience({ clock: new TestClock(), store, fetch: async () => new Response("ok") });
    expect((await resilience.fetch("https://api.example/x")).status).toBe(200);
    let reads = 0;
    resilience.on("store", (e) => {
      if (e.outcome !== "skipped") return;
      reads++;
      resilience.health();
    });
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "closed" });
    expect(reads).toBeGreaterThan(100);
    const docs = readFileSync(new URL("../../docs/breakers.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(docs).toContain(
      "on every read, `health()`'s too: a `store` listener that calls `health()` hears its own reads and calls again without end: with one host until the stack runs out, with more never, as each read fires one more per host, so such a listener must not call `health()`",
    );
  });
});
