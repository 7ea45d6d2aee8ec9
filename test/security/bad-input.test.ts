import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { flaky, sequence, TestClock, upstream } from "../../src/testing/index.ts";

const layer = createResilience({ fallback: fallback([]), degradation: degradation() });

/** Every public function, given wrong types or values, throws a named error naming the parameter. */
const cases: Array<[string, () => unknown, RegExp]> = [
  ["createResilience(42)", () => createResilience(42 as never), /options/],
  [
    "createResilience({ retry: { maxAttempts: -1 } })",
    () => createResilience({ retry: { maxAttempts: -1 } }),
    /retry\.maxAttempts/,
  ],
  ["createResilience({ maxReplayBytes: -5 })", () => createResilience({ maxReplayBytes: -5 }), /maxReplayBytes/],
  [
    "createResilience({ redirects: 'sometimes' })",
    () => createResilience({ redirects: "sometimes" as "library" }),
    /redirects/,
  ],
  [
    "createResilience({ crossOriginHeaders: [''] })",
    () => createResilience({ crossOriginHeaders: [""] }),
    /crossOriginHeaders\.0/,
  ],
  [
    "createResilience({ degradation: { sizeMultiple: 0 } })",
    () => createResilience({ degradation: degradation({ sizeMultiple: 0 }) }),
    /degradation\.sizeMultiple/,
  ],
  ["createResilience({ fallback: {} })", () => createResilience({ fallback: {} as never }), /fallback/],
  ["fallback({})", () => fallback({} as never), /fallback: expected array/],
  ["resilience.breaker(7)", () => layer.breaker(7 as never), /breaker\(name\)/],
  ["resilience.fallback.chain('')", () => layer.fallback.chain(""), /fallback\.chain\(name\)/],
  ["chain.add(null)", () => layer.fallback.chain("x").add(null as never, { name: "n" }), /add\(fn\)/],
  ["resilience.on('retry', 5)", () => layer.on("retry", 5 as never), /listener must be a function/],
  ["degradation.setLevel('max')", () => layer.degradation.setLevel("max" as never), /setLevel\(name\)/],
  ["degradation.adjust([])", () => layer.degradation.adjust([] as never), /adjust\(params\)/],
  [
    "degradation.configureTriggers({ cpuUsage: 3 })",
    () => layer.degradation.configureTriggers({ cpuUsage: 3 }),
    /triggers\.cpuUsage/,
  ],
  ["memoryStore({ maxKeys: 1.5 })", () => memoryStore({ maxKeys: 1.5 }), /maxKeys/],
  ["kvStore(undefined)", () => kvStore(undefined as never), /kvStore\(namespace\)/],
  ["durableObjectStore({})", () => durableObjectStore({} as never), /durableObjectStore\(namespace\)/],
  ["resilientProxy({ routes: [] })", () => resilientProxy({ routes: [] }), /routes/],
  [
    "resilientProxy({ routes: [{ path: 'v1' }] })",
    () => resilientProxy({ routes: [{ path: "v1", upstream: "https://x" }] }),
    /must start with "\/"/,
  ],
  ["createClient({ retry: 3 })", () => createClient({ retry: 3 } as never), /retry/],
  ["upstream('FETCH', …)", () => upstream("FETCH" as never, "https://x", () => new Response()), /method/],
  ["sequence([])", () => sequence([]), /sequence\(faults\)/],
  ["flaky(-1)", () => flaky(-1, { seed: 1 }), /flaky\(rate\)/],
];

describe("bad input is refused with an error naming the parameter", () => {
  it.each(cases)("%s", (_name, call, message) => {
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    expect(error instanceof ConfigError || error instanceof TypeError).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it("rejects (never throws synchronously) from fetch-shaped and async functions", async () => {
    const resilience = createResilience({ clock: new TestClock() });
    await expect(resilience.fetch(42 as never)).rejects.toThrow(/resilience\.fetch\(input\)/);
    await expect(resilience.fetch("not a url")).rejects.toThrow(/invalid URL/);
    await expect(resilience.fetch("https://a.example:70000/")).rejects.toThrow(/invalid URL/);
    await expect(resilience.fetch("https://u:p@a.example/")).rejects.toThrow(/includes credentials/);
    await expect(resilience.fetch("https://a.example/", { method: 1 as never })).rejects.toThrow(/init\.method/);
    await expect(resilience.fetch("https://a.example/", { headers: { "x y": "1" } })).rejects.toThrow(
      /invalid header name/,
    );
    await expect(resilience.fetch("https://a.example/", { headers: [["x", "a\nb"]] })).rejects.toThrow(
      /header "x" has a control character \(CR, LF, NUL…\) or a character above U\+00FF/,
    );
    expect(() => createResilience({ breaker: false, bulkhead: { maxConcurrent: 1 } })).toThrow(/^bulkhead: /);
    await expect(retry(undefined as never)).rejects.toThrow(/retry\(fn\)/);
    // Changed in the thirty-third session: execute rejects as retry(fn) does (it threw at once).
    await expect(resilience.execute("x" as never)).rejects.toThrow(/execute\(fn\)/);
  });
});

describe("a runtime without fetch", () => {
  it("is the caller's mistake: each call is refused at once, nothing retried or counted, on both redirect modes", async () => {
    const saved = globalThis.fetch;
    (globalThis as { fetch?: unknown }).fetch = undefined;
    try {
      for (const redirects of ["library", "platform"] as const) {
        const clock = new TestClock();
        const resilience = createResilience({ clock, redirects });
        const retries: unknown[] = [];
        resilience.on("retry", (e) => retries.push(e));
        const error = await resilience.fetch("https://api.example/x").catch((e: unknown) => e);
        expect(error).toEqual(
          new TypeError("resilience.fetch: no global fetch in this runtime; pass one as the `fetch` option"),
        );
        expect([retries, clock.pending(), resilience.health().breakers]).toEqual([[], 0, {}]);
      }
    } finally {
      globalThis.fetch = saved;
    }
  });
});
