/**
 * Outside-in attack on the generic pieces of `./policies` (`retry(fn)`, `CircuitBreaker`, `FallbackChain`,
 * `RetryBudget`, `Bulkhead`, `nextLevel`) and on the root's `resilience.execute(fn)` with named breakers, driven
 * with thrown values that are no plain `Error`, clocks set back, long-lived signals, and child processes on the
 * real clock. Aimed at what policiesdoc-fifty, mappingdoc-fiftyfive and generic-thirty did not drive.
 *
 * Docs:
 * - src/policies/retry.ts JSDoc of `retry`: "Rejects with {@link RetryExhaustedError} (its `cause` the last error)
 *   when every attempt failed"; docs/retry.md "Generic work": "Both reject with `RetryExhaustedError` when attempts
 *   run out"; docs/retry.md's error table: "`RetryExhaustedError` | the last attempt failed without a response (a
 *   network error) … | `attempts`, `endpoint` …, `cause`".
 * - docs/fallback.md: "`.execute(input)` (rejects with `FallbackExhaustedError`)"; "or rejects with
 *   `FallbackExhaustedError` (`errors` per endpoint; its message lists them in the order they failed, its `cause`
 *   is the last one's error)".
 * - src/core/errors.ts JSDoc of `unlessThrows`: "Work and transports may throw anything (a revoked Proxy, an error
 *   whose `name` getter throws): looking at such a value must not end, or change, the call that met it."
 * - docs/health-and-events.md: execute's `retry` event ("`key` its `breaker`'s name …; `url` empty; `reason` the
 *   thrown error's name, as `debugInfo()` lists it; `retryAfter` false"); "Work run through `execute(fn)` counts
 *   there too … `debugInfo()`'s totals and failures (keyed by its `breaker`'s name …)".
 * - docs/breakers.md "A clock set back": "an open spell then waits its own length again from now …, the probes
 *   out, on a step back past the circuit's last change, are given up as expired leases are (the circuit re-opens
 *   for `timeout`; one that answers late then counts for nothing …) … every window and pace counts on from now
 *   … A `clock` you pass is treated the same way." (the list names "the retry budget's refill, degradation's
 *   steps and recovery, the fade of a chain's endpoint failures in adaptive order"); "Any probe failure
 *   re-opens; `successThreshold` (2) successes close".
 * - docs/retry.md: "Both check all their options before the first attempt (a `ConfigError` naming the path:
 *   `execute.signal`, `retry.onRetry`…)"; docs/retry.md: "A caller's abort … stops the wait or the attempt at
 *   once"; src/core/clock.ts: "every timer is cleared when its call settles, so none outlives its work".
 *
 * How: `retry`, `CircuitBreaker`, `FallbackChain`, `RetryBudget`, `Bulkhead`, `nextLevel`, `initialLevelState`
 * (./policies); `createResilience`, the errors (root); `TestClock` (./testing); a clock of the test's own that it
 * sets back (TestClock only moves forward); `getEventListeners` on one long-lived signal; child `node` processes
 * (the same binary) importing the src entries and timing their exit; a transport of the test's own (`fetch`
 * option) throwing, for the one `resilience.fetch` case.
 *
 * Paths: `retry(fn)`, `new FallbackChain(...).execute`, `resilience.execute(fn, { breaker, fallback })`,
 * `resilience.breaker(name).execute`, a standalone `CircuitBreaker` (open, half-open, stale probes), the budget,
 * adaptive order and the level machine on a clock set back; `resilience.fetch` once (same cause).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-sixth session, so plain `it`):
 * 1. retry.ts JSDoc "Rejects with RetryExhaustedError (its `cause` the last error) when every attempt failed".
 *    Observed: when the last error is an `Error` whose `message` is no string (a Symbol, a null-prototype object,
 *    an object whose `toString` throws: code that assigns `err.message = detail`), `retry(fn)` rejects with a
 *    `TypeError` ("Cannot convert a Symbol value to a string", "Cannot convert object to primitive value") or
 *    with the `toString`'s own error, after every attempt ran: building the error throws. Cause:
 *    src/core/errors.ts `describe()` returns `error.message || error.name` unconverted from inside
 *    `unlessThrows`; the template literal of `RetryExhaustedError`'s (and `FallbackExhaustedError`'s) constructor
 *    converts it outside, where nothing catches.
 * 2. docs/fallback.md "`.execute(input)` (rejects with `FallbackExhaustedError`)". Observed: a chain whose last
 *    entry threw such an error rejects with that `TypeError` (same cause).
 * 3. docs/retry.md "Both reject with `RetryExhaustedError` when attempts run out" (`execute`). Observed: the
 *    same `TypeError`; `execute`'s `fallback` is called with it, and `debugInfo()` lists `TypeError`, not the
 *    work's error (same cause).
 * 4. docs/retry.md's table, `RetryExhaustedError`: "the last attempt failed without a response (a network
 *    error)". Observed: `resilience.fetch` whose transport throws such an error rejects with the `TypeError`
 *    (same cause; outside ./policies, kept to one test).
 *
 * Held (plain `it`):
 * - Thrown values that are no `Error` (a string, null, undefined, a Symbol, a revoked Proxy, an `Error` whose
 *   `name` getter throws, a null-prototype object) through `execute(fn, { breaker })`: `RetryExhaustedError`
 *   with that very value as `cause`, two attempts, one `retry` event each whose `reason` is the value's kind (as
 *   `debugInfo().recentErrors` names the value when a call rejects with it, `retryOn.error` refusing); the named
 *   breaker opens; `health()` reads nothing that throws.
 *   Through `retry(fn)` and a chain the same values come back as `cause` and in `errors`.
 * - A standalone `CircuitBreaker` on a clock set back a day while open waits `timeout` from now (not a day);
 *   half-open with three probes out, set back an hour past its last change, reads `open` (event `half_open →
 *   open`, `openUntil` now + `timeout`) and the probes' late successes count for nothing; a probe of an earlier
 *   half-open spell succeeding late counts for nothing in the next spell.
 * - `RetryBudget` set back a day earns no token across the step and refills from then; an adaptive chain's fade
 *   counts from the first look after the step (a failed entry back first 120 s later); `nextLevel` paces its
 *   steps from the step back (held at once, a step 10 s later).
 * - 50 rounds of `retry`, `breaker.execute`, `execute` (with a breaker and a `fallback`) and an unhedged
 *   `chain.execute` on one long-lived signal leave no abort listener on it.
 * - Child processes on the real clock exit within 2 s: `retry` aborted during a 60 s wait and while its work
 *   hangs, `execute` aborted during a 60 s wait, a hedged run (60 s `hedgeDelay`) won by the first entry, a
 *   standalone breaker opened for 60 s.
 * - Bad options at once, by path: `execute.breaker`, `execute.fallback`, `execute.retry` (`onRetry` is
 *   `retry(fn)`'s), `execute.signal`, a misspelt `execute` key (all rejections); `FallbackChain.order`,
 *   `RetryBudget.ratio`, `Bulkhead.maxConcurrent`, `CircuitBreaker` (null policy), `CircuitBreaker.clock.now`.
 *
 * Docs-silent (not pinned):
 * - A named breaker's reason for a thrown string is `thrown string` (its `breaker` event, `health()`'s
 *   `lastError`), while `execute`'s `retry` event and `debugInfo()` say `string`; for an `Error` whose `name`
 *   getter throws the breaker says `object`, with no `thrown`. docs/breakers.md says a breaker's reason "names the
 *   last failure as the `retry` event does", in its per-host paragraph only.
 * - `execute` around a frozen `Error` whose message holds a URL rejects with a `RetryExhaustedError` whose `cause`
 *   is a redacted copy, not the work's error (a writable one is cut in place: the caller's own object changes).
 * - `chain.execute(input, null)` rejects with the engine's destructuring `TypeError`, and a misspelt
 *   `chain.execute(input, { sigal })` is ignored, where `add`, the constructor, `retry` and `execute` refuse one.
 * - A `retryOn.error` or a `budget.tryRetry` that throws ends `retry(fn)` with its throw.
 * - `execute(fn)` whose work throws `undefined` (refused by `retryOn.error`, so the call rejects with it) is listed
 *   in `debugInfo().recentErrors` with `error: undefined`, while its `retry` events say `undefined` as text.
 * - `execute.breaker: ""` is refused as "expected a value >= 1, received \"\"" (a length, worded as a number).
 */
import { spawn } from "node:child_process";
import { getEventListeners } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, createResilience, FallbackExhaustedError, RetryExhaustedError } from "../../src/index.ts";
import {
  Bulkhead,
  CircuitBreaker,
  type Clock,
  FallbackChain,
  initialLevelState,
  nextLevel,
  type ResolvedBreakerPolicy,
  RetryBudget,
  retry,
  systemClock,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { rejection } from "../helpers/settled.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const policy: ResolvedBreakerPolicy = {
  failureThreshold: 2,
  successThreshold: 2,
  timeout: 30_000,
  halfOpenMaxCalls: 3,
  timeWindow: 30_000,
  probeTimeout: 30_000,
  failureRate: 1,
  minimumCalls: 100,
};

/** A clock the test sets anywhere, back too; its timers are never fired (nothing here waits on one). */
function manualClock(start: number): Clock & { t: number } {
  const clock = {
    t: start,
    now: () => clock.t,
    setTimer: () => () => {},
  };
  return clock;
}

/** An `Error` whose `message` is `message` (code that assigns a detail object to `err.message`). */
function withMessage(message: unknown): Error {
  const error = new Error("placeholder");
  (error as { message: unknown }).message = message;
  return error;
}

const fail = (error: unknown) => (): never => {
  throw error;
};

async function ticks(n = 30): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe("thrown errors whose message is no string", () => {
  it("retry(fn) rejects with RetryExhaustedError, cause the error, when its message is a Symbol", async () => {
    const error = withMessage(Symbol("detail"));
    let runs = 0;
    const got = await rejection(
      retry(
        () => {
          runs++;
          throw error;
        },
        { maxAttempts: 2, initialDelay: 0 },
      ),
    );
    expect(runs).toBe(2);
    expect(got).toBeInstanceOf(RetryExhaustedError);
    expect((got as RetryExhaustedError).cause).toBe(error);
  });

  it("retry(fn) rejects with RetryExhaustedError when the message is a null-prototype object or its toString throws", async () => {
    for (const message of [
      Object.create(null),
      {
        toString() {
          throw new Error("boom");
        },
      },
    ]) {
      const error = withMessage(message);
      const got = await rejection(retry(fail(error), { maxAttempts: 1 }));
      expect(got).toBeInstanceOf(RetryExhaustedError);
      expect((got as RetryExhaustedError).cause).toBe(error);
    }
  });

  it("FallbackChain.execute rejects with FallbackExhaustedError when the last entry's error has a Symbol message", async () => {
    const error = withMessage(Symbol("detail"));
    const chain = new FallbackChain<number, number>("thumbs");
    chain.add(fail(new Error("gpu busy")), { name: "gpu" }).add(fail(error), { name: "cpu" });
    const got = await rejection(chain.execute(1));
    expect(got).toBeInstanceOf(FallbackExhaustedError);
    expect((got as FallbackExhaustedError).cause).toBe(error);
    expect((got as FallbackExhaustedError).errors.cpu).toBe(error);
  });

  it("execute(fn, { breaker, fallback }) rejects with RetryExhaustedError and hands it to fallback", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, budget: false, retry: { maxAttempts: 2, initialDelay: 10 } });
    const error = withMessage(Symbol("detail"));
    const got = await clock.run(rejection(resilience.execute(fail(error), { breaker: "upscaler" })));
    expect(got).toBeInstanceOf(RetryExhaustedError);
    expect((got as RetryExhaustedError).cause).toBe(error);
    let given: unknown;
    await clock.run(
      resilience.execute(fail(error), {
        fallback: (e) => {
          given = e;
          return "placeholder";
        },
      }),
    );
    expect(given).toBeInstanceOf(RetryExhaustedError);
    expect(resilience.debugInfo().recentErrors.map((r) => r.error)).toEqual([
      "RetryExhaustedError",
      "RetryExhaustedError",
    ]);
  });

  it("resilience.fetch whose transport throws such an error rejects with RetryExhaustedError", async () => {
    const error = withMessage(Symbol("socket detail"));
    const resilience = createResilience({
      retry: { maxAttempts: 1 },
      fetch: async () => {
        throw error;
      },
    });
    const got = await rejection(resilience.fetch("http://127.0.0.1:9/jobs"));
    expect(got).toBeInstanceOf(RetryExhaustedError);
    expect((got as RetryExhaustedError).cause).toBe(error);
  });
});

describe("thrown values that are no Error", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const nameThrows = Object.defineProperty(new Error("g"), "name", {
    get() {
      throw new Error("no name");
    },
  });
  const values: [string, unknown, string][] = [
    ["a string", "gpu busy", "string"],
    ["null", null, "object"],
    ["undefined", undefined, "undefined"],
    ["a Symbol", Symbol("busy"), "symbol"],
    ["a revoked Proxy", revoked.proxy, "object"],
    ["an Error whose name getter throws", nameThrows, "object"],
    ["a null-prototype object", Object.create(null), "object"],
  ];

  it("execute(fn, { breaker }): RetryExhaustedError with the value as cause, retry reason its kind as debugInfo names it, the breaker opens", async () => {
    for (const [label, value, kind] of values) {
      const clock = new TestClock();
      const resilience = createResilience({
        clock,
        budget: false,
        retry: { maxAttempts: 2, initialDelay: 100, jitter: "none" },
      });
      resilience.breaker("upscaler", { failureThreshold: 2 });
      const reasons: string[] = [];
      const changes: string[] = [];
      resilience.on("retry", (e) => reasons.push(`${e.key}|${e.url}|${e.reason}|${e.delay}|${e.retryAfter}`));
      resilience.on("breaker", (e) => changes.push(`${e.from}>${e.to}`));
      const got = await clock.run(rejection(resilience.execute(fail(value), { breaker: "upscaler" })));
      expect(got, label).toBeInstanceOf(RetryExhaustedError);
      expect((got as RetryExhaustedError).cause, label).toBe(value);
      expect((got as RetryExhaustedError).attempts, label).toBe(2);
      expect(reasons, label).toEqual([`upscaler||${kind}|100|false`]);
      expect(changes, label).toEqual(["closed>open"]);
      const health = resilience.health();
      expect(health.breakers.upscaler?.state, label).toBe("open");
      expect(health.errorRate, label).toBe(1);
      const info = resilience.debugInfo();
      expect(
        info.recentErrors.map((r) => [r.key, r.url, r.error]),
        label,
      ).toEqual([["upscaler", "", "RetryExhaustedError"]]);
      // Refused by retryOn.error before the last attempt, the call rejects with the value itself: listed by its kind.
      // Boxed: an async function returning a revoked Proxy would read its `then` and throw.
      const own = await resilience
        .execute(fail(value), { retry: { maxAttempts: 2, retryOn: { error: () => false } } })
        .then(
          () => ({ e: "resolved" as unknown }),
          (e: unknown) => ({ e }),
        );
      expect(own.e, label).toBe(value);
      // A thrown `undefined` is listed with no error at all (docs-silent, see the header).
      expect(resilience.debugInfo().recentErrors[1]?.error, label).toBe(kind === "undefined" ? undefined : kind);
      expect(JSON.stringify(resilience.health()).length, label).toBeGreaterThan(0);
    }
  });

  it("retry(fn) and a chain give the value back as cause and in errors", async () => {
    for (const [label, value] of values) {
      const got = await rejection(retry(fail(value), { maxAttempts: 2, initialDelay: 0 }));
      expect(got, label).toBeInstanceOf(RetryExhaustedError);
      expect((got as RetryExhaustedError).cause, label).toBe(value);
      const chain = new FallbackChain<number, number>("c");
      chain.add(fail(value), { name: "only" });
      const exhausted = await rejection(chain.execute(1));
      expect(exhausted, label).toBeInstanceOf(FallbackExhaustedError);
      expect((exhausted as FallbackExhaustedError).errors.only, label).toBe(value);
      expect(chain.statistics().fallbacks.only?.calls, label).toBe(1);
    }
  });
});

describe("a clock set back", () => {
  it("a standalone breaker open when the clock goes back a day waits its timeout from now", async () => {
    const clock = manualClock(1_000_000_000);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("k", policy, clock, {
      onChange: (c) => changes.push(`${c.from}>${c.to}@${c.openUntil === null ? "-" : c.openUntil - clock.t}`),
    });
    for (let i = 0; i < 2; i++) await rejection(breaker.execute(fail(new Error("down"))));
    expect(breaker.state).toBe("open");
    clock.t -= 86_400_000;
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt() - clock.t).toBe(30_000);
    clock.t += 29_999;
    expect(breaker.state).toBe("open");
    clock.t += 1;
    expect(breaker.state).toBe("half_open");
    await expect(breaker.execute(async () => 1)).resolves.toBe(1);
    expect(changes).toEqual(["closed>open@30000", "open>half_open@-"]);
  });

  it("half-open with probes out, set back past its last change, reads open; late probe answers count for nothing", async () => {
    const clock = manualClock(1_000_000_000);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("k", policy, clock, {
      onChange: (c) => changes.push(`${c.from}>${c.to}@${c.openUntil === null ? "-" : c.openUntil - clock.t}`),
    });
    for (let i = 0; i < 2; i++) await rejection(breaker.execute(fail(new Error("down"))));
    clock.t += 30_000;
    const answers: ((v: number) => void)[] = [];
    const probes = [0, 1, 2].map(() => breaker.execute(() => new Promise<number>((r) => answers.push(r))));
    expect(answers).toHaveLength(3);
    expect(breaker.refuses()).toBe(true);
    clock.t -= 3_600_000;
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt() - clock.t).toBe(30_000);
    for (const answer of answers) answer(1);
    await Promise.all(probes);
    expect(breaker.state).toBe("open");
    expect(changes).toEqual(["closed>open@30000", "open>half_open@-", "half_open>open@30000"]);
  });

  it("a probe of an earlier half-open spell that succeeds late counts for nothing in the next spell", async () => {
    const clock = manualClock(0);
    const breaker = new CircuitBreaker("k", policy, clock);
    for (let i = 0; i < 2; i++) await rejection(breaker.execute(fail(new Error("down"))));
    clock.t = 30_000;
    const pending: { resolve: (v: number) => void; reject: (e: unknown) => void }[] = [];
    const work = () => new Promise<number>((resolve, reject) => pending.push({ resolve, reject }));
    const first = breaker.execute(work);
    const stale = breaker.execute(work);
    pending[0]?.reject(new Error("probe failed"));
    await rejection(first);
    expect(breaker.state).toBe("open");
    clock.t = 60_000;
    const fresh = breaker.execute(work);
    pending[1]?.resolve(1);
    await stale;
    expect(breaker.state).toBe("half_open");
    expect(breaker.toJSON().successes).toBe(0);
    pending[2]?.resolve(1);
    await fresh;
    expect(breaker.state).toBe("half_open");
  });

  it("the budget's refill, an adaptive chain's fade and the level machine's pace count on from the step back", async () => {
    const clock = manualClock(1_000_000_000);
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1 }, clock);
    expect([budget.tryRetry(), budget.tryRetry()]).toEqual([true, false]);
    clock.t -= 86_400_000;
    expect(budget.tryRetry()).toBe(false);
    clock.t += 1_000;
    expect(budget.tryRetry()).toBe(true);

    const chain = new FallbackChain<number, number>("a", { order: "adaptive", clock });
    let primaryFails = true;
    chain
      .add(
        () => {
          if (primaryFails) throw new Error("a");
          return 1;
        },
        { name: "A" },
      )
      .add(() => 2, { name: "B" });
    expect(await chain.execute(0)).toBe(2);
    primaryFails = false;
    expect(chain.ordered()).toEqual(["B", "A"]);
    clock.t -= 86_400_000;
    expect(chain.ordered()).toEqual(["B", "A"]);
    clock.t += 120_000;
    expect(chain.ordered()).toEqual(["A", "B"]);

    const settings = {
      triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
      minSamples: 20,
      stepInterval: 10_000,
      restoreAfter: 60_000,
    };
    const signals = { samples: 30, errorRate: 0.5, p95: 10, memory: undefined, cpu: undefined, floor: 0 };
    const t0 = 1_000_000_000;
    let s = nextLevel(initialLevelState(t0), { type: "evaluate", signals }, t0, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals }, t0 - 86_400_000, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals }, t0 - 86_400_000 + 9_999, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals }, t0 - 86_400_000 + 10_000, settings);
    expect(s.index).toBe(2);
  });
});

describe("signals, timers and processes", () => {
  it("50 rounds on one long-lived signal leave no abort listener on it", async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const resilience = createResilience({ budget: false, retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0 } });
    const chain = new FallbackChain<number, number>("c");
    chain.add(fail(new Error("a")), { name: "a" }).add(() => 2, { name: "b" });
    const flaky = async ({ attempt }: { attempt: number }) => {
      if (attempt === 1) throw new Error("once");
      return 1;
    };
    for (let i = 0; i < 50; i++) {
      await retry(flaky, { signal, initialDelay: 0 });
      await rejection(
        retry(fail(new Error("y")), { signal, maxAttempts: 2, initialDelay: 0, onRetry: async () => {} }),
      );
      await resilience.breaker("named").execute(async () => 1, signal);
      await resilience.execute(flaky, { signal, breaker: "work" });
      await resilience.execute(fail("s"), { signal, fallback: () => 3 });
      await chain.execute(1, { signal });
    }
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
    controller.abort();
    expect(resilience.debugInfo().totals.calls).toBe(100);
  });

  it("child processes on the real clock exit at once after an abort, a won hedge, or a breaker opened for 60 s", async () => {
    const dir = mkdtempSync(join(tmpdir(), "policiesdoc56-"));
    const script = join(dir, "child.ts");
    writeFileSync(
      script,
      `import { retry, FallbackChain, CircuitBreaker, systemClock } from ${JSON.stringify(`${ROOT}/src/policies/index.ts`)};
import { createResilience } from ${JSON.stringify(`${ROOT}/src/index.ts`)};
const which = process.argv[2];
const controller = new AbortController();
setTimeout(() => controller.abort(new Error("stop")), 20);
const signal = controller.signal;
const boom = () => { throw new Error("x"); };
if (which === "retry-wait") await retry(boom, { initialDelay: 60_000, jitter: "none", signal }).catch((e) => console.log(e.message));
if (which === "retry-hang") await retry(() => new Promise(() => {}), { signal }).catch((e) => console.log(e.message));
if (which === "execute-wait") await createResilience({}).execute(boom, { breaker: "b", retry: { initialDelay: 60_000, jitter: "none" }, signal }).catch((e) => console.log(e.message));
if (which === "hedge") {
  const chain = new FallbackChain("c");
  chain.add(async () => 1, { name: "a" }).add(async () => 2, { name: "b" });
  console.log((await chain.run(1, { hedgeDelay: 60_000 })).ok ? "stop" : "lost");
}
if (which === "breaker") {
  const b = new CircuitBreaker("k", { failureThreshold: 1, successThreshold: 1, timeout: 60_000, halfOpenMaxCalls: 1, timeWindow: 1000, probeTimeout: 60_000, failureRate: 1, minimumCalls: 1 }, systemClock);
  await b.execute(boom).catch(() => {});
  console.log(b.state === "open" ? "stop" : "closed");
}
`,
    );
    try {
      for (const which of ["retry-wait", "retry-hang", "execute-wait", "hedge", "breaker"]) {
        const started = Date.now();
        const result = await new Promise<{ code: number | null; out: string; err: string }>((done, failed) => {
          const child = spawn(process.execPath, [script, which], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          let err = "";
          child.stdout.on("data", (c: Buffer) => {
            out += c.toString();
          });
          child.stderr.on("data", (c: Buffer) => {
            err += c.toString();
          });
          const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
          child.once("error", failed);
          child.once("close", (code) => {
            clearTimeout(killer);
            done({ code, out, err });
          });
        });
        expect(result.code, `${which}: ${result.err}`).toBe(0);
        expect(result.out.trim(), which).toBe("stop");
        expect(Date.now() - started, which).toBeLessThan(5_000);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("execute aborted during its wait on a TestClock settles at once with the reason; nothing counted, no timer", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, budget: false, retry: { initialDelay: 1_000, jitter: "none" } });
    const controller = new AbortController();
    let runs = 0;
    const call = resilience.execute(
      () => {
        runs++;
        throw "busy";
      },
      { breaker: "b", signal: controller.signal },
    );
    const settled = rejection(call);
    await clock.waitForTimers(1);
    controller.abort("gone");
    expect(await settled).toBe("gone");
    await ticks();
    expect(clock.pending()).toBe(0);
    expect(runs).toBe(1);
    expect(resilience.debugInfo().totals.calls).toBe(0);
    expect(resilience.health().breakers.b?.consecutiveFailures).toBe(1);
  });
});

describe("bad options, at once and by path", () => {
  it("execute rejects (never throws) a ConfigError naming each path; the constructors throw at once", async () => {
    const resilience = createResilience({});
    const cases: [unknown, string][] = [
      [{ breaker: "" }, "execute.breaker"],
      [{ fallback: 1 }, "execute.fallback"],
      [{ retry: { onRetry: () => {} } }, "execute.retry"],
      [{ retry: { maxAttempts: 0 } }, "execute.retry.maxAttempts"],
      [{ signal: {} }, "execute.signal"],
      [{ breakr: "x" }, "execute"],
      [null, "execute"],
    ];
    for (const [options, path] of cases) {
      let runs = 0;
      let call: Promise<unknown> | undefined;
      expect(() => {
        call = resilience.execute(() => {
          runs++;
        }, options as never);
      }).not.toThrow();
      const got = await rejection(call as Promise<unknown>);
      expect(got, path).toBeInstanceOf(ConfigError);
      expect((got as ConfigError).path).toBe(path);
      expect(runs).toBe(0);
    }
    const constructors: [() => unknown, string][] = [
      [() => new FallbackChain("c", { order: "random" as never }), "FallbackChain.order"],
      [() => new RetryBudget({ ratio: -1, minPerSecond: 1 }), "RetryBudget.ratio"],
      [() => new Bulkhead("k", 0, 0), "Bulkhead.maxConcurrent"],
      [() => new CircuitBreaker("k", null as never, systemClock), "CircuitBreaker"],
      [() => new CircuitBreaker("k", policy, {} as never), "CircuitBreaker.clock.now"],
    ];
    for (const [build, path] of constructors) {
      let thrown: unknown;
      try {
        build();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, path).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).path).toBe(path);
    }
  });
});
