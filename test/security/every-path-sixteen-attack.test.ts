/**
 * Outside-in attack on the last session's three changes, on every path but
 * the plain `resilience.fetch` call (which last-commits-fifteen-attack and
 * session-fifteen-attack covered):
 * - a wall clock set back (docs/breakers.md "A clock set back"): each deadline
 *   and window notices the step at its first look;
 * - redirects the library follows (docs/retry.md "Redirects"): a hop to a host
 *   whose breaker refuses calls is refused with a `CircuitOpenError` naming it,
 *   and a `Retry-After` hold on the final answer goes to the host that sent it;
 * - options refused at once with a clear error naming the path (docs/options.md,
 *   docs/fallback.md, docs/retry.md "Generic work", docs/cloudflare.md).
 * Paths: a fallback chain of 2-3 endpoints (fixed, adaptive, hedged, with a
 * `transform` that changes the URL, a custom `breaker.key`), a `Request` input,
 * a request degradation rewrote, the ky client, `resilientProxy` in Node with an
 * empty env, `resilience.execute` and named breakers, and the generic
 * `retry(fn)`, `CircuitBreaker`, `RetryBudget`, `FallbackChain` of ./policies,
 * the stores. Public entries only, a user `fetch` that answers by host (a.test,
 * b.test…, no network), a wall clock whose timers run on a `TestClock` while its
 * reading can be stepped back or ahead.
 *
 * Defects pinned (first `it.fails` asserting the documented promise, on the code they were written
 * against; all fixed since, so plain `it`; 1a and 1b now look once after the step, as the fade counts
 * on from the first look after it, docs/breakers.md "A clock set back"):
 * 1. Adaptive order (a chain of the layer, and `FallbackChain` of ./policies): after a day's step back an
 *    endpoint's recent failures stop fading for a day (`max(0, now - updatedAt)`), so it is ranked last for a
 *    day. docs/fallback.md: "A failing endpoint's recent failures fade with a 60 s half-life, so it is tried
 *    again after it recovers instead of being starved forever"; docs/breakers.md "A clock set back": "every
 *    window and pace counts on from now … never a day … A `clock` you pass is treated the same way".
 * 2. A closed breaker's rate window (a named breaker): a `health()` look after a step back does not re-anchor
 *    it (`windowCounts` reads `stale = 0` for a day), so a minute later `health().failureRate` still shows the
 *    outcomes of before the step and one failure trips the rate rule on them. docs/breakers.md: "windows (the
 *    rate rule's, …) … each one notices the step at its first look after it (a call, `health()`, …) … every
 *    window and pace counts on from now".
 * 3. A `Retry-After` hold that reaches an open breaker after a step back is compared with the `openUntil` of
 *    before the step and dropped (`hold` looks at no clock first): the host is probed after the breaker's
 *    30 s, not the hour it asked for. (a) the hold at the end of a followed redirect, (b) a named breaker's
 *    `hold()`. docs/retry.md "Redirects": "a `Retry-After` hold on the final answer holds the host that sent
 *    it"; docs/breakers.md: "an open spell then waits its own length again from now (the `timeout`, or a
 *    hold's length)".
 * 4. A chain endpoint `url` or a proxy `upstream` that ends with a C0 control character (which the URL parser
 *    strips, as it strips spaces) is taken, and the path below goes to `/v1%1F/x` (`/v1%00/x`). docs/fallback.md:
 *    "The rest of the path and the query are rebased onto each endpoint's `url`"; CHANGELOG: endpoints and
 *    upstreams "with spaces around it (the path below went to `/v1%20/x`)" are refused at once.
 * 5. `createClient({ resilience })` with options that cannot be read (a revoked Proxy, a getter that throws)
 *    fails with the engine's TypeError or the getter's own error, where `createResilience` refuses the same
 *    options with a `ConfigError`. docs/options.md: "A value that cannot be read (a getter that throws, a
 *    revoked `Proxy`) is a `ConfigError` naming its path too"; src/ky `ClientOptions.resilience`: "the
 *    resilience layer, or options to create one".
 * 6. `kvStore(kv, options)` / `durableObjectStore(ns, options)` with options that cannot be read: the engine's
 *    "Cannot perform 'get' on a proxy …" or the getter's own Error, naming neither the store nor the option.
 *    docs/cloudflare.md: "Both check their options when they are made, with a `TypeError` naming the option".
 * 7. `retry(fn, { signal: revokedProxy })` is a `ConfigError` whose path is `retry` ("expected options that can
 *    be read, received an object": the options object is readable), where `execute` names `execute.signal`.
 *    docs/retry.md "Generic work": "Both check all their options before the first attempt (a `ConfigError`
 *    naming the path: `execute.signal`, `retry.onRetry`…)".
 * 8. A half-open probe (`halfOpenMaxCalls: 1`) that its own host redirects to itself (`/v1` → `/v1/`) has that
 *    hop refused by the slot it holds: the redirect closes the circuit as the probe's success, and the call
 *    rejects with a `CircuitOpenError` naming that host, closed and sent the request. docs/retry.md
 *    "Redirects": "The hops are one attempt"; its errors table: `CircuitOpenError` "the host's breaker is open:
 *    nothing was sent".
 * 9. A degradation rule whose `match` has a `#fragment` is taken by `degradation(…)` and never applies (its
 *    canonical form keeps the fragment). docs/degradation.md: `match` is "read as a chain's prefix is: both URLs
 *    as the URL parser reads them"; a chain endpoint `url` with a fragment is a `ConfigError` (docs/fallback.md).
 *
 * Held (plain `it`): a chain endpoint opened before a day's step back is passed over for one more spell from the
 * first look, its `CircuitOpenError.retryAt` in `FallbackExhaustedError.errors` agreeing; a `memoryStore` shared
 * by a second layer's chain; the proxy's `Retry-After` (upstream and chain routes); ky's and a named breaker's
 * refusals; a hedge started by its timer whatever the clock reads; the generic `CircuitBreaker` and
 * `RetryBudget` after a step; degradation not held for a day. Redirects: a `Request` input (GET and POST 307),
 * a degradation-rewritten POST 307, a `transform` that sends to a redirecting host, a hedged chain, the proxy's
 * chain route, ky's POST, a custom `breaker.key` of a chain endpoint, a hold at the end of a chain endpoint's
 * redirect going to the host that sent it. Options: revoked Proxies and throwing getters at every depth of
 * `fallback(…)`, `degradation(…)`, `configureTriggers`, `execute`, the proxy's `resilience` and `chain`, the
 * `FallbackChain` and `CircuitBreaker` constructors and `RetryBudget`; misspelt keys there; `#fragment`,
 * credentials and spaces around an endpoint URL.
 *
 * Suspicious, not pinned (docs silent):
 * - a clock set back during an endpoint's call records a negative latency: `statistics().meanLatencyMs` of
 *   -86,398,000, and adaptive order gives that endpoint a bonus (144 points) instead of a penalty;
 * - `resilientProxy(revokedProxy)`, `routes: revokedProxy` and a route whose `upstream` getter throws fail with
 *   the engine's or the getter's error (docs promise a `TypeError` for the route checks they list); a route with
 *   a misspelt extra key (`upstrem`) is taken;
 * - `FallbackChain#add(fn, revokedProxy)` throws the engine's TypeError ("any other option is a `TypeError`");
 * - `memoryStore({ maxkeys: 5 })` is taken, `memoryStore(null)` throws "Cannot read properties of null";
 * - `new CircuitBreaker(key, policy, 5)` throws "clock.now is not a function" (`FallbackChain` refuses a bad
 *   clock with a `ConfigError`); `fallback`'s `hedge.delay` above 2^31 - 1 ms is taken (and clamped by timers);
 * - a degradation rule's `match` with credentials (`https://u:p@a.example/v1`) or without a scheme is taken and
 *   never applies to `https://a.example/v1/…` (one with spaces around it applies);
 * - `execute(fn, { breaker })` with `retry: false` rejects an open breaker's refusal wrapped in a
 *   `RetryExhaustedError` ("gave up after 1 attempt"), not the `CircuitOpenError` itself.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  type Clock,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  isCircuitOpenError,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain, RetryBudget, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { WallClock } from "../helpers/wall-clock.ts";

const SECOND = 1_000;
const MINUTE = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

type Answer = (url: URL, init: RequestInit | undefined) => Response | Promise<Response>;

/** A fetch answering by host, logging `METHOD host/path [body]` for each request that left. */
function hosts(table: Record<string, Answer>, log: string[]) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const text = request.body ? await request.text() : "";
    log.push(`${request.method} ${url.host}${url.pathname}${text ? ` ${text}` : ""}`);
    const answer = table[url.host];
    if (!answer) throw new TypeError("fetch failed");
    return answer(url, init);
  };
}

const redirectTo =
  (location: string, status = 302): Answer =>
  () =>
    new Response(null, { status, headers: { location } });
const status =
  (code: number, headers?: Record<string, string>): Answer =>
  () =>
    new Response("x", { status: code, ...(headers ? { headers } : {}) });

/** A call's outcome as text: the status, or the error's name (and key). */
function outcome(clock: { run<T>(p: Promise<T>): Promise<T> }, call: Promise<Response>): Promise<string> {
  return clock.run(call).then(
    (r) => String(r.status),
    (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
  );
}

/** How long after `now` a call is refused, in s (0 when it is not). */
async function refusedFor(clock: WallClock, call: Promise<unknown>): Promise<number> {
  try {
    await clock.run(call);
    return 0;
  } catch (thrownError) {
    // `execute` with one attempt wraps the refusal in a RetryExhaustedError.
    const error = isCircuitOpenError(thrownError) ? thrownError : (thrownError as Error).cause;
    if (!isCircuitOpenError(error)) throw thrownError;
    return Math.round((error.retryAt - clock.now()) / SECOND);
  }
}

function layerOn(clock: Clock, table: Record<string, Answer>, log: string[], options: ResilienceOptions = {}) {
  return createResilience({
    clock,
    retry: false,
    redirects: "library",
    fetch: hosts(table, log),
    ...options,
  });
}

const revoked = (): never => {
  const p = Proxy.revocable({}, {});
  p.revoke();
  return p.proxy as never;
};

/** An object whose `key` getter throws. */
const throwing = (key: string, rest: object = {}): never =>
  Object.defineProperty({ ...rest }, key, {
    enumerable: true,
    get() {
      throw new Error("unreadable");
    },
  }) as never;

/** What `f` throws, or what the promise it returns rejects with (`execute` rejects, since the thirty-third session). */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (error) {
    return error;
  }
  return undefined;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  return undefined;
}

const chainOf = (...urls: string[]) =>
  fallback([{ name: "gen", endpoints: urls.map((url, i) => ({ name: `e${i + 1}`, url })) }]);

// ---------------------------------------------------------------------------------------------
describe("1. a wall clock set back, on every path", () => {
  it("a chain's endpoints opened before a day's step back: passed over for one more spell, retryAt agreeing", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const answer: Answer = () => new Response("x", { status: code });
    const layer = layerOn(clock, { "a.test": answer, "b.test": answer }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      fallback: chainOf("http://a.test/v1", "http://b.test/v1"),
    });
    expect(await outcome(clock, layer.fetch("http://a.test/v1/x"))).toBe("503");
    clock.step(-DAY);
    await clock.advance(5 * SECOND);
    log.length = 0;
    const error = await clock.run(layer.fetch("http://a.test/v1/x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    for (const name of ["e1", "e2"]) {
      const skipped = (error as FallbackExhaustedError).errors[name] as CircuitOpenError;
      expect(skipped).toBeInstanceOf(CircuitOpenError);
      expect(skipped.retryAt - clock.now()).toBe(30 * SECOND);
    }
    expect(log).toEqual([]);
    await clock.advance(30 * SECOND);
    code = 200;
    expect(await outcome(clock, layer.fetch("http://a.test/v1/x"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/x"]);
  });

  it("a memoryStore shared with a second layer's chain: one more spell after the step, not a day", async () => {
    const clock = new WallClock(T0);
    const store = memoryStore();
    const log: string[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test": () => new Response("x", { status: code }),
      "b.test": status(200),
    };
    const options: ResilienceOptions = {
      store,
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      fallback: chainOf("http://a.test/v1", "http://b.test/v1"),
    };
    const images = layerOn(clock, table, log, options);
    await outcome(clock, images.fetch("http://a.test/v1/x"));
    clock.step(-DAY);
    const videos = layerOn(clock, table, log, options);
    await clock.advance(SECOND);
    log.length = 0;
    expect(await outcome(clock, videos.fetch("http://a.test/v1/x"))).toBe("200");
    expect(log).toEqual(["GET b.test/v1/x"]);
    await clock.advance(31 * SECOND);
    code = 200;
    log.length = 0;
    expect(await outcome(clock, videos.fetch("http://a.test/v1/x"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/x"]);
  });

  it("the proxy (Node, empty env): an upstream and a chain route opened, a day back: Retry-After 30", async () => {
    const clock = new WallClock(T0);
    const proxy = resilientProxy({
      routes: [
        { path: "/", upstream: "http://a.test" },
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "e1", url: "http://b.test/v1" },
              { name: "e2", url: "http://c.test/v1" },
            ],
          },
        },
      ],
      resilience: {
        clock,
        retry: false,
        breaker: { failureThreshold: 1, timeout: 30 * SECOND },
        fetch: async () => new Response("x", { status: 503 }),
      },
    });
    const ctx = { waitUntil() {} };
    await clock.run(proxy.fetch(new Request("https://p.example/x"), {}, ctx));
    await clock.run(proxy.fetch(new Request("https://p.example/c/x"), {}, ctx));
    clock.step(-DAY);
    await clock.advance(5 * SECOND);
    for (const path of ["/x", "/c/x"]) {
      const r = await clock.run(proxy.fetch(new Request(`https://p.example${path}`), {}, ctx));
      expect([r.status, r.headers.get("retry-after")]).toEqual([503, "30"]);
    }
  });

  it("ky, execute and a named breaker after a day back: refused for one more spell, then let through", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const layer = layerOn(clock, { "a.test": () => new Response("x", { status: code }) }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
    });
    const named = layer.breaker("upscaler", { failureThreshold: 1, timeout: 30 * SECOND });
    await clock.run(named.execute(() => Promise.reject(new Error("down")))).catch(() => {});
    await outcome(clock, layer.fetch("http://a.test/"));
    clock.step(-DAY);
    await clock.advance(5 * SECOND);
    const api = createClient({ resilience: layer });
    expect(await refusedFor(clock, api.get("http://a.test/k").text())).toBe(30);
    expect(
      await refusedFor(
        clock,
        layer.execute(() => 1, { breaker: "upscaler" }),
      ),
    ).toBe(30);
    await clock.advance(30 * SECOND);
    code = 200;
    expect(await clock.run(api.get("http://a.test/k").text())).toBe("x");
    expect(await clock.run(layer.execute(() => 7, { breaker: "upscaler" }))).toBe(7);
  });

  it("./policies: a CircuitBreaker and a RetryBudget of their own count on from now after a step", async () => {
    const clock = new WallClock(T0);
    const policy = {
      failureThreshold: 1,
      successThreshold: 1,
      timeout: 30 * SECOND,
      halfOpenMaxCalls: 1,
      timeWindow: 30 * SECOND,
      probeTimeout: 30 * SECOND,
      minimumCalls: 100,
    };
    const breaker = new CircuitBreaker("gpu", policy as never, clock);
    await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    clock.step(-DAY);
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt() - clock.now()).toBe(30 * SECOND);
    await clock.advance(30 * SECOND);
    expect(breaker.state).toBe("half_open");

    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1 }, clock);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    clock.step(-DAY);
    expect(budget.tryRetry()).toBe(false); // the first look: the refill counts from now
    await clock.advance(SECOND);
    expect(budget.tryRetry()).toBe(true);
  });

  it("a hedge starts after its delay whatever the wall clock reads", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(
      clock,
      {
        "a.test": () => new Promise<Response>((r) => clock.setTimer(() => r(new Response("slow")), 10 * SECOND)),
        "b.test": () => new Response("fast"),
      },
      log,
      {
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 2 * SECOND },
            endpoints: [
              { name: "e1", url: "http://a.test/v1" },
              { name: "e2", url: "http://b.test/v1" },
            ],
          },
        ]),
      },
    );
    const call = layer.fetch("http://a.test/v1/x");
    await clock.advance(SECOND);
    clock.step(-DAY);
    await clock.advance(SECOND + 1);
    expect(log).toEqual(["GET a.test/v1/x", "GET b.test/v1/x"]);
    expect(await (await clock.run(call)).text()).toBe("fast");
  });

  it("degradation: a level stepped down before a day back is restored after restoreAfter, not a day", async () => {
    const clock = new WallClock(T0);
    let code = 503;
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status: code }),
      degradation: degradation({
        minSamples: 5,
        restoreAfter: 60 * SECOND,
        browserSignals: false,
        triggers: { memoryUsage: 1, cpuUsage: 1 },
      }),
    });
    for (let i = 0; i < 8; i++) {
      await clock.run(layer.fetch("http://a.test/"));
      await clock.advance(1_100);
    }
    expect(layer.degradation.currentLevel().name).toBe("high");
    code = 200;
    clock.step(-DAY);
    for (let i = 0; i < 20; i++) {
      await clock.run(layer.fetch("http://a.test/"));
      await clock.advance(5 * SECOND);
    }
    expect(layer.degradation.currentLevel().name).toBe("full");
  });

  it("controls without a step: a named breaker's hold(now + 1 h) holds it an hour; its rate window empties", async () => {
    const clock = new WallClock(T0);
    const layer = createResilience({ clock, retry: false });
    const held = layer.breaker("held", { failureThreshold: 1, timeout: 30 * SECOND });
    await held.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    held.hold(clock.now() + 3_600 * SECOND, "asked for an hour");
    await clock.advance(31 * SECOND);
    expect(Math.round((held.retryAt() - clock.now()) / SECOND)).toBe(3_569);
    const rated = layer.breaker("rated", {
      failureThreshold: 100,
      failureRate: 0.5,
      minimumCalls: 4,
      timeWindow: 30 * SECOND,
    });
    for (let i = 0; i < 3; i++) await rated.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    layer.health();
    await clock.advance(MINUTE);
    expect(layer.health().breakers.rated?.failureRate).toBeNull();
    await rated.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(rated.state).toBe("closed");
  });

  // docs/fallback.md: "A failing endpoint's recent failures fade with a 60 s half-life, so it is tried again
  // after it recovers instead of being starved forever." Without a step, ten minutes after e1's failures it
  // ranks first again. After a day's step back, src/policies/endpoint-stats.ts `recentSuccess` reads
  // `max(0, now - updatedAt)` = 0 for a day: e1 stays last and, while e2 answers, is never called for a day.
  it("1a. adaptive chain: a day's step back, ten minutes on, the endpoint that failed is ranked first again", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503), "b.test": status(200) }, log, {
      breaker: { failureThreshold: 100 },
      fallback: fallback([
        {
          name: "gen",
          order: "adaptive",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://b.test/v1" },
          ],
        },
      ]),
    });
    const chain = layer.fallback?.chain("gen");
    if (!chain) throw new Error("the layer has no chains");
    for (let i = 0; i < 3; i++) await outcome(clock, layer.fetch("http://a.test/v1/x"));
    expect(chain.ordered()).toEqual(["e2", "e1"]);
    await clock.advance(10 * MINUTE);
    expect(chain.ordered()).toEqual(["e1", "e2"]); // faded: held
    for (let i = 0; i < 3; i++) await outcome(clock, layer.fetch("http://a.test/v1/x"));
    expect(chain.ordered()).toEqual(["e2", "e1"]);
    clock.step(-DAY);
    // The fade counts on from the first look after the step (docs/breakers.md "A clock set back"):
    // a look ten minutes after it still ranks e1 last; ten minutes after that look it is first.
    await clock.advance(10 * MINUTE);
    expect(chain.ordered()).toEqual(["e2", "e1"]);
    await clock.advance(10 * MINUTE);
    expect(chain.ordered()).toEqual(["e1", "e2"]); // was ["e2", "e1"] for a day
  });

  it("1b. ./policies FallbackChain, adaptive, with a clock: the same after a day's step back", async () => {
    const clock = new WallClock(T0);
    const chain = new FallbackChain<string, string>("work", { order: "adaptive", clock });
    chain.add(() => Promise.reject(new Error("gpu down")), { name: "gpu" });
    chain.add(() => Promise.resolve("cpu"), { name: "cpu" });
    for (let i = 0; i < 3; i++) await chain.execute("job");
    expect(chain.ordered()).toEqual(["cpu", "gpu"]);
    clock.step(-DAY);
    expect(chain.ordered()).toEqual(["cpu", "gpu"]); // the first look after the step
    await clock.advance(10 * MINUTE);
    expect(chain.ordered()).toEqual(["gpu", "cpu"]); // was ["cpu", "gpu"] for a day
  });

  // docs/breakers.md "A clock set back": "windows (the rate rule's, `health().errorRate`'s, …) … each one
  // notices the step at its first look after it (a call, `health()`, a breaker's `state`) … every window and
  // pace counts on from now". The look here is `health()`; a minute later (two 30 s windows) the failures of
  // before the step are still in `health().failureRate`, and one failure trips the rate rule on them (3 + 1 of
  // `minimumCalls: 4`). Without the step: `failureRate` null and the breaker stays closed. src/policies/
  // breaker-state.ts `windowCounts` (`stale = max(0, …)` = 0 while the window starts a day ahead) and `record`
  // (re-anchors at the next outcome, keeping every bucket).
  it("2. a named breaker's rate window, a day back, looked at by health(): a minute on, the old failures are gone", async () => {
    const clock = new WallClock(T0);
    const layer = createResilience({ clock, retry: false });
    const named = layer.breaker("upscaler", {
      failureThreshold: 100,
      failureRate: 0.5,
      minimumCalls: 4,
      timeWindow: 30 * SECOND,
    });
    const fail = () => named.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    for (let i = 0; i < 3; i++) await fail();
    expect(layer.health().breakers.upscaler?.failureRate).toBe(1);
    clock.step(-DAY);
    layer.health(); // the first look after the step
    await clock.advance(MINUTE);
    expect(layer.health().breakers.upscaler?.failureRate).toBeNull(); // observed: 1
    await fail();
    expect(named.state).toBe("closed"); // observed: "open" ("failure rate 1.00 over 4 calls")
  });

  // docs/retry.md "Redirects": "a `Retry-After` hold on the final answer holds the host that sent it";
  // docs/breakers.md: "an open spell then waits its own length again from now (the `timeout`, or a hold's
  // length)". The hop to b.test went while b was closed; b opened meanwhile (30 s), the clock was set back a
  // day, then b's answer asked for an hour. Without the step b is held 3,569 s after; with it, 30 s: the hold
  // (src/policies/breaker-state.ts `hold`) compares `until` with the `openUntil` of before the step (a day
  // ahead) and drops it, then the next look re-anchors the old spell.
  it("3a. a Retry-After hold at the end of a redirect, after a day back, holds the host that sent it for the hour", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let answer: () => void = () => {};
    const layer = layerOn(
      clock,
      {
        "a.test": redirectTo("http://b.test/x"),
        "b.test": (url) =>
          url.pathname === "/x"
            ? new Promise<Response>((resolve) => {
                answer = () => resolve(new Response("x", { status: 503, headers: { "retry-after": "3600" } }));
              })
            : new Response("x", { status: 503 }),
      },
      log,
      { retry: { maxAttempts: 1, maxRetryAfter: 5 * SECOND }, breaker: { failureThreshold: 1, timeout: 30 * SECOND } },
    );
    const first = layer.fetch("http://a.test/");
    await clock.advance(1);
    expect(log).toEqual(["GET a.test/", "GET b.test/x"]);
    expect(await outcome(clock, layer.fetch("http://b.test/direct"))).toBe("503"); // b opens for 30 s
    clock.step(-DAY);
    answer();
    expect(await outcome(clock, first)).toBe("503");
    await clock.advance(31 * SECOND);
    const b = layer.health().breakers["b.test"];
    expect(b?.state).toBe("open"); // held, but…
    expect(((b?.openUntil ?? 0) - clock.now()) / SECOND).toBeGreaterThan(3_500); // observed: 30 (from this look)
  });

  it("3b. a named breaker's hold(now + 1 h) after a day back holds it for the hour", async () => {
    const clock = new WallClock(T0);
    const layer = createResilience({ clock, retry: false });
    const named = layer.breaker("upscaler", { failureThreshold: 1, timeout: 30 * SECOND });
    await named.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    clock.step(-DAY);
    named.hold(clock.now() + 3_600 * SECOND, "asked for an hour");
    await clock.advance(31 * SECOND);
    expect(named.state).toBe("open"); // observed: open, but…
    expect(Math.round((named.retryAt() - clock.now()) / SECOND)).toBe(3_569); // observed: 30
  });
});

// ---------------------------------------------------------------------------------------------
describe("2. redirects the library follows, on every path", () => {
  /** b.test opened by a direct 503 (threshold 1). */
  async function withOpenB(options: ResilienceOptions = {}, table: Record<string, Answer> = {}) {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": redirectTo("http://b.test/x"), "b.test": status(503), ...table }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      ...options,
    });
    expect(await outcome(clock, layer.fetch("http://b.test/open"))).toBe("503");
    log.length = 0;
    return { clock, log, layer };
  }

  it("a Request input, GET and a POST 307 with a body: refused naming b, nothing sent there", async () => {
    const { clock, log, layer } = await withOpenB({}, { "a.test": redirectTo("http://b.test/x", 307) });
    expect(await outcome(clock, layer.fetch(new Request("http://a.test/")))).toBe("CircuitOpenError b.test");
    expect(await outcome(clock, layer.fetch(new Request("http://a.test/", { method: "POST", body: "p" })))).toBe(
      "CircuitOpenError b.test",
    );
    expect(log).toEqual(["GET a.test/", "POST a.test/ p"]);
  });

  it("a POST degradation rewrote, 307 to an open host: refused, its body never reaches b", async () => {
    const { clock, log, layer } = await withOpenB(
      { degradation: degradation({}) },
      { "a.test": redirectTo("http://b.test/x", 307) },
    );
    layer.degradation?.setLevel("low");
    const call = layer.fetch("http://a.test/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ steps: 50 }),
    });
    expect(await outcome(clock, call)).toBe("CircuitOpenError b.test");
    expect(log).toEqual(['POST a.test/ {"steps":20}']);
  });

  it("a transform that sends to a redirecting host, a hedged chain, a custom breaker.key: a GET moves on", async () => {
    const { clock, log, layer } = await withOpenB(
      {
        breaker: { failureThreshold: 1, key: (url) => `k:${url.host}` },
        fallback: fallback([
          {
            name: "t",
            endpoints: [
              { name: "e1", url: "http://c.test/v1", transform: (req) => ({ ...req, url: "http://a.test/t" }) },
              { name: "e2", url: "http://d.test/v1" },
            ],
          },
          {
            name: "h",
            hedge: { delay: 5 * SECOND },
            endpoints: [
              { name: "e1", url: "http://a.test/h" },
              { name: "e2", url: "http://d.test/h" },
            ],
          },
        ]),
      },
      { "c.test": status(200), "d.test": status(200) },
    );
    const events: string[] = [];
    layer.on("fallback", (e) => events.push(`${e.from} -> ${e.next}: ${e.reason}`));
    expect(await outcome(clock, layer.fetch("http://c.test/v1/j"))).toBe("200");
    expect(await outcome(clock, layer.fetch("http://a.test/h/j"))).toBe("200");
    expect(log).toEqual(["GET a.test/t", "GET d.test/v1/j", "GET a.test/h/j", "GET d.test/h/j"]);
    expect(events.length).toBe(2);
    for (const event of events) expect(event).toMatch(/^e1 -> e2: /);
    expect(layer.health().breakers["k:a.test"]?.state).toBe("closed");
  });

  it("the proxy's chain route and ky's POST: the open target refused, the chain moves on, ky rejects", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/x", 307),
      "b.test": status(503),
      "d.test": status(200),
    };
    const proxy = resilientProxy({
      routes: [
        { path: "/b", upstream: "http://b.test" },
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "e1", url: "http://a.test/v1" },
              { name: "e2", url: "http://d.test/v1" },
            ],
          },
        },
      ],
      resilience: {
        clock,
        retry: false,
        redirects: "library",
        breaker: { failureThreshold: 1 },
        fetch: hosts(table, log),
      },
    });
    const ctx = { waitUntil() {} };
    await clock.run(proxy.fetch(new Request("https://p.example/b/open"), {}, ctx)); // b opens
    log.length = 0;
    const r = await clock.run(proxy.fetch(new Request("https://p.example/c/x"), {}, ctx));
    expect([r.status, r.headers.get("x-resilience-endpoint")]).toEqual([200, "e2"]);
    expect(log).toEqual(["GET a.test/v1/x", "GET d.test/v1/x"]);

    const layer = layerOn(clock, table, log, { breaker: { failureThreshold: 1 } });
    await outcome(clock, layer.fetch("http://b.test/open"));
    log.length = 0;
    const api = createClient({ resilience: layer });
    const error = await clock.run(api.post("http://a.test/k", { json: { p: 1 } }).text()).catch((e: unknown) => e);
    expect(isCircuitOpenError(error) && error.key).toBe("b.test");
    expect(log).toEqual(['POST a.test/k {"p":1}']);
  });

  it("a Retry-After hold at the end of a chain endpoint's redirect holds b; the endpoint stays closed", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(
      clock,
      {
        "a.test": redirectTo("http://b.test/x"),
        "b.test": status(503, { "retry-after": "3600" }),
        "d.test": status(200),
      },
      log,
      {
        retry: { maxAttempts: 1, maxRetryAfter: 5 * SECOND },
        breaker: { failureThreshold: 5 },
        fallback: chainOf("http://a.test/v1", "http://d.test/v1"),
      },
    );
    expect(await outcome(clock, layer.fetch("http://a.test/v1/j"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/j", "GET b.test/x", "GET d.test/v1/j"]);
    const health = layer.health().breakers;
    expect([health["a.test"]?.state, health["b.test"]?.state]).toEqual(["closed", "open"]);
    expect(health["b.test"]?.openUntil).toBe(T0 + 3_600 * SECOND);
    log.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test/v1/j"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/j", "GET d.test/v1/j"]);
  });

  it("a shared store holding b open: a third layer's chain endpoint redirecting there is refused and moves on", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const log: string[] = [];
    const table = { "a.test": redirectTo("http://b.test/x"), "b.test": status(503), "d.test": status(200) };
    const opener = layerOn(clock, table, log, { store, breaker: { failureThreshold: 1 } });
    await outcome(clock, opener.fetch("http://b.test/"));
    log.length = 0;
    const third = layerOn(clock, table, log, {
      store,
      breaker: { failureThreshold: 1 },
      fallback: chainOf("http://a.test/v1", "http://d.test/v1"),
    });
    expect(await outcome(clock, third.fetch("http://a.test/v1/j"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/j", "GET d.test/v1/j"]);
  });

  // docs/retry.md "Redirects": "The hops are one attempt … A hop to a host whose breaker refuses calls (open …,
  // or half-open with every probe slot taken) is refused as a call to it would be"; the errors table:
  // `CircuitOpenError` "the host's breaker is open: nothing was sent". A half-open probe (`halfOpenMaxCalls: 1`)
  // answered by its own host with a redirect to that host (`/v1` → `/v1/`): the hop is refused by the slot the
  // probe itself holds (src/http/send/send-attempt.ts `admitHop`, which then asked `refuses()`), the redirect counts as
  // the probe's success and closes the circuit, and the call rejects with a CircuitOpenError naming a host that
  // was sent the request and is closed.
  it("8. a half-open probe redirected to its own host is followed (its hops are one attempt), not refused by its own slot", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    let up = false;
    const layer = layerOn(
      clock,
      {
        "a.test": (url) =>
          !up
            ? new Response("x", { status: 503 })
            : url.pathname === "/v1"
              ? new Response(null, { status: 301, headers: { location: "/v1/" } })
              : new Response("ok"),
      },
      log,
      { breaker: { failureThreshold: 1, timeout: SECOND, halfOpenMaxCalls: 1, successThreshold: 1 } },
    );
    expect(await outcome(clock, layer.fetch("http://a.test/v1"))).toBe("503");
    await clock.advance(SECOND + 1);
    up = true;
    log.length = 0;
    const probe = await outcome(clock, layer.fetch("http://a.test/v1"));
    expect(layer.health().breakers["a.test"]?.state).toBe("closed"); // held: the redirect was the probe's success
    expect([probe, log]).toEqual(["200", ["GET a.test/v1", "GET a.test/v1/"]]); // observed: CircuitOpenError a.test, ["GET a.test/v1"]
  });
});

// ---------------------------------------------------------------------------------------------
describe("3. options refused at once, through every entry", () => {
  const ep = (extra: object = {}) => ({ name: "e", url: "https://a.example/v1", ...extra });
  const kv = {
    get: async () => null,
    getWithMetadata: async () => ({ value: null, metadata: null }),
    put: async () => {},
  } as never;
  const ns = { idFromName: () => ({}), get: () => ({ fetch: async () => new Response("{}") }) } as never;

  it("fallback(…): unreadable values and misspelt keys at every depth are ConfigErrors naming the path", () => {
    const cases: Array<[() => unknown, string]> = [
      [() => fallback(revoked()), "fallback"],
      [() => fallback([revoked()]), "fallback.0"],
      [() => fallback([{ name: "c", endpoints: revoked() }]), "fallback.0.endpoints"],
      [() => fallback([{ name: "c", endpoints: [throwing("url", { name: "e" })] }]), "fallback.0.endpoints.0.url"],
      [() => fallback([{ name: "c", hedge: revoked(), endpoints: [ep()] }]), "fallback.0.hedge"],
      [() => fallback([{ name: "c", endpoints: [ep({ headers: revoked() })] }]), "fallback.0.endpoints.0.headers"],
      [() => fallback([{ name: "c", endpoints: [ep({ validate: revoked() })] }]), "fallback.0.endpoints.0.validate"],
      [() => fallback([{ name: "c", endpoints: [ep({ tranform: () => ({}) })] }]), "fallback.0.endpoints.0"],
      [() => fallback([{ name: "c", hegde: { delay: 1 }, endpoints: [ep()] }] as never), "fallback.0"],
      [
        () => fallback([{ name: "c", endpoints: [ep({ url: "https://a.example/v1#x" })] }]),
        "fallback.0.endpoints.0.url",
      ],
      [
        () => fallback([{ name: "c", endpoints: [ep({ url: "https://u:p@a.example/v1" })] }]),
        "fallback.0.endpoints.0.url",
      ],
      [
        () => fallback([{ name: "c", endpoints: [ep({ url: "https://a.example/v1 " })] }]),
        "fallback.0.endpoints.0.url",
      ],
      [
        () => fallback([{ name: "c", endpoints: [ep({ url: "https://a.example/v1\t" })] }]),
        "fallback.0.endpoints.0.url",
      ],
    ];
    for (const [f, path] of cases) {
      const error = thrown(f);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
  });

  it("degradation(…), configureTriggers, execute, the proxy's resilience and chain: ConfigErrors naming the path", async () => {
    const cases: Array<[() => unknown, string]> = [
      [() => degradation(revoked()), "degradation"],
      [() => degradation({ levels: throwing("medium") }), "degradation.levels.medium"],
      [() => degradation({ rules: [revoked()] }), "degradation.rules.0"],
      [
        () => degradation({ rules: [{ match: "https://a.example", params: throwing("steps") }] }),
        "degradation.rules.0.params.steps",
      ],
      [() => degradation({ models: [revoked()] }), "degradation.models.0"],
      [() => degradation({ trigers: {} } as never), "degradation"],
      [
        () => createResilience({ degradation: degradation({}) }).degradation.configureTriggers(revoked()),
        "degradation.triggers",
      ],
      [() => createResilience().execute(async () => 1, { signal: revoked() }), "execute.signal"],
      [() => createResilience().execute(async () => 1, throwing("fallback")), "execute.fallback"],
      [() => resilientProxy({ routes: [{ path: "/a", chain: revoked() }] }), "routes.0.chain"],
      [
        () => resilientProxy({ routes: [{ path: "/a", upstream: "https://a.example" }], resilience: revoked() }),
        "resilience",
      ],
      [() => new FallbackChain("c", revoked()), "FallbackChain"],
      [() => new FallbackChain("c", { oder: "adaptive" } as never), "FallbackChain"],
      [() => new RetryBudget(revoked()), "RetryBudget"],
      [() => new CircuitBreaker("k", revoked(), { now: () => 0, setTimer: () => () => {} }), "CircuitBreaker"],
    ];
    for (const [f, path] of cases) {
      const error = await caught(f);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
  });

  // docs/degradation.md: rules apply "per URL prefix (`match`, the longest wins, read as a chain's prefix is:
  // both URLs as the URL parser reads them …)"; a chain's endpoint `url` with a `#fragment` is refused with a
  // ConfigError (docs/fallback.md), and docs/options.md: "a typo never silently does nothing". `match` is only
  // checked to be a non-empty string (src/degradation/degradation-rules.ts `"str+"`); its canonical form keeps
  // the fragment, which no request URL starts with: the rule is taken and never applies.
  it("9. a degradation rule whose match has a #fragment is refused at once, or applies to the URLs under it", async () => {
    const bodies: string[] = [];
    let error: unknown;
    try {
      const layer = createResilience({
        retry: false,
        fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
          bodies.push(String(init?.body));
          return new Response("ok");
        },
        degradation: degradation({ rules: [{ match: "https://a.example/v1#jobs", params: { steps: "p.steps" } }] }),
      });
      layer.degradation?.setLevel("low");
      await layer.fetch("https://a.example/v1/x", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ p: { steps: 50 } }),
      });
    } catch (e) {
      error = e;
    }
    if (!(error instanceof ConfigError)) expect(bodies).toEqual(['{"p":{"steps":20}}']); // observed: steps 50
  });

  // docs/fallback.md: "The rest of the path and the query are rebased onto each endpoint's `url`"; the
  // CHANGELOG (f098afa): "a proxy upstream or chain endpoint with spaces around it (the path below went to
  // `/v1%20/x`)" is refused at once. The URL parser strips C0 controls around a URL as it strips spaces;
  // `String#trim` (src/fallback/fallback-rules.ts, src/cloudflare/resilient-proxy.ts) does not, so
  // "…/v1\u001f" is taken and the path below goes to /v1%1F/x (a NUL: /v1%00/x).
  it("4. a chain endpoint or proxy upstream ending in a C0 control: refused at once, or the path below goes to /v1/x", async () => {
    const seen: string[] = [];
    const fetch = async (input: RequestInfo | URL) => {
      seen.push(new Request(input).url);
      return new Response("ok");
    };
    let refused = 0;
    try {
      const layer = createResilience({
        fetch,
        fallback: fallback([{ name: "c", endpoints: [{ name: "e1", url: "https://a.example/v1\u001f" }] }]),
      });
      await layer.fetch("https://a.example/v1/x?q=1");
    } catch (error) {
      if (error instanceof ConfigError) refused++;
    }
    try {
      const proxy = resilientProxy({
        routes: [{ path: "/a", upstream: "https://a.example/v1\u0000" }],
        resilience: { fetch },
      });
      await proxy.fetch(new Request("https://w.example/a/x"), {}, { waitUntil() {} });
    } catch (error) {
      if (error instanceof TypeError) refused++;
    }
    // observed: ["https://a.example/v1%1F/x?q=1", "https://a.example/v1%00/x"]
    expect(seen.filter((url) => !url.startsWith("https://a.example/v1/x"))).toEqual([]);
    expect(seen.length + refused).toBe(2);
  });

  it("createClient: a getter of ky's retry, and ky's retry and fetch, are refused with a ConfigError", () => {
    expect(thrown(() => createClient(throwing("retry")))).toBeInstanceOf(ConfigError);
    expect(thrown(() => createClient({ fetch: async () => new Response("") } as never))).toBeInstanceOf(ConfigError);
    expect(thrown(() => createClient({ resilience: { retri: {} } as never }))).toBeInstanceOf(ConfigError);
  });

  // docs/options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`
  // naming its path too"; `createClient`'s `resilience` is "the resilience layer, or options to create one"
  // (src/ky/index.ts), and `createResilience(revokedProxy)` is that ConfigError. `isResilience(layer)` reads
  // the value first: "Cannot perform 'get' on a proxy that has been revoked"; the getter's own Error escapes
  // the destructuring of the options.
  it("5. createClient({ resilience }) that cannot be read: a ConfigError, as createResilience gives", () => {
    expect(thrown(() => createResilience(revoked()))).toBeInstanceOf(ConfigError); // held
    expect(thrown(() => createClient({ resilience: revoked() }))).toBeInstanceOf(ConfigError); // observed: TypeError
    expect(thrown(() => createClient(throwing("resilience")))).toBeInstanceOf(ConfigError); // observed: Error
    // Named by the key that cannot be read, or `options` when nothing can be.
    expect((thrown(() => createClient(throwing("resilience"))) as ConfigError).path).toBe("resilience");
    expect((thrown(() => createClient(revoked())) as ConfigError).path).toBe("options");
  });

  // docs/cloudflare.md: "Both check their options when they are made, with a `TypeError` naming the option".
  // Options that cannot be read give "Cannot perform 'get' on a proxy that has been revoked" (naming nothing)
  // or the getter's own Error.
  it("6. kvStore / durableObjectStore options that cannot be read: an error naming the store", () => {
    const named = (f: () => unknown, store: string): boolean => {
      const error = thrown(f);
      return (error instanceof TypeError || error instanceof ConfigError) && error.message.includes(store);
    };
    expect(named(() => kvStore(kv, revoked()), "kvStore")).toBe(true);
    expect(named(() => kvStore(kv, throwing("refreshInterval")), "kvStore")).toBe(true);
    expect(named(() => durableObjectStore(ns, revoked()), "durableObjectStore")).toBe(true);
    expect(named(() => durableObjectStore(ns, throwing("flushInterval")), "durableObjectStore")).toBe(true);
  });

  // docs/retry.md "Generic work": "Both check all their options before the first attempt (a `ConfigError`
  // naming the path: `execute.signal`, `retry.onRetry`…)". `execute` names `execute.signal` (above); `retry`
  // names only `retry`, "expected options that can be read, received an object" (src/policies/retry.ts: any
  // throw while checking becomes that one message).
  it("7. retry(fn, { signal: revokedProxy }) is a ConfigError naming retry.signal", async () => {
    let ran = false;
    const error = await retry(
      () => {
        ran = true;
        return 1;
      },
      { signal: revoked() },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError); // held
    expect(ran).toBe(false); // held
    expect((error as ConfigError).path).toBe("retry.signal"); // observed: "retry"
    // A getter that throws is named too; options that cannot be read at all are `retry`.
    const getter = await retry(() => 1, throwing("maxAttempts") as never).catch((e: unknown) => e);
    expect((getter as ConfigError).path).toBe("retry.maxAttempts");
    const whole = await retry(() => 1, revoked() as never).catch((e: unknown) => e);
    expect((whole as ConfigError).path).toBe("retry");
  });
});
