import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const main = resolve(import.meta.dirname, "../../demo/main.ts");

/** `node demo/main.ts …args`, which must fail: its exit code and what it wrote. */
async function refused(...args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    await run(process.execPath, [main, ...args], { timeout: 20_000 });
  } catch (error) {
    const { code, stderr, stdout } = error as { code: number; stderr: string; stdout: string };
    return { code, stderr, stdout };
  }
  throw new Error(`the demo accepted ${args.join(" ")}`);
}

describe("the demo's command line (README: `--seconds N` (5 to 600), `--seed N`, `--json`)", () => {
  it.each([
    [["--seconds", "3"], '--seconds: expected 5..600, got "3"'],
    [["--seconds", "lots"], '--seconds: expected 5..600, got "lots"'],
    [["--seed", "1.5"], '--seed: expected an integer, got "1.5"'],
    [["--bogus"], "Unknown option '--bogus'"],
  ])("%j is refused in one line naming it, with no stack, before anything starts", async (args, message) => {
    const { code, stderr, stdout } = await refused(...args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n")[0]).toBe(`demo: ${message}`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
