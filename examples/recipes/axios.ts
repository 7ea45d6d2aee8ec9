/**
 * Recipe: axios with its fetch adapter on the resilience layer.
 *
 * - Retries: axios has none of its own (unless you add axios-retry: don't,
 *   or retries multiply). The layer retries.
 * - Timeouts: axios's `timeout` aborts the whole call, retries included (the
 *   layer sees the caller's abort and stops); the layer's `timeout.attempt`
 *   catches one hung attempt.
 * - Errors: a final non-2xx response is axios's own `AxiosError`
 *   (`error.response.status`); what the layer throws (`CircuitOpenError`,
 *   `RetryExhaustedError`, …) is `AxiosError.cause`.
 */
import type { Resilience } from "@storycore/resilient-fetch";
import axios, { type AxiosInstance } from "axios";

export function createAxios(resilience: Resilience, baseURL: string): AxiosInstance {
  return axios.create({
    baseURL,
    adapter: "fetch",
    // The fetch adapter calls this fetch instead of the global one.
    env: { fetch: resilience.fetch },
    timeout: 120_000,
  });
}
