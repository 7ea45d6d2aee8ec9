import { MAX_HOLD_MS } from "../../core/breaker-snapshot.ts";
import type { BrowserBuild } from "../../core/browser-build.ts";
import type { Clock } from "../../core/clock.ts";
import { CircuitOpenError, isCircuitOpenError, TimeoutError, unlessThrows } from "../../core/errors.ts";
import { keepWhile, linkedSignal } from "../../core/linked-signal.ts";
import { untilAborted } from "../../core/until-aborted.ts";
import type { BreakerRegistry, HostEntry } from "../../policies/breaker-registry.ts";
import type { BreakerHold } from "../../policies/breaker-state.ts";
import type { BreakerPermit, CircuitBreaker } from "../../policies/circuit-breaker.ts";
import type { Deadline } from "../../policies/deadline.ts";
import type { BreakerStore } from "../../stores/breaker-store.ts";
import { isStoreFailure } from "../../stores/unawaited-store.ts";
import type { PipelineParts } from "../pipeline-parts.ts";
import { attemptKeys, type CallRequest, fetchArguments } from "../request/call-request.ts";
import { sourceFailure } from "../request/replay-body.ts";
import type { FetchLike } from "../resilience-options.ts";
import { answerOf, dropLate } from "./answer-of.ts";
import { isDeclined, isServiceFailureStatus } from "./classify.ts";
import { discardBody } from "./discard-body.ts";
import { failureReason, isPlatformRefusal, markBodyFailure } from "./failure-reason.ts";
import { retryAfterOf } from "./retry-after.ts";
import { refuseOtherOrigin } from "./same-origin-mode.ts";

/** What one attempt needs besides the request. */
export interface AttemptScope {
  transport: FetchLike;
  clock: Clock;
  attemptTimeout: number | undefined;
  /** The host's breaker and bulkhead; absent when breakers are off. */
  entry: HostEntry | undefined;
  /** Counts attempts that actually left (a refused one does not), across the call's endpoints. */
  sent: { attempts: number };
  /** Those of them that went to this host (one endpoint's, in a chain): an attempt `TimeoutError` says so. */
  attempts: number;
  /** The shared breaker store, when one is configured. */
  store: BreakerStore | undefined;
  deadline: Deadline | undefined;
  /** A 429/503 asking for a longer wait than this holds the host open (see `retryAfterHold`). */
  maxRetryAfter: number;
  /** Reads what the shared store says of the host now (absent without a store or breakers). */
  sync: (() => void) | undefined;
  /** Every host's breaker (absent when breakers are off), by `keyOf` a URL: where a redirect ended. */
  registry: BreakerRegistry | undefined;
  keyOf: (url: string) => string;
  /** Where the attempt timeouts it fires go (see `PipelineParts`). */
  ownTimeouts: WeakMap<AbortSignal, TimeoutError> | undefined;
}

/** Refusals of a redirect's hop by its own host's open breaker (see `admitHop`). */
const refusedHops = new WeakSet<object>();

/** A hop's failed answers whose host's breaker heard them, with their `Retry-After` hold (see `admitHop`). */
const heardByHop = new WeakSet<Response>();

/** Tells a hop's host how its hop went: the answer, or the error it failed with (`aborted`: the hop's signal aborted). */
export type HopOutcome = (answer: Response | undefined, error?: unknown, aborted?: boolean) => void;

/**
 * A hop of a redirect the library follows, to another host than the
 * attempt's first. One whose breaker refuses calls (open, or half-open with
 * every probe slot taken) is refused as a call to that host would be, with
 * nothing sent there; the first host answered (the redirect), so its attempt
 * counts as a success. One whose breaker is half-open with a free slot takes
 * that slot, and a coordinating store's lease as a probe of its own would:
 * the hop is the host's probe, and the returned function reports its
 * outcome, to the breaker and the store (a 5xx or 429 answer, or an error, a
 * failure; any other answer, a redirect onward too, a success; an abort,
 * neither, unless it is the layer's own attempt timeout: a hop that hangs
 * fails its host, whatever an outer layer aborts its call with).
 */
export async function admitHop(
  parts: Pick<PipelineParts, "registry" | "store" | "clock" | "keyOf" | "retry" | "ownTimeouts">,
  url: string,
  from: string,
  signal: AbortSignal | null | undefined,
  fromKey?: string,
): Promise<HopOutcome | undefined> {
  const { registry, store, clock, keyOf, ownTimeouts } = parts;
  const { maxRetryAfter } = parts.retry;
  const key = keyOf(url);
  // A hop back to the attempt's own host is part of the attempt its breaker
  // admitted (a half-open probe holds the slot it would be refused for): the
  // key the attempt went under, else the one its first URL gives.
  if (key === (fromKey ?? keyOf(from))) return undefined;
  const entry = registry?.known(key);
  const breaker = entry?.breaker;
  if (!breaker) return undefined;
  // Closed: the hop counts against the first host only, as its attempt.
  if (breaker.state === "closed") return undefined;
  // The hop holds its host's entry as a call does, until its outcome is in:
  // the LRU (`maxHosts`) does not evict the breaker that outcome goes to.
  entry.holders++;
  const permit = breaker.tryAcquire();
  let lease: string | undefined;
  try {
    if (!permit) throw new CircuitOpenError(breaker.key, breaker.retryAt());
    lease = await probeLease(breaker, permit, store, clock, () => registry?.sync(key, entry), signal ?? undefined);
  } catch (error) {
    registry?.release(key, entry);
    if (isCircuitOpenError(error)) refusedHops.add(error);
    throw error;
  }
  return (answer, error, signalled) => {
    const aborted = signalled === true && !(signal && ownTimeouts?.get(signal) === signal.reason);
    // Let go once the breaker heard the outcome (an entry evicted before would
    // lose it), even when a store that throws fails the hop.
    try {
      const failed = !answer || isServiceFailureStatus(answer.status);
      const storeThrew = tellStore(store, breaker.key, aborted ? undefined : failed, clock, lease);
      if (!answer) breaker.reportError(permit, error, aborted, failureReason(error).reason);
      else if (failed) {
        // A declined answer's long Retry-After holds the host in the same change: one event.
        const hold = isDeclined(answer.status) ? retryAfterHold(answer, clock, maxRetryAfter) : undefined;
        breaker.failure(permit, `status ${answer.status}`, hold);
        heardByHop.add(answer);
      } else breaker.success(permit);
      storeThrew?.();
    } finally {
      registry?.release(key, entry);
    }
  };
}

/**
 * A half-open probe asks a coordinating store (a Durable Object) for one of
 * its few leases: the lease's id, or `undefined` when none is needed or the
 * store cannot say (the local breaker decides: the store bounds its own
 * wait, and one that throws is ignored as one that does not answer). A
 * refusal, or the caller's abort while the store is asked, frees the probe's
 * slot at once (nothing was sent) and throws: a refusal as a
 * `CircuitOpenError` until the host may be probed, after reading again what
 * the store says of it (`sync`). A lease granted while the host re-opened is
 * given back, and the probe refused as well: an open host is sent nothing.
 */
async function probeLease(
  breaker: CircuitBreaker,
  permit: BreakerPermit,
  store: BreakerStore | undefined,
  clock: Clock,
  sync: (() => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  if (permit.lease === null || !store?.acquireProbe) return undefined;
  let granted: boolean | string | undefined;
  try {
    // A lease granted after the abort is given back: no probe will use it.
    granted = await untilAborted(
      store.acquireProbe(breaker.key, clock.now(), signal),
      signal,
      (late) => typeof late === "string" && store.releaseProbe?.(breaker.key, late),
    );
  } catch {
    if (!signal?.aborted) return undefined;
    breaker.release(permit);
    throw signal.reason;
  }
  if (granted !== false) {
    const lease = typeof granted === "string" ? granted : undefined;
    // The wait may have seen the host re-open (a probe failed, here or
    // elsewhere): an open host is sent nothing, the lease goes back.
    try {
      sync?.();
      if (!breaker.isOpen()) return lease;
    } catch (error) {
      if (lease !== undefined) store.releaseProbe?.(breaker.key, lease);
      breaker.release(permit);
      throw error;
    }
    if (lease !== undefined) store.releaseProbe?.(breaker.key, lease);
    breaker.release(permit);
    throw new CircuitOpenError(breaker.key, breaker.retryAt());
  }
  breaker.release(permit);
  sync?.();
  // Open there (a probe failed elsewhere): until the store says. Else
  // another isolate holds the store's probe: it has settled or run out by
  // the time this probe's own lease would have.
  throw new CircuitOpenError(breaker.key, breaker.isOpen() ? breaker.retryAt() : permit.lease);
}

/**
 * One attempt under the host's policies: the breaker admits it or refuses
 * with {@link CircuitOpenError} before anything is sent; the bulkhead holds a
 * slot until headers arrive; the outcome is reported to the breaker (5xx,
 * 429, network errors and timeouts as failures; other statuses as successes;
 * an abort of the call as neither).
 */
export async function sendAttempt(request: CallRequest, scope: AttemptScope): Promise<Response> {
  const { entry } = scope;
  const { signal } = request;
  if (signal?.aborted) throw signal.reason;
  // Before the bulkhead and the breaker: a call that can never go is no host's business.
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) refuseOtherOrigin(request);
  let release: (() => void) | undefined;
  let queued = false;
  if (entry?.bulkhead) {
    // An open breaker refuses at once: a call does not queue for a slot only
    // to be refused when it gets one (the host may have opened elsewhere).
    if (entry.breaker.isOpen()) throw new CircuitOpenError(entry.breaker.key, entry.breaker.retryAt());
    const acquired = entry.bulkhead.acquire(signal);
    if (typeof acquired === "function") release = acquired;
    else {
      release = await acquired;
      queued = true;
    }
  }
  try {
    // Queued a while: another layer may have opened the host meanwhile. A
    // store whose read throws fails the call, and the slot goes back.
    if (queued) scope.sync?.();
    const breaker = entry?.breaker;
    const permit = breaker?.tryAcquire();
    if (breaker && !permit) throw new CircuitOpenError(breaker.key, breaker.retryAt());
    const { store } = scope;
    // Only a half-open probe awaits anything here (a coordinating store's lease).
    const lease =
      breaker && permit && permit.lease !== null && store?.acquireProbe
        ? await probeLease(breaker, permit, store, scope.clock, scope.sync, signal)
        : undefined;
    scope.sent.attempts++;
    scope.attempts++;
    request.replay.sends++;
    // A held stream handed to the transport is the transport's now (it may read it after answering).
    if (request.body === request.replay.held) request.replay.held = undefined;
    let response: Response;
    try {
      // Without an attempt timeout the transport is called here, plainly (no
      // controller, no timer, no async frame of its own: the default path
      // cannot afford them). Called unbound: a browser's fetch (the global
      // one, or one passed as the `fetch` option) throws "Illegal
      // invocation" when called as a method.
      const { transport } = scope;
      response = answerOf(
        await (scope.attemptTimeout !== undefined
          ? timedTransportCall(request, scope, scope.attemptTimeout)
          : signal
            ? untilAborted(transport(...keyedArguments(request, scope, signal)), signal, dropLate)
            : transport(...keyedArguments(request, scope, signal))),
      );
      // The signal the body is read under lives as long as the response.
      if (signal) keepWhile(response, signal);
    } catch (thrown) {
      // The caller's `Request` body stream failed while it was sent (read
      // ahead up to `maxReplayBytes` without failing): the caller's failure,
      // not the host's. It was sent, and is not sent again.
      // A page's build never sends a stream it read ahead (it reads it whole).
      const failure = (globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__
        ? undefined
        : sourceFailure(request.body);
      const ownBody = failure !== undefined;
      const error = failure ? fetchFailure(thrown, failure.error) : thrown;
      // Or refused by the platform before anything went (a header Node's fetch will not send): the
      // caller's mistake too. Not an attempt, and the host's breaker hears nothing, as of an abort.
      const refused = isPlatformRefusal(error);
      if (ownBody) markBodyFailure(error);
      if (refused || ownBody) {
        scope.sent.attempts--;
        scope.attempts--;
        if (refused) request.replay.sends--;
      }
      const aborted = signal?.aborted === true || refused || ownBody;
      // A hop refused by its own host's breaker, or failed by the store as its outcome was told:
      // the first host answered (the redirect), so its attempt is a success.
      const hopRefused = refusedHops.has(error as object) || isStoreFailure(error);
      // The store hears the outcome first: if it trips the breaker, the flush
      // that the trip triggers then carries this failure too.
      // An aborted probe is neither outcome: its lease goes back at once.
      const storeThrew =
        breaker && tellStore(store, breaker.key, aborted ? undefined : !hopRefused, scope.clock, lease);
      if (breaker && permit)
        hopRefused ? breaker.success(permit) : breaker.reportError(permit, error, aborted, failureReason(error).reason);
      storeThrew?.();
      throw error;
    }
    let storeThrew: (() => void) | undefined;
    if (breaker && permit) {
      const failed = isServiceFailureStatus(response.status);
      storeThrew = tellStore(store, breaker.key, failed, scope.clock, lease);
      try {
        // A declined answer (429, 503) is a failure, and its hold goes with it:
        // an answer that both trips the breaker and holds it open is one
        // opening (one `breaker` event), until the later time.
        if (failed) {
          let hold = isDeclined(response.status)
            ? retryAfterHold(response, scope.clock, scope.maxRetryAfter)
            : undefined;
          // The hold is asked for by the host a followed redirect ended at: it is that host's.
          const asker =
            hold && response.redirected && response.url
              ? scope.registry?.entry(scope.keyOf(response.url)).breaker
              : undefined;
          if (hold && asker && asker !== breaker) {
            // Unless the hop's own outcome held it already (a half-open host's probe): one opening.
            if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ || !heardByHop.has(response))
              asker.hold(hold.until, hold.reason);
            hold = undefined;
          }
          breaker.failure(permit, `status ${response.status}`, hold);
        } else breaker.success(permit);
      } catch (error) {
        // A store's `publish` that threw on the change this answer made: the
        // call fails with it, and the answer no one gets is released.
        storeThrew ??= () => {
          throw error;
        };
      }
    }
    if (storeThrew) {
      // The call fails with the store's error: the answer no one gets is released.
      discardBody(response);
      storeThrew();
    }
    return response;
  } finally {
    release?.();
  }
}

/**
 * Tells the store an attempt's outcome (`failed`), before the breaker hears
 * it (if it trips the breaker, the flush the trip triggers then carries this
 * outcome too), or gives back an aborted probe's lease (`failed` undefined:
 * neither outcome). What the store's `record` or `releaseProbe` throws fails
 * the call, but only once the breaker has heard the outcome (the returned
 * function throws it): a probe whose store threw keeps no slot from the
 * calls after it.
 */
function tellStore(
  store: BreakerStore | undefined,
  key: string,
  failed: boolean | undefined,
  clock: Clock,
  lease: string | undefined,
): (() => void) | undefined {
  try {
    // The time is read only for a store that records (none by default): an
    // optional call evaluates no argument when there is nothing to call.
    if (failed !== undefined) store?.record?.(key, failed, clock.now(), lease);
    else if (lease !== undefined) store?.releaseProbe?.(key, lease);
    return undefined;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

/**
 * A 429/503 whose `Retry-After` is longer than `maxRetryAfter` holds the
 * host open until then (at most `MAX_HOLD_MS`), whatever happens to the call
 * next: retried elsewhere, settled with this response, or out of attempts.
 */
function retryAfterHold(response: Response, clock: Clock, maxRetryAfter: number): BreakerHold | undefined {
  const now = clock.now();
  const wait = retryAfterOf(response, now);
  if (wait === undefined || wait <= maxRetryAfter) return undefined;
  return {
    until: now + Math.min(wait, MAX_HOLD_MS),
    reason: `Retry-After ${Math.round(wait / 1000)} s on status ${response.status}`,
  };
}

/**
 * `(input, init)` for the transport; an `init` built for a changed request
 * carries the attempt's breaker key to the redirect follower (see
 * `attemptKeys`). The caller's own `init` carries none: it may serve calls
 * to other hosts, and its URL is the one the key was read from.
 */
function keyedArguments(
  request: CallRequest,
  scope: AttemptScope,
  signal: AbortSignal | undefined,
): [input: RequestInfo | URL, init: RequestInit | undefined] {
  const args = fetchArguments(request, signal);
  if (!(globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__ && scope.entry && !request.original && args[1]) {
    attemptKeys.set(args[1], scope.entry.breaker.key);
  }
  return args;
}

/**
 * The transport call under an attempt timeout: a timer aborts the attempt if
 * headers have not arrived; it is cleared as soon as they do, so a long
 * streamed body is never cut by it. The timeout error is only built if the
 * timer fires (an Error captures a stack, which costs more than the timer).
 */
function timedTransportCall(request: CallRequest, scope: AttemptScope, attemptTimeout: number): Promise<Response> {
  const { signal } = request;
  const { deadline, transport } = scope;
  const controller = new AbortController();
  let timeout: TimeoutError | undefined;
  const fire = (): void => {
    timeout = new TimeoutError("attempt", attemptTimeout);
    scope.ownTimeouts?.set(attemptSignal, timeout);
    controller.abort(timeout);
  };
  // Under a deadline, it times the attempt (the first on the call's own
  // timer) and aborts this controller directly when it fires: one timer for
  // a call that succeeds at once, and only a caller's signal needs
  // `AbortSignal.any`.
  let cancel: () => void;
  let attemptSignal: AbortSignal;
  // Each signal is linked before its timer is set: a link that throws leaves no timer behind.
  if (deadline && signal === deadline.signal) {
    attemptSignal = deadline.owned ? controller.signal : AbortSignal.any([signal, controller.signal]);
    // The deadline was started with this same attempt timeout.
    cancel = deadline.timeAttempt(controller, fire);
  } else {
    // The caller's signal, which may serve many calls (see `linkedSignal`).
    attemptSignal = signal ? linkedSignal(signal, controller.signal) : controller.signal;
    cancel = scope.clock.setTimer(fire, attemptTimeout);
  }
  // Promise steps rather than an async function: one frame fewer per attempt.
  let sent: Promise<Response>;
  try {
    sent = untilAborted(transport(...keyedArguments(request, scope, attemptSignal)), attemptSignal, dropLate);
  } catch (error) {
    cancel();
    return Promise.reject(error);
  }
  return sent.then(
    (response) => {
      cancel();
      keepWhile(response, attemptSignal);
      return response;
    },
    (error: unknown) => {
      cancel();
      throw timeout && !signal?.aborted ? timeout : error;
    },
  );
}

/**
 * A body stream that failed while it was sent, as fetch's `TypeError` whose
 * `cause` is what the stream's source threw (`cause`): Node's and Bun's fetch
 * reject with one, Deno's with one whose `cause` is a copy (a plain `Error`
 * of the same message, the error's class and fields lost), workerd's with
 * the stream's error itself; the last two are given the `TypeError` here so
 * the caller (and the proxy's 400) reads one failure everywhere.
 */
function fetchFailure(error: unknown, cause: unknown): unknown {
  if (unlessThrows(() => error instanceof TypeError && error.cause === cause, false)) return error;
  return new TypeError("resilience.fetch: the request body stream failed while it was sent", { cause });
}
