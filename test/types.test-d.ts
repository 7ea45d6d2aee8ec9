import { describe, expectTypeOf, it } from "vitest";
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
});
