import { expect, it } from "vitest";
import { type BreakerStore, createResilience, memoryStore, RetryExhaustedError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

/**
 * A store that grants a half-open host's probe its lease, then fails when
 * the layer reads it again before sending (the read that tells whether the
 * host re-opened while the lease was asked for): the call fails on the
 * store's error (a `RetryExhaustedError` whose cause it is, as any store
 * failure on the request's path), nothing is sent, and the lease goes back, so the host's next probe is not kept waiting for it to
 * expire. Written for the mutation run's uncovered lines of the thirtieth
 * session (docs/mutation.md).
 */
it("a store that throws after granting a probe's lease: the call fails with its error, nothing sent, the lease given back", async () => {
  const clock = new TestClock(1_000_000);
  const inner = memoryStore();
  const calls: string[] = [];
  let failReads = false;
  let failAfterGrant = true;
  let leases = 0;
  const store: BreakerStore = {
    name: "coordinator",
    publish: (key, snapshot) => inner.publish(key, snapshot),
    peek: (key, now) => {
      if (failReads) throw new TypeError("store unreachable");
      return inner.peek(key, now);
    },
    record: () => {},
    releaseProbe: (key, probe) => {
      calls.push(`release ${key} ${probe}`);
    },
    acquireProbe: async () => {
      // Granted; the read that follows fails (the first time).
      failReads = failAfterGrant;
      return `L${++leases}`;
    },
  };
  const sent: string[] = [];
  const layer = createResilience({
    clock,
    store,
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 1, timeout: 1_000 },
    fetch: async (input) => {
      sent.push(String(input));
      return new Response("x", { status: 503 });
    },
  });
  await layer.fetch("https://api.example/a");
  await clock.advance(1_000);
  sent.length = 0;
  const probe = layer.fetch("https://api.example/b").catch((error: unknown) => error);
  await flush();
  const error = await probe;
  // As any store failure on the request's path (docs/breakers.md): `RetryExhaustedError`, 0 attempts, the store's error its cause.
  expect(error).toBeInstanceOf(RetryExhaustedError);
  expect((error as RetryExhaustedError).attempts).toBe(0);
  expect(((error as RetryExhaustedError).cause as Error).message).toBe("store unreachable");
  expect(sent).toEqual([]);
  expect(calls).toEqual(["release api.example L1"]);
  // The probe's place is free again: the next call is the host's probe, and its success closes it.
  failAfterGrant = false;
  failReads = false;
  const next = await layer.fetch("https://api.example/c").catch((e: unknown) => e);
  expect(next).toBeInstanceOf(Response);
  expect(sent).toEqual(["https://api.example/c"]);
});
