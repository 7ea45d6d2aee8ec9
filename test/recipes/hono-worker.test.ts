import { createResilience } from "@storycore/resilient-fetch";
import { recordEvents, seededRandom, TestClock } from "@storycore/resilient-fetch/testing";
import { describe, expect, it } from "vitest";
import worker, { createApp, type Env, layerOptions } from "../../examples/recipes/hono-worker.ts";
import { down, job, useFakeApis } from "./harness.ts";

const IMAGES = "POST /v1/images";

/** Calls the app the way workerd calls a Worker's fetch handler. */
function generate(app: { fetch: (request: Request, env: Env) => Response | Promise<Response> }, env: Env) {
  return app.fetch(
    new Request("https://worker.example/generate", { method: "POST", body: JSON.stringify({ prompt: "a cat" }) }),
    env,
  );
}

describe("recipe: Hono in a Worker", () => {
  const api = useFakeApis();

  const world = async (provider: (n: number) => ReturnType<typeof job>, spare = (_: number) => job("spare")) => {
    const images = await api((_, n) => provider(n));
    const backup = await api((_, n) => spare(n));
    const env: Env = { IMAGES_URL: images.url, IMAGES_KEY: "k-images", SPARE_URL: backup.url, SPARE_KEY: "k-spare" };
    const clock = new TestClock();
    let made = 0;
    const app = createApp((e) => {
      made++;
      // The recipe's layer without its timeouts: on a TestClock they would
      // fire while the fake APIs (real I/O) are still answering.
      const { timeout: _, ...options } = layerOptions(e);
      const resilience = createResilience({ ...options, clock, random: seededRandom(1) });
      recorder = recordEvents(resilience);
      return resilience;
    });
    let recorder: ReturnType<typeof recordEvents> | undefined;
    return { images, backup, env, clock, app, made: () => made, events: () => recorder };
  };

  it("retries the provider's 503 in the layer; the client gets one 200", async () => {
    const w = await world((n) => (n === 1 ? down : job("provider")));
    const response = await w.clock.run(Promise.resolve(generate(w.app, w.env)));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ from: "provider" });
    expect(w.images.count(IMAGES)).toBe(2);
    expect(w.images.requests.map((r) => r.headers.authorization)).toEqual(["Bearer k-images", "Bearer k-images"]);
    expect(w.events()?.of("retry")).toHaveLength(1);
  });

  it("falls back to the spare, with the spare's key, and keeps one layer for the isolate", async () => {
    const w = await world(() => down);
    const first = await w.clock.run(Promise.resolve(generate(w.app, w.env)));
    expect(await first.json()).toMatchObject({ from: "spare" });
    expect(w.images.count(IMAGES)).toBe(3);
    expect(w.backup.requests[0]?.headers.authorization).toBe("Bearer k-spare");
    w.events()?.expectFallback("provider", "spare");
    await w.clock.run(Promise.resolve(generate(w.app, w.env)));
    expect(w.made()).toBe(1);
  });

  it("when both stay down, passes the last 503 through", async () => {
    const w = await world(
      () => down,
      () => down,
    );
    const response = await w.clock.run(Promise.resolve(generate(w.app, w.env)));
    expect(response.status).toBe(503);
    expect(w.images.count(IMAGES)).toBe(3);
    expect(w.backup.count(IMAGES)).toBe(3);
  });

  it("an open breaker becomes a 503 with Retry-After for the Worker's own clients; nothing is sent", async () => {
    const images = await api(() => down);
    const env: Env = { IMAGES_URL: images.url, IMAGES_KEY: "k", SPARE_URL: images.url, SPARE_KEY: "k" };
    const clock = new TestClock(Date.now());
    // No fallback here: one provider, a breaker that opens after 3 failed attempts.
    const app = createApp(() => createResilience({ clock, breaker: { failureThreshold: 3, timeout: 30_000 } }));
    await clock.run(Promise.resolve(generate(app, env)));
    const response = await clock.run(Promise.resolve(generate(app, env)));
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // 30 s from the trip, on a test clock the backoffs moved a few seconds ahead of Date.now().
    expect(Number(response.headers.get("retry-after"))).toBeLessThanOrEqual(35);
    expect(await response.json()).toEqual({ error: "upstream circuit open" });
    expect(images.count(IMAGES)).toBe(3);
  });

  it("exports the app as the Worker (a fetch handler)", () => {
    expect(typeof worker.fetch).toBe("function");
  });
});
