import { resolve } from "node:path";
import { defineConfig } from "vite";

// The page uses the BUILT package's browser build (run `npm run build` first), as a user's bundler would.
export default defineConfig({
  root: import.meta.dirname,
  resolve: {
    alias: [
      // The root and the opt-in entries the page imports, each to its built file.
      {
        find: /^@storycore\/resilient-fetch$/,
        replacement: resolve(import.meta.dirname, "../../dist/browser/index.js"),
      },
      {
        find: /^@storycore\/resilient-fetch\/(fallback|degradation)$/,
        replacement: resolve(import.meta.dirname, "../../dist/browser/$1/index.js"),
      },
    ],
  },
  build: { outDir: "dist", emptyOutDir: true },
  server: { host: "127.0.0.1" },
  logLevel: "warn",
});
