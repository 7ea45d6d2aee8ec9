/**
 * Breaker state as plain data, shared by the state machine (policies) and the
 * stores that carry it between isolates. Times are epoch ms.
 */

/**
 * The longest a host is held open on one word from outside: a `Retry-After`
 * header, or an open state read from a store (any store: KV, a Durable
 * Object, `memoryStore`, one of your own). One day; a server, a corrupted
 * value or a hostile one asking for more gets this much, and every later
 * date is still a valid `Date`.
 */
export const MAX_HOLD_MS = 86_400_000;

/** The three states of the StoryCore-Engine error-handling guide's breaker. */
export type BreakerStateName = "closed" | "open" | "half_open";

/** Calls and failures per bucket of a rolling window (only when `failureRate` is on). */
export interface RateWindow {
  /** Start time of the newest bucket. */
  start: number;
  calls: number[];
  failures: number[];
}

/**
 * What the breaker had seen when it last opened, kept while it is open or
 * half-open so `health()` can say why (the counters themselves restart at
 * the trip).
 */
export interface TripRecord {
  /** Failed attempts in a row at the trip. */
  consecutive: number;
  /** Failed attempts inside the rate window at the trip (`consecutive` when the rate rule is off). */
  failures: number;
  /** Attempts inside the rate window at the trip (`consecutive` when the rate rule is off). */
  calls: number;
  /** `failures / calls` at the trip. */
  rate: number;
  /** The error or status of the failure that opened it (or of the failed probe that re-opened it). */
  lastError: string | null;
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
  /** Times of the current run of consecutive failures while closed (at most `failureThreshold`). */
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
  /**
   * While open or half-open: what opened it. Optional so snapshots from
   * stores that do not carry it (a compact shared one) stay valid.
   */
  trip?: TripRecord | null | undefined;
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
