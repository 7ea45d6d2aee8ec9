/**
 * Outside-in attack on docs/breakers.md, sentence by sentence: what counts, thresholds and the rate window, half-open
 * probes and leases, holds, retries never parked, bulkheads, maxHosts, a shared store, a clock set back, named
 * breakers via `execute` and `hold`, the defaults' tolerance of flaky APIs, `health()` and the `breaker` events.
 *
 * Docs:
 * - docs/breakers.md: "other 4xx are the caller's fault and count as successes of the service; a caller's abort is
 *   neither, and so is an attempt cut by `timeout.total`"; "The reason it gives … names the last failure as the
 *   `retry` event does"; "50 failures then 50 successes open it at the next failure"; "an attempt counts for 27 to
 *   30 s"; "OPEN fails fast with `CircuitOpenError` and sends nothing"; "that answer counts for nothing: the expiry
 *   counts as the failure, and re-opens the circuit for `timeout` at the first look after it"; "A probe aborted by
 *   its caller, `timeout.total` or a hedge that won frees its slot at once, and gives back a coordinating store's
 *   lease (`releaseProbe`)" (the lease: tried, not kept); "A retry is never parked behind an open breaker"; "A host opened by another layer
 *   through a shared store is read when the retry leaves"; "the hop is refused … (`afterRedirect: true`)"; "A
 *   429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host open until then"; "(passed again, they are
 *   checked all the same: a bad value or a typo is a `ConfigError` every time)"; "`execute` refuses a `fn` that is
 *   no function or a `signal` that is no `AbortSignal` at once"; "Where a name is both, the named breaker is the
 *   one listed, and an open host breaker still makes `status` `unhealthy`"; "the breaker refused the fifth call after
 *   12 requests"; Bulkheads: "a redirect's hop to another host
 *   runs inside the attempt that holds the first host's slot", "(a streamed body does not hold it)", "A full queue
 *   rejects at once".
 * - JSDoc `CircuitBreaker#hold`: "A `until` that is no finite number … is a `TypeError`"; `BreakerOptions.key`: "the
 *   URL the caller asked for, before a degradation rewrite changes its query". docs/health-and-events.md:
 *   "`openUntil`; `null` … for one that reads `open` because a probe's lease ran out". docs/options.md: ConfigError
 *   "naming the path", `resilience.retry.maxAttempts` on ky and the proxy.
 *
 * How: root `createResilience`, `getResilienceInfo`, `memoryStore`, errors; ./fallback, ./degradation, ./ky
 * (`createClient`), ./cloudflare (`resilientProxy` in node, on a `memoryStore`), ./testing (`TestClock`,
 * `recordEvents`). Three node:http servers on 127.0.0.1 and a refused origin; a coordinating store (acquireProbe /
 * releaseProbe over `memoryStore`, tried); a signal-shaped object.
 *
 * Paths: plain call, `Request` input, ky and proxy (counts, opening, refusal, retry wake, defaults); a chain
 * (reasons, Retry-After hold); a hedge (probe slot); a library redirect across hosts (which host counts; a
 * hop to an open host); a degradation rewrite (breaker.key); named breakers via `execute`; `hold`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none: every sentence driven held on every path tried.
 *
 * Held (plain `it`):
 * - Bad breaker options: ConfigError at once naming the path (`breaker.…`; `resilience.breaker.…` on ky, proxy);
 *   named options re-checked after first use, applied on the first only; `hold(NaN|Infinity|"…"|Date|undefined)`
 *   a TypeError naming it, nothing changed; `execute` refuses a non-function or non-signal and takes no probe slot
 *   for them or for an aborted signal (its reason, fn not run); a signal-shaped object is a signal.
 * - 404/422 end the run and 5xx/429 count (plain, Request, ky, proxy); open sends nothing (proxy: 503); reasons
 *   equal the retry event's; abort and `timeout.total` count as neither, `timeout.attempt` counts.
 * - A→C 503 counts on A only; C open refuses the hop: CircuitOpenError `afterRedirect`, key C (plain, Request,
 *   ky), a 502 with no endpoint header (proxy). breaker.key reads the pre-rewrite query.
 * - Probe limit, lease lapse (late answer counts nothing, openUntil null then the re-open from that look), a won
 *   hedge frees the slot.
 * - Retries woken by an opening (plain, ky, proxy; via a store the proxy wrote); Retry-After 600 holds 600 s
 *   (plain, chain, proxy `Retry-After: 600`); bulkhead sentences;
 *   named-as-host; the rate rule (execute and HTTP); 27–30 s buckets; defaults: the fifth call refused after 12
 *   requests (plain, ky, proxy).
 * - Also tried, held, not kept (the file's size): `releaseProbe` of a coordinating store on a caller's abort,
 *   `timeout.total` and a hedge won, each once; a half-open host's queued call; a maxHosts burst keeping one
 *   bulkhead per host; a clock set back a day (layer, proxy `Retry-After: 30`); a URL as a name keeping its query;
 *   30% seeded failures never refused; a store whose `peek`/`publish` throws (RetryExhaustedError `attempts` 0,
 *   FallbackExhaustedError "the breaker store threw", proxy 502); a store value dated ahead held a day at most.
 *
 * Docs-silent (not pinned):
 * - A redirect A→C where C answers 503 `Retry-After: 600`: A counts the failure, the hold goes to C's breaker
 *   (open 600 s, `lastFailureTime: null`), which counts no failure.
 * - `hold(-Infinity)` is taken as a time past; `hold(1e300)` holds a named breaker open for good (no day cap, as a
 *   `Retry-After` or a store's value has); a named breaker accepts `maxHosts` and `key` and ignores them. (Both now
 *   in docs/breakers.md and the `hold` JSDoc, fifty-ninth session, asserted in test/http/named-breaker-hold.test.ts;
 *   the redirect's hold going to the host that sent it was in docs/retry.md already.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  createResilience,
  getResilienceInfo,
  memoryStore,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
serveDuringFile(A, B, C);
const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

type Options = NonNullable<Parameters<typeof createResilience>[0]>;
const status =
  (code: number, headers: Record<string, string> = {}) =>
  (hit: Hit): void =>
    void hit.res.writeHead(code, headers).end(`s${code}`);
const hang = (_hit: Hit): void => {};
/** A fallback chain "gen" over two servers, hedged after `hedge` ms when given. */
const chainOf = (one: { base: string }, two: { base: string }, hedge?: number) =>
  fallback([
    {
      name: "gen",
      ...(hedge ? { hedge: { delay: hedge } } : {}),
      endpoints: [
        { name: "a", url: `${one.base}/g` },
        { name: "b", url: `${two.base}/g` },
      ],
    },
  ]);
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** Moves the clock on in `step` ms steps (real turns between) until `promise` settles, at most `ms`. */
async function drive(clock: TestClock, promise: Promise<unknown>, ms = 60_000, step = 500): Promise<void> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  promise.then(done, done);
  for (let t = 0; t <= ms && !settled; t += step) {
    await tick();
    if (!settled) await clock.advance(step);
  }
  await tick();
}

/** One way to send a GET through the library: plain, `Request`, ky, proxy; each answers a status or throws. */
type Path = "plain" | "request" | "ky" | "proxy";
const PATHS: Path[] = ["plain", "request", "ky", "proxy"];
function over(path: Path, options: Options, clock = new TestClock(0)) {
  const layer = createResilience({ retry: false, ...options, clock });
  const events = recordEvents(layer);
  const api = createClient({ resilience: layer, throwHttpErrors: false });
  const proxy = resilientProxy({
    routes: [{ path: "/up", upstream: A.base }],
    resilience: { retry: false, ...options, clock } as never,
  });
  const send = async (url: string): Promise<number> => {
    if (path === "plain") return (await layer.fetch(url)).status;
    if (path === "request") return (await layer.fetch(new Request(url))).status;
    if (path === "ky") return (await api.get(url)).status;
    // The proxy's one route goes to A: `url` must be on A.
    const res = await proxy.fetch(
      new Request(url.replace(A.base, "https://w.example/up")),
      {},
      { waitUntil: (p: Promise<unknown>) => void pending.push(p) },
    );
    await res.text();
    return res.status;
  };
  return { clock, layer, events, send, proxy };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Bad input: breaker options and `hold`

describe("bad input to breaker options, hold and execute", () => {
  const bad: Array<[unknown, string]> = [
    [{ failureThreshold: 0 }, "breaker.failureThreshold: expected a value >= 1, received 0"],
    [{ failureRate: 0 }, "breaker.failureRate: expected a value > 0, received 0"],
    [{ failureRate: 1.5 }, "breaker.failureRate: expected a value <= 1, received 1.5"],
    [{ probeTimeout: Number.NaN }, "breaker.probeTimeout: expected number, received NaN"],
    [{ key: "host" }, 'breaker.key: expected a function, received "host"'],
    [{ failureTreshold: 3 }, 'breaker: unknown option "failureTreshold"'],
    [null, "breaker: expected false or object, received null"],
  ];

  it("the layer, ky's createClient and resilientProxy: a ConfigError at once, naming the path as written", () => {
    for (const [breaker, message] of bad) {
      const made = [
        thrown(() => createResilience({ breaker } as never)),
        thrown(() => createClient({ resilience: { breaker } as never })),
        thrown(() => resilientProxy({ routes: [{ path: "/a", upstream: A.base }], resilience: { breaker } as never })),
      ];
      for (const error of made) expect(error).toBeInstanceOf(ConfigError);
      expect(made.map((e) => (e as Error).message)).toEqual([
        message,
        `resilience.${message}`,
        `resilience.${message}`,
      ]);
    }
  });

  it("a named breaker's options: checked on every pass, also after first use (a typo, a bad value, null)", () => {
    const layer = createResilience({});
    const gpu = layer.breaker("gpu", { failureThreshold: 2 });
    expect(layer.breaker("gpu")).toBe(gpu);
    for (const [options, message] of [
      [{ failureThreshold: 0 }, 'breaker("gpu").failureThreshold: expected a value >= 1, received 0'],
      [{ failureTreshold: 3 }, 'breaker("gpu"): unknown option "failureTreshold"'],
      [null, 'breaker("gpu"): expected object, received null'],
    ] as const) {
      const error = thrown(() => layer.breaker("gpu", options as never));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(message);
    }
    // Applied on first use only: a second pass with other (valid) numbers changes nothing.
    expect(layer.breaker("gpu", { failureThreshold: 50 })).toBe(gpu);
    for (const _ of [1, 2]) gpu.failure(gpu.acquire(), "x");
    expect(gpu.state).toBe("open");
  });

  it("hold(until): no finite number is a TypeError naming it, the breaker unchanged; a time past holds nothing", () => {
    const clock = new TestClock(10_000);
    const layer = createResilience({ clock });
    const events = recordEvents(layer);
    const b = layer.breaker("render");
    for (const [until, shown] of [
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      ["20000", "string"],
      [new Date(20_000), "object"],
      [undefined, "undefined"],
    ] as const) {
      const error = thrown(() => b.hold(until as never, "r"));
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(`breaker.hold(until): expected a time in ms, got ${shown}`);
    }
    b.hold(5_000, "past");
    b.hold(Number.NEGATIVE_INFINITY, "past");
    expect([b.state, b.toJSON().gen, events.of("breaker")]).toEqual(["closed", 0, []]);
    b.hold(70_000, "Retry-After 60");
    expect(layer.health().breakers.render).toMatchObject({
      state: "open",
      openUntil: 70_000,
      reason: "Retry-After 60",
    });
    expect(events.of("breaker")).toMatchObject([{ key: "render", from: "closed", to: "open", openUntil: 70_000 }]);
  });

  it("execute: a fn that is no function, a signal that is no AbortSignal: TypeError, no probe slot taken", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock });
    const b = layer.breaker("upscaler", { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 });
    await rejection(b.execute(() => Promise.reject(new Error("down"))));
    await clock.advance(1_000);
    expect(b.state).toBe("half_open");
    const noFn = await rejection(b.execute(42 as never));
    const noSignal = await rejection(b.execute(() => 1, { aborted: false } as never));
    expect([noFn, noSignal].map((e) => (e as Error).message)).toEqual([
      'breaker("upscaler").execute(fn): fn must be a function, got number',
      'breaker("upscaler").execute(fn, signal): signal must be an AbortSignal, got object',
    ]);
    // An aborted signal: its reason, fn not run, no slot taken (the probe below still goes).
    let ran = false;
    const reason = new Error("gone");
    const aborted = await rejection(b.execute(() => (ran = true), AbortSignal.abort(reason)));
    expect([aborted, ran]).toEqual([reason, false]);
    // A signal read by its shape (one of any realm).
    const shaped = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
    expect(await b.execute(() => "probe", shaped as never)).toBe("probe");
    expect(b.state).toBe("half_open");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. What counts, and what the reason says, on each path

describe("what a breaker counts, on the plain call, a Request, ky and the proxy", () => {
  it.each(PATHS)(
    "%s: a 404 counts as a success (ends the run); 5xx and 429 count; open sends nothing",
    async (path) => {
      const { send, layer, events } = over(path, { breaker: { failureThreshold: 2 } });
      const answers = [503, 404, 429, 422, 500, 404, 502, 503];
      let i = 0;
      A.on((hit) => status(answers[i++] ?? 200)(hit));
      const seen: number[] = [];
      for (const _ of answers.slice(0, 6)) seen.push(await send(`${A.base}/x`));
      expect(seen).toEqual(answers.slice(0, 6));
      if (path !== "proxy") expect(layer.health().breakers[A.host]?.state).toBe("closed");
      await send(`${A.base}/x`);
      await send(`${A.base}/x`);
      expect(A.hits).toHaveLength(8);
      const refused = await send(`${A.base}/x`).catch((e: unknown) => e);
      expect(A.hits).toHaveLength(8);
      if (path === "proxy") expect(refused).toBe(503);
      else {
        expect(refused).toBeInstanceOf(CircuitOpenError);
        expect(events.of("breaker").map((e) => e.reason)).toEqual(["2 failures in a row (last: status 503)"]);
      }
    },
  );

  it("the reason names the last failure as the retry event does, on the plain call and a chain", async () => {
    const clock = new TestClock(0);
    const refused = await refusedOrigin();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, jitter: "none", initialDelay: 100 },
      breaker: { failureThreshold: 2 },
      timeout: { attempt: 1_000 },
      fallback: chainOf(B, C),
    });
    const events = recordEvents(layer);
    A.on(status(503));
    B.on(hang);
    C.on((hit) => void hit.res.socket?.destroy());
    for (const url of [`${A.base}/x`, `${refused}/x`, `${B.base}/g/x`]) {
      const call = layer.fetch(url).catch((e: unknown) => e);
      await drive(clock, call, 10_000, 100);
      await call;
    }
    const byKey = new Map(events.of("retry").map((e) => [e.key, e.reason]));
    const health = layer.health().breakers;
    for (const [key, reason] of byKey) {
      expect(health[key]?.lastError).toBe(reason);
      expect(events.of("breaker").find((e) => e.key === key)?.reason).toBe(`2 failures in a row (last: ${reason})`);
    }
    expect([...byKey.values()].sort()).toEqual([
      "attempt timeout",
      "connection refused",
      "connection reset",
      "status 503",
    ]);
  });

  it("a caller's abort and a cut by timeout.total count as neither; timeout.attempt counts the hang", async () => {
    const clock = new TestClock(0);
    A.on(hang);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      timeout: { total: 1_000 },
    });
    const controller = new AbortController();
    const aborted = layer.fetch(`${A.base}/x`, { signal: controller.signal }).catch((e: unknown) => e);
    await A.nth(1);
    controller.abort(new Error("left"));
    expect(((await aborted) as Error).message).toBe("left");
    const cut = layer.fetch(`${A.base}/x`).catch((e: unknown) => e);
    await A.nth(2);
    await clock.advance(1_000);
    expect(await cut).toBeInstanceOf(Error);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
    const other = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      timeout: { attempt: 1_000 },
    });
    const hung = other.fetch(`${A.base}/x`).catch((e: unknown) => e);
    await A.nth(3);
    await clock.advance(1_000);
    await hung;
    expect(other.health().breakers[A.host]).toMatchObject({ state: "open", lastError: "attempt timeout" });
  });

  it("a redirect across hosts: the host the call addressed counts the hop's 503, not the host it led to", async () => {
    for (const path of ["plain", "request", "ky"] as const) {
      A.reset();
      C.reset();
      const { send, layer } = over(path, { breaker: { failureThreshold: 1 }, redirects: "library" });
      A.on((hit) => void hit.res.writeHead(302, { location: `${C.base}/moved` }).end());
      C.on(status(503));
      expect(await send(`${A.base}/x`)).toBe(503);
      const breakers = layer.health().breakers;
      expect([breakers[A.host]?.state, breakers[C.host]?.state ?? "none"]).toEqual(["open", "none"]);
      C.on(status(200));
      expect(await send(`${C.base}/direct`)).toBe(200);
    }
  });

  it("a degradation rewrite: breaker.key reads the URL the caller asked for, not the rewritten query", async () => {
    const keys: string[] = [];
    const layer = createResilience({
      retry: false,
      breaker: {
        failureThreshold: 1,
        key: (url) => {
          keys.push(url.search);
          return `${url.host}${url.search}`;
        },
      },
      degradation: degradation({ rules: [{ match: A.base, params: { steps: { query: "steps" } } }] }),
    });
    layer.degradation.setLevel("minimal");
    A.on(status(503));
    await layer.fetch(new Request(`${A.base}/gen?steps=50`));
    expect(A.hits[0]?.path).toBe("/gen?steps=10");
    expect(keys).toEqual(["?steps=50"]);
    expect(Object.keys(layer.health().breakers)).toEqual([`${A.host}?steps=50`]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Open, half-open, probes, holds, retries

describe("open and half-open, on the plain call, a hedge, a redirect, ky and the proxy", () => {
  const probing = { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, probeTimeout: 5_000 };

  it("one probe in flight refuses the next; its caller's abort frees the slot at once; a lapsed lease re-opens", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock, retry: false, breaker: probing });
    const events = recordEvents(layer);
    A.on(status(503));
    await layer.fetch(`${A.base}/x`);
    await clock.advance(1_000);
    A.on(hang);
    const controller = new AbortController();
    const probe = layer.fetch(`${A.base}/x`, { signal: controller.signal }).catch((e: unknown) => e);
    await A.nth(2);
    const refused = await rejection(layer.fetch(`${A.base}/x`));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAt).toBe(6_000);
    controller.abort(new Error("left"));
    await probe;
    const late = layer.fetch(`${A.base}/x`);
    const hit = await A.nth(3);
    expect(A.hits).toHaveLength(3);
    await clock.advance(5_000);
    // Reads open, with no end to show until a look re-opens it (health-and-events.md).
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "open", openUntil: null });
    await clock.advance(500);
    hit.res.end("late");
    expect((await late).status).toBe(200);
    // The late answer counts for nothing: the expiry re-opened it, for `timeout` from that first look.
    expect(events.of("breaker").map((e) => `${e.to}@${e.openUntil}`)).toEqual([
      "open@1000",
      "half_open@null",
      "open@7500",
    ]);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "open", openUntil: 7_500 });
  });

  it("a hedge that won frees the half-open host's probe slot at once", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: probing,
      fallback: chainOf(A, B, 100),
    });
    A.on(status(503));
    await layer.fetch(`${A.base}/direct`);
    await clock.advance(1_000);
    A.on(hang);
    const call = layer.fetch(`${A.base}/g/x`);
    await A.nth(2);
    await clock.advance(100);
    const res = await call;
    expect([await res.text(), getResilienceInfo(res)?.endpoint]).toEqual(["ok", "b"]);
    await A.hits[1]?.closed;
    A.on(status(200));
    expect((await layer.fetch(`${A.base}/direct`)).status).toBe(200);
    expect(A.hits).toHaveLength(3);
  });

  it("a redirect's hop to an open host is refused: CircuitOpenError afterRedirect (plain, ky); the proxy a 502", async () => {
    for (const path of ["plain", "request", "ky", "proxy"] as const) {
      A.reset();
      C.reset();
      const { send, layer } = over(path, { breaker: { failureThreshold: 1 }, redirects: "library" });
      C.on(status(503));
      A.on((hit) => void hit.res.writeHead(302, { location: `${C.base}/moved` }).end());
      if (path !== "proxy") {
        expect(await send(`${C.base}/direct`)).toBe(503);
        const got = await send(`${A.base}/x`).catch((e: unknown) => e);
        expect(got).toBeInstanceOf(CircuitOpenError);
        expect([(got as CircuitOpenError).key, (got as CircuitOpenError).afterRedirect]).toEqual([C.host, true]);
        expect(layer.health().breakers[A.host]?.state).toBe("closed");
      } else {
        const proxy = resilientProxy({
          routes: [
            { path: "/up", upstream: A.base },
            { path: "/c", upstream: C.base },
          ],
          resilience: { retry: false, breaker: { failureThreshold: 1 } },
        });
        const serve = async (url: string) => {
          const res = await proxy.fetch(new Request(url), {}, { waitUntil() {} });
          return [res.status, await res.text(), res.headers.get("x-resilience-endpoint")];
        };
        expect((await serve("https://w.example/c/direct"))[0]).toBe(503);
        const [code, , endpoint] = await serve("https://w.example/up/x");
        expect([code, endpoint]).toEqual([502, null]);
      }
      expect([A.hits.length, C.hits.length]).toEqual([1, 1]);
    }
  });

  it.each(["plain", "ky", "proxy"] as const)("%s: a retry is never parked behind a host that opened", async (path) => {
    const { send, clock } = over(path, {
      retry: { maxAttempts: 3, initialDelay: 10_000, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    A.on(status(503));
    const first = send(`${A.base}/x`);
    await A.nth(1);
    await tick();
    const second = send(`${A.base}/x`);
    expect(await first).toBe(503);
    expect(await second).toBe(503);
    expect([clock.now(), A.hits.length]).toEqual([0, 2]);
  });

  it("a 503 whose Retry-After exceeds maxRetryAfter holds the host open until then: plain, chain, proxy", async () => {
    const { send, layer } = over("plain", { retry: { maxRetryAfter: 60_000 } });
    A.on(status(503, { "retry-after": "600" }));
    expect(await send(`${A.base}/x`)).toBe(503);
    expect(layer.health().breakers[A.host]).toMatchObject({
      state: "open",
      openUntil: 600_000,
      reason: "Retry-After 600 s on status 503",
    });
    const refused = await rejection(layer.fetch(`${A.base}/y`));
    expect((refused as CircuitOpenError).retryAt).toBe(600_000);
    const chained = createResilience({
      retry: false,
      clock: new TestClock(0),
      fallback: chainOf(A, B),
    });
    expect(await (await chained.fetch(`${A.base}/g/x`)).text()).toBe("ok");
    expect(chained.health().breakers[A.host]).toMatchObject({ state: "open", openUntil: 600_000 });
    const { proxy } = over("proxy", {});
    const ctx = { waitUntil() {} };
    await (await proxy.fetch(new Request("https://w.example/up/x"), {}, ctx)).text();
    const held = await proxy.fetch(new Request("https://w.example/up/y"), {}, ctx);
    expect([held.status, held.headers.get("retry-after")]).toEqual([503, "600"]);
    expect(A.hits).toHaveLength(3);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. Bulkheads, maxHosts, a shared store

describe("bulkheads, maxHosts and a shared store", () => {
  it.each(["plain", "ky"] as const)(
    "%s: full queue at once; a queued call meets the opening; open refuses first",
    async (path) => {
      const { send } = over(path, { breaker: { failureThreshold: 1 }, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
      A.on(hang);
      const first = send(`${A.base}/x`);
      const firstHit = await A.nth(1);
      const queued = send(`${A.base}/x`).catch((e: unknown) => e);
      const full = await send(`${A.base}/x`).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(BulkheadRejectedError);
      firstHit.res.writeHead(503).end();
      expect(await first).toBe(503);
      expect(await queued).toBeInstanceOf(CircuitOpenError);
      expect(await send(`${A.base}/x`).catch((e: unknown) => e)).toBeInstanceOf(CircuitOpenError);
      expect(A.hits).toHaveLength(1);
    },
  );

  it("a redirect's hop runs in the first host's slot; a streamed body holds none; an aborted caller takes none", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock, retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    C.on((hit) => (hit.n === 1 ? undefined : void hit.res.end("hop")));
    const direct = layer.fetch(`${C.base}/direct`).catch((e: unknown) => e);
    pending.push(direct);
    await C.nth(1);
    A.on((hit) => void hit.res.writeHead(302, { location: `${C.base}/moved` }).end());
    expect(await (await layer.fetch(`${A.base}/x`)).text()).toBe("hop");
    expect(layer.health().breakers[C.host]).toMatchObject({ active: 1, queued: 0 });
    C.hits[0]?.res.end("direct");
    B.on((hit) => {
      hit.res.writeHead(200);
      hit.res.write("part");
    });
    const streamed = await layer.fetch(`${B.base}/s`);
    expect(layer.health().breakers[B.host]?.active).toBe(0);
    const reason = new Error("gone");
    expect(await rejection(layer.fetch(`${B.base}/t`, { signal: AbortSignal.abort(reason) }))).toBe(reason);
    expect(B.hits).toHaveLength(1);
    B.hits[0]?.res.end("rest");
    expect(await streamed.text()).toBe("partrest");
  });

  it("memoryStore: a host the proxy opened ends another layer's retry when it leaves, with the answer it has", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const layer = createResilience({ clock, store, retry: { maxAttempts: 3, initialDelay: 1_000, jitter: "none" } });
    const proxy = resilientProxy({
      routes: [{ path: "/up", upstream: A.base }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 } },
      store: () => store,
    });
    A.on(status(503));
    const call = settle(layer.fetch(`${A.base}/x`), clock);
    await A.nth(1);
    const res = await proxy.fetch(new Request("https://w.example/up/y"), {}, { waitUntil() {} });
    expect(res.status).toBe(503);
    await res.text();
    await drive(clock, call, 5_000, 250);
    expect(await call).toEqual({ at: 1_000, code: 503 });
    expect(A.hits).toHaveLength(2);
    expect(await rejection(layer.fetch(`${A.base}/z`))).toBeInstanceOf(CircuitOpenError);
    expect(layer.health()).toMatchObject({ status: "unhealthy" });
  });
});

const settle = (call: Promise<Response>, clock: TestClock) =>
  call.then(
    (r) => ({ at: clock.now(), code: r.status }),
    (e: unknown) => ({ at: clock.now(), code: String(e) }),
  );

// ---------------------------------------------------------------------------------------------------------------
// 5. Named breakers and the default rules

describe("named breakers, the rate rule and the defaults", () => {
  it("a name that is also a host: the named one is listed, the open host still makes status unhealthy", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    const named = layer.breaker(A.host);
    expect(await named.execute(() => "fine")).toBe("fine");
    A.on(status(503));
    await layer.fetch(`${A.base}/x`);
    const health = layer.health();
    expect([health.status, health.breakers[A.host]?.state, health.breakers[A.host]?.gen]).toEqual([
      "unhealthy",
      "closed",
      0,
    ]);
  });

  it("rate rule: 50 failures then 50 successes open at the next failure, not before (execute and HTTP)", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 1_000 } });
    const events = recordEvents(layer);
    const b = layer.breaker("rate", { failureThreshold: 1_000 });
    for (let i = 0; i < 50; i++) await rejection(b.execute(() => Promise.reject(new Error("x"))));
    for (let i = 0; i < 50; i++) await b.execute(() => 1);
    expect(b.state).toBe("closed");
    await rejection(b.execute(() => Promise.reject(new Error("x"))));
    expect(b.state).toBe("open");
    let i = 0;
    A.on((hit) => status(i++ < 50 ? 503 : 200)(hit));
    for (let n = 0; n < 100; n++) await layer.fetch(`${A.base}/x`);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 50, failureRate: 0.5 });
    A.on(status(503));
    await layer.fetch(`${A.base}/x`);
    expect(events.of("breaker").map((e) => e.reason)).toEqual([
      "failure rate 0.50 over 101 calls (last: Error)",
      "failure rate 0.50 over 101 calls (last: status 503)",
    ]);
  });

  it("an attempt counts for 27 to 30 s: in 10 buckets of 3 s that leave whole", async () => {
    const clock = new TestClock(0);
    const layer = createResilience({ clock });
    const rule = { failureThreshold: 1_000, failureRate: 1, minimumCalls: 3 };
    const fail = () => Promise.reject(new Error("x"));
    const [early, late] = [layer.breaker("early", rule), layer.breaker("late", rule)];
    for (const b of [early, late]) await rejection(b.execute(fail));
    await clock.advance(2_999);
    for (const b of [early, late]) await rejection(b.execute(fail));
    await clock.advance(27_000);
    await rejection(early.execute(fail));
    expect(early.state).toBe("open");
    await clock.advance(1);
    expect(layer.health().breakers.late?.failureCount).toBe(0);
    await rejection(late.execute(fail));
    expect([late.state, layer.health().breakers.late?.failureCount]).toEqual(["closed", 1]);
  });

  it.each(["plain", "ky", "proxy"] as const)(
    "%s, defaults: a dead host is refused on the fifth call after 12 requests",
    async (path) => {
      const clock = new TestClock(0);
      const { send } = over(path, { retry: {}, random: () => 0.5 }, clock);
      A.on(status(503));
      const seen: unknown[] = [];
      for (let n = 0; n < 5; n++) {
        const call = send(`${A.base}/x`).catch((e: unknown) => (e instanceof Error ? e.name : e));
        await drive(clock, call, 20_000, 250);
        seen.push(await call);
      }
      expect(seen).toEqual([503, 503, 503, 503, path === "proxy" ? 503 : "CircuitOpenError"]);
      expect(A.hits).toHaveLength(12);
    },
  );
});
