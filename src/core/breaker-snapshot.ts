/**
 * Breaker state as plain data, shared by the state machine (policies) and the
 * stores that carry it between isolates. Times are epoch ms.
 */

/** The seed's three states. */
export type BreakerStateName = "closed" | "open" | "half_open";

/** Calls and failures per bucket of a rolling window (only for `failureRate`). */
export interface RateWindow {
  /** Start time of the newest bucket. */
  start: number;
  calls: number[];
  failures: number[];
}

/**
 * A breaker's whole state as plain, versioned, serialisable data: what
 * `toJSON()` returns and what stores share. Times are epoch ms.
 */
export interface BreakerSnapshot {
  v: 1;
  state: BreakerStateName;
  /** +1 on every transition; orders snapshots from different places. */
  gen: number;
  /** Times of the latest failures while closed (at most `failureThreshold`). */
  failures: number[];
  window: RateWindow | null;
  lastFailureTime: number | null;
  /** While open: when probes may start. */
  openUntil: number | null;
  /** While half-open: expiry of each probe lease in flight. */
  leases: number[];
  /** While half-open: successful probes so far. */
  successes: number;
  /** Why the last transition happened. */
  reason: string | null;
  changedAt: number;
}

export function initialBreakerState(now: number): BreakerSnapshot {
  return {
    v: 1,
    state: "closed",
    gen: 0,
    failures: [],
    window: null,
    lastFailureTime: null,
    openUntil: null,
    leases: [],
    successes: 0,
    reason: null,
    changedAt: now,
  };
}
