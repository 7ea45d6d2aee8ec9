/**
 * Outside-in attack on the generic pieces of `@storycore/resilient-fetch/policies` (`retry(fn)`, `CircuitBreaker`,
 * `transition`, `FallbackChain`, `Bulkhead`, `RetryBudget`, `nextLevel`, `adjustParameters`), used as a user would
 * for non-HTTP async work (a generation job that throws, hangs or returns) and wrapped around real HTTP calls to
 * 127.0.0.1; on docs/storycore-mapping.md through `createResilience` (named breakers, `execute`, the generic
 * chains, the level); and on examples/storycore-parity, run as its README says.
 *
 * Docs:
 * - docs/storycore-mapping.md: the Names table (`system.breaker("x")`, `.execute(fn)`; `system.fallback.chain("x")
 *   .add(fn, { name, expectedQuality })`; `system.degradation.adjust(p)`; `system.execute(fn, { breaker: "x" })`;
 *   `chain.statistics()`, `system.health()`); "The trigger thresholds: error rate 0.1, response time 30 s, memory
 *   0.9, CPU 0.95."; "work run through `system.execute(fn)` counts in `health()`'s `errorRate` and in the automatic
 *   degradation triggers, as every `resilience.fetch` call does"; "`examples/storycore-parity/engines.ts` rewrites
 *   the guide's three integration examples … Run it with `npm run example:parity`."
 * - examples/storycore-parity/README.md: "Run it: `npm run example:parity` (it builds first, since it imports the
 *   package by name, and refuses a Node older than 22.18 in one line)."
 * - README.md: "`…/policies` | `retry(fn)`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level
 *   machine, for any async work"; src/policies/index.ts: "The machines are pure functions over plain data
 *   (`transition`, `nextLevel`), usable to drive state stored elsewhere."
 * - docs/retry.md "Generic work": "`retry(fn, options)` … is the same loop on its own (no budget unless you pass
 *   one)"; "Both retry every thrown error except an abort, unless `retryOn.error` says otherwise"; "(`retry(fn)` on
 *   the last attempt's error too, whatever `retryOn.error` says of it)"; "Both check all their options before the
 *   first attempt (a `ConfigError` naming the path …), and refuse one they do not know; a bad option, or an `fn`
 *   that is no function, rejects the call, never throws"; "A `retry(fn)` whose `onRetry` throws ends with that
 *   error, before the wait … An async `onRetry` is awaited before the wait, and its rejection ends the call the
 *   same way; a caller's abort while it runs settles the call at once."
 * - JSDoc: `retry` ("Rejects with `RetryExhaustedError` (its `cause` the last error) when every attempt failed, or
 *   with the error itself when `retryOn.error` rejects it"), `RetryCallOptions.signal` ("Aborting stops the current
 *   wait at once and rejects with `signal.reason`"), `.budget` ("a refusal ends the loop"), the `RetryOptions`
 *   defaults (3, 1000, 60000, 2, "full"), `backoffDelay`'s formulas; `CircuitBreaker.hold` ("Holds the circuit open
 *   until `until`"), `.execute` ("refused with `CircuitOpenError` while open; a thrown error counts as a failure when
 *   `isFailure` says so; an abort of `signal` counts as neither"), its `onChange` ("a throw reaches that caller
 *   (the change stands …)"); `transition` ("An unchanged state is returned as the same object, so a caller can tell
 *   "nothing happened" by identity"); `Bulkhead` ("A full queue rejects at once; a queued caller that aborts leaves
 *   the queue"); `FallbackChain.execute` ("A caller's abort settles the run at once, even while an entry ignores
 *   the signal"); `nextLevel` (hysteresis); `adjustParameters`' example.
 * - docs/breakers.md: "at most `halfOpenMaxCalls` (3) probes in flight … A probe aborted by its caller … frees its
 *   slot at once … Any probe failure re-opens; `successThreshold` (2) successes close", the defaults table (12 in a
 *   row, 30 s open); docs/fallback.md ("`.add(fn, { name, expectedQuality })` (any other option is a `TypeError`),
 *   `.execute(input)` (rejects with `FallbackExhaustedError`)", a run its caller aborted "is not counted, nor the
 *   endpoint it was waiting on"); docs/degradation.md ("A breach steps down one level per `stepInterval` (10 s).
 *   Stepping up needs the signals to be clearly healthy … for a whole `restoreAfter` (60 s), one level at a time;
 *   values in between hold the level").
 *
 * How: `retry`, `CircuitBreaker`, `transition`, `initialBreakerState`, `FallbackChain`, `Bulkhead`, `RetryBudget`,
 * `nextLevel`, `initialLevelState`, `adjustParameters`, `defaultLevels` (./policies); `createResilience` and the
 * errors (root); `fallback` (./fallback); `degradation` (./degradation, with `cpuUsage: 1, memoryUsage: 1` so the
 * machine's own load never trips it); `TestClock` (./testing) for every clock; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) dropping connections, answering 503, hanging; `npm run example:parity` as a child
 * process (Node 22 first on PATH).
 *
 * Paths: generic work only (no `resilience.fetch` call): plain `retry(fn)` (alone, with a shared budget, around
 * `fetch`), a standalone `CircuitBreaker` (closed → open → half-open under ten concurrent jobs → closed, around
 * `fetch`), the pure `transition`, a `FallbackChain` (plain, aborted, across two servers), a `Bulkhead`, the level
 * machine, and through a layer `execute(fn, { breaker })`, a named breaker and the level's triggers.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fiftieth session, so plain `it`):
 * 1. circuit-breaker.ts JSDoc of `hold`: "Holds the circuit open until `until` (e.g. a `Retry-After` too long to
 *    wait)". Observed: a hold until an instant already past (a `Retry-After` date a little behind the machine's
 *    clock, turned into epoch ms by the caller) trips a healthy closed breaker: `onChange` hears `closed → open`
 *    (reason the hold's) and `open → half_open`, the breaker reads `half_open`, and with three jobs running a
 *    fourth is refused with `CircuitOpenError`; one failure then re-opens it for `timeout`. The same happens to a
 *    `failure(permit, reason, { until })` with a past `until`: one failure below `failureThreshold` opens the
 *    circuit. Cause: src/policies/breaker-state.ts, `hold()` opens any state that is not already open as long, with
 *    no check that `until` lies ahead of `now` (called by `transition`'s "hold" and by "failure" with `input.hold`).
 *    (`hold(NaN)` is taken too and holds the breaker open for good: `retryAt()` NaN.)
 * 2. breaker-state.ts JSDoc of `transition`: "An unchanged state is returned as the same object, so a caller can
 *    tell "nothing happened" by identity" (and index.ts: usable "to drive state stored elsewhere"). Observed: a
 *    failure reported while open in the same millisecond as the trip (two jobs admitted while closed failing
 *    together, as in workerd, whose clock stands still between I/O) returns a new object deep-equal to the input:
 *    a caller that writes its store when the identity changes writes for nothing. A seeded fuzz over every input
 *    kind found no other such case. Cause: breaker-state.ts `failure()`, `if (s.state === "open") return { ...s,
 *    lastFailureTime: now }` even when `lastFailureTime` is `now` already.
 *
 * Held (plain `it`):
 * - retry(fn) on a TestClock: defaults are 3 attempts at 0, 750, 2250 ms with `random` 0.75 (1000 then 2000 ms
 *   before full jitter), `RetryExhaustedError` (`attempts` 3, `cause` the last error, no `endpoint`); jitter none
 *   (base 3, cap 500: 100, 300, 500, 500), equal (500, 1000 at random 0) and decorrelated (2000, 3500, capped 4000);
 *   `retryOn.error` refusing gives the error itself, on the last attempt `RetryExhaustedError`; a shared
 *   `RetryBudget` refusing ends the loop (`retriesDenied` 1); nothing left on the clock.
 * - retry(fn) aborts and hooks: an abort while the job hangs (ignoring its signal), during the wait, or during an
 *   async `onRetry` settles at once with `signal.reason`, no timer left, the job not run again, no unhandled
 *   rejection; a throwing or rejecting `onRetry` ends the call with its error before the wait; eleven bad options
 *   and a misspelt one, `retryOn.statuses` and a non-function `fn` reject (never throw) with the path named.
 * - retry(fn) around `fetch` to 127.0.0.1: two dropped connections then an answer (3 requests, attempts 1, 2, 3);
 *   an abort while the server hangs settles at once and the server sees the connection close.
 * - CircuitBreaker: bad numbers, hooks, clock and signal refused at once, naming each; half-open under ten
 *   concurrent jobs runs exactly three probes, refuses seven with `retryAt` = the first lease's expiry, two
 *   successes close (`closed->open`, `open->half_open`, `half_open->closed`); a probe its caller aborts frees its
 *   slot at once and its late failure counts for nothing; a throwing `isFailure` reaches the caller and gives the
 *   slot back; a throwing `onChange` on the trip reaches the caller and the circuit stays open; around `fetch`
 *   (503 twice, then 200) it opens after 2, sends nothing while open, probes after `timeout`, closes after 2.
 * - FallbackChain: order, statistics, `FallbackExhaustedError` (`chain`, `errors`, `cause`); an aborted `execute`
 *   settles at once while its entry ignores the signal, the spare never runs and nothing is counted; `add` and the
 *   constructor refuse unknown options, a duplicate name, a quality out of range; across two servers the primary's
 *   503 moves the job to the spare.
 * - Bulkhead: a full queue rejects at once, an aborted queued caller leaves the queue, slots pass on in order.
 * - nextLevel at the documented thresholds: 0.1 holds, 0.11 steps, one step per 10 s, 19 calls too few, p95 over
 *   30 s a breach, 0.07 holds and restarts recovery, 60 s of ≤ 0.05 steps up one, memory 0.9 holds and 0.91 steps
 *   (no minimum of calls), `set` pins, `restore` unpins; `adjustParameters` gives its JSDoc example.
 * - The mapping through `createResilience`: `execute(fn, { breaker })` attempts at 0, 500, 1500 ms (`random` 0.5),
 *   `retry` events with the breaker's name and the error's name, `health().errorRate` 1; 21 failing `execute`s a
 *   second apart step the level to `high` (not further), `adjust` then gives 0.9 and 720p; a named breaker opens at
 *   the 12th failure in a row, refuses until 30 s, lets 3 probes through and closes on their success; an aborted
 *   `execute` settles at once, leaves no timer, is not counted and frees its breaker.
 * - `npm run example:parity` builds, exits 0 and prints wan / qwen / `video:story(medium)+enhanced@720p`, the video
 *   chain's statistics and the five breaker names.
 *
 * Docs-silent (not pinned):
 * - `retry(fn, { budget })` never deposits: a `RetryBudget` given to it earns nothing per call (only the free
 *   `minPerSecond` refill), so `ratio` does nothing and `new RetryBudget({ ratio: 1, minPerSecond: 0 })` never
 *   grants a retry, where `execute` ("the same loop") deposits once per call. Say so, or deposit in `retry`.
 *   (Since said: the `budget` option's JSDoc.)
 * - A hedged `FallbackChain.run(input, { signal, hedgeDelay })` whose caller aborted while an entry ignores its
 *   signal re-arms a hedge timer every `hedgeDelay` for as long as that entry runs (a real timer keeps a Node
 *   process alive), launching nothing: `#hedging` still counts entries left to hedge after the abort. (Since
 *   fixed: no hedge timer after the abort; tested at the end of this file.)
 * - A named breaker or a standalone one around `fetch` counts a resolved 503 as a success, and `retry(() =>
 *   fetch(url))` does not retry it: the work must throw (the docs say they know nothing of requests).
 * - `CircuitBreaker.retryAt()` ("after which a request may be admitted again") of a half-open breaker whose three
 *   probes hang is the first lease's expiry, when the circuit re-opens and refuses for `timeout` more
 *   (`CircuitOpenError.retryAt`'s JSDoc says so; the method's does not). (Since said in the method's JSDoc too.)
 * - `LEVEL_NAMES` is not frozen (`defaultLevels` is, "a write here would change every layer"): a JS caller's
 *   `LEVEL_NAMES.reverse()` renames every layer's levels. `systemClock` is writable too. (Since fixed: both frozen.)
 * - README's command table says the Node examples, `examples/storycore-parity` included, run "each against local
 *   fake APIs": the parity example makes no HTTP call (stand-in engine objects). SECURITY.md still says `retry`'s
 *   "1.7 KiB" where the README and `npx size-limit` give 2.2 KiB. (Since corrected, both.)
 */
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  RetryExhaustedError,
} from "../../src/index.ts";
import {
  adjustParameters,
  Bulkhead,
  CircuitBreaker,
  defaultLevels,
  FallbackChain,
  initialBreakerState,
  initialLevelState,
  type LevelState,
  type MachineSettings,
  nextLevel,
  type ResolvedBreakerPolicy,
  RetryBudget,
  retry,
  type Signals,
  transition,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const gen = httpUpstream();
const spare = httpUpstream();
serveDuringFile(gen, spare);

/** A standalone breaker's policy: every number, as `new CircuitBreaker` needs them. */
const policy: ResolvedBreakerPolicy = {
  failureThreshold: 2,
  successThreshold: 2,
  timeout: 1_000,
  halfOpenMaxCalls: 3,
  timeWindow: 30_000,
  probeTimeout: 5_000,
  failureRate: undefined,
  minimumCalls: 100,
};

/** A generation job that never settles on its own (it ignores any signal). */
const hangs = (): Promise<never> => new Promise<never>(() => {});

/** Fails with `message` (a job function that throws). */
const fails = (message: string) => async (): Promise<never> => {
  throw new Error(message);
};

/** Lets promise chains run without moving the clock. */
async function ticks(n = 30): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** A job over HTTP: the response's text, or a throw for a status that is no success (a user's own wrapper). */
async function generate(url: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(url, { signal: signal ?? null });
  const text = await response.text();
  if (!response.ok) throw new Error(`status ${response.status}`);
  return text;
}

describe("retry(fn) on a TestClock: the documented numbers", () => {
  it("defaults: 3 attempts, 1000 ms then 2000 ms before full jitter, RetryExhaustedError with the last error", async () => {
    const clock = new TestClock();
    const at: number[] = [];
    const delays: number[] = [];
    const call = retry(
      ({ attempt }) => {
        at.push(clock.now());
        throw new Error(`GPU busy #${attempt}`);
      },
      { clock, random: () => 0.75, onRetry: ({ delay }) => void delays.push(delay) },
    );
    const settled = rejection(call);
    await clock.advance(10_000);
    const error = (await settled) as RetryExhaustedError;
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error.attempts).toBe(3);
    expect((error.cause as Error).message).toBe("GPU busy #3");
    expect(error.endpoint).toBeUndefined();
    // Full jitter: random() × min(maxDelay, initialDelay × 2^(n−1)).
    expect(delays).toEqual([750, 1500]);
    expect(at).toEqual([0, 750, 2250]);
    expect(clock.pending()).toBe(0);
  });

  it("jitter none, equal and decorrelated follow their formulas; maxDelay caps every delay", async () => {
    const delaysOf = async (options: Parameters<typeof retry>[1]): Promise<number[]> => {
      const clock = new TestClock();
      const delays: number[] = [];
      const settled = rejection(
        retry(fails("x"), { clock, ...options, onRetry: ({ delay }) => void delays.push(delay) }),
      );
      await clock.advance(1_000_000);
      await settled;
      expect(clock.pending()).toBe(0);
      return delays;
    };
    expect(
      await delaysOf({ jitter: "none", maxAttempts: 5, initialDelay: 100, exponentialBase: 3, maxDelay: 500 }),
    ).toEqual([100, 300, 500, 500]);
    // equal: capped/2 + random(0, capped/2), never shorter than half.
    expect(await delaysOf({ jitter: "equal", maxAttempts: 3, random: () => 0 })).toEqual([500, 1000]);
    // decorrelated: min(maxDelay, random(initialDelay, previous × 3)).
    expect(await delaysOf({ jitter: "decorrelated", maxAttempts: 4, random: () => 0.5, maxDelay: 4_000 })).toEqual([
      2_000, 3_500, 4_000,
    ]);
  });

  it("retryOn.error refusing ends with the error itself; on the last attempt it is RetryExhaustedError", async () => {
    const clock = new TestClock();
    const own = new Error("bad prompt");
    let calls = 0;
    const first = await rejection(
      retry(
        () => {
          calls++;
          throw own;
        },
        { clock, retryOn: { error: () => false } },
      ),
    );
    expect(first).toBe(own);
    expect(calls).toBe(1);
    const last = (await rejection(
      retry(() => Promise.reject(own), { maxAttempts: 1, retryOn: { error: () => false } }),
    )) as RetryExhaustedError;
    expect(last).toBeInstanceOf(RetryExhaustedError);
    expect(last.cause).toBe(own);
  });

  it("a shared RetryBudget that refuses ends the loop at once, with RetryExhaustedError", async () => {
    const clock = new TestClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1 }, clock);
    let calls = 0;
    const job = () => {
      calls++;
      throw new Error("busy");
    };
    const one = rejection(retry(job, { clock, budget, maxAttempts: 2, jitter: "none", initialDelay: 10 }));
    await clock.advance(10);
    expect(((await one) as RetryExhaustedError).attempts).toBe(2);
    const two = (await rejection(retry(job, { clock, budget, maxAttempts: 2 }))) as RetryExhaustedError;
    expect(two).toBeInstanceOf(RetryExhaustedError);
    expect(two.attempts).toBe(1);
    expect(calls).toBe(3);
    expect(budget.snapshot()).toMatchObject({ retriesAllowed: 1, retriesDenied: 1 });
    expect(clock.pending()).toBe(0);
  });
});

describe("retry(fn): aborts and the caller's hooks", () => {
  it("an abort while the job hangs (ignoring its signal) settles at once with signal.reason, nothing left", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    let calls = 0;
    const { value: error, unhandled } = await watchUnhandled(async () => {
      const settled = rejection(
        retry(
          () => {
            calls++;
            return hangs();
          },
          { clock, random: () => 0.5, signal: controller.signal },
        ),
      );
      await ticks();
      const reason = new Error("user left");
      controller.abort(reason);
      expect(await settled).toBe(reason);
      await clock.advance(100_000);
      return reason;
    });
    expect(error).toBeInstanceOf(Error);
    expect(unhandled).toEqual([]);
    expect(calls).toBe(1);
    expect(clock.pending()).toBe(0);
  });

  it("an abort during the backoff wait settles at once, clears the timer and runs the job no more", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    let calls = 0;
    const settled = rejection(
      retry(
        () => {
          calls++;
          throw new Error("busy");
        },
        { clock, random: () => 0.5, signal: controller.signal },
      ),
    );
    await clock.waitForTimers(1);
    await clock.advance(100);
    const reason = new Error("cancelled");
    controller.abort(reason);
    expect(await settled).toBe(reason);
    expect(clock.pending()).toBe(0);
    await clock.advance(100_000);
    expect(calls).toBe(1);
  });

  it("onRetry that throws ends the call with that error before the wait; an async one's rejection too", async () => {
    const clock = new TestClock();
    const hook = new Error("logger down");
    let calls = 0;
    const job = () => {
      calls++;
      throw new Error("busy");
    };
    const thrown = await rejection(
      retry(job, {
        clock,
        onRetry: () => {
          throw hook;
        },
      }),
    );
    expect(thrown).toBe(hook);
    expect(clock.pending()).toBe(0);
    const { value, unhandled } = await watchUnhandled(() =>
      rejection(retry(job, { clock, onRetry: () => Promise.reject(hook) })),
    );
    expect(value).toBe(hook);
    expect(unhandled).toEqual([]);
    expect(calls).toBe(2);
    expect(clock.pending()).toBe(0);
  });

  it("an abort while an async onRetry runs settles at once, its later rejection handled", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    let rejectHook: (error: Error) => void = () => {};
    const { value, unhandled } = await watchUnhandled(async () => {
      const settled = rejection(
        retry(fails("busy"), {
          clock,
          signal: controller.signal,
          onRetry: () =>
            new Promise<void>((_, reject) => {
              rejectHook = reject;
            }),
        }),
      );
      await ticks();
      const reason = new Error("gone");
      controller.abort(reason);
      const error = await settled;
      rejectHook(new Error("late hook failure"));
      return [error, reason];
    });
    expect(value[0]).toBe(value[1]);
    expect(unhandled).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("refuses bad options before the first attempt, rejecting (never throwing) a ConfigError naming the path", async () => {
    let calls = 0;
    const job = () => {
      calls++;
      return "ok";
    };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxAttempts: 0 }, "retry.maxAttempts"],
      [{ maxAttempts: 1.5 }, "retry.maxAttempts"],
      [{ initialDelay: -1 }, "retry.initialDelay"],
      [{ maxDelay: Number.NaN }, "retry.maxDelay"],
      [{ exponentialBase: 0.5 }, "retry.exponentialBase"],
      [{ jitter: "ful" }, "retry.jitter"],
      [{ onRetry: "log" }, "retry.onRetry"],
      [{ signal: {} }, "retry.signal"],
      [{ clock: { now: () => 0 } }, "retry.clock"],
      [{ budget: {} }, "retry.budget"],
      [{ retryOn: { error: true } }, "retry.retryOn.error"],
    ];
    for (const [options, path] of cases) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = retry(job, options as never);
      }).not.toThrow();
      const error = (await rejection(promise as Promise<unknown>)) as ConfigError;
      expect(error, path).toBeInstanceOf(ConfigError);
      expect(error.path, JSON.stringify(options)).toBe(path);
    }
    const misspelt = (await rejection(retry(job, { maxAtempts: 2 } as never))) as ConfigError;
    expect(misspelt.message).toBe('retry: unknown option "maxAtempts"');
    // The HTTP-only options are resilience.fetch's, not retry(fn)'s.
    const http = (await rejection(retry(job, { retryOn: { statuses: [503] } } as never))) as ConfigError;
    expect(http.message).toBe('retry.retryOn: unknown option "statuses"');
    expect(await rejection(retry("job" as never))).toBeInstanceOf(TypeError);
    expect(calls).toBe(0);
  });
});

describe("retry(fn) around real HTTP calls to 127.0.0.1", () => {
  it("retries a dropped connection twice and resolves with the third answer", async () => {
    gen.on((hit) => {
      if (hit.n <= 2) hit.req.socket.destroy();
      else hit.res.end(`image after ${hit.n}`);
    });
    const clock = new TestClock();
    const attempts: number[] = [];
    const text = await clock.run(
      retry(
        ({ attempt, signal }) => {
          attempts.push(attempt);
          return generate(`${gen.base}/v1/images`, signal);
        },
        { clock, initialDelay: 200 },
      ),
    );
    expect(text).toBe("image after 3");
    expect(attempts).toEqual([1, 2, 3]);
    expect(gen.hits).toHaveLength(3);
    expect(clock.pending()).toBe(0);
  });

  it("an abort while the server hangs settles at once; the server sees the connection close", async () => {
    gen.on(() => {});
    const clock = new TestClock();
    const controller = new AbortController();
    const settled = rejection(
      retry(({ signal }) => generate(`${gen.base}/v1/hang`, signal), { clock, signal: controller.signal }),
    );
    const hit = await gen.nth(1);
    const reason = new Error("user closed the tab");
    controller.abort(reason);
    expect(await settled).toBe(reason);
    await hit.closed;
    expect(gen.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("CircuitBreaker on its own", () => {
  it("refuses bad numbers and hooks at once, naming each", async () => {
    const clock = new TestClock();
    const named = (make: () => unknown): string => {
      try {
        make();
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    expect(named(() => new CircuitBreaker("gpu", { ...policy, failureThreshold: 0 }, clock))).toBe(
      "CircuitBreaker.failureThreshold: expected a value >= 1, received 0",
    );
    expect(named(() => new CircuitBreaker("gpu", { ...policy, halfOpenMaxCalls: 1.5 }, clock))).toBe(
      "CircuitBreaker.halfOpenMaxCalls: expected an integer, received 1.5",
    );
    expect(named(() => new CircuitBreaker("gpu", { ...policy, timeout: Number.NaN }, clock))).toBe(
      "CircuitBreaker.timeout: expected number, received NaN",
    );
    expect(named(() => new CircuitBreaker("gpu", { ...policy, probeTimeout: 0 }, clock))).toBe(
      "CircuitBreaker.probeTimeout: expected a value > 0, received 0",
    );
    expect(named(() => new CircuitBreaker("gpu", policy, clock, { onchange: () => {} } as never))).toBe(
      'CircuitBreaker: unknown option "onchange"',
    );
    expect(named(() => new CircuitBreaker("gpu", policy, clock, { isFailure: true } as never))).toBe(
      "CircuitBreaker.isFailure: expected a function, received true",
    );
    expect(named(() => new CircuitBreaker("gpu", policy, {} as never))).toMatch(/^CircuitBreaker\.clock/);
    // A signal that is no AbortSignal: refused, the job never runs, the breaker hears nothing.
    const breaker = new CircuitBreaker("gpu", policy, clock);
    let ran = false;
    const error = await rejection(
      breaker.execute(() => {
        ran = true;
        return 1;
      }, "soon" as never),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(ran).toBe(false);
    expect(breaker.toJSON().failures).toEqual([]);
  });

  it("half-open under ten concurrent jobs: three probes run, seven are refused until the first lease ends; two successes close", async () => {
    const clock = new TestClock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker("gpu", policy, clock, {
      onChange: (c) => void changes.push(`${c.from}->${c.to}`),
    });
    await rejection(breaker.execute(fails("a")));
    await rejection(breaker.execute(fails("b")));
    expect(breaker.state).toBe("open");
    await clock.advance(1_000);
    expect(breaker.state).toBe("half_open");
    const finish: Array<(value: string) => void> = [];
    let started = 0;
    const calls = Array.from({ length: 10 }, () =>
      breaker
        .execute(
          () =>
            new Promise<string>((resolve) => {
              started++;
              finish.push(resolve);
            }),
        )
        .then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
    );
    await ticks();
    expect(started).toBe(3);
    const refused = (await Promise.all(calls.slice(3))).map((r) => ("error" in r ? r.error : r));
    for (const error of refused) {
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect((error as CircuitOpenError).retryAt).toBe(clock.now() + policy.probeTimeout);
    }
    finish[0]?.("one");
    finish[1]?.("two");
    await ticks();
    expect(breaker.state).toBe("closed");
    expect(changes).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
    finish[2]?.("three");
    expect((await Promise.all(calls.slice(0, 3))).map((r) => ("value" in r ? r.value : r))).toEqual([
      "one",
      "two",
      "three",
    ]);
    expect(await breaker.execute(async () => "after")).toBe("after");
  });

  it("a probe its caller aborts frees its slot at once; its late outcome counts for nothing", async () => {
    const clock = new TestClock();
    const breaker = new CircuitBreaker("gpu", { ...policy, halfOpenMaxCalls: 1 }, clock);
    await rejection(breaker.execute(fails("a")));
    await rejection(breaker.execute(fails("b")));
    await clock.advance(1_000);
    const controller = new AbortController();
    let failLate: (error: Error) => void = () => {};
    const probe = rejection(
      breaker.execute(
        () =>
          new Promise<never>((_, reject) => {
            failLate = reject;
          }),
        controller.signal,
      ),
    );
    expect(breaker.refuses()).toBe(true);
    const reason = new Error("gone");
    controller.abort(reason);
    expect(await probe).toBe(reason);
    expect(breaker.refuses()).toBe(false);
    failLate(new Error("late"));
    await ticks();
    expect(breaker.state).toBe("half_open");
    expect(clock.pending()).toBe(0);
  });

  it("an isFailure that throws reaches the caller and gives the probe slot back", async () => {
    const clock = new TestClock();
    const broken = new Error("classifier bug");
    let judge = (_: unknown): boolean => true;
    const breaker = new CircuitBreaker("gpu", { ...policy, halfOpenMaxCalls: 1 }, clock, {
      isFailure: (error) => judge(error),
    });
    await rejection(breaker.execute(fails("a")));
    await rejection(breaker.execute(fails("b")));
    await clock.advance(1_000);
    judge = () => {
      throw broken;
    };
    expect(await rejection(breaker.execute(fails("c")))).toBe(broken);
    expect(breaker.state).toBe("half_open");
    expect(breaker.refuses()).toBe(false);
    expect(await breaker.execute(async () => "probe ran")).toBe("probe ran");
  });

  it("an onChange that throws on the trip reaches that caller; the change stands", async () => {
    const clock = new TestClock();
    const hook = new Error("dashboard down");
    const breaker = new CircuitBreaker("gpu", policy, clock, {
      onChange: (c) => {
        if (c.to === "open") throw hook;
      },
    });
    await rejection(breaker.execute(fails("a")));
    expect(await rejection(breaker.execute(fails("b")))).toBe(hook);
    expect(breaker.state).toBe("open");
    expect(await rejection(breaker.execute(async () => 1))).toBeInstanceOf(CircuitOpenError);
  });

  it("around real HTTP: opens after failureThreshold, sends nothing while open, probes after timeout, closes after successThreshold", async () => {
    gen.on((hit) => {
      hit.res.statusCode = hit.n <= 2 ? 503 : 200;
      hit.res.end(hit.n <= 2 ? "busy" : `frame ${hit.n}`);
    });
    const clock = new TestClock();
    const breaker = new CircuitBreaker("gen", policy, clock);
    const job = () => generate(`${gen.base}/v1/video`);
    expect(((await rejection(breaker.execute(job))) as Error).message).toBe("status 503");
    expect(((await rejection(breaker.execute(job))) as Error).message).toBe("status 503");
    const refused = (await rejection(breaker.execute(job))) as CircuitOpenError;
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused.retryAt).toBe(clock.now() + policy.timeout);
    expect(gen.hits).toHaveLength(2);
    await clock.advance(policy.timeout);
    expect(await breaker.execute(job)).toBe("frame 3");
    expect(breaker.state).toBe("half_open");
    expect(await breaker.execute(job)).toBe("frame 4");
    expect(breaker.state).toBe("closed");
    expect(gen.hits).toHaveLength(4);
  });

  // Defect 1.
  it("hold(until) with `until` already past holds nothing: a healthy breaker stays closed and serves", async () => {
    const clock = new TestClock(10_000);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("gpu", policy, clock, {
      onChange: (c) => void changes.push(`${c.from}->${c.to}`),
    });
    // A Retry-After date a second or two behind this machine's clock, turned into epoch ms by the caller.
    breaker.hold(clock.now() - 5_000, "Retry-After date already past");
    const running = [0, 1, 2].map(() => breaker.execute(hangs));
    const fourth = await breaker.execute(async () => "image").catch((error: unknown) => error);
    expect({ state: breaker.state, changes, fourth }).toEqual({ state: "closed", changes: [], fourth: "image" });
    expect(running).toHaveLength(3);
  });

  // Defect 2.
  it("transition returns an unchanged state as the same object (a late failure while open, same ms)", () => {
    const fail = (s: ReturnType<typeof initialBreakerState>) =>
      transition(s, { type: "failure", lease: null, gen: s.gen, reason: "Error" }, 10, policy).state;
    // Two jobs admitted while closed fail in the same millisecond (workerd's clock stands still between I/O).
    const open = fail(fail(initialBreakerState(0)));
    expect(open.state).toBe("open");
    // A third one, admitted before the trip, reports in that same millisecond: nothing changes...
    const late = fail(open);
    expect(late).toEqual(open);
    // ...so a caller storing the state elsewhere should be able to tell by identity, as the JSDoc says.
    expect(late).toBe(open);
  });
});

describe("FallbackChain on its own", () => {
  it("tries entries in order, reports statistics, and rejects FallbackExhaustedError when all fail", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<{ prompt: string }, string>("video_generation", { clock });
    let hunyuan = 0;
    chain
      .add(
        () => {
          hunyuan++;
          throw new Error("GPU busy");
        },
        { name: "hunyuan_premium", expectedQuality: 1 },
      )
      .add(async ({ prompt }) => `wan:${prompt}`, { name: "wan_standard", expectedQuality: 0.8 });
    expect(await chain.execute({ prompt: "scene" })).toBe("wan:scene");
    expect(chain.statistics()).toEqual({
      lastSuccessfulFallback: "wan_standard",
      overallSuccessRate: 1,
      fallbacks: {
        hunyuan_premium: { calls: 1, successes: 0, successRate: 0, meanLatencyMs: 0 },
        wan_standard: { calls: 1, successes: 1, successRate: 1, meanLatencyMs: 0 },
      },
    });
    const empty = new FallbackChain<string, string>("all_down", { clock })
      .add(fails("one down"), { name: "one" })
      .add(fails("two down"), { name: "two" });
    const error = (await rejection(empty.execute("x"))) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error.chain).toBe("all_down");
    expect(Object.keys(error.errors)).toEqual(["one", "two"]);
    expect((error.cause as Error).message).toBe("two down");
    expect(empty.statistics().overallSuccessRate).toBe(0);
    expect(hunyuan).toBe(1);
  });

  it("a caller's abort settles execute at once while an entry ignores its signal; nothing later runs or counts", async () => {
    const clock = new TestClock();
    let spareCalls = 0;
    let finish: (value: string) => void = () => {};
    const chain = new FallbackChain<string, string>("c", { clock })
      .add(
        () =>
          new Promise<string>((resolve) => {
            finish = resolve;
          }),
        { name: "slow" },
      )
      .add(
        async () => {
          spareCalls++;
          return "spare";
        },
        { name: "spare" },
      );
    const controller = new AbortController();
    const { value, unhandled } = await watchUnhandled(async () => {
      const settled = rejection(chain.execute("x", { signal: controller.signal }));
      await ticks();
      const reason = new Error("gone");
      controller.abort(reason);
      const error = await settled;
      finish("too late");
      await ticks();
      return error === reason;
    });
    expect(value).toBe(true);
    expect(unhandled).toEqual([]);
    expect(spareCalls).toBe(0);
    expect(chain.statistics()).toMatchObject({
      overallSuccessRate: 0,
      fallbacks: { slow: { calls: 0 }, spare: { calls: 0 } },
    });
    expect(clock.pending()).toBe(0);
  });

  it("refuses an unknown option, a duplicate name and a quality outside 0..1 at once", () => {
    const chain = new FallbackChain<string, string>("c").add(async () => "a", { name: "a" });
    expect(() => chain.add(async () => "b", { name: "b", quality: 1 } as never)).toThrow(
      'fallbackChain("c").add: unknown option "quality"',
    );
    expect(() => chain.add(async () => "a", { name: "a" })).toThrow(TypeError);
    expect(() => chain.add(async () => "b", { name: "b", expectedQuality: 1.5 })).toThrow(
      /expectedQuality must be within 0\.\.1/,
    );
    expect(() => new FallbackChain("c", { ordr: "fixed" } as never)).toThrow('FallbackChain: unknown option "ordr"');
    expect(chain.ordered()).toEqual(["a"]);
  });

  it("around two real servers: the primary's 503 moves the job to the spare", async () => {
    gen.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    spare.on((hit) => hit.res.end("from spare"));
    const chain = new FallbackChain<string, string>("image_quality")
      .add((path, { signal }) => generate(`${gen.base}${path}`, signal), { name: "primary" })
      .add((path, { signal }) => generate(`${spare.base}${path}`, signal), { name: "spare", expectedQuality: 0.6 });
    expect(await chain.execute("/v1/images")).toBe("from spare");
    expect([gen.hits.length, spare.hits.length]).toEqual([1, 1]);
    expect(chain.statistics().lastSuccessfulFallback).toBe("spare");
  });
});

describe("Bulkhead on its own", () => {
  it("a full queue rejects at once; a queued caller that aborts leaves the queue; slots pass on in order", async () => {
    const bulkhead = new Bulkhead("gpu", 1, 2);
    const release = await bulkhead.acquire();
    const controller = new AbortController();
    const first = rejection(Promise.resolve(bulkhead.acquire(controller.signal)));
    const second = Promise.resolve(bulkhead.acquire());
    const full = await rejection(Promise.resolve(bulkhead.acquire()));
    expect((full as Error).name).toBe("BulkheadRejectedError");
    expect(bulkhead.queued).toBe(2);
    const reason = new Error("left");
    controller.abort(reason);
    expect(await first).toBe(reason);
    expect(bulkhead.queued).toBe(1);
    release();
    const next = await second;
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 0]);
    next();
    expect(bulkhead.active).toBe(0);
    expect(() => new Bulkhead("gpu", 0, 0)).toThrow("Bulkhead.maxConcurrent: expected a value >= 1, received 0");
  });
});

/** The documented defaults of the level machine (docs/degradation.md, docs/storycore-mapping.md). */
const settings: MachineSettings = {
  triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
  minSamples: 20,
  stepInterval: 10_000,
  restoreAfter: 60_000,
};
const signals = (errorRate: number, extra: Partial<Signals> = {}): Signals => ({
  samples: 20,
  errorRate,
  p95: undefined,
  memory: undefined,
  cpu: undefined,
  floor: 0,
  ...extra,
});

describe("the level machine (nextLevel) at its documented thresholds", () => {
  it("breach above the threshold steps one level per stepInterval; clearly healthy for restoreAfter steps back; in between holds", () => {
    const evaluate = (s: LevelState, errorRate: number, now: number, extra?: Partial<Signals>) =>
      nextLevel(s, { type: "evaluate", signals: signals(errorRate, extra) }, now, settings);
    let s = initialLevelState(0);
    s = evaluate(s, 0.1, 0);
    expect(s.index).toBe(0); // at the threshold: no breach
    s = evaluate(s, 0.5, 0, { samples: 19 });
    expect(s.index).toBe(0); // too few calls
    s = evaluate(s, 0.11, 1_000);
    expect(s.index).toBe(1);
    s = evaluate(s, 0.5, 10_999);
    expect(s.index).toBe(1); // within stepInterval
    s = evaluate(s, 0.5, 11_000);
    expect(s.index).toBe(2);
    s = evaluate(s, 0, 12_000, { p95: 30_001 });
    expect(s.index).toBe(2); // p95 over 30 s is a breach, but within stepInterval
    s = evaluate(s, 0.05, 30_000, { samples: 3, p95: 24_000 });
    expect(s.healthySince).toBe(30_000);
    s = evaluate(s, 0.07, 60_000);
    expect([s.index, s.healthySince]).toEqual([2, null]); // in between: holds, recovery starts over
    s = evaluate(s, 0.05, 61_000);
    s = evaluate(s, 0.05, 120_999);
    expect(s.index).toBe(2);
    s = evaluate(s, 0.05, 121_000);
    expect(s.index).toBe(1);
    s = evaluate(s, 0, 121_001, { memory: 0.9, cpu: 0.95 });
    expect(s.index).toBe(1); // at the memory and CPU thresholds: no breach
    s = evaluate(s, 0, 130_999, { memory: 0.91 });
    expect(s.index).toBe(1); // a step up counts for stepInterval too
    s = evaluate(s, 0, 131_000, { memory: 0.91 });
    expect(s.index).toBe(2); // memory needs no minimum of calls
    s = nextLevel(s, { type: "set", level: "full", reason: "ops" }, 131_001, settings);
    s = evaluate(s, 1, 200_000);
    expect([s.index, s.pinned]).toEqual([0, true]);
    s = nextLevel(s, { type: "restore" }, 200_001, settings);
    expect(s.pinned).toBe(false);
  });

  it("adjustParameters gives its JSDoc example at medium", () => {
    const table = {
      resolutions: ["2160p", "1440p", "1080p", "720p", "480p", "360p"],
      sizeMultiple: 8,
      models: [["premium", "standard", "basic"]],
    };
    expect(
      adjustParameters({ quality: 1, resolution: "1080p", steps: 50, model: "premium" }, defaultLevels.medium, table),
    ).toEqual({ quality: 0.8, resolution: "720p", steps: 30, model: "standard" });
  });
});

describe("docs/storycore-mapping.md through createResilience on a TestClock", () => {
  const system = (clock: TestClock) =>
    createResilience({
      clock,
      random: () => 0.5,
      fallback: fallback([]),
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });

  it("execute(fn, { breaker }) retries with the layer's numbers, emits retry events and counts in health()", async () => {
    const clock = new TestClock();
    const resilience = system(clock);
    const at: number[] = [];
    const events: Array<{ key: string; attempt: number; delay: number; reason: string }> = [];
    resilience.on(
      "retry",
      (e) => void events.push({ key: e.key, attempt: e.attempt, delay: e.delay, reason: e.reason }),
    );
    const settled = rejection(
      resilience.execute(
        () => {
          at.push(clock.now());
          throw new TypeError("GPU busy");
        },
        { breaker: "video_generation" },
      ),
    );
    await clock.advance(10_000);
    const error = (await settled) as RetryExhaustedError;
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error.attempts).toBe(3);
    expect(at).toEqual([0, 500, 1500]);
    expect(events).toEqual([
      { key: "video_generation", attempt: 1, delay: 500, reason: "TypeError" },
      { key: "video_generation", attempt: 2, delay: 1000, reason: "TypeError" },
    ]);
    const health = resilience.health();
    expect(health.errorRate).toBe(1);
    expect(health.breakers.video_generation?.state).toBe("closed");
    expect(clock.pending()).toBe(0);
  });

  it("failing work run through execute steps the level down by its error rate, as fetch calls do", async () => {
    const clock = new TestClock();
    const resilience = system(clock);
    for (let i = 0; i < 21; i++) {
      await rejection(resilience.execute(fails("engine down"), { retry: false }));
      await clock.advance(1_000);
    }
    expect(resilience.degradation.currentLevel().name).toBe("high");
    expect(resilience.degradation.adjust({ quality: 1, resolution: "1080p" })).toEqual({
      quality: 0.9,
      resolution: "720p",
    });
  });

  it("a named breaker keeps the documented defaults: 12 in a row, 30 s open, 3 probes, 2 successes close", async () => {
    const clock = new TestClock();
    const resilience = system(clock);
    const breaker = resilience.breaker("upscaler");
    for (let i = 0; i < 11; i++) await rejection(breaker.execute(fails("x")));
    expect(breaker.state).toBe("closed");
    await rejection(breaker.execute(fails("x")));
    expect(breaker.state).toBe("open");
    expect(((await rejection(breaker.execute(async () => 1))) as CircuitOpenError).retryAt).toBe(30_000);
    await clock.advance(29_999);
    expect(breaker.state).toBe("open");
    await clock.advance(1);
    expect(breaker.state).toBe("half_open");
    const finish: Array<() => void> = [];
    const probes = [0, 1, 2].map(() => breaker.execute(() => new Promise<void>((r) => void finish.push(r))));
    expect(await rejection(breaker.execute(async () => 1))).toBeInstanceOf(CircuitOpenError);
    finish[0]?.();
    finish[1]?.();
    finish[2]?.();
    await Promise.all(probes);
    expect(breaker.state).toBe("closed");
    expect(resilience.health().breakers.upscaler?.state).toBe("closed");
  });

  it("an execute its caller aborts settles at once, leaves no timer and is not counted", async () => {
    const clock = new TestClock();
    const resilience = system(clock);
    const controller = new AbortController();
    const settled = rejection(resilience.execute(hangs, { breaker: "workflow_execution", signal: controller.signal }));
    await ticks();
    const reason = new Error("gone");
    controller.abort(reason);
    expect(await settled).toBe(reason);
    expect(clock.pending()).toBe(0);
    expect(resilience.health().errorRate).toBe(0);
    expect(resilience.breaker("workflow_execution").refuses()).toBe(false);
  });
});

describe("examples/storycore-parity, run as its README says", () => {
  it("`npm run example:parity` builds, exits 0 and prints the three ported integrations and the statistics", async () => {
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
      const child = spawn("npm", ["run", "example:parity"], {
        cwd: ROOT,
        env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once("error", fail);
      child.once("close", (code) => done({ code, stdout, stderr }));
    });
    expect(result.code, result.stderr).toBe(0);
    const out = result.stdout;
    expect(out).toContain("video: { engine: 'wan', prompt: 'A story scene', duration: 10, quality: 1 }");
    expect(out).toContain("engine: 'qwen'");
    expect(out).toContain("result: 'video:story(medium)+enhanced@720p'");
    expect(out).toContain("lastSuccessfulFallback: 'wan_standard'");
    expect(out).toContain("overallSuccessRate: 1");
    expect(out).toMatch(/'hunyuan_video',\s+'wan_video',\s+'video_generation',\s+'qwen_image',\s+'workflow_execution'/);
    expect(result.stderr).not.toMatch(/Error|error TS/);
  }, 120_000);
});

// Added with the fix of defect 1: `hold(NaN)` (a date that did not parse) is refused at once, and a past
// `until` given with a failure opens nothing below the threshold.
describe("hold: what is no time", () => {
  it("refuses NaN and a string at once, naming the argument", () => {
    const breaker = new CircuitBreaker("gpu", policy, new TestClock(10_000));
    expect(() => breaker.hold(Number.NaN, "bad date")).toThrow(
      /breaker\.hold\(until\): expected a time in ms, got NaN/,
    );
    expect(() => breaker.hold("soon" as never, "bad")).toThrow(/got string/);
    expect(breaker.state).toBe("closed");
  });

  it("a failure with a past hold counts as one failure, below the threshold", () => {
    const s = initialBreakerState(0);
    const next = transition(
      s,
      { type: "failure", lease: null, gen: s.gen, reason: "503", hold: { until: 5, reason: "Retry-After" } },
      10,
      policy,
    ).state;
    expect(next.state).toBe("closed");
  });
});

// Added with the fix of the docs-silent hedge timer: after the caller's abort, an entry that ignores its signal
// leaves no timer behind (on the real clock it kept the process alive, one hedge timer after another).
describe("a hedged FallbackChain run its caller aborted", () => {
  it("arms no hedge timer while an entry that ignores its signal runs on", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<string, string>("video_generation", { clock });
    let finish: (value: string) => void = () => {};
    chain
      .add(() => new Promise<string>((resolve) => (finish = resolve)), { name: "stubborn" })
      .add(async () => "spare", { name: "spare" })
      .add(async () => "third", { name: "third" });
    const caller = new AbortController();
    const run = chain.run("prompt", { signal: caller.signal, hedgeDelay: 1_000 });
    const outcome = run.then(
      () => "resolved",
      (error: unknown) => (error as Error).name,
    );
    for (let i = 0; i < 5; i++) await Promise.resolve();
    // The first hedge timer is armed while the stubborn entry runs.
    expect(clock.pending()).toBe(1);
    caller.abort(new DOMException("gone", "AbortError"));
    // `run` waits for an entry that ignores its signal (its JSDoc says so); `execute` would settle now.
    await clock.advance(5_000);
    // Observed before the fix: 1, a timer re-armed every `hedgeDelay`, and on the real clock the process kept alive.
    expect(clock.pending()).toBe(0);
    finish("late");
    expect(await outcome).toBe("resolved");
    expect(clock.pending()).toBe(0);
  });
});

// Added with the fix of the docs-silent item: the shared constants are frozen, as `defaultLevels` is.
describe("what every layer shares", () => {
  it("LEVEL_NAMES and systemClock refuse a write", async () => {
    const { LEVEL_NAMES, systemClock } = await import("../../src/policies/index.ts");
    expect(Object.isFrozen(LEVEL_NAMES)).toBe(true);
    expect(Object.isFrozen(systemClock)).toBe(true);
    expect(() => (LEVEL_NAMES as string[]).reverse()).toThrow(TypeError);
  });
});
