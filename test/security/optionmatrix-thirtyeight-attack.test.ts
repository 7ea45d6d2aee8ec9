/**
 * Outside-in attack on option checking, as a matrix: every public factory's options, each given a table of bad
 * values (wrong type, NaN, ±Infinity, -1, 0 where at least 1 is needed, a fraction where a whole number is, an empty
 * string or array, a misspelt sibling key, a getter that throws, a revoked Proxy, `null`), checked at construction
 * against the class, path and wording the docs promise; then a differential (the same bad option through every way
 * in) and the documented defaults observed from outside.
 * Docs: docs/options.md ("`createResilience` validates them … and throws `ConfigError` naming the path and the
 * expected value (`retry.maxAttempts: expected a value >= 1, received 0`); unknown keys are an error too", "A value
 * that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too", "The ky
 * client's `createClient({ resilience })` and `resilientProxy({ resilience })` name these options as their callers
 * wrote them: `resilience.retry.maxAttempts`", "`createResilience`, `fallback([…])`, `degradation({…})`, the ky
 * client and `resilientProxy` check their options when they are made", the table's defaults); docs/retry.md ("Both
 * check all their options before the first attempt (a `ConfigError` naming the path: `execute.signal`,
 * `retry.onRetry`…), and refuse one they do not know; a bad option … rejects the call, never throws");
 * docs/fallback.md ("`fallback([…])` checks the chains at once (a bad one throws `ConfigError` naming its path,
 * `fallback.0.endpoints.1.url`)", "`.add(fn, { name, expectedQuality })` (any other option is a `TypeError`)");
 * docs/degradation.md ("checks its options at once (`degradation.levels.medium.maxSteps` …)"); docs/breakers.md
 * (named breakers: "a bad value or a typo is a `ConfigError` every time"); docs/cloudflare.md ("`resilientProxy`
 * checks its options when it is made, not on each request", the stores: "Both check their options when they are
 * made, with a `TypeError` naming the store and the option … `memoryStore` checks its options the same way. Taken
 * as given, a wrong one would fail every call that asks the store, or be dropped without a word", `flushThreshold`
 * "at once when `flushThreshold` failures wait"); the JSDoc of `DurableObjectStoreOptions.policy` ("The thresholds
 * the object applies. `createResilience` sets them from its `breaker` options; set them here only to share one
 * store between layers") and of `flushThreshold` (`@default 3`).
 * How: `createResilience`, `memoryStore` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy`, `kvStore`, `durableObjectStore` (./cloudflare, over
 * test/helpers/object-namespace.ts: real `BreakerStateObject`s), `retry`, `CircuitBreaker`, `Bulkhead`,
 * `RetryBudget`, `FallbackChain` (./policies), `TestClock` (./testing); transports that answer at once.
 * Paths: construction of every entry; `execute` and named breakers; the Worker proxy made (no request); the ky
 * client made; a layer over a Durable Object store (plain call).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: `retry(fn)` names an unreadable nested option by its path, and a
 * `durableObjectStore`'s own `policy` is what every layer sharing it applies):
 * 1. docs/retry.md "Both check all their options before the first attempt (a `ConfigError` naming the path:
 *    `execute.signal`, `retry.onRetry`…)" and docs/options.md "A value that cannot be read (a getter that throws, a
 *    revoked `Proxy`) is a `ConfigError` naming its path too". Observed: `retry(fn)` of ./policies given
 *    `retryOn: { get error() { throw … } }`, or a `clock` whose `now` getter throws, rejects with a `ConfigError`
 *    whose path is `retry` (the options as a whole), where `createResilience` names `retry.retryOn.error` /
 *    `clock.now` and `execute` names `execute.retry.retryOn.error` for the same value. Cause:
 *    src/policies/retry.ts `retry`: the engine error from `checkOptions` is caught and the unreadable option is
 *    looked for one level deep only (each top-level value's prototype); a readable `retryOn` or `clock` object
 *    holding the getter is passed over, and the path falls back to `retry`.
 * 2. JSDoc of `DurableObjectStoreOptions.policy`: "The thresholds the object applies … set them here only to share
 *    one store between layers". Observed: the `policy` given is never what the object applies once a layer uses
 *    the store: `createResilience` calls the store's `configure` with its own `breaker` options (the defaults when
 *    none are given) and that replaces it; a store given `failureThreshold: 3` under a layer with default breaker
 *    options reports three failures and the object stays closed (it applies 12), where the same three failures
 *    open it when the layer's own `breaker.failureThreshold` is 3. With `breaker: false` the layer does not use the
 *    store at all, so no public path applies the option (it is not checked either: `policy: 5` is taken). Cause:
 *    src/http/create-resilience.ts `store?.configure?.(config.breaker)` and src/cloudflare/durable-object-store.ts
 *    `configure(next) { policy = toWirePolicy(next) }` over `toWirePolicy(options.policy ?? breakerDefaults)`.
 *
 * Held (plain `it`):
 * - the root matrix: 54 bad values at 34 option paths (nested ones: `retry.retryOn.statuses.0`,
 *   `retry.retryOn.methods.0`, `breaker.failureRate`, `timeout.attempt`, `bulkhead.maxConcurrent`,
 *   `crossOriginHeaders.0`, `clock.setTimer`) each a `ConfigError` thrown by `createResilience` itself, `path` the
 *   documented path, the message `path: expected …`; a misspelt sibling (`retry.maxAttemps`, `breaker.treshold`,
 *   `timeout.atempt`, `retry.retryOn.status`) is named under its parent as `unknown option "…"`.
 * - the differential: the same bad value through `createResilience`, `createClient({ resilience })`,
 *   `resilientProxy({ resilience })` and (retry numbers) `execute(fn, { retry })`: one message after the prefix
 *   (`resilience.` / `execute.`), thrown (or, for `execute`, rejected) before anything runs.
 * - the stages: `fallback([…])` refuses bad chain, hedge and endpoint fields under `fallback.N.…`, the proxy the
 *   same chain fields under `routes.N.chain.…` with the same words; `degradation({…})` refuses level, trigger, rule
 *   and ladder fields under `degradation.…`, and `configureTriggers` the same trigger values.
 * - named breakers and `execute`: `breaker("n", bad)` is a `ConfigError` each time it is passed; `execute` rejects
 *   (never throws) before `fn` runs.
 * - ./policies: `Bulkhead`, `RetryBudget`, `CircuitBreaker`, `FallbackChain` refuse bad values with `ConfigError`s
 *   named `Bulkhead.…` etc.; `FallbackChain#add` with `TypeError`s; `retry(fn)` rejects before `fn` runs, naming
 *   `retry.…` for top-level values (a revoked `clock`, `signal`, `budget` included).
 * - the stores: `memoryStore`, `kvStore` and `durableObjectStore` refuse a misspelt name, an interval or budget out
 *   of range (a numeric string, NaN, Infinity), a clock that is no clock and options that cannot be read, with a
 *   `TypeError` naming the store and the option.
 * - defaults observed: 3 attempts and no retry of a 404; `durableObjectStore`'s `flushThreshold` 3 (two failures
 *   wait, the third goes at once).
 *
 * Docs-silent (not pinned; the first item and the proxy's route with both `upstream` and `chain` or `null` are
 * refused since, test/cloudflare/store-options.test.ts and resilient-proxy.test.ts holding it):
 * - `kvStore` and `durableObjectStore` take any `scope` (`null`, `5`, a symbol) and any `ctx` (`5`, `{}`: each
 *   background write then says `waitUntil failed` as a store event); `durableObjectStore` takes a fractional
 *   `flushThreshold` (1.5) and an unchecked `policy` (`5`, `{}`).
 * - `resilientProxy` takes a route with both `upstream` and `chain` (the chain serves it, the upstream is dropped),
 *   two routes with one `path` (the second never serves: docs/cloudflare.md's "the first listed"), a `healthPath`
 *   equal to a route's path, a `store` inside `resilience` (outside its type); a `null` route is the engine's
 *   `TypeError` ("reading 'path'").
 * - `degradation({…})` takes two parameters at one query key or one header (`quality: { query: "q" }, steps:
 *   { query: "q" }`); only body paths must stand apart. It takes a repeated resolution, an empty `models`, an
 *   empty feature name, a `window` of 1e-320 ms.
 * - `fallback([])` is a stage with no chains; an endpoint name with a lone surrogate is taken by `fallback([…])`
 *   (the proxy refuses it, as documented).
 * - `new Bulkhead(5, 1, 0)` takes a key that is no string (`CircuitBreaker` refuses one); `CircuitBreaker`'s
 *   `initial` takes any object (`{}`); a named breaker takes `key` and `maxHosts`, which mean nothing for it.
 * - `retry(fn)` words refusals its own way (`expected an integer >= 1`), as earlier runs noted.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, memoryStore, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { Bulkhead, CircuitBreaker, FallbackChain, RetryBudget, retry, systemClock } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { objectNamespace, Storage } from "../helpers/object-namespace.ts";

const revoked = (): object => {
  const p = Proxy.revocable({}, {});
  p.revoke();
  return p.proxy;
};
const throwing = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error("boom");
    },
  });

/** Sets `value` at the dotted `path` of a fresh options object (numeric segments make arrays). */
function at(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split(".");
  const root: Record<string, unknown> = {};
  let node: Record<string, unknown> = root;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) node[key] = value;
    else {
      const next: Record<string, unknown> = /^\d+$/.test(keys[i + 1] as string)
        ? (Array.from({ length: Number(keys[i + 1]) }, () => undefined) as unknown as Record<string, unknown>)
        : {};
      node[key] = next;
      node = next;
    }
  });
  return root;
}

/** What `make` threw synchronously; fails when it returned. */
function thrownBy(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw at construction");
}

function config(error: unknown): { path: string; message: string } {
  expect(error).toBeInstanceOf(ConfigError);
  const e = error as ConfigError;
  return { path: e.path, message: e.message };
}

const ok = async () => new Response("ok");

// [path, bad value, expected text after "expected "]
const ROOT_CASES: Array<[string, unknown, string]> = [
  ["retry.maxAttempts", 0, "a value >= 1"],
  ["retry.maxAttempts", -1, "a value >= 1"],
  ["retry.maxAttempts", 1.5, "an integer"],
  ["retry.maxAttempts", Number.NaN, "number"],
  ["retry.maxAttempts", Number.POSITIVE_INFINITY, "number"],
  ["retry.maxAttempts", "3", "number"],
  ["retry.maxAttempts", null, "number"],
  ["retry.initialDelay", -1, "a value >= 0"],
  ["retry.initialDelay", Number.NaN, "number"],
  ["retry.maxDelay", Number.NEGATIVE_INFINITY, "number"],
  ["retry.exponentialBase", 0.5, "a value >= 1"],
  ["retry.jitter", "random", 'one of "full", "equal", "decorrelated", "none"'],
  ["retry.jitter", "", 'one of "full", "equal", "decorrelated", "none"'],
  ["retry.retryOn.statuses.0", 99, "a value >= 100"],
  ["retry.retryOn.statuses.0", 600, "a value <= 599"],
  ["retry.retryOn.statuses.0", 500.5, "an integer"],
  ["retry.retryOn.statuses.0", "500", "number"],
  ["retry.retryOn.statuses", 503, "array"],
  ["retry.retryOn.methods.0", "", "a method name"],
  ["retry.retryOn.methods.0", 5, "string"],
  ["retry.retryOn.error", true, "a function"],
  ["retry.maxRetryAfter", -1, "a value >= 0"],
  ["retry.idempotencyKey", "yes", "boolean"],
  ["budget.ratio", -0.1, "a value >= 0"],
  ["budget.minPerSecond", Number.NaN, "number"],
  ["timeout.attempt", 0, "a value > 0"],
  ["timeout.attempt", -1, "a value > 0"],
  ["timeout.attempt", 2_147_483_648, "a value <= 2147483647"],
  ["timeout.attempt", Number.POSITIVE_INFINITY, "number"],
  ["timeout.total", 0, "a value > 0"],
  ["timeout.total", "1000", "number"],
  ["breaker.failureThreshold", 0, "a value >= 1"],
  ["breaker.failureThreshold", 2.5, "an integer"],
  ["breaker.successThreshold", 0, "a value >= 1"],
  ["breaker.timeout", -1, "a value >= 0"],
  ["breaker.halfOpenMaxCalls", 0, "a value >= 1"],
  ["breaker.timeWindow", 0, "a value > 0"],
  ["breaker.probeTimeout", 0, "a value > 0"],
  ["breaker.failureRate", 0, "a value > 0"],
  ["breaker.failureRate", 1.5, "a value <= 1"],
  ["breaker.minimumCalls", 0, "a value >= 1"],
  ["breaker.key", "host", "a function"],
  ["breaker.maxHosts", 0, "a value >= 1"],
  ["breaker.isFailure", null, "a function"],
  ["bulkhead.maxConcurrent", 0, "a value >= 1"],
  ["bulkhead.maxConcurrent", 1.5, "an integer"],
  ["maxReplayBytes", -1, "a value >= 0"],
  ["maxReplayBytes", 1.5, "an integer"],
  ["crossOriginHeaders.0", "", "a header name"],
  ["crossOriginHeaders", "x-api-key", "array"],
  ["redirects", "browser", 'one of "library", "platform"'],
  ["fetch", "https://api.example", "a function"],
  ["random", 0.5, "a function"],
  ["clock.setTimer", 5, "a function"],
];

describe("createResilience: every option path, bad values refused when made", () => {
  it.each(ROOT_CASES)("%s = %s is a ConfigError naming that path", (path, value, expected) => {
    const options = at(path, value);
    // A clock needs both its functions: the sibling `now` is given right.
    if (path === "clock.setTimer") (options.clock as Record<string, unknown>).now = () => 0;
    const { path: named, message } = config(thrownBy(() => createResilience(options as ResilienceOptions)));
    expect(named).toBe(path);
    expect(message).toMatch(
      new RegExp(`^${path.replace(/\./g, "\\.")}: expected ${escapeRegExp(expected)}, received `),
    );
  });

  it.each([
    ["retry", "maxAttemps", { retry: { maxAttemps: 3 } }],
    ["breaker", "treshold", { breaker: { treshold: 3 } }],
    ["timeout", "atempt", { timeout: { atempt: 100 } }],
    ["retry.retryOn", "status", { retry: { retryOn: { status: [500] } } }],
    ["budget", "minPerSec", { budget: { minPerSec: 1 } }],
    ["bulkhead", "maxQeue", { bulkhead: { maxConcurrent: 1, maxQeue: 1 } }],
  ])("a misspelt key under %s (%s) is named there", (parent, key, options) => {
    const { path, message } = config(thrownBy(() => createResilience(options as ResilienceOptions)));
    expect(path).toBe(parent);
    expect(message).toBe(`${parent}: unknown option "${key}"`);
  });

  it.each([
    ["retry.retryOn.error", at("retry.retryOn", throwing("error"))],
    ["breaker.failureThreshold", at("breaker", throwing("failureThreshold"))],
    ["timeout", at("timeout", revoked())],
    ["clock.now", { clock: Object.assign(throwing("now"), { setTimer: () => () => {} }) }],
  ])("a value that cannot be read at %s is named by its path", (path, options) => {
    const error = config(thrownBy(() => createResilience(options as ResilienceOptions)));
    expect(error.path).toBe(path);
    expect(error.message).toBe(`${path}: expected a value that can be read, received a value that cannot be read`);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("the same bad option through every way in", () => {
  const route = { path: "/a", upstream: "https://a.test/" };
  const ways: Array<[string, (o: Record<string, unknown>) => unknown]> = [
    ["", (o) => createResilience(o as ResilienceOptions)],
    ["resilience.", (o) => createClient({ resilience: o as ResilienceOptions })],
    ["resilience.", (o) => resilientProxy({ routes: [route], resilience: o as ResilienceOptions })],
  ];
  const cases: Array<[string, unknown]> = [
    ["retry.maxAttempts", 0],
    ["retry.retryOn.statuses.0", 600],
    ["retry.retryOn.methods.0", ""],
    ["breaker.failureRate", 2],
    ["timeout.attempt", 2_147_483_648],
    ["budget.ratio", Number.NaN],
    ["maxReplayBytes", 0.5],
  ];
  it.each(cases)("%s = %s: one path and one message on root, ky and proxy", (path, value) => {
    const seen = ways.map(([prefix, make]) => {
      const { path: named, message } = config(thrownBy(() => make(at(path, value))));
      expect(named).toBe(`${prefix}${path}`);
      return message.slice(prefix.length);
    });
    expect(new Set(seen).size).toBe(1);
  });

  it.each(cases.filter(([path]) => path.startsWith("retry.")))(
    "%s = %s: execute rejects with the same message under execute.",
    async (path, value) => {
      const root = config(thrownBy(() => createResilience(at(path, value) as ResilienceOptions)));
      let ran = false;
      const layer = createResilience({ fetch: ok });
      const pending = layer.execute(async () => {
        ran = true;
      }, at(path, value) as never);
      const error = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      const { path: named, message } = config(error);
      expect(named).toBe(`execute.${path}`);
      expect(message).toBe(`execute.${root.message}`);
      expect(ran).toBe(false);
    },
  );
});

describe("the stages and the proxy's routes", () => {
  const url = "https://a.test/v1";
  const chainCases: Array<[string, Record<string, unknown>, string]> = [
    ["name", { name: "", endpoints: [{ name: "a", url }] }, "name"],
    ["order", { name: "c", order: "random", endpoints: [{ name: "a", url }] }, "order"],
    ["hedge.delay NaN", { name: "c", hedge: { delay: Number.NaN }, endpoints: [{ name: "a", url }] }, "hedge.delay"],
    ["hedge.delay -1", { name: "c", hedge: { delay: -1 }, endpoints: [{ name: "a", url }] }, "hedge.delay"],
    ["hedge misspelt", { name: "c", hedge: { delay: 5, dealy: 5 }, endpoints: [{ name: "a", url }] }, "hedge"],
    ["endpoints []", { name: "c", endpoints: [] }, "endpoints"],
    ["endpoint url ftp", { name: "c", endpoints: [{ name: "a", url: "ftp://a.test/" }] }, "endpoints.0.url"],
    [
      "endpoint quality 1.5",
      { name: "c", endpoints: [{ name: "a", url, expectedQuality: 1.5 }] },
      "endpoints.0.expectedQuality",
    ],
    [
      "endpoint quality NaN",
      { name: "c", endpoints: [{ name: "a", url, expectedQuality: Number.NaN }] },
      "endpoints.0.expectedQuality",
    ],
    ["endpoint name ''", { name: "c", endpoints: [{ name: "", url }] }, "endpoints.0.name"],
    ["endpoint transform 5", { name: "c", endpoints: [{ name: "a", url, transform: 5 }] }, "endpoints.0.transform"],
    ["endpoint misspelt", { name: "c", endpoints: [{ name: "a", url, headres: {} }] }, "endpoints.0"],
    [
      "endpoint headers getter",
      { name: "c", endpoints: [{ name: "a", url, headers: throwing("x-key") }] },
      "endpoints.0.headers.x-key",
    ],
  ];
  it.each(chainCases)("chain %s: fallback.0.… and routes.0.chain.…, one message", (_label, chain, path) => {
    const viaStage = config(thrownBy(() => fallback([chain as never])));
    const viaProxy = config(thrownBy(() => resilientProxy({ routes: [{ path: "/a", chain: chain as never }] })));
    expect(viaStage.path).toBe(`fallback.0.${path}`);
    expect(viaProxy.path).toBe(`routes.0.chain.${path}`);
    expect(viaStage.message.replaceAll("fallback.0.", "")).toBe(viaProxy.message.replaceAll("routes.0.chain.", ""));
  });

  it.each([
    ["levels.medium.maxSteps", { levels: { medium: { maxSteps: 0 } } }],
    ["levels.low.qualityMultiplier", { levels: { low: { qualityMultiplier: 0 } } }],
    ["levels.full.percentage", { levels: { full: { percentage: 101 } } }],
    ["levels.high.modelStep", { levels: { high: { modelStep: 0.5 } } }],
    ["levels", { levels: { ful: {} } }],
    ["triggers.errorRate", { triggers: { errorRate: Number.NaN } }],
    ["triggers.responseTime", { triggers: { responseTime: 0 } }],
    ["rules.0.params.quality", { rules: [{ params: { quality: "" } }] }],
    ["rules.0.params.steps", { rules: [{ params: { steps: "a.__proto__" } }] }],
    ["rules.0.match", { rules: [{ match: "https://a.test/#x", params: {} }] }],
    ["rules.0", { rules: [{ params: {}, mach: "/x" }] }],
    ["resolutions", { resolutions: [] }],
    ["resolutions.0", { resolutions: ["HD"] }],
    ["sizeMultiple", { sizeMultiple: 0 }],
    ["minSamples", { minSamples: 257 }],
    ["window", { window: 0 }],
    ["stepInterval", { stepInterval: -1 }],
    ["levelHeader", { levelHeader: "x level" }],
    ["browserSignals", { browserSignals: "no" }],
  ])("degradation %s is refused at once under degradation.…", (path, options) => {
    const { path: named, message } = config(thrownBy(() => degradation(options as never)));
    expect(named).toBe(`degradation.${path}`);
    expect(message.startsWith(`degradation.${path}: `)).toBe(true);
  });

  it("configureTriggers refuses what degradation({ triggers }) refuses, in the same words", () => {
    const layer = createResilience({ degradation: degradation(), fetch: ok });
    for (const triggers of [{ errorRate: 2 }, { cpuUsage: -1 }, { responseTime: Number.NaN }, { memoryUsag: 0.5 }]) {
      const made = config(thrownBy(() => degradation({ triggers } as never)));
      const live = config(thrownBy(() => layer.degradation?.configureTriggers(triggers as never)));
      expect(live).toEqual(made);
    }
  });

  it("the proxy's own options are checked when it is made", () => {
    const routes = [{ path: "/a", upstream: "https://a.test/" }];
    expect(config(thrownBy(() => resilientProxy({ routes, healthPath: "health" }))).path).toBe("healthPath");
    expect(config(thrownBy(() => resilientProxy({ routes, healthTokenVar: "" }))).path).toBe("healthTokenVar");
    expect(config(thrownBy(() => resilientProxy({ routes, store: 5 as never }))).path).toBe("store");
    expect(config(thrownBy(() => resilientProxy({ routes, helthPath: "/h" } as never))).message).toBe(
      'options: unknown option "helthPath"',
    );
    const fb = config(thrownBy(() => resilientProxy({ routes, resilience: { fallback: fallback([]) } as never })));
    expect(fb.path).toBe("resilience.fallback");
    expect(thrownBy(() => resilientProxy({ routes: [] }))).toBeInstanceOf(TypeError);
    expect(thrownBy(() => resilientProxy({ routes: [{ path: "a", upstream: "https://a.test/" }] }))).toBeInstanceOf(
      TypeError,
    );
  });
});

describe("named breakers, execute and ./policies", () => {
  it("a named breaker's bad options are a ConfigError every time they are passed", () => {
    const layer = createResilience({ fetch: ok });
    layer.breaker("gpu");
    for (let i = 0; i < 2; i++) {
      const e = config(thrownBy(() => layer.breaker("gpu", { failureThreshold: 0 })));
      expect(e.path).toBe('breaker("gpu").failureThreshold');
      expect(config(thrownBy(() => layer.breaker("gpu", { threshold: 1 } as never))).path).toBe('breaker("gpu")');
    }
  });

  it("execute rejects, never throws, before fn runs", async () => {
    const layer = createResilience({ fetch: ok });
    let ran = 0;
    const work = async () => {
      ran++;
    };
    for (const [options, path] of [
      [{ signal: "x" }, "execute.signal"],
      [{ breaker: "" }, "execute.breaker"],
      [{ fallback: 5 }, "execute.fallback"],
      [{ retyr: {} }, "execute"],
      [{ retry: { jitter: "none", maxAttempts: Number.NaN } }, "execute.retry.maxAttempts"],
      [{ signal: revoked() }, "execute.signal"],
    ] as const) {
      let pending: Promise<unknown> | undefined;
      expect(() => {
        pending = layer.execute(work, options as never);
      }).not.toThrow();
      const error = await (pending as Promise<unknown>).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(config(error).path).toBe(path);
    }
    expect(ran).toBe(0);
  });

  const policy = {
    failureThreshold: 1,
    successThreshold: 1,
    timeout: 1,
    halfOpenMaxCalls: 1,
    timeWindow: 1,
    probeTimeout: 1,
    failureRate: undefined,
    minimumCalls: 1,
  };
  it.each([
    ["Bulkhead.maxConcurrent", () => new Bulkhead("k", 0, 0)],
    ["Bulkhead.maxConcurrent", () => new Bulkhead("k", Number.NaN, 0)],
    ["Bulkhead.maxQueue", () => new Bulkhead("k", 1, -1)],
    ["Bulkhead.maxQueue", () => new Bulkhead("k", 1, 0.5)],
    ["RetryBudget.ratio", () => new RetryBudget({ ratio: -1, minPerSecond: 1 })],
    ["RetryBudget.minPerSecond", () => new RetryBudget({ ratio: 0.1, minPerSecond: Number.POSITIVE_INFINITY })],
    ["RetryBudget", () => new RetryBudget({ ratio: 0.1, minPerSecond: 1, maxTokens: 5 } as never)],
    ["RetryBudget.clock.now", () => new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, {} as never)],
    ["CircuitBreaker.failureThreshold", () => new CircuitBreaker("k", { ...policy, failureThreshold: 0 }, systemClock)],
    ["CircuitBreaker.timeWindow", () => new CircuitBreaker("k", { ...policy, timeWindow: -1 }, systemClock)],
    ["CircuitBreaker.failureRate", () => new CircuitBreaker("k", { ...policy, failureRate: 2 }, systemClock)],
    ["CircuitBreaker.clock", () => new CircuitBreaker("k", policy, revoked() as never)],
    ["CircuitBreaker.onChange", () => new CircuitBreaker("k", policy, systemClock, { onChange: 5 as never })],
    ["FallbackChain.order", () => new FallbackChain("c", { order: "best" as never })],
    ["FallbackChain", () => new FallbackChain("c", { ordr: "fixed" } as never)],
    ["FallbackChain.clock.setTimer", () => new FallbackChain("c", { clock: { now: () => 0 } as never })],
  ])("%s: a ConfigError when made", (path, make) => {
    expect(config(thrownBy(make)).path).toBe(path);
  });

  it("FallbackChain#add refuses a bad option with a TypeError, a misspelt one too", () => {
    const chain = new FallbackChain<number, number>("c");
    const work = async () => 1;
    for (const options of [
      { name: "" },
      { name: "a", expectedQuality: 1.5 },
      { name: "a", expectedQuality: Number.NaN },
      { name: "a", expectedQualty: 0.5 },
      { name: 5 },
    ]) {
      expect(thrownBy(() => chain.add(work, options as never))).toBeInstanceOf(TypeError);
    }
    chain.add(work, { name: "a" });
    expect(thrownBy(() => chain.add(work, { name: "a" }))).toBeInstanceOf(TypeError);
  });

  it("retry(fn) rejects before fn runs, naming each top-level option", async () => {
    let ran = 0;
    const fn = async () => {
      ran++;
      return 1;
    };
    for (const [options, path] of [
      [{ maxAttempts: 0 }, "retry.maxAttempts"],
      [{ maxAttempts: 1.5 }, "retry.maxAttempts"],
      [{ initialDelay: Number.NaN }, "retry.initialDelay"],
      [{ exponentialBase: 0 }, "retry.exponentialBase"],
      [{ jitter: "" }, "retry.jitter"],
      [{ retryOn: { statuses: [500] } }, "retry.retryOn"],
      [{ retryOn: null }, "retry.retryOn"],
      [{ onRetry: "log" }, "retry.onRetry"],
      [{ maxAttemps: 2 }, "retry"],
      [{ clock: revoked() }, "retry.clock"],
      [{ signal: revoked() }, "retry.signal"],
      [{ budget: {} }, "retry.budget"],
      [throwing("maxAttempts"), "retry.maxAttempts"],
    ] as const) {
      const error = await retry(fn, options as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(config(error).path).toBe(path);
    }
    expect(ran).toBe(0);
  });

  it("retry(fn) names a nested option that cannot be read by its path, as the layer does", async () => {
    const fn = async () => 1;
    const retryOn = { retry: { retryOn: throwing("error") } };
    const layerPath = config(thrownBy(() => createResilience(retryOn as never))).path;
    expect(layerPath).toBe("retry.retryOn.error");
    const execError = await createResilience({ fetch: ok })
      .execute(fn, retryOn as never)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(config(execError).path).toBe("execute.retry.retryOn.error");
    const alone = await retry(fn, { retryOn: throwing("error") } as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(config(alone).path).toBe("retry.retryOn.error"); // observed: "retry"
    const clock = Object.assign(throwing("now"), { setTimer: () => () => {} });
    const byClock = await retry(fn, { clock } as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(config(byClock).path).toMatch(/^retry\.clock/); // observed: "retry"
  });
});

describe("the stores: a TypeError naming the store and the option", () => {
  const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
  const ns = { idFromName: (n: string) => n, get: () => ({ fetch: async () => Response.json({}) }) };
  it.each([
    ["memoryStore", "maxKeys", () => memoryStore({ maxKeys: 0 })],
    ["memoryStore", "maxKeys", () => memoryStore({ maxKeys: 1.5 })],
    ["memoryStore", "maxkeys", () => memoryStore({ maxkeys: 5 } as never)],
    ["kvStore", "minPublishInterval", () => kvStore(kv, { minPublishInterval: 999 })],
    ["kvStore", "minPublishInterval", () => kvStore(kv, { minPublishInterval: Number.POSITIVE_INFINITY })],
    ["kvStore", "refreshInterval", () => kvStore(kv, { refreshInterval: "30000" as never })],
    ["kvStore", "publishJitter", () => kvStore(kv, { publishJitter: -1 })],
    ["kvStore", "writeBudget", () => kvStore(kv, { writeBudget: Number.NaN })],
    ["kvStore", "clock", () => kvStore(kv, { clock: { now: () => 0 } as never })],
    ["kvStore", "scpe", () => kvStore(kv, { scpe: "x" } as never)],
    ["kvStore", "cannot be read", () => kvStore(kv, throwing("scope") as never)],
    ["durableObjectStore", "flushInterval", () => durableObjectStore(ns, { flushInterval: 0 })],
    ["durableObjectStore", "flushThreshold", () => durableObjectStore(ns, { flushThreshold: Number.NaN })],
    ["durableObjectStore", "verdictTtl", () => durableObjectStore(ns, { verdictTtl: -1 })],
    ["durableObjectStore", "timeout", () => durableObjectStore(ns, { timeout: "250" as never })],
    ["durableObjectStore", "clock", () => durableObjectStore(ns, { clock: 5 as never })],
    ["durableObjectStore", "flushInteval", () => durableObjectStore(ns, { flushInteval: 5 } as never)],
    ["durableObjectStore", "cannot be read", () => durableObjectStore(ns, revoked() as never)],
  ])("%s: %s", (store, word, make) => {
    const error = thrownBy(make) as Error;
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain(store);
    expect(error.message).toContain(word);
  });
});

describe("documented defaults, observed", () => {
  it("3 attempts by default, and statuses outside the retried ones are sent once", async () => {
    const clock = new TestClock();
    let calls = 0;
    const layer = createResilience({
      clock,
      fetch: async (input) => {
        calls++;
        return new Response("x", { status: String(input).endsWith("404") ? 404 : 503 });
      },
    });
    await clock.run(layer.fetch("https://a.test/503"));
    expect(calls).toBe(3);
    calls = 0;
    await clock.run(layer.fetch("https://a.test/404"));
    expect(calls).toBe(1);
  });

  /** A layer always answered 503, one attempt a call, over a Durable Object store; the object's stored state. */
  async function overObject(
    storeOptions: Record<string, unknown>,
    breaker?: { failureThreshold: number },
  ): Promise<{ reports: number[]; stored: unknown }> {
    const clock = new TestClock(1_000_000);
    const storage = new Storage();
    const ns = objectNamespace(clock, storage);
    const waits: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void waits.push(p) };
    const store = durableObjectStore(ns, { clock, ctx, ...storeOptions });
    const layer = createResilience({
      store,
      clock,
      retry: false,
      ...(breaker ? { breaker } : {}),
      fetch: async () => new Response("x", { status: 503 }),
    });
    const reports: number[] = [];
    for (let i = 0; i < 3; i++) {
      await clock.run(layer.fetch("https://a.test/x"));
      await Promise.all(waits);
      reports.push(ns.paths.filter((p) => p === "/report").length);
    }
    return { reports, stored: storage.values.get("snapshot") };
  }

  it("durableObjectStore: flushThreshold 3 by default (two failures wait, the third goes at once)", async () => {
    const { reports } = await overObject({});
    // The first call's report is the first use's read of the verdict; then nothing until the third failure.
    expect(reports[1]).toBe(reports[0]);
    expect(reports[2]).toBe((reports[1] as number) + 1);
    const { reports: eager } = await overObject({ flushThreshold: 1 });
    expect(eager[1]).toBeGreaterThan(eager[0] as number);
  });

  it("control: three reported failures open the object when the layer's failureThreshold is 3", async () => {
    const { stored } = await overObject({}, { failureThreshold: 3 });
    expect(stored).toMatchObject({ state: "open" });
  });

  it("durableObjectStore's policy is the thresholds the object applies, under a layer too", async () => {
    const policy = {
      failureThreshold: 3,
      successThreshold: 1,
      timeout: 60_000,
      halfOpenMaxCalls: 1,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: undefined,
      minimumCalls: 100,
    };
    const { stored } = await overObject({ policy });
    // Observed: nothing stored, the object closed: the layer's configure() replaced the policy with 12 in a row.
    expect(stored).toMatchObject({ state: "open" });
  });
});
