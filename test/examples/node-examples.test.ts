import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * The Node examples, run as their npm scripts run them (`node <file>` after
 * `npm run build`, since they import the package by its name; the scripts'
 * own build is left out here, where the suite has built once): each must
 * print what it promises and exit on its own.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

async function example(file: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [file], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return stdout;
}

beforeAll(() => {
  if (!existsSync(resolve(ROOT, "dist/index.js")))
    throw new Error("the examples import the built package: run `npm run build` first");
});

describe("the Node examples", () => {
  it("quick-start.ts retries a 503 from its own local primary and gets the image from it", async () => {
    const out = await example("examples/node/quick-start.ts", { GEN_API_URL: "" }); // empty: its own APIs
    expect(out).toContain("retry #1 in 1000 ms (status 503)");
    expect(out).toMatch(/^\{\n {2}attempts: 2,\n {2}endpoint: 'primary',\n {2}fromFallback: false,/m);
    expect(out).toContain("prompt: 'a lighthouse at dusk'");
  });

  it("generate-with-ky.ts falls back to the backup and validates the answer", async () => {
    const out = await example("examples/node/generate-with-ky.ts");
    expect(out).toContain("fallback: primary → backup");
    expect(out).toContain("fromFallback: true");
    expect(out).toContain("provider: 'backup'");
  });

  it("sdk-fetch/index.ts is served after the two 429s", async () => {
    const out = await example("examples/sdk-fetch/index.ts");
    expect(out).toContain("served after 3 attempt(s)");
  });

  it("storycore-parity/engines.ts runs the three ported integrations", async () => {
    const out = await example("examples/storycore-parity/engines.ts");
    expect(out).toMatch(/video: \{ engine: '(hunyuan|wan|cache)'/);
    expect(out).toContain("image: {");
    expect(out).toContain("'workflow_execution'");
  });
});
