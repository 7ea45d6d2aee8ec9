/**
 * The chaos soak: `calls` logical calls, 200 in flight, through one
 * `Resilience` with a fallback chain, against two local upstreams that fail
 * in every way generation APIs do. Prints one JSON line with what it saw and
 * then must exit on its own (no timer, socket or listener left).
 * Run: node --expose-gc test/soak/soak.ts [calls]   (npm run soak: 20,000)
 */
import * as z from "zod";
import { createResilience } from "../../src/index.ts";
import { startChaosServer } from "./chaos-server.ts";

const calls = Number(process.argv[2] ?? 20_000);
const inFlight = 200;
const totalTimeout = 1_500;
const gc = (globalThis as { gc?: () => void }).gc;
const heap = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
let unhandled = 0;
process.on("unhandledRejection", () => {
  unhandled++;
});

const primary = await startChaosServer(
  { reset: 0.05, hang: 0.03, slow: 0.05, unavailable: 0.08, limited: 0.03, truncated: 0.03, malformed: 0.03 },
  1,
);
const alternate = await startChaosServer(
  { reset: 0.01, hang: 0.01, slow: 0.02, unavailable: 0.02, limited: 0, truncated: 0.01, malformed: 0.01 },
  2,
);
const Job = z.object({ id: z.string(), status: z.string() });
const resilience = createResilience({
  retry: { maxAttempts: 3, initialDelay: 5, maxDelay: 50, maxRetryAfter: 200, idempotencyKey: true },
  timeout: { attempt: 400, total: totalTimeout },
  // Rate-based: sporadic faults (~8%) must not open a provider; an outage would.
  breaker: { failureRate: 0.5, minimumCalls: 20, timeWindow: 10_000, timeout: 300 },
  fallback: [
    {
      name: "gen",
      endpoints: [
        { name: "primary", url: `${primary.url}/v1`, validate: Job },
        { name: "alternate", url: `${alternate.url}/v1`, validate: Job },
      ],
    },
  ],
});

const heapStart = heap();
const started = Date.now();
const settledCount = new Uint8Array(calls);
let late = 0;
let maxOvershoot = 0;
let served = 0;
let bodyErrors = 0;
let next = 0;

async function worker(): Promise<void> {
  while (next < calls) {
    const i = next++;
    const t0 = Date.now();
    const done = () => {
      settledCount[i] = (settledCount[i] ?? 0) + 1;
      const overshoot = Date.now() - t0 - totalTimeout;
      maxOvershoot = Math.max(maxOvershoot, overshoot);
      if (overshoot > 500) late++;
    };
    try {
      const res = await resilience.fetch(`${primary.url}/v1/jobs`, { method: "POST", body: '{"prompt":"soak"}' });
      done();
      if (res.ok) served++;
      await res.text().catch(() => {
        bodyErrors++; // a truncated stream breaks mid-body: after the call settled, as it should
      });
    } catch {
      done();
    }
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
const seconds = (Date.now() - started) / 1000;
await Promise.all([primary.close(), alternate.close()]);
const heapEnd = heap();
let once = 0;
let never = 0;
let twice = 0;
for (const c of settledCount) {
  if (c === 1) once++;
  else if (c === 0) never++;
  else twice++;
}
console.log(
  JSON.stringify({
    calls,
    settledOnce: once,
    neverSettled: never,
    settledTwice: twice,
    late,
    maxOvershootMs: maxOvershoot,
    served,
    bodyErrors,
    unhandled,
    heapStartMb: Math.round(heapStart * 10) / 10,
    heapEndMb: Math.round(heapEnd * 10) / 10,
    seconds,
    upstream: { primary: primary.counts, alternate: alternate.counts },
  }),
);
// No process.exit(): the process must end on its own, with nothing left running.
