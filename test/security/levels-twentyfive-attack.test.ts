/**
 * Outside-in attack on the five degradation levels and what each rewrites. Docs: docs/degradation.md (the table,
 * `adjust`, "`resilience.fetch` applies the level…", `match`, the level header, triggers and hysteresis), the
 * `degradation.*` rows of docs/options.md, docs/storycore-mapping.md (five levels, parameter names).
 * How: root, `./degradation`, `./fallback`, `./ky`, `./testing` (TestClock); `hostFetch` transports recording each
 * request's bytes and headers; time moves only on the TestClock.
 * Paths: `adjust`, plain call (string, bytes, Blob bodies; query; headers), `Request` input (replayable and larger
 * than `maxReplayBytes`), an `init.body` stream, a fallback chain to another origin, the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a WxH dimension compared as written, a match the URL parser refuses refused):
 * 1. docs/degradation.md "or a `WxH` size scaled and rounded down to a multiple of `sizeMultiple` (8) (one with a
 *    dimension past 2^53, which no number holds exactly, is left as it is)". Observed: at `high`,
 *    `adjust({ resolution: "9007199254740993x1024" })` gives "8556839292012496x968" (and "1024x9007199254740993"
 *    gives "968x8556839292012496"): the dimension is read with `Number()`, which rounds 2^53 + 1 to 2^53, and the
 *    guard is `> 2 ** 53`, so it is scaled. The same on the request path: a JSON body's and a query's
 *    `9007199254740993x1024` go out as `8106479329275000x920` at `medium`.
 * 2. docs/degradation.md "a `match` that no request URL could start with, one with a `#fragment`, spaces around
 *    it, control characters or `user:pass@`, is a `ConfigError`". Observed: `match: "https://gen.example:99999/v1"`
 *    (a port past 65535), `"http://[::1"` and `"https://"` are taken by `degradation({ rules })`, while the layer
 *    refuses every request URL that could start with them (a call to `https://gen.example:99999/v1/x` rejects with a
 *    TypeError before anything is sent), so such a rule can never apply. `fallback([…])` refuses the same URLs.
 *
 * Held (plain `it`):
 * - a `WxH` dimension that `Number()` reads above 2^53 (9007199254740995) is left as it is;
 * - bad `levels` and `rules` throw `ConfigError` at once naming the path (`degradation.levels.medium.maxSteps`, …);
 * - the `medium` example through the request path: body (string, bytes, Blob), query and headers each rewritten to
 *   exactly `0.8 / 720p / 30 / standard / [core]`, every other byte kept (a BOM's bytes, a 20-digit seed, an escaped
 *   key, spacing, `30.0` kept under the cap), `content-length` dropped, the level header sent; a `Request` and ky;
 * - a stream body and a `Request` body above `maxReplayBytes` go unrewritten, their level header and
 *   `degradationLevel` naming the level;
 * - a fallback chain gets one rewritten body at every endpoint; the level header stays with the addressed origin;
 * - hysteresis: an error rate between half the threshold and the threshold holds the level for minutes; a clean
 *   window lifts it after `restoreAfter`, one level, with a `degradation` event and `health().degradationLevel`.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { header, hostFetch } from "../helpers/host-fetch.ts";

const ok = () => new Response("ok");

function layerAt(level: "high" | "medium", extra: Record<string, unknown> = {}, rules?: unknown) {
  const clock = new TestClock();
  const net = hostFetch({
    "gen.example": ok,
    "spare.example": ok,
    "down.example": () => new Response("", { status: 503 }),
  });
  const layer = createResilience({
    fetch: net.fetch,
    clock,
    retry: false,
    breaker: false,
    ...extra,
    degradation: degradation({
      browserSignals: false,
      levelHeader: "x-level",
      ...(rules ? { rules: rules as never } : {}),
    }),
  });
  layer.degradation.setLevel(level);
  return { net, layer, clock, last: () => net.log.at(-1) };
}

describe("levels: WxH past 2^53", () => {
  it('1a. degradation.md "one with a dimension past 2^53 … is left as it is": adjust at high', () => {
    const { layer } = layerAt("high");
    // Observed: "8556839292012496x968" and "968x8556839292012496".
    expect(layer.degradation.adjust({ resolution: "9007199254740993x1024" }).resolution).toBe("9007199254740993x1024");
    expect(layer.degradation.adjust({ resolution: "1024x9007199254740993" }).resolution).toBe("1024x9007199254740993");
  });

  it("held: a dimension Number() reads above 2^53 (9007199254740995) is left as it is", () => {
    const { layer } = layerAt("high");
    expect(layer.degradation.adjust({ resolution: "9007199254740995x1024" }).resolution).toBe("9007199254740995x1024");
  });

  it("1b. the same sentence on the request path: a JSON body and a query at medium", async () => {
    const { layer, last } = layerAt("medium", {}, [
      { match: "https://gen.example/q", params: { resolution: { query: "size" } } },
      { params: { resolution: "size" } },
    ]);
    await layer.fetch("https://gen.example/v1", { method: "POST", body: '{"size":"9007199254740993x1024"}' });
    // Observed: {"size":"8106479329275000x920"}.
    const body = last()?.text;
    await layer.fetch("https://gen.example/q?size=9007199254740993x1024");
    // Observed: …?size=8106479329275000x920.
    const url = last()?.url;
    expect({ body, url }).toEqual({
      body: '{"size":"9007199254740993x1024"}',
      url: "https://gen.example/q?size=9007199254740993x1024",
    });
  });
});

describe("levels: rules refused at once", () => {
  it('2. degradation.md "a `match` that no request URL could start with … is a `ConfigError`"', async () => {
    const { layer } = layerAt("medium");
    // No request URL starts with these: the layer refuses each such URL before sending anything.
    await expect(layer.fetch("https://gen.example:99999/v1/x")).rejects.toBeInstanceOf(TypeError);
    await expect(layer.fetch("http://[::1/v1")).rejects.toBeInstanceOf(TypeError);
    // And the fallback entry refuses the same URL as a prefix.
    expect(() => fallback([{ name: "c", endpoints: [{ name: "e", url: "https://gen.example:99999/v1" }] }])).toThrow(
      ConfigError,
    );
    for (const match of ["https://gen.example:99999/v1", "http://[::1", "https://"]) {
      // Observed: taken; the rule never applies.
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).toThrow(ConfigError);
    }
  });

  it("held: bad rules and levels are refused at once, naming the path", () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ levels: { medium: { maxSteps: 0 } } }, /degradation\.levels\.medium\.maxSteps/],
      [{ rules: [{ params: { steps: { query: "" } } }] }, /degradation\.rules\.0\.params\.steps\.query/],
      [{ rules: [{ params: { steps: { body: "p.__proto__" } } }] }, /degradation\.rules\.0\.params\.steps\.body/],
      [{ rules: [{ params: { seed: "seed" } }] }, /degradation\.rules\.0\.params/],
      [{ rules: [{ match: "https://u:p@gen.example/v1", params: {} }] }, /degradation\.rules\.0\.match/],
      [
        {
          rules: [
            { match: "https://gen.example/v1", params: {} },
            { match: "HTTPS://GEN.example:443/v1", params: {} },
          ],
        },
        /degradation\.rules/,
      ],
    ];
    for (const [options, path] of bad) expect(() => degradation(options as never)).toThrow(path);
  });
});

describe("levels: what a level rewrites, and nothing else", () => {
  it("held: the medium example in a body (string, bytes, Blob), a query, headers; other bytes kept", async () => {
    const { layer, last } = layerAt("medium", {}, [
      {
        match: "https://gen.example/q",
        params: { quality: { query: "q" }, resolution: { query: "r" }, steps: { query: "s" }, model: { query: "m" } },
      },
      {
        match: "https://gen.example/h",
        params: { steps: { header: "x-steps" }, model: { header: "x-model" }, features: { header: "x-f" } },
      },
      { params: { quality: "quality", resolution: "resolution", steps: "p.steps", model: "model", features: "f" } },
    ]);
    const sent =
      '\ufeff{ "quality" : 1.0, "resolution":"1080p","p":{"st\\u0065ps":50},"model":"premium",' +
      '"f":["core","x"],"seed":12345678901234567890,"note":"é😀"}';
    const want =
      '\ufeff{ "quality" : 0.8, "resolution":"720p","p":{"st\\u0065ps":30},"model":"standard",' +
      '"f":["core"],"seed":12345678901234567890,"note":"é😀"}';
    const bytes = (text: string) => [...new TextEncoder().encode(text)];
    for (const body of [sent, new TextEncoder().encode(sent), new Blob([sent], { type: "application/json" })]) {
      await layer.fetch("https://gen.example/v1", { method: "POST", body, headers: { "content-length": "999" } });
      expect([...(last()?.bytes ?? [])]).toEqual(bytes(want));
      expect(header(last(), "content-length")).toBeUndefined();
      expect(header(last(), "x-level")).toBe("medium");
    }
    await layer.fetch("https://gen.example/v1", { method: "POST", body: '{"p":{"steps":30.0}}' });
    expect(last()?.text).toBe('{"p":{"steps":30.0}}');
    await layer.fetch("https://gen.example/q?a=x/y&q=1.0&r=1080p&flag&s=50&m=premium");
    expect(last()?.url).toBe("https://gen.example/q?a=x/y&q=0.8&r=720p&flag&s=30&m=standard");
    await layer.fetch("https://gen.example/h", {
      headers: { "x-steps": "50, 20", "x-model": "premium", "x-f": "core, x" },
    });
    expect([header(last(), "x-steps"), header(last(), "x-model"), header(last(), "x-f")]).toEqual([
      "30, 20",
      "standard",
      "core",
    ]);
    await layer.fetch(new Request("https://gen.example/v1", { method: "POST", body: '{"p":{"steps":50}}' }));
    expect(last()?.text).toBe('{"p":{"steps":30}}');
    const api = createClient({ resilience: layer, prefix: "https://gen.example/v1" });
    await api.post("gen", { json: { quality: 1, model: "premium" } }).text();
    expect([last()?.text, header(last(), "content-type")]).toEqual([
      '{"quality":0.8,"model":"standard"}',
      "application/json",
    ]);
  });

  it("held: a stream and an oversize Request body go unrewritten, their level header naming the level", async () => {
    const { layer, last } = layerAt("medium", { maxReplayBytes: 64 });
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"steps":50}'));
        c.close();
      },
    });
    const res = await layer.fetch("https://gen.example/v1", {
      method: "POST",
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect([last()?.text, header(last(), "x-level"), getResilienceInfo(res)?.degradationLevel]).toEqual([
      '{"steps":50}',
      "medium",
      "medium",
    ]);
    const big = `{"steps":50,"pad":"${"x".repeat(100)}"}`;
    await layer.fetch(new Request("https://gen.example/v1", { method: "POST", body: big }));
    expect([last()?.text, header(last(), "x-level")]).toEqual([big, "medium"]);
  });

  it("held: a fallback chain sends one rewritten body to every endpoint; the level header stays home", async () => {
    const { layer, net } = layerAt("medium", {
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://down.example/v1" },
            { name: "s", url: "https://spare.example/v2" },
          ],
        },
      ]),
    });
    const res = await layer.fetch("https://down.example/v1/gen", {
      method: "POST",
      body: '{"steps":50,"model":"premium"}',
      headers: { "content-type": "application/json" },
    });
    expect(net.log.map((r) => [r.url, r.text, header(r, "x-level")])).toEqual([
      ["https://down.example/v1/gen", '{"steps":30,"model":"standard"}', "medium"],
      ["https://spare.example/v2/gen", '{"steps":30,"model":"standard"}', undefined],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "s", degradationLevel: "medium" });
  });
});

describe("levels: triggers and hysteresis", () => {
  it("held: an error rate between 0.05 and 0.1 holds; a clean window lifts one level after restoreAfter", async () => {
    const clock = new TestClock();
    let n = 0;
    let failEvery = 14;
    const net = hostFetch({
      "gen.example": () => {
        n++;
        return new Response("", { status: failEvery > 0 && n % failEvery === 0 ? 503 : 200 });
      },
    });
    const layer = createResilience({
      fetch: net.fetch,
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ browserSignals: false }),
    });
    const events: string[] = [];
    layer.on("degradation", (e) => events.push(`${e.from}>${e.to}`));
    layer.degradation.degrade("test");
    const tick = async () => {
      await clock.advance(1000);
      await layer.fetch("https://gen.example/x");
    };
    // 1 in 14 fails (about 0.07 of the window): neither a breach nor healthy.
    for (let i = 0; i < 180; i++) await tick();
    const w = layer.degradation.currentLevel();
    expect([w.name, events]).toEqual(["high", ["full>high"]]);
    failEvery = 0;
    // The last failure leaves the window within 60 s; health must then last a whole 60 s.
    for (let i = 0; i < 60; i++) await tick();
    expect(layer.degradation.currentLevel().name).toBe("high");
    for (let i = 0; i < 60; i++) await tick();
    expect([layer.degradation.currentLevel().name, layer.health().degradationLevel, events]).toEqual([
      "full",
      "full",
      ["full>high", "high>full"],
    ]);
  });
});
