import type { Refine, Rule, Table } from "./check-options.ts";

/**
 * The rules of every options object, one table each, read by
 * `checkOptions`. They only check shape and ranges; the defaults live in
 * each `*-options.ts` file, applied after the check. Objects are strict: a
 * misspelt option must fail, not silently do nothing. Plain data: a bundle
 * that never checks options (e.g. `retry` alone) drops them.
 */

export const retryRules: Table = {
  maxAttempts: "int>=1",
  initialDelay: "num>=0",
  maxDelay: "num>=0",
  exponentialBase: "num>=1",
  jitter: { oneOf: ["full", "equal", "decorrelated", "none"] },
  retryOn: {
    obj: {
      statuses: { list: "int>=100<=599" },
      methods: { list: "str+" },
      error: "fn",
    },
  },
  maxRetryAfter: "num>=0",
  idempotencyKey: "bool",
};

export const budgetRules: Table = { ratio: "num>=0", minPerSecond: "num>=0" };

export const timeoutRules: Table = { attempt: "num>0", total: "num>0" };

export const breakerRules: Table = {
  failureThreshold: "int>=1",
  successThreshold: "int>=1",
  timeout: "num>=0",
  halfOpenMaxCalls: "int>=1",
  timeWindow: "num>0",
  probeTimeout: "num>0",
  isFailure: "fn",
  failureRate: "num>0<=1",
  minimumCalls: "int>=1",
  key: "fn",
  maxHosts: "int>=1",
};

export const bulkheadRules: Table = { maxConcurrent: "int>=1", maxQueue: "int>=0" };

const isHttpUrl = (u: string): boolean => URL.canParse(u) && /^https?:/i.test(u);
const isStandardSchema = (v: unknown): boolean => typeof v === "object" && v !== null && "~standard" in v;

export const endpointRules: Table = {
  name: "str+",
  url: { is: "str", ok: [[isHttpUrl, "an absolute http(s) URL"]] },
  respond: "fn",
  expectedQuality: "num>=0<=1",
  headers: { rec: "str" },
  transform: "fn",
  validate: { type: isStandardSchema, expected: "a Standard Schema (zod, valibot, …)" },
};

/** What a chain's refinements may rely on once its shape passed. */
interface CheckedChain {
  name: string;
  endpoints: Array<{ name: string; url?: string; respond?: unknown }>;
}

const chainRefines: readonly Refine[] = [
  [
    (c: CheckedChain) => typeof c.endpoints[0]?.url === "string",
    "a first endpoint with a `url` (it selects the requests that use the chain)",
    ["endpoints", 0, "url"],
  ],
  [
    (c: CheckedChain) => c.endpoints.every((e) => (e.url === undefined) !== (e.respond === undefined)),
    "each endpoint to have either `url` or `respond`, not both",
    ["endpoints"],
  ],
  [
    (c: CheckedChain) => new Set(c.endpoints.map((e) => e.name)).size === c.endpoints.length,
    "endpoint names to be unique",
    ["endpoints"],
  ],
];

export const chainRules: Table = {
  name: "str+",
  order: { oneOf: ["fixed", "adaptive"] },
  hedge: { obj: { delay: "num>=0" }, need: ["delay"] },
  endpoints: { list: { obj: endpointRules, need: ["name"] }, min: 1 },
};

const fallbackRule: Rule = {
  list: { obj: chainRules, need: ["name", "endpoints"], ok: chainRefines },
  ok: [
    [(chains: CheckedChain[]) => new Set(chains.map((c) => c.name)).size === chains.length, "chain names to be unique"],
  ],
};

export const triggerRules: Table = {
  errorRate: "num>=0<=1",
  responseTime: "num>0",
  memoryUsage: "num>=0<=1",
  cpuUsage: "num>=0<=1",
};

const isSafePath = (p: string): boolean =>
  p.split(".").every((s) => s !== "" && s !== "__proto__" && s !== "constructor" && s !== "prototype");
const safePath: Rule = {
  is: "str+",
  ok: [[isSafePath, "a dotted path without empty, __proto__, constructor or prototype segments"]],
};
const location: Rule = {
  or: [
    safePath,
    { obj: { body: safePath }, need: ["body"] },
    { obj: { query: "str+" }, need: ["query"] },
    { obj: { header: "str+" }, need: ["header"] },
  ],
};

export const levelRules: Table = {
  percentage: "num>=0<=100",
  qualityMultiplier: "num>0<=1",
  resolutionScale: "num>0<=1",
  maxSteps: { or: ["null", "int>=1"] },
  features: { list: "str" },
  modelStep: "int>=0",
};

const level: Rule = { obj: levelRules };

export const degradationRules: Table = {
  levels: { obj: { full: level, high: level, medium: level, low: level, minimal: level } },
  triggers: { obj: triggerRules },
  rules: {
    list: {
      obj: {
        match: "str+",
        params: {
          obj: { quality: location, resolution: location, steps: location, model: location, features: location },
        },
      },
      need: ["params"],
    },
  },
  resolutions: { list: { is: "str", ok: [[(s: string) => /^\d+p$/i.test(s), "a valid value"]] }, min: 1 },
  sizeMultiple: "int>=1",
  models: { list: { list: "str+", min: 1 } },
  window: "num>0",
  minSamples: "int>=1",
  stepInterval: "num>=0",
  restoreAfter: "num>=0",
  levelHeader: "str+",
  browserSignals: "bool",
};

export const resilienceRules: Table = {
  retry: { or: [{ oneOf: [false] }, { obj: retryRules }] },
  budget: { or: [{ oneOf: [false] }, { obj: budgetRules }] },
  timeout: { obj: timeoutRules },
  breaker: { or: [{ oneOf: [false] }, { obj: breakerRules }] },
  bulkhead: { obj: bulkheadRules, need: ["maxConcurrent"] },
  store: { obj: { name: "str", publish: "fn", peek: "fn" }, need: ["name", "publish", "peek"], loose: true },
  fallback: fallbackRule,
  degradation: { obj: degradationRules },
  maxReplayBytes: "int>=0",
  crossOriginHeaders: { list: "str+" },
  redirects: { oneOf: ["library", "platform"] },
  fetch: "fn",
  clock: { obj: { now: "fn", setTimer: "fn" }, need: ["now", "setTimer"], loose: true },
  random: "fn",
};
