import { describe, expect, it } from "vitest";
import { type ResilientProxyOptions, resilientProxy } from "../../src/cloudflare/index.ts";
import { TestClock } from "../../src/testing/clock.ts";

/**
 * Outside-in, through `resilientProxy` (the public `…/cloudflare` entry): a
 * single-upstream route whose upstream answered 503, and whose retry the
 * layer itself then refused. docs/retry.md ("Bodies"): "when the layer
 * itself refuses the retry (the host's breaker opened during the wait, its
 * bulkhead is full), the call settles with that response, body intact (one
 * too large or too slow to keep is not: the call then rejects with the
 * refusal)". README: the fetch "resolves with a Response (even a 503)
 * whenever it has one to give". So the proxy must pass the upstream's 503
 * through (status, headers, body), not its own "upstream circuit open"
 * answer, and leave no timer and no unread upstream body behind.
 * test/cloudflare/proxy-promises.test.ts covers chain routes; these are
 * plain `upstream` routes where the retry is refused mid-call.
 */

const UPSTREAM = "https://api.example/v1";
const ctx = { waitUntil: () => {} };
const encode = (text: string) => new TextEncoder().encode(text);
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A body that records whether it was read to its end or cancelled. */
function trackedBody(chunks: Uint8Array[]): { body: ReadableStream<Uint8Array>; released: () => boolean } {
  let released = false;
  let i = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const chunk = chunks[i++];
        if (chunk) controller.enqueue(chunk);
        if (i >= chunks.length) {
          controller.close();
          released = true;
        }
      },
      cancel() {
        released = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, released: () => released };
}

interface Upstream {
  /** URLs sent, in order. */
  sent: string[];
  /** Bodies of the 503s given, to check they were released. */
  bodies: Array<() => boolean>;
  fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** Settles the hanging `/hold` request with a 200. */
  release: () => void;
}

/** `/busy…` answers 503 with a tracked body and its own headers; `/hold` hangs until released. */
function upstream(bodyOf: (n: number) => Uint8Array[] = (n) => [encode(`busy ${n}`)]): Upstream {
  const sent: string[] = [];
  const bodies: Array<() => boolean> = [];
  let release: () => void = () => {};
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new Request(input, init).url;
    sent.push(url);
    const n = sent.length;
    if (url.includes("/hold")) {
      return new Promise((resolve) => {
        release = () => resolve(new Response("held", { status: 200 }));
      });
    }
    const tracked = trackedBody(bodyOf(n));
    bodies.push(tracked.released);
    return Promise.resolve(
      new Response(tracked.body, {
        status: 503,
        statusText: "Busy Upstream",
        headers: { "content-type": "text/plain", "x-upstream-request": String(n), "x-ratelimit-remaining": "0" },
      }),
    );
  };
  return { sent, bodies, fetch, release: () => release() };
}

function proxyOf(resilience: NonNullable<ResilientProxyOptions<object>["resilience"]>) {
  const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: UPSTREAM }], resilience });
  return (path: string, init?: RequestInit) => proxy.fetch(new Request(`https://proxy.example${path}`, init), {}, ctx);
}

const retry = { maxAttempts: 3, initialDelay: 1_000, jitter: "none" } as const;

describe("resilientProxy, an upstream 503 whose retry the layer refuses", () => {
  it("the breaker opened during the backoff: the first call answers the upstream's own 503 (status, headers, body)", async () => {
    const clock = new TestClock();
    const up = upstream();
    const call = proxyOf({ clock, retry, breaker: { failureThreshold: 2 }, fetch: up.fetch });
    const first = call("/v1/busy/a");
    await clock.waitForTimers(1); // the first call waits its backoff
    // A second call's 503 is the second failure in a row: the breaker opens.
    const second = await clock.run(call("/v1/busy/b"));
    expect(second.status).toBe(503);
    expect(await second.text()).toBe("busy 2");
    const res = await clock.run(first);
    expect(up.sent).toEqual([`${UPSTREAM}/busy/a`, `${UPSTREAM}/busy/b`]); // the retry was never sent
    expect(res.status).toBe(503);
    expect(res.statusText).toBe("Busy Upstream");
    expect(res.headers.get("x-upstream-request")).toBe("1");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(res.headers.get("retry-after")).toBeNull(); // not the proxy's own circuit-open answer
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    expect(res.headers.get("x-resilience-endpoint")).toBe("api.example");
    expect(await res.text()).toBe("busy 1");
    expect(up.bodies.every((released) => released())).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("keeps the upstream's Retry-After when it was the wait the retry was refused after", async () => {
    const clock = new TestClock();
    const sent: string[] = [];
    const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      sent.push(new Request(input, init).url);
      return Promise.resolve(
        new Response(`slow down ${sent.length}`, { status: 503, headers: { "retry-after": "2" } }),
      );
    };
    const call = proxyOf({ clock, retry, breaker: { failureThreshold: 2 }, fetch });
    const first = call("/v1/jobs");
    await clock.waitForTimers(1);
    await clock.run(call("/v1/jobs"));
    const res = await clock.run(first);
    expect(sent).toHaveLength(2);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2"); // the upstream's, passed through
    expect(await res.text()).toBe("slow down 1");
    expect(clock.pending()).toBe(0);
  });

  it("the bulkhead is full when the retry is due: the call answers the upstream's 503, and the held call goes on", async () => {
    const clock = new TestClock();
    const up = upstream();
    const call = proxyOf({ clock, retry, bulkhead: { maxConcurrent: 1, maxQueue: 0 }, fetch: up.fetch });
    const first = call("/v1/busy");
    await clock.waitForTimers(1); // backoff: the slot is free again
    const held = call("/v1/hold");
    while (up.sent.length < 2) await turn(); // the second call holds the only slot
    const res = await clock.run(first);
    expect(up.sent).toEqual([`${UPSTREAM}/busy`, `${UPSTREAM}/hold`]);
    expect(res.status).toBe(503);
    expect(res.headers.get("x-upstream-request")).toBe("1");
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    expect(await res.text()).toBe("busy 1");
    up.release();
    const other = await held;
    expect(other.status).toBe(200);
    expect(await other.text()).toBe("held");
    expect(up.bodies.every((released) => released())).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a body in several chunks is kept whole (the kept copy is the whole body, not its first chunk)", async () => {
    const clock = new TestClock();
    const up = upstream(() => [encode("part one, "), encode("part two, "), encode("end")]);
    const call = proxyOf({ clock, retry, breaker: { failureThreshold: 2 }, fetch: up.fetch });
    const first = call("/v1/busy/a");
    await clock.waitForTimers(1);
    await (await clock.run(call("/v1/busy/b"))).arrayBuffer();
    const res = await clock.run(first);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("part one, part two, end");
  });

  // docs/cloudflare.md: `502` when no endpoint answered otherwise, "a retry it refused after an answer too large to
  // keep" included: the upstream had the request, and a `503` would tell the client it was declined (until the
  // forty-seventh session the proxy answered its "upstream circuit open" 503 here).
  it("a body too large to keep: the refusal instead (502, the upstream had the request), the body cancelled", async () => {
    const clock = new TestClock();
    const big = new Uint8Array(80 * 1024).fill(120); // over the 64 KiB kept in memory
    const up = upstream(() => [big.subarray(0, 40 * 1024), big.subarray(40 * 1024)]);
    const call = proxyOf({ clock, retry, breaker: { failureThreshold: 2, timeout: 30_000 }, fetch: up.fetch });
    const first = call("/v1/busy/a");
    await clock.waitForTimers(1);
    await (await clock.run(call("/v1/busy/b"))).arrayBuffer();
    const res = await clock.run(first);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: "upstream unavailable" });
    expect(res.headers.get("retry-after")).toBeNull();
    expect(up.bodies.every((released) => released())).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});
