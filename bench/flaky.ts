/**
 * Flaky and dead APIs as a user meets them: calls one after another (a few
 * independent clients), each library with its defaults or with the policy its
 * README shows, against a local upstream that fails a share of requests at
 * random (seeded) or every request.
 */
import { ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleAll, retry, wrap } from "cockatiel";
import ky from "ky";
import CircuitBreaker from "opossum";
import pRetry from "p-retry";
import { createResilience } from "../src/index.ts";
import { startUpstream } from "./child.ts";
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
    "cockatiel has no default breaker; its README's: retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }) (3 attempts, 128 ms decorrelated jitter) around circuitBreaker(handleAll, { halfOpenAfter: 10 s, breaker: new ConsecutiveBreaker(5) }); a 5xx is made to throw",
  "p-retry (retries: 2)":
    "p-retry with retries: 2 (its default is 10) and its default delays (1 s × 2^(n−1), no randomisation), no breaker; a 5xx is made to throw",
  "p-retry + opossum (defaults, timeout off)":
    "opossum defaults (errorThresholdPercentage 50 over a 10 s rolling window, volumeThreshold 0, resetTimeout 30 s) with its 10 s timeout switched off, inside p-retry (retries: 2)",
};

type Make = (t: Transport) => Call;

const flakyVariants: Record<string, Make> = {
  "resilient-fetch (defaults)": (t) => {
    const r = createResilience({ fetch: t });
    return (url) => r.fetch(url);
  },
  "resilient-fetch (breaker: false)": (t) => {
    const r = createResilience({ fetch: t, breaker: false });
    return (url) => r.fetch(url);
  },
  ky: (t) => {
    const api = ky.create({ fetch: t });
    return (url) => api.get(url);
  },
  "cockatiel retry + ConsecutiveBreaker(5)": (t) => {
    const policy = wrap(
      retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
      circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    );
    return (url) => policy.execute(() => t(url).then(failed));
  },
  "p-retry (retries: 2)": (t) => (url) => pRetry(() => t(url).then(failed), { retries: 2 }),
  "p-retry + opossum (defaults, timeout off)": (t) => {
    const breaker = new CircuitBreaker((url: string) => t(url).then(failed), { timeout: false });
    return (url) => pRetry(() => breaker.fire(url), { retries: 2 });
  },
};

/** True when an error is a breaker refusing the call (this library, cockatiel, opossum). */
function isRefusal(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown } | null;
  return (
    e?.name === "CircuitOpenError" ||
    e?.name === "BrokenCircuitError" ||
    e?.name === "IsolatedCircuitError" ||
    e?.code === "EOPENBREAKER"
  );
}

export interface FlakyRow {
  variant: string;
  /** Share of upstream requests answered 503. */
  failRate: number;
  calls: number;
  servedPct: number;
  attemptsPerCall: number;
  /** Calls that ended with the breaker refusing them. */
  refusedByBreaker: number;
  seconds: number;
}

/**
 * `calls` GETs from `clients` independent sequential clients sharing one
 * instance, against an upstream answering 503 to `failRate` of requests.
 */
export async function measureFlaky(
  failRate: number,
  calls: number,
  clients: number,
  only?: readonly string[],
): Promise<FlakyRow[]> {
  const rows: FlakyRow[] = [];
  const names = only ?? Object.keys(flakyVariants).filter((n) => !n.includes("opossum"));
  for (const variant of names) {
    const make = flakyVariants[variant] as Make;
    const primary = await startUpstream("flaky", String(failRate));
    const call = make((input, init) => fetch(input, init));
    const started = Date.now();
    let issued = 0;
    let served = 0;
    let refused = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (issued < calls) {
          issued++;
          const r = await call(`${primary.url}/gen/x`).catch((e: unknown) => e);
          if (succeeded(r)) served++;
          else if (isRefusal(r)) refused++;
          if (r instanceof Response) await r.body?.cancel();
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const { total } = await primary.stats();
    await primary.stop();
    rows.push({
      variant,
      failRate,
      calls,
      servedPct: (100 * served) / calls,
      attemptsPerCall: total / calls,
      refusedByBreaker: refused,
      seconds,
    });
    process.stderr.write(`  ${Math.round(failRate * 100)}% 503s: ${variant} done in ${seconds.toFixed(1)} s\n`);
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
 * each library's breaker at its defaults (cockatiel: its README's policy).
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
    const call = make((input, init) => fetch(input, init));
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
