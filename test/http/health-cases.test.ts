import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { type BreakerStore, CircuitOpenError, createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const URL_ = "https://a.example/v1";

describe("health() per breaker", () => {
  it("is healthy while every breaker is closed", async () => {
    const resilience = createResilience({ clock: new TestClock(0), fetch: async () => new Response("ok") });
    await resilience.fetch(URL_);
    const health = resilience.health();
    expect(health.breakers["a.example"]?.state).toBe("closed");
    expect(health.status).toBe("healthy");
  });

  it("has no failure rate for a breaker held open before any call", () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    resilience.breaker("renderer").hold(60_000, "maintenance");
    expect(resilience.health().breakers.renderer).toMatchObject({
      state: "open",
      failureCount: 0,
      consecutiveFailures: 0,
      failureRate: null,
      lastError: "maintenance",
    });
  });

  it("describes a breaker opened by a shared snapshot that carries no trip record", async () => {
    const clock = new TestClock(1_000);
    const remote: BreakerSnapshot = {
      v: 1,
      state: "open",
      gen: 3,
      failures: [],
      window: null,
      lastFailureTime: 900,
      openUntil: 60_000,
      leases: [],
      successes: 0,
      reason: "down elsewhere",
      changedAt: 900,
    };
    const store: BreakerStore = { name: "compact", publish: () => {}, peek: () => remote };
    const resilience = createResilience({ clock, store, fetch: async () => new Response("ok") });
    expect(await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e)).toBeInstanceOf(CircuitOpenError);
    const health = resilience.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers["a.example"]).toMatchObject({
      state: "open",
      failureCount: 0,
      consecutiveFailures: 0,
      failureRate: null,
      lastError: "shared: down elsewhere",
    });
  });
});
