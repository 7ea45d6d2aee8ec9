/**
 * Outside-in attack on docs/degradation.md, sentence by sentence, where earlier rounds left gaps: JSON bodies of
 * unusual shape, query parameters repeated and encoded, and every stated trigger number overridden at once.
 * Docs: docs/degradation.md ("The default rule reads the usual parameter names … at the top level of any JSON
 * body; `rules` say where they live instead (a JSON body path such as `\"parameters.num_inference_steps\"`,
 * `{ query: \"q\" }` or `{ header: \"x-model\" }`)", "Only the values a rule changes are rewritten", "the other
 * bytes of a JSON body … stay as you wrote them", "each place of a repeated query parameter is adjusted from its
 * own value", "non-JSON bodies are left alone", "`steps` capped", "`quality` multiplied (to 12 significant
 * digits…)", "`resolution` scaled then snapped down the ladder", "`model` moved `model step` rungs down", "error
 * rate and p95 latency over a rolling `window` … once `minSamples` … calls are in it", "A breach steps down one
 * level per `stepInterval`", "Stepping up needs the signals to be clearly healthy … for a whole `restoreAfter`
 * …, one level at a time", "A call takes the level it finds when it starts: its rewritten body, its level header
 * and `getResilienceInfo(res).degradationLevel` all name that level", "`currentLevel()` → `{ name, percentage,
 * since, reason, pinned }`").
 * How: `createResilience`, `getResilienceInfo` (root), `degradation` (./degradation), `createClient` (./ky) and
 * plain `ky` over `layer.fetch`, `TestClock` (./testing); node:http servers on 127.0.0.1 recording the exact bytes
 * (test/helpers/http-upstream.ts).
 * Paths: string URL, `URL` object, `Request` input, ky client, plain ky over the layer's fetch; levels set with
 * `setLevel`, and reached by the layer's own triggers on a `TestClock`.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none found in the time box.
 *
 * Held (plain `it`):
 * - JSON bodies at `medium` through a string URL, a `URL`, a `Request` and ky (string and bytes): a key spelt with a
 *   unicode escape (`"st\u0065ps"`) is the key `steps` and is rewritten in place, escape kept, a 20-digit seed kept;
 *   of an object given twice (`parameters` twice) only the last (JSON.parse's) is edited; an array index path
 *   (`jobs.1.steps`) edits that element only; a path to an array's `length` (an own property of the parsed array)
 *   edits nothing; a 64-bit integer at the path itself is capped to 30; `1E0` → 0.8 while `3e1` (30, kept) stays
 *   as written; quotes, brackets and `\\` in strings before the target, and spacing around `:`, kept; a path
 *   through a number or `null` edits nothing.
 * - Query and header rules at `minimal` through a string URL, a `URL`, a `Request`, the ky client and plain ky:
 *   `st%65ps` read as `steps` and adjusted with its spelling kept, each place of `steps` adjusted from its own value
 *   (`5` kept, `1e2` and `%2050` to 10), `STEPS` (another name), `a%2Fb` and a bare `flag` untouched, `q=1.0` → 0.4
 *   and `q=.5` → 0.2, `1080P` → `720p`, `2160p` → `1440p`, header `x-model: premium` → `basic`.
 * - A form body (`URLSearchParams`, or a form string) is sent as written; the level header still names the level.
 * - Triggers with every number overridden (`window` 10 s, `minSamples` 5, `stepInterval` 3 s, `restoreAfter` 20 s):
 *   8 failing calls (one a second) then good ones step down at 4, 7, 10, 13 s and up at 38 and 58 s (the last
 *   failure leaves the window at 18 s); each `degradation` event `{ from, to, percentage, reason }` agrees, inside
 *   the listener, with `health().degradationLevel`, `debugInfo().degradation` and `currentLevel()` (`since` the
 *   event's time); each call's body, level header and `degradationLevel` name the level it started at.
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();

serveDuringFile(a);

type Level = "full" | "high" | "medium" | "low" | "minimal";

function layerAt(level: Level, opts: DegradationOptions = {}, extra: Partial<ResilienceOptions> = {}) {
  const layer = createResilience({
    retry: false,
    breaker: false,
    ...extra,
    degradation: degradation({ browserSignals: false, levelHeader: "x-level", ...opts }),
  });
  if (level !== "full") layer.degradation.setLevel(level);
  return layer;
}

const json = { "content-type": "application/json" };

describe("JSON bodies of unusual shape, rewritten only where a rule points", () => {
  const cases: Array<[string, DegradationOptions["rules"], string, string]> = [
    [
      "unicode-escaped key",
      undefined,
      '{"st\\u0065ps":50,"seed":18446744073709551615}',
      '{"st\\u0065ps":30,"seed":18446744073709551615}',
    ],
    [
      "nested duplicate",
      [{ params: { steps: "parameters.steps" } }],
      '{"parameters":{"steps":50},"parameters":{"steps":45}}',
      '{"parameters":{"steps":50},"parameters":{"steps":30}}',
    ],
    [
      "array index",
      [{ params: { steps: "jobs.1.steps" } }],
      '{"jobs":[{"steps":50},{"steps":60}]}',
      '{"jobs":[{"steps":50},{"steps":30}]}',
    ],
    [
      "array length path",
      [{ params: { quality: "p.length", steps: "q.length" } }],
      '{"p":[1,2],"q":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]}',
      '{"p":[1,2],"q":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]}',
    ],
    ["64-bit at the path", undefined, '{"steps":18446744073709551615}', '{"steps":30}'],
    ["exponent quality", undefined, '{"quality":1E0,"steps":3e1}', '{"quality":0.8,"steps":3e1}'],
    [
      "escapes before",
      undefined,
      '{"p":"\\"steps\\":50 } ] [","a\\\\":"x","l":["]","}"],"steps" :\n 50}',
      '{"p":"\\"steps\\":50 } ] [","a\\\\":"x","l":["]","}"],"steps" :\n 30}',
    ],
    [
      "missing nested",
      [{ params: { steps: "parameters.steps" } }],
      '{"parameters":5,"steps":50}',
      '{"parameters":5,"steps":50}',
    ],
    ["null mid-path", [{ params: { steps: "a.b.c" } }], '{"a":{"b":null},"steps":50}', '{"a":{"b":null},"steps":50}'],
  ];
  for (const [name, rules, sent, want] of cases) {
    it(name, async () => {
      const layer = layerAt("medium", rules ? { rules } : {});
      await layer.fetch(`${a.base}/s`, { method: "POST", headers: json, body: sent });
      await layer.fetch(new URL(`${a.base}/u`), {
        method: "POST",
        headers: json,
        body: new TextEncoder().encode(sent),
      });
      await layer.fetch(new Request(`${a.base}/r`, { method: "POST", headers: json, body: sent }));
      await createClient({ resilience: layer }).post(`${a.base}/k`, { body: sent, headers: json });
      expect(a.hits.map((h) => h.body)).toEqual([want, want, want, want]);
    });
  }
});

describe("triggers with every stated number overridden", () => {
  it("window 10 s, minSamples 5, stepInterval 3 s, restoreAfter 20 s", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({
        browserSignals: false,
        levelHeader: "x-level",
        triggers: { cpuUsage: 1 },
        window: 10_000,
        minSamples: 5,
        stepInterval: 3_000,
        restoreAfter: 20_000,
      }),
    });
    const seen: string[] = [];
    layer.on("degradation", (e) => {
      const h = layer.health();
      const d = layer.debugInfo();
      const c = layer.degradation.currentLevel();
      seen.push(
        `${clock.now()} ${e.from}>${e.to} ${e.percentage} ${e.reason} | ${h.degradationLevel} ${d.degradation?.name} ${d.degradation?.percentage} ${c.since} ${c.reason}`,
      );
    });
    a.on((hit) => {
      hit.res.statusCode = hit.path.startsWith("/bad") ? 503 : 200;
      hit.res.end("x");
    });
    const levels: string[] = [];
    for (let t = 0; t <= 60_000; t += 1000) {
      const res = await layer.fetch(`${a.base}/${t < 8000 ? "bad" : "good"}`, {
        method: "POST",
        headers: json,
        body: '{"steps":50}',
      });
      levels.push(getResilienceInfo(res)?.degradationLevel ?? "?");
      await clock.advance(1000);
    }
    // Failures at 0…7 s (one a second): the 5th (t = 4 s) has minSamples, then one step per 3 s while the
    // window still holds failures; the last failure leaves the 10 s window at 18 s, 20 s of health lift one level.
    expect(seen).toEqual([
      "4000 full>high 80 error rate 1.00 > 0.1 | high high 80 4000 error rate 1.00 > 0.1",
      "7000 high>medium 60 error rate 1.00 > 0.1 | medium medium 60 7000 error rate 1.00 > 0.1",
      "10000 medium>low 40 error rate 0.73 > 0.1 | low low 40 10000 error rate 0.73 > 0.1",
      "13000 low>minimal 20 error rate 0.45 > 0.1 | minimal minimal 20 13000 error rate 0.45 > 0.1",
      "38000 minimal>low 40 healthy | low low 40 38000 healthy",
      "58000 low>medium 60 healthy | medium medium 60 58000 healthy",
    ]);
    // Each call went at the level it found: the one that trips goes at the level before.
    const steps: Record<string, string> = { full: "50", high: "50", medium: "30", low: "20", minimal: "10" };
    const want = (t: number): string =>
      t <= 4000
        ? "full"
        : t <= 7000
          ? "high"
          : t <= 10_000
            ? "medium"
            : t <= 13_000
              ? "low"
              : t <= 38_000
                ? "minimal"
                : t <= 58_000
                  ? "low"
                  : "medium";
    const expected = Array.from({ length: 61 }, (_, i) => want(i * 1000));
    expect(levels).toEqual(expected);
    expect(a.hits.map((h) => `${h.headers["x-level"]}:${h.body}`)).toEqual(
      expected.map((l) => `${l}:{"steps":${steps[l]}}`),
    );
  });
});

describe("query, header and form bodies", () => {
  it("query parameters repeated and encoded, and a header, adjusted place by place at minimal", async () => {
    const rules = [
      {
        params: {
          steps: { query: "steps" },
          quality: { query: "q" },
          model: { header: "x-model" },
          resolution: { query: "res" },
        },
      },
    ];
    const layer = layerAt("minimal", { rules });
    const q = "?st%65ps=50&steps=5&STEPS=50&x=a%2Fb&steps=1e2&flag&q=1.0&q=.5&res=1080P&res=2160p&steps=%2050";
    await layer.fetch(`${a.base}/s${q}`, { headers: { "x-model": "premium" } });
    await layer.fetch(new URL(`${a.base}/u${q}`), { headers: { "x-model": "premium" } });
    await layer.fetch(new Request(`${a.base}/r${q}`, { headers: { "x-model": "premium" } }));
    await createClient({ resilience: layer }).get(`${a.base}/k${q}`, { headers: { "x-model": "premium" } });
    await ky.get(`${a.base}/p${q}`, { fetch: layer.fetch, retry: 0, headers: { "x-model": "premium" } });
    expect(a.hits.map((h) => `${h.path} ${h.headers["x-model"]}`)).toEqual(
      ["s", "u", "r", "k", "p"].map(
        (p) => `/${p}?st%65ps=10&steps=5&STEPS=50&x=a%2Fb&steps=10&flag&q=0.4&q=0.2&res=720p&res=1440p&steps=10 basic`,
      ),
    );
  });
  it("a form body is left alone", async () => {
    const layer = layerAt("minimal");
    await layer.fetch(`${a.base}/f`, { method: "POST", body: new URLSearchParams({ steps: "50", quality: "1" }) });
    await layer.fetch(`${a.base}/f`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "steps=50",
    });
    expect(a.hits.map((h) => h.body)).toEqual(["steps=50&quality=1", "steps=50"]);
    expect(a.hits.map((h) => h.headers["x-level"])).toEqual(["minimal", "minimal"]);
  });
});
