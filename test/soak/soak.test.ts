import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

interface SoakReport {
  calls: number;
  settledOnce: number;
  neverSettled: number;
  settledTwice: number;
  layerMissing: number;
  overdue: number;
  late: number;
  lateToleranceMs: number;
  maxOvershootMs: number;
  served: number;
  unhandled: number;
  heapStartMb: number;
  heapEndMb: number;
}

/** Runs the soak in its own process; resolves its report and how long the process took to exit after it. */
function soak(
  calls: number,
  inFlight: number,
): Promise<{ report: SoakReport; exitLagMs: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", fileURLToPath(new URL("./soak.ts", import.meta.url)), String(calls), String(inFlight)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    let reportedAt = 0;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n") && reportedAt === 0) reportedAt = Date.now();
    });
    const kill = setTimeout(() => {
      child.kill("SIGKILL");
      // The report (printed before the exit is awaited) says which calls never settled.
      reject(new Error(`soak did not exit on its own; its report: ${out}`));
    }, 120_000);
    child.on("exit", (code) => {
      clearTimeout(kill);
      try {
        resolve({ report: JSON.parse(out.trim()) as SoakReport, exitLagMs: Date.now() - reportedAt, code });
      } catch (error) {
        reject(error);
      }
    });
  });
}

describe("chaos soak (short form; npm run soak for 20,000 calls)", () => {
  it("settles every call exactly once, in time, with nothing left behind", async () => {
    // 100 in flight, not npm run soak's 200: npm test runs it beside the other
    // test files on two cores, and 200 calls plus both upstreams in one
    // starved process measure the machine (85% served here under load,
    // 99.7% with 100).
    const { report, exitLagMs, code } = await soak(2_000, 100);
    expect(code).toBe(0);
    // Counted per call from outside the layer (see soak.ts): the caller's promise and the layer's own event.
    expect(report.settledOnce).toBe(report.calls);
    expect(report.neverSettled).toBe(0);
    expect(report.overdue).toBe(0);
    expect(report.settledTwice).toBe(0);
    expect(report.layerMissing).toBe(0);
    // None settled later than timeout.total + the stated event-loop tolerance.
    expect(report.lateToleranceMs).toBe(500);
    expect(report.late).toBe(0);
    if (process.env.REPORT_FIGURES) console.log(`soak: max overshoot ${report.maxOvershootMs} ms past timeout.total`);
    expect(report.unhandled).toBe(0);
    expect(report.served / report.calls).toBeGreaterThan(0.95);
    expect(report.heapEndMb - report.heapStartMb).toBeLessThan(20);
    // It printed and then ended by itself: no timer, socket or listener kept it alive.
    expect(exitLagMs).toBeLessThan(3_000);
  }, 150_000);
});
