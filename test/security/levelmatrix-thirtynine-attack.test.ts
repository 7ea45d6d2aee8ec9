/**
 * Outside-in attack on the degradation levels' triggers and what feeds them, across every path: the exact
 * thresholds and timings, which calls count into the window, the rewrite at each level on each path (a level
 * changed mid-call too), and `degradation` listeners while levels change.
 * Docs: docs/degradation.md ("Automatic triggers are fed by every call that settles without the caller aborting
 * it, and evaluated at most once a second as calls settle (no timers, so levels move only while traffic flows):
 * error rate and p95 latency over a rolling `window` (60 s, and at most the last 256 calls …) once `minSamples`
 * (20 …) calls are in it", "A breach steps down one level per `stepInterval` (10 s). Stepping up needs the
 * signals to be clearly healthy (error rate at most half its threshold, p95 at most 80% of its threshold …) for a
 * whole `restoreAfter` (60 s), one level at a time; values in between hold the level", "Defaults for the
 * thresholds …: error rate 0.1, response time 30 s", the level table, "At `medium`, `{ quality: 1.0, resolution:
 * "1080p", steps: 50, model: "premium" }` becomes exactly `{ quality: 0.8, resolution: "720p", steps: 30, model:
 * "standard" }`", "A call that goes down a fallback chain is rewritten once … every endpoint gets that request, and
 * an endpoint's `transform` reshapes it", "A call takes the level it finds when it starts: its rewritten body, its
 * level header and `getResilienceInfo(res).degradationLevel` all name that level", "`setLevel(name)` (pins the
 * level …)"); docs/health-and-events.md ("A call whose `Request` body could not be read fires it …, and so does
 * one the transport refused before sending anything …, or whose `Request` body stream, read ahead past
 * `maxReplayBytes`, failed while it was sent, but nothing counts it: not `health()`, analytics, the degradation
 * triggers nor the retry budget", "Work run through `execute(fn)` counts there too … a run its caller aborted is
 * left out", "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason`)", "A listener that
 * throws, or an async one whose promise rejects, is reported … and never breaks the request", "an event goes to
 * the listeners subscribed when it fired, less any unsubscribed meanwhile"); docs/retry.md (a request Node's fetch
 * refuses: "the host's breaker and the error rate hear nothing), through a chain too, once every endpoint was
 * refused").
 * How: `createResilience` on a `TestClock` (src/testing) with `degradation({ levelHeader })`, `fallback([…])`,
 * `execute`, `debugInfo().degradation.window` and `health()`; `createClient` (./ky) and plain `ky.create({ fetch })`;
 * `resilientProxy` (./cloudflare) and its health route; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), one of which advances the test clock before it answers (slow calls).
 * Paths: plain call, chain of two endpoints (p 503 → q through an async `transform`), hedge, redirect followed by
 * the layer (307, and a retry that starts again from the first URL), `Request` input, ky client, `resilientProxy`,
 * `execute(fn)`; outcomes 200, 404, 429/503 with `Retry-After`, a caller's abort (a `Request`'s own signal, a
 * `TypeError` reason, ky's `timeout`, a proxy client hanging up), a transport refusal (plain and on a one-origin
 * chain), a `Request` body failing during the read-ahead and past it, `timeout.total`, an open breaker, a full
 * bulkhead, `validate` turning a 2xx down.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none.
 *
 * Docs-silent when found, each said since (docs/degradation.md, docs/health-and-events.md), tested at the end:
 * - The Node CPU trigger divides `process.cpuUsage()` (real CPU time) by the elapsed time of the layer's `clock`
 *   (src/degradation/graceful-degradation.ts `createCpuMeter(() => clock.now())`): under a `TestClock` that moves
 *   slower than real time (1 s of test time per step, a test burning more real CPU than that between
 *   evaluations, or a one-core CI runner) it reads up to 1.0 and steps down for "cpu 1.00 > 0.95", whatever the
 *   process did (seen with the handle's `evaluate()`: 40 ms of busy CPU while the test clock moved 10 ms reads
 *   "cpu 1.00 > 0.95" and steps to `high`). The docs do not say which clock the CPU share is measured against.
 * - A `degradation` listener that itself changes the level is dispatched into at once (nested, as with
 *   `EventTarget`): listeners registered after it hear the inner change before the outer one, and the outer
 *   `degrade()` returns the level before the listener's change (src/degradation/graceful-degradation.ts `#apply`
 *   reads `after` before it emits). Every change still has its one event; the docs say nothing on the order.
 * - A 404 counts as a good call in the triggers (only 5xx and 429 fail: src/http/send/classify.ts
 *   `isServiceFailureStatus`), as it does in `health().errorRate`; the docs do not define a failed call there.
 *
 * Held (plain `it`):
 * - Error rate: 2 failures in 20 hold `full` (0.1 is not above 0.1); the call that makes 3 in 21 steps down once,
 *   one event `{ from: "full", to: "high", percentage: 80, reason: "error rate 0.14 > 0.1" }`.
 * - A breach waits for `minSamples` and for the next evaluation: 20 failing calls within a second of the last
 *   evaluation hold the level, the call 999 ms later too, the one at 1,000 ms steps down.
 * - `stepInterval`: one step per 10 s of breach (9 s hold), down to `minimal` and no further: four events with
 *   percentages 80, 60, 40, 20.
 * - Recovery: clear health for 59 s holds, for 60 s steps up one level (reason "healthy"); an error rate between
 *   0.05 and 0.1 for 150 s holds with no event, then 61 s of good calls after the last failure left the window
 *   lift it.
 * - p95: 1 slow call (2,000 ms against `responseTime: 1000`) in 21 holds, the one that makes 2 slow in 22 steps
 *   down ("p95 latency 2000 ms > 1000 ms"); 19 samples are too few.
 * - The window holds the last 256 calls (300 failed runs then 256 good ones: 256 samples, rate 0).
 * - Fed once per call, as `health()` counts: 200 and 404 good, 429/503 failed; a 429 retried after its
 *   `Retry-After` is one good sample; a chain is one sample with the chain's outcome; a hedge, a followed
 *   redirect (two hops), a `Request` input, a ky call (and ky's `HTTPError`), plain ky over the layer's fetch,
 *   `execute(fn)` and the proxy's forwarded calls, one sample each; `validate` turning p down and q serving is
 *   one good call; an open breaker's and a full bulkhead's refusals count as failed; `timeout.total` as failed.
 * - Left out: the caller's abort (mid-request, a `Request`'s own signal while its body is read ahead with a
 *   `TypeError` reason, ky's `timeout`, an `execute` run aborted, a proxy client hanging up), a transport
 *   refusal (plain call, and a chain whose endpoints share the origin), a `Request` body that failed during the
 *   read-ahead, and one past `maxReplayBytes` that failed while sent (plain call and chain).
 * - The rewrite at all five levels on the plain call, chain (q through an async `transform`), hedge, redirect
 *   307, `Request` input, ky client and (levels set by its own triggers) `resilientProxy`: the body matches the
 *   table, the level header names the level, `getResilienceInfo` too.
 * - A level moved mid-call: a hedge started after `setLevel("minimal")` carries `full`, as the call started; a
 *   redirect hop and a retry after a move carry the call's level.
 * - Listeners: one added during a `degradation` event is not called for it, one removed during it is not called;
 *   a throwing and a rejecting listener on a change made by a call's settle are reported and break neither the
 *   call nor the level; a listener that degrades again yields both events; with every listener gone the level
 *   still moves.
 */
import ky from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation, type LevelName } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  type DegradationEvent,
  getResilienceInfo,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const ctx = { waitUntil() {} };
const HEADER = "x-degradation-level";
const JOB = { quality: 1, resolution: "1080p", steps: 50, model: "premium", prompt: "cat" };
/** What each level makes of JOB: the table of docs/degradation.md. */
const AT: Record<LevelName, Record<string, unknown>> = {
  full: JOB,
  high: { quality: 0.9, resolution: "720p", steps: 50, model: "premium", prompt: "cat" },
  medium: { quality: 0.8, resolution: "720p", steps: 30, model: "standard", prompt: "cat" },
  low: { quality: 0.6, resolution: "720p", steps: 20, model: "basic", prompt: "cat" },
  minimal: { quality: 0.4, resolution: "720p", steps: 10, model: "basic", prompt: "cat" },
};
const LEVELS: LevelName[] = ["full", "high", "medium", "low", "minimal"];

type DegradationOptions = NonNullable<Parameters<typeof degradation>[0]>;

/** A layer on a TestClock with the degradation stage; single attempts unless `options` say otherwise. */
function layer(d: DegradationOptions = {}, options: ResilienceOptions = {}, clock = new TestClock(1_000_000)) {
  const r = createResilience({
    clock,
    retry: false,
    breaker: false,
    crossOriginHeaders: [HEADER],
    ...options,
    degradation: degradation({ levelHeader: HEADER, ...d }),
  });
  const events: DegradationEvent[] = [];
  r.on("degradation", (e) => events.push(e));
  return { r, clock, events, level: () => r.degradation?.currentLevel().name, win: () => win(r) };
}

function win(r: Resilience) {
  const w = r.debugInfo().degradation?.window;
  return { samples: w?.samples, errorRate: w?.errorRate };
}

/** `/fail` answers 503, `/slow/<ms>` advances the clock by <ms> first, anything else 200. */
function serve(clock: TestClock) {
  a.on((h) => {
    const slow = /^\/slow\/(\d+)/.exec(h.path);
    if (slow) {
      void clock.advance(Number(slow[1])).then(() => h.res.end("ok"));
      return;
    }
    h.res.statusCode = h.path.startsWith("/fail") ? 503 : 200;
    h.res.end("x");
  });
}

async function calls(r: Resilience, path: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await (await r.fetch(`${a.base}${path}`)).text();
}

const json = (h: Hit | undefined) => JSON.parse(h?.body ?? "null") as unknown;

afterEach(() => {
  vi.restoreAllMocks();
});

describe("thresholds and timings (plain call on a TestClock)", () => {
  it("error rate: 2 failures in 20 hold `full`, the call that makes 3 in 21 steps down once", async () => {
    const { r, clock, events, level } = layer();
    serve(clock);
    await calls(r, "/fail", 2);
    await calls(r, "/ok", 17);
    await clock.advance(1_000);
    await calls(r, "/ok", 1); // 20 samples, rate 0.1: not above 0.1
    expect(level()).toBe("full");
    await clock.advance(1_000);
    await calls(r, "/fail", 1); // 21 samples, 3 failed: 0.14
    expect(level()).toBe("high");
    expect(events).toEqual([{ from: "full", to: "high", percentage: 80, reason: "error rate 0.14 > 0.1" }]);
  });

  it("a breach waits for minSamples and for the next evaluation (at most once a second)", async () => {
    const { r, clock, events, level } = layer();
    serve(clock);
    await calls(r, "/fail", 1); // the first call evaluates: 1 sample
    await clock.advance(1_000);
    await calls(r, "/fail", 18); // the first of these evaluates on 2 samples
    await calls(r, "/fail", 1); // 20 samples, all failed, but evaluated less than a second ago
    expect(level()).toBe("full");
    await clock.advance(999);
    await calls(r, "/fail", 1);
    expect(level()).toBe("full");
    await clock.advance(1);
    await calls(r, "/fail", 1);
    expect(level()).toBe("high");
    expect(events.length).toBe(1);
  });

  it("a breach steps down one level per stepInterval (10 s), to minimal and no further", async () => {
    const { r, clock, events, level } = layer({ minSamples: 2 });
    serve(clock);
    await calls(r, "/fail", 2);
    await clock.advance(1_000);
    await calls(r, "/fail", 1);
    expect(level()).toBe("high");
    for (let s = 1; s <= 9; s++) {
      await clock.advance(1_000);
      await calls(r, "/fail", 1);
    }
    expect(level()).toBe("high");
    await clock.advance(1_000);
    await calls(r, "/fail", 1);
    expect(level()).toBe("medium");
    for (let s = 0; s < 40; s++) {
      await clock.advance(1_000);
      await calls(r, "/fail", 1);
    }
    expect(level()).toBe("minimal");
    expect(events.map((e) => `${e.from}>${e.to}`)).toEqual(["full>high", "high>medium", "medium>low", "low>minimal"]);
    expect(events.map((e) => e.percentage)).toEqual([80, 60, 40, 20]);
  });

  it("recovers one level per restoreAfter (60 s) of clear health; an error rate in between holds", async () => {
    const { r, clock, events, level } = layer({ minSamples: 2 });
    serve(clock);
    r.degradation?.degrade("test");
    r.degradation?.degrade("test");
    expect(level()).toBe("medium");
    events.length = 0;
    await calls(r, "/ok", 1); // healthy from now
    await clock.advance(59_000);
    await calls(r, "/ok", 1);
    expect(level()).toBe("medium");
    await clock.advance(1_000);
    await calls(r, "/ok", 1);
    expect(level()).toBe("high");
    expect(events).toEqual([{ from: "medium", to: "high", percentage: 80, reason: "healthy" }]);
  });

  it("an error rate between half the threshold and the threshold holds the level: no flapping", async () => {
    const { r, clock, events, level } = layer();
    serve(clock);
    r.degradation?.degrade("test");
    events.length = 0;
    // One call a second, every 15th failing: 4 or 5 failures in the 61 calls the window holds (0.066 … 0.082).
    for (let s = 0; s < 150; s++) {
      await calls(r, s % 15 === 0 ? "/fail" : "/ok", 1);
      await clock.advance(1_000);
    }
    expect(level()).toBe("high");
    expect(events).toEqual([]);
    for (let s = 0; s < 61; s++) {
      await calls(r, "/ok", 1);
      await clock.advance(1_000);
    }
    expect(level()).toBe("high"); // the last failure left the window only a while ago
    for (let s = 0; s < 61; s++) {
      await calls(r, "/ok", 1);
      await clock.advance(1_000);
    }
    expect(level()).toBe("full");
    expect(events.map((e) => e.reason)).toEqual(["healthy"]);
  });

  it("p95 latency: 1 slow call in 21 holds, the call that makes 2 slow in 22 steps down", async () => {
    const { r, clock, events, level } = layer({ triggers: { responseTime: 1_000 } });
    serve(clock);
    await calls(r, "/ok", 18);
    await calls(r, "/slow/2000", 1); // evaluates on 19 samples: too few
    await calls(r, "/ok", 1);
    await clock.advance(1_000);
    await calls(r, "/ok", 1); // 21 samples, p95 the 20th of them: fast
    expect(level()).toBe("full");
    await calls(r, "/slow/2000", 1); // 22 samples, p95 the 21st: 2000 ms
    expect(level()).toBe("high");
    expect(events).toEqual([{ from: "full", to: "high", percentage: 80, reason: "p95 latency 2000 ms > 1000 ms" }]);
  });
});

/** A stream that gives `text` and then fails with `error`. */
function failing(text: string, error: unknown): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
    },
    pull(c) {
      c.error(error);
    },
  });
}

describe("the window holds at most the last 256 calls", () => {
  it("300 failed runs then 256 good ones: 256 samples, none failed", async () => {
    const { r, win } = layer();
    for (let i = 0; i < 300; i++)
      await r.execute(async () => Promise.reject(new Error("x")), { retry: false }).catch(() => {});
    expect(win()).toEqual({ samples: 256, errorRate: 1 });
    for (let i = 0; i < 256; i++) await r.execute(async () => "ok");
    expect(win()).toEqual({ samples: 256, errorRate: 0 });
  });
});

describe("what feeds the triggers, path by path (debugInfo().degradation.window)", () => {
  it("plain call: a 200 and a 404 count as good calls, a 503 and a 429 with Retry-After as failed ones", async () => {
    const { r, win } = layer();
    a.on((h) => {
      const status = Number(h.path.slice(1));
      h.res.statusCode = status;
      if (status === 429 || status === 503) h.res.setHeader("retry-after", "1");
      h.res.end("x");
    });
    for (const s of [200, 404]) await (await r.fetch(`${a.base}/${s}`)).text();
    expect(win()).toEqual({ samples: 2, errorRate: 0 });
    for (const s of [429, 503]) await (await r.fetch(`${a.base}/${s}`)).text();
    expect(win()).toEqual({ samples: 4, errorRate: 0.5 });
    expect(r.health().errorRate).toBe(0.5); // the same calls as health() counts
  });

  it("a 429 retried after its Retry-After is one call, not one per attempt", async () => {
    const { r, clock, win } = layer({}, { retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" } });
    a.on((h) => {
      h.res.statusCode = h.n < 3 ? 429 : 200;
      h.res.setHeader("retry-after", "1");
      h.res.end("x");
    });
    const res = await clock.run(r.fetch(`${a.base}/x`));
    expect(res.status).toBe(200);
    expect(a.hits.length).toBe(3);
    expect(win()).toEqual({ samples: 1, errorRate: 0 });
  });

  it("a call its caller aborted is left out, before and after its request went", async () => {
    const { r, win } = layer();
    a.on(() => {}); // hangs
    const controller = new AbortController();
    const pending = r.fetch(`${a.base}/hang`, { signal: controller.signal });
    await a.nth(1);
    controller.abort(new Error("gone"));
    await expect(pending).rejects.toThrow("gone");
    // A `Request` whose own signal aborts while its body is read ahead.
    const c2 = new AbortController();
    const req = new Request(`${a.base}/x`, {
      method: "POST",
      body: new ReadableStream({ pull() {} }),
      duplex: "half",
      signal: c2.signal,
    } as RequestInit);
    const p2 = r.fetch(req);
    c2.abort(new TypeError("mine")); // an abort whose reason is a TypeError
    await expect(p2).rejects.toThrow("mine");
    expect(win()).toEqual({ samples: 0, errorRate: 0 });
  });

  it("a call the transport refused, and a Request body that could not be read, count nowhere", async () => {
    const { r, win } = layer();
    const refused = await r.fetch(`${a.base}/x`, { headers: { "transfer-encoding": "chunked" } }).catch((e) => e);
    expect(refused).toBeInstanceOf(TypeError);
    const unread = await r
      .fetch(
        new Request(`${a.base}/x`, {
          method: "POST",
          body: failing("{", new RangeError("disk")),
          duplex: "half",
        } as RequestInit),
      )
      .catch((e) => e);
    expect(unread).toBeInstanceOf(TypeError);
    expect(a.hits.length).toBe(0);
    expect(win()).toEqual({ samples: 0, errorRate: 0 });
    expect(r.health().errorRate).toBe(0);
  });

  it("a call the transport refused on every endpoint of a chain (one origin) counts nowhere", async () => {
    const { r, win } = layer(
      {},
      {
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${a.base}/v2` },
            ],
          },
        ]),
      },
    );
    const refused = await r.fetch(`${a.base}/v1/x`, { headers: { "transfer-encoding": "chunked" } }).catch((e) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect(a.hits.length + b.hits.length).toBe(0);
    expect(win()).toEqual({ samples: 0, errorRate: 0 });
  });

  it("calls refused by an open breaker or a full bulkhead count as failed", async () => {
    const { r, win } = layer({}, { breaker: { failureThreshold: 1 } });
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("x");
    });
    await (await r.fetch(`${a.base}/x`)).text();
    const open = await r.fetch(`${a.base}/x`).catch((e) => e);
    expect(open).toMatchObject({ name: "CircuitOpenError" });
    expect(win()).toEqual({ samples: 2, errorRate: 1 });

    const full = layer({}, { breaker: {}, bulkhead: { maxConcurrent: 1 } });
    const held: Hit[] = [];
    b.on((h) => held.push(h));
    const first = full.r.fetch(`${b.base}/x`);
    await b.nth(1);
    const refused = await full.r.fetch(`${b.base}/y`).catch((e) => e);
    expect(refused).toMatchObject({ name: "BulkheadRejectedError" });
    held[0]?.res.end("ok");
    await (await first).text();
    expect(full.win()).toEqual({ samples: 2, errorRate: 0.5 });
  });

  it("a chain of two endpoints is one call: one sample, its outcome the chain's", async () => {
    const chain = fallback([
      {
        name: "gen",
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "q", url: `${b.base}/v1` },
        ],
      },
    ]);
    const { r, win } = layer({}, { fallback: chain });
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("x");
    });
    await (await r.fetch(`${a.base}/v1/x`)).text();
    expect(b.hits.length).toBe(1);
    expect(win()).toEqual({ samples: 1, errorRate: 0 });
    b.on((h) => {
      h.res.statusCode = 502;
      h.res.end("x");
    });
    const res = await r.fetch(`${a.base}/v1/x`);
    expect(res.status).toBe(502);
    expect(win()).toEqual({ samples: 2, errorRate: 0.5 });
  });

  it("a hedge, a followed redirect, an async transform, a Request input, ky and the proxy: one sample a call", async () => {
    // hedge: p hangs, q answers; the loser is aborted and is no sample of its own
    const hedged = layer(
      {},
      {
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 100 },
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              {
                name: "q",
                url: `${b.base}/v1`,
                transform: async (req) => {
                  await Promise.resolve();
                  return req;
                },
              },
            ],
          },
        ]),
      },
    );
    a.on(() => {});
    const res = await hedged.clock.run(hedged.r.fetch(`${a.base}/v1/x`));
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    await res.text();
    expect(hedged.win()).toEqual({ samples: 1, errorRate: 0 });

    // redirect followed by the library: two hops, one call
    const redirected = layer();
    a.on((h) => {
      if (h.path === "/from") {
        h.res.statusCode = 302;
        h.res.setHeader("location", `${b.base}/to`);
        h.res.end();
      } else h.res.end("ok");
    });
    const hop = await redirected.r.fetch(`${a.base}/from`);
    expect(hop.url).toBe(`${b.base}/to`);
    await hop.text();
    expect(redirected.win()).toEqual({ samples: 1, errorRate: 0 });

    // Request input and ky
    const viaKy = layer();
    await (await viaKy.r.fetch(new Request(`${b.base}/r`, { method: "POST", body: "{}" }))).text();
    const client = createClient({ resilience: viaKy.r });
    await client.get(`${b.base}/k`).text();
    b.on((h) => {
      h.res.statusCode = 503;
      h.res.end("x");
    });
    await expect(client.get(`${b.base}/k`).text()).rejects.toMatchObject({ name: "HTTPError" });
    expect(viaKy.win()).toEqual({ samples: 3, errorRate: 1 / 3 });
    // plain ky over the layer's fetch: the same
    await expect(ky.create({ fetch: viaKy.r.fetch, retry: 0 }).get(`${b.base}/k`).text()).rejects.toMatchObject({
      name: "HTTPError",
    });
    expect(viaKy.win()).toEqual({ samples: 4, errorRate: 0.5 });
  });
});

describe("what feeds the triggers: validate, execute, ky's timeout, the proxy", () => {
  it("validate: a 2xx turned down and then served by the next endpoint is one good call", async () => {
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "t",
        validate: (v: unknown) =>
          (v as { ok?: boolean })?.ok === true ? { value: v } : { issues: [{ message: "not ok" }] },
      },
    };
    const { r, win } = layer(
      {},
      {
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/v1`, validate: schema },
              { name: "q", url: `${b.base}/v1`, validate: schema },
            ],
          },
        ]),
      },
    );
    a.on((h) => h.res.end('{"ok":false}'));
    b.on((h) => h.res.end('{"ok":true}'));
    const res = await r.fetch(`${a.base}/v1/x`);
    expect(await res.json()).toEqual({ ok: true });
    expect(win()).toEqual({ samples: 1, errorRate: 0 });
  });

  it("execute(fn): a failed run counts, one its caller aborted does not", async () => {
    const { r, win } = layer();
    await r.execute(async () => "ok");
    await expect(
      r.execute(async () => {
        throw new Error("engine");
      }),
    ).rejects.toThrow("engine");
    const controller = new AbortController();
    const run = r.execute(
      () =>
        new Promise((_, reject) => {
          controller.signal.addEventListener("abort", () => reject(controller.signal.reason));
        }),
      { signal: controller.signal },
    );
    controller.abort(new Error("stop"));
    await expect(run).rejects.toThrow("stop");
    expect(win()).toEqual({ samples: 2, errorRate: 0.5 });
  });

  it("ky's own timeout aborts the call: not counted", async () => {
    const { r, win } = layer();
    a.on(() => {});
    const client = createClient({ resilience: r, timeout: 30 });
    await expect(client.get(`${a.base}/hang`).text()).rejects.toMatchObject({ name: "TimeoutError" });
    expect(win()).toEqual({ samples: 0, errorRate: 0 });
  });

  it("resilientProxy: each forwarded call is one sample (its level moves), a client that hung up is none", async () => {
    const clock = new TestClock(1_000_000);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: {
        clock,
        retry: false,
        breaker: false,
        degradation: degradation({ minSamples: 2, triggers: { errorRate: 0.5 } }),
      },
    });
    const health = async () =>
      (await (await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx)).json()) as {
        degradationLevel: string;
        errorRate: number;
      };
    a.on(() => {}); // hangs: the client hangs up
    const controller = new AbortController();
    const gone = proxy.fetch(new Request("https://w.example/hang", { signal: controller.signal }), {}, ctx);
    await a.nth(1);
    controller.abort(new Error("client gone"));
    await gone.catch(() => undefined);
    a.on((h) => {
      h.res.statusCode = h.path === "/fail" ? 503 : 200;
      h.res.end("x");
    });
    // One good call, then one failed a second later: 1 of 2 is not above 0.5.
    await (await proxy.fetch(new Request("https://w.example/ok"), {}, ctx)).text();
    await clock.advance(1_000);
    await (await proxy.fetch(new Request("https://w.example/fail"), {}, ctx)).text();
    expect((await health()).degradationLevel).toBe("full");
    await clock.advance(1_000);
    await (await proxy.fetch(new Request("https://w.example/fail"), {}, ctx)).text();
    expect(await health()).toMatchObject({ degradationLevel: "high" });
  });
});

/** Every path a job can take; each returns the request the upstream that served it received. */
type PathRun = (r: Resilience, clock: TestClock) => Promise<{ hit: Hit | undefined; info: string | undefined }>;

const chainOptions = (hedge?: number): ResilienceOptions => ({
  fallback: fallback([
    {
      name: "gen",
      ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
      endpoints: [
        { name: "p", url: `${a.base}/v1` },
        {
          name: "q",
          url: `${b.base}/v1`,
          transform: async (req) => {
            await new Promise((resolve) => setTimeout(resolve, 1));
            return { ...req, url: req.url.replace("/v1/jobs", "/v1/generate") };
          },
        },
      ],
    },
  ]),
});

const post = { method: "POST", body: JSON.stringify(JOB), headers: { "content-type": "application/json" } };

async function served(res: Response, server: typeof a) {
  await res.text();
  return { hit: server.hits.at(-1), info: getResilienceInfo(res)?.degradationLevel };
}

const PATHS: Array<[string, () => ResilienceOptions, PathRun]> = [
  ["plain call", () => ({}), async (r) => served(await r.fetch(`${a.base}/jobs`, post), a)],
  [
    "chain: p 503, q through an async transform",
    () => chainOptions(),
    async (r) => {
      a.on((h) => {
        h.res.statusCode = 503;
        h.res.end("x");
      });
      return served(await r.fetch(`${a.base}/v1/jobs`, post), b);
    },
  ],
  [
    "hedge: p hangs, q started after the delay",
    () => chainOptions(50),
    async (r, clock) => {
      a.on(() => {});
      const res = await clock.run(
        r.fetch(`${a.base}/v1/jobs`, { ...post, headers: { ...post.headers, "idempotency-key": "k1" } }),
      );
      return served(res, b);
    },
  ],
  [
    "redirect 307 followed by the layer",
    () => ({}),
    async (r) => {
      a.on((h) => {
        if (h.path === "/old") {
          h.res.statusCode = 307;
          h.res.setHeader("location", "/jobs");
          h.res.end();
        } else h.res.end("ok");
      });
      return served(await r.fetch(`${a.base}/old`, post), a);
    },
  ],
  ["Request input", () => ({}), async (r) => served(await r.fetch(new Request(`${a.base}/jobs`, post)), a)],
  [
    "ky client",
    () => ({}),
    async (r) => {
      const res = await createClient({ resilience: r }).post(`${a.base}/jobs`, { json: JOB });
      return served(res, a);
    },
  ],
];

describe("the rewrite at each level on each path", () => {
  for (const [name, options, run] of PATHS) {
    it(`${name}: each level's rewrite, its header and getResilienceInfo`, async () => {
      for (const level of LEVELS) {
        a.reset();
        b.reset();
        const { r, clock } = layer({}, options());
        if (level !== "full") r.degradation?.setLevel(level);
        const { hit, info } = await run(r, clock);
        expect({ level, body: json(hit), header: hit?.headers[HEADER], info }).toEqual({
          level,
          body: AT[level],
          header: level,
          info: level,
        });
      }
    });
  }

  it("resilientProxy: the level its triggers set rewrites the forwarded body", async () => {
    const clock = new TestClock(1_000_000);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: a.base }],
      resilience: {
        clock,
        retry: false,
        breaker: false,
        degradation: degradation({ minSamples: 1, stepInterval: 0, levelHeader: HEADER }),
      },
    });
    a.on((h) => {
      h.res.statusCode = h.path === "/fail" ? 503 : 200;
      h.res.end("x");
    });
    for (const level of LEVELS) {
      if (level !== "full") {
        await clock.advance(1_000);
        await (await proxy.fetch(new Request("https://w.example/fail"), {}, ctx)).text();
      }
      const res = await proxy.fetch(new Request("https://w.example/jobs", post), {}, ctx);
      await res.text();
      const hit = a.hits.at(-1);
      expect({ level, body: json(hit), header: hit?.headers[HEADER] }).toEqual({
        level,
        body: AT[level],
        header: level,
      });
    }
  });
});

describe("a level change in the middle of a call", () => {
  it("a hedge started after the level moved carries the level the call started with", async () => {
    const { r, clock } = layer({}, chainOptions(50));
    a.on(() => {});
    const pending = r.fetch(`${a.base}/v1/jobs`, { ...post, headers: { ...post.headers, "idempotency-key": "k2" } });
    await a.nth(1);
    r.degradation?.setLevel("minimal");
    await clock.advance(50);
    const res = await pending;
    await res.text();
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
    expect(json(b.hits[0])).toEqual(JOB);
    expect(b.hits[0]?.headers[HEADER]).toBe("full");
    expect(json(a.hits[0])).toEqual(JOB);
  });

  it("a redirect hop and a retry after the level moved carry the call's level", async () => {
    const { r, clock } = layer({}, { retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" } });
    r.degradation?.setLevel("medium");
    const parked: Hit[] = [];
    a.on((h) => {
      if (h.path === "/old" && h.n === 1) parked.push(h);
      else if (h.path === "/old") {
        h.res.statusCode = 307;
        h.res.setHeader("location", "/jobs");
        h.res.end();
      } else if (h.n === 2) {
        h.res.statusCode = 503;
        h.res.end("x");
      } else h.res.end("ok");
    });
    const pending = clock.run(
      r.fetch(`${a.base}/old`, { ...post, headers: { ...post.headers, "idempotency-key": "k3" } }),
    );
    await a.nth(1);
    r.degradation?.setLevel("minimal");
    const old = parked[0] as Hit;
    old.res.statusCode = 307;
    old.res.setHeader("location", "/jobs");
    old.res.end();
    const res = await pending;
    await res.text();
    expect(a.hits.map((h) => [h.path, json(h), h.headers[HEADER]])).toEqual([
      ["/old", AT.medium, "medium"],
      ["/jobs", AT.medium, "medium"],
      ["/old", AT.medium, "medium"],
      ["/jobs", AT.medium, "medium"],
    ]);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
  });
});

describe("what feeds the triggers: a body that fails while sent, timeout.total", () => {
  const big = () => failing("0123456789abcdef", new RangeError("disk"));

  it("a Request body past maxReplayBytes that fails while sent counts nowhere: plain call and chain", async () => {
    const plain = layer({}, { maxReplayBytes: 4 });
    const error = await plain.r
      .fetch(new Request(`${a.base}/up`, { method: "POST", body: big(), duplex: "half" } as RequestInit))
      .catch((e) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(plain.win()).toEqual({ samples: 0, errorRate: 0 });

    const chained = layer({}, { maxReplayBytes: 4, ...chainOptions() });
    const chainError = await chained.r
      .fetch(new Request(`${a.base}/v1/up`, { method: "POST", body: big(), duplex: "half" } as RequestInit))
      .catch((e) => e);
    expect(chainError).toBeInstanceOf(TypeError);
    expect(chained.win()).toEqual({ samples: 0, errorRate: 0 });
  });

  it("a call timeout.total ended counts as failed (no caller abort)", async () => {
    const { r, clock, win } = layer({}, { timeout: { total: 100 } });
    a.on(() => {});
    const pending = r.fetch(`${a.base}/hang`).catch((e) => e);
    await a.nth(1);
    await clock.advance(100);
    expect(await pending).toMatchObject({ name: "TimeoutError" });
    expect(win()).toEqual({ samples: 1, errorRate: 1 });
  });
});

describe("degradation listeners while levels change", () => {
  it("a listener added during an event is not called for it; one removed during it is not called", async () => {
    const { r } = layer();
    const seen: string[] = [];
    let offB: () => void = () => {};
    const c = (e: DegradationEvent) => seen.push(`c:${e.to}`);
    r.on("degradation", (e) => {
      seen.push(`a:${e.to}`);
      offB();
      r.on("degradation", c);
    });
    offB = r.on("degradation", (e) => seen.push(`b:${e.to}`));
    r.degradation?.degrade("one");
    r.degradation?.degrade("two");
    expect(seen).toEqual(["a:high", "a:medium", "c:medium"]);
  });

  it("a listener that throws on a level change made by a call's settle breaks neither the call nor the level", async () => {
    const { r, clock, level } = layer({ minSamples: 1 });
    serve(clock);
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    r.on("degradation", () => {
      throw new Error("listener bug");
    });
    r.on("degradation", async () => {
      throw new Error("async listener bug");
    });
    const res = await r.fetch(`${a.base}/fail`);
    expect(res.status).toBe(503);
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(level()).toBe("high");
    expect(reported.mock.calls.length).toBeGreaterThanOrEqual(2);
  });

  it("a listener that changes the level itself: every change has its event, the level ends where the calls put it", async () => {
    const { r, events, level } = layer();
    let once = true;
    r.on("degradation", () => {
      if (once) {
        once = false;
        r.degradation?.degrade("listener");
      }
    });
    r.degradation?.degrade("caller");
    expect(level()).toBe("medium");
    expect(events.map((e) => `${e.from}>${e.to}:${e.reason}`).sort()).toEqual(
      ["full>high:caller", "high>medium:listener"].sort(),
    );
    // Unsubscribing every listener: levels still move, silently.
    const quiet = layer();
    const off = quiet.r.on("degradation", () => {});
    off();
    quiet.r.degradation?.setLevel("low");
    expect(quiet.r.health().degradationLevel).toBe("low");
  });
});

describe("a listener that changes the level, as docs/health-and-events.md says since", () => {
  it("is heard out at once: listeners after it hear its change first; the outer degrade() returns its own level", () => {
    const { r } = layer();
    let once = true;
    r.on("degradation", () => {
      if (once) {
        once = false;
        r.degradation?.degrade("listener");
      }
    });
    const later: string[] = [];
    r.on("degradation", (e) => later.push(`${e.from}>${e.to}`));
    const returned = r.degradation?.degrade("caller");
    expect(later).toEqual(["high>medium", "full>high"]);
    expect(returned).toMatchObject({ name: "high" });
    expect(r.degradation?.levelName()).toBe("medium");
  });
});

describe("the CPU share over a test clock slower than real time, as docs/degradation.md says since", () => {
  afterEach(() => vi.restoreAllMocks());

  for (const [cpuUsage, level] of [
    [undefined, "high"],
    [1, "full"],
  ] as const) {
    it(`reads high (cpuUsage ${cpuUsage ?? "default"}: ${level})`, async () => {
      const cores = navigator.hardwareConcurrency;
      // Each reading: one second of every core's CPU time while the test clock moves 1 s.
      let cpu = 0;
      vi.spyOn(process, "cpuUsage").mockImplementation(() => {
        cpu += cores * 1_000_000;
        return { user: cpu, system: 0 };
      });
      const clock = new TestClock(1_000_000);
      const r = createResilience({
        clock,
        retry: false,
        fetch: async () => new Response("ok"),
        degradation: degradation({ browserSignals: false, minSamples: 1, triggers: { cpuUsage } }),
      });
      for (let i = 0; i < 2; i++) {
        await (await r.fetch("https://a.example/x")).text();
        await clock.advance(1_000);
      }
      await (await r.fetch("https://a.example/x")).text();
      expect(r.degradation.currentLevel()).toMatchObject({ name: level });
    });
  }
});
