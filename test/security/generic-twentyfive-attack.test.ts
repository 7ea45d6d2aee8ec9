/**
 * Outside-in attack on the `./policies` entry used for any async work (not HTTP): `retry(fn)`,
 * `CircuitBreaker` on its own, `FallbackChain`, the backoff formulas and the level machine.
 * Docs: docs/retry.md "Generic work", docs/breakers.md (states, probes, leases), docs/fallback.md
 * (the generic chain and its `statistics()`), docs/degradation.md (hysteresis), the JSDoc of
 * `retry`, `RetryCallOptions`, `exponentialDelay`, `CircuitBreaker` (its `onChange` option and
 * `execute`), `FallbackChain`, `nextLevel`; docs/storycore-mapping.md and
 * examples/storycore-parity/README.md (the example was run by hand as documented:
 * `npm run build && node examples/storycore-parity/engines.ts` exits 0 and prints the video,
 * image and workflow results and the chain statistics).
 * How: `../../src/policies/index.ts` and `../../src/testing/index.ts` (TestClock) only; no real
 * sleeping; `process.on("unhandledRejection")` watched where a hook rejects.
 * Paths: plain `retry(fn)` (abort in the wait, in an async `onRetry`, options refused), a
 * standalone `CircuitBreaker` through closed → open → half-open → closed/open with its
 * `onChange` hook throwing at each change, a `FallbackChain` run plain and aborted while an entry
 * ignores its signal, `exponentialDelay`/`retry` with a long run of attempts, `nextLevel`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a close whose hook throws stays closed, a hook's throw gives back the probe slot, a run counted when it ends, no NaN from a zero delay):
 * 1. circuit-breaker.ts JSDoc of `onChange` "Called at each change of state, inside the call that
 *    caused it: a throw reaches that caller" + of `execute` "a thrown error counts as a failure
 *    when `isFailure` says so". Observed: a probe whose work resolved closes the circuit, the
 *    hook throws on `half_open → closed`, and that throw (not the work's) is then counted as a
 *    failure of the work: with `failureThreshold: 1` the circuit re-opens at once
 *    (`closed → open`, reason "1 failure in a row (last: Error)"), so a healthy service is
 *    held open for another `timeout`.
 * 2. docs/breakers.md "After `timeout` (30 s) it is HALF_OPEN: at most `halfOpenMaxCalls` (3)
 *    probes in flight". Observed: when `onChange` throws on `open → half_open` (inside
 *    `execute`'s admission), the caller gets the hook's error and its work never runs, yet the
 *    probe slot it took is kept: with `halfOpenMaxCalls: 1` and nothing in flight, the next
 *    `execute` is refused with `CircuitOpenError` (retryAt = the leaked lease's expiry, 5000 ms
 *    later), and that lease's expiry then re-opens the circuit as a failed probe.
 * 3. docs/fallback.md (the chain's `statistics()`) "a run its caller aborted, or that
 *    `timeout.total` ended, is not counted". Observed: `execute(input, { signal })` rejects at
 *    the abort, but while the abandoned entry ignores its signal the run stays counted as a
 *    failed one: after one served run and one aborted run, `overallSuccessRate` is 0.5, not 1
 *    (for ever, when the entry never settles).
 * 4. backoff.ts JSDoc of `exponentialDelay` "`min(maxDelay, initialDelay *
 *    exponentialBase^(n-1))`". Observed: with `initialDelay: 0` (accepted by `retry`, min 0)
 *    the power overflows to Infinity after enough retries (n ≥ 310 at base 10) and 0 × Infinity
 *    is NaN: `exponentialDelay` returns NaN, and `retry`'s `onRetry` is handed `delay: NaN`.
 *
 * Held (plain `it`):
 * - retry(fn): an abort during the backoff wait or during an async `onRetry` settles at once with
 *   `signal.reason`, leaves no timer on the clock, never calls `fn` again, leaves no unhandled
 *   rejection; `RetryExhaustedError` carries `attempts`, `cause` (the last error) and no
 *   `endpoint`; `retryOn.error` refusing rejects with the error itself; bad and misspelt options
 *   are a `ConfigError` naming the path before `fn` runs.
 * - CircuitBreaker: opens after `failureThreshold` in a row, refuses with `CircuitOpenError`
 *   (`key`, `retryAt`), reads half-open after `timeout`, admits `halfOpenMaxCalls` probes and
 *   refuses the next with `retryAt` = the first lease's expiry, a probe aborted by its caller
 *   frees its slot at once, `successThreshold` successes close, a probe failure re-opens, an
 *   expired lease reads `open`; an async `onChange` that rejects leaves no unhandled rejection.
 * - FallbackChain: entries in order, `FallbackExhaustedError` with `chain`, `errors` per entry
 *   and `cause` the last; an aborted run rejects at once and no later entry is called.
 * - nextLevel: one step per `stepInterval`, values between the two thresholds hold the level,
 *   stepping up needs a whole `restoreAfter` of clearly healthy signals.
 */
import { describe, expect, it } from "vitest";
import { CircuitOpenError, ConfigError, FallbackExhaustedError, RetryExhaustedError } from "../../src/index.ts";
import {
  CircuitBreaker,
  exponentialDelay,
  FallbackChain,
  initialLevelState,
  type MachineSettings,
  nextLevel,
  type ResolvedBreakerPolicy,
  retry,
  type Signals,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { failOnUnhandledRejections } from "../helpers/unhandled.ts";

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** A promise the test settles by hand: work that ignores its signal. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

// Every rejection left unhandled fails the test that left it.
failOnUnhandledRejections();

const policy: ResolvedBreakerPolicy = {
  failureThreshold: 2,
  successThreshold: 2,
  timeout: 1000,
  halfOpenMaxCalls: 2,
  timeWindow: 30_000,
  probeTimeout: 5000,
  failureRate: undefined,
  minimumCalls: 100,
};

const fail = (): Promise<never> => Promise.reject(new Error("down"));

describe("retry(fn) on its own (docs/retry.md 'Generic work', RetryCallOptions JSDoc)", () => {
  it("an abort during the backoff wait settles at once, leaves no timer and never calls fn again", async () => {
    const clock = new TestClock(0);
    const controller = new AbortController();
    let calls = 0;
    const call = retry(
      () => {
        calls++;
        throw new Error("busy");
      },
      { clock, signal: controller.signal, maxAttempts: 5, initialDelay: 10_000, jitter: "none" },
    );
    await clock.waitForTimers(1);
    expect(calls).toBe(1);
    const reason = new Error("caller gone");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(clock.pending()).toBe(0);
    await clock.advance(100_000);
    expect(calls).toBe(1);
  });

  it("an abort while an async onRetry runs settles at once; its later rejection is not left unhandled", async () => {
    const clock = new TestClock(0);
    const controller = new AbortController();
    let calls = 0;
    let rejectHook!: (error: Error) => void;
    const call = retry(
      () => {
        calls++;
        throw new Error("busy");
      },
      {
        clock,
        signal: controller.signal,
        maxAttempts: 3,
        onRetry: () =>
          new Promise<void>((_, reject) => {
            rejectHook = reject;
          }),
      },
    );
    await turns();
    const reason = new Error("caller gone");
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    rejectHook(new Error("hook failed late"));
    expect(clock.pending()).toBe(0);
    expect(calls).toBe(1);
  });

  it("gives up with RetryExhaustedError (attempts, cause, no endpoint); retryOn.error's refusal is the error itself", async () => {
    const clock = new TestClock(0);
    const last = new Error("third");
    let n = 0;
    const exhausted = await rejection(
      clock.run(
        retry(
          () => {
            n++;
            throw n === 3 ? last : new Error(`attempt ${n}`);
          },
          { clock, maxAttempts: 3, initialDelay: 1 },
        ),
      ),
    );
    expect(exhausted).toBeInstanceOf(RetryExhaustedError);
    expect(exhausted).toMatchObject({ attempts: 3, endpoint: undefined });
    expect((exhausted as Error).cause).toBe(last);

    const fatal = new TypeError("bad prompt");
    let runs = 0;
    const refused = await rejection(
      retry(
        () => {
          runs++;
          throw fatal;
        },
        { clock, maxAttempts: 3, retryOn: { error: (e) => !(e instanceof TypeError) } },
      ),
    );
    expect(refused).toBe(fatal);
    expect(runs).toBe(1);
  });

  it("refuses bad and misspelt options with a ConfigError naming the path, before fn runs", async () => {
    let runs = 0;
    const fn = () => {
      runs++;
      return 1;
    };
    const cases: [unknown, string][] = [
      [{ maxAttempts: 0 }, "retry.maxAttempts"],
      [{ initialDelay: Number.NaN }, "retry.initialDelay"],
      [{ jitter: "some" }, "retry.jitter"],
      [{ maxAtempts: 3 }, "retry"],
      [{ retryOn: { statuses: [503] } }, "retry.retryOn"],
      [{ onRetry: "log" }, "retry.onRetry"],
      [{ signal: {} }, "retry.signal"],
    ];
    for (const [options, path] of cases) {
      const error = await rejection(retry(fn, options as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    }
    expect(runs).toBe(0);
  });
});

describe("a standalone CircuitBreaker (docs/breakers.md, CircuitBreaker JSDoc)", () => {
  it("closed → open → half-open probes → closed, and a failed probe re-opens, on a TestClock", async () => {
    const clock = new TestClock(0);
    const breaker = new CircuitBreaker("upscaler", policy, clock);
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("closed");
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("open");
    let ran = false;
    const refused = await rejection(
      breaker.execute(async () => {
        ran = true;
      }),
    );
    expect(ran).toBe(false);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({ key: "upscaler", retryAt: 1000 });

    await clock.advance(1000);
    expect(breaker.state).toBe("half_open");
    // Two probes in flight; a third is refused until the first lease (5000 ms) runs out.
    const first = deferred<string>();
    const second = deferred<string>();
    const p1 = breaker.execute(() => first.promise);
    const controller = new AbortController();
    const p2 = breaker.execute(() => second.promise, controller.signal);
    const third = await rejection(breaker.execute(async () => "x"));
    expect(third).toMatchObject({ name: "CircuitOpenError", retryAt: 6000 });
    // A probe aborted by its caller frees its slot at once.
    const reason = new Error("gone");
    controller.abort(reason);
    expect(await rejection(p2)).toBe(reason);
    const p3 = breaker.execute(async () => "probe 3");
    first.resolve("probe 1");
    expect(await p1).toBe("probe 1");
    expect(await p3).toBe("probe 3");
    expect(breaker.state).toBe("closed");

    // Open again, then a failed probe re-opens for `timeout`.
    await rejection(breaker.execute(fail));
    await rejection(breaker.execute(fail));
    await clock.advance(1000);
    await rejection(breaker.execute(fail));
    expect(breaker.state).toBe("open");
    expect(breaker.retryAt()).toBe(clock.now() + 1000);
  });

  it("a probe whose lease runs out re-opens: `state` reads open", async () => {
    const clock = new TestClock(0);
    const breaker = new CircuitBreaker("k", { ...policy, failureThreshold: 1, halfOpenMaxCalls: 1 }, clock);
    await rejection(breaker.execute(fail));
    await clock.advance(1000);
    void breaker.execute(() => new Promise(() => {}));
    await clock.advance(5000);
    expect(breaker.state).toBe("open");
  });

  it("an async onChange that rejects is reported, never left unhandled", async () => {
    const clock = new TestClock(0);
    const seen: string[] = [];
    const breaker = new CircuitBreaker("k", { ...policy, failureThreshold: 1 }, clock, {
      onChange: async (change) => {
        seen.push(`${change.from}->${change.to}`);
        throw new Error("async hook");
      },
    });
    const original = console.error;
    const reported: unknown[] = [];
    console.error = (error: unknown) => reported.push(error);
    try {
      await rejection(breaker.execute(fail));
      await turns();
    } finally {
      console.error = original;
    }
    expect(seen).toEqual(["closed->open"]);
    expect(breaker.state).toBe("open");
  });

  it('1. onChange "a throw reaches that caller" + execute "a thrown error counts as a failure when isFailure says so": a hook throwing on close does not re-open a circuit whose probe succeeded', async () => {
    const clock = new TestClock(0);
    const changes: string[] = [];
    const breaker = new CircuitBreaker("k", { ...policy, failureThreshold: 1, successThreshold: 1 }, clock, {
      onChange: (change) => {
        changes.push(`${change.from}->${change.to}`);
        if (change.to === "closed") throw new Error("hook");
      },
    });
    await rejection(breaker.execute(fail));
    await clock.advance(1000);
    // The work succeeds; the hook's throw reaches the caller, as documented.
    const error = await rejection(breaker.execute(async () => "image"));
    expect((error as Error).message).toBe("hook");
    // The work did not fail: the probe's success closed the circuit, and it stays closed.
    expect(changes).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
    expect(breaker.state).toBe("closed");
  });

  it('2. breakers.md "at most `halfOpenMaxCalls` (3) probes in flight": a hook throwing on open → half_open leaves no probe slot taken', async () => {
    const clock = new TestClock(0);
    let throwOnHalfOpen = true;
    const breaker = new CircuitBreaker("k", { ...policy, failureThreshold: 1, halfOpenMaxCalls: 1 }, clock, {
      onChange: (change) => {
        if (change.to === "half_open" && throwOnHalfOpen) throw new Error("hook");
      },
    });
    await rejection(breaker.execute(fail));
    await clock.advance(1000);
    let ran = 0;
    const work = async () => {
      ran++;
      return "ok";
    };
    const error = await rejection(breaker.execute(work));
    expect((error as Error).message).toBe("hook");
    expect(ran).toBe(0);
    throwOnHalfOpen = false;
    // Nothing is in flight: the one probe slot is free, and the next call goes as the probe.
    expect(breaker.refuses()).toBe(false);
    expect(await breaker.execute(work)).toBe("ok");
    expect(ran).toBe(1);
  });
});

describe("FallbackChain for any async work (docs/fallback.md, FallbackChain JSDoc)", () => {
  it("tries entries in order and rejects with FallbackExhaustedError (chain, errors, cause the last)", async () => {
    const order: string[] = [];
    const a = new Error("a down");
    const b = new Error("b down");
    const chain = new FallbackChain<string, string>("thumbnail")
      .add(
        async () => {
          order.push("gpu");
          throw a;
        },
        { name: "gpu" },
      )
      .add(
        async () => {
          order.push("cpu");
          throw b;
        },
        { name: "cpu", expectedQuality: 0.6 },
      );
    const error = await rejection(chain.execute("x"));
    expect(order).toEqual(["gpu", "cpu"]);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error).toMatchObject({ chain: "thumbnail", errors: { gpu: a, cpu: b } });
    expect((error as Error).cause).toBe(b);
  });

  it("an aborted run rejects at once with the reason, and no later entry is called", async () => {
    const controller = new AbortController();
    const called: string[] = [];
    const chain = new FallbackChain<number, number>("c")
      .add(
        () => {
          called.push("a");
          return new Promise<number>(() => {});
        },
        { name: "a" },
      )
      .add(
        () => {
          called.push("b");
          return 2;
        },
        { name: "b" },
      );
    const run = chain.execute(1, { signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await rejection(run)).toBe(reason);
    await turns();
    expect(called).toEqual(["a"]);
  });

  it('3. fallback.md "a run its caller aborted … is not counted": an aborted run whose entry ignores its signal leaves overallSuccessRate alone', async () => {
    let hang = false;
    const chain = new FallbackChain<number, number>("c").add((n) => (hang ? new Promise<number>(() => {}) : n * 2), {
      name: "only",
    });
    expect(await chain.execute(1)).toBe(2);
    expect(chain.statistics().overallSuccessRate).toBe(1);
    hang = true;
    const controller = new AbortController();
    const run = chain.execute(2, { signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await rejection(run)).toBe(reason);
    await turns();
    // The aborted run is no failure: one run, served.
    expect(chain.statistics().overallSuccessRate).toBe(1);
  });
});

describe("backoff formula (backoff.ts JSDoc)", () => {
  it('4. exponentialDelay "`min(maxDelay, initialDelay * exponentialBase^(n-1))`": initialDelay 0 is a delay of 0 at every retry, never NaN', async () => {
    const options = { initialDelay: 0, maxDelay: 1000, exponentialBase: 10, jitter: "none" as const };
    expect(exponentialDelay(310, options)).toBe(0);
    // Through retry(fn): the delay handed to onRetry.
    const clock = new TestClock(0);
    const delays: number[] = [];
    await rejection(
      clock.run(
        retry(
          () => {
            throw new Error("busy");
          },
          { ...options, clock, maxAttempts: 320, onRetry: ({ delay }) => void delays.push(delay) },
        ),
      ),
    );
    expect(delays).toHaveLength(319);
    expect(delays.every((d) => d === 0)).toBe(true);
    expect(exponentialDelay(320, options)).toBe(0);
  });
});

describe("the level machine (nextLevel JSDoc, docs/degradation.md)", () => {
  const settings: MachineSettings = {
    triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
    minSamples: 20,
    stepInterval: 10_000,
    restoreAfter: 60_000,
  };
  const signals = (errorRate: number): Signals => ({
    samples: 50,
    errorRate,
    p95: 100,
    memory: undefined,
    cpu: undefined,
    floor: 0,
  });

  it("steps down one level per stepInterval, holds between thresholds, steps up after a whole restoreAfter", () => {
    let s = initialLevelState(0);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.5) }, 1000, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.5) }, 5000, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.5) }, 11_000, settings);
    expect(s.index).toBe(2);
    // Between half the threshold and the threshold: held, and no recovery clock runs.
    s = nextLevel(s, { type: "evaluate", signals: signals(0.08) }, 100_000, settings);
    expect(s).toMatchObject({ index: 2, healthySince: null });
    s = nextLevel(s, { type: "evaluate", signals: signals(0.01) }, 110_000, settings);
    expect(s.index).toBe(2);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.01) }, 169_999, settings);
    expect(s.index).toBe(2);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.01) }, 170_000, settings);
    expect(s.index).toBe(1);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.01) }, 170_001, settings);
    expect(s.index).toBe(1);
    // Pinned by `set`: triggers leave it alone until `restore`.
    s = nextLevel(s, { type: "set", level: "low", reason: "ops" }, 171_000, settings);
    s = nextLevel(s, { type: "evaluate", signals: signals(0.9) }, 400_000, settings);
    expect(s).toMatchObject({ index: 3, pinned: true });
    expect(() => nextLevel(s, { type: "set", level: "lowest" as never, reason: "x" }, 0, settings)).toThrow(TypeError);
  });
});
