/**
 * Recipe: ky on the resilience layer, through `createClient` from
 * `@storycore/resilient-fetch/ky`.
 *
 * - Retries: `createClient` turns ky's own retry off (passing `retry` is a
 *   `ConfigError`); the layer retries.
 * - Timeouts: ky's 10 s `timeout` is off unless you pass one (generation
 *   calls take longer). A `timeout` you pass aborts the whole call, retries
 *   included; prefer the layer's `timeout.attempt` and `timeout.total`.
 * - Errors: a final non-2xx response is ky's `HTTPError`
 *   (`error.response.status`); what the layer throws (`CircuitOpenError`, …)
 *   reaches you as is, not wrapped.
 */
import type { Resilience } from "@storycore/resilient-fetch";
import { createClient } from "@storycore/resilient-fetch/ky";
import type { KyInstance } from "ky";

export function createKy(resilience: Resilience, prefix: string): KyInstance {
  // ky 2 calls it `prefix` (ky 1's `prefixUrl` is rejected).
  return createClient({ prefix, resilience });
}
