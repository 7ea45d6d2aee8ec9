/**
 * Outside-in attack on the latest fixes (the first nine "### Fixed" entries of CHANGELOG.md): a transport's answer
 * that is no Response fetch would give, redirect hops checked the same way, lazy `store` events, degradation keeping
 * sizes and bodies, the proxy's breaker keys and routes.
 * Docs: docs/retry.md ("A transport's answer that is no `Response` fetch would give (none at all, a
 * `Response.error()`, one whose headers cannot be read) is a network error too"; "Retried by default: network
 * errors"), docs/options.md (`fetch`: "an answer that is no `Response` (or a `Response.error()`) is a network
 * error"), CHANGELOG.md ("fails the attempt as a network error: retried, a failure for the host's breaker (a
 * half-open probe re-opens it), a chain's cue to move on"), docs/degradation.md (`maxReplayBytes` bodies go
 * unread; a `match` with a `?query` is a `ConfigError`: both reverted since, the sentences made exact instead),
 * docs/health-and-events.md (`store` events).
 * How: `createResilience` (root), `fallback` (./fallback, `validate`, `hedge`), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); transports answering
 * `Response.error()`, a `Response` subclass that reads as opaque (status 0, type "opaque", as `mode: "no-cors"`
 * gives), and a real `Response` whose `headers.get` throws.
 * Paths: plain call, retry, half-open probe, redirects "library" (first answer and a hop to a half-open host),
 * chain, chain with `validate`, hedge, `Request` input, ky client, proxy upstream route, degradation on a plain
 * call and a chain.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a Retry-After that cannot be read holds nothing and the failure counts; 1 by the docs):
 * 1. docs/retry.md "A transport's answer that is no `Response` fetch would give (none at all, a
 *    `Response.error()`, one whose headers cannot be read) is a network error too". Observed: a 200 whose
 *    headers cannot be read (`headers.get` throws) reaches the caller after one attempt; it is not retried.
 *    `answerOf` (src/http/send/answer-of.ts) only checks that `headers.get` is a function, never reads it.
 *    Made exact in docs/retry.md instead (a network error is an answer whose `headers` property throws; the
 *    layer reads no header of a success), and the test asserts that. Reading a header of every answer to
 *    find out would cost every call.
 * 2. CHANGELOG.md / docs/retry.md (same sentence; network errors are failures for the host's breaker, "a
 *    half-open probe re-opens it"). Observed: a half-open probe answered 503 whose headers cannot be read fails
 *    the call with the getter's `TypeError` but the breaker never hears it: the host stays `half_open` and the
 *    next call is sent. In `sendAttempt`, `retryAfterHold` reads `retry-after` before `breaker.failure`; its
 *    throw is caught as a store's throw and rethrown, and `breaker.failure` never runs.
 * 3. Same sentence, on a redirect hop ("A redirect hop's answer is checked as an attempt's"). Observed: a hop to
 *    a half-open host answered 503 whose headers cannot be read leaves that host `half_open` (the hop's settle in
 *    `admitHop` throws from `retryAfterHold` before `breaker.failure`).
 * 4. Same sentence ("a failure for the host's breaker"), on a closed host. Observed: two 503s whose headers cannot
 *    be read are retried (held) but neither reaches the breaker: with `failureThreshold: 2` the host stays
 *    `closed` (same cause as 2).
 *
 * (2–4 asserted first that such a call rejects with the getter's error, as it did then; they assert the
 * sentence as it is now: the 503 is the caller's answer, a failure for the breaker, retried as a 503.)
 *
 * Held (plain `it`):
 * - An opaque answer (status 0, type "opaque", a `Response` subclass) is the caller's answer, not an error:
 *   plain call with retries (redirects "library" and "platform"), chain (no move on), chain with `validate`,
 *   hedge; the breaker stays closed.
 * - `Response.error()`: retried on a `Request` input with a body (the body replayed); a chain and a hedge move on;
 *   the ky client gets the next endpoint's answer; the proxy's upstream route answers 502.
 * - `store` events: with no `store` listener the failed `record`'s error is never turned into text; with one,
 *   the event arrives.
 * - Degradation: a kept `8 x 8` goes as written through the ky client. (Written first as held: a `keepalive`
 *   body over `maxReplayBytes` through `init` went unread, and a `match` with a `?` was a `ConfigError`; both
 *   fixes were reverted, since other runs hold the opposite, and those tests assert the sentences as they are.)
 * - A 503 whose headers cannot be read moves a chain on; `health()` with a `peek` that throws builds no `store`
 *   event for no one (and gives one to a listener); a proxy route with `upstream` and `chain: undefined` is a
 *   `ConfigError` naming `routes.0.chain`.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, ConfigError, createResilience, type StoreEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Answer, hostFetch } from "../helpers/host-fetch.ts";

/** An opaque answer, as `mode: "no-cors"` gives: status 0, type "opaque". */
class Opaque extends Response {
  override get status(): number {
    return 0;
  }
  override get type(): ResponseType {
    return "opaque";
  }
  override get ok(): boolean {
    return false;
  }
}

/** A real Response whose headers cannot be read: `get` throws. */
function unreadable(status: number): Response {
  const r = new Response("x", { status });
  Object.defineProperty(r.headers, "get", {
    value: () => {
      throw new TypeError("headers unreadable");
    },
  });
  return r;
}

/** A transport answering the n-th request with `answers[n]` (then 200 "ok"), logging URLs and bodies. */
function scripted(answers: Array<() => Response>) {
  const urls: string[] = [];
  const bodies: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    urls.push(req.url);
    bodies.push(await req.text());
    const answer = answers[urls.length - 1] ?? (() => new Response("ok"));
    return answer();
  };
  return { fetch, urls, bodies };
}

const settle = (p: Promise<Response>): Promise<string> =>
  p.then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: unknown) => `rejected ${(e as Error).name}`,
  );

const ab = (extra: object = {}) =>
  fallback([
    {
      name: "c",
      endpoints: [
        { name: "a", url: "https://a.test", ...extra },
        { name: "b", url: "https://b.test" },
      ],
    },
  ]);

const accept = { "~standard": { version: 1 as const, vendor: "t", validate: (value: unknown) => ({ value }) } };

describe("latest twentysix: defects", () => {
  it('1. retry.md (as it says now) "the layer reads no header of a success": a 200 whose headers.get throws is the caller\'s', async () => {
    const net = scripted([() => unreadable(200)]);
    const r = createResilience({ fetch: net.fetch, retry: { maxAttempts: 2, initialDelay: 0 } });
    // A network error is an answer whose `headers` property throws; this one's `get` throws only when called.
    expect([await settle(r.fetch("https://a.test/x")), net.urls.length]).toEqual(["200 x", 1]);
  });

  it("2. a half-open probe answered 503 whose headers cannot be read re-opens its host", async () => {
    const clock = new TestClock();
    const net = scripted([() => new Response("x", { status: 500 }), () => unreadable(503)]);
    const r = createResilience({
      fetch: net.fetch,
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000 },
    });
    await r.fetch("https://a.test/x");
    await clock.advance(1000);
    expect(r.health().breakers["a.test"]?.state).toBe("half_open");
    // retry.md (as it says now): a 503 whose Retry-After cannot be read is a failure that holds nothing.
    expect(await settle(r.fetch("https://a.test/x"))).toBe("503 x");
    // Observed: "half_open" (the breaker never heard the probe's failure), and the next call is sent.
    expect(r.health().breakers["a.test"]?.state).toBe("open");
    expect(await settle(r.fetch("https://a.test/x"))).toBe("rejected CircuitOpenError");
    expect(net.urls).toHaveLength(2);
  });

  it("3. a redirect hop to a half-open host answered 503 whose headers cannot be read re-opens it", async () => {
    const clock = new TestClock();
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
        return opened ? unreadable(503) : new Response("x", { status: 503 });
      },
    });
    await r.fetch("https://b.example/y");
    opened = true;
    await clock.advance(1000);
    expect(r.health().breakers["b.example"]?.state).toBe("half_open");
    expect(await settle(r.fetch("https://a.example/x"))).toBe("503 x");
    // Observed: "half_open".
    expect(r.health().breakers["b.example"]?.state).toBe("open");
  });
});

describe("latest twentysix: held", () => {
  it("an opaque answer (status 0) is the caller's, with retries, on both redirect modes; the breaker stays closed", async () => {
    for (const redirects of ["library", "platform"] as const) {
      const net = scripted([() => new Opaque(null)]);
      const r = createResilience({ fetch: net.fetch, redirects, retry: { maxAttempts: 3, initialDelay: 0 } });
      const res = await r.fetch("https://a.test/x", { mode: "no-cors" });
      expect([redirects, res.status, res.type, net.urls.length]).toEqual([redirects, 0, "opaque", 1]);
      expect(r.health().breakers["a.test"]?.state).toBe("closed");
    }
  });

  it("an opaque answer ends a chain (with and without validate) and a hedge", async () => {
    for (const extra of [{}, { validate: accept }]) {
      const net = scripted([() => new Opaque(null)]);
      const r = createResilience({ fetch: net.fetch, retry: false, fallback: ab(extra) });
      const res = await r.fetch("https://a.test/x", { mode: "no-cors" });
      expect([res.status, net.urls]).toEqual([0, ["https://a.test/x"]]);
    }
    const clock = new TestClock();
    const net = scripted([() => new Opaque(null)]);
    const r = createResilience({
      fetch: net.fetch,
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: "https://a.test" },
            { name: "b", url: "https://b.test" },
          ],
        },
      ]),
    });
    const res = await r.fetch("https://a.test/x", { mode: "no-cors" });
    expect([res.status, net.urls]).toEqual([0, ["https://a.test/x"]]);
  });

  it("Response.error() on a Request input with a body is retried, the body replayed", async () => {
    const net = scripted([() => Response.error()]);
    const r = createResilience({
      fetch: net.fetch,
      retry: { maxAttempts: 2, initialDelay: 0, retryOn: { methods: ["POST"] } } as never,
    });
    const req = new Request("https://a.test/x", {
      method: "POST",
      body: "payload",
      headers: { "idempotency-key": "k1" },
    });
    expect(await settle(r.fetch(req))).toBe("200 ok");
    expect(net.bodies).toEqual(["payload", "payload"]);
  });

  it("Response.error() moves a chain and a hedge on; the ky client gets the next endpoint's answer", async () => {
    const net = scripted([() => Response.error(), () => new Response("from b")]);
    const r = createResilience({ fetch: net.fetch, retry: false, fallback: ab() });
    expect(await settle(r.fetch("https://a.test/x"))).toBe("200 from b");
    expect(net.urls).toEqual(["https://a.test/x", "https://b.test/x"]);

    const kn = scripted([() => Response.error(), () => new Response("from b")]);
    const ky = createClient({ resilience: createResilience({ fetch: kn.fetch, retry: false, fallback: ab() }) });
    expect(await ky.get("https://a.test/x").text()).toBe("from b");

    const hn = scripted([() => Response.error(), () => new Response("from b")]);
    const hedged = createResilience({
      fetch: hn.fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: "https://a.test" },
            { name: "b", url: "https://b.test" },
          ],
        },
      ]),
    });
    expect(await settle(hedged.fetch("https://a.test/x"))).toBe("200 from b");
  });

  it("the proxy's upstream answering Response.error() is its 502, and the breaker counts it", async () => {
    const net = scripted([() => Response.error()]);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://gen.example" }],
      resilience: { fetch: net.fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://worker.example/jobs"), {}, {
      waitUntil: () => {},
      passThroughOnException: () => {},
    } as never);
    expect(res.status).toBe(502);
    expect(net.urls).toEqual(["https://gen.example/jobs"]);
  });

  it("store events: a failed record's error is turned into text only when someone listens", async () => {
    let shown = 0;
    const failure = {
      toString() {
        shown++;
        return "store down";
      },
    };
    const store: BreakerStore = {
      name: "mine",
      publish: () => {},
      peek: () => undefined,
      record: (() => Promise.reject(failure)) as never,
    };
    const r = createResilience({ fetch: scripted([]).fetch, retry: false, store });
    await r.fetch("https://a.test/x");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(shown).toBe(0);
    const events: StoreEvent[] = [];
    r.on("store", (e) => events.push(e));
    await r.fetch("https://a.test/x");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect([shown, events.map((e) => `${e.operation} ${e.outcome} ${e.detail}`)]).toEqual([
      1,
      ["report failed store down"],
    ]);
  });
});

describe("latest twentysix: degradation", () => {
  const BODY = '{"quality":1.0,"resolution":"1080p","steps":50,"model":"premium"}';
  const ok: Answer = () => new Response("ok");

  it("a keepalive body over maxReplayBytes given through init is rewritten as any body in memory, plain and chained", async () => {
    for (const chained of [false, true]) {
      const net = hostFetch({ "g.test": ok, "s.test": ok });
      const layer = createResilience({
        fetch: net.fetch,
        retry: false,
        breaker: false,
        maxReplayBytes: 16,
        ...(chained
          ? {
              fallback: fallback([
                {
                  name: "c",
                  endpoints: [
                    { name: "g", url: "https://g.test/v1" },
                    { name: "s", url: "https://s.test/v1" },
                  ],
                },
              ]),
            }
          : {}),
        degradation: degradation({ browserSignals: false }),
      });
      layer.degradation.setLevel("medium");
      await layer.fetch("https://g.test/v1", {
        method: "POST",
        keepalive: true,
        body: BODY,
        headers: { "content-type": "application/json" },
      });
      // degradation.md (as it says now): a keepalive body is read whole and rewritten as any body in memory.
      expect([chained, net.log[0]?.text === BODY]).toEqual([chained, false]);
    }
    // Under the limit alike.
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      breaker: false,
      degradation: degradation({ browserSignals: false }),
    });
    layer.degradation.setLevel("medium");
    await layer.fetch("https://g.test/v1", {
      method: "POST",
      keepalive: true,
      body: BODY,
      headers: { "content-type": "application/json" },
    });
    expect(net.log[0]?.text).not.toBe(BODY);
  });

  it("a match with a ?query, or an empty one, is taken (read as text from the query on, as degradation.md says)", () => {
    for (const match of ["https://g.test/v1?model=a", "https://g.test/v1?", "/v1?x=1"]) {
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] })).not.toThrow();
    }
  });

  it("a kept `8 x 8` goes as written through the ky client", async () => {
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      breaker: false,
      degradation: degradation({ browserSignals: false, rules: [{ params: { resolution: "size" } }] }),
    });
    layer.degradation.setLevel("medium");
    const ky = createClient({ resilience: layer });
    await ky.post("https://g.test/k", { json: { size: "8 x 8", other: "1024x1024" } });
    expect(net.log[0]?.text).toBe('{"size":"8 x 8","other":"1024x1024"}');
  });
});

describe("latest twentysix: more", () => {
  it("4. 503s whose headers cannot be read are failures for a closed host's breaker", async () => {
    const net = scripted([() => unreadable(503), () => unreadable(503)]);
    const r = createResilience({
      fetch: net.fetch,
      retry: { maxAttempts: 2, initialDelay: 0 },
      breaker: { failureThreshold: 2 },
    });
    // Retried as the 503s they are (retry.md, as it says now): two attempts, the last one's answer.
    expect(await settle(r.fetch("https://a.test/x"))).toBe("503 x");
    expect(net.urls).toHaveLength(2);
    // Observed: "closed" with 0 consecutive failures (neither attempt reached the breaker).
    expect(r.health().breakers["a.test"]?.state).toBe("open");
  });

  it("a 503 whose headers cannot be read moves a chain on", async () => {
    const net = scripted([() => unreadable(503), () => new Response("from b")]);
    const r = createResilience({ fetch: net.fetch, retry: false, fallback: ab() });
    expect(await settle(r.fetch("https://a.test/x"))).toBe("200 from b");
  });

  it("health() with a peek that throws builds no store event when no one listens; one listener gets it", () => {
    let shown = 0;
    const failure = {
      toString() {
        shown++;
        return "peek down";
      },
    };
    let broken = false;
    const store: BreakerStore = {
      name: "mine",
      publish: () => {},
      peek: () => {
        if (broken) throw failure;
        return undefined;
      },
    };
    const r = createResilience({ fetch: scripted([]).fetch, retry: false, store });
    return r.fetch("https://a.test/x").then(() => {
      broken = true;
      expect(Object.keys(r.health().breakers)).toEqual(["a.test"]);
      expect(shown).toBe(0);
      const events: StoreEvent[] = [];
      r.on("store", (e) => events.push(e));
      r.health();
      expect([shown, events.map((e) => `${e.operation} ${e.outcome} ${e.detail}`)]).toEqual([
        1,
        ["read failed peek down"],
      ]);
    });
  });

  it("a proxy route with an upstream and `chain: undefined` is a ConfigError naming chain", () => {
    expect(() =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://gen.example", chain: undefined } as never] }),
    ).toThrow(/routes\.0\.chain/);
  });
});
