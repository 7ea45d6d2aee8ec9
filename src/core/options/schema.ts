import * as z from "zod/mini";

/**
 * zod/mini schemas for every option. They only check shape and ranges; the
 * defaults live in each `*-options.ts` file, applied after validation.
 * Objects are strict: a misspelt option must fail, not silently do nothing.
 * They are built on first use: nothing runs at import, and a bundle that
 * never validates (e.g. `retry` alone) drops zod entirely.
 */
export interface Schemas {
  resilience: z.ZodMiniType;
  retry: z.ZodMiniType;
  breaker: z.ZodMiniType;
  triggers: z.ZodMiniType;
}

let built: Schemas | undefined;

export function schemas(): Schemas {
  built ??= build();
  return built;
}

function build(): Schemas {
  const opt = z.optional;
  const fn: z.ZodMiniType<(...args: never[]) => unknown> = z.custom<(...args: never[]) => unknown>(
    (v) => typeof v === "function",
    "a function",
  );
  const positiveInt = z.number().check(z.int(), z.gte(1));
  const nonNegative = z.number().check(z.gte(0), z.refine(Number.isFinite, "a finite number"));
  const positive = z.number().check(z.gt(0), z.refine(Number.isFinite, "a finite number"));
  const fraction = z.number().check(z.gte(0), z.lte(1));
  const httpStatus = z.number().check(z.int(), z.gte(100), z.lte(599));

  const retrySchema = z.strictObject({
    maxAttempts: opt(positiveInt),
    initialDelay: opt(nonNegative),
    maxDelay: opt(nonNegative),
    exponentialBase: opt(z.number().check(z.gte(1))),
    jitter: opt(z.enum(["full", "equal", "decorrelated", "none"])),
    retryOn: opt(
      z.strictObject({
        statuses: opt(z.array(httpStatus)),
        methods: opt(z.array(z.string().check(z.minLength(1)))),
        error: opt(fn),
      }),
    ),
    maxRetryAfter: opt(nonNegative),
    idempotencyKey: opt(z.boolean()),
  });

  const budgetSchema = z.strictObject({
    ratio: opt(nonNegative),
    minPerSecond: opt(nonNegative),
  });

  const timeoutSchema = z.strictObject({
    attempt: opt(positive),
    total: opt(positive),
  });

  const breakerSchema = z.strictObject({
    failureThreshold: opt(positiveInt),
    successThreshold: opt(positiveInt),
    timeout: opt(nonNegative),
    halfOpenMaxCalls: opt(positiveInt),
    timeWindow: opt(positive),
    probeTimeout: opt(positive),
    isFailure: opt(fn),
    failureRate: opt(z.number().check(z.gt(0), z.lte(1))),
    minimumCalls: opt(positiveInt),
    key: opt(fn),
    maxHosts: opt(positiveInt),
  });

  const bulkheadSchema = z.strictObject({
    maxConcurrent: positiveInt,
    maxQueue: opt(z.number().check(z.int(), z.gte(0))),
  });

  const storeSchema = z.looseObject({ name: z.string(), publish: fn, peek: fn });

  const endpointSchema = z.strictObject({
    name: z.string().check(z.minLength(1)),
    url: opt(z.string().check(z.refine((u) => URL.canParse(u) && /^https?:/i.test(u), "an absolute http(s) URL"))),
    respond: opt(fn),
    expectedQuality: opt(fraction),
    headers: opt(z.record(z.string(), z.string())),
    transform: opt(fn),
    validate: opt(
      z.custom((v) => typeof v === "object" && v !== null && "~standard" in v, "a Standard Schema (zod, valibot, …)"),
    ),
  });

  const chainSchema = z
    .strictObject({
      name: z.string().check(z.minLength(1)),
      order: opt(z.enum(["fixed", "adaptive"])),
      hedge: opt(z.strictObject({ delay: nonNegative })),
      endpoints: z.array(endpointSchema).check(z.minLength(1)),
    })
    .check(
      z.refine((c) => typeof c.endpoints[0]?.url === "string", {
        message: "a first endpoint with a `url` (it selects the requests that use the chain)",
        path: ["endpoints", 0, "url"],
      }),
      z.refine((c) => c.endpoints.every((e) => (e.url === undefined) !== (e.respond === undefined)), {
        message: "each endpoint to have either `url` or `respond`, not both",
        path: ["endpoints"],
      }),
      z.refine((c) => new Set(c.endpoints.map((e) => e.name)).size === c.endpoints.length, {
        message: "endpoint names to be unique",
        path: ["endpoints"],
      }),
    );

  const fallbackSchema = z
    .array(chainSchema)
    .check(z.refine((chains) => new Set(chains.map((c) => c.name)).size === chains.length, "chain names to be unique"));

  const triggersSchema = z.strictObject({
    errorRate: opt(fraction),
    responseTime: opt(positive),
    memoryUsage: opt(fraction),
    cpuUsage: opt(fraction),
  });

  const safePath = z.string().check(
    z.minLength(1),
    z.refine(
      (p) => p.split(".").every((s) => s !== "" && s !== "__proto__" && s !== "constructor" && s !== "prototype"),
      "a dotted path without empty, __proto__, constructor or prototype segments",
    ),
  );
  const location = z.union([
    safePath,
    z.strictObject({ body: safePath }),
    z.strictObject({ query: z.string().check(z.minLength(1)) }),
    z.strictObject({ header: z.string().check(z.minLength(1)) }),
  ]);
  const levelSchema = z.strictObject({
    percentage: opt(z.number().check(z.gte(0), z.lte(100))),
    qualityMultiplier: opt(z.number().check(z.gt(0), z.lte(1))),
    resolutionScale: opt(z.number().check(z.gt(0), z.lte(1))),
    maxSteps: opt(z.union([z.null(), positiveInt])),
    features: opt(z.array(z.string())),
    modelStep: opt(z.number().check(z.int(), z.gte(0))),
  });

  const degradationSchema = z.strictObject({
    levels: opt(
      z.strictObject({
        full: opt(levelSchema),
        high: opt(levelSchema),
        medium: opt(levelSchema),
        low: opt(levelSchema),
        minimal: opt(levelSchema),
      }),
    ),
    triggers: opt(triggersSchema),
    rules: opt(
      z.array(
        z.strictObject({
          match: opt(z.string().check(z.minLength(1))),
          params: z.strictObject({
            quality: opt(location),
            resolution: opt(location),
            steps: opt(location),
            model: opt(location),
            features: opt(location),
          }),
        }),
      ),
    ),
    resolutions: opt(z.array(z.string().check(z.regex(/^\d+p$/i))).check(z.minLength(1))),
    sizeMultiple: opt(positiveInt),
    models: opt(z.array(z.array(z.string().check(z.minLength(1))).check(z.minLength(1)))),
    window: opt(positive),
    minSamples: opt(positiveInt),
    stepInterval: opt(nonNegative),
    restoreAfter: opt(nonNegative),
    levelHeader: opt(z.string().check(z.minLength(1))),
    browserSignals: opt(z.boolean()),
  });

  const clockSchema = z.looseObject({ now: fn, setTimer: fn });

  const resilienceSchema = z.strictObject({
    retry: opt(z.union([z.literal(false), retrySchema])),
    budget: opt(z.union([z.literal(false), budgetSchema])),
    timeout: opt(timeoutSchema),
    breaker: opt(z.union([z.literal(false), breakerSchema])),
    bulkhead: opt(bulkheadSchema),
    store: opt(storeSchema),
    fallback: opt(fallbackSchema),
    degradation: opt(degradationSchema),
    maxReplayBytes: opt(z.number().check(z.int(), z.gte(0))),
    crossOriginHeaders: opt(z.array(z.string().check(z.minLength(1)))),
    redirects: opt(z.enum(["library", "platform"])),
    fetch: opt(fn),
    clock: opt(clockSchema),
    random: opt(fn),
  });
  return { resilience: resilienceSchema, retry: retrySchema, breaker: breakerSchema, triggers: triggersSchema };
}
