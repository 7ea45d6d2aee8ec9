/**
 * The Cloudflare proxy: `/v1/video/*` goes down a fallback chain (a premium
 * provider, then a standard one with its own key), `/v1/text/*` to one
 * upstream. Breaker state is shared between isolates through KV, or through
 * the Durable Object when `STORE = "do"`.
 *
 * Run locally: `npm run dev:worker`, then
 *   curl -s localhost:8787/v1/video/jobs -d '{"prompt":"waves"}'
 *   curl -s localhost:8787/__resilience/health -H 'authorization: Bearer dev-token'
 */
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
  resilientProxy,
} from "@storycore/resilient-fetch/cloudflare";

export { BreakerStateObject } from "@storycore/resilient-fetch/cloudflare";

interface Env {
  BREAKERS: KvNamespaceLike;
  BREAKER_STATE: DurableObjectNamespaceLike;
  PRIMARY_URL: string;
  STANDARD_URL: string;
  STANDARD_KEY: string;
  STORE: string;
  RESILIENCE_HEALTH_TOKEN: string;
}

// The proxy object is plain data and closures: nothing here starts a timer,
// a controller or a promise, which Workers forbid at module scope. The layer
// itself is created on the first request.
let proxy: ReturnType<typeof resilientProxy<Env>> | undefined;

export default {
  fetch(request: Request, env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
    proxy ??= resilientProxy<Env>({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            order: "adaptive",
            endpoints: [
              { name: "premium", url: `${env.PRIMARY_URL}/v1/video` },
              {
                name: "standard",
                url: `${env.STANDARD_URL}/v2/video`,
                expectedQuality: 0.8,
                headers: { authorization: `Bearer ${env.STANDARD_KEY}` },
              },
            ],
          },
        },
        { path: "/v1/text", upstream: `${env.PRIMARY_URL}/v1/text` },
      ],
      resilience: { retry: { maxAttempts: 3, initialDelay: 200 }, timeout: { total: 60_000 } },
      store: (e) => (e.STORE === "do" ? durableObjectStore(e.BREAKER_STATE) : kvStore(e.BREAKERS)),
    });
    return proxy.fetch(request, env, ctx);
  },
};
