/**
 * Outside-in attack on docs/options.md, every row read as a promise: defaults by behaviour, values at each bound,
 * and what a bad value does, on the root, `fallback([…])`, `degradation({…})`, `execute`, named breakers and the
 * ./policies constructors.
 * Docs: docs/options.md ("throws `ConfigError` naming the path and the expected value", "unknown keys are an error
 * too, so a typo never silently does nothing", "`undefined` never wipes a default", the rows `retry.maxDelay` "cap on
 * any computed delay", `retry.jitter`, `retry.retryOn.*`, `retry.maxRetryAfter`, `retry.idempotencyKey`,
 * `budget.ratio` / `budget.minPerSecond` "(a fraction too: `0.5` is one every 2 s)", `timeout.attempt` "at most
 * 2,147,483,647", `breaker.timeWindow` "rolling window of the failure rate (10 buckets)", `breaker.failureRate` /
 * `minimumCalls` "also open when this share of at least `minimumCalls` attempts in `timeWindow` failed",
 * `breaker.isFailure`, `bulkhead.maxConcurrent` / `maxQueue` "off / `0` … with `breaker: false` it is a
 * `ConfigError`", `maxReplayBytes`, `fallback[].hedge.delay`, `random` "in [0, 1)"); docs/retry.md ("decorrelated:
 * `min(maxDelay, random(initialDelay, previous * 3))`" in the JSDoc of `backoffDelay`, "Both check all their options
 * before the first attempt"); docs/breakers.md (named breakers' options "checked all the same", defaults "the
 * layer's `breaker` options, or the defaults when per-host breakers are off").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `retry`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain` (./policies),
 * `TestClock` (./testing); scripted transports that answer at once, and node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) where a path needs real HTTP.
 * Paths: plain call, `Request` input, fallback chain, ky client, `execute`, named breaker, the policies on their own.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a decorrelated delay whose spread overflowed is capped, a rate window without bucket width starts again at the next outcome, and CircuitBreaker honours a policy's isFailure):
 * 1. docs/options.md "`retry.maxDelay` | `60000` ms | cap on any computed delay" and `random` "`() => number` in
 *    [0, 1)"; `backoffDelay`'s JSDoc "decorrelated: `min(maxDelay, random(initialDelay, previous * 3))`".
 *    Observed: with `jitter: "decorrelated"`, an `initialDelay` above ~6e307 (accepted: `num>=0`, no upper bound)
 *    and a `random` that returns 0 (in its documented range), the delay is `NaN`: the `retry` event says `delay:
 *    NaN` and the retry leaves at once (t = 0), not after `maxDelay`'s 60000 ms; `retry(fn)` of ./policies the
 *    same (`onRetry` gets `NaN`). Cause: src/policies/backoff.ts `backoffDelay`, case "decorrelated":
 *    `high = max(low, low * 3)` overflows to Infinity, `random() * (high - low)` is `0 * Infinity = NaN`, and
 *    `Math.min(maxDelay, NaN)` is NaN; a NaN wait is no wait (setTimeout and the TestClock read it as 0).
 * 2. docs/options.md "`breaker.timeWindow` | `30000` ms | rolling window of the failure rate (10 buckets)" and
 *    "`breaker.failureRate` / `minimumCalls` | also open when this share of at least `minimumCalls` attempts in
 *    `timeWindow` failed". Observed: `timeWindow: Number.MIN_VALUE` (accepted: `num>0`) makes the window hold every
 *    attempt ever made: four 503s one second apart (`minimumCalls: 4`) open the host's breaker, "failure rate 1.00
 *    over 4 calls", though no two of them fell within 5e-324 ms of each other. Cause:
 *    src/policies/breaker-state.ts `record`: the bucket width `timeWindow / 10` underflows to 0, so
 *    `floor(elapsed / 0)` is Infinity, `start + Infinity * 0` makes the window's `start` NaN, and from then on
 *    `elapsed` is NaN (never > 0): no bucket ever leaves; `windowCounts`' `Math.max(0, NaN)` is NaN and
 *    `slice(NaN)` counts every bucket.
 * 3. docs/options.md "unknown keys are an error too, so a typo never silently does nothing" with the
 *    `breaker.isFailure` row ("which thrown errors count"). Observed: `new CircuitBreaker(key, policy, clock)` of
 *    ./policies checks `policy.isFailure` (a non-function is "CircuitBreaker.isFailure: expected a function"), as it
 *    checks `policy.key` and `policy.maxHosts` (`maxHosts: 0` is refused "expected a value >= 1"), then ignores all
 *    three: a policy with `isFailure: () => false` opens on thrown errors all the same. Cause:
 *    src/policies/circuit-breaker.ts checks the policy against the layer's whole `breakerRules` table
 *    (src/core/options/option-rules.ts), which allows `isFailure`, `key` and `maxHosts`, but reads `isFailure` only
 *    from its fourth argument (`options.isFailure ?? (() => true)`).
 *
 * Held (plain `it`):
 * - the control for 2: `timeWindow: 10` and the same six 503s a second apart leave the breaker closed;
 * - the default budget by behaviour: 10 free retries at first (a call against a 503 with 50 attempts makes 11);
 *   `ratio` 0.1 (with `minPerSecond: 0`, the 10th call is the first to retry); `minPerSecond: 0.5` gives one
 *   retry every 2 s;
 * - `maxReplayBytes: 0`: a body of one byte (a string, a `Request`'s) goes once, an empty one is replayed;
 *   `retryOn.methods: []` leaves GET retried on 503 only; `retryOn.statuses: []` retries nothing;
 *   `maxRetryAfter: 0` sleeps a `Retry-After: 0`; `idempotencyKey` off by default, on for POST only;
 *   `retryOn.error`'s default retries a network error (`TypeError`) and not a plain `Error`;
 * - 3 attempts by default against a 503 on every path (plain call, `Request` input, chain, ky client), and with
 *   each option given as `undefined`;
 * - `bulkhead: { maxConcurrent: 1 }` (`maxQueue` 0 by default): a second call to the host is refused at once while
 *   the first runs, another host goes through; `bulkhead` beside `breaker: false` is a `ConfigError` named
 *   `bulkhead` (`resilience.bulkhead` through ky);
 * - named breakers take the layer's `breaker` options (2 in a row open it) or the defaults when per-host breakers
 *   are off (12); a bad option is a `ConfigError` on every call; `execute` takes the layer's `maxAttempts` and
 *   refuses `execute.retry.maxAttempts: 0` before `fn` runs;
 * - the ./policies constructors refuse bad values with a `ConfigError` naming `Bulkhead.…`, `RetryBudget.…`,
 *   `FallbackChain.…`, `CircuitBreaker.…`, and unknown keys;
 * - the bounds: `timeout.attempt` and `fallback[].hedge.delay` take 2,147,483,647 and refuse one more, a fraction
 *   above it, 0 / -1, NaN, ±Infinity, a numeric string, `null`; a misspelt key in every group is named under its
 *   path; a refused value or key holding a URL's password or key is not quoted.
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  ConfigError,
  createResilience,
  getResilienceInfo,
  isBulkheadRejectedError,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { Bulkhead, CircuitBreaker, FallbackChain, RetryBudget, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const SECRET = "https://user:hunter2@x.test/v1?key=SECRETKEY";

/** The `ConfigError` `fn` throws at once (its path and message), or what else happened. */
function refusal(fn: () => unknown): { path: string; message: string } | string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return { path: error.path, message: error.message };
    return `threw ${String(error)}`;
  }
  return "accepted";
}

/** A transport that answers `status` at once and counts what it was sent. */
function answering(status: number) {
  const sent: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    sent.push(new Request(input, init));
    return new Response("x", { status, headers: { "retry-after": "0" } });
  };
  return { sent, fetch };
}

const policy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1000,
  halfOpenMaxCalls: 1,
  timeWindow: 30_000,
  probeTimeout: 30_000,
  minimumCalls: 100,
  failureRate: undefined as number | undefined,
};

describe("defects", () => {
  it("retry.maxDelay caps a decorrelated delay whatever random() in [0, 1) returns (fetch and retry(fn))", async () => {
    const options = { jitter: "decorrelated" as const, initialDelay: 1e308, maxAttempts: 2 };
    const clock = new TestClock(0);
    const upstream = answering(500);
    const layer = createResilience({
      clock,
      random: () => 0,
      breaker: false,
      budget: false,
      fetch: upstream.fetch,
      retry: options,
    });
    const delays: number[] = [];
    layer.on("retry", (event: RetryEvent) => delays.push(event.delay));
    const response = await clock.run(layer.fetch("http://a.test/"));
    expect(response.status).toBe(500);
    const fetchLeftAt = clock.now();

    const clock2 = new TestClock(0);
    const hooked: number[] = [];
    let ran = 0;
    await clock2
      .run(
        retry(
          () => {
            ran++;
            throw new Error("work failed");
          },
          { ...options, clock: clock2, random: () => 0, onRetry: (event) => void hooked.push(event.delay) },
        ),
      )
      .catch(() => undefined);
    expect(ran).toBe(2);
    expect({ fetch: { delays, at: fetchLeftAt }, retry: { hooked, at: clock2.now() } }).toEqual({
      fetch: { delays: [60_000], at: 60_000 },
      retry: { hooked: [60_000], at: 60_000 },
    });
  });

  it("breaker.timeWindow: Number.MIN_VALUE (> 0, accepted) counts only attempts inside that window", async () => {
    const clock = new TestClock(1000);
    const upstream = answering(503);
    const layer = createResilience({
      clock,
      retry: false,
      budget: false,
      fetch: upstream.fetch,
      breaker: { timeWindow: Number.MIN_VALUE, failureRate: 0.5, minimumCalls: 4, failureThreshold: 1000 },
    });
    const states: string[] = [];
    for (let i = 0; i < 6; i++) {
      await clock.run(layer.fetch("http://a.test/")).catch(() => undefined);
      states.push(layer.health().breakers["a.test"]?.state ?? "none");
      await clock.advance(1000);
    }
    // Six attempts a second apart: no two in one window of 5e-324 ms, so the rate rule never has 4 calls.
    expect(states).toEqual(["closed", "closed", "closed", "closed", "closed", "closed"]);
    expect(upstream.sent).toHaveLength(6);
  });

  it("new CircuitBreaker: a policy's isFailure is either refused or honoured, never checked and ignored", async () => {
    const clock = new TestClock(0);
    let outcome: string;
    try {
      const breaker = new CircuitBreaker("k", { ...policy, isFailure: () => false } as never, clock);
      for (let i = 0; i < 3; i++)
        await breaker
          .execute(() => {
            throw new Error("not a failure, says isFailure");
          })
          .catch(() => undefined);
      outcome = breaker.state === "closed" ? "honoured" : "checked, then ignored: the breaker opened";
    } catch (error) {
      outcome = error instanceof ConfigError ? "refused" : `threw ${String(error)}`;
    }
    expect(["refused", "honoured"]).toContain(outcome);
  });
});

describe("defaults by behaviour", () => {
  it("control for defect 2: a window of 10 ms holds no two attempts a second apart, so the rate rule never acts", async () => {
    const clock = new TestClock(1000);
    const upstream = answering(503);
    const layer = createResilience({
      clock,
      retry: false,
      budget: false,
      fetch: upstream.fetch,
      breaker: { timeWindow: 10, failureRate: 0.5, minimumCalls: 4, failureThreshold: 1000 },
    });
    for (let i = 0; i < 6; i++) {
      await clock.run(layer.fetch("http://a.test/"));
      await clock.advance(1000);
    }
    expect(layer.health().breakers["a.test"]?.state).toBe("closed");
    expect(upstream.sent).toHaveLength(6);
  });

  it("budget: 10 free retries at first, ratio 0.1 a call, minPerSecond 0.5 one retry every 2 s", async () => {
    const clock = new TestClock(0);
    const one = answering(503);
    const layer = createResilience({
      clock,
      breaker: false,
      retry: { maxAttempts: 50, initialDelay: 0 },
      fetch: one.fetch,
    });
    await clock.run(layer.fetch("http://a.test/"));
    expect(one.sent).toHaveLength(11);

    const earned = answering(503);
    const byRatio = createResilience({
      clock,
      breaker: false,
      budget: { minPerSecond: 0 },
      retry: { maxAttempts: 2, initialDelay: 0 },
      fetch: earned.fetch,
    });
    const perCall: number[] = [];
    for (let i = 0; i < 12; i++) {
      const before = earned.sent.length;
      await clock.run(byRatio.fetch("http://a.test/"));
      perCall.push(earned.sent.length - before);
    }
    expect(perCall).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1]);

    const slow = answering(503);
    const half = createResilience({
      clock,
      breaker: false,
      budget: { minPerSecond: 0.5, ratio: 0 },
      retry: { maxAttempts: 2, initialDelay: 0 },
      fetch: slow.fetch,
    });
    const retriedAt: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 12; i++) {
      const before = slow.sent.length;
      await clock.run(half.fetch("http://a.test/"));
      if (slow.sent.length - before === 2) retriedAt.push(clock.now() - start);
      await clock.advance(500);
    }
    // Steady state: one every 2 s.
    expect(retriedAt.slice(1).map((t, i) => t - (retriedAt[i] as number))).toEqual([2000, 2000]);
  });

  it("retry rows at their edges: maxReplayBytes 0, empty retryOn lists, maxRetryAfter 0, idempotencyKey, retryOn.error", async () => {
    const clock = new TestClock(0);
    const fast = { initialDelay: 0 };
    const count = async (status: number, options: object, input: RequestInfo, init?: RequestInit) => {
      const upstream = answering(status);
      const layer = createResilience({ clock, breaker: false, budget: false, fetch: upstream.fetch, ...options });
      await clock.run(layer.fetch(input, init));
      return upstream.sent;
    };
    expect(
      await count(503, { maxReplayBytes: 0, retry: fast }, "http://a.test/", { method: "PUT", body: "a" }),
    ).toHaveLength(1);
    expect(
      await count(503, { maxReplayBytes: 0, retry: fast }, "http://a.test/", { method: "PUT", body: "" }),
    ).toHaveLength(3);
    expect(
      await count(
        503,
        { maxReplayBytes: 0, retry: fast },
        new Request("http://a.test/", { method: "PUT", body: "abc" }),
      ),
    ).toHaveLength(1);
    expect(await count(500, { retry: { ...fast, retryOn: { methods: [] } } }, "http://a.test/")).toHaveLength(1);
    expect(await count(503, { retry: { ...fast, retryOn: { methods: [] } } }, "http://a.test/")).toHaveLength(3);
    expect(await count(503, { retry: { ...fast, retryOn: { statuses: [] } } }, "http://a.test/")).toHaveLength(1);
    expect(await count(503, { retry: { ...fast, maxRetryAfter: 0 } }, "http://a.test/")).toHaveLength(3);
    const plain = await count(503, { retry: fast }, "http://a.test/", { method: "POST", body: "j" });
    expect(plain.map((r) => r.headers.get("idempotency-key"))).toEqual([null, null, null]);
    const keyed = await count(503, { retry: { ...fast, idempotencyKey: true } }, "http://a.test/", {
      method: "POST",
      body: "j",
    });
    const keys = keyed.map((r) => r.headers.get("idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    expect(
      (await count(200, { retry: { idempotencyKey: true } }, "http://a.test/"))[0]?.headers.has("idempotency-key"),
    ).toBe(false);

    for (const [thrown, attempts] of [
      [new Error("plain"), 1],
      [new TypeError("fetch failed"), 3],
    ] as const) {
      let n = 0;
      const layer = createResilience({
        clock,
        breaker: false,
        budget: false,
        retry: fast,
        fetch: async () => {
          n++;
          throw thrown;
        },
      });
      await clock.run(layer.fetch("http://a.test/")).catch(() => undefined);
      expect(n).toBe(attempts);
    }
  });

  it("3 attempts by default on a plain call, a Request input, a chain and the ky client; undefined wipes nothing", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const clock = new TestClock(0);
    const made = (extra: object = {}) => createResilience({ clock, ...extra });
    const paths: Array<[string, () => Promise<unknown>]> = [
      ["plain", () => made().fetch(`${a.base}/p`)],
      [
        "undefined",
        () =>
          made({ retry: { maxAttempts: undefined, initialDelay: undefined }, budget: undefined }).fetch(`${a.base}/u`),
      ],
      ["Request", () => made().fetch(new Request(`${a.base}/r`, { method: "PUT", body: "x" }))],
      [
        "chain",
        () =>
          made({
            fallback: fallback([{ name: "c", order: undefined, endpoints: [{ name: "p", url: `${a.base}/c` }] }]),
          })
            .fetch(`${a.base}/c`)
            .catch(() => undefined),
      ],
      [
        "ky",
        () =>
          createClient({ resilience: { clock, retry: { maxAttempts: undefined } } })
            .get(`${a.base}/k`)
            .catch(() => undefined),
      ],
    ];
    for (const [name, call] of paths) {
      a.hits.length = 0;
      const settled = await clock.run(call());
      expect([name, a.hits.length]).toEqual([name, 3]);
      if (settled instanceof Response) expect(getResilienceInfo(settled)?.attempts).toBe(3);
    }
  });

  it("bulkhead: maxQueue 0 by default refuses a second call at once; with breaker: false it is a ConfigError", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    a.on((hit) => {
      void held.then(() => hit.res.end("late"));
    });
    const layer = createResilience({ bulkhead: { maxConcurrent: 1 }, retry: false });
    const first = layer.fetch(`${a.base}/one`);
    await a.nth(1);
    const second = await layer.fetch(`${a.base}/two`).catch((error: unknown) => error);
    expect(isBulkheadRejectedError(second)).toBe(true);
    expect((await layer.fetch(`${b.base}/other`)).status).toBe(200);
    release();
    expect(await (await first).text()).toBe("late");
    expect(a.hits).toHaveLength(1);

    expect(refusal(() => createResilience({ breaker: false, bulkhead: { maxConcurrent: 2 } }))).toMatchObject({
      path: "bulkhead",
    });
    expect(
      refusal(() => createClient({ resilience: { breaker: false, bulkhead: { maxConcurrent: 2 } } })),
    ).toMatchObject({
      path: "resilience.bulkhead",
    });
    expect(refusal(() => createResilience({ bulkhead: { maxQueue: 1 } as never }))).toMatchObject({
      path: "bulkhead.maxConcurrent",
    });
  });

  it("named breakers default to the layer's breaker options, or the defaults when per-host ones are off; execute too", async () => {
    const clock = new TestClock(0);
    const failing = () => Promise.reject(new Error("work failed"));
    const opensAfter = async (layer: ReturnType<typeof createResilience>): Promise<number> => {
      const named = layer.breaker("gpu");
      for (let i = 1; i <= 20; i++) {
        await named.execute(failing).catch(() => undefined);
        if (named.state === "open") return i;
      }
      return -1;
    };
    expect(await opensAfter(createResilience({ clock, breaker: { failureThreshold: 2 } }))).toBe(2);
    expect(await opensAfter(createResilience({ clock, breaker: false }))).toBe(12);
    const layer = createResilience({ clock, retry: { maxAttempts: 4, initialDelay: 0 } });
    layer.breaker("gpu");
    expect(refusal(() => layer.breaker("gpu", { failureThreshold: 0 }))).toMatchObject({
      path: 'breaker("gpu").failureThreshold',
    });
    expect(refusal(() => layer.breaker("gpu", { failureTreshold: 3 } as never))).toMatchObject({
      path: 'breaker("gpu")',
    });

    let ran = 0;
    await clock
      .run(
        layer.execute(() => {
          ran++;
          throw new Error("work failed");
        }),
      )
      .catch(() => undefined);
    expect(ran).toBe(4);
    ran = 0;
    // Changed in the thirty-third session: execute rejects with it (it threw at once).
    await expect(layer.execute(() => ran++, { retry: { maxAttempts: 0 } })).rejects.toMatchObject({
      name: "ConfigError",
      path: "execute.retry.maxAttempts",
    });
    await expect(layer.execute(() => ran++, { breaker: "" })).rejects.toMatchObject({
      name: "ConfigError",
      path: "execute.breaker",
    });
    expect(ran).toBe(0);
  });
});

describe("bad values: a ConfigError naming the path, at once, quoting no secret", () => {
  it("the ./policies constructors", () => {
    const clock = new TestClock(0);
    const cases: Array<[() => unknown, string]> = [
      [() => new Bulkhead("k", 0, 0), "Bulkhead.maxConcurrent"],
      [() => new Bulkhead("k", 1.5, 0), "Bulkhead.maxConcurrent"],
      [() => new Bulkhead("k", Number.NaN, 0), "Bulkhead.maxConcurrent"],
      [() => new Bulkhead("k", 1, -1), "Bulkhead.maxQueue"],
      [() => new Bulkhead("k", 1, undefined as never), "Bulkhead.maxQueue"],
      [() => new RetryBudget({ ratio: 0.1 } as never), "RetryBudget.minPerSecond"],
      [() => new RetryBudget({ ratio: -0.1, minPerSecond: 1 }), "RetryBudget.ratio"],
      [() => new RetryBudget({ ratio: Number.POSITIVE_INFINITY, minPerSecond: 1 }), "RetryBudget.ratio"],
      [() => new RetryBudget({ ratio: 0.1, minPerSecond: 1, ratoi: 1 } as never), "RetryBudget"],
      [() => new RetryBudget(null as never), "RetryBudget"],
      [() => new FallbackChain("c", { ordr: "fixed" } as never), "FallbackChain"],
      [() => new FallbackChain("c", { order: "random" } as never), "FallbackChain.order"],
      [() => new FallbackChain("c", { clock: {} } as never), "FallbackChain.clock.now"],
      [() => new CircuitBreaker("k", { ...policy, failureRate: 0 }, clock), "CircuitBreaker.failureRate"],
      [
        () => new CircuitBreaker("k", { ...policy, failureThreshold: 2 ** 53 }, clock),
        "CircuitBreaker.failureThreshold",
      ],
      [() => new CircuitBreaker("k", { ...policy, timeout: undefined } as never, clock), "CircuitBreaker.timeout"],
      [() => new CircuitBreaker("k", null as never, clock), "CircuitBreaker"],
      [() => new CircuitBreaker("k", policy, clock, { onChange: 5 } as never), "CircuitBreaker.onChange"],
    ];
    for (const [make, path] of cases) expect([path, refusal(make)]).toMatchObject([path, { path }]);
    const secret = refusal(() => new FallbackChain("c", { order: SECRET } as never));
    expect(JSON.stringify(secret)).not.toMatch(/hunter2|SECRETKEY/);
  });

  it("timeout.attempt and fallback[].hedge.delay at their bounds", () => {
    const max = 2_147_483_647;
    expect(refusal(() => createResilience({ timeout: { attempt: max } }))).toBe("accepted");
    expect(
      refusal(() =>
        fallback([{ name: "c", hedge: { delay: max }, endpoints: [{ name: "p", url: "https://a.test" }] }]),
      ),
    ).toBe("accepted");
    expect(
      refusal(() => fallback([{ name: "c", hedge: { delay: 0 }, endpoints: [{ name: "p", url: "https://a.test" }] }])),
    ).toBe("accepted");
    for (const bad of [
      max + 1,
      max + 0.5,
      0,
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      "100",
      null,
    ]) {
      expect([bad, refusal(() => createResilience({ timeout: { attempt: bad as number } }))]).toMatchObject([
        bad,
        { path: "timeout.attempt" },
      ]);
      if (bad === 0) continue;
      expect([
        bad,
        refusal(() =>
          fallback([{ name: "c", hedge: { delay: bad as number }, endpoints: [{ name: "p", url: "https://a.test" }] }]),
        ),
      ]).toMatchObject([bad, { path: "fallback.0.hedge.delay" }]);
    }
    expect(refusal(() => createResilience({ timeout: { total: 1e15 } }))).toBe("accepted");
  });

  it("a misspelt key in every group is named under its path, and a secret in a value or a key is not quoted", async () => {
    const cases: Array<[() => unknown, string]> = [
      [() => createResilience({ retry: { maxAttempt: 2 } as never }), "retry"],
      [() => createResilience({ retry: { retryOn: { status: [500] } } as never }), "retry.retryOn"],
      [() => createResilience({ budget: { ratoi: 1 } as never }), "budget"],
      [() => createResilience({ timeout: { atempt: 1 } as never }), "timeout"],
      [() => createResilience({ breaker: { treshold: 1 } as never }), "breaker"],
      [() => createResilience({ bulkhead: { maxConcurrent: 1, maxQueu: 1 } as never }), "bulkhead"],
      [() => createResilience({ retries: 2 } as never), "options"],
      [
        () => fallback([{ name: "c", endpoints: [{ name: "p", urll: "https://a.test" }] } as never]),
        "fallback.0.endpoints.0",
      ],
      [
        () =>
          fallback([{ name: "c", hegde: { delay: 1 }, endpoints: [{ name: "p", url: "https://a.test" }] } as never]),
        "fallback.0",
      ],
      [() => degradation({ levelheader: "x-level" } as never), "degradation"],
      [() => degradation({ triggers: { errorrate: 0.1 } } as never), "degradation.triggers"],
      [() => createClient({ resilience: { retry: { maxAttempt: 2 } as never } }), "resilience.retry"],
      [() => createResilience({ retry: null as never }), "retry"],
      [() => createResilience({ retry: true as never }), "retry"],
      [() => createResilience({ budget: true as never }), "budget"],
      [() => createResilience({ timeout: false as never }), "timeout"],
      [() => createResilience({ random: 0.5 as never }), "random"],
      [() => createResilience({ clock: { now: () => 0 } as never }), "clock.setTimer"],
      [() => createResilience({ maxReplayBytes: -1 }), "maxReplayBytes"],
      [() => createResilience({ maxReplayBytes: 1.5 }), "maxReplayBytes"],
      [() => createResilience({ retry: { maxAttempts: 1n as never } }), "retry.maxAttempts"],
      [() => createResilience({ retry: { exponentialBase: 0.5 } }), "retry.exponentialBase"],
      [() => createResilience({ retry: { retryOn: { statuses: [99] } } }), "retry.retryOn.statuses.0"],
      [() => createResilience({ retry: { retryOn: { statuses: [600] } } }), "retry.retryOn.statuses.0"],
      [() => createResilience({ retry: { retryOn: { methods: [""] } } }), "retry.retryOn.methods.0"],
      [() => createResilience({ breaker: { failureRate: 1.01 } }), "breaker.failureRate"],
      [() => createResilience({ breaker: { timeWindow: 0 } }), "breaker.timeWindow"],
      [() => createResilience({ breaker: { maxHosts: 0 } }), "breaker.maxHosts"],
      [() => createResilience({ redirects: "manual" as never }), "redirects"],
      [() => createResilience({ fallback: [] as never }), "fallback"],
      [() => degradation({ minSamples: 257 }), "degradation.minSamples"],
      [() => degradation({ sizeMultiple: 0 }), "degradation.sizeMultiple"],
      [() => degradation({ resolutions: [] }), "degradation.resolutions"],
    ];
    for (const [make, path] of cases) expect([path, refusal(make)]).toMatchObject([path, { path }]);
    for (const make of [
      () => createResilience({ retry: { jitter: SECRET as never } }),
      () => createResilience({ crossOriginHeaders: [`authorization: Bearer ${SECRET}`] }),
      () => createResilience({ retry: { [SECRET]: 1 } as never }),
      () => degradation({ levelHeader: SECRET }),
      () => createClient({ resilience: { breaker: { [SECRET]: 1 } as never } }),
    ]) {
      const refused = refusal(make);
      expect(typeof refused).toBe("object");
      expect(JSON.stringify(refused)).not.toMatch(/hunter2|SECRETKEY/);
    }
    // retry(fn) is async: it rejects before `fn` runs.
    let ran = 0;
    const rejected = await retry(() => ran++, { jitter: SECRET as never }).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(ConfigError);
    expect((rejected as ConfigError).path).toBe("retry.jitter");
    expect(`${String(rejected)} ${(rejected as Error).stack}`).not.toMatch(/hunter2|SECRETKEY/);
    expect(ran).toBe(0);
    // ky's own options stay ky's: an unknown key goes through.
    expect(refusal(() => createClient({ cf: { cacheTtl: 1 } } as never))).toBe("accepted");
    expect(typeof ky).toBe("function");
  });
});
