/**
 * Outside-in attack on docs/testing.md (the MSW fault kit of
 * `@storycore/resilient-fetch/testing`: the builders, `upstream`, `TestClock`,
 * `recordEvents`) and on docs/storycore-mapping.md (with the README's link to
 * it and its `…/policies` row: `retry(fn)`, `CircuitBreaker`,
 * `FallbackChain`, the level machine), through the public entries only, as a
 * user's own vitest + MSW 3 project would use them. New angles beside the
 * earlier kit attacks: builder arguments that are well typed but that no
 * `Response` can carry (a body `JSON.stringify` cannot write, a header name
 * or value `Headers` refuses), a `stream` clock that cannot set a timer, the
 * real timers of the waiting faults when a reader cancels or a caller aborts
 * (counted through a `setTimeout` wrapper, never waited on), and the whole
 * StoryCore `ErrorHandlingSystem` flow of the mapping's table on one layer.
 * Time moves on a `TestClock`; the real-timer checks wait 5 ms turns only.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: `json` tries its body and `status`/`json` their headers when built, and
 * `stream` checks its clock as `latency` does):
 * 1. docs/testing.md: "Each builder refuses a bad argument at once with a
 *    `TypeError` (…), so a mistake fails the test, not a handler inside
 *    MSW." Observed: `json({ n: 1n })` and `json(circular)` are taken; the
 *    first request throws "Do not know how to serialize a BigInt" inside the
 *    MSW handler, MSW answers a 500 "Unhandled exception", and a layer with
 *    default retry sends the call 3 times and resolves with that 500, as if
 *    the API had failed.
 * 2. Same sentence. Observed: `status(503, { headers: { "bad name": "x" } })`,
 *    a header value with a newline, and `json(body, { headers: { "bad name": … } })`
 *    are taken; each request then throws `Headers.append: "bad name" is an
 *    invalid header name.` inside MSW (a 500, retried 3 times by the layer).
 * 3. Same sentence, with the table's "`stream(chunks, { interval?,
 *    stallAfter?, breakAfter?, clock? })`" (the list names "a `latency` clock
 *    without `setTimer`", which `latency` refuses). Observed:
 *    `stream(["a", "b"], { interval: 5, clock: { now } })` is taken; the
 *    request then fails inside MSW's stream (`fetch` rejects "fetch failed",
 *    SocketError: closed) where `latency(5, f, { clock: { now } })` throws a
 *    TypeError when built.
 *
 * Held (plain `it`):
 * - Waiting faults on real timers leave none behind: a `stream` interval
 *   wait its reader cancels, a `breakAfter` wait its reader cancels, a
 *   `latency` its client aborts, and a streamed body through
 *   `resilience.fetch` whose caller aborts, each clears its 10-minute timer.
 * - The mapping's table on one layer (`createResilience({ clock, fallback:
 *   fallback([]), degradation: degradation() })`): `breaker("x").execute`
 *   opens after its threshold and `recordEvents` sees it;
 *   `execute(fn, { breaker })` retries thrown errors on the clock;
 *   `fallback.chain("x").add(fn, { name, expectedQuality })` runs in order,
 *   refuses a quality outside 0..1; `statistics()` and `health()` list it;
 *   `degradation.adjust(p)` at `high` rewrites quality, resolution and
 *   features, keeps steps and model; a bad argument to each names itself.
 * - Builder refusals that held: `latency` with `clock: null`, `flaky`
 *   without options, `sequence` with `then: null`, `status` with a string
 *   `retryAfter`.
 *
 * Noted, not pinned (no doc sentence promises otherwise):
 * - `resilience.fallback.chain("x")` emits no `fallback` event when it passes
 *   over an entry, so `recordEvents(…).expectFallback(from, next)` cannot see
 *   a ported StoryCore chain (docs/health-and-events.md speaks of
 *   "endpoints"); and `add` takes a second entry with a name already used,
 *   whose statistics then merge with the first's.
 * - A nested `sequence` (or a `sequence` inside `outage`) is indexed by the
 *   handler's attempt, not its own: its first answers are skipped when it
 *   is reached later (the `Fault` TSDoc defines `attempt` that way).
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience } from "../../src/index.ts";
import {
  flaky,
  json,
  latency,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";
import { refuses } from "../helpers/settled.ts";

const server = useMswServer();

/** Whether calling `build` throws a TypeError at once (the builder refused its input). */
/** A short real wait: a few ms, for MSW's interceptor to move. */
const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe("defects", () => {
  // docs/testing.md: "Each builder refuses a bad argument at once with a `TypeError` (…), so a
  // mistake fails the test, not a handler inside MSW." json({ n: 1n }) is taken, then throws
  // "Do not know how to serialize a BigInt" inside MSW on every request (a 500, retried).
  it("1. json() refuses at once a body JSON cannot write (a BigInt, a cycle)", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(refuses(() => json({ n: 1n }))).toBe(true);
    expect(refuses(() => json(circular))).toBe(true);
  });

  // Same sentence. status(503, { headers: { "bad name": "x" } }) is taken, then throws
  // `Headers.append: "bad name" is an invalid header name.` inside MSW on every request.
  it("2. status() and json() refuse at once a header no Headers can carry", () => {
    expect(refuses(() => status(503, { headers: { "bad name": "x" } }))).toBe(true);
    expect(refuses(() => status(503, { headers: { "x-note": "a\nb" } }))).toBe(true);
    expect(refuses(() => json({ ok: true }, { headers: { "bad name": "x" } }))).toBe(true);
  });

  // Same sentence, and the table's "`stream(chunks, { interval?, stallAfter?, breakAfter?,
  // clock? })`". A stream clock without setTimer is taken; the request then fails inside MSW's
  // stream (fetch rejects "fetch failed"), where latency() refuses the same clock when built.
  it("3. stream() refuses at once a clock without setTimer, as latency() does", () => {
    const noTimer = { now: () => 0 } as never;
    expect(refuses(() => latency(5, status(200), { clock: noTimer }))).toBe(true); // holds
    expect(refuses(() => stream(["a", "b"], { interval: 5, clock: noTimer }))).toBe(true);
  });
});

describe("held", () => {
  it("waiting faults on real timers leave no timer once the reader cancels or the client aborts", async () => {
    const live = new Set<unknown>();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    // Counts only the long timers the faults set (10 minutes here); every call goes through.
    const wrappedSet = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const handle = realSet(() => {
        live.delete(handle);
        callback(...args);
      }, ms);
      if ((ms ?? 0) >= 100_000) live.add(handle);
      return handle;
    }) as typeof setTimeout;
    globalThis.setTimeout = wrappedSet;
    globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
      live.delete(handle);
      realClear(handle);
    }) as typeof clearTimeout;
    try {
      const TEN_MINUTES = 600_000;
      server.use(
        upstream("GET", "https://s.example/interval", stream(["a", "b", "c"], { interval: TEN_MINUTES })).handler,
        upstream("GET", "https://s.example/break", stream(["a", "b"], { interval: TEN_MINUTES, breakAfter: 1 }))
          .handler,
        upstream("GET", "https://s.example/latency", latency(TEN_MINUTES, status(200))).handler,
        upstream("GET", "https://s.example/layer", stream(["a", "b", "c"], { interval: TEN_MINUTES })).handler,
      );

      for (const path of ["interval", "break"]) {
        const reader = (await fetch(`https://s.example/${path}`)).body?.getReader();
        if (!reader) throw new Error("no body");
        expect(new TextDecoder().decode((await reader.read()).value)).toBe("a");
        const next = reader.read().catch(() => undefined);
        await turn();
        expect(live.size, path).toBe(1);
        await reader.cancel();
        await next;
        await turn();
        expect(live.size, path).toBe(0);
      }

      const aborter = new AbortController();
      const call = fetch("https://s.example/latency", { signal: aborter.signal }).catch((error: unknown) => error);
      await turn();
      expect(live.size).toBe(1);
      aborter.abort();
      expect(await call).toBeInstanceOf(Error);
      await turn();
      expect(live.size).toBe(0);

      const resilience = createResilience({ retry: false });
      const caller = new AbortController();
      const reader = (await resilience.fetch("https://s.example/layer", { signal: caller.signal })).body?.getReader();
      if (!reader) throw new Error("no body");
      await reader.read();
      const next = reader.read().catch((error: unknown) => error);
      await turn();
      expect(live.size).toBe(1);
      caller.abort();
      expect(await next).toBeInstanceOf(Error);
      await turn();
      expect(live.size).toBe(0);
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });

  it("the mapping's table on one layer: breaker, execute, chain, adjust, statistics, health", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    const recorder = recordEvents(system);

    // system.get_circuit_breaker('upscaler'), cb.execute(fn)
    const cb = system.breaker("upscaler", { failureThreshold: 2 });
    expect(system.breaker("upscaler")).toBe(cb);
    for (let i = 0; i < 2; i++) {
      await expect(
        clock.run(
          cb.execute(async () => {
            throw new Error("boom");
          }),
        ),
      ).rejects.toThrow("boom");
    }
    await expect(clock.run(cb.execute(async () => "never"))).rejects.toBeInstanceOf(CircuitOpenError);
    recorder.expectBreakerOpened("upscaler");

    // system.execute_with_resilience(fn, circuit_breaker_name='engine', enable_retry=True)
    let tries = 0;
    const value = await clock.run(
      system.execute(
        async () => {
          tries++;
          if (tries < 3) throw new Error("transient");
          return "ok";
        },
        { breaker: "engine" },
      ),
    );
    expect([value, tries]).toEqual(["ok", 3]);

    // system.get_fallback_chain('video').add_fallback(fn, name=…), chain.get_statistics()
    const chain = system.fallback?.chain("video");
    if (!chain) throw new Error("no fallback stage");
    expect(system.fallback?.chain("video")).toBe(chain);
    chain.add(
      async () => {
        throw new Error("hunyuan down");
      },
      { name: "hunyuan", expectedQuality: 1 },
    );
    chain.add(async () => "wan", { name: "wan", expectedQuality: 0.8 });
    expect(refuses(() => chain.add(async () => "x", { name: "bad", expectedQuality: 1.5 }))).toBe(true);
    expect(await clock.run(chain.execute(undefined))).toBe("wan");
    const stats = chain.statistics();
    expect(stats.lastSuccessfulFallback).toBe("wan");
    expect(stats.fallbacks.hunyuan?.calls).toBe(1);
    expect(stats.fallbacks.wan?.successes).toBe(1);

    // system.graceful_degradation.adjust_parameters(p)
    system.degradation?.degrade("load");
    recorder.expectDegradedTo("high");
    expect(
      system.degradation?.adjust({
        quality: 1,
        resolution: "1080p",
        steps: 50,
        model: "premium",
        features: ["core", "x"],
      }),
    ).toEqual({ quality: 0.9, resolution: "720p", steps: 50, model: "premium", features: ["core"] });
    expect(refuses(() => system.degradation?.adjust(null as never))).toBe(true);

    // system.get_system_health()
    const health = system.health();
    expect(health.degradationLevel).toBe("high");
    expect(health.breakers.upscaler?.state).toBe("open");
    expect(health.breakers.engine?.state).toBe("closed");
    expect(health.fallback.video?.lastSuccessfulFallback).toBe("wan");
    expect(health.status).toBe("unhealthy");
  });

  it("builder refusals that hold: a null latency clock, flaky without options, a null then, a string retryAfter", () => {
    expect(refuses(() => latency(5, status(200), { clock: null as never }))).toBe(true);
    expect(refuses(() => flaky(0.5, undefined as never))).toBe(true);
    // biome-ignore lint/suspicious/noThenProperty: the option's name
    const nullThen = { then: null as never };
    expect(refuses(() => sequence([status(200)], nullThen))).toBe(true);
    expect(refuses(() => status(503, { retryAfter: "5" as never }))).toBe(true);
  });
});
