import { describe, expect, it } from "vitest";
import { breakerDefaults } from "../../src/core/options/breaker-options.ts";
import { type BreakerSnapshot, initialBreakerState, transition } from "../../src/policies/breaker-state.ts";
import { CircuitBreaker } from "../../src/policies/circuit-breaker.ts";
import { TestClock } from "../../src/testing/index.ts";

const p = {
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 10_000,
  probeTimeout: 500,
  failureRate: undefined,
  minimumCalls: 5,
};
const at = (state: Partial<BreakerSnapshot>): BreakerSnapshot => ({ ...initialBreakerState(0), ...state });
const open = (openUntil: number, gen = 1) => at({ state: "open", openUntil, gen });

describe("breaker transitions (pure)", () => {
  it("admits while closed without changing state", () => {
    const s = initialBreakerState(0);
    const step = transition(s, { type: "request" }, 5, p);
    expect(step).toEqual({ state: s, admitted: true, lease: null });
    expect(step.state).toBe(s);
  });

  it("a request to a closed breaker after a clock set back re-dates its rate window to now, and admits", () => {
    const rate = { ...p, failureRate: 0.5 };
    const window = { start: 50_000, calls: Array(12).fill(0), failures: Array(12).fill(0) };
    window.calls[11] = 1;
    window.failures[11] = 1;
    const s = at({ window });
    const step = transition(s, { type: "request" }, 20_000, rate);
    expect(step).toMatchObject({ admitted: true, lease: null });
    expect(step.state.window).toEqual({ ...window, start: 20_000 });
    // Not set back: the same state, no copy.
    expect(transition(s, { type: "request" }, 50_001, rate).state).toBe(s);
  });

  it("hold opens until a time, and only ever extends it", () => {
    const held = transition(initialBreakerState(0), { type: "hold", until: 5_000, reason: "Retry-After" }, 10, p).state;
    expect(held).toMatchObject({ state: "open", openUntil: 5_000, gen: 1, reason: "Retry-After" });
    expect(transition(held, { type: "hold", until: 4_000, reason: "x" }, 20, p).state).toBe(held);
    expect(transition(held, { type: "hold", until: 5_000, reason: "x" }, 20, p).state).toBe(held);
    expect(transition(held, { type: "hold", until: 9_000, reason: "y" }, 20, p).state).toMatchObject({
      openUntil: 9_000,
      gen: 2,
    });
  });

  it("tick: open becomes half-open once its time is up; an expired lease re-opens; otherwise nothing", () => {
    const o = open(1_000);
    expect(transition(o, { type: "tick" }, 999, p).state).toBe(o);
    const half = transition(o, { type: "tick" }, 1_000, p).state;
    expect(half).toMatchObject({ state: "half_open", gen: 2, leases: [], openUntil: null });
    const leased = { ...half, leases: [1_400] };
    expect(transition(leased, { type: "tick" }, 1_399, p).state).toBe(leased);
    expect(transition(leased, { type: "tick" }, 1_400, p).state).toMatchObject({
      state: "open",
      openUntil: 2_400,
      reason: "probe lease expired",
      gen: 3,
    });
    const closed = initialBreakerState(0);
    expect(transition(closed, { type: "tick" }, 99_999, p).state).toBe(closed);
  });

  it("adopts a remote open snapshot toward open, moving its generation past both", () => {
    const adopted = transition(initialBreakerState(0), { type: "remote", snapshot: open(5_000, 4) }, 100, p).state;
    expect(adopted).toMatchObject({ state: "open", openUntil: 5_000, gen: 5 });
    expect(adopted.reason).toMatch(/^shared:/);
  });

  it("takes a remote open that is already over as the half-open it is there, unless this breaker changed since; ignores one that ends before its own", () => {
    const closed = initialBreakerState(0);
    // Over: half-open there, as time alone makes it (until the twentieth session it was ignored, and this
    // breaker's calls went as if nothing had happened, none of them a probe).
    expect(transition(closed, { type: "remote", snapshot: open(50, 9) }, 100, p).state).toMatchObject({
      state: "half_open",
      openUntil: null,
      gen: 10,
    });
    // One that ends this very millisecond is over too: an open ending now is not open.
    expect(transition(closed, { type: "remote", snapshot: open(100, 9) }, 100, p).state.state).toBe("half_open");
    // A breaker that closed after that open began (a probe of its own succeeded) keeps its close.
    const reclosed = at({ gen: 3, changedAt: 70 });
    const lapsed = at({ state: "open", openUntil: 90, gen: 9, changedAt: 60 });
    expect(transition(reclosed, { type: "remote", snapshot: lapsed }, 100, p).state).toBe(reclosed);
    // One that changed before it began: the open is news.
    const older = at({ gen: 3, changedAt: 50 });
    expect(transition(older, { type: "remote", snapshot: lapsed }, 100, p).state.state).toBe("half_open");
    const mine = open(8_000, 2);
    expect(transition(mine, { type: "remote", snapshot: open(5_000, 9) }, 100, p).state).toBe(mine);
    expect(transition(mine, { type: "remote", snapshot: open(9_000, 1) }, 100, p).state).toMatchObject({
      openUntil: 9_000,
    });
  });

  it("a half-open breaker takes a remote open that still runs, whatever its start or generation (the object or another isolate holds the host open longer)", () => {
    const half = at({ state: "half_open", gen: 6, leases: [], changedAt: 50 });
    // Started before this breaker went half-open (a Durable Object trips later than an isolate, so its open ends later).
    const before = at({ state: "open", openUntil: 5_000, gen: 9, changedAt: 40 });
    expect(transition(half, { type: "remote", snapshot: before }, 100, p).state).toMatchObject({
      state: "open",
      openUntil: 5_000,
      gen: 10,
    });
    const later = at({ state: "open", openUntil: 5_000, gen: 1, changedAt: 60 });
    expect(transition(half, { type: "remote", snapshot: later }, 100, p).state).toMatchObject({
      state: "open",
      gen: 7,
    });
    // An open that has run out is no news.
    const over = at({ state: "open", openUntil: 90, gen: 9, changedAt: 40 });
    expect(transition(half, { type: "remote", snapshot: over }, 100, p).state).toBe(half);
  });

  it("closes on a remote closed snapshot only when it closed after this breaker last changed, whatever its generation", () => {
    const mine = at({ state: "open", openUntil: 8_000, gen: 5, changedAt: 50 });
    const later = at({ state: "closed", gen: 2, reason: "recovered elsewhere", changedAt: 60 });
    expect(transition(mine, { type: "remote", snapshot: later }, 100, p).state).toMatchObject({
      state: "closed",
      gen: 6,
      reason: "shared: recovered elsewhere",
    });
    // Closed before this breaker opened: old news, even with a higher generation (counted elsewhere).
    const earlier = at({ state: "closed", gen: 9, changedAt: 40 });
    expect(transition(mine, { type: "remote", snapshot: earlier }, 100, p).state).toBe(mine);
    const same = at({ state: "closed", gen: 9, changedAt: 50 });
    expect(transition(mine, { type: "remote", snapshot: same }, 100, p).state).toBe(mine);
    const closed = initialBreakerState(0);
    expect(transition(closed, { type: "remote", snapshot: later }, 100, p).state).toBe(closed);
  });

  it("an open read late is dated as the remote trip: the close that followed it elsewhere still closes", () => {
    const closed = initialBreakerState(0);
    const trip = at({ state: "open", openUntil: 5_000, gen: 1, changedAt: 40, reason: "3 failures" });
    const adopted = transition(closed, { type: "remote", snapshot: trip }, 100, p).state;
    expect(adopted).toMatchObject({ state: "open", changedAt: 40, openUntil: 5_000 });
    const recovered = at({ state: "closed", gen: 3, changedAt: 60 });
    expect(transition(adopted, { type: "remote", snapshot: recovered }, 120, p).state.state).toBe("closed");
    // A trip dated in the future counts as now.
    const future = at({ state: "open", openUntil: 5_000, gen: 1, changedAt: 900 });
    expect(transition(closed, { type: "remote", snapshot: future }, 100, p).state.changedAt).toBe(100);
  });

  it("a closed breaker goes half-open on a remote half-open, dated just before the remote change", () => {
    const closed = { ...initialBreakerState(0), gen: 3 };
    const probed = at({ state: "half_open", gen: 1, reason: "timeout elapsed", changedAt: 70, leases: [999] });
    const next = transition(closed, { type: "remote", snapshot: probed }, 100, p).state;
    expect(next).toMatchObject({
      state: "half_open",
      gen: 4,
      leases: [],
      successes: 0,
      openUntil: null,
      changedAt: 69,
    });
    expect(next.reason).toBe("shared: timeout elapsed");
    // An open or half-open breaker is not moved by it.
    const mine = open(8_000, 5);
    expect(transition(mine, { type: "remote", snapshot: probed }, 100, p).state).toBe(mine);
    // Nor a breaker that closed in the same millisecond the spell is dated
    // (a store's late copy of its own spell, ended since): old news.
    const closedThen = { ...initialBreakerState(70), gen: 3 };
    expect(transition(closedThen, { type: "remote", snapshot: probed }, 100, p).state).toBe(closedThen);
  });

  it("gives each probe its own lease, even when several are granted in the same millisecond", () => {
    const policy = { ...p, halfOpenMaxCalls: 3 };
    let s = at({ state: "half_open", gen: 2, leases: [] });
    const leases: Array<number | null> = [];
    for (let i = 0; i < 3; i++) {
      const step = transition(s, { type: "request" }, 100, policy);
      leases.push(step.lease);
      s = step.state;
    }
    expect(leases).toEqual([100 + p.probeTimeout, 101 + p.probeTimeout, 102 + p.probeTimeout]);
    // Releasing the middle one leaves the others theirs.
    s = transition(s, { type: "release", lease: leases[1] as number, gen: 2 }, 100, policy).state;
    expect(s.leases).toEqual([leases[0], leases[2]]);
  });

  it("reset closes with a clean slate and a new generation", () => {
    expect(transition(open(9_000, 3), { type: "reset" }, 50, p).state).toEqual({
      ...initialBreakerState(50),
      gen: 4,
      reason: "reset",
    });
  });

  it("a failure while open only moves lastFailureTime; a release outside half-open changes nothing", () => {
    const o = open(9_000);
    expect(transition(o, { type: "failure", lease: null, gen: -1, reason: "x" }, 70, p).state).toEqual({
      ...o,
      lastFailureTime: 70,
    });
    expect(transition(o, { type: "release", lease: 5, gen: 1 }, 70, p).state).toBe(o);
  });

  it("keeps what opened it: the counts at the trip, then the error of a failed probe or a hold", () => {
    const rate = { ...p, failureThreshold: 10, failureRate: 0.5, minimumCalls: 4 };
    let s = initialBreakerState(0);
    const fail = (reason: string, now: number) =>
      transition(s, { type: "failure", lease: null, gen: -1, reason }, now, rate).state;
    s = transition(s, { type: "success", lease: null, gen: -1 }, 1, rate).state;
    s = fail("status 502", 2);
    s = transition(s, { type: "success", lease: null, gen: -1 }, 3, rate).state;
    expect(s).toMatchObject({ state: "closed", failures: [] });
    s = fail("status 503", 4);
    expect(s).toMatchObject({
      state: "open",
      openUntil: 1_004,
      reason: "failure rate 0.50 over 4 calls (last: status 503)",
    });
    expect(s.trip).toEqual({ consecutive: 1, failures: 2, calls: 4, rate: 0.5, lastError: "status 503" });
    const half = transition(s, { type: "request" }, 1_004, rate);
    const reopened = transition(
      half.state,
      { type: "failure", lease: half.lease, gen: half.state.gen, reason: "TypeError" },
      1_010,
      rate,
    ).state;
    expect(reopened).toMatchObject({ state: "open", openUntil: 2_010, reason: "probe failed: TypeError" });
    expect(reopened.trip).toEqual({ consecutive: 1, failures: 2, calls: 4, rate: 0.5, lastError: "TypeError" });
    const held = transition(
      initialBreakerState(0),
      { type: "hold", until: 9_000, reason: "Retry-After 120 s" },
      5,
      rate,
    ).state;
    expect(held.trip).toEqual({ consecutive: 0, failures: 0, calls: 0, rate: 0, lastError: "Retry-After 120 s" });
    expect(transition(reopened, { type: "reset" }, 3_000, rate).state.trip).toBeUndefined();
  });
});

describe("probes granted in one millisecond", () => {
  it("each lease out is distinct, and one freed and granted again in the same millisecond is no lease of before a clock set back", async () => {
    // workerd's clock stands still between I/O: a probe released (its caller aborted) or answered
    // and another granted, all in one millisecond. Leases one past the last granted went further
    // ahead with each, past what `leaseOver` allows a fresh lease, so the breaker read `open` and
    // gave up the probe out as granted before a clock set back.
    const clock = new TestClock(0);
    const policy = { failureThreshold: 1, successThreshold: 2, timeout: 1_000, halfOpenMaxCalls: 2, probeTimeout: 700 };
    const breaker = new CircuitBreaker("k", { ...breakerDefaults, ...policy } as never, clock);
    breaker.failure(breaker.acquire(), "down");
    await clock.advance(1_000);
    const first = breaker.acquire();
    const second = breaker.acquire();
    breaker.release(first);
    const third = breaker.acquire();
    breaker.success(second);
    const fourth = breaker.acquire();
    expect(new Set([third.lease, fourth.lease]).size).toBe(2);
    expect(breaker.state).toBe("half_open");
    expect(breaker.isOpen()).toBe(false);
    breaker.success(fourth);
    expect(breaker.state).toBe("closed");
    breaker.success(third); // a late success of the spell that closed counts as any other
    expect(breaker.state).toBe("closed");
  });
});

describe("a zero timeout", () => {
  it("admits a probe in the very millisecond the circuit opened (open until now is open no longer)", () => {
    const clock = new TestClock(1_000);
    const breaker = new CircuitBreaker("k", { ...breakerDefaults, timeout: 0, failureThreshold: 1 } as never, clock);
    breaker.failure(breaker.acquire(), "status 503");
    const probe = breaker.tryAcquire();
    expect([probe?.lease, breaker.toJSON().state]).toEqual([1_000 + breakerDefaults.probeTimeout, "half_open"]);
  });
});
