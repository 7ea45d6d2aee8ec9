/** A retry policy with no real waiting for tests that do not inject a clock. */
export const instantRetry = { initialDelay: 0, maxDelay: 0, jitter: "none" } as const;
