/**
 * Outside-in attack on the two newest fixes of CHANGELOG.md's first "### Fixed" list (commit 835941c): (1) in a
 * hedged chain, an endpoint passed over for its open breaker (declared at the open host, or sent there by its
 * `transform`) names the endpoint next in line as its `fallback` event's `next`, else a hedge already running;
 * (2) an answer is marked as coming after another request of its call only when one was sent, the mark that
 * decides whether a keyless POST's 429/503 is declined for a layer in front (and for `resilientProxy`'s 502).
 * Driven by variations the fix's own tests leave out, through the public API only.
 *
 * Docs:
 * - docs/health-and-events.md: "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`,
 *   `next`: after a failure, a hedge already running that the call carries on with, else the endpoint next in
 *   line; for one passed over for its open breaker, the endpoint next in line, else a hedge already running; the
 *   endpoint next in line, when its breaker is open, is passed over in turn with an event of its own, `reason`
 *   "circuit open")".
 * - docs/retry.md "## Idempotency": "A layer used as another's `fetch` (a chain inside a chain) … takes the request
 *   as not sent only when nothing the inner layer tried may have had it (each endpoint of its chain refused,
 *   skipped or declined before sending, and one attempt at most: a retry it made may have gone under a key of its
 *   own); so is an answer it resolved with: a `429` or `503` is taken as declined only when it was the inner
 *   call's only request (one attempt, from whichever endpoint gave it, since one passed over for its open breaker
 *   sends nothing; none, for a chain's `respond` answer; and so on down every layer)"; "Nor after a redirect: the
 *   server that answered it may have done the work …, whatever the redirect's target then answers". "## Bodies":
 *   "when the layer itself refuses the retry (the host's breaker opened during the wait, its bulkhead is full),
 *   the call settles with that response, body intact (a copy …; one too large or too slow to keep is not: the call
 *   then rejects with the refusal)".
 * - docs/cloudflare.md (`resilientProxy`): "answers `503` with `Retry-After` when the circuit is open, `504` on a
 *   timeout and `502` when no endpoint answered otherwise (a redirect's later hop …, and a redirect's target's own
 *   `429` or `503`, whatever the method …; and a `429` or `503` that came after another request of the call (a
 *   retry, an endpoint before it) for a client's POST or PATCH without a key, when `retry.idempotencyKey` is on
 *   …)"; "adds `x-resilience-endpoint` …, `x-resilience-attempts` … to the responses the upstreams gave".
 * - docs/fallback.md: "Moving on follows the rule of a retry …: a POST without an `Idempotency-Key` goes to the
 *   next endpoint only when it surely was not processed (429, 503, connection refused, DNS or TLS failure, an open
 *   breaker); after a 500, a reset or a timeout the chain ends there, so a fallback provider never receives a paid
 *   job twice"; "`getResilienceInfo(res)` says which `endpoint` served and whether `fromFallback`".
 * - src/http/send/resilience-info.ts (JSDoc of the exported `ResilienceInfo`): `attempts` "Attempts in all, across
 *   endpoints: each request the layer started (a hedge's too, even one given up before it reached the server),
 *   with the redirect hops it followed as part of it; an answer from a chain's `respond` is no attempt";
 *   `fromFallback` "True when an endpoint other than the first one served".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` and `recordEvents` (./testing); five
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) and an origin that refuses connections; layers
 * stacked with `fetch: other.fetch`, two, three and four deep.
 *
 * Paths: plain call, fallback chain (fixed, `order: "adaptive"`, hedged; 3–4 endpoints, up to three open hosts,
 * `respond` endpoints before and after a request), retries within an endpoint, redirect (307 and 302 followed by
 * the library before a 503), degradation rewrite, `Request` input, stacked layers, `resilientProxy` (chain and
 * upstream routes, `retry.idempotencyKey` on and off, over a layer of one's own), ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both fixed in the same session, so plain `it`):
 * 1. docs/retry.md "a `429` or `503` is taken as declined only when it was the inner call's only request (…; and
 *    so on down every layer)", and docs/cloudflare.md's 502 "for a `429` or `503` that came after another request
 *    of the call (a retry, an endpoint before it)". Observed: three layers deep (outer → middle → a chain layer
 *    `[p, s]`), with the middle keying the outer's keyless POST (`retry.idempotencyKey`, `maxAttempts: 2`) and its
 *    retry refused by its full bulkhead: the chain layer's 503 (from `s`, after `p` took the job and answered 500)
 *    reaches the outer unmarked, and the outer sends the keyless POST again (its `retry` event "status 503",
 *    `attempts` 2): `p` gets the job again under a new key (3 requests in all, `s` 3). `resilientProxy` over the same middle passes
 *    the 503 on where the same stack without the refusal answers 502. Source: src/http/send/send-with-retries.ts
 *    `retryAfterFirst` settles with the kept response, a copy made by src/http/send/discard-body.ts `keepBody`
 *    (`new Response` + `standIn`); the "after others" mark lives in a WeakSet keyed by the Response
 *    (src/http/send/resilience-info.ts `afterOthers`), so the copy has none, and src/http/resilient-fetch.ts
 *    `send` marks it only for its own `state.attempts > 1`.
 * 2. docs/retry.md "takes the request as not sent only when nothing the inner layer tried may have had it", and
 *    docs/fallback.md "after a 500 … the chain ends there, so a fallback provider never receives a paid job
 *    twice". Observed: an outer chain `[x, y]` whose transport is a layer (`retry.idempotencyKey`, `maxAttempts:
 *    2`) that sent x's keyless POST to its host, got a 500 whose body is over 64 KiB, and had its retry refused
 *    (its bulkhead full, or its breaker opened during the wait): that layer rejects with the refusal
 *    (`BulkheadRejectedError` / `CircuitOpenError`, as docs/retry.md "## Bodies" says), and the outer chain takes
 *    it as "not sent" and moves the keyless POST on to `y`, which receives the job the first host had. Source:
 *    src/http/send/send-with-retries.ts `retried` (`if (!response) throw error`) and the end of `retryAfterFirst`
 *    (`throw new CircuitOpenError`) throw a bare refusal after an attempt went; src/http/send/failure-reason.ts
 *    `reasonOf` reads every `CircuitOpenError` and `BulkheadRejectedError` as `notSent: true` (only a redirect's
 *    refused hop is told apart, by `isAfterRedirect`).
 *
 * Held (plain `it`):
 * - Hedged `next`: four endpoints with two and three open hosts (transform-sent, declared, mixed): each pass-over
 *   names the endpoint next in line (`s -> t`, `t -> u`), the running hedge only when none is left (`u -> p`);
 *   `order: "adaptive"` (the run's order, not the declared one); a `respond` endpoint next; two hedges running;
 *   unhedged, the same names. Nothing reaches an open host; `attempts` counts the running hedges.
 * - The mark, a layer in front (`maxAttempts: 2`) of a chain layer, a keyless POST: `s`'s 503 after endpoints
 *   passed over (declared, transform, three open, `order: "adaptive"`, hedged, a degradation rule in front, a
 *   `Request` input, two, three and four layers deep, a `respond` that threw, a `respond` 503 before `s`, `p`'s
 *   bulkhead full) is declined: sent again; after a request of the call (`p`'s 503, `s` retried, `p`'s connection
 *   refused, which is an attempt as the docs' "one attempt" counts it, a keyed hedge that sent beside `p`, three
 *   layers deep) it is not, nor after a 307/302 the library followed; a `respond` 503 with nothing sent is
 *   declined, one after `p`'s request not. `getResilienceInfo` of the chain layer's answers: `attempts` (0 for a
 *   `respond` answer, a retry and an earlier endpoint counted, a redirect one attempt), `endpoint`,
 *   `fromFallback` as documented.
 * - `resilientProxy`, `idempotencyKey` on: a 503 after passed-over endpoints (and a `respond` 503 with nothing
 *   sent) is passed on with `Retry-After` and `x-resilience-*`; after a request, a retry, a redirect, or a hedge
 *   beside it: 502; `idempotencyKey` off, or the client's own key: passed on. Over a layer of one's own: its chain's
 *   503 after `p`'s request: 502; after `p` passed over: passed on.
 * - ky client over a stacked layer: the passed-over chain's 503 is sent again by the layer in front;
 *   `getResilienceInfo(error.response)` of ky's `HTTPError` as documented.
 *
 * Docs-silent (not pinned):
 * - A retry refused after an attempt that reached the host (its answer too large to keep) rejects with a
 *   `CircuitOpenError` / `BulkheadRejectedError`, which docs/retry.md's error table describes as "nothing was
 *   sent" (the same file's "## Bodies" says the call "rejects with the refusal"); unlike a refused redirect hop it
 *   carries no `afterRedirect`-like flag. `resilientProxy` then answers `503 {"error":"upstream circuit open"}`
 *   with `Retry-After` to a client's keyless POST its upstream had (and answered 500): the docs' 502 reasoning
 *   ("the first upstream had the request, and a 503 would tell the client it was declined") is given only for a
 *   redirect's refused hop.
 * - An outer layer's own retry loop never retries on a `CircuitOpenError` / `BulkheadRejectedError` its transport
 *   (a layer) threw, though it moves a chain on past one: defect 2 shows only through a chain.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import {
  type EndpointRequest,
  type FallbackEndpoint,
  type FallbackEndpointCommon,
  fallback,
  type UrlEndpoint,
} from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
const D = httpUpstream();
const E = httpUpstream();
const ALL = [A, B, C, D, E];
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
const busy = answer(503, "busy", { "retry-after": "0" });
const busy5 = answer(503, "busy", { "retry-after": "5" });
/** Holds every request open until the returned function is called. */
function holding(server: Upstream, status = 200): () => void {
  const held: Hit[] = [];
  server.on((hit) => held.push(hit));
  return () => {
    for (const hit of held.splice(0)) answer(status, "late")(hit);
  };
}
/** Opens `server`'s host breaker on `layer` with 500s (as many as its threshold), then forgets the requests. */
async function openHost(layer: Resilience, server: Upstream, times = 1): Promise<void> {
  server.on(answer(500));
  for (let i = 0; i < times && layer.health().breakers[server.host]?.state !== "open"; i++)
    await (await layer.fetch(`${server.base}/open`)).text();
  expect(layer.health().breakers[server.host]?.state).toBe("open");
  server.reset();
}
/** A transform that sends the call from `from`'s host to `to`'s. */
const toHost = (from: Upstream, to: Upstream) => (req: EndpointRequest) => ({
  ...req,
  url: req.url.replace(from.base, to.base),
});
type UrlAt = FallbackEndpointCommon & UrlEndpoint;
/** An endpoint declared at `server`. */
const at = (name: string, server: Upstream, path = "/v1"): UrlAt => ({ name, url: `${server.base}${path}` });
/** An endpoint declared at B, sent to `to` by its transform. */
const via = (name: string, to: Upstream): UrlAt => ({
  name,
  url: `${B.base}/t${name}`,
  transform: toHost(B, to),
});
const eventsOf = (recorder: ReturnType<typeof recordEvents>) =>
  recorder.of("fallback").map((e) => `${e.from} -> ${e.next}: ${e.reason}`);
const infoOf = (response: Response) => {
  const info = getResilienceInfo(response);
  return [info?.attempts, info?.endpoint, info?.fromFallback];
};
/** A call's outcome, never rejecting: status, body and `getResilienceInfo`, or the error's name and message. */
const outcome = (call: Promise<Response>): Promise<string> =>
  call.then(
    async (response) => `${response.status} ${await response.text()} ${JSON.stringify(infoOf(response))}`,
    (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
  );
const hits = () => ALL.map((server) => server.hits.length);
const resetAll = () => {
  for (const server of ALL) server.reset();
};
const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

// ---------------------------------------------------------------------------------------------------------------
// 1. A hedged pass-over's `next` (held).
// ---------------------------------------------------------------------------------------------------------------

describe("1. `next` of an endpoint passed over for its open breaker (docs/health-and-events.md)", () => {
  /** A hedged chain (delay 100) whose first endpoint sits at A, held; C and D open; E answers 200. */
  async function hedged(endpoints: FallbackEndpoint[], adaptive = false, steps = [100]) {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        { name: "ch", hedge: { delay: 100 }, ...(adaptive ? { order: "adaptive" as const } : {}), endpoints },
      ]),
    });
    await openHost(layer, C);
    await openHost(layer, D);
    const release = holding(A);
    E.on(answer(200, "e"));
    const recorder = recordEvents(layer);
    const ordered = layer.fallback?.chain("ch").ordered();
    const first = endpoints[0] as { url: string };
    const call = outcome(layer.fetch(`${first.url}/x`));
    await A.nth(1);
    for (const step of steps) {
      await clock.advance(step);
      await turns();
    }
    const events = eventsOf(recorder);
    release();
    const result = { ordered, outcome: await call, events, toOpenHosts: C.hits.length + D.hits.length };
    resetAll();
    return result;
  }

  it("four endpoints, two open hosts reached by transforms: each names the next in line", async () => {
    expect(await hedged([at("p", A), via("s", C), via("t", D), at("u", E)])).toEqual({
      ordered: ["p", "s", "t", "u"],
      outcome: '200 e [2,"u",true]',
      events: ["s -> t: circuit open", "t -> u: circuit open"],
      toOpenHosts: 0,
    });
  });

  it("declared, then transform-sent: the next in line either way", async () => {
    expect(await hedged([at("p", A), at("s", C), via("t", D), at("u", E)])).toEqual({
      ordered: ["p", "s", "t", "u"],
      outcome: '200 e [2,"u",true]',
      events: ["s -> t: circuit open", "t -> u: circuit open"],
      toOpenHosts: 0,
    });
  });

  it("three open hosts (transform, declared, transform), none after: the running hedge only last", async () => {
    expect(await hedged([at("p", A), via("s", C), at("t", D), { ...via("u", C), url: `${B.base}/v2` }])).toEqual({
      ordered: ["p", "s", "t", "u"],
      outcome: '200 late [1,"p",false]',
      events: ["s -> t: circuit open", "t -> u: circuit open", "u -> p: circuit open"],
      toOpenHosts: 0,
    });
  });

  it("order: adaptive: the run's order, not the declared one", async () => {
    // s is declared first (its URL selects the chain) at A, and sent by its transform to C.
    const endpoints: FallbackEndpoint[] = [
      { name: "s", url: `${A.base}/v0`, transform: toHost(A, C), expectedQuality: 0.5 },
      { ...at("p", A), expectedQuality: 1 },
      { ...at("u", E), expectedQuality: 0.2 },
      { ...via("t", D), expectedQuality: 0.6 },
    ];
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", order: "adaptive", hedge: { delay: 100 }, endpoints }]),
    });
    await openHost(layer, C);
    await openHost(layer, D);
    const release = holding(A);
    E.on(answer(200, "e"));
    const recorder = recordEvents(layer);
    const ordered = layer.fallback?.chain("ch").ordered();
    const call = outcome(layer.fetch(`${A.base}/v0/x`));
    await A.nth(1);
    await clock.advance(100);
    await turns();
    const events = eventsOf(recorder);
    release();
    expect({ ordered, outcome: await call, events, to: [A.hits[0]?.path, C.hits.length + D.hits.length] }).toEqual({
      ordered: ["p", "t", "s", "u"],
      outcome: '200 e [2,"u",true]',
      events: ["t -> s: circuit open", "s -> u: circuit open"],
      to: ["/v1/x", 0],
    });
  });

  it("a `respond` endpoint next in line; two hedges already running", async () => {
    expect(await hedged([at("p", A), via("s", C), { name: "r", respond: () => new Response("r") }])).toEqual({
      ordered: ["p", "s", "r"],
      outcome: '200 r [1,"r",true]',
      events: ["s -> r: circuit open"],
      toOpenHosts: 0,
    });
    expect(await hedged([at("p", A), at("q", A, "/v2"), via("s", C), at("u", E)], false, [100, 100])).toEqual({
      ordered: ["p", "q", "s", "u"],
      outcome: '200 e [3,"u",true]',
      events: ["s -> u: circuit open"],
      toOpenHosts: 0,
    });
  });

  it("unhedged, the same chain of pass-overs names each next in line", async () => {
    const layer = createResilience({
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", endpoints: [via("p", C), at("q", D), via("s", C), at("t", E)] }]),
    });
    await openHost(layer, C);
    await openHost(layer, D);
    E.on(answer(200, "e"));
    const recorder = recordEvents(layer);
    const result = await outcome(layer.fetch(`${B.base}/tp/x`));
    expect([result, eventsOf(recorder), hits()]).toEqual([
      '200 e [1,"t",true]',
      ["p -> q: circuit open", "q -> s: circuit open", "s -> t: circuit open"],
      [0, 0, 0, 0, 1],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. The mark: a layer in front of a chain layer, a keyless POST (held).
// ---------------------------------------------------------------------------------------------------------------

interface InnerSpec {
  endpoints: FallbackEndpoint[];
  layer?: Partial<ResilienceOptions>;
  chain?: { order?: "adaptive"; hedge?: { delay: number } };
}

/** A chain layer (breaker threshold 4, one attempt unless said) whose C and D hosts are open. */
async function chainLayer(spec: InnerSpec, clock: TestClock): Promise<Resilience> {
  const layer = createResilience({
    clock,
    breaker: { failureThreshold: 4 },
    retry: { maxAttempts: 1, initialDelay: 0, jitter: "none" },
    ...spec.layer,
    fallback: fallback([{ name: "ch", endpoints: spec.endpoints, ...spec.chain }]),
  });
  await openHost(layer, C, 4);
  await openHost(layer, D, 4);
  return layer;
}

/**
 * A keyless POST to `url` through a layer in front of `inner` (`deep` layers in all counting `inner`; the
 * front one sends twice at most, without waiting): status, body, how many times the front layer sent it, the
 * servers' hits.
 */
async function frontPost(inner: Resilience, url: string, clock: TestClock, deep = 2, asRequest = false) {
  let below = inner;
  for (let i = 2; i < deep; i++) below = createResilience({ fetch: below.fetch, clock, retry: { maxAttempts: 1 } });
  const front = createResilience({
    fetch: below.fetch,
    clock,
    retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
  });
  const init = { method: "POST", body: "{}" };
  const response = await clock.run(asRequest ? front.fetch(new Request(url, init)) : front.fetch(url, init));
  const result = [response.status, await response.text(), getResilienceInfo(response)?.attempts, hits()];
  resetAll();
  return result;
}

describe("2. an answer after an endpoint passed over is the call's only request (docs/retry.md)", () => {
  const r503 = (): FallbackEndpoint => ({ name: "r", respond: () => new Response("r", { status: 503 }) });

  it("passed over in every way: the front layer takes s's 503 as declined and sends the POST again", async () => {
    const cases: Record<string, [InnerSpec, string]> = {
      declared: [{ endpoints: [at("p", C), at("s", E)] }, `${C.base}/v1/x`],
      transform: [{ endpoints: [via("p", C), at("s", E)] }, `${B.base}/tp/x`],
      threeOpen: [{ endpoints: [at("p", C), via("q", D), at("r", D, "/v2"), at("s", E)] }, `${C.base}/v1/x`],
      adaptive: [{ endpoints: [at("p", C), via("q", D), at("s", E)], chain: { order: "adaptive" } }, `${C.base}/v1/x`],
      hedged: [
        { endpoints: [at("p", C), via("q", D), at("s", E)], chain: { hedge: { delay: 100 } } },
        `${C.base}/v1/x`,
      ],
      respondThrew: [
        {
          endpoints: [
            at("p", C),
            {
              name: "r",
              respond: () => {
                throw new Error("no cache");
              },
            },
            at("s", E),
          ],
        },
        `${C.base}/v1/x`,
      ],
      respond503First: [{ endpoints: [at("p", C), r503(), at("s", E)] }, `${C.base}/v1/x`],
    };
    const out: Record<string, unknown> = {};
    for (const [name, [spec, url]] of Object.entries(cases)) {
      const clock = new TestClock();
      const inner = await chainLayer(spec, clock);
      E.on(busy);
      out[name] = await frontPost(inner, url, clock);
    }
    const declinedTwice = [503, "busy", 2, [0, 0, 0, 0, 2]];
    expect(out).toEqual({
      declared: declinedTwice,
      transform: declinedTwice,
      threeOpen: declinedTwice,
      adaptive: declinedTwice,
      hedged: declinedTwice,
      respondThrew: declinedTwice,
      respond503First: declinedTwice,
    });
  });

  it("a `Request` input, a degradation rule in front, two and three layers deep: declined, sent again", async () => {
    const out: Record<string, unknown> = {};
    for (const path of ["Request", "degradation", "deep3", "deep4"]) {
      const clock = new TestClock();
      const inner = await chainLayer(
        {
          endpoints: [at("p", C), via("q", D), at("s", E)],
          ...(path === "degradation"
            ? {
                layer: { degradation: degradation({ rules: [{ match: `${C.base}/v1`, params: { steps: "steps" } }] }) },
              }
            : {}),
        },
        clock,
      );
      if (path === "degradation") inner.degradation?.setLevel("low");
      E.on(busy);
      out[path] = await frontPost(
        inner,
        `${C.base}/v1/x`,
        clock,
        path === "deep3" ? 3 : path === "deep4" ? 4 : 2,
        path === "Request",
      );
    }
    const declinedTwice = [503, "busy", 2, [0, 0, 0, 0, 2]];
    expect(out).toEqual({
      Request: declinedTwice,
      degradation: declinedTwice,
      deep3: declinedTwice,
      deep4: declinedTwice,
    });
  });

  it("p's bulkhead full (refused before sending): s's 503 is the only request, declined", async () => {
    const clock = new TestClock();
    const inner = await chainLayer(
      { endpoints: [at("p", A), at("s", E)], layer: { bulkhead: { maxConcurrent: 1, maxQueue: 0 } } },
      clock,
    );
    const release = holding(A);
    const hold = outcome(inner.fetch(`${A.base}/hold`));
    await A.nth(1);
    E.on(busy);
    const result = await frontPost(inner, `${A.base}/v1/x`, clock);
    release();
    expect([result, await hold]).toEqual([[503, "busy", 2, [1, 0, 0, 0, 2]], `200 late [1,"${A.host}",false]`]);
  });

  it("after a request of the call (p's 503, s's retry, p refused, a 307/302 followed): not declined", async () => {
    const refused = await refusedOrigin();
    const cases: Record<string, [InnerSpec, string, () => void]> = {
      p503: [{ endpoints: [at("p", A), at("s", E)] }, `${A.base}/v1/x`, () => A.on(busy)],
      sRetried: [
        { endpoints: [at("p", C), at("s", E)], layer: { retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } } },
        `${C.base}/v1/x`,
        () => {},
      ],
      pRefused: [{ endpoints: [{ name: "p", url: `${refused}/v1` }, at("s", E)] }, `${refused}/v1/x`, () => {}],
      redirect307: [
        { endpoints: [at("p", C), at("s", B)], layer: { redirects: "library" } },
        `${C.base}/v1/x`,
        () => B.on(answer(307, "", { location: `${E.base}/z` })),
      ],
      redirect302: [
        { endpoints: [at("p", C), at("s", B)], layer: { redirects: "library" } },
        `${C.base}/v1/x`,
        () => B.on(answer(302, "", { location: `${E.base}/z` })),
      ],
    };
    const out: Record<string, unknown> = {};
    for (const [name, [spec, url, setup]] of Object.entries(cases)) {
      const clock = new TestClock();
      const inner = await chainLayer(spec, clock);
      E.on(busy);
      setup();
      out[name] = await frontPost(inner, url, clock);
    }
    expect(out).toEqual({
      p503: [503, "busy", 1, [1, 0, 0, 0, 1]],
      sRetried: [503, "busy", 1, [0, 0, 0, 0, 2]],
      pRefused: [503, "busy", 1, [0, 0, 0, 0, 1]],
      redirect307: [503, "busy", 1, [0, 1, 0, 0, 1]],
      redirect302: [503, "busy", 1, [0, 1, 0, 0, 1]],
    });
  });

  it("three layers deep, after p's request: the mark goes up through the middle layer", async () => {
    const clock = new TestClock();
    const inner = await chainLayer({ endpoints: [at("p", A), at("s", E)] }, clock);
    A.on(busy);
    E.on(busy);
    expect(await frontPost(inner, `${A.base}/v1/x`, clock, 3)).toEqual([503, "busy", 1, [1, 0, 0, 0, 1]]);
  });

  it("a `respond` 503: declined with nothing sent before it, not after p's request", async () => {
    let answered = 0;
    const counted: FallbackEndpoint = {
      name: "r",
      respond: () => {
        answered++;
        return new Response("r", { status: 503 });
      },
    };
    const out: Record<string, unknown> = {};
    let clock = new TestClock();
    let inner = await chainLayer({ endpoints: [at("p", C), via("q", D), counted, at("s", C, "/v2")] }, clock);
    out.nothingSent = [...(await frontPost(inner, `${C.base}/v1/x`, clock)), answered];
    answered = 0;
    clock = new TestClock();
    inner = await chainLayer({ endpoints: [at("p", A), counted] }, clock);
    A.on(busy);
    out.afterP = [...(await frontPost(inner, `${A.base}/v1/x`, clock)), answered];
    expect(out).toEqual({
      nothingSent: [503, "r", 2, [0, 0, 0, 0, 0], 2],
      afterP: [503, "r", 1, [1, 0, 0, 0, 0], 1],
    });
  });

  it("a hedge that sent beside p (each transform keys the POST): p's 503 is not declined", async () => {
    const clock = new TestClock();
    const keyed = (name: string, server: Upstream, path: string): FallbackEndpoint => ({
      name,
      url: `${server.base}${path}`,
      transform: (req) => {
        req.headers.set("idempotency-key", `k-${name}`);
        return req;
      },
    });
    const inner = await chainLayer(
      { endpoints: [keyed("p", A, "/v1"), keyed("s", E, "/v1")], chain: { hedge: { delay: 100 } } },
      clock,
    );
    const release = holding(A, 503);
    E.on(busy);
    const front = createResilience({ fetch: inner.fetch, retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } });
    const call = outcome(front.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
    await A.nth(1);
    await clock.advance(100);
    await E.nth(1);
    await turns();
    release();
    expect([await call, hits(), E.hits[0]?.headers["idempotency-key"]]).toEqual([
      `503 late [1,"${A.host}",false]`,
      [1, 0, 0, 0, 1],
      "k-s",
    ]);
  });

  it("getResilienceInfo of the chain layer's answers: attempts, endpoint, fromFallback", async () => {
    const out: Record<string, unknown> = {};
    const post = { method: "POST", body: "{}" };
    let clock = new TestClock();
    let inner = await chainLayer({ endpoints: [at("p", C), via("q", D), at("s", E)] }, clock);
    E.on(busy);
    out.passedOver = await outcome(clock.run(inner.fetch(`${C.base}/v1/x`, post)));
    clock = new TestClock();
    inner = await chainLayer({ endpoints: [at("p", C), via("q", D), r503()] }, clock);
    out.respond = await outcome(clock.run(inner.fetch(`${C.base}/v1/x`, post)));
    clock = new TestClock();
    inner = await chainLayer(
      { endpoints: [at("p", C), at("s", E)], layer: { retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" } } },
      clock,
    );
    E.on(busy);
    out.retried = await outcome(clock.run(inner.fetch(`${C.base}/v1/x`, post)));
    clock = new TestClock();
    inner = await chainLayer({ endpoints: [at("p", C), at("s", B)], layer: { redirects: "library" } }, clock);
    B.on(answer(307, "", { location: `${E.base}/z` }));
    E.on(busy);
    out.redirect = await outcome(clock.run(inner.fetch(`${C.base}/v1/x`, post)));
    clock = new TestClock();
    inner = await chainLayer({ endpoints: [at("p", A), at("s", E)] }, clock);
    A.on(busy);
    E.on(busy);
    out.afterP = await outcome(clock.run(inner.fetch(`${A.base}/v1/x`, post)));
    expect(out).toEqual({
      passedOver: '503 busy [1,"s",true]',
      respond: '503 r [0,"r",true]',
      retried: '503 busy [2,"s",true]',
      redirect: '503 busy [1,"s",true]',
      afterP: '503 busy [2,"s",true]',
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. resilientProxy: 502 or the 503 passed on (held).
// ---------------------------------------------------------------------------------------------------------------

describe("3. resilientProxy, a client's keyless POST (docs/cloudflare.md)", () => {
  type Proxy = ReturnType<typeof resilientProxy>;
  /** A proxy whose layer has C and D open; `/ch` a chain route of `endpoints`, `/u` an upstream route at E. */
  async function proxyWith(endpoints: FallbackEndpoint[] | undefined, resilience: Partial<ResilienceOptions> = {}) {
    const proxy = resilientProxy({
      resilience: {
        breaker: { failureThreshold: 4 },
        retry: { maxAttempts: 1, idempotencyKey: true, initialDelay: 0, jitter: "none" },
        ...resilience,
      },
      routes: [
        { path: "/c", upstream: C.base },
        { path: "/d", upstream: D.base },
        { path: "/u", upstream: `${E.base}/v1` },
        ...(endpoints ? [{ path: "/ch", chain: { name: "pc", endpoints } }] : []),
      ],
    });
    C.on(answer(500));
    D.on(answer(500));
    for (let i = 0; i < 4; i++) {
      await (await proxy.fetch(new Request("http://proxy.test/c/open"), {}, ctx)).text();
      await (await proxy.fetch(new Request("http://proxy.test/d/open"), {}, ctx)).text();
    }
    resetAll();
    return proxy;
  }
  async function post(proxy: Proxy, path = "/ch/x", headers: Record<string, string> = {}) {
    const response = await proxy.fetch(
      new Request(`http://proxy.test${path}`, { method: "POST", body: "{}", headers }),
      {},
      ctx,
    );
    const result = [
      response.status,
      response.headers.get("retry-after"),
      await response.text(),
      response.headers.get("x-resilience-attempts"),
      response.headers.get("x-resilience-endpoint"),
      hits(),
    ];
    resetAll();
    return result;
  }
  const unavailable = '{"error":"upstream unavailable"}';

  it("passed over before the answer (declared, transform, respond): the 503 is passed on", async () => {
    const out: Record<string, unknown> = {};
    let proxy = await proxyWith([at("p", C), via("q", D), at("s", E)]);
    E.on(busy5);
    out.twoOpen = await post(proxy);
    proxy = await proxyWith([
      at("p", C),
      { name: "r", respond: () => new Response("r", { status: 503, headers: { "retry-after": "7" } }) },
      at("s", D, "/v2"),
    ]);
    out.respond = await post(proxy);
    proxy = await proxyWith([at("p", C), at("s", E)]);
    E.on(busy5);
    out.clientsKey = await post(proxy, "/ch/x", { "idempotency-key": "k1" });
    proxy = await proxyWith(undefined);
    E.on(busy5);
    out.upstreamOnce = await post(proxy, "/u/x");
    expect(out).toEqual({
      twoOpen: [503, "5", "busy", "1", "s", [0, 0, 0, 0, 1]],
      respond: [503, "7", "r", "0", "r", [0, 0, 0, 0, 0]],
      clientsKey: [503, "5", "busy", "1", "s", [0, 0, 0, 0, 1]],
      upstreamOnce: [503, "5", "busy", "1", E.host, [0, 0, 0, 0, 1]],
    });
  });

  it("after another request (an endpoint before, a retry, a redirect, a respond after p): 502", async () => {
    const out: Record<string, unknown> = {};
    let proxy = await proxyWith([at("p", A), at("s", E)]);
    A.on(busy5);
    E.on(busy5);
    out.p503 = await post(proxy);
    proxy = await proxyWith([at("p", C), at("s", E)], {
      retry: { maxAttempts: 2, idempotencyKey: true, initialDelay: 0, jitter: "none" },
    });
    E.on(busy);
    out.sRetried = await post(proxy);
    proxy = await proxyWith([at("p", C), at("s", B)]);
    B.on(answer(307, "", { location: `${E.base}/z` }));
    E.on(busy5);
    out.redirect = await post(proxy);
    proxy = await proxyWith([at("p", A), { name: "r", respond: () => new Response("r", { status: 503 }) }]);
    A.on(busy5);
    out.respondAfterP = await post(proxy);
    proxy = await proxyWith(undefined, {
      retry: { maxAttempts: 2, idempotencyKey: true, initialDelay: 0, jitter: "none" },
    });
    E.on(busy);
    out.upstreamRetried = await post(proxy, "/u/x");
    expect(out).toEqual({
      p503: [502, null, unavailable, null, null, [1, 0, 0, 0, 1]],
      sRetried: [502, null, unavailable, null, null, [0, 0, 0, 0, 2]],
      redirect: [502, null, unavailable, null, null, [0, 1, 0, 0, 1]],
      respondAfterP: [502, null, unavailable, null, null, [1, 0, 0, 0, 0]],
      upstreamRetried: [502, null, unavailable, null, null, [0, 0, 0, 0, 2]],
    });
  });

  it("idempotencyKey off, or the client's own key: an answer after p's request is passed on", async () => {
    let proxy = await proxyWith([at("p", A), at("s", E)], { retry: { maxAttempts: 1 } });
    A.on(busy5);
    E.on(busy5);
    const off = await post(proxy);
    proxy = await proxyWith([at("p", A), at("s", E)]);
    A.on(busy5);
    E.on(busy5);
    const keyed = await post(proxy, "/ch/x", { "idempotency-key": "k1" });
    expect([off, keyed]).toEqual([
      [503, "5", "busy", "2", "s", [1, 0, 0, 0, 1]],
      [503, "5", "busy", "2", "s", [1, 0, 0, 0, 1]],
    ]);
  });

  it("a hedged chain route: s's 503 beside p, then p's 503: 502", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      resilience: { clock, retry: { maxAttempts: 1, idempotencyKey: true } },
      routes: [{ path: "/ch", chain: { name: "pc", hedge: { delay: 100 }, endpoints: [at("p", A), at("s", E)] } }],
    });
    const release = holding(A, 503);
    E.on(busy5);
    const call = proxy.fetch(new Request("http://proxy.test/ch/x", { method: "POST", body: "{}" }), {}, ctx);
    await A.nth(1);
    await clock.advance(100);
    await E.nth(1);
    await turns();
    release();
    const response = await call;
    expect([response.status, await response.text(), hits()]).toEqual([502, unavailable, [1, 0, 0, 0, 1]]);
  });

  it("over a layer of one's own (`resilience.fetch`): its chain's 503 after p's request 502, after p passed over passed on", async () => {
    const run = async (inner: Resilience) => {
      const proxy = resilientProxy({
        resilience: { fetch: inner.fetch, retry: { maxAttempts: 1, idempotencyKey: true } },
        routes: [{ path: "/u", upstream: `${A.base}/v1` }],
      });
      const response = await proxy.fetch(new Request("http://proxy.test/u/x", { method: "POST", body: "{}" }), {}, ctx);
      const result = [response.status, await response.text(), hits()];
      resetAll();
      return result;
    };
    const mk = (endpoints: FallbackEndpoint[]) =>
      createResilience({
        breaker: { failureThreshold: 4 },
        retry: { maxAttempts: 1 },
        fallback: fallback([{ name: "ch", endpoints }]),
      });
    let inner = mk([at("p", A), at("s", E)]);
    A.on(answer(500));
    E.on(answer(503, "busy"));
    const afterP = await run(inner);
    inner = mk([{ ...at("p", A), transform: toHost(A, C) }, at("s", E)]);
    await openHost(inner, C, 4);
    E.on(answer(503, "busy"));
    const passedOver = await run(inner);
    expect([afterP, passedOver]).toEqual([
      [502, unavailable, [1, 0, 0, 0, 1]],
      [503, "busy", [0, 0, 0, 0, 1]],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. The ky client (held).
// ---------------------------------------------------------------------------------------------------------------

describe("4. the ky client", () => {
  it("over a stacked layer: the passed-over chain's 503 is sent again; ky's HTTPError carries the info", async () => {
    const clock = new TestClock();
    const inner = await chainLayer({ endpoints: [at("p", C), via("q", D), at("s", E)] }, clock);
    E.on(busy);
    const direct = await createClient({ resilience: inner })
      .post(`${C.base}/v1/x`, { json: { a: 1 } })
      .then(
        (r) => infoOf(r),
        (error: { response?: Response }) =>
          error.response ? [error.response.status, ...infoOf(error.response)] : error,
      );
    const directHits = hits();
    resetAll();
    E.on(busy);
    const front = createResilience({
      fetch: inner.fetch,
      clock,
      retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
    });
    const stacked = await clock
      .run(createClient({ resilience: front }).post(`${C.base}/v1/x`, { json: { a: 1 } }))
      .then(
        (r) => infoOf(r),
        (error: { response?: Response }) =>
          error.response ? [error.response.status, ...infoOf(error.response)] : error,
      );
    expect({ direct, directHits, stacked, stackedHits: hits() }).toEqual({
      direct: [503, 1, "s", true],
      directHits: [0, 0, 0, 0, 1],
      // The front layer's info (the same Response): its two attempts, its own breaker key.
      stacked: [503, 2, C.host, false],
      stackedHits: [0, 0, 0, 0, 2],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. Defects.
// ---------------------------------------------------------------------------------------------------------------

describe("5. an answer or a refusal after a request, through a layer whose retry was refused", () => {
  /** A chain layer [p at A (500), s at E (503)], one attempt each, on the real clock (it never waits). */
  const chainAE = () =>
    createResilience({
      breaker: { failureThreshold: 10 },
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", endpoints: [at("p", A), at("s", E)] }]),
    });
  /** The middle layer's options: it keys a keyless POST and retries once after 1 s; one request at a time. */
  const middleOptions = (clock: TestClock): Partial<ResilienceOptions> => ({
    clock,
    breaker: { failureThreshold: 10 },
    bulkhead: { maxConcurrent: 1, maxQueue: 0 },
    retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none", idempotencyKey: true },
  });
  /** A answers /…/hold only when told; anything else 500. E answers 503. */
  function serveAE(): () => void {
    const held: Hit[] = [];
    A.on((hit) => (hit.path.endsWith("/hold") ? held.push(hit) : answer(500, "boom")(hit)));
    E.on(answer(503, "busy"));
    return () => {
      for (const hit of held.splice(0)) answer(200, "held")(hit);
    };
  }

  // Defect 1. Observed: retries ["status 503"], jobsAtA 3 (the first under one key, two more under another), atE 3.
  it("three deep: the chain layer's 503 after p's request is not declined by the front layer (docs/retry.md)", async () => {
    const clock = new TestClock();
    const middle = createResilience({ fetch: chainAE().fetch, ...middleOptions(clock) });
    const front = createResilience({
      fetch: middle.fetch,
      clock,
      retry: { maxAttempts: 2, initialDelay: 500, jitter: "none" },
    });
    const retries: string[] = [];
    front.on("retry", (event) => retries.push(event.reason));
    const release = serveAE();
    const call = outcome(front.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
    // The middle waits to retry its 503; meanwhile another call holds its only slot.
    await clock.waitForTimers(1);
    const hold = outcome(middle.fetch(`${A.base}/v1/hold`));
    await A.nth(2);
    await clock.advance(1000);
    await turns();
    release();
    await hold;
    const result = await clock.run(call);
    const jobs = A.hits.filter((hit) => hit.path === "/v1/x").map((hit) => hit.headers["idempotency-key"]);
    expect({ result: result.slice(0, 8), retries, jobsAtA: jobs.length, atE: E.hits.length }).toEqual({
      result: "503 busy",
      retries: [],
      jobsAtA: 1,
      atE: 1,
    });
  });

  it("the same stack without the refusal: the mark goes up (reference)", async () => {
    const clock = new TestClock();
    const middle = createResilience({ fetch: chainAE().fetch, clock, retry: { maxAttempts: 1, idempotencyKey: true } });
    const front = createResilience({ fetch: middle.fetch, clock, retry: { maxAttempts: 2, initialDelay: 0 } });
    serveAE();
    const result = await clock.run(outcome(front.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" })));
    expect([result.slice(0, 8), hits()]).toEqual(["503 busy", [1, 0, 0, 0, 1]]);
  });

  // Defect 1 (proxy). Observed: 503 busy passed on (without the refusal, the same stack answers 502).
  it("resilientProxy over such a layer: the 503 after p's request answers 502 (docs/cloudflare.md)", async () => {
    const clock = new TestClock();
    const proxy = resilientProxy({
      resilience: { fetch: chainAE().fetch, ...middleOptions(clock) },
      routes: [{ path: "/u", upstream: `${A.base}/v1` }],
    });
    const release = serveAE();
    const call = proxy.fetch(new Request("http://proxy.test/u/x", { method: "POST", body: "{}" }), {}, ctx);
    await clock.waitForTimers(1);
    const hold = outcome(proxy.fetch(new Request("http://proxy.test/u/hold"), {}, ctx));
    await A.nth(2);
    await clock.advance(1000);
    await turns();
    release();
    await hold;
    const response = await call;
    expect([response.status, await response.text()]).toEqual([502, '{"error":"upstream unavailable"}']);
  });

  // Defect 2. Observed: { jobsAtA: 1, atY: 1 } both ways: y took the job A had answered 500 for.
  it("a chain over a layer whose retry after a large 500 was refused: the POST does not move on (docs/retry.md)", async () => {
    const big = "x".repeat(70_000);
    const out: Record<string, unknown> = {};
    for (const refusal of ["bulkhead", "breaker"]) {
      const clock = new TestClock();
      const inner = createResilience({
        clock,
        breaker: { failureThreshold: refusal === "breaker" ? 2 : 10 },
        ...(refusal === "bulkhead" ? { bulkhead: { maxConcurrent: 1, maxQueue: 0 } } : {}),
        retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none", idempotencyKey: true },
      });
      const outer = createResilience({
        fetch: inner.fetch,
        clock,
        retry: { maxAttempts: 1 },
        fallback: fallback([{ name: "oc", endpoints: [at("x", A), at("y", E)] }]),
      });
      const held: Hit[] = [];
      A.on((hit) =>
        hit.path === "/hold" ? held.push(hit) : answer(500, big, { "content-length": String(big.length) })(hit),
      );
      E.on(answer(200, "y took it"));
      const call = outcome(outer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }));
      await clock.waitForTimers(1);
      // Meanwhile: the inner layer's only slot is taken, or its breaker opens on another call's 500.
      const other = outcome(inner.fetch(`${A.base}/${refusal === "bulkhead" ? "hold" : "trip"}`));
      await A.nth(2);
      if (refusal === "bulkhead") await clock.advance(1000);
      await turns();
      for (const hit of held.splice(0)) answer(200, "held")(hit);
      await other;
      const result = await clock.run(call);
      out[refusal] = { jobsAtA: A.hits.filter((hit) => hit.path === "/v1/x").length, atY: E.hits.length, result };
      resetAll();
    }
    const seen = (way: string) => {
      const { jobsAtA, atY } = out[way] as { jobsAtA: number; atY: number };
      return { jobsAtA, atY };
    };
    expect({ bulkhead: seen("bulkhead"), breaker: seen("breaker") }).toEqual({
      bulkhead: { jobsAtA: 1, atY: 0 },
      breaker: { jobsAtA: 1, atY: 0 },
    });
  });
});
