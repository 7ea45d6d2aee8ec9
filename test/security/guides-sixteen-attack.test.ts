/**
 * Outside-in check of the sentences the last session added to or changed in the guides
 * (`git diff 675e0a3 HEAD -- docs/breakers.md docs/cloudflare.md docs/fallback.md
 * docs/health-and-events.md docs/options.md docs/retry.md docs/testing.md`), each on the paths
 * where it applies: `resilience.fetch` with a URL string, a URL object and a `Request`; a fallback
 * chain, a hedged chain and a degradation rewrite; the ky client (`createClient`); `resilientProxy`
 * in Node with an empty env; named breakers and `resilience.execute`; `CircuitBreaker`,
 * `FallbackChain` on their own; `memoryStore`, `kvStore` and `durableObjectStore` with minimal fakes.
 * Public entries only; a user `fetch` answering by host (a.test, b.test…, no network), two
 * `node:http` servers on 127.0.0.1 where the platform must follow a redirect itself; time on a
 * `TestClock`, or on a wall clock whose timers run on one while its reading is stepped back or ahead;
 * one test under vitest's fake timers (docs/testing.md). Earlier files (readme-paths-attack,
 * last-commits-fifteen-attack) cover the re-anchor of a plain open breaker, a shared store across a step
 * back, and a hop to an open host on a plain call, a chain, the proxy and ky: not repeated.
 *
 * Defects pinned (first `it.fails` asserting the sentence, on the code they were written against; all
 * fixed since, so plain `it`):
 * 1. docs/breakers.md (opening section): "if it answers after its lease ran out and the circuit has
 *    closed again since, that answer counts for nothing", with "A clock set back": "the probes out are
 *    given up as expired leases are (the circuit re-opens for `timeout`)". A probe out when the clock is
 *    set back is given up; new probes close the circuit; the given-up probe's late 503 then counts as a
 *    closed-state failure and re-opens it (`failureThreshold: 1`), on `CircuitBreaker` alone and through
 *    `resilience.fetch`: its lease lies ahead of the set-back clock, and `failure` ignores only
 *    `lease <= now`.
 * 2. docs/breakers.md "A clock set back": windows ("the rate rule's") notice the step "at its first look
 *    after it (a call, `health()`, a breaker's `state`)" and "every window and pace counts on from now".
 *    The rate rule's window ignores a `health()` look: after a day's step back and a look, failures
 *    older than `timeWindow` (10 s; 11 s later) still show in `health().failureCount` (3) and one more
 *    failure trips the rate rule on 4 of 4 calls. Nothing moves the window until an outcome is recorded.
 * 3. docs/health-and-events.md: an open one shows "until when it stays open (`openUntil`; `null` while
 *    half-open, …)". A breaker whose `timeout` passed reads `half_open` (as documented) but keeps the
 *    `openUntil` of its past spell, per host and named alike, until a call comes.
 * 4. docs/options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a
 *    `ConfigError` naming its path too." Through `createClient({ resilience })` (layer options), a
 *    getter on `fetch` throws the caller's own error and a revoked Proxy a plain TypeError: the ky
 *    entry's `isResilience` reads `fetch` before `createResilience` checks anything.
 * 5. docs/cloudflare.md "Sharing state": "Both check their options when they are made, with a
 *    `TypeError` naming the option: an interval or budget that is no number in range". `kvStore` takes
 *    `minPublishInterval: "5000"`, `refreshInterval: "30000"`, `publishJitter: "1000"` (strings, as env
 *    vars give them): `"5000" >= 1000` is true.
 * 6. Same sentence, `durableObjectStore`: `flushInterval`, `verdictTtl`, `timeout` as strings are taken.
 *
 * Held (plain `it`): a host's breaker held by a call waiting to retry is not evicted (`maxHosts: 1`;
 * string, URL, Request, ky); a late probe answer after the circuit closed counts for nothing without a
 * step (generic, and fetch with each input); an adopter's `gen` passes the writer's and its later
 * transitions come after (memoryStore, `CircuitBreaker.adopt`); a clock set back: `health().errorRate`
 * counts on from the look, the budget's refill from now, a Retry-After hold waits its own length, a
 * store's open state dated a day ahead waits the reader's timeout, `CircuitBreaker.state` and a named
 * breaker through `execute` re-anchor, a short step lengthens a wait by the step, a step ahead is time
 * passed, a kvStore write after a step back is not held a day; `errorRate` counts a call 55 to 60 s at
 * three offsets in a step; `openUntil` null while half-open after a call and for a lapsed lease, then
 * `now + timeout` once the next call re-opens; unreadable options are a `ConfigError` naming the path in
 * `createResilience` (root, nested, clock, store, list), `fallback()`, `degradation()`, the proxy's
 * `resilience`, `execute`, `breaker(name)` and ky (a getter on another key); a store of your own needs
 * only `name`, `publish`, `peek`, and each optional method given as no function is a `ConfigError`
 * naming it; the proxy's route checks (no leading `/`, relative, ftp, scheme-relative, `#x`, empty `#`,
 * user, password) are TypeErrors and a good route appends path and query; the stores' NaN, ranges,
 * Infinity and non-clocks are TypeErrors naming the option; `FallbackChain.add` (alone and a layer's new
 * chain) refuses any other option, even one set to `undefined`; a hop to an open host is refused on a URL
 * object, a `Request`, a hedged chain with a degradation rewrite; a hop to a half-open host with a free
 * slot takes it, as that host's probe (string, URL, Request, ky; sent without taking it until the twentieth
 * session); with `redirects: "platform"` over real
 * sockets a Retry-After hold goes to the host that sent it; under `vi.useFakeTimers()` without a
 * `clock`, `vi.setSystemTime` back a day re-anchors an open breaker to the new date.
 *
 * Suspicious, not pinned (docs silent): the DO store with a string `flushInterval` computes
 * `now + verdictTtl` by string concatenation (read, not run); `FallbackChain.add` checks `Object.keys`, so
 * a symbol-keyed option passes; a getter that throws only on its second read passes the check and
 * escapes later (options are read again when resolved); the degradation machine's steps after a set-back
 * were not exercised.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  CircuitOpenError,
  type Clock,
  ConfigError,
  createResilience,
  isCircuitOpenError,
  memoryStore,
  type ResilienceOptions,
  type ResolvedBreakerPolicy,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { WallClock } from "../helpers/wall-clock.ts";

const SECOND = 1_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

type Answer = (url: URL, init: RequestInit | undefined) => Response | Promise<Response>;

/** A fetch answering by host, logging `METHOD host/path` for each request that left. */
function hosts(table: Record<string, Answer>, log: string[]) {
  return (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    log.push(`${method} ${url.host}${url.pathname}`);
    const answer = table[url.host];
    if (!answer) return Promise.reject(new TypeError("fetch failed"));
    return Promise.resolve(answer(url, init));
  };
}

const status =
  (code: number, headers?: Record<string, string>): Answer =>
  () =>
    new Response("x", { status: code, ...(headers ? { headers } : {}) });
const redirectTo =
  (location: string, code = 302): Answer =>
  () =>
    new Response(null, { status: code, headers: { location } });

/** An answer held until `release()`: `held.answer` resolves the latest request. */
function heldAnswer() {
  const pending: Array<(r: Response) => void> = [];
  return {
    answer: (() => new Promise<Response>((resolve) => pending.push(resolve))) as Answer,
    release(code: number) {
      pending.shift()?.(new Response("x", { status: code }));
    },
  };
}

function outcome(clock: { run<T>(p: Promise<T>): Promise<T> }, call: Promise<Response>): Promise<string> {
  return clock.run(call).then(
    (r) => String(r.status),
    (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
  );
}

function layerOn(clock: Clock, table: Record<string, Answer>, log: string[], options: ResilienceOptions = {}) {
  return createResilience({ clock, retry: false, redirects: "library", fetch: hosts(table, log), ...options });
}

type Input = "string" | "URL" | "Request";
const INPUTS: Input[] = ["string", "URL", "Request"];
const asInput = (kind: Input, url: string): string | URL | Request =>
  kind === "string" ? url : kind === "URL" ? new URL(url) : new Request(url);

const policy = (p: Partial<ResolvedBreakerPolicy>): ResolvedBreakerPolicy => ({
  failureThreshold: 1,
  successThreshold: 1,
  timeout: SECOND,
  halfOpenMaxCalls: 1,
  timeWindow: 30 * SECOND,
  probeTimeout: SECOND,
  failureRate: undefined,
  minimumCalls: 100,
  ...p,
});

/** Thrown by `make`, or "nothing". */
/** What `f` throws, or what the promise it returns rejects with (`execute` rejects, since the thirty-third session). */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (error) {
    return error;
  }
  return undefined;
}

function thrown(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  return "nothing";
}

const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
const throwing = (key: string, base: object = {}): object =>
  Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      throw new Error("boom");
    },
  });

// ---------------------------------------------------------------------------------------------
describe("breakers.md: a host that calls hold (… or waiting to retry) is never the one evicted", () => {
  const paths: Array<Input | "ky"> = [...INPUTS, "ky"];
  it.each(paths)(
    "%s: a's breaker, held by a call in its backoff, survives a call to b with maxHosts 1",
    async (kind) => {
      const clock = new TestClock(T0);
      const log: string[] = [];
      const layer = layerOn(clock, { "a.test": status(503), "b.test": status(200) }, log, {
        retry: { maxAttempts: 2, initialDelay: SECOND, maxDelay: SECOND, jitter: "none" },
        budget: false,
        breaker: { failureThreshold: 2, maxHosts: 1 },
      });
      const events: string[] = [];
      layer.on("breaker", (e) => events.push(`${e.key} ${e.to}`));
      const call =
        kind === "ky"
          ? createClient({ resilience: layer })
              .get("http://a.test/")
              .then(
                (r) => r.status,
                (e: { response?: Response }) => e.response?.status,
              )
          : layer.fetch(asInput(kind, "http://a.test/")).then((r) => r.status);
      await clock.advance(10);
      expect(log).toEqual(["GET a.test/"]); // first attempt failed, waiting to retry
      expect(await outcome(clock, layer.fetch("http://b.test/"))).toBe("200");
      await clock.advance(SECOND);
      expect(await clock.run(call)).toBe(503);
      // Both failures reached one breaker: failureThreshold 2 opened it.
      expect(events).toEqual(["a.test open"]);
    },
  );
});

// ---------------------------------------------------------------------------------------------
describe("breakers.md: a probe that answers after its lease ran out, the circuit closed since, counts for nothing", () => {
  it("CircuitBreaker on its own: the late failure leaves the closed circuit closed", async () => {
    const clock = new TestClock(T0);
    const cb = new CircuitBreaker("k", policy({}), clock);
    cb.failure(cb.acquire(), "boom"); // open until T0 + 1 s
    await clock.advance(SECOND);
    const late = cb.acquire(); // probe, lease T0 + 2 s
    await clock.advance(SECOND + 1);
    expect(cb.state).toBe("open"); // lease ran out
    expect(cb.tryAcquire()).toBeUndefined(); // re-opens for timeout
    await clock.advance(SECOND);
    cb.success(cb.acquire()); // closes
    expect(cb.state).toBe("closed");
    cb.failure(late, "late");
    expect([cb.state, cb.toJSON().failures.length]).toEqual(["closed", 0]);
  });

  it.each(INPUTS)(
    "resilience.fetch (%s): a late 503 of an expired probe after the circuit closed is not counted",
    async (kind) => {
      const clock = new TestClock(T0);
      const log: string[] = [];
      const held = heldAnswer();
      let mode: "fail" | "held" | "ok" = "fail";
      const layer = layerOn(
        clock,
        {
          "b.test": (u, i) =>
            mode === "fail" ? status(503)(u, i) : mode === "ok" ? status(200)(u, i) : held.answer(u, i),
        },
        log,
        { breaker: { failureThreshold: 1, successThreshold: 1, timeout: SECOND, probeTimeout: SECOND } },
      );
      const events: string[] = [];
      layer.on("breaker", (e) => events.push(`${e.from}->${e.to}`));
      await outcome(clock, layer.fetch("http://b.test/"));
      await clock.advance(SECOND);
      mode = "held";
      const late = layer.fetch(asInput(kind, "http://b.test/late"));
      await clock.advance(SECOND + 1);
      expect(await outcome(clock, layer.fetch("http://b.test/x"))).toBe("CircuitOpenError b.test");
      await clock.advance(SECOND);
      mode = "ok";
      expect(await outcome(clock, layer.fetch("http://b.test/probe"))).toBe("200");
      held.release(503);
      expect(await outcome(clock, late)).toBe("503");
      const b = layer.health().breakers["b.test"];
      expect([b?.state, b?.consecutiveFailures]).toEqual(["closed", 0]);
      expect(events.at(-1)).toBe("half_open->closed");
    },
  );

  // docs/breakers.md, the opening section: "…if it answers after its lease ran out and the circuit has
  // closed again since, that answer counts for nothing"; "A clock set back": "the probes out are given up
  // as expired leases are (the circuit re-opens for `timeout`)". A probe out when the clock is set back
  // is given up (the circuit re-opens); the circuit then closes through new probes. The given-up probe's
  // late 503 is counted as a closed-state failure and re-opens the circuit: its lease, dated before the
  // step, lies ahead of the clock now, and `failure` in src/policies/breaker-state.ts ignores a late
  // probe's answer only when `lease <= now`, while `leaseOver` (which gave it up) also counts a lease
  // too far ahead as over.
  it("1. a probe given up by a clock set back answers late after the circuit closed: it re-opens the circuit (generic and fetch)", async () => {
    // CircuitBreaker on its own.
    const wall = new WallClock(T0);
    const cb = new CircuitBreaker("k", policy({}), wall);
    cb.failure(cb.acquire(), "boom");
    await wall.advance(SECOND);
    const late = cb.acquire(); // probe out
    wall.step(-DAY);
    expect(cb.state).toBe("open"); // given up at the first look
    await wall.advance(SECOND);
    cb.success(cb.acquire()); // a new probe closes it
    expect(cb.state).toBe("closed");
    cb.failure(late, "late answer");
    const generic = cb.state;
    // resilience.fetch: the same story through a layer.
    const clock = new WallClock(T0);
    const log: string[] = [];
    const held = heldAnswer();
    let mode: "fail" | "held" | "ok" = "fail";
    const layer = layerOn(
      clock,
      {
        "b.test": (u, i) =>
          mode === "fail" ? status(503)(u, i) : mode === "ok" ? status(200)(u, i) : held.answer(u, i),
      },
      log,
      { breaker: { failureThreshold: 1, successThreshold: 1, timeout: SECOND, probeTimeout: 30 * SECOND } },
    );
    await outcome(clock, layer.fetch("http://b.test/"));
    await clock.advance(SECOND);
    mode = "held";
    const probe = layer.fetch("http://b.test/late");
    await clock.advance(1);
    clock.step(-DAY);
    expect(layer.health().breakers["b.test"]?.state).toBe("open"); // given up
    await clock.advance(SECOND);
    mode = "ok";
    expect(await outcome(clock, layer.fetch("http://b.test/probe"))).toBe("200");
    expect(layer.health().breakers["b.test"]?.state).toBe("closed");
    held.release(503);
    await outcome(clock, probe);
    expect([generic, layer.health().breakers["b.test"]?.state]).toEqual(["closed", "closed"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("breakers.md: a breaker that adopts a shared store's state moves past the other breaker's gen", () => {
  it("memoryStore: the adopter's gen passes the writer's, and its own later transitions come after", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    let code = 503;
    const store = memoryStore();
    const table = { "b.test": () => new Response("x", { status: code }) };
    const options: ResilienceOptions = {
      store,
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: SECOND },
    };
    const images = layerOn(clock, table, log, options);
    // images: open, half-open, closed, open again: gen 4.
    await outcome(clock, images.fetch("http://b.test/"));
    await clock.advance(SECOND);
    code = 200;
    await outcome(clock, images.fetch("http://b.test/"));
    code = 503;
    await outcome(clock, images.fetch("http://b.test/"));
    const writer = images.health().breakers["b.test"]?.gen ?? 0;
    expect(writer).toBe(4);
    const videos = layerOn(clock, table, log, options);
    expect(await outcome(clock, videos.fetch("http://b.test/"))).toBe("CircuitOpenError b.test");
    const adopted = videos.health().breakers["b.test"]?.gen ?? 0;
    expect(adopted).toBeGreaterThan(writer);
    const seen: BreakerEvent[] = [];
    videos.on("breaker", (e) => seen.push(e));
    await clock.advance(SECOND);
    code = 200;
    expect(await outcome(clock, videos.fetch("http://b.test/"))).toBe("200");
    expect(seen.map((e) => e.to)).toEqual(["half_open", "closed"]);
    expect(seen.every((e) => e.gen > writer)).toBe(true);
    // images reads the close (it came after its own last change): closed there too.
    expect(images.health().breakers["b.test"]?.state).toBe("closed");
  });

  it("CircuitBreaker.adopt on its own: gen past the snapshot's", () => {
    const clock = new TestClock(T0);
    const other = new CircuitBreaker("k", policy({}), clock);
    for (let i = 0; i < 3; i++) {
      other.failure(other.acquire(), "x");
      other.reset();
    }
    other.failure(other.acquire(), "x");
    const snapshot = other.toJSON();
    const cb = new CircuitBreaker("k", policy({}), clock);
    cb.adopt(snapshot);
    expect([cb.state, cb.toJSON().gen > snapshot.gen]).toEqual(["open", true]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("breakers.md: a clock set back (windows, holds, stores, views)", () => {
  it("health().errorRate: a look right after a day's step back, and the failures before it are gone 60 s later", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503), "c.test": status(200) }, log, { breaker: false });
    for (let i = 0; i < 3; i++) await outcome(clock, layer.fetch("http://a.test/"));
    expect(layer.health().errorRate).toBe(1);
    clock.step(-DAY);
    expect(layer.health().errorRate).toBe(1); // the first look: the window counts on from now
    await clock.advance(61 * SECOND);
    expect(layer.health().errorRate).toBe(0);
  });

  // docs/breakers.md "A clock set back": "Deadlines … and windows (the rate rule's, `health().errorRate`'s,
  // …) … each one notices the step at its first look after it (a call, `health()`, a breaker's `state`):
  // … every window and pace counts on from now." The rate rule's window does not notice a `health()` look
  // (nor a call refused or admitted without an outcome): `breaker.windowCounts()` reads
  // `windowCounts(w, now, …)`, whose `stale` is `max(0, negative)` = 0 while `now < w.start`, and nothing
  // moves `w.start` until an outcome is recorded (src/policies/breaker-state.ts `record`). So after a day's
  // step back, looked at at once, the failures from before the step still count 11 s later with a 10 s
  // window: `health()` shows them, and one more failure trips the rate rule on 4 of 4 calls.
  it("2. the rate rule's window: after a day's step back and a health() look, failures older than timeWindow still count", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503) }, log, {
      breaker: { failureThreshold: 100, failureRate: 0.5, minimumCalls: 4, timeWindow: 10 * SECOND },
    });
    for (let i = 0; i < 3; i++) await outcome(clock, layer.fetch("http://a.test/"));
    expect(layer.health().breakers["a.test"]?.failureCount).toBe(3);
    clock.step(-DAY);
    layer.health(); // the first look after the step
    await clock.advance(11 * SECOND); // longer than timeWindow since that look
    const shown = layer.health().breakers["a.test"]?.failureCount;
    await outcome(clock, layer.fetch("http://a.test/"));
    expect([shown, layer.health().breakers["a.test"]?.state]).toEqual([0, "closed"]);
  });

  it("the retry budget's refill counts on from now after a step back", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503) }, log, {
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
      budget: { ratio: 0, minPerSecond: 1 },
      breaker: false,
    });
    await outcome(clock, layer.fetch("http://a.test/"));
    expect(layer.health().budget?.tokens).toBe(0);
    clock.step(-DAY);
    expect(layer.health().budget?.tokens).toBe(0);
    await clock.advance(SECOND);
    expect(layer.health().budget?.tokens).toBe(1);
  });

  it("a Retry-After hold, the clock set back a day: held the hold's length from the first look, not a day", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503, { "retry-after": "3600" }) }, log, {
      retry: { maxRetryAfter: SECOND },
    });
    await outcome(clock, layer.fetch("http://a.test/"));
    await clock.advance(10 * SECOND);
    clock.step(-DAY);
    const error = await clock.run(layer.fetch("http://a.test/")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(((error as CircuitOpenError).retryAt - clock.now()) / SECOND).toBe(3600);
  });

  it("an open state in a store written by a clock a day ahead: the reader waits its own timeout from now", async () => {
    const reader = new TestClock(T0);
    const ahead: Clock = { now: () => reader.now() + DAY, setTimer: (fn, ms) => reader.setTimer(fn, ms) };
    const log: string[] = [];
    const store = memoryStore();
    const options: ResilienceOptions = { store, breaker: { failureThreshold: 1, timeout: 30 * SECOND } };
    const writer = layerOn(ahead, { "b.test": status(503) }, log, options);
    await outcome(reader, writer.fetch("http://b.test/"));
    const here = layerOn(reader, { "b.test": status(200) }, log, options);
    const error = await reader.run(here.fetch("http://b.test/")).catch((e: unknown) => e);
    expect(((error as CircuitOpenError).retryAt - reader.now()) / SECOND).toBe(30);
    expect((here.health().breakers["b.test"]?.openUntil ?? 0) - reader.now()).toBe(30 * SECOND);
  });

  it("CircuitBreaker's `state` and a named breaker's execute: the first look re-anchors an open spell", async () => {
    const clock = new WallClock(T0);
    const cb = new CircuitBreaker("k", policy({ timeout: 30 * SECOND }), clock);
    cb.failure(cb.acquire(), "x");
    clock.step(-DAY);
    expect(cb.state).toBe("open");
    expect(cb.retryAt() - clock.now()).toBe(30 * SECOND);
    await clock.advance(30 * SECOND);
    expect(cb.state).toBe("half_open");
    const layer = createResilience({ clock, retry: false });
    const gpu = layer.breaker("gpu", { failureThreshold: 1, timeout: 30 * SECOND });
    await gpu.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    clock.step(-DAY);
    const refused = await layer.execute(() => Promise.resolve(1), { breaker: "gpu" }).catch((e: unknown) => e);
    // With one attempt the refusal is the CircuitOpenError itself (the work never ran).
    const open = refused as CircuitOpenError;
    expect([open instanceof CircuitOpenError, (open.retryAt - clock.now()) / SECOND]).toEqual([true, 30]);
    await clock.advance(30 * SECOND);
    expect(await layer.execute(() => Promise.resolve(1), { breaker: "gpu" })).toBe(1);
  });

  it("a step back shorter than the time since the change lengthens the wait by the step; a step ahead is time passed", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "b.test": status(503) }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
    });
    await outcome(clock, layer.fetch("http://b.test/"));
    await clock.advance(20 * SECOND);
    clock.step(-5 * SECOND);
    expect((layer.health().breakers["b.test"]?.openUntil ?? 0) - clock.now()).toBe(15 * SECOND); // 10 s + the 5 s step
    clock.step(15 * SECOND);
    expect(layer.health().breakers["b.test"]?.state).toBe("half_open");
  });

  it("kvStore: a write after a day's step back is not held for the day (minPublishInterval from now)", async () => {
    const clock = new WallClock(T0);
    const puts: string[] = [];
    const kv = {
      getWithMetadata: async () => ({ value: null, metadata: null }),
      put: async (key: string) => {
        puts.push(key);
      },
    };
    const ctx = { waitUntil: (_p: Promise<unknown>) => {} };
    const store = kvStore(kv, { clock, ctx, publishJitter: 0, random: () => 0 });
    const log: string[] = [];
    let code = 503;
    const layer = layerOn(clock, { "b.test": () => new Response("x", { status: code }) }, log, {
      store,
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: SECOND },
    });
    await outcome(clock, layer.fetch("http://b.test/"));
    await clock.advance(10);
    expect(puts.length).toBe(1);
    clock.step(-DAY);
    layer.health(); // the first look: one more spell of 1 s from now
    await clock.advance(2 * SECOND);
    code = 200;
    await outcome(clock, layer.fetch("http://b.test/")); // probe closes: a transition to publish
    await clock.advance(6 * SECOND);
    expect(puts.length).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
describe("health-and-events.md: errorRate in twelve 5-second steps; openUntil of a half-open breaker", () => {
  it.each([0, 2_500, 4_999])("a failed call %i ms into a step counts for 55 to 60 s", async (offset) => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": status(503), "c.test": status(200) }, log, { breaker: false });
    await clock.advance(offset);
    await outcome(clock, layer.fetch(new Request("http://a.test/")));
    const at = clock.now();
    await outcome(clock, layer.fetch("http://c.test/"));
    await clock.advance(at + 55 * SECOND - 1 - clock.now());
    expect(layer.health().errorRate).toBe(0.5);
    await clock.advance(at + 60 * SECOND - clock.now());
    expect(layer.health().errorRate).toBe(0);
  });

  // docs/health-and-events.md: "an open one until when it stays open (`openUntil`; `null` while
  // half-open, …)" and, just above, a breaker is shown "as a call would find it now: an open one whose
  // `timeout` passed reads `half_open`". That breaker reads `half_open` with the `openUntil` of its past
  // spell: src/http/health.ts `describe` takes `state` from the view but `openUntil` from the stored
  // snapshot, which is still "open" until a call comes. Per-host and named breakers alike.
  it("3. a breaker that reads half_open because its timeout passed shows openUntil null (host and named)", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "b.test": status(503) }, log, { breaker: { failureThreshold: 1, timeout: SECOND } });
    await outcome(clock, layer.fetch("http://b.test/"));
    const gpu = layer.breaker("gpu", { failureThreshold: 1, timeout: SECOND });
    await gpu.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    await clock.advance(SECOND + 1);
    const { breakers } = layer.health();
    expect([breakers["b.test"]?.state, breakers.gpu?.state]).toEqual(["half_open", "half_open"]);
    expect([breakers["b.test"]?.openUntil, breakers.gpu?.openUntil]).toEqual([null, null]);
  });

  it("half-open after a call: openUntil null; a probe's lease ran out: reads open, null, until the next call re-opens it", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const held = heldAnswer();
    let mode: "fail" | "held" = "fail";
    const layer = layerOn(
      clock,
      { "b.test": (u, i) => (mode === "fail" ? status(503)(u, i) : held.answer(u, i)) },
      log,
      {
        breaker: { failureThreshold: 1, timeout: SECOND, probeTimeout: SECOND, halfOpenMaxCalls: 1 },
      },
    );
    await outcome(clock, layer.fetch("http://b.test/"));
    await clock.advance(SECOND);
    mode = "held";
    const probe = layer.fetch("http://b.test/p");
    await clock.advance(1);
    let b = layer.health().breakers["b.test"];
    expect([b?.state, b?.openUntil]).toEqual(["half_open", null]);
    await clock.advance(SECOND);
    b = layer.health().breakers["b.test"];
    expect([b?.state, b?.openUntil]).toEqual(["open", null]);
    expect(await outcome(clock, layer.fetch("http://b.test/x"))).toBe("CircuitOpenError b.test");
    b = layer.health().breakers["b.test"];
    expect([b?.state, b?.openUntil]).toEqual(["open", clock.now() + SECOND]);
    held.release(200);
    await outcome(clock, probe);
  });
});

// ---------------------------------------------------------------------------------------------
describe("options.md: a value that cannot be read is a ConfigError naming its path", () => {
  const cases: Array<[string, () => unknown, string]> = [
    ["a getter on retry.maxAttempts", () => createResilience({ retry: throwing("maxAttempts") }), "retry.maxAttempts"],
    ["a revoked Proxy as retry", () => createResilience({ retry: revoked() as never }), "retry"],
    ["a getter on the root's fetch", () => createResilience(throwing("fetch") as never), "fetch"],
    ["a getter on clock.now", () => createResilience({ clock: throwing("now") as never }), "clock.now"],
    [
      "a getter on store.peek",
      () => createResilience({ store: throwing("peek", { name: "x", publish() {} }) as never }),
      "store.peek",
    ],
    [
      "a revoked Proxy as crossOriginHeaders",
      () => createResilience({ crossOriginHeaders: revoked() as never }),
      "crossOriginHeaders",
    ],
    [
      "fallback(): a getter on an endpoint's url",
      () => fallback([{ name: "c", endpoints: [throwing("url", { name: "e" }) as never] }]),
      "fallback.0.endpoints.0.url",
    ],
    ["fallback(): a revoked Proxy as a chain", () => fallback([revoked() as never]), "fallback.0"],
    [
      "degradation(): a getter on levelHeader",
      () => degradation(throwing("levelHeader") as never),
      "degradation.levelHeader",
    ],
    [
      "resilientProxy: the layer's options with a getter",
      () =>
        resilientProxy({
          routes: [{ path: "/", upstream: "http://a.test" }],
          resilience: { retry: throwing("maxAttempts") },
        }),
      "resilience.retry.maxAttempts",
    ],
    [
      "execute(fn, options) with a getter",
      () => createResilience().execute(() => 1, throwing("retry") as never),
      "execute.retry",
    ],
    [
      "breaker(name, options) with a getter",
      () => createResilience().breaker("gpu", throwing("timeout") as never),
      'breaker("gpu").timeout',
    ],
    [
      "createClient: the layer's options with a getter on retry",
      () => createClient({ resilience: throwing("retry") as never }),
      "resilience.retry",
    ],
  ];
  it.each(cases)("%s", async (_name, make, path) => {
    const error = await caught(make);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });

  // docs/options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a
  // `ConfigError` naming its path too." docs/ky.md: `createClient({ resilience })` takes a layer or the
  // layer's options. Given options whose `fetch` getter throws, or a revoked Proxy, the client's
  // `isResilience` test (src/ky/index.ts) reads `value.fetch` first and the caller's own error (or the
  // Proxy's TypeError) escapes; `createResilience` with the same object throws `ConfigError("fetch")`.
  it("4. createClient: the layer's options with a getter on fetch, or a revoked Proxy, are a ConfigError", () => {
    const viaLayer = thrown(() => createResilience(throwing("fetch") as never));
    expect(viaLayer).toBeInstanceOf(ConfigError); // held
    const getter = thrown(() => createClient({ resilience: throwing("fetch") as never }));
    const proxy = thrown(() => createClient({ resilience: revoked() as never }));
    expect([getter instanceof ConfigError, proxy instanceof ConfigError]).toEqual([true, true]);
  });

  it("a store of your own: name, publish and peek suffice; a non-function optional method is a ConfigError", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const seen: string[] = [];
    const own = { name: "own", publish: (key: string) => seen.push(key), peek: () => undefined };
    const layer = layerOn(clock, { "b.test": status(503) }, log, { store: own, breaker: { failureThreshold: 1 } });
    await outcome(clock, layer.fetch("http://b.test/"));
    expect(seen).toEqual(["b.test"]);
    for (const method of ["record", "acquireProbe", "bindContext", "connect", "configure", "publish", "peek"]) {
      const error = thrown(() => createResilience({ store: { ...own, [method]: "yes" } as never }));
      expect([method, (error as ConfigError).path]).toEqual([method, `store.${method}`]);
    }
    expect((thrown(() => createResilience({ store: { publish() {}, peek() {} } as never })) as ConfigError).path).toBe(
      "store.name",
    );
  });
});

// ---------------------------------------------------------------------------------------------
describe("cloudflare.md: what resilientProxy and the stores check when they are made", () => {
  const route =
    (upstream: string, path = "/api") =>
    () =>
      resilientProxy({ routes: [{ path, upstream }] });
  it.each([
    ["a path without a leading /", route("http://a.test", "api")],
    ["a relative upstream", route("/v1")],
    ["an ftp upstream", route("ftp://a.test/v1")],
    ["a scheme-relative upstream", route("//a.test/v1")],
    ["a #fragment", route("http://a.test/v1#x")],
    ["an empty #fragment", route("http://a.test/v1#")],
    ["a user and password", route("http://u:p@a.test/v1")],
    ["a user alone", route("http://u@a.test/v1")],
    ["a password alone", route("http://:p@a.test/v1")],
  ])("routes: %s is a TypeError when made", (_name, make) => {
    expect(thrown(make)).toBeInstanceOf(TypeError);
  });

  it("a good route, in Node with an empty env: the path below and the query go after the upstream", async () => {
    const log: string[] = [];
    const urls: string[] = [];
    const fetch = (input: RequestInfo | URL) => {
      urls.push(input instanceof Request ? input.url : String(input));
      return hosts({ "a.test": status(200) }, log)(input);
    };
    const proxy = resilientProxy({ routes: [{ path: "/api", upstream: "http://a.test/v1" }], resilience: { fetch } });
    const res = await proxy.fetch(new Request("https://p.example/api/x/y?k=1"), {}, { waitUntil: () => {} });
    expect([res.status, urls]).toEqual([200, ["http://a.test/v1/x/y?k=1"]]);
  });

  const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
  const ns = { idFromName: () => ({}), get: () => ({ fetch: async () => Response.json({}) }) };
  it.each([
    ["kvStore", "minPublishInterval", () => kvStore(kv, { minPublishInterval: 500 })],
    ["kvStore", "refreshInterval", () => kvStore(kv, { refreshInterval: Number.NaN })],
    ["kvStore", "publishJitter", () => kvStore(kv, { publishJitter: Number.POSITIVE_INFINITY })],
    ["kvStore", "writeBudget", () => kvStore(kv, { writeBudget: 1.5 })],
    ["kvStore", "clock", () => kvStore(kv, { clock: { now: () => 0 } as never })],
    ["durableObjectStore", "flushInterval", () => durableObjectStore(ns, { flushInterval: 0 })],
    ["durableObjectStore", "verdictTtl", () => durableObjectStore(ns, { verdictTtl: -1 })],
    ["durableObjectStore", "timeout", () => durableObjectStore(ns, { timeout: Number.POSITIVE_INFINITY })],
    ["durableObjectStore", "flushThreshold", () => durableObjectStore(ns, { flushThreshold: Number.NaN })],
    ["durableObjectStore", "clock", () => durableObjectStore(ns, { clock: revoked() as never })],
  ])("%s: a bad %s is a TypeError naming it", (_store, option, make) => {
    const error = thrown(make);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toContain(option);
  });

  // docs/cloudflare.md, "Sharing state": "Both check their options when they are made, with a
  // `TypeError` naming the option: an interval or budget that is no number in range". A string is no
  // number; it is what `env.FLUSH_MS` gives. `kvStore` tests `!(value >= 1000)` and `durableObjectStore`
  // `!(value >= min && value < Infinity)`: JavaScript's `"5000" >= 1000` is true, so both take the
  // string. src/cloudflare/kv-store.ts, src/cloudflare/durable-object-store.ts.
  it("5. kvStore: a string interval ('5000', as an env var gives it) is a TypeError", () => {
    const errors = [
      thrown(() => kvStore(kv, { minPublishInterval: "5000" as never })),
      thrown(() => kvStore(kv, { refreshInterval: "30000" as never })),
      thrown(() => kvStore(kv, { publishJitter: "1000" as never })),
    ];
    expect(errors.map((e) => e instanceof TypeError)).toEqual([true, true, true]);
  });

  // Same sentence. With `flushInterval: "5000"` the default `verdictTtl` is that string, and a closed
  // verdict's expiry becomes `now + verdictTtl` (src/cloudflare/durable-object-store.ts): string concatenation,
  // by reading, not measured here.
  it("6. durableObjectStore: a string interval is a TypeError", () => {
    const errors = [
      thrown(() => durableObjectStore(ns, { flushInterval: "5000" as never })),
      thrown(() => durableObjectStore(ns, { verdictTtl: "5000" as never })),
      thrown(() => durableObjectStore(ns, { timeout: "250" as never })),
    ];
    expect(errors.map((e) => e instanceof TypeError)).toEqual([true, true, true]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("fallback.md: .add(fn, { name, expectedQuality }) (any other option is a TypeError)", () => {
  it("new FallbackChain and a layer's new chain refuse a misspelt or extra option, even one set to undefined", () => {
    const layer = createResilience({ fallback: fallback([]) });
    for (const make of [
      () => new FallbackChain<number, number>("own"),
      () => layer.fallback.chain<number, number>("new"),
    ]) {
      const chain = make();
      for (const options of [
        { name: "a", expectedquality: 1 },
        { name: "b", weight: 2 },
        { name: "c", timeout: undefined },
      ]) {
        expect(thrown(() => chain.add((x) => x, options as never))).toBeInstanceOf(TypeError);
      }
      chain.add((x) => x, { name: "ok", expectedQuality: 0.5 });
      expect(chain.ordered()).toEqual(["ok"]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe("retry.md: a redirect's hop to a host whose breaker refuses calls", () => {
  /** b.test opened by a direct 503 (threshold 1). */
  async function withOpenB(options: ResilienceOptions = {}, table: Record<string, Answer> = {}) {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(
      clock,
      { "a.test": redirectTo("http://b.test/x", 307), "b.test": status(503), ...table },
      log,
      {
        breaker: { failureThreshold: 1, timeout: 30 * SECOND },
        ...options,
      },
    );
    expect(await outcome(clock, layer.fetch("http://b.test/open"))).toBe("503");
    log.length = 0;
    return { clock, log, layer };
  }

  it.each(["URL", "Request"] as const)(
    "%s input: refused with a CircuitOpenError naming b, nothing sent there",
    async (kind) => {
      const { clock, log, layer } = await withOpenB();
      expect(await outcome(clock, layer.fetch(asInput(kind, "http://a.test/")))).toBe("CircuitOpenError b.test");
      expect(log).toEqual(["GET a.test/"]);
      expect(layer.health().breakers["a.test"]?.consecutiveFailures).toBe(0);
    },
  );

  it("a hedged chain whose endpoints both redirect to the open host, and a degradation rewrite: refused, nothing sent to b", async () => {
    const { clock, log, layer } = await withOpenB(
      {
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 10 },
            endpoints: [
              { name: "e1", url: "http://a.test/v1" },
              { name: "e2", url: "http://c.test/v1" },
            ],
          },
        ]),
        degradation: degradation(),
      },
      { "c.test": redirectTo("http://b.test/y", 307) },
    );
    expect(layer.degradation).toBeDefined();
    layer.degradation?.setLevel("low");
    const result = await outcome(
      clock,
      layer.fetch("http://a.test/v1/jobs", {
        method: "POST",
        body: JSON.stringify({ steps: 50, width: 1024 }),
        headers: { "content-type": "application/json", "idempotency-key": "k1" },
      }),
    );
    // Each endpoint's hop is refused (the first host's redirect its success): the chain is exhausted.
    expect(result).toBe("FallbackExhaustedError");
    expect(log).toEqual(["POST a.test/v1/jobs", "POST c.test/v1/jobs"]);
  });

  it.each([...INPUTS, "ky"] as const)(
    "%s: a hop to a half-open host with a free slot takes it: the hop is that host's probe",
    async (kind) => {
      const held = heldAnswer();
      const { clock, log, layer } = await withOpenB(
        { breaker: { failureThreshold: 1, timeout: SECOND, halfOpenMaxCalls: 1, successThreshold: 1 } },
        {
          "b.test": (u, i) => (u.pathname === "/open" ? status(503)(u, i) : held.answer(u, i)),
        },
      );
      await clock.advance(SECOND);
      const hop =
        kind === "ky"
          ? createClient({ resilience: layer })
              .get("http://a.test/")
              .then((r) => r)
          : layer.fetch(asInput(kind, "http://a.test/"));
      await clock.advance(1);
      expect(log).toEqual(["GET a.test/", "GET b.test/x"]);
      // The hop in flight holds b's one probe slot: a direct call to b is refused, nothing sent.
      expect(await outcome(clock, layer.fetch("http://b.test/probe"))).toBe("CircuitOpenError b.test");
      expect(log).toEqual(["GET a.test/", "GET b.test/x"]);
      held.release(200);
      expect(await outcome(clock, hop)).toBe("200");
      // The probe succeeded: b is closed.
      expect(layer.health().breakers["b.test"]?.state).toBe("closed");
    },
  );
});

// ---------------------------------------------------------------------------------------------
const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);
const answer =
  (code: number, headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end("x");
  };

describe("retry.md: where the platform follows redirects, the hold goes to the host that sent the answer", () => {
  it("redirects: 'platform' over real sockets: b's Retry-After holds b, not a", async () => {
    B.on(answer(503, { "retry-after": "3600" }));
    A.on(answer(302, { location: `${B.base}/x` }));
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: { maxRetryAfter: SECOND }, redirects: "platform" });
    expect((await clock.run(layer.fetch(`${A.base}/`))).status).toBe(503);
    const hostA = new URL(A.base).host;
    const hostB = new URL(B.base).host;
    const breakers = layer.health().breakers;
    expect([breakers[hostA]?.state, breakers[hostB]?.state]).toEqual(["closed", "open"]);
    expect(breakers[hostB]?.openUntil).toBe(T0 + 3_600 * SECOND);
  });
});

// ---------------------------------------------------------------------------------------------
describe("testing.md: without a clock, vi.setSystemTime sets the layer's time", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a date set earlier than one the layer saw: an open breaker waits its timeout again from that date", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    const log: string[] = [];
    const layer = createResilience({
      retry: false,
      fetch: hosts({ "b.test": status(503) }, log),
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
    });
    expect((await layer.fetch("http://b.test/")).status).toBe(503);
    vi.setSystemTime(T0 + 10 * SECOND);
    expect(layer.health().breakers["b.test"]?.openUntil).toBe(T0 + 30 * SECOND);
    vi.setSystemTime(T0 - DAY);
    const refused = await layer.fetch("http://b.test/").catch((e: unknown) => e);
    expect((refused as CircuitOpenError).retryAt).toBe(T0 - DAY + 30 * SECOND);
    vi.setSystemTime(T0 - DAY + 30 * SECOND);
    expect(layer.health().breakers["b.test"]?.state).toBe("half_open");
    expect(log).toEqual(["GET b.test/"]);
  });
});
