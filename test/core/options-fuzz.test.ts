/**
 * A seeded fuzz of OPTIONS across every public entry that takes them:
 * `createResilience`, `createClient({ resilience })` (./ky),
 * `resilientProxy({ routes, resilience })` (./cloudflare), `fallback([…])`,
 * `degradation({…})`, `retry(fn, options)`, `new CircuitBreaker`,
 * `new RetryBudget`, `new Bulkhead`, `new FallbackChain` (./policies), the
 * stores (`memoryStore`, `kvStore`, `durableObjectStore`) and the testing
 * kit's fault builders and the level machine's `nextLevel`.
 *
 * Each case starts from a valid, documented configuration and applies one
 * random mutation: a wrong type (a numeric string, NaN, ±Infinity, -1, 0,
 * 1e308, a fraction, a BigInt, a symbol, a function, an array, null, a class
 * instance, a Proxy, a frozen object, an object with a prototype holding an
 * enumerable key, a getter that throws), a missing required key, a misspelt
 * key, an extra key (a URL with a key as its name too), a huge array, a
 * string holding `https://user:pw@h/?key=SECRET`, an empty string, a
 * duplicate name, or a number exactly at / just past a documented bound.
 * For every case:
 *  1. the entry returns, or throws synchronously a `ConfigError` (`retry(fn)`
 *     rejects with one before `fn` runs, as docs/retry.md says; the stores
 *     and the kit throw the `TypeError` docs/testing.md documents) whose
 *     `path` names the mutated option or its nearest parent (or a child of
 *     it), whose message says "expected … received …" or names the unknown
 *     option, and never holds "SECRET" or "pw"; a value that the docs' rule
 *     (our own oracle, written from docs/options.md and the rule tables'
 *     documented bounds) calls valid is accepted, and an invalid one refused;
 *     a getter that throws may pass its own error up (it is the caller's own
 *     code running), and nothing else;
 *  2. when it returns, a call through it on a stub `fetch` and a TestClock
 *     (a 200, then a 503) answers a Response or a library error (never a
 *     TypeError), sends no more attempts than `retry.maxAttempts`, leaves no
 *     timer pending on the clock and no unhandled rejection;
 *  3. the same mutation gives the same outcome (accepted, or the same
 *     error name, path and message) through createResilience, createClient's
 *     `resilience` and resilientProxy's `resilience`.
 * A failing case prints its seed and case number: rerun with FUZZ_SEED=….
 * Each defect found was first pinned below by its own `it.fails` (the
 * promised behaviour, asserted) on the code it was written against, its
 * shape kept out of the fuzz; all ten are fixed since, the tests are plain
 * `it`, and the fuzz draws their shapes again where it can (a misspelt
 * FallbackChain option, a key in a store's refused value, a degradation
 * location's wrong key, a maxAttempts past 2^53).
 * Judged as holding, not defects: a getter that throws passes its own error
 * up (the caller's code); the stores and the kit compare with `>=`, so a
 * value JavaScript coerces (null, "", true, a BigInt) passes as its number
 * (they document no stricter rule); a `breaker.key` returning no string
 * fails the call with a TypeError naming it (a return value cannot be judged
 * before a call). FUZZ_DEBUG=1 prints each accepted resilience case.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, isResilienceError, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  Bulkhead,
  CircuitBreaker,
  FallbackChain,
  initialLevelState,
  nextLevel,
  RetryBudget,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/clock.ts";
import { flaky, latency, networkError, status } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x13c0ffee);
const SECRET_URL = "https://user:pw@h/?key=SECRET";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)] as T;

/** The error a throwing getter throws: the caller's own code, allowed to pass up as it is. */
class GetterBoom extends Error {
  override name = "GetterBoom";
}
class Opaque {
  x = 1;
}

/** The weird values, made fresh for each case (a Proxy or a frozen object is not shared). */
function weird(rng: Rng): { label: string; value: unknown } {
  const values: Array<[string, () => unknown]> = [
    ["numeric string", () => "3"],
    ["NaN", () => Number.NaN],
    ["Infinity", () => Number.POSITIVE_INFINITY],
    ["-Infinity", () => Number.NEGATIVE_INFINITY],
    ["-1", () => -1],
    ["0", () => 0],
    ["1e308", () => 1e308],
    ["2.5", () => 2.5],
    ["bigint", () => 10n],
    ["symbol", () => Symbol("SECRET")],
    ["function", () => () => false],
    ["empty array", () => []],
    ["array", () => [1, "x"]],
    ["null", () => null],
    ["class instance", () => new Opaque()],
    ["proxy", () => new Proxy({}, {})],
    ["frozen", () => Object.freeze({})],
    ["prototype with a key", () => Object.create({ inherited: 1 })],
    ["secret url", () => SECRET_URL],
    ["empty string", () => ""],
    ["true", () => true],
    ["date", () => new Date(0)],
  ];
  const [label, make] = pick(rng, values);
  return { label, value: make() };
}

// ---------------------------------------------------------------------------
// Oracles: what the docs call valid, leaf by leaf.

type Valid = (v: unknown) => boolean;
const num =
  (min: number, opts: { excl?: boolean; max?: number; int?: boolean } = {}): Valid =>
  (v) =>
    typeof v === "number" &&
    Number.isFinite(v) &&
    (opts.int ? Number.isSafeInteger(v) : true) &&
    (opts.excl ? v > min : v >= min) &&
    (opts.max === undefined || v <= opts.max);
const fn: Valid = (v) => typeof v === "function";
const bool: Valid = (v) => typeof v === "boolean";
const oneOf =
  (...of: unknown[]): Valid =>
  (v) =>
    of.includes(v);
const strPlus: Valid = (v) => typeof v === "string" && v.length > 0;
const headerName: Valid = (v) => typeof v === "string" && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v);

/** The documented bounds: [path, oracle, bound values to try]. */
interface Leaf {
  valid: Valid;
  /** Values at and just past the documented bounds. */
  bounds?: unknown[];
}
const intMin = (min: number, max?: number): Leaf => ({
  valid: num(min, { int: true, ...(max === undefined ? {} : { max }) }),
  bounds: [min, min - 1, min - 0.001, min + 0.5, ...(max === undefined ? [] : [max, max + 1])],
});
const numMin = (min: number, max?: number): Leaf => ({
  valid: num(min, max === undefined ? {} : { max }),
  bounds: [min, min - 1e-9, min - 1, ...(max === undefined ? [1e308] : [max, max + 1e-9])],
});
const numAbove = (min: number, max?: number): Leaf => ({
  valid: num(min, { excl: true, ...(max === undefined ? {} : { max }) }),
  bounds: [min, min + 1e-9, ...(max === undefined ? [] : [max, max + 1e-9])],
});

/** docs/options.md, row by row (the bounds as `retry.maxAttempts: expected a value >= 1` words them). */
const resilienceLeaves: Record<string, Leaf> = {
  "retry.maxAttempts": intMin(1),
  "retry.initialDelay": numMin(0),
  "retry.maxDelay": numMin(0),
  "retry.exponentialBase": numMin(1),
  "retry.jitter": { valid: oneOf("full", "equal", "decorrelated", "none") },
  "retry.retryOn.statuses.0": intMin(100, 599),
  "retry.retryOn.methods.0": { valid: strPlus },
  "retry.retryOn.error": { valid: fn },
  "retry.maxRetryAfter": numMin(0),
  "retry.idempotencyKey": { valid: bool },
  "budget.ratio": numMin(0),
  "budget.minPerSecond": numMin(0),
  "timeout.attempt": numAbove(0, 2_147_483_647),
  "timeout.total": numAbove(0),
  "breaker.failureThreshold": intMin(1),
  "breaker.successThreshold": intMin(1),
  "breaker.timeout": numMin(0),
  "breaker.halfOpenMaxCalls": intMin(1),
  "breaker.timeWindow": numAbove(0),
  "breaker.probeTimeout": numAbove(0),
  "breaker.isFailure": { valid: fn },
  "breaker.failureRate": numAbove(0, 1),
  "breaker.minimumCalls": intMin(1),
  "breaker.key": { valid: fn },
  "breaker.maxHosts": intMin(1),
  "bulkhead.maxConcurrent": intMin(1),
  "bulkhead.maxQueue": intMin(0),
  maxReplayBytes: intMin(0),
  "crossOriginHeaders.0": { valid: headerName },
  redirects: { valid: oneOf("library", "platform") },
  random: { valid: fn },
};

type Obj = Record<string, unknown>;

/** A deep copy of plain data (functions and class instances kept as they are). */
function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[k] = clone(x);
    return out as T;
  }
  return v;
}

/** Every path in `v` (objects and arrays walked), with the value there. */
function pathsOf(v: unknown, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  if (v && typeof v === "object" && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype)) {
    for (const k of Object.keys(v)) {
      const p = [...prefix, k];
      out.push(p);
      out.push(...pathsOf((v as Obj)[k], p));
    }
  }
  return out;
}

function parentOf(root: Obj, path: string[]): Obj {
  let cur: unknown = root;
  for (const k of path.slice(0, -1)) cur = (cur as Obj)[k];
  return cur as Obj;
}

function misspelt(rng: Rng, key: string): string {
  if (/^\d+$/.test(key)) return `${key}x`;
  const variants = [
    key.length > 2 ? key.slice(0, 1) + key.slice(2, 3) + key.slice(1, 2) + key.slice(3) : `${key}s`,
    key.toLowerCase() === key ? key.toUpperCase() : key.toLowerCase(),
    `${key}s`,
    key.slice(0, -1),
  ];
  const out = pick(rng, variants);
  return out === key || out === "" ? `${key}_` : out;
}

interface Mutation {
  /** The option mutated, as a ConfigError path would name it (root `""`). */
  path: string[];
  label: string;
  /** The oracle's verdict when it has one: true valid, false refused. */
  expectValid?: boolean | undefined;
  /** The path the error must name exactly, when the oracle knows it. */
  expectPath?: string;
  getter?: boolean;
}

/**
 * One random mutation of `config`, in place. `leaves` is the oracle (paths
 * with `.`); `required` lists paths that must be present; `skip` a predicate
 * for shapes kept out of the fuzz (each pinned by a test below).
 */
function mutate(
  rng: Rng,
  config: Obj,
  leaves: Record<string, Leaf>,
  required: readonly string[],
  skip: (path: string[], value: unknown) => boolean = () => false,
): Mutation {
  const paths = pathsOf(config);
  const path = pick(rng, paths);
  const key = path[path.length - 1] as string;
  const parent = parentOf(config, path);
  const dotted = path.join(".");
  const leaf = leaves[dotted] ?? leaves[dotted.replace(/\.\d+$/, ".0")];
  const op = pick(rng, ["weird", "weird", "weird", "bound", "delete", "misspell", "extra", "getter"] as const);
  const isArray = Array.isArray(parent);
  if (op === "bound" && leaf?.bounds) {
    const value = pick(rng, leaf.bounds);
    parent[key] = value;
    return { path, label: `bound ${String(value)}`, expectValid: leaf.valid(value), expectPath: dotted };
  }
  if (op === "delete" && !isArray) {
    delete parent[key];
    const need = required.includes(dotted);
    return need
      ? { path, label: "missing required", expectValid: false, expectPath: dotted }
      : { path, label: "deleted", expectValid: true };
  }
  if (op === "misspell" && !isArray) {
    const value = parent[key];
    delete parent[key];
    const wrong = misspelt(rng, key);
    parent[wrong] = value;
    return { path: path.slice(0, -1), label: `misspelt ${key} as ${wrong}`, expectValid: false };
  }
  if (op === "extra" && !isArray && !skip(path, undefined)) {
    const name = rng() < 0.5 ? SECRET_URL : "extraOption";
    parent[name] = 1;
    return {
      path: path.slice(0, -1),
      label: `extra key ${name === SECRET_URL ? "(a URL with a key)" : name}`,
      expectValid: false,
      expectPath: path.slice(0, -1).join("."),
    };
  }
  if (op === "getter" && !isArray) {
    Object.defineProperty(parent, key, {
      enumerable: true,
      configurable: true,
      get() {
        throw new GetterBoom("getter boom");
      },
    });
    return { path, label: "throwing getter", getter: true };
  }
  const { label, value } = weird(rng);
  if (skip(path, value)) return { path, label: "skipped (pinned below)", expectValid: true };
  parent[key] = value;
  if (leaf) return { path, label, expectValid: leaf.valid(value), expectPath: dotted };
  return { path, label };
}

// ---------------------------------------------------------------------------
// Checking an outcome.

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function attempt(make: () => unknown): Outcome {
  try {
    return { ok: true, value: make() };
  } catch (error) {
    return { ok: false, error };
  }
}

function signature(o: Outcome): string {
  if (o.ok) return "accepted";
  const e = o.error as { name?: string; path?: string; message?: string };
  return `${e.name} | ${e.path} | ${e.message}`;
}

/**
 * `createResilience`'s outcome as the ky client and the proxy report it:
 * a `ConfigError`'s paths under `resilience`, as their callers wrote them.
 */
function underResilience(o: Outcome): string {
  if (o.ok) return signature(o);
  const e = o.error as { name?: string; path?: string; message?: string };
  if (e.name !== "ConfigError") return signature(o);
  const path = (p: string) => (p === "options" ? "resilience" : `resilience.${p}`);
  // Each issue of the message starts with its path (issues are joined by "; ").
  const message = (e.message ?? "").replace(
    /(^|; )([^\s;:]+): /g,
    (_all, lead: string, p: string) => `${lead}${path(p)}: `,
  );
  return `${e.name} | ${path(e.path ?? "")} | ${message}`;
}

const related = (reported: string, expected: string): boolean =>
  reported === expected ||
  expected.startsWith(`${reported}.`) ||
  reported.startsWith(`${expected}.`) ||
  // A union (`retry: false | {…}`) reports the option itself for a wrong value inside it.
  reported === "" ||
  reported === "options";

let failures: string[] = [];
function report(entry: string, n: number, m: Mutation, problem: string): void {
  failures.push(`seed ${SEED} case ${entry}#${n} [${m.label} at ${m.path.join(".") || "(root)"}]: ${problem}`);
}

/** Property 1 for an entry whose errors are ConfigErrors under `root`. */
function checkConfigOutcome(
  entry: string,
  n: number,
  m: Mutation,
  o: Outcome,
  root: string,
  allowTypeError = false,
): void {
  const full = (p: string[] | string) => [root, ...(typeof p === "string" ? [p] : p)].filter(Boolean).join(".");
  if (o.ok) {
    if (m.expectValid === false) report(entry, n, m, "accepted a value the docs refuse");
    return;
  }
  const error = o.error as { name?: string; path?: string; message?: string };
  if (m.getter && o.error instanceof GetterBoom) return;
  const message = String(error?.message);
  if (/SECRET|pw/.test(message)) report(entry, n, m, `message quotes a secret: ${message}`);
  if (error instanceof ConfigError) {
    if (/SECRET|pw/.test(error.path)) report(entry, n, m, `path quotes a secret: ${error.path}`);
    if (m.expectValid === true) report(entry, n, m, `refused a valid value: ${message}`);
    const expected = m.expectPath === undefined ? full(m.path) : full(m.expectPath);
    if (!related(error.path, expected) && !related(error.path.replace(/^options$/, root), expected))
      report(entry, n, m, `path ${error.path} does not name ${expected}: ${message}`);
    if (!/expected .+, received |unknown options? |needs /.test(message))
      report(entry, n, m, `message does not say what was expected and received: ${message}`);
    return;
  }
  if (allowTypeError && error instanceof TypeError) {
    if (m.expectValid === true) report(entry, n, m, `refused a valid value: ${message}`);
    return;
  }
  report(entry, n, m, `threw ${error?.name}: ${message}`);
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
});

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Property 2: a 200, then a 503, through the layer; no leftovers. */
async function callThrough(
  entry: string,
  n: number,
  m: Mutation,
  build: (fetch: typeof globalThis.fetch, clock: TestClock) => { fetch: (url: string) => Promise<Response> },
  url: string,
  maxAttempts: number,
): Promise<void> {
  const clock = new TestClock();
  let answer = 200;
  const rec = recordingFetch(() => new Response(answer === 200 ? "{}" : "down", { status: answer }));
  const before = unhandled.length;
  let layer: { fetch: (url: string) => Promise<Response> };
  try {
    layer = build(rec.fetch as typeof globalThis.fetch, clock);
  } catch (error) {
    report(entry, n, m, `accepted, then failed building the layer: ${String(error)}`);
    return;
  }
  for (const status of [200, 503]) {
    answer = status;
    const sentBefore = rec.sent.length;
    const out = await clock.run(layer.fetch(url)).then(
      (response) => response,
      (error: unknown) => error,
    );
    if (out instanceof Response) {
      await out.arrayBuffer().catch(() => undefined);
      if (status === 200 && out.status !== 200) report(entry, n, m, `a 200 answered ${out.status}`);
    } else if (!isResilienceError(out)) {
      report(entry, n, m, `a ${status} call rejected with ${(out as Error)?.name}: ${(out as Error)?.message}`);
    }
    const sends = rec.sent.length - sentBefore;
    if (status === 200 && out instanceof Response && sends !== 1) report(entry, n, m, `a 200 took ${sends} sends`);
    if (sends > maxAttempts) report(entry, n, m, `${sends} sends, more than maxAttempts ${maxAttempts}`);
  }
  await turn();
  if (clock.pending() !== 0) report(entry, n, m, `${clock.pending()} timer(s) left on the clock`);
  if (unhandled.length > before) report(entry, n, m, `unhandled rejection: ${String(unhandled[before])}`);
}

// ---------------------------------------------------------------------------
// Base configurations: valid and documented.

const resilienceBase = (rng: Rng): Obj => {
  const all: Obj = {
    retry: {
      maxAttempts: 3,
      initialDelay: 10,
      maxDelay: 100,
      exponentialBase: 2,
      jitter: "full",
      retryOn: { statuses: [429, 503], methods: ["GET", "PUT"], error: () => true },
      maxRetryAfter: 1_000,
      idempotencyKey: false,
    },
    budget: { ratio: 0.1, minPerSecond: 10 },
    timeout: { attempt: 1_000, total: 5_000 },
    breaker: {
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      isFailure: () => true,
      failureRate: 0.5,
      minimumCalls: 100,
      key: (url: URL) => url.host,
      maxHosts: 1_000,
    },
    bulkhead: { maxConcurrent: 4, maxQueue: 2 },
    maxReplayBytes: 1_024,
    crossOriginHeaders: ["x-trace"],
    redirects: "library",
    random: () => 0.5,
  };
  const out: Obj = {};
  for (const [k, v] of Object.entries(all)) if (rng() < 0.6) out[k] = v;
  if (Object.keys(out).length === 0) out.retry = all.retry;
  return clone(out);
};

const acceptAll = {
  "~standard": { version: 1, vendor: "fuzz", validate: (value: unknown) => ({ value }) },
};

const chainBase = (): Obj[] =>
  clone([
    {
      name: "gen",
      order: "fixed",
      hedge: { delay: 50 },
      endpoints: [
        {
          name: "primary",
          url: "https://a.example/v1",
          expectedQuality: 1,
          headers: { "x-key": "k" },
          transform: (r: Request) => r,
          validate: acceptAll,
        },
        { name: "spare", url: "https://b.example/v1", expectedQuality: 0.8 },
        { name: "canned", respond: () => Response.json({ canned: true }), expectedQuality: 0.5 },
      ],
    },
  ]);

const isHttpUrl = (v: unknown): boolean => {
  if (typeof v !== "string" || !URL.canParse(v) || !/^https?:/i.test(v) || v.includes("#")) return false;
  const u = new URL(v);
  return u.username === "" && u.password === "";
};
const fallbackLeaves: Record<string, Leaf> = {
  "0.name": { valid: strPlus },
  "0.order": { valid: oneOf("fixed", "adaptive") },
  "0.hedge.delay": numMin(0),
  "0.endpoints.0.name": { valid: strPlus },
  "0.endpoints.1.name": { valid: strPlus },
  "0.endpoints.0.url": { valid: isHttpUrl },
  "0.endpoints.1.url": { valid: isHttpUrl },
  "0.endpoints.0.expectedQuality": numMin(0, 1),
  "0.endpoints.1.expectedQuality": numMin(0, 1),
  "0.endpoints.2.expectedQuality": numMin(0, 1),
  "0.endpoints.0.transform": { valid: fn },
  "0.endpoints.2.respond": { valid: fn },
  "0.endpoints.0.headers.x-key": {
    valid: (v) => typeof v === "string" && !/[\0\r\n\u0100-\uffff]/.test(v),
  },
};

const degradationBase = (): Obj =>
  clone({
    levels: { medium: { percentage: 60, qualityMultiplier: 0.6, resolutionScale: 0.75, maxSteps: 30, modelStep: 1 } },
    triggers: { errorRate: 0.2, responseTime: 10_000, memoryUsage: 0.8, cpuUsage: 0.9 },
    rules: [{ match: "/v1/", params: { steps: { body: "steps" }, resolution: { query: "size" } } }],
    resolutions: ["1080p", "720p"],
    sizeMultiple: 16,
    models: [["large", "small"]],
    window: 30_000,
    minSamples: 10,
    stepInterval: 5_000,
    restoreAfter: 30_000,
    levelHeader: "x-degradation-level",
    browserSignals: false,
  });
const degradationLeaves: Record<string, Leaf> = {
  "levels.medium.percentage": numMin(0, 100),
  "levels.medium.qualityMultiplier": numAbove(0, 1),
  "levels.medium.resolutionScale": numAbove(0, 1),
  "levels.medium.modelStep": intMin(0),
  "triggers.errorRate": numMin(0, 1),
  "triggers.responseTime": numAbove(0),
  "triggers.memoryUsage": numMin(0, 1),
  "triggers.cpuUsage": numMin(0, 1),
  sizeMultiple: intMin(1),
  window: numAbove(0),
  minSamples: intMin(1, 256),
  stepInterval: numMin(0),
  restoreAfter: numMin(0),
  browserSignals: { valid: bool },
  "models.0.0": { valid: strPlus },
  "rules.0.match": { valid: strPlus },
};

const retryBase = (): Obj =>
  clone({
    maxAttempts: 3,
    initialDelay: 1,
    maxDelay: 10,
    exponentialBase: 2,
    jitter: "none",
    retryOn: { error: () => true },
    onRetry: () => undefined,
    random: () => 0.5,
  });
const retryLeaves: Record<string, Leaf> = {
  maxAttempts: intMin(1),
  initialDelay: numMin(0),
  maxDelay: numMin(0),
  exponentialBase: numMin(1),
  jitter: { valid: oneOf("full", "equal", "decorrelated", "none") },
  "retryOn.error": { valid: fn },
  onRetry: { valid: fn },
  random: { valid: fn },
};

const policyBase = (): Obj =>
  clone({
    failureThreshold: 3,
    successThreshold: 1,
    timeout: 1_000,
    halfOpenMaxCalls: 1,
    timeWindow: 1_000,
    probeTimeout: 1_000,
    failureRate: 0.5,
    minimumCalls: 10,
  });
const policyLeaves: Record<string, Leaf> = {
  failureThreshold: intMin(1),
  successThreshold: intMin(1),
  timeout: numMin(0),
  halfOpenMaxCalls: intMin(1),
  timeWindow: numAbove(0),
  probeTimeout: numAbove(0),
  failureRate: numAbove(0, 1),
  minimumCalls: intMin(1),
};

// ---------------------------------------------------------------------------

const CASES = {
  resilience: 900,
  fallback: 450,
  degradation: 350,
  retry: 350,
  policies: 400,
  stores: 200,
  kit: 200,
};

describe(`seeded options fuzz (FUZZ_SEED=${SEED})`, () => {
  it("createResilience, createClient's resilience and resilientProxy's resilience: same verdict, documented bounds, a working call", async () => {
    failures = [];
    const rng = mulberry32(SEED);
    for (let n = 0; n < CASES.resilience; n++) {
      const config = resilienceBase(rng);
      let m: Mutation;
      let options: unknown = config;
      if (rng() < 0.04) {
        const { label, value } = weird(rng);
        options = value;
        m = { path: [], label: `root ${label}`, ...(value === undefined ? { expectValid: true } : {}) };
      } else m = mutate(rng, config, resilienceLeaves, ["bulkhead.maxConcurrent"]);
      // A bulkhead without breakers is refused under `bulkhead` (docs/options.md). (Not read through a
      // throwing getter: that is the layer's to meet.)
      if (!m.getter && config.breaker === false && config.bulkhead !== undefined)
        m = { ...m, expectValid: false, expectPath: "bulkhead" };
      const core = attempt(() => createResilience(options as never));
      checkConfigOutcome("createResilience", n, m, core, "");
      const viaClient = attempt(() => createClient({ resilience: options as never }));
      const viaProxy = attempt(() =>
        resilientProxy({ routes: [{ path: "/", upstream: "https://api.example/v1" }], resilience: options as never }),
      );
      for (const [name, other] of [
        ["createClient", viaClient],
        ["resilientProxy", viaProxy],
      ] as const) {
        if (signature(other) !== underResilience(core))
          report(name, n, m, `differs from createResilience: ${signature(other)} vs ${underResilience(core)}`);
      }
      if (!core.ok || typeof options !== "object" || options === null) continue;
      // A `breaker.key` returning no string (our weird `() => false`) cannot be judged before a call;
      // the call's TypeError then names it ("breaker.key(url) must return a non-empty string"): held.
      if (m.label === "function" && m.path.join(".") === "breaker.key") continue;
      if (process.env.FUZZ_DEBUG)
        process.stderr.write(
          `case ${n} [${m.label} at ${m.path.join(".")}] ${JSON.stringify(options, (_k, v) => (typeof v === "function" ? "fn" : v))}\n`,
        );
      const o = options as Obj;
      // With both timeouts set, a backoff wakes the call's timer every `timeout.attempt` ms: pinned
      // below ("a backoff wakes the call's timer once …"); under a TestClock a tiny attempt timeout
      // would take ages of real turns, so the calls here run without `timeout.total`.
      if (o.timeout && typeof o.timeout === "object") o.timeout = { ...(o.timeout as Obj), total: undefined };
      const r = o.retry as Obj | false | undefined;
      const maxAttempts = r === false ? 1 : typeof r?.maxAttempts === "number" ? r.maxAttempts : 3;
      await callThrough(
        "createResilience",
        n,
        m,
        (fetch, clock) => {
          const layer = createResilience({ ...o, fetch, clock } as never);
          return { fetch: (url) => layer.fetch(url) };
        },
        "https://api.example/v1/x",
        maxAttempts,
      );
      if (n % 4 === 0) {
        await callThrough(
          "resilientProxy",
          n,
          m,
          (fetch, clock) => {
            const proxy = resilientProxy({
              routes: [{ path: "/", upstream: "https://api.example/v1" }],
              resilience: { ...o, fetch, clock } as never,
            });
            return { fetch: (url) => proxy.fetch(new Request(url), {}, { waitUntil: () => undefined }) };
          },
          "https://worker.example/x",
          maxAttempts,
        );
        await callThrough(
          "createClient",
          n,
          m,
          (fetch, clock) => {
            const api = createClient({ resilience: { ...o, fetch, clock } as never, throwHttpErrors: false });
            return { fetch: (url) => api.get(url) as unknown as Promise<Response> };
          },
          "https://api.example/v1/x",
          maxAttempts,
        );
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("fallback([…]): ConfigErrors under fallback.<i>…, a working chain otherwise", async () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0xfa11);
    for (let n = 0; n < CASES.fallback; n++) {
      const chains = chainBase();
      const holder: Obj = { chains };
      let m: Mutation;
      const special = rng();
      if (special < 0.05) {
        const endpoints = (chains[0] as Obj).endpoints as Obj[];
        (endpoints[1] as Obj).name = (endpoints[0] as Obj).name;
        m = {
          path: ["0", "endpoints"],
          label: "duplicate endpoint name",
          expectValid: false,
          expectPath: "0.endpoints",
        };
      } else if (special < 0.08) {
        chains.push({ ...(clone(chains[0]) as Obj) });
        m = { path: ["1"], label: "duplicate chain name", expectValid: false, expectPath: "" };
      } else if (special < 0.1) {
        (chains[0] as Obj).endpoints = Array.from({ length: 3_000 }, (_, i) => ({
          name: `e${i}`,
          url: `https://h${i}.example/v1`,
        }));
        m = { path: ["0", "endpoints"], label: "huge endpoint list", expectValid: true };
      } else if (special < 0.13) {
        (chains[0] as Obj).endpoints = [];
        m = { path: ["0", "endpoints"], label: "no endpoints", expectValid: false, expectPath: "0.endpoints" };
      } else {
        m = mutate(rng, holder, prefixed("chains.", fallbackLeaves), [
          "chains.0.name",
          "chains.0.endpoints",
          "chains.0.endpoints.0.name",
          "chains.0.endpoints.1.name",
          "chains.0.endpoints.2.name",
          "chains.0.hedge.delay",
        ]);
        // The holder's own key is no option; a Standard Schema's insides and a header record's
        // names (any token is a header) have no rule of ours: no verdict on them.
        if (m.path.length <= 1 && /^(misspelt|extra|deleted|throwing)/.test(m.label)) continue;
        if (
          m.path.includes("~standard") ||
          (["headers", "validate"].includes(m.path.at(-1) as string) && /misspelt|extra/.test(m.label))
        )
          continue;
        // `chains.` is the holder's key, not an option: drop it.
        m = {
          ...m,
          path: m.path.slice(1),
          ...(m.expectPath === undefined ? {} : { expectPath: m.expectPath.replace(/^chains\.?/, "") }),
        };
        // A first endpoint without a url is named at its url; a url removed is refused under the endpoint.
        if (m.label === "deleted" && m.path.join(".") === "0.endpoints.0.url")
          m = { ...m, expectValid: false, expectPath: "0.endpoints.0.url" };
        if (m.label === "deleted" && /^0\.endpoints\.(1\.url|2\.respond)$/.test(m.path.join(".")))
          m = { ...m, expectValid: false, expectPath: "0.endpoints" };
      }
      const outcome = attempt(() => fallback(holder.chains as never));
      checkConfigOutcome("fallback", n, m, outcome, "fallback");
      if (!outcome.ok) continue;
      await callThrough(
        "fallback",
        n,
        m,
        (fetch, clock) => {
          const layer = createResilience({
            fallback: outcome.value as never,
            fetch,
            clock,
            retry: { initialDelay: 1, maxDelay: 5 },
          });
          return { fetch: (url) => layer.fetch(url) };
        },
        "https://a.example/v1/x",
        3 * 3_000,
      );
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("degradation({…}): ConfigErrors under degradation.…, a working layer otherwise", async () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0xde9);
    for (let n = 0; n < CASES.degradation; n++) {
      const config = degradationBase();
      const m = mutate(rng, config, degradationLeaves, [
        "rules.0.params",
        "rules.0.params.steps.body",
        "rules.0.params.resolution.query",
      ]);
      // A location with its one key removed is `{}`: any of `body`, `query` or `header` was
      // meant, and the first is named (test/core/option-messages.test.ts pins it).
      if (m.path.join(".") === "rules.0.params.resolution.query" && m.label === "missing required") continue;

      const outcome = attempt(() => degradation(config as never));
      checkConfigOutcome("degradation", n, m, outcome, "degradation");
      if (!outcome.ok) continue;
      await callThrough(
        "degradation",
        n,
        m,
        (fetch, clock) => {
          const layer = createResilience({ degradation: outcome.value as never, fetch, clock, retry: false });
          return { fetch: (url) => layer.fetch(url) };
        },
        "https://api.example/v1/x",
        1,
      );
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("retry(fn, options): a ConfigError before fn runs, or the documented loop", async () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0x2e7);
    for (let n = 0; n < CASES.retry; n++) {
      const config = retryBase();
      const m = mutate(rng, config, retryLeaves, []);
      const clock = new TestClock();
      let calls = 0;
      const work = () => {
        calls++;
        if (calls < 2) throw new Error("transient");
        return "done";
      };
      const before = unhandled.length;
      let promise: Promise<unknown>;
      try {
        // The clock set on the object itself: a spread would run a throwing getter here, not in retry.
        config.clock = clock;
        promise = retry(work, config as never);
      } catch (error) {
        report("retry", n, m, `threw synchronously ${(error as Error)?.name}`);
        continue;
      }
      const out = await clock.run(promise).then(
        (value) => ({ ok: true, value }) as Outcome,
        (error: unknown) => ({ ok: false, error }) as Outcome,
      );
      if (!out.ok && (out.error instanceof ConfigError || out.error instanceof GetterBoom)) {
        if (calls !== 0) report("retry", n, m, `fn ran ${calls} time(s) before the ConfigError`);
        checkConfigOutcome("retry", n, m, out, "retry");
      } else if (!out.ok) {
        // Accepted, then the loop ended: only with the work's own outcome.
        const e = out.error as Error;
        if (m.expectValid === false) report("retry", n, m, `accepted an invalid value, then: ${e?.name} ${e?.message}`);
        else if (e?.name !== "RetryExhaustedError" && !(e instanceof Error && e.message === "transient"))
          report("retry", n, m, `accepted, then rejected with ${e?.name}: ${e?.message}`);
      } else {
        checkConfigOutcome("retry", n, m, out, "retry");
        if (out.value !== "done") report("retry", n, m, `resolved ${String(out.value)}`);
      }
      await turn();
      if (clock.pending() !== 0) report("retry", n, m, "a timer left on the clock");
      if (unhandled.length > before) report("retry", n, m, `unhandled rejection: ${String(unhandled[before])}`);
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("CircuitBreaker, RetryBudget, Bulkhead, FallbackChain: a ConfigError naming the option, or a working policy", async () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0xcb);
    for (let n = 0; n < CASES.policies; n++) {
      const clock = new TestClock();
      const which = pick(rng, ["breaker", "budget", "bulkhead", "chain"] as const);
      if (which === "breaker") {
        const policy = policyBase();
        const hooks: Obj = { isFailure: () => true, onChange: () => undefined };
        const target = rng() < 0.8 ? policy : hooks;
        const m = mutate(
          rng,
          target,
          target === policy ? policyLeaves : { isFailure: { valid: fn }, onChange: { valid: fn } },
          target === policy ? Object.keys(policyLeaves).filter((k) => k !== "failureRate") : [],
        );
        const o = attempt(() => new CircuitBreaker("k", policy as never, clock, hooks as never));
        checkConfigOutcome("CircuitBreaker", n, m, o, "CircuitBreaker");
        if (o.ok) {
          const out = await (o.value as CircuitBreaker).execute(async () => 1).catch((e: unknown) => e);
          if (out !== 1) report("CircuitBreaker", n, m, `execute gave ${String(out)}`);
        }
      } else if (which === "budget") {
        const options: Obj = { ratio: 0.1, minPerSecond: 1 };
        const m = mutate(rng, options, { ratio: numMin(0), minPerSecond: numMin(0) }, ["ratio", "minPerSecond"]);
        const o = attempt(() => new RetryBudget(options as never, clock));
        checkConfigOutcome("RetryBudget", n, m, o, "RetryBudget");
        if (o.ok) {
          (o.value as RetryBudget).deposit();
          const allowed = (o.value as RetryBudget).tryRetry();
          if (typeof allowed !== "boolean") report("RetryBudget", n, m, "tryRetry gave no boolean");
        }
      } else if (which === "bulkhead") {
        const options: Obj = { maxConcurrent: 2, maxQueue: 1 };
        const m = mutate(rng, options, { maxConcurrent: intMin(1), maxQueue: intMin(0) }, [
          "maxConcurrent",
          "maxQueue",
        ]);
        // Positional arguments: a misspelt or extra key has no meaning here.
        if (/misspelt|extra|getter/.test(m.label)) continue;
        const o = attempt(() => new Bulkhead("k", options.maxConcurrent as never, options.maxQueue as never));
        checkConfigOutcome("Bulkhead", n, m, { ...o }, "Bulkhead");
        if (o.ok) {
          const release = await (o.value as Bulkhead).acquire();
          release();
        }
      } else {
        // `order`, and misspelt or extra keys; a `clock` that is no clock is pinned below.
        const options: Obj = { order: "adaptive" };
        const m = mutate(rng, options, { order: { valid: oneOf("fixed", "adaptive") } }, []);
        const o = attempt(() => new FallbackChain("c", { ...options, clock } as never));
        checkConfigOutcome("FallbackChain", n, m, o, "FallbackChain");
        if (o.ok) {
          const chain = (o.value as FallbackChain<number, number>).add(async (x) => x, { name: "a" });
          const out = await clock.run(chain.execute(1)).catch((e: unknown) => e);
          if (out !== 1) report("FallbackChain", n, m, `execute gave ${String(out)}`);
        }
      }
      await turn();
      if (clock.pending() !== 0) report(which, n, { path: [], label: which }, "a timer left on the clock");
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("memoryStore, kvStore, durableObjectStore: refused at once (their TypeError) or a working store", async () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0x5707e);
    const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => undefined };
    const ns = { idFromName: (name: string) => name, get: () => ({ fetch: async () => Response.json({}) }) };
    for (let n = 0; n < CASES.stores; n++) {
      const which = pick(rng, ["memory", "kv", "do"] as const);
      const options: Obj =
        which === "memory"
          ? { maxKeys: 10 }
          : which === "kv"
            ? { minPublishInterval: 5_000, refreshInterval: 30_000, publishJitter: 1_000, writeBudget: 1_000 }
            : { flushInterval: 5_000, flushThreshold: 3, verdictTtl: 5_000, timeout: 250 };
      const leaves: Record<string, Leaf> =
        which === "memory"
          ? { maxKeys: { valid: (v) => Number.isInteger(v) && (v as number) >= 1, bounds: [1, 0, 0.5, 1.5] } }
          : which === "kv"
            ? {
                // "never below 1 s", "a finite number of ms" (docs/cloudflare.md).
                minPublishInterval: {
                  valid: (v) => (v as number) >= 1_000 && (v as number) < Number.POSITIVE_INFINITY,
                  bounds: [1_000, 999.999],
                },
                refreshInterval: {
                  valid: (v) => (v as number) >= 1_000 && (v as number) < Number.POSITIVE_INFINITY,
                  bounds: [1_000, 999.999],
                },
                publishJitter: numMin(0),
                // "a whole number of writes >= 0": no upper bound.
                writeBudget: { valid: (v) => Number.isInteger(v) && (v as number) >= 0, bounds: [0, -1, 0.5] },
              }
            : {
                flushInterval: { valid: (v) => num(1)(v) },
                flushThreshold: { valid: (v) => num(1)(v) },
                verdictTtl: numMin(0),
                timeout: { valid: (v) => num(1)(v) },
              };
      // Each store refuses a misspelt or extra key, and an interval or count that is no number (a
      // numeric string as an env var gives it, `true`, `[]`, a BigInt), with a TypeError. `null` is
      // read as "not given" (`?? default`), so it gets no verdict.
      const m0 = mutate(rng, options, leaves, [], (_path, value) => typeof value === "symbol");
      const at = m0.getter ? undefined : options[m0.path[0] as string];
      const m =
        typeof at === "number" || at === undefined ? m0 : { ...m0, expectValid: at === null ? undefined : false };
      const o = attempt(() =>
        which === "memory"
          ? memoryStore(options as never)
          : which === "kv"
            ? kvStore(kv as never, options as never)
            : durableObjectStore(ns as never, options as never),
      );
      checkConfigOutcome(which, n, m, o, which, true);
      if (o.ok && which === "memory") {
        await callThrough(
          "memoryStore",
          n,
          m,
          (fetch, clock) => {
            const layer = createResilience({ store: o.value as never, fetch, clock });
            return { fetch: (url) => layer.fetch(url) };
          },
          "https://api.example/v1/x",
          3,
        );
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it("the kit's fault builders and nextLevel: their documented TypeError at once, at the documented bounds", () => {
    failures = [];
    const rng = mulberry32(SEED ^ 0x4177);
    for (let n = 0; n < CASES.kit; n++) {
      const which = pick(rng, ["status", "latency", "flaky", "level"] as const);
      const value = rng() < 0.5 ? weird(rng).value : undefined;
      const m: Mutation = { path: [which], label: `${which} ${String(typeof value === "symbol" ? "symbol" : value)}` };
      let o: Outcome;
      let valid: boolean;
      if (which === "status") {
        const code = value === undefined ? pick(rng, [199, 200, 599, 600, 503.5]) : value;
        valid = Number.isInteger(code) && (code as number) >= 200 && (code as number) <= 599;
        o = attempt(() => status(code as never));
      } else if (which === "latency") {
        const ms = value === undefined ? pick(rng, [0, -1, -0.001, 1e308, 10]) : value;
        valid = typeof ms === "number" && ms >= 0 && Number.isFinite(ms);
        o = attempt(() => latency(ms as never, networkError()));
      } else if (which === "flaky") {
        const rate = value === undefined ? pick(rng, [0, 1, 1.0001, -0.0001, 0.5]) : value;
        valid = typeof rate === "number" && rate >= 0 && rate <= 1;
        o = attempt(() => flaky(rate as never, { seed: 1 }));
      } else {
        const level = value === undefined ? pick(rng, ["full", "minimal", "medium", "Full", "", "max"]) : value;
        valid = ["full", "high", "medium", "low", "minimal"].includes(level as string);
        const settings = {
          triggers: { errorRate: 0.1, responseTime: 30_000, memoryUsage: 0.9, cpuUsage: 0.95 },
          minSamples: 20,
          stepInterval: 10_000,
          restoreAfter: 60_000,
        };
        o = attempt(() =>
          nextLevel(initialLevelState(0), { type: "set", level: level as never, reason: "r" }, 0, settings),
        );
      }
      // The builders compare with `>=` (a coerced null or "" passes as 0): only numbers and, for
      // `nextLevel`, strings get a verdict, as docs/testing.md words it ("a NaN or negative wait").
      const judged = which === "level" || value === undefined || typeof value === "number";
      if (judged && o.ok !== valid)
        report(
          "kit",
          n,
          m,
          o.ok
            ? "accepted a value the docs refuse"
            : `refused a valid value: ${String((o as { error: unknown }).error)}`,
        );
      if (!o.ok && !(o.error instanceof TypeError))
        report("kit", n, m, `threw ${(o.error as Error)?.name}, not a TypeError`);
    }
    expect(failures).toEqual([]);
  });
});

function prefixed(prefix: string, leaves: Record<string, Leaf>): Record<string, Leaf> {
  return Object.fromEntries(Object.entries(leaves).map(([k, v]) => [prefix + k, v]));
}

// ---------------------------------------------------------------------------
// Defects, one each, asserting the promised behaviour (so each fails today).

describe("defects found by the options fuzz (fixed since; each comment tells what happened before)", () => {
  const ctx = { waitUntil: () => undefined };

  // CHANGELOG ("Cloudflare: the proxy … checks the layer's options, its chains and each route's
  // upstream URL when it is made (they failed on every request)") and the brief of every entry:
  // a bad option is refused when the object is built. resilientProxy's own `store` is never
  // checked: a `store` that is no function is accepted, and every request then rejects with
  // the engine's "options.store is not a function". Kept out of the fuzz: it never mutates `store`.
  it("resilientProxy refuses a `store` that is no function when it is made, not on every request", async () => {
    const rec = recordingFetch();
    let made: unknown;
    try {
      made = resilientProxy({
        routes: [{ path: "/", upstream: "https://api.example/v1" }],
        store: 5 as never,
        resilience: { fetch: rec.fetch },
      });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe("store");
      return;
    }
    // Accepted: then a request must at least work.
    const proxy = made as ReturnType<typeof resilientProxy>;
    const response = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    expect(response.status).toBe(200);
  });

  // docs/fallback.md: "a bad one throws `ConfigError` naming its path, `fallback.0.endpoints.1.url`";
  // src/core/errors.ts: "`path` names the field". Through resilientProxy the chain of routes[1]
  // is reported as `fallback.0.endpoints.0.url` (chains are counted among chain routes only, and
  // the proxy's options have no `fallback`): the path points at routes[0], an upstream route.
  // Kept out of the fuzz: its proxy always has a single upstream route.
  it("resilientProxy names a bad chain by its route (routes.1.chain…), not as fallback.0", () => {
    let error: unknown;
    try {
      resilientProxy({
        routes: [
          { path: "/text", upstream: "https://text.example/v1" },
          { path: "/video", chain: { name: "video", endpoints: [{ name: "premium", url: "not a url" }] } },
        ],
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("routes.1.chain.endpoints.0.url");
  });

  // SECURITY.md, "No secret in events, errors, health() or debugInfo()": "URLs lose their userinfo,
  // query string and fragment … before they reach any of them". memoryStore (root entry) quotes a
  // refused `maxKeys` whole: "…expected an integer >= 1, got https://user:pw@h/?key=SECRET".
  // Kept out of the fuzz: the store fuzz skips a secret string (see its comment).
  it("memoryStore's refusal of a bad maxKeys never quotes a key in a URL", () => {
    let error: unknown;
    try {
      memoryStore({ maxKeys: SECRET_URL as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).not.toMatch(/SECRET|pw/);
  });

  // Same SECURITY.md row: kvStore's TypeError quotes the value it refuses
  // ("kvStore: minPublishInterval must be >= 1000 ms …, got https://user:pw@h/?key=SECRET").
  it("kvStore's refusal of a bad minPublishInterval never quotes a key in a URL", () => {
    const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => undefined };
    let error: unknown;
    try {
      kvStore(kv as never, { minPublishInterval: SECRET_URL as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).not.toMatch(/SECRET|pw/);
  });

  // Same SECURITY.md row: durableObjectStore's TypeError quotes the value it refuses
  // ("durableObjectStore: flushInterval must be a number >= 1, got https://user:pw@h/?key=SECRET").
  it("durableObjectStore's refusal of a bad flushInterval never quotes a key in a URL", () => {
    const ns = { idFromName: (name: string) => name, get: () => ({ fetch: async () => Response.json({}) }) };
    let error: unknown;
    try {
      durableObjectStore(ns as never, { flushInterval: SECRET_URL as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).not.toMatch(/SECRET|pw/);
  });

  // docs/options.md: `createResilience` "throws `ConfigError` naming the path and the expected value";
  // src/core/errors.ts: "`path` names the field". A location `{ query: 0 }` (a number where the query
  // parameter's name belongs) is reported as "degradation.rules.0.params.resolution.body: expected
  // string, received undefined": a key the caller never wrote, and a value that is not theirs (the
  // union's branches tie and the first, `{ body }`, wins). Kept out of the degradation fuzz.
  it("degradation names a bad `query` location at its own path, not at a `body` never written", () => {
    let error: unknown;
    try {
      degradation({ rules: [{ match: "/v1/", params: { resolution: { query: 0 as never } } }] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("degradation.rules.0.params.resolution.query");
    expect((error as ConfigError).message).toMatch(/received 0/);
  });

  // docs/retry.md ("Generic work"): `retry(fn, options)` "is the same loop on its own" as
  // `resilience.execute(fn, { retry })`, and "Both check all their options before the first
  // attempt (a `ConfigError` naming the path …)". execute refuses `maxAttempts: 1e308`
  // ("retry.maxAttempts: expected a value <= 9007199254740991"), as createResilience does;
  // retry(fn) takes it and runs the work. Kept out of the retry fuzz.
  it("retry(fn) refuses a maxAttempts past 2^53 as execute and createResilience do", async () => {
    // execute throws it synchronously, before any attempt.
    let viaExecute: unknown;
    try {
      await createResilience({ fetch: recordingFetch().fetch }).execute(async () => 1, {
        retry: { maxAttempts: 1e308 },
      });
    } catch (e) {
      viaExecute = e;
    }
    expect(viaExecute).toBeInstanceOf(ConfigError);
    expect((viaExecute as ConfigError).path).toBe("execute.retry.maxAttempts");
    let calls = 0;
    const viaRetry = await retry(
      async () => {
        calls++;
        return 1;
      },
      { maxAttempts: 1e308 },
    ).catch((e: unknown) => e);
    expect(calls).toBe(0);
    expect(viaRetry).toBeInstanceOf(ConfigError);
    expect((viaRetry as ConfigError).path).toBe("retry.maxAttempts");
  });

  // docs/retry.md: "One timer serves both timeouts of a call"; docs/testing.md: a TestClock's
  // `run(promise)` "fires timers until the promise settles, so backoffs take no real time". With
  // both `timeout.attempt` and `timeout.total` set, the call's timer is re-armed every
  // `timeout.attempt` ms while no attempt runs: a 1 s backoff under `attempt: 10` wakes it about
  // 100 times (each a real turn under `run`; with `attempt: 1e-9`, a valid value, the call never
  // settles in practice). Kept out of the fuzz: its calls run without `timeout.total`.
  it("a backoff wakes the call's timer once, not every timeout.attempt ms", async () => {
    const clock = new TestClock();
    let timers = 0;
    const counting = {
      now: () => clock.now(),
      setTimer: (fire: () => void, ms: number) => {
        timers++;
        return clock.setTimer(fire, ms);
      },
    };
    const rec = recordingFetch((_sent, n) => new Response(n === 1 ? "down" : "ok", { status: n === 1 ? 503 : 200 }));
    const layer = createResilience({
      fetch: rec.fetch,
      clock: counting,
      retry: { initialDelay: 1_000, maxDelay: 1_000, jitter: "none" },
      timeout: { attempt: 10, total: 60_000 },
    });
    const response = await clock.run(layer.fetch("https://api.example/v1/x"));
    expect(response.status).toBe(200);
    expect(rec.sent).toHaveLength(2);
    // The deadline's first wake, the backoff, one re-arm for the second attempt: a handful, not ~100.
    expect(timers).toBeLessThanOrEqual(10);
  });

  // Every option "is checked when the object is built" (the contract `retry(fn)` keeps for its
  // `clock`: "retry.clock: expected a clock ({ now, setTimer })", and docs/targets.md: it "checks
  // every option, `clock` and `random` included, before the first attempt"). new FallbackChain
  // takes `{ clock: 5 }` without a word; its first `execute` rejects with the engine's
  // "this[#clock].now is not a function". Kept out of the fuzz: it never mutates the chain's clock.
  it("new FallbackChain refuses a clock that is no clock when built, not at execute", async () => {
    let chain: FallbackChain<number, number>;
    try {
      chain = new FallbackChain<number, number>("c", { clock: 5 as never });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe("FallbackChain.clock");
      return;
    }
    chain.add(async (x) => x, { name: "a" });
    await expect(chain.execute(1)).resolves.toBe(1);
  });

  // docs/options.md: "unknown keys are an error too, so a typo never silently does nothing" (the
  // contract CircuitBreaker ("CircuitBreaker: unknown option …"), RetryBudget and retry(fn) keep
  // for their options). new FallbackChain reads only `order`: `{ ordr: "adaptive" }` builds a
  // fixed-order chain without a word. Kept out of the fuzz: its misspelt and extra keys are skipped.
  it('new FallbackChain refuses a misspelt option ({ ordr: "adaptive" })', () => {
    let error: unknown;
    try {
      new FallbackChain<number, number>("c", { ordr: "adaptive" } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/unknown option "ordr"/);
  });
});
