import { type Clock, ownTimer, realTimer } from "../core/clock.ts";
import { ConfigError, RetryExhaustedError } from "../core/errors.ts";
import { isListenableSignal } from "../core/kind-of.ts";
import { optionKeys } from "../core/options/option-keys.ts";
import { type RetryOptions, retryNumberDefaults } from "../core/options/retry-options.ts";
import { withDefaults } from "../core/options/with-defaults.ts";
import { type Random, systemRandom } from "../core/random.ts";
import { sleep, type Wakers } from "../core/sleep.ts";
import { untilAborted } from "../core/until-aborted.ts";
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

/**
 * Options of {@link retry}: the retry numbers and `retryOn.error`, plus what
 * to run them on. The HTTP-only options of `resilience.fetch`
 * (`retryOn.statuses`, `retryOn.methods`, `maxRetryAfter`, `idempotencyKey`)
 * are not among them.
 */
export interface RetryCallOptions extends Omit<RetryOptions, "retryOn" | "maxRetryAfter" | "idempotencyKey"> {
  /** Which thrown errors are retried. @default every error except the caller's abort */
  retryOn?: { error?: (error: unknown) => boolean } | undefined;
  /** Aborting stops the current wait at once and rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  clock?: Clock | undefined;
  random?: Random | undefined;
  /**
   * Consulted before every retry; a refusal ends the loop. `retry` only
   * spends: a `RetryBudget` earns its `ratio` from the calls you deposit
   * (`budget.deposit()` once per call, as `resilience.execute` does), and
   * given none, only its `minPerSecond` refill.
   */
  budget?: RetryGate | undefined;
  /**
   * Called before each wait with the retry number, delay and the error. A
   * throw ends the call with that error; a returned promise is awaited
   * before the wait, and its rejection ends the call the same way.
   */
  onRetry?: ((event: { attempt: number; delay: number; error: unknown }) => void) | undefined;
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
  if (Object(options) !== options || isArray(options)) fail("", "an options object", options);
  // The defaults without the HTTP status and method sets (the HTTP-only
  // numbers ride along unused), so `retry` alone stays small in a bundle.
  let config: RetryNumbers;
  try {
    config = withDefaults(retryNumberDefaults, options);
    checkOptions(config, options);
  } catch (error) {
    // A revoked Proxy or a getter that throws: the engine's error names no
    // option, so the first one that cannot be read is looked for.
    if (error instanceof ConfigError) throw error;
    let name = "";
    try {
      Object.getPrototypeOf(options);
      // Every option it reads, by name, as it reads them: a class's getters are no own keys.
      for (name of OPTIONS) {
        const value = (options as Record<string, unknown>)[name];
        if (Object(value) === value) Object.getPrototypeOf(value);
        // As the checks read them: a signal's members are read, and
        // `retryOn`'s keys are listed (a misspelt member is refused).
        if (name === "signal") isListenableSignal(value);
        if (name === "retryOn") for (const key in value as object) void key;
      }
      // Then the members it reads of them (a getter there throws when read), each by its path.
      for (name of "retryOn.error clock.now clock.setTimer budget.tryRetry".split(" ")) {
        const [option, member] = name.split(".") as [string, string];
        void (options as Record<string, Record<string, unknown> | undefined>)[option]?.[member];
      }
      name = "";
    } catch {}
    // Or the options themselves, as the layer's option checker words it.
    throw new ConfigError(
      name ? `retry.${name}` : "retry",
      "expected a value that can be read, received a value that cannot be read",
    );
  }
  return retryChecked(fn, config, options);
}

/** The numbers a retry runs on. */
export type RetryNumbers = Pick<
  typeof retryNumberDefaults,
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
  options: { [K in keyof RetryCallOptions]?: RetryCallOptions[K] | undefined } & { wakers?: Wakers | undefined },
): Promise<T> {
  const { signal, budget, onRetry, wakers } = options;
  // Only timers: the real ones, without the real clock's reading of the time; a
  // clock of yours as the layer sees one (a timer cancelled does nothing, even without a cancel function).
  const clock = { setTimer: options.clock ? ownTimer(options.clock) : realTimer };
  const random = options.random ?? systemRandom;
  const isRetryable = options.retryOn?.error ?? ((error: unknown) => !signal?.aborted || error !== signal.reason);
  let previous: number | undefined;
  // What the last `onRetry` returned: a promise is awaited before the wait,
  // and its rejection ends the call as a throw does (p-retry's
  // `onFailedAttempt` alike), never left unhandled.
  let hooked: unknown;

  const { outcome, attempts } = await runRetryLoop<T>({
    maxAttempts: config.maxAttempts,
    attempt: async (attempt) => {
      if (signal?.aborted) throw signal.reason;
      // Awaited, not returned: a rejected promise handed back by an async
      // function is settled a turn later, and workerd reports it as
      // unhandled in between (the work's own error, URL and all).
      return await untilAborted(fn({ attempt, signal }), signal);
    },
    next: (result, n) => {
      if (result.ok || signal?.aborted || !isRetryable(result.error)) return undefined;
      if (budget && !budget.tryRetry()) return undefined;
      previous = backoffDelay(n, config, random, previous);
      hooked = onRetry?.({ attempt: n, delay: previous, error: result.error });
      return previous;
    },
    wait: async (ms) => {
      await untilAborted(hooked, signal);
      return sleep(clock, ms, signal, wakers);
    },
  });
  if (outcome.ok) return outcome.value;
  if (signal?.aborted) throw signal.reason;
  if (attempts < config.maxAttempts && !isRetryable(outcome.error)) throw outcome.error;
  throw new RetryExhaustedError(attempts, outcome.error);
}

/**
 * `retry(fn)` is meant to stay within 1.5 KiB on its own (the `./policies`
 * budget in `.size-limit.json`), so it checks its options here instead of
 * pulling in the table-driven option checker (3 KB minified) that the
 * layer's options go through. Same rules as `retryRules`, and what it calls
 * later (`signal`, `onRetry`, `retryOn.error`, `budget`) is checked now too:
 * a wrong one would otherwise fail only after an attempt.
 */
function checkOptions(config: typeof retryNumberDefaults, options: RetryCallOptions): void {
  // A misspelt option must fail, not silently do nothing.
  // Every key read by name would answer to (not `toString`, which every object has: no option).
  for (const key of optionKeys(options)) if (!OPTIONS.includes(key)) unknown("", key);
  const { retryOn } = options;
  if (retryOn !== undefined && (typeof retryOn !== "object" || retryOn === null || isArray(retryOn)))
    fail("retryOn", "an object", retryOn);
  if (retryOn) for (const key of optionKeys(retryOn)) if (key !== "error") unknown(".retryOn", key);
  const check = (name: string, value: number, min: number, integer = false): void => {
    // Not finite: NaN, ±Infinity and anything not a number; an integer past 2^53 is not exact.
    if (!Number.isFinite(value) || value < min || (integer && !Number.isSafeInteger(value)))
      fail(name, `${integer ? "an integer" : "a number"} >= ${min}`, value);
  };

  check("maxAttempts", config.maxAttempts, 1, true);
  check("initialDelay", config.initialDelay, 0);
  check("maxDelay", config.maxDelay, 0);
  check("exponentialBase", config.exponentialBase, 1);
  if (!["full", "equal", "decorrelated", "none"].includes(config.jitter))
    fail("jitter", 'one of "full", "equal", "decorrelated", "none"', config.jitter);
  const { signal, budget, clock } = options;
  if (clock !== undefined && (typeof clock?.now !== "function" || typeof clock.setTimer !== "function"))
    fail("clock", "a clock ({ now, setTimer })", clock);
  if (signal !== undefined && !isListenableSignal(signal)) fail("signal", "an AbortSignal", signal);
  if (budget !== undefined && typeof budget?.tryRetry !== "function") fail("budget", "a budget", budget);
  for (const [name, value] of [
    ["onRetry", options.onRetry],
    ["retryOn.error", options.retryOn?.error],
    ["random", options.random],
  ] as const) {
    if (value !== undefined && typeof value !== "function") fail(name, "a function", value);
  }
}

/** Every option `retry` reads: the numbers of `retryNumberDefaults`, then the rest. */
const OPTIONS =
  "maxAttempts initialDelay maxDelay exponentialBase jitter retryOn signal clock random budget onRetry".split(" ");

function unknown(path: string, key: string): never {
  // A misspelt key is named only when it could not hold a URL, as values are.
  throw new ConfigError(`retry${path}`, `unknown option ${plain(key) ? `"${key}"` : "(its name not shown)"}`);
}

// The same plain words as `shownValue` in core/shown-name.ts (not imported: that costs this entry bytes).
const plain = (text: string): boolean => /^[\w .,+-]*$/.test(text);

/** Throws the `ConfigError` for option `name` (the options themselves when empty). */
function fail(name: string, expected: string, value: unknown): never {
  // Strings quoted, so "5" is not taken for the number 5; one that could be
  // a URL (with a key in it), a function (its source) and a symbol (its
  // description) are named by kind, never quoted: this check stays small
  // without the redaction the layer's option checker carries.
  const kind = typeof value;
  const shown =
    kind === "string"
      ? plain(value as string)
        ? JSON.stringify(value)
        : "a string"
      : value && kind === "object"
        ? isArray(value)
          ? "an array"
          : "an object"
        : kind === "function" || kind === "symbol" || kind === "bigint"
          ? `a ${kind}`
          : String(value);
  throw new ConfigError(name ? `retry.${name}` : "retry", `expected ${expected}, received ${shown}`);
}

/** `Array.isArray`, false for a revoked Proxy (which it throws on): that one is named as an object. */
function isArray(value: unknown): boolean {
  try {
    return Array.isArray(value);
  } catch {
    return false;
  }
}
