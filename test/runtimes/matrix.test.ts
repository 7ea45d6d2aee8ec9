import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runInChromium } from "./chromium.ts";
import type { ConformanceResult } from "./conformance.js";
import { expectConformance } from "./expect-conformance.ts";
import { startConformanceServers } from "./serve.ts";

/**
 * The conformance suite against the BUILT package in Node, Deno and Bun
 * (each its own process, which must exit on its own) and in real Chromium.
 * A runtime that cannot be started fails this test: nothing is skipped.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
type Result = ConformanceResult;

let servers: Awaited<ReturnType<typeof startConformanceServers>>;
beforeAll(async () => {
  servers = await startConformanceServers();
});
afterAll(() => servers.close());

function runProcess(
  command: string,
  args: string[],
): Promise<{ results: Result[]; exitLagMs: number; code: number | null }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let reportedAt = 0;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (reportedAt === 0 && out.includes("\n")) reportedAt = Date.now();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const kill = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} did not exit on its own; stdout ${out} stderr ${err}`));
    }, 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(kill);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolvePromise({
          results: (JSON.parse(line) as { results: Result[] }).results,
          exitLagMs: Date.now() - reportedAt,
          code,
        });
      } catch {
        reject(new Error(`${command} printed no report (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

const runtimes = {
  node: () => process.version.slice(1),
  deno: () => /deno (\S+)/.exec(execFileSync(resolve(BIN, "deno"), ["--version"]).toString())?.[1] ?? "?",
  bun: () => execFileSync(resolve(BIN, "bun"), ["--version"]).toString().trim(),
};

describe("runtime conformance (built package)", () => {
  it("Node", async () => {
    const run = await runProcess(process.execPath, ["test/runtimes/run.ts", "node", servers.api, servers.alt]);
    expectConformance(run.results);
    expect(run.code).toBe(0);
    expect(run.exitLagMs).toBeLessThan(2_000);
  }, 90_000);

  it("Deno", async () => {
    const run = await runProcess(resolve(BIN, "deno"), [
      "run",
      "-A",
      "--no-lock",
      "--import-map=test/runtimes/deno-import-map.json",
      "test/runtimes/run.ts",
      "deno",
      servers.api,
      servers.alt,
    ]);
    expectConformance(run.results);
    expect(run.code).toBe(0);
    expect(run.exitLagMs).toBeLessThan(2_000);
  }, 90_000);

  it("Bun", async () => {
    const run = await runProcess(resolve(BIN, "bun"), ["test/runtimes/run.ts", "bun", servers.api, servers.alt]);
    expectConformance(run.results);
    expect(run.code).toBe(0);
    expect(run.exitLagMs).toBeLessThan(2_000);
  }, 90_000);

  it("Chromium", async () => {
    const { version, results } = await runInChromium(servers.api, servers.alt);
    expectConformance(results, ["no timer left behind"], "platform");
    expect(readme()).toMatch(row("Chromium", version));
  }, 120_000);

  it("the README's support table names the versions tested", () => {
    const text = readme();
    expect(text).toMatch(row("Node", runtimes.node()));
    expect(text).toMatch(row("Deno", runtimes.deno()));
    expect(text).toMatch(row("Bun", runtimes.bun()));
    const happyDom = JSON.parse(readFileSync(resolve(ROOT, "node_modules/happy-dom/package.json"), "utf8")).version;
    expect(text).toMatch(row("happy-dom", happyDom));
    const workerd = /workerd (\S+)/.exec(execFileSync(resolve(BIN, "workerd"), ["--version"]).toString())?.[1] ?? "?";
    expect(text).toMatch(row("workerd", workerd));
  }, 30_000);
});

/** A support-table row, whatever padding the formatter gave its cells. */
function row(runtime: string, version: string): RegExp {
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`\\|\\s*${literal(runtime)}\\s*\\|\\s*${literal(version)}\\s*\\|`);
}

function readme(): string {
  return readFileSync(resolve(ROOT, "README.md"), "utf8");
}
