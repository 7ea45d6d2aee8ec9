import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/index.ts";
import {
  adjustParameters,
  Bulkhead,
  backoffDelay,
  CircuitBreaker,
  defaultLevels,
  FallbackChain,
  initialBreakerState,
  initialLevelState,
  nextLevel,
  RetryBudget,
  retry,
  systemClock,
  transition,
} from "../../src/policies/index.ts";

/**
 * What the README says of `./policies`' input checks: the classes and `retry(fn)` refuse bad options when made;
 * the pure functions beneath them check nothing, so they are never handed a `ConfigError`'s cost twice.
 */
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8").replace(/\s+/g, " ");

describe("./policies: who checks its input", () => {
  it("the classes and retry(fn) refuse bad options when made, as the README says", async () => {
    expect(readme).toContain(
      "The classes of `…/policies` and `retry(fn)` check their options when made, as the layer does (a `ConfigError` or `TypeError` naming what is wrong).",
    );
    expect(() => new Bulkhead("h", 0, 0)).toThrow(ConfigError);
    expect(() => new RetryBudget({ ratio: -1, minPerSecond: 1 })).toThrow(ConfigError);
    expect(() => new CircuitBreaker(5 as never, {} as never, systemClock)).toThrow(TypeError);
    expect(() => new FallbackChain("c", { order: "sideways" as never })).toThrow(/order/);
    await expect(retry(async () => "ran", { maxAttempts: 0 })).rejects.toThrow(ConfigError);
  });

  it("the pure functions check nothing at run time: a bad input is no throw, as the README says", () => {
    expect(readme).toContain(
      "The pure functions beneath them (`transition`, `nextLevel`, `backoffDelay`, `exponentialDelay`, `adjustParameters`) are reducers over typed input and check nothing at run time, so the classes built on them pay nothing twice: call them from TypeScript, or use the classes.",
    );
    const bogus = { type: "bogus" } as never;
    expect(() => transition(initialBreakerState(0), bogus, 0, {} as never)).not.toThrow();
    expect(() => nextLevel(initialLevelState(0), bogus, 0, {} as never)).not.toThrow();
    expect(() =>
      backoffDelay(1, { initialDelay: 1, maxDelay: 2, exponentialBase: 2, jitter: "bogus" as never }, Math.random),
    ).not.toThrow();
    expect(() =>
      adjustParameters({ steps: "fifty" as never }, defaultLevels.medium, {
        resolutions: ["720p"],
        sizeMultiple: 8,
        models: [],
      }),
    ).not.toThrow();
  });
});
