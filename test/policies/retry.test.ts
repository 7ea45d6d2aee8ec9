import { describe, expect, it, vi } from "vitest";
import { ConfigError, createResilience, RetryExhaustedError } from "../../src/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("retry(fn) for any async work", () => {
  it("waits on the real timers when given no clock (faked here, nothing sleeps)", async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const result = retry(
        () => {
          calls++;
          if (calls === 1) throw new Error("flaky");
          return "done";
        },
        { jitter: "none", initialDelay: 100 },
      );
      await vi.advanceTimersByTimeAsync(99);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls).toBe(2);
      await expect(result).resolves.toBe("done");
    } finally {
      vi.useRealTimers();
    }
  });

  it("retries thrown errors and returns the first success", async () => {
    const clock = new TestClock();
    let calls = 0;
    const value = await clock.run(
      retry(
        ({ attempt }) => {
          calls++;
          if (attempt < 3) throw new Error(`flaky ${attempt}`);
          return "done";
        },
        { clock, jitter: "none", initialDelay: 10 },
      ),
    );
    expect(value).toBe("done");
    expect(calls).toBe(3);
    expect(clock.now()).toBe(30);
  });

  it("rejects with RetryExhaustedError carrying the last error as cause", async () => {
    const clock = new TestClock();
    const last = new Error("still down");
    const error = await clock
      .run(retry(() => Promise.reject(last), { clock, maxAttempts: 2 }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error).toMatchObject({ attempts: 2, cause: last });
  });

  it("rethrows at once an error that retryOn.error rejects", async () => {
    const permanent = new RangeError("bad prompt");
    let calls = 0;
    const promise = retry(
      () => {
        calls++;
        throw permanent;
      },
      { retryOn: { error: (e) => !(e instanceof RangeError) } },
    );
    await expect(promise).rejects.toBe(permanent);
    expect(calls).toBe(1);
  });

  it("stops when the budget refuses, and reports each retry", async () => {
    const clock = new TestClock();
    const seen: number[] = [];
    let grants = 1;
    const promise = retry(() => Promise.reject(new Error("x")), {
      clock,
      maxAttempts: 5,
      budget: { tryRetry: () => grants-- > 0 },
      onRetry: (e) => seen.push(e.attempt),
    });
    await expect(clock.run(promise)).rejects.toMatchObject({ name: "RetryExhaustedError", attempts: 2 });
    expect(seen).toEqual([1]);
  });

  it("aborting during a wait rejects at once with the reason", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const promise = retry(() => Promise.reject(new Error("x")), {
      clock,
      signal: controller.signal,
      initialDelay: 10_000,
    });
    await clock.waitForTimers();
    controller.abort("stop");
    await expect(promise).rejects.toBe("stop");
    expect(clock.pending()).toBe(0);
  });

  it("validates its arguments by name", async () => {
    await expect(retry(42 as never)).rejects.toThrow(/retry\(fn\): fn must be a function/);
    await expect(retry(() => 1, { maxAttempts: 0 })).rejects.toBeInstanceOf(ConfigError);
    await expect(retry(() => 1, { jitter: "some" as never })).rejects.toThrow(/retry.jitter/);
  });

  it("names each bad number, what it expected and what it got", async () => {
    const cases: [object, string, RegExp][] = [
      [{ maxAttempts: 1.5 }, "retry.maxAttempts", /expected an integer >= 1, received 1.5/],
      [{ maxAttempts: "3" }, "retry.maxAttempts", /received "3"/],
      // Quoted as the layer's checker and the stores quote it: a plus sign is plain text.
      [{ maxAttempts: "1e3+" }, "retry.maxAttempts", /received "1e3\+"/],
      [{ initialDelay: -1 }, "retry.initialDelay", /expected a number >= 0, received -1/],
      [{ maxDelay: Number.POSITIVE_INFINITY }, "retry.maxDelay", /received Infinity/],
      [{ maxDelay: Number.NaN }, "retry.maxDelay", /received NaN/],
      [{ exponentialBase: 0.5 }, "retry.exponentialBase", /expected a number >= 1, received 0.5/],
      [{ jitter: "some" }, "retry.jitter", /expected one of "full", "equal", "decorrelated", "none", received "some"/],
    ];
    for (const [options, path, message] of cases) {
      const error = await retry(() => 1, options as never).catch((e: unknown) => e);
      expect([error instanceof ConfigError, (error as ConfigError).path]).toEqual([true, path]);
      expect((error as Error).message).toMatch(message);
    }
    expect(await retry(() => 1, { jitter: "none", maxAttempts: 1, initialDelay: 0, exponentialBase: 1 })).toBe(1);
  });

  it("does not start an attempt once aborted, and rethrows the abort reason rather than the attempt's error", async () => {
    const controller = new AbortController();
    controller.abort("gone");
    let ran = 0;
    await expect(
      retry(
        () => {
          ran++;
        },
        { signal: controller.signal },
      ),
    ).rejects.toBe("gone");
    expect(ran).toBe(0);
    const live = new AbortController();
    const clock = new TestClock();
    const call = retry(
      () => {
        live.abort("left");
        return Promise.reject(new Error("failed as it was aborted"));
      },
      { clock, signal: live.signal },
    );
    await expect(call).rejects.toBe("left");
  });

  it("retries an error that merely equals nothing the signal carries, and gives up on the caller's reason", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    let n = 0;
    const call = retry(
      () => {
        n++;
        return Promise.reject(new Error(`attempt ${n}`));
      },
      { clock, signal: controller.signal, maxAttempts: 3, initialDelay: 1 },
    );
    const error = await clock.run(call).catch((e: unknown) => e);
    expect([error instanceof RetryExhaustedError, n]).toEqual([true, 3]);
  });

  it("rethrows a non-retryable error at once, but wraps the last error when attempts ran out", async () => {
    const fatal = new RangeError("fatal");
    await expect(retry(() => Promise.reject(fatal), { retryOn: { error: () => false } })).rejects.toBe(fatal);
    const clock = new TestClock();
    const last = clock.run(
      retry(() => Promise.reject(new RangeError("again")), {
        clock,
        maxAttempts: 2,
        initialDelay: 1,
        retryOn: { error: (e) => e instanceof RangeError },
      }),
    );
    const error = await last.catch((e: unknown) => e);
    expect([error instanceof RetryExhaustedError, (error as RetryExhaustedError).attempts]).toEqual([true, 2]);
  });
});

describe("retry(fn) at the edges of its rules", () => {
  it("wraps an error retryOn.error rejects when it comes from the last attempt: attempts ran out", async () => {
    const fatal = new RangeError("fatal");
    const only = await retry(() => Promise.reject(fatal), { maxAttempts: 1, retryOn: { error: () => false } }).catch(
      (e: unknown) => e,
    );
    expect(only).toBeInstanceOf(RetryExhaustedError);
    expect(only).toMatchObject({ attempts: 1, cause: fatal });
    const clock = new TestClock();
    let n = 0;
    const last = await clock
      .run(
        retry(
          () => {
            n++;
            return Promise.reject(n === 1 ? new Error("flaky") : fatal);
          },
          { clock, maxAttempts: 2, initialDelay: 1, retryOn: { error: (e) => !(e instanceof RangeError) } },
        ),
      )
      .catch((e: unknown) => e);
    expect(last).toBeInstanceOf(RetryExhaustedError);
    expect(last).toMatchObject({ attempts: 2, cause: fatal });
  });

  it("refuses a value of another type with ConfigError, even one that cannot be compared (a symbol)", async () => {
    const error = await retry(() => 1, { maxAttempts: Symbol("three") as never }).catch((e: unknown) => e);
    expect([error instanceof ConfigError, (error as ConfigError).path]).toEqual([true, "retry.maxAttempts"]);
    expect((error as Error).message).toMatch(/expected an integer >= 1, received a symbol/);
  });

  it.each(["full", "equal", "decorrelated", "none"] as const)(
    "accepts jitter %s and retries with it",
    async (jitter) => {
      const clock = new TestClock();
      const value = await clock.run(
        retry(
          ({ attempt }) => {
            if (attempt === 1) throw new Error("flaky");
            return attempt;
          },
          { clock, jitter, initialDelay: 10 },
        ),
      );
      expect(value).toBe(2);
    },
  );
});

describe("resilience.execute", () => {
  it("runs attempts behind a named breaker and stops retrying once it is open", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { maxAttempts: 5, initialDelay: 1 } });
    resilience.breaker("video_generation", { failureThreshold: 2 });
    let calls = 0;
    const work = () => {
      calls++;
      return Promise.reject(new Error("engine crashed"));
    };
    // The second failure opens it: the call ends with that failure, no retry
    // parked behind the open breaker (it would go through as its probe).
    await expect(clock.run(resilience.execute(work, { breaker: "video_generation" }))).rejects.toThrow(
      "engine crashed",
    );
    expect(calls).toBe(2);
    expect(clock.pending()).toBe(0);
    await expect(clock.run(resilience.execute(work, { breaker: "video_generation" }))).rejects.toMatchObject({
      name: "CircuitOpenError",
    });
    expect(calls).toBe(2);
    expect(resilience.breaker("video_generation").state).toBe("open");
  });

  it("answers with the fallback when every attempt failed", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 1 } });
    const value = await clock.run(
      resilience.execute(() => Promise.reject(new Error("down")), {
        fallback: (error) => `cached (${(error as Error).name})`,
      }),
    );
    expect(value).toBe("cached (RetryExhaustedError)");
    await expect(resilience.execute(() => 1, { fallback: "x" as never })).rejects.toThrow(
      /execute.fallback: expected a function/,
    );
  });

  it("runs work under the instance's retry options and clock", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { maxAttempts: 4, initialDelay: 5, jitter: "none" } });
    let calls = 0;
    const result = await clock.run(
      resilience.execute(async () => {
        calls++;
        if (calls < 4) throw new Error("transient");
        return calls;
      }),
    );
    expect(result).toBe(4);
    expect(clock.now()).toBe(5 + 10 + 20);
  });

  it("takes per-call retry options, or false for a single attempt", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    let calls = 0;
    const fail = () => {
      calls++;
      return Promise.reject(new Error("x"));
    };
    await expect(clock.run(resilience.execute(fail, { retry: false }))).rejects.toMatchObject({ attempts: 1 });
    await expect(clock.run(resilience.execute(fail, { retry: { maxAttempts: 2 } }))).rejects.toMatchObject({
      attempts: 2,
    });
    expect(calls).toBe(3);
    await expect(resilience.execute(fail, { retry: { maxAttempts: -1 } })).rejects.toThrow(/execute.retry.maxAttempts/);
  });
});

describe("retry(fn) checks what it calls later before the first attempt", () => {
  it.each([
    [null, "retry: expected an options object, received null"],
    [{ signal: {} }, "retry.signal: expected an AbortSignal, received an object"],
    [{ budget: null }, "retry.budget: expected a budget, received null"],
    [{ budget: {} }, "retry.budget: expected a budget, received an object"],
    [{ onRetry: 5 }, "retry.onRetry: expected a function, received 5"],
    [{ retryOn: { error: "no" } }, 'retry.retryOn.error: expected a function, received "no"'],
  ])("%j: %s", async (options, message) => {
    let calls = 0;
    const error = await retry(() => ++calls, options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(message);
    expect(calls).toBe(0);
  });
});

describe("a clock of yours whose setTimer returns no function that cancels", () => {
  /** A clock over `TestClock` that hands back nothing to cancel with. */
  const noCancel = (clock: TestClock) => ({
    now: () => clock.now(),
    setTimer: (callback: () => void, ms: number) => {
      clock.setTimer(callback, ms);
      return undefined as unknown as () => void;
    },
  });

  it("retry(fn): an abort in the backoff rejects at once with its reason; the timer, run out, does nothing", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    let calls = 0;
    const call = retry(
      async () => {
        calls++;
        throw new Error("busy");
      },
      { clock: noCancel(clock), initialDelay: 1_000, jitter: "none", signal: controller.signal },
    );
    await clock.waitForTimers(1);
    controller.abort(new Error("gone"));
    await expect(call).rejects.toThrow("gone");
    await clock.advance(10_000);
    expect(calls).toBe(1);
  });

  it("resilience.fetch and execute reject, never throw, when the clock's now() throws", async () => {
    let broken = false;
    const clock = {
      now: () => {
        if (broken) throw new Error("now broke");
        return 0;
      },
      setTimer: () => () => {},
    };
    const layer = createResilience({ clock, fetch: async () => new Response("ok") });
    broken = true;
    let fetched: Promise<Response> | undefined;
    let executed: Promise<string> | undefined;
    expect(() => {
      fetched = layer.fetch("https://api.example/x");
      executed = layer.execute(async () => "done");
    }).not.toThrow();
    await expect(fetched).rejects.toThrow("now broke");
    await expect(executed).rejects.toThrow("now broke");
  });
});
