import { checkOptions, type Rule } from "../core/options/check-options.ts";
import { plainCopy } from "../core/plain-copy.ts";
import type { FallbackChains, FallbackStage } from "../http/stages.ts";

export type { FallbackChains };

import { shownName } from "../core/shown-name.ts";
import type { FallbackChain } from "../policies/fallback-chain.ts";
import { ChainRouter, chosenChains, type RouteMatch } from "./chain-router.ts";
import type { FallbackChainOptions } from "./fallback-options.ts";
import { chainRules, fallbackRule } from "./fallback-rules.ts";
import { LayerChain } from "./layer-chain.ts";
import { type ChainCall, emitFallback, tryEndpoint, tryEndpoints } from "./try-endpoints.ts";

/** What `fallback(…)` returns: the stage, and the names of the chains it holds. */
export interface ChainsStage extends FallbackStage<FallbackChains> {
  readonly chains: readonly string[];
}

/**
 * Fallback chains across endpoints and providers for `resilience.fetch`. A
 * request whose URL starts with a chain's first endpoint URL goes down that
 * chain. Chains are checked at once: a bad value throws `ConfigError`
 * naming its path (`fallback.0.endpoints.1.url`).
 *
 * @example
 * const resilience = createResilience({
 *   fallback: fallback([
 *     {
 *       name: "images",
 *       endpoints: [
 *         { name: "primary", url: "https://api.example/v1" },
 *         { name: "backup", url: "https://backup.example/v1", expectedQuality: 0.8 },
 *       ],
 *     },
 *   ]),
 * });
 */
export function fallback(given: readonly FallbackChainOptions[]): ChainsStage {
  checkOptions({ fallback: fallbackRule }, { fallback: given }, "", ["fallback"]);
  // Checked, then copied: an edit to the caller's objects changes nothing here.
  const chains = plainCopy(given);
  return {
    kind: "fallback",
    chains: chains.map((c) => c.name),
    join(parts) {
      const router = new ChainRouter<ChainCall>(chains, parts.clock, tryEndpoint);
      const byName = new Map<string, FallbackChain<unknown, unknown>>();
      for (const route of router.routes) byName.set(route.options.name, route.chain as FallbackChain<unknown, unknown>);
      return {
        stage: {
          match: (url, request) => {
            const only = request && chosenChains.get(request);
            // Read once: the same `Request` may go on to another layer (a
            // transport may be one), which must choose by the URL itself.
            if (only !== undefined) chosenChains.delete(request as Request);
            return router.match(url, only);
          },
          send: (match, request, state) => tryEndpoints(parts, match as RouteMatch<ChainCall>, request, state),
          statistics: () => Object.fromEntries([...byName].map(([name, chain]) => [name, chain.statistics()])),
        },
        handle: {
          chain: <I, O>(name: string, options?: { order?: "fixed" | "adaptive" }) => {
            if (typeof name !== "string" || name.length === 0) {
              throw new TypeError(
                `resilience.fallback.chain(name): expected a non-empty string, got ${shownName(name)}`,
              );
            }
            if (options !== undefined) checkOptions({ order: chainRules.order as Rule }, options, "fallback.chain");
            let chain = byName.get(name);
            if (!chain) {
              chain = new LayerChain(name, { order: options?.order, clock: parts.clock }, (event) =>
                emitFallback(parts, event),
              );
              byName.set(name, chain);
            }
            return chain as FallbackChain<I, O>;
          },
        },
      };
    },
  };
}
