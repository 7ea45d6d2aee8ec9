/**
 * Outside-in attack on the documentation's figures: every number and claim of docs/targets.md (rewritten in
 * 16a91f4 and formatted in 87217be), README.md's comparison table and "Status" / "Not done yet" section (the per-call
 * bullet shortened to point at targets), and docs/benchmarks.md, checked against the files they cite
 * (docs/benchmarks/*.md and *.json, at the cited commit, for the cited variant and mode), against
 * `.size-limit.json` and its git history, and against what is cheap to measure again on this tree.
 * Docs: docs/targets.md ("Every committed run of `node bench/overhead-run.ts` …", "met in both modes in the last
 * three quiet runs; the read figure missed in two earlier runs (every run is in the per-call runs below)", "met in
 * the last three quiet runs; missed at `7f9a4a5` (read), `cf9871e` and `db41b0b` (both modes)", "ky … ran from
 * 12.9 to 22.1 µs unread across these runs", the instruction table, "22.0 KiB; +8.3 KiB; +6.1 KiB; 35.2 KiB …
 * 22,481, 30,989, 28,714 and 36,095 bytes", "2.14 KiB (2,195 bytes …)", "missed by 659 bytes", "the budgets in
 * `.size-limit.json` (root 22 KiB, root with `./fallback` 30.3, with `./degradation` 28.1, all three 35.3, `retry`
 * alone 2.15, every policy 12) sit a few dozen bytes above the latest sizes", "A budget was raised only with a fix
 * that had to add bytes (…), in steps of 0.1 to 0.7 KiB: the root's from 14.5 KiB, set when a page's build first
 * left out the redirect follower and the platform error codes, to 22", "At `6c5e1b7`, 22,507 bytes in all …
 * size-limit's own bundling of the same tree gives 22,481 … at `e2db54f` (17,343 in all)", the root breakdown
 * table, "saves about 1.4 KB … near 20.6 KiB", the latest-run figures with the 7ea2626 run in brackets);
 * README.md (the comparison table's rows, "every run is listed in [targets]", "the per-call targets … are met in
 * the last three quiet runs", "at `2da7c14`, defaults add 0.68 µs unread and 0.74 µs read, every feature 2.72 and
 * 2.65 µs, beside cockatiel 0.47 and 0.47", "each further call adds 9,686 unread and 9,949 read with defaults,
 * 34,447 and 34,464 with every feature, at `696447b`", "0.94 × (4,551 against 4,845 requests/s …); the two runs
 * before it gave 0.59 × and 1.31 ×", the sizes, the mutation scores of "Status"); docs/benchmarks.md ("Every
 * figure quoted in the README and in these guides comes from a committed results file in `docs/benchmarks/`",
 * "`npm run bench` … about 17 min on 2 shared cores", "`size-limit` (part of `npm test`) measures brotli of the
 * built `dist/`", the committed-figures table, the instruction section, the before/after defaults).
 * How: node:fs reads of the docs and of every cited file; `git log` / `git show` of `.size-limit.json`; `npm run
 * build` (only when `dist/browser` is older than `src/`), then `size-limit --json`; `node bench/root-breakdown.ts`.
 * No library entry is called: this run is about documentation truth (no servers).
 * Paths: the per-call table (every row against its linked overhead run, each run of a two-run file), the
 * instruction table (each count in its file, the "each further call" figures in the file's text), the latest-run
 * rows (results-2026-12-01-7661adf.md, in brackets results-2026-11-29-7ea2626.md, 72ac726 for "the one before"),
 * the seeded random-503 files, the size budgets (the config now and every commit of its history), the size figures
 * (re-measured), the root breakdown (re-measured at HEAD; the e2db54f column was measured again on an export of
 * e2db54f by hand and matched, 17,343 and every row).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the seven, the docs corrected; defect 2's test became the two status tests, whose
 * figures are counted from the rows):
 * 1. docs/targets.md "Every committed run of `node bench/overhead-run.ts` …" (and README "every run is listed in
 *    [targets]", targets' own "(every run is in the per-call runs below)"). Observed: three committed run files of
 *    that command are not in the table: overhead-2026-11-30-c201ec7.md (1 run), -e99d385.md (2 runs) and
 *    -e411a72.md (5 runs at c5c115d/e411a72 and one at fe35ca0), all on 2026-11-30 (benchmarks.md itself quotes
 *    them). With them the status sentences are true only of the listed runs: the defaults' unread figure missed
 *    too (1.89 µs at c201ec7 "nothing else running", 1.80 µs in e411a72's fourth run), and the read figure in more
 *    than "two earlier runs" (2.20, 1.66, 2.01, 1.96, 1.79 …). Source: the table written in 16a91f4.
 * 2. docs/targets.md, "≤ 4 µs with every feature" row: "missed at `7f9a4a5` (read), `cf9871e` and `db41b0b` (both
 *    modes)". Observed: the table's own `d5e8a08` row (overhead-2026-12-01-d5e8a08.md) has every feature at
 *    4.32 µs read, a miss the list leaves out (cf9871e, as unquiet as d5e8a08, is listed).
 * 3. docs/targets.md "A budget was raised only with a fix … in steps of 0.1 to 0.7 KiB". Observed (`git log -p --
 *    .size-limit.json`): 611922c raised `root + ./fallback` from 20.9 to 22.1 KiB and `everything` from 25.3 to
 *    26.5 KiB (1.2 KiB steps), and `retry(fn)` alone went up by 0.05 KiB three times (f06d320, e05b146, 7039696).
 *    The root's own steps (0.1 to 0.6 KiB, 14.5 → 22) hold.
 * 4. docs/targets.md "the budgets in `.size-limit.json` (… `retry` alone 2.15 …) sit a few dozen bytes above the
 *    latest sizes". Observed (`size-limit --json`): `retry` alone is 2,195 bytes against a limit of 2,201, 6 bytes
 *    of room (the others 38 to 60).
 * 5. docs/benchmarks.md "`size-limit` (part of `npm test`) measures brotli of the built `dist/`". Observed: every
 *    entry of `.size-limit.json` sets `"gzip": true`, so size-limit measures gzip (as the README's "Sizes …
 *    `npx size-limit` … (esbuild, minified, gzip …)" says). The same sentence is written into every results file
 *    by bench/run.ts (its bundle table's caption).
 * 6. docs/benchmarks.md "| `npm run bench` | … | about 17 min on 2 shared cores |". Observed: the latest full run,
 *    the one the docs quote, took 2,477 s (41 min, results-2026-12-01-7661adf.md), and its random-503 steps alone,
 *    whose time is the retries' waits rather than the machine's, took 1,942 s. 17 min is the 1,005 s of the
 *    72ac726 run, before that step grew to 10,000 calls.
 * 7. docs/benchmarks.md "Every figure quoted in the README and in these guides comes from a committed results file
 *    in `docs/benchmarks/`". Observed: the throughput medians the README, targets and benchmarks quote ("0.94 ×,
 *    0.97 ×, 0.98 × and 1.02 ×, single rounds from 0.65 × to 1.81 ×", from `node bench/throughput-run.ts 3 10` and
 *    "the same function") are in no file there: the committed throughput records are 1.31 ×, 0.59 × and 0.94 ×
 *    only. (Others too: the instruction counts 34,823 at b2d00a3, 36,610 at f4c5324, 16,140 / 16,096, 16,607 /
 *    16,691, bare fetch's 43,800, and the soak's 1,994 and 1,996 of 2,000 in targets.md.)
 *
 * Held (plain `it`):
 * - Every figure of the per-call table is its linked file's median for that variant and mode, run by run; the last
 *   three rows labelled quiet (6dab10a, d54d6d0, 2da7c14) meet ≤ 1.5 µs and ≤ 4 µs in both modes; within the
 *   table the defaults' read figure missed in exactly two runs (7f9a4a5, cf9871e's second) and its unread never;
 *   ky's unread figures span 12.9 to 22.1 µs.
 * - The instruction table: each count is the "added over bare fetch" of its file for that variant and mode;
 *   17a0f89's and 696447b's "each further call" figures (14,042 / 14,381; 9,686 / 9,949) are in their files'
 *   text, as are 46,868 and 42,340.
 * - README's per-call bullet, targets' latest-figure rows and the README cost row (7f9a4a5, seven libraries, the
 *   chart's values too) match their files; 9,686 (34,447) and cockatiel's 7,071 match theirs.
 * - The full-run figures: ky ratios 17.7 × / 14.0 × [15.5 ×] and 7.6 × before; throughput 0.94 × (4,551 / 4,845)
 *   [0.59 ×; 1.31 ×]; amplification, recovery bursts, first success, alternate, memory range, KV and Durable
 *   Object figures, the dead API's 4 calls / 12 requests; the run's own success-path step; the benchmarks.md
 *   committed-figures table's rows checked; the seeded 10% / 30% files (99.91%, 97.45% / 1.39, cockatiel 78.03%
 *   / 1.11 with 1,979 refused); the defaults before/after JSON (17 / 182, 199, 9, 195).
 * - Sizes re-measured: 22,481 / 30,989 / 28,714 / 36,095 and 2,195 bytes exactly as quoted, every KiB rounding in
 *   targets and README (22.0, +8.3, +6.1, 35.2, 2.14 / 2.1, 11.9, 22.5 kB), 659 bytes over 1.5 KiB; the budgets
 *   the paragraph names are `.size-limit.json`'s limits.
 * - History: the root's budget first on the browser build was 14.5 KiB, in the commit that left out the redirect
 *   follower and the platform error codes, is 22 KiB now, and rose in steps of 0.1 to 0.7 KiB.
 * - `node bench/root-breakdown.ts` gives 22,507 bytes and every row of the table's current column; the rows add
 *   up to less than the whole; CORS hint + execute and named breakers is about 1.4 KB, leaving about 20.6 KiB.
 * - README "Status": 89.0% of 2,760 at 9ac4283, src/core 91.8%, src/cloudflare 93.0%, src/stores 96.7%,
 *   src/testing 94.5% are docs/mutation.md's.
 *
 * Docs-silent (not pinned; the first, second and fourth corrected since):
 * - `.size-limit.json`'s own name of the `retry(fn)` entry says "missed by about 550 bytes"; it is 659 now (the
 *   docs say 659).
 * - The per-call table's cf9871e note "rounds spread from below zero to 4.8 µs" is true of the defaults' rounds;
 *   every feature's reached 7.32 µs and cockatiel's 4.71.
 * - "Leaving out everything the target's list does not name (the CORS hint, `execute` and named breakers)" leaves
 *   out health, debugInfo and analytics (924 bytes), which the prototype's list does not name either.
 * - README's entry table prints ky and cockatiel as "8.7 KB" and "4.1 KB", KiB figures (8.73 and 4.10 KiB).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const read = (path: string): string => readFileSync(join(root, path), "utf8");
/** Markdown text with its line breaks and runs of spaces made one space, so wrapped sentences can be matched. */
const flat = (text: string): string => text.replace(/\s+/g, " ");
const num = (text: string): number => Number(text.replace(/,/g, "").replace(/[^\d.-]/g, ""));
const kib = (bytes: number, digits = 1): string => (bytes / 1024).toFixed(digits);

const targets = read("docs/targets.md");
const readme = read("README.md");
const benchmarks = read("docs/benchmarks.md");
const targetsFlat = flat(targets);
const readmeFlat = flat(readme);
const benchmarksFlat = flat(benchmarks);
const bench = (name: string): string => read(`docs/benchmarks/${name}`);

/** Data rows of the Markdown table whose header row satisfies `isHeader`, as trimmed cells. */
function table(text: string, isHeader: (line: string) => boolean): string[][] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("|") && isHeader(l));
  if (start < 0) throw new Error("table not found");
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim()),
    );
  }
  return rows;
}

type Mode = "unread" | "read";
interface OverheadRun {
  unread: Map<string, number>;
  read: Map<string, number>;
}
/** Every run of an overhead file: its "added per call" medians by variant, body unread and read. */
function overheadRuns(text: string): OverheadRun[] {
  const tables: Array<{ mode: Mode; rows: Map<string, number> }> = [];
  let mode: Mode | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/body not read/i.test(line)) mode = "unread";
    else if (/body read/i.test(line)) mode = "read";
    if (line.startsWith("| variant") && line.includes("added per call") && mode) {
      const rows = new Map<string, number>();
      for (const row of lines.slice(i + 2)) {
        if (!row.startsWith("|")) break;
        const cells = row.split("|").map((c) => c.trim());
        rows.set(cells[1] as string, num(cells[2] as string));
      }
      tables.push({ mode, rows });
    }
  }
  const runs: OverheadRun[] = [];
  for (let i = 0; i < tables.length; i++) {
    const u = tables[i] as { mode: Mode; rows: Map<string, number> };
    if (u.mode !== "unread") throw new Error("a read table without its unread one");
    const r = tables[i + 1];
    if (r?.mode === "read") i++;
    runs.push({ unread: u.rows, read: r?.mode === "read" ? r.rows : new Map() });
  }
  return runs;
}

/** "added over bare fetch" of an instructions file, by `variant/mode`. */
function instructions(text: string): Map<string, number> {
  const rows = table(text, (l) => l.startsWith("| variant") && l.includes("added over bare fetch"));
  return new Map(rows.map((c) => [`${c[0]}/${c[1]}`, num(c[3] as string)]));
}

const DEFAULTS = "resilient-fetch (defaults)";
const EVERY = "resilient-fetch (every feature)";
const COCKATIEL = "cockatiel retry+breaker";

// The per-call table of docs/targets.md.
interface PerCallRow {
  file: string;
  label: string;
  runs: Array<Record<"defaults" | "every" | "cockatiel" | "ky", [number, number] | undefined>>;
}
const perCallRows: PerCallRow[] = table(targets, (l) => /^\| run\s/.test(l)).map((cells) => {
  const file = /\]\(benchmarks\/([^)]+)\)/.exec(cells[0] as string)?.[1] as string;
  const pairs = (cell: string): Array<[number, number] | undefined> =>
    cell === ""
      ? []
      : cell.split(";").map((p) => {
          const [u, r] = p.split("/").map(num);
          return [u as number, r as number];
        });
  const cols = { defaults: pairs(cells[1] as string), every: pairs(cells[2] as string) };
  const more = { cockatiel: pairs(cells[3] as string), ky: pairs(cells[4] as string) };
  const runs = cols.defaults.map((_, i) => ({
    defaults: cols.defaults[i],
    every: cols.every[i],
    cockatiel: more.cockatiel[i],
    ky: more.ky[i],
  }));
  return { file, label: cells[5] as string, runs };
});

describe("docs/targets.md: the per-call runs", () => {
  it("quotes every figure of each row from its linked run file, run by run", () => {
    expect(perCallRows.length).toBe(14);
    const variant = { defaults: DEFAULTS, every: EVERY, cockatiel: COCKATIEL, ky: "ky" } as const;
    for (const row of perCallRows) {
      const runs = overheadRuns(bench(row.file));
      expect(runs.length, row.file).toBe(row.runs.length);
      row.runs.forEach((quoted, i) => {
        for (const key of ["defaults", "every", "cockatiel", "ky"] as const) {
          const pair = quoted[key];
          if (!pair) continue;
          const run = runs[i] as OverheadRun;
          expect([run.unread.get(variant[key]), run.read.get(variant[key])], `${row.file} run ${i + 1} ${key}`).toEqual(
            pair,
          );
        }
      });
    }
  });

  // Rewritten with the table's statuses (first pinned as defects 1 and 2, fixed since): counted from the rows.
  const flatRuns = () => perCallRows.flatMap((r) => r.runs.map((run) => ({ file: r.file, label: r.label, run })));
  const over = (pair: [number, number] | undefined, limit: number) => (pair as [number, number]).map((v) => v > limit);

  it("the defaults' status ('met in both modes in the last eight runs, all quiet; … 9 of 16 … 2') follows from the rows", () => {
    expect(targetsFlat).toContain(
      "| met in both modes in the last eight runs, all quiet (at `f029b7b` one read median fell below zero, its rounds from -1.88 to 1.23 µs); before them the read figure missed in 9 of 16 runs and the unread one in 2 (every run is in [the per-call runs](#the-per-call-runs) below) |",
    );
    const runs = flatRuns();
    const last = runs.slice(-8);
    for (const { label, run } of last) {
      expect(label).toMatch(/^quiet/);
      expect(over(run.defaults, 1.5)).toEqual([false, false]);
    }
    // The ninth from last misses: "the last eight" is the longest such run of rows.
    expect(over(runs.at(-9)?.run.defaults, 1.5)).toContain(true);
    const before = runs.slice(0, -8);
    expect(before.length).toBe(16);
    expect(before.filter(({ run }) => over(run.defaults, 1.5)[1]).length).toBe(9);
    expect(before.filter(({ run }) => over(run.defaults, 1.5)[0]).length).toBe(2);
  });

  it("every feature's status ('missed at f029b7b …; missed at aef7506, in both modes in the first run and with the body read in the second …; met … in the three quiet runs before them; … 13 of the 17 runs before those') follows from the rows", () => {
    expect(targetsFlat).toContain(
      "| missed at `f029b7b`, in both modes in the first run and with the body unread in the second (4.79 and 4.62 µs, then 4.35 and 3.68), on a machine as slow as at `aef7506` (ky 35.6 and 37.0 µs unread), and by instructions 3% costlier than at `aef7506` (see below); missed at `aef7506`, in both modes in the first run and with the body read in the second (4.26 and 4.78 µs, then 3.98 and 4.44), on a machine that ran ky 1.9 to 2.6 times as slow as at `2da7c14` and cockatiel 1.2 to 2.4 times as slow, and by instructions 12% costlier than at `696447b` (see below); met in both modes in the three quiet runs before them; missed in one mode or both in 13 of the 17 runs before those |",
    );
    const all = flatRuns();
    const newest = all.slice(-2);
    for (const { file } of newest) expect(file).toBe("overhead-2026-12-06-f029b7b.md");
    expect(newest.map(({ run }) => over(run.every, 4))).toEqual([
      [true, true],
      [true, false],
    ]);
    expect(newest.map(({ run }) => run.every)).toEqual([
      [4.79, 4.62],
      [4.35, 3.68],
    ]);
    expect(newest.map(({ run }) => run.ky?.[0])).toEqual([35.6, 37.0]);
    const growth = (now: number, then: number) => Math.round(((now - then) / then) * 100);
    const counts = instructions(bench("instructions-2026-12-06-dad15a9-20k.md"));
    const earlier = instructions(bench("instructions-2026-12-05-aef7506-20k.md"));
    expect([
      growth(counts.get(`${EVERY}/unread`) as number, earlier.get(`${EVERY}/unread`) as number),
      growth(counts.get(`${EVERY}/read`) as number, earlier.get(`${EVERY}/read`) as number),
    ]).toEqual([3, 3]);
    // The aef7506 runs and those before them, as the status goes on to say.
    const runs = all.slice(0, -2);
    const latest = runs.slice(-2);
    for (const { file } of latest) expect(file).toBe("overhead-2026-12-05-aef7506.md");
    expect(latest.map(({ run }) => over(run.every, 4))).toEqual([
      [true, true],
      [false, true],
    ]);
    expect(latest.map(({ run }) => run.every)).toEqual([
      [4.26, 4.78],
      [3.98, 4.44],
    ]);
    const ratio = (key: "ky" | "cockatiel", i: 0 | 1) => {
      const [base] = overheadRuns(bench("overhead-2026-12-04-2da7c14.md")) as [OverheadRun];
      const name = key === "ky" ? "ky" : COCKATIEL;
      const ref = [base.unread.get(name), base.read.get(name)] as [number, number];
      return latest.map(({ run }) => (run[key] as [number, number])[i] / ref[i]);
    };
    const kyRatios = [...ratio("ky", 0), ...ratio("ky", 1)];
    const cockatielRatios = [...ratio("cockatiel", 0), ...ratio("cockatiel", 1)];
    expect([Math.min(...kyRatios).toFixed(1), Math.max(...kyRatios).toFixed(1)]).toEqual(["1.9", "2.6"]);
    expect([Math.min(...cockatielRatios).toFixed(1), Math.max(...cockatielRatios).toFixed(1)]).toEqual(["1.2", "2.4"]);
    for (const { label, run } of runs.slice(-5, -2)) {
      expect(label).toMatch(/^quiet/);
      expect(over(run.every, 4)).toEqual([false, false]);
    }
    expect(over(runs.at(-6)?.run.every, 4)).toContain(true);
    const before = runs.slice(0, -5);
    expect(before.length).toBe(17);
    expect(before.filter(({ run }) => over(run.every, 4).includes(true)).length).toBe(13);
  });

  it("ky 'ran from 12.9 to 37.0 µs unread across these runs'", () => {
    expect(targetsFlat).toContain("ran from 12.9 to 37.0 µs unread across these runs");
    const ky = perCallRows.flatMap((r) => r.runs.flatMap((run) => (run.ky ? [run.ky[0]] : [])));
    expect([Math.min(...ky), Math.max(...ky)]).toEqual([12.9, 37.0]);
  });

  it("lists 'every committed run of node bench/overhead-run.ts' (README: 'every run is listed')", () => {
    expect(targetsFlat).toContain("Every committed run of `node bench/overhead-run.ts`");
    expect(readmeFlat).toContain("every run is listed in [targets](docs/targets.md#the-per-call-runs)");
    const committed = readdirSync(join(root, "docs/benchmarks")).filter(
      (f) => /^overhead-.*\.md$/.test(f) && bench(f).includes("bench/overhead-run.ts"),
    );
    const linked = new Set(perCallRows.map((r) => r.file));
    // Until the fix, overhead-2026-11-30-c201ec7.md, -e411a72.md and -e99d385.md were left out.
    expect(committed.filter((f) => !linked.has(f))).toEqual([]);
  });
});

describe("docs/targets.md and README: the instruction counts", () => {
  const rows = table(targets, (l) => /^\| commit\s/.test(l));

  it("quotes each count from its linked file", () => {
    expect(rows.length).toBe(17);
    for (const cells of rows) {
      const file = /\]\(benchmarks\/([^)]+)\)/.exec(cells[0] as string)?.[1] as string;
      const text = bench(file);
      const counts = instructions(text);
      const [du, dr] = (cells[1] as string).split("/").map(num);
      const [eu, er] = (cells[2] as string).split("/").map(num);
      expect([counts.get(`${EVERY}/unread`), counts.get(`${EVERY}/read`)], file).toEqual([eu, er]);
      if ((cells[1] as string).includes("each further call")) {
        // "what each further call adds (…) is 14,042 unread and 14,381 read"
        expect(flat(text), file).toContain(
          `is ${(du as number).toLocaleString("en")} unread and ${(dr as number).toLocaleString("en")} read`,
        );
      } else {
        expect([counts.get(`${DEFAULTS}/unread`), counts.get(`${DEFAULTS}/read`)], file).toEqual([du, dr]);
      }
      if ((cells[3] as string).startsWith("cockatiel")) {
        const [cu, cr] = (cells[3] as string).replace("cockatiel", "").split("/").map(num);
        expect([counts.get("cockatiel retry+breaker/unread"), counts.get("cockatiel retry+breaker/read")]).toEqual([
          cu,
          cr,
        ]);
      }
    }
    // The one-off GC rows the text names.
    expect(targetsFlat).toContain("(46,868 there, 42,340 at `696447b`)");
    expect(instructions(bench("instructions-2026-12-03-17a0f89-20k.md")).get(`${DEFAULTS}/read`)).toBe(46868);
    expect(instructions(bench("instructions-2026-12-03-696447b-20k.md")).get(`${DEFAULTS}/read`)).toBe(42340);
  });

  it("README's per-call bullet and the comparison's instruction figures are the cited counts", () => {
    const text = flat(bench("instructions-2026-12-03-696447b-20k.md"));
    expect(readmeFlat).toContain(
      "each further call adds 9,686 unread and 9,949 read with defaults, 34,447 and 34,464 with every feature, at `696447b`",
    );
    expect(text).toContain("what each further call adds is 9,686 unread and 9,949 read");
    const counts = instructions(bench("instructions-2026-12-03-696447b-20k.md"));
    expect([counts.get(`${EVERY}/unread`), counts.get(`${EVERY}/read`)]).toEqual([34447, 34464]);
    expect(readmeFlat).toContain("in instructions¹: 9,686 (34,447), about the same with the body read");
    expect(readmeFlat).toContain("0.83 / 0.86 µs; 7,071 instructions¹");
    expect(instructions(bench("instructions-2026-11-30-c5c115d-20k.md")).get("cockatiel retry+breaker/unread")).toBe(
      7071,
    );
  });
});

describe("README and docs/targets.md: the per-call figures quoted as latest", () => {
  it("2da7c14: targets' rows and README's bullet", () => {
    const [run] = overheadRuns(bench("overhead-2026-12-04-2da7c14.md")) as [OverheadRun];
    const f = (v: string, m: Mode) => run[m].get(v)?.toFixed(2);
    expect([f(DEFAULTS, "unread"), f(DEFAULTS, "read"), f(EVERY, "unread"), f(EVERY, "read")]).toEqual([
      "0.68",
      "0.74",
      "2.72",
      "2.65",
    ]);
    expect([f(COCKATIEL, "unread"), f(COCKATIEL, "read")]).toEqual(["0.47", "0.47"]);
    expect(targetsFlat).toContain(
      "0.68 µs unread, 0.74 µs read at `2da7c14` on a quiet machine (cockatiel 0.47 and 0.47;",
    );
    expect(targetsFlat).toContain("2.72 µs unread, 2.65 µs read at `2da7c14`");
    expect(readmeFlat).toContain(
      "at `2da7c14`, defaults add 0.68 µs unread and 0.74 µs read, every feature 2.72 and 2.65 µs, beside cockatiel 0.47 and 0.47 ([overhead run](docs/benchmarks/overhead-2026-12-04-2da7c14.md))",
    );
    expect(readmeFlat).toContain(
      "the defaults meet theirs in the last eight quiet runs; every feature met its target in the three quiet runs up to `2da7c14` and missed it in both runs at `aef7506` (in both modes, then with the body read only) and in both at `f029b7b` (in both modes, then with the body unread only), on a machine that ran every library slower",
    );
  });

  it("aef7506: targets' rows and README's bullet, times and instruction counts", () => {
    const [first] = overheadRuns(bench("overhead-2026-12-05-aef7506.md")) as [OverheadRun];
    const f = (v: string, m: Mode) => first[m].get(v)?.toFixed(2);
    expect([f(DEFAULTS, "unread"), f(DEFAULTS, "read"), f(EVERY, "unread"), f(EVERY, "read")]).toEqual([
      "1.22",
      "1.18",
      "4.26",
      "4.78",
    ]);
    expect([f(COCKATIEL, "unread"), f(COCKATIEL, "read")]).toEqual(["0.65", "1.15"]);
    expect(targetsFlat).toContain(
      "1.22 µs unread, 1.18 µs read at `aef7506`, on a machine that ran every library slower (cockatiel 0.65 and 1.15;",
    );
    expect(targetsFlat).toContain("4.26 µs unread, 4.78 µs read at `aef7506`");
    expect(readmeFlat).toContain(
      "at `aef7506`, 1.22 and 1.18 µs, and 4.26 and 4.78 µs, beside cockatiel 0.65 and 1.15 ([overhead run](docs/benchmarks/overhead-2026-12-05-aef7506.md))",
    );
    const counts = instructions(bench("instructions-2026-12-05-aef7506-20k.md"));
    const quad = [`${DEFAULTS}/unread`, `${DEFAULTS}/read`, `${EVERY}/unread`, `${EVERY}/read`].map((k) =>
      counts.get(k),
    );
    expect(quad).toEqual([10486, 10746, 38501, 38331]);
    expect(readmeFlat).toContain("10,486 and 10,746, 38,501 and 38,331 at `aef7506`, 8% and 12% more");
    const growth = (now: number, then: number) => `${Math.round(((now - then) / then) * 100)}%`;
    expect([growth(10486, 9686), growth(38501, 34447)]).toEqual(["8%", "12%"]);
    const thirty = JSON.parse(bench("instructions-2026-12-05-aef7506-20k.json")).defaultsAt30000Calls as Array<{
      variant: string;
      mode: string;
      addedPerCall: number;
    }>;
    expect(thirty.find((r) => r.variant === DEFAULTS && r.mode === "read")?.addedPerCall).toBe(10683);
    expect(targetsFlat).toContain("At `aef7506` it held none (10,746 read at 20,000 calls, 10,683 at 30,000)");
  });

  it("f029b7b and dad15a9: targets' rows and README's bullet, times and instruction counts", () => {
    const [first, second] = overheadRuns(bench("overhead-2026-12-06-f029b7b.md")) as [OverheadRun, OverheadRun];
    const f = (run: OverheadRun, v: string, m: Mode) => run[m].get(v)?.toFixed(2);
    expect([f(first, DEFAULTS, "unread"), f(first, DEFAULTS, "read"), f(first, EVERY, "unread")]).toEqual([
      "1.36",
      "-1.34",
      "4.79",
    ]);
    expect([f(first, EVERY, "read"), f(first, COCKATIEL, "unread"), f(first, COCKATIEL, "read")]).toEqual([
      "4.62",
      "0.57",
      "1.22",
    ]);
    expect([f(second, DEFAULTS, "unread"), f(second, DEFAULTS, "read")]).toEqual(["1.25", "1.27"]);
    expect([f(second, COCKATIEL, "unread"), f(second, COCKATIEL, "read")]).toEqual(["1.14", "0.54"]);
    expect(targetsFlat).toContain(
      "1.25 µs unread, 1.27 µs read at `f029b7b` in the second run (the first: 1.36 µs unread, a read median below zero), on a machine as slow as at `aef7506` (cockatiel 1.14 and 0.54;",
    );
    expect(targetsFlat).toContain("4.79 and 4.35 µs unread, 4.62 and 3.68 µs read at `f029b7b`");
    expect(readmeFlat).toContain(
      "at `f029b7b`, 1.36 µs unread (the read median below zero) and 4.79 and 4.62 µs, beside cockatiel 0.57 and 1.22 ([overhead run](docs/benchmarks/overhead-2026-12-06-f029b7b.md))",
    );
    const counts = instructions(bench("instructions-2026-12-06-dad15a9-20k.md"));
    const quad = [`${DEFAULTS}/unread`, `${DEFAULTS}/read`, `${EVERY}/unread`, `${EVERY}/read`].map((k) =>
      counts.get(k),
    );
    expect(quad).toEqual([10498, 11203, 39704, 39524]);
    expect(readmeFlat).toContain(
      "10,498 and 11,203, 39,704 and 39,524 at `dad15a9`, where reading costs about 700 more with defaults",
    );
    const thirty = JSON.parse(bench("instructions-2026-12-06-dad15a9-20k.json")).defaultsAt30000Calls as Array<{
      variant: string;
      mode: string;
      addedPerCall: number;
    }>;
    const at30 = (mode: string) => thirty.find((r) => r.variant === DEFAULTS && r.mode === mode)?.addedPerCall;
    expect([at30("unread"), at30("read")]).toEqual([10479, 11181]);
    // "about 700": the read's extra over the unread, at 20,000 calls and at 30,000.
    expect([11203 - 10498, 11181 - 10479].map((d) => Math.round(d / 100) * 100)).toEqual([700, 700]);
    expect(targetsFlat).toContain(
      "At `dad15a9` reading the body with defaults adds about 700 instructions (11,181 read at 30,000 calls, 10,479 unread)",
    );
  });

  it("fc16306: the instruction counts in README's bullet and targets' table are the run's, JSON and table alike", () => {
    const counts = instructions(bench("instructions-2026-12-07-fc16306-20k.md"));
    const quad = [`${DEFAULTS}/unread`, `${DEFAULTS}/read`, `${EVERY}/unread`, `${EVERY}/read`].map((k) =>
      counts.get(k),
    );
    expect(quad).toEqual([10757, 11324, 38937, 38951]);
    const rows = JSON.parse(bench("instructions-2026-12-07-fc16306-20k.json")).rows as Array<{
      variant: string;
      mode: string;
      addedPerCall: number;
    }>;
    expect(rows.map((r) => counts.get(`${r.variant}/${r.mode}`) ?? (r.variant === "bare fetch" ? 0 : -1))).toEqual(
      rows.map((r) => r.addedPerCall),
    );
    expect(readmeFlat).toContain("10,757 and 11,324, 38,937 and 38,951 at `fc16306`");
    expect(targetsFlat).toContain(
      "| [`fc16306`](benchmarks/instructions-2026-12-07-fc16306-20k.md) | 10,757 / 11,324 | 38,937 / 38,951 | |",
    );
    // The run's own page: the differences from dad15a9 and the read's extra, as it words them.
    const page = flat(bench("instructions-2026-12-07-fc16306-20k.md"));
    expect(page).toContain("259 and 121 more per call with defaults (2.5% and 1.1%), 767 and 573 fewer");
    expect([10757 - 10498, 11324 - 11203, 39704 - 38937, 39524 - 38951]).toEqual([259, 121, 767, 573]);
    expect(Math.round((11324 - 10757) / 10) * 10).toBe(570);
  });

  it("3b46f12: the instruction counts in README's bullet and targets' table are the run's, JSON and table alike", () => {
    const counts = instructions(bench("instructions-2026-12-07-3b46f12-20k.md"));
    const quad = [`${DEFAULTS}/unread`, `${DEFAULTS}/read`, `${EVERY}/unread`, `${EVERY}/read`].map((k) =>
      counts.get(k),
    );
    expect(quad).toEqual([10803, 10690, 38886, 39643]);
    const run = JSON.parse(bench("instructions-2026-12-07-3b46f12-20k.json")) as {
      commit: string;
      rows: Array<{ variant: string; mode: string; addedPerCall: number }>;
    };
    expect(run.commit).toBe("3b46f12");
    expect(run.rows.map((r) => counts.get(`${r.variant}/${r.mode}`) ?? (r.variant === "bare fetch" ? 0 : -1))).toEqual(
      run.rows.map((r) => r.addedPerCall),
    );
    expect(readmeFlat).toContain("10,803 and 10,690, 38,886 and 39,643 at `3b46f12`");
    expect(targetsFlat).toContain(
      "| [`3b46f12`](benchmarks/instructions-2026-12-07-3b46f12-20k.md) | 10,803 / 10,690 | 38,886 / 39,643 | the last count |",
    );
    // The run's own page: the differences from fc16306 and the read's extra, as it words them.
    const page = flat(bench("instructions-2026-12-07-3b46f12-20k.md"));
    expect(page).toContain("46 more and 634 fewer per call with defaults (0.4% and 5.6%), 51 fewer and 692 more");
    expect([10803 - 10757, 11324 - 10690, 38937 - 38886, 39643 - 38951]).toEqual([46, 634, 51, 692]);
    expect(page).toContain(`(${10803 - 10690} fewer than unread)`);
  });

  it("7f9a4a5: README's cost row, every library, and the chart drawn from it", () => {
    const [run] = overheadRuns(bench("overhead-2026-12-01-7f9a4a5.md")) as [OverheadRun];
    const row = table(readme, (l) => l.includes("resilient-fetch (defaults)") && l.includes("cockatiel")).find((c) =>
      (c[0] as string).startsWith("success-path cost"),
    ) as string[];
    const pair = (v: string) => `${run.unread.get(v)?.toFixed(2)} / ${run.read.get(v)?.toFixed(2)} µs`;
    expect(row[1]).toContain(
      `${pair(DEFAULTS).replace(" µs", "")} µs (every feature: ${pair(EVERY).replace(" µs", "")} µs)`,
    );
    expect(row[2]).toBe(`${run.unread.get("ky")?.toFixed(1)} / ${run.read.get("ky")?.toFixed(1)} µs`);
    expect(row[3]).toContain(pair(COCKATIEL));
    expect(row[4]).toBe(pair("opossum"));
    expect(row[5]).toBe(pair("p-retry"));
    expect(row[6]).toBe(pair("ofetch"));
    const svg = [...bench("overhead.svg").matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(svg).toContain(`${run.unread.get(DEFAULTS)?.toFixed(2)} µs`);
    expect(svg).toContain(`${run.read.get(EVERY)?.toFixed(2)} µs`);
    expect(svg).toContain(`${run.read.get("ky")?.toFixed(1)} µs`);
  });
});

// The full bench runs.
const latest = bench("results-2026-12-01-7661adf.md");
const before = bench("results-2026-11-29-7ea2626.md");
const oldest = bench("results-2026-11-29-72ac726.md");
const storm = (text: string) =>
  new Map(table(text, (l) => l.startsWith("| variant") && l.includes("amplification")).map((c) => [c[0] as string, c]));
const throughput = (text: string) => {
  const rows = table(text, (l) => l.includes("req/s"));
  return new Map(rows.map((c) => [c[0] as string, { rps: num(c[1] as string), ratio: c[2] as string }]));
};

describe("docs/targets.md, README and docs/benchmarks.md: the full runs", () => {
  it("the ky ratio, throughput, storm, memory and edge figures are the runs'", () => {
    const [l] = overheadRuns(latest) as [OverheadRun];
    const [b] = overheadRuns(before);
    const [o] = overheadRuns(oldest);
    const ratio = (run: OverheadRun | undefined, m: Mode) =>
      ((run?.[m].get("ky") as number) / (run?.[m].get(DEFAULTS) as number)).toFixed(1);
    expect([ratio(l, "unread"), ratio(l, "read"), ratio(b, "unread"), ratio(o, "unread")]).toEqual([
      "17.7",
      "14.0",
      "15.5",
      "7.6",
    ]);
    expect(targetsFlat).toContain(
      "| 17.7 × unread, 14.0 × read (ky 30.8 and 42.1 µs, defaults 1.74 and 3.00 µs in the run's own step) [15.5 ×] | met in the last two full runs (7.6 × in the one before them)",
    );
    expect(targetsFlat).toContain(
      "(defaults 1.74 µs unread and 3.00 µs read, every feature 7.33 and 13.4 µs, cockatiel 1.85 and 1.46, ky 30.8 and 42.1)",
    );
    expect([l.unread.get(EVERY), l.read.get(EVERY), l.unread.get(COCKATIEL), l.read.get(COCKATIEL)]).toEqual([
      7.33, 13.4, 1.85, 1.46,
    ]);

    const t = throughput(latest);
    expect([t.get("bare fetch")?.rps, t.get(DEFAULTS)?.rps, t.get(DEFAULTS)?.ratio]).toEqual([4845, 4551, "0.94"]);
    expect([throughput(before).get(DEFAULTS)?.ratio, throughput(oldest).get(DEFAULTS)?.ratio]).toEqual([
      "0.59",
      "1.31",
    ]);
    expect(throughput(before).get("bare fetch")?.rps).toBe(4503);
    expect(targetsFlat).toContain("| 0.94 × (4,551 against 4,845 requests/s) [0.59 ×; 1.31 × in the run before it]");
    expect(readmeFlat).toContain(
      "0.94 × (4,551 against 4,845 requests/s over loopback); the two runs before it gave 0.59 × and 1.31 ×",
    );

    const s = storm(latest);
    const sb = storm(before);
    const so = storm(oldest);
    const col = (m: Map<string, string[]>, v: string, i: number) => m.get(v)?.[i];
    expect([col(s, DEFAULTS, 1), col(sb, DEFAULTS, 1)]).toEqual(["0.01", "0.02"]);
    expect([col(s, DEFAULTS, 2), col(sb, DEFAULTS, 2), col(s, DEFAULTS, 3), col(sb, DEFAULTS, 3)]).toEqual([
      "1.00",
      "1.03",
      "1.05",
      "1.35",
    ]);
    expect([col(s, "ofetch", 3), col(sb, "ofetch", 3), col(so, "ofetch", 3)]).toEqual(["1.00", "1.15", "1.70"]);
    expect([col(s, DEFAULTS, 6), col(sb, DEFAULTS, 6)]).toEqual(["1062 ms", "1094 ms"]);
    expect([col(s, "resilient-fetch + alternate", 1), col(sb, "resilient-fetch + alternate", 1)]).toEqual([
      "0.01",
      "0.01",
    ]);
    expect(col(s, "resilient-fetch + alternate", 5)).toBe("100%");
    expect(targetsFlat).toContain("| 0.01 [0.02] | met |");
    expect(targetsFlat).toContain(
      "| 1.00 × [1.03 ×] (peak of 1 s windows over the 6 s after recovery) | met; 1.05 × [1.35 ×] in 100 ms buckets, within the load generator's own catch-up (ofetch, which cannot burst there, 1.00 × [1.15 ×])",
    );
    expect(targetsFlat).toContain("| 1,062 ms [1,094 ms] with a 2 s breaker timeout | met on the storm's timing;");
    expect(targetsFlat).toContain(
      "| 100%, primary 0.01 × during the outage [0.01 ×] | met with a primary that answers 503s;",
    );
    // README's storm rows, peers included.
    const readmeRows = table(readme, (l) => l.includes("resilient-fetch (defaults)") && l.includes("cockatiel"));
    const amp = readmeRows.find((c) => (c[0] as string).startsWith("outage amplification")) as string[];
    expect(amp.slice(1).map((c) => c.split(" ")[0])).toEqual(
      [DEFAULTS, "ky", COCKATIEL, "p-retry + opossum", "p-retry", "ofetch"].map((v) => col(s, v, 1)),
    );
    const burst = readmeRows.find((c) => (c[0] as string).startsWith("recovery burst")) as string[];
    expect(burst.slice(1).map((c) => c.split(" ")[0])).toEqual(
      [DEFAULTS, "ky", COCKATIEL, "p-retry + opossum", "p-retry", "ofetch"].map((v) => col(s, v, 2)),
    );

    const heap = (text: string) => {
      const fifths = /Heap after GC at each fifth: ([^;]+);/.exec(text)?.[1] ?? "";
      return [...fifths.matchAll(/([\d.]+) MB/g)].map((m) => Number(m[1]));
    };
    expect([Math.min(...heap(latest)), Math.max(...heap(latest))]).toEqual([6.95, 11.4]);
    expect([Math.min(...heap(before)), Math.max(...heap(before))].map((x) => x.toFixed(1))).toEqual(["7.4", "11.9"]);
    expect(targetsFlat).toContain(
      "heap after GC between 6.95 and 11.4 MB at each fifth, 1,000 breakers held) [7.4 and 11.9 MB]",
    );
    expect(latest).toContain("breakers held: 1000");

    const edge = (text: string) =>
      table(text, (l) => l.startsWith("| store")).map((c) => c.slice(0, 2).concat(c.slice(3).map(num).map(String)));
    expect(edge(latest)).toEqual([
      ["kv", "healthy 60 s", "40", "0", "0"],
      ["kv", "outage 120 s", "140", "26", "0"],
      ["durable-object", "healthy 60 s", "0", "0", "240"],
      ["durable-object", "outage 120 s", "0", "0", "4663"],
    ]);
    expect(edge(before)[1]).toEqual(["kv", "outage 120 s", "100", "5", "0"]);
    expect(edge(before)[3]).toEqual(["durable-object", "outage 120 s", "0", "0", "343"]);
    expect(targetsFlat).toContain(
      "Workers KV store 40 reads and 0 writes per 10,000 healthy calls from 20 isolates, 140 reads and 26 writes per 10,000 calls in a 120 s outage [100 and 5]",
    );
    expect(targetsFlat).toContain(
      "Durable Object store 240 object calls per 10,000 healthy calls (20 isolates × one batch every 5 s)",
    );
    expect(20 * (60 / 5)).toBe(240);
    expect(targetsFlat).toContain("**4,663 object calls per 10,000 calls** [343]");

    const outage = table(latest, (l) => l.includes("calls before the breaker refused one"));
    expect(outage[0]?.slice(0, 3)).toEqual([DEFAULTS, "4", "12"]);
    expect(table(before, (l) => l.includes("calls before the breaker refused one"))[0]?.slice(0, 3)).toEqual([
      DEFAULTS,
      "4",
      "12",
    ]);
    expect(targetsFlat).toContain("| the 5th call is refused, after 12 requests [same] |");
    expect(latest).toContain("2477 s in all");
    expect(targetsFlat).toContain("load average 0.81 at the start, 41 minutes");
    expect(Math.round(2477 / 60)).toBe(41);
  });

  it("the seeded random-503 files give the served shares quoted", () => {
    const seeded = (file: string) =>
      new Map(
        table(bench(file), (l) => l.startsWith("| variant") && l.includes("served")).map((c) => [c[0] as string, c]),
      );
    const ten = seeded("flaky-10pct-2026-11-29-ed2190c.md");
    const thirty = seeded("flaky-30pct-2026-11-29-ed2190c.md");
    const peers = [DEFAULTS, "ky", "cockatiel retry + ConsecutiveBreaker(5)", "p-retry (retries: 2)"];
    expect(peers.map((v) => ten.get(v)?.[2])).toEqual(Array(4).fill("99.91% (9991)"));
    expect(peers.map((v) => [thirty.get(v)?.[2], thirty.get(v)?.[9]])).toEqual([
      ["97.45% (9745)", "1.39"],
      ["97.45% (9745)", "1.39"],
      ["78.03% (7803)", "1.11"],
      ["97.45% (9745)", "1.39"],
    ]);
    expect(thirty.get("cockatiel retry + ConsecutiveBreaker(5)")?.[6]).toBe("1979");
    expect([ten.get(DEFAULTS)?.[3], thirty.get(DEFAULTS)?.[3]]).toEqual(["99.90% ± 0.03", "97.30% ± 0.16"]);
    expect([thirty.get(DEFAULTS)?.[6], thirty.get(DEFAULTS)?.[7], thirty.get(DEFAULTS)?.[8]]).toEqual([
      "0",
      "0",
      "0 / 0",
    ]);
    expect(readmeFlat).toContain("| 78.03% / 1.11 (1,979 refused) |");
    expect(targetsFlat).toContain(
      "99.91% of 10,000 seeded calls (the 3-attempt ceiling on these draws; 99.90% ± 0.03 expected)",
    );
    expect(targetsFlat).toContain("97.45% of 10,000 seeded calls, the ceiling on these draws (97.30% ± 0.16 expected");
    expect(benchmarksFlat).toContain("cockatiel with `ConsecutiveBreaker(5)` 78.03% at 30% (1,979 calls refused)");
  });

  it("docs/benchmarks.md's committed-figures table and its defaults before/after are the files'", () => {
    const rows = new Map(
      table(benchmarks, (l) => l.startsWith("| scenario")).map((c) => [c[0] as string, c.slice(1).join(" | ")]),
    );
    const [l] = overheadRuns(latest) as [OverheadRun];
    const peers = ["ky", COCKATIEL, "opossum", "p-retry", "ofetch"].map((v) => `${l.unread.get(v)} / ${l.read.get(v)}`);
    expect(peers).toEqual(["30.8 / 42.1", "1.85 / 1.46", "1.29 / 2.75", "0.79 / 1.27", "1.12 / 1.71"]);
    expect(rows.get("success-path overhead, body unread / read")).toBe(
      "1.74 / 3.00 µs (every feature: 7.33 / 13.4 µs) [3.43 µs unread (10.4 µs)] | ky 30.8 / 42.1 µs; cockatiel 1.85 / 1.46; opossum 1.29 / 2.75; p-retry 0.79 / 1.27; ofetch 1.12 / 1.71",
    );
    const [b] = overheadRuns(before) as [OverheadRun];
    expect([b.unread.get(DEFAULTS), b.unread.get(EVERY)]).toEqual([3.43, 10.4]);
    const s = storm(latest);
    expect(rows.get("storm: recovery burst, 1 s windows (100 ms buckets)")).toBe(
      `1.00 × offered (1.05) [1.03 (1.35)] | ${[
        ["cockatiel", COCKATIEL],
        ["opossum + p-retry", "p-retry + opossum"],
        ["ky", "ky"],
        ["p-retry", "p-retry"],
        ["ofetch", "ofetch"],
      ]
        .map(([name, v]) => `${name} ${s.get(v as string)?.[2]} (${s.get(v as string)?.[3]})`)
        .join("; ")}`,
    );
    expect(rows.get("storm with a healthy alternate: served / amplification / burst (1 s)")).toBe(
      `100% / 0.01 / ${s.get("resilient-fetch + alternate")?.[2]} [${storm(before).get("resilient-fetch + alternate")?.[2]}] | cockatiel + fallback 100% / 0.01 / ${s.get("cockatiel + fallback")?.[2]}`,
    );
    const bundle = new Map(table(latest, (l) => l.startsWith("| entry")).map((c) => [c[0] as string, c]));
    const gz = (e: string) => /\(([\d.]+) KiB\)/.exec(bundle.get(e)?.[2] as string)?.[1];
    const br = (e: string) => /\(([\d.]+) KiB\)/.exec(bundle.get(e)?.[3] as string)?.[1];
    expect(rows.get("bundle, min+gzip / brotli")).toBe(
      `root ${gz("root: createResilience")} / ${br("root: createResilience")} KiB; all three entries ${gz("everything: root + ./fallback + ./degradation")} / ${br("everything: root + ./fallback + ./degradation")} KiB; \`retry\` alone ${gz("retry alone (./policies)")} / ${br("retry alone (./policies)")} KiB | ky ${gz("ky (for comparison)")} / ${br("ky (for comparison)")} KiB; cockatiel (five policies) ${gz("cockatiel retry+breaker+fallback+timeout+bulkhead")} / ${br("cockatiel retry+breaker+fallback+timeout+bulkhead")} KiB; p-retry ${gz("p-retry (for comparison)")} / ${br("p-retry (for comparison)")} KiB`,
    );
    expect(rows.get("loopback throughput, × bare `fetch`")).toBe(
      "0.94 [0.59; 1.31 in the run before] | bare `fetch` 4,845 requests/s [4,503]",
    );

    const ba = JSON.parse(bench("defaults-before-after-2026-11-29.json")) as Record<
      "before" | "after",
      Array<{ failRate: number; rows: Array<{ servedPct: number; refusedByBreaker: number }> }>
    >;
    const fig = (side: "before" | "after", rate: number) => {
      const row = ba[side].find((r) => r.failRate === rate)?.rows[0];
      return [Math.round(((row?.servedPct as number) * 200) / 100), row?.servedPct, row?.refusedByBreaker];
    };
    expect([fig("before", 0.1), fig("after", 0.1), fig("before", 0.3), fig("after", 0.3)]).toEqual([
      [17, 8.5, 182],
      [199, 99.5, 0],
      [9, 4.5, 190],
      [195, 97.5, 0],
    ]);
    expect(benchmarksFlat).toContain(
      "with 10% random 503s, 17 calls served of 200 (8.5%, 182 refused by the breaker) before, 199 (99.5%, none refused) after; with 30%, 9 (4.5%) before, 195 (97.5%, none refused) after",
    );
  });

  it("docs/benchmarks.md's instruction section is its files'", () => {
    const c5 = instructions(bench("instructions-2026-11-30-c5c115d-20k.md"));
    const e4 = instructions(bench("instructions-2026-11-30-e4c8593-20k.md"));
    const rows = table(benchmarks, (l) => l.startsWith("| variant") && l.includes("body not read"));
    const names = [DEFAULTS, EVERY, COCKATIEL];
    rows.forEach((cells, i) => {
      const v = names[i] as string;
      const cell = (m: Mode) =>
        `${(c5.get(`${v}/${m}`) as number).toLocaleString("en")} [${(e4.get(`${v}/${m}`) as number).toLocaleString("en")}]`;
      expect([cells[1], cells[2]], v).toEqual([cell("unread"), cell("read")]);
    });
    const ratio = (a: number | undefined, b: number | undefined) => ((a as number) / (b as number)).toFixed(1);
    expect([
      ratio(c5.get(`${DEFAULTS}/unread`), c5.get(`${COCKATIEL}/unread`)),
      ratio(c5.get(`${EVERY}/unread`), c5.get(`${COCKATIEL}/unread`)),
      ratio(e4.get(`${EVERY}/unread`), e4.get(`${COCKATIEL}/unread`)),
    ]).toEqual(["1.4", "4.1", "5.3"]);
    const d4 = instructions(bench("instructions-2026-11-30-431d59d-20k.md"));
    expect([
      d4.get(`${DEFAULTS}/unread`),
      d4.get(`${DEFAULTS}/read`),
      d4.get(`${EVERY}/unread`),
      d4.get(`${EVERY}/read`),
    ]).toEqual([10160, 10140, 31360, 30907]);
    const b4 = instructions(bench("instructions-2026-11-30-4bdd16e-20k.md"));
    expect([
      b4.get(`${DEFAULTS}/unread`),
      b4.get(`${DEFAULTS}/read`),
      b4.get(`${EVERY}/unread`),
      b4.get(`${EVERY}/read`),
    ]).toEqual([10180, 10147, 34460, 36276]);
    expect([
      ratio(b4.get(`${EVERY}/unread`), c5.get(`${COCKATIEL}/unread`)),
      ratio(b4.get(`${EVERY}/read`), c5.get(`${COCKATIEL}/read`)),
    ]).toEqual(["4.9", "5.2"]);
    const early = instructions(bench("instructions-2026-11-30-91f2c56.md"));
    const late = instructions(bench("instructions-2026-11-30-7ec0b44.md"));
    expect([
      early.get(`${DEFAULTS}/unread`),
      late.get(`${DEFAULTS}/unread`),
      early.get(`${EVERY}/unread`),
      late.get(`${EVERY}/unread`),
    ]).toEqual([12784, 9875, 45804, 37354]);
    expect(late.get(`${DEFAULTS}/read`)).toBe(9744);
    expect(benchmarksFlat).toContain("brought defaults from 12,784 to 9,875 and every feature from 45,804 to 37,354");
    // The timed runs the section quotes.
    const e411 = overheadRuns(bench("overhead-2026-11-30-e411a72.md")).slice(0, 5);
    const span = (v: string, m: Mode) => {
      const xs = e411.map((r) => r[m].get(v) as number);
      return [Math.min(...xs), Math.max(...xs)];
    };
    expect([span(DEFAULTS, "unread"), span(DEFAULTS, "read"), span(EVERY, "unread"), span(EVERY, "read")]).toEqual([
      [1.01, 1.8],
      [-1.65, 1.96],
      [3.87, 5.94],
      [3.86, 6.03],
    ]);
    const [c2] = overheadRuns(bench("overhead-2026-11-30-c201ec7.md")) as [OverheadRun];
    expect([c2.unread.get(DEFAULTS), c2.read.get(DEFAULTS)]).toEqual([1.89, 2.2]);
    const e99 = overheadRuns(bench("overhead-2026-11-30-e99d385.md"));
    expect(e99.map((r) => ((r.read.get(DEFAULTS) as number) - (r.unread.get(DEFAULTS) as number)).toFixed(1))).toEqual([
      "0.5",
      "0.6",
    ]);
    expect(
      e99.map((r) => ((r.read.get(COCKATIEL) as number) - (r.unread.get(COCKATIEL) as number)).toFixed(1)),
    ).toEqual(["0.5", "0.2"]);
  });

  it("'npm run bench' takes 'about 41 min on 2 shared cores', as the run the docs quote did", () => {
    expect(benchmarksFlat).toContain("| about 41 min on 2 shared cores |");
    const seconds = num(/([\d.]+) s in all/.exec(latest)?.[1] as string);
    expect(Math.round(seconds)).toBe(2477);
    expect(Math.round(seconds / 60)).toBe(41);
  });

  it("'every figure … comes from a committed results file …, except those said to be otherwise', and those say so", () => {
    expect(benchmarksFlat).toContain(
      "comes from a committed results file in [`docs/benchmarks/`](benchmarks/), except those said to be otherwise: the throughput runs of 2026-12-01 (0.94 ×, 0.97 ×, 0.98 ×, 1.02 ×), the instruction counts below given without a link to a file, and the soak runs in [targets](targets.md): their output was read, not saved.",
    );
    // Where the unsaved throughput figures are quoted, they are said to be unsaved.
    expect(readmeFlat).toContain("0.65 × to 1.81 × (their output read, not saved)");
    expect(targetsFlat).toContain("single rounds from 0.65 × to 1.81 × (their output read, not saved)");
    expect(targetsFlat).toContain(
      "`node --expose-gc test/soak/soak.ts 2000 100`, two runs, their output read, not saved",
    );
    // Every throughput ratio recorded in docs/benchmarks, Markdown and JSON: the unsaved ones are indeed in none.
    const recorded = new Set<string>();
    for (const f of readdirSync(join(root, "docs/benchmarks"))) {
      if (f.endsWith(".md") && /throughput/i.test(bench(f)))
        for (const [, t] of throughput(bench(f))) if (t.ratio !== "1.00") recorded.add(t.ratio);
      if (f.endsWith(".json")) {
        const data = JSON.parse(bench(f)) as { throughput?: Array<{ ratioToBare: number }> };
        for (const r of data.throughput ?? []) if (r.ratioToBare !== 1) recorded.add(r.ratioToBare.toFixed(2));
      }
    }
    expect([...recorded].sort()).toEqual(["0.59", "0.94", "1.31"]);
  });
});

// Sizes, measured again.
interface SizeEntry {
  name: string;
  size: number;
  sizeLimit: number;
}
let sizes: SizeEntry[] = [];
const config = JSON.parse(read(".size-limit.json")) as Array<{ name: string; limit: string; gzip?: boolean }>;

function newest(dir: string): number {
  let t = 0;
  for (const f of readdirSync(join(root, dir), { recursive: true }) as string[]) {
    const s = statSync(join(root, dir, f));
    if (s.isFile()) t = Math.max(t, s.mtimeMs);
  }
  return t;
}

/** Whether what the browser build is made of (src, the build config, the dependencies) is as at `commit`. */
function unchangedSince(commit: string): boolean {
  const diff = spawnSync("git", ["diff", "--quiet", commit, "--", "src", "tsup.config.ts", "package-lock.json"], {
    cwd: root,
  });
  // 1: changed since; anything else (an unknown commit) fails the test.
  expect(diff.status === 0 || diff.status === 1, `git diff ${commit}`).toBe(true);
  return diff.status === 0;
}

describe("sizes: size-limit and the root breakdown on this tree", () => {
  beforeAll(() => {
    const built = join(root, "dist/browser/index.js");
    const stale =
      !existsSync(built) ||
      statSync(built).mtimeMs < Math.max(newest("src"), statSync(join(root, "tsup.config.ts")).mtimeMs);
    if (stale) execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
    const out = spawnSync(process.execPath, [join(root, "node_modules/size-limit/bin.js"), "--json"], {
      cwd: root,
      encoding: "utf8",
    });
    sizes = JSON.parse(out.stdout) as SizeEntry[];
  }, 180_000);

  it("the quoted bytes and KiB are size-limit's, in targets and README alike", () => {
    const [rootE, fb, dg, all, retry, policies] = sizes as [
      SizeEntry,
      SizeEntry,
      SizeEntry,
      SizeEntry,
      SizeEntry,
      SizeEntry,
    ];
    const [r0, f0, d0, a0] = [rootE, fb, dg, all].map((e) => e.size.toLocaleString("en"));
    const bytes = `${r0}, ${f0}, ${d0} and ${a0}`;
    // Bytes are quoted at a commit: compared with this tree while its built sources are that commit's.
    const at =
      /after `npm run build`, at `(\w+)`: ([\d,]+, [\d,]+, [\d,]+ and [\d,]+) bytes min\+gzip of the browser build/.exec(
        targetsFlat,
      );
    expect(at, "the sizes' commit").not.toBeNull();
    if (unchangedSince(at?.[1] as string)) {
      expect(at?.[2]).toBe(bytes);
      expect(targetsFlat).toContain(`| ${kib(retry.size, 2)} KiB (${retry.size.toLocaleString("en")} bytes;`);
    }
    const row = `${kib(rootE.size)} KiB; +${kib(fb.size - rootE.size)} KiB; +${kib(dg.size - rootE.size)} KiB; ${kib(all.size)} KiB`;
    expect(targetsFlat).toContain(`| ${row} (\`npx size-limit\``);
    expect(targetsFlat).toContain(`| ${kib(retry.size, 2)} KiB (${retry.size.toLocaleString("en")} bytes;`);
    expect(targetsFlat).toContain(`| missed by ${retry.size - 1536} bytes:`);
    // README: entry table, comparison, "Not done yet".
    expect(readmeFlat).toContain(`| ${kib(rootE.size)} KiB |`);
    expect(readmeFlat).toContain(`| +${kib(fb.size - rootE.size)} KiB |`);
    expect(readmeFlat).toContain(`| +${kib(dg.size - rootE.size)} KiB |`);
    expect(readmeFlat).toContain(`| ${kib(all.size)} KiB |`);
    expect(readmeFlat).toContain(`| \`retry\` alone ${kib(retry.size)} KiB; all ${kib(policies.size)} KiB |`);
    expect(readmeFlat).toContain(`its ${(rootE.size / 1000).toFixed(1)} kB is the ${kib(rootE.size)} KiB above`);
    expect(readmeFlat).toContain(
      `| root ${kib(rootE.size)} KiB; all three entries ${kib(all.size)} KiB; \`retry\` alone ${kib(retry.size)} KiB (gzip) |`,
    );
    expect(readmeFlat).toContain(
      `is ${kib(rootE.size)} KiB min+gzip in a page's build against an 8 KB target (fallback +${kib(fb.size - rootE.size)} KiB and degradation +${kib(dg.size - rootE.size)} KiB against +3.5 and +4, all three ${kib(all.size)} KiB against 16; \`retry\` alone ${kib(retry.size)} KiB against 1.5)`,
    );
  });

  it("the budgets the paragraph names are .size-limit.json's, and none is exceeded", () => {
    expect(targetsFlat).toContain(
      "the budgets in `.size-limit.json` (root 24.1 KiB, root with `./fallback` 33.7, with `./degradation` 30.4, all three 38.8, `retry` alone 2.45, every policy 12.75)",
    );
    expect(config.map((e) => e.limit)).toEqual([
      "24.1 KiB",
      "33.7 KiB",
      "30.4 KiB",
      "38.8 KiB",
      "2.45 KiB",
      "12.75 KiB",
    ]);
    expect(sizes.map((e) => e.name)).toEqual(config.map((e) => e.name));
    for (const e of sizes) expect(e.size, e.name).toBeLessThanOrEqual(e.sizeLimit);
  });

  it("the budgets 'sit less than 0.1 KiB above the latest sizes'", () => {
    expect(targetsFlat).toContain("sit less than 0.1 KiB above the latest sizes");
    for (const e of sizes) {
      expect(e.sizeLimit - e.size, e.name).toBeGreaterThanOrEqual(0);
      expect(e.sizeLimit - e.size, e.name).toBeLessThan(102.4);
    }
  });

  it("node bench/root-breakdown.ts gives the table's current column and its totals", () => {
    const out = execFileSync(process.execPath, [join(root, "bench/root-breakdown.ts")], {
      cwd: root,
      encoding: "utf8",
    });
    const whole = num(/browser build: (\d+) bytes/.exec(out)?.[1] as string);
    // The table is of one commit: compared with this tree while its built sources are that commit's.
    const at =
      /At `(\w+)`, ([\d,]+) bytes in all \(esbuild alone; size-limit's own bundling of the same tree gives ([\d,]+)\)/.exec(
        targetsFlat,
      );
    expect(at, "the breakdown's commit").not.toBeNull();
    if (!unchangedSince(at?.[1] as string)) return;
    expect(at?.[2]).toBe(whole.toLocaleString("en"));
    expect(at?.[3]).toBe(sizes[0]?.size.toLocaleString("en"));
    const measured = new Map(
      table(out, (l) => l.startsWith("| group")).map((c) => [c[0] as string, [c[1], c[2]].join(" | ")]),
    );
    const doc = table(targets, (l) => /^\| group\s/.test(l));
    expect(doc.length).toBe(measured.size);
    for (const c of doc) expect(`${c[1]} | ${c[2]}`, c[0]).toBe(measured.get(c[0] as string));
    const current = doc.map((c) => num(c[2] as string));
    const then = doc.map((c) => num(c[3] as string));
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(current)).toBeLessThan(whole);
    expect(targetsFlat).toContain("at `e2db54f` (17,343 in all)");
    expect(sum(then)).toBeLessThan(17343);
    const optional = doc
      .filter((c) => c[0] === "CORS hint" || c[0] === "execute and named breakers")
      .reduce((a, c) => a + num(c[2] as string), 0);
    // The two rows' estimates move a little with each build (1.4 KB until 3ff50eb, 1.3 since): the sentence names them.
    const saved = (optional / 1000).toFixed(1);
    expect(Number(saved)).toBeGreaterThan(1);
    // The root without those rows, from size-limit's root and the table's estimates (22.0 KiB at 3ce238f).
    const without = kib((sizes[0]?.size as number) - optional);
    expect(Number(without)).toBeGreaterThan(20);
    expect(targetsFlat).toContain(
      `saves about ${saved} KB by these estimates: the root would still be near ${without} KiB`,
    );
  });
});

// The budgets' history.
interface Budget {
  commit: string;
  key: string;
  bytes: number;
}
function budgetHistory(): {
  steps: Array<{ commit: string; key: string; kib: number }>;
  firstBrowserRoot: Budget | undefined;
} {
  const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" });
  const commits = git("log", "--reverse", "--format=%h", "--", ".size-limit.json").trim().split("\n");
  const toBytes = (limit: string) => {
    const m = /^([\d.]+)\s*(KiB|kB|B)?$/.exec(limit.trim()) as RegExpExecArray;
    return Number(m[1]) * (m[2] === "KiB" ? 1024 : m[2] === "kB" ? 1000 : 1);
  };
  const last = new Map<string, number>();
  const steps: Array<{ commit: string; key: string; kib: number }> = [];
  let firstBrowserRoot: Budget | undefined;
  let browser = false;
  for (const commit of commits) {
    const entries = JSON.parse(git("show", `${commit}:.size-limit.json`)) as Array<{
      path: string | string[];
      import?: unknown;
      limit: string;
    }>;
    for (const e of entries) {
      const key = JSON.stringify([e.path, e.import]);
      const bytes = toBytes(e.limit);
      if (e.path === "dist/browser/index.js" && !firstBrowserRoot) {
        firstBrowserRoot = { commit, key, bytes };
        browser = true;
      }
      const prev = last.get(key);
      if (browser && prev !== undefined && bytes > prev)
        steps.push({ commit, key, kib: Math.round(((bytes - prev) / 1024) * 1000) / 1000 });
      last.set(key, bytes);
    }
  }
  return { steps, firstBrowserRoot };
}

describe("docs/targets.md: the budgets' history (git log -p -- .size-limit.json)", () => {
  const history = budgetHistory();

  it("the root's budget went from 14.5 KiB, set with the first page build, to 22.2, back to 22.1, and on to 24.1, in steps of 0.1 to 0.7 KiB", () => {
    expect(targetsFlat).toContain(
      "the root's from 14.5 KiB, set when a page's build first left out the redirect follower and the platform error codes, to 22.2, and back to 22.1 when a page's build stopped carrying the stream it sent past `maxReplayBytes`, to 22.2 again when a call whose signal is already aborted came to check the caller's input first, as fetch does, and to 22.3 and 22.4 when a layer installed as the global fetch came to send through the fetch beneath it, and to 22.5 when a breaker came to cut URL secrets from the reasons and trips it adopts from shared state and a retry refused after an answer too large to keep came to count as following a request, and to 22.6 when layers of two copies of the package came to read each other's marks through one object per realm, and to 22.8 when a page's build came to take a `no-cors` POST as keyless and to refuse a `same-origin` call to another origin itself, and to 23.0 when copies of answers came to list their headers, a past hold to hold nothing and a probe's lease to outlast a short clock step back, and to 23.3 when a polyfill's signal came to be followed by the platform's and a relative URL to be resolved once, and to 23.4 when unknown options came to be looked for among every name an options object answers to, and to 23.6 when what a store of your own answers came to be checked before the breaker merges it, and to 23.7 when it came to be read once, into a copy, a trip's counts checked too, and to 23.8 when a reading of a clock of yours that is no finite number came to be refused, and to 23.9 when a store came to be handed the breaker's thresholds alone, a store option given as `null` to be refused and a BigInt to be shown by its kind, and to 24.0 when a value no runtime takes for an `init` field came to be refused at once in a page's build too, before the browser quotes it, and to 24.1 when work run through `execute(fn)` that a `degradation` listener aborted on the move its own outcome set off came to reject with the abort's reason, left out of the error rate and totals.",
    );
    const first = history.firstBrowserRoot as Budget;
    expect(first.bytes).toBe(14.5 * 1024);
    const message = execFileSync("git", ["show", "-s", "--format=%s", first.commit], { cwd: root, encoding: "utf8" });
    expect(message).toMatch(/drops the redirect follower/);
    expect(message).toMatch(/platform error codes/);
    expect(config[0]?.limit).toBe("24.1 KiB");
    const rootSteps = history.steps.filter((s) => s.key === first.key).map((s) => s.kib);
    expect(rootSteps.length).toBeGreaterThan(30);
    expect(Math.min(...rootSteps)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...rootSteps)).toBeLessThanOrEqual(0.7);
  });

  it("every budget was raised 'in steps of 0.05 to 1.2 KiB (the root's 0.1 to 0.6 KiB)'", () => {
    expect(targetsFlat).toContain("in steps of 0.05 to 1.2 KiB (the root's 0.1 to 0.6 KiB)");
    const all = history.steps.map((s) => s.kib);
    expect([Math.min(...all), Math.max(...all)]).toEqual([0.05, 1.2]);
    const first = history.firstBrowserRoot as Budget;
    const rootSteps = history.steps.filter((s) => s.key === first.key).map((s) => s.kib);
    expect([Math.min(...rootSteps), Math.max(...rootSteps)]).toEqual([0.1, 0.6]);
  });
});

describe("docs/benchmarks.md: what size-limit measures", () => {
  it("'`size-limit` (part of `npm test`) measures gzip of the built `dist/browser`'", () => {
    expect(benchmarksFlat).toContain("`size-limit` (part of `npm test`) measures gzip of the built `dist/browser`");
    expect(config.filter((e) => e.gzip !== true).map((e) => e.name)).toEqual([]);
    const paths = (JSON.parse(read(".size-limit.json")) as Array<{ path: string | string[] }>).flatMap((e) => e.path);
    expect(paths.filter((p) => !p.startsWith("dist/browser/"))).toEqual([]);
  });
});

describe("README Status: the mutation scores", () => {
  it("are docs/mutation.md's", () => {
    const raw = read("docs/mutation.md");
    const mutation = flat(raw);
    expect(readmeFlat).toContain(
      "`src/http`, `src/fallback` and `src/degradation` at 89.0% of 2,760 mutants at `9ac4283`, `src/core` 91.8%, `src/cloudflare` 93.0%, `src/stores` 96.7%, `src/testing` 94.5%",
    );
    expect(mutation).toContain("over the tree at `9ac4283`");
    expect(mutation).toContain("The result is **89.0%**: 2,429 killed and 28 timed out, of 2,760 counted");
    expect((((2429 + 28) / 2760) * 100).toFixed(1)).toBe("89.0");
    expect(mutation).toMatch(/### `src\/core`, measured .*?\*\*91\.8%\*\* \(590 killed, 5 timed out/);
    expect(((590 + 5) / 648) * 100).toBeCloseTo(91.8, 1);
    expect(raw).toMatch(/^\| \*\*`src\/cloudflare`\*\* .*\*\*93\.0%\*\* +\|$/m);
    expect(raw).toMatch(/^\| \*\*`src\/stores`\*\* .*\*\*96\.7%\*\* +\|$/m);
    expect(raw).toMatch(/^\| \*\*`src\/testing`\*\* .*\*\*94\.5%\*\* +\|$/m);
  });
});
