/**
 * Outside-in attack on the testing kit (`@storycore/resilient-fetch/testing`: the MSW fault builders, `upstream`,
 * `recordEvents`, `TestClock`) and on the StoryCore-Engine mapping (docs/storycore-mapping.md and
 * examples/storycore-parity/engines.ts), looking for promises that hold on a plain call and break on another path
 * (chain, hedge, degradation rewrite, `Request` input, the ky client, `resilientProxy`), and for kit helpers that
 * do something other than what they say.
 *
 * Docs:
 * - docs/testing.md, the builder table: "`stream(chunks, { interval?, stallAfter?, breakAfter?, clock? })` | streams
 *   chunks; can stall, or break mid-body (the client sees `TypeError: terminated`)"; "Each builder refuses a bad
 *   argument at once with a `TypeError` (… a `stallAfter` or `breakAfter` that is no whole number or past the
 *   chunks)"; the `stream` JSDoc: "with `breakAfter: n` it sends n chunks and then, `interval` (default 10 ms)
 *   later, fails mid-body".
 * - docs/testing.md: "`networkError()` | the connection fails (fetch rejects) after the request went out: a
 *   keyless POST stops there"; "`hang()` | never answers; closes when the client aborts"; "`latency(ms, then, {
 *   clock? })` | waits before headers (on the injected clock if given)"; "`upstream(method, url, fault)` … records
 *   every request: `count()`, `requests`, `bodies`, `header(name)`"; "`recordEvents(resilience)` collects the
 *   layer's events in order, with `of(type)`, … `expectFallback(from, next?)`, `expectDegradedTo(level)`";
 *   "`TestClock` moves time only when told (`advance(ms)`, or `run(promise)` …)"; the component test's checks
 *   ("a key on every attempt", "the same one").
 * - docs/storycore-mapping.md: the Names table (`system.breaker("x")`, `.execute(fn)`;
 *   `system.fallback.chain("x").add(fn, { name, expectedQuality })`; `system.degradation.adjust(p)`;
 *   `system.execute(fn, { breaker: "x" })`; `chain.statistics()`, `system.health()`); "The trigger thresholds: error
 *   rate 0.1, response time 30 s, memory 0.9, CPU 0.95."; "As in that system, work run through `system.execute(fn)`
 *   counts in `health()`'s `errorRate` and in the automatic degradation triggers, as every `resilience.fetch` call
 *   does"; "`examples/storycore-parity/engines.ts` rewrites the guide's three integration examples (a video engine,
 *   an image engine, a three-phase workflow) with this library, each block naming the Python it replaces." (the
 *   example's own header: "Each block names the Python it replaces.").
 * - docs/health-and-events.md (which the mapping points to): execute's work counts "in the error rate,
 *   `debugInfo()`'s totals and failures (keyed by its `breaker`'s name, else `"execute"`, with an empty `url`) and
 *   the degradation triggers"; docs/retry.md: "With `execute`'s `breaker`, once that breaker opens no retry waits
 *   behind it: the call ends with the failure that opened it."
 *
 * How: `createResilience`, `getResilienceInfo`, `RetryExhaustedError` (root); `fallback` (./fallback); `degradation`
 * (./degradation); `createClient` (./ky); `resilientProxy` (./cloudflare, a stub `ctx`); every kit export used
 * (./testing); MSW 3's `setupServer` (unhandled requests bypass to the network) for the kit's faults, and a
 * node:http server on 127.0.0.1 (test/helpers/http-upstream.ts) for the mapping's mixed fetch + execute counts.
 * Every layer runs on a `TestClock` (always `await clock.advance(ms)` or `clock.run(…)`); the one real-timer wait is
 * the kit's own 10 ms break on a plain `fetch`. The example was also run as documented (`npm run build && node
 * examples/storycore-parity/engines.ts`, Node 22): it exits 0 and prints wan / qwen /
 * `video:story(medium)+enhanced@720p`, its statistics and five breaker names.
 *
 * Paths: plain `fetch` under MSW, plain layer call, fallback chain, hedged chain, degradation rewrite, `Request`
 * input, the ky client, `resilientProxy`; generic work (`execute`, named breakers, the layer's generic chains).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since: stream's breakAfter: 0 sends an empty chunk first, and the example's three blocks quote the Python, so plain `it`):
 * 1. docs/testing.md table "`stream(…, { …, breakAfter?, … })` | … break mid-body (the client sees `TypeError:
 *    terminated`)" with the JSDoc "with `breakAfter: n` it sends n chunks and then, `interval` (default 10 ms)
 *    later, fails mid-body", and the refusal list, which takes `breakAfter: 0` as valid (0..chunks − 1).
 *    Observed: with `breakAfter: 0` no headers ever arrive: a plain `fetch` under MSW rejects with `TypeError:
 *    fetch failed` (cause `SocketError: closed`) instead of resolving 200 with a body that fails `terminated`.
 *    Through the layer the break is then a connection failure, not a body break: a GET is sent 3 times and
 *    rejects with `RetryExhaustedError` (where `breakAfter: 1` resolves 200 after one request and its body read
 *    fails `terminated`), so a test written to cover a mid-body break exercises connect retries instead. Cause:
 *    src/testing/faults.ts, `stream`'s `pull` errors the body before it has yielded anything, and MSW hands a
 *    mocked response to fetch only once its body yields (the `stallAfter: 0` branch right below knows it and
 *    enqueues an empty chunk first; the `breakAfter` branch does not). Fix: enqueue an empty chunk before the
 *    break when nothing was sent (as `stallAfter: 0` does), or refuse `breakAfter: 0`.
 * 2. docs/storycore-mapping.md "`examples/storycore-parity/engines.ts` rewrites the guide's three integration
 *    examples … each block naming the Python it replaces" (and the example's header, "Each block names the Python
 *    it replaces."). Observed: only the Video Engine block quotes the Python it replaces
 *    (`system.get_circuit_breaker('hunyuan_video')`, `add_fallback`, `adjust_parameters`,
 *    `execute_with_resilience(…)`); the Image Engine block carries no comment at all, and the Workflow block only
 *    "Each phase's parameters go through the current degradation level." Fix: add the Python lines (`qwen_cb =
 *    system.get_circuit_breaker('qwen_image')`, `system.execute_with_resilience(…)` …) to the two blocks, or say
 *    "the video block".
 *
 * Held (plain `it`):
 * - `stream({ breakAfter: 1 })` through the ky client and through `resilientProxy`: 200, then the body read rejects
 *   `TypeError: terminated`.
 * - `networkError()` and a keyless POST: one request on a plain call, a chain, a hedged chain, the ky client and
 *   `resilientProxy` (the chain stops after the endpoint; the proxy answers 502); the spare never asked.
 * - `hang()` closes (the handler's request signal aborts) when the proxy's client aborts and when a ky caller aborts.
 * - The component test's key checks through a degradation rewrite of a `Request` input, the ky client with
 *   degradation and `resilientProxy` with `retry.idempotencyKey`: 3 requests, one non-null key, each body the same
 *   (rewritten at `medium`).
 * - A hedged chain on a `TestClock` with `latency` faults on the clock, degradation at `low` and a `Request` input:
 *   the hedge serves at 1100 ms, both bodies rewritten, `authorization` kept at the same origin, nothing pending;
 *   the same through the ky client and `resilientProxy`.
 * - Mapping: `execute(fn, { breaker })` counts in `health().errorRate`, `debugInfo()` (key the breaker's name, url
 *   empty) and steps the level down by its error rate; its p95 trigger holds at exactly 30 000 ms and steps at
 *   30 001 ms; mixed with real `resilience.fetch` calls to a 127.0.0.1 server, both count in one error rate and one
 *   total; `system.breaker("x")` is the breaker `execute(…, { breaker: "x" })` runs behind, and once it opens
 *   mid-retry the call ends with the failure that opened it (no further wait); a generic
 *   `system.fallback.chain("x")` passing an entry over is a `fallback` event `expectFallback(from, next)` sees, and
 *   its `statistics()` is `health().fallback.x`.
 *
 * Docs-silent (not pinned):
 * - Under MSW in Node, aborting a fetch while its mocked streamed body is still open (a `stream` that stalls, or
 *   any MSW `ReadableStream` body) can raise an uncaught `AssertionError: assert(!this.aborted)` from undici's
 *   parser (`Request.onComplete`, fired by MSW's mock socket closing), which makes a vitest run report "unhandled
 *   errors" and fail although every test passed. Reproduced with a plain MSW handler too: MSW/undici, not the kit;
 *   docs/testing.md warns of such noise under happy-dom only.
 * - `upstream(method, …)` checks `method` by looking it up in a plain object: `"toString"`, `"constructor"` or
 *   `"isPrototypeOf"` (from untyped callers) are taken and give a handler that is no MSW handler.
 * - `system.execute(() => system.fetch(url))` counts the work twice in `health()`/`debugInfo()` totals (the fetch
 *   and the execute), and a 503 the fetch resolves with is a failure for one and a success for the other.
 * - `stream` with both `stallAfter` and `breakAfter` is taken; `breakAfter` wins.
 */
import { readFileSync } from "node:fs";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, RetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  type Fault,
  hang,
  json,
  latency,
  networkError,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  type Upstream,
  upstream,
} from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: "bypass" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const real = httpUpstream();
serveDuringFile(real);

const ctx = { waitUntil(_promise: Promise<unknown>) {}, passThroughOnException() {} };

/** What a promise settled with, never rejecting. */
async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/** Real zero-delay turns until `check()` holds (MSW moves on real turns); fails after `max` turns. */
async function until(check: () => boolean, max = 500): Promise<void> {
  for (let i = 0; i < max && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 0));
  expect(check()).toBe(true);
}

function use(method: "GET" | "POST", url: string, fault: Fault): Upstream {
  const api = upstream(method, url, fault);
  server.use(api.handler);
  return api;
}

describe("defects", () => {
  // docs/testing.md: stream … "can stall, or break mid-body (the client sees `TypeError: terminated`)"; JSDoc: "with
  // `breakAfter: n` it sends n chunks and then, `interval` … later, fails mid-body". breakAfter: 0 is taken as valid.
  it("1a. stream({ breakAfter: 0 }): a plain fetch gets headers, then its body read fails `terminated`", async () => {
    use("GET", "https://s.example/zero", stream(["a", "b", "c"], { breakAfter: 0 }));
    const got = await outcome(fetch("https://s.example/zero"));
    // Observed: fetch itself rejects (TypeError: fetch failed, cause SocketError: closed): no headers ever came.
    expect(got.error).toBeUndefined();
    const response = got.value as Response;
    expect(response.status).toBe(200);
    const read = await outcome(response.text());
    expect(read.error).toBeInstanceOf(TypeError);
    expect((read.error as Error).message).toBe("terminated");
  });

  it("1b. stream({ breakAfter: 0 }) through the layer: one request, a 200 whose body breaks (as breakAfter: 1)", async () => {
    const clock = new TestClock();
    const api = use("GET", "https://s.example/zero-layer", stream(["a", "b", "c"], { breakAfter: 0, clock }));
    const layer = createResilience({ clock });
    const got = await outcome(clock.run(layer.fetch("https://s.example/zero-layer")));
    // Observed: 3 requests, RetryExhaustedError (the break is taken for a connection failure and retried).
    expect(api.count()).toBe(1);
    expect(got.error).toBeUndefined();
    expect((got.value as Response).status).toBe(200);
    const read = await outcome(clock.run((got.value as Response).text()));
    expect((read.error as Error).message).toBe("terminated");
  });

  // docs/storycore-mapping.md: "… rewrites the guide's three integration examples … each block naming the Python it
  // replaces"; the example's header: "Each block names the Python it replaces."
  it("2. every integration block of engines.ts names the StoryCore Python it replaces", () => {
    const source = readFileSync(new URL("../../examples/storycore-parity/engines.ts", import.meta.url), "utf8");
    // The three blocks, the last one up to the usage lines.
    const blocks = source
      .slice(0, source.indexOf("\n// Usage"))
      .split(/^\/\/ --- /m)
      .slice(1);
    expect(blocks.map((b) => b.slice(0, b.indexOf(" ")))).toEqual(["Video", "Image", "Workflow"]);
    // A quoted Python call: a comment line holding a snake_case call such as `get_circuit_breaker(` or
    // `execute_with_resilience(`.
    const namesPython = (block: string) => /^\s*\/\/.*\b[a-z]+_[a-z_]+\(/m.test(block);
    // Observed: [true, false, false] (the Image and Workflow blocks quote none).
    expect(blocks.map(namesPython)).toEqual([true, true, true]);
  });
});

describe("held: the kit's faults on every path", () => {
  it("stream({ breakAfter: 1 }) through ky and resilientProxy: 200, then `TypeError: terminated`", async () => {
    use("GET", "https://s.example/one", stream(["a", "b", "c"], { breakAfter: 1 }));
    const viaKy = await outcome(createClient({}).get("https://s.example/one").text());
    expect(viaKy.error).toBeInstanceOf(TypeError);
    expect((viaKy.error as Error).message).toBe("terminated");
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: "https://s.example/" }] });
    const response = await proxy.fetch(new Request("https://worker.example/one"), {}, ctx);
    expect(response.status).toBe(200);
    const read = await outcome(response.text());
    expect((read.error as Error).message).toBe("terminated");
  });

  it("networkError() stops a keyless POST on a plain call, a chain, a hedge, the ky client and the proxy", async () => {
    const p = use("POST", "https://p.example/v1/x", networkError());
    const q = use("POST", "https://q.example/v1/x", json({ from: "q" }));
    const chain = {
      name: "c",
      endpoints: [
        { name: "p", url: "https://p.example/v1" },
        { name: "q", url: "https://q.example/v1" },
      ],
    };
    const clock = new TestClock();
    const post = { method: "POST", body: '{"prompt":"cat"}' };
    const plain = createResilience({ clock });
    expect((await outcome(clock.run(plain.fetch("https://p.example/v1/x", post)))).error).toBeInstanceOf(
      RetryExhaustedError,
    );
    const chained = createResilience({ clock, fallback: fallback([chain]) });
    expect((await outcome(clock.run(chained.fetch("https://p.example/v1/x", post)))).error).toMatchObject({
      name: "FallbackExhaustedError",
    });
    const hedged = createResilience({ clock, fallback: fallback([{ ...chain, hedge: { delay: 10 } }]) });
    expect((await outcome(clock.run(hedged.fetch("https://p.example/v1/x", post)))).error).toMatchObject({
      name: "FallbackExhaustedError",
    });
    const viaKy = await outcome(clock.run(createClient({ resilience: chained }).post("https://p.example/v1/x", post)));
    expect(viaKy.error).toMatchObject({ name: "FallbackExhaustedError" });
    const proxy = resilientProxy({ routes: [{ path: "/", chain }], resilience: { clock } });
    const answer = await clock.run(proxy.fetch(new Request("https://worker.example/x", post), {}, ctx));
    expect(answer.status).toBe(502);
    await answer.body?.cancel();
    expect(p.count()).toBe(5);
    expect(q.count()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("hang() closes when the proxy's client aborts, and when a ky caller aborts", async () => {
    let closed = 0;
    const api = use("GET", "https://h.example/x", (request, info) => {
      request.signal.addEventListener("abort", () => closed++, { once: true });
      return hang()(request, info);
    });
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: "https://h.example/" }] });
    const client = new AbortController();
    const viaProxy = outcome(proxy.fetch(new Request("https://worker.example/x", { signal: client.signal }), {}, ctx));
    await until(() => api.count() === 1);
    client.abort(new Error("client gone"));
    expect((await viaProxy).error).toMatchObject({ message: "client gone" });
    await until(() => closed === 1);
    const caller = new AbortController();
    const viaKy = outcome(createClient({}).get("https://h.example/x", { signal: caller.signal }));
    await until(() => api.count() === 2);
    caller.abort(new Error("caller gone"));
    expect((await viaKy).error).toMatchObject({ message: "caller gone" });
    await until(() => closed === 2);
  });

  it("the component test's key checks hold through a rewrite of a Request input, the ky client and the proxy", async () => {
    const url = "https://gen.example/v1/images";
    const body = JSON.stringify({ prompt: "cat", quality: 1, resolution: "1000x1000", steps: 50 });
    const rewritten = '{"prompt":"cat","quality":0.8,"resolution":"896x896","steps":30}';
    const script = () =>
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/c" })]);
    const check = (api: Upstream, bodies: string) => {
      expect(api.count()).toBe(3);
      expect(api.header("idempotency-key")).not.toContain(null);
      expect(new Set(api.header("idempotency-key")).size).toBe(1);
      expect(api.bodies).toEqual([bodies, bodies, bodies]);
    };

    const clock = new TestClock();
    const layer = createResilience({ clock, retry: { idempotencyKey: true }, degradation: degradation() });
    layer.degradation.setLevel("medium");
    let api = use("POST", url, script());
    const request = new Request(url, { method: "POST", body, headers: { "content-type": "application/json" } });
    expect((await clock.run(layer.fetch(request))).status).toBe(200);
    check(api, rewritten);

    api = use("POST", url, script());
    await clock.run(
      createClient({ resilience: layer })
        .post(url, { json: JSON.parse(body) })
        .json(),
    );
    check(api, rewritten);

    api = use("POST", url, script());
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: url }],
      resilience: { clock, retry: { idempotencyKey: true } },
    });
    const answer = await clock.run(
      proxy.fetch(new Request("https://worker.example/", { method: "POST", body }), {}, ctx),
    );
    expect(await answer.json()).toEqual({ url: "https://cdn.example/c" });
    check(api, body);
    expect(clock.pending()).toBe(0);
  });

  it("a hedge over `latency` faults on the TestClock: served by the hedge, nothing pending, on each path", async () => {
    const clock = new TestClock();
    const p = use("POST", "https://p.example/v1/x", latency(5_000, json({ from: "p" }), { clock }));
    const q = use("POST", "https://q.example/v1/x", latency(100, json({ from: "q" }), { clock }));
    const chain = {
      name: "c",
      hedge: { delay: 1_000 },
      endpoints: [
        { name: "p", url: "https://p.example/v1" },
        { name: "q", url: "https://q.example/v1" },
      ],
    };
    const layer = createResilience({
      clock,
      retry: { idempotencyKey: true },
      timeout: { attempt: 20_000, total: 60_000 },
      fallback: fallback([chain]),
      degradation: degradation(),
    });
    layer.degradation.setLevel("low");
    const request = new Request("https://p.example/v1/x", {
      method: "POST",
      body: '{"quality":1}',
      headers: { "content-type": "application/json", authorization: "Bearer s" },
    });
    const response = await clock.run(layer.fetch(request));
    expect(await response.json()).toEqual({ from: "q" });
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "q", fromFallback: true, degradationLevel: "low" });
    expect(clock.now()).toBe(1_100);
    expect([p.bodies, q.bodies]).toEqual([['{"quality":0.6}'], ['{"quality":0.6}']]);
    expect(p.header("authorization")).toEqual(["Bearer s"]);
    expect(clock.pending()).toBe(0);

    expect(
      await clock.run(createClient({ resilience: layer }).post("https://p.example/v1/x", { json: {} }).json()),
    ).toEqual({
      from: "q",
    });
    expect(clock.pending()).toBe(0);
    const proxy = resilientProxy({
      routes: [{ path: "/", chain }],
      resilience: { clock, retry: { idempotencyKey: true } },
    });
    const answer = await clock.run(
      proxy.fetch(new Request("https://worker.example/x", { method: "POST", body: "{}" }), {}, ctx),
    );
    expect(answer.headers.get("x-resilience-endpoint")).toBe("q");
    expect(await answer.json()).toEqual({ from: "q" });
    expect(clock.pending()).toBe(0);
  });
});

describe("held: the mapping", () => {
  const stages = () => ({ fallback: fallback([]), degradation: degradation() });

  it("execute(fn, { breaker }) counts in errorRate, debugInfo and the error-rate trigger", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, retry: { maxAttempts: 2, initialDelay: 50 }, ...stages() });
    const recorder = recordEvents(system);
    for (let i = 0; i < 20; i++) {
      await outcome(clock.run(system.execute(() => Promise.reject(new Error("GPU busy")), { breaker: `engine${i}` })));
      await clock.advance(1_000);
    }
    expect(system.health().errorRate).toBe(1);
    expect(system.debugInfo().totals).toEqual({ calls: 20, failures: 20 });
    expect(system.debugInfo().recentErrors[0]).toMatchObject({ key: "engine0", url: "", error: "RetryExhaustedError" });
    recorder.expectDegradedTo("high");
    recorder.expectRetries(1, "engine3");
    expect(system.degradation.currentLevel().reason).toBe("error rate 1.00 > 0.1");
  });

  it("execute's p95: 30 000 ms holds full, 30 001 ms steps down (the 30 s threshold)", async () => {
    for (const [ms, level] of [
      [30_000, "full"],
      [30_001, "high"],
    ] as const) {
      const clock = new TestClock();
      const system = createResilience({ clock, ...stages() });
      // 20 slow runs at once (the window is 60 s), then, a second later, one quick run that has them evaluated.
      const slow = Array.from({ length: 20 }, () =>
        system.execute(() => new Promise<void>((resolve) => clock.setTimer(resolve, ms))),
      );
      await clock.run(Promise.all(slow));
      await clock.advance(1_000);
      await system.execute(() => "quick");
      expect(system.degradation.window()).toMatchObject({ samples: 21, p95: ms });
      expect(system.degradation.levelName()).toBe(level);
    }
  });

  it("execute and real resilience.fetch calls to 127.0.0.1 count in one error rate", async () => {
    real.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const clock = new TestClock();
    const system = createResilience({ clock, retry: { maxAttempts: 1 }, breaker: false, ...stages() });
    for (let i = 0; i < 3; i++) await (await system.fetch(`${real.base}/gen`)).text();
    await system.execute(() => "ok");
    await outcome(system.execute(() => Promise.reject(new Error("x")), { retry: false }));
    expect(real.hits).toHaveLength(3);
    expect(system.debugInfo().totals).toEqual({ calls: 5, failures: 4 });
    expect(system.health().errorRate).toBe(0.8);
    expect(system.health().status).toBe("degraded");
    expect(system.debugInfo().recentErrors.map((e) => e.key)).toEqual([real.host, real.host, real.host, "execute"]);
  });

  it("system.breaker(x) is execute's breaker x; opened mid-retry, the call ends with the failure that opened it", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, ...stages() });
    const breaker = system.breaker("hunyuan_video", { failureThreshold: 2 });
    const recorder = recordEvents(system);
    let runs = 0;
    const work = () => {
      runs++;
      throw new Error("GPU busy");
    };
    const got = await outcome(clock.run(system.execute(work, { breaker: "hunyuan_video", retry: { maxAttempts: 5 } })));
    expect(got.error).toMatchObject({ message: "GPU busy" });
    expect(runs).toBe(2);
    expect(recorder.of("retry")).toHaveLength(1);
    recorder.expectBreakerOpened("hunyuan_video");
    expect(breaker.state).toBe("open");
    expect(system.health().breakers.hunyuan_video?.state).toBe("open");
    expect(system.health().status).toBe("unhealthy");
  });

  it("a generic chain's passed-over entry is a fallback event; its statistics are health().fallback", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, ...stages() });
    const recorder = recordEvents(system);
    const chain = system.fallback
      .chain<{ prompt: string }, string>("video_generation")
      .add(
        (r) =>
          system.breaker("hunyuan_video").execute(async () => {
            throw new Error(`GPU busy for ${r.prompt}`);
          }),
        { name: "hunyuan_premium", expectedQuality: 1 },
      )
      .add(async (r) => `wan:${r.prompt}`, { name: "wan_standard", expectedQuality: 0.8 });
    const value = await clock.run(
      system.execute(() => chain.execute(system.degradation.adjust({ prompt: "scene" }) as { prompt: string }), {
        breaker: "video_generation",
      }),
    );
    expect(value).toBe("wan:scene");
    recorder.expectFallback("hunyuan_premium", "wan_standard");
    expect(chain.statistics()).toEqual(system.health().fallback.video_generation);
    expect(chain.statistics().lastSuccessfulFallback).toBe("wan_standard");
    expect(system.debugInfo().totals).toEqual({ calls: 1, failures: 0 });
  });
});
