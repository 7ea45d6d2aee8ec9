import type { Clock } from "./clock.ts";

/**
 * Waits `ms` on `clock`. An abort rejects at once with `signal.reason` and
 * clears the timer and the listener, so nothing outlives the call (unlike
 * sleeps that ignore the signal until they wake up).
 */
export function sleep(clock: Pick<Clock, "setTimer">, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0 && !signal) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
