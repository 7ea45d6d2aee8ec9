/**
 * Outside-in attack on the generic pieces (`./policies`, `resilience.execute`,
 * named breakers, `resilience.fallback.chain(name)`, `resilience.degradation`,
 * `health()`/`debugInfo()`/`analytics.clearHistory()`) and on the
 * StoryCore-Engine mapping (docs/storycore-mapping.md). Public entries only;
 * time moves only on a `TestClock`. Each `it.fails` pins a defect: it asserts
 * the documented behaviour and fails while the defect exists.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, FallbackExhaustedError, isFallbackExhaustedError } from "../../src/index.ts";
import { FallbackChain, RetryBudget, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** A promise the test settles by hand: work that ignores its signal. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const turns = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
};

describe("analytics.clearHistory() (docs/health-and-events.md)", () => {
  // docs/health-and-events.md: "`analytics.clearHistory()` forgets the totals and the failures
  // (the degradation level and its window belong to the level: `restore()` and `setLevel()`
  // move it)". The sentence once said it forgot "them", window included, which it never did.
  it("forgets the totals and the failures, and leaves the degradation window to the level", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("busy", { status: 503 }),
      degradation: degradation(),
    });
    for (let i = 0; i < 5; i++) await clock.run(resilience.fetch("http://api.example/a"));
    expect(resilience.debugInfo().degradation?.window.samples).toBe(5);
    resilience.analytics.clearHistory();
    expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(resilience.debugInfo().recentErrors).toEqual([]);
    expect(resilience.debugInfo().degradation?.window.samples).toBe(5);
  });
});

describe("degradation.adjust(params) at full (docs/degradation.md)", () => {
  // docs/degradation.md, the level table: "full | 100 | 1.0 | 1.0 | none | all | 0" (quality
  // ×1.0, resolution ×1.0, no step cap, every feature, no model step), and "At `full` nothing
  // is touched". `resilience.fetch` indeed sends a `full` body untouched, but `adjust()` at
  // `full` snaps a resolution that is not on the ladder down it (1000p → 720p), rounds a
  // `WxH` size down to the multiple of 8 (1023x1023 → 1016x1016) and rounds quality to six
  // decimals: the StoryCore mapping's `adjust_parameters` disagrees with the layer's own
  // requests at the same level.
  it("returns the parameters unchanged at full", async () => {
    const bodies: string[] = [];
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      fetch: async (_input, init) => {
        bodies.push(String(init?.body));
        return new Response("ok");
      },
      degradation: degradation(),
    });
    const params = { quality: 0.3333333333, resolution: "1000p", steps: 50, model: "premium" };
    await clock.run(resilience.fetch("http://api.example/a", { method: "POST", body: JSON.stringify(params) }));
    expect(JSON.parse(bodies[0] as string)).toEqual(params); // the layer's request at full: untouched
    expect(resilience.degradation.currentLevel().name).toBe("full");
    expect(resilience.degradation.adjust(params)).toEqual(params);
    expect(resilience.degradation.adjust({ resolution: "1023x1023" })).toEqual({ resolution: "1023x1023" });
  });
});

describe("the retry budget's free retries (docs/options.md, docs/retry.md)", () => {
  // docs/options.md: "`budget.minPerSecond` | `10` | free retries per second"; docs/retry.md:
  // "`minPerSecond` (10) free retries a second refill on top". The option accepts any number
  // >= 0, but the free pool is capped at `minPerSecond` tokens and a retry needs a whole one:
  // with `minPerSecond: 0.5` (a free retry every 2 s) the pool never reaches 1, and no free
  // retry is ever granted.
  it("minPerSecond: 0.5 grants a free retry every two seconds (execute)", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      budget: { ratio: 0, minPerSecond: 0.5 },
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
    });
    let retried = 0;
    for (let i = 0; i < 10; i++) {
      await clock.advance(2_000);
      let attempts = 0;
      await clock
        .run(
          resilience.execute(async () => {
            if (++attempts === 1) throw new Error("busy");
            return "ok";
          }),
        )
        .catch(() => undefined);
      if (attempts === 2) retried++;
    }
    // 20 s at half a retry a second: ten free retries (allow one for rounding).
    expect(retried).toBeGreaterThanOrEqual(9);
  });

  // The same, on the policy class itself.
  it("new RetryBudget({ ratio: 0, minPerSecond: 0.5 }) refills one token every two seconds", async () => {
    const clock = new TestClock(0);
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.5 }, clock);
    const granted: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      await clock.advance(2_000);
      granted.push(budget.tryRetry());
    }
    expect(granted).toEqual([true, true, true, true, true]);
  });
});

describe("execute(fn, { signal }) and the budget (docs/retry.md, docs/health-and-events.md)", () => {
  // docs/retry.md: "each call earns `ratio` tokens (0.1), each retry spends one"; and
  // docs/health-and-events.md: a call refused "for … a signal already aborted: nothing was
  // tried, and `health()` does not count it either". `resilience.fetch` earns nothing for such
  // a call; `execute` deposits before it looks at the signal, so calls that never ran mint
  // retries (20 pre-aborted calls buy two) that a real failing call then spends.
  it("a call whose signal was aborted before earns no token, and buys no retry", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      budget: { ratio: 0.1, minPerSecond: 0 },
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
    });
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    for (let i = 0; i < 20; i++) {
      await resilience.execute(async () => "never", { signal: controller.signal }).catch(() => undefined);
    }
    expect(resilience.health().budget?.tokens).toBe(0);
    let attempts = 0;
    await clock
      .run(
        resilience.execute(async () => {
          attempts++;
          throw new Error("down");
        }),
      )
      .catch(() => undefined);
    expect(attempts).toBe(1);
  });
});

describe("a caller's abort while the work ignores its signal (docs/retry.md)", () => {
  // docs/retry.md: "A caller's abort is never a failure: it stops the wait or the attempt at
  // once and rejects with `signal.reason`." `execute` neither settles at the abort nor rejects
  // with the reason once the work settles: it waits for fn, then resolves with fn's value as if
  // the caller had never left.
  it("execute rejects with signal.reason, never with fn's late value", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const work = deferred<string>();
    const controller = new AbortController();
    const reason = new Error("caller left");
    const done = resilience.execute(() => work.promise, { signal: controller.signal });
    await turns(2);
    controller.abort(reason);
    work.resolve("late");
    expect(await rejection(done)).toBe(reason);
    expect(clock.pending()).toBe(0);
  });

  // Same sentence; docs/fallback.md: "An abort … rejects the call with the caller's reason".
  // A generic chain (`resilience.fallback.chain(name)`) whose running entry ignores the signal
  // resolves with that entry's late value.
  it("fallback.chain(name).execute rejects with signal.reason, never with an entry's late value", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, fallback: fallback([]) });
    const work = deferred<string>();
    const chain = resilience.fallback.chain<number, string>("thumbs").add(() => work.promise, { name: "gpu" });
    const controller = new AbortController();
    const reason = new Error("caller left");
    const done = chain.execute(1, { signal: controller.signal });
    await turns(2);
    controller.abort(reason);
    work.resolve("late");
    expect(await rejection(done)).toBe(reason);
  });
});

describe("retry(fn, options) checks every option first (docs/retry.md)", () => {
  // docs/retry.md: "Both check all their options before the first attempt (a `ConfigError`
  // naming the path: `execute.signal`, `retry.onRetry`…), and refuse one they do not know".
  // `clock` and `random` are `retry(fn)`'s options too (RetryCallOptions), but are not checked:
  // fn runs, then the loop fails with a bare TypeError ("random is not a function",
  // "clock.setTimer is not a function") that names no option.
  it("a random that is not a function is refused with ConfigError retry.random before fn runs", async () => {
    let calls = 0;
    const error = await rejection(
      retry(
        () => {
          calls++;
          throw new Error("busy");
        },
        { random: "x" as never, maxAttempts: 2 },
      ),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("retry.random");
    expect(calls).toBe(0);
  });

  it("a clock without now/setTimer is refused with ConfigError retry.clock before fn runs", async () => {
    let calls = 0;
    const error = await rejection(
      retry(
        () => {
          calls++;
          throw new Error("busy");
        },
        { clock: {} as never, maxAttempts: 2, initialDelay: 10 },
      ),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("retry.clock");
    expect(calls).toBe(0);
    // Half a clock is no clock either: each of the two is needed, named as such.
    for (const half of [{ now: () => 0 }, { setTimer: () => () => {} }]) {
      const refused = await rejection(retry(() => 1, { clock: half as never }));
      expect((refused as ConfigError).path).toBe("retry.clock");
      expect((refused as Error).message).toMatch(/a clock \(\{ now, setTimer \}\)/);
    }
  });
});

describe("fallback chains: an entry named __proto__ (docs/fallback.md)", () => {
  // docs/fallback.md: `statistics()`: "per endpoint `calls`, `successes`, `successRate`,
  // `meanLatencyMs`", and exhaustion "rejects with `FallbackExhaustedError` (`errors` per
  // endpoint)". `add` and `fallback([…])` accept the name `__proto__`, but both records are
  // plain objects filled by assignment, where `__proto__` is the prototype setter: that
  // entry's statistics and its error vanish (health() loses it too).
  it("new FallbackChain: statistics() and FallbackExhaustedError.errors keep the entry __proto__", async () => {
    const chain = new FallbackChain<number, number>("c", { clock: new TestClock(0) });
    const first = new Error("a down");
    chain.add(
      async () => {
        throw first;
      },
      { name: "__proto__" },
    );
    chain.add(
      async () => {
        throw new Error("b down");
      },
      { name: "b" },
    );
    const error = await rejection(chain.execute(1));
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(Object.keys((error as FallbackExhaustedError).errors)).toEqual(["__proto__", "b"]);
    expect(Object.hasOwn((error as FallbackExhaustedError).errors, "__proto__")).toBe(true);
    expect(Object.keys(chain.statistics().fallbacks)).toEqual(["__proto__", "b"]);
  });

  it("fallback([…]): an endpoint named __proto__ is in the error's errors and in health().fallback", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: async () => {
        throw new TypeError("fetch failed");
      },
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "__proto__", url: "http://a.example/v1" },
            { name: "spare", url: "http://b.example/v1" },
          ],
        },
      ]),
    });
    const error = await rejection(clock.run(resilience.fetch("http://a.example/v1/jobs")));
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect(Object.keys((error as FallbackExhaustedError).errors)).toEqual(["__proto__", "spare"]);
    expect(Object.keys(resilience.health().fallback.video?.fallbacks ?? {})).toEqual(["__proto__", "spare"]);
  });
});

describe("chain.statistics().lastSuccessfulFallback (ChainStatistics, the mapping's get_statistics())", () => {
  // src/policies/fallback-chain.ts, `ChainStatistics.lastSuccessfulFallback`: "The last entry
  // other than the first to serve a run (StoryCore-Engine's `last_successful_fallback`): `null`
  // until one has; it stays when the first entry serves again." (It once read "the entry that
  // served the last successful run", which the chain never did.)
  it("is null until a fallback served, then names the last one, also after the first serves again", async () => {
    const chain = new FallbackChain<number, string>("c", { clock: new TestClock(0) });
    let primaryDown = true;
    chain.add(
      async () => {
        if (primaryDown) throw new Error("down");
        return "primary";
      },
      { name: "primary" },
    );
    chain.add(async () => "spare", { name: "spare" });
    expect(chain.statistics().lastSuccessfulFallback).toBeNull();
    expect(await chain.execute(1)).toBe("spare");
    expect(chain.statistics().lastSuccessfulFallback).toBe("spare");
    primaryDown = false;
    expect(await chain.execute(1)).toBe("primary");
    expect(chain.statistics().lastSuccessfulFallback).toBe("spare");
  });
});

describe("what held: bulkhead slots and breakers with work that throws synchronously or returns a plain value", () => {
  // docs/breakers.md: "`bulkhead: { maxConcurrent, maxQueue }` limits attempts in flight per
  // host … A full queue rejects at once with `BulkheadRejectedError`". With maxConcurrent 1
  // and no queue, a leaked slot would refuse the second call.
  it("a transport that throws synchronously, or returns a Response (no promise), frees its slot", async () => {
    const clock = new TestClock(0);
    const throwing = createResilience({
      clock,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: (() => {
        throw new TypeError("fetch failed");
      }) as never,
    });
    for (let i = 0; i < 3; i++) {
      expect((await rejection(clock.run(throwing.fetch("http://api.example/a")))) as Error).toHaveProperty(
        "name",
        "RetryExhaustedError",
      );
    }
    expect(throwing.health().breakers["api.example"]).toMatchObject({ active: 0, queued: 0, failureCount: 3 });
    const plain = createResilience({
      clock,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: (() => new Response("ok")) as never,
    });
    for (let i = 0; i < 3; i++) expect((await clock.run(plain.fetch("http://api.example/a"))).status).toBe(200);
    expect(plain.health().breakers["api.example"]).toMatchObject({ active: 0, queued: 0 });
  });

  // docs/storycore-mapping.md: `system.execute_with_resilience(fn, circuit_breaker_name='x')` is
  // `system.execute(fn, { breaker: "x" })`; a synchronous throw is a failed attempt like a rejection.
  it("execute(fn, { breaker }) counts a synchronous throw on the named breaker and resolves a plain value", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } });
    resilience.breaker("sync", { failureThreshold: 2 });
    const error = await rejection(
      clock.run(
        resilience.execute(
          () => {
            throw new Error("sync");
          },
          { breaker: "sync" },
        ),
      ),
    );
    expect((error as Error).cause).toEqual(new Error("sync"));
    expect(resilience.breaker("sync").state).toBe("open");
    resilience.breaker("sync").reset();
    expect(await clock.run(resilience.execute(() => 7, { breaker: "sync" }))).toBe(7);
    expect(clock.pending()).toBe(0);
  });
});
