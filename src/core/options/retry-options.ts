import { withDefaults } from "./with-defaults.ts";

/**
 * How the delay before a retry is randomised.
 * @see https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/ (Brooker)
 */
export type Jitter = "full" | "equal" | "decorrelated" | "none";

/** What counts as worth another attempt (StoryCore-Engine's `retryable_exceptions`). */
export interface RetryOn {
  /**
   * Response statuses that are retried.
   * @default [408, 425, 429, 500, 502, 503, 504]
   */
  statuses?: readonly number[] | undefined;
  /**
   * Methods retried on any retryable outcome. Other methods (POST, PATCH) are
   * retried only on 429 and 503, when the server declined the work, unless
   * the request carries an `Idempotency-Key` header.
   * @default ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
   */
  methods?: readonly string[] | undefined;
  /**
   * Which thrown errors are retried.
   * @default network errors (`TypeError` from fetch) and attempt timeouts for
   * HTTP; every error except an abort for `retry(fn)`
   */
  error?: ((error: unknown) => boolean) | undefined;
}

/** Retry with capped exponential backoff and jitter (StoryCore-Engine's `RetryConfig`). */
export interface RetryOptions {
  /**
   * Attempts in all, the first included.
   * @default 3
   */
  maxAttempts?: number | undefined;
  /**
   * Delay before the first retry, in ms.
   * @default 1000
   */
  initialDelay?: number | undefined;
  /**
   * Cap on any computed delay, in ms.
   * @default 60000
   */
  maxDelay?: number | undefined;
  /**
   * Growth factor: retry n waits `initialDelay * exponentialBase^(n-1)`.
   * @default 2
   */
  exponentialBase?: number | undefined;
  /** @default "full" */
  jitter?: Jitter | undefined;
  retryOn?: RetryOn | undefined;
  /**
   * Longest `Retry-After` the call will sleep through, in ms. A longer one is
   * not waited for: the call moves on (next endpoint, or resolves with that
   * response) and the host's breaker is held open until then.
   * @default 60000
   */
  maxRetryAfter?: number | undefined;
  /**
   * Add an `Idempotency-Key` (a random UUID: `crypto.randomUUID()`, or `crypto.getRandomValues` in a page that is no secure context) to POST and PATCH
   * requests that have none: one key per logical call, reused on every retry
   * and fallback, which makes them retryable like GET.
   * @default false
   */
  idempotencyKey?: boolean | undefined;
}

/** {@link RetryOptions} with every default applied. */
export interface ResolvedRetry {
  maxAttempts: number;
  initialDelay: number;
  maxDelay: number;
  exponentialBase: number;
  jitter: Jitter;
  statuses: ReadonlySet<number>;
  methods: ReadonlySet<string>;
  error: ((error: unknown) => boolean) | undefined;
  maxRetryAfter: number;
  idempotencyKey: boolean;
}

/** The defaults `retry(fn)` shares: the numbers and the jitter. */
export const retryNumberDefaults: Readonly<
  Pick<ResolvedRetry, "maxAttempts" | "initialDelay" | "maxDelay" | "exponentialBase" | "jitter">
> = {
  maxAttempts: 3,
  initialDelay: 1000,
  maxDelay: 60_000,
  exponentialBase: 2,
  jitter: "full",
};

export const retryDefaults: Readonly<Omit<ResolvedRetry, "statuses" | "methods" | "error">> =
  /* @__PURE__ */ Object.assign({}, retryNumberDefaults, { maxRetryAfter: 60_000, idempotencyKey: false });

export const defaultRetryStatuses: readonly number[] = [408, 425, 429, 500, 502, 503, 504];
export const defaultIdempotentMethods: readonly string[] = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"];

/** Applies defaults; `undefined` never wipes one. `false` means one attempt. */
export function resolveRetry(options: RetryOptions | false | undefined): ResolvedRetry {
  const o = options === false ? { maxAttempts: 1 } : (options ?? {});
  return {
    ...withDefaults(retryDefaults, o),
    statuses: new Set(o.retryOn?.statuses ?? defaultRetryStatuses),
    methods: new Set((o.retryOn?.methods ?? defaultIdempotentMethods).map((m) => m.toUpperCase())),
    error: o.retryOn?.error,
  };
}
