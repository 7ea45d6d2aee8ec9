/** `n` turns of the event loop (`setImmediate`): enough for Node to report a rejection left unhandled. */
export async function turns(n = 2): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs `body`, then waits a few turns, collecting every rejection Node
 * reports as unhandled meanwhile: a test asserts the list is empty.
 */
export async function watchUnhandled<T>(body: () => Promise<T>): Promise<{ value: T; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const on = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", on);
  try {
    const value = await body();
    await turns(3);
    return { value, unhandled };
  } finally {
    process.off("unhandledRejection", on);
  }
}
