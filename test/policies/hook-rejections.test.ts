/**
 * The generic pieces' own hooks, a standalone `CircuitBreaker`'s `onChange`
 * and `FallbackChain.run`'s `onFallback`, may be async functions. Their
 * callers cannot await them (they run inside a synchronous change of state),
 * so a rejection is reported as an event listener's is (`reportError`, else
 * `console.error`), never left unhandled: an unhandled rejection ends a Node
 * process. A hook that throws at once still reaches its caller.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { CircuitBreaker, FallbackChain, type ResolvedBreakerPolicy } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const policy: ResolvedBreakerPolicy = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 10_000,
  probeTimeout: 5_000,
  failureRate: undefined,
  minimumCalls: 10,
};

/** Collects what the library reports through `globalThis.reportError`, for the test's length. */
function collectReports(): unknown[] {
  const reported: unknown[] = [];
  vi.stubGlobal("reportError", (error: unknown) => reported.push(error));
  return reported;
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("a standalone CircuitBreaker's onChange", () => {
  it("an async hook that rejects is reported, not left unhandled, and the breaker still opens", async () => {
    const reported = collectReports();
    const boom = new Error("hook failed");
    const breaker = new CircuitBreaker("upscaler", policy, new TestClock(0), {
      onChange: async () => Promise.reject(boom),
    });
    const { value, unhandled } = await watchUnhandled(() =>
      breaker.execute(() => Promise.reject(new Error("down"))).catch((e: Error) => e.message),
    );
    expect(value).toBe("down");
    expect(breaker.state).toBe("open");
    expect(unhandled).toEqual([]);
    expect(reported).toEqual([boom]);
  });

  it("without reportError (Node), the rejection goes to console.error", async () => {
    vi.stubGlobal("reportError", undefined);
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const boom = new Error("hook failed");
    const breaker = new CircuitBreaker("upscaler", policy, new TestClock(0), {
      onChange: async () => Promise.reject(boom),
    });
    const { unhandled } = await watchUnhandled(() =>
      breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {}),
    );
    expect(unhandled).toEqual([]);
    expect(errors).toHaveBeenCalledWith("[resilient-fetch] a listener or hook failed:", boom);
  });

  it("a hook that throws at once reaches the caller whose call changed the state", async () => {
    const boom = new Error("hook threw");
    const breaker = new CircuitBreaker("upscaler", policy, new TestClock(0), {
      onChange: () => {
        throw boom;
      },
    });
    await expect(breaker.execute(() => Promise.reject(new Error("down")))).rejects.toBe(boom);
  });
});

describe("FallbackChain.run's onFallback", () => {
  it("an async hook that rejects is reported, not left unhandled, and the run goes on to the next entry", async () => {
    const reported = collectReports();
    const boom = new Error("hook failed");
    const chain = new FallbackChain<number, string>("images", { clock: new TestClock(0) });
    chain
      .add(
        () => {
          throw new Error("primary down");
        },
        { name: "primary" },
      )
      .add(() => "spare", { name: "spare" });
    const { value, unhandled } = await watchUnhandled(() =>
      chain.run(1, { onFallback: async () => Promise.reject(boom) }),
    );
    expect(value).toMatchObject({ ok: true, value: "spare", name: "spare" });
    expect(unhandled).toEqual([]);
    expect(reported).toEqual([boom]);
  });

  it("a rejecting thenable that is no Promise is reported too", async () => {
    const reported = collectReports();
    const boom = new Error("thenable failed");
    // biome-ignore lint/suspicious/noThenProperty: a foreign thenable on purpose
    const thenable = { then: (_ok: unknown, fail: (e: unknown) => void) => fail(boom) };
    const chain = new FallbackChain<number, string>("images", { clock: new TestClock(0) });
    chain.add(() => Promise.reject(new Error("down")), { name: "primary" }).add(() => "spare", { name: "spare" });
    const onFallback = (() => thenable) as unknown as () => undefined;
    const result = await chain.run(1, { onFallback });
    expect(result).toMatchObject({ ok: true, value: "spare" });
    expect(reported).toEqual([boom]);
  });
});

describe("FallbackChain.run's discard", () => {
  it("a losing hedge's value comes after the run: a discard that throws on it is reported, not left unhandled", async () => {
    const reported = collectReports();
    const boom = new Error("discard failed");
    const clock = new TestClock(0);
    let answerSlow: ((value: string) => void) | undefined;
    const chain = new FallbackChain<number, string>("hedged", { clock });
    // The slow entry ignores its signal and answers after the run is over.
    chain
      .add(() => new Promise<string>((resolve) => (answerSlow = resolve)), { name: "slow" })
      .add(() => "fast", {
        name: "fast",
      });
    const discard = (): void => {
      throw boom;
    };
    const { value, unhandled } = await watchUnhandled(async () => {
      const result = await clock.run(chain.run(1, { hedgeDelay: 10, discard }));
      answerSlow?.("late");
      return result;
    });
    expect(value).toMatchObject({ ok: true, value: "fast" });
    expect(unhandled).toEqual([]);
    expect(reported).toEqual([boom]);
  });

  it("an async discard that rejects on a value accept turned down is reported, and the run goes on", async () => {
    const reported = collectReports();
    const boom = new Error("discard failed");
    const chain = new FallbackChain<number, string>("checked", { clock: new TestClock(0) });
    chain.add(() => "blurry", { name: "primary" }).add(() => "sharp", { name: "spare" });
    const { value, unhandled } = await watchUnhandled(() =>
      chain.run(1, {
        accept: (v) => (v === "blurry" ? "too blurry" : undefined),
        discard: async () => Promise.reject(boom),
      }),
    );
    expect(value).toMatchObject({ ok: true, value: "sharp", name: "spare" });
    expect(unhandled).toEqual([]);
    expect(reported).toEqual([boom]);
  });
});
