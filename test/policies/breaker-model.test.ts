import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { windowCounts } from "../../src/policies/breaker-state.ts";
import { type BreakerPermit, CircuitBreaker } from "../../src/policies/circuit-breaker.ts";

// Both opening rules within reach of short runs: 3 failures in a row, or half
// of at least 4 attempts inside the 5 s window (10 buckets of 500 ms).
const policy = {
  failureThreshold: 3,
  successThreshold: 2,
  timeout: 1_000,
  halfOpenMaxCalls: 2,
  timeWindow: 5_000,
  probeTimeout: 700,
  failureRate: 0.5,
  minimumCalls: 4,
};
const BUCKET = policy.timeWindow / 10;

/**
 * A deliberately naive, mutable reference of the breaker, written
 * independently of the pure transition function it checks: it keeps every
 * outcome with its time and counts those whose 500 ms bucket (counted from
 * the first outcome since the last transition) is one of the last ten.
 */
class ReferenceBreaker {
  state: "closed" | "open" | "half_open" = "closed";
  gen = 0;
  /** The current run of failures in a row. */
  run = 0;
  outcomes: Array<{ t: number; failed: boolean }> = [];
  openUntil = 0;
  leases: number[] = [];
  successes = 0;
  /** Attempts and failures in the window when it last opened from closed. */
  tripped: { calls: number; failures: number } | null = null;

  inWindow(now: number): { calls: number; failures: number } {
    const origin = this.outcomes[0]?.t ?? now;
    const current = Math.floor((now - origin) / BUCKET);
    const live = this.outcomes.filter((o) => current - Math.floor((o.t - origin) / BUCKET) < 10);
    return { calls: live.length, failures: live.filter((o) => o.failed).length };
  }

  request(now: number): { lease: number | null; gen: number } | undefined {
    if (this.state === "closed") return { lease: null, gen: -1 };
    if (this.state === "open") {
      if (now < this.openUntil) return undefined;
      this.state = "half_open";
      this.gen++;
      this.leases = [];
      this.successes = 0;
    }
    if (this.leases.some((l) => l <= now)) {
      this.trip(now);
      return undefined;
    }
    if (this.leases.length >= policy.halfOpenMaxCalls) return undefined;
    // Leases out are distinct: the next free millisecond when granted in the same one.
    let lease = now + policy.probeTimeout;
    while (this.leases.includes(lease)) lease++;
    this.leases.push(lease);
    return { lease, gen: this.gen };
  }

  isProbe(p: { lease: number | null; gen: number }): boolean {
    return this.state === "half_open" && p.lease !== null && p.gen === this.gen && this.leases.includes(p.lease);
  }

  drop(lease: number): void {
    this.leases.splice(this.leases.indexOf(lease), 1);
  }

  /** A half-open circuit with a lease run out re-opens first: what time alone did, before any outcome. */
  expire(now: number): void {
    if (this.state === "half_open" && this.leases.some((l) => l <= now)) this.trip(now);
  }

  success(p: { lease: number | null; gen: number }, now: number): void {
    this.expire(now);
    if (this.state === "closed") {
      // A probe answering after its lease ran out, the circuit closed since,
      // counts for nothing (docs/breakers.md); one within its lease counts.
      if (p.lease !== null && p.lease <= now) return;
      this.run = 0;
      this.outcomes.push({ t: now, failed: false });
      return;
    }
    if (!this.isProbe(p)) return;
    this.successes++;
    this.drop(p.lease as number);
    if (this.successes >= policy.successThreshold) {
      this.state = "closed";
      this.gen++;
      this.run = 0;
      this.outcomes = [];
      this.leases = [];
    }
  }

  failure(p: { lease: number | null; gen: number }, now: number): void {
    this.expire(now);
    if (this.state === "half_open") {
      if (this.isProbe(p)) this.trip(now);
      return;
    }
    if (this.state === "open") return;
    if (p.lease !== null && p.lease <= now) return; // a late probe's answer, as in `success`
    this.run++;
    this.outcomes.push({ t: now, failed: true });
    const w = this.inWindow(now);
    if (
      this.run >= policy.failureThreshold ||
      (w.calls >= policy.minimumCalls && w.failures / w.calls >= policy.failureRate)
    ) {
      this.tripped = w;
      this.trip(now);
    }
  }

  release(p: { lease: number | null; gen: number }): void {
    if (this.isProbe(p)) this.drop(p.lease as number);
  }

  trip(now: number): void {
    this.state = "open";
    this.gen++;
    this.openUntil = now + policy.timeout;
    this.run = 0;
    this.outcomes = [];
    this.leases = [];
    this.successes = 0;
  }
}

type Op =
  | { kind: "advance"; ms: number }
  | { kind: "request" }
  | { kind: "success" | "failure" | "release"; pick: number };

// Weighted so runs reach every state often: failures to open, time to
// half-open, bursts of requests to hit the probe limit.
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 1_500 }) }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("request" as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("failure" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("success" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
);

describe("breaker state machine against a reference model", () => {
  it("matches the model, never admits while open, never exceeds halfOpenMaxCalls probes", () => {
    const coverage = { refusedHalfOpen: 0, opened: 0, closedAfterProbes: 0, expiredLease: 0, byRate: 0, byRun: 0 };
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 200 }), (ops) => {
        // A synchronous clock: the state machine needs no timers, only time.
        let time = 10_000;
        const clock = { now: () => time, setTimer: () => () => {} };
        const real = new CircuitBreaker("model", policy, clock);
        const model = new ReferenceBreaker();
        const held: Array<{ real: BreakerPermit; model: { lease: number | null; gen: number } }> = [];
        for (const o of ops) {
          const now = clock.now();
          if (o.kind === "advance") {
            time += o.ms;
            continue;
          }
          if (o.kind === "request") {
            const wasOpen = model.state === "open" && now < model.openUntil;
            const halfOpenFull = model.state === "half_open" && model.leases.length >= policy.halfOpenMaxCalls;
            const r = real.tryAcquire();
            const m = model.request(now);
            if (halfOpenFull && !m) coverage.refusedHalfOpen++;
            if (real.toJSON().reason === "probe lease expired" && !r) coverage.expiredLease++;
            expect(r !== undefined).toBe(m !== undefined);
            if (wasOpen) expect(r).toBeUndefined();
            if (r && m) held.push({ real: r, model: m });
          } else if (held.length > 0) {
            const [permit] = held.splice(o.pick % held.length, 1);
            if (!permit) continue;
            if (o.kind === "success") {
              real.success(permit.real);
              model.success(permit.model, now);
            } else if (o.kind === "failure") {
              const wasClosed = model.state === "closed";
              real.failure(permit.real, "test");
              model.failure(permit.model, now);
              if (wasClosed && model.state === "open") {
                // What opened it is kept for health(): the window as it stood at the trip.
                expect(real.toJSON().trip).toMatchObject({ ...model.tripped, lastError: "test" });
                if (real.toJSON().reason?.startsWith("failure rate")) coverage.byRate++;
                else coverage.byRun++;
              }
            } else {
              real.release(permit.real);
              model.release(permit.model);
            }
          }
          const s = real.toJSON();
          if (s.state === "open" && s.changedAt === now && s.gen === model.gen) coverage.opened++;
          if (s.state === "closed" && s.gen > 0 && s.changedAt === now) coverage.closedAfterProbes++;
          expect(s.state).toBe(model.state);
          expect(s.gen).toBe(model.gen);
          expect(s.leases.length).toBeLessThanOrEqual(policy.halfOpenMaxCalls);
          expect(s.leases).toEqual(model.leases);
          if (s.state === "open") expect(s.openUntil).toBe(model.openUntil);
          if (s.state === "closed") {
            expect(s.failures.length).toBe(model.run);
            expect(windowCounts(s.window, now, policy.timeWindow)).toEqual(model.inWindow(now));
          }
        }
      }),
      { numRuns: 500 },
    );
    // The generator must actually reach the interesting corners.
    expect(coverage.refusedHalfOpen).toBeGreaterThan(20);
    expect(coverage.opened).toBeGreaterThan(100);
    expect(coverage.closedAfterProbes).toBeGreaterThan(20);
    expect(coverage.expiredLease).toBeGreaterThan(5);
    expect(coverage.byRate).toBeGreaterThan(20);
    expect(coverage.byRun).toBeGreaterThan(20);
  });
});

describe("the property test reaches every state", () => {
  it("opens, half-opens and closes again along a scripted run", () => {
    let time = 0;
    const breaker = new CircuitBreaker("walk", policy, { now: () => time, setTimer: () => () => {} });
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) breaker.failure(breaker.acquire(), "x");
    seen.add(breaker.toJSON().state);
    time += 1_000;
    const probe = breaker.acquire();
    seen.add(breaker.toJSON().state);
    breaker.success(probe);
    breaker.success(breaker.acquire());
    seen.add(breaker.toJSON().state);
    expect([...seen]).toEqual(["open", "half_open", "closed"]);
  });
});
