/**
 * A newcomer's first hour, checked from outside: the README, docs/README.md
 * and the guides followed literally, against the PACKED package installed
 * into a fresh project in a temporary directory (its own package.json,
 * "type": "module"), as a user installs it.
 *
 * 1. `npm install <tarball> zod` alone: what an entry that needs an optional
 *    peer (ky, msw) says when the peer is missing; what `require()` says.
 * 2. Then the tools the README's steps ask for (typescript@6, vitest, msw,
 *    esbuild, ky): every pasted code block compiled strict (node16 and
 *    bundler resolution) and run as written (MSW or a node:http server on
 *    127.0.0.1); the browser and Worker bundles and the README's size table;
 *    the errors of bad options and of a missing `fetch`; the exports map.
 *
 * The six defects it found are fixed; each test says what was wrong in the
 * comment above it. Uses `dist/`, so
 * `npm run build` comes first. Skips itself when the npm registry is
 * unreachable. Nothing sleeps for real longer than a second.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const PKG = "@storycore/resilient-fetch";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws: the exit code is in the result. */
function sh(cmd: string, args: string[], cwd: string, timeout = 60_000, maxBuffer = 16 * 1024 * 1024): Promise<Ran> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd, timeout, maxBuffer, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", CI: "1" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const online = await sh("npm", ["ping"], root, 20_000).then((r) => r.code === 0);
if (!online) {
  console.warn(
    "test/tooling/newcomer.test.ts: SKIPPED, `npm ping` failed: the npm registry is unreachable, and these checks install the packed package, zod, typescript, vitest, msw, esbuild and ky from it",
  );
}

/** A ```ts block of a Markdown file, with the line its code starts on (indented blocks included). */
interface Block {
  line: number;
  code: string;
}
function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const out: Block[] = [];
  let open: { indent: string; line: number; code: string[] } | undefined;
  for (const [i, text] of lines.entries()) {
    const fence = /^(\s*)```(\w*)\s*$/.exec(text);
    if (open === undefined) {
      if (fence?.[2] === "ts") open = { indent: fence[1] ?? "", line: i + 2, code: [] };
    } else if (fence !== null) {
      out.push({ line: open.line, code: `${open.code.join("\n")}\n` });
      open = undefined;
    } else {
      open.code.push(text.startsWith(open.indent) ? text.slice(open.indent.length) : text);
    }
  }
  return out;
}
/** The one ts block of `file` containing every marker (fails loudly when the docs move). */
function block(markdown: string, file: string, ...markers: string[]): Block {
  const found = tsBlocks(markdown).filter((b) => markers.every((m) => b.code.includes(m)));
  if (found.length !== 1)
    throw new Error(`${file}: expected one ts block with ${markers.join(", ")}, found ${found.length}`);
  return found[0] as Block;
}

describe.skipIf(!online)("a newcomer with the packed package", () => {
  let dir: string;
  let tarball: string;
  const inPkg = (path: string) => join(dir, "node_modules", PKG, path);
  /** Writes `files` into the project and runs `node` on the first. */
  async function node(files: Record<string, string>, ...args: string[]): Promise<Ran> {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    return sh(process.execPath, [Object.keys(files)[0] as string, ...args], dir, 30_000);
  }
  const json = <T>(r: Ran): T => {
    const last = r.stdout.trim().split("\n").at(-1);
    if (last === undefined || r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(last) as T;
  };

  beforeAll(async () => {
    if (!existsSync(join(root, "dist/index.js"))) {
      throw new Error("test/tooling/newcomer.test.ts needs the built package: run `npm run build` first");
    }
    dir = await mkdtemp(join(tmpdir(), "resilient-fetch-newcomer-"));
    const packed = await sh("npm", ["pack", "--silent", "--pack-destination", dir], root, 120_000);
    if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
    const name = (await readdir(dir)).find((f) => f.endsWith(".tgz"));
    if (name === undefined) throw new Error(`npm pack wrote no tarball into ${dir}`);
    tarball = name;
    await mkdir(join(dir, "src"));
    await writeFile(
      join(dir, "package.json"),
      `${JSON.stringify({ name: "newcomer-app", private: true, type: "module" })}\n`,
    );
    // The README's own words: "install the `.tgz` it writes" (zod too, as a user validating bodies does).
    const installed = await sh(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", `./${tarball}`, "zod"],
      dir,
      180_000,
    );
    if (installed.code !== 0) throw new Error(`npm install of the tarball failed:\n${installed.stderr}`);
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("the package alone (no ky, no msw installed)", () => {
    it("the tarball holds every file the exports map names, the README, LICENSE and CHANGELOG, and no sources or tests", async () => {
      const dry = await sh("npm", ["pack", "--dry-run", "--json"], root, 60_000);
      const files = new Set(
        (JSON.parse(dry.stdout) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [],
      );
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
        exports: Record<string, string | Record<string, string>>;
      };
      const targets = Object.values(pkg.exports).flatMap((t) => (typeof t === "string" ? [t] : Object.values(t)));
      const missing = targets.map((t) => t.replace(/^\.\//, "")).filter((t) => !files.has(t));
      expect(missing).toEqual([]);
      for (const f of ["README.md", "LICENSE", "CHANGELOG.md", "package.json"]) expect(files.has(f), f).toBe(true);
      expect([...files].filter((f) => /^(src|test|docs|examples)\//.test(f))).toEqual([]);
      // What the installed copy holds is that list.
      expect(existsSync(inPkg("dist/browser/index.js"))).toBe(true);
    }, 60_000);

    it("importing …/ky without ky, and …/testing without msw, fails naming the missing package", async () => {
      const r = await node({
        "peers.mjs": `
const out = {};
for (const s of ["ky", "testing"]) {
  try { await import("${PKG}/" + s); out[s] = "loaded"; } catch (e) { out[s] = e.code + ": " + e.message; }
}
console.log(JSON.stringify(out));
`,
      });
      const out = json<Record<string, string>>(r);
      expect(out.ky).toMatch(/^ERR_MODULE_NOT_FOUND: Cannot find package 'ky' imported from/);
      expect(out.testing).toMatch(/^ERR_MODULE_NOT_FOUND: Cannot find package 'msw' imported from/);
    });

    it("…/testing/clock (TestClock, seededRandom) works without msw", async () => {
      const r = await node({
        "clock.mjs": `
import { TestClock, seededRandom } from "${PKG}/testing/clock";
import { createResilience } from "${PKG}";
const clock = new TestClock();
let fired = 0;
clock.setTimer(() => fired++, 10);
await clock.advance(10);
createResilience({ clock, random: seededRandom(1) });
console.log(JSON.stringify({ fired, now: clock.now() }));
`,
      });
      expect(json<{ fired: number }>(r).fired).toBe(1);
    });

    // Was a defect, fixed: it said 'No "exports" main defined'; a "default" condition lets Node >= 22.12 require it.
    it("require() of the package works on this Node (ES modules loaded by require), as the README says", async () => {
      const r = await sh(
        process.execPath,
        [
          "--input-type=commonjs",
          "-e",
          `try { require("${PKG}"); console.log("loaded"); } catch (e) { console.log(e.message); }`,
        ],
        dir,
      );
      const said = r.stdout.trim();
      // Either require(esm) works (Node >= 22.12, with a "default" condition), or the error says to import.
      expect(said === "loaded" || /ESM|import\(|ES module/i.test(said), said).toBe(true);
    });
  });

  describe("with the tools the README's steps ask for", () => {
    const readme = () => readFileSync(inPkg("README.md"), "utf8");
    const doc = (name: string) => readFileSync(join(root, "docs", name), "utf8");

    beforeAll(async () => {
      const installed = await sh(
        "npm",
        [
          "install",
          "--prefer-offline",
          "--no-audit",
          "--no-fund",
          "-D",
          "typescript@6",
          "vitest@5.1.2",
          "msw@3.0.5",
          "esbuild@0.28.2",
          "ky@2.1.0",
          "happy-dom@21.0.4",
        ],
        dir,
        180_000,
      );
      if (installed.code !== 0) throw new Error(`npm install of the tools failed:\n${installed.stderr}`);
      const r = readme();
      const files: Record<string, string> = {
        // The README's three quick starts, verbatim from the installed copy.
        "src/page.ts": block(r, "README.md", "generateImage(prompt: string)", "fallback([").code,
        "src/worker.ts": block(r, "README.md", "resilientProxy<Env>").code,
        "src/readme.test.ts": block(r, "README.md", "setupServer(corsPreflight())", "stops calling a dead API").code,
        // docs/testing.md's component test.
        "src/testing-guide.test.ts": block(doc("testing.md"), "docs/testing.md", "setupServer(corsPreflight())").code,
        // The CHANGELOG's migration note from 0.1 (shipped in the tarball).
        "src/migrate.ts": block(readFileSync(inPkg("CHANGELOG.md"), "utf8"), "CHANGELOG.md", "the 0.1 chains").code,
      };
      // The README's suite in happy-dom too, the environment of a front-end app: its fetch preflights.
      files["src/readme.happy-dom.test.ts"] = `// @vitest-environment happy-dom\n${files["src/readme.test.ts"]}`;
      // docs/browsers-and-cors.md's block takes `server` for granted (a hidden prelude declares it):
      // the user has one from their MSW setup, as here; then the two claims of its last comment.
      const cors = block(doc("browsers-and-cors.md"), "docs/browsers-and-cors.md", "corsPreflight({").code;
      const corsHead = `import { setupServer } from "msw/node";
import { afterAll, expect, it } from "vitest";
import { createResilience, isRetryExhaustedError } from "${PKG}";
import { TestClock } from "${PKG}/testing";
const server = setupServer();
server.listen();
afterAll(() => server.close());
`;
      const call = `clock.run(resilience.fetch("https://api.example/v1/images", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }))`;
      files["src/cors-keyed.test.ts"] = `${corsHead}${cors}
it("with retry.idempotencyKey: true the call rejects: RetryExhaustedError, a network error as cause", async () => {
  const clock = new TestClock();
  const resilience = createResilience({ clock, random: () => 0.5, retry: { idempotencyKey: true } });
  const error: unknown = await ${call}.then(() => undefined, (e: unknown) => e);
  expect(isRetryExhaustedError(error)).toBe(true);
  expect((error as Error).cause).toBeInstanceOf(TypeError);
  expect(images.count()).toBe(3);
});
`;
      files["src/cors-unkeyed.test.ts"] = `${corsHead}${cors}
it("without it, the 503's Retry-After (2 s) is not seen: the computed backoff is waited instead", async () => {
  const clock = new TestClock();
  const resilience = createResilience({ clock, random: () => 0.5 });
  const res = await ${call};
  expect(res.status).toBe(200);
  expect(clock.now()).toBeLessThan(2000);
});
`;
      for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
      const strict = { strict: true, noEmit: true, target: "es2022", lib: ["es2023", "dom"], types: [] };
      await writeFile(
        join(dir, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { ...strict, module: "nodenext" }, include: ["src"] }),
      );
      await writeFile(
        join(dir, "tsconfig.bundler.json"),
        JSON.stringify({
          extends: "./tsconfig.json",
          compilerOptions: { module: "esnext", moduleResolution: "bundler" },
        }),
      );
    }, 240_000);

    it.each([
      ["node16 (nodenext)", "tsconfig.json"],
      ["bundler", "tsconfig.bundler.json"],
    ])(
      "every pasted block compiles with TypeScript 6, strict, moduleResolution %s",
      async (_, config) => {
        const r = await sh(join(dir, "node_modules/.bin/tsc"), ["-p", config], dir, 90_000);
        expect(r.stdout + r.stderr).toBe("");
        expect(r.code).toBe(0);
      },
      100_000,
    );

    it("the README's test suite (in Node and happy-dom), docs/testing.md's test and docs/browsers-and-cors.md's claims pass in the user's vitest", async () => {
      const r = await sh(join(dir, "node_modules/.bin/vitest"), ["run"], dir, 120_000);
      const out = r.stdout + r.stderr;
      expect(out).not.toMatch(/unhandled error/i);
      expect(out).toMatch(/Test Files\s+5 passed/);
      expect(out).toMatch(/Tests\s+7 passed/);
      expect(r.code, out).toBe(0);
    }, 130_000);

    it("the CHANGELOG's migration note runs, and 0.1-style options are refused saying which entry to import", async () => {
      const r = await node({
        "migrate-run.mjs": `
import { createResilience } from "${PKG}";
await import("./src/migrate.ts");
const plain = createResilience();
const said = {};
for (const [k, o] of Object.entries({ fallback: { fallback: [{ name: "c", endpoints: [] }] }, degradation: { degradation: {} } })) {
  try { createResilience(o); } catch (e) { said[k] = e.name + ": " + e.message; }
}
console.log(JSON.stringify({ fallback: plain.fallback === undefined, degradation: plain.degradation === undefined, said }));
`,
      });
      const out = json<{ fallback: boolean; degradation: boolean; said: Record<string, string> }>(r);
      expect(out.fallback && out.degradation).toBe(true);
      expect(out.said.fallback).toMatch(
        /^ConfigError: fallback: expected fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/,
      );
      expect(out.said.degradation).toMatch(
        /^ConfigError: degradation: expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
      );
    });

    /** Runs the README's page quick start, verbatim, against MSW in `mode`. */
    async function page(mode: "ok" | "ok-after-503" | "dropped") {
      const r = await node(
        {
          "page-run.mjs": `
import { setupServer } from "msw/node";
import { http, HttpResponse } from "msw";
const mode = process.argv[2];
const n = { primary: 0, backup: 0 };
const server = setupServer(
  http.post("https://gen.example/v1/images", () => {
    n.primary++;
    if (mode === "dropped") return HttpResponse.error();
    if (mode === "ok-after-503" && n.primary === 1) return new HttpResponse("busy", { status: 503 });
    return HttpResponse.json({ url: "primary" });
  }),
  http.post("https://backup.example/v1/images", () => { n.backup++; return HttpResponse.json({ url: "backup" }); }),
);
server.listen({ onUnhandledRequest: "error" });
const logged = [];
console.log = (x) => logged.push(x);
const { generateImage } = await import("./src/page.ts");
const out = { n, logged };
try { out.result = await generateImage("a cat"); } catch (e) { out.error = e.message; out.causeIsResilienceError = (await import("${PKG}")).isResilienceError(e.cause); }
server.close();
process.stdout.write(JSON.stringify(out) + "\\n");
`,
        },
        mode,
      );
      return json<{
        n: { primary: number; backup: number };
        logged: Record<string, unknown>[];
        result?: unknown;
        error?: string;
        causeIsResilienceError?: boolean;
      }>(r);
    }

    it("the page quick start runs as written: the result, and the info its comment names", async () => {
      const ok = await page("ok");
      expect(ok.result).toEqual({ url: "primary" });
      expect(Object.keys(ok.logged[0] ?? {})).toEqual(
        expect.arrayContaining(["attempts", "endpoint", "fromFallback", "degradationLevel"]),
      );
      const retried = await page("ok-after-503"); // one backoff of at most 500 ms, real
      expect(retried.result).toEqual({ url: "primary" });
      expect(retried.logged[0]).toMatchObject({ attempts: 2, endpoint: "primary", fromFallback: false });
    }, 20_000);

    it("the page quick start's catch wraps a call with no response: `generation unavailable: …`, a ResilienceError as cause", async () => {
      const out = await page("dropped");
      expect(out.error).toMatch(/^generation unavailable: /);
      expect(out.causeIsResilienceError).toBe(true);
    });

    // Was a defect, fixed: the error said 'every endpoint of fallback chain "images" failed'.
    it("a dropped connection on the primary (POST, no key) stops the chain, and the error says where and why", async () => {
      const out = await page("dropped");
      expect(out.n).toEqual({ primary: 1, backup: 0 });
      // Either the backup is tried, or the message does not claim every endpoint failed.
      expect(out.n.backup > 0 || !/every endpoint/.test(out.error ?? ""), out.error).toBe(true);
    });

    /** Runs the README's Worker quick start, verbatim, in Node against MSW: its fetch handler, a KV stand-in. */
    async function worker() {
      const r = await node({
        "worker-run.mjs": `
import { setupServer } from "msw/node";
import { http, HttpResponse } from "msw";
const seen = [];
const server = setupServer(
  http.all("https://premium.example/*", () => { seen.push("premium"); return new HttpResponse("busy", { status: 503 }); }),
  http.all("https://standard.example/*", ({ request }) => { seen.push("standard " + request.headers.get("authorization")); return HttpResponse.json({ from: "standard" }); }),
  http.all("https://text.example/*", ({ request }) => { seen.push("text " + new URL(request.url).pathname); return HttpResponse.json({ from: "text" }); }),
);
server.listen({ onUnhandledRequest: "error" });
const proxy = (await import("./src/worker.ts")).default;
const kv = new Map();
const env = {
  STANDARD_KEY: "sk-live-123",
  BREAKERS: {
    async getWithMetadata(k) { const v = kv.get(k); return { value: v?.value ?? null, metadata: v?.metadata ?? null }; },
    async put(k, value, o) { kv.set(k, { value, metadata: o?.metadata }); },
  },
};
const waits = [];
const ctx = { waitUntil: (p) => waits.push(p), passThroughOnException() {} };
const out = { seen };
for (const [name, method, path, body] of [
  ["video", "POST", "/v1/video/jobs", '{"prompt":"waves"}'],
  ["text", "GET", "/v1/text/hello"],
  ["health", "GET", "/__resilience/health"],
]) {
  const res = await proxy.fetch(new Request("https://worker.example" + path, { method, body }), env, ctx);
  out[name] = { status: res.status, endpoint: res.headers.get("x-resilience-endpoint"), body: await res.text() };
}
await Promise.allSettled(waits);
server.close();
process.stdout.write(JSON.stringify(out) + "\\n");
`,
      });
      type Answer = { status: number; endpoint: string | null; body: string };
      return json<{ seen: string[]; video: Answer; text: Answer; health: Answer }>(r);
    }

    it("the Worker quick start's handler answers its plain route and its health endpoint", async () => {
      const out = await worker();
      expect(out.text).toMatchObject({ status: 200, endpoint: "text.example" });
      expect(out.seen).toContain("text /v1/hello");
      expect(out.health.status).toBe(200);
      expect(JSON.parse(out.health.body)).toHaveProperty("breakers");
    }, 20_000);

    // Was a defect, fixed: its header was 'Bearer …' (U+2026, no valid header value), and Env.STANDARD_KEY could not be used.
    it("the Worker quick start's chain reaches its standard endpoint with the key from its binding", async () => {
      const out = await worker();
      expect(out.video).toMatchObject({ status: 200, endpoint: "standard" });
    }, 20_000);

    // Was a defect, fixed: fallback() accepted it, and the endpoint failed silently at call time.
    it("fallback() refuses an endpoint header value no fetch can send (non-Latin-1) with a ConfigError", async () => {
      const r = await node({
        "header.mjs": `
import { fallback } from "${PKG}/fallback";
try {
  fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.example/" }, { name: "b", url: "https://b.example/", headers: { authorization: "Bearer …" } }] }]);
  console.log(JSON.stringify("accepted"));
} catch (e) { console.log(JSON.stringify(e.name + ": " + e.message)); }
`,
      });
      expect(json<string>(r)).toMatch(/^ConfigError: .*headers/);
    });

    it("bad options are a ConfigError naming the path: a typo, a nested typo, a wrong type, a bad number", async () => {
      const r = await node({
        "options.mjs": `
import { createResilience } from "${PKG}";
const said = [];
for (const o of [{ retyr: {} }, { retry: { maxAttempt: 2 } }, { retry: { maxAttempts: "3" } }, { retry: { maxAttempts: 0 } }, { timeout: 5000 }]) {
  try { createResilience(o); said.push("accepted"); } catch (e) { said.push(e.name + ": " + e.message); }
}
console.log(JSON.stringify(said));
`,
      });
      expect(json<string[]>(r)).toEqual([
        'ConfigError: options: unknown option "retyr"',
        'ConfigError: retry: unknown option "maxAttempt"',
        'ConfigError: retry.maxAttempts: expected number, received "3"',
        "ConfigError: retry.maxAttempts: expected a value >= 1, received 0",
        "ConfigError: timeout: expected object, received 5000",
      ]);
    });

    /** A call with no global fetch and no `fetch` option (zero backoff, so no real wait). */
    const noFetch = () =>
      node({
        "nofetch.mjs": `
import { createResilience } from "${PKG}";
delete globalThis.fetch;
const resilience = createResilience({ random: () => 0 });
try { await resilience.fetch("https://gen.example/v1/images"); console.log(JSON.stringify({ resolved: true })); }
catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message, breaker: resilience.health().breakers["gen.example"]?.failureCount ?? 0 })); }
`,
      }).then((r) => json<{ name: string; message: string; breaker: number }>(r));

    it("a call with no fetch available rejects naming what to do (pass one as the `fetch` option)", async () => {
      expect((await noFetch()).message).toContain("no global fetch in this runtime; pass one as the `fetch` option");
    });

    // Was a defect, fixed: it was retried like a network error (about 2 s of real backoff) and counted against the host.
    it("a missing fetch is refused at once, never retried nor counted against the host", async () => {
      const out = await noFetch();
      expect(out.name).not.toBe("RetryExhaustedError");
      expect(out.breaker).toBe(0);
    });

    it("every documented subpath resolves in Node ESM (package.json with its import attribute)", async () => {
      const subpaths = [
        "",
        "/fallback",
        "/degradation",
        "/policies",
        "/ky",
        "/cloudflare",
        "/testing",
        "/testing/clock",
      ];
      const r = await node({
        "exports.mjs": `
const out = {};
for (const s of ${JSON.stringify(subpaths)}) {
  try { out[s] = Object.keys(await import("${PKG}" + s)).length; } catch (e) { out[s] = e.code + " " + e.message; }
}
out.pkg = (await import("${PKG}/package.json", { with: { type: "json" } })).default.name;
console.log(JSON.stringify(out));
`,
      });
      const out = json<Record<string, number | string>>(r);
      for (const s of subpaths) expect(typeof out[s], `${s}: ${out[s]}`).toBe("number");
      expect(out.pkg).toBe(PKG);
    });

    it("the ky client (README's entries table) retries a 503 from a node:http server and validates with zod; ky's own retry is refused", async () => {
      const r = await node({
        "ky.mjs": `
import { createServer } from "node:http";
import { createClient } from "${PKG}/ky";
import { z } from "zod";
let n = 0;
const server = createServer((req, res) => {
  n++;
  if (n === 1) { res.writeHead(503); res.end("busy"); return; }
  res.writeHead(200, { "content-type": "application/json" }); res.end('{"id":"j1"}');
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const api = createClient({ prefix: "http://127.0.0.1:" + server.address().port + "/v1", resilience: { retry: { initialDelay: 10 } } });
const job = await api.post("jobs", { json: { prompt: "x" } }).json(z.object({ id: z.string() }));
let refused = "";
try { createClient({ retry: 2 }); } catch (e) { refused = e.name; }
server.close();
console.log(JSON.stringify({ job, n, refused }));
`,
      });
      expect(json<unknown>(r)).toEqual({ job: { id: "j1" }, n: 2, refused: "ConfigError" });
    });

    /** Bundles `entry` with the project's esbuild; returns the package files it took and its min+gzip bytes. */
    async function bundle(entry: string, ...flags: string[]) {
      const meta = join(dir, `meta-${Math.random().toString(36).slice(2)}.json`);
      const r = await sh(
        join(dir, "node_modules/.bin/esbuild"),
        [
          entry,
          "--bundle",
          "--format=esm",
          "--log-level=error",
          `--metafile=${meta}`,
          `--outfile=${meta}.js`,
          ...flags,
        ],
        dir,
      );
      if (r.code !== 0) throw new Error(r.stderr);
      const inputs = Object.keys((JSON.parse(readFileSync(meta, "utf8")) as { inputs: object }).inputs);
      const own = inputs.filter((i) => i.includes(`${PKG}/dist/`)).map((i) => i.slice(i.indexOf("/dist/") + 1));
      return { own, gzip: gzipSync(readFileSync(`${meta}.js`), { level: 9 }).length };
    }

    it("a page bundle (esbuild --platform=browser) takes dist/browser, a Worker bundle (conditions workerd,worker,browser) the full build", async () => {
      const pageBundle = await bundle("src/page.ts", "--platform=browser");
      expect(pageBundle.own.length).toBeGreaterThan(0);
      expect(pageBundle.own.filter((f) => !f.startsWith("dist/browser/"))).toEqual([]);
      const workerBundle = await bundle("src/worker.ts", "--platform=neutral", "--conditions=workerd,worker,browser");
      expect(workerBundle.own.length).toBeGreaterThan(0);
      expect(workerBundle.own.filter((f) => f.startsWith("dist/browser/"))).toEqual([]);
    }, 30_000);

    /** The README's size table, measured as it says: esbuild, minified, gzip, for browsers. */
    async function sizes() {
      const entries: Record<string, string> = {
        root: `export { createResilience } from "${PKG}";`,
        fallback: `export { createResilience } from "${PKG}"; export { fallback } from "${PKG}/fallback";`,
        degradation: `export { createResilience } from "${PKG}"; export { degradation } from "${PKG}/degradation";`,
        all: `export { createResilience } from "${PKG}"; export { fallback } from "${PKG}/fallback"; export { degradation } from "${PKG}/degradation";`,
        retry: `export { retry } from "${PKG}/policies";`,
        policies: `export * from "${PKG}/policies";`,
      };
      const b: Record<string, number> = {};
      for (const [name, text] of Object.entries(entries)) {
        await writeFile(join(dir, `size-${name}.js`), text);
        b[name] = (await bundle(`size-${name}.js`, "--platform=browser", "--minify")).gzip;
      }
      // The README's figures, read from its entry table (the last cell of each row).
      const cell = (start: string, pick = (text: string) => text) => {
        const line = readme()
          .split("\n")
          .find((l) => l.startsWith(start)) as string;
        return Number(/([\d.]+) KiB/.exec(pick(line.split("|").at(-2) as string))?.[1]);
      };
      const policies = (part: RegExp) => (text: string) => part.exec(text)?.[0] ?? "";
      const rows: [string, number, number][] = [
        ["root", b.root as number, cell("| `@storycore/resilient-fetch`")],
        ["…/fallback (+)", (b.fallback as number) - (b.root as number), cell("| `…/fallback`")],
        ["…/degradation (+)", (b.degradation as number) - (b.root as number), cell("| `…/degradation`")],
        ["all three", b.all as number, cell("| all three")],
        ["`retry` alone", b.retry as number, cell("| `…/policies`", policies(/alone [\d.]+ KiB/))],
        ["…/policies all", b.policies as number, cell("| `…/policies`", policies(/all [\d.]+ KiB/))],
      ];
      // A row holds when the README's figure is the measure to 0.1 KiB, the unit the table names.
      return rows.map(([row, bytes, said]) => ({
        row,
        said,
        measured: `${(bytes / 1024).toFixed(2)} KiB`,
        holds: Math.abs(bytes / 1024 - said) <= 0.1,
      }));
    }
    let measured: Awaited<ReturnType<typeof sizes>> | undefined;
    const sizeRows = async () => {
      measured ??= await sizes();
      return measured;
    };

    it("the README's size table: the fallback and `retry` rows hold", async () => {
      const rows = await sizeRows();
      for (const name of ["…/fallback (+)", "`retry` alone"]) {
        expect(rows.find((r) => r.row === name)?.holds, JSON.stringify(rows)).toBe(true);
      }
    }, 60_000);

    // Was a defect, fixed: the table gave the full build's sizes (15.9 KB, 24.5 KB, 7.2 KB) after the browser build came.
    it("the README's size table holds, row for row, for the browser build a page's bundler picks", async () => {
      const wrong = (await sizeRows()).filter((r) => !r.holds);
      expect(wrong).toEqual([]);
    }, 60_000);
  });
});
