/**
 * Attack on the last three commits, from outside, through the public entries
 * only (root, `./fallback`, `./cloudflare`, `./testing`) and the fakes under
 * test/cloudflare. TestClock and scripted stub `fetch` functions that honour
 * their signal: nothing sleeps for real.
 *
 * 1. `maxHosts` holders: a call holds its host's entry until it settles.
 *    Many hosts through `maxHosts: 2`, concurrent calls ending every way (a
 *    success, a non-retried 404, retries exhausted, a thrown transport, a
 *    caller abort during an attempt, during a backoff, in a bulkhead queue,
 *    a `timeout.total` deadline (hung and in a backoff), a chain moving on, a hedge winner and
 *    loser); after all settle, fresh hosts must evict the old ones again
 *    (`health().breakers` keys counted), and a held host is never evicted.
 * 2. A closed circuit ignores an outcome carrying a probe's lease: three
 *    probes in flight, two successes close, the third answers 503.
 * 3. `durableObjectStore` refusing a probe: `retryAt` and events of the sync.
 *
 * Defects pinned (first `it.fails` asserting the promise, on the code they
 * were written against; fixed since, so plain `it`: a closed circuit now
 * drops only the answer of a probe whose lease ran out):
 * 1. src/policies/breaker-state.ts `failure` (closed, lease !== null): with
 *    `halfOpenMaxCalls: 3`, `successThreshold: 2`, `failureThreshold: 1`,
 *    two probes succeed and close the circuit; the third probe, whose lease
 *    (30 s) has not run out, answers 503 a moment later. docs/breakers.md:
 *    5xx are failures, and only a probe whose lease ran out (a failure
 *    counted already) has its late answer count for nothing. Observed: the
 *    503 is dropped, the circuit stays closed (`failureThreshold: 1` should
 *    re-open it), the next call is sent. Through `resilience.fetch`.
 * 2. Same through the generic breaker (`resilience.breaker(name).execute`):
 *    the third probe's thrown failure after the close is dropped, `state`
 *    stays "closed".
 *
 * Held (plain `it`): every way a call ends releases its host (after a mixed
 * concurrent burst over 7 hosts through `maxHosts: 2`, two fresh hosts leave
 * `health().breakers` at 2 keys); a hung call's host is never evicted while
 * 5 other hosts pass, and goes once it settles; chains (moving on after a
 * 503) and hedges (winner and aborted loser) release both endpoints; a probe
 * whose lease ran out unobserved and then answers 200 counts for nothing
 * (its lease's expiry re-opened the circuit: so since the twenty-second
 * session; it first closed it); two probes with
 * `successThreshold: 2` both count; a Durable Object refusal because the
 * host is open there names the object's open-until (in the future, emits
 * one `breaker` event), and a refusal because another isolate holds the
 * object's probe names the local lease, no earlier than that probe's lease.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerOptions,
  CircuitOpenError,
  createResilience,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";

const T0 = 1_000_000;

type Step = number | "hang" | "throw";

interface Hung {
  url: string;
  answer: (status: number) => void;
}

function scripted(script: Record<string, Step[]> = {}) {
  const sent: string[] = [];
  const hung: Hung[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    sent.push(url);
    const host = new URL(url).host;
    const step = script[host]?.shift() ?? 200;
    if (step === "throw") return Promise.reject(new TypeError("fetch failed"));
    if (step !== "hang") return Promise.resolve(new Response(`answer ${step}`, { status: step }));
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      hung.push({ url, answer: (status) => resolve(new Response(`late ${status}`, { status })) });
    });
  };
  return { fetch, sent, hung };
}

async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const keys = (resilience: Resilience) => Object.keys(resilience.health().breakers);

describe("maxHosts: every way a call ends releases its host", () => {
  it("a mixed concurrent burst over 7 hosts, then fresh hosts bring the registry back to maxHosts", async () => {
    const clock = new TestClock(T0);
    const up = scripted({
      "h0.example": [200],
      "h1.example": [404],
      "h2.example": [503, 503],
      "h3.example": ["throw", "throw"],
      "h4.example": ["hang"],
      "h5.example": [503, 200],
      "h6.example": ["hang", "hang"],
    });
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      retry: { maxAttempts: 2, initialDelay: 1_000, jitter: "none" },
      breaker: { maxHosts: 2 },
      bulkhead: { maxConcurrent: 1, maxQueue: 4 },
    });
    const abort4 = new AbortController();
    const abort5 = new AbortController();
    const abort6a = new AbortController();
    const abort6b = new AbortController();
    const calls = [
      resilience.fetch("https://h0.example/"),
      resilience.fetch("https://h1.example/"),
      resilience.fetch("https://h2.example/"),
      resilience.fetch("https://h3.example/"),
      resilience.fetch("https://h4.example/", { signal: abort4.signal }),
      resilience.fetch("https://h5.example/", { signal: abort5.signal }),
      resilience.fetch("https://h6.example/", { signal: abort6a.signal }),
      resilience.fetch("https://h6.example/", { signal: abort6b.signal }),
    ];
    for (const call of calls) call.catch(() => {});
    await turns();
    // In flight: h4 (hung), h5 (waiting out its backoff), h6 (one hung, one queued), h7 (hung).
    expect(keys(resilience)).toEqual(expect.arrayContaining(["h4.example", "h5.example", "h6.example"]));
    abort4.abort();
    abort5.abort();
    abort6b.abort(); // the queued one leaves the queue
    await turns();
    abort6a.abort();
    await clock.advance(3_000); // h2's and h3's backoffs
    await turns();
    const pending = await Promise.race([
      Promise.allSettled(calls).then(() => "settled"),
      turns(50).then(() => "pending"),
    ]);
    expect(pending).toBe("settled");
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
    ]);
    // h4, h5, h6 (twice) aborted: not a breaker refusal.
    for (const r of results.slice(4)) expect(r.status === "rejected" && r.reason).not.toBeInstanceOf(CircuitOpenError);
    // All settled: two fresh hosts, one after the other, leave only them.
    await clock.run(resilience.fetch("https://fresh1.example/"));
    await clock.run(resilience.fetch("https://fresh2.example/"));
    expect(keys(resilience).sort()).toEqual(["fresh1.example", "fresh2.example"]);
  });

  it("a call cut by timeout.total (hung transport, and during a backoff) releases its host", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "d1.example": ["hang"], "d2.example": [503, 200] });
    const resilience = createResilience({
      clock,
      fetch: up.fetch,
      retry: { maxAttempts: 2, initialDelay: 5_000, jitter: "none" },
      timeout: { total: 500 },
      breaker: { maxHosts: 2 },
    });
    const calls = [resilience.fetch("https://d1.example/"), resilience.fetch("https://d2.example/")];
    for (const call of calls) call.catch(() => {});
    await turns();
    await clock.advance(1_000);
    const results = await Promise.allSettled(calls);
    expect(results[0]?.status).toBe("rejected");
    await clock.run(resilience.fetch("https://n1.example/"));
    await clock.run(resilience.fetch("https://n2.example/"));
    expect(keys(resilience).sort()).toEqual(["n1.example", "n2.example"]);
  });

  it("a held host is never evicted; once it settles, fresh hosts evict it", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "held.example": ["hang"] });
    const resilience = createResilience({ clock, fetch: up.fetch, retry: false, breaker: { maxHosts: 2 } });
    const held = resilience.fetch("https://held.example/");
    await turns();
    for (let i = 0; i < 5; i++) await clock.run(resilience.fetch(`https://other${i}.example/`));
    expect(keys(resilience)).toContain("held.example");
    expect(keys(resilience).length).toBeLessThanOrEqual(3);
    up.hung[0]?.answer(200);
    expect((await held).status).toBe(200);
    await clock.run(resilience.fetch("https://n1.example/"));
    await clock.run(resilience.fetch("https://n2.example/"));
    expect(keys(resilience).sort()).toEqual(["n1.example", "n2.example"]);
  });

  for (const hedge of [false, true]) {
    it(`a chain (${hedge ? "hedged: winner and aborted loser" : "moving on after a 503"}) releases both endpoints`, async () => {
      const clock = new TestClock(T0);
      const up = scripted({ "primary.example": [hedge ? "hang" : 503] });
      const resilience = createResilience({
        clock,
        fetch: up.fetch,
        retry: false,
        breaker: { maxHosts: 2 },
        fallback: fallback([
          {
            name: "gen",
            ...(hedge ? { hedge: { delay: 100 } } : {}),
            endpoints: [
              { name: "primary", url: "https://primary.example/x" },
              { name: "spare", url: "https://spare.example/x" },
            ],
          },
        ]),
      });
      const response = await clock.run(resilience.fetch("https://primary.example/x"));
      expect(response.status).toBe(200);
      await turns();
      await clock.run(resilience.fetch("https://n1.example/"));
      await clock.run(resilience.fetch("https://n2.example/"));
      expect(keys(resilience).sort()).toEqual(["n1.example", "n2.example"]);
    });
  }
});

/** Trips on one failure; three probes; two successes close. */
const THREE_PROBES: BreakerOptions = {
  failureThreshold: 1,
  successThreshold: 2,
  halfOpenMaxCalls: 3,
  timeout: 10_000,
  probeTimeout: 30_000,
  failureRate: undefined,
};

describe("a closed circuit and the answers of probes", () => {
  async function threeProbes() {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang", "hang", "hang"] });
    const resilience = createResilience({ clock, fetch: up.fetch, retry: false, breaker: THREE_PROBES });
    expect((await clock.run(resilience.fetch("https://api.example/"))).status).toBe(503);
    await clock.advance(10_000);
    const probes = [0, 1, 2].map(() => resilience.fetch("https://api.example/"));
    for (const p of probes) p.catch(() => {});
    await turns();
    expect(up.hung).toHaveLength(3);
    return { clock, up, resilience, probes };
  }

  it("two probes with successThreshold 2 both count: the circuit closes", async () => {
    const { up, resilience, probes } = await threeProbes();
    up.hung[0]?.answer(200);
    up.hung[1]?.answer(200);
    await Promise.all(probes.slice(0, 2));
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
    up.hung[2]?.answer(200);
    await probes[2];
  });

  it("the third probe (lease still valid) answers 503 after two successes closed the circuit: with failureThreshold 1 it re-opens", async () => {
    const { clock, up, resilience, probes } = await threeProbes();
    up.hung[0]?.answer(200);
    up.hung[1]?.answer(200);
    await Promise.all(probes.slice(0, 2));
    expect(resilience.health().breakers["api.example"]?.state).toBe("closed");
    await clock.advance(1_000); // well inside the 30 s lease
    up.hung[2]?.answer(503);
    expect((await probes[2])?.status).toBe(503);
    // A 5xx is a failure; this probe's lease never ran out, so its answer is not "late".
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
  });

  it("generic breaker (resilience.breaker(name).execute): a third probe failing after the close counts", async () => {
    const clock = new TestClock(T0);
    const resilience = createResilience({ clock, retry: false, fetch: scripted().fetch });
    const breaker = resilience.breaker("upscaler", THREE_PROBES);
    await errorOf(
      breaker.execute(() => {
        throw new Error("down");
      }),
    );
    expect(breaker.state).toBe("open");
    await clock.advance(10_000);
    const settles: ((ok: boolean) => void)[] = [];
    const runs = [0, 1, 2].map(() =>
      breaker.execute(
        () =>
          new Promise<string>((resolve, reject) => {
            settles.push((ok) => (ok ? resolve("ok") : reject(new Error("down"))));
          }),
      ),
    );
    for (const r of runs) r.catch(() => {});
    await turns();
    expect(settles).toHaveLength(3);
    settles[0]?.(true);
    settles[1]?.(true);
    await Promise.all(runs.slice(0, 2));
    expect(breaker.state).toBe("closed");
    settles[2]?.(false);
    await errorOf(runs[2] as Promise<string>);
    expect(breaker.state).toBe("open");
  });

  // Changed in the twenty-second session (edges-twentytwo-attack.test.ts): the lease's expiry is the probe's
  // failure whether or not anything looked at the breaker then, so the late 200 counts for nothing.
  it("a probe whose lease ran out unobserved, then answers 200, counts for nothing: its expiry re-opened the circuit", async () => {
    const clock = new TestClock(T0);
    const up = scripted({ "api.example": [503, "hang"] });
    const breaker: BreakerOptions = { ...THREE_PROBES, successThreshold: 1, halfOpenMaxCalls: 1, probeTimeout: 1_000 };
    const resilience = createResilience({ clock, fetch: up.fetch, retry: false, breaker });
    await clock.run(resilience.fetch("https://api.example/"));
    await clock.advance(10_000);
    const probe = resilience.fetch("https://api.example/");
    await turns();
    await clock.advance(2_000); // lease expired; nobody looked
    up.hung[0]?.answer(200);
    expect((await probe).status).toBe(200);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "open", reason: "probe lease expired" });
  });
});

describe("durableObjectStore: a refused probe's retryAt", () => {
  const BREAKER: BreakerOptions = {
    failureThreshold: 1,
    successThreshold: 1,
    timeout: 10_000,
    probeTimeout: 1_000,
    halfOpenMaxCalls: 1,
    failureRate: undefined,
  };
  function isolates(clock: TestClock, scripts: [Record<string, Step[]>, Record<string, Step[]>]) {
    const namespace = new FakeNamespace(clock);
    return scripts.map((script) => {
      const ctx = fakeCtx();
      const up = scripted(script);
      const resilience = createResilience({
        clock,
        retry: false,
        breaker: BREAKER,
        fetch: up.fetch as ResilienceOptions["fetch"],
        store: durableObjectStore(namespace, { ctx, clock }),
      });
      const events: string[] = [];
      resilience.on("breaker", (e) => events.push(`${e.from}→${e.to}`));
      return { up, resilience, events, settle: () => clock.run(ctx.settle()) };
    }) as [Isolate, Isolate];
  }
  type Isolate = {
    up: ReturnType<typeof scripted>;
    resilience: Resilience;
    events: string[];
    settle: () => Promise<void>;
  };

  it("open there: the refusal names the object's open-until (future), one breaker event", async () => {
    const clock = new TestClock(T0);
    const [x, y] = isolates(clock, [{ "api.example": [503, 503] }, { "api.example": [503] }]);
    await clock.run(x.resilience.fetch("https://api.example/"));
    await clock.run(y.resilience.fetch("https://api.example/"));
    await x.settle();
    await y.settle();
    await clock.advance(10_000);
    y.resilience.health();
    await y.settle();
    expect((await clock.run(x.resilience.fetch("https://api.example/"))).status).toBe(503);
    await x.settle();
    const openThere = clock.now() + 10_000;
    y.events.length = 0;
    const refused = await errorOf(clock.run(y.resilience.fetch("https://api.example/")));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    const retryAt = (refused as CircuitOpenError).retryAt;
    expect(retryAt).toBeGreaterThanOrEqual(clock.now());
    expect(retryAt).toBe(openThere);
    expect(y.events.filter((e) => e.endsWith("→open"))).toHaveLength(1);
    expect(y.up.sent).toHaveLength(1);
  });

  it("probe held elsewhere: the refusal names the local lease, no earlier than the other probe's lease", async () => {
    const clock = new TestClock(T0);
    const [x, y] = isolates(clock, [{ "api.example": [503, "hang"] }, { "api.example": [503] }]);
    await clock.run(x.resilience.fetch("https://api.example/"));
    await clock.run(y.resilience.fetch("https://api.example/"));
    await x.settle();
    await y.settle();
    await clock.advance(10_000);
    const xProbeAt = clock.now();
    const probe = x.resilience.fetch("https://api.example/");
    probe.catch(() => {});
    await turns();
    expect(x.up.hung).toHaveLength(1);
    await clock.advance(100);
    const refused = await errorOf(clock.run(y.resilience.fetch("https://api.example/")));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    const retryAt = (refused as CircuitOpenError).retryAt;
    expect(retryAt).toBeGreaterThan(clock.now());
    expect(retryAt).toBeGreaterThanOrEqual(xProbeAt + 1_000);
    expect(y.up.sent).toHaveLength(1);
    x.up.hung[0]?.answer(200);
    await probe;
    await x.settle();
  });
});
