import type { BrowserBuild } from "../core/browser-build.ts";
import { ownClock, systemClock } from "../core/clock.ts";
import { ConfigError } from "../core/errors.ts";
import { resolveBreaker } from "../core/options/breaker-options.ts";
import { resolveBudget } from "../core/options/budget-options.ts";
import { resolveBulkhead } from "../core/options/bulkhead-options.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { resilienceRules } from "../core/options/option-rules.ts";
import { resolveRetry } from "../core/options/retry-options.ts";
import { resolveTimeout } from "../core/options/timeout-options.ts";
import { systemRandom } from "../core/random.ts";
import type { ResilienceOptions, ResolvedOptions } from "./resilience-options.ts";

/**
 * Validates `options` (throwing `ConfigError`, its path under `root`: the
 * proxy and the ky client name them `resilience.…`, as their callers wrote
 * them) and applies every default.
 */
export function resolveOptions(options: ResilienceOptions | undefined, root = ""): ResolvedOptions {
  // The rules only check; values are read from the caller's object as they are
  // (a class-based clock keeps its `this`).
  if (options !== undefined) checkOptions(resilienceRules, options, root);
  if (options?.bulkhead !== undefined && options.breaker === false) {
    throw new ConfigError(
      root ? `${root}.bulkhead` : "bulkhead",
      "needs per-host breakers (a bulkhead lives beside each host's breaker); remove `breaker: false` or the bulkhead",
    );
  }
  const o = options ?? {};
  // The browser build has no redirect follower (see browser-build.ts): refused
  // here, where the ky client and the proxy name it as their callers wrote it.
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ && o.redirects === "library") {
    throw new ConfigError(
      root ? `${root}.redirects` : "redirects",
      'expected "platform" (the browser build leaves redirects to the browser), received "library"',
    );
  }
  return {
    retry: resolveRetry(o.retry),
    budget: resolveBudget(o.budget),
    timeout: resolveTimeout(o.timeout),
    breaker: resolveBreaker(o.breaker),
    bulkhead: resolveBulkhead(o.bulkhead),
    store: o.store,
    fallback: o.fallback || undefined,
    degradation: o.degradation || undefined,
    maxReplayBytes: o.maxReplayBytes ?? 8 * 1024 * 1024,
    crossOriginHeaders: (o.crossOriginHeaders ?? []).map((h) => h.toLowerCase()),
    redirects: o.redirects,
    fetch: o.fetch,
    clock: o.clock ? ownClock(o.clock) : systemClock,
    random: o.random ?? systemRandom,
  };
}
