/**
 * Outside-in attack on "nothing is lost, no promise is left hanging, no
 * timer keeps a process alive" (docs/retry.md: fetch semantics, bodies,
 * timeouts, redirects; docs/fallback.md: released answers, hedges;
 * docs/health-and-events.md: `retry` fires before each wait; SECURITY.md:
 * "Nothing outlives its call"). Public entries only: `createResilience`
 * (fetch, execute, events), `fallback`, `degradation`, `createClient` of
 * ./ky, `resilientProxy` of ./cloudflare (in Node, with an empty env) and
 * the `TestClock`.
 *
 * How: one seeded property (mulberry32; every failure prints its seed and
 * scenario; `SETTLE_SEEDS` / `SETTLE_BASE` widen it). Each scenario draws a
 * path (a URL, a `Request` with a body, a `Request` with a stream body, a
 * 2–3 endpoint chain with `validate`, the same hedged at 0/50/200/2000 ms,
 * degradation at `low` rewriting a POSTed JSON body, ky, `execute(fn)`, the
 * Worker proxy), a per-endpoint script of upstream answers from real
 * servers on 127.0.0.1 (200, a 200 that fails `validate`, 503 with and
 * without Retry-After, 429, 302 and cross-origin 307, a server that never
 * answers, headers then a stalled body as 200 or 503, a reset socket),
 * retry numbers and jitter, `maxRetryAfter`, `timeout.attempt` /
 * `timeout.total`, breaker thresholds or none, a bulkhead, and a caller
 * abort before the call, when the nth attempt reaches the server, during a
 * backoff, or during the caller's body read. The layer's clock is a
 * `TestClock` seen through a wrapper that knows which of its timers are
 * armed; the driver lets real I/O finish (every transport call that can
 * answer has answered) before moving the clock to its next timer, with
 * bounded steps. Per scenario: the call settles; an abort that came before
 * it settled rejects with the signal's reason (identity), anything else
 * resolves or rejects with a `ResilienceError` / `TypeError`; no timer is
 * armed once it settled and the caller read or cancelled the body; no
 * listener the layer added stays on the caller's signal (undici's own
 * `Request` listener, which fetch itself leaves there, is told apart by its
 * stack; a `once` listener counts as gone after the abort fired); a body
 * read the caller aborts rejects with its reason; every exchange that hung
 * or stalled is closed by the client within 3 s (dropped bodies are drained
 * for at most 1 s of real time); `retry` events equal the retries each
 * endpoint made (one more allowed only when the call ended during a wait:
 * an abort, a deadline, or in a hedge the other endpoint winning, since the
 * event fires before the wait). Then a real-clock spot check: a child
 * `node` process makes failing calls with 30 s backoffs (connection
 * refused, a 503 whose body stalls), aborts them, times out a hung call,
 * and must exit on its own.
 *
 * Defects pinned (`it.fails` asserting the promise): none. 2,400 scenarios
 * (seeds 1–1200 and 777777–778976) and the default 400 found no call left
 * pending, no timer armed, no listener left, no exchange left open and no
 * miscounted `retry` event.
 *
 * Held (plain `it`): the property above on every path; the child process
 * prints the abort reasons and a `TimeoutError` and exits 0 in about 1 s
 * (the 1 s drain timer of the stalled 503 is unref'd).
 *
 * Written down, not a defect: `execute(fn)` emits no `retry` event (the
 * event is documented with a breaker key and URL, a `resilience.fetch`
 * thing), so its retries are not counted (changed in the thirty-fourth
 * session: it emits one per wait, test/http/execute.test.ts); a hedged chain's endpoint that
 * was in its backoff when another endpoint won has announced a `retry`
 * that is never sent ("`retry` fires before each wait"); an `init.body`
 * stream's source is not cancelled by an abort (that is the platform's
 * fetch); undici's `Request` leaves its own listener on a signal it was
 * given (plain fetch does the same).
 */

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import type { StandardSchemaLike } from "../../src/index.ts";
import { type Clock, createResilience, isResilienceError, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/clock.ts";
import { seededRandom } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

// ---------------------------------------------------------------- PRNG

/** `seededRandom` (mulberry32, from the testing kit) with integer and pick helpers. */
function prng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T } {
  const next = seededRandom(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)] as never,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------- upstreams

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
const SERVERS = [A, B, C];
serveDuringFile(A, B, C);

/**
 * What one exchange does, by its place in the endpoint's script:
 * ok / bad (200 JSON, `{ok:true}` / `{ok:false}`), 503, 503r (Retry-After: 1),
 * 429 (Retry-After: 2), 302 (same origin) / 307x (another origin) to an `ok`,
 * hang (never answers), stall (200 headers and a first chunk, then nothing),
 * s503 (the same with a 503), reset (the socket destroyed).
 */
type Beh = "ok" | "bad" | "503" | "503r" | "429" | "302" | "307x" | "hang" | "stall" | "s503" | "reset";

interface Exchange {
  scenario: number;
  beh: Beh;
  /** A redirect's target, not an attempt of its own. */
  hop: boolean;
  endpoint: number;
  hit: Hit;
}

/** Per scenario: the exchanges served, and a hook run when an attempt arrives. */
const exchanges = new Map<number, Exchange[]>();
const onAttempt = new Map<number, (n: number) => void>();

function install(): void {
  SERVERS.forEach((server, si) => {
    server.on((hit) => {
      // /x/<scenario>/<endpoint or r<endpoint>>/<script>/…
      const [, x, sid, ep, script] = hit.path.split("?")[0]?.split("/") ?? [];
      if (x !== "x" || sid === undefined || ep === undefined || script === undefined) {
        hit.res.end("ok");
        return;
      }
      const scenario = Number(sid);
      const list = exchanges.get(scenario) ?? [];
      exchanges.set(scenario, list);
      const hop = ep.startsWith("r");
      const endpoint = Number(hop ? ep.slice(1) : ep);
      const steps = script.split(",") as Beh[];
      const done = list.filter((e) => !e.hop && e.endpoint === endpoint).length;
      const beh: Beh = hop ? "ok" : (steps[Math.min(done, steps.length - 1)] as Beh);
      list.push({ scenario, beh, hop, endpoint, hit });
      if (!hop) onAttempt.get(scenario)?.(list.filter((e) => !e.hop).length);
      serve(hit, beh, si, scenario, endpoint);
    });
  });
}

function serve(hit: Hit, beh: Beh, si: number, scenario: number, endpoint: number): void {
  const { res } = hit;
  res.on("error", () => {});
  hit.req.socket.on("error", () => {});
  const json = { "content-type": "application/json" };
  switch (beh) {
    case "ok":
      res.writeHead(200, json).end('{"ok":true}');
      return;
    case "bad":
      res.writeHead(200, json).end('{"ok":false}');
      return;
    case "503":
      res.writeHead(503).end("down");
      return;
    case "503r":
      res.writeHead(503, { "retry-after": "1" }).end("down");
      return;
    case "429":
      res.writeHead(429, { "retry-after": "2" }).end("slow down");
      return;
    case "302":
      res.writeHead(302, { location: `/x/${scenario}/r${endpoint}/ok` }).end("moved");
      return;
    case "307x": {
      const other = SERVERS[(si + 1) % SERVERS.length] as (typeof SERVERS)[number];
      res.writeHead(307, { location: `${other.base}/x/${scenario}/r${endpoint}/ok` }).end("moved");
      return;
    }
    case "hang":
      return;
    case "stall":
      res.writeHead(200, json);
      res.write('{"ok":');
      return;
    case "s503":
      res.writeHead(503);
      res.write("dow");
      return;
    case "reset":
      hit.req.socket.destroy();
      return;
  }
}

// ---------------------------------------------------------------- instruments

/** A clock over a TestClock that knows which of its timers are still armed, and when they are due. */
function trackedClock(tc: TestClock): { tc: TestClock; clock: Clock; live(): number[]; set(): number } {
  const armed = new Set<{ at: number }>();
  let set = 0;
  return {
    tc,
    clock: {
      now: () => tc.now(),
      setTimer(callback, ms) {
        set++;
        const entry = { at: tc.now() + (ms > 0 ? Math.min(ms, 2_147_483_647) : 0) };
        armed.add(entry);
        const cancel = tc.setTimer(() => {
          armed.delete(entry);
          callback();
        }, ms);
        return () => {
          armed.delete(entry);
          cancel();
        };
      },
    },
    live: () => [...armed].map((e) => e.at).sort((x, y) => x - y),
    set: () => set,
  };
}

/**
 * A caller's controller whose signal counts the listeners the library added
 * and did not remove (the platform's own, undici's `Request` following a
 * signal it was given, are fetch's, not the layer's: left out by their stack).
 * Changed in the thirtieth session: the one listener of the layer's link to a
 * signal (src/core/linked-signal.ts), kept for the signal's life however many
 * calls it serves (docs/retry.md), is left out too, by its stack; the test
 * of that file holds that it is one per signal.
 */
function trackedController(): { ctrl: AbortController; listeners(): number } {
  const ctrl = new AbortController();
  const signal = ctrl.signal;
  const live = new Map<unknown, boolean>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  Object.defineProperty(signal, "addEventListener", {
    value: (type: string, listener: unknown, options?: unknown) => {
      if (
        type === "abort" &&
        listener &&
        !/node:internal|linked-signal/.test((new Error().stack ?? "").split("\n")[2] ?? "")
      )
        live.set(listener, (options as { once?: boolean } | undefined)?.once === true);
      add(type, listener as EventListener, options as AddEventListenerOptions);
    },
  });
  Object.defineProperty(signal, "removeEventListener", {
    value: (type: string, listener: unknown, options?: unknown) => {
      if (type === "abort") live.delete(listener);
      remove(type, listener as EventListener, options as EventListenerOptions);
    },
  });
  // A `once` listener leaves by itself when the abort is dispatched.
  return { ctrl, listeners: () => [...live.values()].filter((once) => !(once && signal.aborted)).length };
}

/** The transport: global fetch, counting the calls still waiting for headers. */
function trackedFetch(): { fetch: typeof fetch; pending(): number; started(): number } {
  let pending = 0;
  let started = 0;
  return {
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => {
      pending++;
      started++;
      return globalThis.fetch(input, init).finally(() => {
        pending--;
      });
    }) as typeof fetch,
    pending: () => pending,
    started: () => started,
  };
}

const schema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

// ---------------------------------------------------------------- scenarios

type PathName = "plain" | "request" | "requestStream" | "chain" | "hedge" | "degrade" | "ky" | "execute" | "proxy";
const PATHS: PathName[] = ["plain", "request", "requestStream", "chain", "hedge", "degrade", "ky", "execute", "proxy"];

type AbortMode = { at: "none" } | { at: "before" } | { at: "hit"; n: number } | { at: "backoff" } | { at: "body" };

interface Scenario {
  seed: number;
  path: PathName;
  scripts: Beh[][];
  options: ResilienceOptions;
  abort: AbortMode;
  /** What the caller does with a response: read it, or cancel its body. */
  read: boolean;
}

const ALL: Beh[] = ["ok", "bad", "503", "503r", "429", "302", "307x", "hang", "stall", "s503", "reset"];
const QUICK: Beh[] = ["ok", "bad", "503", "503r", "429", "302", "307x", "reset", "stall", "s503"];

function draw(seed: number): Scenario {
  const r = prng(seed);
  const path = r.pick(PATHS);
  const endpoints = path === "chain" || path === "hedge" ? r.int(2, 3) : 1;
  const abortPick = r.int(0, 9);
  const abort: AbortMode =
    abortPick <= 3
      ? { at: "none" }
      : abortPick === 4
        ? { at: "before" }
        : abortPick <= 6
          ? { at: "hit", n: r.int(1, 3) }
          : abortPick <= 8
            ? { at: "backoff" }
            : { at: "body" };
  const timeoutAttempt = r.next() < 0.5 ? r.int(50, 3000) : undefined;
  const timeoutTotal = r.next() < 0.5 ? r.int(100, 10_000) : undefined;
  // Work that nothing bounds (no timeout, no abort, `execute` has no timeout) may hang legitimately.
  const bounded = path !== "execute" && (timeoutAttempt !== undefined || timeoutTotal !== undefined);
  const pool2 = bounded ? ALL : QUICK;
  const scripts = Array.from({ length: endpoints }, () => Array.from({ length: r.int(1, 4) }, () => r.pick(pool2)));
  const breakerPick = r.int(0, 3);
  const breaker =
    breakerPick === 0 ? false : breakerPick === 1 ? { failureThreshold: r.int(1, 3), timeout: 5_000 } : undefined;
  const options: ResilienceOptions = {
    retry: {
      maxAttempts: r.int(1, 4),
      initialDelay: r.int(10, 2_000),
      jitter: r.pick(["full", "equal", "decorrelated", "none"] as const),
      ...(r.next() < 0.3 ? { maxRetryAfter: 1_500 } : {}),
      ...(path === "degrade" ? { idempotencyKey: true } : {}),
    },
    ...(timeoutAttempt !== undefined || timeoutTotal !== undefined
      ? {
          timeout: {
            ...(timeoutAttempt !== undefined ? { attempt: timeoutAttempt } : {}),
            ...(timeoutTotal !== undefined ? { total: timeoutTotal } : {}),
          },
        }
      : {}),
    ...(breaker === false ? { breaker: false } : breaker ? { breaker } : {}),
    ...(breaker !== false && r.next() < 0.3 ? { bulkhead: { maxConcurrent: 1, maxQueue: 1 } } : {}),
    random: prng(seed ^ 0x5bd1e995).next,
  };
  return { seed, path, scripts, options, abort, read: r.next() < 0.5 };
}

interface Outcome {
  settled: boolean;
  ok?: unknown;
  error?: unknown;
  retries: number;
  timersAfter: number[];
  listenersAfter: number;
  aborted: boolean;
  abortedBeforeSettle: boolean;
  /** The call rejected with the very reason the caller aborted with. */
  reasonKept: boolean;
  bodyError?: unknown;
  exchanges: Exchange[];
}

let nextId = 1;
/** The body read rejected with the caller's reason, as fetch's does. */
const BODY_ABORTED = "aborted with the reason";

/** Runs one scenario: returns what happened, never throws for the library's sake. */
async function runScenario(s: Scenario): Promise<Outcome> {
  const id = nextId++;
  const tc = new TestClock(1_000_000);
  const tracked = trackedClock(tc);
  const net = trackedFetch();
  const { ctrl, listeners } = trackedController();
  const reason = new Error(`caller abort ${s.seed}`);
  let settled = false;
  const abortNow = (): void => {
    if (!ctrl.signal.aborted) ctrl.abort(reason);
  };
  let abortedBeforeSettle = false;
  const doAbort = (): void => {
    if (!settled && !ctrl.signal.aborted) abortedBeforeSettle = true;
    abortNow();
  };
  if (s.abort.at === "hit") {
    const n = s.abort.n;
    onAttempt.set(id, (count) => {
      if (count === n) doAbort();
    });
  }
  const url = (i: number): string =>
    `${(SERVERS[i] as (typeof SERVERS)[number]).base}/x/${id}/${i}/${(s.scripts[i] as Beh[]).join(",")}`;
  const options: ResilienceOptions = { ...s.options, clock: tracked.clock, fetch: net.fetch };
  let retries = 0;
  const signal = ctrl.signal;
  const hedgeDelay = [0, 50, 200, 2_000][s.seed % 4] as number;
  let call: () => Promise<unknown>;
  let countsRetries = true;
  const layer = (extra: Partial<ResilienceOptions> = {}) => {
    const resilience = createResilience({ ...options, ...extra });
    resilience.on("retry", () => {
      retries++;
    });
    return resilience;
  };
  switch (s.path) {
    case "plain": {
      const r = layer();
      call = () => r.fetch(url(0), { signal });
      break;
    }
    case "request": {
      const r = layer();
      call = () => r.fetch(new Request(url(0), { method: "PUT", body: '{"prompt":"x"}' }), { signal });
      break;
    }
    case "requestStream": {
      const r = layer();
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('{"prompt":"stream"}'));
          c.close();
        },
      });
      call = () =>
        r.fetch(new Request(url(0), { method: "PUT", body, duplex: "half" } as RequestInit), {
          signal,
        });
      break;
    }
    case "chain":
    case "hedge": {
      const endpoints = s.scripts.map((_, i) => ({
        name: `e${i}`,
        url: url(i),
        ...(i > 0 ? { validate: schema } : {}),
      }));
      const chain =
        s.path === "hedge" ? { name: "c", hedge: { delay: hedgeDelay }, endpoints } : { name: "c", endpoints };
      const r = layer({ fallback: fallback([chain]) });
      call = () => r.fetch(`${url(0)}/go`, { signal });
      break;
    }
    case "degrade": {
      const r = layer({ degradation: degradation({}) });
      r.degradation?.setLevel("low");
      call = () =>
        r.fetch(url(0), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "x", steps: 50, resolution: "1080p" }),
          signal,
        });
      break;
    }
    case "ky": {
      const r = layer();
      const api = createClient({ resilience: r, throwHttpErrors: false });
      call = () => api.get(url(0), { signal });
      break;
    }
    case "execute": {
      const r = layer();
      call = () =>
        r.execute(
          async ({ signal: attemptSignal }) => {
            const res = await net.fetch(url(0), attemptSignal ? { signal: attemptSignal } : {});
            if (res.status >= 300) {
              await res.body?.cancel();
              throw new Error(`status ${res.status}`);
            }
            return res;
          },
          { signal },
        );
      break;
    }
    case "proxy": {
      countsRetries = false;
      const { fallback: _f, ...rest } = options;
      const proxy = resilientProxy({
        routes: [{ path: "/v1", upstream: url(0) }],
        resilience: rest as Omit<ResilienceOptions, "fallback" | "store">,
      });
      call = () => proxy.fetch(new Request("https://proxy.example/v1/go", { signal }), {}, { waitUntil() {} });
      break;
    }
  }
  if (s.abort.at === "before") doAbort();
  let ok: unknown;
  let error: unknown;
  const promise = (async () => call())().then(
    (v) => {
      settled = true;
      ok = v;
    },
    (e) => {
      settled = true;
      error = e;
    },
  );
  await drive(() => settled, tracked, net, id, s.abort.at === "backoff" ? doAbort : undefined);
  void promise;
  let bodyError: unknown;
  if (settled && ok instanceof Response && ok.body) {
    const last = exchanges.get(id)?.at(-1)?.beh;
    const stalls = last === "stall" || last === "s503";
    if (s.abort.at === "body") {
      const reading = ok.text().then(
        () => undefined,
        (e: unknown) => e,
      );
      await sleep(5);
      doAbort();
      const got = await Promise.race([reading, sleep(1_000).then(() => "read still pending after abort")]);
      if (got === reason) bodyError = BODY_ABORTED;
      else if (got !== undefined) bodyError = got;
      else if (stalls) bodyError = "a stalled body read completed";
    } else if (s.read && !stalls) {
      await Promise.race([ok.text().catch(() => undefined), sleep(1_000)]);
    } else {
      await ok.body.cancel().catch(() => undefined);
    }
  }
  await immediate();
  onAttempt.delete(id);
  return {
    settled,
    ok,
    error,
    retries: countsRetries ? retries : -1,
    timersAfter: tracked.live(),
    listenersAfter: listeners(),
    aborted: ctrl.signal.aborted,
    abortedBeforeSettle,
    reasonKept: error === reason,
    ...(bodyError !== undefined ? { bodyError } : {}),
    exchanges: exchanges.get(id) ?? [],
  };
}

/**
 * Lets real I/O progress until every transport call that can answer has
 * answered, then moves the clock to its next timer; gives up after a bounded
 * number of steps.
 */
async function drive(
  settled: () => boolean,
  tracked: ReturnType<typeof trackedClock>,
  net: ReturnType<typeof trackedFetch>,
  id: number,
  /** Called instead of the first clock move that comes while no attempt is out (a backoff). */
  abortInWait?: () => void,
): Promise<void> {
  let idle = 0;
  for (let step = 0; step < 300 && !settled(); ) {
    // Real I/O: wait for the requests to arrive and the answering ones to answer.
    for (let i = 0; i < 200; i++) {
      await immediate();
      if (settled()) return;
      const list = exchanges.get(id) ?? [];
      const silent = list.filter((e) => e.beh === "hang").length;
      if (net.pending() <= silent && net.started() <= list.length) break;
      await sleep(1);
    }
    for (let i = 0; i < 5; i++) await immediate();
    if (settled()) return;
    const next = tracked.live()[0];
    if (next !== undefined && abortInWait && net.pending() === 0 && (exchanges.get(id)?.length ?? 0) > 0) {
      abortInWait();
      abortInWait = undefined;
      continue;
    }
    if (next !== undefined) {
      step++;
      idle = 0;
      await tracked.tc.advance(Math.max(0, next - tracked.tc.now()));
    } else {
      idle++;
      if (idle > 250) return; // about 2.5 s of real time with nothing to fire
      await sleep(10);
    }
  }
}

// ---------------------------------------------------------------- checks

const ABORT_ERRORS = new Set(["AbortError"]);

/** What is wrong with one outcome, by the docs; empty when it held. */
function judge(s: Scenario, o: Outcome): string[] {
  const bad: string[] = [];
  if (!o.settled) {
    bad.push("never settled");
    return bad;
  }
  if (o.abortedBeforeSettle) {
    if (o.error === undefined)
      bad.push(`aborted before settling but resolved with ${String((o.ok as Response)?.status)}`);
    else if (!o.reasonKept) bad.push(`aborted: rejected with ${String(o.error)} not the signal's reason`);
  } else if (o.error !== undefined) {
    const e = o.error as Error;
    const known = isResilienceError(o.error) || o.error instanceof TypeError;
    if (!known && !(s.path === "execute" && /^status/.test(e.message)) && !ABORT_ERRORS.has(e?.name))
      bad.push(`rejected with ${e?.name}: ${e?.message}`);
  }
  if (o.timersAfter.length > 0) bad.push(`timers left armed: ${o.timersAfter.length}`);
  if (o.listenersAfter > 0) bad.push(`listeners left on the caller's signal: ${o.listenersAfter}`);
  if (s.abort.at === "body" && o.bodyError !== undefined && o.bodyError !== BODY_ABORTED)
    bad.push(`body read after the caller's abort: ${String(o.bodyError)}`);
  if (o.retries >= 0 && s.path !== "execute") {
    const attempts = o.exchanges.filter((e) => !e.hop);
    const byEndpoint = new Map<number, number>();
    for (const e of attempts) byEndpoint.set(e.endpoint, (byEndpoint.get(e.endpoint) ?? 0) + 1);
    const expected = [...byEndpoint.values()].reduce((sum, n) => sum + n - 1, 0);
    if (o.retries < expected) bad.push(`retry events ${o.retries} < retries made ${expected}`);
    const slack = s.path === "hedge" ? s.scripts.length : 1;
    if (o.retries > expected + slack) bad.push(`retry events ${o.retries} > retries made ${expected} + 1`);
    if (o.retries > expected && s.path !== "hedge" && !o.abortedBeforeSettle && o.error === undefined)
      bad.push(`retry event without a retry (${o.retries} events, ${expected} retries), call resolved`);
  }
  return bad;
}

/** The exchanges that must end: every hang, and every stalled body once the caller is done with it. */
function mustClose(o: Outcome): Exchange[] {
  return o.exchanges.filter((e) => e.beh === "hang" || e.beh === "stall" || e.beh === "s503");
}

const SEEDS = Number(process.env.SETTLE_SEEDS ?? 400);
const BASE_SEED = Number(process.env.SETTLE_BASE ?? 20261201);

describe("settle properties across paths (seeded)", () => {
  it(`${SEEDS} scenarios: every call settles, leaves no timer, listener or open exchange, and counts its retries`, async () => {
    install();
    const failures: string[] = [];
    const closing: Array<{ seed: number; what: string; done: boolean }> = [];
    for (let k = 0; k < SEEDS; k++) {
      const seed = BASE_SEED + k;
      const s = draw(seed);
      const o = await runScenario(s);
      const bad = judge(s, o);
      const desc = `seed ${seed} ${s.path} ${JSON.stringify(s.scripts)} abort=${JSON.stringify(s.abort)} opts=${JSON.stringify({ ...s.options, random: undefined })} hits=${o.exchanges.map((e) => `${e.endpoint}${e.hop ? "r" : ""}:${e.beh}`).join(" ")} retries=${o.retries} -> ${o.error !== undefined ? `rejected ${(o.error as Error)?.name}: ${(o.error as Error)?.message}` : `resolved ${(o.ok as Response)?.status}`}`;
      if (bad.length > 0) failures.push(`${desc}\n    ${bad.join("; ")}`);
      for (const e of mustClose(o)) {
        const entry = { seed, what: `${desc} exchange ${e.endpoint}:${e.beh}`, done: false };
        closing.push(entry);
        void e.hit.closed.then(() => {
          entry.done = true;
        });
      }
    }
    // A dropped body is drained for at most 1 s (real time), then cancelled.
    for (let waited = 0; waited < 3_000 && closing.some((c) => !c.done); waited += 50) await sleep(50);
    for (const c of closing) if (!c.done) failures.push(`${c.what}\n    exchange still open 3 s after the call`);
    if (failures.length > 0) console.log(failures.join("\n"));
    expect(failures).toEqual([]);
  }, 120_000);
});

// ---------------------------------------------------------------- the real clock, in a process of its own

/** A script that makes failing calls with long waits on the real clock, ends them, and must then exit by itself. */
const CHILD = (entry: string, base: string, refused: string): string => `
import { createResilience } from ${JSON.stringify(entry)};
const out = [];
const layer = createResilience({ retry: { maxAttempts: 5, initialDelay: 30000, maxDelay: 60000, jitter: "none" } });
// 1. connection refused, then a 30 s backoff: the caller aborts during it.
const ctrl = new AbortController();
const refused = layer.fetch(${JSON.stringify(refused)} + "/x", { signal: ctrl.signal }).then(
  (r) => "resolved " + r.status, (e) => "rejected " + (e === ctrl.signal.reason ? "with the reason" : String(e)));
setTimeout(() => ctrl.abort(new Error("stop")), 300);
out.push(await refused);
// 2. a 503 whose body stalls, then a 30 s backoff: the caller aborts during it.
const ctrl2 = new AbortController();
const stalled = layer.fetch(${JSON.stringify(base)} + "/x/0/0/s503", { signal: ctrl2.signal }).then(
  (r) => "resolved " + r.status, (e) => "rejected " + (e === ctrl2.signal.reason ? "with the reason" : String(e)));
setTimeout(() => ctrl2.abort(new Error("stop")), 300);
out.push(await stalled);
// 3. an upstream that never answers, under timeout.total.
const timed = createResilience({ timeout: { total: 200 }, retry: { initialDelay: 30000 } });
out.push(await timed.fetch(${JSON.stringify(base)} + "/x/0/0/hang").then((r) => "resolved " + r.status, (e) => "rejected " + e.name));
console.log(JSON.stringify(out));
`;

describe("the real clock: nothing keeps a process alive", () => {
  it("a child process whose failing calls were aborted or timed out exits on its own within 5 s", async () => {
    install();
    // The source, as every other test here imports it (a dist/ may be stale or absent).
    const entry = fileURLToPath(new URL("../../src/index.ts", import.meta.url));
    const refused = await refusedOrigin();
    const child = spawn(
      process.execPath,
      ["--experimental-strip-types", "--no-warnings", "--input-type=module", "-e", CHILD(entry, A.base, refused)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const started = Date.now();
    const code = await Promise.race([
      new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c))),
      sleep(8_000).then(() => "still running" as const),
    ]);
    if (code === "still running") child.kill("SIGKILL");
    expect({ code, stderr: stderr.slice(0, 500) }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(stdout)).toEqual([
      "rejected with the reason",
      "rejected with the reason",
      "rejected TimeoutError",
    ]);
    // The 1 s drain of the stalled 503 body is unref'd: it holds nothing.
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 15_000);
});
