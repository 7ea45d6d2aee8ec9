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
});
