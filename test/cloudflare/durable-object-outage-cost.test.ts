/**
 * The Durable Object store's cost in an outage, as `npm run bench` measures
 * it (bench/edge.ts), at a smaller scale: 20 isolates, one call each every
 * 480 ms for 120 s against a host that answers 503. Found by the full bench
 * run of the twelfth session: 4,663 object calls per 10,000 calls where the
 * earlier runs had 343. Each isolate's breaker went half-open at the end of
 * its own open while the object, which tripped later from the reports, still
 * held the host open; the half-open breaker ignored that open (it started
 * before the breaker went half-open), so every call asked the object for a
 * probe lease and was refused. A half-open breaker now takes a remote open
 * that still runs.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import { createResilience } from "../../src/index.ts";
import { seededRandom, TestClock } from "../../src/testing/clock.ts";
import { FakeNamespace, fakeCtx } from "./fake-durable-object.ts";

describe("durableObjectStore in an outage", () => {
  it("asks the object for probes a few times per open, not on every call of a half-open isolate", async () => {
    const clock = new TestClock(Date.now());
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const isolates = Array.from({ length: 20 }, (_, i) =>
      createResilience({
        clock,
        random: seededRandom(i),
        retry: { maxAttempts: 2, initialDelay: 50, maxDelay: 50 },
        store: durableObjectStore(namespace, { ctx, clock }),
        fetch: async () => new Response(null, { status: 503 }),
      }),
    );
    let calls = 0;
    for (let tick = 0; tick < 250; tick++) {
      await clock.run(
        Promise.all(
          isolates.map((r) =>
            r.fetch("https://gen.example/v1").then(
              (x) => x.body?.cancel(),
              () => {},
            ),
          ),
        ),
      );
      calls += isolates.length;
      await clock.run(ctx.settle());
      await clock.advance(480);
    }
    const probes = namespace.requests.filter((r) => r.path === "/probe").length;
    // 5,000 calls, four 30 s opens: each isolate asks for a probe a few times
    // per half-open spell (3 leases), not on each of its 250 calls.
    expect(calls).toBe(5_000);
    expect(probes).toBeLessThan(500);
    expect(namespace.requests.length).toBeLessThan(1_000);
  });
});
