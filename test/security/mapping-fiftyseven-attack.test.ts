/**
 * Outside-in attack on docs/architecture.md (the tree it describes), docs/storycore-mapping.md (each row, through the
 * built package), the README's "Upgrading from 0.1" note with the CHANGELOG migration section it points to, the
 * README's entries table and `browser` condition, and examples/storycore-parity.
 *
 * Docs:
 * - docs/architecture.md: "Imports point down only: the entry folders (`fallback`, `degradation`, `ky`,
 *   `cloudflare`, `testing`) → `http` (its root → `send` → `request`) → `policies` → `stores` → `core`, with no
 *   cycles among value imports. One entry builds on another: `cloudflare`'s proxy serves its chain routes with
 *   `fallback`'s chain router and endpoint checks … The one exception is type-only: `send/` names the layer's
 *   `PipelineParts` and `FetchLike`"; "src/stores the one store contract (breaker-store.ts)"; "breaker registry";
 *   "Where to change how retries wait: `src/policies/backoff.ts` (the delays) and `src/http/send/retry-decision.ts`
 *   (which of them, `Retry-After`, the budget)."; "Per-call state (the deadline, the attempt count, the parsed JSON
 *   body) goes down as arguments, never through module-level maps, save four `WeakMap`s keyed by an object of the
 *   call's own … `replayDecisions` and `attemptKeys` … `chosenChains` … `stoppedReads` … and `core/linked-signal.ts`
 *   keeps the links between signals."; "`core/realm-shared.ts`, one object per realm under a registered symbol, made
 *   at first use"; "`getResilienceInfo` reads a registered symbol as well."; the layout's lists ("examples/ browser
 *   (Vite; npm run example:browser), node, sdk-fetch, storycore-parity (npm run example:…), worker", "scripts/
 *   check-node.cjs (refuses an old Node in one line before npm run demo, npm test and the examples' npm scripts),
 *   check-snippets.ts", "test/ mirrors src/ (core, policies, http, cloudflare, testing), plus security/, soak/,
 *   runtimes/ …, workers/ …, demo/, examples/ … and tooling/"); "dist/ for Node, Deno, Bun and workerd, and
 *   dist/browser/ (the `browser` export condition)".
 * - docs/storycore-mapping.md: every row of "Names" and "The five degradation levels (`full` 100%, `high` 80%,
 *   `medium` 60%, `low` 40%, `minimal` 20%) with their quality multipliers, resolution scales, step caps and feature
 *   tiers: the table in [degradation](degradation.md)."
 * - README.md: "**Upgrading from 0.1**: wrap the 0.1 `fallback` array and `degradation` object in `fallback([…])` and
 *   `degradation({…})` from their entries (the old shapes are a `ConfigError` that says so), import `retry`,
 *   `CircuitBreaker` and the other generic policies from `…/policies`, rename `sensitiveHeaders` to
 *   `crossOriginHeaders` …, and note the breaker's new defaults"; "a bundler building for browsers picks
 *   `dist/browser` through the package's `browser` export condition … without … the redirect follower"; "Node, Deno,
 *   Bun and Workers (the `workerd` and `worker` conditions) get the full build."
 * - CHANGELOG.md (migrating from 0.1): "`resilience.fallback` and `resilience.degradation` are `undefined` without
 *   their stage (typed so …)"; "a 0.1 `breaker: { failureThreshold: 5 }` now opens after 5 failures in a row, and no
 *   longer on 5 failures among successes"; "`retry`, `CircuitBreaker`, `Bulkhead`, `RetryBudget`, `FallbackChain`,
 *   `transition`, `initialBreakerState`, `nextLevel`, `initialLevelState`, `backoffDelay`, `exponentialDelay`,
 *   `adjustParameters`, `defaultLevels` and `systemClock` import from `@storycore/resilient-fetch/policies`;
 *   `defaultLevels` also from `…/degradation`, and `GracefulDegradation` there as a type only"; "`parseRetryAfter` is
 *   internal. The root exports `createResilience`, `getResilienceInfo`, `memoryStore`, the errors and their guards,
 *   and types."; "`BreakerStoreLike` is `BreakerStore` …; the old name stays as a deprecated alias."
 *
 * How: src/**\/*.ts read with node:fs and parsed with `typescript`'s parser (import/export specifiers, value or
 * type-only; module-level declarations). `npm run build` in this worktree, then fresh `node` processes importing the
 * package by its own name (self-reference through package.json "exports") with no condition, `--conditions=browser`,
 * `workerd` and `worker`. In-process: `createResilience`, `getResilienceInfo` (root), `fallback`, `degradation`,
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); one node:http server on 127.0.0.1.
 *
 * Paths: plain call (breaker defaults), `createClient`, `resilientProxy` (0.1 shapes), generic work (`execute`,
 * named breakers, layer chains, `adjust`) through dist and dist/browser.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-seventh session, so plain
 * `it`, the page corrected and the tests asserting the corrected sentences):
 * 1. "Where to change how retries wait: `src/policies/backoff.ts` (the delays) and `src/http/send/retry-decision.ts`
 *    (which of them, `Retry-After`, the budget)." Observed: `resilience.execute` (http/execute.ts → `retryChecked`)
 *    and `retry()` pick their delay and spend the budget in src/policies/retry.ts (`budget.tryRetry()`,
 *    `backoffDelay(n, …)` in its `next`); a change in retry-decision.ts leaves a layer's `execute` waiting as before.
 * 2. "never through module-level maps, save four `WeakMap`s … and `core/linked-signal.ts` keeps the links between
 *    signals." Observed: two more module-level `WeakMap`s: src/http/send/resilience-info.ts `unextensible` (a frozen
 *    Response → its call's `ResilienceInfo`, attempt count included) and src/core/platform-signal.ts `followers` (a
 *    caller's foreign signal → its follower).
 * 3. The layout's folder lists. Observed: examples/ has `recipes` (unlisted; the dependency table names it);
 *    scripts/ has check-links.ts (`npm run test:links`); test/ has browser/, recipes/, user-project/ and the src
 *    mirrors stores/, fallback/, degradation/, ky/, none of them named.
 *
 * Held (plain `it`):
 * - one folder per entry (every "exports" subpath is src/<entry>/index.ts, testing/clock src/testing/clock.ts);
 *   every top-level src folder is an entry or a named layer; every file the page names exists where it says.
 * - imports point down only; the only sideways value imports are cloudflare/resilient-proxy.ts → fallback's chain
 *   router, endpoint request, rules and stage; the only upward ones are send/ → `PipelineParts`, `FetchLike`
 *   (type-only); no cycles among value imports.
 * - one store contract (`interface BreakerStore` only in stores/breaker-store.ts, every store typed from it); one
 *   breaker registry (class in policies/breaker-registry.ts, made only in http/create-resilience.ts, the only maker
 *   of `CircuitBreaker`s).
 * - the realm object appears under `Symbol.for("@storycore/resilient-fetch/realm@1")` at first use, not at import;
 *   `getResilienceInfo` reads `Symbol.for("@storycore/resilient-fetch/info")`.
 * - `demo`, `test`, `dev:worker` and every `example:*` run check-node.cjs first.
 * - migration: the 0.1 chain array, degradation object and `sensitiveHeaders` are `ConfigError`s naming what to do
 *   on `createResilience`, `createClient` and `resilientProxy` (which sends chains to its routes); the wrapped shapes
 *   are taken on all three; no stage → `fallback`/`degradation`/`fallbackChain` undefined (and typed so).
 * - `breaker: { failureThreshold: 5 }`: 5 failures among successes leave the host closed; 5 in a row open it.
 * - exports map: every entry resolves to dist/… by default and under `workerd`/`worker`, to dist/browser/… under
 *   `browser`; the 14 CHANGELOG names are values of ./policies and none of the root; `defaultLevels` of ./degradation
 *   equals ./policies'; `GracefulDegradation` and `parseRetryAfter` are no runtime export; the root's value exports
 *   are exactly `createResilience`, `getResilienceInfo`, `memoryStore`, the errors and guards; the d.ts files
 *   declare the moved names, `GracefulDegradation` and the `@deprecated` `BreakerStoreLike`.
 * - the browser build refuses `redirects: "library"`, the full build takes it.
 * - every mapping row through dist and dist/browser alike: one breaker per name, open after 12 failures; chains fall
 *   through, `statistics()` = `health().fallback`; `adjust` at each level matches docs/degradation.md's table as
 *   parsed from the page; `execute(fn, { breaker })` 3 attempts then `RetryExhaustedError`; `health()` names them.
 *
 * Docs-silent (not pinned):
 * - "rule tables (check-options.ts, the one checker; `retry()` alone keeps a small one of its own …)": the proxy
 *   (src/cloudflare/resilient-proxy.ts, a route's keys) and the ky adapter (a misspelt `resilience`) also refuse
 *   unknown option keys by hand, as the stores' store-options.ts (which the page names) does.
 * - `resilientProxy` answers a 0.1 `resilience.fallback` array with "a proxy's chains go in its routes", not with
 *   the `fallback(…)` hint the other ways give (right for a proxy, where `fallback([…])` is refused too).
 * - module-level `WeakSet`s also mark what is no response or error: a configured chain (policies/fallback-chain.ts
 *   `configuredChains`), a request body stream (`requestBodyStreams`).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError, isConfigError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SRC = join(ROOT, "src");
const ARCH = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith(".ts") ? [path] : [];
  });
}
const FILES = walk(SRC).map((f) => relative(SRC, f).replaceAll("\\", "/"));
const parsed = new Map(
  FILES.map((f) => [f, ts.createSourceFile(f, readFileSync(join(SRC, f), "utf8"), ts.ScriptTarget.Latest, true)]),
);

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
  names: string[];
}
/** Every relative import and re-export of src, value or type-only (a clause of `type` names only is type-only). */
const EDGES: Edge[] = [...parsed].flatMap(([from, sf]) =>
  sf.statements.flatMap((st): Edge[] => {
    if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st))) return [];
    const spec = st.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) return [];
    const to = relative(SRC, resolve(SRC, dirname(from), spec.text)).replaceAll("\\", "/");
    let typeOnly = false;
    let names: string[] = [];
    if (ts.isImportDeclaration(st)) {
      const clause = st.importClause;
      const elements =
        clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : [];
      names = elements.map((e) => e.name.text);
      typeOnly =
        !!clause && (clause.isTypeOnly || (!clause.name && elements.length > 0 && elements.every((e) => e.isTypeOnly)));
    } else {
      const elements = st.exportClause && ts.isNamedExports(st.exportClause) ? st.exportClause.elements : [];
      names = elements.map((e) => e.name.text);
      typeOnly = st.isTypeOnly || (elements.length > 0 && elements.every((e) => e.isTypeOnly));
    }
    return [{ from, to, typeOnly, names }];
  }),
);

/** Rank of a file in the documented order: core 0 < stores < policies < http/request < http/send < http < entries < root. */
function rank(file: string): number {
  if (file === "index.ts") return 7;
  const [top, sub] = file.split("/");
  if (top === "http") return sub === "request" ? 3 : sub === "send" ? 4 : 5;
  const order: Record<string, number> = { core: 0, stores: 1, policies: 2 };
  return order[top as string] ?? 6;
}
const folder = (file: string) => {
  const [top, sub] = file.split("/");
  return top === "http" && (sub === "request" || sub === "send") ? `http/${sub}` : top;
};

function runNode(code: string, conditions: string[] = []): Record<string, unknown> {
  const r = spawnSync(
    process.execPath,
    [...conditions.map((c) => `--conditions=${c}`), "--input-type=module", "-e", code],
    { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
}

describe("docs/architecture.md: the tree, read statically", () => {
  it("one folder per entry; every top-level src folder is an entry or a named layer; the files the page names exist", () => {
    const exportsMap = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).exports as Record<string, unknown>;
    for (const sub of Object.keys(exportsMap).filter((k) => k !== "./package.json")) {
      const file =
        sub === "." ? "index.ts" : sub === "./testing/clock" ? "testing/clock.ts" : `${sub.slice(2)}/index.ts`;
      expect(FILES, sub).toContain(file);
    }
    const tops = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    expect(tops.sort()).toEqual(
      ["cloudflare", "core", "degradation", "fallback", "http", "ky", "policies", "stores", "testing"].sort(),
    );
    const named = `
      core/options/with-defaults.ts core/options/check-options.ts policies/retry.ts core/redact-url.ts
      core/http-token.ts core/kind-of.ts stores/breaker-store.ts stores/background.ts
      stores/shared-snapshot.ts stores/store-clock.ts stores/store-options.ts http/resilient-fetch.ts
      http/global-fetch.ts http/stages.ts http/request/call-request.ts http/request/normalize-request.ts
      http/request/check-request.ts http/request/replay-body.ts http/request/cross-origin.ts
      http/send/send-with-retries.ts http/send/retry-decision.ts http/send/retry-after.ts
      http/send/classify.ts http/send/failure-reason.ts http/send/send-attempt.ts
      http/send/follow-redirects.ts http/send/resilience-info.ts degradation/rewrite-request.ts
      degradation/json-splice.ts degradation/query-edit.ts fallback/try-endpoints.ts
      fallback/endpoint-request.ts fallback/hedge-ledger.ts fallback/chain-router.ts
      fallback/validate-response.ts core/linked-signal.ts core/realm-shared.ts core/browser-build.ts
      policies/backoff.ts
    `
      .trim()
      .split(/\s+/);
    for (const f of named) expect(FILES, f).toContain(f);
  });

  it("imports point down only: cloudflare → fallback the one sideways entry, send/ → PipelineParts/FetchLike the one (type-only) upward; no value cycles", () => {
    const sideways: string[] = [];
    const upward: string[] = [];
    for (const e of EDGES) {
      if (folder(e.from) === folder(e.to)) continue;
      if (rank(e.to) < rank(e.from)) continue;
      if (rank(e.to) === rank(e.from)) sideways.push(`${e.from} -> ${e.to}${e.typeOnly ? " (type)" : ""}`);
      else upward.push(`${e.from} -> ${e.to} ${e.typeOnly ? "type" : "VALUE"} ${e.names.join(",")}`);
    }
    // The documented sideways dependency, and nothing else between entry folders.
    expect(sideways.every((s) => s.startsWith("cloudflare/resilient-proxy.ts -> fallback/"))).toBe(true);
    expect(sideways.filter((s) => !s.endsWith("(type)")).sort()).toEqual([
      "cloudflare/resilient-proxy.ts -> fallback/chain-router.ts",
      "cloudflare/resilient-proxy.ts -> fallback/endpoint-request.ts",
      "cloudflare/resilient-proxy.ts -> fallback/fallback-rules.ts",
      "cloudflare/resilient-proxy.ts -> fallback/fallback-stage.ts",
    ]);
    // Upward: type-only, from send/ only, naming only PipelineParts and FetchLike.
    expect(upward.length).toBeGreaterThan(0);
    for (const u of upward) {
      expect(u, u).toMatch(/^http\/send\/[\w-]+\.ts -> http\/[\w-]+\.ts type /);
      for (const name of u.split(" ").at(-1)?.split(",") ?? [])
        expect(["PipelineParts", "FetchLike"], u).toContain(name);
    }
    // No cycles among value imports.
    const graph = new Map<string, string[]>();
    for (const e of EDGES) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      state.set(node, 1);
      for (const next of graph.get(node) ?? []) {
        if (state.get(next) === 1) cycles.push([...path, next].join(" -> "));
        else if (!state.has(next)) visit(next, [...path, next]);
      }
      state.set(node, 2);
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node, [node]);
    expect(cycles).toEqual([]);
  });

  it("one store contract in stores/breaker-store.ts; one breaker registry, made once, the only maker of breakers", () => {
    const declares = (pattern: RegExp) => FILES.filter((f) => pattern.test(readFileSync(join(SRC, f), "utf8"))).sort();
    expect(declares(/\binterface BreakerStore\b|\btype BreakerStore\s*=/)).toEqual(["stores/breaker-store.ts"]);
    // Every store is typed from that contract.
    for (const store of ["stores/memory-store.ts", "cloudflare/kv-store.ts", "cloudflare/durable-object-store.ts"])
      expect(
        EDGES.some((e) => e.from === store && e.to === "stores/breaker-store.ts" && e.names.includes("BreakerStore")),
        store,
      ).toBe(true);
    expect(declares(/\bclass \w*Registry\b/)).toEqual(["policies/breaker-registry.ts"]);
    expect(declares(/new BreakerRegistry\(/)).toEqual(["http/create-resilience.ts"]);
    expect(declares(/new CircuitBreaker\(/)).toEqual(["policies/breaker-registry.ts"]);
    expect(ARCH).toContain("breaker registry");
  });

  // Asserted before the fix that only send/retry-decision.ts picks a delay and spends the budget, as the page said;
  // the page now names policies/retry.ts for `execute` and `retry(fn)`, and this asserts that sentence.
  it("where retries wait: only backoff.ts computes delays; send/retry-decision.ts and policies/retry.ts pick one and spend the budget", () => {
    expect(ARCH).toMatch(
      /Where to change how retries wait: `src\/policies\/backoff\.ts` \(the delays\) and\s+`src\/http\/send\/retry-decision\.ts`[^;]*for `resilience\.fetch`\);\s+`src\/policies\/retry\.ts` does the same for\s+`resilience\.execute` and `retry\(fn\)`/,
    );
    const defines = FILES.filter((f) =>
      /export function (backoffDelay|exponentialDelay)\b/.test(readFileSync(join(SRC, f), "utf8")),
    );
    expect(defines).toEqual(["policies/backoff.ts"]);
    // Who calls the delay function or spends the budget (the budget's own class aside).
    const pickers = FILES.filter((f) => f !== "policies/backoff.ts" && f !== "policies/retry-budget.ts").filter((f) =>
      /\bbackoffDelay\(|\.tryRetry\(\)/.test(readFileSync(join(SRC, f), "utf8")),
    );
    // resilience.execute runs through policies/retry.ts (http/execute.ts imports retryChecked), so it is a layer's too.
    expect(EDGES.some((e) => e.from === "http/execute.ts" && e.to === "policies/retry.ts" && !e.typeOnly)).toBe(true);
    expect(pickers.sort()).toEqual(["http/send/retry-decision.ts", "policies/retry.ts"]);
  });

  it("module-level WeakMaps: the four named (replayDecisions, attemptKeys, chosenChains, stoppedReads) and the two more beside linked-signal.ts's", () => {
    const found: string[] = [];
    for (const [file, sf] of parsed) {
      if (file === "core/linked-signal.ts") continue;
      for (const st of sf.statements) {
        if (!ts.isVariableStatement(st)) continue;
        for (const d of st.declarationList.declarations) {
          const text = `${d.type?.getText(sf) ?? ""} ${d.initializer?.getText(sf) ?? ""}`;
          if (/\bWeakMap\b/.test(text) && ts.isIdentifier(d.name)) found.push(`${file}:${d.name.text}`);
        }
      }
    }
    expect(found).toEqual(expect.arrayContaining(["fallback/chain-router.ts:chosenChains"]));
    // Before the fix the page named four; these two were found besides, and the page now names them (and
    // replay-body.ts's `failedSources`, a WeakSet until the fifty-seventh session kept each source's error).
    expect(found.map((f) => f.split(":")[1]).sort()).toEqual([
      "attemptKeys",
      "chosenChains",
      "failedSources",
      "followers",
      "replayDecisions",
      "stoppedReads",
      "unextensible",
    ]);
    expect(found).toEqual(
      expect.arrayContaining(["http/send/resilience-info.ts:unextensible", "core/platform-signal.ts:followers"]),
    );
    expect(ARCH.replace(/\s+/g, " ")).toContain(
      "Two more `WeakMap`s hold what an object of the platform cannot carry itself: `send/resilience-info.ts`'s `unextensible`",
    );
    expect(ARCH.replace(/\s+/g, " ")).toContain("`core/platform-signal.ts`'s `followers`");
    expect(ARCH.replace(/\s+/g, " ")).toContain("`request/replay-body.ts`'s `failedSources`");
  });

  it("the layout's folder lists (examples/, scripts/, test/) name what is there", () => {
    const line = (start: string) => {
      // The entry's first line and the indented lines that continue it.
      const i = ARCH.indexOf(`\n${start}`) + 1;
      const end = ARCH.slice(i).search(/\n(?! )/);
      return ARCH.slice(i, i + end).replace(/\([^()]*(\([^()]*\)[^()]*)*\)/g, "");
    };
    const dirs = (p: string) => readdirSync(join(ROOT, p)).filter((n) => statSync(join(ROOT, p, n)).isDirectory());
    const examples = line("examples/")
      .replace("examples/", "")
      .split(",")
      .map((s) => s.trim());
    expect(examples).toEqual(["browser", "node", "sdk-fetch", "storycore-parity", "worker", "recipes"]);
    const scripts = [...line("scripts/").matchAll(/[\w-]+\.(?:cjs|ts)\b/g)].map((m) => m[0]);
    expect(scripts).toEqual(["check-node.cjs", "check-snippets.ts", "check-links.ts"]);
    const testBlock = line("test/");
    const mirrors = /mirrors src\/ \(([^)]*)\)/.exec(ARCH)?.[1] ?? "";
    const testNamed = [
      ...mirrors.split(", "),
      ...[...testBlock.matchAll(/\b([\w-]+)\/(?=[\s,)])/g)].map((m) => m[1] as string).filter((n) => n !== "src"),
    ];
    const missing = {
      examples: dirs("examples").filter((n) => !examples.includes(n)),
      scripts: readdirSync(join(ROOT, "scripts")).filter((n) => !scripts.includes(n)),
      test: dirs("test").filter((n) => n !== "helpers" && !testNamed.includes(n)),
    };
    // Observed: { examples: ["recipes"], scripts: ["check-links.ts"], test: [browser, degradation, fallback, ky,
    // recipes, stores, user-project] }
    expect(missing).toEqual({ examples: [], scripts: [], test: [] });
  });

  it("check-node.cjs runs before npm run demo, npm test, dev:worker and every example's npm script", () => {
    const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    const guarded = Object.keys(scripts).filter((k) => k === "demo" || k === "test" || k.startsWith("example:"));
    expect(guarded.length).toBeGreaterThanOrEqual(7);
    for (const k of [...guarded, "dev:worker"]) expect(scripts[`pre${k}`], k).toBe("node scripts/check-node.cjs");
  });

  it("getResilienceInfo reads a registered symbol; the realm object is made at first use under one", () => {
    const res = new Response("x");
    const info = { attempts: 7 };
    (res as unknown as Record<symbol, unknown>)[Symbol.for("@storycore/resilient-fetch/info")] = info;
    expect(getResilienceInfo(res)).toBe(info);
    expect(getResilienceInfo(new Response("y"))).toBeUndefined();
    const seen = runNode(`
      const KEY = Symbol.for("@storycore/resilient-fetch/realm@1");
      const { createServer } = await import("node:http");
      const server = createServer((req, res) => res.end("ok")).listen(0, "127.0.0.1");
      await new Promise((r) => server.once("listening", r));
      const { createResilience } = await import("@storycore/resilient-fetch");
      const atImport = KEY in globalThis;
      const layer = createResilience({ retry: false });
      const atCreate = KEY in globalThis;
      await (await layer.fetch("http://127.0.0.1:" + server.address().port + "/")).text();
      server.close();
      const realm = globalThis[KEY];
      console.log(JSON.stringify({ atImport, atCreate, afterCall: KEY in globalThis, beneath: realm?.beneath instanceof WeakMap }));
    `);
    expect(seen.atImport).toBe(false);
    expect(seen.afterCall).toBe(true);
    expect(seen.beneath).toBe(true);
  }, 60_000);
});

describe("README 'Upgrading from 0.1' and the CHANGELOG migration section", () => {
  const api = httpUpstream();
  serveDuringFile(api);
  const chains = [{ name: "images", endpoints: [{ name: "a", url: "https://a.example/v1" }] }];
  const ways: Array<[string, (o: Record<string, unknown>) => unknown]> = [
    ["createResilience", (o) => createResilience(o as never)],
    ["createClient", (o) => createClient({ resilience: o as never })],
    [
      "resilientProxy",
      (o) => resilientProxy({ resilience: o as never, routes: [{ path: "/x", upstream: "https://a.example" }] }),
    ],
  ];
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it("each 0.1 shape is a ConfigError that says what to do, on every way in", () => {
    const shapes: Array<[string, Record<string, unknown>, RegExp, RegExp?]> = [
      [
        "fallback",
        { fallback: chains },
        /expected fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/,
        /a proxy's chains go in its routes/,
      ],
      [
        "fallback",
        { fallback: [] },
        /expected fallback\(…\) from "@storycore\/resilient-fetch\/fallback"/,
        /a proxy's chains go in its routes/,
      ],
      [
        "degradation",
        { degradation: { enabled: true } },
        /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/,
      ],
      ["degradation", { degradation: {} }, /expected degradation\(…\) from "@storycore\/resilient-fetch\/degradation"/],
      [
        "",
        { sensitiveHeaders: ["authorization"] },
        /unknown option "sensitiveHeaders" \(after 0\.1\.0: "crossOriginHeaders"/,
      ],
    ];
    for (const [path, shape, message, proxyMessage] of shapes)
      for (const [way, make] of ways) {
        const error = refusal(() => make(shape)) as Error & { path?: string };
        expect(isConfigError(error), `${way} ${JSON.stringify(shape)}`).toBe(true);
        const expectedPath =
          way === "createResilience" ? path || "options" : path ? `resilience.${path}` : "resilience";
        expect(error.path, way).toBe(expectedPath);
        expect(error.message, way).toMatch(way === "resilientProxy" && proxyMessage ? proxyMessage : message);
      }
  });

  it("the wrapped shapes are taken on every way in; without a stage its handle is undefined (and typed so)", () => {
    for (const [way, make] of ways) {
      expect(
        refusal(() => make({ degradation: degradation({}), crossOriginHeaders: ["x-trace"] })),
        way,
      ).toBeUndefined();
      if (way !== "resilientProxy")
        expect(
          refusal(() => make({ fallback: fallback(chains) })),
          way,
        ).toBeUndefined();
    }
    const bare = createResilience({});
    expect(bare.fallback).toBeUndefined();
    expect(bare.degradation).toBeUndefined();
    expect((bare as unknown as Record<string, unknown>).fallbackChain).toBeUndefined();
    // @ts-expect-error `fallback` is typed `undefined` without its stage
    expect(() => bare.fallback.chain("x")).toThrow(TypeError);
    const both = createResilience({ fallback: fallback([]), degradation: degradation() });
    expect(typeof both.fallback.chain).toBe("function");
    expect(typeof both.degradation.adjust).toBe("function");
  });

  it("a 0.1 `breaker: { failureThreshold: 5 }` opens after 5 failures in a row, not on 5 among successes", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 5 } });
    let answers: number[] = [];
    api.on((hit) => {
      hit.res.statusCode = answers[hit.n - 1] ?? 200;
      hit.res.end("x");
    });
    const call = async () => {
      try {
        const res = await layer.fetch(`${api.base}/gen`);
        await res.text();
        return res.status;
      } catch (error) {
        return isCircuitOpenError(error) ? "open" : String(error);
      }
    };
    answers = [503, 200, 503, 200, 503, 200, 503, 200, 503, 200, 503];
    const among: unknown[] = [];
    for (let i = 0; i < answers.length + 1; i++) among.push(await call());
    expect(among.at(-1)).toBe(200); // 6 failures among successes: still closed
    expect(api.hits.length).toBe(12);
    api.reset();
    answers = [503, 503, 503, 503, 503];
    api.on((hit) => {
      hit.res.statusCode = answers[hit.n - 1] ?? 200;
      hit.res.end("x");
    });
    const row: unknown[] = [];
    for (let i = 0; i < 6; i++) row.push(await call());
    expect(row).toEqual([503, 503, 503, 503, 503, "open"]);
    expect(api.hits.length).toBe(5);
  });
});

const ENTRIES = ["", "/policies", "/degradation", "/fallback", "/ky", "/cloudflare", "/testing", "/testing/clock"];
const MOVED = `retry CircuitBreaker Bulkhead RetryBudget FallbackChain transition initialBreakerState nextLevel
  initialLevelState backoffDelay exponentialDelay adjustParameters defaultLevels systemClock`.split(/\s+/);
const EXPORTS_PROBE = `
  const out = {};
  for (const s of ${JSON.stringify(ENTRIES)}) {
    const spec = "@storycore/resilient-fetch" + s;
    const mod = await import(spec);
    out[s || "."] = { url: import.meta.resolve(spec).replace(/^.*?\\/dist\\//, "dist/"),
      values: Object.keys(mod).filter((k) => mod[k] !== undefined).sort() };
  }
  const p = await import("@storycore/resilient-fetch/policies");
  const d = await import("@storycore/resilient-fetch/degradation");
  out.sameLevels = JSON.stringify(p.defaultLevels) === JSON.stringify(d.defaultLevels);
  const { createResilience } = await import("@storycore/resilient-fetch");
  try { createResilience({ redirects: "library" }); out.library = "taken"; } catch (e) { out.library = e.name + ": " + e.message; }
  console.log(JSON.stringify(out));
`;

describe("the built package's exports map (npm run build, self-reference by name)", () => {
  beforeAll(() => {
    const r = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  }, 200_000);

  it("every 'now import X from Y' resolves: by default, workerd and worker to dist/, browser to dist/browser/", () => {
    const runs = {
      default: runNode(EXPORTS_PROBE),
      workerd: runNode(EXPORTS_PROBE, ["workerd"]),
      worker: runNode(EXPORTS_PROBE, ["worker"]),
      browser: runNode(EXPORTS_PROBE, ["browser"]),
    };
    for (const [condition, out] of Object.entries(runs)) {
      const entries = out as Record<string, { url: string; values: string[] }>;
      for (const s of ENTRIES) {
        const sub = s === "" ? "index" : s === "/testing/clock" ? "testing/clock" : `${s.slice(1)}/index`;
        const want = condition === "browser" ? `dist/browser/${sub}.js` : `dist/${sub}.js`;
        expect(entries[s || "."]?.url, `${condition} ${s}`).toBe(want);
      }
      const root = entries["."]?.values ?? [];
      const policies = entries["/policies"]?.values ?? [];
      for (const name of MOVED) {
        expect(policies, `${condition} ./policies ${name}`).toContain(name);
        expect(root, `${condition} root ${name}`).not.toContain(name);
      }
      expect(entries["/degradation"]?.values).toContain("defaultLevels");
      expect(entries["/degradation"]?.values).not.toContain("GracefulDegradation");
      for (const s of ENTRIES) expect(entries[s || "."]?.values, s).not.toContain("parseRetryAfter");
      const errors = [
        "BulkheadRejected",
        "CircuitOpen",
        "Config",
        "FallbackExhausted",
        "Resilience",
        "RetryExhausted",
        "Timeout",
      ];
      expect(root).toEqual(
        [
          "createResilience",
          "getResilienceInfo",
          "memoryStore",
          ...errors.map((e) => `${e}Error`),
          ...errors.map((e) => `is${e}Error`),
        ].sort(),
      );
      expect(out.sameLevels, condition).toBe(true);
      // The browser build has no redirect follower; the full build has.
      if (condition === "browser") expect(out.library).toMatch(/ConfigError: redirects: expected "platform"/);
      else expect(out.library, condition).toBe("taken");
    }
  }, 120_000);

  it("the types: the d.ts of ./policies declares the moved names, ./degradation GracefulDegradation, root a deprecated BreakerStoreLike", () => {
    const dts = (p: string) => {
      const first = readFileSync(join(ROOT, "dist", p), "utf8");
      // The entry's d.ts re-exports from shared chunks: read those too.
      const chunks = [...first.matchAll(/from '\.\/?([^']+)'|from "\.\/?([^"]+)"/g)].map(
        (m) => (m[1] ?? m[2]) as string,
      );
      return [
        first,
        ...chunks.map((c) =>
          readFileSync(resolve(join(ROOT, "dist", dirname(p)), c.replace(/\.js$/, ".d.ts")), "utf8"),
        ),
      ].join("\n");
    };
    const policies = readFileSync(join(ROOT, "dist/policies/index.d.ts"), "utf8");
    for (const name of MOVED) expect(policies, name).toMatch(new RegExp(`\\b${name}\\b`));
    expect(readFileSync(join(ROOT, "dist/degradation/index.d.ts"), "utf8")).toMatch(/\bGracefulDegradation\b/);
    const root = readFileSync(join(ROOT, "dist/index.d.ts"), "utf8");
    expect(root).toMatch(/\bBreakerStoreLike\b/);
    expect(dts("index.d.ts")).toMatch(/@deprecated[^\n]*BreakerStore[\s\S]{0,40}type BreakerStoreLike = BreakerStore/);
  });

  it("every storycore-mapping row, through dist and dist/browser alike, with degradation.md's table", () => {
    const table = readFileSync(join(ROOT, "docs/degradation.md"), "utf8")
      .split("\n")
      .filter((l) => /^\| (full|high|medium|low|minimal) /.test(l))
      .map((l) => l.split("|").map((c) => c.trim()));
    expect(table).toHaveLength(5);
    const probe = `
      const { createResilience, RetryExhaustedError, isCircuitOpenError } = await import("@storycore/resilient-fetch");
      const { fallback } = await import("@storycore/resilient-fetch/fallback");
      const { degradation } = await import("@storycore/resilient-fetch/degradation");
      const { TestClock } = await import("@storycore/resilient-fetch/testing/clock");
      const clock = new TestClock();
      const system = createResilience({ clock, fallback: fallback([]), degradation: degradation() });
      const out = {};
      const cb = system.breaker("hunyuan_video");
      out.oneBreaker = cb === system.breaker("hunyuan_video");
      let ran = 0;
      for (let i = 0; i < 12; i++) await cb.execute(async () => { ran++; throw new Error("GPU busy"); }).catch(() => {});
      out.thirteenth = await cb.execute(async () => { ran++; return 1; }).then(() => "ran", (e) => isCircuitOpenError(e));
      out.ran = ran;
      const chain = system.fallback.chain("video_generation")
        .add(async () => { throw new Error("down"); }, { name: "hunyuan_premium", expectedQuality: 1 })
        .add(async (r) => ({ engine: "wan", ...r }), { name: "wan_standard", expectedQuality: 0.8 });
      out.oneChain = chain === system.fallback.chain("video_generation");
      out.served = await chain.execute({ prompt: "p" });
      out.stats = chain.statistics();
      out.statsInHealth = JSON.stringify(system.health().fallback.video_generation) === JSON.stringify(out.stats);
      out.levels = {};
      for (const name of ["full", "high", "medium", "low", "minimal"]) {
        system.degradation.setLevel(name, "test");
        out.levels[name] = { current: system.degradation.currentLevel(), adjusted: system.degradation.adjust({
          quality: 1, resolution: "1000x1000", steps: 50, model: "premium",
          features: ["all", "core", "enhancements", "basic", "essential"] }) };
      }
      let n = 0;
      const failing = system.execute(async () => { n++; throw new Error("GPU busy"); }, { breaker: "workflow_execution" }).catch((e) => e);
      for (let i = 0; i < 10; i++) await clock.advance(1000);
      const error = await failing;
      out.execute = { n, exhausted: error instanceof RetryExhaustedError, attempts: error.attempts };
      const health = system.health();
      out.health = { breakers: Object.keys(health.breakers).sort(), hunyuan: health.breakers.hunyuan_video?.state ?? health.breakers.hunyuan_video };
      console.log(JSON.stringify(out));
    `;
    const node = runNode(probe);
    const browser = runNode(probe, ["browser"]);
    expect(browser).toEqual(node);
    expect(node.oneBreaker).toBe(true);
    expect([node.thirteenth, node.ran]).toEqual([true, 12]);
    expect(node.oneChain).toBe(true);
    expect(node.served).toEqual({ engine: "wan", prompt: "p" });
    expect((node.stats as { lastSuccessfulFallback?: string }).lastSuccessfulFallback).toBe("wan_standard");
    expect(node.statsInHealth).toBe(true);
    expect(node.execute).toEqual({ n: 3, exhausted: true, attempts: 3 });
    expect((node.health as { breakers: string[] }).breakers).toEqual(
      expect.arrayContaining(["hunyuan_video", "workflow_execution"]),
    );
    const ladder = ["premium", "standard", "basic"];
    const tiers: Record<string, string[]> = {
      all: ["all", "core", "enhancements", "basic", "essential"],
    };
    const levels = node.levels as Record<
      string,
      { current: { name: string; percentage: number }; adjusted: Record<string, unknown> }
    >;
    for (const [, name, pct, quality, scale, maxSteps, features, modelStep] of table as string[][]) {
      const got = levels[name as string];
      expect(got?.current, name).toMatchObject({ name, percentage: Number(pct) });
      const side = Math.floor((1000 * Number(scale)) / 8) * 8;
      expect(got?.adjusted.quality, name).toBe(Number(quality));
      expect(got?.adjusted.resolution, name).toBe(Number(scale) === 1 ? "1000x1000" : `${side}x${side}`);
      expect(got?.adjusted.steps, name).toBe(maxSteps === "none" ? 50 : Math.min(50, Number(maxSteps)));
      expect(got?.adjusted.model, name).toBe(ladder[Number(modelStep)]);
      const keep = tiers[features as string] ?? (features as string).split(", ");
      expect(got?.adjusted.features, name).toEqual(
        ["all", "core", "enhancements", "basic", "essential"].filter((f) => keep.includes(f)),
      );
    }
  }, 120_000);
});
