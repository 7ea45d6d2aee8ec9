/**
 * `npm run demo`: a scripted day of two fake video-generation APIs on
 * 127.0.0.1, called through the library, in about 30 seconds. The premium
 * provider turns flaky, goes down and recovers; the breaker opens, traffic
 * fails over (through a `transform`) to a standard provider with another body
 * shape; latency pushes degradation down and health brings it back.
 * Options: --seconds N, --seed N, --json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createResilience, getResilienceInfo } from "../src/index.ts";
import { seededRandom } from "../src/testing/index.ts";
import { startFakeApi } from "./fake-api.ts";
import { LiveView } from "./live-view.ts";
import { type CallRecord, percentile, type Sample, summarise } from "./run-log.ts";
import { apply, phaseAt } from "./scenario.ts";
import { timelineSvg } from "./timeline-svg.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "30" },
    seed: { type: "string", default: "42" },
    json: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!(seconds >= 5 && seconds <= 600))
  throw new RangeError(`--seconds: expected 5..600, got ${JSON.stringify(values.seconds)}`);
if (!Number.isInteger(seed)) throw new TypeError(`--seed: expected an integer, got ${JSON.stringify(values.seed)}`);

const total = seconds * 1000;
const scale = total / 30_000; // timings below are for a 30 s day
const random = seededRandom(seed);
const premium = await startFakeApi("premium", seededRandom(seed + 1), 0, "premium");
const standard = await startFakeApi("standard", seededRandom(seed + 2), 0, "standard");

/** The standard provider's API shape: `{ input: { prompt }, parameters: { size, steps, model } }`. */
function toStandard(body: unknown): unknown {
  const b = (body ?? {}) as { prompt?: string; resolution?: string; steps?: number; model?: string };
  return { input: { prompt: b.prompt }, parameters: { size: b.resolution, steps: b.steps, model: b.model } };
}

const resilience = createResilience({
  random: seededRandom(seed + 3),
  retry: { maxAttempts: 3, initialDelay: 100 * scale, maxDelay: 400 * scale, idempotencyKey: true },
  timeout: { attempt: 1_500, total: 6_000 },
  breaker: {
    failureThreshold: 5,
    timeWindow: 10_000 * scale,
    timeout: 3_000 * scale,
    successThreshold: 2,
    halfOpenMaxCalls: 1,
  },
  degradation: {
    window: 3_000 * scale,
    minSamples: 10,
    stepInterval: 3_000 * scale,
    restoreAfter: 4_000 * scale,
    triggers: { responseTime: 800, errorRate: 0.2 },
    browserSignals: false,
  },
  fallback: [
    {
      name: "video",
      endpoints: [
        { name: "premium", url: `${premium.url}/v1/video` },
        {
          name: "standard",
          url: `${standard.url}/v2/video`,
          expectedQuality: 0.8,
          transform: (req) => ({ ...req, url: req.url.replace("/jobs", "/tasks"), body: toStandard(req.body) }),
        },
      ],
    },
  ],
});

const premiumKey = new URL(premium.url).host;
const standardKey = new URL(standard.url).host;
const calls: CallRecord[] = [];
const samples: Sample[] = [];
// JSON mode prints the summary only; a terminal gets a view redrawn in place, a pipe a line now and then.
const view = values.json ? undefined : new LiveView(process.stdout.isTTY === true);
const started = Date.now();
let inFlight = 0;

const sample = (): Sample => {
  const health = resilience.health();
  const t = Date.now() - started;
  const s: Sample = {
    t,
    phase: phaseAt(t / total).name,
    premium: health.breakers[premiumKey]?.state ?? "closed",
    standard: health.breakers[standardKey]?.state ?? "closed",
    level: health.degradationLevel,
  };
  samples.push(s);
  return s;
};

const render = (): void => {
  const s = sample();
  const recent = calls.filter((c) => c.end > Date.now() - 4_000).map((c) => c.end - c.start);
  view?.render({
    sample: s,
    elapsed: s.t,
    total,
    calls: calls.length,
    served: calls.filter((c) => c.ok).length,
    p95: percentile(recent, 0.95),
    premium: { url: premium.url.replace("http://", ""), ...premium.stats },
    standard: { url: standard.url.replace("http://", ""), ...standard.stats },
  });
};

const generate = async (): Promise<void> => {
  inFlight++;
  const start = Date.now();
  const body = {
    prompt: "a lighthouse at dusk, waves",
    quality: 1.0,
    resolution: "1080p",
    steps: 50,
    model: "premium",
  };
  try {
    const res = await resilience.fetch(`${premium.url}/v1/video/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const info = getResilienceInfo(res);
    calls.push({
      start,
      end: Date.now(),
      ok: res.ok,
      endpoint: info?.endpoint ?? "?",
      attempts: info?.attempts ?? 1,
      level: info?.degradationLevel ?? "full",
    });
    await res.body?.cancel();
  } catch (error) {
    calls.push({
      start,
      end: Date.now(),
      ok: false,
      endpoint: "none",
      attempts: (error as { attempts?: number }).attempts ?? 1,
      level: "?",
    });
  } finally {
    inFlight--;
  }
};

if (!values.json) {
  console.log(`A scripted day of two fake video APIs on 127.0.0.1 (seed ${seed}, ${seconds} s). Calls go to premium;`);
  console.log("the library retries, opens its breaker, fails over to standard (another body shape) and degrades.\n");
}

// Open loop: about 15 calls a second, whatever happens to earlier ones.
let phase = "";
while (Date.now() - started < total) {
  const now = Date.now() - started;
  const current = phaseAt(now / total);
  if (current.name !== phase) {
    phase = current.name;
    apply(current, premium, standard);
  }
  void generate();
  if (calls.length % 4 === 0) render();
  await new Promise((r) => setTimeout(r, 45 + random() * 40));
}
while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
render();
await Promise.all([premium.close(), standard.close()]);

const summary = summarise(seed, seconds, calls, samples, {
  premium: {
    requests: premium.stats.requests,
    ok: premium.stats.ok,
    failed: premium.stats.failed,
    reset: premium.stats.reset,
  },
  standard: {
    requests: standard.stats.requests,
    ok: standard.stats.ok,
    failed: standard.stats.failed,
    reset: standard.stats.reset,
  },
});
const outDir = resolve(import.meta.dirname, "out");
mkdirSync(outDir, { recursive: true });
const svgPath = resolve(outDir, `timeline-seed-${seed}.svg`);
writeFileSync(svgPath, timelineSvg(samples, calls, started, total));

if (values.json) {
  console.log(JSON.stringify({ ...summary, timeline: svgPath }, null, 2));
} else {
  const rows: Array<[string, string]> = [
    ["calls", String(summary.calls)],
    ["served", `${summary.served} (${summary.servedPct}%)`],
    [
      "served by endpoint",
      Object.entries(summary.byEndpoint)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ],
    ["attempts per call", String(summary.attemptsPerCall)],
    ["latency p50 / p95", `${summary.p50Ms} ms / ${summary.p95Ms} ms`],
    [
      "time in each level",
      Object.entries(summary.secondsInLevel)
        .map(([k, v]) => `${k} ${v} s`)
        .join(", "),
    ],
    [
      "premium saw",
      `${summary.upstream.premium?.requests} requests (${summary.upstream.premium?.reset} reset, ${summary.upstream.premium?.failed} answered 503)`,
    ],
    [
      "standard saw",
      `${summary.upstream.standard?.requests} requests, last at ${standard.stats.lastSteps} steps, ${standard.stats.lastResolution}`,
    ],
  ];
  console.log("\nSummary");
  for (const [k, v] of rows) console.log(`  ${k.padEnd(20)} ${v}`);
  console.log(`\nTimeline (breaker states and level over time): ${svgPath}`);
}
