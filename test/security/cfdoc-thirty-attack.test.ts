/**
 * Outside-in attack on the Worker proxy and its stores after session thirty's changes.
 * Docs: docs/cloudflare.md (the store table; "binds each request's `ctx` to the store while the request
 * runs"; "kvStore writes only on open, close and probe results … inside ctx.waitUntil"; "Reads happen in the
 * background … no request ever waits for KV"; "writes its storage on transitions and when the leases it has
 * out change … never for batched counts alone"; "A lease the object grants after the probe's `timeout` has
 * passed … is given back by the store as soon as the answer comes"); SECURITY.md ("The library's stores
 * cannot break or stall a request", "Memory stays bounded": "a store shared by many layers … holds a layer
 * only while it has a `store` listener"); docs/health-and-events.md (`store` events).
 * How: `resilientProxy`, `kvStore`, `durableObjectStore`, `BreakerStateObject` (…/cloudflare), `createResilience`
 * (root), `TestClock`; the fake KV and Durable Object namespace of test/cloudflare; upstreams are the layer's
 * `fetch`.
 * Paths: one-upstream route, chain route, a client abort after the proxy answered with a streaming body,
 * overlapping requests with their own `ctx`, a probe whose object answers after `timeout` (the caller waiting,
 * and the caller gone), store listeners added and removed.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour):
 * (none found)
 * Held (plain `it`):
 * - a client abort after the proxy answered, the upstream body still streaming: the transport's signal aborts
 *   and the upstream stream is cancelled (one upstream and a chain)
 * - a lease the object grants after `timeout` is given back at once (a `/report` with `ok: null`), through
 *   the request's `waitUntil`, so another probe gets the only lease; the same when the caller had aborted
 * - overlapping proxy requests: a KV write started in one goes to the `waitUntil` of both in flight
 * - a KV trip is written inside `waitUntil`, healthy calls write nothing, and a KV read that hangs never
 *   holds a request
 * - `BreakerStateObject` writes no storage for batched counts alone, and does for a lease taken and given back
 * - store events reach a layer's `store` listener once added, and stop when it goes; none is needed for the
 *   proxy to answer
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx, stateObject } from "../cloudflare/fake-durable-object.ts";
import { FakeKv } from "../cloudflare/fake-kv.ts";

const policy = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 60_000,
  probeTimeout: 30_000,
  failureRate: undefined,
  minimumCalls: 10,
} as never;

const wire = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1_000,
  halfOpenMaxCalls: 1,
  timeWindow: 60_000,
  probeTimeout: 30_000,
  failureRate: null,
  minimumCalls: 10,
};

/** A transport whose body streams until cancelled; records its signal and the cancel. */
function streamingUpstream() {
  const seen = { signals: [] as AbortSignal[], cancelled: 0, aborted: 0 };
  const fetch = async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal ?? (_input instanceof Request ? _input.signal : undefined);
    if (signal) {
      seen.signals.push(signal);
      signal.addEventListener("abort", () => seen.aborted++);
    }
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        c.enqueue(new TextEncoder().encode("first chunk"));
      },
      cancel() {
        seen.cancelled++;
      },
    });
    signal?.addEventListener("abort", () => {
      try {
        controller?.error(signal.reason);
      } catch {}
    });
    return new Response(body, { status: 200 });
  };
  return { fetch, seen };
}

describe("cfdoc: client abort after the proxy answered", () => {
  for (const kind of ["upstream", "chain"] as const) {
    it(`cancels the upstream body when the client goes (${kind} route, kv store)`, async () => {
      const clock = new TestClock(1_000_000);
      const kv = new FakeKv(clock, { propagation: 0 });
      const up = streamingUpstream();
      const route =
        kind === "upstream"
          ? { path: "/v1", upstream: "https://a.example/v1" }
          : {
              path: "/v1",
              chain: {
                name: "c",
                endpoints: [
                  { name: "a", url: "https://a.example/v1" },
                  { name: "b", url: "https://b.example/v1" },
                ],
              },
            };
      const proxy = resilientProxy<{ KV: unknown }>({
        routes: [route],
        resilience: { fetch: up.fetch, clock, timeout: { total: 60_000, attempt: 30_000 } },
        store: () => kvStore(kv.location(), { clock }),
      });
      const client = new AbortController();
      const ctx = fakeCtx();
      const res = await clock.run(
        proxy.fetch(new Request("https://w.example/v1/x", { signal: client.signal }), { KV: 1 }, ctx),
      );
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("first chunk");
      client.abort(new Error("client went"));
      await clock.advance(0);
      expect(up.seen.aborted).toBeGreaterThan(0);
      await expect(reader.read()).rejects.toBeDefined();
    });
  }

  it("cancelling the proxy's body cancels the upstream's (the runtime's disconnect)", async () => {
    const clock = new TestClock(1_000_000);
    const up = streamingUpstream();
    const ns = new FakeNamespace(clock);
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: "https://a.example/" }],
      resilience: { fetch: up.fetch, clock },
      store: () => durableObjectStore(ns, { clock }),
    });
    const res = await clock.run(proxy.fetch(new Request("https://w.example/x"), {}, fakeCtx()));
    await res.body?.cancel("gone");
    await clock.advance(0);
    expect(up.seen.cancelled).toBe(1);
  });
});

describe("cfdoc: a lease granted after the probe's timeout", () => {
  async function halfOpenObject(clock: TestClock, ns: FakeNamespace, name: string) {
    const { post } = ns.object(name);
    const now = clock.now();
    const tripped = await post("/report", { policy: wire, ok: 0, fail: 1, holdUntil: now + 1_000, reason: "x" });
    expect(((await tripped.json()) as { state: string }).state).toBe("open");
    await clock.advance(1_001);
  }

  for (const gone of [false, true]) {
    it(`is given back at once through waitUntil (caller ${gone ? "aborted" : "waiting"})`, async () => {
      const clock = new TestClock(1_000_000);
      const ns = new FakeNamespace(clock);
      const ctx = fakeCtx();
      const store = durableObjectStore(ns, { clock, timeout: 250, policy, ctx });
      await halfOpenObject(clock, ns, "cb:default:h");
      // The object answers 400 ms late, granting the lease.
      ns.answer = async (request) => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, 400));
        const entry = ns.object("cb:default:h");
        return entry.object.fetch(request);
      };
      const caller = new AbortController();
      const asked = store.acquireProbe?.("h", clock.now(), caller.signal) as Promise<string | boolean | undefined>;
      if (gone) caller.abort();
      await clock.advance(250);
      expect(await asked).toBeUndefined();
      ns.answer = undefined;
      await clock.advance(200);
      await ctx.settle();
      const reports = ns.requests.filter((r) => r.path === "/report");
      expect(reports.at(-1)?.body.probe).toMatchObject({ ok: null });
      // The only lease is free again: a probe asked now gets it.
      const again = await clock.run(Promise.resolve(store.acquireProbe?.("h", clock.now(), undefined)));
      expect(typeof again).toBe("string");
    });
  }
});

describe("cfdoc: bindContext per request, waitUntil", () => {
  it("a KV write started in one request goes to every request in flight", async () => {
    const clock = new TestClock(1_000_000);
    const kv = new FakeKv(clock, { propagation: 0 });
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes("slow")) {
        await gate;
        return new Response("ok");
      }
      return new Response("boom", { status: 500 });
    };
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/slow", upstream: "https://slow.example/" },
        { path: "/bad", upstream: "https://bad.example/" },
      ],
      resilience: { fetch, clock, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 } },
      store: () => kvStore(kv.location(), { clock, random: () => 0 }),
    });
    const ctxSlow = fakeCtx();
    const ctxBad = fakeCtx();
    const slow = proxy.fetch(new Request("https://w.example/slow"), {}, ctxSlow);
    await clock.advance(0);
    const bad = await clock.run(proxy.fetch(new Request("https://w.example/bad"), {}, ctxBad));
    expect(bad.status).toBe(500);
    expect(ctxBad.tasks.length).toBeGreaterThan(0);
    // The write of the trip went to the slow request too, still in flight.
    const shared = ctxBad.tasks.filter((t) => ctxSlow.tasks.includes(t));
    expect(shared.length).toBeGreaterThan(0);
    release?.();
    await clock.run(slow);
    await clock.advance(2_000);
    await ctxBad.settle();
    expect(kv.attempts.some((a) => a.state === "open")).toBe(true);
  });

  it("healthy calls write nothing to KV, and a hanging KV read never holds a request", async () => {
    const clock = new TestClock(1_000_000);
    const kv = new FakeKv(clock, { propagation: 0 });
    kv.readDelay = 3_600_000;
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: "https://a.example/" }],
      resilience: { fetch: async () => new Response("ok"), clock },
      store: () => kvStore(kv.location(), { clock }),
    });
    for (let i = 0; i < 5; i++) {
      const ctx = fakeCtx();
      const pending = proxy.fetch(new Request("https://w.example/x"), {}, ctx);
      let done = false;
      void pending.then(() => {
        done = true;
      });
      for (let j = 0; j < 50 && !done; j++) await Promise.resolve();
      await new Promise((r) => setImmediate(r));
      expect(done).toBe(true);
      expect((await pending).status).toBe(200);
    }
    expect(kv.attempts).toHaveLength(0);
  });
});

describe("cfdoc: what the object writes", () => {
  it("writes no storage for batched counts alone, and does for a lease taken and given back", async () => {
    const clock = new TestClock(1_000_000);
    const { post, storage } = stateObject(clock);
    await post("/report", { policy: { ...wire, failureThreshold: 5 }, ok: 3, fail: 2 });
    expect(storage.puts).toHaveLength(0);
    await post("/report", { policy: wire, ok: 0, fail: 1, holdUntil: clock.now() + 1_000, reason: "x" });
    const afterTrip = storage.puts.length;
    expect(afterTrip).toBeGreaterThan(0);
    await clock.advance(1_001);
    const probe = (await (await post("/probe", { policy: wire })).json()) as { lease: number; gen: number };
    expect(typeof probe.lease).toBe("number");
    const afterLease = storage.puts.length;
    expect(afterLease).toBeGreaterThan(afterTrip);
    await post("/report", { policy: wire, ok: 0, fail: 0, probe: { lease: probe.lease, gen: probe.gen, ok: null } });
    expect(storage.puts.length).toBeGreaterThan(afterLease);
  });
});

describe("cfdoc: store events on demand", () => {
  it("a layer hears a kvStore's events while it has a store listener, and not after", async () => {
    const clock = new TestClock(1_000_000);
    const kv = new FakeKv(clock, { propagation: 0 });
    const store = kvStore(kv.location(), { clock });
    const layer = createResilience({ store, clock, fetch: async () => new Response("ok") });
    const events: StoreEvent[] = [];
    const off = layer.on("store", (e) => events.push(e));
    kv.failNextReads(1);
    await clock.run(layer.fetch("https://a.example/x"));
    await clock.advance(10);
    expect(events.some((e) => e.operation === "read" && e.outcome === "failed")).toBe(true);
    off();
    const before = events.length;
    kv.failNextReads(1);
    await clock.run(layer.fetch("https://b.example/x"));
    await clock.advance(10);
    expect(events.length).toBe(before);
  });
});
