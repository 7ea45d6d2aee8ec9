/**
 * Outside-in attack on a newcomer's first hour, with the package as README.md says to get it: `npm run build &&
 * npm pack` here, the `.tgz` installed into a fresh project in a temporary directory, every entry imported by its
 * package name (ESM and CommonJS `require()`), the README's snippets run against real 127.0.0.1 servers, the types
 * a user sees checked with the package's own `.d.ts`, and the examples run as their READMEs say. What
 * test/tooling/newcomer.test.ts and test/user-project already do (ESM import of every subpath, `require()` of the
 * root, the README blocks compiled strict and run under MSW, the size table) is not repeated; this file attacks
 * what they leave out.
 * Docs: README.md "In your own project: … `npm run build && npm pack` here and install the `.tgz` it writes. The
 * package is ES modules only; CommonJS code can `require()` it on Node ≥ 22.12", the Quick start blocks (page,
 * Worker, test suite) and their comments ("No response at all: every endpoint failed, … or the chain stopped where
 * this POST may have been processed (with no Idempotency-Key, a dropped connection does not move on to the
 * backup …)"), "`resilience.fetch` is a bound `(input, init) => Promise<Response>`, so it drops into anything that
 * takes a custom fetch (ky, SDKs, Hono)", the entries table ("what it gives" per import), "Upgrading from 0.1";
 * CHANGELOG.md "`resilience.fallback` and `resilience.degradation` are `undefined` without their stage (typed so:
 * `createResilience` infers them from the options)" and "A POST or PATCH without an `Idempotency-Key` moves to the
 * next endpoint of a chain only when it surely was not processed (429, 503, connection refused, …)";
 * docs/cloudflare.md "Bindings are typed structurally: no Cloudflare type package is needed", "The proxy forwards
 * neither the hop's headers … nor what Cloudflare's edge or a proxy before it says about the end user (`cf-*`,
 * `x-forwarded-*`, …)", "`GET /__resilience/health` returns `health()` as JSON"; docs/testing.md's builder table
 * and helpers, "In a browser, use `setupWorker` from `msw/browser` with the same handlers"; docs/browsers-and-cors.md
 * "exactly what a refused connection or a DNS failure says, so page code cannot tell them apart. For the library it
 * is a network error" (the page's build); every ```ts block of README.md and docs/*.md (check-snippets compiles
 * them against src; here against the packed `.d.ts`); examples/node/README.md "with `GEN_API_URL=https://…/v1/images`
 * it calls that API instead"; examples/browser/README.md "Other ports: `PAGE_PORT`, `PRIMARY_PORT`, `BACKUP_PORT`
 * (the printed URL then carries the providers' addresses)", "it allows the `Idempotency-Key` and `content-type`
 * request headers and exposes `Retry-After`", "flaky (every other request answered 503 with `Retry-After: 1`), …
 * or down (connections dropped)".
 * How: `npm run build` and `npm pack` in this worktree, `npm install --offline` of the tarball into a fresh project
 * ("type": "module"), msw, ky, vitest, @types/node and typescript linked from this repo's node_modules; Node child
 * processes importing the package by name (`--conditions=browser` for the page's build); `tsc` on the user's files
 * (strict, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`, `verbatimModuleSyntax`, `isolatedModules`,
 * `skipLibCheck` off), on a CommonJS `.cts` file (emitted, then run by `node`), and on a Worker project typed by
 * `wrangler types` (Cloudflare's runtime types, no DOM lib); esbuild for a page bundle of the test kit; servers:
 * node:http on 127.0.0.1 in the child processes, test/helpers/http-upstream.ts here, the browser example's
 * `serve.ts` and fake image API on free ports.
 * Paths: plain call (the ky client's and an SDK-shaped `fetch` option by type), fallback chain (the README's:
 * 503s, refused connection, dropped connection; node build and page build), `resilientProxy` (chain route, upstream
 * route, health, unknown path), retries with an `Idempotency-Key` (the quick-start example), a `TestClock` through
 * `require()`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every promise tried here held.
 *
 * Held (plain `it`):
 * - `require()` of all eight subpaths from a `.cjs` file loads them, the same module instances as `import` (one
 *   `createResilience`, one set of error classes, `…/testing` and `…/testing/clock` one `TestClock`), and a chain's
 *   error thrown under `require()` is `instanceof` the imported `FallbackExhaustedError` and `ResilienceError`.
 * - A CommonJS TypeScript file (`.cts`, `module: "nodenext"`) importing the root, `…/fallback` and
 *   `…/testing/clock` compiles against the packed types, and its emitted `require()` calls run.
 * - The entries table: each name it gives is a value export of its entry (root: `createResilience`,
 *   `getResilienceInfo`, `memoryStore`, every error class with its `is…` guard, all `ResilienceError`s;
 *   `…/policies`: `retry`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`, the level machine;
 *   `…/cloudflare`: the stores and the proxy; `…/testing`: every builder of docs/testing.md's table and its helpers),
 *   the layer has `health()`, `execute`, `breaker(name)` and `on`, and the root carries neither `fallback` nor
 *   `degradation` (opt-in entries).
 * - Every ```ts block of README.md and docs/*.md that needs neither MSW nor vitest (six, with their hidden preludes:
 *   the page, the Worker, cloudflare.md's, degradation.md's, fallback.md's, recipes.md's OpenAI block; the others
 *   test/tooling/newcomer.test.ts compiles against the packed types) and a user file (the stages' inference,
 *   `ResilienceInfo`'s fields, `typeof fetch`, `ky.create({ fetch })`) compile against the packed `.d.ts` with
 *   strict and the stricter flags, `skipLibCheck` off.
 * - Workers: with the runtime types `wrangler types` generates (no DOM lib), a real `KVNamespace`,
 *   `DurableObjectNamespace` and `ExecutionContext` fit `kvStore`, `durableObjectStore` and the proxy's `fetch`, a
 *   handler `satisfies ExportedHandler<Env>`, and the README's Worker block compiles.
 * - The README's page block against real servers, as written but for the hosts (jitter drawn at 0): a 200 from the
 *   primary (info `{ attempts: 1, endpoint: "primary", fromFallback: false, degradationLevel: "full" }`); four 503s
 *   then the backup (`attempts: 5`, `fromFallback: true`); a refused primary moves on to the backup in the Node
 *   build; a dropped connection stops the chain with "generation unavailable: …", a `ResilienceError` as cause, the
 *   backup untouched. The page's build (`--conditions=browser`) does the same, but stops on a refused primary too,
 *   as docs/browsers-and-cors.md says a page cannot tell it from a drop.
 * - The README's Worker block in Node against real servers: premium's three 503s, then standard with its own
 *   `authorization` (premium never gets it), `x-resilience-endpoint: standard`; `/v1/text/hello?q=2` reaches
 *   `/v1/hello?q=2`; `x-forwarded-for`, `cf-connecting-ip` and `x-real-ip` reach no upstream; the health path is
 *   JSON with `breakers`; an unknown path is 404.
 * - docs/testing.md's browser line: a page bundle (esbuild, `--platform=browser`) of `setupWorker` from
 *   `msw/browser` with the kit's handlers and `TestClock` builds, from `dist/browser` only.
 * - examples/node/quick-start.ts with `GEN_API_URL` at a 127.0.0.1 server: that server gets the calls (a 503 with
 *   `Retry-After: 0`, then a 200), and the script prints the retry, the info and the answer; at a refused origin
 *   it prints its catch (since the forty-ninth session, when quick-start.ts became the README's quick start: no key,
 *   "generation unavailable"; before, one `Idempotency-Key` and "no response after 4 attempts").
 * - examples/browser/serve.ts with `PAGE_PORT`, `PRIMARY_PORT`, `BACKUP_PORT`: it listens there, prints the page's
 *   URL with both providers' addresses in its query, serves the page; the provider's preflight allows
 *   `content-type` and `idempotency-key` and exposes `retry-after`; `POST /__mode` flaky answers 503 with
 *   `Retry-After: 1` to every other request, down drops the connection.
 * - By hand, not in this file (they need the registry): the README's test suite passes with msw 2.7.0 and
 *   `createClient` works with ky 2.0.0, the floors of package.json's peer ranges.
 *
 * Docs-silent (not pinned):
 * - (Fixed since: test/http/global-install.test.ts.) README.md "A drop-in `fetch`", docs/options.md "`fetch` | `globalThis.fetch` at call time": a user who drops
 *   it in globally (`globalThis.fetch = resilience.fetch`) makes the layer its own transport. Nothing is ever sent;
 *   the call recurses until the stack overflows ("Exception in PromiseRejectCallback … Maximum call stack size
 *   exceeded" printed over and over), then each level wraps the next one's error, so the message repeats "gave up
 *   after 1 attempt to …" once per level, in time that grows faster than the depth: with Node's default stack the
 *   process spun its CPU for more than 30 s without settling or firing a timer (with `--stack-size=240` it rejected
 *   after 3.4 s). No doc says not to do it. A fix: keep the transport found when it is the layer's own `fetch` (or
 *   refuse it with a `TypeError` naming the loop), e.g. take `globalThis.fetch` when `createResilience` runs if the
 *   one found at call time is a layer's (src/http/create-resilience.ts `globalFetch`).
 * - (Fixed since, and tested here: the `.d.ts` spells these types from `RequestInit`.) Types in a Node-only project (`lib: ["es2023"]`, `types: ["node"]`, no DOM, `skipLibCheck: false`): the packed
 *   `.d.ts` names `HeadersInit`, `BodyInit` and `RequestInfo`, which @types/node does not declare globally: four
 *   TS2304/TS2552 errors in dist/resilience-options-*.d.ts; with `skipLibCheck: true` they pass silently and those
 *   types (`resilience.fetch`'s input among them) become `any`.
 * - A Worker typed by `wrangler types` that re-exports `BreakerStateObject` from its main module as
 *   docs/cloudflare.md shows: the generated `Cloudflare.Exports` requires every export of the main module to be a
 *   handler or a branded entrypoint class, and `BreakerStateObject` is a plain class, so `tsc` with
 *   `skipLibCheck: false` fails with TS2344 in worker-configuration.d.ts; `DurableObjectNamespace<BreakerStateObject>`
 *   fails too (not `DurableObjectBranded`). Cloudflare's templates set `skipLibCheck: true`, which hides the first.
 * - TypeScript CommonJS code under `module: "node16"` or `"node18"` gets TS1479 (a `require` of an ES module) for
 *   every entry; `"node20"` and `"nodenext"` accept it, as Node ≥ 22.12 does. package.json's `engines` says
 *   `>=22`, while `require()` needs 22.12.
 * - examples/sdk-fetch/README.md's snippet (`new SomeGenerationSdk({ apiKey, fetch: resilience.fetch })`) does not
 *   say to turn the SDK's own retries off (docs/recipes.md point 1 does): the Anthropic SDK so configured, against
 *   an API answering 503, sent 9 requests for one call (its 3 × the layer's 3).
 * - `npm run demo -- --seconds 3` dies with an uncaught `RangeError: --seconds: expected 5..600` and its stack; the
 *   README lists `--seconds N` with no bounds.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpUpstream, refusedOrigin } from "../helpers/http-upstream.ts";

const root = resolve(import.meta.dirname, "../..");
const NM = join(root, "node_modules");
const PKG = "@storycore/resilient-fetch";
/** Jitter drawn at 0 in a child process, so the snippets' real backoffs take no time. */
const NO_JITTER = "data:text/javascript,Math.random=()=>0";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws: the exit code is in the result. */
function sh(
  cmd: string,
  args: string[],
  cwd: string,
  timeout = 60_000,
  env: Record<string, string> = {},
): Promise<Ran> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      {
        cwd,
        timeout,
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The last line of a child's stdout, as JSON (throws with its output when it failed). */
function lastJson<T>(r: Ran): T {
  const last = r.stdout.trim().split("\n").at(-1);
  if (last === undefined || r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(last) as T;
}

/** A ```ts block of a Markdown text, with its hidden prelude (`<!-- snippet: … -->`), skipped ones left out. */
interface Snippet {
  line: number;
  prelude: string;
  code: string;
}
function snippets(markdown: string): Snippet[] {
  const lines = markdown.split("\n");
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] ?? "")) continue;
    const directive = /^<!--\s*snippet:\s*([\s\S]*?)\s*-->$/.exec((lines[i - 1] ?? "").trim())?.[1];
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? "")) end++;
    if (directive !== "skip") {
      out.push({ line: i + 2, prelude: directive ?? "", code: lines.slice(i + 1, end).join("\n") });
    }
    i = end;
  }
  return out;
}
/** The one block of `markdown` holding every marker. */
function block(markdown: string, ...markers: string[]): string {
  const found = snippets(markdown).filter((s) => markers.every((m) => s.code.includes(m)));
  if (found.length !== 1) throw new Error(`expected one ts block with ${markers.join(", ")}, found ${found.length}`);
  return (found[0] as Snippet).code;
}

let dir = "";
const inPkg = (path: string) => join(dir, "node_modules", PKG, path);
const readme = () => readFileSync(inPkg("README.md"), "utf8");
const tsc = (args: string[], cwd = dir) => sh(process.execPath, [join(NM, "typescript/bin/tsc"), ...args], cwd, 90_000);
/** Writes `files` into the project and runs `node` on the first, with `flags` before it. */
async function node(files: Record<string, string>, flags: string[] = [], args: string[] = []): Promise<Ran> {
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return sh(process.execPath, [...flags, Object.keys(files)[0] as string, ...args], dir, 30_000);
}

beforeAll(async () => {
  // README: "`npm run build && npm pack` here and install the `.tgz` it writes". `npm test` builds
  // before its tests run; built here only when missing: a rebuild empties dist/ under the other files' feet.
  if (!existsSync(join(root, "dist/index.js")) || !existsSync(join(root, "dist/browser/index.js"))) {
    const built = await sh("npm", ["run", "build"], root, 150_000);
    if (built.code !== 0) throw new Error(`npm run build failed:\n${built.stdout}\n${built.stderr}`);
  }
  dir = await mkdtemp(join(tmpdir(), "resilient-fetch-firsthour-"));
  const packed = await sh("npm", ["pack", "--silent", "--pack-destination", dir], root, 60_000);
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const tarball = (await readdir(dir)).find((f) => f.endsWith(".tgz"));
  if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${dir}`);
  await writeFile(
    join(dir, "package.json"),
    `${JSON.stringify({ name: "firsthour-app", private: true, type: "module" })}\n`,
  );
  const flags = ["--no-audit", "--no-fund", `./${tarball}`];
  let installed = await sh("npm", ["install", "--offline", ...flags], dir, 60_000);
  if (installed.code !== 0) installed = await sh("npm", ["install", "--prefer-offline", ...flags], dir, 120_000);
  if (installed.code !== 0) throw new Error(`npm install of the tarball failed:\n${installed.stderr}`);
  // The peers and tools a user adds, linked from this repo (after the install, which would prune them).
  await mkdir(join(dir, "node_modules/@types"), { recursive: true });
  for (const name of ["msw", "ky", "vitest", "openai", "@types/node"]) {
    await symlink(join(NM, name), join(dir, "node_modules", name), "dir");
  }
  await mkdir(join(dir, "src"));
}, 240_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the packed package, imported by its name", () => {
  it("require() of every subpath gives the modules import gives: one copy of each class, errors instanceof across", async () => {
    const subpaths = ["", "/fallback", "/degradation", "/policies", "/ky", "/cloudflare", "/testing", "/testing/clock"];
    const r = await node({
      "require.cjs": `
(async () => {
  const P = ${JSON.stringify(PKG)};
  const loaded = {};
  for (const s of ${JSON.stringify(subpaths)}) {
    try { loaded[s || "."] = Object.keys(require(P + s)).length > 0; } catch (e) { loaded[s || "."] = String(e.code) + " " + e.message; }
  }
  const r = require(P), i = await import(P);
  const out = {
    loaded,
    sameCreate: r.createResilience === i.createResilience,
    sameErrors: r.ResilienceError === i.ResilienceError && r.CircuitOpenError === i.CircuitOpenError,
    sameFallback: require(P + "/fallback").fallback === (await import(P + "/fallback")).fallback,
    oneClock: require(P + "/testing").TestClock === require(P + "/testing/clock").TestClock
      && require(P + "/testing/clock").TestClock === (await import(P + "/testing/clock")).TestClock,
  };
  const refused = async () => { throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) }); };
  const layer = r.createResilience({ retry: false, fetch: refused, fallback: require(P + "/fallback").fallback([
    { name: "c", endpoints: [{ name: "a", url: "http://a.test/" }, { name: "b", url: "http://b.test/" }] }]) });
  try { await layer.fetch("http://a.test/"); out.settled = "resolved"; }
  catch (e) { out.settled = e.name; out.isFallbackExhausted = e instanceof i.FallbackExhaustedError; out.isResilience = e instanceof i.ResilienceError && i.isResilienceError(e); }
  console.log(JSON.stringify(out));
})();
`,
    });
    const out = lastJson<Record<string, unknown>>(r);
    expect(out.loaded).toEqual(Object.fromEntries(subpaths.map((s) => [s || ".", true])));
    expect(out).toMatchObject({
      sameCreate: true,
      sameErrors: true,
      sameFallback: true,
      oneClock: true,
      settled: "FallbackExhaustedError",
      isFallbackExhausted: true,
      isResilience: true,
    });
  });

  it("a CommonJS TypeScript file (.cts, module nodenext) compiles against the packed types and its require() calls run", async () => {
    await mkdir(join(dir, "cjs"), { recursive: true });
    await writeFile(
      join(dir, "cjs/app.cts"),
      `import { createResilience, getResilienceInfo, type ResilienceInfo } from "${PKG}";
import { fallback } from "${PKG}/fallback";
import { TestClock } from "${PKG}/testing/clock";
const clock = new TestClock();
const resilience = createResilience({
  clock,
  retry: false,
  fetch: async () => new Response("ok"),
  fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: "http://a.test/" }] }]),
});
void resilience.fetch("http://a.test/").then((res) => {
  const info: ResilienceInfo | undefined = getResilienceInfo(res);
  console.log(JSON.stringify({ endpoint: info?.endpoint, clock: clock.now() }));
});
`,
    );
    await writeFile(
      join(dir, "tsconfig.cjs.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: "es2022",
          module: "nodenext",
          lib: ["es2023", "dom"],
          types: [],
          rootDir: "cjs",
          outDir: "cjs-out",
        },
        files: ["cjs/app.cts"],
      }),
    );
    const compiled = await tsc(["-p", "tsconfig.cjs.json"]);
    expect(compiled.stdout + compiled.stderr).toBe("");
    const emitted = readFileSync(join(dir, "cjs-out/app.cjs"), "utf8");
    expect(emitted).toContain(`require("${PKG}")`);
    const ran = await sh(process.execPath, ["cjs-out/app.cjs"], dir);
    expect(lastJson<unknown>(ran)).toEqual({ endpoint: "a", clock: 0 });
  }, 60_000);

  it("the entries table: each name it gives is a value export of its entry, and the layer has what the root row lists", async () => {
    const r = await node({
      "entries.mjs": `
const P = ${JSON.stringify(PKG)};
const out = {};
for (const s of ["", "/fallback", "/degradation", "/policies", "/ky", "/cloudflare", "/testing"]) {
  const m = await import(P + s);
  out[s || "."] = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v]));
}
const root = await import(P);
const layer = root.createResilience();
out.layer = Object.fromEntries(["fetch", "health", "execute", "breaker", "on"].map((k) => [k, typeof layer[k]]));
out.errors = Object.keys(root).filter((k) => /^[A-Z][A-Za-z]*Error$/.test(k)).map((k) => ({
  name: k,
  resilience: root[k].prototype instanceof root.ResilienceError || root[k] === root.ResilienceError,
  guard: typeof root["is" + k],
}));
console.log(JSON.stringify(out));
`,
    });
    type Exports = Record<string, string>;
    const out = lastJson<{ [entry: string]: Exports | undefined } & { errors: { name: string }[]; layer: Exports }>(r);
    const table = readme()
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    const row = (start: string) => table.find((l) => l.startsWith(start)) ?? "";
    /** Each name is in the row's text and a value export of the entry. */
    const gives = (entry: string, start: string, names: string[], kind = ["function"]) => {
      for (const name of names) {
        expect(row(start), `${start} names ${name}`).toContain(name);
        expect(kind, `${entry} exports ${name}`).toContain(out[entry]?.[name]);
      }
    };
    gives(".", "| `@storycore/resilient-fetch`", ["createResilience", "getResilienceInfo", "memoryStore"]);
    gives("/fallback", "| `…/fallback`", ["fallback"]);
    gives("/degradation", "| `…/degradation`", ["degradation"]);
    gives("/policies", "| `…/policies`", ["retry", "CircuitBreaker", "Bulkhead", "RetryBudget", "FallbackChain"]);
    // "the level machine": the level names and the pure transition over them.
    expect(out["/policies"]).toMatchObject({
      nextLevel: "function",
      initialLevelState: "function",
      LEVEL_NAMES: "object",
    });
    // "the ky client, the Workers stores and proxy, the MSW fault kit".
    expect(out["/ky"]).toMatchObject({ createClient: "function" });
    expect(out["/cloudflare"]).toMatchObject({
      kvStore: "function",
      durableObjectStore: "function",
      BreakerStateObject: "function",
      resilientProxy: "function",
    });
    const testingDoc = readFileSync(join(root, "docs/testing.md"), "utf8");
    const builders = [...testingDoc.matchAll(/^\| `(\w+)\(/gm)].map((m) => m[1] as string);
    expect(builders).toEqual(expect.arrayContaining(["status", "json", "networkError", "sequence", "flaky", "outage"]));
    for (const name of [...builders, "upstream", "recordEvents", "TestClock", "seededRandom", "corsPreflight"]) {
      expect(out["/testing"]?.[name], `…/testing exports ${name}`).toBe("function");
    }
    // "`health()`, `execute`, named breakers", "events": on the layer the root makes.
    expect(out.layer).toEqual({
      fetch: "function",
      health: "function",
      execute: "function",
      breaker: "function",
      on: "function",
    });
    // "the errors": each a ResilienceError with its guard; chains and degradation stay out of the root.
    expect(out.errors.length).toBeGreaterThanOrEqual(7);
    for (const e of out.errors) expect(e).toEqual({ name: e.name, resilience: true, guard: "function" });
    expect(out["."]?.fallback).toBeUndefined();
    expect(out["."]?.degradation).toBeUndefined();
  });
});

describe("the types a user sees (the packed .d.ts, skipLibCheck off)", () => {
  it("every ts block of README.md and docs/*.md without MSW, and a user file, compile strict with the stricter flags", async () => {
    await mkdir(join(dir, "snippets"), { recursive: true });
    const sources: [string, string][] = [
      ["README.md", readme()],
      ...(await readdir(join(root, "docs")))
        .filter((f) => f.endsWith(".md"))
        .map((f): [string, string] => [`docs/${f}`, readFileSync(join(root, "docs", f), "utf8")]),
    ];
    let count = 0;
    for (const [file, text] of sources) {
      for (const s of snippets(text)) {
        // The MSW and vitest blocks are compiled against the packed types by test/tooling/newcomer.test.ts.
        if (/from "(msw|vitest)/.test(s.code)) continue;
        count++;
        const name = `${file.replace(/[^a-z0-9]+/gi, "-")}-${s.line}.ts`;
        await writeFile(join(dir, "snippets", name), `${s.prelude}\n${s.code}\nexport {};\n`);
      }
    }
    expect(count).toBeGreaterThanOrEqual(6);
    // Beyond the blocks: what the README and the CHANGELOG say the types do.
    await writeFile(
      join(dir, "snippets/user.ts"),
      `import ky from "ky";
import { createResilience, getResilienceInfo, type ResilienceInfo } from "${PKG}";
import { degradation } from "${PKG}/degradation";
import { fallback } from "${PKG}/fallback";

// CHANGELOG: "\`resilience.fallback\` and \`resilience.degradation\` are \`undefined\` without their stage (typed so)".
const plain = createResilience({ retry: { maxAttempts: 4, initialDelay: 500 } });
export const noChains: undefined = plain.fallback;
export const noLevels: undefined = plain.degradation;
const staged = createResilience({
  fallback: fallback([{ name: "images", endpoints: [{ name: "primary", url: "https://gen.example/v1/images" }] }]),
  degradation: degradation({}),
});
export const chain = staged.fallback.chain("images");
export const degrade = staged.degradation.degrade;
// README: "a bound (input, init) => Promise<Response>, so it drops into anything that takes a custom fetch".
export const asFetch: typeof fetch = plain.fetch;
export const viaKy = ky.create({ fetch: plain.fetch });
export const { fetch: unbound } = plain;
export function fields(res: Response): [number, string, boolean, string] | undefined {
  const info: ResilienceInfo | undefined = getResilienceInfo(res);
  return info && [info.attempts, info.endpoint, info.fromFallback, info.degradationLevel];
}
`,
    );
    await writeFile(
      join(dir, "tsconfig.strict.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: "es2022",
          module: "nodenext",
          lib: ["es2023", "dom", "dom.iterable"],
          types: ["node"],
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noImplicitOverride: true,
          verbatimModuleSyntax: true,
          isolatedModules: true,
        },
        include: ["snippets"],
      }),
    );
    const r = await tsc(["-p", "tsconfig.strict.json"]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 90_000);

  it("a Node-only project (no DOM lib, @types/node, skipLibCheck off) type-checks the package, fetch's types kept", async () => {
    // Was docs-silent: the .d.ts named `HeadersInit`, `BodyInit` and `RequestInfo`, which @types/node does not declare.
    const n = join(dir, "node-only");
    await mkdir(n, { recursive: true });
    await writeFile(
      join(n, "user.ts"),
      `import { createResilience, type ResilienceOptions } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { retry } from "@storycore/resilient-fetch/policies";
const options: ResilienceOptions = { retry: { maxAttempts: 2 } };
const layer = createResilience({ ...options, fallback: fallback([]), degradation: degradation({}) });
export const asFetch: typeof fetch = layer.fetch;
export const res: Promise<Response> = layer.fetch(new URL("http://127.0.0.1/"), { headers: [["a", "b"]], body: "x", method: "POST" });
export const viaRetry: Promise<number> = retry(async () => 1);
// @ts-expect-error a number is no fetch input: the input's type was not widened to any
layer.fetch(42);
`,
    );
    await writeFile(
      join(n, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: "es2022",
          module: "nodenext",
          lib: ["es2023"],
          types: ["node"],
        },
        include: ["user.ts"],
      }),
    );
    const r = await tsc(["-p", join(n, "tsconfig.json")]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 90_000);

  it("Workers: real KVNamespace, DurableObjectNamespace and ExecutionContext (wrangler types, no DOM lib) fit; the README's Worker block compiles", async () => {
    const w = join(dir, "worker");
    await mkdir(w, { recursive: true });
    await writeFile(
      join(w, "wrangler.toml"),
      `name = "firsthour"
main = "index.ts"
compatibility_date = "2025-09-01"
[[kv_namespaces]]
binding = "BREAKERS"
id = "breakers"
[[durable_objects.bindings]]
name = "BREAKER_STATE"
class_name = "BreakerStateObject"
`,
    );
    await writeFile(
      join(w, "index.ts"),
      `import { durableObjectStore, kvStore, resilientProxy } from "${PKG}/cloudflare";

let proxy: ReturnType<typeof resilientProxy<Env>> | undefined;
let viaObject: ReturnType<typeof resilientProxy<Env>> | undefined;

export default {
  fetch(request, env, ctx): Promise<Response> {
    proxy ??= resilientProxy<Env>({
      routes: [{ path: "/v1/text", upstream: "https://text.example/v1" }],
      store: (env) => kvStore(env.BREAKERS),
    });
    viaObject ??= resilientProxy<Env>({
      routes: [{ path: "/v1/text", upstream: "https://text.example/v1" }],
      store: (env) => durableObjectStore(env.BREAKER_STATE),
    });
    return (request.method === "GET" ? proxy : viaObject).fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
`,
    );
    await writeFile(join(w, "readme-worker.ts"), block(readme(), "resilientProxy<Env>"));
    const types = await sh(join(NM, ".bin/wrangler"), ["types"], w, 60_000, { WRANGLER_SEND_METRICS: "false" });
    expect(types.code, types.stdout + types.stderr).toBe(0);
    const generated = readFileSync(join(w, "worker-configuration.d.ts"), "utf8");
    expect(generated).toMatch(/BREAKERS: KVNamespace;/);
    expect(generated).toMatch(/BREAKER_STATE: DurableObjectNamespace/);
    await writeFile(
      join(w, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: "es2024",
          lib: ["es2024"],
          module: "es2022",
          moduleResolution: "bundler",
          types: ["./worker-configuration.d.ts"],
        },
        include: ["index.ts", "readme-worker.ts"],
      }),
    );
    const r = await tsc(["-p", "tsconfig.json"], w);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 90_000);
});

describe("the README's quick starts against real 127.0.0.1 servers", () => {
  type Page = {
    n: { primary: number; backup: number };
    logged: Record<string, unknown>[];
    result?: unknown;
    error?: string;
    causeIsResilienceError?: boolean;
  };
  /** The page block, its hosts swapped for local servers, in each mode; `flags` picks the build. */
  async function page(flags: string[]): Promise<Record<string, Page>> {
    await writeFile(join(dir, "src/page.template.ts"), block(readme(), "generateImage(prompt: string)", "fallback(["));
    const r = await node(
      {
        "page-run.mjs": `
import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
const template = readFileSync("src/page.template.ts", "utf8");
const { isResilienceError } = await import(${JSON.stringify(PKG)});
function serve(n, name, answer) {
  const server = createServer((req, res) => { req.resume(); req.on("end", () => { n[name]++; answer(req, res); }); });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server)));
}
const json = (res, body) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
const out = {};
for (const mode of ["ok", "503", "refused", "drop"]) {
  const n = { primary: 0, backup: 0 };
  const primary = await serve(n, "primary", (req, res) => {
    if (mode === "503") return void res.writeHead(503).end("busy");
    if (mode === "drop") return void req.socket.destroy();
    json(res, { url: "primary" });
  });
  const backup = await serve(n, "backup", (req, res) => json(res, { url: "backup" }));
  const at = (s) => "http://127.0.0.1:" + s.address().port;
  const primaryAt = at(primary);
  if (mode === "refused") await new Promise((r) => primary.close(r));
  writeFileSync("src/page-" + mode + ".ts", template.replaceAll("https://gen.example", primaryAt).replaceAll("https://backup.example", at(backup)));
  const logged = [];
  const log = console.log;
  console.log = (x) => logged.push(x);
  const { generateImage } = await import("./src/page-" + mode + ".ts");
  const seen = { n, logged };
  try { seen.result = await generateImage("a cat"); }
  catch (e) { seen.error = e.message; seen.causeIsResilienceError = isResilienceError(e.cause); }
  console.log = log;
  out[mode] = seen;
  primary.close();
  backup.close();
}
console.log(JSON.stringify(out));
`,
      },
      ["--import", NO_JITTER, ...flags],
    );
    return lastJson<Record<string, Page>>(r);
  }

  const checkCommon = (out: Record<string, Page>) => {
    expect(out.ok?.result).toEqual({ url: "primary" });
    expect(out.ok?.logged[0]).toMatchObject({
      attempts: 1,
      endpoint: "primary",
      fromFallback: false,
      degradationLevel: "full",
    });
    // `maxAttempts: 4` on the primary, then the backup: a 503 is a POST's safe retry and move.
    expect(out["503"]?.n).toEqual({ primary: 4, backup: 1 });
    expect(out["503"]?.result).toEqual({ url: "backup" });
    expect(out["503"]?.logged[0]).toMatchObject({ attempts: 5, endpoint: "backup", fromFallback: true });
    // "with no Idempotency-Key, a dropped connection does not move on to the backup".
    expect(out.drop?.n).toEqual({ primary: 1, backup: 0 });
    expect(out.drop?.error).toMatch(/^generation unavailable: /);
    expect(out.drop?.causeIsResilienceError).toBe(true);
  };

  it("the page block, Node build: served, moved on after 503s and after a refused connection, stopped on a drop", async () => {
    const out = await page([]);
    checkCommon(out);
    // CHANGELOG: a keyless POST "moves to the next endpoint … only when it surely was not processed (… connection refused …)".
    expect(out.refused?.n).toEqual({ primary: 0, backup: 1 });
    expect(out.refused?.result).toEqual({ url: "backup" });
  }, 30_000);

  it("the page block, the page's build (browser condition): the same, but a refused connection stops it as a drop does", async () => {
    const out = await page(["--conditions=browser"]);
    checkCommon(out);
    // docs/browsers-and-cors.md: a page cannot tell a refused connection from another network error.
    expect(out.refused?.n).toEqual({ primary: 0, backup: 0 });
    expect(out.refused?.error).toMatch(/^generation unavailable: /);
  }, 30_000);

  it("the Worker block in Node: failover with the standard key, the text route rebased, no end-user headers forwarded, health, 404", async () => {
    await writeFile(join(dir, "src/worker.template.ts"), block(readme(), "resilientProxy<Env>"));
    const r = await node(
      {
        "worker-run.mjs": `
import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
const seen = [];
function serve(name, answer) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push({ name, method: req.method, url: req.url, authorization: req.headers.authorization ?? null,
        endUser: ["x-forwarded-for", "cf-connecting-ip", "x-real-ip"].filter((h) => req.headers[h] !== undefined) });
      answer(res);
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server)));
}
const ok = (from) => (res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ from }));
const premium = await serve("premium", (res) => res.writeHead(503).end("busy"));
const standard = await serve("standard", ok("standard"));
const text = await serve("text", ok("text"));
const at = (s) => "http://127.0.0.1:" + s.address().port;
writeFileSync("src/worker-real.ts", readFileSync("src/worker.template.ts", "utf8")
  .replaceAll("https://premium.example", at(premium)).replaceAll("https://standard.example", at(standard)).replaceAll("https://text.example", at(text)));
const worker = (await import("./src/worker-real.ts")).default;
const kv = new Map();
const env = {
  STANDARD_KEY: "sk-standard",
  BREAKERS: {
    async get(k) { return kv.get(k)?.value ?? null; },
    async getWithMetadata(k) { const v = kv.get(k); return { value: v?.value ?? null, metadata: v?.metadata ?? null }; },
    async put(k, value, o) { kv.set(k, { value, metadata: o?.metadata }); },
  },
};
const waits = [];
const ctx = { waitUntil: (p) => waits.push(p), passThroughOnException() {} };
const out = { seen };
for (const [name, method, path, body] of [
  ["video", "POST", "/v1/video/jobs", '{"prompt":"waves"}'],
  ["text", "GET", "/v1/text/hello?q=2"],
  ["health", "GET", "/__resilience/health"],
  ["other", "GET", "/nope"],
]) {
  const headers = { authorization: "Bearer caller", "x-forwarded-for": "203.0.113.9", "cf-connecting-ip": "203.0.113.9", "x-real-ip": "203.0.113.9" };
  const res = await worker.fetch(new Request("https://worker.example" + path, { method, body, headers }), env, ctx);
  out[name] = { status: res.status, endpoint: res.headers.get("x-resilience-endpoint"), body: await res.text() };
}
await Promise.allSettled(waits);
for (const s of [premium, standard, text]) s.close();
console.log(JSON.stringify(out));
`,
      },
      ["--import", NO_JITTER],
    );
    type Seen = { name: string; method: string; url: string; authorization: string | null; endUser: string[] };
    type Answer = { status: number; endpoint: string | null; body: string };
    const out = lastJson<{ seen: Seen[]; video: Answer; text: Answer; health: Answer; other: Answer }>(r);
    expect(out.video).toMatchObject({ status: 200, endpoint: "standard", body: '{"from":"standard"}' });
    const premium = out.seen.filter((s) => s.name === "premium");
    expect(premium.length).toBe(3);
    expect(premium.map((s) => s.authorization)).not.toContain("Bearer sk-standard");
    expect(out.seen.find((s) => s.name === "standard")).toMatchObject({
      method: "POST",
      url: "/v2/video/jobs",
      authorization: "Bearer sk-standard",
    });
    expect(out.seen.find((s) => s.name === "text")).toMatchObject({ method: "GET", url: "/v1/hello?q=2" });
    expect(out.text.status).toBe(200);
    for (const s of out.seen) expect(s.endUser, `${s.name} got end-user headers`).toEqual([]);
    expect(out.health.status).toBe(200);
    expect(JSON.parse(out.health.body)).toHaveProperty("breakers");
    expect(out.other.status).toBe(404);
  }, 30_000);
});

describe("docs/testing.md in a browser: setupWorker with the kit's handlers", () => {
  it("a page bundle of msw/browser's setupWorker, the kit's handlers and TestClock builds from dist/browser alone", async () => {
    await writeFile(
      join(dir, "src/kit-page.ts"),
      `import { createResilience } from "${PKG}";
import { corsPreflight, json, recordEvents, sequence, status, TestClock, upstream } from "${PKG}/testing";
import { setupWorker } from "msw/browser";

const api = upstream("POST", "https://gen.example/v1/images", sequence([status(503), json({ url: "x" })]));
const worker = setupWorker(corsPreflight(), api.handler);
await worker.start();
const clock = new TestClock();
const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
recordEvents(resilience);
export const res = await clock.run(resilience.fetch("https://gen.example/v1/images", { method: "POST" }));
`,
    );
    const r = await sh(
      join(NM, ".bin/esbuild"),
      [
        "src/kit-page.ts",
        "--bundle",
        "--format=esm",
        "--platform=browser",
        "--log-level=error",
        "--metafile=kit-page.meta.json",
        "--outfile=kit-page.js",
      ],
      dir,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const inputs = Object.keys(
      (JSON.parse(readFileSync(join(dir, "kit-page.meta.json"), "utf8")) as { inputs: object }).inputs,
    );
    const own = inputs.filter((i) => i.includes(`${PKG}/`));
    expect(own).toContain(`node_modules/${PKG}/dist/browser/testing/index.js`);
    expect(own.filter((i) => !i.includes(`${PKG}/dist/browser/`))).toEqual([]);
  });
});

describe("the examples, as their READMEs say", () => {
  // Since the forty-ninth session quick-start.ts is the README's quick start: the README's body, no key (a 503 is
  // declined, so a keyless POST goes again), the info of the chain's endpoint.
  it("examples/node/quick-start.ts with GEN_API_URL calls that API: a 503 with Retry-After 0, then the 200", async () => {
    const api = httpUpstream();
    await api.start();
    try {
      api.on((hit) => {
        if (hit.n === 1) {
          hit.res.writeHead(503, { "retry-after": "0", "content-type": "application/json" }).end('{"error":"busy"}');
          return;
        }
        hit.res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: "img_9" }));
      });
      const r = await sh(process.execPath, ["examples/node/quick-start.ts"], root, 30_000, {
        GEN_API_URL: `${api.base}/v1/images`,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(api.hits.map((h) => [h.method, h.path])).toEqual([
        ["POST", "/v1/images"],
        ["POST", "/v1/images"],
      ]);
      expect(JSON.parse(api.hits[0]?.body ?? "{}")).toEqual({
        prompt: "a lighthouse at dusk",
        steps: 50,
        resolution: "1080p",
      });
      expect(api.hits.map((h) => h.headers["idempotency-key"])).toEqual([undefined, undefined]);
      expect(r.stdout).toContain("retry #1 in 0 ms (status 503)");
      expect(r.stdout).toMatch(/^\{\n {2}attempts: 2,\n {2}endpoint: 'primary',\n {2}fromFallback: false,/m);
      expect(r.stdout).toContain("{ id: 'img_9' }");
    } finally {
      api.stop();
    }
  }, 40_000);

  it("examples/node/quick-start.ts with GEN_API_URL at a refused origin prints its catch: generation unavailable", async () => {
    const origin = await refusedOrigin();
    const r = await sh(process.execPath, ["--import", NO_JITTER, "examples/node/quick-start.ts"], root, 30_000, {
      GEN_API_URL: `${origin}/v1/images`,
    });
    expect(r.code).toBe(1);
    expect(r.stdout.match(/^retry #\d in 0 ms \(connection refused\)$/gm)?.length).toBe(3);
    expect(r.stderr).toMatch(/^Error: generation unavailable: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 40_000);

  describe("examples/browser/serve.ts on the ports its README names", () => {
    let child: ChildProcess | undefined;
    let printed = "";
    const ports = { page: 0, primary: 0, backup: 0 };

    beforeAll(async () => {
      const free = new Set<number>();
      while (free.size < 3) free.add(Number(new URL(await refusedOrigin()).port));
      [ports.page, ports.primary, ports.backup] = [...free] as [number, number, number];
      const started = spawn(process.execPath, ["examples/browser/serve.ts"], {
        cwd: root,
        env: {
          ...process.env,
          PAGE_PORT: String(ports.page),
          PRIMARY_PORT: String(ports.primary),
          BACKUP_PORT: String(ports.backup),
          NO_COLOR: "1",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = started;
      let errors = "";
      started.stderr?.on("data", (chunk: Buffer) => {
        errors += chunk.toString();
      });
      await new Promise<void>((ready, fail) => {
        const timer = setTimeout(
          () => fail(new Error(`serve.ts printed no URL in 30 s:\n${printed}\n${errors}`)),
          30_000,
        );
        started.stdout?.on("data", (chunk: Buffer) => {
          printed += chunk.toString();
          if (printed.includes("Ctrl-C stops it.")) {
            clearTimeout(timer);
            ready();
          }
        });
        started.once("exit", (code) => {
          clearTimeout(timer);
          fail(new Error(`serve.ts exited (${code}):\n${printed}\n${errors}`));
        });
      });
    }, 40_000);

    afterAll(async () => {
      const running = child;
      if (running && running.exitCode === null && running.signalCode === null) {
        const exited = new Promise<void>((done) => running.once("exit", () => done()));
        running.kill("SIGTERM");
        await exited;
      }
    }, 20_000);

    it("listens on them and prints the page's URL carrying both providers' addresses; the page is served", async () => {
      const primary = `http://127.0.0.1:${ports.primary}`;
      const backup = `http://127.0.0.1:${ports.backup}`;
      expect(printed).toContain(`fake image API: primary ${primary}, backup ${backup}`);
      const url = /open (\S+)/.exec(printed)?.[1] ?? "";
      const parsed = new URL(url);
      expect(parsed.origin).toBe(`http://127.0.0.1:${ports.page}`);
      expect(parsed.searchParams.get("primary")).toBe(primary);
      expect(parsed.searchParams.get("backup")).toBe(backup);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/<html/i);
    });

    it("the provider allows content-type and idempotency-key, exposes retry-after; flaky is every other 503 with Retry-After: 1; down drops", async () => {
      const primary = `http://127.0.0.1:${ports.primary}`;
      const preflight = await fetch(`${primary}/v1/images`, {
        method: "OPTIONS",
        headers: {
          origin: `http://127.0.0.1:${ports.page}`,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type, idempotency-key",
        },
      });
      expect(preflight.ok).toBe(true);
      const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
      expect(allowed).toContain("content-type");
      expect(allowed).toContain("idempotency-key");
      expect((preflight.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("retry-after");

      const mode = (m: string) => fetch(`${primary}/__mode`, { method: "POST", body: JSON.stringify({ mode: m }) });
      expect((await mode("flaky")).status).toBe(200);
      const answers: [number, string | null][] = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${primary}/v1/images`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "a lighthouse", steps: 1 }),
        });
        await res.arrayBuffer();
        answers.push([res.status, res.headers.get("retry-after")]);
      }
      expect(answers).toEqual([
        [503, "1"],
        [200, null],
        [503, "1"],
        [200, null],
      ]);
      expect((await mode("down")).status).toBe(200);
      const dropped = await fetch(`${primary}/v1/images`, { method: "POST", body: '{"prompt":"x"}' }).then(
        () => "answered",
        (e: Error) => e.name,
      );
      expect(dropped).toBe("TypeError");
      expect((await mode("ok")).status).toBe(200);
    });
  });
});

// The tarball must exist for everything above; a last check that what was installed is what `npm pack` made here.
it("the installed copy is this worktree's build (its README and its dist)", () => {
  expect(existsSync(inPkg("dist/index.js"))).toBe(true);
  expect(readme()).toBe(readFileSync(join(root, "README.md"), "utf8"));
  expect(readFileSync(inPkg("dist/index.js"), "utf8")).toBe(readFileSync(join(root, "dist/index.js"), "utf8"));
});
