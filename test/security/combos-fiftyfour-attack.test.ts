/**
 * Outside-in attack on what a call reports about itself (`getResilienceInfo`, the events, `health()`, `debugInfo()`,
 * chain statistics, the proxy's `x-resilience-*` headers) on COMPOSED paths, where several features act in one call.
 *
 * Docs:
 * - `ResilienceInfo` JSDoc: `attempts` "Attempts in all, across endpoints: each request the layer started (a hedge's
 *   too …), with the redirect hops it followed as part of it; an answer from a chain's `respond` is no attempt";
 *   `endpoint` "its name in a fallback chain, else the host the call was sent to. After redirects … still that first
 *   host"; `fromFallback` "True when an endpoint other than the first one served"; `durationMs` "Wall time of the
 *   whole call in ms, on the injected clock".
 * - docs/health-and-events.md: "`request` fires once per call the layer started, when it settles (`status` or
 *   `error`, `attempts`, `durationMs`, `outcome`)"; "`retry` fires before each wait"; "`fallback` fires when a chain
 *   passes over an endpoint (… `reason` "circuit open")"; "`redirect` for each redirect the library follows … (a hop
 *   whose breaker refuses it has its event too …)"; "`debugInfo()` adds totals"; "`errorRate` over the last minute".
 * - docs/fallback.md: "one whose breaker is open is skipped without a request"; "A hedge that lost counts there as a
 *   call that did not serve, as in `statistics()` (its host's breaker does not count it)"; "one passed over for its
 *   open breaker is not counted"; "A body sent once (a stream, or larger than `maxReplayBytes`) goes to one endpoint
 *   only"; "Outside a chain `endpoint` is the host the call was sent to, the first one when the layer followed
 *   redirects (its breaker counted the answer); `res.url` says where they ended".
 * - docs/retry.md: "The hops are one attempt: … the final status counts against the first host's breaker"; a hop to a
 *   host whose breaker is open "is refused …, the first host's redirect counts as its success"; "A retry is paid for
 *   when it is allowed"; ky: "`getResilienceInfo` reads the response ky resolves with (or `error.response` of its
 *   `HTTPError`)".
 * - docs/degradation.md: "A call that goes down a fallback chain is rewritten once, by the rule its own URL selects,
 *   before the chain … and an endpoint's `transform` reshapes it"; "A call takes the level it finds when it starts:
 *   its rewritten body, its level header and `getResilienceInfo(res).degradationLevel` all name that level"; a stream
 *   body past `maxReplayBytes` "goes once, as it is, unread, so its level header and `degradationLevel` name a level
 *   its body does not show".
 * - docs/cloudflare.md: the proxy "adds `x-resilience-endpoint` …, `x-resilience-attempts` and `x-degradation-level`".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback`, `degradation`, `createClient` (ky),
 * `resilientProxy`, `TestClock`; three node:http servers on 127.0.0.1 answering from scripts (503, 307 to another
 * server, 200, JSON, an echo, or held); a Standard Schema of its own; `Request`s with stream bodies. Every call goes
 * through `agree()`: one `request` event, the last, with `getResilienceInfo`'s `status`/`attempts`/`durationMs`;
 * `durationMs` = the test clock's elapsed time (and the latency window's p95); totals and the degradation window +1
 * (a failure iff 5xx/429); `retry` events = the budget's `retriesAllowed` growth; each breaker's `gen` that of its last
 * `breaker` event; bulkheads idle; no timer left.
 *
 * Paths: hedged chain, spare through a 307 to a third server (its target 503s once; the primary wins through a 307
 * after the spare started); chain whose first endpoint's breaker is open and whose second retries twice (served; all
 * failing; then a `respond`); chain endpoint redirected to a host with an open breaker; degradation (`medium`) →
 * chain `transform` → 307 (keyed POST); the level moved at each retry; `Request` with a stream body through a chain
 * whose `validate` turns down the first answer (replayable, and past `maxReplayBytes`), degraded; ky over each (5xx
 * through its `HTTPError`); `resilientProxy` with a degradation trigger over an upstream via 307, an open-breaker chain
 * and a hedged chain via 307.
 *
 * Defects pinned (`it.fails`): none. Every composed path agreed with itself and with the docs.
 *
 * Held (plain `it`):
 * - Hedge + 307: attempts 2, endpoint the spare, `fromFallback`, `res.url` the target, `redirect` then `request`, no
 *   `fallback` event; the loser's connection closed, its statistics 1/0, its breaker 0 failures; the target's 503
 *   counts on the spare's host (attempts 3), not the target's; a primary winning after the spare started: attempts 2,
 *   not `fromFallback`, the spare 1/0 in statistics, its breaker untouched.
 * - Open first breaker + two retries: attempts 3, the skipped endpoint none and not in statistics, `fallback` "circuit
 *   open" → `s`, `retry` keyed by the spare's host, one call in the totals, `errorRate` as the calls say, the open
 *   breaker's `gen` unchanged; all failing: the spare's 503, one `breaker` event, one failure, `recentErrors` with the
 *   caller's URL; a `respond` after it serving: attempts still 3.
 * - Redirect into an open breaker inside a chain: the hop's `redirect` event, nothing sent there, the endpoint counted
 *   as a failed call, the first host's breaker 0 failures, the spare serves with attempts 2.
 * - Degradation → transform → 307: every attempt and the third server's body carry the level's values, reshaped once;
 *   `degradationLevel` `medium`, attempts 4; a level moved at each retry leaves every attempt and the spare at the
 *   call's level.
 * - Stream `Request` + `validate`: replayable → rewritten once, attempts 2, the spare; past `maxReplayBytes` → one
 *   `replay` event, the first answer as it is, attempts 1, the body unrewritten under a `medium` level header.
 * - ky: the same numbers on every path, `HTTPError.response` included. resilientProxy: its three headers equal the
 *   info on each route (the level the call started at); the health JSON counts each call once.
 *
 * Docs-silent (not pinned):
 * - A chain's last endpoint that fails has its own `fallback` event with no `next` (nothing is next in line).
 * - `lastSuccessfulFallback` stays `null` when the first endpoint (a hedged primary) serves.
 * - A `redirect` event's `dropped` (the JSDoc said "names of the credential headers dropped") lists the layer's
 *   own `x-degradation-level` at a change of origin. (Docs-silent when found; the JSDoc now says every header off
 *   the allowlist, the level header too, and a test of a degraded call asserts it.)
 * - A chain endpoint whose redirect hop its target's open breaker refused is passed over with the `CircuitOpenError`'s
 *   message as `reason`, not "circuit open", and counted in its statistics as a call.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) if (!hit.res.writableEnded) hit.res.end("late");
  await new Promise((resolve) => setTimeout(resolve, 5));
});

const NAMES = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
type Recorded = [string, Record<string, unknown>];

function record(layer: Pick<Resilience, "on">): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of NAMES) layer.on(name, (event) => seen.push([name, { ...(event as object) }]));
  return seen;
}
const of = (seen: Recorded[], name: string) => seen.filter(([n]) => n === name).map(([, e]) => e);
const order = (seen: Recorded[]) => seen.map(([n]) => n);

function answer(status: number, headers: Record<string, string> = {}, body?: string) {
  return (hit: { res: ServerResponse }): void => {
    hit.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) hit.res.setHeader(k, v);
    hit.res.end(body ?? (status === 200 ? "ok" : "no"));
  };
}
const to = (location: string) => answer(307, { location });
const json = (value: unknown) => answer(200, { "content-type": "application/json" }, JSON.stringify(value));
const echo = (hit: Hit) => answer(200, { "content-type": "application/json" }, hit.body || "{}")(hit);

/** Answers in turn from `list` ("hang" holds the answer until the test ends), then 200. */
function script(server: HttpUpstream, list: Array<number | "hang" | ((hit: Hit) => void)>): void {
  const queue = [...list];
  server.on((hit) => {
    const next = queue.shift() ?? 200;
    if (next === "hang") held.push(hit);
    else if (typeof next === "function") next(hit);
    else answer(next)(hit);
  });
}

/** Settles `promise`, firing the test clock's timers one millisecond at a time, only while one is pending. */
async function drive<T>(clock: TestClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  tracked.catch(() => {});
  for (let i = 0; i < 5_000 && !done; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (!done && clock.pending() > 0) await clock.advance(1);
  }
  return tracked;
}

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

/** A Standard Schema that accepts `{ ok: true }` only. */
const okSchema = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (value: unknown) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

function layerFor(clock: TestClock, extra: { maxReplayBytes?: number } = {}) {
  return createResilience({
    clock,
    ...extra,
    retry: { ...fast, maxAttempts: 3 },
    breaker: { failureThreshold: 3, timeout: 60_000 },
    fallback: fallback([
      {
        name: "hed",
        hedge: { delay: 20 },
        endpoints: [
          { name: "hp", url: `${a.base}/h` },
          { name: "hs", url: `${b.base}/h` },
        ],
      },
      {
        name: "gen",
        endpoints: [
          { name: "p", url: `${a.base}/c` },
          { name: "s", url: `${b.base}/c` },
        ],
      },
      {
        name: "gr",
        endpoints: [
          { name: "rp", url: `${a.base}/r` },
          { name: "rs", url: `${b.base}/r` },
          { name: "cached", respond: () => new Response("cached") },
        ],
      },
      {
        name: "tr",
        endpoints: [
          { name: "tp", url: `${a.base}/t` },
          {
            name: "ts",
            url: `${b.base}/t2`,
            transform: (req) => ({
              ...req,
              body: { input: { steps: req.body?.steps, resolution: req.body?.resolution } },
            }),
          },
        ],
      },
      {
        name: "val",
        endpoints: [
          { name: "vp", url: `${a.base}/v`, validate: okSchema },
          { name: "vs", url: `${b.base}/v`, validate: okSchema },
        ],
      },
    ]),
    degradation: degradation({
      minSamples: 100,
      levelHeader: "x-degradation-level",
      triggers: { memoryUsage: 1, cpuUsage: 1 },
    }),
  });
}
type Layer = ReturnType<typeof layerFor>;

type Via = "fetch" | "ky";

/** Calls through the layer or through the ky client on it; the response either way (ky's `HTTPError` too). */
async function call(layer: Layer, via: Via, input: string | Request, init?: RequestInit): Promise<Response> {
  if (via === "fetch") return layer.fetch(input, init);
  // ky's own HTTPError for a 5xx: getResilienceInfo reads its `response`.
  return createClient({ resilience: layer })(input, init as never).catch((e: { response?: Response }) => {
    if (e.response) return e.response;
    throw e;
  });
}

interface Snapshot {
  totals: { calls: number; failures: number };
  retriesAllowed: number;
  samples: number;
  t0: number;
}
function snap(layer: Layer, clock?: TestClock): Snapshot {
  const info = layer.debugInfo();
  return {
    totals: { ...info.totals },
    retriesAllowed: info.budget?.retriesAllowed ?? 0,
    samples: info.degradation?.window.samples ?? 0,
    t0: clock?.now() ?? 0,
  };
}

/**
 * The checks every call must pass, whatever path it took: one `request` event, the last of the call's events, whose
 * `status`, `attempts` and `durationMs` are `getResilienceInfo`'s; one call more in the totals (a failure when its
 * status is a 5xx or 429) and in the degradation window; one `retry` event per retry the budget paid for; every
 * breaker's `gen` that of its last `breaker` event; no timer left.
 */
function agree(layer: Layer, clock: TestClock, before: Snapshot, seen: Recorded[], res: Response): void {
  const requests = of(seen, "request");
  expect(requests).toHaveLength(1);
  expect(order(seen).at(-1)).toBe("request");
  const info = getResilienceInfo(res);
  expect(info).toBeDefined();
  expect(requests[0]).toMatchObject({
    status: res.status,
    attempts: info?.attempts,
    durationMs: info?.durationMs,
    outcome: "response",
  });
  // The call's wall time on the layer's clock.
  expect(info?.durationMs).toBe(clock.now() - before.t0);
  const after = snap(layer);
  const failed = res.status >= 500 || res.status === 429 ? 1 : 0;
  expect(after.totals).toEqual({ calls: before.totals.calls + 1, failures: before.totals.failures + failed });
  expect(after.samples).toBe(before.samples + 1);
  // The latency window holds the call's duration.
  if (before.samples === 0) expect(layer.debugInfo().degradation?.window.p95).toBe(info?.durationMs);
  expect(after.retriesAllowed - before.retriesAllowed).toBe(of(seen, "retry").length);
  for (const [key, breaker] of Object.entries(layer.health().breakers)) {
    const last = of(seen, "breaker")
      .filter((e) => e.key === key)
      .at(-1);
    if (last) expect({ key, gen: breaker.gen }).toEqual({ key, gen: last.gen });
    expect({ key, active: breaker.active ?? 0 }).toEqual({ key, active: 0 });
  }
  expect(clock.pending()).toBe(0);
}

const stats = (layer: Layer, chain: string) =>
  (layer.health().fallback as Record<string, { fallbacks: Record<string, { calls: number; successes: number }> }>)[
    chain
  ];

describe("a hedged chain whose spare answers through a 307 to a third server", () => {
  for (const via of ["fetch", "ky"] as const) {
    it(`attempts 2, endpoint the spare, one redirect event, the losing hedge unserved (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      script(a, ["hang"]);
      script(b, [to(`${c.base}/there?tok=SECRET`)]);
      script(c, [200]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(clock, call(layer, via, `${a.base}/h/x?key=SECRET`));
      expect(await res.text()).toBe("ok");
      await a.hits[0]?.closed;
      agree(layer, clock, before, seen, res);
      expect(res.status).toBe(200);
      expect(res.url).toBe(`${c.base}/there?tok=SECRET`);
      expect(getResilienceInfo(res)).toMatchObject({
        attempts: 2,
        endpoint: "hs",
        fromFallback: true,
        degradationLevel: "full",
      });
      expect(order(seen)).toEqual(["redirect", "request"]);
      expect(of(seen, "redirect")[0]).toMatchObject({ from: `${b.base}/h/x`, to: `${c.base}/there`, status: 307 });
      expect(stats(layer, "hed")).toMatchObject({
        lastSuccessfulFallback: "hs",
        fallbacks: { hp: { calls: 1, successes: 0 }, hs: { calls: 1, successes: 1 } },
      });
      const health = layer.health();
      expect(health.errorRate).toBe(0);
      // The hedge that lost: its host's breaker does not count it.
      expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
      expect(health.breakers[b.host]).toMatchObject({ state: "closed", failureCount: 0 });
      expect([a.hits.length, b.hits.length, c.hits.length]).toEqual([1, 1, 1]);
      expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain("SECRET");
    });

    it(`the spare's redirect target answers 503 once: attempts 3, the 503 on the spare's host, not the target's (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      script(a, ["hang"]);
      script(b, [to(`${c.base}/there`), to(`${c.base}/there`)]);
      script(c, [503, 200]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(clock, call(layer, via, `${a.base}/h/x`));
      await res.text();
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "hs", fromFallback: true });
      expect(order(seen)).toEqual(["redirect", "retry", "redirect", "request"]);
      expect(of(seen, "retry")[0]).toMatchObject({ key: b.host, attempt: 1, reason: "status 503" });
      const health = layer.health();
      expect(health.breakers[b.host]).toMatchObject({ failureCount: 1, consecutiveFailures: 0 });
      expect(health.breakers[c.host]?.failureCount ?? 0).toBe(0);
      expect(stats(layer, "hed")?.fallbacks).toMatchObject({
        hp: { calls: 1, successes: 0 },
        hs: { calls: 1, successes: 1 },
      });
    });

    it(`the primary answers through a 307 once the spare runs: attempts 2, the primary, not from fallback (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      script(a, ["hang"]);
      script(b, ["hang"]);
      script(c, [200]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const pending = call(layer, via, `${a.base}/h/x`);
      const first = await a.nth(1);
      await clock.advance(20);
      const spare = await b.nth(1);
      to(`${c.base}/there`)(first);
      const res = await drive(clock, pending);
      await res.text();
      await spare.closed;
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "hp", fromFallback: false });
      expect(res.url).toBe(`${c.base}/there`);
      expect(order(seen)).toEqual(["redirect", "request"]);
      expect(stats(layer, "hed")?.fallbacks).toMatchObject({
        hp: { calls: 1, successes: 1 },
        hs: { calls: 1, successes: 0 },
      });
      expect(layer.health().breakers[b.host]?.failureCount ?? 0).toBe(0);
    });
  }
});

/** Opens a's breaker (three 503s in a row to a path no chain takes), then clears the servers' records. */
async function openFirstHost(layer: Layer, clock: TestClock): Promise<void> {
  script(a, [503, 503, 503]);
  const res = await drive(clock, layer.fetch(`${a.base}/warm`));
  await res.text();
  expect(layer.health().breakers[a.host]?.state).toBe("open");
  a.reset();
}

describe("a chain whose first endpoint's breaker is open and whose second retries twice", () => {
  for (const via of ["fetch", "ky"] as const) {
    it(`served on the third try: attempts 3, p passed over uncounted, one call in the totals (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      await openFirstHost(layer, clock);
      script(b, [503, 503, 200]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const gen = layer.health().breakers[a.host]?.gen;
      const res = await drive(clock, call(layer, via, `${a.base}/c/x`));
      await res.text();
      agree(layer, clock, before, seen, res);
      expect(res.status).toBe(200);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "s", fromFallback: true });
      expect(order(seen)).toEqual(["fallback", "retry", "retry", "request"]);
      expect(of(seen, "fallback")).toEqual([{ chain: "gen", from: "p", reason: "circuit open", next: "s" }]);
      expect(of(seen, "retry").map((e) => [e.key, e.attempt])).toEqual([
        [b.host, 1],
        [b.host, 2],
      ]);
      expect(a.hits).toHaveLength(0);
      expect(b.hits).toHaveLength(3);
      const chain = stats(layer, "gen");
      expect(chain?.fallbacks.p?.calls ?? 0).toBe(0);
      expect(chain?.fallbacks.s).toMatchObject({ calls: 1, successes: 1 });
      const health = layer.health();
      // The warm-up call (a 503) and this one: one failure in two calls.
      expect(health.errorRate).toBe(0.5);
      expect(health.breakers[a.host]).toMatchObject({ state: "open", gen });
      expect(health.breakers[b.host]).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    });

    it(`every try of the second fails: resolves with its 503, attempts 3, one failure, its breaker opened once (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      await openFirstHost(layer, clock);
      script(b, [503, 503, 503]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(clock, call(layer, via, `${a.base}/c/x`));
      if (!res.bodyUsed) await res.text(); // ky read it into its HTTPError's `data`
      agree(layer, clock, before, seen, res);
      expect(res.status).toBe(503);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "s", fromFallback: true });
      // The last endpoint passed over too, with no `next`.
      expect(order(seen)).toEqual(["fallback", "retry", "retry", "breaker", "fallback", "request"]);
      expect(of(seen, "fallback")[1]).toEqual({ chain: "gen", from: "s", reason: "status 503", next: undefined });
      expect(of(seen, "breaker")).toEqual([expect.objectContaining({ key: b.host, from: "closed", to: "open" })]);
      expect(stats(layer, "gen")?.fallbacks.s).toMatchObject({ calls: 1, successes: 0 });
      const health = layer.health();
      expect(health.errorRate).toBe(1);
      expect(health.status).toBe("unhealthy");
      expect(layer.debugInfo().recentErrors.map((e) => [e.url, e.status])).toEqual([
        [`${a.base}/warm`, 503],
        [`${a.base}/c/x`, 503],
      ]);
    });

    it(`then a respond endpoint answers: attempts 3 (respond is no attempt), a success, three endpoints' statistics (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      await openFirstHost(layer, clock);
      script(b, [503, 503, 503]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(clock, call(layer, via, `${a.base}/r/x`));
      expect(await res.text()).toBe("cached");
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({ attempts: 3, endpoint: "cached", fromFallback: true });
      expect(order(seen)).toEqual(["fallback", "retry", "retry", "breaker", "fallback", "request"]);
      expect(of(seen, "fallback")).toEqual([
        { chain: "gr", from: "rp", reason: "circuit open", next: "rs" },
        { chain: "gr", from: "rs", reason: "status 503", next: "cached" },
      ]);
      const chain = stats(layer, "gr");
      expect(chain?.fallbacks.rp?.calls ?? 0).toBe(0);
      expect(chain).toMatchObject({
        lastSuccessfulFallback: "cached",
        fallbacks: { rs: { calls: 1, successes: 0 }, cached: { calls: 1, successes: 1 } },
      });
      expect(layer.health().errorRate).toBe(0.5);
    });
  }

  it("a redirect to a host whose breaker is open: the hop's event, the endpoint counted as sent, the first host's success", async () => {
    const clock = new TestClock(1_000);
    const layer = layerFor(clock);
    script(c, [503, 503, 503]);
    await (await drive(clock, layer.fetch(`${c.base}/warm`))).text();
    c.reset();
    script(a, [to(`${c.base}/there`)]);
    script(b, [200]);
    const seen = record(layer);
    const before = snap(layer, clock);
    const res = await drive(clock, layer.fetch(`${a.base}/c/x`));
    await res.text();
    agree(layer, clock, before, seen, res);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "s", fromFallback: true });
    expect(order(seen)).toEqual(["redirect", "fallback", "request"]);
    expect(of(seen, "fallback")[0]).toMatchObject({ chain: "gen", from: "p", next: "s" });
    expect(String(of(seen, "fallback")[0]?.reason)).toContain(c.host);
    expect(c.hits).toHaveLength(0);
    expect(stats(layer, "gen")?.fallbacks).toMatchObject({
      p: { calls: 1, successes: 0 },
      s: { calls: 1, successes: 1 },
    });
    const health = layer.health();
    expect(health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(health.breakers[c.host]).toMatchObject({ state: "open", gen: 1 });
  });
});

describe("a degradation rewrite, then a chain transform, then a redirect", () => {
  for (const via of ["fetch", "ky"] as const) {
    it(`the third server gets the rewritten, reshaped body; the call names the level, the spare and 3 attempts (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      layer.degradation.setLevel("medium");
      script(a, [503, 503, 503]);
      script(b, [to(`${c.base}/final?tok=SECRET`)]);
      script(c, [echo]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(
        clock,
        call(layer, via, `${a.base}/t/x?key=SECRET`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": "job-1" },
          body: JSON.stringify({ prompt: "cat", steps: 50, resolution: "1080p" }),
        }),
      );
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ input: { steps: 30, resolution: "720p" } });
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({
        attempts: 4,
        endpoint: "ts",
        fromFallback: true,
        degradationLevel: "medium",
      });
      expect(res.url).toBe(`${c.base}/final?tok=SECRET`);
      expect(a.hits.map((h) => [h.body, h.headers["x-degradation-level"]])).toEqual([
        ['{"prompt":"cat","steps":30,"resolution":"720p"}', "medium"],
        ['{"prompt":"cat","steps":30,"resolution":"720p"}', "medium"],
        ['{"prompt":"cat","steps":30,"resolution":"720p"}', "medium"],
      ]);
      expect(b.hits.map((h) => [h.method, h.path, h.body])).toEqual([
        ["POST", "/t2/x?key=SECRET", '{"input":{"steps":30,"resolution":"720p"}}'],
      ]);
      expect(c.hits.map((h) => [h.method, h.path, h.body])).toEqual([
        ["POST", "/final?tok=SECRET", '{"input":{"steps":30,"resolution":"720p"}}'],
      ]);
      expect(order(seen)).toEqual(["retry", "retry", "breaker", "fallback", "redirect", "request"]);
      expect(of(seen, "fallback")).toEqual([{ chain: "tr", from: "tp", reason: "status 503", next: "ts" }]);
      expect(of(seen, "redirect")[0]).toMatchObject({ from: `${b.base}/t2/x`, to: `${c.base}/final`, status: 307 });
      expect(stats(layer, "tr")?.fallbacks).toMatchObject({
        tp: { calls: 1, successes: 0 },
        ts: { calls: 1, successes: 1 },
      });
      expect(layer.health()).toMatchObject({ errorRate: 0, degradationLevel: "medium" });
      expect(layer.health().breakers[a.host]).toMatchObject({ state: "open", consecutiveFailures: 3 });
      expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain("SECRET");
    });
  }

  it("a degraded call redirected to another origin: the redirect event's dropped names the level header", async () => {
    const clock = new TestClock(1_000);
    const layer = layerFor(clock);
    layer.degradation.setLevel("medium");
    const seen = record(layer);
    a.on(to(`${c.base}/else`));
    c.on(answer(200));
    const res = await drive(clock, layer.fetch(`${a.base}/plain`, { headers: { "x-trace": "t1", accept: "*/*" } }));
    expect(res.status).toBe(200);
    expect(a.hits[0]?.headers["x-degradation-level"]).toBe("medium");
    expect(c.hits[0]?.headers["x-degradation-level"]).toBeUndefined();
    // RedirectEvent.dropped's JSDoc: every header off the allowlist, "the level header degradation adds too".
    const [event] = of(seen, "redirect") as Array<{ crossOrigin: boolean; dropped: string[] }>;
    expect(event?.crossOrigin).toBe(true);
    expect([...(event?.dropped ?? [])].sort()).toEqual(["x-degradation-level", "x-trace"]);
  });

  const post = (body: unknown): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "job-3" },
    body: JSON.stringify(body),
  });

  it("the level moves at each retry of a chain: every attempt and the spare go at the call's level", async () => {
    const clock = new TestClock(1_000);
    const layer = layerFor(clock);
    layer.degradation.setLevel("high");
    script(a, [503, 503, 503]);
    script(b, [echo]);
    layer.on("retry", () => layer.degradation.degrade("busy"));
    const seen = record(layer);
    const before = snap(layer, clock);
    const res = await drive(clock, layer.fetch(`${a.base}/c/x`, post({ steps: 50, resolution: "1080p" })));
    expect(await res.json()).toEqual({ steps: 50, resolution: "720p" });
    agree(layer, clock, before, seen, res);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 4, endpoint: "s", degradationLevel: "high" });
    expect(a.hits.map((h) => [h.body, h.headers["x-degradation-level"]])).toEqual(
      Array(3).fill(['{"steps":50,"resolution":"720p"}', "high"]),
    );
    expect(of(seen, "degradation").map((e) => e.to)).toEqual(["medium", "low"]);
    expect(layer.health().degradationLevel).toBe("low");
  });
});

function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes.slice(0, 5));
      controller.enqueue(bytes.slice(5));
      controller.close();
    },
  });
}

function streamRequest(body: string): Request {
  return new Request(`${a.base}/v/x`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "job-2" },
    body: streamOf(body),
    duplex: "half",
  } as RequestInit);
}

describe("a Request with a stream body through a chain whose validate turns down the first answer", () => {
  for (const via of ["fetch", "ky"] as const) {
    it(`a body kept for replay moves on: attempts 2, the spare, no replay event (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock);
      layer.degradation.setLevel("medium");
      script(a, [json({ ok: false })]);
      script(b, [json({ ok: true })]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const res = await drive(clock, call(layer, via, streamRequest('{"prompt":"cat","steps":50}')));
      expect(await res.json()).toEqual({ ok: true });
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({
        attempts: 2,
        endpoint: "vs",
        fromFallback: true,
        degradationLevel: "medium",
      });
      // Read ahead, rewritten once, replayed to the spare.
      expect([a.hits[0]?.body, b.hits[0]?.body]).toEqual([
        '{"prompt":"cat","steps":30}',
        '{"prompt":"cat","steps":30}',
      ]);
      expect(order(seen)).toEqual(["fallback", "request"]);
      expect(of(seen, "fallback")[0]).toMatchObject({ chain: "val", from: "vp", next: "vs" });
      expect(stats(layer, "val")?.fallbacks).toMatchObject({
        vp: { calls: 1, successes: 0 },
        vs: { calls: 1, successes: 1 },
      });
      expect(layer.health().errorRate).toBe(0);
    });

    it(`a body past maxReplayBytes goes once: the first answer as it is, attempts 1, one replay event (${via})`, async () => {
      const clock = new TestClock(1_000);
      const layer = layerFor(clock, { maxReplayBytes: 16 });
      layer.degradation.setLevel("medium");
      script(a, [json({ ok: false })]);
      script(b, [json({ ok: true })]);
      const seen = record(layer);
      const before = snap(layer, clock);
      const body = JSON.stringify({ prompt: "a cat on a mat", steps: 50 });
      const res = await drive(clock, call(layer, via, streamRequest(body)));
      expect(await res.json()).toEqual({ ok: false });
      agree(layer, clock, before, seen, res);
      expect(getResilienceInfo(res)).toMatchObject({
        attempts: 1,
        endpoint: "vp",
        fromFallback: false,
        degradationLevel: "medium",
      });
      // Sent once, unread: its level header names a level its body does not show.
      expect(a.hits.map((h) => [h.body, h.headers["x-degradation-level"]])).toEqual([[body, "medium"]]);
      expect(b.hits).toHaveLength(0);
      expect(of(seen, "replay")).toHaveLength(1);
      expect(of(seen, "fallback")).toEqual([]);
      expect(stats(layer, "val")?.fallbacks.vp).toMatchObject({ calls: 1, successes: 0 });
    });
  }
});

describe("resilientProxy over chain routes with degradation", () => {
  it("its headers name what getResilienceInfo would: an upstream via 307, an open breaker and retries, a hedge via 307", async () => {
    const clock = new TestClock(1_000);
    const proxy = resilientProxy<Record<string, string>>({
      routes: [
        { path: "/warm", upstream: `${a.base}/warm` },
        { path: "/up", upstream: `${a.base}/u` },
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/g` },
              { name: "s", url: `${b.base}/g` },
            ],
          },
        },
        {
          path: "/hed",
          chain: {
            name: "hed",
            hedge: { delay: 20 },
            endpoints: [
              { name: "hp", url: `${c.base}/h` },
              { name: "hs", url: `${b.base}/h` },
            ],
          },
        },
      ],
      resilience: {
        clock,
        retry: { ...fast, maxAttempts: 3 },
        breaker: { failureThreshold: 3, timeout: 60_000 },
        degradation: degradation({
          minSamples: 2,
          stepInterval: 1_000,
          levelHeader: "x-degradation-level",
          triggers: { errorRate: 0.1, memoryUsage: 1, cpuUsage: 1 },
          rules: [{ params: { quality: { query: "quality" } } }],
        }),
      },
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    const get = (path: string) => drive(clock, proxy.fetch(new Request(`https://edge.example${path}`), {}, ctx));
    const headers = async (res: Response) => {
      await res.text();
      return [
        res.status,
        res.headers.get("x-resilience-endpoint"),
        res.headers.get("x-resilience-attempts"),
        res.headers.get("x-degradation-level"),
      ];
    };
    script(a, [to(`${c.base}/there`)]);
    script(c, [200]);
    // Outside a chain, the endpoint is the first host, whose breaker counted the answer.
    expect(await headers(await get("/up/x?quality=100"))).toEqual([200, a.host, "1", "full"]);
    await clock.advance(1_000);
    // The second call, a 503, moves the level to `high` as it settles (error rate 1/2 over 2 samples).
    script(a, [503, 503, 503]);
    expect(await headers(await get("/warm/x?quality=100"))).toEqual([503, a.host, "3", "full"]);
    script(b, [503, 503, 200]);
    expect(await headers(await get("/gen/x?quality=100&key=SECRET"))).toEqual([200, "s", "3", "high"]);
    expect(b.hits.map((h) => h.path)).toEqual(Array(3).fill("/g/x?quality=90&key=SECRET"));
    a.reset();
    script(c, ["hang"]);
    script(b, [to(`${c.base}/there`)]);
    c.on((hit) => (hit.path === "/there" ? answer(200)(hit) : held.push(hit)));
    expect(await headers(await get("/hed/x?quality=100"))).toEqual([200, "hs", "2", "high"]);
    expect(b.hits.at(-1)?.path).toBe("/h/x?quality=90");
    const health = await (await proxy.fetch(new Request("https://edge.example/__resilience/health"), {}, ctx)).json();
    expect(health).toMatchObject({
      degradationLevel: "high",
      errorRate: 1 / 4,
      breakers: { [a.host]: { state: "open" }, [b.host]: { state: "closed", consecutiveFailures: 0 } },
      fallback: {
        gen: { fallbacks: { p: { calls: 0 }, s: { calls: 1, successes: 1 } } },
        hed: { fallbacks: { hp: { calls: 1, successes: 0 }, hs: { calls: 1, successes: 1 } } },
      },
    });
    expect(health.breakers[c.host]?.failureCount ?? 0).toBe(0);
  });
});
