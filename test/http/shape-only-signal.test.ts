import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/**
 * A signal with the shape fetch reads (`aborted`, `addEventListener`,
 * `removeEventListener`) that is not the platform's: a polyfill's, an SDK's.
 * Node's fetch takes it; Deno's, Bun's and browsers' refuse it, as the
 * transport below does.
 */
function shapeOnlySignal() {
  const listeners = new Set<() => void>();
  const signal = {
    aborted: false,
    reason: undefined as unknown,
    /** Listeners it holds now. */
    get kept() {
      return listeners.size;
    },
    addEventListener(_type: string, listener: () => void) {
      listeners.add(listener);
    },
    removeEventListener(_type: string, listener: () => void) {
      listeners.delete(listener);
    },
    abort(reason: unknown) {
      signal.aborted = true;
      signal.reason = reason;
      for (const listener of listeners) listener();
    },
  };
  return signal;
}

/** A transport that refuses any signal but the platform's, as Deno's, Bun's and Chromium's fetch do. */
function strictFetch(answer: (signal: AbortSignal | null | undefined) => Promise<Response>) {
  const seen: Array<AbortSignal | null | undefined> = [];
  const fetch = (_input: RequestInfo | URL, init?: RequestInit) => {
    const signal = init?.signal;
    seen.push(signal);
    if (signal != null && !(signal instanceof AbortSignal)) {
      return Promise.reject(new TypeError("signal is not of type AbortSignal."));
    }
    return answer(signal);
  };
  return { fetch, seen };
}

describe("a caller's signal of the right shape that is not the platform's", () => {
  for (const [name, timeout] of [
    ["no timeout", undefined],
    ["timeout.attempt", { attempt: 60_000 }],
    ["timeout.total", { total: 60_000 }],
    ["both timeouts", { attempt: 60_000, total: 120_000 }],
  ] as const) {
    it(`${name}: the transport gets a platform signal; one request, nothing retried or counted, no timer left`, async () => {
      const clock = new TestClock();
      const { fetch, seen } = strictFetch(async () => new Response("ok"));
      const resilience = createResilience({ clock, fetch, timeout, retry: { initialDelay: 0 } });
      const retries: unknown[] = [];
      resilience.on("retry", (e) => retries.push(e));
      const signal = shapeOnlySignal();
      const response = await resilience.fetch("https://gen.example/v1", { signal: signal as unknown as AbortSignal });
      expect(await response.text()).toBe("ok");
      expect(seen).toHaveLength(1);
      expect(seen[0]).toBeInstanceOf(AbortSignal);
      expect(retries).toEqual([]);
      expect(resilience.debugInfo().totals.failures).toBe(0);
      expect(clock.pending()).toBe(0);
    });
  }

  it("aborting it aborts the call with its reason, and the transport's signal with it", async () => {
    const clock = new TestClock();
    const { fetch, seen } = strictFetch(
      (signal) =>
        new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason), { once: true })),
    );
    const resilience = createResilience({ clock, fetch });
    const signal = shapeOnlySignal();
    const call = resilience.fetch("https://gen.example/v1", { signal: signal as unknown as AbortSignal });
    while (seen.length === 0) await Promise.resolve();
    const reason = new Error("navigated away");
    signal.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(seen[0]?.aborted).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a source that serves many calls gets one listener, not one per call", async () => {
    const { fetch } = strictFetch(async () => new Response("ok"));
    const resilience = createResilience({ fetch });
    const signal = shapeOnlySignal();
    for (let i = 0; i < 5; i++) {
      const response = await resilience.fetch("https://gen.example/v1", { signal: signal as unknown as AbortSignal });
      await response.text();
    }
    // The layer's own follower: one, however many calls (the check listens and lets go on each).
    expect(signal.kept).toBe(1);
  });

  it("the platform's own signal goes to the transport as it is", async () => {
    const { fetch, seen } = strictFetch(async () => new Response("ok"));
    const resilience = createResilience({ fetch });
    const controller = new AbortController();
    await resilience.fetch("https://gen.example/v1", { signal: controller.signal });
    expect(seen[0]).toBe(controller.signal);
  });
});
