/**
 * Outside-in attack on docs/degradation.md (where parameters are edited: JSON body, query, header; the level
 * header; what is never touched; how a level changes) and docs/options.md (defaults, ranges, the `ConfigError`
 * naming its path), on a plain call, a `Request` input, a hedged fallback chain, a followed 307 to another origin,
 * the Worker proxy (`resilientProxy`, fake ctx `{ waitUntil() {} }`) and the ky client. How: public entries only
 * (root, `./degradation`, `./fallback`, `./cloudflare`, `./ky`, `./testing`'s TestClock); `hostFetch` records
 * each request as the platform builds it; time moves only on the TestClock. Not repeated: BOMs, bytes that are no
 * UTF-8, 64-bit seeds, a level moving while a body is read, chain selection by query (earlier attack files).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * both fixed since, so plain `it`: each value of a header sent twice is edited; a healthy evaluation with
 * `restoreAfter: 0` steps up at once. `minSamples` above the window's 256 calls is now a `ConfigError`, and
 * `crossOriginHeaders` refuses an entry that is no header name):
 * 1. docs/degradation.md: "`rules` say where they live instead (… `{ query: "q" }` or `{ header: "x-model" }`)"
 *    with "`steps` capped; `model` moved `model step` rungs down", and "A call takes the level it finds when it
 *    starts: its rewritten body, its level header and `getResilienceInfo(res).degradationLevel` all name that
 *    level" (the only exceptions listed are non-JSON, non-UTF-8 and stream bodies). A `{ header }` target the
 *    request carries twice (`x-steps: 50` + `x-steps: 50`, `x-model: premium` twice) goes out at `medium` as
 *    `x-steps: 50, 50` and `x-model: premium, premium`, uncapped and unmoved, beside `x-level: medium` and
 *    `degradationLevel: "medium"`; through the Worker proxy any client escapes the cap this way. The query target
 *    adjusts each place of a repeated parameter; the header target reads the combined `a, b` text as one value
 *    (`Number("50, 50")` is NaN, `"premium, premium"` is on no ladder) and leaves it
 *    (src/degradation/rewrite-request.ts, the `"header" in where` branch).
 * 2. docs/degradation.md: "Stepping up needs the signals to be clearly healthy (…) for a whole `restoreAfter`
 *    (60 s), one level at a time" and "a trickle of good ones lifts it". With `restoreAfter: 0` (accepted:
 *    `num>=0`), after `degrade()` a healthy call leaves the level at `high`; only a second evaluation (a second
 *    call at least a second later) lifts it: the first healthy evaluation only records `healthySince`
 *    (src/policies/degradation-machine.ts, `if (s.healthySince === null) return { ...s, healthySince: now }`), so
 *    a zero `restoreAfter` still costs one more evaluation.
 *
 * Held (plain `it`): a hedged chain sends each side the body rewritten once at the level the call started at
 * (the level moved to `minimal` meanwhile), the level header stays off the cross-origin spare; a followed 307 to
 * another origin replays the rewritten body without the level header; the Worker proxy, the level moved by its
 * triggers, rewrites a JSON body and each place of a repeated query parameter and names the level in
 * `x-degradation-level`; the ky client's JSON body, repeated `searchParams` and header target are rewritten once;
 * the error-rate trigger at exactly 0.1 (2 of 20) holds and at 0.15 steps down one level;
 * duplicate JSON keys (the last, as JSON.parse reads them), `%73teps` (read as `steps`), a 10^6-deep array beside
 * the parameter, `1e400`, a `__proto__` key and array paths are handled as written; option values at their bounds
 * (2^31, -0, fractions, Infinity, NaN, arrays for objects, getters that throw, revoked Proxies, frozen objects) are
 * accepted or refused with a `ConfigError` naming their path, on `degradation(…)` and `configureTriggers`.
 *
 * Suspicious, not pinned:
 * - `minSamples` above 256 is accepted though the window holds at most 256 calls: the error-rate and p95 triggers
 *   then never act (the doc's own numbers say so; no range is documented for `minSamples`).
 * - `crossOriginHeaders: [" x-level"]` (no header name) is accepted and silently matches nothing; `levelHeader`
 *   is checked as a token, `crossOriginHeaders` only as non-empty strings.
 * - a JSON body with a key twice (`{"steps":50,"steps":50}`) has only the last rewritten, as JSON.parse reads it;
 *   a first-wins server still reads 50.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Answer, header, hostFetch } from "../helpers/host-fetch.ts";

const ok: Answer = () => new Response("ok");

/** The comma-separated values of a header a request carried. */
const values = (text: string | undefined): string[] => (text ?? "").split(",").map((v) => v.trim());

const configPath = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return error instanceof ConfigError ? error.path : `not a ConfigError: ${String(error)}`;
  }
  return undefined;
};

const throwing = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error("boom");
    },
  });

const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};

describe("degradation rewriting on every path", () => {
  // docs/degradation.md: "`rules` say where they live instead (… `{ header: "x-model" }`)"; "`steps` capped";
  // "`model` moved `model step` rungs down each ladder"; "A call takes the level it finds when it starts: its
  // rewritten body, its level header and `getResilienceInfo(res).degradationLevel` all name that level".
  // Observed: a header target sent twice goes out `x-steps: 50, 50` / `x-model: premium, premium` at `medium`.
  it("1. a { header } target the request carries twice is capped / moved down like a single one", async () => {
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      degradation: degradation({
        levelHeader: "x-level",
        rules: [{ params: { steps: { header: "x-steps" }, model: { header: "x-model" } } }],
      }),
    });
    layer.degradation.setLevel("medium");
    const plain = await layer.fetch("https://g.test/gen", {
      headers: [
        ["x-steps", "50"],
        ["x-steps", "50"],
        ["x-model", "premium"],
        ["x-model", "premium"],
      ],
    });
    const headers = new Headers();
    headers.append("x-steps", "50");
    headers.append("x-steps", "40");
    const viaRequest = await layer.fetch(new Request("https://g.test/gen", { headers }));
    expect([plain, viaRequest].map((r) => getResilienceInfo(r)?.degradationLevel)).toEqual(["medium", "medium"]);
    expect(net.log.map((r) => header(r, "x-level"))).toEqual(["medium", "medium"]);
    for (const sent of net.log) {
      // Each value under medium's cap of 30, whatever the spelling the fix chooses ("30, 30" or "30").
      expect(values(header(sent, "x-steps")).every((v) => Number(v) <= 30)).toBe(true);
    }
    expect(values(header(net.log[0], "x-model"))).not.toContain("premium");
  });

  it("held: a hedge sends each side the body rewritten once at the call's starting level", async () => {
    const clock = new TestClock();
    const net = hostFetch({ "g.test": () => new Promise<Response>(() => {}), "s.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      clock,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: "https://g.test/c" },
            { name: "s", url: "https://s.test/c" },
          ],
        },
      ]),
      degradation: degradation({ levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const pending = layer.fetch("https://g.test/c/b", {
      method: "PUT",
      body: '{"steps":50, "quality":1.0,"seed":18446744073709551615}',
    });
    await clock.waitForTimers();
    layer.degradation.setLevel("minimal");
    await clock.advance(10);
    const res = await pending;
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "s", degradationLevel: "medium" });
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level")])).toEqual([
      ["https://g.test/c/b", '{"steps":30, "quality":0.8,"seed":18446744073709551615}', "medium"],
      ["https://s.test/c/b", '{"steps":30, "quality":0.8,"seed":18446744073709551615}', undefined],
    ]);
  });

  it("held: a followed 307 to another origin replays the rewritten body, without the level header", async () => {
    const net = hostFetch({
      "g.test": () => new Response(null, { status: 307, headers: { location: "https://o.test/x" } }),
      "o.test": ok,
    });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      degradation: degradation({ levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("low");
    const res = await layer.fetch(new Request("https://g.test/r", { method: "PUT", body: '{"model":"premium"}' }));
    expect(getResilienceInfo(res)?.degradationLevel).toBe("low");
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level")])).toEqual([
      ["https://g.test/r", '{"model":"basic"}', "low"],
      ["https://o.test/x", '{"model":"basic"}', undefined],
    ]);
  });

  it("held: the Worker proxy, its level moved by triggers, rewrites a JSON body and each repeated query place", async () => {
    const clock = new TestClock();
    let failing = true;
    const net = hostFetch({
      "g.test": () => (failing ? new Response("no", { status: 500 }) : new Response("ok")),
    });
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: "https://g.test/v1" }],
      resilience: {
        fetch: net.fetch,
        retry: false,
        clock,
        breaker: false,
        degradation: degradation({
          minSamples: 1,
          stepInterval: 0,
          triggers: { errorRate: 0 },
          browserSignals: false,
          rules: [
            { match: "https://g.test/v1/q", params: { steps: { query: "steps" } } },
            { params: { steps: "parameters.steps", model: "model" } },
          ],
        }),
      },
    });
    const ctx = { waitUntil() {} };
    await proxy.fetch(new Request("https://p.example/gen/x"), {}, ctx);
    await clock.advance(1000);
    await proxy.fetch(new Request("https://p.example/gen/x"), {}, ctx);
    failing = false; // two breaches, a second apart: medium; the clock stays, so no evaluation moves it on
    const q = await proxy.fetch(new Request("https://p.example/gen/q?steps=50&%73teps=40&steps=7&a=b%2Fc"), {}, ctx);
    const b = await proxy.fetch(
      new Request("https://p.example/gen/b", {
        method: "POST",
        body: '{"model":"premium","parameters":{"steps":50},"parameters":{"steps":45}}',
        headers: { "content-type": "application/json" },
      }),
      {},
      ctx,
    );
    expect([q.headers.get("x-degradation-level"), b.headers.get("x-degradation-level")]).toEqual(["medium", "medium"]);
    expect(net.log.slice(2).map((r) => [r.url, r.text])).toEqual([
      ["https://g.test/v1/q?steps=30&%73teps=30&steps=7&a=b%2Fc", ""],
      ["https://g.test/v1/b", '{"model":"standard","parameters":{"steps":50},"parameters":{"steps":30}}'],
    ]);
  });

  it("held: the ky client's JSON body, repeated searchParams and header target are rewritten once", async () => {
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      degradation: degradation({
        levelHeader: "x-level",
        rules: [
          { match: "https://g.test/q", params: { steps: { query: "steps" }, model: { header: "x-model" } } },
          { params: { steps: "steps", quality: "quality", features: "features" } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    const ky = createClient({ resilience: layer });
    await ky.get("https://g.test/q", {
      searchParams: [
        ["steps", "50"],
        ["steps", "7"],
      ],
      headers: { "x-model": "premium" },
    });
    const posted = await ky.post("https://g.test/b", {
      json: { steps: 50, quality: 1, features: ["core", "extra"] },
    });
    expect(getResilienceInfo(posted)?.degradationLevel).toBe("medium");
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-model"), header(r, "x-level")])).toEqual([
      ["https://g.test/q?steps=30&steps=7", "", "standard", "medium"],
      ["https://g.test/b", '{"steps":30,"quality":0.8,"features":["core"]}', undefined, "medium"],
    ]);
  });

  it("held: odd JSON (a 10^6-deep array, 1e400, __proto__, an array path) is rewritten only where a rule says", async () => {
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      degradation: degradation({
        rules: [
          { match: "https://g.test/a", params: { steps: "items.0.steps", quality: "items.length" } },
          { params: { steps: "steps", quality: "quality" } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    const deep = `{"steps":50,"deep":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}`;
    await layer.fetch("https://g.test/b", { method: "POST", body: deep });
    await layer.fetch("https://g.test/b", {
      method: "POST",
      body: '{"__proto__":{"steps":50},"steps":1e400,"quality":1e400}',
    });
    await layer.fetch("https://g.test/a", { method: "POST", body: '{"items":[{"steps":50},1,2]}' });
    expect(net.log[0]?.text).toBe(deep.replace('"steps":50', '"steps":30'));
    expect(net.log.slice(1).map((r) => r.text)).toEqual([
      '{"__proto__":{"steps":50},"steps":30,"quality":1e400}',
      '{"items":[{"steps":30},1,2]}',
    ]);
  });
});

describe("levels and triggers", () => {
  // docs/degradation.md: "Stepping up needs the signals to be clearly healthy (…) for a whole `restoreAfter`
  // (60 s), one level at a time" and "a trickle of good ones lifts it". Observed: with `restoreAfter: 0` a healthy
  // call after `degrade()` leaves `high`; only a second evaluation, a second later, lifts it.
  it("2. with restoreAfter: 0, the first clearly healthy evaluation steps the level up", async () => {
    const clock = new TestClock(1_000_000);
    const net = hostFetch({ "g.test": ok });
    const layer = createResilience({
      fetch: net.fetch,
      retry: false,
      clock,
      degradation: degradation({ restoreAfter: 0, browserSignals: false }),
    });
    const events = recordEvents(layer);
    layer.degradation.degrade("manual");
    await clock.advance(5_000);
    await layer.fetch("https://g.test/1");
    expect(layer.degradation.currentLevel().name).toBe("full");
    expect(events.of("degradation").map((e) => `${e.from}>${e.to}`)).toEqual(["full>high", "high>full"]);
  });

  it("held: the error-rate trigger at its exact threshold holds; just above it steps down", async () => {
    const clock = new TestClock(1_000_000);
    let code = 200;
    const net = hostFetch({ "g.test": () => new Response("x", { status: code }) });
    const make = () =>
      createResilience({
        fetch: net.fetch,
        retry: false,
        clock,
        breaker: false,
        degradation: degradation({ minSamples: 20, stepInterval: 0, browserSignals: false }),
      });
    const run = async (layer: ReturnType<typeof make>, failures: number, total: number) => {
      for (let i = 0; i < total - 1; i++) {
        code = i < failures ? 500 : 200;
        await layer.fetch("https://g.test/1");
      }
      await clock.advance(1_000);
      code = 200;
      await layer.fetch("https://g.test/1"); // the 20th call: evaluated, 20 samples in the window
      return [layer.degradation.window().errorRate, layer.degradation.currentLevel().name];
    };
    // 2 of 20 failing: exactly the default 0.1, no breach; 3 of 20: above it, one step down.
    expect(await run(make(), 2, 20)).toEqual([0.1, "full"]);
    expect(await run(make(), 3, 20)).toEqual([0.15, "high"]);
  });
});

describe("options at and past their bounds", () => {
  it("held: degradation(…) and configureTriggers name the path of a bad, unreadable or misshapen value", () => {
    const d = (o: unknown) => configPath(() => degradation(o as never));
    expect({
      levelsArray: d({ levels: [] }),
      rulesObject: d({ rules: { length: 0 } }),
      maxStepsFraction: d({ levels: { medium: { maxSteps: 30.5 } } }),
      maxStepsInfinity: d({ levels: { medium: { maxSteps: Number.POSITIVE_INFINITY } } }),
      windowNaN: d({ window: Number.NaN }),
      sizeMultipleFraction: d({ sizeMultiple: 8.5 }),
      modelStepFraction: d({ levels: { high: { modelStep: 0.5 } } }),
      getterMedium: d({ levels: throwing("medium") }),
      getterRule: d({
        rules: Object.defineProperty([], "0", {
          enumerable: true,
          get() {
            throw new Error("boom");
          },
        }),
      }),
      revokedParams: d({ rules: [{ params: revoked() }] }),
      revokedLadder: d({ models: [revoked()] }),
      protoPath: d({ rules: [{ params: { steps: { body: "a.__proto__" } } }] }),
    }).toEqual({
      levelsArray: "degradation.levels",
      rulesObject: "degradation.rules",
      maxStepsFraction: "degradation.levels.medium.maxSteps",
      maxStepsInfinity: "degradation.levels.medium.maxSteps",
      windowNaN: "degradation.window",
      sizeMultipleFraction: "degradation.sizeMultiple",
      modelStepFraction: "degradation.levels.high.modelStep",
      getterMedium: "degradation.levels.medium",
      getterRule: "degradation.rules.0",
      revokedParams: "degradation.rules.0.params",
      revokedLadder: "degradation.models.0",
      protoPath: "degradation.rules.0.params.steps.body",
    });
    // At the bounds, and frozen: accepted.
    expect(
      d(
        Object.freeze({
          levels: Object.freeze({ medium: { maxSteps: 2 ** 31, percentage: -0 } }),
          stepInterval: -0,
          restoreAfter: 0,
        }),
      ),
    ).toBeUndefined();
    const levels = createResilience({ degradation: degradation() }).degradation;
    expect([
      configPath(() => levels.configureTriggers(throwing("errorRate") as never)),
      configPath(() => levels.configureTriggers([] as never)),
      configPath(() => levels.configureTriggers({ errorRate: 1 + Number.EPSILON })),
      configPath(() => levels.configureTriggers({ errorRate: undefined, responseTime: 1 })),
    ]).toEqual(["degradation.triggers.errorRate", "degradation.triggers", "degradation.triggers.errorRate", undefined]);
  });
});
