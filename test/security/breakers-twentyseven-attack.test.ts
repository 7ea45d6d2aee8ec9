/**
 * Outside-in attack on docs/breakers.md and docs/retry.md (breakers, Retry-After holds, shared stores, half-open
 * probes), on every path.
 * Docs: docs/retry.md ("A `Retry-After` longer than `maxRetryAfter` is not slept through: the call resolves with
 * that response at once, and the host is held open until then, for at most 24 hours whatever the header says";
 * "A transport's answer that is no `Response` fetch would give ... is a network error too"; "a 429 or 503 whose
 * `Retry-After` cannot be read is a failure that holds nothing"; "A `Retry-After` hold on the final answer holds the
 * host that sent it"; a hop to a half-open host "takes it, as that host's probe"), docs/breakers.md ("A 429/503
 * whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then"; "Its `publish`, `peek` and `record`
 * run on the request's path: what they throw fails the call, which `health()` counts as a failed call (whatever
 * the error's class)"; "a closed one toward half-open (... open there for a time that has run out ...: its calls
 * then go as probes, a redirect's hop to it too)"; "A probe aborted by ... a hedge that won frees its slot at
 * once"), docs/health-and-events.md ("one answer that both trips the breaker and holds it open is one event").
 * How: `createResilience` (root) with `memoryStore` and a store of one's own, `fallback` (./fallback, chain and
 * `hedge`), `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing), a clock that moves 1 ms per read (as `Date.now()` does between two reads a millisecond apart), and
 * transports answering by host.
 * Paths: plain call, retry, chain, hedge, redirect (library, hop to a half-open host), shared store (two layers),
 * `Request` input with a body, degradation stage, ky client, proxy upstream route.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: one fixed in code by each hop's held answer being heard once, two by a store's failure neither retried nor moved on from, and the first made exact in docs):
 * 1. docs/retry.md "A `Retry-After` longer than `maxRetryAfter` is not slept through: the call resolves with that
 *    response at once". Observed: on a chain the 503 (Retry-After 3600) is turned down as `status 503` and the
 *    call goes on to the next endpoint, resolving with its 200 (`judge` in src/fallback/try-endpoints.ts rejects
 *    any 5xx; the hold itself is applied). Maybe what a chain should do, but the sentence says otherwise.
 *    Made exact in docs/retry.md instead ("in a fallback chain, the next endpoint is tried instead, as after any
 *    503"): a chain exists to move on from such an answer.
 * 2. docs/health-and-events.md "one answer that both trips the breaker and holds it open is one event, until the
 *    later time" (and breakers.md "holds the host open until then"). Observed: a redirect's hop to a half-open
 *    host answered 503 with `Retry-After: 3600` makes two `breaker` events for that host, half_open → open and then
 *    open → open, with a clock that moves between reads (the wall clock does): `admitHop`'s outcome
 *    (src/http/send/send-attempt.ts) applies failure and hold, then `sendAttempt` holds the same host again
 *    (`asker.hold`) from a later `now`, a few ms further, which is a new opening.
 * 3. docs/breakers.md "Its `publish`, `peek` and `record` run on the request's path: what they throw fails the
 *    call, which `health()` counts as a failed call (whatever the error's class)". Observed: a `record` that throws
 *    a `TypeError` once is taken as a network error of the attempt: retried, the request sent a second time, and the
 *    call resolves 200, counted as no failure (`sendAttempt` rethrows the store's error into the retry loop, where
 *    `isRetryableError` sees a `TypeError`).
 * 4. Same sentence, on a chain. Observed: a `record` that throws (a plain `Error`) for the first endpoint's host
 *    moves the chain on to the next endpoint, and the call resolves 200 (`mayMoveOn` judges the store's error as
 *    the endpoint's failure); `health().errorRate` stays 0.
 *
 * Held (plain `it`):
 * - A `Request` input with a body answered 503 with `Retry-After: 3600`: one send, the 503 at once, the host held,
 *   the next call refused with `CircuitOpenError` and nothing sent; the same through the degradation stage.
 * - The ky client: `HTTPError` 503 after one attempt, then `CircuitOpenError`.
 * - The proxy: a 10-day `Retry-After` is passed on as the upstream gave it, and the next request is answered 503
 *   with `Retry-After: 86400` (24 hours at most), nothing sent.
 * - A lapsed open read from a shared store by a layer that never called the host: a redirect's hop to it goes as
 *   its probe (closed → half_open → open on the 500).
 * - A half-open probe that lost to a hedge frees its slot at once (`halfOpenMaxCalls: 1`: the next call is sent).
 * - The same hop 503 with a clock that stands still is one `breaker` event for the hop's host.
 * - `Response.error()` and a Response whose `headers` getter throws: retried, and each a failure for the breaker.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerStore,
  type Clock,
  createResilience,
  memoryStore,
  RetryExhaustedError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const held = (s: number, status = 503) => new Response("x", { status, headers: { "retry-after": String(s) } });

/** A transport answering the n-th request to a host with `answers[host](n, request)`; no answer: unreachable. */
function byHost(answers: Record<string, (n: number, req: Request) => Response | Promise<Response>>) {
  const urls: string[] = [];
  const bodies: string[] = [];
  const counts = new Map<string, number>();
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    urls.push(req.url);
    bodies.push(await req.clone().text());
    const host = new URL(req.url).host;
    const n = (counts.get(host) ?? 0) + 1;
    counts.set(host, n);
    const answer = answers[host];
    if (!answer) throw new TypeError("fetch failed");
    return answer(n, req);
  };
  return { fetch, urls, bodies };
}

const chainAB = (extra: object = {}) =>
  fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "a", url: "https://a.test" },
        { name: "b", url: "https://b.test" },
      ],
    },
  ]);

const outcome = (p: Promise<Response>): Promise<string> =>
  p.then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: unknown) => `rejected ${(e as Error).name}`,
  );

/** A store that keeps what `memoryStore` keeps, and whose `record` is `record`. */
function storeWith(record: (key: string) => void): BreakerStore {
  const mem = memoryStore();
  return {
    name: "own",
    publish: (key, snapshot) => mem.publish(key, snapshot),
    peek: (key, now) => mem.peek(key, now),
    record: (key) => record(key),
  };
}

/** A redirect from a.example to b.example; b answers 500 first (opening it), then `later()`. */
function hopToHalfOpen(clock: Clock, tc: TestClock, later: () => Response) {
  let opened = false;
  const r = createResilience({
    clock,
    redirects: "library",
    retry: false,
    breaker: { failureThreshold: 1, timeout: 1000 },
    fetch: async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith("https://a.example"))
        return new Response(null, { status: 302, headers: { location: "https://b.example/y" } });
      return opened ? later() : new Response("x", { status: 500 });
    },
  });
  const events: BreakerEvent[] = [];
  r.on("breaker", (e) => events.push(e));
  return {
    r,
    events,
    async open() {
      await r.fetch("https://b.example/y");
      opened = true;
      await tc.advance(2000);
    },
  };
}

describe("breakers twentyseven: defects", () => {
  it("1. retry.md: a chain's endpoint answering 503 with a Retry-After past maxRetryAfter: the next endpoint is tried at once, the host held", async () => {
    const clock = new TestClock();
    const net = byHost({ "a.test": () => held(3600), "b.test": () => new Response("b") });
    const r = createResilience({
      fetch: net.fetch,
      clock,
      retry: { maxAttempts: 3, initialDelay: 0 },
      fallback: chainAB(),
    });
    const result = await outcome(r.fetch("https://a.test/x"));
    // The hold is applied either way.
    expect(r.health().breakers["a.test"]?.state).toBe("open");
    // As the sentence now says: the chain goes on to b at once (no sleep), as after any 503.
    expect([result, net.urls]).toEqual(["200 b", ["https://a.test/x", "https://b.test/x"]]);
    expect(clock.now()).toBe(0);
  });

  it("2. a redirect hop to a half-open host answered 503 Retry-After 3600 is one breaker event for that host", async () => {
    const tc = new TestClock();
    let reads = 0;
    // A clock that moves on as time does between two reads (1 ms a read).
    const clock: Clock = { now: () => tc.now() + reads++, setTimer: (fn, ms) => tc.setTimer(fn, ms) };
    const hop = hopToHalfOpen(clock, tc, () => held(3600));
    await hop.open();
    expect(hop.r.health().breakers["b.example"]?.state).toBe("half_open");
    hop.events.length = 0;
    expect(await outcome(hop.r.fetch("https://a.example/x"))).toBe("503 x");
    const b = hop.events.filter((e) => e.key === "b.example").map((e) => `${e.from}>${e.to}`);
    // Observed: [..., "half_open>open", "open>open"] (the hold applied twice, from two readings of the clock).
    expect(b).toEqual(["open>half_open", "half_open>open"]);
  });

  it("3. breakers.md: a store's record that throws a TypeError fails the call (not retried as a network error)", async () => {
    let throws = 1;
    const store = storeWith(() => {
      if (throws-- > 0) throw new TypeError("store down");
    });
    const net = byHost({ "a.test": () => new Response("ok") });
    const r = createResilience({ fetch: net.fetch, store, retry: { maxAttempts: 3, initialDelay: 0 } });
    const error = await r.fetch("https://a.test/x").catch((e: unknown) => e);
    // Observed: "200 ok" after the request was sent twice, and no failure counted.
    // The call fails as any attempt's error not retried does: the store's error is its cause.
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect([(error as RetryExhaustedError).cause, (error as RetryExhaustedError).attempts]).toEqual([
      new TypeError("store down"),
      1,
    ]);
    expect([net.urls.length, r.debugInfo().totals.failures]).toEqual([1, 1]);
  });

  it("4. breakers.md: a store's record that throws fails the call on a chain too (no move to the next endpoint)", async () => {
    const store = storeWith((key) => {
      if (key === "a.test") throw new Error("store down");
    });
    const net = byHost({ "a.test": () => new Response("a"), "b.test": () => new Response("b") });
    const r = createResilience({ fetch: net.fetch, store, retry: false, fallback: chainAB() });
    const result = await outcome(r.fetch("https://a.test/x"));
    // Observed: "200 b", and errorRate 0.
    expect(result).toMatch(/^rejected /);
    expect(r.health().errorRate).toBe(1);
  });
});

describe("breakers twentyseven: held", () => {
  it("a Request input with a body answered 503 Retry-After 3600: one send, the 503 at once, the host held", async () => {
    for (const staged of [{}, { degradation: degradation() }]) {
      const clock = new TestClock();
      const net = byHost({ "a.test": () => held(3600) });
      const r = createResilience({ fetch: net.fetch, clock, retry: { maxAttempts: 3, initialDelay: 0 }, ...staged });
      const request = new Request("https://a.test/x", { method: "PUT", body: '{"steps":30}' });
      expect(await outcome(r.fetch(request))).toBe("503 x");
      expect([net.urls.length, net.bodies[0]]).toEqual([1, '{"steps":30}']);
      const breaker = r.health().breakers["a.test"];
      expect([breaker?.state, breaker?.openUntil]).toEqual(["open", 3_600_000]);
      expect(await outcome(r.fetch("https://a.test/x"))).toBe("rejected CircuitOpenError");
      expect(net.urls.length).toBe(1);
    }
  });

  it("the ky client: HTTPError 503 after one attempt, then CircuitOpenError", async () => {
    const clock = new TestClock();
    const net = byHost({ "a.test": () => held(3600) });
    const api = createClient({ resilience: createResilience({ fetch: net.fetch, clock }) });
    const name = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: { name: string; response?: Response }) => `${e.name} ${e.response?.status ?? ""}`.trim(),
      );
    expect(await name(api.get("https://a.test/x"))).toBe("HTTPError 503");
    expect(await name(api.get("https://a.test/x"))).toBe("CircuitOpenError");
    expect(net.urls.length).toBe(1);
  });

  it("the proxy: a 10-day Retry-After passed on, the next request answered 503 with Retry-After 86400", async () => {
    const clock = new TestClock();
    const net = byHost({ "up.test": () => held(10 * 86_400) });
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://up.test/v1" }],
      resilience: { fetch: net.fetch, clock },
    });
    const ctx = { waitUntil() {} };
    const first = await proxy.fetch(new Request("https://w.test/v1/x"), {}, ctx);
    const second = await proxy.fetch(new Request("https://w.test/v1/x"), {}, ctx);
    expect([first.status, first.headers.get("retry-after")]).toEqual([503, "864000"]);
    expect([second.status, second.headers.get("retry-after"), net.urls.length]).toEqual([503, "86400", 1]);
  });

  it("a lapsed open read from a shared store: a redirect's hop to the host goes as its probe", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const n1 = byHost({ "b.example": () => new Response("x", { status: 500 }) });
    const l1 = createResilience({
      fetch: n1.fetch,
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000 },
    });
    await l1.fetch("https://b.example/y");
    await clock.advance(2000);
    const n2 = byHost({
      "a.example": () => new Response(null, { status: 302, headers: { location: "https://b.example/y" } }),
      "b.example": () => new Response("x", { status: 500 }),
    });
    const l2 = createResilience({
      fetch: n2.fetch,
      clock,
      store,
      redirects: "library",
      retry: false,
      breaker: { failureThreshold: 5, timeout: 1000 },
    });
    const events: string[] = [];
    l2.on("breaker", (e) => events.push(`${e.key} ${e.from}>${e.to}`));
    expect(await outcome(l2.fetch("https://a.example/x"))).toBe("500 x");
    // One 500 re-opens it (the threshold is 5): it was a probe.
    expect(events).toEqual(["b.example closed>half_open", "b.example half_open>open"]);
  });

  it("a half-open probe that lost to a hedge frees its slot at once", async () => {
    const clock = new TestClock();
    let phase = 0;
    const net = byHost({
      "a.test": (_n, req) =>
        phase === 0
          ? new Response("x", { status: 500 })
          : phase === 1
            ? new Promise<Response>((_, reject) =>
                req.signal.addEventListener("abort", () => reject(req.signal.reason)),
              )
            : new Response("a"),
      "b.test": () => new Response("b"),
    });
    const r = createResilience({
      fetch: net.fetch,
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1 },
      fallback: chainAB({ hedge: { delay: 10 } }),
    });
    await r.fetch("https://a.test/x");
    await clock.advance(2000);
    phase = 1;
    const hedged = r.fetch("https://a.test/x");
    await clock.advance(10);
    expect(await outcome(hedged)).toBe("200 b");
    phase = 2;
    expect(r.health().breakers["a.test"]?.state).toBe("half_open");
    expect(await outcome(r.fetch("https://a.test/x"))).toBe("200 a");
  });

  it("the same hop 503 with a clock that stands still is one breaker event for the hop's host", async () => {
    const tc = new TestClock();
    const hop = hopToHalfOpen(tc, tc, () => held(3600));
    await hop.open();
    hop.events.length = 0;
    expect(await outcome(hop.r.fetch("https://a.example/x"))).toBe("503 x");
    const b = hop.events.filter((e) => e.key === "b.example");
    expect(b.map((e) => `${e.from}>${e.to}`)).toEqual(["open>half_open", "half_open>open"]);
    expect(b[1]?.openUntil).toBe(2000 + 3_600_000);
  });

  it("Response.error() and a Response whose headers getter throws: retried, each a failure for the breaker", async () => {
    const broken = () => {
      const r = new Response("x");
      Object.defineProperty(r, "headers", {
        get() {
          throw new TypeError("no headers");
        },
      });
      return r;
    };
    for (const bad of [() => Response.error(), broken]) {
      const clock = new TestClock();
      const net = byHost({ "a.test": () => bad() });
      const r = createResilience({
        fetch: net.fetch,
        clock,
        retry: { maxAttempts: 2, initialDelay: 0 },
        breaker: { failureThreshold: 2 },
      });
      // Retried as a network error, then the call rejects as one; two failures in a row open the host.
      expect(await outcome(r.fetch("https://a.test/x"))).toBe("rejected RetryExhaustedError");
      expect(net.urls.length).toBe(2);
      expect(r.health().breakers["a.test"]?.state).toBe("open");
    }
  });
});
