/** Types for conformance.js (plain JavaScript so browsers can load it as it is). */
export interface ConformanceResult {
  check: string;
  status: "pass" | "fail" | "n/a";
  detail: string;
}

export function runConformance(env: {
  lib: typeof import("@storycore/resilient-fetch");
  testing: typeof import("@storycore/resilient-fetch/testing/clock");
  api: string;
  alt: string;
  runtime: string;
  canExit: boolean;
}): Promise<ConformanceResult[]>;
