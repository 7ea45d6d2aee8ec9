import type { Clock } from "../core/clock.ts";
import { errorName } from "../core/error-detail.ts";
import { CircuitOpenError, unlessThrows } from "../core/errors.ts";
import { reportRejection } from "../core/events.ts";
import { isListenableSignal } from "../core/kind-of.ts";
import { policyNumbers, type ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import { checkOptions } from "../core/options/check-options.ts";
import { breakerHookRules, breakerRules, clockArgRules } from "../core/options/option-rules.ts";
import type { BreakerEvent as BreakerChange } from "../core/resilience-events.ts";
import { untilAborted } from "../core/until-aborted.ts";
import {
  type BreakerHold,
  type BreakerInput,
  type BreakerSnapshot,
  type BreakerStateName,
  initialBreakerState,
  leaseOver,
  recordSuccesses,
  sameBucket,
  transition,
  windowCounts,
} from "./breaker-state.ts";

/** Proof of admission; report the outcome with it exactly once. */
export interface BreakerPermit {
  readonly lease: number | null;
  readonly gen: number;
}

// Closed-state permits carry no lease, so one shared object serves them all:
// the healthy path allocates nothing.
const CLOSED_PERMIT: BreakerPermit = Object.freeze({ lease: null, gen: -1 });

/**
 * A thin stateful wrapper around the pure {@link transition}: it holds the
 * current snapshot, reads the clock, and reports state changes.
 *
 * @example
 * const breaker = resilience.breaker("upscaler");
 * const image = await breaker.execute(() => upscale(input)); // throws CircuitOpenError while open
 */
export class CircuitBreaker {
  readonly key: string;
  readonly #policy: ResolvedBreakerPolicy;
  readonly #clock: Clock;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #onChange: ((change: BreakerChange, snapshot: BreakerSnapshot) => void) | undefined;
  #s: BreakerSnapshot;
  // Successes of a closed circuit without failures, not yet in `#s`: counting
  // each one into the snapshot would copy it and its rate window on every
  // call. They all fall in the rate-window bucket of `#unfoldedAt`, and are
  // folded into `#s` (as that many successes at that time) before anything
  // reads the window or changes the state.
  #unfolded = 0;
  #unfoldedAt = 0;

  constructor(
    key: string,
    policy: ResolvedBreakerPolicy,
    clock: Clock,
    options: {
      isFailure?: ((error: unknown) => boolean) | undefined;
      /**
       * Called at each change of state, inside the call that caused it: a
       * throw reaches that caller (the change stands; a probe slot the
       * change took for a request that then never runs goes back, and the
       * work `execute` ran is no failure for it); an async hook is not awaited, and its
       * rejection is reported (`reportError`, else `console.error`), never
       * left unhandled.
       */
      onChange?: ((change: BreakerChange, snapshot: BreakerSnapshot) => void) | undefined;
      initial?: BreakerSnapshot | undefined;
    } = {},
  ) {
    if (typeof key !== "string") throw new TypeError(`CircuitBreaker(key): expected a string, got ${typeof key}`);
    // Built by the layer, the options are checked already; built on its own
    // (any async work), a NaN threshold would make a breaker that never opens.
    checkOptions(breakerRules, policy, "CircuitBreaker", policyNumbers);
    checkOptions(clockArgRules, { clock }, "CircuitBreaker", ["clock"]);
    // A hook that is not a function would fail only when first called, in
    // the middle of a caller's work, and replace that work's error.
    checkOptions(breakerHookRules, options, "CircuitBreaker");
    this.key = key;
    this.#policy = policy;
    this.#clock = clock;
    // The layer's breaker options hold `isFailure` too (and `key`, `maxHosts`,
    // which its registry reads): one given there, and checked, is honoured.
    this.#isFailure =
      options.isFailure ?? (policy as { isFailure?: (error: unknown) => boolean }).isFailure ?? (() => true);
    this.#onChange = options.onChange;
    // Copied, as what `onChange` and `toJSON()` hand out is: the caller's object moves no breaker.
    this.#s = options.initial ? structuredClone(options.initial) : initialBreakerState(clock.now());
  }

  /**
   * The state as a caller would see it now: an open circuit whose timeout
   * passed reads `half_open`, a half-open one whose probe lease ran out reads
   * `open` (the next request re-opens it).
   */
  get state(): BreakerStateName {
    const now = this.#look();
    const s = this.#s;
    if (s.state === "closed") return "closed";
    if (s.state === "open") return now >= (s.openUntil ?? 0) ? "half_open" : "open";
    return s.leases.some((expiry) => leaseOver(expiry, now, this.#policy, s)) ? "open" : "half_open";
  }

  /**
   * Whether the circuit is open now, with what time did applied first: an
   * open circuit whose timeout passed turns half-open, and a half-open one
   * whose probe lease ran out re-opens (and reports it), as the next request
   * would. For a caller that must know before it waits (a bulkhead queue, a
   * choice between endpoints); unlike `tryAcquire` it takes no probe slot.
   * Reading `state` alone would leave such a lease in place for good.
   */
  isOpen(): boolean {
    if (this.#s.state === "closed") return false;
    this.#apply({ type: "tick" });
    return this.#s.state === "open";
  }

  /**
   * Whether a request now would be refused: open, or half-open with every
   * probe slot taken; time applied first, as by `isOpen`, and nothing taken.
   */
  refuses(): boolean {
    return this.isOpen() || (this.#s.state === "half_open" && this.#s.leases.length >= this.#policy.halfOpenMaxCalls);
  }

  /**
   * Epoch ms after which a request may be admitted again (now, when it may
   * already). Half-open with every probe slot taken, the first probe lease's
   * expiry: a probe that never reported re-opens the circuit then, for
   * another `timeout`, unless a probe's answer came first.
   */
  retryAt(): number {
    const now = this.#look();
    const s = this.#s;
    if (s.state === "open") return Math.max(now, s.openUntil ?? 0);
    // Half-open with every probe slot taken: when the first lease runs out,
    // unless one ran out already: the next request then re-opens the circuit.
    if (s.state === "half_open" && s.leases.length >= this.#policy.halfOpenMaxCalls) {
      return s.leases.some((expiry) => leaseOver(expiry, now, this.#policy, s))
        ? now + this.#policy.timeout
        : Math.min(...s.leases);
    }
    return now;
  }

  /** Admits a request, or returns `undefined` when the circuit refuses it. */
  tryAcquire(): BreakerPermit | undefined {
    if (this.#s.state === "closed") {
      this.#look();
      return CLOSED_PERMIT;
    }
    const step = this.#apply({ type: "request" });
    if (!step.admitted) return undefined;
    return { lease: step.lease, gen: this.#s.gen };
  }

  /** Admits a request or throws {@link CircuitOpenError}. */
  acquire(): BreakerPermit {
    const permit = this.tryAcquire();
    if (!permit) throw new CircuitOpenError(this.key, this.retryAt());
    return permit;
  }

  success(permit: BreakerPermit): void {
    const s = this.#s;
    if (permit === CLOSED_PERMIT && s.state === "closed" && s.failures.length === 0) {
      // No run of failures to end: only the rate window, if any, counts it.
      if (this.#policy.failureRate === undefined) return;
      const now = this.#clock.now();
      if (this.#unfolded > 0 && !sameBucket(s.window, this.#unfoldedAt, now, this.#policy)) this.#fold();
      if (this.#unfolded === 0) this.#unfoldedAt = now;
      this.#unfolded++;
      return;
    }
    this.#apply({ type: "success", lease: permit.lease, gen: permit.gen });
  }

  /**
   * A failed attempt. `hold` (a `Retry-After` too long to wait) keeps the
   * circuit open until then: with a trip of the same answer, one opening
   * until the later of the two times.
   */
  failure(permit: BreakerPermit, reason: string, hold?: BreakerHold): void {
    this.#apply({ type: "failure", lease: permit.lease, gen: permit.gen, reason, hold });
  }

  /** Frees a permit without an outcome (the caller aborted: neither success nor failure). */
  release(permit: BreakerPermit): void {
    if (permit.lease !== null) this.#apply({ type: "release", lease: permit.lease, gen: permit.gen });
  }

  /**
   * Holds the circuit open until `until` (e.g. a `Retry-After` too long to
   * wait); a time already past holds nothing, nor does one sooner than the
   * opening in force. The caller's word, with no
   * cap (the layer caps a `Retry-After` and a store's state at a day
   * itself); `reset()` ends it early. A `until` that is no finite
   * number (`NaN` from a date that did not parse; `Infinity`, which no
   * shared store can write) is a `TypeError`. A URL in `reason` (as in
   * `failure`'s and its hold's) is cut: the reason reaches events and `health()`.
   */
  hold(until: number, reason: string): void {
    if (typeof until !== "number" || !(until < Number.POSITIVE_INFINITY)) {
      throw new TypeError(
        `breaker.hold(until): expected a time in ms, got ${typeof until === "number" ? until : typeof until}`,
      );
    }
    this.#apply({ type: "hold", until, reason });
  }

  /** Back to closed with a clean slate (`cb.reset()` in the StoryCore-Engine error-handling guide). */
  reset(): void {
    this.#apply({ type: "reset" });
  }

  /**
   * Merges a snapshot from a shared store: it may push this breaker toward
   * open at any time, a closed one toward half-open, and toward closed only
   * when it closed after this breaker last changed.
   */
  adopt(snapshot: BreakerSnapshot): void {
    this.#apply({ type: "remote", snapshot });
  }

  /**
   * Runs `fn` behind the breaker: refused with {@link CircuitOpenError} while
   * open; a thrown error counts as a failure when `isFailure` says so; an
   * abort of `signal` counts as neither. A `fn` that is no function is the
   * caller's mistake: refused before the breaker hears of it.
   */
  async execute<T>(fn: () => T | Promise<T>, signal?: AbortSignal): Promise<T> {
    if (typeof fn !== "function")
      throw new TypeError(`breaker("${this.key}").execute(fn): fn must be a function, got ${typeof fn}`);
    if (signal !== undefined && !isListenableSignal(signal))
      throw new TypeError(
        `breaker("${this.key}").execute(fn, signal): signal must be an AbortSignal, got ${typeof signal}`,
      );
    // A caller gone already: nothing runs, and the breaker hears nothing.
    if (signal?.aborted) throw signal.reason;
    const permit = this.acquire();
    let value: T;
    try {
      // A caller's abort settles at once and releases the permit (an abort is
      // neither a success nor a failure); the abandoned work's outcome is not counted.
      value = await untilAborted(fn(), signal);
    } catch (error) {
      this.reportError(permit, error, signal?.aborted === true && error === signal.reason);
      throw error;
    }
    // Outside the `try`: an `onChange` that throws on the close this success
    // makes reaches the caller, and is no failure of the work.
    this.success(permit);
    return value;
  }

  /**
   * Reports a thrown error: an abort counts as neither success nor failure;
   * otherwise `isFailure` decides. A failure's reason is `named`, if given
   * (the HTTP layer's "attempt timeout", "connection refused"), else the error's name.
   */
  reportError(permit: BreakerPermit, error: unknown, aborted: boolean, named?: string): void {
    if (aborted) {
      this.release(permit);
      return;
    }
    let failed: boolean;
    try {
      failed = this.#isFailure(error);
    } catch (thrown) {
      // No outcome to count: the permit (a probe's slot) goes back, and the throw to the caller.
      this.release(permit);
      throw thrown;
    }
    // The error's name, never its text: a message or a thrown string may
    // quote a URL with its key, and a reason reaches events and `health()`;
    // a name may quote one too, cut as everywhere else.
    const kind = `thrown ${typeof error}`;
    if (failed)
      this.failure(permit, named ?? unlessThrows(() => (error instanceof Error ? errorName(error) : kind), kind));
    else this.success(permit);
  }

  /** Attempts and failed attempts inside the rate window now (both 0 when the rate rule is off). */
  windowCounts(): { calls: number; failures: number } {
    this.#fold();
    return windowCounts(this.#s.window, this.#look(), this.#policy.timeWindow);
  }

  /** Plain serialisable state: `{ v, state, gen, … }`, a copy (editing it moves no breaker). */
  toJSON(): BreakerSnapshot {
    this.#fold();
    // A closed circuit has no deadline to move: no clock read.
    if (this.#s.state !== "closed") this.#look();
    // A copy: the caller's edits must not move the breaker past its transitions.
    return structuredClone(this.#s);
  }

  /**
   * The time now, with a clock set back applied first (see `tick`), so that
   * every view agrees with what the next request does: an open spell dated
   * after now waits its length again from now, and a closed circuit's rate
   * window counts on from this look (a call, `state`, `health()`), not from
   * the outcome that comes after it.
   */
  #look(): number {
    const now = this.#clock.now();
    const s = this.#s;
    if (now < (s.state === "closed" ? (s.window?.start ?? now) : s.changedAt)) this.#apply({ type: "tick" });
    return now;
  }

  #fold(): void {
    if (this.#unfolded === 0) return;
    this.#s = recordSuccesses(this.#s, this.#unfolded, this.#unfoldedAt, this.#policy);
    this.#unfolded = 0;
  }

  #apply(input: BreakerInput): ReturnType<typeof transition> {
    this.#fold();
    const before = this.#s;
    const step = transition(before, input, this.#clock.now(), this.#policy);
    this.#s = step.state;
    if (step.state !== before && step.state.gen !== before.gen && this.#onChange) {
      // A sync throw reaches the caller (a hook is the caller's code); an
      // async hook's rejection is reported, as a listener's is.
      try {
        reportRejection(
          this.#onChange(
            {
              key: this.key,
              from: before.state,
              to: step.state.state,
              reason: step.state.reason,
              gen: step.state.gen,
              openUntil: step.state.openUntil,
            },
            structuredClone(step.state),
          ),
        );
      } catch (error) {
        // The request the throw fails never runs: the probe slot it took goes back.
        if (step.lease !== null) this.#apply({ type: "release", lease: step.lease, gen: step.state.gen });
        throw error;
      }
    }
    return step;
  }
}
