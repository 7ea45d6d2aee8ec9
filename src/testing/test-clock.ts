import type { Clock } from "../core/clock.ts";
import { shownValue } from "../core/shown-name.ts";

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/** Real event-loop turns to yield so I/O (e.g. MSW) can progress between timers. */
const TURNS_PER_STEP = 3;
/**
 * Real time `run` waits with no timer due before deciding the promise hangs:
 * within a test runner's default 5 s timeout, so the clear message is what a
 * hung test shows. Measured, not counted in turns: a browser stretches a
 * chain of `setTimeout(0)` to 4 ms a turn, where Node takes about 1.
 */
const MAX_IDLE_MS = 3_000;

/**
 * Idle steps (of TURNS_PER_STEP turns) after which `run` gives up all the
 * same (about 3 s in Node), should the real time below not move (a test
 * that faked `performance` before this module loaded).
 */
const MAX_IDLE_TURNS = 1_000;

/** Real time, read as this module loaded: fake timers a test installs later do not stop it. */
const realNow: () => number =
  typeof performance === "object" && typeof performance?.now === "function"
    ? performance.now.bind(performance)
    : Date.now;

/** The longest delay a timer takes (setTimeout's, and the real clock's, limit). */
const MAX_DELAY = 2_147_483_647;

const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * A {@link Clock} for tests: time moves only when the test says so, and
 * timers fire in order without real waiting. Works wherever `setTimeout`
 * exists (Node, happy-dom, browsers, workerd), since it only yields turns.
 *
 * @example
 * const clock = new TestClock();
 * const resilience = createResilience({ clock });
 * const response = await clock.run(resilience.fetch(url)); // backoffs pass instantly
 */
export class TestClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(start = 0) {
    // A start that is no finite number would leave every deadline NaN or Infinity.
    if (typeof start !== "number" || !Number.isFinite(start))
      throw new TypeError(`new TestClock(start): expected a finite number, got ${shownValue(start)}`);
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, ms: number): () => void {
    // As setTimeout does, a delay that is no number (NaN) is no delay: time never becomes NaN;
    // and, as the real clock does, one past 2^31 - 1 ms waits that long, not for ever.
    const delay = ms > 0 ? Math.min(ms, MAX_DELAY) : 0;
    const timer: Timer = { at: this.#now + delay, seq: this.#seq++, callback };
    this.#timers.push(timer);
    return () => {
      const index = this.#timers.indexOf(timer);
      if (index >= 0) this.#timers.splice(index, 1);
    };
  }

  /** Timers scheduled and not yet fired or cancelled. */
  pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    // NaN, Infinity or a missing step would fire every timer and leave now() at NaN or Infinity.
    if (typeof ms !== "number" || !(ms >= 0 && ms < Number.POSITIVE_INFINITY)) {
      throw new TypeError(`TestClock.advance(ms): expected a finite number >= 0, got ${shownValue(ms)}`);
    }
    // Finite steps can still add up past the largest number: time would stop at Infinity.
    if (!Number.isFinite(this.#now + ms))
      throw new RangeError(
        `TestClock.advance(ms): ${ms} ms from ${this.#now} is past the largest time a clock can show`,
      );
    const target = this.#now + ms;
    for (;;) {
      await this.#yield();
      const next = this.#earliest();
      if (!next || next.at > target) break;
      this.#fire(next);
    }
    this.#now = Math.max(this.#now, target);
    await this.#yield();
  }

  /** Yields real turns until at least `count` timers are pending (e.g. a backoff started). */
  async waitForTimers(count = 1): Promise<void> {
    // NaN or a negative count would be met at once, and "2" would be coerced: refuse them.
    if (!(Number.isInteger(count) && count >= 0))
      throw new TypeError(`TestClock.waitForTimers(count): expected a whole number >= 0, got ${shownValue(count)}`);
    const since = realNow();
    for (let idle = 0; this.#timers.length < count; idle++) {
      if (idle > MAX_IDLE_TURNS * TURNS_PER_STEP || realNow() - since > MAX_IDLE_MS) {
        throw new Error(`TestClock: ${count} timer(s) never got scheduled`);
      }
      await turn();
    }
  }

  /**
   * Settles `promise`, firing the next timer whenever it has not settled
   * after three real turns (`setTimeout(0)` each), whether or not I/O is
   * still under way: with a real server, which takes longer, it may jump to
   * a timeout or hedge timer first (use a stub `fetch` or MSW, or the real
   * clock). Rejects if it neither settles nor schedules a timer for a long while.
   */
  async run<T>(promise: Promise<T>): Promise<T> {
    // A call whose promise was not passed on (`run(undefined)`) would fail reading `finally`.
    if (typeof (promise as { then?: unknown } | null)?.then !== "function")
      throw new TypeError(`TestClock.run(promise): expected a promise, got ${shownValue(promise)}`);
    let settled = false;
    const tracked = Promise.resolve(promise).finally(() => {
      settled = true;
    });
    tracked.catch(() => {});
    let idleSince = realNow();
    for (let idle = 0; !settled; ) {
      // Work that needs no I/O settles in microtasks: check before paying for real turns.
      for (let i = 0; i < 20 && !settled; i++) await Promise.resolve();
      if (settled) break;
      await this.#yield();
      if (settled) break;
      const next = this.#earliest();
      if (next) {
        this.#fire(next);
        idle = 0;
        idleSince = realNow();
      } else if (++idle > MAX_IDLE_TURNS || realNow() - idleSince > MAX_IDLE_MS) {
        throw new Error("TestClock.run: the promise never settled and no timer is pending");
      }
    }
    return tracked;
  }

  #earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }

  #fire(timer: Timer): void {
    this.#timers.splice(this.#timers.indexOf(timer), 1);
    this.#now = Math.max(this.#now, timer.at);
    timer.callback();
  }

  async #yield(): Promise<void> {
    for (let i = 0; i < TURNS_PER_STEP; i++) await turn();
  }
}
