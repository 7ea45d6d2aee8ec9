/**
 * Outside-in checks of what README.md, docs/retry.md ("Generic work"),
 * docs/breakers.md, docs/fallback.md (generic chains), docs/health-and-events.md
 * and docs/storycore-mapping.md promise about the generic, non-HTTP pieces:
 * `resilience.execute`, `resilience.breaker`, `resilience.fallback.chain`,
 * and `retry`, `CircuitBreaker`, `FallbackChain`, `Bulkhead`, `RetryBudget`
 * used on their own. Public entries only; time moves only on a TestClock.
 * `it.fails` pins a defect (see the comment on each).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  CircuitOpenError,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  RetryExhaustedError,
} from "../../src/index.ts";
import {
  Bulkhead,
  CircuitBreaker,
  FallbackChain,
  type ResolvedBreakerPolicy,
  RetryBudget,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

// Every test also checks that nothing rejected unhandled while it ran.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(async () => {
  await new Promise((resolve) => setImmediate(resolve));
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

/** Whether `promise` settles within a few real turns, with no time passing on any clock. */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 5 && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

/** Waits `ms` on `clock`, or rejects with the signal's reason when it aborts. */
function clockDelay(clock: TestClock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancel = clock.setTimer(resolve, ms);
    signal?.addEventListener("abort", () => {
      cancel();
      reject(signal.reason);
    });
  });
}

/** Work that throws each of `errors` in turn, then returns "done"; counts its calls. */
function failingThen(errors: unknown[]) {
  let calls = 0;
  const fn = async (): Promise<string> => {
    calls++;
    if (errors.length > 0) throw errors.shift();
    return "done";
  };
  return { fn, calls: () => calls };
}

const alwaysFails = (message = "down") => {
  let calls = 0;
  const fn = async (): Promise<never> => {
    calls++;
    throw new Error(message);
  };
  return { fn, calls: () => calls };
};

const policy: ResolvedBreakerPolicy = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 10_000,
  probeTimeout: 5_000,
  failureRate: undefined,
  minimumCalls: 10,
};

describe("resilience.execute(fn, options)", () => {
  it("retries under the layer's retry options and clock (maxAttempts, backoff), leaving no timer", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 100, jitter: "none" } });
    const work = failingThen([new Error("a"), new Error("b")]);
    expect(await clock.run(resilience.execute(work.fn))).toBe("done");
    expect(work.calls()).toBe(3);
    expect(clock.now()).toBe(300); // 100 + 200
    expect(clock.pending()).toBe(0);
  });

  it("passes each attempt its number and the caller's signal", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" } });
    const controller = new AbortController();
    const seen: Array<[number, AbortSignal | undefined]> = [];
    await clock.run(
      resilience.execute(
        ({ attempt, signal }) => {
          seen.push([attempt, signal]);
          if (attempt < 3) throw new Error("again");
          return attempt;
        },
        { signal: controller.signal },
      ),
    );
    expect(seen).toEqual([
      [1, controller.signal],
      [2, controller.signal],
      [3, controller.signal],
    ]);
  });

  it("rejects with RetryExhaustedError (attempts, cause: the last error) when attempts run out", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 10 } });
    const last = new Error("last");
    const work = failingThen([new Error("first"), last, new Error("never")]);
    const error = await clock.run(resilience.execute(work.fn)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error).toMatchObject({ attempts: 2, cause: last });
    expect(clock.pending()).toBe(0);
  });

  it("retry: false makes one attempt; options.retry overrides the layer's", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 5, initialDelay: 1 } });
    const once = alwaysFails();
    await expect(clock.run(resilience.execute(once.fn, { retry: false }))).rejects.toBeInstanceOf(RetryExhaustedError);
    expect(once.calls()).toBe(1);
    const twice = alwaysFails();
    await expect(clock.run(resilience.execute(twice.fn, { retry: { maxAttempts: 2 } }))).rejects.toMatchObject({
      attempts: 2,
    });
    expect(twice.calls()).toBe(2);
  });

  it("spends the layer's one shared budget: a token spent by one call is gone for the next", async () => {
    const clock = new TestClock(0);
    // One free retry a second, nothing earned.
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 0, jitter: "none" },
      budget: { ratio: 0, minPerSecond: 1 },
    });
    const first = alwaysFails();
    await expect(clock.run(resilience.execute(first.fn))).rejects.toThrow();
    expect(first.calls()).toBe(2); // the one token, then refused
    const second = alwaysFails();
    await expect(clock.run(resilience.execute(second.fn))).rejects.toThrow();
    expect(second.calls()).toBe(1);
    expect(resilience.health().budget).toMatchObject({ retriesAllowed: 1, retriesDenied: 2 });
  });

  it("breaker option: attempts count on the named breaker; once open, fn is not called and the call fails fast with CircuitOpenError", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" } });
    resilience.breaker("gpu", { failureThreshold: 2, timeout: 1_000 });
    const work = alwaysFails();
    await expect(clock.run(resilience.execute(work.fn, { breaker: "gpu" }))).rejects.toBeInstanceOf(
      RetryExhaustedError,
    );
    expect(work.calls()).toBe(2);
    expect(resilience.breaker("gpu").state).toBe("open");
    const refused = await clock.run(resilience.execute(work.fn, { breaker: "gpu" })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({ key: "gpu", retryAt: 1_010 });
    expect(work.calls()).toBe(2);
    expect(clock.now()).toBe(10); // the refusal waited for nothing
    expect(clock.pending()).toBe(0);
  });

  // Was a defect, fixed: a retry of `execute` is parked behind a breaker that opened during
  // the call. docs/breakers.md: "A retry is never parked behind an open
  // breaker: when the breaker opens during a call, the call settles with the
  // response it has, so recovery brings no burst of stored-up retries."; the
  // ExecuteOptions.breaker doc: "an open breaker ends the retries at once".
  // Repro: breaker("b", { failureThreshold: 1, timeout: 500 }); execute(fail,
  // { breaker: "b", retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none" } }).
  // Observed: attempt 1 opens the breaker, the loop still waits 1000 ms, and
  // the stored-up retry goes through as the half-open probe (fn called twice).
  // Promised: the call settles after attempt 1 with its error.
  it("breaker option: a retry is not parked behind the breaker that opened during the call", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    resilience.breaker("b", { failureThreshold: 1, timeout: 500 });
    const work = alwaysFails();
    const done = resilience.execute(work.fn, {
      breaker: "b",
      retry: { maxAttempts: 2, initialDelay: 1_000, jitter: "none" },
    });
    await clock.run(done).catch(() => {});
    expect(work.calls()).toBe(1);
    expect(clock.now()).toBe(0);
  });

  it("fallback option: answers with fallback(lastError) when attempts run out, and when the breaker is open", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 1 } });
    resilience.breaker("x", { failureThreshold: 2 });
    const seen: unknown[] = [];
    const fb = (error: unknown): string => {
      seen.push(error);
      return "cached";
    };
    const work = alwaysFails();
    expect(await clock.run(resilience.execute(work.fn, { breaker: "x", fallback: fb }))).toBe("cached");
    expect(seen[0]).toBeInstanceOf(RetryExhaustedError);
    expect(await clock.run(resilience.execute(work.fn, { breaker: "x", fallback: fb }))).toBe("cached");
    expect(seen[1]).toBeInstanceOf(CircuitOpenError);
    expect(work.calls()).toBe(2);
    expect(clock.pending()).toBe(0);
  });

  it("a signal aborted before: rejects with its reason; fn, breaker and fallback untouched; no timer", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const controller = new AbortController();
    const reason = new Error("gone");
    controller.abort(reason);
    let fellBack = 0;
    const work = alwaysFails();
    const done = resilience.execute(work.fn, {
      signal: controller.signal,
      breaker: "b",
      fallback: () => {
        fellBack++;
        return "x";
      },
    });
    expect(await settlesSoon(done)).toBe(true);
    await expect(done).rejects.toBe(reason);
    expect(work.calls()).toBe(0);
    expect(fellBack).toBe(0);
    expect(resilience.breaker("b").toJSON()).toMatchObject({ state: "closed", gen: 0, failures: [] });
    expect(clock.pending()).toBe(0);
  });

  it("an abort during a backoff wait rejects at once with the reason and clears the wait's timer", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 60_000, jitter: "none" } });
    const controller = new AbortController();
    const reason = new Error("caller left");
    const work = alwaysFails();
    const done = resilience.execute(work.fn, { signal: controller.signal });
    await clock.waitForTimers(1);
    controller.abort(reason);
    expect(await settlesSoon(done)).toBe(true);
    await expect(done).rejects.toBe(reason);
    expect(work.calls()).toBe(1);
    expect(clock.pending()).toBe(0);
    expect(clock.now()).toBe(0);
  });

  it("an abort during fn (fn honouring its signal) rejects with the reason, is not retried and counts on the breaker as neither", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 3, initialDelay: 1 } });
    resilience.breaker("b", { failureThreshold: 1 });
    const controller = new AbortController();
    const reason = new Error("caller left");
    let calls = 0;
    const done = resilience.execute(
      ({ signal }) => {
        calls++;
        return clockDelay(clock, 10_000, signal);
      },
      { signal: controller.signal, breaker: "b" },
    );
    await clock.waitForTimers(1);
    controller.abort(reason);
    expect(await settlesSoon(done)).toBe(true);
    await expect(done).rejects.toBe(reason);
    expect(calls).toBe(1);
    expect(resilience.breaker("b").state).toBe("closed");
    expect(resilience.breaker("b").toJSON().failures).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  // Changed in the thirty-third session: execute rejects with bad input (it threw at once), as
  // retry(fn) and fetch do: a `.catch()` on the call hears it too.
  it("bad input rejects at once, naming what is wrong, before fn runs", async () => {
    const resilience = createResilience({ clock: new TestClock(0) });
    let calls = 0;
    const fn = (): number => ++calls;
    await expect(resilience.execute(42 as unknown as () => number)).rejects.toThrow(
      new TypeError("resilience.execute(fn): fn must be a function, got number"),
    );
    await expect(resilience.execute(fn, { retry: { maxAttempts: Number.NaN } })).rejects.toThrow(
      /execute\.retry\.maxAttempts.*NaN/,
    );
    await expect(resilience.execute(fn, { retry: { maxAttempts: Number.NaN } })).rejects.toThrow(ConfigError);
    await expect(resilience.execute(fn, { retry: { initialDelay: -1 } })).rejects.toThrow(
      /execute\.retry\.initialDelay.*-1/,
    );
    await expect(resilience.execute(fn, { retry: { maxAttempts: 1.5 } })).rejects.toThrow(
      /execute\.retry\.maxAttempts/,
    );
    await expect(resilience.execute(fn, { retry: { jitter: "some" as "full" } })).rejects.toThrow(
      /execute\.retry\.jitter/,
    );
    await expect(resilience.execute(fn, { breaker: "" })).rejects.toThrow(
      'execute.breaker: expected a value >= 1, received ""',
    );
    await expect(resilience.execute(fn, { breaker: 7 as unknown as string })).rejects.toThrow(
      "execute.breaker: expected string, received 7",
    );
    // A value that cannot be read (a revoked Proxy) is named once, not again as a length to judge.
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const refusal = (await resilience
      .execute(fn, { breaker: revoked.proxy as never })
      .catch((e: unknown) => e)) as Error;
    expect([refusal.name, refusal.message]).toEqual([
      "ConfigError",
      "execute.breaker: expected string, received a value that cannot be read",
    ]);
    await expect(resilience.execute(fn, { fallback: "x" as unknown as () => number })).rejects.toThrow(
      'execute.fallback: expected a function, received "x"',
    );
    await expect(resilience.execute(fn, { retries: 3 } as never)).rejects.toThrow('execute: unknown option "retries"');
    // Never thrown: a `.catch()` chained on the call hears it.
    let heard: unknown;
    expect(() =>
      resilience.execute(fn, { retries: 3 } as never).catch((error: unknown) => (heard = error)),
    ).not.toThrow();
    await Promise.resolve();
    expect(heard).toBeInstanceOf(ConfigError);
    expect(calls).toBe(0);
  });

  // Was a defect, fixed: a signal that is not an AbortSignal is not checked up front. The
  // first attempt runs, then the wait fails with "signal?.addEventListener is
  // not a function" (the rule: a wrong type throws a clear error at
  // once; retry.md checks every other option "before anything starts").
  // Repro: resilience.execute(() => { throw new Error("x") }, { signal: {} as AbortSignal }).
  // Observed: fn is called, then TypeError "signal?.addEventListener is not a function".
  it("a signal that is not an AbortSignal throws at once, naming signal, before fn runs", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const work = alwaysFails();
    const error = await (async () => resilience.execute(work.fn, { signal: {} as AbortSignal }))()
      .then(clock.run.bind(clock))
      .catch((e: unknown) => e);
    expect(String(error)).toMatch(/signal/);
    expect(String(error)).not.toMatch(/addEventListener/);
    expect(work.calls()).toBe(0);
  });

  // Was a defect, fixed: execute(fn, null) throws "Cannot read properties of null (reading
  // 'retry')", which names neither execute nor options.
  // Repro: createResilience().execute(() => 1, null as never).
  it("options = null rejects with an error that names execute's options", async () => {
    const resilience = createResilience({ clock: new TestClock(0) });
    await expect(resilience.execute(() => 1, null as unknown as undefined)).rejects.toThrow(
      "execute: expected object, received null",
    );
  });
});

describe("resilience.breaker(name, options)", () => {
  it("is created once: the same breaker comes back and later options are not read", () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const first = resilience.breaker("upscaler", { failureThreshold: 1 });
    const again = resilience.breaker("upscaler", { failureThreshold: 50 });
    expect(again).toBe(first);
    first.failure(first.acquire(), "boom");
    expect(first.state).toBe("open"); // one failure: the first options hold
  });

  it("named breakers default to the layer's breaker options", () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, breaker: { failureThreshold: 1 } });
    const named = resilience.breaker("n");
    named.failure(named.acquire(), "boom");
    expect(named.state).toBe("open");
  });

  it("bad name or options throw at once, naming them", () => {
    const resilience = createResilience({ clock: new TestClock(0) });
    expect(() => resilience.breaker("")).toThrow(
      new TypeError('resilience.breaker(name): expected a non-empty string, got ""'),
    );
    expect(() => resilience.breaker(undefined as unknown as string)).toThrow(/non-empty string/);
    expect(() => resilience.breaker("a", { failureThreshold: Number.NaN })).toThrow(/breaker\("a"\)\.failureThreshold/);
    expect(() => resilience.breaker("b", { timeout: -1 })).toThrow(/breaker\("b"\)\.timeout.*-1/);
    expect(() => resilience.breaker("c", { timeout: "5" as unknown as number })).toThrow(ConfigError);
    expect(() => resilience.breaker("d", { failureThresold: 3 } as never)).toThrow(/unknown option "failureThresold"/);
    // A refused name is not left half-made: a good call with that name works.
    expect(resilience.breaker("a", { failureThreshold: 3 }).state).toBe("closed");
  });

  it("execute/state/reset/toJSON: open fails fast, half-opens after timeout, a probe success closes", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const cb = resilience.breaker("x", { failureThreshold: 2, timeout: 1_000, successThreshold: 1 });
    for (let i = 0; i < 2; i++) await expect(cb.execute(() => Promise.reject(new Error("e")))).rejects.toThrow("e");
    expect(cb.state).toBe("open");
    expect(cb.toJSON()).toMatchObject({ v: 1, state: "open", gen: 1 });
    let called = 0;
    await expect(cb.execute(() => ++called)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(called).toBe(0);
    await clock.advance(1_000);
    expect(cb.state).toBe("half_open");
    expect(await cb.execute(() => ++called)).toBe(1);
    expect(cb.state).toBe("closed");
    cb.failure(cb.acquire(), "e");
    cb.reset();
    expect(cb.toJSON()).toMatchObject({ state: "closed", failures: [] });
    expect(clock.pending()).toBe(0);
  });

  it("health() lists named breakers (open → unhealthy) and breaker events name them", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const events: BreakerEvent[] = [];
    resilience.on("breaker", (e) => events.push(e));
    const cb = resilience.breaker("qwen", { failureThreshold: 1, timeout: 1_000 });
    expect(resilience.health().breakers.qwen).toMatchObject({ state: "closed", gen: 0 });
    expect(resilience.health().status).toBe("healthy");
    await cb.execute(() => Promise.reject(new Error("oom"))).catch(() => {});
    const health = resilience.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers.qwen).toMatchObject({ state: "open", openUntil: 1_000, consecutiveFailures: 1 });
    expect(events).toEqual([expect.objectContaining({ key: "qwen", from: "closed", to: "open", gen: 1 })]);
    cb.reset();
    expect(events[1]).toMatchObject({ key: "qwen", from: "open", to: "closed" });
    expect(JSON.parse(JSON.stringify(resilience.health()))).toEqual(resilience.health());
  });

  // Was a defect, fixed: a named breaker whose name equals a host key hides that host's
  // breaker in health(): both go in one `breakers` record, the named one
  // written last. docs/health-and-events.md: "`status` (`unhealthy` when a
  // breaker is open …), … every breaker (`state`, …)".
  // Repro: createResilience({ retry: false, breaker: { failureThreshold: 1 },
  // fetch: async () => new Response("", { status: 503 }) });
  // await r.fetch("https://api.example/x"); r.breaker("api.example");
  // Observed: health().status "degraded", breakers["api.example"].state "closed"
  // (it was "unhealthy"/"open" before the named breaker was made).
  it("health() still shows an open host breaker after a named breaker with the host's name is made", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("", { status: 503 }),
    });
    await resilience.fetch("https://api.example/x");
    expect(resilience.health().status).toBe("unhealthy");
    resilience.breaker("api.example");
    expect(resilience.health().status).toBe("unhealthy");
  });
});

describe("resilience.fallback.chain(name) for any async work", () => {
  it("add/execute: entries tried in order, the first success wins; the chain is created once and reported in health()", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, fallback: fallback([]) });
    const chain = resilience.fallback.chain<string, string>("thumbnail");
    expect(resilience.fallback.chain("thumbnail")).toBe(chain);
    const calls: string[] = [];
    chain
      .add(
        async (input) => {
          calls.push(`gpu:${input}`);
          throw new Error("no gpu");
        },
        { name: "gpu", expectedQuality: 1 },
      )
      .add(
        async (input, { name }) => {
          calls.push(`${name}:${input}`);
          await clockDelay(clock, 250);
          return `cpu(${input})`;
        },
        { name: "cpu", expectedQuality: 0.6 },
      );
    expect(await clock.run(chain.execute("cat"))).toBe("cpu(cat)");
    expect(calls).toEqual(["gpu:cat", "cpu:cat"]);
    const stats = chain.statistics();
    expect(stats).toEqual({
      lastSuccessfulFallback: "cpu",
      overallSuccessRate: 1,
      fallbacks: {
        gpu: { calls: 1, successes: 0, successRate: 0, meanLatencyMs: 0 },
        cpu: { calls: 1, successes: 1, successRate: 1, meanLatencyMs: 250 },
      },
    });
    expect(resilience.health().fallback.thumbnail).toEqual(stats);
    expect(clock.pending()).toBe(0);
  });

  it("rejects with FallbackExhaustedError (chain, errors per entry) when every entry failed", async () => {
    const clock = new TestClock(0);
    const chain = createResilience({ clock, fallback: fallback([]) }).fallback.chain<number, number>("c");
    const a = new Error("a down");
    const b = new RangeError("b down");
    chain.add(() => Promise.reject(a), { name: "a" }).add(() => Promise.reject(b), { name: "b" });
    const error = await chain.execute(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(error).toMatchObject({ chain: "c", errors: { a, b } });
    expect(chain.statistics().overallSuccessRate).toBe(0);
    expect(chain.statistics().lastSuccessfulFallback).toBeNull();
  });

  it("run() reports what happened instead of throwing; skip passes over an entry without calling it", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, number>("r", { clock });
    let aCalls = 0;
    chain.add(() => ++aCalls, { name: "a" }).add((x) => x * 10, { name: "b" });
    expect(await chain.run(2)).toEqual({ ok: true, value: 1, name: "a", primary: true });
    const skipped = new Error("open");
    const result = await chain.run(2, {
      skip: (name) => (name === "a" ? { reason: "circuit open", error: skipped } : undefined),
    });
    expect(result).toEqual({ ok: true, value: 20, name: "b", primary: false });
    expect(aCalls).toBe(1);
    const failed = await chain.run(2, { accept: () => "not good enough" });
    expect(failed).toMatchObject({ ok: false, lastRejected: 20, lastRejectedBy: "b" });
  });

  it("adaptive order: a failing entry is passed over next time, and tried first again after it recovers", async () => {
    const clock = new TestClock(0);
    const chain = createResilience({ clock, fallback: fallback([]) }).fallback.chain<number, string>("ad", {
      order: "adaptive",
    });
    let bDown = true;
    chain
      .add(() => "a", { name: "a", expectedQuality: 0.5 })
      .add(
        () => {
          if (bDown) throw new Error("b down");
          return "b";
        },
        { name: "b", expectedQuality: 1 },
      );
    expect(chain.order).toBe("adaptive");
    expect(chain.ordered()).toEqual(["b", "a"]); // a tie broken by expectedQuality
    expect(await chain.execute(0)).toBe("a");
    expect(chain.ordered()).toEqual(["a", "b"]);
    expect(await chain.execute(0)).toBe("a");
    bDown = false;
    await clock.advance(5 * 60_000); // b's failure fades (60 s half-life)
    expect(chain.ordered()).toEqual(["b", "a"]);
    expect(await chain.execute(0)).toBe("b");
  });

  it("hedging (run's hedgeDelay): the next entry starts after the delay, the loser is aborted, the next hedge timer is cleared", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, string>("h", { clock });
    let slowSignal: AbortSignal | undefined;
    chain
      .add(
        async (_x, { signal }) => {
          slowSignal = signal;
          await clockDelay(clock, 60_000, signal);
          return "slow";
        },
        { name: "slow" },
      )
      .add(
        async () => {
          await clockDelay(clock, 10);
          return "fast";
        },
        { name: "fast" },
      )
      .add(() => "spare", { name: "spare" });
    const result = await clock.run(chain.run(1, { hedgeDelay: 100 }));
    expect(result).toMatchObject({ ok: true, value: "fast", name: "fast" });
    expect(clock.now()).toBe(110);
    expect(slowSignal?.aborted).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a signal aborted before: rejects with its reason, no entry runs", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, number>("ab", { clock });
    let calls = 0;
    chain.add(() => ++calls, { name: "a" });
    const controller = new AbortController();
    const reason = new Error("gone");
    controller.abort(reason);
    await expect(chain.execute(1, { signal: controller.signal })).rejects.toBe(reason);
    expect(calls).toBe(0);
  });

  it("an abort during an entry (honouring its signal) rejects with the reason and starts no further entry", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, string>("ab2", { clock });
    let next = 0;
    chain
      .add((_x, { signal }) => clockDelay(clock, 10_000, signal).then(() => "late"), { name: "a" })
      .add(
        () => {
          next++;
          return "b";
        },
        { name: "b" },
      );
    const controller = new AbortController();
    const reason = new Error("caller left");
    const done = chain.execute(1, { signal: controller.signal });
    await clock.waitForTimers(1);
    controller.abort(reason);
    expect(await settlesSoon(done)).toBe(true);
    await expect(done).rejects.toBe(reason);
    expect(next).toBe(0);
    expect(chain.statistics().fallbacks.a?.calls).toBe(0); // an abort is not the entry's failure
    expect(clock.pending()).toBe(0);
  });

  // Was a defect, fixed: a run the caller aborted counts as a failed run in
  // overallSuccessRate (the entries' own statistics leave it out). retry.md:
  // "A caller's abort is never a failure"; breakers.md: "a caller's abort is
  // neither". Repro: chain.add(x => x, { name: "a" }); an execute with an
  // already-aborted signal, then one plain execute.
  // Observed: overallSuccessRate 0.5 (fallbacks.a: 1 call, 1 success). Expected 1.
  it("a caller's abort does not count as a failed run in overallSuccessRate", async () => {
    const clock = new TestClock(0);
    const chain = createResilience({ clock, fallback: fallback([]) }).fallback.chain<number, number>("abr");
    chain.add((x) => x, { name: "a" });
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    await chain.execute(1, { signal: controller.signal }).catch(() => {});
    await chain.execute(1);
    expect(chain.statistics().overallSuccessRate).toBe(1);
    // A run that failed without an abort still counts.
    const failing = createResilience({ clock, fallback: fallback([]) }).fallback.chain<number, number>("fails");
    failing.add(() => Promise.reject(new Error("down")), { name: "a" });
    await failing.execute(1).catch(() => {});
    await failing.execute(1, { signal: controller.signal }).catch(() => {});
    expect(failing.statistics().overallSuccessRate).toBe(0);
    failing.add((x) => x, { name: "b" });
    await failing.execute(1);
    expect(failing.statistics().overallSuccessRate).toBe(0.5);
  });

  it("bad input throws at once, naming what is wrong", async () => {
    const resilience = createResilience({ clock: new TestClock(0), fallback: fallback([]) });
    expect(() => resilience.fallback.chain("")).toThrow(
      new TypeError('resilience.fallback.chain(name): expected a non-empty string, got ""'),
    );
    expect(() => resilience.fallback.chain(3 as unknown as string)).toThrow(/non-empty string, got 3/);
    const chain = resilience.fallback.chain<number, number>("bad");
    await expect(chain.execute(1)).rejects.toThrow(new TypeError('fallbackChain("bad") has no entries'));
    expect(() => chain.add("f" as never, { name: "a" })).toThrow(/add\(fn\): fn must be a function/);
    expect(() => chain.add((x) => x, {} as { name: string })).toThrow(/options\.name must be a non-empty string/);
    expect(() => chain.add((x) => x, undefined as never)).toThrow(/options\.name must be a non-empty string/);
    for (const q of [Number.NaN, -0.1, 1.5, "1" as unknown as number]) {
      expect(() => chain.add((x) => x, { name: "q", expectedQuality: q })).toThrow(
        /expectedQuality must be within 0\.\.1/,
      );
    }
    chain.add((x) => x, { name: "a" });
    expect(() => chain.add((x) => x, { name: "a" })).toThrow(/an entry named "a" exists already/);
    expect(chain.ordered()).toEqual(["a"]); // nothing refused was added
  });

  // Was a defect, fixed: an unknown `order` was accepted silently and runs as "fixed".
  // docs/fallback.md names only `order: "adaptive"` (and the type "fixed" |
  // "adaptive"); the rule is a clear error at once.
  // Repro: resilience.fallback.chain("x", { order: "adaptve" as never }).order === "adaptve";
  // also new FallbackChain("x", { order: "random" as never, clock }).
  it("an unknown order throws at once, naming order", () => {
    const resilience = createResilience({ clock: new TestClock(0), fallback: fallback([]) });
    expect(() => resilience.fallback.chain("x", { order: "adaptve" as "adaptive" })).toThrow(
      'fallback.chain.order: expected one of "fixed", "adaptive", received "adaptve"',
    );
  });
});

describe("retry(fn, options) on its own", () => {
  it("retries with backoff on the given clock, with no budget unless one is passed", async () => {
    const clock = new TestClock(0);
    const work = failingThen(Array.from({ length: 19 }, () => new Error("x")));
    expect(await clock.run(retry(work.fn, { clock, maxAttempts: 20, initialDelay: 1, maxDelay: 1 }))).toBe("done");
    expect(work.calls()).toBe(20);
    expect(clock.now()).toBeLessThanOrEqual(19); // full jitter under maxDelay 1: at most 19 ms
    expect(clock.pending()).toBe(0);
  });

  it("rejects with RetryExhaustedError; an abort is not retried", async () => {
    const clock = new TestClock(0);
    const last = new Error("last");
    const error = await clock
      .run(retry(() => Promise.reject(last), { clock, maxAttempts: 3, initialDelay: 5 }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "RetryExhaustedError", attempts: 3, cause: last });
    // Aborted during fn, which then throws something else: still not retried.
    const controller = new AbortController();
    const reason = new Error("stop");
    let calls = 0;
    const retries: number[] = [];
    const aborted = retry(
      () => {
        calls++;
        controller.abort(reason);
        throw new Error("socket closed");
      },
      { clock, signal: controller.signal, maxAttempts: 5, onRetry: (e) => retries.push(e.attempt) },
    );
    await expect(clock.run(aborted)).rejects.toBe(reason);
    expect(calls).toBe(1);
    expect(retries).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("a signal aborted before: rejects with its reason, fn never called", async () => {
    const controller = new AbortController();
    const reason = new Error("gone");
    controller.abort(reason);
    let calls = 0;
    await expect(retry(() => ++calls, { signal: controller.signal, clock: new TestClock(0) })).rejects.toBe(reason);
    expect(calls).toBe(0);
  });

  it("an abort during the wait rejects at once and clears the timer", async () => {
    const clock = new TestClock(0);
    const controller = new AbortController();
    const reason = new Error("stop");
    const work = alwaysFails();
    const done = retry(work.fn, { clock, signal: controller.signal, initialDelay: 60_000, jitter: "none" });
    await clock.waitForTimers(1);
    controller.abort(reason);
    expect(await settlesSoon(done)).toBe(true);
    await expect(done).rejects.toBe(reason);
    expect(clock.pending()).toBe(0);
    expect(work.calls()).toBe(1);
  });

  it("bad numbers reject before fn runs, with a ConfigError naming the option", async () => {
    let calls = 0;
    const fn = (): number => ++calls;
    const cases: Array<[Parameters<typeof retry>[1], RegExp]> = [
      [{ maxAttempts: Number.NaN }, /retry\.maxAttempts.*NaN/],
      [{ maxAttempts: 0 }, /retry\.maxAttempts/],
      [{ maxAttempts: 2.5 }, /retry\.maxAttempts.*integer/],
      [{ maxAttempts: Number.POSITIVE_INFINITY }, /retry\.maxAttempts/],
      [{ initialDelay: -1 }, /retry\.initialDelay.*-1/],
      [{ maxDelay: Number.NaN }, /retry\.maxDelay/],
      [{ exponentialBase: 0.5 }, /retry\.exponentialBase/],
      [{ jitter: "most" as "full" }, /retry\.jitter/],
    ];
    for (const [options, message] of cases) {
      const error = await retry(fn, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).toMatch(message);
    }
    await expect(retry("fn" as never)).rejects.toThrow(new TypeError("retry(fn): fn must be a function, got string"));
    expect(calls).toBe(0);
  });

  // Was a defect, fixed: a number given as a string is refused with a message that shows
  // a valid-looking number: "retry.maxDelay: expected a number >= 0,
  // received 5" (String("5")). The layer's checker says `received "5"`.
  // Repro: await retry(() => 1, { maxDelay: "5" as never }).
  it("a string where a number belongs is named as a string in the message", async () => {
    const error = await retry(() => 1, { maxDelay: "5" as unknown as number }).catch((e: unknown) => e);
    expect(String((error as Error).message)).toMatch(/"5"|string/);
  });

  // Was a defect, fixed: retry(fn)'s function and object options are not checked up
  // front; the first attempt runs and the call then fails with an engine
  // message. (resilience.execute checks retryOn.error at once: "execute.retry.retryOn.error:
  // expected a function, received 5".) Repros, each with fn = () => { throw new Error("e") }:
  //   retry(fn, { signal: {} })       → TypeError "signal?.addEventListener is not a function" (with a delay > 0)
  //   retry(fn, { onRetry: 5 })       → TypeError "onRetry is not a function"
  //   retry(fn, { budget: {} })       → TypeError "budget.tryRetry is not a function"
  //   retry(fn, { retryOn: { error: 5 } }) → TypeError "isRetryable is not a function"
  // each after fn was called once.
  for (const [label, options] of [
    ["signal", { signal: {} as AbortSignal }],
    ["onRetry", { onRetry: 5 as never }],
    ["budget", { budget: {} as never }],
    ["retryOn", { retryOn: { error: 5 as never } }],
  ] as const) {
    it(`a wrong ${label} option is refused before fn runs, naming ${label}`, async () => {
      const clock = new TestClock(0);
      const work = alwaysFails();
      const error = await clock.run(retry(work.fn, { clock, initialDelay: 1, ...options })).catch((e: unknown) => e);
      expect(work.calls()).toBe(0);
      expect(String(error)).toContain(label);
    });
  }

  // Was a defect, fixed: retry(fn, null) rejects with "Cannot read properties of null
  // (reading 'maxAttempts')", which names neither retry nor its options.
  // Repro: await retry(() => 1, null as never).
  it("retry(fn, null) is refused before fn runs, with a message naming retry's options", async () => {
    let calls = 0;
    const error = await retry(() => ++calls, null as never).catch((e: unknown) => e);
    expect(calls).toBe(0);
    expect(String(error)).toMatch(/retry.*options/);
  });
});

describe("CircuitBreaker, FallbackChain, Bulkhead, RetryBudget on their own", () => {
  it("CircuitBreaker.execute: isFailure decides, an abort counts as neither, onChange reports transitions", async () => {
    const clock = new TestClock(0);
    const changes: string[] = [];
    const cb = new CircuitBreaker("k", policy, clock, {
      isFailure: (e) => (e as Error).message !== "caller's fault",
      onChange: (c) => changes.push(`${c.from}->${c.to}`),
    });
    for (let i = 0; i < 3; i++) await cb.execute(() => Promise.reject(new Error("caller's fault"))).catch(() => {});
    expect(cb.state).toBe("closed");
    const controller = new AbortController();
    const reason = new Error("abort");
    controller.abort(reason);
    for (let i = 0; i < 3; i++) await cb.execute(() => Promise.reject(reason), controller.signal).catch(() => {});
    expect(cb.state).toBe("closed");
    expect(cb.toJSON().failures).toEqual([]);
    for (let i = 0; i < 2; i++) await cb.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    expect(cb.state).toBe("open");
    expect(changes).toEqual(["closed->open"]);
    const refused = await cb.execute(() => 1).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: "CircuitOpenError", key: "k", retryAt: 1_000 });
    expect(clock.pending()).toBe(0);
  });

  // Was a defect, fixed: docs/fallback.md: "(without a layer, `new FallbackChain(name)`
  // from `@storycore/resilient-fetch/policies`)". The constructor requires a
  // second argument: `new FallbackChain("x")` throws "Cannot read properties
  // of undefined (reading 'order')".
  it("new FallbackChain(name) works without a layer, as docs/fallback.md shows", async () => {
    const Ctor = FallbackChain as unknown as new (name: string) => FallbackChain<number, number>;
    const chain = new Ctor("standalone");
    chain.add((x) => x + 1, { name: "a" });
    expect(await chain.execute(1)).toBe(2);
  });

  // Was a defect, fixed: new FallbackChain("") was accepted, while resilience.fallback.chain("")
  // threw 'expected a non-empty string'; its errors then read fallbackChain("").
  it("new FallbackChain('') throws at once, naming the name; an unknown order is a ConfigError", () => {
    expect(() => new FallbackChain("", { clock: new TestClock(0) })).toThrow(
      'new FallbackChain(name): expected a non-empty string, got ""',
    );
    expect(() => new FallbackChain(7 as never)).toThrow(TypeError);
    expect(() => new FallbackChain("x", { order: "random" as never })).toThrow(
      new ConfigError("FallbackChain.order", 'expected one of "fixed", "adaptive", received "random"'),
    );
  });

  // Were defects, fixed: the standalone classes took their numbers unchecked (README lists
  // them "for any async work"). Each of these ran without an error:
  //   new CircuitBreaker("k", { ...policy, failureThreshold: NaN }, clock): never opened;
  //   new Bulkhead("k", NaN, -1): every acquire() rejected "bulkhead for "k" is full";
  //   new RetryBudget({ ratio: NaN, minPerSecond: -3 }, clock): snapshot().tokens was -3.
  it("CircuitBreaker refuses a NaN or missing number at once, naming it", () => {
    const clock = new TestClock(0);
    expect(() => new CircuitBreaker("k", { ...policy, failureThreshold: Number.NaN }, clock)).toThrow(
      "CircuitBreaker.failureThreshold: expected number, received NaN",
    );
    const { successThreshold: _, ...partial } = policy;
    expect(() => new CircuitBreaker("k", partial as ResolvedBreakerPolicy, clock)).toThrow(
      "CircuitBreaker.successThreshold: expected number, received undefined",
    );
    // The rate rule may be left out: it is then off.
    expect(() => new CircuitBreaker("k", { ...policy, failureRate: undefined }, clock)).not.toThrow();
  });
  // Was a defect, fixed: `isFailure: 5` was taken, and the first failure then threw
  // "isFailure is not a function" in place of the work's own error.
  it("CircuitBreaker refuses hooks that are not functions at once, naming them", async () => {
    const clock = new TestClock(0);
    expect(() => new CircuitBreaker("k", policy, clock, { isFailure: 5 as never })).toThrow(
      new ConfigError("CircuitBreaker.isFailure", "expected a function, received 5"),
    );
    expect(() => new CircuitBreaker("k", policy, clock, { onChange: "log" as never })).toThrow(
      "CircuitBreaker.onChange: expected a function",
    );
    const breaker = new CircuitBreaker("k", policy, clock, { isFailure: () => true, onChange: undefined });
    await expect(breaker.execute(() => Promise.reject(new Error("own")))).rejects.toThrow("own");
  });
  it("Bulkhead refuses NaN / negative limits at once, naming both", () => {
    expect(() => new Bulkhead("k", Number.NaN, -1)).toThrow(
      "Bulkhead.maxConcurrent: expected number, received NaN; Bulkhead.maxQueue: expected a value >= 0, received -1",
    );
    expect(() => new Bulkhead("k", 1.5, 0)).toThrow(ConfigError);
    // Both limits are required: a missing one is refused, not taken as unlimited.
    expect(() => new Bulkhead("k", undefined as never, 0)).toThrow(
      "Bulkhead.maxConcurrent: expected number, received undefined",
    );
    expect(() => new Bulkhead("k", 1, undefined as never)).toThrow(
      "Bulkhead.maxQueue: expected number, received undefined",
    );
  });
  it("RetryBudget refuses a NaN ratio / negative minPerSecond at once, naming both", () => {
    expect(() => new RetryBudget({ ratio: Number.NaN, minPerSecond: -3 }, new TestClock(0))).toThrow(
      "RetryBudget.ratio: expected number, received NaN; RetryBudget.minPerSecond: expected a value >= 0, received -3",
    );
    expect(() => new RetryBudget({ minPerSecond: 1 } as never, new TestClock(0))).toThrow(
      "RetryBudget.ratio: expected number, received undefined",
    );
    expect(() => new RetryBudget({ ratio: 0.1 } as never, new TestClock(0))).toThrow(
      "RetryBudget.minPerSecond: expected number, received undefined",
    );
  });

  it("RetryBudget and CircuitBreaker refuse a clock that is not one at once, as FallbackChain does", () => {
    // Before: the engine's TypeError ("clock.now is not a function") from the constructor's first read.
    expect(() => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, {} as never)).toThrow(ConfigError);
    expect(() => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, {} as never)).toThrow(
      "RetryBudget.clock.now: expected a function, received undefined; RetryBudget.clock.setTimer: expected a function, received undefined",
    );
    expect(() => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, null as never)).toThrow(
      "RetryBudget.clock: expected object, received null",
    );
    // Left out, the budget keeps the real clock.
    expect(new RetryBudget({ ratio: 0.1, minPerSecond: 1 }).snapshot().tokens).toBe(1);
    expect(() => new CircuitBreaker("k", policy, { now: () => 0, setTimer: 1 } as never)).toThrow(
      new ConfigError("CircuitBreaker.clock.setTimer", "expected a function, received 1"),
    );
    // The breaker has no default clock: a missing one is named, not read.
    expect(() => new CircuitBreaker("k", policy, undefined as never)).toThrow(
      "CircuitBreaker.clock: expected object, received undefined",
    );
  });

  it("Bulkhead: a full queue rejects at once, a queued caller that aborts leaves the queue", async () => {
    const bulkhead = new Bulkhead("k", 1, 1);
    const release = bulkhead.acquire() as () => void;
    const controller = new AbortController();
    const reason = new Error("left");
    const queued = bulkhead.acquire(controller.signal) as Promise<() => void>;
    expect(bulkhead.queued).toBe(1);
    await expect(bulkhead.acquire()).rejects.toMatchObject({ name: "BulkheadRejectedError", key: "k" });
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    expect(bulkhead.queued).toBe(0);
    release();
    expect(bulkhead.active).toBe(0);
  });

  it("Bulkhead: a caller that has already gone gets no slot, free or queued", async () => {
    const bulkhead = new Bulkhead("k", 1, 1);
    const gone = new AbortController();
    const reason = new Error("gone");
    gone.abort(reason);
    await expect(bulkhead.acquire(gone.signal)).rejects.toBe(reason);
    expect(bulkhead.active).toBe(0);
    const release = bulkhead.acquire() as () => void;
    await expect(bulkhead.acquire(gone.signal)).rejects.toBe(reason);
    expect(bulkhead.queued).toBe(0);
    release();
  });

  it("retry(fn): an onRetry that throws ends the retries with its error, before the wait (docs/retry.md)", async () => {
    const clock = new TestClock(0);
    const hook = new Error("hook broke");
    let calls = 0;
    const run = retry(
      async () => {
        calls++;
        throw new Error("work failed");
      },
      {
        clock,
        maxAttempts: 3,
        onRetry: () => {
          throw hook;
        },
      },
    );
    await expect(run).rejects.toBe(hook);
    expect(calls).toBe(1);
    expect(clock.pending()).toBe(0);
  });

  it("retry(fn): an async onRetry is awaited before the wait; its rejection ends the retries, never unhandled", async () => {
    // The file's afterEach also checks that nothing rejected unhandled.
    const clock = new TestClock(0);
    const hook = new Error("async hook broke");
    let calls = 0;
    const rejected = retry(
      async () => {
        calls++;
        throw new Error("work failed");
      },
      { clock, maxAttempts: 3, onRetry: async () => Promise.reject(hook) },
    );
    await expect(rejected).rejects.toBe(hook);
    expect(calls).toBe(1);
    expect(clock.pending()).toBe(0);

    // A slow hook: the wait (and the next attempt) starts once it settles.
    let finish: () => void = () => {};
    const hooked = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let tries = 0;
    const waited = retry(
      async () => {
        tries++;
        if (tries === 1) throw new Error("once");
        return "done";
      },
      { clock, jitter: "none", initialDelay: 100, onRetry: () => hooked },
    );
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect([tries, clock.pending()]).toEqual([1, 0]);
    finish();
    await clock.waitForTimers();
    expect(clock.pending()).toBe(1);
    await clock.advance(100);
    await expect(waited).resolves.toBe("done");
    expect(tries).toBe(2);

    // A caller's abort while the hook runs settles at once with its reason.
    const controller = new AbortController();
    const aborted = retry(
      async () => {
        throw new Error("work failed");
      },
      { clock, signal: controller.signal, onRetry: () => new Promise<void>(() => {}) },
    );
    for (let i = 0; i < 20; i++) await Promise.resolve();
    controller.abort("stop");
    await expect(aborted).rejects.toBe("stop");
    expect(clock.pending()).toBe(0);
  });

  it("RetryBudget: an empty bucket refuses at once; free retries refill at minPerSecond", async () => {
    const clock = new TestClock(0);
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 1 }, clock);
    expect(budget.tryRetry()).toBe(true); // the free one
    expect(budget.tryRetry()).toBe(false);
    budget.deposit();
    budget.deposit();
    expect(budget.tryRetry()).toBe(true); // earned
    expect(budget.tryRetry()).toBe(false);
    await clock.advance(1_000);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot()).toMatchObject({ retriesAllowed: 3, retriesDenied: 2 });
  });
});
