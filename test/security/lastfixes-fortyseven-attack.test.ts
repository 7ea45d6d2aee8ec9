/**
 * Outside-in attack on the last session's fixes (CHANGELOG.md, the first "### Fixed" list): a chain endpoint whose
 * `transform` sends it to a host whose breaker is open is passed over ("circuit open", not counted, nothing sent),
 * the breaker asked again after any `transform` that took its time; a hedged pass-over's `fallback` event `next`;
 * `retry.idempotencyKey` with `retryOn.methods` listing POST/PATCH and on transform-made POSTs; a hedged keyless
 * POST that each endpoint's `transform` keys; a call whose signal is already aborted refused for the caller's
 * mistakes first. Driven by variations the fixes' own tests leave out, through the public API only.
 *
 * Docs:
 * - docs/fallback.md: "one whose breaker is open is skipped without a request (the breaker of the host in its
 *   declared `url`, asked before its `transform` runs, then that of the host the `transform` sends it to: either
 *   open passes it over, with reason "circuit open", not counted)"; statistics: "one passed over for its open
 *   breaker is not counted"; "`hedge: { delay }`, for idempotent requests or requests with an `Idempotency-Key`
 *   only (as each endpoint is sent them: once a `transform` has made one that may not be sent twice, a POST
 *   without a key, no hedge starts while it is out …, and no endpoint is sent beside one …)"; "`transform(req)` …
 *   with `retry.idempotencyKey`, a POST or PATCH it makes of another method gets an `Idempotency-Key` of its own".
 * - docs/health-and-events.md: "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`,
 *   `next`: after a failure, a hedge already running that the call carries on with, else the endpoint next in
 *   line; for one passed over for its open breaker, the endpoint next in line, else a hedge already running; the
 *   endpoint next in line, when its breaker is open, is passed over in turn with an event of its own, `reason`
 *   "circuit open")".
 * - docs/breakers.md: a store's "`peek` must answer at once …: a promise from it is no snapshot"; "what they
 *   throw fails the call … and a chain stops at the endpoint that met it (`FallbackExhaustedError`, "stopped after
 *   …: the breaker store threw")".
 * - docs/retry.md "## Idempotency": "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get
 *   one (`crypto.randomUUID()`), the same on every retry of that call (a POST or PATCH that a chain's `transform`
 *   makes of another method gets one of its own, the same on every retry of that endpoint)"; "an empty one, or one
 *   of spaces, is none"; "## Bodies": "As fetch builds its `Request` before it looks at the signal, a call whose
 *   signal is already aborted is refused for these mistakes first (… an invalid URL, a bad method, header …, a GET
 *   or HEAD with a body …), and rejects with the signal's reason only when none is made".
 * - docs/options.md `retry.retryOn.methods`: "methods retried on any retryable outcome, in any case".
 * - docs/cloudflare.md (`resilientProxy`): "answers `503` with `Retry-After` when the circuit is open, `504` on a
 *   timeout and `502` when … (…; and a `429` or `503` that came after another request of the call (a retry, an
 *   endpoint before it) for a client's POST or PATCH without a key, when `retry.idempotencyKey` is on: the layer
 *   retried it under a key of its own, an earlier attempt may have been processed, and the client's next request
 *   would go under another key)"; "(a chain route … as timed out when every endpoint it tried timed out and the
 *   rest were open)"; "adds `x-resilience-endpoint` …, `x-resilience-attempts` … to the responses the upstreams
 *   gave".
 *
 * How: `createResilience`, `getResilienceInfo`, `memoryStore`, `isCircuitOpenError`, `isFallbackExhaustedError`
 * (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), `resilientProxy`
 * (./cloudflare), `TestClock` and `recordEvents` (./testing); a `BreakerStore` object of my own written to the
 * documented contract (`name`, `publish`, `peek`); four node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) recording every request and its `Idempotency-Key`; Node's own `fetch` as the
 * reference for aborted signals.
 *
 * Paths: plain call, fallback chain (fixed and `order: "adaptive"`), hedged chains, redirect (`redirects:
 * "library"`, 307), degradation rewrite (a JSON rule at `low`), `Request` input, `resilientProxy` (upstream and
 * chain routes, hedged chain route, its health path), ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both fixed in the same session, so plain `it`):
 * 1. docs/health-and-events.md "for one passed over for its open breaker, the endpoint next in line, else a hedge
 *    already running". Observed: in a hedged chain `[p, s, t]` whose hedge starts `s` while `p` still runs, an `s`
 *    whose `transform` sends it to an open host is passed over with `next: "p"` (the running one), though `t` is
 *    next in line and starts in its place at once (and then serves); the same `s` declared at that host says
 *    `next: "t"`, as the docs say. With `t` open too, the events are `s -> p`, `t -> p` where the declared chain
 *    gives `s -> t`, `t -> p`. Source: src/policies/fallback-chain.ts `#conclude`: a failure the `passedOver` hook
 *    names a pass-over is given the running entry (`carrying`) as `next`, as after a failure, before the entry next
 *    in line; only `#launchable` (a declared pass-over) names the next in line first.
 * 2. docs/cloudflare.md: the proxy answers `502` for "a `429` or `503` that came after another request of the call
 *    (a retry, an endpoint before it) for a client's POST or PATCH without a key, when `retry.idempotencyKey` is
 *    on", and adds its headers "to the responses the upstreams gave". Observed: a chain route `[p, s]` whose `p` is
 *    passed over for its open breaker (sent there by its `transform`, or declared there) and whose `s` answers a
 *    client's keyless POST with one `503` (`Retry-After: 5`, `maxAttempts: 1`, the call's only request,
 *    `attempts` 1) is answered `502 {"error":"upstream unavailable"}`: the 503, its `Retry-After` and the
 *    `x-resilience-*` headers are lost, though nothing went before it (the same route with `s` alone passes the 503
 *    on). Source: src/http/send/resilience-info.ts `attachInfo` marks an answer as following others whenever
 *    `info.fromFallback` (any endpoint but the first served), whether or not an earlier endpoint sent anything;
 *    src/cloudflare/resilient-proxy.ts reads that mark (`followsOthers`) for its 502.
 *
 * Held (plain `it`):
 * - Transform to an open host, unhedged, on a plain call, a `Request` input (PUT), the ky client (POST `json`), a
 *   degradation rule at `low` (the rewritten body reaches `s`) and `order: "adaptive"` (three calls: `p` stays
 *   first, `calls` 0): nothing reaches the open host, `fallback` `p -> s: circuit open`, `attempts` 1. The declared
 *   host open: the `transform` is never called (asked before it runs), in a hedge too.
 * - Stores: a store object of my own whose `peek` starts saying "open" for the target host while the async
 *   `transform` runs, and `memoryStore()` shared with a layer that opens the host meanwhile (this layer knowing it
 *   closed): passed over, not counted. A `peek` that throws for that host: the chain stops at `p` with "the
 *   breaker store threw", `s` untried; a `peek` that returns a promise of "open": no snapshot, `p` is sent.
 * - `resilientProxy` chain routes: a transform to an open host serves from `s`, the health path's statistics count
 *   `p` 0 calls; `p` timing out and `s` passed over either way: `504`.
 * - Hedge `next`: with nothing next in line, the running endpoint, either way; a declared pass-over with `t` next:
 *   `t` (with `t` open too: `s -> t`, then `t -> p`).
 * - Hedged keyless POST that each `transform` keys: the spare starts at `delay` with a key of its own on a plain
 *   call, a `Request` input, a degradation rewrite, the ky client and a `resilientProxy` hedged chain route; each
 *   endpoint gets one request; a key of spaces only is none: no spare, the call ends at `timeout.total`.
 * - `retry.idempotencyKey` with `retryOn.methods: ["GET", "post", "patch"]`: one generated key on every request of
 *   the call on a plain POST, a PATCH (listed in lower case), a `Request` input, the ky client, a degradation
 *   rewrite, a library-followed 307 retried from its first URL, a chain moving on (fixed and adaptive), a hedge,
 *   and a proxy upstream route; a `transform` that makes a PUT a POST: a key of its own, the same on its retries.
 * - Signal already aborted, on a hedged adaptive chain with a `transform`, a degradation layer and the ky client: an
 *   invalid URL, a bad method or header, a GET with a body are `TypeError`s as from Node's fetch; none made: the
 *   reason; nothing sent, no `transform` called, no event (ky's bad header: its `TypeError` at the call). A
 *   `Request` whose own signal is aborted given a live `init.signal` (or `signal: null`) is sent, as by fetch; a
 *   live one given an aborted `init.signal` rejects.
 *
 * Docs-silent (not pinned):
 * - A POST listed in `retryOn.methods` with `idempotencyKey: true` whose `transform` deletes the generated key is
 *   sent three times after 500s without any key, then moved on (listed, it is retried on any retryable outcome);
 *   the docs' "a key it drops stays dropped" speaks of what it is sent, not of whether it is retried.
 * - By the same mark (read in src/http/send/resilience-info.ts, not driven here), a layer used as another's
 *   `fetch` takes the inner chain's 503 as "after others" when an earlier endpoint was merely passed over;
 *   docs/retry.md's "(one attempt, from its first endpoint …)" says as much, so only the proxy's wording
 *   ("another request of the call") is pinned above.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  createResilience,
  getResilienceInfo,
  isFallbackExhaustedError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
const D = httpUpstream();
const ALL = [A, B, C, D];
type Upstream = ReturnType<typeof httpUpstream>;

beforeAll(async () => {
  await Promise.all(ALL.map((server) => server.start()));
});
afterAll(() => {
  for (const server of ALL) server.stop();
});
beforeEach(() => {
  for (const server of ALL) server.reset();
});

const ctx = { waitUntil() {}, passThroughOnException() {} };
const answer =
  (status: number, body = "x", headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(status, headers);
    hit.res.end(body);
  };
/** Answers the listed statuses in turn, then 200. */
const sequence =
  (...statuses: number[]) =>
  (hit: Hit) =>
    answer(statuses[hit.n - 1] ?? 200, `n${hit.n}`)(hit);
/** Holds every request open until the returned function is called. */
function holding(server: Upstream): () => void {
  const held: Hit[] = [];
  server.on((hit) => held.push(hit));
  return () => {
    for (const hit of held.splice(0)) answer(200, "late")(hit);
  };
}
/** Opens `server`'s host breaker on `layer` (failureThreshold 1) with one 500, then forgets the request. */
async function openHost(layer: Resilience, server: Upstream): Promise<void> {
  server.on(answer(500));
  await (await layer.fetch(`${server.base}/open`)).text();
  expect(layer.health().breakers[server.host]?.state).toBe("open");
  server.reset();
}
/** A transform that sends the call from `from`'s host to `to`'s. */
const toHost = (from: Upstream, to: Upstream) => (req: EndpointRequest) => ({
  ...req,
  url: req.url.replace(from.base, to.base),
});
/** The endpoint `name` at `target`: declared there, or declared at `via` and sent there by its `transform`. */
type Way = "declared" | "transform";
const WAYS: Way[] = ["declared", "transform"];
const endpointAt = (name: string, target: Upstream, way: Way, via: Upstream = B, path = "/v1"): FallbackEndpoint =>
  way === "declared"
    ? { name, url: `${target.base}${path}` }
    : { name, url: `${via.base}${path}`, transform: toHost(via, target) };
const eventsOf = (recorder: ReturnType<typeof recordEvents>) =>
  recorder.of("fallback").map((e) => `${e.from} -> ${e.next}: ${e.reason}`);
const callsOf = (layer: Resilience, chain = "ch") =>
  Object.fromEntries(
    Object.entries(layer.fallback?.chain(chain).statistics().fallbacks ?? {}).map(([k, v]) => [k, v.calls]),
  );
const keysOf = (server: Upstream) => server.hits.map((hit) => hit.headers["idempotency-key"] ?? "none");
/** A call's outcome, never rejecting: handled at once, so a clock advanced meanwhile leaves no rejection unheard. */
const outcome = (call: Promise<Response>): Promise<string> =>
  call.then(
    async (response) => `${response.status} ${await response.text()}`,
    (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
  );
const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

// ---------------------------------------------------------------------------------------------------------------
// 1. A transform that sends its endpoint to an open host, unhedged (held).
// ---------------------------------------------------------------------------------------------------------------

describe("1. transform to an open host: plain, Request, ky, degradation, adaptive (docs/fallback.md)", () => {
  it("each path: nothing reaches the open host, 'circuit open', not counted, s serves with one attempt", async () => {
    const out: Record<string, unknown> = {};
    for (const path of ["plain", "Request", "ky", "degradation", "adaptive"]) {
      const layer = createResilience({
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        ...(path === "degradation"
          ? { degradation: degradation({ rules: [{ match: `${B.base}/v1`, params: { steps: "steps" } }] }) }
          : {}),
        fallback: fallback([
          {
            name: "ch",
            ...(path === "adaptive" ? { order: "adaptive" as const } : {}),
            endpoints: [endpointAt("p", C, "transform"), { name: "s", url: `${D.base}/v1` }],
          },
        ]),
      });
      await openHost(layer, C);
      if (path === "degradation") layer.degradation?.setLevel("low");
      D.on(answer(200, "d"));
      const recorder = recordEvents(layer);
      const url = `${B.base}/v1/x`;
      const json = '{"a":1,"steps":50}';
      const rounds = path === "adaptive" ? 3 : 1;
      const seen: unknown[] = [];
      for (let i = 0; i < rounds; i++) {
        const response =
          path === "Request"
            ? await layer.fetch(new Request(url, { method: "PUT", body: json }))
            : path === "ky"
              ? await createClient({ resilience: layer }).post(url, { json: { a: 1, steps: 50 } })
              : await layer.fetch(url, { method: "POST", body: json, headers: { "content-type": "application/json" } });
        const info = getResilienceInfo(response);
        seen.push([response.status, await response.text(), info?.endpoint, info?.attempts]);
      }
      out[path] = {
        seen,
        toOpenHost: C.hits.length,
        atS: D.hits.map((hit) => `${hit.method} ${hit.body}`),
        events: eventsOf(recorder),
        calls: callsOf(layer),
        ordered: layer.fallback?.chain("ch").ordered(),
      };
      for (const server of ALL) server.reset();
    }
    const one = (atS: string) => ({
      seen: [[200, "d", "s", 1]],
      toOpenHost: 0,
      atS: [atS],
      events: ["p -> s: circuit open"],
      calls: { p: 0, s: 1 },
      ordered: ["p", "s"],
    });
    expect(out.plain).toEqual(one('POST {"a":1,"steps":50}'));
    expect(out.Request).toEqual(one('PUT {"a":1,"steps":50}'));
    expect(out.ky).toEqual(one('POST {"a":1,"steps":50}'));
    // The rule's rewrite goes on to s.
    expect(out.degradation).toEqual(one('POST {"a":1,"steps":20}'));
    expect(out.adaptive).toEqual({
      seen: [
        [200, "d", "s", 1],
        [200, "d", "s", 1],
        [200, "d", "s", 1],
      ],
      toOpenHost: 0,
      atS: Array(3).fill('POST {"a":1,"steps":50}'),
      events: Array(3).fill("p -> s: circuit open"),
      calls: { p: 0, s: 3 },
      ordered: ["p", "s"],
    });
  });

  it("the declared host open: the transform is never called (asked before it runs), unhedged and hedged", async () => {
    const out: Record<string, unknown> = {};
    for (const hedged of [false, true]) {
      const clock = new TestClock();
      let transforms = 0;
      const layer = createResilience({
        clock,
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "ch",
            ...(hedged ? { hedge: { delay: 100 } } : {}),
            endpoints: [
              {
                name: "p",
                url: `${C.base}/v1`,
                transform: (req) => {
                  transforms++;
                  return { ...req, url: req.url.replace(C.base, A.base) };
                },
              },
              { name: "s", url: `${D.base}/v1` },
            ],
          },
        ]),
      });
      await openHost(layer, C);
      D.on(answer(200, "d"));
      const recorder = recordEvents(layer);
      out[String(hedged)] = [
        await outcome(layer.fetch(`${C.base}/v1/x`)),
        transforms,
        A.hits.length,
        eventsOf(recorder),
        callsOf(layer),
      ];
    }
    expect(out.false).toEqual(["200 d", 0, 0, ["p -> s: circuit open"], { p: 0, s: 1 }]);
    expect(out.true).toEqual(out.false);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. Shared stores: a host opened while the transform runs (held).
// ---------------------------------------------------------------------------------------------------------------

describe("1. shared stores (docs/breakers.md's store contract)", () => {
  /** A chain whose p waits for `gate` in its transform, then sends the call to C; s at D. */
  const gatedLayer = (store: BreakerStore, gate: Promise<void>) =>
    createResilience({
      store,
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          order: "adaptive",
          endpoints: [
            {
              name: "p",
              url: `${A.base}/v1`,
              transform: async (req) => {
                await gate;
                return { ...req, url: req.url.replace(A.base, C.base) };
              },
            },
            { name: "s", url: `${D.base}/v1` },
          ],
        },
      ]),
    });
  const gated = () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { gate, open };
  };
  const openSnapshot = (now: number): BreakerSnapshot => ({
    v: 1,
    state: "open",
    gen: 7,
    failures: [],
    window: null,
    lastFailureTime: now,
    openUntil: now + 30_000,
    leases: [],
    successes: 0,
    reason: "shared: 5 failures in a row",
    changedAt: now,
    trip: { consecutive: 5, failures: 5, calls: 5, rate: 1, lastError: "status 500" },
  });

  it("a store of my own that says 'open' once the transform runs; memoryStore opened by another layer meanwhile", async () => {
    const out: Record<string, unknown> = {};
    for (const kind of ["own store", "memoryStore"]) {
      const { gate, open } = gated();
      let cOpen = false;
      const own: BreakerStore = {
        name: "mine",
        publish() {},
        peek: (key, now) => (cOpen && key === C.host ? openSnapshot(now) : undefined),
      };
      const shared = memoryStore();
      const layer = gatedLayer(kind === "own store" ? own : shared, gate);
      const other = createResilience({ store: shared, breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1 } });
      // This layer has met C, closed.
      await (await layer.fetch(`${C.base}/warm`)).text();
      C.reset();
      D.on(answer(200, "d"));
      const recorder = recordEvents(layer);
      const call = outcome(layer.fetch(`${A.base}/v1/x`));
      await turns();
      if (kind === "own store") cOpen = true;
      else await openHost(other, C);
      open();
      out[kind] = [
        await call,
        C.hits.length,
        eventsOf(recorder),
        callsOf(layer),
        layer.health().breakers[C.host]?.state,
      ];
    }
    const expected = ["200 d", 0, ["p -> s: circuit open"], { p: 0, s: 1 }, "open"];
    expect(out["own store"]).toEqual(expected);
    expect(out.memoryStore).toEqual(expected);
  });

  it("a peek that throws for the host: the chain stops at p; one that returns a promise: no snapshot, p is sent", async () => {
    const out: Record<string, unknown> = {};
    for (const kind of ["throws", "promise"]) {
      const store = {
        name: "mine",
        publish() {},
        peek: (key: string, now: number) => {
          if (key !== C.host) return undefined;
          if (kind === "throws") throw new Error("store down");
          return Promise.resolve(openSnapshot(now));
        },
      } as unknown as BreakerStore;
      const { gate, open } = gated();
      open();
      const layer = gatedLayer(store, gate);
      C.on(answer(200, "c"));
      D.on(answer(200, "d"));
      const error = await layer.fetch(`${A.base}/v1/x`).then(
        async (response) => `${response.status} ${await response.text()} ${getResilienceInfo(response)?.endpoint}`,
        (e: unknown) => e,
      );
      out[kind] = [
        isFallbackExhaustedError(error) ? error.message : error,
        C.hits.length,
        D.hits.length,
        callsOf(layer).s,
      ];
      for (const server of ALL) server.reset();
    }
    expect(out.throws).toEqual([
      'fallback chain "ch" stopped after "p": the breaker store threw (p: store down)',
      0,
      0,
      0,
    ]);
    expect(out.promise).toEqual(["200 c p", 1, 0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. resilientProxy's chain routes (held).
// ---------------------------------------------------------------------------------------------------------------

describe("1. resilientProxy chain routes", () => {
  it("a transform to an open host: s serves, the health path counts p for nothing", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      resilience: { clock, breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1 } },
      routes: [
        { path: "/c", upstream: C.base },
        {
          path: "/ch",
          chain: {
            name: "pc",
            order: "adaptive",
            endpoints: [endpointAt("p", C, "transform"), { name: "s", url: `${D.base}/v1` }],
          },
        },
      ],
    });
    C.on(answer(500));
    await (await proxy.fetch(new Request("http://proxy.test/c/open"), {}, ctx)).text();
    C.reset();
    D.on(answer(200, "d"));
    const response = await proxy.fetch(new Request("http://proxy.test/ch/x", { method: "POST", body: "{}" }), {}, ctx);
    const served = [
      response.status,
      await response.text(),
      response.headers.get("x-resilience-endpoint"),
      response.headers.get("x-resilience-attempts"),
    ];
    const health = (await (
      await proxy.fetch(new Request("http://proxy.test/__resilience/health"), {}, ctx)
    ).json()) as {
      fallback: Record<string, { fallbacks: Record<string, { calls: number }> }>;
    };
    expect(served).toEqual([200, "d", "s", "1"]);
    expect(C.hits.length).toBe(0);
    expect(health.fallback.pc?.fallbacks.p?.calls).toBe(0);
    expect(health.fallback.pc?.fallbacks.s?.calls).toBe(1);
  });

  it("p timed out and s passed over (declared or by its transform): 504, as docs/cloudflare.md says", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const proxy = resilientProxy({
        resilience: { clock, breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1 }, timeout: { attempt: 1_000 } },
        routes: [
          { path: "/c", upstream: C.base },
          {
            path: "/ch",
            chain: { name: "pc", endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way)] },
          },
        ],
      });
      C.on(answer(500));
      await (await proxy.fetch(new Request("http://proxy.test/c/open"), {}, ctx)).text();
      C.reset();
      const release = holding(A);
      const call = outcome(proxy.fetch(new Request("http://proxy.test/ch/x"), {}, ctx));
      await A.nth(1);
      await clock.advance(1_000);
      out[way] = [await call, C.hits.length];
      release();
    }
    expect(out.transform).toEqual(out.declared);
    expect(out.transform).toEqual(['504 {"error":"upstream timed out"}', 0]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. The `fallback` event's `next` in a hedged chain.
// ---------------------------------------------------------------------------------------------------------------

describe("2. a hedged pass-over's `next` (docs/health-and-events.md)", () => {
  /** A hedged chain [p (at A, held), s (at C, open), ...rest]; the events once the hedge started s, and the outcome. */
  async function hedgedPassOver(way: Way, rest: FallbackEndpoint[]) {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          hedge: { delay: 100 },
          endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way), ...rest],
        },
      ]),
    });
    await openHost(layer, C);
    const release = holding(A);
    D.on(answer(200, "d"));
    const recorder = recordEvents(layer);
    const call = outcome(layer.fetch(`${A.base}/v1/x`));
    await A.nth(1);
    await clock.advance(100);
    await turns();
    const events = eventsOf(recorder);
    release();
    const result = [await call, events, C.hits.length];
    for (const server of ALL) server.reset();
    return result;
  }

  it("none next in line: the running one, either way (held)", async () => {
    for (const way of WAYS)
      expect([way, await hedgedPassOver(way, [])]).toEqual([way, ["200 late", ["s -> p: circuit open"], 0]]);
  });

  it("declared at the open host, with t next in line: t, which starts and serves (held)", async () => {
    expect(await hedgedPassOver("declared", [{ name: "t", url: `${D.base}/v1` }])).toEqual([
      "200 d",
      ["s -> t: circuit open"],
      0,
    ]);
    expect(await hedgedPassOver("declared", [{ name: "t", url: `${C.base}/v2` }])).toEqual([
      "200 late",
      ["s -> t: circuit open", "t -> p: circuit open"],
      0,
    ]);
  });

  // Defect 1. Observed: ["s -> p: circuit open"] (t then starts and serves), and ["s -> p …", "t -> p …"].
  it("sent to the open host by its transform, with t next in line: t, as for the declared one", async () => {
    const both = [
      await hedgedPassOver("transform", [{ name: "t", url: `${D.base}/v1` }]),
      await hedgedPassOver("transform", [{ name: "t", url: `${C.base}/v2` }]),
    ];
    expect(both).toEqual([
      ["200 d", ["s -> t: circuit open"], 0],
      ["200 late", ["s -> t: circuit open", "t -> p: circuit open"], 0],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. resilientProxy: a 503 after an endpoint passed over (nothing sent before it).
// ---------------------------------------------------------------------------------------------------------------

describe("2. resilientProxy: a client's keyless POST, idempotencyKey on, s's one 503 after p was passed over", () => {
  const proxyWith = (endpoints: FallbackEndpoint[]) =>
    resilientProxy({
      resilience: { breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1, idempotencyKey: true } },
      routes: [
        { path: "/c", upstream: C.base },
        { path: "/ch", chain: { name: "pc", endpoints } },
      ],
    });
  const busy = (hit: Hit) => answer(503, "busy", { "retry-after": "5" })(hit);
  async function post(proxy: ReturnType<typeof proxyWith>) {
    for (const server of ALL) server.reset();
    C.on(answer(500));
    await (await proxy.fetch(new Request("http://proxy.test/c/open"), {}, ctx)).text();
    C.reset();
    B.on(busy);
    const response = await proxy.fetch(new Request("http://proxy.test/ch/x", { method: "POST", body: "{}" }), {}, ctx);
    return [
      response.status,
      response.headers.get("retry-after"),
      await response.text(),
      response.headers.get("x-resilience-attempts"),
      [A.hits.length, B.hits.length, C.hits.length],
    ];
  }

  it("the reference: s alone, its 503 is passed on (held)", async () => {
    expect(await post(proxyWith([{ name: "s", url: `${B.base}/v1` }]))).toEqual([503, "5", "busy", "1", [0, 1, 0]]);
  });

  // Defect 2. Observed: [502, null, '{"error":"upstream unavailable"}', null, [0, 1, 0]], either way.
  it("p passed over (declared at the open host, or sent there by its transform): the 503 is passed on", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS)
      out[way] = await post(proxyWith([endpointAt("p", C, way, A), { name: "s", url: `${B.base}/v1` }]));
    expect(out).toEqual({
      declared: [503, "5", "busy", "1", [0, 1, 0]],
      transform: [503, "5", "busy", "1", [0, 1, 0]],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. A hedged keyless POST that each endpoint's transform keys (held).
// ---------------------------------------------------------------------------------------------------------------

describe("3. hedging a keyless POST each transform keys (docs/fallback.md)", () => {
  it("plain, Request, degradation, ky, proxy: the spare at `delay` under its own key; a key of spaces is none", async () => {
    const out: Record<string, unknown> = {};
    for (const path of ["plain", "Request", "degradation", "ky", "proxy", "spaces"]) {
      const clock = new TestClock();
      let n = 0;
      const keying = (req: EndpointRequest) => {
        req.headers.set("idempotency-key", path === "spaces" ? "   " : `k${++n}`);
        return req;
      };
      const endpoints: FallbackEndpoint[] = [
        { name: "p", url: `${A.base}/v1`, transform: keying },
        { name: "s", url: `${B.base}/v1`, transform: keying },
      ];
      const options = { clock, retry: { maxAttempts: 1 }, timeout: { total: 10_000 } };
      const release = holding(A);
      B.on(answer(200, "b"));
      const url = `${A.base}/v1/x`;
      const init = { method: "POST", body: '{"a":1,"steps":50}', headers: { "content-type": "application/json" } };
      let call: Promise<string>;
      if (path === "proxy") {
        const proxy = resilientProxy({
          resilience: options,
          routes: [{ path: "/ch", chain: { name: "pc", hedge: { delay: 100 }, endpoints } }],
        });
        call = outcome(proxy.fetch(new Request("http://proxy.test/ch/x", init), {}, ctx));
      } else {
        const layer = createResilience({
          ...options,
          ...(path === "degradation"
            ? { degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }) }
            : {}),
          fallback: fallback([{ name: "ch", hedge: { delay: 100 }, endpoints }]),
        });
        if (path === "degradation") layer.degradation?.setLevel("low");
        call = outcome(
          path === "Request"
            ? layer.fetch(new Request(url, init))
            : path === "ky"
              ? createClient({ resilience: layer }).post(url, { json: { a: 1, steps: 50 } })
              : layer.fetch(url, init),
        );
      }
      await A.nth(1);
      await clock.advance(100);
      // The spare's request reaches B (a real request: awaited, not timed); with a key of spaces none starts,
      // and the call ends at timeout.total with B still untouched.
      if (path === "spaces") await clock.advance(10_000);
      else await B.nth(1);
      const spareAtDelay = B.hits.length;
      out[path] = [
        await call,
        spareAtDelay,
        keysOf(A),
        B.hits.map((hit) => `${hit.headers["idempotency-key"]} ${hit.body}`),
      ];
      release();
      for (const server of ALL) server.reset();
    }
    expect(out.plain).toEqual(["200 b", 1, ["k1"], ['k2 {"a":1,"steps":50}']]);
    expect(out.Request).toEqual(out.plain);
    expect(out.ky).toEqual(out.plain);
    expect(out.degradation).toEqual(["200 b", 1, ["k1"], ['k2 {"a":1,"steps":20}']]);
    expect(out.proxy).toEqual(out.plain);
    // Spaces are no key: nothing is sent beside p, and the call ends at timeout.total.
    expect(out.spaces).toEqual(["TimeoutError: total timeout of 10000 ms exceeded", 0, [""], []]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. retry.idempotencyKey with retryOn.methods listing POST and PATCH (held).
// ---------------------------------------------------------------------------------------------------------------

describe("4. retry.idempotencyKey with POST and PATCH listed in retryOn.methods (docs/retry.md)", () => {
  const retry = {
    maxAttempts: 3,
    initialDelay: 1,
    jitter: "none" as const,
    idempotencyKey: true,
    retryOn: { methods: ["GET", "post", "patch"] },
  };
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  /** Every key the servers saw for one call: one UUID, on every request. */
  const oneKey = (...servers: Upstream[]) => {
    const keys = servers.flatMap(keysOf);
    return [keys.length, new Set(keys).size, uuid.test(String(keys[0]))];
  };

  it("plain POST, PATCH (listed as `patch`), Request, ky, degradation, a followed 307, proxy upstream: one key on every request", async () => {
    const out: Record<string, unknown> = {};
    const plainLayer = createResilience({ retry, redirects: "library" });
    const ruled = createResilience({
      retry,
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: "steps" } }] }),
    });
    ruled.degradation?.setLevel("low");
    const body = '{"steps":50}';
    const cases: Array<[string, () => Promise<Response>]> = [
      ["POST", () => plainLayer.fetch(`${A.base}/v1`, { method: "POST", body })],
      ["PATCH", () => plainLayer.fetch(`${A.base}/v1`, { method: "PATCH", body })],
      ["Request", () => plainLayer.fetch(new Request(`${A.base}/v1`, { method: "POST", body }))],
      ["ky", () => createClient({ resilience: plainLayer }).post(`${A.base}/v1`, { body, throwHttpErrors: false })],
      [
        "degradation",
        () => ruled.fetch(`${A.base}/v1`, { method: "POST", body, headers: { "content-type": "application/json" } }),
      ],
    ];
    for (const [name, make] of cases) {
      A.on(sequence(500, 500));
      const response = await make();
      out[name] = [response.status, oneKey(A), A.hits.map((hit) => hit.method)];
      A.reset();
    }
    // A 307 to B, whose 500 is retried from the first URL under the same key.
    A.on((hit) => answer(307, "", { location: `${B.base}/to` })(hit));
    B.on(sequence(500));
    const redirected = await plainLayer.fetch(`${A.base}/v1`, { method: "POST", body });
    out["307"] = [redirected.status, oneKey(A, B), [A.hits.length, B.hits.length]];
    for (const server of ALL) server.reset();
    const proxy = resilientProxy({ resilience: { retry }, routes: [{ path: "/up", upstream: `${A.base}/v1` }] });
    A.on(sequence(500, 500));
    const proxied = await proxy.fetch(new Request("http://proxy.test/up", { method: "POST", body }), {}, ctx);
    out.proxy = [proxied.status, oneKey(A)];
    for (const name of ["POST", "Request", "ky"])
      expect([name, out[name]]).toEqual([name, [200, [3, 1, true], ["POST", "POST", "POST"]]]);
    expect(out.PATCH).toEqual([200, [3, 1, true], ["PATCH", "PATCH", "PATCH"]]);
    expect(out.degradation).toEqual([200, [3, 1, true], ["POST", "POST", "POST"]]);
    expect(out["307"]).toEqual([200, [4, 1, true], [2, 2]]);
    expect(out.proxy).toEqual([200, [3, 1, true]]);
  });

  it("chains (fixed, adaptive, hedged) and a transform that makes a PUT a POST", async () => {
    const out: Record<string, unknown> = {};
    for (const kind of ["fixed", "adaptive", "hedged"]) {
      const clock = new TestClock();
      const layer = createResilience({
        clock,
        retry: { ...retry, maxAttempts: 1 },
        fallback: fallback([
          {
            name: "ch",
            ...(kind === "adaptive" ? { order: "adaptive" as const } : {}),
            ...(kind === "hedged" ? { hedge: { delay: 100 } } : {}),
            endpoints: [
              { name: "p", url: `${A.base}/v1` },
              { name: "s", url: `${B.base}/v1` },
            ],
          },
        ]),
      });
      const release = kind === "hedged" ? holding(A) : undefined;
      if (!release) A.on(answer(500));
      B.on(answer(200, "b"));
      const call = outcome(layer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
      if (release) {
        await A.nth(1);
        await clock.advance(100);
      }
      out[kind] = [await call, oneKey(A, B)];
      release?.();
      for (const server of ALL) server.reset();
    }
    expect(out).toEqual({
      fixed: ["200 b", [2, 1, true]],
      adaptive: ["200 b", [2, 1, true]],
      hedged: ["200 b", [2, 1, true]],
    });
    // A PUT its transform makes a POST: a key of its own at p, the same on p's retries.
    const layer = createResilience({
      retry,
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1`, transform: (req) => ({ ...req, method: "POST" }) },
            { name: "s", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    A.on(sequence(500, 500));
    const response = await layer.fetch(`${A.base}/v1/x`, { method: "PUT", body: "{}" });
    expect([response.status, A.hits.map((hit) => hit.method), oneKey(A), B.hits.length]).toEqual([
      200,
      ["POST", "POST", "POST"],
      [3, 1, true],
      0,
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. A signal already aborted: the caller's mistakes first (held).
// ---------------------------------------------------------------------------------------------------------------

describe("5. a signal already aborted (docs/retry.md '## Bodies')", () => {
  it("hedged adaptive chain with a transform, degradation layer, ky: fetch's TypeError for a mistake, else the reason", async () => {
    let transforms = 0;
    const chained = createResilience({
      fallback: fallback([
        {
          name: "ch",
          order: "adaptive",
          hedge: { delay: 10 },
          endpoints: [
            {
              name: "p",
              url: `${A.base}/v1`,
              transform: (req) => {
                transforms++;
                return req;
              },
            },
            { name: "s", url: `${B.base}/v1` },
          ],
        },
      ]),
    });
    const ruled = createResilience({ degradation: degradation({ rules: [] }) });
    const reason = new Error("gone");
    const aborted = AbortSignal.abort(reason);
    const mistakes: Array<[string, string, RequestInit]> = [
      ["invalid URL", "http://[bad/v1/x", {}],
      ["bad method", `${A.base}/v1/x`, { method: "GE T" }],
      ["bad header", `${A.base}/v1/x`, { headers: { "x-bad": "a\nb" } }],
      ["GET with a body", `${A.base}/v1/x`, { body: "x" }],
      ["none", `${A.base}/v1/x`, { method: "POST", body: "{}" }],
    ];
    const seen: string[] = [];
    const name = (error: unknown) =>
      error === reason ? "reason" : error instanceof TypeError ? "TypeError" : String(error);
    for (const layer of [chained, ruled]) {
      const recorder = recordEvents(layer);
      for (const [what, url, init] of mistakes) {
        const viaFetch = await fetch(url, { ...init, signal: aborted }).then(String, name);
        const viaLayer = await layer.fetch(url, { ...init, signal: aborted }).then(String, name);
        seen.push(`${what}: ${viaFetch} ${viaLayer}`);
      }
      expect(recorder.events).toEqual([]);
    }
    const kyRecorder = recordEvents(chained);
    const api = createClient({ resilience: chained });
    const viaKy = await api.post(`${A.base}/v1/x`, { json: {}, signal: aborted }).then(String, name);
    // ky builds its Request at the call: a header fetch refuses is thrown there (docs/retry.md "## ky").
    const kyBadHeader = await Promise.resolve()
      .then(() => api.post(`${A.base}/v1/x`, { json: {}, headers: { "x-bad": "a\nb" }, signal: aborted }))
      .then(String, name);
    expect(kyRecorder.events).toEqual([]);
    expect(seen).toEqual([
      ...mistakes.map(([what]) => `${what}: ${what === "none" ? "reason reason" : "TypeError TypeError"}`),
      ...mistakes.map(([what]) => `${what}: ${what === "none" ? "reason reason" : "TypeError TypeError"}`),
    ]);
    expect([viaKy, kyBadHeader]).toEqual(["reason", "TypeError"]);
    expect([transforms, A.hits.length, B.hits.length]).toEqual([0, 0, 0]);
  });

  it("a Request's own aborted signal with a live init.signal (or signal: null) is sent, as by fetch; and the reverse", async () => {
    const layer = createResilience({ retry: { maxAttempts: 1 } });
    const aborted = AbortSignal.abort(new Error("gone"));
    const live = new AbortController().signal;
    const row = (f: (input: Request, init: RequestInit) => Promise<Response>) =>
      Promise.all([
        f(new Request(`${A.base}/x`, { signal: aborted }), { signal: live }).then((r) => r.status, String),
        f(new Request(`${A.base}/x`, { signal: aborted }), { signal: null }).then((r) => r.status, String),
        f(new Request(`${A.base}/x`, { signal: live }), { signal: aborted }).then((r) => r.status, String),
      ]);
    const viaFetch = await row((input, init) => fetch(input, init));
    const viaLayer = await row((input, init) => layer.fetch(input, init));
    expect(viaLayer).toEqual(viaFetch);
    expect(viaLayer).toEqual([200, 200, "Error: gone"]);
  });
});
