/**
 * `work`, or a rejection with `signal.reason` as soon as `signal` aborts,
 * whichever comes first: a caller's abort settles its call at once even
 * when the work ignores the signal. A value the work gives after the abort
 * goes to `drop` (a response's body to cancel), an error after it is
 * dropped. One promise and one listener, gone when either settles: this
 * runs on every attempt with a signal. Without a signal, `work` as a promise
 * (the same promise when it is one: no extra turn).
 */
export function untilAborted<T>(
  work: T | Promise<T>,
  signal: AbortSignal | undefined,
  drop?: (late: T) => void,
): Promise<T> {
  if (!signal) return Promise.resolve(work);
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(signal.reason);
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
    Promise.resolve(work).then(
      (value) => {
        signal.removeEventListener("abort", abort);
        if (signal.aborted) drop?.(value);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}
