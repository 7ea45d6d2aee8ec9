import { describe, expect, it } from "vitest";
import { createResilience, RetryExhaustedError } from "../../src/index.ts";

/**
 * What `RetryExhaustedError.endpoint` names (docs/retry.md): the breaker's
 * key of the call: the host, or what `breaker.key` gives for the URL.
 */

const refused = async () => {
  throw new TypeError("fetch failed");
};

async function rejection(promise: Promise<unknown>): Promise<RetryExhaustedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RetryExhaustedError);
  return error as RetryExhaustedError;
}

describe("RetryExhaustedError.endpoint", () => {
  it("is the host of a plain call", async () => {
    const resilience = createResilience({ retry: { maxAttempts: 1 }, fetch: refused });
    const error = await rejection(resilience.fetch("https://api.example:8443/v1/render?key=s"));
    expect(error.endpoint).toBe("api.example:8443");
    expect(error.message).toContain("to api.example:8443");
  });

  it("is what breaker.key gives for the URL", async () => {
    const resilience = createResilience({
      retry: { maxAttempts: 1 },
      breaker: { key: (url) => `${url.hostname}${url.pathname}` },
      fetch: refused,
    });
    const error = await rejection(resilience.fetch("https://api.example/v1/render"));
    expect(error.endpoint).toBe("api.example/v1/render");
  });
});
