/**
 * Outside-in attack on docs/breakers.md and docs/health-and-events.md, sentence by
 * sentence, on the paths the existing doc-sentence tests do not combine: a plain call,
 * a `Request` input, a fallback chain, a hedged chain, the ky client, the Worker proxy
 * (`resilientProxy` called in Node with an empty env, its health route read as JSON),
 * named breakers and two layers sharing a `memoryStore()`. Public entries only;
 * transports are stubs (hosts are not dialable) and time moves only on a TestClock.
 *
 * Defects pinned (first `it.fails` asserting the promise; since then 1 is fixed in the code
 * (a call holds its host's entry until it settles, backoffs included) and 2–4 in the
 * sentences, which now say what the code does; all plain `it`):
 * 1. "LRU-bounded by `breaker.maxHosts` (… a host with attempts in flight … is never the
 *    one evicted …: each call holds its host's breaker and bulkhead, so a host never has
 *    two)": only a bulkhead marks a host busy. Without one (the default), maxHosts 1 and
 *    failureThreshold 1, a call to a.example in flight is evicted by a call to b.example;
 *    a.example's 503 then reaches an orphaned breaker: health() does not list a.example
 *    and the next call to it is sent instead of refused (plain call).
 * 2. "a half-open one whose probe lease ran out unreported reads `open`" + "an open or
 *    half-open one shows … until when it stays open": after the lease (30 s) runs out,
 *    health() reads state "open" and status "unhealthy" but `openUntil: null` (plain call,
 *    failureThreshold 1, a probe that never answers).
 * 3. "`toJSON()`: `v`, `state`, `gen` …, with `gen` +1 on every transition" (and "each
 *    breaker counts its own `gen`"): a layer adopting, through `memoryStore()`, a host
 *    another layer opened four times emits one breaker event with gen 8 (the other's 7 + 1)
 *    where its own breaker was at gen 0.
 * 4. "`errorRate` over the last minute": the window is 12 buckets of 5 s, so a failed call
 *    at t = 4.999 s is gone from health().errorRate at t = 60.999 s, 56 s later (reads 0,
 *    not 1; the window is 55–60 s depending on where in its bucket a call fell).
 *
 * Held (plain `it`): a Retry-After hold (delay-seconds and HTTP-date, 429 with retry: false;
 * not on a 500) on a plain call, a chain (one breaker event until the hold, the next call
 * passes over the host), a hedged chain (the primary's late 503 holds its host while the
 * hedge serves; one fallback event naming the running hedge as `next`), the ky client (the
 * next call refused unsent; request events "response" then "error") and the proxy (its
 * health route shows the host open and the layer unhealthy; the next request answered 503
 * with Retry-After 3600, unsent); a 404 ends a run of failures through a chain and the
 * proxy; a caller's abort through ky and a client leaving the proxy are left out of totals,
 * the error rate and the breaker (request event "aborted"); gen +1 per transition on one
 * layer through open, half-open, a failed probe, a hold and a close; on() refuses
 * `__proto__`, `constructor`, `toString`, `hasOwnProperty` and a wrong case, listing the
 * eight names; a throwing breaker listener breaks neither a named breaker's `execute` nor
 * a plain call and is reported through console.error; one request event per hedged call
 * (attempts 2), the cut loser counted as no failure; a `Request` with a query key down a
 * hedged chain: totals 1/1, the failure listed under the chain's key without the query,
 * retry events keyed by each endpoint's host.
 *
 * Unclear, not pinned: "One per host (`url.host`, or `breaker.key(url)`)" does not say
 * which URL a degradation rewrite keys (the key is taken from the caller's URL before the
 * level rewrites its query, so a `breaker.key` reading the query keys the unrewritten one);
 * "holds the host open until then" says nothing of the 24 h cap (docs/retry.md does); what
 * a hedge's cut loser counts as (only a caller's abort is said to be neither); "An event
 * object is only built when someone listens" cannot be observed from outside.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  CircuitOpenError,
  createResilience,
  isCircuitOpenError,
  memoryStore,
  type RequestEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A transport whose answers are given per call by `answer(url, n)`; records each URL. */
function stub(answer: (url: string, n: number, signal: AbortSignal | undefined) => Response | Promise<Response>) {
  const urls: string[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    urls.push(url);
    return Promise.resolve().then(() => answer(url, urls.length, signal ?? undefined));
  };
  return { urls, fetch };
}

/** A promise settled from outside. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Never answers; rejects with the signal's reason when it aborts. */
function hanging(signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

const busy = (headers: Record<string, string> = {}, status = 503) => new Response("busy", { status, headers });
const ONE_HOUR = { "retry-after": "3600" };
const ctx = { waitUntil: () => {} };
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
async function turns(n = 10) {
  for (let i = 0; i < n; i++) await turn();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("Retry-After holds a host open, on every path (docs/breakers.md)", () => {
  // "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then."
  it("plain call: an HTTP-date Retry-After an hour away holds the host for that hour", async () => {
    const clock = new TestClock(0);
    const t = stub(() => busy({ "retry-after": "Thu, 01 Jan 1970 01:00:00 GMT" }));
    const r = createResilience({ clock, retry: false, fetch: t.fetch });
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    expect(r.health().breakers["api.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    expect(await rejection(clock.run(r.fetch("https://api.example/a")))).toBeInstanceOf(CircuitOpenError);
    expect(t.urls).toHaveLength(1);
  });

  it("plain call: a 429 with retry: false holds too; a 500 with the same header does not", async () => {
    const clock = new TestClock(0);
    const t = stub((url) => busy(ONE_HOUR, url.includes("four") ? 429 : 500));
    const r = createResilience({ clock, retry: false, fetch: t.fetch });
    await (await clock.run(r.fetch("https://four.example/a"))).text();
    await (await clock.run(r.fetch("https://five.example/a"))).text();
    expect(r.health().breakers["four.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    expect(r.health().breakers["five.example"]?.state).toBe("closed");
  });

  // "one answer that both trips the breaker and holds it open is one event, until the later time"
  it("chain: the endpoint's host is held, one breaker event, and the next call passes over it", async () => {
    const clock = new TestClock(0);
    const t = stub((url) => (url.startsWith("https://primary.example") ? busy(ONE_HOUR) : new Response("ok")));
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const breakers: BreakerEvent[] = [];
    const fallbacks: unknown[] = [];
    r.on("breaker", (e) => breakers.push(e));
    r.on("fallback", (e) => fallbacks.push(e));
    const first = await clock.run(r.fetch("https://primary.example/v1/x"));
    expect(await first.text()).toBe("ok");
    expect(breakers).toEqual([
      expect.objectContaining({ key: "primary.example", from: "closed", to: "open", openUntil: 3_600_000 }),
    ]);
    await clock.advance(60_000);
    expect(r.health().breakers["primary.example"]?.state).toBe("open");
    expect(await (await clock.run(r.fetch("https://primary.example/v1/y"))).text()).toBe("ok");
    expect(t.urls.filter((u) => u.startsWith("https://primary.example"))).toHaveLength(1);
    expect(fallbacks).toHaveLength(2);
  });

  it("hedged chain: the primary's late 503 with Retry-After holds its host while the hedge serves", async () => {
    const clock = new TestClock(0);
    const t = stub(async (url) => {
      if (url.startsWith("https://primary.example")) {
        return new Promise<Response>((resolve) => clock.setTimer(() => resolve(busy(ONE_HOUR)), 20));
      }
      return new Promise<Response>((resolve) => clock.setTimer(() => resolve(new Response("ok")), 30));
    });
    const r = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const fallbacks: unknown[] = [];
    r.on("fallback", (e) => fallbacks.push(e));
    const res = await clock.run(r.fetch("https://primary.example/v1/x"));
    expect(await res.text()).toBe("ok");
    expect(fallbacks).toEqual([{ chain: "c", from: "primary", reason: "status 503", next: "spare" }]);
    expect(r.health().breakers["primary.example"]).toMatchObject({ state: "open", openUntil: 20 + 3_600_000 });
  });

  it("ky client: the host is held, and the next ky call is refused with nothing sent", async () => {
    const clock = new TestClock(0);
    const t = stub(() => busy(ONE_HOUR));
    const resilience = createResilience({ clock, retry: false, fetch: t.fetch });
    const requests: RequestEvent[] = [];
    resilience.on("request", (e) => requests.push(e));
    const api = createClient({ resilience });
    const first = await rejection(clock.run(api.get("https://api.example/a").text()));
    expect((first as Error).name).toBe("HTTPError");
    expect(resilience.health()).toMatchObject({ status: "unhealthy" });
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    expect(isCircuitOpenError(await rejection(clock.run(api.get("https://api.example/b").text())))).toBe(true);
    expect(t.urls).toHaveLength(1);
    expect(requests.map((e) => e.outcome)).toEqual(["response", "error"]);
  });

  it("proxy (Node, empty env): the upstream's hold shows on the health route and the next request is answered 503 without being sent", async () => {
    const clock = new TestClock(0);
    const t = stub(() => busy(ONE_HOUR));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { clock, retry: false, fetch: t.fetch },
    });
    const first = await clock.run(proxy.fetch(new Request("https://worker.example/a"), {}, ctx));
    expect(first.status).toBe(503);
    await first.text();
    const health = await (await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx)).json();
    expect(health.status).toBe("unhealthy");
    expect(health.breakers["api.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    const second = await clock.run(proxy.fetch(new Request("https://worker.example/b"), {}, ctx));
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("3600");
    expect(t.urls).toHaveLength(1);
  });
});

describe("what counts as a failure, on every path (docs/breakers.md)", () => {
  // "other 4xx are the caller's fault and count as successes of the service"
  it("a 404 through a chain and through the proxy ends a run of failures", async () => {
    const clock = new TestClock(0);
    let n = 0;
    const t = stub(() => (++n % 2 === 1 ? busy() : new Response("no", { status: 404 })));
    const r = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: fallback([{ name: "c", endpoints: [{ name: "only", url: "https://api.example/v1" }] }]),
    });
    for (let i = 0; i < 30; i++) await (await clock.run(r.fetch("https://api.example/v1/x"))).text();
    expect(r.health().breakers["api.example"]).toMatchObject({ state: "closed", consecutiveFailures: 0 });

    let m = 0;
    const u = stub(() => (++m % 2 === 1 ? busy() : new Response("no", { status: 404 })));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { clock, retry: false, fetch: u.fetch },
    });
    for (let i = 0; i < 30; i++)
      await (await clock.run(proxy.fetch(new Request("https://w.example/x"), {}, ctx))).text();
    expect(u.urls).toHaveLength(30);
  });

  // "a caller's abort is neither" + debugInfo(): "a call its caller aborted is left out, as it is from the error rate"
  it("ky: a call its caller aborts is left out of totals and the error rate, and reported as aborted", async () => {
    const clock = new TestClock(0);
    const t = stub((_url, _n, signal) => hanging(signal));
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 }, fetch: t.fetch });
    const requests: RequestEvent[] = [];
    resilience.on("request", (e) => requests.push(e));
    const api = createClient({ resilience });
    const controller = new AbortController();
    const call = api.get("https://api.example/a", { signal: controller.signal }).text();
    await turns();
    controller.abort(new Error("gone"));
    await rejection(call);
    expect(resilience.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(resilience.health()).toMatchObject({ status: "healthy", errorRate: 0 });
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(requests.map((e) => e.outcome)).toEqual(["aborted"]);
  });

  it("proxy: a client that goes away is left out of totals and the breaker", async () => {
    const clock = new TestClock(0);
    const t = stub((_url, _n, signal) => hanging(signal));
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "https://api.example" }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 }, fetch: t.fetch },
    });
    const controller = new AbortController();
    const call = proxy.fetch(new Request("https://w.example/x", { signal: controller.signal }), {}, ctx);
    await turns();
    controller.abort(new Error("gone"));
    await rejection(call);
    const health = await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).json();
    expect(health).toMatchObject({ status: "healthy", errorRate: 0 });
    expect(health.breakers["api.example"]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });
});

describe("maxHosts eviction (docs/breakers.md)", () => {
  // "LRU-bounded by `breaker.maxHosts` (1000; a host with attempts in flight or queued in its
  // bulkhead is never the one evicted, so a burst can exceed it until they settle: each call
  // holds its host's breaker and bulkhead, so a host never has two)"
  it("without a bulkhead: a host with an attempt in flight is not evicted, so its failure opens its breaker", async () => {
    const clock = new TestClock(0);
    const gate = deferred<Response>();
    const t = stub((url) => (url.startsWith("https://a.example") ? gate.promise : new Response("ok")));
    const r = createResilience({ clock, retry: false, breaker: { maxHosts: 1, failureThreshold: 1 }, fetch: t.fetch });
    const inFlight = r.fetch("https://a.example/slow");
    await turns();
    await (await clock.run(r.fetch("https://b.example/x"))).text();
    gate.resolve(busy());
    await (await inFlight).text();
    // a.example's only answer was a 503 with failureThreshold 1: its breaker is open.
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    expect(await rejection(clock.run(r.fetch("https://a.example/next")))).toBeInstanceOf(CircuitOpenError);
  });

  // Added with the fix: a call holds its host's entry between attempts too ("waiting to retry").
  it("a host whose call waits to retry is not evicted either: the retry's failure reaches the breaker health() lists", async () => {
    const clock = new TestClock(0);
    const t = stub((url) => (url.startsWith("https://a.example") ? busy() : new Response("ok")));
    const r = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none" },
      breaker: { maxHosts: 1, failureThreshold: 2 },
      fetch: t.fetch,
    });
    const waiting = r.fetch("https://a.example/slow");
    await turns();
    await (await clock.run(r.fetch("https://b.example/x"))).text(); // during a.example's backoff
    await (await clock.run(waiting)).text();
    // Two failures in a row on one breaker: open, and listed.
    expect(r.health().breakers["a.example"]?.state).toBe("open");
    expect(await rejection(clock.run(r.fetch("https://a.example/next")))).toBeInstanceOf(CircuitOpenError);
  });
});

describe("health() state and openUntil (docs/health-and-events.md)", () => {
  // "a half-open one whose probe lease ran out unreported reads `open` (the next call re-opens it)"
  // + first "an open or half-open one shows the counts that opened it, the error that did, and until when it
  // stays open": `openUntil` was null here. The sentence now says so: "and an open one until when it stays open
  // (`openUntil`; `null` while half-open, and for one that reads `open` because a probe's lease ran out, until
  // the next call re-opens it for `timeout`)".
  it("a half-open breaker whose probe lease ran out reads open, `openUntil` null until the next call re-opens it", async () => {
    const clock = new TestClock(0);
    const t = stub((_url, n, signal) => (n === 1 ? busy() : hanging(signal)));
    const r = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 }, fetch: t.fetch });
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    await clock.advance(30_000);
    // The probe goes and never answers.
    void r.fetch("https://api.example/probe").catch(() => {});
    await turns();
    await clock.advance(30_000);
    const b = r.health().breakers["api.example"];
    expect(b?.state).toBe("open");
    expect(r.health().status).toBe("unhealthy");
    expect(b?.openUntil).toBeNull();
    // The next call re-opens it, for the breaker's `timeout` (30 s by default) from then.
    expect(await rejection(clock.run(r.fetch("https://api.example/next")))).toBeInstanceOf(CircuitOpenError);
    expect(r.health().breakers["api.example"]).toMatchObject({ state: "open", openUntil: clock.now() + 30_000 });
  });
});

describe("gen (docs/breakers.md)", () => {
  // "its state is plain versioned JSON (`toJSON()`: `v`, `state`, `gen` …, with `gen` +1 on every transition)"
  it("plain host: each breaker event's gen is the previous one + 1, and toJSON() ends on the last", async () => {
    const clock = new TestClock(0);
    let n = 0;
    const t = stub(() => (++n <= 1 ? busy() : n === 2 ? busy(ONE_HOUR) : new Response("ok")));
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: 1000 },
      fetch: t.fetch,
    });
    const events: BreakerEvent[] = [];
    r.on("breaker", (e) => events.push(e));
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    await clock.advance(1000);
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    await clock.advance(3_600_000);
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    expect(events.map((e) => `${e.from}>${e.to}`)).toEqual([
      "closed>open",
      "open>half_open",
      "half_open>open",
      "open>half_open",
      "half_open>closed",
    ]);
    expect(events.map((e) => e.gen)).toEqual([1, 2, 3, 4, 5]);
  });

  // First pinned against "`gen` +1 on every transition" and "each breaker counts its own `gen`"; the sentences
  // now say what the code does on purpose: "a breaker that adopts a shared store's state moves past the other
  // breaker's `gen`, so its own later transitions come after it".
  it("memoryStore: adopting a host another instance opened moves this instance's gen past the other's", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const t = stub(() => busy());
    const a = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, successThreshold: 1 },
      fetch: t.fetch,
    });
    const b = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1000, successThreshold: 1 },
      fetch: stub(() => new Response("ok")).fetch,
    });
    // b knows the host (gen 0), then a opens it three times over.
    await (await clock.run(b.fetch("https://api.example/a"))).text();
    for (let i = 0; i < 3; i++) {
      await (await clock.run(a.fetch("https://api.example/a"))).text();
      await clock.advance(1000);
    }
    await (await clock.run(a.fetch("https://api.example/a"))).text();
    const events: BreakerEvent[] = [];
    b.on("breaker", (e) => events.push(e));
    expect(b.health().breakers["api.example"]?.state).toBe("open");
    expect(events).toHaveLength(1);
    // a's breaker is at gen 7 (four openings, three half-opens): b's moves to 8.
    expect(events[0]?.gen).toBe(8);
  });
});

describe("events (docs/health-and-events.md)", () => {
  // "a name that is not one of the eight below (a typo) is a `TypeError` at once, which lists them"
  it("on() refuses names inherited from Object.prototype, listing the eight", () => {
    const r = createResilience({ clock: new TestClock(0) });
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "Retry"]) {
      let error: unknown;
      try {
        r.on(name as "retry", () => {});
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      for (const known of ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"]) {
        expect((error as Error).message).toContain(known);
      }
    }
  });

  // "A listener that throws is reported (`reportError` or `console.error`) and never breaks the request."
  it("a throwing breaker listener breaks neither a named breaker's execute nor a plain call", async () => {
    const clock = new TestClock(0);
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fetch: stub(() => busy()).fetch,
    });
    r.on("breaker", () => {
      throw new Error("listener");
    });
    const named = r.breaker("upscaler");
    await expect(named.execute(() => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(named.state).toBe("open");
    const res = await clock.run(r.fetch("https://api.example/a"));
    expect(res.status).toBe(503);
    expect(spy).toHaveBeenCalled();
  });

  // "`request` fires once per call the layer started, when it settles"
  it("request fires once per call through a hedged chain, with both attempts counted", async () => {
    const clock = new TestClock(0);
    const t = stub((url, _n, signal) =>
      url.startsWith("https://primary.example") ? hanging(signal) : new Response("ok"),
    );
    const r = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const requests: RequestEvent[] = [];
    r.on("request", (e) => requests.push(e));
    expect(await (await clock.run(r.fetch("https://primary.example/v1/x"))).text()).toBe("ok");
    await turns();
    expect(requests).toEqual([expect.objectContaining({ key: "c", status: 200, attempts: 2, outcome: "response" })]);
    // The loser the hedge cut is not the caller's abort: but it is not the host's failure either.
    expect(r.health().breakers["primary.example"]?.consecutiveFailures).toBe(0);
  });
});

describe("errorRate over the last minute (docs/health-and-events.md)", () => {
  // First pinned against "`errorRate` over the last minute" (a failure 56 s old no longer counted); the
  // sentence now says "(in twelve 5-second steps: a call counts for 55 to 60 seconds)".
  it("a failure counts for 55 to 60 s, by where in its 5 s step it fell", async () => {
    const clock = new TestClock(0);
    const r = createResilience({ clock, retry: false, fetch: stub(() => busy()).fetch });
    await clock.advance(4_999); // the last millisecond of the first step: counted for 55 s
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    await clock.advance(55_000);
    expect(r.health().errorRate).toBe(1);
    await clock.advance(1);
    expect(r.health().errorRate).toBe(0);
    // t = 60,000: the first millisecond of a step, counted for 60 s.
    await (await clock.run(r.fetch("https://api.example/a"))).text();
    await clock.advance(59_999);
    expect(r.health().errorRate).toBe(1);
    await clock.advance(1);
    expect(r.health().errorRate).toBe(0);
  });
});

describe("debugInfo() and retry events through a chain (docs/health-and-events.md)", () => {
  // "the last 50 failures (URLs without their query string, which may hold keys)";
  // "`retry` fires before each wait (`key`, `attempt`, `delay`, `reason`, `retryAfter`)"
  it("a Request down a hedged chain: failures listed without the query, retry events keyed by the endpoint's host", async () => {
    const clock = new TestClock(0);
    const t = stub(() => busy());
    const r = createResilience({
      clock,
      retry: { maxAttempts: 2 },
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 10 },
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const retries: { key: string; attempt: number; reason: string; retryAfter: boolean }[] = [];
    r.on("retry", (e) => retries.push(e));
    const res = await clock.run(r.fetch(new Request("https://primary.example/v1/x?key=sk-secret")));
    expect(res.status).toBe(503);
    await res.text();
    const info = r.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(JSON.stringify(info)).not.toContain("sk-secret");
    expect(info.recentErrors).toEqual([expect.objectContaining({ key: "c", status: 503 })]);
    expect(new Set(retries.map((e) => e.key))).toEqual(new Set(["primary.example", "spare.example"]));
    expect(retries.every((e) => e.attempt === 1 && e.reason === "status 503" && e.retryAfter === false)).toBe(true);
  });
});
