/**
 * Outside-in attack on docs/cloudflare.md, sentence by sentence, aimed at what the forty-ninth, fifty-second and
 * fifty-third runs did not drive: the health token's Secrets Store binding, escapes in route and health paths, a
 * client that went away, body limits at the boundary, two layers on one `memoryStore()`, KV idle spells, long
 * backoffs and garbage reads, what a KV store forgets, and a Durable Object that throws, hangs or answers garbage.
 *
 * Docs:
 * - docs/cloudflare.md: "when the env var `RESILIENCE_HEALTH_TOKEN` holds a value (text, a number …, or a Secrets
 *   Store binding, read with `get()`; any other value, or a `get()` that fails or has not answered within 5 s, keeps
 *   the endpoint closed)"; "A route's path and the health path match whatever case a client's percent-escapes are in
 *   (`%c3%a9` is `%C3%A9`)"; "the path matches as written, so `/__resilience/health/`, `//__resilience/health` … is
 *   an ordinary path, routed like any other"; "A request for no route, or for the health path, sends nothing upstream
 *   and is answered as ever (404, or the health JSON)"; "A request for a route whose client went away … the proxy's
 *   `fetch` rejects with the signal's reason"; "a closing `/` of the upstream's shared with it …, the query after the
 *   upstream's own"; "the layer reads at most `maxReplayBytes` of it ahead, so a small body is retried and a larger
 *   one is sent once".
 * - "A retry reads the store again before it leaves, as a call does: with `memoryStore()`, a host another layer
 *   opened during the backoff is not sent it; with KV or a Durable Object, the retry goes on what the isolate has read
 *   by then, and a backoff longer than the staleness below is an idle spell like any other (its retry starts the
 *   refresh)"; "An isolate idle for longer than that sends the calls it starts before that refresh comes back on what
 *   it last saw, and refuses from then on (one KV read … after its first call)"; table: memoryStore "`halfOpenMaxCalls`
 *   per layer (each `Resilience` sharing it probes on its own)".
 * - "A store that errs or is slow is ignored (a `store` event says why) and the request goes on under the local
 *   breaker. Remote values are validated with zod and a foreign or corrupt one is ignored, with a `store` event
 *   (`validate`, `rejected`)"; "A store keeps what it read for its last 1,000 hosts: one it forgot reads the value
 *   anew, and its 24 hours start again"; "A value dated ahead of the reader's clock … keeps that date when it comes
 *   back after another value (a key remembers the last 8 such values it read)".
 * - "`durableObjectStore` sends outcomes in batches (every `flushInterval`, at once when `flushThreshold` failures
 *   wait, or on a local trip)"; its JSDoc `flushInterval`: "Outcomes are sent in batches at most this often while
 *   closed"; table: "≤ `flushInterval` (5 s) + `verdictTtl` (5 s) for an isolate calling the host, or at once on a
 *   local trip", "one batched report per isolate per 5 s while closed"; "A local trip also holds a closed object
 *   open for the local open spell, with the isolate's reason".
 * - "With the state it stores the thresholds the isolates last sent (with a transition, or as soon as they change
 *   while the host is open or half-open, when an alarm is due), so an object evicted and built again still runs its
 *   alarm: … a dead probe's lease counts as a failure at its expiry".
 * - "Both check their options when they are made, with a `TypeError` naming the store and the option: …".
 *
 * How: `resilientProxy`, `kvStore`, `durableObjectStore`, `BreakerStateObject` (../../src/cloudflare/index.ts),
 * `createResilience`, `memoryStore` (../../src/index.ts), `TestClock` (../../src/testing/index.ts); one node:http
 * server on 127.0.0.1 (test/helpers/http-upstream.ts). `FakeKv`: a KV namespace in one Map, reads recorded, that can
 * throw (sync or async), hang, answer `undefined` or a value without metadata. `FakeDo`: a namespace whose stubs call
 * a real `BreakerStateObject` on a Map storage (writes recorded), or throw, hang, answer non-JSON or a verdict with a
 * field too many, or whose `get` throws. Several proxies or layers stand for isolates.
 *
 * Paths: `resilientProxy` (upstream routes, health endpoint, aborted client, streamed PUT bodies, retries with
 * backoff), plain calls through `createResilience` over KV and Durable Object stores, the stores' `peek`/`connect`
 * directly, `BreakerStateObject#fetch`/`alarm` directly.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the fifty-fifth session the first sentence
 * was corrected and the second defect fixed, so plain `it`):
 * 1. docs/cloudflare.md "`durableObjectStore` sends outcomes in batches (every `flushInterval`, …)" and the JSDoc
 *    "Outcomes are sent in batches at most this often while closed". Observed: with `verdictTtl` below
 *    `flushInterval` (both taken when the store is made), a report goes every `verdictTtl`: `verdictTtl: 1000`,
 *    calls every 100 ms, 5 reports in 5 s; `verdictTtl: 0` (allowed, `>= 0`), one report per call (50 in 5 s).
 *    Cause: src/cloudflare/durable-object-store.ts `peek` flushes whenever `now >= st.verdictUntil` and outcomes
 *    wait, without looking at `lastFlush`; `verdictUntil` is `now + verdictTtl`. Corrected text: asking again for a
 *    closed verdict is a report, so outcomes go every `flushInterval`, or every `verdictTtl` when that is shorter.
 * 2. docs/cloudflare.md table "≤ `flushInterval` (5 s) + `verdictTtl` (5 s) for an isolate calling the host, or at
 *    once on a local trip", and "A local trip also holds a closed object open for the local open spell". Observed:
 *    when the object fails the one report that carries the trip (it throws once, then answers again), the trip is
 *    never sent again: the tripped isolate, open locally for 60 s, sends its routine reports every 5 s with no
 *    `holdUntil`, the object stays closed, and another isolate calling the host every second is still not refused 40 s
 *    later (the control, the object answering, refuses at 6 s). Cause: `flush` clears `holdUntil`/`holdReason` (and
 *    the counts) when the report leaves, and a report that fails puts nothing back (kvStore tries a refused write once
 *    more, `minPublishInterval` later). Fixed: a report that fails puts its hold back, for the next report.
 *
 * Held (plain `it`):
 * - Health: a Secrets Store `get()` read per request; one that never answers → 401 after exactly 5 s of the layer's
 *   clock; a `get()` that rejects, throws, answers `""` or a number, `true`, a plain object → 401; `0` is a token;
 *   `""` leaves it open; HEAD 401 without a body; nothing sent upstream.
 * - Escapes in either case match a route (`%c3%a9` for `/vid%C3%A9o`) and a custom health path; `…/`, `//…` and the
 *   default health path under a custom one are routed; an aborted client gets 404 / the health JSON, a route rejects
 *   with its reason; the upstream's closing `/` shared and its `?key=` first.
 * - A streamed body of exactly `maxReplayBytes` retried whole; one byte more sent once.
 * - Two layers on one `memoryStore()`: a retry in its backoff is not sent to the host the other opened (the kept 503
 *   goes back, attempts 1); each layer probes on its own (2 probes for `halfOpenMaxCalls: 1`).
 * - KV: an idle isolate's first call goes, the next refuses after one read; a 40 s backoff's retry goes and starts the
 *   read, the next call refuses; reads that throw, reject, answer `undefined` → `read`/`failed`, a value without
 *   metadata → `validate`/`rejected`, a hang → `read`/`timeout` at the next refresh, all calls served, then a value
 *   read adopted; 999 other hosts keep a 3-day hold's first 24 h, 1,000 make it start again; a value dated ahead
 *   keeps its first date after 7 others, not after 8.
 * - Durable Object: throw, hang (250 ms), non-JSON, a field too many, a `get` that throws → `report` events `failed`,
 *   `timeout`, `failed`, `rejected`, `failed`, calls 200; thresholds stored with the trip, again at once while
 *   half-open, not while closed, and applied by an object built again at its alarm (reopened for the new 90 s).
 * - Store option mistakes (numeric string, below 1 s, `Infinity`, a fraction, no `setTimer`, a number scope, a `ctx`
 *   without `waitUntil`, a misspelt name, a getter that throws, a revoked Proxy, a policy the object would refuse):
 *   each a `TypeError` naming the store and the option, `memoryStore` too.
 *
 * Docs-silent (not pinned):
 * - A Durable Object (a foreign one) answering `{ state: "open", openUntil: null }` passes validation: the isolate
 *   goes half-open and, the object granting no lease, refuses every call from then on, each refused call sending a
 *   `/probe` (11 object requests for 10 calls).
 * - A tripped isolate whose object's verdict is closed sends an empty report (`ok: 0, fail: 0`) every 5 s while its
 *   own breaker is open (the table's "none while open" reads as the object's open).
 */
import { afterEach, describe, expect, it } from "vitest";
import { BreakerStateObject, durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { createResilience, memoryStore, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
serveDuringFile(A);

const T0 = 1_000_000;
/** Work handed to `ctx.waitUntil`: settled after each test (hanging ones dropped by the test). */
const pending: Promise<unknown>[] = [];
const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) if (!hit.res.writableEnded) hit.res.end("late");
  await Promise.allSettled(pending.splice(0));
});
const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};
const settleBackground = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await Promise.allSettled([...pending]);
};
const worker = (path: string, init?: RequestInit) => new Request(`https://worker.example${path}`, init);
const answer =
  (status: number, headers: Record<string, string> = {}, body = `s${status}`) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "text/plain", ...headers }).end(body);
  };
/** What a promise settles with, or "pending" after a few real ms. */
const soon = <T>(p: Promise<T>): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), 150))]);
/** Real turns, for background work on real I/O to land. */
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};

// ---------------------------------------------------------------------------------------------------------------
// A KV namespace of my own: one map, every read and write recorded; reads can hang, throw, or answer garbage.

type KvMode = "ok" | "hang" | "throw" | "throw-sync" | "undefined" | "no-metadata";
class FakeKv {
  readonly values = new Map<string, { value: string; metadata: unknown }>();
  readonly reads: number[] = [];
  readonly puts: { key: string; metadata: unknown; at: number }[] = [];
  mode: KvMode = "ok";
  readonly clock: TestClock;
  constructor(clock: TestClock) {
    this.clock = clock;
  }
  readonly binding = {
    getWithMetadata: (key: string, _options?: { type?: "text"; cacheTtl?: number }) => {
      this.reads.push(this.clock.now());
      if (this.mode === "throw-sync") throw new Error("kv exploded synchronously");
      if (this.mode === "hang") return new Promise<never>(() => {});
      if (this.mode === "throw") return Promise.reject(new Error("KV GET failed: 500"));
      if (this.mode === "undefined") return Promise.resolve(undefined as never);
      if (this.mode === "no-metadata") return Promise.resolve({ value: "x", metadata: undefined } as never);
      const entry = this.values.get(key);
      return Promise.resolve({ value: entry?.value ?? null, metadata: (entry?.metadata ?? null) as never });
    },
    put: async (key: string, value: string, options?: { expirationTtl?: number; metadata?: unknown }) => {
      this.puts.push({ key, metadata: options?.metadata, at: this.clock.now() });
      this.values.set(key, { value, metadata: options?.metadata });
    },
  };
}
const kvKeyOf = (host: string) => `cb:v1:default:${host}`;

// ---------------------------------------------------------------------------------------------------------------
// A Durable Object namespace of my own: each stub's fetch calls a real `BreakerStateObject` on a Map storage, or
// (by `mode`) throws, hangs, answers non-JSON, answers a verdict with a field too many.

type DoMode = "ok" | "throw" | "hang" | "not-json" | "extra-field" | "get-throws";
class FakeDo {
  readonly objects = new Map<string, BreakerStateObject>();
  readonly storage = new Map<string, unknown>();
  readonly storagePuts: string[] = [];
  readonly requests: { path: string; body: Record<string, unknown>; at: number }[] = [];
  mode: DoMode = "ok";
  readonly clock: TestClock;
  constructor(clock: TestClock) {
    this.clock = clock;
  }
  state() {
    const values = this.storage;
    return {
      storage: {
        get: async <T>(key: string) => structuredClone(values.get(key)) as T | undefined,
        put: async (key: string, value: unknown) => {
          this.storagePuts.push(key);
          values.set(key, structuredClone(value));
        },
        setAlarm: async () => {},
      },
      blockConcurrencyWhile: <T>(callback: () => Promise<T>): Promise<T> => callback(),
    };
  }
  readonly binding = {
    idFromName: (name: string) => ({ name }),
    get: (id: never) => {
      if (this.mode === "get-throws") throw new Error("no such namespace");
      const { name } = id as { name: string };
      return {
        fetch: async (input: string, init?: RequestInit): Promise<Response> => {
          const request = new Request(input, init);
          const path = new URL(request.url).pathname;
          this.requests.push({ path, body: JSON.parse(await request.clone().text()), at: this.clock.now() });
          if (this.mode === "throw") throw new Error("object unreachable");
          if (this.mode === "hang") return new Promise<never>(() => {});
          if (this.mode === "not-json") return new Response("<html>overloaded</html>", { status: 200 });
          let object = this.objects.get(name);
          if (!object) {
            object = new BreakerStateObject(this.state(), {}, this.clock);
            this.objects.set(name, object);
          }
          const answer = await object.fetch(request);
          if (this.mode === "extra-field") return Response.json({ ...(await answer.json()), extra: 1 });
          return answer;
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

describe("resilientProxy: the health endpoint's token", () => {
  const proxyOn = (clock: TestClock) =>
    resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, retry: false } as never,
    });
  const health = (token?: string, method = "GET") =>
    worker("/__resilience/health", { method, headers: token ? { authorization: token } : {} });

  it("held: a Secrets Store binding is read with get(); one that never answers keeps it closed once 5 s passed on the layer's clock", async () => {
    const clock = new TestClock(T0);
    const proxy = proxyOn(clock);
    const good = { RESILIENCE_HEALTH_TOKEN: { get: async () => "s3cret" } };
    expect((await proxy.fetch(health("bearer    s3cret"), good, ctx)).status).toBe(200);
    expect((await proxy.fetch(health("Bearer s3cre"), good, ctx)).status).toBe(401);
    const never = { RESILIENCE_HEALTH_TOKEN: { get: () => new Promise<string>(() => {}) } };
    const waiting = proxy.fetch(health("Bearer s3cret"), never, ctx);
    expect(await soon(waiting)).toBe("pending");
    await clock.advance(4_999);
    expect(await soon(waiting)).toBe("pending");
    await clock.advance(1);
    const closed = await waiting;
    expect([closed.status, closed.headers.get("www-authenticate")]).toEqual([401, "Bearer"]);
    expect(A.hits).toHaveLength(0);
  });

  it("held: a get() that rejects, throws, or answers no text, and a value that is no token (true, an object), keep it closed; 0 is a token", async () => {
    const clock = new TestClock(T0);
    const proxy = proxyOn(clock);
    const closedFor = [
      { get: async () => Promise.reject(new Error("secrets store down")) },
      {
        get: () => {
          throw new Error("sync");
        },
      },
      { get: async () => "" },
      { get: async () => 42 },
      true,
      { token: "s3cret" },
    ];
    for (const value of closedFor) {
      const res = await proxy.fetch(health("Bearer s3cret"), { RESILIENCE_HEALTH_TOKEN: value }, ctx);
      expect([String(JSON.stringify(value)), res.status]).toEqual([String(JSON.stringify(value)), 401]);
    }
    expect((await proxy.fetch(health("Bearer 0"), { RESILIENCE_HEALTH_TOKEN: 0 }, ctx)).status).toBe(200);
    expect((await proxy.fetch(health(), { RESILIENCE_HEALTH_TOKEN: "" }, ctx)).status).toBe(200);
    const head = await proxy.fetch(health(undefined, "HEAD"), { RESILIENCE_HEALTH_TOKEN: "t" }, ctx);
    expect([head.status, await head.text()]).toEqual([401, ""]);
  });
});

describe("resilientProxy: routes, the health path and a client that went away", () => {
  it("held: a route's path and the health path match whatever case the client's escapes are in; the health path matches as written", async () => {
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/vid%C3%A9o", upstream: `${A.base}/video/` },
        { path: "/", upstream: `${A.base}/all` },
      ],
      healthPath: "/st%C3%A4tus",
    });
    const seen: Array<[number, string | undefined]> = [];
    for (const path of [
      "/vid%c3%a9o/x?q=1",
      "/VID%C3%A9o/x",
      "/st%c3%a4tus",
      "/st%C3%A4tus/",
      "//st%C3%A4tus",
      "/__resilience/health",
    ]) {
      const before = A.hits.length;
      const res = await proxy.fetch(worker(path), {}, ctx);
      await res.text();
      seen.push([res.status, A.hits[before]?.path]);
    }
    expect(seen).toEqual([
      [200, "/video/x?q=1"],
      [200, "/all/VID%C3%A9o/x"],
      [200, undefined],
      [200, "/all/st%C3%A4tus/"],
      [200, "/all//st%C3%A4tus"],
      [200, "/all/__resilience/health"],
    ]);
  });

  it("held: a client that went away: no route is 404 and the health path its JSON, nothing sent; a route's request rejects with the signal's reason", async () => {
    const proxy = resilientProxy<object>({ routes: [{ path: "/api", upstream: A.base }] });
    const gone = new AbortController();
    const reason = new Error("client hung up");
    gone.abort(reason);
    const none = await proxy.fetch(worker("/elsewhere", { signal: gone.signal }), {}, ctx);
    const health = await proxy.fetch(worker("/__resilience/health", { signal: gone.signal }), {}, ctx);
    expect([none.status, health.status, typeof (await health.json())]).toEqual([404, 200, "object"]);
    await expect(proxy.fetch(worker("/api/x", { signal: gone.signal }), {}, ctx)).rejects.toBe(reason);
    expect(A.hits).toHaveLength(0);
  });

  it("held: an upstream's closing `/` is shared with the path below, and the query goes after the upstream's own", async () => {
    const proxy = resilientProxy<object>({ routes: [{ path: "/r/", upstream: `${A.base}/v1/?key=k%20y` }] });
    for (const path of ["/r/x/y?a=1&b", "/r", "/r/?z"]) await (await proxy.fetch(worker(path), {}, ctx)).text();
    expect(A.hits.map((h) => h.path)).toEqual(["/v1/x/y?key=k%20y&a=1&b", "/v1/?key=k%20y", "/v1/?key=k%20y&z"]);
  });
});

describe("resilientProxy: body limits", () => {
  const stream = (bytes: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(bytes).fill(97));
        controller.close();
      },
    });
  it("held: a streamed body of exactly `maxReplayBytes` is retried whole; one byte more is sent once", async () => {
    const clock = new TestClock(T0);
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, maxReplayBytes: 1024, retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" } } as never,
    });
    A.on(answer(500));
    const sizes: number[][] = [];
    for (const bytes of [1024, 1025]) {
      const before = A.hits.length;
      const call = proxy.fetch(
        worker("/up", { method: "PUT", body: stream(bytes), duplex: "half" } as RequestInit),
        {},
        ctx,
      );
      const res = await clock.run(call);
      await res.text();
      sizes.push(A.hits.slice(before).map((h) => h.bytes.length));
    }
    expect(sizes).toEqual([[1024, 1024], [1025]]);
  });
});

describe("shared breaker state across two layers", () => {
  it("held: with one memoryStore(), a retry waiting out its backoff is not sent to a host the other layer opened; the kept 503 goes back", async () => {
    const clock = new TestClock(T0);
    const shared = memoryStore();
    const make = (resilience: ResilienceOptions) =>
      resilientProxy<object>({
        routes: [{ path: "/", upstream: A.base }],
        resilience: { clock, ...resilience } as never,
        store: () => shared,
      });
    const slow = make({ retry: { maxAttempts: 2, initialDelay: 10_000, jitter: "none" } });
    const quick = make({ retry: false, breaker: { failureThreshold: 1 } });
    A.on(answer(503, {}, "busy"));
    const first = slow.fetch(worker("/x"), {}, ctx);
    await A.nth(1);
    await clock.waitForTimers(1);
    const other = await quick.fetch(worker("/y"), {}, ctx);
    expect([other.status, await other.text()]).toEqual([503, "busy"]);
    await clock.advance(10_000);
    const res = await first;
    expect([res.status, await res.text(), res.headers.get("x-resilience-attempts")]).toEqual([503, "busy", "1"]);
    expect(A.hits).toHaveLength(2);
  });

  it("held: with one memoryStore(), each layer probes on its own: `halfOpenMaxCalls` per layer", async () => {
    const clock = new TestClock(T0);
    const shared = memoryStore();
    const make = () =>
      resilientProxy<object>({
        routes: [{ path: "/", upstream: A.base }],
        resilience: {
          clock,
          retry: false,
          breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, timeout: 1_000 },
        } as never,
        store: () => shared,
      });
    const one = make();
    const two = make();
    A.on(answer(500));
    await (await one.fetch(worker("/trip"), {}, ctx)).text();
    const refused = await two.fetch(worker("/x"), {}, ctx);
    expect(refused.status).toBe(503);
    await clock.advance(1_000);
    A.reset();
    A.on((hit) => held.push(hit));
    const probes = [one, two, one, two].map((p) => p.fetch(worker("/probe"), {}, ctx));
    await A.nth(2);
    await turns();
    const early = await Promise.all([soon(probes[2] as Promise<Response>), soon(probes[3] as Promise<Response>)]);
    expect(early.map((r) => (r === "pending" ? r : r.status))).toEqual([503, 503]);
    expect(A.hits).toHaveLength(2);
    for (const hit of held.splice(0)) hit.res.end("ok");
    await Promise.all(probes);
  });
});

describe("kvStore over a KV of my own: staleness, garbage, forgetting", () => {
  const HOUR = 3_600_000;
  const kvProxy = (clock: TestClock, resilience: ResilienceOptions = {}) =>
    resilientProxy<{ KV: FakeKv["binding"] }>({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1, timeout: 600_000 }, ...resilience } as never,
      store: (env) => kvStore(env.KV, { clock, random: () => 0 }),
    });
  const status = async (proxy: ReturnType<typeof kvProxy>, env: { KV: FakeKv["binding"] }, path = "/x") => {
    const res = await proxy.fetch(worker(path), env, ctx);
    await res.text();
    await turns(2);
    return res.status;
  };

  it("held: an isolate idle past the staleness sends its first call on what it last saw, and refuses from then on (one KV read later)", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock);
    const env = { KV: kv.binding };
    const one = kvProxy(clock);
    const two = kvProxy(clock);
    expect(await status(two, env)).toBe(200); // read at T0: nothing
    await clock.advance(40_000);
    A.on(answer(503));
    expect(await status(one, env)).toBe(503); // trips, written at once (no jitter)
    await settleBackground();
    expect(kv.puts.map((p) => (p.metadata as { s: string }).s)).toEqual(["open"]);
    await clock.advance(160_000); // two idle for 200 s
    const readsBefore = kv.reads.length;
    const sentBefore = A.hits.length;
    expect(await status(two, env)).toBe(503); // sent (the upstream's own 503)
    expect(A.hits.length - sentBefore).toBe(1);
    await settleBackground();
    expect(await status(two, env)).toBe(503);
    expect([A.hits.length - sentBefore, kv.reads.length - readsBefore]).toEqual([1, 1]);
  });

  it("held: a retry whose backoff outlasts `refreshInterval` goes on what the isolate read, starting the refresh; the next call refuses", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock);
    const env = { KV: kv.binding };
    const one = kvProxy(clock);
    const two = kvProxy(clock, {
      retry: { maxAttempts: 2, initialDelay: 40_000, jitter: "none" },
      breaker: { failureThreshold: 5, timeout: 600_000 },
    });
    A.on(answer(200));
    expect(await status(two, env)).toBe(200); // two read at T0
    A.on(answer(503, {}, "busy"));
    const call = two.fetch(worker("/retried"), env, ctx);
    await A.nth(2);
    await clock.waitForTimers(1);
    await clock.advance(10_000);
    expect(await status(one, env)).toBe(503); // one trips at T0 + 10 s and writes
    await settleBackground();
    expect(kv.puts).toHaveLength(1);
    const readsBefore = kv.reads.length;
    await clock.advance(30_000); // two's retry leaves at T0 + 40 s
    const res = await call;
    await res.text();
    expect([res.status, res.headers.get("x-resilience-attempts"), A.hits.length]).toEqual([503, "2", 4]);
    expect(kv.reads.length - readsBefore).toBe(1);
    await settleBackground();
    expect(await status(two, env)).toBe(503);
    expect(A.hits).toHaveLength(4);
  });

  it("held: reads that throw, reject, answer no object or a value without metadata, or hang: each a store event, every call served by the local breaker", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock);
    const store = kvStore(kv.binding, { clock, random: () => 0 });
    const seen: string[] = [];
    store.connect?.((event) => seen.push(`${event.operation}/${event.outcome}`));
    const resilience = createResilience({ clock, store, retry: false });
    const statuses: number[] = [];
    for (const mode of ["throw", "throw-sync", "undefined", "no-metadata", "hang", "ok"] as const) {
      kv.mode = mode;
      if (mode === "ok") {
        kv.values.set(kvKeyOf(A.host), {
          value: "",
          metadata: { v: 1, s: "open", g: 3, u: clock.now() + 600_000, w: clock.now() - 1, r: "elsewhere" },
        });
      }
      const res = await soon(resilience.fetch(`${A.base}/k`));
      statuses.push(res === "pending" ? 0 : res.status);
      if (res !== "pending") await res.text();
      await turns(2);
      await clock.advance(30_000);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(seen).toEqual(["read/failed", "read/failed", "read/failed", "validate/rejected", "read/timeout"]);
    await expect(resilience.fetch(`${A.base}/k`)).rejects.toMatchObject({ name: "CircuitOpenError" });
    expect(A.hits).toHaveLength(6);
    pending.length = 0;
  });

  it("held: a store keeps what it read for its last 1,000 hosts: the 24 hours of a hold it forgot start again", async () => {
    const run = async (others: number): Promise<number | null | undefined> => {
      const clock = new TestClock(T0);
      const kv = new FakeKv(clock);
      kv.values.set(kvKeyOf("h.example"), {
        value: "",
        metadata: { v: 1, s: "open", g: 1, u: T0 + 72 * HOUR, w: T0 - 1, r: "three days" },
      });
      const store = kvStore(kv.binding, { clock });
      store.peek("h.example", T0);
      await turns(2);
      expect(store.peek("h.example", T0)?.openUntil).toBe(T0 + 24 * HOUR);
      for (let i = 0; i < others; i++) store.peek(`o${i}.example`, T0);
      await turns(3);
      await clock.advance(12 * HOUR);
      store.peek("h.example", clock.now());
      await turns(2);
      return store.peek("h.example", clock.now())?.openUntil;
    };
    expect(await run(999)).toBe(T0 + 24 * HOUR);
    expect(await run(1_000)).toBe(T0 + 36 * HOUR);
  });

  it("held: a value dated ahead keeps its first reading's date when it comes back, for the last 8 such values read", async () => {
    const run = async (between: number) => {
      const clock = new TestClock(T0);
      const kv = new FakeKv(clock);
      const store = kvStore(kv.binding, { clock, refreshInterval: 1_000 });
      const ahead = (g: number) => ({ v: 1, s: "open", g, u: T0 + HOUR + 30_000, w: T0 + HOUR, r: `v${g}` });
      const values = [1, ...Array.from({ length: between }, (_, i) => i + 2), 1];
      for (const g of values) {
        kv.values.set(kvKeyOf("h.example"), { value: "", metadata: ahead(g) });
        store.peek("h.example", clock.now());
        await turns(2);
        await clock.advance(1_000);
      }
      const seen = store.peek("h.example", clock.now());
      return [seen?.reason, seen?.changedAt];
    };
    expect(await run(7)).toEqual(["v8", T0 + 7_000]); // v1 remembered from T0: older news than v8
    expect(await run(8)).toEqual(["v1", T0 + 9_000]); // v1 forgotten: dated when read again
  });
});

describe("durableObjectStore and BreakerStateObject over a namespace of my own", () => {
  it("held: an object that throws, hangs, answers no JSON or a verdict with a field too many, or a binding that throws: a store event each, calls go on under the local breaker", async () => {
    const outcomes: string[][] = [];
    for (const mode of ["throw", "hang", "not-json", "extra-field", "get-throws"] as const) {
      const clock = new TestClock(T0);
      const ns = new FakeDo(clock);
      ns.mode = mode;
      const store = durableObjectStore(ns.binding, { clock });
      const events: string[] = [];
      store.connect?.((event) => events.push(`${event.operation}/${event.outcome}`));
      const resilience = createResilience({ clock, store, retry: false });
      const res = await resilience.fetch(`${A.base}/d`);
      await res.text();
      await turns(2);
      await clock.advance(250);
      await turns(2);
      outcomes.push([mode, String(res.status), ...events]);
    }
    expect(outcomes).toEqual([
      ["throw", "200", "report/failed"],
      ["hang", "200", "report/timeout"],
      // Was "report/failed" (a SyntaxError) until the recheck-fiftysix run: an answer that is no JSON is a foreign one.
      ["not-json", "200", "validate/rejected"],
      // Was "report/rejected" (as an object that erred) until the storeclock-fiftysix run: a corrupt answer is a
      // `validate` event now, as docs/cloudflare.md says of a foreign or corrupt value.
      ["extra-field", "200", "validate/rejected"],
      ["get-throws", "200", "report/failed"],
    ]);
    pending.length = 0;
  });

  // Asserted before: one report in 5 s whatever `verdictTtl` ([1, 1]). Asking the object again for a closed verdict
  // is a report carrying the outcomes waiting, so a `verdictTtl` below `flushInterval` sends them that often; the
  // guide and the JSDoc now say so (corrected in the fifty-fifth session).
  it("DEFECT 1 (text corrected): outcomes go every `flushInterval`, or every `verdictTtl` when that is shorter", async () => {
    const reportsIn5s: number[] = [];
    for (const verdictTtl of [5_000, 1_000, 0]) {
      const clock = new TestClock(T0);
      const ns = new FakeDo(clock);
      const store = durableObjectStore(ns.binding, { clock, flushInterval: 5_000, verdictTtl });
      const resilience = createResilience({ clock, store, retry: false });
      for (let i = 0; i < 50; i++) {
        await (await resilience.fetch(`${A.base}/batched`)).text();
        await turns(1);
        await clock.advance(100);
      }
      reportsIn5s.push(ns.requests.filter((r) => r.path === "/report").length);
    }
    // The first call asks at once (no verdict yet); then one report per `verdictTtl` (at 0, one per call).
    expect(reportsIn5s).toEqual([1, 5, 50]);
  });

  /** When (ms after the trip) isolate two is first refused, isolate one having tripped at T0 (the object failing that report or not). */
  const refusedAfterTrip = async (failOnce: boolean) => {
    const clock = new TestClock(T0);
    const ns = new FakeDo(clock);
    A.on((hit) => (hit.path === "/fail" ? answer(500)(hit) : answer(200)(hit)));
    const layer = (failureThreshold: number) =>
      createResilience({
        clock,
        store: durableObjectStore(ns.binding, { clock }),
        retry: false,
        breaker: { failureThreshold, timeout: 60_000 },
      });
    const one = layer(1);
    const two = layer(5);
    await (await two.fetch(`${A.base}/ok`)).text(); // two's verdict: closed
    await turns(2);
    if (failOnce) ns.mode = "throw"; // one transient failure of the object, at the trip
    await (await one.fetch(`${A.base}/fail`)).text();
    await turns(2);
    ns.mode = "ok";
    let refusedAt = Number.POSITIVE_INFINITY;
    for (let t = 1; t <= 40 && refusedAt === Number.POSITIVE_INFINITY; t++) {
      await clock.advance(1_000);
      await one.fetch(`${A.base}/ok`).then(
        (r) => r.text(),
        () => undefined,
      ); // one calls too (refused: open locally for 60 s)
      await turns(1);
      try {
        await (await two.fetch(`${A.base}/ok`)).text();
      } catch {
        refusedAt = t * 1_000;
      }
      await turns(1);
    }
    const holds = ns.requests.filter((r) => r.body.holdUntil !== undefined).map((r) => r.at - T0);
    return { refusedAt, holds };
  };

  it("held (control for defect 2): a trip the object hears holds it open; the other isolate refuses within verdictTtl", async () => {
    const { refusedAt, holds } = await refusedAfterTrip(false);
    expect([refusedAt, holds]).toEqual([6_000, [0]]); // within flushInterval + verdictTtl
  });

  it("DEFECT 2 (fixed): a trip whose report the object failed once still holds the object open once it answers again: another isolate refuses within flushInterval + verdictTtl", async () => {
    const { refusedAt } = await refusedAfterTrip(true);
    // Observed: Infinity (never within 40 s of one's 60 s spell); one's later reports, every 5 s, carry no hold.
    expect(refusedAt).toBeLessThanOrEqual(15_000);
  });

  it("held: the object stores the thresholds as soon as they change while the host is open or half-open (not while closed), and an object built again applies them at its alarm", async () => {
    const clock = new TestClock(T0);
    const ns = new FakeDo(clock);
    const policy = (timeout: number) => ({
      failureThreshold: 1,
      successThreshold: 1,
      timeout,
      halfOpenMaxCalls: 1,
      timeWindow: 30_000,
      probeTimeout: 10_000,
      failureRate: null,
      minimumCalls: 100,
    });
    const stub = ns.binding.get(ns.binding.idFromName("h") as never);
    const send = async (path: string, body: unknown) =>
      (await stub.fetch(`https://breaker-state${path}`, { method: "POST", body: JSON.stringify(body) })).json();
    await send("/report", { policy: policy(30_000), ok: 1, fail: 0 });
    await send("/report", { policy: policy(45_000), ok: 1, fail: 0 }); // closed, no transition: not stored
    expect(ns.storagePuts).toEqual([]);
    await send("/report", { policy: policy(30_000), ok: 0, fail: 1 }); // trips
    expect(ns.storagePuts).toEqual(["snapshot", "policy"]);
    await clock.advance(30_000);
    const probe = (await send("/probe", { policy: policy(30_000) })) as { state: string; lease: number };
    expect(probe.state).toBe("half_open");
    ns.storagePuts.length = 0;
    await send("/report", { policy: policy(90_000), ok: 0, fail: 0 }); // half-open, thresholds changed
    expect(ns.storagePuts).toEqual(["policy"]);
    // Evicted: built again over its storage; the probe's isolate died; the alarm at the lease's expiry.
    const rebuilt = new BreakerStateObject(ns.state(), {}, clock);
    await clock.advance(probe.lease - clock.now());
    await rebuilt.alarm();
    const stored = ns.storage.get("snapshot") as { state: string; openUntil: number };
    expect([stored.state, stored.openUntil - clock.now()]).toEqual(["open", 90_000]);
  });
});

describe("the stores check their options when they are made", () => {
  it("held: a TypeError naming the store and the option, for each kind of mistake the guide lists", () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock).binding;
    const ns = new FakeDo(clock).binding;
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const throwing = Object.defineProperty({}, "scope", {
      enumerable: true,
      get() {
        throw new Error("getter");
      },
    });
    const cases: Array<[() => unknown, string, string]> = [
      [() => kvStore(kv, { refreshInterval: "30000" as never }), "kvStore", "refreshInterval"],
      [() => kvStore(kv, { minPublishInterval: 999 }), "kvStore", "minPublishInterval"],
      [() => kvStore(kv, { minPublishInterval: Number.POSITIVE_INFINITY }), "kvStore", "minPublishInterval"],
      [() => kvStore(kv, { writeBudget: 1.5 }), "kvStore", "writeBudget"],
      [() => kvStore(kv, { clock: { now: () => 0 } as never }), "kvStore", "clock"],
      [() => kvStore(kv, { scope: 5 as never }), "kvStore", "scope"],
      [() => kvStore(kv, { ctx: {} as never }), "kvStore", "ctx"],
      [() => kvStore(kv, { refreshIntervall: 1_000 } as never), "kvStore", "refreshIntervall"],
      [() => kvStore(kv, throwing as never), "kvStore", "scope"],
      [() => kvStore(kv, { clock: revoked.proxy as never }), "kvStore", "clock"],
      [() => durableObjectStore(ns, { flushThreshold: 2.5 }), "durableObjectStore", "flushThreshold"],
      [() => durableObjectStore(ns, { timeout: "250" as never }), "durableObjectStore", "timeout"],
      [() => durableObjectStore(ns, { policy: { failureThreshold: 0 } }), "durableObjectStore", "failureThreshold"],
      [() => durableObjectStore(ns, { policy: { failureRate: 2 } }), "durableObjectStore", "failureRate"],
      [
        () => durableObjectStore(ns, { policy: { failureTreshold: 5 } as never }),
        "durableObjectStore",
        "failureTreshold",
      ],
      [() => durableObjectStore(ns, { ctx: revoked.proxy as never }), "durableObjectStore", "ctx"],
      [() => memoryStore({ maxKeys: "10" as never }), "memoryStore", "maxKeys"],
      [() => memoryStore({ maxkeys: 10 } as never), "memoryStore", "maxkeys"],
    ];
    const named = cases.map(([make, store, option]) => {
      try {
        make();
        return `${store}.${option}: made`;
      } catch (error) {
        const message = String((error as Error).message);
        return `${store}.${option}: ${error instanceof TypeError && message.includes(store) && message.includes(option)}`;
      }
    });
    expect(named).toEqual(cases.map(([, store, option]) => `${store}.${option}: true`));
    // Within range, each is taken.
    expect(() => kvStore(kv, { minPublishInterval: 1_000, refreshInterval: 1_000, publishJitter: 0 })).not.toThrow();
    expect(() => durableObjectStore(ns, { verdictTtl: 0, policy: { failureRate: undefined } })).not.toThrow();
  });
});
