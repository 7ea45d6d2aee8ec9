import type { Jitter } from "../core/options/retry-options.ts";
import type { Random } from "../core/random.ts";

/** The parts of the retry options that shape a delay. */
export interface BackoffOptions {
  initialDelay: number;
  maxDelay: number;
  exponentialBase: number;
  jitter: Jitter;
}

/**
 * Capped exponential delay before retry `n` (n = 1 is the first retry):
 * `min(maxDelay, initialDelay * exponentialBase^(n-1))`.
 */
export function exponentialDelay(n: number, options: BackoffOptions): number {
  // No delay grows from 0 (0 × an overflowed Infinity would be NaN).
  if (options.initialDelay === 0) return 0;
  return Math.min(options.maxDelay, options.initialDelay * options.exponentialBase ** (n - 1));
}

/**
 * The delay before retry `n`, jittered. Pure: same inputs, same delay.
 * `previous` is the last delay, used only by decorrelated jitter.
 *
 * Formulas from Marc Brooker, "Exponential Backoff And Jitter":
 * - full: `random(0, capped)`: least total work under contention;
 * - equal: `capped/2 + random(0, capped/2)`: never shorter than half;
 * - decorrelated: `min(maxDelay, random(initialDelay, previous * 3))`,
 *   independent of `n` and `exponentialBase`, as in his simulator;
 * - none: `capped`, for tests and single clients only.
 * @see https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function backoffDelay(n: number, options: BackoffOptions, random: Random, previous?: number): number {
  // A `random` of yours outside [0, 1) (1.5, a negative, NaN, Infinity) still waits from 0 to `maxDelay`.
  return Math.min(options.maxDelay, Math.max(0, jittered(n, options, random, previous)) || 0);
}

function jittered(n: number, options: BackoffOptions, random: Random, previous?: number): number {
  switch (options.jitter) {
    case "none":
      return exponentialDelay(n, options);
    case "full":
      return random() * exponentialDelay(n, options);
    case "equal": {
      const capped = exponentialDelay(n, options);
      // Clamped: with subnormal delays the halves can round above the cap.
      return Math.min(capped, capped / 2 + random() * (capped / 2));
    }
    case "decorrelated": {
      const low = options.initialDelay;
      const high = Math.max(low, (previous ?? low) * 3);
      // A spread that overflowed to Infinity times a random 0 is NaN, which a
      // timer waits as 0: that draw is the low end, capped as any other.
      return Math.min(options.maxDelay, low + (random() * (high - low) || 0));
    }
  }
}
