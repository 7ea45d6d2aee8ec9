import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import { createResilience, TimeoutError } from "../../src/index.ts";
import { hang, json, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const URL_ = "https://gen.example/v1/video";

/** An upstream that never answers until its request is aborted. */
function hangs(url: string): { started: () => number } {
  const api = route(server, "GET", url, hang());
  return { started: () => api.count() };
}

describe("caller abort", () => {
  it("rejects at once with signal.reason during a backoff, and leaves no timer", async () => {
    const upstream = route(server, "GET", URL_, status(503));
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { initialDelay: 60_000, jitter: "none" } });
    const controller = new AbortController();
    const call = resilience.fetch(URL_, { signal: controller.signal });
    await clock.waitForTimers(1);
    const reason = new Error("user navigated away");
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(clock.now()).toBe(0);
    expect(clock.pending()).toBe(0);
    expect(upstream.count()).toBe(1);
  });

  it("aborts the in-flight attempt and never counts it as a failure to retry", async () => {
    const upstream = hangs(URL_);
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const retries: unknown[] = [];
    resilience.on("retry", (e) => retries.push(e));
    const controller = new AbortController();
    const call = resilience.fetch(URL_, { signal: controller.signal });
    while (upstream.started() === 0) await new Promise((r) => setTimeout(r, 0));
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: "AbortError" });
    expect(upstream.started()).toBe(1);
    expect(retries).toEqual([]);
  });

  it("rejects before any request when the signal is already aborted", async () => {
    const upstream = route(server, "GET", URL_, json({}));
    const resilience = createResilience();
    await expect(resilience.fetch(URL_, { signal: AbortSignal.abort("early") })).rejects.toBe("early");
    expect(upstream.count()).toBe(0);
  });
});

describe("timeouts", () => {
  it("timeout.attempt bounds each attempt to headers, then rejects with TimeoutError phase attempt", async () => {
    const upstream = hangs(URL_);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      timeout: { attempt: 5_000 },
      retry: { jitter: "none", initialDelay: 100 },
    });
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ phase: "attempt", timeout: 5_000, attempts: 3 });
    expect(upstream.started()).toBe(3);
    expect(clock.now()).toBe(3 * 5_000 + 100 + 200);
    expect(clock.pending()).toBe(0);
  });

  it("timeout.total bounds the whole call, waits included", async () => {
    hangs(URL_);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      timeout: { attempt: 4_000, total: 6_000 },
      retry: { jitter: "none", initialDelay: 1_000 },
    });
    const error = await clock.run(resilience.fetch(URL_)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError", phase: "total", timeout: 6_000, attempts: 2 });
    expect(clock.now()).toBe(6_000);
    expect(clock.pending()).toBe(0);
  });

  it("with both timeouts, an attempt runs under one timer, and each attempt still gets its full time", async () => {
    const upstream = hangs(URL_);
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      timeout: { attempt: 4_000, total: 20_000 },
      retry: { jitter: "none", initialDelay: 1_500 },
    });
    const timeouts: number[] = [];
    resilience.on("retry", () => timeouts.push(clock.now()));
    const call = resilience.fetch(URL_);
    while (upstream.started() === 0) await new Promise((r) => setTimeout(r, 0));
    expect(clock.pending()).toBe(1);
    const error = await clock.run(call).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "TimeoutError", phase: "attempt", attempts: 3 });
    // Attempts start at 0, 5_500 and 12_500 (waits of 1_500 and 3_000): each times out 4_000 later.
    expect(timeouts).toEqual([4_000, 9_500]);
    expect(clock.now()).toBe(16_500);
    expect(clock.pending()).toBe(0);
  });

  it.each([
    ["set back 10 s", -10_000],
    ["moved ahead 1 s", 1_000],
  ])("a wall clock %s during the call moves neither timeout nor the retries' end", async (_, step) => {
    hangs(URL_);
    const timers = new TestClock();
    let offset = 0;
    // The layer's clock is the wall clock (`Date.now()`), which an NTP step can move.
    const clock = { now: () => timers.now() + offset, setTimer: timers.setTimer.bind(timers) };
    const resilience = createResilience({
      clock,
      breaker: false,
      budget: false,
      timeout: { attempt: 150, total: 600 },
      retry: { maxAttempts: 1_000, initialDelay: 10, exponentialBase: 1, jitter: "none" },
    });
    const call = resilience.fetch(URL_).catch((e: unknown) => e);
    await timers.advance(50);
    offset = step;
    const error = await timers.run(call);
    expect(error).toMatchObject({ name: "TimeoutError", phase: "total", attempts: 4 });
    expect(timers.now()).toBe(600);
    expect(timers.pending()).toBe(0);
  });

  it("does not start a wait that would end after the total deadline: it settles with the response", async () => {
    const upstream = route(server, "GET", URL_, status(503));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      timeout: { total: 1_500 },
      retry: { jitter: "none", initialDelay: 1_000 },
    });
    const res = await clock.run(resilience.fetch(URL_));
    expect(res.status).toBe(503);
    expect(upstream.count()).toBe(2);
    expect(clock.now()).toBe(1_000);
  });

  it("an attempt timeout is cleared once headers arrive: a slow body is not cut", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    server.use(
      http.get(URL_, () => {
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("first "));
            await gate;
            controller.enqueue(new TextEncoder().encode("second"));
            controller.close();
          },
        });
        return new HttpResponse(body, { headers: { "content-type": "text/plain" } });
      }),
    );
    const clock = new TestClock();
    const resilience = createResilience({ clock, timeout: { attempt: 1_000 } });
    const res = await resilience.fetch(URL_);
    expect(clock.pending()).toBe(0);
    await clock.advance(10_000);
    release();
    expect(await res.text()).toBe("first second");
  });
});
