/** Per-endpoint statistics, as `statistics()` reports them. */
export interface EndpointStatistics {
  calls: number;
  successes: number;
  successRate: number;
  meanLatencyMs: number;
}

/** How much one outcome moves the decaying averages. */
const ALPHA = 0.2;
/** Without news, an endpoint's recent success rate drifts back to 1 with this half-life. */
const RECOVERY_HALF_LIFE_MS = 60_000;

/**
 * Counts for `statistics()` plus decaying averages for adaptive ordering.
 * The recent success rate decays back toward 1 while an endpoint goes
 * unused, so an endpoint that failed is tried again after a while instead
 * of being starved forever (its breaker still protects it if it is down).
 */
export class EndpointStats {
  calls = 0;
  successes = 0;
  #latencyTotal = 0;
  #recentSuccess = 1;
  #recentLatency = 0;
  #updatedAt = 0;

  /**
   * A call that served (`ok`) or did not, after `measuredMs`. A hedge that
   * lost is one that did not, for the time it ran (at least that long): the
   * ranking must agree with `statistics()`, or an endpoint that never
   * answers before its hedge would stay first, each call waiting out the
   * hedge's delay on it. Its host's breaker does not count it (it did not fail).
   */
  record(ok: boolean, measuredMs: number, now: number): void {
    // A clock set back during the call measures less than nothing.
    const latencyMs = Math.max(0, measuredMs);
    this.#recentSuccess = this.recentSuccess(now) * (1 - ALPHA) + (ok ? ALPHA : 0);
    this.#recentLatency = this.calls === 0 ? latencyMs : this.recentLatency(now) * (1 - ALPHA) + latencyMs * ALPHA;
    this.#updatedAt = now;
    this.calls++;
    if (ok) this.successes++;
    this.#latencyTotal += latencyMs;
  }

  /** The decayed recent success rate at `now`. */
  recentSuccess(now: number): number {
    if (this.calls === 0) return 1;
    const keep = 0.5 ** (this.#since(now) / RECOVERY_HALF_LIFE_MS);
    return 1 - (1 - this.#recentSuccess) * keep;
  }

  /**
   * The recent latency at `now`, fading toward 0 with the same half-life: a
   * once-slow endpoint is not ranked last forever on a memory it cannot
   * refresh (it is only called again once it ranks first).
   */
  recentLatency(now: number): number {
    if (this.calls === 0) return 0;
    return this.#recentLatency * 0.5 ** (this.#since(now) / RECOVERY_HALF_LIFE_MS);
  }

  /**
   * Ms since the last outcome. A clock set back behind it (an NTP step, a
   * restored VM) would stop the fade for as long as the step: it counts on
   * from the first look after the step instead.
   */
  #since(now: number): number {
    if (now < this.#updatedAt) this.#updatedAt = now;
    return now - this.#updatedAt;
  }

  snapshot(): EndpointStatistics {
    return {
      calls: this.calls,
      successes: this.successes,
      successRate: this.calls === 0 ? 0 : this.successes / this.calls,
      meanLatencyMs: this.calls === 0 ? 0 : this.#latencyTotal / this.calls,
    };
  }
}

/** Latency that costs as much score as a 10-point drop in success rate. */
const LATENCY_SCALE_MS = 60_000;
/** Scores closer than this are a tie, broken by expected quality (no flapping on noise). */
const TIE = 0.05;

/**
 * The adaptive order: by recent success rate minus a latency penalty, ties
 * (within {@link TIE} of the best score of their run) broken by
 * `expectedQuality`, then by configured order.
 */
export function adaptiveOrder<T extends { stats: EndpointStats; expectedQuality: number }>(
  entries: readonly T[],
  now: number,
): T[] {
  const score = (e: T): number => e.stats.recentSuccess(now) - (0.1 * e.stats.recentLatency(now)) / LATENCY_SCALE_MS;
  const ranked = entries
    .map((entry, index) => ({ entry, index, score: score(entry) }))
    .sort((a, b) => b.score - a.score);
  // Each score joins the run of the best one within TIE of it (TIE itself
  // included: 1 - 0.95 is 0.050000000000000044 in floating point, an error
  // far below the 1e-12 allowed for it). Judged pair by pair instead, close
  // scores could chain (a ties b, b ties c, a beats c) into an order that
  // hangs on the sort's comparisons and can put a failing endpoint first.
  let best = Number.POSITIVE_INFINITY;
  for (const x of ranked) {
    if (best - x.score > TIE + 1e-12) best = x.score;
    x.score = best;
  }
  return ranked
    .sort((a, b) => b.score - a.score || b.entry.expectedQuality - a.entry.expectedQuality || a.index - b.index)
    .map((x) => x.entry);
}
