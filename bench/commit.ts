import { execFileSync } from "node:child_process";

/** Runs git and returns its trimmed output, or "unknown" outside a repository. */
export function git(...args: string[]): string {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

/** The commit a result belongs to: `BENCH_COMMIT` for an exported tree without `.git`, else HEAD. */
export function benchCommit(): string {
  return process.env.BENCH_COMMIT || git("rev-parse", "--short", "HEAD");
}
