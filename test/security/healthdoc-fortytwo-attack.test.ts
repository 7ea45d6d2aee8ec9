/**
 * Outside-in attack on docs/health-and-events.md, sentence by sentence, on every path a call takes.
 * Docs: docs/health-and-events.md ("`health()` returns plain JSON: `status` (`unhealthy` when a breaker is open,
 * `degraded` above a 10% error rate), `errorRate` over the last minute (in twelve 5-second steps: a call counts for 55
 * to 60 seconds) …", "an open one until when it stays open (`openUntil` …)", "`lastFailureTime` is when the last
 * failed attempt counted, `null` before any and again once a spell ends in a close", "`debugInfo()` adds totals (of
 * calls that settled with a response or an error …), the last 50 failures (URLs without their query string, which
 * may hold keys)", "`analytics.clearHistory()` forgets the totals, the failures and the error rate's minute
 * (`errorRate` reads 0 after it; the degradation level and its window belong to the level …)", "`request` fires once
 * per call the layer started, when it settles (`status` or `error`, `attempts`, `durationMs`, `outcome`)", "`redirect`
 * for each redirect the library follows", "`replay` when a body was too large to keep for retries", "A listener that
 * throws, or an async one whose promise rejects, is reported … and never breaks the request; the request does not
 * wait for an async listener", "As with the DOM's `EventTarget`, an event goes to the listeners subscribed when it
 * fired, less any unsubscribed meanwhile: one that subscribes again while it runs, or adds another, is not called
 * again for that event"); docs/breakers.md "A clock set back" ("an open spell then waits its own length again from
 * now … every window and pace counts on from now"); SECURITY.md ("No secret in events, errors, `health()` or
 * `debugInfo()`"); the `ResilienceInfo` JSDoc (src/http/resilience-info.ts: `attempts` "each request the layer
 * started (a hedge's too …), with the redirect hops it followed as part of it").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `TestClock` (./testing, under a clock of the test's own that can be set back); node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts) that count every request; `watchUnhandled`
 * (test/helpers/unhandled.ts).
 * Paths: plain URL call, `Request` input, a fallback chain that moves on, a hedge (winner and loser), a redirect
 * followed by the library (Node), a degradation rewrite by a query rule, `resilience.execute`, the ky client; for
 * each, the `request` event, `getResilienceInfo`, `debugInfo().totals` and `recentErrors`, `health()` (its JSON round
 * trip) and the servers' own tally compared; a key in the query and fragment looked for in every event and in
 * `debugInfo()`.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none. Every sentence driven below held.
 *
 * Held (plain `it`):
 * - Counts agree on every path (plain 503 exhausted, `Request` input, chain moving on, hedge, redirect to a 503,
 *   rewrite, ky `HTTPError`): the `request` event's `attempts` equals `getResilienceInfo(…).attempts` and the
 *   requests the servers received (the hedge's loser and the redirect hop included), its `durationMs` equals the
 *   info's; `totals.calls` equals the `request` events, `totals.failures` equals `recentErrors.length` and
 *   `errorRate × calls`; `execute` counts once under `"execute"` with an empty `url`, one `retry` event per wait.
 * - No `?key=` value nor fragment in any event or in `debugInfo()` on any of those paths (chain endpoints with a
 *   query of their own, a `Location` with a query and fragment, the rewritten query).
 * - `health()` and `debugInfo()` survive a JSON round trip unchanged (strictly: no `undefined`, function, `NaN` or
 *   `Infinity` anywhere) with an open breaker held by `Retry-After`, a bulkhead, a chain, the degradation stage and
 *   a named breaker.
 * - Listeners that throw, reject, or return a thenable whose `then` throws, on all eight events: every call still
 *   settles as without them, nothing unhandled, and the listeners after them hear every event.
 * - Unsubscribing during an emit: a later listener unsubscribed by an earlier one is not called; one that
 *   unsubscribes and subscribes itself again is called once; one added during the emit hears only the next event.
 * - A clock set back a day: an open breaker's `openUntil` is now + `timeout` (not a day on), it reads `half_open`
 *   once `timeout` has passed from now and its probe goes through; the error rate's minute counts on from now;
 *   `durationMs` is never negative.
 * - `analytics.clearHistory()`: totals 0, `recentErrors` empty, `errorRate` 0 and `status` `healthy` (a closed
 *   breaker) or still `unhealthy` (an open one); the degradation window and the breakers' own counts stay.
 * - `errorRate`'s minute: a call counts at 55 s after it, and no longer at 60 s.
 *
 * Docs-silent (not pinned):
 * - After a clock set back, `lastFailureTime` and `recentErrors[].time` keep the instant as it was read (ahead of
 *   the clock now); the docs say when the attempt counted, not how it reads after a step back.
 * - `debugInfo()` holds `options.timeout` as `{}` and the degradation window's `p95` as `undefined` with no samples:
 *   only `health()` is promised as plain JSON.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type Clock,
  createResilience,
  getResilienceInfo,
  type RequestEvent,
  type Resilience,
  type ResilienceEvents,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const SECRET = "S3CR3T";
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const busy = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};
const names = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
type Name = (typeof names)[number];

function logAll(r: Resilience): Array<[Name, unknown]> {
  const log: Array<[Name, unknown]> = [];
  for (const n of names) r.on(n, (e: ResilienceEvents[typeof n]) => void log.push([n, e]));
  return log;
}
const requests = (log: Array<[Name, unknown]>): RequestEvent[] =>
  log.filter(([n]) => n === "request").map(([, e]) => e as RequestEvent);
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every place that counts agrees with the others. */
function expectAgreement(r: Resilience, log: Array<[Name, unknown]>) {
  const info = r.debugInfo();
  const events = requests(log).filter((e) => e.outcome !== "aborted");
  expect(info.totals.calls).toBe(events.length);
  const failed = events.filter((e) => e.status === undefined || e.status >= 500 || e.status === 429).length;
  expect(info.totals.failures).toBe(failed);
  expect(info.recentErrors).toHaveLength(failed);
  expect(info.errorRate * info.totals.calls).toBeCloseTo(failed, 10);
  expect(JSON.stringify(log)).not.toContain(SECRET);
  expect(JSON.stringify(info)).not.toContain(SECRET);
  expect(JSON.stringify(log)).not.toContain("frag");
}

/** Anything JSON would lose or change. */
function nonJson(value: unknown, path = "$"): string[] {
  if (value === null || typeof value === "string" || typeof value === "boolean") return [];
  if (typeof value === "number") return Number.isFinite(value) ? [] : [`${path}: ${value}`];
  if (typeof value !== "object") return [`${path}: ${typeof value}`];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonJson(v, `${path}[${i}]`));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return [`${path}: not a plain object`];
  return Object.entries(value).flatMap(([k, v]) => nonJson(v, `${path}.${k}`));
}

/** A clock the test can set back: a TestClock seen through an offset. */
function steppable(start = 1_700_000_000_000) {
  const base = new TestClock(start);
  let offset = 0;
  const clock: Clock = { now: () => base.now() + offset, setTimer: (cb, ms) => base.setTimer(cb, ms) };
  return {
    base,
    clock,
    back(ms: number) {
      offset -= ms;
    },
  };
}

describe("counts agree on every path", () => {
  it("plain call, `Request` input: event attempts = info attempts = requests received; totals agree", async () => {
    a.on(busy);
    const r = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const log = logAll(r);
    const plain = await r.fetch(`${a.base}/x?key=${SECRET}#frag`);
    const viaRequest = await r.fetch(new Request(`${a.base}/y?key=${SECRET}#frag`, { method: "PUT", body: "x" }));
    const [e1, e2] = requests(log);
    expect([e1?.attempts, e2?.attempts]).toEqual([3, 3]);
    expect(getResilienceInfo(plain)?.attempts).toBe(3);
    expect(getResilienceInfo(viaRequest)?.attempts).toBe(3);
    expect(getResilienceInfo(plain)?.durationMs).toBe(e1?.durationMs);
    expect(e2?.url).toBe(`${a.base}/y`);
    expect(e2?.method).toBe("PUT");
    expect(a.hits).toHaveLength(6);
    expect(log.filter(([n]) => n === "retry")).toHaveLength(4);
    expectAgreement(r, log);
    expect(r.health().status).toBe("degraded");
  });

  it("a chain that moves on (endpoints with a query of their own): attempts across endpoints, one call", async () => {
    a.on(busy);
    const r = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=${SECRET}` },
            { name: "q", url: `${b.base}/v1?key=${SECRET}` },
          ],
        },
      ]),
    });
    const log = logAll(r);
    const res = await r.fetch(`${a.base}/v1/z?key=${SECRET}#frag`);
    const [event] = requests(log);
    expect(res.status).toBe(200);
    expect(event).toMatchObject({ key: "c", status: 200, attempts: 3, outcome: "response" });
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "q", fromFallback: true });
    expect(a.hits.length + b.hits.length).toBe(3);
    expect(log.filter(([n]) => n === "fallback").map(([, e]) => e)).toEqual([
      { chain: "c", from: "p", reason: "status 503", next: "q" },
    ]);
    expect(r.health().fallback.c?.fallbacks).toMatchObject({ p: { calls: 1, successes: 0 }, q: { calls: 1 } });
    expectAgreement(r, log);
  });

  it("a hedge: the loser is an attempt too, the call one success", async () => {
    a.on((h) => setTimeout(() => h.res.end("slow"), 40));
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const log = logAll(r);
    const res = await r.fetch(`${a.base}/v1/z?key=${SECRET}`);
    await res.text();
    const [event] = requests(log);
    expect(event).toMatchObject({ status: 200, attempts: 2 });
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "q", fromFallback: true });
    expect(a.hits.length + b.hits.length).toBe(2);
    expect(r.health().fallback.h?.fallbacks).toMatchObject({
      p: { calls: 1, successes: 0 },
      q: { calls: 1, successes: 1 },
    });
    expectAgreement(r, log);
  });

  it("a redirect followed by the library: hops are one attempt, a `redirect` event per hop, its URLs cut", async () => {
    a.on((h) => {
      h.res.statusCode = 302;
      h.res.setHeader("location", `${b.base}/y?key=${SECRET}#frag`);
      h.res.end();
    });
    b.on(busy);
    const r = createResilience({ redirects: "library", retry: { ...fast, maxAttempts: 2 } });
    const log = logAll(r);
    const res = await r.fetch(`${a.base}/x?key=${SECRET}`);
    const [event] = requests(log);
    expect(event).toMatchObject({ key: a.host, status: 503, attempts: 2 });
    expect(getResilienceInfo(res)?.attempts).toBe(2);
    expect([a.hits.length, b.hits.length]).toEqual([2, 2]);
    const redirects = log.filter(([n]) => n === "redirect").map(([, e]) => e);
    expect(redirects).toHaveLength(2);
    expect(redirects[0]).toMatchObject({ from: `${a.base}/x`, to: `${b.base}/y`, status: 302, crossOrigin: true });
    expect(Object.keys(r.health().breakers)).toEqual([a.host]);
    expectAgreement(r, log);
  });

  it("a degradation rewrite by a query rule: the rewritten call counts once, its URL cut", async () => {
    const r = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: `${a.base}/gen`, params: { steps: { query: "steps" } } }] }),
    });
    r.degradation?.setLevel("medium");
    const log = logAll(r);
    const res = await r.fetch(`${a.base}/gen?steps=50&key=${SECRET}`);
    expect(a.hits[0]?.path).toContain("steps=30");
    const [event] = requests(log);
    expect(event).toMatchObject({ url: `${a.base}/gen`, status: 200, attempts: 1 });
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 1, degradationLevel: "medium" });
    expect(r.debugInfo().degradation?.window.samples).toBe(1);
    expectAgreement(r, log);
  });

  it('`execute`: one run counted under "execute" with an empty url, a `retry` event per wait', async () => {
    const r = createResilience({ retry: { ...fast, maxAttempts: 3 } });
    const log = logAll(r);
    const err = await r
      .execute(() => {
        throw new RangeError(`no https://x.example/?key=${SECRET}`);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const retries = log.filter(([n]) => n === "retry").map(([, e]) => e);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatchObject({ key: "execute", url: "", reason: "RangeError", retryAfter: false });
    const info = r.debugInfo();
    expect(info.totals).toEqual({ calls: 1, failures: 1 });
    expect(info.recentErrors[0]).toMatchObject({ key: "execute", url: "" });
    expect(info.errorRate).toBe(1);
    expect(JSON.stringify(info)).not.toContain(SECRET);
  });

  it("the ky client: an `HTTPError` 503 counts as the plain call, its info on `error.response`", async () => {
    a.on(busy);
    const r = createResilience({ retry: { ...fast, maxAttempts: 2 } });
    const log = logAll(r);
    const api = createClient({ resilience: r });
    const err = (await api.get(`${a.base}/k?key=${SECRET}`).catch((e: unknown) => e)) as { response: Response };
    expect(getResilienceInfo(err.response)?.attempts).toBe(2);
    expect(requests(log)).toHaveLength(1);
    expect(requests(log)[0]).toMatchObject({ status: 503, attempts: 2, url: `${a.base}/k` });
    expect(a.hits).toHaveLength(2);
    expectAgreement(r, log);
  });
});

describe("health() is plain JSON", () => {
  it("with a Retry-After hold, a bulkhead, a chain, degradation and a named breaker it round-trips unchanged", async () => {
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.setHeader("retry-after", "3600");
      h.res.end();
    });
    const r = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      bulkhead: { maxConcurrent: 2, maxQueue: 1 },
      degradation: degradation({ rules: [] }),
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: `${b.base}/c` }] }]),
    });
    await r.fetch(`${a.base}/x`);
    await r.fetch(`${b.base}/c/1`);
    await r.breaker("upscaler").execute(async () => 1);
    const h = r.health();
    expect(h.status).toBe("unhealthy");
    expect(h.breakers[a.host]).toMatchObject({ state: "open", lastError: "Retry-After 3600 s on status 503" });
    expect(h.breakers[a.host]?.openUntil).toBeGreaterThan(h.time + 3_599_000);
    expect(nonJson(h)).toEqual([]);
    expect(JSON.parse(JSON.stringify(h))).toStrictEqual(h);
    // A fresh layer, never called.
    const empty = createResilience({}).health();
    expect(nonJson(empty)).toEqual([]);
    expect(JSON.parse(JSON.stringify(empty))).toStrictEqual(empty);
  });
});

describe("listeners", () => {
  it("ones that throw, reject or return a bad thenable break no call; the listeners after them hear all", async () => {
    a.on(busy);
    b.on(busy);
    c.on((h) => {
      if (h.path !== "/r") return busy(h);
      h.res.statusCode = 302;
      h.res.setHeader("location", "/y");
      h.res.end();
    });
    const r = createResilience({
      redirects: "library",
      retry: { ...fast, maxAttempts: 2 },
      maxReplayBytes: 2,
      breaker: { failureThreshold: 2 },
      degradation: degradation({ rules: [] }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/c` },
            { name: "q", url: `${b.base}/c` },
          ],
        },
      ]),
    });
    const heard: string[] = [];
    const reported: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void reported.push(args);
    try {
      for (const n of names) {
        r.on(n, () => {
          throw new Error(`sync ${n}`);
        });
        r.on(n, async () => {
          throw new Error(`async ${n}`);
        });
        r.on(
          n,
          () =>
            ({
              // biome-ignore lint/suspicious/noThenProperty: a thenable whose `then` throws is what is tried
              then: () => {
                throw new Error("then");
              },
            }) as unknown as undefined,
        );
        r.on(n, () => new Promise<void>(() => {}) as unknown as undefined); // never settles: not awaited
        r.on(n, () => void heard.push(n));
      }
      const { value, unhandled } = await watchUnhandled(async () => {
        const x = await r.fetch(`${a.base}/c/1`);
        const y = await r.fetch(`${c.base}/r`, { method: "POST", body: "12345" });
        const level = r.degradation?.degrade("test");
        return [x.status, y.status, level?.name];
      });
      expect(value).toEqual([503, 503, "high"]);
      expect(unhandled).toEqual([]);
    } finally {
      console.error = original;
    }
    for (const n of ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect"])
      expect(heard).toContain(n);
    expect(reported.length).toBeGreaterThanOrEqual(heard.length * 3);
  });

  it("unsubscribing during an emit: as EventTarget", async () => {
    const r = createResilience({ retry: false });
    const order: string[] = [];
    let offLater = () => {};
    let offSelf = () => {};
    const self = () => {
      order.push("self");
      offSelf();
      offSelf = r.on("request", self);
    };
    const added = () => void order.push("added");
    r.on("request", () => {
      order.push("first");
      offLater();
      r.on("request", added);
    });
    offSelf = r.on("request", self);
    offLater = r.on("request", () => void order.push("later"));
    await r.fetch(`${a.base}/1`);
    expect(order).toEqual(["first", "self"]);
    await r.fetch(`${a.base}/2`);
    // As EventTarget: one removed and added again goes to the end, after the one added meanwhile.
    expect(order).toEqual(["first", "self", "first", "added", "self"]);
  });
});

describe("time", () => {
  it("a clock set back a day: openUntil from now, half_open after timeout from now, the window counts on", async () => {
    const { clock, base, back } = steppable();
    const r = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, timeout: 1000 } });
    const log = logAll(r);
    a.on(busy);
    await r.fetch(`${a.base}/x`);
    back(86_400_000);
    const h = r.health();
    expect(h.breakers[a.host]).toMatchObject({ state: "open", openUntil: clock.now() + 1000 });
    expect(h.status).toBe("unhealthy");
    expect(h.errorRate).toBe(1);
    await base.advance(1000);
    expect(r.health().breakers[a.host]).toMatchObject({ state: "half_open", openUntil: null });
    a.on((hit) => hit.res.end("ok"));
    const res = await r.fetch(`${a.base}/x`);
    expect(res.status).toBe(200);
    for (const e of requests(log)) expect(e.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.health().errorRate).toBe(0.5);
    await base.advance(60_000);
    expect(r.health().errorRate).toBe(0);
  });

  it("errorRate's minute: a call counts at 55 s, not at 60 s", async () => {
    const clock = new TestClock(1_700_000_000_000);
    const r = createResilience({ clock, retry: false });
    a.on(busy);
    await r.fetch(`${a.base}/x`);
    await clock.advance(55_000);
    expect(r.health().errorRate).toBe(1);
    await clock.advance(5_000);
    expect(r.health().errorRate).toBe(0);
    expect(r.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("analytics.clearHistory(): totals, failures and the minute go; the level's window and breakers stay", async () => {
    const r = createResilience({
      retry: false,
      degradation: degradation({ rules: [] }),
      breaker: { failureThreshold: 3 },
    });
    a.on(busy);
    await r.fetch(`${a.base}/x`);
    await r.fetch(`${a.base}/x`);
    r.analytics.clearHistory();
    let info = r.debugInfo();
    expect(info.totals).toEqual({ calls: 0, failures: 0 });
    expect(info.recentErrors).toEqual([]);
    expect(info.errorRate).toBe(0);
    expect(info.status).toBe("healthy");
    expect(info.degradation?.window).toMatchObject({ samples: 2, errorRate: 1 });
    expect(info.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 2, consecutiveFailures: 2 });
    await r.fetch(`${a.base}/x`);
    r.analytics.clearHistory();
    info = r.debugInfo();
    expect(info.status).toBe("unhealthy");
    expect(info.errorRate).toBe(0);
    await wait(1);
  });
});
