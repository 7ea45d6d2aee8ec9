/**
 * Outside-in attack on docs/breakers.md (the state machine, its numbers, "A clock set back", "Shared breaker
 * state"), the breaker rows of docs/options.md and the README, and the JSDoc of `BreakerOptions`,
 * `CircuitOpenError`, `resilience.breaker(name)` and `BreakerEvent`, on every path a sentence applies to, counted
 * by what the servers received.
 *
 * Docs:
 * - docs/breakers.md: "CLOSED → OPEN when `failureThreshold` (12) attempts in a row failed, or when `failureRate`
 *   (0.5) of at least `minimumCalls` (100) attempts inside `timeWindow` … failed, … both are judged as a failure is
 *   counted, so a success never opens a circuit"; "OPEN fails fast with `CircuitOpenError` and sends nothing. After
 *   `timeout` (30 s) it is HALF_OPEN: at most `halfOpenMaxCalls` (3) probes in flight, each a lease that expires
 *   after `probeTimeout` (30 s) … if it answers after its lease ran out, that answer counts for nothing: the expiry
 *   counts as the failure, and re-opens the circuit for `timeout` at the first look after it (a call, the late
 *   answer itself; a `state` or `health()` read shows it open)"; "`successThreshold` (2) successes close"; "A 429/503
 *   whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then"; "One per host (`url.host`, or
 *   `breaker.key(url)`), created on first use and LRU-bounded by `breaker.maxHosts` (… a burst can exceed it until
 *   they settle, and the last call out of each host past the bound evicts it unless its breaker is open or half-open
 *   (that one goes when a new host needs the room) …)"; "A host opened by another layer through a shared store is
 *   read when the retry leaves: still open then, the retry is refused and the call settles the same way; closed
 *   again by then, it goes"; "A clock set back": "each one notices the step at its first look after it …: an open
 *   spell then waits its own length again from now …, the probes out are given up as expired leases are … So a step
 *   back of a day costs a host at most one more spell, never a day; a step back shorter than the time since the last
 *   change lengthens a wait by the step at most. A step ahead (a laptop that slept) counts as time that passed. A
 *   `clock` you pass is treated the same way"; docs/cloudflare.md table row "none / `memoryStore()` …
 *   `halfOpenMaxCalls` per layer"; docs/fallback.md "so does one half-open with every probe slot taken"; docs/retry.md
 *   redirects ("a hop to a half-open host with a free slot takes it, as that host's probe"); docs/degradation.md "The
 *   breaker key … is taken from the URL the caller asked for, before the rewrite".
 * - JSDoc: `CircuitOpenError.retryAt` ("for a half-open one whose probe slots are all taken, the earliest probe
 *   lease's expiry"), `BreakerEvent.reason` ("failure rate 0.60 over 20 calls (last: …)"), `resilience.breaker`
 *   ("created on first use with `options` over the instance's `breaker` options"), `BreakerOptions.maxHosts`,
 *   `BreakerOptions.key` ("the URL the caller asked for, before a degradation rewrite changes its query").
 *
 * How: `createResilience`, `memoryStore`, `isCircuitOpenError` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts) that answer by path or hold a request until the test answers
 * it; time only on a TestClock, or on a clock of the test's own over a TestClock for a step back (docs: "A `clock`
 * you pass is treated the same way").
 *
 * Paths: plain call, `Request` input (POST), fallback chain (a half-open endpoint with its slot taken passed over),
 * redirect followed by the library (hops to a half-open host), degradation rewrite (query rule, key from the
 * query), ky client, `resilientProxy` (503 + Retry-After for refused requests, health route), `execute` and a named
 * breaker, two layers sharing `memoryStore()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; 1 fixed in the fiftieth session, 2 corrected in docs/breakers.md, so plain `it`):
 * 1. docs/breakers.md "A clock set back": "a step back shorter than the time since the last change lengthens a wait
 *    by the step at most". Observed: a half-open breaker (`successThreshold: 2`, `halfOpenMaxCalls: 1`) whose first
 *    probe succeeded at T (the half-open began then), whose second probe leaves at T + 10 s: the clock set back 5 s
 *    at T + 11 s (6 s after the last change) gives that probe up as an expired lease: its 200 counts for nothing,
 *    the circuit re-opens for 30 s ("probe lease expired"), and the next call is refused where it should go to a
 *    closed host. Any step back longer than the time since a probe was granted (by 3 ms: `halfOpenMaxCalls`) gives
 *    that probe up, however short the step and however long ago the last change: `leaseOver`
 *    (src/policies/breaker-state.ts) takes a lease ending more than `probeTimeout + halfOpenMaxCalls` ms ahead for
 *    one granted before a set back, where an open spell is judged against `changedAt` (`setBack`). Plain call (1a)
 *    and a named breaker's `execute` (1b).
 * 2. docs/breakers.md "A host opened by another layer through a shared store is read when the retry leaves: still
 *    open then, the retry is refused and the call settles the same way; closed again by then, it goes."
 *    Observed: two layers on one `memoryStore()`; layer one's call waits 10 s to retry after a 503; layer two opens
 *    the host (timeout 1 s) and closes it again 1 s later. With nothing else read, layer one's retry goes at 10 s
 *    and the call resolves 200 (held below). One `health()` read by layer one while the host is open (a dashboard
 *    poll; docs/health-and-events.md says it "reads what the store says about each host it lists (as the next call
 *    would)") ends the wait at once: the call settles with its 503 and the retry is never sent, though the host
 *    was closed again when it would have left. `health()` merges the store's snapshot (`BreakerRegistry.sync` in
 *    src/http/health.ts), the merge is a transition of this layer's breaker, and its `onChange` wakes every wait on
 *    the host (`wakeAll(entry.waiting)`, src/policies/breaker-registry.ts `#create`); another call to the host in
 *    layer one meanwhile (which it refuses) does the same.
 *
 * Held (plain `it`):
 * - Rate rule with ten calls at once (`failureThreshold` out of the way, `minimumCalls: 10`): five 503s then five
 *   200s leave it closed at 10 attempts and 50% (a success never opens), the 11th attempt (a 503) opens it with
 *   "failure rate 0.55 over 11 calls (last: status 503)", `health()` failureCount 6, failureRate 6/11; the 12th call
 *   is refused unsent. The server received exactly 11.
 * - Half-open, many calls at once: through `resilientProxy` eight requests send three probes (`halfOpenMaxCalls`
 *   3), the five others answered 503 with `Retry-After: 30` (the first lease's expiry), nothing sent; two 200s close
 *   it ("2 successful probes"), as the health route says. Through a followed redirect (five calls to A, each
 *   redirected to half-open B with two slots): B receives two hops, three calls reject with B's `CircuitOpenError`
 *   (`afterRedirect`), A's five attempts count as successes; B's two 200s close it. Through a chain: a half-open
 *   endpoint with one slot takes one of four calls, the three others pass it over ("circuit open") to the next.
 *   Through the ky client: one probe, two `CircuitOpenError`s unwrapped with `retryAt` at the lease's expiry. Through
 *   `execute` behind a named breaker: the second run is refused unrun.
 * - Two layers on one `memoryStore()`: each probes on its own (one probe each with `halfOpenMaxCalls: 1`: the
 *   server receives two); without a read in between, a retry waiting out another layer's open spell goes once the
 *   host closed again, and is refused (settling with its 503) while it is still open.
 * - `Retry-After` on a POST `Request`: 60 s (equal to `maxRetryAfter`) is slept through and holds nothing; 61 s is
 *   not retried and holds the host 61 s ("Retry-After 61 s on status 503"), the next call refused unsent with that
 *   `retryAt`, sent at 61 s.
 * - `maxHosts: 4`, twelve keys at once (`breaker.key` by path): twelve breakers during the burst, four once it
 *   settled (three open ones and the last closed one out); a new key evicts the oldest open one, which is then
 *   sent again.
 * - Clock far forward (a day) with two probes out: `health()` reads open, unhealthy, `openUntil` null; the first
 *   late 200 re-opens it for 30 s ("probe lease expired"), the second changes nothing; refused until then.
 * - A step back shorter than the time since the last change on an open spell lengthens its wait by the step only
 *   (`retryAt` unchanged on the layer's clock).
 * - Degradation rewrite at `low` (query `model=premium` → `basic`): the answer counts against the caller's key
 *   (`premium`), and its long `Retry-After` holds that key.
 *
 * Docs-silent (not pinned):
 * - 408 and 425 are retried by default yet count as successes of the host ("other 4xx"): a host answering 408 to
 *   everything is never opened, and in half-open one call closes the circuit by itself (its first attempt's 408 is
 *   one successful probe, its retry's 408 the second).
 * - A `breaker.isFailure` that declines an error counts that attempt as a success, not as neither: with one that
 *   declines `TimeoutError`, a probe that timed out closes the circuit ("1 successful probe").
 * - ky's own `timeout` aborts the layer's call as the caller's signal does: a host that hangs behind it never counts
 *   (docs/retry.md says to use the layer's timeouts, not why).
 * - `timeout.attempt` equal to `timeout.total`: the first attempt's hang is cut by the total deadline (their common
 *   timer fires as the deadline), so it counts as neither and the host never opens.
 * - A `breaker.key` that returns "" (or throws) for a redirect's target URL fails the hop with a `TypeError` that is
 *   taken as a network error: retried, and counted against the first host's breaker (three failures per call), which
 *   opens though that host answered every attempt (its 302).
 * - A merge of a store's open snapshot by `health()` fires a `breaker` event with no call behind it (the events
 *   section says a change fires "when a call makes it").
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  type CircuitOpenError,
  type Clock,
  createResilience,
  isCircuitOpenError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const START = 1_000_000;
const a = httpUpstream();
const b = httpUpstream();

beforeAll(async () => {
  await Promise.all([a.start(), b.start()]);
});
afterAll(() => {
  a.stop();
  b.stop();
});
beforeEach(() => {
  a.reset();
  b.reset();
});

/** Requests held by the server until the test answers them. */
const held: Hit[] = [];
beforeEach(() => {
  held.length = 0;
});

/** Answers by path: `/503`, `/429`, `/408`, `/ok`, `/ra/<s>/<status>` (with Retry-After), `/r?to=…` (302); anything else is held. */
function route(hit: Hit): void {
  const path = hit.path.split("?")[0] ?? "";
  const ra = /^\/ra\/(\d+)\/(\d+)$/.exec(path);
  if (ra) {
    hit.res.writeHead(Number(ra[2]), { "retry-after": ra[1] as string });
    hit.res.end("busy");
    return;
  }
  if (path === "/r") {
    hit.res.writeHead(302, { location: new URL(hit.path, "http://x").searchParams.get("to") ?? "/" });
    hit.res.end();
    return;
  }
  const status = { "/503": 503, "/429": 429, "/408": 408, "/ok": 200 }[path];
  if (status !== undefined) {
    hit.res.writeHead(status);
    hit.res.end(String(status));
    return;
  }
  held.push(hit);
}

function answer(hit: Hit, status = 200): void {
  hit.res.writeHead(status);
  hit.res.end(String(status));
}

/** Real turns until `done()` holds (I/O on 127.0.0.1 only: no clock moves). */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!done()) throw new Error(`never: ${what}`);
}

function breakerEvents(layer: Resilience): BreakerEvent[] {
  const seen: BreakerEvent[] = [];
  layer.on("breaker", (event) => void seen.push(event));
  return seen;
}

/** A clock the test can set back: a TestClock's time minus what `back` took off (timers run on the TestClock). */
function settableClock(start: number): { test: TestClock; clock: Clock; back: (ms: number) => void } {
  const test = new TestClock(start);
  let offset = 0;
  return {
    test,
    clock: { now: () => test.now() + offset, setTimer: (fn, ms) => test.setTimer(fn, ms) },
    back: (ms) => {
      offset -= ms;
    },
  };
}

/** Settles each promise as it comes, counting them. */
function tracked<T>(promises: Promise<T>[]): { settled: () => number; results: Promise<PromiseSettledResult<T>[]> } {
  let count = 0;
  for (const p of promises)
    p.then(
      () => count++,
      () => count++,
    );
  return { settled: () => count, results: Promise.allSettled(promises) };
}

describe("1. a clock set back less than the time since the last change (defect)", () => {
  it("1a. plain call: the second probe, granted 1 s before a 5 s step back, still counts and closes the circuit", async () => {
    a.on(route);
    const { test, clock, back } = settableClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, successThreshold: 2, halfOpenMaxCalls: 1 },
    });
    expect((await layer.fetch(`${a.base}/503`)).status).toBe(503);
    await test.advance(30_000);
    // The first probe: the circuit turns half-open now (its last change), and the probe succeeds.
    expect((await layer.fetch(`${a.base}/ok`)).status).toBe(200);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", gen: 2 });
    await test.advance(10_000);
    const probe = layer.fetch(`${a.base}/slow`);
    await a.nth(3);
    await test.advance(1_000);
    // 11 s after the last change, the clock is set back 5 s: it still reads 6 s after that change.
    back(5_000);
    expect(clock.now()).toBe(START + 36_000);
    answer(held[0] as Hit);
    expect((await probe).status).toBe(200);
    // The documented cost of such a step is a wait lengthened by the step at most: the second success closes it.
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed", reason: "2 successful probes" });
    expect((await layer.fetch(`${a.base}/ok`)).status).toBe(200);
    expect(a.hits.length).toBe(4);
  });

  it("1b. a named breaker's execute: the same step back gives up a probe granted a second before it", async () => {
    const { test, clock, back } = settableClock(START);
    const layer = createResilience({ clock });
    const breaker = layer.breaker("upscaler", { failureThreshold: 1, successThreshold: 2, halfOpenMaxCalls: 1 });
    await rejection(breaker.execute(() => Promise.reject(new Error("down"))));
    expect(breaker.state).toBe("open");
    await test.advance(30_000);
    expect(await breaker.execute(() => "first probe")).toBe("first probe");
    await test.advance(10_000);
    let finish: (value: string) => void = () => {};
    const second = breaker.execute(() => new Promise<string>((resolve) => (finish = resolve)));
    await test.advance(1_000);
    back(5_000);
    finish("second probe");
    expect(await second).toBe("second probe");
    expect(breaker.state).toBe("closed");
    expect(breaker.toJSON()).toMatchObject({ state: "closed", reason: "2 successful probes" });
  });

  it("an open spell: a 5 s step back 20 s into it lengthens its wait by the step (retryAt unchanged)", async () => {
    a.on(route);
    const { test, clock, back } = settableClock(START);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 } });
    await layer.fetch(`${a.base}/503`);
    await test.advance(20_000);
    back(5_000);
    const refused = (await rejection(layer.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(refused.retryAt).toBe(START + 30_000);
    await test.advance(14_999);
    expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/ok`)))).toBe(true);
    await test.advance(1);
    expect((await layer.fetch(`${a.base}/ok`)).status).toBe(200);
    expect(a.hits.length).toBe(2);
  });
});

describe("2. a retry waiting out another layer's open spell, through memoryStore()", () => {
  async function scenario(readMeanwhile: (one: Resilience) => void) {
    const { test: clock } = settableClock(START);
    const store = memoryStore();
    const one = createResilience({ clock, store, retry: { maxAttempts: 2, initialDelay: 10_000, jitter: "none" } });
    const two = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, successThreshold: 1 },
    });
    // The first two requests (layer one's first attempt, layer two's) are declined; the host is back after that.
    a.on((hit) => answer(hit, hit.n <= 2 ? 503 : 200));
    let waiting = false;
    one.on("retry", () => {
      waiting = true;
    });
    const call = one.fetch(`${a.base}/x`);
    await until(() => waiting, "layer one waits to retry");
    expect((await two.fetch(`${a.base}/x`)).status).toBe(503);
    expect(two.health().breakers[a.host]?.state).toBe("open");
    readMeanwhile(one);
    await clock.advance(1_000);
    // Layer two's probe closes the host again, 9 s before layer one's retry leaves.
    expect((await two.fetch(`${a.base}/x`)).status).toBe(200);
    expect(two.health().breakers[a.host]?.state).toBe("closed");
    await clock.advance(9_000);
    const response = await call;
    return { status: response.status, hits: a.hits.length };
  }

  it("with nothing read meanwhile, the retry goes once the host closed again (200, four requests)", async () => {
    expect(await scenario(() => {})).toEqual({ status: 200, hits: 4 });
  });

  // First pinned as "does not stop that retry" (200, four requests); docs/breakers.md now says that this layer
  // reading the store meanwhile brings the opening in as its own, which ends the wait: the call settles with its 503.
  it("2. a health() read while the host is open ends that retry's wait, as an opening in this layer does", async () => {
    expect(await scenario((one) => void one.health())).toEqual({ status: 503, hits: 3 });
  });

  it("still open when the retry leaves: it is refused and the call settles with its 503", async () => {
    const clock = new TestClock(START);
    const store = memoryStore();
    const one = createResilience({ clock, store, retry: { maxAttempts: 2, initialDelay: 10_000, jitter: "none" } });
    const two = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1, timeout: 60_000 } });
    a.on((hit) => answer(hit, 503));
    let waiting = false;
    one.on("retry", () => {
      waiting = true;
    });
    const call = one.fetch(`${a.base}/x`);
    await until(() => waiting, "layer one waits to retry");
    await two.fetch(`${a.base}/x`);
    await clock.advance(10_000);
    expect((await call).status).toBe(503);
    expect(a.hits.length).toBe(2);
    expect(one.health().breakers[a.host]?.state).toBe("open");
  });

  it("half-open probes are counted per layer: with halfOpenMaxCalls 1, two layers send two probes", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const store = memoryStore();
    const make = () =>
      createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1, halfOpenMaxCalls: 1 } });
    const one = make();
    const two = make();
    await one.fetch(`${a.base}/503`);
    // Opened by layer one, refused by layer two: nothing sent.
    expect(isCircuitOpenError(await rejection(two.fetch(`${a.base}/ok`)))).toBe(true);
    expect(a.hits.length).toBe(1);
    await clock.advance(30_000);
    const calls = tracked([one, two, one, two].map((layer) => layer.fetch(`${a.base}/slow`)));
    await until(() => held.length === 2 && calls.settled() === 2, "two probes held, two calls refused");
    for (const hit of held) answer(hit);
    const results = await calls.results;
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    expect(results.filter((r) => r.status === "rejected" && isCircuitOpenError(r.reason))).toHaveLength(2);
    expect(a.hits.length).toBe(3);
  });
});

describe("the rules against what the server received", () => {
  it("rate rule, ten calls at once: 5 × 503 then 5 × 200 stay closed at 50%, the 11th attempt's 503 opens it", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1_000, failureRate: 0.5, minimumCalls: 10 },
    });
    const events = breakerEvents(layer);
    const calls = tracked(Array.from({ length: 10 }, () => layer.fetch(`${a.base}/slow`)));
    await until(() => held.length === 10, "ten requests held");
    for (const [i, hit] of held.entries()) {
      answer(hit, i < 5 ? 503 : 200);
      await until(() => calls.settled() === i + 1, `call ${i + 1} settled`);
    }
    // 10 attempts, 5 failed: 50% of minimumCalls, but the last one counted was a success.
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed", failureCount: 5, failureRate: 0.5 });
    expect(events).toHaveLength(0);
    expect((await layer.fetch(`${a.base}/503`)).status).toBe(503);
    expect(events.map((e) => [e.from, e.to, e.reason])).toEqual([
      ["closed", "open", "failure rate 0.55 over 11 calls (last: status 503)"],
    ]);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      failureCount: 6,
      failureRate: 6 / 11,
      lastError: "status 503",
      openUntil: START + 30_000,
    });
    expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/ok`)))).toBe(true);
    expect(a.hits.length).toBe(11);
  });

  it("Retry-After on a POST Request: 60 s (= maxRetryAfter) is slept through and holds nothing; 61 s holds the host", async () => {
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: { maxAttempts: 2 } });
    let first = true;
    a.on((hit) => {
      if (hit.path === "/60") {
        if (first) hit.res.writeHead(503, { "retry-after": "60" });
        else hit.res.writeHead(200);
        first = false;
        hit.res.end();
        return;
      }
      route(hit);
    });
    const delays: number[] = [];
    layer.on("retry", (event) => void delays.push(event.delay));
    const post = (path: string) => new Request(`${a.base}${path}`, { method: "POST", body: '{"prompt":"cat"}' });
    const slept = layer.fetch(post("/60"));
    await until(() => delays.length === 1, "the 60 s wait");
    expect(delays).toEqual([60_000]);
    await clock.advance(60_000);
    expect((await slept).status).toBe(200);
    expect(layer.health().breakers[a.host]?.state).toBe("closed");
    const held61 = await layer.fetch(post("/ra/61/503"));
    expect(held61.status).toBe(503);
    expect(delays).toHaveLength(1);
    const at = clock.now();
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      openUntil: at + 61_000,
      reason: "Retry-After 61 s on status 503",
      lastError: "Retry-After 61 s on status 503",
    });
    const refused = (await rejection(layer.fetch(post("/ok")))) as CircuitOpenError;
    expect(refused.retryAt).toBe(at + 61_000);
    await clock.advance(60_999);
    expect(isCircuitOpenError(await rejection(layer.fetch(post("/ok"))))).toBe(true);
    await clock.advance(1);
    expect((await layer.fetch(post("/ok"))).status).toBe(200);
    expect(a.hits.length).toBe(4);
  });

  it("maxHosts 4, twelve keys at once: twelve during the burst, four after; a new key evicts the oldest open one", async () => {
    a.on((hit) => {
      if (hit.path === "/k12" || hit.path === "/k0/again") answer(hit);
      else held.push(hit);
    });
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, maxHosts: 4, key: (url) => url.pathname.split("/")[1] ?? "" },
    });
    const keys = () => Object.keys(layer.health().breakers).sort();
    const calls = tracked(Array.from({ length: 12 }, (_, i) => layer.fetch(`${a.base}/k${i}`)));
    await until(() => held.length === 12, "twelve requests held");
    expect(layer.debugInfo().breakerCount).toBe(12);
    const byKey = new Map(held.map((hit) => [hit.path.slice(1), hit]));
    for (let i = 0; i < 12; i++) {
      answer(byKey.get(`k${i}`) as Hit, i < 3 ? 503 : 200);
      await until(() => calls.settled() === i + 1, `k${i} settled`);
    }
    // k0–k2 are open and stay; k3–k10 went as their last call left; k11 left at the bound and stays.
    expect(keys()).toEqual(["k0", "k1", "k11", "k2"]);
    expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/k1/x`)))).toBe(true);
    expect((await layer.fetch(`${a.base}/k12`)).status).toBe(200);
    // The room k12 needed was k0's (open, idle the longest): k0's breaker is gone, its next call is sent.
    expect(keys()).toEqual(["k1", "k11", "k12", "k2"]);
    expect((await layer.fetch(`${a.base}/k0/again`)).status).toBe(200);
    expect(a.hits.length).toBe(14);
  });
});

describe("half-open with many calls at once", () => {
  it("resilientProxy: eight requests send three probes; five get 503 with Retry-After 30, nothing sent; two 200s close it", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 } },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
    const ask = (path: string) => proxy.fetch(new Request(`https://w.example${path}`), {}, ctx);
    expect((await ask("/503")).status).toBe(503);
    const early = await ask("/ok");
    expect([early.status, early.headers.get("retry-after")]).toEqual([503, "30"]);
    expect(await early.json()).toEqual({ error: "upstream circuit open" });
    await clock.advance(30_000);
    const asked = tracked(Array.from({ length: 8 }, () => ask("/slow")));
    await until(() => held.length === 3 && asked.settled() === 5, "three probes held, five answered");
    expect(a.hits.length).toBe(4);
    answer(held[0] as Hit);
    answer(held[1] as Hit);
    answer(held[2] as Hit);
    const results = await asked.results;
    const responses = results.map((r) => (r.status === "fulfilled" ? r.value : undefined));
    expect(responses.filter((r) => r?.status === 200)).toHaveLength(3);
    const refused = responses.filter((r) => r?.status === 503);
    expect(refused.map((r) => r?.headers.get("retry-after"))).toEqual(["30", "30", "30", "30", "30"]);
    const health = await (await ask("/__resilience/health")).json();
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", reason: "2 successful probes" });
    expect(a.hits.length).toBe(4);
  });

  it("a followed redirect: five calls to A hop to half-open B (two slots); B gets two, three calls get B's refusal", async () => {
    a.on(route);
    b.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, halfOpenMaxCalls: 2 } });
    const events = breakerEvents(layer);
    expect((await layer.fetch(`${b.base}/503`)).status).toBe(503);
    await clock.advance(30_000);
    const to = encodeURIComponent(`${b.base}/slow`);
    const calls = tracked(Array.from({ length: 5 }, () => layer.fetch(`${a.base}/r?to=${to}`)));
    await until(() => held.length === 2 && calls.settled() === 3, "two hops held, three refused");
    expect(a.hits.length).toBe(5);
    expect(b.hits.length).toBe(3);
    for (const hit of held) answer(hit);
    const results = await calls.results;
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason as CircuitOpenError] : []));
    expect(refusals).toHaveLength(3);
    for (const error of refusals) {
      expect(isCircuitOpenError(error)).toBe(true);
      expect(error.key).toBe(b.host);
      expect(error.afterRedirect).toBe(true);
      expect(error.retryAt).toBe(START + 60_000);
    }
    expect(results.filter((r) => r.status === "fulfilled" && r.value.status === 200)).toHaveLength(2);
    expect(layer.health().breakers[b.host]).toMatchObject({ state: "closed", reason: "2 successful probes" });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(events.map((e) => `${e.key === b.host ? "B" : "A"} ${e.from}>${e.to}`)).toEqual([
      "B closed>open",
      "B open>half_open",
      "B half_open>closed",
    ]);
  });

  it("a chain: a half-open endpoint with its one slot taken is passed over by the three other calls", async () => {
    a.on((hit) => (hit.n === 1 ? answer(hit, 503) : held.push(hit)));
    b.on((hit) => answer(hit));
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const passed: string[] = [];
    layer.on("fallback", (event) => void passed.push(`${event.from} ${event.reason} ${event.next}`));
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    await clock.advance(30_000);
    passed.length = 0;
    const calls = tracked(Array.from({ length: 4 }, () => layer.fetch(`${a.base}/v1/x`)));
    await until(() => held.length === 1 && calls.settled() === 3, "one probe held, three served by q");
    expect(passed).toEqual(["p circuit open q", "p circuit open q", "p circuit open q"]);
    answer(held[0] as Hit);
    const results = await calls.results;
    expect(results.every((r) => r.status === "fulfilled" && r.value.status === 200)).toBe(true);
    expect(a.hits.length).toBe(2);
    expect(b.hits.length).toBe(4);
  });

  it("the ky client: one probe goes, two calls reject with the CircuitOpenError itself, retryAt at the lease's end", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, halfOpenMaxCalls: 1 } });
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    expect((await api.get(`${a.base}/503`)).status).toBe(503);
    await clock.advance(30_000);
    const calls = tracked([0, 1, 2].map(() => api.get(`${a.base}/slow`).text()));
    await until(() => held.length === 1 && calls.settled() === 2, "one probe held, two refused");
    answer(held[0] as Hit);
    const results = await calls.results;
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason as CircuitOpenError] : []));
    expect(refusals.map((e) => [isCircuitOpenError(e), e.retryAt])).toEqual([
      [true, START + 60_000],
      [true, START + 60_000],
    ]);
    expect(a.hits.length).toBe(2);
  });

  it("execute behind a named breaker: the second run is refused unrun while the first probes", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({ clock });
    layer.breaker("render", { failureThreshold: 1, halfOpenMaxCalls: 1 });
    await rejection(layer.execute(() => Promise.reject(new Error("down")), { breaker: "render", retry: false }));
    await clock.advance(30_000);
    let ran = 0;
    const work = () => {
      ran++;
      return fetch(`${a.base}/slow`).then((r) => r.text());
    };
    const first = layer.execute(work, { breaker: "render", retry: false });
    const second = (await rejection(layer.execute(work, { breaker: "render", retry: false }))) as CircuitOpenError;
    expect(isCircuitOpenError(second)).toBe(true);
    expect(second.key).toBe("render");
    expect(second.retryAt).toBe(START + 60_000);
    await until(() => held.length === 1, "the probe held");
    answer(held[0] as Hit);
    expect(await first).toBe("200");
    expect(ran).toBe(1);
    expect(layer.health().breakers.render).toMatchObject({ state: "half_open" });
  });
});

describe("time and rewrites", () => {
  it("a clock a day ahead with two probes out: reads open, the first late 200 re-opens it for 30 s, the second counts for nothing", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, halfOpenMaxCalls: 2 } });
    const events = breakerEvents(layer);
    await layer.fetch(`${a.base}/503`);
    await clock.advance(30_000);
    const probes = [layer.fetch(`${a.base}/slow`), layer.fetch(`${a.base}/slow`)];
    await until(() => held.length === 2, "two probes held");
    await clock.advance(86_400_000);
    const day = clock.now();
    expect(layer.health()).toMatchObject({ status: "unhealthy" });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: null });
    answer(held[0] as Hit);
    expect((await probes[0])?.status).toBe(200);
    expect(events.at(-1)).toMatchObject({ from: "half_open", to: "open", reason: "probe lease expired" });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: day + 30_000 });
    const gen = layer.health().breakers[a.host]?.gen;
    answer(held[1] as Hit);
    expect((await probes[1])?.status).toBe(200);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", gen, openUntil: day + 30_000 });
    const refused = (await rejection(layer.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(refused.retryAt).toBe(day + 30_000);
    expect(a.hits.length).toBe(3);
  });

  it("a degradation rewrite: the rewritten request's answer counts, and its long Retry-After holds, the caller's key", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { key: (url) => url.searchParams.get("model") ?? url.host },
      degradation: degradation({ rules: [{ match: a.base, params: { model: { query: "model" } } }] }),
    });
    layer.degradation?.setLevel("low");
    expect((await layer.fetch(`${a.base}/ra/3600/429?model=premium`)).status).toBe(429);
    // The request went out as model=basic; the hold is premium's, the key the caller asked for.
    expect(a.hits[0]?.path).toBe("/ra/3600/429?model=basic");
    expect(layer.health().breakers.premium).toMatchObject({
      state: "open",
      openUntil: START + 3_600_000,
      lastError: "Retry-After 3600 s on status 429",
    });
    expect(layer.health().breakers.basic).toBeUndefined();
    const refused = (await rejection(layer.fetch(`${a.base}/ok?model=premium`))) as CircuitOpenError;
    expect([refused.key, refused.retryAt]).toEqual(["premium", START + 3_600_000]);
    expect(a.hits.length).toBe(1);
  });
});
