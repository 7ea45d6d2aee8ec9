import { type Clock, systemClock } from "../core/clock.ts";
import { ConfigError, RetryExhaustedError } from "../core/errors.ts";
import { type RetryOptions, retryDefaults } from "../core/options/retry-options.ts";
import { type Random, systemRandom } from "../core/random.ts";
import { sleep } from "../core/sleep.ts";
import { backoffDelay } from "./backoff.ts";
import { runRetryLoop } from "./retry-loop.ts";

/** What each attempt of {@link retry} receives. */
export interface AttemptContext {
  /** 1 for the first attempt. */
  attempt: number;
  signal: AbortSignal | undefined;
}

/** Anything that can grant or refuse a retry, e.g. a shared `RetryBudget`. */
export interface RetryGate {
  tryRetry(): boolean;
}

/** Options of {@link retry}: the retry options plus what to run them on. */
export interface RetryCallOptions extends RetryOptions {
  /** Aborting stops the current wait at once and rejects with `signal.reason`. */
  signal?: AbortSignal;
  clock?: Clock;
  random?: Random;
  /** Consulted before every retry; a refusal ends the loop. */
  budget?: RetryGate;
  /** Called before each wait with the retry number, delay and the error. */
  onRetry?: (event: { attempt: number; delay: number; error: unknown }) => void;
}

/**
 * Runs `fn` until it resolves, retrying thrown errors with capped exponential
 * backoff and jitter (StoryCore-Engine's `RetryMechanism.execute_async`). Rejects
 * with {@link RetryExhaustedError} (its `cause` the last error) when every
 * attempt failed, or with the error itself when `retryOn.error` rejects it.
 *
 * @example
 * const data = await retry(() => generateImage(prompt), { maxAttempts: 4, initialDelay: 500 });
 */
export async function retry<T>(
  fn: (context: AttemptContext) => T | Promise<T>,
  options: RetryCallOptions = {},
): Promise<T> {
  if (typeof fn !== "function") throw new TypeError(`retry(fn): fn must be a function, got ${typeof fn}`);
  // Only what a generic retry needs (not the HTTP status and method sets), so
  // `retry` alone stays small in a bundle.
  const config = { ...retryDefaults, ...definedOnly(options) };
  checkNumbers(config);
  return retryChecked(fn, config, options);
}

/** The numbers a retry runs on. */
export type RetryNumbers = Pick<
  typeof retryDefaults,
  "maxAttempts" | "initialDelay" | "maxDelay" | "exponentialBase" | "jitter"
>;

/**
 * {@link retry} on numbers already checked: the layer's `execute` checks its
 * options with the option checker, so its bundle need not carry `retry`'s
 * own checks too.
 */
export async function retryChecked<T>(
  fn: (context: AttemptContext) => T | Promise<T>,
  config: RetryNumbers,
  options: { [K in keyof RetryCallOptions]?: RetryCallOptions[K] | undefined },
): Promise<T> {
  const { signal, budget, onRetry } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const isRetryable = options.retryOn?.error ?? ((error: unknown) => !signal?.aborted || error !== signal.reason);
  let previous: number | undefined;

  const { outcome, attempts } = await runRetryLoop<T>({
    maxAttempts: config.maxAttempts,
    attempt: async (attempt) => {
      if (signal?.aborted) throw signal.reason;
      return fn({ attempt, signal });
    },
    next: (result, n) => {
      if (result.ok || signal?.aborted || !isRetryable(result.error)) return undefined;
      if (budget && !budget.tryRetry()) return undefined;
      previous = backoffDelay(n, config, random, previous);
      onRetry?.({ attempt: n, delay: previous, error: result.error });
      return previous;
    },
    wait: (ms) => sleep(clock, ms, signal),
  });
  if (outcome.ok) return outcome.value;
  if (signal?.aborted) throw signal.reason;
  if (attempts < config.maxAttempts && !isRetryable(outcome.error)) throw outcome.error;
  throw new RetryExhaustedError(attempts, outcome.error);
}

/** `undefined` never wipes a default. */
function definedOnly(options: RetryCallOptions): Partial<typeof retryDefaults> {
  const out: Record<string, unknown> = {};
  for (const key of ["maxAttempts", "initialDelay", "maxDelay", "exponentialBase", "jitter"] as const) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out as Partial<typeof retryDefaults>;
}

/**
 * `retry(fn)` is meant to be a 1.4 KB import on its own (the `./policies`
 * budget in `.size-limit.json`), so it checks its five values here instead
 * of pulling in the table-driven option checker (3 KB minified) that the
 * layer's options go through. Same rules as `retryRules`.
 */
function checkNumbers(config: typeof retryDefaults): void {
  const check = (name: string, value: number, min: number, integer = false): void => {
    if (
      typeof value !== "number" ||
      !(value >= min) ||
      !Number.isFinite(value) ||
      (integer && !Number.isInteger(value))
    ) {
      throw new ConfigError(
        `retry.${name}`,
        `expected ${integer ? "an integer" : "a number"} >= ${min}, received ${String(value)}`,
      );
    }
  };
  check("maxAttempts", config.maxAttempts, 1, true);
  check("initialDelay", config.initialDelay, 0);
  check("maxDelay", config.maxDelay, 0);
  check("exponentialBase", config.exponentialBase, 1);
  if (!["full", "equal", "decorrelated", "none"].includes(config.jitter)) {
    throw new ConfigError(
      "retry.jitter",
      `expected one of "full", "equal", "decorrelated", "none", received ${JSON.stringify(config.jitter)}`,
    );
  }
}
