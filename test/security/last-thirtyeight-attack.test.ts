/**
 * Outside-in attack on what changed today on main (6efd70a..HEAD), from outside: a `Request` body stream that fails
 * while sent past the read-ahead, a call the transport refused taking back its retry-budget deposit, a chain's
 * breaker keys read from the caller's query before a degradation rewrite, a query rule past tabs and newlines, a
 * `match` of another scheme refused, `durableObjectStore`'s own `policy`, the Cloudflare stores' and
 * `resilientProxy`'s new construction checks, `retry(fn)` naming an unreadable member by its path, and the
 * `redirect` event's timing, each driven on the paths where it applies.
 * Docs: docs/retry.md ("One larger than `maxReplayBytes` that fails later, while it is sent, fails the call with
 * fetch's `TypeError` (its `cause` the stream's error), counted as no attempt and by nothing (the host's breaker, the
 * error rate, the retry budget), as a call the platform refused is: part of it was sent, and it is not sent again",
 * "each call earns `ratio` tokens (0.1) … Earned tokens are capped at the credit of the last 100 calls");
 * docs/health-and-events.md ("A call whose `Request` body could not be read fires it …, and so does one the
 * transport refused before sending anything …, or whose `Request` body, read ahead past `maxReplayBytes`, failed
 * while it was sent, but nothing counts it: not `health()`, analytics, the degradation triggers nor the retry
 * budget", "`redirect` for each redirect the library follows, told as it turns to the next hop, before that hop's
 * host is asked"); docs/degradation.md ("The breaker key (`url.host`, or `breaker.key(url)`) is taken from the URL
 * the caller asked for, before the rewrite: a call keeps its host's breaker at every level, and a `breaker.key` that
 * reads a query parameter a rule rewrites reads the caller's value", "`rules` say where they live instead (… `{
 * query:
 * "q" }` …)", "`model` moved `model step` rungs down each ladder", "a `match` that no request URL could start with
 * (one the URL parser refuses, or of a scheme other than http(s), `htps:` or `ftp:`) … is a `ConfigError`");
 * docs/cloudflare.md ("The object applies the thresholds each report carries: the `breaker` options of the layer made
 * with the store (when several layers share one store, the last one made), or the store's own `policy` (… the rest
 * the `breaker` defaults), which every layer sharing it then applies; a `policy` the object would refuse is a
 * `TypeError` when the store is made", "Both check their options when they are made, with a `TypeError` naming the
 * store and the option: … a `scope` that is no string, a `ctx` without `waitUntil`, a `flushThreshold` that is no
 * whole number, a `policy` the object would refuse …", "its routes (a `TypeError`: each an object with one upstream
 * or one chain, never both …)"); the JSDoc of `DurableObjectStoreOptions.policy` ("as the `breaker` option takes
 * them (each one left out its default; `failureRate: undefined` turns the rate rule off). Without it, the layer made
 * with the store sends its own `breaker` thresholds"); CHANGELOG ("`retry(fn)` names an option member that cannot be
 * read … by its path, `retry.retryOn.error`").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `retry` (./policies),
 * `durableObjectStore`, `kvStore`, `resilientProxy` (./cloudflare, the proxy called in Node as a plain handler),
 * `createClient` (./ky), `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts);
 * a Durable Object namespace over real `BreakerStateObject`s (test/helpers/object-namespace.ts), one store per
 * isolate.
 * Paths: plain call, `Request` input (read ahead, and announced larger by its `content-length`), a chain, a hedge
 * (with and without an async `transform`), a followed redirect inside a hedge, the ky client, `resilientProxy` (a
 * client upload with and without `content-length`), `URL` and `Request` inputs beside string URLs.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a failing `Request` body is the caller's through a chain and when announced by
 * `content-length` (the proxy's client body too), a budget at its cap loses nothing to refused calls, a hedged
 * endpoint behind an async `transform` keeps the caller's key, `policy: null` or `[]` is refused, and a query ending
 * in a space or control character is rewritten):
 * 1. docs/retry.md / docs/health-and-events.md: a `Request` body read ahead past `maxReplayBytes` that fails while
 *    sent "fails the call with fetch's `TypeError` …, counted as no attempt and by nothing (the host's breaker, the
 *    error rate, the retry budget)". Held on a plain call and through ky; through a chain (or a hedged one: such a
 *    body is never hedged) it rejects with `FallbackExhaustedError` ("stopped after "p", which may have processed
 *    the request (its body could be sent only once)"), counted: `debugInfo().totals` 1 call 1 failure, `errorRate`
 *    1, the budget keeps the call's 0.1 token, and the chain's statistics count p as a failed call. From
 *    src/fallback/try-endpoints.ts `served()`, which turns any error but a platform refusal into
 *    `FallbackExhaustedError`, and src/http/resilient-fetch.ts `send()`, whose `callers` (left out, deposit taken
 *    back) needs `error instanceof TypeError`.
 * 2. (Fixed in the docs: docs/retry.md says since that such a body goes to fetch as it is, with its length, as
 *    workerd sends a stream of the library's making chunked, without the `content-length` an upload API may need;
 *    its failure is that attempt's network error. The tests assert that.)
 *    Same sentences, a `Request` body announced larger than `maxReplayBytes` by its `content-length` (the body is
 *    then not read ahead: "sent once, unread"), as every client upload the Worker proxy forwards carries one. The
 *    same failing stream is the host's network error: `RetryExhaustedError` (attempts 1), the host's breaker counts a
 *    failure, the error rate 1; two such uploads with `failureThreshold: 2` open a healthy host. Through
 *    `resilientProxy`: a client upload with `content-length` that fails puts a failure on the upstream's breaker and
 *    the proxy's error rate (the same upload without `content-length` counts nothing). From
 *    src/http/request/normalize-request.ts `readRequestBody` (`declared > maxReplayBytes` sends `input.body` itself)
 *    and src/http/request/replay-body.ts: only streams made by `resume` are marked in `failedSources`.
 * 3. docs/health-and-events.md "nothing counts it: … nor the retry budget" (a call the transport refused). Below the
 *    cap held; at the cap (100 healthy calls, `minPerSecond: 0`: 10 tokens), each refused call takes tokens away:
 *    10 → 9.9. From src/policies/retry-budget.ts `deposit`: the call's deposit is clamped at the cap, and the refund
 *    (`deposit(-1)` in src/http/resilient-fetch.ts) then subtracts a whole `ratio`.
 * 4. docs/degradation.md "a `breaker.key` that reads a query parameter a rule rewrites reads the caller's value",
 *    through a hedge whose first endpoint has an async `transform` that returns the URL unchanged: at `medium` that
 *    endpoint is sent under the breaker of the rewritten value (`<host> standard`), not the caller's
 *    (`<host> premium`). Held without the hedge, and with the hedge without a transform. From
 *    src/fallback/try-endpoints.ts: `call.keyedUrl` / `call.key` are one slot per call, which the hedge's
 *    `skipReason` for the next endpoint overwrites while the transform runs; `sendToEndpoint` then keys the send by
 *    `keyOf(shaped.url)`, the rewritten URL.
 * 5. docs/cloudflare.md "Both check their options when they are made …" / JSDoc "Without it, the layer made with the
 *    store sends its own `breaker` thresholds": `durableObjectStore(ns, { policy: null })` (and `policy: []`) is
 *    taken, and pins the `breaker` defaults (12 in a row) for every layer: three isolates each with
 *    `breaker: { failureThreshold: 3 }` report 6 failures and the object stays closed (without `policy` it opens).
 *    From src/cloudflare/durable-object-store.ts: `ownGiven && readStoreOptions(…)` skips `null`, and `configure`
 *    ignores the layer unless `ownGiven === undefined`; an array passes `readStoreOptions` with no keys.
 * 6. docs/degradation.md query rules, "`model` moved … rungs down" (the fix of today: "a query rule now reads a
 *    parameter as the URL parser does"): a string URL whose query ends in a space or a C0 control
 *    (`?model=premium `, `?steps=50\u0001`, a URL read from an env var or a config line) goes out as the parser reads
 *    it (`?model=premium`: the parser strips them at either end) but unrewritten at `medium`; the same URL as a `URL`
 *    or a `Request` is rewritten (`model=standard`). From src/degradation/query-edit.ts `editQuery`, which drops
 *    tabs and newlines only, reading the value `premium ` the ladder does not hold.
 *
 * Held (plain `it`):
 * - Plain `Request` body failing past the read-ahead: fetch's `TypeError` (cause the stream's error), `request`
 *   event attempts 0, breaker closed, totals 0, budget 0; the host is then served. Through ky: that `TypeError`,
 *   nothing counted. Through the proxy without `content-length`: 502, nothing counted.
 * - A chain whose every endpoint the transport refused, plain and hedged: the platform's `TypeError`, budget 0,
 *   totals 0, statistics 0, nothing sent.
 * - Breaker keys at `medium` through a hedge without transform and through an async transform without hedge: the
 *   caller's value (`premium`) on both hosts, no `standard` breaker.
 * - `durableObjectStore`'s own policy applies whatever the sharing layers' thresholds, in either order of making them
 *   (opens at the same report as a layer whose own threshold is the policy's); without it the last layer made
 *   decides; a partial policy takes the default rate rule and `failureRate: undefined` turns it off; a refused
 *   threshold or misspelt name is a `TypeError` naming `policy.…`.
 * - `kvStore` / `durableObjectStore`: a non-string `scope`, a `ctx` without `waitUntil`, a fractional
 *   `flushThreshold` are `TypeError`s naming the store and option; `resilientProxy` refuses a route that is no
 *   object and one with both `upstream` and `chain`.
 * - `retry(fn)` names `retry.retryOn.error`, `retry.clock.now`, `retry.clock.setTimer`, `retry.budget.tryRetry`.
 * - `redirect` inside a hedge: the event comes before the hop's host receives its request.
 * - Degradation: a `match` of `htps:`, `ftp:`, `ws:`, `blob:` is a `ConfigError`, `HTTPS://…`, a path and `//host`
 *   are taken; a string URL with a tab or newline in its query is rewritten through a chain too.
 *
 * Docs-silent (not pinned):
 * - A chain endpoint whose `transform` changes the URL (a path) at a degraded level is keyed by the transformed,
 *   rewritten URL (`<host> standard`), while its pass-over check read the caller's value: the docs say what a
 *   `transform` receives but not which URL keys its send.
 * - `durableObjectStore(ns, { policy: { failureRate: null } })` is taken (rate rule off), where the `breaker` option
 *   refuses `failureRate: null` with a `ConfigError`.
 * - The `redirect` event cannot be heard through `resilientProxy` (its layer takes no listener).
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type RequestEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { objectNamespace, Storage } from "../helpers/object-namespace.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
type Options = NonNullable<Parameters<typeof createResilience>[0]>;
const ctx = { waitUntil() {} };

/** A body stream whose first pull gives 100 bytes and whose second fails (a file that went away). */
function failingStream(): ReadableStream<Uint8Array> {
  let pulls = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(new TextEncoder().encode("x".repeat(100)));
      else c.error(new Error("disk gone"));
    },
  });
}

function upload(url: string, headers: Record<string, string> = {}): Request {
  return new Request(url, { method: "POST", headers, body: failingStream(), duplex: "half" } as RequestInit);
}

/** A layer that keeps 10 bytes for replay, two attempts, and its `request` events. */
function layer(extra: Options = {}) {
  const r = createResilience({
    retry: { ...fast, maxAttempts: 2 },
    maxReplayBytes: 10,
    budget: { minPerSecond: 0 },
    ...extra,
  });
  const events: RequestEvent[] = [];
  r.on("request", (e) => events.push(e));
  return { r, events };
}

/** The places a call is counted in, for one host. */
function counted(r: ReturnType<typeof createResilience>, host: string) {
  const d = r.debugInfo();
  return {
    calls: d.totals.calls,
    failures: d.totals.failures,
    errorRate: r.health().errorRate,
    tokens: r.health().budget?.tokens,
    failureCount: d.breakers[host]?.failureCount ?? 0,
  };
}
const nothing = { calls: 0, failures: 0, errorRate: 0, tokens: 0, failureCount: 0 };

const proxyHealth = async (proxy: ReturnType<typeof resilientProxy>) =>
  (await (await proxy.fetch(new Request("http://proxy.test/__resilience/health"), {}, ctx)).json()) as {
    errorRate: number;
    breakers: Record<string, { failureCount: number }>;
  };

describe("defects", () => {
  it("1. a Request body failing past the read-ahead through a chain is fetch's TypeError, counted by nothing", async () => {
    const { r, events } = layer({
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const error = await r.fetch(upload(`${a.base}/v1/up`)).catch((e: unknown) => e);
    expect(b.hits).toHaveLength(0); // sent once: held
    // Observed: FallbackExhaustedError "stopped after "p", which may have processed the request …".
    expect(error).toBeInstanceOf(TypeError);
    expect(String((error as Error).cause)).toMatch(/disk gone/);
    expect(events.map((e) => [e.error, e.attempts])).toEqual([["TypeError", 0]]);
    // Observed: calls 1, failures 1, errorRate 1, tokens 0.1.
    expect(counted(r, a.host)).toEqual(nothing);
  });

  // Fixed in the docs: such a body goes to fetch as it is, with its length (docs/retry.md).
  it("2a. a Request body announced larger by content-length goes as it is: its failure is that attempt's network error", async () => {
    const { r, events } = layer({ breaker: { failureThreshold: 2 } });
    const error = await r.fetch(upload(`${a.base}/up`, { "content-length": "200" })).catch((e: unknown) => e);
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect(events.map((e) => [e.error, e.attempts])).toEqual([["RetryExhaustedError", 1]]);
    expect(r.health().breakers[a.host]?.failureCount).toBe(1);
  });

  it("2b. resilientProxy: a client upload with content-length that fails is the upstream's failure, as documented", async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...fast, maxAttempts: 2 }, maxReplayBytes: 10 },
    });
    const res = await proxy.fetch(upload("http://proxy.test/v1/up", { "content-length": "200" }), {}, ctx);
    expect(res.status).toBe(502);
    const health = await proxyHealth(proxy);
    // The same upload without content-length counts nothing (held below).
    expect(health.errorRate).toBe(1);
    expect(health.breakers[a.host]?.failureCount).toBe(1);
  });

  it("3. calls the transport refused take nothing from a budget at its cap", async () => {
    const r = createResilience({ retry: { ...fast, maxAttempts: 2 }, budget: { minPerSecond: 0 } });
    for (let i = 0; i < 100; i++) await (await r.fetch(`${a.base}/ok`)).text();
    const before = r.health().budget?.tokens as number;
    expect(before).toBeCloseTo(10, 9);
    for (let i = 0; i < 10; i++) {
      const error = await r.fetch(`${a.base}/x`, { headers: { expect: "100-continue" } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
    }
    // Observed: 9.9, the refund of a deposit the cap had dropped.
    expect(r.health().budget?.tokens).toBeCloseTo(before, 9);
  });

  it("4. a hedged endpoint with an async transform keeps the caller's query value as its breaker key", async () => {
    let qArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      qArrived = resolve;
    });
    a.on((h) => {
      h.res.statusCode = 503;
      h.res.end("busy");
    });
    b.on((h) => {
      qArrived();
      h.res.statusCode = 503;
      h.res.end("busy");
    });
    const r = createResilience({
      retry: false,
      breaker: { failureThreshold: 5, key: (u) => `${u.host} ${u.searchParams.get("model")}` },
      degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 1 },
          endpoints: [
            // Returns the request as it came (same URL), once the hedge has started q.
            {
              name: "p",
              url: `${a.base}/v1`,
              transform: async (req) => {
                await arrived;
                return req;
              },
            },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    r.degradation?.setLevel("medium");
    expect((await r.fetch(`${a.base}/v1/x?model=premium`)).status).toBe(503);
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/x?model=standard"]);
    const keys = Object.keys(r.health().breakers);
    expect(keys).toContain(`${b.host} premium`); // held: q keyed on the caller's value
    // Observed: p's send went under `<a> standard`.
    expect(keys).not.toContain(`${a.host} standard`);
    expect(keys).toContain(`${a.host} premium`);
  });

  it("5. durableObjectStore refuses policy: null, or leaves the layer's thresholds in charge", async () => {
    for (const policy of [null, []]) {
      let state: string;
      try {
        state = await isolates(policy, 3, 6);
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError); // refused when made: as documented
        continue;
      }
      // Taken: then as without a policy, the layers' failureThreshold 3 (observed: closed, the defaults' 12).
      expect(state, JSON.stringify(policy)).toBe("open");
    }
  });

  it("6. a string URL whose query ends in a space or control character is rewritten as the parser reads it", async () => {
    const r = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ params: { model: { query: "model" }, steps: { query: "steps" } } }] }),
    });
    r.degradation?.setLevel("medium");
    for (const url of [`${a.base}/s?model=premium `, `${a.base}/s?model=premium\u001f`, `${a.base}/s?steps=50\u0001`]) {
      for (const input of [new URL(url), new Request(url), url]) await r.fetch(input);
    }
    const paths = a.hits.map((h) => h.path);
    // Held: a URL and a Request are rewritten.
    expect([paths[0], paths[1], paths[3], paths[4], paths[6], paths[7]]).toEqual([
      "/s?model=standard",
      "/s?model=standard",
      "/s?model=standard",
      "/s?model=standard",
      "/s?steps=30",
      "/s?steps=30",
    ]);
    // Observed: `/s?model=premium`, `/s?model=premium`, `/s?steps=50` (sent as parsed, not rewritten).
    expect([paths[2], paths[5], paths[8]]).toEqual(["/s?model=standard", "/s?model=standard", "/s?steps=30"]);
  });
});

/** Durable Object isolates (one store and layer each, `failureThreshold: 3`), failing in turn; the object's state. */
async function isolates(policy: unknown, n: number, calls: number, status: (i: number) => number = () => 503) {
  const clock = new TestClock(1_000_000);
  const storage = new Storage();
  const ns = objectNamespace(clock, storage);
  const waits: Promise<unknown>[] = [];
  const context = { waitUntil: (p: Promise<unknown>) => void waits.push(p) };
  const layers = Array.from({ length: n }, () => {
    const store = durableObjectStore(ns, {
      clock,
      ctx: context,
      flushThreshold: 1,
      ...(policy === "none" ? {} : { policy: policy as never }),
    });
    let i = 0;
    return createResilience({
      store,
      clock,
      retry: false,
      breaker: { failureThreshold: 3 },
      fetch: async () => new Response("x", { status: status(i++) }),
    });
  });
  for (let i = 0; i < calls; i++) {
    await clock.run((layers[i % n] as (typeof layers)[number]).fetch("https://a.test/x").catch(() => 0));
    await Promise.all(waits);
  }
  return (storage.values.get("snapshot") as { state?: string } | undefined)?.state ?? "none stored";
}

/** One isolate whose layers share a store; the failing calls (each reported at once) until the object opens. */
async function opensAt(policy: unknown, thresholds: number[], use: number): Promise<number> {
  const clock = new TestClock(1_000_000);
  const storage = new Storage();
  const ns = objectNamespace(clock, storage);
  const waits: Promise<unknown>[] = [];
  const context = { waitUntil: (p: Promise<unknown>) => void waits.push(p) };
  const store = durableObjectStore(ns, {
    clock,
    ctx: context,
    flushThreshold: 1,
    ...(policy === undefined ? {} : { policy: policy as never }),
  });
  const layers = thresholds.map((t) =>
    createResilience({
      store,
      clock,
      retry: false,
      breaker: { failureThreshold: t },
      fetch: async () => new Response("x", { status: 503 }),
    }),
  );
  for (let i = 1; i <= 30; i++) {
    await clock.run((layers[use] as (typeof layers)[number]).fetch("https://a.test/x").catch(() => 0));
    await Promise.all(waits);
    if ((storage.values.get("snapshot") as { state?: string } | undefined)?.state === "open") return i;
  }
  return Number.POSITIVE_INFINITY;
}

describe("held: a body stream that fails while sent", () => {
  it("plain Request: fetch's TypeError, counted by nothing, the host served after", async () => {
    const { r, events } = layer({ breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 2; i++) {
      const error = await r.fetch(upload(`${a.base}/up`)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(String((error as Error).cause)).toMatch(/disk gone/);
    }
    expect(events.map((e) => [e.error, e.attempts])).toEqual([
      ["TypeError", 0],
      ["TypeError", 0],
    ]);
    expect(counted(r, a.host)).toEqual(nothing);
    expect((await r.fetch(`${a.base}/ok`)).status).toBe(200);
  });

  it("ky client: the layer's TypeError (ky's NetworkError unwrapped since fortyfour), nothing counted", async () => {
    const { r, events } = layer();
    const api = createClient({ resilience: r });
    const error = await api.post(`${a.base}/up`, { body: failingStream() }).catch((e: unknown) => e);
    expect((error as Error).name).toBe("TypeError");
    expect(events.map((e) => [e.error, e.attempts])).toEqual([["TypeError", 0]]);
    expect(counted(r, a.host)).toEqual(nothing);
  });

  // A 400 since the fiftieth session (the client's failure; a 502 before, which a client layer counts).
  it("resilientProxy: a client upload without content-length that fails: 400, nothing counted", async () => {
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...fast, maxAttempts: 2 }, maxReplayBytes: 10 },
    });
    expect((await proxy.fetch(upload("http://proxy.test/v1/up"), {}, ctx)).status).toBe(400);
    const health = await proxyHealth(proxy);
    expect(health.errorRate).toBe(0);
    expect(health.breakers[a.host]?.failureCount ?? 0).toBe(0);
  });
});

describe("held: a call the transport refused", () => {
  for (const hedge of [undefined, { delay: 1 }]) {
    it(`a chain${hedge ? " (hedged)" : ""} whose every endpoint is refused: the TypeError, nothing counted`, async () => {
      const { r, events } = layer({
        fallback: fallback([
          {
            name: "c",
            hedge,
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${a.base}/v2` },
            ],
          },
        ]),
      });
      for (let i = 0; i < 10; i++) {
        const error = await r.fetch(`${a.base}/v1/x`, { headers: { expect: "100-continue" } }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TypeError);
      }
      expect(a.hits).toHaveLength(0);
      expect(events.every((e) => e.error === "TypeError" && e.attempts === 0)).toBe(true);
      expect(counted(r, a.host)).toEqual(nothing);
      const stats = r.fallback?.chain("c")?.statistics();
      expect([stats?.fallbacks.p?.calls, stats?.fallbacks.q?.calls]).toEqual([0, 0]);
    });
  }
});

describe("held: breaker keys at a degraded level", () => {
  for (const mode of ["hedge without transform", "async transform without hedge"] as const) {
    it(`${mode}: the caller's value keys both endpoints`, async () => {
      a.on((h) => {
        h.res.statusCode = 503;
        h.res.end("busy");
      });
      b.on((h) => {
        h.res.statusCode = 503;
        setTimeout(() => h.res.end("busy"), 20);
      });
      const r = createResilience({
        retry: false,
        breaker: { failureThreshold: 5, key: (u) => `${u.host} ${u.searchParams.get("model")}` },
        degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
        fallback: fallback([
          {
            name: "c",
            hedge: mode === "hedge without transform" ? { delay: 1 } : undefined,
            endpoints: [
              mode === "hedge without transform"
                ? { name: "p", url: `${b.base}/v1` }
                : { name: "p", url: `${b.base}/v1`, transform: async (req) => req },
              { name: "q", url: `${a.base}/v1` },
            ],
          },
        ]),
      });
      r.degradation?.setLevel("medium");
      expect((await r.fetch(`${b.base}/v1/x?model=premium`)).status).toBe(503);
      expect(b.hits.map((h) => h.path)).toEqual(["/v1/x?model=standard"]);
      expect(Object.keys(r.health().breakers).sort()).toEqual([`${a.host} premium`, `${b.host} premium`].sort());
    });
  }
});

describe("held: durableObjectStore's own policy", () => {
  it("applies whatever the sharing layers' thresholds, in either order of making them", async () => {
    // The control: no policy, the last layer made (3) decides, sent by a layer whose own threshold is 50.
    const control = await opensAt(undefined, [50, 3], 0);
    expect(control).toBeLessThan(10);
    expect(await opensAt({ failureThreshold: 3 }, [50, 60], 0)).toBe(control);
    expect(await opensAt({ failureThreshold: 3 }, [60, 50], 0)).toBe(control);
    expect(await opensAt({ failureThreshold: 3 }, [60, 50], 1)).toBe(control);
    // Without it, the last made: 60, so the first layer's reports do not open it within 30 failures.
    expect(await opensAt(undefined, [50, 60], 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it("a partial policy takes the default rate rule; failureRate: undefined turns it off", async () => {
    const half = (i: number) => (i % 2 ? 503 : 200);
    expect(await isolates({ failureThreshold: 100, minimumCalls: 4 }, 1, 12, half)).toBe("open");
    expect(await isolates({ failureThreshold: 100, minimumCalls: 4, failureRate: undefined }, 1, 12, half)).toBe(
      "none stored",
    );
    // Without a policy, three isolates' failures open it by the layers' own threshold.
    expect(await isolates("none", 3, 6)).toBe("open");
  });

  it("a policy the object would refuse is a TypeError naming it when the store is made", () => {
    const ns = objectNamespace(new TestClock(0));
    expect(() => durableObjectStore(ns, { policy: { failureThreshold: 0 } })).toThrow(
      /durableObjectStore: policy\.failureThreshold/,
    );
    expect(() => durableObjectStore(ns, { policy: { failureRate: 1.5 } })).toThrow(/policy\.failureRate/);
    expect(() => durableObjectStore(ns, { policy: { failurethreshold: 3 } as never })).toThrow(
      /unknown option "failurethreshold"/,
    );
    expect(() => durableObjectStore(ns, { policy: 5 as never })).toThrow(TypeError);
  });
});

describe("held: construction checks", () => {
  it("the stores refuse a scope that is no string, a ctx without waitUntil, a fractional flushThreshold", () => {
    const kv = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
    const ns = objectNamespace(new TestClock(0));
    expect(() => kvStore(kv, { scope: 5 as never })).toThrow(/kvStore: scope must be a string/);
    expect(() => kvStore(kv, { ctx: {} as never })).toThrow(/kvStore: ctx/);
    expect(() => durableObjectStore(ns, { scope: {} as never })).toThrow(/durableObjectStore: scope/);
    expect(() => durableObjectStore(ns, { ctx: { waitUntil: 1 } as never })).toThrow(/durableObjectStore: ctx/);
    expect(() => durableObjectStore(ns, { flushThreshold: 1.5 })).toThrow(/flushThreshold must be a whole number/);
    expect(() => kvStore(kv, { scope: "s", ctx })).not.toThrow();
  });

  it("resilientProxy refuses a route that is no object and one with both upstream and chain", () => {
    expect(() => resilientProxy({ routes: [5 as never] })).toThrow(TypeError);
    expect(() => resilientProxy({ routes: [null as never] })).toThrow(TypeError);
    const both = {
      path: "/v1",
      upstream: `${a.base || "http://127.0.0.1:1"}/v1`,
      chain: { name: "c", endpoints: [{ name: "p", url: "http://127.0.0.1:1/v1" }] },
    };
    expect(() => resilientProxy({ routes: [both as never] })).toThrow(/both an upstream and a chain/);
  });

  it("retry(fn) names a member that cannot be read by its path", async () => {
    const boom = (): never => {
      throw new Error("getter");
    };
    const cases: Array<[string, object]> = [
      [
        "retry.retryOn.error",
        {
          retryOn: {
            get error() {
              return boom();
            },
          },
        },
      ],
      [
        "retry.clock.now",
        {
          clock: {
            get now() {
              return boom();
            },
            setTimer: () => () => {},
          },
        },
      ],
      [
        "retry.clock.setTimer",
        {
          clock: {
            now: () => 0,
            get setTimer() {
              return boom();
            },
          },
        },
      ],
      [
        "retry.budget.tryRetry",
        {
          budget: {
            get tryRetry() {
              return boom();
            },
          },
        },
      ],
    ];
    for (const [path, options] of cases) {
      const error = await retry(async () => "x", options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message.startsWith(`${path}:`), (error as Error).message).toBe(true);
    }
  });
});

describe("held: redirect event and degradation rules", () => {
  it("inside a hedge, the redirect event comes before the hop's host is asked", async () => {
    const order: string[] = [];
    a.on((h: Hit) => {
      if (h.path.startsWith("/p")) {
        setTimeout(() => {
          h.res.statusCode = 302;
          h.res.setHeader("location", `${b.base}/t`);
          h.res.end();
        }, 30);
      } else setTimeout(() => h.res.end("q"), 300);
    });
    b.on((h) => {
      order.push(`hit ${h.path}`);
      h.res.end("t");
    });
    const r = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/p` },
            { name: "q", url: `${a.base}/q` },
          ],
        },
      ]),
    });
    r.on("redirect", (e) => order.push(`redirect ${new URL(e.to).host}`));
    const res = await r.fetch(`${a.base}/p/x`);
    expect(await res.text()).toBe("t");
    expect(a.hits.map((h) => h.path).sort()).toEqual(["/p/x", "/q/x"]); // the hedge started
    expect(order).toEqual([`redirect ${b.host}`, "hit /t"]);
  });

  it("a match of another scheme is a ConfigError; http(s), a path and //host are taken", () => {
    for (const match of ["htps://gen.example/v1", "ftp://gen.example/v1", "ws://gen.example/v1", "blob:https://g/x"]) {
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).toThrow(ConfigError);
    }
    for (const match of ["HTTPS://Gen.example/v1", "/v1", "//gen.example/v1", "http://gen.example"]) {
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).not.toThrow();
    }
  });

  it("a string URL with a tab or newline in its query is rewritten through a chain too", async () => {
    const r = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ params: { steps: { query: "steps" } } }] }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    r.degradation?.setLevel("medium");
    await r.fetch(`${a.base}/v1/s?seed=7&\nsteps=50`);
    await r.fetch(`${a.base}/v1/s?seed=7&steps=5\t0`);
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/s?seed=7&steps=30", "/v1/s?seed=7&steps=30"]);
  });
});
