/**
 * Scaffolding for the timer tests: a clock on a `TestClock` whose reading can
 * be stepped (an NTP step, a resumed VM) and that counts the timers set, a
 * fetch that answers by script and logs when each attempt starts and is
 * aborted, and what the log says about attempt timeouts.
 */
import type { Clock } from "../../src/index.ts";
import type { TestClock } from "../../src/testing/clock.ts";

/** A clock whose timers run on `tc`, whose reading can be stepped, counting the timers set. */
export function steppedClock(tc: TestClock): Clock & { step(ms: number): void; timers(): number } {
  let offset = 0;
  let timers = 0;
  return {
    now: () => tc.now() + offset,
    setTimer: (callback, ms) => {
      timers++;
      return tc.setTimer(callback, ms);
    },
    step(ms) {
      offset += ms;
    },
    timers: () => timers,
  };
}

/**
 * One scripted answer. `hang` waits for the attempt's signal; `deaf` never
 * settles and ignores its signal; `302` redirects to `/hop<k>`; `ok@T`
 * answers 200 at the TestClock's time T; `503raS` is a 503 with Retry-After S.
 */
export type Step = "503" | "fail" | "hang" | "deaf" | "ok" | "302" | `ok@${number}` | `503ra${number}`;

/**
 * A fetch that answers the k-th request with `steps[k]` (then hangs until
 * aborted), logging `start k @t` and `abort k @t <reason>` at the TestClock's time.
 */
export function scriptedFetch(tc: TestClock, log: string[], steps: Step[]) {
  let n = 0;
  return (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const k = n++;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const step = steps[k] ?? "hang";
    log.push(`start ${k} @${tc.now()}`);
    if (step === "503") return Promise.resolve(new Response("x", { status: 503 }));
    if (step === "ok") return Promise.resolve(new Response("ok"));
    if (step === "302") return Promise.resolve(new Response(null, { status: 302, headers: { location: `/hop${k}` } }));
    if (step === "fail") return Promise.reject(new TypeError("fetch failed"));
    if (step === "deaf") return new Promise<Response>(() => {});
    if (step.startsWith("503ra")) {
      return Promise.resolve(new Response("x", { status: 503, headers: { "retry-after": step.slice(5) } }));
    }
    if (step.startsWith("ok@")) {
      const at = Number(step.slice(3));
      return new Promise((resolve) => tc.setTimer(() => resolve(new Response("ok")), at - tc.now()));
    }
    return new Promise<Response>((_, reject) => {
      signal?.addEventListener("abort", () => {
        log.push(`abort ${k} @${tc.now()} ${(signal.reason as Error).message}`);
        reject(signal.reason);
      });
    });
  };
}

/** How long after its start each attempt was aborted by an attempt timeout. */
export function attemptDurations(log: string[]): number[] {
  const starts = new Map<string, number>();
  const out: number[] = [];
  for (const line of log) {
    const s = /^start (\d+) @([\d.e-]+)/.exec(line);
    if (s) starts.set(s[1] as string, Number(s[2]));
    const a = /^abort (\d+) @([\d.e-]+) attempt/.exec(line);
    if (a) out.push(Number(a[2]) - (starts.get(a[1] as string) as number));
  }
  return out;
}

/** Retry options whose every wait is `initialDelay` exactly. */
export const fixedBackoff = (initialDelay: number, maxAttempts = 20) => ({
  maxAttempts,
  initialDelay,
  jitter: "none" as const,
  exponentialBase: 1,
});
