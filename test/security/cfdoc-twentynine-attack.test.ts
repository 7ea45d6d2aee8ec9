/**
 * Outside-in attack on docs/cloudflare.md end to end (session twentynine), through the `./cloudflare` entry.
 * Docs: docs/cloudflare.md ("answers `503` with `Retry-After` …, `504` on a timeout and `502` when no endpoint
 * answered otherwise, or a breaker store of your own threw, which fails the call whatever the upstream answered",
 * "binds each request's `ctx` to the store while the request runs", "The client's body goes on as a stream: the
 * layer reads at most `maxReplayBytes` of it ahead, so a small body is retried and a larger one is sent once",
 * "A route's path and the health path match whatever case a client's percent-escapes are in", "a `get()` that
 * fails or has not answered within 5 s, keeps the endpoint closed", "compared in constant time, over the token's
 * length whatever the length given", "A write KV refuses … is tried once more `minPublishInterval` later, inside
 * the same `waitUntil` … A second refusal is left to the other writers", "A hold read from KV is cut to 24 hours at
 * most after it is first read: read again it is no news, so its 24 hours do not start over at each refresh", "A
 * store keeps what it read for its last 1,000 hosts: one it forgot reads the value anew, and its 24 hours start
 * again", and the probe lease's ask that hears the caller's signal (docs/cloudflare.md "takes back at once the
 * lease of a probe that was aborted (by its caller …)").
 * How: `resilientProxy`, `kvStore`, `durableObjectStore` (./cloudflare), `TestClock` (./testing); the proxy's
 * `fetch(request, env, ctx)` with fake contexts (test/cloudflare/fake-durable-object.ts `fakeCtx`), stores of one's
 * own, a KV binding that refuses every write, the fake KV (test/cloudflare/fake-kv.ts), a Durable Object namespace
 * whose `/probe` answers late, transports that answer at once or hang until aborted.
 * Paths: upstream route, chain route (`timeout.total`), a client POST whose body is a pull stream, the health
 * endpoint (custom path with escapes, Secrets Store binding, wrong tokens of every length), `kvStore` used directly
 * (publish/peek), `durableObjectStore` behind the proxy during a half-open probe.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a store's bindContext, or its release, that throws makes the proxy answer 502):
 * 1. docs/cloudflare.md "`502` when no endpoint answered otherwise, or a breaker store of your own threw, which
 *    fails the call whatever the upstream answered". Observed: a store of one's own whose `bindContext` throws
 *    makes `proxy.fetch` reject with the store's error (nothing sent, no response, a Worker's 500): the proxy
 *    calls `layer.store?.bindContext?.(ctx)` in `fetch` (src/cloudflare/resilient-proxy.ts), outside `serve`'s
 *    `try` that turns a store's failure into `failureResponse`'s 502, and on the raw store, not the layer's
 *    `unawaitedStore` view that marks what a store throws.
 * 2. Same sentence. Observed: a store of one's own whose release (the function `bindContext` returns) throws: the
 *    upstream was called and answered 200, then `proxy.fetch` rejects with the release's error from its `finally`
 *    (src/cloudflare/resilient-proxy.ts, `release?.()`), the answer lost; neither the 200 nor a 502.
 *
 * Held (plain `it`):
 * - A client body as a pull stream of 64 × 1 KiB with `maxReplayBytes` 4 KiB, the upstream answering 503 with
 *   retries on: 6 chunks pulled (the limit, the chunk past it and the stream's own one ahead), sent once, the 503
 *   passed on with `x-resilience-*`; a body of exactly `maxReplayBytes` is retried.
 * - A chain route whose endpoint hangs until `timeout.total`: 504, none of the three headers.
 * - A custom health path with escapes answers a client's escapes in either case; `//` and a trailing slash go to the
 *   routes; a Secrets Store `get()` answering after 4.9 s opens it, and on the layer's clock.
 * - The token comparison reads the same number of characters whatever the token given (short, long, right length,
 *   right prefix): `String.prototype.charCodeAt` counted during the request.
 * - `kvStore` over a KV that refuses every write (429): exactly two attempts, `minPublishInterval` apart, inside the
 *   one `waitUntil` of the call that tripped, nothing rejected; a third never comes.
 * - `kvStore` reading a hold 48 h ahead: cut to 24 h from the first read, not restarted by refreshes 12 h later;
 *   after 1,000 other hosts were read the host is read anew and its 24 h start again.
 * - `durableObjectStore` behind the proxy: a client that aborts while the probe's lease is asked gets its rejection
 *   at once, the object's late lease is given back (`ok: null`) and the object grants the slot again; the ask's
 *   bound still ends (no timer left).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot, BreakerStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const noCtx = { waitUntil: () => {} };
const own = (over: Partial<BreakerStore>): BreakerStore =>
  ({ name: "own", publish() {}, peek: () => undefined, ...over }) as BreakerStore;
const outcome = (p: Promise<Response>) =>
  p.then(
    (res) => ({ status: res.status, error: undefined as unknown }),
    (error: unknown) => ({ status: undefined as number | undefined, error }),
  );

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a breaker store of one's own that throws while the request is bound to it", () => {
  it("1. bindContext throws: the proxy answers 502 (not a rejection)", async () => {
    let sent = 0;
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        retry: false,
        fetch: async () => {
          sent++;
          return new Response("ok");
        },
      },
      store: () =>
        own({
          bindContext: () => {
            throw new Error("bind failed");
          },
        }),
    });
    const { status, error } = await outcome(proxy.fetch(new Request("https://w.example/x"), {}, noCtx));
    expect(error).toBeUndefined();
    expect(status).toBe(502);
    expect(sent).toBe(0);
  });

  it("2. the release bindContext returned throws: the client gets an answer (502), not a rejection", async () => {
    let sent = 0;
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        retry: false,
        fetch: async () => {
          sent++;
          return new Response("generated");
        },
      },
      store: () =>
        own({
          bindContext: () => () => {
            throw new Error("release failed");
          },
        }),
    });
    const { status, error } = await outcome(proxy.fetch(new Request("https://w.example/x"), {}, noCtx));
    expect(sent).toBe(1);
    expect(error).toBeUndefined();
    expect(status).toBe(502);
  });
});

describe("held: the client's body as a stream", () => {
  const pullBody = (chunks: number, size: number) => {
    const state = { pulled: 0 };
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (state.pulled >= chunks) return controller.close();
        state.pulled++;
        controller.enqueue(new Uint8Array(size));
      },
    });
    return { state, stream };
  };
  const post = (body: ReadableStream<Uint8Array>) =>
    new Request("https://w.example/jobs", { method: "POST", body, duplex: "half" } as RequestInit);

  it("reads at most maxReplayBytes (and the chunk past it) ahead, sends a larger body once; one of the limit is retried", async () => {
    let sends = 0;
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        maxReplayBytes: 4096,
        retry: { initialDelay: 0, jitter: "none" },
        // Never reads the body it was given: what was pulled is what the layer read ahead.
        fetch: async () => {
          sends++;
          return new Response("busy", { status: 503 });
        },
      },
    });
    const large = pullBody(64, 1024);
    const res = await proxy.fetch(post(large.stream), {}, noCtx);
    expect(sends).toBe(1);
    expect(res.status).toBe(503);
    expect(res.headers.get("x-resilience-attempts")).toBe("1");
    // 4 chunks within the limit, the 5th that passes it, and the one the stream's queue pulls ahead.
    expect(large.state.pulled).toBeLessThanOrEqual(6);

    sends = 0;
    const bodies: number[] = [];
    const small = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        maxReplayBytes: 4096,
        retry: { initialDelay: 0, jitter: "none" },
        fetch: async (input, init) => {
          sends++;
          bodies.push((await new Request(input, init).arrayBuffer()).byteLength);
          return new Response("x", { status: sends < 2 ? 503 : 200 });
        },
      },
    });
    const exact = pullBody(4, 1024);
    expect((await small.fetch(post(exact.stream), {}, noCtx)).status).toBe(200);
    expect(bodies).toEqual([4096, 4096]);
  });
});

describe("held: 504 for a chain that timeout.total ended", () => {
  it("an endpoint hanging until timeout.total: 504, none of the three headers", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/",
          chain: {
            name: "c",
            endpoints: [
              { name: "p", url: "https://p.example" },
              { name: "s", url: "https://s.example" },
            ],
          },
        },
      ],
      resilience: {
        clock,
        retry: false,
        timeout: { total: 1000 },
        fetch: (_input, init) =>
          new Promise<Response>((_, reject) => {
            const signal = init?.signal;
            signal?.addEventListener("abort", () => reject(signal.reason));
          }),
      },
    });
    const pending = proxy.fetch(new Request("https://w.example/x"), {}, noCtx);
    await clock.advance(1000);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.headers.get("x-resilience-endpoint")).toBeNull();
    expect(res.headers.get("x-degradation-level")).toBeNull();
  });
});

describe("held: the health endpoint", () => {
  it("a custom path with escapes matches either case; // and a trailing slash are routed", async () => {
    const upstream: string[] = [];
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      healthPath: "/sant%C3%A9",
      resilience: {
        retry: false,
        fetch: async (input) => {
          upstream.push(new Request(input).url);
          return new Response("up");
        },
      },
    });
    for (const path of ["/sant%C3%A9", "/sant%c3%a9", "/sant%C3%a9?x=1"]) {
      const res = await proxy.fetch(new Request(`https://w.example${path}`), {}, noCtx);
      expect(await res.json()).toHaveProperty("breakers");
    }
    for (const path of ["/sant%C3%A9/", "//sant%C3%A9"]) {
      const res = await proxy.fetch(new Request(`https://w.example${path}`), {}, noCtx);
      expect(await res.text()).toBe("up");
    }
    expect(upstream).toHaveLength(2);
  });

  it("a Secrets Store get() answering after 4.9 s on the layer's clock opens it to its token", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: { clock, retry: false, fetch: async () => new Response("up") },
    });
    const env = {
      RESILIENCE_HEALTH_TOKEN: {
        get: () => new Promise<string>((resolve) => clock.setTimer(() => resolve("s3cret"), 4_900)),
      },
    };
    const ask = (token: string) =>
      proxy.fetch(
        new Request("https://w.example/__resilience/health", { headers: { authorization: `bearer   ${token}` } }),
        env,
        noCtx,
      );
    const good = ask("s3cret");
    const bad = ask("s3cre7");
    await clock.advance(4_900);
    expect((await good).status).toBe(200);
    expect((await bad).status).toBe(401);
    expect(clock.pending()).toBe(0);
  });

  it("the comparison reads as many characters whatever the token given", async () => {
    const token = "t".repeat(40);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: { retry: false, fetch: async () => new Response("up") },
    });
    const counts: number[] = [];
    for (const given of ["x", "y".repeat(4000), "u".repeat(40), `${"t".repeat(39)}u`, "t".repeat(39)]) {
      const request = new Request("https://w.example/__resilience/health", {
        headers: { authorization: `Bearer ${given}` },
      });
      const spy = vi.spyOn(String.prototype, "charCodeAt");
      const res = await proxy.fetch(request, { RESILIENCE_HEALTH_TOKEN: token }, noCtx);
      counts.push(spy.mock.calls.length);
      spy.mockRestore();
      expect(res.status).toBe(401);
    }
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBeGreaterThanOrEqual(2 * token.length);
  });
});

const openSnapshot = (at: number, until: number, gen = 1): BreakerSnapshot => ({
  v: 1,
  state: "open",
  gen,
  failures: [],
  window: null,
  lastFailureTime: at,
  openUntil: until,
  leases: [],
  successes: 0,
  reason: "5 failures in a row",
  changedAt: at,
});

describe("held: kvStore's writes and reads on a fake clock", () => {
  it("a write refused twice: two attempts minPublishInterval apart, in one waitUntil, no rejection", async () => {
    const clock = new TestClock(T0);
    const puts: number[] = [];
    const namespace: KvNamespaceLike = {
      getWithMetadata: async () => ({ value: null, metadata: null }),
      put: async () => {
        puts.push(clock.now() - T0);
        throw new Error("KV PUT failed: 429 Too Many Requests");
      },
    };
    const ctx = fakeCtx();
    const rejected: unknown[] = [];
    ctx.waitUntil = (promise: Promise<unknown>) => {
      ctx.tasks.push(promise);
      promise.catch((error: unknown) => rejected.push(error));
    };
    const store = kvStore(namespace, { ctx, clock, random: () => 0.5 });
    store.publish("h.example", openSnapshot(T0, T0 + 60_000));
    await clock.advance(30_000);
    await ctx.settle();
    expect(puts).toEqual([500, 5_500]);
    expect(ctx.tasks).toHaveLength(1);
    expect(rejected).toEqual([]);
  });

  it("a hold 48 h ahead: cut to 24 h from the first read, not restarted by refreshes; restarted once forgotten", async () => {
    const clock = new TestClock(T0);
    const kv = new FakeKv(clock, { propagation: 0 });
    kv.plant("cb:v1:default:h.example", { v: 1, s: "open", g: 3, u: T0 + 48 * HOUR, w: T0, r: "x" });
    const ctx = fakeCtx();
    const store = kvStore(kv.location(), { ctx, clock });
    const peek = async () => {
      store.peek("h.example", clock.now());
      await ctx.settle();
      return store.peek("h.example", clock.now())?.openUntil;
    };
    expect(await peek()).toBe(T0 + 24 * HOUR);
    await clock.advance(12 * HOUR);
    expect(await peek()).toBe(T0 + 24 * HOUR);
    await clock.advance(HOUR);
    expect(await peek()).toBe(T0 + 24 * HOUR);
    for (let i = 0; i < 1_000; i++) store.peek(`other-${i}.example`, clock.now());
    await ctx.settle();
    expect(await peek()).toBe(T0 + 13 * HOUR + 24 * HOUR);
  });
});

describe("held: durableObjectStore behind the proxy, a client aborting while the probe's lease is asked", () => {
  it("the proxy rejects at once, the late lease is given back, the ask's bound ends", async () => {
    const clock = new TestClock(T0);
    const objects = new FakeNamespace(clock);
    const name = "cb:default:gen.example";
    let answerProbe: (() => void) | undefined;
    const namespace: DurableObjectNamespaceLike = {
      idFromName: (n) => objects.idFromName(n),
      get: (id) => {
        const stub = objects.get(id);
        return {
          fetch: async (input: string, init?: RequestInit) => {
            if (new URL(input).pathname === "/probe" && answerProbe === undefined) {
              await new Promise<void>((resolve) => (answerProbe = resolve));
            }
            return stub.fetch(input, init);
          },
        };
      },
    };
    const up = { status: 503 };
    const ctx = fakeCtx();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://gen.example" }],
      store: () => durableObjectStore(namespace, { clock }),
      resilience: {
        clock,
        retry: false,
        breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, probeTimeout: 30_000 },
        fetch: async () => new Response(null, { status: up.status }),
      },
    });
    const trip = await clock.run(proxy.fetch(new Request("https://w.example/x"), {}, ctx));
    expect(trip.status).toBe(503);
    await clock.run(ctx.settle());
    await clock.advance(1_000);
    up.status = 200;
    const client = new AbortController();
    const pending = outcome(proxy.fetch(new Request("https://w.example/x", { signal: client.signal }), {}, ctx));
    await clock.advance(50);
    expect(answerProbe).toBeDefined();
    const reason = new Error("client left");
    client.abort(reason);
    const { error } = await pending;
    expect(error).toBe(reason);
    answerProbe?.();
    await clock.advance(0);
    await ctx.settle();
    const reports = objects.requests.filter((r) => r.path === "/report" && r.name === name);
    expect(reports.some((r) => (r.body.probe as { ok?: unknown } | undefined)?.ok === null)).toBe(true);
    // The slot is free again: the object grants it to the next ask.
    const again = await objects.object(name).post("/probe", { policy: objects.requests[0]?.body.policy });
    expect(((await again.json()) as { lease: number | null }).lease).not.toBeNull();
    await clock.advance(250);
    expect(clock.pending()).toBe(0);
  });
});
