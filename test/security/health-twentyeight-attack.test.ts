/**
 * Outside-in attack on `health()`, `debugInfo()` and the events, and on docs/architecture.md's checkable claims.
 * Docs: docs/health-and-events.md (every paragraph: the `health()` fields and counts, "With a shared `store`,
 * `health()` first reads what the store says … a store of your own whose `peek` throws fails the calls that meet
 * it, not `health()`", "Through `memoryStore()` it shows that layer's counts and error", "for one held open by a
 * `Retry-After`, that reason", "A call whose `Request` body could not be read fires it … but nothing counts it",
 * "`retry` fires before each wait (`key`, …)", "An event object is only built when someone listens", "As with the
 * DOM's `EventTarget`, an event goes to the listeners subscribed when it fired, less any unsubscribed
 * meanwhile"); docs/breakers.md ("what they throw fails the call, which `health()` counts as a failed call");
 * docs/cloudflare.md (the health endpoint); docs/architecture.md ("Nothing at module scope creates a timer, an
 * `AbortController` or a promise").
 * How: `createResilience`, `memoryStore` and hand-written `BreakerStore`s whose `peek`/`record` throw (root);
 * `fallback` (./fallback, a hedged chain too); `degradation` (./degradation); `kvStore` over an inline KV namespace
 * and `resilientProxy` with its health token (./cloudflare); `createClient` (./ky); `TestClock` (./testing); the
 * `hostFetch` helper as the transport; fresh module instances (`vi.resetModules`) with a counting
 * `AbortController`/`setTimeout`.
 * Paths: plain call, retried call, chain, hedged chain, `Request` input with an unreadable body, proxy upstream
 * route and health endpoint, ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a chain asks at each pass whether anyone listens to fallback; the library's stores build a store event, and read an error's text, only for a listener):
 * 1. docs/health-and-events.md "As with the DOM's `EventTarget`, an event goes to the listeners subscribed when it
 *    fired, less any unsubscribed meanwhile". Observed: a `fallback` listener subscribed while a chain call is in
 *    flight (right after `resilience.fetch(…)` returned its promise, before endpoint `a` answered 503) gets no
 *    `fallback` event for that call, though it was subscribed when the event fired; a `request` listener
 *    subscribed at the same moment gets its event. `tryEndpoints` (src/fallback/try-endpoints.ts) reads
 *    `parts.events.has("fallback")` once as the chain starts and passes `onFallback: undefined` for the whole run.
 * 2. docs/health-and-events.md "An event object is only built when someone listens." Observed: with no `store`
 *    listener, a `kvStore` whose KV read rejects still builds the `store` event: its `detail` turns the rejection
 *    into text (the value's `toString` runs once per failed read). The store's `Background.emit`
 *    (src/stores/background.ts) is always connected to the layer (`store.connect(onStore)` in
 *    src/http/create-resilience.ts), and kv-store.ts builds `detail: errorDetail(error)` before emitting without
 *    asking whether anyone listens (durable-object-store.ts's `failed("failed", errorDetail(error))` likewise).
 *    (The same was fixed for `health()` and the layer's view of a store of one's own, session twenty-six.)
 *
 * Held (plain `it`):
 * - A store whose `peek` throws: `health()` returns, the host shows its local state, one `store` event (`read`,
 *   `failed`, the thrown text); the call that meets it fails (attempts 0, `request` event with its error) and is
 *   counted (error rate, totals, recent errors); through the proxy, the call answers 502 and the health endpoint
 *   (Bearer token) answers 200 with the same JSON.
 * - A store whose `record` throws on the second attempt (a 503): the call fails with it, is not retried further,
 *   is counted once; the breaker counts both failed attempts.
 * - `memoryStore()`: another layer's counts and error show (`failureCount` 3, `lastError` "status 503").
 * - A `Retry-After: 3600` 503 that opens a closed breaker with two failures: one `breaker` event, `lastError` and
 *   `reason` "Retry-After 3600 s on status 503", counts 3, `openUntil` now + 3,600 s.
 * - An unreadable `Request` body with the degradation stage: `request` event (`TypeError`, attempts 0), nothing
 *   counted: error rate, totals, degradation window samples all 0.
 * - A hedged chain: `retry` events keyed by each endpoint's host with its URL cut (the endpoint's own `?key=` too),
 *   one `fallback` event, one `request` event keyed by the chain with the caller's URL cut.
 * - The ky client: one `retry` and one `request` event per call, the query cut.
 * - Module scope: importing the root, ./fallback, ./degradation, ./cloudflare, ./policies and ./testing/clock
 *   creates no timer and no `AbortController` (ky's own module does create one, in `new Request` at its
 *   module scope: a dependency, not src/, so ./ky is left out).
 *
 * Not pinned: the function `on` returns removes the listener by identity, so one already used removes a later
 * subscription of the same listener (`off1(); on(name, f); off1()` leaves `f` unsubscribed); DOM's
 * `removeEventListener` also removes by identity, and the docs promise no more.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

const twoEndpoints = (extra: object = {}) =>
  fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "a", url: "https://a.example/v1" },
        { name: "b", url: "https://b.example/v1" },
      ],
    },
  ]);

/** A store of one's own whose `peek` throws while `down.peek` is set, and whose `record` throws on the n-th report. */
function ownStore(down: { peek: boolean; recordThrowsAt?: number }): BreakerStore {
  let reports = 0;
  return {
    name: "mine",
    publish: () => {},
    peek: () => {
      if (down.peek) throw new Error("peek down");
      return undefined;
    },
    record: () => {
      reports++;
      if (reports === down.recordThrowsAt) throw new Error("record down");
    },
  };
}

describe("listeners subscribed during a call (EventTarget semantics)", () => {
  it("a `fallback` listener subscribed while a chain call is in flight gets that call's event", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503), "b.example": status(200) });
    const layer = createResilience({ clock, retry: false, fetch: t.fetch, fallback: twoEndpoints() });
    const got: unknown[] = [];
    const call = layer.fetch("https://a.example/v1/x");
    // Subscribed before `a` answered: the event fires after this.
    layer.on("fallback", (e) => got.push(e));
    const response = await clock.run(call);
    expect(response.status).toBe(200);
    expect(t.log.map((r) => new URL(r.url).host)).toEqual(["a.example", "b.example"]);
    // health-and-events.md: "an event goes to the listeners subscribed when it fired".
    expect(got).toEqual([{ chain: "c", from: "a", reason: "status 503", next: "b" }]);
  });

  it("a `request` listener subscribed at the same moment gets its event (the contrast)", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503), "b.example": status(200) });
    const layer = createResilience({ clock, retry: false, fetch: t.fetch, fallback: twoEndpoints() });
    const got: unknown[] = [];
    const call = layer.fetch("https://a.example/v1/x");
    layer.on("request", (e) => got.push(e));
    await clock.run(call);
    expect(got).toEqual([expect.objectContaining({ key: "c", status: 200, attempts: 2, outcome: "response" })]);
  });
});

describe("an event object is only built when someone listens", () => {
  function failingKv() {
    const clock = new TestClock();
    let shown = 0;
    const failure = {
      toString: () => {
        shown++;
        return "kv down";
      },
    };
    const namespace = {
      getWithMetadata: async () => {
        throw failure;
      },
      put: async () => {},
    };
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const layer = createResilience({
      clock,
      retry: false,
      fetch: async () => new Response("ok"),
      store: kvStore(namespace as never, { ctx, clock, random: () => 0, refreshInterval: 1000 }),
    });
    const settle = async () => {
      await Promise.all(pending.splice(0));
      await clock.advance(0);
    };
    return { clock, layer, settle, shown: () => shown };
  }

  it("a kvStore whose read fails builds no `store` event without a listener", async () => {
    const { layer, settle, shown } = failingKv();
    const response = await layer.fetch("https://a.example/x");
    expect(response.status).toBe(200);
    await settle();
    // health-and-events.md: "An event object is only built when someone listens."
    expect(shown()).toBe(0);
  });

  it("with a `store` listener, the same read failure is one event, its detail the rejection's text", async () => {
    const { clock, layer, settle, shown } = failingKv();
    const got: unknown[] = [];
    layer.on("store", (e) => got.push(e));
    await layer.fetch("https://a.example/x");
    await settle();
    await clock.advance(2_000);
    expect(shown()).toBe(1);
    expect(got).toEqual([{ store: "kv", key: "a.example", operation: "read", outcome: "failed", detail: "kv down" }]);
  });
});

describe("health() and counts after a store fails", () => {
  it("a `peek` that throws: health() answers with the local state and a store event; the call fails, counted", async () => {
    const clock = new TestClock();
    const down = { peek: false };
    const t = hostFetch({ "a.example": status(200) });
    const layer = createResilience({ clock, retry: false, fetch: t.fetch, store: ownStore(down) });
    const events: Array<[string, unknown]> = [];
    layer.on("request", (e) => events.push(["request", e]));
    layer.on("store", (e) => events.push(["store", e]));
    await layer.fetch("https://a.example/x");
    down.peek = true;
    const error = await layer.fetch("https://a.example/x").catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect(t.log.length).toBe(1);
    expect(events[1]).toEqual([
      "request",
      expect.objectContaining({ key: "a.example", status: undefined, attempts: 0, outcome: "error" }),
    ]);
    const h = layer.health();
    expect(h.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    expect(h.errorRate).toBe(0.5);
    expect(h.status).toBe("degraded");
    expect(events.slice(2)).toEqual([
      ["store", { store: "mine", key: "a.example", operation: "read", outcome: "failed", detail: "Error: peek down" }],
    ]);
    const d = layer.debugInfo();
    expect(d.totals).toEqual({ calls: 2, failures: 1 });
    expect(d.recentErrors).toEqual([expect.objectContaining({ key: "a.example", url: "https://a.example/x" })]);
  });

  it("a `record` that throws on a retried 503: the call fails there, counted once; both attempts reach the breaker", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503, 503, 503, 200) });
    const layer = createResilience({
      clock,
      retry: { ...FAST, maxAttempts: 4 },
      fetch: t.fetch,
      store: ownStore({ peek: false, recordThrowsAt: 2 }),
      breaker: { failureThreshold: 5 },
    });
    const names: string[] = [];
    for (const name of ["retry", "request", "breaker"] as const) layer.on(name, () => names.push(name));
    const error = await clock.run(layer.fetch("https://a.example/x")).catch((e: Error) => e);
    expect(String((error as Error).cause)).toBe("Error: record down");
    expect(t.log.length).toBe(2);
    expect(names).toEqual(["retry", "request"]);
    expect(layer.health().breakers["a.example"]).toMatchObject({
      state: "closed",
      failureCount: 2,
      consecutiveFailures: 2,
    });
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("the proxy: a call meeting the throwing `peek` answers 502; the health endpoint answers 200 with health()", async () => {
    const store = ownStore({ peek: true });
    const proxy = resilientProxy({
      routes: [{ path: "/api", upstream: "https://a.example/v1" }],
      store: () => store,
      resilience: { fetch: async () => new Response("ok"), retry: false },
    });
    const env = { RESILIENCE_HEALTH_TOKEN: "tok" };
    const ctx = { waitUntil: () => {}, passThroughOnException: () => {} };
    const call = await proxy.fetch(new Request("https://w.example/api/x"), env as never, ctx as never);
    expect(call.status).toBe(502);
    const denied = await proxy.fetch(new Request("https://w.example/__resilience/health"), env as never, ctx as never);
    expect(denied.status).toBe(401);
    const health = await proxy.fetch(
      new Request("https://w.example/__resilience/health", { headers: { authorization: "Bearer tok" } }),
      env as never,
      ctx as never,
    );
    expect(health.status).toBe(200);
    const body = (await health.json()) as { status: string; errorRate: number; breakers: Record<string, unknown> };
    expect(body).toMatchObject({ status: "degraded", errorRate: 1 });
    expect(body.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0 });
  });

  it("memoryStore: another layer's trip shows with its counts and error", async () => {
    const clock = new TestClock();
    const store = memoryStore();
    const tripping = createResilience({
      clock,
      retry: false,
      store,
      fetch: hostFetch({ "a.example": status(503) }).fetch,
      breaker: { failureThreshold: 3 },
    });
    const watching = createResilience({
      clock,
      retry: false,
      store,
      fetch: hostFetch({ "a.example": status(200) }).fetch,
    });
    await watching.fetch("https://a.example/x");
    for (let i = 0; i < 3; i++) await tripping.fetch("https://a.example/x");
    const h = watching.health();
    expect(h.status).toBe("unhealthy");
    expect(h.breakers["a.example"]).toMatchObject({
      state: "open",
      failureCount: 3,
      consecutiveFailures: 3,
      failureRate: 1,
      lastError: "status 503",
      openUntil: 30_000,
    });
  });
});

describe("what each event carries, path by path", () => {
  it("a Retry-After beyond maxRetryAfter opening a closed breaker: one event, its reason as lastError", async () => {
    const clock = new TestClock();
    let n = 0;
    const layer = createResilience({
      clock,
      retry: false,
      fetch: async () =>
        ++n < 3
          ? new Response("x", { status: 500 })
          : new Response("x", { status: 503, headers: { "retry-after": "3600" } }),
    });
    const events: unknown[] = [];
    layer.on("breaker", (e) => events.push(e));
    for (let i = 0; i < 3; i++) await layer.fetch("https://a.example/x");
    const reason = "Retry-After 3600 s on status 503";
    expect(events).toEqual([{ key: "a.example", from: "closed", to: "open", reason, gen: 1, openUntil: 3_600_000 }]);
    expect(layer.health().breakers["a.example"]).toMatchObject({
      state: "open",
      reason,
      lastError: reason,
      failureCount: 3,
      consecutiveFailures: 3,
      openUntil: 3_600_000,
    });
  });

  it("an unreadable `Request` body: a request event (TypeError, attempts 0), nothing counted, degradation window too", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(200) });
    const layer = createResilience({ clock, retry: false, fetch: t.fetch, degradation: degradation({}) });
    const events: unknown[] = [];
    layer.on("request", (e) => events.push(e));
    const body = new ReadableStream({
      pull(controller) {
        controller.error(new Error("broken"));
      },
    });
    const request = new Request("https://a.example/x?key=SECRET", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    const error = await layer.fetch(request).catch((e: Error) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(t.log.length).toBe(0);
    expect(events).toEqual([
      expect.objectContaining({ url: "https://a.example/x", error: "TypeError", attempts: 0, outcome: "error" }),
    ]);
    const d = layer.debugInfo();
    expect(d.errorRate).toBe(0);
    expect(d.totals).toEqual({ calls: 0, failures: 0 });
    expect(d.degradation?.window.samples).toBe(0);
  });

  it("a hedged chain: retry events keyed by each endpoint's host with its URL cut; one fallback, one request", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503), "b.example": status(503, 200) });
    const layer = createResilience({
      clock,
      retry: { ...FAST, maxAttempts: 2 },
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: "https://a.example/v1?key=S1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const events: Array<[string, unknown]> = [];
    for (const name of ["retry", "request", "fallback"] as const) layer.on(name, (e) => events.push([name, e]));
    const response = await clock.run(layer.fetch("https://a.example/v1/x?q=SECRET"));
    expect(response.status).toBe(200);
    expect(events).toEqual([
      ["retry", expect.objectContaining({ key: "a.example", url: "https://a.example/v1/x", attempt: 1 })],
      ["fallback", { chain: "c", from: "a", reason: "status 503", next: "b" }],
      ["retry", expect.objectContaining({ key: "b.example", url: "https://b.example/v1/x", attempt: 1 })],
      ["request", expect.objectContaining({ key: "c", url: "https://a.example/v1/x", status: 200, attempts: 4 })],
    ]);
    expect(JSON.stringify(events)).not.toMatch(/SECRET|S1/);
  });

  it("the ky client: one retry and one request event per call, the query cut", async () => {
    const clock = new TestClock();
    const t = hostFetch({ "a.example": status(503, 200) });
    const layer = createResilience({ clock, retry: FAST, fetch: t.fetch });
    const events: Array<[string, unknown]> = [];
    for (const name of ["retry", "request"] as const) layer.on(name, (e) => events.push([name, e]));
    const api = createClient({ resilience: layer, prefix: "https://a.example/v1" });
    expect(await clock.run(api.get("x?key=SECRET").text())).toBe("answer 2");
    expect(events).toEqual([
      ["retry", expect.objectContaining({ key: "a.example", url: "https://a.example/v1/x", attempt: 1 })],
      ["request", expect.objectContaining({ url: "https://a.example/v1/x", status: 200, attempts: 2 })],
    ]);
  });
});

describe("docs/architecture.md: nothing at module scope creates a timer or an AbortController", () => {
  it("importing the src entries (ky's adapter aside) makes neither", async () => {
    vi.resetModules();
    const made: string[] = [];
    const RealController = globalThis.AbortController;
    class CountingController extends RealController {
      constructor() {
        super();
        made.push("AbortController");
      }
    }
    const realSetTimeout = globalThis.setTimeout;
    const realSetInterval = globalThis.setInterval;
    vi.spyOn(globalThis, "setTimeout").mockImplementation(((...args: Parameters<typeof setTimeout>) => {
      if ((new Error().stack ?? "").includes("/src/")) made.push("setTimeout");
      return realSetTimeout(...args);
    }) as never);
    vi.spyOn(globalThis, "setInterval").mockImplementation(((...args: Parameters<typeof setInterval>) => {
      if ((new Error().stack ?? "").includes("/src/")) made.push("setInterval");
      return realSetInterval(...args);
    }) as never);
    globalThis.AbortController = CountingController as typeof AbortController;
    try {
      await import("../../src/index.ts");
      await import("../../src/fallback/index.ts");
      await import("../../src/degradation/index.ts");
      await import("../../src/cloudflare/index.ts");
      await import("../../src/policies/index.ts");
      await import("../../src/testing/clock.ts");
    } finally {
      globalThis.AbortController = RealController;
      vi.restoreAllMocks();
    }
    expect(made).toEqual([]);
  });
});
