/**
 * `@storycore/resilient-fetch/fallback`: fallback chains across endpoints
 * and providers for `resilience.fetch` (routing by URL prefix, rebasing,
 * transforms, adaptive order, hedging, `validate`). Opt in by passing
 * `fallback([…])` as the `fallback` option of `createResilience`.
 */
export type { EndpointStatistics } from "../policies/endpoint-stats.ts";
export type { ChainStatistics, FallbackChain } from "../policies/fallback-chain.ts";
export type {
  EndpointRequest,
  FallbackChainOptions,
  FallbackEndpoint,
  FallbackEndpointCommon,
  JsonObject,
  RespondEndpoint,
  TransformedRequest,
  UrlEndpoint,
} from "./fallback-options.ts";
export { type ChainsStage, type FallbackChains, fallback } from "./fallback-stage.ts";
