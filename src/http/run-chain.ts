import { FallbackExhaustedError } from "../core/errors.ts";
import type { FallbackEndpoint } from "../core/options/fallback-options.ts";
import type { Deadline } from "../policies/deadline.ts";
import { type ChainRequest, endpointCall, endpointRequest, toChainRequest } from "./chain-request.ts";
import type { ChainRouter, HttpRoute } from "./chain-router.ts";
import { isServiceFailureStatus } from "./classify.ts";
import { discardBody } from "./discard-body.ts";
import type { Served } from "./fetch-pipeline.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { PreparedCall } from "./prepare-call.ts";
import { runEndpoint, type Tally } from "./run-endpoint.ts";
import { validateResponse } from "./validate-response.ts";

/** Per-call context the chain's entries read (the chain itself is shared). */
interface CallContext {
  rest: string;
  deadline: Deadline | undefined;
  tally: Tally;
}

const contexts = new WeakMap<ChainRequest, CallContext>();

/**
 * Makes each configured endpoint an entry of its route's chain: a network
 * endpoint runs its own retry loop behind its own host breaker; a `respond`
 * endpoint answers locally. Called once, when the layer is created.
 */
export function installEndpoints(router: ChainRouter, parts: PipelineParts, sensitive: readonly string[]): void {
  for (const route of router.routes) {
    for (const endpoint of route.options.endpoints) {
      // `rest` starts at a path, query or fragment boundary, so an endpoint's
      // origin is its base URL's: decided here once, not per call.
      const crossOrigin = endpoint.url !== undefined && new URL(endpoint.url).origin !== route.callerOrigin;
      route.chain.add(
        async (request, { signal }) => {
          const context = contexts.get(request) ?? {
            rest: restOf(route, request.url),
            deadline: undefined,
            tally: { attempts: 0 },
          };
          const shaped = await endpointRequest(request, endpoint, context.rest, crossOrigin, sensitive);
          if (endpoint.respond) return endpoint.respond(shaped);
          const call = endpointCall(shaped, request, endpoint.transform !== undefined, signal);
          return runEndpoint(parts, call, parts.keyOf(call.url), context.deadline, context.tally);
        },
        { name: endpoint.name, expectedQuality: endpoint.expectedQuality ?? 1 },
      );
    }
  }
}

/** Runs `call` down `route`'s chain. */
export async function runChain(
  parts: PipelineParts,
  { route, rest }: { route: HttpRoute; rest: string },
  call: PreparedCall,
  deadline: Deadline | undefined,
  tally: Tally,
): Promise<Served> {
  const request = toChainRequest(call);
  contexts.set(request, { rest, deadline, tally });
  const idempotent = parts.retry.methods.has(call.method) || call.hasIdempotencyKey;
  let lastRejectedBy: string | undefined;
  const result = await route.chain.run(request, {
    signal: call.signal,
    skip: (name) => skipReason(parts, route.endpoints.get(name), rest),
    accept: async (response, name) => {
      const reason = await rejection(response, route.endpoints.get(name));
      if (reason !== undefined) lastRejectedBy = name;
      return reason;
    },
    hedgeDelay: idempotent ? route.options.hedge?.delay : undefined,
    discard: discardBody,
    onFallback: parts.events.has("fallback") ? (event) => parts.events.emit("fallback", event) : undefined,
  });
  if (result.ok) return { response: result.value, endpoint: result.name, fromFallback: !result.primary };
  // Nothing acceptable: answer with the last response any endpoint gave, as fetch would.
  if (result.lastRejected !== undefined) {
    return { response: result.lastRejected, endpoint: lastRejectedBy ?? route.options.name, fromFallback: true };
  }
  throw new FallbackExhaustedError(route.options.name, result.errors);
}

/** An endpoint whose host breaker is open is passed over without a request. */
function skipReason(parts: PipelineParts, endpoint: FallbackEndpoint | undefined, rest: string): string | undefined {
  if (!endpoint?.url || !parts.registry) return undefined;
  const entry = parts.registry.peek(parts.keyOf(endpoint.url + rest));
  return entry && entry.breaker.state === "open" ? "circuit open" : undefined;
}

/**
 * Why a response is not good enough to stop at: a status worth another
 * endpoint (5xx, 429, 408), or a 2xx body that fails `validate`. Other
 * statuses (a 404, a 400) are the caller's answer and end the chain.
 */
async function rejection(response: Response, endpoint: FallbackEndpoint | undefined): Promise<string | undefined> {
  if (isServiceFailureStatus(response.status) || response.status === 408) return `status ${response.status}`;
  if (endpoint?.validate && response.ok) return validateResponse(response, endpoint.validate);
  return undefined;
}

function restOf(route: HttpRoute, url: string): string {
  return url.startsWith(route.prefix) ? url.slice(route.prefix.length) : "";
}
