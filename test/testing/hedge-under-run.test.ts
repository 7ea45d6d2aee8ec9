/**
 * docs/testing.md: under `TestClock.run`, a hedged chain's POST without an
 * `Idempotency-Key` waits out the first endpoint's `latency` (no hedge is
 * set), where a keyed one moves on at the hedge's delay.
 */
import { readFileSync } from "node:fs";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { json, latency, TestClock, upstream } from "../../src/testing/index.ts";

const server = setupServer();
beforeAll(() => server.listen());
afterAll(() => server.close());

async function postUnderRun(idempotencyKey: boolean) {
  const clock = new TestClock();
  const p = upstream("POST", "https://p.example/v1/jobs", latency(5_000, json({ from: "p" }), { clock }));
  const q = upstream("POST", "https://q.example/v1/jobs", json({ from: "q" }));
  server.resetHandlers(p.handler, q.handler);
  const layer = createResilience({
    clock,
    retry: { idempotencyKey },
    fallback: fallback([
      {
        name: "jobs",
        hedge: { delay: 100 },
        endpoints: [
          { name: "p", url: "https://p.example/v1" },
          { name: "q", url: "https://q.example/v1" },
        ],
      },
    ]),
  });
  const res = await clock.run(layer.fetch("https://p.example/v1/jobs", { method: "POST", body: "{}" }));
  return { at: clock.now(), from: ((await res.json()) as { from: string }).from };
}

describe("TestClock.run and a hedged chain's POST", () => {
  it("waits out the first endpoint without a key, and moves on at the hedge's delay with one", async () => {
    const doc = readFileSync(new URL("../../docs/testing.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "A hedged chain starts no hedge for a POST without an `Idempotency-Key` (see [fallback](fallback.md)), so under `run` such a POST waits out the first endpoint's `latency` where a keyed one moves on at the hedge's delay: no jump, the hedge was never set.",
    );
    expect(await postUnderRun(false)).toMatchObject({ at: 5_000, from: "p" });
    expect(await postUnderRun(true)).toMatchObject({ at: 100, from: "q" });
  });
});
