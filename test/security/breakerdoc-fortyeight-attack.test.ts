/**
 * Outside-in attack on docs/breakers.md and docs/health-and-events.md, sentence by sentence, with the JSDoc of the
 * public breaker, health and event API (`BreakerOptions`, `BreakerEvent`, `BreakerHealth`, `ResilienceInfo`,
 * `CircuitBreaker`), on every path a sentence applies to.
 *
 * Docs:
 * - docs/breakers.md: "One per host (`url.host`, or `breaker.key(url)`), created on first use and LRU-bounded by
 *   `breaker.maxHosts` (1000; a host that calls hold … is never the one evicted, … and the last call out of each
 *   host past the bound evicts it unless its breaker is open or half-open (that one goes when a new host needs the
 *   room)"; "Network errors, attempt timeouts, 5xx and 429 are failures"; "CLOSED → OPEN when `failureThreshold`
 *   (12) attempts in a row failed, or when `failureRate` (0.5) of at least `minimumCalls` (100) attempts inside
 *   `timeWindow` … failed"; "OPEN fails fast with `CircuitOpenError` and sends nothing. After `timeout` (30 s) it is
 *   HALF_OPEN: … each a lease that expires after `probeTimeout` (30 s) … if it answers after its lease ran out,
 *   that answer counts for nothing: the expiry counts as the failure, and re-opens the circuit for `timeout` at the
 *   first look after it (a call, the late answer itself; a `state` or `health()` read shows it open)"; "Any probe
 *   failure re-opens; `successThreshold` (2) successes close"; "A retry is never parked behind an open breaker: when
 *   the breaker of the host a call addresses opens during the call, in this layer, the call's retry wait ends and it
 *   settles then with the response it has"; "The host a redirect led to is read when the retry's hop to it leaves:
 *   still open then, the hop is refused, … the call rejects with that `CircuitOpenError` (`afterRedirect: true`)";
 *   "A flaky host is left alone"; "A dead host opens within four calls … the fifth call is refused without being
 *   sent".
 * - `BreakerOptions.maxHosts` JSDoc (root): "Breakers kept at most (least recently used evicted first), so memory
 *   stays flat whatever the number of hosts".
 * - `BreakerEvent.reason` JSDoc (root): "Why, e.g. "5 failures in a row (last: status 503)" or "failure rate 0.60
 *   over 20 calls (last: attempt timeout)"".
 * - docs/health-and-events.md: "A breaker's `state` is as a call would find it now: … a half-open one whose probe
 *   lease ran out unreported reads `open` (the next call re-opens it)", "`openUntil`; `null` while half-open, and
 *   for one that reads `open` because a probe's lease ran out, until the next call re-opens it for `timeout`",
 *   "`breaker` fires on every state change (`key`, `from`, `to`, `reason`, `gen`, `openUntil`) when a call makes
 *   it (`open` → `half_open` when the first call after `timeout` arrives, though `health()` reads `half_open` as
 *   soon as `timeout` has passed)", "`request` fires once per call the layer started, when it settles",
 *   "`redirect` … told as it turns to the next hop, before that hop's host is asked (a hop whose breaker refuses it
 *   has its event too, and the call's `CircuitOpenError` then names that host)", "`fallback` fires when a chain
 *   passes over an endpoint (`chain`, `from`, `reason`, `next` …)"; `ResilienceInfo` JSDoc (`attempts`,
 *   `endpoint` "After redirects the layer followed it is still that first host", `fromFallback`).
 *
 * How: `createResilience`, `getResilienceInfo`, `isCircuitOpenError` (root), `fallback` (./fallback), `createClient`
 * (./ky), `resilientProxy` (./cloudflare), `TestClock` and `seededRandom` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) and one of the test's own on `::1` for IPv6 spellings; time only on the TestClock
 * (`clock.run` for backoffs, `await clock.advance` for timeouts and leases).
 *
 * Paths: plain call, `Request` input, fallback chain (pass-over of an open endpoint, an endpoint waiting to retry),
 * followed redirect (a hop to an open host, IPv6 hop), ky client, `resilientProxy` (chain route and health JSON).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. `BreakerOptions.maxHosts` JSDoc "least recently used evicted first" and docs/breakers.md "LRU-bounded by
 *    `breaker.maxHosts`". Observed: a chain that passes over an endpoint for its open breaker does not count that as
 *    a use of the breaker. With `maxHosts: 3`, host A opened by a chain's first endpoint, then a plain call to C,
 *    then a chain call that passes A over (and is served by B), a call to a fourth host D evicts A, not C (idle the
 *    longest): the next chain call sends A the request again, a dead host whose breaker had just refused it. A plain
 *    call refused by the same open breaker does count as a use and keeps it (held below). The pass-over reads the
 *    breaker through `BreakerRegistry.known` (src/policies/breaker-registry.ts), which uses `LruMap.peek` (no
 *    recency) where a call uses `entry` → `LruMap.get`; `openRefusal` in src/fallback/try-endpoints.ts.
 * 2. Same sentences, a followed redirect: a hop its open host's breaker refuses (`CircuitOpenError`,
 *    `afterRedirect: true`) is no use either. With `maxHosts: 3`, B opened, then C called, then A redirecting to B
 *    (hop refused), a call to D evicts B: A's next redirect is sent on to B. Same root: `admitHop`
 *    (src/http/send/send-attempt.ts) reads the hop's host through `BreakerRegistry.known`.
 * 3. `BreakerEvent.reason` JSDoc: "failure rate 0.60 over 20 calls (last: attempt timeout)". Observed: a breaker
 *    opened by attempt timeouts says "failure rate 1.00 over 2 calls (last: TimeoutError)", and `health()`'s
 *    `lastError` says `TimeoutError`; one opened by refused connections says "(last: TypeError)" where the `retry`
 *    event of the same attempt says "connection refused". The per-host breaker is told the error through
 *    `CircuitBreaker.reportError` (src/policies/circuit-breaker.ts), which names it by `errorName` (its class name);
 *    the names people use come from `failureReason` (src/http/send/failure-reason.ts), which only the retry events
 *    read.
 *
 * Held (plain `it`):
 * - LRU on a plain call: a call refused by an open breaker counts as a use; D evicts the idle host, the open one
 *   keeps refusing, nothing sent.
 * - IPv6: `[::1]`, `[0:0:0:0:0:0:0:1]` (a `Request`), `HTTP://[0000::0001]` are one breaker; it opens on the third
 *   503, a redirect from 127.0.0.1 to `[0::1]` is refused with that host's `CircuitOpenError` (`key` `[::1]:port`,
 *   `afterRedirect`), a `redirect` event before it, nothing sent there, the first host's attempt a success.
 * - Defaults and the flaky API: 300 calls to a host answering a seeded 10% of requests with 503, no call refused,
 *   breaker closed, `health()` `failureRate` below 0.2; a dead host (ky client, then a `Request`): four calls of
 *   three attempts (12 requests), the fifth refused unsent with `retryAt` now + 30 s.
 * - Event order on a trip: `retry`, `retry`, `breaker` (closed → open, gen 1, openUntil now + 30 s, "12 failures in
 *   a row (last: status 503)"), then `request`; half-open: `health()` reads `half_open` at 30 s with no event, the
 *   next call fires open → half_open, two probes close it (half_open → closed, "2 successful probes"),
 *   `lastFailureTime` null again, `status` `degraded` (the minute's error rate), no longer `unhealthy`.
 * - Probe lease: a probe unreported for `probeTimeout` makes `health()` read `open`, `unhealthy`, `openUntil` null,
 *   with no event; the next call is refused and fires half_open → open "probe lease expired" with `openUntil` now +
 *   30 s; the probe's late 200 changes nothing.
 * - A chain endpoint waiting 10 s to retry: another call opens its host, the wait ends with the clock unmoved, the
 *   chain moves on (`fallback` event `from` p `reason` "status 503" `next` q), `getResilienceInfo` attempts 2,
 *   endpoint q, `fromFallback`.
 * - `resilientProxy`: a chain route whose first endpoint is open answers from the second, `x-resilience-endpoint`
 *   q; the health JSON lists the open host with its reason and counts, `unhealthy`; no query value anywhere.
 *
 * Docs-silent (not pinned):
 * - A chain endpoint whose host is half-open with every probe slot taken is skipped unsent (the send's
 *   `CircuitOpenError`) but not as a pass-over: its `fallback` event's reason is the error's text
 *   ("CircuitOpenError: circuit for … is open until …", not "circuit open") and the chain's statistics count it as
 *   a failed call (adaptive order moves it down), where an open one is "not counted". A redirect's hop treats
 *   "half-open with every probe slot taken" as open; the chain's pass-over check (`openRefusal`) asks `isOpen()`
 *   only.
 * - The `retry` event's `url` for a chain endpoint is the endpoint's URL (its `key` the endpoint's host), while the
 *   `RetryEvent.url` JSDoc says "The call's URL without its query".
 */
import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isCircuitOpenError, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { seededRandom, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
const d = httpUpstream();
serveDuringFile(a, b, c, d);

/** A server on the IPv6 loopback: `[::1]` written several ways is one host. */
const v6 = { hits: [] as string[], status: 503, port: 0 };
const server6 = createServer((req, res) => {
  v6.hits.push(req.url ?? "");
  res.statusCode = v6.status;
  res.end("no");
});
beforeAll(async () => {
  server6.listen(0, "::1");
  await once(server6, "listening");
  v6.port = (server6.address() as AddressInfo).port;
});
afterAll(() => {
  server6.closeAllConnections();
  server6.close();
});

function answer(status: number, headers: Record<string, string> = {}) {
  return (h: { res: ServerResponse }) => {
    h.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) h.res.setHeader(k, v);
    h.res.end(status === 200 ? "ok" : "no");
  };
}

type Recorded = [string, Record<string, unknown>];
const names = ["retry", "request", "breaker", "fallback", "redirect"] as const;
function record(layer: Pick<Resilience, "on">): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of names) layer.on(name, (event) => seen.push([name, { ...(event as object) }]));
  return seen;
}
const of = (seen: Recorded[], name: string) => seen.filter(([n]) => n === name).map(([, e]) => e);
const keys = (layer: Resilience) => Object.keys(layer.health().breakers).sort();

describe("maxHosts: least recently used evicted first", () => {
  function chained(clock: TestClock) {
    return createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, maxHosts: 3 },
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
  }

  it("counts a chain's pass-over of an open endpoint as a use: a newer idle host goes first", async () => {
    const clock = new TestClock(1_000_000);
    const layer = chained(clock);
    const seen = record(layer);
    a.on(answer(503));
    // The chain's first endpoint fails and opens its host; the second serves.
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    await layer.fetch(`${c.base}/`);
    // A is passed over for its open breaker (a use of that breaker), then B serves.
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(of(seen, "fallback").at(-1)).toEqual({ chain: "gen", from: "p", reason: "circuit open", next: "q" });
    expect(a.hits).toHaveLength(1);
    // A fourth host needs room: C, idle since before A refused a call, is the least recently used.
    await layer.fetch(`${d.base}/`);
    expect(keys(layer)).toEqual([a.host, b.host, d.host].sort()); // observed: C kept, A evicted
    // A's breaker still refuses: the dead host is sent nothing.
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(a.hits).toHaveLength(1); // observed: 2
  });

  it("counts a redirect hop its open breaker refused as a use: a newer idle host goes first", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, maxHosts: 3 } });
    b.on(answer(503));
    a.on(answer(307, { location: `${b.base}/t` }));
    await layer.fetch(`${b.base}/x`);
    expect(layer.health().breakers[b.host]?.state).toBe("open");
    await layer.fetch(`${c.base}/`);
    const refused = await rejection(layer.fetch(`${a.base}/x`));
    expect(isCircuitOpenError(refused) && refused.key === b.host && refused.afterRedirect).toBe(true);
    expect(b.hits).toHaveLength(1);
    await layer.fetch(`${d.base}/`);
    expect(keys(layer)).toEqual([a.host, b.host, d.host].sort()); // observed: B evicted, C kept
    const again = await rejection(layer.fetch(`${a.base}/x`)); // observed: resolves with B's 503
    expect(isCircuitOpenError(again)).toBe(true);
    expect(b.hits).toHaveLength(1); // observed: 2
  });

  it("counts a plain call its open breaker refused as a use: the idle host goes, the open one keeps refusing", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, maxHosts: 3 } });
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    await layer.fetch(`${b.base}/`);
    await layer.fetch(`${c.base}/`);
    expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/x`)))).toBe(true);
    await layer.fetch(`${d.base}/`);
    expect(keys(layer)).toEqual([a.host, c.host, d.host].sort());
    expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/x`)))).toBe(true);
    expect(a.hits).toHaveLength(1);
  });
});

describe("a breaker's reason names the failure", () => {
  it("says `attempt timeout` for attempts the layer's timeout cut, as the BreakerEvent JSDoc shows", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1000 },
      breaker: { failureThreshold: 100, minimumCalls: 2, failureRate: 0.5 },
    });
    const seen = record(layer);
    a.on(() => {}); // never answers
    const calls = [layer.fetch(`${a.base}/x`), layer.fetch(`${a.base}/x`)].map((call) => rejection(call));
    await a.nth(2);
    await clock.advance(1000);
    for (const error of await Promise.all(calls)) expect((error as Error).name).toBe("TimeoutError");
    const [opened] = of(seen, "breaker");
    expect(opened).toMatchObject({ from: "closed", to: "open" });
    // observed: "failure rate 1.00 over 2 calls (last: TimeoutError)"
    expect(opened?.reason).toBe("failure rate 1.00 over 2 calls (last: attempt timeout)");
  });

  it("says `status 503` for answers, and `connection refused` for a refused connection, as the retry event does", async () => {
    const clock = new TestClock(1_000_000);
    const refused = await refusedOrigin();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const seen = record(layer);
    await clock.run(rejection(layer.fetch(`${refused}/x`)));
    expect(of(seen, "retry")).toEqual([expect.objectContaining({ reason: "connection refused" })]);
    // Defect 3 above, fixed: the breaker's words are the retry event's, not the error's class.
    expect(of(seen, "breaker")[0]?.reason).toBe("2 failures in a row (last: connection refused)");
    a.on(answer(503));
    const l2 = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 } });
    const seen2 = record(l2);
    await l2.fetch(`${a.base}/x`);
    expect(of(seen2, "breaker")[0]?.reason).toBe("1 failure in a row (last: status 503)");
  });
});

describe("per-host keying: IPv6", () => {
  it("keys [::1] however it is written, and refuses a redirect's hop to it once it is open", async () => {
    v6.hits.length = 0;
    v6.status = 503;
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 3 } });
    const seen = record(layer);
    const host = `[::1]:${v6.port}`;
    expect((await layer.fetch(`http://[::1]:${v6.port}/a?key=SECRET`)).status).toBe(503);
    expect((await layer.fetch(new Request(`http://[0:0:0:0:0:0:0:1]:${v6.port}/b`))).status).toBe(503);
    const third = await layer.fetch(`HTTP://[0000::0001]:${v6.port}/c`);
    expect(getResilienceInfo(third)).toMatchObject({ attempts: 1, endpoint: host });
    expect(keys(layer)).toEqual([host]);
    expect(of(seen, "breaker")).toEqual([
      expect.objectContaining({
        key: host,
        from: "closed",
        to: "open",
        reason: "3 failures in a row (last: status 503)",
      }),
    ]);
    a.on(answer(307, { location: `http://[0::1]:${v6.port}/hop?key=SECRET` }));
    const error = await rejection(layer.fetch(`${a.base}/go?key=SECRET`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ key: host, afterRedirect: true, retryAt: 1_030_000 });
    expect(v6.hits).toEqual(["/a?key=SECRET", "/b", "/c"]);
    const order = seen.map(([name]) => name);
    expect(order.slice(-2)).toEqual(["redirect", "request"]);
    expect(of(seen, "redirect").at(-1)).toMatchObject({ to: `http://[::1]:${v6.port}/hop`, status: 307 });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(JSON.stringify([seen, layer.debugInfo(), String(error)])).not.toContain("SECRET");
  });
});

describe("defaults", () => {
  it("leave a host alone that answers a seeded 10% of requests with 503", async () => {
    const random = seededRandom(48);
    const failing = new Set<number>();
    for (let n = 1; n <= 400; n++) if (random() < 0.1) failing.add(n);
    a.on((h) => answer(failing.has(h.n) ? 503 : 200)(h));
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock });
    let refused = 0;
    let served = 0;
    for (let i = 0; i < 300; i++) {
      const outcome = await clock.run(layer.fetch(`${a.base}/gen`)).catch((e: unknown) => e);
      if (isCircuitOpenError(outcome)) refused++;
      else if (outcome instanceof Response && outcome.status === 200) served++;
    }
    expect(refused).toBe(0);
    expect(served).toBeGreaterThan(295);
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", gen: 0 });
    expect(health.breakers[a.host]?.failureRate).toBeLessThan(0.2);
  });

  it("open a dead host within four calls: ky client, then a Request, the fifth refused unsent", async () => {
    a.on(answer(503));
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock });
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    for (let i = 0; i < 2; i++) expect((await clock.run(api.get(`${a.base}/k`))).status).toBe(503);
    for (let i = 0; i < 2; i++)
      expect((await clock.run(layer.fetch(new Request(`${a.base}/r`, { method: "PUT", body: "x" })))).status).toBe(503);
    expect(a.hits).toHaveLength(12);
    const error = await rejection(layer.fetch(new Request(`${a.base}/r`, { method: "PUT", body: "x" })));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ key: a.host, retryAt: clock.now() + 30_000 });
    expect(a.hits).toHaveLength(12);
  });
});

describe("events and health around a spell", () => {
  it("orders retry, breaker, request on a trip; half-opens at the first call after timeout; two probes close", async () => {
    a.on(answer(503));
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: { initialDelay: 100, jitter: "none" } });
    const seen = record(layer);
    for (let i = 0; i < 4; i++) await clock.run(layer.fetch(`${a.base}/x`));
    const opened = clock.now();
    expect(seen.slice(-4)).toEqual([
      ["retry", expect.objectContaining({ attempt: 1, reason: "status 503" })],
      ["retry", expect.objectContaining({ attempt: 2, reason: "status 503" })],
      [
        "breaker",
        {
          key: a.host,
          from: "closed",
          to: "open",
          reason: "12 failures in a row (last: status 503)",
          gen: 1,
          openUntil: opened + 30_000,
        },
      ],
      ["request", expect.objectContaining({ key: a.host, status: 503, attempts: 3, outcome: "response" })],
    ]);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "open",
      failureCount: 12,
      consecutiveFailures: 12,
      failureRate: 1,
      lastError: "status 503",
      lastFailureTime: opened,
      openUntil: opened + 30_000,
    });
    await clock.advance(30_000);
    const count = seen.length;
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null, failureCount: 12 });
    expect(seen).toHaveLength(count); // a read makes no change
    a.on(answer(200));
    await layer.fetch(`${a.base}/x`);
    await layer.fetch(`${a.base}/x`);
    expect(of(seen, "breaker").slice(1)).toEqual([
      { key: a.host, from: "open", to: "half_open", reason: "timeout elapsed", gen: 2, openUntil: null },
      { key: a.host, from: "half_open", to: "closed", reason: "2 successful probes", gen: 3, openUntil: null },
    ]);
    expect(layer.health().breakers[a.host]).toMatchObject({
      state: "closed",
      failureCount: 0,
      consecutiveFailures: 0,
      lastError: null,
      lastFailureTime: null,
    });
    // The four failed calls of the last minute still weigh in the error rate (4 of 6): degraded, not unhealthy.
    expect(layer.health()).toMatchObject({ status: "degraded", errorRate: 4 / 6 });
  });

  it("reads a probe whose lease ran out as open, re-opens it at the next call, and lets its late answer count for nothing", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 } });
    const seen = record(layer);
    a.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    await clock.advance(30_000);
    let probe: Hit | undefined;
    a.on((h) => {
      probe = h;
    });
    const call = layer.fetch(`${a.base}/probe`);
    await a.nth(2);
    await clock.advance(30_000);
    const count = seen.length;
    expect(layer.health()).toMatchObject({ status: "unhealthy" });
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", openUntil: null });
    expect(seen).toHaveLength(count);
    const refused = await rejection(layer.fetch(`${a.base}/x`));
    expect(refused).toMatchObject({ key: a.host, retryAt: clock.now() + 30_000 });
    expect(of(seen, "breaker").at(-1)).toEqual({
      key: a.host,
      from: "half_open",
      to: "open",
      reason: "probe lease expired",
      gen: 3,
      openUntil: clock.now() + 30_000,
    });
    probe?.res.end("late");
    expect((await call).status).toBe(200);
    expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", gen: 3, openUntil: clock.now() + 30_000 });
    expect(a.hits).toHaveLength(2);
  });

  it("ends a chain endpoint's retry wait when another call opens its host: the chain moves on", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 10_000, jitter: "none" },
      breaker: { failureThreshold: 2 },
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
    const seen = record(layer);
    a.on(answer(503));
    const chainCall = layer.fetch(`${a.base}/v1/x`);
    await clock.waitForTimers(1);
    expect((await layer.fetch(`${a.base}/other`)).status).toBe(503); // the second failure opens A
    const res = await chainCall;
    expect(clock.now()).toBe(1_000_000);
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "p", reason: "status 503", next: "q" }]);
    expect(of(seen, "request").map((e) => e.key)).toEqual([a.host, "gen"]);
    expect(a.hits).toHaveLength(2);
  });
});

describe("resilientProxy", () => {
  it("serves a chain route past an open endpoint and shows the host in its health JSON, keys cut", async () => {
    a.on(answer(503));
    b.on(answer(200));
    const clock = new TestClock(1_000_000);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/v1?key=SECRET` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        },
      ],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 } },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
    const first = await proxy.fetch(new Request("https://w.example/v1/x?token=SECRET"), {}, ctx);
    expect(first.headers.get("x-resilience-endpoint")).toBe("q");
    expect(first.headers.get("x-resilience-attempts")).toBe("2");
    const second = await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx);
    expect(second.headers.get("x-resilience-attempts")).toBe("1");
    expect(a.hits).toHaveLength(1);
    const text = await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).text();
    const health = JSON.parse(text);
    expect(health.status).toBe("unhealthy");
    expect(health.breakers[a.host]).toMatchObject({
      state: "open",
      reason: "1 failure in a row (last: status 503)",
      failureCount: 1,
      openUntil: 1_030_000,
    });
    expect(health.fallback.gen.fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
    expect(text).not.toContain("SECRET");
  });
});
