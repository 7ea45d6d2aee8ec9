import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerSnapshot, type BreakerStore, createResilience, isCircuitOpenError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const DAY = 86_400_000;

/** A store of the user's own that says a host is open until `openUntil`, as a corrupted or hostile shared value may. */
function sayingOpenUntil(openUntil: number, host = "api.example"): BreakerStore {
  const snapshot: BreakerSnapshot = {
    v: 1,
    state: "open",
    gen: 7,
    failures: [],
    window: null,
    lastFailureTime: 0,
    openUntil,
    leases: [],
    successes: 0,
    reason: "written elsewhere",
    changedAt: 0,
  };
  return { name: "own", publish: () => {}, peek: (key) => (key === host ? snapshot : undefined) };
}

/**
 * docs/breakers.md: an open state read from any store holds a host a day at
 * most from when the layer first reads it, as KV's and the Durable Object's
 * holds are cut.
 */
describe("an open state read from a store of one's own", () => {
  it.each([
    ["the year 30,000", Date.UTC(30_000, 0, 1)],
    ["1e300", 1e300],
    ["Infinity", Number.POSITIVE_INFINITY],
  ])("open until %s holds the host a day at most", async (_label, openUntil) => {
    const clock = new TestClock();
    let sent = 0;
    const layer = createResilience({
      clock,
      store: sayingOpenUntil(openUntil),
      retry: { maxAttempts: 1 },
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
    });
    const refused = await layer.fetch("https://api.example/a").catch((error: unknown) => error);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect((refused as { retryAt: number }).retryAt).toBe(DAY);
    expect(layer.health().breakers["api.example"]?.openUntil).toBe(DAY);
    // Read again, the same value is no news: its day does not start again.
    await clock.advance(DAY);
    const probe = await layer.fetch("https://api.example/b");
    expect(probe.status).toBe(200);
    expect(sent).toBe(1);
  });

  it("holds a chain's endpoint a day at most too (a Request input), then the chain uses it again", async () => {
    const clock = new TestClock();
    const hosts: string[] = [];
    const layer = createResilience({
      clock,
      store: sayingOpenUntil(1e300),
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "images",
          endpoints: [
            { name: "primary", url: "https://api.example/v1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
      fetch: async (input) => {
        hosts.push(new URL(input instanceof Request ? input.url : String(input)).host);
        return new Response("ok");
      },
    });
    const call = () => layer.fetch(new Request("https://api.example/v1/images", { method: "POST", body: "{}" }));
    expect((await call()).status).toBe(200);
    expect(hosts).toEqual(["spare.example"]);
    await clock.advance(DAY);
    expect((await call()).status).toBe(200);
    expect(hosts).toEqual(["spare.example", "api.example"]);
  });
});
