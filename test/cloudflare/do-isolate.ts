import { durableObjectStore } from "../../src/cloudflare/index.ts";
import { CircuitOpenError, createResilience } from "../../src/index.ts";
import { seededRandom, type TestClock } from "../../src/testing/index.ts";
import { type FakeNamespace, fakeCtx } from "./fake-durable-object.ts";

export type Answer = () => Response | Promise<Response>;

/**
 * One Worker isolate over fake Durable Objects: its own `durableObjectStore`
 * and ctx, one layer (no retries, `breaker`) on the shared namespace, and an
 * upstream the test scripts (`answer`). `call()` runs one call to `url` to
 * its end: the status, or the error's name.
 */
export function doIsolate(
  clock: TestClock,
  namespace: FakeNamespace,
  breaker: Record<string, number>,
  url: string,
  storeOptions: Parameters<typeof durableObjectStore>[1] = {},
) {
  const ctx = fakeCtx();
  const store = durableObjectStore(namespace, { ctx, clock, ...storeOptions });
  let answer: Answer = () => new Response("ok");
  let sent = 0;
  const resilience = createResilience({
    clock,
    random: seededRandom(1),
    store,
    retry: false,
    breaker: { failureRate: undefined, ...breaker } as never,
    fetch: async () => {
      sent++;
      return answer();
    },
  });
  /** Runs one call to its end; the status, or the error's name. */
  const call = async (): Promise<number | string> => {
    try {
      const res = await clock.run(resilience.fetch(url));
      await res.body?.cancel();
      return res.status;
    } catch (error) {
      return error instanceof CircuitOpenError ? "CircuitOpenError" : String(error);
    }
  };
  return {
    ctx,
    store,
    resilience,
    call,
    /** Starts a call without waiting for it. */
    start: () => resilience.fetch(url),
    settle: () => clock.run(ctx.settle()),
    set answer(next: Answer) {
      answer = next;
    },
    get sent() {
      return sent;
    },
  };
}
