/**
 * `npm run demo`: the same scripted day of two video-generation APIs, played
 * twice at once on 127.0.0.1 in about 30 seconds: once through plain `fetch`,
 * once through the library. The premium provider turns flaky, goes down and
 * recovers. Plain fetch fails with it; the library retries under its budget,
 * opens the breaker, fails over (through a `transform`) to a standard
 * provider with another body shape, and degrades the request when latency
 * climbs. Both lanes are shown side by side, live and in the summary.
 * Options: --seconds N, --seed N, --json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { seededRandom } from "../src/testing/index.ts";
import { compareRows, formatRows, type Lane, summaryJson } from "./compare.ts";
import { type ProviderStats, startFakeApi } from "./fake-api.ts";
import { demoResilience, plainCall, resilientCall } from "./lanes.ts";
import { LiveView } from "./live-view.ts";
import { type CallRecord, type Sample, summarise } from "./run-log.ts";
import { apply, phaseAt } from "./scenario.ts";
import { timelineSvg } from "./timeline-svg.ts";

/** A bad command line: said in one line, with no stack, before anything starts. */
function refuse(message: string): never {
  process.stderr.write(`demo: ${message}\n(usage: npm run demo -- [--seconds 5..600] [--seed N] [--json])\n`);
  process.exit(2);
}

let parsed: { values: { seconds: string; seed: string; json: boolean } };
try {
  parsed = parseArgs({
    options: {
      seconds: { type: "string", default: "30" },
      seed: { type: "string", default: "42" },
      json: { type: "boolean", default: false },
    },
  });
} catch (error) {
  // Node's messages may run to three lines (`--seed -1`: "ambiguous", then how to write it).
  refuse((error as Error).message.replace(/\s*\n\s*/g, " "));
}
const { values } = parsed;
// Decimal numbers as written: `Number` would also take `0x10`, `1e1` or an empty string.
const seconds = /^\d+(\.\d+)?$/.test(values.seconds) ? Number(values.seconds) : Number.NaN;
const seed = /^-?\d+$/.test(values.seed) ? Number(values.seed) : Number.NaN;
if (!(seconds >= 5 && seconds <= 600)) refuse(`--seconds: expected 5..600, got ${JSON.stringify(values.seconds)}`);
if (!Number.isSafeInteger(seed)) refuse(`--seed: expected an integer, got ${JSON.stringify(values.seed)}`);

const total = seconds * 1000;
const scale = total / 30_000; // timings are those of a 30 s day
const random = seededRandom(seed);
// Each lane has its own providers, scripted alike, so what each received can be told apart.
const plainPremium = await startFakeApi("premium", seededRandom(seed + 1), 0, "premium");
const premium = await startFakeApi("premium", seededRandom(seed + 1), 0, "premium");
const standard = await startFakeApi("standard", seededRandom(seed + 2), 0, "standard");
/** Plain fetch knows one provider: the standard one never hears from it. */
const plainStandard: ProviderStats = {
  requests: 0,
  ok: 0,
  failed: 0,
  reset: 0,
  lastSteps: undefined,
  lastResolution: undefined,
};
const resilience = demoResilience(premium, standard, seed, scale);

const premiumKey = new URL(premium.url).host;
const standardKey = new URL(standard.url).host;
const plainCalls: CallRecord[] = [];
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

const lanes = (s: Sample): { plain: Lane; library: Lane } => ({
  plain: {
    summary: summarise(seed, seconds, plainCalls, [], { premium: plainPremium.stats, standard: plainStandard }),
  },
  library: {
    summary: summarise(seed, seconds, calls, samples, { premium: premium.stats, standard: standard.stats }),
    breakers: { premium: s.premium, standard: s.standard },
    level: s.level,
  },
});

const render = (): void => {
  const s = sample();
  view?.render({ elapsed: s.t, total, phase: s.phase, ...lanes(s) });
};

const track = async <T>(call: Promise<T>, into: T[]): Promise<void> => {
  inFlight++;
  try {
    into.push(await call);
  } finally {
    inFlight--;
  }
};

if (!values.json) {
  console.log(
    `The same scripted day of two video APIs on 127.0.0.1 (seed ${seed}, ${seconds} s), played twice at once:`,
  );
  console.log("plain fetch (one request, 6 s timeout) and resilient-fetch (retry, breaker, fallback, degradation).\n");
}

// Open loop: about 15 calls a second in each lane, whatever happens to earlier ones.
let phase = "";
let ticks = 0;
while (Date.now() - started < total) {
  const current = phaseAt((Date.now() - started) / total);
  if (current.name !== phase) {
    phase = current.name;
    apply(current, premium, standard);
    plainPremium.behaviour = { ...premium.behaviour };
  }
  void track(plainCall(plainPremium.url), plainCalls);
  void track(resilientCall(resilience, premium.url), calls);
  if (ticks++ % 4 === 0) render();
  await new Promise((r) => setTimeout(r, 45 + random() * 40));
}
while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
const last = sample();
view?.render({ elapsed: last.t, total, phase: last.phase, ...lanes(last) });
await Promise.all([plainPremium.close(), premium.close(), standard.close()]);

const final = lanes(last);
const outDir = resolve(import.meta.dirname, "out");
mkdirSync(outDir, { recursive: true });
const svgPath = resolve(outDir, `timeline-seed-${seed}.svg`);
writeFileSync(svgPath, timelineSvg(samples, calls, plainCalls, started, total));

if (values.json) {
  console.log(JSON.stringify(summaryJson(final.plain, final.library, svgPath), null, 2));
} else {
  console.log("\nSummary");
  for (const line of formatRows(compareRows(final.plain, final.library, { final: true, color: false }))) {
    console.log(line);
  }
  console.log(`\nTimeline (breaker states, level and calls served over time): ${svgPath}`);
}
