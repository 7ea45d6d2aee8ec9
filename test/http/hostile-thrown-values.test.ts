import { expect, it } from "vitest";
import { createResilience, RetryExhaustedError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * A value that throws when looked at (here a revoked `Proxy`), thrown where
 * the caller's own `retryOn.error` decides: `execute` gives it back as it
 * was when that rule refuses a retry, and a call retries it when the rule
 * allows, its `cause` the value itself. Each path once replaced it with the
 * engine's `TypeError` ("Cannot perform 'getPrototypeOf' on a proxy that has
 * been revoked"). A promise cannot settle with such a value as its result
 * (its `then` is read), so the tests take the rejection into an object.
 */
function revoked(): object {
  const { proxy, revoke } = Proxy.revocable(new Error("gone"), {});
  revoke();
  return proxy;
}
const settled = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value, error: undefined as unknown }),
    (error: unknown) => ({ value: undefined, error }),
  );

it("execute: a value its retryOn.error refuses is given back as it was thrown", async () => {
  const clock = new TestClock(0);
  const thrown = revoked();
  const resilience = createResilience({ clock, retry: { retryOn: { error: () => false } } });
  const { error } = await settled(
    resilience.execute(() => {
      throw thrown;
    }),
  );
  expect(error === thrown).toBe(true);
});

it("fetch: a transport's such value, retried as its retryOn.error allows, is the RetryExhaustedError's cause", async () => {
  const clock = new TestClock(0);
  const thrown = revoked();
  let calls = 0;
  const resilience = createResilience({
    clock,
    retry: { maxAttempts: 3, initialDelay: 10, jitter: "none", retryOn: { error: () => true } },
    fetch: async () => {
      calls++;
      throw thrown;
    },
  });
  const { error } = await settled(clock.run(resilience.fetch("https://api.example/x")));
  expect(error).toBeInstanceOf(RetryExhaustedError);
  expect((error as RetryExhaustedError).attempts).toBe(3);
  expect((error as RetryExhaustedError).cause === thrown).toBe(true);
  expect(calls).toBe(3);
});
