/**
 * Outside-in attack on the four fixes of today's main (CHANGELOG "### Fixed", first four entries; commits 6b8a6e4 and
 * 0300209), by variations, on every path they touch: `respond`, `transform` and `validate` schemas under
 * `timeout.attempt`; `run()` refused on a configured chain; a pass-over or a refused redirect hop as a use for
 * `breaker.maxHosts`; a breaker's reason named as the `retry` event names the failure.
 *
 * Docs:
 * - docs/fallback.md: "Under `timeout.attempt`, a `respond` or `transform` that has not settled within it fails its
 *   endpoint with the attempt's `TimeoutError` (nothing was sent: the call moves on, whatever its method), as a
 *   request that gets no headers in time does; a late answer is released. Without it, only an abort or
 *   `timeout.total` ends one that never settles."; "`validate` reads at most `maxReplayBytes` of the body, within
 *   `timeout.attempt` (else 30 s) … and so does one whose schema throws or rejects, or has not settled within that
 *   time again once the body was read (the answer is kept …)"; "under `timeout.total` alone, the read goes on until
 *   the deadline, which then rejects the call"; "a run its caller aborted, or that `timeout.total` ended, is not
 *   counted, nor the endpoint it was waiting on; under `timeout.attempt` an endpoint that hangs counts as failed";
 *   "it runs through `resilience.fetch` only, so its `add`, `execute` and `run` throw a `TypeError` that says so";
 *   "An abort, or `timeout.total` passing, rejects the call with the caller's reason or the `TimeoutError` … that
 *   answer … is released". JSDoc of `FallbackEndpointCommon.transform`/`.validate` and `RespondEndpoint.respond`
 *   (src/fallback/fallback-options.ts), `FallbackChains.chain` (src/http/stages.ts).
 * - docs/breakers.md: "The reason it gives (the `breaker` event's, `health()`'s `lastError`) names the last failure
 *   as the `retry` event does: `status 503`, `attempt timeout`, `connection refused`, `network error`";
 *   `BreakerOptions.maxHosts` JSDoc "least recently used evicted first"; SECURITY.md (no secret in events,
 *   `health()`, `debugInfo()`).
 * - docs/retry.md "## Bodies": "the layer also stops listening when a call settles, but for one listener it keeps on
 *   a signal it links a timeout or a hedge to, however many calls that signal serves, … it costs no memory per call
 *   on a signal that lives long".
 * - docs/cloudflare.md: `504` on a timeout ("as timed out when every endpoint it tried timed out and the rest were
 *   open"), a `503` passed on when it was the call's only request.
 *
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError`, `isTimeoutError`, `isCircuitOpenError`,
 * `memoryStore` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` (./cloudflare, run in Node as a plain handler), `FallbackChain` (./policies), `TestClock`
 * (./testing) for every timer (`pending()` read after each call settles); four node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) and a refused origin; `ReadableStream` bodies whose `cancel` is observed; Node's
 * `getEventListeners` on the caller's `AbortSignal`.
 *
 * Paths: plain chain call, hedged chain (a respond timing out while a hedge runs, a hedge winning while a respond
 * hangs, a schema hanging while the hedge starts), keyless POST through a `transform` that times out (plain and
 * hedged, a stream body and one past `maxReplayBytes`), `Request` input, `timeout.total` shorter than
 * `timeout.attempt`, a caller's abort, stacked layers (each way round), the ky client, `resilientProxy` (chain
 * routes, health JSON), degradation rewrite before a chain, adaptive order and `statistics()`, followed redirects
 * (`Request` and ky), a shared `memoryStore`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the same session, so plain `it`):
 * 1. docs/retry.md "the layer also stops listening when a call settles, but for one listener it keeps on a signal it
 *    links a timeout or a hedge to, however many calls that signal serves, … it costs no memory per call on a signal
 *    that lives long". Observed: in a chain without `hedge` and without `timeout.total`, each call whose `respond`,
 *    `transform` or async `validate` schema never settles (now cut by `timeout.attempt`, the call settled) leaves one
 *    more `abort` listener on the caller's signal: 2, 3, 4 after three calls, where an endpoint whose request hangs
 *    leaves the one link (1, 1, 1), as does the same `respond` in a hedged chain or under `timeout.total` (each entry
 *    then runs under a signal of its own). Each listener holds the hanging work's promise chain until that signal
 *    aborts or the work settles, which for a never-settling one is never. Cause: src/fallback/try-endpoints.ts
 *    `ownWork` wraps the work in `untilAborted(work, signal, drop)` (which removes its listener only when the work
 *    settles) and then `untilTimeout(…)`, which settles the call at the timeout but leaves `untilAborted`'s listener
 *    on the caller's own signal; src/fallback/validate-response.ts `validateResponse` does the same for the schema.
 *
 * Held (plain `it`):
 * - A hedged chain: a 503, then a `respond` that hangs, a hedge (b, hanging) started at 50 ms, the respond cut at
 *   100 ms with `fallback` reason "TimeoutError: attempt timeout of 100 ms exceeded" and `next` "b" (the hedge
 *   running), the spare `respond` then wins, b's upstream closed, no timer left, the respond counted (1 call, 0
 *   successes, 100 ms); its late answer's body cancelled. A hedge that wins while a respond hangs: the respond counted
 *   as a loser, its late answer cancelled, no timer left.
 * - A keyless POST whose `transform` times out (plain, hedged, a `Request` input, a stream body, a body past
 *   `maxReplayBytes`): the next endpoint gets the POST once with its body, nothing sent to the first, its breaker
 *   hears nothing, `attempts` 1; moving on happens at 100 ms, not before.
 * - `timeout.total` (300) shorter than `timeout.attempt` (1000): the total's `TimeoutError` at 300, no timer left,
 *   the respond and the run uncounted, its late answer cancelled. A caller's abort during a hanging respond: the
 *   caller's reason, no timer left, uncounted, the late answer cancelled.
 * - A respond answering after its timeout when it was the last endpoint: the call resolves with the 503 an earlier
 *   endpoint gave, the late body cancelled. Every endpoint a hanging `transform` or `respond`:
 *   `FallbackExhaustedError` of `TimeoutError`s (`phase` attempt, `attempts` 0), `cause` the last, at 200 ms.
 * - Stacked layers: an inner chain moving past its hanging respond serves the outer call; an outer chain moving a
 *   keyless POST past its hanging transform into an inner layer; an outer layer's attempt timeout aborting the inner
 *   call during a hanging respond (no timer left, the late answer cancelled). The ky client; `resilientProxy` (200
 *   from the next endpoint with `x-resilience-endpoint`; 504 when every endpoint's transform or respond hung; a
 *   keyless POST with `retry.idempotencyKey` answered 503 then a timed-out respond: the 503 passed on with
 *   `Retry-After`). Degradation: the hanging respond saw the rewritten body, the next endpoint got it.
 * - Adaptive order moves an endpoint whose transform timed out below the one that served; a respond is asked once
 *   under `retry`, not retried. No unhandled rejection from a respond or transform rejecting after its timeout.
 * - `validate`: with no timeout, a schema that never settles fails the body 30 s after the read and the chain moves
 *   on (not at 29 999 ms); under `timeout.total` alone the deadline rejects the call, the next endpoint unsent; a
 *   keyless POST whose schema times out stops there with its answer whole; hedged, the hedge starts and wins.
 * - `run()` on a configured chain is refused with the `TypeError` (directly, with `hedgeDelay`, from a `respond`
 *   during the layer's own run, from a `fallback` listener inside the run), nothing sent, statistics unchanged; a
 *   generic chain of the same layer, a `FallbackChain` of ./policies, another layer's chain of the same name and the
 *   layer's fetch down another chain, all called during the run, run.
 * - `maxHosts`: a hedged chain's pass-over, a pass-over of the host a `transform` sends to, a pass-over in a layer
 *   that learnt of the open host through a shared `memoryStore`, and a redirect hop refused (a `Request`, the ky
 *   client) each keep the open host; the idle one is evicted, the dead host sent nothing again.
 * - Breaker reasons: connection refused (retry event, breaker event, `health()` `lastError` and `reason`,
 *   `debugInfo()`), attempt timeout of a chain endpoint and of a redirect hop to a half-open host, connection reset,
 *   a transport error quoting `user:pass@` and `?api_key=` ("network error", no secret anywhere), a second layer
 *   through `memoryStore`, `resilientProxy`'s health JSON.
 *
 * Docs-silent (not pinned):
 * - Stacked layers: a respond's or transform's `TimeoutError` (nothing sent, per docs/fallback.md) reaches a layer
 *   in front as "attempt timeout": that layer takes it as maybe processed (a keyless POST is not retried) and its
 *   breaker for the first endpoint's host counts a failure and opens ("1 failure in a row (last: attempt
 *   timeout)") though that host was never contacted. docs/retry.md's "takes the request as not sent only when …"
 *   states a necessary condition only.
 * - A hedged endpoint stopped while its `transform` still ran is not counted (CHANGELOG says so), while the same
 *   transform cut by `timeout.attempt` counts as failed: an endpoint whose slow `transform` keeps losing to its hedge
 *   never moves down in adaptive order, where docs/fallback.md says a losing hedge counts and "all are counted".
 * - A schema whose `validate` returns no result at once fails the body with the reason "invalid body: validate did
 *   not settle within 30000 ms" (under `timeout.total` alone, "within undefined ms"): it settled.
 * - A `transform` gets `timeout.attempt` and the send after it another: an endpoint may take twice that in all.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  memoryStore,
  type Resilience,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
const d = httpUpstream();
serveDuringFile(a, b, c, d);

const never = new Promise<never>(() => {});

const json =
  (body: unknown, status = 200) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const hang = (_hit: Hit): void => {};

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<NonNullable<Parameters<typeof createResilience>[0]>, "fallback">;

function chainLayer(
  endpoints: Chain["endpoints"],
  extra: Omit<Chain, "name" | "endpoints"> = {},
  options: Options = {},
) {
  return createResilience({ retry: false, ...options, fallback: fallback([{ name: "j", endpoints, ...extra }]) });
}

/** Real I/O turns (no clock moves) until `done()`: the servers' answers travel meanwhile. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}

interface Recorded {
  chain: string;
  from: string;
  reason: string;
  next: string | undefined;
}

function recordFallbacks(layer: ReturnType<typeof createResilience>): Recorded[] {
  const events: Recorded[] = [];
  layer.on("fallback", (event) => {
    events.push({ ...event });
  });
  return events;
}

/** A promise settled from outside, and whether its work was entered. */
function gate<T>() {
  let settle!: (value: T) => void;
  let entered = 0;
  const promise = new Promise<T>((resolve) => {
    settle = resolve;
  });
  return {
    promise,
    settle,
    enter(): Promise<T> {
      entered++;
      return promise;
    },
    entered: () => entered,
  };
}

/** A response whose stream body says when it was cancelled or read; large enough to be cancelled, not drained. */
function watchedResponse(text = "late") {
  const seen = { cancelled: false, pulled: 0 };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      seen.pulled++;
      // More than the 64 KiB a release drains: it cancels.
      controller.enqueue(new Uint8Array(70 * 1024).fill(65));
      if (seen.pulled > 3) controller.close();
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { response: new Response(body, { headers: { "x-from": text } }), seen };
}

describe("1. respond and transform under timeout.attempt", () => {
  it("hedged: a respond that times out while a hedge runs fails, names the hedge next, and the spare wins", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(hang);
    const r = gate<Response>();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
        { name: "b", url: `${b.base}/v1` },
        { name: "c", respond: () => new Response("spare") },
      ],
      { hedge: { delay: 50 } },
      { clock, timeout: { attempt: 100 } },
    );
    const events = recordFallbacks(layer);
    let outcome = "pending";
    const call = layer.fetch(`${a.base}/v1/x`).then(
      async (res) => {
        outcome = `${res.status} ${getResilienceInfo(res)?.endpoint} ${await res.text()}`;
      },
      (error: unknown) => {
        outcome = String(error);
      },
    );
    await until(() => r.entered() === 1);
    await clock.advance(50);
    const hedge = await b.nth(1);
    await flush();
    expect(outcome).toBe("pending");
    await clock.advance(50);
    await call;
    expect(outcome).toBe("200 c spare");
    expect(events).toEqual([
      { chain: "j", from: "a", reason: "status 503", next: "r" },
      { chain: "j", from: "r", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "b" },
    ]);
    await hedge.closed;
    expect(clock.pending()).toBe(0);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.r).toMatchObject({ calls: 1, successes: 0, meanLatencyMs: 100 });
    expect(stats.fallbacks.c).toMatchObject({ calls: 1, successes: 1 });
    // The respond answers after all: its answer is released (its body cancelled).
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
  });

  it("hedged: a hedge that wins while a respond hangs stops it; the respond's late answer is released", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const r = gate<Response>();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
        { name: "b", url: `${b.base}/v1` },
      ],
      { hedge: { delay: 50 } },
      { clock, timeout: { attempt: 1000 } },
    );
    const call = layer.fetch(`${a.base}/v1/x`);
    await until(() => r.entered() === 1);
    await clock.advance(50);
    const res = await call;
    expect(await res.json()).toEqual({ ok: true });
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(clock.pending()).toBe(0);
    expect(layer.fallback.chain("j").statistics().fallbacks.r).toMatchObject({ calls: 1, successes: 0 });
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
  });

  for (const hedged of [false, true]) {
    it(`a keyless POST whose transform times out moves on, nothing sent to its endpoint (${hedged ? "hedged" : "plain"})`, async () => {
      const clock = new TestClock();
      b.on(json({ ok: true }));
      const t = gate<never>();
      const layer = chainLayer(
        [
          { name: "a", url: `${a.base}/v1`, transform: () => t.enter() },
          { name: "b", url: `${b.base}/v1` },
        ],
        hedged ? { hedge: { delay: 500 } } : {},
        { clock, timeout: { attempt: 100 } },
      );
      const events = recordFallbacks(layer);
      const call = layer.fetch(`${a.base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "cat" }),
      });
      await until(() => t.entered() === 1);
      await clock.advance(99);
      await flush();
      expect(b.hits.length).toBe(0);
      await clock.advance(1);
      const res = await call;
      expect(await res.json()).toEqual({ ok: true });
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 1 });
      expect(b.hits.map((h) => [h.method, h.path, h.body])).toEqual([["POST", "/v1/jobs", '{"prompt":"cat"}']]);
      expect(events).toEqual([
        { chain: "j", from: "a", reason: "TimeoutError: attempt timeout of 100 ms exceeded", next: "b" },
      ]);
      expect(clock.pending()).toBe(0);
      expect(a.hits.length).toBe(0);
      // Nothing was sent: the declared host's breaker heard nothing.
      expect(layer.health().breakers[a.host]?.failureCount ?? 0).toBe(0);
    });
  }

  it("a Request input: a keyless POST whose transform times out reaches the next endpoint with its body", async () => {
    const clock = new TestClock();
    c.on(json({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, transform: () => never },
        { name: "b", url: `${b.base}/v1`, transform: () => never },
        { name: "c", url: `${c.base}/v1` },
      ],
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const call = clock.run(
      layer.fetch(
        new Request(`${a.base}/v1/jobs?x=1`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "dog" }),
        }),
      ),
    );
    const res = await call;
    expect(res.status).toBe(200);
    expect(c.hits.map((h) => [h.method, h.path, h.body])).toEqual([["POST", "/v1/jobs?x=1", '{"prompt":"dog"}']]);
    expect(a.hits.length + b.hits.length).toBe(0);
    expect(clock.now()).toBe(200);
  });

  it("timeout.total shorter than timeout.attempt ends a hanging respond with the total's TimeoutError, uncounted", async () => {
    const clock = new TestClock();
    a.on(busy);
    const r = gate<Response>();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
        { name: "c", respond: () => new Response("spare") },
      ],
      {},
      { clock, timeout: { attempt: 1000, total: 300 } },
    );
    const call = rejection(layer.fetch(`${a.base}/v1/x`));
    await until(() => r.entered() === 1);
    await clock.advance(300);
    const error = await call;
    expect(isTimeoutError(error)).toBe(true);
    expect(error).toMatchObject({ phase: "total", timeout: 300 });
    expect(clock.pending()).toBe(0);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.r).toMatchObject({ calls: 0 });
    expect(stats.fallbacks.c).toMatchObject({ calls: 0 });
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
  });

  it("an abort during a hanging respond rejects with the caller's reason and leaves no timer", async () => {
    const clock = new TestClock();
    a.on(busy);
    const r = gate<Response>();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
        { name: "c", respond: () => new Response("spare") },
      ],
      { hedge: { delay: 5000 } },
      { clock, timeout: { attempt: 1000, total: 10_000 } },
    );
    const controller = new AbortController();
    const reason = new Error("caller left");
    const call = rejection(layer.fetch(`${a.base}/v1/x`, { signal: controller.signal }));
    await until(() => r.entered() === 1);
    await clock.advance(500);
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(clock.pending()).toBe(0);
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
    expect(layer.fallback.chain("j").statistics().fallbacks.r).toMatchObject({ calls: 0 });
  });

  it("a respond answering after its timeout: the chain moved on, the late body is cancelled, the error counted", async () => {
    const clock = new TestClock();
    a.on(busy);
    const r = gate<Response>();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
      ],
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const call = layer.fetch(`${a.base}/v1/x`);
    await until(() => r.entered() === 1);
    await clock.advance(100);
    // The last answer any endpoint gave: a's 503.
    const res = await call;
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a" });
    await res.text();
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
    expect(late.seen.pulled).toBeLessThanOrEqual(2);
  });

  it("every endpoint a hanging respond or transform: FallbackExhaustedError of TimeoutErrors with 0 attempts", async () => {
    const clock = new TestClock();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, transform: () => never },
        { name: "r", respond: () => never },
      ],
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const error = (await clock.run(rejection(layer.fetch(`${a.base}/v1/x`)))) as FallbackExhaustedError;
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    for (const name of ["a", "r"]) expect(error.errors[name]).toMatchObject({ phase: "attempt", attempts: 0 });
    expect(error.cause).toBe(error.errors.r);
    expect(a.hits.length).toBe(0);
    expect(clock.now()).toBe(200);
  });
});

/** A schema that accepts `{ ok: true }`, after `hold` when given (a refinement that asks a service). */
function schemaOf(hold?: () => Promise<unknown>): StandardSchemaLike {
  return {
    "~standard": {
      version: 1,
      vendor: "attack",
      validate: async (value: unknown) => {
        if (hold) await hold();
        return (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] };
      },
    },
  };
}

describe("1. the same on every path", () => {
  /** Chain a (503) → r (a respond that never settles) → b (answers), `timeout.attempt` 100. */
  const hangingRespond = (r: (req: EndpointRequest) => Promise<Response>): Chain["endpoints"] => [
    { name: "a", url: `${a.base}/v1` },
    { name: "r", respond: r },
    { name: "b", url: `${b.base}/v1` },
  ];

  it("stacked layers: the inner chain moves on past its hanging respond, the outer layer gets the answer", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const r = gate<Response>();
    const inner = chainLayer(
      hangingRespond(() => r.enter()),
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const outer = createResilience({ retry: false, clock, timeout: { attempt: 1000 }, fetch: inner.fetch });
    const call = outer.fetch(`${a.base}/v1/x`);
    await until(() => r.entered() === 1);
    await clock.advance(100);
    const res = await call;
    expect(await res.json()).toEqual({ ok: true });
    expect(clock.pending()).toBe(0);
    expect(outer.health().breakers[a.host]?.failureCount ?? 0).toBe(0);
  });

  it("stacked layers: the outer chain moves a keyless POST on past its hanging transform into the inner layer", async () => {
    const clock = new TestClock();
    b.on(json({ ok: true }));
    const inner = createResilience({ retry: false, clock });
    const outer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, transform: () => never },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock, timeout: { attempt: 100 }, fetch: inner.fetch },
    );
    const res = await clock.run(
      outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: JSON.stringify({ prompt: "cat" }) }),
    );
    expect(await res.json()).toEqual({ ok: true });
    expect(b.hits.length).toBe(1);
    expect(a.hits.length).toBe(0);
  });

  it("the ky client: the chain moves on past a hanging respond", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const r = gate<Response>();
    const api = createClient({
      prefix: `${a.base}/v1`,
      resilience: chainLayer(
        hangingRespond(() => r.enter()),
        {},
        { clock, timeout: { attempt: 100 } },
      ),
    });
    const call = api.get("x").json();
    await until(() => r.entered() === 1);
    await clock.advance(100);
    expect(await call).toEqual({ ok: true });
  });

  it("resilientProxy: a chain route moves on past a hanging respond; one where every endpoint hangs answers 504", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/v1", chain: { name: "j", endpoints: hangingRespond(() => never) } },
        {
          path: "/v2",
          chain: {
            name: "k",
            endpoints: [
              { name: "t", url: `${c.base}/v2`, transform: () => never },
              { name: "r", respond: () => never },
            ],
          },
        },
      ],
      resilience: { retry: false, clock, timeout: { attempt: 100 } },
    });
    const ctx = { waitUntil() {} };
    const served = await clock.run(proxy.fetch(new Request("https://worker.example/v1/x"), {}, ctx));
    expect(served.status).toBe(200);
    expect(served.headers.get("x-resilience-endpoint")).toBe("b");
    expect(await served.json()).toEqual({ ok: true });
    const timedOut = await clock.run(proxy.fetch(new Request("https://worker.example/v2/x"), {}, ctx));
    expect(timedOut.status).toBe(504);
    expect(c.hits.length).toBe(0);
  });

  it("degradation rewrite before the chain: the hanging respond saw the rewritten body, the next endpoint gets it", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const seen: unknown[] = [];
    const layer = createResilience({
      retry: false,
      clock,
      timeout: { attempt: 100 },
      degradation: degradation({ rules: [{ match: `${a.base}/v1`, params: { steps: "steps" } }] }),
      fallback: fallback([
        {
          name: "j",
          endpoints: hangingRespond((req) => {
            seen.push(req.body);
            return never;
          }),
        },
      ]),
    });
    layer.degradation?.setLevel("medium");
    const res = await clock.run(
      layer.fetch(`${a.base}/v1/gen`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ steps: 50, prompt: "cat" }),
      }),
    );
    expect(res.status).toBe(200);
    expect(seen).toEqual([{ steps: 30, prompt: "cat" }]);
    expect(JSON.parse(b.hits[0]?.body ?? "")).toEqual({ steps: 30, prompt: "cat" });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
  });

  it("adaptive order: an endpoint whose transform timed out is ranked after the one that served", async () => {
    const clock = new TestClock();
    b.on(json({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, transform: () => never },
        { name: "b", url: `${b.base}/v1` },
      ],
      { order: "adaptive" },
      { clock, timeout: { attempt: 100 } },
    );
    const chain = layer.fallback.chain("j");
    expect(chain.ordered()).toEqual(["a", "b"]);
    const res = await clock.run(layer.fetch(`${a.base}/v1/x`));
    await res.text();
    expect(chain.ordered()).toEqual(["b", "a"]);
    const stats = chain.statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0, meanLatencyMs: 100 });
    expect(stats.overallSuccessRate).toBe(1);
    expect(layer.health().fallback.j?.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
  });

  it("a respond is not retried: under retry it is asked once and fails its endpoint at timeout.attempt", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(json({ ok: true }));
    const r = gate<Response>();
    const layer = chainLayer(
      hangingRespond(() => r.enter()),
      {},
      {
        clock,
        timeout: { attempt: 100 },
        retry: { maxAttempts: 3, initialDelay: 10, maxDelay: 10, jitter: "none" },
      },
    );
    const res = await clock.run(layer.fetch(`${a.base}/v1/x`));
    expect(res.status).toBe(200);
    expect(r.entered()).toBe(1);
    expect(a.hits.length).toBe(3);
  });
});

describe("1. validate schemas under the read's time", () => {
  it("no timeout configured: a schema that never settles fails the body 30 s after the read, the chain moves on", async () => {
    const clock = new TestClock();
    a.on(json({ ok: true }));
    b.on(json({ ok: true }));
    let asked = 0;
    const layer = chainLayer(
      [
        {
          name: "a",
          url: `${a.base}/v1`,
          validate: schemaOf(() => {
            asked++;
            return never;
          }),
        },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock },
    );
    const events = recordFallbacks(layer);
    const call = layer.fetch(`${a.base}/v1/x`);
    await until(() => asked === 1);
    await clock.advance(29_999);
    await flush();
    expect(b.hits.length).toBe(0);
    await clock.advance(1);
    const res = await call;
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(events[0]).toMatchObject({ from: "a", next: "b" });
    expect(events[0]?.reason).toMatch(/^invalid body: /);
    expect(clock.pending()).toBe(0);
  });

  it("timeout.total alone: a schema that never settles holds until the deadline, which rejects the call", async () => {
    const clock = new TestClock();
    a.on(json({ ok: true }));
    let asked = 0;
    const layer = chainLayer(
      [
        {
          name: "a",
          url: `${a.base}/v1`,
          validate: schemaOf(() => {
            asked++;
            return never;
          }),
        },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock, timeout: { total: 60_000 } },
    );
    const call = rejection(layer.fetch(`${a.base}/v1/x`));
    await until(() => asked === 1);
    await clock.advance(59_999);
    await flush();
    expect(b.hits.length).toBe(0);
    await clock.advance(1);
    expect(await call).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(b.hits.length).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("a keyless POST whose schema times out stops there: the answer is given whole, the next endpoint not sent", async () => {
    const clock = new TestClock();
    a.on(json({ ok: true, job: 1 }));
    let asked = 0;
    const layer = chainLayer(
      [
        {
          name: "a",
          url: `${a.base}/v1`,
          validate: schemaOf(() => {
            asked++;
            return never;
          }),
        },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const call = layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "{}" });
    await until(() => asked === 1);
    await clock.advance(100);
    const res = await call;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, job: 1 });
    expect(getResilienceInfo(res)?.endpoint).toBe("a");
    expect(b.hits.length).toBe(0);
  });

  it("hedged: while a schema hangs the hedge starts and wins; the hanging answer is released", async () => {
    const clock = new TestClock();
    a.on(json({ ok: true, from: "a" }));
    b.on(json({ ok: true, from: "b" }));
    let asked = 0;
    const layer = chainLayer(
      [
        {
          name: "a",
          url: `${a.base}/v1`,
          validate: schemaOf(() => {
            asked++;
            return never;
          }),
        },
        { name: "b", url: `${b.base}/v1` },
      ],
      { hedge: { delay: 50 } },
      { clock, timeout: { attempt: 1000 } },
    );
    const call = layer.fetch(`${a.base}/v1/x`);
    await until(() => asked === 1);
    await clock.advance(50);
    const res = await call;
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    expect(clock.pending()).toBe(0);
  });
});

describe("2. run() on a configured chain is refused; other chains run", () => {
  const twoEndpoints = (): Chain["endpoints"] => [
    { name: "a", url: `${a.base}/v1` },
    { name: "b", url: `${b.base}/v1` },
  ];

  it("refused with a TypeError from the chain's own run, from a respond during a run, from a listener", async () => {
    a.on(busy);
    const refusals: unknown[] = [];
    let generic: unknown;
    let nested: unknown;
    let layer!: ReturnType<typeof chainLayer>;
    layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "j",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            {
              name: "r",
              respond: async () => {
                // Inside the layer's run: the configured chain's own run is still the caller's, refused.
                refusals.push(await rejection(layer.fallback.chain("j").run({} as never)));
                // A generic chain of the same layer and the layer's fetch down another chain still run.
                const g = layer.fallback.chain<number, string>("g");
                if (g.ordered().length === 0) g.add(async (n) => `g${n}`, { name: "one" });
                generic = await g.run(7);
                const other = await layer.fetch(`${c.base}/v3/y`);
                nested = `${other.status} ${getResilienceInfo(other)?.endpoint}`;
                await other.text();
                return new Response("from r");
              },
            },
          ],
        },
        { name: "k", endpoints: [{ name: "c", url: `${c.base}/v3` }] },
      ]),
    }) as ReturnType<typeof chainLayer>;
    layer.on("fallback", () => {
      // A listener runs inside the run, synchronously: the configured chain's run is refused there too.
      refusals.push(rejection(layer.fallback.chain("k").run({} as never)));
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.text()).toBe("from r");
    expect(refusals).toHaveLength(2);
    for (const refusal of refusals) {
      const error = await refusal;
      expect(error).toBeInstanceOf(TypeError);
      expect(String(error)).toMatch(/runs through resilience\.fetch only/);
    }
    expect(generic).toMatchObject({ ok: true, value: "g7", name: "one" });
    expect(nested).toBe("200 c");
    expect(c.hits.length).toBe(1);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.overallSuccessRate).toBe(1);
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.r).toMatchObject({ calls: 1, successes: 1 });
    expect(layer.fallback.chain("k").statistics().fallbacks.c).toMatchObject({ calls: 1, successes: 1 });
  });

  it("a hedged configured chain still serves fetch after its run was refused; FallbackChain from ./policies runs", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on(json({ ok: true }));
    const layer = chainLayer(twoEndpoints(), { hedge: { delay: 10 } }, { clock });
    const chain = layer.fallback.chain("j");
    expect(await rejection(chain.run({} as never))).toBeInstanceOf(TypeError);
    expect(await rejection(chain.run({} as never, { hedgeDelay: 5 }))).toBeInstanceOf(TypeError);
    const call = layer.fetch(`${a.base}/v1/x`);
    await a.nth(1);
    await clock.advance(10);
    const res = await call;
    expect(await res.json()).toEqual({ ok: true });
    expect(chain.statistics().overallSuccessRate).toBe(1);
    const own = new FallbackChain<number, number>("own");
    own.add(async (n) => n * 2, { name: "double" });
    expect(await own.run(21)).toMatchObject({ ok: true, value: 42 });
    // A chain of another layer by the same name is that layer's own generic chain: it runs.
    const plain = createResilience({
      fallback: fallback([{ name: "z", endpoints: [{ name: "z", url: `${c.base}/z` }] }]),
    });
    const same = plain.fallback.chain<number, number>("j");
    same.add(async (n) => n + 1, { name: "inc" });
    expect(await same.run(1)).toMatchObject({ ok: true, value: 2 });
  });
});

function answer(status: number, headers: Record<string, string> = {}) {
  return (h: Hit) => {
    h.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) h.res.setHeader(k, v);
    h.res.end(status === 200 ? "ok" : "no");
  };
}
const keys = (layer: Resilience) => Object.keys(layer.health().breakers).sort();

describe("3. a pass-over or a refused hop is a use for breaker.maxHosts", () => {
  it("hedged chain: the pass-over keeps the open host, the idle one is evicted", async () => {
    const clock = new TestClock(1_000_000);
    a.on(answer(503));
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, maxHosts: 3 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1000 },
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    await (await layer.fetch(`${c.base}/`)).text();
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    await (await layer.fetch(`${d.base}/`)).text();
    expect(keys(layer)).toEqual([a.host, b.host, d.host].sort());
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(a.hits).toHaveLength(1);
  });

  it("a transform that sends the call to an open host: that pass-over is a use", async () => {
    const clock = new TestClock(1_000_000);
    a.on(answer(503));
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, maxHosts: 3 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${d.base}/v1`, transform: (req) => ({ ...req, url: `${a.base}/v9` }) },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const events = recordFallbacks(layer);
    await (await layer.fetch(`${a.base}/x`)).text();
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    await (await layer.fetch(`${c.base}/`)).text();
    expect((await layer.fetch(`${d.base}/v1/x`)).status).toBe(200);
    expect(events.at(-1)).toEqual({ chain: "gen", from: "p", reason: "circuit open", next: "q" });
    await (await layer.fetch(`${d.base}/other`)).text();
    expect(keys(layer)).toEqual([a.host, b.host, d.host].sort());
    expect((await layer.fetch(`${d.base}/v1/x`)).status).toBe(200);
    expect(a.hits).toHaveLength(1);
  });

  it("a shared store: another layer's open host, passed over here, is a use here", async () => {
    const clock = new TestClock(1_000_000);
    const store = memoryStore();
    a.on(answer(503));
    const opener = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1 } });
    await (await opener.fetch(`${a.base}/x`)).text();
    const layer = createResilience({
      clock,
      store,
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
    await (await layer.fetch(`${c.base}/`)).text();
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    await (await layer.fetch(`${d.base}/`)).text();
    expect(keys(layer)).toEqual([a.host, b.host, d.host].sort());
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    expect(a.hits).toHaveLength(1);
  });

  for (const via of ["Request", "ky"] as const) {
    it(`a redirect hop refused by an open breaker is a use (${via} input)`, async () => {
      const clock = new TestClock(1_000_000);
      const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 1, maxHosts: 3 } });
      b.on(answer(503));
      a.on(answer(307, { location: `${b.base}/t` }));
      await (await layer.fetch(`${b.base}/x`)).text();
      await (await layer.fetch(`${c.base}/`)).text();
      const api = createClient({ prefix: a.base, resilience: layer });
      const refused = await rejection(via === "ky" ? api.get("x") : layer.fetch(new Request(`${a.base}/x`)));
      expect(isCircuitOpenError(refused) && refused.key === b.host && refused.afterRedirect).toBe(true);
      await (await layer.fetch(`${d.base}/`)).text();
      expect(keys(layer)).toEqual([a.host, b.host, d.host].sort());
      expect(await rejection(layer.fetch(`${a.base}/x`))).toSatisfy(isCircuitOpenError);
      expect(b.hits).toHaveLength(1);
    });
  }
});

describe("4. a breaker's reason names the failure as the retry event does", () => {
  function watch(layer: Resilience) {
    const retries: string[] = [];
    const breakers: Array<string | null> = [];
    layer.on("retry", (e) => {
      retries.push(e.reason);
    });
    layer.on("breaker", (e) => {
      breakers.push(e.reason);
    });
    return { retries, breakers };
  }

  it("connection refused: retry, breaker event, health() and debugInfo() agree", async () => {
    const clock = new TestClock();
    const dead = await refusedOrigin();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const seen = watch(layer);
    await clock.run(rejection(layer.fetch(`${dead}/x?api_key=SECRETK`)));
    expect(seen.retries).toEqual(["connection refused"]);
    expect(seen.breakers).toEqual(["2 failures in a row (last: connection refused)"]);
    const host = new URL(dead).host;
    expect(layer.health().breakers[host]).toMatchObject({
      lastError: "connection refused",
      reason: "2 failures in a row (last: connection refused)",
    });
    expect(layer.debugInfo().breakers[host]).toMatchObject({ lastError: "connection refused" });
    expect(JSON.stringify(layer.debugInfo())).not.toContain("SECRETK");
  });

  it("a chain endpoint that hangs: attempt timeout, in the breaker event and health()", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on(json({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock, timeout: { attempt: 100 }, breaker: { failureThreshold: 1 } },
    );
    const seen = watch(layer);
    const res = await clock.run(layer.fetch(`${a.base}/v1/x`));
    expect(res.status).toBe(200);
    expect(seen.breakers).toEqual(["1 failure in a row (last: attempt timeout)"]);
    expect(layer.health().breakers[a.host]?.lastError).toBe("attempt timeout");
  });

  it("a reset connection: connection reset, as the retry event says", async () => {
    a.on((hit) => {
      hit.req.socket.destroy();
    });
    const layer = createResilience({
      retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const seen = watch(layer);
    await rejection(layer.fetch(`${a.base}/x`));
    expect(seen.retries).toEqual(["connection reset"]);
    expect(seen.breakers).toEqual(["2 failures in a row (last: connection reset)"]);
    expect(layer.health().breakers[a.host]?.lastError).toBe("connection reset");
  });

  it("a transport's error quoting a URL with secrets: network error, no secret anywhere", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 2, initialDelay: 0, maxDelay: 0, jitter: "none" },
      breaker: { failureThreshold: 2 },
      fetch: async () => {
        throw new TypeError("upstream https://svc:PWSECRET@gen.example/v1?api_key=KEYSECRET went away");
      },
    });
    const seen = watch(layer);
    await rejection(layer.fetch("https://gen.example/v1/x?token=TOKSECRET"));
    expect(seen.retries).toEqual(["network error"]);
    expect(seen.breakers).toEqual(["2 failures in a row (last: network error)"]);
    const text = JSON.stringify([layer.health(), layer.debugInfo(), seen]);
    for (const secret of ["PWSECRET", "KEYSECRET", "TOKSECRET"]) expect(text).not.toContain(secret);
  });

  it("a redirect hop that hangs at a half-open host: that host's breaker says attempt timeout", async () => {
    const clock = new TestClock(1_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      timeout: { attempt: 100 },
      breaker: { failureThreshold: 1, timeout: 1000 },
    });
    const seen = watch(layer);
    b.on(answer(503));
    await (await layer.fetch(`${b.base}/x`)).text();
    await clock.advance(1000);
    b.on(hang);
    a.on(answer(307, { location: `${b.base}/t` }));
    const call = rejection(layer.fetch(`${a.base}/x`));
    await b.nth(2);
    await clock.advance(100);
    expect(await call).toSatisfy(isTimeoutError);
    expect(seen.breakers.at(-1)).toMatch(/\(last: attempt timeout\)$/);
    expect(layer.health().breakers[b.host]?.lastError).toBe("attempt timeout");
  });

  it("resilientProxy's health JSON and a second layer through memoryStore name it too", async () => {
    const dead = await refusedOrigin();
    const host = new URL(dead).host;
    const store = memoryStore();
    const first = createResilience({ store, retry: false, breaker: { failureThreshold: 1 } });
    await rejection(first.fetch(`${dead}/x`));
    const second = createResilience({ store, retry: false });
    expect(second.health().breakers[host]?.lastError ?? "").not.toMatch(/Error/);
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: dead }],
      resilience: { retry: false, breaker: { failureThreshold: 1 } },
    });
    const ctx = { waitUntil() {} };
    expect((await proxy.fetch(new Request("https://worker.example/x"), {}, ctx)).status).toBe(502);
    const health = await (await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx)).json();
    expect(health.breakers[host]).toMatchObject({ state: "open", lastError: "connection refused" });
  });
});

describe("1. bodies sent once: a transform that timed out sent nothing", () => {
  for (const kind of ["stream", "oversize"] as const) {
    it(`a ${kind} body: the transform times out, nothing sent, the next endpoint gets the body`, async () => {
      const clock = new TestClock();
      b.on(json({ ok: true }));
      const layer = chainLayer(
        [
          { name: "a", url: `${a.base}/v1`, transform: () => never },
          { name: "b", url: `${b.base}/v1` },
        ],
        {},
        { clock, timeout: { attempt: 100 }, maxReplayBytes: 16 },
      );
      const text = JSON.stringify({ prompt: "a long prompt past the replay limit" });
      const body =
        kind === "stream"
          ? new ReadableStream<Uint8Array>({
              start(controller) {
                controller.enqueue(new TextEncoder().encode(text));
                controller.close();
              },
            })
          : text;
      const outcome = await clock.run(
        layer.fetch(`${a.base}/v1/jobs`, { method: "POST", body, duplex: "half" } as RequestInit).then(
          async (res) => `${res.status} ${await res.text()}`,
          (e: unknown) => String(e),
        ),
      );
      expect(outcome).toBe('200 {"ok":true}');
      expect(b.hits.map((h) => h.body)).toEqual([text]);
      expect(a.hits.length).toBe(0);
    });
  }
});

describe("1. stacked aborts, late rejections, the proxy's pass-on", () => {
  it("stacked: an outer layer's attempt timeout aborts the inner call during a hanging respond; no timer left", async () => {
    const clock = new TestClock();
    a.on(busy);
    const r = gate<Response>();
    const inner = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => r.enter() },
        { name: "c", respond: () => new Response("spare") },
      ],
      {},
      { clock, timeout: { attempt: 1000 } },
    );
    const outer = createResilience({ retry: false, clock, timeout: { attempt: 100 }, fetch: inner.fetch });
    const call = rejection(outer.fetch(`${a.base}/v1/x`));
    await until(() => r.entered() === 1);
    await clock.advance(100);
    const error = await call;
    expect(error).toMatchObject({ name: "TimeoutError", phase: "attempt" });
    expect(clock.pending()).toBe(0);
    const late = watchedResponse();
    r.settle(late.response);
    await until(() => late.seen.cancelled);
  });

  it("a respond and a transform that reject after their timeout leave no unhandled rejection", async () => {
    const clock = new TestClock();
    b.on(json({ ok: true }));
    let failRespond!: (e: unknown) => void;
    let failTransform!: (e: unknown) => void;
    const layer = chainLayer(
      [
        {
          name: "a",
          url: `${a.base}/v1`,
          transform: () =>
            new Promise((_, reject) => {
              failTransform = reject;
            }),
        },
        {
          name: "r",
          respond: () =>
            new Promise((_, reject) => {
              failRespond = reject;
            }),
        },
        { name: "b", url: `${b.base}/v1` },
      ],
      {},
      { clock, timeout: { attempt: 100 } },
    );
    const { unhandled } = await watchUnhandled(async () => {
      const res = await clock.run(layer.fetch(`${a.base}/v1/x`));
      expect(res.status).toBe(200);
      failTransform(new Error("late transform"));
      failRespond(new Error("late respond"));
      await flush();
    });
    expect(unhandled).toEqual([]);
  });

  it("resilientProxy, keyless POST with retry.idempotencyKey: a 503 then a timed-out respond passes the 503 on", async () => {
    const clock = new TestClock();
    a.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "7", "content-type": "text/plain" }).end("busy");
    });
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "j",
            endpoints: [
              { name: "a", url: `${a.base}/v1` },
              { name: "r", respond: () => never },
            ],
          },
        },
      ],
      resilience: { retry: { maxAttempts: 1, idempotencyKey: true }, clock, timeout: { attempt: 100 } },
    });
    const res = await clock.run(
      proxy.fetch(
        new Request("https://worker.example/v1/jobs", { method: "POST", body: "{}" }),
        {},
        { waitUntil() {} },
      ),
    );
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.headers.get("x-resilience-endpoint")).toBe("a");
  });

  it("a schema that settles at once with no result fails the body; the chain moves on", async () => {
    a.on(json({ ok: true }));
    b.on(json({ ok: true, from: "b" }));
    const broken: StandardSchemaLike = {
      "~standard": { version: 1, vendor: "broken", validate: () => undefined as never },
    };
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: broken },
      { name: "b", url: `${b.base}/v1` },
    ]);
    const events = recordFallbacks(layer);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.json()).toEqual({ ok: true, from: "b" });
    // Docs-silent: the reason says it "did not settle within 30000 ms", though it settled at once.
    expect(events[0]?.reason).toMatch(/^invalid body: /);
  });
});

describe("5. the layer stops listening to the caller's signal when the call settles", () => {
  /** Three calls down `endpoints` under one long-lived signal: the abort listeners on it after each settled. */
  async function listenersAfter(endpoints: Chain["endpoints"], extra: Omit<Chain, "name" | "endpoints"> = {}) {
    const clock = new TestClock();
    const layer = chainLayer(endpoints, extra, { clock, timeout: { attempt: 100 } });
    const controller = new AbortController();
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await clock.run(layer.fetch(`${a.base}/v1/x`, { signal: controller.signal }));
      expect(res.status).toBe(200);
      await res.text();
      counts.push(getEventListeners(controller.signal, "abort").length);
    }
    return counts;
  }

  it("control: an endpoint whose request hangs leaves the one link it keeps, however many calls", async () => {
    a.on(hang);
    b.on(json({ ok: true }));
    expect(
      await listenersAfter([
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v1` },
      ]),
    ).toEqual([1, 1, 1]);
  });

  it("control: the same hanging respond in a hedged chain leaves one", async () => {
    a.on(busy);
    b.on(json({ ok: true }));
    expect(
      await listenersAfter(
        [
          { name: "a", url: `${a.base}/v1` },
          { name: "r", respond: () => never },
          { name: "b", url: `${b.base}/v1` },
        ],
        { hedge: { delay: 1000 } },
      ),
    ).toEqual([1, 1, 1]);
  });

  it("a respond that never settles: one more listener per call stays on the signal", async () => {
    a.on(busy);
    b.on(json({ ok: true }));
    // Observed: [2, 3, 4].
    expect(
      await listenersAfter([
        { name: "a", url: `${a.base}/v1` },
        { name: "r", respond: () => never },
        { name: "b", url: `${b.base}/v1` },
      ]),
    ).toEqual([1, 1, 1]);
  });

  it("a transform that never settles: one more listener per call stays on the signal", async () => {
    b.on(json({ ok: true }));
    // Observed: [2, 3, 4].
    expect(
      await listenersAfter([
        { name: "a", url: `${a.base}/v1`, transform: () => never },
        { name: "b", url: `${b.base}/v1` },
      ]),
    ).toEqual([1, 1, 1]);
  });

  it("a validate schema that never settles: one more listener per call stays on the signal", async () => {
    a.on(json({ ok: true }));
    b.on(json({ ok: true }));
    // Observed: [2, 3, 4].
    expect(
      await listenersAfter([
        { name: "a", url: `${a.base}/v1`, validate: schemaOf(() => never) },
        { name: "b", url: `${b.base}/v1` },
      ]),
    ).toEqual([1, 1, 1]);
  });
});
