import type { Clock } from "../core/clock.ts";
import { configured, FallbackChain, type FallbackFn } from "../policies/fallback-chain.ts";
import type { FallbackChainOptions, FallbackEndpoint } from "./fallback-options.ts";

/** A fallback chain configured for `resilience.fetch`; `I` is what one call hands its entries. */
export interface HttpRoute<I> {
  readonly options: FallbackChainOptions;
  readonly chain: FallbackChain<I, Response>;
  /** The first endpoint's URL before its query: requests under it use this chain. */
  readonly prefix: string;
  readonly endpoints: ReadonlyMap<string, FallbackEndpoint>;
}

/** A URL's chain: its name (the call's breaker key), route and the URL after the prefix. */
export interface RouteMatch<I> {
  readonly name: string;
  readonly route: HttpRoute<I>;
  readonly rest: string;
}

/**
 * Finds the chain a request URL selects: the longest matching prefix. Every
 * entry of every chain is the same function, `tryEndpoint`: what differs
 * per endpoint is read from its name, and what differs per call comes in as
 * the chain's input, so nothing per call lives in the chain.
 */
export class ChainRouter<I> {
  readonly routes: readonly HttpRoute<I>[];

  constructor(chains: readonly FallbackChainOptions[], clock: Clock, tryEndpoint: FallbackFn<I, Response>) {
    this.routes = chains
      .map((options) => {
        const chain = new FallbackChain<I, Response>(options.name, { order: options.order, clock });
        for (const endpoint of options.endpoints) {
          chain.add(tryEndpoint, { name: endpoint.name, expectedQuality: endpoint.expectedQuality ?? 1 });
        }
        configured(chain);
        return {
          options,
          chain,
          prefix: chainPrefix(options),
          endpoints: new Map(options.endpoints.map((e) => [e.name, e])),
        };
      })
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The route for `url` (and its name) and the rest of the URL after its prefix. */
  match(url: string): RouteMatch<I> | undefined {
    for (const route of this.routes) {
      if (!url.startsWith(route.prefix)) continue;
      const rest = url.slice(route.prefix.length);
      // "https://a.example/v1" must not capture "https://a.example/v10" or "…/v1.evil".
      if (rest === "" || route.prefix.endsWith("/") || "/?#".includes(rest[0] as string))
        return { name: route.options.name, route, rest };
    }
    return undefined;
  }
}

/**
 * The URL prefix that selects `chain`: its first endpoint's URL before the
 * query (an endpoint's own `?key=` is put back onto each request by `rebase`).
 */
export function chainPrefix(chain: FallbackChainOptions): string {
  return String(chain.endpoints[0]?.url).split("?")[0] as string;
}
