import { resolve } from "node:path";
import { defineConfig } from "vite";

// The page uses the BUILT package (run `npm run build` first), as a user would.
export default defineConfig({
  root: import.meta.dirname,
  resolve: { alias: { "@storycore/resilient-fetch": resolve(import.meta.dirname, "../../dist/index.js") } },
  build: { outDir: "dist", emptyOutDir: true },
  server: { host: "127.0.0.1" },
  logLevel: "warn",
});
