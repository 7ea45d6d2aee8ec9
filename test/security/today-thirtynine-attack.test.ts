/**
 * Outside-in attack on today's changes on main (c41bd2a..HEAD, up to baf018d): a chain's `validate` read under
 * `timeout.total` alone ending with the call's deadline signal instead of a timer of its own, a queued call failed
 * by a store of one's own giving its bulkhead slot back, `retry(fn)` naming an option that cannot be read by its
 * path, and the new sentences of docs/retry.md and docs/fallback.md, each on the paths where it applies.
 * Docs: docs/fallback.md ("`validate` reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else
 * what is left of `timeout.total`, else 30 s): a body that stalls or never ends fails validation", "An abort, or
 * `timeout.total` passing, rejects the call with the caller's reason or the `TimeoutError`", `statistics()`: "a run
 * its caller aborted, or that `timeout.total` ended, is not counted, nor the endpoint it was waiting on; under
 * `timeout.attempt` an endpoint that hangs counts as failed, and so does one its full bulkhead refused …, while one
 * passed over for its open breaker is not counted", "a chain that then ends on the caller's failing `Request` body
 * … rejects with `FallbackExhaustedError` naming both, counted as that `transform`'s failure"); docs/retry.md ("A
 * retry is paid for when it is allowed, before its wait: one that never goes (the caller aborts during the wait, a
 * hedge wins, …) keeps its token spent and counts in `retriesAllowed`. Every call earns its deposit once it is
 * read, calls later refused by a breaker or a bulkhead, or aborted, included; only a call the transport refused
 * before sending anything takes it back.", "A `ReadableStream` given in `init` stays yours until it is sent: a call
 * that ends before sending it (an open breaker, a full bulkhead) leaves it unread, unlocked and not cancelled");
 * docs/breakers.md (a store of one's own: "Its `publish`, `peek` and `record` run on the request's path: what they
 * throw fails the call"; a slot "is held until response headers arrive … or the attempt is given up"); the
 * `BreakerStore` JSDoc (`acquireProbe`: "a store that cannot answer … the local breaker decides (as it does when
 * this rejects or throws)"); docs/targets.md (`retry` alone "names one that cannot be read", "a member of an option
 * that cannot be read … by its path, as the layer does").
 * How: `createResilience`, `memoryStore`, a `BreakerStore` of the test's own (root), `fallback` (./fallback),
 * `degradation` (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, called as a plain handler),
 * `retry` (./policies), `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts).
 * Paths: plain call, chain, hedged chain, a 307 followed inside a chain endpoint, async `transform`, degradation
 * query rewrite, `Request` input with its own signal, a caller signal never aborted, ky client with its own
 * `timeout`, `resilientProxy`'s chain route; `retry(fn)`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: both):
 * 1. docs/targets.md: `retry` alone "names one that cannot be read", "by its path". Observed: a `signal` whose
 *    prototype chain cannot be walked past its first link (a `Proxy` whose `getPrototypeOf` gives a second `Proxy`
 *    whose own trap throws) makes `retry(fn, { signal })` reject with `ConfigError` "retry: expected a value that
 *    can be read" (the options themselves blamed), not "retry.signal: …". From src/policies/retry.ts: `checkOptions`
 *    throws in `signal instanceof AbortSignal` (which walks the whole chain), while the catch's search for the name
 *    calls `Object.getPrototypeOf(value)` once per option (one link) and reads no member of `signal`, so it finds no
 *    name and falls back to "retry".
 * 2. docs/retry.md: "Every call earns its deposit once it is read, calls later refused by a breaker or a bulkhead,
 *    or aborted, included; only a call the transport refused before sending anything takes it back." Observed: a
 *    call its caller aborts with a `TypeError` as the reason (`controller.abort(new TypeError(…))`) before any
 *    attempt left (queued in its host's full bulkhead, or waiting for a chain endpoint's async `transform`) takes
 *    its deposit back: `health().budget.tokens` stays where it was (1 with `ratio: 1`), where the same abort with an
 *    `Error` reason keeps the token (2). From src/http/resilient-fetch.ts `send`'s catch: `callers` is
 *    `state.attempts === 0 && error instanceof TypeError && !isStoreFailure(cause)`, with no look at `aborted`, so
 *    the caller's reason is taken for the platform's refusal and `parts.budget?.deposit(-deposited)` runs.
 *
 * Held (plain `it`):
 * - A chain's `validate` on a stalled body under `timeout.total` alone ends at the deadline with the `TimeoutError`
 *   of phase `total` on a chain, a hedge, a `Request` input with its own (never aborted) signal, a caller signal
 *   never aborted, ky with its own longer `timeout`, an async `transform`, a degradation rewrite, a 307 inside the
 *   endpoint, and a body that trickles forever; no `fallback` event, the next endpoint's server never reached (but
 *   the hedge's), both endpoints uncounted in `statistics()`, no timer left behind; `resilientProxy`'s chain route
 *   answers within the deadline too.
 * - A body past `maxReplayBytes` under `timeout.total` fails `validate` at once ("not read within 10 bytes", no ms
 *   named), the chain moves on and counts it.
 * - Without a timeout, `validate` gives up after 30 s of the test clock (not a ms earlier), with and without a
 *   hedge, and under `timeout.attempt: 100` after 100 ms: the chain moves on, the endpoint counted as failed.
 * - A store of one's own throwing around a queued call: `peek` at its grant and `record` at its end fail it (plain,
 *   chain, ky), `publish` at the opening its 500 causes fails it; `acquireProbe` throwing lets the local breaker
 *   decide, `releaseProbe` throwing at the queued probe's abort is swallowed; each time `active`/`queued` return to
 *   0/0 and a later call goes. Through `resilientProxy` a `peek` that throws at the grant is a 502, slots 0/0.
 * - `retry(fn)` names by path getters and `Proxy` traps (get, getOwnPropertyDescriptor, ownKeys, getPrototypeOf,
 *   revoked) on `maxAttempts`, `jitter`, `retryOn`, `retryOn.error`, `clock.setTimer`, `budget.tryRetry`; a
 *   throwing `has` trap is never consulted; options whose own keys cannot be listed are named "retry".
 * - An `init` stream kept from being sent (open breakers, full bulkheads, with async `transform`s) on a plain call
 *   and chains stays unread, unlocked, not cancelled, its bytes intact.
 * - A retry whose wait a hedge's win ended keeps its token spent (`retriesAllowed` 1, tokens 0).
 * - A hedged endpoint its full bulkhead refused counts as failed in `statistics()`.
 * - A chain whose first endpoint's async `transform` fails, ending on a failing `Request` body:
 * `FallbackExhaustedError`
 *   naming both, counted once (totals 1/1, `p` 1 call).
 *
 * Docs-silent when found, said in docs/retry.md since (the ky stream tested below):
 * - Through ky, a `ReadableStream` body given to ky (`ky.post(url, { body: stream })`) is locked when an open breaker
 *   or full bulkhead refuses the call: ky builds a `Request` of it, which the layer then reads ahead as a `Request`
 *   body. docs/retry.md's sentence speaks of `init` given to `resilience.fetch`; what a ky caller's stream becomes is
 *   ky's.
 * - docs/retry.md's "only a call the transport refused before sending anything takes it back" leaves out the
 *   `Request` body that fails while sent past the read-ahead, which the same page says is "counted … by nothing (…
 *   the retry budget …)" (and which does take it back).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  ConfigError,
  createResilience,
  FallbackExhaustedError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isTimeoutError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

type Endpoint = Parameters<typeof fallback>[0][number]["endpoints"][number];
const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) } };
const ctx = { waitUntil() {} };
const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));
const exact = { ratio: 1, minPerSecond: 0 };

/** Sends the headers and `{`, then nothing. */
function stall(hit: Hit): void {
  hit.res.writeHead(200, { "content-type": "application/json" });
  hit.res.write("{");
}

/** A body that never ends: a few bytes every 3 ms. */
function trickle(hit: Hit): void {
  hit.res.writeHead(200, { "content-type": "application/json" });
  hit.res.write("[");
  const t = setInterval(() => hit.res.write("1,"), 3);
  hit.res.on("close", () => clearInterval(t));
}

/** Timers of the process now. */
const timers = () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;

/** Each host's slots as `active/queued`. */
function slots(r: Resilience): string[] {
  return Object.values(r.health().breakers).map((v) => `${v.active}/${v.queued}`);
}

/** A chain `[p, q]` over `a` and `b`. */
function chain(extra: Record<string, unknown> = {}, p: Partial<Endpoint> = {}, q: Partial<Endpoint> = {}) {
  return fallback([
    {
      name: "c",
      ...extra,
      endpoints: [
        { name: "p", url: `${a.base}/v1`, ...p } as Endpoint,
        { name: "q", url: `${b.base}/v1`, ...q } as Endpoint,
      ],
    },
  ]);
}

const validated = (extra: Record<string, unknown> = {}, p: Partial<Endpoint> = {}) =>
  chain(extra, { validate: schema, ...p }, { validate: schema });

describe("defects", () => {
  it("1. retry(fn) names a signal whose prototype chain cannot be walked by its path", async () => {
    const throwing = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error("no prototype");
        },
      },
    );
    const signal = new Proxy({}, { getPrototypeOf: () => throwing });
    const error = await retry(async () => 1, { signal: signal as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    // Observed: "retry: expected a value that can be read, received a value that cannot be read".
    expect((error as Error).message).toMatch(/^retry\.signal: /);
  });

  it("2. a call aborted with a TypeError reason before any attempt keeps its deposit", async () => {
    const kept: Record<string, number[]> = {};
    for (const path of ["queued in the bulkhead", "waiting for an async transform"]) {
      const held: Hit[] = [];
      a.on((h) => held.push(h));
      const sent = a.hits.length;
      const r = createResilience({
        retry: false,
        budget: exact,
        bulkhead: { maxConcurrent: 1, maxQueue: 1 },
        fallback: chain({}, { transform: () => new Promise<never>(() => {}) }),
      });
      const blocker = r.fetch(`${a.base}/hold`);
      await a.nth(1);
      const tokens = [r.health().budget?.tokens as number];
      for (const reason of [new Error("gave up"), new TypeError("gave up")]) {
        const controller = new AbortController();
        const url = path === "queued in the bulkhead" ? `${a.base}/x` : `${a.base}/v1/x`;
        const call = r.fetch(url, { signal: controller.signal }).catch((e: unknown) => e);
        await tick();
        controller.abort(reason);
        expect(await call).toBe(reason);
        tokens.push(r.health().budget?.tokens as number);
      }
      kept[path] = tokens;
      (held[0] as Hit).res.end("ok");
      await blocker;
      // Only the blocker reached the server: neither aborted call sent anything.
      expect(a.hits.length - sent).toBe(1);
    }
    // Observed: [1, 2, 2]: the call aborted with a TypeError took its deposit back.
    expect(kept).toEqual({ "queued in the bulkhead": [1, 2, 3], "waiting for an async transform": [1, 2, 3] });
  });
});

describe("held: validate under timeout.total alone ends at the deadline", () => {
  const paths = [
    "chain",
    "hedge",
    "Request input with its own signal",
    "caller signal never aborted",
    "ky with its own timeout",
    "async transform",
    "degradation rewrite",
    "307 inside the endpoint",
    "a body that never ends",
  ];
  for (const path of paths) {
    it(path, async () => {
      if (path === "307 inside the endpoint") {
        a.on((h) => {
          if (h.path.startsWith("/v1")) {
            h.res.writeHead(307, { location: `${a.base}/stalled` });
            h.res.end();
          } else stall(h);
        });
      } else a.on(path === "a body that never ends" ? trickle : stall);
      b.on(stall);
      const r = createResilience({
        retry: false,
        timeout: { total: 40 },
        maxReplayBytes: 1_000_000,
        fallback: validated(
          path === "hedge" ? { hedge: { delay: 5 } } : {},
          path === "async transform" ? { transform: async (req) => req } : {},
        ),
        degradation:
          path === "degradation rewrite"
            ? degradation({ rules: [{ params: { model: { query: "model" } } }] })
            : undefined,
      });
      if (path === "degradation rewrite") r.degradation?.setLevel("medium");
      const moved: unknown[] = [];
      r.on("fallback", (e) => moved.push(e));
      const url = `${a.base}/v1/x?model=premium`;
      const before = timers();
      const started = performance.now();
      const never = new AbortController().signal;
      const error = await (path === "Request input with its own signal"
        ? r.fetch(new Request(url, { signal: never }))
        : path === "caller signal never aborted"
          ? r.fetch(url, { signal: never })
          : path === "ky with its own timeout"
            ? createClient({ resilience: r, timeout: 5000 }).get(url)
            : r.fetch(url)
      ).catch((e: unknown) => e);
      const took = performance.now() - started;
      expect(isTimeoutError(error)).toBe(true);
      expect((error as { phase?: string }).phase).toBe("total");
      expect(took).toBeLessThan(1000);
      expect(moved).toEqual([]);
      expect(b.hits).toHaveLength(path === "hedge" ? 1 : 0);
      const stats = r.fallback.chain("c").statistics().fallbacks;
      expect([stats.p?.calls, stats.q?.calls]).toEqual([0, 0]);
      await tick();
      expect(timers()).toBeLessThanOrEqual(before);
    });
  }

  it("resilientProxy's chain route answers within the deadline", async () => {
    a.on(stall);
    b.on(stall);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "c",
            endpoints: [
              { name: "p", url: `${a.base}/v1`, validate: schema },
              { name: "q", url: `${b.base}/v1`, validate: schema },
            ],
          },
        },
      ],
      resilience: { retry: false, timeout: { total: 40 } },
    });
    const started = performance.now();
    const res = await proxy.fetch(new Request("http://proxy.test/v1/x"), {}, ctx);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(b.hits).toHaveLength(0);
  });

  it("a body past maxReplayBytes fails validate at once and the chain moves on", async () => {
    a.on((h) => {
      h.res.writeHead(200, { "content-type": "application/json" });
      h.res.write(`[${"1,".repeat(50)}`);
    });
    b.on((h) => h.res.end("{}"));
    const r = createResilience({ retry: false, timeout: { total: 5000 }, maxReplayBytes: 10, fallback: validated() });
    const reasons: string[] = [];
    r.on("fallback", (e) => reasons.push(e.reason));
    const res = await r.fetch(`${a.base}/v1/x`);
    expect(await res.text()).toBe("{}");
    expect(reasons).toEqual(["invalid body: not read within 10 bytes"]);
    expect(r.fallback.chain("c").statistics().fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
  });
});

describe("held: validate's own bounds on the test clock", () => {
  const cases: Array<[string, number | undefined, boolean]> = [
    ["no timeout", undefined, false],
    ["no timeout, hedged", undefined, true],
    ["timeout.attempt", 100, false],
    ["timeout.attempt, hedged", 100, true],
  ];
  for (const [name, attempt, hedged] of cases) {
    it(`${name}: gives up after ${attempt ?? 30_000} ms`, async () => {
      a.on(stall);
      b.on((h) => h.res.end("{}"));
      const clock = new TestClock(0);
      const r = createResilience({
        clock,
        retry: false,
        timeout: attempt ? { attempt } : undefined,
        fallback: validated(hedged ? { hedge: { delay: 1_000_000 } } : {}),
      });
      const reasons: string[] = [];
      r.on("fallback", (e) => reasons.push(e.reason));
      let settled: unknown;
      const call = r.fetch(`${a.base}/v1/x`).then(
        (res) => (settled = res),
        (e: unknown) => (settled = e),
      );
      await a.nth(1);
      await tick();
      const limit = attempt ?? 30_000;
      await clock.advance(limit - 1);
      await tick();
      expect(settled).toBeUndefined();
      expect(b.hits).toHaveLength(0);
      await clock.advance(1);
      await call;
      expect(await (settled as Response).text()).toBe("{}");
      expect(reasons).toEqual([`invalid body: not read within ${limit} ms and 8388608 bytes`]);
      expect(r.fallback.chain("c").statistics().fallbacks.p).toMatchObject({ calls: 1, successes: 0 });
    });
  }
});

describe("held: a store of one's own throwing around a queued call", () => {
  for (const method of ["peek", "record"] as const) {
    for (const path of ["plain", "chain", "ky"]) {
      it(`${method} throwing as the queued call goes (${path}): the call fails, slots 0/0, the host not wedged`, async () => {
        const shared = memoryStore();
        let down = false;
        const store: BreakerStore = {
          name: "flaky",
          publish: (key, snapshot) => shared.publish(key, snapshot),
          peek: (key, now) => {
            if (down && method === "peek") throw new Error("store down");
            return shared.peek(key, now);
          },
          record: () => {
            if (down && method === "record") throw new Error("store down");
          },
        };
        const held: Hit[] = [];
        a.on((h) => (h.path === "/hold" ? held.push(h) : h.res.end("ok")));
        const r = createResilience({
          store,
          retry: false,
          bulkhead: { maxConcurrent: 1, maxQueue: 1 },
          fallback: path === "chain" ? chain() : undefined,
        });
        const blocker = r.fetch(`${a.base}/hold`).catch((e: unknown) => e);
        await a.nth(1);
        const url = path === "chain" ? `${a.base}/v1/x` : `${a.base}/x`;
        const queued = (path === "ky" ? createClient({ resilience: r }).get(url) : r.fetch(url)).catch(
          (e: unknown) => e,
        );
        await tick();
        expect(slots(r)).toEqual(["1/1"]);
        down = true;
        (held[0] as Hit).res.end("ok");
        await blocker;
        const error = await queued;
        expect(error).toBeInstanceOf(Error);
        expect(String((error as Error).cause ?? (error as Error).message)).toMatch(/store down/);
        down = false;
        expect(slots(r)).toEqual(["0/0"]);
        const next = await r.fetch(`${a.base}/3`, { signal: AbortSignal.timeout(200) });
        expect(await next.text()).toBe("ok");
        expect(b.hits).toHaveLength(0);
      });
    }
  }

  it("publish throwing at the opening the queued call's 500 causes: the call fails, slots 0/0", async () => {
    const shared = memoryStore();
    let down = false;
    const store: BreakerStore = {
      name: "flaky",
      publish: (key, snapshot) => {
        if (down) throw new Error("store down");
        shared.publish(key, snapshot);
      },
      peek: (key, now) => shared.peek(key, now),
    };
    const held: Hit[] = [];
    a.on((h) => {
      if (h.path === "/hold") held.push(h);
      else {
        h.res.statusCode = 500;
        h.res.end("x");
      }
    });
    const r = createResilience({
      store,
      retry: false,
      breaker: { failureThreshold: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
    });
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    const queued = r.fetch(`${a.base}/x`).catch((e: unknown) => e);
    await tick();
    down = true;
    (held[0] as Hit).res.end("ok");
    await blocker;
    expect(String(((await queued) as Error).message)).toMatch(/store down/);
    expect(slots(r)).toEqual(["0/0"]);
  });

  for (const which of ["acquireProbe", "releaseProbe"] as const) {
    it(`${which} throwing for a queued probe its caller then aborts: slots 0/0, probe answered`, async () => {
      const clock = new TestClock(0);
      const shared = memoryStore();
      let down = false;
      const store: BreakerStore = {
        name: "flaky",
        publish: (key, snapshot) => shared.publish(key, snapshot),
        peek: (key, now) => shared.peek(key, now),
        acquireProbe: async () => {
          if (down && which === "acquireProbe") throw new Error("store down");
          return "lease";
        },
        releaseProbe: () => {
          if (down && which === "releaseProbe") throw new Error("store down");
        },
      };
      const held: Hit[] = [];
      a.on((h) => {
        if (h.path === "/fail") {
          h.res.statusCode = 500;
          h.res.end("x");
        } else held.push(h);
      });
      const r = createResilience({
        clock,
        store,
        retry: false,
        breaker: { failureThreshold: 1, timeout: 1000, halfOpenMaxCalls: 3 },
        bulkhead: { maxConcurrent: 2, maxQueue: 1 },
      });
      const blocker = clock.run(r.fetch(`${a.base}/hold`));
      await a.nth(1);
      expect((await clock.run(r.fetch(`${a.base}/fail`))).status).toBe(500);
      await clock.advance(1001);
      const probe = r.fetch(`${a.base}/probe`);
      await a.nth(3);
      down = true;
      const controller = new AbortController();
      const queued = r.fetch(`${a.base}/q`, { signal: controller.signal }).catch((e: unknown) => e);
      await tick();
      expect(slots(r)).toEqual(["2/1"]);
      (held[0] as Hit).res.end("ok");
      await blocker;
      await a.nth(4);
      const reason = new Error("bye");
      controller.abort(reason);
      expect(await queued).toBe(reason);
      (held[1] as Hit).res.end("ok");
      expect((await probe).status).toBe(200);
      down = false;
      await tick();
      expect(slots(r)).toEqual(["0/0"]);
    });
  }

  it("resilientProxy: a peek that throws at a queued call's grant is a 502, slots back to 0/0", async () => {
    const shared = memoryStore();
    let down = false;
    const store: BreakerStore = {
      name: "flaky",
      publish: (key, snapshot) => shared.publish(key, snapshot),
      peek: (key, now) => {
        if (down) throw new Error("store down");
        return shared.peek(key, now);
      },
    };
    const held: Hit[] = [];
    a.on((h) => (h.path === "/v1/hold" ? held.push(h) : h.res.end("ok")));
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      store: () => store,
      resilience: { retry: false, bulkhead: { maxConcurrent: 1, maxQueue: 1 } },
    });
    const blocker = proxy.fetch(new Request("http://proxy.test/v1/hold"), {}, ctx);
    await a.nth(1);
    const queued = proxy.fetch(new Request("http://proxy.test/v1/x"), {}, ctx);
    await tick();
    down = true;
    (held[0] as Hit).res.end("ok");
    expect((await blocker).status).toBe(200);
    expect((await queued).status).toBe(502);
    down = false;
    const health = (await (
      await proxy.fetch(new Request("http://proxy.test/__resilience/health"), {}, ctx)
    ).json()) as {
      breakers: Record<string, { active: number; queued: number }>;
    };
    expect(Object.values(health.breakers).map((s) => `${s.active}/${s.queued}`)).toEqual(["0/0"]);
    expect((await proxy.fetch(new Request("http://proxy.test/v1/y"), {}, ctx)).status).toBe(200);
  });
});

describe("held: retry(fn) names what it cannot read by its path", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const boom = (): never => {
    throw new Error("x");
  };
  const cases: Array<[string, object, string]> = [
    [
      "a getter",
      {
        get maxAttempts() {
          return boom();
        },
      },
      "retry.maxAttempts",
    ],
    ["a get trap", new Proxy({}, { get: (_t, k) => (k === "jitter" ? boom() : undefined) }), "retry.jitter"],
    [
      "getOwnPropertyDescriptor",
      { retryOn: new Proxy({ error: () => true }, { getOwnPropertyDescriptor: boom }) },
      "retry.retryOn",
    ],
    ["ownKeys of a prototype", { retryOn: Object.create(new Proxy({}, { ownKeys: boom })) }, "retry.retryOn"],
    [
      "getPrototypeOf two links down",
      { retryOn: new Proxy({}, { getPrototypeOf: () => new Proxy({}, { getPrototypeOf: boom }) }) },
      "retry.retryOn",
    ],
    [
      "an inherited getter",
      {
        retryOn: Object.create({
          get error() {
            return boom();
          },
        }),
      },
      "retry.retryOn.error",
    ],
    [
      "an inherited get trap",
      {
        clock: Object.create(
          new Proxy({ now: () => 0 }, { get: (t, k) => (k === "setTimer" ? boom() : Reflect.get(t, k)) }),
        ),
      },
      "retry.clock.setTimer",
    ],
    ["a get trap", { budget: new Proxy({}, { get: boom }) }, "retry.budget.tryRetry"],
    ["a revoked prototype", { budget: Object.create(revoked.proxy) }, "retry.budget.tryRetry"],
    ["ownKeys", new Proxy({}, { ownKeys: boom }), "retry"],
    ["revoked", revoked.proxy, "retry"],
  ];
  for (const [how, options, path] of cases) {
    it(`${how}: ${path}`, async () => {
      const error = await retry(async () => 1, options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message.startsWith(`${path}: expected a value that can be read`)).toBe(true);
    });
  }

  it("a has trap that throws is never consulted", async () => {
    expect(await retry(async () => 1, { retryOn: new Proxy({}, { has: boom }) })).toBe(1);
  });
});

describe("held: the new sentences of docs/retry.md and docs/fallback.md", () => {
  for (const path of [
    "plain, open breaker",
    "chain, open breakers",
    "chain, full bulkheads",
    "async transforms, full bulkheads",
  ]) {
    it(`an init stream kept from being sent stays the caller's (${path})`, async () => {
      const held: Hit[] = [];
      const answer = (h: Hit) => {
        if (h.path === "/hold") held.push(h);
        else {
          h.res.statusCode = 500;
          h.res.end("x");
        }
      };
      a.on(answer);
      b.on(answer);
      const isChain = path.startsWith("chain") || path.startsWith("async");
      const shaped: Partial<Endpoint> = path.startsWith("async") ? { transform: async (req) => req } : {};
      const r = createResilience({
        retry: false,
        breaker: { failureThreshold: 1 },
        bulkhead: { maxConcurrent: 1, maxQueue: 0 },
        fallback: isChain ? chain({}, shaped, shaped) : undefined,
      });
      const blockers: Array<Promise<Response>> = [];
      if (path.includes("open")) {
        await (await r.fetch(`${a.base}/fail`)).text();
        await (await r.fetch(`${b.base}/fail`)).text();
      } else {
        blockers.push(r.fetch(`${a.base}/hold`), r.fetch(`${b.base}/hold`));
        await a.nth(1);
        await b.nth(1);
      }
      let cancelled = false;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("job"));
          controller.close();
        },
        cancel() {
          cancelled = true;
        },
      });
      const init = { method: "POST", body: stream, duplex: "half", headers: { "idempotency-key": "k" } } as RequestInit;
      const error = await r.fetch(isChain ? `${a.base}/v1/x` : `${a.base}/x`, init).catch((e: unknown) => e);
      if (isChain) {
        expect(error).toBeInstanceOf(FallbackExhaustedError);
        const errors = Object.values((error as FallbackExhaustedError).errors);
        expect(errors.every((e) => (path.includes("open") ? isCircuitOpenError(e) : isBulkheadRejectedError(e)))).toBe(
          true,
        );
      } else expect(isCircuitOpenError(error)).toBe(true);
      expect(stream.locked).toBe(false);
      expect(cancelled).toBe(false);
      expect(await new Response(stream).text()).toBe("job");
      for (const h of held) h.res.end("ok");
      await Promise.all(blockers);
    });
  }

  it("a stream given to the ky client is read ahead as the body of ky's Request: a refusal leaves it locked", async () => {
    a.on((h) => {
      h.res.statusCode = 500;
      h.res.end("x");
    });
    const client = createClient({ resilience: { retry: false, breaker: { failureThreshold: 1 } } });
    await client.get(`${a.base}/fail`, { throwHttpErrors: false }).text();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("job"));
        controller.close();
      },
    });
    const error = await client.post(`${a.base}/x`, { body: stream }).catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(stream.locked).toBe(true);
    expect(a.hits.length).toBe(1);
  });

  it("a retry whose wait a hedge's win ended keeps its token spent", async () => {
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("busy");
    });
    b.on((h) => setTimeout(() => h.res.end("ok"), 5));
    const r = createResilience({
      retry: { initialDelay: 200, maxDelay: 200, jitter: "none", maxAttempts: 3 },
      budget: exact,
      fallback: chain({ hedge: { delay: 20 } }),
    });
    expect(await (await r.fetch(`${a.base}/v1/x`)).text()).toBe("ok");
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(r.health().budget).toMatchObject({ tokens: 0, retriesAllowed: 1, retriesDenied: 0 });
  });

  it("a hedged endpoint its full bulkhead refused counts as failed", async () => {
    const held: Hit[] = [];
    a.on((h) => (h.path === "/hold" ? held.push(h) : h.res.end("{}")));
    b.on((h) => setTimeout(() => h.res.end("{}"), 30));
    const r = createResilience({
      retry: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 0 },
      fallback: chain({ hedge: { delay: 5 } }),
    });
    const blocker = r.fetch(`${a.base}/hold`);
    await a.nth(1);
    expect((await r.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(r.fallback.chain("c").statistics().fallbacks).toMatchObject({
      p: { calls: 1, successes: 0 },
      q: { calls: 1, successes: 1 },
    });
    (held[0] as Hit).res.end("ok");
    await blocker;
  });

  it("a failing Request body after a failed async transform: FallbackExhaustedError, the transform's failure", async () => {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulls++ === 0) c.enqueue(new TextEncoder().encode("x".repeat(100)));
        else c.error(new Error("disk gone"));
      },
    });
    const r = createResilience({
      retry: false,
      maxReplayBytes: 10,
      fallback: chain(
        {},
        {
          transform: async () => {
            throw new Error("json only");
          },
        },
      ),
    });
    const error = await r
      .fetch(new Request(`${a.base}/v1/up`, { method: "POST", body, duplex: "half" } as RequestInit))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const errors = (error as FallbackExhaustedError).errors;
    expect((errors.p as Error).message).toMatch(/json only/);
    expect(String((errors.q as Error).cause)).toMatch(/disk gone/);
    expect(r.debugInfo().totals).toMatchObject({ calls: 1, failures: 1 });
    expect(r.fallback.chain("c").statistics().fallbacks).toMatchObject({ p: { calls: 1 }, q: { calls: 0 } });
  });
});
