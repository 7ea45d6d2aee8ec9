/**
 * Outside-in attack on the benchmark docs: what docs/benchmarks.md and docs/targets.md say `npm run bench` and
 * its helpers (bench/*.ts) do, checked by driving small instances of the bench's own modules (few calls, short
 * turns, fake child processes where a real run would take minutes) and the library's public entries.
 *
 * Docs: docs/benchmarks.md "## Running it" (`node bench/overhead-chart.ts <overhead run .json>` writes
 * "`docs/benchmarks/overhead.svg`"; `npm run bench -- --quick` writes "under `bench/results/` (ignored by git)";
 * `node bench/flaky-run.ts <failRate> <calls> <clients> [variant …]` gives "one random-503 scenario as one JSON
 * line"; "The JSON holds the machine …, the commit (… `BENCH_COMMIT` names the commit of an exported tree without
 * `.git`), the peers' versions, the settings of every variant and every figure"); "## What each scenario
 * measures" ("Success-path overhead: … with a stub `fetch` …; each variant in its own process, rounds interleaved;
 * median and range over rounds"; "Loopback throughput: … bare `fetch` and the library in the same round, in turns
 * whose order flips every round; the ratio is the median of the rounds' ratios, shown with their range"; "Random
 * 503s: GETs from 4 independent clients, each calling one call after another through one shared instance, against
 * an upstream that answers 503 to that share of requests (seeded, so each variant meets the same sequence) …
 * Every variant uses its library's defaults, or the policy its README shows when it has no default (cockatiel)";
 * "10,000 calls whose 503s come from a seeded stream per call, so every variant meets the same failures and a
 * rerun meets them again"; "Memory and scale: heap after GC over 1,000,000 calls to 100,000 hosts through one
 * instance, and the cost per call by number of distinct hosts"; the table's "1,000 breakers held"); docs/targets.md
 * ("a dead API opens the breaker within 5 calls | the 5th call is refused, after 12 requests"; the per-call runs
 * "each variant in its own process, rounds interleaved, each compared with bare fetch in the same round and mode
 * over a stub fetch; medians of the rounds").
 *
 * How: bench/overhead.ts `measureOverhead` with `node:child_process.fork` of `overhead-child.ts` replaced by a fake
 * child reporting chosen ns/op (every other fork is real); bench/storm.ts `measureThroughput` with 20 ms turns over a
 * stubbed global `fetch`; bench/flaky.ts `measureFlaky` against bench/upstream-server.ts child processes on
 * 127.0.0.1 (fail rate 0 or 1, one to sixteen calls), with `p-retry` wrapped to record its options;
 * bench/child.ts `startUpstream` (seeded flaky mode) and `runChild` (`memory-child.ts` at 2,000 calls);
 * bench/variants.ts `variants` over a stub transport; `node bench/flaky-run.ts` and `node bench/overhead-chart.ts`
 * as commands; `createResilience`/`getResilienceInfo` (root) and `TestClock` (./testing) for the outage target.
 *
 * Paths: plain call (every overhead variant; defaults), fallback chain (the "every feature" variant), degradation
 * rewrite stage (the "every feature" variant, level read only).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour), all three since fixed by the docs: the
 * sentences now say what the bench does, and each test asserts the new sentence and the bench's behaviour:
 * 1. docs/benchmarks.md "Every variant uses its library's defaults, or the policy its README shows when it has no
 *    default (cockatiel)". Observed: the p-retry variant of the random-503 step is called with `{ retries: 2 }`,
 *    not p-retry's default (10 retries); the bench's own text says so ("its default is 10"). From bench/flaky.ts
 *    `flakyVariants["p-retry (retries: 2)"]` (and `variants["p-retry"]` in bench/variants.ts).
 * 2. The same sentence, for cockatiel. Observed: a call against a dead upstream makes 3 requests; the policy
 *    cockatiel's README shows (`retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() })` around
 *    `ConsecutiveBreaker(5)`, node_modules/cockatiel/readme.md) makes 4. bench/flaky.ts uses `maxAttempts: 2`, as
 *    do the storm and partial-failure variants in bench/variants.ts (the partial step's "cockatiel's README
 *    policy, open 2 s" is the same `maxAttempts: 2`). Both 1 and 2 were chosen to give every peer 3 attempts; the
 *    doc should say so instead of "defaults"/"README".
 * 3. docs/benchmarks.md "The JSON holds … the settings of every variant and every figure". Observed: the newest
 *    committed results JSON (run.ts's output) has settings (`policies`) for the six random-503 variants only; the
 *    overhead, storm and partial-failure variants it reports figures for ("resilient-fetch (every feature)",
 *    "ofetch", "opossum", "resilient-fetch + alternate", "cockatiel + fallback", …) have none. bench/run.ts
 *    writes `policies: flakyPolicies` (bench/flaky.ts) and nothing from bench/variants.ts.
 *    Now: every random-503 variant is held to 3 attempts, each named with its setting (p-retry `retries: 2`,
 *    cockatiel's README policy at `maxAttempts: 2`); the JSON holds the random-503 variants' settings, and the
 *    overhead variants ("defaults" with the breaker open 2 s, "every feature") are described in the doc.
 *
 * Held (plain `it`):
 * - Success-path overhead: one fork per variant, mode and round, in the order round → mode (unread, read) → bare
 *   fetch then the variant; each variant's added ns is its time minus bare fetch's of the same round and mode
 *   (a load that moves between rounds cancels out); median and min/max over rounds; CPU added the same way.
 * - Loopback throughput: bare fetch and the library take turns, the order flips every round (B L | L B | B L);
 *   bare's ratio is 1 and the library's median ratio lies inside its range.
 * - Random 503s: 4 clients never have more than 4 requests in flight and reach 4; each call `i` asks for
 *   `?call=i` once at a 0% rate; the seeded upstream answers attempt k of call i as `failsAt(rate, seed, i, k)`
 *   whatever the order and interleaving, the same in a second upstream (a rerun), and the ceiling counts calls
 *   whose three draws all failed. ky's variant is at ky's defaults (3 requests per call against a dead upstream).
 * - Every variant in bench/variants.ts resolves a standard `Response` with the stub's body for the overhead stub
 *   (what the read mode needs); "every feature" goes through the fallback chain (`endpoint: "primary"`) with an
 *   attempt signal (its timeouts), "defaults" through the plain path.
 * - Full outage with defaults (TestClock): calls 1–4 send 3 requests each, the 5th is refused with
 *   `CircuitOpenError` and sends nothing: "the 5th call is refused, after 12 requests".
 * - Memory: `memory-child.ts` refuses to run without `--expose-gc` (heap is read after a forced GC), reports the
 *   heap at the start and at each fifth (6 figures), holds 1,000 breakers (`breaker.maxHosts`) over 1,500 hosts,
 *   and a cost per call for 10, 1,000 and all hosts.
 * - `node bench/flaky-run.ts 0 4 2 "resilient-fetch (defaults)"` prints one JSON line (rows, seed 1, clients 2);
 *   `node bench/overhead-chart.ts run.json` writes `docs/benchmarks/overhead.svg` (relative to the working
 *   directory) with a bar per row; `bench/results/` is ignored by git; `benchCommit()` returns `BENCH_COMMIT`.
 *
 * Docs-silent (not pinned; the first three since said in docs/benchmarks.md):
 * - "Running it" said `npm run bench` writes `docs/benchmarks/results-<date>.md`; run.ts writes
 *   `results-<date>-<commit>.md`/`.json` (the committed files carry the commit). Not driven: a full run is 41 min.
 * - The overhead and instruction steps' "resilient-fetch (defaults)" sets `breaker.timeout` (2 s, the storm's
 *   value), not the shipped 30 s: no effect on a success path, but it is not `createResilience({ fetch })`.
 * - The "every feature" variant leaves out hedging, a shared store, analytics and listeners; the docs list what it
 *   costs (a chain without hedging, deadline, degradation level) but never what "every feature" is made of.
 * - The partial-failure primary draws its 503s from the arrival-order stream (no `?call=`), so unlike the
 *   random-503 rows its variants do not meet the same failures.
 * - The edge step (`measureEdge(10_000)`, not run here: its 1,000 TestClock ticks take about 10 s) gave, on this
 *   tree, KV 40/0 and 140/26, Durable Object 240 healthy and 346 in the outage (targets.md: 343 at `e39eaf8`).
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it, vi } from "vitest";
import { startUpstream } from "../../bench/child.ts";
import { benchCommit } from "../../bench/commit.ts";
import { flakyPolicies, measureFlaky } from "../../bench/flaky.ts";
import { measureOverhead } from "../../bench/overhead.ts";
import { failsAt, unservable } from "../../bench/seeded.ts";
import { measureThroughput } from "../../bench/storm.ts";
import { variants } from "../../bench/variants.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const hooks = vi.hoisted(() => ({
  /** When set, a fork of overhead-child.ts is faked and answers this. */
  overheadChild: undefined as undefined | ((args: readonly string[]) => { nsPerOp: number; cpuNsPerOp: number }),
  forks: [] as string[][],
  pRetryOptions: [] as unknown[],
}));

vi.mock("node:child_process", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:child_process")>();
  const { EventEmitter } = await import("node:events");
  const fork = ((modulePath: string | URL, args?: readonly string[], options?: object) => {
    const answer = hooks.overheadChild;
    if (!answer || !String(modulePath).endsWith("overhead-child.ts")) {
      return real.fork(modulePath, args as string[], options);
    }
    const argv = [...(args ?? [])];
    hooks.forks.push(argv);
    const child = Object.assign(new EventEmitter(), { stdout: new EventEmitter() });
    setImmediate(() => {
      child.stdout.emit("data", Buffer.from(`${JSON.stringify({ name: argv[0], mode: argv[2], ...answer(argv) })}\n`));
      child.emit("exit", 0);
    });
    return child;
  }) as typeof real.fork;
  return { ...real, default: { ...real, fork }, fork };
});

vi.mock("p-retry", async (importOriginal) => {
  const real = await importOriginal<typeof import("p-retry")>();
  const wrapped = ((input: Parameters<typeof real.default>[0], options?: Parameters<typeof real.default>[1]) => {
    hooks.pRetryOptions.push(options);
    return real.default(input, options);
  }) as typeof real.default;
  return { ...real, default: wrapped };
});

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const benchDoc = readFileSync(resolve(root, "docs/benchmarks.md"), "utf8");
const STUB_BODY = '{"ok":true}';
const stub = () =>
  Promise.resolve(new Response(STUB_BODY, { status: 200, headers: { "content-type": "application/json" } }));
const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe("success-path overhead (bench/overhead.ts)", () => {
  it("forks each variant per round and mode, interleaved, and subtracts bare fetch of the same round", async () => {
    hooks.forks.length = 0;
    // A machine whose load moves between (round, mode) groups: 10 µs more per group for everyone.
    const names = 2;
    const extra: Record<string, number[]> = { unread: [500, 900, 700], read: [1_500, 1_100, 1_300] };
    hooks.overheadChild = (args) => {
      const group = Math.floor((hooks.forks.length - 1) / names);
      const round = Math.floor(group / 2);
      const load = 10_000 * group;
      const own = args[0] === "bare fetch" ? 0 : (extra[args[2] as string]?.[round] ?? Number.NaN);
      return { nsPerOp: 50_000 + load + own, cpuNsPerOp: 40_000 + load + own };
    };
    try {
      const rows = await measureOverhead(3, 10, ["resilient-fetch (defaults)"]);
      const order = hooks.forks.map(([name, calls, mode]) => `${name}/${mode}/${calls}`);
      const expected: string[] = [];
      for (let r = 0; r < 3; r++) {
        for (const mode of ["unread", "read"]) {
          expected.push(`bare fetch/${mode}/10`, `resilient-fetch (defaults)/${mode}/10`);
        }
      }
      expect(order).toEqual(expected);
      expect(rows).toEqual([
        {
          variant: "resilient-fetch (defaults)",
          mode: "unread",
          addedNs: 700,
          minNs: 500,
          maxNs: 900,
          cpuAddedNs: 700,
        },
        {
          variant: "resilient-fetch (defaults)",
          mode: "read",
          addedNs: 1_300,
          minNs: 1_100,
          maxNs: 1_500,
          cpuAddedNs: 1_300,
        },
      ]);
    } finally {
      hooks.overheadChild = undefined;
    }
  });

  it("every variant resolves a standard Response with the stub's body; every feature goes through the chain", async () => {
    const seen: Array<{ url: string; signal: boolean }> = [];
    const recording = (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push({ url: String(input instanceof Request ? input.url : input), signal: init?.signal != null });
      return stub();
    };
    for (const [name, make] of Object.entries(variants)) {
      const call = make(recording, { breakerTimeout: 2_000 });
      const result = await call("http://127.0.0.1:1/gen/x");
      expect(result, name).toBeInstanceOf(Response);
      expect(await (result as Response).text(), name).toBe(STUB_BODY);
      if (name === "resilient-fetch (every feature)") {
        expect(getResilienceInfo(result as Response)).toMatchObject({ endpoint: "primary", fromFallback: false });
        expect(seen.at(-1)).toEqual({ url: "http://127.0.0.1:1/gen/x", signal: true });
      }
      if (name === "resilient-fetch (defaults)") {
        expect(getResilienceInfo(result as Response)).toMatchObject({ endpoint: "127.0.0.1:1", attempts: 1 });
      }
    }
  });
});

describe("loopback throughput (bench/storm.ts measureThroughput)", () => {
  it("runs bare fetch and the library in turns whose order flips every round", async () => {
    const turns: string[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation((...args: unknown[]) => {
      // Bare fetch is called as fetch(url); the layer passes (url, init).
      const who = args.length === 1 ? "bare" : "library";
      if (turns.at(-1) !== who) turns.push(who);
      return Promise.resolve(new Response("{}"));
    });
    try {
      const rows = await measureThroughput(0.02, 3);
      expect(turns).toEqual(["bare", "library", "bare", "library"]); // B L | L B | B L
      const bare = rows.find((r) => r.variant === "bare fetch");
      const lib = rows.find((r) => r.variant === "resilient-fetch (defaults)");
      expect(bare).toMatchObject({ ratioToBare: 1, ratioRange: [1, 1] });
      expect(lib?.ratioToBare).toBeGreaterThanOrEqual(lib?.ratioRange[0] ?? Number.NaN);
      expect(lib?.ratioToBare).toBeLessThanOrEqual(lib?.ratioRange[1] ?? Number.NaN);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("random 503s (bench/flaky.ts, bench/seeded.ts, bench/upstream-server.ts)", () => {
  it("4 sequential clients share the calls: at most 4 in flight, each call asked once at 0%", async () => {
    const real = globalThis.fetch;
    let inFlight = 0;
    let peak = 0;
    const asked: string[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith("/__stats")) return real(input, init);
      asked.push(url.slice(url.indexOf("?")));
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        return await real(input, init);
      } finally {
        inFlight--;
      }
    });
    try {
      const [row] = await measureFlaky(0, 16, 4, ["resilient-fetch (defaults)"], 1);
      expect(peak).toBe(4);
      expect(asked.sort()).toEqual(Array.from({ length: 16 }, (_, i) => `?call=${i}`).sort());
      expect(row).toMatchObject({ served: 16, attemptsPerCall: 1, ceilingPct: 100, refusedByBreaker: 0 });
    } finally {
      spy.mockRestore();
    }
  });

  it("answers attempt k of call i from the seed, whatever the order, and the same in a rerun", async () => {
    const rate = 0.3;
    const seed = 7;
    const calls = 30;
    const draws = async (order: "call-major" | "interleaved") => {
      const upstream = await startUpstream("flaky", String(rate), String(seed));
      const got: boolean[][] = Array.from({ length: calls }, () => []);
      const ask = async (i: number, k: number) => {
        const res = await fetch(`${upstream.url}/gen/x?call=${i}`);
        await res.arrayBuffer();
        (got[i] as boolean[])[k] = res.status === 503;
      };
      if (order === "call-major") {
        for (let i = 0; i < calls; i++) for (let k = 0; k < 3; k++) await ask(i, k);
      } else {
        for (let k = 0; k < 3; k++) {
          await Promise.all(Array.from({ length: calls }, (_, j) => ask(calls - 1 - j, k)));
        }
      }
      const stats = await upstream.stats();
      await upstream.stop();
      expect(stats.perCall).toEqual(Array.from({ length: calls }, () => 3));
      return got;
    };
    const first = await draws("call-major");
    const second = await draws("interleaved");
    const fromSeed = Array.from({ length: calls }, (_, i) => [0, 1, 2].map((k) => failsAt(rate, seed, i, k)));
    expect(first).toEqual(fromSeed);
    expect(second).toEqual(fromSeed);
    expect(fromSeed.flat().filter(Boolean).length).toBeGreaterThan(0);
    expect(fromSeed.filter((c) => c.every(Boolean)).length).toBe(unservable(rate, seed, calls, 3));
  });

  it("ky's variant is at ky's defaults: 3 requests per call against a dead upstream", async () => {
    const [ky] = await measureFlaky(1, 1, 1, ["ky"], 1);
    expect(ky).toMatchObject({ attemptsPerCall: 3, served: 0 });
  });

  it("defect 1 (fixed by the docs): p-retry's variant has `retries: 2`, as the doc now says, not its default", async () => {
    expect(benchDoc).toContain("p-retry with `retries: 2` (its default is 10)");
    hooks.pRetryOptions.length = 0;
    const [row] = await measureFlaky(0, 1, 1, ["p-retry (retries: 2)"], 1);
    expect(row?.served).toBe(1);
    expect(hooks.pRetryOptions).toHaveLength(1);
    expect((hooks.pRetryOptions[0] as { retries?: number } | undefined)?.retries).toBe(2);
  });

  it("defect 2 (fixed by the docs): cockatiel's variant is its README's policy at `maxAttempts: 2`: 3 requests on a dead API", async () => {
    expect(benchDoc).toMatch(/but `maxAttempts: 2` where the README\s+has 3/);
    expect(benchDoc).not.toContain("Every variant uses its library's");
    const [row] = await measureFlaky(1, 1, 1, ["cockatiel retry + ConsecutiveBreaker(5)"], 1);
    expect(row?.served).toBe(0);
    expect(row?.attemptsPerCall).toBe(3);
  });
});

describe("results JSON (bench/run.ts)", () => {
  it("defect 3 (fixed by the docs): the committed results JSON holds the settings of the random-503 variants", () => {
    expect(benchDoc).toMatch(/the settings of the random-503 variants in\s+words/);
    const dir = resolve(root, "docs/benchmarks");
    const newest = readdirSync(dir)
      .filter((f) => /^results-\d{4}-\d{2}-\d{2}.*\.json$/.test(f))
      .sort()
      .at(-1) as string;
    const json = JSON.parse(readFileSync(join(dir, newest), "utf8")) as {
      policies: Record<string, string>;
      overhead: Array<{ variant: string }>;
      storm: Array<{ variant: string }>;
      partial: Array<{ variant: string }>;
    };
    // The only settings run.ts writes come from bench/flaky.ts.
    expect(Object.keys(json.policies)).toEqual(Object.keys(flakyPolicies));
    const flaky = json as unknown as { flaky10: Array<{ variant: string }>; flaky30: Array<{ variant: string }> };
    const random503 = new Set([...flaky.flaky10, ...flaky.flaky30].map((r) => r.variant));
    expect([...random503].filter((v) => !(v in json.policies))).toEqual([]);
  });
});

describe("full outage target (docs/targets.md)", () => {
  it("with defaults the 5th call is refused, after 12 requests, one call at a time", async () => {
    const clock = new TestClock(Date.now());
    let requests = 0;
    const r = createResilience({
      clock,
      fetch: async () => {
        requests++;
        return new Response(null, { status: 503 });
      },
    });
    const perCall: Array<[number, string]> = [];
    for (let i = 0; i < 6; i++) {
      const before = requests;
      const outcome = await clock.run(
        r.fetch("http://127.0.0.1:9/gen/x").then(
          (res) => String(res.status),
          (e: unknown) => (e as Error).name,
        ),
      );
      perCall.push([requests - before, outcome]);
    }
    expect(perCall).toEqual([
      [3, "503"],
      [3, "503"],
      [3, "503"],
      [3, "503"],
      [0, "CircuitOpenError"],
      [0, "CircuitOpenError"],
    ]);
    expect(requests).toBe(12);
  });
});

describe("memory and scale (bench/memory-child.ts)", () => {
  it("reads the heap after a forced GC at each fifth, holds 1,000 breakers, prices calls by hosts", async () => {
    const { runChild } = await import("../../bench/child.ts");
    await expect(runChild("./memory-child.ts", ["10", "2"])).rejects.toThrow(/exited 1/);
    const out = await runChild<{
      calls: number;
      hosts: number;
      heapMb: number[];
      breakers: number;
      nsPerCallByHosts: Record<string, number>;
    }>("./memory-child.ts", ["2000", "1500"], ["--expose-gc"]);
    expect(out).toMatchObject({ calls: 2_000, hosts: 1_500, breakers: 1_000 });
    expect(out.heapMb).toHaveLength(6);
    expect(Object.keys(out.nsPerCallByHosts).sort()).toEqual(["10", "1000", "1500"]);
  });
});

describe("commands in 'Running it'", () => {
  it("flaky-run prints one random-503 scenario as one JSON line", async () => {
    const { stdout } = await run(
      process.execPath,
      ["bench/flaky-run.ts", "0", "4", "2", "resilient-fetch (defaults)"],
      { cwd: root, env: { ...process.env, BENCH_COMMIT: "abc1234" } },
    );
    const lines = stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0] as string) as { commit: string; seed: number; clients: number; rows: unknown[] };
    expect(parsed).toMatchObject({ commit: "abc1234", seed: 1, clients: 2, calls: 4 });
    expect(parsed.rows).toHaveLength(1);
  });

  it("overhead-chart writes docs/benchmarks/overhead.svg from an overhead run's JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), "benchclaims-"));
    temps.push(dir);
    mkdirSync(join(dir, "docs/benchmarks"), { recursive: true });
    const input = join(dir, "run.json");
    writeFileSync(
      input,
      JSON.stringify({
        rows: [
          { variant: "resilient-fetch (defaults)", mode: "unread", addedNs: 700 },
          { variant: "resilient-fetch (defaults)", mode: "read", addedNs: 800 },
        ],
      }),
    );
    await run(process.execPath, [resolve(root, "bench/overhead-chart.ts"), input], { cwd: dir });
    const svg = readFileSync(join(dir, "docs/benchmarks/overhead.svg"), "utf8");
    expect(svg).toContain("resilient-fetch (defaults) (body read)");
    expect(svg).toContain("<svg");
  });

  it("--quick's bench/results/ is ignored by git, and BENCH_COMMIT names the commit", async () => {
    const { stdout } = await run("git", ["check-ignore", "bench/results/results.json"], { cwd: root });
    expect(stdout.trim()).toBe("bench/results/results.json");
    const saved = process.env.BENCH_COMMIT;
    process.env.BENCH_COMMIT = "feed123";
    try {
      expect(benchCommit()).toBe("feed123");
    } finally {
      if (saved === undefined) delete process.env.BENCH_COMMIT;
      else process.env.BENCH_COMMIT = saved;
    }
  });
});
