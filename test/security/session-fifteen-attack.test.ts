/**
 * Outside-in attack on the fifteenth session's fixes: 61a4886 (the
 * library's own clock, `systemClock`, bridges a wall clock set back with
 * `performance.now()`; `retry(fn)` alone takes only the real timers) and
 * 78305d5 (options refused at once: `retry(fn)`'s `retryOn`, a store's
 * optional methods, `fallback()`, a store's `clock`, proxy upstreams with a
 * `#fragment` or credentials, revoked Proxies, `FallbackChain#add`'s
 * misspelt options, `createClient(null)`). Public entries only, a stub
 * `fetch`, vitest's fake timers (no real sleep).
 *
 * Attacked: a breaker tripped and a `Retry-After` date answered after
 * `vi.setSystemTime` steps back and ahead; fake timers installed again; a
 * new layer made after a step back in the same install (a user's suite
 * giving each test its own date); `toFake: ["Date"]` only with a frozen
 * `Date` while real (monotonic) time passes; `performance` missing;
 * `failureResponse`'s Retry-After. Then the refusals by other roads
 * (root, ky's `extend`/`create`, the proxy's `resilience` and `store`
 * factory, named breakers, `execute`, `retry(fn)`, kv/DO stores), revoked
 * Proxies at every depth, upstream edge encodings and legitimate stores.
 *
 * Defects pinned (first `it.fails` asserting the promise, on the code they
 * were written against, 78305d5; all fixed since, so plain `it`). Defects
 * 1-3 were of the bridge itself: it was withdrawn. The library's clock
 * reads `Date.now()` as it is again, and each state notices a clock set
 * back at its first look after the step instead (docs/breakers.md "A clock
 * set back"); the tests of the bridge below hold for that design too.
 * 1. A layer made after `vi.setSystemTime(earlier)` in the same fake-timer install reads the
 *    bridged time of an earlier layer (module-wide state), not the date set (docs/testing.md).
 * 2. After a step back, a `Retry-After` HTTP date is compared with the bridged clock (a day
 *    ahead of the wall clock): a server's "retry in 10 s" becomes a retry at once.
 * 3. `toFake: ["Date"]` with a frozen `Date`: once over a second of real time passes between two
 *    reads, the library's clock leaves the frozen date and runs on real time (no step back made).
 * 4. A revoked Proxy where an options table is expected (`retry`, `breaker`, `store`, a named
 *    breaker's or `execute`'s options) throws the engine's TypeError, not a ConfigError.
 * 5. `retry(fn, { retryOn: revokedProxy })`: the new `retryOn` check rejects with the engine's
 *    "Cannot perform 'ownKeys' on a proxy that has been revoked".
 * 6. `kvStore(kv, { clock: revokedProxy })` / `durableObjectStore`: the new `storeClock` check
 *    throws the engine's "Cannot perform 'get'…", not its TypeError naming `clock`.
 * 7. `resilientProxy` upstream `"https://a.example/v1 "` (trailing space) is taken; `/a` goes to
 *    `/v1` but `/a/x` to `/v1%20/x` (a leading space is refused).
 * 8. ky's `extend({ resilience })` / `create({ resilience })` take a layer's options silently and
 *    ignore them (a bad store included), where `createClient` refuses the same at once.
 *
 * Held (plain `it`): a breaker opened before a day's step back lets a probe through after its
 * `timeout` of fake time; fake timers installed again start a new time; `performance` missing
 * takes the wall clock; `failureResponse`'s Retry-After stays the hold's seconds; the refusals of
 * 78305d5 through the root, ky's `createClient`, the proxy's `resilience` and `execute`; upstreams
 * with `%23`, `https://@host`, an upper-case scheme or an IDN host are taken and forwarded right,
 * a fragment (also empty, also after a query) and credentials refused without quoting them; a
 * class-instance, frozen, extra-field store and one whose optional method is `undefined` taken.
 *
 * Not checked here (time): docs/breakers.md's claim that after a step back the instants written to
 * KV / a Durable Object run ahead of the wall clock and another isolate cuts the open to 24 hours.
 * Written down, not pinned: `kvStore(kv, { random: 5 })` and unknown kvStore/DO options are taken.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { durableObjectStore, failureResponse, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { CircuitOpenError, ConfigError, createResilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";

const DAY = 86_400_000;
const T = Date.UTC(2030, 0, 1);
const HOST = "https://api.example/v1/x";

const revoked = (): never => {
  const p = Proxy.revocable({}, {});
  p.revoke();
  return p.proxy as never;
};

/** A layer whose host answers 503 until `up` is set; one failure opens for 30 s. */
function tripLayer(extra: ResilienceOptions = {}) {
  const state = { up: false, calls: 0 };
  const resilience = createResilience({
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 1, timeout: 30_000 },
    fetch: async () => {
      state.calls++;
      return new Response(state.up ? "ok" : "down", { status: state.up ? 200 : 503 });
    },
    ...extra,
  });
  return { resilience, state };
}

async function openError(resilience: { fetch(url: string): Promise<Response> }): Promise<CircuitOpenError> {
  const error = await resilience.fetch(HOST).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CircuitOpenError);
  return error as CircuitOpenError;
}

describe("a wall clock set back (the bridge of 61a4886, withdrawn for per-state re-anchoring)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("a breaker opened before a day's step back lets a probe through after its timeout of fake time", async () => {
    vi.useFakeTimers({ now: T + DAY });
    const { resilience, state } = tripLayer();
    expect((await resilience.fetch(HOST)).status).toBe(503);
    const open = await openError(resilience);
    expect(Number.isInteger(open.retryAt)).toBe(true);
    vi.setSystemTime(T);
    await openError(resilience);
    vi.advanceTimersByTime(30_001);
    state.up = true;
    expect((await resilience.fetch(HOST)).status).toBe(200);
    expect(resilience.health().breakers["api.example"]?.state).not.toBe("open");
  });

  it("fake timers installed again start a new time, taken as it is", async () => {
    vi.useFakeTimers({ now: T + DAY });
    const first = tripLayer();
    await first.resilience.fetch(HOST);
    await openError(first.resilience);
    vi.useRealTimers();
    vi.useFakeTimers({ now: T });
    const second = tripLayer();
    await second.resilience.fetch(HOST);
    expect((await openError(second.resilience)).retryAt).toBe(T + 30_000);
  });

  it("without `performance` the wall clock is taken as it is", async () => {
    vi.useFakeTimers({ now: T + DAY, toFake: ["Date"] });
    vi.stubGlobal("performance", undefined);
    const first = tripLayer();
    await first.resilience.fetch(HOST);
    vi.setSystemTime(T);
    const second = tripLayer();
    await second.resilience.fetch(HOST);
    expect((await openError(second.resilience)).retryAt).toBe(T + 30_000);
  });

  it("failureResponse's Retry-After after a step back is the hold's seconds, a positive integer", async () => {
    vi.useFakeTimers({ now: T + DAY });
    const { resilience } = tripLayer();
    await resilience.fetch(HOST);
    vi.setSystemTime(T);
    const response = failureResponse(await openError(resilience));
    expect(response.status).toBe(503);
    const seconds = Number(response.headers.get("retry-after"));
    expect(Number.isInteger(seconds)).toBe(true);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(30);
  });

  // docs/testing.md: "Under vitest's fake timers, `vi.setSystemTime` to an earlier time after the
  // layer has read the clock is such a step". A layer made after the date is set has read nothing;
  // the bridge is one state for the whole module (src/core/clock.ts `steadyNow`, `systemClock`),
  // so a suite that installs fake timers once and sets each test's own date gets the last
  // test's time in every layer it makes. Here: retryAt is T + 1 day + 30 s, not T + 30 s.
  it("1. a new layer made after vi.setSystemTime(earlier) reads the date set", async () => {
    vi.useFakeTimers({ now: T + DAY });
    const earlierTest = tripLayer();
    await earlierTest.resilience.fetch(HOST);
    // The next test of the suite: its own date, its own layer.
    vi.setSystemTime(T);
    const { resilience } = tripLayer();
    await resilience.fetch(HOST);
    expect((await openError(resilience)).retryAt).toBe(T + 30_000);
  });

  // docs/retry.md: "A `Retry-After` header on 429/503, in one of the forms RFC 9110 allows
  // (delay-seconds, or an HTTP date …), replaces the computed delay". An HTTP date is a wall-clock
  // instant; after an NTP step back of a day (the wall clock corrected), src/http/send/
  // retry-decision.ts:46 compares it with the bridged clock, a day ahead: `parseRetryAfter` gives
  // max(0, date − now) = 0 and the client retries at once, for a day after the step.
  it("2. a Retry-After HTTP date after a step back is waited for", async () => {
    vi.useFakeTimers({ now: T + DAY });
    let calls = 0;
    let retryAfter = "";
    const resilience = createResilience({
      retry: { maxAttempts: 2 },
      fetch: async () =>
        ++calls === 2
          ? new Response("slow down", { status: 503, headers: { "retry-after": retryAfter } })
          : new Response("ok"),
    });
    await resilience.fetch(HOST); // call 1: the layer has read the clock
    vi.setSystemTime(T); // NTP steps the wall clock back a day
    retryAfter = new Date(Date.now() + 10_000).toUTCString(); // the server: "in 10 s"
    const delays: number[] = [];
    resilience.on("retry", (e) => delays.push(e.delay));
    const pending = resilience.fetch(HOST); // call 2: 503 with the date, call 3: ok
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await pending).status).toBe(200);
    expect(delays).toEqual([10_000]);
  });

  // docs/testing.md names two things only: `vi.setSystemTime` to an earlier time is a step, a new
  // install starts a new time. With `toFake: ["Date"]` the fake Date stands still while real time
  // passes (a real server, MSW, a slow CI): once two reads are over a second apart
  // (performance.now() here advanced by 1.5 s, as real time would), src/core/clock.ts takes the
  // frozen Date for a step back and runs on from it, so the open is T + 1.5 s + 30 s and
  // `vi.setSystemTime(T + timeout)`, the usual way to expire it, leaves the host shut.
  it("3. with only Date faked and frozen, the library's time is the frozen date", async () => {
    vi.useFakeTimers({ now: T, toFake: ["Date"] });
    let real = performance.now();
    vi.spyOn(performance, "now").mockImplementation(() => real);
    const { resilience, state } = tripLayer();
    state.up = true;
    expect((await resilience.fetch(HOST)).status).toBe(200); // the layer reads the frozen date
    real += 1_500; // a real second and a half spent elsewhere in the test
    state.up = false;
    expect((await resilience.fetch(HOST)).status).toBe(503); // trips, the Date still at T
    const open = await openError(resilience);
    expect(open.retryAt).toBe(T + 30_000);
  });
});

describe("options refused at once (78305d5)", () => {
  const base = { name: "mine", publish() {}, peek: () => undefined };

  it("a store's optional method that is no function is a ConfigError by the root, ky and the proxy", () => {
    const bad = { ...base, connect: 5 } as never;
    expect(() => createResilience({ store: bad })).toThrow(ConfigError);
    expect(() => createClient({ resilience: { store: bad } })).toThrow(ConfigError);
    expect(() =>
      resilientProxy({ routes: [{ path: "/a", upstream: "https://a.example" }], resilience: { store: bad } as never }),
    ).toThrow(/store\.connect/);
    expect(() => createResilience({ store: { ...base, record: "yes" } as never })).toThrow(/store\.record/);
  });

  it("legitimate stores are taken: a class instance, frozen, extra fields, an optional method undefined", () => {
    class Mine {
      name = "class";
      publish(): void {}
      peek(): undefined {
        return undefined;
      }
      record(): void {}
      connect(): void {}
    }
    expect(() => createResilience({ store: new Mine() as never })).not.toThrow();
    expect(() => createResilience({ store: Object.freeze({ ...base, record() {} }) as never })).not.toThrow();
    expect(() => createResilience({ store: { ...base, version: 3, meta: { a: 1 } } as never })).not.toThrow();
    expect(() => createResilience({ store: { ...base, connect: undefined } as never })).not.toThrow();
  });

  it("the proxy's store factory returning a bad store fails the first request with a ConfigError", async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/a", upstream: "https://a.example" }],
      store: () => ({ ...base, bindContext: 1 }) as never,
      resilience: { fetch: async () => new Response("ok") },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
    await expect(proxy.fetch(new Request("https://w.example/a"), {}, ctx)).rejects.toThrow(ConfigError);
  });

  it("retry(fn)'s retryOn that is no object is a ConfigError, a secret in it never quoted", async () => {
    const fn = vi.fn(async () => 1);
    await expect(retry(fn, { retryOn: (() => true) as never })).rejects.toThrow(ConfigError);
    await expect(retry(fn, { retryOn: null as never })).rejects.toThrow(/retryOn/);
    const secret = await retry(fn, { retryOn: "https://u:hunter2@x.example/?key=k" as never }).catch(
      (e: unknown) => e as Error,
    );
    expect(secret).toBeInstanceOf(ConfigError);
    expect((secret as Error).message).not.toMatch(/hunter2|key=k/);
    expect(fn).not.toHaveBeenCalled();
  });

  it("fallback chain add refuses unknown options; createClient(null) is a ConfigError", () => {
    expect(() => new FallbackChain("c").add(async () => 1, { name: "a", expectedQualty: 1 } as never)).toThrow(
      /unknown option "expectedQualty"/,
    );
    expect(() => createClient(null as never)).toThrow(ConfigError);
  });

  // CHANGELOG (78305d5): "Options refused at once that were taken, or failed with the engine's
  // error: … a revoked `Proxy` as an option value (the checker threw while wording its message)".
  // Fixed only where a leaf is expected (src/core/options/check-options.ts `received`); where a
  // table is expected the checker's walk of it throws "Cannot perform 'IsArray' on a proxy …".
  it("4. a revoked Proxy where an options table is expected is a ConfigError (root, named breaker, execute)", async () => {
    const roads: Array<() => unknown> = [
      () => createResilience({ retry: revoked() }),
      () => createResilience({ breaker: revoked() }),
      () => createResilience({ store: revoked() }),
      () => createResilience().breaker("b", revoked()),
      () => createResilience().execute(async () => 1, revoked()),
      // A getter that throws is refused the same way (added with the fix).
      () =>
        createResilience({
          retry: {
            get maxAttempts(): number {
              throw new Error("no");
            },
          },
        }),
      () =>
        retry(async () => 1, {
          get maxAttempts(): number {
            throw new Error("no");
          },
        }),
    ];
    for (const road of roads) {
      let error: unknown;
      try {
        await road();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
    }
  });

  // Same CHANGELOG sentence, and "`retry(fn, { retryOn: 5 })` (it ran `fn`)" refused at once: the new
  // check in src/policies/retry.ts (`typeof retryOn !== "object"`, then `for (key in retryOn)`) lets a
  // revoked Proxy through and its `for…in` rejects with the engine's "Cannot perform 'ownKeys'".
  it("5. retry(fn, { retryOn: revokedProxy }) is a ConfigError naming retryOn", async () => {
    const error = await retry(async () => 1, { retryOn: revoked() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
  });

  // docs/cloudflare.md: "Both check their options when they are made, with a `TypeError` naming the
  // option: … a `clock` that is no `{ now(), setTimer() }`". src/stores/store-clock.ts reads
  // `clock?.now` of a revoked Proxy: the engine's "Cannot perform 'get' on a proxy that has been revoked".
  it("6. kvStore / durableObjectStore with a revoked Proxy as clock: a TypeError naming clock", () => {
    const kv = {
      get: async () => null,
      getWithMetadata: async () => ({ value: null, metadata: null }),
      put: async () => {},
    } as never;
    const ns = { idFromName: () => ({}), get: () => ({ fetch: async () => new Response("{}") }) } as never;
    expect(() => kvStore(kv, { clock: revoked() })).toThrow(/kvStore: clock/);
    expect(() => durableObjectStore(ns, { clock: revoked() })).toThrow(/durableObjectStore: clock/);
  });

  it("kvStore / durableObjectStore refuse a clock that is no clock, naming the store", () => {
    const kv = {
      get: async () => null,
      getWithMetadata: async () => ({ value: null, metadata: null }),
      put: async () => {},
    } as never;
    const ns = { idFromName: () => ({}), get: () => ({ fetch: async () => new Response("{}") }) } as never;
    expect(() => kvStore(kv, { clock: 5 as never })).toThrow(/kvStore: clock/);
    expect(() => kvStore(kv, { clock: "https://u:hunter2@x.example" as never })).toThrow(/got a string/);
    expect(() => durableObjectStore(ns, { clock: { now: () => 1 } as never })).toThrow(/durableObjectStore: clock/);
  });
});

describe("proxy upstreams (78305d5)", () => {
  const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
  async function forwarded(upstream: string, paths: string[]): Promise<string[]> {
    const seen: string[] = [];
    const proxy = resilientProxy({
      routes: [{ path: "/a", upstream }],
      resilience: {
        fetch: async (input: RequestInfo | URL) => {
          seen.push(new Request(input).url);
          return new Response("ok");
        },
      },
    });
    for (const path of paths) await proxy.fetch(new Request(`https://w.example${path}`), {}, ctx);
    return seen;
  }
  const make = (upstream: string) => () => resilientProxy({ routes: [{ path: "/a", upstream }] });

  it("a fragment is refused, empty or after a query; an encoded %23 is taken and kept", async () => {
    for (const u of ["https://a.example/v1#x", "https://a.example/v1#", "https://a.example/v1?x=#"])
      expect(make(u)).toThrow(/without a #fragment/);
    expect(await forwarded("https://a.example/v1%23x", ["/a/y?q=1"])).toEqual(["https://a.example/v1%23x/y?q=1"]);
  });

  it("credentials are refused without quoting them; empty userinfo, upper case and IDN are taken", async () => {
    for (const u of ["https://u:hunter2@a.example", "https://:hunter2@a.example", "https://hunter2@a.example"]) {
      let error: unknown;
      try {
        make(u)();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(`${(error as Error).message} ${(error as Error).stack}`).not.toContain("hunter2");
    }
    expect(await forwarded("https://@a.example/v1", ["/a/x"])).toEqual(["https://a.example/v1/x"]);
    expect(await forwarded("https://:@a.example/v1", ["/a/x"])).toEqual(["https://a.example/v1/x"]);
    expect(await forwarded("HTTPS://a.example/v1", ["/a/x"])).toEqual(["https://a.example/v1/x"]);
    expect(await forwarded("https://bücher.example/v1", ["/a/x"])).toEqual(["https://xn--bcher-kva.example/v1/x"]);
    expect(make(" https://a.example/v1")).toThrow(TypeError);
  });

  // docs/cloudflare.md: routes are checked when made ("an absolute http(s) upstream …"); the path below
  // goes after the upstream. A trailing space passes /^https?:\/\//i and URL.canParse (which trims), then
  // src/fallback/endpoint-request.ts `rebase` joins strings: "/a" goes to /v1, "/a/x" to /v1%20/x.
  it("7. an upstream with a trailing space is refused, or forwards below the route to /v1/x", async () => {
    let refused = false;
    try {
      make("https://a.example/v1 ")();
    } catch (e) {
      refused = e instanceof TypeError;
    }
    if (!refused) expect(await forwarded("https://a.example/v1 ", ["/a/x"])).toEqual(["https://a.example/v1/x"]);
  });
});

describe("ky's extend and create", () => {
  // docs/retry.md: extend or create instances "run on the same layer"; the project rule: bad input
  // gets a clear error naming what is wrong, at once (as `createClient` does for the same options,
  // and as FallbackChain#add now does for a misspelt option). src/ky/index.ts `refuseOwn` checks
  // only `retry` and `fetch`: `resilience` is passed on to ky, which ignores it.
  it("8. extend/create with a `resilience` option (here a bad store) is refused at once", () => {
    const api = createClient({ resilience: { fetch: async () => new Response("ok") } });
    const bad = { resilience: { store: { name: "s", publish() {}, peek() {}, connect: 5 } } } as never;
    expect(() => createClient(bad)).toThrow(ConfigError);
    expect(() => api.extend(bad)).toThrow(ConfigError);
    expect(() => api.create(bad)).toThrow(ConfigError);
  });
});
