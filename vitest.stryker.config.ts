import { defineConfig } from "vitest/config";

/**
 * The tests Stryker runs against each mutant (src/policies, src/http and, with
 * `stryker.edge.config.json`, src/core, src/testing, src/cloudflare and
 * src/stores): the Node unit and integration tests, the Cloudflare tests that
 * run in Node (test/cloudflare, fake KV and Durable Object), without the ones that spawn other
 * runtimes, browsers or processes (they test the built package, not the
 * mutated source) and without the long simulations. `MUTATION_RUN` lets the
 * two tests that measure rates over thousands of calls step aside (they
 * would run for every surviving mutant; the small tests cover the same code).
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [
      "test/workers/**",
      "test/runtimes/**",
      "test/soak/**",
      "test/testing/kit.happy-dom.test.ts",
      // These drive the built package, SDKs, the demo or whole example apps, not the mutated source.
      "test/user-project/**",
      "test/recipes/**",
      "test/examples/**",
      "test/demo/**",
      "test/tooling/**",
      // These load the built package in child processes or a Chromium page.
      "test/security/streams-and-leftovers-attack.test.ts",
      "test/security/ky-browser-attack.test.ts",
      "test/security/cors-twentyseven-attack.test.ts",
      // These start Deno and Bun on the built package.
      "test/security/runtimes-*-attack.test.ts",
      // These load source text into a Chromium page, where a mutant's instrumentation has no runtime.
      "test/http/cors-hint.test.ts",
      "test/browser/cors-differential.test.ts",
    ],
    environment: "node",
    env: { MUTATION_RUN: "1" },
  },
});
