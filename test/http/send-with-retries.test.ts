import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * Decorrelated jitter draws each backoff from [initialDelay, 3 × the previous
 * backoff]; with `random` fixed at 0.5 it is the middle of that range.
 */
async function delaysFor(answers: Response[]) {
  const clock = new TestClock(0);
  const resilience = createResilience({
    clock,
    random: () => 0.5,
    retry: { maxAttempts: answers.length, jitter: "decorrelated", initialDelay: 100, maxDelay: 10_000 },
    fetch: async () => answers.shift() ?? new Response("ok"),
  });
  const delays: number[] = [];
  resilience.on("retry", (event) => delays.push(event.delay));
  await clock.run(resilience.fetch("https://a.example/"));
  return delays;
}

describe("decorrelated backoff across retries", () => {
  it("grows each computed backoff from the one before", async () => {
    const delays = await delaysFor([
      new Response(null, { status: 503 }),
      new Response(null, { status: 503 }),
      new Response("ok"),
    ]);
    // 100 + 0.5 × (300 − 100), then 100 + 0.5 × (600 − 100)
    expect(delays).toEqual([200, 350]);
  });

  it("does not grow from a Retry-After wait, which the server chose", async () => {
    const delays = await delaysFor([
      new Response(null, { status: 429, headers: { "retry-after": "2" } }),
      new Response(null, { status: 503 }),
      new Response("ok"),
    ]);
    expect(delays).toEqual([2_000, 200]);
  });
});
