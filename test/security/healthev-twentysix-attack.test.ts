/**
 * Outside-in attack on `health()`, `debugInfo()` and the events.
 * Docs: docs/health-and-events.md (the `health()` fields, "A breaker's `state` is as a call would find it now",
 * "`null` while half-open, and for one that reads `open` because a probe's lease ran out", "`kvStore` and
 * `durableObjectStore` share a compact state … such a host shows the shared reason as `lastError` … and counts of
 * 0, and `failureRate` is `null`", "one answer that both trips the breaker and holds it open is one event, until
 * the later time", "`fallback` fires when a chain passes over an endpoint (… `next`: a hedge already running …)",
 * "An event object is only built when someone listens"); docs/retry.md (a transport's answer that is no
 * `Response` or a `Response.error()` "is a network error too"; a redirect's hop to a half-open host is its probe,
 * "a 5xx or 429, or an error … re-opens the host").
 * How: root entry (`createResilience`, `getResilienceInfo`, a hand-written `BreakerStore`), `./fallback`,
 * `./cloudflare`'s `kvStore` over an inline KV namespace, `./testing`'s TestClock; inline scripted transports.
 * Paths: plain call with retries, a transport answering `undefined` or `Response.error()`, a fallback chain and a
 * hedge, `redirects: "library"` to another host (closed and half-open), a named breaker's `execute`, two layers
 * sharing a KV namespace.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: hop answers checked, a hop's hold in the same change, store events built only for listeners, shared half-open counts):
 * 1. docs/retry.md "A transport's answer that is no `Response` fetch would give (none at all, a
 *    `Response.error()`, …) is a network error too" with "its own answer settles the slot (a 5xx or 429, or an
 *    error, … re-opens the host; any other answer … is the probe's success)". Observed: a redirect's hop to a
 *    half-open host answered with `Response.error()` is that host's successful probe (`health()`: `closed`,
 *    reason "1 successful probe", a `breaker` event half_open → closed), while the same answer fails the attempt
 *    and opens the first host ("last: TypeError"). `admitHop`'s outcome (src/http/send/send-attempt.ts) judges
 *    the hop's answer by `isServiceFailureStatus(status)` (status 0 is none) before `answerOf` sees it.
 * 2. docs/health-and-events.md "one answer that both trips the breaker and holds it open is one event, until the
 *    later time". Observed: a redirect's hop to a half-open host answered 503 with `Retry-After: 3600` fires two
 *    `breaker` events for that host: half_open → open ("probe failed: status 503", `openUntil` now + timeout),
 *    then open → open ("Retry-After 3600 s on status 503", the later time). The hop's outcome re-opens it in
 *    `admitHop` (follow-redirects.ts), and `sendAttempt` then applies the hold separately (`asker.hold`).
 * 3. docs/health-and-events.md "An event object is only built when someone listens." Observed: with no `store`
 *    listener, `health()` meeting a store whose `peek` throws still builds the `store` event (its `detail`
 *    turns the thrown value into text: its `toString` runs), and so does a `publish` whose promise rejects
 *    (src/http/health.ts and src/stores/unawaited-store.ts emit without asking `events.has("store")`).
 * 4. docs/health-and-events.md "`kvStore` and `durableObjectStore` share a compact state …: such a host shows the
 *    shared reason as `lastError` (…) and counts of 0, and `failureRate` is `null`". Observed: a layer whose
 *    closed breaker had 2 failures of its own reads, after another isolate's open spell (published to KV) ran
 *    out, `half_open` with `lastError` "shared: 1 failure in a row (last: status 503)" but `failureCount: 2`,
 *    `consecutiveFailures: 2`, `failureRate: 1`: `adopt` (src/policies/breaker-state.ts) makes the trip record of
 *    a lapsed remote open from the local counts (`remote.trip ?? tripOf(s, reason)`).
 * Held (plain `it`):
 * - a plain call whose transport answers `undefined` or `Response.error()`: a `retry` event ("network error"),
 *   one `breaker` event that opens the host, a `request` event (`RetryExhaustedError`, 2 attempts), totals 1/1;
 * - a chain whose first endpoint answers `Response.error()`: a `fallback` event naming the next endpoint, the
 *   chain's statistics in `health().fallback`, the call counted as a success;
 * - a hedge: the `fallback` event's `next` is the hedge already running; the losing hedge counted;
 * - a redirect to a closed other host answering 503 with `Retry-After: 3600`: one `breaker` event for that host,
 *   `health()` with the Retry-After reason and `openUntil`, `status` "unhealthy";
 * - a named breaker: open with its counts, `half_open` with `openUntil: null` once `timeout` passed, `open`
 *   (still `openUntil: null`) and "unhealthy" once its probe's lease ran out;
 * - a KV-shared open still running: counts 0, `failureRate` null, the shared reason as `lastError`.
 */
import { describe, expect, it } from "vitest";
import { kvStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type BreakerStore,
  createResilience,
  type FallbackEvent,
  getResilienceInfo,
  type RequestEvent,
  type RetryEvent,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const urlOf = (input: RequestInfo | URL): string => (input instanceof Request ? input.url : String(input));
const redirectToB = (): Response => new Response(null, { status: 302, headers: { location: "https://b.example/y" } });

/** A layer following redirects itself, whose `b.example` is half-open (opened by a 503, then `timeout` passed). */
async function halfOpenB(hop: () => Response, successThreshold = 1) {
  const clock = new TestClock();
  let opened = false;
  const resilience = createResilience({
    clock,
    redirects: "library",
    retry: false,
    breaker: { failureThreshold: 1, timeout: 1000, successThreshold },
    fetch: async (input) => {
      if (urlOf(input).startsWith("https://a.example")) return redirectToB();
      return opened ? hop() : new Response("x", { status: 503 });
    },
  });
  await resilience.fetch("https://b.example/y");
  opened = true;
  await clock.advance(1000);
  expect(resilience.health().breakers["b.example"]?.state).toBe("half_open");
  const breakers: BreakerEvent[] = [];
  resilience.on("breaker", (e) => breakers.push(e));
  return { clock, resilience, breakers };
}

describe("redirect hops to a half-open host", () => {
  // docs/retry.md: a `Response.error()` is a network error; a hop's error re-opens the half-open host.
  it("a hop answered with Response.error() is a failed probe of that host, not a success", async () => {
    const { resilience, breakers } = await halfOpenB(() => Response.error());
    await expect(resilience.fetch("https://a.example/x")).rejects.toThrow(/network error/);
    const b = resilience.health().breakers["b.example"];
    expect(breakers.filter((e) => e.key === "b.example").map((e) => e.to)).toEqual(["half_open", "open"]);
    expect(b?.state).toBe("open");
  });

  // docs/health-and-events.md: "one answer that both trips the breaker and holds it open is one event, until the later time".
  it("a hop's 503 with a long Retry-After re-opens its host with one breaker event", async () => {
    const { clock, resilience, breakers } = await halfOpenB(
      () => new Response("x", { status: 503, headers: { "retry-after": "3600" } }),
    );
    const res = await resilience.fetch("https://a.example/x");
    expect(res.status).toBe(503);
    const forB = breakers.filter((e) => e.key === "b.example" && e.from !== "open");
    const afterProbe = breakers.filter((e) => e.key === "b.example" && e.from !== "closed" && e.to === "open");
    expect(forB.map((e) => `${e.from}>${e.to}`)).toEqual(["half_open>open"]);
    expect(afterProbe).toHaveLength(1);
    expect(afterProbe[0]?.openUntil).toBe(clock.now() + 3_600_000);
    expect(resilience.health().breakers["b.example"]?.openUntil).toBe(clock.now() + 3_600_000);
  });

  it("a hop to a closed host answering 503 with a long Retry-After holds that host with one event", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      redirects: "library",
      retry: false,
      breaker: { failureThreshold: 2 },
      fetch: async (input) =>
        urlOf(input).startsWith("https://a.example")
          ? redirectToB()
          : new Response("x", { status: 503, headers: { "retry-after": "3600" } }),
    });
    const breakers: BreakerEvent[] = [];
    resilience.on("breaker", (e) => breakers.push(e));
    const res = await resilience.fetch("https://a.example/x");
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)?.endpoint).toBe("a.example");
    expect(breakers).toEqual([
      {
        key: "b.example",
        from: "closed",
        to: "open",
        reason: "Retry-After 3600 s on status 503",
        gen: 1,
        openUntil: 3_600_000,
      },
    ]);
    const health = resilience.health();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers["b.example"]).toMatchObject({
      state: "open",
      lastError: "Retry-After 3600 s on status 503",
      openUntil: 3_600_000,
    });
    expect(health.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 1, lastError: null });
  });
});

describe("events are built only for listeners", () => {
  // docs/health-and-events.md: "An event object is only built when someone listens."
  it("no `store` event is built when nobody listens to `store`", async () => {
    const clock = new TestClock();
    let built = 0;
    const thrown = {
      toString() {
        built++;
        return "store down";
      },
    };
    const peeking: BreakerStore = {
      name: "mine",
      publish() {},
      peek() {
        if (clock.now() > 0) throw thrown;
        return undefined;
      },
    };
    const resilience = createResilience({ clock, store: peeking, fetch: async () => new Response("ok") });
    await resilience.fetch("https://a.example/x");
    await clock.advance(10);
    expect(resilience.health().breakers["a.example"]?.state).toBe("closed");
    const rejecting: BreakerStore = { name: "mine", publish: () => Promise.reject(thrown), peek: () => undefined };
    const other = createResilience({
      clock,
      store: rejecting,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: async () => new Response("x", { status: 503 }),
    });
    await other.fetch("https://a.example/x");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(built).toBe(0);
  });

  it("a `store` listener gets the event with the thrown value as its detail", async () => {
    const clock = new TestClock();
    const peeking: BreakerStore = {
      name: "mine",
      publish() {},
      peek() {
        if (clock.now() > 0) throw new Error("store down");
        return undefined;
      },
    };
    const resilience = createResilience({ clock, store: peeking, fetch: async () => new Response("ok") });
    await resilience.fetch("https://a.example/x");
    await clock.advance(10);
    const seen: unknown[] = [];
    resilience.on("store", (e) => seen.push(e));
    resilience.health();
    expect(seen).toEqual([
      { store: "mine", key: "a.example", operation: "read", outcome: "failed", detail: "Error: store down" },
    ]);
  });
});

describe("transports that give no Response", () => {
  for (const [name, answer] of [
    ["undefined", () => undefined],
    ["Response.error()", () => Response.error()],
  ] as const) {
    it(`a plain call answered with ${name}: retried as a network error, counted, the host opened`, async () => {
      const clock = new TestClock();
      const resilience = createResilience({
        clock,
        retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
        breaker: { failureThreshold: 2 },
        fetch: async () => answer() as unknown as Response,
      });
      const retries: RetryEvent[] = [];
      const requests: RequestEvent[] = [];
      const breakers: BreakerEvent[] = [];
      resilience.on("retry", (e) => retries.push(e));
      resilience.on("request", (e) => requests.push(e));
      resilience.on("breaker", (e) => breakers.push(e));
      const settled = resilience.fetch("https://a.example/x").catch((e: unknown) => e);
      await clock.advance(100);
      expect((await settled) as Error).toMatchObject({ name: "RetryExhaustedError" });
      expect(retries.map((e) => [e.attempt, e.delay, e.reason])).toEqual([[1, 10, "network error"]]);
      expect(breakers.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open"]);
      expect(requests).toMatchObject([{ error: "RetryExhaustedError", attempts: 2, outcome: "error" }]);
      const info = resilience.debugInfo();
      expect(info.totals).toEqual({ calls: 1, failures: 1 });
      expect(info.errorRate).toBe(1);
      expect(info.status).toBe("unhealthy");
      expect(info.breakers["a.example"]).toMatchObject({ state: "open", failureCount: 2, openUntil: 30_010 });
    });
  }

  it("a chain whose first endpoint answers Response.error() passes it over and counts the call a success", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: async (input) => (urlOf(input).startsWith("https://a.example") ? Response.error() : new Response("ok")),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "A", url: "https://a.example/v1" },
            { name: "B", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const events: FallbackEvent[] = [];
    resilience.on("fallback", (e) => events.push(e));
    const res = await resilience.fetch("https://a.example/v1/x");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "B", fromFallback: true, attempts: 2 });
    expect(events).toMatchObject([{ chain: "c", from: "A", next: "B" }]);
    expect(events[0]?.reason).toMatch(/network error/);
    const info = resilience.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 0 });
    expect(info.fallback.c?.fallbacks).toMatchObject({ A: { calls: 1, successes: 0 }, B: { calls: 1, successes: 1 } });
    expect(info.breakers["a.example"]).toMatchObject({ state: "closed", failureCount: 1 });
  });

  it("a hedge: the fallback event's `next` is the hedge already running", async () => {
    const clock = new TestClock();
    const answerAt = (ms: number, make: () => Response) =>
      new Promise<Response>((resolve) => clock.setTimer(() => resolve(make()), ms));
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: (input) =>
        urlOf(input).startsWith("https://a.example")
          ? answerAt(300, () => new Response("x", { status: 503 }))
          : answerAt(500, () => new Response("ok")),
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 100 },
          endpoints: [
            { name: "A", url: "https://a.example/v1" },
            { name: "B", url: "https://b.example/v1" },
            { name: "C", url: "https://c.example/v1" },
          ],
        },
      ]),
    });
    const events: FallbackEvent[] = [];
    resilience.on("fallback", (e) => events.push(e));
    const call = resilience.fetch("https://a.example/v1/x");
    await clock.advance(1000);
    const res = await call;
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "B", attempts: 3, durationMs: 600 });
    expect(events).toEqual([{ chain: "c", from: "A", reason: "status 503", next: "B" }]);
    expect(resilience.health().fallback.c?.fallbacks).toMatchObject({
      A: { calls: 1, successes: 0 },
      B: { calls: 1, successes: 1 },
      C: { calls: 1, successes: 0 },
    });
  });
});

describe("named breakers", () => {
  it("read open, then half_open once timeout passed, then open when the probe's lease ran out", async () => {
    const clock = new TestClock();
    const resilience = createResilience({ clock, fetch: async () => new Response("ok") });
    const breaker = resilience.breaker("gpu", { failureThreshold: 1, timeout: 1000, probeTimeout: 500 });
    await breaker
      .execute(async () => {
        throw new Error("x");
      })
      .catch(() => {});
    expect(resilience.health()).toMatchObject({
      status: "unhealthy",
      breakers: { gpu: { state: "open", openUntil: 1000, failureCount: 1, lastError: "Error" } },
    });
    await clock.advance(1000);
    expect(resilience.health()).toMatchObject({
      status: "healthy",
      breakers: { gpu: { state: "half_open", openUntil: null } },
    });
    void breaker.execute(() => new Promise(() => {}));
    await clock.advance(600);
    expect(resilience.health()).toMatchObject({
      status: "unhealthy",
      breakers: { gpu: { state: "open", openUntil: null, lastError: "Error" } },
    });
  });
});

describe("a host shared through kvStore", () => {
  function sharedKv() {
    const clock = new TestClock();
    const entries = new Map<string, unknown>();
    const namespace = {
      async getWithMetadata(key: string) {
        return { value: entries.has(key) ? "" : null, metadata: entries.get(key) ?? null };
      },
      async put(key: string, _value: string, options: { metadata: unknown }) {
        entries.set(key, options.metadata);
      },
    };
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const flush = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        await clock.advance(0);
        await Promise.all(pending.splice(0));
      }
    };
    const layer = (failureThreshold: number, status = 503) =>
      createResilience({
        clock,
        retry: false,
        breaker: { failureThreshold, timeout: 30_000 },
        store: kvStore(namespace as never, { ctx, clock, random: () => 0, refreshInterval: 1000 }),
        fetch: async () => new Response("x", { status }),
      });
    return { clock, flush, entries, layer };
  }

  it("an open spell another isolate shared shows the shared reason, counts of 0 and failureRate null", async () => {
    const { clock, flush, layer } = sharedKv();
    const other = layer(1);
    const here = layer(5, 200);
    await here.fetch("https://gen.example/a");
    await flush();
    await other.fetch("https://gen.example/a");
    await flush();
    await clock.advance(10_000);
    here.health();
    await flush();
    expect(here.health().breakers["gen.example"]).toMatchObject({
      state: "open",
      lastError: "shared: 1 failure in a row (last: status 503)",
      failureCount: 0,
      consecutiveFailures: 0,
      failureRate: null,
    });
  });

  // docs/health-and-events.md: "such a host shows the shared reason as `lastError` … and counts of 0, and `failureRate` is `null`".
  it("one read half-open after the shared spell ran out shows counts of 0 and failureRate null", async () => {
    const { clock, flush, entries, layer } = sharedKv();
    const other = layer(1);
    const here = layer(5);
    await here.fetch("https://gen.example/a");
    await here.fetch("https://gen.example/a");
    await flush();
    await other.fetch("https://gen.example/a");
    await flush();
    expect(entries.size).toBe(1);
    expect(here.health().breakers["gen.example"]).toMatchObject({ state: "closed", consecutiveFailures: 2 });
    await clock.advance(31_000);
    here.health();
    await flush();
    expect(here.health().breakers["gen.example"]).toMatchObject({
      state: "half_open",
      lastError: "shared: 1 failure in a row (last: status 503)",
      failureCount: 0,
      consecutiveFailures: 0,
      failureRate: null,
    });
  });
});
