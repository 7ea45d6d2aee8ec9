/**
 * Outside-in attack on docs/runtimes.md (where the library runs), docs/storycore-mapping.md (the StoryCore-Engine
 * error-handling guide mapped onto the API) and the claims of docs/architecture.md that can be checked from outside
 * (module scope, import direction, what each built entry carries).
 * Docs: docs/runtimes.md, every sentence: the table's rows (Node "22 (22.23.3) | its own process | every check; the
 * process must exit on its own", Deno "2 (2.9.6) | its own process (npm package `deno`), import map to `dist/` | …
 * exits on its own", Bun "1 (1.4.5) | its own process (npm package `bun`) | … exits on its own", happy-dom "21
 * (21.0.4)", workerd "≥ 2025-09-01"), "runs against the **built** package, imported by its name, in every runtime it
 * claims", "Deno's and Bun's `fetch` send no `Referer` at all (… those platforms drop it, as their plain `fetch`
 * does, and Bun's `Request` keeps no `referrer`)", "Deno's `Response` cannot be read once frozen (its first read
 * writes to it), so a transport that freezes its answers there gets the network error any unreadable answer gets;
 * Node and Bun serve it", "Bun sends no `content-type` with a string body (its own `fetch` and `Request` set none;
 * Node and Deno send `text/plain;charset=UTF-8`), through the library too, on the first request and a 307's
 * replay". docs/storycore-mapping.md, every sentence: the "Names" table (`ErrorHandlingSystem()` →
 * "`createResilience({ …, fallback: fallback([…]), degradation: degradation() })`", "`system.breaker("x")`,
 * `.execute(fn)`", "`system.fallback.chain("x").add(fn, { name, expectedQuality })`", "`system.degradation.adjust(p)`",
 * "`system.execute(fn, { breaker: "x" })`", "`chain.statistics()`, `system.health()`"), "Numbers kept" ("The five
 * degradation levels (`full` 100%, `high` 80%, `medium` 60%, `low` 40%, `minimal` 20%) with their quality
 * multipliers, resolution scales, step caps and feature tiers", "The parameter names the default rewriting rule
 * reads: `quality`, `resolution`, `steps`, `model`, `features`", "The trigger thresholds: error rate 0.1, response
 * time 30 s, memory 0.9, CPU 0.95"), and "As in that system, work run through `system.execute(fn)` counts in
 * `health()`'s `errorRate` and in the automatic degradation triggers, as every `resilience.fetch` call does" (with
 * docs/health-and-events.md: "… `debugInfo()`'s totals and failures (keyed by its `breaker`'s name, else
 * `"execute"`, with an empty `url`) and the degradation triggers, by the outcome of the work itself (a `fallback`
 * answering for it leaves it failed); a run its caller aborted is left out"). docs/architecture.md: "Imports point
 * down only: the entry folders (`fallback`, `degradation`, `ky`, `cloudflare`, `testing`) → `http` (its root → `send`
 * → `request`) → `policies` → `stores` → `core`, with no cycles among value imports", "One entry builds on another:
 * `cloudflare`'s proxy serves its chain routes with `fallback`'s chain router and endpoint checks (so `./cloudflare`
 * carries that code, and a Worker that imports both carries it once)", "The one exception is type-only: `send/`
 * names the layer's `PipelineParts` and `FetchLike`; types are erased at build time, so it adds no code and no load
 * order", "Nothing in `src/` imports a runtime built-in (`node:*`)", "Nothing at module scope creates a timer, an
 * `AbortController` or a promise", "Per-call state (…) goes down as arguments, never through module-level maps, save
 * two `WeakMap`s keyed by an object of the call's own … `request/call-request.ts`'s `replayDecisions` … and
 * `fallback/chain-router.ts`'s `chosenChains`", "a bundle that never imports `./fallback` or `./degradation` carries
 * none of their code", "zod (`zod/mini`) | runtime | … in the `./cloudflare` entry only", "src/testing … test clock
 * (@storycore/resilient-fetch/testing, and /testing/clock without MSW)", "dist/browser/ … without what only runs
 * outside browsers".
 * How: the BUILT package (`npm run build`, run here when dist/ is missing), imported by its name from a throw-away
 * project under the OS temp dir whose node_modules links to this worktree, in Node 22 (process.execPath), Deno and
 * Bun (node_modules/.bin/deno, node_modules/.bin/bun), each its own short process, against a node:http server on
 * 127.0.0.1 started here; in a Node child, `async_hooks` over the import of every entry of both builds (a promise or
 * timer whose creation stack names a dist file); in each runtime's child, `setTimeout`, `setInterval`,
 * `queueMicrotask`, `AbortSignal.timeout`/`any`, `Promise`'s statics and `AbortController` wrapped while the seven
 * entries load (a control call after the load must be seen). The built files' import graphs read from dist/ and the
 * source's import statements read from src/ as text (nothing internal imported). In this process: `createResilience`
 * (root), `fallback` (./fallback), `degradation`, `defaultLevels` (./degradation), `LEVEL_NAMES`, `adjustParameters`
 * (./policies), `TestClock` (./testing) for every clock, `httpUpstream` servers on 127.0.0.1.
 * Paths: (children) plain call, unread body, streamed body cancelled, a chain with a hedge (loser aborted), a JSON
 * body rewritten at `high`, a breaker that opens, a `kvStore` over a fake KV that opens, `execute` with a named
 * breaker, `retry(fn)`, `CircuitBreaker`, the ky client, a caller's abort, a freezing transport, a 307 replay, a
 * `referrer`; (this process) `execute` (with and without `breaker`, retries, `fallback`, an abort), the layer's
 * generic chain, `degradation.adjust`, plain calls with a JSON body.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both settled since, so plain `it`:
 * resilience-info.ts moved down into send/, and the page names the third `WeakMap`):
 * 1. docs/architecture.md "Imports point down only: … `http` (its root → `send` → `request`) … The one exception is
 *    type-only: `send/` names the layer's `PipelineParts` and `FetchLike`; types are erased at build time, so it adds
 *    no code and no load order." Observed: src/http/send/classify.ts has a VALUE import of the http root's
 *    `getResilienceInfo` (`import { getResilienceInfo } from "../resilience-info.ts"`, used by `maySendAgain` since
 *    commit ca5c9e7, "A layer's 429 or 503 after more than one attempt…"): `send/` loads code of the layer above it.
 *    Every other upward import of `send/` is type-only and names `PipelineParts` or `FetchLike`.
 * 2. docs/architecture.md "Per-call state (…) goes down as arguments, never through module-level maps, save two
 *    `WeakMap`s keyed by an object of the call's own … `replayDecisions` … and … `chosenChains`". Observed: a third
 *    module-level `WeakMap` carries per-call state down the fallback path: src/fallback/validate-response.ts
 *    `stoppedReads` (a call's answer → the reader of the clone whose body `validate` stopped reading, read back by
 *    `releaseAnswer` and `answerToGive`). (Beside it, src/core/linked-signal.ts keeps three `WeakMap`s of signal
 *    bookkeeping, `keptBy` keyed by a call's response or signal, and a dozen module-level `WeakSet`s mark a call's
 *    objects: `failedAfterRedirect`, `refusedHops`, `heardByHop`, `passedOver`, `heldBack`, `unsent`, …; those are
 *    not counted here.)
 *
 * Held (plain `it`):
 * - Node 22.23.3, Deno 2.9.6 and Bun 1.4.5 (the majors of the table, the exact "last checked" versions) each import
 *   all seven entries by the package's name, run a workload through every one of them (plain call, unread body,
 *   cancelled stream, a hedged chain, a rewrite at `high`, a breaker and a `kvStore` breaker that open, `execute`,
 *   `retry(fn)`, `CircuitBreaker`, ky, an abort) and exit 0 on their own within 2 s of their report.
 * - Module scope: importing every entry of dist/ and dist/browser/ in Node creates no promise, no timer (async_hooks)
 *   and no `AbortController`; in Node, Deno and Bun the wrapped constructors and statics see nothing while the entries
 *   load, and do see a control `retry(fn)` after.
 * - Deno and Bun send no `Referer`, through the library as through their plain fetch (Node sends the one given); Bun's
 *   `Request` keeps no `referrer`. A transport that freezes its answers gets a network error in Deno, where Node and
 *   Bun serve it. Bun sends no `content-type` with a string body, through the library on the first request and a
 *   307's replay as through its own fetch; Node and Deno send `text/plain;charset=UTF-8`.
 * - happy-dom is 21 (21.0.4) and test/workers/wrangler.toml's compatibility date is the table's workerd floor.
 * - Source: no `node:*` import in src/, no cycle among value imports, every cross-entry import is `cloudflare` →
 *   `fallback`; every upward import of `send/` but the one pinned is type-only, of `PipelineParts` or `FetchLike`.
 * - Built entries: the root (and ky) carry none of `fallback`'s (`tryEndpoints`) or `degradation`'s
 *   (`rewriteRequest`) code; `zod` is imported by `./cloudflare` only, `msw` by `./testing` only (not
 *   `/testing/clock`); the browser build carries no redirect follower; `./cloudflare` and `./fallback` share the one
 *   chunk that defines `tryEndpoints`.
 * - The mapping's names: one breaker and one chain per name, `add(fn, { name, expectedQuality })`, `statistics()` as
 *   in `health().fallback`, `degradation.adjust(p)`, `execute(fn, { breaker })` with retries.
 * - Numbers: the five levels and percentages, each row of the table through `adjust` and through a JSON body's five
 *   parameter names; the default thresholds (0.1, 30 000 ms, 0.9, 0.95) read back in `debugInfo()`.
 * - `execute` counts as a call does: once per call however many attempts (3 attempts → 1 call, 1 failure, keyed by
 *   the breaker's name, else `"execute"`, empty URL), in `health().errorRate` and `status` (`degraded` above 10%), a
 *   `fallback` answering leaves it failed, an aborted run is left out; 2 failing runs in 20 hold `full`, 3 in 21 step
 *   to `high`; runs of 30 000 ms hold `full`, of 30 001 ms step down. A named breaker's own `.execute` and a
 *   generic chain's `.execute` leave `errorRate` alone.
 *
 * Docs-silent (not pinned):
 * - docs/runtimes.md's reason for Deno's frozen `Response` ("its first read writes to it"): in Deno 2.9.6 a frozen
 *   fetched `Response`'s `text()`, `body` and `clone()` still work; its `headers` getter is what throws ("Cannot
 *   assign to read only property 'Symbol(serve fast status)'"), and a constructed one's body. The library reads the
 *   headers, so the documented outcome holds.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultLevels, degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { LEVEL_NAMES } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SRC = resolve(ROOT, "src");
const BIN = resolve(ROOT, "node_modules/.bin");
const ENTRIES = [
  "index.js",
  "fallback/index.js",
  "degradation/index.js",
  "policies/index.js",
  "ky/index.js",
  "cloudflare/index.js",
  "testing/index.js",
  "testing/clock.js",
];

const up = httpUpstream();
serveDuringFile(up);

// ---------------------------------------------------------------------------------------------------------------
// The children: one short process per runtime, importing the built package by its name.
// ---------------------------------------------------------------------------------------------------------------

const CHILD = `
const base = (typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2))[0];
const made = [];
const ours = () => /\\/dist\\//.test(new Error().stack ?? "");
const wrap = (obj, name) => {
  const real = obj[name];
  obj[name] = function (...a) { if (ours()) made.push(name); return real.apply(this, a); };
  return () => { obj[name] = real; };
};
const undo = [wrap(globalThis, "setTimeout"), wrap(globalThis, "setInterval"), wrap(globalThis, "queueMicrotask"),
  wrap(AbortSignal, "timeout"), wrap(AbortSignal, "any"), wrap(Promise, "resolve"), wrap(Promise, "reject"),
  wrap(Promise, "all"), wrap(Promise, "race"), wrap(Promise, "allSettled")];
const RealAC = globalThis.AbortController;
globalThis.AbortController = class extends RealAC { constructor() { super(); if (ours()) made.push("AbortController"); } };
const lib = await import("@storycore/resilient-fetch");
const fb = await import("@storycore/resilient-fetch/fallback");
const dg = await import("@storycore/resilient-fetch/degradation");
const pol = await import("@storycore/resilient-fetch/policies");
const kyE = await import("@storycore/resilient-fetch/ky");
const cf = await import("@storycore/resilient-fetch/cloudflare");
const tc = await import("@storycore/resilient-fetch/testing/clock");
const atLoad = made.slice();
await pol.retry(async ({ attempt }) => { if (attempt < 2) throw new Error("x"); }, { initialDelay: 1, jitter: "none" });
const control = made.slice(atLoad.length);
for (const u of undo) u();
globalThis.AbortController = RealAC;
const out = { atLoad, control };
out.version = typeof Deno !== "undefined" ? Deno.version.deno : typeof Bun !== "undefined" ? Bun.version : process.versions.node;
const kvData = new Map();
const kv = {
  async getWithMetadata(k) { return kvData.get(k) ?? { value: null, metadata: null }; },
  async put(k, v, o) { kvData.set(k, { value: v, metadata: o?.metadata ?? null }); },
};
const r = lib.createResilience({
  retry: { initialDelay: 5, maxDelay: 10, jitter: "none" },
  timeout: { attempt: 60000, total: 120000 },
  breaker: { failureThreshold: 2, timeout: 60000 },
  bulkhead: { maxConcurrent: 4, maxQueue: 4 },
  fallback: fb.fallback([{ name: "c", hedge: { delay: 20 },
    endpoints: [{ name: "slow", url: base + "/slow" }, { name: "ok", url: base + "/ok" }] }]),
  degradation: dg.degradation(),
});
const shared = lib.createResilience({ store: cf.kvStore(kv), retry: false, breaker: { failureThreshold: 1, timeout: 60000 } });
const other = base.replace("127.0.0.1", "localhost");
out.plain = (await r.fetch(base + "/ok")).status;
out.unread = (await r.fetch(base + "/big")).status;
{ const res = await r.fetch(base + "/stream"); const rd = res.body.getReader(); await rd.read(); await rd.cancel(); out.stream = res.status; }
out.hedge = await (await r.fetch(base + "/slow/x")).text();
r.degradation.degrade("test");
out.rewritten = await (await r.fetch(base + "/echo-body", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ steps: 50, quality: 1 }) })).text();
out.fails = (await r.fetch(base + "/503")).status;
out.open = await r.fetch(base + "/503").then((x) => x.status, (e) => e.name);
out.kvOpen = (await shared.fetch(other + "/503")).status;
out.kvRefused = await shared.fetch(other + "/503").then((x) => x.status, (e) => e.name);
out.exec = await r.execute(async ({ attempt }) => { if (attempt < 2) throw new Error("x"); return attempt; }, { breaker: "gen" });
out.retry = await pol.retry(async ({ attempt }) => { if (attempt < 2) throw new Error("x"); return attempt; }, { initialDelay: 5, jitter: "none" });
const clock = new tc.TestClock();
const cb = new pol.CircuitBreaker("k", { failureThreshold: 1, successThreshold: 1, timeout: 1000, halfOpenMaxCalls: 1,
  timeWindow: 30000, probeTimeout: 1000, failureRate: undefined, minimumCalls: 100 }, clock);
await cb.execute(async () => { throw new Error("x"); }).catch(() => {});
out.cb = cb.state;
out.ky = await kyE.createClient({ resilience: { retry: false } }).get(base + "/ok").text();
const ac = new AbortController();
const pending = lib.createResilience({ retry: false }).fetch(base + "/hang", { signal: ac.signal }).catch((e) => e.name);
setTimeout(() => ac.abort(), 20);
out.aborted = await pending;
const r2 = lib.createResilience({ retry: false });
const header = async (p, name) => (await p.then((x) => x.json()))[name] ?? null;
out.frozen = await lib.createResilience({ retry: false, fetch: async (i, init) => Object.freeze(await fetch(i, init)) })
  .fetch(base + "/ok").then((x) => x.text(), (e) => e.name + ": " + e.message);
out.contentType = await header(r2.fetch(base + "/echo", { method: "POST", body: "hi" }), "content-type");
out.contentType307 = await header(r2.fetch(base + "/r307", { method: "POST", body: "hi" }), "content-type");
out.plainContentType = await header(fetch(base + "/echo", { method: "POST", body: "hi" }), "content-type");
out.requestContentType = new Request(base, { method: "POST", body: "hi" }).headers.get("content-type");
out.referer = await header(r2.fetch(base + "/echo", { referrer: base + "/page" }), "referer");
out.plainReferer = await header(fetch(base + "/echo", { referrer: base + "/page" }), "referer");
out.requestReferrer = new Request(base + "/echo", { referrer: base + "/page" }).referrer;
console.log(JSON.stringify(out));
`;

/** Importing every entry of one build, with async_hooks watching for a promise or timer made by a dist file. */
const HOOKS_CHILD = `
import { createHook } from "node:async_hooks";
const dir = process.argv[2];
const entries = JSON.parse(process.argv[3]);
const seen = [];
createHook({ init(_id, type) {
  const stack = new Error().stack ?? "";
  if (stack.includes(dir + "/")) seen.push(type);
} }).enable();
const made = [];
const RealAC = globalThis.AbortController;
globalThis.AbortController = class extends RealAC { constructor() { super(); if ((new Error().stack ?? "").includes(dir + "/")) made.push("AbortController"); } };
const modules = [];
for (const e of entries) modules.push(await import(dir + "/" + e));
const atLoad = seen.slice();
await modules[3].retry(async ({ attempt }) => { if (attempt < 2) throw new Error("x"); }, { initialDelay: 1, jitter: "none" });
console.log(JSON.stringify({ atLoad, made, control: seen.slice(atLoad.length) }));
`;

interface ChildReport {
  atLoad: string[];
  control: string[];
  version: string;
  plain: number;
  unread: number;
  stream: number;
  hedge: string;
  rewritten: string;
  fails: number;
  open: string;
  kvOpen: number;
  kvRefused: string;
  exec: number;
  retry: number;
  cb: string;
  ky: string;
  aborted: string;
  frozen: string;
  contentType: string | null;
  contentType307: string | null;
  plainContentType: string | null;
  requestContentType: string | null;
  referer: string | null;
  plainReferer: string | null;
  requestReferrer: string;
}
type Runtime = "node" | "deno" | "bun";
interface Run {
  report: ChildReport;
  code: number | null;
  exitLagMs: number;
}

let server: Server;
let base = "";
let project = "";
const runs = new Map<Runtime, Promise<Run>>();

function runChild(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ last: unknown; code: number | null; exitLagMs: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
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
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(kill);
      try {
        resolvePromise({
          last: JSON.parse(out.trim().split("\n").pop() ?? ""),
          code,
          exitLagMs: Date.now() - reportedAt,
        });
      } catch {
        reject(new Error(`${command} printed no report (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

const COMMAND: Record<Runtime, (script: string) => [string, string[]]> = {
  node: (script) => [process.execPath, [script]],
  deno: (script) => [resolve(BIN, "deno"), ["run", "-A", "--no-lock", script]],
  bun: (script) => [resolve(BIN, "bun"), [script]],
};

function run(runtime: Runtime): Promise<Run> {
  const cached = runs.get(runtime);
  if (cached) return cached;
  const [command, args] = COMMAND[runtime](join(project, "child.mjs"));
  const started = runChild(command, [...args, base], project).then(({ last, code, exitLagMs }) => ({
    report: last as ChildReport,
    code,
    exitLagMs,
  }));
  runs.set(runtime, started);
  return started;
}

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/index.js")) || !existsSync(resolve(ROOT, "dist/browser/index.js"))) {
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore", timeout: 170_000 });
  }
  server = createServer((req, res) => {
    const url = req.url ?? "";
    const body: Buffer[] = [];
    req.on("data", (c: Buffer) => body.push(c));
    req.on("end", () => {
      if (url.startsWith("/slow")) {
        const t = setTimeout(() => res.end("slow"), 2_000);
        res.on("close", () => clearTimeout(t));
      } else if (url.startsWith("/ok")) res.end("ok");
      else if (url === "/big") res.end("x".repeat(1 << 20));
      else if (url === "/stream") {
        res.write("a");
        const t = setTimeout(() => res.end("b"), 3_000);
        res.on("close", () => clearTimeout(t));
      } else if (url === "/503") {
        res.statusCode = 503;
        res.end("no");
      } else if (url === "/echo") res.end(JSON.stringify(req.headers));
      else if (url === "/echo-body") res.end(Buffer.concat(body));
      else if (url === "/r307") {
        res.statusCode = 307;
        res.setHeader("location", "/echo");
        res.end();
      } // "/hang": never answered
    });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  project = mkdtempSync(join(tmpdir(), "rtm43-"));
  mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
  symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(project, "child.mjs"), CHILD);
  writeFileSync(join(project, "hooks.mjs"), HOOKS_CHILD);
  for (const runtime of ["node", "deno", "bun"] as const) run(runtime).catch(() => {});
}, 180_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  if (project) rmSync(project, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Reading src/ and dist/ as text.
// ---------------------------------------------------------------------------------------------------------------

function walk(dir: string, ext: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...walk(path, ext));
    else if (entry.name.endsWith(ext)) files.push(path);
  }
  return files;
}

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
  names: string[];
}

/** Every relative import or re-export in src/, with whether it is type-only and what it names. */
function sourceEdges(): { edges: Edge[]; bare: Array<[string, string]> } {
  const edges: Edge[] = [];
  const bare: Array<[string, string]> = [];
  for (const file of walk(SRC, ".ts")) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/gms)) {
      const spec = m[3] as string;
      if (!spec.startsWith(".")) {
        bare.push([relative(SRC, file), spec]);
        continue;
      }
      const clause = (m[2] as string).trim();
      const inner = /^\{([^}]*)\}$/.exec(clause)?.[1];
      const parts =
        inner === undefined
          ? [clause]
          : inner
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean);
      const typeOnly = Boolean(m[1]) || (inner !== undefined && parts.every((p) => p.startsWith("type ")));
      edges.push({
        from: relative(SRC, file),
        to: relative(SRC, resolve(dirname(file), spec)),
        typeOnly,
        names: parts.map((p) => p.replace(/^type\s+/, "").split(/\s+as\s+/)[0] as string),
      });
    }
    for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g))
      bare.push([relative(SRC, file), m[1] as string]);
  }
  return { edges, bare };
}

/** The layer of a source file: higher imports lower only. */
function layer(file: string): { name: string; rank: number } {
  const [top, sub] = file.split("/");
  if (file === "index.ts") return { name: "root entry", rank: 6 };
  if (["fallback", "degradation", "ky", "cloudflare", "testing"].includes(top as string))
    return { name: top as string, rank: 6 };
  if (top === "http") {
    if (sub === "send") return { name: "http/send", rank: 4 };
    if (sub === "request") return { name: "http/request", rank: 3.5 };
    return { name: "http", rank: 5 };
  }
  return { name: top as string, rank: { policies: 3, stores: 2, core: 1 }[top as string] ?? 0 };
}

/** The files an entry of dist/ loads, and the bare specifiers they import. */
function distClosure(entry: string): { files: string[]; imports: string[]; text: string } {
  const seen = new Set<string>();
  const imports = new Set<string>();
  const stack = [resolve(ROOT, entry)];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|[;\n}])\s*(?:import|export)\s*(?:[^"'`;]*?\s*from\s*)?["']([^"']+)["']/g)) {
      const spec = m[1] as string;
      if (spec.startsWith(".")) stack.push(resolve(dirname(file), spec));
      else imports.add(spec);
    }
  }
  const files = [...seen];
  return { files, imports: [...imports], text: files.map((f) => readFileSync(f, "utf8")).join("\n") };
}

const defines = (text: string, fn: string): boolean => new RegExp(`\\bfunction ${fn}\\b`).test(text);

// ---------------------------------------------------------------------------------------------------------------

describe("docs/architecture.md, checked from outside", () => {
  it("send/ reaches the layer above it by types only (PipelineParts, FetchLike)", () => {
    const { edges } = sourceEdges();
    const upFromSend = edges.filter(
      (e) => e.from.startsWith("http/send/") && layer(e.to).rank > layer(e.from).rank && !e.to.startsWith("http/send/"),
    );
    // Observed: http/send/classify.ts → http/resilience-info.ts, a value import of getResilienceInfo.
    expect(upFromSend.filter((e) => !e.typeOnly).map((e) => `${e.from} → ${e.to}`)).toEqual([]);
  });

  it("every other upward import of send/ is type-only and names PipelineParts or FetchLike", () => {
    const { edges } = sourceEdges();
    const upFromSend = edges.filter(
      (e) => e.from.startsWith("http/send/") && layer(e.to).rank > layer(e.from).rank && !e.to.startsWith("http/send/"),
    );
    const typeOnly = upFromSend.filter((e) => e.typeOnly);
    expect(typeOnly.length).toBeGreaterThan(0);
    expect(new Set(typeOnly.flatMap((e) => e.names))).toEqual(new Set(["PipelineParts", "FetchLike"]));
    // No value import (the one first pinned above moved down: send/resilience-info.ts).
    expect(upFromSend.filter((e) => !e.typeOnly).map((e) => e.to)).toEqual([]);
  });

  it("imports point down elsewhere, entries meet only cloudflare → fallback, no value cycles, no node:*", () => {
    const { edges, bare } = sourceEdges();
    expect(edges.length).toBeGreaterThan(200);
    const upward = edges.filter((e) => {
      const a = layer(e.from);
      const b = layer(e.to);
      if (a.rank === 6 && b.rank === 6) return a.name !== b.name;
      return b.rank > a.rank && !e.from.startsWith("http/send/");
    });
    expect(new Set(upward.map((e) => `${layer(e.from).name} → ${layer(e.to).name}`))).toEqual(
      new Set(["cloudflare → fallback"]),
    );
    expect(bare.filter(([, spec]) => spec.startsWith("node:"))).toEqual([]);
    expect(new Set(bare.map(([, spec]) => spec))).toEqual(new Set(["zod/mini", "ky", "msw"]));
    const graph = new Map<string, string[]>();
    for (const e of edges) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (node: string, path: string[]): void => {
      state.set(node, 1);
      for (const next of graph.get(node) ?? []) {
        if (state.get(next) === 1) cycles.push([...path.slice(path.indexOf(next)), next].join(" → "));
        else if (!state.has(next)) visit(next, [...path, next]);
      }
      state.set(node, 2);
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node, [node]);
    expect(cycles).toEqual([]);
  });

  it("per-call state rides in four module-level WeakMaps only: replayDecisions, attemptKeys, chosenChains, stoppedReads (and the realm's beneath, per layer)", () => {
    const maps: string[] = [];
    for (const file of walk(SRC, ".ts")) {
      const rel = relative(SRC, file);
      if (rel.startsWith("core/")) continue; // linked-signal.ts's signal bookkeeping, noted in the header
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/^(?:export )?(?:const|let|var) (\w+)\b[^=\n]*= new WeakMap\b/gm))
        maps.push(m[1] as string);
    }
    // First observed: fallback/validate-response.ts's `stoppedReads` (a call's answer → its clone's reader),
    // which the page did not name; it names all three now.
    // Besides them, http/global-fetch.ts's `beneathOf`, per layer rather than per call, which the page named too;
    // since the forty-eighth session it is core/realm-shared.ts's `beneath`, shared by every copy of the package.
    // The fiftieth session added call-request.ts's `attemptKeys` (an `init` → its attempt's breaker key, for the
    // redirect follower), and the page names it.
    // The fifty-seventh session made replay-body.ts's `failedSources` a WeakMap (a failed stream → what its source
    // threw), and the page names it.
    expect(maps.sort()).toEqual(["attemptKeys", "chosenChains", "failedSources", "replayDecisions", "stoppedReads"]);
    expect(readFileSync(resolve(SRC, "core/realm-shared.ts"), "utf8")).toMatch(/beneath: new WeakMap\(\)/);
    expect(readFileSync(resolve(SRC, "../docs/architecture.md"), "utf8")).toMatch(
      /per layer rather\s+than per call, a `WeakMap` \(`beneath`/,
    );
  });

  it("Node: importing every entry of both builds makes no promise, timer or AbortController", async () => {
    for (const build of ["dist", "dist/browser"]) {
      const { last, code } = await runChild(
        process.execPath,
        [join(project, "hooks.mjs"), resolve(ROOT, build), JSON.stringify(ENTRIES)],
        project,
      );
      const report = last as { atLoad: string[]; made: string[]; control: string[] };
      expect(code, build).toBe(0);
      expect(report.atLoad, build).toEqual([]);
      expect(report.made, build).toEqual([]);
      // The hook does see the library's own: a retry(fn) after the load makes promises and a Timeout.
      expect(report.control, build).toContain("PROMISE");
      expect(report.control, build).toContain("Timeout");
    }
  }, 60_000);

  it("Node, Deno, Bun: the entries' module scope calls no timer, AbortController or Promise static", async () => {
    for (const runtime of ["node", "deno", "bun"] as const) {
      const { report } = await run(runtime);
      expect(report.atLoad, runtime).toEqual([]);
      expect(report.control, runtime).toContain("setTimeout");
    }
  }, 60_000);

  it("each built entry carries what the docs say, and no more", () => {
    for (const build of ["dist", "dist/browser"]) {
      const c = (entry: string) => distClosure(`${build}/${entry}`);
      const root = c("index.js");
      expect(defines(root.text, "createResilience"), build).toBe(true);
      for (const entry of ["index.js", "ky/index.js", "policies/index.js"]) {
        const e = c(entry);
        expect(defines(e.text, "tryEndpoints"), `${build}/${entry}`).toBe(false);
        expect(defines(e.text, "rewriteRequest"), `${build}/${entry}`).toBe(false);
      }
      expect(defines(c("fallback/index.js").text, "tryEndpoints")).toBe(true);
      expect(defines(c("degradation/index.js").text, "rewriteRequest")).toBe(true);
      for (const entry of ENTRIES) {
        const { imports } = c(entry);
        expect(imports.includes("zod/mini") || imports.includes("zod"), `${build}/${entry} zod`).toBe(
          entry === "cloudflare/index.js",
        );
        expect(imports.includes("msw"), `${build}/${entry} msw`).toBe(entry === "testing/index.js");
      }
      // cloudflare carries fallback's code, in the very chunk fallback loads: a Worker importing both has it once.
      const where = (entry: string) => c(entry).files.filter((f) => defines(readFileSync(f, "utf8"), "tryEndpoints"));
      expect(where("cloudflare/index.js"), build).toHaveLength(1);
      expect(where("cloudflare/index.js"), build).toEqual(where("fallback/index.js"));
      // The browser build leaves the redirect follower out; the other has it.
      expect(defines(root.text, "followRedirects"), build).toBe(build === "dist");
    }
  });
});

describe("docs/runtimes.md: the built package in Node, Deno and Bun", () => {
  it("each imports every entry by name, runs every entry's work and exits on its own", async () => {
    // Deno and Bun are the lockfile's; npm's node@22 takes its patches as they come, so Node is its major.
    const expected = { node: /^22\./, deno: /^2\.9\.6$/, bun: /^1\.4\.5$/ };
    for (const runtime of ["node", "deno", "bun"] as const) {
      const { report, code, exitLagMs } = await run(runtime);
      expect(report.version, runtime).toMatch(expected[runtime]);
      expect(code, runtime).toBe(0);
      expect(exitLagMs, runtime).toBeLessThan(2_000);
      expect(report, runtime).toMatchObject({
        plain: 200,
        unread: 200,
        stream: 200,
        hedge: "ok",
        fails: 503,
        open: "CircuitOpenError",
        kvOpen: 503,
        kvRefused: "CircuitOpenError",
        exec: 2,
        retry: 2,
        cb: "open",
        ky: "ok",
        aborted: "AbortError",
      });
      // At `high` the default rule keeps steps (no cap) and multiplies quality by 0.9.
      expect(JSON.parse(report.rewritten), runtime).toEqual({ steps: 50, quality: 0.9 });
    }
  }, 60_000);

  it("Deno and Bun send no Referer, through the library as through their fetch; Bun's Request keeps none", async () => {
    const node = (await run("node")).report;
    expect(node.referer).toBe(`${base}/page`);
    expect(node.plainReferer).toBe(`${base}/page`);
    for (const runtime of ["deno", "bun"] as const) {
      const { report } = await run(runtime);
      expect(report.referer, runtime).toBeNull();
      expect(report.plainReferer, runtime).toBeNull();
    }
    expect((await run("bun")).report.requestReferrer).toBe("");
    expect((await run("deno")).report.requestReferrer).toBe(`${base}/page`);
  }, 60_000);

  it("a transport that freezes its answers: a network error in Deno, served in Node and Bun", async () => {
    expect((await run("node")).report.frozen).toBe("ok");
    expect((await run("bun")).report.frozen).toBe("ok");
    expect((await run("deno")).report.frozen).toMatch(/^RetryExhaustedError: .*network error/);
  }, 60_000);

  it("Bun sends no content-type with a string body, first request and 307 replay; Node and Deno send text/plain", async () => {
    for (const runtime of ["node", "deno"] as const) {
      const { report } = await run(runtime);
      expect([report.contentType, report.contentType307, report.plainContentType], runtime).toEqual([
        "text/plain;charset=UTF-8",
        "text/plain;charset=UTF-8",
        "text/plain;charset=UTF-8",
      ]);
    }
    const bun = (await run("bun")).report;
    expect([bun.contentType, bun.contentType307, bun.plainContentType, bun.requestContentType]).toEqual([
      null,
      null,
      null,
      null,
    ]);
  }, 60_000);

  it("the table's happy-dom and workerd rows match what the project runs", () => {
    const happyDom = JSON.parse(readFileSync(resolve(ROOT, "node_modules/happy-dom/package.json"), "utf8")) as {
      version: string;
    };
    expect(happyDom.version).toBe("21.0.4");
    const compat = /compatibility_date\s*=\s*"([^"]+)"/.exec(
      readFileSync(resolve(ROOT, "test/workers/wrangler.toml"), "utf8"),
    )?.[1];
    const row = readFileSync(resolve(ROOT, "docs/runtimes.md"), "utf8")
      .split("\n")
      .find((l) => l.startsWith("| workerd"));
    expect(row).toContain(`≥ ${compat} `);
  });
});

describe("docs/storycore-mapping.md: the guide's concepts on the layer", () => {
  const quiet = { cpuUsage: 1, memoryUsage: 1 }; // the Node process's own readings stay out of the level

  it("Names: breaker, fallback.chain(…).add, degradation.adjust, execute with a breaker, statistics and health", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
    const cb = system.breaker("hunyuan");
    expect(system.breaker("hunyuan")).toBe(cb);
    await expect(cb.execute(async () => 7)).resolves.toBe(7);
    const chain = system.fallback.chain("video");
    expect(system.fallback.chain("video")).toBe(chain);
    chain
      .add(() => Promise.reject(new Error("GPU busy")), { name: "hunyuan_premium", expectedQuality: 1 })
      .add(async (p: unknown) => `wan:${String(p)}`, { name: "wan_standard", expectedQuality: 0.8 });
    await expect(chain.execute("scene")).resolves.toBe("wan:scene");
    expect(chain.statistics().lastSuccessfulFallback).toBe("wan_standard");
    expect(system.health().fallback.video).toEqual(chain.statistics());
    system.degradation.setLevel("medium");
    expect(system.degradation.adjust({ quality: 1.0, resolution: "1080p", steps: 50, model: "premium" })).toEqual({
      quality: 0.8,
      resolution: "720p",
      steps: 30,
      model: "standard",
    });
    let n = 0;
    const work = system.execute(
      async () => {
        n++;
        if (n < 3) throw new Error("flaky");
        return n;
      },
      { breaker: "hunyuan" },
    );
    await expect(clock.run(work)).resolves.toBe(3);
    expect(Object.keys(system.health().breakers)).toContain("hunyuan");
  });

  it("Numbers kept: five levels, their percentages and every row through adjust and a JSON body", async () => {
    expect([...LEVEL_NAMES]).toEqual(["full", "high", "medium", "low", "minimal"]);
    const params = {
      quality: 1,
      resolution: "1024x1024",
      steps: 50,
      model: "premium",
      features: ["core", "enhancements", "basic", "essential"],
    };
    // The table in docs/degradation.md, applied to `params`: quality × multiplier, a WxH scaled and floored to 8,
    // steps capped, model moved `model step` rungs down premium → standard → basic, features kept to the tiers.
    const rows = {
      full: [100, { ...params }],
      high: [
        80,
        { quality: 0.9, resolution: "968x968", steps: 50, model: "premium", features: ["core", "enhancements"] },
      ],
      medium: [60, { quality: 0.8, resolution: "920x920", steps: 30, model: "standard", features: ["core"] }],
      low: [40, { quality: 0.6, resolution: "816x816", steps: 20, model: "basic", features: ["basic"] }],
      minimal: [20, { quality: 0.4, resolution: "712x712", steps: 10, model: "basic", features: ["essential"] }],
    } as const;
    up.on((h) => h.res.end(h.body));
    for (const name of LEVEL_NAMES) {
      const [percentage, expected] = rows[name];
      const system = createResilience({ retry: false, degradation: degradation({ triggers: quiet }) });
      system.degradation.setLevel(name);
      expect(system.degradation.currentLevel().percentage, name).toBe(percentage);
      expect(system.degradation.adjust(params), name).toEqual(expected);
      const sent = await (
        await system.fetch(`${up.base}/gen`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(params),
        })
      ).json();
      expect(sent, name).toEqual(expected);
    }
    expect(defaultLevels.medium).toMatchObject({ qualityMultiplier: 0.8, resolutionScale: 0.9, maxSteps: 30 });
  });

  it('execute counts once per call (not per attempt), keyed by its breaker or "execute", with an empty url', async () => {
    const clock = new TestClock();
    const system = createResilience({ clock });
    const failing = system.execute(() => Promise.reject(new Error("GPU lost")), { breaker: "gen" });
    expect((await rejection(clock.run(failing))) as Error).toMatchObject({ name: "RetryExhaustedError" });
    await rejection(system.execute(() => Promise.reject(new Error("once")), { retry: false }));
    const info = system.debugInfo();
    expect(info.totals).toMatchObject({ calls: 2, failures: 2 });
    expect(info.recentErrors.map((f) => [f.key, f.url])).toEqual([
      ["gen", ""],
      ["execute", ""],
    ]);
    expect(system.health().errorRate).toBe(1);
  });

  it("execute: a fallback answering leaves it failed; an aborted run is left out; 1 in 10 healthy, 2 in 11 degraded", async () => {
    const clock = new TestClock();
    const system = createResilience({ clock, retry: false });
    await expect(system.execute(() => Promise.reject(new Error("x")), { fallback: () => "spare" })).resolves.toBe(
      "spare",
    );
    const controller = new AbortController();
    const aborted = system.execute(() => new Promise(() => {}), { signal: controller.signal });
    const reason = new Error("caller left");
    controller.abort(reason);
    expect(await rejection(aborted)).toBe(reason);
    for (let i = 0; i < 9; i++) await system.execute(async () => i);
    expect(system.debugInfo().totals).toMatchObject({ calls: 10, failures: 1 });
    expect(system.health()).toMatchObject({ errorRate: 0.1, status: "healthy" });
    await rejection(system.execute(() => Promise.reject(new Error("y"))));
    expect(system.health().status).toBe("degraded");
  });

  async function runsThenOne(
    failures: number,
    oks: number,
    durationMs: number,
  ): Promise<{ level: string; errorRate: number }> {
    const clock = new TestClock(1_000_000);
    const system = createResilience({ clock, retry: false, degradation: degradation({ triggers: quiet }) });
    const runs: Array<Promise<unknown>> = [];
    for (let i = 0; i < failures + oks; i++) {
      runs.push(
        system
          .execute(
            () =>
              new Promise((resolveRun, rejectRun) =>
                clock.setTimer(() => (i < failures ? rejectRun(new Error("engine")) : resolveRun(i)), durationMs),
              ),
          )
          .catch(() => {}),
      );
    }
    await clock.advance(durationMs);
    await Promise.all(runs);
    await clock.advance(1_001); // the triggers are evaluated at most once a second, as runs settle
    await system.execute(async () => "one more");
    return { level: system.degradation.currentLevel().name, errorRate: system.health().errorRate };
  }

  it("execute feeds the error-rate trigger: 2 failing in 20 hold full, 3 in 21 step to high", async () => {
    expect(await runsThenOne(2, 17, 0)).toEqual({ level: "full", errorRate: 0.1 });
    expect((await runsThenOne(3, 17, 0)).level).toBe("high");
  });

  it("execute feeds the response-time trigger: runs of 30 000 ms hold full, 30 001 ms step down", async () => {
    expect((await runsThenOne(0, 20, 30_000)).level).toBe("full");
    expect((await runsThenOne(0, 20, 30_001)).level).toBe("high");
  });

  it("a named breaker's own execute and a generic chain's execute leave errorRate alone", async () => {
    const system = createResilience({ retry: false, fallback: fallback([]) });
    await rejection(system.breaker("b").execute(() => Promise.reject(new Error("x"))));
    const chain = system.fallback.chain("c").add(() => Promise.reject(new Error("x")), { name: "only" });
    await rejection(chain.execute(undefined));
    expect(system.health().errorRate).toBe(0);
    expect(system.debugInfo().totals.calls).toBe(0);
  });
});
