import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BackoffOptions, backoffDelay, exponentialDelay } from "../../src/policies/index.ts";
import { seededRandom } from "../../src/testing/index.ts";

const base: BackoffOptions = { initialDelay: 1000, maxDelay: 60_000, exponentialBase: 2, jitter: "none" };

describe("backoff as pure functions", () => {
  it("grows exponentially and caps at maxDelay", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => exponentialDelay(n, base))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
    expect(backoffDelay(3, base, () => 0.999)).toBe(4000);
  });

  it("full jitter spans [0, capped) with a mean near half", () => {
    const random = seededRandom(11);
    const samples = Array.from({ length: 20_000 }, () => backoffDelay(3, { ...base, jitter: "full" }, random));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(4000);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(1950);
    expect(mean).toBeLessThan(2050);
    // Roughly uniform: each quarter of the range holds about a quarter of the samples.
    for (let q = 0; q < 4; q++) {
      const share = samples.filter((s) => s >= q * 1000 && s < (q + 1) * 1000).length / samples.length;
      expect(share).toBeGreaterThan(0.23);
      expect(share).toBeLessThan(0.27);
    }
  });

  it("equal jitter never goes below half the capped delay", () => {
    const random = seededRandom(5);
    const samples = Array.from({ length: 5_000 }, () => backoffDelay(2, { ...base, jitter: "equal" }, random));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(...samples)).toBeLessThan(2000);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(1470);
    expect(mean).toBeLessThan(1530);
  });

  it("decorrelated jitter stays within [initialDelay, min(maxDelay, 3 x previous)]", () => {
    const random = seededRandom(9);
    let previous: number | undefined;
    for (let n = 1; n < 200; n++) {
      const delay = backoffDelay(n, { ...base, jitter: "decorrelated" }, random, previous);
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(Math.min(60_000, Math.max(1000, (previous ?? 1000) * 3)));
      previous = delay;
    }
  });

  it("is deterministic for a given seed: each delay is the seeded draw times the capped delay", () => {
    const run = (seed: number) => {
      const random = seededRandom(seed);
      return [1, 2, 3].map((n) => backoffDelay(n, { ...base, jitter: "full" }, random));
    };
    // The same draws taken straight from the generator, scaled by 1 s, 2 s, 4 s.
    const draws = seededRandom(123);
    const expected = [1000, 2000, 4000].map((capped) => draws() * capped);
    expect(run(123)).toEqual(expected);
    expect(run(123)).toEqual(run(123));
    expect(run(124)).not.toEqual(run(123)); // the random seed matters: not a constant
  });

  it("a random outside [0, 1) still waits from 0 to maxDelay, whatever the jitter (a test double of yours)", () => {
    for (const jitter of ["full", "equal", "decorrelated"] as const) {
      for (const draw of [1.5, Number.POSITIVE_INFINITY, -1, Number.NaN]) {
        const delay = backoffDelay(3, { ...base, maxDelay: 3000, jitter }, () => draw, 2000);
        expect([jitter, draw, delay >= 0 && delay <= 3000]).toEqual([jitter, draw, true]);
      }
    }
    expect(backoffDelay(3, { ...base, maxDelay: 3000, jitter: "full" }, () => 1.5)).toBe(3000);
    expect(backoffDelay(3, { ...base, jitter: "full" }, () => Number.NaN)).toBe(0);
  });

  it("every strategy stays within [0, maxDelay] for any valid options (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 100_000, noNaN: true }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.constantFrom("full", "equal", "decorrelated", "none" as const),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, initialDelay, maxDelay, exponentialBase, jitter, r) => {
          const delay = backoffDelay(n, { initialDelay, maxDelay, exponentialBase, jitter }, () => r, initialDelay * 2);
          return (
            delay >= 0 &&
            delay <= Math.max(maxDelay, jitter === "decorrelated" ? initialDelay : maxDelay) &&
            Number.isFinite(delay)
          );
        },
      ),
    );
  });
});
