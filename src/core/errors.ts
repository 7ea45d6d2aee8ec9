/**
 * The error hierarchy. A call rejects with one of these only when there is no
 * Response to give (fetch semantics otherwise); `cause` holds the underlying
 * error. Each `isX()` guard checks the stable `name` too, so it works across
 * realms and duplicated copies of the package where `instanceof` does not.
 */

import { kindOf } from "./kind-of.ts";

/** Base class of every error this library raises on its own. */
export class ResilienceError extends Error {
  override name: string = "ResilienceError";
}

/** Options failed validation; `path` names the field, e.g. `retry.maxAttempts`. */
export class ConfigError extends ResilienceError {
  override name = "ConfigError" as const;
  readonly path: string;
  constructor(path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

/** The circuit for `key` is open: no request was sent. */
export class CircuitOpenError extends ResilienceError {
  override name = "CircuitOpenError" as const;
  readonly key: string;
  /**
   * Epoch ms when the breaker may next decide otherwise: an open circuit's
   * end (a probe is let through then); for a half-open one whose probe slots
   * are all taken, the earliest probe lease's expiry, by which that probe has
   * answered or its expiry re-opens the circuit (a call then is let through,
   * or refused with a later `retryAt`).
   */
  readonly retryAt: number;
  /**
   * `true` when the breaker refused a redirect's later hop: nothing was sent
   * to this host, but the first host answered the request with the redirect,
   * so it may have processed it (a POST without a key must not be sent
   * again). Absent when nothing of the call was sent. Only where the library
   * follows redirects (Node, Deno, Bun, Workers): a browser follows them
   * itself.
   */
  declare readonly afterRedirect?: true;
  constructor(key: string, retryAt: number, options?: ErrorOptions) {
    super(`circuit for "${key}" is open until ${timeText(retryAt)}`, options);
    this.key = key;
    this.retryAt = retryAt;
  }
}

/**
 * An epoch time as ISO text, or the raw number when no Date can hold it
 * (NaN, ±Infinity, beyond ±8.64e15): building an error must never throw.
 */
function timeText(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? `an unrepresentable time (${ms})` : date.toISOString();
}

/**
 * Every attempt failed without a Response, or a breaker store of one's own
 * threw (then `attempts` may be 0); `cause` is the last error.
 */
export class RetryExhaustedError extends ResilienceError {
  override name = "RetryExhaustedError" as const;
  readonly attempts: number;
  /** Where the attempts went: the breaker key of a `resilience.fetch` call (the host, or what `breaker.key` gives); none for `retry(fn)`. */
  readonly endpoint: string | undefined;
  constructor(attempts: number, cause: unknown, endpoint?: string) {
    super(
      `gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}${endpoint ? ` to ${endpoint}` : ""}: ${describe(cause)}`,
      { cause },
    );
    this.attempts = attempts;
    this.endpoint = endpoint;
  }
}

/** Which deadline ran out: one attempt's time to headers, or the whole call. */
export type TimeoutPhase = "attempt" | "total";

/** A deadline from `timeout.attempt` or `timeout.total` passed with no Response. */
export class TimeoutError extends ResilienceError {
  override name = "TimeoutError" as const;
  readonly phase: TimeoutPhase;
  readonly timeout: number;
  attempts: number;
  constructor(phase: TimeoutPhase, timeout: number, attempts = 0) {
    super(`${phase} timeout of ${timeout} ms exceeded`);
    this.phase = phase;
    this.timeout = timeout;
    this.attempts = attempts;
  }
}

/**
 * A fallback chain ended with no answer it may return: every endpoint failed,
 * or the chain stopped where going on could have a request processed twice
 * (the message says after which endpoint); `errors` maps endpoint to its
 * error, and `cause` is the error of the endpoint tried last. The message
 * lists them in the order they failed (`tried`, when given: `errors` lists
 * number-like names first, whatever their turn).
 */
export class FallbackExhaustedError extends ResilienceError {
  override name = "FallbackExhaustedError" as const;
  readonly chain: string;
  readonly errors: Readonly<Record<string, unknown>>;
  /**
   * @param tried The endpoints in the order each failed, the last one's
   *   error the `cause`; without it, `errors`' own order (which lists
   *   number-like names first).
   */
  constructor(chain: string, errors: Record<string, unknown>, tried: readonly string[] = []) {
    const names = [...new Set([...tried, ...Object.keys(errors)])].filter((name) => Object.hasOwn(errors, name));
    const last = tried.length > 0 ? tried[tried.length - 1] : names[names.length - 1];
    super(
      `every endpoint of fallback chain "${chain}" failed (${names.map((n) => `${n}: ${describe(errors[n])}`).join("; ")})`,
      { cause: last === undefined ? undefined : errors[last] },
    );
    this.chain = chain;
    this.errors = errors;
  }
}

/** A bulkhead's queue for `key` was full: the call was refused without waiting. */
export class BulkheadRejectedError extends ResilienceError {
  override name = "BulkheadRejectedError" as const;
  readonly key: string;
  constructor(key: string) {
    super(`bulkhead for "${key}" is full`);
    this.key = key;
  }
}

function describe(error: unknown): string {
  // Made text inside the guard: an error's `message` may be anything (a Symbol, an object whose `toString` throws).
  return unlessThrows(() => String(error instanceof Error ? error.message || error.name : error), UNREADABLE);
}

/** How a message names a thrown value it cannot read. */
export const UNREADABLE = "a thrown value that cannot be read";

/** `value` as text, as `String` makes it, or {@link UNREADABLE} where it cannot be (a revoked Proxy, a null prototype). */
export const textOf = (value: unknown): string => unlessThrows(() => String(value), UNREADABLE);

/**
 * What `read` gives, or `otherwise` when it throws. Work and transports may
 * throw anything (a revoked Proxy, an error whose `name` getter throws):
 * looking at such a value must not end, or change, the call that met it.
 */
export function unlessThrows<T>(read: () => T, otherwise: T): T {
  try {
    return read();
  } catch {
    return otherwise;
  }
}

/**
 * An error (of any realm: `instanceof Error` fails across them, the
 * built-in tag does not) with that `name`. A plain object with the name is
 * not one.
 */
function hasName(error: unknown, name: string): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { name?: unknown }).name === name &&
    kindOf(error) === "Error"
  );
}

/**
 * `error` is a `type`, or has its `name` and the `fields` its class sets
 * (from another realm, or another copy of the package). A value that
 * throws when looked at (a revoked Proxy, a `name` getter that throws) is
 * none: asking must not end the call that met it.
 */
function isOf(
  error: unknown,
  type: abstract new (...args: never[]) => unknown,
  name: string,
  fields: Record<string, string>,
): boolean {
  return unlessThrows(
    () =>
      error instanceof type ||
      (hasName(error, name) &&
        Object.entries(fields).every(([field, kind]) => {
          const value = (error as Record<string, unknown>)[field];
          return value !== null && typeof value === kind;
        })),
    false,
  );
}

/**
 * True for any error raised by this library, across realms. Built from the
 * guards below, which know an error of another realm by its name and the
 * fields its class sets, so a name other code also uses (ky's own
 * `TimeoutError`, an app's own `ConfigError` without a string `path`) is
 * not taken for one of ours.
 */
export function isResilienceError(error: unknown): error is ResilienceError {
  return (
    [
      isConfigError,
      isCircuitOpenError,
      isRetryExhaustedError,
      isTimeoutError,
      isFallbackExhaustedError,
      isBulkheadRejectedError,
      // The base class is never thrown bare: one of another realm is one of the above. A bare name is no error of ours.
    ].some((is) => is(error)) || unlessThrows(() => error instanceof ResilienceError, false)
  );
}
/** True for a {@link ConfigError}, across realms. */
export const isConfigError = (e: unknown): e is ConfigError => isOf(e, ConfigError, "ConfigError", { path: "string" });
/** True for a {@link CircuitOpenError}, across realms. */
export const isCircuitOpenError = (e: unknown): e is CircuitOpenError =>
  isOf(e, CircuitOpenError, "CircuitOpenError", { key: "string", retryAt: "number" });
/** True for a {@link RetryExhaustedError}, across realms. */
export const isRetryExhaustedError = (e: unknown): e is RetryExhaustedError =>
  isOf(e, RetryExhaustedError, "RetryExhaustedError", { attempts: "number" });
/** True for this library's {@link TimeoutError} (not a DOMException "TimeoutError", nor ky's). */
export const isTimeoutError = (e: unknown): e is TimeoutError =>
  isOf(e, TimeoutError, "TimeoutError", { phase: "string" });
/** True for a {@link FallbackExhaustedError}, across realms. */
export const isFallbackExhaustedError = (e: unknown): e is FallbackExhaustedError =>
  isOf(e, FallbackExhaustedError, "FallbackExhaustedError", { chain: "string", errors: "object" });
/** True for a {@link BulkheadRejectedError}, across realms. */
export const isBulkheadRejectedError = (e: unknown): e is BulkheadRejectedError =>
  isOf(e, BulkheadRejectedError, "BulkheadRejectedError", { key: "string" });
