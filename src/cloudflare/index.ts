/**
 * `@storycore/resilient-fetch/cloudflare`: breaker stores shared across
 * isolates through Workers KV or a Durable Object, and a Worker proxy.
 * Bindings are typed structurally: no Cloudflare type package needed.
 */
export type {
  DurableObjectNamespaceLike,
  DurableObjectStateLike,
  DurableObjectStubLike,
  ExecutionContextLike,
  KvNamespaceLike,
} from "./bindings.ts";
export { BreakerStateObject } from "./breaker-state-object.ts";
export { type DurableObjectStoreOptions, durableObjectStore } from "./durable-object-store.ts";
export { failureResponse } from "./failure-response.ts";
export { type KvStoreOptions, kvStore } from "./kv-store.ts";
export { type ProxyRoute, type ResilientProxyOptions, resilientProxy } from "./resilient-proxy.ts";
