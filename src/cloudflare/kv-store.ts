import type { BreakerSnapshot } from "../core/breaker-snapshot.ts";
import type { Clock } from "../core/clock.ts";
import { errorDetail } from "../core/error-detail.ts";
import { LruMap } from "../core/lru-map.ts";
import { withDefaults } from "../core/options/with-defaults.ts";
import { type Random, systemRandom } from "../core/random.ts";
import { shownValue } from "../core/shown-name.ts";
import { sleep } from "../core/sleep.ts";
import { Background } from "../stores/background.ts";
import type { BreakerStore } from "../stores/breaker-store.ts";
import { fromShared, readAsOf, toShared } from "../stores/shared-snapshot.ts";
import { storeClock } from "../stores/store-clock.ts";
import { checkScopeAndContext, isNumberFrom, readStoreOptions } from "../stores/store-options.ts";
import type { ExecutionContextLike, KvNamespaceLike } from "./bindings.ts";

/** Options of {@link kvStore}. */
export interface KvStoreOptions {
  /** The request's context; `resilientProxy` binds each request's for you. */
  ctx?: ExecutionContextLike | undefined;
  /** Namespaces keys, so several apps can share one KV namespace. @default "default" */
  scope?: string | undefined;
  /** At most one write per host per isolate this often, in ms (never below 1000: KV allows ~1 write/s per key). @default 5000 */
  minPublishInterval?: number | undefined;
  /** Background reads of a host's key at most this often, in ms. @default 30000 (the `cacheTtl` floor) */
  refreshInterval?: number | undefined;
  /** Random delay before a write, in ms, so isolates that trip together spread out. @default 1000 */
  publishJitter?: number | undefined;
  /** Writes allowed per isolate per day (the Free plan allows 1,000 a day in all). @default unlimited */
  writeBudget?: number | undefined;
  /** Injected time (tests). */
  clock?: Clock | undefined;
  /** Injected randomness (tests). */
  random?: Random | undefined;
}

interface KeyState {
  remote: BreakerSnapshot | undefined;
  nextRefreshAt: number;
  /** A timestamp, not a flag: a refresh whose isolate died stops blocking after REFRESH_LEASE_MS. */
  refreshStartedAt: number | null;
  lastPublishAt: number;
  pending: BreakerSnapshot | undefined;
  /** The snapshot of the last write started: a refused write is tried again only while it is. */
  sent?: BreakerSnapshot;
  /** The last transition published here (admitted or not): a refused write is tried again only while it is. */
  latest?: BreakerSnapshot;
  /** A write of `pending` is scheduled for when the interval ends. */
  waiting?: boolean;
  /**
   * The last value read, as stored (`s g u w`): read again, it is nothing
   * new (neither re-dated nor adopted again).
   */
  lastRead?: string | undefined;
  /** Values read dated ahead of this clock (the last few read), each with when it was first read. */
  aheadReads?: Map<string, number>;
}

const REFRESH_LEASE_MS = 10_000;
/** How many values dated ahead a key remembers the first reading of. */
const AHEAD_READS_KEPT = 8;
const OPEN_SLACK_MS = 1_000;
const DAY_MS = 86_400_000;

/**
 * A breaker store on Workers KV: "count locally, broadcast transitions".
 * One key per host with the snapshot in its metadata. Writes happen only on
 * open, close and probe results, at most one per host per isolate per
 * `minPublishInterval`, jittered, inside `ctx.waitUntil` (a transition the
 * interval holds back goes when it ends), skipped when the
 * last seen remote state says the same; a refused write (a 429) is tried
 * again after the interval, unless the key says as much by then. Reads happen in the
 * background at most every `refreshInterval` and are never awaited by a
 * request. Open keys expire by themselves (TTL ≥ 60 s past `openUntil`).
 * KV cannot elect one half-open prober: the herd is bounded by
 * `halfOpenMaxCalls` per layer (each `Resilience` on the store probes on its
 * own, in each isolate) and the jittered publish.
 *
 * @example
 * const resilience = createResilience({ store: kvStore(env.BREAKERS, { ctx }) });
 */
export function kvStore(
  namespace: KvNamespaceLike,
  given?: KvStoreOptions,
): BreakerStore & {
  bindContext(ctx: ExecutionContextLike): () => void;
} {
  if (!namespace || typeof namespace.getWithMetadata !== "function" || typeof namespace.put !== "function") {
    throw new TypeError("kvStore(namespace): expected a KV namespace binding with getWithMetadata() and put()");
  }
  const options = readStoreOptions("kvStore", given, [
    "ctx",
    "scope",
    "minPublishInterval",
    "refreshInterval",
    "publishJitter",
    "writeBudget",
    "clock",
    "random",
  ]);
  // Defaults as the layer applies its own: `null` is kept, for the checks below to refuse.
  const { minPublishInterval, refreshInterval, publishJitter, scope, random } = withDefaults(
    {
      minPublishInterval: 5_000,
      refreshInterval: 30_000,
      publishJitter: 1_000,
      scope: "default",
      random: systemRandom,
    },
    options,
  );
  // Finite: an endless interval would hold a transition back for good (and a
  // timer past 2^31 - 1 ms fires at once).
  if (!isNumberFrom(minPublishInterval, 1_000)) {
    throw new TypeError(
      `kvStore: minPublishInterval must be >= 1000 ms and finite (KV allows about one write per second per key), got ${shownValue(minPublishInterval)}`,
    );
  }
  if (!isNumberFrom(refreshInterval, 1_000))
    throw new TypeError(`kvStore: refreshInterval must be >= 1000 ms and finite, got ${shownValue(refreshInterval)}`);
  if (!isNumberFrom(publishJitter, 0))
    throw new TypeError(`kvStore: publishJitter must be a number of ms >= 0, got ${shownValue(publishJitter)}`);
  const writeBudget = options.writeBudget;
  // `Number(env.KV_BUDGET)` of an unset variable is NaN: refused, not read as "no budget".
  if (writeBudget !== undefined && !(Number.isInteger(writeBudget) && writeBudget >= 0))
    throw new TypeError(`kvStore: writeBudget must be a whole number of writes >= 0, got ${shownValue(writeBudget)}`);
  checkScopeAndContext("kvStore", options.scope, options.ctx);
  // The waits of background writes (`idle`) are no caller's work: they never hold a process open.
  const { clock, idle, adopt } = storeClock("kvStore", options.clock);
  if (typeof random !== "function")
    throw new TypeError(`kvStore: random must be a function, got ${shownValue(random)}`);
  const background = new Background("kv", options.ctx);
  // A host that wrote within `minPublishInterval` is not forgotten (the map
  // grows past 1,000 while such hosts are many, and shrinks back as their
  // intervals pass): forgetting it would let it write again at once.
  const keys = new LruMap<string, KeyState>(1_000, (st) => clock.now() - st.lastPublishAt < minPublishInterval, 2_000);
  let writesToday = 0;
  let budgetDay = Math.floor(clock.now() / DAY_MS);

  const kvKey = (key: string): string => `cb:v1:${scope}:${key}`;
  /**
   * A clock set back (an NTP step, a restored VM): a key's instants ahead of
   * now move back to it, or its reads and writes would wait as long as the step.
   */
  const setBack = (st: KeyState, now: number): KeyState => {
    if (now < st.lastPublishAt) st.lastPublishAt = now;
    if (now < (st.refreshStartedAt ?? now) || st.nextRefreshAt > now + refreshInterval) {
      st.refreshStartedAt = null;
      st.nextRefreshAt = now;
    }
    return st;
  };
  const stateOf = (key: string, now: number): KeyState => {
    let st = keys.get(key);
    if (!st) {
      st = {
        remote: undefined,
        nextRefreshAt: now,
        refreshStartedAt: null,
        lastPublishAt: Number.NEGATIVE_INFINITY,
        pending: undefined,
      };
      keys.set(key, st);
    }
    return setBack(st, now);
  };
  // Which of two values of the key is the later change. Generations are
  // counted per isolate (a new isolate's first open is generation 1), so they
  // cannot order the writes of different isolates: the time each state began can.
  const newer = (a: BreakerSnapshot, b: BreakerSnapshot | undefined): boolean =>
    !b || a.changedAt > b.changedAt || (a.changedAt === b.changedAt && a.gen > b.gen);

  const refresh = (key: string, st: KeyState, now: number): void => {
    if (now < st.nextRefreshAt) return;
    if (st.refreshStartedAt !== null) {
      if (now - st.refreshStartedAt < REFRESH_LEASE_MS) return;
      // A read that never answered stops blocking the next one: said once, as the object's store says its own.
      background.emit(() => ({
        key,
        operation: "read",
        outcome: "timeout",
        detail: `no answer in ${REFRESH_LEASE_MS / 1000} s`,
      }));
    }
    st.refreshStartedAt = now;
    st.nextRefreshAt = now + refreshInterval;
    background.run(key, async () => {
      try {
        const { value, metadata } = await namespace.getWithMetadata(kvKey(key), { cacheTtl: 30 });
        // No key: nothing shared yet. A value without metadata is another writer's, reported below.
        if (metadata === null && value === null) return;
        const parsed = fromShared(metadata);
        const read = parsed && `${parsed.state} ${parsed.gen} ${parsed.openUntil} ${parsed.changedAt}`;
        if (read && read === st.lastRead) return;
        // A write time from the future would outrank every later write: a
        // value dated ahead (a writer's clock ahead, or this one set back)
        // counts as written when it was first read, its hold cut to 24 hours
        // from then, the same when it comes back after another value.
        let at = clock.now();
        if (parsed && read && parsed.changedAt > at) {
          st.aheadReads ??= new Map();
          const first = st.aheadReads.get(read);
          if (first !== undefined) {
            at = first;
            // Read again: the most recent now (the map drops the least recently read).
            st.aheadReads.delete(read);
            st.aheadReads.set(read, first);
          } else {
            st.aheadReads.set(read, at);
            // The last few such values: an older one coming back is read anew.
            if (st.aheadReads.size > AHEAD_READS_KEPT)
              st.aheadReads.delete(st.aheadReads.keys().next().value as string);
          }
        }
        const snapshot = parsed && readAsOf(parsed, at);
        if (!snapshot) {
          background.emit(() => ({
            key,
            operation: "validate",
            outcome: "rejected",
            detail: "a foreign or corrupt value was ignored",
          }));
          return;
        }
        st.lastRead = read;
        if (newer(snapshot, st.remote)) st.remote = snapshot;
      } catch (error) {
        background.emit(() => ({ key, operation: "read", outcome: "failed", detail: errorDetail(error) }));
      } finally {
        st.refreshStartedAt = null;
      }
    });
  };

  const sameAsRemote = (snapshot: BreakerSnapshot, remote: BreakerSnapshot | undefined): boolean => {
    if (!remote) return false;
    if (snapshot.state === "open")
      return remote.state === "open" && (remote.openUntil ?? 0) >= (snapshot.openUntil ?? 0) - OPEN_SLACK_MS;
    return remote.state === "closed" && remote.gen >= snapshot.gen;
  };

  /** Whether `snapshot` may be written now (counted against the budget and the interval if so). */
  const admit = (key: string, st: KeyState, snapshot: BreakerSnapshot): boolean => {
    const now = clock.now();
    if (sameAsRemote(snapshot, st.remote)) {
      st.pending = undefined;
      background.emit(() => ({
        key,
        operation: "write",
        outcome: "skipped",
        detail: `remote already ${snapshot.state}`,
      }));
      return false;
    }
    if (now - st.lastPublishAt < minPublishInterval) {
      st.pending = snapshot; // written when the interval ends (see `writeHeld`)
      if (!st.waiting) {
        st.waiting = true;
        background.run(key, () => writeHeld(key, st));
      }
      return false;
    }
    const day = Math.floor(now / DAY_MS);
    if (day !== budgetDay) {
      budgetDay = day;
      writesToday = 0;
    }
    if (writeBudget !== undefined && writesToday >= writeBudget) {
      background.emit(() => ({
        key,
        operation: "budget",
        outcome: "skipped",
        detail: `daily write budget of ${writeBudget} used`,
      }));
      return false;
    }
    writesToday++;
    st.lastPublishAt = now;
    st.pending = undefined;
    st.sent = snapshot;
    return true;
  };

  /**
   * One write of an admitted snapshot: a new transition's after a jitter; a
   * held one's at once (the interval it waited out began at a jittered
   * write). Either may be tried once more in the same task; a retry may not.
   */
  const write = async (
    key: string,
    st: KeyState,
    snapshot: BreakerSnapshot,
    kind: "new" | "held" | "retry",
  ): Promise<void> => {
    if (kind === "new") await sleep(idle, random() * publishJitter);
    const now = clock.now();
    // The interval runs from the attempt itself: two writes of one isolate are never closer.
    st.lastPublishAt = Math.max(st.lastPublishAt, now);
    const shared = toShared(snapshot);
    const ttl =
      snapshot.state === "open" ? Math.max(60, Math.ceil(((snapshot.openUntil ?? now) - now) / 1000) + 60) : 86_400;
    try {
      await namespace.put(kvKey(key), "", { metadata: shared, expirationTtl: ttl });
      const written = fromShared(shared);
      if (written && newer(written, st.remote)) st.remote = written;
      background.emit(() => ({ key, operation: "write", outcome: "ok", detail: snapshot.state }));
    } catch (error) {
      // A 429 means another isolate is writing this key; theirs may say less
      // (a shorter open). This one is tried once more when the interval
      // allows, in this same task (so inside the refused write's own
      // `waitUntil`: the isolate may see no other request), unless a newer
      // transition replaced it; a second refusal is left to the other
      // writers (isolates that trip together would otherwise keep colliding).
      // The error's text is read only for a listener: a 429 is a skip, anything else a failure.
      background.emit(() => {
        const detail = errorDetail(error);
        return { key, operation: "write", outcome: /429|too many/i.test(detail) ? "skipped" : "failed", detail };
      });
      if (kind === "retry") return;
      await sleep(idle, minPublishInterval);
      // Not over a later change: one published here since (even one skipped as shared already), or one read.
      const replaced = st.latest !== snapshot || st.pending || (st.remote !== undefined && newer(st.remote, snapshot));
      if (st.sent === snapshot && !replaced && admit(key, st, snapshot)) await write(key, st, snapshot, "retry");
    }
  };

  /**
   * Writes what the interval held back once it ends, in the task of the
   * request that held it (inside its `waitUntil`): waiting for this isolate's
   * next call to the host could leave a trip unshared for ever. Only the
   * latest transition held is written.
   */
  const writeHeld = async (key: string, st: KeyState): Promise<void> => {
    // A write that lands during the wait (a jittered one) moves the interval
    // on: wait again here rather than hand the write to a later request.
    do {
      setBack(st, clock.now()); // a clock set back during the wait moves the interval back with it
      await sleep(idle, st.lastPublishAt + minPublishInterval - clock.now());
    } while (st.pending && clock.now() - st.lastPublishAt < minPublishInterval);
    st.waiting = false;
    const held = st.pending;
    if (held && admit(key, st, held)) await write(key, st, held, "held");
  };

  const publish = (key: string, snapshot: BreakerSnapshot): void => {
    // Half-open is local: only open and closed (probe results) are broadcast.
    if (snapshot.state === "half_open") return;
    const st = stateOf(key, clock.now());
    st.latest = snapshot;
    if (admit(key, st, snapshot)) background.run(key, () => write(key, st, snapshot, "new"));
  };

  return {
    name: "kv",
    publish,
    // Read on the store's own clock, not the layer's `now`: a store given a
    // clock of its own paces itself on that one clock (see store-clock.ts).
    peek(key) {
      const now = clock.now();
      const st = stateOf(key, now);
      refresh(key, st, now);
      // A backstop, should the held write's own wait not have run on (its `waitUntil` refused or cut short).
      const held = st.pending;
      if (held && now - st.lastPublishAt >= minPublishInterval && admit(key, st, held)) {
        background.run(key, () => write(key, st, held, "held"));
      }
      return st.remote;
    },
    bindContext: (ctx) => background.bind(ctx),
    connect: (listener, listening) => background.connect(listener, listening),
    configure: (_policy, layerClock) => adopt(layerClock),
  };
}
