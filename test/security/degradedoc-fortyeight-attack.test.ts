/**
 * Outside-in attack on graceful degradation as docs/degradation.md, docs/storycore-mapping.md, the JSDoc of the
 * `./degradation` entry and examples/storycore-parity/engines.ts describe it: the five levels and their numbers,
 * `adjust`, request rewriting by rules (`match`, JSON body paths, headers, `levelHeader`), the automatic triggers
 * and their hysteresis, the `degradation` event, `health().degradationLevel`, and the StoryCore-Engine names.
 *
 * Docs:
 * - docs/degradation.md: "Without it every call goes out at `full`, untouched, `health().degradationLevel` is
 *   `"full"` and `resilience.degradation` is `undefined`"; "`degradation(options)` checks its options at once
 *   (`degradation.levels.medium.maxSteps` …)"; the five-level table; "`quality` multiplied (to 12 significant
 *   digits, so `0.8 × 0.9` is `0.72`)", "`high`'s 0.95 already takes 1080p to 720p", "a `WxH` size scaled and
 *   rounded down to a multiple of `sizeMultiple` (8)", "At `medium`, `{ quality: 1.0, resolution: "1080p", steps:
 *   50, model: "premium" }` becomes exactly `{ quality: 0.8, resolution: "720p", steps: 30, model: "standard" }`.
 *   Unknown fields pass through."; "`rules` say where they live instead (a JSON body path such as
 *   `"parameters.num_inference_steps"`, `{ query: "q" }` or `{ header: "x-model" }`), per URL prefix (`match`, the
 *   longest wins, read as a chain's prefix is: both URLs as the URL parser reads them, whole path segments only …;
 *   a `match` with a `?query` is read by whole segments up to it and as text from there, so `…/v1?model=` takes
 *   `…/v1?model=sd`, and `…/v1?model=a` takes `…/v1?model=ab` but not `…/v1/x?model=a`…)"; "two rules without
 *   `match`, or two with the same `match`, are a `ConfigError`: the second would never apply"; "A call that goes
 *   down a fallback chain is rewritten once, by the rule its own URL selects, before the chain … and an endpoint's
 *   `transform` reshapes it for its provider"; "non-JSON bodies are left alone"; "`levelHeader:
 *   "x-degradation-level"` sends the level's name … to another origin (a fallback endpoint, a redirect) it goes …
 *   only when named in `crossOriginHeaders`"; "Manual control always works: `degrade(reason)` (one step down),
 *   `restore()` (one step up), `setLevel(name)` (pins the level: triggers leave it alone until `restore()`),
 *   `currentLevel()` → `{ name, percentage, since, reason, pinned }`"; "Automatic triggers are fed by every call
 *   that settles …, and evaluated at most once a second as calls settle"; "A breach steps down one level per
 *   `stepInterval`"; "Stepping up needs the signals to be clearly healthy (… p95 at most 80% of its threshold …)
 *   for a whole `restoreAfter` (60 s), one level at a time; values in between hold the level"; "Defaults for the
 *   thresholds …: error rate 0.1, response time 30 s".
 * - docs/health-and-events.md: "`degradation` fires on every level change (`from`, `to`, `percentage`,
 *   `reason` …)"; "work run through `execute` … counts … in … the degradation triggers".
 * - docs/fallback.md: "Both are compared as the URL parser reads them, so `HTTPS://Gen.example:443/v1`, `…/v1/../v10`
 *   and a `Request` are routed by what they stand for."
 * - docs/storycore-mapping.md: the Names table (`system.breaker("x")`, `.execute(fn)`;
 *   `system.fallback.chain("x").add(fn, { name, expectedQuality })`; `system.degradation.adjust(p)`;
 *   `system.execute(fn, { breaker: "x" })` for `execute_with_resilience(…, enable_retry=True)`;
 *   `chain.statistics()`, `system.health()`); "Numbers kept"; "As in that system, work run through
 *   `system.execute(fn)` counts in `health()`'s `errorRate` and in the automatic degradation triggers"; "Run it
 *   with `npm run build && node examples/storycore-parity/engines.ts`" (run by hand: it prints the video served by
 *   `wan` at `full`, the image by `qwen`, the workflow at `medium` as `video:story(medium)+enhanced@720p`, the
 *   chain's statistics with `lastSuccessfulFallback: 'wan_standard'`, and five breaker names: as the mapping says).
 * - JSDoc: src/degradation/index.ts (entry), `degradation()` ("Options are checked at once: a bad value throws
 *   `ConfigError` naming its path. Each layer the stage joins gets its own level"), `DegradationRule.match`
 *   ("the longest `match` that prefixes its URL"), `DegradationOptions` (`minSamples`, `stepInterval`,
 *   `restoreAfter`, `levelHeader`), `GracefulDegradation` methods, `defaultLevels`.
 *
 * How: `createResilience`, `getResilienceInfo`, `isConfigError` (root), `degradation`, `defaultLevels`
 * (./degradation), `fallback` (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock`
 * (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) that record every request, some
 * holding their answer while the `TestClock` is advanced.
 *
 * Paths: plain call (string, `URL`), `Request` input (JSON body, FormData, nested path, header rule), fallback
 * chain (rewrite then `transform`, another origin), hedge, followed 307, ky client, `resilientProxy`, `execute`,
 * stacked layers (docs-silent, below).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. docs/degradation.md "`match` … read as a chain's prefix is: both URLs as the URL parser reads them …; a
 *    `match` with a `?query` is read … as text from there" (with docs/fallback.md "a `Request` [is] routed by what
 *    it stands for"). Observed: a rule `match: "<base>/v1?model=café"` takes the call `fetch("<base>/v1?model=café")`
 *    given as a string (`steps` 50 → 30 at `medium`), but not the very same URL given as a `URL`, as a `Request`,
 *    through the ky client (which hands the layer a `Request`), down a chain as a `URL`, nor through
 *    `resilientProxy` (which builds a `Request`): each sends `steps` 50 to the same `/v1?model=caf%C3%A9`. The
 *    parser reads the query `model=café` as `model=caf%C3%A9`; the rule compares the text as written. Source:
 *    src/http/request/url-prefix.ts `UrlPrefixes.canonical` canonicalises only the part before the query
 *    (`head + url.slice(cut)`), so the match's query and a string input's query stay as written while a `URL` or
 *    `Request` input arrives serialised; src/degradation/rule-picker.ts compares those with `restAfter`.
 * 2. Same sentence, the other way: a rule whose `match` is written as the parser writes it,
 *    `"<base>/v1?model=caf%C3%A9"`, takes a `URL` or `Request` call but not the string call
 *    `"<base>/v1?model=café"`, which reaches the server as the same request line, unrewritten. Same source.
 * 3. docs/degradation.md "two with the same `match` are a `ConfigError`: the second would never apply" (read as
 *    the URL parser reads them: `HTTP://127.0.0.1:port/v1` beside `http://127.0.0.1:port/v1` is refused, held
 *    below). Observed: `match: "<base>/v1?model=café"` beside `match: "<base>/v1?model=caf%C3%A9"` (one URL to the
 *    parser) is taken, each then applying to a different spelling of one request. Same source
 *    (src/degradation/rule-picker.ts checks duplicates on `canonical`, which keeps the query as written).
 *
 * Held (plain `it`):
 * - Without the stage: `resilience.degradation` is `undefined`, `health().degradationLevel` "full", the body sent
 *   untouched. `degradation({ levels: { medium: { maxSteps: 0 } } })` throws a `ConfigError` naming
 *   `degradation.levels.medium.maxSteps`.
 * - The table (`defaultLevels`) is the documented one; `adjust` at `medium` gives exactly the documented object,
 *   `0.8 × 0.9` is 0.72 and 1080p → 720p at `high`, `1024x1024` → `968x968`, features filtered to the level's tiers,
 *   unknown and nested fields pass through; at `full` nothing changes.
 * - `Request` input at `medium` with a scoped rule (nested body path + `{ header: "x-model" }`) and `levelHeader`:
 *   the JSON body is spliced (a 20-digit seed and spacing kept), `authorization` and `x-custom` kept, `x-model` →
 *   `standard`, the level header `medium`; a FormData `Request` reaches the server byte for byte with its multipart
 *   `content-type`; a URL no rule matches keeps its top-level `steps` (the scoped rule replaces the default one) but
 *   carries the level header; the ky client's `json` is rewritten by the same rule.
 * - Chain: rewritten once before the chain, the spare's `transform` gets the rewritten body and reshapes it; the
 *   level header reaches the spare on another origin only when named in `crossOriginHeaders`. A followed 307
 *   re-sends the rewritten body and the level header; a hedge sends the rewritten body to both endpoints.
 * - Latency triggers and hysteresis on a `TestClock` (held answers): a 31 s call steps `full → high` ("p95 latency
 *   31000 ms > 30000 ms", percentage 80); a 27 s call (between 24 and 30 s) holds the level and restarts the
 *   healthy time, so a fast call 78 s after the first healthy one does not step up; the step up comes 60 s after
 *   the healthy time restarted ("healthy", percentage 100); each call's `degradationLevel` names the level it
 *   started at, `health().degradationLevel` follows.
 * - Manual control: `degrade`/`restore`/`setLevel` events `{ from, to, percentage, reason }` in order; a pinned
 *   level is not moved by a failing call and `restore()` lifts the pin one step up; `currentLevel()` has the
 *   documented shape.
 * - Mapping: `system.breaker("x").execute(fn)`, `system.fallback.chain("x").add(fn, { name, expectedQuality })`
 *   (the same chain on a second `chain("x")`), `chain.statistics()` (`lastSuccessfulFallback`,
 *   `overallSuccessRate`, `fallbacks`), `system.execute(fn, { breaker })` retried (three attempts) and counted in
 *   `health().errorRate` and in the triggers (the level steps to `high`, reason "error rate …"), `system.health()`
 *   listing the named breaker.
 *
 * Docs-silent (not pinned):
 * - A `degradation` event a call's settling causes fires before that call's `request` event (the level moves in
 *   `observe`, before the `request` event is emitted).
 * - Stacked layers: an outer layer without the stage over an inner one at `medium` reports `degradationLevel:
 *   "full"` and `health().degradationLevel` "full" for a call whose body went out rewritten to `medium`
 *   (docs/degradation.md's "Without it every call goes out at `full`, untouched" is about the layer's own stage).
 * - `levelHeader: "keep-alive"` (a token, so accepted) makes Node's fetch refuse every call, at every level,
 *   `full` included, with `TypeError: fetch failed`, counted nowhere (the caller's mistake); only "name one of
 *   your own" warns.
 * - A relative `match` (`"/v1/"`) is accepted in Node, where no request URL can start with it (it is read
 *   against a page's address, which Node lacks); the doc's "one the URL parser refuses … is a `ConfigError`" reads
 *   it against a base.
 * - The example needs Node 22.18+ (type stripping on by default) for `node examples/storycore-parity/engines.ts`;
 *   `engines` says `>=22`.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { defaultLevels, degradation, type GenerationParams } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isConfigError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const spare = httpUpstream();
const gate = httpUpstream();
serveDuringFile(up, spare, gate);

/** Triggers that read only error rate and latency, whatever machine runs the test. */
const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;

const jsonInit = (body: string): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": "application/json" },
});

async function drain(response: Response): Promise<Response> {
  await response.text();
  return response;
}

describe("rule `match` with a query, as the URL parser reads it", () => {
  it("a `match` written `?model=café` takes the same URL however it is given (URL, Request, ky, chain, proxy)", async () => {
    const match = `${up.base}/v1?model=café`;
    const rules = [{ match, params: { steps: "steps" } }];
    const layer = createResilience({ retry: false, degradation: degradation({ rules }) });
    layer.degradation.setLevel("medium");
    const url = `${up.base}/v1?model=café`;
    const sent: Record<string, string> = {};
    const last = (): string => up.hits[up.hits.length - 1]?.body ?? "";
    await drain(await layer.fetch(url, jsonInit('{"steps":50}')));
    sent.string = last();
    await drain(await layer.fetch(new URL(url), jsonInit('{"steps":50}')));
    sent.url = last();
    await drain(await layer.fetch(new Request(url, jsonInit('{"steps":50}'))));
    sent.request = last();
    await createClient({ resilience: layer })
      .post(url, { json: { steps: 50 } })
      .text();
    sent.ky = last();
    const chained = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${up.base}/v1` },
            { name: "b", url: `${spare.base}/v1` },
          ],
        },
      ]),
      degradation: degradation({ rules }),
    });
    chained.degradation.setLevel("medium");
    await drain(await chained.fetch(new URL(url), jsonInit('{"steps":50}')));
    sent.chain = last();
    // The proxy's layer reaches `high` by its triggers (one 503, `minSamples: 1`); `high` caps steps at 30 here.
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/gen", upstream: `${gate.base}/v1` }],
      resilience: {
        retry: false,
        clock,
        degradation: degradation({
          ...calm,
          minSamples: 1,
          stepInterval: 0,
          levels: { high: { maxSteps: 30 } },
          rules: [{ match: `${gate.base}/v1?model=café`, params: { steps: "steps" } }],
        }),
      },
    });
    gate.on((hit) => {
      hit.res.statusCode = hit.n === 1 ? 503 : 200;
      hit.res.end("x");
    });
    const ctx = { waitUntil() {} };
    const levels: Array<string | null> = [];
    for (let i = 0; i < 2; i++) {
      await clock.advance(1_000);
      const answer = await proxy.fetch(
        new Request("https://p.example/gen?model=café", jsonInit('{"steps":50}')),
        {},
        ctx,
      );
      levels.push(answer.headers.get("x-degradation-level"));
      await answer.text();
    }
    expect(levels).toEqual(["full", "high"]);
    sent.proxy = gate.hits[1]?.body ?? "";
    // Every one of them went to the same request line.
    expect(new Set([...up.hits.map((h) => h.path), ...gate.hits.map((h) => h.path)])).toEqual(
      new Set(["/v1?model=caf%C3%A9"]),
    );
    expect(sent).toEqual({
      string: '{"steps":30}',
      url: '{"steps":30}',
      request: '{"steps":30}',
      ky: '{"steps":30}',
      chain: '{"steps":30}',
      proxy: '{"steps":30}',
    });
  });

  it("a `match` written as the parser writes it, `?model=caf%C3%A9`, takes the string call `?model=café`", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: `${up.base}/v1?model=caf%C3%A9`, params: { steps: "steps" } }] }),
    });
    layer.degradation.setLevel("medium");
    await drain(await layer.fetch(new Request(`${up.base}/v1?model=café`, jsonInit('{"steps":50}'))));
    await drain(await layer.fetch(`${up.base}/v1?model=café`, jsonInit('{"steps":50}')));
    expect(up.hits.map((h) => h.path)).toEqual(["/v1?model=caf%C3%A9", "/v1?model=caf%C3%A9"]);
    // The `Request` is rewritten (held); the string, the same request line, must be too.
    expect(up.hits.map((h) => h.body)).toEqual(['{"steps":30}', '{"steps":30}']);
  });

  it("two rules whose `match` is one URL to the parser (`café` and `caf%C3%A9`) are a ConfigError", () => {
    let error: unknown;
    try {
      degradation({
        rules: [
          { match: `${up.base}/v1?model=café`, params: { steps: "steps" } },
          { match: `${up.base}/v1?model=caf%C3%A9`, params: { steps: "steps" } },
        ],
      });
    } catch (caught) {
      error = caught;
    }
    expect(isConfigError(error)).toBe(true);
  });

  it("holds: the documented `match` examples, and a duplicate spelt differently before the query is refused", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: `${up.base}/v1?model=a`, params: { steps: "steps" } }] }),
    });
    layer.degradation.setLevel("medium");
    await drain(await layer.fetch(`${up.base}/v1?model=ab`, jsonInit('{"steps":50}')));
    await drain(await layer.fetch(`${up.base}/v1/x?model=a`, jsonInit('{"steps":50}')));
    expect(up.hits.map((h) => [h.path, h.body])).toEqual([
      ["/v1?model=ab", '{"steps":30}'],
      ["/v1/x?model=a", '{"steps":50}'],
    ]);
    expect(() =>
      degradation({
        rules: [
          { match: `${up.base}/v1`, params: { steps: "steps" } },
          { match: `HTTP://127.0.0.1:${up.port}/v1`, params: { steps: "steps" } },
        ],
      }),
    ).toThrow(/one rule per `match`/);
  });
});

describe("levels, adjust and the stage's absence", () => {
  it("without the stage: no handle, level `full`, the body untouched; options checked at once with their path", async () => {
    const plain = createResilience({ retry: false });
    expect(plain.degradation).toBeUndefined();
    const res = await drain(await plain.fetch(`${up.base}/g`, jsonInit('{"steps":50,"model":"premium"}')));
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
    expect(plain.health().degradationLevel).toBe("full");
    expect(up.hits[0]?.body).toBe('{"steps":50,"model":"premium"}');
    let error: unknown;
    try {
      degradation({ levels: { medium: { maxSteps: 0 } } });
    } catch (caught) {
      error = caught;
    }
    expect(isConfigError(error)).toBe(true);
    expect(String(error)).toContain("degradation.levels.medium.maxSteps");
  });

  it("the table and `adjust` are the documented ones", () => {
    expect(
      Object.fromEntries(
        Object.entries(defaultLevels).map(([name, l]) => [
          name,
          [l.percentage, l.qualityMultiplier, l.resolutionScale, l.maxSteps, [...l.features], l.modelStep],
        ]),
      ),
    ).toEqual({
      full: [100, 1, 1, null, ["all"], 0],
      high: [80, 0.9, 0.95, null, ["core", "enhancements"], 0],
      medium: [60, 0.8, 0.9, 30, ["core"], 1],
      low: [40, 0.6, 0.8, 20, ["basic"], 2],
      minimal: [20, 0.4, 0.7, 10, ["essential"], 2],
    });
    const system = createResilience({ degradation: degradation() });
    const p: GenerationParams = { quality: 1.0, resolution: "1080p", steps: 50, model: "premium" };
    expect(system.degradation.adjust(p)).toEqual(p);
    system.degradation.setLevel("medium");
    expect(system.degradation.adjust(p)).toEqual({ quality: 0.8, resolution: "720p", steps: 30, model: "standard" });
    system.degradation.setLevel("high");
    expect(
      system.degradation.adjust({
        quality: 0.8,
        resolution: "1080p",
        prompt: "p",
        parameters: { steps: 50, quality: 1 },
        features: ["core", "extra", "enhancements"],
      }),
    ).toEqual({
      quality: 0.72,
      resolution: "720p",
      prompt: "p",
      parameters: { steps: 50, quality: 1 },
      features: ["core", "enhancements"],
    });
    expect(system.degradation.adjust({ resolution: "1024x1024" })).toEqual({ resolution: "968x968" });
  });
});

describe("rewriting on each path", () => {
  const rules = () => [{ match: `${up.base}/v1`, params: { steps: "parameters.steps", model: { header: "x-model" } } }];

  it("`Request` input: JSON body spliced, other headers and a FormData body kept; no rule for another URL", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({ levelHeader: "x-degradation-level", rules: rules() }),
    });
    layer.degradation.setLevel("medium");
    const json = '{"parameters": {"steps": 50}, "seed": 18446744073709551615}';
    await drain(
      await layer.fetch(
        new Request(`${up.base}/v1/gen`, {
          method: "POST",
          body: json,
          headers: {
            "content-type": "application/json",
            authorization: "Bearer t",
            "x-custom": "1",
            "x-model": "premium",
          },
        }),
      ),
    );
    const first = up.hits[0] as Hit;
    expect(first.body).toBe('{"parameters": {"steps": 30}, "seed": 18446744073709551615}');
    expect([first.headers.authorization, first.headers["x-custom"], first.headers["content-type"]]).toEqual([
      "Bearer t",
      "1",
      "application/json",
    ]);
    expect([first.headers["x-model"], first.headers["x-degradation-level"]]).toEqual(["standard", "medium"]);
    const form = new FormData();
    form.set("parameters.steps", "50");
    form.set("file", new Blob([new Uint8Array([0, 255, 123, 34])]), "a.bin");
    const formRequest = new Request(`${up.base}/v1/upload`, { method: "POST", body: form });
    const expected = Buffer.from(await formRequest.clone().arrayBuffer());
    await drain(await layer.fetch(formRequest));
    const second = up.hits[1] as Hit;
    expect(second.bytes.equals(expected)).toBe(true);
    expect(second.headers["content-type"]).toBe(formRequest.headers.get("content-type"));
    expect(second.headers["x-degradation-level"]).toBe("medium");
    await drain(await layer.fetch(new Request(`${up.base}/other`, jsonInit('{"steps":50,"model":"premium"}'))));
    const third = up.hits[2] as Hit;
    expect(third.body).toBe('{"steps":50,"model":"premium"}');
    expect(third.headers["x-degradation-level"]).toBe("medium");
    await createClient({ resilience: layer })
      .post(`${up.base}/v1/gen`, { json: { parameters: { steps: 50 } } })
      .text();
    expect(up.hits[3]?.body).toBe('{"parameters":{"steps":30}}');
  });

  it("chain: rewritten once, then the spare's `transform`; the level header crosses origins only when named", async () => {
    for (const named of [false, true]) {
      up.reset();
      spare.reset();
      const seen: unknown[] = [];
      const layer = createResilience({
        retry: false,
        crossOriginHeaders: named ? ["x-degradation-level"] : [],
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "a", url: `${up.base}/v1` },
              {
                name: "b",
                url: `${spare.base}/v9`,
                transform: (req) => {
                  seen.push(req.body);
                  return { ...req, body: { input: req.body } };
                },
              },
            ],
          },
        ]),
        degradation: degradation({ levelHeader: "x-degradation-level", rules: rules() }),
      });
      layer.degradation.setLevel("low");
      up.on((hit) => {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      });
      const res = await drain(
        await layer.fetch(`${up.base}/v1/gen`, {
          method: "POST",
          body: '{"parameters":{"steps":50}}',
          headers: { "content-type": "application/json", "idempotency-key": "k" },
        }),
      );
      expect(res.status).toBe(200);
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "low" });
      expect(up.hits[0]?.body).toBe('{"parameters":{"steps":20}}');
      expect(up.hits[0]?.headers["x-degradation-level"]).toBe("low");
      expect(seen).toEqual([{ parameters: { steps: 20 } }]);
      expect(spare.hits[0]?.body).toBe('{"input":{"parameters":{"steps":20}}}');
      expect(spare.hits[0]?.headers["x-degradation-level"]).toBe(named ? "low" : undefined);
    }
  });

  it("a followed 307 re-sends the rewritten body with the level header; a hedge sends it to both endpoints", async () => {
    const layer = createResilience({
      retry: false,
      degradation: degradation({ levelHeader: "x-l", rules: rules() }),
    });
    layer.degradation.setLevel("minimal");
    up.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 307;
        hit.res.setHeader("location", "/v1/moved");
        hit.res.end();
      } else hit.res.end("ok");
    });
    const res = await drain(
      await layer.fetch(`${up.base}/v1/gen`, {
        method: "POST",
        body: '{"parameters":{"steps":50}}',
        headers: { "idempotency-key": "k" },
      }),
    );
    expect(res.redirected).toBe(true);
    expect(up.hits.map((h) => [h.path, h.body, h.headers["x-l"]])).toEqual([
      ["/v1/gen", '{"parameters":{"steps":10}}', "minimal"],
      ["/v1/moved", '{"parameters":{"steps":10}}', "minimal"],
    ]);
    up.reset();
    const clock = new TestClock();
    const hedged = createResilience({
      retry: false,
      clock,
      crossOriginHeaders: ["x-l"],
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "a", url: `${up.base}/v1` },
            { name: "b", url: `${spare.base}/v1` },
          ],
        },
      ]),
      degradation: degradation({ levelHeader: "x-l", rules: rules() }),
    });
    hedged.degradation.setLevel("low");
    const held: Hit[] = [];
    up.on((hit) => held.push(hit));
    const call = hedged.fetch(`${up.base}/v1/gen`, {
      method: "POST",
      body: '{"parameters":{"steps":50}}',
      headers: { "idempotency-key": "k2" },
    });
    await up.nth(1);
    await clock.advance(1_000);
    const won = await drain(await call);
    for (const hit of held) hit.res.end("late");
    expect(getResilienceInfo(won)).toMatchObject({ endpoint: "b", degradationLevel: "low" });
    expect([up.hits[0]?.body, spare.hits[0]?.body]).toEqual([
      '{"parameters":{"steps":20}}',
      '{"parameters":{"steps":20}}',
    ]);
    expect([up.hits[0]?.headers["x-l"], spare.hits[0]?.headers["x-l"]]).toEqual(["low", "low"]);
  });
});

describe("levels over time", () => {
  it("p95 triggers with hysteresis: a breach steps down, a value in between holds and restarts the healthy time", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      retry: false,
      clock,
      degradation: degradation({ ...calm, minSamples: 1, window: 20_000 }),
    });
    const events: unknown[] = [];
    layer.on("degradation", (e) => events.push({ ...e, at: clock.now() }));
    const waiting: Hit[] = [];
    up.on((hit) => {
      waiting.push(hit);
    });
    const levels: string[] = [];
    /** One call to the real server, answered after `ms` of the test clock. */
    const call = async (ms: number): Promise<void> => {
      const count = up.hits.length;
      const pending = layer.fetch(`${up.base}/t`);
      await up.nth(count + 1);
      await clock.advance(ms);
      for (const hit of waiting.splice(0)) hit.res.end("ok");
      const res = await drain(await pending);
      levels.push(`${getResilienceInfo(res)?.degradationLevel}>${layer.health().degradationLevel}`);
    };
    await call(31_000); // settles at 31 s: p95 31 s > 30 s
    await call(27_000); // settles at 58 s: 27 s is neither a breach nor healthy (> 24 s)
    await clock.advance(21_000);
    await call(0); // 79 s: healthy from here
    await clock.advance(30_000);
    await call(27_000); // 136 s: in between again, the healthy time restarts
    await clock.advance(21_000);
    await call(0); // 157 s: 78 s after the first healthy call, no step up
    await clock.advance(59_000);
    await call(0); // 216 s: 59 s healthy
    await clock.advance(1_000);
    await call(0); // 217 s: 60 s healthy, one step up
    expect(levels).toEqual(["full>high", "high>high", "high>high", "high>high", "high>high", "high>high", "high>full"]);
    expect(events).toEqual([
      { from: "full", to: "high", percentage: 80, reason: "p95 latency 31000 ms > 30000 ms", at: 31_000 },
      { from: "high", to: "full", percentage: 100, reason: "healthy", at: 217_000 },
    ]);
  });

  it("manual control: events in order, a pin holds against triggers until `restore()`", async () => {
    const clock = new TestClock(5_000);
    const layer = createResilience({
      retry: false,
      clock,
      degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0 }),
    });
    const events: unknown[] = [];
    layer.on("degradation", (e) => events.push(e));
    expect(layer.degradation.degrade("GPU queue full")).toEqual({
      name: "high",
      percentage: 80,
      since: 5_000,
      reason: "GPU queue full",
      pinned: false,
    });
    layer.degradation.setLevel("medium", "demo");
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    await clock.advance(1_000);
    const res = await drain(await layer.fetch(`${up.base}/p`));
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "medium", pinned: true });
    expect(layer.degradation.restore()).toMatchObject({ name: "high", reason: "restored", pinned: false });
    await clock.advance(1_000);
    await drain(await layer.fetch(`${up.base}/p`));
    expect(events).toEqual([
      { from: "full", to: "high", percentage: 80, reason: "GPU queue full" },
      { from: "high", to: "medium", percentage: 60, reason: "demo" },
      { from: "medium", to: "high", percentage: 80, reason: "restored" },
      { from: "high", to: "medium", percentage: 60, reason: "error rate 1.00 > 0.1" },
    ]);
    expect(layer.health().degradationLevel).toBe("medium");
  });
});

describe("docs/storycore-mapping.md names", () => {
  it("breaker, chain, statistics, execute (retried, counted in errorRate and the triggers) and health", async () => {
    const clock = new TestClock();
    const system = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 50 },
      fallback: fallback([]),
      degradation: degradation({ ...calm, minSamples: 1 }),
    });
    expect(await system.breaker("hunyuan_video").execute(async () => "ok")).toBe("ok");
    const chain = system.fallback
      .chain<GenerationParams, object>("video_generation")
      .add(
        async () => {
          throw new Error("GPU busy");
        },
        { name: "hunyuan_premium", expectedQuality: 1 },
      )
      .add(async (r) => ({ engine: "wan", ...r }), { name: "wan_standard", expectedQuality: 0.8 });
    expect(system.fallback.chain("video_generation")).toBe(chain);
    const video = await system.execute(() => chain.execute(system.degradation.adjust({ prompt: "p", quality: 1 })), {
      breaker: "video_generation",
    });
    expect(video).toEqual({ engine: "wan", prompt: "p", quality: 1 });
    expect(chain.statistics()).toMatchObject({
      lastSuccessfulFallback: "wan_standard",
      overallSuccessRate: 1,
      fallbacks: { hunyuan_premium: { calls: 1, successes: 0 }, wan_standard: { calls: 1, successes: 1 } },
    });
    // Triggers are evaluated at most once a second: the failing work settles over a second later.
    await clock.advance(1_000);
    let attempts = 0;
    const failing = system.execute(
      async () => {
        attempts++;
        throw new Error("engine down");
      },
      { breaker: "workflow_execution" },
    );
    const outcome = failing.then(
      () => "resolved",
      (error: unknown) => String(error),
    );
    for (let i = 0; i < 5; i++) await clock.advance(1_000);
    expect(await outcome).toMatch(/engine down/);
    expect(attempts).toBe(3);
    expect(system.health().errorRate).toBeGreaterThan(0);
    expect(system.degradation.currentLevel()).toMatchObject({ name: "high" });
    expect(system.degradation.currentLevel().reason).toMatch(/^error rate /);
    expect(Object.keys(system.health().breakers)).toEqual(
      expect.arrayContaining(["hunyuan_video", "video_generation", "workflow_execution"]),
    );
  });
});
