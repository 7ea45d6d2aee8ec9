import * as z from "zod/mini";
import { type BreakerSnapshot, MAX_HOLD_MS } from "../core/breaker-snapshot.ts";

/**
 * The snapshot other isolates share, compact (KV metadata holds 1024 bytes):
 * state, generation, open-until, when and why. Read back through zod: a
 * foreign, corrupt or hostile value is rejected, never trusted.
 */
export interface SharedSnapshot {
  v: 1;
  s: "closed" | "open" | "half_open";
  g: number;
  u: number | null;
  w: number;
  r: string | null;
}

/**
 * The highest generation a value from elsewhere may carry: 2^32 transitions,
 * more than a breaker makes in years. A hostile value at 2^53 would push the
 * local count where adding one no longer changes it, and the breaker would
 * stop reporting and sharing its transitions.
 */
export const MAX_REMOTE_GEN: number = 2 ** 32;

/** A generation read from elsewhere. */
export const genSchema: z.ZodMiniNumber<number> = z.number().check(z.int(), z.gte(0), z.lte(MAX_REMOTE_GEN));

const sharedSchema = z.strictObject({
  v: z.literal(1),
  s: z.enum(["closed", "open", "half_open"]),
  g: genSchema,
  u: z.nullable(z.number().check(z.refine(Number.isFinite))),
  w: z.number().check(z.refine(Number.isFinite)),
  r: z.nullable(z.string().check(z.maxLength(200))),
});

/**
 * A snapshot read from elsewhere as of `at` (when it was first read): a
 * change dated ahead of `at` (a writer's clock ahead, or this one set back)
 * would outrank every later one, so it counts as made at `at`, its spell
 * keeping its length from then (a writer an hour ahead does not hold a 30 s
 * trip for an hour here); its hold is then cut as {@link clampHold} cuts it.
 */
export function readAsOf<S extends { openUntil: number | null; changedAt: number }>(snapshot: S, at: number): S {
  const shift = Math.max(0, snapshot.changedAt - at);
  const { openUntil } = snapshot;
  const dated =
    shift === 0 ? snapshot : { ...snapshot, changedAt: at, openUntil: openUntil === null ? null : openUntil - shift };
  return clampHold(dated, at);
}

/**
 * `openUntil` of a snapshot read from elsewhere, at most {@link MAX_HOLD_MS}
 * after `now`: a shared value saying "open until the year 30,000" (or 1e300)
 * would otherwise hold a host open for good and could not even be shown as a
 * date. (The layer cuts what it adopts from any store the same way; a store
 * cuts what it keeps and shows, too.)
 */
export function clampHold<S extends { openUntil: number | null }>(snapshot: S, now: number): S {
  const limit = now + MAX_HOLD_MS;
  return snapshot.openUntil !== null && snapshot.openUntil > limit ? { ...snapshot, openUntil: limit } : snapshot;
}

/**
 * `w` is when the snapshot's state began, not when it is written: a write
 * held back (by the publish interval, or a 429) must not date a close after
 * a trip that came later elsewhere.
 */
export function toShared(snapshot: BreakerSnapshot): SharedSnapshot {
  return {
    v: 1,
    s: snapshot.state,
    g: snapshot.gen,
    u: snapshot.openUntil,
    w: snapshot.changedAt,
    r: snapshot.reason?.slice(0, 200) ?? null,
  };
}

/** A validated shared snapshot as a breaker snapshot, or `undefined` when it is not one. */
export function fromShared(value: unknown): BreakerSnapshot | undefined {
  const parsed = sharedSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const s = parsed.data;
  return {
    v: 1,
    state: s.s,
    gen: s.g,
    failures: [],
    window: null,
    lastFailureTime: null,
    openUntil: s.u,
    leases: [],
    successes: 0,
    reason: s.r,
    changedAt: s.w,
  };
}

const storedSchema = z.looseObject({
  v: z.literal(1),
  state: z.enum(["closed", "open", "half_open"]),
  gen: genSchema,
  failures: z.array(z.number()).check(z.maxLength(1000)),
  lastFailureTime: z.nullable(z.number()),
  openUntil: z.nullable(z.number()),
  leases: z.array(z.number()).check(z.maxLength(1000)),
  successes: z.number().check(z.int(), z.gte(0)),
  reason: z.nullable(z.string()),
  changedAt: z.number(),
});

/** A whole snapshot read back from Durable Object storage, validated; `undefined` if it is not one. */
export function fromStored(value: unknown): BreakerSnapshot | undefined {
  const parsed = storedSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const s = parsed.data;
  return {
    v: 1,
    state: s.state,
    gen: s.gen,
    failures: s.failures,
    window: null,
    lastFailureTime: s.lastFailureTime,
    openUntil: s.openUntil,
    leases: s.leases,
    successes: s.successes,
    reason: s.reason,
    changedAt: s.changedAt,
  };
}
