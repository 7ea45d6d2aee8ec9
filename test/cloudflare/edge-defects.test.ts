import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { MAX_HOLD_MS } from "../../src/core/breaker-snapshot.ts";
import { CircuitOpenError, createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeKv } from "./fake-kv.ts";

/** Defects found from outside (issue 15 items 11, 14, 15), each pinned by a test. */

const T0 = Date.parse("2026-11-28T00:00:00Z");
const throwingCtx = {
  waitUntil() {
    throw new Error("waitUntil() called after the response was sent");
  },
};

describe("a store failure never fails a call", () => {
  it("kvStore: a ctx.waitUntil that throws leaves the call alone and says so in an event", async () => {
    const clock = new TestClock(T0);
    const store = kvStore(new FakeKv(clock, { propagation: 0 }).location(), { ctx: throwingCtx, clock });
    const events: StoreEvent[] = [];
    const resilience = createResilience({ clock, store, retry: false, fetch: async () => new Response("ok") });
    resilience.on("store", (e) => events.push(e));
    const res = await resilience.fetch("https://gen.example/v1");
    expect(res.status).toBe(200);
    expect(events).toContainEqual({
      store: "kv",
      key: "gen.example",
      operation: "waitUntil",
      outcome: "failed",
      detail: "Error: waitUntil() called after the response was sent",
    });
  });

  it("durableObjectStore: the same, on its background report", async () => {
    const namespace = {
      idFromName: (name: string) => name,
      get: () => ({ fetch: async () => Response.json({ state: "closed", gen: 0, openUntil: null, reason: null }) }),
    };
    const store = durableObjectStore(namespace, { ctx: throwingCtx });
    const resilience = createResilience({ store, retry: false, fetch: async () => new Response("ok") });
    const events: StoreEvent[] = [];
    resilience.on("store", (e) => events.push(e));
    expect((await resilience.fetch("https://gen.example/v1")).status).toBe(200);
    expect(events.map((e) => [e.operation, e.outcome])).toContainEqual(["waitUntil", "failed"]);
  });
});

describe("resilientProxy routes", () => {
  const echo = async (input: RequestInfo | URL) =>
    Response.json({ url: input instanceof Request ? input.url : String(input) });
  const call = async (proxy: ReturnType<typeof resilientProxy>, path: string) =>
    proxy.fetch(new Request(`https://proxy.example${path}`), {}, { waitUntil: () => {} });

  it('treats "/" as a catch-all, joining paths with one slash', async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example/base/" }],
      resilience: { retry: false, fetch: echo },
    });
    const res = await call(proxy, "/v1/jobs?x=1");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ url: "https://api.example/base/v1/jobs?x=1" });
    expect(await (await call(proxy, "/")).json()).toEqual({ url: "https://api.example/base/" });
  });

  it("prefers the longest route, and a route with a trailing slash matches below it", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/", upstream: "https://any.example" },
        { path: "/v1/video/", upstream: "https://video.example/v2" },
      ],
      resilience: { retry: false, fetch: echo },
    });
    expect(await (await call(proxy, "/v1/video/jobs")).json()).toEqual({ url: "https://video.example/v2/jobs" });
    expect(await (await call(proxy, "/v1/text")).json()).toEqual({ url: "https://any.example/v1/text" });
  });

  it("ranks routes by their path without trailing slashes: extra slashes make no route longer", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/v1///", upstream: "https://v1.example" },
        { path: "/v1/a", upstream: "https://a.example" },
        { path: "/v2", upstream: "https://first.example" },
        { path: "/v2/", upstream: "https://second.example" },
      ],
      resilience: { retry: false, fetch: echo },
    });
    expect(await (await call(proxy, "/v1/a/x")).json()).toEqual({ url: "https://a.example/x" });
    expect(await (await call(proxy, "/v1/b")).json()).toEqual({ url: "https://v1.example/b" });
    // Two routes that match alike: the first listed.
    expect(await (await call(proxy, "/v2/x")).json()).toEqual({ url: "https://first.example/x" });
  });
});

describe("absurd holds from a shared snapshot", () => {
  const planted = (clock: TestClock, u: number) => {
    const kv = new FakeKv(clock, { propagation: 0 });
    kv.plant("cb:v1:default:gen.example", { v: 1, s: "open", g: 7, u, w: T0, r: "elsewhere" });
    return kv;
  };

  it.each([1e300, 8.64e15 + 1, Number.MAX_SAFE_INTEGER])(
    "u = %d: the next call gets a CircuitOpenError held at most 24 hours, not a RangeError",
    async (u) => {
      const clock = new TestClock(T0);
      const pending: Promise<unknown>[] = [];
      const store = kvStore(planted(clock, u).location(), { ctx: { waitUntil: (p) => void pending.push(p) }, clock });
      const resilience = createResilience({ clock, store, retry: false, fetch: async () => new Response("ok") });
      await resilience.fetch("https://gen.example/v1"); // its lookup reads the key in the background
      await Promise.all(pending.splice(0));
      const error = await resilience.fetch("https://gen.example/v1").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect((error as CircuitOpenError).retryAt).toBe(T0 + MAX_HOLD_MS);
      expect((error as CircuitOpenError).message).toBe(
        `circuit for "gen.example" is open until ${new Date(T0 + MAX_HOLD_MS).toISOString()}`,
      );
    },
  );

  it("the proxy answers 503 with a Retry-After of at most a day, not 502", async () => {
    const kv = planted(new TestClock(Date.now()), 1e300);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://gen.example" }],
      resilience: { retry: false, fetch: async () => new Response("ok") },
      store: () => kvStore(kv.location()),
    });
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    await proxy.fetch(new Request("https://proxy.example/v1/jobs"), {}, ctx);
    await Promise.all(pending.splice(0));
    const res = await proxy.fetch(new Request("https://proxy.example/v1/jobs"), {}, ctx);
    expect(res.status).toBe(503);
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(86_000);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
  });

  it("the Durable Object store clamps an absurd openUntil from the object too", async () => {
    const namespace = {
      idFromName: (name: string) => name,
      get: () => ({ fetch: async () => Response.json({ state: "open", gen: 3, openUntil: 1e300, reason: "x" }) }),
    };
    const clock = new TestClock(T0);
    const store = durableObjectStore(namespace, { clock });
    expect(await store.acquireProbe?.("gen.example", T0)).toBe(false);
    expect(store.peek("gen.example", T0)?.openUntil).toBe(T0 + MAX_HOLD_MS);
  });
});

describe("CircuitOpenError", () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1e300, 1e300, 8.64e15 + 1])("never throws for retryAt %d", (at) => {
    const error = new CircuitOpenError("host.example", at);
    expect(error.retryAt).toBe(at);
    expect(error.message).toBe(`circuit for "host.example" is open until an unrepresentable time (${at})`);
  });

  it("keeps the ISO time for any representable retryAt", () => {
    expect(new CircuitOpenError("h", 0).message).toBe('circuit for "h" is open until 1970-01-01T00:00:00.000Z');
  });
});
