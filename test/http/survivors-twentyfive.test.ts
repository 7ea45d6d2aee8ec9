import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { ConfigError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { json } from "../../src/testing/index.ts";

/**
 * Mutants of the twenty-fourth session's lines that survived Stryker (see
 * docs/mutation.md), each killed here: every test below failed with its
 * mutant applied by hand.
 */
describe("survivors of the twenty-fourth session's lines", () => {
  it("a union names each object alternative by its keys (check-options.ts shapeOf)", () => {
    const refused = () =>
      degradation({ rules: [{ params: { quality: { body: "a", query: "b", header: "c" } } }] } as never);
    expect(refused).toThrow(ConfigError);
    expect(refused).toThrow(
      "degradation.rules.0.params.quality: expected string or { body } or { query } or { header }, received an object",
    );
  });

  it("the ky client names a bulkhead without breakers under resilience (resolve-options.ts root path)", () => {
    let error: unknown;
    try {
      createClient({ resilience: { bulkhead: { maxConcurrent: 1 }, breaker: false } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("resilience.bulkhead");
  });

  it("json() says why it refuses a statusText or a body JSON writes nothing for (faults.ts messages)", () => {
    expect(() => json({ ok: true }, { statusText: "a\nb" })).toThrow(
      "json(body, { statusText }): expected a reason phrase a Response can carry (no line break or control character), got a string",
    );
    expect(() => json(undefined)).toThrow("json(body): expected a value JSON can write, got undefined");
  });
});
