import { afterAll, afterEach, beforeAll, expect } from "vitest";

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

/**
 * For the whole file: records every rejection Node reports as unhandled and,
 * after each test, waits a few turns and fails the test that left one. Call
 * it before the file's own `afterEach`: vitest runs after-hooks in reverse
 * order, so this check comes last, once the file has ended what it held
 * (a server's late answer rejects nothing until it arrives).
 */
export function failOnUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const on = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(() => {
    process.on("unhandledRejection", on);
  });
  afterAll(() => {
    process.off("unhandledRejection", on);
  });
  afterEach(async () => {
    await turns(3);
    expect(unhandled.splice(0), "unhandled rejections").toEqual([]);
  });
}
