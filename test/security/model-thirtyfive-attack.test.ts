/**
 * Outside-in attack on the circuit breaker and retry by model-based testing: a reference model written from the
 * documented rules alone, driven side by side with the library by seeded pseudo-random sequences.
 * Docs: docs/breakers.md ("Network errors, attempt timeouts, 5xx and 429 are failures; other 4xx … count as successes
 * of the service; a caller's abort is neither", "CLOSED → OPEN when `failureThreshold` … attempts in a row failed, or
 * when `failureRate` … of at least `minimumCalls` … attempts inside `timeWindow` (… 10 buckets … that leave whole: an
 * attempt counts for 27 to 30 s) failed, whichever comes first", "both are judged as a failure is counted, so a
 * success never opens a circuit (… 50 failures then 50 successes open it at the next failure …)", "OPEN fails fast
 * with `CircuitOpenError` and sends nothing. After `timeout` … it is HALF_OPEN: at most `halfOpenMaxCalls` … probes in
 * flight, each a lease that expires after `probeTimeout` …; if it answers after its lease ran out, that answer counts
 * for nothing: the expiry counts as the failure, and re-opens the circuit for `timeout` at the first look after it (a
 * call, the late answer itself; a `state` or `health()` read shows it open)", "Any probe failure re-opens;
 * `successThreshold` … successes close", "A retry is never parked behind an open breaker: … the call's retry wait
 * ends and it settles then with the response it has (with none …: `RetryExhaustedError`)", "`gen` +1 on every
 * transition", "A dead host opens within four calls … the fifth call is refused without being sent");
 * docs/health-and-events.md (`health()`: "`unhealthy` when a breaker is open", a breaker's `state` "as a call would
 * find it now", "A closed breaker shows its live counts; an open or half-open one shows the counts that opened it and
 * the error that did", `openUntil` "`null` while half-open, and for one that reads `open` because a probe's lease ran
 * out", `lastFailureTime` "`null` … again once a spell ends in a close"; `breaker` "fires on every state change …
 * `open` → `half_open` when the first call after `timeout` arrives"); JSDoc of `BreakerOptions`, of
 * `CircuitBreaker.execute` ("a thrown error counts as a failure when `isFailure` says so; an abort of `signal` counts
 * as neither") and `windowCounts()`; docs/retry.md (which outcomes retry, `maxAttempts`, the backoff formula,
 * "When the last attempt produced a Response, the call resolves with it, even a 503").
 * How: `CircuitBreaker` (./policies) with `execute(fn, signal)`, `onChange`, `state`, `toJSON()`, `windowCounts()`;
 * `createResilience({ fetch, clock })` (root) with a transport that holds every attempt until the script answers it,
 * `resilience.breaker(name, options)`, `health()`, `on("breaker")`; `TestClock` and `seededRandom` (./testing);
 * node:http on 127.0.0.1 (test/helpers/http-upstream.ts) for two literal checks. The model (`BreakerModel`) knows the
 * window only as the docs state it: an outcome younger than `timeWindow` − one bucket surely counts, one older than
 * `timeWindow` surely not, one in between may; every figure the library reports must fit one such cut, and a trip
 * that depends on the cut follows the library. Each run compares, after every step: refusal (`CircuitOpenError`, the
 * work never run, nothing sent), state, `openUntil`, `gen`, the event sequence, window counts, `health()`'s
 * `status`, `consecutiveFailures`, `failureCount`, `failureRate`, `lastError`, `lastFailureTime`, and for the layer
 * each call's settlement and requests sent. Each suite also asserts it reached every transition, a rate trip, probes,
 * refusals (and, for the layer, a lease expiry and a retry wait ended by an opening). `SEEDS=n` runs more seeds (300
 * for `CircuitBreaker`, 150 for the layer were run clean).
 * Paths: plain calls (concurrent, up to several in flight across transitions), retries (fixed 400 ms backoff, three
 * attempts), attempt timeouts as hangs, caller aborts, named breaker, real server.
 *
 * Defects pinned: none.
 *
 * Model mistakes found on the way and fixed in the model (not library defects):
 * - A caller's abort of a stale probe is no "look": the docs name a call and the late answer, and the library does
 *   not re-open on an abort (the next call or answer does, and `state` reads open meanwhile, as documented).
 * - Probes admitted in the same millisecond hold leases a millisecond apart, so at exactly `probeTimeout` one may
 *   still run: a tolerance of `halfOpenMaxCalls` ms at an edge the docs leave open ("expires after `probeTimeout`").
 *
 * Held (plain `it`):
 * - `CircuitBreaker` (./policies): 30 seeded runs of 120 steps (calls, answers ok / failed / an error `isFailure`
 *   declines / caller's abort, clock advances) agree with the model: refusals, transitions and their events, `gen`,
 *   `openUntil`, lease expiry re-opening at the next call or answer, window counts within the documented bucket
 *   tolerance, an error `isFailure` declines counting as a success.
 * - The same as a named breaker: `health()` state, `openUntil`, `gen`, `status`, `consecutiveFailures` and the
 *   layer's `breaker` events agree.
 * - `createResilience` with a held transport: 20 seeded runs of 80 steps (200, 404, 500, 503, 429, network errors,
 *   hangs cut by `timeout.attempt`, concurrent calls, retries) agree: each call's settlement (the last response, or
 *   `RetryExhaustedError` / `TimeoutError` / `CircuitOpenError`) and requests sent, retry waits ended by an opening,
 *   a retry refused by a full half-open settling with the response it had, and every `health()` figure.
 * - Real server: defaults open a dead host after four calls (12 requests) and refuse the fifth unsent;
 *   `failureThreshold: 1000`, 50 × 503 then 50 × 200 stay closed (failureCount 50, failureRate 0.5) and the 101st
 *   (a 503) opens it.
 */
import { describe, expect, it } from "vitest";
import { type BreakerEvent, createResilience, isCircuitOpenError } from "../../src/index.ts";
import { CircuitBreaker, type ResolvedBreakerPolicy } from "../../src/policies/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const server = httpUpstream();
serveDuringFile(server);

// ---------------------------------------------------------------------------
// The reference model: docs/breakers.md, docs/health-and-events.md and the
// JSDoc of `BreakerOptions`, nothing read from the implementation.
// ---------------------------------------------------------------------------

type State = "closed" | "open" | "half_open";
interface Pair {
  calls: number;
  failures: number;
}
/** One admitted attempt: a probe carries its half-open spell and lease. */
interface Ticket {
  id: number;
  probe: { spell: number; lease: number } | null;
}
interface Trip {
  consecutive: number;
  /** The (calls, failures) the rate window may have held at the trip (its buckets' edges are 27 to 30 s wide). */
  pairs: Pair[];
  lastError: string;
}

class BreakerModel {
  stored: State = "closed";
  run = 0;
  outcomes: { t: number; failed: boolean }[] = [];
  openUntil = 0;
  spell = 0;
  probes = new Map<number, number>();
  successes = 0;
  trip: Trip | null = null;
  lastFailureTime: number | null = null;
  events: string[] = [];
  /** A failure the rate rule may or may not have tripped on (an outcome on a bucket edge): the library decides. */
  pending: { now: number; trip: Trip } | null = null;
  onOpen: () => void = () => {};
  #ids = 0;

  readonly p: ResolvedBreakerPolicy & { failureRate: number };

  constructor(p: ResolvedBreakerPolicy & { failureRate: number }) {
    this.p = p;
  }

  /** Every (calls, failures) the window may hold now: sure inside < timeWindow − bucket, surely out ≥ timeWindow. */
  candidates(now: number): Pair[] {
    const tw = this.p.timeWindow;
    const edge = tw - tw / 10;
    let calls = 0;
    let failures = 0;
    const maybe: { t: number; failed: boolean }[] = [];
    for (const o of this.outcomes) {
      const age = now - o.t;
      if (age < edge) {
        calls++;
        if (o.failed) failures++;
      } else if (age < tw) maybe.push(o);
    }
    maybe.sort((a, b) => b.t - a.t); // newest first: the window drops the oldest first
    const out: Pair[] = [{ calls, failures }];
    for (let i = 0; i < maybe.length; i++) {
      const o = maybe[i] as { t: number; failed: boolean };
      calls++;
      if (o.failed) failures++;
      if (i + 1 === maybe.length || (maybe[i + 1] as { t: number }).t !== o.t) out.push({ calls, failures });
    }
    return out;
  }

  view(now: number): { state: State; openUntil: number | null } {
    if (this.stored === "closed") return { state: "closed", openUntil: null };
    if (this.stored === "open")
      return now >= this.openUntil
        ? { state: "half_open", openUntil: null }
        : { state: "open", openUntil: this.openUntil };
    return this.#expired(now) ? { state: "open", openUntil: null } : { state: "half_open", openUntil: null };
  }

  #expired(now: number): boolean {
    for (const lease of this.probes.values()) if (lease <= now) return true;
    return false;
  }

  #move(to: State): void {
    reached.add(`${this.stored}>${to}`);
    this.events.push(`${this.stored}>${to}`);
    this.stored = to;
  }

  #open(now: number, trip: Trip): void {
    this.#move("open");
    this.openUntil = now + this.p.timeout;
    this.probes.clear();
    this.successes = 0;
    this.outcomes = [];
    this.run = 0;
    this.trip = trip;
    this.pending = null;
    this.onOpen();
  }

  #reopen(now: number, lastError: string): void {
    if (lastError === "probe lease expired") reached.add("lease expired");
    this.#open(now, { ...(this.trip as Trip), lastError });
  }

  #close(): void {
    this.#move("closed");
    this.outcomes = [];
    this.run = 0;
    this.trip = null;
    this.lastFailureTime = null;
    this.probes.clear();
    this.successes = 0;
  }

  /** What time alone did, at a look: `full` (a call) also half-opens an open spell that ran out. */
  #tick(now: number, full: boolean): void {
    if (full && this.stored === "open" && now >= this.openUntil) {
      this.#move("half_open");
      this.spell++;
      this.probes.clear();
      this.successes = 0;
    }
    if (this.stored === "half_open" && this.#expired(now)) this.#reopen(now, "probe lease expired");
  }

  /** A call: admitted (closed, or a free probe slot) or refused. */
  admit(now: number): Ticket | null {
    const id = this.#ids++;
    if (this.stored === "closed") return { id, probe: null };
    this.#tick(now, true);
    if (this.stored === "half_open" && this.probes.size < this.p.halfOpenMaxCalls) {
      // Probes granted in the same millisecond hold distinct leases, a millisecond apart (a tolerance
      // of `halfOpenMaxCalls` ms the docs leave open: "a lease that expires after `probeTimeout`").
      let lease = now + this.p.probeTimeout;
      while ([...this.probes.values()].includes(lease)) lease++;
      this.probes.set(id, lease);
      return { id, probe: { spell: this.spell, lease } };
    }
    return null;
  }

  /** An attempt's outcome: `neither` is a caller's abort. */
  report(ticket: Ticket, kind: "success" | "failure" | "neither", now: number, reason: string): void {
    // A look: an answer (not a caller's abort, which answers nothing) finds an expired lease.
    if (this.stored === "half_open" && kind !== "neither") this.#tick(now, false);
    const probe = ticket.probe;
    if (probe) {
      if (this.stored === "half_open" && probe.spell === this.spell && this.probes.has(ticket.id)) {
        if (kind === "neither") this.probes.delete(ticket.id);
        else if (kind === "failure") this.#reopen(now, reason);
        else {
          this.probes.delete(ticket.id);
          this.successes++;
          if (this.successes >= this.p.successThreshold) this.#close();
        }
        return;
      }
      // Answered after its lease ran out: counts for nothing.
      if (probe.lease <= now) return;
    }
    if (this.stored !== "closed" || kind === "neither") return;
    this.#record(now, kind === "failure", reason);
  }

  #record(now: number, failed: boolean, reason: string): void {
    this.outcomes = this.outcomes.filter((o) => now - o.t < this.p.timeWindow);
    this.outcomes.push({ t: now, failed });
    if (!failed) {
      this.run = 0;
      return;
    }
    this.run++;
    this.lastFailureTime = now;
    const pairs = this.candidates(now);
    if (this.run >= this.p.failureThreshold) {
      this.#open(now, { consecutive: this.run, pairs, lastError: reason });
      return;
    }
    const tripping = pairs.filter((c) => c.calls >= this.p.minimumCalls && c.failures / c.calls >= this.p.failureRate);
    const trip = { consecutive: this.run, pairs: tripping, lastError: reason };
    if (tripping.length === pairs.length) {
      reached.add("rate trip");
      this.#open(now, trip);
    } else if (tripping.length > 0) this.pending = { now, trip };
  }

  /** An edge case the docs leave to the buckets' alignment: follow what the library did. */
  settle(libraryOpened: boolean): void {
    const pending = this.pending;
    this.pending = null;
    if (pending) reached.add(libraryOpened ? "edge: opened" : "edge: stayed closed");
    if (pending && libraryOpened) this.#open(pending.now, pending.trip);
  }
}

/** Microtask turns enough for `execute`'s promise chain (no I/O, no timer in it). */
async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

/** What the runs from fixed PRNG seeds reached, so a run that never left "closed" cannot pass unnoticed. */
const reached = new Set<string>();

const pairIn = (pairs: Pair[], calls: number, failures: number) =>
  pairs.some((c) => c.calls === calls && c.failures === failures);

const POLICY = {
  failureThreshold: 4,
  successThreshold: 2,
  timeout: 5_000,
  halfOpenMaxCalls: 2,
  timeWindow: 10_000,
  probeTimeout: 3_000,
  failureRate: 0.5,
  minimumCalls: 6,
};

class Benign extends Error {
  override name = "Benign";
}

type Op =
  | { op: "call" }
  | { op: "answer"; pick: number; how: "ok" | "fail" | "benign" | "abort" }
  | { op: "advance"; ms: number };

/** Every transition, both trip rules, probes and refusals. */
const REACHED = [
  "closed>open",
  "open>half_open",
  "half_open>open",
  "half_open>closed",
  "rate trip",
  "probe",
  "refused",
];

const ADVANCES = [1, 250, 999, 1_000, 1_500, 2_999, 3_000, 4_000, 5_000, 9_000];

function randomOps(seed: number, n: number): Op[] {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.4) ops.push({ op: "call" });
    else if (x < 0.8)
      ops.push({ op: "answer", pick: Math.floor(r() * 1000), how: pick(["ok", "fail", "fail", "benign", "abort"]) });
    else ops.push({ op: "advance", ms: pick(ADVANCES) });
  }
  return ops;
}

/** Drives a `CircuitBreaker` from `./policies` and the model with `ops`; returns the first disagreement. */
async function runBreaker(ops: Op[], named = false, start = 1_000_000): Promise<string | undefined> {
  const clock = new TestClock(start);
  const model = new BreakerModel(POLICY);
  const events: string[] = [];
  const isFailure = (e: unknown) => !(e instanceof Benign);
  const resilience = createResilience({ clock });
  resilience.on("breaker", (c) => void events.push(`${c.from}>${c.to}`));
  const breaker = named
    ? resilience.breaker("upscaler", { ...POLICY, isFailure })
    : new CircuitBreaker("job", POLICY, clock, { isFailure, onChange: (c) => void events.push(`${c.from}>${c.to}`) });
  interface Live {
    ticket: Ticket;
    resolve: (v: string) => void;
    reject: (e: unknown) => void;
    abort: AbortController;
  }
  const live: Live[] = [];
  let ran = 0;
  const log: string[] = [];
  for (const [i, o] of ops.entries()) {
    log.push(JSON.stringify(o));
    const now = clock.now();
    if (o.op === "advance") await clock.advance(o.ms);
    else if (o.op === "call") {
      const abort = new AbortController();
      let resolve!: (v: string) => void;
      let reject!: (e: unknown) => void;
      const work = new Promise<string>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const before = ran;
      const call = breaker.execute(() => {
        ran++;
        return work;
      }, abort.signal);
      let refused = false;
      call.catch((e: unknown) => {
        refused = isCircuitOpenError(e);
      });
      await settleMicrotasks();
      const ticket = model.admit(now);
      if (ticket === null) {
        if (ran !== before) return `step ${i}: model refuses, library ran fn`;
        if (!refused) return `step ${i}: model refuses, library admitted`;
        reached.add("refused");
      } else {
        if (ran === before) return `step ${i}: model admits (${JSON.stringify(ticket)}), library refused`;
        if (ticket.probe) reached.add("probe");
        live.push({ ticket, resolve, reject, abort });
      }
    } else if (live.length > 0) {
      const [l] = live.splice(o.pick % live.length, 1) as [Live];
      if (o.how === "ok") l.resolve("done");
      else if (o.how === "fail") l.reject(new RangeError("boom"));
      else if (o.how === "benign") l.reject(new Benign("fine"));
      else l.abort.abort(new Error("caller left"));
      await settleMicrotasks();
      const kind = o.how === "fail" ? "failure" : o.how === "abort" ? "neither" : "success";
      model.report(l.ticket, kind, now, "RangeError");
      model.settle(breaker.toJSON().state === "open");
    }
    const t = clock.now();
    const want = model.view(t);
    if (breaker.state !== want.state) return `step ${i} @${t}: state ${breaker.state}, model ${want.state}`;
    const json = breaker.toJSON();
    if (json.gen !== model.events.length) return `step ${i}: gen ${json.gen}, model ${model.events.length}`;
    if (events.join(",") !== model.events.join(","))
      return `step ${i}: events ${events.join(",")} vs model ${model.events.join(",")}`;
    if (want.state === "open" && want.openUntil !== null && json.openUntil !== want.openUntil)
      return `step ${i}: openUntil ${json.openUntil}, model ${want.openUntil}`;
    if (want.state === "closed") {
      const { calls, failures } = breaker.windowCounts();
      const pairs = model.candidates(t);
      if (!pairIn(pairs, calls, failures))
        return `step ${i} @${t}: window ${calls}/${failures}, model ${JSON.stringify(pairs)}`;
    }
    if (named) {
      const h = resilience.health();
      const b = h.breakers.upscaler;
      if (!b) return `step ${i}: upscaler missing from health()`;
      if (b.state !== want.state || b.openUntil !== want.openUntil || b.gen !== model.events.length)
        return `step ${i} @${t}: health ${b.state}/${b.openUntil}/${b.gen}, model ${want.state}/${want.openUntil}/${model.events.length}`;
      if ((h.status === "unhealthy") !== (want.state === "open")) return `step ${i}: status ${h.status}`;
      const consecutive = want.state === "closed" ? model.run : (model.trip as Trip).consecutive;
      if (b.consecutiveFailures !== consecutive)
        return `step ${i} @${t}: consecutiveFailures ${b.consecutiveFailures}, model ${consecutive}`;
    }
  }
  for (const l of live) l.resolve("late");
  await settleMicrotasks();
  return undefined;
}

describe("CircuitBreaker (./policies) against the documented model", () => {
  it("agrees with the model over seeded runs of calls, answers, aborts and clock advances", async () => {
    reached.clear();
    const disagreements: string[] = [];
    for (let seed = 1; seed <= Number(process.env.SEEDS ?? 30); seed++) {
      const verdict = await runBreaker(randomOps(seed, 120));
      if (verdict) disagreements.push(`seed ${seed}: ${verdict}`);
    }
    expect(disagreements).toEqual([]);
    expect([...reached].sort()).toEqual(expect.arrayContaining(REACHED));
  }, 300_000);

  it("agrees as a named breaker (`resilience.breaker(name, options)`), its events and `health()` figures", async () => {
    reached.clear();
    const disagreements: string[] = [];
    for (let seed = 101; seed <= 100 + Number(process.env.SEEDS ?? 15); seed++) {
      const verdict = await runBreaker(randomOps(seed, 120), true);
      if (verdict) disagreements.push(`seed ${seed}: ${verdict}`);
    }
    expect(disagreements).toEqual([]);
    expect([...reached].sort()).toEqual(expect.arrayContaining(REACHED));
  }, 300_000);
});

// ---------------------------------------------------------------------------
// The same model under `createResilience`: each attempt of a call feeds the
// host's breaker; retry as docs/retry.md and docs/breakers.md say.
// ---------------------------------------------------------------------------

const HOST_POLICY = { ...POLICY, probeTimeout: 2_000 };
const ATTEMPT_TIMEOUT = 2_500;
const WAIT = 400;
const MAX_ATTEMPTS = 3;

type Answer = "200" | "404" | "500" | "503" | "429" | "net";
type Last = { status: number } | { error: "net" | "timeout" };
type HostOp = { op: "call" } | { op: "answer"; pick: number; how: Answer } | { op: "advance"; ms: number };

interface ModelCall {
  id: number;
  phase: "inflight" | "waiting" | "settled";
  attempts: number;
  ticket: Ticket | null;
  due: number;
  seq: number;
  last: Last | null;
  result: string | null;
}

const HOST_ADVANCES = [1, 100, 400, 999, 1_000, 2_000, 2_500, 3_000, 5_000, 9_500];

function randomHostOps(seed: number, n: number): HostOp[] {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const ops: HostOp[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.35) ops.push({ op: "call" });
    else if (x < 0.75)
      ops.push({
        op: "answer",
        pick: Math.floor(r() * 1000),
        how: pick(["200", "200", "404", "500", "503", "503", "429", "net"] as const),
      });
    else ops.push({ op: "advance", ms: pick(HOST_ADVANCES) });
  }
  return ops;
}

const finalOf = (last: Last): string =>
  "status" in last ? `status ${last.status}` : last.error === "net" ? "RetryExhaustedError" : "TimeoutError";
const reasonOf = (last: Last): string =>
  "status" in last ? `status ${last.status}` : last.error === "net" ? "network" : "attempt timeout";

/** Drives `createResilience` (scripted transport, TestClock) and the model with `ops`; the first disagreement. */
async function runHost(ops: HostOp[], start = 2_000_000): Promise<string | undefined> {
  const clock = new TestClock(start);
  const model = new BreakerModel(HOST_POLICY);
  const calls: ModelCall[] = [];
  let seq = 0;
  // The transport: one pending attempt per call, answered by the script.
  const inflight = new Map<number, { resolve: (r: Response) => void; reject: (e: unknown) => void }>();
  const sends = new Map<number, number>();
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const id = Number(/\/c(\d+)/.exec(String(input))?.[1]);
    sends.set(id, (sends.get(id) ?? 0) + 1);
    return new Promise<Response>((resolve, reject) => {
      inflight.set(id, { resolve, reject });
      init?.signal?.addEventListener("abort", () => {
        inflight.delete(id);
        reject(init.signal?.reason);
      });
    });
  };
  const resilience = createResilience({
    fetch,
    clock,
    budget: false,
    retry: { maxAttempts: MAX_ATTEMPTS, initialDelay: WAIT, exponentialBase: 1, jitter: "none" },
    timeout: { attempt: ATTEMPT_TIMEOUT },
    breaker: HOST_POLICY,
  });
  const events: string[] = [];
  resilience.on("breaker", (e: BreakerEvent) => void events.push(`${e.from}>${e.to}`));
  const results = new Map<number, string>();

  const settle = (c: ModelCall, result: string) => {
    c.phase = "settled";
    c.result = result;
  };
  model.onOpen = () => {
    for (const c of calls)
      if (c.phase === "waiting") {
        reached.add("woken");
        settle(c, finalOf(c.last as Last));
      }
  };
  const libraryOpen = () => resilience.health().breakers["svc.test"]?.state === "open";
  const send = (c: ModelCall, now: number) => {
    const ticket = model.admit(now);
    if (ticket === null) {
      reached.add("refused");
      settle(c, c.last ? finalOf(c.last) : "CircuitOpenError");
      return;
    }
    if (ticket.probe) reached.add("probe");
    c.ticket = ticket;
    c.phase = "inflight";
    c.attempts++;
    c.due = now + ATTEMPT_TIMEOUT;
    c.seq = seq++;
  };
  const outcome = (c: ModelCall, last: Last, now: number) => {
    const failed = !("status" in last) || [429, 500, 503].includes(last.status);
    model.report(c.ticket as Ticket, failed ? "failure" : "success", now, reasonOf(last));
    model.settle(libraryOpen());
    c.last = last;
    if (!failed || ("status" in last && last.status === 404)) settle(c, finalOf(last));
    else if (c.attempts >= MAX_ATTEMPTS || model.view(now).state === "open") settle(c, finalOf(last));
    else {
      c.phase = "waiting";
      c.due = now + WAIT;
      c.seq = seq++;
    }
  };

  for (const [i, o] of ops.entries()) {
    if (o.op === "call") {
      const c: ModelCall = {
        id: calls.length,
        phase: "inflight",
        attempts: 0,
        ticket: null,
        due: 0,
        seq: 0,
        last: null,
        result: null,
      };
      calls.push(c);
      resilience.fetch(`http://svc.test/c${c.id}`).then(
        (r) => void results.set(c.id, `status ${r.status}`),
        (e: unknown) => void results.set(c.id, (e as Error).name),
      );
      await flush();
      send(c, clock.now());
    } else if (o.op === "answer") {
      const open = calls.filter((c) => c.phase === "inflight");
      if (open.length === 0) continue;
      const c = open[o.pick % open.length] as ModelCall;
      const wire = inflight.get(c.id);
      if (!wire) return `step ${i}: call ${c.id} in flight in the model, not on the wire`;
      inflight.delete(c.id);
      if (o.how === "net") wire.reject(new TypeError("fetch failed"));
      else wire.resolve(new Response("x", { status: Number(o.how) }));
      await flush();
      outcome(c, o.how === "net" ? { error: "net" } : { status: Number(o.how) }, clock.now());
    } else {
      const target = clock.now() + o.ms;
      for (;;) {
        const due = calls.filter((c) => c.phase !== "settled" && c.due <= target);
        if (due.length === 0) break;
        const at = Math.min(...due.map((c) => c.due));
        await clock.advance(at - clock.now());
        await flush();
        for (const c of due.filter((d) => d.due === at).sort((a, b) => a.seq - b.seq)) {
          if (c.phase === "inflight") outcome(c, { error: "timeout" }, at);
          else if (c.phase === "waiting") send(c, at);
        }
      }
      await clock.advance(target - clock.now());
      await flush();
    }
    const verdict = compareHost(i, clock.now(), model, calls, results, sends, events, resilience.health());
    if (verdict) return verdict;
  }
  // Let every attempt time out, so no timer is left.
  await clock.advance(ATTEMPT_TIMEOUT * 2 + WAIT * MAX_ATTEMPTS + 10_000);
  await flush();
  return undefined;
}

function compareHost(
  i: number,
  now: number,
  model: BreakerModel,
  calls: ModelCall[],
  results: Map<number, string>,
  sends: Map<number, number>,
  events: string[],
  health: ReturnType<ReturnType<typeof createResilience>["health"]>,
): string | undefined {
  const at = `step ${i} @${now}`;
  for (const c of calls) {
    const got = results.get(c.id) ?? null;
    if (got !== c.result) return `${at}: call ${c.id} settled ${got}, model ${c.result}`;
    if ((sends.get(c.id) ?? 0) !== c.attempts)
      return `${at}: call ${c.id} sent ${sends.get(c.id) ?? 0}, model ${c.attempts}`;
  }
  if (events.join(",") !== model.events.join(","))
    return `${at}: events ${events.join(",")} vs model ${model.events.join(",")}`;
  const b = health.breakers["svc.test"];
  if (!b) return calls.length > 0 ? `${at}: no breaker in health()` : undefined;
  const want = model.view(now);
  if (b.state !== want.state) return `${at}: state ${b.state}, model ${want.state}`;
  if (b.openUntil !== want.openUntil) return `${at}: openUntil ${b.openUntil}, model ${want.openUntil}`;
  if ((health.status === "unhealthy") !== (want.state === "open"))
    return `${at}: status ${health.status} with ${want.state}`;
  if (b.gen !== model.events.length) return `${at}: gen ${b.gen}, model ${model.events.length}`;
  if (want.state === "closed") {
    const pairs = model.candidates(now);
    if (b.consecutiveFailures !== model.run)
      return `${at}: consecutiveFailures ${b.consecutiveFailures}, model ${model.run}`;
    const fit = pairs.some(
      (p) => p.failures === b.failureCount && b.failureRate === (p.calls === 0 ? null : p.failures / p.calls),
    );
    if (!fit) return `${at}: failureCount ${b.failureCount} rate ${b.failureRate}, model ${JSON.stringify(pairs)}`;
    if (b.lastError !== null) return `${at}: lastError ${b.lastError} while closed`;
    if (b.lastFailureTime !== model.lastFailureTime)
      return `${at}: lastFailureTime ${b.lastFailureTime}, model ${model.lastFailureTime}`;
  } else {
    const trip = model.trip as Trip;
    if (b.consecutiveFailures !== trip.consecutive)
      return `${at}: trip consecutiveFailures ${b.consecutiveFailures}, model ${trip.consecutive}`;
    const fit = trip.pairs.some(
      (p) => p.failures === b.failureCount && b.failureRate === (p.calls === 0 ? null : p.failures / p.calls),
    );
    if (!fit)
      return `${at}: trip failureCount ${b.failureCount} rate ${b.failureRate}, model ${JSON.stringify(trip.pairs)}`;
    const status = /^status (\d+)$/.exec(trip.lastError)?.[1];
    if (b.lastError === null || (status !== undefined && !b.lastError.includes(status)))
      return `${at}: lastError ${b.lastError}, model ${trip.lastError}`;
  }
  return undefined;
}

describe("createResilience's host breaker and retry against the documented model", () => {
  it("agrees with the model over seeded runs of calls, statuses, network errors, hangs and clock advances", async () => {
    reached.clear();
    const disagreements: string[] = [];
    for (let seed = 1; seed <= Number(process.env.SEEDS ?? 20); seed++) {
      const verdict = await runHost(randomHostOps(seed, 80));
      if (verdict) disagreements.push(`seed ${seed}: ${verdict}`);
    }
    expect(disagreements).toEqual([]);
    expect([...reached].sort()).toEqual(expect.arrayContaining([...REACHED, "woken", "lease expired"]));
  }, 300_000);
});

describe("the documented rules through a real server on 127.0.0.1", () => {
  it("defaults: a dead host opens after four calls of three attempts, and the fifth call sends nothing", async () => {
    server.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const resilience = createResilience({ retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } });
    for (let call = 1; call <= 4; call++) expect((await resilience.fetch(`${server.base}/x`)).status).toBe(503);
    expect(server.hits.length).toBe(12);
    const refused = await resilience.fetch(`${server.base}/x`).catch((e: unknown) => e);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(server.hits.length).toBe(12);
    const b = resilience.health().breakers[server.host];
    expect(b).toMatchObject({ state: "open", consecutiveFailures: 12 });
  });

  it("rate rule: 50 failures then 50 successes leave it closed; it opens at the next failure", async () => {
    server.on((hit) => {
      hit.res.statusCode = hit.n <= 50 || hit.n > 100 ? 503 : 200;
      hit.res.end("x");
    });
    const resilience = createResilience({ retry: false, breaker: { failureThreshold: 1_000 } });
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await resilience.fetch(`${server.base}/y`)).status);
    expect(statuses.filter((s) => s === 503).length).toBe(50);
    expect(resilience.health().breakers[server.host]).toMatchObject({
      state: "closed",
      failureCount: 50,
      failureRate: 0.5,
    });
    expect((await resilience.fetch(`${server.base}/y`)).status).toBe(503);
    expect(resilience.health().breakers[server.host]).toMatchObject({ state: "open", failureCount: 51 });
    expect(isCircuitOpenError(await resilience.fetch(`${server.base}/y`).catch((e: unknown) => e))).toBe(true);
    expect(server.hits.length).toBe(101);
  });
});
