/**
 * `work`, or a rejection with `signal.reason` as soon as `signal` aborts,
 * whichever comes first: a caller's abort settles its call at once even
 * when the work ignores the signal (its late value or error is dropped).
 * The listener goes when either settles.
 */
export function untilAborted<T>(work: T | Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The work's own outcome is dropped: a late rejection must not go unhandled.
    Promise.resolve(work).catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    Promise.resolve(work).then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}
