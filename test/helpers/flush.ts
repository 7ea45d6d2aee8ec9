/**
 * Lets a layer's pending work run without moving any clock: the promise
 * chains behind a settled call (a store's report, a lease given back), one
 * macrotask for work queued behind a timer of 0, then the chains that started.
 * Twenty microtask turns outlast the deepest chain the tests wait on.
 */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
