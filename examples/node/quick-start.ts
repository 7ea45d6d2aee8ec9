/**
 * Quick start: call a generation API through the resilience layer.
 * Run: node examples/node/quick-start.ts (needs an API at GEN_API_URL).
 */
import { createResilience, getResilienceInfo, isRetryExhaustedError } from "@storycore/resilient-fetch";

const resilience = createResilience({
  retry: { maxAttempts: 4, initialDelay: 500, idempotencyKey: true },
  timeout: { attempt: 30_000, total: 120_000 },
});
resilience.on("retry", (e) => console.log(`retry #${e.attempt} in ${Math.round(e.delay)} ms (${e.reason})`));

const url = process.env.GEN_API_URL ?? "http://127.0.0.1:8787/v1/images";
try {
  const res = await resilience.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "a lighthouse at dusk", steps: 30 }),
  });
  console.log(res.status, getResilienceInfo(res));
} catch (error) {
  if (isRetryExhaustedError(error)) console.error(`no response after ${error.attempts} attempts:`, error.cause);
  else throw error;
}
