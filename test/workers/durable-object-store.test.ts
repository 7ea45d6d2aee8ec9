import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import { CircuitOpenError, createResilience, type StoreEvent } from "../../src/index.ts";

/** An "isolate": its own layer and store over the shared Durable Object namespace. */
function isolate(up: () => boolean) {
  const ctx = createExecutionContext();
  const store = durableObjectStore(env.BREAKER_STATE, { ctx, flushThreshold: 2, scope: "dos-test" });
  const events: StoreEvent[] = [];
  const resilience = createResilience({
    store,
    retry: false,
    breaker: { failureThreshold: 2, timeout: 60_000, halfOpenMaxCalls: 1 },
    fetch: async () => new Response(null, { status: up() ? 200 : 503 }),
  });
  resilience.on("store", (e) => events.push(e));
  return { resilience, ctx, events };
}

describe("durableObjectStore in workerd", () => {
  it("shares a trip: another isolate fails fast without calling the upstream", async () => {
    const a = isolate(() => false);
    await a.resilience.fetch("https://flaky.example/x");
    await a.resilience.fetch("https://flaky.example/x");
    await waitOnExecutionContext(a.ctx); // the batch of failures reaches the object
    let upstreamCalls = 0;
    const b = isolate(() => {
      upstreamCalls++;
      return true;
    });
    // b's first lookup asks the object in the background; the verdict arrives, then b fails fast.
    await b.resilience.fetch("https://flaky.example/x").catch(() => {});
    await waitOnExecutionContext(b.ctx);
    const callsBefore = upstreamCalls;
    await expect(b.resilience.fetch("https://flaky.example/x")).rejects.toBeInstanceOf(CircuitOpenError);
    expect(upstreamCalls).toBe(callsBefore);
    expect(b.resilience.health().breakers["flaky.example"]?.state).toBe("open");
    // The object answered every report in time: no store event on either side.
    expect(a.events).toEqual([]);
    expect(b.events).toEqual([]);
  });

  it("falls back to the local breaker when the object cannot be reached", async () => {
    const broken = {
      idFromName: (name: string) => name,
      get: () => ({ fetch: () => Promise.reject(new Error("object unreachable")) }),
    };
    const ctx = createExecutionContext();
    const store = durableObjectStore(broken, { ctx, flushThreshold: 1 });
    const events: StoreEvent[] = [];
    const resilience = createResilience({ store, retry: false, fetch: async () => new Response("ok") });
    resilience.on("store", (e) => events.push(e));
    for (let i = 0; i < 3; i++) expect((await resilience.fetch("https://fine.example/")).status).toBe(200);
    await waitOnExecutionContext(ctx);
    // Every background report failed, said so in an event, and no call noticed.
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e).toEqual({
        store: "durable-object",
        key: "fine.example",
        operation: "report",
        outcome: "failed",
        detail: "Error: object unreachable",
      });
    }
  });
});
