import { defineConfig, mergeConfig, type TestProjectConfiguration } from "vitest/config";
import base from "./vitest.config.ts";

/**
 * The workerd tests alone (project "workers" of vitest.config.ts) for
 * Stryker's vitest runner: `npx stryker run stryker.workers.config.json`.
 * It works (the project keeps the Cloudflare pool; Stryker's setup file and
 * mutant switch run inside workerd) but costs about 10 s per mutant, so the
 * regular runs cover src/cloudflare from Node (test/cloudflare) instead.
 */
const projects = (base.test?.projects ?? []) as TestProjectConfiguration[];
const workers = projects.find((p) => typeof p === "object" && "test" in p && p.test?.name === "workers");
if (!workers || typeof workers !== "object") throw new Error('vitest.config.ts has no "workers" project');
export default mergeConfig(defineConfig({}), workers as object);
