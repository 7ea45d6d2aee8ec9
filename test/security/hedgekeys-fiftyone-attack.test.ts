/**
 * Outside-in attack on hedged fallback chains combined with what earlier attacks drove on plain calls only:
 * redirects (307/308) inside a hedged endpoint, to another host and back; a hedge at a degraded level with a
 * rule rewriting `model` and a `breaker.key` reading it; `resilientProxy` over a hedged chain; a `Request` input
 * with a body; the ky client; and which breaker key each call, hop and endpoint is counted against.
 *
 * Docs:
 * - docs/fallback.md `hedge`: "when the running endpoint has given no acceptable answer after `delay` (no response
 *   headers yet, a body `validate` is still reading, or it waits to retry, a `Retry-After` too), the next endpoint
 *   starts too …; an endpoint that fails while another still runs is left for the next one at once …; the first
 *   acceptable answer wins and the others are aborted (their upstreams see the connection closed); all are
 *   counted"; "for idempotent requests or requests with an `Idempotency-Key` only"; "A body sent once (a stream, or
 *   larger than `maxReplayBytes`) goes to one endpoint only"; `validate` "one whose body `validate` stopped reading
 *   … comes … as a new `Response` … with the endpoint's status, headers, `url` and `redirected`"; "When every
 *   endpoint failed, the call resolves with the last response any endpoint gave"; "Each network endpoint runs its
 *   own retry loop behind its own host breaker; one whose breaker is open is skipped without a request (the breaker
 *   of the host in its declared `url`, asked before its `transform` runs, then that of the host the `transform`
 *   sends it to: either open passes it over, with reason \"circuit open\", not counted"; rebasing ("The rest of the
 *   path and the query are rebased onto each endpoint's `url`"); "Credentials never cross origins … The same holds
 *   for hedges and redirects"; `order: "adaptive"` ("A hedge that lost counts there as a call that did not serve
 *   … (its host's breaker does not count it): an endpoint that keeps losing to its hedge moves down").
 * - docs/breakers.md: "One per host (`url.host`, or `breaker.key(url)`)"; "A probe aborted by its caller,
 *   `timeout.total` or a hedge that won frees its slot at once"; "The host a redirect led to is read when the
 *   retry's hop to it leaves"; docs/retry.md "## Redirects": "the final status counts against the first host's
 *   breaker. Hosts here are breakers: with a `breaker.key` of your own, a hop goes to another host when its URL's
 *   key differs from the first URL's", "A hop to another host whose breaker refuses calls (open … or half-open with
 *   every probe slot taken) is refused …, its `afterRedirect` `true` (… the first host's redirect counts as its
 *   success); a hop back to the first host is part of the attempt its breaker admitted; a hop to a half-open host
 *   with a free slot takes it, as that host's probe", "A `Retry-After` hold on the final answer holds the host that
 *   sent it, not the first one", "A `redirect` event reports each hop (`from`, `to`, `status`, `crossOrigin`, and
 *   the _names_ of the credential headers dropped …)".
 * - docs/degradation.md: "The breaker key (`url.host`, or `breaker.key(url)`) is taken from the URL the caller asked
 *   for, before the rewrite: a call keeps its host's breaker at every level, and a `breaker.key` that reads a query
 *   parameter a rule rewrites reads the caller's value"; "A call that goes down a fallback chain is rewritten once
 *   … every endpoint gets that request".
 * - docs/health-and-events.md: `breaker` (`key`, `from`, `to`, `reason`, `gen`, `openUntil`), `fallback`
 *   (`chain`, `from`, `reason`, `next`: "after a failure, a hedge already running that the call carries on with";
 *   "for one passed over for its open breaker, the endpoint next in line, else a hedge already running"), `retry`
 *   (`key`, `attempt`, `delay`, `reason`, `retryAfter`), `redirect`, `replay`. (There is no `hedge` event.)
 * - docs/cloudflare.md `resilientProxy`: "answers `503` with `Retry-After` when the circuit is open" ("a chain route
 *   counts as open when every endpoint's circuit is, `Retry-After` then naming the first to reopen"), "`502` … a
 *   redirect's target's own `429` or `503`, whatever the method", "adds `x-resilience-endpoint` …,
 *   `x-resilience-attempts` … to the responses the upstreams gave".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy` (./cloudflare, run in Node as a plain handler), `recordEvents` and
 * `TestClock` (./testing: every hedge, retry and breaker timer; `clock.pending()` checked at the end of each
 * test); three node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts): A (first endpoint), B (the hedge),
 * C (where redirects and `transform`s lead), each exchange's connection close observed on the server. The clock is
 * moved only once the server has the request (`nth`), so no test races real time.
 *
 * Paths: hedged chain (GET, keyed POST, PUT), redirect (307/308 to another host, to a half-open host, back to the
 * first host, a refused hop, a hop target's long `Retry-After`, `redirect: "manual"`), degradation rewrite (query
 * `model`, JSON body), custom `breaker.key`, `transform` to another host, `validate`, adaptive order, `Request`
 * input (keyed POST, PUT, keyless POST, a body past `maxReplayBytes`), `resilientProxy`, ky client, plain call.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-first session, so plain
 * `it`):
 * 1. docs/degradation.md "a call keeps its host's breaker at every level, and a `breaker.key` that reads a query
 *    parameter a rule rewrites reads the caller's value" (with docs/fallback.md "then that of the host the
 *    `transform` sends it to"). Observed: `breaker.key` = host + `model`, a `{ model: { query: "model" } }` rule at
 *    `medium`, a hedged chain whose second endpoint's `transform` sends the call to C and adds one query parameter
 *    (`api-version=2`, Azure's shape) to the query it was given: the hedge's 503 opens `C|standard` (the rewritten
 *    value) where the same call at `full` opens `C|premium`; and with `C|premium` open (callers asking for premium
 *    failed there), the `medium` call is sent to C all the same instead of being passed over ("circuit open").
 *    A `transform` that keeps the query exactly (another host or path) is keyed by the caller's `premium` (held
 *    below): the earlier fix covers only that shape. Source: src/fallback/try-endpoints.ts `sendToEndpoint` →
 *    `withAskedQuery`, which puts the caller's query back only when `shaped.search` equals the rewritten query
 *    sent, and otherwise keys `shaped.url` as it is, with the rule's rewritten `model`.
 *
 * Held (plain `it`):
 * - Hedge + 307 to another host that hangs: the hedge wins with its headers (`x-request-id`, `Retry-After`), the hop's
 *   connection closed, rebased path `/v2/jobs?x=1`, `authorization` dropped at the hop and at the hedge, one
 *   `redirect` event (`from`/`to` without the query, 307, `crossOrigin`, `dropped: ["authorization"]`), no
 *   `fallback` or `breaker` event, neither A's nor C's breaker counting the loser, statistics a 1/0, b 1/1; the
 *   same under `timeout.attempt` + `timeout.total`; adaptive order then ranks b first and the next call sends
 *   nothing to A.
 * - A hop back to the first, half-open host (A → C → A) is part of the attempt (probe success closes A, one
 *   attempt); a half-open hop target's probe slot taken by a loser is freed, not counted; the hedge's 308 back to
 *   A while A's only probe slot is taken by the first endpoint is refused and left at once for the running first
 *   (`next: "a"`), B's breaker counting nothing; with a free slot the hedge's hop is A's probe and closes it.
 * - A redirect target's 503 with `Retry-After: 3600`: C held open (`breaker` event with `key`, `reason`
 *   "Retry-After 3600 s on status 503", `gen`, `openUntil`), A counts one failure, the chain moves on; the next
 *   call's hop to C is refused (reason a `CircuitOpenError`, not "circuit open"), nothing sent to C. A late 307 to
 *   an open host while the hedge runs: left at once for the hedge, A's breaker counting a success, no secret in the
 *   event's reason.
 * - Every endpoint declining: the last answer (a redirected 503) comes back with its `Retry-After`, `x-request-id`,
 *   `url`, `redirected`; a too-large body `validate` stopped reading after a redirect comes back whole as a new
 *   `Response` with status, headers, `url` and `redirected`; a redirect target whose body stalls under `validate`
 *   loses to the hedge and is closed, with no `fallback` or `breaker` event.
 * - Degraded hedge with `breaker.key` by `model`: both endpoints get `?model=standard`, the hedge's 503 opens
 *   `B|premium` (full event), `fallback` `{ from: "b", reason: "status 503", next: "a" }`, `health()` lists only
 *   the `|premium` keys; the next `premium` call passes both over ("circuit open", `next` "b" then none) while a
 *   `standard` call goes; the hedge passed over for its open key (`next: "a"`) is not counted; a plain call's
 *   `retry`, `breaker` and `request` events and `getResilienceInfo(res).endpoint` carry the caller's key; a 429's
 *   `Retry-After` wait in the first endpoint (`retry` event `delay` 3000, `retryAfter` true, the caller's key) is
 *   dropped when the hedge wins, no timer left, A sent once.
 * - `resilientProxy`: a PUT's body replayed to the hedge, the hedge's headers plus `x-resilience-endpoint: b`,
 *   `x-resilience-attempts: 2`, the loser closed; a last answer 503 passed with its `Retry-After`; a redirect
 *   target's 503 as the last answer becomes the proxy's 502; with `breaker.key` by `model`, both endpoints open
 *   under the client's model give 503 `Retry-After: 20` for the first to reopen, another model goes; the client's
 *   abort closes both upstreams.
 * - `Request` input: a keyed POST's body and key replayed to the hedge, `cookie` kept home, `request` event once;
 *   a keyless POST never hedged; a PUT's 307 hop and the hedge both get the body; a PUT past `maxReplayBytes`
 *   goes to one endpoint only, with a `replay` event (`url` without its query, `bytes`, `limit`).
 * - ky client: the hedge's answer and info through ky; every endpoint declining gives `HTTPError` whose `response`
 *   keeps the last answer's `Retry-After`, `x-request-id` and info; a keyed `json` POST at `medium` sends the
 *   rewritten body to both endpoints.
 * - `redirect: "manual"`: the first endpoint's 307 after the hedge started is the answer (its `Location` kept), no
 *   hop, the hedge closed.
 *
 * Docs-silent (not pinned):
 * - A redirect whose `Location` echoes the rewritten query on the same host (`/gen?model=standard` → 307
 *   `/gen2?model=standard`) is keyed by that URL: at `medium` the hop is "another host" (`A|standard`), so a call
 *   for premium is refused (`CircuitOpenError`, `afterRedirect: true`) when callers asking for standard opened
 *   `A|standard`, where the same call at `full` goes through; and a `Retry-After` hold on that hop's answer would
 *   hold `A|standard`, not the call's `A|premium`. docs/retry.md ("a hop goes to another host when its URL's key
 *   differs from the first URL's") and docs/degradation.md ("a call keeps its host's breaker at every level") can
 *   each be read to say otherwise; only the internal JSDoc of `attemptKeys` says which.
 * - The `request` event's `key` (and `debugInfo()`'s failures) for a chain call is the chain's name, not a host or
 *   a `breaker.key` value; the docs do not list `key` among the `request` event's fields.
 */
import { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  type ResilienceOptions,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // the first endpoint's host
const B = httpUpstream(); // the hedge's host
const C = httpUpstream(); // where A's redirects lead
serveDuringFile(A, B, C);

const DELAY = 1000;

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<ResilienceOptions, "fallback">;

/** Real I/O turns (the clock does not move) until `done()`. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}

/** Whether `hit`'s connection closed (within a few real turns). */
async function closed(hit: Hit): Promise<boolean> {
  let done = false;
  void hit.closed.then(() => {
    done = true;
  });
  try {
    await until(() => done);
  } catch {
    return false;
  }
  return true;
}

const json =
  (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
  };
const redirectTo =
  (location: string, status = 307) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { location }).end();
  };
const hang = (_hit: Hit): void => {};

function endpoints(): Chain["endpoints"] {
  return [
    { name: "a", url: `${A.base}/v1` },
    { name: "b", url: `${B.base}/v2` },
  ];
}

function hedged(options: Options = {}, chain: Partial<Chain> = {}) {
  const clock = (options.clock as TestClock | undefined) ?? new TestClock(0);
  const layer = createResilience({
    retry: false,
    ...options,
    clock,
    fallback: fallback([{ name: "gen", hedge: { delay: DELAY }, endpoints: endpoints(), ...chain }]),
  });
  return { clock, layer, recorder: recordEvents(layer) };
}

describe("a hedged chain whose first endpoint redirects", () => {
  it("a 307 to another host that hangs: the hedge wins, the hop is closed, no breaker counts the loser", async () => {
    A.on(redirectTo(`${C.base}/elsewhere?token=T`));
    C.on(hang);
    B.on(json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b", "retry-after": "7" }));
    const { clock, layer, recorder } = hedged();
    const call = layer.fetch(`${A.base}/v1/jobs?x=1`, { headers: { authorization: "Bearer S" } });
    const hop = await C.nth(1);
    expect(A.hits[0]?.headers.authorization).toBe("Bearer S");
    expect(hop.headers.authorization).toBeUndefined();
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.path).toBe("/v2/jobs?x=1");
    expect(B.hits[0]?.headers.authorization).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(res.headers.get("retry-after")).toBe("7");
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(await closed(hop)).toBe(true);
    expect(recorder.of("redirect")).toEqual([
      {
        from: `${A.base}/v1/jobs`,
        to: `${C.base}/elsewhere`,
        status: 307,
        crossOrigin: true,
        dropped: ["authorization"],
      },
    ]);
    expect(recorder.of("fallback")).toEqual([]);
    expect(recorder.of("breaker")).toEqual([]);
    const breakers = layer.health().breakers;
    expect(breakers[A.host]?.failureCount ?? 0).toBe(0);
    expect(breakers[C.host]?.failureCount ?? 0).toBe(0);
    expect(breakers[B.host]).toMatchObject({ state: "closed", failureCount: 0 });
    const stats = layer.fallback?.chain("gen").statistics();
    expect(stats?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    expect(clock.pending()).toBe(0);
  });
});

const busy =
  (headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(503, { "content-type": "text/plain", ...headers }).end("busy");
  };

describe("redirects and half-open hosts inside a hedged chain", () => {
  const breaker = { failureThreshold: 1, timeout: 5000, halfOpenMaxCalls: 1, successThreshold: 1 };

  it("a hop back to the first, half-open host is part of the attempt its breaker admitted", async () => {
    const { clock, layer, recorder } = hedged({ breaker });
    A.on(busy());
    expect((await layer.fetch(`${A.base}/other`)).status).toBe(503);
    await clock.advance(5000);
    A.on((hit) =>
      hit.path.startsWith("/v1")
        ? redirectTo(`${C.base}/bounce`)(hit)
        : json({ ok: true, from: "a" }, 200, { "x-request-id": "rid-a" })(hit),
    );
    C.on(redirectTo(`${A.base}/final`, 308));
    const res = await layer.fetch(`${A.base}/v1/jobs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("rid-a");
    expect(res.url).toBe(`${A.base}/final`);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 1 });
    expect(B.hits).toHaveLength(0);
    expect(
      recorder.of("redirect").map(({ from, to, status, crossOrigin }) => ({ from, to, status, crossOrigin })),
    ).toEqual([
      { from: `${A.base}/v1/jobs`, to: `${C.base}/bounce`, status: 307, crossOrigin: true },
      { from: `${C.base}/bounce`, to: `${A.base}/final`, status: 308, crossOrigin: true },
    ]);
    expect(recorder.of("breaker").map(({ key, from, to }) => ({ key, from, to }))).toEqual([
      { key: A.host, from: "closed", to: "open" },
      { key: A.host, from: "open", to: "half_open" },
      { key: A.host, from: "half_open", to: "closed" },
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a half-open hop target's probe slot, taken by a hedge that lost, is freed at once and not counted", async () => {
    const { clock, layer, recorder } = hedged({ breaker });
    C.on(busy());
    expect((await layer.fetch(`${C.base}/other`)).status).toBe(503);
    await clock.advance(5000);
    A.on(redirectTo(`${C.base}/slow`));
    C.on(hang);
    B.on(json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const hop = await C.nth(2);
    await clock.advance(DELAY);
    const res = await call;
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(await closed(hop)).toBe(true);
    expect(layer.health().breakers[C.host]?.state).toBe("half_open");
    // The slot is free: the next call to C is its probe, and closes it.
    C.on(json({ ok: true }));
    expect((await layer.fetch(`${C.base}/other`)).status).toBe(200);
    expect(recorder.of("breaker").map(({ key, from, to }) => ({ key, from, to }))).toEqual([
      { key: C.host, from: "closed", to: "open" },
      { key: C.host, from: "open", to: "half_open" },
      { key: C.host, from: "half_open", to: "closed" },
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a redirect target's 503 with a long Retry-After holds that host, the first host counts the failure, the hedge serves", async () => {
    const { clock, layer, recorder } = hedged({ breaker: { failureThreshold: 2 } });
    A.on(redirectTo(`${C.base}/gen`));
    C.on(busy({ "retry-after": "3600", "x-request-id": "rid-c" }));
    B.on(json({ ok: true, from: "b" }));
    const res = await layer.fetch(`${A.base}/v1/jobs`);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(recorder.of("fallback")).toEqual([{ chain: "gen", from: "a", reason: "status 503", next: "b" }]);
    expect(recorder.of("breaker")).toEqual([
      {
        key: C.host,
        from: "closed",
        to: "open",
        reason: "Retry-After 3600 s on status 503",
        gen: 1,
        openUntil: 3_600_000,
      },
    ]);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 1 });
    // The next call's hop to C is refused (afterRedirect), nothing sent there; a GET moves on.
    const second = await layer.fetch(`${A.base}/v1/jobs`);
    expect(getResilienceInfo(second)).toMatchObject({ endpoint: "b" });
    expect(C.hits).toHaveLength(1);
    const events = recorder.of("fallback");
    expect(events[1]).toMatchObject({ chain: "gen", from: "a", next: "b" });
    expect(events[1]?.reason).not.toBe("circuit open");
    expect(recorder.of("redirect")).toHaveLength(2);
    expect(clock.pending()).toBe(0);
  });

  it("every endpoint declines: the last answer comes back with its Retry-After and x-request-id", async () => {
    const { clock, layer } = hedged();
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(busy({ "retry-after": "5", "x-request-id": "rid-b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    await B.nth(1);
    await until(() => B.hits.length === 1);
    busy({ "retry-after": "9", "x-request-id": "rid-c" })(hop);
    const res = await call;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("9");
    expect(res.headers.get("x-request-id")).toBe("rid-c");
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${C.base}/gen`);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 2 });
    expect(clock.pending()).toBe(0);
  });
});

/** A Standard Schema that accepts objects with `ok: true`. */
const okSchema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value: unknown) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

describe("validate on a hedged chain whose endpoint redirects", () => {
  it("an answer validate stopped reading (too large) after a redirect keeps status, headers, url and redirected", async () => {
    const { clock, layer, recorder } = hedged(
      { maxReplayBytes: 1024 },
      {
        endpoints: [
          { name: "a", url: `${A.base}/v1`, validate: okSchema },
          { name: "b", url: `${B.base}/v2`, validate: okSchema },
        ],
      },
    );
    A.on(redirectTo(`${C.base}/big`));
    const big = JSON.stringify({ ok: false, pad: "x".repeat(4096) });
    C.on(hang);
    B.on(busy({ "retry-after": "5" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    await B.nth(1);
    await until(() => recorder.of("fallback").length === 1);
    hop.res.writeHead(200, { "content-type": "application/json", "x-request-id": "rid-c", "retry-after": "3" });
    hop.res.end(big);
    const res = await call;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("rid-c");
    expect(res.headers.get("retry-after")).toBe("3");
    expect(res.url).toBe(`${C.base}/big`);
    expect(res.redirected).toBe(true);
    expect(await res.text()).toBe(big);
    expect(recorder.of("fallback")).toEqual([
      { chain: "gen", from: "b", reason: "status 503", next: "a" },
      expect.objectContaining({ chain: "gen", from: "a", next: undefined }),
    ]);
    expect(clock.pending()).toBe(0);
  });
});

/** A breaker key that splits a host by the `model` it is asked for. */
const byModel = (url: URL): string => `${url.host}|${url.searchParams.get("model") ?? "-"}`;

function degradedHedged(options: Options = {}, chain: Partial<Chain> = {}) {
  const made = hedged(
    {
      breaker: { key: byModel, failureThreshold: 1, ...(options.breaker as object) },
      degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
      ...options,
    },
    chain,
  );
  made.layer.degradation?.setLevel("medium");
  return made;
}

describe("a hedge at a degraded level, a rule rewriting `model`, a breaker.key reading it", () => {
  it("each endpoint is counted against the key of the caller's model; the events name it", async () => {
    const { clock, layer, recorder } = degradedHedged();
    A.on(hang);
    B.on(busy({ "retry-after": "1", "x-request-id": "rid-b" }));
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    expect(first.path).toBe("/v1/gen?model=standard");
    await clock.advance(DELAY);
    await B.nth(1);
    expect(B.hits[0]?.path).toBe("/v2/gen?model=standard");
    await until(() => recorder.of("fallback").length === 1);
    expect(recorder.of("fallback")).toEqual([{ chain: "gen", from: "b", reason: "status 503", next: "a" }]);
    expect(recorder.of("breaker")).toEqual([
      {
        key: `${B.host}|premium`,
        from: "closed",
        to: "open",
        reason: "1 failure in a row (last: status 503)",
        gen: 1,
        openUntil: DELAY + 30_000,
      },
    ]);
    json({ ok: true, from: "a" }, 200, { "x-request-id": "rid-a" })(first);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-a");
    expect(getResilienceInfo(res)).toMatchObject({
      endpoint: "a",
      fromFallback: false,
      attempts: 2,
      degradationLevel: "medium",
    });
    const breakers = layer.health().breakers;
    expect(Object.keys(breakers).sort()).toEqual([`${A.host}|premium`, `${B.host}|premium`].sort());
    expect(breakers[`${A.host}|premium`]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(clock.pending()).toBe(0);
  });

  it("the next call passes over b by the caller's key; a call that asks for the rewritten model is not refused", async () => {
    const { clock, layer, recorder } = degradedHedged();
    A.on(busy());
    B.on(busy());
    // Opens `A|premium` and `B|premium` (b is sent beside a, at once after a's 503).
    const firstCall = await layer.fetch(`${A.base}/v1/gen?model=premium`);
    expect(firstCall.status).toBe(503);
    expect(
      recorder
        .of("breaker")
        .map(({ key, to }) => `${key}:${to}`)
        .sort(),
    ).toEqual([`${A.host}|premium:open`, `${B.host}|premium:open`].sort());
    A.reset();
    B.reset();
    // A caller asking for `standard` itself (rewritten to `basic`): other breakers, closed.
    A.on(json({ ok: true, from: "a" }));
    const other = await layer.fetch(`${A.base}/v1/gen?model=standard`);
    expect(other.status).toBe(200);
    expect(A.hits[0]?.path).toBe("/v1/gen?model=basic");
    expect(getResilienceInfo(other)).toMatchObject({ endpoint: "a" });
    // Asking for `premium` again: both endpoints' breakers open, nothing sent.
    const refused = await rejection(layer.fetch(`${A.base}/v1/gen?model=premium`));
    expect(refused).toMatchObject({ name: "FallbackExhaustedError" });
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(0);
    expect(recorder.of("fallback").slice(-2)).toEqual([
      { chain: "gen", from: "a", reason: "circuit open", next: "b" },
      { chain: "gen", from: "b", reason: "circuit open", next: undefined },
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a plain call at the degraded level keeps the caller's key: retry, breaker and request events, info", async () => {
    const { clock, layer, recorder } = degradedHedged({
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      breaker: { key: byModel, failureThreshold: 2 },
    });
    C.on(busy({ "x-request-id": "rid-c" }));
    const call = layer.fetch(`${C.base}/plain?model=premium`);
    await C.nth(1);
    await clock.waitForTimers(1);
    expect(recorder.of("retry").map(({ key, attempt, reason }) => ({ key, attempt, reason }))).toEqual([
      { key: `${C.host}|premium`, attempt: 1, reason: "status 503" },
    ]);
    await clock.advance(10);
    const res = await call;
    expect(C.hits.map((h) => h.path)).toEqual(["/plain?model=standard", "/plain?model=standard"]);
    expect(res.status).toBe(503);
    expect(res.headers.get("x-request-id")).toBe("rid-c");
    expect(getResilienceInfo(res)).toMatchObject({
      endpoint: `${C.host}|premium`,
      attempts: 2,
      degradationLevel: "medium",
    });
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}|premium:open`]);
    expect(recorder.of("request").map(({ key }) => key)).toEqual([`${C.host}|premium`]);
    expect(clock.pending()).toBe(0);
  });
});

function proxyOver(chain: Partial<Chain> = {}, resilience: Options = {}) {
  const clock = new TestClock(0);
  const proxy = resilientProxy<object>({
    routes: [{ path: "/v1", chain: { name: "gen", hedge: { delay: DELAY }, endpoints: endpoints(), ...chain } }],
    resilience: { retry: false, clock, ...resilience },
  });
  const serve = (request: Request) => proxy.fetch(request, {}, { waitUntil() {} });
  return { clock, serve };
}

describe("resilientProxy in front of a hedged chain", () => {
  it("a PUT with a body: the hedge gets the same body, wins, and its headers reach the client", async () => {
    const { clock, serve } = proxyOver();
    A.on(hang);
    B.on(json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b", "retry-after": "4" }));
    const body = JSON.stringify({ prompt: "waves", seed: 12345678901234567890n.toString() });
    const call = serve(
      new Request("https://worker.example/v1/jobs?x=1", {
        method: "PUT",
        headers: { "content-type": "application/json", authorization: "Bearer S" },
        body,
      }),
    );
    const first = await A.nth(1);
    expect(first.body).toBe(body);
    expect(first.path).toBe("/v1/jobs?x=1");
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.body).toBe(body);
    expect(B.hits[0]?.method).toBe("PUT");
    expect(B.hits[0]?.path).toBe("/v2/jobs?x=1");
    expect(B.hits[0]?.headers.authorization).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(res.headers.get("retry-after")).toBe("4");
    expect(res.headers.get("x-resilience-endpoint")).toBe("b");
    expect(res.headers.get("x-resilience-attempts")).toBe("2");
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(await closed(first)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a GET whose hedge's 503 is the last answer: passed on with its Retry-After", async () => {
    const { clock, serve } = proxyOver();
    A.on(hang);
    B.on(hang);
    const call = serve(new Request("https://worker.example/v1/jobs"));
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const second = await B.nth(1);
    busy({ "retry-after": "8", "x-request-id": "rid-a" })(first);
    await until(() => first.res.writableFinished);
    busy({ "retry-after": "9", "x-request-id": "rid-b" })(second);
    const res = await call;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("9");
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(res.headers.get("x-resilience-endpoint")).toBe("b");
    expect(clock.pending()).toBe(0);
  });

  it("a GET whose last answer is a redirect target's 503: the proxy's own 502", async () => {
    const { clock, serve } = proxyOver();
    A.on(redirectTo(`${C.base}/gen`));
    C.on(hang);
    B.on(busy({ "retry-after": "9" }));
    const call = serve(new Request("https://worker.example/v1/jobs"));
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    await B.nth(1);
    await until(() => B.hits[0]?.res.writableFinished === true);
    busy({ "retry-after": "8" })(hop);
    const res = await call;
    expect(res.status).toBe(502);
    expect(res.headers.get("x-resilience-endpoint")).toBeNull();
    expect(clock.pending()).toBe(0);
  });
});

describe("a Request input with a body through a hedged chain", () => {
  it("a keyed POST Request: the hedge gets the same body and key, not the caller's credentials", async () => {
    const { clock, layer, recorder } = hedged();
    A.on(hang);
    B.on(json({ ok: true, from: "b" }, 201, { "x-request-id": "rid-b" }));
    const body = JSON.stringify({ prompt: "waves", seed: "18446744073709551615" });
    const call = layer.fetch(
      new Request(`${A.base}/v1/jobs?x=1`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k-1", cookie: "sid=SESSION-1234" },
        body,
      }),
    );
    const first = await A.nth(1);
    expect(first.body).toBe(body);
    await clock.advance(DELAY);
    const res = await call;
    const hedge = B.hits[0];
    expect(hedge?.body).toBe(body);
    expect(hedge?.headers["idempotency-key"]).toBe("k-1");
    expect(hedge?.headers.cookie).toBeUndefined();
    expect(res.status).toBe(201);
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(await closed(first)).toBe(true);
    expect(recorder.of("request")).toEqual([
      expect.objectContaining({ method: "POST", status: 201, attempts: 2, outcome: "response" }),
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("a keyless POST Request is not hedged: one endpoint while it is out", async () => {
    const { clock, layer } = hedged();
    A.on(hang);
    const controller = new AbortController();
    const call = layer.fetch(
      new Request(`${A.base}/v1/jobs`, { method: "POST", body: "{}", signal: controller.signal }),
    );
    const first = await A.nth(1);
    await clock.advance(DELAY * 3);
    expect(B.hits).toHaveLength(0);
    controller.abort(new Error("stop"));
    expect(await rejection(call)).toMatchObject({ message: "stop" });
    expect(await closed(first)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a PUT Request whose first endpoint redirects 307 to a host that hangs: the hop gets the body, the hedge too", async () => {
    const { clock, layer } = hedged();
    A.on(redirectTo(`${C.base}/gen`, 307));
    C.on(hang);
    B.on(json({ ok: true, from: "b" }));
    const body = JSON.stringify({ prompt: "x" });
    const call = layer.fetch(new Request(`${A.base}/v1/jobs`, { method: "PUT", body }));
    const hop = await C.nth(1);
    expect(hop.method).toBe("PUT");
    expect(hop.body).toBe(body);
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.body).toBe(body);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b" });
    expect(await closed(hop)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});

describe("the ky client on a hedged chain", () => {
  it("the hedge wins: ky resolves with its answer and headers; info is kept", async () => {
    const { clock, layer } = hedged();
    A.on(hang);
    B.on(json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b" }));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.get("jobs", { searchParams: { x: "1" } });
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.path).toBe("/v2/jobs?x=1");
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(await closed(first)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("every endpoint declines: ky's HTTPError carries the last answer with its Retry-After, x-request-id and info", async () => {
    const { clock, layer } = hedged();
    A.on(hang);
    B.on(hang);
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = rejection(api.post("jobs", { json: { prompt: "p" }, headers: { "idempotency-key": "k-2" } }));
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const second = await B.nth(1);
    expect(second.headers["idempotency-key"]).toBe("k-2");
    expect(second.body).toBe(first.body);
    busy({ "retry-after": "8", "x-request-id": "rid-b" })(second);
    await until(() => second.res.writableFinished);
    busy({ "retry-after": "9", "x-request-id": "rid-a" })(first);
    const error = await call;
    expect(error).toBeInstanceOf(HTTPError);
    const response = (error as HTTPError).response;
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("9");
    expect(response.headers.get("x-request-id")).toBe("rid-a");
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 2 });
    expect(clock.pending()).toBe(0);
  });
});

/** b's `transform`: the call goes to C's `/v3`, its query kept, `api-version=2` added when `append` (Azure's shape). */
function toC(append: boolean): NonNullable<Chain["endpoints"][number]["transform"]> {
  return (req) => {
    const asked = new URL(req.url);
    const to = new URL(`${C.base}/v3${asked.pathname.slice("/v2".length)}${asked.search}`);
    if (append) to.searchParams.set("api-version", "2");
    return { ...req, url: to.href };
  };
}

function transformedChain(append: boolean): Partial<Chain> {
  return {
    endpoints: [
      { name: "a", url: `${A.base}/v1` },
      { name: "b", url: `${B.base}/v2`, transform: toC(append) },
    ],
  };
}

describe("a hedge whose endpoint's transform sends it to another host, at a degraded level, keyed by `model`", () => {
  it("a transform that keeps the query: the hedge's 503 is counted against the caller's model", async () => {
    const { clock, layer, recorder } = degradedHedged({}, transformedChain(false));
    A.on(hang);
    C.on(busy({ "x-request-id": "rid-c" }));
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await C.nth(1);
    expect(C.hits[0]?.path).toBe("/v3/gen?model=standard");
    await until(() => recorder.of("fallback").length === 1);
    json({ ok: true })(first);
    await call;
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}|premium:open`]);
    expect(clock.pending()).toBe(0);
  });

  // docs/degradation.md: "The breaker key (`url.host`, or `breaker.key(url)`) is taken from the URL the caller
  // asked for, before the rewrite: a call keeps its host's breaker at every level, and a `breaker.key` that reads
  // a query parameter a rule rewrites reads the caller's value."
  it("a transform that adds a query parameter: the hedge's 503 is still counted against the caller's model", async () => {
    const { clock, layer, recorder } = degradedHedged({}, transformedChain(true));
    A.on(hang);
    C.on(busy({ "x-request-id": "rid-c" }));
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await C.nth(1);
    expect(C.hits[0]?.path).toBe("/v3/gen?model=standard&api-version=2");
    await until(() => recorder.of("fallback").length === 1);
    json({ ok: true })(first);
    await call;
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}|premium:open`]);
    expect(Object.keys(layer.health().breakers)).not.toContain(`${C.host}|standard`);
  });

  // Added with the fix (fifty-first session): a parameter the `transform` sets itself is keyed as it set it.
  it("a transform that sets the model itself: the hedge's 503 is counted against the transform's model", async () => {
    const { clock, layer, recorder } = degradedHedged(
      {},
      {
        endpoints: [
          { name: "a", url: `${A.base}/v1` },
          {
            name: "b",
            url: `${B.base}/v2`,
            transform: (req) => {
              const to = new URL((toC(true)(req) as { url: string }).url);
              to.searchParams.set("model", "mini");
              return { ...req, url: to.href };
            },
          },
        ],
      },
    );
    A.on(hang);
    C.on(busy());
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await C.nth(1);
    expect(C.hits[0]?.path).toBe("/v3/gen?model=mini&api-version=2");
    await until(() => recorder.of("fallback").length === 1);
    json({ ok: true })(first);
    await call;
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}|mini:open`]);
    expect(clock.pending()).toBe(0);
  });

  it("control, at full: the same transform's 503 is counted against the caller's model", async () => {
    const { clock, layer, recorder } = degradedHedged({}, transformedChain(true));
    layer.degradation?.setLevel("full");
    A.on(hang);
    C.on(busy());
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await C.nth(1);
    expect(C.hits[0]?.path).toBe("/v3/gen?model=premium&api-version=2");
    await until(() => recorder.of("fallback").length === 1);
    json({ ok: true })(first);
    await call;
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}|premium:open`]);
    expect(clock.pending()).toBe(0);
  });

  it("control: with the caller's model's breaker open at C, the hedge is passed over (transform keeping the query)", async () => {
    const { clock, layer, recorder } = degradedHedged({}, transformedChain(false));
    layer.degradation?.setLevel("full");
    C.on(busy());
    expect((await layer.fetch(`${C.base}/other?model=premium`)).status).toBe(503);
    layer.degradation?.setLevel("medium");
    C.reset();
    A.on(hang);
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await until(() => recorder.of("fallback").length === 1);
    expect(recorder.of("fallback")).toEqual([{ chain: "gen", from: "b", reason: "circuit open", next: "a" }]);
    expect(C.hits).toHaveLength(0);
    json({ ok: true })(first);
    expect(getResilienceInfo(await call)).toMatchObject({ endpoint: "a" });
    // Passed over for its open breaker: not counted.
    expect(layer.fallback?.chain("gen").statistics().fallbacks.b).toMatchObject({ calls: 0 });
    expect(clock.pending()).toBe(0);
  });

  // Same sentence: "a call keeps its host's breaker at every level".
  it("with the caller's model's breaker open at C, a transform that adds a parameter still has the hedge passed over", async () => {
    const { clock, layer, recorder } = degradedHedged({}, transformedChain(true));
    layer.degradation?.setLevel("full");
    C.on(busy());
    expect((await layer.fetch(`${C.base}/other?model=premium`)).status).toBe(503);
    layer.degradation?.setLevel("medium");
    C.reset();
    A.on(hang);
    C.on(hang);
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    await until(() => recorder.of("fallback").length === 1 || C.hits.length === 1);
    json({ ok: true })(first);
    await call;
    expect(C.hits).toHaveLength(0);
    expect(recorder.of("fallback")).toEqual([{ chain: "gen", from: "b", reason: "circuit open", next: "a" }]);
  });
});

describe("a hop refused by its open host while the hedge runs", () => {
  it("the first endpoint's late 307 to an open host: left at once for the running hedge, its host counting a success", async () => {
    const { clock, layer, recorder } = hedged({ breaker: { failureThreshold: 1 } });
    C.on(busy());
    expect((await layer.fetch(`${C.base}/other`)).status).toBe(503);
    C.reset();
    A.on(hang);
    B.on(hang);
    const call = layer.fetch(`${A.base}/v1/jobs?token=SECRET`);
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const second = await B.nth(1);
    redirectTo(`${C.base}/gen?sig=SECRET2`)(first);
    await until(() => recorder.of("fallback").length === 1);
    const [event] = recorder.of("fallback");
    expect(event).toMatchObject({ chain: "gen", from: "a", next: "b" });
    expect(event?.reason).not.toContain("SECRET");
    json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b" })(second);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(C.hits).toHaveLength(0);
    expect(recorder.of("redirect")).toEqual([
      { from: `${A.base}/v1/jobs`, to: `${C.base}/gen`, status: 307, crossOrigin: true, dropped: [] },
    ]);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([`${C.host}:open`]);
    const stats = layer.fallback?.chain("gen").statistics();
    expect(stats?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    expect(clock.pending()).toBe(0);
  });
});

describe("resilientProxy over a hedged chain with a breaker.key reading `model`", () => {
  it("the route's endpoints open under the client's model: 503 with Retry-After for the first to reopen; another model goes", async () => {
    const { clock, serve } = proxyOver({}, { breaker: { key: byModel, failureThreshold: 1, timeout: 30_000 } });
    A.on(busy({ "retry-after": "2", "x-request-id": "rid-a" }));
    B.on(busy({ "retry-after": "3", "x-request-id": "rid-b" }));
    const first = await serve(new Request("https://worker.example/v1/gen?model=premium"));
    expect(first.status).toBe(503);
    expect(first.headers.get("retry-after")).toBe("3");
    expect(first.headers.get("x-request-id")).toBe("rid-b");
    expect(first.headers.get("x-resilience-endpoint")).toBe("b");
    await clock.advance(10_000);
    const refused = await serve(new Request("https://worker.example/v1/gen?model=premium"));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("20");
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(1);
    A.on(json({ ok: true }, 200, { "x-request-id": "rid-a2" }));
    const other = await serve(new Request("https://worker.example/v1/gen?model=standard"));
    expect(other.status).toBe(200);
    expect(other.headers.get("x-request-id")).toBe("rid-a2");
    expect(other.headers.get("x-resilience-endpoint")).toBe("a");
    expect(clock.pending()).toBe(0);
  });
});

describe("adaptive order on a hedged chain whose first endpoint redirects", () => {
  it("an endpoint that keeps losing to its hedge after a redirect moves down; its hosts' breakers count nothing", async () => {
    const { clock, layer } = hedged({}, { order: "adaptive" });
    A.on(redirectTo(`${C.base}/slow`));
    C.on(hang);
    B.on(json({ ok: true, from: "b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    await C.nth(1);
    await clock.advance(DELAY);
    expect(getResilienceInfo(await call)).toMatchObject({ endpoint: "b" });
    expect(layer.fallback?.chain("gen").ordered()).toEqual(["b", "a"]);
    const breakers = layer.health().breakers;
    expect(breakers[A.host]?.failureCount ?? 0).toBe(0);
    expect(breakers[C.host]?.failureCount ?? 0).toBe(0);
    // The next call starts at b, which answers at once: a is not sent.
    const next = await layer.fetch(`${A.base}/v1/jobs`);
    expect(getResilienceInfo(next)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 1 });
    expect(A.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("a Retry-After wait inside a hedged endpoint, at a degraded level", () => {
  it("the first endpoint waits out a 429's Retry-After, the hedge wins meanwhile: the wait is dropped, the key the caller's", async () => {
    const { clock, layer, recorder } = degradedHedged({
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      breaker: { key: byModel, failureThreshold: 5 },
    });
    A.on(json({ error: "slow down" }, 429, { "retry-after": "3" }));
    B.on(hang);
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    await A.nth(1);
    await clock.waitForTimers(2);
    expect(recorder.of("retry").map(({ key, delay, retryAfter }) => ({ key, delay, retryAfter }))).toEqual([
      { key: `${A.host}|premium`, delay: 3000, retryAfter: true },
    ]);
    await clock.advance(DELAY);
    const hedge = await B.nth(1);
    json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b" })(hedge);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", attempts: 2, degradationLevel: "medium" });
    expect(clock.pending()).toBe(0);
    await clock.advance(10_000);
    expect(A.hits).toHaveLength(1);
    expect(layer.health().breakers[`${A.host}|premium`]).toMatchObject({ failureCount: 1 });
  });
});

describe("more hedged-chain paths: timeouts, a stalled body after a redirect, redirect: manual, the client's abort", () => {
  it("under timeout.attempt and timeout.total: the redirected loser closed, no timer left", async () => {
    const { clock, layer } = hedged({ timeout: { attempt: 5000, total: 20_000 } });
    A.on(redirectTo(`${C.base}/slow`, 308));
    C.on(hang);
    B.on(json({ ok: true }, 200, { "x-request-id": "rid-b" }));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const hop = await C.nth(1);
    await clock.advance(DELAY);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(await closed(hop)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a redirect target whose body stalls while validate reads it at a degraded level: the hedge wins, the target closed", async () => {
    const { clock, layer, recorder } = degradedHedged(
      {},
      {
        endpoints: [
          { name: "a", url: `${A.base}/v1`, validate: okSchema },
          { name: "b", url: `${B.base}/v2`, validate: okSchema },
        ],
      },
    );
    A.on((hit) => redirectTo(`${C.base}/gen${hit.path.slice(hit.path.indexOf("?"))}`)(hit));
    C.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"ok":');
    });
    B.on(json({ ok: true, from: "b" }, 200, { "x-request-id": "rid-b" }));
    const call = layer.fetch(`${A.base}/v1/gen?model=premium`);
    const hop = await C.nth(1);
    expect(hop.path).toBe("/gen?model=standard");
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.path).toBe("/v2/gen?model=standard");
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(await closed(hop)).toBe(true);
    expect(recorder.of("fallback")).toEqual([]);
    expect(recorder.of("breaker")).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("redirect: manual: the first endpoint's 307 after the hedge started is the answer, with its Location; the hedge closed", async () => {
    const { clock, layer, recorder } = hedged();
    A.on(hang);
    B.on(hang);
    const call = layer.fetch(`${A.base}/v1/jobs`, { redirect: "manual" });
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const second = await B.nth(1);
    first.res.writeHead(307, { location: `${C.base}/gen`, "x-request-id": "rid-a" }).end();
    const res = await call;
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe(`${C.base}/gen`);
    expect(res.headers.get("x-request-id")).toBe("rid-a");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", attempts: 2 });
    expect(C.hits).toHaveLength(0);
    expect(recorder.of("redirect")).toEqual([]);
    expect(await closed(second)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("resilientProxy: the client's abort while the first endpoint and its hedge run closes both, no timer left", async () => {
    const { clock, serve } = proxyOver();
    A.on(hang);
    B.on(hang);
    const controller = new AbortController();
    const call = serve(new Request("https://worker.example/v1/jobs", { signal: controller.signal }));
    const first = await A.nth(1);
    await clock.advance(DELAY);
    const second = await B.nth(1);
    controller.abort(new Error("client gone"));
    expect(await rejection(call)).toMatchObject({ message: "client gone" });
    expect(await closed(first)).toBe(true);
    expect(await closed(second)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});

describe("the hedge's endpoint redirects back to the first endpoint's half-open host", () => {
  async function halfOpenA(halfOpenMaxCalls: number) {
    const made = hedged({ breaker: { failureThreshold: 1, timeout: 5000, halfOpenMaxCalls, successThreshold: 1 } });
    A.on(busy());
    expect((await made.layer.fetch(`${A.base}/other`)).status).toBe(503);
    await made.clock.advance(5000);
    A.reset();
    return made;
  }

  it("every probe slot taken by the first endpoint: the hop is refused, the hedge left for the running first", async () => {
    const { clock, layer, recorder } = await halfOpenA(1);
    A.on((hit) => {
      if (hit.path.startsWith("/back")) json({ from: "a-back" })(hit);
    });
    B.on(redirectTo(`${A.base}/back`, 308));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const probe = await A.nth(1);
    await clock.advance(DELAY);
    await until(() => recorder.of("fallback").length === 1);
    expect(recorder.of("fallback")[0]).toMatchObject({ chain: "gen", from: "b", next: "a" });
    expect(A.hits).toHaveLength(1);
    json({ ok: true, from: "a" }, 200, { "x-request-id": "rid-a" })(probe);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-a");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 2 });
    expect(recorder.of("redirect")).toEqual([
      { from: `${B.base}/v2/jobs`, to: `${A.base}/back`, status: 308, crossOrigin: true, dropped: [] },
    ]);
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([
      `${A.host}:open`,
      `${A.host}:half_open`,
      `${A.host}:closed`,
    ]);
    expect(layer.health().breakers[B.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(clock.pending()).toBe(0);
  });

  it("a free probe slot: the hedge's hop is A's probe and closes it; the first endpoint's probe, lost, frees its slot", async () => {
    const { clock, layer, recorder } = await halfOpenA(2);
    A.on((hit) => {
      if (hit.path.startsWith("/back")) json({ ok: true, from: "a-back" }, 200, { "x-request-id": "rid-back" })(hit);
    });
    B.on(redirectTo(`${A.base}/back`, 307));
    const call = layer.fetch(`${A.base}/v1/jobs`);
    const probe = await A.nth(1);
    await clock.advance(DELAY);
    const res = await call;
    expect(res.headers.get("x-request-id")).toBe("rid-back");
    expect(res.url).toBe(`${A.base}/back`);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    expect(await closed(probe)).toBe(true);
    expect(recorder.of("breaker").map(({ key, to }) => `${key}:${to}`)).toEqual([
      `${A.host}:open`,
      `${A.host}:half_open`,
      `${A.host}:closed`,
    ]);
    expect(layer.health().breakers[A.host]).toMatchObject({ state: "closed" });
    expect(clock.pending()).toBe(0);
  });
});

describe("bodies through a hedged chain: sent once, and rewritten at a degraded level", () => {
  it("a PUT Request larger than maxReplayBytes goes to one endpoint: no hedge, a replay event", async () => {
    const { clock, layer, recorder } = hedged({ maxReplayBytes: 1024 });
    A.on(hang);
    const controller = new AbortController();
    const body = "x".repeat(4096);
    const call = layer.fetch(
      new Request(`${A.base}/v1/jobs?token=T`, { method: "PUT", body, signal: controller.signal }),
    );
    const first = await A.nth(1);
    await clock.advance(DELAY * 3);
    expect(B.hits).toHaveLength(0);
    controller.abort(new Error("stop"));
    expect(await rejection(call)).toMatchObject({ message: "stop" });
    expect(first.body).toBe(body);
    expect(recorder.of("replay")).toEqual([{ url: `${A.base}/v1/jobs`, bytes: expect.any(Number), limit: 1024 }]);
    expect(await closed(first)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("the ky client's keyed JSON POST at medium: both endpoints get the rewritten body and the key", async () => {
    const { clock, layer } = hedged({
      degradation: degradation({}),
      breaker: { key: byModel },
    });
    layer.degradation?.setLevel("medium");
    A.on(hang);
    B.on(json({ ok: true, from: "b" }, 202, { "x-request-id": "rid-b" }));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
    const call = api.post("jobs", {
      json: { model: "premium", steps: 50, prompt: "waves" },
      headers: { "idempotency-key": "k-3" },
    });
    const first = await A.nth(1);
    expect(JSON.parse(first.body)).toEqual({ model: "standard", steps: 30, prompt: "waves" });
    await clock.advance(DELAY);
    const res = await call;
    expect(B.hits[0]?.body).toBe(first.body);
    expect(B.hits[0]?.headers["idempotency-key"]).toBe("k-3");
    expect(res.status).toBe(202);
    expect(res.headers.get("x-request-id")).toBe("rid-b");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium", attempts: 2 });
    expect(await closed(first)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});
