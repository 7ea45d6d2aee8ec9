import { expect } from "vitest";
import type { ConformanceResult } from "./conformance.js";

/** Every check passed; `n/a` only for the checks named, with their reason shown on failure. */
export function expectConformance(results: ConformanceResult[], allowedNa: string[] = []): void {
  expect(results.length).toBeGreaterThanOrEqual(9);
  for (const r of results) {
    if (r.status === "n/a") expect(allowedNa, `${r.check}: ${r.detail}`).toContain(r.check);
    else expect(r.status, `${r.check}: ${r.detail}`).toBe("pass");
  }
}
