import { median, runChild } from "./child.ts";
import { variants } from "./variants.ts";

export interface OverheadRow {
  variant: string;
  /** Median ns/op added over bare fetch, and the range over rounds. */
  addedNs: number;
  minNs: number;
  maxNs: number;
}

/** Success-path overhead: each variant in its own process, rounds interleaved (A B A B …). */
export async function measureOverhead(rounds: number, calls: number): Promise<OverheadRow[]> {
  const names = Object.keys(variants);
  const added: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const results: Record<string, number> = {};
    for (const name of names)
      results[name] = (await runChild<{ nsPerOp: number }>("./overhead-child.ts", [name, String(calls)])).nsPerOp;
    for (const name of names) {
      added[name] ??= [];
      added[name].push((results[name] as number) - (results["bare fetch"] as number));
    }
  }
  return names
    .filter((n) => n !== "bare fetch")
    .map((variant) => {
      const v = added[variant] as number[];
      return { variant, addedNs: median(v), minNs: Math.min(...v), maxNs: Math.max(...v) };
    });
}
