import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";

const finite = Number.isFinite as (value: unknown) => value is number;
// An open state may say "until Infinity": the layer holds such a host a day at most.
const time = (value: unknown): boolean => typeof value === "number" && !Number.isNaN(value);
const finiteOrNone = (value: unknown): boolean => value == null || finite(value);
const textOrNone = (value: unknown): boolean => value == null || typeof value === "string";

/**
 * Whether a snapshot a store of yours handed back is one the breaker can
 * merge: version 1, a known state, a finite `gen` and `changedAt`, an open
 * state's `openUntil`, times that are numbers and words that are text. The
 * library's KV and Durable Object stores check theirs with zod; a store of
 * your own may keep anything (a reason code, a `gen` written as text, an
 * older version), and merging it would fail the call with an engine error
 * or hold a host on a time that is no number. Checked field by field, not
 * with zod, which the root entry does not carry.
 */
export function isReadableSnapshot(value: unknown): value is BreakerSnapshot {
  const s = value as Partial<BreakerSnapshot>;
  return (
    s.v === 1 &&
    (s.state === "closed" || s.state === "half_open" || (s.state === "open" && time(s.openUntil))) &&
    finite(s.gen) &&
    finite(s.changedAt) &&
    (s.openUntil == null || time(s.openUntil)) &&
    finiteOrNone(s.lastFailureTime) &&
    textOrNone(s.reason) &&
    (s.trip == null || (typeof s.trip === "object" && textOrNone(s.trip.lastError)))
  );
}
