/**
 * Outside-in attack on docs/options.md, sentence by sentence: each bad value (values at and one past each bound,
 * NaN, ±Infinity, -0, fractions where whole numbers are needed, numeric strings, `null`, 2^53) through every entry
 * that takes the same rule, getters that throw and revoked Proxies at every depth, misspelt keys in the stages and
 * policies, null-prototype option objects, edits after the call, and the defaults observed by behaviour.
 * Docs: docs/options.md "`createResilience` validates them … and throws `ConfigError` naming the path and the
 * expected value (`retry.maxAttempts: expected a value >= 1, received 0`); unknown keys are an error too, so a typo
 * never silently does nothing. A value that cannot be read (a getter that throws, a revoked `Proxy`) is a
 * `ConfigError` naming its path too. `undefined` never wipes a default. The ky client's `createClient({ resilience
 * })` and `resilientProxy({ resilience })` name these options as their callers wrote them:
 * `resilience.retry.maxAttempts`.", "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and
 * `resilientProxy` check their options when they are made and keep what they read then, so an edit to your objects
 * afterwards changes nothing", "each checks them when called, under the paths shown here", the rows
 * `retry.maxAttempts` `3`, `retry.initialDelay` `1000` ms, `retry.maxDelay` `60000` ms "cap on any computed delay",
 * `retry.exponentialBase` `2`, `retry.jitter` `"full"`, `retry.retryOn.methods` "`["GET", "HEAD", "OPTIONS", "PUT",
 * "DELETE"]` | methods retried on any retryable outcome", `degradation.levels` "per-level overrides",
 * `degradation.sizeMultiple` `8`; "What validates what": "**Options** (`createResilience`, `execute(fn, { retry })`,
 * `breaker(name, options)`, `degradation.configureTriggers`): a small table-driven checker … with one rules table per
 * options object"; docs/cloudflare.md "`resilientProxy` checks its options when it is made, not on each request".
 * How: `createResilience`, `ConfigError` (root), `fallback` (./fallback), `degradation` (./degradation), `retry`,
 * `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain` (./policies), `resilientProxy` (./cloudflare),
 * `createClient` (./ky), `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts).
 * Paths: plain call (GET, POST, PUT), fallback chain, degradation `adjust`, `execute`, named breakers, the ky
 * client and the Worker proxy made, the policies on their own.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: resilientProxy names a route value it cannot read, and retryOn.methods takes
 * method names only):
 * 1. docs/options.md "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`
 *    naming its path too" with docs/cloudflare.md "`resilientProxy` checks its options when it is made". Observed:
 *    `resilientProxy` gives the caller's getter's own error (`Error: boom`, no path) when `routes`, a route, or a
 *    route's `path`, `upstream` or `chain` cannot be read, and the engine's `TypeError` ("Cannot perform 'get' on a
 *    proxy that has been revoked") for a revoked Proxy as a route, where the same proxy names `healthPath`,
 *    `store`, `resilience.breaker.timeout` and `routes.0.chain.endpoints.0.url` with a `ConfigError` ("expected a
 *    value that can be read"). Cause: src/cloudflare/resilient-proxy.ts `resilientProxy`: `plainCopy(options)` throws
 *    and is swallowed (`catch {}`), then the route loop reads `options.routes`, `route.path`, `route.upstream` and
 *    `route.chain` by hand, outside any try, before `checkOptions(proxyRules, …)` runs.
 * 2. docs/options.md "unknown keys are an error too, so a typo never silently does nothing" with the row
 *    `retry.retryOn.methods` "methods retried on any retryable outcome" (and the same table's `crossOriginHeaders`,
 *    whose entry "that is not [a header name] … is a `ConfigError`"). Observed: `retryOn.methods: ["POST "]` (a
 *    pasted space) or `["POST,PUT"]` is accepted and matches no method ever: a POST answered 500 goes once, where
 *    `["POST"]` retries it (3 requests at the real server). A name no method has can never be meant. Cause:
 *    src/core/options/option-rules.ts `retryRules.retryOn.methods: { list: "str+" }` (any non-empty string), where
 *    `crossOriginHeaders` is checked with `isHttpToken`; src/core/options/retry-options.ts `resolveRetry` only
 *    upper-cases.
 *
 * Held (plain `it`):
 * - the same bad value gives the same words after the prefix on every entry of one rule: `retry.maxAttempts`
 *   (root, ky, proxy, `execute`), `failureThreshold` (root, named breaker, `CircuitBreaker`), `maxConcurrent`
 *   (root, `Bulkhead`), `budget.ratio` (root, `RetryBudget`), `degradation.triggers.errorRate` (the stage and
 *   `configureTriggers`), for -0 (shown as 0), NaN, ±Infinity, 1.5, "3", `null`, 2^53, 0 and -1; at-bound values
 *   (1, 0 where `>= 0`, 2,147,483,647 for `timeout.attempt` and `hedge.delay`) taken and one past refused.
 * - a getter that throws is a `ConfigError` naming its own path on the root (nested in arrays too), in
 *   `fallback([…])`, `degradation({…})`, `configureTriggers`, ky, the proxy's `resilience`, `healthPath`, `store`
 *   and route chains, named breakers, `execute`, `retry(fn)`, `CircuitBreaker`, `RetryBudget`, `FallbackChain`.
 * - a misspelt key in the stages (`fallback.0`, `fallback.0.hedge`, `fallback.0.endpoints.0`, `degradation`,
 *   `degradation.levels`, `…medium`, `…triggers`, `…rules.0`, `…params`) and the policies is named under its parent.
 * - null-prototype options work on every entry, by behaviour: `maxAttempts: 2` makes 2 requests, a chain sends
 *   its header, a level override caps steps.
 * - edits after the call change nothing: root (`maxAttempts`, `retryOn.statuses`), ky (`resilience.retry`), a
 *   chain (url, header, endpoints), a degradation stage (levels, rules, sizeMultiple), `configureTriggers`.
 * - defaults by behaviour: full jitter over 1000 ms × 2ⁿ⁻¹ capped at 60000 ms (TestClock, real 503s); methods:
 *   PUT retried on a 500, POST not; `sizeMultiple` 8 and `undefined` overrides keep the level table.
 *
 * Docs-silent (not pinned):
 * - `new CircuitBreaker(key, policy, clock)` keeps `policy` by reference: `failureThreshold` set to NaN after it
 *   was checked makes a breaker that never opens (five failures, threshold 2, still closed); the copy promise lists
 *   only `createResilience`, the stages, ky and the proxy.
 * - `retry(fn)` words its own refusals (`expected an integer >= 1, received 0`) where every table-checked entry
 *   says `expected a value >= 1` / `expected number` / `expected an integer`; "What validates what" does not list
 *   `retry(fn)`.
 * - `budget.ratio` takes 1.5 or 2^53 (more than one token a call); `degradation.minSamples: 2**53` reports two
 *   problems (`<= 9007199254740991` and `<= 256`).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type RetryEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  Bulkhead,
  CircuitBreaker,
  FallbackChain,
  type ResolvedBreakerPolicy,
  RetryBudget,
  retry,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const route = { path: "/a", upstream: "http://x.test" };
const policy: ResolvedBreakerPolicy = {
  failureRate: undefined,
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 1000,
  halfOpenMaxCalls: 1,
  timeWindow: 1000,
  probeTimeout: 1000,
  minimumCalls: 100,
};

/** The error `f` throws (or its promise rejects with). */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** `{ path, message }` of a ConfigError, or a description of what came instead. */
async function refusal(f: () => unknown): Promise<{ path: string; message: string } | string> {
  const error = await caught(f);
  if (error instanceof ConfigError) return { path: error.path, message: error.message };
  return error === undefined ? "accepted" : `not a ConfigError: ${String(error)}`;
}

/** `o` with `key` a getter that throws. */
function throwing<T extends object>(o: T, key: PropertyKey): T {
  return Object.defineProperty(o, key, {
    get() {
      throw new Error("boom");
    },
    enumerable: true,
  });
}

function nullProto<T extends object>(o: T): T {
  return Object.assign(Object.create(null) as T, o);
}

const unreadable = "expected a value that can be read, received a value that cannot be read";

describe("defects", () => {
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  const cases: Array<[string, string, () => unknown]> = [
    ["routes.0.upstream", "a route's upstream getter", () => ({ routes: [throwing({ path: "/a" }, "upstream")] })],
    ["routes.0.path", "a route's path getter", () => ({ routes: [throwing({ upstream: "http://x.test" }, "path")] })],
    ["routes.0.chain", "a route's chain getter", () => ({ routes: [throwing({ path: "/a" }, "chain")] })],
    ["routes.0", "a route getter", () => ({ routes: throwing([] as unknown[], "0") })],
    ["routes.0", "a revoked Proxy as a route", () => ({ routes: [revoked] })],
    ["routes", "the routes getter", () => throwing({}, "routes")],
  ];
  for (const [path, what, make] of cases) {
    it(`resilientProxy: ${what} is a ConfigError naming ${path}`, async () => {
      const got = await refusal(() => resilientProxy(make() as never));
      expect(got).toEqual({ path, message: `${path}: ${unreadable}` });
    });
  }

  it("retry.retryOn.methods: a name no method has (a pasted space, a list in one string) is refused", async () => {
    for (const methods of [["POST "], ["POST,PUT"], [" get"]]) {
      const got = await refusal(() => createResilience({ retry: { retryOn: { methods } } }));
      expect(got).toMatchObject({ path: "retry.retryOn.methods.0" });
    }
  });
});

describe("held", () => {
  it("the control for defect 2: retryOn.methods [POST] retries a POST on a 500, default methods PUT not POST", async () => {
    const count = async (options: Parameters<typeof createResilience>[0], method: string): Promise<number> => {
      a.reset();
      a.on((hit) => {
        hit.res.statusCode = 500;
        hit.res.end("no");
      });
      const res = await createResilience(options).fetch(`${a.base}/job`, { method, body: "x" });
      expect(res.status).toBe(500);
      return a.hits.length;
    };
    expect(await count({ retry: { ...fast, retryOn: { methods: ["POST"] } } }, "POST")).toBe(3);
    expect(await count({ retry: { ...fast, retryOn: { methods: ["post"] } } }, "POST")).toBe(3);
    expect(await count({ retry: fast }, "POST")).toBe(1);
    expect(await count({ retry: fast }, "PUT")).toBe(3);
    expect(await count({ retry: { ...fast, retryOn: { methods: ["PUT", "POST"] } } }, "POST")).toBe(3);
  });

  it("one bad value, one message after the prefix, on every entry of one rule", async () => {
    const values: Array<[unknown, string]> = [
      [-0, "expected a value >= 1, received 0"],
      [Number.NaN, "expected number, received NaN"],
      [Number.POSITIVE_INFINITY, "expected number, received Infinity"],
      [Number.NEGATIVE_INFINITY, "expected number, received -Infinity"],
      [1.5, "expected an integer, received 1.5"],
      ["3", 'expected number, received "3"'],
      [null, "expected number, received null"],
      [2 ** 53, "expected a value <= 9007199254740991, received 9007199254740992"],
      [0, "expected a value >= 1, received 0"],
      [-1, "expected a value >= 1, received -1"],
    ];
    const r = createResilience();
    for (const [v, words] of values) {
      const n = v as number;
      const entries: Array<[string, () => unknown]> = [
        ["retry.maxAttempts", () => createResilience({ retry: { maxAttempts: n } })],
        ["resilience.retry.maxAttempts", () => createClient({ resilience: { retry: { maxAttempts: n } } })],
        [
          "resilience.retry.maxAttempts",
          () => resilientProxy({ routes: [route], resilience: { retry: { maxAttempts: n } } }),
        ],
        ["execute.retry.maxAttempts", () => r.execute(async () => 1, { retry: { maxAttempts: n } })],
        ["breaker.failureThreshold", () => createResilience({ breaker: { failureThreshold: n } })],
        ['breaker("g").failureThreshold', () => r.breaker("g", { failureThreshold: n })],
        [
          "CircuitBreaker.failureThreshold",
          () => new CircuitBreaker("k", { ...policy, failureThreshold: n }, new TestClock()),
        ],
        ["bulkhead.maxConcurrent", () => createResilience({ bulkhead: { maxConcurrent: n } })],
        ["Bulkhead.maxConcurrent", () => new Bulkhead("k", n, 0)],
      ];
      for (const [path, f] of entries) expect(await refusal(f)).toEqual({ path, message: `${path}: ${words}` });
    }
    // Rules with a lower bound of 0: at the bound taken, one past refused, the same words.
    for (const [v, words] of [
      [-1, "expected a value >= 0, received -1"],
      [Number.NaN, "expected number, received NaN"],
      ["0.5", 'expected number, received "0.5"'],
    ] as const) {
      const n = v as number;
      expect(await refusal(() => createResilience({ budget: { ratio: n } }))).toEqual({
        path: "budget.ratio",
        message: `budget.ratio: ${words}`,
      });
      expect(await refusal(() => new RetryBudget({ ratio: n, minPerSecond: 1 }))).toEqual({
        path: "RetryBudget.ratio",
        message: `RetryBudget.ratio: ${words}`,
      });
    }
    expect(await refusal(() => createResilience({ budget: { ratio: 0, minPerSecond: -0 } }))).toBe("accepted");
    // degradation triggers: the stage and configureTriggers, one path, one message.
    const layer = createResilience({ degradation: degradation({}) });
    for (const v of [-0.000001, 1.000001, Number.NaN, "0.1", null]) {
      const stage = await refusal(() => degradation({ triggers: { errorRate: v as number } }));
      const later = await refusal(() => layer.degradation.configureTriggers({ errorRate: v as number }));
      expect(stage).toMatchObject({ path: "degradation.triggers.errorRate" });
      expect(later).toEqual(stage);
    }
    expect(await refusal(() => layer.degradation.configureTriggers({ errorRate: 1, cpuUsage: 0 }))).toBe("accepted");
    // The timer bound: the same words for an attempt's timeout and a hedge's delay.
    const max = 2_147_483_647;
    expect(await refusal(() => createResilience({ timeout: { attempt: max } }))).toBe("accepted");
    const hedge = (delay: number) => () =>
      fallback([{ name: "c", hedge: { delay }, endpoints: [{ name: "p", url: a.base || "http://x.test" }] }]);
    expect(await refusal(hedge(max))).toBe("accepted");
    expect(await refusal(hedge(0))).toBe("accepted");
    const over = await refusal(() => createResilience({ timeout: { attempt: max + 0.5 } }));
    expect(over).toEqual({
      path: "timeout.attempt",
      message: `timeout.attempt: expected a value <= ${max}, received ${max + 0.5}`,
    });
    expect(await refusal(hedge(max + 0.5))).toEqual({
      path: "fallback.0.hedge.delay",
      message: `fallback.0.hedge.delay: expected a value <= ${max}, received ${max + 0.5}`,
    });
  });

  it("a getter that throws is a ConfigError naming its own path, on every entry", async () => {
    const r = createResilience({ degradation: degradation({}) });
    const url = "http://x.test/v1";
    const cases: Array<[string, () => unknown]> = [
      ["retry.maxAttempts", () => createResilience({ retry: throwing({}, "maxAttempts") })],
      ["retry.retryOn.statuses.0", () => createResilience({ retry: { retryOn: { statuses: throwing([], "0") } } })],
      ["crossOriginHeaders.0", () => createResilience({ crossOriginHeaders: throwing([], "0") })],
      ["fallback.0.endpoints.0.url", () => fallback([{ name: "c", endpoints: [throwing({ name: "p", url }, "url")] }])],
      [
        "fallback.0.endpoints.0.headers.x-k",
        () => fallback([{ name: "c", endpoints: [{ name: "p", url, headers: throwing({}, "x-k") }] }]),
      ],
      [
        "fallback.0.hedge.delay",
        () => fallback([{ name: "c", hedge: throwing({ delay: 1 }, "delay"), endpoints: [{ name: "p", url }] }]),
      ],
      ["degradation.levels.medium", () => degradation({ levels: throwing({}, "medium") })],
      ["degradation.rules.0.params.steps", () => degradation({ rules: [{ params: throwing({}, "steps") }] })],
      ["degradation.models.0.0", () => degradation({ models: [throwing([], "0")] })],
      ["degradation.window", () => degradation(throwing({}, "window"))],
      ["degradation.triggers.cpuUsage", () => r.degradation.configureTriggers(throwing({}, "cpuUsage"))],
      ["resilience.retry.maxAttempts", () => createClient({ resilience: { retry: throwing({}, "maxAttempts") } })],
      ["resilience", () => createClient(throwing({}, "resilience"))],
      [
        "resilience.breaker.timeout",
        () => resilientProxy({ routes: [route], resilience: { breaker: throwing({}, "timeout") } }),
      ],
      ["healthPath", () => resilientProxy(throwing({ routes: [route] }, "healthPath"))],
      ["store", () => resilientProxy(throwing({ routes: [route] }, "store"))],
      [
        "routes.0.chain.endpoints.0.url",
        () =>
          resilientProxy({
            routes: [{ path: "/a", chain: { name: "c", endpoints: [throwing({ name: "p", url }, "url")] } }],
          }),
      ],
      ['breaker("g").failureThreshold', () => r.breaker("g", throwing({}, "failureThreshold"))],
      ["execute.retry.jitter", () => r.execute(async () => 1, { retry: throwing({}, "jitter") })],
      ["retry.jitter", () => retry(async () => 1, throwing({}, "jitter"))],
      [
        "CircuitBreaker.minimumCalls",
        () => new CircuitBreaker("k", throwing({ ...policy }, "minimumCalls"), new TestClock()),
      ],
      ["RetryBudget.minPerSecond", () => new RetryBudget(throwing({ ratio: 1, minPerSecond: 1 }, "minPerSecond"))],
      ["FallbackChain.order", () => new FallbackChain("c", throwing({}, "order"))],
    ];
    for (const [path, f] of cases) expect(await refusal(f)).toEqual({ path, message: `${path}: ${unreadable}` });
  });

  it("a misspelt key in the stages and the policies is named under its parent", async () => {
    const url = "http://x.test/v1";
    const cases: Array<[string, string, () => unknown]> = [
      ["fallback.0", "oder", () => fallback([{ name: "c", oder: "fixed", endpoints: [{ name: "p", url }] } as never])],
      [
        "fallback.0.hedge",
        "dealy",
        () => fallback([{ name: "c", hedge: { delay: 1, dealy: 2 }, endpoints: [{ name: "p", url }] } as never]),
      ],
      [
        "fallback.0.endpoints.0",
        "expectedQualty",
        () => fallback([{ name: "c", endpoints: [{ name: "p", url, expectedQualty: 1 }] } as never]),
      ],
      ["degradation", "trigger", () => degradation({ trigger: {} } as never)],
      ["degradation.levels", "meduim", () => degradation({ levels: { meduim: {} } } as never)],
      ["degradation.levels.medium", "maxStep", () => degradation({ levels: { medium: { maxStep: 3 } } } as never)],
      ["degradation.triggers", "errorrate", () => degradation({ triggers: { errorrate: 0.2 } } as never)],
      ["degradation.rules.0", "mach", () => degradation({ rules: [{ params: {}, mach: "x" }] } as never)],
      ["degradation.rules.0.params", "step", () => degradation({ rules: [{ params: { step: "s" } }] } as never)],
      ["FallbackChain", "oder", () => new FallbackChain("c", { oder: "fixed" } as never)],
      ["RetryBudget", "ratoi", () => new RetryBudget({ ratio: 1, minPerSecond: 1, ratoi: 2 } as never)],
      [
        "CircuitBreaker",
        "failureTreshold",
        () => new CircuitBreaker("k", { ...policy, failureTreshold: 2 } as never, new TestClock()),
      ],
      [
        "CircuitBreaker",
        "onChnage",
        () => new CircuitBreaker("k", policy, new TestClock(), { onChnage: () => {} } as never),
      ],
      ["retry", "maxAttempt", () => retry(async () => 1, { maxAttempt: 2 } as never)],
      ["retry", "maxAttempt", () => createResilience({ retry: { maxAttempt: 2 } } as never)],
    ];
    for (const [path, key, f] of cases)
      expect(await refusal(f)).toEqual({ path, message: `${path}: unknown option "${key}"` });
  });

  it("null-prototype options work on every entry, by behaviour", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const retryOpts = nullProto({ maxAttempts: 2, ...fast });
    const res = await createResilience(nullProto({ retry: retryOpts, breaker: nullProto({ timeout: 5 }) })).fetch(
      `${a.base}/x`,
    );
    expect(res.status).toBe(503);
    expect(a.hits).toHaveLength(2);
    a.reset();
    const ky = createClient(nullProto({ resilience: nullProto({ retry: nullProto({ maxAttempts: 2, ...fast }) }) }));
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    await expect(ky.get(`${a.base}/k`)).rejects.toThrow();
    expect(a.hits).toHaveLength(2);
    a.reset();
    const chain = nullProto({
      name: "c",
      endpoints: [nullProto({ name: "p", url: a.base, headers: nullProto({ "x-k": "v" }) })],
    });
    const viaChain = await createResilience({ fallback: fallback([chain]), retry: false }).fetch(`${a.base}/c`);
    expect(viaChain.status).toBe(200);
    expect(a.hits[0]?.headers["x-k"]).toBe("v");
    const d = createResilience({
      degradation: degradation(nullProto({ levels: nullProto({ medium: nullProto({ maxSteps: 7 }) }) })),
    }).degradation;
    d.setLevel("medium");
    expect(d.adjust({ steps: 50 })).toEqual({ steps: 7 });
    expect(await retry(async () => 1, nullProto({ maxAttempts: 2, retryOn: nullProto({ error: () => true }) }))).toBe(
      1,
    );
    expect(new RetryBudget(nullProto({ ratio: 0.1, minPerSecond: 1 }), new TestClock()).tryRetry()).toBe(true);
    expect(await refusal(() => resilientProxy(nullProto({ routes: [nullProto(route)] })))).toBe("accepted");
    expect(await refusal(() => createResilience(nullProto({ retry: nullProto({ maxAttempts: 0 }) })))).toEqual({
      path: "retry.maxAttempts",
      message: "retry.maxAttempts: expected a value >= 1, received 0",
    });
  });

  it("edits after the call change nothing: root, ky, a chain, a degradation stage, configureTriggers", async () => {
    const busy = () =>
      a.on((hit) => {
        hit.res.statusCode = 503;
        hit.res.end("busy");
      });
    busy();
    const options = { retry: { ...fast, maxAttempts: 2, retryOn: { statuses: [503] } } };
    const r = createResilience(options);
    options.retry.maxAttempts = 5;
    options.retry.retryOn.statuses.length = 0;
    await r.fetch(`${a.base}/r`);
    expect(a.hits).toHaveLength(2);
    a.reset();
    busy();
    const kyOptions = { resilience: { retry: { ...fast, maxAttempts: 2 } } };
    const ky = createClient(kyOptions);
    kyOptions.resilience.retry.maxAttempts = 1;
    await expect(ky.get(`${a.base}/k`)).rejects.toThrow();
    expect(a.hits).toHaveLength(2);
    a.reset();
    b.reset();
    const chain = {
      name: "c",
      endpoints: [
        { name: "p", url: a.base, headers: { "x-k": "1" } },
        { name: "q", url: b.base },
      ],
    };
    const stage = fallback([chain]);
    (chain.endpoints[0] as { url: string }).url = b.base;
    (chain.endpoints[0] as { headers: Record<string, string> }).headers["x-k"] = "2";
    chain.endpoints.length = 1;
    const res = await createResilience({ fallback: stage, retry: false }).fetch(`${a.base}/c`);
    expect(res.status).toBe(200);
    expect(a.hits).toHaveLength(1);
    expect(b.hits).toHaveLength(0);
    expect(a.hits[0]?.headers["x-k"]).toBe("1");
    const dOptions = {
      levels: { medium: { maxSteps: 7 } },
      sizeMultiple: 10,
      rules: [{ params: { steps: "s", resolution: "size" } }],
    };
    const d = createResilience({ degradation: degradation(dOptions) }).degradation;
    dOptions.levels.medium.maxSteps = 1;
    dOptions.sizeMultiple = 1;
    (dOptions.rules[0] as { params: Record<string, string> }).params.steps = "other";
    d.setLevel("medium");
    expect(d.adjust({ steps: 50, resolution: "1000x1000" })).toEqual({ steps: 7, resolution: "900x900" });
    const triggers = { errorRate: 0.5 };
    const layer = createResilience({ degradation: degradation({}) });
    layer.degradation.configureTriggers(triggers);
    triggers.errorRate = Number.NaN;
    expect(await refusal(() => layer.degradation.configureTriggers({}))).toBe("accepted");
  });

  it("defaults by behaviour: full jitter over 1000 ms x 2^(n-1), capped at 60000 ms; sizeMultiple 8; undefined keeps the level table", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("busy");
    });
    const clock = new TestClock();
    const r = createResilience({ clock, random: () => 0.5, retry: { maxAttempts: 9 }, budget: false });
    const delays: number[] = [];
    r.on("retry", (e: RetryEvent) => delays.push(e.delay));
    const res = await clock.run(r.fetch(`${a.base}/d`));
    expect(res.status).toBe(503);
    expect(a.hits).toHaveLength(9);
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    const d = createResilience({
      degradation: degradation({
        levels: { medium: { maxSteps: undefined, qualityMultiplier: undefined } as never },
        sizeMultiple: undefined,
        rules: [{ params: { steps: "steps", resolution: "size", quality: "quality" } }],
      }),
    }).degradation;
    d.setLevel("medium");
    // medium: quality x 0.8, resolution x 0.9 rounded down to a multiple of 8, steps capped at 30.
    expect(d.adjust({ steps: 50, quality: 1, resolution: "1000x1000" })).toEqual({
      steps: 30,
      quality: 0.8,
      resolution: "896x896",
    });
  });
});
