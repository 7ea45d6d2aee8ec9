import { degradation } from "../src/degradation/index.ts";
import { fallback } from "../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../src/index.ts";
import { seededRandom } from "../src/testing/index.ts";
import type { FakeApi } from "./fake-api.ts";
import type { CallRecord } from "./run-log.ts";

/** What every call of the day asks for, in the premium provider's shape. */
export const REQUEST_BODY = {
  prompt: "a lighthouse at dusk, waves",
  quality: 1.0,
  resolution: "1080p",
  steps: 50,
  model: "premium",
} as const;

/** How long either lane lets one call take, so that neither waits forever on a hung provider. */
export const CALL_BUDGET_MS = 6_000;

/**
 * The plain-`fetch` lane: what most code does, one request to the provider
 * it knows, with a timeout so a hang cannot last all day. No retry, no
 * breaker, no fallback, no degradation.
 */
export async function plainCall(premiumUrl: string): Promise<CallRecord> {
  const start = Date.now();
  try {
    const res = await fetch(`${premiumUrl}/v1/video/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(REQUEST_BODY),
      signal: AbortSignal.timeout(CALL_BUDGET_MS),
    });
    await res.body?.cancel();
    return { start, end: Date.now(), ok: res.ok, endpoint: res.ok ? "premium" : "none", attempts: 1, level: "full" };
  } catch {
    return { start, end: Date.now(), ok: false, endpoint: "none", attempts: 1, level: "full" };
  }
}

/** The standard provider's API shape: `{ input: { prompt }, parameters: { size, steps, model } }`. */
export function toStandard(body: unknown): unknown {
  const b = (body ?? {}) as { prompt?: string; resolution?: string; steps?: number; model?: string };
  return { input: { prompt: b.prompt }, parameters: { size: b.resolution, steps: b.steps, model: b.model } };
}

/**
 * The library's lane: retries under a budget, a breaker per provider, a
 * fallback chain to the standard provider (through a `transform`, since its
 * body has another shape) and degradation driven by latency. Timings are
 * those of a 30 s day, multiplied by `scale`.
 */
export function demoResilience(premium: FakeApi, standard: FakeApi, seed: number, scale: number): Resilience {
  return createResilience({
    random: seededRandom(seed + 3),
    retry: { maxAttempts: 3, initialDelay: 100 * scale, maxDelay: 400 * scale, idempotencyKey: true },
    timeout: { attempt: 1_500, total: CALL_BUDGET_MS },
    breaker: {
      failureThreshold: 5,
      timeWindow: 10_000 * scale,
      timeout: 3_000 * scale,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
    },
    degradation: degradation({
      window: 3_000 * scale,
      minSamples: 10,
      stepInterval: 3_000 * scale,
      restoreAfter: 4_000 * scale,
      triggers: { responseTime: 800, errorRate: 0.2 },
      browserSignals: false,
    }),
    fallback: fallback([
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
    ]),
  });
}

/** One call through the library: the same request as the plain lane's. */
export async function resilientCall(resilience: Resilience, premiumUrl: string): Promise<CallRecord> {
  const start = Date.now();
  try {
    const res = await resilience.fetch(`${premiumUrl}/v1/video/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(REQUEST_BODY),
    });
    const info = getResilienceInfo(res);
    await res.body?.cancel();
    return {
      start,
      end: Date.now(),
      ok: res.ok,
      endpoint: info?.endpoint ?? "?",
      attempts: info?.attempts ?? 1,
      level: info?.degradationLevel ?? "full",
    };
  } catch (error) {
    const attempts = (error as { attempts?: number }).attempts ?? 1;
    return { start, end: Date.now(), ok: false, endpoint: "none", attempts, level: "?" };
  }
}
