import { median, runChild } from "./child.ts";
import { variants } from "./variants.ts";

/** `unread`: the caller drops the Response; `read`: it reads the body (`await response.text()`). */
export type BodyMode = "unread" | "read";
export const BODY_MODES: readonly BodyMode[] = ["unread", "read"];

export interface OverheadRow {
  variant: string;
  mode: BodyMode;
  /** Median ns/op added over bare fetch (wall clock), and the range over rounds. */
  addedNs: number;
  minNs: number;
  maxNs: number;
  /** Median CPU ns/op added over bare fetch (every thread of the process, GC helpers included). */
  cpuAddedNs: number;
}

/**
 * Success-path overhead: each variant in its own process, rounds interleaved
 * (A B A B …), with the body left unread and with it read. Every variant
 * meets the same stub (a fresh 200 with the same small JSON body) and the
 * same read, and each is compared with bare fetch in the same round and mode.
 */
export async function measureOverhead(rounds: number, calls: number, only?: readonly string[]): Promise<OverheadRow[]> {
  for (const name of only ?? []) if (!variants[name]) throw new Error(`unknown variant ${name}`);
  const names = only ? ["bare fetch", ...only.filter((n) => n !== "bare fetch")] : Object.keys(variants);
  const added = new Map<string, { wall: number[]; cpu: number[] }>();
  for (let r = 0; r < rounds; r++) {
    for (const mode of BODY_MODES) {
      const results: Record<string, { nsPerOp: number; cpuNsPerOp: number }> = {};
      for (const name of names) results[name] = await runChild("./overhead-child.ts", [name, String(calls), mode]);
      const bare = results["bare fetch"] as { nsPerOp: number; cpuNsPerOp: number };
      for (const name of names) {
        const key = `${mode}\u0000${name}`;
        const entry = added.get(key) ?? { wall: [], cpu: [] };
        const own = results[name] as { nsPerOp: number; cpuNsPerOp: number };
        entry.wall.push(own.nsPerOp - bare.nsPerOp);
        entry.cpu.push(own.cpuNsPerOp - bare.cpuNsPerOp);
        added.set(key, entry);
      }
    }
  }
  return BODY_MODES.flatMap((mode) =>
    names
      .filter((n) => n !== "bare fetch")
      .map((variant) => {
        const { wall, cpu } = added.get(`${mode}\u0000${variant}`) as { wall: number[]; cpu: number[] };
        return {
          variant,
          mode,
          addedNs: median(wall),
          minNs: Math.min(...wall),
          maxNs: Math.max(...wall),
          cpuAddedNs: median(cpu),
        };
      }),
  );
}
