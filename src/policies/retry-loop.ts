/** What one attempt produced: a value, or the error it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The decisions a caller plugs into {@link runRetryLoop}. */
export interface RetryPlan<T> {
  maxAttempts: number;
  /** Runs attempt `n` (1-based). */
  attempt(n: number): Promise<T>;
  /**
   * Decides after attempt `n` (only called while attempts remain): the delay
   * in ms before the next attempt, or `undefined` to settle with `outcome`.
   */
  next(outcome: Outcome<T>, n: number): number | undefined;
  /**
   * Waits between attempts; must reject at once when the call is aborted.
   * Resolves `true` when woken early (the breaker behind the attempts
   * opened): the loop settles then with the last outcome, sending nothing.
   */
  wait(ms: number): Promise<boolean>;
}

/**
 * The loop every retry in the library runs: attempt, decide, wait. Settles
 * with the last outcome as it is (value or thrown error); wrapping errors is
 * the caller's business, since only it knows what "no response" means.
 */
export async function runRetryLoop<T>(plan: RetryPlan<T>): Promise<{ outcome: Outcome<T>; attempts: number }> {
  for (let n = 1; ; n++) {
    let outcome: Outcome<T>;
    try {
      outcome = { ok: true, value: await plan.attempt(n) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const delay = n < plan.maxAttempts ? plan.next(outcome, n) : undefined;
    if (delay === undefined) return { outcome, attempts: n };
    if (await plan.wait(delay)) return { outcome, attempts: n };
  }
}
