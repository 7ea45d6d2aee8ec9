/**
 * Outside-in attack on docs/testing.md, sentence by sentence, as a user writing vitest + MSW 3 tests for their own
 * code that uses the library: does the kit's `TestClock` carry every timer the layer sets (backoffs, `Retry-After`,
 * breaker spells, degradation steps, hedges, a streamed body's intervals) with no real sleep, do the happy-dom
 * notes hold, and does the clock keep its word in a browser page.
 * Docs: docs/testing.md: "`TestClock` moves time only when told (`advance(ms)`, or `run(promise)` which fires timers
 * until the promise settles, so backoffs take no real time) and works in Node, happy-dom and browsers. A promise
 * that neither settles nor sets a timer (a `hang()` without a timeout, a layer given no `clock`) makes `run` reject
 * with "the promise never settled" after about 3 s of real turns, before a test runner's usual 5 s timeout.";
 * "`seededRandom(seed)` makes jitter reproducible."; "Without a `clock` option the layer reads `Date.now()` as it
 * is, so vitest's fake timers and `vi.setSystemTime` set its time. A date set earlier than one the layer has
 * already seen is a clock set back: an open breaker then waits its `timeout` again from that date"; the builder
 * table's `stream(chunks, { interval?, stallAfter?, breakAfter?, clock? })` ("streams chunks; can stall, or break
 * mid-body (the client sees `TypeError: terminated`)"); "its `fetch` rejects network failures with a
 * `DOMException` named `NetworkError` rather than a `TypeError` (this library treats both as network errors)";
 * "This library drains the small bodies of responses it retries past (up to 64 KiB, within 1 s) instead of
 * cancelling them … A larger or slower body is still cancelled."; `recordEvents` with `expectDegradedTo(level)`.
 * How: `createResilience` (root, with `clock`, `random`, `fetch`), `fallback` (./fallback, a hedged chain),
 * `degradation` (./degradation, the error-rate trigger), `createClient` (./ky), the ./testing kit (`TestClock`,
 * `upstream`, `sequence`, `status`, `json`, `latency`, `stream`, `recordEvents`, `seededRandom`,
 * `corsPreflight`); MSW 3 `setupServer` from "msw/node" (with `corsPreflight()` as the docs set it up, unhandled
 * requests an error) and MSW `http` handlers of my own (503 bodies that record a read to the end or a cancel);
 * vitest's fake timers; the `./testing/clock` entry bundled by esbuild into a page of Debian's Chromium
 * (playwright-core, about:blank).
 * Paths: plain call (retries on `Retry-After`), hedged chain, degradation, ky client, stub `fetch`, streamed
 * answers, a browser page.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: run's give-up is measured in real time (3 s), the turn count a backstop):
 * 1. docs/testing.md "`TestClock` … works in Node, happy-dom and browsers. A promise that neither settles nor sets
 *    a timer … makes `run` reject with "the promise never settled" after about 3 s of real turns, before a test
 *    runner's usual 5 s timeout." Observed in Chromium: `run(new Promise(() => {}))` rejected with that message
 *    only after 12.5 s (probed by hand; the test runs the page's `performance.now` 100 times fast, so a give-up
 *    measured in real time comes in about 30 ms where one counted in turns is still pending). A browser test runner
 *    (vitest's browser mode, 5 s by default) times the test out first, with no clear message. Cause:
 *    src/testing/test-clock.ts counts steps, not time: `MAX_IDLE_TURNS` (1,000 steps) × `TURNS_PER_STEP` (3)
 *    chained `setTimeout(0)` turns (`turn()`), and browsers clamp nested `setTimeout(0)` to at least 4 ms after
 *    five levels (the HTML timer-nesting rule), so a step costs about 13 ms there against about 3.5 ms in Node.
 *    The same rate makes every timer `run` fires cost about 13 ms in a page.
 *
 * Held (plain `it`):
 * - `advance(ms)` alone carries a call through two 503s with `Retry-After: 1` under MSW: settled, 3 requests,
 *   `now()` 10 000, no timer pending.
 * - Without a `clock`, vitest's fake timers drive the layer's `Retry-After` wait under MSW; `vi.setSystemTime` set
 *   back a day after a breaker opened: the breaker refuses at +29 s and lets the call through at +31 s from the
 *   earlier date (its 30 s `timeout` again from that date), not a day later.
 * - The ky client on a `TestClock`: a 503's `Retry-After: 2` passes on the clock (2 000), nothing pending.
 * - Hedged chain on the clock: a primary answering at 100 ms wins and the hedge's timer is gone (q never asked);
 *   a primary slowed to 5 s loses to q at the hedge delay (2 s) (`getResilienceInfo` endpoint "q", no `fallback`
 *   event: the loser failed nothing), p's latency timer cancelled, nothing pending.
 * - Degradation's error-rate trigger steps down one level per `stepInterval` on the clock, no real sleep:
 *   full → high → medium → low → minimal, `expectDegradedTo("minimal")`.
 * - `stream` on the clock: `interval` chunks read under `run` (2 000 on the clock for three chunks 1 s apart), a
 *   `breakAfter` read rejects `TypeError: terminated`; nothing pending.
 * - `seededRandom(7)` as the layer's `random`: two layers wait the same jittered delays.
 * - A stub `fetch` rejecting happy-dom's `DOMException` "NetworkError": a GET is retried (3 attempts, reasons
 *   "network error", `RetryExhaustedError` with that cause); a keyless POST goes once.
 * - A retried 503's small body (300 bytes, streamed) is read to its end; one past 64 KiB is cancelled.
 * - Chromium: the `./testing/clock` entry's `TestClock` runs in a page and fires a page's timers in order.
 *
 * Docs-silent (not pinned):
 * - `sequence`/`flaky` nested in `outage` or another `sequence` see the handler's attempt number, not their own
 *   count: `outage(…, sequence([status(503), json(…)]), …)` first seen at attempt 5 answers the JSON at once.
 * - A stalled `stream` body read under `run` with `timeout.attempt` set: no timer is pending once headers arrived
 *   (the attempt timeout does not bound the body, as docs/retry.md says), so `run` ends "never settled" after
 *   about 3 s in Node.
 */
import { buildSync } from "esbuild";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isRetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  json,
  latency,
  recordEvents,
  seededRandom,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { launchChromium } from "../runtimes/chromium.ts";

const server = setupServer(corsPreflight());
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

describe("TestClock carries the layer's timers", () => {
  it("advance(ms) alone carries two Retry-After waits through MSW", async () => {
    const api = upstream(
      "GET",
      "https://adv.example/x",
      sequence([status(503, { retryAfter: 1 }), status(503, { retryAfter: 1 }), json({ ok: 1 })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    let settled = false;
    const call = resilience.fetch("https://adv.example/x").finally(() => {
      settled = true;
    });
    await clock.advance(10_000);
    expect(settled).toBe(true);
    expect(api.count()).toBe(3);
    expect(clock.now()).toBe(10_000);
    expect(clock.pending()).toBe(0);
    expect((await call).status).toBe(200);
  });

  it("without a clock, vitest's fake timers and setSystemTime set the layer's time (a clock set back too)", async () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
      const waited = upstream("GET", "https://fake.example/w", sequence([status(503, { retryAfter: 1 }), json({})]));
      server.use(waited.handler);
      const plain = createResilience();
      let settled = false;
      const call = plain.fetch("https://fake.example/w").finally(() => {
        settled = true;
      });
      for (let i = 0; i < 20 && !settled; i++) await vi.advanceTimersByTimeAsync(250);
      expect(settled).toBe(true);
      expect((await call).status).toBe(200);
      expect(waited.count()).toBe(2);

      const api = upstream(
        "GET",
        "https://fake.example/x",
        sequence([status(503), status(503), status(503), json({ ok: 1 })]),
      );
      server.use(api.handler);
      const resilience = createResilience({
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 3, timeout: 30_000 },
      });
      const recorder = recordEvents(resilience);
      for (let k = 0; k < 3; k++) await resilience.fetch("https://fake.example/x");
      recorder.expectBreakerOpened("fake.example");
      vi.setSystemTime(new Date("2029-12-31T00:00:00Z"));
      await expect(resilience.fetch("https://fake.example/x")).rejects.toMatchObject({ name: "CircuitOpenError" });
      vi.setSystemTime(new Date("2029-12-31T00:00:29Z"));
      await expect(resilience.fetch("https://fake.example/x")).rejects.toMatchObject({ name: "CircuitOpenError" });
      vi.setSystemTime(new Date("2029-12-31T00:00:31Z"));
      expect((await resilience.fetch("https://fake.example/x")).status).toBe(200);
      expect(api.count()).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it("the ky client: Retry-After passes on the clock", async () => {
    const api = upstream("GET", "https://ky.example/x", sequence([status(503, { retryAfter: 2 }), json({ ok: 1 })]));
    server.use(api.handler);
    const clock = new TestClock();
    const client = createClient({ resilience: { clock } });
    const started = Date.now();
    expect(await clock.run(client.get("https://ky.example/x").json())).toEqual({ ok: 1 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(clock.now()).toBe(2_000);
    expect(clock.pending()).toBe(0);
    expect(api.count()).toBe(2);
  });

  it("a hedged chain: the hedge's timer and the loser's latency are cancelled", async () => {
    const clock = new TestClock();
    const fast = upstream("GET", "https://p.example/v1/x", latency(100, json({ from: "p" }), { clock }));
    const q = upstream("GET", "https://q.example/v1/x", json({ from: "q" }));
    server.use(fast.handler, q.handler);
    const resilience = createResilience({
      clock,
      timeout: { attempt: 10_000, total: 60_000 },
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 2_000 },
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "q", url: "https://q.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const first = await clock.run(resilience.fetch("https://p.example/v1/x"));
    expect(await first.json()).toEqual({ from: "p" });
    expect(clock.now()).toBe(100);
    expect(clock.pending()).toBe(0);
    expect(q.count()).toBe(0);

    const slow = upstream("GET", "https://p.example/v1/x", latency(5_000, json({ from: "p" }), { clock }));
    server.use(slow.handler);
    const second = await clock.run(resilience.fetch("https://p.example/v1/x"));
    expect(await second.json()).toEqual({ from: "q" });
    expect(clock.now()).toBe(2_100);
    expect(clock.pending()).toBe(0);
    expect(slow.count()).toBe(1);
    expect(getResilienceInfo(second)?.endpoint).toBe("q");
    // A hedge that won passed over nothing: the loser did not fail, so no `fallback` event.
    expect(recorder.of("fallback")).toEqual([]);
  });

  it("degradation steps down per stepInterval on the clock", async () => {
    const clock = new TestClock(1_000_000);
    const api = upstream("GET", "https://deg.example/x", status(500));
    server.use(api.handler);
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1_000, failureRate: 1 },
      degradation: degradation({ minSamples: 2, triggers: { cpuUsage: 1 } }),
    });
    const recorder = recordEvents(resilience);
    for (let k = 0; k < 40; k++) {
      await clock.run(resilience.fetch("https://deg.example/x"));
      await clock.advance(1_000);
    }
    expect(recorder.of("degradation").map((e) => `${e.from}>${e.to}`)).toEqual([
      "full>high",
      "high>medium",
      "medium>low",
      "low>minimal",
    ]);
    recorder.expectDegradedTo("minimal");
    expect(resilience.degradation?.currentLevel().name).toBe("minimal");
  });

  it("stream on the clock: intervals under run, breakAfter as TypeError: terminated", async () => {
    const clock = new TestClock();
    server.use(
      upstream("GET", "https://s.example/a", stream(["a", "b", "c"], { interval: 1_000, clock })).handler,
      upstream("GET", "https://s.example/b", stream(["a", "b", "c"], { interval: 1_000, breakAfter: 2, clock }))
        .handler,
    );
    const resilience = createResilience({ clock });
    const whole = await clock.run(resilience.fetch("https://s.example/a"));
    expect(await clock.run(whole.text())).toBe("abc");
    expect(clock.now()).toBe(2_000);
    const broken = await clock.run(resilience.fetch("https://s.example/b"));
    await expect(clock.run(broken.text())).rejects.toMatchObject({ name: "TypeError", message: "terminated" });
    expect(clock.pending()).toBe(0);
  });

  it("seededRandom makes the jitter reproducible", async () => {
    const delays = async (host: string): Promise<number[]> => {
      const clock = new TestClock();
      server.use(upstream("GET", `https://${host}/x`, sequence([status(503), status(503), json({})])).handler);
      const resilience = createResilience({ clock, random: seededRandom(7) });
      const recorder = recordEvents(resilience);
      await clock.run(resilience.fetch(`https://${host}/x`));
      return recorder.of("retry").map((e) => e.delay);
    };
    const first = await delays("j1.example");
    expect(first).toHaveLength(2);
    expect(await delays("j2.example")).toEqual(first);
  });
});

describe("the happy-dom notes", () => {
  it("a DOMException NetworkError is a network error: a GET retried, a keyless POST once", async () => {
    let calls = 0;
    const stub = async (): Promise<Response> => {
      calls++;
      throw new DOMException("Network error", "NetworkError");
    };
    const clock = new TestClock();
    const resilience = createResilience({ clock, fetch: stub });
    const recorder = recordEvents(resilience);
    const error = await clock.run(resilience.fetch("https://d.example/x")).catch((e: unknown) => e);
    expect(isRetryExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(DOMException);
    expect(calls).toBe(3);
    expect(recorder.of("retry").map((e) => e.reason)).toEqual(["network error", "network error"]);
    calls = 0;
    await expect(clock.run(resilience.fetch("https://d.example/x", { method: "POST", body: "x" }))).rejects.toThrow();
    expect(calls).toBe(1);
  });

  it("a retried 503's small body is drained to its end; one past 64 KiB is cancelled", async () => {
    const log: string[] = [];
    const body = (size: number): ReadableStream<Uint8Array> => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((done) => setTimeout(done, 2));
          if (sent >= 3) {
            log.push(`end ${size}`);
            controller.close();
            return;
          }
          sent++;
          controller.enqueue(new Uint8Array(size));
        },
        cancel() {
          log.push(`cancel ${size}`);
        },
      });
    };
    let small = 0;
    let large = 0;
    server.use(
      http.get("https://drain.example/small", () =>
        small++ === 0 ? new HttpResponse(body(100), { status: 503 }) : HttpResponse.json({ ok: 1 }),
      ),
      http.get("https://drain.example/large", () =>
        large++ === 0 ? new HttpResponse(body(40_000), { status: 503 }) : HttpResponse.json({ ok: 1 }),
      ),
    );
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    expect((await clock.run(resilience.fetch("https://drain.example/small"))).status).toBe(200);
    expect((await clock.run(resilience.fetch("https://drain.example/large"))).status).toBe(200);
    for (let i = 0; i < 50 && log.length < 2; i++) await new Promise((done) => setTimeout(done, 1));
    expect(log.sort()).toEqual(["cancel 40000", "end 100"]);
  });
});

describe("TestClock in a browser page", () => {
  /** The `./testing/clock` entry as a page script: `window.TC.TestClock`. */
  const pageScript = (): string =>
    (
      buildSync({
        entryPoints: [new URL("../../src/testing/clock.ts", import.meta.url).pathname],
        bundle: true,
        format: "iife",
        globalName: "TC",
        write: false,
        platform: "browser",
        logLevel: "silent",
      }).outputFiles[0] as { text: string }
    ).text;

  /** `fn` in a page with the clock entry loaded; `fastClock`: the page's `performance.now` runs 100 times fast first. */
  async function inPage<T>(fn: () => Promise<T>, fastClock = false): Promise<T> {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto("about:blank");
      if (fastClock) {
        await page.evaluate(() => {
          const real = performance.now.bind(performance);
          (window as unknown as { realNow: () => number }).realNow = real;
          performance.now = () => real() * 100;
        });
      }
      await page.addScriptTag({ content: pageScript() });
      return await page.evaluate(fn);
    } finally {
      await browser.close();
    }
  }

  it("runs in a page and fires its timers in order", { timeout: 30_000 }, async () => {
    const order = await inPage(async () => {
      const { TestClock: Clock } = (window as unknown as { TC: typeof import("../../src/testing/clock.ts") }).TC;
      const clock = new Clock();
      const fired: number[] = [];
      for (const at of [300, 100, 200]) clock.setTimer(() => fired.push(at), at);
      await clock.run(new Promise<void>((done) => clock.setTimer(done, 400)));
      return { fired, now: clock.now() };
    });
    expect(order).toEqual({ fired: [100, 200, 300], now: 400 });
  });

  it("run gives up on a hung promise after about 3 s, before a runner's 5 s timeout, in a browser too", {
    timeout: 30_000,
  }, async () => {
    // The page's performance.now runs 100 times fast, so 3 s of it pass in about 30 ms: a give-up
    // measured in real time comes at once, one counted in turns (1,000 idle steps, each three clamped
    // setTimeout(0) of 4 ms or more, about 13 s in a page) is still pending when the page stops waiting.
    const outcome = await inPage(async () => {
      const { TestClock: Clock } = (window as unknown as { TC: typeof import("../../src/testing/clock.ts") }).TC;
      const realNow = (window as unknown as { realNow: () => number }).realNow;
      const clock = new Clock();
      const started = realNow();
      const ended = await Promise.race([
        clock.run(new Promise<void>(() => {})).then(
          () => "settled",
          (error: Error) => error.message,
        ),
        new Promise<string>((done) => setTimeout(() => done("still pending after 3 s"), 3_000)),
      ]);
      return { ended, ms: realNow() - started };
    }, true);
    expect(outcome.ended).toMatch(/never settled/);
    expect(outcome.ms).toBeLessThan(1_000);
  });
});
