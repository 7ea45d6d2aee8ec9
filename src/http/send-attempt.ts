import type { Clock } from "../core/clock.ts";
import { TimeoutError } from "../core/errors.ts";
import type { FetchLike } from "../core/options/resilience-options.ts";
import type { Deadline } from "../policies/deadline.ts";
import type { PreparedCall } from "./prepare-call.ts";

/**
 * Sends one attempt. Without an attempt timeout it is a plain transport call
 * (no controller, no timer: the default path cannot afford ~2 µs for them).
 * With one, a timer aborts the attempt if headers have not arrived; it is
 * cleared as soon as they do, so a long streamed body is never cut by it.
 * The timeout error is only built if the timer fires (an Error captures a
 * stack, which costs more than the timer).
 */
export async function sendAttempt(
  transport: FetchLike,
  call: PreparedCall,
  signal: AbortSignal | undefined,
  attemptTimeout: number | undefined,
  clock: Clock,
  deadline?: Deadline,
): Promise<Response> {
  if (attemptTimeout === undefined) {
    // Reuse the caller's init object when it already carries the right signal.
    const init = signal === (call.init?.signal ?? undefined) ? call.init : { ...call.init, signal: signal ?? null };
    return transport(call.input, init);
  }
  const controller = new AbortController();
  let timeout: TimeoutError | undefined;
  const cancel = clock.setTimer(() => {
    timeout = new TimeoutError("attempt", attemptTimeout);
    controller.abort(timeout);
  }, attemptTimeout);
  // The deadline's own signal aborts this controller directly; only a
  // caller's signal needs `AbortSignal.any`.
  let release: (() => void) | undefined;
  let attemptSignal: AbortSignal;
  if (!signal) attemptSignal = controller.signal;
  else if (deadline?.owned && signal === deadline.signal) {
    release = deadline.adopt(controller);
    attemptSignal = controller.signal;
  } else attemptSignal = AbortSignal.any([signal, controller.signal]);
  try {
    return await transport(call.input, { ...call.init, signal: attemptSignal });
  } catch (error) {
    if (timeout && !signal?.aborted) throw timeout;
    throw error;
  } finally {
    cancel();
    release?.();
  }
}
