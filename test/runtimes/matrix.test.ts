import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
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
    console.log(`runtime matrix: Chromium ${version}`);
    expectSupported("Chromium", version);
  }, 120_000);

  it("the README's support table covers the runtimes installed (majors, never patches)", () => {
    const happyDom = JSON.parse(readFileSync(resolve(ROOT, "node_modules/happy-dom/package.json"), "utf8")).version;
    const workerd = /workerd (\S+)/.exec(execFileSync(resolve(BIN, "workerd"), ["--version"]).toString())?.[1] ?? "?";
    const seen = { Node: runtimes.node(), Deno: runtimes.deno(), Bun: runtimes.bun(), "happy-dom": happyDom };
    // The exact versions go to the log, so a run records what it checked.
    console.log(
      `runtime matrix: ${Object.entries({ ...seen, workerd })
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
    for (const [runtime, version] of Object.entries(seen)) expectSupported(runtime, version);
    // workerd is versioned by build date; what matters is that it knows the
    // compatibility date the test Worker asks for.
    const compat = /compatibility_date\s*=\s*"([^"]+)"/.exec(
      readFileSync(resolve(ROOT, "test/workers/wrangler.toml"), "utf8"),
    )?.[1];
    for (const cell of supportedCells("workerd")) expect(cell).toMatch(new RegExp(`^≥ ${compat} `));
    expect(workerd >= (compat ?? "~"), `workerd ${workerd} predates compatibility date ${compat}`).toBe(true);
  }, 30_000);
});

/**
 * The support tables' "supported" cells for a runtime: a major (`22`), or a
 * floor for evergreen runtimes (`≥ 156`), then optionally "(last checked …)".
 * Only the major is compared, so a new patch or minor release (Debian's
 * Chromium, npm's node@22) never turns CI red; a new major must be added to
 * the table on purpose.
 */
function supportedCells(runtime: string): string[] {
  const cells: string[] = [];
  let inSupportTable = false;
  for (const line of readme().split("\n")) {
    if (!line.startsWith("|")) {
      inSupportTable = false;
      continue;
    }
    const row = line.split("|").map((c) => c.trim());
    if (row[1] === "runtime")
      inSupportTable = true; // the header of a support table
    else if (inSupportTable && row[1] === runtime) cells.push(row[2] ?? "");
  }
  if (cells.length === 0) throw new Error(`no support table row for ${runtime} in README.md or docs/`);
  return cells;
}

/** Every support table (README.md, docs/) must cover the version seen. */
function expectSupported(runtime: string, version: string): void {
  const major = Number(version.split(".")[0]);
  for (const cell of supportedCells(runtime)) {
    const floor = /^≥ (\d+)\b/.exec(cell);
    const exact = /^(\d+)\b/.exec(cell);
    const ok = floor ? major >= Number(floor[1]) : exact ? major === Number(exact[1]) : false;
    expect(ok, `${runtime} ${version} is not covered by the support table's "${cell}"`).toBe(true);
  }
}

/** The README and the docs/ pages (the support table may live in either). */
function readme(): string {
  const docs = readdirSync(resolve(ROOT, "docs")).filter((f) => f.endsWith(".md"));
  return ["README.md", ...docs.map((f) => `docs/${f}`)].map((f) => readFileSync(resolve(ROOT, f), "utf8")).join("\n");
}
