import { type Clock, setLongTimer } from "./clock.ts";

/**
 * `work`, or what `late` gives (or throws) once `ms` have passed first: user
 * code that never settles (a `respond`, a schema) ends where a send would.
 * A value the work gives after that goes to `drop` (a response's body to
 * cancel), an error after it is dropped. The timer goes as soon as either
 * settles.
 */
export function untilTimeout<T, U>(
  work: Promise<T>,
  clock: Pick<Clock, "setTimer">,
  ms: number,
  late: () => U,
  drop?: (value: T) => void,
): Promise<T | U> {
  return new Promise<T | U>((resolve, reject) => {
    let over = false;
    const cancel = setLongTimer(
      clock,
      () => {
        over = true;
        try {
          resolve(late());
        } catch (error) {
          reject(error);
        }
      },
      ms,
    );
    work.then(
      (value) => {
        cancel();
        if (over) drop?.(value);
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(error);
      },
    );
  });
}
