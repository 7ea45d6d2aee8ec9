import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

/**
 * examples/browser/README.md: "A port that is no number from 0 to 65535, a port another process holds, or a missing
 * build is refused in one line, with nothing left running." Each refusal is run as `npm run example:browser` runs
 * the file (the build is there: `npm test` builds first); the missing build is the same one-line path.
 */
const ROOT = resolve(import.meta.dirname, "../..");

function serve(
  env: Record<string, string>,
  root = ROOT,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["examples/browser/serve.ts"], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    // Started after all (a refusal that did not come): stopped, and the test fails on its output.
    const stop = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(stop);
      done({ code, stdout, stderr });
    });
  });
}

const held: Server[] = [];
async function holdPort(): Promise<number> {
  const server = createServer();
  held.push(server);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return (server.address() as { port: number }).port;
}

afterEach(async () => {
  await Promise.all(held.splice(0).map((server) => new Promise((done) => server.close(done))));
});

describe("npm run example:browser refuses a bad setting in one line", () => {
  it("says so in its README", () => {
    const readme = readFileSync(resolve(ROOT, "examples/browser/README.md"), "utf8").replace(/\s+/g, " ");
    expect(readme).toContain(
      "A port that is no number from 0 to 65535, a port another process holds, or a missing build is refused in one line, with nothing left running.",
    );
  });

  it.each([
    ["PAGE_PORT", "abc"],
    ["PRIMARY_PORT", "70000"],
    ["BACKUP_PORT", ""],
    ["PAGE_PORT", "-1"],
  ])("%s=%j: exit 1, one line naming it", async (name, value) => {
    const run = await serve({ [name]: value });
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: `example:browser: ${name}: expected a port from 0 to 65535, got ${JSON.stringify(value)}\n`,
    });
  });

  it("a provider's port another process holds: exit 1, the platform's one line", async () => {
    const port = await holdPort();
    const run = await serve({ PAGE_PORT: "0", PRIMARY_PORT: String(port), BACKUP_PORT: "0" });
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: `example:browser: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`,
    });
  }, 40_000);

  it("the page's port another process holds: exit 1, Vite's one line, the providers it started closed", async () => {
    const port = await holdPort();
    const run = await serve({ PAGE_PORT: String(port), PRIMARY_PORT: "0", BACKUP_PORT: "0" });
    expect(run).toEqual({ code: 1, stdout: "", stderr: `example:browser: Port ${port} is already in use\n` });
  }, 40_000);

  it("a missing build: exit 1, one line saying to build first", async () => {
    // The example's files in a tree of their own with no dist/ (this repository's is built by `npm test`).
    const root = mkdtempSync(join(tmpdir(), "browser-example-"));
    try {
      mkdirSync(join(root, "examples/browser"), { recursive: true });
      for (const file of ["serve.ts", "fake-image-api.ts"])
        copyFileSync(resolve(ROOT, "examples/browser", file), join(root, "examples/browser", file));
      writeFileSync(join(root, "package.json"), '{ "type": "module" }\n');
      symlinkSync(resolve(ROOT, "node_modules"), join(root, "node_modules"));
      const run = await serve({ PAGE_PORT: "0", PRIMARY_PORT: "0", BACKUP_PORT: "0" }, root);
      expect(run).toEqual({
        code: 1,
        stdout: "",
        stderr: `example:browser: the page imports the built package: run \`npm run build\` first (${join(root, "dist/browser/index.js")} is missing)\n`,
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 40_000);
});
