/**
 * Outside-in attack on docs/retry.md "Redirects" on every path, not only the plain `resilience.fetch(url)`
 * call: a fallback chain of 2-3 endpoints (fixed order, hedged, with a `transform` that changes the URL, a
 * custom `breaker.key`), a `Request` input (with a body and headers), a request a degradation rule
 * rewrote, the ky client (`createClient`), `resilientProxy` in Node with an empty env, `resilience.execute`.
 * The subject first: the hop back to the attempt's own host (through a chain the endpoint's host, through a
 * `transform` the transformed URL's, with a custom `breaker.key` the key's), then hops to hosts whose
 * breaker refuses, the attempt's end (abort, timeouts, a losing hedge), which breaker counts, the hold,
 * headers, methods, the hop limit, events and redaction. How: public entries only, `redirects: "library"`,
 * a user `fetch` answering by host (a.test, b.test…, no network) that records each request it sends
 * (method, URL, body, headers), `TestClock` for every wait and for answers that come late. What the earlier
 * files checked (a hop to an open host on a plain call, a `Request`, a hedged chain, the proxy, ky; a
 * half-open probe a → b → a or a → a on a plain call; shared stores; a clock set back) is not repeated.
 *
 * Defects pinned (first `it.fails` asserting the documented promise, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. A redirect that answers after the attempt was given up is still followed, by a transport that ignores
 *    its signal: the call has already rejected (the caller's reason, a `TimeoutError` of phase `attempt` or
 *    `total`) or the hedge has lost, and the library then sends the next hop, a PUT's or POST's body to the
 *    307's target, or the 303's GET, and emits its `redirect` event. (a) a caller's abort, (b)
 *    `timeout.attempt`, (c) `timeout.total`, (d) the losing endpoint of a hedged chain. docs/retry.md "Fetch
 *    semantics are kept": "A caller's abort is never a failure: it stops the wait or the attempt at once and
 *    rejects with `signal.reason`, as the timeouts end theirs, even when the transport ignores its signal (an
 *    answer it gives later is dropped, its body cancelled)"; "Idempotency": "After a 500, a reset connection
 *    or a timeout it is not sent again"; "Redirects": "The hops are one attempt: the attempt timeout covers
 *    them all"; docs/fallback.md (hedge): "the first acceptable answer wins and the other is aborted". Cause:
 *    src/http/send/follow-redirects.ts, `followRedirects` hands the first hop's late answer to `follow()`,
 *    which never looks at the attempt's signal (`init.signal`, aborted by then) before a hop; the
 *    `untilAborted` of src/http/send/send-attempt.ts only drops the promise's final answer (`dropLate`), it
 *    cannot stop the follower running behind it. (A transport that honours its signal refuses the hop at
 *    once, so a platform `fetch` sends nothing more.)
 *
 * Held (plain `it`): a hop back to the attempt's own host, from a half-open probe holding the only slot, is
 * followed on a chain (the endpoint's host, the caller's host open), through a `transform` (the transformed
 * URL's host), with a custom `breaker.key` pooling ports, with a `Request` POST 307 (body replayed, headers
 * kept), a degradation-rewritten PUT 307 (rewritten body replayed), ky's POST 303 and the proxy's POST 307.
 * A chain's POST without a key whose 307 is refused at an open host stops there (`CircuitOpenError` naming
 * it in `errors.e1`); a hop to a half-open host with its only slot taken, from a hedged chain, sends nothing
 * there; the proxy's chain route does not pass a POST whose 307 target refused the connection to the next
 * endpoint (502); `execute` around a refused hop rejects with `CircuitOpenError` naming the hop's host. The
 * attempt timeout covers every hop and counts against the first host only; through a `transform` the
 * transformed URL's host counts the final status and the final host is held for its `Retry-After` (not the
 * endpoint URL's host); a half-open host reached with a free slot is held by its answer's `Retry-After`.
 * 301/302 POST → GET, 303 non-GET/HEAD → GET (body and content headers dropped), HEAD stays HEAD, 301 PUT
 * and 302 DELETE keep body, 307/308 replay; an http → https hop drops `x-api-key` and keeps the
 * allowlist; `redirect` events on a chain (redacted `from`/`to`, `dropped` naming the caller's, the
 * endpoint's and the transform's headers, nothing put back on the way home); a hop failure quoting the hop
 * URL with a secret query leaves it in no error, event, `health()` or `debugInfo()`; 20 hops followed, the
 * 21st refused, a POST not sent again; the level header stays home; `redirect: "manual"` untouched through
 * a chain, ky, a chain that moved on (a `Request`'s own mode) and a degradation rewrite.
 *
 * Suspicious, not pinned (docs silent or the promise holds in its letter):
 * - `execute(fn)` around a `resilience.fetch` POST whose followed redirect failed at its target (a refused
 *   connection: a `RetryExhaustedError`) runs `fn` again and so sends the POST again: "Both retry every
 *   thrown error except an abort" against "a request that is not idempotent is not sent again" (a refused
 *   hop's `CircuitOpenError` is not retried by `execute`);
 * - a hop is gated by breaker key, so with a `breaker.key` that splits one host by path a hop within the
 *   host to another key's open breaker is refused, where the docs speak of "another host" and "the first
 *   host"; a key that pools hosts lets a hop to another host pass as the attempt's own (the docs now say
 *   so: "Hosts here are breakers", docs/retry.md "Redirects");
 * - the `redirect` event of defect 1's late hop fires after the call has settled (its `request` event came
 *   first).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  isCircuitOpenError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const SECOND = 1_000;

type Answer = (url: URL, request: Request) => Response | Promise<Response>;

interface Sent {
  method: string;
  url: string;
  host: string;
  body: string;
  headers: Record<string, string>;
}

/** A fetch answering by host, recording every request that left (method, URL, body, headers). */
function hosts(table: Record<string, Answer>, sent: Sent[]) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const body = request.body ? await request.clone().text() : "";
    sent.push({
      method: request.method,
      url: url.href,
      host: url.host,
      body,
      headers: Object.fromEntries(request.headers),
    });
    const answer = table[url.host];
    if (!answer) throw new TypeError("fetch failed");
    return answer(url, request);
  };
}

/** An answer that reads only the URL. */
type Plain = (url: URL) => Response;

const redirectTo =
  (location: string, code = 302): Plain =>
  () =>
    new Response(null, { status: code, headers: { location } });
const status =
  (code: number, headers?: Record<string, string>): Plain =>
  () =>
    new Response("x", { status: code, ...(headers ? { headers } : {}) });
/** Redirects the first path to `location`, answers `code` on any other. */
const redirectOnce =
  (from: string, location: string, code = 307, then = 200): Plain =>
  (url) =>
    url.pathname === from
      ? new Response(null, { status: code, headers: { location } })
      : new Response("ok", { status: then });

/** A call's outcome as text: the status, or the error's name (and key). */
function outcome(clock: TestClock, call: Promise<Response>): Promise<string> {
  return clock.run(call).then(
    (r) => String(r.status),
    (e: unknown) => (isCircuitOpenError(e) ? `CircuitOpenError ${e.key}` : (e as Error).name),
  );
}

const where = (sent: Sent[]) => sent.map((s) => `${s.method} ${s.host}${new URL(s.url).pathname}`);

function layerOn(clock: TestClock, table: Record<string, Answer>, sent: Sent[], options: ResilienceOptions = {}) {
  return createResilience({
    clock,
    retry: false,
    redirects: "library",
    fetch: hosts(table, sent),
    ...options,
  });
}

/** Opens `url`'s host breaker (failureThreshold 1) with one 503, then lets `ms` pass. */
async function openThenWait(
  clock: TestClock,
  layer: { fetch: (u: string) => Promise<Response> },
  url: string,
  ms: number,
) {
  await outcome(clock, layer.fetch(url));
  await clock.advance(ms);
}

// ---------------------------------------------------------------------------------------------
describe("1. defect: a redirect answered after the attempt was given up is still followed (a transport that ignores its signal)", () => {
  it("a caller's abort during the first hop: the redirect that answers late is not followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": () =>
        new Promise<Response>((resolve) =>
          clock.setTimer(
            () => resolve(new Response(null, { status: 307, headers: { location: "http://b.test/x" } })),
            500,
          ),
        ),
      "b.test": status(200),
    };
    const layer = layerOn(clock, table, sent, {});
    const controller = new AbortController();
    const call = layer.fetch("http://a.test/x", { method: "PUT", body: "paid", signal: controller.signal });
    clock.setTimer(() => controller.abort(new Error("user left")), 100);
    expect(await clock.run(call).catch((e: Error) => e.message)).toBe("user left");
    await clock.advance(2 * SECOND);
    expect(where(sent)).toEqual(["PUT a.test/x"]);
  });

  it("timeout.attempt passing during the first hop: the redirect that answers late is not followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": () =>
        new Promise<Response>((resolve) =>
          clock.setTimer(
            () => resolve(new Response(null, { status: 307, headers: { location: "http://b.test/x" } })),
            1500,
          ),
        ),
      "b.test": status(200),
    };
    const layer = layerOn(clock, table, sent, { timeout: { attempt: SECOND } });
    const error = await clock
      .run(layer.fetch("http://a.test/x", { method: "POST", body: "paid" }))
      .catch((e: unknown) => e);
    expect(isTimeoutError(error)).toBe(true);
    await clock.advance(2 * SECOND);
    expect(where(sent)).toEqual(["POST a.test/x"]);
  });

  it("timeout.total passing during the first hop: the redirect that answers late is not followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": () =>
        new Promise<Response>((resolve) =>
          clock.setTimer(
            () => resolve(new Response(null, { status: 303, headers: { location: "http://b.test/x" } })),
            1500,
          ),
        ),
      "b.test": status(200),
    };
    const layer = layerOn(clock, table, sent, { timeout: { total: SECOND } });
    const error = await clock
      .run(layer.fetch("http://a.test/x", { method: "POST", body: "paid" }))
      .catch((e: unknown) => e);
    expect(isTimeoutError(error)).toBe(true);
    await clock.advance(2 * SECOND);
    expect(where(sent)).toEqual(["POST a.test/x"]);
  });

  it("a hedged chain: the loser's late 307 is not followed once the other endpoint won", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": () =>
        new Promise<Response>((resolve) =>
          clock.setTimer(
            () => resolve(new Response(null, { status: 307, headers: { location: "http://b.test/x" } })),
            500,
          ),
        ),
      "b.test": status(200),
      "c.test": status(200),
    };
    const layer = layerOn(clock, table, sent, {
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v1" },
          ],
        },
      ]),
    });
    expect(await outcome(clock, layer.fetch("http://a.test/v1/x"))).toBe("200");
    await clock.advance(2 * SECOND);
    expect(where(sent)).toEqual(["GET a.test/v1/x", "GET c.test/v1/x"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("A. a hop back to the attempt's own host is part of the attempt (a half-open probe, one slot)", () => {
  const breaker = { failureThreshold: 1, timeout: 10 * SECOND, halfOpenMaxCalls: 1, successThreshold: 1 };

  it("a chain: the own host is the endpoint's (c.test), not the caller's (a.test, open)", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let cCode = 503;
    const table: Record<string, Answer> = {
      "a.test": status(503),
      "c.test": (url) =>
        url.pathname === "/v2/x" && cCode === 200
          ? new Response(null, { status: 307, headers: { location: "/v2/x/" } })
          : new Response("c", { status: cCode }),
    };
    const layer = layerOn(clock, table, sent, {
      breaker,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v2" },
          ],
        },
      ]),
    });
    // c.test opens, then half-opens; a.test opens just before the call.
    await openThenWait(clock, layer, "http://c.test/v2/y", 10 * SECOND);
    expect(await outcome(clock, layer.fetch("http://a.test/other"))).toBe("503");
    cCode = 200;
    sent.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test/v1/x"))).toBe("200");
    expect(where(sent)).toEqual(["GET c.test/v2/x", "GET c.test/v2/x/"]);
    expect(layer.health().breakers["c.test"]?.state).toBe("closed");
  });

  it("a transform that sends to d.test: the own host is the transformed URL's", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let dCode = 503;
    const table: Record<string, Answer> = {
      "a.test": status(503),
      "d.test": (url) =>
        dCode === 200 && url.pathname === "/v9/x"
          ? new Response(null, { status: 308, headers: { location: "http://d.test/v9/x/" } })
          : new Response("d", { status: dCode }),
    };
    const layer = layerOn(clock, table, sent, {
      breaker,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://b.test/v2", transform: (req) => ({ ...req, url: "http://d.test/v9/x" }) },
          ],
        },
      ]),
    });
    await openThenWait(clock, layer, "http://d.test/v9/y", 10 * SECOND);
    dCode = 200;
    sent.length = 0;
    expect(
      await outcome(clock, layer.fetch("http://a.test/v1/x", { method: "PUT", body: JSON.stringify({ p: 1 }) })),
    ).toBe("200");
    expect(where(sent)).toEqual(["PUT a.test/v1/x", "PUT d.test/v9/x", "PUT d.test/v9/x/"]);
    expect(sent[2]?.body).toBe('{"p":1}');
  });

  it("a custom breaker.key (hostname, ports pooled): a hop to another port of the key's host is the attempt's own", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test:8080": (url) => (code === 200 ? redirectTo("http://a.test:9090/x", 302)(url) : status(503)(url)),
      "a.test:9090": status(200),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { ...breaker, key: (url: URL) => url.hostname },
    });
    await openThenWait(clock, layer, "http://a.test:8080/x", 10 * SECOND);
    code = 200;
    sent.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test:8080/x"))).toBe("200");
    expect(where(sent)).toEqual(["GET a.test:8080/x", "GET a.test:9090/x"]);
    expect(layer.health().breakers["a.test"]?.state).toBe("closed");
  });

  it("a custom breaker.key that splits a host by path: a hop to another path's open breaker is another host's, refused", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": (url) =>
        url.pathname.startsWith("/old/") ? redirectTo("http://a.test/gen/x", 302)(url) : status(503)(url),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { ...breaker, key: (url: URL) => `${url.host}/${url.pathname.split("/")[1]}` },
    });
    // Open the breaker of a.test/gen only (one 503), then call a.test/old, which redirects there.
    await outcome(clock, layer.fetch("http://a.test/gen/x"));
    sent.length = 0;
    expect(await outcome(clock, layer.fetch("http://a.test/old/x"))).toBe("CircuitOpenError a.test/gen");
    expect(where(sent)).toEqual(["GET a.test/old/x"]);
    expect(layer.health().breakers["a.test/old"]?.state).toBe("closed");
    expect(layer.health().breakers["a.test/gen"]?.state).toBe("open");
  });

  it("a Request input with a body and headers (POST 307 with an Idempotency-Key): followed, body replayed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test": (url) => (code === 200 ? redirectOnce("/jobs", "/jobs/", 307)(url) : status(503)(url)),
    };
    const layer = layerOn(clock, table, sent, { breaker });
    await openThenWait(clock, layer, "http://a.test/jobs", 10 * SECOND);
    code = 200;
    sent.length = 0;
    const request = new Request("http://a.test/jobs", {
      method: "POST",
      headers: { "x-api-key": "k", "idempotency-key": "i1", "content-type": "application/json" },
      body: '{"prompt":"cat"}',
    });
    expect(await outcome(clock, layer.fetch(request))).toBe("200");
    expect(where(sent)).toEqual(["POST a.test/jobs", "POST a.test/jobs/"]);
    expect(sent[1]?.body).toBe('{"prompt":"cat"}');
    expect(sent[1]?.headers["x-api-key"]).toBe("k");
  });

  it("a request a degradation rule rewrote: the probe's own-host hop carries the rewritten body", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test": (url) => (code === 200 ? redirectOnce("/v1/gen", "/v1/gen/", 307)(url) : status(503)(url)),
    };
    const layer = layerOn(clock, table, sent, {
      breaker,
      degradation: degradation({ rules: [{ match: "http://a.test/v1", params: { steps: "steps" } }] }),
    });
    layer.degradation?.setLevel("medium");
    await openThenWait(clock, layer, "http://a.test/v1/other", 10 * SECOND);
    code = 200;
    sent.length = 0;
    expect(
      await outcome(
        clock,
        layer.fetch("http://a.test/v1/gen", {
          method: "PUT",
          body: '{"steps":50}',
          headers: { "content-type": "application/json" },
        }),
      ),
    ).toBe("200");
    expect(where(sent)).toEqual(["PUT a.test/v1/gen", "PUT a.test/v1/gen/"]);
    expect(sent[1]?.body).toBe('{"steps":30}');
  });

  it("the ky client: a probe redirected back to its own host is followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test": (url) => (code === 200 ? redirectOnce("/v1/x", "/v1/y", 303)(url) : status(503)(url)),
    };
    const layer = layerOn(clock, table, sent, { breaker });
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    await openThenWait(clock, layer, "http://a.test/v1/z", 10 * SECOND);
    code = 200;
    sent.length = 0;
    const res = await clock.run(api.post("http://a.test/v1/x", { json: { a: 1 } }) as unknown as Promise<Response>);
    expect(res.status).toBe(200);
    expect(where(sent)).toEqual(["POST a.test/v1/x", "GET a.test/v1/y"]);
  });

  it("resilientProxy (Node, empty env): an upstream probe redirected back to its own host is followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let code = 503;
    const table: Record<string, Answer> = {
      "a.test": (url) => (code === 200 ? redirectOnce("/v1/x", "/v1/x/", 307)(url) : status(503)(url)),
    };
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: "http://a.test" }],
      resilience: { clock, retry: false, redirects: "library", fetch: hosts(table, sent), breaker },
    });
    const ctx = { waitUntil() {} };
    const call = (path: string, init?: RequestInit) =>
      proxy.fetch(new Request(`http://proxy.test${path}`, init), {}, ctx);
    expect(await outcome(clock, call("/v1/z"))).toBe("503");
    await clock.advance(10 * SECOND);
    code = 200;
    sent.length = 0;
    expect(await outcome(clock, call("/v1/x", { method: "POST", body: "hi" }))).toBe("200");
    expect(where(sent)).toEqual(["POST a.test/v1/x", "POST a.test/v1/x/"]);
    expect(sent[1]?.body).toBe("hi");
  });
});

// ---------------------------------------------------------------------------------------------
describe("B. a hop refused (a breaker) or failing (a connection): named, and nothing sent again", () => {
  it("a POST without a key: a's 307 to an open b is refused, and the chain does not move on", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/jobs", 307),
      "b.test": status(503),
      "c.test": status(200),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v1" },
          ],
        },
      ]),
    });
    expect(await outcome(clock, layer.fetch("http://b.test/open"))).toBe("503");
    sent.length = 0;
    const error = await clock
      .run(layer.fetch("http://a.test/v1/x", { method: "POST", body: "paid" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const e1 = (error as FallbackExhaustedError).errors.e1;
    expect(isCircuitOpenError(e1) && e1.key).toBe("b.test");
    expect(where(sent)).toEqual(["POST a.test/v1/x"]);
  });

  it("a hop to a half-open host whose only slot is taken, through a hedged chain: refused naming it, nothing sent there", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let bCode = 503;
    let release: (() => void) | undefined;
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/y", 302),
      "b.test": () =>
        bCode === 503
          ? new Response("b", { status: 503 })
          : new Promise<Response>((resolve) => {
              release = () => resolve(new Response("b"));
            }),
      "c.test": status(503),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { failureThreshold: 1, timeout: 10 * SECOND, halfOpenMaxCalls: 1 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 100 },
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v1" },
          ],
        },
      ]),
    });
    await outcome(clock, layer.fetch("http://b.test/open"));
    await clock.advance(10 * SECOND);
    bCode = 200;
    const probe = layer.fetch("http://b.test/probe");
    await clock.advance(1);
    sent.length = 0;
    const result = await outcome(clock, layer.fetch("http://a.test/v1/x"));
    release?.();
    await clock.run(probe);
    expect(result).toBe("503");
    expect(where(sent)).toEqual(["GET a.test/v1/x", "GET c.test/v1/x"]);
  });

  it("the proxy's chain route (Node, empty env): a POST whose 307 target refuses the connection is not sent to the next endpoint", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/y", 307),
      "c.test": status(200),
    };
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "e1", url: "http://a.test/v1" },
              { name: "e2", url: "http://c.test/v1" },
            ],
          },
        },
      ],
      resilience: { clock, retry: { maxAttempts: 3 }, redirects: "library", fetch: hosts(table, sent) },
    });
    const res = await clock.run(
      proxy.fetch(
        new Request("http://proxy.test/v1/x", { method: "POST", body: "paid", headers: { "x-api-key": "k" } }),
        {},
        {
          waitUntil() {},
        },
      ),
    );
    expect(res.status).toBe(502);
    expect(where(sent)).toEqual(["POST a.test/v1/x", "POST b.test/y"]);
    expect(sent[1]?.headers["x-api-key"]).toBeUndefined();
    expect(sent[1]?.body).toBe("paid");
  });

  it("execute around a fetch whose hop is refused: CircuitOpenError naming b", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const layer = layerOn(clock, { "a.test": redirectTo("http://b.test/y"), "b.test": status(503) }, sent, {
      breaker: { failureThreshold: 1 },
    });
    await outcome(clock, layer.fetch("http://b.test/open"));
    sent.length = 0;
    const error = await clock
      .run(layer.execute(() => layer.fetch("http://a.test/x"), { retry: { maxAttempts: 1 } }))
      .catch((e: unknown) => e);
    const open = isCircuitOpenError(error) ? error : (error as Error).cause;
    expect(isCircuitOpenError(open) && open.key).toBe("b.test");
    expect(where(sent)).toEqual(["GET a.test/x"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("C. the hops are one attempt: its timeout, the breaker that counts, the hold", () => {
  it("the attempt timeout covers every hop; the final status's breaker", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const slow =
      (ms: number, make: () => Response): Answer =>
      () =>
        new Promise<Response>((resolve) => clock.setTimer(() => resolve(make()), ms));
    const table: Record<string, Answer> = {
      "a.test": slow(600, () => new Response(null, { status: 302, headers: { location: "http://b.test/x" } })),
      "b.test": slow(600, () => new Response("b", { status: 200 })),
    };
    const layer = layerOn(clock, table, sent, { timeout: { attempt: SECOND }, breaker: { failureThreshold: 1 } });
    const error = await clock.run(layer.fetch("http://a.test/x")).catch((e: unknown) => e);
    expect(isTimeoutError(error)).toBe(true);
    expect(layer.health().breakers["a.test"]?.state).toBe("open");
    expect(layer.health().breakers["b.test"]).toBeUndefined();
  });

  it("a transform's URL: its host's breaker counts the final status; a hold goes to the host that sent it", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": status(500),
      "d.test": redirectTo("http://e.test/x", 302),
      "e.test": status(503, { "retry-after": "3600" }),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { failureThreshold: 1, timeout: 30 * SECOND },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://b.test/v2", transform: (req) => ({ ...req, url: "http://d.test/v9" }) },
          ],
        },
      ]),
    });
    expect(await outcome(clock, layer.fetch("http://a.test/v1/x"))).toBe("503");
    const b = layer.health().breakers;
    expect(b["d.test"]?.state).toBe("open");
    expect(b["e.test"]?.state).toBe("open");
    expect((b["e.test"]?.openUntil ?? 0) - clock.now()).toBe(3600 * SECOND);
    expect(b["b.test"]).toBeUndefined();
  });

  it("a hold on the final answer of a half-open host the hop reached with a free slot: that host is held", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let bRa = false;
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/y", 302),
      "b.test": () =>
        bRa
          ? new Response("b", { status: 503, headers: { "retry-after": "3600" } })
          : new Response("b", { status: 503 }),
    };
    const layer = layerOn(clock, table, sent, {
      breaker: { failureThreshold: 1, timeout: 10 * SECOND, halfOpenMaxCalls: 1 },
    });
    await outcome(clock, layer.fetch("http://b.test/open"));
    await clock.advance(10 * SECOND);
    expect(layer.health().breakers["b.test"]?.state).toBe("half_open");
    bRa = true;
    expect(await outcome(clock, layer.fetch("http://a.test/x"))).toBe("503");
    const b = layer.health().breakers["b.test"];
    expect(b?.state).toBe("open");
    expect((b?.openUntil ?? 0) - clock.now()).toBe(3600 * SECOND);
  });
});

// ---------------------------------------------------------------------------------------------
describe("D. headers, methods, the hop limit, events, manual calls", () => {
  it("301/302/303/307/308 method and body rules, scheme change drops credentials", async () => {
    const clock = new TestClock(0);
    const cases: [number, string, string, string][] = [
      [301, "POST", "GET", ""],
      [302, "POST", "GET", ""],
      [303, "PUT", "GET", ""],
      [303, "HEAD", "HEAD", ""],
      [301, "PUT", "PUT", "data"],
      [302, "DELETE", "DELETE", "data"],
      [307, "POST", "POST", "data"],
      [308, "PATCH", "PATCH", "data"],
    ];
    for (const [code, method, expected, body] of cases) {
      const sent: Sent[] = [];
      const layer = layerOn(
        clock,
        { "a.test": redirectOnce("/x", "https://a.test/y", code), "a.test:443": status(200) },
        sent,
      );
      const init: RequestInit = {
        method,
        headers: { "content-type": "text/plain", "x-api-key": "k", "idempotency-key": "i" },
        ...(method === "HEAD" ? {} : { body: "data" }),
      };
      await outcome(clock, layer.fetch("http://a.test/x", init));
      expect(sent[1]?.method, `${code} ${method}`).toBe(expected);
      expect(sent[1]?.body, `${code} ${method}`).toBe(body);
      expect(sent[1]?.headers["x-api-key"], `${code} ${method}`).toBeUndefined();
      expect(sent[1]?.headers["idempotency-key"], `${code} ${method}`).toBe("i");
      expect(sent[1]?.headers["content-type"], `${code} ${method}`).toBe(
        body || method === "HEAD" ? "text/plain" : undefined,
      );
    }
  });

  it("redirect events on a chain: fields redacted, dropped names (endpoint's own and transform's headers)", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": (url) =>
        url.pathname === "/z"
          ? new Response("a")
          : new Response(null, { status: 308, headers: { location: "http://b.test/y?token=SECRET#f" } }),
      "b.test": redirectTo("http://a.test/z?sig=SECRET2", 307),
    };
    const layer = layerOn(clock, table, sent, {
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "e1",
              url: "http://a.test/v1?key=OWN",
              headers: { authorization: "Bearer E" },
              transform: (req) => {
                req.headers.set("x-api-key", "T");
                return req;
              },
            },
          ],
        },
      ]),
    });
    const events: unknown[] = [];
    layer.on("redirect", (e) => events.push(e));
    await outcome(
      clock,
      layer.fetch("http://a.test/v1/x?q=1", { method: "PUT", body: "b", headers: { "x-caller": "c" } }),
    );
    expect(events).toEqual([
      {
        from: "http://a.test/v1/x",
        to: "http://b.test/y",
        status: 308,
        crossOrigin: true,
        dropped: expect.arrayContaining(["authorization", "x-api-key", "x-caller"]),
      },
      { from: "http://b.test/y", to: "http://a.test/z", status: 307, crossOrigin: true, dropped: [] },
    ]);
    expect(sent[2]?.headers.authorization).toBeUndefined();
    expect(sent[2]?.headers["x-api-key"]).toBeUndefined();
    expect(sent[2]?.body).toBe("b");
  });

  it("a hop failure quoting the hop URL with its secret: health, events and the error hold no secret", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const table: Record<string, Answer> = {
      "a.test": redirectTo("http://b.test/y?token=SECRET", 302),
      "b.test": () => {
        throw new TypeError("error sending request for url (http://b.test/y?token=SECRET): connection refused");
      },
    };
    const layer = layerOn(clock, table, sent, { retry: { maxAttempts: 2, initialDelay: 10 } });
    const seen: string[] = [];
    for (const name of ["retry", "request", "breaker", "redirect"] as const)
      layer.on(name, (e) => seen.push(JSON.stringify(e)));
    const error = await clock.run(layer.fetch("http://a.test/x")).catch((e: unknown) => e);
    const text = [
      String(error),
      String((error as Error).cause),
      ((error as Error).cause as Error)?.stack,
      JSON.stringify(layer.health()),
      JSON.stringify(layer.debugInfo()),
      ...seen,
    ].join("\n");
    expect(text).not.toContain("SECRET");
  });

  it("20 hops a ↔ b are followed, the 21st refused; a POST without a key is not sent again (chain)", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    let n = 0;
    const hop: Answer = () =>
      new Response(null, { status: 307, headers: { location: n++ % 2 ? "http://a.test/v1/x" : "http://b.test/x" } });
    const table: Record<string, Answer> = { "a.test": hop, "b.test": hop, "c.test": status(200) };
    const layer = layerOn(clock, table, sent, {
      retry: { maxAttempts: 3, initialDelay: 10 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v1" },
          ],
        },
      ]),
    });
    const error = await clock
      .run(layer.fetch("http://a.test/v1/x", { method: "POST", body: "paid" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect(sent).toHaveLength(21);
    expect(((error as FallbackExhaustedError).errors.e1 as Error).message).toMatch(/more than 20 redirects/);
  });

  it("a degradation level header stays home on a cross-origin hop (chain + Request input)", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const layer = layerOn(clock, { "a.test": redirectTo("http://b.test/y", 307), "b.test": status(200) }, sent, {
      degradation: degradation({ levelHeader: "x-degradation-level" }),
      fallback: fallback([{ name: "gen", endpoints: [{ name: "e1", url: "http://a.test/v1" }] }]),
    });
    layer.degradation?.setLevel("low");
    await outcome(
      clock,
      layer.fetch(
        new Request("http://a.test/v1/x", {
          method: "POST",
          body: '{"steps":50}',
          headers: { "idempotency-key": "k" },
        }),
      ),
    );
    expect(sent[0]?.headers["x-degradation-level"]).toBe("low");
    expect(sent[1]?.headers["x-degradation-level"]).toBeUndefined();
    expect(sent[1]?.body).toBe('{"steps":20}');
  });

  it("redirect: manual goes untouched through a chain and through ky", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const modes: (string | undefined)[] = [];
    const table: Record<string, Answer> = {
      "a.test": (_u, req) => {
        modes.push(req.redirect);
        return new Response(null, { status: 307, headers: { location: "http://b.test/y" } });
      },
      "b.test": status(200),
    };
    const layer = layerOn(clock, table, sent, {
      fallback: fallback([{ name: "gen", endpoints: [{ name: "e1", url: "http://a.test/v1" }] }]),
    });
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    const r1 = await clock.run(layer.fetch("http://a.test/v1/x", { redirect: "manual" }));
    const r2 = await clock.run(api.get("http://a.test/v1/x", { redirect: "manual" }) as unknown as Promise<Response>);
    expect([r1.status, r2.status]).toEqual([307, 307]);
    expect(where(sent)).toEqual(["GET a.test/v1/x", "GET a.test/v1/x"]);
    expect(modes).toEqual(["manual", "manual"]);
  });

  it("a Request with redirect: manual through a chain that moves on: its 307 is the answer, not followed", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const modes: string[] = [];
    const table: Record<string, Answer> = {
      "a.test": status(503),
      "c.test": (_u, req) => {
        modes.push(req.redirect);
        return new Response(null, { status: 307, headers: { location: "http://b.test/y" } });
      },
      "b.test": status(200),
    };
    const layer = layerOn(clock, table, sent, {
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "e1", url: "http://a.test/v1" },
            { name: "e2", url: "http://c.test/v1" },
          ],
        },
      ]),
    });
    const res = await clock.run(layer.fetch(new Request("http://a.test/v1/x", { redirect: "manual" })));
    expect(res.status).toBe(307);
    expect(where(sent)).toEqual(["GET a.test/v1/x", "GET c.test/v1/x"]);
    expect(modes).toEqual(["manual"]);
  });

  it("a Request with redirect: manual and a body a rule rewrote: untouched", async () => {
    const clock = new TestClock(0);
    const sent: Sent[] = [];
    const layer = layerOn(clock, { "a.test": redirectTo("http://b.test/y", 307), "b.test": status(200) }, sent, {
      degradation: degradation({}),
    });
    layer.degradation?.setLevel("low");
    const res = await clock.run(
      layer.fetch(new Request("http://a.test/v1/x", { method: "PUT", body: '{"steps":50}', redirect: "manual" })),
    );
    expect(res.status).toBe(307);
    expect(where(sent)).toEqual(["PUT a.test/v1/x"]);
    expect(sent[0]?.body).toBe('{"steps":20}');
  });
});
