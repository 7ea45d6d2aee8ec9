/**
 * Installs the packed library into a fresh vitest + MSW project (this
 * folder's package.json, vitest.config.ts and specs, copied to a temporary
 * directory) and runs its tests there, as a user would: node and happy-dom,
 * no onUnhandledError filter. Uses `dist/`, so `npm run build` comes first
 * (`npm test` does it). The install reads npm's cache first (`--prefer-offline`);
 * the registry is only asked for what the cache lacks.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const here = import.meta.dirname;
const root = resolve(here, "../..");
/** What a user has in their project: everything here but this driver. */
const PROJECT_FILES = ["package.json", "vitest.config.ts", "cases.ts", "node.spec.ts", "happy-dom.spec.ts"];

let dir: string;

beforeAll(async () => {
  if (!existsSync(join(root, "dist/index.js"))) {
    throw new Error("test/user-project needs the built package: run `npm run build` first");
  }
  dir = await mkdtemp(join(tmpdir(), "resilient-fetch-user-project-"));
  await run("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: root });
  const tarball = (await readdir(dir)).find((name) => name.endsWith(".tgz"));
  if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${dir}`);
  for (const file of PROJECT_FILES) await copyFile(join(here, file), join(dir, file));
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", `./${tarball}`], {
    cwd: dir,
    timeout: 240_000,
  });
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("a fresh vitest + MSW project using the packed library passes in node and happy-dom with no unhandled error", async () => {
  const result = await run("npx", ["vitest", "run"], {
    cwd: dir,
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", CI: "1" },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? -1,
      output: `${error.stdout ?? ""}${error.stderr ?? ""}`,
    }),
  );
  const summary = result.output.slice(result.output.lastIndexOf("Test Files"));
  expect(result.output).not.toMatch(/unhandled error/i);
  expect(result.output).not.toMatch(/Controller is already closed|Parse Error/);
  expect(summary).toMatch(/Test Files\s+2 passed/);
  expect(summary).toMatch(/Tests\s+8 passed/);
  expect(result.code, result.output).toBe(0);
}, 150_000);
