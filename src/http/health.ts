import type { ResolvedOptions } from "../core/options/resilience-options.ts";
import type { RetryBudget, RetryBudgetSnapshot } from "../policies/retry-budget.ts";

/** Plain JSON describing a `Resilience` (the seed's `get_system_health()`). */
export interface HealthSnapshot {
  /** Epoch ms on the injected clock. */
  time: number;
  retry: { maxAttempts: number; initialDelay: number; maxDelay: number; jitter: string };
  /** `null` when the budget is turned off. */
  budget: RetryBudgetSnapshot | null;
}

export function createHealth(config: ResolvedOptions, budget: RetryBudget | undefined): () => HealthSnapshot {
  const { retry } = config;
  return () => ({
    time: config.clock.now(),
    retry: {
      maxAttempts: retry.maxAttempts,
      initialDelay: retry.initialDelay,
      maxDelay: retry.maxDelay,
      jitter: retry.jitter,
    },
    budget: budget ? budget.snapshot() : null,
  });
}
