/**
 * Outside-in attack on docs/testing.md, sentence by sentence, and on the JSDoc of the `./testing` entry
 * (`TestClock`, `seededRandom`, the fault builders, `upstream`, `recordEvents`, `corsPreflight`), used the way a
 * user's own vitest suite with MSW 3 uses them, on every path the layer has.
 *
 * Docs:
 * - docs/testing.md: the builder table and "Each builder refuses a bad argument at once with a `TypeError` (…)";
 *   "A `flaky` seed counts as a 32-bit whole number (`seed >>> 0`): 0.25 and 0.75 give the same draws";
 *   "`upstream(method, url, fault)` wraps a fault into an MSW handler that records every request: `count()`,
 *   `requests`, `bodies`, `header(name)`, `reset()` (after which `sequence` and `flaky` start over)";
 *   "`recordEvents(resilience)` collects the layer's events in order, with `of(type)`, `expectBreakerOpened(key)`,
 *   `expectBreakerClosed(key)`, `expectRetries(n, key?)`, `expectFallback(from, next?)`, `expectDegradedTo(level)`
 *   (they throw plain Errors, so any runner works)"; "`TestClock` moves time only when told (`advance(ms)`, or
 *   `run(promise)` which fires timers until the promise settles, so backoffs take no real time)"; "`run` fires the
 *   next timer after three real turns (`setTimeout(0)` each) whether or not other work is still under way: a
 *   request to a real server (…) takes longer than that, so `run` may jump to a timeout or hedge timer before the
 *   server answers"; "A delay past 2^31 − 1 ms waits that long"; "a timer that throws rejects `advance` or `run`
 *   with its error, time left at that timer's"; "`seededRandom(seed)` makes jitter reproducible"; "Without a
 *   `clock` option the layer reads `Date.now()` as it is, so vitest's fake timers and `vi.setSystemTime` set its
 *   time. A date set earlier than one the layer has already seen is a clock set back: an open breaker then waits
 *   its `timeout` again from that date"; the MSW quirk paragraph ("requests it re-sends (fallbacks, redirects,
 *   rewrites) keep every header under MSW too"; "With ky, pass the URL and options (`api.post(url, { body,
 *   headers })`), which keep every header"); the global-install paragraph ("a layer made before `server.listen()`
 *   and installed after it sends through the fetch that was global when it was made, past MSW, to the network.
 *   Made after `listen()`, it sends through MSW's patch; installed before it, MSW's patch wraps it, and the layer
 *   (…) passes it straight to the fetch beneath it, where MSW meets it. `server.close()` puts back what was global
 *   at `listen()`: an install made while MSW listened is undone with it."); the component-test snippet.
 * - JSDoc: `TestClock` ("time moves only when the test says so, and timers fire in order without real waiting";
 *   `pending()` "Timers scheduled and not yet fired or cancelled"; `advance` "Moves time forward by `ms`, firing
 *   every timer due on the way, in order"; `waitForTimers` "Yields real turns until at least `count` timers are
 *   pending (e.g. a backoff started)"; `run` "Settles `promise`, firing timers whenever nothing else can
 *   progress"); `seededRandom` ("the same seed always yields the same sequence"); `stream` ("Its waits are on
 *   `clock` when one is given (advance it to see the break)"); `flaky` ("@example flaky(0.3, { seed: 1 }) // 30%
 *   503s, else a JSON 200"); `outage` ("while `clock.now()` is in [from, until)"); `recordEvents`' example
 *   (`recorder.expectBreakerOpened("api.example")`); `Clock` ("Every delay, timeout and breaker deadline goes
 *   through a `Clock`, so tests advance time instead of sleeping").
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), every `./testing` export; MSW 3's `setupServer` from
 * "msw/node" (unhandled requests bypassed, so the real servers below are reachable); two node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts); vitest's fake `Date` for a clock set back.
 *
 * Paths: plain call (GET, keyed POST), fallback chain (p → q), hedge, library redirect (307), degradation rewrite,
 * `Request` input (a body and no content-type of its own: MSW's Headers quirk), ky client, `resilientProxy`
 * (retries, an open circuit's `Retry-After`, a hung upstream's 504, a clock set back), a layer installed as the
 * global fetch in each order around `server.listen()`, a real server under `run`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; the JSDoc was made exact in the same
 * session, so a plain `it` asserting what both texts now say):
 * 1. `TestClock.run` JSDoc (src/testing/test-clock.ts): "Settles `promise`, firing timers whenever nothing else
 *    can progress." Observed: with a request in flight to a real 127.0.0.1 server that answers 150 ms later, `run`
 *    fires the layer's pending 10 s attempt timer after its three real turns (a few ms): the call rejects with a
 *    `TimeoutError` ("attempt timeout of 10000 ms exceeded"), `now()` 10 000, though the server's answer was still
 *    to come. docs/testing.md says exactly this ("whether or not other work is still under way … `run` may jump
 *    to a timeout or hedge timer before the server answers"); the JSDoc a user reads in the editor says the
 *    opposite. Source: src/testing/test-clock.ts `run` fires `#earliest()` after `#yield()` (`TURNS_PER_STEP` 3)
 *    whenever the promise has not settled, with no knowledge of I/O under way.
 *
 * Held (plain `it`):
 * - The component-test snippet of docs/testing.md as written (3 requests, one key on each, `expectRetries(2)`,
 *   the first wait the 503's `Retry-After: 1` on the clock), and README's breaker test.
 * - `TestClock`: timers fire in time order, equal times in the order set; a timer set from a callback with no
 *   delay fires within the same `advance`; a cancelled timer never fires and leaves `pending()`; cancelling twice,
 *   or after firing, is harmless; NaN and negative delays are no delay; a delay of 2^32 fires at 2^31 − 1;
 *   `advance` refuses NaN, Infinity, a negative or a string step and a start that is no finite number with a
 *   TypeError; a throwing timer rejects `advance` and `run` with its error, `now()` at that timer's, later timers
 *   still pending; `run` of a settled or rejected promise hands it back; `waitForTimers()` resolves once a 503's
 *   backoff is pending and `advance` then carries the call through.
 * - `seededRandom`: same seed, same sequence, values in [0, 1); 0.25 and 0.75, -1 and 2^32 − 1 draw alike; as the
 *   layer's `random`, two layers wait the same jittered backoffs and another seed waits others. `flaky(0.3,
 *   { seed: 1 })` fails about 30% (a 503, else `{ ok: true }`), the same requests on two upstreams, and again
 *   after `reset()`. `outage` answers `during` on [from, until).
 * - Builders refuse bad arguments at once with a TypeError (a sample: NaN wait, status 600, `retryAfter` 1.5, a
 *   date in year 10000, a hole in `sequence`, `then: "loop"`, a string seed, `outage` without a clock, a `latency`
 *   clock without `setTimer`, `breakAfter` past the chunks).
 * - `stream(…, { breakAfter, interval, clock })`: the break waits `interval` on the clock (a timer pending until
 *   then); the read rejects `TypeError: terminated`. A reader's cancel removes the next chunk's timer.
 * - The table and `upstream`: `networkError()` (a GET retried, a keyless POST once, a keyed POST retried);
 *   `malformedJson()` (a 200 "application/json" whose `json()` is a SyntaxError); `json` 200 by default; records
 *   (`count()`, `bodies`, `header()` with `null` where absent, readable `requests`), `reset()` restarting a cycling
 *   `sequence`; the MSW quirk itself (`new Headers(request.headers)` of a bodied `Request` keeps only the
 *   content-type) so the `Request`-input paths below meet it.
 * - Paths under MSW on a `TestClock`, nothing left pending after each: chain p (503) → q (`expectFallback("p",
 *   "q")`, endpoint q); a hedge where p's `latency` loses to q (p's request aborted, its wait cancelled); a 307
 *   from a `Request` input (body, `authorization`, `x-trace`, no content-type of its own) replays body and every
 *   header, one `redirect` event; a degradation rewrite of such a `Request` keeps every header
 *   (`expectDegradedTo("medium")`, quality 0.8); ky with URL and options keeps every header and the 503's
 *   `Retry-After` passes on the clock; `resilientProxy` on the clock retries a 503 after its `Retry-After`, answers
 *   an open circuit 503 with `Retry-After` from the clock (45, then 25 after 20 s), and a `hang()` upstream 504
 *   (each hung request heard its abort).
 * - `recordEvents`: `expectBreakerOpened("api.example")` as its JSDoc example (the key is the host), events in
 *   order, `stop()`, misses throw plain `Error`s.
 * - The global-install paragraph, each order with a real server beside MSW: made and installed before `listen()`,
 *   MSW answers; made before, installed after, the real server answers (past MSW); made after, MSW answers;
 *   `server.close()` undoes an install made while MSW listened, and keeps one made before.
 * - Without a `clock`, `vi.setSystemTime` set back a day on the proxy's layer: the open circuit's 503 says
 *   `Retry-After` of its 30 s `timeout` from the earlier date, and it lets a request through 31 s after it.
 *
 * Docs-silent (not pinned):
 * - `status(…, { retryAfter: aDate })` under `new TestClock()` (which starts at 0, as every example does): the layer
 *   reads the date against the clock, decades ahead (its whole epoch time), so the call ends at once with the 503 (no retry, one
 *   request), where a user who wrote `new Date(Date.now() + 2_000)` expects a 2 s wait; `new TestClock(Date.now())`
 *   waits it (about 2 s, the date's milliseconds dropped by `toUTCString`). The table says only "as a `Date`".
 * - An `expect` inside a `resilience.on(…)` listener that fails is reported with `console.error` (Node 22 has no
 *   `reportError`) and the test passes: docs/health-and-events.md says listener errors are reported, never thrown;
 *   docs/testing.md, whose recorder "throws plain Errors", does not warn that assertions belong after the call.
 * - `run` fires whatever timer is earliest, one left by an earlier call nobody awaits included, moving `now()`.
 * - MSW 3 has no `onUnhandledRequest` (it is `onUnhandledFrame`); docs/testing.md names neither, and its snippet's
 *   `server.listen()` lets an unhandled request go to the network with a warning.
 * - The kit has no fakes of KV or Durable Objects: a user testing `kvStore`/`durableObjectStore` brings their own.
 * - A layer with `degradation` on a `TestClock`: the CPU trigger divides the process's CPU time by the clock's
 *   time (docs/degradation.md says so and suggests `cpuUsage: 1`); docs/testing.md does not mention it.
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  type Fault,
  flaky,
  hang,
  json,
  latency,
  malformedJson,
  networkError,
  outage,
  recordEvents,
  seededRandom,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { httpUpstream } from "../helpers/http-upstream.ts";

const real = httpUpstream();
const spare = httpUpstream();
const server = setupServer(corsPreflight());
const listen = () => server.listen({ onUnhandledFrame: "bypass" });

beforeAll(async () => {
  await Promise.all([real.start(), spare.start()]);
  listen();
});
afterEach(() => server.resetHandlers());
afterAll(() => {
  server.close();
  real.stop();
  spare.stop();
});
beforeEach(() => {
  real.reset();
  spare.reset();
});

const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const CREDS = { authorization: "Bearer caller-secret", "x-trace": "t-1" };
const creds = (r: Request) => [r.headers.get("authorization"), r.headers.get("x-trace")];

/** A `Request` built with a body and no content-type of its own: the body gives it one (MSW's Headers quirk). */
const bodied = (url: string, body: string) => new Request(url, { method: "POST", body, headers: CREDS });

describe("docs/testing.md snippets", () => {
  // Your code under test: it takes a fetch.
  async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
    const res = await fetchImpl("https://gen.example/v1/images", { method: "POST", body: JSON.stringify({ prompt }) });
    return (await res.json()) as { url: string };
  }

  it("shows the image after two 503s (the component test, as written)", async () => {
    const api = upstream(
      "POST",
      "https://gen.example/v1/images",
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);

    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(api.header("idempotency-key")).not.toContain(null); // a key on every attempt
    expect(new Set(api.header("idempotency-key")).size).toBe(1); // the same one
    recorder.expectRetries(2);
    // What the snippet leaves implicit: the first wait was the 503's Retry-After, on the clock.
    expect(recorder.of("retry")[0]?.delay).toBe(1_000);
    expect(api.bodies).toEqual(Array(3).fill('{"prompt":"a cat"}'));
    expect(clock.pending()).toBe(0);
  });

  it("stops calling a dead API, then probes it after the breaker's timeout (README)", async () => {
    const api = upstream("POST", "https://gen.example/v1/images", status(503));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });

    for (let i = 0; i < 2; i++) await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    await expect(resilience.fetch("https://gen.example/v1/images", { method: "POST" })).rejects.toThrow(/open/i);
    expect(api.count()).toBe(2);

    await clock.advance(10_000); // the breaker half-opens: the next call is a probe
    await resilience.fetch("https://gen.example/v1/images", { method: "POST" });
    expect(api.count()).toBe(3);
  });
});

describe("TestClock", () => {
  it("fires timers in time order, equal times in the order set, and ones set from a callback in the same advance", async () => {
    const clock = new TestClock(100);
    const fired: string[] = [];
    clock.setTimer(() => fired.push("c@30"), 30);
    clock.setTimer(() => fired.push("a@10"), 10);
    clock.setTimer(() => {
      fired.push(`b@10 now=${clock.now()}`);
      clock.setTimer(() => fired.push(`d@10+0 now=${clock.now()}`), 0);
      clock.setTimer(() => fired.push(`e@10+5 now=${clock.now()}`), 5);
    }, 10);
    expect(clock.pending()).toBe(3);
    await clock.advance(20);
    expect(fired).toEqual(["a@10", "b@10 now=110", "d@10+0 now=110", "e@10+5 now=115"]);
    expect(clock.now()).toBe(120);
    expect(clock.pending()).toBe(1);
    await clock.advance(10);
    expect(fired.at(-1)).toBe("c@30");
    expect(clock.pending()).toBe(0);
  });

  it("a cancelled timer never fires; cancelling twice or after firing is harmless; NaN and negative delays are none", async () => {
    const clock = new TestClock();
    const fired: string[] = [];
    const cancelA = clock.setTimer(() => fired.push("a"), 5);
    const cancelB = clock.setTimer(() => fired.push("b"), 5);
    clock.setTimer(() => cancelB(), 1);
    cancelA();
    cancelA();
    expect(clock.pending()).toBe(2);
    clock.setTimer(() => fired.push(`nan@${clock.now()}`), Number.NaN);
    clock.setTimer(() => fired.push(`neg@${clock.now()}`), -50);
    await clock.advance(0);
    expect(fired).toEqual(["nan@0", "neg@0"]);
    await clock.advance(10);
    expect(fired).toEqual(["nan@0", "neg@0"]);
    expect(clock.pending()).toBe(0);
    cancelB();
  });

  it("a delay past 2^31 - 1 ms waits that long, not for ever and not at once", async () => {
    const clock = new TestClock();
    let fired = false;
    clock.setTimer(() => {
      fired = true;
    }, 2 ** 32);
    await clock.advance(2 ** 31 - 2);
    expect(fired).toBe(false);
    await clock.advance(1);
    expect(fired).toBe(true);
  });

  it("refuses steps and starts that are no finite number >= 0 with a TypeError", async () => {
    const clock = new TestClock();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1, "5"]) {
      await expect(clock.advance(bad as number)).rejects.toBeInstanceOf(TypeError);
    }
    expect(() => new TestClock(Number.NaN)).toThrow(TypeError);
    expect(() => new TestClock(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(clock.now()).toBe(0);
  });

  it("a timer that throws rejects advance and run with its error, time left at that timer's", async () => {
    const clock = new TestClock();
    const boom = new Error("boom");
    clock.setTimer(() => {
      throw boom;
    }, 50);
    clock.setTimer(() => {}, 100);
    await expect(clock.advance(200)).rejects.toBe(boom);
    expect(clock.now()).toBe(50);
    expect(clock.pending()).toBe(1);

    const other = new TestClock();
    other.setTimer(() => {
      throw boom;
    }, 70);
    await expect(other.run(new Promise<never>(() => {}))).rejects.toBe(boom);
    expect(other.now()).toBe(70);
  });

  it("run hands back a settled promise's value or rejection", async () => {
    const clock = new TestClock();
    await expect(clock.run(Promise.resolve(7))).resolves.toBe(7);
    const reason = new RangeError("no");
    await expect(clock.run(Promise.reject(reason))).rejects.toBe(reason);
  });

  it("waitForTimers() resolves once a backoff started; advance then carries the call through", async () => {
    const api = upstream("GET", "https://wait.example/x", sequence([status(503), json({ ok: true })]));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const call = resilience.fetch("https://wait.example/x");
    await clock.waitForTimers(1);
    expect(api.count()).toBe(1);
    expect(clock.pending()).toBe(1);
    await clock.advance(60_000);
    const res = await call;
    expect(res.status).toBe(200);
    expect(api.count()).toBe(2);
    expect(clock.pending()).toBe(0);
  });

  it("run JSDoc: fires the next timer after three real turns, a real server still answering", async () => {
    real.on((hit) => {
      setTimeout(() => hit.res.end("late"), 150);
    });
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, timeout: { attempt: 10_000 } });
    const outcome = await clock.run(resilience.fetch(`${real.base}/slow`)).then(
      async (res) => `${res.status} ${await res.text()}`,
      (error: Error) => `${error.name}: ${error.message} at ${clock.now()}`,
    );
    // The JSDoc said it fired timers only when nothing else could progress ("200 late"); it now says
    // what docs/testing.md says, and what happens: the attempt timer fires before the server answers.
    expect(outcome).toBe("TimeoutError: attempt timeout of 10000 ms exceeded at 10000");
  });
});

describe("seededRandom and flaky", () => {
  it("the same seed yields the same sequence in [0, 1); seeds count as seed >>> 0", () => {
    const draw = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 50 }, () => random());
    };
    const a = draw(42);
    expect(draw(42)).toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(draw(43)).not.toEqual(a);
    expect(draw(0.25)).toEqual(draw(0.75));
    expect(draw(-1)).toEqual(draw(2 ** 32 - 1));
  });

  it("as the layer's random, two layers wait the same jittered backoffs; another seed waits others", async () => {
    const api = upstream("GET", "https://jitter.example/x", status(503));
    server.use(api.handler);
    const delays = async (seed: number) => {
      const clock = new TestClock();
      const resilience = createResilience({ clock, random: seededRandom(seed), retry: { maxAttempts: 4 } });
      const recorder = recordEvents(resilience);
      await clock.run(resilience.fetch("https://jitter.example/x"));
      return recorder.of("retry").map((e) => e.delay);
    };
    const first = await delays(9);
    expect(first).toHaveLength(3);
    expect(await delays(9)).toEqual(first);
    expect(await delays(10)).not.toEqual(first);
  });

  it("flaky(0.3, { seed: 1 }): about 30% 503s, else { ok: true }, the same requests on two upstreams and after reset()", async () => {
    const one = upstream("GET", "https://flaky.example/one", flaky(0.3, { seed: 1 }));
    const two = upstream("GET", "https://flaky.example/two", flaky(0.3, { seed: 1 }));
    server.use(one.handler, two.handler);
    const statuses = async (url: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const res = await fetch(url);
        if (res.status === 200) expect(await res.json()).toEqual({ ok: true });
        else await res.body?.cancel();
        out.push(res.status);
      }
      return out;
    };
    const a = await statuses("https://flaky.example/one", 200);
    const failed = a.filter((s) => s === 503).length;
    expect(failed).toBeGreaterThan(40);
    expect(failed).toBeLessThan(80);
    expect(new Set(a)).toEqual(new Set([200, 503]));
    expect(await statuses("https://flaky.example/two", 200)).toEqual(a);
    one.reset();
    expect(await statuses("https://flaky.example/one", 30)).toEqual(a.slice(0, 30));
  });

  it("outage answers during on [from, until) of its clock, otherwise before and after", async () => {
    const clock = new TestClock();
    const api = upstream(
      "GET",
      "https://outage.example/x",
      outage({ from: 1_000, until: 2_000, clock }, status(503), json({})),
    );
    server.use(api.handler);
    const at = async (t: number) => {
      await clock.advance(t - clock.now());
      const res = await fetch("https://outage.example/x");
      await res.body?.cancel();
      return res.status;
    };
    expect([await at(999), await at(1_000), await at(1_999), await at(2_000)]).toEqual([200, 503, 503, 200]);
  });
});

describe("builders", () => {
  it("refuse a bad argument at once with a TypeError", () => {
    const clock = new TestClock();
    const cases: Array<() => unknown> = [
      () => latency(Number.NaN, json({})),
      () => latency(-1, json({})),
      () => stream(["a"], { interval: Number.POSITIVE_INFINITY }),
      () => status(600),
      () => json({}, { status: 199 }),
      () => status(503, { retryAfter: 1.5 }),
      () => status(503, { retryAfter: 2 ** 53 }),
      () => status(503, { retryAfter: new Date(Number.NaN) }),
      // biome-ignore lint/suspicious/noSparseArray: a hole is what is refused
      () => sequence([status(503), , json({})] as Fault[]),
      // biome-ignore lint/suspicious/noThenProperty: the option's name
      () => sequence([json({})], { then: "loop" as never }),
      () => flaky(0.5, { seed: "1" as never }),
      () => flaky(0.5, { seed: 1, fail: 503 as never }),
      () => outage({ from: 0, until: 1 } as never, status(503), json({})),
      () => latency(10, json({}), { clock: { now: () => 0 } as never }),
      () => stream(["a", "b"], { breakAfter: 2, clock }),
      () => stream(["a", "b"], { stallAfter: 1.5 }),
    ];
    for (const [i, make] of cases.entries()) expect(make, `case ${i}`).toThrow(TypeError);
    const year10000 = new Date(Date.UTC(2000, 0, 1));
    year10000.setUTCFullYear(10_000);
    expect(() => status(503, { retryAfter: year10000 })).toThrow(TypeError);
  });

  it("stream's break waits interval on the clock (advance it to see the break): TypeError: terminated", async () => {
    const clock = new TestClock();
    server.use(
      upstream("GET", "https://s.example/x", stream(["a", "b", "c"], { breakAfter: 2, interval: 100, clock })).handler,
    );
    const resilience = createResilience({ clock });
    const res = await clock.run(resilience.fetch("https://s.example/x"));
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const read = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return "done";
        text += decoder.decode(value);
      }
    })();
    read.catch(() => {});
    await clock.advance(100);
    expect(text).toBe("ab");
    expect(clock.pending()).toBe(1); // the break, 100 ms after the second chunk
    await clock.advance(100);
    await expect(read).rejects.toThrow("terminated");
    expect(text).toBe("ab");
    expect(clock.pending()).toBe(0);
  });
});

describe("the fault table and upstream", () => {
  it("networkError: a GET is retried, a keyless POST stops there, a keyed POST is retried", async () => {
    const get = upstream("GET", "https://net.example/x", networkError());
    const post = upstream("POST", "https://net.example/x", networkError());
    server.use(get.handler, post.handler);
    const clock = new TestClock();
    const plain = createResilience({ clock });
    const keyed = createResilience({ clock, retry: { idempotencyKey: true } });
    await expect(clock.run(plain.fetch("https://net.example/x"))).rejects.toMatchObject({
      name: "RetryExhaustedError",
    });
    expect(get.count()).toBe(3);
    await expect(clock.run(plain.fetch("https://net.example/x", { method: "POST", body: "a" }))).rejects.toThrow();
    expect(post.count()).toBe(1);
    await expect(clock.run(keyed.fetch("https://net.example/x", { method: "POST", body: "a" }))).rejects.toThrow();
    expect(post.count()).toBe(4);
    expect(clock.pending()).toBe(0);
  });

  it("malformedJson: a 200 that says JSON and is not; json: 200 by default", async () => {
    server.use(
      upstream("GET", "https://mj.example/bad", malformedJson()).handler,
      upstream("GET", "https://mj.example/good", json({ a: 1 })).handler,
    );
    const bad = await fetch("https://mj.example/bad");
    expect([bad.status, bad.headers.get("content-type")]).toEqual([200, "application/json"]);
    await expect(bad.json()).rejects.toBeInstanceOf(SyntaxError);
    const good = await fetch("https://mj.example/good");
    expect([good.status, await good.json()]).toEqual([200, { a: 1 }]);
  });

  it("upstream records every request; reset() forgets them and sequence starts over", async () => {
    // biome-ignore lint/suspicious/noThenProperty: the option's name
    const cycling = sequence([status(503), json({ n: 2 })], { then: "cycle" });
    const api = upstream("POST", "https://rec.example/x", cycling);
    server.use(api.handler);
    const statuses: number[] = [];
    for (const body of ["one", "two", "three"]) {
      const res = await fetch("https://rec.example/x", { method: "POST", body, headers: { "x-n": body } });
      await res.body?.cancel();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([503, 200, 503]);
    expect([api.count(), api.bodies, api.header("x-n"), api.header("absent")]).toEqual([
      3,
      ["one", "two", "three"],
      ["one", "two", "three"],
      [null, null, null],
    ]);
    expect(await (api.requests[1] as Request).text()).toBe("two");
    api.reset();
    expect([api.count(), api.bodies, api.requests]).toEqual([0, [], []]);
    const again = await fetch("https://rec.example/x", { method: "POST", body: "four" });
    await again.body?.cancel();
    expect([again.status, api.bodies]).toEqual([503, ["four"]]);
  });

  it("a streamed body its reader cancels stops waiting for its next chunk on the clock; nothing pending", async () => {
    const clock = new TestClock();
    server.use(upstream("GET", "https://sc.example/x", stream(["a", "b", "c"], { interval: 1_000, clock })).handler);
    const res = await fetch("https://sc.example/x");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("a");
    await clock.waitForTimers(1);
    expect(clock.pending()).toBe(1);
    await reader.cancel();
    await clock.advance(0);
    expect(clock.pending()).toBe(0);
  });

  it("the MSW quirk the layer works around is there: new Headers(request.headers) keeps only the content-type", () => {
    const request = bodied("https://quirk.example/x", "payload");
    const copied = new Headers(request.headers);
    expect([copied.get("authorization"), copied.get("x-trace"), copied.get("content-type")]).toEqual([
      null,
      null,
      "text/plain;charset=UTF-8",
    ]);
    expect(creds(request)).toEqual(["Bearer caller-secret", "t-1"]);
  });
});

describe("paths under MSW on a TestClock", () => {
  it("chain p (503) → q: expectFallback, the endpoint that served, nothing pending", async () => {
    const p = upstream("GET", "https://p.example/v1/x", status(503));
    const q = upstream("GET", "https://q.example/v1/x", json({ from: "q" }));
    server.use(p.handler, q.handler);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: "https://p.example/v1" },
            { name: "q", url: "https://q.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const res = await clock.run(resilience.fetch("https://p.example/v1/x"));
    expect(await res.json()).toEqual({ from: "q" });
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    recorder.expectFallback("p", "q");
    expect([p.count(), q.count()]).toEqual([1, 1]);
    expect(clock.pending()).toBe(0);
  });

  it("hedge: p slowed by latency on the clock loses to q, p's request aborted and its wait cancelled", async () => {
    const clock = new TestClock();
    let pAborted = false;
    const slow: Fault = (request, info) => {
      request.signal.addEventListener("abort", () => {
        pAborted = true;
      });
      return latency(5_000, json({ from: "p" }), { clock })(request, info);
    };
    const p = upstream("GET", "https://hp.example/v1/x", slow);
    const q = upstream("GET", "https://hq.example/v1/x", json({ from: "q" }));
    server.use(p.handler, q.handler);
    const resilience = createResilience({
      clock,
      fallback: fallback([
        {
          name: "hedged",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "p", url: "https://hp.example/v1" },
            { name: "q", url: "https://hq.example/v1" },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch("https://hp.example/v1/x"));
    expect(await res.json()).toEqual({ from: "q" });
    expect(clock.now()).toBe(1_000);
    await clock.advance(0);
    expect(pAborted).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a 307 from a Request input replays its body and every header under MSW; one redirect event", async () => {
    const first = upstream(
      "POST",
      "https://r.example/a",
      status(307, { headers: { location: "https://r.example/b" } }),
    );
    const second = upstream("POST", "https://r.example/b", json({ ok: true }));
    server.use(first.handler, second.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const recorder = recordEvents(resilience);
    const res = await clock.run(resilience.fetch(bodied("https://r.example/a", "payload")));
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(second.bodies).toEqual(["payload"]);
    expect(creds(second.requests[0] as Request)).toEqual(["Bearer caller-secret", "t-1"]);
    expect(recorder.of("redirect").map((e) => [e.status, e.dropped])).toEqual([[307, []]]);
    expect(clock.pending()).toBe(0);
  });

  it("a degradation rewrite of a Request input keeps every header under MSW (expectDegradedTo)", async () => {
    const api = upstream("POST", "https://g.example/v1/images", json({ ok: true }));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      degradation: degradation({ rules: [{ match: "https://g.example/v1", params: { quality: "quality" } }] }),
    });
    const recorder = recordEvents(resilience);
    resilience.degradation?.setLevel("medium");
    recorder.expectDegradedTo("medium");
    const res = await clock.run(
      resilience.fetch(bodied("https://g.example/v1/images", '{"prompt":"cat","quality":1}')),
    );
    expect(res.status).toBe(200);
    expect(api.bodies).toEqual(['{"prompt":"cat","quality":0.8}']);
    expect(creds(api.requests[0] as Request)).toEqual(["Bearer caller-secret", "t-1"]);
  });

  it("ky: URL and options keep every header; the 503's Retry-After passes on the clock", async () => {
    const api = upstream(
      "POST",
      "https://ky.example/v1/x",
      sequence([status(503, { retryAfter: 3 }), json({ id: 1 })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const client = createClient({ resilience });
    const body = await clock.run(client.post("https://ky.example/v1/x", { body: "hi", headers: CREDS }).json());
    expect(body).toEqual({ id: 1 });
    expect(clock.now()).toBe(3_000);
    expect(api.requests.map(creds)).toEqual([
      ["Bearer caller-secret", "t-1"],
      ["Bearer caller-secret", "t-1"],
    ]);
    expect(new Set(api.header("idempotency-key")).size).toBe(1);
    expect(api.header("idempotency-key")).not.toContain(null);
  });

  it("resilientProxy on the clock: a 503's Retry-After waited on the clock; an open circuit's Retry-After read from it", async () => {
    const clock = new TestClock(1_000_000);
    const retried = upstream(
      "GET",
      "https://up.example/v1/retried",
      sequence([status(503, { retryAfter: 2 }), json({})]),
    );
    const dead = upstream("GET", "https://up.example/v1/dead", status(503));
    server.use(retried.handler, dead.handler);
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: "https://up.example/v1" }],
      resilience: { clock, breaker: { failureThreshold: 2, timeout: 45_000, key: (url: URL) => url.pathname } },
    });
    const ok = await clock.run(proxy.fetch(new Request("https://w.example/api/retried"), {}, ctx));
    expect([ok.status, ok.headers.get("x-resilience-attempts"), clock.now()]).toEqual([200, "2", 1_002_000]);

    const noRetry = resilientProxy({
      routes: [{ path: "/api", upstream: "https://up.example/v1" }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 2, timeout: 45_000 } },
    });
    for (let i = 0; i < 2; i++) {
      const r = await clock.run(noRetry.fetch(new Request("https://w.example/api/dead"), {}, ctx));
      await r.body?.cancel();
    }
    const open = await clock.run(noRetry.fetch(new Request("https://w.example/api/dead"), {}, ctx));
    expect([open.status, open.headers.get("retry-after")]).toEqual([503, "45"]);
    await clock.advance(20_000);
    const later = await clock.run(noRetry.fetch(new Request("https://w.example/api/dead"), {}, ctx));
    expect([later.status, later.headers.get("retry-after")]).toEqual([503, "25"]);
    expect(dead.count()).toBe(2);
    expect(clock.pending()).toBe(0);
  });

  it("resilientProxy: a hang() upstream under timeout.attempt answers 504, every hung request heard its abort", async () => {
    const clock = new TestClock();
    let aborted = 0;
    const hung: Fault = (request, info) => {
      request.signal.addEventListener("abort", () => {
        aborted++;
      });
      return hang()(request, info);
    };
    const api = upstream("GET", "https://hung.example/v1/x", hung);
    server.use(api.handler);
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: "https://hung.example/v1" }],
      resilience: { clock, timeout: { attempt: 1_000 } },
    });
    const res = await clock.run(proxy.fetch(new Request("https://w.example/api/x"), {}, ctx));
    expect(res.status).toBe(504);
    await clock.advance(0);
    expect(api.count()).toBe(3);
    expect(aborted).toBe(3);
    expect(clock.pending()).toBe(0);
  });
});

describe("recordEvents", () => {
  it("its JSDoc example: expectBreakerOpened keyed by the host; events in order; stop(); misses throw plain Errors", async () => {
    const api = upstream("GET", "https://api.example/v1/x", status(500));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2 } });
    const recorder = recordEvents(resilience);
    const own: string[] = [];
    for (const type of ["request", "breaker", "retry"] as const) resilience.on(type, () => own.push(type));
    for (let i = 0; i < 2; i++) await clock.run(resilience.fetch("https://api.example/v1/x"));
    recorder.expectBreakerOpened("api.example");
    expect(recorder.events.map((e) => e.type)).toEqual(own);
    const miss = (() => {
      try {
        recorder.expectBreakerClosed("api.example");
      } catch (error) {
        return error;
      }
    })();
    expect(Object.getPrototypeOf(miss)).toBe(Error.prototype);
    recorder.stop();
    await expect(resilience.fetch("https://api.example/v1/x")).rejects.toThrow(/open/i);
    expect(recorder.events.map((e) => e.type)).toEqual(own.slice(0, own.length - 1));
  });
});

describe("a layer installed as the global fetch, around server.listen()", () => {
  // Each case opens its own listen: the file's server is closed for it and listens again after.
  beforeEach(() => server.close());
  afterEach(() => listen());

  it("each order meets MSW or the network as the docs say; close() undoes an install made while MSW listened", async () => {
    const results: Record<string, unknown> = {};
    for (const order of ["before", "between", "after"] as const) {
      const platform = globalThis.fetch;
      const own = setupServer();
      let layer = createResilience({ retry: false });
      if (order === "before") globalThis.fetch = layer.fetch;
      own.listen({ onUnhandledFrame: "bypass" });
      if (order === "after") layer = createResilience({ retry: false });
      if (order !== "before") globalThis.fetch = layer.fetch;
      real.reset();
      const api = upstream("GET", `${real.base}/g`, json({ msw: true }));
      own.use(api.handler);
      let closed = false;
      try {
        const res = await fetch(`${real.base}/g`);
        const text = await res.text();
        own.close();
        closed = true;
        const after = globalThis.fetch === layer.fetch ? "layer" : globalThis.fetch === platform ? "platform" : "other";
        results[order] = [text, api.count(), real.hits.length, getResilienceInfo(res)?.attempts, after];
      } finally {
        if (!closed) own.close();
        globalThis.fetch = platform;
      }
    }
    expect(results).toEqual({
      before: ['{"msw":true}', 1, 0, 1, "layer"],
      between: ["ok", 0, 1, 1, "platform"],
      after: ['{"msw":true}', 1, 0, 1, "platform"],
    });
  });
});

describe("without a clock option", () => {
  it("vi.setSystemTime set back a day: the proxy's open circuit waits its timeout again from that date", async () => {
    const api = upstream("GET", "https://back.example/v1/x", sequence([status(503), status(503), json({})]));
    server.use(api.handler);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2030-01-02T00:00:00Z"));
      const proxy = resilientProxy({
        routes: [{ path: "/api", upstream: "https://back.example/v1" }],
        resilience: { retry: false, breaker: { failureThreshold: 2, timeout: 30_000 } },
      });
      const call = async () => {
        const res = await proxy.fetch(new Request("https://w.example/api/x"), {}, ctx);
        await res.body?.cancel();
        return [res.status, res.headers.get("retry-after")];
      };
      expect(await call()).toEqual([503, null]);
      expect(await call()).toEqual([503, null]);
      expect(await call()).toEqual([503, "30"]);
      vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
      expect(await call()).toEqual([503, "30"]);
      vi.setSystemTime(new Date("2030-01-01T00:00:29Z"));
      expect(await call()).toEqual([503, "1"]);
      expect(api.count()).toBe(2);
      vi.setSystemTime(new Date("2030-01-01T00:00:31Z"));
      expect(await call()).toEqual([200, null]);
      expect(api.count()).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });
});
