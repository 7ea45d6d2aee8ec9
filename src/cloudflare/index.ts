/**
 * `@storycore/resilient-fetch/cloudflare`: KV and Durable Object breaker
 * stores and the Worker proxy. Empty until issue #6 lands; the entry exists
 * so the package's export map is stable.
 */
export {};
