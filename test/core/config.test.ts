import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { type DegradationOptions, degradation } from "../../src/degradation/index.ts";
import { type FallbackChainOptions, fallback } from "../../src/fallback/index.ts";
import { createResilience, memoryStore, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** Every option the reference documents, each set to a valid, non-default value. */
/** Every documented chain option, as `fallback(…)` takes them. */
const everyChain: FallbackChainOptions[] = [
  {
    name: "gen",
    order: "adaptive",
    hedge: { delay: 500 },
    endpoints: [
      {
        name: "primary",
        url: "https://a.example/v1",
        expectedQuality: 1,
        headers: { "x-key": "a" },
        transform: (request) => request,
        validate: z.object({ id: z.string() }),
      },
      { name: "canned", respond: () => Response.json({ id: "cached" }), expectedQuality: 0.5 },
    ],
  },
];

/** Every documented degradation option, as `degradation(…)` takes them. */
const everyDegradation: DegradationOptions = {
  levels: { medium: { percentage: 60, qualityMultiplier: 0.6, resolutionScale: 0.75, maxSteps: 30 } },
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
};

const everyOption: ResilienceOptions = {
  retry: {
    maxAttempts: 5,
    initialDelay: 10,
    maxDelay: 100,
    exponentialBase: 1.5,
    jitter: "decorrelated",
    retryOn: { statuses: [503], methods: ["GET"], error: () => true },
    maxRetryAfter: 5_000,
    idempotencyKey: true,
  },
  budget: { ratio: 0.2, minPerSecond: 0 },
  timeout: { attempt: 1_000, total: 5_000 },
  breaker: {
    failureThreshold: 3,
    successThreshold: 1,
    timeout: 10_000,
    halfOpenMaxCalls: 2,
    timeWindow: 60_000,
    probeTimeout: 5_000,
    isFailure: () => true,
    failureRate: 0.5,
    minimumCalls: 10,
    key: (url) => url.hostname,
    maxHosts: 50,
  },
  bulkhead: { maxConcurrent: 4, maxQueue: 8 },
  store: memoryStore(),
  fallback: fallback(everyChain),
  crossOriginHeaders: ["x-request-id"],
  redirects: "library",
  degradation: degradation(everyDegradation),
  maxReplayBytes: 1_024,
  fetch: globalThis.fetch,
  clock: new TestClock(),
  random: Math.random,
};

/** Dotted paths of every value set in `options` (arrays as `[]`, stopping at functions and leaves). */
function optionPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => optionPaths(v, `${prefix}[]`)).concat(prefix);
  if (value === null || typeof value !== "object" || prefix === "store" || prefix === "clock") return [prefix];
  return Object.entries(value).flatMap(([k, v]) => optionPaths(v, prefix ? `${prefix}.${k}` : k));
}

/**
 * The option paths of docs/options.md's reference table: "`a.b` / `c`" rows
 * name two siblings, and the endpoint row lists its fields in braces.
 */
function documentedOptions(): string[] {
  const text = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8");
  const paths: string[] = [];
  for (const line of text.split("\n")) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim()); // an escaped pipe inside a cell is text
    const names = [...(cells[1] ?? "").matchAll(/`([A-Za-z][\w.[\]]*)`/g)].map((m) => m[1] as string);
    if (names.length === 0) continue;
    const [first, ...siblings] = names;
    const parent = (first as string).includes(".")
      ? (first as string).slice(0, (first as string).lastIndexOf(".") + 1)
      : "";
    paths.push(first as string, ...siblings.map((n) => parent + n));
    if (first === "fallback[].endpoints[]") {
      const fields = /\{([^}]*)\}/.exec(cells[3] ?? "")?.[1] ?? "";
      for (const f of fields.split(/[,|]/)) {
        const field = /[A-Za-z]\w*/.exec(f)?.[0];
        if (field) paths.push(`${first}.${field}`);
      }
    }
  }
  return paths;
}

/** Each bad value's exact `ConfigError` is pinned in option-messages.test.ts. */
describe("configuration is validated at creation", () => {
  it("accepts every documented option (docs/options.md, row by row) and an empty object", () => {
    expect(() => createResilience({})).not.toThrow();
    expect(() => createResilience(everyOption)).not.toThrow();
    expect(() => createResilience({ retry: false, budget: false, breaker: false })).not.toThrow();
    // Each row of the options reference must be exercised above: a new documented
    // option that this test does not set fails here, as does one the schema refuses.
    const set = optionPaths({ ...everyOption, fallback: everyChain, degradation: everyDegradation });
    const documented = documentedOptions();
    expect(documented.length).toBeGreaterThan(40);
    const missing = documented.filter((path) => !set.some((p) => p === path || p.startsWith(`${path}.`)));
    expect(missing).toEqual([]);
  });

  it("lets undefined fall back to the default instead of wiping it", async () => {
    const resilience = createResilience({ retry: { maxAttempts: undefined } as never });
    expect(resilience.health().retry.maxAttempts).toBe(3);
  });
});
