/**
 * The chaos soak: `calls` logical calls, 200 in flight by default, through one
 * `Resilience` with a fallback chain, against two local upstreams that fail
 * in every way generation APIs do. Prints one JSON line with what it saw and
 * then must exit on its own (no timer, socket or listener left).
 * Run: node --expose-gc test/soak/soak.ts [calls] [in flight]   (npm run soak: 20,000, 200)
 */
import * as z from "zod";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { startChaosServer } from "./chaos-server.ts";

const calls = Number(process.argv[2] ?? 20_000);
const inFlight = Number(process.argv[3] ?? 200);
const totalTimeout = 3_000;
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
  retry: { maxAttempts: 3, initialDelay: 5, maxDelay: 50, maxRetryAfter: 2_000, idempotencyKey: true },
  timeout: { attempt: 1_000, total: totalTimeout },
  // Rate-based: sporadic faults (~8%) must not open a provider; an outage would.
  // Tripped by the failure rate only: on a starved event loop, attempt timeouts come in runs.
  breaker: { failureRate: 0.5, minimumCalls: 100, failureThreshold: 1_000, timeWindow: 10_000, timeout: 300 },
  fallback: fallback([
    {
      name: "gen",
      endpoints: [
        { name: "primary", url: `${primary.url}/v1`, validate: Job },
        { name: "alternate", url: `${alternate.url}/v1`, validate: Job },
      ],
    },
  ]),
});

/**
 * Each call is watched from outside the layer, so the counters can fail:
 * - the caller's promise settling is counted per call (`promiseSettled`);
 * - the layer's own `request` event, one per finished call, is counted per
 *   call too (`layerSettled`): two means the layer finished a call twice;
 * - a watchdog per call, `timeout.total` + WATCHDOG_GRACE_MS, counts a call
 *   that has not settled by then as `overdue` and lets the soak go on, so a
 *   hung call shows in the report instead of as the test's kill timeout;
 * - `late` counts calls that settled more than LATE_TOLERANCE_MS after
 *   `timeout.total` (the event-loop lag of 200 calls in flight on two cores).
 */
const LATE_TOLERANCE_MS = 500;
const WATCHDOG_GRACE_MS = 5_000;
// 200 connections opened at once can take longer than the attempt timeout on
// a busy two-core machine: open them before the clock starts, so the soak
// measures the layer under chaos, not the machine's connection setup.
await Promise.all(
  [primary, alternate].flatMap(({ url }) =>
    Array.from({ length: inFlight }, () => fetch(`${url}/warm`).then((r) => r.arrayBuffer())),
  ),
);
const heapStart = heap();
const started = Date.now();
const promiseSettled = new Uint8Array(calls);
const layerSettled = new Uint8Array(calls);
resilience.on("request", (e) => {
  const id = /\/v1\/jobs\/(\d+)$/.exec(e.url)?.[1];
  if (id !== undefined) layerSettled[Number(id)] = (layerSettled[Number(id)] ?? 0) + 1;
});
let late = 0;
let overdue = 0;
let maxOvershoot = Number.NEGATIVE_INFINITY;
let served = 0;
let bodyErrors = 0;
let next = 0;

async function one(i: number): Promise<void> {
  const t0 = Date.now();
  const settled = () => {
    promiseSettled[i] = (promiseSettled[i] ?? 0) + 1;
    const overshoot = Date.now() - t0 - totalTimeout;
    maxOvershoot = Math.max(maxOvershoot, overshoot);
    if (overshoot > LATE_TOLERANCE_MS) late++;
  };
  const call = resilience.fetch(`${primary.url}/v1/jobs/${i}`, { method: "POST", body: '{"prompt":"soak"}' }).then(
    async (res) => {
      settled();
      if (res.ok) served++;
      await res.text().catch(() => {
        bodyErrors++; // a truncated stream breaks mid-body: after the call settled, as it should
      });
    },
    () => settled(),
  );
  let stop: () => void = () => {};
  const watchdog = new Promise<"overdue">((resolve) => {
    const timer = setTimeout(() => resolve("overdue"), totalTimeout + WATCHDOG_GRACE_MS);
    stop = () => clearTimeout(timer);
  });
  if ((await Promise.race([call, watchdog])) === "overdue") overdue++;
  stop();
}

async function worker(): Promise<void> {
  while (next < calls) await one(next++);
}
await Promise.all(Array.from({ length: inFlight }, worker));
const seconds = (Date.now() - started) / 1000;
await Promise.all([primary.close(), alternate.close()]);
const heapEnd = heap();
let once = 0;
let never = 0;
let twice = 0;
let layerMissing = 0;
for (let i = 0; i < calls; i++) {
  const p = promiseSettled[i] ?? 0;
  const l = layerSettled[i] ?? 0;
  if (p === 1 && l === 1) once++;
  if (p === 0) never++;
  if (p > 1 || l > 1) twice++;
  if (p === 1 && l === 0) layerMissing++;
}
console.log(
  JSON.stringify({
    calls,
    settledOnce: once,
    neverSettled: never,
    settledTwice: twice,
    layerMissing,
    overdue,
    late,
    lateToleranceMs: LATE_TOLERANCE_MS,
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
