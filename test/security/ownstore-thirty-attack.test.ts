/**
 * Outside-in attack on a breaker store written by the user from the documented store contract alone.
 * Docs: src/stores/breaker-store.ts (the `BreakerStore` JSDoc: "`peek` … serves from what it last saw", "Only
 * `acquireProbe` is awaited, and only for a half-open probe", `acquireProbe`'s `signal` and "a lease it grants later
 * is given back through `releaseProbe`"); docs/breakers.md ("OPEN fails fast with `CircuitOpenError` and sends
 * nothing", "Any probe failure re-opens", "Shared breaker state": "each attempt reads the store before it leaves",
 * "a closed one toward half-open (…) and toward closed only when it closed after the local breaker last changed:
 * times order them", the paragraph "A store of your own implements `BreakerStore` …"); docs/cloudflare.md "The local
 * breaker stays authoritative"; docs/retry.md (redirect hops as probes, the error table); docs/fallback.md (a chain
 * that stopped because a store threw); SECURITY.md "The library's stores cannot break or stall a request".
 * How: `createResilience` and `memoryStore` (root), `fallback` (…/fallback), `degradation` (…/degradation),
 * `createClient` (…/ky), `resilientProxy` (…/cloudflare), `TestClock` (…/testing); stores written here: a Redis-like
 * one that keeps JSON and serves `peek` from a cache its background reads fill (replies landing late), a coordinator
 * whose `acquireProbe` answers when the test says (late, never, after the caller left), stores whose `peek`, `record`
 * or `publish` throw, a counting store.
 * Paths: plain call, retries, a fallback chain, a hedge, a redirect to another host, a `Request` input, a degradation
 * rewrite, the ky client, the proxy.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a store's late copy of the layer's own half-open spell is old news to a breaker that closed since; a probe whose lease comes back after the host re-opened gives it back and is refused):
 * 1. docs/breakers.md "A remote snapshot may push a breaker … a closed one toward half-open (…) and toward closed
 *    only when it closed after the local breaker last changed: times order them" with the JSDoc's "a store that
 *    needs I/O does it in the background and serves `peek` from what it last saw" and "The local breaker stays
 *    authoritative". Observed: a store whose background read, begun while the host was half-open, lands after the
 *    layer's probes closed it hands back the layer's own half-open snapshot (dated before the close); the layer
 *    adopts it and is half-open again ("shared: timeout elapsed"), its own spell applied a second time, and its
 *    calls go as probes. The half-open branch of `adopt` (src/policies/breaker-state.ts, `remote.state ===
 *    "half_open" … && s.state === "closed"`) compares no times, where the closed and the lapsed-open branches do.
 * 2. docs/breakers.md "OPEN fails fast with `CircuitOpenError` and sends nothing" and "Any probe failure re-opens".
 *    Observed: with `halfOpenMaxCalls: 2` and a coordinating store that answers the second probe's `acquireProbe`
 *    after the first probe failed (the circuit is open again, `half_open>open`), the second probe is still sent to
 *    the host. `probeLease` (src/http/send/send-attempt.ts) reads neither the breaker nor the store after the lease
 *    comes back, as a bulkhead wait does (`scope.sync` and `tryAcquire` after the slot).
 *
 * Held (plain `it`):
 * - An `acquireProbe` that never answers: `timeout.total` settles the call with `TimeoutError`, frees the local slot
 *   (the next call probes) and a lease granted later is given back (`releaseProbe`); the same for a redirect's hop
 *   to a half-open host, during the wait for its lease and during its transport call.
 * - A hedge: the hedged endpoint's ask for a lease, still pending when the first endpoint answers, is given up and
 *   the lease granted later given back.
 * - A refusal (`false`): `CircuitOpenError`, nothing sent, not retried; the store is asked once.
 * - A store's error: `record` throwing on a 503 is not retried (1 fetch, `RetryExhaustedError`, `attempts` 1, the
 *   store's error as `cause`), and the same through a `Request` input; a chain stops at the endpoint whose `peek`
 *   threw (`FallbackExhaustedError` "the breaker store threw"), a hedge's too; a redirect hop's store error is no
 *   retry; `peek` throwing under a degradation rewrite and through the ky client is `RetryExhaustedError` with
 *   `attempts` 0 and nothing sent; the proxy answers 502; a `publish` that throws on a trip still fires the
 *   `breaker` event and sends nothing more.
 * - Store calls per request: one `peek` and one `record` per attempt (three attempts, three each), `acquireProbe`
 *   never for a closed host.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  isTimeoutError,
  memoryStore,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

const urlOf = (input: RequestInfo | URL) => (input instanceof Request ? input.url : String(input));
const copy = (s: BreakerSnapshot): BreakerSnapshot => JSON.parse(JSON.stringify(s)) as BreakerSnapshot;

/** A coordinator over a memory store whose `acquireProbe` answers when the test resolves it. */
function coordinator() {
  const inner = memoryStore();
  const calls: string[] = [];
  const asks: ((answer: boolean | string | undefined) => void)[] = [];
  const store: BreakerStore = {
    name: "coordinator",
    publish: (key, snapshot) => inner.publish(key, snapshot),
    peek: (key, now) => inner.peek(key, now),
    record: (key, failed, _now, probe) => {
      calls.push(`record ${key} ${failed} ${probe}`);
    },
    releaseProbe: (key, probe) => {
      calls.push(`release ${key} ${probe}`);
    },
    acquireProbe: (key, _now, signal) => {
      calls.push(`acquire ${key} ${signal instanceof AbortSignal ? "signal" : "none"}`);
      return new Promise((resolve) => asks.push(resolve));
    },
  };
  return { store, calls, asks };
}

/** A store whose `which` method throws for `keys`. */
function throwing(which: "peek" | "record" | "publish", keys: string[]): BreakerStore {
  const inner = memoryStore();
  return {
    name: "mine",
    publish: (key, snapshot) => {
      if (which === "publish" && keys.includes(key)) throw new TypeError(`publish ${key} down`);
      inner.publish(key, snapshot);
    },
    peek: (key, now) => {
      if (which === "peek" && keys.includes(key)) throw new TypeError(`peek ${key} down`);
      return inner.peek(key, now);
    },
    record: (key) => {
      if (which === "record" && keys.includes(key)) throw new TypeError(`record ${key} down`);
    },
  };
}

const settle = (p: Promise<Response>) =>
  p.then(
    (r) => r,
    (e: unknown) => e,
  );

describe("a store of one's own: defects", () => {
  it("a stale read of the layer's own half-open, older than its close, does not push it back to half-open", async () => {
    const clock = new TestClock(1_000_000);
    const written = new Map<string, BreakerSnapshot>();
    let cache = new Map<string, BreakerSnapshot>();
    // Redis-like: writes go out, `peek` serves the last background read (JSON copies).
    const store: BreakerStore = {
      name: "redis",
      publish: (key, snapshot) => {
        written.set(key, copy(snapshot));
      },
      peek: (key) => {
        const seen = cache.get(key);
        return seen && copy(seen);
      },
    };
    let status = 503;
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, successThreshold: 2 },
      fetch: async () => new Response("x", { status }),
    });
    const events: string[] = [];
    layer.on("breaker", (e) => events.push(`${e.from}>${e.to}`));
    await layer.fetch("https://api.example/a");
    await clock.advance(1_000);
    status = 200;
    await layer.fetch("https://api.example/a"); // half-open, first probe succeeds
    const readWhileHalfOpen = new Map(written); // a background read starts now ...
    await clock.advance(10);
    await layer.fetch("https://api.example/a"); // second probe: closed
    expect(events).toEqual(["closed>open", "open>half_open", "half_open>closed"]);
    cache = readWhileHalfOpen; // ... and lands now
    await clock.advance(10);
    await layer.fetch("https://api.example/a");
    expect(events).toEqual(["closed>open", "open>half_open", "half_open>closed"]);
    expect(layer.health().breakers["api.example"]?.state).toBe("closed");
  });

  it("a probe whose lease comes back after the circuit re-opened is not sent", async () => {
    const clock = new TestClock(1_000_000);
    const { store, asks, calls } = coordinator();
    const sent: string[] = [];
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 2 },
      fetch: async (input) => {
        sent.push(urlOf(input));
        return new Response("x", { status: 503 });
      },
    });
    const events: string[] = [];
    layer.on("breaker", (e) => events.push(`${e.from}>${e.to}`));
    await layer.fetch("https://api.example/a");
    await clock.advance(1_000);
    sent.length = 0;
    const first = settle(layer.fetch("https://api.example/1"));
    const second = settle(layer.fetch("https://api.example/2"));
    await flush();
    expect(asks).toHaveLength(2);
    asks[0]?.("L1");
    expect(((await first) as Response).status).toBe(503);
    expect(events).toEqual(["closed>open", "open>half_open", "half_open>open"]);
    asks[1]?.("L2");
    const late = await second;
    expect(sent).toEqual(["https://api.example/1"]);
    expect(isCircuitOpenError(late)).toBe(true);
    // Added in the thirty-first session (a mutant that kept it survived): the unused lease goes back to the store.
    expect(calls).toContain("release api.example L2");
  });
});

describe("a store of one's own: what held", () => {
  it("an acquireProbe that never answers: timeout.total settles the call, frees the slot, a late lease goes back", async () => {
    const clock = new TestClock(1_000_000);
    const { store, calls, asks } = coordinator();
    let status = 503;
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      timeout: { total: 500 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async () => new Response("x", { status }),
    });
    await layer.fetch("https://api.example/a");
    await clock.advance(1_000);
    status = 200;
    const call = settle(layer.fetch("https://api.example/a"));
    await flush();
    expect(calls).toEqual(["record api.example true undefined", "acquire api.example signal"]);
    await clock.advance(600);
    expect(isTimeoutError(await call)).toBe(true);
    asks[0]?.("LATE");
    await flush();
    expect(calls).toContain("release api.example LATE");
    const next = settle(layer.fetch("https://api.example/a"));
    await flush();
    asks[1]?.("L2");
    expect(((await next) as Response).status).toBe(200);
    expect(calls.at(-1)).toBe("record api.example false L2");
    expect(clock.pending()).toBe(0);
  });

  for (const when of ["its lease", "its transport"] as const) {
    it(`a redirect's hop probing a half-open host: timeout.total during ${when} gives the lease back`, async () => {
      const clock = new TestClock(1_000_000);
      const { store, calls, asks } = coordinator();
      let bDown = true;
      const sent: string[] = [];
      const layer = createResilience({
        clock,
        store,
        timeout: { total: 500 },
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 1, timeout: 1_000 },
        fetch: (input, init) => {
          const url = urlOf(input);
          sent.push(url);
          if (url.includes("a.example"))
            return Promise.resolve(new Response(null, { status: 302, headers: { location: "https://b.example/z" } }));
          if (bDown) return Promise.resolve(new Response("x", { status: 503 }));
          return new Promise((_resolve, reject) =>
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
          );
        },
      });
      await layer.fetch("https://b.example/z");
      await clock.advance(1_000);
      bDown = false;
      sent.length = 0;
      const call = settle(layer.fetch("https://a.example/v"));
      await flush();
      if (when === "its transport") asks[0]?.("LB");
      await flush();
      await clock.advance(600);
      expect(isTimeoutError(await call)).toBe(true);
      if (when === "its lease") {
        expect(sent).toEqual(["https://a.example/v"]);
        asks[0]?.("LB");
        await flush();
      } else expect(sent).toEqual(["https://a.example/v", "https://b.example/z"]);
      expect(calls).toEqual(["record b.example true undefined", "acquire b.example signal", "release b.example LB"]);
      expect(layer.health().breakers["b.example"]?.state).toBe("half_open");
      // The slot is free: the next call to b is its probe and asks again.
      void settle(layer.fetch("https://b.example/z"));
      await flush();
      expect(calls.filter((c) => c.startsWith("acquire"))).toHaveLength(2);
      asks[1]?.(false);
      await flush();
    });
  }

  it("a hedge: the hedged endpoint's pending ask is given up when the first answers, its late lease given back", async () => {
    const clock = new TestClock(1_000_000);
    const { store, calls, asks } = coordinator();
    let bStatus = 503;
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: (input) => {
        if (urlOf(input).startsWith("https://b.example"))
          return Promise.resolve(new Response("b", { status: bStatus }));
        return new Promise((resolve) => clock.setTimer(() => resolve(new Response("a")), 300));
      },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "a", url: "https://a.example/v" },
            { name: "b", url: "https://b.example/v" },
          ],
        },
      ]),
    });
    await settle(layer.fetch("https://b.example/v"));
    expect(layer.health().breakers["b.example"]?.state).toBe("open");
    await clock.advance(1_000);
    bStatus = 200;
    const call = settle(layer.fetch("https://a.example/v"));
    await clock.advance(100);
    await flush();
    expect(calls).toEqual(["record b.example true undefined", "acquire b.example signal"]);
    await clock.advance(250);
    expect(await ((await call) as Response).text()).toBe("a");
    asks[0]?.("LB");
    await flush();
    expect(calls).toEqual([
      "record b.example true undefined",
      "acquire b.example signal",
      "record a.example false undefined",
      "release b.example LB",
    ]);
  });

  it("a refused lease: CircuitOpenError, nothing sent, not retried, the store asked once", async () => {
    const clock = new TestClock(1_000_000);
    const inner = memoryStore();
    const asked: string[] = [];
    const store: BreakerStore = {
      name: "refuser",
      publish: (key, snapshot) => inner.publish(key, snapshot),
      peek: (key, now) => inner.peek(key, now),
      acquireProbe: async (key) => {
        asked.push(key);
        return false;
      },
    };
    const sent: string[] = [];
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 3, initialDelay: 0 },
      breaker: { failureThreshold: 1, timeout: 1_000 },
      fetch: async (input) => {
        sent.push(urlOf(input));
        return new Response("x", { status: 503 });
      },
    });
    await layer.fetch("https://api.example/a");
    expect(asked).toEqual([]); // never asked for a closed host
    await clock.advance(1_000);
    sent.length = 0;
    const refused = await settle(layer.fetch("https://api.example/a"));
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(sent).toEqual([]);
    expect(asked).toEqual(["api.example"]);
  });

  it("a store's error is neither retried nor the wrong class, on every path", async () => {
    // Plain call with retries: record throws on the first 503.
    const sent: string[] = [];
    const answer = (status: number) => async (input: RequestInfo | URL) => {
      sent.push(urlOf(input));
      return new Response("x", { status });
    };
    const plain = createResilience({
      store: throwing("record", ["api.example"]),
      retry: { maxAttempts: 3, initialDelay: 0 },
      fetch: answer(503),
    });
    const plainError = await settle(plain.fetch("https://api.example/a"));
    expect(isRetryExhaustedError(plainError)).toBe(true);
    expect((plainError as { attempts: number }).attempts).toBe(1);
    expect((plainError as Error).cause).toBeInstanceOf(TypeError);
    expect(sent).toHaveLength(1);

    // A `Request` input.
    sent.length = 0;
    const req = createResilience({
      store: throwing("record", ["api.example"]),
      retry: { maxAttempts: 3, initialDelay: 0 },
      fetch: answer(200),
    });
    const reqError = await settle(req.fetch(new Request("https://api.example/a", { method: "POST", body: "hi" })));
    expect(isRetryExhaustedError(reqError)).toBe(true);
    expect(sent).toHaveLength(1);

    // A chain: b's peek throws after a answered 503.
    sent.length = 0;
    const chained = createResilience({
      store: throwing("peek", ["b.example"]),
      retry: { maxAttempts: 1 },
      fetch: answer(503),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v" },
            { name: "b", url: "https://b.example/v" },
          ],
        },
      ]),
    });
    const chainError = await settle(chained.fetch("https://a.example/v"));
    expect(isFallbackExhaustedError(chainError)).toBe(true);
    expect((chainError as Error).message).toContain('stopped after "b": the breaker store threw');
    expect(sent).toEqual(["https://a.example/v"]);

    // A redirect hop whose host's peek throws: one attempt, not retried.
    sent.length = 0;
    const redirected = createResilience({
      store: throwing("peek", ["b.example"]),
      retry: { maxAttempts: 3, initialDelay: 0 },
      fetch: async (input) => {
        sent.push(urlOf(input));
        return new Response(null, { status: 302, headers: { location: "https://b.example/z" } });
      },
    });
    const hopError = await settle(redirected.fetch("https://a.example/v"));
    expect(isRetryExhaustedError(hopError)).toBe(true);
    expect((hopError as { attempts: number }).attempts).toBe(1);
    expect(sent).toEqual(["https://a.example/v"]);

    // Degradation rewrite and the ky client: peek throws, nothing sent.
    sent.length = 0;
    const degraded = createResilience({
      store: throwing("peek", ["api.example"]),
      degradation: degradation({}),
      fetch: answer(200),
    });
    degraded.degradation.degrade("busy");
    const degradedError = await settle(
      degraded.fetch("https://api.example/a", {
        method: "POST",
        body: JSON.stringify({ steps: 50 }),
        headers: { "content-type": "application/json" },
      }),
    );
    expect(isRetryExhaustedError(degradedError)).toBe(true);
    expect((degradedError as { attempts: number }).attempts).toBe(0);
    const api = createClient({
      resilience: createResilience({ store: throwing("peek", ["api.example"]), fetch: answer(200) }),
    });
    const kyError = await api.get("https://api.example/a").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRetryExhaustedError(kyError)).toBe(true);
    expect(sent).toEqual([]);

    // The proxy: 502.
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/", upstream: "https://api.example/v1" }],
      store: () => throwing("record", ["api.example"]),
      resilience: { fetch: answer(200) },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const proxied = await proxy.fetch(new Request("https://w.example/x"), {}, ctx);
    expect(proxied.status).toBe(502);

    // publish throws on the trip: the breaker event fires, nothing more is sent.
    sent.length = 0;
    const tripping = createResilience({
      store: throwing("publish", ["api.example"]),
      breaker: { failureThreshold: 2 },
      retry: { maxAttempts: 3, initialDelay: 0 },
      fetch: answer(503),
    });
    const changes: string[] = [];
    tripping.on("breaker", (e) => changes.push(`${e.from}>${e.to}`));
    const tripError = await settle(tripping.fetch("https://api.example/a"));
    expect(isRetryExhaustedError(tripError)).toBe(true);
    expect(changes).toEqual(["closed>open"]);
    expect(sent).toHaveLength(2);
  });

  it("one peek and one record per attempt", async () => {
    const clock = new TestClock();
    const inner = memoryStore();
    const calls: string[] = [];
    const store: BreakerStore = {
      name: "count",
      publish: (key, snapshot) => {
        calls.push(`publish ${snapshot.state}`);
        inner.publish(key, snapshot);
      },
      peek: (key, now) => {
        calls.push("peek");
        return inner.peek(key, now);
      },
      record: (_key, failed) => {
        calls.push(`record ${failed}`);
      },
    };
    let n = 0;
    const layer = createResilience({
      clock,
      store,
      retry: { maxAttempts: 3, initialDelay: 0, jitter: "none" },
      fetch: async () => new Response("x", { status: ++n < 3 ? 503 : 200 }),
    });
    expect((await layer.fetch("https://api.example/a")).status).toBe(200);
    expect(calls).toEqual(["peek", "record true", "peek", "record true", "peek", "record false"]);
  });
});
