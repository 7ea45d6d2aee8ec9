/**
 * Outside-in attack on docs/recipes.md, docs/storycore-mapping.md and the README's code and claims, as a
 * newcomer would use them.
 * Docs: docs/recipes.md (the three points: "retries happen once, in the layer", the layer's 3 attempts, "a
 * POST whose attempt hung is only retried when it carries an `Idempotency-Key`", "The layer retries a POST
 * only on 429 and 503 without an idempotency key"; the table's ky row "passing `retry` is a `ConfigError`",
 * "the error itself, unwrapped", "`HTTPError` (`response.status`)"; the Hono row "open breaker → 503 +
 * `Retry-After`, timeout → 504, other → 502"; "Hono in a Worker": the incoming `signal` stops the retries,
 * `failureResponse` "judges a chain by its endpoints' errors (all circuits open: 503; all timed out: 504)";
 * "ky … with ky 2's `prefix`"), docs/storycore-mapping.md (the Names table, "Numbers kept": the five levels,
 * the parameter names the default rule reads, the trigger thresholds 0.1 / 30 s), docs/degradation.md (the
 * level table, the `medium` example, `setLevel` pins until `restore()`), docs/health-and-events.md
 * (`unhealthy` / `degraded` above 10%), README.md (quick start's chain and `getResilienceInfo` keys).
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient`
 * (./ky), `failureResponse` and `resilientProxy` (./cloudflare), `TestClock` (./testing); real servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts) and a recording transport (test/helpers/recording-fetch.ts).
 * Paths: plain call, `Request` input, fallback chain, hedged chain, a followed 307, the ky client, the
 * Worker proxy, a Worker route as the recipe writes it (inlined: the recipe imports the package by name).
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none. Every promise tried held.
 *
 * Held (plain `it`):
 * - the five levels through `resilience.fetch` with the default rule: at each level the body sent equals
 *   `degradation.adjust(body)` (quality, resolution, steps, model, features), `full` sends it untouched, on
 *   six paths (plain, `Request`, chain, ky `json`, a followed 307 — rewritten once, not twice — and a hedged
 *   chain, both endpoints); `medium` gives exactly the doc's `{ quality: 0.8, resolution: "720p", steps: 30,
 *   model: "standard" }`; each level's `percentage` is the table's;
 * - the trigger thresholds: 2 failures in 20 calls (0.1) holds `full`, 3 (0.15) steps to `high`; p95 of
 *   exactly 30 s holds, 30.001 s steps; `health()` reads `healthy` at 0.1 and `degraded` at 0.15;
 * - `setLevel` pins against a 100% error rate; `restore()` moves one up and unpins; triggers then move it;
 * - the mapping's names on one layer: `execute(fn, { breaker: "x" })` retries thrown errors (3 calls) behind
 *   `breaker("x")`, which `health().breakers.x` lists; `fallback.chain("v")` returns the same chain on a
 *   second call, `.add(fn, { name, expectedQuality })` falls over in order, `statistics()` and
 *   `health().fallback.v` agree;
 * - ky: `createClient({ retry })` is a `ConfigError` (0 and an object); a GET that stays down gets the
 *   layer's 3 attempts and `HTTPError` with `response.status` 503; the open breaker then rejects with
 *   `CircuitOpenError` itself, nothing sent; `prefix` resolves against the server;
 * - a POST without a key: only 429 and 503 are retried (3 requests), 408/425/500/502/504 sent once; a hung
 *   attempt is not retried (`TimeoutError`, `phase: "attempt"`), with `idempotencyKey: true` it is sent 3
 *   times with one key;
 * - `failureResponse`: every attempt timed out → 504; an open host breaker → 503 with `Retry-After` counting
 *   down to its reopening; a chain with every circuit open → 503, `Retry-After` of the first to reopen; a
 *   chain with one open and one timed out → 504; refused connections → 502;
 * - `resilientProxy` answers an open breaker 503 with `Retry-After` from its clock, nothing sent;
 * - a Worker route passing the incoming request's `signal`: the client's hang-up during the backoff ends the
 *   call, the upstream gets no retry;
 * - the README's quick-start chain: a POST whose primary answers 503 is retried there (4 attempts) then
 *   served by `backup`; `getResilienceInfo` gives `attempts`, `endpoint`, `fromFallback`, `degradationLevel`.
 */
import { describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isConfigError,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  type LevelName,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const api = httpUpstream();
serveDuringFile(api);

const JSON_HEADERS = { "content-type": "application/json" };
const BODY = {
  quality: 1,
  resolution: "1080p",
  steps: 50,
  model: "premium",
  features: ["core", "enhancements", "basic", "essential", "extra"],
  prompt: "a cat",
};
const LEVELS: LevelName[] = ["full", "high", "medium", "low", "minimal"];

/** A transport whose attempts hang until their signal aborts them. */
const hanging = (s: Sent): Promise<Response> =>
  new Promise((_, reject) => s.init?.signal?.addEventListener("abort", () => reject(s.init?.signal?.reason)));

describe("the five levels, through every path (storycore-mapping.md, degradation.md)", () => {
  for (const level of LEVELS) {
    it(`${level}: plain, Request, chain, ky, a followed 307 and a hedge send what adjust() gives`, async () => {
      const { fetch, sent } = recordingFetch((s) => {
        if (s.url.endsWith("/redir")) return new Response(null, { status: 307, headers: { location: "/v1/images" } });
        if (s.url.startsWith("https://h1.example")) return hanging(s);
        return new Response("ok");
      });
      const clock = new TestClock();
      const r = createResilience({
        fetch,
        clock,
        retry: { idempotencyKey: true },
        fallback: fallback([
          {
            name: "h",
            hedge: { delay: 100 },
            endpoints: [
              { name: "h1", url: "https://h1.example/v1" },
              { name: "h2", url: "https://h2.example/v1" },
            ],
          },
          {
            name: "c",
            endpoints: [
              { name: "a", url: "https://chain.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        ]),
        degradation: degradation(),
      });
      r.degradation.setLevel(level);
      const expected = level === "full" ? BODY : r.degradation.adjust(BODY);
      const body = JSON.stringify(BODY);
      const post = { method: "POST", body, headers: JSON_HEADERS };
      await r.fetch("https://gen.example/v1/images", post);
      await r.fetch(new Request("https://gen.example/v1/images", post));
      await r.fetch("https://chain.example/v1/images", post);
      await createClient({ resilience: r }).post("https://gen.example/v1/images", { json: BODY });
      await r.fetch("https://gen.example/redir", post);
      const hedged = await clock.run(r.fetch("https://h1.example/v1/images", post));
      expect(getResilienceInfo(hedged)?.endpoint).toBe("h2");
      expect(sent.map((s) => new URL(s.url).host)).toEqual([
        "gen.example",
        "gen.example",
        "chain.example",
        "gen.example",
        "gen.example",
        "gen.example",
        "h1.example",
        "h2.example",
      ]);
      for (const s of sent.filter((x) => x.body !== null)) expect(JSON.parse(s.body as string)).toEqual(expected);
      expect(sent.filter((x) => x.body !== null)).toHaveLength(8);
    });
  }

  it("the table's numbers: percentages, and the doc's `medium` example exactly, through fetch too", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch, degradation: degradation() });
    const pct: Record<string, number> = {};
    for (const level of LEVELS) {
      r.degradation.setLevel(level);
      pct[level] = r.degradation.currentLevel().percentage;
    }
    expect(pct).toEqual({ full: 100, high: 80, medium: 60, low: 40, minimal: 20 });
    r.degradation.setLevel("medium");
    const doc = { quality: 1.0, resolution: "1080p", steps: 50, model: "premium" };
    const want = { quality: 0.8, resolution: "720p", steps: 30, model: "standard" };
    expect(r.degradation.adjust(doc)).toEqual(want);
    await r.fetch("https://gen.example/v1", { method: "POST", body: JSON.stringify(doc), headers: JSON_HEADERS });
    expect(JSON.parse(sent[0]?.body as string)).toEqual(want);
    // The tiers: high keeps core and enhancements, low only basic, minimal only essential.
    const features = BODY.features;
    r.degradation.setLevel("high");
    expect(r.degradation.adjust({ features }).features).toEqual(["core", "enhancements"]);
    r.degradation.setLevel("low");
    expect(r.degradation.adjust({ features, model: "premium", steps: 50 })).toEqual({
      features: ["basic"],
      model: "basic",
      steps: 20,
    });
    r.degradation.setLevel("minimal");
    expect(r.degradation.adjust({ features, quality: 1, steps: 50 })).toEqual({
      features: ["essential"],
      quality: 0.4,
      steps: 10,
    });
  });
});

describe("the trigger thresholds (storycore-mapping.md: error rate 0.1, response time 30 s)", () => {
  async function errorRun(failures: number) {
    const clock = new TestClock();
    let n = 0;
    const r = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status: n++ < failures ? 503 : 200 }),
      degradation: degradation(),
    });
    for (let i = 0; i < 20; i++) {
      await clock.run(r.fetch("https://gen.example/v1/x"));
      await clock.advance(1100);
    }
    return { level: r.degradation.currentLevel(), health: r.health() };
  }

  it("an error rate of 0.1 holds `full`; 0.15 steps down to `high`; health follows the same 10%", async () => {
    const at = await errorRun(2);
    const above = await errorRun(3);
    expect(at.level.name).toBe("full");
    expect(at.health.errorRate).toBe(0.1);
    expect(at.health.status).toBe("healthy");
    expect(above.level.name).toBe("high");
    expect(above.level.reason).toMatch(/error rate/);
    expect(above.health.errorRate).toBe(0.15);
    expect(above.health.status).toBe("degraded");
    expect(above.health.degradationLevel).toBe("high");
  });

  async function latencyRun(ms: number): Promise<string> {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: () => new Promise((resolve) => clock.setTimer(() => resolve(new Response("ok")), ms)),
      degradation: degradation(),
    });
    for (let round = 0; round < 2; round++) {
      await clock.run(Promise.all(Array.from({ length: 20 }, () => r.fetch("https://gen.example/v1/x"))));
      await clock.advance(1100);
    }
    return r.degradation.currentLevel().name;
  }

  it("a p95 of exactly 30 s holds `full`; 30.001 s steps down to `high`", async () => {
    expect(await latencyRun(30_000)).toBe("full");
    expect(await latencyRun(30_001)).toBe("high");
  });

  it("`setLevel` pins against the triggers; `restore()` goes one up and unpins", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      breaker: false,
      fetch: async () => new Response("x", { status: 503 }),
      degradation: degradation(),
    });
    r.degradation.setLevel("medium");
    for (let i = 0; i < 30; i++) {
      await clock.run(r.fetch("https://g.example/x"));
      await clock.advance(1100);
    }
    expect(r.degradation.currentLevel()).toMatchObject({ name: "medium", pinned: true });
    r.degradation.restore();
    expect(r.degradation.currentLevel()).toMatchObject({ name: "high", pinned: false });
    for (let i = 0; i < 12; i++) {
      await clock.run(r.fetch("https://g.example/x"));
      await clock.advance(1100);
    }
    expect(r.degradation.currentLevel().name).toBe("medium");
  });
});

describe("the mapping's names on one layer (storycore-mapping.md)", () => {
  it("execute with a named breaker, a function chain, statistics and health", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    let calls = 0;
    const out = await clock.run(
      system.execute(
        async () => {
          calls++;
          if (calls < 3) throw new Error("GPU busy");
          return "ok";
        },
        { breaker: "x" },
      ),
    );
    expect(out).toBe("ok");
    expect(calls).toBe(3);
    expect(system.breaker("x").state).toBe("closed");
    expect(system.health().breakers.x).toMatchObject({ state: "closed", failureCount: 2 });

    const chain = system.fallback
      .chain<number, string>("v")
      .add(
        async () => {
          throw new Error("no");
        },
        { name: "p", expectedQuality: 1 },
      )
      .add(async (n) => `s${n}`, { name: "s", expectedQuality: 0.8 });
    expect(system.fallback.chain("v")).toBe(chain);
    expect(await chain.execute(1)).toBe("s1");
    const stats = chain.statistics();
    expect(stats).toMatchObject({
      lastSuccessfulFallback: "s",
      overallSuccessRate: 1,
      fallbacks: { p: { calls: 1, successes: 0 }, s: { calls: 1, successes: 1 } },
    });
    expect(system.health().fallback.v).toEqual(stats);
  });
});

describe("retries once, in the layer (recipes.md)", () => {
  it("ky: `retry` is a ConfigError; a dead GET gets 3 attempts and HTTPError; then CircuitOpenError itself", async () => {
    expect(isConfigError(thrown(() => createClient({ retry: 0 } as never)))).toBe(true);
    expect(isConfigError(thrown(() => createClient({ retry: { limit: 2 } } as never)))).toBe(true);
    api.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const ky = createClient({
      prefix: api.base,
      resilience: { retry: { initialDelay: 0, jitter: "none" }, breaker: { failureThreshold: 3 } },
    });
    const first = (await rejection(ky.get("x"))) as { name: string; response: Response };
    expect(first.name).toBe("HTTPError");
    expect(first.response.status).toBe(503);
    expect(api.hits.map((h) => h.path)).toEqual(["/x", "/x", "/x"]);
    const second = await rejection(ky.get("x"));
    expect(second).toBeInstanceOf(CircuitOpenError);
    expect(api.hits).toHaveLength(3);
  });

  it("a POST without a key: only 429 and 503 are retried", async () => {
    const sentFor: Record<number, number> = {};
    for (const code of [408, 425, 429, 500, 502, 503, 504]) {
      const { fetch, sent } = recordingFetch(() => new Response("x", { status: code }));
      const clock = new TestClock();
      const r = createResilience({ clock, fetch });
      const res = await clock.run(r.fetch("https://x.example/a", { method: "POST", body: "{}" }));
      expect(res.status).toBe(code);
      sentFor[code] = sent.length;
    }
    expect(sentFor).toEqual({ 408: 1, 425: 1, 429: 3, 500: 1, 502: 1, 503: 3, 504: 1 });
  });

  it("a hung POST attempt: not retried without a key; retried with one key under `idempotencyKey: true`", async () => {
    const seen: Array<{ sent: number; phase: string; keys: Array<string | null> }> = [];
    for (const idempotencyKey of [false, true]) {
      const clock = new TestClock();
      const { fetch, sent } = recordingFetch(hanging);
      const r = createResilience({ clock, fetch, timeout: { attempt: 60_000 }, retry: { idempotencyKey } });
      const error = (await rejection(
        clock.run(r.fetch("https://x.example/a", { method: "POST", body: "{}" })),
      )) as TimeoutError;
      seen.push({ sent: sent.length, phase: error.phase, keys: sent.map((s) => s.headers.get("idempotency-key")) });
    }
    expect(seen[0]).toEqual({ sent: 1, phase: "attempt", keys: [null] });
    expect(seen[1]?.sent).toBe(3);
    expect(seen[1]?.phase).toBe("attempt");
    expect(new Set(seen[1]?.keys).size).toBe(1);
    expect(seen[1]?.keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("the Worker's answers (recipes.md, Hono row and section)", () => {
  it("failureResponse: timeouts 504, open 503 + Retry-After, a chain by its endpoints, refused 502", async () => {
    const clock = new TestClock(1_000_000);
    const timedOut = createResilience({ clock, fetch: recordingFetch(hanging).fetch, timeout: { attempt: 1000 } });
    const t = await rejection(clock.run(timedOut.fetch("https://x.example/a")));
    expect(failureResponse(t, clock.now()).status).toBe(504);

    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("x", { status: 503 }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    await clock.run(r.fetch("https://plain.example/x"));
    const open = await rejection(clock.run(r.fetch("https://plain.example/x")));
    await clock.advance(5000);
    const plain = failureResponse(open, clock.now());
    expect(plain.status).toBe(503);
    expect(plain.headers.get("retry-after")).toBe("25");
    expect(await plain.json()).toEqual({ error: "upstream circuit open" });

    await clock.run(r.fetch("https://a.example/v1/x"));
    await clock.advance(3000);
    const allOpen = await rejection(clock.run(r.fetch("https://a.example/v1/x")));
    expect(allOpen).toBeInstanceOf(FallbackExhaustedError);
    const chain = failureResponse(allOpen, clock.now());
    expect(chain.status).toBe(503);
    expect(chain.headers.get("retry-after")).toBe("27");

    // One endpoint open, the other timed out: every endpoint it tried timed out, the rest open.
    const mixedClock = new TestClock();
    let n = 0;
    const mixed = createResilience({
      clock: mixedClock,
      retry: false,
      breaker: { failureThreshold: 1 },
      timeout: { attempt: 1000 },
      fetch: (input, init) =>
        n++ === 0 || String(input).includes("b.example")
          ? hanging({ init } as Sent)
          : Promise.resolve(new Response("x", { status: 503 })),
      fallback: fallback([
        {
          name: "m",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    await rejection(mixedClock.run(mixed.fetch("https://a.example/other")));
    const m = await rejection(mixedClock.run(mixed.fetch("https://a.example/v1/x")));
    expect(isFallbackExhaustedError(m)).toBe(true);
    expect(failureResponse(m, mixedClock.now()).status).toBe(504);

    const refused = createResilience({ retry: { initialDelay: 0, jitter: "none" } });
    const e = await rejection(refused.fetch(`${await refusedOrigin()}/x`));
    expect(isRetryExhaustedError(e)).toBe(true);
    expect(failureResponse(e).status).toBe(502);
  });

  it("resilientProxy: an open breaker is a 503 with Retry-After from the layer's clock, nothing sent", async () => {
    api.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const clock = new TestClock(5_000_000);
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/v1", upstream: `${api.base}/v1` }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1, timeout: 20_000 } },
    });
    const ctx = { waitUntil() {} };
    const first = await clock.run(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx));
    expect(first.status).toBe(503);
    expect(await first.text()).toBe("down");
    await clock.advance(2000);
    const second = await clock.run(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx));
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("18");
    expect(api.hits).toHaveLength(1);
  });

  it("a route passing the incoming request's signal: a client that hangs up stops the retries", async () => {
    api.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const clock = new TestClock();
    const r = createResilience({ clock, timeout: { attempt: 30_000, total: 90_000 } });
    const incoming = new AbortController();
    const call = r.fetch(`${api.base}/v1/images`, { signal: incoming.signal });
    await api.nth(1);
    await clock.advance(1);
    incoming.abort();
    const error = await rejection(clock.run(call));
    expect((error as Error).name).toBe("AbortError");
    await clock.advance(100_000);
    expect(api.hits).toHaveLength(1);
  });
});

describe("README quick start", () => {
  it("the chain: the primary's 503 retried there, then the backup; getResilienceInfo names it", async () => {
    const clock = new TestClock();
    const { fetch, sent } = recordingFetch((s) =>
      s.url.startsWith("https://gen.example") ? new Response("x", { status: 503 }) : Response.json({ ok: 1 }),
    );
    const resilience = createResilience({
      clock,
      fetch,
      retry: { maxAttempts: 4, initialDelay: 500 },
      timeout: { attempt: 30_000, total: 120_000 },
      fallback: fallback([
        {
          name: "images",
          endpoints: [
            { name: "primary", url: "https://gen.example/v1/images" },
            { name: "backup", url: "https://backup.example/v1/images", expectedQuality: 0.8 },
          ],
        },
      ]),
    });
    const res = await clock.run(
      resilience.fetch("https://gen.example/v1/images", {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ prompt: "a cat", steps: 50, resolution: "1080p" }),
      }),
    );
    expect(res.status).toBe(200);
    expect(sent.map((s) => new URL(s.url).host)).toEqual([
      "gen.example",
      "gen.example",
      "gen.example",
      "gen.example",
      "backup.example",
    ]);
    expect(getResilienceInfo(res)).toMatchObject({
      attempts: 5,
      endpoint: "backup",
      fromFallback: true,
      degradationLevel: "full",
    });
  });
});
