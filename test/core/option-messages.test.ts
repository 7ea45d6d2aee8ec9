import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, isConfigError, type ResilienceOptions } from "../../src/index.ts";

/**
 * The exact `ConfigError` of one bad value per option: its `path` and its
 * whole message. These are the messages users see and may match on, so a
 * change of validator must keep them letter for letter. Cases where several
 * problems are reported at once pin the order and the `; ` joining too.
 */
const cases: Array<[unknown, string, string]> = [
  [{ retry: true }, "retry", "retry: expected false or object, received true"],
  [{ retry: { maxAttempts: 0 } }, "retry.maxAttempts", "retry.maxAttempts: expected a value >= 1, received 0"],
  [{ retry: { maxAttempts: 2.5 } }, "retry.maxAttempts", "retry.maxAttempts: expected an integer, received 2.5"],
  [
    { retry: { maxAttempts: 1e300 } },
    "retry.maxAttempts",
    "retry.maxAttempts: expected a value <= 9007199254740991, received 1e+300",
  ],
  [{ retry: { initialDelay: -5 } }, "retry.initialDelay", "retry.initialDelay: expected a value >= 0, received -5"],
  [{ retry: { maxDelay: Number.NaN } }, "retry.maxDelay", "retry.maxDelay: expected number, received NaN"],
  [
    { retry: { exponentialBase: 0 } },
    "retry.exponentialBase",
    "retry.exponentialBase: expected a value >= 1, received 0",
  ],
  [
    { retry: { jitter: "half" } },
    "retry.jitter",
    'retry.jitter: expected one of "full", "equal", "decorrelated", "none", received "half"',
  ],
  [{ retry: { retryOn: [] } }, "retry.retryOn", "retry.retryOn: expected object, received an array"],
  [{ retry: { retryOn: { status: [503] } } }, "retry.retryOn", 'retry.retryOn: unknown option "status"'],
  [
    { retry: { retryOn: { statuses: 503 } } },
    "retry.retryOn.statuses",
    "retry.retryOn.statuses: expected array, received 503",
  ],
  [
    { retry: { retryOn: { statuses: [600] } } },
    "retry.retryOn.statuses.0",
    "retry.retryOn.statuses.0: expected a value <= 599, received 600",
  ],
  [
    { retry: { retryOn: { statuses: [502.5] } } },
    "retry.retryOn.statuses.0",
    "retry.retryOn.statuses.0: expected an integer, received 502.5",
  ],
  [
    { retry: { retryOn: { methods: ["GET", ""] } } },
    "retry.retryOn.methods.1",
    'retry.retryOn.methods.1: expected a method name, received ""',
  ],
  [
    { retry: { retryOn: { methods: "GET" } } },
    "retry.retryOn.methods",
    'retry.retryOn.methods: expected array, received "GET"',
  ],
  [
    { retry: { retryOn: { error: "TypeError" } } },
    "retry.retryOn.error",
    'retry.retryOn.error: expected a function, received "TypeError"',
  ],
  [{ retry: { maxRetryAfter: -1 } }, "retry.maxRetryAfter", "retry.maxRetryAfter: expected a value >= 0, received -1"],
  [
    { retry: { idempotencyKey: "yes" } },
    "retry.idempotencyKey",
    'retry.idempotencyKey: expected boolean, received "yes"',
  ],
  [
    { retry: { maxAttempts: 0, initialDelay: -1 } },
    "retry.maxAttempts",
    "retry.maxAttempts: expected a value >= 1, received 0; retry.initialDelay: expected a value >= 0, received -1",
  ],
  [
    { retry: { maxAttempts: "3", jitter: "x" } },
    "retry.maxAttempts",
    'retry.maxAttempts: expected number, received "3"',
  ],
  [
    { retry: { maxAttempts: 0, extra: 1, other: 2 } },
    "retry.maxAttempts",
    'retry.maxAttempts: expected a value >= 1, received 0; retry: unknown options "extra", "other"',
  ],
  [{ budget: { ratio: "0.1" } }, "budget.ratio", 'budget.ratio: expected number, received "0.1"'],
  [{ budget: { minPerSecond: -1 } }, "budget.minPerSecond", "budget.minPerSecond: expected a value >= 0, received -1"],
  [{ budget: { tokens: 1 } }, "budget", 'budget: unknown option "tokens"'],
  [{ timeout: 1000 }, "timeout", "timeout: expected object, received 1000"],
  [{ timeout: { attempt: -1 } }, "timeout.attempt", "timeout.attempt: expected a value > 0, received -1"],
  [{ timeout: { total: 0 } }, "timeout.total", "timeout.total: expected a value > 0, received 0"],
  [{ timeout: { overall: 1 } }, "timeout", 'timeout: unknown option "overall"'],
  [{ breaker: true }, "breaker", "breaker: expected false or object, received true"],
  [
    { breaker: { failureThreshold: 0 } },
    "breaker.failureThreshold",
    "breaker.failureThreshold: expected a value >= 1, received 0",
  ],
  [
    { breaker: { successThreshold: 1.5 } },
    "breaker.successThreshold",
    "breaker.successThreshold: expected an integer, received 1.5",
  ],
  [{ breaker: { timeout: -1 } }, "breaker.timeout", "breaker.timeout: expected a value >= 0, received -1"],
  [
    { breaker: { halfOpenMaxCalls: 0 } },
    "breaker.halfOpenMaxCalls",
    "breaker.halfOpenMaxCalls: expected a value >= 1, received 0",
  ],
  [{ breaker: { timeWindow: 0 } }, "breaker.timeWindow", "breaker.timeWindow: expected a value > 0, received 0"],
  [
    { breaker: { probeTimeout: Number.POSITIVE_INFINITY } },
    "breaker.probeTimeout",
    "breaker.probeTimeout: expected number, received Infinity",
  ],
  [{ breaker: { isFailure: true } }, "breaker.isFailure", "breaker.isFailure: expected a function, received true"],
  [{ breaker: { failureRate: 0 } }, "breaker.failureRate", "breaker.failureRate: expected a value > 0, received 0"],
  [
    { breaker: { failureRate: 1.5 } },
    "breaker.failureRate",
    "breaker.failureRate: expected a value <= 1, received 1.5",
  ],
  [{ breaker: { minimumCalls: 0 } }, "breaker.minimumCalls", "breaker.minimumCalls: expected a value >= 1, received 0"],
  [{ breaker: { key: "host" } }, "breaker.key", 'breaker.key: expected a function, received "host"'],
  [{ breaker: { maxHosts: -1 } }, "breaker.maxHosts", "breaker.maxHosts: expected a value >= 1, received -1"],
  [{ breaker: { resetTimeout: 1 } }, "breaker", 'breaker: unknown option "resetTimeout"'],
  [{ bulkhead: 4 }, "bulkhead", "bulkhead: expected object, received 4"],
  [{ bulkhead: {} }, "bulkhead.maxConcurrent", "bulkhead.maxConcurrent: expected number, received undefined"],
  [
    { bulkhead: { maxConcurrent: 0 } },
    "bulkhead.maxConcurrent",
    "bulkhead.maxConcurrent: expected a value >= 1, received 0",
  ],
  [
    { bulkhead: { maxConcurrent: 1, maxQueue: -1 } },
    "bulkhead.maxQueue",
    "bulkhead.maxQueue: expected a value >= 0, received -1",
  ],
  [{ store: "memory" }, "store", 'store: expected object, received "memory"'],
  [
    { store: { name: "x" } },
    "store.publish",
    "store.publish: expected a function, received undefined; store.peek: expected a function, received undefined",
  ],
  [{ store: { name: 1, publish: () => {}, peek: () => {} } }, "store.name", "store.name: expected string, received 1"],
  [{ fallback: {} }, "fallback", "fallback: expected array, received an object"],
  [
    { fallback: [{}] },
    "fallback.0.name",
    "fallback.0.name: expected string, received undefined; fallback.0.endpoints: expected array, received undefined",
  ],
  [
    { fallback: [{ name: "", endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.name",
    'fallback.0.name: expected a value >= 1, received ""',
  ],
  [
    { fallback: [{ name: "c", endpoints: [] }] },
    "fallback.0.endpoints",
    "fallback.0.endpoints: expected a value >= 1, received an array; fallback.0.endpoints.0.url: expected a first endpoint with a `url` (it selects the requests that use the chain), received nothing",
  ],
  [
    { fallback: [{ name: "c", order: "random", endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.order",
    'fallback.0.order: expected one of "fixed", "adaptive", received "random"',
  ],
  [
    { fallback: [{ name: "c", hedge: 100, endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.hedge",
    "fallback.0.hedge: expected object, received 100",
  ],
  [
    { fallback: [{ name: "c", hedge: { delay: -1 }, endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.hedge.delay",
    "fallback.0.hedge.delay: expected a value >= 0, received -1",
  ],
  [
    { fallback: [{ name: "c", hedge: {}, endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.hedge.delay",
    "fallback.0.hedge.delay: expected number, received undefined",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "ftp://a.example" }] }] },
    "fallback.0.endpoints.0.url",
    'fallback.0.endpoints.0.url: expected an absolute http(s) URL, received "ftp://a.example"',
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "/relative" }] }] },
    "fallback.0.endpoints.0.url",
    'fallback.0.endpoints.0.url: expected an absolute http(s) URL, received "/relative"',
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ url: "https://a.example" }] }] },
    "fallback.0.endpoints.0.name",
    "fallback.0.endpoints.0.name: expected string, received undefined",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", respond: () => new Response() }] }] },
    "fallback.0.endpoints.0.url",
    "fallback.0.endpoints.0.url: expected a first endpoint with a `url` (it selects the requests that use the chain), received undefined",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example" }, { name: "b" }] }] },
    "fallback.0.endpoints",
    "fallback.0.endpoints: expected each endpoint to have either `url` or `respond`, not both, received an array",
  ],
  [
    {
      fallback: [
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "b", url: "https://b.example", respond: () => new Response() },
          ],
        },
      ],
    },
    "fallback.0.endpoints",
    "fallback.0.endpoints: expected each endpoint to have either `url` or `respond`, not both, received an array",
  ],
  [
    {
      fallback: [
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example" },
            { name: "a", url: "https://b.example" },
          ],
        },
      ],
    },
    "fallback.0.endpoints",
    "fallback.0.endpoints: expected endpoint names to be unique, received an array",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", respond: "x" }] }] },
    "fallback.0.endpoints.0.respond",
    'fallback.0.endpoints.0.respond: expected a function, received "x"',
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", expectedQuality: 2 }] }] },
    "fallback.0.endpoints.0.expectedQuality",
    "fallback.0.endpoints.0.expectedQuality: expected a value <= 1, received 2",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", headers: { "x-key": 1 } }] }] },
    "fallback.0.endpoints.0.headers.x-key",
    "fallback.0.endpoints.0.headers.x-key: expected string, received 1",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", headers: "x" }] }] },
    "fallback.0.endpoints.0.headers",
    'fallback.0.endpoints.0.headers: expected record, received "x"',
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", transform: {} }] }] },
    "fallback.0.endpoints.0.transform",
    "fallback.0.endpoints.0.transform: expected a function, received an object",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", validate: () => true }] }] },
    "fallback.0.endpoints.0.validate",
    "fallback.0.endpoints.0.validate: expected a Standard Schema (zod, valibot, …), received a function",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", weight: 1 }] }] },
    "fallback.0.endpoints.0",
    'fallback.0.endpoints.0: unknown option "weight"',
  ],
  [
    {
      fallback: [
        { name: "c", endpoints: [{ name: "a", url: "https://a.example" }] },
        { name: "c", endpoints: [{ name: "b", url: "https://b.example" }] },
      ],
    },
    "fallback",
    "fallback: expected chain names to be unique, received an array",
  ],
  [{ degradation: [] }, "degradation", "degradation: expected object, received an array"],
  [{ degradation: { levels: { extreme: {} } } }, "degradation.levels", 'degradation.levels: unknown option "extreme"'],
  [
    { degradation: { levels: { medium: { percentage: 101 } } } },
    "degradation.levels.medium.percentage",
    "degradation.levels.medium.percentage: expected a value <= 100, received 101",
  ],
  [
    { degradation: { levels: { medium: { qualityMultiplier: 0 } } } },
    "degradation.levels.medium.qualityMultiplier",
    "degradation.levels.medium.qualityMultiplier: expected a value > 0, received 0",
  ],
  [
    { degradation: { levels: { medium: { resolutionScale: 1.1 } } } },
    "degradation.levels.medium.resolutionScale",
    "degradation.levels.medium.resolutionScale: expected a value <= 1, received 1.1",
  ],
  [
    { degradation: { levels: { medium: { maxSteps: 0 } } } },
    "degradation.levels.medium.maxSteps",
    "degradation.levels.medium.maxSteps: expected a value >= 1, received 0",
  ],
  [
    { degradation: { levels: { medium: { maxSteps: "10" } } } },
    "degradation.levels.medium.maxSteps",
    'degradation.levels.medium.maxSteps: expected null or number, received "10"',
  ],
  [
    { degradation: { levels: { medium: { features: "core" } } } },
    "degradation.levels.medium.features",
    'degradation.levels.medium.features: expected array, received "core"',
  ],
  [
    { degradation: { levels: { medium: { modelStep: -1 } } } },
    "degradation.levels.medium.modelStep",
    "degradation.levels.medium.modelStep: expected a value >= 0, received -1",
  ],
  [
    { degradation: { levels: { high: { speed: 1 } } } },
    "degradation.levels.high",
    'degradation.levels.high: unknown option "speed"',
  ],
  [
    { degradation: { triggers: { errorRate: 2 } } },
    "degradation.triggers.errorRate",
    "degradation.triggers.errorRate: expected a value <= 1, received 2",
  ],
  [
    { degradation: { triggers: { responseTime: 0 } } },
    "degradation.triggers.responseTime",
    "degradation.triggers.responseTime: expected a value > 0, received 0",
  ],
  [
    { degradation: { triggers: { memoryUsage: -0.1 } } },
    "degradation.triggers.memoryUsage",
    "degradation.triggers.memoryUsage: expected a value >= 0, received -0.1",
  ],
  [
    { degradation: { triggers: { cpuUsage: "high" } } },
    "degradation.triggers.cpuUsage",
    'degradation.triggers.cpuUsage: expected number, received "high"',
  ],
  [{ degradation: { rules: {} } }, "degradation.rules", "degradation.rules: expected array, received an object"],
  [
    { degradation: { rules: [{}] } },
    "degradation.rules.0.params",
    "degradation.rules.0.params: expected object, received undefined",
  ],
  [
    { degradation: { rules: [{ match: "", params: {} }] } },
    "degradation.rules.0.match",
    'degradation.rules.0.match: expected a value >= 1, received ""',
  ],
  [
    { degradation: { rules: [{ params: { quality: "" } }] } },
    "degradation.rules.0.params.quality",
    'degradation.rules.0.params.quality: expected a value >= 1, received ""; degradation.rules.0.params.quality: expected a dotted path without empty, __proto__, constructor or prototype segments, received ""',
  ],
  [
    { degradation: { rules: [{ params: { steps: "a..b" } }] } },
    "degradation.rules.0.params.steps",
    'degradation.rules.0.params.steps: expected a dotted path without empty, __proto__, constructor or prototype segments, received "a..b"',
  ],
  [
    { degradation: { rules: [{ params: { steps: { body: "__proto__" } } }] } },
    "degradation.rules.0.params.steps.body",
    'degradation.rules.0.params.steps.body: expected a dotted path without empty, __proto__, constructor or prototype segments, received "__proto__"',
  ],
  [
    { degradation: { rules: [{ params: { steps: { query: "" } } }] } },
    "degradation.rules.0.params.steps.query",
    'degradation.rules.0.params.steps.query: expected a value >= 1, received ""',
  ],
  [
    // The key the caller wrote, not the first branch's (found by test/core/options-fuzz.test.ts).
    { degradation: { rules: [{ params: { steps: { header: 1 } } }] } },
    "degradation.rules.0.params.steps.header",
    "degradation.rules.0.params.steps.header: expected string, received 1",
  ],
  [
    { degradation: { rules: [{ params: { steps: {} } }] } },
    "degradation.rules.0.params.steps.body",
    "degradation.rules.0.params.steps.body: expected string, received undefined",
  ],
  [
    { degradation: { rules: [{ params: { steps: 5 } }] } },
    "degradation.rules.0.params.steps",
    "degradation.rules.0.params.steps: expected string or object, received 5",
  ],
  [
    { degradation: { rules: [{ params: { steps: { body: "a", query: "b" } } }] } },
    "degradation.rules.0.params.steps.header",
    "degradation.rules.0.params.steps.header: expected string, received undefined",
  ],
  [
    { degradation: { rules: [{ params: { seed: "seed" } }] } },
    "degradation.rules.0.params",
    'degradation.rules.0.params: unknown option "seed"',
  ],
  [
    { degradation: { resolutions: [] } },
    "degradation.resolutions",
    "degradation.resolutions: expected a value >= 1, received an array",
  ],
  [
    { degradation: { resolutions: ["1080"] } },
    "degradation.resolutions.0",
    'degradation.resolutions.0: expected a resolution such as "720p", received "1080"',
  ],
  [
    { degradation: { resolutions: "" } },
    "degradation.resolutions",
    'degradation.resolutions: expected array, received ""; degradation.resolutions: expected a value >= 1, received ""',
  ],
  [
    { degradation: { sizeMultiple: 0 } },
    "degradation.sizeMultiple",
    "degradation.sizeMultiple: expected a value >= 1, received 0",
  ],
  [
    { degradation: { models: [[]] } },
    "degradation.models.0",
    "degradation.models.0: expected a value >= 1, received an array",
  ],
  [
    { degradation: { models: [["a", ""]] } },
    "degradation.models.0.1",
    'degradation.models.0.1: expected a value >= 1, received ""',
  ],
  [{ degradation: { models: ["a"] } }, "degradation.models.0", 'degradation.models.0: expected array, received "a"'],
  [
    {
      degradation: {
        models: [
          ["large", "small"],
          ["a", "b", "a"],
        ],
      },
    },
    "degradation.models.1",
    "degradation.models.1: expected each name once, received an array",
  ],
  [{ degradation: { window: 0 } }, "degradation.window", "degradation.window: expected a value > 0, received 0"],
  [
    { degradation: { minSamples: 0 } },
    "degradation.minSamples",
    "degradation.minSamples: expected a value >= 1, received 0",
  ],
  // The window holds 256 calls at most: more samples could never be met.
  [
    { degradation: { minSamples: 257 } },
    "degradation.minSamples",
    "degradation.minSamples: expected a value <= 256, received 257",
  ],
  [
    { degradation: { stepInterval: -1 } },
    "degradation.stepInterval",
    "degradation.stepInterval: expected a value >= 0, received -1",
  ],
  [
    { degradation: { restoreAfter: -1 } },
    "degradation.restoreAfter",
    "degradation.restoreAfter: expected a value >= 0, received -1",
  ],
  [
    { degradation: { levelHeader: "" } },
    "degradation.levelHeader",
    // Described, never quoted, since the fiftieth session: a header pasted whole holds its secret.
    "degradation.levelHeader: expected an HTTP header name (a token), received a string",
  ],
  [
    { degradation: { browserSignals: 1 } },
    "degradation.browserSignals",
    "degradation.browserSignals: expected boolean, received 1",
  ],
  [{ degradation: { trigger: {} } }, "degradation", 'degradation: unknown option "trigger"'],
  [{ maxReplayBytes: 1.5 }, "maxReplayBytes", "maxReplayBytes: expected an integer, received 1.5"],
  [{ maxReplayBytes: -1 }, "maxReplayBytes", "maxReplayBytes: expected a value >= 0, received -1"],
  [{ crossOriginHeaders: "x-id" }, "crossOriginHeaders", 'crossOriginHeaders: expected array, received "x-id"'],
  [
    { crossOriginHeaders: [""] },
    "crossOriginHeaders.0",
    "crossOriginHeaders.0: expected a header name, received a string",
  ],
  // A header pasted whole (name and value, a key in it) is refused and never quoted.
  [
    { crossOriginHeaders: ["x-api-key: sk-123"] },
    "crossOriginHeaders.0",
    "crossOriginHeaders.0: expected a header name, received a string",
  ],
  [{ redirects: "manual" }, "redirects", 'redirects: expected one of "library", "platform", received "manual"'],
  [{ fetch: {} }, "fetch", "fetch: expected a function, received an object"],
  [{ clock: Date }, "clock", "clock: expected object, received a function"],
  [{ clock: { now: 0, setTimer: () => {} } }, "clock.now", "clock.now: expected a function, received 0"],
  [{ random: 0.5 }, "random", "random: expected a function, received 0.5"],
  [null, "options", "options: expected object, received null"],
  [[], "options", "options: expected object, received an array"],
  ["x", "options", 'options: expected object, received "x"'],
  [
    { fallback: [{ name: [], endpoints: [{ name: "a", url: "https://a.example" }] }] },
    "fallback.0.name",
    "fallback.0.name: expected string, received an array",
  ],
  [
    { degradation: { rules: [{ params: { steps: { body: "" } } }] } },
    "degradation.rules.0.params.steps.body",
    'degradation.rules.0.params.steps.body: expected a value >= 1, received ""; degradation.rules.0.params.steps.body: expected a dotted path without empty, __proto__, constructor or prototype segments, received ""',
  ],
  [
    { retry: { maxAttempts: -1e300 } },
    "retry.maxAttempts",
    "retry.maxAttempts: expected a value >= -9007199254740991, received -1e+300; retry.maxAttempts: expected a value >= 1, received -1e+300",
  ],
  [
    { fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example", headers: { ok: "1", bad: 2 } }] }] },
    "fallback.0.endpoints.0.headers.bad",
    "fallback.0.endpoints.0.headers.bad: expected string, received 2",
  ],
  [{ retry: { maxAttempts: "3" } }, "retry.maxAttempts", 'retry.maxAttempts: expected number, received "3"'],
  [{ retry: { maxAtempts: 3 } }, "retry", 'retry: unknown option "maxAtempts"'],
  [{ retries: 3 }, "options", 'options: unknown option "retries"'],
  [
    { retry: { maxDelay: Number.POSITIVE_INFINITY } },
    "retry.maxDelay",
    "retry.maxDelay: expected number, received Infinity",
  ],
  [
    { retry: { retryOn: { statuses: [503, 99] } } },
    "retry.retryOn.statuses.1",
    "retry.retryOn.statuses.1: expected a value >= 100, received 99",
  ],
  [{ budget: true }, "budget", "budget: expected false or object, received true"],
  [{ clock: { now: () => 0 } }, "clock.setTimer", "clock.setTimer: expected a function, received undefined"],
  [{ fetch: "https://x" }, "fetch", 'fetch: expected a function, received "https://x"'],
  [42, "options", "options: expected object, received 42"],
];

/** The `ConfigError` `promise` rejects with (`execute`'s, like fetch's, is a rejection). */
async function rejectionOf(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isConfigError(error)).toBe(true);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

function configErrorOf(run: () => unknown): ConfigError {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(isConfigError(error)).toBe(true);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

/**
 * Creates a layer from 0.1-shaped options: chains and degradation options go
 * through `fallback(…)` and `degradation(…)`, which check them under the
 * same paths (`fallback.0.name`, `degradation.levels.full`).
 */
function createFromOptions(options: unknown): unknown {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return createResilience(options as ResilienceOptions);
  }
  const o = options as { fallback?: unknown; degradation?: unknown };
  return createResilience({
    ...(o as ResilienceOptions),
    ...("fallback" in o ? { fallback: fallback(o.fallback as never) } : {}),
    ...("degradation" in o ? { degradation: degradation(o.degradation as never) } : {}),
  });
}

describe("every option's ConfigError, message for message", () => {
  it.each(cases)("%j → %s", (options, path, message) => {
    const error = configErrorOf(() => createFromOptions(options));
    expect(error.path).toBe(path);
    expect(error.message).toBe(message);
  });

  it("names a value that is itself a revoked Proxy (readable from its parent, not as what it is)", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    for (const [options, message] of [
      [{ timeout: { attempt: proxy } }, "timeout.attempt: expected number, received a value that cannot be read"],
      [{ fetch: proxy }, "fetch: expected a function, received a value that cannot be read"],
    ] as const) {
      expect(configErrorOf(() => createFromOptions(options)).message).toBe(message);
    }
  });

  it("0.1's plain chains and degradation options are refused with the way to migrate", () => {
    const chains = configErrorOf(() => createResilience({ fallback: [] as never }));
    expect(chains.path).toBe("fallback");
    expect(chains.message).toBe(
      'fallback: expected fallback(…) from "@storycore/resilient-fetch/fallback" (after 0.1.0 the options go through it), received an array',
    );
    // Only the matching stage passes: null, the other stage or a look-alike are refused at the option's path.
    // A function carrying the right `kind` is a look-alike too: the stage is the object `fallback(…)` returned.
    const fn = Object.assign(() => {}, { kind: "fallback", join: fallback([]).join });
    for (const value of [null, degradation(), { kind: "fallback " }, fn]) {
      expect(configErrorOf(() => createResilience({ fallback: value as never })).path).toBe("fallback");
    }
    expect(configErrorOf(() => createResilience({ degradation: fallback([]) as never })).path).toBe("degradation");
    expect(() => createResilience({ fallback: { kind: "fallback", join: fallback([]).join } as never })).not.toThrow();
    const levels = configErrorOf(() => createResilience({ degradation: { window: 1000 } as never }));
    expect(levels.path).toBe("degradation");
    expect(levels.message).toBe(
      'degradation: expected degradation(…) from "@storycore/resilient-fetch/degradation" (after 0.1.0 the options go through it), received an object',
    );
  });

  it("`false` is no stage, as leaving the option out is, and any other falsy value is refused", async () => {
    const off = createResilience({
      fallback: false,
      degradation: false,
      retry: false,
      fetch: async (input) => new Response(String(input)),
    });
    expect(off.fallback).toBeUndefined();
    expect(off.degradation).toBeUndefined();
    expect(off.health()).toMatchObject({ degradationLevel: "full", fallback: {} });
    expect(await (await off.fetch("https://api.example/a?quality=high")).text()).toBe(
      "https://api.example/a?quality=high",
    );
    for (const value of [0, "", true]) {
      expect(configErrorOf(() => createResilience({ fallback: value as never })).path).toBe("fallback");
      expect(configErrorOf(() => createResilience({ degradation: value as never })).path).toBe("degradation");
    }
  });

  // Changed in the thirty-third session: execute rejects with its ConfigError (it threw at once).
  it("execute(fn, { retry }) checks the retry options under execute.retry", async () => {
    const resilience = createResilience();
    const error = await rejectionOf(resilience.execute(() => 1, { retry: { jitter: "some" as "full" } }));
    expect(error.path).toBe("execute.retry.jitter");
    expect(error.message).toBe(
      'execute.retry.jitter: expected one of "full", "equal", "decorrelated", "none", received "some"',
    );
    const unknown = await rejectionOf(resilience.execute(() => 1, { retry: { attempts: 2 } as never }));
    expect(unknown.path).toBe("execute.retry");
    expect(unknown.message).toBe('execute.retry: unknown option "attempts"');
  });

  it('breaker(name, options) checks the options under breaker("name")', () => {
    const resilience = createResilience();
    const error = configErrorOf(() => resilience.breaker("gpu", { failureRate: 2 }));
    expect(error.path).toBe('breaker("gpu").failureRate');
    expect(error.message).toBe('breaker("gpu").failureRate: expected a value <= 1, received 2');
    const notObject = configErrorOf(() => resilience.breaker("cpu", 5 as never));
    expect(notObject.path).toBe('breaker("cpu")');
    expect(notObject.message).toBe('breaker("cpu"): expected object, received 5');
  });

  it("degradation.configureTriggers checks the triggers under degradation.triggers", () => {
    const resilience = createResilience({ degradation: degradation() });
    const error = configErrorOf(() => resilience.degradation.configureTriggers({ responseTime: -1, errorRate: 3 }));
    expect(error.path).toBe("degradation.triggers.errorRate");
    expect(error.message).toBe(
      "degradation.triggers.errorRate: expected a value <= 1, received 3; degradation.triggers.responseTime: expected a value > 0, received -1",
    );
    const notObject = configErrorOf(() => resilience.degradation.configureTriggers(null as never));
    expect(notObject.path).toBe("degradation.triggers");
    expect(notObject.message).toBe("degradation.triggers: expected object, received null");
  });
});
