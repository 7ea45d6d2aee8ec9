import type { Clock } from "../core/clock.ts";
import { TimeoutError } from "../core/errors.ts";

/** A whole-call deadline (`timeout.total`): waits and attempts included. */
export interface Deadline {
  /** Epoch ms at which it fires. */
  readonly at: number;
  /** Aborted when the caller aborts or the deadline passes. */
  readonly signal: AbortSignal;
  /** True when `signal` is the deadline's own (no caller signal is mixed in). */
  readonly owned: boolean;
  /** The error it aborted with (built when it fires); `attempts` is filled in by the caller. */
  error(): TimeoutError;
  fired(): boolean;
  /**
   * Times one attempt on the deadline's own timer: `onTimeout` runs when the
   * attempt outlives `ms`, and `controller` is aborted when the deadline
   * fires first (cheaper than `AbortSignal.any`). Returns the function that
   * ends the attempt.
   */
  timeAttempt(ms: number, controller: AbortController, onTimeout: () => void): () => void;
  /** Clears the timer; call it when the call settles. */
  cancel(): void;
}

/**
 * Starts a deadline `ms` after `now`, linked to the caller's `parent` signal.
 * `attemptMs` is the attempt timeout its attempts will ask for, if any.
 */
export function startDeadline(
  clock: Clock,
  now: number,
  ms: number,
  parent: AbortSignal | undefined,
  attemptMs: number | undefined,
): Deadline {
  return new CallDeadline(clock, now, ms, parent, attemptMs);
}

/** An attempt timed by a deadline. */
interface TimedAttempt {
  due: number;
  controller: AbortController;
  onTimeout: () => void;
}

/**
 * One timer per call for the deadline and every attempt timeout in it: it
 * wakes at the earliest moment either could pass, does what is due, and
 * re-arms for the next such moment. An attempt cannot start before the
 * deadline does, so it is never due before `start + attemptMs`: the first
 * wake is armed for that, and attempts then start without touching the
 * timer. A call that succeeds on its first attempt sets one timer, not two.
 *
 * A class rather than an object of closures: one deadline starts per call,
 * and its methods then cost nothing per call.
 */
class CallDeadline implements Deadline {
  readonly at: number;
  readonly signal: AbortSignal;
  readonly owned: boolean;
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #attemptMs: number | undefined;
  readonly #controller = new AbortController();
  #cancelTimer: () => void = noop;
  /** When the armed timer wakes. */
  #wakeAt = Number.POSITIVE_INFINITY;
  #error: TimeoutError | undefined;
  /** Set once the call settled (or the deadline fired): nothing arms the timer again. */
  #done = false;
  /** The attempts it times (one, unless hedges run side by side): an array, cheaper than a `Set` for so few. */
  #attempts: TimedAttempt[] | undefined;

  constructor(clock: Clock, now: number, ms: number, parent: AbortSignal | undefined, attemptMs: number | undefined) {
    this.#clock = clock;
    this.#ms = ms;
    this.#attemptMs = attemptMs;
    this.at = now + ms;
    this.#arm(now, attemptMs === undefined ? this.at : Math.min(this.at, now + attemptMs));
    // A caller's signal may live long and serve many calls: `AbortSignal.any`
    // links to it without leaving a listener behind on it.
    this.signal = parent ? AbortSignal.any([parent, this.#controller.signal]) : this.#controller.signal;
    this.owned = parent === undefined;
  }

  error(): TimeoutError {
    this.#error ??= new TimeoutError("total", this.#ms);
    return this.#error;
  }

  fired(): boolean {
    return this.#controller.signal.aborted;
  }

  timeAttempt(ms: number, controller: AbortController, onTimeout: () => void): () => void {
    this.#attempts ??= [];
    const attempts = this.#attempts;
    const attempt = { due: this.#clock.now() + ms, controller, onTimeout };
    attempts.push(attempt);
    // Only an attempt asking for less than `attemptMs` can be due before the wake.
    if (attempt.due < this.#wakeAt) {
      this.#cancelTimer();
      this.#arm(attempt.due - ms, attempt.due);
    }
    return () => {
      const index = attempts.indexOf(attempt);
      if (index >= 0) attempts.splice(index, 1);
    };
  }

  cancel(): void {
    this.#done = true;
    this.#cancelTimer();
  }

  #arm(now: number, wakeAt: number): void {
    // A listener of an attempt's abort may settle the call during a wake.
    if (this.#done) return;
    this.#wakeAt = wakeAt;
    this.#cancelTimer = this.#clock.setTimer(() => this.#wake(), wakeAt - now);
  }

  #wake(): void {
    // The timer fired, so its time has come, even if the clock reads a little
    // less (Node starts a timer from its loop's cached time) or was set back.
    const now = Math.max(this.#clock.now(), this.#wakeAt);
    if (now >= this.at) {
      this.#done = true;
      const reason = this.error();
      this.#controller.abort(reason);
      if (this.#attempts) for (const { controller } of this.#attempts) controller.abort(reason);
      return;
    }
    let next = this.at;
    const attempts = this.#attempts;
    if (attempts) {
      // Over a copy: a timed-out attempt leaves the array as it is handled.
      for (const attempt of attempts.slice()) {
        const index = attempts.indexOf(attempt);
        if (index < 0) continue; // ended by the timeout of one handled before it
        if (attempt.due <= now) {
          attempts.splice(index, 1);
          attempt.onTimeout();
        } else next = Math.min(next, attempt.due);
      }
    }
    // An attempt that starts from now on is due no sooner than this.
    if (this.#attemptMs !== undefined) next = Math.min(next, now + this.#attemptMs);
    this.#arm(now, next);
  }
}

function noop(): void {}
