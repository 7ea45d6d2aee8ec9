import { type Clock, setLongTimer } from "./clock.ts";

/**
 * `work`, or a rejection with `signal.reason` as soon as `signal` aborts,
 * or what `late` gives (or throws) once `ms` have passed first: user code
 * that never settles (a `respond`, a schema) ends where a send would. A
 * value the work gives after that goes to `drop` (a response's body to
 * cancel), an error after it is dropped. The timer and the listener go as
 * soon as any of the three comes: a signal that serves many calls keeps
 * nothing of this one.
 */
export function untilTimeout<T, U>(
  work: Promise<T>,
  clock: Pick<Clock, "setTimer">,
  ms: number,
  late: () => U,
  signal?: AbortSignal,
  drop?: (value: T) => void,
): Promise<T | U> {
  return new Promise<T | U>((resolve, reject) => {
    let over = false;
    const end = (): void => {
      over = true;
      cancel();
      signal?.removeEventListener("abort", abort);
    };
    const abort = (): void => {
      end();
      reject(signal?.reason);
    };
    const cancel = setLongTimer(
      clock,
      () => {
        end();
        try {
          resolve(late());
        } catch (error) {
          reject(error);
        }
      },
      ms,
    );
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
    work.then(
      (value) => {
        if (over) drop?.(value);
        else {
          end();
          resolve(value);
        }
      },
      (error: unknown) => {
        if (!over) {
          end();
          reject(error);
        }
      },
    );
  });
}
