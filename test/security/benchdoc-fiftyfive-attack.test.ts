/**
 * Outside-in attack on what the benchmark and soak tooling does and measures (not its figures): docs/benchmarks.md,
 * docs/targets.md and the README's sentences about `npm run bench`, `npm run soak`, size-limit and the root breakdown.
 *
 * Docs:
 * - docs/benchmarks.md: "opossum at its defaults, inside the same p-retry"; "cockatiel, which has no default, with
 *   the policy its README shows (`retry` with `ExponentialBackoff` around `circuitBreaker` with
 *   `ConsecutiveBreaker(5)`, open 10 s) but `maxAttempts: 2` where the README has 3"; "p-retry with `retries: 2`";
 *   "\"every feature\" adds timeouts (30 s per attempt, 60 s in all), a bulkhead, a fallback chain of two endpoints
 *   without hedging, and a degradation rule rewriting a body field and a query parameter"; "\"defaults\" is
 *   `createResilience` with the breaker open 2 s"; "Loopback throughput: requests per second at concurrency 50";
 *   "Partial failure with an alternate: … 20 concurrent clients"; "`size-limit` (part of `npm test`) measures gzip
 *   of the built `dist/browser`".
 * - docs/targets.md: "the budgets in `.size-limit.json` (root 23.4 KiB, root with `./fallback` 32.9, with
 *   `./degradation` 29.7, all three 38.0, `retry` alone 2.4, every policy 12.5) sit less than 0.1 KiB above the
 *   latest sizes"; "in steps of 0.05 to 1.2 KiB (the root's 0.1 to 0.6 KiB): the root's from 14.5 KiB … to 22.2,
 *   and back to 22.1 …, to 22.2 again …, and to 22.3 and 22.4 …, and to 22.5 …, and to 22.6 …, and to 22.8 …, and to
 *   23.0 …, and to 23.3 …, and to 23.4"; "`node bench/root-breakdown.ts` bundles `import { createResilience }` for the
 *   browser as size-limit does and prices each group of source files by the gzip bytes the bundle loses without it
 *   (estimates: text shared between groups is counted under none, so the rows add up to less than the whole)";
 *   the soak: "20,000 calls, 200 in flight, through one layer with a fallback chain (`timeout.attempt` 1 s,
 *   `timeout.total` 3 s, `maxRetryAfter` 2 s)", "It counts per call, from outside the layer, the caller's promise
 *   settling and the layer's own `request` event (a second one of either is counted, and a call still open 5 s
 *   past `timeout.total` is counted as overdue instead of being waited for), and counts as late any call that
 *   settles more than 500 ms after `timeout.total`", "`npm test` runs a 2,000-call form of it with 100 calls in
 *   flight (`test/soak/soak.test.ts`)".
 * - README.md: "`npm run soak` | the chaos soak: 20,000 calls, 200 in flight"; "`npm run bench` | the benchmarks
 *   … (`-- --quick`)"; "Sizes in KiB (1,024 bytes): `npx size-limit` after `npm run build` (esbuild, minified,
 *   gzip; the budgets in `.size-limit.json` run in `npm test`), which prints kB of 1,000 bytes"; the commands table.
 *
 * How: bench/flaky.ts `measureFlaky` (0% and 1 call, a real bench/upstream-server.ts child) with `opossum`,
 * `cockatiel` and `p-retry` wrapped by `vi.mock` to record the options each variant passes; bench/variants.ts with
 * the root entry's `createResilience` wrapped to hand back the instance a variant builds (then `setLevel` from its
 * degradation stage); bench/storm.ts `measureThroughput` and `measurePartial` over a stubbed global `fetch` counting
 * requests in flight; test/soak/soak.ts spawned (`node --expose-gc`, 400 calls) with a module hook that swaps the
 * root entry it imports for a misbehaving fake layer; `node bench/root-breakdown.ts`; `npx size-limit` (plain and
 * `--json`, after `npm run build` when dist/browser is older than src); `git show` of `.size-limit.json`'s history.
 *
 * Paths: plain call (defaults variant), fallback chain and degradation rewrite (every-feature variant), the soak's
 * layer (replaced), bundles of the browser build.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the fifty-fifth session the text was
 * corrected, so plain `it` asserting the corrected sentence):
 * 1. docs/benchmarks.md "opossum at its defaults, inside the same p-retry" (and "opossum with defaults inside
 *    p-retry 1 (1)"). Observed: the random-503 and full-outage variant builds opossum's `CircuitBreaker` with
 *    `{ timeout: false }`, switching off opossum's 10 s default timeout (bench/flaky.ts; only the results' own
 *    policy text and the variant's name say "timeout off"). Corrected: the guide says its timeout is switched off.
 *
 * Held (plain `it`):
 * - cockatiel's random-503 policy: `retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() })` around
 *   `circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })`; p-retry gets
 *   `{ retries: 2 }` only.
 * - "defaults" variant: `createResilience({ fetch, breaker: { timeout: 2000 } })`, nothing else; "every feature":
 *   timeouts 30 s / 60 s, a bulkhead, a chain of two endpoints without hedging, and its rule rewrites
 *   `parameters.steps` in a JSON body and `q` in the query at `medium`, nothing at `full`.
 * - Throughput runs 50 requests in flight; the partial-failure step 20.
 * - The soak's counters, driven by a fake layer: a second `request` event counts `settledTwice`, a missing one
 *   `layerMissing`, a call open 5 s past `timeout.total` `overdue` (and `neverSettled`) without stopping the run,
 *   settling 800–900 ms past it (resolve or reject) `late`, 100 ms past it not; 200 calls in flight by default; one
 *   layer with `timeout.attempt` 1,000, `timeout.total` 3,000, `maxRetryAfter` 2,000 and a fallback stage.
 * - `node bench/root-breakdown.ts`: the same twelve groups with the same file counts as targets.md's table, the
 *   rows add up to less than the whole.
 * - size-limit: every entry gzip of dist/browser; the limits are targets.md's list; each sits above its size by less
 *   than 0.1 KiB; the plain output is kB of 1,000 bytes; the budgets' history holds the steps and the root's
 *   sequence the paragraph gives.
 * - Every command the README's table and the two guides name is a package.json script; `npm run soak` passes
 *   20,000; `npm test` runs size-limit and the soak test at 2,000 / 100.
 *
 * Docs-silent (not pinned):
 * - The soak cannot see a promise settle twice (a promise settles once; only the `request` event can come twice).
 * - A call that settles after its watchdog is counted overdue and, when it settles before the report, late too.
 * - root-breakdown bundles src/ with esbuild and a define, size-limit the built dist/browser: the whole differs
 *   (24,091 against 23,919 bytes here), which targets.md states.
 * - The storm's ofetch variant sets `retry: 2` (ofetch's default for a GET is 1), so it makes 3 attempts like the
 *   others; no sentence says how ofetch is configured.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { measureFlaky } from "../../bench/flaky.ts";
import { measurePartial, measureThroughput } from "../../bench/storm.ts";
import { variants } from "../../bench/variants.ts";

const root = resolve(import.meta.dirname, "../..");
const read = (path: string): string => readFileSync(join(root, path), "utf8");

const hooks = vi.hoisted(() => ({
  opossum: [] as unknown[],
  breakers: [] as Array<Record<string, unknown>>,
  retries: [] as Array<Record<string, unknown>>,
  pRetry: [] as unknown[],
  made: [] as Array<{ options: Record<string, unknown> | undefined; r: unknown }>,
}));

vi.mock("opossum", async (importOriginal) => {
  const real = (await importOriginal<{ default: new (fn: unknown, o?: unknown) => object }>()).default;
  class Recorded extends real {
    constructor(fn: unknown, options?: unknown) {
      // A copy, as given: opossum writes its defaults into the object it is handed.
      hooks.opossum.push(options === undefined ? undefined : { ...(options as object) });
      super(fn, options);
    }
  }
  return { default: Recorded };
});
vi.mock("cockatiel", async (importOriginal) => {
  const real = await importOriginal<typeof import("cockatiel")>();
  return {
    ...real,
    circuitBreaker: (policy: never, options: never) => {
      hooks.breakers.push(options);
      return real.circuitBreaker(policy, options);
    },
    retry: (policy: never, options: never) => {
      hooks.retries.push(options);
      return real.retry(policy, options);
    },
  };
});
vi.mock("p-retry", async (importOriginal) => {
  const real = (await importOriginal<{ default: (fn: unknown, o?: unknown) => Promise<unknown> }>()).default;
  return {
    default: (fn: unknown, options?: unknown) => {
      hooks.pRetry.push(options);
      return real(fn, options);
    },
  };
});
vi.mock("../../src/index.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/index.ts")>();
  return {
    ...real,
    createResilience: (options?: Parameters<typeof real.createResilience>[0]) => {
      const r = real.createResilience(options);
      hooks.made.push({ options: options as Record<string, unknown> | undefined, r });
      return r;
    },
  };
});

const realFetch = globalThis.fetch;
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("each variant as configured", () => {
  const reset = () => {
    hooks.opossum.length = 0;
    hooks.breakers.length = 0;
    hooks.retries.length = 0;
    hooks.pRetry.length = 0;
  };

  // Asserted before: no options at all ("opossum at its defaults"). docs/benchmarks.md now says "opossum at its
  // defaults but its 10 s call timeout, switched off (`timeout: false`…)".
  it("random 503s / full outage: opossum is at its defaults but its timeout, switched off, inside p-retry", async () => {
    reset();
    const rows = await measureFlaky(0, 1, 1, ["p-retry + opossum (defaults, timeout off)"]);
    expect(rows[0]?.served).toBe(1);
    expect(hooks.opossum).toHaveLength(1);
    expect(hooks.opossum[0] ?? {}).toEqual({ timeout: false });
  }, 30_000);

  it("random 503s: cockatiel's README policy at maxAttempts 2, p-retry with retries 2, ky bare", async () => {
    const { ConsecutiveBreaker, ExponentialBackoff } = await import("cockatiel");
    reset();
    const rows = await measureFlaky(0, 1, 1, ["cockatiel retry + ConsecutiveBreaker(5)", "p-retry (retries: 2)", "ky"]);
    expect(rows.map((r) => r.served)).toEqual([1, 1, 1]);
    expect(hooks.retries).toHaveLength(1);
    expect(hooks.retries[0]?.maxAttempts).toBe(2);
    expect(hooks.retries[0]?.backoff).toBeInstanceOf(ExponentialBackoff);
    expect(hooks.breakers).toHaveLength(1);
    expect(hooks.breakers[0]?.halfOpenAfter).toBe(10_000);
    const breaker = hooks.breakers[0]?.breaker as InstanceType<typeof ConsecutiveBreaker>;
    expect(breaker).toBeInstanceOf(ConsecutiveBreaker);
    expect((breaker as unknown as { threshold: number }).threshold).toBe(5);
    expect(hooks.pRetry).toEqual([{ retries: 2 }]);
  }, 30_000);

  it('overhead: "defaults" is createResilience with the breaker open 2 s, nothing else', async () => {
    hooks.made.length = 0;
    const transport = async () => new Response("ok");
    const call = (variants["resilient-fetch (defaults)"] as NonNullable<(typeof variants)[string]>)(transport, {
      breakerTimeout: 2_000,
    });
    expect(((await call("http://127.0.0.1:1/gen/x")) as Response).status).toBe(200);
    expect(hooks.made).toHaveLength(1);
    expect(hooks.made[0]?.options).toEqual({ fetch: transport, breaker: { timeout: 2_000 } });
  });

  it('overhead: "every feature" has the timeouts, a bulkhead, a two-endpoint chain, and a rule rewriting a body field and a query parameter', async () => {
    hooks.made.length = 0;
    const sent: Array<{ url: string; body: string }> = [];
    const transport = async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      sent.push({ url: request.url, body: await request.text() });
      return new Response("ok");
    };
    const make = variants["resilient-fetch (every feature)"] as NonNullable<(typeof variants)[string]>;
    make(transport, { breakerTimeout: 2_000, primary: "http://127.0.0.1:1/gen" });
    const made = hooks.made[0];
    expect(made?.options?.timeout).toEqual({ attempt: 30_000, total: 60_000 });
    expect(made?.options?.bulkhead).toEqual({ maxConcurrent: 1_000, maxQueue: 1_000 });
    expect(made?.options?.fallback).toBeDefined();
    const r = made?.r as {
      fetch: (u: string, i?: RequestInit) => Promise<Response>;
      degradation: { setLevel: (l: string) => void };
    };
    const body = JSON.stringify({ parameters: { steps: 50 } });
    const init = { method: "POST", body, headers: { "content-type": "application/json" } };
    await r.fetch("http://127.0.0.1:1/gen/x?q=1", init);
    r.degradation.setLevel("medium");
    await r.fetch("http://127.0.0.1:1/gen/x?q=1", init);
    expect(sent).toHaveLength(2);
    expect(new URL(sent[0]?.url as string).searchParams.get("q")).toBe("1");
    expect(JSON.parse(sent[0]?.body as string)).toEqual({ parameters: { steps: 50 } });
    expect(new URL(sent[1]?.url as string).searchParams.get("q")).toBe("0.8");
    expect(JSON.parse(sent[1]?.body as string)).toEqual({ parameters: { steps: 30 } });
  });
});

describe("concurrency of the throughput and partial-failure steps", () => {
  const counting = (answer: (url: string) => Promise<Response> | undefined) => {
    const seen = { now: 0, max: 0 };
    vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      const own = answer(url);
      if (!own) return realFetch(input, init);
      seen.now++;
      seen.max = Math.max(seen.max, seen.now);
      try {
        await new Promise((r) => setImmediate(r));
        return await own;
      } finally {
        seen.now--;
      }
    });
    return seen;
  };

  it("loopback throughput runs at concurrency 50", async () => {
    const seen = counting(async () => new Response("ok"));
    const rows = await measureThroughput(0.03, 2);
    expect(rows.map((r) => r.variant)).toEqual(["bare fetch", "resilient-fetch (defaults)"]);
    expect(seen.max).toBe(50);
  }, 30_000);

  it("partial failure runs 20 concurrent clients", async () => {
    const seen = counting((url) => (url.includes("/gen/") ? Promise.resolve(new Response("ok")) : undefined));
    const rows = await measurePartial(40);
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row.successPct).toBe(100);
    expect(seen.max).toBe(20);
  }, 60_000);
});

describe("the chaos soak's counters, driven by a misbehaving layer", () => {
  const dir = mkdtempSync(join(tmpdir(), "benchdoc-soak-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fake = join(dir, "fake-layer.mjs");
  writeFileSync(
    fake,
    `const listeners = [];
let now = 0, maxInFlight = 0;
const made = [];
process.on("exit", () => process.stderr.write("FAKE " + JSON.stringify({ maxInFlight, made }) + "\\n"));
export function createResilience(options) {
  made.push({ attempt: options?.timeout?.attempt, total: options?.timeout?.total,
    maxRetryAfter: options?.retry?.maxRetryAfter, fallback: typeof options?.fallback });
  return {
    on(type, fn) { if (type === "request") listeners.push(fn); },
    fetch(url) {
      const id = Number(/\\/jobs\\/(\\d+)$/.exec(String(url))[1]);
      const emit = (n) => { for (let k = 0; k < n; k++) for (const l of listeners) l({ url: String(url) }); };
      now++; maxInFlight = Math.max(maxInFlight, now);
      const after = (ms, f) => new Promise((res, rej) => setTimeout(() => { now--; f(res, rej); }, ms));
      switch (id) {
        case 0: return after(0, (res) => { emit(2); res(new Response("ok")); });
        case 1: return after(0, (res) => res(new Response("ok")));
        case 2: return after(3100, (res) => { emit(1); res(new Response("ok")); });
        case 3: return after(3800, (res) => { emit(1); res(new Response("ok")); });
        case 4: return after(3900, (_, rej) => { emit(1); rej(new Error("late failure")); });
        case 5: return new Promise(() => {});
        case 6: return after(0, (res) => { emit(1); res(new Response("no", { status: 503 })); });
        default: return after(1, (res) => { emit(1); res(new Response("ok")); });
      }
    },
  };
}
`,
  );
  const hookFile = join(dir, "hooks.mjs");
  writeFileSync(
    hookFile,
    `export async function resolve(specifier, context, next) {
  if (specifier === "../../src/index.ts" && context.parentURL?.endsWith("/test/soak/soak.ts")) {
    return { url: ${JSON.stringify(pathToFileURL(fake).href)}, shortCircuit: true };
  }
  return next(specifier, context);
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hookFile).href)});\n`,
  );

  it("counts twice, missing, late, overdue and never as it says, 200 in flight by default", async () => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--import", pathToFileURL(register).href, join(root, "test/soak/soak.ts"), "400"],
      { stdio: ["ignore", "pipe", "pipe"], cwd: root },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const kill = setTimeout(() => child.kill("SIGKILL"), 55_000);
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    clearTimeout(kill);
    expect(code, err).toBe(0);
    const report = JSON.parse(out.trim());
    const layer = JSON.parse(/^FAKE (.*)$/m.exec(err)?.[1] ?? "null");
    expect(layer).toEqual({
      maxInFlight: 200,
      made: [{ attempt: 1_000, total: 3_000, maxRetryAfter: 2_000, fallback: "object" }],
    });
    expect(report).toMatchObject({
      calls: 400,
      settledOnce: 397,
      settledTwice: 1,
      layerMissing: 1,
      neverSettled: 1,
      overdue: 1,
      late: 2,
      lateToleranceMs: 500,
      served: 397,
      unhandled: 0,
    });
    expect(report.maxOvershootMs).toBeGreaterThanOrEqual(800);
  }, 60_000);
});

describe("root breakdown and size-limit", () => {
  it("node bench/root-breakdown.ts gives targets.md's groups and file counts; the rows add up to less than the whole", () => {
    const out = execFileSync(process.execPath, [join(root, "bench/root-breakdown.ts")], {
      cwd: root,
      encoding: "utf8",
    });
    const whole = Number(/browser build: (\d+) bytes min\+gzip/.exec(out)?.[1]);
    const rows = [...out.matchAll(/^\| ([^|]+?) \| (\d+) \| ([\d,]+) \|$/gm)].map((m) => ({
      group: m[1] as string,
      files: Number(m[2]),
      bytes: Number((m[3] as string).replaceAll(",", "")),
    }));
    expect(rows).toHaveLength(12);
    const section = read("docs/targets.md").split("## Where the root's bytes go")[1] as string;
    const documented = [
      ...section.matchAll(/^\| ((?!group)[A-Za-z][^|]+?) +\| (\d+) +\| [\d,]+ +\| [\d,]+ +\|$/gm),
    ].map((m) => ({
      group: m[1] as string,
      files: Number(m[2]),
    }));
    expect(documented).toHaveLength(12);
    const byName = (a: { group: string }, b: { group: string }) => a.group.localeCompare(b.group);
    expect(rows.map(({ group, files }) => ({ group, files })).sort(byName)).toEqual(documented.sort(byName));
    expect(rows.reduce((s, r) => s + r.bytes, 0)).toBeLessThan(whole);
  }, 30_000);

  const newest = (dir: string): number =>
    Math.max(
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  const built = () => {
    const entry = join(root, "dist/browser/index.js");
    if (!existsSync(entry) || statSync(entry).mtimeMs < newest(join(root, "src"))) {
      execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
    }
  };

  it("size-limit measures gzip of dist/browser against targets.md's budgets, each less than 0.1 KiB above", () => {
    built();
    const config = JSON.parse(read(".size-limit.json")) as Array<{
      path: string | string[];
      gzip: boolean;
      limit: string;
    }>;
    for (const entry of config) {
      expect(entry.gzip).toBe(true);
      for (const p of [entry.path].flat()) expect(p.startsWith("dist/browser/")).toBe(true);
    }
    const paragraph = /the budgets in `\.size-limit\.json` \(([^)]+)\)/.exec(read("docs/targets.md"))?.[1] as string;
    expect([...paragraph.matchAll(/(\d+\.\d+)/g)].map((m) => m[1])).toEqual(
      config.map((e) => /^([\d.]+) KiB$/.exec(e.limit)?.[1]),
    );
    const bin = join(root, "node_modules/.bin/size-limit");
    const json = JSON.parse(
      execFileSync(bin, ["--json"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
    );
    for (const e of json as Array<{ size: number; sizeLimit: number; passed: boolean }>) {
      expect(e.passed).toBe(true);
      expect(e.sizeLimit - e.size).toBeLessThan(102.4);
    }
    // README: size-limit "prints kB of 1,000 bytes".
    // Read as text: with CI set, size-limit colours its labels.
    const plain = stripVTControlCharacters(
      execFileSync(bin, [], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
    );
    const rootSize = (json as Array<{ size: number }>)[0]?.size as number;
    // Two decimals at most, a trailing zero dropped (24,401 bytes print as "24.4 kB"), as size-limit writes them.
    expect(plain).toContain(`Size:       ${Number((rootSize / 1000).toFixed(2))} kB`);
  }, 120_000);

  it("the budgets' history: raises of 0.05 to 1.2 KiB, the root's 0.1 to 0.6 from 14.5, and its sequence from 22.2", () => {
    const git = (...a: string[]) => execFileSync("git", a, { cwd: root, encoding: "utf8" });
    const commits = git("log", "--reverse", "--format=%h", "--", ".size-limit.json").trim().split("\n");
    const limits = commits.map((c) => {
      const entries = JSON.parse(git("show", `${c}:.size-limit.json`)) as Array<{ name: string; limit: string }>;
      return new Map(entries.map((e) => [e.name.split(",")[0] as string, Number.parseFloat(e.limit)]));
    });
    const from = limits.findIndex((m) => m.get("root: { createResilience }") === 14.5);
    expect(from).toBeGreaterThan(0);
    const raises: number[] = [];
    const rootRaises: number[] = [];
    const rootSeq: number[] = [];
    for (let i = from; i < limits.length; i++) {
      const now = limits[i] as Map<string, number>;
      const rootNow = now.get("root: { createResilience }") as number;
      if (rootSeq.at(-1) !== rootNow) rootSeq.push(rootNow);
      if (i === from) continue;
      for (const [name, limit] of now) {
        const before = (limits[i - 1] as Map<string, number>).get(name);
        if (before === undefined || limit <= before) continue;
        const step = Math.round((limit - before) * 100) / 100;
        raises.push(step);
        if (name.startsWith("root: {")) rootRaises.push(step);
      }
    }
    expect(Math.min(...raises)).toBe(0.05);
    expect(Math.max(...raises)).toBe(1.2);
    expect(Math.min(...rootRaises)).toBe(0.1);
    expect(Math.max(...rootRaises)).toBe(0.6);
    expect(rootSeq.slice(rootSeq.indexOf(22.2))).toEqual([
      22.2, 22.1, 22.2, 22.3, 22.4, 22.5, 22.6, 22.8, 23, 23.3, 23.4, 23.6, 23.7, 23.8, 23.9, 24, 24.1,
    ]);
  }, 60_000);
});

describe("documented commands", () => {
  const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };

  it("every command the README table and the guides name is a script; soak 20,000 and npm test's parts as said", () => {
    const named = new Set<string>();
    for (const doc of ["README.md", "docs/benchmarks.md", "docs/targets.md"]) {
      for (const m of read(doc).matchAll(/`npm run (?:-s )?([\w:-]+)/g)) named.add(m[1] as string);
    }
    for (const n of ["example:ky", "example:sdk-fetch", "example:parity"]) named.add(n);
    expect([...named].filter((n) => !(n in pkg.scripts))).toEqual([]);
    expect(named.has("bench") && named.has("soak")).toBe(true);
    expect(pkg.scripts.bench).toBe("node bench/run.ts");
    expect(pkg.scripts.soak).toBe("node --expose-gc test/soak/soak.ts 20000");
    expect(read("bench/run.ts")).toContain('process.argv.includes("--quick")');
    // size-limit is part of npm test, and so is the soak test (vitest's node project takes test/**/*.test.ts).
    expect(pkg.scripts.test).toContain("npm run test:package");
    expect(pkg.scripts["test:package"]).toContain("size-limit");
    expect(pkg.scripts.test).toContain("npm run test:unit");
    expect(read("vitest.config.ts")).toContain('include: ["test/**/*.test.ts"]');
    expect(read("test/soak/soak.test.ts")).toContain("soak(2_000, 100)");
  });
});
