/**
 * Outside-in attack on the ky client (`createClient` from `@storycore/resilient-fetch/ky`) on the paths beyond a
 * plain call: hedged and plain fallback chains, library redirects across two local origins, degradation rewrites of
 * ky's json bodies and `searchParams`, `Request` inputs, ky's `timeout` beside the layer's, a runtime extension ky
 * forwards, aborts mid-backoff on a `TestClock`.
 *
 * Docs:
 * - src/ky/index.ts JSDoc: "A ky instance whose transport is `resilience.fetch`, with ky's own retry off so retries
 *   happen once, in one place" "`.json(schema)` validates with any Standard Schema (zod, valibot, …)."
 * - docs/retry.md "## ky": "The layer's errors reach you as they are"; "`getResilienceInfo` reads the response ky
 *   resolves with (or `error.response` of its `HTTPError`)"; docs/recipes.md ky row "a final 5xx becomes |
 *   `HTTPError` (`response.status`)".
 * - docs/retry.md "## Redirects": "301/302 turn a POST into a GET and 303 turns anything but GET/HEAD into a GET
 *   (body and its headers dropped), 307/308 replay method and body"; "only the cross-origin allowlist is sent";
 *   "The result has `redirected: true` and the last hop's `url`, and `type` `"cors"` once a hop left the first URL's
 *   origin"; "at most 20 hops (then a `TypeError`)"; "a request that is not idempotent is not sent again, an
 *   idempotent one is retried … with a `RetryExhaustedError` whose `cause` is that failure"; "A `Retry-After` hold
 *   on the final answer holds the host that sent it, not the first one."
 * - docs/retry.md "## Bodies": "every body sent through ky, which hands its transport a `Request`, is measured in
 *   the bytes it sends, framing included"; "one larger than `maxReplayBytes`, is sent once on every path: no retry,
 *   … no 307/308"; "read into bytes, it goes with a `content-length`"; "Every field of the caller's `init` (…
 *   runtime extensions such as `cf` or `dispatcher`) reaches the transport on every path".
 * - docs/fallback.md: hedge "for idempotent requests or requests with an `Idempotency-Key` only"; "(no response
 *   headers yet, … or it waits to retry, a `Retry-After` too), the next endpoint starts too"; "the others are aborted
 *   (their upstreams see the connection closed); all are counted"; `validate` moves a keyed POST on, a keyless
 *   one "resolves with that answer as it is"; "a run its caller aborted … is not counted, nor the endpoint it was waiting on".
 * - docs/degradation.md: "A call that goes down a fallback chain is rewritten once, by the rule its own URL
 *   selects"; "Only the values a rule changes are rewritten … (each place of a repeated query parameter is adjusted
 *   from its own value …)"; "A call takes the level it finds when it starts … even when the level moves while a
 *   `Request` body is read"; "a redirect hop the library follows goes as its `Location` names it, no rule applied
 *   again"; the level header crosses origins "only when named in `crossOriginHeaders`"; "a `breaker.key` that reads
 *   a query parameter a rule rewrites reads the caller's value".
 * - docs/options.md `maxReplayBytes`: "(a degradation rule's edit may lengthen a kept one); larger ones go once".
 *   SECURITY.md: "URLs lose their userinfo …, query string and fragment … (an error's causes included …)".
 *
 * How: `createClient` (./ky), `createResilience`, `getResilienceInfo`, error guards (root), `fallback`,
 * `degradation`, `TestClock`, `recordEvents`, zod; two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts),
 * each its own origin. Hedge delays, backoffs and `timeout.total` on the `TestClock`; real timers only for 1–2 ms
 * backoffs, a 20 ms ky timeout and 10–30 ms waits for I/O.
 *
 * Paths: hedged chain, plain chain, library redirects (7 status/method pairs, a loop, refused Locations), degradation
 * (chain, body, query, level moving, `breaker.key`), `Request` input down a chain, `.json(zod)` after `validate` and
 * `respond`, ky `timeout` vs `timeout.total`, `maxReplayBytes` (json, FormData), a `cf` extension, aborts.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found: every claim driven below held.
 *
 * Held (plain `it`):
 * - Hedge: a keyed json POST reaches the spare byte for byte without `authorization`, the spare wins, the primary's
 *   connection closes; no hedge for a keyless POST; `retry.idempotencyKey` hedges it with one key; the hedge starts
 *   in the primary's retry wait and the win ends it (statistics 1/0, 1/1); an abort
 *   in a `Retry-After` wait rejects with the reason, no timer left, the spare never started.
 * - Redirects 301/302 POST→GET, 303 PUT→GET, 307/308 and 302 PUT, 301 DELETE replayed; credentials home, events
 *   name them; `redirected`, last `url`, `type: "cors"`, info endpoint the first host. Loop: 63 requests for a GET,
 *   21 for a keyless POST. Four refused Locations: no secret anywhere in the error. A hold lands on the host that
 *   sent `Retry-After`. A Location echoing `model=premium` sends it; the level header stays home.
 * - Degradation: rewritten once before the chain; other bytes (a 20-digit integer) and query pairs as written, a
 *   caller's `content-length` recounted; the call's level through a backoff and a stream read; `breaker.key`.
 * - `Request` input down a chain; `validate` + `.json(zod)`; `respond` + `.json(zod)`; `timeout.total` first is the
 *   layer's TimeoutError, ky's first is ky's; `maxReplayBytes` with json and FormData framing; `cf` on every path;
 *   an abort in the spare's backoff through `extend({ signal })` counts nothing.
 *
 * Docs-silent (not pinned):
 * - A chain's first endpoint gets the caller's query reordered when it carries the endpoint's own parameters
 *   (`?a=1&key=PK&z=2` arrives as `?key=PK&a=1&z=2`), though "The first endpoint gets the URL called" (that
 *   sentence is about slashes; noted before in fallbackdoc-fiftyfour).
 */
import { HTTPError, TimeoutError as KyTimeoutError, SchemaValidationError } from "ky";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { degradation } from "../../src/degradation/index.ts";
import { type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isRetryExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Handler, type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const P = httpUpstream();
const Q = httpUpstream();
serveDuringFile(P, Q);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

function reply(code: number, body = "", headers: Record<string, string> = {}): Handler {
  return (hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(body);
  };
}
const json = (code: number, value: unknown): Handler =>
  reply(code, JSON.stringify(value), { "content-type": "application/json" });

/** Ends every exchange a hanging handler left open. */
function hangUp(): void {
  for (const hit of [...P.hits, ...Q.hits]) if (!hit.res.writableEnded) hit.res.destroy();
}

/** Lets real I/O turn for a moment, to see that nothing more arrives. */
const settle = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

/** A layer whose chain "gen" runs p (P/v1) then q (Q/v2), with `chain` merged into it. */
function onChain(options: ResilienceOptions, chain: object = {}, own: { p?: object; q?: object } = {}) {
  return createResilience({
    ...options,
    fallback: fallback([
      {
        name: "gen",
        ...chain,
        endpoints: [
          { name: "p", url: `${P.base}/v1`, ...own.p },
          (own.q ? { name: "q", ...own.q } : { name: "q", url: `${Q.base}/v2` }) as FallbackEndpoint,
        ],
      },
    ]),
  });
}

describe("hedged chain through ky (TestClock)", () => {
  it("keyed json POST: the spare gets the same bytes, no authorization; it wins, the primary is closed", async () => {
    const clock = new TestClock();
    P.on(() => {});
    Q.on(json(200, { id: "from-q" }));
    const api = createClient({ resilience: onChain({ clock, retry: false }, { hedge: { delay: 50 } }) });
    try {
      const call = api.post(`${P.base}/v1/jobs`, {
        searchParams: { seed: "7" },
        json: { prompt: "ünï", steps: 50 },
        headers: { "idempotency-key": "k-1", authorization: "Bearer SECRET" },
      });
      const first = await P.nth(1);
      await clock.advance(50);
      const second = await Q.nth(1);
      const response = await call;
      expect([second.method, second.path]).toEqual(["POST", "/v2/jobs?seed=7"]);
      expect(second.bytes.equals(first.bytes)).toBe(true);
      expect(second.headers["idempotency-key"]).toBe("k-1");
      expect(second.headers.authorization).toBeUndefined();
      expect(first.headers.authorization).toBe("Bearer SECRET");
      expect(getResilienceInfo(response)).toMatchObject({ endpoint: "q", fromFallback: true });
      await first.closed;
      expect(await response.json()).toEqual({ id: "from-q" });
    } finally {
      hangUp();
    }
  });

  it("keyless json POST: no hedge starts while the primary is out", async () => {
    const clock = new TestClock();
    P.on(() => {});
    Q.on(json(200, { id: "from-q" }));
    const api = createClient({ resilience: onChain({ clock, retry: false }, { hedge: { delay: 50 } }) });
    try {
      const call = api.post(`${P.base}/v1/jobs`, { json: { steps: 50 } });
      const first = await P.nth(1);
      await clock.advance(500);
      await settle();
      expect(Q.hits).toHaveLength(0);
      first.res.end("p-done");
      const response = await call;
      expect(await response.text()).toBe("p-done");
      expect(getResilienceInfo(response)).toMatchObject({ endpoint: "p", fromFallback: false });
    } finally {
      hangUp();
    }
  });

  it("retry.idempotencyKey: a keyless ky POST is hedged; both endpoints get the same added key and body", async () => {
    const clock = new TestClock();
    P.on(() => {});
    Q.on(reply(200, "q"));
    const layer = onChain({ clock, retry: { maxAttempts: 1, idempotencyKey: true } }, { hedge: { delay: 50 } });
    const api = createClient({ resilience: layer });
    try {
      const call = api.post(`${P.base}/v1/jobs`, { json: { steps: 1 } });
      const p = await P.nth(1);
      await clock.advance(50);
      const q = await Q.nth(1);
      expect(await (await call).text()).toBe("q");
      expect(p.headers["idempotency-key"]).toBeTruthy();
      expect(q.headers["idempotency-key"]).toBe(p.headers["idempotency-key"]);
      expect(q.body).toBe(p.body);
    } finally {
      hangUp();
    }
  });

  it("the hedge starts while the primary waits to retry; the winner ends the wait; all counted", async () => {
    const clock = new TestClock();
    const resilience = onChain(
      { clock, retry: { initialDelay: 1000, jitter: "none", maxAttempts: 2 } },
      { hedge: { delay: 50 } },
    );
    P.on(reply(503));
    Q.on(reply(200, "q"));
    const call = createClient({ resilience }).get(`${P.base}/v1/x`);
    await P.nth(1);
    await clock.advance(50);
    await Q.nth(1);
    expect(await (await call).text()).toBe("q");
    await clock.advance(5000);
    await settle();
    expect(P.hits).toHaveLength(1);
    const { p, q } = resilience.fallback.chain("gen").statistics().fallbacks;
    expect([p?.calls, p?.successes, q?.calls, q?.successes]).toEqual([1, 0, 1, 1]);
  });

  it("an abort in the primary's Retry-After wait with a hedge pending: the caller's reason, no timer left", async () => {
    const clock = new TestClock();
    const resilience = onChain({ clock, retry: { maxAttempts: 2 } }, { hedge: { delay: 5000 } });
    P.on(reply(503, "", { "retry-after": "1" }));
    const controller = new AbortController();
    const call = rejection(createClient({ resilience }).get(`${P.base}/v1/x`, { signal: controller.signal }).text());
    await P.nth(1);
    await clock.waitForTimers(2);
    await clock.advance(500);
    controller.abort("why");
    expect(await call).toBe("why");
    expect(clock.pending()).toBe(0);
    expect(Q.hits).toHaveLength(0);
  });
});

describe("library redirects through ky, across two local origins", () => {
  const cases = [
    { status: 301, method: "POST", to: "GET" },
    { status: 302, method: "POST", to: "GET" },
    { status: 303, method: "PUT", to: "GET" },
    { status: 307, method: "PATCH", to: "PATCH" },
    { status: 308, method: "POST", to: "POST" },
    { status: 302, method: "PUT", to: "PUT" },
    { status: 301, method: "DELETE", to: "DELETE" },
  ];
  for (const c of cases) {
    it(`${c.status} on a ${c.method} json call: ${c.to} at the other origin, credentials home, response redirected`, async () => {
      const resilience = createResilience({ retry: false });
      const events = recordEvents(resilience);
      P.on(reply(c.status, "", { location: `${Q.base}/landing?x=1` }));
      Q.on(json(200, { ok: true }));
      const api = createClient({ resilience, headers: { authorization: "Bearer S", "x-api-key": "K" } });
      const response = await api(`${P.base}/start`, {
        method: c.method,
        json: { n: 1 },
        headers: { "idempotency-key": "k" },
      });
      const hop = Q.hits[0] as Hit;
      expect([hop.method, hop.path]).toEqual([c.to, "/landing?x=1"]);
      if (c.to === "GET") {
        expect([hop.body, hop.headers["content-type"]]).toEqual(["", undefined]);
      } else {
        expect(hop.body).toBe('{"n":1}');
        expect(hop.headers["content-type"]).toContain("application/json");
      }
      expect([hop.headers.authorization, hop.headers["x-api-key"]]).toEqual([undefined, undefined]);
      expect(hop.headers["idempotency-key"]).toBe("k");
      expect([response.redirected, response.url, response.type]).toEqual([true, `${Q.base}/landing?x=1`, "cors"]);
      expect(getResilienceInfo(response)?.endpoint).toBe(P.host);
      const [event] = events.of("redirect");
      expect(event).toMatchObject({ status: c.status, crossOrigin: true, to: `${Q.base}/landing` });
      expect([...(event?.dropped ?? [])].sort()).toEqual(["authorization", "x-api-key"]);
      expect(await response.json()).toEqual({ ok: true });
    });
  }

  it("a redirect loop: 20 hops then the follower's TypeError; a GET is retried, a keyless POST goes once", async () => {
    const api = createClient({ resilience: { retry: fast } });
    P.on((hit) => reply(302, "", { location: `/loop/${hit.n}?token=SECRET` })(hit));
    const error = (await rejection(api.get(`${P.base}/loop/0`).text())) as Error;
    expect(isRetryExhaustedError(error)).toBe(true);
    expect(error.cause).toBeInstanceOf(TypeError);
    expect(error.message).not.toContain("SECRET");
    expect(P.hits).toHaveLength(63);
    P.reset();
    P.on((hit) => reply(307, "", { location: `/loop/${hit.n}` })(hit));
    const post = await rejection(api.post(`${P.base}/loop/0`, { json: { a: 1 } }).text());
    expect(isRetryExhaustedError(post)).toBe(true);
    expect(P.hits).toHaveLength(21);
    expect(P.hits.every((h) => h.body === '{"a":1}')).toBe(true);
  });

  for (const location of [
    "http://[bad?token=SECRET",
    "ftp://127.0.0.1/x?token=SECRET",
    "http://user:SECRET@127.0.0.1:1/x",
    "data:text/plain,SECRET",
  ]) {
    it(`a refused Location (${location.slice(0, 12)}…): RetryExhaustedError, no secret in its message, stack or causes`, async () => {
      P.on(reply(302, "", { location }));
      const api = createClient({ resilience: { retry: false } });
      const error = await rejection(api.get(`${P.base}/r?key=SECRET2`).text());
      expect(isRetryExhaustedError(error)).toBe(true);
      expect(texts(error).join("\n")).not.toContain("SECRET");
    });
  }

  it("a Retry-After hold on the final answer holds the host that sent it, not the first one", async () => {
    const api = createClient({ resilience: { retry: { ...fast, maxRetryAfter: 1000 } } });
    P.on(reply(302, "", { location: `${Q.base}/busy` }));
    Q.on(reply(503, "busy", { "retry-after": "120" }));
    const error = (await rejection(api.get(`${P.base}/go`).text())) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(503);
    const hits = Q.hits.length;
    expect(isCircuitOpenError(await rejection(api.get(`${Q.base}/direct`).text()))).toBe(true);
    expect(Q.hits).toHaveLength(hits);
    P.on(reply(200, "p-ok"));
    expect(await api.get(`${P.base}/direct`).text()).toBe("p-ok");
  });

  it("a Location echoing the caller's parameter goes as named, no rule again; the level header stays home", async () => {
    const resilience = createResilience({
      retry: false,
      degradation: degradation({
        levelHeader: "x-level",
        rules: [{ match: `${P.base}/gen`, params: { model: { query: "model" } } }],
      }),
    });
    resilience.degradation.setLevel("medium");
    const events = recordEvents(resilience);
    P.on(reply(307, "", { location: `${Q.base}/gen?model=premium` }));
    Q.on(reply(200, "q"));
    const response = await createClient({ resilience }).get(`${P.base}/gen`, { searchParams: { model: "premium" } });
    expect([P.hits[0]?.path, Q.hits[0]?.path]).toEqual(["/gen?model=standard", "/gen?model=premium"]);
    expect(Q.hits[0]?.headers["x-level"]).toBeUndefined();
    expect(events.of("redirect")[0]?.dropped).toContain("x-level");
    expect(getResilienceInfo(response)?.degradationLevel).toBe("medium");
    await response.text();
  });
});

describe("degradation rewriting through ky", () => {
  it("down a chain: rewritten once by the rule of the URL called, not the spare's; level header home", async () => {
    const resilience = onChain({
      retry: false,
      degradation: degradation({
        levelHeader: "x-degradation-level",
        rules: [
          { match: `${P.base}/v1`, params: { steps: "parameters.steps" } },
          { match: `${Q.base}/v2`, params: { steps: "s" } },
        ],
      }),
    });
    resilience.degradation?.setLevel("medium");
    P.on(reply(503));
    Q.on(json(200, { ok: 1 }));
    const response = await createClient({ resilience }).post(`${P.base}/v1/jobs`, {
      json: { parameters: { steps: 50 }, s: 50 },
      headers: { "idempotency-key": "k" },
    });
    for (const hit of [P.hits[0], Q.hits[0]])
      expect(JSON.parse(hit?.body ?? "")).toEqual({ parameters: { steps: 30 }, s: 50 });
    expect([P.hits[0]?.headers["x-degradation-level"], Q.hits[0]?.headers["x-degradation-level"]]).toEqual([
      "medium",
      undefined,
    ]);
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "q", degradationLevel: "medium" });
    await response.text();
  });

  it("only the values a rule changes: a ky string body's other bytes, repeated and encoded query pairs kept", async () => {
    const resilience = createResilience({
      retry: false,
      degradation: degradation({
        rules: [{ match: `${P.base}/q`, params: { steps: { query: "steps" } } }, { params: { steps: "steps" } }],
      }),
    });
    resilience.degradation.setLevel("medium");
    const api = createClient({ resilience });
    const body = '{ "seed": 12345678901234567890,\n  "steps": 50, "note": "a\\u00e9" }';
    await api
      .post(`${P.base}/b`, {
        body,
        headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
      })
      .text();
    expect(P.hits[0]?.body).toBe('{ "seed": 12345678901234567890,\n  "steps": 30, "note": "a\\u00e9" }');
    expect(P.hits[0]?.headers["content-length"]).toBe(String(P.hits[0]?.bytes.length));
    const pairs = [
      ["steps", "50"],
      ["other", "x y"],
      ["steps", "10"],
    ];
    await api.get(`${P.base}/q`, { searchParams: pairs }).text();
    await api.get(`${P.base}/q?a=x%20y&b=%7E&steps=50&flag&k=v=w&st%65ps=5%30`).text();
    expect(P.hits.slice(1).map((h) => h.path)).toEqual([
      "/q?steps=30&other=x+y&steps=10",
      "/q?a=x%20y&b=%7E&steps=30&flag&k=v=w&st%65ps=30",
    ]);
  });

  it("a keyed json POST retried after the level moved in its backoff: the same bytes, the call's level", async () => {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: { initialDelay: 1000, jitter: "none", retryOn: { methods: ["POST"] } },
      degradation: degradation({ levelHeader: "x-level" }),
    });
    resilience.degradation.setLevel("medium");
    P.on((hit) => (hit.n === 1 ? reply(503)(hit) : json(200, { done: true })(hit)));
    const call = createClient({ resilience }).post(`${P.base}/jobs`, {
      json: { steps: 50, prompt: "x" },
      headers: { "idempotency-key": "k" },
    });
    await P.nth(1);
    await clock.waitForTimers(1);
    resilience.degradation.setLevel("minimal");
    await clock.advance(1000);
    const response = await call;
    const [a, b] = P.hits as [Hit, Hit];
    expect(JSON.parse(a.body)).toEqual({ steps: 30, prompt: "x" });
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect([a.headers["x-level"], b.headers["x-level"]]).toEqual(["medium", "medium"]);
    expect(getResilienceInfo(response)?.degradationLevel).toBe("medium");
    await response.text();
  });

  it("the level moving while ky's stream body is read: body, header and info name the call's level", async () => {
    const resilience = createResilience({ retry: false, degradation: degradation({ levelHeader: "x-level" }) });
    resilience.degradation.setLevel("medium");
    let push: ReadableStreamDefaultController<Uint8Array> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        push = controller;
      },
    });
    push?.enqueue(new TextEncoder().encode('{"steps":'));
    const call = createClient({ resilience }).post(`${P.base}/s`, {
      body: stream,
      headers: { "content-type": "application/json" },
    });
    await settle(10);
    resilience.degradation.setLevel("minimal");
    push?.enqueue(new TextEncoder().encode("50}"));
    push?.close();
    const response = await call;
    expect([P.hits[0]?.body, P.hits[0]?.headers["x-level"]]).toEqual(['{"steps":30}', "medium"]);
    expect(getResilienceInfo(response)?.degradationLevel).toBe("medium");
    await response.text();
  });

  it("breaker.key reading a rewritten query parameter keys the caller's value", async () => {
    const resilience = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, key: (url: URL) => `m:${url.searchParams.get("model") ?? url.host}` },
      degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
    });
    resilience.degradation.setLevel("medium");
    P.on(reply(503));
    const api = createClient({ resilience });
    await rejection(api.get(`${P.base}/k`, { searchParams: { model: "premium" } }).text());
    expect(P.hits[0]?.path).toBe("/k?model=standard");
    expect(Object.keys(resilience.health().breakers)).toEqual(["m:premium"]);
    expect(isCircuitOpenError(await rejection(api.get(`${P.base}/k?model=premium`).text()))).toBe(true);
  });
});

describe("Request inputs, schemas and respond endpoints through ky", () => {
  it("a keyed POST Request down a chain: body replayed to the spare, credentials home, own query kept apart", async () => {
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${P.base}/v1?key=PK` },
            { name: "q", url: `${Q.base}/v2?key=QK` },
          ],
        },
      ]),
    });
    P.on(reply(503));
    Q.on(json(200, { id: 1 }));
    const api = createClient({ resilience, headers: { "x-client": "c" } });
    const request = new Request(`${P.base}/v1/jobs?a=1&key=PK&z=2`, {
      method: "POST",
      body: '{"prompt":"p"}',
      headers: { "content-type": "application/json", authorization: "Bearer R", "idempotency-key": "k" },
    });
    const response = await api(request, { headers: { "x-call": "1" } });
    const [p, q] = [P.hits[0] as Hit, Q.hits[0] as Hit];
    // Docs-silent: the first endpoint's own pair is put first.
    expect([p.path, q.path]).toEqual(["/v1/jobs?key=PK&a=1&z=2", "/v2/jobs?key=QK&a=1&z=2"]);
    expect(q.body).toBe('{"prompt":"p"}');
    expect([p.headers["x-call"], p.headers["x-client"], p.headers.authorization]).toEqual(["1", "c", "Bearer R"]);
    expect([q.headers.authorization, q.headers["x-call"], q.headers["x-client"]]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(getResilienceInfo(response)?.endpoint).toBe("q");
    await response.text();
  });

  const Job = z.object({ id: z.string() });
  it("validate fails: a keyed POST moves on and .json(schema) parses the spare's; a keyless one resolves as is", async () => {
    P.on(json(200, { wrong: 1 }));
    Q.on(json(200, { id: "q" }));
    const api = createClient({ resilience: onChain({ retry: false }, {}, { p: { validate: Job } }) });
    const job = await api.post(`${P.base}/v1/jobs`, { json: {}, headers: { "idempotency-key": "k" } }).json(Job);
    expect([job, Q.hits.length]).toEqual([{ id: "q" }, 1]);
    P.reset();
    Q.reset();
    P.on(json(200, { wrong: 1 }));
    expect(await rejection(api.post(`${P.base}/v1/jobs`, { json: {} }).json(Job))).toBeInstanceOf(
      SchemaValidationError,
    );
    expect([P.hits.length, Q.hits.length]).toEqual([1, 0]);
    const raw = await api.post(`${P.base}/v1/jobs`, { json: {} });
    expect(getResilienceInfo(raw)?.endpoint).toBe("p");
    expect(await raw.json()).toEqual({ wrong: 1 });
  });

  it("a respond endpoint's answer through .json(schema): refused by the schema; its info names it", async () => {
    const cached = { respond: () => Response.json({ id: 1 }) };
    const api = createClient({ resilience: onChain({ retry: false }, {}, { q: cached }) });
    P.on(reply(503));
    const error = await rejection(api.get(`${P.base}/v1/x`).json(Job));
    expect(error).toBeInstanceOf(SchemaValidationError);
    const response = await api.get(`${P.base}/v1/x`);
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "q", fromFallback: true });
    expect(await response.json()).toEqual({ id: 1 });
  });
});

describe("ky's options beside the layer's", () => {
  it("the layer's timeout.total first: the layer's TimeoutError, unwrapped, connection closed; ky's first: ky's", async () => {
    const clock = new TestClock();
    const api = createClient({ resilience: { clock, retry: false, timeout: { total: 100 } }, timeout: 60_000 });
    P.on(() => {});
    try {
      const call = rejection(api.get(`${P.base}/hang`).text());
      const hit = await P.nth(1);
      await clock.advance(100);
      const error = await call;
      expect(isTimeoutError(error)).toBe(true);
      expect(error).not.toBeInstanceOf(KyTimeoutError);
      await hit.closed;
      expect(await rejection(api.get(`${P.base}/hang`, { timeout: 20 }).text())).toBeInstanceOf(KyTimeoutError);
    } finally {
      hangUp();
    }
  });

  it("a ky json body past maxReplayBytes goes once: no retry after a 503, no 307 replay", async () => {
    const api = createClient({
      resilience: { retry: { ...fast, retryOn: { methods: ["POST"] } }, maxReplayBytes: 10 },
    });
    const payload = { prompt: "x".repeat(30) };
    const options = { json: payload, headers: { "idempotency-key": "k" } };
    P.on(reply(503));
    expect(await rejection(api.post(`${P.base}/big`, options).text())).toBeInstanceOf(HTTPError);
    expect(P.hits.map((h) => h.body)).toEqual([JSON.stringify(payload)]);
    P.reset();
    P.on(reply(307, "", { location: `${Q.base}/next` }));
    const hop = (await rejection(api.post(`${P.base}/big`, options).text())) as Error;
    expect(isRetryExhaustedError(hop)).toBe(true);
    expect(hop.cause).toBeInstanceOf(TypeError);
    expect([P.hits.length, Q.hits.length]).toEqual([1, 0]);
  });

  it("ky bodies within the limit go with a content-length and are replayed; rewritten longer at the limit too; a FormData measured with its framing", async () => {
    const resilience = createResilience({
      retry: { ...fast, retryOn: { methods: ["POST"] } },
      maxReplayBytes: '{"quality":1}'.length,
      degradation: degradation({}),
    });
    const api = createClient({ resilience });
    P.on(reply(503));
    await rejection(api.post(`${P.base}/j`, { json: { a: 1 } }).text());
    expect(P.hits.map((h) => [h.headers["content-length"], h.headers["transfer-encoding"]])).toEqual([
      ["7", undefined],
      ["7", undefined],
      ["7", undefined],
    ]);
    P.reset();
    resilience.degradation.setLevel("medium");
    P.on((hit) => (hit.n === 1 ? reply(503)(hit) : reply(200, "ok")(hit)));
    expect(await api.post(`${P.base}/r`, { json: { quality: 1 } }).text()).toBe("ok");
    expect(P.hits.map((h) => h.body)).toEqual(['{"quality":0.8}', '{"quality":0.8}']);
    resilience.degradation.setLevel("full");
    const form = () => {
      const f = new FormData();
      f.set("f", "v".repeat(4));
      return f;
    };
    P.reset();
    P.on(reply(503));
    await rejection(api.post(`${P.base}/f`, { body: form() }).text());
    expect(P.hits).toHaveLength(1);
    P.reset();
    P.on(reply(503));
    await resilience.fetch(`${P.base}/f`, { method: "POST", body: form() });
    expect(P.hits).toHaveLength(3);
  });

  it("a runtime extension (cf) on a ky call reaches the transport on a retry, a redirect hop and a hedge", async () => {
    const clock = new TestClock();
    const seen: Array<[string, unknown]> = [];
    const transport = (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push([new URL(url).pathname, (init as { cf?: unknown } | undefined)?.cf]);
      return fetch(input, init);
    };
    const resilience = onChain({ clock, fetch: transport, retry: fast }, { hedge: { delay: 50 } });
    const api = createClient({ resilience });
    const cf = { cacheTtl: 5 };
    P.on((hit) => (hit.n === 1 ? reply(503) : hit.n === 2 ? reply(302, "", { location: "/v1/hop" }) : reply(200))(hit));
    const first = api.get(`${P.base}/v1/a`, { cf } as never);
    await P.nth(1);
    await clock.advance(5);
    await (await first).text();
    P.reset();
    P.on(() => {});
    Q.on(reply(200, "q"));
    try {
      const second = api.get(`${P.base}/v1/b`, { cf } as never);
      await P.nth(1);
      await clock.advance(50);
      expect(await (await second).text()).toBe("q");
    } finally {
      hangUp();
    }
    expect(seen.map(([path]) => path)).toEqual(["/v1/a", "/v1/a", "/v1/hop", "/v1/b", "/v2/b"]);
    expect(seen.every(([, value]) => JSON.stringify(value) === JSON.stringify(cf))).toBe(true);
  });
});

describe("abort mid-backoff down a chain (TestClock)", () => {
  it("in the spare's backoff (extend's signal): the caller's reason; the spare and the error rate count nothing", async () => {
    const clock = new TestClock();
    const resilience = onChain({ clock, retry: { initialDelay: 1000, jitter: "none", maxAttempts: 2 } });
    P.on(reply(503));
    Q.on(reply(503));
    const controller = new AbortController();
    const api = createClient({ resilience }).extend({ signal: controller.signal });
    const call = rejection(api.get(`${P.base}/v1/x`, { searchParams: { a: "1" } }).text());
    await P.nth(1);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    await Q.nth(1);
    await clock.waitForTimers(1);
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await call).toBe(reason);
    await clock.advance(5000);
    await settle();
    expect([P.hits.length, Q.hits.length]).toEqual([2, 1]);
    expect(resilience.fallback.chain("gen").statistics().fallbacks.q?.calls).toBe(0);
    expect(resilience.health().errorRate).toBe(0);
  });
});

/** Every string an error holds (message, stack, own fields, causes), for a secret search. */
function texts(value: unknown, seen = new Set<unknown>()): string[] {
  if (typeof value === "string") return [value];
  if (Object(value) !== value || seen.has(value)) return [];
  seen.add(value);
  const out: string[] = [];
  for (const key of [...Reflect.ownKeys(value as object), "message", "stack", "cause", "errors"]) {
    if (key === "response" || key === "request" || key === "options") continue;
    try {
      out.push(...texts((value as Record<PropertyKey, unknown>)[key], seen));
    } catch {}
  }
  return out;
}
