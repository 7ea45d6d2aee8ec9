import { defineConfig } from "vitest/config";

/**
 * The tests Stryker runs against each mutant of src/policies and src/http:
 * the Node unit and integration tests, without the ones that spawn other
 * runtimes, browsers or processes (they test the built package, not the
 * mutated source) and without the long simulations.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [
      "test/workers/**",
      "test/runtimes/**",
      "test/soak/**",
      "test/cloudflare/**",
      "test/testing/kit.happy-dom.test.ts",
    ],
    environment: "node",
  },
});
