/**
 * Outside-in attack on docs/testing.md (the guide for users who test their own app with MSW and vitest), read for
 * what the earlier testingdoc runs (32, 48, 50, 52, 55) left: the layer installed as the global fetch on every path,
 * `run` beside MSW when requests carry large bodies, `run`'s give-up time, timers left holding the process, and
 * state between tests.
 *
 * Docs:
 * - docs/testing.md: the component-test snippet ("A component test in Node or happy-dom (vitest)"); "If your app
 *   installs its layer as the global fetch (`globalThis.fetch = resilience.fetch`), MSW meets its requests whatever
 *   the order, but one: … Made after `listen()`, it sends through MSW's patch; installed before it, MSW's patch wraps
 *   it, and the layer, handed its own request back by the patch, passes it straight to the fetch beneath it, where
 *   MSW meets it."; "`run` fires the next timer after three real turns (`setTimeout(0)` each) whether or not other
 *   work is still under way: a request to a real server (not MSW, not a stub `fetch`) takes longer than that … Use a
 *   stub or MSW with a `TestClock`"; "A promise that neither settles nor sets a timer (a `hang()` without a timeout,
 *   a layer given no `clock`) makes `run` reject with "the promise never settled" after about 3 s of real time …
 *   before a test runner's usual 5 s timeout"; "`TestClock` moves time only when told (…), so backoffs take no real
 *   time"; the table's "`hang()` | never answers; closes when the client aborts" and "`latency(ms, then, { clock? })`
 *   | waits before headers (on the injected clock if given)"; "with Node's fetch a streamed body its reader cancels
 *   stops waiting for its next chunk, on any clock"; "`recordEvents(resilience)` collects the layer's events in
 *   order, with … `expectBreakerOpened(key)`".
 * - src/core/clock.ts JSDoc: "The one real timer is housekeeping no call waits for: the 1 s a dropped body is
 *   drained for (unref'd, it keeps no process alive)"; `systemClock`: "every timer is cleared when its call
 *   settles, so none outlives its work". `EventRecorder.stop` JSDoc: "Stops recording."
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), the ./testing kit; MSW 3 `setupServer` from "msw/node" (a second server per case
 * for the install orders); real timers watched by wrapping `setTimeout` (one still armed with `hasRef()` would hold
 * the process) and `process.getActiveResourcesInfo()` (ref'd timers only); the snippet was also type-checked as printed (package specifiers mapped to src, `npx tsc`
 * on a scratch copy, clean, deleted).
 *
 * Paths: plain call, `Request` input (a body, no content-type of its own), fallback chain (p 503 → q), hedge,
 * library redirect (307), degradation rewrite (`medium`), ky client, `resilientProxy`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - The snippet as printed (imports mapped to the entries): 3 requests, one key on all, `expectRetries(2)`.
 * - Global install, made and installed before `listen()` and made after it, on six paths under MSW on a
 *   `TestClock`: the layer still does its work (a retry past a 503 `Retry-After: 1` with the same key and every
 *   header; the chain's q after p's 503s with a `fallback` event; a hedge won by q at 500; a 307 followed; a
 *   rewrite to quality 0.8), MSW answers every request, nothing pending.
 * - `run` beside MSW with ~900 KB request bodies on plain, `Request`, hedge (500 ms), redirect, degradation, ky and
 *   proxy paths, a 10 s attempt timer pending: never jumps to a timer, `now()` 0, q never asked.
 * - `run` gives up with "the promise never settled" between 2.5 and 4.9 s of real time for a `hang()` without a
 *   timeout and for a layer given no clock (waiting a real `Retry-After: 30`), both at once.
 * - Real clock, no `TestClock`, under MSW: retries (1 ms backoff), attempt timeouts over `hang()`, a hedge whose p
 *   waits in a real-time `latency`, a redirect, a rewrite, ky and the proxy each settle leaving no ref'd timer; a
 *   real-time `stream` whose reader cancels leaves none either.
 * - State between tests: a layer made per test starts closed where an earlier layer opened the host's breaker;
 *   `recordEvents(…).stop()` stops recording (a second recorder still hears).
 *
 * Docs-silent when found, now in the guide (fifty-eighth session) and asserted:
 * - A layer made once for the suite (what the global-install paragraph describes) keeps its host breakers across
 *   tests: `server.resetHandlers()` does not touch them, and there is no public way to reset a host breaker
 *   (`resilience.breaker(name)` makes a named breaker, not the host's); a test after one that opened the host gets
 *   `CircuitOpenError` without a request. A store given to the layer keeps them for the next layer too. The guide
 *   now says to make the layer (and its store) per test.
 * - A hedge won by q before p failed records no `fallback` event (only `request`): `expectFallback("p", "q")`
 *   throws there, though q answered. The guide now says each `expect…` looks for an event of its kind, and to read
 *   a hedge's win from `getResilienceInfo`.
 *
 * Docs-silent (not pinned):
 * - The `setupWorker` line ("In a browser, use `setupWorker` …") was not driven (no page in this run).
 */
import { readFile } from "node:fs/promises";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  createResilience,
  getResilienceInfo,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  corsPreflight,
  hang,
  json,
  latency,
  recordEvents,
  sequence,
  status,
  stream,
  TestClock,
  upstream,
} from "../../src/testing/index.ts";

const server = setupServer(corsPreflight());
beforeAll(() => server.listen());
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const pending: Promise<unknown>[] = [];
const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

/** Ref'd timers alive now: what would keep a Node process from exiting. */
const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/**
 * Watches the real timers set from now on: `stop()` puts `setTimeout` back and counts those still armed and
 * ref'd (they would hold the process); `made()` how many were set.
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
    made: () => handles.length,
    stop: () => {
      globalThis.setTimeout = original;
      return handles.filter((h) => h.hasRef() && !(h as unknown as { _destroyed: boolean })._destroyed).length;
    },
  };
}

// ---------------------------------------------------------------------------

describe("the component-test snippet, as printed (imports mapped to the public entries)", () => {
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

    const image = await clock.run(generateImage(resilience.fetch, "a cat"));
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(api.header("idempotency-key")).not.toContain(null); // a key on every attempt
    expect(new Set(api.header("idempotency-key")).size).toBe(1); // the same one
    recorder.expectRetries(2);
  });
});

// ---------------------------------------------------------------------------

type Path = "plain" | "request" | "chain" | "hedge" | "redirect" | "degrade";
const PATHS: Path[] = ["plain", "request", "chain", "hedge", "redirect", "degrade"];

describe("a layer installed as the global fetch: MSW meets its requests, and the layer still works, on every path", () => {
  // Each case has its own MSW server, listening around the install; the file's server is set aside meanwhile.
  beforeAll(() => server.close());
  afterAll(() => server.listen());

  async function drive(order: "before" | "after", path: Path) {
    const platform = globalThis.fetch;
    const clock = new TestClock();
    const own = setupServer();
    const make = () => {
      const options: ResilienceOptions = { clock, retry: { idempotencyKey: true } };
      if (path === "chain" || path === "hedge") {
        options.fallback = fallback([
          {
            name: "gen",
            ...(path === "hedge" ? { hedge: { delay: 500 } } : {}),
            endpoints: [
              { name: "p", url: "https://gp.example/v1" },
              { name: "q", url: "https://gq.example/v1" },
            ],
          },
        ]);
      }
      if (path === "degrade") options.degradation = degradation({});
      const layer = createResilience(options);
      layer.degradation?.setLevel("medium");
      return layer;
    };
    let layer = order === "before" ? make() : undefined;
    if (layer) globalThis.fetch = layer.fetch;
    own.listen();
    try {
      if (!layer) {
        layer = make();
        globalThis.fetch = layer.fetch;
      }
      const recorder = recordEvents(layer);
      const p = upstream(
        "POST",
        "https://gp.example/v1/x",
        path === "hedge"
          ? latency(5_000, json({ from: "p" }), { clock })
          : path === "redirect"
            ? status(307, { headers: { location: "/v1/y" } })
            : path === "chain"
              ? status(503, { retryAfter: 1 })
              : sequence([status(503, { retryAfter: 1 }), json({ from: "p" })]),
      );
      const y = upstream(
        "POST",
        "https://gp.example/v1/y",
        sequence([status(503, { retryAfter: 1 }), json({ from: "y" })]),
      );
      const q = upstream("POST", "https://gq.example/v1/x", json({ from: "q" }));
      own.use(p.handler, y.handler, q.handler);
      const headers = { authorization: "Bearer t", "x-c": "c" };
      const body = '{"quality":1}';
      const res = await clock.run(
        path === "request"
          ? fetch(new Request("https://gp.example/v1/x", { method: "POST", body, headers }))
          : fetch("https://gp.example/v1/x", { method: "POST", body, headers }),
      );
      const out = (await res.json()) as { from: string };
      const sent = [...p.requests, ...y.requests];
      return {
        from: out.from,
        counts: [p.count(), y.count(), q.count()],
        events: recorder.events.map((e) => e.type),
        auth: [...new Set(sent.map((r) => `${r.headers.get("authorization")}|${r.headers.get("x-c")}`))],
        keys: new Set(sent.map((r) => r.headers.get("idempotency-key"))).size,
        bodies: [...new Set([...p.bodies, ...y.bodies])],
        now: clock.now(),
        pending: clock.pending(),
      };
    } finally {
      own.close();
      globalThis.fetch = platform;
    }
  }

  const expected: Record<Path, unknown> = {
    plain: { from: "p", counts: [2, 0, 0], events: ["retry", "request"], now: 1_000 },
    request: { from: "p", counts: [2, 0, 0], events: ["retry", "request"], now: 1_000 },
    chain: { from: "q", counts: [3, 0, 1], events: ["retry", "retry", "fallback", "request"], now: 2_000 },
    hedge: { from: "q", counts: [1, 0, 1], events: ["request"], now: 500 },
    redirect: { from: "y", counts: [2, 2, 0], events: ["redirect", "retry", "redirect", "request"], now: 1_000 },
    degrade: { from: "p", counts: [2, 0, 0], events: ["retry", "request"], now: 1_000 },
  };

  for (const order of ["before", "after"] as const) {
    it(`made and installed ${order} server.listen(): every path as without the install`, async () => {
      const seen: Record<string, unknown> = {};
      for (const path of PATHS) {
        const r = await drive(order, path);
        expect(r.auth, path).toEqual(["Bearer t|c"]);
        expect(r.keys, path).toBe(1);
        expect(r.bodies, path).toEqual([path === "degrade" ? '{"quality":0.8}' : '{"quality":1}']);
        expect(r.pending, path).toBe(0);
        seen[path] = { from: r.from, counts: r.counts, events: r.events, now: r.now };
      }
      expect(seen).toEqual(expected);
    });
  }
});

// ---------------------------------------------------------------------------

describe("run beside MSW: large request bodies do not let it jump to a pending timer", () => {
  it("~900 KB bodies on plain, Request, hedge, redirect, degradation, ky and proxy paths with a 10 s attempt timer", async () => {
    const big = JSON.stringify({ quality: 1, pad: "x".repeat(900 * 1024) });
    const seen: Record<string, unknown> = {};
    for (const path of ["plain", "request", "hedge", "redirect", "degrade", "ky", "proxy"] as const) {
      const clock = new TestClock();
      const options: ResilienceOptions = { clock, timeout: { attempt: 10_000 }, retry: { idempotencyKey: true } };
      if (path === "hedge") {
        options.fallback = fallback([
          {
            name: "gen",
            hedge: { delay: 500 },
            endpoints: [
              { name: "p", url: "https://bp.example/v1" },
              { name: "q", url: "https://bq.example/v1" },
            ],
          },
        ]);
      }
      if (path === "degrade") options.degradation = degradation({});
      const p = upstream("POST", "https://bp.example/v1/x", json({ from: "p" }));
      const r = upstream("POST", "https://bp.example/v1/r", status(307, { headers: { location: "/v1/x" } }));
      const q = upstream("POST", "https://bq.example/v1/x", json({ from: "q" }));
      server.use(p.handler, r.handler, q.handler);
      const init = { method: "POST", body: big };
      let call: Promise<string>;
      if (path === "proxy") {
        const proxy = resilientProxy({
          routes: [{ path: "/v1", upstream: "https://bp.example/v1" }],
          resilience: options,
        });
        call = proxy.fetch(new Request("https://w.example/v1/x", init), {}, ctx).then((res) => res.text());
      } else if (path === "ky") {
        call = createClient({ resilience: createResilience(options) })
          .post("https://bp.example/v1/x", { body: big })
          .text();
      } else {
        const layer = createResilience(options);
        layer.degradation?.setLevel("medium");
        call = (
          path === "request"
            ? layer.fetch(new Request("https://bp.example/v1/x", init))
            : layer.fetch(`https://bp.example/v1/${path === "redirect" ? "r" : "x"}`, init)
        ).then((res) => res.text());
      }
      const out = await clock.run(call).catch((e: unknown) => String(e));
      seen[path] = [out, p.count(), q.count(), (p.bodies[0]?.length ?? 0) > 900_000, clock.now(), clock.pending()];
      server.resetHandlers();
    }
    const ok = ['{"from":"p"}', 1, 0, true, 0, 0];
    expect(seen).toEqual({ plain: ok, request: ok, hedge: ok, redirect: ok, degrade: ok, ky: ok, proxy: ok });
  });
});

// ---------------------------------------------------------------------------

describe("run gives up on a promise that neither settles nor sets a timer", () => {
  it('a hang() without a timeout, and a layer given no clock: "the promise never settled" after about 3 s', async () => {
    server.use(
      upstream("GET", "https://hg.example/v1/x", hang()).handler,
      upstream("GET", "https://nc.example/v1/x", status(503, { retryAfter: 30 })).handler,
    );
    const stop = new AbortController();
    const clock = new TestClock();
    const hung = createResilience({ clock }).fetch("https://hg.example/v1/x", { signal: stop.signal });
    const unclocked = createResilience({ retry: { maxRetryAfter: 60_000 } }).fetch("https://nc.example/v1/x", {
      signal: stop.signal,
    });
    hung.catch(() => {});
    unclocked.catch(() => {});
    const t0 = performance.now();
    const timed = (p: Promise<Response>) =>
      new TestClock().run(p).then(
        () => ["settled", performance.now() - t0],
        (e: unknown) => [(e as Error).message, performance.now() - t0],
      );
    try {
      const [a, b] = await Promise.all([timed(hung), timed(unclocked)]);
      for (const [message, ms] of [a, b] as Array<[string, number]>) {
        expect(message).toContain("the promise never settled");
        expect(ms).toBeGreaterThan(2_500);
        expect(ms).toBeLessThan(4_900);
      }
    } finally {
      stop.abort();
      await Promise.allSettled([hung, unclocked]);
    }
  }, 10_000);
});

// ---------------------------------------------------------------------------

describe("real clock under MSW: no timer is left holding the process once a call settled", () => {
  it("retries, attempt timeouts over hang(), a hedge over a real-time latency, redirect, rewrite, ky, proxy", async () => {
    const armed = watchTimers();
    const options: ResilienceOptions = {
      retry: { idempotencyKey: true, initialDelay: 1, maxDelay: 2, jitter: "none" },
      timeout: { attempt: 20 },
    };
    const seen: string[] = [];
    const p503 = sequence([status(503), json({ ok: "retried" })]);
    server.use(
      upstream("POST", "https://rt.example/v1/x", p503).handler,
      upstream("GET", "https://rt.example/v1/h", sequence([hang(), json({ ok: "after-hang" })])).handler,
      upstream("GET", "https://rt.example/v1/r", status(307, { headers: { location: "/v1/h2" } })).handler,
      upstream("GET", "https://rt.example/v1/h2", json({ ok: "redirected" })).handler,
      upstream("GET", "https://rp.example/v1/x", latency(60_000, json({ ok: "p" }))).handler,
      upstream("GET", "https://rq.example/v1/x", json({ ok: "q" })).handler,
    );
    const plain = createResilience(options);
    seen.push(await (await plain.fetch("https://rt.example/v1/x", { method: "POST", body: "{}" })).text());
    seen.push(await (await plain.fetch("https://rt.example/v1/h")).text());
    seen.push(await (await plain.fetch("https://rt.example/v1/r")).text());
    const hedged = createResilience({
      ...options,
      timeout: { attempt: 5_000 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: "https://rp.example/v1" },
            { name: "q", url: "https://rq.example/v1" },
          ],
        },
      ]),
    });
    seen.push(await (await hedged.fetch("https://rp.example/v1/x")).text());
    const rewrite = createResilience({ ...options, degradation: degradation({}) });
    rewrite.degradation?.setLevel("medium");
    server.use(upstream("POST", "https://rt.example/v1/d", json({ ok: "rewritten" })).handler);
    seen.push(await (await rewrite.fetch("https://rt.example/v1/d", { method: "POST", body: '{"quality":1}' })).text());
    server.use(upstream("GET", "https://rt.example/v1/k", sequence([status(503), json({ ok: "ky" })])).handler);
    seen.push(await createClient({ resilience: options }).get("https://rt.example/v1/k").text());
    server.use(upstream("GET", "https://rt.example/v1/px", sequence([status(503), json({ ok: "proxy" })])).handler);
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: "https://rt.example/v1" }], resilience: options });
    seen.push(await (await proxy.fetch(new Request("https://w.example/v1/px"), {}, ctx)).text());
    expect(seen).toEqual([
      '{"ok":"retried"}',
      '{"ok":"after-hang"}',
      '{"ok":"redirected"}',
      '{"ok":"q"}',
      '{"ok":"rewritten"}',
      '{"ok":"ky"}',
      '{"ok":"proxy"}',
    ]);
    // A turn or two for aborts to reach the faults' listeners.
    try {
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
      expect(armed.stop()).toBe(0);
      expect(armed.made()).toBeGreaterThan(5);
    } finally {
      armed.stop();
    }
  });

  it("a real-time stream whose reader cancels leaves no timer waiting for its next chunk", async () => {
    server.use(upstream("GET", "https://st.example/v1/s", stream(["a", "b", "c"], { interval: 60_000 })).handler);
    const before = refTimers();
    const res = await createResilience().fetch("https://st.example/v1/s");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("a");
    // The fault now waits 60 s (real) for "b".
    for (let i = 0; i < 5 && refTimers() === before; i++) await new Promise((r) => setTimeout(r, 0));
    expect(refTimers()).toBe(before + 1);
    await reader.cancel();
    for (let i = 0; i < 5 && refTimers() !== before; i++) await new Promise((r) => setTimeout(r, 0));
    expect(refTimers()).toBe(before);
  });
});

// ---------------------------------------------------------------------------

describe("state between tests", () => {
  const opened = { failureThreshold: 2, timeout: 30_000 };
  const suiteLayer = createResilience({ clock: new TestClock(), retry: false, breaker: opened });

  it("a layer per test starts closed where an earlier layer opened the host's breaker", async () => {
    const api = upstream("GET", "https://st.example/v1/x", sequence([status(503), status(503), json({ ok: 1 })]));
    server.use(api.handler);
    const first = createResilience({ clock: new TestClock(), retry: false, breaker: opened });
    const recorder = recordEvents(first);
    for (let i = 0; i < 2; i++) await (await first.fetch("https://st.example/v1/x")).text();
    recorder.expectBreakerOpened("st.example");
    await expect(first.fetch("https://st.example/v1/x")).rejects.toBeInstanceOf(CircuitOpenError);
    const next = createResilience({ clock: new TestClock(), retry: false, breaker: opened });
    const res = await next.fetch("https://st.example/v1/x");
    expect([res.status, await res.text(), api.count()]).toEqual([200, '{"ok":1}', 3]);
  });

  it("recordEvents(…).stop() stops recording; another recorder still hears", async () => {
    server.use(upstream("GET", "https://sr.example/v1/x", json({ ok: 1 })).handler);
    const layer = createResilience({ retry: false });
    const a = recordEvents(layer);
    const b = recordEvents(layer);
    await (await layer.fetch("https://sr.example/v1/x")).text();
    a.stop();
    await (await layer.fetch("https://sr.example/v1/x")).text();
    expect([a.events.length, b.events.length]).toEqual([1, 2]);
  });

  it("guide: a layer made once for the suite keeps an opened host breaker into the next test", async () => {
    server.use(upstream("GET", "https://su.example/v1/x", status(503)).handler);
    for (let i = 0; i < 2; i++) await (await suiteLayer.fetch("https://su.example/v1/x")).text();
    expect(suiteLayer.health().breakers["su.example"]?.state).toBe("open");
  });

  it("guide (continued): after server.resetHandlers(), the next test's healthy upstream is never asked", async () => {
    const api = upstream("GET", "https://su.example/v1/x", json({ ok: 1 }));
    server.use(api.handler);
    await expect(suiteLayer.fetch("https://su.example/v1/x")).rejects.toBeInstanceOf(CircuitOpenError);
    expect(api.count()).toBe(0);
  });

  it("guide: a store given to a layer keeps the host open for a layer made afterwards with the same store", async () => {
    server.use(upstream("GET", "https://ss.example/v1/x", status(503)).handler);
    const store = memoryStore();
    const first = createResilience({ clock: new TestClock(), retry: false, breaker: opened, store });
    for (let i = 0; i < 2; i++) await (await first.fetch("https://ss.example/v1/x")).text();
    const api = upstream("GET", "https://ss.example/v1/x", json({ ok: 1 }));
    server.use(api.handler);
    const next = createResilience({ clock: new TestClock(), retry: false, breaker: opened, store });
    await expect(next.fetch("https://ss.example/v1/x")).rejects.toBeInstanceOf(CircuitOpenError);
    expect(api.count()).toBe(0);
  });

  it("the guide says so: make the layer (and its store) per test; resetHandlers does not reset them", async () => {
    const guide = (await readFile(new URL("../../docs/testing.md", import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(guide).toContain("Make the layer inside each test, as here.");
    expect(guide).toContain("make that per test too), `server.resetHandlers()` does not reset them");
  });
});

describe("expectFallback on a hedge (the guide: it looks for a `fallback` event)", () => {
  it("q winning a hedge before p failed records no fallback event; getResilienceInfo names q", async () => {
    const clock = new TestClock();
    server.use(
      upstream("GET", "https://hp.example/v1/x", latency(5_000, json({ from: "p" }), { clock })).handler,
      upstream("GET", "https://hq.example/v1/x", json({ from: "q" })).handler,
    );
    const layer = createResilience({
      clock,
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 500 },
          endpoints: [
            { name: "p", url: "https://hp.example/v1" },
            { name: "q", url: "https://hq.example/v1" },
          ],
        },
      ]),
    });
    const recorder = recordEvents(layer);
    const res = await clock.run(layer.fetch("https://hp.example/v1/x"));
    expect(await res.json()).toEqual({ from: "q" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
    expect(recorder.of("fallback")).toEqual([]);
    expect(() => recorder.expectFallback("p", "q")).toThrow('expected a fallback from "p" to "q"');
    const guide = (await readFile(new URL("../../docs/testing.md", import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(guide).toContain(
      "passes over nothing and records none, though it served: read that from `getResilienceInfo(response)`",
    );
  });
});
