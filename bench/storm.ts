import { median, startUpstream } from "./child.ts";
import { partialVariants, stormVariants, succeeded } from "./variants.ts";

export interface StormRow {
  variant: string;
  /** Attempts reaching the primary per call issued during the outage. */
  amplification: number;
  /**
   * Peak attempts per second at the primary over any 1 s window of the
   * recovery (from the upstream's recovery to three breaker timeouts after),
   * over the offered rate.
   */
  recoveryBurst: number;
  /** The same peak over 100 ms buckets (×10 ÷ offered): short spikes a 1 s window smooths. */
  recoveryBurst100ms: number;
  successPct: number;
  /** Calls issued during the outage that still succeeded. */
  outageSuccessPct: number;
  /** Time from recovery to the first successful call issued after it. */
  firstSuccessMs: number | null;
  p99Ms: number;
}

const RATE = 200; // calls per second, open loop
/** Every breaker in the storm opens for this long, so recoveries compare. */
export const STORM_BREAKER_TIMEOUT = 2_000;

/** Open-loop traffic against an upstream that is healthy, then 503s, then healthy again. */
export async function measureStorm(phases: { healthy: number; outage: number; after: number }): Promise<StormRow[]> {
  const rows: StormRow[] = [];
  const recovery = phases.healthy + phases.outage;
  const total = recovery + phases.after;
  // The recovery is judged over three breaker timeouts: a breaker still open
  // in the first second after recovery hides any burst that follows it.
  const recoveryBuckets = (3 * STORM_BREAKER_TIMEOUT) / 100;
  if (phases.after < 3 * STORM_BREAKER_TIMEOUT) throw new Error("the after phase must cover three breaker timeouts");
  for (const [variant, make] of Object.entries(stormVariants)) {
    const primary = await startUpstream("storm", String(phases.healthy), String(recovery));
    const alternate = await startUpstream("ok");
    const call = make((input, init) => fetch(input, init), {
      breakerTimeout: STORM_BREAKER_TIMEOUT,
      primary: `${primary.url}/gen`,
      alternate: `${alternate.url}/gen`,
    });
    await fetch(`${primary.url}/__start`);
    const started = Date.now();
    const results: Array<{ issued: number; settled: number; ok: boolean }> = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; (i * 1000) / RATE < total; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const issued = Date.now() - started;
      pending.push(
        call(`${primary.url}/gen/x`).then(
          async (r) => {
            results.push({ issued, settled: Date.now() - started, ok: succeeded(r) });
            if (r instanceof Response) await r.body?.cancel();
          },
          () => void results.push({ issued, settled: Date.now() - started, ok: false }),
        ),
      );
    }
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 30_000))]);
    const stats = await primary.stats();
    await Promise.all([primary.stop(), alternate.stop()]);
    const inOutage = results.filter((r) => r.issued >= phases.healthy && r.issued < recovery);
    const attemptsInOutage = stats.buckets
      .slice(phases.healthy / 100, recovery / 100)
      .reduce((a, b) => a + (b ?? 0), 0);
    const afterBuckets = Array.from({ length: recoveryBuckets }, (_, i) => stats.buckets[recovery / 100 + i] ?? 0);
    let peakSecond = 0;
    for (let i = 0; i + 10 <= afterBuckets.length; i++) {
      peakSecond = Math.max(
        peakSecond,
        afterBuckets.slice(i, i + 10).reduce((a, b) => a + b, 0),
      );
    }
    const firstOk = results.filter((r) => r.issued >= recovery && r.ok).sort((a, b) => a.settled - b.settled)[0];
    const latencies = results.map((r) => r.settled - r.issued).sort((a, b) => a - b);
    rows.push({
      variant,
      amplification: attemptsInOutage / Math.max(1, inOutage.length),
      recoveryBurst: peakSecond / RATE,
      recoveryBurst100ms: (Math.max(0, ...afterBuckets) * 10) / RATE,
      successPct: (100 * results.filter((r) => r.ok).length) / results.length,
      outageSuccessPct: (100 * inOutage.filter((r) => r.ok).length) / Math.max(1, inOutage.length),
      firstSuccessMs: firstOk ? firstOk.settled - recovery : null,
      p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    });
    process.stderr.write(`  storm: ${variant} done\n`);
  }
  return rows;
}

export interface PartialRow {
  variant: string;
  successPct: number;
  /** Requests to both upstreams per call. */
  attemptsPerCall: number;
  /** Requests to the flaky primary per call. */
  primaryPerCall: number;
}

/**
 * The primary fails 30% of calls at random; a healthy alternate exists for
 * the variants that can use one. Breakers are compared like for like: the
 * failover rows first without any breaker, then each with its breaker.
 */
export async function measurePartial(calls: number): Promise<PartialRow[]> {
  const rows: PartialRow[] = [];
  for (const variant of Object.keys(partialVariants)) {
    const primary = await startUpstream("flaky", "0.3");
    const alternate = await startUpstream("ok");
    const make = partialVariants[variant];
    if (!make) throw new Error(variant);
    const call = make((input, init) => fetch(input, init), {
      breakerTimeout: STORM_BREAKER_TIMEOUT,
      primary: `${primary.url}/gen`,
      alternate: `${alternate.url}/gen`,
    });
    // 20 workers, each calling in turn: a slow call holds one worker, not a whole batch.
    let ok = 0;
    let issued = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (issued < calls) {
          issued++;
          const r = await call(`${primary.url}/gen/x`).catch((e: unknown) => e);
          if (succeeded(r)) ok++;
          if (r instanceof Response) await r.body?.cancel();
        }
      }),
    );
    const primaryAttempts = (await primary.stats()).total;
    const attempts = primaryAttempts + (await alternate.stats()).total;
    await Promise.all([primary.stop(), alternate.stop()]);
    rows.push({
      variant,
      successPct: (100 * ok) / calls,
      attemptsPerCall: attempts / calls,
      primaryPerCall: primaryAttempts / calls,
    });
  }
  return rows;
}

export interface ThroughputRow {
  variant: string;
  reqPerSec: number;
  /** Median over rounds of this variant's rate over bare fetch's rate in the same round. */
  ratioToBare: number;
  /** The lowest and highest of those per-round ratios. */
  ratioRange: [number, number];
}

/**
 * Loopback throughput at concurrency 50, bare fetch and the library in the
 * same round, in turns: the order flips every round (what runs second meets
 * warmer connections and a different GC phase), and each round gives one
 * ratio, so a slow spell of the shared machine moves a round, not the median.
 */
export async function measureThroughput(seconds: number, rounds: number): Promise<ThroughputRow[]> {
  const upstream = await startUpstream("ok");
  const { createResilience } = await import("../src/index.ts");
  const resilient = createResilience();
  const runners: Array<[string, (url: string) => Promise<Response>]> = [
    ["bare fetch", (url) => fetch(url)],
    ["resilient-fetch (defaults)", (url) => resilient.fetch(url)],
  ];
  const rates: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of r % 2 === 0 ? runners : [...runners].reverse()) {
      let done = 0;
      const until = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (Date.now() < until) {
            const res = await run(`${upstream.url}/gen/x`);
            await res.arrayBuffer();
            done++;
          }
        }),
      );
      rates[name] ??= [];
      rates[name].push(done / seconds);
    }
  }
  await upstream.stop();
  const bare = rates["bare fetch"] as number[];
  return Object.entries(rates).map(([variant, v]) => {
    const ratios = v.map((rate, round) => rate / (bare[round] as number));
    return {
      variant,
      reqPerSec: median(v),
      ratioToBare: median(ratios),
      ratioRange: [Math.min(...ratios), Math.max(...ratios)],
    };
  });
}
