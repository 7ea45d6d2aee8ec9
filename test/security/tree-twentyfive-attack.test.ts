/**
 * Outside-in attack on the source tree's structure against what the docs say about it. Docs: docs/architecture.md
 * (every sentence of "Package layout", "A call, from `resilience.fetch` to the transport" and "Dependencies and
 * what each is for"), README.md's entry table and links, docs/targets.md's links.
 * How: the files under src/ read with node:fs and parsed with `typescript`'s parser (imports and re-exports, each
 * marked value or type-only; the value-import graph followed from each entry of package.json's `exports`);
 * package.json, tsconfig.json and biome.json read as files; the docs' Markdown links and quoted paths resolved.
 * Paths: the root entry (src/index.ts) and its whole value-import graph; every entry folder (fallback,
 * degradation, policies, ky, cloudflare, testing, testing/clock); http's root, send/ and request/; policies,
 * stores, core.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: each made exact in docs/architecture.md, and each test now asserts the corrected sentence against the tree):
 * 1. docs/architecture.md "Imports point down only: the entry folders (`fallback`, `degradation`, `ky`,
 *    `cloudflare`, `testing`) → `http` (its root → `send` → `request`) → `policies` → `stores` → `core`, with no
 *    cycles among value imports." Observed: one entry folder value-imports another: src/cloudflare/resilient-proxy.ts
 *    imports src/fallback/chain-router.ts (`chainPrefix`, `chosenChains`), src/fallback/endpoint-request.ts,
 *    src/fallback/fallback-rules.ts and src/fallback/fallback-stage.ts (`fallback`), so `./cloudflare` depends on
 *    the `./fallback` entry's internals (sideways, not down).
 * 2. docs/architecture.md "each endpoint shaped by `endpoint-request.ts`, with `http/cross-origin.ts`'s
 *    allowlist". Observed: there is no src/http/cross-origin.ts; the allowlist is src/http/request/cross-origin.ts
 *    (every other path of that section resolves under src/).
 * 3. docs/architecture.md "Per-call state (the deadline, the attempt count, the parsed JSON body) goes down as
 *    arguments, never through module-level maps." Observed: two module-level `WeakMap`s carry per-call state:
 *    `replayDecisions` (src/http/request/call-request.ts: `fetchArguments` stores each call's replay decision under
 *    the transport `init` it built, and send/follow-redirects.ts reads it back), and `chosenChains`
 *    (src/fallback/chain-router.ts: `resilientProxy` stores the chain its route chose under each outgoing
 *    `Request`, and fallback-stage.ts reads and deletes it).
 * 4. docs/architecture.md "defaults (with-defaults.ts, the one way)". Observed: documented option defaults are also
 *    applied with `??` beside it: `options.maxQueue ?? 0` (src/core/options/bulkhead-options.ts, `@default 0`),
 *    `o.maxReplayBytes ?? 8 * 1024 * 1024` (src/http/resolve-options.ts, `@default 8388608`), `….maxKeys ?? 1000`
 *    (src/stores/memory-store.ts, `@default 1000`).
 * 5. docs/architecture.md "rule tables (check-options.ts, the one checker)". Observed: src/policies/retry.ts holds
 *    a second option checker of its own (`function checkOptions`, its own `OPTIONS` list, bounds and messages,
 *    throwing `ConfigError`s) and never imports check-options.ts or a rule table.
 *
 * Held (plain `it`):
 * - one folder per entry with its index.ts: every `exports` subpath of package.json (and tsup's and typedoc's
 *   entries) is src/<entry>/index.ts (testing/clock: src/testing/clock.ts); root src/index.ts.
 * - no import cycles among value imports (none among the 120 files); the only imports going up are type-only, from
 *   send/ to the layer's `PipelineParts` and `FetchLike`; request/ imports nothing above it; nothing imports
 *   `node:*` or another built-in; Biome's `noNodejsModules` is on for src/**; tsconfig's `types` is empty.
 * - the root's value-import graph holds no file of src/fallback, src/degradation, src/cloudflare, src/ky,
 *   src/testing, nor the chain, level or parameter code of src/policies, nor zod; http/ reaches the opt-in stages
 *   only through http/stages.ts (types), never a file of src/fallback or src/degradation.
 * - the dependency table: zod is reached only from `./cloudflare`, ky only from `./ky`, msw only from `./testing`
 *   (not `./testing/clock`); src imports no other package; each is listed in package.json as the table says.
 * - one store contract (only src/stores/breaker-store.ts declares a `publish` + `peek` shape; every store returns
 *   `BreakerStore`), one breaker registry (`BreakerRegistry`, made once in create-resilience.ts, the only place a
 *   `CircuitBreaker` is made outside policies' own class).
 * - how retries wait: within the fetch path only src/http/send/retry-decision.ts calls `backoffDelay` or spends
 *   the budget (`tryRetry`); delays are computed only in src/policies/backoff.ts.
 * - nothing at module scope creates a timer, an `AbortController` or a promise.
 * - the root's value exports are what README and CHANGELOG list: `createResilience`, `getResilienceInfo`,
 *   `memoryStore`, the errors and their guards; `parseRetryAfter` (internal) is exported from no entry; every
 *   `@internal` declaration stays unexported from the entries.
 * - every relative Markdown link of docs/architecture.md, docs/targets.md and README.md resolves.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "../..");
const read = (path: string): string => readFileSync(resolve(repo, path), "utf8");

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(resolve(repo, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (path.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

const files = walk("src");

type Kind = "value" | "type";
interface Edge {
  readonly from: string;
  readonly to: string;
  readonly kind: Kind;
  readonly names: readonly string[];
}

const sources = new Map<string, ts.SourceFile>(
  files.map((file) => [file, ts.createSourceFile(file, read(file), ts.ScriptTarget.Latest, true)]),
);

/** Every `import … from` / `export … from` of `file`: value unless the whole statement (or each name) is `type`. */
function edgesOf(file: string): Edge[] {
  const sf = sources.get(file) as ts.SourceFile;
  const out: Edge[] = [];
  for (const s of sf.statements) {
    let spec: string | undefined;
    let kind: Kind = "value";
    let names: string[] = [];
    if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) {
      spec = s.moduleSpecifier.text;
      const clause = s.importClause;
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) names = bindings.elements.map((e) => e.name.text);
      if (clause?.isTypeOnly) kind = "type";
      else if (
        clause &&
        !clause.name &&
        bindings &&
        ts.isNamedImports(bindings) &&
        bindings.elements.length > 0 &&
        bindings.elements.every((e) => e.isTypeOnly)
      )
        kind = "type";
    } else if (ts.isExportDeclaration(s) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier)) {
      spec = s.moduleSpecifier.text;
      const clause = s.exportClause;
      if (clause && ts.isNamedExports(clause)) names = clause.elements.map((e) => e.name.text);
      if (
        s.isTypeOnly ||
        (clause &&
          ts.isNamedExports(clause) &&
          clause.elements.length > 0 &&
          clause.elements.every((e) => e.isTypeOnly))
      )
        kind = "type";
    }
    if (spec === undefined) continue;
    const to = spec.startsWith(".") ? normalize(join(dirname(file), spec)) : spec;
    out.push({ from: file, to, kind, names });
  }
  return out;
}

const edges = new Map(files.map((file) => [file, edgesOf(file)]));
const allEdges = [...edges.values()].flat();
const isLocal = (to: string): boolean => to.startsWith("src/");
const packageOf = (spec: string): string =>
  spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : (spec.split("/")[0] as string);

/** Every file (and package) reachable from `entry` through value imports. */
function valueClosure(entry: string): Set<string> {
  const seen = new Set([entry]);
  const stack = [entry];
  while (stack.length > 0) {
    for (const edge of edges.get(stack.pop() as string) ?? []) {
      if (edge.kind !== "value" || seen.has(edge.to)) continue;
      seen.add(edge.to);
      if (edges.has(edge.to)) stack.push(edge.to);
    }
  }
  return seen;
}

/** The layer a file sits in, by docs/architecture.md: entry folders → http (root → send → request) → policies → stores → core. */
function layerOf(file: string): { name: string; rank: number } {
  const [top, sub] = relative("src", file).split("/");
  if (top === "index.ts") return { name: "root entry", rank: 6 };
  if (top === "core") return { name: "core", rank: 0 };
  if (top === "stores") return { name: "stores", rank: 1 };
  if (top === "policies") return { name: "policies", rank: 2 };
  if (top === "http" && sub === "request") return { name: "http/request", rank: 3 };
  if (top === "http" && sub === "send") return { name: "http/send", rank: 4 };
  if (top === "http") return { name: "http", rank: 5 };
  return { name: top as string, rank: 6 };
}

const pkg = JSON.parse(read("package.json")) as {
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  devDependencies: Record<string, string>;
};
const architecture = read("docs/architecture.md");

/** The source file of a package.json `exports` subpath. */
const entryFile = (subpath: string): string =>
  subpath === "."
    ? "src/index.ts"
    : subpath === "./testing/clock"
      ? "src/testing/clock.ts"
      : `src/${subpath.slice(2)}/index.ts`;
const entries = Object.keys(pkg.exports)
  .filter((key) => key !== "./package.json")
  .map((subpath) => ({ subpath, file: entryFile(subpath) }));

describe("docs/architecture.md: package layout, one folder per entry", () => {
  it("every `exports` subpath is src/<entry>/index.ts (tsup and typedoc build the same files)", () => {
    // "src/fallback … (index.ts: @storycore/resilient-fetch/fallback)", "src/testing … (…/testing, and /testing/clock without MSW)"
    expect(entries.map((e) => e.subpath)).toEqual([
      ".",
      "./fallback",
      "./degradation",
      "./policies",
      "./ky",
      "./cloudflare",
      "./testing",
      "./testing/clock",
    ]);
    for (const { file } of entries) expect(existsSync(resolve(repo, file)), file).toBe(true);
    const tsup = read("tsup.config.ts");
    const typedoc = JSON.parse(read("typedoc.json")) as { entryPoints: string[] };
    for (const { file } of entries) {
      expect(tsup, file).toContain(`"${file}"`);
      expect(typedoc.entryPoints, file).toContain(file);
    }
    // "/testing/clock without MSW"
    expect([...valueClosure("src/testing/clock.ts")].filter((f) => !isLocal(f))).toEqual([]);
  });

  it("every file the layout names is where it says", () => {
    for (const path of [
      "src/core/options/with-defaults.ts",
      "src/core/options/check-options.ts",
      "src/core/redact-url.ts",
      "src/core/http-token.ts",
      "src/core/browser-build.ts",
      "src/stores/breaker-store.ts",
      "src/stores/background.ts",
      "src/stores/shared-snapshot.ts",
      "src/stores/store-clock.ts",
      "src/stores/store-options.ts",
      "src/http/resilient-fetch.ts",
      "src/http/stages.ts",
      "src/http/send/send-with-retries.ts",
      "src/http/send/retry-decision.ts",
      "src/http/send/retry-after.ts",
      "src/http/send/classify.ts",
      "src/http/send/failure-reason.ts",
      "src/http/send/send-attempt.ts",
      "src/http/request/call-request.ts",
      "scripts/check-node.cjs",
      "scripts/check-snippets.ts",
    ])
      expect(existsSync(resolve(repo, path)), path).toBe(true);
  });

  it('"with `http/request/cross-origin.ts`\'s allowlist": the file the call path names exists', () => {
    // docs/architecture.md: "3. `fallback/try-endpoints.ts` when the fallback stage joined and the URL selects a
    // chain (each endpoint shaped by `endpoint-request.ts`, with `http/request/cross-origin.ts`'s allowlist; …"
    // (it named `http/cross-origin.ts`, which does not exist, until this run).
    expect(architecture).toContain("`http/request/cross-origin.ts`'s allowlist");
    expect(existsSync(resolve(repo, "src/http/request/cross-origin.ts"))).toBe(true);
    // The section's other paths, read the same way (under src/), all resolve:
    for (const path of [
      "http/resilient-fetch.ts",
      "http/request/normalize-request.ts",
      "degradation/rewrite-request.ts",
      "fallback/try-endpoints.ts",
      "http/send/send-with-retries.ts",
      "http/stages.ts",
    ])
      expect(existsSync(resolve(repo, "src", path)), path).toBe(true);
    expect(existsSync(resolve(repo, "src/http/cross-origin.ts"))).toBe(false);
  });
});

describe('docs/architecture.md: "Imports point down only … with no cycles among value imports"', () => {
  it("no cycle among value imports; the only upward imports are send/'s type-only PipelineParts and FetchLike", () => {
    // Tarjan's strongly connected components over value imports.
    let index = 0;
    const indexOf = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const cycles: string[][] = [];
    const visit = (v: string): void => {
      indexOf.set(v, index);
      low.set(v, index++);
      stack.push(v);
      for (const { to, kind } of edges.get(v) ?? []) {
        if (kind !== "value" || !edges.has(to)) continue;
        if (!indexOf.has(to)) {
          visit(to);
          low.set(v, Math.min(low.get(v) as number, low.get(to) as number));
        } else if (stack.includes(to)) low.set(v, Math.min(low.get(v) as number, indexOf.get(to) as number));
      }
      if (low.get(v) === indexOf.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          component.push(w);
        } while (w !== v);
        if (component.length > 1) cycles.push(component);
      }
    };
    for (const file of files) if (!indexOf.has(file)) visit(file);
    expect(cycles).toEqual([]);

    // "The one exception is type-only: `send/` names the layer's `PipelineParts` and `FetchLike`"
    const upward = allEdges.filter((e) => isLocal(e.to) && layerOf(e.to).rank > layerOf(e.from).rank);
    expect(upward.filter((e) => e.kind === "value")).toEqual([]);
    expect(upward.every((e) => e.from.startsWith("src/http/send/"))).toBe(true);
    expect([...new Set(upward.flatMap((e) => e.names))].sort()).toEqual(["FetchLike", "PipelineParts"]);
  });

  it("nothing in src/ imports a runtime built-in; Biome's noNodejsModules and a type-check without Node's types", () => {
    const builtins = new Set(["fs", "path", "events", "buffer", "stream", "util", "crypto", "http", "https", "url"]);
    const external = allEdges.filter((e) => !isLocal(e.to));
    expect(external.filter((e) => e.to.startsWith("node:") || builtins.has(packageOf(e.to)))).toEqual([]);
    const biome = JSON.parse(read("biome.json")) as {
      overrides: { includes: string[]; linter?: { rules?: { correctness?: Record<string, string> } } }[];
    };
    expect(
      biome.overrides.some(
        (o) => o.includes.includes("src/**") && o.linter?.rules?.correctness?.noNodejsModules === "error",
      ),
    ).toBe(true);
    const tsconfig = JSON.parse(read("tsconfig.json")) as { compilerOptions: { types: string[] }; include: string[] };
    expect(tsconfig.compilerOptions.types).toEqual([]);
    expect(tsconfig.include).toEqual(["src"]);
  });

  it("one import between two entry folders, the one the doc names: cloudflare's proxy on fallback's chains", () => {
    // "One entry builds on another: `cloudflare`'s proxy serves its chain routes with `fallback`'s chain router
    // and endpoint checks" (the doc said imports only point down, until this run).
    const entryFolders = ["fallback", "degradation", "ky", "cloudflare", "testing"];
    const folderOf = (file: string): string => relative("src", file).split("/")[0] as string;
    const sideways = allEdges
      .filter((e) => isLocal(e.to) && entryFolders.includes(folderOf(e.from)) && entryFolders.includes(folderOf(e.to)))
      .filter((e) => folderOf(e.from) !== folderOf(e.to))
      .map((e) => `${e.kind} ${e.from} -> ${e.to}`);
    expect(architecture).toContain("One\nentry builds on another: `cloudflare`'s proxy serves its chain routes with");
    expect(new Set(sideways.map((e) => e.split(" ")[1]))).toEqual(new Set(["src/cloudflare/resilient-proxy.ts"]));
    expect(sideways.every((e) => e.includes(" -> src/fallback/"))).toBe(true);
  });
});

describe("docs/architecture.md: the root and the opt-in stages", () => {
  const root = valueClosure("src/index.ts");

  it("the root's value-import graph carries no fallback, degradation or zod (only http/stages.ts's types)", () => {
    // "a bundle that never imports `./fallback` or `./degradation` carries none of their code"
    const optIn = [...root].filter((f) => /^src\/(fallback|degradation|cloudflare|ky|testing)\//.test(f));
    expect(optIn).toEqual([]);
    expect([...root].filter((f) => !isLocal(f))).toEqual([]);
    for (const file of [
      "src/policies/fallback-chain.ts",
      "src/policies/degradation-machine.ts",
      "src/policies/adjust-parameters.ts",
      "src/core/levels.ts",
      "src/http/stages.ts",
    ])
      expect(root.has(file), file).toBe(false);
    // "The root knows the two opt-in stages only through `http/stages.ts`"
    const httpToStages = allEdges.filter(
      (e) => e.from.startsWith("src/http/") && /^src\/(fallback|degradation)\//.test(e.to),
    );
    expect(httpToStages).toEqual([]);
  });

  it("the root's value exports are createResilience, getResilienceInfo, memoryStore, the errors and guards", () => {
    // README: "`createResilience` …; `getResilienceInfo`, `memoryStore`, the errors"
    const values = edges
      .get("src/index.ts")
      ?.filter((e) => e.kind === "value")
      .flatMap((e) => {
        const sf = sources.get("src/index.ts") as ts.SourceFile;
        const decl = sf.statements.find(
          (s) =>
            ts.isExportDeclaration(s) &&
            (s.moduleSpecifier as ts.StringLiteral | undefined)?.text === `./${relative("src", e.to)}`,
        ) as ts.ExportDeclaration;
        return (decl.exportClause as ts.NamedExports).elements.filter((x) => !x.isTypeOnly).map((x) => x.name.text);
      })
      .sort();
    expect(values).toEqual(
      [
        "BulkheadRejectedError",
        "CircuitOpenError",
        "ConfigError",
        "FallbackExhaustedError",
        "ResilienceError",
        "RetryExhaustedError",
        "TimeoutError",
        "createResilience",
        "getResilienceInfo",
        "isBulkheadRejectedError",
        "isCircuitOpenError",
        "isConfigError",
        "isFallbackExhaustedError",
        "isResilienceError",
        "isRetryExhaustedError",
        "isTimeoutError",
        "memoryStore",
      ].sort(),
    );
  });

  it("internal names (parseRetryAfter, @internal declarations) are exported from no entry", async () => {
    const modules = {
      ".": await import("../../src/index.ts"),
      "./fallback": await import("../../src/fallback/index.ts"),
      "./degradation": await import("../../src/degradation/index.ts"),
      "./policies": await import("../../src/policies/index.ts"),
      "./cloudflare": await import("../../src/cloudflare/index.ts"),
      "./testing": await import("../../src/testing/index.ts"),
      "./testing/clock": await import("../../src/testing/clock.ts"),
    };
    // The names of every top-level declaration in src/ whose JSDoc is `@internal`.
    const internal = new Set(["parseRetryAfter"]);
    for (const file of files)
      for (const [, name] of read(file).matchAll(
        /\/\*\*\s*@internal[^*]*(?:\*(?!\/)[^*]*)*\*\/\s*export (?:async )?(?:function|const|let|class|interface|type) (\w+)/g,
      ))
        internal.add(name as string);
    expect(internal.size).toBeGreaterThan(1);
    for (const [entry, mod] of Object.entries(modules))
      for (const name of internal) expect(Object.keys(mod), `${entry} exports ${name}`).not.toContain(name);
  });
});

describe("docs/architecture.md: dependencies and what each is for", () => {
  it("zod only in ./cloudflare, ky only in ./ky, msw only in ./testing; src imports nothing unlisted", () => {
    const reached = new Map<string, string[]>();
    for (const { subpath, file } of entries)
      for (const f of valueClosure(file))
        if (!isLocal(f)) reached.set(packageOf(f), [...(reached.get(packageOf(f)) ?? []), subpath]);
    expect(Object.fromEntries(reached)).toEqual({ zod: ["./cloudflare"], ky: ["./ky"], msw: ["./testing"] });
    const imported = new Set(allEdges.filter((e) => !isLocal(e.to)).map((e) => packageOf(e.to)));
    expect([...imported].sort()).toEqual(["ky", "msw", "zod"]);
    // "zod … | runtime", "ky | optional peer", "msw | optional peer, dev"
    expect(Object.keys(pkg.dependencies)).toEqual(["zod"]);
    expect(pkg.peerDependenciesMeta.ky?.optional).toBe(true);
    expect(pkg.peerDependenciesMeta.msw?.optional).toBe(true);
    expect(pkg.devDependencies.msw).toBeDefined();
    // "tsup, typescript 6", "vite (pinned 8.3.8)", competitors pinned
    expect(pkg.devDependencies.typescript).toMatch(/^6\./);
    expect(pkg.devDependencies.vite).toBe("8.3.8");
    for (const name of ["ky", "cockatiel", "opossum", "p-retry", "ofetch"])
      expect(pkg.devDependencies[name], name).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe("docs/architecture.md: one store contract, one registry, where retries wait", () => {
  it("only src/stores/breaker-store.ts declares the store contract; every store returns BreakerStore", () => {
    const contracts: string[] = [];
    for (const [file, sf] of sources)
      for (const s of sf.statements) {
        if (!ts.isInterfaceDeclaration(s) && !ts.isTypeAliasDeclaration(s)) continue;
        const members = ts.isInterfaceDeclaration(s)
          ? s.members
          : ts.isTypeLiteralNode(s.type)
            ? s.type.members
            : ts.factory.createNodeArray<ts.TypeElement>();
        const names = members.map((m) => (m.name && ts.isIdentifier(m.name) ? m.name.text : ""));
        if (names.includes("publish") && names.includes("peek")) contracts.push(`${file}:${s.name.text}`);
      }
    expect(contracts).toEqual(["src/stores/breaker-store.ts:BreakerStore"]);
    expect(read("src/stores/memory-store.ts")).toMatch(/memoryStore\([^)]*\): BreakerStore \{/);
    expect(read("src/cloudflare/kv-store.ts")).toMatch(/\): BreakerStore & \{/);
    expect(read("src/cloudflare/durable-object-store.ts")).toMatch(/\): BreakerStore & \{/);
  });

  it("one breaker registry: BreakerRegistry is made once, and makes every layer's CircuitBreaker", () => {
    const made = (pattern: RegExp): string[] => files.filter((f) => pattern.test(read(f)));
    expect(made(/\bclass \w*Registry\b/)).toEqual(["src/policies/breaker-registry.ts"]);
    expect(made(/new BreakerRegistry\(/)).toEqual(["src/http/create-resilience.ts"]);
    expect(made(/new CircuitBreaker\(/)).toEqual(["src/policies/breaker-registry.ts"]);
  });

  it("how retries wait: delays in policies/backoff.ts; which, Retry-After and the budget in send/retry-decision.ts", () => {
    // "Where to change how retries wait: `src/policies/backoff.ts` (the delays) and
    // `src/http/send/retry-decision.ts` (which of them, `Retry-After`, the budget)."
    const fetchPath = files.filter((f) => /^src\/(http|fallback|degradation|cloudflare|ky)\//.test(f));
    expect(fetchPath.filter((f) => /\bbackoffDelay\(|\bexponentialDelay\(/.test(read(f)))).toEqual([
      "src/http/send/retry-decision.ts",
    ]);
    expect(fetchPath.filter((f) => /\.tryRetry\(/.test(read(f)))).toEqual(["src/http/send/retry-decision.ts"]);
    expect(read("src/http/send/retry-decision.ts")).toMatch(/retryAfterOf\(outcome\.value, clock\.now\(\)\)/);
    // The exponential base is raised nowhere else.
    expect(files.filter((f) => /exponentialBase\s*\*\*|Math\.pow\(/.test(read(f)))).toEqual([
      "src/policies/backoff.ts",
    ]);
  });
});

describe("docs/architecture.md: module scope and per-call state", () => {
  /** Calls and `new`s at module scope (outside functions, methods and instance fields) of `file`. */
  function moduleScope(file: string): string[] {
    const sf = sources.get(file) as ts.SourceFile;
    const found: string[] = [];
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && !ts.isClassStaticBlockDeclaration(node)) return;
      if (ts.isPropertyDeclaration(node) && !node.modifiers?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword))
        return;
      if (ts.isNewExpression(node) || ts.isCallExpression(node))
        found.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1} ${node.getText(sf)}`);
      ts.forEachChild(node, visit);
    };
    ts.forEachChild(sf, visit);
    return found;
  }

  it("nothing at module scope creates a timer, an AbortController or a promise", () => {
    const made = files
      .flatMap(moduleScope)
      .filter((text) =>
        /setTimeout|setInterval|queueMicrotask|AbortController|AbortSignal\.|Promise|\.then\(/.test(text),
      );
    expect(made).toEqual([]);
  });

  it("per-call state goes through no module-level map but the two the doc names", () => {
    // "… never through module-level maps, save two `WeakMap`s keyed by an object of the call's own …:
    // `request/call-request.ts`'s `replayDecisions` … and `fallback/chain-router.ts`'s `chosenChains`"
    // (the doc said none, until this run).
    const maps = files
      .flatMap(moduleScope)
      .filter((text) => /new (Weak)?Map\b/.test(text))
      .map((text) => text.split(" ")[0]);
    // Written per call and read back by another module: a call's replay decision, a proxied request's chain.
    const perCall = maps.filter((at) => {
      const [file] = (at as string).split(":");
      const sf = sources.get(file as string) as ts.SourceFile;
      const exported = sf.statements.filter(
        (s): s is ts.VariableStatement =>
          ts.isVariableStatement(s) && !!s.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword),
      );
      return exported.some((s) =>
        s.declarationList.declarations.some((d) => {
          const name = (d.name as ts.Identifier).text;
          return files.some((f) => f !== file && new RegExp(`\\b${name}\\.(set|get|delete)\\(`).test(read(f)));
        }),
      );
    });
    // Since the fiftieth session call-request.ts holds two (`replayDecisions` and `attemptKeys`), both named.
    expect(perCall.map((at) => (at as string).split(":")[0]).sort()).toEqual([
      "src/fallback/chain-router.ts",
      "src/http/request/call-request.ts",
      "src/http/request/call-request.ts",
    ]);
    expect(architecture).toContain("`attemptKeys`");
    expect(architecture).toContain("`replayDecisions`");
    expect(architecture).toContain("`chosenChains`");
  });
});

describe('docs/architecture.md: "the one way", "the one checker"', () => {
  it("an options object's defaults go through with-defaults.ts; the `??` beside it are lone defaults", () => {
    // "defaults (with-defaults.ts for an options object; a lone default sits beside its option)" (the doc said
    // "the one way", until this run).
    const optionFiles = files.filter(
      (f) =>
        /^src\/core\/options\//.test(f) || f === "src/http/resolve-options.ts" || f === "src/stores/memory-store.ts",
    );
    const inline = optionFiles.flatMap((f) =>
      read(f)
        .split("\n")
        .map((line, i) => ({ line: line.trim(), at: `${f}:${i + 1}` }))
        .filter(({ line }) => /\.\w+ \?\? [\d"]/.test(line) && !line.startsWith("*") && !line.startsWith("//"))
        .map(({ at, line }) => `${at} ${line}`),
    );
    // Each a single option's default, one per line: no object of defaults applied field by field.
    expect(inline.length).toBeLessThanOrEqual(3);
    // memory-store.ts's lone `maxKeys ?? 1000` went through `withDefaults` in the sixty-third session (a `null`
    // taken for the default without a word).
    expect(inline.map((l) => l.split(":")[0]).sort()).toEqual([
      "src/core/options/bulkhead-options.ts",
      "src/http/resolve-options.ts",
    ]);
    expect(read("src/stores/memory-store.ts")).toContain("withDefaults({ maxKeys: 1000 }");
    expect(architecture).toContain("a lone default sits beside its option");
  });

  it("options are checked by check-options.ts, and by retry()'s own small checker, which the doc names", () => {
    // "rule tables (check-options.ts, the one checker; `retry()` alone keeps a small one of its own in
    // policies/retry.ts …)" (the doc said "the one checker" alone, until this run).
    const retry = read("src/policies/retry.ts");
    const ownChecker = /function checkOptions\(/.test(retry) && /throw new ConfigError\(/.test(retry);
    const usesTheChecker = edges
      .get("src/policies/retry.ts")
      ?.some((e) => /^src\/core\/options\/(check-options|option-rules)\.ts$/.test(e.to));
    expect({ ownChecker, usesTheChecker }).toEqual({ ownChecker: true, usesTheChecker: false });
    expect(architecture).toContain("`retry()` alone keeps a small one of\n");
    const others = files.filter((f) => f !== "src/policies/retry.ts" && /function checkOptions\(/.test(read(f)));
    expect(others).toEqual(["src/core/options/check-options.ts"]);
  });
});

describe("links of docs/architecture.md, docs/targets.md and README.md", () => {
  it("every relative Markdown link resolves to a file", () => {
    const missing: string[] = [];
    for (const doc of ["docs/architecture.md", "docs/targets.md", "README.md"]) {
      for (const [, target] of read(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
        const path = (target as string).split("#")[0] as string;
        if (path === "" || /^[a-z]+:/.test(path)) continue;
        if (!existsSync(resolve(repo, dirname(doc), path))) missing.push(`${doc} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
