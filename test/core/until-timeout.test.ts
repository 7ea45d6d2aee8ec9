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
    await clock.advance(50);
    await expect(timedOut).rejects.toThrow("too slow");
    const failed = untilTimeout(Promise.reject(new Error("its own")), clock, 50, () => "late");
    await expect(failed).rejects.toThrow("its own");
    expect(clock.pending()).toBe(0);
  });
});
