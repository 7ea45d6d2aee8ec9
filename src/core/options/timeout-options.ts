/**
 * Deadlines. Neither is set by default: generation APIs (video especially)
 * legitimately take minutes, and only the caller knows how long is too long.
 */
export interface TimeoutOptions {
  /**
   * Time to response headers for one attempt, in ms. A streamed body is not
   * bounded by it once headers have arrived. In a fallback chain it also
   * bounds an endpoint's `respond` or `transform`, and its `validate`.
   * @default undefined (none)
   */
  attempt?: number | undefined;
  /**
   * The whole call, waits between attempts included, in ms.
   * @default undefined (none)
   */
  total?: number | undefined;
}

export interface ResolvedTimeout {
  attempt: number | undefined;
  total: number | undefined;
}

export function resolveTimeout(options: TimeoutOptions | undefined): ResolvedTimeout {
  return { attempt: options?.attempt, total: options?.total };
}
