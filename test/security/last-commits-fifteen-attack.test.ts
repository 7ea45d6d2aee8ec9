/**
 * Outside-in attack on the two latest changes:
 * - f098afa, "a clock set back is noticed by each deadline and window at its
 *   first look" (docs/breakers.md "A clock set back"): the breaker's open
 *   spell re-anchored, probes out given up, views (`health()`, `retryAt`)
 *   applying the step first, shared stores;
 * - e47d24f, "a redirect's hop to a host whose breaker is open is refused; a
 *   Retry-After hold goes to the host that sent it" (docs/retry.md
 *   "Redirects").
 * Public entries only (`createResilience`, `memoryStore`, `fallback`,
 * `createClient` of ./ky, `resilientProxy`, `TestClock`), a user `fetch`
 * that answers by host (a.test, b.test…, no network), the library's own
 * redirect follower (`redirects: "library"`), a wall clock whose timers run
 * on a `TestClock` while its reading can be stepped back or ahead.
 *
 * Attacked: a day's step back before a look, with `health()`, `retryAt` and
 * events compared with what the next call meets; a step back then forward
 * again; a step back while half-open, a probe admitted after it and its
 * late answer; a `memoryStore` shared by two layers (and by one layer whose
 * host entry `maxHosts` evicted) across a step back; numbers in `health()`
 * after steps. Redirects: a → b with b open, a → c → b, a GET and a POST
 * through a fallback chain whose first endpoint redirects to an open host,
 * a POST 307 with a body, the retry loop and budget afterwards, `redirect`
 * / `request` / `breaker` events, a `Retry-After` hold at the end of a
 * redirect (which breaker, which store key, `maxHosts: 1`), the proxy's
 * answer and ky's error, `redirect: "manual"`, a custom `breaker.key`, a
 * store shared with a layer that opened the target, a half-open target.
 *
 * Defects pinned (first `it.fails` asserting the documented promise, on the code
 * they were written against; all fixed since, so plain `it`):
 * 1. A host opened before a day's step back, shared through a `memoryStore`, is refused for a day by a layer
 *    (another one, or the same one after `maxHosts` evicted the entry) that reads the store after the step.
 * 2. Half-open, clock set back, then a probe admitted with a fresh lease: the next look (`health()`) gives it up
 *    as "probe lease expired" and re-opens; its success, which closes the circuit without the look, is lost.
 * 3. A redirect hop to a host a shared store holds open is sent: the hop gate asks only this layer's own
 *    breakers, while a direct call to that host (and a chain's endpoint skip) reads the store and is refused.
 * 4. A redirect hop to a half-open host whose probe slots are all taken is sent, uncounted, while a direct call
 *    is refused with CircuitOpenError ("at most `halfOpenMaxCalls` probes in flight").
 *
 * Held (plain `it`): the re-anchor of an open breaker after a step back (one more spell, no day), with
 * `health().openUntil` and `CircuitOpenError.retryAt` agreeing and no `breaker` event for the re-anchor; a step
 * back then forward again; no NaN or negative count in `health()`; a hop to an open host refused with nothing
 * sent there, a `CircuitOpenError` naming it, the first host's breaker counting a success, no retry and no
 * budget spent; a → c → b refused at b; a chain's GET moves on, its POST stops; a POST 307's body never reaches
 * the open host; the `Retry-After` hold goes to (and is published for) the host that sent it, also with
 * `maxHosts: 1`; the proxy answers 502 (503 with `Retry-After` when this run was written: a refused later hop
 * is not "declined", the first upstream had the request); ky rejects with the `CircuitOpenError`;
 * `redirect: "manual"` is untouched; a custom `breaker.key` names the hop's breaker.
 *
 * Suspicious, not pinned (docs silent): the re-anchor of an open spell is not published to a store (the store
 * keeps the `openUntil` of before the step: the root of defect 1); a hop ignores the target's bulkhead; a hop to a
 * half-open host with free slots goes without taking a probe slot, and its answer counts for nothing there.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  CircuitOpenError,
  type Clock,
  createResilience,
  isCircuitOpenError,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { WallClock } from "../helpers/wall-clock.ts";

const SECOND = 1_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

type Answer = (url: URL, init: RequestInit | undefined) => Response | Promise<Response>;

/** A fetch answering by host, logging `METHOD host/path [body]` for each request that left. */
function hosts(table: Record<string, Answer>, log: string[]) {
  return (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const body = typeof init?.body === "string" ? ` ${init.body}` : "";
    log.push(`${method} ${url.host}${url.pathname}${body}`);
    const answer = table[url.host];
    if (!answer) return Promise.reject(new TypeError("fetch failed"));
    return Promise.resolve(answer(url, init));
  };
}

const redirectTo =
  (location: string, status = 302): Answer =>
  () =>
    new Response(null, { status, headers: { location } });
const status =
  (code: number, headers?: Record<string, string>): Answer =>
  () =>
    new Response("x", { status: code, ...(headers ? { headers } : {}) });

/** A call's outcome as text: the status, or the error's name and key. */
function outcome(clock: { run<T>(p: Promise<T>): Promise<T> }, call: Promise<Response>): Promise<string> {
  return clock.run(call).then(
    (r) => String(r.status),
    (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
  );
}

/** How long after `now` a call is refused, in s (0 when it is not). */
async function refusedFor(clock: WallClock, call: Promise<Response>): Promise<number> {
  try {
    await clock.run(call);
    return 0;
  } catch (error) {
    if (!(error instanceof CircuitOpenError)) throw error;
    return Math.round((error.retryAt - clock.now()) / SECOND);
  }
}

function layerOn(clock: Clock, table: Record<string, Answer>, log: string[], options: ResilienceOptions = {}) {
  return createResilience({
    clock,
    retry: false,
    redirects: "library",
    fetch: hosts(table, log),
    ...options,
  });
}

// ---------------------------------------------------------------------------------------------
describe("f098afa: a clock set back", () => {
  it("an open breaker, the clock set back a day: one more spell from the first look, views agree, no event", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const layer = layerOn(clock, { "b.test": () => new Response("x", { status: code }) }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
    });
    const events: BreakerEvent[] = [];
    layer.on("breaker", (e) => events.push(e));
    await outcome(clock, layer.fetch("http://b.test/"));
    expect(events.map((e) => e.to)).toEqual(["open"]);
    await clock.advance(5 * SECOND);
    clock.step(-DAY);
    const health = layer.health().breakers["b.test"];
    expect(health?.state).toBe("open");
    // "an open spell then waits its own length again from now"
    expect((health?.openUntil ?? 0) - clock.now()).toBe(30 * SECOND);
    expect(await refusedFor(clock, layer.fetch("http://b.test/"))).toBe(30);
    // The re-anchor is no transition: no `breaker` event.
    expect(events.map((e) => e.to)).toEqual(["open"]);
    await clock.advance(30 * SECOND);
    code = 200;
    expect(await outcome(clock, layer.fetch("http://b.test/"))).toBe("200");
  });

  it("a step back then forward again: the host is probed once its timeout really passed", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const layer = layerOn(clock, { "b.test": () => new Response("x", { status: code }) }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
    });
    await outcome(clock, layer.fetch("http://b.test/"));
    clock.step(-DAY);
    expect(layer.health().breakers["b.test"]?.state).toBe("open"); // first look: re-anchored
    clock.step(DAY); // NTP puts it right: counts as time that passed
    expect(layer.health().breakers["b.test"]?.state).toBe("half_open");
    code = 200;
    expect(await outcome(clock, layer.fetch("http://b.test/"))).toBe("200");
  });

  it("health() after steps back and ahead: no NaN, no negative count or rate", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "b.test": status(503), "c.test": status(200) }, log, {
      breaker: { failureThreshold: 2, failureRate: 0.5, minimumCalls: 2, timeout: 30 * SECOND },
    });
    for (const step of [0, -DAY, 3 * SECOND, -5 * SECOND, DAY, -1]) {
      clock.step(step);
      await outcome(clock, layer.fetch("http://b.test/"));
      await outcome(clock, layer.fetch("http://c.test/"));
      const h = layer.health();
      expect(Number.isFinite(h.errorRate) && h.errorRate >= 0 && h.errorRate <= 1).toBe(true);
      for (const b of Object.values(h.breakers)) {
        expect(b.failureCount).toBeGreaterThanOrEqual(0);
        expect(b.consecutiveFailures).toBeGreaterThanOrEqual(0);
        if (b.failureRate !== null) expect(b.failureRate >= 0 && b.failureRate <= 1).toBe(true);
        if (b.openUntil !== null) expect(Number.isFinite(b.openUntil)).toBe(true);
      }
      expect(Number.isFinite(h.budget?.tokens)).toBe(true);
    }
  });

  // docs/breakers.md "A clock set back": "(… the stores' reads and writes) are instants on the layer's
  // clock … each one notices the step at its first look after it … So a step back of a day costs a host
  // at most one more spell, never a day." The store keeps the snapshot of before the step (open until
  // T0 + 30 s); a breaker that adopts it after the step dates the change `now` (adopt's
  // `changedAt: min(remote.changedAt, now)`), so no re-anchor ever happens: open for a day + 30 s.
  // src/policies/breaker-state.ts `adopt` (the remote branch), src/policies/breaker-registry.ts `sync`.
  it("1a. memoryStore, one layer, maxHosts evicted the host: after a day's step back it is refused for a day", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const layer = layerOn(clock, { "b.test": () => new Response("x", { status: code }), "c.test": status(200) }, log, {
      store: memoryStore(),
      breaker: { failureThreshold: 1, timeout: 30 * SECOND, maxHosts: 1 },
    });
    await outcome(clock, layer.fetch("http://b.test/")); // opens b.test, published to the store
    await outcome(clock, layer.fetch("http://c.test/")); // maxHosts: 1, b.test's entry goes
    clock.step(-DAY);
    await clock.advance(31 * SECOND);
    code = 200;
    // At most one more spell (30 s) from the first look after the step; observed: 86,399 s.
    expect(await refusedFor(clock, layer.fetch("http://b.test/"))).toBeLessThanOrEqual(30);
  });

  it("1b. memoryStore shared by two layers: the one that reads the store after a day's step back is shut out for a day", async () => {
    const clock = new WallClock(T0);
    const log: string[] = [];
    let code = 503;
    const store = memoryStore();
    const options: ResilienceOptions = { store, breaker: { failureThreshold: 1, timeout: 30 * SECOND } };
    const table = { "b.test": () => new Response("x", { status: code }) };
    const images = layerOn(clock, table, log, options);
    const videos = layerOn(clock, table, log, options);
    await outcome(clock, images.fetch("http://b.test/")); // images opens b.test
    clock.step(-DAY);
    await clock.advance(SECOND);
    code = 200;
    // The layer that opened it: one more spell from its first look (held).
    expect(await refusedFor(clock, images.fetch("http://b.test/"))).toBe(30);
    // The other layer, same process, same clock, same store: observed 86,399 s.
    expect(await refusedFor(clock, videos.fetch("http://b.test/"))).toBeLessThanOrEqual(30);
  });

  it("half-open, clock set back, a probe admitted after the step and no look before its answer: the probes close", async () => {
    const { layer, clock, answer, events } = await halfOpenAfterStepBack();
    const probe = layer.fetch("http://b.test/p2");
    await clock.advance(1);
    answer();
    expect(await outcome(clock, probe)).toBe("200");
    expect(layer.health().breakers["b.test"]?.state).toBe("closed");
    expect(events.at(-1)).toBe("half_open->closed");
  });

  // docs/breakers.md "A clock set back": "the probes out are given up as expired leases are (the circuit
  // re-opens for `timeout`)". This probe was not out at the step: it was admitted after it, with a lease of
  // `probeTimeout` from the new now. Yet any look while it runs (here a `health()` poll, as a dashboard
  // makes) sees `now < changedAt` and gives it up as "probe lease expired": the circuit re-opens and the
  // probe's success counts for nothing, though without the look (test above) it closes the circuit. A view
  // decides the breaker's fate. src/policies/breaker-state.ts `tick` (`expiry <= now || setBack` for every
  // lease, also those granted after the step; the half-open state's `changedAt` is never moved back).
  it("2. half-open, clock set back, a probe admitted after the step: a health() look while it runs gives it up", async () => {
    const { layer, clock, answer, events } = await halfOpenAfterStepBack();
    const probe = layer.fetch("http://b.test/p2");
    await clock.advance(1);
    layer.health(); // a look, nothing else
    answer();
    expect(await outcome(clock, probe)).toBe("200");
    expect(events).not.toContain("half_open->open probe lease expired");
    expect(layer.health().breakers["b.test"]?.state).toBe("closed");
  });
});

/** b.test open, then half-open with one success of two (no probe out), then the clock set back a minute. */
async function halfOpenAfterStepBack() {
  const clock = new WallClock(T0);
  const log: string[] = [];
  let mode: "fail" | "ok" | "held" = "fail";
  let answer: () => void = () => {};
  const layer = layerOn(
    clock,
    {
      "b.test": () => {
        if (mode === "fail") return new Response("x", { status: 503 });
        if (mode === "ok") return new Response("ok");
        return new Promise<Response>((resolve) => {
          answer = () => resolve(new Response("ok"));
        });
      },
    },
    log,
    { breaker: { failureThreshold: 1, timeout: 30 * SECOND, successThreshold: 2, probeTimeout: 30 * SECOND } },
  );
  const events: string[] = [];
  layer.on("breaker", (e) =>
    events.push(`${e.from}->${e.to}${e.to === "open" && e.from !== "closed" ? ` ${e.reason}` : ""}`),
  );
  await outcome(clock, layer.fetch("http://b.test/"));
  await clock.advance(31 * SECOND);
  mode = "ok";
  expect(await outcome(clock, layer.fetch("http://b.test/p1"))).toBe("200");
  expect(layer.health().breakers["b.test"]?.state).toBe("half_open");
  clock.step(-60 * SECOND);
  mode = "held";
  return { layer, clock, answer: () => answer(), events };
}

// ---------------------------------------------------------------------------------------------
describe("e47d24f: a redirect's hop to an open host; a Retry-After hold on the host that sent it", () => {
  /** b.test opened by a direct 503 (threshold 1). */
  async function withOpenB(options: ResilienceOptions = {}, table: Record<string, Answer> = {}) {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(clock, { "a.test": redirectTo("http://b.test/x"), "b.test": status(503), ...table }, log, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      ...options,
    });
    expect(await outcome(clock, layer.fetch("http://b.test/open"))).toBe("503");
    log.length = 0;
    return { clock, log, layer };
  }

  it("a → b with b open: CircuitOpenError naming b, nothing sent to b, a's success, no retry, no budget spent", async () => {
    const { clock, log, layer } = await withOpenB({ retry: { maxAttempts: 3, initialDelay: 0, jitter: "none" } });
    const seen: string[] = [];
    layer.on("redirect", (e) => seen.push(`redirect ${e.from} -> ${e.to}`));
    layer.on("retry", () => seen.push("retry"));
    layer.on("breaker", (e) => seen.push(`breaker ${e.key}`));
    const denied = layer.health().budget?.retriesDenied;
    let error: unknown;
    await clock.run(layer.fetch("http://a.test/")).catch((e: unknown) => {
      error = e;
    });
    expect(isCircuitOpenError(error) && error.key).toBe("b.test");
    expect((error as CircuitOpenError).retryAt).toBe(T0 + 30 * SECOND);
    expect(log).toEqual(["GET a.test/"]);
    expect(seen).toEqual(["redirect http://a.test/ -> http://b.test/x"]);
    const a = layer.health().breakers["a.test"];
    expect([a?.state, a?.consecutiveFailures, a?.lastFailureTime]).toEqual(["closed", 0, null]);
    expect(layer.health().budget?.retriesDenied).toBe(denied);
  });

  it("a → c → b with b open: refused at b, c reached", async () => {
    const { clock, log, layer } = await withOpenB(
      {},
      { "a.test": redirectTo("http://c.test/1"), "c.test": redirectTo("http://b.test/2") },
    );
    expect(await outcome(clock, layer.fetch("http://a.test/"))).toBe("CircuitOpenError b.test");
    expect(log).toEqual(["GET a.test/", "GET c.test/1"]);
  });

  it("a POST 307 to an open host: its body never reaches it", async () => {
    const { clock, log, layer } = await withOpenB({}, { "a.test": redirectTo("http://b.test/x", 307) });
    expect(await outcome(clock, layer.fetch("http://a.test/", { method: "POST", body: "payload" }))).toBe(
      "CircuitOpenError b.test",
    );
    expect(log).toEqual(["POST a.test/ payload"]);
  });

  it("a chain whose first endpoint redirects to an open host: a GET moves on, a POST stops", async () => {
    const { clock, log, layer } = await withOpenB(
      {
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "e1", url: "http://a.test/v1" },
              { name: "e2", url: "http://d.test/v1" },
            ],
          },
        ]),
      },
      { "d.test": status(200) },
    );
    expect(await outcome(clock, layer.fetch("http://a.test/v1/jobs"))).toBe("200");
    expect(log).toEqual(["GET a.test/v1/jobs", "GET d.test/v1/jobs"]);
    log.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test/v1/jobs", { method: "POST", body: "p" }))).toBe(
      "FallbackExhaustedError",
    );
    expect(log).toEqual(["POST a.test/v1/jobs p"]);
  });

  it("redirect: 'manual' goes untouched: the 3xx is the answer, the open target is not consulted", async () => {
    const { clock, layer } = await withOpenB();
    expect(await outcome(clock, layer.fetch("http://a.test/", { redirect: "manual" }))).toBe("302");
  });

  it("a custom breaker.key names the hop's breaker", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const layer = layerOn(
      clock,
      {
        "a.test": (url) =>
          url.pathname === "/slow"
            ? new Response("x", { status: 503 })
            : redirectTo("http://a.test/slow")(url, undefined),
      },
      log,
      { breaker: { failureThreshold: 1, key: (url) => `${url.host}${url.pathname}` } },
    );
    expect(await outcome(clock, layer.fetch("http://a.test/slow"))).toBe("503");
    log.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test/go"))).toBe("CircuitOpenError a.test/slow");
    expect(log).toEqual(["GET a.test/go"]);
  });

  it("a Retry-After hold at the end of a redirect holds (and publishes) the host that sent it, maxHosts: 1 too", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const store = memoryStore();
    const layer = layerOn(
      clock,
      { "a.test": redirectTo("http://b.test/x"), "b.test": status(503, { "retry-after": "3600" }) },
      log,
      { store, retry: { maxRetryAfter: 10 * SECOND }, breaker: { failureThreshold: 5, maxHosts: 1 } },
    );
    const events: BreakerEvent[] = [];
    layer.on("breaker", (e) => events.push(e));
    expect(await outcome(clock, layer.fetch("http://a.test/"))).toBe("503");
    expect(events.map((e) => `${e.key} ${e.to}`)).toEqual(["b.test open"]);
    expect(store.peek("b.test", clock.now())?.openUntil).toBe(T0 + 3_600 * SECOND);
    expect(store.peek("a.test", clock.now())).toBeUndefined();
    // Closed and past maxHosts (b.test's hold took the room): evicted by its own last call since the twenty-ninth
    // session (it stayed until a new host came); the held b.test stays.
    expect(layer.health().breakers["a.test"]).toBeUndefined();
    expect(await outcome(clock, layer.fetch("http://b.test/"))).toBe("CircuitOpenError b.test");
  });

  it("the proxy answers a refused hop 502 (the first upstream had the request); ky rejects with the CircuitOpenError", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    const table: Record<string, Answer> = {
      "a.test": (url) => new Response(null, { status: 307, headers: { location: `http://b.test${url.pathname}` } }),
      "b.test": status(503, { "retry-after": "3600" }),
    };
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "http://a.test" }],
      resilience: { clock, retry: { maxRetryAfter: 5 * SECOND }, redirects: "library", fetch: hosts(table, log) },
    });
    const ctx = { waitUntil: () => {} };
    // The target's own 503 after the redirect: the proxy's 502 too (the first upstream had the request).
    expect((await clock.run(proxy.fetch(new Request("https://p.example/one"), {}, ctx))).status).toBe(502);
    log.length = 0;
    const refused = await clock.run(proxy.fetch(new Request("https://p.example/two"), {}, ctx));
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([502, null]);
    expect(log).toEqual(["GET a.test/two"]);
    const layer = layerOn(clock, table, log, { retry: { maxRetryAfter: 5 * SECOND } });
    await outcome(clock, layer.fetch("http://a.test/x"));
    log.length = 0;
    const api = createClient({ resilience: layer });
    const error = await clock.run(api.get("http://a.test/k").text()).catch((e: unknown) => e);
    expect(isCircuitOpenError(error) && error.key).toBe("b.test");
    expect(log).toEqual(["GET a.test/k"]);
  });

  // docs/retry.md "Redirects": "A hop to a host whose breaker is open is refused as a call to it would be,
  // with a `CircuitOpenError` naming that host and nothing sent there". docs/breakers.md "Sharing state":
  // a host another layer opened is open here too (`images` / `videos` sharing a `memoryStore`). A direct
  // call from the second layer is refused (the registry syncs with the store on `entry()`, and a chain's
  // endpoint skip reads the store too), but the hop gate asks only `registry.peek(key)`: no entry here,
  // or an entry not synced, and the hop goes. src/http/send/send-attempt.ts `admitHop`.
  it("3. a hop to a host a shared store holds open is sent (a direct call to it is refused)", async () => {
    const clock = new TestClock(T0);
    const store = memoryStore();
    const log: string[] = [];
    const table = { "a.test": redirectTo("http://b.test/x"), "b.test": status(503) };
    const options: ResilienceOptions = { store, breaker: { failureThreshold: 1, timeout: 30 * SECOND } };
    const images = layerOn(clock, table, log, options);
    const videos = layerOn(clock, table, log, options);
    expect(await outcome(clock, images.fetch("http://b.test/"))).toBe("503"); // images opens b.test
    log.length = 0;
    expect(await outcome(clock, videos.fetch("http://b.test/direct"))).toBe("CircuitOpenError b.test"); // held
    expect(log).toEqual([]);
    const third = layerOn(clock, table, log, options);
    expect(await outcome(clock, third.fetch("http://a.test/"))).toBe("CircuitOpenError b.test"); // observed: 503
    expect(log).toEqual(["GET a.test/"]); // observed: b.test/x was sent
  });

  // docs/breakers.md: "After `timeout` (30 s) it is HALF_OPEN: at most `halfOpenMaxCalls` (3) probes in
  // flight". docs/retry.md "Redirects": a hop is "refused as a call to it would be". With its one probe
  // slot taken, a direct call to b.test is refused (`CircuitOpenError`: "circuit for "b.test" is open
  // until …"), but a hop there is sent, takes no slot, and its answer is counted on a.test's breaker
  // only: a recovering host gets every redirect's traffic. The gate asks `isOpen()`, not `tryAcquire()`.
  // src/http/send/send-attempt.ts `admitHop`.
  it("4. a hop to a half-open host whose probe slots are all taken is sent (a direct call is refused)", async () => {
    const clock = new TestClock(T0);
    const log: string[] = [];
    let mode: "fail" | "held" | "ok" = "fail";
    let answer: () => void = () => {};
    const layer = layerOn(
      clock,
      {
        "a.test": redirectTo("http://b.test/x"),
        "b.test": () => {
          if (mode === "fail") return new Response("x", { status: 503 });
          if (mode === "ok") return new Response("ok");
          return new Promise<Response>((resolve) => {
            answer = () => resolve(new Response("ok"));
          });
        },
      },
      log,
      { breaker: { failureThreshold: 1, timeout: SECOND, halfOpenMaxCalls: 1 } },
    );
    await outcome(clock, layer.fetch("http://b.test/"));
    await clock.advance(SECOND + 1);
    mode = "held";
    const probe = layer.fetch("http://b.test/probe");
    await clock.advance(1);
    mode = "ok";
    log.length = 0;
    expect(await outcome(clock, layer.fetch("http://b.test/direct"))).toBe("CircuitOpenError b.test"); // held
    const hop = await outcome(clock, layer.fetch("http://a.test/"));
    answer();
    await clock.run(probe);
    expect([hop, log]).toEqual(["CircuitOpenError b.test", ["GET a.test/"]]); // observed: 200, b.test/x sent
  });
});
