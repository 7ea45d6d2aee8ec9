/**
 * Outside-in attack on the last hour's fixes (431d59d..HEAD): `untilAborted`
 * behind `resilience.execute`, `retry(fn)` and a generic chain's `execute`;
 * the budget's fractional refill; `adjust` at a scale of 1; `__proto__`
 * entries; the testing kit's argument checks and `flaky` after `reset()`;
 * the proxy, `kvStore` and `durableObjectStore` checks. Public entries only;
 * time moves only on a `TestClock`. Each `it.fails` pins a defect: it asserts
 * the documented (or claimed) behaviour and fails while the defect exists.
 */
import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { flaky, sequence, status, stream, TestClock, upstream } from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";

const server = useMswServer();

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
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const turns = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
};

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, "abort").length;

afterEach(() => {
  vi.restoreAllMocks();
});

describe("untilAborted: listeners and late outcomes", () => {
  it("retry(fn), execute and a chain leave no abort listener after success, error and abort", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, retry: { maxAttempts: 1 } });
    const chain = new FallbackChain<number, string>("c", { clock });
    let mode: "ok" | "fail" = "ok";
    chain.add(
      async () => {
        if (mode === "fail") throw new Error("no");
        return "v";
      },
      { name: "a" },
    );
    const controller = new AbortController();
    const { signal } = controller;
    const work = async () => {
      if (mode === "fail") throw new Error("no");
      return "v";
    };
    for (const m of ["ok", "fail"] as const) {
      mode = m;
      await retry(work, { signal, maxAttempts: 1, clock }).catch(() => {});
      await resilience.execute(work, { signal }).catch(() => {});
      await chain.execute(1, { signal }).catch(() => {});
      expect(abortListeners(signal)).toBe(0);
    }
    const hanging = deferred<string>();
    const calls = [
      retry(() => hanging.promise, { signal, maxAttempts: 1, clock }),
      resilience.execute(() => hanging.promise, { signal }),
      new FallbackChain<number, string>("d", { clock })
        .add(() => hanging.promise, { name: "a" })
        .execute(1, { signal }),
    ];
    await turns(2);
    const reason = new Error("gone");
    controller.abort(reason);
    for (const call of calls) expect(await rejection(call)).toBe(reason);
    expect(abortListeners(signal)).toBe(0);
    // Already aborted: nothing added.
    await rejection(retry(work, { signal, clock }));
    await rejection(resilience.execute(work, { signal }));
    await rejection(chain.execute(1, { signal }));
    expect(abortListeners(signal)).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("a late rejection of abandoned work is no unhandled rejection, and no onRetry or fallback follows", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const clock = new TestClock(0);
      const resilience = createResilience({ clock });
      const works = [deferred<string>(), deferred<string>()];
      const controller = new AbortController();
      const onRetry = vi.fn();
      const fallbackFn = vi.fn(() => "fallback");
      const a = retry(() => (works[0] as ReturnType<typeof deferred<string>>).promise, {
        signal: controller.signal,
        clock,
        onRetry,
      });
      const b = resilience.execute(() => (works[1] as ReturnType<typeof deferred<string>>).promise, {
        signal: controller.signal,
        fallback: fallbackFn,
      });
      await turns(2);
      const reason = new Error("gone");
      controller.abort(reason);
      expect(await rejection(a)).toBe(reason);
      expect(await rejection(b)).toBe(reason);
      for (const w of works) w.reject(new Error("late"));
      await turns(5);
      await clock.advance(60_000);
      expect(unhandled).toEqual([]);
      expect(onRetry).not.toHaveBeenCalled();
      expect(fallbackFn).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

describe("execute(fn, { breaker, signal }) while fn ignores the signal (docs/breakers.md)", () => {
  // docs/breakers.md: "a caller's abort is neither" (success nor failure); CircuitBreaker.execute:
  // "an abort of `signal` counts as neither". Now that the caller's abort settles `execute` at
  // once, the half-open probe's permit stays with the abandoned work: the breaker never hears of
  // the abort, the lease runs out after probeTimeout and the next request re-opens the circuit
  // with "probe lease expired", i.e. the caller's abort was counted as a failed probe.
  it("a caller's abort of a half-open probe neither re-opens the breaker nor blocks the next probe", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const opts = { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, probeTimeout: 5_000 };
    const breaker = resilience.breaker("upscaler", opts);
    await rejection(
      resilience.execute(
        () => {
          throw new Error("down");
        },
        { breaker: "upscaler", retry: false },
      ),
    );
    expect(breaker.state).toBe("open");
    await clock.advance(1_000);
    expect(breaker.state).toBe("half_open");
    const controller = new AbortController();
    const reason = new Error("caller left");
    const probe = resilience.execute(() => new Promise<string>(() => {}), {
      breaker: "upscaler",
      retry: false,
      signal: controller.signal,
    });
    await turns(2);
    controller.abort(reason);
    expect(await rejection(probe)).toBe(reason);
    await clock.advance(5_000);
    // The abort was neither: the next caller is the probe, and its success is heard.
    const next = await resilience.execute(async () => "ok", { breaker: "upscaler", retry: false });
    expect(next).toBe("ok");
    expect(breaker.toJSON().reason).not.toBe("probe lease expired");
  });
});

describe("a generic chain's execute after the caller's abort", () => {
  // FallbackChain#failed: "A run its caller aborted is not counted: an abort is no failure";
  // ChainStatistics.lastSuccessfulFallback: "The last entry other than the first to serve a
  // run". With untilAborted the caller gets its reason at once and the entry's late value is
  // "dropped" (src/core/until-aborted.ts), yet the run goes on counting: the late value counts
  // as a successful run and names the entry that served nobody as lastSuccessfulFallback.
  it("a late value the caller never got is not counted as a served run", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<number, string>("c", { clock });
    const late = deferred<string>();
    chain.add(
      async () => {
        throw new Error("primary down");
      },
      { name: "primary" },
    );
    chain.add(() => late.promise, { name: "backup" });
    const controller = new AbortController();
    const reason = new Error("caller left");
    const done = chain.execute(1, { signal: controller.signal });
    await turns(2);
    controller.abort(reason);
    expect(await rejection(done)).toBe(reason);
    late.resolve("late");
    await turns(2);
    const stats = chain.statistics();
    expect(stats.lastSuccessfulFallback).toBeNull();
    expect(stats.overallSuccessRate).toBe(0);
  });
});

describe("testing kit", () => {
  // docs/testing.md: "`reset()` (after which `sequence` and `flaky` start over)". flaky starts
  // its draws over only when the handler's attempt is 1; when its first request is answered by
  // another fault (flaky as the last entry of a sequence, or inside `outage`), it never sees
  // attempt 1 and keeps drawing from where it was after reset().
  it("flaky inside a sequence starts over after upstream.reset()", async () => {
    const api = upstream("GET", "https://flaky.example/x", sequence([status(200), flaky(0.5, { seed: 7 })]));
    server.use(api.handler);
    const round = async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await fetch("https://flaky.example/x")).status);
      return statuses;
    };
    const first = await round();
    api.reset();
    const second = await round();
    expect(second).toEqual(first);
  });

  // docs/testing.md: "Each builder refuses a bad argument at once with a `TypeError` (a NaN or
  // negative wait, …), so a mistake fails the test, not a handler inside MSW." stream's
  // `interval` is a wait; NaN or negative is taken (a NaN interval sends every chunk at once).
  it("stream refuses a NaN or negative interval at once", () => {
    expect(() => stream(["a", "b"], { interval: Number.NaN })).toThrow(TypeError);
    expect(() => stream(["a", "b"], { interval: -1 })).toThrow(TypeError);
  });

  // Same sentence: `status(99)` (or 600, NaN) is taken and fails only when the handler runs,
  // inside MSW, as a RangeError from the Response constructor.
  it("status refuses a code no Response can carry at once", () => {
    expect(() => status(99)).toThrow(TypeError);
    expect(() => status(Number.NaN)).toThrow(TypeError);
  });
});

describe("resilientProxy construction (docs/cloudflare.md)", () => {
  // docs/cloudflare.md: "created on the first request (Workers forbid timers and controllers at
  // module scope)". The proxy now checks its options and builds the chain stage when made.
  it("makes no timer and no AbortController when constructed", () => {
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    const setIntervalSpy = vi.spyOn(globalThis, "setInterval");
    const Original = globalThis.AbortController;
    let controllers = 0;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        controllers++;
      }
    };
    try {
      resilientProxy({
        routes: [
          { path: "/v1/text", upstream: "https://text.example/v1" },
          {
            path: "/v1/video",
            chain: {
              name: "video",
              endpoints: [
                { name: "a", url: "https://a.example/v1" },
                { name: "b", url: "https://b.example/v1" },
              ],
            },
          },
        ],
        resilience: { timeout: { attempt: 1_000, total: 5_000 }, retry: { maxAttempts: 2 } },
      });
    } finally {
      globalThis.AbortController = Original;
    }
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setIntervalSpy).not.toHaveBeenCalled();
    expect(controllers).toBe(0);
  });
});

describe("kvStore's host map after a burst (docs/cloudflare.md)", () => {
  // src/cloudflare/kv-store.ts: "the map grows past 1,000 while such hosts are many", and the
  // LRU it uses: "While every entry is in use it grows past `max`, and shrinks back as new
  // entries come". It never shrinks: each new host evicts at most one old one, so after a burst
  // of 1,500 hosts writing inside minPublishInterval the map holds 1,500 hosts for good (a
  // layer fetching user-given URLs can be pushed to any size once, and stays there).
  it("forgets the burst's hosts once 1,000 fresh hosts came after their interval passed", async () => {
    const clock = new TestClock(0);
    let reads = 0;
    const namespace = {
      getWithMetadata: async () => {
        reads++;
        return { value: null, metadata: null };
      },
      put: async () => {},
    };
    const store = kvStore(namespace as never, {
      clock,
      random: () => 0,
      publishJitter: 0,
      refreshInterval: 1e12,
      ctx: { waitUntil: () => {} },
    });
    type Snapshot = Parameters<typeof store.publish>[1];
    const open = (): Snapshot => ({
      v: 1,
      state: "open",
      gen: 1,
      failures: [],
      window: null,
      lastFailureTime: null,
      openUntil: clock.now() + 30_000,
      leases: [],
      successes: 0,
      reason: "open",
      changedAt: clock.now(),
    });
    for (let i = 0; i < 1_500; i++) {
      store.peek(`burst-${i}.example`, clock.now());
      store.publish(`burst-${i}.example`, open());
    }
    await clock.advance(10_000);
    for (let i = 0; i < 1_000; i++) store.peek(`fresh-${i}.example`, clock.now());
    await turns(2);
    const before = reads;
    // A bounded LRU of 1,000 holds only the 1,000 fresh hosts now: the newest burst host is
    // gone and is read again. Here it is still held (no read).
    store.peek("burst-1499.example", clock.now());
    await turns(2);
    expect(reads).toBe(before + 1);
  });
});

describe("option errors quote no credentials (431d59d)", () => {
  // 431d59d: "option errors quote a URL without credentials, query and fragment"
  // (check-options.ts `quoted`). `quoted` cuts them only from a string the URL parser reads; a
  // URL with a typo the parser refuses (a space in the host, a port out of range) is quoted
  // whole, password and query key included. Before 431d59d a regular expression cut the
  // `user:pass@` of any string, so the password leak is new.
  it("a URL the parser refuses is not quoted with its password or query key", () => {
    for (const url of ["https://user:s3cret@exa mple.com/v1", "https://api.example.com:99999/v1?key=SECRETKEY"]) {
      let message = "";
      try {
        fallback([{ name: "c", endpoints: [{ name: "a", url }] }]);
      } catch (error) {
        message = String((error as Error).message);
      }
      expect(message).toMatch(/endpoints\.0\.url/);
      expect(message).not.toContain("s3cret");
      expect(message).not.toContain("SECRETKEY");
    }
  });
});
