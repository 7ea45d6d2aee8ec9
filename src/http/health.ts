import type { BreakerStateName } from "../core/breaker-snapshot.ts";
import { errorDetail } from "../core/error-detail.ts";
import type { BreakerRegistry } from "../policies/breaker-registry.ts";
import type { CircuitBreaker } from "../policies/circuit-breaker.ts";
import type { ChainStatistics } from "../policies/fallback-chain.ts";
import type { RetryBudget, RetryBudgetSnapshot } from "../policies/retry-budget.ts";
import type { Analytics, ErrorRecord } from "./analytics.ts";
import type { PipelineParts } from "./pipeline-parts.ts";
import type { ResolvedOptions } from "./resilience-options.ts";
import type { LevelReport } from "./stages.ts";

/**
 * One breaker in `health()`. Closed, the counters are live; open or
 * half-open, they are the ones that opened it (they restart at the trip).
 */
export interface BreakerHealth {
  state: BreakerStateName;
  /** Failed attempts in the rate window (closed), or in it when the breaker opened. */
  failureCount: number;
  /** Failed attempts in a row (closed), or at the trip. */
  consecutiveFailures: number;
  /** Failed share of the attempts in the rate window (now, or at the trip); `null` when the rate rule is off or nothing is known. */
  failureRate: number | null;
  /** The error or status that opened it (or of the failed probe that re-opened it); `null` while closed. */
  lastError: string | null;
  /** Why the last transition happened. */
  reason: string | null;
  /**
   * When the last failed attempt counted (epoch ms on the layer's clock);
   * `null` before any, and again once a spell ends in a close, which starts
   * clean as the counts do.
   */
  lastFailureTime: number | null;
  /** While open: until when (epoch ms); probes may go after it. */
  openUntil: number | null;
  gen: number;
  /** Bulkhead occupancy, when a bulkhead is configured. */
  active?: number;
  queued?: number;
}

/** Plain JSON describing a `Resilience` (`get_system_health()` in the StoryCore-Engine error-handling guide). */
export interface HealthSnapshot {
  /** Epoch ms on the injected clock. */
  time: number;
  /** `unhealthy` when any breaker is open, `degraded` when the error rate is above 10%. */
  status: "healthy" | "degraded" | "unhealthy";
  /** Failed share of the calls (and `execute` runs) settled in the last minute. */
  errorRate: number;
  /** The current degradation level's name (`full` without the degradation stage). */
  degradationLevel: string;
  /**
   * Per-host breakers (and named ones, under `name`: one named like a host is
   * listed in that host's place, whose open breaker still makes `status`
   * `unhealthy`; name them apart from hosts).
   */
  breakers: Record<string, BreakerHealth>;
  /** `null` when the budget is turned off. */
  budget: RetryBudgetSnapshot | null;
  /** Statistics of every fallback chain, by name (`{}` without the fallback stage). */
  fallback: Record<string, ChainStatistics>;
  retry: { maxAttempts: number; initialDelay: number; maxDelay: number; jitter: string };
}

/** `health()` plus what a person debugging wants (the guide's `get_debug_info()`). */
export interface DebugInfo extends HealthSnapshot {
  totals: { calls: number; failures: number };
  recentErrors: ErrorRecord[];
  store: string | null;
  breakerCount: number;
  /** The degradation level and its window; `null` without the degradation stage. */
  degradation: (LevelReport & { window: { samples: number; errorRate: number; p95: number | undefined } }) | null;
  options: {
    breaker: Record<string, number> | null;
    timeout: { attempt: number | undefined; total: number | undefined };
    /** Who follows redirects in this runtime (see the `redirects` option). */
    redirects: "library" | "platform";
  };
}

export interface HealthSources {
  config: ResolvedOptions;
  /** The redirect mode in force (the option, or the runtime's default). */
  redirects: "library" | "platform";
  budget: RetryBudget | undefined;
  registry: BreakerRegistry | undefined;
  named: ReadonlyMap<string, CircuitBreaker>;
  analytics: Analytics;
  /** Where the joined stages are. */
  parts: PipelineParts;
}

export function createHealth({
  config,
  budget,
  registry,
  named,
  analytics,
  parts,
}: HealthSources): () => HealthSnapshot {
  const { retry } = config;
  return () => {
    // A Map, made an object at the end: a key is any host or name, `__proto__` too.
    const breakers = new Map<string, BreakerHealth>();
    if (registry) {
      for (const [key, entry] of registry.entries()) {
        try {
          registry.sync(key, entry);
        } catch (error) {
          // A store that throws fails a call (its contract says so), not the
          // report of every host: the host shows its local state, and a
          // `store` event says what the read met.
          if (parts.events.has("store")) {
            parts.events.emit("store", {
              store: config.store?.name ?? "store",
              key,
              operation: "read",
              outcome: "failed",
              detail: errorDetail(error),
            });
          }
        }
        const health = describe(entry.breaker);
        if (entry.bulkhead) {
          health.active = entry.bulkhead.active;
          health.queued = entry.bulkhead.queued;
        }
        breakers.set(key, health);
      }
    }
    // Read before the named breakers join the record: one named like a host
    // takes its place there, but an open host still makes the layer unhealthy.
    let anyOpen = [...breakers.values()].some((b) => b.state === "open");
    for (const [name, breaker] of named) {
      breakers.set(name, describe(breaker));
      if (breaker.state === "open") anyOpen = true;
    }
    const errorRate = analytics.errorRate();
    return {
      time: config.clock.now(),
      status: anyOpen ? "unhealthy" : errorRate > 0.1 ? "degraded" : "healthy",
      errorRate,
      degradationLevel: parts.levels ? parts.levels.levelName() : "full",
      breakers: Object.fromEntries(breakers),
      budget: budget ? budget.snapshot() : null,
      fallback: parts.chains ? parts.chains.statistics() : {},
      retry: {
        maxAttempts: retry.maxAttempts,
        initialDelay: retry.initialDelay,
        maxDelay: retry.maxDelay,
        jitter: retry.jitter,
      },
    };
  };
}

export function createDebugInfo(sources: HealthSources, health: () => HealthSnapshot): () => DebugInfo {
  return () => {
    const { calls, failures } = sources.analytics.totals();
    const b = sources.config.breaker;
    return {
      ...health(),
      totals: { calls, failures },
      recentErrors: sources.analytics.recentErrors(),
      store: sources.config.store?.name ?? null,
      breakerCount: sources.registry?.size ?? 0,
      degradation: sources.parts.levels ? sources.parts.levels.report() : null,
      options: {
        // The numbers in force (the functions `isFailure` and `key` are not JSON).
        breaker: b ? numbersOf(b) : null,
        timeout: { ...sources.config.timeout },
        redirects: sources.redirects,
      },
    };
  };
}

function numbersOf(options: object): Record<string, number> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => typeof value === "number"));
}

function describe(breaker: CircuitBreaker): BreakerHealth {
  const s = breaker.toJSON();
  const state = breaker.state;
  const common = {
    state,
    reason: s.reason,
    lastFailureTime: s.lastFailureTime,
    // An open spell whose timeout passed reads half-open: it has no end to show.
    openUntil: state === "half_open" ? null : s.openUntil,
    gen: s.gen,
  };
  if (s.state === "closed") {
    const { calls, failures } = breaker.windowCounts();
    return {
      ...common,
      failureCount: s.window ? failures : s.failures.length,
      consecutiveFailures: s.failures.length,
      failureRate: s.window && calls > 0 ? failures / calls : null,
      lastError: null,
    };
  }
  // Open or half-open: the counts at the trip. None when a compact shared
  // snapshot from another instance opened it: then only its reason is known.
  const trip = s.trip;
  return {
    ...common,
    failureCount: trip?.failures ?? 0,
    consecutiveFailures: trip?.consecutive ?? 0,
    failureRate: trip && trip.calls > 0 ? trip.rate : null,
    lastError: trip ? trip.lastError : s.reason,
  };
}
