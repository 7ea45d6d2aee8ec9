/**
 * A Cloudflare Worker that forwards `/v1/*` to a generation API through
 * `resilience.fetch`. The layer is created lazily inside the handler, never
 * at module scope (Workers forbid timers and controllers there). Shared
 * breaker stores and the full proxy come with `@storycore/resilient-fetch/cloudflare`.
 */
import { createResilience, type Resilience } from "@storycore/resilient-fetch";

interface Env {
  UPSTREAM_URL: string;
}

let resilience: Resilience | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    resilience ??= createResilience({ retry: { maxAttempts: 3, initialDelay: 200 }, timeout: { total: 60_000 } });
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/v1/")) return new Response("not found", { status: 404 });
    const upstream = new URL(url.pathname + url.search, env.UPSTREAM_URL);
    return resilience.fetch(new Request(upstream, request));
  },
};
