/**
 * Seeded property tests of graceful degradation through `resilience.fetch`
 * (300 seeds each; a failure names its seed).
 *
 * Attacked: random rules (several, overlapping prefixes, body paths nested
 * and through arrays, present or missing; query parameters present, absent,
 * repeated, percent-encoded; headers), random per-level overrides, random
 * bodies (JSON with 64-bit integers, unicode, escaped keys, odd spacing and
 * key order, a byte-order mark; non-JSON text, URLSearchParams, FormData,
 * bytes, ArrayBuffer, Blob, streams, empty), methods, `Request` inputs vs
 * string/URL inputs with init, retries, a fallback chain (with and without
 * `transform`, with a rule matching the spare), manual level changes before
 * and during calls, and the automatic triggers fed by random latencies and
 * failures, on a TestClock, with a fake transport that records what it gets.
 *
 * Defects found: none. Every invariant held on all 300 seeds of both properties:
 * (1) at `full` the transport gets the caller's URL, headers and bytes; (2) only
 * the values the URL's rule names change (64-bit integers, key order, spacing,
 * escaped keys, a BOM, other query parameters and their encoding, other
 * headers kept); (3) each value written is the one `adjust` gives at that level,
 * and `adjust` follows the level table (custom levels included); (4) a
 * content-length sent matches the body, content-type is kept, streams and
 * non-JSON bodies go as they are; (5) info, level header and every retry
 * attempt and fallback endpoint carry the level the call started at, even when
 * the level moves mid-call; (6) triggers step one level at a time, only on a
 * breach / after a whole healthy restoreAfter, one event per change, never on
 * a pinned level; (7) every call settles and no timer is left.
 * Noted, not a defect: a content-length may be dropped when a rule matched but
 * left the bytes as they were (fetch counts the same length again).
 */
import { describe, it } from "vitest";
import { type DegradationRule, degradation, type LevelName, type LevelSettings } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const SEEDS = 300;
const LEVELS: readonly LevelName[] = ["full", "high", "medium", "low", "minimal"];
const TABLE: Record<LevelName, LevelSettings> = {
  full: { percentage: 100, qualityMultiplier: 1, resolutionScale: 1, maxSteps: null, features: ["all"], modelStep: 0 },
  high: {
    percentage: 80,
    qualityMultiplier: 0.9,
    resolutionScale: 0.95,
    maxSteps: null,
    features: ["core", "enhancements"],
    modelStep: 0,
  },
  medium: {
    percentage: 60,
    qualityMultiplier: 0.8,
    resolutionScale: 0.9,
    maxSteps: 30,
    features: ["core"],
    modelStep: 1,
  },
  low: {
    percentage: 40,
    qualityMultiplier: 0.6,
    resolutionScale: 0.8,
    maxSteps: 20,
    features: ["basic"],
    modelStep: 2,
  },
  minimal: {
    percentage: 20,
    qualityMultiplier: 0.4,
    resolutionScale: 0.7,
    maxSteps: 10,
    features: ["essential"],
    modelStep: 2,
  },
};
const LADDER = ["2160p", "1440p", "1080p", "720p", "480p", "360p"];

// ---------------------------------------------------------------- randomness

type Rng = () => number;
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const chance = (r: Rng, p: number): boolean => r() < p;
const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
function shuffle<T>(r: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

/** Runs `prop` for every seed and fails once, naming the failing seeds and the first message. */
async function forSeeds(prop: (seed: number) => Promise<void>): Promise<void> {
  const failures: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    try {
      await prop(seed);
    } catch (error) {
      failures.push(`seed ${seed}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failures.length > 0) {
    throw new Error(`${failures.length}/${SEEDS} seeds failed:\n${failures.slice(0, 8).join("\n---\n")}`);
  }
}

function check(cond: boolean, what: string, detail?: unknown): void {
  if (!cond) throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
}

// ------------------------------------------------------------- JSON template

type Param = "quality" | "resolution" | "steps" | "model" | "features";
const PARAMS: readonly Param[] = ["quality", "resolution", "steps", "model", "features"];

type Node =
  | { t: "o"; entries: { raw: string; key: string; ws: [string, string, string]; v: Node }[]; end: string }
  | { t: "a"; items: { ws: string; v: Node }[]; end: string }
  | { t: "v"; raw: string; param?: Param };

const WS = ["", "", " ", "  ", "\n", "\t", "\r\n  "];
const FILLER_VALUES = [
  "12345678901234567890",
  "-9223372036854775808",
  "9007199254740993",
  "1.0",
  "-0",
  "0.1",
  "1E+2",
  "true",
  "false",
  "null",
  '"héllo wörld"',
  '"\\u00e9\\n\\"x\\\\"',
  '"😀"',
  '"\\ud83d\\ude00"',
  '""',
  "[]",
  "{}",
  "[1 ,2,  3]",
  '{"nested":{"deep":[12345678901234567891]}}',
];
const FILLER_KEYS = ["prompt", "seed", "négatif", "😀", "a b", "", "__proto__", "x", "n2", "Steps", "QUALITY"];
const PARAM_RAW: Record<Param, string[]> = {
  quality: ["1", "1.0", "0.75", "0.5", "1e0", "2", "0.7", '"0.9"', "null"],
  resolution: ['"2160p"', '"1080p"', '"720p"', '"480p"', '"1920x1080"', '"1024x768"', '"1000x700"', '"4k"', "1080"],
  steps: ["50", "25", "8", "100", "5e1", "50.0", '"50"', "31"],
  model: ['"premium"', '"standard"', '"basic"', '"other"', '"pr\\u0065mium"', '"ultra"', '"pro"', "7"],
  features: [
    '["core","enhancements","basic","essential","extra"]',
    '["core"]',
    '["basic","essential"]',
    "[]",
    '"core"',
  ],
};

const ws = (r: Rng): string => pick(r, WS);
const rawKey = (r: Rng, key: string): string =>
  key.length > 0 && chance(r, 0.15)
    ? `"\\u${key.charCodeAt(0).toString(16).padStart(4, "0")}${JSON.stringify(key).slice(2)}`
    : JSON.stringify(key);

function filler(r: Rng, depth: number): Node {
  if (depth < 2 && chance(r, 0.15)) return randomObject(r, depth + 1, int(r, 0, 3));
  if (depth < 2 && chance(r, 0.1)) {
    return {
      t: "a",
      items: Array.from({ length: int(r, 0, 3) }, () => ({ ws: ws(r), v: filler(r, depth + 1) })),
      end: ws(r),
    };
  }
  return { t: "v", raw: pick(r, FILLER_VALUES) };
}
function randomObject(r: Rng, depth: number, n: number): Node & { t: "o" } {
  const o: Node & { t: "o" } = { t: "o", entries: [], end: ws(r) };
  for (let i = 0; i < n; i++) {
    const key = pick(r, FILLER_KEYS);
    if (o.entries.some((e) => e.key === key)) continue;
    o.entries.push({ raw: rawKey(r, key), key, ws: [ws(r), ws(r), ws(r)], v: filler(r, depth) });
  }
  return o;
}

/** Puts a parameter's leaf at a dotted path; false when the path collides with what is there. */
function place(r: Rng, root: Node, path: string, leaf: Node): boolean {
  const segs = path.split(".");
  let cur: Node = root;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const last = i === segs.length - 1;
    const nextNumeric = !last && /^\d+$/.test(segs[i + 1] as string);
    const fresh = (): Node =>
      last ? leaf : nextNumeric ? { t: "a", items: [], end: ws(r) } : { t: "o", entries: [], end: ws(r) };
    if (cur.t === "o") {
      const found = cur.entries.find((e) => e.key === seg);
      if (found) {
        if (last) return false;
        cur = found.v;
        continue;
      }
      const v = fresh();
      cur.entries.splice(int(r, 0, cur.entries.length), 0, {
        raw: rawKey(r, seg),
        key: seg,
        ws: [ws(r), ws(r), ws(r)],
        v,
      });
      cur = v;
    } else if (cur.t === "a") {
      if (!/^\d+$/.test(seg)) return false;
      const idx = Number(seg);
      while (cur.items.length < idx) cur.items.push({ ws: ws(r), v: { t: "v", raw: pick(r, FILLER_VALUES) } });
      if (idx < cur.items.length) {
        const item = cur.items[idx] as { ws: string; v: Node };
        if (last) {
          if (item.v.t !== "v" || item.v.param) return false;
          item.v = leaf;
          return true;
        }
        if (item.v.t === "v") item.v = fresh();
        cur = item.v;
      } else {
        const v = fresh();
        cur.items.push({ ws: ws(r), v });
        cur = v;
      }
    } else {
      return false;
    }
  }
  return true;
}

function emit(n: Node, repl: Map<Node, string>): string {
  if (n.t === "v") return repl.get(n) ?? n.raw;
  if (n.t === "a") return `[${n.items.map((i) => i.ws + emit(i.v, repl)).join(",")}${n.end}]`;
  return `{${n.entries.map((e) => `${e.ws[0]}${e.raw}${e.ws[1]}:${e.ws[2]}${emit(e.v, repl)}`).join(",")}${n.end}}`;
}

/** Every leaf placed at `path` (walking parsed keys), or undefined. */
function leafAt(root: Node, path: string): (Node & { t: "v" }) | undefined {
  let cur: Node | undefined = root;
  for (const seg of path.split(".")) {
    if (!cur) return undefined;
    if (cur.t === "o") cur = cur.entries.find((e) => e.key === seg)?.v;
    else if (cur.t === "a") cur = /^\d+$/.test(seg) ? cur.items[Number(seg)]?.v : undefined;
    else return undefined;
  }
  return cur?.t === "v" ? cur : undefined;
}

// ------------------------------------------------------------------- rules

type Loc = { kind: "body" | "query" | "header"; name: string };
type Rule = { match: string | undefined; params: Partial<Record<Param, Loc>> };

const BODY_PATHS: Record<Param, string[]> = {
  quality: ["quality", "params.quality", "job.settings.quality", "inputs.0.quality"],
  resolution: ["resolution", "params.size", "inputs.1.resolution", "job.settings.res"],
  steps: ["steps", "parameters.num_inference_steps", "inputs.0.steps", "a.b.c.steps"],
  model: ["model", "params.model", "inputs.2.model", "job.engine"],
  features: ["features", "params.features", "job.settings.features"],
};
const QUERY_NAMES: Record<Exclude<Param, "features">, string[]> = {
  quality: ["quality", "q"],
  resolution: ["res", "size"],
  steps: ["steps", "n"],
  model: ["model name", "m"],
};
const HEADER_NAMES: Record<Param, string> = {
  quality: "x-quality",
  resolution: "x-res",
  steps: "x-steps",
  model: "x-model",
  features: "x-features",
};
const MATCHES = [
  undefined,
  "https://gen.example/",
  "https://gen.example/v1",
  "https://gen.example/v1/images",
  "https://other.example/v1",
  "https://spare.example/v9",
];
const URL_BASES = [
  "https://gen.example/v1/images/run",
  "https://gen.example/v1",
  "https://gen.example/v1/jobs",
  "https://gen.example/v1beta/x",
  "https://gen.example/v2/x",
  "https://other.example/v1/y",
  "https://spare.example/v9/z",
  "https://third.example/z",
];

function randomRules(r: Rng): Rule[] | undefined {
  if (chance(r, 0.15)) return undefined;
  if (chance(r, 0.03)) return [];
  // One rule per `match` (a second would never apply: degradation() refuses it).
  const rules = Array.from({ length: int(r, 1, 4) }, () => {
    const params: Partial<Record<Param, Loc>> = {};
    for (const p of PARAMS) {
      if (!chance(r, 0.6)) continue;
      const kind =
        p === "features" ? pick(r, ["body", "body", "header"] as const) : pick(r, ["body", "query", "header"] as const);
      params[p] =
        kind === "body"
          ? { kind, name: pick(r, BODY_PATHS[p]) }
          : kind === "query"
            ? { kind, name: pick(r, QUERY_NAMES[p as Exclude<Param, "features">]) }
            : { kind, name: HEADER_NAMES[p] };
    }
    return { match: pick(r, MATCHES), params };
  });
  return rules.filter((rule, i) => rules.findIndex((other) => other.match === rule.match) === i);
}

function toOption(rule: Rule, r: Rng): DegradationRule {
  const params: DegradationRule["params"] = {};
  for (const [p, loc] of Object.entries(rule.params) as [Param, Loc][]) {
    params[p] =
      loc.kind === "body"
        ? chance(r, 0.5)
          ? loc.name
          : { body: loc.name }
        : loc.kind === "query"
          ? { query: loc.name }
          : { header: loc.name };
  }
  return rule.match === undefined ? { params } : { match: rule.match, params };
}

/** docs/degradation.md: "per URL prefix (`match`, the longest wins …, whole path segments only) or globally". */
function ruleFor(rules: Rule[] | undefined, url: string): Rule | undefined {
  if (rules === undefined) {
    const params: Partial<Record<Param, Loc>> = {};
    for (const p of PARAMS) params[p] = { kind: "body", name: p };
    return { match: undefined, params };
  }
  const u = new URL(url);
  let best: Rule | undefined;
  let bestLen = -1;
  for (const rule of rules) {
    if (rule.match === undefined) continue;
    const m = new URL(rule.match);
    if (m.origin !== u.origin) continue;
    const ok = m.pathname.endsWith("/")
      ? u.pathname.startsWith(m.pathname)
      : u.pathname === m.pathname || u.pathname.startsWith(`${m.pathname}/`);
    if (ok && m.href.length > bestLen) {
      best = rule;
      bestLen = m.href.length;
    }
  }
  return best ?? rules.find((rule) => rule.match === undefined);
}

// ---------------------------------------------------- the documented adjust

const near = (a: unknown, b: number): boolean => typeof a === "number" && Math.abs(a - b) < 1e-9;

/**
 * docs/degradation.md: "`quality` multiplied; `resolution` scaled then snapped down the ladder …,
 * or a `WxH` size scaled and rounded down to a multiple of `sizeMultiple` (8), and left as written
 * at a scale of 1 …; `steps` capped; `model` moved `model step` rungs down each ladder …;
 * `features` … filtered to the level's tiers".
 * Checks what `adjust` gives for one well-typed value; returns a message or undefined.
 */
function docAdjustMismatch(p: Param, v: unknown, got: unknown, s: LevelSettings): string | undefined {
  const bad = `${p} ${JSON.stringify(v)} → ${JSON.stringify(got)} (settings ${JSON.stringify(s)})`;
  if (p === "quality" && typeof v === "number") return near(got, v * s.qualityMultiplier) ? undefined : bad;
  if (p === "steps" && typeof v === "number")
    return got === (s.maxSteps === null ? v : Math.min(v, s.maxSteps)) ? undefined : bad;
  if (p === "model" && typeof v === "string") {
    const i = ["premium", "standard", "basic"].indexOf(v);
    const want = i < 0 ? v : ["premium", "standard", "basic"][Math.min(2, i + s.modelStep)];
    return got === want ? undefined : bad;
  }
  if (p === "resolution" && typeof v === "string") {
    if (s.resolutionScale === 1) return got === v ? undefined : bad;
    const pm = /^(\d+)p$/.exec(v);
    if (pm) {
      const target = Number(pm[1]) * s.resolutionScale;
      const rung = LADDER.find((x) => Number.parseInt(x, 10) <= target + 1e-9);
      if (rung === undefined) return undefined; // below the ladder: not promised
      return got === rung ? undefined : bad;
    }
    const wm = /^(\d+)x(\d+)$/.exec(v);
    if (wm) {
      const f = (n: number) => [
        Math.floor((n * s.resolutionScale) / 8) * 8,
        Math.floor((n * s.resolutionScale + 1e-9) / 8) * 8,
      ];
      const [w1, w2] = f(Number(wm[1]));
      const [h1, h2] = f(Number(wm[2]));
      return [`${w1}x${h1}`, `${w2}x${h2}`, `${w1}x${h2}`, `${w2}x${h1}`].includes(String(got)) ? undefined : bad;
    }
    return undefined;
  }
  if (p === "features" && Array.isArray(v)) {
    const want = s.features.includes("all") ? v : v.filter((f) => s.features.includes(f));
    return JSON.stringify(got) === JSON.stringify(want) ? undefined : bad;
  }
  return undefined;
}

// ------------------------------------------------------------ the request

interface Recorded {
  url: string;
  method: string;
  headers: [string, string][];
  bytes: Uint8Array;
}

async function record(input: unknown, init: RequestInit | undefined): Promise<Recorded> {
  const req = new Request(input as RequestInfo, init);
  const bytes = new Uint8Array(await req.arrayBuffer());
  return { url: req.url, method: req.method, headers: [...req.headers].sort(), bytes };
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { ignoreBOM: true });
const hex = (b: Uint8Array): string => dec.decode(b);

function decodeQ(s: string): string {
  const t = s.replace(/\+/g, " ");
  return t.replace(/(%[0-9a-fA-F]{2})+/g, (m) => {
    try {
      return decodeURIComponent(m);
    } catch {
      return m;
    }
  });
}
const encodeQ = (s: string): string => new URLSearchParams({ a: s }).toString().slice(2);

const QUERY_VALUES: Record<Exclude<Param, "features">, string[]> = {
  quality: ["1", "1.0", "0.5", "0.75", "2", "1%2E0"],
  resolution: ["2160p", "1080p", "720p", "1920x1080", "1080%70", "abc"],
  steps: ["50", "25", "8", "100", "%35%30", "abc"],
  model: ["premium", "standard", "basic", "other", "pre%6Dium"],
};
const QUERY_NAME_SPELLINGS: Record<string, string[]> = {
  quality: ["quality", "qu%61lity"],
  q: ["q", "%71"],
  res: ["res", "r%65s"],
  size: ["size"],
  steps: ["steps", "st%65ps"],
  n: ["n", "%6E"],
  "model name": ["model+name", "model%20name"],
  m: ["m"],
};
const QUERY_FILLERS = [
  "a=1",
  "b=%20x",
  "c=d+e",
  "empty=",
  "flag",
  "x=%E2%9C%93",
  "dup=1",
  "dup=2",
  "z=%2F%3F",
  "stepsX=50",
];
const HEADER_VALUES: Record<Param, string[]> = {
  quality: ["1", "1.0", "0.5", "abc"],
  resolution: ["1080p", "2160p", "1920x1080", "zzz"],
  steps: ["50", "12", "abc"],
  model: ["premium", "standard", "other"],
  features: ["core, enhancements, basic", "core", "essential,basic", ""],
};

/** The parameter value a query or header string stands for, or undefined when none. */
function parseText(p: Param, s: string): unknown {
  if (p === "quality" || p === "steps") return s.trim() === "" || Number.isNaN(Number(s)) ? undefined : Number(s);
  if (p === "features")
    return s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean);
  return s;
}
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

describe("degradation through resilience.fetch (seeded properties)", () => {
  it("rewrites only what the URL's rule names, with the level's values, and reports that level", async () => {
    await forSeeds(async (seed) => {
      const r = mulberry32(seed);
      const clock = new TestClock();
      const rules = randomRules(r);
      const levelsOpt: Partial<Record<LevelName, Partial<LevelSettings>>> = {};
      for (const l of LEVELS) {
        if (!chance(r, 0.25)) continue;
        const o: Partial<LevelSettings> = {};
        if (chance(r, 0.5)) o.qualityMultiplier = pick(r, [0.1, 0.5, 0.85, 1]);
        if (chance(r, 0.5)) o.resolutionScale = pick(r, [0.5, 0.66, 0.9, 1]);
        if (chance(r, 0.5)) o.maxSteps = pick(r, [null, 5, 40]);
        if (chance(r, 0.5)) o.modelStep = pick(r, [0, 1, 3]);
        levelsOpt[l] = o;
      }
      const levelHeader = chance(r, 0.5) ? "x-degradation-level" : undefined;
      const useChain = chance(r, 0.3);
      const transformKind = pick(r, ["none", "identity", "header", "look"] as const);
      const crossOrigin = chance(r, 0.5) ? ["x-degradation-level", "x-model", "x-steps", "x-trace"] : [];
      const seenByTransform: unknown[] = [];
      const failFirst = int(r, 0, 2);
      const received: Recorded[] = [];
      let midCall: (() => void) | undefined;
      const resilience = createResilience({
        clock,
        retry: { maxAttempts: 3, initialDelay: 5, maxDelay: 10, jitter: "none" },
        crossOriginHeaders: crossOrigin,
        fetch: async (input, init) => {
          const rec = await record(input, init);
          received.push(rec);
          if (received.length === 1) midCall?.();
          const host = new URL(rec.url).host;
          if (useChain && host === "gen.example") return new Response("busy", { status: 503 });
          if (received.length <= failFirst) return new Response("busy", { status: 503 });
          return new Response("ok");
        },
        ...(useChain
          ? {
              fallback: fallback([
                {
                  name: "gen",
                  endpoints: [
                    { name: "primary", url: "https://gen.example/v1" },
                    {
                      name: "spare",
                      url: "https://spare.example/v9",
                      ...(transformKind === "none"
                        ? {}
                        : {
                            transform: (req) => {
                              if (transformKind === "header") req.headers.set("x-transformed", "1");
                              if (transformKind === "look") seenByTransform.push(structuredClone(req.body));
                              return req;
                            },
                          }),
                    },
                  ],
                },
              ]),
            }
          : {}),
        degradation: degradation({
          ...(rules === undefined ? {} : { rules: rules.map((x) => toOption(x, r)) }),
          levels: levelsOpt,
          browserSignals: false,
          ...(levelHeader ? { levelHeader } : {}),
        }),
      });
      const dg = resilience.degradation;
      const settings = (l: LevelName): LevelSettings => ({ ...TABLE[l], ...levelsOpt[l] }) as LevelSettings;

      // the level: set, stepped, or left
      const how = pick(r, ["set", "degrade", "none", "set", "set", "degrade"] as const);
      if (how === "set") dg.setLevel(pick(r, [...LEVELS, "medium", "low", "minimal", "high"]));
      if (how === "degrade") for (let i = int(r, 1, 5); i > 0; i--) dg.degrade("test");
      const L0 = dg.levelName();
      check(L0 === dg.currentLevel().name, "levelName and currentLevel agree");

      // adjust agrees with the documented table for every well-typed value
      for (const p of PARAMS) {
        for (const raw of PARAM_RAW[p]) {
          const v = JSON.parse(raw);
          const got = dg.adjust({ [p]: v })[p];
          const m = docAdjustMismatch(p, v, got, settings(L0));
          check(m === undefined, `adjust at ${L0} differs from the docs`, m);
        }
      }
      if (L0 === "full" && !levelsOpt.full)
        check(
          same(dg.adjust({ quality: 1, resolution: "1080p", steps: 50, model: "premium" }), {
            quality: 1,
            resolution: "1080p",
            steps: 50,
            model: "premium",
          }),
          "adjust at full changes nothing",
        );

      // the URL
      const base = pick(r, URL_BASES);
      const rule = ruleFor(rules, base);
      const queryLocs = new Map<string, Param>();
      for (const rl of rules ?? []) {
        for (const [p, loc] of Object.entries(rl.params) as [Param, Loc][])
          if (loc.kind === "query") queryLocs.set(loc.name, p);
      }
      const parts: string[] = [];
      for (const [name, p] of queryLocs) {
        const times = pick(r, [0, 1, 1, 2]);
        for (let i = 0; i < times; i++) {
          parts.push(
            `${pick(r, QUERY_NAME_SPELLINGS[name] ?? [name])}=${pick(r, QUERY_VALUES[p as Exclude<Param, "features">])}`,
          );
        }
      }
      for (let i = int(r, 0, 3); i > 0; i--) parts.push(pick(r, QUERY_FILLERS));
      shuffle(r, parts);
      const url = parts.length > 0 ? `${base}?${parts.join("&")}` : base;
      check(new URL(url).href === url, "generated URL is canonical", url);

      // expected URL: docs "each place of a repeated query parameter is adjusted from its own value"; others "stay as you wrote them"
      const activeQuery = new Map<string, Param>();
      for (const [p, loc] of Object.entries(rule?.params ?? {}) as [Param, Loc][]) {
        if (loc.kind === "query") activeQuery.set(loc.name, p);
      }
      const wantParts = parts.map((part) => {
        const eq = part.indexOf("=");
        const rawName = eq < 0 ? part : part.slice(0, eq);
        const p = activeQuery.get(decodeQ(rawName));
        if (!p || eq < 0 || L0 === "full") return part;
        const v = parseText(p, decodeQ(part.slice(eq + 1)));
        if (v === undefined) return part;
        const a = dg.adjust({ [p]: v })[p];
        return same(a, v) ? part : `${rawName}=${encodeQ(String(a))}`;
      });
      const wantUrl = wantParts.length > 0 ? `${base}?${wantParts.join("&")}` : base;

      // headers
      const method = pick(r, ["POST", "POST", "POST", "PUT", "PUT", "PATCH", "DELETE", "GET", "HEAD"]);
      const hasBody = method !== "GET" && method !== "HEAD";
      const headers: Record<string, string> = {};
      if (chance(r, 0.5)) headers["x-trace"] = "t-1";
      if (chance(r, 0.3)) headers.authorization = "Bearer secret";
      if (chance(r, 0.3)) headers.accept = "application/json";
      if (chance(r, 0.5)) headers["idempotency-key"] = `k-${seed}`;
      for (const p of PARAMS) if (chance(r, 0.4)) headers[HEADER_NAMES[p]] = pick(r, HEADER_VALUES[p]);

      // the body
      type Kind = "json" | "text" | "form" | "formdata" | "empty" | "none";
      const kind: Kind = hasBody
        ? pick(r, [
            "json",
            "json",
            "json",
            "json",
            "json",
            "json",
            "json",
            "text",
            "form",
            "formdata",
            "empty",
            "none",
          ] as const)
        : "none";
      const carrier = pick(r, ["string", "bytes", "arraybuffer", "blob-json", "blob", "stream"] as const);
      const bom = chance(r, 0.08) && carrier !== "string" ? "\uFEFF" : "";
      let root: Node | undefined;
      const paramLeaves: { p: Param; leaf: Node & { t: "v" } }[] = [];
      let jsonText = "";
      if (kind === "json") {
        root = chance(r, 0.08) ? filler(r, 0) : randomObject(r, 0, int(r, 0, 4));
        const paths: { p: Param; path: string }[] = [];
        for (const rl of [...(rules ?? []), ...(rule ? [rule] : [])]) {
          for (const [p, loc] of Object.entries(rl.params) as [Param, Loc][])
            if (loc.kind === "body") paths.push({ p, path: loc.name });
        }
        for (const p of PARAMS) paths.push({ p, path: p });
        for (const { p, path } of shuffle(r, paths)) {
          if (leafAt(root, path) || !chance(r, 0.85)) continue;
          const leaf: Node & { t: "v" } = { t: "v", raw: pick(r, PARAM_RAW[p]), param: p };
          if (place(r, root, path, leaf)) paramLeaves.push({ p, leaf });
        }
        jsonText = bom + ws(r) + emit(root, new Map()) + ws(r);
      }
      const text =
        kind === "json"
          ? jsonText
          : kind === "text"
            ? pick(r, ['{"steps": 50', "steps=50&quality=1", 'not json {"steps":50}', "héllo"])
            : "";
      const makeBody = (): BodyInit | null | undefined => {
        if (kind === "none") return undefined;
        if (kind === "form") return new URLSearchParams("steps=50&quality=1&model=premium");
        if (kind === "formdata") {
          const fd = new FormData();
          fd.set("steps", "50");
          fd.set("payload", '{"steps":50}');
          return fd;
        }
        if (kind === "empty") return "";
        const bytes = enc.encode(text);
        if (carrier === "string") return text;
        if (carrier === "bytes") return bytes;
        if (carrier === "arraybuffer") return bytes.slice().buffer;
        if (carrier === "blob-json") return new Blob([bytes], { type: "application/json" });
        if (carrier === "blob") return new Blob([bytes]);
        return new ReadableStream({
          start(c) {
            c.enqueue(bytes);
            c.close();
          },
        });
      };
      if (kind === "json" || kind === "text") {
        if (chance(r, 0.3)) headers["content-type"] = pick(r, ["application/json", "application/json; charset=utf-8"]);
      }
      const inputKind = pick(r, ["string", "url", "request"] as const);
      const streamed = carrier === "stream" && (kind === "json" || kind === "text") && inputKind !== "request";
      const makeCall = (): [RequestInfo | URL, RequestInit | undefined] => {
        const init: RequestInit & { duplex?: string } = { method, headers: { ...headers } };
        const body = makeBody();
        if (body !== undefined) init.body = body;
        if (carrier === "stream" && body !== undefined && (kind === "json" || kind === "text")) init.duplex = "half";
        if (inputKind === "request") return [new Request(url, init), undefined];
        return [inputKind === "url" ? new URL(url) : url, init];
      };
      const ref = await record(...makeCall());
      const refCl = ref.headers.find(([k]) => k === "content-length");
      if (chance(r, 0.2) && !refCl && hasBody && kind !== "formdata")
        headers["content-length"] = String(ref.bytes.length);
      const refWithCl = await record(...makeCall());

      // expected body: only the values the URL's rule names and the level changes, each written as adjust writes it
      const repl = new Map<Node, string>();
      if (root && L0 !== "full" && !streamed) {
        for (const [p, loc] of Object.entries(rule?.params ?? {}) as [Param, Loc][]) {
          if (loc.kind !== "body") continue;
          const leaf = root.t === "o" ? leafAt(root, loc.name) : undefined;
          if (!leaf) continue;
          const v = JSON.parse(leaf.raw);
          const a = dg.adjust({ [p]: v })[p];
          if (!same(a, v)) repl.set(leaf, JSON.stringify(a));
        }
      }
      const bodyRewritten = repl.size > 0;
      const wantBytes =
        bodyRewritten && root
          ? enc.encode(bom + jsonText.slice(bom.length).replace(emit(root, new Map()), () => emit(root as Node, repl)))
          : refWithCl.bytes;

      // expected headers
      const want = new Map<string, string>(refWithCl.headers);
      if (bodyRewritten) want.delete("content-length");
      if (L0 !== "full") {
        for (const [p, loc] of Object.entries(rule?.params ?? {}) as [Param, Loc][]) {
          if (loc.kind !== "header" || !want.has(loc.name)) continue;
          const v = parseText(p, want.get(loc.name) as string);
          if (v === undefined) continue;
          const a = dg.adjust({ [p]: v })[p];
          if (!same(a, v)) want.set(loc.name, Array.isArray(a) ? a.join(",") : String(a));
        }
      }
      if (levelHeader) want.set(levelHeader, L0);

      // a manual level change while the call runs
      if (chance(r, 0.4)) {
        const op = pick(r, ["degrade", "restore", "set"] as const);
        midCall = () => {
          if (op === "degrade") dg.degrade("mid");
          else if (op === "restore") dg.restore();
          else dg.setLevel(pick(r, LEVELS));
        };
      }

      const events: { from: string; to: string }[] = [];
      const off = resilience.on("degradation", (e) => events.push({ from: e.from, to: e.to }));
      const [input, init] = makeCall();
      let res: Response | undefined;
      let err: unknown;
      try {
        res = await clock.run(resilience.fetch(input as RequestInfo, init));
      } catch (e) {
        err = e;
      }
      off();
      check(err === undefined, "the call resolves", String(err));
      check(received.length >= 1, "the transport got the call");
      if (streamed) check(received.length === 1, "a streamed body goes once", received.length);

      const wantText = hex(wantBytes);
      const norm = (hs: [string, string][], strip: boolean) =>
        hs
          .filter(([k]) => !(strip && k === "content-type" && kind === "formdata"))
          .map(([k, v]) => (k === "x-features" ? [k, JSON.stringify(parseText("features", v))] : [k, v]))
          .sort();
      const wantHeaders = norm([...want], true);
      const chained =
        useChain &&
        new URL(url).host === "gen.example" &&
        (new URL(url).pathname === "/v1" || new URL(url).pathname.startsWith("/v1/"));
      const primary = received.filter((x) => !chained || new URL(x.url).host !== "spare.example");
      const spare = received.filter((x) => chained && new URL(x.url).host === "spare.example");
      for (const [i, got] of primary.entries()) {
        // 1 and 2: docs "At `full` nothing is touched"; "Only the values a rule changes are rewritten: the other bytes of a JSON body … and the other query parameters, stay as you wrote them"
        check(got.url === wantUrl, `attempt ${i + 1}: URL`, { got: got.url, want: wantUrl, L0 });
        check(got.method === method, `attempt ${i + 1}: method`, got.method);
        if (kind === "formdata") {
          const fd = await new Request("https://x/", {
            method: "POST",
            body: got.bytes.slice().buffer as ArrayBuffer,
            headers: { "content-type": got.headers.find(([k]) => k === "content-type")?.[1] ?? "" },
          }).formData();
          check(fd.get("steps") === "50" && fd.get("payload") === '{"steps":50}', `attempt ${i + 1}: form data kept`);
        } else {
          check(hex(got.bytes) === wantText, `attempt ${i + 1}: body (${kind}/${carrier}/${inputKind}, ${L0})`, {
            got: hex(got.bytes),
            want: wantText,
          });
        }
        // 4: docs "a `content-length` that came with the old body … is dropped for fetch to count the new one"
        const cl = got.headers.find(([k]) => k === "content-length");
        check(!cl || Number(cl[1]) === got.bytes.length, `attempt ${i + 1}: content-length matches the body sent`, {
          cl,
          len: got.bytes.length,
        });
        // a content-length may be left for fetch to count (checked above); every other header as expected
        const noCl = (hs: string[][]) => hs.filter(([k]) => k !== "content-length");
        check(
          same(noCl(norm(got.headers, true)), noCl(wantHeaders)),
          `attempt ${i + 1}: headers (${L0}, ${kind}/${carrier}/${inputKind})`,
          { got: norm(got.headers, true), want: wantHeaders },
        );
      }
      if (spare.length > 0) {
        check(chained, "only a chained call reaches the spare");
        // docs "A call that goes down a fallback chain is rewritten once … every endpoint gets that request"
        const spareUrl = `https://spare.example/v9${wantUrl.slice("https://gen.example/v1".length)}`;
        const allowed = new Set([
          "accept",
          "accept-language",
          "content-language",
          "content-type",
          "idempotency-key",
          "user-agent",
          "content-length",
          ...crossOrigin,
        ]);
        const wantSpare = wantHeaders.filter(([k]) => allowed.has(k as string));
        if (transformKind === "header") wantSpare.push(["x-transformed", "1"]);
        wantSpare.sort();
        for (const got of spare) {
          check(got.url === spareUrl, "spare: URL", { got: got.url, want: spareUrl });
          if (kind !== "formdata")
            check(hex(got.bytes) === wantText, "spare: the rewritten body, once", {
              got: hex(got.bytes),
              want: wantText,
            });
          check(
            same(
              norm(got.headers, true).filter(([k]) => k !== "content-length"),
              wantSpare.filter(([k]) => k !== "content-length"),
            ),
            "spare: headers",
            { got: norm(got.headers, true), want: wantSpare },
          );
        }
        if (transformKind === "look" && root?.t === "o" && !streamed) {
          const parsed = JSON.parse(wantText.replace(/^\uFEFF/, ""));
          check(same(seenByTransform[0], parsed), "transform sees the rewritten body", {
            seen: seenByTransform[0],
            want: parsed,
          });
        }
      }
      // 5: docs "its rewritten body, its level header and `getResilienceInfo(res).degradationLevel` all name that level"
      const info = res ? getResilienceInfo(res) : undefined;
      check(info?.degradationLevel === L0, "getResilienceInfo names the level the call started at", {
        info: info?.degradationLevel,
        L0,
      });
      check(resilience.health().degradationLevel === dg.levelName(), "health() names the current level");
      // 6: docs "`degradation` fires on every level change (`from`, `to`, …)"
      let lvl: string = L0;
      for (const e of events) {
        check(e.from === lvl && e.to !== e.from, "events chain from → to", events);
        lvl = e.to;
      }
      check(lvl === dg.levelName(), "the last event names the current level", { events, now: dg.levelName() });
      await res?.body?.cancel();
      // 7: no timer is left
      check(clock.pending() === 0, "no timer is left", clock.pending());
    });
  }, 30_000); // hundreds of seeded runs: seconds of CPU, more on a loaded machine
});

// ------------------------------------------------------------- triggers

/** As forSeeds, every seed at once (each on its own TestClock), so the clocks' real turns overlap. */
async function forSeedsAtOnce(prop: (seed: number) => Promise<void>): Promise<void> {
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: SEEDS }, (_, i) =>
      prop(i + 1).catch((error: unknown) => {
        failures.push(`seed ${i + 1}: ${error instanceof Error ? error.message : String(error)}`);
      }),
    ),
  );
  if (failures.length > 0) {
    failures.sort((a, b) => Number.parseInt(a.slice(5), 10) - Number.parseInt(b.slice(5), 10));
    throw new Error(`${failures.length}/${SEEDS} seeds failed:\n${failures.slice(0, 8).join("\n---\n")}`);
  }
}

interface Sample {
  start: number;
  end: number;
  latency: number;
  failed: boolean;
}

/** (error rate, p95, count) under every reading of the docs' window and p95 the docs leave open. */
function readings(samples: Sample[], now: number, windowMs: number): { err: number; p95: number; n: number }[] {
  const out: { err: number; p95: number; n: number }[] = [];
  for (const by of ["end", "start"] as const) {
    for (const inclusive of [true, false]) {
      const w = samples
        .filter((s) => (inclusive ? s[by] >= now - windowMs : s[by] > now - windowMs) && s.end <= now)
        .slice(-256);
      const n = w.length;
      const err = n === 0 ? 0 : w.filter((s) => s.failed).length / n;
      const sorted = w.map((s) => s.latency).sort((a, b) => a - b);
      if (n === 0) {
        out.push({ err, p95: 0, n });
        continue;
      }
      const rank = sorted[Math.max(0, Math.ceil(0.95 * n) - 1)] as number;
      const lowIdx = sorted[Math.floor(0.95 * (n - 1))] as number;
      const pos = 0.95 * (n - 1);
      const lo = Math.floor(pos);
      const interp =
        (sorted[lo] as number) + ((sorted[Math.min(n - 1, lo + 1)] as number) - (sorted[lo] as number)) * (pos - lo);
      for (const p95 of [rank, lowIdx, interp, sorted[Math.min(n - 1, Math.floor(0.95 * n))] as number])
        out.push({ err, p95, n });
    }
  }
  return out;
}

describe("automatic triggers (seeded property)", () => {
  it("move one level at a time, only as the docs say, with one event per change, never a pinned level, and leave no timer", async () => {
    await forSeedsAtOnce(async (seed) => {
      const r = mulberry32(seed * 7919);
      const clock = new TestClock(1_000_000);
      const minSamples = int(r, 1, 8);
      const stepInterval = pick(r, [0, 2000, 10_000]);
      const restoreAfter = pick(r, [3000, 10_000, 30_000]);
      const windowMs = pick(r, [10_000, 60_000]);
      const thr = pick(r, [0.1, 0.25, 0.5]);
      const rt = pick(r, [1000, 5000]);
      let outcome = { latency: 0, kind: "ok" as "ok" | "503" | "net" };
      const resilience = createResilience({
        clock,
        retry: false,
        breaker: false,
        fetch: async () => {
          const o = outcome;
          await new Promise<void>((resolve) => clock.setTimer(resolve, o.latency));
          if (o.kind === "net") throw new TypeError("fetch failed");
          return new Response(null, { status: o.kind === "ok" ? 200 : 503 });
        },
        degradation: degradation({
          minSamples,
          stepInterval,
          restoreAfter,
          window: windowMs,
          browserSignals: false,
          triggers: { errorRate: thr, responseTime: rt, memoryUsage: 1, cpuUsage: 1 },
        }),
      });
      const dg = resilience.degradation;
      const events: { from: string; to: string; at: number }[] = [];
      resilience.on("degradation", (e) => events.push({ from: e.from, to: e.to, at: clock.now() }));
      const samples: Sample[] = [];
      let lastChange = Number.NEGATIVE_INFINITY; // any change of level or pin
      let lastAutoDown = Number.NEGATIVE_INFINITY;
      let lastAutoUp = Number.NEGATIVE_INFINITY;
      let prevSettle = Number.NEGATIVE_INFINITY;
      const failRates = [pick(r, [0, 0.05, 0.3, 0.7]), pick(r, [0, 0, 0.05, 0.3])];
      const slowRates = [pick(r, [0, 0.1, 0.5]), pick(r, [0, 0, 0.1])];
      const N = 36;
      const idx = (l: string) => LEVELS.indexOf(l as LevelName);
      const verdict = (now: number) => {
        const rs = readings(samples, now, windowMs);
        const breach = rs.map((x) => x.n >= minSamples && (x.err > thr || x.p95 > rt));
        const healthy = rs.map((x) => x.n >= 1 && x.err <= thr / 2 && x.p95 <= 0.8 * rt);
        return {
          breachPossible: breach.some(Boolean),
          breachSure: breach.every(Boolean),
          healthyPossible: healthy.some(Boolean) || rs.some((x) => x.n === 0),
          healthySure: healthy.every(Boolean),
        };
      };
      const history: { at: number; sure: boolean; healthySure: boolean; healthyPossible: boolean }[] = [];
      for (let i = 0; i < N; i++) {
        const phase = i < N / 2 ? 0 : 1;
        // a manual change now and then
        if (chance(r, 0.08)) {
          const before = dg.currentLevel();
          const op = pick(r, ["degrade", "restore", "set"] as const);
          if (op === "degrade") dg.degrade("manual");
          else if (op === "restore") dg.restore();
          else dg.setLevel(pick(r, LEVELS));
          const after = dg.currentLevel();
          if (after.name !== before.name || after.pinned !== before.pinned) lastChange = clock.now();
          // docs: "`setLevel(name)` (pins the level: triggers leave it alone until `restore()`)"
          if (op === "set") check(after.pinned, "setLevel pins");
          if (op === "restore") check(!after.pinned, "restore() unpins");
        }
        await clock.advance(chance(r, 0.2) ? int(r, 0, 999) : int(r, 1000, 4000));
        const slow = chance(r, slowRates[phase] as number);
        outcome = {
          latency: slow
            ? int(r, Math.ceil(rt * 1.2), rt * 3) | 1
            : chance(r, 0.1)
              ? int(r, Math.ceil(rt * 0.85), Math.floor(rt * 0.95)) | 1
              : int(r, 0, Math.floor(rt * 0.5)),
          kind: chance(r, failRates[phase] as number) ? pick(r, ["503", "net"] as const) : "ok",
        };
        const before = dg.currentLevel();
        const start = clock.now();
        const seen = events.length;
        try {
          const res = await clock.run(resilience.fetch("https://api.example/gen"));
          await res.body?.cancel();
        } catch {
          // a network error settles the call too
        }
        const end = clock.now();
        samples.push({ start, end, latency: end - start, failed: outcome.kind !== "ok" });
        const after = dg.currentLevel();
        const fired = events.slice(seen);
        const v = verdict(end);
        const sure = end - prevSettle >= 1000;
        history.push({ at: end, sure, healthySure: v.healthySure, healthyPossible: v.healthyPossible });
        const where = `call ${i} at +${end - 1_000_000} ms (${before.name}→${after.name}, pinned ${before.pinned})`;
        // 6: docs "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason`)"
        check(fired.length === (after.name === before.name ? 0 : 1), `${where}: one event per change`, fired);
        if (fired[0])
          check(fired[0].from === before.name && fired[0].to === after.name, `${where}: event from/to`, fired);
        check(resilience.health().degradationLevel === after.name, `${where}: health() names the level`);
        if (after.name !== before.name) {
          // docs: "A breach steps down one level per `stepInterval`"; "one level at a time"
          check(Math.abs(idx(after.name) - idx(before.name)) === 1, `${where}: one level at a time`);
          check(!before.pinned, `${where}: a pinned level is left alone until restore()`);
          check(end - Math.max(lastAutoDown, lastAutoUp) >= 1000, `${where}: evaluated at most once a second`);
          if (idx(after.name) > idx(before.name)) {
            // docs: "once `minSamples` … calls are in it"; error rate above its threshold or p95 over its
            check(
              v.breachPossible,
              `${where}: steps down only on a breach`,
              readings(samples, end, windowMs).slice(0, 1),
            );
            check(end - lastAutoDown >= stepInterval, `${where}: one step down per stepInterval`, {
              lastAutoDown: lastAutoDown - 1_000_000,
              stepInterval,
            });
            lastAutoDown = end;
          } else {
            // docs: "Stepping up needs the signals to be clearly healthy … for a whole `restoreAfter` …, one level at a time"
            check(
              v.healthyPossible,
              `${where}: steps up only when clearly healthy`,
              readings(samples, end, windowMs).slice(0, 1),
            );
            check(
              end - lastAutoUp >= restoreAfter && end - lastAutoDown >= restoreAfter,
              `${where}: a whole restoreAfter between steps up`,
              { restoreAfter, lastAutoUp: lastAutoUp - 1_000_000, lastAutoDown: lastAutoDown - 1_000_000 },
            );
            const unhealthy = history.filter(
              (h) => h.at >= end - restoreAfter && h.at < end && h.sure && !h.healthyPossible,
            );
            check(
              unhealthy.length === 0,
              `${where}: healthy for the whole restoreAfter`,
              unhealthy.map((h) => h.at - 1_000_000),
            );
            lastAutoUp = end;
          }
          lastChange = end;
        } else if (sure && !before.pinned) {
          // and they do move when the docs say they must
          if (v.breachSure && before.name !== "minimal" && end - lastChange > stepInterval) {
            check(false, `${where}: a breach with nothing in the way steps down`, readings(samples, end, windowMs)[0]);
          }
          const streak = history.filter((h) => h.at > lastChange && h.at >= end - restoreAfter - 1000);
          const startSure = history.some(
            (h) => h.at > lastChange && h.sure && h.healthySure && h.at <= end - restoreAfter,
          );
          if (
            before.name !== "full" &&
            startSure &&
            streak.every((h) => h.healthySure) &&
            history.filter((h) => h.at > lastChange).every((h) => h.healthySure)
          ) {
            check(false, `${where}: healthy for a whole restoreAfter steps up`, {
              restoreAfter,
              lastChange: lastChange - 1_000_000,
            });
          }
        }
        prevSettle = end;
      }
      // 7: docs "no timers, so levels move only while traffic flows"
      check(clock.pending() === 0, "no timer is left", clock.pending());
    });
  }, 30_000); // hundreds of seeded runs: seconds of CPU, more on a loaded machine
});
