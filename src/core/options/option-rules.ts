import { isHttpToken } from "../http-token.ts";
import { isListenableSignal } from "../kind-of.ts";
import type { Rule, Table } from "./check-options.ts";

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
      // A name no method has (a pasted space, two in one string) would match nothing, silently.
      methods: { list: { is: "str", ok: [[isHttpToken, "a method name"]] } },
      error: "fn",
    },
  },
  maxRetryAfter: "num>=0",
  idempotencyKey: "bool",
};

/** `resilience.execute(fn, options)`: the retry options over the layer's, a breaker's name, a fallback, a signal. */
export const executeRules: Table = {
  retry: { or: [{ oneOf: [false] }, { obj: retryRules }] },
  breaker: "str+",
  fallback: "fn",
  signal: { type: isListenableSignal, expected: "an AbortSignal" },
};

export const budgetRules: Table = { ratio: "num>=0", minPerSecond: "num>=0" };

// An attempt's own timer can wait no longer than setTimeout keeps (2^31 - 1 ms); the total's goes on in steps.
export const timeoutRules: Table = { attempt: "num>0<=2147483647", total: "num>0" };

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

/** A `CircuitBreaker` built on its own: its hooks (the snapshot it starts from is the caller's own object). */
export const breakerHookRules: Table = { isFailure: "fn", onChange: "fn", initial: { obj: {}, loose: true } };

export const bulkheadRules: Table = { maxConcurrent: "int>=1", maxQueue: "int>=0" };

/**
 * Fallback chains and degradation live in entries of their own: the option
 * takes what `fallback(…)` or `degradation(…)` returned (they check their own
 * options), or `false` for none. A 0.1-style array or object is refused with the way to migrate.
 */
function stageRule(kind: "fallback" | "degradation"): Rule {
  return {
    // `false` is "off", as it is for `retry`, `budget` and `breaker`.
    type: (v) => v === false || (typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === kind),
    expected: `${kind}(…) from "@storycore/resilient-fetch/${kind}" (after 0.1.0 the options go through it)`,
  };
}

/** A clock is the caller's own object: `now` and `setTimer` are what is read. */
export const clockRule: Rule = { obj: { now: "fn", setTimer: "fn" }, need: ["now", "setTimer"], loose: true };

/** A policy's `clock` argument, checked as the layer's `clock` option is: a wrong one fails at construction, not at its first read. */
export const clockArgRules: Table = { clock: clockRule };

export const resilienceRules: Table = {
  retry: { or: [{ oneOf: [false] }, { obj: retryRules }] },
  budget: { or: [{ oneOf: [false] }, { obj: budgetRules }] },
  timeout: { obj: timeoutRules },
  breaker: { or: [{ oneOf: [false] }, { obj: breakerRules }] },
  bulkhead: { obj: bulkheadRules, need: ["maxConcurrent"] },
  // A store is the caller's own object: its optional methods are checked too, since the layer calls them.
  store: {
    obj: {
      name: "str",
      publish: "fn",
      peek: "fn",
      record: "fn",
      acquireProbe: "fn",
      releaseProbe: "fn",
      bindContext: "fn",
      connect: "fn",
      configure: "fn",
    },
    need: ["name", "publish", "peek"],
    loose: true,
  },
  fallback: /* @__PURE__ */ stageRule("fallback"),
  degradation: /* @__PURE__ */ stageRule("degradation"),
  maxReplayBytes: "int>=0",
  // A name no header has would match nothing, silently: refused, never quoted (a header pasted whole holds its value).
  crossOriginHeaders: { list: { secret: { is: "str", ok: [[isHttpToken, "a header name"]] } } },
  redirects: { oneOf: ["library", "platform"] },
  fetch: "fn",
  clock: clockRule,
  random: "fn",
};
