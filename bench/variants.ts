/**
 * Each library as a user would configure it from its docs, wrapped as a
 * fetch-like call `(url) => Promise<Response | unknown>`. The storm options
 * give every breaker the same 2 s open time so recovery can be compared.
 */
import {
  ConsecutiveBreaker,
  circuitBreaker,
  fallback as cockatielFallback,
  ExponentialBackoff,
  handleAll,
  retry,
  wrap,
} from "cockatiel";
import ky from "ky";
import { ofetch } from "ofetch";
import CircuitBreaker from "opossum";
import pRetry from "p-retry";
import { degradation } from "../src/degradation/index.ts";
import { fallback } from "../src/fallback/index.ts";
import { createResilience } from "../src/index.ts";

export type Call = (url: string) => Promise<unknown>;
export type Transport = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export interface VariantOptions {
  /** Breaker open time for the libraries that have one. */
  breakerTimeout: number;
  /** A healthy alternate base URL, for the variants that can fail over. */
  alternate?: string;
  primary?: string;
}

const failed = (r: Response): Response => {
  if (r.status >= 500 || r.status === 429) throw Object.assign(new Error(`status ${r.status}`), { response: r });
  return r;
};

export const variants: Record<string, (transport: Transport, o: VariantOptions) => Call> = {
  "bare fetch": (t) => (url) => t(url),
  "resilient-fetch (defaults)": (t, o) => {
    const r = createResilience({ fetch: t, breaker: { timeout: o.breakerTimeout } });
    return (url) => r.fetch(url);
  },
  "resilient-fetch (every feature)": (t, o) => {
    const r = createResilience({
      fetch: t,
      breaker: { timeout: o.breakerTimeout },
      timeout: { attempt: 30_000, total: 60_000 },
      bulkhead: { maxConcurrent: 1_000, maxQueue: 1_000 },
      degradation: degradation({
        // No `match`: the rule applies to every request, whatever host the run serves on.
        rules: [{ params: { steps: "parameters.steps", quality: { query: "q" } } }],
      }),
      fallback: fallback([
        {
          name: "chain",
          endpoints: [
            { name: "primary", url: o.primary ?? "http://127.0.0.1:1/gen" },
            { name: "alternate", url: o.alternate ?? "http://127.0.0.2:1/gen" },
          ],
        },
      ]),
    });
    return (url) => r.fetch(url);
  },
  ky: (t) => {
    const api = ky.create({ fetch: t, timeout: false, throwHttpErrors: false });
    return (url) => api.get(url);
  },
  "cockatiel retry+breaker": (t, o) => {
    const policy = wrap(
      retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
      circuitBreaker(handleAll, { halfOpenAfter: o.breakerTimeout, breaker: new ConsecutiveBreaker(5) }),
    );
    return (url) => policy.execute(() => t(url).then(failed)).catch((e: unknown) => e);
  },
  opossum: (t, o) => {
    const breaker = new CircuitBreaker((url: string) => t(url).then(failed), {
      resetTimeout: o.breakerTimeout,
      timeout: false,
    });
    return (url) => breaker.fire(url).catch((e: unknown) => e);
  },
  "p-retry": (t) => (url) => pRetry(() => t(url).then(failed), { retries: 2 }).catch((e: unknown) => e),
  ofetch: (t) => {
    const api = ofetch.create({ responseType: "stream", ignoreResponseError: true }, { fetch: t as typeof fetch });
    return (url) => api.raw(url);
  },
};

/** Variants for the outage runs, plus the failover variants. */
export const stormVariants: Record<string, (transport: Transport, o: VariantOptions) => Call> = {
  "resilient-fetch (defaults)": variants["resilient-fetch (defaults)"] as (t: Transport, o: VariantOptions) => Call,
  "resilient-fetch + alternate": (t, o) => {
    const r = createResilience({
      fetch: t,
      breaker: { timeout: o.breakerTimeout },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: o.primary as string },
            { name: "alternate", url: o.alternate as string },
          ],
        },
      ]),
    });
    return (url) => r.fetch(url);
  },
  // ky and ofetch retry only when HTTP errors throw (their defaults), so the storm uses those.
  ky: (t) => {
    const api = ky.create({ fetch: t, timeout: false });
    return (url) => api.get(url).catch((e: unknown) => e);
  },
  "cockatiel retry+breaker": variants["cockatiel retry+breaker"] as (t: Transport, o: VariantOptions) => Call,
  "cockatiel + fallback": (t, o) => {
    const policy = wrap(
      cockatielFallback(handleAll, () => t(`${o.alternate}/x`)),
      retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
      circuitBreaker(handleAll, { halfOpenAfter: o.breakerTimeout, breaker: new ConsecutiveBreaker(5) }),
    );
    return (url) => policy.execute(() => t(url).then(failed)).catch((e: unknown) => e);
  },
  "p-retry + opossum": (t, o) => {
    const breaker = new CircuitBreaker((url: string) => t(url).then(failed), {
      resetTimeout: o.breakerTimeout,
      timeout: false,
    });
    return (url) => pRetry(() => breaker.fire(url), { retries: 2 }).catch((e: unknown) => e);
  },
  "p-retry": variants["p-retry"] as (t: Transport, o: VariantOptions) => Call,
  ofetch: (t) => {
    const api = ofetch.create({ responseType: "stream", retry: 2 }, { fetch: t as typeof fetch });
    return (url) => api.raw(url).catch((e: unknown) => e);
  },
};

/** True when a call's result counts as a success (a 2xx Response). */
export function succeeded(result: unknown): boolean {
  return result instanceof Response
    ? result.ok
    : typeof result === "object" && result !== null && "ok" in result && (result as { ok: boolean }).ok === true;
}

/**
 * The partial-failure scenario, like for like: the failover variants first
 * with no breaker at all, then each with its breaker (this library's
 * defaults; cockatiel's README policy at `maxAttempts: 2`, open 2 s as in the storm).
 */
export const partialVariants: Record<string, (transport: Transport, o: VariantOptions) => Call> = {
  "resilient-fetch + alternate, no breaker": (t, o) => {
    const r = createResilience({
      fetch: t,
      breaker: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: o.primary as string },
            { name: "alternate", url: o.alternate as string },
          ],
        },
      ]),
    });
    return (url) => r.fetch(url);
  },
  "cockatiel retry + fallback, no breaker": (t, o) => {
    const policy = wrap(
      cockatielFallback(handleAll, () => t(`${o.alternate}/x`)),
      retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    );
    return (url) => policy.execute(() => t(url).then(failed)).catch((e: unknown) => e);
  },
  "resilient-fetch + alternate, default breaker": (t, o) => {
    const r = createResilience({
      fetch: t,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: o.primary as string },
            { name: "alternate", url: o.alternate as string },
          ],
        },
      ]),
    });
    return (url) => r.fetch(url);
  },
  "cockatiel retry + fallback + ConsecutiveBreaker(5)": stormVariants["cockatiel + fallback"] as (
    t: Transport,
    o: VariantOptions,
  ) => Call,
  "ky (no alternate, no breaker)": stormVariants.ky as (t: Transport, o: VariantOptions) => Call,
  "p-retry (retries: 2, no alternate, no breaker)": variants["p-retry"] as (t: Transport, o: VariantOptions) => Call,
};
