import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerStoreLike,
  createResilience,
  type DegradationEvent,
  getResilienceInfo,
  memoryStore,
  type StoreEvent,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const answering =
  (...statuses: number[]) =>
  async (): Promise<Response> =>
    new Response(null, { status: (statuses.length > 1 ? statuses.shift() : statuses[0]) as number });

afterEach(() => vi.unstubAllGlobals());

describe("health() status", () => {
  it("is healthy up to a 10% error rate, degraded above it, unhealthy with an open breaker", async () => {
    const clock = new TestClock(0);
    const statuses = [500, ...Array(9).fill(200), 500];
    const resilience = createResilience({ clock, retry: false, breaker: false, fetch: answering(...statuses, 200) });
    for (let i = 0; i < 10; i++) await resilience.fetch("https://a.example/");
    expect([resilience.health().errorRate, resilience.health().status]).toEqual([0.1, "healthy"]);
    await resilience.fetch("https://a.example/");
    expect(resilience.health().status).toBe("degraded");
    const tripped = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 }, fetch: answering(503) });
    await tripped.fetch("https://a.example/");
    expect(tripped.health().status).toBe("unhealthy");
    expect(createResilience().health().status).toBe("healthy");
  });
});

describe("debugInfo()", () => {
  it("lists the store, breakers, degradation window and the options in force", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      retry: false,
      store: memoryStore(),
      degradation: degradation(),
      breaker: { failureRate: 0.5, minimumCalls: 4, timeWindow: 10_000 },
      timeout: { attempt: 1_000 },
      fetch: answering(503, 200),
    });
    await resilience.fetch("https://a.example/");
    await resilience.fetch("https://a.example/");
    const info = resilience.debugInfo();
    expect(info.store).toBe("memory");
    expect(info.breakerCount).toBe(1);
    expect(info.breakers["a.example"]?.failureCount).toBe(1); // counted in the failure-rate window
    expect(info.degradation).toMatchObject({ name: "full", window: { samples: 2, errorRate: 0.5 } });
    // Every number in force, and nothing that JSON would lose (the functions).
    expect(info.options.breaker).toStrictEqual({
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 10_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 4,
      maxHosts: 1_000,
    });
    expect(info.options.timeout).toEqual({ attempt: 1_000, total: undefined });
    expect(info.totals).toEqual({ calls: 2, failures: 1 });
    const off = createResilience({ breaker: false }).debugInfo();
    expect([off.store, off.breakerCount, off.options.breaker]).toEqual([null, 0, null]);
  });
});

describe("named breakers and chains", () => {
  it("a named breaker gets the defaults even when per-host breakers are off", async () => {
    const resilience = createResilience({ breaker: false });
    const breaker = resilience.breaker("upscaler");
    // The default failureThreshold: 12 failures in a row.
    for (let i = 0; i < 11; i++) await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("closed");
    await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("open");
  });

  it("refuses an empty chain name", () => {
    const resilience = createResilience({ fallback: fallback([]) });
    expect(() => resilience.fallback.chain("")).toThrow(/fallback\.chain\(name\): expected a non-empty string, got ""/);
    expect(() => resilience.fallback.chain(5 as unknown as string)).toThrow(TypeError);
    expect(resilience.fallback.chain("c")).toBe(resilience.fallback.chain("c"));
  });
});

describe("a store's wiring", () => {
  function spyStore() {
    const configured: unknown[] = [];
    let emit: ((event: StoreEvent) => void) | undefined;
    const store: BreakerStoreLike = {
      name: "spy",
      publish: () => {},
      peek: () => undefined,
      configure: (policy) => configured.push(policy),
      connect: (listener) => {
        emit = listener;
        return () => {};
      },
    };
    return { store, configured, emit: (e: StoreEvent) => emit?.(e) };
  }

  it("hands the breaker policy to the store, and relays its events", () => {
    const spy = spyStore();
    const resilience = createResilience({ store: spy.store, breaker: { failureThreshold: 3 } });
    expect(spy.configured).toEqual([expect.objectContaining({ failureThreshold: 3 })]);
    const events: StoreEvent[] = [];
    resilience.on("store", (e) => events.push(e));
    const event = { store: "spy", key: "k", operation: "read", outcome: "failed" };
    spy.emit(event);
    expect(events).toEqual([event]);
  });

  it("hands the store the layer's clock with the policy: the instants it publishes and reads are on it", () => {
    const clocks: unknown[] = [];
    const store: BreakerStoreLike = {
      name: "clocked",
      publish: () => {},
      peek: () => undefined,
      configure: (_policy, clock) => clocks.push(clock?.now()),
    };
    createResilience({ store, clock: new TestClock(42_000) });
    createResilience({ store });
    expect(clocks[0]).toBe(42_000);
    expect(Math.abs((clocks[1] as number) - Date.now())).toBeLessThan(1_000);
  });

  it("throws what a store's `configure` throws, as it is, and makes no layer", () => {
    const breakers = readFileSync(new URL("../../docs/breakers.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(breakers).toContain(
      "a `configure` that throws makes `createResilience` throw that error as it is, and no layer is made",
    );
    const broken = new RangeError("store not ready");
    const store: BreakerStoreLike = {
      name: "broken",
      publish: () => {},
      peek: () => undefined,
      configure: () => {
        throw broken;
      },
    };
    expect(() => createResilience({ store })).toThrow(broken);
  });

  it("configures nothing when breakers are off", () => {
    const spy = spyStore();
    createResilience({ store: spy.store, breaker: false });
    expect(spy.configured).toEqual([]);
  });
});

describe("retry decisions at their boundaries", () => {
  it("sleeps through a Retry-After equal to maxRetryAfter, and holds the host open past it", async () => {
    const clock = new TestClock(0);
    const retryAfter = (s: number) => async () =>
      new Response(null, { status: 503, headers: { "retry-after": `${s}` } });
    const equal = createResilience({ clock, retry: { maxAttempts: 2, maxRetryAfter: 5_000 }, fetch: retryAfter(5) });
    await clock.run(equal.fetch("https://a.example/"));
    expect(clock.now()).toBe(5_000);
    const events: BreakerEvent[] = [];
    const over = createResilience({ clock, retry: { maxAttempts: 2, maxRetryAfter: 5_000 }, fetch: retryAfter(30) });
    over.on("breaker", (e) => events.push(e));
    await clock.run(over.fetch("https://b.example/"));
    expect(clock.now()).toBe(5_000);
    expect(events.map((e) => [e.to, e.reason])).toEqual([["open", "Retry-After 30 s on status 503"]]);
  });

  it("does not start a wait that would end exactly at the total deadline", async () => {
    const clock = new TestClock(0);
    let calls = 0;
    const resilience = createResilience({
      clock,
      timeout: { total: 1_000 },
      retry: { maxAttempts: 5, initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
      fetch: async () => {
        calls++;
        return new Response(null, { status: 503 });
      },
    });
    const res = await clock.run(resilience.fetch("https://a.example/"));
    expect([res.status, calls, clock.now()]).toEqual([503, 1, 0]);
  });

  it("stops at once when the breaker opens mid-call, without waiting out a backoff", async () => {
    const clock = new TestClock(0);
    let calls = 0;
    const resilience = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 4, initialDelay: 1_000, jitter: "none" },
      fetch: async () => {
        calls++;
        return new Response(null, { status: 500 });
      },
    });
    const res = await clock.run(resilience.fetch("https://a.example/"));
    expect([res.status, calls, clock.now()]).toEqual([500, 1, 0]);
  });
});

describe("degradation's manual controls", () => {
  it("reports a default reason for manual changes, and names what adjust() cannot take", () => {
    const resilience = createResilience({ degradation: degradation() });
    const events: DegradationEvent[] = [];
    resilience.on("degradation", (e) => events.push(e));
    resilience.degradation.degrade();
    resilience.degradation.setLevel("low");
    expect(events.map((e) => e.reason)).toEqual(["manual", "set manually"]);
    expect(() => resilience.degradation.adjust(null as never)).toThrow(/expected an object, got null/);
    expect(() => resilience.degradation.adjust(5 as never)).toThrow(/expected an object, got number/);
    expect(() => resilience.degradation.adjust([] as never)).toThrow(/expected an object, got/);
  });
});

describe("the transport", () => {
  it("says so when the runtime has no fetch and none was given", async () => {
    vi.stubGlobal("fetch", undefined);
    const resilience = createResilience({ retry: false });
    // At once, as the caller's mistake: not an attempt that failed (no RetryExhaustedError around it).
    await expect(resilience.fetch("https://a.example/")).rejects.toThrow(
      new TypeError("resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option"),
    );
  });
});

describe("a layer without the opt-in stages", () => {
  it("has no fallback or degradation handle, reports the full level and no chains, and leaves requests untouched", async () => {
    const { fetch, sent } = recordingFetch(() => new Response("ok"));
    const resilience = createResilience({ fetch });
    expect(resilience.fallback).toBeUndefined();
    expect(resilience.degradation).toBeUndefined();
    const body = JSON.stringify({ steps: 50, quality: 1 });
    const res = await resilience.fetch("https://gen.example/v1", { method: "POST", body });
    expect(sent[0]?.body).toBe(body);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
    expect(resilience.health()).toMatchObject({ degradationLevel: "full", fallback: {} });
    expect(resilience.debugInfo().degradation).toBeNull();
  });

  it("one degradation(…) stage gives each layer it joins a level of its own", () => {
    const stage = degradation();
    const a = createResilience({ degradation: stage });
    const b = createResilience({ degradation: stage });
    a.degradation.setLevel("low");
    expect(a.degradation.currentLevel().name).toBe("low");
    expect(b.degradation.currentLevel().name).toBe("full");
  });
});
