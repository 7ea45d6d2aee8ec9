/**
 * A chain passes over an endpoint whose host is half-open with every probe
 * slot taken, as it passes over an open one (docs/fallback.md): nothing is
 * sent there, the `fallback` event says "circuit open", `statistics()` does
 * not count it, and the call is served by the next endpoint.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FallbackEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const probed = httpUpstream();
const spare = httpUpstream();

beforeAll(async () => {
  await Promise.all([probed.start(), spare.start()]);
});
afterAll(() => {
  probed.stop();
  spare.stop();
});
beforeEach(() => {
  probed.reset();
  spare.reset();
});

it("passes over a half-open endpoint whose probe slot is taken: not sent, not counted, 'circuit open'", async () => {
  const clock = new TestClock(1_000_000);
  const layer = createResilience({
    clock,
    retry: false,
    breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
    fallback: fallback([
      {
        name: "ch",
        endpoints: [
          { name: "a", url: probed.base },
          { name: "b", url: spare.base },
        ],
      },
    ]),
  });
  const events: FallbackEvent[] = [];
  layer.on("fallback", (event) => events.push(event));
  spare.on((hit) => hit.res.end("spare"));
  probed.on((hit) => {
    hit.res.writeHead(500);
    hit.res.end();
  });
  // a fails once: its breaker opens, and b serves.
  expect(await (await layer.fetch(`${probed.base}/job`)).text()).toBe("spare");
  await clock.advance(1_000);
  // Half-open now: the next call's request to a is its one probe, held unanswered.
  let answer!: (hit: Hit) => void;
  const held = new Promise<Hit>((resolve) => {
    answer = resolve;
  });
  probed.on((hit) => answer(hit));
  const probe = layer.fetch(`${probed.base}/job`);
  const hit = await held;
  const before = layer.fallback.chain("ch")?.statistics().fallbacks.a?.calls;
  events.length = 0;
  // Every probe slot taken: a second call passes a over.
  const second = await layer.fetch(`${probed.base}/job`);
  expect(await second.text()).toBe("spare");
  expect(probed.hits).toHaveLength(2);
  expect(events).toEqual([{ chain: "ch", from: "a", reason: "circuit open", next: "b" }]);
  expect(layer.fallback.chain("ch")?.statistics().fallbacks.a?.calls).toBe(before);
  hit.res.end("probe answered");
  expect(await (await probe).text()).toBe("probe answered");
});
