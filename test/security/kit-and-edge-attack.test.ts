/**
 * Outside-in attack on docs/testing.md (the MSW fault kit, the recorder,
 * `TestClock`), docs/browsers-and-cors.md (`corsPreflight`) and
 * docs/cloudflare.md (`kvStore`, `durableObjectStore`, `resilientProxy`),
 * through the public entries only, as a user's own vitest project would use
 * them. Time is a `TestClock` throughout; nothing sleeps for real. Each
 * `it.fails` pins a defect: it asserts the documented behaviour and fails
 * while the defect exists.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import {
  corsPreflight,
  flaky,
  latency,
  outage,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { useMswServer } from "../helpers/msw.ts";
import { refuses } from "../helpers/settled.ts";

/** The kit refuses bad input with a TypeError or, for numbers out of range, a RangeError. */
const refusesBadInput = (build: () => unknown): boolean => refuses(build, [TypeError, RangeError]);

const server = useMswServer();
const T0 = Date.parse("2026-11-28T00:00:00Z");
const ctx = { waitUntil: () => {} };

/** Whether calling `build` throws at once (the builder refused its input). */
// ---------------------------------------------------------------------------
// The fault kit
// ---------------------------------------------------------------------------

describe("fault builders refuse bad input at once (as sequence([]) and flaky(2) already do)", () => {
  // docs/testing.md: "`sequence([f1, f2, …], { then? })` | scripted answers in order; the
  // last repeats (or `then: "cycle"`)". An entry that is not a fault is taken, and blows up
  // inside the MSW handler on the request that reaches it: MSW turns that into a 500
  // "Unhandled exception", which a retrying layer then retries as a real 500. A misspelt
  // `then` silently repeats the last fault instead of cycling.
  it("sequence() refuses a non-function entry and an unknown `then`", () => {
    expect(refusesBadInput(() => sequence([status(503), undefined as never]))).toBe(true);
    // biome-ignore lint/suspicious/noThenProperty: the option's name
    const misspelt = { then: "loop" as never };
    expect(refusesBadInput(() => sequence([status(503), status(200)], misspelt))).toBe(true);
  });

  // docs/testing.md: "`latency(ms, then, { clock? })` | waits before headers (on the
  // injected clock if given)". `latency(NaN)` and `latency(-1)` are taken; on a TestClock a
  // NaN wait turns the clock's now() into NaN (see the TestClock test below).
  it("latency() refuses a NaN or negative wait and a `then` that is not a fault", () => {
    expect(refusesBadInput(() => latency(Number.NaN, status(200)))).toBe(true);
    expect(refusesBadInput(() => latency(-1, status(200)))).toBe(true);
    expect(refusesBadInput(() => latency(10, undefined as never))).toBe(true);
  });

  // docs/testing.md: "`outage({ from, until, clock }, during, otherwise)` | an outage window
  // on a clock". Without a clock the builder is taken and every request then throws
  // "Cannot read properties of undefined (reading 'now')" inside the handler (an MSW 500);
  // a window that ends before it starts is taken and never happens.
  it("outage() refuses a missing clock and a window that ends before it starts", () => {
    expect(refusesBadInput(() => outage({ from: 0, until: 10 } as never, status(503), status(200)))).toBe(true);
    expect(
      refusesBadInput(() => outage({ from: 10, until: 0, clock: new TestClock() }, status(503), status(200))),
    ).toBe(true);
  });

  // docs/testing.md: "`flaky(rate, { seed, fail?, ok? })` | fails a share of requests,
  // reproducibly". Only the `seed` option makes it repeatable; a missing (or NaN) one was silently 0.
  it("flaky() refuses a missing or NaN seed", () => {
    expect(refusesBadInput(() => flaky(0.3, {} as never))).toBe(true);
    expect(refusesBadInput(() => flaky(0.3, { seed: Number.NaN }))).toBe(true);
  });

  // docs/testing.md: "`stream(chunks, { interval?, stallAfter?, breakAfter?, clock? })` |
  // streams chunks; can stall, or break mid-body (the client sees `TypeError: terminated`)".
  // With `breakAfter` at or past the number of chunks the stream just ends: the client reads
  // a complete body and never sees the break the test asked for.
  it("stream({ breakAfter }) past the last chunk either is refused or still breaks the body", async () => {
    const url = "https://kit.example/stream";
    let fault: ReturnType<typeof stream>;
    try {
      fault = stream(["a", "b"], { breakAfter: 2, clock: new TestClock() });
    } catch {
      return; // refused at once: fine
    }
    server.use(upstream("GET", url, fault).handler);
    const response = await fetch(url);
    await expect(response.text()).rejects.toThrow(TypeError);
  });
});

describe("faults shared between tests", () => {
  // docs/testing.md: "`flaky(rate, { seed, fail?, ok? })` | fails a share of requests,
  // reproducibly", and `upstream(…)`'s "`reset()`" forgets what was recorded. A `sequence`
  // starts again after `reset()` (it keys on the handler's attempt number), a `flaky` does
  // not: its draws go on from wherever earlier tests left them, so a test that shares the
  // upstream answers differently alone (`-t`) and in its file.
  it("flaky() behind an upstream answers the same again after reset(), as sequence() does", async () => {
    const url = "https://kit.example/flaky";
    const api = upstream("GET", url, flaky(0.5, { seed: 7 }));
    server.use(api.handler);
    const statuses = async () => {
      const seen: number[] = [];
      for (let i = 0; i < 8; i++) seen.push((await fetch(url)).status);
      return seen;
    };
    const first = await statuses();
    expect(new Set(first).size).toBe(2); // both outcomes occur: the comparison means something
    api.reset();
    expect(await statuses()).toEqual(first);
  });
});

describe("TestClock", () => {
  // docs/testing.md: "`TestClock` moves time only when told (`advance(ms)`, or `run(promise)`
  // …)". A timer set for NaN ms (what `latency(NaN, …, { clock })` or any NaN delay sets)
  // fires, but moves now() to NaN for good: every later deadline compares false. The
  // systemClock it stands in for never does that (Date.now() stays a number).
  it("a timer set for NaN ms does not turn now() into NaN", async () => {
    const clock = new TestClock(0);
    clock.setTimer(() => {}, Number.NaN);
    await clock.advance(0);
    expect(clock.now()).toBe(0);
  });
});

describe("corsPreflight(policy).respond", () => {
  // docs/browsers-and-cors.md: "`respond(fault)` wraps an upstream's fault so its answers
  // look as a browser shows them, in any environment: … unexposed headers are removed".
  // A browser never shows `Set-Cookie` to page code (a forbidden response header name),
  // whatever Access-Control-Expose-Headers says; `respond` hands it over under the
  // permissive default and when listed.
  it("never shows Set-Cookie to page code, even when every header (or it) is exposed", async () => {
    const fault = status(200, { headers: { "set-cookie": "sid=secret", "x-ok": "1" } });
    const permissive = await corsPreflight().respond(fault)(new Request("https://api.example/"), { attempt: 1 });
    expect(permissive.headers.get("x-ok")).toBe("1");
    expect(permissive.headers.get("set-cookie")).toBeNull();
    const listed = await corsPreflight({ exposeHeaders: ["set-cookie"] }).respond(fault)(
      new Request("https://api.example/"),
      { attempt: 1 },
    );
    expect(listed.headers.get("set-cookie")).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// Cloudflare pieces
// ---------------------------------------------------------------------------

/** A proxy on one upstream whose transport records the headers it got. */
function proxyRecording() {
  const seen: Headers[] = [];
  const proxy = resilientProxy({
    routes: [{ path: "/", upstream: "https://up.example" }],
    resilience: {
      fetch: async (input, init) => {
        seen.push(new Request(input, init).headers);
        return new Response("ok");
      },
    },
  });
  return { proxy, seen };
}

describe("resilientProxy", () => {
  // docs/cloudflare.md: "The proxy forwards … nor what Cloudflare's edge says about the end
  // user (`cf-*`, `x-forwarded-*`, `x-real-ip`): a provider does not learn the user's
  // address from it." Cloudflare's edge also sends the user's address as `True-Client-IP`
  // (Enterprise, or the "Add True-Client-IP header" managed transform on any plan): it goes
  // to the provider as is.
  it("does not forward True-Client-IP, the end user's address from Cloudflare's edge", async () => {
    const { proxy, seen } = proxyRecording();
    const headers = { "true-client-ip": "203.0.113.7", "cf-connecting-ip": "203.0.113.7", "x-kept": "1" };
    const res = await proxy.fetch(new Request("https://proxy.example/x", { headers }), {}, ctx);
    expect(res.status).toBe(200);
    const sent = seen[0] as Headers;
    expect(sent.get("x-kept")).toBe("1");
    expect(sent.get("cf-connecting-ip")).toBeNull();
    expect(sent.get("true-client-ip")).toBeNull();
  });

  // docs/options.md ("What validates what"): "Options are code you wrote, checked when you
  // pass them", and docs/fallback.md: "`fallback([…])` checks the chains at once".
  // resilientProxy checks a route's path but hands `resilience` and the chains to
  // createResilience / fallback() only on the first request: the constructor takes them,
  // and then every request throws the ConfigError (a Worker 500), not once at start-up.
  it("refuses bad layer options and a bad chain when called, not on every request", () => {
    const routes = [{ path: "/v1", upstream: "https://a.example/v1" }];
    expect(() => resilientProxy({ routes, resilience: { retry: { maxAttempts: 0 } } })).toThrow();
    expect(() => resilientProxy({ routes: [{ path: "/v1", chain: { name: "video", endpoints: [] } }] })).toThrow();
  });

  // Same sentences; docs/cloudflare.md names a route's upstream as a URL
  // (`{ path: "/v1/text", upstream: "https://text.example/v1" }`). An upstream that is no
  // URL (or no string) is taken, and every request to the route is then answered
  // `502 {"error":"upstream unavailable"}`, indistinguishable from a provider outage.
  it("refuses a route whose upstream is not an absolute http(s) URL", () => {
    expect(() => resilientProxy({ routes: [{ path: "/v1", upstream: "text.example/v1" }] })).toThrow(TypeError);
    expect(() => resilientProxy({ routes: [{ path: "/v1", upstream: 42 as never }] })).toThrow(TypeError);
    expect(() => resilientProxy({ routes: [{ path: "/v1", upstream: "ftp://a.example/v1" }] })).toThrow(
      'resilientProxy: route "/v1" needs an absolute http(s) upstream URL',
    );
    // Plain http is an upstream too (a service on a private network).
    expect(() => resilientProxy({ routes: [{ path: "/v1", upstream: "http://10.0.0.5:8080/v1" }] })).not.toThrow();
  });
});

const kvNamespace = () => new FakeKv(new TestClock(T0), { propagation: 0 }).location();

describe("kvStore options", () => {
  // docs/cloudflare.md: "`kvStore` writes only on open, close and probe results, at most once
  // per host per isolate per `minPublishInterval` (5 s, never below 1 s), after a random
  // `publishJitter` (≤ 1 s), … and keeps to an optional daily `writeBudget`". The intervals
  // are checked at once; the budget and the jitter are not: `writeBudget: NaN` (e.g.
  // `Number(env.KV_BUDGET)` with the var unset) silently means no budget at all, a negative
  // one silently means no writes, and a NaN or negative jitter is taken.
  it("refuses a NaN or negative writeBudget and publishJitter at once, as it does the intervals", () => {
    expect(() => kvStore(kvNamespace(), { minPublishInterval: 500 })).toThrow(TypeError); // the check that exists
    expect(() => kvStore(kvNamespace(), { writeBudget: Number.NaN })).toThrow(TypeError);
    expect(() => kvStore(kvNamespace(), { writeBudget: -1 })).toThrow(TypeError);
    expect(() => kvStore(kvNamespace(), { publishJitter: Number.NaN })).toThrow(TypeError);
    expect(() => kvStore(kvNamespace(), { publishJitter: -1 })).toThrow(TypeError);
    expect(() => kvStore(kvNamespace(), { publishJitter: Number.POSITIVE_INFINITY })).toThrow(
      "kvStore: publishJitter must be a number of ms >= 0, got Infinity",
    );
    expect(() => kvStore(kvNamespace(), { writeBudget: 1.5 })).toThrow(
      "kvStore: writeBudget must be a whole number of writes >= 0, got 1.5",
    );
    // No writes at all is a budget too (reads only).
    expect(() => kvStore(kvNamespace(), { writeBudget: 0, publishJitter: 0 })).not.toThrow();
  });

  // Same sentence: "at most once per host per isolate per `minPublishInterval`". The throttle
  // lives in a per-host record kept in an LRU of 1,000 hosts: once 1,000 other hosts were
  // looked at (a layer fetching user-given URLs), the record is gone and the host writes
  // again at once, here twice in the same millisecond (and KV refuses the second with 429).
  it("writes a host at most once per minPublishInterval even after 1,000 other hosts were seen", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    const store = kvStore(kv.location(), { clock, ctx: fakeCtx(), random: () => 0, publishJitter: 0 });
    type Snapshot = Parameters<typeof store.publish>[1];
    const snapshot = (state: Snapshot["state"], gen: number, openUntil: number | null): Snapshot => ({
      v: 1,
      state,
      gen,
      failures: [],
      window: null,
      lastFailureTime: null,
      openUntil,
      leases: [],
      successes: 0,
      reason: state,
      changedAt: clock.now(),
    });
    const now = clock.now();
    store.publish("victim.example", snapshot("open", 1, now + 30_000));
    for (let i = 0; i < 1_000; i++) store.peek(`other-${i}.example`, now);
    store.publish("victim.example", snapshot("closed", 2, null));
    await clock.run(Promise.resolve());
    await clock.advance(0);
    const victim = kv.attempts.filter((a) => a.key.endsWith(":victim.example"));
    expect(victim.length).toBeGreaterThan(0); // the first write did go
    expect(victim).toHaveLength(1);
  });
});

describe("durableObjectStore options", () => {
  // docs/cloudflare.md: "Only a half-open probe waits for the object (at most `timeout`,
  // 250 ms)", "sends outcomes in batches (every `flushInterval`, at once when
  // `flushThreshold` failures wait …)", "caches a closed verdict for `verdictTtl`". None of
  // these is checked: `timeout: NaN` becomes a ~1 ms real timer (every probe "times out" and
  // the cross-isolate probe bound is silently lost), `flushThreshold: 0` flushes on every
  // outcome, NaN intervals disable the batching.
  it("refuses NaN, negative or zero timing options at once", () => {
    const ns = () => new FakeNamespace(new TestClock(T0));
    expect(() => durableObjectStore(ns(), { timeout: Number.NaN })).toThrow(TypeError);
    expect(() => durableObjectStore(ns(), { timeout: -1 })).toThrow(TypeError);
    expect(() => durableObjectStore(ns(), { flushInterval: Number.NaN })).toThrow(TypeError);
    expect(() => durableObjectStore(ns(), { flushThreshold: 0 })).toThrow(TypeError);
    expect(() => durableObjectStore(ns(), { verdictTtl: Number.NaN })).toThrow(TypeError);
    expect(() => durableObjectStore(ns(), { flushInterval: Number.POSITIVE_INFINITY })).toThrow(
      "durableObjectStore: flushInterval must be a number >= 1, got Infinity",
    );
    expect(() => durableObjectStore(ns(), { verdictTtl: 0 })).not.toThrow();
  });
});

// The builders' refusals word for word, at the edges of what they take: the
// messages are what a test author reads, and a boundary moved by one would
// refuse a valid fault or take a bad one.
describe("fault builders' refusals, word for word, at their boundaries", () => {
  const ok = status(200);
  it("status takes 200 and 599, not 600", () => {
    expect(() => status(200)).not.toThrow();
    expect(() => status(599)).not.toThrow();
    expect(() => status(600)).toThrow(new TypeError("status(code): expected a status from 200 to 599, got 600"));
  });
  it("latency takes 0, not Infinity, and needs a fault after it", () => {
    expect(() => latency(0, ok)).not.toThrow();
    expect(() => latency(Number.POSITIVE_INFINITY, ok)).toThrow("latency(ms): expected");
    expect(() => latency(10, undefined as never)).toThrow("latency(ms, then): then must be a fault");
  });
  it("stream takes an interval of 0 and a break after the first or the next-to-last chunk", () => {
    expect(() => stream(["a", "b"], { interval: 0 })).not.toThrow();
    expect(() => stream(["a", "b"], { interval: Number.POSITIVE_INFINITY })).toThrow(
      "stream(chunks, { interval }): expected ms >= 0, got Infinity",
    );
    expect(() => stream(["a", "b"], { breakAfter: 0 })).not.toThrow();
    expect(() => stream(["a", "b"], { breakAfter: 1 })).not.toThrow();
    // A break after the last chunk would be none: refused, as docs/testing.md says.
    expect(() => stream(["a", "b"], { breakAfter: 2 })).toThrow(
      "stream(chunks, { breakAfter }): expected 0..1 (fewer than the chunks), got 2",
    );
    expect(() => stream(["a", "b"], { breakAfter: Number.NaN })).toThrow(
      "stream(chunks, { breakAfter }): expected 0..1 (fewer than the chunks), got NaN",
    );
  });
  it("sequence, flaky and outage name what is wrong", () => {
    expect(() => sequence([ok, 5 as never])).toThrow(
      "sequence(faults): every entry must be a fault (a function), got 5 at 1",
    );
    const loop = JSON.parse('{"then":"loop"}') as never; // built from text: an object literal's `then` reads as a thenable
    expect(() => sequence([ok], loop)).toThrow(
      'sequence(faults, { then }): expected "repeat-last" or "cycle", got "loop"',
    );
    expect(() => flaky(0.5, undefined as never)).toThrow(
      "flaky(rate, { seed }): expected a number (the draws repeat for a seed), got undefined",
    );
    expect(() => flaky(0.5, { seed: Number.POSITIVE_INFINITY })).toThrow("flaky(rate, { seed }): expected a number");
    expect(() => outage(undefined as never, ok, ok)).toThrow("outage({ from, until, clock }): expected a clock");
    expect(() => outage({ from: 5, until: 5, clock: new TestClock() }, ok, ok)).not.toThrow();
    expect(() => outage({ from: 6, until: 5, clock: new TestClock() }, ok, ok)).toThrow(
      "outage({ from, until }): expected from <= until, got 6 and 5",
    );
  });
});
