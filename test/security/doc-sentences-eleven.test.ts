/**
 * Outside-in check of the sentences added or changed in README.md,
 * SECURITY.md and docs/*.md between 7f9a4a5 and HEAD (17cc9ad), through the
 * public entries, a stub `fetch`, `TestClock` and `memoryStore()`.
 *
 * Checked and held (outside this file unless below):
 * - README size table: `npx size-limit` after `npm run build` gives 16,505
 *   bytes root (16.5 kB = 16.1 KiB), +6,550 fallback (6.4 KiB), +5,065
 *   degradation (4.9 KiB), 27,551 all three (26.9 KiB), `retry` 1,711 (1.7
 *   KiB; docs/targets.md's "1.67 KiB, 1,711 bytes, missed by 175" too),
 *   policies 10,226 (10.0 KiB); each under its .size-limit.json budget.
 * - `node bench/overhead-chart.ts docs/benchmarks/overhead-2026-12-01-7f9a4a5.json`
 *   writes docs/benchmarks/overhead.svg byte for byte; its dashed line is at
 *   1.5 µs; the cost row's figures (1.03 / 1.66, 3.93 / 4.15, ky 20.0 / 19.7,
 *   cockatiel 0.83 / 0.86, opossum 0.99 / 0.91, p-retry 0.57 / 0.60, ofetch
 *   0.74 / 1.00) are that JSON's.
 * - `npm run demo` (seed 42) prints the summary's rows in the README's order,
 *   the new breaker and level rows included; figures moved a little
 *   (461 calls, 61.4%, both breakers closed, level full).
 * - docs/verification.md "What runs on every change" against package.json
 *   and .ci/run: typecheck, snippets, links, lint, typedoc (treatWarningsAsErrors),
 *   build, vitest (node project with happy-dom and Chromium files, workers
 *   project), the runtime matrix, newcomer.test.ts's size rows,
 *   publint/attw/size-limit, the 2,000-call soak test.
 * - docs/degradation.md: at `full` no rule is picked whatever `levels.full`
 *   says (rewrite-request reads no rule at `full`; all paths go through it).
 * - docs/options.md: `{ breaker: false, bulkhead }` is a ConfigError
 *   (createResilience, createClient); below.
 * - docs/health-and-events.md: `open` → `open` for an in-flight answer's long
 *   Retry-After and for a later opening shared through memoryStore(); a trip
 *   with its hold is one event until the later time; below. debugInfo()
 *   totals and the error rate leave out aborted calls (init.signal, a
 *   Request's own signal, the ky client); below.
 * - docs/breakers.md / docs/cloudflare.md: a retry waiting out its backoff
 *   reads memoryStore() again and is not sent to a host another layer
 *   opened meanwhile; below.
 *
 * Findings (each an `it.fails` on the code it was written against, asserting
 * the sentence; fixed in the code, and the sentence names the bulkhead wait):
 * 1. docs/breakers.md: "a host one opened is open for all, for a retry
 *    waiting out its backoff too (each attempt reads the store before it
 *    leaves)". An attempt that waits for a bulkhead slot reads the store
 *    before it queues, not before it leaves: with `memoryStore()`, a host
 *    another layer opened while the attempt waited gets it (sendAttempt
 *    checks only the local breaker after the slot is granted).
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createResilience, isCircuitOpenError, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const HOST = "https://api.example";

/** A transport whose answers the test hands out one by one. */
function gate() {
  const waiting: Array<(response: Response) => void> = [];
  let calls = 0;
  const fetch = (): Promise<Response> => {
    calls++;
    return new Promise<Response>((resolve) => waiting.push(resolve));
  };
  return {
    fetch,
    get calls() {
      return calls;
    },
    /** Answers every attempt still waiting, so nothing is left pending. */
    drain() {
      for (const next of waiting.splice(0)) next(new Response(null, { status: 200 }));
    },
    answer(status: number, headers: Record<string, string> = {}) {
      const next = waiting.shift();
      if (!next) throw new Error("no attempt is waiting");
      next(new Response(null, { status, headers }));
    },
  };
}

async function settle<T>(promise: Promise<T>): Promise<T | unknown> {
  try {
    return await promise;
  } catch (error) {
    return error;
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("docs/breakers.md: a memoryStore() host one layer opened is open for all (each attempt reads the store before it leaves)", () => {
  it("held: a retry waiting out its backoff is not sent to a host another layer opened meanwhile", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    let bCalls = 0;
    const b = createResilience({
      clock,
      store,
      random: () => 0.5,
      retry: { maxAttempts: 3 },
      fetch: async () => {
        bCalls++;
        return new Response(null, { status: 503 });
      },
    });
    const a = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response(null, { status: 503 }),
    });
    const call = settle(b.fetch(`${HOST}/v1`));
    await clock.waitForTimers(1);
    expect(bCalls).toBe(1);
    await (await a.fetch(`${HOST}/v1`)).body?.cancel();
    await clock.advance(60_000);
    const result = await call;
    expect(bCalls).toBe(1);
    expect(result instanceof Response ? result.status : isCircuitOpenError(result)).toBeTruthy();
  });

  it("a host one opened is open for all … (each attempt reads the store before it leaves): an attempt that waited for a bulkhead slot leaves for a host another layer opened during its wait", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const upstream = gate();
    const b = createResilience({
      clock,
      store,
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      fetch: upstream.fetch,
    });
    const a = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response(null, { status: 503 }),
    });
    const first = settle(b.fetch(`${HOST}/v1/one`));
    const second = settle(b.fetch(`${HOST}/v1/two`));
    try {
      await flush();
      expect(upstream.calls).toBe(1); // the second waits for the slot
      await (await a.fetch(`${HOST}/v1`)).body?.cancel(); // layer A opens the host (shared through the store)
      expect(a.health().breakers["api.example"]?.state).toBe("open");
      upstream.answer(200); // the first attempt ends: the slot goes to the second
      await first;
      await flush();
      // Promise: the host is open for layer B too, so the waiting attempt is refused, never sent.
      expect(upstream.calls).toBe(1);
      expect(isCircuitOpenError(await second)).toBe(true);
    } finally {
      upstream.drain();
      await second;
    }
  });
});

describe("docs/health-and-events.md: `open` → `open` when an open circuit is held longer; one answer that trips and holds is one event", () => {
  it("held: an in-flight answer's long Retry-After, then a later opening shared through memoryStore(); a trip with its hold is one event", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const layer = () => {
      const upstream = gate();
      const resilience = createResilience({
        clock,
        store,
        retry: false,
        breaker: { failureThreshold: 1, timeout: 10_000 },
        fetch: upstream.fetch,
      });
      const events: string[] = [];
      resilience.on("breaker", (e) => events.push(`${e.from}→${e.to} until ${e.openUntil}`));
      return { upstream, resilience, events };
    };
    const a = layer();
    const b = layer();
    const three = settle(a.resilience.fetch(`${HOST}/c`)); // left before anything opened
    const one = settle(b.resilience.fetch(`${HOST}/a`));
    const two = settle(b.resilience.fetch(`${HOST}/b`));
    await flush();
    b.upstream.answer(503); // trips: open until 10 s
    await one;
    b.upstream.answer(503, { "retry-after": "120" }); // in flight, asks beyond maxRetryAfter (60 s)
    await two;
    expect(b.events).toEqual(["closed→open until 10000", "open→open until 120000"]);
    a.upstream.answer(503, { "retry-after": "300" }); // trips A's breaker and holds it: one event, the later time
    await three;
    expect(a.events).toEqual(["closed→open until 300000"]);
    b.resilience.health(); // reads the store, as the next call would
    expect(b.events).toEqual(["closed→open until 10000", "open→open until 120000", "open→open until 300000"]);
  });
});

describe("docs/health-and-events.md: debugInfo() totals leave out a call its caller aborted", () => {
  it("held: plain call (init.signal), Request input (its own signal) and the ky client", async () => {
    const upstream = gate();
    const resilience = createResilience({ retry: false, fetch: upstream.fetch });
    const api = createClient({ resilience, prefix: HOST });
    const [c0, c1, c2] = [new AbortController(), new AbortController(), new AbortController()];
    const controllers = [c0, c1, c2];
    const calls = [
      settle(resilience.fetch(`${HOST}/a`, { signal: c0.signal })),
      settle(resilience.fetch(new Request(`${HOST}/b`, { signal: c1.signal }))),
      settle(api.get("c", { signal: c2.signal })),
    ];
    await flush();
    expect(upstream.calls).toBe(3); // all three in flight
    for (const c of controllers) c.abort();
    await Promise.all(calls);
    upstream.drain();
    expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(resilience.health().errorRate).toBe(0);
  });
});

describe("docs/options.md: a bulkhead with `breaker: false` is a ConfigError", () => {
  it("held: createResilience and createClient refuse it", () => {
    expect(() => createResilience({ breaker: false, bulkhead: { maxConcurrent: 1 } })).toThrow(ConfigError);
    expect(() => createClient({ resilience: { breaker: false, bulkhead: { maxConcurrent: 1 } } })).toThrow(ConfigError);
  });
});
