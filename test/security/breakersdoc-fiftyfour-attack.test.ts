/**
 * Outside-in attack on docs/breakers.md (failure reasons, a retry's redirect hop to a host opened meanwhile,
 * bulkheads, probe leases given back to a coordinating store, `Retry-After` holds off the plain path, breaker stores
 * that throw or reject, a store's far-future open) and the JSDoc of the generic `CircuitBreaker` (./policies).
 *
 * Docs:
 * - docs/breakers.md: "The reason it gives (the `breaker` event's, `health()`'s `lastError`) names the last failure as
 *   the `retry` event does"; "The host a redirect led to is read when the retry's hop to it leaves: still open then,
 *   the hop is refused, and as the retry had reached the first host, the call rejects with that `CircuitOpenError`
 *   (`afterRedirect: true`)"; "a slot is held until response headers arrive (a streamed body does not hold it) or the
 *   attempt is given up (an abort or a timeout, even when the transport ignores its signal: a hung transport cannot
 *   wedge the host)"; "one that has already aborted takes no slot, not even a free one"; "A call to a half-open host
 *   queues like any other … each reads the breaker again when it gets its slot, and is refused then if the host is
 *   open"; "A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at once, and gives back
 *   a coordinating store's lease (`releaseProbe`)"; "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the
 *   host open until then"; "what they throw fails the call … it rejects with `RetryExhaustedError`, the store's error
 *   as its `cause` (`attempts` 0 when it threw before anything was sent), and a chain stops at the endpoint that met
 *   it (`FallbackExhaustedError`, "stopped after …: the breaker store threw")"; "a state change whose `publish`
 *   threw still fires its `breaker` event and wakes the calls waiting on the host"; "what it rejects with becomes a
 *   `store` event (`write` …, outcome `failed`, the URLs in its text cut)"; "a promise from it is no snapshot (a
 *   `read` event, outcome `skipped`, says so)"; "An open state read from any store holds a host a day at most …
 *   Read again, the same value is no news, so its day does not start again".
 * - docs/retry.md: "the final status counts against the first host's breaker"; a hop to a half-open host "the
 *   caller's abort, or `timeout.total`, frees the slot at once, whatever the transport does".
 * - docs/health-and-events.md: "`lastFailureTime` is when the last failed attempt counted, `null` before any and again
 *   once a spell ends in a close (a close starts clean, as the counts do)"; a store whose `peek` throws "fails the
 *   calls that meet it, not `health()` … a `store` event (`read`, outcome `failed`)".
 * - JSDoc (src/policies/circuit-breaker.ts): `onChange` "a throw reaches that caller (the change stands; a probe slot
 *   the change took for a request that then never runs goes back, and the work `execute` ran is no failure for it);
 *   an async hook is not awaited, and its rejection is reported (`reportError`, else `console.error`)"; `hold` "a
 *   time already past holds nothing … NaN … Infinity … is a `TypeError`"; `retryAt` "Half-open with every probe slot
 *   taken, the first probe lease's expiry"; `state` "a half-open one whose probe lease ran out reads `open`".
 *
 * How: `createResilience`, `BreakerStore` (stores of the test's own: throwing, async, coordinating with
 * `acquireProbe`/`releaseProbe`, far-future open), `isCircuitOpenError` (root), `fallback` (./fallback),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `CircuitBreaker` (./policies), `TestClock` (./testing);
 * two node:http servers on 127.0.0.1 (302, 503, 429 + Retry-After, held, streamed, socket destroyed), a closed port,
 * a transport that drops the signal.
 *
 * Paths: plain call, `Request` input, ky client, redirect (retry's hop to a host opened meanwhile; hop as a half-open
 * host's probe), fallback chain, hedge, `resilientProxy`, `CircuitBreaker` on its own.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found in this run's time box.
 *
 * Held (plain `it`):
 * - Reasons: "attempt timeout", "connection refused", "connection reset" named alike by the retry event, the breaker
 *   event ("2 failures in a row (last: …)") and `health().lastError`.
 * - A→302→B: B's first 503 counts against A; B held open meanwhile by a direct 503 + Retry-After 3600; the retry's
 *   hop is refused with B's CircuitOpenError (`afterRedirect`), A stays closed; plain, `Request`, ky.
 * - Bulkheads: a streamed body frees the slot; an aborted caller takes no free slot; a call queued behind a half-open
 *   probe is refused when it gets its slot after the probe re-opened the host; a transport that ignores its signal
 *   frees the slot at the attempt timeout.
 * - A coordinating store's lease goes back (`releaseProbe`) on `timeout.total`, the caller's abort, a hedge that won.
 * - Retry-After 3600 on a 429 holds A an hour through a chain and a hedge (passed over unsent) and through
 *   `resilientProxy` (503, `Retry-After: 3600`).
 * - A hop probing half-open B cut by `timeout.total` frees B's one slot.
 * - Stores: `peek` throwing → RetryExhaustedError (cause, attempts 0), chain "the breaker store threw", nothing sent,
 *   `health()` fine, read/failed event; `publish` throwing still fires the event and wakes a waiting retry; async
 *   `publish` rejection → write/failed event with the URL's token cut; promise `peek` → read/skipped; a year-30,000
 *   open holds a day, re-read equal values do not restart it.
 * - `health()` after a close: lastFailureTime null, counts 0, openUntil null.
 * - CircuitBreaker: throwing onChange on half_open gives the slot back, on close leaves it closed with no failure;
 *   an async onChange rejection goes to `reportError`; `hold` past/NaN/Infinity; `retryAt` first lease; `state` open
 *   after a lease ran out and the late success counts for nothing.
 *
 * Docs-silent (not pinned):
 * - A redirect's final 503 counts only against the first host (docs/retry.md says so); the target host's own breaker
 *   hears nothing from it unless the hop was its probe, so a target that is down behind a redirect opens the
 *   redirecting host instead.
 * - A chain endpoint's 503 (not only a hedge's) passes to the next endpoint and still counts against that endpoint's
 *   breaker.
 */

import type { ServerResponse } from "node:http";
import { createServer as createNetServer } from "node:net";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerStore,
  BulkheadRejectedError,
  CircuitOpenError,
  createResilience,
  FallbackExhaustedError,
  isCircuitOpenError,
  type RetryEvent,
  RetryExhaustedError,
  type StoreEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const START = 1_000_000;
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const down = (hit: { res: ServerResponse }): void => {
  hit.res.writeHead(503).end("down");
};
const drain = async (response: Promise<Response>): Promise<number> => {
  const r = await response;
  await r.body?.cancel();
  return r.status;
};
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!done()) throw new Error(`never: ${what}`);
}
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
const POLICY = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 30_000,
  probeTimeout: 30_000,
  failureRate: 0.5,
  minimumCalls: 100,
};

describe('"The reason it gives … names the last failure as the `retry` event does"', () => {
  for (const kind of ["attempt timeout", "connection refused", "connection reset"] as const) {
    it(`plain call, two attempts failing with ${kind}: the breaker event and health().lastError name the retry's reason`, async () => {
      const clock = new TestClock(START);
      let base = a.base;
      if (kind === "attempt timeout") a.on(() => {});
      if (kind === "connection reset") a.on((hit) => hit.req.socket.destroy());
      if (kind === "connection refused") base = `http://127.0.0.1:${await freePort()}`;
      const r = createResilience({
        clock,
        retry: { maxAttempts: 2, ...fast },
        breaker: { failureThreshold: 2 },
        timeout: { attempt: 200 },
      });
      const retries: RetryEvent[] = [];
      const changes: BreakerEvent[] = [];
      r.on("retry", (e) => void retries.push(e));
      r.on("breaker", (e) => void changes.push(e));
      await rejection(clock.run(r.fetch(`${base}/x`)));
      const host = new URL(base).host;
      expect(retries.length).toBe(1);
      const named = retries[0]?.reason;
      expect(named).toBe(kind);
      expect(changes.map((c) => [c.key, c.to, c.reason])).toEqual([
        [host, "open", `2 failures in a row (last: ${named})`],
      ]);
      expect(r.health().breakers[host]?.lastError).toBe(named);
    });
  }
});

describe('"The host a redirect led to is read when the retry\'s hop to it leaves"', () => {
  // A answers 302 to B. B's first answer (503) counts against A ("the final status counts against the first host's
  // breaker", docs/retry.md), and the call waits 10 s to retry. Meanwhile a direct call to B meets a 503 with
  // `Retry-After: 3600`, which holds B open. The retry reaches A (closed) again; its hop to B must be refused: the call
  // rejects with B's CircuitOpenError (`afterRedirect: true`) rather than settle with the 503 before it.
  function serve(): void {
    a.on((hit) => void hit.res.writeHead(302, { location: `${b.base}/503` }).end());
    b.on((hit) => void hit.res.writeHead(503, hit.path === "/hold" ? { "retry-after": "3600" } : {}).end("down"));
  }
  const layer = (clock: TestClock) =>
    createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 10_000, maxDelay: 10_000, jitter: "none" } });
  async function openBMeanwhile(r: ReturnType<typeof createResilience>, clock: TestClock): Promise<void> {
    await clock.waitForTimers(1);
    expect(await drain(r.fetch(`${b.base}/hold`))).toBe(503);
    expect(r.health().breakers[b.host]?.state).toBe("open");
    await clock.advance(10_000);
  }
  function expectRefusedHop(error: unknown): void {
    const refusal = error as CircuitOpenError;
    expect([isCircuitOpenError(refusal), refusal.key, refusal.afterRedirect]).toEqual([true, b.host, true]);
    expect([a.hits.length, b.hits.map((h) => h.path)]).toEqual([2, ["/503", "/hold"]]);
  }

  it("plain call: the retry's hop to B, held open meanwhile, is refused with B's CircuitOpenError (afterRedirect)", async () => {
    serve();
    const clock = new TestClock(START);
    const r = layer(clock);
    const call = rejection(r.fetch(`${a.base}/go`));
    await openBMeanwhile(r, clock);
    expectRefusedHop(await call);
    expect(r.health().breakers[a.host]?.state).toBe("closed");
  });

  it("`Request` input (GET with a header): the same refusal", async () => {
    serve();
    const clock = new TestClock(START);
    const r = layer(clock);
    const call = rejection(r.fetch(new Request(`${a.base}/go`, { headers: { "x-job": "1" } })));
    await openBMeanwhile(r, clock);
    expectRefusedHop(await call);
  });

  it("ky client: the call rejects with B's CircuitOpenError itself (afterRedirect)", async () => {
    serve();
    const clock = new TestClock(START);
    const r = layer(clock);
    const api = createClient({ resilience: r, throwHttpErrors: false });
    const call = rejection(api.get(`${a.base}/go`).then((x) => x));
    await openBMeanwhile(r, clock);
    expectRefusedHop(await call);
  });
});

describe("Bulkheads", () => {
  it('"a slot is held until response headers arrive (a streamed body does not hold it)"', async () => {
    const streams: Hit[] = [];
    a.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain" });
      hit.res.write("part ");
      streams.push(hit);
    });
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    try {
      const first = await clock.run(r.fetch(`${a.base}/one`));
      expect(first.status).toBe(200);
      expect(r.health().breakers[a.host]?.active ?? 0).toBe(0);
      const second = await clock.run(r.fetch(`${a.base}/two`));
      expect(second.status).toBe(200);
      for (const hit of streams) hit.res.end("end");
      expect(await first.text()).toBe("part end");
      expect(await second.text()).toBe("part end");
    } finally {
      for (const hit of streams) if (!hit.res.writableEnded) hit.res.end();
    }
  });

  it('"one that has already aborted takes no slot, not even a free one"', async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const gone = AbortSignal.abort(new Error("gone"));
    expect(((await rejection(clock.run(r.fetch(`${a.base}/x`, { signal: gone })))) as Error).message).toBe("gone");
    // The free slot stays free: a call right after gets it, and only that one reaches the server.
    expect(await drain(clock.run(r.fetch(`${a.base}/y`)))).toBe(200);
    expect(a.hits.map((h) => h.path)).toEqual(["/y"]);
  });

  it('"A call to a half-open host queues … each reads the breaker again when it gets its slot, and is refused then if the host is open"', async () => {
    const held: Hit[] = [];
    a.on((hit) => (hit.path === "/503" ? down(hit) : held.push(hit)));
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000 },
      bulkhead: { maxConcurrent: 1, maxQueue: 4 },
    });
    expect(await drain(clock.run(r.fetch(`${a.base}/503`)))).toBe(503);
    await clock.advance(1_000);
    const probe = r.fetch(`${a.base}/probe`);
    probe.catch(() => {});
    await until(() => held.length === 1, "the probe held");
    const queued = r.fetch(`${a.base}/queued`);
    queued.catch(() => {});
    await until(() => r.health().breakers[a.host]?.queued === 1, "the second call queued");
    down(held[0] as Hit);
    expect(await drain(probe)).toBe(503);
    const refused = await rejection(queued);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(a.hits.map((h) => h.path)).toEqual(["/503", "/probe"]);
    // The queue is not a way past an open host: a call now is refused before it would queue.
    expect(await rejection(r.fetch(`${a.base}/z`))).not.toBeInstanceOf(BulkheadRejectedError);
  });
});

describe('"A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then", off the plain path', () => {
  const held429 = (hit: Hit): void => void hit.res.writeHead(429, { "retry-after": "3600" }).end("slow down");
  const chain = (hedge: boolean) =>
    fallback([
      {
        name: "c",
        ...(hedge ? { hedge: { delay: 100 } } : {}),
        endpoints: [
          { name: "pa", url: `${a.base}/v1` },
          { name: "pb", url: `${b.base}/v1` },
        ],
      },
    ]);
  for (const hedge of [false, true]) {
    it(`${hedge ? "hedge" : "fallback chain"}: A's 429 + Retry-After 3600 holds A for an hour; the next call passes A over unsent`, async () => {
      a.on(held429);
      const clock = new TestClock(START);
      const r = createResilience({ clock, retry: false, fallback: chain(hedge) });
      expect(await drain(clock.run(r.fetch(`${a.base}/v1/x`)))).toBe(200);
      expect(r.health().breakers[a.host]).toMatchObject({
        state: "open",
        openUntil: START + 3_600_000,
        reason: "Retry-After 3600 s on status 429",
      });
      expect(await drain(clock.run(r.fetch(`${a.base}/v1/y`)))).toBe(200);
      expect(a.hits.length).toBe(1);
      await clock.advance(3_600_000);
      a.on((hit) => void hit.res.end("ok"));
      expect(await drain(clock.run(r.fetch(`${a.base}/v1/z`)))).toBe(200);
      expect(a.hits.length).toBe(2);
    });
  }

  it("resilientProxy: the 429 is relayed; the next request is answered 503 with Retry-After 3600, nothing sent", async () => {
    a.on(held429);
    const clock = new TestClock(START);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { clock, retry: false },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
    const ask = (path: string) => proxy.fetch(new Request(`https://w.example${path}`), {}, ctx);
    const first = await ask("/x");
    await first.body?.cancel();
    expect(first.status).toBe(429);
    const next = await ask("/y");
    await next.body?.cancel();
    expect([next.status, next.headers.get("retry-after")]).toEqual([503, "3600"]);
    expect(a.hits.length).toBe(1);
  });
});

describe("health() after a spell ends in a close", () => {
  it('"`lastFailureTime` … `null` before any and again once a spell ends in a close (a close starts clean, as the counts do)"', async () => {
    a.on((hit) => (hit.path === "/503" ? down(hit) : hit.res.end("ok")));
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, timeout: 1_000 } });
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", lastFailureTime: null });
    expect(await drain(clock.run(r.fetch(`${a.base}/503`)))).toBe(503);
    await clock.advance(1_000);
    expect(r.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null });
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
    expect(r.health().breakers[a.host]).toMatchObject({
      state: "closed",
      reason: "2 successful probes",
      lastFailureTime: null,
      failureCount: 0,
      consecutiveFailures: 0,
      openUntil: null,
    });
  });
});

describe("a hung transport", () => {
  it('"or the attempt is given up (… a timeout, even when the transport ignores its signal: a hung transport cannot wedge the host)"', async () => {
    const hung: Hit[] = [];
    a.on((hit) => void hung.push(hit));
    // A transport that drops the signal: the request to the real server goes on after the attempt is given up.
    const deaf: typeof fetch = (input, init) => fetch(input, { ...init, signal: null });
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      fetch: deaf,
      retry: false,
      timeout: { attempt: 100 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    });
    try {
      await rejection(clock.run(r.fetch(`${a.base}/one`)));
      expect(r.health().breakers[a.host]?.active ?? 0).toBe(0);
      a.on((hit) => void hit.res.end("ok"));
      expect(await drain(clock.run(r.fetch(`${a.base}/two`)))).toBe(200);
    } finally {
      for (const hit of hung) hit.res.end();
    }
  });
});

describe('"A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at once, and gives back a coordinating store\'s lease"', () => {
  function coordinator() {
    const released: string[] = [];
    let n = 0;
    const store: BreakerStore = {
      name: "coord",
      publish() {},
      peek: () => undefined,
      acquireProbe: async () => `L${++n}`,
      releaseProbe: (_key, probe) => void released.push(probe),
    };
    return { store, released };
  }
  async function halfOpen(r: ReturnType<typeof createResilience>, clock: TestClock, url: string): Promise<void> {
    await drain(clock.run(r.fetch(url)));
    await clock.advance(1_000);
    expect(r.health().breakers[new URL(url).host]?.state).toBe("half_open");
  }

  it("timeout.total: the cut probe's lease goes back, the next call probes at once", async () => {
    const { store, released } = coordinator();
    a.on((hit) => (hit.path === "/503" ? down(hit) : hit.path === "/ok" ? hit.res.end("ok") : undefined));
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      store,
      retry: false,
      timeout: { total: 500 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
    });
    await halfOpen(r, clock, `${a.base}/503`);
    await rejection(clock.run(r.fetch(`${a.base}/hang`)));
    await flush();
    expect(released).toEqual(["L1"]);
    expect(r.health().breakers[a.host]?.state).toBe("half_open");
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
  });

  it("its caller's abort: the lease goes back at once", async () => {
    const { store, released } = coordinator();
    a.on((hit) => (hit.path === "/503" ? down(hit) : undefined));
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
    });
    await halfOpen(r, clock, `${a.base}/503`);
    const ac = new AbortController();
    const call = r.fetch(`${a.base}/hang`, { signal: ac.signal });
    await until(() => a.hits.length === 2, "the probe sent");
    ac.abort(new Error("bye"));
    await rejection(call);
    await flush();
    expect(released).toEqual(["L1"]);
  });

  it("a hedge that won: the loser's lease goes back", async () => {
    const { store, released } = coordinator();
    a.on((hit) => (hit.path.endsWith("/503") ? down(hit) : undefined));
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 100 },
          endpoints: [
            { name: "pa", url: `${a.base}/v1` },
            { name: "pb", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    await halfOpen(r, clock, `${a.base}/v1/503`);
    expect(await drain(clock.run(r.fetch(`${a.base}/v1/y`)))).toBe(200);
    await (await a.nth(2)).closed;
    await flush();
    expect(released).toEqual(["L1"]);
  });
});

describe("a redirect's hop as a half-open host's probe (docs/retry.md)", () => {
  it("\"the caller's abort, or `timeout.total`, frees the slot at once\": B's one slot is free for the next call", async () => {
    a.on((hit) => void hit.res.writeHead(302, { location: `${b.base}/hang` }).end());
    const hung: Hit[] = [];
    b.on((hit) => (hit.path === "/503" ? down(hit) : hit.path === "/hang" ? hung.push(hit) : hit.res.end("ok")));
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: false,
      timeout: { total: 500 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
    });
    try {
      expect(await drain(clock.run(r.fetch(`${b.base}/503`)))).toBe(503);
      await clock.advance(1_000);
      await rejection(clock.run(r.fetch(`${a.base}/go`)));
      expect(hung.length).toBe(1);
      expect(r.health().breakers[b.host]?.state).toBe("half_open");
      expect(await drain(clock.run(r.fetch(`${b.base}/ok`)))).toBe(200);
    } finally {
      for (const hit of hung) hit.res.end();
    }
  });
});

describe("a breaker store that throws or rejects", () => {
  it('"what they throw fails the call … `RetryExhaustedError`, the store\'s error as its `cause` (`attempts` 0 …)"; a chain stops there', async () => {
    const boom = new Error("peek broke");
    const store: BreakerStore = {
      name: "bad",
      publish() {},
      peek: (key) => {
        if (key === a.host) throw boom;
        return undefined;
      },
    };
    const clock = new TestClock(START);
    const plain = createResilience({ clock, store, retry: false });
    const events: StoreEvent[] = [];
    plain.on("store", (e) => void events.push(e));
    const error = (await rejection(clock.run(plain.fetch(`${a.base}/x`)))) as RetryExhaustedError;
    expect([error instanceof RetryExhaustedError, error.cause, error.attempts]).toEqual([true, boom, 0]);
    // docs/health-and-events.md: "… fails the calls that meet it, not `health()` … a `store` event (`read`, outcome `failed`)".
    expect(plain.health().breakers[a.host]?.state ?? "closed").toBe("closed");
    expect(events.some((e) => e.operation === "read" && e.outcome === "failed")).toBe(true);
    const chained = createResilience({
      clock,
      store,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "pa", url: `${a.base}/v1` },
            { name: "pb", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const stopped = (await rejection(clock.run(chained.fetch(`${a.base}/v1/x`)))) as Error;
    expect(stopped).toBeInstanceOf(FallbackExhaustedError);
    expect(stopped.message).toContain("the breaker store threw");
    expect([a.hits.length, b.hits.length]).toEqual([0, 0]);
  });

  it('"a state change whose `publish` threw still fires its `breaker` event and wakes the calls waiting on the host"', async () => {
    const boom = new Error("publish broke");
    const store: BreakerStore = {
      name: "bad",
      publish() {
        throw boom;
      },
      peek: () => undefined,
    };
    a.on(down);
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      store,
      retry: { maxAttempts: 3, initialDelay: 10_000, maxDelay: 10_000, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => void changes.push(e));
    const waiting = r.fetch(`${a.base}/w`);
    await clock.waitForTimers(1);
    const opener = await rejection(clock.run(r.fetch(`${a.base}/o`)));
    expect(opener).toBeInstanceOf(RetryExhaustedError);
    expect((opener as Error).cause).toBe(boom);
    expect(changes.map((c) => c.to)).toEqual(["open"]);
    // The waiting call settles without the clock moving: its 503, its retry never sent.
    expect(await drain(waiting)).toBe(503);
    expect(a.hits.length).toBe(2);
  });

  it('"what it rejects with becomes a `store` event (`write` … `failed`, the URLs in its text cut)"; a promise from `peek` is a `read` `skipped`', async () => {
    const store: BreakerStore = {
      name: "async",
      publish: (async () => {
        throw new Error(`write to https://redis.example/put?token=SECRET42 failed`);
      }) as unknown as BreakerStore["publish"],
      peek: (() => Promise.resolve(undefined)) as unknown as BreakerStore["peek"],
    };
    a.on(down);
    const clock = new TestClock(START);
    const r = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1 } });
    const events: StoreEvent[] = [];
    r.on("store", (e) => void events.push(e));
    expect(await drain(clock.run(r.fetch(`${a.base}/x`)))).toBe(503);
    await flush();
    const write = events.find((e) => e.operation === "write");
    expect(write?.outcome).toBe("failed");
    expect(write?.detail ?? "").not.toContain("SECRET42");
    expect(events.some((e) => e.operation === "read" && e.outcome === "skipped")).toBe(true);
    expect(r.health().breakers[a.host]?.state).toBe("open");
  });

  it('"An open state read from any store holds a host a day at most … Read again, the same value is no news"', async () => {
    const clock = new TestClock(START);
    const model = new CircuitBreaker("m", POLICY, clock);
    await rejection(model.execute(() => Promise.reject(new Error("x"))));
    const far = { ...model.toJSON(), openUntil: Date.UTC(30_000, 0, 1) };
    const store: BreakerStore = { name: "far", publish() {}, peek: () => structuredClone(far) };
    const r = createResilience({ clock, store, retry: false });
    expect(isCircuitOpenError(await rejection(clock.run(r.fetch(`${a.base}/x`))))).toBe(true);
    await clock.advance(43_200_000);
    expect(r.health().breakers[a.host]?.state).toBe("open");
    await clock.advance(43_200_000);
    expect(await drain(clock.run(r.fetch(`${a.base}/y`)))).toBe(200);
    expect(a.hits.length).toBe(1);
  });
});

describe("generic CircuitBreaker (./policies) JSDoc", () => {
  it('onChange: "a throw reaches that caller (the change stands; a probe slot the change took … goes back, and the work `execute` ran is no failure for it)"', async () => {
    const clock = new TestClock(START);
    let throwOn: string | null = null;
    const cb = new CircuitBreaker("work", POLICY, clock, {
      onChange: (change) => {
        if (change.to === throwOn) throw new Error(`hook on ${change.to}`);
      },
    });
    await rejection(cb.execute(() => Promise.reject(new Error("down"))));
    await clock.advance(1_000);
    throwOn = "half_open";
    let ran = 0;
    const hooked = (await rejection(cb.execute(async () => void ran++))) as Error;
    expect([hooked.message, ran, cb.state]).toEqual(["hook on half_open", 0, "half_open"]);
    // The probe slot (halfOpenMaxCalls 1) went back: the next run is admitted.
    throwOn = "closed";
    const closing = (await rejection(cb.execute(async () => void ran++))) as Error;
    expect([closing.message, ran, cb.state]).toEqual(["hook on closed", 1, "closed"]);
    expect(cb.toJSON().failures).toEqual([]);
  });

  it('onChange: "an async hook is not awaited, and its rejection is reported (`reportError`, else `console.error`)"', async () => {
    const clock = new TestClock(START);
    const reported: unknown[] = [];
    const g = globalThis as { reportError?: (e: unknown) => void };
    const before = g.reportError;
    g.reportError = (e) => void reported.push(e);
    try {
      const cb = new CircuitBreaker("work", POLICY, clock, {
        onChange: (async () => {
          throw new Error("async hook");
        }) as never,
      });
      const error = (await rejection(cb.execute(() => Promise.reject(new Error("down"))))) as Error;
      expect(error.message).toBe("down");
      await flush();
      expect(reported.map((e) => (e as Error).message)).toEqual(["async hook"]);
      expect(cb.state).toBe("open");
    } finally {
      if (before) g.reportError = before;
      else delete g.reportError;
    }
  });

  it('hold: "a time already past holds nothing"; NaN and Infinity are a TypeError', () => {
    const clock = new TestClock(START);
    const cb = new CircuitBreaker("work", POLICY, clock);
    cb.hold(START - 1, "past");
    expect([cb.state, cb.toJSON().gen]).toEqual(["closed", 0]);
    expect(() => cb.hold(Number.NaN, "nan")).toThrow(TypeError);
    expect(() => cb.hold(Number.POSITIVE_INFINITY, "inf")).toThrow(TypeError);
    cb.hold(START + 5_000, "Retry-After 5 s");
    expect([cb.state, cb.retryAt()]).toEqual(["open", START + 5_000]);
  });

  it('retryAt: "Half-open with every probe slot taken, the first probe lease\'s expiry"; state reads open once it ran out', async () => {
    const clock = new TestClock(START);
    const cb = new CircuitBreaker("work", { ...POLICY, halfOpenMaxCalls: 2, probeTimeout: 5_000 }, clock);
    await rejection(cb.execute(() => Promise.reject(new Error("down"))));
    await clock.advance(1_000);
    const first = cb.acquire();
    await clock.advance(100);
    cb.acquire();
    expect([cb.refuses(), cb.retryAt()]).toEqual([true, START + 1_000 + 5_000]);
    await clock.advance(4_900);
    expect(cb.state).toBe("open");
    cb.success(first);
    expect(cb.toJSON().state).toBe("open");
  });
});
