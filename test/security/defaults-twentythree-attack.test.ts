/**
 * Outside-in attack on the API reference's `@default` tags and `@example` blocks.
 * Docs: the `@default` tags of BreakerOptions, RetryOptions, BudgetOptions,
 * DegradationOptions, DegradationTriggers, KvStoreOptions, ResilientProxyOptions,
 * ResilienceOptions.redirects and ClientOptions.resilience, with the same numbers in
 * docs/options.md, docs/degradation.md and docs/cloudflare.md; the `@example` blocks of
 * getResilienceInfo, degradation(), FallbackChain and createClient.
 * How: the root, ./degradation, ./policies, ./cloudflare, ./ky and ./testing entries;
 * each default checked by behaviour with the option left out (attempts counted, times
 * read on a TestClock or fake timers, KV writes recorded, proxy answers read).
 * Paths: plain `resilience.fetch`, fetch with the degradation stage, the kvStore
 * background write, the Cloudflare `resilientProxy` health route, the ky client's
 * default layer, `FallbackChain.execute`.
 *
 * Defects pinned: none found in this angle (every default probed held by behaviour,
 * and every example run held as written).
 *
 * Held (plain `it`):
 * - breaker failureThreshold 12 / timeout 30000, retry maxAttempts 3, budget 10/s:
 *   four calls of three attempts open the host, for 30 s, on `resilience.fetch`.
 * - degradation minSamples 20, errorRate 0.1, stepInterval 10000: the 20th failed call
 *   steps to `high`, the next step waits 10 s.
 * - kvStore scope "default", publishJitter 1000, TTL 60 s past openUntil.
 * - resilientProxy healthPath "/__resilience/health", healthTokenVar
 *   "RESILIENCE_HEALTH_TOKEN", even under a "/" catch-all route.
 * - redirects: "library" in Node, "platform" once `document` or `importScripts` exists.
 * - createClient(): a default layer (3 attempts) and ky's retry off.
 * - examples: getResilienceInfo's fields, degradation()'s `degrade("GPU queue full")`,
 *   FallbackChain's gpu → cpu.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { type KvNamespaceLike, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const failing = async (): Promise<Response> => new Response("x", { status: 503 });

describe("@default tags, by behaviour with the option left out", () => {
  it("breaker 12 in a row (four calls of three default attempts) opens the host for 30000 ms", async () => {
    const clock = new TestClock();
    let sent = 0;
    const r = createResilience({
      clock,
      random: () => 0.5,
      fetch: async () => {
        sent++;
        return failing();
      },
    });
    for (let call = 1; call <= 4; call++) {
      expect((await clock.run(r.fetch("https://a.example/x"))).status).toBe(503);
      expect(sent).toBe(call * 3);
    }
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    const refused = await clock.run(r.fetch("https://a.example/x")).catch((error: unknown) => error);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect((refused as { retryAt: number }).retryAt - clock.now()).toBe(30_000);
    expect(r.health().budget).toMatchObject({ retriesAllowed: 8, retriesDenied: 0, minPerSecond: 10, ratio: 0.1 });
  });

  it("degradation: the 20th failed call (minSamples) steps down, the next step waits stepInterval 10000", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock, retry: false, breaker: false, degradation: degradation(), fetch: failing });
    // A call a second: triggers are evaluated at most once a second, so each call is judged.
    const levels: string[] = [];
    for (let i = 0; i < 30; i++) {
      await r.fetch("https://a.example/x");
      levels.push(r.degradation.currentLevel().name);
      await clock.advance(1_000);
    }
    expect(levels.indexOf("high")).toBe(19);
    expect(levels.indexOf("medium") - levels.indexOf("high")).toBe(10);
  });

  it("kvStore: key cb:v1:default:<host>, written within publishJitter 1000, TTL 60 s past openUntil", async () => {
    const clock = new TestClock();
    const puts: { key: string; at: number; ttl: number; until: number }[] = [];
    const kv = {
      getWithMetadata: async () => ({ value: null, metadata: null }),
      put: async (key: string, _value: string, options: { expirationTtl: number; metadata: { u: number } }) => {
        puts.push({ key, at: clock.now(), ttl: options.expirationTtl, until: options.metadata.u });
      },
    } as unknown as KvNamespaceLike;
    const store = kvStore(kv, { clock, random: () => 0.999, ctx: { waitUntil: () => {} } });
    const r = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1 }, fetch: failing });
    await clock.run(r.fetch("https://h.example:8080/x"));
    await clock.advance(2_000);
    await flush();
    expect(puts).toHaveLength(1);
    const [put] = puts;
    expect(put?.key).toBe("cb:v1:default:h.example:8080");
    expect(put?.at).toBeLessThan(1_000);
    expect(put?.until).toBe(30_000);
    expect((put?.at ?? 0) + (put?.ttl ?? 0) * 1_000).toBeGreaterThanOrEqual(30_000 + 60_000);
  });

  it("resilientProxy: GET /__resilience/health, guarded by RESILIENCE_HEALTH_TOKEN, wins over a '/' route", async () => {
    let upstreamCalls = 0;
    const proxy = resilientProxy<{ RESILIENCE_HEALTH_TOKEN?: string }>({
      routes: [{ path: "/", upstream: "https://up.example" }],
      resilience: {
        fetch: async () => {
          upstreamCalls++;
          return new Response("up");
        },
      },
    });
    const ctx = { waitUntil: () => {} };
    const url = "https://w.example/__resilience/health";
    const open = await proxy.fetch(new Request(url), {}, ctx);
    expect(open.status).toBe(200);
    expect(((await open.json()) as { status: string }).status).toBe("healthy");
    const env = { RESILIENCE_HEALTH_TOKEN: "t0ken" };
    expect((await proxy.fetch(new Request(url), env, ctx)).status).toBe(401);
    const auth = { headers: { authorization: "Bearer t0ken" } };
    expect((await proxy.fetch(new Request(url, auth), env, ctx)).status).toBe(200);
    expect(upstreamCalls).toBe(0);
  });

  it('redirects: "library" (manual hops) in Node, "platform" where `document` or `importScripts` exists', async () => {
    const modes: unknown[] = [];
    for (const global of [undefined, "document", "importScripts"] as const) {
      if (global) vi.stubGlobal(global, global === "document" ? {} : () => {});
      const r = createResilience({
        fetch: async (_input, init) => {
          modes.push(init?.redirect);
          return new Response("ok");
        },
      });
      await r.fetch("https://a.example/x");
      vi.unstubAllGlobals();
    }
    expect(modes).toEqual(["manual", undefined, undefined]);
  });

  it("createClient(): a layer with default options (3 attempts), ky's own retry off", async () => {
    vi.useFakeTimers();
    let sent = 0;
    vi.stubGlobal("fetch", async () => {
      sent++;
      return failing();
    });
    const api = createClient({ prefix: "https://api.example/v1" });
    const status = api.get("jobs").then(
      () => 200,
      (error: { response?: Response }) => error.response?.status,
    );
    await vi.advanceTimersByTimeAsync(200_000);
    expect(await status).toBe(503);
    expect(sent).toBe(3);
  });
});

describe("@example blocks, run as written", () => {
  it("getResilienceInfo: { attempts: 2, endpoint: 'api.example', fromFallback: false, … }", async () => {
    const clock = new TestClock();
    let n = 0;
    const resilience = createResilience({
      clock,
      fetch: async () => (n++ === 0 ? failing() : new Response("ok")),
    });
    const res = await clock.run(resilience.fetch("https://api.example/v1"));
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "api.example", fromFallback: false });
  });

  it('degradation(): degrade("GPU queue full") steps one level down and rewrites the matched quality', async () => {
    const bodies: string[] = [];
    const resilience = createResilience({
      degradation: degradation({ rules: [{ match: "https://api.example/v1/images", params: { quality: "quality" } }] }),
      fetch: async (_input, init) => {
        bodies.push(String(init?.body));
        return new Response("ok");
      },
    });
    resilience.degradation.degrade("GPU queue full");
    await resilience.fetch("https://api.example/v1/images", {
      method: "POST",
      body: JSON.stringify({ quality: 1, steps: 50 }),
      headers: { "content-type": "application/json" },
    });
    expect(resilience.degradation.currentLevel()).toMatchObject({ name: "high", reason: "GPU queue full" });
    expect(bodies).toEqual(['{"quality":0.9,"steps":50}']);
  });

  it("FallbackChain: gpu fails, cpu's Blob is returned", async () => {
    const chain = new FallbackChain<Request, Blob>("thumbnail");
    chain.add(
      async () => {
        throw new Error("gpu down");
      },
      { name: "gpu", expectedQuality: 1 },
    );
    chain.add(async () => new Blob(["cpu"]), { name: "cpu", expectedQuality: 0.6 });
    const image = await chain.execute(new Request("https://x.example"));
    expect(await image.text()).toBe("cpu");
  });
});
