import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { compareRows, formatRows, type Lane, received, summaryJson } from "../../demo/compare.ts";
import type { ProviderStats } from "../../demo/fake-api.ts";
import { toStandard } from "../../demo/lanes.ts";
import { type CallRecord, type Sample, summarise } from "../../demo/run-log.ts";
import { servedPath, timelineSvg } from "../../demo/timeline-svg.ts";

const stats = (over: Partial<ProviderStats> = {}): ProviderStats => ({
  requests: 0,
  ok: 0,
  failed: 0,
  reset: 0,
  lastSteps: undefined,
  lastResolution: undefined,
  ...over,
});
const call = (start: number, end: number, ok: boolean, endpoint: string, attempts = 1): CallRecord => ({
  start,
  end,
  ok,
  endpoint,
  attempts,
  level: "full",
});
const sample = (t: number, premium: string, level: string): Sample => ({
  t,
  phase: t < 2_000 ? "healthy" : "premium down",
  premium,
  standard: "closed",
  level,
});

const plainCalls = [
  call(0, 100, true, "premium"),
  call(1_000, 1_010, false, "none"),
  call(2_000, 2_005, false, "none"),
];
const libraryCalls = [
  call(0, 120, true, "premium"),
  call(1_000, 1_400, true, "standard", 2),
  call(2_000, 2_300, true, "standard"),
];
const samples = [sample(0, "closed", "full"), sample(1_500, "open", "full"), sample(3_000, "open", "high")];

const plain: Lane = {
  summary: summarise(42, 3, plainCalls, [], {
    premium: stats({ requests: 3, ok: 1, reset: 2, lastSteps: 50, lastResolution: "1080p" }),
    standard: stats(),
  }),
};
const library: Lane = {
  summary: summarise(42, 3, libraryCalls, samples, {
    premium: stats({ requests: 2, ok: 1, reset: 1, lastSteps: 50, lastResolution: "1080p" }),
    standard: stats({ requests: 2, ok: 2, lastSteps: 30, lastResolution: "720p" }),
  }),
  breakers: { premium: "open", standard: "closed" },
  level: "high",
};

describe("the demo's side-by-side comparison", () => {
  it("puts both lanes' figures in one row per measure", () => {
    const rows = compareRows(plain, library, { final: true, color: false });
    const row = (label: string) => rows.find((r) => r[0] === label);
    expect(rows[0]).toEqual(["", "plain fetch", "resilient-fetch"]);
    expect(row("served")).toEqual(["served", "1 (33.3%)", "3 (100%)"]);
    expect(row("served by endpoint")).toEqual(["served by endpoint", "premium 1", "premium 1, standard 2"]);
    expect(row("attempts per call")).toEqual(["attempts per call", "1.00", "1.33"]);
    expect(row("premium breaker")).toEqual(["premium breaker", "none", "open"]);
    expect(row("degradation level")).toEqual(["degradation level", "none (always full)", "high"]);
    expect(row("time in each level")).toEqual(["time in each level", "none", "full 3 s"]);
    expect(row("standard received")).toEqual([
      "standard received",
      "0 requests",
      "2 (ok 2, 503 0, reset 0, last 30 steps @ 720p)",
    ]);
  });

  it("shows the time in each level only in the final summary", () => {
    const live = compareRows(plain, library, { final: false, color: false });
    expect(live.some((r) => r[0] === "time in each level")).toBe(false);
  });

  it("aligns columns, ignoring colour codes, and keeps a minimum width for the live view", () => {
    const lines = formatRows(compareRows(plain, library, { final: false, color: true }), [18, 52]);
    const plainStart = (line: string) => stripVTControlCharacters(line).indexOf("none");
    const breakerLines = lines.filter((l) => l.includes("breaker"));
    expect(breakerLines).toHaveLength(2);
    expect(new Set(breakerLines.map(plainStart)).size).toBe(1);
    const header = lines[0] ?? "";
    expect(header.indexOf("resilient-fetch") - header.indexOf("plain fetch")).toBe(52 + 3);
    expect(lines.find((l) => l.includes("premium breaker"))).toContain("\x1b[31m● open");
  });

  it("gives --json the final summary's figures, the breaker states and level included", () => {
    const json = summaryJson(plain, library, "/out/timeline.svg");
    expect(json).toMatchObject({ seed: 42, seconds: 3, timeline: "/out/timeline.svg" });
    expect(json.resilientFetch).toMatchObject({
      served: 3,
      secondsInLevel: { full: 3 },
      breakers: { premium: "open", standard: "closed" },
      level: "high",
    });
    expect(json.plainFetch).toMatchObject({ served: 1 });
    expect(json.plainFetch).not.toHaveProperty("seed");
  });

  it("says what a provider received, or that it received nothing", () => {
    expect(received(undefined)).toBe("0 requests");
    expect(received(stats({ requests: 4, ok: 1, failed: 2, reset: 1 }))).toBe("4 (ok 1, 503 2, reset 1)");
  });

  it("reshapes the body for the standard provider", () => {
    expect(toStandard({ prompt: "p", resolution: "720p", steps: 30, model: "standard" })).toEqual({
      input: { prompt: "p" },
      parameters: { size: "720p", steps: 30, model: "standard" },
    });
  });
});

describe("the demo's timeline", () => {
  it("draws a served line per lane and a legend naming every mark", () => {
    const svg = timelineSvg(samples, libraryCalls, plainCalls, 0, 3_000);
    for (const label of [
      "closed",
      "half-open",
      "open",
      "degradation level",
      "served: resilient-fetch",
      "served: plain fetch",
    ]) {
      expect(svg).toContain(`>${label}</text>`);
    }
    expect(svg).toContain(servedPath(libraryCalls, 0, (t) => 150 + (790 * t) / 3_000));
    expect(svg).toContain(servedPath(plainCalls, 0, (t) => 150 + (790 * t) / 3_000));
  });

  it("plots the share served in each second between the 100% and 0% lines", () => {
    const x = (t: number) => t / 10;
    // Second 0: one of one served (y 240); second 1: none (y 300); second 2: none.
    expect(servedPath(plainCalls, 0, x)).toBe("M50.0,240.0 L150.0,300.0 L250.0,300.0");
    expect(servedPath(libraryCalls, 0, x)).toBe("M50.0,240.0 L150.0,240.0 L250.0,240.0");
  });
});
