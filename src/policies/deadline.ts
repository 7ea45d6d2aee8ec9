import { type Clock, MAX_TIMER_MS } from "../core/clock.ts";
import { TimeoutError } from "../core/errors.ts";
import { linkedSignal } from "../core/linked-signal.ts";

/** A whole-call deadline (`timeout.total`): waits and attempts included. */
export interface Deadline {
  /** Aborted when the caller aborts or the deadline passes. */
  readonly signal: AbortSignal;
  /** True when `signal` is the deadline's own (no caller signal is mixed in). */
  readonly owned: boolean;
  /** The error it aborted with (built when it fires); `attempts` is filled in by the caller. */
  error(): TimeoutError;
  fired(): boolean;
  /** Ms left before it fires, on its own timeline (see `CallDeadline`). */
  remaining(): number;
  /**
   * Times one attempt on the deadline's own timer: `onTimeout` runs when the
   * attempt outlives the `attemptMs` the deadline was started with, and
   * `controller` is aborted when the deadline fires first (cheaper than
   * `AbortSignal.any`). Returns the function that ends the attempt.
   */
  timeAttempt(controller: AbortController, onTimeout: () => void): () => void;
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

/**
 * An attempt timed by a deadline: on the deadline's timer, `due` in ms since
 * the deadline started, or on a timer of its own (`due` undefined).
 */
interface TimedAttempt {
  due: number | undefined;
  controller: AbortController;
  onTimeout: () => void;
  /** Clears its own timer, if it has one. */
  cancel: () => void;
}

/**
 * One timer per call for the deadline and every attempt timeout in it: it
 * wakes at the earliest moment either could pass, does what is due, and
 * re-arms for the next such moment. An attempt cannot start before the
 * deadline does, so it is never due before `start + attemptMs`: the first
 * wake is armed for that, and a first attempt that starts in the call's own
 * turn (before anything is awaited) rides it without touching it: a call
 * that succeeds on its first attempt sets one timer, not two. Any other
 * attempt (a retry after a backoff, a first one after a body read, a
 * bulkhead wait or a slow store) times
 * itself on a timer of its own, and the call's timer is armed for the
 * deadline alone once the first attempt's moment passed, so a backoff wakes
 * nothing, and no timeout is moved by what the clock says (bringing the
 * call's timer forward would mean reading how much of its delay has gone
 * by, which a clock set back or ahead misreports).
 *
 * Time is counted on the deadline's own timeline, in ms since it started:
 * each wake adds the delay its timer was armed for, and the clock only fills
 * in the part since the last arming, never backwards and never past it. A
 * wall clock that is set back or jumps ahead during the call (an NTP step, a
 * resumed VM) moves neither the deadline nor an attempt's timeout.
 *
 * A class rather than an object of closures: one deadline starts per call,
 * and its methods then cost nothing per call.
 */
class CallDeadline implements Deadline {
  readonly signal: AbortSignal;
  readonly owned: boolean;
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #attemptMs: number | undefined;
  readonly #controller = new AbortController();
  #cancelTimer: () => void = noop;
  /** Ms of the deadline passed when the timer was armed, the clock's reading then, and the timer's delay. */
  #passed = 0;
  #armedAt = 0;
  #delay = 0;
  #error: TimeoutError | undefined;
  /** Set once the call settled (or the deadline fired): nothing arms the timer again. */
  #done = false;
  /**
   * The attempts it times: one at a time in the pipeline (a hedged attempt
   * carries its own signal and timer), any number here; an array, cheaper
   * than a `Set` for so few.
   */
  #attempts: TimedAttempt[] | undefined;
  /** True until the turn the call started in ends. */
  #fresh = true;

  constructor(clock: Clock, now: number, ms: number, parent: AbortSignal | undefined, attemptMs: number | undefined) {
    this.#clock = clock;
    this.#ms = ms;
    this.#attemptMs = attemptMs;
    // A caller's signal may live long and serve many calls: linked to it
    // without leaving a listener, or memory, per call behind on it. Linked
    // before the timer is set: a link that throws leaves no timer behind.
    this.signal = parent ? linkedSignal(parent, this.#controller.signal) : this.#controller.signal;
    this.owned = parent === undefined;
    this.#arm(0, attemptMs === undefined ? ms : Math.min(ms, attemptMs), now);
    if (attemptMs !== undefined) queueMicrotask(() => (this.#fresh = false));
  }

  error(): TimeoutError {
    this.#error ??= new TimeoutError("total", this.#ms);
    return this.#error;
  }

  fired(): boolean {
    return this.#controller.signal.aborted;
  }

  remaining(): number {
    return Math.max(0, this.#ms - this.#elapsed(this.#clock.now()));
  }

  timeAttempt(controller: AbortController, onTimeout: () => void): () => void {
    // The first attempt rides the call's timer when it starts in the same
    // turn as the call, before anything was awaited: no time can have passed,
    // whatever a clock would say (one set back, or frozen, reads as none).
    // Any other counts its own time.
    const shared = this.#attempts === undefined && this.#fresh;
    this.#attempts ??= [];
    const attempts = this.#attempts;
    const attemptMs = this.#attemptMs as number;
    const attempt: TimedAttempt = { due: undefined, controller, onTimeout, cancel: noop };
    if (shared) {
      // The timer was armed for exactly this at the start.
      attempt.due = attemptMs;
    } else {
      attempt.cancel = this.#clock.setTimer(() => {
        if (remove(attempts, attempt)) onTimeout();
      }, attemptMs);
    }
    attempts.push(attempt);
    return () => {
      attempt.cancel();
      remove(attempts, attempt);
    };
  }

  /** Ms of the deadline passed at clock reading `now`. */
  #elapsed(now: number): number {
    return this.#passed + Math.min(Math.max(now - this.#armedAt, 0), this.#delay);
  }

  cancel(): void {
    this.#done = true;
    this.#cancelTimer();
  }

  /** Arms the timer for `wakeAt` ms since the start, `passed` of them gone by (at clock reading `now`). */
  #arm(passed: number, wakeAt: number, now: number): void {
    // A listener of an attempt's abort may settle the call during a wake.
    if (this.#done) return;
    this.#passed = passed;
    this.#armedAt = now;
    // No timer runs longer (setTimeout's limit): a longer wait wakes there and goes on.
    this.#delay = Math.min(wakeAt - passed, MAX_TIMER_MS);
    this.#cancelTimer = this.#clock.setTimer(() => this.#wake(), this.#delay);
  }

  #wake(): void {
    // A timer that fires after its call settled (one the clock could not
    // clear: workerd lets only the request that set a timer clear it) must
    // not abort the response the call gave.
    if (this.#done) return;
    // The timer fired: exactly its delay has passed on the deadline's timeline.
    const passed = this.#passed + this.#delay;
    if (passed >= this.#ms) {
      this.#done = true;
      const reason = this.error();
      this.#controller.abort(reason);
      // The deadline ends every attempt: their own timers go too.
      if (this.#attempts)
        for (const { controller, cancel } of this.#attempts) {
          cancel();
          controller.abort(reason);
        }
      return;
    }
    let next = this.#ms;
    const attempts = this.#attempts;
    if (attempts) {
      // Over a copy: a timed-out attempt leaves the array as it is handled.
      for (const attempt of attempts.slice()) {
        const { due } = attempt;
        if (due === undefined) continue;
        if (due > passed) next = Math.min(next, due);
        // Unless the timeout of one handled before it ended it.
        else if (remove(attempts, attempt)) attempt.onTimeout();
      }
    }
    // No wake for attempts not started yet: they time themselves.
    this.#arm(passed, next, this.#clock.now());
  }
}

function noop(): void {}

/** Removes `item` from `list`; whether it was there. */
function remove<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
  return index >= 0;
}
