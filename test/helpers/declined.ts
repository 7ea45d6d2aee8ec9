import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch } from "./host-fetch.ts";
import { FAST } from "./platform-layer.ts";

/**
 * A GET to a host that answers 503 with `retryAfter`, read at `now`, with two attempts and zero backoff, and
 * `maxRetryAfter` of 30 s: how many requests went, the retry events' delays, the host's breaker after.
 */
export async function declinedWith(retryAfter: string, now: number) {
  const clock = new TestClock(now);
  const transport = hostFetch({
    "a.test": () => new Response("busy", { status: 503, headers: { "retry-after": retryAfter } }),
  });
  const layer = createResilience({
    fetch: transport.fetch,
    clock,
    retry: { ...FAST, maxAttempts: 2, maxRetryAfter: 30_000 },
  });
  const delays: number[] = [];
  layer.on("retry", (event) => delays.push(event.delay));
  // A zero wait is a timer on the TestClock: `run` fires it, as it fires any the call arms.
  const response = await clock.run(layer.fetch("http://a.test/jobs"));
  await response.text();
  const breaker = layer.health().breakers["a.test"];
  return {
    sent: transport.log.length,
    delays,
    status: response.status,
    state: breaker?.state,
    until: breaker?.openUntil,
  };
}
