import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What bench/upstream-server.ts counted: requests in all, per 100 ms, and per call id (flaky mode). */
export interface UpstreamStats {
  total: number;
  buckets: number[];
  perCall: number[];
}

/** Starts bench/upstream-server.ts and resolves its base URL. */
export async function startUpstream(
  ...args: string[]
): Promise<{ url: string; stop: () => Promise<void>; stats: () => Promise<UpstreamStats> }> {
  const child: ChildProcess = fork(fileURLToPath(new URL("./upstream-server.ts", import.meta.url)), args, {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()).port));
    child.once("error", reject);
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    stats: async () => (await (await fetch(`${url}/__stats`)).json()) as UpstreamStats,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.disconnect();
      }),
  };
}

/** Runs a script in its own Node process and parses the JSON line it prints. */
export function runChild<T>(script: string, args: string[], execArgv: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
      stdio: ["ignore", "pipe", "inherit", "ipc"],
      execArgv,
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split("\n").pop() as string) as T)
        : reject(new Error(`${script} exited ${code}`)),
    );
  });
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
