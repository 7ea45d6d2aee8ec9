import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";

/** A context that records every promise handed to it, and can await them all (and any handed over meanwhile). */
export function recordingCtx() {
  const real = createExecutionContext();
  const promises: Promise<unknown>[] = [];
  const ctx = {
    waitUntil(promise: Promise<unknown>) {
      promises.push(promise);
      real.waitUntil(promise);
    },
    passThroughOnException() {},
  };
  const settle = async () => {
    let seen = 0;
    while (seen < promises.length) {
      const batch = promises.slice(seen);
      seen = promises.length;
      await Promise.allSettled(batch);
    }
    await waitOnExecutionContext(real);
  };
  return { ctx, promises, settle };
}
