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
    [["--seconds", "0x10"], '--seconds: expected 5..600, got "0x10"'],
    [["--seconds", "1e1"], '--seconds: expected 5..600, got "1e1"'],
    [["--seconds="], '--seconds: expected 5..600, got ""'],
    [["--seed", "0x2a"], '--seed: expected an integer, got "0x2a"'],
    [["--seed", "99999999999999999999"], '--seed: expected an integer, got "99999999999999999999"'],
    [["--bogus"], "Unknown option '--bogus'"],
  ])("%j is refused in one line naming it, with no stack, before anything starts", async (args, message) => {
    const { code, stderr, stdout } = await refused(...args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    // The refusal, then the usage line.
    expect(stderr.trimEnd().split("\n")).toHaveLength(2);
    expect(stderr.split("\n")[0]).toBe(`demo: ${message}`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("a value that starts with a dash, which Node's parser calls ambiguous in three lines, is refused in one", async () => {
    const { code, stderr } = await refused("--seed", "-1");
    expect(code).toBe(2);
    const lines = stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^demo: Option '--seed.*ambiguous.*'--seed=-XYZ'\.$/);
  });
});
