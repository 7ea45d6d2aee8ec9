/**
 * Outside-in attack on what docs/cloudflare.md and docs/runtimes.md promise for Workers (`resilientProxy` with
 * `durableObjectStore` and `kvStore`, the health path, chain routes, streamed bodies, aborted clients, the object's
 * report cadence), in real workerd.
 *
 * Docs:
 * - docs/cloudflare.md: "It keeps one `Resilience` per isolate, created on the first request …, binds each
 *   request's `ctx` to the store while the request runs"; "`400` when the request failed of the client's own making
 *   at every endpoint tried (… or the client's body stream failed while the layer read it ahead or, past
 *   `maxReplayBytes`, while it went; …)"; "a chain route counts as open when every endpoint's circuit is,
 *   `Retry-After` then naming the first to reopen"; "(its own 502, 503 and 504 carry none of the three)"; "A request
 *   for a route whose client went away (its `signal` aborted) gets no answer: the proxy's `fetch` rejects with the
 *   signal's reason"; "A `store` factory that throws … makes the request reject with its error, … and is called
 *   again on the next request."; "`GET /__resilience/health` returns `health()` as JSON (`HEAD` the same without the
 *   body; … any other method is answered 405 with `Allow: GET, HEAD`; … `/__resilience/health/` … is an ordinary
 *   path, routed like any other)"; "or a Secrets Store binding, read with `get()`; any other value, or a `get()` that
 *   fails or has not answered within 5 s, keeps the endpoint closed"; "so a small body is retried and a larger one is
 *   sent once"; the store table ("or at once on a local trip (a `flushInterval` later if the object failed that
 *   report)"; "one batched report per isolate per 5 s (`flushInterval`, or `verdictTtl` if shorter) while closed,
 *   none while open"); "a `verdictTtl` shorter than `flushInterval` sends them every `verdictTtl` (at 0, at each
 *   call's turn once the last report returned)"; "a trip or hold that report carried goes again with the next one
 *   (its counts do not …)"; "a `Retry-After` hold holds it whatever its state"; `kvStore` writes "inside
 *   `ctx.waitUntil`"; "A store that errs or is slow is ignored (a `store` event says why)".
 * - docs/health-and-events.md: "`store` when a shared breaker store wrote, skipped or failed something".
 * - docs/degradation.md: "A call that goes down a fallback chain is rewritten once, … every endpoint gets that
 *   request". docs/runtimes.md (workerd): "module-scope import checked clean" (here a module-scope proxy too).
 *
 * How: inside workerd (`@cloudflare/vitest-plugin`, project `workers`): `resilientProxy`, `durableObjectStore`,
 * `kvStore` (./cloudflare), `createResilience` (root), `degradation` (./degradation), `TestClock` (./testing). The
 * real `BREAKER_STATE` namespace (read back with `runInDurableObject`), wrapped to record each request to the object
 * and to fail chosen ones (throw, or a 500); the real local KV `BREAKERS`; `recordingCtx` for `ctx.waitUntil`.
 * Upstreams scripted through the layer's `fetch` option (each reads the body as workerd's own `Request` does).
 *
 * Paths: `resilientProxy` (module-scope upstream route; chain route with degradation and `Retry-After` holds; health
 * path), streamed `Request` bodies with retries, aborted clients (in flight, during a backoff), `durableObjectStore`
 * report cadence on a test clock, `store` events on a plain layer.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-fifth session, so plain
 * `it`):
 * 1. docs/cloudflare.md "`400` when … the client's body stream failed … past `maxReplayBytes`, while it went".
 *    Observed: a 100-byte streamed POST (no `content-length`, `maxReplayBytes` 64) whose client stream errors after
 *    its bytes, sent once to a transport that rejects with what the body read rejected with (workerd's
 *    `Request.text()` rejects with the source's own `Error`, no `TypeError`): the proxy answers `502` "upstream
 *    unavailable". The layer saw the source fail (the call's error is "RetryExhaustedError: gave up after 0
 *    attempts …"), but src/http/resilient-fetch.ts hands back the raw error at 0 attempts only for a `TypeError`
 *    and wraps any other in `RetryExhaustedError`, which `isCallersFailure` (src/http/send/failure-reason.ts) does
 *    not look inside, so `failureResponse` falls through to 502 (Node's own fetch rejects with a `TypeError`, which
 *    hides it there). Fixed: an attempt whose caller's body failed while sent rejects with a `TypeError` whose
 *    `cause` is the stream's error (fetch's own in Node, one the layer makes where the platform rejected with the
 *    stream's error itself), marked as the caller's; the proxy answers 400, and a plain call rejects with it.
 *
 * Held (plain `it`):
 * - module-scope proxy: one store over 5 requests; first verdict in the first request's `waitUntil`, a cached closed
 *   verdict costs nothing, the trip's report at once in the tripping request's; the object stores the trip and its
 *   reason; then the proxy's own 503 `Retry-After` without `x-resilience-*`; another proxy refuses after one read.
 * - a throwing store factory rejects with its `TypeError`, and is called again on the next request.
 * - health: GET with the token (`Bearer`, `bearer   `, `BEARER`) shows the DO-shared open host; HEAD the same
 *   status and type, no body; a wrong token, none, `Basic` are 401 `Bearer` (HEAD too); POST 405 `Allow: GET,
 *   HEAD`; an empty var opens it, a number works; nothing upstream; `/__resilience/health/` is routed. A Secrets
 *   Store `get()` is read; one rejecting, no `get`, or hung past 5 s (test clock) keeps it closed.
 * - chain route: all failing gives the last answer (`spare`); the degraded call (`1080p` → `720p`) reaches both
 *   endpoints as the same bytes, the client's `authorization` only the first; `premium — EU` is percent-encoded;
 *   `Retry-After` holds of 100 s and 50 s give 503 `Retry-After: 50`, none of the three headers, nothing sent; both
 *   objects open, the spare's with "Retry-After 50 s on status 503".
 * - a small streamed body retried whole; a larger one sent once, whole; one failing while read ahead is 400,
 *   nothing sent. An aborted client: rejected with the signal's reason, the attempt aborted; in a backoff, no retry.
 * - a trip whose report the object failed (throw, 500) goes again exactly a `flushInterval` later with its hold and
 *   reason, no counts; the object then opens, another isolate refuses after one read.
 * - `verdictTtl` 1 s under a 60 s `flushInterval`: a report a second with the waiting outcomes; at 0, one per call;
 *   by default one per 5 s, the trip's at once, none over 30 s open.
 * - `store` events `report`/`failed` then `report`/`rejected`, none once the object answers; `kvStore` under the
 *   proxy: first read and trip write in the request's `waitUntil`, the key open, the next request refused unsent.
 *
 * Docs-silent (not pinned):
 * - A trip at `failureThreshold: 1` read "1 failures in a row (last: status 503)" (reason, object, KV); since the
 *   fifty-fifth session it reads "1 failure in a row", as the tests below assert.
 * - Through `resilientProxy` no one can hear a `store` event (the layer is not exposed), so "a `store` event says
 *   why" is for layers made by hand.
 * - Miniflare's outbound service takes a request body stream that errors after its bytes as complete (200, the
 *   bytes so far; plain `fetch` too), and workerd logs "Uncaught (in promise)" for such a source even under plain
 *   `fetch` or `Request.text()` (then reports it handled).
 * - The health answer carries `cache-control: no-store`.
 */

import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  kvStore,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { degradation } from "../../src/degradation/index.ts";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingCtx } from "./recording-ctx.ts";

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
type Env = typeof env & { MISSING?: DurableObjectNamespaceLike; RESILIENCE_HEALTH_TOKEN: string | number };
let seq = 0;
const unique = (what: string) => `${what}-${Date.now().toString(36)}-${seq++}`;

/** The stored snapshot of the object for `scope` and `host`, or undefined. */
const stored = (scope: string, host: string) => {
  const ns = env.BREAKER_STATE;
  const stub = ns.get(ns.idFromName(`cb:${scope}:${host}`) as never);
  return runInDurableObject(stub, (_i, state) => state.storage.get("snapshot")) as Promise<BreakerSnapshot | undefined>;
};

/**
 * The real `BREAKER_STATE` namespace, every request to the object recorded (path and body); `fail` decides,
 * per request, whether it throws ("throw"), answers 500, or goes to the real object.
 */
function watchedObject(fail: (path: string, n: number) => "throw" | "500" | undefined = () => undefined) {
  const sent: Array<{ path: string; body: Record<string, unknown>; outcome: string }> = [];
  const ns: DurableObjectNamespaceLike = {
    idFromName: (name) => env.BREAKER_STATE.idFromName(name),
    get: (id) => {
      const stub = env.BREAKER_STATE.get(id);
      return {
        fetch: async (input, init) => {
          const path = new URL(input).pathname;
          const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
          const how = fail(path, sent.length + 1);
          sent.push({ path, body, outcome: how ?? "ok" });
          if (how === "throw") throw new Error("object overloaded");
          if (how === "500") return Response.json({ error: "busy" }, { status: 500 });
          return stub.fetch(input, init);
        },
      };
    },
  };
  return { ns, sent, reports: () => sent.filter((s) => s.path === "/report") };
}

/** An upstream whose status the test sets, counting requests and keeping the bodies it read. */
function upstream(initial = 200) {
  const state = { status: initial, calls: 0, bodies: [] as string[] };
  const fetch: Fetch = async (input, init) => {
    state.calls++;
    state.bodies.push(await new Request(input as RequestInfo, init).text());
    return new Response(`answer ${state.calls}`, { status: state.status });
  };
  return { state, fetch };
}

/** One request through `proxy` with its own recorded ctx, read whole, its waitUntil work settled. */
async function send(
  proxy: { fetch(r: Request, e: Env, c: ReturnType<typeof recordingCtx>["ctx"]): Promise<Response> },
  path: string,
  init: RequestInit = {},
  envOver: Partial<Env> = {},
) {
  const c = recordingCtx();
  const res = await proxy.fetch(
    new Request(`https://worker.example${path}`, init),
    { ...env, ...envOver } as Env,
    c.ctx,
  );
  const body = res.body === null ? null : await res.text();
  await c.settle();
  const h = (name: string) => res.headers.get(name);
  return { res, body, h, waited: c.promises.length };
}

// Made at module scope, as docs/cloudflare.md's example does, and reused by the tests below.
const moduleUp = upstream(200);
let moduleStores = 0;
const moduleScope = unique("module");
const moduleProxy = resilientProxy<Env>({
  routes: [{ path: "/m", upstream: "https://module.example/m" }],
  resilience: { retry: false, breaker: { failureThreshold: 2, timeout: 60_000 }, fetch: moduleUp.fetch },
  store: (e) => {
    moduleStores++;
    return durableObjectStore(e.BREAKER_STATE, { scope: moduleScope });
  },
});

describe("a module-scope resilientProxy over the real BreakerStateObject", () => {
  it("makes one store per isolate, binds each request's ctx, shares its trip through the object", async () => {
    const first = await send(moduleProxy, "/m/a");
    const named = [first.h("x-resilience-endpoint"), first.h("x-resilience-attempts")];
    expect([first.res.status, ...named]).toEqual([200, "module.example", "1"]);
    expect(first.waited).toBe(1); // the first verdict, read in the background through this request's waitUntil
    const second = await send(moduleProxy, "/m/b");
    expect(second.waited).toBe(0); // a closed verdict cached for verdictTtl: no call to the object
    moduleUp.state.status = 503;
    const failed = await send(moduleProxy, "/m/c");
    expect(failed.res.status).toBe(503);
    const tripped = await send(moduleProxy, "/m/d");
    expect([tripped.res.status, tripped.body]).toEqual([503, "answer 4"]);
    expect(tripped.waited).toBe(1); // the trip's report, at once, in the tripping request's waitUntil
    expect(moduleStores).toBe(1);
    expect(await stored(moduleScope, "module.example")).toMatchObject({
      state: "open",
      reason: "2 failures in a row (last: status 503)",
    });
    const refused = await send(moduleProxy, "/m/e");
    expect([refused.res.status, refused.h("x-resilience-endpoint")]).toEqual([503, null]);
    expect(JSON.parse(refused.body ?? "")).toEqual({ error: "upstream circuit open" });
    expect(Number(refused.h("retry-after"))).toBeGreaterThan(50);
    expect(moduleUp.state.calls).toBe(4);

    // Another isolate's proxy: its first call goes under its local breaker, the next is refused.
    const other = resilientProxy<Env>({
      routes: [{ path: "/m", upstream: "https://module.example/m" }],
      resilience: { retry: false, fetch: moduleUp.fetch },
      store: (e) => durableObjectStore(e.BREAKER_STATE, { scope: moduleScope }),
    });
    expect((await send(other, "/m/f")).res.status).toBe(503);
    const shared = await send(other, "/m/g");
    expect([shared.res.status, moduleUp.state.calls]).toEqual([503, 5]);
    expect(Number(shared.h("retry-after"))).toBeGreaterThan(50);
  });
});

describe("setup mistakes and the health path", () => {
  it("a store factory that throws rejects the request with its error, and is called again on the next", async () => {
    let made = 0;
    const up = upstream(200);
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/", upstream: "https://factory.example/" }],
      resilience: { retry: false, fetch: up.fetch },
      store: (e) => {
        made++;
        return durableObjectStore(e.MISSING as DurableObjectNamespaceLike);
      },
    });
    const c = recordingCtx();
    const failing = proxy.fetch(new Request("https://worker.example/x"), env as Env, c.ctx);
    await expect(failing).rejects.toThrow(TypeError);
    await expect(failing).rejects.toThrow(/durableObjectStore\(namespace\)/);
    const ok = await send(proxy, "/x", {}, { MISSING: env.BREAKER_STATE });
    expect([made, ok.res.status, up.state.calls]).toEqual([2, 200, 1]);
  });

  it("GET and HEAD of the health path, with and without the token; other methods 405; a near path is routed", async () => {
    const scope = unique("health");
    const up = upstream(503);
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/", upstream: "https://health.example/" }],
      resilience: { retry: false, breaker: { failureThreshold: 1, timeout: 60_000 }, fetch: up.fetch },
      store: (e) => durableObjectStore(e.BREAKER_STATE, { scope }),
    });
    await send(proxy, "/trip");
    const calls = up.state.calls;
    const auth = (value: string) => ({ headers: { authorization: value } });
    const get = await send(proxy, "/__resilience/health", auth("Bearer test-token"));
    expect(get.res.status).toBe(200);
    const health = JSON.parse(get.body ?? "") as { status: string; breakers: Record<string, { state: string }> };
    expect(health.status).toBe("unhealthy");
    expect(health.breakers["health.example"]?.state).toBe("open");
    for (const value of ["bearer   test-token", "BEARER test-token"]) {
      expect((await send(proxy, "/__resilience/health", auth(value))).res.status).toBe(200);
    }
    const head = await send(proxy, "/__resilience/health", { method: "HEAD", ...auth("Bearer test-token") });
    expect([head.res.status, head.body, head.h("content-type")]).toEqual([200, null, get.h("content-type")]);
    for (const init of [{}, auth("Bearer test-tokenx"), auth("test-token"), auth("Basic test-token")]) {
      const denied = await send(proxy, "/__resilience/health", init);
      expect([denied.res.status, denied.h("www-authenticate")]).toEqual([401, "Bearer"]);
      expect(denied.body).not.toContain("health.example");
      const deniedHead = await send(proxy, "/__resilience/health", { ...init, method: "HEAD" });
      expect([deniedHead.res.status, deniedHead.body, deniedHead.h("www-authenticate")]).toEqual([401, null, "Bearer"]);
    }
    const post = await send(proxy, "/__resilience/health", { method: "POST", body: "x" });
    expect([post.res.status, post.h("allow")]).toEqual([405, "GET, HEAD"]);
    // Open without a token, and a number as wrangler's [vars] may give it.
    const open = await send(proxy, "/__resilience/health", {}, { RESILIENCE_HEALTH_TOKEN: "" });
    expect(open.res.status).toBe(200);
    const numeric = await send(proxy, "/__resilience/health", auth("Bearer 1234"), { RESILIENCE_HEALTH_TOKEN: 1234 });
    expect(numeric.res.status).toBe(200);
    expect(up.state.calls).toBe(calls); // nothing sent upstream for the health path
    // `/__resilience/health/` is an ordinary path: the catch-all route gets it (refused: the circuit is open).
    const near = await send(proxy, "/__resilience/health/");
    expect([near.res.status, JSON.parse(near.body ?? "")]).toEqual([503, { error: "upstream circuit open" }]);
  });

  it("a Secrets Store token: read with get(); one that fails or has not answered within 5 s keeps it closed", async () => {
    const clock = new TestClock(Date.now());
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/", upstream: "https://h.example/" }],
      resilience: { clock },
    });
    const ask = (secret: unknown, authorization = "Bearer s3cret") =>
      send(proxy, "/__resilience/health", { headers: { authorization } }, { RESILIENCE_HEALTH_TOKEN: secret as never });
    expect((await ask({ get: async () => "s3cret" })).res.status).toBe(200);
    expect((await ask({ get: async () => "s3cret" }, "Bearer other")).res.status).toBe(401);
    expect((await ask({ get: () => Promise.reject(new Error("no secret")) })).res.status).toBe(401);
    expect((await ask({ value: "s3cret" })).res.status).toBe(401);
    const hung = ask({ get: () => new Promise(() => {}) });
    await clock.advance(5_000);
    expect((await hung).res.status).toBe(401);
  });
});

describe("a chain route with degradation and the object store", () => {
  it("rewrites once for every endpoint, names the endpoint and level, answers 503 naming the first to reopen", async () => {
    const scope = unique("chain");
    const seen: Array<{ url: string; body: string; auth: string | null }> = [];
    const plan: Array<[number, number]> = [];
    const holds: Record<string, string> = {};
    const fetch: Fetch = async (input, init) => {
      const request = new Request(input as RequestInfo, init);
      seen.push({ url: request.url, body: await request.text(), auth: request.headers.get("authorization") });
      const primary = request.url.startsWith("https://chain-a.example/");
      const [a, b] = plan[0] ?? [200, 200];
      if (!primary) plan.shift();
      const host = new URL(request.url).host;
      const headers: Record<string, string> = holds[host] ? { "retry-after": holds[host] } : {};
      return new Response(`from ${host}`, { status: primary ? a : b, headers });
    };
    const spare = {
      name: "spare",
      url: "https://chain-b.example/v2/video",
      headers: { authorization: "Bearer spare-key" },
    };
    const endpoints = [{ name: "premium — EU", url: "https://chain-a.example/v1/video" }, spare];
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/v1/video", chain: { name: "video", endpoints } }],
      resilience: {
        retry: { maxAttempts: 1, maxRetryAfter: 1000 },
        breaker: { failureThreshold: 10 },
        degradation: degradation({ minSamples: 1, triggers: { errorRate: 0.5 } }),
        fetch,
      },
      store: (e) => durableObjectStore(e.BREAKER_STATE, { scope }),
    });
    const post = () =>
      send(proxy, "/v1/video/jobs?x=1", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer client" },
        body: JSON.stringify({ prompt: "waves", resolution: "1080p", steps: 50 }),
      });
    plan.push([503, 503], [503, 200]);
    const exhausted = await post();
    // Every endpoint failed: the last answer any endpoint gave, with the three headers.
    const said = [exhausted.body, exhausted.h("x-resilience-endpoint"), exhausted.h("x-degradation-level")];
    expect([exhausted.res.status, ...said]).toEqual([503, "from chain-b.example", "spare", "full"]);
    const degraded = await post();
    expect([degraded.res.status, degraded.h("x-resilience-endpoint"), degraded.h("x-degradation-level")]).toEqual([
      200,
      "spare",
      "high",
    ]);
    const [a2, b2] = seen.slice(2);
    expect(a2?.url).toBe("https://chain-a.example/v1/video/jobs?x=1");
    expect(b2?.url).toBe("https://chain-b.example/v2/video/jobs?x=1");
    expect(JSON.parse(a2?.body ?? "")).toEqual({ prompt: "waves", resolution: "720p", steps: 50 });
    expect(b2?.body).toBe(a2?.body);
    expect([a2?.auth, b2?.auth]).toEqual(["Bearer client", "Bearer spare-key"]);
    plan.push([200, 200]);
    const named = await post(); // the primary answers: its name percent-encoded (it holds a `—`)
    expect([named.res.status, named.h("x-resilience-endpoint")]).toEqual([200, "premium%20%E2%80%94%20EU"]);
    expect(decodeURIComponent(named.h("x-resilience-endpoint") ?? "")).toBe("premium — EU");
    plan.shift();

    // Retry-After holds on both: the chain counts as open, Retry-After the first to reopen.
    holds["chain-a.example"] = "100";
    holds["chain-b.example"] = "50";
    plan.push([503, 503]);
    const held = await post();
    expect([held.res.status, held.h("retry-after"), held.h("x-resilience-endpoint")]).toEqual([503, "50", "spare"]);
    const sent = seen.length;
    const open = await post();
    expect([open.res.status, open.h("retry-after"), open.h("x-resilience-endpoint")]).toEqual([503, "50", null]);
    expect(open.h("x-resilience-attempts")).toBeNull();
    expect(open.h("x-degradation-level")).toBeNull();
    expect(seen.length).toBe(sent);
    // A Retry-After hold holds the object whatever its state, with the isolate's reason.
    const b = await stored(scope, "chain-b.example");
    expect(b).toMatchObject({ state: "open", reason: "Retry-After 50 s on status 503" });
    expect((b?.openUntil ?? 0) - Date.now()).toBeGreaterThan(45_000);
    expect(await stored(scope, "chain-a.example")).toMatchObject({ state: "open" });
  });
});

/** A client body as a stream of `chunks`, erroring after them when `fail` is set. */
const streamOf = (chunks: string[], fail?: string) => {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(enc.encode(chunks[i++]));
      else if (fail) controller.error(new Error(fail));
      else controller.close();
    },
  });
};

/**
 * workerd reports a rejection at once, then `rejectionHandled` (its own body reads do so for an erroring source):
 * Vitest's listeners are set aside, and only rejections still unhandled a few turns later fail the test.
 */
type Listener = (...args: unknown[]) => void;
type ProcessLike = {
  listeners(n: string): Listener[];
  on(n: string, l: Listener): void;
  off(n: string, l: Listener): void;
};
function watchRejections() {
  const pending = new Map<unknown, unknown>();
  const proc = (globalThis as { process?: ProcessLike }).process;
  const mine: Record<string, Listener> = {
    unhandledRejection: (reason, promise) => pending.set(promise, reason),
    rejectionHandled: (promise) => pending.delete(promise),
  };
  let saved: Array<[string, Listener]> = [];
  beforeEach(() => {
    pending.clear();
    saved = Object.keys(mine).flatMap((n) => (proc?.listeners(n) ?? []).map((l): [string, Listener] => [n, l]));
    for (const [n, l] of saved) proc?.off(n, l);
    for (const [n, l] of Object.entries(mine)) proc?.on(n, l);
  });
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, 30));
    for (const [n, l] of Object.entries(mine)) proc?.off(n, l);
    for (const [n, l] of saved) proc?.on(n, l);
    expect([...pending.values()].map(String)).toEqual([]);
  });
}

describe("client bodies streamed through the proxy, and clients that go away", () => {
  watchRejections();
  const proxyOver = (up: { fetch: Fetch }, maxReplayBytes = 64) =>
    resilientProxy<Env>({
      routes: [{ path: "/up", upstream: "https://body.example/in" }],
      resilience: { retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 1 }, maxReplayBytes, fetch: up.fetch },
    });

  it("a small streamed body is retried whole; a larger one goes once, the upstream's answer passed on", async () => {
    const up = upstream(503);
    const proxy = proxyOver(up);
    const small = await send(proxy, "/up/a", { method: "POST", body: streamOf(["he", "llo"]) });
    expect([small.res.status, small.h("x-resilience-attempts")]).toEqual([503, "3"]);
    expect(up.state.bodies).toEqual(["hello", "hello", "hello"]);
    const big = "x".repeat(50);
    const large = await send(proxy, "/up/b", { method: "PUT", body: streamOf([big, big, "end"]) });
    expect([large.res.status, large.h("x-resilience-attempts"), large.body]).toEqual([503, "1", "answer 4"]);
    expect(up.state.bodies.slice(3)).toEqual([`${big}${big}end`]);
  });

  it("a client body that fails while the layer reads it ahead is the client's own: 400, nothing sent", async () => {
    const up = upstream(200);
    const ahead = await send(proxyOver(up), "/up/c", { method: "POST", body: streamOf(["abc"], "client hung up") });
    expect([ahead.res.status, JSON.parse(ahead.body ?? ""), ahead.h("x-resilience-endpoint")]).toEqual([
      400,
      { error: "the client's request failed" },
      null,
    ]);
    expect(up.state.calls).toBe(0);
  });

  // The transport reads the body as workerd's own `Request` does, and so rejects with the source's own error
  // (workerd's `new Request(…).text()` rejects with it as it is, no TypeError).
  it("a client body past maxReplayBytes that fails while it goes is the client's own: 400", async () => {
    const up = upstream(200);
    const past = await send(proxyOver(up), "/up/d", {
      method: "POST",
      body: streamOf(["y".repeat(100)], "client hung up"),
    });
    expect(up.state.calls).toBe(1); // it went, once
    expect([past.res.status, JSON.parse(past.body ?? "")]).toEqual([400, { error: "the client's request failed" }]);
  });

  // docs/retry.md: "One read that far, past `maxReplayBytes`, that fails later, while it is sent, fails the call with
  // a `TypeError` (its `cause` the stream's error), … counted as no attempt and by nothing".
  it("the same body on a plain call: a TypeError whose cause is the stream's error, sent once, nothing counted", async () => {
    const up = upstream(200);
    const layer = createResilience({ maxReplayBytes: 64, fetch: up.fetch, retry: { maxAttempts: 3, initialDelay: 1 } });
    const request = new Request("https://body.example/in", {
      method: "POST",
      body: streamOf(["y".repeat(100)], "client hung up"),
    });
    const error = await layer.fetch(request).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(((error as TypeError).cause as Error).message).toBe("client hung up");
    expect(up.state.calls).toBe(1);
    const { breakers, errorRate } = layer.health();
    expect([Object.values(breakers).map((b) => b.failureCount), errorRate]).toEqual([[0], 0]);
  });

  it("a client that went away gets no answer: the proxy rejects with the signal's reason, the upstream's attempt aborted", async () => {
    let aborted: unknown;
    let started!: () => void;
    const going = new Promise<void>((r) => {
      started = r;
    });
    const hang: Fetch = (input, init) =>
      new Promise<Response>((_, reject) => {
        const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
        signal?.addEventListener("abort", () => {
          aborted = signal.reason;
          reject(signal.reason);
        });
        started();
      });
    const proxy = proxyOver({ fetch: hang });
    const client = new AbortController();
    const reason = new Error("client went away");
    const c = recordingCtx();
    const answer = proxy.fetch(
      new Request("https://worker.example/up/e", { method: "POST", body: "hi", signal: client.signal }),
      env as Env,
      c.ctx,
    );
    await going;
    client.abort(reason);
    await expect(answer).rejects.toBe(reason);
    expect(aborted).toBe(reason);
    await c.settle();
    // Gone during the backoff between two attempts: rejected at once, no second attempt.
    const clock = new TestClock(Date.now());
    const up = upstream(503);
    const backoff = resilientProxy<Env>({
      routes: [{ path: "/up", upstream: "https://body.example/in" }],
      resilience: { retry: { maxAttempts: 3, initialDelay: 10_000 }, clock, fetch: up.fetch },
    });
    const gone = new AbortController();
    const pending = backoff.fetch(new Request("https://w.example/up/f", { signal: gone.signal }), env as Env, c.ctx);
    await clock.advance(1);
    gone.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await clock.advance(60_000);
    expect(up.state.calls).toBe(1);
  });
});

describe("durableObjectStore reports on a test clock, through the proxy", () => {
  const clockedProxy = (ns: DurableObjectNamespaceLike, scope: string, up: { fetch: Fetch }, store = {}) => {
    const clock = new TestClock(Date.now());
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/", upstream: "https://report.example/" }],
      resilience: { retry: false, breaker: { failureThreshold: 1, timeout: 60_000 }, clock, fetch: up.fetch },
      store: () => durableObjectStore(ns, { scope, clock, ...store }),
    });
    return { clock, proxy };
  };

  for (const how of ["throw", "500"] as const) {
    it(`a trip whose report the object failed (${how}) goes again with the next report, a flushInterval later`, async () => {
      const scope = unique(`refail-${how}`);
      // The second request to the object (the trip's report) fails; the rest go through.
      const object = watchedObject((_path, n) => (n === 2 ? how : undefined));
      const up = upstream(200);
      const { clock, proxy } = clockedProxy(object.ns, scope, up);
      expect((await send(proxy, "/a")).res.status).toBe(200); // first verdict read (closed)
      up.state.status = 503;
      expect((await send(proxy, "/b")).res.status).toBe(503); // the trip: its report fails
      expect(object.reports().map((r) => [r.outcome, typeof r.body.holdUntil])).toEqual([
        ["ok", "undefined"],
        [how, "number"],
      ]);
      expect(await stored(scope, "report.example")).toBeUndefined(); // the object never heard it
      await clock.advance(4_999);
      expect((await send(proxy, "/c")).res.status).toBe(503); // refused locally; no report yet
      expect(object.reports()).toHaveLength(2);
      await clock.advance(1);
      const refused = await send(proxy, "/d");
      expect(refused.res.status).toBe(503);
      const again = object.reports()[2];
      expect(again?.body).toMatchObject({
        holdUntil: object.reports()[1]?.body.holdUntil,
        reason: "1 failure in a row (last: status 503)",
        fail: 0,
      });
      expect(await stored(scope, "report.example")).toMatchObject({
        state: "open",
        reason: "1 failure in a row (last: status 503)",
      });
      // Another isolate reads the open from the object: refused after its first read.
      const other = clockedProxy(env.BREAKER_STATE, scope, up);
      const before = up.state.calls;
      await send(other.proxy, "/e");
      expect((await send(other.proxy, "/f")).res.status).toBe(503);
      expect(up.state.calls - before).toBe(1);
    });
  }

  it("verdictTtl shorter than flushInterval: the outcomes go every verdictTtl, each ask a report", async () => {
    const scope = unique("ttl");
    const object = watchedObject();
    const up = upstream(200);
    const { clock, proxy } = clockedProxy(object.ns, scope, up, { verdictTtl: 1_000, flushInterval: 60_000 });
    for (let i = 0; i < 6; i++) {
      await send(proxy, `/t${i}`);
      await send(proxy, `/u${i}`);
      await clock.advance(1_000);
    }
    expect(object.reports().map((r) => r.body.ok)).toEqual([0, 2, 2, 2, 2, 2]);
    // At 0: a report at each call's turn once the last report returned.
    const zero = watchedObject();
    const at0 = clockedProxy(zero.ns, unique("ttl0"), up, { verdictTtl: 0, flushInterval: 60_000 });
    for (let i = 0; i < 5; i++) await send(at0.proxy, `/z${i}`);
    expect(zero.reports().map((r) => r.body.ok)).toEqual([0, 1, 1, 1, 1]);
  });

  it("the default: one batched report per 5 s while closed, none while open", async () => {
    const scope = unique("batch");
    const object = watchedObject();
    const up = upstream(200);
    const { clock, proxy } = clockedProxy(object.ns, scope, up);
    for (let i = 0; i <= 20; i++) {
      await send(proxy, `/b${i}`);
      await clock.advance(500);
    }
    expect(object.reports().map((r) => r.body.ok)).toEqual([0, 10, 10]);
    up.state.status = 503;
    await send(proxy, "/trip");
    for (let i = 0; i < 30; i++) {
      expect((await send(proxy, `/o${i}`)).res.status).toBe(503);
      await clock.advance(1_000);
    }
    const sent = object.reports().map((r) => `${r.body.fail} ${r.body.holdUntil !== undefined}`);
    expect(sent).toEqual(["0 false", "0 false", "0 false", "1 true"]);
    expect(up.state.calls).toBe(22);
  });
});

describe("store events and kvStore under the request's waitUntil", () => {
  it("a report the object failed is a store event; the hold sent again is none", async () => {
    const scope = unique("events");
    const clock = new TestClock(Date.now());
    const object = watchedObject((_path, n) => (n === 2 ? "throw" : n === 3 ? "500" : undefined));
    const c = recordingCtx();
    const up = upstream(503);
    const layer = createResilience({
      store: durableObjectStore(object.ns, { ctx: c.ctx, scope, clock }),
      retry: false,
      breaker: { failureThreshold: 2, timeout: 60_000 },
      clock,
      fetch: up.fetch,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (e) => events.push(e));
    const step = async (ms = 0) => {
      await clock.advance(ms);
      await layer.fetch("https://events.example/").catch(() => {});
      await c.settle();
    };
    await step(); // first verdict
    await step(); // trip: its report throws
    await step(5_000); // the next report: the object answers 500
    await step(5_000); // and the one after goes through
    expect(events.map((e) => [e.operation, e.outcome, e.key])).toEqual([
      ["report", "failed", "events.example"],
      ["report", "rejected", "events.example"],
    ]);
    expect(JSON.stringify(events)).toContain("object overloaded");
    expect(object.reports().map((r) => r.body.holdUntil !== undefined)).toEqual([false, true, true, true]);
    expect(await stored(scope, "events.example")).toMatchObject({ state: "open" });
  });

  it("resilientProxy with kvStore on the real KV: the trip is written inside the tripping request's waitUntil", async () => {
    const scope = unique("kvproxy");
    const up = upstream(503);
    const proxy = resilientProxy<Env>({
      routes: [{ path: "/", upstream: "https://kv.example/" }],
      resilience: { retry: false, breaker: { failureThreshold: 1, timeout: 60_000 }, fetch: up.fetch },
      store: (e) => kvStore(e.BREAKERS, { scope, publishJitter: 0 }),
    });
    const c = recordingCtx();
    const res = await proxy.fetch(new Request("https://worker.example/x"), env as Env, c.ctx);
    // The first read and the write, both handed to this request's ctx.
    expect([res.status, c.promises.length]).toEqual([503, 2]);
    await c.settle();
    const kept = await env.BREAKERS.getWithMetadata(`cb:v1:${scope}:kv.example`);
    expect(kept.metadata).toMatchObject({ s: "open", r: "1 failure in a row (last: status 503)" });
    const refused = await send(proxy, "/y");
    expect([refused.res.status, up.state.calls]).toEqual([503, 1]);
  });
});
