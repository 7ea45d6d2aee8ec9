/**
 * Outside-in attack on the newest fixes on main (CHANGELOG.md, the top three entries under the first "### Fixed":
 * a running `respond` holds back a `transform`'s keyless POST, a `respond`'s value that throws when looked at, a
 * `validate` that throws what cannot become text, a chain `transform`'s breaker key at every level), on every path.
 *
 * Docs:
 * - docs/fallback.md `hedge`: "once a `transform` has made one that may not be sent twice, a POST without a key, no
 *   hedge starts while it is out (until its answer is judged, `validate` included), and no endpoint is sent beside
 *   one: such an endpoint is held back, not counted, and tried once nothing else runs"; CHANGELOG: "A running
 *   `respond` now counts as out, as a request does."
 * - docs/fallback.md `respond`: "One that throws or rejects sent nothing, so the call moves on to the next endpoint
 *   whatever its method, as after a `transform` that fails; so does one that answers with no `Response` fetch would
 *   give (`undefined`, the Cache API's miss; `Response.error()`; any other value), a `TypeError` naming the
 *   endpoint. Under `timeout.attempt`, a `respond` or `transform` that has not settled within it fails its endpoint
 *   with the attempt's `TimeoutError` (nothing was sent: the call moves on, whatever its method)".
 * - docs/fallback.md: "or a 2xx whose JSON fails `validate`"; "So does a 2xx that fails `validate`: the endpoint took
 *   the job, and the call resolves with that answer as it is"; "and so does one whose schema throws or rejects, or
 *   has not settled within that time again once the body was read (the answer is kept, as for any other failed
 *   body"; CHANGELOG: "The body fails as for any thrown error now, named as "a thrown value that cannot be read"."
 * - docs/degradation.md: "a `breaker.key` that reads a query parameter a rule rewrites reads the caller's value (on
 *   a chain endpoint whose `transform` changes the URL too, each parameter the `transform` left as it came, at the
 *   rule's value or the caller's, is keyed with the caller's, as the caller wrote it and in its place, at every
 *   level, however the `transform` wrote it back (`url.searchParams.set` re-encodes the whole query, `/` as `%2F`);
 *   one the `transform` set itself is keyed as it set it, unless it set the value it was sent, which cannot be told
 *   from one it left)"; CHANGELOG: "two breakers for one request, so a circuit opened at `full` did not refuse it at
 *   `medium`. Every parameter the `transform` left as it came is keyed with the caller's pairs now, at every level."
 *
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError` (root), `fallback` (./fallback),
 * `degradation` (./degradation; wrapped to reach the proxy's level), `createClient` (./ky), `resilientProxy`
 * (./cloudflare), `TestClock`, `recordEvents` (./testing). Two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) and a refused origin; `respond`s whose answer each test gives or withholds;
 * Standard Schemas written inline; `breaker.key = host + search` with `failureThreshold: 1` and B always 503, so the
 * call at `full` opens the breaker the same call at `medium` must meet. Every unhandled rejection fails the test.
 *
 * Paths: plain chain (GET, keyless POST), hedged chains (`order: "adaptive"` putting a `respond` first; a `respond`
 * second or third; two `respond`s), `timeout.attempt`, an abort, the ky client and a `resilientProxy` chain route
 * (hedge holds and breaker keys), degradation at `full` and `medium`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-second session, so plain
 * `it`):
 * 1. docs/fallback.md "So does a 2xx that fails `validate`: … the call resolves with that answer as it is" / "the
 *    answer is kept". Observed: a schema whose issue has a revoked Proxy as a `path` segment (or as its `path`)
 *    loses the answer: a keyless POST rejects with `FallbackExhaustedError` "… stopped after "a", which may have
 *    processed the request … (a: Cannot perform 'has' on a proxy that has been revoked)" instead of its 200, and a
 *    GET moves on with the reason "TypeError: …", not "invalid body…". (A revoked `message`, a revoked `key` inside
 *    a segment, a Symbol or a null-prototype object anywhere are read, held.) Source:
 *    src/fallback/validate-response.ts: `"key" in p` and `first?.path?.length` are read outside any guard.
 * 2. docs/degradation.md "a `breaker.key` that reads a query parameter a rule rewrites reads the caller's value
 *    (… one the `transform` set itself is keyed as it set it, unless it set the value it was sent …)". Observed: a
 *    `transform` that appends the value it was sent once more (`model=premium&n=1&model=premium`) is keyed at
 *    `medium` with the rule's value, `…?model=standard&n=1&model=standard`: a second breaker, and the call the
 *    circuit opened at `full` refuses is sent to the provider again at `medium`.
 * 3. The same sentence, "at every level". Observed: the caller's `?n=1&?model=premium&model=premium` (a pair named
 *    `?model`, as the URL parser, `URLSearchParams` and the rule read it, beside `model`) with a `searchParams.set`
 *    transform is keyed at `medium` `…&%3Fmodel=premium&model=standard&api-version=2`: a second breaker, sent again.
 *    Source: src/fallback/try-endpoints.ts `pairsOf` decodes each raw pair with `new URLSearchParams(raw)`, which
 *    drops a pair's leading `?`, so `?model` is counted as `model` and the values never read the same.
 * 4. The same sentence, "as the caller wrote it … however the `transform` wrote it back". Observed: `x??model=
 *    openai/gpt-4o&n=1` (its first pair named `?model`) through `searchParams.set` is keyed with the transform's
 *    spelling, `…?%3Fmodel=openai%2Fgpt-4o&n=1&api-version=2`, not the caller's `??model=openai/gpt-4o`. Same source.
 *
 * Held (plain `it`):
 * - Hedge holds: a `respond` tried first (adaptive order) that answers, hangs until `timeout.attempt` (event
 *   "TimeoutError", then the POST goes once), rejects, answers no Response, answers 503 (the held POST goes once and
 *   answers) or 404 (the chain ends, nothing sent); a `respond` second (a network endpoint failing beside it frees
 *   nothing) or third (held behind the held POST, never called); two `respond`s (the first rejecting frees nothing,
 *   the second wins); a transform's keyed POST goes at the delay beside the `respond`; an abort while the POST is
 *   held rejects with the reason, nothing sent, no timer; the same through ky and a `resilientProxy` chain route.
 * - `respond` answering a revoked Proxy, an object whose `then` getter throws, a revoked Proxy of a Response: a
 *   `TypeError` naming the endpoint, a keyless POST moves on; one throwing or rejecting with a revoked Proxy as the
 *   last endpoint of a hedged chain: `FallbackExhaustedError` with both endpoints.
 * - `validate` throwing or rejecting a Symbol ("Symbol(s)"), a null-prototype object or a revoked Proxy ("a thrown
 *   value that cannot be read"): a GET moves on, a keyless POST keeps its 200; an issue's `message` or a path `key`
 *   of those kinds: the reason readable ("invalid body at a.a thrown value that cannot be read: m"), the answer kept.
 * - Breaker keys: `searchParams.set`, `.sort()`, `new URLSearchParams(…).toString()`, `searchParams.delete` on
 *   `prompt=a%20cat&model=openai/gpt-4o&n=1`: one breaker, the `medium` call refused (plain, hedged, ky,
 *   `resilientProxy`); calls differing in `n` or `model` get their own breakers at `medium`.
 *
 * Docs-silent (not pinned):
 * - An async `respond` returning a revoked Proxy (or a Promise resolved with one) rejects, as the platform makes
 *   it, with "Cannot perform 'get' on a proxy that has been revoked": the layer sees a rejection, which names no
 *   endpoint (the doc's "one that … rejects" case; nothing the layer could look at).
 * - A `transform` that pins the model to the caller's own value with `searchParams.set` sends the same URL at both
 *   levels, yet is keyed `…?model=openai/gpt-4o…` at `full` (the value it was sent: taken as left) and
 *   `…?model=openai%2Fgpt-4o…` at `medium` (set): two breakers, as the doc's own exception read. Changed with the
 *   fix of defect 2 (a pair holding the caller's own value is the caller's pair): now one breaker, and the test
 *   asserts that.
 * - With `.sort()`, `n=1&model=premium` and `model=premium&n=1` share a breaker (the same URL is sent).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  type ResilienceOptions,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

// Every unhandled rejection while the file runs is a failure of the test that caused it.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
});

const pending: Promise<unknown>[] = [];
const release: Array<() => void> = [];
afterEach(async () => {
  for (const r of release.splice(0)) r();
  await Promise.allSettled(pending.splice(0));
  await turns(3);
  expect(unhandled.splice(0)).toEqual([]);
});

const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const json =
  (value: unknown) =>
  (hit: Hit): void => {
    hit.res.writeHead(200, { "content-type": "application/json", "x-from": "upstream" }).end(JSON.stringify(value));
  };
const hang = (_hit: Hit): void => {};

async function turns(n = 25): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}

type Chain = Parameters<typeof fallback>[0][number];
type Endpoint = Chain["endpoints"][number];
type Transform = NonNullable<Endpoint["transform"]>;
type Options = Omit<NonNullable<Parameters<typeof createResilience>[0]>, "fallback">;

function chainLayer(endpoints: Endpoint[], extra: Omit<Chain, "name" | "endpoints"> = {}, options: Options = {}) {
  return createResilience({ retry: false, ...options, fallback: fallback([{ name: "j", endpoints, ...extra }]) });
}

async function outcome(call: Promise<Response>): Promise<string> {
  return call.then(
    async (res) => `${res.status} ${getResilienceInfo(res)?.endpoint} ${await res.text()}`,
    (error: unknown) => `${(error as Error).name}: ${(error as Error).message}`,
  );
}

const revoked = (target: object = {}): unknown => {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
};

/** A `respond` whose answer the test gives (or withholds), and how often it was called. */
function controlled() {
  const state: { calls: number; settle?: { ok: (r: Response) => void; fail: (e: unknown) => void } } = { calls: 0 };
  const respond = (): Promise<Response> =>
    new Promise<Response>((ok, fail) => {
      state.calls++;
      state.settle = { ok, fail };
      release.push(() => ok(new Response("late")));
    });
  return { state, respond };
}

/**
 * The declared first endpoint (a chain's first needs a `url`), ranked last by `order: "adaptive"` (ties go to
 * `expectedQuality`): the `respond` is tried first. Never reached in these tests.
 */
const first = (): Endpoint[] => [{ name: "a", url: `${A.base}/v1`, expectedQuality: 0.1 }];

/** A `transform` that makes a paid job: a GET turned into a POST without an Idempotency-Key. */
const paidJob: Transform = (req) => ({ ...req, method: "POST", body: { job: 1 } });

// ---------------------------------------------------------------------------
// (a) A running `respond` holds back a transform's keyless POST.

describe("(a) a running respond holds back a transform's POST without a key", () => {
  it("respond first: the POST is held at the delay; the respond's answer wins and the POST is never sent", async () => {
    const clock = new TestClock();
    const cache = controlled();
    const layer = chainLayer(
      [
        ...first(),
        { name: "cache", respond: cache.respond, expectedQuality: 1 },
        { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
      ],
      { hedge: { delay: 100 }, order: "adaptive" },
      { clock },
    );
    const call = outcome(layer.fetch(`${A.base}/v1/x`));
    await until(() => cache.state.calls === 1);
    await clock.advance(100);
    await turns();
    expect(B.hits).toEqual([]);
    cache.state.settle?.ok(new Response("cached"));
    expect(await call).toBe("200 cache cached");
    await turns(5);
    expect([A.hits.length, B.hits.length]).toEqual([0, 0]);
    expect(clock.pending()).toBe(0);
  });

  it("held: a POST the transform keys is not held beside the respond (it goes at the delay); an abort while one is held sends nothing", async () => {
    const keyed: Transform = (req) => {
      req.headers.set("idempotency-key", "job-1");
      return { ...req, method: "POST", body: { job: 1 } };
    };
    for (const [name, transform] of [
      ["keyed", keyed],
      ["keyless", paidJob],
    ] as const) {
      A.reset();
      B.reset();
      B.on(hang);
      const clock = new TestClock();
      const cache = controlled();
      const layer = chainLayer(
        [
          ...first(),
          { name: "cache", respond: cache.respond, expectedQuality: 1 },
          { name: "b", url: `${B.base}/v2`, transform, expectedQuality: 0.5 },
        ],
        { hedge: { delay: 100 }, order: "adaptive" },
        { clock },
      );
      const controller = new AbortController();
      const call = outcome(layer.fetch(`${A.base}/v1/x`, { signal: controller.signal }));
      await until(() => cache.state.calls === 1);
      await clock.advance(100);
      await turns();
      expect([name, B.hits.map((h) => [h.method, h.headers["idempotency-key"]])]).toEqual([
        name,
        name === "keyed" ? [["POST", "job-1"]] : [],
      ]);
      controller.abort(new Error("caller left"));
      expect([name, await call]).toEqual([name, "Error: caller left"]);
      await turns(5);
      expect([name, B.hits.length, A.hits.length, clock.pending()]).toEqual([name, name === "keyed" ? 1 : 0, 0, 0]);
    }
  });

  it("respond first hanging until timeout.attempt: the held POST then goes, once, and answers the call", async () => {
    const clock = new TestClock();
    const cache = controlled();
    B.on(json({ ok: true }));
    const layer = chainLayer(
      [
        ...first(),
        { name: "cache", respond: cache.respond, expectedQuality: 1 },
        { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
      ],
      { hedge: { delay: 100 }, order: "adaptive" },
      { clock, timeout: { attempt: 1000 } },
    );
    const recorder = recordEvents(layer);
    const call = outcome(layer.fetch(`${A.base}/v1/x`));
    await until(() => cache.state.calls === 1);
    await clock.advance(100);
    await turns();
    expect(B.hits).toEqual([]);
    await clock.advance(900);
    expect(await call).toBe('200 b {"ok":true}');
    expect(B.hits.map((h) => [h.method, h.body])).toEqual([["POST", '{"job":1}']]);
    expect(recorder.of("fallback").map((e) => [e.from, e.reason.split(":")[0], e.next])).toEqual([
      ["cache", "TimeoutError", "b"],
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("respond first that rejects, or answers a 503, after the delay: the held POST goes once; a 404 ends the chain with nothing sent", async () => {
    for (const how of ["reject", "object", "503", "404"] as const) {
      B.reset();
      B.on(json({ ok: how }));
      const clock = new TestClock();
      const cache = controlled();
      const layer = chainLayer(
        [
          ...first(),
          { name: "cache", respond: cache.respond, expectedQuality: 1 },
          { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
        ],
        { hedge: { delay: 100 }, order: "adaptive" },
        { clock },
      );
      const call = outcome(layer.fetch(`${A.base}/v1/x`));
      await until(() => cache.state.calls === 1);
      await clock.advance(100);
      await turns();
      expect([how, B.hits.length]).toEqual([how, 0]);
      if (how === "reject") cache.state.settle?.fail(new Error("miss"));
      // An answer that is no Response: a TypeError naming the endpoint, and the respond is no longer out.
      else if (how === "object") cache.state.settle?.ok({ status: 200 } as Response);
      else cache.state.settle?.ok(new Response(`s${how}`, { status: Number(how) }));
      const got = await call;
      await turns(5);
      if (how === "404") {
        expect([how, got, B.hits.length]).toEqual([how, "404 cache s404", 0]);
      } else {
        expect([how, got, B.hits.map((h) => h.method)]).toEqual([how, `200 b {"ok":"${how}"}`, ["POST"]]);
      }
      expect(clock.pending()).toBe(0);
    }
  });

  it("respond second and third: a network endpoint that fails while the respond still runs does not free the POST", async () => {
    // [a (network, hangs), cache (respond), b (POST)] and [a, b (POST), cache]: b is never beside the respond.
    for (const order of ["a-cache-b", "a-b-cache"] as const) {
      A.reset();
      B.reset();
      A.on(hang);
      B.on(json({ ok: order }));
      const clock = new TestClock();
      const cache = controlled();
      const endpoints: Record<string, Endpoint> = {
        a: { name: "a", url: `${A.base}/v1` },
        cache: { name: "cache", respond: cache.respond },
        b: { name: "b", url: `${B.base}/v2`, transform: paidJob },
      };
      const layer = chainLayer(
        order.split("-").map((n) => endpoints[n] as Endpoint),
        { hedge: { delay: 100 } },
        { clock },
      );
      const call = outcome(layer.fetch(`${A.base}/v1/x`));
      const first = await A.nth(1);
      await clock.advance(100);
      await turns(5);
      await clock.advance(100);
      await turns();
      expect([order, B.hits.length]).toEqual([order, 0]);
      busy(first);
      await turns();
      // With the respond running (a-cache-b), b is still held; with b held first (a-b-cache), b goes now, alone.
      if (order === "a-cache-b") {
        expect([order, B.hits.length, cache.state.calls]).toEqual([order, 0, 1]);
        cache.state.settle?.ok(new Response("cached"));
        expect(await call).toBe("200 cache cached");
        await turns(5);
        expect(B.hits.length).toBe(0);
      } else {
        expect(await call).toBe(`200 b {"ok":"${order}"}`);
        expect([order, B.hits.length, cache.state.calls]).toEqual([order, 1, 0]);
      }
      expect(clock.pending()).toBe(0);
    }
  });

  it("a hedge of two responds: the POST waits for both; the first rejecting frees nothing, the second's answer wins", async () => {
    const clock = new TestClock();
    const r1 = controlled();
    const r2 = controlled();
    const layer = chainLayer(
      [
        ...first(),
        { name: "r1", respond: r1.respond, expectedQuality: 1 },
        { name: "r2", respond: r2.respond, expectedQuality: 0.9 },
        { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
      ],
      { hedge: { delay: 100 }, order: "adaptive" },
      { clock },
    );
    const call = outcome(layer.fetch(`${A.base}/v1/x`));
    await until(() => r1.state.calls === 1);
    await clock.advance(100);
    await until(() => r2.state.calls === 1);
    await clock.advance(100);
    await turns();
    expect(B.hits).toEqual([]);
    r1.state.settle?.fail(new Error("r1 miss"));
    await turns();
    expect(B.hits).toEqual([]);
    r2.state.settle?.ok(new Response("r2"));
    expect(await call).toBe("200 r2 r2");
    await turns(5);
    expect(B.hits).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("through the ky client and a resilientProxy chain route: the POST is held beside the running respond, sent once after it failed", async () => {
    // ky
    {
      const clock = new TestClock();
      const cache = controlled();
      B.on(json({ via: "ky" }));
      const layer = chainLayer(
        [
          ...first(),
          { name: "cache", respond: cache.respond, expectedQuality: 1 },
          { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
        ],
        { hedge: { delay: 100 }, order: "adaptive" },
        { clock },
      );
      const api = createClient({ prefix: `${A.base}/v1`, resilience: layer });
      const call = api.get("x").json();
      await until(() => cache.state.calls === 1);
      await clock.advance(100);
      await turns();
      expect(B.hits).toEqual([]);
      cache.state.settle?.fail(new Error("miss"));
      expect(await call).toEqual({ via: "ky" });
      expect(B.hits.map((h) => h.method)).toEqual(["POST"]);
    }
    // resilientProxy
    {
      B.reset();
      B.on(json({ via: "proxy" }));
      const clock = new TestClock();
      const cache = controlled();
      const proxy = resilientProxy<object>({
        routes: [
          {
            path: "/gen",
            chain: {
              name: "gen",
              hedge: { delay: 100 },
              order: "adaptive",
              endpoints: [
                ...first(),
                { name: "cache", respond: cache.respond, expectedQuality: 1 },
                { name: "b", url: `${B.base}/v2`, transform: paidJob, expectedQuality: 0.5 },
              ],
            },
          },
        ],
        resilience: { clock, retry: false },
      });
      const call = proxy.fetch(new Request("https://worker.example/gen/x"), {}, ctx);
      await until(() => cache.state.calls === 1);
      await clock.advance(100);
      await turns();
      expect(B.hits).toEqual([]);
      cache.state.settle?.ok(new Response("cached", { status: 503 }));
      const res = await call;
      expect([res.status, res.headers.get("x-resilience-endpoint"), await res.text()]).toEqual([
        200,
        "b",
        '{"via":"proxy"}',
      ]);
      expect(B.hits.map((h) => h.method)).toEqual(["POST"]);
      expect(clock.pending()).toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------
// (b) A respond's answer that throws when looked at.

describe("(b) a respond that answers a value that throws when looked at", () => {
  const thenThrows = (): unknown =>
    // biome-ignore lint/suspicious/noThenProperty: a value whose `then` getter throws, on purpose
    Object.defineProperty({}, "then", {
      get() {
        throw new Error("then getter");
      },
    });

  it("a revoked Proxy and an object whose `then` getter throws (sync and in a Promise): a TypeError naming the endpoint, the call moves on", async () => {
    const dead = await refusedOrigin();
    B.on(json({ ok: true }));
    const layer = chainLayer([
      { name: "r", url: `${dead}/v1` },
      { name: "rev", respond: () => revoked() as Response },
      { name: "thengetter", respond: () => thenThrows() as Response },
      { name: "revresp", respond: () => revoked(new Response("x")) as Response },
      { name: "b", url: `${B.base}/v2` },
    ]);
    const recorder = recordEvents(layer);
    expect(await outcome(layer.fetch(`${dead}/v1/x`, { method: "POST", body: "{}" }))).toBe('200 b {"ok":true}');
    const reasons = recorder.of("fallback").map((e) => [e.from, e.reason]);
    for (const name of ["rev", "thengetter", "revresp"]) {
      expect(reasons).toContainEqual([
        name,
        `TypeError: network error: fallback endpoint "${name}": respond answered with no Response fetch would give`,
      ]);
    }
  });

  it("held: a respond throwing (or rejecting with) a revoked Proxy as the last endpoint: FallbackExhaustedError, readable", async () => {
    for (const rejects of [false, true]) {
      const dead = await refusedOrigin();
      const layer = chainLayer(
        [
          { name: "r", url: `${dead}/v1` },
          {
            name: "odd",
            respond: () => {
              if (rejects) return Promise.reject(revoked(new Error("x")));
              throw revoked(new Error("x"));
            },
          },
        ],
        { hedge: { delay: 100 } },
      );
      const error = await layer.fetch(`${dead}/v1/x`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FallbackExhaustedError);
      expect(Object.keys((error as FallbackExhaustedError).errors)).toEqual(["r", "odd"]);
      expect(typeof (error as Error).message).toBe("string");
    }
  });

  it("docs-silent: a Promise that resolves to a revoked Proxy (an async respond returning one) rejects as the platform makes it", async () => {
    const dead = await refusedOrigin();
    const layer = chainLayer([
      { name: "r", url: `${dead}/v1` },
      { name: "asyncrev", respond: async () => revoked() as Response },
    ]);
    const error = (await layer.fetch(`${dead}/v1/x`).catch((e: unknown) => e)) as FallbackExhaustedError;
    const odd = error.errors.asyncrev as Error;
    expect(odd).toBeInstanceOf(TypeError);
    // The promise machinery read its `then` before the layer saw the value: the respond *rejected*.
    expect(odd.message).toMatch(/revoked/);
  });
});

// ---------------------------------------------------------------------------
// (c) A validate that throws, rejects or answers with values that cannot become text.

function schema(validate: (value: unknown) => unknown): StandardSchemaLike {
  return { "~standard": { version: 1, vendor: "test", validate } } as StandardSchemaLike;
}

describe("(c) validate with values that cannot become text", () => {
  it("held: throwing or rejecting a Symbol, a null-prototype object, a revoked Proxy: the answer kept, the reason readable", async () => {
    const thrown: Array<[string, () => unknown, string]> = [
      ["symbol", () => Symbol("s"), "Symbol(s)"],
      ["null-proto", () => Object.create(null), "a thrown value that cannot be read"],
      ["revoked", () => revoked(new Error("x")), "a thrown value that cannot be read"],
    ];
    for (const [what, make, text] of thrown) {
      for (const rejects of [false, true]) {
        A.reset();
        B.reset();
        A.on(json({ ok: 1 }));
        B.on(json({ ok: 2 }));
        const layer = chainLayer([
          {
            name: "a",
            url: `${A.base}/v1`,
            validate: schema(() => {
              if (rejects) return Promise.reject(make());
              throw make();
            }),
          },
          { name: "b", url: `${B.base}/v2` },
        ]);
        const recorder = recordEvents(layer);
        expect([what, rejects, await outcome(layer.fetch(`${A.base}/v1/x`))]).toEqual([
          what,
          rejects,
          '200 b {"ok":2}',
        ]);
        expect(recorder.of("fallback").map((e) => e.reason)).toEqual([`invalid body: validate failed (${text})`]);
        // A keyless POST: the answer as it is.
        expect([what, await outcome(layer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }))]).toEqual([
          what,
          '200 a {"ok":1}',
        ]);
        expect(B.hits.length).toBe(1);
      }
    }
  });

  it("held: an issue whose message, or a path key, is a Symbol, a null-prototype object or a revoked Proxy: the answer kept, the reason readable", async () => {
    const sym = Symbol("k");
    const cases: Array<[string, unknown, string]> = [
      ["message symbol", { message: Symbol("m") }, "invalid body: Symbol(m)"],
      ["message null-proto", { message: Object.create(null) }, "invalid body: a thrown value that cannot be read"],
      ["message revoked", { message: revoked() }, "invalid body: a thrown value that cannot be read"],
      ["path symbol", { message: "m", path: [sym, { key: sym }] }, "invalid body at Symbol(k).Symbol(k): m"],
      [
        "path key null-proto",
        { message: "m", path: [{ key: Object.create(null) }] },
        "invalid body at a thrown value that cannot be read: m",
      ],
      [
        "path key revoked",
        { message: "m", path: ["a", { key: revoked() }] },
        "invalid body at a.a thrown value that cannot be read: m",
      ],
    ];
    for (const [what, issue, reason] of cases) {
      A.reset();
      B.reset();
      A.on(json({ ok: 1 }));
      B.on(json({ ok: 2 }));
      const layer = chainLayer([
        { name: "a", url: `${A.base}/v1`, validate: schema(() => ({ issues: [issue] })) },
        { name: "b", url: `${B.base}/v2` },
      ]);
      const recorder = recordEvents(layer);
      expect([what, await outcome(layer.fetch(`${A.base}/v1/x`))]).toEqual([what, '200 b {"ok":2}']);
      expect([what, recorder.of("fallback").map((e) => e.reason)]).toEqual([what, [reason]]);
      expect([what, await outcome(layer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }))]).toEqual([
        what,
        '200 a {"ok":1}',
      ]);
    }
  });

  // Defect 1.
  it("defect 1: an issue whose path holds a revoked Proxy as a segment (or is one): the body fails, a keyless POST resolves with its 200", async () => {
    const cases: Array<[string, unknown]> = [
      ["segment revoked", { message: "m", path: [revoked()] }],
      ["path revoked", { message: "m", path: revoked([]) }],
    ];
    const got: unknown[] = [];
    for (const [what, issue] of cases) {
      A.reset();
      B.reset();
      A.on(json({ ok: 1 }));
      B.on(json({ ok: 2 }));
      const layer = chainLayer([
        { name: "a", url: `${A.base}/v1`, validate: schema(() => ({ issues: [issue] })) },
        { name: "b", url: `${B.base}/v2` },
      ]);
      const recorder = recordEvents(layer);
      got.push([what, await outcome(layer.fetch(`${A.base}/v1/x`, { method: "POST", body: "{}" }))]);
      await outcome(layer.fetch(`${A.base}/v1/x`));
      got.push([what, recorder.of("fallback").map((e) => e.reason.startsWith("invalid body"))]);
    }
    expect(got).toEqual([
      ["segment revoked", '200 a {"ok":1}'],
      ["segment revoked", [true]],
      ["path revoked", '200 a {"ok":1}'],
      ["path revoked", [true]],
    ]);
  });
});

// ---------------------------------------------------------------------------
// (d) A chain transform's breaker key, at full and at medium.

const models = [
  ["premium", "standard", "basic"],
  ["openai/gpt-4o", "openai/gpt-4o-mini"],
];

const toB =
  (edit: (u: URL) => void): Transform =>
  (req) => {
    const u = new URL(req.url.replace(`${A.base}/v2`, `${B.base}/v3`));
    edit(u);
    return { ...req, url: u.href };
  };

const transforms: Record<string, Transform> = {
  set: toB((u) => u.searchParams.set("api-version", "2")),
  sort: toB((u) => u.searchParams.sort()),
  reencode: toB((u) => {
    u.search = new URLSearchParams(u.search).toString();
  }),
  drop: toB((u) => u.searchParams.delete("n")),
};

/**
 * A layer with a one-endpoint chain (A `/v2`, sent to B by `transform`), keyed by host and query, B always 503
 * with `failureThreshold: 1`: the call at `full`, then the same at `medium`. Returns what B got and the breakers.
 */
async function keyedAtTwoLevels(path: string, transform: Transform, via: "fetch" | "ky" | "hedge" = "fetch") {
  const clock = new TestClock(0);
  const keys: string[] = [];
  const layer = createResilience({
    clock,
    retry: false,
    breaker: {
      key: (u: URL) => {
        keys.push(`${u.host}${u.search}`);
        return `${u.host}${u.search}`;
      },
      failureThreshold: 1,
    },
    degradation: degradation({ models, rules: [{ params: { model: { query: "model" } } }] }),
    fallback: fallback([
      {
        name: "gen",
        ...(via === "hedge" ? { hedge: { delay: 100 } } : {}),
        endpoints: [
          ...(via === "hedge" ? [{ name: "h", url: `${A.base}/h` }] : []),
          { name: "a", url: `${A.base}/v2`, transform },
        ],
      },
    ]),
  });
  const recorder = recordEvents(layer);
  B.on(busy);
  A.on(hang);
  const once = async (): Promise<void> => {
    if (via === "ky") {
      await createClient({ prefix: `${A.base}/v2`, resilience: layer, throwHttpErrors: false })
        .get(path)
        .then((r) => r.text())
        .catch(() => {});
      return;
    }
    const base = via === "hedge" ? `${A.base}/h` : `${A.base}/v2`;
    const call = layer.fetch(`${base}/${path}`).then(
      (r) => r.text(),
      () => {},
    );
    if (via === "hedge") {
      // "h" hangs past the delay; "a" goes beside it (or is refused by its open breaker); then "h" answers.
      const hedged = await A.nth(A.hits.length + 1);
      await clock.advance(100);
      await turns(10);
      json({ ok: true })(hedged);
    }
    await call;
  };
  await once();
  const sentAtFull = B.hits.length;
  layer.degradation?.setLevel("medium");
  await once();
  const opened = recorder
    .of("breaker")
    .filter((e) => e.to === "open")
    .map((e) => e.key);
  return { sentAtFull, sentAtMedium: B.hits.length - sentAtFull, opened, paths: B.hits.map((h) => h.path) };
}

describe("(d) a chain transform's breaker key is the same at full and at medium", () => {
  it("held: searchParams.set, .sort(), new URLSearchParams().toString(), a dropped parameter: one breaker, the medium call refused", async () => {
    const path = "x?prompt=a%20cat&model=openai/gpt-4o&n=1";
    for (const [name, transform] of Object.entries(transforms)) {
      B.reset();
      const out = await keyedAtTwoLevels(path, transform);
      expect([name, out.sentAtFull, out.sentAtMedium, out.opened.length]).toEqual([name, 1, 0, 1]);
    }
  });

  it("held: the same through a hedged chain and through ky", async () => {
    const path = "x?prompt=a%20cat&model=openai/gpt-4o&n=1";
    for (const via of ["hedge", "ky"] as const) {
      for (const [name, transform] of Object.entries(transforms)) {
        A.reset();
        B.reset();
        const out = await keyedAtTwoLevels(path, transform, via);
        expect([via, name, out.sentAtFull, out.sentAtMedium, out.opened.length]).toEqual([via, name, 1, 0, 1]);
      }
    }
  });

  // Defect 2.
  it("defect 2: a transform that duplicates the rewritten parameter: keyed with the caller's value at medium, as at full", async () => {
    const out = await keyedAtTwoLevels(
      "x?model=premium&n=1",
      toB((u) => u.searchParams.append("model", u.searchParams.get("model") ?? "")),
    );
    expect(out.paths[0]).toBe("/v3/x?model=premium&n=1&model=premium");
    // Observed: sent again at medium (`/v3/x?model=standard&n=1&model=standard`), a second breaker opened, keyed
    // `…?model=standard&n=1&model=standard`: the rule's value, not the caller's.
    expect(out.opened).toEqual([`${B.host}?model=premium&n=1&model=premium`]);
    expect([out.sentAtFull, out.sentAtMedium]).toEqual([1, 0]);
  });

  it("held: unrelated calls do not share a breaker (another n, another model), whatever the transform", async () => {
    for (const [name, transform] of Object.entries(transforms)) {
      if (name === "drop") continue;
      B.reset();
      const clock = new TestClock(0);
      const layer = createResilience({
        clock,
        retry: false,
        breaker: { key: (u: URL) => `${u.host}${u.search}`, failureThreshold: 1 },
        degradation: degradation({ models, rules: [{ params: { model: { query: "model" } } }] }),
        fallback: fallback([{ name: "gen", endpoints: [{ name: "a", url: `${A.base}/v2`, transform }] }]),
      });
      B.on(busy);
      layer.degradation?.setLevel("medium");
      for (const q of ["model=premium&n=1", "model=premium&n=2", "model=standard&n=1", "n=1&model=premium"]) {
        await layer.fetch(`${A.base}/v2/x?${q}`).then(
          (r) => r.text(),
          () => "refused",
        );
      }
      // Four calls, four breakers (the sort transform sends the first and last alike: they may share one).
      expect([name, B.hits.length]).toEqual([name, name === "sort" ? 3 : 4]);
    }
  });

  it("held: a resilientProxy chain route with each transform: the circuit opened at full refuses the request at medium", async () => {
    for (const [name, transform] of Object.entries(transforms)) {
      B.reset();
      B.on(busy);
      const stage = degradation({ models, rules: [{ params: { model: { query: "model" } } }] });
      const held: { setLevel?: (n: string) => void } = {};
      const wrapped = {
        ...stage,
        join(parts: Parameters<typeof stage.join>[0]) {
          const joined = stage.join(parts);
          held.setLevel = (n) => (joined.handle as { setLevel(n: string): void }).setLevel(n);
          return joined;
        },
      };
      const proxy = resilientProxy<object>({
        routes: [{ path: "/gen", chain: { name: "gen", endpoints: [{ name: "a", url: `${A.base}/v2`, transform }] } }],
        resilience: {
          clock: new TestClock(0),
          retry: false,
          breaker: { key: (u: URL) => `${u.host}${u.search}`, failureThreshold: 1 },
          degradation: wrapped as unknown as ResilienceOptions["degradation"],
        },
      });
      const req = () => new Request("https://worker.example/gen/x?prompt=a%20cat&model=openai/gpt-4o&n=1");
      const full = await proxy.fetch(req(), {}, ctx);
      await full.text();
      held.setLevel?.("medium");
      const medium = await proxy.fetch(req(), {}, ctx);
      await medium.text();
      expect([name, full.status, medium.status, B.hits.length]).toEqual([name, 503, 503, 1]);
    }
  });

  // Defect 3.
  it("defect 3: a pair written `?model=` beside the rewritten `model`: the medium call keyed with the caller's value, refused", async () => {
    // `?model` is its own parameter to the URL parser, to `URLSearchParams` and to the rule, which rewrites `model`
    // alone; the transform adds `api-version` with `searchParams.set`.
    const out = await keyedAtTwoLevels("x?n=1&?model=premium&model=premium", transforms.set as Transform);
    expect(out.paths[0]).toBe("/v3/x?n=1&%3Fmodel=premium&model=premium&api-version=2");
    // Observed: sent again at medium; a second breaker keyed `…&%3Fmodel=premium&model=standard&…` (the rule's value).
    expect([out.sentAtFull, out.sentAtMedium]).toEqual([1, 0]);
    expect(out.opened).toEqual([`${B.host}?n=1&?model=premium&model=premium&api-version=2`]);
  });

  // Defect 4.
  it("defect 4: a left pair written `?model=` (a query after `??`) is keyed as the caller wrote it, not as searchParams did", async () => {
    const out = await keyedAtTwoLevels("x??model=openai/gpt-4o&n=1", transforms.set as Transform);
    expect(out.paths).toEqual(["/v3/x?%3Fmodel=openai%2Fgpt-4o&n=1&api-version=2"]);
    // Observed: keyed `…?%3Fmodel=openai%2Fgpt-4o&n=1&api-version=2`, the transform's spelling of the pair.
    expect(out.opened).toEqual([`${B.host}??model=openai/gpt-4o&n=1&api-version=2`]);
  });

  it("a transform that pins the model to the caller's own value with searchParams.set is keyed once, as the caller wrote it", async () => {
    const out = await keyedAtTwoLevels(
      "x?model=openai/gpt-4o&n=1",
      toB((u) => u.searchParams.set("model", "openai/gpt-4o")),
    );
    // The same URL would go out at both levels: one breaker, so the circuit opened at full refuses it at medium.
    // As first written (docs-silent), this asserted two breakers: at full the pair was "left" (the value it was
    // sent), at medium "set" (`model=openai%2Fgpt-4o`), and the medium call was sent again.
    expect(out.paths).toEqual(["/v3/x?model=openai%2Fgpt-4o&n=1"]);
    expect(out.opened).toEqual([`${B.host}?model=openai/gpt-4o&n=1`]);
  });
});
