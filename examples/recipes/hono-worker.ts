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
 *   `Retry-After` (the first breaker's `retryAt`, counted on the layer's
 *   clock), so the Worker's own
 *   clients back off too; timeouts a 504; the layer's other errors (network
 *   failures after every retry) a 502. A provider's final answer (even a
 *   503) is passed through as is: status, body and headers (`Retry-After`
 *   included), but for `content-encoding` and `content-length`, which
 *   describe the bytes fetch has already decoded, and the hop-by-hop
 *   headers (`connection`, `keep-alive`, `transfer-encoding`, `upgrade`…
 *   and those `connection` names).
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
      return passThrough(upstream);
    } catch (error) {
      // `Retry-After` counted on the layer's clock (`health().time`), as the breaker's `retryAt` is: a test's too.
      if (isResilienceError(error)) return failureResponse(error, resilience.health().time);
      throw error;
    }
  });

  return app;
}

/**
 * Headers a Worker does not pass on: the two that describe bytes fetch has
 * already decoded, and the hop-by-hop ones (RFC 9110, section 7.6.1), which
 * describe the connection to the provider, not the one to your client.
 */
const NOT_PASSED = [
  "content-encoding",
  "content-length",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * The provider's answer as it is (status, body and headers, its `Retry-After`
 * with them, so the Worker's clients back off too), less {@link NOT_PASSED}
 * and the headers its `connection` names, which are hop-by-hop as well.
 */
function passThrough(upstream: Response): Response {
  const headers = new Headers(upstream.headers);
  const named = (headers.get("connection") ?? "").split(",").map((name) => name.trim());
  // A name `Headers` refuses (a space in it) names no header that could be here.
  for (const name of [...NOT_PASSED, ...named]) if (/^[\w!#$%&'*+.^`|~-]+$/.test(name)) headers.delete(name);
  return new Response(upstream.body, { status: upstream.status, headers });
}

export default createApp();
