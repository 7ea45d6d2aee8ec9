import type { ProviderStats } from "./fake-api.ts";

/** One settled call of the demo. */
export interface CallRecord {
  start: number;
  end: number;
  ok: boolean;
  endpoint: string;
  attempts: number;
  level: string;
}

/** The state of things at one moment, sampled for the view and the timeline. */
export interface Sample {
  t: number;
  phase: string;
  premium: string;
  standard: string;
  level: string;
}

export interface Summary {
  seed: number;
  seconds: number;
  calls: number;
  served: number;
  servedPct: number;
  byEndpoint: Record<string, number>;
  attemptsPerCall: number;
  p50Ms: number;
  p95Ms: number;
  secondsInLevel: Record<string, number>;
  /** What each provider received. */
  upstream: Record<string, ProviderStats>;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)] as number;
}

export function summarise(
  seed: number,
  seconds: number,
  calls: CallRecord[],
  samples: Sample[],
  upstream: Summary["upstream"],
): Summary {
  const served = calls.filter((c) => c.ok).length;
  const byEndpoint: Record<string, number> = {};
  for (const c of calls) if (c.ok) byEndpoint[c.endpoint] = (byEndpoint[c.endpoint] ?? 0) + 1;
  const secondsInLevel: Record<string, number> = {};
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1] as Sample;
    const dt = ((samples[i] as Sample).t - prev.t) / 1000;
    secondsInLevel[prev.level] = Math.round(((secondsInLevel[prev.level] ?? 0) + dt) * 10) / 10;
  }
  const latencies = calls.map((c) => c.end - c.start);
  return {
    seed,
    seconds,
    calls: calls.length,
    served,
    servedPct: calls.length === 0 ? 0 : Math.round((1000 * served) / calls.length) / 10,
    byEndpoint,
    attemptsPerCall:
      calls.length === 0 ? 0 : Math.round((100 * calls.reduce((n, c) => n + c.attempts, 0)) / calls.length) / 100,
    p50Ms: Math.round(percentile(latencies, 0.5)),
    p95Ms: Math.round(percentile(latencies, 0.95)),
    secondsInLevel,
    upstream,
  };
}
