/**
 * The Worker under test. Importing the library here, at module scope, is
 * itself a check: workerd throws "Disallowed operation called within global
 * scope" if the import created a timer, an AbortController or a promise.
 */

import type {
  DurableObjectNamespaceLike,
  DurableObjectStateLike,
  KvNamespaceLike,
} from "../../src/cloudflare/index.ts";
import { BreakerStateObject, durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

export { BreakerStateObject };

/**
 * The same object on a clock the test moves (through `runInDurableObject`),
 * so its alarm can come due without waiting for real.
 */
export class ClockedStateObject extends BreakerStateObject {
  readonly clock: TestClock;

  constructor(state: DurableObjectStateLike, env?: unknown) {
    const clock = new TestClock(Date.now());
    super(state, env, clock);
    this.clock = clock;
  }
}

export interface Env {
  BREAKERS: KvNamespaceLike;
  BREAKER_STATE: DurableObjectNamespaceLike;
  RESILIENCE_HEALTH_TOKEN: string;
  STORE?: string;
}

/** A fresh proxy (its own layer and store, as a new isolate would have). */
export const makeProxy = () =>
  resilientProxy<Env>({
    routes: [
      {
        path: "/v1/video",
        chain: {
          name: "video",
          endpoints: [
            { name: "primary", url: "https://primary.example/v1/video" },
            { name: "spare", url: "https://spare.example/v2/video", headers: { authorization: "Bearer spare-key" } },
          ],
        },
      },
      { path: "/v1/text", upstream: "https://primary.example/v1/text" },
    ],
    resilience: { retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 }, breaker: { failureThreshold: 2 } },
    store: (env) => (env.STORE === "do" ? durableObjectStore(env.BREAKER_STATE) : kvStore(env.BREAKERS)),
  });

export default makeProxy();
