/**
 * Outside-in attack on the counting and settling promises under concurrency (a seeded property-style fuzz).
 *
 * Docs:
 * - docs/health-and-events.md: "`request` fires once per call the layer started, when it settles (`status` or
 *   `error`, `attempts`, `durationMs`, `outcome`), and not for one refused before it started (… a signal already
 *   aborted …)"; "`debugInfo()` adds totals (of calls that settled with a response or an error: a call its caller
 *   aborted is left out, as it is from the error rate …), the last 50 failures"; "`retry` fires before each wait";
 *   "A closed breaker shows its live counts"; bulkhead "`active`/`queued`".
 * - docs/breakers.md: "Network errors, attempt timeouts, 5xx and 429 are failures; … a caller's abort is neither,
 *   and so is an attempt cut by `timeout.total`"; "at most `halfOpenMaxCalls` (3) probes in flight"; "OPEN fails fast
 *   with `CircuitOpenError` and sends nothing"; "A probe aborted by its caller, `timeout.total` or a hedge that won
 *   frees its slot at once"; "`bulkhead: { maxConcurrent, maxQueue }` limits attempts in flight per host".
 * - docs/fallback.md: `statistics()` "per endpoint `calls`, `successes` …: a run its caller aborted, or that
 *   `timeout.total` ended, is not counted, nor the endpoint it was waiting on"; hedges "all are counted";
 *   "one passed over for its open breaker is not counted". README.md: `getResilienceInfo(res)` "{ attempts, … }".
 *
 * How: `createResilience`, `getResilienceInfo`, `CircuitOpenError` (root), `fallback` (./fallback), `TestClock`,
 * `recordEvents` (./testing). Two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) scripted per call
 * id and per hit: 200, 503, 429 + `Retry-After: 1`, headers held back on the clock, a reset socket, a hang, a body
 * streamed over clock time. A `fetch` option of our own over the real fetch logs every attempt (status, error, its
 * signal's abort reason) and counts attempts in flight. A mulberry32 PRNG, seeds 11, 23, 37, 41, 59: 40–120 calls
 * per seed launched on the clock over 1.5–3 s (GET, keyed and keyless POSTs, `Request` inputs), callers aborting
 * before the call, right after `fetch()`, at a random clock time (queued, mid-attempt, mid-backoff) or during the
 * body read; `timeout.attempt`/`timeout.total` drawn; a bulkhead with a small queue drawn.
 *
 * Paths: plain calls with retries and a bulkhead; half-open probes (with and without a bulkhead); a two-endpoint
 * chain, hedged or not, with breakers that never open or that open and half-open under the load.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the sixtieth session, so plain `it`):
 * 1. docs/fallback.md statistics(): "a run its caller aborted … is not counted". Observed: with the breakers of
 *    every endpoint of a chain open, `const p = resilience.fetch(url, { signal }); controller.abort(reason)`
 *    rejects with the caller's reason, the `request` event says `aborted` and `debugInfo()` leaves it out, yet the
 *    chain counts a failed run (`overallSuccessRate` 0.5 → 0.333): every endpoint is passed over synchronously
 *    inside `fetch()`, so the run has ended before the abort. With one endpoint open, the same abort is not counted.
 *    Seen in the fuzz first (seed 37, hedged, tight breakers: 1–3 runs more than calls not aborted).
 *
 * Held (plain `it`), for every seed:
 * - Every call settles, body reads too; no unhandled rejection; no timer left on the TestClock.
 * - `request` fires exactly once per call started and never for a pre-aborted one; its `attempts` equal the
 *   attempts the transport was handed and `getResilienceInfo(res).attempts`; `outcome` is `aborted` exactly when the
 *   call rejected with the caller's reason, and a caller's abort that fired before settling always wins.
 * - `retry` events per call numbered 1…n, at least one per attempt after the first, at most one per attempt.
 * - `debugInfo().totals` = calls not aborted / those that failed (error, 5xx, 429); `recentErrors` min(50, failed);
 *   `errorRate` = failed / calls.
 * - The closed breaker's `failureCount` = attempts answered 5xx/429, reset or cut by `timeout.attempt` (not those cut
 *   by the caller or `timeout.total`), `failureRate` = that over the attempts judged; `active`/`queued` back to 0;
 *   in flight never above `maxConcurrent`.
 * - Half-open: no attempt sent while the events say open, at most `halfOpenMaxCalls` probes in flight (plain host
 *   and chain endpoints), a `CircuitOpenError` sent nothing, `breaker` events chain with `gen` ending where
 *   `health()` says, and after the timeout `halfOpenMaxCalls` fresh probes all go out (no slot leaked by aborts).
 * - Chain: each endpoint's `successes` = runs it served with a 2xx; `calls` between the clean runs it was tried in
 *   and all runs it was tried in; `overallSuccessRate` consistent with them; `health().fallback` = `statistics()`.
 *
 * Docs-silent (not pinned):
 * - A chain call aborted right after `fetch()` while one endpoint's breaker is open reports `attempts: 1` in its
 *   `aborted` `request` event (the next endpoint's attempt had started synchronously).
 */
import { afterEach, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { failOnUnhandledRejections } from "../helpers/unhandled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

// Every rejection left unhandled fails the test that left it.
failOnUnhandledRejections();
const hung: Hit[] = [];
afterEach(async () => {
  for (const hit of hung.splice(0)) hit.res.end("late");
});

// ---------------------------------------------------------------------------
// A small deterministic PRNG (mulberry32) and helpers.

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const realTurn = (ms = 2): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const SEEDS = [11, 23, 37, 41, 59];

/** The layer's chain "gen" (the layers below that have one). */
function chainOf(r: Resilience) {
  if (!r.fallback) throw new Error("no fallback stage");
  return r.fallback.chain("gen");
}

// ---------------------------------------------------------------------------
// Scripted answers, per call id (in the path: `/v1/gen/c<id>`) and per hit on that server.

type Answer =
  | { k: "ok" }
  | { k: "503" }
  | { k: "429" }
  | { k: "slow"; ms: number }
  | { k: "reset" }
  | { k: "hang" }
  | { k: "stream"; ms: number };

const idOf = (path: string): number => Number(/\/c(\d+)/.exec(path)?.[1] ?? -1);

function script(server: typeof A, clock: TestClock, plans: Map<number, Answer[]>): void {
  const seen = new Map<number, number>();
  server.on((hit) => {
    const id = idOf(hit.path);
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    const answer = plans.get(id)?.[n] ?? { k: "ok" };
    const json = { "content-type": "application/json" };
    switch (answer.k) {
      case "ok":
        hit.res.writeHead(200, json).end(`{"id":${id}}`);
        return;
      case "503":
        hit.res.writeHead(503, json).end("{}");
        return;
      case "429":
        hit.res.writeHead(429, { ...json, "retry-after": "1" }).end("{}");
        return;
      case "slow":
        clock.setTimer(() => hit.res.end(`{"id":${id}}`), answer.ms);
        hit.res.writeHead(200, json);
        return;
      case "reset":
        hit.req.socket.destroy();
        return;
      case "hang":
        hung.push(hit);
        return;
      case "stream":
        hit.res.writeHead(200, json);
        hit.res.write(`{"id":${id},"pad":"`);
        clock.setTimer(() => hit.res.end(`x"}`), answer.ms);
        return;
    }
  });
}

// ---------------------------------------------------------------------------
// A transport of our own over the real fetch: it logs every attempt the layer hands it.

interface Sent {
  id: number;
  host: string;
  status?: number | undefined;
  error?: string | undefined;
  /** The attempt's signal had aborted when the transport rejected, and with what phase (a TimeoutError's). */
  aborted?: boolean | undefined;
  phase?: string | undefined;
}

function loggingTransport(log: Sent[], peak: Map<string, number>) {
  const inflight = new Map<string, number>();
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const sent: Sent = { id: idOf(url.pathname), host: url.host };
    log.push(sent);
    const now = (inflight.get(url.host) ?? 0) + 1;
    inflight.set(url.host, now);
    peak.set(url.host, Math.max(peak.get(url.host) ?? 0, now));
    try {
      const res = await fetch(input, init);
      sent.status = res.status;
      return res;
    } catch (error) {
      sent.error = (error as Error).name;
      sent.aborted = signal?.aborted === true;
      sent.phase = (signal?.reason as { phase?: string } | undefined)?.phase;
      throw error;
    } finally {
      inflight.set(url.host, (inflight.get(url.host) ?? 1) - 1);
    }
  };
}

/**
 * A transport over `base` that checks, per host, against the `breaker` events: nothing sent while open, at most
 * `h` probes (attempts sent in the current half-open spell) in flight.
 */
function probeGuard(clock: TestClock, h: number, base: ReturnType<typeof loggingTransport>) {
  const state: Record<string, string> = {};
  const probes: Record<string, number> = {};
  const spell: Record<string, number> = {};
  const violations: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const host = new URL(input instanceof Request ? input.url : String(input)).host;
    const key = `${host}#${spell[host] ?? 0}`;
    if (state[host] === "open") violations.push(`${host} sent while open at ${clock.now()}`);
    if (state[host] === "half_open") probes[key] = (probes[key] ?? 0) + 1;
    if ((probes[key] ?? 0) > h) violations.push(`${host}: ${probes[key]} probes in flight at ${clock.now()}`);
    try {
      return await base(input, init);
    } finally {
      if (state[host] === "half_open" && probes[key]) probes[key]--;
    }
  };
  const watch = (r: Resilience): void => {
    r.on("breaker", (e) => {
      state[e.key] = e.to;
      spell[e.key] = (spell[e.key] ?? 0) + 1;
    });
  };
  return { fetch, watch, violations, state };
}

/** What the breaker is documented to count: 5xx, 429, network errors and attempt timeouts; not aborts, not `timeout.total`. */
const failedAttempt = (s: Sent): boolean =>
  s.status !== undefined ? s.status >= 500 || s.status === 429 : !s.aborted || s.phase === "attempt";

// ---------------------------------------------------------------------------
// One call of the fuzz.

type AbortPlan = "none" | "pre" | "sync" | { at: number } | "body";

interface CallPlan {
  id: number;
  startAt: number;
  method: "GET" | "POST";
  keyed: boolean;
  asRequest: boolean;
  abort: AbortPlan;
  reason: Error;
}

interface Outcome {
  plan: CallPlan;
  res?: Response | undefined;
  error?: unknown | undefined;
  status?: number | undefined;
  attempts?: number | undefined;
  endpoint?: string | undefined;
  bodyDone?: boolean | undefined;
  /** When the caller's abort fired before the call settled. */
  abortedAt?: number | undefined;
}

function startCall(r: Resilience, clock: TestClock, url: string, plan: CallPlan, out: Outcome): Promise<void> {
  const ac = new AbortController();
  if (plan.abort === "pre") ac.abort(plan.reason);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (plan.keyed) headers["idempotency-key"] = `key-${plan.id}`;
  const body = plan.method === "POST" ? JSON.stringify({ id: plan.id, prompt: "x".repeat(plan.id % 50) }) : undefined;
  const init: RequestInit = {
    method: plan.method,
    headers,
    signal: ac.signal,
    ...(body === undefined ? {} : { body }),
  };
  let promise: Promise<Response>;
  try {
    promise = plan.asRequest ? r.fetch(new Request(url, init)) : r.fetch(url, init);
  } catch (error) {
    promise = Promise.reject(error);
  }
  if (plan.abort === "sync") ac.abort(plan.reason);
  const abortAt = typeof plan.abort === "object" ? plan.abort.at : undefined;
  const cancel =
    abortAt === undefined
      ? undefined
      : clock.setTimer(() => {
          out.abortedAt = clock.now();
          ac.abort(plan.reason);
        }, abortAt);
  return promise.then(
    async (res) => {
      cancel?.();
      out.res = res;
      out.status = res.status;
      out.attempts = getResilienceInfo(res)?.attempts;
      out.endpoint = getResilienceInfo(res)?.endpoint;
      const stop = plan.abort === "body" ? clock.setTimer(() => ac.abort(plan.reason), 30) : undefined;
      await res.text().then(
        () => {
          out.bodyDone = true;
        },
        (error: unknown) => {
          out.bodyDone = false;
          out.error = error;
        },
      );
      stop?.();
    },
    (error: unknown) => {
      cancel?.();
      out.error = error;
    },
  );
}

function planCalls(rnd: () => number, count: number, spread: number): CallPlan[] {
  return Array.from({ length: count }, (_, id) => {
    const method = rnd() < 0.4 ? "POST" : "GET";
    const roll = rnd();
    const abort: AbortPlan =
      roll < 0.06
        ? "pre"
        : roll < 0.1
          ? "sync"
          : roll < 0.25
            ? { at: int(rnd, 1, 2500) }
            : roll < 0.32
              ? "body"
              : "none";
    return {
      id,
      startAt: int(rnd, 0, spread),
      method,
      keyed: method === "POST" && rnd() < 0.75,
      asRequest: rnd() < 0.35,
      abort,
      reason: new Error(`caller abort ${id}`),
    };
  });
}

/** Drives the clock in small steps, with real turns for the sockets, until every call settled (or gives up). */
async function drive(clock: TestClock, settled: () => boolean, stepMs = 50, maxMs = 20_000): Promise<void> {
  for (let t = 0; t < maxMs && !settled(); t += stepMs) {
    await realTurn(2);
    await clock.advance(stepMs);
  }
}

function answerFor(rnd: () => number, canHang: boolean): Answer {
  const roll = rnd();
  if (roll < 0.35) return { k: "ok" };
  if (roll < 0.5) return { k: "503" };
  if (roll < 0.58) return { k: "429" };
  if (roll < 0.72) return { k: "slow", ms: int(rnd, 50, 1500) };
  if (roll < 0.82) return { k: "reset" };
  if (roll < 0.9 && canHang) return { k: "hang" };
  return { k: "stream", ms: int(rnd, 20, 400) };
}

// ---------------------------------------------------------------------------

describe("many concurrent calls through one layer, seeded: what the docs say is counted is what was done", () => {
  for (const seed of SEEDS) {
    it(`plain calls (bulkhead, retries, Retry-After, resets, timeouts, aborts, Request inputs, keyed POSTs): seed ${seed}`, async () => {
      const rnd = prng(seed);
      const clock = new TestClock();
      const plans = new Map<number, Answer[]>();
      const attemptTimeout = rnd() < 0.6 ? int(rnd, 300, 1200) : undefined;
      const total = rnd() < 0.4 ? int(rnd, 1500, 4000) : undefined;
      const bulkhead = rnd() < 0.7 ? { maxConcurrent: int(rnd, 2, 6), maxQueue: int(rnd, 1, 12) } : undefined;
      const count = int(rnd, 40, 120);
      const calls = planCalls(rnd, count, 2500);
      for (const c of calls)
        plans.set(
          c.id,
          Array.from({ length: 3 }, () => answerFor(rnd, attemptTimeout !== undefined || typeof c.abort === "object")),
        );
      script(A, clock, plans);
      const log: Sent[] = [];
      const peak = new Map<string, number>();
      const r = createResilience({
        clock,
        random: prng(seed + 1000),
        fetch: loggingTransport(log, peak),
        retry: { maxAttempts: int(rnd, 1, 3), initialDelay: 100, maxDelay: 400 },
        budget: { minPerSecond: 1000 },
        timeout: { attempt: attemptTimeout, total },
        breaker: { failureThreshold: 10_000, minimumCalls: 10_000 },
        ...(bulkhead ? { bulkhead } : {}),
      });
      const rec = recordEvents(r);
      const outs: Outcome[] = calls.map((plan) => ({ plan }));
      let done = 0;
      for (const c of calls)
        clock.setTimer(() => {
          void startCall(r, clock, `${A.base}/v1/gen/c${c.id}`, c, outs[c.id] as Outcome).finally(() => done++);
        }, c.startAt);
      await drive(clock, () => done === count);
      const ctx = `seed ${seed} (${count} calls, attempt ${attemptTimeout}, total ${total}, bulkhead ${JSON.stringify(bulkhead)})`;
      // Every promise settled, the body reads too.
      expect(done, `${ctx}: calls settled`).toBe(count);

      const reqs = rec.of("request");
      const sentBy = (id: number) => log.filter((s) => s.id === id);
      let counted = 0;
      let failed = 0;
      for (const o of outs) {
        const { plan } = o;
        const events = reqs.filter((e) => idOf(e.url) === plan.id);
        if (plan.abort === "pre") {
          expect(events, `${ctx}: call ${plan.id} refused before it started fires no request event`).toEqual([]);
          expect(sentBy(plan.id)).toEqual([]);
          continue;
        }
        expect(events.length, `${ctx}: call ${plan.id} fires request exactly once`).toBe(1);
        const event = events[0] as (typeof reqs)[number];
        expect(event.attempts, `${ctx}: call ${plan.id} attempts = what the transport was handed`).toBe(
          sentBy(plan.id).length,
        );
        if (o.abortedAt !== undefined)
          expect(event.outcome, `${ctx}: call ${plan.id} aborted at ${o.abortedAt}: ${String(o.error)}`).toBe(
            "aborted",
          );
        if (o.res) {
          expect(event.outcome).toBe("response");
          expect(event.status).toBe(o.status);
          expect(o.attempts, `${ctx}: call ${plan.id} getResilienceInfo attempts`).toBe(event.attempts);
        } else {
          const byCaller = o.error === plan.reason;
          expect(event.outcome, `${ctx}: call ${plan.id} ${String(o.error)}`).toBe(byCaller ? "aborted" : "error");
        }
        const retries = rec.of("retry").filter((e) => idOf(e.url) === plan.id);
        expect(
          retries.map((e) => e.attempt),
          `${ctx}: call ${plan.id} retry events before each wait, numbered`,
        ).toEqual(retries.map((_, i) => i + 1));
        const sends = sentBy(plan.id).length;
        expect(
          retries.length,
          `${ctx}: call ${plan.id} a retry event per attempt after the first`,
        ).toBeGreaterThanOrEqual(sends - 1);
        expect(retries.length, `${ctx}: call ${plan.id}`).toBeLessThanOrEqual(Math.max(sends, 1));
        if (event.outcome !== "aborted") {
          counted++;
          if (event.outcome === "error" || (event.status ?? 0) >= 500 || event.status === 429) failed++;
        }
      }
      const info = r.debugInfo();
      expect(info.totals, `${ctx}: debugInfo totals`).toMatchObject({ calls: counted, failures: failed });
      expect(info.recentErrors.length, `${ctx}: the last 50 failures`).toBe(Math.min(50, failed));
      const health = r.health();
      expect(health.errorRate, `${ctx}: errorRate`).toBeCloseTo(counted ? failed / counted : 0, 9);
      const host = health.breakers[A.host];
      const breakerFails = log.filter(failedAttempt).length;
      // The window's attempts: every one sent, less those a caller's abort or `timeout.total` cut.
      const judged = log.filter((x) => x.status !== undefined || !x.aborted || x.phase === "attempt").length;
      expect(host?.failureRate ?? 0, `${ctx}: failureRate over ${judged} attempts`).toBeCloseTo(
        judged ? breakerFails / judged : 0,
        9,
      );
      expect(host?.state).toBe("closed");
      expect({ failureCount: host?.failureCount, active: host?.active ?? 0, queued: host?.queued ?? 0 }, ctx).toEqual({
        failureCount: breakerFails,
        active: 0,
        queued: 0,
      });
      if (bulkhead)
        expect(peak.get(A.host) ?? 0, `${ctx}: in flight at most maxConcurrent`).toBeLessThanOrEqual(
          bulkhead.maxConcurrent,
        );
      await clock.advance(5_000);
      expect(clock.pending(), `${ctx}: no timer left on the clock`).toBe(0);
    });
  }
});

describe("half-open probes under concurrency, seeded (docs/breakers.md)", () => {
  for (const seed of SEEDS) {
    it(`at most halfOpenMaxCalls probes in flight, none sent while open, no slot leaked: seed ${seed}`, async () => {
      const rnd = prng(seed * 7);
      const clock = new TestClock();
      const plans = new Map<number, Answer[]>();
      const h = int(rnd, 1, 3);
      const s = int(rnd, 1, 3);
      const bulkhead = rnd() < 0.5 ? { maxConcurrent: int(rnd, 2, 5), maxQueue: int(rnd, 1, 8) } : undefined;
      const count = int(rnd, 40, 90);
      const calls = planCalls(rnd, count, 3000).map((c) => ({ ...c, id: c.id + 2, startAt: c.startAt + 1000 }));
      plans.set(0, [{ k: "503" }]);
      plans.set(1, [{ k: "503" }]);
      for (const c of calls) {
        const roll = rnd();
        const first: Answer =
          roll < 0.5
            ? { k: "slow", ms: int(rnd, 20, 400) }
            : roll < 0.6
              ? { k: "reset" }
              : roll < 0.7
                ? { k: "503" }
                : { k: "ok" };
        plans.set(c.id, [first]);
      }
      script(A, clock, plans);
      const log: Sent[] = [];
      const peak = new Map<string, number>();
      const { fetch, watch, violations, state } = probeGuard(clock, h, loggingTransport(log, peak));
      const r = createResilience({
        clock,
        random: prng(seed),
        retry: false,
        breaker: { failureThreshold: 2, timeout: 1000, halfOpenMaxCalls: h, successThreshold: s },
        ...(bulkhead ? { bulkhead } : {}),
        fetch,
      });
      const rec = recordEvents(r);
      watch(r);
      for (const id of [0, 1]) await r.fetch(`${A.base}/v1/gen/c${id}`).then((res) => res.text());
      expect(state[A.host]).toBe("open");
      const outs = calls.map((plan) => ({ plan }) as Outcome);
      let done = 0;
      for (const [i, c] of calls.entries())
        clock.setTimer(() => {
          void startCall(r, clock, `${A.base}/v1/gen/c${c.id}`, c, outs[i] as Outcome).finally(() => done++);
        }, c.startAt);
      await drive(clock, () => done === count, 25);
      const ctx = `seed ${seed} (h ${h}, s ${s}, ${count} calls, bulkhead ${JSON.stringify(bulkhead)})`;
      expect(done, `${ctx}: calls settled`).toBe(count);
      expect(violations, ctx).toEqual([]);
      // Every CircuitOpenError went nowhere; every breaker change chains from the last one.
      for (const o of outs)
        if (o.error instanceof CircuitOpenError)
          expect(
            log.filter((x) => x.id === o.plan.id),
            ctx,
          ).toEqual([]);
      const changes = rec.of("breaker");
      changes.forEach((e, i) => {
        if (i > 0) expect(e.from, `${ctx}: change ${i}`).toBe(changes[i - 1]?.to);
      });
      const host = r.health().breakers[A.host];
      expect({ active: host?.active ?? 0, queued: host?.queued ?? 0, gen: host?.gen }, ctx).toEqual({
        active: 0,
        queued: 0,
        gen: changes.at(-1)?.gen,
      });
      // No probe slot leaked: after the breaker's timeout, h fresh calls held by the server all reach it.
      await clock.advance(1_000);
      const before = log.length;
      const fresh = Array.from({ length: h }, (_, i) => {
        plans.set(5000 + i, [{ k: "slow", ms: 100 }]);
        return r.fetch(`${A.base}/v1/gen/c${5000 + i}`).then((res) => res.text());
      });
      await drive(clock, () => log.length - before === h, 10, 300);
      expect(log.length - before, `${ctx}: fresh probes sent after the timeout`).toBe(h);
      await clock.run(Promise.all(fresh));
      await clock.advance(60_000);
      expect(clock.pending(), `${ctx}: no timer left`).toBe(0);
    });
  }
});

describe("a hedged fallback chain under concurrency, seeded (docs/fallback.md statistics())", () => {
  for (const seed of SEEDS) {
    it(`statistics() add up to the runs made, request fires once per call: seed ${seed}`, async () => {
      const rnd = prng(seed * 13);
      const clock = new TestClock();
      const plansA = new Map<number, Answer[]>();
      const plansB = new Map<number, Answer[]>();
      const attemptTimeout = rnd() < 0.5 ? int(rnd, 400, 1200) : undefined;
      const total = rnd() < 0.4 ? int(rnd, 1500, 4000) : undefined;
      const hedge = rnd() < 0.7 ? { delay: int(rnd, 50, 400) } : undefined;
      const count = int(rnd, 40, 120);
      const calls = planCalls(rnd, count, 1500);
      for (const c of calls) {
        const canHang = attemptTimeout !== undefined || typeof c.abort === "object";
        plansA.set(
          c.id,
          Array.from({ length: 2 }, () => answerFor(rnd, canHang)),
        );
        plansB.set(
          c.id,
          Array.from({ length: 2 }, () => answerFor(rnd, canHang)),
        );
      }
      script(A, clock, plansA);
      script(B, clock, plansB);
      const log: Sent[] = [];
      // Half the seeds: breakers that open, so endpoint a goes open and half-open under the chain's load.
      const h = int(rnd, 1, 2);
      const tight = rnd() < 0.5;
      const { fetch, watch, violations } = probeGuard(clock, h, loggingTransport(log, new Map()));
      const r = createResilience({
        clock,
        random: prng(seed + 1),
        fetch,
        retry: { maxAttempts: 2, initialDelay: 100, maxDelay: 200 },
        budget: { minPerSecond: 1000 },
        timeout: { attempt: attemptTimeout, total },
        breaker: tight
          ? { failureThreshold: 3, timeout: 300, halfOpenMaxCalls: h, successThreshold: 2 }
          : { failureThreshold: 10_000, minimumCalls: 10_000 },
        fallback: fallback([
          {
            name: "gen",
            ...(hedge ? { hedge } : {}),
            endpoints: [
              { name: "a", url: `${A.base}/v1/gen` },
              { name: "b", url: `${B.base}/v1/gen` },
            ],
          },
        ]),
      });
      const rec = recordEvents(r);
      watch(r);
      const outs = calls.map((plan) => ({ plan }) as Outcome);
      let done = 0;
      for (const c of calls)
        clock.setTimer(() => {
          void startCall(r, clock, `${A.base}/v1/gen/c${c.id}`, c, outs[c.id] as Outcome).finally(() => done++);
        }, c.startAt);
      await drive(clock, () => done === count);
      const ctx = `seed ${seed} (${count} calls, hedge ${hedge?.delay}, attempt ${attemptTimeout}, total ${total}, tight ${tight} h ${h})`;
      expect(done, `${ctx}: calls settled`).toBe(count);
      expect(violations, ctx).toEqual([]);
      for (const b of Object.values(r.health().breakers)) expect([b.active ?? 0, b.queued ?? 0], ctx).toEqual([0, 0]);
      const reqs = rec.of("request");
      const hosts = { a: A.host, b: B.host } as const;
      const lower = { a: 0, b: 0 };
      const upper = { a: 0, b: 0 };
      const served = { a: 0, b: 0 };
      let clean = 0;
      let notAborted = 0;
      // Defect 1 below: a call aborted right after `fetch()` returned, when every endpoint's breaker was open,
      // has had its run counted already. Allowed for here, pinned on its own.
      let syncAborted = 0;
      for (const o of outs) {
        const { plan } = o;
        const events = reqs.filter((e) => idOf(e.url) === plan.id);
        const sent = log.filter((x) => x.id === plan.id);
        if (plan.abort === "pre") {
          expect(events, `${ctx}: call ${plan.id}`).toEqual([]);
          continue;
        }
        expect(events.length, `${ctx}: call ${plan.id} fires request exactly once`).toBe(1);
        const event = events[0] as (typeof reqs)[number];
        expect(event.attempts, `${ctx}: call ${plan.id} attempts across endpoints`).toBe(sent.length);
        if (o.res) expect(o.attempts, `${ctx}: call ${plan.id}`).toBe(event.attempts);
        if (o.abortedAt !== undefined)
          expect(
            { outcome: event.outcome, error: o.res ? `response ${o.status}` : String(o.error) },
            `${ctx}: call ${plan.id} aborted by its caller at ${o.abortedAt} (started ${plan.startAt}) settles with the caller's reason`,
          ).toEqual({ outcome: "aborted", error: String(plan.reason) });
        const isClean = event.outcome === "response" || (event.outcome === "error" && event.error !== "TimeoutError");
        if (event.outcome !== "aborted") notAborted++;
        else if (plan.abort === "sync") syncAborted++;
        if (isClean) clean++;
        for (const e of ["a", "b"] as const) {
          const tried = sent.some((x) => x.host === hosts[e]);
          if (tried && isClean) lower[e]++;
          if (tried) upper[e]++;
          if (o.res?.ok && o.endpoint === e) served[e]++;
        }
      }
      const stats = chainOf(r).statistics();
      expect(r.health().fallback.gen, ctx).toEqual(stats);
      for (const e of ["a", "b"] as const) {
        const st = stats.fallbacks[e];
        expect(st?.successes, `${ctx}: ${e} successes = runs it served`).toBe(served[e]);
        expect(st?.calls, `${ctx}: ${e} calls at least the clean runs it was tried in`).toBeGreaterThanOrEqual(
          lower[e],
        );
        expect(st?.calls, `${ctx}: ${e} calls at most the runs it was tried in`).toBeLessThanOrEqual(upper[e]);
      }
      const succ = served.a + served.b;
      if (succ > 0) {
        expect(stats.overallSuccessRate, ctx).toBeLessThanOrEqual(succ / clean + 1e-9);
        expect(stats.overallSuccessRate, ctx).toBeGreaterThanOrEqual(succ / (notAborted + syncAborted) - 1e-9);
      }
      await clock.advance(5_000);
      expect(clock.pending(), `${ctx}: no timer left`).toBe(0);
    });
  }
});

describe("defects, minimal reproductions", () => {
  /** A layer with a two-endpoint chain whose breakers open at the first 503; `open` lists the endpoints to open. */
  async function chainWithOpen(open: Array<"a" | "b">) {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 30_000 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${A.base}/v1/gen` },
            { name: "b", url: `${B.base}/v1/gen` },
          ],
        },
      ]),
    });
    // c0 is served by a; c1 opens a (503), then b too when listed (503), else b serves it.
    A.on((hit) => hit.res.writeHead(hit.path.endsWith("c0") ? 200 : 503).end("{}"));
    B.on((hit) => hit.res.writeHead(open.includes("b") ? 503 : 200).end("{}"));
    for (const id of [0, 1]) await clock.run(r.fetch(`${A.base}/v1/gen/c${id}`)).then((res) => res.text());
    expect(Object.values(r.health().breakers).filter((b) => b.state === "open").length).toBe(open.length);
    return { clock, r };
  }
  /** The runs `statistics()` counts, from its rate (every run so far served or not: successes / rate). */
  const runsOf = (r: Resilience): number => {
    const st = chainOf(r).statistics();
    const successes = Object.values(st.fallbacks).reduce((n, x) => n + x.successes, 0);
    return Math.round(successes / st.overallSuccessRate);
  };
  async function abortRightAfterFetch(clock: TestClock, r: Resilience) {
    const events = recordEvents(r);
    const ac = new AbortController();
    const reason = new Error("the caller left");
    const call = r.fetch(`${A.base}/v1/gen/c3`, { signal: ac.signal });
    ac.abort(reason);
    await expect(clock.run(call)).rejects.toBe(reason);
    expect(events.of("request").map((e) => e.outcome)).toEqual(["aborted"]);
  }

  it("held: with one endpoint open, a call its caller aborts right after fetch() is not counted in statistics()", async () => {
    const { clock, r } = await chainWithOpen(["a"]);
    const before = runsOf(r);
    const totals = r.debugInfo().totals;
    await abortRightAfterFetch(clock, r);
    expect(r.debugInfo().totals).toEqual(totals);
    expect(runsOf(r)).toBe(before);
  });

  it("defect 1 (fixed): with every endpoint's breaker open, a call its caller aborts right after fetch() is not counted in statistics()", async () => {
    const { clock, r } = await chainWithOpen(["a", "b"]);
    const rate = chainOf(r).statistics().overallSuccessRate;
    const totals = r.debugInfo().totals;
    await abortRightAfterFetch(clock, r);
    // health()/debugInfo() leave the aborted call out, as documented …
    expect(r.debugInfo().totals).toEqual(totals);
    // … and so does the chain: overallSuccessRate stays 0.5 (1 of 2); it fell to 0.333 (1 of 3) before the fix.
    expect(rate).toBe(0.5);
    expect(chainOf(r).statistics().overallSuccessRate).toBe(rate);
  });
});
