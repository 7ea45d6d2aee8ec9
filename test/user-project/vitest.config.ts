import { defineConfig } from "vitest/config";

// What a user writes: an environment per file, nothing else. No
// onUnhandledError filter: an error the library leaves behind fails the run.
export default defineConfig({
  test: {
    include: ["*.spec.ts"],
  },
});
