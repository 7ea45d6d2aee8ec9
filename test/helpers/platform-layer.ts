import { createResilience, type ResilienceOptions } from "../../src/index.ts";

/** Retries without waiting: outside-in tests never sleep. */
export const FAST = { initialDelay: 0, maxDelay: 0, jitter: "none" } as const;

/**
 * A layer on the platform's own fetch (Node's, in these tests), counting the
 * calls that reached it: what the platform refuses, it refuses for real.
 * Retries without waiting; a host's breaker opens after 2 failures.
 */
export function onPlatform(extra: ResilienceOptions = {}) {
  const entered = { n: 0 };
  const layer = createResilience({
    retry: FAST,
    breaker: { failureThreshold: 2 },
    fetch: (input, init) => {
      entered.n++;
      return globalThis.fetch(input, init);
    },
    ...extra,
  });
  return { layer, entered };
}

/** What a call ended with: its status and body, or the error's name. */
export const outcome = (promise: Promise<Response>): Promise<string> =>
  promise.then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: unknown) => (e as Error).name,
  );
