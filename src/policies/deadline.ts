import type { Clock } from "../core/clock.ts";
import { TimeoutError } from "../core/errors.ts";

/** A whole-call deadline (`timeout.total`): waits and attempts included. */
export interface Deadline {
  /** Epoch ms at which it fires. */
  readonly at: number;
  /** Aborted when the caller aborts or the deadline passes. */
  readonly signal: AbortSignal;
  /** The error it aborts with; `attempts` is filled in by the caller. */
  readonly error: TimeoutError;
  readonly fired: () => boolean;
  /** Clears the timer; call it when the call settles. */
  readonly cancel: () => void;
}

/** Starts a deadline `ms` from now, linked to the caller's `parent` signal. */
export function startDeadline(clock: Clock, ms: number, parent: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  const error = new TimeoutError("total", ms);
  const cancel = clock.setTimer(() => controller.abort(error), ms);
  return {
    at: clock.now() + ms,
    signal: parent ? AbortSignal.any([parent, controller.signal]) : controller.signal,
    error,
    fired: () => controller.signal.aborted,
    cancel,
  };
}
