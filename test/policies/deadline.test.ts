import { describe, expect, it } from "vitest";
import { TimeoutError } from "../../src/core/errors.ts";
import { startDeadline } from "../../src/policies/deadline.ts";
import { TestClock } from "../../src/testing/index.ts";

/** An attempt timed by `deadline`, recording when its own timeout fired. */
function attempt(deadline: ReturnType<typeof startDeadline>, clock: TestClock) {
  const controller = new AbortController();
  const timedOutAt: number[] = [];
  const end = deadline.timeAttempt(controller, () => timedOutAt.push(clock.now()));
  return { controller, timedOutAt, end };
}

describe("a deadline times its attempts on one timer", () => {
  it("arms one timer for the deadline and the attempts in it", () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    attempt(deadline, clock);
    expect(clock.pending()).toBe(1);
    deadline.cancel();
    expect(clock.pending()).toBe(0);
  });

  it("times out an attempt at its start + ms, however late it started", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    await clock.advance(700);
    const first = attempt(deadline, clock);
    await clock.advance(999);
    expect(first.timedOutAt).toEqual([]);
    await clock.advance(1);
    expect(first.timedOutAt).toEqual([1_700]);
    expect(first.controller.signal.aborted).toBe(false);
    const second = attempt(deadline, clock);
    await clock.advance(999);
    expect(second.timedOutAt).toEqual([]);
    await clock.advance(1);
    expect(second.timedOutAt).toEqual([2_700]);
    expect(deadline.fired()).toBe(false);
    expect(clock.pending()).toBe(1);
    deadline.cancel();
  });

  it("an ended attempt never times out", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    const one = attempt(deadline, clock);
    one.end();
    await clock.advance(5_000);
    expect(one.timedOutAt).toEqual([]);
    deadline.cancel();
  });

  it("times concurrent attempts each on its own due time", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    const a = attempt(deadline, clock);
    await clock.advance(400);
    const b = attempt(deadline, clock);
    await clock.advance(1_000);
    expect(a.timedOutAt).toEqual([1_000]);
    expect(b.timedOutAt).toEqual([1_400]);
    deadline.cancel();
  });

  it("fires at its own time, aborting the running attempts with the total timeout, not theirs", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 1_500, undefined, 1_000);
    await clock.advance(900);
    const late = attempt(deadline, clock);
    await clock.advance(599);
    expect(deadline.fired()).toBe(false);
    await clock.advance(1);
    expect(deadline.fired()).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
    expect(late.controller.signal.reason).toBeInstanceOf(TimeoutError);
    expect(late.controller.signal.reason).toMatchObject({ phase: "total" });
    expect(late.timedOutAt).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("fires `ms` after the start it is given (the call's start, read once)", async () => {
    const clock = new TestClock(5_000);
    const deadline = startDeadline(clock, 5_000, 1_000, undefined, undefined);
    expect(deadline.remaining()).toBe(1_000);
    await clock.advance(999);
    expect(deadline.fired()).toBe(false);
    await clock.advance(1);
    expect(deadline.fired()).toBe(true);
  });

  it("a call settled while an attempt times out leaves no timer behind", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    const controller = new AbortController();
    // The attempt's timeout settles the call synchronously, inside the wake.
    deadline.timeAttempt(controller, () => deadline.cancel());
    await clock.advance(1_000);
    expect(clock.pending()).toBe(0);
  });

  it("owns its signal when the caller gave none", () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, undefined);
    expect(deadline.owned).toBe(true);
    deadline.cancel();
  });

  it("keeps its timer going through a wake that finds no attempt timed yet", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 3_000, undefined, 1_000);
    // The first wake is armed for the attempt timeout, but no attempt started.
    await clock.advance(1_000);
    expect([deadline.fired(), clock.pending()]).toEqual([false, 1]);
    await clock.advance(1_999);
    expect(deadline.fired()).toBe(false);
    await clock.advance(1);
    expect(deadline.fired()).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("ending an attempt that already timed out leaves the other attempts timed", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    const a = attempt(deadline, clock);
    await clock.advance(400);
    const b = attempt(deadline, clock);
    await clock.advance(600);
    expect(a.timedOutAt).toEqual([1_000]);
    // As the transport's rejection does after a timeout: the attempt is ended too.
    a.end();
    await clock.advance(400);
    expect(b.timedOutAt).toEqual([1_400]);
    deadline.cancel();
  });

  it("links the caller's signal", () => {
    const clock = new TestClock();
    const parent = new AbortController();
    const deadline = startDeadline(clock, 0, 10_000, parent.signal, undefined);
    expect(deadline.owned).toBe(false);
    parent.abort("gone");
    expect(deadline.signal.reason).toBe("gone");
    expect(deadline.fired()).toBe(false);
    deadline.cancel();
  });
});

describe("attempts ending one another", () => {
  it("an attempt ended by another's timeout is neither timed out nor kept", async () => {
    const clock = new TestClock();
    const deadline = startDeadline(clock, 0, 10_000, undefined, 1_000);
    const timedOut: string[] = [];
    let endSecond = (): void => {};
    let endThird = (): void => {};
    // The first's timeout ends the second (due at the same time) and the third (due later).
    deadline.timeAttempt(new AbortController(), () => {
      timedOut.push("first");
      endSecond();
      endThird();
    });
    endSecond = deadline.timeAttempt(new AbortController(), () => timedOut.push("second"));
    endThird = deadline.timeAttempt(new AbortController(), () => timedOut.push("third"));
    await clock.advance(1_000);
    expect(timedOut).toEqual(["first"]);
    const fourth = attempt(deadline, clock);
    await clock.advance(1_000);
    expect(fourth.timedOutAt).toEqual([2_000]);
    deadline.cancel();
  });
});

describe("a wall clock that jumps during the call", () => {
  /** Timers on a test clock, and a wall clock `offset` ms away from it (an NTP step, a resumed VM). */
  function steppedClock() {
    const timers = new TestClock();
    const state = { offset: 0 };
    const clock = { now: () => timers.now() + state.offset, setTimer: timers.setTimer.bind(timers) };
    return { timers, clock, state };
  }

  /** Attempts back to back, as retries without waits: each starts once the one before timed out. */
  async function runAttempts(step: number) {
    const { timers, clock, state } = steppedClock();
    const deadline = startDeadline(clock, clock.now(), 600, undefined, 150);
    const timedOut: number[] = [];
    const start = (): void => {
      deadline.timeAttempt(new AbortController(), () => {
        timedOut.push(timers.now());
        // As a retry does: after the failed attempt's promise settles.
        queueMicrotask(start);
      });
    };
    start();
    await timers.advance(50);
    state.offset += step;
    await timers.advance(549);
    const firedEarly = deadline.fired();
    await timers.advance(1);
    return { timedOut, firedEarly, fired: deadline.fired() };
  }

  it("set back 10 s: attempts still time out 150 ms apart and the deadline fires at 600 ms", async () => {
    expect(await runAttempts(-10_000)).toEqual({ timedOut: [150, 300, 450], firedEarly: false, fired: true });
  });

  it("moved ahead 1 s: nothing fires early", async () => {
    expect(await runAttempts(1_000)).toEqual({ timedOut: [150, 300, 450], firedEarly: false, fired: true });
  });

  it("reads a little behind its timers (Node's cached loop time): what was due is handled at the wake", async () => {
    const { timers, clock, state } = steppedClock();
    const deadline = startDeadline(clock, 0, 5_000, undefined, 1_000);
    const timedOut: number[] = [];
    deadline.timeAttempt(new AbortController(), () => timedOut.push(timers.now()));
    state.offset = -2;
    await timers.advance(1_000);
    expect(timedOut).toEqual([1_000]);
    await timers.advance(4_000);
    expect(deadline.fired()).toBe(true);
  });
});
