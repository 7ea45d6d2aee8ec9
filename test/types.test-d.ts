import { describe, expectTypeOf, it } from "vitest";
import { degradation, type GracefulDegradation } from "../src/degradation/index.ts";
import { type FallbackChains, fallback } from "../src/fallback/index.ts";
import type { BreakerStore, ResilienceOptions } from "../src/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  type FetchLike,
  getResilienceInfo,
  type ResilienceError,
  type ResilienceInfo,
} from "../src/index.ts";
import { retry } from "../src/policies/index.ts";

describe("public types", () => {
  it("the opt-in stages type their handles: present when passed, undefined when not", () => {
    const bare = createResilience({ retry: { maxAttempts: 2 } });
    expectTypeOf(bare.fallback).toEqualTypeOf<undefined>();
    expectTypeOf(bare.degradation).toEqualTypeOf<undefined>();
    const full = createResilience({ fallback: fallback([]), degradation: degradation() });
    expectTypeOf(full.fallback).toMatchTypeOf<FallbackChains>();
    expectTypeOf(full.fallback).not.toBeNullable();
    expectTypeOf(full.degradation).toMatchTypeOf<GracefulDegradation>();
    expectTypeOf(full.degradation).not.toBeNullable();
    const off = createResilience({ fallback: false, degradation: false });
    expectTypeOf(off.fallback).toEqualTypeOf<undefined>();
    expectTypeOf(off.degradation).toEqualTypeOf<undefined>();
    const maybe = createResilience({ fallback: Math.random() > 0.5 && fallback([]) });
    expectTypeOf(maybe.fallback).toEqualTypeOf<FallbackChains | undefined>();
    const options: ResilienceOptions = {};
    const unknown = createResilience(options);
    expectTypeOf(unknown.fallback).toEqualTypeOf<FallbackChains | undefined>();
    // @ts-expect-error 0.1's plain chains no longer type-check: they go through fallback(…)
    createResilience({ fallback: [{ name: "c", endpoints: [{ name: "a", url: "https://a.example" }] }] });
    // @ts-expect-error a misspelt option is still caught by the compiler
    createResilience({ retyr: {} });
  });

  it("resilience.fetch is fetch-compatible", () => {
    const resilience = createResilience();
    expectTypeOf(resilience.fetch).toEqualTypeOf<FetchLike>();
    expectTypeOf(resilience.fetch).toMatchTypeOf<
      typeof globalThis.fetch extends (...a: infer A) => infer R ? (...a: A) => R : never
    >();
    expectTypeOf(resilience.fetch("https://x")).resolves.toEqualTypeOf<Response>();
  });

  it("retry and execute keep the work's type", () => {
    expectTypeOf(retry(async () => 42)).resolves.toEqualTypeOf<number>();
    expectTypeOf(createResilience().execute(() => "x")).resolves.toEqualTypeOf<string>();
  });

  it("events and info are typed", () => {
    const resilience = createResilience();
    resilience.on("retry", (e) => {
      expectTypeOf(e.delay).toEqualTypeOf<number>();
    });
    expectTypeOf(resilience.on("request", () => {})).toEqualTypeOf<() => void>();
    expectTypeOf(getResilienceInfo(new Response())).toEqualTypeOf<ResilienceInfo | undefined>();
    expectTypeOf<CircuitOpenError>().toMatchTypeOf<ResilienceError>();
    expectTypeOf<CircuitOpenError["retryAt"]>().toEqualTypeOf<number>();
  });

  it("rejects unknown options at compile time", () => {
    // @ts-expect-error misspelt option
    createResilience({ retry: { maxAtempts: 3 } });
  });

  it("a store whose bindContext returns nothing, or a release, fits the store contract", () => {
    const base = { publish: () => {}, peek: () => undefined };
    const older = { ...base, name: "older", bindContext(_ctx: unknown): void {} };
    const newer = { ...base, name: "newer", bindContext: (_ctx: unknown) => () => {} };
    expectTypeOf(older).toExtend<BreakerStore>();
    expectTypeOf(newer).toExtend<BreakerStore>();
  });
});
