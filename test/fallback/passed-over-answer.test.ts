/**
 * An answer is marked as coming after another request of its call only when
 * one was sent: an endpoint passed over for its open breaker sends none. A
 * layer in front reads the mark to decide whether a keyless POST's 429 or
 * 503 was declined (docs/retry.md, "Idempotency").
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import { createResilience, type Resilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const open = httpUpstream();
const second = httpUpstream();

beforeAll(async () => {
  await Promise.all([open.start(), second.start()]);
});
afterAll(() => {
  open.stop();
  second.stop();
});
beforeEach(() => {
  open.reset();
  second.reset();
});

const busy = (hit: Hit) => {
  hit.res.writeHead(503);
  hit.res.end("busy");
};

/** A layer whose chain's first endpoint sits at a host whose breaker is open, the second at `second`. */
async function innerWith(endpoints: FallbackEndpoint[]): Promise<Resilience> {
  const inner = createResilience({
    breaker: { failureThreshold: 2 },
    retry: { maxAttempts: 1 },
    fallback: fallback([{ name: "ch", endpoints }]),
  });
  open.on((hit) => {
    hit.res.writeHead(500);
    hit.res.end();
  });
  for (let i = 0; i < 2; i++) await (await inner.fetch(`${open.base}/trip`)).text();
  expect(inner.health().breakers[open.host]?.state).toBe("open");
  open.reset();
  return inner;
}

/** A layer in front of `inner` that sends a request twice at most, without waiting between. */
const outerOver = (inner: Resilience): Resilience =>
  createResilience({
    fetch: inner.fetch,
    clock: new TestClock(),
    retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
  });

/** A keyless POST through an outer layer that retries twice in all, over `inner`. */
async function postThrough(inner: Resilience, base = open.base): Promise<[number, number]> {
  const outer = outerOver(inner);
  second.on(busy);
  const response = await outer.fetch(`${base}/v1/x`, { method: "POST", body: "{}" });
  await response.text();
  return [response.status, second.hits.length];
}

describe("an answer after an endpoint passed over for its open breaker", () => {
  it("is the call's only request: a layer in front takes its 503 as declined and sends the POST again", async () => {
    const inner = await innerWith([
      { name: "p", url: `${open.base}/v1` },
      { name: "s", url: `${second.base}/v1` },
    ]);
    expect(await postThrough(inner)).toEqual([503, 2]);
  });

  it("after a request the first endpoint sent, is not declined: the POST goes no further", async () => {
    const inner = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${open.base}/v1` },
            { name: "s", url: `${second.base}/v1` },
          ],
        },
      ]),
    });
    // p declines (a 503 moves a keyless POST on), s declines too: p's request went before s's answer.
    open.on(busy);
    expect(await postThrough(inner)).toEqual([503, 1]);
    expect(open.hits.length).toBe(1);
  });

  it("a `respond` answer is declined when nothing was sent before it, and not after a request", async () => {
    let answered = 0;
    const local: FallbackEndpoint = {
      name: "cached",
      respond: () => {
        answered++;
        return new Response("local", { status: 503 });
      },
    };
    const passedOver = await innerWith([{ name: "p", url: `${open.base}/v1` }, local]);
    const outer = outerOver(passedOver);
    const first = await outer.fetch(`${open.base}/v1/x`, { method: "POST", body: "{}" });
    expect([first.status, await first.text(), answered]).toEqual([503, "local", 2]);

    answered = 0;
    const afterRequest = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", endpoints: [{ name: "p", url: `${second.base}/v1` }, local] }]),
    });
    expect(await postThrough(afterRequest, second.base)).toEqual([503, 1]);
    expect(answered).toBe(1);
  });
});
