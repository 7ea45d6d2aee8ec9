import { runInNewContext } from "node:vm";
/**
 * Outside-in checks of the public TYPES against the RUNTIME: for every entry,
 * event, snapshot, option, error and generic policy, what the declarations
 * promise (fields, optionality, null vs undefined, value exports) is held
 * against what a user's call actually gets. Runtime checks are `it`s; type
 * checks are `expectTypeOf` and `@ts-expect-error` lines, verified by
 * `tsc -p tsconfig.test.json`. A defect found is an `it.fails("DEFECT: …")`
 * (runtime) or a passing `it` documenting a type-level defect, its failing
 * type assertion kept in a comment block marked DEFECT. Public entries only;
 * a stub `fetch` and a `TestClock`: nothing sleeps for real.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import * as cloudflareEntry from "../../src/cloudflare/index.ts";
import { kvStore } from "../../src/cloudflare/index.ts";
import * as degradationEntry from "../../src/degradation/index.ts";
import { type DegradationOptions, defaultLevels, degradation } from "../../src/degradation/index.ts";
import * as fallbackEntry from "../../src/fallback/index.ts";
import { type FallbackChainOptions, type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import * as rootEntry from "../../src/index.ts";
import {
  type BreakerEvent,
  type BreakerHealth,
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  createResilience,
  type DebugInfo,
  type DegradationEvent,
  type ErrorRecord,
  type FallbackEvent,
  FallbackExhaustedError,
  type FetchLike,
  getResilienceInfo,
  type HealthSnapshot,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  memoryStore,
  type RedirectEvent,
  type ReplayEvent,
  type RequestEvent,
  type Resilience,
  type ResilienceEvents,
  type ResilienceInfo,
  type ResilienceOptions,
  type RetryEvent,
  RetryExhaustedError,
  type StoreEvent,
  TimeoutError,
} from "../../src/index.ts";
import * as kyEntry from "../../src/ky/index.ts";
import { createClient } from "../../src/ky/index.ts";
import * as policiesEntry from "../../src/policies/index.ts";
import {
  Bulkhead,
  CircuitBreaker,
  FallbackChain,
  RetryBudget,
  type RetryBudgetSnapshot,
  retry,
} from "../../src/policies/index.ts";
import * as testingClockEntry from "../../src/testing/clock.ts";
import * as testingEntry from "../../src/testing/index.ts";
import { TestClock } from "../../src/testing/index.ts";

// ---------------------------------------------------------------- helpers

type Handler = (url: string, init: RequestInit | undefined) => Response | Promise<Response>;

/** A stub transport: `handler` answers; a handler that never answers still honours the signal, as fetch does. */
function stub(handler: Handler): FetchLike {
  return (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Response>((resolve, reject) => {
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      Promise.resolve()
        .then(() => handler(url, init))
        .then(resolve, reject);
    });
  };
}

/** Never answers (until aborted). */
const never = (): Promise<Response> => new Promise<Response>(() => {});

/** Every event of a layer, by name, in order. */
function listen(resilience: Resilience): { [K in keyof ResilienceEvents]: ResilienceEvents[K][] } {
  const seen = {
    retry: [],
    request: [],
    breaker: [],
    fallback: [],
    degradation: [],
    replay: [],
    redirect: [],
    store: [],
  } as { [K in keyof ResilienceEvents]: ResilienceEvents[K][] };
  for (const name of Object.keys(seen) as (keyof ResilienceEvents)[]) {
    resilience.on(name, (event) => (seen[name] as unknown[]).push(event));
  }
  return seen;
}

/** Sorted own keys. */
const keys = (value: object): string[] => Object.keys(value).sort();
const sorted = (list: readonly string[]): string[] => [...list].sort();

/** The rejection of `promise`, settled on `clock`. */
async function rejection(clock: TestClock, promise: Promise<unknown>): Promise<unknown> {
  try {
    await clock.run(promise);
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const isNumberOrNull = (v: unknown): boolean => v === null || typeof v === "number";
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === "string";

// ---------------------------------------------------------------- 1. entry surfaces

describe("entry surfaces: runtime value exports are exactly the declared ones", () => {
  it("root", () => {
    const names = [
      "BulkheadRejectedError",
      "CircuitOpenError",
      "ConfigError",
      "FallbackExhaustedError",
      "ResilienceError",
      "RetryExhaustedError",
      "TimeoutError",
      "createResilience",
      "getResilienceInfo",
      "isBulkheadRejectedError",
      "isCircuitOpenError",
      "isConfigError",
      "isFallbackExhaustedError",
      "isResilienceError",
      "isRetryExhaustedError",
      "isTimeoutError",
      "memoryStore",
    ] as const;
    expectTypeOf<keyof typeof rootEntry>().toEqualTypeOf<(typeof names)[number]>();
    expect(keys(rootEntry)).toEqual(sorted(names));
  });

  it("./fallback and ./degradation", () => {
    expectTypeOf<keyof typeof fallbackEntry>().toEqualTypeOf<"fallback">();
    expect(keys(fallbackEntry)).toEqual(["fallback"]);
    expectTypeOf<keyof typeof degradationEntry>().toEqualTypeOf<"defaultLevels" | "degradation">();
    expect(keys(degradationEntry)).toEqual(["defaultLevels", "degradation"]);
  });

  it("./policies", () => {
    const names = [
      "Bulkhead",
      "CircuitBreaker",
      "FallbackChain",
      "LEVEL_NAMES",
      "RetryBudget",
      "adjustParameters",
      "backoffDelay",
      "defaultLevels",
      "exponentialDelay",
      "initialBreakerState",
      "initialLevelState",
      "nextLevel",
      "retry",
      "systemClock",
      "transition",
    ] as const;
    expectTypeOf<keyof typeof policiesEntry>().toEqualTypeOf<(typeof names)[number]>();
    expect(keys(policiesEntry)).toEqual(sorted(names));
  });

  it("./ky and ./cloudflare", () => {
    expectTypeOf<keyof typeof kyEntry>().toEqualTypeOf<"createClient">();
    expect(keys(kyEntry)).toEqual(["createClient"]);
    const names = ["BreakerStateObject", "durableObjectStore", "failureResponse", "kvStore", "resilientProxy"] as const;
    expectTypeOf<keyof typeof cloudflareEntry>().toEqualTypeOf<(typeof names)[number]>();
    expect(keys(cloudflareEntry)).toEqual(sorted(names));
  });

  it("./testing and ./testing/clock", () => {
    const names = [
      "TestClock",
      "corsPreflight",
      "flaky",
      "hang",
      "json",
      "latency",
      "malformedJson",
      "networkError",
      "outage",
      "recordEvents",
      "seededRandom",
      "sequence",
      "status",
      "stream",
      "upstream",
    ] as const;
    expectTypeOf<keyof typeof testingEntry>().toEqualTypeOf<(typeof names)[number]>();
    expect(keys(testingEntry)).toEqual(sorted(names));
    expectTypeOf<keyof typeof testingClockEntry>().toEqualTypeOf<"TestClock" | "seededRandom">();
    expect(keys(testingClockEntry)).toEqual(["TestClock", "seededRandom"]);
  });

  it("a layer has exactly the members `Resilience` declares, and the stage handles follow the stages passed", () => {
    const bare = createResilience({ fetch: stub(() => new Response("ok")) });
    const members = [
      "fetch",
      "execute",
      "breaker",
      "fallback",
      "on",
      "health",
      "debugInfo",
      "degradation",
      "analytics",
    ] as const;
    expectTypeOf<keyof Resilience>().toEqualTypeOf<(typeof members)[number]>();
    expect(keys(bare)).toEqual(sorted(members));
    expectTypeOf(bare.fallback).toEqualTypeOf<undefined>();
    expectTypeOf(bare.degradation).toEqualTypeOf<undefined>();
    expect(bare.fallback).toBeUndefined();
    expect(bare.degradation).toBeUndefined();

    const staged = createResilience({
      fetch: stub(() => new Response("ok")),
      fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.test/v1" }] }]),
      degradation: degradation(),
    });
    expectTypeOf(staged.fallback).not.toEqualTypeOf<undefined>();
    expect(typeof staged.fallback.chain).toBe("function");
    expect(staged.degradation.levelName()).toBe("full");

    // Options only known by their declared type: the handles may be missing.
    const options: ResilienceOptions = {};
    const general = createResilience(options);
    expectTypeOf(general.fallback).toEqualTypeOf<fallbackEntry.FallbackChains | undefined>();
    expect(general.fallback).toBeUndefined();
  });
});

// ---------------------------------------------------------------- 2. event payloads

describe("event payloads: the fields emitted are exactly the fields declared", () => {
  const retryKeys = ["key", "url", "attempt", "delay", "reason", "retryAfter"] as const;
  const requestKeys = ["key", "url", "method", "status", "error", "attempts", "durationMs", "outcome"] as const;
  const breakerKeys = ["key", "from", "to", "reason", "gen", "openUntil"] as const;
  const fallbackKeys = ["chain", "from", "reason", "next"] as const;

  it("retry: every declared field, typed as declared (backoff and Retry-After)", async () => {
    expectTypeOf<(typeof retryKeys)[number]>().toEqualTypeOf<keyof RetryEvent>();
    const clock = new TestClock(1_000);
    let n = 0;
    const resilience = createResilience({
      clock,
      random: () => 0.5,
      fetch: stub(() =>
        ++n === 1
          ? new Response("busy", { status: 503 })
          : n === 2
            ? new Response("slow", { status: 429, headers: { "retry-after": "2" } })
            : new Response("ok"),
      ),
    });
    const seen = listen(resilience);
    await clock.run(resilience.fetch("https://a.test/x?key=secret"));
    expect(seen.retry).toHaveLength(2);
    for (const event of seen.retry) {
      expect(keys(event)).toEqual(sorted(retryKeys));
      expect(event).toMatchObject({ key: "a.test", url: "https://a.test/x" });
      expect(typeof event.attempt).toBe("number");
      expect(typeof event.delay).toBe("number");
      expect(typeof event.reason).toBe("string");
      expect(typeof event.retryAfter).toBe("boolean");
    }
    expect(seen.retry.map((e) => [e.attempt, e.reason, e.retryAfter])).toEqual([
      [1, "status 503", false],
      [2, "status 429", true],
    ]);
    expect(seen.retry[1]?.delay).toBe(2_000);
  });

  it("request: the same eight fields on a response, an error and an abort; status/error undefined, not null", async () => {
    expectTypeOf<(typeof requestKeys)[number]>().toEqualTypeOf<keyof RequestEvent>();
    expectTypeOf<RequestEvent["status"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<RequestEvent["error"]>().toEqualTypeOf<string | undefined>();
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      random: () => 0.5,
      fetch: stub((url) => {
        if (url.includes("down")) throw new TypeError("fetch failed");
        if (url.includes("slow")) return new Response("busy", { status: 503 });
        return new Response("ok");
      }),
    });
    const seen = listen(resilience);
    await clock.run(resilience.fetch("https://a.test/ok", { method: "POST", body: "x" }));
    await rejection(clock, resilience.fetch("https://b.test/down"));
    const controller = new AbortController();
    const aborted = resilience.fetch("https://c.test/slow", { signal: controller.signal });
    aborted.catch(() => {});
    await clock.waitForTimers(1);
    controller.abort(new Error("stop"));
    await rejection(clock, aborted);
    expect(seen.request.map((e) => e.outcome)).toEqual(["response", "error", "aborted"]);
    for (const event of seen.request) {
      expect(keys(event)).toEqual(sorted(requestKeys));
      expect(typeof event.attempts).toBe("number");
      expect(typeof event.durationMs).toBe("number");
      expect(typeof event.method).toBe("string");
    }
    const [ok, failed, stopped] = seen.request;
    expect(ok).toMatchObject({ status: 200, error: undefined, method: "POST", attempts: 1 });
    expect(failed).toMatchObject({ status: undefined, error: "RetryExhaustedError", attempts: 3 });
    expect(stopped).toMatchObject({ status: undefined, error: "Error", attempts: 1 });
  });

  it("breaker: opened and probed back, every field as declared (openUntil null once closed)", async () => {
    expectTypeOf<(typeof breakerKeys)[number]>().toEqualTypeOf<keyof BreakerEvent>();
    expectTypeOf<BreakerEvent["reason"]>().toEqualTypeOf<string | null>();
    expectTypeOf<BreakerEvent["openUntil"]>().toEqualTypeOf<number | null>();
    const clock = new TestClock(1_000);
    let up = false;
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: 100 },
      fetch: stub(() => new Response("x", { status: up ? 200 : 503 })),
    });
    const seen = listen(resilience);
    await clock.run(resilience.fetch("https://a.test/"));
    await clock.advance(100);
    up = true;
    await clock.run(resilience.fetch("https://a.test/"));
    expect(seen.breaker.map((e) => [e.from, e.to])).toEqual([
      ["closed", "open"],
      ["open", "half_open"],
      ["half_open", "closed"],
    ]);
    for (const event of seen.breaker) {
      expect(keys(event)).toEqual(sorted(breakerKeys));
      expect(event.key).toBe("a.test");
      expect(typeof event.gen).toBe("number");
      expect(isStringOrNull(event.reason)).toBe(true);
      expect(isNumberOrNull(event.openUntil)).toBe(true);
    }
    expect(seen.breaker[0]?.openUntil).toBe(1_100);
    expect(seen.breaker[2]?.openUntil).toBeNull();
  });

  it("fallback: a chain passing over a failing and an open endpoint; `next` present (undefined at the end)", async () => {
    expectTypeOf<(typeof fallbackKeys)[number]>().toEqualTypeOf<keyof FallbackEvent>();
    expectTypeOf<FallbackEvent["next"]>().toEqualTypeOf<string | undefined>();
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: stub(() => new Response("x", { status: 503 })),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.test/v1" },
            { name: "s", url: "https://s.test/v1" },
          ],
        },
      ]),
    });
    const seen = listen(resilience);
    await clock.run(resilience.fetch("https://p.test/v1/x"));
    expect(isFallbackExhaustedError(await rejection(clock, resilience.fetch("https://p.test/v1/x")))).toBe(true);
    expect(seen.fallback.map((e) => [e.from, e.reason, e.next])).toEqual([
      ["p", "status 503", "s"],
      ["s", "status 503", undefined],
      ["p", "circuit open", "s"],
      ["s", "circuit open", undefined],
    ]);
    for (const event of seen.fallback) {
      expect(keys(event)).toEqual(sorted(fallbackKeys));
      expect(event.chain).toBe("c");
    }
  });

  it("degradation, replay and redirect: exactly their declared fields", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      redirects: "library",
      maxReplayBytes: 4,
      fetch: stub((url) =>
        url.includes("/old")
          ? new Response(null, { status: 302, headers: { location: "https://b.test/new?token=1" } })
          : new Response("ok"),
      ),
      degradation: degradation(),
    });
    const seen = listen(resilience);
    resilience.degradation.degrade("queue full");
    await clock.run(resilience.fetch("https://a.test/put?k=1", { method: "PUT", body: "more than four bytes" }));
    await clock.run(
      resilience.fetch("https://a.test/old?k=1", { headers: { authorization: "Bearer x", "x-api-key": "k" } }),
    );

    expectTypeOf<keyof DegradationEvent>().toEqualTypeOf<"from" | "to" | "percentage" | "reason">();
    expect(seen.degradation).toEqual([{ from: "full", to: "high", percentage: 80, reason: "queue full" }]);

    expectTypeOf<keyof ReplayEvent>().toEqualTypeOf<"url" | "bytes" | "limit">();
    expect(seen.replay).toEqual([{ url: "https://a.test/put", bytes: 20, limit: 4 }]);

    expectTypeOf<keyof RedirectEvent>().toEqualTypeOf<"from" | "to" | "status" | "crossOrigin" | "dropped">();
    expect(seen.redirect).toHaveLength(1);
    expect(keys(seen.redirect[0] as object)).toEqual(["crossOrigin", "dropped", "from", "status", "to"]);
    expect(seen.redirect[0]).toMatchObject({
      from: "https://a.test/old",
      to: "https://b.test/new",
      status: 302,
      crossOrigin: true,
    });
    expect(seen.redirect[0]?.dropped.sort()).toEqual(["authorization", "x-api-key"]);
  });

  it("store: a shared store's events carry the declared fields (`detail` a string when present)", async () => {
    const clock = new TestClock(1_000);
    const namespace: cloudflareEntry.KvNamespaceLike = {
      getWithMetadata: async () => {
        throw new Error("kv down");
      },
      put: async () => {},
    };
    const store = kvStore(namespace, { clock });
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: stub(() => new Response("x", { status: 503 })),
    });
    const seen = listen(resilience);
    await clock.run(resilience.fetch("https://k.test/"));
    await clock.advance(5_000);
    expect(seen.store.length).toBeGreaterThan(0);
    expectTypeOf<keyof StoreEvent>().toEqualTypeOf<"store" | "key" | "operation" | "outcome" | "detail">();
    for (const event of seen.store) {
      expect(event.store).toBe("kv");
      expect(event.key).toBe("k.test");
      expect(["read", "write", "report", "probe", "validate", "budget", "waitUntil"]).toContain(event.operation);
      expect(["ok", "skipped", "failed", "timeout", "rejected"]).toContain(event.outcome);
      for (const key of Object.keys(event)) expect(["store", "key", "operation", "outcome", "detail"]).toContain(key);
      if ("detail" in event) expect(typeof event.detail).toBe("string");
    }
  });

  it("on(): the listener's parameter is the event of that name; an unknown name is refused by both sides", () => {
    const resilience = createResilience({ fetch: stub(() => new Response("ok")) });
    resilience.on("retry", (event) => expectTypeOf(event).toEqualTypeOf<RetryEvent>());
    resilience.on("store", (event) => expectTypeOf(event).toEqualTypeOf<StoreEvent>());
    expect(() =>
      // @ts-expect-error not an event name
      resilience.on("retries", () => {}),
    ).toThrow(TypeError);
    const off = resilience.on("request", () => {});
    expectTypeOf(off).toEqualTypeOf<() => void>();
    expect(off()).toBeUndefined();
  });
});

// ---------------------------------------------------------------- 3. health() and debugInfo()

const healthKeys = [
  "time",
  "status",
  "errorRate",
  "degradationLevel",
  "breakers",
  "budget",
  "fallback",
  "retry",
] as const;
const breakerHealthKeys = [
  "state",
  "failureCount",
  "consecutiveFailures",
  "failureRate",
  "lastError",
  "reason",
  "lastFailureTime",
  "openUntil",
  "gen",
] as const;

/** Checks one BreakerHealth against its declared field types. */
function checkBreakerHealth(b: BreakerHealth, bulkhead: boolean): void {
  expect(keys(b)).toEqual(sorted([...breakerHealthKeys, ...(bulkhead ? ["active", "queued"] : [])]));
  expect(["closed", "open", "half_open"]).toContain(b.state);
  expect(typeof b.failureCount).toBe("number");
  expect(typeof b.consecutiveFailures).toBe("number");
  expect(isNumberOrNull(b.failureRate)).toBe(true);
  expect(isStringOrNull(b.lastError)).toBe(true);
  expect(isStringOrNull(b.reason)).toBe(true);
  expect(isNumberOrNull(b.lastFailureTime)).toBe(true);
  expect(isNumberOrNull(b.openUntil)).toBe(true);
  expect(typeof b.gen).toBe("number");
  if (bulkhead) {
    expect(typeof b.active).toBe("number");
    expect(typeof b.queued).toBe("number");
  }
}

describe("health() and debugInfo(): the snapshot matches HealthSnapshot / DebugInfo exactly", () => {
  it("bare layer (no breakers, no budget, no stages): empty records and nulls, no field missing", () => {
    expectTypeOf<keyof HealthSnapshot>().toEqualTypeOf<(typeof healthKeys)[number]>();
    const resilience = createResilience({ breaker: false, budget: false, fetch: stub(() => new Response("ok")) });
    const health = resilience.health();
    expect(keys(health)).toEqual(sorted(healthKeys));
    expect(health).toMatchObject({
      status: "healthy",
      errorRate: 0,
      degradationLevel: "full",
      breakers: {},
      budget: null,
      fallback: {},
      retry: { maxAttempts: 3, initialDelay: 1000, maxDelay: 60000, jitter: "full" },
    });
    expect(keys(health.retry)).toEqual(["initialDelay", "jitter", "maxAttempts", "maxDelay"]);
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
  });

  it("open, closed and bulkheaded breakers: every BreakerHealth field, active/queued only with a bulkhead", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      bulkhead: { maxConcurrent: 1 },
      fetch: stub((url) =>
        url.includes("hang") ? never() : new Response("x", { status: url.includes("bad") ? 503 : 200 }),
      ),
    });
    await clock.run(resilience.fetch("https://bad.test/"));
    await clock.run(resilience.fetch("https://good.test/"));
    const controller = new AbortController();
    const held = resilience.fetch("https://hang.test/", { signal: controller.signal });
    held.catch(() => {});
    await clock.advance(0);
    resilience.breaker("gpu", { failureThreshold: 1 });
    const { breakers, status } = resilience.health();
    expect(status).toBe("unhealthy");
    for (const key of ["bad.test", "good.test", "hang.test"]) checkBreakerHealth(breakers[key] as BreakerHealth, true);
    checkBreakerHealth(breakers.gpu as BreakerHealth, false);
    expect(breakers["bad.test"]).toMatchObject({ state: "open", lastError: "status 503", openUntil: 31_000 });
    expect(breakers["good.test"]).toMatchObject({ state: "closed", lastError: null, openUntil: null });
    expect(breakers["hang.test"]).toMatchObject({ active: 1, queued: 0 });
    // Without a rate sample, failureRate is null (never undefined).
    expect(breakers.gpu?.failureRate).toBeNull();
    controller.abort();
    await rejection(clock, held);
  });

  it("budget, chains, degradation: each sub-object has its declared fields", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      fetch: stub(() => new Response("ok")),
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: "https://p.test/v1" }] }]),
      degradation: degradation(),
    });
    resilience.fallback.chain("generic");
    await clock.run(resilience.fetch("https://p.test/v1/x"));
    const health = resilience.health();
    const budgetKeys = ["tokens", "ratio", "minPerSecond", "retriesAllowed", "retriesDenied"] as const;
    expectTypeOf<keyof RetryBudgetSnapshot>().toEqualTypeOf<(typeof budgetKeys)[number]>();
    expect(keys(health.budget as object)).toEqual(sorted(budgetKeys));
    expect(keys(health.fallback)).toEqual(["c", "generic"]);
    const chain = health.fallback.c;
    expect(keys(chain as object)).toEqual(["fallbacks", "lastSuccessfulFallback", "overallSuccessRate"]);
    expect(chain?.lastSuccessfulFallback).toBeNull();
    expect(keys(chain?.fallbacks.p as object)).toEqual(["calls", "meanLatencyMs", "successRate", "successes"]);
    expect(health.fallback.generic).toEqual({ lastSuccessfulFallback: null, overallSuccessRate: 0, fallbacks: {} });
    expect(health.degradationLevel).toBe("full");
  });

  it("debugInfo() bare: degradation and store null, options.breaker null when off, timeout keys present", () => {
    const debugKeys = [
      ...healthKeys,
      "totals",
      "recentErrors",
      "store",
      "breakerCount",
      "degradation",
      "options",
    ] as const;
    expectTypeOf<keyof DebugInfo>().toEqualTypeOf<(typeof debugKeys)[number]>();
    const resilience = createResilience({
      breaker: false,
      redirects: "platform",
      fetch: stub(() => new Response("ok")),
    });
    const info = resilience.debugInfo();
    expect(keys(info)).toEqual(sorted(debugKeys));
    expect(info).toMatchObject({
      totals: { calls: 0, failures: 0 },
      recentErrors: [],
      store: null,
      breakerCount: 0,
      degradation: null,
      options: { breaker: null, redirects: "platform" },
    });
    expect(keys(info.options)).toEqual(["breaker", "redirects", "timeout"]);
    expect(keys(info.options.timeout)).toEqual(["attempt", "total"]);
    expect(info.options.timeout).toEqual({ attempt: undefined, total: undefined });
  });

  it("debugInfo() full: store name, breaker numbers, degradation report with its window, ErrorRecord fields", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      retry: false,
      store: memoryStore(),
      timeout: { attempt: 10 },
      fetch: stub(() => new Response("x", { status: 503 })),
      degradation: degradation(),
    });
    await clock.run(resilience.fetch("https://a.test/x?k=1"));
    const info = resilience.debugInfo();
    expect(info.store).toBe("memory");
    expect(info.breakerCount).toBe(1);
    const numbers = info.options.breaker as Record<string, number>;
    for (const value of Object.values(numbers)) expect(typeof value).toBe("number");
    expect(numbers).toMatchObject({ failureThreshold: 12, failureRate: 0.5, maxHosts: 1000 });
    expect(info.options.timeout).toEqual({ attempt: 10, total: undefined });
    const report = info.degradation;
    expect(keys(report as object)).toEqual(["name", "percentage", "pinned", "reason", "since", "window"]);
    expect(keys(report?.window as object)).toEqual(["errorRate", "p95", "samples"]);
    const errorKeys = ["time", "key", "url", "status", "error", "durationMs"] as const;
    expectTypeOf<keyof ErrorRecord>().toEqualTypeOf<(typeof errorKeys)[number]>();
    expect(info.recentErrors).toHaveLength(1);
    expect(keys(info.recentErrors[0] as object)).toEqual(sorted(errorKeys));
    expect(info.recentErrors[0]).toMatchObject({
      key: "a.test",
      url: "https://a.test/x",
      status: 503,
      error: undefined,
    });
  });
});

// ---------------------------------------------------------------- 4. options

describe("options: every typed shape is accepted, and the refusals match the types and docs", () => {
  it("a value of every typed ResilienceOptions field passes createResilience", () => {
    const clock = new TestClock();
    const all: Required<ResilienceOptions> = {
      retry: {
        maxAttempts: 2,
        initialDelay: 10,
        maxDelay: 100,
        exponentialBase: 3,
        jitter: "decorrelated",
        retryOn: { statuses: [503], methods: ["get"], error: () => true },
        maxRetryAfter: 0,
        idempotencyKey: true,
      },
      budget: { ratio: 0, minPerSecond: 0 },
      timeout: { attempt: 1, total: 2 },
      breaker: {
        failureThreshold: 1,
        successThreshold: 1,
        timeout: 0,
        halfOpenMaxCalls: 1,
        timeWindow: 1,
        probeTimeout: 1,
        isFailure: () => true,
        failureRate: 1,
        minimumCalls: 1,
        key: (url) => url.hostname,
        maxHosts: 1,
      },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      store: memoryStore({ maxKeys: 1 }),
      fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.test" }] }]),
      degradation: degradation({}),
      crossOriginHeaders: ["x-trace"],
      redirects: "platform",
      maxReplayBytes: 0,
      fetch: stub(() => new Response("ok")),
      clock,
      random: () => 0,
    };
    expect(() => createResilience(all)).not.toThrow();
    // The `false` forms.
    expect(() => createResilience({ retry: false, budget: false, breaker: false })).not.toThrow();
  });

  it("every typed FallbackChainOptions / FallbackEndpoint field passes fallback()", () => {
    const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (value: unknown) => ({ value }) } };
    const chain: Required<FallbackChainOptions> = {
      name: "c",
      order: "adaptive",
      hedge: { delay: 0 },
      endpoints: [
        {
          name: "a",
          url: "https://a.test/v1",
          expectedQuality: 0,
          headers: { authorization: "x" },
          transform: (req) => ({ ...req, body: req.body }),
          validate: schema,
        },
        { name: "b", respond: () => new Response("cached"), expectedQuality: 1 },
      ],
    };
    expect(() => fallback([chain])).not.toThrow();
    expect(fallback([chain]).chains).toEqual(["c"]);
  });

  it("every typed DegradationOptions field (each ParamLocation shape) passes degradation()", () => {
    const all: Required<DegradationOptions> = {
      levels: { medium: { maxSteps: null, features: [], modelStep: 0, percentage: 0 } },
      triggers: { errorRate: 1, responseTime: 1, memoryUsage: 0, cpuUsage: 0 },
      rules: [
        {
          match: "https://a.test",
          params: { quality: "q", resolution: { body: "p.r" }, steps: { query: "s" }, model: { header: "x-m" } },
        },
        { params: {} },
      ],
      resolutions: ["720p"],
      sizeMultiple: 1,
      models: [["a"]],
      window: 1,
      minSamples: 1,
      stepInterval: 0,
      restoreAfter: 0,
      levelHeader: "x-level",
      browserSignals: false,
    };
    expect(() => degradation(all)).not.toThrow();
    const resilience = createResilience({ degradation: degradation(all) });
    expect(() => resilience.degradation.configureTriggers({ errorRate: 0.5 })).not.toThrow();
    expect(() => resilience.degradation.configureTriggers({ errorRate: 2 })).toThrow(ConfigError);
  });

  // Was a type defect, fixed: an endpoint with neither or both of `url` and `respond` type-checked; the runtime refuses it.
  it("an endpoint with neither or both of `url` and `respond` is refused by the types and the runtime", () => {
    // docs/fallback.md and FallbackEndpoint's own doc: "An endpoint has either `url` or `respond`".
    // @ts-expect-error neither url nor respond
    const neither: FallbackEndpoint = { name: "a" };
    // @ts-expect-error both url and respond
    const both: FallbackEndpoint = { name: "a", url: "https://a.test", respond: () => new Response() };
    for (const endpoint of [neither, both]) {
      let thrown: unknown;
      try {
        fallback([{ name: "c", endpoints: [{ name: "p", url: "https://p.test" }, endpoint] }]);
      } catch (error) {
        thrown = error;
      }
      expect(isConfigError(thrown) && thrown.path).toBe("fallback.0.endpoints");
    }
    // Either one alone type-checks, with the common fields.
    const byUrl: FallbackEndpoint = { name: "u", url: "https://u.test", headers: { "x-key": "k" } };
    const byRespond: FallbackEndpoint = { name: "r", respond: () => new Response("cached"), expectedQuality: 0.5 };
    expect(() => fallback([{ name: "c", endpoints: [byUrl, byRespond] }])).not.toThrow();
  });

  // Was a type defect, fixed: under exactOptionalPropertyTypes (the package's own setting) an explicit
  // `undefined` did not type-check, though the runtime takes it and docs/options.md promises it.
  it("`undefined` option values type-check under exactOptionalPropertyTypes and keep the defaults", () => {
    const maybe = (n: number | undefined) => n;
    const resilience = createResilience({
      retry: { maxAttempts: undefined, jitter: undefined },
      timeout: { attempt: maybe(undefined) },
      breaker: { failureThreshold: undefined },
      fetch: stub(() => new Response("ok")),
      fallback:
        Math.random() > 2 ? fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.test" }] }]) : undefined,
      degradation: undefined,
    });
    expect(resilience.health().retry).toMatchObject({ maxAttempts: 3, jitter: "full" });
    expect(resilience.debugInfo().options.breaker?.failureThreshold).toBe(12);
  });

  // Was a type defect, fixed: readonly lists (`as const` configuration) did not type-check, though nothing writes to them.
  it("readonly lists (`as const` configuration) type-check and work", () => {
    const headers = ["x-trace"] as const;
    const chains = [{ name: "c", endpoints: [{ name: "a", url: "https://a.test/v1" }] }] as const;
    const resolutions = ["720p", "480p"] as const;
    const models = [["a", "b"]] as const;
    expect(() => createResilience({ crossOriginHeaders: headers })).not.toThrow();
    expect(() => fallback(chains)).not.toThrow();
    expect(() => degradation({ resolutions, models })).not.toThrow();
  });

  it("bulkhead with `breaker: false`: the types allow it, the runtime refuses it with a ConfigError at `bulkhead`", () => {
    let thrown: unknown;
    try {
      createResilience({ breaker: false, bulkhead: { maxConcurrent: 1 } });
    } catch (error) {
      thrown = error;
    }
    expect(isConfigError(thrown) && thrown.path).toBe("bulkhead");
  });

  it("ky: `retry` and `fetch` are refused by both the types and the runtime; the client's transport is the layer", async () => {
    const clock = new TestClock();
    for (const key of ["retry", "fetch"] as const) {
      let thrown: unknown;
      try {
        if (key === "retry")
          // @ts-expect-error ky's retry is not an option of createClient
          createClient({ retry: 2 });
        // @ts-expect-error ky's fetch is not an option of createClient
        else createClient({ fetch: globalThis.fetch });
      } catch (error) {
        thrown = error;
      }
      expect(isConfigError(thrown) && thrown.path).toBe(key);
    }
    const resilience = createResilience({ clock, fetch: stub(() => new Response('{"a":1}')) });
    const api = createClient({ resilience, prefix: "https://a.test/v1" });
    const response = await clock.run(api.get("items"));
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "a.test", attempts: 1 });
    // Options instead of a layer are accepted too.
    expect(() => createClient({ resilience: { retry: false, fetch: stub(() => new Response()) } })).not.toThrow();
  });
});

// ---------------------------------------------------------------- 5. errors

describe("errors: typed fields set on every path that raises them; guards narrow", () => {
  it("TimeoutError, attempt phase: phase, timeout and attempts as typed and documented", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, random: () => 0, timeout: { attempt: 50 }, fetch: stub(never) });
    const error = await rejection(clock, resilience.fetch("https://a.test/"));
    expect(isTimeoutError(error)).toBe(true);
    if (!isTimeoutError(error)) return;
    expectTypeOf(error).toEqualTypeOf<TimeoutError>();
    expectTypeOf(error.phase).toEqualTypeOf<"attempt" | "total">();
    expect(error).toBeInstanceOf(TimeoutError);
    expect([error.phase, error.timeout, error.attempts]).toEqual(["attempt", 50, 3]);
  });

  it("TimeoutError, total phase: attempts counts what was sent before the deadline", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, timeout: { total: 100 }, fetch: stub(never) });
    const error = await rejection(clock, resilience.fetch("https://a.test/"));
    expect(isTimeoutError(error) && [error.phase, error.timeout, error.attempts]).toEqual(["total", 100, 1]);
  });

  it("RetryExhaustedError on a plain call: attempts and cause", async () => {
    const clock = new TestClock();
    const cause = new TypeError("fetch failed");
    const resilience = createResilience({
      clock,
      fetch: stub(() => {
        throw cause;
      }),
    });
    const error = await rejection(clock, resilience.fetch("https://a.test/"));
    expect(isRetryExhaustedError(error)).toBe(true);
    if (!isRetryExhaustedError(error)) return;
    expectTypeOf(error.endpoint).toEqualTypeOf<string | undefined>();
    expect(error.attempts).toBe(3);
    expect(error.cause).toBe(cause);
  });

  // Was a defect, fixed: no path set the typed `endpoint`. A plain call's is now its host; a chain's per-endpoint
  // errors are each endpoint's own (docs/retry.md: "`errors` maps endpoint to its error").
  it("RetryExhaustedError.endpoint is the call's host on a plain call", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: { maxAttempts: 2 },
      fetch: stub(() => {
        throw new TypeError("fetch failed");
      }),
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: "https://p.test/v1" }] }]),
    });
    const plain = await rejection(clock, resilience.fetch("https://a.test/"));
    const chained = await rejection(clock, resilience.fetch("https://p.test/v1/x"));
    const perEndpoint = isFallbackExhaustedError(chained) ? chained.errors.p : undefined;
    // Like ResilienceInfo.endpoint: "its name in a fallback chain, else the host".
    expect(isRetryExhaustedError(plain) && plain.endpoint).toBe("a.test");
    expect(perEndpoint).toBeInstanceOf(TypeError);
  });

  it("CircuitOpenError: key is the host and retryAt the breaker's openUntil", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 500 },
      fetch: stub(() => new Response("x", { status: 503 })),
    });
    await clock.run(resilience.fetch("https://a.test/"));
    const error = await rejection(clock, resilience.fetch("https://a.test/"));
    expect(isCircuitOpenError(error)).toBe(true);
    if (!isCircuitOpenError(error)) return;
    expectTypeOf(error.retryAt).toEqualTypeOf<number>();
    expect([error.key, error.retryAt]).toEqual(["a.test", resilience.health().breakers["a.test"]?.openUntil]);
  });

  it("FallbackExhaustedError: chain, errors per endpoint (an open one's CircuitOpenError with retryAt), cause the last", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: stub(() => {
        throw new TypeError("fetch failed");
      }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.test/v1" },
            { name: "s", url: "https://s.test/v1" },
          ],
        },
      ]),
    });
    const first = await rejection(clock, resilience.fetch("https://p.test/v1/x"));
    expect(isFallbackExhaustedError(first)).toBe(true);
    if (!isFallbackExhaustedError(first)) return;
    expectTypeOf(first.errors).toEqualTypeOf<Readonly<Record<string, unknown>>>();
    expect(first.chain).toBe("c");
    expect(Object.keys(first.errors)).toEqual(["p", "s"]);
    expect(first.cause).toBe(first.errors.s);
    const second = await rejection(clock, resilience.fetch("https://p.test/v1/x"));
    const skipped = isFallbackExhaustedError(second) ? second.errors.p : undefined;
    expect(isCircuitOpenError(skipped) && [skipped.key, skipped.retryAt]).toEqual(["p.test", 31_000]);
  });

  it("BulkheadRejectedError: key is the host, and the layer's health shows the occupancy", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, bulkhead: { maxConcurrent: 1 }, fetch: stub(never) });
    const controller = new AbortController();
    const held = resilience.fetch("https://a.test/", { signal: controller.signal });
    held.catch(() => {});
    await clock.advance(0);
    const error = await rejection(clock, resilience.fetch("https://a.test/"));
    expect(isBulkheadRejectedError(error) && error.key).toBe("a.test");
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    controller.abort();
    await rejection(clock, held);
  });

  it("ConfigError.path names the field in createResilience, fallback, degradation, execute, breaker(name) and retry", async () => {
    const pathOf = (run: () => unknown): string | undefined => {
      try {
        run();
      } catch (error) {
        return isConfigError(error) ? error.path : `not a ConfigError: ${String(error)}`;
      }
      return undefined;
    };
    const resilience = createResilience({ fetch: stub(() => new Response()) });
    expect(pathOf(() => createResilience({ retry: { maxAttempts: 0 } }))).toBe("retry.maxAttempts");
    expect(pathOf(() => fallback([{ name: "c", endpoints: [{ name: "a", url: "ftp://a" }] }]))).toBe(
      "fallback.0.endpoints.0.url",
    );
    expect(pathOf(() => degradation({ levels: { medium: { maxSteps: 0 } } }))).toBe(
      "degradation.levels.medium.maxSteps",
    );
    // Changed in the thirty-third session: execute rejects with it (it threw at once), as retry(fn) does.
    const executed = resilience.execute(() => 1, { retry: { maxAttempts: 0 } }).catch((error: unknown) => error);
    expect(isConfigError(await executed) && ((await executed) as ConfigError).path).toBe("execute.retry.maxAttempts");
    expect(pathOf(() => resilience.breaker("gpu", { failureThreshold: 0 }))).toBe('breaker("gpu").failureThreshold');
    const retried = retry(() => 1, { maxAttempts: 0 }).catch((error: unknown) => error);
    expect(isConfigError(await retried) && ((await retried) as ConfigError).path).toBe("retry.maxAttempts");
  });

  it("execute(): RetryExhaustedError with attempts; an open named breaker's CircuitOpenError keyed by its name", async () => {
    const clock = new TestClock(1_000);
    const resilience = createResilience({ clock, random: () => 0 });
    const exhausted = await rejection(
      clock,
      resilience.execute(() => {
        throw new Error("x");
      }),
    );
    expect(isRetryExhaustedError(exhausted) && exhausted.attempts).toBe(3);
    const breaker = resilience.breaker("gpu", { failureThreshold: 1, timeout: 100 });
    await rejection(
      clock,
      resilience.execute(
        () => {
          throw new Error("x");
        },
        { breaker: "gpu" },
      ),
    );
    const open = await rejection(
      clock,
      resilience.execute(() => 1, { breaker: "gpu" }),
    );
    expect(isCircuitOpenError(open) && [open.key, open.retryAt]).toEqual(["gpu", breaker.retryAt()]);
    const answered = await clock.run(resilience.execute(async () => 1, { breaker: "gpu", fallback: () => 2 }));
    expectTypeOf(answered).toEqualTypeOf<number>();
    expect(answered).toBe(2);
  });

  it("isTimeoutError refuses a platform DOMException named TimeoutError; isResilienceError accepts every class", () => {
    expect(isTimeoutError(new DOMException("t", "TimeoutError"))).toBe(false);
    for (const error of [
      new ConfigError("a", "b"),
      new CircuitOpenError("k", 0),
      new RetryExhaustedError(1, undefined),
      new TimeoutError("total", 1),
      new FallbackExhaustedError("c", {}),
      new BulkheadRejectedError("k"),
    ]) {
      expect(isResilienceError(error)).toBe(true);
    }
  });

  // Was a defect, fixed: a plain object named like a subclass passed its guard (so `path: string`) while
  // isResilienceError rejected it; and isResilienceError's own name check required this realm's Error.
  it("the name guards take an error of any realm by its name, and no plain object", () => {
    const foreign: unknown = { name: "ConfigError", message: "m" };
    if (isConfigError(foreign)) expectTypeOf(foreign.path).toEqualTypeOf<string>();
    expect([isConfigError(foreign), isResilienceError(foreign)]).toEqual([false, false]);
    const otherRealm: unknown = runInNewContext(
      'Object.assign(new Error("m"), { name: "ConfigError", path: "retry.maxAttempts" })',
    );
    expect(otherRealm instanceof Error).toBe(false);
    expect([isConfigError(otherRealm), isResilienceError(otherRealm)]).toEqual([true, true]);
    // Since the fifty-first session a name is not enough: the fields its class sets are asked for too (an app's
    // own `CircuitOpenError` was taken for ours).
    const fields: Record<string, string> = {
      CircuitOpenError: '{ key: "k", retryAt: 1 }',
      RetryExhaustedError: "{ attempts: 2 }",
      FallbackExhaustedError: '{ chain: "c", errors: {} }',
      BulkheadRejectedError: '{ key: "k" }',
    };
    for (const [name, own] of Object.entries(fields)) {
      expect(isResilienceError({ name })).toBe(false);
      const bare = runInNewContext(`Object.assign(new Error("m"), { name: ${JSON.stringify(name)} })`);
      const full = runInNewContext(`Object.assign(new Error("m"), ${own}, { name: ${JSON.stringify(name)} })`);
      expect([isResilienceError(bare), isResilienceError(full)]).toEqual([false, true]);
    }
    expect([
      isCircuitOpenError({ name: "CircuitOpenError" }),
      isBulkheadRejectedError({ name: "BulkheadRejectedError" }),
    ]).toEqual([false, false]);
  });
});

// ---------------------------------------------------------------- 6. getResilienceInfo

describe("getResilienceInfo(response)", () => {
  it("returns ResilienceInfo on every path that resolves (host, fallback, respond, last rejected), undefined otherwise", async () => {
    expectTypeOf(getResilienceInfo).returns.toEqualTypeOf<ResilienceInfo | undefined>();
    const infoKeys = ["attempts", "endpoint", "fromFallback", "degradationLevel", "durationMs"] as const;
    expectTypeOf<keyof ResilienceInfo>().toEqualTypeOf<(typeof infoKeys)[number]>();
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: stub((url) => new Response("x", { status: url.includes("down") ? 503 : 200 })),
      degradation: degradation(),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://p.test/down" },
            { name: "s", url: "https://s.test/v1" },
          ],
        },
        {
          name: "d",
          endpoints: [
            { name: "p", url: "https://q.test/down" },
            { name: "cache", respond: () => new Response("c") },
          ],
        },
        {
          name: "e",
          endpoints: [
            { name: "p", url: "https://r.test/down" },
            { name: "s", url: "https://t.test/down" },
          ],
        },
      ]),
    });
    resilience.degradation.setLevel("low");
    const host = getResilienceInfo(await clock.run(resilience.fetch("https://a.test/")));
    const fell = getResilienceInfo(await clock.run(resilience.fetch("https://p.test/down/x")));
    const cached = getResilienceInfo(await clock.run(resilience.fetch("https://q.test/down/x")));
    const rejected = getResilienceInfo(await clock.run(resilience.fetch("https://r.test/down/x")));
    for (const info of [host, fell, cached, rejected]) {
      expect(keys(info as object)).toEqual(sorted(infoKeys));
      expect(info?.degradationLevel).toBe("low");
    }
    expect([host?.endpoint, host?.fromFallback, host?.attempts]).toEqual(["a.test", false, 1]);
    expect([fell?.endpoint, fell?.fromFallback, fell?.attempts]).toEqual(["s", true, 2]);
    expect([cached?.endpoint, cached?.fromFallback]).toEqual(["cache", true]);
    expect([rejected?.endpoint, rejected?.fromFallback]).toEqual(["s", true]);
    expect(getResilienceInfo(new Response("x"))).toBeUndefined();
  });
});

// ---------------------------------------------------------------- 7. generic policies

describe("generic policies: typed signatures against behaviour", () => {
  it("retry(fn): Promise<T>, context and onRetry as typed, RetryExhaustedError with attempts and cause", async () => {
    const clock = new TestClock();
    const contexts: unknown[] = [];
    const retries: unknown[] = [];
    const value = await clock.run(
      retry(
        (context) => {
          contexts.push(context);
          if (context.attempt < 2) throw new Error("once");
          return "done" as const;
        },
        { clock, random: () => 0, onRetry: (event) => retries.push(event) },
      ),
    );
    expectTypeOf(value).toEqualTypeOf<"done">();
    expect(value).toBe("done");
    expect(contexts).toEqual([
      { attempt: 1, signal: undefined },
      { attempt: 2, signal: undefined },
    ]);
    expect(retries).toHaveLength(1);
    expect(keys(retries[0] as object)).toEqual(["attempt", "delay", "error"]);
    const cause = new Error("always");
    const error = await rejection(
      clock,
      retry(
        () => {
          throw cause;
        },
        { clock, maxAttempts: 2 },
      ),
    );
    expect(isRetryExhaustedError(error) && [error.attempts, error.cause]).toEqual([2, cause]);
  });

  // Was a defect, fixed: retry(fn) took the HTTP-only options in its type and ignored them (and any unknown key)
  // at runtime. They are out of its type now, and any key it does not know is refused.
  it("retry(fn, options) refuses what is not its option (the HTTP-only ones, a typo); execute() checks the HTTP ones", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    // RetryOptions for execute; not RetryCallOptions any more (hence the casts below).
    const bad = [
      { maxRetryAfter: -1 },
      { retryOn: { statuses: [0] } },
      { retryOn: { methods: [""] } },
      { maxRetryAfter: Number.NaN },
    ];
    const viaExecute: string[] = [];
    const viaRetry: string[] = [];
    for (const options of bad) {
      const refused = await clock.run(
        Promise.resolve()
          .then(() => resilience.execute(() => 1, { retry: options }))
          .then(
            () => "accepted",
            (e: unknown) => (isConfigError(e) ? e.path : String(e)),
          ),
      );
      viaExecute.push(refused);
      viaRetry.push(
        await clock.run(
          retry(() => 1, options as never).then(
            () => "accepted",
            (e: unknown) => (isConfigError(e) ? e.message : String(e)),
          ),
        ),
      );
    }
    expect(viaExecute).toEqual([
      "execute.retry.maxRetryAfter",
      "execute.retry.retryOn.statuses.0",
      "execute.retry.retryOn.methods.0",
      "execute.retry.maxRetryAfter",
    ]);
    expect(viaRetry).toEqual([
      'retry: unknown option "maxRetryAfter"',
      'retry.retryOn: unknown option "statuses"',
      'retry.retryOn: unknown option "methods"',
      'retry: unknown option "maxRetryAfter"',
    ]);
    await expect(retry(() => 1, { maxAtempts: 5 } as never)).rejects.toThrow('retry: unknown option "maxAtempts"');
  });

  it("CircuitBreaker: execute<T> resolves T, refuses with CircuitOpenError(key, retryAt), toJSON is a BreakerSnapshot", async () => {
    const clock = new TestClock(1_000);
    const breaker = new CircuitBreaker(
      "k",
      {
        failureThreshold: 1,
        successThreshold: 1,
        timeout: 10,
        halfOpenMaxCalls: 1,
        timeWindow: 100,
        probeTimeout: 100,
        failureRate: undefined,
        minimumCalls: 1,
      },
      clock,
    );
    const value = await breaker.execute(async () => 42);
    expectTypeOf(value).toEqualTypeOf<number>();
    await breaker.execute(() => Promise.reject(new Error("x"))).catch(() => {});
    expectTypeOf(breaker.state).toEqualTypeOf<"closed" | "open" | "half_open">();
    expect(breaker.state).toBe("open");
    const error = await breaker.execute(() => 1).catch((e: unknown) => e);
    expect(isCircuitOpenError(error) && [error.key, error.retryAt]).toEqual(["k", 1_010]);
    const snapshot = breaker.toJSON();
    expect(keys(snapshot)).toEqual(
      sorted([
        "v",
        "state",
        "gen",
        "failures",
        "window",
        "lastFailureTime",
        "openUntil",
        "leases",
        "successes",
        "reason",
        "changedAt",
        "trip",
      ]),
    );
    expect(snapshot.v).toBe(1);
  });

  it("Bulkhead: acquire returns a release function or its promise, a full queue rejects with BulkheadRejectedError(key)", async () => {
    const bulkhead = new Bulkhead("k", 1, 0);
    const first = bulkhead.acquire();
    expectTypeOf(first).toEqualTypeOf<Promise<() => void> | (() => void)>();
    expect(typeof first).toBe("function");
    const error = await Promise.resolve(bulkhead.acquire()).catch((e: unknown) => e);
    expect(isBulkheadRejectedError(error) && error.key).toBe("k");
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 0]);
    (await first)();
    expect(bulkhead.active).toBe(0);
  });

  it("RetryBudget: tryRetry boolean, snapshot exactly RetryBudgetSnapshot", () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, new TestClock());
    expect([budget.tryRetry(), budget.tryRetry()]).toEqual([true, false]);
    expect(budget.snapshot()).toEqual({ tokens: 0, ratio: 0.1, minPerSecond: 1, retriesAllowed: 1, retriesDenied: 1 });
  });

  it("FallbackChain<I, O>: execute(input) resolves O, statistics() is ChainStatistics, exhaustion is FallbackExhaustedError", async () => {
    // On a test clock: the latencies below are exact, whatever the machine's load.
    const chain = new FallbackChain<number, string>("n", { clock: new TestClock() });
    chain
      .add(
        () => {
          throw new Error("a");
        },
        { name: "a" },
      )
      .add(async (input, context) => `${input}:${context.name}`, { name: "b", expectedQuality: 0.5 });
    const value = await chain.execute(3);
    expectTypeOf(value).toEqualTypeOf<string>();
    expect(value).toBe("3:b");
    expect(chain.statistics()).toEqual({
      lastSuccessfulFallback: "b",
      overallSuccessRate: 1,
      fallbacks: {
        a: { calls: 1, successes: 0, successRate: 0, meanLatencyMs: 0 },
        b: { calls: 1, successes: 1, successRate: 1, meanLatencyMs: 0 },
      },
    });
    const lone = new FallbackChain<number, string>("m").add(
      () => {
        throw new Error("x");
      },
      { name: "a" },
    );
    const error = await lone.execute(1).catch((e: unknown) => e);
    expect(isFallbackExhaustedError(error) && [error.chain, Object.keys(error.errors)]).toEqual(["m", ["a"]]);
  });

  // Was a defect, fixed: execute on a configured chain failed on internal TypeErrors, wrapped in a FallbackExhaustedError.
  it("resilience.fallback.chain(<configured name>).execute(request) throws a TypeError that says the chain runs through resilience.fetch", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      fetch: stub(() => new Response("ok")),
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: "https://p.test/v1" }] }]),
    });
    // FallbackChains: "A chain configured in fallback(…) is returned with its
    // HTTP endpoints (its input is the caller's request)".
    const chain = resilience.fallback.chain<Request, Response>("c");
    const result = await clock.run(chain.execute(new Request("https://p.test/v1/x")).catch((e: unknown) => e));
    expect(result).toBeInstanceOf(TypeError);
    expect(String(result)).toMatch(
      /fallbackChain\("c"\)\.execute: a chain from fallback\(\[…\]\) runs through resilience\.fetch only/,
    );
    expect(chain.ordered()).toEqual(["p"]);
    // A chain of the caller's own, by another name, still runs any async work.
    const mine = resilience.fallback.chain<number, number>("mine").add((n) => n + 1, { name: "a" });
    expect(await mine.execute(1)).toBe(2);
  });

  // Was a defect, fixed: add() on a configured chain was accepted, and the entry received the layer's internal call object.
  it("add() on a configured HTTP chain throws at once: its entries would receive the layer's internal call, not a request", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: stub(() => new Response("down", { status: 503 })),
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: "https://p.test/v1" }] }]),
    });
    expect(() =>
      resilience.fallback.chain<Request, Response>("c").add(() => new Response("mine"), { name: "mine" }),
    ).toThrow(/fallbackChain\("c"\)\.add: a chain from fallback\(\[…\]\) runs through resilience\.fetch only/);
    const response = await clock.run(resilience.fetch("https://p.test/v1/x"));
    expect(response.status).toBe(503);
  });

  // Was a defect, fixed: the settings were writable in the types and not frozen, so a write changed every later layer.
  it("defaultLevels is read-only in the types and frozen to the last array: a write throws and changes no layer", () => {
    // @ts-expect-error the settings are read-only
    expect(() => (defaultLevels.medium.maxSteps = 5)).toThrow(TypeError);
    expect(() => (defaultLevels.medium.features as string[]).push("x")).toThrow(TypeError);
    const resilience = createResilience({ degradation: degradation() });
    resilience.degradation.setLevel("medium");
    expect(resilience.degradation.settings()).toMatchObject({ maxSteps: 30, features: ["core"] });
  });
});
