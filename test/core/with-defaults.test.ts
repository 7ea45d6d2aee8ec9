import { describe, expect, it } from "vitest";
import { withDefaults } from "../../src/core/options/with-defaults.ts";
import { resolveDegradation } from "../../src/degradation/degradation-options.ts";
import { retry } from "../../src/policies/index.ts";

describe("withDefaults: the one way defaults are applied", () => {
  const defaults = { a: 1, b: "x", c: undefined as number | undefined };

  it("takes what the caller set and keeps the default where the caller left undefined", () => {
    expect(withDefaults(defaults, { a: 5, b: undefined })).toEqual({ a: 5, b: "x", c: undefined });
    expect(withDefaults(defaults, { c: 0 })).toEqual({ a: 1, b: "x", c: 0 });
  });

  it("keeps a wrong value (null) for the option checker to refuse, and drops keys the defaults lack", () => {
    const resolved = withDefaults(defaults, { a: null, extra: 1 } as never);
    expect(resolved).toEqual({ a: null, b: "x", c: undefined });
    expect("extra" in resolved).toBe(false);
  });

  it("returns a new object and leaves the defaults as they were", () => {
    const resolved = withDefaults(defaults, { a: 2 });
    expect(resolved).not.toBe(defaults);
    expect(defaults.a).toBe(1);
  });

  it("so retry(fn) still refuses a null number at once, naming it", async () => {
    let calls = 0;
    const work = () => {
      calls++;
      return 1;
    };
    await expect(retry(work, { maxAttempts: null as never })).rejects.toThrow(/maxAttempts/);
    expect(calls).toBe(0);
  });

  it("and a degradation level's setting given as undefined keeps the guide's value", () => {
    const resolved = resolveDegradation({ levels: { medium: { maxSteps: undefined, percentage: 55 } as never } });
    expect(resolved.levels.medium).toMatchObject({ maxSteps: 30, percentage: 55 });
  });
});
