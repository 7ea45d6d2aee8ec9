import { readFileSync } from "node:fs";
/**
 * Outside-in attack on the sixty-first session's last fixes (git diff 902101d0^..HEAD): the layer's view of a clock of
 * yours (`ownClock`), backoff delays kept in [0, maxDelay], options.md's new sentences on `clock`, `random` and
 * `fetch`, and a store of your own's snapshot read once into a copy.
 *
 * Docs:
 * - docs/options.md `clock`: "a timer the layer cancels never runs its callback, even when `setTimer` returns no
 *   function that cancels or one that throws (the timer runs out and does nothing); what `now` or `setTimer` throws
 *   ends the call with it, even with an answer in hand, since the layer cannot wait without them: as the `cause` of a
 *   `RetryExhaustedError`, or as it is when thrown arming `timeout.total`".
 * - docs/options.md `random`: "a draw outside it (1.5, a negative, NaN, Infinity) still waits from 0 to
 *   `retry.maxDelay`; what it throws ends the call with it, as the `cause` of a `RetryExhaustedError`, even with an
 *   answer in hand"; `retry.maxDelay` "cap on any computed delay".
 * - docs/options.md `fetch`: "a fetch of another copy of undici (the `undici` package's own) cannot read the platform's
 *   `Request`, which the layer hands on as it is when it has no body to replay (a GET, every ky GET): such a call fails
 *   as a network error, retried and counted, so pass the platform's fetch, or a wrapper that gives that copy a URL and
 *   an init".
 * - docs/retry.md: "A `Retry-After` header on 429/503 ... replaces the computed delay"; "`retry(fn, options)` ... is
 *   the same loop on its own"; "rejects the call, never throws, as fetch's own mistakes do". RetryCallOptions.signal:
 *   "Aborting stops the current wait at once and rejects with `signal.reason`".
 * - docs/breakers.md: "The layer reads each field it merges once, into a copy".
 *
 * How: root, ./fallback, ./ky, ./cloudflare (`resilientProxy`, `kvStore` over test/cloudflare/fake-kv.ts),
 * ./policies (`retry`, `backoffDelay`, `exponentialDelay`, `CircuitBreaker`), `TestClock`; clocks whose `setTimer`
 * hands back odd values and whose timers the test fires by hand; undici's own `fetch`; two servers on 127.0.0.1.
 *
 * Paths: plain call, `Request` input, ky, proxy (routes and health endpoint), chain, hedge, `execute`, `retry(fn)`,
 * `CircuitBreaker`, Retry-After of 30 days in steps, two layers over one clock and over one store, kvStore.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-first session 1 to 3 were fixed
 * (the proxy, `retry(fn)` and `FallbackChain` take a clock of yours as the layer does; `fetch` and `execute` read
 * the clock inside their `try`), and 4 and 5 answered by options.md, which now says the call rejects with what was
 * thrown "as it is or as the `cause`" and a chain moves on; so plain `it`):
 * 1. options.md `clock` "a timer the layer cancels never runs its callback, even when `setTimer` returns ... one that
 *    throws". Observed: `resilientProxy({ resilience: { clock } })`'s health endpoint, its token a Secrets Store
 *    binding, arms its 5 s wait for `get()` on the raw clock and hands the cancel to `.finally(cancel)`: a cancel that
 *    throws becomes an unhandled rejection on every health request (a Node process with the default mode ends).
 *    Test "defect 1: …".
 * 2. retry.md "`retry(fn, options)` ... is the same loop on its own" / RetryCallOptions.signal "Aborting stops the
 *    current wait at once and rejects with `signal.reason`". Observed: with a clock whose `setTimer` returns no
 *    function, `retry(fn, { clock, signal })` aborted in its backoff stays pending, and "cancel is not a function"
 *    is thrown from the abort listener as an uncaught exception: the bug the layer's view fixed, left in ./policies.
 *    Test "defect 2: …".
 * 3. options.md `clock` "what `now` ... throws ends the call with it ... as the `cause` of a `RetryExhaustedError`, or
 *    as it is when thrown arming `timeout.total`"; retry.md "rejects the call, never throws". Observed:
 *    `resilience.fetch(url)` (a string or a `Request`) and `resilience.execute(fn)` throw the clock's error
 *    synchronously (resilient-fetch.ts and execute.ts read `now()` before any promise): no call, `.catch()` hears
 *    nothing. Test "defect 3: …".
 * 4. options.md `random` "what it throws ends the call with it, as the `cause` of a `RetryExhaustedError`". Observed:
 *    `execute` rejects with the bare error, no `RetryExhaustedError`. Test "defect 4: …".
 * 5. options.md `random` and `clock`, the same sentences, "ends the call with it". Observed: on a chain (./fallback)
 *    the primary's 503 whose backoff draw (or timer) throws moves on: the spare serves 200. Test "defect 5: …".
 *
 * Held (plain `it`):
 * - A `setTimer` returning `undefined`, a number, an object with `cancel`, a Promise, a cancel that throws (or throws
 *   the second time): with both timeouts and a 5 s hedge, plain, `Request`, ky, proxy, chain and `execute` serve;
 *   every timer ever armed, fired by hand after, does nothing (no request, hedge, event or failure counted). An
 *   abort in a backoff rejects at once with its reason (fetch, `execute`); firing the timers then sends nothing.
 * - `TestClock.pending()`/`waitForTimers` count right (1 in a backoff, 0 after an abort or timed calls), a frozen
 *   `TestClock`, two layers on one clock; a class clock with private fields returning nothing keeps its `this`.
 * - A `Retry-After` of 30 days (`maxRetryAfter` 40) waits in 2^31-1 ms steps, one timer, sent at 30 days exactly;
 *   aborted mid-wait, no timer left. `CircuitBreaker` arms no timer: a clock without cancel opens and half-opens it.
 * - Every jitter, `random` 1.5, -1, NaN, ±Infinity, 1e308: the `retry` event's delay in [0, maxDelay] and waited
 *   exactly; `retry(fn)`'s `onRetry`, `execute`'s event, `backoffDelay` alike; `exponentialDelay` unchanged. A
 *   `Retry-After` of 5 s past `maxDelay: 1000` waits 5 s, `random` 1.5 or not.
 * - A `random` that throws: plain, `Request`, ky reject `RetryExhaustedError` with it as `cause`; the proxy 502.
 * - undici's own fetch: a bodiless `Request` and a ky GET fail as network errors, 3 attempts, counted, nothing sent;
 *   a wrapper giving it a URL and an init serves both.
 * - Two layers over one `memoryStore` share trip, `shared: ` reason, counts and `lastError` in `health()`; over
 *   `kvStore` the second isolate holds the host, shared reason, no counts; no `store` event either way.
 *
 * Docs-silent (not pinned):
 * - `new FallbackChain(name, { clock })` (./policies) with a clock whose `setTimer` returns nothing: `run(x,
 *   { hedgeDelay })` rejects "hedge?.cancel is not a function" even when the first entry answers; the layer's own
 *   chains hold. `Bulkhead` takes no clock. No ./policies doc says what a clock without cancel does there.
 * - `createResilience({ clock })` itself throws what `now` throws (the retry budget reads it when made).
 * - With a `Retry-After`, `random` is never drawn: one that throws does not end that call.
 * - `durableObjectStore` and `kvStore` take their own `clock`, used as given (no view over it).
 */
import { fetch as undiciFetch } from "undici";
import { describe, expect, it } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type Clock,
  createResilience,
  isRetryExhaustedError,
  memoryStore,
  type ResilienceOptions,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { backoffDelay, CircuitBreaker, exponentialDelay, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { turns } from "../helpers/unhandled.ts";

/** docs/options.md with its line breaks as spaces. */
const optionsDoc = () => readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8").replace(/\s+/g, " ");

const api = httpUpstream();
const spare = httpUpstream();
serveDuringFile(api, spare);

const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const DAY = 86_400_000;

/** A clock whose timers only the test fires: `setTimer` hands back `handle()`; `fireAll` runs every one ever armed. */
function handClock(handle: () => unknown, now = () => Date.now()) {
  const armed: Array<() => void> = [];
  const clock: Clock = {
    now,
    setTimer: (fn) => {
      armed.push(fn);
      return handle() as () => void;
    },
  };
  return {
    clock,
    armed,
    fireAll: () => {
      for (const fn of armed.splice(0)) fn();
    },
  };
}

/** What a `setTimer` of one's own may hand back instead of a function that cancels. */
const boom = (message: string) => () => {
  throw new Error(message);
};
function twice(): () => void {
  let calls = 0;
  return () => void (calls++ > 0 && boom("twice")());
}
const HANDLES: Array<[string, () => unknown]> = [
  ["undefined", () => undefined],
  ["a number handle", () => 7],
  ["an object with cancel", () => ({ cancel() {} })],
  ["a Promise", () => Promise.resolve(() => {})],
  ["a cancel that throws", () => boom("cancel broke")],
  ["a cancel that throws the second time", () => twice()],
];

function outcome(call: Promise<unknown>): Promise<string> {
  return call.then(
    async (value) =>
      typeof (value as Response)?.status === "number"
        ? `status ${(value as Response).status} ${await (value as Response).text()}`
        : `value ${value}`,
    (error: unknown) => `${(error as Error)?.name}: ${(error as Error)?.message}`,
  );
}

/** Runs `body` with the runner's listeners set aside, collecting unhandled rejections and uncaught exceptions. */
async function catching(body: () => Promise<void>): Promise<string[]> {
  const caught: string[] = [];
  const on = (error: unknown) => void caught.push(String(error));
  const saved = [process.listeners("unhandledRejection"), process.listeners("uncaughtException")] as const;
  process.removeAllListeners("unhandledRejection").removeAllListeners("uncaughtException");
  process.on("unhandledRejection", on).on("uncaughtException", on);
  try {
    await body();
    await turns(3);
  } finally {
    process.removeAllListeners("unhandledRejection").removeAllListeners("uncaughtException");
    for (const listener of saved[0]) process.on("unhandledRejection", listener);
    for (const listener of saved[1]) process.on("uncaughtException", listener);
  }
  return caught;
}

/** How `call` settled within `ms` of real time: "reason" (rejected with it), another outcome, or "pending". */
function within(call: Promise<unknown>, reason: unknown, ms = 200): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  const settled = call.then(
    () => "resolved",
    (error: unknown) => (error === reason ? "reason" : String(error)),
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

const busy = (): void =>
  api.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end("busy");
  });

/** A chain over the two servers, with a hedge after `delay` ms when given. */
const chainOf = (delay?: number) =>
  fallback([
    {
      name: "h",
      ...(delay === undefined ? {} : { hedge: { delay } }),
      endpoints: [
        { name: "p", url: `${api.base}/v1` },
        { name: "s", url: `${spare.base}/v1` },
      ],
    },
  ]);

describe("1. the layer's view of a clock of yours: a timer it cancels never runs", () => {
  it("held: every odd handle, every path serves with both timeouts and a hedge; firing every timer then does nothing", async () => {
    for (const [kind, handle] of HANDLES) {
      const { clock, armed, fireAll } = handClock(handle);
      const options: ResilienceOptions = { clock, budget: false, timeout: { attempt: 5_000, total: 10_000 } };
      const plain = createResilience(options);
      const chained = createResilience({ ...options, fallback: chainOf(5_000) });
      const events: string[] = [];
      for (const r of [plain, chained]) {
        r.on("retry", () => events.push("retry"));
        r.on("fallback", () => events.push("fallback"));
      }
      const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${api.base}/v1` }], resilience: options });
      const got = [
        await outcome(plain.fetch(`${api.base}/v1/x`)),
        await outcome(plain.fetch(new Request(`${api.base}/v1/x`))),
        await outcome(createClient({ resilience: options }).get(`${api.base}/v1/x`)),
        await outcome(proxy.fetch(new Request("https://worker.example/v1/x"), {}, ctx)),
        await outcome(chained.fetch(`${api.base}/v1/x`)),
        await outcome(plain.execute(async () => "done")),
      ];
      expect(got, kind).toEqual([...Array(5).fill("status 200 ok"), "value done"]);
      expect(armed.length, kind).toBeGreaterThan(5);
      const sent = api.hits.length;
      fireAll();
      await turns(3);
      expect([api.hits.length, spare.hits.length, events], kind).toEqual([sent, 0, []]);
      const health = plain.health().breakers[api.host];
      expect([health?.state, health?.failureCount], kind).toEqual(["closed", 0]);
      api.reset();
    }
  });

  it("held: a caller's abort in a backoff rejects at once with its reason; the fired timer sends nothing", async () => {
    busy();
    for (const [kind, handle] of HANDLES) {
      const { clock, fireAll } = handClock(handle);
      const got: string[] = [];
      const caught = await catching(async () => {
        const r = createResilience({ clock, budget: false, retry: { initialDelay: 10_000, jitter: "none" } });
        const reason = new Error("mine");
        const first = new AbortController();
        const retried = new Promise((resolve) => r.on("retry", resolve));
        const call = r.fetch(`${api.base}/v1/x`, { signal: first.signal });
        await retried;
        first.abort(reason);
        got.push(await within(call, reason));
        const second = new AbortController();
        let runs = 0;
        const work = r.execute(
          async () => {
            runs++;
            throw new Error("work failed");
          },
          { signal: second.signal },
        );
        await turns(2);
        second.abort(reason);
        got.push(await within(work, reason));
        fireAll();
        await turns(3);
        got.push(`requests ${api.hits.length} runs ${runs}`);
      });
      expect([got, caught], kind).toEqual([["reason", "reason", "requests 1 runs 1"], []]);
      api.reset();
      busy();
    }
  });

  it("held: TestClock counts right through the view: pending, waitForTimers, a frozen one, two layers on one", async () => {
    busy();
    const clock = Object.freeze(new TestClock());
    const a = createResilience({ clock, budget: false, retry: { initialDelay: 1_000, jitter: "none" } });
    const b = createResilience({ clock, budget: false, retry: { initialDelay: 1_000, jitter: "none" } });
    const controller = new AbortController();
    const reason = new Error("stop");
    const first = a.fetch(`${api.base}/v1/x`, { signal: controller.signal });
    await clock.waitForTimers(1);
    expect(clock.pending()).toBe(1);
    const second = b.fetch(`${api.base}/v1/y`);
    await clock.waitForTimers(2);
    controller.abort(reason);
    expect(await rejection(first)).toBe(reason);
    expect(clock.pending()).toBe(1);
    await clock.advance(1_000);
    await clock.waitForTimers(1);
    await clock.advance(2_000);
    expect(await outcome(second)).toBe("status 503 busy");
    expect(clock.pending()).toBe(0);
    expect(api.hits.map((hit) => hit.path)).toEqual(["/v1/x", "/v1/y", "/v1/y", "/v1/y"]);
    api.reset();
    const timed = createResilience({
      clock,
      timeout: { attempt: 5_000, total: 9_000 },
      fallback: chainOf(5_000),
    });
    expect(await outcome(timed.fetch(`${api.base}/v1/z`))).toBe("status 200 ok");
    expect(clock.pending()).toBe(0);
  });

  it("held: a class clock with private fields that returns nothing keeps its this; after an abort its timer fires into nothing", async () => {
    busy();
    const tc = new TestClock();
    class Own {
      readonly #tc = tc;
      now(): number {
        return this.#tc.now();
      }
      setTimer(fn: () => void, ms: number): () => void {
        this.#tc.setTimer(fn, ms);
        return undefined as never;
      }
    }
    const retry = { initialDelay: 1_000, jitter: "none", maxAttempts: 2 } as const;
    const r = createResilience({ clock: new Own(), budget: false, breaker: false, retry });
    const served = r.fetch(`${api.base}/v1/a`);
    await tc.waitForTimers(1);
    await tc.advance(1_000);
    expect(await outcome(served)).toBe("status 503 busy");
    const controller = new AbortController();
    const call = r.fetch(`${api.base}/v1/b`, { signal: controller.signal });
    await tc.waitForTimers(1);
    controller.abort(new Error("gone"));
    await rejection(call);
    expect(tc.pending()).toBe(1); // the clock's own: it was never cancelled
    await tc.advance(1_000);
    await turns(3);
    expect(api.hits.map((hit) => hit.path)).toEqual(["/v1/a", "/v1/a", "/v1/b"]);
  });

  it("held: a Retry-After of 30 days under maxRetryAfter 40 waits in 2^31-1 ms steps; aborted mid-wait, no timer left", async () => {
    api.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.setHeader("retry-after", String(30 * 86_400));
      hit.res.end("busy");
    });
    const clock = new TestClock();
    const retry = { maxRetryAfter: 40 * DAY, maxAttempts: 2 };
    const options = { clock, budget: false, breaker: false, retry } as const;
    const call = createResilience(options).fetch(`${api.base}/v1/x`);
    await clock.waitForTimers(1);
    await clock.advance(2_147_483_647);
    expect([api.hits.length, clock.pending()]).toEqual([1, 1]);
    await clock.advance(30 * DAY - 2_147_483_647 - 1);
    expect([api.hits.length, clock.pending()]).toEqual([1, 1]);
    await clock.advance(1);
    expect(await outcome(call)).toBe("status 503 busy");
    expect([api.hits.length, clock.pending()]).toEqual([2, 0]);
    const controller = new AbortController();
    const aborted = createResilience(options).fetch(`${api.base}/v1/y`, { signal: controller.signal });
    await clock.waitForTimers(1);
    await clock.advance(2_147_483_647 + 5);
    expect(clock.pending()).toBe(1);
    controller.abort(new Error("enough"));
    await rejection(aborted);
    expect(clock.pending()).toBe(0);
  });

  it("held: CircuitBreaker (./policies) arms no timer: a clock without cancel opens and half-opens it by now alone", async () => {
    let now = 1_000;
    const { clock, armed } = handClock(
      () => undefined,
      () => now,
    );
    const numbers = { failureThreshold: 1, successThreshold: 1, timeout: 5_000, halfOpenMaxCalls: 1, minimumCalls: 1 };
    const policy = { ...numbers, timeWindow: 60_000, probeTimeout: 30_000, failureRate: undefined };
    const breaker = new CircuitBreaker("k", policy, clock);
    await breaker.execute(async () => Promise.reject(new Error("down"))).catch(() => {});
    expect(breaker.state).toBe("open");
    now += 5_000;
    expect(breaker.state).toBe("half_open");
    expect(await breaker.execute(async () => "up")).toBe("up");
    expect([breaker.state, armed.length]).toEqual(["closed", 0]);
  });

  it("defect 1: the proxy's health endpoint over a Secrets Store token leaves nothing unhandled when cancel throws", async () => {
    const clock: Clock = { now: () => Date.now(), setTimer: () => boom("cancel broke") };
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${api.base}/v1` }], resilience: { clock } });
    const env = { RESILIENCE_HEALTH_TOKEN: { get: async () => "tok" } };
    const statuses: number[] = [];
    const caught = await catching(async () => {
      const request = new Request("https://worker.example/__resilience/health", {
        headers: { authorization: "Bearer tok" },
      });
      statuses.push((await proxy.fetch(request, env, ctx)).status);
    });
    expect(statuses).toEqual([200]);
    expect(caught).toEqual([]);
  });

  it("defect 2: retry(fn) aborted in its backoff on a clock without cancel rejects at once, nothing uncaught", async () => {
    const { clock } = handClock(() => undefined);
    const reason = new Error("mine");
    const controller = new AbortController();
    const got: string[] = [];
    const caught = await catching(async () => {
      let runs = 0;
      const call = retry(
        async () => {
          runs++;
          throw new Error("x");
        },
        { clock, signal: controller.signal, initialDelay: 10_000, jitter: "none" },
      );
      call.catch(() => {});
      while (runs === 0) await turns(1);
      await turns(2);
      controller.abort(reason);
      got.push(await within(call, reason));
    });
    expect(got).toEqual(["reason"]);
    expect(caught).toEqual([]);
  });
});

describe("2. every backoff delay in [0, maxDelay], Retry-After honoured", () => {
  const ODD = [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e308];
  const JITTERS = ["full", "equal", "decorrelated", "none"] as const;

  it("held: the retry event's delay is in [0, maxDelay] and the wait is that delay, every jitter, every odd draw", async () => {
    busy();
    for (const jitter of JITTERS) {
      for (const draw of ODD) {
        const clock = new TestClock();
        const r = createResilience({
          clock,
          random: () => draw,
          budget: false,
          breaker: false,
          retry: { initialDelay: 400, maxDelay: 1_000, maxAttempts: 2, jitter },
        });
        const delays: number[] = [];
        r.on("retry", (event: RetryEvent) => delays.push(event.delay));
        const before = api.hits.length;
        const call = r.fetch(`${api.base}/v1/x`);
        for (let i = 0; i < 500 && delays.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
        const delay = delays[0] as number;
        expect(delay >= 0 && delay <= 1_000, `${jitter} ${draw}: ${delay}`).toBe(true);
        if (delay > 0) {
          await clock.waitForTimers(1);
          await clock.advance(delay - 1);
          expect(api.hits.length - before, `${jitter} ${draw}`).toBe(1);
        }
        await clock.advance(1);
        expect(await outcome(call)).toBe("status 503 busy");
        expect(api.hits.length - before).toBe(2);
      }
    }
  });

  it("held: a Retry-After of 5 s past maxDelay 1000 waits 5 s, with random 1.5 as with 0.5", async () => {
    for (const draw of [1.5, 0.5]) {
      api.reset();
      api.on((hit) => {
        hit.res.statusCode = hit.n === 1 ? 503 : 200;
        if (hit.n === 1) hit.res.setHeader("retry-after", "5");
        hit.res.end(hit.n === 1 ? "busy" : "ok");
      });
      const clock = new TestClock();
      const r = createResilience({ clock, random: () => draw, budget: false, retry: { maxDelay: 1_000 } });
      const events: Array<[number, boolean]> = [];
      r.on("retry", (event: RetryEvent) => events.push([event.delay, event.retryAfter]));
      const call = r.fetch(`${api.base}/v1/x`);
      await clock.waitForTimers(1);
      await clock.advance(4_999);
      expect(api.hits).toHaveLength(1);
      await clock.advance(1);
      expect(await outcome(call)).toBe("status 200 ok");
      expect(events).toEqual([[5_000, true]]);
    }
  });

  it("held: retry(fn)'s onRetry, execute's event and backoffDelay keep odd draws in [0, maxDelay]", async () => {
    const numbers = { initialDelay: 400, maxDelay: 1_000, exponentialBase: 2 };
    for (const jitter of JITTERS) {
      for (const draw of ODD) {
        const seen: number[] = [];
        for (let n = 1; n <= 6; n++) seen.push(backoffDelay(n, { ...numbers, jitter }, () => draw, 5_000));
        const clock = new TestClock();
        const onRetry = ({ delay }: { delay: number }) => void seen.push(delay);
        const work = retry(() => Promise.reject(new Error("x")), {
          ...numbers,
          jitter,
          clock,
          random: () => draw,
          maxAttempts: 4,
          onRetry,
        });
        await rejection(clock.run(work));
        const r = createResilience({ clock, random: () => draw, budget: false, retry: { ...numbers, jitter } });
        r.on("retry", (event: RetryEvent) => seen.push(event.delay));
        await rejection(clock.run(r.execute(() => Promise.reject(new Error("y")))));
        expect(seen).toHaveLength(11);
        for (const delay of seen) expect(delay >= 0 && delay <= 1_000, `${jitter} ${draw}: ${delay}`).toBe(true);
      }
    }
    expect([1, 2, 3, 4].map((n) => exponentialDelay(n, { ...numbers, jitter: "none" }))).toEqual([
      400, 800, 1_000, 1_000,
    ]);
  });
});

describe("3. options.md's sentences on clock, random and fetch", () => {
  const throwingRandom = boom("rng broke") as () => number;

  it("held: a random that throws: plain, Request and ky end RetryExhaustedError with it as cause; the proxy 502", async () => {
    busy();
    const options: ResilienceOptions = { random: throwingRandom, budget: false };
    const r = createResilience(options);
    for (const call of [
      r.fetch(`${api.base}/v1/x`),
      r.fetch(new Request(`${api.base}/v1/x`)),
      createClient({ resilience: options }).get(`${api.base}/v1/x`),
    ]) {
      const error = await rejection(call);
      expect(isRetryExhaustedError(error)).toBe(true);
      expect(((error as Error).cause as Error).message).toBe("rng broke");
    }
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${api.base}/v1` }], resilience: options });
    expect((await proxy.fetch(new Request("https://worker.example/v1/x"), {}, ctx)).status).toBe(502);
  });

  it("defect 3: a now() that throws ends the call with it: fetch and execute return a rejected promise, never throw", async () => {
    let broken = false;
    const clock: Clock = {
      now: () => {
        if (broken) throw new Error("now broke");
        return Date.now();
      },
      setTimer: () => () => {},
    };
    const r = createResilience({ clock });
    broken = true;
    const got: string[] = [];
    for (const start of [
      () => r.fetch(`${api.base}/v1/x`),
      () => r.fetch(new Request(`${api.base}/v1/x`)),
      () => r.execute(async () => "done"),
    ]) {
      let call: Promise<unknown>;
      try {
        call = start();
      } catch (error) {
        got.push(`thrown ${error}`);
        continue;
      }
      const error = (await rejection(call)) as Error;
      got.push(`rejected ${error === undefined ? "" : ((error.cause as Error) ?? error).message}`);
    }
    expect(got).toEqual(Array(3).fill("rejected now broke"));
  });

  it("defect 4, answered by the docs: a random that throws ends execute with it as it is, as options.md now says", async () => {
    // First pinned as `it.fails` expecting a RetryExhaustedError; options.md now says "as it is or as the `cause`".
    const r = createResilience({ random: throwingRandom, budget: false });
    const error = await rejection(r.execute(() => Promise.reject(new Error("work failed"))));
    expect(isRetryExhaustedError(error)).toBe(false);
    expect((error as Error).message).toBe("rng broke");
    expect(optionsDoc()).toContain(
      "the call rejects (never throws) with it, as it is or as the `cause` of a `RetryExhaustedError`",
    );
  });

  it("defect 5, answered by the docs: on a chain, the endpoint whose random or setTimer threw is left for the next", async () => {
    // First pinned as `it.fails` expecting the call to end; options.md now says the chain moves on.
    busy();
    const clock: Clock = { now: () => Date.now(), setTimer: boom("timer broke") };
    const got = [
      await outcome(
        createResilience({ random: throwingRandom, budget: false, fallback: chainOf() }).fetch(`${api.base}/v1/x`),
      ),
      await outcome(createResilience({ clock, budget: false, fallback: chainOf() }).fetch(`${api.base}/v1/x`)),
    ];
    expect(got).toEqual([expect.stringMatching(/^status 200/), expect.stringMatching(/^status 200/)]);
    expect(optionsDoc()).toContain("and a chain mostly leaves the endpoint that met it for the next one");
  });

  it("held: undici's own fetch fails a bodiless Request and a ky GET as network errors, counted; a wrapper serves both", async () => {
    const options: ResilienceOptions = { fetch: undiciFetch as never, budget: false, retry: { initialDelay: 0 } };
    const r = createResilience(options);
    const retries: number[] = [];
    r.on("retry", (event: RetryEvent) => retries.push(event.attempt));
    expect(await outcome(r.fetch(new Request(`${api.base}/v1/x`)))).toMatch(/^RetryExhaustedError: /);
    expect(retries).toEqual([1, 2]);
    expect(r.health().breakers[api.host]?.failureCount).toBe(3);
    expect(await outcome(createClient({ resilience: options }).get(`${api.base}/v1/x`))).toMatch(
      /^RetryExhaustedError: /,
    );
    expect(api.hits).toHaveLength(0);
    const wrapper = (input: RequestInfo | URL, init?: RequestInit) =>
      input instanceof Request
        ? undiciFetch(input.url, { method: input.method, headers: [...input.headers], signal: init?.signal ?? null })
        : undiciFetch(input as string, init as never);
    const wrapped: ResilienceOptions = { fetch: wrapper as never, retry: false };
    expect(await outcome(createResilience(wrapped).fetch(new Request(`${api.base}/v1/x`)))).toBe("status 200 ok");
    expect(await outcome(createClient({ resilience: wrapped }).get(`${api.base}/v1/y`))).toBe("status 200 ok");
    expect(api.hits.map((hit) => hit.path)).toEqual(["/v1/x", "/v1/y"]);
  });
});

describe("4. a store's snapshot read once into a copy: trips, reasons and counts still shared", () => {
  const f = async () => new Response("busy", { status: 503 });
  const pick = (h: Record<string, unknown> | undefined) => {
    const { reason, state, openUntil, failureCount, consecutiveFailures, failureRate, lastError } = h ?? {};
    return { reason, state, openUntil, failureCount, consecutiveFailures, failureRate, lastError };
  };

  it("held: two layers over one memoryStore share the trip, its shared reason, counts and lastError, no store event", async () => {
    const clock = new TestClock(1_700_000_000_000);
    const store = memoryStore();
    const options = { clock, store, retry: false, fetch: f, breaker: { failureThreshold: 2 } } as const;
    const a = createResilience(options);
    const b = createResilience(options);
    const events: unknown[] = [];
    b.on("store", (event) => events.push(event));
    await a.fetch("https://h.example/x");
    await a.fetch("https://h.example/x");
    expect(((await rejection(b.fetch("https://h.example/x"))) as Error).name).toBe("CircuitOpenError");
    const mine = pick(a.health().breakers["h.example"] as never);
    expect(mine).toEqual({
      reason: "2 failures in a row (last: status 503)",
      state: "open",
      openUntil: 1_700_000_030_000,
      failureCount: 2,
      consecutiveFailures: 2,
      failureRate: 1,
      lastError: "status 503",
    });
    expect(pick(b.health().breakers["h.example"] as never)).toEqual({ ...mine, reason: `shared: ${mine.reason}` });
    expect(events).toEqual([]);
  });

  it("held: over kvStore, a second isolate holds the host with the shared reason and no counts, no store event", async () => {
    const clock = new TestClock(1_700_000_000_000);
    const kv = new FakeKv(clock, { propagation: 0 });
    const pending: Promise<unknown>[] = [];
    const store = () =>
      kvStore(kv.location(), { ctx: { waitUntil: (p) => void pending.push(p) }, clock, random: () => 0 });
    const options = { clock, retry: false, breaker: { failureThreshold: 2 } } as const;
    const c = createResilience({ ...options, store: store(), fetch: f });
    await c.fetch("https://k.example/x");
    await c.fetch("https://k.example/x");
    await clock.run(Promise.all(pending.splice(0)));
    const d = createResilience({ ...options, store: store(), fetch: async () => new Response("fine") });
    const events: unknown[] = [];
    d.on("store", (event) => events.push(event));
    expect((await d.fetch("https://k.example/x")).status).toBe(200); // its first read is under way
    await clock.run(Promise.all(pending.splice(0)));
    expect(((await rejection(d.fetch("https://k.example/x"))) as Error).name).toBe("CircuitOpenError");
    const reason = "shared: 2 failures in a row (last: status 503)";
    expect(pick(d.health().breakers["k.example"] as never)).toMatchObject({
      reason,
      state: "open",
      openUntil: 1_700_000_030_000,
      failureCount: 0,
      lastError: reason,
    });
    expect(events).toEqual([]);
  });
});
