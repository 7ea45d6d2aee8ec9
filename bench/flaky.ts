/**
 * Flaky and dead APIs as a user meets them: calls one after another (a few
 * independent clients), each library held to 3 attempts per call as this
 * library's defaults are (ky at its defaults, p-retry with `retries: 2`,
 * cockatiel with its README's policy at `maxAttempts: 2`), against a local upstream that fails a share of requests at
 * random (seeded, bench/seeded.ts) or every request.
 */
import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  isBrokenCircuitError,
  isIsolatedCircuitError,
  retry,
  wrap,
} from "cockatiel";
import ky from "ky";
import CircuitBreaker from "opossum";
import pRetry from "p-retry";
import { createResilience, type Resilience } from "../src/index.ts";
import { startUpstream } from "./child.ts";
import { DEFAULT_SEED, unservable } from "./seeded.ts";
import { type Call, succeeded, type Transport } from "./variants.ts";

const failed = (r: Response): Response => {
  if (r.status >= 500 || r.status === 429) throw Object.assign(new Error(`status ${r.status}`), { response: r });
  return r;
};

/** What each variant is, in the words the results print. */
export const flakyPolicies: Record<string, string> = {
  "resilient-fetch (defaults)":
    "createResilience() as shipped: 3 attempts, full jitter from 1 s, retry budget 10% + 10/s; breaker opens on 12 failed attempts in a row or a 50% failure rate over ≥ 100 attempts in 30 s, open 30 s",
  "resilient-fetch (breaker: false)":
    "the same retries and budget with no breaker: the most a breaker that never opens wrongly can serve",
  ky: "ky 2 defaults: 2 retries (3 attempts) for GET on 408/413/429/500/502/503/504, delay 0.3 s × 2^(n−1), no jitter, no breaker",
  "cockatiel retry + ConsecutiveBreaker(5)":
    "cockatiel has no default breaker; its README's policy with maxAttempts: 2 where the README has 3: retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }) (3 attempts, 128 ms decorrelated jitter) around circuitBreaker(handleAll, { halfOpenAfter: 10 s, breaker: new ConsecutiveBreaker(5) }); a 5xx is made to throw",
  "p-retry (retries: 2)":
    "p-retry with retries: 2 (its default is 10) and its default delays (1 s × 2^(n−1), no randomisation), no breaker; a 5xx is made to throw",
  "p-retry + opossum (defaults, timeout off)":
    "opossum defaults (errorThresholdPercentage 50 over a 10 s rolling window, volumeThreshold 0, resetTimeout 30 s) with its 10 s timeout switched off, inside p-retry (retries: 2)",
};

/** Attempts per call of every variant here (first try and two retries): what `1 − p^attempts` is computed with. */
export const FLAKY_ATTEMPTS = 3;

/** What this library's own counters say about a run (null for the peers). */
export interface LibraryCounters {
  /** Retries the retry budget refused. */
  retriesDeniedByBudget: number;
  /** Times a breaker opened. */
  breakerOpens: number;
}

interface Variant {
  call: Call;
  counters?: () => LibraryCounters;
}

type Make = (t: Transport) => Variant;

/** The counters of a `Resilience`: its budget's refusals (health) and its breakers' openings (events). */
function counted(r: Resilience): Variant {
  let breakerOpens = 0;
  r.on("breaker", (e) => {
    if (e.to === "open") breakerOpens++;
  });
  return {
    call: (url) => r.fetch(url),
    counters: () => ({ retriesDeniedByBudget: r.health().budget?.retriesDenied ?? 0, breakerOpens }),
  };
}

const flakyVariants: Record<string, Make> = {
  "resilient-fetch (defaults)": (t) => counted(createResilience({ fetch: t })),
  "resilient-fetch (breaker: false)": (t) => counted(createResilience({ fetch: t, breaker: false })),
  ky: (t) => {
    const api = ky.create({ fetch: t });
    return { call: (url) => api.get(url) };
  },
  "cockatiel retry + ConsecutiveBreaker(5)": (t) => {
    const policy = wrap(
      retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
      circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    );
    return { call: (url) => policy.execute(() => t(url).then(failed)) };
  },
  "p-retry (retries: 2)": (t) => ({ call: (url) => pRetry(() => t(url).then(failed), { retries: 2 }) }),
  "p-retry + opossum (defaults, timeout off)": (t) => {
    const breaker = new CircuitBreaker((url: string) => t(url).then(failed), { timeout: false });
    return { call: (url) => pRetry(() => breaker.fire(url), { retries: 2 }) };
  },
};

/** The variants a flaky run measures unless told otherwise. */
export const flakyVariantNames: readonly string[] = Object.keys(flakyVariants).filter((n) => !n.includes("opossum"));

/**
 * True when an error is a breaker refusing the call: this library's
 * `CircuitOpenError`, cockatiel's `BrokenCircuitError` and
 * `IsolatedCircuitError` (whose `name` is plain "Error", so they are told by
 * cockatiel's own guards), opossum's `EOPENBREAKER`.
 */
function isRefusal(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown } | null;
  return (
    e?.name === "CircuitOpenError" ||
    isBrokenCircuitError(error) ||
    isIsolatedCircuitError(error) ||
    e?.code === "EOPENBREAKER"
  );
}

export interface FlakyRow {
  variant: string;
  /** Share of upstream requests answered 503. */
  failRate: number;
  /** Seed of the 503 draws (bench/seeded.ts): call i meets the same answers in every variant and run of one seed. */
  seed: number;
  calls: number;
  served: number;
  servedPct: number;
  /** `100 × (1 − failRate^attempts)`: the mean share a client making `attempts` independent attempts serves. */
  expectedPct: number;
  /** Standard error of a served share over `calls` calls around `expectedPct`, in points. */
  standardErrorPct: number;
  /** The share a client making every attempt serves on these very draws: calls whose attempts did not all draw a 503. */
  ceilingPct: number;
  /** Calls that sent all `attempts` attempts and met a 503 on each: chance, no policy could serve them. */
  lostAllAttemptsFailed: number;
  /** Calls that ended with a breaker refusing them. */
  refusedByBreaker: number;
  /** Calls that failed with fewer than `attempts` attempts sent and no refusal: a retry was withheld (budget, open breaker, policy). */
  lostRetryWithheld: number;
  attempts: number;
  attemptsPerCall: number;
  /** This library's counters; null for the peers. */
  library: LibraryCounters | null;
  seconds: number;
}

/** What `bench/flaky-run.ts` prints (and writes with `--out`). */
export interface FlakyRun {
  commit: string;
  node: string;
  cpus: string;
  /** 1-minute load average when the run started. */
  loadAverage: number;
  date: string;
  seconds: number;
  failRate: number;
  seed: number;
  calls: number;
  clients: number;
  rows: FlakyRow[];
}

/**
 * `calls` GETs from `clients` independent sequential clients sharing one
 * instance, against an upstream answering 503 to `failRate` of requests.
 * Call `i` asks for `/gen/x?call=i`, so the upstream answers its k-th attempt
 * with draw k of call i's stream under `seed`: every variant meets the same
 * 503s call by call, whatever its delays, and each unserved call can be put
 * down to chance (every attempt drew a 503), a breaker's refusal, or a retry
 * not made.
 */
export async function measureFlaky(
  failRate: number,
  calls: number,
  clients: number,
  only?: readonly string[],
  seed: number = DEFAULT_SEED,
): Promise<FlakyRow[]> {
  const rows: FlakyRow[] = [];
  const names = only ?? flakyVariantNames;
  const attempts = FLAKY_ATTEMPTS;
  const q = failRate ** attempts;
  const ceiling = calls - unservable(failRate, seed, calls, attempts);
  for (const variant of names) {
    const make = flakyVariants[variant];
    if (!make) throw new Error(`unknown flaky variant ${variant}; known: ${Object.keys(flakyVariants).join(", ")}`);
    const primary = await startUpstream("flaky", String(failRate), String(seed));
    const { call, counters } = make((input, init) => fetch(input, init));
    /** 1 served, 2 refused by a breaker, 0 otherwise. */
    const outcome = new Uint8Array(calls);
    const started = Date.now();
    let issued = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (issued < calls) {
          const i = issued++;
          const r = await call(`${primary.url}/gen/x?call=${i}`).catch((e: unknown) => e);
          outcome[i] = succeeded(r) ? 1 : isRefusal(r) ? 2 : 0;
          if (r instanceof Response) await r.body?.cancel();
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const { total, perCall } = await primary.stats();
    await primary.stop();
    let served = 0;
    let refused = 0;
    let allFailed = 0;
    let withheld = 0;
    for (let i = 0; i < calls; i++) {
      if (outcome[i] === 1) served++;
      else if (outcome[i] === 2) refused++;
      else if ((perCall[i] ?? 0) >= attempts) allFailed++;
      else withheld++;
    }
    rows.push({
      variant,
      failRate,
      seed,
      calls,
      served,
      servedPct: (100 * served) / calls,
      expectedPct: 100 * (1 - q),
      standardErrorPct: 100 * Math.sqrt((q * (1 - q)) / calls),
      ceilingPct: (100 * ceiling) / calls,
      lostAllAttemptsFailed: allFailed,
      refusedByBreaker: refused,
      lostRetryWithheld: withheld,
      attempts,
      attemptsPerCall: total / calls,
      library: counters?.() ?? null,
      seconds,
    });
    process.stderr.write(
      `  ${Math.round(failRate * 100)}% 503s: ${variant}: ${served}/${calls} served (ceiling ${ceiling}) in ${seconds.toFixed(1)} s\n`,
    );
  }
  return rows;
}

export interface OutageRow {
  variant: string;
  /** Calls that reached the upstream before the first call the breaker refused without sending anything. */
  callsToOpen: number | null;
  /** Requests the upstream received by then. */
  attemptsToOpen: number | null;
  /** Requests per call over `calls` sequential calls. */
  attemptsPerCall: number;
  calls: number;
}

/**
 * A dead API (every request answered 503), called one call at a time with
 * each library's breaker at its defaults (cockatiel: its README's policy at
 * `maxAttempts: 2`).
 */
export async function measureOutage(calls: number): Promise<OutageRow[]> {
  const rows: OutageRow[] = [];
  const names = [
    "resilient-fetch (defaults)",
    "cockatiel retry + ConsecutiveBreaker(5)",
    "p-retry + opossum (defaults, timeout off)",
  ];
  for (const variant of names) {
    const make = flakyVariants[variant] as Make;
    const primary = await startUpstream("flaky", "1");
    const { call } = make((input, init) => fetch(input, init));
    let callsToOpen: number | null = null;
    let attemptsToOpen: number | null = null;
    let before = 0;
    for (let i = 0; i < calls; i++) {
      const r = await call(`${primary.url}/gen/x`).catch((e: unknown) => e);
      if (r instanceof Response) await r.body?.cancel();
      const { total } = await primary.stats();
      if (total === before && callsToOpen === null) {
        callsToOpen = i;
        attemptsToOpen = total;
      }
      before = total;
    }
    const { total } = await primary.stats();
    await primary.stop();
    rows.push({ variant, callsToOpen, attemptsToOpen, attemptsPerCall: total / calls, calls });
    process.stderr.write(`  outage: ${variant} done\n`);
  }
  return rows;
}
