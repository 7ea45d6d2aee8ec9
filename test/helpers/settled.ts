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
