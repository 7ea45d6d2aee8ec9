import type { Clock } from "../core/clock.ts";
import { TimeoutError } from "../core/errors.ts";
import type { FetchLike } from "../core/options/resilience-options.ts";
import type { PreparedCall } from "./prepare-call.ts";

/**
 * Sends one attempt. Without an attempt timeout it is a plain transport call
 * (no controller, no timer: the default path cannot afford ~2 µs for them).
 * With one, a timer aborts the attempt if headers have not arrived; it is
 * cleared as soon as they do, so a long streamed body is never cut by it.
 */
export async function sendAttempt(
  transport: FetchLike,
  call: PreparedCall,
  signal: AbortSignal | undefined,
  attemptTimeout: number | undefined,
  clock: Clock,
): Promise<Response> {
  if (attemptTimeout === undefined) {
    // Reuse the caller's init object when it already carries the right signal.
    const init = signal === (call.init?.signal ?? undefined) ? call.init : { ...call.init, signal: signal ?? null };
    return transport(call.input, init);
  }
  const controller = new AbortController();
  const timeout = new TimeoutError("attempt", attemptTimeout);
  const cancel = clock.setTimer(() => controller.abort(timeout), attemptTimeout);
  const attemptSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
  try {
    return await transport(call.input, { ...call.init, signal: attemptSignal });
  } catch (error) {
    if (controller.signal.aborted && !signal?.aborted) throw timeout;
    throw error;
  } finally {
    cancel();
  }
}
