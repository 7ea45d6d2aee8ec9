/**
 * Outside-in attack on docs/fallback.md (`validate`, `transform`, hedging, `FallbackExhaustedError` and what it
 * carries, `statistics()`, `getResilienceInfo`) and docs/health-and-events.md (the `fallback`, `request`, `replay`
 * and `redirect` events' fields, order and redacted URLs), on the paths earlier attacks took least: the ky client
 * over a chain, the Worker proxy `resilientProxy` over a chain, `Request` inputs with bodies through a chain with a
 * `transform`, hedges whose two sides fail differently, a `validate` that throws or rejects, an endpoint that
 * redirects, and degradation rewriting a chain call's body. How: public entries only (root, `./fallback`,
 * `./degradation`, `./cloudflare`, `./ky`, `./testing`'s TestClock); `hostFetch` as the transport (it records what
 * fetch would have sent); time moves only on the TestClock.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a schema that throws or rejects fails the body as one that says no, and the
 * answer is kept; a `transform`'s URL refused for its credentials sends nothing, so the chain moves on; 4 was
 * the sentence's fault: it now names the endpoint next in line, which the test checks):
 * 1. docs/fallback.md: "So does a 2xx that fails `validate`: the endpoint took the job, and the call resolves with
 *    that answer as it is (`getResilienceInfo(res)` names the endpoint)". A `validate` schema whose `validate`
 *    throws (a refinement that throws, a broken schema) on a POST without a key sent through the ky client: the
 *    endpoint took the job and answered 200, yet the call rejects with `FallbackExhaustedError` ("stopped after
 *    "a", which may have processed the request") and the 200 is discarded. The throw is not read as a failed
 *    validation: it becomes the endpoint's error (src/policies/fallback-chain.ts `#attempt` catches it after
 *    `accept`, discards the value and returns `{ error }`), so neither this rule nor "resolves with the last
 *    response any endpoint gave" applies. Plain `resilience.fetch` behaves the same.
 * 2. docs/fallback.md: "When every endpoint failed, the call resolves with the last response any endpoint gave, or
 *    rejects with `FallbackExhaustedError` (`errors` per endpoint) if none gave one". Through the Worker proxy: the
 *    first endpoint is unreachable, the second answers 200 and its async `validate` rejects. The only response any
 *    endpoint gave is that 200; the layer rejects with `FallbackExhaustedError` instead, so the proxy answers 502
 *    "upstream unavailable" (docs/cloudflare.md: "`502` when no endpoint answered otherwise") with no
 *    `x-resilience-endpoint`. Same cause as 1.
 * 3. docs/fallback.md, on `transform`: "(a method it returns … is refused before anything is sent … else a
 *    `TypeError`; a `transform` that fails sends nothing, so the chain may move on …)". A `transform` that returns
 *    a URL with `user:pass@` (which fetch refuses everywhere) is refused with a `TypeError` before anything is
 *    sent (the transport is never entered), but for a POST without an `Idempotency-Key` the chain ends there: the
 *    refusal is not marked as "sent nothing" (the breaker key of the URL is taken in `sendToEndpoint`, after the
 *    transform, and its `TypeError` reads as a network error that may have reached the server). The next endpoint
 *    is never tried; the call resolves with the first endpoint's 503. A `transform` returning a relative URL or a
 *    port out of range (also refused before sending) does move on: only the credentials refusal stops the chain.
 * 4. docs/health-and-events.md: "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`,
 *    `next`: a hedge already running that the call carries on with, else the endpoint to start next)". When the
 *    endpoint after the one that failed has its breaker open, `next` names it, though it is never started: it is
 *    passed over at once (its own event follows, `from` it, reason "circuit open") and the endpoint started next
 *    is the one after it. Observed `{ from: "a", reason: "status 503", next: "b" }` with `b` open; `z` served.
 *
 * Held (plain `it`):
 * - a hedge whose sides fail differently (the spare unreachable, the primary a late 503): `fallback` events in
 *   order with `next` the running primary, then the primary's with no `next`; the call resolves with the 503
 *   (`endpoint` "a", not `fromFallback`), `attempts` counts every endpoint sent; every endpoint counted; the
 *   `request` event's URL (a `Request` input with a query and fragment) cut;
 * - the ky client over a hedged chain: a keyed POST hedges, the spare's `transform` reshapes the body, the caller's
 *   `authorization` stays home while the endpoint's own goes; both endpoints counted, `lastSuccessfulFallback`;
 * - the Worker proxy over a chain with a `transform`: the body reshaped for the second endpoint, the endpoint's
 *   name percent-encoded in `x-resilience-endpoint`, `x-resilience-attempts` 2;
 * - an endpoint that redirects across origins: the `redirect` event's URLs cut, the endpoint's own credential
 *   headers dropped at the hop and named in `dropped`;
 * - degradation rewriting a `Request` body that goes down a chain: the first endpoint gets the rewritten caller
 *   bytes (a 64-bit integer intact), the `transform` receives the rewritten body;
 * - a `Request` body larger than `maxReplayBytes`, rewritten small by a `transform`, still goes to one endpoint
 *   only; the `replay` event's URL is cut.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type StandardSchemaLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { header, hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

const ONCE = { ...FAST, maxAttempts: 1 } as const;
const ctx = { waitUntil() {} };

/** A Standard Schema whose `validate` throws (a refinement that throws, a broken schema). */
const throwingSchema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: () => {
      throw new Error("schema broke");
    },
  },
};

/** A Standard Schema whose async `validate` rejects. */
const rejectingSchema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: () => Promise.reject(new Error("schema broke")),
  },
};

/** An answer made after `ms` on the clock, or the request's abort. */
const later = (clock: TestClock, ms: number, make: () => Response, signal: AbortSignal): Promise<Response> =>
  new Promise<Response>((resolve, reject) => {
    const cancel = clock.setTimer(() => resolve(make()), ms);
    signal.addEventListener("abort", () => {
      cancel();
      reject(signal.reason);
    });
  });

describe("docs/fallback.md: `validate` that throws or rejects", () => {
  it("ky, POST without a key: a 2xx whose validate throws resolves with that answer, named", async () => {
    // docs/fallback.md: "So does a 2xx that fails `validate`: the endpoint took the job, and the call resolves
    // with that answer as it is (`getResilienceInfo(res)` names the endpoint)". Observed: FallbackExhaustedError
    // ("stopped after "a", which may have processed the request"), the 200 discarded.
    const t = hostFetch({ "a.example": () => Response.json({ job: "a-1" }), "b.example": status(200) });
    const layer = createResilience({
      retry: ONCE,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "a", url: "https://a.example/v1", validate: throwingSchema },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const api = createClient({ resilience: layer, prefix: "https://a.example/v1" });
    const response = await api.post("jobs", { json: { prompt: "waves" } });
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/v1/jobs"]);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ job: "a-1" });
    expect(getResilienceInfo(response)?.endpoint).toBe("a");
  });

  it("Worker proxy: the only answer any endpoint gave (a 200 whose async validate rejects) is served", async () => {
    // docs/fallback.md: "When every endpoint failed, the call resolves with the last response any endpoint gave,
    // or rejects with `FallbackExhaustedError` (`errors` per endpoint) if none gave one". Observed: the layer
    // rejects with FallbackExhaustedError, so the proxy answers 502 "upstream unavailable", no endpoint header.
    const t = hostFetch({ "b.example": () => Response.json({ job: "b-1" }) }); // a.example unreachable
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1", validate: rejectingSchema },
            ],
          },
        },
      ],
      resilience: { retry: ONCE, fetch: t.fetch },
    });
    const response = await proxy.fetch(new Request("https://worker.example/v1/video/jobs"), {}, ctx);
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/v1/jobs", "https://b.example/v1/jobs"]);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-resilience-endpoint")).toBe("b");
    expect(await response.json()).toEqual({ job: "b-1" });
  });
});

describe("docs/fallback.md: a `transform` whose request is refused before anything is sent", () => {
  const chainFor = (url: string) =>
    fallback([
      {
        name: "video",
        endpoints: [
          { name: "a", url: "https://a.example/v1" },
          { name: "b", url: "https://b.example/v1", transform: (req) => ({ ...req, url }) },
          { name: "z", url: "https://z.example/v1" },
        ],
      },
    ]);

  it("a URL with user:pass@ sends nothing, and a POST without a key moves on to the next endpoint", async () => {
    // docs/fallback.md: "a `transform` that fails sends nothing, so the chain may move on". Observed: nothing is
    // sent to b (the transport is entered once, for a), but the chain ends at b: z is never tried and the call
    // resolves with a's 503.
    const t = hostFetch({ "a.example": status(503), "b.example": status(200), "z.example": status(200) });
    const layer = createResilience({
      retry: ONCE,
      fetch: t.fetch,
      fallback: chainFor("https://user:pw@b.example/v1/jobs"),
    });
    const response = await layer.fetch(new Request("https://a.example/v1/jobs", { method: "POST", body: "{}" }));
    expect(t.state.entered).toBe(2);
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/v1/jobs", "https://z.example/v1/jobs"]);
    expect(response.status).toBe(200);
    expect(getResilienceInfo(response)?.endpoint).toBe("z");
  });

  it("a relative URL (refused before sending too) moves a POST without a key on to the next endpoint", async () => {
    const t = hostFetch({ "a.example": status(503), "b.example": status(200), "z.example": status(200) });
    const layer = createResilience({ retry: ONCE, fetch: t.fetch, fallback: chainFor("/v1/jobs?key=SECRET") });
    const events: unknown[] = [];
    layer.on("fallback", (e) => events.push(e));
    const response = await layer.fetch("https://a.example/v1/jobs", { method: "POST", body: "{}" });
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/v1/jobs", "https://z.example/v1/jobs"]);
    expect(getResilienceInfo(response)?.endpoint).toBe("z");
    expect(JSON.stringify(events)).not.toContain("SECRET");
  });
});

describe("docs/health-and-events.md: the `fallback` event's `next`", () => {
  it("`next` names the endpoint next in line; one open is passed over in turn, with its own event", async () => {
    // docs/health-and-events.md, as it read: "`next`: a hedge already running that the call carries on with,
    // else the endpoint to start next". Observed: { from: "a", reason: "status 503", next: "b" } with b's
    // breaker open; b is passed over without a request (its own event, next "z") and z is the one started.
    // The sentence now says what the events tell: the endpoint next in line, passed over in turn when open.
    const t = hostFetch({ "a.example": status(503), "b.example": status(503), "z.example": status(200) });
    const layer = createResilience({
      retry: ONCE,
      breaker: { failureThreshold: 1 },
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
            { name: "z", url: "https://z.example/v1" },
          ],
        },
      ]),
    });
    await (await layer.fetch("https://b.example/v1/warm")).text(); // b's breaker opens
    expect(layer.health().breakers["b.example"]?.state).toBe("open");
    const events: Array<{ from: string; next: string | undefined }> = [];
    layer.on("fallback", (e) => events.push(e));
    const response = await layer.fetch("https://a.example/v1/jobs");
    expect(getResilienceInfo(response)?.endpoint).toBe("z");
    expect(t.log.map((r) => r.url).slice(1)).toEqual(["https://a.example/v1/jobs", "https://z.example/v1/jobs"]);
    expect(events).toMatchObject([
      { from: "a", reason: "status 503", next: "b" },
      { from: "b", reason: "circuit open", next: "z" },
    ]);
  });
});

describe("held: hedges, ky, the proxy, redirects, degradation and Request bodies over a chain", () => {
  it("a hedge whose sides fail differently: events in order, the last response, every endpoint counted", async () => {
    const clock = new TestClock();
    const t = hostFetch({
      "a.example": (req) => later(clock, 3_000, () => new Response("a down", { status: 503 }), req.signal),
    });
    const layer = createResilience({
      clock,
      retry: ONCE,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const events: unknown[] = [];
    layer.on("fallback", (e) => events.push(["fallback", e]));
    layer.on("request", (e) => events.push(["request", e.url, e.status, e.attempts]));
    const response = await clock.run(layer.fetch(new Request("https://a.example/v1/jobs?key=SECRET#frag")));
    expect(response.status).toBe(503);
    expect(await response.text()).toBe("a down");
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "a", fromFallback: false, attempts: 2 });
    expect(events).toEqual([
      ["fallback", { chain: "video", from: "b", reason: "TypeError: fetch failed", next: "a" }],
      ["fallback", { chain: "video", from: "a", reason: "status 503", next: undefined }],
      ["request", "https://a.example/v1/jobs", 503, 2],
    ]);
    const stats = layer.fallback?.chain("video").statistics();
    expect(stats?.fallbacks.a).toMatchObject({ calls: 1, successes: 0, meanLatencyMs: 3_000 });
    expect(stats?.fallbacks.b).toMatchObject({ calls: 1, successes: 0 });
    expect(stats?.overallSuccessRate).toBe(0);
  });

  it("ky over a hedged chain: a keyed POST hedges, the spare's transform reshapes it, credentials stay home", async () => {
    const clock = new TestClock();
    const t = hostFetch({
      "a.example": (req) => later(clock, 30_000, () => new Response("late"), req.signal),
      "b.example": () => Response.json({ job: "b-1" }),
    });
    const layer = createResilience({
      clock,
      retry: ONCE,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            {
              name: "b",
              url: "https://b.example/v1",
              headers: { authorization: "Bearer B" },
              transform: (req) => ({ ...req, body: { ...req.body, model: "b" } }),
            },
          ],
        },
      ]),
    });
    const requests: string[] = [];
    layer.on("request", (e) => requests.push(e.url));
    const api = createClient({ resilience: layer, prefix: "https://a.example/v1" });
    const call = api.post("jobs?key=SECRET", {
      json: { prompt: "waves" },
      headers: { "idempotency-key": "k-1", authorization: "Bearer CALLER" },
    });
    const response = await clock.run(Promise.resolve(call));
    expect(await response.json()).toEqual({ job: "b-1" });
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "b", fromFallback: true, attempts: 2 });
    const [toA, toB] = t.log;
    expect(toA?.text).toBe('{"prompt":"waves"}');
    expect(toB?.text).toBe('{"prompt":"waves","model":"b"}');
    expect(header(toB, "authorization")).toBe("Bearer B");
    expect(header(toB, "idempotency-key")).toBe("k-1");
    expect(header(toA, "authorization")).toBe("Bearer CALLER");
    expect(requests).toEqual(["https://a.example/v1/jobs"]);
    const stats = layer.fallback?.chain("video").statistics();
    expect(stats?.lastSuccessfulFallback).toBe("b");
    expect(stats?.fallbacks.a?.calls).toBe(1);
    expect(stats?.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
  });

  it("the Worker proxy over a chain with a transform: body reshaped, endpoint header encoded", async () => {
    const t = hostFetch({ "a.example": status(503), "b.example": () => Response.json({ ok: true }) });
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              {
                name: "b — EU",
                url: "https://b.example/v1",
                transform: (req) => ({ ...req, body: { ...req.body, m: 2 } }),
              },
            ],
          },
        },
      ],
      resilience: { retry: ONCE, fetch: t.fetch },
    });
    const incoming = new Request("https://worker.example/v1/video/jobs?x=1", {
      method: "POST",
      body: '{"p":1}',
      headers: { "content-type": "application/json", "idempotency-key": "k" },
    });
    const response = await proxy.fetch(incoming, {}, ctx);
    expect(response.status).toBe(200);
    expect(decodeURIComponent(response.headers.get("x-resilience-endpoint") ?? "")).toBe("b — EU");
    expect(response.headers.get("x-resilience-attempts")).toBe("2");
    expect(t.log.map((r) => [r.url, r.text])).toEqual([
      ["https://a.example/v1/jobs?x=1", '{"p":1}'],
      ["https://b.example/v1/jobs?x=1", '{"p":1,"m":2}'],
    ]);
  });

  it("an endpoint redirecting across origins: the redirect event's URLs cut, its own credentials dropped", async () => {
    const t = hostFetch({
      "a.example": status(503),
      "b.example": () => new Response(null, { status: 307, headers: { location: "https://c.example/x?sig=SECRET#f" } }),
      "c.example": () => Response.json({ ok: 1 }),
    });
    const layer = createResilience({
      retry: ONCE,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1", headers: { authorization: "Bearer B", "x-api-key": "KB" } },
          ],
        },
      ]),
    });
    const redirects: unknown[] = [];
    layer.on("redirect", (e) => redirects.push(e));
    const response = await layer.fetch("https://a.example/v1/jobs", {
      method: "POST",
      body: "{}",
      headers: { "idempotency-key": "k" },
    });
    expect(getResilienceInfo(response)?.endpoint).toBe("b");
    expect(redirects).toEqual([
      {
        from: "https://b.example/v1/jobs",
        to: "https://c.example/x",
        status: 307,
        crossOrigin: true,
        dropped: ["authorization", "x-api-key"],
      },
    ]);
    const toC = t.log[2];
    expect(header(toC, "authorization")).toBeUndefined();
    expect(header(toC, "x-api-key")).toBeUndefined();
  });

  it("degradation rewrites a Request body once, before the chain: caller bytes first, the transform sees it", async () => {
    const t = hostFetch({ "a.example": status(503), "b.example": status(200) });
    const seen: unknown[] = [];
    const layer = createResilience({
      retry: ONCE,
      fetch: t.fetch,
      degradation: degradation({}),
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            {
              name: "b",
              url: "https://b.example/v1",
              transform: (req) => {
                seen.push(req.body);
                return req;
              },
            },
          ],
        },
      ]),
    });
    layer.degradation?.setLevel("medium");
    const body = '{"steps":50,"model":"premium","n":12345678901234567890}';
    const response = await layer.fetch(
      new Request("https://a.example/v1/jobs", {
        method: "POST",
        body,
        headers: { "content-type": "application/json", "idempotency-key": "k" },
      }),
    );
    expect(getResilienceInfo(response)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
    const rewritten = '{"steps":30,"model":"standard","n":12345678901234567890}';
    expect(t.log.map((r) => r.text)).toEqual([rewritten, rewritten]);
    expect(seen).toEqual([JSON.parse(rewritten)]); // the parsed view (its 64-bit integer rounded, as JSON.parse reads it)
  });

  it("a Request body over maxReplayBytes rewritten small by a transform still goes to one endpoint", async () => {
    const t = hostFetch({ "a.example": status(503), "b.example": status(200) });
    const layer = createResilience({
      retry: ONCE,
      maxReplayBytes: 16,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "video",
          endpoints: [
            { name: "a", url: "https://a.example/v1", transform: (req) => ({ ...req, body: { small: 1 } }) },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const replays: unknown[] = [];
    layer.on("replay", (e) => replays.push(e));
    const request = new Request("https://a.example/v1/jobs?key=SECRET", {
      method: "PUT",
      body: JSON.stringify({ prompt: "x".repeat(100) }),
      headers: { "content-type": "application/json" },
    });
    const response = await layer.fetch(request);
    expect(response.status).toBe(503);
    expect(t.log.map((r) => r.url)).toEqual(["https://a.example/v1/jobs?key=SECRET"]);
    expect(replays).toEqual([{ url: "https://a.example/v1/jobs", bytes: 113, limit: 16 }]);
  });
});
