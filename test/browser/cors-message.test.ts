// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { createResilience, RetryExhaustedError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("a call a browser refused (happy-dom page)", () => {
  it("says in its error that CORS is the likely cause, naming the headers the preflight must allow", async () => {
    // What Chromium gives script for a refused preflight: a bare TypeError.
    const refuse = async (): Promise<Response> => {
      throw new TypeError("Failed to fetch");
    };
    const resilience = createResilience({ fetch: refuse, clock: new TestClock(0), retry: false });
    const error = await resilience
      .fetch("https://api.example/v1/images", { method: "POST", headers: { "Idempotency-Key": "k" } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(String((error as Error).message)).toMatch(/Failed to fetch \(probably refused by the browser's CORS rules/);
    expect(String((error as Error).message)).toMatch(/request headers idempotency-key/i);
    const sameOrigin = await resilience.fetch(`${location.origin}/api`).catch((e: unknown) => e);
    expect(String((sameOrigin as Error).message)).not.toMatch(/CORS/);
  });
});
