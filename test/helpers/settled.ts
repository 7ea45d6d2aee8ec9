/** What `promise` rejects with; a test that expected a rejection fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** What `make()` throws; a test that expected a throw fails when it returns. */
export function thrown(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

/** Whether `build()` throws one of `kinds` (a TypeError by default) at once; false when it returns. */
export function refuses(
  build: () => unknown,
  kinds: ReadonlyArray<new (...args: never[]) => Error> = [TypeError],
): boolean {
  try {
    build();
    return false;
  } catch (error) {
    return kinds.some((kind) => error instanceof kind);
  }
}

/** How a call settled, and when on `clock`: its status (and response), or its error. */
export interface SettledAt {
  at: number;
  status: number | undefined;
  error: unknown;
  response: Response | undefined;
}

/** `call` settled, never rejecting: the time on `clock` it settled at, with its response or error. */
export function settledAt(call: Promise<Response>, clock: { now(): number }): Promise<SettledAt> {
  return call.then(
    (response) => ({ at: clock.now(), status: response.status, error: undefined, response }),
    (error: unknown) => ({ at: clock.now(), status: undefined, error, response: undefined }),
  );
}
