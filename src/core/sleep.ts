import type { Clock } from "./clock.ts";

/** Callbacks that end waits early (a host's breaker opening ends its retries' backoffs). */
export type Wakers = Set<() => void>;

/**
 * Waits `ms` on `clock`. An abort rejects at once with `signal.reason` and
 * clears the timer and the listener, so nothing outlives the call (unlike
 * sleeps that ignore the signal until they wake up). Calling the waker it
 * adds to `wakers` ends the wait at once, as if it had run out.
 */
export function sleep(
  clock: Pick<Clock, "setTimer">,
  ms: number,
  signal?: AbortSignal,
  wakers?: Wakers,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0 && !signal) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      wakers?.delete(wake);
      reject(signal?.reason);
    };
    const done = (): void => {
      signal?.removeEventListener("abort", onAbort);
      wakers?.delete(wake);
      resolve();
    };
    const wake = (): void => {
      cancel();
      done();
    };
    const cancel = clock.setTimer(done, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    wakers?.add(wake);
  });
}
