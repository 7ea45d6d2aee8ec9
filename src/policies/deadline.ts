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
  /** Aborts `controller` too when the deadline fires (cheaper than `AbortSignal.any`). */
  adopt(controller: AbortController): () => void;
  /** Clears the timer; call it when the call settles. */
  cancel(): void;
}

/** Starts a deadline `ms` from now, linked to the caller's `parent` signal. */
export function startDeadline(clock: Clock, ms: number, parent: AbortSignal | undefined): Deadline {
  return new CallDeadline(clock, ms, parent);
}

/**
 * A class rather than an object of closures: one deadline starts per call,
 * and its methods then cost nothing per call; the set of adopted
 * controllers is only made when an attempt timeout adopts one.
 */
class CallDeadline implements Deadline {
  readonly at: number;
  readonly signal: AbortSignal;
  readonly owned: boolean;
  readonly #ms: number;
  readonly #controller = new AbortController();
  readonly #cancelTimer: () => void;
  #error: TimeoutError | undefined;
  #children: Set<AbortController> | undefined;

  constructor(clock: Clock, ms: number, parent: AbortSignal | undefined) {
    this.#ms = ms;
    this.#cancelTimer = clock.setTimer(() => this.#fire(), ms);
    this.at = clock.now() + ms;
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

  adopt(child: AbortController): () => void {
    this.#children ??= new Set();
    const children = this.#children;
    children.add(child);
    return () => children.delete(child);
  }

  cancel(): void {
    this.#cancelTimer();
  }

  #fire(): void {
    const reason = this.error();
    this.#controller.abort(reason);
    if (this.#children) for (const child of this.#children) child.abort(reason);
  }
}
