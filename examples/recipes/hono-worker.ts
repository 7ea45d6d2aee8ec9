/**
 * Recipe: a Hono app in a Cloudflare Worker calling a generation API through
 * the resilience layer (`export default app` is the Worker).
 *
 * - One layer per isolate, made on the first request (bindings are only
 *   known then) and kept in module scope: its breakers and retry budget then
 *   span requests, which is what lets a breaker see an outage. To share
 *   breaker state across isolates, pass a `store` (`kvStore`,
 *   `durableObjectStore` from `@storycore/resilient-fetch/cloudflare`).
 * - Retries: only the layer's; the Worker's client sees one answer.
 * - Timeouts: pass the incoming request's `signal`, so a client that hangs up
 *   stops the retries; bound the whole call with the layer's
 *   `timeout.total`, below what your clients wait; `timeout.attempt` for one
 *   hung attempt.
 * - Errors: `failureResponse` answers as one upstream would, on a plain
 *   call and through the chain alike: every circuit open becomes a 503 with
 *   `Retry-After` (the first breaker's `retryAt`), so the Worker's own
 *   clients back off too; timeouts a 504; the layer's other errors (network
 *   failures after every retry) a 502. A provider's final answer (even a
 *   503) is passed through as is: status, body and headers (`Retry-After`
 *   included), but for `content-encoding` and `content-length`, which
 *   describe the bytes fetch has already decoded, and the hop-by-hop
 *   `transfer-encoding` and `connection`.
 */
import {
  createResilience,
  isResilienceError,
  type Resilience,
  type ResilienceOptions,
} from "@storycore/resilient-fetch";
import { failureResponse } from "@storycore/resilient-fetch/cloudflare";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { Hono } from "hono";

/** The Worker's bindings (wrangler.toml `[vars]` and secrets). */
export interface Env {
  IMAGES_URL: string;
  IMAGES_KEY: string;
  SPARE_URL: string;
  SPARE_KEY: string;
}

/** The layer for these bindings: the provider, then the spare with its own key. */
export function layerOptions(env: Env): ResilienceOptions {
  return {
    timeout: { attempt: 30_000, total: 90_000 },
    fallback: fallback([
      {
        name: "images",
        endpoints: [
          { name: "provider", url: `${env.IMAGES_URL}/v1`, headers: { authorization: `Bearer ${env.IMAGES_KEY}` } },
          { name: "spare", url: `${env.SPARE_URL}/v1`, headers: { authorization: `Bearer ${env.SPARE_KEY}` } },
        ],
      },
    ]),
  };
}

/** The app; `layerFor` makes the isolate's layer (tests pass one on a test clock). */
export function createApp(layerFor: (env: Env) => Resilience = (env) => createResilience(layerOptions(env))) {
  let resilience: Resilience | undefined;
  const app = new Hono<{ Bindings: Env }>();

  app.post("/generate", async (c) => {
    resilience ??= layerFor(c.env);
    try {
      const upstream = await resilience.fetch(`${c.env.IMAGES_URL}/v1/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: await c.req.text(),
        signal: c.req.raw.signal,
      });
      // The provider's answer as it is, headers too (its `Retry-After` lets
      // the Worker's clients back off), but for those that describe bytes
      // fetch has already decoded or framing that is the runtime's to set.
      const headers = new Headers(upstream.headers);
      for (const name of ["content-encoding", "content-length", "transfer-encoding", "connection"])
        headers.delete(name);
      return new Response(upstream.body, { status: upstream.status, headers });
    } catch (error) {
      if (isResilienceError(error)) return failureResponse(error);
      throw error;
    }
  });

  return app;
}

export default createApp();
