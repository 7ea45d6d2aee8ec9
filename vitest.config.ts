import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.test.json" },
    // happy-dom's fetch keeps pushing data into a response body after it was
    // cancelled (as this library does for responses it retries past) and
    // throws ERR_INVALID_STATE from its own stream plumbing. Only that error,
    // raised inside happy-dom, is ignored; anything else still fails the run.
    onUnhandledError(error) {
      const e = error as { code?: string; stack?: string };
      if (e.code === "ERR_INVALID_STATE" && e.stack?.includes("happy-dom/lib/fetch")) return false;
    },
  },
});
