import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = resolve(ROOT, "scripts/check-node.cjs");
const { checkNode } = createRequire(import.meta.url)(SCRIPT) as {
  checkNode: (version: string, execPath?: string) => string | null;
};

describe("scripts/check-node.cjs", () => {
  it.each(["22.18.0", "v22.18.0", "22.23.3", "23.6.0", "23.11.1", "24.1.0", "100.0.0"])(
    "lets Node %s through",
    (version) => {
      expect(checkNode(version)).toBeNull();
    },
  );

  it.each(["20.20.2", "v20.20.2", "22.11.9", "22.17.1", "22.0.0", "23.0.0", "23.5.0", "18.19.1", "21.99.99"])(
    "refuses Node %s in one line",
    (version) => {
      const refusal = checkNode(version, "/usr/bin/node");
      expect(refusal).toContain("needs Node >= 22.18.0");
      expect(refusal).toContain(`this is Node ${version.replace(/^v/, "")} (/usr/bin/node)`);
      expect(refusal).toContain("nvm install 22");
      expect(refusal).not.toContain("\n");
    },
  );

  it("is silent and exits 0 on the Node running the tests", () => {
    expect(execFileSync(process.execPath, [SCRIPT], { encoding: "utf8", stdio: "pipe" })).toBe("");
  });

  const dir = mkdtempSync(join(tmpdir(), "check-node-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 1 with that line on stderr when run by an older Node", () => {
    // The running Node pretends to be 20.20.2 before the script loads.
    const preload = join(dir, "pretend-node-20.cjs");
    writeFileSync(preload, "Object.defineProperty(process.versions, 'node', { value: '20.20.2' });\n");
    const run = spawnSync(process.execPath, ["--require", preload, SCRIPT], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr.trimEnd().split("\n")).toEqual([checkNode("20.20.2", process.execPath)]);
  });
});
