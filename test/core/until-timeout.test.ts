import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { untilTimeout } from "../../src/core/until-timeout.ts";
import { TestClock } from "../../src/testing/index.ts";

describe("untilTimeout", () => {
  it("gives the work's value in time, and leaves no timer behind", async () => {
    const clock = new TestClock();
    const given = untilTimeout(Promise.resolve("answer"), clock, 1_000, () => "late");
    await expect(given).resolves.toBe("answer");
    expect(clock.pending()).toBe(0);
  });

  it("gives what `late` gives once the time passed, and hands a value that comes after to `drop`", async () => {
    const clock = new TestClock();
    let settle!: (value: string) => void;
    const work = new Promise<string>((resolve) => {
      settle = resolve;
    });
    const dropped: string[] = [];
    const given = untilTimeout(
      work,
      clock,
      1_000,
      () => "late",
      undefined,
      (value) => dropped.push(value),
    );
    await clock.advance(999);
    expect(dropped).toEqual([]);
    await clock.advance(1);
    await expect(given).resolves.toBe("late");
    settle("answer after the time");
    await work;
    await Promise.resolve();
    expect(dropped).toEqual(["answer after the time"]);
  });

  it("rejects with what `late` throws, and passes the work's own rejection on, its timer cleared", async () => {
    const clock = new TestClock();
    const timedOut = untilTimeout(new Promise<never>(() => {}), clock, 50, () => {
      throw new Error("too slow");
    });
    // Heard before the clock moves: the rejection comes during `advance`.
    const outcome = timedOut.catch((error: unknown) => error);
    await clock.advance(50);
    expect(await outcome).toMatchObject({ message: "too slow" });
    const failed = untilTimeout(Promise.reject(new Error("its own")), clock, 50, () => "late");
    await expect(failed).rejects.toThrow("its own");
    expect(clock.pending()).toBe(0);
  });

  it("rejects at the signal's abort, and leaves no listener on it whichever comes first", async () => {
    const clock = new TestClock();
    const caller = new AbortController();
    const never = new Promise<never>(() => {});
    for (let i = 0; i < 3; i++) {
      const timedOut = untilTimeout(never, clock, 10, () => "late", caller.signal);
      await clock.advance(10);
      await expect(timedOut).resolves.toBe("late");
    }
    await expect(untilTimeout(Promise.resolve(1), clock, 10, () => 0, caller.signal)).resolves.toBe(1);
    expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
    const aborted = untilTimeout(never, clock, 10, () => "late", caller.signal).catch((error: unknown) => error);
    caller.abort(new Error("caller gone"));
    expect(await aborted).toMatchObject({ message: "caller gone" });
    expect(clock.pending()).toBe(0);
  });
});
