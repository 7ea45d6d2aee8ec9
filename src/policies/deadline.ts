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
  readonly error: () => TimeoutError;
  readonly fired: () => boolean;
  /** Aborts `controller` too when the deadline fires (cheaper than `AbortSignal.any`). */
  readonly adopt: (controller: AbortController) => () => void;
  /** Clears the timer; call it when the call settles. */
  readonly cancel: () => void;
}

/** Starts a deadline `ms` from now, linked to the caller's `parent` signal. */
export function startDeadline(clock: Clock, ms: number, parent: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  let error: TimeoutError | undefined;
  const children = new Set<AbortController>();
  const makeError = (): TimeoutError => {
    error ??= new TimeoutError("total", ms);
    return error;
  };
  const cancel = clock.setTimer(() => {
    const reason = makeError();
    controller.abort(reason);
    for (const child of children) child.abort(reason);
  }, ms);
  return {
    at: clock.now() + ms,
    // A caller's signal may live long and serve many calls: `AbortSignal.any`
    // links to it without leaving a listener behind on it.
    signal: parent ? AbortSignal.any([parent, controller.signal]) : controller.signal,
    owned: parent === undefined,
    error: makeError,
    fired: () => controller.signal.aborted,
    adopt: (child) => {
      children.add(child);
      return () => children.delete(child);
    },
    cancel,
  };
}
