/**
 * The README's quick start, runnable: the same layer (retry, timeouts, a
 * chain from a primary provider to a backup) and the same `generateImage`,
 * plus a `retry` listener so the retry shows. Run: `npm run
 * example:quick-start` (it builds first). Without GEN_API_URL it starts two
 * local fake image APIs (the browser example's) on 127.0.0.1: the primary
 * flaky (every other request answered 503 with `Retry-After: 1`) and the
 * backup; with GEN_API_URL (and GEN_BACKUP_URL, else no backup) it calls
 * those instead.
 */
import { createResilience, getResilienceInfo, isResilienceError } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback"; // opt-in: chains across providers
import { startFakeImageApi } from "../browser/fake-image-api.ts";

const local = process.env.GEN_API_URL
  ? undefined
  : await Promise.all([startFakeImageApi("primary"), startFakeImageApi("backup")]);
if (local) local[0].mode = "flaky";
const primary = process.env.GEN_API_URL || `${local?.[0].url}/v1/images`;
const backup = local ? `${local[1].url}/v1/images` : process.env.GEN_BACKUP_URL;

const resilience = createResilience({
  retry: { maxAttempts: 4, initialDelay: 500 },
  // A primary that hangs uses 4 attempts of 20 s, leaving the backup time within the total; the waits a
  // `Retry-After` asks for count against the total too, so a slow primary that asks for them can use it all.
  timeout: { attempt: 20_000, total: 120_000 },
  fallback: fallback([
    {
      name: "images",
      endpoints: [
        { name: "primary", url: primary },
        ...(backup ? [{ name: "backup", url: backup, expectedQuality: 0.8 }] : []),
      ],
    },
  ]),
});
resilience.on("retry", (e) => console.log(`retry #${e.attempt} in ${Math.round(e.delay)} ms (${e.reason})`));

export async function generateImage(prompt: string): Promise<unknown> {
  try {
    const res = await resilience.fetch(primary, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, steps: 50, resolution: "1080p" }),
    });
    console.log(getResilienceInfo(res)); // { attempts, endpoint, fromFallback, degradationLevel, … }
    // Every endpoint answered and none well: the last answer (a 503, say) comes back, as fetch gives it.
    if (!res.ok) throw new Error(`generation failed: status ${res.status}`);
    return await res.json(); // a 200 whose body is no JSON (an HTML error page) rejects with a SyntaxError
  } catch (error) {
    // No response at all: every endpoint failed, was skipped by its open breaker, or timed out, or the chain
    // stopped where this POST may have been processed (with no Idempotency-Key, a dropped connection does not
    // move on to the backup: set `retry: { idempotencyKey: true }` if your API honours the header, and
    // a job that moved on may then run at both providers).
    if (isResilienceError(error)) throw new Error(`generation unavailable: ${error.message}`, { cause: error });
    throw error;
  }
}

try {
  console.log(await generateImage("a lighthouse at dusk"));
} catch (error) {
  console.error(String(error)); // "Error: generation unavailable: …", without a stack
  process.exitCode = 1;
} finally {
  await Promise.all(local?.map((api) => api.close()) ?? []);
}
