import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import {
  type BreakerEvent,
  BulkheadRejectedError,
  CircuitOpenError,
  createResilience,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { json, seededRandom, status, TestClock } from "../../src/testing/index.ts";
import { route, useMswServer } from "../helpers/msw.ts";

const server = useMswServer();
const A = "https://a.example/v1/gen";
const B = "https://b.example/v1/gen";

function setup(options: ResilienceOptions = {}) {
  const clock = new TestClock(1_000_000);
  const resilience = createResilience({ clock, random: seededRandom(2), ...options });
  const events: BreakerEvent[] = [];
  resilience.on("breaker", (e) => events.push(e));
  return { clock, resilience, events };
}

describe("per-host circuit breakers in resilience.fetch", () => {
  it("opens after failureThreshold failures, fails fast without sending, probes after timeout, closes on success", async () => {
    const upstream = route(server, "GET", A, status(500), status(500), status(500), json({ ok: 1 }));
    const { clock, resilience, events } = setup({
      retry: false,
      breaker: { failureThreshold: 3, timeout: 10_000, successThreshold: 1 },
    });
    for (let i = 0; i < 3; i++) expect((await resilience.fetch(A)).status).toBe(500);
    const error = await resilience.fetch(A).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ key: "a.example", retryAt: 1_010_000 });
    expect(upstream.count()).toBe(3);
    expect(resilience.health().breakers["a.example"]).toMatchObject({ state: "open", openUntil: 1_010_000 });

    await clock.advance(10_000);
    expect(resilience.health().breakers["a.example"]?.state).toBe("half_open");
    const probe = await resilience.fetch(A);
    expect(probe.status).toBe(200);
    expect(upstream.count()).toBe(4);
    expect(events.map((e) => `${e.from}->${e.to}`)).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
    expect(events[0]?.reason).toBe("3 failures in a row (last: status 500)");
  });

  it("a failing host leaves another host's calls alone", async () => {
    route(server, "GET", A, status(503));
    const b = route(server, "GET", B, json({}));
    const { resilience } = setup({ retry: false, breaker: { failureThreshold: 2 } });
    await resilience.fetch(A);
    await resilience.fetch(A);
    await expect(resilience.fetch(A)).rejects.toBeInstanceOf(CircuitOpenError);
    expect((await resilience.fetch(B)).status).toBe(200);
    expect(b.count()).toBe(1);
    expect(resilience.health().breakers["b.example"]?.state).toBe("closed");
  });

  it("counts other 4xx as successes of the service, and 429 as a failure", async () => {
    route(server, "GET", A, status(404));
    const { resilience } = setup({ retry: false, breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 10; i++) await resilience.fetch(A);
    expect(resilience.health().breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0 });
    route(server, "GET", B, status(429));
    await resilience.fetch(B);
    await resilience.fetch(B);
    expect(resilience.health().breakers["b.example"]?.state).toBe("open");
  });

  it("does not count a caller's abort as a failure", async () => {
    server.use(
      http.get(
        A,
        ({ request }) => new Promise((r) => request.signal.addEventListener("abort", () => r(HttpResponse.error()))),
      ),
    );
    const { resilience } = setup({ retry: false, breaker: { failureThreshold: 1 } });
    const controller = new AbortController();
    const call = resilience.fetch(A, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: "AbortError" });
    expect(resilience.health().breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 0 });
  });

  it("stops retrying once the breaker opens mid-call, and resolves with the last response", async () => {
    const upstream = route(server, "GET", A, status(503));
    const { clock, resilience } = setup({ retry: { maxAttempts: 5 }, breaker: { failureThreshold: 2 } });
    const res = await clock.run(resilience.fetch(A));
    expect(res.status).toBe(503);
    expect(upstream.count()).toBe(2);
  });

  it("frees a stuck probe's slot after probeTimeout and counts it as a failure", async () => {
    let hang = false;
    const pending: Array<() => void> = [];
    server.use(
      http.get(A, () => {
        if (!hang) return new HttpResponse(null, { status: 500 });
        return new Promise<Response>((resolve) => pending.push(() => resolve(HttpResponse.json({}))));
      }),
    );
    const { clock, resilience } = setup({
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, probeTimeout: 5_000 },
    });
    await resilience.fetch(A);
    await clock.advance(1_000);
    hang = true;
    const stuck = resilience.fetch(A); // the one probe, never answered in time
    await new Promise((r) => setTimeout(r, 5));
    await expect(resilience.fetch(A)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(5_000);
    // The expired lease counts as a failure: open again for `timeout`, then a new probe may go.
    await expect(resilience.fetch(A)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(resilience.health().breakers["a.example"]?.state).toBe("open");
    await clock.advance(1_000);
    hang = false;
    expect((await resilience.fetch(A)).status).toBe(500);
    for (const release of pending) release();
    await stuck;
  });

  it("holds a host open until a Retry-After longer than maxRetryAfter", async () => {
    const upstream = route(server, "GET", A, status(429, { retryAfter: 120 }), json({}));
    const { clock, resilience } = setup({ retry: { maxRetryAfter: 10_000 } });
    expect((await clock.run(resilience.fetch(A))).status).toBe(429);
    await expect(resilience.fetch(A)).rejects.toMatchObject({ name: "CircuitOpenError", retryAt: 1_120_000 });
    expect(upstream.count()).toBe(1);
    await clock.advance(120_000);
    expect((await resilience.fetch(A)).status).toBe(200);
  });

  it("uses breaker.key(url) to choose the key", async () => {
    route(server, "GET", A, status(500));
    route(server, "GET", "https://a.example/v2/other", json({}));
    const { resilience } = setup({
      retry: false,
      breaker: { failureThreshold: 1, key: (url) => `${url.host}${url.pathname.split("/").slice(0, 2).join("/")}` },
    });
    await resilience.fetch(A);
    await expect(resilience.fetch(A)).rejects.toBeInstanceOf(CircuitOpenError);
    expect((await resilience.fetch("https://a.example/v2/other")).status).toBe(200);
    expect(Object.keys(resilience.health().breakers).sort()).toEqual(["a.example/v1", "a.example/v2"]);
  });

  it("breaker: false sends every call even during an outage", async () => {
    const upstream = route(server, "GET", A, status(500));
    const { resilience } = setup({ retry: false, breaker: false });
    for (let i = 0; i < 20; i++) await resilience.fetch(A);
    expect(upstream.count()).toBe(20);
    expect(resilience.health().breakers).toEqual({});
  });

  it("shares transitions between instances through one memoryStore", async () => {
    const upstream = route(server, "GET", A, status(503));
    const store = memoryStore();
    const first = setup({ retry: false, store, breaker: { failureThreshold: 2 } });
    const second = setup({ retry: false, store, breaker: { failureThreshold: 2 } });
    await first.resilience.fetch(A);
    await first.resilience.fetch(A);
    await expect(second.resilience.fetch(A)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(upstream.count()).toBe(2);
    expect(second.events[0]).toMatchObject({ to: "open", reason: expect.stringMatching(/^shared:/) });
  });
});

describe("full outage", () => {
  /**
   * 1,000 calls against an upstream that always answers 503, offered in 20
   * waves of 50 concurrent calls, 5 s apart on the injected clock (so the
   * 30 s breaker timeout elapses and half-open probing is part of the run).
   */
  async function outage(options: ResilienceOptions): Promise<number> {
    const upstream = route(server, "GET", "https://down.example/gen", status(503));
    const { clock, resilience } = setup({ retry: { initialDelay: 10, maxDelay: 100 }, ...options });
    let settled = 0;
    const calls = 1_000;
    for (let wave = 0; wave < 20; wave++) {
      const batch = Array.from({ length: 50 }, () =>
        resilience.fetch("https://down.example/gen").then(
          () => settled++,
          () => settled++,
        ),
      );
      await clock.run(Promise.all(batch));
      await clock.advance(5_000);
    }
    expect(settled).toBe(calls);
    if (process.env.REPORT_FIGURES)
      console.log(`outage ${JSON.stringify(options)}: ${upstream.count() / calls} attempts/call`);
    return upstream.count() / calls;
  }

  it("keeps attempts per call <= 1.1 with the default breaker and budget", async () => {
    expect(await outage({})).toBeLessThanOrEqual(1.1);
  });

  // A figure over thousands of calls (4 s alone, more on a shared machine): skipped by mutation
  // runs, like the 10,000-call fallback test.
  it.skipIf(process.env.MUTATION_RUN === "1")(
    "keeps attempts per call <= 1.3 with the budget alone (breaker off)",
    async () => {
      const ratio = await outage({ breaker: false });
      expect(ratio).toBeLessThanOrEqual(1.3);
      expect(ratio).toBeGreaterThan(1);
    },
    30_000,
  );
});

describe("scale", () => {
  // 100,000 calls: seconds on a shared machine, so a generous timeout, and
  // skipped by mutation runs like the other figures over thousands of calls.
  it.skipIf(process.env.MUTATION_RUN === "1")(
    "holds at most maxHosts breakers with 100k distinct hosts",
    async () => {
      const resilience = createResilience({
        fetch: async () => new Response(null, { status: 200 }),
        breaker: { maxHosts: 1000 },
      });
      for (let i = 0; i < 100_000; i++) await resilience.fetch(`https://h${i}.example/x`);
      expect(resilience.debugInfo().breakerCount).toBe(1000);
      expect(Object.keys(resilience.health().breakers)).toHaveLength(1000);
      expect(resilience.health().breakers["h99999.example"]).toBeDefined();
      expect(resilience.health().breakers["h0.example"]).toBeUndefined();
    },
    30_000,
  );
});

describe("bulkhead", () => {
  it("limits attempts in flight per host and rejects at once when the queue is full", async () => {
    const releases: Array<() => void> = [];
    server.use(http.get(A, () => new Promise<Response>((r) => releases.push(() => r(HttpResponse.json({}))))));
    const { resilience } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const first = resilience.fetch(A);
    const second = resilience.fetch(A);
    await expect(resilience.fetch(A)).rejects.toBeInstanceOf(BulkheadRejectedError);
    await new Promise((r) => setTimeout(r, 5));
    expect(releases).toHaveLength(1);
    expect(resilience.health().breakers["a.example"]).toMatchObject({ active: 1, queued: 1 });
    releases[0]?.();
    await first;
    while (releases.length < 2) await new Promise((r) => setTimeout(r, 1));
    releases[1]?.();
    expect((await second).status).toBe(200);
    expect(resilience.health().breakers["a.example"]).toMatchObject({ active: 0, queued: 0 });
  });

  it("a retry refused by a full bulkhead rejects when the last response was too large to keep", async () => {
    const held: Array<() => void> = [];
    let calls = 0;
    const large = { "content-length": String(64 * 1024 + 1) };
    const { clock, resilience } = setup({
      retry: { maxAttempts: 2, initialDelay: 100, maxDelay: 100, jitter: "none" },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: () => {
        calls++;
        if (calls === 1) return Promise.resolve(new Response("too large to keep", { status: 503, headers: large }));
        return new Promise<Response>((resolve) => held.push(() => resolve(new Response("ok"))));
      },
    });
    const outcome = resilience.fetch(A).then(
      (response) => response,
      (error: unknown) => error,
    );
    await clock.waitForTimers(); // the first call waits to retry
    const other = resilience.fetch(A); // takes the only slot and holds it
    while (calls < 2) await new Promise((r) => setTimeout(r, 1));
    await clock.advance(100);
    expect(await outcome).toBeInstanceOf(BulkheadRejectedError);
    held[0]?.();
    expect((await other).status).toBe(200);
  });

  it("keeps a host's bulkhead while attempts are in flight or queued, even past maxHosts", async () => {
    const held: Array<() => void> = [];
    const sent: string[] = [];
    const { resilience } = setup({
      breaker: { maxHosts: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      fetch: (input) => {
        const host = new URL(String(input)).host;
        sent.push(host);
        if (host === "b.example") return Promise.resolve(new Response("b"));
        return new Promise<Response>((resolve) => held.push(() => resolve(new Response("a"))));
      },
    });
    const active = resilience.fetch(A);
    const queued = resilience.fetch(A);
    expect((await resilience.fetch(B)).status).toBe(200); // a second host, over maxHosts
    const third = resilience.fetch(A).then(
      () => "sent",
      (error: unknown) => error,
    );
    await new Promise((r) => setTimeout(r, 5));
    expect(sent).toEqual(["a.example", "b.example"]);
    while (held.length > 0) {
      held.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all([active, queued]);
    expect(await third).toBeInstanceOf(BulkheadRejectedError);
  });
});
