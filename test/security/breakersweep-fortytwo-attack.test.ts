/**
 * Outside-in attack on docs/breakers.md, sentence by sentence: the state machine, the "Defaults and why" table,
 * "A clock set back", "Bulkheads" and "Shared breaker state", on every path a sentence applies to.
 * Docs: docs/breakers.md ("One per host (`url.host`, or `breaker.key(url)`) … LRU-bounded by `breaker.maxHosts`
 * (1000 …)"; "Network errors, attempt timeouts, 5xx and 429 are failures; other 4xx … count as successes of the
 * service; a caller's abort is neither"; "CLOSED → OPEN when `failureThreshold` (12) attempts in a row failed, or
 * when `failureRate` (0.5) of at least `minimumCalls` (100) attempts inside `timeWindow` (30 s, kept in 10 buckets
 * of 3 s that leave whole: an attempt counts for 27 to 30 s) failed"; "50 failures then 50 successes open it at the
 * next failure, not at the 100th attempt"; "OPEN fails fast with `CircuitOpenError` and sends nothing. After
 * `timeout` (30 s) it is HALF_OPEN: at most `halfOpenMaxCalls` (3) probes …, each a lease that expires after
 * `probeTimeout` (30 s)"; "A probe aborted by its caller, `timeout.total` or a hedge that won frees its slot at
 * once"; "the call rejects with that `CircuitOpenError` (`afterRedirect: true`)"; "A 429/503 whose `Retry-After`
 * exceeds `maxRetryAfter` holds the host open until then"; "`toJSON()`: `v`, `state`, `gen` …, with `gen` +1 on
 * every transition; a breaker that adopts a shared store's state moves past the other breaker's `gen`"; the
 * defaults table (12; 50% of 100 in 30 s; 30 s open; 3 probes, 2 successes); "A clock set back": "each one
 * notices the step at its first look after it (a call, `health()`, a breaker's `state`): an open spell then waits
 * its own length again from now …, the probes out are given up as expired leases are (the circuit re-opens for
 * `timeout`; one that answers late then counts for nothing), a hold that comes while the spell is open is measured
 * against the spell as it will run, and every window and pace counts on from now", "a step back of a day costs a
 * host at most one more spell, never a day"; "Bulkheads": "a slot is held until response headers arrive (a
 * streamed body does not hold it) or the attempt is given up (… even when the transport ignores its signal …)",
 * "A full queue rejects at once with `BulkheadRejectedError`", "one that has already aborted takes no slot, not
 * even a free one", "A call to a host whose breaker is open is refused with `CircuitOpenError` before it would
 * queue", "A call to a half-open host queues like any other"; `resilience.breaker(name)` / `execute`.)
 * How: `createResilience`, `memoryStore` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `CircuitBreaker` (./policies), `TestClock` (./testing), a hand-set clock for steps back;
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) answering by path (503, 404, 429 with
 * `Retry-After`, hang, streamed body, 302); a scripted transport only for host spellings no local server has
 * (default ports, IDN) and for a transport that ignores its signal.
 * Paths: plain URL call, `Request` input (POST body, own `signal`), fallback chain over two hosts, hedge, redirect
 * followed by the library (the target host's breaker), degradation rewrite at `low`, named breakers and
 * `resilience.execute`, the generic `CircuitBreaker`, the ky client, two layers sharing `memoryStore()`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a closed breaker's call and its state now re-date the rate window after a clock
 * set back):
 * 1. docs/breakers.md "A clock set back": "each one notices the step at its first look after it (a call, …) … and
 *    every window and pace counts on from now". Observed: for a closed per-host breaker, a call admitted after the
 *    step is no look for the rate window: with `minimumCalls: 2, failureRate: 1`, a 503 at T, the clock set back a
 *    day, then a call admitted at T − 1 day that answers 503 30 s later opens the circuit ("failure rate 1.00 over
 *    2 calls"): the failure at T was still counted, 30 s after the first look. Admission of a closed breaker applies
 *    no `tick` (src/policies/breaker-state.ts `request`: `if (s.state === "closed") return { … admitted: true }`),
 *    so the window is only re-dated when the late outcome is recorded (`record`: `if (now < window.start) …start:
 *    now`), and its contents then count as fresh. (A `health()` read in between does re-date it: held below.)
 * 2. Same sentence, "a breaker's `state`" as the look. Observed: a named breaker's `state` read right after the step
 *    leaves the window dated at T (the `state` getter of src/policies/circuit-breaker.ts returns "closed" at once
 *    for a closed snapshot, no `tick`), so a failure 30 s after that read still finds the earlier one in the window
 *    and opens the circuit (`minimumCalls: 2, failureRate: 1`). Low impact (a failure counts up to 30 s longer after
 *    a step back), but the words name both looks.
 *
 * Held (plain `it`):
 * - `debugInfo().options.breaker` with no options is exactly the table: 12, 2, 30 s, 3, 30 s window, 30 s probe
 *   lease, 0.5, 100, maxHosts 1000.
 * - Run rule on a plain call: 11 × 503, a 404, 11 × 429 (`Retry-After: 1`) stay closed (11 in a row); the 12th 429
 *   opens; `retryAt` = open + 30 s, refused unsent at 29.999 s, sent at 30 s; a direct refusal has no
 *   `afterRedirect`.
 * - Rate rule with defaults: 503/200 alternating, closed at the 100th attempt (50/100), opens at the 101st (a
 *   failure), reason "failure rate 0.50 over 101 calls".
 * - Window bounds (named breaker): a failure counts 29.999 s after the window began, is gone at 30 s.
 * - A caller's abort mid-attempt neither ends a run of failures nor counts as one; ky client: a 404 `HTTPError`
 *   ends a run; a 429 whose HTTP-date `Retry-After` exceeds `maxRetryAfter` holds the host to the ms, one request.
 * - Keying: `HTTP://Example.COM:80`, `http://example.com`, `https://EXAMPLE.com:443` and a `Request` for
 *   `:080` are one breaker, `:443` over http another; `bücher.example` and `xn--bcher-kva.example` one; `127.1` and
 *   `127.0.0.1` one; another port its own; userinfo refused at once (TypeError, password cut), nothing sent or
 *   counted.
 * - A library-followed redirect to an open host: `CircuitOpenError` of that host, `afterRedirect: true`, `retryAt`
 *   its end, nothing sent there; the first host's attempt a success.
 * - Bulkheads: an open host (opened by a sibling through `memoryStore()`) refused with `CircuitOpenError`, not
 *   `BulkheadRejectedError`, with the queue full; a streamed body holds no slot; a transport ignoring its signal is
 *   cut by `timeout.attempt` and frees the slot; an already-aborted `Request` takes no free slot, nothing sent; a
 *   half-open host's call queues behind the only probe and, when that probe's caller aborts, takes its slot and
 *   closes the circuit.
 * - Clock set back (hand clock): an open spell waits 30 s from now after a day back (`retryAt`, `health()`), the
 *   call then goes; a probe out is given up (`health()` open, refused with `retryAt` now + 30 s), its late 200
 *   counts for nothing; a `Retry-After` hold arriving while open after a day back runs from now (120 s, not
 *   compared with the dated spell); a `health()` look re-dates the rate window; the generic `CircuitBreaker`'s
 *   `state`, `retryAt()`, `toJSON()` agree after a day back.
 * - `resilience.execute` behind a named breaker: an aborted run is neither, two failures open it, the next run is
 *   refused unrun with `retryAt` open + 30 s. Generic `CircuitBreaker`: `v` 1, `gen` 0 → 1 (open) → 2 (half-open)
 *   → 3 (probe lease expired, open for 30 s from the expiry).
 * - Chain over two hosts: only the failing endpoint's host opens, then is passed over unsent; hedge: the loser cut
 *   by the winner is no failure (failureThreshold 1 stays closed); `Request` input through the degradation stage
 *   at `low`: the POST's 503 opens its host, the next `Request` is refused unsent; a layer adopting a store's open
 *   state shows a `gen` past the writer's (10).
 *
 * Docs-silent (not pinned): a response body whose read fails after the headers arrived is never heard by the
 * breaker (the attempt already counted as a success); the docs say what a slot holds, not what such a read counts.
 * Other windows of the set-back list (`health().errorRate`'s, degradation's) move on a record or a `health()` read
 * and not at a call's admission, as in defect 1; not driven here.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  BulkheadRejectedError,
  type CircuitOpenError,
  createResilience,
  isCircuitOpenError,
  memoryStore,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const once = { maxAttempts: 1 };
const START = Date.UTC(2031, 0, 1);
const DAY = 86_400_000;

/** Answers by path: /503, /404, /429?ra=…, /hang (never), /stream (headers, one chunk, never ends), /to?u=… (302). */
const route = (hit: Hit): void => {
  const url = new URL(hit.path, "http://x");
  const res = hit.res;
  if (url.pathname.startsWith("/503")) {
    res.statusCode = 503;
    const ra = url.searchParams.get("ra");
    if (ra) res.setHeader("retry-after", ra);
    res.end("down");
  } else if (url.pathname.startsWith("/404")) {
    res.statusCode = 404;
    res.end("nope");
  } else if (url.pathname.startsWith("/429")) {
    res.statusCode = 429;
    const ra = url.searchParams.get("ra");
    if (ra) res.setHeader("retry-after", ra);
    res.end("slow down");
  } else if (url.pathname.startsWith("/hang")) {
    // answered by the test, or never
  } else if (url.pathname.startsWith("/stream")) {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("first");
  } else if (url.pathname.startsWith("/to")) {
    res.statusCode = 302;
    res.setHeader("location", url.searchParams.get("u") ?? "/");
    res.end();
  } else res.end("ok");
};

const drain = async (response: Promise<Response>): Promise<number> => {
  const r = await response;
  await r.body?.cancel();
  return r.status;
};

/** A clock the test sets, forward or back; timers never fire (nothing here waits on one). */
const handClock = (start: number) => {
  const time = { t: start };
  return { time, clock: { now: () => time.t, setTimer: () => () => {} } };
};

describe("defaults table", () => {
  it("the numbers in force with no options are the table's (12, 0.5/100/30 s, 30 s, 3 and 2, probeTimeout 30 s, maxHosts 1000)", () => {
    const r = createResilience();
    expect(r.debugInfo().options.breaker).toEqual({
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
      maxHosts: 1000,
    });
  });

  it("run rule: 11 × 503, a 404, 11 × 429 (short Retry-After) stay closed; the 12th 429 opens for 30 s, nothing sent while open", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: once });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push(await drain(clock.run(r.fetch(`${a.base}/503`))));
    statuses.push(await drain(clock.run(r.fetch(`${a.base}/404`))));
    for (let i = 0; i < 11; i++) statuses.push(await drain(clock.run(r.fetch(`${a.base}/429?ra=1`))));
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", consecutiveFailures: 11 });
    statuses.push(await drain(clock.run(r.fetch(`${a.base}/429?ra=1`))));
    expect(statuses.filter((s) => s === 503).length).toBe(11);
    expect(r.health().breakers[a.host]?.state).toBe("open");
    const sent = a.hits.length;
    const refused = (await rejection(clock.run(r.fetch(`${a.base}/ok`)))) as CircuitOpenError;
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(refused.retryAt).toBe(START + 30_000);
    expect(refused.afterRedirect).toBeUndefined();
    await clock.advance(29_999);
    expect(isCircuitOpenError(await rejection(clock.run(r.fetch(`${a.base}/ok`))))).toBe(true);
    expect(a.hits.length).toBe(sent);
    await clock.advance(1);
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
    expect(a.hits.length).toBe(sent + 1);
  });

  it("rate rule with defaults: 50 × 503 alternating with 50 × 200 stays closed at the 100th attempt, opens at the next failure", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: once });
    for (let i = 0; i < 100; i++) await drain(clock.run(r.fetch(`${a.base}/${i % 2 === 0 ? "503" : "ok"}`)));
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", failureCount: 50, failureRate: 0.5 });
    await drain(clock.run(r.fetch(`${a.base}/503`)));
    expect(r.health().breakers[a.host]?.state).toBe("open");
    expect(r.health().breakers[a.host]?.reason).toMatch(/^failure rate 0\.50 over 101 calls/);
  });

  it('"an attempt counts for 27 to 30 s": counted 29.999 s after the window began, gone at 30 s (named breaker)', async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock });
    const opts = { minimumCalls: 2, failureRate: 1, failureThreshold: 100 };
    const fail = (name: string) => rejection(r.breaker(name, opts).execute(() => Promise.reject(new Error("x"))));
    await fail("inside");
    await fail("outside");
    await clock.advance(29_999);
    await fail("inside");
    expect(r.breaker("inside").state).toBe("open");
    await clock.advance(1);
    await fail("outside");
    expect(r.breaker("outside").state).toBe("closed");
  });
});

describe("what counts", () => {
  it("a caller's abort is neither: 503, aborted call, 503 opens at failureThreshold 2 (the abort ended no run)", async () => {
    a.on(route);
    const r = createResilience({ retry: once, breaker: { failureThreshold: 2 } });
    await drain(r.fetch(`${a.base}/503`));
    const controller = new AbortController();
    const hung = r.fetch(`${a.base}/hang`, { signal: controller.signal });
    await a.nth(2);
    controller.abort(new Error("caller left"));
    expect(((await rejection(hung)) as Error).message).toBe("caller left");
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", consecutiveFailures: 1 });
    await drain(r.fetch(`${a.base}/503`));
    expect(r.health().breakers[a.host]?.state).toBe("open");
  });

  it("ky client: a 404 (HTTPError) is a success of the service: 503, 404, 503 stays closed at failureThreshold 2", async () => {
    a.on(route);
    const api = createClient({ resilience: { retry: once, breaker: { failureThreshold: 2 } } });
    await rejection(api.get(`${a.base}/503`));
    await rejection(api.get(`${a.base}/404`));
    await rejection(api.get(`${a.base}/503`));
    expect(a.hits.length).toBe(3);
    const r = await api.get(`${a.base}/ok`);
    expect(r.status).toBe(200);
  });

  it('"A 429/503 whose Retry-After exceeds maxRetryAfter holds the host open until then": an HTTP date, to the ms', async () => {
    a.on(route);
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: { maxAttempts: 3, maxRetryAfter: 10_000 } });
    const until = START + 3_600_000;
    const date = encodeURIComponent(new Date(until).toUTCString());
    expect(await drain(clock.run(r.fetch(`${a.base}/429?ra=${date}`)))).toBe(429);
    expect(a.hits.length).toBe(1);
    const refused = (await rejection(clock.run(r.fetch(`${a.base}/ok`)))) as CircuitOpenError;
    expect(refused.retryAt).toBe(until);
    await clock.advance(3_599_999);
    expect(isCircuitOpenError(await rejection(clock.run(r.fetch(`${a.base}/ok`))))).toBe(true);
    await clock.advance(1);
    expect(await drain(clock.run(r.fetch(`${a.base}/ok`)))).toBe(200);
  });
});

describe("per-host keying (`url.host`)", () => {
  it("case, default ports and IDN spellings are one breaker; another port or scheme port is another", async () => {
    const seen: string[] = [];
    const r = createResilience({
      retry: once,
      fetch: async (input) => {
        seen.push(input instanceof Request ? input.url : String(input));
        return new Response("x", { status: 503 });
      },
    });
    const urls = [
      "HTTP://Example.COM:80/a",
      "http://example.com/b",
      "https://EXAMPLE.com:443/c",
      "http://example.com:443/d",
      "http://bücher.example/e",
      "http://xn--bcher-kva.example:80/f",
      "http://BÜCHER.example./g",
    ];
    for (const url of urls) await drain(r.fetch(url));
    await drain(r.fetch(new Request("http://EXAMPLE.com:080/h")));
    expect(seen.length).toBe(8);
    const breakers = r.health().breakers;
    expect(Object.keys(breakers).sort()).toEqual(
      ["bücher.example.", "example.com", "example.com:443", "xn--bcher-kva.example"]
        .map((k) => new URL(`http://${k}`).host)
        .sort(),
    );
    expect(breakers["example.com"]?.consecutiveFailures).toBe(4);
    expect(breakers["xn--bcher-kva.example"]?.consecutiveFailures).toBe(2);
  });

  it("one server reached as 127.0.0.1 and as 127.1 is one breaker; another port is its own; userinfo is refused unsent", async () => {
    a.on(route);
    b.on(route);
    const r = createResilience({ retry: once, breaker: { failureThreshold: 1 } });
    await drain(r.fetch(`http://127.1:${a.port}/503`));
    const refused = (await rejection(r.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(refused.key).toBe(a.host);
    expect(await drain(r.fetch(`${b.base}/ok`))).toBe(200);
    const cred = (await rejection(r.fetch(`http://user:s3cret@127.0.0.1:${b.port}/ok`))) as Error;
    expect(cred).toBeInstanceOf(TypeError);
    expect(String(cred.message)).not.toContain("s3cret");
    expect(b.hits.length).toBe(1);
    expect(r.health().breakers[b.host]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });
});

describe("CircuitOpenError.retryAt and afterRedirect", () => {
  it("a followed redirect to an open host is refused (afterRedirect true, retryAt that host's end); a direct refusal has none", async () => {
    a.on(route);
    b.on(route);
    const clock = new TestClock(START);
    const r = createResilience({ clock, retry: once, breaker: { failureThreshold: 1, timeout: 40_000 } });
    await drain(clock.run(r.fetch(`${b.base}/503`)));
    await clock.advance(5);
    const direct = (await rejection(clock.run(r.fetch(`${b.base}/ok`)))) as CircuitOpenError;
    expect(direct.afterRedirect).toBeUndefined();
    expect(direct.retryAt).toBe(START + 40_000);
    const hop = (await rejection(
      clock.run(r.fetch(`${a.base}/to?u=${encodeURIComponent(`${b.base}/ok`)}`)),
    )) as CircuitOpenError;
    expect(isCircuitOpenError(hop)).toBe(true);
    expect(hop.key).toBe(b.host);
    expect(hop.afterRedirect).toBe(true);
    expect(hop.retryAt).toBe(START + 40_000);
    expect(b.hits.length).toBe(1);
    expect(a.hits.length).toBe(1);
    // The first host answered: its attempt is a success.
    expect(r.health().breakers[a.host]?.state).toBe("closed");
  });
});

describe("Bulkheads", () => {
  it("an open host is refused with CircuitOpenError before it would queue, even with the queue full", async () => {
    a.on(route);
    const store = memoryStore();
    const mine = createResilience({ store, retry: once, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const other = createResilience({ store, retry: once, breaker: { failureThreshold: 1 } });
    const controller = new AbortController();
    const hung = mine.fetch(`${a.base}/hang`, { signal: controller.signal });
    await a.nth(1);
    expect(((await rejection(mine.fetch(`${a.base}/ok`))) as Error).name).toBe("BulkheadRejectedError");
    await drain(other.fetch(`${a.base}/503`));
    const refused = await rejection(mine.fetch(`${a.base}/ok`));
    expect(refused).not.toBeInstanceOf(BulkheadRejectedError);
    expect(isCircuitOpenError(refused)).toBe(true);
    controller.abort(new Error("done"));
    await rejection(hung);
    expect(a.hits.length).toBe(2);
  });

  it("a streamed body holds no slot: with maxConcurrent 1 and no queue, a second call goes while the first body is unread", async () => {
    a.on(route);
    const r = createResilience({ retry: once, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const first = await r.fetch(`${a.base}/stream`);
    expect(first.status).toBe(200);
    expect(r.health().breakers[a.host]).toMatchObject({ active: 0, queued: 0 });
    expect(await drain(r.fetch(`${a.base}/ok`))).toBe(200);
    await first.body?.cancel();
  });

  it("a hung transport that ignores its signal cannot wedge the host: the attempt timeout frees the slot", async () => {
    const clock = new TestClock(START);
    let calls = 0;
    const r = createResilience({
      clock,
      retry: once,
      timeout: { attempt: 1_000 },
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fetch: () => {
        calls++;
        return calls === 1 ? new Promise<Response>(() => {}) : Promise.resolve(new Response("ok"));
      },
    });
    const first = await rejection(clock.run(r.fetch("https://api.example/x")));
    expect((first as Error).name).toBe("TimeoutError");
    expect(r.health().breakers["api.example"]).toMatchObject({ active: 0, consecutiveFailures: 1 });
    expect(await drain(clock.run(r.fetch("https://api.example/x")))).toBe(200);
  });

  it("a caller aborted already takes no slot, not even a free one: rejects with its reason, nothing sent", async () => {
    a.on(route);
    const r = createResilience({ retry: once, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const reason = new Error("gone");
    expect(await rejection(r.fetch(new Request(`${a.base}/ok`, { signal: AbortSignal.abort(reason) })))).toBe(reason);
    expect(a.hits.length).toBe(0);
    expect(await drain(r.fetch(`${a.base}/ok`))).toBe(200);
  });

  it("half-open: a call queued behind the only probe gets the probe slot when that probe's caller aborts, and is sent", async () => {
    a.on(route);
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: once,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, successThreshold: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
    });
    await drain(clock.run(r.fetch(`${a.base}/503`)));
    await clock.advance(30_000);
    const controller = new AbortController();
    const probe = r.fetch(`${a.base}/hang`, { signal: controller.signal });
    await a.nth(2);
    const queued = r.fetch(`${a.base}/ok`);
    await flush();
    expect(r.health().breakers[a.host]).toMatchObject({ state: "half_open", active: 1, queued: 1 });
    controller.abort(new Error("left"));
    await rejection(probe);
    expect(await drain(queued)).toBe(200);
    expect(r.health().breakers[a.host]?.state).toBe("closed");
  });
});

describe("A clock set back", () => {
  it("an open spell waits its own length again from now: a day back costs one more spell, not a day", async () => {
    a.on(route);
    const { time, clock } = handClock(START);
    const r = createResilience({ clock, retry: once, breaker: { failureThreshold: 1 } });
    await drain(r.fetch(`${a.base}/503`));
    time.t = START - DAY;
    const refused = (await rejection(r.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(refused.retryAt).toBe(START - DAY + 30_000);
    expect(r.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: START - DAY + 30_000 });
    time.t = START - DAY + 30_000;
    expect(await drain(r.fetch(`${a.base}/ok`))).toBe(200);
  });

  it("probes out are given up at the first look after a step back: open for `timeout`; the late answer counts for nothing", async () => {
    a.on(route);
    const { time, clock } = handClock(START);
    const r = createResilience({
      clock,
      retry: once,
      breaker: { failureThreshold: 1, halfOpenMaxCalls: 1, successThreshold: 1 },
    });
    await drain(r.fetch(`${a.base}/503`));
    time.t = START + 30_000;
    const probe = r.fetch(`${a.base}/hang`);
    const hit = await a.nth(2);
    time.t = START + 10_000;
    expect(r.health().breakers[a.host]?.state).toBe("open");
    const refused = (await rejection(r.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(refused.retryAt).toBe(START + 10_000 + 30_000);
    hit.res.end("late");
    expect(await drain(probe)).toBe(200);
    expect(r.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: START + 40_000 });
    expect(a.hits.length).toBe(2);
  });

  it("a hold that comes while the spell is open is measured against the spell as it will run", async () => {
    a.on(route);
    const { time, clock } = handClock(START);
    const r = createResilience({
      clock,
      retry: { maxAttempts: 1, maxRetryAfter: 1_000 },
      breaker: { failureThreshold: 1 },
    });
    const late = r.fetch(`${a.base}/hang`);
    const hit = await a.nth(1);
    await drain(r.fetch(`${a.base}/503`));
    time.t = START - DAY;
    hit.res.statusCode = 503;
    hit.res.setHeader("retry-after", "120");
    hit.res.end("held");
    expect(await drain(late)).toBe(503);
    const refused = (await rejection(r.fetch(`${a.base}/ok`))) as CircuitOpenError;
    expect(refused.retryAt).toBe(START - DAY + 120_000);
  });

  const windowOpts = { minimumCalls: 2, failureRate: 1, failureThreshold: 100 };

  it("the rate window counts on from now once `health()` looked after a step back: a failure 30 s on finds the old one gone", async () => {
    a.on(route);
    const { time, clock } = handClock(START);
    const r = createResilience({ clock, retry: once, breaker: windowOpts });
    await drain(r.fetch(`${a.base}/503`));
    time.t = START - DAY;
    expect(r.health().breakers[a.host]?.state).toBe("closed");
    time.t += 30_000;
    await drain(r.fetch(`${a.base}/503`));
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1 });
  });

  it("a call is a look: the window counts on from the call that came after the step, not from its late outcome", async () => {
    a.on(route);
    const { time, clock } = handClock(START);
    const r = createResilience({ clock, retry: once, breaker: windowOpts });
    await drain(r.fetch(`${a.base}/503`));
    time.t = START - DAY;
    // The first look after the step: a call, admitted now, answered 30 s later.
    const slow = r.fetch(`${a.base}/hang`);
    const hit = await a.nth(2);
    time.t += 30_000;
    hit.res.statusCode = 503;
    hit.res.end("late");
    expect(await drain(slow)).toBe(503);
    // Counted from the call (START - DAY), the failure at START left the window 30 s later: one failure, no trip.
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1 });
  });

  it("a breaker's `state` is a look: read after the step, the window counts on from then", async () => {
    const { time, clock } = handClock(START);
    const r = createResilience({ clock });
    const named = r.breaker("w", windowOpts);
    await rejection(named.execute(() => Promise.reject(new Error("x"))));
    time.t = START - DAY;
    expect(named.state).toBe("closed");
    time.t += 30_000;
    await rejection(named.execute(() => Promise.reject(new Error("x"))));
    expect(named.state).toBe("closed");
  });

  it("the generic CircuitBreaker: an open spell read after a day back waits its own length from now", async () => {
    const { time, clock } = handClock(START);
    const generic = new CircuitBreaker(
      "g",
      {
        failureThreshold: 1,
        successThreshold: 1,
        timeout: 30_000,
        halfOpenMaxCalls: 1,
        timeWindow: 30_000,
        probeTimeout: 30_000,
        failureRate: undefined,
        minimumCalls: 100,
      },
      clock,
    );
    await rejection(generic.execute(() => Promise.reject(new Error("x"))));
    expect(generic.toJSON()).toMatchObject({ state: "open", openUntil: START + 30_000 });
    time.t = START - DAY;
    expect(generic.state).toBe("open");
    expect(generic.retryAt()).toBe(START - DAY + 30_000);
    expect(generic.toJSON().openUntil).toBe(START - DAY + 30_000);
    time.t += 30_000;
    expect(generic.state).toBe("half_open");
  });
});

describe("named breakers, execute, generic CircuitBreaker", () => {
  it("`resilience.execute` behind a named breaker: an aborted run is neither, failures open it, then it refuses unrun", async () => {
    const clock = new TestClock(START);
    const r = createResilience({ clock, breaker: { failureThreshold: 2 } });
    const fail = () => Promise.reject(new Error("boom"));
    await rejection(clock.run(r.execute(fail, { breaker: "upscaler", retry: false })));
    const controller = new AbortController();
    const aborted = r.execute(() => new Promise(() => {}), { breaker: "upscaler", signal: controller.signal });
    controller.abort(new Error("bye"));
    expect(((await rejection(clock.run(aborted))) as Error).message).toBe("bye");
    expect(r.breaker("upscaler").state).toBe("closed");
    await rejection(clock.run(r.execute(fail, { breaker: "upscaler", retry: false })));
    expect(r.breaker("upscaler").state).toBe("open");
    let ran = false;
    const refused = await rejection(
      clock.run(
        r.execute(
          () => {
            ran = true;
            return 1;
          },
          { breaker: "upscaler" },
        ),
      ),
    );
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(ran).toBe(false);
    expect((refused as CircuitOpenError).retryAt).toBe(START + 30_000);
  });

  it("`gen` +1 on every transition; the generic breaker's probe lease expires after probeTimeout and re-opens", async () => {
    const clock = new TestClock(START);
    const g = new CircuitBreaker(
      "g",
      {
        failureThreshold: 1,
        successThreshold: 2,
        timeout: 30_000,
        halfOpenMaxCalls: 3,
        timeWindow: 30_000,
        probeTimeout: 30_000,
        failureRate: 0.5,
        minimumCalls: 100,
      },
      clock,
    );
    expect(g.toJSON()).toMatchObject({ v: 1, state: "closed", gen: 0 });
    await rejection(g.execute(() => Promise.reject(new Error("x"))));
    expect(g.toJSON()).toMatchObject({ state: "open", gen: 1 });
    await clock.advance(30_000);
    void g.execute(() => new Promise(() => {}));
    expect(g.toJSON()).toMatchObject({ state: "half_open", gen: 2 });
    await clock.advance(30_000);
    expect(g.state).toBe("open");
    expect(g.isOpen()).toBe(true);
    expect(g.toJSON()).toMatchObject({
      state: "open",
      gen: 3,
      openUntil: START + 90_000,
      reason: "probe lease expired",
    });
  });
});

describe("paths: chain, hedge, degradation rewrite, Request input, shared store", () => {
  it("chain over two hosts: each endpoint's host has its own breaker; an open one is passed over unsent", async () => {
    a.on(route);
    b.on(route);
    const r = createResilience({
      retry: once,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "main",
          endpoints: [
            { name: "pa", url: `${a.base}/503` },
            { name: "pb", url: `${b.base}/ok` },
          ],
        },
      ]),
    });
    expect(await drain(r.fetch(`${a.base}/503/x`))).toBe(200);
    expect(r.health().breakers[a.host]?.state).toBe("open");
    expect(r.health().breakers[b.host]?.state).toBe("closed");
    expect(await drain(r.fetch(`${a.base}/503/y`))).toBe(200);
    expect(a.hits.length).toBe(1);
    expect(b.hits.length).toBe(2);
  });

  it("hedge: the loser the winner cut is no failure of its host (failureThreshold 1 stays closed)", async () => {
    a.on(route);
    b.on(route);
    const clock = new TestClock(START);
    const r = createResilience({
      clock,
      retry: once,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 100 },
          endpoints: [
            { name: "pa", url: `${a.base}/hang` },
            { name: "pb", url: `${b.base}/ok` },
          ],
        },
      ]),
    });
    expect(await drain(clock.run(r.fetch(`${a.base}/hang/x`)))).toBe(200);
    await (await a.nth(1)).closed;
    await flush();
    expect(r.health().breakers[a.host]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(r.health().breakers[b.host]?.state).toBe("closed");
  });

  it("a Request input and a degradation stage key the URL's host: a 503 there opens it, the next Request is refused unsent", async () => {
    a.on(route);
    const r = createResilience({ retry: once, breaker: { failureThreshold: 1 }, degradation: degradation() });
    r.degradation?.setLevel("low");
    expect(await drain(r.fetch(new Request(`HTTP://127.0.0.1:${a.port}/503`, { method: "POST", body: "{}" })))).toBe(
      503,
    );
    expect(isCircuitOpenError(await rejection(r.fetch(new Request(`${a.base}/ok`))))).toBe(true);
    expect(a.hits.length).toBe(1);
  });

  it("a store: the adopting breaker's gen moves past the other breaker's", async () => {
    a.on(route);
    const store = memoryStore();
    const clock = new TestClock(START);
    const one = createResilience({ clock, store, retry: once, breaker: { failureThreshold: 1, successThreshold: 1 } });
    for (let i = 0; i < 3; i++) {
      await drain(clock.run(one.fetch(`${a.base}/503`)));
      await clock.advance(30_000);
      await drain(clock.run(one.fetch(`${a.base}/ok`)));
    }
    await drain(clock.run(one.fetch(`${a.base}/503`)));
    const theirs = one.health().breakers[a.host]?.gen ?? 0;
    expect(theirs).toBe(10);
    const two = createResilience({ clock, store, retry: once });
    expect(isCircuitOpenError(await rejection(clock.run(two.fetch(`${a.base}/ok`))))).toBe(true);
    expect(two.health().breakers[a.host]?.gen).toBeGreaterThan(theirs);
  });
});
