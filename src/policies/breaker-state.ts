import {
  type BreakerSnapshot,
  initialBreakerState,
  MAX_HOLD_MS,
  type RateWindow,
  type TripRecord,
} from "../core/breaker-snapshot.ts";
import type { ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import { redactUrlsIn } from "../core/redact-url.ts";

export type { BreakerSnapshot, BreakerStateName, RateWindow, TripRecord } from "../core/breaker-snapshot.ts";
export { initialBreakerState } from "../core/breaker-snapshot.ts";

/** What can happen to a breaker. Probe outcomes carry the lease they hold. */
export type BreakerInput =
  | { type: "request" }
  | { type: "tick" }
  | { type: "success"; lease: number | null; gen: number }
  | { type: "failure"; lease: number | null; gen: number; reason: string; hold?: BreakerHold | undefined }
  | { type: "release"; lease: number | null; gen: number }
  | { type: "hold"; until: number; reason: string }
  | { type: "reset" }
  | { type: "remote"; snapshot: BreakerSnapshot };

/** Open until `until` at least, for `reason` (a `Retry-After` too long to wait). */
export interface BreakerHold {
  until: number;
  reason: string;
}

/** The next state and, for a request, whether it may pass (and its probe lease). */
export interface BreakerStep {
  state: BreakerSnapshot;
  admitted: boolean;
  /** The lease's expiry when the request is a half-open probe. */
  lease: number | null;
}

const WINDOW_BUCKETS = 10;

/**
 * The breaker as a pure function: same state, input and time, same result;
 * the state passed in is never mutated. An unchanged state is returned as
 * the same object, so a caller can tell "nothing happened" by identity.
 */
export function transition(
  s: BreakerSnapshot,
  input: BreakerInput,
  now: number,
  p: ResolvedBreakerPolicy,
): BreakerStep {
  switch (input.type) {
    case "request":
      return request(s, now, p);
    case "tick":
      return step(tick(s, now, p));
    // A probe's outcome is judged after what time alone did: one whose lease
    // ran out (or a clock set back left too far ahead) re-opened the circuit
    // first, and then counts for nothing.
    case "success":
      return step(success(s.state === "half_open" ? tick(s, now, p) : s, input.lease, input.gen, now, p));
    case "failure": {
      const failed = failure(
        s.state === "half_open" ? tick(s, now, p) : s,
        input.lease,
        input.gen,
        // The caller's own text, maybe (`failure`): a URL in it is cut, as in events.
        redactUrlsIn(String(input.reason)),
        now,
        p,
      );
      if (!input.hold) return step(failed);
      const held = hold(failed, input.hold, now);
      // One answer that trips the breaker and holds it is one opening (one
      // generation), until the later of the two times.
      return step(held !== failed && failed.gen !== s.gen ? { ...held, gen: failed.gen } : held);
    }
    case "release":
      return step(isProbeOf(s, input.lease, input.gen) ? { ...s, leases: without(s.leases, input.lease) } : s);
    case "hold":
      return step(hold(s, input, now));
    case "reset":
      return step({ ...initialBreakerState(now), gen: s.gen + 1, reason: "reset" });
    case "remote":
      return step(adopt(s, input.snapshot, now));
  }
}

/** Open until `until` at least: a later time, or the same state when it is open as long already. */
function hold(s: BreakerSnapshot, { until, reason }: BreakerHold, now: number): BreakerSnapshot {
  // A hold that is over already (or no time at all) holds nothing: it trips no healthy breaker.
  if (!(until > now)) return s;
  const current = setBack(s, now);
  if (current.state === "open" && (current.openUntil ?? 0) >= until) return current;
  // A hold's reason may be the caller's own text (`hold`, `failure`'s hold): a URL in it is cut, as in events.
  const cut = redactUrlsIn(String(reason));
  return open(current, until, cut, now, current.lastFailureTime, tripOf(current, cut));
}

/**
 * An open spell dated after `now` (the clock was set back since it began)
 * waits its own length again from now: compared as it will run, not as it
 * was dated (a longer hold would lose to a deadline the next look moves).
 */
function setBack(s: BreakerSnapshot, now: number): BreakerSnapshot {
  if (s.state !== "open" || now >= s.changedAt) return s;
  return { ...s, openUntil: now + (s.openUntil ?? now) - s.changedAt, changedAt: now };
}

function step(state: BreakerSnapshot): BreakerStep {
  return { state, admitted: false, lease: null };
}

/**
 * What time alone does: an open circuit whose timeout passed becomes
 * half-open; a probe whose caller vanished never reports, so an expired
 * lease counts as a failure and re-opens (half-open cannot get stuck).
 *
 * A clock set back behind the last change (an NTP step, a restored VM)
 * would hold every deadline for as long as the step: an open spell then
 * waits its own length again from now, and a probe granted before the step
 * is given up as an expired one is (see `leaseOver`); the rate window of a
 * closed circuit counts on from now.
 */
function tick(s: BreakerSnapshot, now: number, p: ResolvedBreakerPolicy): BreakerSnapshot {
  // Closed, only the rate window can be behind a clock set back: it counts
  // on from now, as the next outcome would move it (see `record`).
  if (s.state === "closed") return s.window && now < s.window.start ? { ...s, window: { ...s.window, start: now } } : s;
  if (s.state === "open" && now < s.changedAt) return setBack(s, now);
  if (s.state === "open" && now >= (s.openUntil ?? 0)) {
    return {
      ...s,
      state: "half_open",
      gen: s.gen + 1,
      leases: [],
      successes: 0,
      openUntil: null,
      reason: "timeout elapsed",
      changedAt: now,
    };
  }
  if (s.state === "half_open" && s.leases.some((expiry) => leaseOver(expiry, now, p, s))) {
    return open(s, now + p.timeout, "probe lease expired", now, now, tripOf(s, "probe lease expired"));
  }
  return s;
}

/**
 * Whether a probe's lease is over: it ran out, or it was granted before a
 * clock set back: it ends further ahead than a lease granted at the latest
 * instant one can have been (`probeTimeout`, plus one per probe for leases
 * granted in the same millisecond). Half-open, that instant is now, and
 * only a step back past the last change (`s.changedAt`) is looked for: a
 * shorter one keeps the lease, lengthening its wait by the step at most.
 * Closed, no probe of the spell that closed can have been granted after
 * the close.
 */
export function leaseOver(
  expiry: number,
  now: number,
  p: ResolvedBreakerPolicy,
  s: Pick<BreakerSnapshot, "state" | "changedAt">,
): boolean {
  const latest = s.state === "closed" ? Math.min(now, s.changedAt) : now < s.changedAt ? now : undefined;
  return expiry <= now || (latest !== undefined && expiry > latest + p.probeTimeout + p.halfOpenMaxCalls);
}

function request(s: BreakerSnapshot, now: number, p: ResolvedBreakerPolicy): BreakerStep {
  const current = tick(s, now, p);
  if (current.state === "closed") return { state: current, admitted: true, lease: null };
  if (current.state !== "half_open" || current.leases.length >= p.halfOpenMaxCalls) return step(current);
  // A lease is its expiry. Probes granted in the same millisecond (workerd's
  // clock stands still between I/O) each take the next one free, so each
  // lease out names one probe, and none ends more than `halfOpenMaxCalls` ms
  // past a fresh one, however many probes came and went in that millisecond
  // (a lease further ahead was granted before a clock set back: `leaseOver`).
  let lease = now + p.probeTimeout;
  while (current.leases.includes(lease)) lease++;
  return { state: { ...current, leases: [...current.leases, lease] }, admitted: true, lease };
}

function success(
  s: BreakerSnapshot,
  lease: number | null,
  gen: number,
  now: number,
  p: ResolvedBreakerPolicy,
): BreakerSnapshot {
  if (s.state === "closed") {
    // A late probe's success counts no more than its failure would (see `failure`).
    if (lease !== null && leaseOver(lease, now, p, s)) return s;
    // A success ends any run of failures; the rate window counts it.
    if (p.failureRate === undefined) return s.failures.length === 0 ? s : { ...s, failures: [] };
    return { ...s, failures: s.failures.length === 0 ? s.failures : [], window: record(s.window, now, p, false) };
  }
  if (!isProbeOf(s, lease, gen)) return s;
  const successes = s.successes + 1;
  if (successes >= p.successThreshold) {
    return {
      ...initialBreakerState(now),
      gen: s.gen + 1,
      reason: `${successes} successful probe${successes > 1 ? "s" : ""}`,
    };
  }
  return { ...s, leases: without(s.leases, lease), successes };
}

/**
 * A failed attempt. Closed, two rules can open the circuit, whichever comes
 * first: `failureThreshold` failures in a row (a host that is down), or a
 * `failureRate` over at least `minimumCalls` attempts in the window (a host
 * failing most of the time). Sporadic failures of a flaky host trip neither.
 */
function failure(
  s: BreakerSnapshot,
  lease: number | null,
  gen: number,
  reason: string,
  now: number,
  p: ResolvedBreakerPolicy,
): BreakerSnapshot {
  if (s.state === "half_open") {
    if (!isProbeOf(s, lease, gen)) return s;
    return open(s, now + p.timeout, `probe failed: ${reason}`, now, now, tripOf(s, reason));
  }
  // The same object when nothing changed (two failures in one millisecond, as workerd's clock gives).
  if (s.state === "open") return s.lastFailureTime === now ? s : { ...s, lastFailureTime: now };
  // A probe's answer after its lease is over (it ran out, or a clock set back
  // left it too far ahead, and it was given up), the circuit closed since (its
  // expiry re-opened it, or the other probes closed it without this one): it
  // counts for nothing. A probe of the spell that just closed, within its
  // lease, counts as any other attempt.
  if (lease !== null && leaseOver(lease, now, p, s)) return s;
  const failures = [...s.failures, now].slice(-p.failureThreshold);
  const window = p.failureRate === undefined ? null : record(s.window, now, p, true);
  const calls = window ? sum(window.calls) : failures.length;
  const failed = window ? sum(window.failures) : failures.length;
  const trip = { consecutive: failures.length, failures: failed, calls, rate: failed / calls, lastError: reason };
  if (failures.length >= p.failureThreshold) {
    return open(
      s,
      now + p.timeout,
      `${failures.length} failure${failures.length > 1 ? "s" : ""} in a row (last: ${reason})`,
      now,
      now,
      trip,
    );
  }
  if (p.failureRate !== undefined && calls >= p.minimumCalls && failed / calls >= p.failureRate) {
    const why = `failure rate ${(failed / calls).toFixed(2)} over ${calls} calls (last: ${reason})`;
    return open(s, now + p.timeout, why, now, now, trip);
  }
  return { ...s, failures, window, lastFailureTime: now };
}

function open(
  s: BreakerSnapshot,
  until: number,
  reason: string,
  now: number,
  lastFailureTime: number | null,
  trip: TripRecord | null,
): BreakerSnapshot {
  return {
    ...s,
    state: "open",
    gen: s.gen + 1,
    failures: [],
    window: null,
    openUntil: until,
    leases: [],
    successes: 0,
    reason,
    changedAt: now,
    lastFailureTime,
    trip,
  };
}

/**
 * The reason a breaker adopts from shared state: another writer's words (an
 * app or version of its own on the namespace), so a URL in them loses its
 * secrets as the library's own errors do before events and `health()`.
 */
const shared = (remote: BreakerSnapshot, state: string): string =>
  `shared: ${redactUrlsIn(remote.reason ?? `${state} elsewhere`)}`;

/** The trip a breaker adopts from shared state, its `lastError` cut as {@link shared} cuts the reason. */
const sharedTrip = ({ trip }: BreakerSnapshot): TripRecord | null =>
  trip ? { ...trip, lastError: trip.lastError && redactUrlsIn(trip.lastError) } : null;

/**
 * A snapshot from elsewhere (another isolate, via a store) may push this
 * breaker toward open at any time, a closed one toward half-open (a host
 * probed elsewhere: calls here go as probes too, which a coordinating store
 * grants or refuses), and toward closed only when it closed after this
 * breaker last changed. Times, not generations, order the two: each
 * breaker counts its own generations (a new isolate's first trip is
 * generation 1). The local gen moves past the remote one so later local
 * transitions win.
 */
function adopt(s: BreakerSnapshot, remote: BreakerSnapshot, now: number): BreakerSnapshot {
  const gen = Math.max(s.gen, remote.gen);
  // Dated ahead of this clock (it was set back, or the writer's runs ahead):
  // the spell counts from now, its own length, not the clocks' difference;
  // a day at most, whatever store it came from.
  const until = Math.min(now + MAX_HOLD_MS, (remote.openUntil ?? 0) - Math.max(0, remote.changedAt - now));
  if (remote.state === "open" && until > now) {
    const current = setBack(s, now);
    if (current.state === "open" && (current.openUntil ?? 0) >= until) return current;
    return {
      ...open(
        current,
        until,
        shared(remote, "open"),
        now,
        // A compact shared state (KV, a Durable Object) knows no failure time: the last one seen here stands.
        remote.lastFailureTime ?? current.lastFailureTime,
        sharedTrip(remote),
      ),
      // Dated as the remote trip (never later than now): a close elsewhere
      // after that trip is news here, even when this copy was read late.
      changedAt: Math.min(remote.changedAt, now),
      gen: gen + 1,
    };
  }
  if (remote.state === "closed" && remote.changedAt > s.changedAt && s.state !== "closed") {
    return { ...initialBreakerState(now), gen: gen + 1, reason: shared(remote, "closed") };
  }
  // A half-open spell elsewhere, or an open one whose time has passed (half-open
  // there, as time alone makes it): news to a closed breaker that has not
  // changed since. One dated before this breaker last changed is old news (a
  // store's late copy of this breaker's own spell, which has since closed).
  const newer = s.gen === 0 || s.changedAt < remote.changedAt;
  if ((remote.state === "half_open" || remote.state === "open") && newer && s.state === "closed") {
    // Dated just before the remote change, so the close that ends it
    // elsewhere is news here, even in the same millisecond.
    const reason = shared(remote, "half-open");
    // The counts are the remote trip's, as an open spell adopted shows them:
    // none when the store shares no counts (KV, a Durable Object).
    return {
      ...open(s, now, reason, now, s.lastFailureTime, sharedTrip(remote)),
      state: "half_open",
      openUntil: null,
      changedAt: remote.changedAt - 1,
      gen: gen + 1,
    };
  }
  return s;
}

/**
 * The trip record for an open that no closed-state failure caused (a hold, a
 * failed or vanished probe): while open or half-open, the record of the first
 * trip with the new error; while closed, the counters as they stand.
 */
function tripOf(s: BreakerSnapshot, lastError: string): TripRecord {
  if (s.state !== "closed") {
    return s.trip ? { ...s.trip, lastError } : { consecutive: 0, failures: 0, calls: 0, rate: 0, lastError };
  }
  const calls = s.window ? sum(s.window.calls) : s.failures.length;
  const failed = s.window ? sum(s.window.failures) : s.failures.length;
  return { consecutive: s.failures.length, failures: failed, calls, rate: calls === 0 ? 0 : failed / calls, lastError };
}

function isProbeOf(s: BreakerSnapshot, lease: number | null, gen: number): lease is number {
  return s.state === "half_open" && lease !== null && gen === s.gen && s.leases.includes(lease);
}

function without(leases: number[], lease: number | null): number[] {
  const index = lease === null ? -1 : leases.indexOf(lease);
  return index < 0 ? leases : [...leases.slice(0, index), ...leases.slice(index + 1)];
}

/**
 * `count` successes of a closed circuit without failures, all at `now`: the
 * same state as `count` "success" inputs at that time, built once. A breaker
 * that batches its successes (see `CircuitBreaker`) folds them in with this.
 */
export function recordSuccesses(
  s: BreakerSnapshot,
  count: number,
  now: number,
  p: ResolvedBreakerPolicy,
): BreakerSnapshot {
  return { ...s, window: record(s.window, now, p, false, count) };
}

/**
 * Whether times `a` and `b` fall in the same bucket of the rate window `w`
 * (of a window that `a` would start, when there is none yet): outcomes
 * counted at either then land in the same bucket.
 */
export function sameBucket(w: RateWindow | null, a: number, b: number, p: ResolvedBreakerPolicy): boolean {
  const size = p.timeWindow / WINDOW_BUCKETS;
  const start = w ? w.start : a;
  return Math.floor((a - start) / size) === Math.floor((b - start) / size);
}

function record(w: RateWindow | null, now: number, p: ResolvedBreakerPolicy, failed: boolean, count = 1): RateWindow {
  const size = p.timeWindow / WINDOW_BUCKETS;
  let window = w ?? { start: now, calls: Array(WINDOW_BUCKETS).fill(0), failures: Array(WINDOW_BUCKETS).fill(0) };
  // A clock set back: the newest bucket starts now, so the window keeps
  // moving instead of piling every outcome into it for as long as the step.
  if (now < window.start) window = { ...window, start: now };
  const elapsed = Math.floor((now - window.start) / size);
  if (elapsed > 0) {
    const shift = Math.min(elapsed, WINDOW_BUCKETS);
    // A window so short its buckets have no width (a subnormal `timeWindow`)
    // moves by Infinity × 0: it starts again now, not at NaN, which no bucket leaves.
    const start = window.start + elapsed * size;
    window = {
      start: Number.isFinite(start) ? start : now,
      calls: [...window.calls.slice(shift), ...Array(shift).fill(0)],
      failures: [...window.failures.slice(shift), ...Array(shift).fill(0)],
    };
  } else {
    // Buckets are never edited once in a snapshot: the failures of a
    // success are shared with the previous window, not copied.
    window = {
      start: window.start,
      calls: [...window.calls],
      failures: failed ? [...window.failures] : window.failures,
    };
  }
  const last = WINDOW_BUCKETS - 1;
  window.calls[last] = (window.calls[last] ?? 0) + count;
  if (failed) window.failures[last] = (window.failures[last] ?? 0) + count;
  return window;
}

/**
 * Attempts and failures of a rate window as they stand at `now`: buckets
 * older than the window no longer count, although the window only moves
 * when an outcome is recorded.
 */
export function windowCounts(
  w: RateWindow | null,
  now: number,
  timeWindow: number,
): { calls: number; failures: number } {
  if (!w) return { calls: 0, failures: 0 };
  const stale = Math.max(0, Math.floor((now - w.start) / (timeWindow / WINDOW_BUCKETS)));
  return { calls: sum(w.calls.slice(stale)), failures: sum(w.failures.slice(stale)) };
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
