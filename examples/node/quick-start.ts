/**
 * Quick start: call a generation API through the resilience layer.
 * Run: node examples/node/quick-start.ts (after `npm run build`). Without
 * GEN_API_URL it starts the browser example's fake image API on 127.0.0.1,
 * flaky (every other request answered 503 with `Retry-After: 1`), so the
 * retry shows; with GEN_API_URL it calls that API instead.
 */
import { createResilience, getResilienceInfo, isRetryExhaustedError } from "@storycore/resilient-fetch";
import { startFakeImageApi } from "../browser/fake-image-api.ts";

const resilience = createResilience({
  retry: { maxAttempts: 4, initialDelay: 500, idempotencyKey: true },
  timeout: { attempt: 30_000, total: 120_000 },
});
resilience.on("retry", (e) => console.log(`retry #${e.attempt} in ${Math.round(e.delay)} ms (${e.reason})`));

const local = process.env.GEN_API_URL ? undefined : await startFakeImageApi("local");
if (local) local.mode = "flaky";
const url = process.env.GEN_API_URL || `${local?.url}/v1/images`;
try {
  const res = await resilience.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "a lighthouse at dusk", steps: 30 }),
  });
  console.log(res.status, getResilienceInfo(res));
  console.log(await res.json());
} catch (error) {
  if (isRetryExhaustedError(error)) console.error(`no response after ${error.attempts} attempts:`, error.cause);
  else throw error;
} finally {
  await local?.close();
}
