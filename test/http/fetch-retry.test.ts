import { describe, expect, it } from "vitest";
import { createResilience, getResilienceInfo, type RetryEvent } from "../../src/index.ts";
import { json, networkError, seededRandom, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/images";

function setup(options: Parameters<typeof createResilience>[0] = {}) {
  const clock = new TestClock(1_000_000);
  const resilience = createResilience({ clock, random: seededRandom(1), ...options });
  return { clock, resilience };
}

describe("retry through resilience.fetch", () => {
  it("turns 503, 503, 200 into one 200 after three attempts", async () => {
    const upstream = route(server, "GET", URL_, status(503), status(503), json({ ok: true }));
    const { clock, resilience } = setup();
    const res = await clock.run(resilience.fetch(URL_));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(upstream.count()).toBe(3);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "gen.example", fromFallback: false });
    expect(clock.pending()).toBe(0);
  });

  it("never retries a 400 (the caller's fault)", async () => {
    const upstream = route(server, "GET", URL_, status(400), json({}));
    const { clock, resilience } = setup();
    const res = await clock.run(resilience.fetch(URL_));
    expect(res.status).toBe(400);
    expect(upstream.count()).toBe(1);
  });

  it.each([408, 425, 429, 500, 502, 503, 504])("retries status %i by default", async (code) => {
    const upstream = route(server, "GET", URL_, status(code), json({}));
    const { clock, resilience } = setup();
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(200);
    expect(upstream.count()).toBe(2);
  });

  it("does not retry 501 (not in the default statuses) and honours retryOn.statuses", async () => {
    const upstream = route(server, "GET", URL_, status(501), json({}));
    const { clock, resilience } = setup();
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(501);
    expect(upstream.count()).toBe(1);
    const custom = setup({ retry: { retryOn: { statuses: [501] } } });
    expect((await custom.clock.run(custom.resilience.fetch(URL_))).status).toBe(200);
  });

  it("resolves with the last response when attempts run out, as fetch would", async () => {
    const upstream = route(server, "GET", URL_, status(503));
    const { clock, resilience } = setup({ retry: { maxAttempts: 4 } });
    const res = await clock.run(resilience.fetch(URL_));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("status 503");
    expect(upstream.count()).toBe(4);
    expect(getResilienceInfo(res)?.attempts).toBe(4);
  });

  it("waits the capped exponential delays on the injected clock (jitter none)", async () => {
    const seen: number[] = [];
    const { clock, resilience } = setup({
      retry: { maxAttempts: 5, initialDelay: 100, exponentialBase: 3, maxDelay: 1000, jitter: "none" },
    });
    route(server, "GET", URL_, (request, info) => {
      seen.push(clock.now());
      return status(503)(request, info);
    });
    await clock.run(resilience.fetch(URL_));
    const gaps = seen.slice(1).map((t, i) => t - (seen[i] as number));
    expect(gaps).toEqual([100, 300, 900, 1000]);
  });

  it("rejects with RetryExhaustedError whose cause is the network error", async () => {
    const upstream = route(server, "GET", URL_, networkError());
    const { clock, resilience } = setup();
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
    expect((error as Error).cause).toBeInstanceOf(TypeError);
    expect(upstream.count()).toBe(3);
  });

  it("emits a retry event per wait and a request event per call; unsubscribing stops them", async () => {
    route(server, "GET", URL_, status(502), json({}));
    const { clock, resilience } = setup({ retry: { jitter: "none", initialDelay: 250 } });
    const retries: RetryEvent[] = [];
    const requests: unknown[] = [];
    const off = resilience.on("retry", (e) => retries.push(e));
    resilience.on("request", (e) => requests.push(e));
    await clock.run(resilience.fetch(URL_));
    expect(retries).toEqual([
      { key: "gen.example", url: URL_, attempt: 1, delay: 250, reason: "status 502", retryAfter: false },
    ]);
    expect(requests).toEqual([
      expect.objectContaining({
        key: "gen.example",
        method: "GET",
        status: 200,
        attempts: 2,
        durationMs: 250,
        outcome: "response",
      }),
    ]);
    off();
    await clock.run(resilience.fetch(URL_));
    expect(retries).toHaveLength(1);
    expect(requests).toHaveLength(2);
  });

  it("retry: false makes a single attempt", async () => {
    const upstream = route(server, "GET", URL_, status(503));
    const { clock, resilience } = setup({ retry: false });
    expect((await clock.run(resilience.fetch(URL_))).status).toBe(503);
    expect(upstream.count()).toBe(1);
  });

  it("uses the transport given as `fetch` instead of the global one", async () => {
    const calls: string[] = [];
    const { clock, resilience } = setup({
      fetch: async (input) => {
        calls.push(String(input));
        return new Response(calls.length < 2 ? null : "ok", { status: calls.length < 2 ? 500 : 200 });
      },
    });
    expect(await (await clock.run(resilience.fetch("https://custom.example/x"))).text()).toBe("ok");
    expect(calls).toEqual(["https://custom.example/x", "https://custom.example/x"]);
  });
});

describe("the last attempt decides", () => {
  it("rejects with RetryExhaustedError when the last attempt threw, whatever an earlier one answered", async () => {
    route(server, "GET", URL_, status(503), networkError());
    const { clock, resilience } = setup({ retry: { maxAttempts: 2 } });
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect({ name: (error as Error).name, attempts: (error as { attempts?: number }).attempts }).toEqual({
      name: "RetryExhaustedError",
      attempts: 2,
    });
  });
});
