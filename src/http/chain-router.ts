import type { Clock } from "../core/clock.ts";
import type { FallbackChainOptions, FallbackEndpoint } from "../core/options/fallback-options.ts";
import { FallbackChain } from "../policies/fallback-chain.ts";
import type { ChainRequest } from "./chain-request.ts";

/** A fallback chain configured for `resilience.fetch`. */
export interface HttpRoute {
  readonly options: FallbackChainOptions;
  readonly chain: FallbackChain<ChainRequest, Response>;
  /** The first endpoint's URL: requests under it use this chain. */
  readonly prefix: string;
  /** The caller's origin for requests on this route (the prefix's origin). */
  readonly callerOrigin: string;
  readonly endpoints: ReadonlyMap<string, FallbackEndpoint>;
}

/** Finds the chain a request URL selects: the longest matching prefix. */
export class ChainRouter {
  readonly routes: readonly HttpRoute[];

  constructor(chains: readonly FallbackChainOptions[], clock: Clock) {
    this.routes = chains
      .map((options) => {
        const prefix = options.endpoints[0]?.url as string;
        return {
          options,
          chain: new FallbackChain<ChainRequest, Response>(options.name, { order: options.order, clock }),
          prefix,
          callerOrigin: new URL(prefix).origin,
          endpoints: new Map(options.endpoints.map((e) => [e.name, e])),
        };
      })
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The route for `url` and the rest of the URL after its prefix. */
  match(url: string): { route: HttpRoute; rest: string } | undefined {
    for (const route of this.routes) {
      if (!url.startsWith(route.prefix)) continue;
      const rest = url.slice(route.prefix.length);
      // "https://a.example/v1" must not capture "https://a.example/v10" or "…/v1.evil".
      if (rest === "" || route.prefix.endsWith("/") || "/?#".includes(rest[0] as string)) return { route, rest };
    }
    return undefined;
  }

  byName(name: string): HttpRoute | undefined {
    return this.routes.find((r) => r.options.name === name);
  }
}
