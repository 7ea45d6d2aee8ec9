import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * What docs/breakers.md says of a named breaker's options and its `hold`, written in after the breakerdoc run
 * (test/security/breakerdoc-fiftynine-attack.test.ts) found the guide silent: each is asserted as behaviour, and
 * the guide is checked to say it.
 */

const guide = async () =>
  (await readFile(new URL("../../docs/breakers.md", import.meta.url), "utf8")).replace(/\s+/g, " ");

const DAY = 86_400_000;

describe("a named breaker's hold", () => {
  it("keeps it open as long as asked, past the day a Retry-After or a store's state gets, until reset()", async () => {
    expect(await guide()).toContain(
      "Its `hold(until, reason)` keeps it open until `until` (epoch ms), taken as your code's word, with no cap (a `Retry-After` or a store's state holds a host a day at most); a time already past (`-Infinity` too) holds nothing, nor does one sooner than the opening in force, `NaN` or `Infinity` is a `TypeError`, and `reset()` ends a hold early.",
    );
    const clock = new TestClock(1_000_000);
    const resilience = createResilience({ clock });
    const gpu = resilience.breaker("gpu");
    gpu.hold(clock.now() + 30 * DAY, "maintenance");
    await clock.advance(29 * DAY);
    expect(gpu.state).toBe("open");
    await expect(gpu.execute(async () => "ran")).rejects.toMatchObject({ name: "CircuitOpenError", key: "gpu" });
    await clock.advance(DAY);
    expect(gpu.state).toBe("half_open");
    expect(await gpu.execute(async () => "ran")).toBe("ran");

    gpu.hold(1e300, "for good");
    expect(gpu.state).toBe("open");
    gpu.hold(clock.now() + 1_000, "sooner");
    await clock.advance(DAY);
    expect(gpu.state).toBe("open");
    gpu.reset();
    expect(gpu.state).toBe("closed");
  });

  it("holds nothing for a time already past, -Infinity too, and refuses NaN and Infinity", () => {
    const clock = new TestClock(1_000_000);
    const gpu = createResilience({ clock }).breaker("gpu");
    gpu.hold(clock.now() - 1, "past");
    gpu.hold(Number.NEGATIVE_INFINITY, "past");
    expect(gpu.state).toBe("closed");
    expect(() => gpu.hold(Number.NaN, "x")).toThrow(TypeError);
    expect(() => gpu.hold(Number.POSITIVE_INFINITY, "x")).toThrow(TypeError);
    expect(gpu.state).toBe("closed");
  });
});

describe("a named breaker's options", () => {
  it("take the per-host registry's key and maxHosts, which do nothing to it", async () => {
    expect(await guide()).toContain(
      "They are the layer's `breaker` options: `key` and `maxHosts`, which only the per-host registry reads, are taken and do nothing here.",
    );
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const gpu = resilience.breaker("gpu", { failureThreshold: 1, maxHosts: 1, key: () => "other" });
    await expect(gpu.execute(async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(gpu.state).toBe("open");
    expect(Object.keys(resilience.health().breakers)).toEqual(["gpu"]);
  });
});

describe("a named breaker and a store", () => {
  it("is never published to the store nor read from it, while the layer's host breakers are", async () => {
    expect(await guide()).toContain(
      "A named breaker is the layer's own: a `store` spreads host breakers only, so a named one is never published to it nor read from it.",
    );
    const seen: string[] = [];
    const store = {
      name: "recording",
      publish: (key: string) => void seen.push(`publish ${key}`),
      peek: (key: string) => void seen.push(`peek ${key}`),
      record: (key: string) => void seen.push(`record ${key}`),
      acquireProbe: async (key: string) => {
        seen.push(`acquire ${key}`);
        return true;
      },
      releaseProbe: (key: string) => void seen.push(`release ${key}`),
    };
    const clock = new TestClock(1_000_000);
    const resilience = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, failureRate: undefined, timeout: 1_000, successThreshold: 1 },
      fetch: async () => new Response("down", { status: 503 }),
    });
    const gpu = resilience.breaker("upscaler");
    await expect(gpu.execute(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(gpu.state).toBe("open");
    await clock.advance(1_000);
    expect(await gpu.execute(async () => "ran")).toBe("ran");
    gpu.hold(clock.now() + 5_000, "maintenance");
    gpu.reset();
    expect(seen.filter((entry) => entry.endsWith("upscaler"))).toEqual([]);

    await resilience.fetch("https://api.example/jobs");
    expect(seen.some((entry) => entry.endsWith("api.example"))).toBe(true);
  });
});
