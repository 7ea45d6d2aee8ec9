import { expect } from "vitest";
import type { ConformanceResult } from "./conformance.js";

/**
 * Every check passed; `n/a` only for the checks named, with their reason
 * shown on failure. `redirects` is who must have followed the redirect check
 * (the library everywhere but in browsers, where only the platform can).
 */
export function expectConformance(
  results: ConformanceResult[],
  allowedNa: string[] = [],
  redirects: "library" | "platform" = "library",
): void {
  expect(results.length).toBeGreaterThanOrEqual(10);
  const redirect = results.find((r) => r.check.includes("redirect"));
  expect(redirect?.detail).toMatch(new RegExp(`^followed by the ${redirects}`));
  for (const r of results) {
    if (r.status === "n/a") expect(allowedNa, `${r.check}: ${r.detail}`).toContain(r.check);
    else expect(r.status, `${r.check}: ${r.detail}`).toBe("pass");
  }
}
