import { describe, expect, it } from "vitest";
import { headerOf } from "../../src/http/request/headers.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("options that do not go together", () => {
  it("refuses a bulkhead without per-host breakers, saying what to change", () => {
    let error: unknown;
    try {
      createResilience({ breaker: false, bulkhead: { maxConcurrent: 2 } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      "bulkhead: needs per-host breakers (a bulkhead lives beside each host's breaker); remove `breaker: false` or the bulkhead",
    );
  });
});

describe("named breakers", () => {
  it("take their thresholds from the layer's breaker options", async () => {
    const resilience = createResilience({ clock: new TestClock(0), breaker: { failureThreshold: 2 } });
    const breaker = resilience.breaker("renderer");
    for (let i = 0; i < 2; i++) await breaker.execute(() => Promise.reject(new Error("oom"))).catch(() => {});
    expect(breaker.state).toBe("open");
  });
});

describe("headerOf", () => {
  it("passes over an empty pair in an array of headers", () => {
    const headers = [[], ["Content-Type", "application/json"]] as unknown as HeadersInit;
    expect(headerOf(headers, "content-type")).toBe("application/json");
  });
});
