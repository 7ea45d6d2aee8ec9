/** A per-host concurrency limit with a bounded queue. */
export interface BulkheadOptions {
  /** Attempts in flight per host. */
  maxConcurrent: number;
  /**
   * Attempts allowed to wait for a slot; one more is rejected at once with
   * `BulkheadRejectedError`.
   * @default 0
   */
  maxQueue?: number | undefined;
}

export interface ResolvedBulkhead {
  maxConcurrent: number;
  maxQueue: number;
}

export function resolveBulkhead(options: BulkheadOptions | undefined): ResolvedBulkhead | undefined {
  return options ? { maxConcurrent: options.maxConcurrent, maxQueue: options.maxQueue ?? 0 } : undefined;
}
