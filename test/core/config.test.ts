import { describe, expect, it } from "vitest";
import { ConfigError, createResilience, isConfigError, type ResilienceOptions } from "../../src/index.ts";

const cases: Array<[string, unknown, string, RegExp]> = [
  ["maxAttempts of 0", { retry: { maxAttempts: 0 } }, "retry.maxAttempts", /expected a value >= 1, received 0/],
  ["fractional maxAttempts", { retry: { maxAttempts: 1.5 } }, "retry.maxAttempts", /an integer, received 1.5/],
  ["maxAttempts as a string", { retry: { maxAttempts: "3" } }, "retry.maxAttempts", /expected number, received "3"/],
  [
    "an unknown jitter",
    { retry: { jitter: "half" } },
    "retry.jitter",
    /one of "full", "equal", "decorrelated", "none", received "half"/,
  ],
  ["a misspelt option", { retry: { maxAtempts: 3 } }, "retry", /unknown option "maxAtempts"/],
  ["an unknown top-level key", { retries: 3 }, "options", /unknown option "retries"/],
  ["a negative initialDelay", { retry: { initialDelay: -1 } }, "retry.initialDelay", />= 0/],
  [
    "an infinite maxDelay",
    { retry: { maxDelay: Number.POSITIVE_INFINITY } },
    "retry.maxDelay",
    /expected number, received Infinity/,
  ],
  ["exponentialBase below 1", { retry: { exponentialBase: 0.5 } }, "retry.exponentialBase", />= 1/],
  ["a status out of range", { retry: { retryOn: { statuses: [503, 99] } } }, "retry.retryOn.statuses.1", />= 100/],
  ["a non-function retryOn.error", { retry: { retryOn: { error: true } } }, "retry.retryOn.error", /a function/],
  ["a zero attempt timeout", { timeout: { attempt: 0 } }, "timeout.attempt", /> 0/],
  ["a negative budget ratio", { budget: { ratio: -0.1 } }, "budget.ratio", />= 0/],
  ["budget: true", { budget: true }, "budget", /expected/],
  ["a non-function fetch", { fetch: "https://x" }, "fetch", /a function/],
  ["a clock without setTimer", { clock: { now: () => 0 } }, "clock.setTimer", /a function/],
  ["options that are not an object", 42, "options", /expected object, received 42/],
];

describe("configuration is validated at creation", () => {
  it.each(cases)("rejects %s, naming the path", (_name, options, path, message) => {
    let error: unknown;
    try {
      createResilience(options as ResilienceOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(isConfigError(error)).toBe(true);
    expect((error as ConfigError).path).toBe(path);
    expect((error as ConfigError).message).toMatch(message);
    expect((error as ConfigError).message.startsWith(path)).toBe(true);
  });

  it("accepts every documented option and an empty object", () => {
    expect(() => createResilience({})).not.toThrow();
    expect(() =>
      createResilience({
        retry: {
          maxAttempts: 5,
          initialDelay: 10,
          maxDelay: 100,
          exponentialBase: 1.5,
          jitter: "decorrelated",
          retryOn: { statuses: [503], methods: ["GET"], error: () => true },
          maxRetryAfter: 5_000,
          idempotencyKey: true,
        },
        budget: { ratio: 0.2, minPerSecond: 0 },
        timeout: { attempt: 1_000, total: 5_000 },
        fetch: globalThis.fetch,
        random: Math.random,
      }),
    ).not.toThrow();
    expect(() => createResilience({ retry: false, budget: false })).not.toThrow();
  });

  it("lets undefined fall back to the default instead of wiping it", async () => {
    const resilience = createResilience({ retry: { maxAttempts: undefined } as never });
    expect(resilience.health().retry.maxAttempts).toBe(3);
  });
});
