/**
 * `npm run demo`: a scripted day of a flaky image-generation API on
 * 127.0.0.1, called with bare `fetch` and through `resilience.fetch`, side
 * by side. No account, no network. Options: --seed N, --json.
 */
import { parseArgs } from "node:util";
import { createResilience, getResilienceInfo } from "../src/index.ts";
import { seededRandom } from "../src/testing/index.ts";
import { type Behaviour, startFakeApi } from "./fake-api.ts";

const { values } = parseArgs({
  options: { seed: { type: "string", default: "42" }, json: { type: "boolean", default: false } },
});
const seed = Number(values.seed);
if (!Number.isInteger(seed)) throw new TypeError(`--seed: expected an integer, got ${JSON.stringify(values.seed)}`);

interface Phase {
  name: string;
  behaviour: Behaviour;
  calls: number;
}

const phases: Phase[] = [
  { name: "healthy", behaviour: { failRate: 0, latencyMs: 5, down: false }, calls: 30 },
  { name: "flaky: 40% 503", behaviour: { failRate: 0.4, latencyMs: 10, down: false }, calls: 60 },
  {
    name: "rate limited: 503 + Retry-After",
    behaviour: { failRate: 0.5, retryAfter: 0, latencyMs: 5, down: false },
    calls: 40,
  },
  { name: "recovered", behaviour: { failRate: 0, latencyMs: 5, down: false }, calls: 30 },
];

const api = await startFakeApi("premium", seededRandom(seed));
const resilience = createResilience({
  retry: { maxAttempts: 4, initialDelay: 20, maxDelay: 200 },
  timeout: { attempt: 2_000, total: 5_000 },
  random: seededRandom(seed + 1),
});
let retries = 0;
resilience.on("retry", () => retries++);

const body = JSON.stringify({ prompt: "a lighthouse at dusk", quality: 1, resolution: "1080p", steps: 50 });
const post = (f: typeof fetch) =>
  f(`${api.url}/v1/images`, { method: "PUT", body, headers: { "content-type": "application/json" } });

interface Row {
  phase: string;
  calls: number;
  bareServed: number;
  resilientServed: number;
  attemptsPerCall: number;
  retries: number;
}
const rows: Row[] = [];
const log = (line: string) => {
  if (!values.json) console.log(line);
};

log(`fake generation API on ${api.url} (seed ${seed})\n`);
for (const phase of phases) {
  api.behaviour = phase.behaviour;
  let bareServed = 0;
  for (let i = 0; i < phase.calls; i++) {
    const res = await post(fetch).catch(() => undefined);
    if (res?.ok) bareServed++;
    await res?.body?.cancel();
  }
  const before = { requests: api.stats.requests, retries };
  let resilientServed = 0;
  for (let i = 0; i < phase.calls; i++) {
    const res = await post(resilience.fetch).catch(() => undefined);
    if (res?.ok) resilientServed++;
    if (res && !values.json && i === 0) log(`  first call: ${JSON.stringify(getResilienceInfo(res))}`);
    await res?.body?.cancel();
  }
  const row: Row = {
    phase: phase.name,
    calls: phase.calls,
    bareServed,
    resilientServed,
    attemptsPerCall: (api.stats.requests - before.requests) / phase.calls,
    retries: retries - before.retries,
  };
  rows.push(row);
  log(
    `${phase.name.padEnd(34)} bare fetch ${pct(bareServed, phase.calls)} served · resilient ${pct(resilientServed, phase.calls)} served · ${row.attemptsPerCall.toFixed(2)} attempts/call`,
  );
}
await api.close();

if (values.json) {
  console.log(JSON.stringify({ seed, rows, budget: resilience.health().budget }, null, 2));
} else {
  const budget = resilience.health().budget;
  log(`\nretry budget: ${budget?.retriesAllowed} retries allowed, ${budget?.retriesDenied} denied`);
  log("Retries used PUT (idempotent), full jitter, honoured Retry-After, and stayed inside the retry budget.");
}

function pct(n: number, of: number): string {
  return `${((100 * n) / of).toFixed(0).padStart(3)}%`;
}
