/**
 * Outside-in attack on README.md as a newcomer's first hour (the "Try it" block and the commands table), followed
 * in a fresh clone of main (`git clone /work/main`, `npm ci`, Node 22.23.3, npm 11.19.1), with docs/README.md,
 * docs/architecture.md, docs/cloudflare.md, CHANGELOG.md and examples/{node,browser,sdk-fetch,storycore-parity,
 * worker}/README.md read beside what each command printed.
 *
 * Docs:
 * - README.md "Try it": "(Node ≥ 22.18, or ≥ 23.6 on Node 23, for development: … and MSW 3 and ky 2 need 22.12; on
 *   an older Node these commands stop and say so …)"; "npm ci && npm run demo   # a scripted day of two fake APIs,
 *   one flaky, on 127.0.0.1: plain fetch vs. the library, ~30 s"; "npm run example:browser  # a small
 *   image-generation page against a fake API you can make flaky, slow or down".
 * - README.md commands table: "`npm run example:quick-start`, `example:ky`, `example:sdk-fetch`, `example:parity` |
 *   the Node examples (`examples/node`, `examples/sdk-fetch`, `examples/storycore-parity`): the first three against
 *   local fake APIs, the parity one on in-process engines"; "`npm run docs` | the API reference in `docs/api/`";
 *   "`npm run demo` | … (about 30 s; `npm run -s demo -- --json` for a machine-readable summary)".
 * - README.md "The demo": "`--seconds N` (5 to 600), `--seed N` (an integer; a negative one written `--seed=-3`),
 *   `--json` …; a bad one is refused with one line saying why, then the usage line."
 * - CHANGELOG.md: "`npm ci` refuses a Node older than 22 before installing anything (`engine-strict`)"; the examples'
 *   READMEs: "(it builds first, and refuses a Node older than 22.18 in one line)".
 * - examples/browser/README.md: "It builds the package, starts the fake image API (primary on 127.0.0.1:9201, backup
 *   on :9202) and the page under Vite on http://127.0.0.1:5173/, and prints the URL. Ctrl-C stops it."; "it allows
 *   the `Idempotency-Key` and `content-type` request headers and exposes `Retry-After`".
 *
 * How: package.json, typedoc.json, .gitignore and .npmrc read as text; `node demo/main.ts` and `npm run -s demo`
 * spawned with bad arguments; `npm ci --offline` run by this machine's real Node 20 (/usr/bin/node) in a scratch
 * directory holding only package.json, the lockfile and .npmrc; examples/browser/serve.ts spawned on its default
 * ports in a process group of its own (after `npm run build`), its page and preflight read over 127.0.0.1, then
 * Ctrl-C (SIGINT to the group). No src import: nothing here calls the library in-process.
 *
 * Paths: the commands a newcomer runs (demo, examples, docs, pack), not a call path of the library.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every command run by hand printed or did
 * what its doc says (report: `npm run demo` 31.4 s; `--seconds 5`; `-s -- --json`; the four Node examples; `npm run
 * docs` writing one page per entry under docs/api/; `npm run build && npm pack`, the .tgz installed into a scratch
 * project and every entry `import`ed and `require()`d; `npm run example:browser` and `npm run dev:worker` started,
 * curled, stopped with Ctrl-C, nothing left).
 *
 * Held (plain `it`):
 * - Every `npm run …` the README's "Try it" block and commands table name is a script of package.json; the four Node
 *   examples' scripts build first and run a file in the folder the table names, each behind the Node check; the demo
 *   defaults to the README's ~30 s; `docs` runs TypeDoc into docs/api/ (ignored by git), one entry point per
 *   subpath of the exports map.
 * - The demo refuses `--seconds 2`, `--seed x`, `--json=1`, a positional argument and `--help` with one line saying
 *   why, then the usage line, exit 2, nothing on stdout; through `npm run -s demo` the same two lines.
 * - `npm ci` on Node 20 refuses (EBADENGINE) before installing anything, because of .npmrc's `engine-strict`
 *   (without it npm only warns).
 * - examples/browser/serve.ts on its defaults: prints both providers (9201, 9202) and `open http://127.0.0.1:5173/`,
 *   serves the page, the provider's preflight allows `idempotency-key` and `content-type` and exposes `retry-after`;
 *   Ctrl-C exits 0 and frees the three ports.
 *
 * Docs-silent (not pinned; the first four acted on in the fifty-ninth session: .gitignore lists `*.tgz`;
 * serve.ts refuses a bad or taken port in one line, now in examples/browser/README.md and asserted in
 * test/tooling/browser-example-refusals.test.ts; the demo's first line says "two video APIs"; the README says
 * "MSW 3 needs 22.12"):
 * - `npm pack` writes the .tgz into the repository root, which .gitignore does not list: `git status` shows it
 *   untracked and a `git add -A` commits it.
 * - examples/browser/serve.ts with a port taken (9201, or 5173) or `PAGE_PORT=abc` dies with an uncaught stack
 *   (`EADDRINUSE`, Vite's "Port 5173 is already in use", "No available ports found between NaN and 65535"), where
 *   `npm run dev:worker` was made to refuse the same in one line.
 * - `--seconds 5.5` is accepted (a 5.5 s day); `--help` is "Unknown option"; the demo's usage line offers `npm run
 *   demo -- … [--json]`, whose output npm's banner precedes (the README says to add `-s`); its first line says "a
 *   video API" where the README says "two fake video-generation APIs".
 * - README "MSW 3 and ky 2 need 22.12": msw 3.0.5's `engines` says `>=22.12.0`, ky 2.1.0's (and 2.2.0's) `>=22`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const readme = read("README.md");
const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string>; exports: Record<string, unknown> };

/** npm's own CLI file, run by a Node of our choosing (the one on PATH may be a shim). */
const npmCli = (() => {
  for (const candidate of [process.env.npm_execpath, "/usr/bin/npm", "/usr/local/bin/npm"]) {
    if (candidate && existsSync(candidate)) return realpathSync(candidate);
  }
  return undefined;
})();
const oldNode = "/usr/bin/node";
const oldNodeMajor = existsSync(oldNode)
  ? Number(spawnSync(oldNode, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).stdout.trim())
  : Number.NaN;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Ran {
  const r = spawnSync(command, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Whether 127.0.0.1:`port` can be listened on now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once("error", () => done(false));
    s.listen(port, "127.0.0.1", () => s.close(() => done(true)));
  });
}

describe("the README's commands, as package.json runs them", () => {
  it("every `npm run …` of the Try-it block and the commands table is a script", () => {
    const tryIt = /\*\*Try it\*\*[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const table = readme.slice(readme.indexOf("| command "), readme.indexOf("## Status"));
    expect(tryIt).toContain("npm run demo");
    const named = new Set<string>();
    for (const m of `${tryIt}\n${table}`.matchAll(/npm run (?:-s )?([a-z:-]+)/g)) named.add(m[1] as string);
    // The table's shorthand cell: `example:ky`, `example:sdk-fetch`, `example:parity`.
    for (const m of table.matchAll(/`(example:[a-z-]+)`/g)) named.add(m[1] as string);
    expect([...named].sort()).toEqual(
      [
        "bench",
        "demo",
        "dev:worker",
        "docs",
        "example:browser",
        "example:ky",
        "example:parity",
        "example:quick-start",
        "example:sdk-fetch",
        "soak",
        "test:mutation",
      ].sort(),
    );
    expect([...named].filter((n) => !(n in pkg.scripts))).toEqual([]);
  });

  it("the Node examples build first, run a file in the folder the table names, and check the Node before", () => {
    const folders: Record<string, string> = {
      "example:quick-start": "examples/node/",
      "example:ky": "examples/node/",
      "example:sdk-fetch": "examples/sdk-fetch/",
      "example:parity": "examples/storycore-parity/",
      "example:browser": "examples/browser/",
      "dev:worker": "examples/worker/",
    };
    for (const [script, folder] of Object.entries(folders)) {
      const cmd = pkg.scripts[script] ?? "";
      const file = new RegExp(`^npm run build && node (${folder}[a-z-]+\\.ts)$`).exec(cmd)?.[1];
      expect(file, `${script}: ${cmd}`).toBeDefined();
      expect(existsSync(join(ROOT, file as string))).toBe(true);
      expect(pkg.scripts[`pre${script}`]).toBe("node scripts/check-node.cjs");
    }
    expect(pkg.scripts.predemo).toBe("node scripts/check-node.cjs");
    expect(pkg.scripts.demo).toBe("node demo/main.ts");
    // "~30 s": the day's default length.
    expect(readme).toContain("plain fetch vs. the library, ~30 s");
    expect(read("demo/main.ts")).toMatch(/seconds: \{ type: "string", default: "30" \}/);
  });

  it("`npm run docs` writes the API reference to docs/api/ (ignored by git), one entry point per exported subpath", () => {
    expect(pkg.scripts.docs).toBe("typedoc");
    const typedoc = JSON.parse(read("typedoc.json")) as { out: string; entryPoints: string[] };
    expect(typedoc.out.replace(/^\.\//, "").replace(/\/?$/, "/")).toBe("docs/api/");
    expect(read(".gitignore").split("\n")).toContain("docs/api/");
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== "./package.json");
    const sources = subpaths.map((k) =>
      k === "." ? "src/index.ts" : `src/${k.slice(2)}${k.includes("/clock") ? ".ts" : "/index.ts"}`,
    );
    expect([...typedoc.entryPoints].sort()).toEqual(sources.sort());
  });
});

describe("the demo's command line (README: a bad option is refused with one line saying why, then the usage line)", () => {
  const usage = "(usage: npm run demo -- [--seconds 5..600] [--seed N] [--json])";
  it.each([
    [["--seconds", "2"], '--seconds: expected 5..600, got "2"'],
    [["--seed", "x"], '--seed: expected an integer, got "x"'],
    [["--json=1"], "Option '--json' does not take an argument"],
    [["extra"], "Unexpected argument 'extra'. This command does not take positional arguments"],
    [["--help"], "Unknown option '--help'"],
  ])("node demo/main.ts %j", (args, why) => {
    const r = run(process.execPath, ["demo/main.ts", ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toEqual([`demo: ${why}`, usage]);
  });

  it.skipIf(npmCli === undefined)("through `npm run -s demo -- --seed x`: the same two lines, exit 2", () => {
    const r = run(process.execPath, [npmCli as string, "run", "-s", "demo", "--", "--seed", "x"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toEqual(['demo: --seed: expected an integer, got "x"', usage]);
  });
});

describe("`npm ci` on an old Node (CHANGELOG: refused before installing anything, `engine-strict`)", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const scratch = (withNpmrc: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), "fh59-ci-"));
    dirs.push(dir);
    for (const f of ["package.json", "package-lock.json", ...(withNpmrc ? [".npmrc"] : [])]) {
      copyFileSync(join(ROOT, f), join(dir, f));
    }
    const env = { PATH: "/usr/bin:/bin", HOME: dir, npm_config_cache: join(dir, "cache") };
    const args = [npmCli as string, "ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"];
    return { dir, r: run(oldNode, args, { cwd: dir, env }) };
  };

  it.skipIf(npmCli === undefined || !(oldNodeMajor < 22))(
    "Node 20: EBADENGINE, nothing installed; without .npmrc npm would only warn",
    () => {
      expect(read(".npmrc").split("\n")).toContain("engine-strict=true");
      const { dir, r } = scratch(true);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/npm error code EBADENGINE/);
      expect(r.stderr).toContain('Required: {"node":">=22"}');
      expect(existsSync(join(dir, "node_modules"))).toBe(false);
      // The control: the refusal is .npmrc's doing.
      const control = scratch(false);
      expect(control.r.stderr).not.toMatch(/npm error code EBADENGINE/);
      expect(control.r.stderr).toMatch(/npm warn EBADENGINE/);
    },
    60_000,
  );
});

describe("`npm run example:browser` on its default ports (examples/browser/README.md)", () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      await new Promise((r) => child?.once("exit", r));
    }
    child = undefined;
  });

  it.skipIf(!existsSync(join(ROOT, "dist/browser/index.js")))(
    "prints the providers and the page's URL, serves the page and a CORS-correct API; Ctrl-C stops all three",
    async (ctx) => {
      const ports = [5173, 9201, 9202];
      for (const p of ports) if (!(await portFree(p))) ctx.skip();
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
      for (const k of ["PAGE_PORT", "PRIMARY_PORT", "BACKUP_PORT"]) delete env[k];
      const c = spawn(process.execPath, ["examples/browser/serve.ts"], { cwd: ROOT, env, detached: true });
      child = c;
      let out = "";
      let err = "";
      c.stdout?.on("data", (d) => {
        out += String(d);
      });
      c.stderr?.on("data", (d) => {
        err += String(d);
      });
      const exited = new Promise<number | null>((r) => c.once("exit", (code) => r(code)));
      const ready = await Promise.race([
        new Promise<boolean>((r) => {
          const check = () => (out.includes("Ctrl-C stops it.") ? r(true) : setTimeout(check, 50));
          check();
        }),
        exited.then(() => false),
      ]);
      expect(ready, err).toBe(true);
      expect(out.split("\n").slice(0, 3)).toEqual([
        "fake image API: primary http://127.0.0.1:9201, backup http://127.0.0.1:9202 (CORS allowed from any origin)",
        "open http://127.0.0.1:5173/",
        "Ctrl-C stops it.",
      ]);
      const page = await fetch("http://127.0.0.1:5173/");
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<title>Image studio");
      const pre = await fetch("http://127.0.0.1:9201/v1/images", {
        method: "OPTIONS",
        headers: {
          origin: "http://127.0.0.1:5173",
          "access-control-request-method": "POST",
          "access-control-request-headers": "idempotency-key, content-type",
        },
      });
      await pre.arrayBuffer();
      const allowed = (pre.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(["idempotency-key", "content-type"]));
      expect(pre.headers.get("access-control-expose-headers")).toMatch(/retry-after/i);
      // Ctrl-C: SIGINT to the foreground group.
      process.kill(-(c.pid as number), "SIGINT");
      expect(await exited).toBe(0);
      for (const p of ports) expect(await portFree(p)).toBe(true);
    },
    60_000,
  );
});
