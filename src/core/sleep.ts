import { type Clock, setLongTimer } from "./clock.ts";

/** Callbacks that end waits early (a breaker opening ends the retry backoffs behind it). */
export type Wakers = Set<() => void>;

/** Ends every wait in `wakers` (each waker removes itself as it runs). */
export function wakeAll(wakers: Wakers | undefined): void {
  if (wakers) for (const wake of wakers) wake();
}

/**
 * Waits `ms` on `clock`. An abort rejects at once with `signal.reason` and
 * clears the timer and the listener, so nothing outlives the call (unlike
 * sleeps that ignore the signal until they wake up). Calling the waker it
 * adds to `wakers` ends the wait at once: it resolves `true` then, `false`
 * when the time ran out.
 */
export function sleep(
  clock: Pick<Clock, "setTimer">,
  ms: number,
  signal?: AbortSignal,
  wakers?: Wakers,
): Promise<boolean> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0 && !signal) return Promise.resolve(false);
  return new Promise<boolean>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      wakers?.delete(wake);
      reject(signal?.reason);
    };
    const done = (woken: boolean): void => {
      signal?.removeEventListener("abort", onAbort);
      wakers?.delete(wake);
      resolve(woken);
    };
    const wake = (): void => {
      cancel();
      done(true);
    };
    // A wait past what a timer holds (a `Retry-After` of days, allowed by
    // `maxRetryAfter`) is slept in steps.
    const cancel = setLongTimer(clock, () => done(false), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    wakers?.add(wake);
  });
}
