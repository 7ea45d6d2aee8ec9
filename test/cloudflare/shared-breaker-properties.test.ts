/**
 * Attacked: per-host breakers shared between 2–5 layers ("isolates") through one store (memoryStore,
 * kvStore over the fake KV with per-location staleness, durableObjectStore over the fake namespace),
 * on one TestClock. 300 seeded scenarios: breaker options, an upstream that goes down and comes back
 * (503, resets, hangs cut by `timeout.attempt`, 503 with a long Retry-After), calls and bursts on random
 * isolates, retries, store failures (KV get/put throwing or slow, DO fetch failing), health() checks.
 * Invariants: calls settle once, no timer left, no unhandled rejection; probe bounds (per isolate, and
 * across isolates with a working Durable Object); an open elsewhere is respected once the store was read
 * as documented; a healed host is used again; health() agrees with breaker events; store failures never
 * fail a call and raise a store event; KV write spacing and read rates. Replay one seed with DEBUG_SEED=n.
 *
 * Defects found (each an `it.fails` on the code it was written against):
 * 1. A retry is not sent to a host another layer opened during its backoff (memoryStore: "a host one
 *    opened is open for all"; "when the breaker opens during a call, the call settles with the response
 *    it has"): the retry is sent, the store is read only when a call starts.
 * 2. With durableObjectStore, an isolate that was idle since before another isolate's trip sends its next
 *    call(s) to the host, however long after the trip ("staleness ≤ `flushInterval` + `verdictTtl`, or at
 *    once on a local trip", cloudflare.md): its expired closed verdict is used while the new one is read.
 * 1 is fixed (a retry reads the store again before it leaves). 2 is the store contract at work (a store is
 * read without making a request wait): cloudflare.md now says so, and the test below checks that wording.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { durableObjectStore, type KvNamespaceLike, kvStore } from "../../src/cloudflare/index.ts";
import {
  type BreakerEvent,
  type BreakerStoreLike,
  CircuitOpenError,
  createResilience,
  memoryStore,
  type Resilience,
  type StoreEvent,
} from "../../src/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";
import { doIsolate } from "./do-isolate.ts";
import { FakeNamespace } from "./fake-durable-object.ts";
import { FakeKv } from "./fake-kv.ts";

const HOST = "api.example";
const URL_ = `https://${HOST}/v1/job`;
const T0 = 1_000_000;

// TestClock yields real `setTimeout(0)` turns between timers (≥ 1 ms each in Node): 300 scenarios
// would take minutes. While a scenario runs, a zero-delay setTimeout is a setImmediate: still a real
// macrotask turn, as docs/testing.md asks ("yields real turns"), only without Node's 1 ms clamp.
const realSetTimeout = globalThis.setTimeout;
function fastTurns() {
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (!ms) {
      const h = setImmediate(fn, ...args);
      return { unref: () => h, ref: () => h, hasRef: () => true, [Symbol.toPrimitive]: () => 0 } as never;
    }
    return realSetTimeout(fn, ms, ...args);
  }) as typeof setTimeout;
}
function realTurns() {
  globalThis.setTimeout = realSetTimeout;
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

type Kind = "memory" | "kv" | "do";
type Mode = "up" | "503" | "reset" | "hang" | "hold";

interface Layer {
  index: number;
  resilience: Resilience;
  tasks: Promise<unknown>[];
  breaker: BreakerEvent[];
  store: StoreEvent[];
  /** Event-derived state of the host's breaker. */
  state: "closed" | "open" | "half_open";
  openUntil: number | null;
  /** Sequence number (program order) of the last breaker event. */
  sent: number;
  probes: { start: number; end: number; seq: number; endSeq: number }[];
  reads: number;
  injectedFailures: number;
  calls: CallRecord[];
}

interface CallRecord {
  layer: number;
  seq: number;
  at: number;
  settled: number;
  result?: number | string;
  attempts: { mode: Mode; at: number; ok: boolean }[];
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}
const between = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

interface Outcome {
  violations: string[];
  kind: Kind;
  known: Set<number>;
}

async function scenario(seed: number, forceKind?: Kind): Promise<Outcome> {
  const r = seededRandom(seed);
  const kind: Kind = forceKind ?? pick(r, ["memory", "kv", "do"] as const);
  const n = between(r, 2, 5);
  const clock = new TestClock(T0);
  const violations: string[] = [];
  const fail = (msg: string) => violations.push(`t=${clock.now() - T0} ${msg}`);
  let seq = 0;

  const scale = kind === "kv" ? 6 : 1;
  const useRate = r() < 0.4;
  const breaker = {
    failureThreshold: between(r, 1, 5),
    failureRate: useRate ? 0.5 : 1,
    minimumCalls: between(r, 4, 10),
    timeout: between(r, 1, 10) * 1_000 * scale,
    halfOpenMaxCalls: between(r, 1, 3),
    successThreshold: between(r, 1, 2),
    probeTimeout: between(r, 1, 6) * 1_000,
  };
  const attemptTimeout = between(r, 3, 20) * 100;
  const retry = r() < 0.5 ? (false as const) : { maxAttempts: 2, initialDelay: 100, maxDelay: 200 };
  const holdSeconds = between(r, 5, 60) * scale;

  // Store failures (toggled during the run).
  const faults = { readFail: false, readSlow: 0, putFail: false, doFail: false };
  const propagation = between(r, 0, 5) * 1_000;
  const kv = new FakeKv(clock, { propagation });
  const kvOpts = {
    refreshInterval: between(r, 1, 30) * 1_000,
    minPublishInterval: between(r, 1, 5) * 1_000,
    publishJitter: between(r, 0, 1_000),
  };
  const ns = new FakeNamespace(clock);
  const doOpts = { flushInterval: between(r, 1, 5) * 1_000, verdictTtl: between(r, 1, 5) * 1_000 };
  const shared = memoryStore();
  const faultsSeen = { any: false };
  let doFailed = false;

  // The upstream: a schedule of modes.
  let mode: Mode = "up";
  const inflight = new Set<{ layer: number }>();

  const layers: Layer[] = [];
  for (let i = 0; i < n; i++) {
    const tasks: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void tasks.push(p) };
    let store: BreakerStoreLike;
    if (kind === "memory") store = shared;
    else if (kind === "kv") {
      const loc = kv.location();
      const wrapped: KvNamespaceLike = {
        getWithMetadata: async (key, options) => {
          layer.reads++;
          if (faults.readSlow > 0) await new Promise<void>((res) => clock.setTimer(res, faults.readSlow));
          if (faults.readFail) {
            layer.injectedFailures++;
            throw new Error("injected KV GET failure");
          }
          return loc.getWithMetadata(key, options as never);
        },
        put: async (key, value, options) => {
          if (faults.putFail) {
            layer.injectedFailures++;
            throw new Error("injected KV PUT failure");
          }
          return loc.put(key, value, options);
        },
      } as KvNamespaceLike;
      store = kvStore(wrapped, { ctx, clock, random: seededRandom(seed * 31 + i), ...kvOpts });
    } else {
      const mine = {
        idFromName: (name: string) => ns.idFromName(name),
        get: (id: never) => {
          const stub = ns.get(id);
          return {
            fetch: async (input: string, init?: RequestInit) => {
              if (faults.doFail) {
                doFailed = true;
                layer.injectedFailures++;
                throw new Error("injected DO fetch failure");
              }
              return stub.fetch(input, init);
            },
          };
        },
      };
      store = durableObjectStore(mine as never, { ctx, clock, ...doOpts });
    }
    const resilience = createResilience({
      clock,
      random: seededRandom(seed * 7 + i),
      store,
      retry,
      budget: false,
      timeout: { attempt: attemptTimeout },
      breaker,
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
        const id = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get("x-call");
        const call = byId.get(Number(id));
        const now = clock.now();
        // Invariant 3 (local): "OPEN fails fast with CircuitOpenError and sends nothing." (breakers.md)
        if (layer.state === "open" && layer.openUntil !== null && layer.openUntil > now) {
          fail(`layer ${i} sent while its breaker is open until ${layer.openUntil - T0}`);
        }
        const probe = layer.state !== "closed";
        const p = { start: now, end: Number.POSITIVE_INFINITY, seq: seq++, endSeq: Number.POSITIVE_INFINITY };
        if (probe) layer.probes.push(p);
        const m = mode;
        const rec = { mode: m, at: now, ok: m === "up" };
        call?.attempts.push(rec);
        sentLog.push({ layer: i, at: now, seq: seq++, call: call?.seq ?? -1 });
        const token = { layer: i };
        inflight.add(token);
        try {
          if (m === "up") return new Response("ok");
          if (m === "503") return new Response(null, { status: 503 });
          if (m === "hold") return new Response(null, { status: 503, headers: { "retry-after": String(holdSeconds) } });
          if (m === "reset") throw new TypeError("fetch failed: ECONNRESET");
          return await new Promise<Response>((_, reject) => {
            if (signal?.aborted) reject(signal.reason);
            signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
          });
        } finally {
          p.end = clock.now();
          p.endSeq = seq++;
          inflight.delete(token);
        }
      },
    });
    const layer: Layer = {
      index: i,
      resilience,
      tasks,
      breaker: [],
      store: [],
      state: "closed",
      openUntil: null,
      sent: -1,
      probes: [],
      injectedFailures: 0,
      calls: [],
      reads: 0,
    };
    resilience.on("breaker", (e) => {
      if (e.key !== HOST) return;
      layer.breaker.push(e);
      breakerLog.push({ layer: i, at: clock.now(), seq: seq++, e });
      layer.state = e.to;
      layer.openUntil = e.openUntil;
      layer.sent = seq;
    });
    resilience.on("store", (e) => void layer.store.push(e));
    layers.push(layer);
  }
  const sentLog: { layer: number; at: number; seq: number; call: number }[] = [];
  const breakerLog: { layer: number; at: number; seq: number; e: BreakerEvent }[] = [];
  const byId = new Map<number, CallRecord>();
  const all: Promise<void>[] = [];

  const start = (i: number) => {
    const layer = layers[i] as Layer;
    const rec: CallRecord = { layer: i, seq: seq++, at: clock.now(), settled: 0, attempts: [] };
    layer.calls.push(rec);
    byId.set(rec.seq, rec);
    const p = layer.resilience.fetch(URL_, { headers: { "x-call": String(rec.seq) } }).then(
      async (res) => {
        rec.settled++;
        rec.result = res.status;
        await res.body?.cancel();
      },
      (error: unknown) => {
        rec.settled++;
        rec.result = error instanceof CircuitOpenError ? "open" : String((error as Error)?.name ?? error);
        if (/injected/.test(String((error as Error)?.message)) || /injected/.test(String((error as Error)?.cause))) {
          fail(`layer ${i}: a store failure reached a caller: ${String(error)}`);
        }
      },
    );
    all.push(p);
    return rec;
  };

  // ---- the run ----
  const steps = 45;
  for (let step = 0; step < steps; step++) {
    const roll = r();
    if (roll < 0.12) mode = "up";
    else if (roll < 0.17) mode = "503";
    else if (roll < 0.2) mode = "reset";
    else if (roll < 0.22) mode = "hang";
    else if (roll < 0.23) mode = "hold";
    if (r() < 0.1) {
      faultsSeen.any = true;
      const f = pick(r, ["readFail", "readSlow", "putFail", "doFail", "none"] as const);
      faults.readFail = f === "readFail";
      faults.readSlow = f === "readSlow" ? between(r, 1, 5) * 1_000 : 0;
      faults.putFail = f === "putFail";
      faults.doFail = f === "doFail";
    }
    const burst = r() < 0.2 ? between(r, 2, 6) : between(r, 0, 2);
    for (let k = 0; k < burst; k++) start(between(r, 0, n - 1));
    await clock.advance(between(r, 0, 40) * 100 * scale);
    if (r() < 0.15) healthCheck();
  }
  faults.readFail = false;
  faults.readSlow = 0;
  faults.putFail = false;
  faults.doFail = false;
  mode = "up";
  const healedAt = clock.now();
  // Invariant 4: a healthy host is used again. Longest wait: the hold (24 h cap not reached here),
  // the open time, and the store's staleness.
  const recoverFor = holdSeconds * 1_000 + breaker.timeout + 120_000 * (kind === "kv" ? 2 : 1);
  while (clock.now() - healedAt < recoverFor) {
    for (let i = 0; i < n; i++) start(i);
    await clock.advance(2_000);
  }
  const last = layers.map((l) => start(l.index));
  await clock.run(Promise.all(all));
  for (const [i, rec] of last.entries()) {
    if (rec.result !== 200)
      fail(`layer ${i} still refuses a healthy host ${recoverFor} ms after it healed: ${rec.result}`);
  }
  for (const l of layers) await clock.run(settleTasks(l.tasks));
  // Invariant 1.
  for (const l of layers)
    for (const c of l.calls) if (c.settled !== 1) fail(`layer ${l.index} call ${c.seq} settled ${c.settled} times`);
  if (clock.pending() !== 0) fail(`${clock.pending()} timer(s) left after every call and background task settled`);
  if (process.env.DEBUG_SEED) {
    const lo = Number(process.env.DEBUG_FROM ?? 0) + T0;
    const hi = Number(process.env.DEBUG_TO ?? 1e12) + T0;
    const rows = [
      ...breakerLog.map((b) => ({
        seq: b.seq,
        at: b.at,
        s: `L${b.layer} ${b.e.from}->${b.e.to} until ${(b.e.openUntil ?? T0) - T0} gen ${b.e.gen} ${b.e.reason}`,
      })),
      ...sentLog.map((x) => ({ seq: x.seq, at: x.at, s: `L${x.layer} SEND` })),
      ...layers.flatMap((l) =>
        l.calls.map((c) => ({
          seq: c.seq,
          at: c.at,
          s: `L${l.index} call#${c.seq} -> ${c.result} [${c.attempts.map((a) => a.mode).join(",")}]`,
        })),
      ),
    ]
      .filter((x) => x.at >= lo && x.at <= hi)
      .sort((a, b) => a.seq - b.seq);
    console.log(JSON.stringify({ kind, n, breaker, retry, attemptTimeout, doOpts, kvOpts, propagation }));
    for (const x of rows) console.log(`${(x.at - T0).toFixed(1)} #${x.seq} ${x.s}`);
  }
  const known = new Set<number>();
  const layerCalls = (i: number) => (layers[i] as Layer).calls;
  checkProbes();
  checkSpread();
  checkCalls();
  if (kind === "kv") checkKvRates();
  stats.trips += breakerLog.filter((b) => b.e.to === "open").length;
  stats.probes += layers.reduce((a, l) => a + l.probes.length, 0);
  stats.calls += layers.reduce((a, l) => a + l.calls.length, 0);
  stats.refused += layers.reduce((a, l) => a + l.calls.filter((c) => c.result === "open").length, 0);
  return { violations, kind, known };

  function checkProbes() {
    // Invariant 2. cloudflare.md, durableObjectStore: "exactly `halfOpenMaxCalls` across isolates while the
    // object answers within `timeout` (250 ms); past it, `halfOpenMaxCalls` per isolate"; memory and KV:
    // "`halfOpenMaxCalls` per layer". breakers.md: a probe is "a lease
    // that expires after `probeTimeout`", so a probe counts as in flight until it settles or its lease ends.
    const every = layers.flatMap((l) => l.probes.map((p) => ({ ...p, layer: l.index })));
    for (const p of every) {
      const live = (q: (typeof every)[number]) =>
        q.seq <= p.seq && q.endSeq > p.seq && q.start + breaker.probeTimeout > p.start;
      const mine = every.filter((q) => q.layer === p.layer && live(q)).length;
      if (mine > breaker.halfOpenMaxCalls)
        fail(`layer ${p.layer}: ${mine} probes in flight (halfOpenMaxCalls ${breaker.halfOpenMaxCalls})`);
      if (kind === "do" && !doFailed) {
        const across = every.filter(live).length;
        if (across > breaker.halfOpenMaxCalls)
          fail(
            `${across} probes in flight across isolates at ${p.start - T0} (halfOpenMaxCalls ${breaker.halfOpenMaxCalls})`,
          );
      }
    }
  }

  function checkSpread() {
    // Invariant 3. breakers.md: "a host one opened is open for all" (memoryStore); cloudflare.md staleness:
    // "≤ `flushInterval` (5 s) + `verdictTtl` (5 s), or at once on a local trip" (durableObjectStore);
    // "≤ `refreshInterval` (30 s) + KV propagation (~60 s), + up to 6 s for a trip soon after the
    // isolate's last write" (kvStore; the fake's propagation plus the 30 s `cacheTtl` of each location).
    for (const trip of breakerLog) {
      if (trip.e.to !== "open" || trip.e.from === "open" || trip.e.openUntil === null) continue;
      if (kind !== "memory" && doFailed) continue;
      if (kind === "kv" && faultsSeen.any) continue;
      const until = trip.e.openUntil;
      // The object runs the same `transition`: a trip reported while it is open already (another isolate's
      // earlier trip) is no new opening there, and the object's open time is the one shared.
      if (
        kind === "do" &&
        breakerLog.some((b) => b.seq < trip.seq && b.e.to === "open" && (b.e.openUntil ?? 0) > trip.at)
      )
        continue;
      let lag = 0;
      let from = trip.at;
      if (kind === "do") lag = doOpts.flushInterval + doOpts.verdictTtl;
      if (kind === "kv") {
        const mine = kv.attempts.filter((a) => a.location === trip.layer && a.at >= trip.at && a.state === "open");
        const landed = mine.find((a) => a.accepted);
        if (!landed) continue;
        // Another write landing after it may say less ("the write that won may say less").
        if (kv.attempts.some((a) => a.accepted && a.at > landed.at && a.at < until)) continue;
        from = landed.at;
        lag = 30_000 + propagation + kvOpts.refreshInterval;
      }
      const closedAgain = breakerLog.find((b) => b.seq > trip.seq && b.e.to === "closed");
      for (const s of sentLog) {
        if (s.layer === trip.layer || s.seq < trip.seq || s.at < from + lag || s.at >= until) continue;
        if (closedAgain && s.seq > closedAgain.seq) continue;
        const call = byId.get(s.call);
        // Documented (cloudflare.md, tested below): with durableObjectStore, the first calls after the closed
        // verdict expired go under it while the new verdict is read in the background.
        if (kind === "do" && call && !layerCalls(s.layer).some((c) => c.at >= trip.at && c.at < call.at)) {
          known.add(2);
          continue;
        }
        fail(
          `layer ${s.layer} (call ${s.call}) sent at ${s.at - T0}, though layer ${trip.layer} opened at ${trip.at - T0} until ${until - T0} (lag ${lag})`,
        );
        break;
      }
    }
  }

  function checkCalls() {
    // Invariant 6. cloudflare.md: "A store that errs or is slow is ignored (a `store` event says why) and
    // the request goes on under the local breaker."
    for (const l of layers) {
      for (const c of l.calls) {
        if (c.attempts.length > 0 && c.attempts.every((a) => a.ok) && c.result !== 200)
          fail(`layer ${l.index} call ${c.seq}: upstream answered 200, the caller got ${c.result}`);
      }
      if (l.injectedFailures > 0 && !l.store.some((e) => e.outcome === "failed" || e.outcome === "timeout"))
        fail(`layer ${l.index}: ${l.injectedFailures} store failure(s), no store event says so`);
    }
  }

  function checkKvRates() {
    // Invariant 7. cloudflare.md: "`kvStore` writes only on open, close and probe results, at most once
    // per host per isolate per `minPublishInterval`"; "healthy: 0 writes"; "Reads happen in the
    // background, at most every `refreshInterval`".
    const transitions = breakerLog.length;
    if (transitions === 0 && kv.attempts.length > 0) fail(`${kv.attempts.length} KV writes without any transition`);
    for (const l of layers) {
      const mine = kv.attempts.filter((a) => a.location === l.index);
      for (let k = 1; k < mine.length; k++) {
        const gap = (mine[k] as { at: number }).at - (mine[k - 1] as { at: number }).at;
        if (gap < kvOpts.minPublishInterval) fail(`layer ${l.index}: two KV writes ${gap} ms apart`);
      }
      const span = clock.now() - T0;
      const maxReads = Math.floor(span / kvOpts.refreshInterval) + 1;
      if (l.reads > maxReads)
        fail(`layer ${l.index}: ${l.reads} KV reads in ${span} ms (refresh ${kvOpts.refreshInterval})`);
    }
  }

  function healthCheck() {
    for (const l of layers) {
      const h = l.resilience.health().breakers[HOST];
      if (!h) continue;
      const now = clock.now();
      const derived = l.state === "open" && l.openUntil !== null && l.openUntil <= now ? "half_open" : l.state;
      if (h.state !== derived) fail(`layer ${l.index}: health() says ${h.state}, its breaker events say ${derived}`);
    }
  }
}

async function settleTasks(tasks: Promise<unknown>[]) {
  for (let done = 0; done < tasks.length; ) {
    const end = tasks.length;
    await Promise.allSettled(tasks.slice(done, end));
    done = end;
  }
}

const stats = { trips: 0, probes: 0, calls: 0, refused: 0 };

describe("breakers shared between isolates: one defect each", () => {
  it("a retry is not sent to a host another layer sharing the memoryStore opened during its backoff", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    let sentA = 0;
    const a = createResilience({
      clock,
      store,
      budget: false,
      retry: { maxAttempts: 2, initialDelay: 1_000, jitter: "none" },
      breaker: { failureThreshold: 5, timeout: 30_000 },
      fetch: async () => {
        sentA++;
        return new Response(null, { status: 503 });
      },
    });
    const b = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 30_000 },
      fetch: async () => new Response(null, { status: 503 }),
    });
    const call = a.fetch(URL_); // 503, then a 1 s backoff
    await clock.advance(100);
    expect(sentA).toBe(1);
    expect((await clock.run(b.fetch(URL_))).status).toBe(503); // b opens the host for 30 s, for all
    const opened = b.health().breakers[HOST];
    expect(opened?.state).toBe("open");
    const res = await clock.run(call);
    expect(res.status).toBe(503);
    // breakers.md: "a host one opened is open for all", and "when the breaker opens during a call, the
    // call settles with the response it has": the retry should not reach the host.
    expect(sentA).toBe(1);
  });

  it("with durableObjectStore, an isolate idle since before another's trip sends its first call on its old verdict, and refuses once the refresh it started lands", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeNamespace(clock);
    const a = doIsolate(clock, ns, { failureThreshold: 1, timeout: 60_000 }, URL_);
    const b = doIsolate(clock, ns, { failureThreshold: 5, timeout: 60_000 }, URL_);
    expect(await b.call()).toBe(200); // b's first verdict: closed
    await b.settle();
    await clock.advance(1_000);
    a.answer = () => new Response(null, { status: 503 });
    expect(await a.call()).toBe(503); // a trips: open for 60 s, reported at once
    await a.settle();
    await clock.advance(20_000); // twice flushInterval (5 s) + verdictTtl (5 s)
    b.answer = () => new Response(null, { status: 503 });
    // cloudflare.md: "an isolate idle for longer than that sends the calls it starts before that refresh
    // comes back on what it last saw, and refuses from then on".
    expect(await b.call()).toBe(503);
    await b.settle();
    expect(await b.call()).toBe("CircuitOpenError");
    expect(b.sent).toBe(2);
  });
});

describe("breakers shared between isolates (seeded)", () => {
  it("300 scenarios", async () => {
    fastTurns();
    const failing: string[] = [];
    const knownSeeds: Record<number, number[]> = { 1: [], 2: [] };
    const t = Date.now();
    try {
      const only = process.env.DEBUG_SEED ? Number(process.env.DEBUG_SEED) : 0;
      for (let seed = only || 1; seed <= (only || 300); seed++) {
        const o = await scenario(seed);
        for (const k of o.known) knownSeeds[k]?.push(seed);
        if (o.violations.length) failing.push(`seed ${seed} (${o.kind}): ${o.violations.slice(0, 3).join(" | ")}`);
      }
    } finally {
      realTurns();
    }
    if (process.env.REPORT_FIGURES) console.log(`${Date.now() - t} ms`, stats, JSON.stringify(knownSeeds));
    // The scenarios meet the documented idle-isolate case (seeds listed), so the property run stays honest.
    expect(knownSeeds[2]?.length).toBeGreaterThan(0);
    expect(failing).toEqual([]);
    expect(unhandled).toEqual([]);
  }, 120_000);
});
