/**
 * Outside-in attack on `CircuitOpenError#afterRedirect` (commit 78893d4): `true` when the breaker refused a
 * redirect's later hop that the library follows (the first host had the request), absent when a call was
 * refused before anything was sent.
 *
 * Docs: src/core/errors.ts JSDoc ("`true` when the breaker refused a redirect's later hop: nothing was sent to
 * this host, but the first host answered the request with the redirect, so it may have processed it (a POST
 * without a key must not be sent again). Absent when nothing of the call was sent."); docs/retry.md error table
 * ("`CircuitOpenError` | the host's breaker is open: nothing was sent to it (with `afterRedirect: true`, a
 * redirect's later hop was refused: the first host had the request)") and "Redirects" ("A hop to another host
 * whose breaker refuses calls (open, here or in the shared store, or half-open with every probe slot taken) is
 * refused as a call to it would be, with a `CircuitOpenError` naming that host and nothing sent there, its
 * `afterRedirect` `true` (the first host had the request: a POST without a key must not be sent again; the
 * first host's redirect counts as its success)", "with `durableObjectStore`, it also asks the object for one of
 * its leases … and is refused when another isolate holds them all, with the same `retryAt`", "Calls with
 * `redirect: "manual"` or `"error"` go to the transport untouched"); CHANGELOG.md's newest Added entry ("a
 * caller that resent a keyless POST on `CircuitOpenError` could have a job processed twice. A call refused
 * before anything was sent has no such field."); SECURITY.md "A paid request is never processed twice" ("a POST
 * … is sent again (a retry, or the next endpoint of a chain: one rule) only when it surely was not processed
 * … never after … a redirect (whatever its target answers)"); README.md ("resolves with a response … (the last
 * attempt's …)"); src/cloudflare/failure-response.ts JSDoc ("`502`, a redirect's later hop refused by its open
 * circuit included: the first upstream had the request, and a `503` would tell the client it was declined and
 * may be sent again").
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy`, `failureResponse` and `durableObjectStore` (./cloudflare, the proxy
 * called as a plain handler in Node), `TestClock` (./testing); three node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts): A answers with redirects, B is the target whose breaker a 503 opened, C a
 * spare; test/helpers/object-namespace.ts for the Durable Object (two isolates over one namespace).
 *
 * Paths: plain call (GET, keyless and keyed POST), `Request` input, 303 POST→GET, several hops (A, A, C, then
 * B), `redirect: "manual"`/`"error"`, events and `health()`, a chain (keyless POST, GET, keyed POST), a hedged
 * chain, a chain `transform`, a chain whose `breaker.key` quotes the URL (redaction), a degradation rewrite,
 * nested layers (the outer follows; B open in the inner, or in the outer; the outer with `redirects:
 * "platform"`, the inner follows), the ky client, `resilientProxy`, `failureResponse`, a half-open host with its
 * one probe slot taken, `durableObjectStore` with another isolate holding the only lease, and retries whose
 * earlier attempt failed before the redirect.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the four):
 * 1. A retry whose redirect hop is refused is taken for "the layer refused the retry": docs/retry.md says such
 *    a hop is refused "with a `CircuitOpenError` … its `afterRedirect` `true` (the first host had the request: a
 *    POST without a key must not be sent again)", and README.md that a call resolves with "the last attempt's"
 *    response. Observed: a keyless POST whose first attempt A declines with 503 is retried (as SECURITY.md
 *    allows); A has it again and answers with a 307 to open B; the hop is refused, and the call *resolves with
 *    the first attempt's 503* (`redirected` false): no `afterRedirect` anywhere, and a 503 says "declined, send
 *    again" of a job A may have processed. Source: src/http/send/send-with-retries.ts `retried()`: any
 *    `CircuitOpenError` from `sendAttempt` is read as the layer refusing the retry ("the call settles with the
 *    response it kept"), also one `admitHop` (src/http/send/send-attempt.ts) raised for a hop after the host had
 *    the request (it is in `failedAfterRedirect`/`refusedHops`, and now carries `afterRedirect`).
 * 2. The same in a chain breaks SECURITY.md "A paid request is never processed twice" (never sent again "after
 *    … a redirect (whatever its target answers)"): endpoint a's outcome is that kept 503, so the chain moves on
 *    and c processes the keyless POST that A had (resolves 200 from c). Same source, read by the chain as a
 *    declined answer (src/fallback/try-endpoints.ts `mayMoveOn`).
 * 3. Through `resilientProxy`, its client hears that 503 (failureResponse's JSDoc: a refused later hop is a
 *    `502`, as "a `503` would tell the client it was declined and may be sent again"); a client layer over the
 *    proxy resends the keyless POST on it: A has the job, and answers the redirect, 3 times. Same source.
 * 4. With no response kept (the first attempt's connection reset, a GET retried), the call rejects with a
 *    `RetryExhaustedError` whose cause is the first attempt's "fetch failed", not the retry's refused hop: no
 *    `CircuitOpenError`, no `afterRedirect`. Source: `retried()` again, `throw last?.ok === false ? last.error :
 *    error`.
 *
 * Held (plain `it`):
 * - Plain GET, keyless POST under retries, keyed POST, `Request` input, a 303 that turns the POST into a GET,
 *   and a hop refused after A→A→C hops: `CircuitOpenError` naming B with `afterRedirect: true` (own,
 *   enumerable, in `JSON.stringify`); A had the request once, B nothing; the refused hop is not retried.
 * - A call to B itself is refused with no `afterRedirect` (`in` false, not in JSON), a fresh error even right
 *   after a flagged one on the same layer.
 * - `redirect: "manual"` gives the 307; `redirect: "error"` rejects without a `CircuitOpenError`.
 * - Events: one `redirect` event (URLs without their query) and a `request` event naming `CircuitOpenError`
 *   for A's key; `health()`: B open, A closed (the redirect counts as A's success); no query in the error.
 * - Chains: a keyless POST stops at a (`errors.a` flagged, c sent nothing, `failureResponse` 502); a GET moves
 *   on to c, and with c open too `errors.a` is flagged and c's pass-over refusal is not; a keyed POST moves on;
 *   a hedged GET chain and a chain `transform` keep the flag; a `breaker.key` that quotes the URL has its query
 *   cut from the chain's error and the flag stays.
 * - A degradation rewrite: the rewritten POST reaches A once, flagged.
 * - Nested layers: the outer follows (B open in the inner only, or the outer only), or the inner follows
 *   (outer `redirects: "platform"`): flagged each time, A had the keyless POST once.
 * - ky: the error ky gives is the layer's `CircuitOpenError` itself, flagged.
 * - `resilientProxy`: a refused later hop is a 502 without `Retry-After`, a refused call a 503 with it;
 *   `failureResponse` likewise on a plain call's errors.
 * - A half-open host whose one probe slot is taken: the hop is refused, flagged, `retryAt` ahead; with
 *   `durableObjectStore`, another isolate holding the object's only lease: refused, flagged, B sent nothing more.
 *
 * Docs-silent (not pinned):
 * - `structuredClone` of the error keeps none of the library's fields: it comes back as a plain `Error` named
 *   "Error" without `key`, `retryAt` or `afterRedirect` (V8's error serialization); `JSON.stringify` keeps them.
 * - No event or `health()` field says that a call's refusal came after a redirect; only the error does.
 * - With `durableObjectStore`, isolate two's stale closed verdict of B (older than `verdictTtl`) lets its
 *   first call to B, direct or through a redirect, go while isolate one's probe holds the lease (the documented
 *   verdict cache): the test reads the object first (`health()`), as a busy isolate would have.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  type FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  isFallbackExhaustedError,
  type RequestEvent,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, type HttpUpstream, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { objectNamespace } from "../helpers/object-namespace.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // the first host: answers with a redirect
const B = httpUpstream(); // the redirect's target: its breaker opened by a 503
const C = httpUpstream(); // a spare
serveDuringFile(A, B, C);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const, maxAttempts: 3 };
const breaker = { failureThreshold: 1, timeout: 60_000 };

const redirectTo =
  (target: () => string, status = 307) =>
  (h: { res: import("node:http").ServerResponse }) => {
    h.res.statusCode = status;
    h.res.setHeader("location", target());
    h.res.end();
  };

/** Opens `host`'s breaker in `layer` with one 503, then lets the server answer "ok" again (a hop that went would show). */
async function open(layer: { fetch: typeof fetch }, host: HttpUpstream, path = "/trip") {
  host.on((h) => {
    h.res.statusCode = 503;
    h.res.end("down");
  });
  const res = await layer.fetch(`${host.base}${path}`);
  expect(res.status).toBe(503);
  await res.text();
  host.reset();
}

function layerWithOpenB(options: ResilienceOptions = {}) {
  const layer = createResilience({ retry: fast, breaker, ...options });
  return { layer, ready: open(layer, B) };
}

const sent = (h: HttpUpstream) => h.hits.map((hit) => `${hit.method} ${hit.path} ${hit.body}`);

describe("plain calls", () => {
  it("GET: the refused hop's error has afterRedirect true; the first host had it once, the target nothing", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(layer.fetch(`${A.base}/get`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["GET /get "]);
    expect(B.hits).toEqual([]);
  });

  it("keyless POST under retries: afterRedirect true, enumerable, in JSON; the POST reached A once", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const error = (await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }))) as CircuitOpenError;
    expect(error.afterRedirect).toBe(true);
    expect(Object.keys(error)).toContain("afterRedirect");
    expect(JSON.parse(JSON.stringify(error))).toMatchObject({ key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
    expect(B.hits).toEqual([]);
  });

  it("keyed POST: afterRedirect true as well; a refused hop is not retried", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(
      layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job", headers: { "idempotency-key": "k1" } }),
    );
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("a call refused before sending has no afterRedirect, even right after a flagged one on the same layer", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const first = await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(first).toMatchObject({ afterRedirect: true });
    const direct = await rejection(layer.fetch(`${B.base}/y`, { method: "POST", body: "job" }));
    expect(isCircuitOpenError(direct)).toBe(true);
    expect(direct).not.toBe(first);
    expect("afterRedirect" in (direct as object)).toBe(false);
    expect(JSON.stringify(direct)).not.toContain("afterRedirect");
    expect(B.hits).toEqual([]);
  });

  it("a Request input (keyless POST): afterRedirect true, A had it once", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const request = new Request(`${A.base}/jobs`, { method: "POST", body: "job" });
    const error = await rejection(layer.fetch(request));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("a 303 that turns the POST into a GET: afterRedirect true, the POST not sent again", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/status`, 303));
    const error = await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("several hops (A, A, C) before the refused one: afterRedirect true; each earlier hop sent once", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on((h) => redirectTo(() => (h.path === "/1" ? `${A.base}/2` : `${C.base}/3`))(h));
    C.on(redirectTo(() => `${B.base}/4`, 308));
    const error = await rejection(layer.fetch(`${A.base}/1`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /1 job", "POST /2 job"]);
    expect(sent(C)).toEqual(["POST /3 job"]);
  });

  it("redirect: manual gives the 307; redirect: error rejects without a CircuitOpenError", async () => {
    const { layer, ready } = layerWithOpenB({ retry: false });
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const manual = await layer.fetch(`${A.base}/m`, { redirect: "manual" });
    expect(manual.status).toBe(307);
    const error = await rejection(layer.fetch(`${A.base}/e`, { redirect: "error" }));
    expect(isCircuitOpenError(error)).toBe(false);
    expect(JSON.stringify(error ?? null)).not.toContain("afterRedirect");
    expect(B.hits).toEqual([]);
  });

  it("events and health: the redirect event, a request event naming the error, A healthy and B open", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    const requests: RequestEvent[] = [];
    const redirects: unknown[] = [];
    layer.on("request", (e) => requests.push(e));
    layer.on("redirect", (e) => redirects.push(e));
    A.on(redirectTo(() => `${B.base}/x?token=s3cret`));
    const error = await rejection(layer.fetch(`${A.base}/jobs?key=s3cret`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ afterRedirect: true });
    expect(redirects).toEqual([
      expect.objectContaining({ from: `${A.base}/jobs`, to: `${B.base}/x`, status: 307, crossOrigin: true }),
    ]);
    expect(requests).toEqual([expect.objectContaining({ key: A.host, error: "CircuitOpenError", outcome: "error" })]);
    const health = layer.health();
    expect(health.breakers[B.host]?.state).toBe("open");
    expect(health.breakers[A.host]?.state ?? "closed").toBe("closed");
    expect(JSON.stringify([error, (error as Error).message, (error as Error).stack])).not.toContain("s3cret");
  });
});

describe("fallback chains", () => {
  const chainLayer = (extra: object = {}, endpoints?: Array<{ name: string; url: string }>) =>
    layerWithOpenB({
      fallback: fallback([
        {
          name: "jobs",
          endpoints: endpoints ?? [
            { name: "a", url: `${A.base}/v1` },
            { name: "c", url: `${C.base}/v1` },
          ],
          ...extra,
        },
      ]),
    });

  it("keyless POST: the chain stops at a, whose error has afterRedirect true; c gets nothing", async () => {
    const { layer, ready } = chainLayer();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const error = (await rejection(
      layer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }),
    )) as FallbackExhaustedError;
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect(error.errors.a).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /v1/jobs job"]);
    expect(C.hits).toEqual([]);
    // failureResponse: a refused later hop is a 502, never the 503 that says "declined, send again".
    expect(failureResponse(error).status).toBe(502);
  });

  it("GET: moves on to c; with c open too, a's error has afterRedirect true and c's (passed over) none", async () => {
    const { layer, ready } = chainLayer();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const ok = await layer.fetch(`${A.base}/v1/get`);
    expect(ok.status).toBe(200);
    expect(getResilienceInfo(ok)?.endpoint).toBe("c");
    await open(layer, C);
    const error = (await rejection(layer.fetch(`${A.base}/v1/get`))) as FallbackExhaustedError;
    expect(error.errors.a).toMatchObject({ afterRedirect: true });
    expect(isCircuitOpenError(error.errors.c)).toBe(true);
    expect("afterRedirect" in (error.errors.c as object)).toBe(false);
    expect(failureResponse(error).status).toBe(502);
  });

  it("keyed POST: moves on to c (the key makes it safe), a's error flagged in a failed chain", async () => {
    const { layer, ready } = chainLayer();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const res = await layer.fetch(`${A.base}/v1/jobs`, {
      method: "POST",
      body: "job",
      headers: { "idempotency-key": "k2" },
    });
    expect(res.status).toBe(200);
    expect(sent(C)).toEqual(["POST /v1/jobs job"]);
  });

  it("hedged chain (GET): a's refused hop flagged, c unreachable; a had the GET once", async () => {
    const dead = await refusedOrigin();
    const { layer, ready } = chainLayer({ hedge: { delay: 20 } }, [
      { name: "a", url: `${A.base}/v1` },
      { name: "c", url: `${dead}/v1` },
    ]);
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const error = (await rejection(layer.fetch(`${A.base}/v1/get`))) as FallbackExhaustedError;
    expect(isFallbackExhaustedError(error)).toBe(true);
    expect(error.errors.a).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect("afterRedirect" in (error.errors.c as object)).toBe(false);
    expect(sent(A)).toEqual(["GET /v1/get "]);
  });

  it("a chain transform: the transformed keyless POST reaches a once, its refused hop flagged", async () => {
    const layer = createResilience({
      retry: fast,
      breaker,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            {
              name: "a",
              url: `${A.base}/v1`,
              transform: (req) => ({ ...req, body: { wrapped: req.body } }),
            },
            { name: "c", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    await open(layer, B);
    A.on(redirectTo(() => `${B.base}/x`));
    const error = (await rejection(
      layer.fetch(`${A.base}/v1/jobs`, {
        method: "POST",
        body: '{"prompt":"cat"}',
        headers: { "content-type": "application/json" },
      }),
    )) as FallbackExhaustedError;
    expect(error.errors.a).toMatchObject({ afterRedirect: true });
    expect(sent(A)).toEqual(['POST /v1/jobs {"wrapped":{"prompt":"cat"}}']);
    expect(C.hits).toEqual([]);
  });

  it("a breaker key that quotes the URL: the chain's redaction cuts the query, afterRedirect stays", async () => {
    const layer = createResilience({
      retry: false,
      breaker: { ...breaker, key: (url: URL) => url.href },
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "c", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    await open(layer, B, "/x?token=s3cret");
    await open(layer, C, "/v1/get");
    A.on(redirectTo(() => `${B.base}/x?token=s3cret`));
    const error = (await rejection(layer.fetch(`${A.base}/v1/get`))) as FallbackExhaustedError;
    const a = error.errors.a as CircuitOpenError;
    expect(a).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(`${a.message} ${a.stack}`).not.toContain("s3cret");
  });
});

describe("degradation, nesting, ky", () => {
  it("a degradation rewrite: the rewritten keyless POST reaches A once, the refused hop flagged", async () => {
    const { layer, ready } = layerWithOpenB({ degradation: degradation() });
    await ready;
    layer.degradation?.degrade("test");
    layer.degradation?.degrade("test");
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(
      layer.fetch(`${A.base}/gen`, {
        method: "POST",
        body: JSON.stringify({ steps: 50 }),
        headers: { "content-type": "application/json" },
      }),
    );
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(A.hits.length).toBe(1);
    expect(JSON.parse(A.hits[0]?.body ?? "{}").steps).toBeLessThan(50);
  });

  it("nested layers: the outer follows; B open in the inner only: flagged, A had the keyless POST once", async () => {
    const inner = createResilience({ retry: fast, breaker });
    await open(inner, B);
    const outer = createResilience({ retry: fast, breaker, fetch: inner.fetch });
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
    expect(B.hits).toEqual([]);
  });

  it("nested layers: B open in the outer only: the outer's gate refuses, flagged", async () => {
    const inner = createResilience({ retry: fast, breaker });
    const outer = createResilience({ retry: fast, breaker, fetch: inner.fetch });
    await open(outer, B);
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("nested layers, the outer leaving redirects to its transport (the inner follows): flagged, sent once", async () => {
    const inner = createResilience({ retry: fast, breaker });
    await open(inner, B);
    const outer = createResilience({ retry: fast, breaker, fetch: inner.fetch, redirects: "platform" });
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("ky client: the error ky gives is the CircuitOpenError, afterRedirect true, A had the POST once", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const api = createClient({ resilience: layer, prefix: A.base });
    const error = await rejection(api.post("jobs", { json: { prompt: "cat" } }));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(['POST /jobs {"prompt":"cat"}']);
  });
});

describe("Cloudflare entries, called as plain handlers in Node", () => {
  const ctx = { waitUntil: () => {} };

  it("resilientProxy: a refused later hop is a 502, a refused call a 503 with Retry-After; A had the POST once", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/a", upstream: A.base },
        { path: "/b", upstream: B.base },
      ],
      resilience: { retry: fast, breaker },
    });
    B.on((h) => {
      h.res.statusCode = 503;
      h.res.end("down");
    });
    expect((await proxy.fetch(new Request("https://proxy.example/b/trip"), {}, ctx)).status).toBe(503);
    B.reset();
    A.on(redirectTo(() => `${B.base}/x`));
    const viaRedirect = await proxy.fetch(
      new Request("https://proxy.example/a/jobs", { method: "POST", body: "job" }),
      {},
      ctx,
    );
    expect(viaRedirect.status).toBe(502);
    expect(viaRedirect.headers.get("retry-after")).toBeNull();
    const direct = await proxy.fetch(
      new Request("https://proxy.example/b/jobs", { method: "POST", body: "job" }),
      {},
      ctx,
    );
    expect(direct.status).toBe(503);
    expect(direct.headers.get("retry-after")).not.toBeNull();
    expect(sent(A)).toEqual(["POST /jobs job"]);
    expect(B.hits).toEqual([]);
  });

  it("failureResponse on a plain call's errors: 502 for the flagged, 503 for the refused call", async () => {
    const { layer, ready } = layerWithOpenB();
    await ready;
    A.on(redirectTo(() => `${B.base}/x`));
    const flagged = await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    const plain = await rejection(layer.fetch(`${B.base}/jobs`));
    expect(failureResponse(flagged).status).toBe(502);
    expect(failureResponse(plain).status).toBe(503);
  });
});

describe("half-open hosts: every probe slot taken, here or in the Durable Object", () => {
  const T0 = Date.UTC(2026, 0, 1);
  const oneProbe = { failureThreshold: 1, timeout: 10_000, halfOpenMaxCalls: 1, failureRate: undefined } as never;
  const redirectToB = redirectTo(() => `${B.base}/x`);
  /** A probe to B that B holds until `release`. */
  function holdB() {
    const held: { release: () => void } = { release: () => {} };
    B.on((h) => {
      held.release = () => h.res.end("ok");
    });
    return held;
  }
  function ctxOf() {
    const tasks: Promise<unknown>[] = [];
    return {
      waitUntil(promise: Promise<unknown>) {
        tasks.push(promise);
      },
      async settle() {
        for (let done = 0; done < tasks.length; ) {
          const end = tasks.length;
          await Promise.all(tasks.slice(done, end));
          done = end;
        }
      },
    };
  }

  it("one layer: the probe slot is taken, the hop is refused flagged, retryAt the probe lease's expiry", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: false, breaker: oneProbe });
    B.on((h) => {
      h.res.statusCode = 503;
      h.res.end("down");
    });
    await (await layer.fetch(`${B.base}/trip`)).text();
    await clock.advance(10_001);
    expect(layer.health().breakers[B.host]?.state).toBe("half_open");
    const held = holdB();
    const probe = layer.fetch(`${B.base}/probe`);
    await B.nth(2);
    A.on(redirectToB);
    const error = await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    held.release();
    expect((await probe).status).toBe(200);
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect((error as CircuitOpenError).retryAt).toBeGreaterThan(clock.now());
    expect(B.hits.map((h) => h.path)).toEqual(["/trip", "/probe"]);
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });

  it("durableObjectStore: another isolate holds the object's only lease; the hop is refused flagged", async () => {
    const clock = new TestClock(T0);
    const namespace = objectNamespace(clock);
    const isolate = () => {
      const ctx = ctxOf();
      const layer = createResilience({
        clock,
        retry: false,
        breaker: oneProbe,
        store: durableObjectStore(namespace, { clock, ctx }),
      });
      return { ctx, layer };
    };
    const one = isolate();
    const two = isolate();
    await (await one.layer.fetch(`${B.base}/0`)).text();
    await (await two.layer.fetch(`${B.base}/0`)).text();
    await one.ctx.settle();
    await two.ctx.settle();
    await clock.advance(1_000);
    B.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    await (await one.layer.fetch(`${B.base}/trip`)).text();
    await one.ctx.settle();
    await clock.advance(11_000);
    // Isolate two reads the object again (its closed verdict of B has run out): half-open there.
    two.layer.health();
    await two.ctx.settle();
    expect(two.layer.health().breakers[B.host]?.state).toBe("half_open");
    const held = holdB();
    const probe = one.layer.fetch(`${B.base}/probe`);
    await B.nth(4);
    A.on(redirectToB);
    const error = await rejection(two.layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    held.release();
    expect((await probe).status).toBe(200);
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect((error as CircuitOpenError).retryAt).toBeGreaterThan(clock.now());
    expect(B.hits.map((h) => h.path)).toEqual(["/0", "/0", "/trip", "/probe"]);
    expect(sent(A)).toEqual(["POST /jobs job"]);
  });
});

describe("a retry whose redirect hop is refused (defects)", () => {
  const busyThenRedirect = (h: Hit) => {
    if (h.n % 2 === 1) {
      h.res.statusCode = 503;
      h.res.end("busy");
      return;
    }
    redirectTo(() => `${B.base}/x`)(h);
  };
  /** B needs two failures to open, so that A's one 503 is retried. */
  async function twoToOpen(layer: { fetch: typeof fetch }) {
    B.on((h) => {
      h.res.statusCode = 503;
      h.res.end("down");
    });
    // One call: its 503 and its retry's 503 open B; the next retry is refused, the call settles with the 503.
    await (await layer.fetch(`${B.base}/trip`)).text();
    expect(B.hits.length).toBe(2);
    B.reset();
  }
  const breaker2 = { failureThreshold: 2, timeout: 60_000 };

  it("keyless POST: A declines (503), the retry reaches A, whose redirect hop is refused: the call rejects flagged", async () => {
    const layer = createResilience({ retry: fast, breaker: breaker2 });
    await twoToOpen(layer);
    expect(layer.health().breakers[B.host]?.state).toBe("open");
    A.on(busyThenRedirect);
    const outcome = await layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }).then(
      (res) => res,
      (error: unknown) => error,
    );
    // A had the POST twice: the 503 declined it, the second it answered with the redirect.
    expect(sent(A)).toEqual(["POST /jobs job", "POST /jobs job"]);
    // Observed: the call resolves with the first attempt's 503 (`redirected` false), which says "declined".
    expect(outcome).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
  });

  it("keyless POST in a chain: a's retry had the POST (its hop refused), so c is never sent it", async () => {
    const layer = createResilience({
      retry: fast,
      breaker: breaker2,
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "c", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    await twoToOpen(layer);
    A.on(busyThenRedirect);
    const outcome = await layer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }).then(
      (res) => `resolved ${res.status} from ${getResilienceInfo(res)?.endpoint}`,
      (error: unknown) => error,
    );
    expect(sent(A)).toEqual(["POST /v1/jobs job", "POST /v1/jobs job"]);
    // Observed: "resolved 200 from c": c processed the job that A had processed.
    expect(sent(C)).toEqual([]);
    expect(isFallbackExhaustedError(outcome)).toBe(true);
    expect((outcome as FallbackExhaustedError).errors.a).toMatchObject({ afterRedirect: true });
  });

  it("resilientProxy: its client hears 502, not a 503 it may resend; a client layer's keyless POST is processed once", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/a", upstream: A.base },
        { path: "/b", upstream: B.base },
      ],
      resilience: { retry: fast, breaker: breaker2 },
    });
    const ctx = { waitUntil: () => {} };
    const viaProxy = (input: RequestInfo | URL, init?: RequestInit) => proxy.fetch(new Request(input, init), {}, ctx);
    B.on((h) => {
      h.res.statusCode = 503;
      h.res.end("down");
    });
    await (await viaProxy("https://proxy.example/b/trip")).text();
    expect(B.hits.length).toBe(2);
    B.reset();
    A.on(busyThenRedirect);
    const client = createResilience({ retry: fast, fetch: viaProxy });
    const res = await client.fetch("https://proxy.example/a/jobs", { method: "POST", body: "job" });
    // Every even request A answered with the redirect: it had the job (processed).
    const processed = A.hits.filter((h) => h.n % 2 === 0).length;
    // Observed: 503 "busy" each time, the client resent it: A processed the job 3 times (6 requests).
    expect(processed).toBe(1);
    expect(res.status).toBe(502);
  });

  it("GET: the first attempt's connection reset, the retry's hop refused: the call rejects with that refusal, flagged", async () => {
    const layer = createResilience({ retry: fast, breaker: breaker2 });
    await twoToOpen(layer);
    A.on((h) => {
      if (h.n === 1) h.res.socket?.destroy();
      else redirectTo(() => `${B.base}/x`)(h);
    });
    const error = await rejection(layer.fetch(`${A.base}/get`));
    expect(A.hits.length).toBe(2);
    // Observed: RetryExhaustedError (2 attempts) whose cause is the first attempt's "fetch failed".
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
  });
});
