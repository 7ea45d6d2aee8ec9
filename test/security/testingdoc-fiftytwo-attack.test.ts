/**
 * Outside-in attack on docs/testing.md (sentence by sentence, its component-test snippet run as written) and the
 * `./testing` entry's JSDoc (`TestClock`, `recordEvents`, the fault kit), as a user's own vitest project uses them:
 * MSW 3 `setupServer` from "msw/node", `TestClock` or vitest's fake timers, and what must hold there: no real
 * sleeps, no timer left holding the process, no unhandled rejection, nothing uncaught under happy-dom.
 *
 * Docs:
 * - docs/testing.md: "`TestClock` moves time only when told (`advance(ms)`, or `run(promise)` which fires timers
 *   until the promise settles, so backoffs take no real time)"; "`run` fires the next timer after three real turns
 *   (`setTimeout(0)` each) whether or not other work is still under way: a request to a real server (not MSW, not
 *   a stub `fetch`) takes longer than that … Use a stub or MSW with a `TestClock`"; the table's "`latency(ms, then,
 *   { clock? })` | waits before headers (on the injected clock if given)" and "`networkError()` | the connection
 *   fails (fetch rejects) after the request went out: a keyless POST stops there"; "A `retryAfter` given as a
 *   `Date` is read against the layer's clock: a `new TestClock()` starts at 0, so a date near today is decades away
 *   and the call ends with the 503 (a wait longer than `maxRetryAfter` is not made); start the clock at
 *   `Date.now()` to use dates."; "Between timers the clock yields real turns (`setTimeout(0)`), so do not combine it
 *   with `vi.useFakeTimers()`: under fake timers those turns never come."; "Without a `clock` option the layer reads
 *   `Date.now()` as it is, so vitest's fake timers and `vi.setSystemTime` set its time."; "`recordEvents(resilience)`
 *   collects the layer's events in order, with `of(type)`, … (they throw plain Errors, so any runner works)"; "an
 *   `expect` inside a listener of your own (`resilience.on(…)`) that fails is reported (`reportError`, else
 *   `console.error`), not thrown, so the test would still pass"; happy-dom: "it throws `ERR_INVALID_STATE`
 *   ("Controller is already closed") from its own stream code when a response body is cancelled while data still
 *   arrives, which fails a vitest run although every test passed. This library drains the small bodies of
 *   responses it retries past (up to 64 KiB, within 1 s) instead of cancelling them, so a vitest project needs no
 *   filter for it"; the snippet "A component test in Node or happy-dom (vitest)".
 * - SECURITY.md, "Nothing outlives its call": "every timer is cleared when its call settles, but housekeeping, under
 *   `unref`'d timers that never hold a process".
 * - JSDoc: `TestClock` "time moves only when the test says so, and timers fire in order without real waiting";
 *   `recordEvents` "Records a `Resilience` instance's events, in order, for assertions"; `latency` "An abort ends the
 *   wait as a network error".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), the
 * ./testing kit (`TestClock`, `upstream`, `sequence`, `status`, `json`, `latency`, `networkError`, `recordEvents`,
 * `corsPreflight`); MSW 3.0.5 `setupServer` (unhandled requests bypassed to a node:http server on 127.0.0.1,
 * test/helpers/http-upstream.ts); vitest's fake timers; happy-dom 21's `Window#fetch` against the real server (MSW
 * closed; vitest's own uncaught-error listeners set aside for the span of a call, then put back); real timers
 * watched by wrapping `setTimeout` (a handle still armed, `hasRef()`, is one that would hold the process).
 *
 * Paths: plain call, `Request` input (a body and no content-type of its own), a library redirect (307), a
 * degradation rewrite (keyed POST at `medium`), a fallback chain with a hedge (p, q), the ky client
 * (`createClient({ resilience })`); for happy-dom, a retry, a plain chain and a hedged chain.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - The component-test snippet as written: 3 requests, one key on each, `expectRetries(2)`, the first wait the
 *   503's `Retry-After: 1` on the clock, nothing pending, well under 1 s of real time.
 * - `run` with MSW answering at once never jumps ahead: a pending 10 s attempt timer (every path) or a 500 ms hedge
 *   stays unfired, `now()` 0, nothing pending, the spare never asked.
 * - A 503's `Retry-After: 30` on every path passes on the clock: `now()` 30 000 (the hedged chain: q started at 500
 *   during p's wait and won, as docs/fallback.md says), the degradation rewrite and the `Request`'s headers on both
 *   attempts, all six paths in under 1.5 s of real time, nothing pending.
 * - What the clock does not fake: a `latency` given no clock runs on real time, so `run` fires the attempt timer
 *   (`TimeoutError` at 10 000; the hedged chain `FallbackExhaustedError` at 10 500); every upstream request heard
 *   its abort and no real timer is left armed.
 * - A `retryAfter` Date under `new TestClock()`: the call ends with the 503 at once (1 request, `now()` 0); under
 *   `new TestClock(start)`, through ky, the wait is exactly 3 000 on the clock.
 * - Under `vi.useFakeTimers()`, `TestClock.advance` does not finish until the fake timers run (as documented).
 * - Without a clock, vitest's fake timers: a `Retry-After: 2` on plain, `Request`, redirect, degradation and ky
 *   paths, and a hedge at 2 s (p on fake real timers aborted), each settle after exactly 2 000 of fake time.
 * - Real clock, every path: attempt timeouts of 10 ms and successes after a 1 ms backoff or a won hedge leave no
 *   armed timer and no unhandled rejection; every hung upstream request heard its abort.
 * - `networkError()`: a keyless POST goes once on plain, `Request`, redirect, degradation, chain (q never asked)
 *   and ky paths, no `retry` event.
 * - `recordEvents` on a hedged chain with a rewrite and a redirect: degradation, retry, fallback, redirect in
 *   order; `expectDegradedTo`, `expectRetries(1, host)`, `expectFallback("p", "q")` pass; misses throw plain
 *   `Error`s naming what was recorded. A failing `expect` in an `on("retry")` listener goes to `console.error`
 *   (Node 22 has no `reportError`) and the ky call resolves.
 * - happy-dom (control: its own cancel of a still-arriving body throws `ERR_INVALID_STATE`): a retried-past 503
 *   whose ~45 KB body still arrives when `timeout.total` (TestClock) or the caller's abort ends the call during the
 *   retry, and a chain (plain or hedged) whose p's 503 still arrives when the call ends while q is out: nothing
 *   uncaught, nothing pending.
 *
 * Docs-silent (not pinned):
 * - happy-dom's `Window#fetch` given as the layer's `fetch` in a Node environment (no happy-dom globals): the
 *   snippet resolves but `api.header("idempotency-key")` is `[null, null, null]`: the layer hands it `init.headers`
 *   as Node's `Headers`, which happy-dom reads as a plain record (no own keys). In vitest's happy-dom environment,
 *   where `Headers` is happy-dom's, the snippet passes as written. docs/options.md speaks of another realm's
 *   answers, not of what such a fetch is handed.
 * - In this file, once MSW had intercepted requests and was closed, happy-dom's own cancel of a still-arriving
 *   body no longer threw `ERR_INVALID_STATE` (the control failed), so the happy-dom tests come first.
 * - The drain of a dropped body is bounded at 1 s of real time (an `unref`'d timer) even when the layer runs on a
 *   `TestClock`; the `Clock` JSDoc says every delay and timeout goes through a `Clock`.
 * - vitest's fake timers also fake undici's own parser timers: after an MSW call `vi.getTimerCount()` is 1 or 2
 *   with no timer of the library's left, so a test asserting 0 there fails for no fault of the layer.
 */
import { Window } from "happy-dom";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  type Fault,
  json,
  latency,
  networkError,
  recordEvents,
  sequence,
  status,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

// ---------------------------------------------------------------------------
// A user's vitest project: MSW 3 in Node, requests nobody mocked go on to the real 127.0.0.1 server.

const real = httpUpstream();
const server = setupServer(corsPreflight());
beforeAll(async () => {
  await real.start();
  server.listen({ onUnhandledFrame: "bypass" });
});
afterEach(() => {
  server.resetHandlers();
  vi.useRealTimers();
});
afterAll(() => {
  server.close();
  real.stop();
});
beforeEach(() => real.reset());

/**
 * Watches the real timers set through `setTimeout` while it is on: `live()` counts those still armed
 * and holding the process (not fired, not cleared, not `unref`'d). The library's and the kit's timers
 * are all set through the global `setTimeout`.
 */
function watchTimers() {
  const original = globalThis.setTimeout;
  const handles: NodeJS.Timeout[] = [];
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const handle = original(...args);
    handles.push(handle);
    return handle;
  }) as typeof setTimeout;
  return {
    stop: () => {
      globalThis.setTimeout = original;
    },
    live: () => handles.filter((h) => h.hasRef() && !(h as unknown as { _destroyed: boolean })._destroyed).length,
  };
}

/** A few real turns, a couple of ms each: what a process does before it would exit. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}

// ---------------------------------------------------------------------------
// The six paths, each on hosts of its own: A is the endpoint called, B a chain's spare.

type PathName = "plain" | "request" | "redirect" | "degrade" | "hedge" | "ky";
const PATHS: PathName[] = ["plain", "request", "redirect", "degrade", "hedge", "ky"];

interface Mounted {
  a: ReturnType<typeof upstream>;
  img: ReturnType<typeof upstream>;
  b: ReturnType<typeof upstream>;
  heard: string[];
}

/** Registers `fault` at A's GET and POST routes and at B, a 307 at A's `/v1/r` to `/v1/x`; records aborts heard. */
function mount(host: string, fault: Fault, spare: Fault = fault): Mounted {
  const heard: string[] = [];
  const watched =
    (name: string, f: Fault): Fault =>
    (request, info) => {
      request.signal.addEventListener("abort", () => heard.push(name), { once: true });
      return f(request, info);
    };
  const a = upstream("GET", `https://${host}-a.example/v1/x`, watched("a", fault));
  const img = upstream("POST", `https://${host}-a.example/v1/img`, watched("img", fault));
  const b = upstream("GET", `https://${host}-b.example/v1/x`, watched("b", spare));
  const r = upstream("GET", `https://${host}-a.example/v1/r`, status(307, { headers: { location: "/v1/x" } }));
  server.use(a.handler, img.handler, b.handler, r.handler);
  return { a, img, b, heard };
}

/** The layer for `path` on `host`, and the call (settling with the answer's JSON, or the error). */
function drive(
  path: PathName,
  host: string,
  options: ResilienceOptions,
): { layer: Resilience; call: Promise<unknown> } {
  const A = `https://${host}-a.example`;
  const B = `https://${host}-b.example`;
  const chain = fallback([
    {
      name: "gen",
      hedge: { delay: options.clock ? 500 : 3 },
      endpoints: [
        { name: "p", url: `${A}/v1` },
        { name: "q", url: `${B}/v1` },
      ],
    },
  ]);
  const layer = createResilience({
    ...options,
    ...(path === "hedge" ? { fallback: chain } : {}),
    ...(path === "degrade" ? { degradation: degradation({}) } : {}),
  });
  layer.degradation?.setLevel("medium");
  const keyed = { authorization: "Bearer caller", "idempotency-key": `k-${host}` };
  const settle = (p: Promise<Response>) => p.then((res) => res.json());
  let call: Promise<unknown>;
  switch (path) {
    case "plain":
      call = settle(layer.fetch(`${A}/v1/x`));
      break;
    case "request":
      // A body and no content-type of its own: the Request MSW's Headers quirk bites.
      call = settle(
        layer.fetch(new Request(`${A}/v1/img`, { method: "POST", body: '{"prompt":"cat"}', headers: keyed })),
      );
      break;
    case "redirect":
      call = settle(layer.fetch(`${A}/v1/r`));
      break;
    case "degrade":
      call = settle(
        layer.fetch(`${A}/v1/img`, { method: "POST", body: '{"prompt":"cat","quality":1}', headers: keyed }),
      );
      break;
    case "hedge":
      call = settle(layer.fetch(`${A}/v1/x`));
      break;
    case "ky":
      call = createClient({ resilience: layer }).get(`${A}/v1/x`).json();
      break;
  }
  return { layer, call: call.catch((error: unknown) => error) };
}

const named = (value: unknown): unknown =>
  value instanceof Error ? `${value.name}: ${value.message.slice(0, 40)}` : (value as unknown);

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// happy-dom: its fetch throws ERR_INVALID_STATE from its own stream code when a body still arriving is cancelled.
// First in the file: once MSW has intercepted a request, its interceptor stays between happy-dom and the
// network after `server.close()`, and the error no longer shows (the control below then fails).

describe("happy-dom's fetch: bodies the layer retries past are drained, so a vitest project needs no filter", () => {
  const window = new Window({ url: "http://localhost:3000/" });
  const hdFetch = window.fetch.bind(window) as unknown as typeof fetch;
  // MSW's interceptor between happy-dom and the real server hides the error: these run with MSW closed.
  beforeAll(() => server.close());
  afterAll(async () => {
    server.listen({ onUnhandledFrame: "bypass" });
    await window.happyDOM.close();
  });

  /** Collects what Node would report as uncaught meanwhile (vitest's own listeners set aside, then put back). */
  async function uncaughtDuring<T>(body: () => Promise<T>): Promise<{ value: T; uncaught: string[] }> {
    const uncaught: string[] = [];
    const kinds = ["uncaughtException", "unhandledRejection"] as const;
    const saved = kinds.map((kind) => process.listeners(kind as "uncaughtException") as Array<(e: unknown) => void>);
    for (const kind of kinds) process.removeAllListeners(kind);
    const on = (error: unknown) => uncaught.push(String(error));
    for (const kind of kinds) process.on(kind, on);
    try {
      const value = await body();
      await turns(3);
      return { value, uncaught };
    } finally {
      for (const kind of kinds) process.off(kind, on);
      kinds.forEach((kind, i) => {
        for (const listener of saved[i] ?? []) process.on(kind, listener as never);
      });
    }
  }

  /**
   * A cross-origin API on 127.0.0.1: preflights allowed; the first GET gets a
   * 503 whose small body (about 45 KB) goes on arriving for about 120 ms, a
   * chunk every 3 ms; later GETs hang (or answer 200 when `then200`).
   */
  function streaming503Api(then200: boolean) {
    let gets = 0;
    let first: Hit | undefined;
    const waiting: Array<() => void> = [];
    real.on((hit) => {
      if (hit.method === "OPTIONS") {
        hit.res
          .writeHead(204, {
            "access-control-allow-origin": "*",
            "access-control-allow-headers": "*",
            "access-control-allow-methods": "GET, POST",
          })
          .end();
        return;
      }
      gets++;
      for (const wake of waiting.splice(0)) wake();
      if (gets > 1) {
        if (then200)
          hit.res.writeHead(200, { "content-type": "application/json", "access-control-allow-origin": "*" }).end("{}");
        return;
      }
      first = hit;
      hit.res.writeHead(503, { "content-type": "text/plain", "access-control-allow-origin": "*" });
      hit.res.write("overloaded\n".repeat(100));
      let sent = 0;
      const more = setInterval(() => {
        if (hit.res.destroyed || sent++ >= 40) {
          clearInterval(more);
          if (!hit.res.destroyed) hit.res.end();
          return;
        }
        hit.res.write("overloaded\n".repeat(100));
      }, 3);
    });
    return {
      retried: () => new Promise<void>((resolve) => (gets >= 2 ? resolve() : waiting.push(() => resolve()))),
      firstOver: () => (first as Hit).closed,
    };
  }

  it("control: happy-dom itself throws ERR_INVALID_STATE when such a body is cancelled while it arrives", async () => {
    const api = streaming503Api(true);
    const { value, uncaught } = await uncaughtDuring(async () => {
      const res = await hdFetch(`${real.base}/v1/jobs`);
      const reader = res.body?.getReader();
      await reader?.read();
      await reader?.read(); // more of it arrives, and goes on arriving
      await reader?.cancel();
      await api.firstOver();
      return res.status;
    });
    expect([
      value,
      uncaught.filter((e) => /ERR_INVALID_STATE|Controller is already closed/.test(e)).length > 0,
    ]).toEqual([503, true]);
  });

  it("the retry went out and the call ends (timeout.total on the TestClock, or the caller's abort) while the 503's body still arrives: nothing uncaught", async () => {
    const outcomes: unknown[] = [];
    for (const end of ["total", "abort"] as const) {
      real.reset();
      const api = streaming503Api(false);
      const clock = new TestClock();
      const caller = new AbortController();
      const layer = createResilience({
        clock,
        fetch: hdFetch,
        retry: { initialDelay: 1_000, jitter: "none" },
        ...(end === "total" ? { timeout: { total: 5_000 } } : {}),
      });
      const { value, uncaught } = await uncaughtDuring(async () => {
        const call = layer.fetch(`${real.base}/v1/jobs`, { signal: caller.signal }).then(
          (res) => res.status,
          (e: Error) => e.name,
        );
        await clock.waitForTimers(end === "total" ? 2 : 1); // the backoff is set
        await clock.advance(1_000);
        await api.retried();
        await turns(2); // the 503's body is still arriving, drained by the layer
        if (end === "total") await clock.advance(4_000);
        else caller.abort();
        const settled = await call;
        await api.firstOver();
        return settled;
      });
      outcomes.push([end, value, uncaught, clock.pending()]);
    }
    expect(outcomes).toEqual([
      ["total", "TimeoutError", [], 0],
      ["abort", "AbortError", [], 0],
    ]);
  });

  it("a chain (and a hedged one) whose p answered a 503 still arriving ends by timeout.total or abort while q is out: nothing uncaught", async () => {
    const outcomes: unknown[] = [];
    const spare = httpUpstream();
    await spare.start();
    try {
      for (const mode of ["chain-total", "hedge-total", "chain-abort"] as const) {
        real.reset();
        spare.reset();
        const api = streaming503Api(false);
        spare.on((hit) => {
          if (hit.method === "OPTIONS") {
            hit.res
              .writeHead(204, {
                "access-control-allow-origin": "*",
                "access-control-allow-headers": "*",
                "access-control-allow-methods": "GET, POST",
              })
              .end();
          }
        });
        const clock = new TestClock();
        const caller = new AbortController();
        const layer = createResilience({
          clock,
          fetch: hdFetch,
          retry: false,
          ...(mode.endsWith("total") ? { timeout: { total: 5_000 } } : {}),
          fallback: fallback([
            {
              name: "gen",
              ...(mode === "hedge-total" ? { hedge: { delay: 100 } } : {}),
              endpoints: [
                { name: "p", url: `${real.base}/v1` },
                { name: "q", url: `${spare.base}/v1` },
              ],
            },
          ]),
        });
        const { value, uncaught } = await uncaughtDuring(async () => {
          const call = layer.fetch(`${real.base}/v1/jobs`, { signal: caller.signal }).then(
            (r) => r.status,
            (e: Error) => e.name,
          );
          await spare.nth(2);
          await turns(2);
          if (mode.endsWith("total")) await clock.advance(5_000);
          else caller.abort();
          const settled = await call;
          await api.firstOver();
          return settled;
        });
        outcomes.push([mode, value, uncaught, spare.hits.length]);
      }
    } finally {
      spare.stop();
    }
    expect(outcomes).toEqual([
      ["chain-total", "TimeoutError", [], 2],
      ["hedge-total", "TimeoutError", [], 2],
      ["chain-abort", "AbortError", [], 2],
    ]);
  });
});

describe("docs/testing.md: the component test, as written", () => {
  // Your code under test: it takes a fetch.
  async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
    const res = await fetchImpl("https://gen.example/v1/images", { method: "POST", body: JSON.stringify({ prompt }) });
    return (await res.json()) as { url: string };
  }

  it("shows the image after two 503s", async () => {
    const api = upstream(
      "POST",
      "https://gen.example/v1/images",
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);

    const started = performance.now();
    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(api.header("idempotency-key")).not.toContain(null); // a key on every attempt
    expect(new Set(api.header("idempotency-key")).size).toBe(1); // the same one
    recorder.expectRetries(2);
    // What the prose around it says: the first wait is the 503's Retry-After, on the clock, no real time.
    expect(recorder.of("retry").map((e) => [e.delay, e.retryAfter])[0]).toEqual([1_000, true]);
    expect(clock.now()).toBeGreaterThan(1_000);
    expect(clock.pending()).toBe(0);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("TestClock: time moves only when told, backoffs take no real time (MSW, every path)", () => {
  it("MSW answering at once: run never jumps to a pending attempt timer or hedge; now() stays 0, nothing pending", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const host = `still-${path}`;
      const m = mount(host, json({ ok: path }), json({ from: "spare" }));
      const clock = new TestClock();
      const { call } = drive(path, host, { clock, retry: false, timeout: { attempt: 10_000 } });
      const value = await clock.run(call);
      seen[path] = [named(value), clock.now(), clock.pending(), m.b.count()];
    }
    expect(seen).toEqual(Object.fromEntries(PATHS.map((p) => [p, [{ ok: p }, 0, 0, 0]])));
  });

  it("a 503 with Retry-After: 30 passes on the clock on every path: 30 s on it, well under 1 s of real time", async () => {
    const seen: Record<string, unknown> = {};
    const started = performance.now();
    for (const path of PATHS) {
      const host = `wait-${path}`;
      const m = mount(host, sequence([status(503, { retryAfter: 30 }), json({ ok: path })]), json({ from: "spare" }));
      const clock = new TestClock();
      const { layer, call } = drive(path, host, { clock, retry: { maxAttempts: 2 } });
      const recorder = recordEvents(layer);
      const value = await clock.run(call);
      seen[path] = [named(value), clock.now(), clock.pending(), recorder.of("retry").map((e) => e.delay)];
      // The degradation rewrite goes out on both attempts; the Request's headers on both.
      if (path === "degrade") expect(m.img.bodies).toEqual(Array(2).fill('{"prompt":"cat","quality":0.8}'));
      if (path === "request") expect(m.img.header("authorization")).toEqual(["Bearer caller", "Bearer caller"]);
    }
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(seen).toEqual({
      plain: [{ ok: "plain" }, 30_000, 0, [30_000]],
      request: [{ ok: "request" }, 30_000, 0, [30_000]],
      redirect: [{ ok: "redirect" }, 30_000, 0, [30_000]],
      degrade: [{ ok: "degrade" }, 30_000, 0, [30_000]],
      // p's 503 is no answer to keep: the hedge starts q at 500 on the clock during p's wait, and q's answer wins.
      hedge: [{ from: "spare" }, 500, 0, [30_000]],
      ky: [{ ok: "ky" }, 30_000, 0, [30_000]],
    });
  });

  it("what it does not fake: a kit `latency` given no clock runs on real time, so run fires the attempt timer; the real wait is cancelled", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const host = `unfaked-${path}`;
      const m = mount(host, latency(60_000, json({ late: true })));
      const timers = watchTimers();
      const clock = new TestClock();
      const { call } = drive(path, host, { clock, retry: false, timeout: { attempt: 10_000 } });
      const value = await clock.run(call).finally(timers.stop);
      await turns(2);
      seen[path] = [named(value), clock.now(), clock.pending(), timers.live(), [...m.heard].sort()];
    }
    const timedOut = "TimeoutError: attempt timeout of 10000 ms exceeded";
    expect(seen).toEqual({
      plain: [timedOut, 10_000, 0, 0, ["a"]],
      request: [timedOut, 10_000, 0, 0, ["img"]],
      redirect: [timedOut, 10_000, 0, 0, ["a"]],
      degrade: [timedOut, 10_000, 0, 0, ["img"]],
      hedge: [expect.stringMatching(/^FallbackExhaustedError/), 10_500, 0, 0, ["a", "b"]],
      ky: [timedOut, 10_000, 0, 0, ["a"]],
    });
  });

  it("a retryAfter Date is read on the layer's clock: at 0 the call ends with the 503; started at a date, it waits on the clock", async () => {
    const start = Date.UTC(2031, 0, 1); // whole seconds: toUTCString keeps them all
    const far = upstream(
      "GET",
      "https://date-far.example/v1/x",
      sequence([status(503, { retryAfter: new Date(start + 3_000) }), json({ ok: true })]),
    );
    const near = upstream(
      "POST",
      "https://date-near.example/v1/x",
      sequence([status(503, { retryAfter: new Date(start + 3_000) }), json({ ok: true })]),
    );
    server.use(far.handler, near.handler);

    const zero = new TestClock();
    const res = await zero.run(createResilience({ clock: zero }).fetch("https://date-far.example/v1/x"));
    expect([res.status, res.headers.get("retry-after"), far.count(), zero.now()]).toEqual([
      503,
      new Date(start + 3_000).toUTCString(),
      1,
      0,
    ]);

    const dated = new TestClock(start);
    const client = createClient({ resilience: createResilience({ clock: dated }) });
    const body = await dated.run(
      client.post("https://date-near.example/v1/x", { json: { a: 1 }, headers: { "idempotency-key": "k" } }).json(),
    );
    expect([body, near.count(), dated.now() - start, dated.pending()]).toEqual([{ ok: true }, 2, 3_000, 0]);
  });

  it("TestClock with vi.useFakeTimers(): its real turns never come, so advance waits until the fake timers run (as documented)", async () => {
    vi.useFakeTimers();
    const clock = new TestClock();
    let fired = false;
    clock.setTimer(() => {
      fired = true;
    }, 10);
    let done = false;
    const advancing = clock.advance(10).then(() => {
      done = true;
    });
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect([done, fired, clock.now()]).toEqual([false, false, 0]);
    await vi.runAllTimersAsync();
    await advancing;
    expect([done, fired, clock.now()]).toEqual([true, true, 10]);
  });
});

describe("Without a clock option: vitest's fake timers set the layer's time (MSW, every path)", () => {
  async function settleUnderFakeTimers(call: Promise<unknown>, stepMs: number, steps = 100) {
    let done = false;
    let out: unknown;
    // `drive`'s call never rejects (it settles with the error).
    void call.then((v) => {
      done = true;
      out = v;
    });
    for (let i = 0; i < steps && !done; i++) await vi.advanceTimersByTimeAsync(stepMs);
    return { done, out };
  }

  it("a 503's Retry-After: 2, and a hedge at 2 s, pass as vi.advanceTimersByTimeAsync moves Date.now()", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      vi.useFakeTimers();
      const host = `fake-${path}`;
      // The hedge's p is slow on (fake) real timers: q starts at 2 s and wins.
      const fault =
        path === "hedge"
          ? latency(60_000, json({ ok: "p" }))
          : sequence([status(503, { retryAfter: 2 }), json({ ok: path })]);
      const m = mount(host, fault, json({ ok: "q" }));
      const t0 = Date.now();
      const A = `https://${host}-a.example`;
      const B = `https://${host}-b.example`;
      const options: ResilienceOptions =
        path === "hedge"
          ? {
              fallback: fallback([
                {
                  name: "gen",
                  hedge: { delay: 2_000 },
                  endpoints: [
                    { name: "p", url: `${A}/v1` },
                    { name: "q", url: `${B}/v1` },
                  ],
                },
              ]),
            }
          : { retry: { maxAttempts: 2 } };
      const { call } = drive(path === "hedge" ? "plain" : path, host, options);
      const { done, out } = await settleUnderFakeTimers(call, 100);
      await vi.advanceTimersByTimeAsync(0);
      seen[path] = [done, named(out), Date.now() - t0];
      if (path === "hedge") expect(m.heard).toEqual(["a"]); // the loser's request aborted
      vi.useRealTimers();
    }
    expect(seen).toEqual({
      plain: [true, { ok: "plain" }, 2_000],
      request: [true, { ok: "request" }, 2_000],
      redirect: [true, { ok: "redirect" }, 2_000],
      degrade: [true, { ok: "degrade" }, 2_000],
      hedge: [true, { ok: "q" }, 2_000],
      ky: [true, { ok: "ky" }, 2_000],
    });
  });
});

describe("Nothing outlives its call, no unhandled rejection (real clock and TestClock, every path)", () => {
  it("real clock: attempt timeouts of 10 ms end each path; no timer is left to keep the process alive, every request heard its abort", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const host = `alive-${path}`;
      const m = mount(host, latency(60_000, json({ late: true })));
      const timers = watchTimers();
      const { value, unhandled } = await watchUnhandled(
        () => drive(path, host, { retry: false, timeout: { attempt: 10 } }).call,
      ).finally(timers.stop);
      await turns();
      seen[path] = [String(named(value)).split(":")[0], unhandled, timers.live(), [...m.heard].sort()];
    }
    expect(seen).toEqual({
      plain: ["TimeoutError", [], 0, ["a"]],
      request: ["TimeoutError", [], 0, ["img"]],
      redirect: ["TimeoutError", [], 0, ["a"]],
      degrade: ["TimeoutError", [], 0, ["img"]],
      hedge: ["FallbackExhaustedError", [], 0, ["a", "b"]],
      ky: ["TimeoutError", [], 0, ["a"]],
    });
  });

  it("real clock, calls that succeed after a 503 (backoff 1 ms) or win a hedge: no live timer after, no unhandled rejection", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of PATHS) {
      const host = `done-${path}`;
      const fault = path === "hedge" ? latency(60_000, json({ ok: "p" })) : sequence([status(503), json({ ok: path })]);
      mount(host, fault, json({ ok: "q" }));
      const timers = watchTimers();
      const { value, unhandled } = await watchUnhandled(
        () =>
          drive(path, host, {
            retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
            timeout: { attempt: 60_000, total: 120_000 },
          }).call,
      ).finally(timers.stop);
      await turns();
      seen[path] = [named(value), unhandled, timers.live()];
    }
    expect(seen).toEqual({
      plain: [{ ok: "plain" }, [], 0],
      request: [{ ok: "request" }, [], 0],
      redirect: [{ ok: "redirect" }, [], 0],
      degrade: [{ ok: "degrade" }, [], 0],
      hedge: [{ ok: "q" }, [], 0],
      ky: [{ ok: "ky" }, [], 0],
    });
  });

  it("networkError(): 'a keyless POST stops there' on every path that can carry one", async () => {
    const seen: Record<string, unknown> = {};
    const A = (p: string) => `https://nk-${p}-a.example`;
    for (const path of ["plain", "request", "redirect", "degrade", "chain", "ky"]) {
      const target = upstream("POST", `${A(path)}/v1/img`, networkError());
      const spare = upstream("POST", `https://nk-${path}-b.example/v1/img`, json({ from: "spare" }));
      const hop = upstream("POST", `${A(path)}/v1/r`, status(307, { headers: { location: "/v1/img" } }));
      server.use(target.handler, spare.handler, hop.handler);
      const layer = createResilience({
        ...(path === "chain"
          ? {
              fallback: fallback([
                {
                  name: "gen",
                  endpoints: [
                    { name: "p", url: `${A(path)}/v1` },
                    { name: "q", url: `https://nk-${path}-b.example/v1` },
                  ],
                },
              ]),
            }
          : {}),
        ...(path === "degrade" ? { degradation: degradation({}) } : {}),
      });
      const recorder = recordEvents(layer);
      const url = `${A(path)}/v1/${path === "redirect" ? "r" : "img"}`;
      const body = '{"prompt":"cat","quality":1}';
      const call =
        path === "request"
          ? layer.fetch(new Request(url, { method: "POST", body }))
          : path === "ky"
            ? createClient({ resilience: layer }).post(url, { body })
            : layer.fetch(url, { method: "POST", body });
      const error = await call.then(
        () => "resolved",
        (e: Error) => e.name,
      );
      seen[path] = [error, target.count(), spare.count(), recorder.of("retry").length];
    }
    expect(seen).toEqual({
      plain: ["RetryExhaustedError", 1, 0, 0],
      request: ["RetryExhaustedError", 1, 0, 0],
      redirect: ["RetryExhaustedError", 1, 0, 0],
      degrade: ["RetryExhaustedError", 1, 0, 0],
      chain: ["FallbackExhaustedError", 1, 0, 0],
      ky: ["RetryExhaustedError", 1, 0, 0],
    });
  });
});

describe("recordEvents(resilience): the layer's events in order, plain Errors", () => {
  it("a hedged chain with a degradation rewrite and a redirect: fallback, redirect, retry, degradation recorded; helpers pass and miss", async () => {
    const clock = new TestClock();
    const p = upstream("POST", "https://ev-a.example/v1/img", status(503));
    const hop = upstream("POST", "https://ev-b.example/v1/img", status(307, { headers: { location: "/v1/done" } }));
    const done = upstream("POST", "https://ev-b.example/v1/done", json({ ok: true }));
    server.use(p.handler, hop.handler, done.handler);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, idempotencyKey: true },
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 5_000 },
          endpoints: [
            { name: "p", url: "https://ev-a.example/v1" },
            { name: "q", url: "https://ev-b.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(layer);
    layer.degradation?.setLevel("low");
    const res = await clock.run(
      layer.fetch("https://ev-a.example/v1/img", { method: "POST", body: '{"prompt":"cat","quality":1}' }),
    );
    expect(await res.json()).toEqual({ ok: true });
    expect(done.bodies).toEqual(['{"prompt":"cat","quality":0.6}']);
    recorder.expectDegradedTo("low");
    recorder.expectRetries(1, "ev-a.example");
    recorder.expectFallback("p", "q");
    expect(recorder.of("redirect").map((e) => e.status)).toEqual([307]);
    const order = recorder.events.map((e) => e.type).filter((t) => t !== "request");
    expect(order).toEqual(["degradation", "retry", "fallback", "redirect"]);
    expect(() => recorder.expectFallback("q")).toThrow(Error);
    expect(() => recorder.expectRetries(0)).toThrow(/expected 0 retries, saw 1/);
    expect(() => recorder.expectBreakerOpened("ev-a.example")).toThrow(/recorded: /);
    expect(clock.pending()).toBe(0);
  });

  it("an expect inside a listener of your own that fails is reported with console.error, not thrown: the call (ky too) resolves", async () => {
    const api = upstream("GET", "https://listener.example/v1/x", sequence([status(503), json({ ok: true })]));
    server.use(api.handler);
    const clock = new TestClock();
    const layer = createResilience({ clock });
    layer.on("retry", (e) => expect(e.attempt).toBe(99));
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const body = await clock.run(createClient({ resilience: layer }).get("https://listener.example/v1/x").json());
      expect(body).toEqual({ ok: true });
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0]?.[1])).toMatch(/expected 1 to be 99/);
    } finally {
      spy.mockRestore();
    }
  });
});
