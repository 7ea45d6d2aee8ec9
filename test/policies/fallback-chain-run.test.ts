import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/index.ts";
import { FallbackChain, systemClock } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A chain of three entries that answer with their own name. */
function chainOfThree(): FallbackChain<{ id: number }, string> {
  const chain = new FallbackChain<{ id: number }, string>("three", { clock: systemClock });
  for (const name of ["a", "b", "c"]) chain.add(() => name, { name });
  return chain;
}

describe("FallbackChain.run's options", () => {
  it("hand the run's input to skip, accept and moveOn, so one set of functions serves every run", async () => {
    const input = { id: 7 };
    const seen: Array<[string, unknown]> = [];
    const result = await chainOfThree().run(input, {
      skip: (name, given) => {
        seen.push([`skip ${name}`, given]);
        return name === "a" ? { reason: "down", error: new Error("down") } : undefined;
      },
      accept: (value, name, given) => {
        seen.push([`accept ${name}`, given]);
        return value === "b" ? "not good enough" : undefined;
      },
      moveOn: (_failure, given) => {
        seen.push(["moveOn", given]);
        return true;
      },
    });
    expect(result).toMatchObject({ ok: true, value: "c", name: "c" });
    expect(seen.map(([what]) => what)).toEqual(["skip a", "skip b", "accept b", "moveOn", "skip c", "accept c"]);
    for (const [, given] of seen) expect(given).toBe(input);
  });

  it("take accept's reason given at once, promised, or as a thenable of another realm", async () => {
    const thenable = (reason: string | undefined) => ({
      // biome-ignore lint/suspicious/noThenProperty: a foreign thenable on purpose
      then: (resolve: (r: string | undefined) => void) => resolve(reason),
    });
    const reasons = {
      a: () => "sync no",
      b: () => Promise.resolve("promised no"),
      c: () => thenable(undefined),
    };
    const result = await chainOfThree().run(
      { id: 3 },
      {
        accept: (_value, name) =>
          reasons[name as keyof typeof reasons]() as unknown as string | Promise<string | undefined>,
      },
    );
    expect(result).toMatchObject({ ok: true, value: "c", name: "c" });
    const refused = await chainOfThree().run({ id: 4 }, { accept: () => thenable("never") as unknown as string });
    expect(refused.ok).toBe(false);
    expect(refused).toMatchObject({ lastRejected: "c", lastRejectedBy: "c" });
  });

  it("name the entry whose value was turned down last, when nothing is accepted", async () => {
    const result = await chainOfThree().run({ id: 1 }, { accept: () => "no" });
    // Changed in the thirty-first session: with `lastTried`, which `errors`' key order cannot give for number-like names;
    // in the thirty-second, `tried`, the order they failed in.
    expect(result).toEqual({
      ok: false,
      errors: expect.any(Object),
      tried: ["a", "b", "c"],
      lastTried: "c",
      lastRejected: "c",
      lastRejectedBy: "c",
    });
    const stopped = await chainOfThree().run({ id: 2 }, { accept: () => "no", moveOn: () => false });
    expect(stopped).toMatchObject({ ok: false, lastRejected: "a", lastRejectedBy: "a" });
    const down = new Error("down");
    const none = await chainOfThree().run({ id: 3 }, { skip: () => ({ reason: "down", error: down }) });
    expect(none).toMatchObject({ ok: false, lastRejected: undefined, lastRejectedBy: undefined });
    // A skipped entry's error is the one skip gave, as is.
    expect(none.ok === false && none.errors).toEqual({ a: down, b: down, c: down });
    expect(none.ok === false && none.errors.a).toBe(down);
  });
});

describe("a hedged FallbackChain run", () => {
  it("starts the next entry at once when the running one fails before the hedge delay", async () => {
    const chain = new FallbackChain<null, string>("hedged", { clock: new TestClock(0) });
    chain.add(() => Promise.reject(new Error("down")), { name: "a" });
    chain.add(() => "b", { name: "b" });
    // The test clock never advances: only the failure can start "b".
    const result = await chain.run(null, { hedgeDelay: 10_000 });
    expect(result).toMatchObject({ ok: true, value: "b", name: "b" });
  });

  it("stops the hedge still running when a failure may not move on, and hands its late value to discard", async () => {
    const clock = new TestClock(0);
    const chain = new FallbackChain<null, string>("hedged", { clock });
    let failA: (error: Error) => void = () => {};
    let answerB: (value: string) => void = () => {};
    let signalB: AbortSignal | undefined;
    chain.add(() => new Promise<string>((_, reject) => (failA = reject)), { name: "a" });
    chain.add(
      (_input, { signal }) => {
        signalB = signal;
        return new Promise<string>((resolve) => (answerB = resolve));
      },
      { name: "b" },
    );
    const discarded: string[] = [];
    const running = chain.run(null, { hedgeDelay: 100, moveOn: () => false, discard: (v) => discarded.push(v) });
    await clock.advance(100);
    expect(signalB?.aborted).toBe(false);
    failA(new Error("paid job may have run"));
    const result = await running;
    expect(result).toMatchObject({ ok: false, lastRejected: undefined });
    expect(Object.keys((result as { errors: object }).errors)).toEqual(["a"]);
    expect(signalB?.aborted).toBe(true);
    answerB("late");
    // One turn of the event loop lets the settled hedge reach discard (no time passes).
    await new Promise((resolve) => setImmediate(resolve));
    expect(discarded).toEqual(["late"]);
  });
});

describe("FallbackChain.run at a caller's abort", () => {
  it("waits for an entry that ignores its signal, then tries no further entry; execute settles at the abort", async () => {
    const pending: Array<(error: Error) => void> = [];
    const tried: string[] = [];
    const chain = new FallbackChain<void, string>("ignoring", { clock: systemClock })
      .add(
        () => {
          tried.push("slow");
          return new Promise<string>((_, reject) => pending.push(reject));
        },
        { name: "slow" },
      )
      .add(
        () => {
          tried.push("next");
          return "next";
        },
        { name: "next" },
      );
    const controller = new AbortController();
    let runSettled = false;
    const running = chain.run(undefined, { signal: controller.signal }).finally(() => {
      runSettled = true;
    });
    const executed = chain.execute(undefined, { signal: controller.signal });
    controller.abort(new Error("stop"));
    await expect(executed).rejects.toThrow("stop");
    await Promise.resolve();
    expect(runSettled).toBe(false);
    for (const fail of pending) fail(new Error("late failure"));
    const result = await running;
    expect(runSettled).toBe(true);
    // The late failure would move a run on to `next`; after the abort it does not.
    expect(result.ok).toBe(false);
    expect(tried).toEqual(["slow", "slow"]);
  });
});

describe("FallbackChain.run's options, checked before any entry runs", () => {
  /** A chain whose one entry counts its calls. */
  function counted(): { chain: FallbackChain<number, number>; calls: () => number } {
    let calls = 0;
    const chain = new FallbackChain<number, number>("c").add(
      async (n) => {
        calls++;
        return n;
      },
      { name: "only" },
    );
    return { chain, calls: () => calls };
  }

  it.each([
    [{ hedgDelay: 5 }, 'fallbackChain("c").run: unknown option "hedgDelay"'],
    [{ signal: {} }, 'fallbackChain("c").run.signal: expected an AbortSignal, received an object'],
    [{ accept: "x" }, 'fallbackChain("c").run.accept: expected a function, received "x"'],
    [{ onFallback: 1 }, 'fallbackChain("c").run.onFallback: expected a function, received 1'],
    [{ hedgeDelay: -1 }, 'fallbackChain("c").run.hedgeDelay: expected a value >= 0, received -1'],
    [{ hedgeDelay: Number.POSITIVE_INFINITY }, 'fallbackChain("c").run.hedgeDelay: expected number, received Infinity'],
    [null, 'fallbackChain("c").run: expected object, received null'],
  ])("refuse %o with a ConfigError naming it, and run nothing", async (options, message) => {
    const { chain, calls } = counted();
    const refused = await chain.run(1, options as never).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toBe(message);
    expect(calls()).toBe(0);
    expect(chain.statistics().fallbacks.only?.calls).toBe(0);
  });

  it("take every option they document, and `undefined` for any of them", async () => {
    const { chain, calls } = counted();
    const all = {
      signal: new AbortController().signal,
      hedgeDelay: 0,
      accept: () => undefined,
      skip: () => undefined,
      passedOver: () => undefined,
      mayHedge: () => true,
      heldBack: () => false,
      uncounted: () => false,
      started: () => true,
      moveOn: () => true,
      discard: () => {},
      onFallback: () => {},
    };
    expect(await chain.run(1, all)).toMatchObject({ ok: true, value: 1 });
    const none = Object.fromEntries(Object.keys(all).map((key) => [key, undefined]));
    expect(await chain.run(2, none)).toMatchObject({ ok: true, value: 2 });
    expect(calls()).toBe(2);
  });
});
