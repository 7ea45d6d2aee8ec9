import * as z from "zod/mini";
import type { ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import { genSchema } from "../stores/shared-snapshot.ts";

/**
 * The small JSON protocol between isolates and a `BreakerStateObject`.
 * Both sides validate what they receive: neither trusts the other's bytes.
 */
/** The thresholds sent with every call, so the object applies the caller's policy (JSON has no `undefined`). */
export type WirePolicy = Omit<ResolvedBreakerPolicy, "failureRate"> & { failureRate: number | null };

/** A batch of outcomes from one isolate. */
export interface ReportBody {
  policy: WirePolicy;
  ok: number;
  fail: number;
  /**
   * A probe's result: its lease (expiry time), the generation it was granted
   * in, and its outcome, or `null` for a lease given back unused (the probe
   * was aborted: neither a success nor a failure).
   */
  probe?: { lease: number; gen: number; ok: boolean | null } | undefined;
  /** Hold open until (an isolate's breaker opened: a trip, or a Retry-After too long to wait). */
  holdUntil?: number | undefined;
  /**
   * The isolate's clock when it sent the report: the object holds for
   * `holdUntil - sentAt` from its own now, so an isolate whose clock differs
   * from the object's (set back, set ahead) neither loses its hold nor
   * stretches it by more than the report's time on the wire. Absent from an
   * isolate of an older version: `holdUntil` is then read on the object's clock.
   */
  sentAt?: number | undefined;
  /** Why, as the isolate's breaker says (an isolate before this field sent holds for `Retry-After` only). */
  reason?: string | undefined;
}

/** The object's answer. */
export interface Verdict {
  state: "closed" | "open" | "half_open";
  gen: number;
  openUntil: number | null;
  reason: string | null;
  /**
   * When the object's state last changed (epoch ms): it orders the verdict
   * against the isolate's own transitions. Absent from an object of an
   * older version: such a verdict then never closes a local breaker.
   */
  changedAt?: number | undefined;
  /** For a probe request: the lease granted, or null when refused. */
  lease?: number | null | undefined;
}

export const policySchema: z.ZodMiniType<WirePolicy> = z.strictObject({
  failureThreshold: z.number().check(z.int(), z.gte(1)),
  successThreshold: z.number().check(z.int(), z.gte(1)),
  timeout: z.number().check(z.gte(0)),
  halfOpenMaxCalls: z.number().check(z.int(), z.gte(1)),
  timeWindow: z.number().check(z.gt(0)),
  probeTimeout: z.number().check(z.gt(0)),
  failureRate: z.nullable(z.number().check(z.gt(0), z.lte(1))),
  minimumCalls: z.number().check(z.int(), z.gte(1)),
});

export const reportSchema: z.ZodMiniType<ReportBody> = z.strictObject({
  policy: policySchema,
  ok: z.number().check(z.int(), z.gte(0), z.lte(100_000)),
  fail: z.number().check(z.int(), z.gte(0), z.lte(100_000)),
  probe: z.optional(z.strictObject({ lease: z.number(), gen: genSchema, ok: z.nullable(z.boolean()) })),
  holdUntil: z.optional(z.number()),
  sentAt: z.optional(z.number().check(z.refine(Number.isFinite))),
  reason: z.optional(z.string().check(z.maxLength(200))),
});

export const probeSchema: z.ZodMiniType<{ policy: WirePolicy }> = z.strictObject({ policy: policySchema });

export const verdictSchema: z.ZodMiniType<Verdict> = z
  .strictObject({
    state: z.enum(["closed", "open", "half_open"]),
    gen: genSchema,
    openUntil: z.nullable(z.number()),
    reason: z.nullable(z.string().check(z.maxLength(300))),
    changedAt: z.optional(z.number().check(z.refine(Number.isFinite))),
    lease: z.optional(z.nullable(z.number())),
  })
  // The object's open state always has an end: an open one without is corrupt,
  // not a host to refuse for good.
  .check(z.refine((verdict) => verdict.state !== "open" || verdict.openUntil !== null));

export function toWirePolicy(p: ResolvedBreakerPolicy): WirePolicy {
  return {
    failureThreshold: p.failureThreshold,
    successThreshold: p.successThreshold,
    timeout: p.timeout,
    halfOpenMaxCalls: p.halfOpenMaxCalls,
    timeWindow: p.timeWindow,
    probeTimeout: p.probeTimeout,
    failureRate: p.failureRate ?? null,
    minimumCalls: p.minimumCalls,
  };
}

export function fromWirePolicy(p: WirePolicy): ResolvedBreakerPolicy {
  return { ...p, failureRate: p.failureRate ?? undefined };
}

/** The verdict an answer's text holds, or `undefined` when it is no JSON or no verdict. */
export function verdictIn(text: string): Verdict | undefined {
  try {
    const parsed = verdictSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
