import type { BreakerSnapshot, TripRecord } from "../core/breaker-snapshot.ts";

const finite = Number.isFinite as (value: unknown) => value is number;
// An open state may say "until Infinity": the layer holds such a host a day at most.
const time = (value: unknown): boolean => typeof value === "number" && !Number.isNaN(value);
const text = (value: unknown): boolean => value === null || typeof value === "string";

/**
 * What a store of yours handed back, as the breaker can merge it, or
 * `undefined` when it cannot: version 1 (a snapshot without `v` is read as
 * one), a known state, a finite `gen` and `changedAt`, times that are
 * numbers (an open state's `openUntil` given), a trip whose counts are
 * numbers, words that are text. The library's KV and Durable Object stores
 * check theirs with zod; a store of your own may keep anything (a Redis
 * hash gives every field as text, an older version its own shape), and
 * merging it would fail the call with an engine error, hold a host on a
 * time that is no number, or show `health()` a field it never cuts. Each
 * field the merge reads is read once, into a copy: a value that changes
 * between the check and the merge (a getter, a Proxy) cannot slip through.
 * Checked field by field, not with zod, which the root entry does not carry.
 */
export function readableSnapshot(value: unknown): BreakerSnapshot | undefined {
  const {
    v = 1,
    state,
    gen,
    changedAt,
    openUntil = null,
    lastFailureTime = null,
    reason = null,
    trip = null,
  } = value as Partial<BreakerSnapshot>;
  const { consecutive, failures, calls, rate, lastError = null } = (trip ?? {}) as Partial<TripRecord>;
  const copy = trip === null ? null : { consecutive, failures, calls, rate, lastError };
  return v === 1 &&
    (state === "closed" || state === "half_open" || (state === "open" && openUntil !== null)) &&
    finite(gen) &&
    finite(changedAt) &&
    (openUntil === null || time(openUntil)) &&
    (lastFailureTime === null || finite(lastFailureTime)) &&
    text(reason) &&
    (copy === null || [consecutive, failures, calls, rate].every(finite)) &&
    text(lastError)
    ? ({ v, state, gen, changedAt, openUntil, lastFailureTime, reason, trip: copy } as BreakerSnapshot)
    : undefined;
}
