import { type BreakerSnapshot, initialBreakerState } from "../core/breaker-snapshot.ts";
import type { Clock } from "../core/clock.ts";
import { errorDetail } from "../core/error-detail.ts";
import { LruMap } from "../core/lru-map.ts";
import { breakerDefaults, policyNumbers, type ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import { withDefaults } from "../core/options/with-defaults.ts";
import { shownValue } from "../core/shown-name.ts";
import { Background } from "../stores/background.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { readAsOf } from "../stores/shared-snapshot.ts";
import { storeClock } from "../stores/store-clock.ts";
import { checkScopeAndContext, isNumberFrom, readStoreOptions } from "../stores/store-options.ts";
import type { DurableObjectNamespaceLike, ExecutionContextLike } from "./bindings.ts";
import { policySchema, toWirePolicy, type Verdict, verdictIn, type WirePolicy } from "./do-protocol.ts";

/** Options of {@link durableObjectStore}. */
export interface DurableObjectStoreOptions {
  /** The request's context; `resilientProxy` binds each request's for you. */
  ctx?: ExecutionContextLike | undefined;
  /** Namespaces object names. @default "default" */
  scope?: string | undefined;
  /**
   * Outcomes are sent in batches at most this often while closed, in ms, or
   * every `verdictTtl` if that is shorter (asking again for the verdict
   * carries them). @default 5000
   */
  flushInterval?: number | undefined;
  /** …or at once when this many local failures are waiting. @default 3 */
  flushThreshold?: number | undefined;
  /** How long a closed verdict is trusted without asking again (a report), in ms. @default 5000 (the flush interval) */
  verdictTtl?: number | undefined;
  /** How long a probe waits for the object before the local breaker decides alone, in ms. @default 250 */
  timeout?: number | undefined;
  /**
   * The thresholds the object applies, for every layer that shares this
   * store, as the `breaker` option takes them (each one left out its
   * default; `failureRate: undefined` turns the rate rule off; each
   * isolate's local breaker keeps its layer's own thresholds). Without it,
   * the layer made with the store sends its own `breaker` thresholds (when
   * several layers share it, the last one made).
   */
  policy?: { [K in keyof ResolvedBreakerPolicy]?: ResolvedBreakerPolicy[K] | undefined } | undefined;
  clock?: Clock | undefined;
}

interface KeyState {
  verdict: BreakerSnapshot | undefined;
  verdictUntil: number;
  /** After a report the object did not answer (an error, a timeout): no routine report before this. */
  quietUntil: number;
  ok: number;
  fail: number;
  /** A local open spell to hold the object open for (a trip or a `Retry-After` hold), and why. */
  holdUntil: number | undefined;
  holdReason: string | undefined;
  /** When the hold waiting to go was set: after a clock step back, its spell counts again from then. */
  holdAt: number;
  lastFlush: number;
  /** A timestamp: a flush whose isolate died stops blocking after a while. */
  flushingSince: number | null;
  /** The probes this isolate holds (up to `halfOpenMaxCalls`), by lease id: each lease's expiry and generation. */
  probes: Map<string, { lease: number; gen: number }> | undefined;
  /** News that could not go because a flush was in flight: send it as soon as that one returns. */
  urgent: boolean;
  /** The last verdict read (its state, generation, hold and date), and when it was first read. */
  read: string | undefined;
  readAt: number;
  /**
   * This isolate's own spell as the object holds it: the object's end for it
   * (`until`, as the object wrote it) and the local spell's end (`end`).
   */
  own: { until: number | null; end: number } | undefined;
}

const FLUSH_LEASE_MS = 10_000;

/**
 * A breaker store on a Durable Object per host ({@link BreakerStateObject}):
 * strongly consistent, and the only store that can grant exactly
 * `halfOpenMaxCalls` probes across isolates. Outcomes go in batches (every
 * `flushInterval`, or at once near the threshold) through `ctx.waitUntil`;
 * a closed verdict is cached for `verdictTtl`; an open one until it expires,
 * with no call to the object meanwhile. Only a half-open probe awaits the
 * object, for at most `timeout`; an unreachable or slow object leaves the
 * request under the local breaker.
 *
 * @example
 * const resilience = createResilience({ store: durableObjectStore(env.BREAKER_STATE, { ctx }) });
 */
export function durableObjectStore(
  namespace: DurableObjectNamespaceLike,
  given?: DurableObjectStoreOptions,
): BreakerStore & {
  bindContext(ctx: ExecutionContextLike): () => void;
  configure(policy: ResolvedBreakerPolicy, clock?: Clock): void;
} {
  if (!namespace || typeof namespace.idFromName !== "function" || typeof namespace.get !== "function") {
    throw new TypeError(
      "durableObjectStore(namespace): expected a Durable Object namespace binding with idFromName() and get()",
    );
  }
  const options = readStoreOptions("durableObjectStore", given, [
    "ctx",
    "scope",
    "flushInterval",
    "flushThreshold",
    "verdictTtl",
    "timeout",
    "policy",
    "clock",
  ]);
  checkScopeAndContext("durableObjectStore", options.scope, options.ctx);
  // Defaults as the layer applies its own: `null` is kept, for the checks below to refuse.
  const { scope, flushInterval, flushThreshold, timeout } = withDefaults(
    { scope: "default", flushInterval: 5_000, flushThreshold: 3, timeout: 250 },
    options,
  );
  const { verdictTtl } = withDefaults({ verdictTtl: flushInterval }, options);
  for (const [name, value, min] of [
    ["flushInterval", flushInterval, 1],
    ["flushThreshold", flushThreshold, 1],
    ["verdictTtl", verdictTtl, 0],
    ["timeout", timeout, 1],
  ] as const) {
    // NaN, ±Infinity or below the minimum would turn the store's timing off without a word.
    if (!isNumberFrom(value, min))
      throw new TypeError(`durableObjectStore: ${name} must be a number >= ${min}, got ${shownValue(value)}`);
    // A count of failures is whole: 2.5 would wait for the third.
    if (name === "flushThreshold" && !Number.isInteger(value))
      throw new TypeError(`durableObjectStore: flushThreshold must be a whole number, got ${shownValue(value)}`);
  }
  // A report runs in the background, no caller's work: its bound (on `idle`)
  // must never keep a process alive. A probe's is a caller's wait, on the
  // clock itself, until the caller gives up (see `call`).
  const { clock, idle, adopt } = storeClock("durableObjectStore", options.clock);
  const background = new Background("durable-object", options.ctx);
  // A host whose probe is out is not forgotten until the probe's lease runs
  // out: forgetting it would lose the probe, whose result the object awaits.
  const keys = new LruMap<string, KeyState>(
    1_000,
    (st) => st.probes !== undefined && [...st.probes.values()].some((held) => held.lease > clock.now()),
    2_000,
  );
  // Read as the options are (a misspelt threshold named, not dropped); one
  // left out or `undefined` is the `breaker` option's default, as there,
  // but a `failureRate` given as `undefined` turns the rate rule off, as in
  // the policy a layer resolves.
  const ownGiven = options.policy;
  const ownPolicy =
    ownGiven === undefined
      ? undefined
      : readStoreOptions("durableObjectStore: policy", ownGiven, [...policyNumbers, "failureRate"]);
  const merged: Record<string, unknown> = withDefaults(breakerDefaults, ownPolicy ?? {});
  // `null` is refused as the layer's `breaker.failureRate` refuses it (the object would read it as "off").
  if (merged.failureRate === null)
    throw new TypeError(
      "durableObjectStore: policy.failureRate is out of range or not a number (see the breaker options)",
    );
  // The one exception to `withDefaults`, documented in cloudflare.md: `failureRate: undefined` turns the rate rule
  // off, written as a key or a class's getter (options are read by name).
  if (ownGiven && "failureRate" in ownGiven && ownPolicy?.failureRate === undefined) merged.failureRate = undefined;
  let policy: WirePolicy = toWirePolicy(merged as unknown as ResolvedBreakerPolicy);
  // The object would refuse every message carrying a policy it cannot apply: refused here, at once.
  const refused = policySchema.safeParse(policy).error?.issues[0];
  if (refused)
    throw new TypeError(
      `durableObjectStore: policy.${refused.path.join(".")} is out of range or not a number (see the breaker options)`,
    );

  const stateOf = (key: string, now: number): KeyState => {
    let st = keys.get(key);
    if (!st) {
      st = {
        verdict: undefined,
        read: undefined,
        readAt: 0,
        verdictUntil: 0,
        quietUntil: 0,
        ok: 0,
        fail: 0,
        holdUntil: undefined,
        holdReason: undefined,
        holdAt: now,
        lastFlush: now,
        flushingSince: null,
        probes: undefined,
        urgent: false,
        own: undefined,
      };
      keys.set(key, st);
    }
    return retimed(st, now);
  };

  const retimed = (st: KeyState, now: number): KeyState => {
    // A clock set back (an NTP step, an injected clock): the cached verdict and
    // the flush times are of the clock before it, so the object is asked again.
    if (now < st.lastFlush) {
      st.lastFlush = now - flushInterval;
      st.verdictUntil = now;
      st.quietUntil = now;
      st.flushingSince = null;
    }
    // A hold waiting to go, set on the clock before such a step, waits its
    // own length again from now, as the local breaker's spell does.
    if (now < st.holdAt) {
      if (st.holdUntil !== undefined) st.holdUntil = now + (st.holdUntil - st.holdAt);
      st.holdAt = now;
    }
    return st;
  };

  /**
   * One request to the key's object, bounded by `timeout`: in the background
   * (housekeeping timers), or for a `caller` waiting on it (a probe's lease),
   * on the clock itself while the caller waits; at the caller's abort the
   * bound runs on as housekeeping, so it holds no process, yet still ends the
   * ask (a lease granted late is then given back by the layer). An answer
   * that comes after the bound goes to `late`, if given: nobody awaits it.
   */
  const call = async (
    key: string,
    path: string,
    body: unknown,
    caller?: { signal: AbortSignal | undefined },
    late?: (verdict: Verdict) => void,
  ): Promise<Verdict | undefined> => {
    const operation = path.slice(1);
    const failed = (outcome: "timeout" | "rejected" | "failed", detail: () => string): undefined => {
      background.emit(() => ({ key, operation, outcome, detail: detail() }));
      return undefined;
    };
    let cancel: () => void = () => {};
    const signal = caller?.signal;
    let handOver: (() => void) | undefined;
    const timer = new Promise<"timeout">((resolve) => {
      const fire = () => resolve("timeout");
      if (!caller || signal?.aborted) {
        cancel = idle.setTimer(fire, timeout);
        return;
      }
      cancel = clock.setTimer(fire, timeout);
      if (!signal) return;
      const started = clock.now();
      handOver = () => {
        cancel();
        cancel = idle.setTimer(fire, Math.max(0, started + timeout - clock.now()));
      };
      signal.addEventListener("abort", handOver, { once: true });
    });
    try {
      // Looked up inside the `try`: a binding that throws is an object that did not answer.
      const stub = namespace.get(namespace.idFromName(`cb:${scope}:${key}`) as never);
      // The body too is read within `timeout`: an object that sends its
      // headers and then stalls must not hold a probe for ever. (A stalled
      // body stays with the read that waits on it: a locked stream cannot be
      // cancelled; it ends with the request that made it.)
      const reading = stub
        .fetch(`https://breaker-state${path}`, {
          method: "POST",
          body: JSON.stringify(body),
          headers: { "content-type": "application/json" },
        })
        .then(async (answer) => {
          if (answer.ok) return { answer, verdict: verdictIn(await answer.text()) };
          answer.body?.cancel().catch(() => {}); // an error page: its status says enough
          return { answer, verdict: undefined };
        });
      const read = await Promise.race([reading, timer]);
      if (read === "timeout") {
        // The object may still answer, and what it grants then (a probe's
        // lease) is held there until it expires unless it is given back.
        if (late)
          reading.then(
            ({ verdict }) => {
              if (verdict) late(verdict);
            },
            () => {},
          );
        return failed("timeout", () => `no answer within ${timeout} ms`);
      }
      const { answer, verdict } = read;
      if (!answer.ok) return failed("rejected", () => `unexpected answer (status ${answer.status})`);
      if (!verdict) {
        // A foreign or corrupt answer (no JSON, or no verdict), told apart from an object that erred, as a corrupt KV value is.
        background.emit(() => ({
          key,
          operation: "validate",
          outcome: "rejected",
          detail: "a foreign or corrupt answer was ignored",
        }));
        return undefined;
      }
      return verdict;
    } catch (error) {
      return failed("failed", () => errorDetail(error));
    } finally {
      cancel();
      if (handOver) signal?.removeEventListener("abort", handOver);
    }
  };

  /**
   * Notes the object's end as this isolate's own spell's when `answer`
   * answers the report that carried the hold `held` (sent at `held.at`), or
   * a copy of it that timed out. The object counts a hold from its own now
   * when the clocks seem to differ by a second or more, and cannot tell a
   * clock's difference from the report's time on the wire: its end for this
   * isolate's own spell may come back later than the local one, by no more
   * than that report's round trip. Read as the local spell (that answer and
   * every later one naming that end), or the isolate would take its own trip
   * for a new open spell; the object still refuses probes until its own end.
   * A later end by more is another spell (another isolate's trip).
   */
  const noteOwnSpell = (st: KeyState, answer: Verdict, held: { until: number; at: number }, readAt: number): void => {
    const until = readAsOf({ ...answer, changedAt: answer.changedAt ?? 0 }, readAt).openUntil;
    if (answer.state === "open" && until !== null && until > held.until && until - held.until <= clock.now() - held.at)
      st.own = { until: answer.openUntil, end: held.until };
  };

  const adoptVerdict = (st: KeyState, answer: Verdict, held?: { until: number; at: number }): void => {
    const now = clock.now();
    // The same verdict read again counts from when it was first read: its
    // hold, cut to 24 hours, does not start a new day each time.
    const read = `${answer.state} ${answer.gen} ${answer.openUntil} ${answer.changedAt}`;
    if (read !== st.read) {
      st.read = read;
      st.readAt = now;
    }
    // Dated ahead (the object's clock ahead, or this one set back), it counts
    // as changed when first read; an absurd hold from the object is cut to 24 h.
    const verdict = readAsOf({ ...answer, changedAt: answer.changedAt ?? 0 }, st.readAt);
    if (held) noteOwnSpell(st, answer, held, st.readAt);
    const until = verdict.openUntil;
    if (verdict.state === "open" && st.own && st.own.until === answer.openUntil && until !== null)
      verdict.openUntil = Math.min(until, st.own.end);
    st.verdict = {
      ...initialBreakerState(now),
      state: verdict.state,
      gen: verdict.gen,
      openUntil: verdict.openUntil,
      reason: verdict.reason,
      changedAt: verdict.changedAt,
    };
    st.verdictUntil = verdict.state === "open" ? (verdict.openUntil ?? now) : now + verdictTtl;
  };

  const flush = (key: string, st: KeyState, urgent = false): void => {
    const now = clock.now();
    if (st.flushingSince !== null && now - st.flushingSince < FLUSH_LEASE_MS) {
      if (urgent) st.urgent = true;
      return;
    }
    st.urgent = false;
    const report = {
      policy,
      ok: st.ok,
      fail: st.fail,
      ...(st.holdUntil !== undefined ? { holdUntil: st.holdUntil, sentAt: now } : {}),
      ...(st.holdReason !== undefined ? { reason: st.holdReason } : {}),
    };
    const heldAt = st.holdAt;
    st.ok = 0;
    st.fail = 0;
    st.holdUntil = undefined;
    st.holdReason = undefined;
    st.lastFlush = now;
    st.flushingSince = now;
    const held = report.holdUntil === undefined ? undefined : { until: report.holdUntil, at: now };
    background.run(key, async () => {
      // A copy of a hold answered after the bound may tell its spell's end (see `noteOwnSpell`).
      const verdict = await call(
        key,
        "/report",
        report,
        undefined,
        held && ((late) => noteOwnSpell(st, late, held, clock.now())),
      );
      st.flushingSince = null;
      // An object that did not answer is asked again a `flushInterval` later,
      // not at the next call: an overloaded one is not sent a report per call.
      if (verdict) adoptVerdict(st, verdict, held);
      else {
        st.quietUntil = clock.now() + flushInterval;
        // A trip or hold the object did not hear goes again with the next
        // report, or the object would stay closed through the whole local
        // spell, unless a hold set since says what holds now. A hold is a
        // bound, harmless to send twice; the counts are not sent again, since
        // the object may have applied them before its answer was lost.
        if (report.holdUntil !== undefined && report.holdUntil > clock.now() && st.holdUntil === undefined) {
          st.holdUntil = report.holdUntil;
          st.holdReason = report.reason;
          st.holdAt = heldAt;
        }
      }
      // A clock set back while the report was out re-times what waited on it before it goes.
      if (st.urgent || st.fail >= flushThreshold) flush(key, retimed(st, clock.now()));
    });
  };

  /**
   * Reports the probe holding lease `probe` to the object: its outcome, or
   * `null` for a lease given back. False when this isolate holds no such lease.
   */
  const settleProbe = (key: string, st: KeyState, probe: string, ok: boolean | null): boolean => {
    const held = st.probes?.get(probe);
    if (!held) return false;
    st.probes?.delete(probe);
    background.run(key, async () => {
      const verdict = await call(key, "/report", { policy, ok: 0, fail: 0, probe: { ...held, ok } });
      if (verdict) adoptVerdict(st, verdict);
    });
    return true;
  };

  const cachedOpen = (st: KeyState, now: number): boolean => st.verdict?.state === "open" && now < st.verdictUntil;

  return {
    name: "durable-object",
    publish(key, snapshot) {
      const now = clock.now();
      const st = stateOf(key, now);
      // A local trip or hold is news the object should have now, not in 5 s,
      // and the object holds the host open for its spell: the batched counts
      // alone cannot say so (a batch has lost their order, and the object
      // spreads its failures among its successes).
      if (snapshot.state === "open") {
        const hold = snapshot.openUntil ?? undefined;
        if (hold !== undefined) {
          st.holdUntil = hold;
          st.holdReason = snapshot.reason?.slice(0, 200) ?? undefined;
          st.holdAt = now;
        }
        // A cached open verdict makes a trip old news, but not a hold that outlasts it.
        if (!cachedOpen(st, now) || (hold ?? 0) > st.verdictUntil) flush(key, st, true);
      }
    },
    // Read on the store's own clock, not the layer's `now`: a store given a
    // clock of its own paces itself on that one clock (see store-clock.ts).
    peek(key) {
      const now = clock.now();
      const st = stateOf(key, now);
      if (cachedOpen(st, now)) return st.verdict; // open: no calls at all until it expires
      if (
        now >= st.verdictUntil &&
        now >= st.quietUntil &&
        (st.ok > 0 || st.fail > 0 || st.verdict === undefined || now - st.lastFlush >= flushInterval)
      ) {
        flush(key, st);
      }
      return st.verdict;
    },
    record(key, failed, _now, probe) {
      const now = clock.now();
      const st = stateOf(key, now);
      // A probe's outcome goes to the object at once; an outcome under a lease no longer held counts as any other.
      if (probe !== undefined && settleProbe(key, st, probe, !failed)) return;
      if (failed) st.fail++;
      else st.ok++;
      if (cachedOpen(st, now)) return;
      if (st.fail >= flushThreshold) flush(key, st, true);
      else if (now - st.lastFlush >= flushInterval) flush(key, st);
    },
    releaseProbe(key, probe) {
      settleProbe(key, stateOf(key, clock.now()), probe, null);
    },
    async acquireProbe(key, _now, signal) {
      const st = stateOf(key, clock.now());
      // A lease granted after the bound has no probe to report it: it goes
      // back at once, or the object would reopen when it expires, the
      // probe's own outcome unheard.
      const giveBack = (late: Verdict): void => {
        if (late.lease === null || late.lease === undefined) return;
        const held = { lease: late.lease, gen: late.gen, ok: null };
        background.run(key, async () => {
          const verdict = await call(key, "/report", { policy, ok: 0, fail: 0, probe: held });
          if (verdict) adoptVerdict(st, verdict);
        });
      };
      const verdict = await call(key, "/probe", { policy }, { signal }, giveBack);
      if (!verdict) return undefined; // the object did not answer: the local breaker decides
      adoptVerdict(st, verdict);
      if (verdict.state === "closed") return true;
      if (verdict.lease === null || verdict.lease === undefined) return false;
      // Each probe out keeps its own lease; one whose lease ran out (its caller vanished) is forgotten here.
      st.probes ??= new Map();
      const now = clock.now();
      for (const [id, held] of st.probes) if (held.lease <= now) st.probes.delete(id);
      st.probes.set(String(verdict.lease), { lease: verdict.lease, gen: verdict.gen });
      return String(verdict.lease);
    },
    bindContext: (ctx) => background.bind(ctx),
    connect: (listener, listening) => background.connect(listener, listening),
    configure(next, layerClock) {
      // A policy given to the store is every sharing layer's.
      if (ownGiven === undefined) policy = toWirePolicy(next);
      adopt(layerClock);
    },
  };
}
