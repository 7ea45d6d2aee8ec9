/**
 * Outside-in attack on upgrading from 0.1 (commit 615da72) with only the
 * migration note and the README in hand. Docs: CHANGELOG.md "All notable
 * changes to `@storycore/resilient-fetch`." and its section "### Changed
 * (breaking: migrating from 0.1)" (each item run as written); 0.1's README
 * ("Circuit breakers", "Fallback chains", "Graceful degradation") and 0.1's
 * option JSDoc (src/core/options/*.ts at 615da72) for what 0.1 users rely on;
 * docs/options.md "0.1's plain array or object is refused with the way to
 * migrate."
 * How: the root entry (`createResilience`, `memoryStore`, errors), the
 * `…/fallback`, `…/degradation` and `…/policies` entries, `TestClock` from
 * `…/testing`; a scripted `fetch` option (no network, no timers: `retry: false`).
 * Paths: 0.1 chains and degradation options passed bare and wrapped as the
 * note says; `resilience.fallback.chain` for a generic chain; the exports the
 * note says moved (as values, as a 0.1 user imports them); a 0.1 breaker
 * config (`failureThreshold: 5`, and the defaults) under interleaved and
 * consecutive 503s; `FallbackChain.run`'s hooks as the note describes them;
 * `bulkhead` with `breaker: false`; a `user:pass@` URL.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all four were in the migration note, which now says what changed, so plain `it` asserting the corrected note and
 * the behaviour it describes: the breaker's `failureThreshold` counting in a row and its new defaults,
 * `GracefulDegradation` a type only, the hooks' argument order; the README has an upgrade paragraph):
 * 1. CHANGELOG.md "All notable changes to `@storycore/resilient-fetch`." with
 *    0.1's README "CLOSED → OPEN when `failureThreshold` (5) failures fall
 *    inside `timeWindow` (300 s)": `failureThreshold` now counts failed
 *    attempts in a row (a success restarts it), and the breaking section does
 *    not say so. Observed: a 0.1 config `breaker: { failureThreshold: 5 }` with
 *    5 503s interleaved with 200s inside one second leaves the host `closed`
 *    (0.1 opened it; the same option is accepted and means something else).
 * 2. CHANGELOG.md "All notable changes to `@storycore/resilient-fetch`." with
 *    0.1's breaker defaults (README: `failureThreshold` (5), `timeWindow`
 *    (300 s), "After `timeout` (60 s)"; failure rate "if you set" it): the
 *    defaults became 12 in a row, 30 s, 30 s and a 0.5 rate over 100 attempts,
 *    and the breaking section does not say so. Observed:
 *    `debugInfo().options.breaker` is `{ failureThreshold: 12, timeout: 30000,
 *    timeWindow: 30000, failureRate: 0.5, minimumCalls: 100, … }`, and 5
 *    consecutive 503s (which opened a 0.1 host) leave the host `closed`.
 * 3. CHANGELOG.md "`GracefulDegradation` and `defaultLevels` from
 *    `…/degradation`." Observed: `…/degradation` exports `GracefulDegradation`
 *    as a type only; as a value (0.1's class, e.g. `resilience.degradation
 *    instanceof GracefulDegradation`) it is `undefined` and `instanceof`
 *    throws `TypeError: Right-hand side of 'instanceof' is not callable`.
 * 4. CHANGELOG.md "`FallbackChain.run`'s `skip`, `accept` and `moveOn`
 *    receive the run's input as their last argument". Observed: `accept` is
 *    called `(value, name, input, signal)` (last: the entry's signal,
 *    `undefined` in a run without one) and `moveOn` `(failure, input, name)`
 *    (last: the failed entry's name, `"first"`); only `skip` gets it last.
 *
 * Held (plain `it`):
 * - 0.1's bare `fallback: [...]` and `degradation: {...}` throw `ConfigError`
 *   (path `fallback` / `degradation`) naming `fallback(…)` / `degradation(…)`
 *   and their import path.
 * - The note's wrapped form runs: 0.1's README chain and degradation options
 *   through `fallback(…)` / `degradation(…)`; `resilience.fallback.chain(name)`
 *   returns the configured chain and a generic one; README's `medium` example
 *   of `adjust` gives exactly `{ quality: 0.8, resolution: "720p", steps: 30,
 *   model: "standard" }`; without the stages both handles are `undefined`.
 * - The moved values are exported by `…/policies` and gone from the root
 *   (`parseRetryAfter` too); `defaultLevels` is in `…/degradation`.
 * - `bulkhead` with `breaker: false` is a `ConfigError` saying what to remove.
 * - A `user:pass@` URL rejects at once with a `TypeError`: nothing sent,
 *   nothing counted against the host.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as degradationEntry from "../../src/degradation/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import * as rootEntry from "../../src/index.ts";
import { ConfigError, createResilience, type FetchLike } from "../../src/index.ts";
import * as policiesEntry from "../../src/policies/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A transport answering each request with the next status of `script` (then 200), counting requests. */
function scripted(script: number[]): { fetch: FetchLike; count: () => number } {
  let n = 0;
  return {
    fetch: async () => {
      const status = script[n++] ?? 200;
      return new Response(status === 200 ? "ok" : "busy", { status });
    },
    count: () => n,
  };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("migrating from 0.1: the note's ConfigErrors and wrapped stages", () => {
  it("0.1's bare fallback array and degradation object throw a ConfigError saying how to migrate", () => {
    const chains = [{ name: "video", endpoints: [{ name: "a", url: "https://a.example/v1" }] }];
    const f = thrown(() => createResilience({ fallback: chains } as never));
    expect(f).toBeInstanceOf(ConfigError);
    expect((f as ConfigError).path).toBe("fallback");
    expect((f as Error).message).toContain('fallback(…) from "@storycore/resilient-fetch/fallback"');
    const d = thrown(() => createResilience({ degradation: { levelHeader: "x-level" } } as never));
    expect(d).toBeInstanceOf(ConfigError);
    expect((d as ConfigError).path).toBe("degradation");
    expect((d as Error).message).toContain('degradation(…) from "@storycore/resilient-fetch/degradation"');
  });

  it("the note's wrapped form runs 0.1's README chain and degradation options", async () => {
    const bare = createResilience({ fetch: scripted([]).fetch });
    expect(bare.fallback).toBeUndefined();
    expect(bare.degradation).toBeUndefined();

    const resilience = createResilience({
      fetch: scripted([]).fetch,
      fallback: fallback([
        {
          name: "video",
          order: "adaptive",
          hedge: { delay: 2_000 },
          endpoints: [
            { name: "hunyuan", url: "https://hunyuan.example/v1/video" },
            {
              name: "wan",
              url: "https://wan.example/v2/video",
              expectedQuality: 0.8,
              transform: (req) => ({ ...req, body: { ...req.body, steps: 20 } }),
            },
            { name: "cached", respond: () => new Response("cached"), expectedQuality: 0.4 },
          ],
        },
      ]),
      degradation: degradation({ levelHeader: "x-degradation-level", triggers: { errorRate: 0.2 } }),
    });
    expect(resilience.fallback.chain("video").ordered()).toEqual(["hunyuan", "wan", "cached"]);
    const generic = resilience.fallback.chain<number, string>("thumbnail");
    generic.add(() => Promise.reject(new Error("gpu down")), { name: "gpu" });
    generic.add((n) => `cpu ${n}`, { name: "cpu", expectedQuality: 0.6 });
    expect(await generic.execute(7)).toBe("cpu 7");

    resilience.degradation.setLevel("medium");
    expect(resilience.degradation.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" })).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
  });

  it("the moved values import from …/policies (and defaultLevels from …/degradation), not from the root", () => {
    const moved = [
      "retry",
      "CircuitBreaker",
      "Bulkhead",
      "RetryBudget",
      "FallbackChain",
      "transition",
      "initialBreakerState",
      "nextLevel",
      "initialLevelState",
      "backoffDelay",
      "exponentialDelay",
      "adjustParameters",
      "defaultLevels",
      "systemClock",
    ];
    const policies = policiesEntry as Record<string, unknown>;
    const root = rootEntry as Record<string, unknown>;
    for (const name of moved) {
      expect(policies[name], name).toBeDefined();
      expect(root[name], name).toBeUndefined();
    }
    expect(root.parseRetryAfter).toBeUndefined();
    expect(degradationEntry.defaultLevels.medium.maxSteps).toBe(30);
  });

  it("bulkhead with breaker: false is a ConfigError saying what to remove", () => {
    const error = thrown(() => createResilience({ bulkhead: { maxConcurrent: 1 }, breaker: false }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("bulkhead");
    expect((error as Error).message).toContain("breaker: false");
  });

  it("a user:pass@ URL rejects at once with a TypeError, sent nowhere and counted against no host", async () => {
    const upstream = scripted([]);
    const resilience = createResilience({ fetch: upstream.fetch, retry: false, breaker: { failureThreshold: 1 } });
    await expect(resilience.fetch("https://user:pass@api.example/v1")).rejects.toBeInstanceOf(TypeError);
    expect(upstream.count()).toBe(0);
    expect(resilience.health().breakers["api.example"]?.state ?? "closed").toBe("closed");
  });
});

/** CHANGELOG.md's breaking section, one paragraph per line (its items are wrapped). */
const breaking = (() => {
  const text = readFileSync(new URL("../../CHANGELOG.md", import.meta.url), "utf8");
  const start = text.indexOf("### Changed (breaking: migrating from 0.1)");
  return text.slice(start, text.indexOf("\n### ", start + 1)).replace(/\n {2}/g, " ");
})();

describe("migrating from 0.1: what the note left out or got wrong (now said, and true)", () => {
  // 0.1's README: "CLOSED → OPEN when `failureThreshold` (5) failures fall inside `timeWindow` (300 s)".
  it("a 0.1 breaker config (failureThreshold: 5) now counts failures in a row, as the note says", async () => {
    expect(breaking).toContain(
      "`failureThreshold` now counts failed attempts **in a row** (any success restarts the count)",
    );
    expect(breaking).toContain(
      "a 0.1 `breaker: { failureThreshold: 5 }` now opens after 5 failures in a row, and no longer on 5 failures among successes",
    );
    const run = async (statuses: number[]) => {
      const clock = new TestClock();
      const upstream = scripted(statuses);
      const resilience = createResilience({
        clock,
        fetch: upstream.fetch,
        retry: false,
        breaker: { failureThreshold: 5 },
      });
      for (let i = 0; i < statuses.length; i++) {
        await resilience.fetch("https://api.example/v1/jobs");
        await clock.advance(100);
      }
      return resilience.health().breakers["api.example"]?.state;
    };
    // Five failures within a second, never five in a row: 0.1 opened here.
    expect(await run([503, 200, 503, 200, 503, 200, 503, 200, 503])).toBe("closed");
    expect(await run([503, 503, 503, 503, 503])).toBe("open");
  });

  // 0.1's README: "`failureThreshold` (5) … `timeWindow` (300 s)", "After `timeout` (60 s) it is HALF_OPEN".
  it("the breaker defaults are the ones the note gives (12 in a row, 30 s open, 0.5 over 100 attempts in 30 s)", async () => {
    expect(breaking).toContain("the defaults are 12 in a row (was 5 in the window), a 30 s open `timeout` (was 60 s)");
    expect(breaking).toContain(
      "a `failureRate` of 0.5 over at least `minimumCalls` (100) attempts in `timeWindow` (30 s, was 300 s)",
    );
    const clock = new TestClock();
    const upstream = scripted(Array(12).fill(503));
    const resilience = createResilience({ clock, fetch: upstream.fetch, retry: false });
    expect(resilience.debugInfo().options.breaker).toMatchObject({
      failureThreshold: 12,
      timeout: 30_000,
      timeWindow: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
    });
    for (let i = 0; i < 11; i++) await resilience.fetch("https://api.example/v1/jobs");
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
    await resilience.fetch("https://api.example/v1/jobs");
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
  });

  // The note said "`GracefulDegradation` and `defaultLevels` from `…/degradation`", read as 0.1's class.
  it("GracefulDegradation is a type only in …/degradation, as the note now says; a layer has one when the stage is given", () => {
    expect(breaking).toContain("`GracefulDegradation` there as a type only");
    expect(breaking).toContain("a layer has one when `resilience.degradation !== undefined`");
    expect((degradationEntry as Record<string, unknown>).GracefulDegradation).toBeUndefined();
    expect(createResilience({ degradation: degradation({}) }).degradation !== undefined).toBe(true);
    expect(createResilience().degradation).toBeUndefined();
  });

  // The note said the hooks "receive the run's input as their last argument"; only `skip` did.
  it("FallbackChain.run's hooks get the run's input where the note says: skip(name, input), accept(value, name, input, signal), moveOn(failure, input, name)", async () => {
    expect(breaking).toContain(
      "`skip(name, input)`, `accept(value, name, input, signal)` and `moveOn(failure, input, name)`",
    );
    const input = { prompt: "a lighthouse" };
    const seen: Record<string, unknown[]> = {};
    const chain = new FallbackChain<typeof input, string>("thumbnail");
    chain.add(() => "bad", { name: "first" });
    chain.add(() => "good", { name: "second" });
    const result = await chain.run(input, {
      skip: (...args: unknown[]) => {
        seen.skip ??= args;
        return undefined;
      },
      accept: (value: string, ...rest: unknown[]) => {
        seen.accept ??= [value, ...rest];
        return value === "bad" ? "rejected" : undefined;
      },
      moveOn: (...args: unknown[]) => {
        seen.moveOn ??= args;
        return true;
      },
    } as never);
    expect(result.ok).toBe(true);
    expect(seen.skip).toEqual(["first", input]);
    expect(seen.accept?.slice(0, 3)).toEqual(["bad", "first", input]);
    expect(seen.accept).toHaveLength(4);
    expect(seen.moveOn?.slice(1)).toEqual([input, "first"]);
  });
});
