/**
 * Outside-in attack on the layer wired into real clients the way users wire it: the `openai` SDK (`fetch` option),
 * axios's fetch adapter (`adapter: "fetch"`, `env: { fetch }`), ofetch (`ofetch.create(defaults, { fetch })`) and
 * a Hono app that mounts the Cloudflare `resilientProxy` with `app.mount` and is called through `app.fetch`.
 *
 * Docs:
 * - docs/retry.md#timeouts: "`timeout.attempt` bounds one attempt's time to response headers; `timeout.total`
 *   bounds the whole call up to the response headers it settles with"; "Neither bounds reading the body of the
 *   response you get: that read is yours, under your own signal."
 * - README.md: "… and never buffers your streamed responses."
 * - docs/breakers.md: "One per host (`url.host`, or `breaker.key(url)`)"; docs/retry.md: "`CircuitOpenError` | the
 *   host's breaker is open: nothing was sent to it".
 * - SECURITY.md: "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their userinfo …, query string
 *   and fragment (where keys such as `?api_key=` live) before they reach any of them"; "request headers are never
 *   recorded"; docs/health-and-events.md: "the last 50 failures (URLs without their query string, which may hold
 *   keys)".
 * - SECURITY.md: "A paid request is never processed twice | without an `Idempotency-Key` …, a POST or PATCH is sent
 *   again … only when it surely was not processed: 429, 503, …; never after a 500, a reset"; docs/retry.md#idempotency:
 *   "With `retry.idempotencyKey: true`, POST and PATCH requests without a key get one (`crypto.randomUUID()`), the
 *   same on every retry of that call"; docs/retry.md#bodies: "a `Request` input's body is read into bytes once and
 *   replayed".
 * - SECURITY.md: "Buffered bodies are bounded | … a stream, is sent once on every path"; docs/health-and-events.md:
 *   "(a `ReadableStream` in `init` is never read ahead to be measured: it goes once, without one)".
 * - docs/retry.md: "A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with
 *   `signal.reason`"; docs/recipes.md: "axios … its `timeout` is the caller's deadline", "ofetch with `retry: 0`".
 * - docs/recipes.md: "Turn the client's own retries off. Otherwise retries multiply" (held by earlier runs; here the
 *   clients run with their retries off as the recipes say).
 * - docs/fallback.md / SECURITY.md: "Credentials never cross origins"; docs/cloudflare.md: "A route serves its path and
 *   everything below it (… the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…`
 *   keeps its key)"; "`GET /__resilience/health` returns `health()` as JSON".
 *
 * How: `createResilience`, guards (root), `resilientProxy` (./cloudflare), `TestClock` (./testing); openai 7.59,
 * axios 1.21, ofetch 1.5, hono 4.13 (`app.mount`, `app.fetch` called directly, no node:http in front); node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts: P the API, Q another origin), `refusedOrigin`. Backoffs of
 * 1–2 ms (jitter none), or on a `TestClock` where a wait or a timeout matters.
 *
 * Paths: plain call (SDK `fetch`, axios `Request` input, ofetch `init` with a stream body), timeouts on a
 * `TestClock` with an SSE answer, breakers of two hosts on one layer, a library-followed redirect whose `Location`
 * carries a signature, a caller's abort in the layer's backoff, `resilientProxy` mounted in Hono (upstream route
 * with a key in its query, chain route to a cross-origin spare, health path).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * (none found)
 *
 * Held (plain `it`):
 * - openai `stream: true` under `timeout: { attempt, total }` on a `TestClock`: once the headers came, no timer is
 *   left; 60 s of clock later the SSE events go on arriving one by one, the stream ends cleanly, one request.
 * - Breakers per host through two OpenAI clients on one layer: P's 503s open P's breaker (the third call is
 *   `APIConnectionError` with `CircuitOpenError` for P's host, unsent) while Q's client is served; `health()` shows P
 *   open and Q closed; after the breaker's timeout P is probed: half-open after one success, closed after two.
 * - No secret in events, `health()`, `debugInfo()` or the layer's errors behind openai, axios and ofetch errors: the
 *   Bearer key, a key in `defaultQuery` / axios `params` / ofetch `query`, a signature in a redirect's `Location`.
 * - axios (fetch adapter, a `Request` input): a keyless POST after a 500 or a reset is sent once; after a 503 three
 *   times; a caller's `Idempotency-Key` on a 500 and `retry.idempotencyKey` on a reset: three sends under one key,
 *   the same body bytes each time.
 * - axios POST of 4 KiB past `maxReplayBytes` (1 KiB), keyed, answered 503: sent once, whole, one `replay` event,
 *   no retry. axios's own `timeout` on a hung attempt: `AxiosError` (ECONNABORTED/ETIMEDOUT), one request, the
 *   upstream connection closed, and the call left out of `debugInfo()`'s totals and failures and of the breaker.
 * - ofetch POST with a `ReadableStream` body (ofetch adds `duplex: "half"`): sent once on a 503 even with a key, no
 *   `replay` event, `FetchError` status 503.
 * - The caller's abort in the layer's 5 s backoff (axios `signal`, ofetch `signal`): settles before any clock
 *   advance, no timer left on the layer's clock, one request.
 * - `resilientProxy` mounted with `app.mount("/ai", proxy.fetch)` and called through `app.fetch` without env or
 *   ctx, openai its client: the prefix is cut, the upstream's `?api_key=` goes after the path, SSE reaches the SDK
 *   before the upstream ends; a chain route's cross-origin spare gets its own key, not the SDK's; the health path
 *   answers JSON that holds neither key.
 *
 * Docs-silent (not pinned):
 * - `app.mount("/ai", proxy.fetch)` hands the proxy Hono's `c.env`, which is `undefined` when `app.fetch(request)`
 *   is called without bindings (a test, or a Node server that passes none). The proxy's routes serve all the same
 *   (held above), but its health path throws `TypeError: Cannot read properties of undefined (reading
 *   'RESILIENCE_HEALTH_TOKEN')`, which Hono answers 500. docs/cloudflare.md covers the token var `undefined` or
 *   `null` "in an `env` your code builds", not a missing `env`; the type asks for one, so this is not pinned.
 *   In the sixty-sixth session no `env` reads as no token set, and docs/cloudflare.md says so (test "a chain
 *   route's cross-origin spare…", its health call given no env).
 */
import { readFileSync } from "node:fs";
import axios, { AxiosError } from "axios";
import { Hono } from "hono";
import { FetchError, ofetch } from "ofetch";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import {
  createResilience,
  isCircuitOpenError,
  isResilienceError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { ask, chunk, completion, DONE, sendJson, sseHead } from "../helpers/openai-wire.ts";

const P = httpUpstream(); // the API
const Q = httpUpstream(); // another origin
serveDuringFile(P, Q);

const KEY = "sk-fake-SDKS66-bearer-0123456789";
const QKEY = "qk-SDKS66-query-secret-4242";
const SIG = "sig-SDKS66-location-7777";
const SPARE = "sk-fake-SDKS66-spare-own-key";
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const EVENTS = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const reset = (hit: Hit) => hit.req.socket.destroy();
const openai = (layer: Resilience, base = P.base, extra: Record<string, unknown> = {}) =>
  new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, fetch: layer.fetch, maxRetries: 0, ...extra });
const axiosOn = (layer: Resilience) =>
  axios.create({
    baseURL: `${P.base}/v1`,
    adapter: "fetch",
    env: { fetch: layer.fetch },
    headers: { authorization: `Bearer ${KEY}` },
  });
const ofetchOn = (layer: Resilience) => ofetch.create({ retry: 0 }, { fetch: layer.fetch });

/** Every event the layer fires, as plain JSON-able records. */
function record(layer: Resilience): Array<{ name: string; event: unknown }> {
  const seen: Array<{ name: string; event: unknown }> = [];
  for (const name of EVENTS) layer.on(name, (event: unknown) => seen.push({ name, event }));
  return seen;
}

/** The message, stack and own string fields of an error and everything beneath it (causes, `errors`). */
function texts(e: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 8 || e === null || e === undefined) return out;
  if (typeof e !== "object") {
    out.push(String(e));
    return out;
  }
  const err = e as Record<string, unknown> & { cause?: unknown; errors?: unknown };
  out.push(String(err.message), String(err.stack));
  for (const value of Object.values(err)) if (typeof value === "string") out.push(value);
  texts(err.cause, out, depth + 1);
  if (Array.isArray(err.errors)) for (const inner of err.errors) texts(inner, out, depth + 1);
  return out;
}

/** Reads the next SSE event of an OpenAI stream iterator. */
type Chunk = { choices: Array<{ delta: { content?: string | null } }> };
const content = (r: IteratorResult<Chunk>) => (r.done ? undefined : r.value.choices[0]?.delta.content);

/** Resolves with `p`'s outcome, or with "late" when it has not settled within `ms` of real time. */
async function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise((r) => {
    timer = setTimeout(() => r("late"), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("openai SSE under the layer's timeouts", () => {
  it("an SSE stream goes on past timeout.attempt and timeout.total once its headers came; no timer left", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: fast, timeout: { attempt: 1_000, total: 2_000 } });
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("one"));
    });
    const stream = await openai(layer).chat.completions.create({ ...ask, stream: true });
    expect(clock.pending()).toBe(0);
    const events = stream[Symbol.asyncIterator]() as AsyncIterator<Chunk>;
    expect(content(await events.next())).toBe("one");
    await clock.advance(60_000);
    const hit = await P.nth(1);
    hit.res.write(chunk("two"));
    expect(content(await events.next())).toBe("two");
    hit.res.write(chunk("three"));
    expect(content(await events.next())).toBe("three");
    hit.res.end(DONE);
    expect((await events.next()).done).toBe(true);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("breakers per host through two OpenAI clients on one layer", () => {
  it("P's breaker opens on P's 503s; Q's client is served; health() tells them apart; P is probed after timeout", async () => {
    const clock = new TestClock();
    const layer = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });
    P.on((hit) => sendJson(hit, 503, { error: { message: "busy" } }));
    Q.on((hit) => sendJson(hit, 200, completion("from Q")));
    const a = openai(layer, P.base);
    const b = openai(layer, Q.base);
    for (let i = 0; i < 2; i++) {
      expect(await caught(a.chat.completions.create(ask))).toBeInstanceOf(OpenAI.InternalServerError);
    }
    const third = await caught(a.chat.completions.create(ask));
    expect(third).toBeInstanceOf(OpenAI.APIConnectionError);
    const cause = (third as Error).cause;
    expect(isCircuitOpenError(cause)).toBe(true);
    expect((cause as { key: string }).key).toBe(P.host);
    expect(P.hits).toHaveLength(2);

    const served = await b.chat.completions.create(ask);
    expect(served.choices[0]?.message.content).toBe("from Q");
    expect(Q.hits).toHaveLength(1);
    const breakers = layer.health().breakers as Record<string, { state: string }>;
    expect(breakers[P.host]?.state).toBe("open");
    expect(breakers[Q.host]?.state).toBe("closed");

    await clock.advance(10_000);
    P.on((hit) => sendJson(hit, 200, completion("P back")));
    const probe = await a.chat.completions.create(ask);
    expect(probe.choices[0]?.message.content).toBe("P back");
    expect((layer.health().breakers as Record<string, { state: string }>)[P.host]?.state).toBe("half_open");
    await a.chat.completions.create(ask); // successThreshold (2) successes close
    expect(P.hits).toHaveLength(4);
    expect((layer.health().breakers as Record<string, { state: string }>)[P.host]?.state).toBe("closed");
  });
});

describe("no secret in events, health(), debugInfo() or the layer's errors behind the clients' errors", () => {
  it("Bearer key, query keys (defaultQuery, params, query) and a redirect Location's signature stay out", async () => {
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 50 } });
    const seen = record(layer);
    const layerErrors: unknown[] = [];
    const sdk = openai(layer, P.base, { defaultQuery: { api_key: QKEY } });

    // a chat POST answered 500: not retried, the SDK's status error
    P.on((hit) => sendJson(hit, 500, { error: { message: "boom" } }));
    expect(await caught(sdk.chat.completions.create(ask))).toBeInstanceOf(OpenAI.InternalServerError);
    expect(P.hits).toHaveLength(1);

    // a GET redirected to another origin with a signature in its Location; the target resets every time
    P.reset();
    P.on((hit) => hit.res.writeHead(302, { location: `${Q.base}/v1/models?sig=${SIG}` }).end());
    Q.on(reset);
    const listed = await caught(sdk.models.list());
    expect(listed).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(isResilienceError((listed as Error).cause)).toBe(true);
    layerErrors.push((listed as Error).cause);
    expect(Q.hits).toHaveLength(3);
    expect(Q.hits[0]?.path).toContain(SIG); // it went, the signature with it
    expect(Q.hits[0]?.headers.authorization).toBeUndefined();

    // axios with the key in params, answered 503 three times
    P.reset();
    P.on((hit) => hit.res.writeHead(503).end("down"));
    const ax = await caught(axiosOn(layer).get("/files", { params: { key: QKEY } }));
    expect(ax).toBeInstanceOf(AxiosError);
    expect((ax as AxiosError).response?.status).toBe(503);
    expect(P.hits).toHaveLength(3);
    expect(P.hits[0]?.path).toContain(QKEY);

    // axios and ofetch to an origin that refuses, keys in the query
    const refused = await refusedOrigin();
    const axRefused = await caught(
      axios.get(`${refused}/v1/x`, { adapter: "fetch", env: { fetch: layer.fetch }, params: { key: QKEY } }),
    );
    expect(isResilienceError((axRefused as AxiosError).cause)).toBe(true);
    layerErrors.push((axRefused as AxiosError).cause);
    const of = await caught(
      ofetchOn(layer)(`${refused}/v1/y`, { query: { key: QKEY }, headers: { authorization: KEY } }),
    );
    expect(of).toBeInstanceOf(FetchError);
    expect(isResilienceError((of as FetchError).cause)).toBe(true);
    layerErrors.push((of as FetchError).cause);

    const names = new Set(seen.map((s) => s.name));
    expect(names).toEqual(new Set(["request", "retry", "redirect"]));
    const redirects = seen.filter((s) => s.name === "redirect").map((s) => s.event as { to: string });
    expect(redirects[0]?.to).toContain(`${Q.host}/v1/models`);
    const debug = layer.debugInfo() as { recentErrors: Array<{ url: string }> };
    expect(debug.recentErrors.length).toBeGreaterThanOrEqual(4);
    expect(debug.recentErrors.map((f) => f.url)).toContain(`${P.base}/v1/files`);
    const all = [
      JSON.stringify(seen),
      JSON.stringify(layer.health()),
      JSON.stringify(debug),
      ...layerErrors.flatMap((e) => texts(e)),
    ].join("\n");
    for (const secret of [KEY, QKEY, SIG]) expect(all).not.toContain(secret);
  });
});

describe("axios (fetch adapter, a Request input): a POST is sent again only where the docs allow", () => {
  const send = async (
    options: ResilienceOptions,
    handler: (hit: Hit) => void,
    headers: Record<string, string> = {},
  ) => {
    P.on(handler);
    const layer = createResilience({ ...options, retry: { ...fast, ...(options.retry || {}) } });
    const outcome = await caught(axiosOn(layer).post("/images", { prompt: "a cat", steps: 50 }, { headers }));
    return { outcome, hits: [...P.hits] };
  };
  const body = JSON.stringify({ prompt: "a cat", steps: 50 });

  it("keyless: a 500 and a reset are sent once, a 503 three times", async () => {
    const s500 = await send({}, (hit) => hit.res.writeHead(500).end("no"));
    expect(s500.hits).toHaveLength(1);
    expect((s500.outcome as AxiosError).response?.status).toBe(500);
    P.reset();
    const sReset = await send({}, reset);
    expect(sReset.hits).toHaveLength(1);
    expect(isResilienceError((sReset.outcome as AxiosError).cause)).toBe(true);
    P.reset();
    const s503 = await send({}, (hit) => hit.res.writeHead(503).end("busy"));
    expect(s503.hits).toHaveLength(3);
    expect(s503.hits.map((h) => h.body)).toEqual([body, body, body]);
  });

  it("a caller's Idempotency-Key (500) and retry.idempotencyKey (reset): three sends, one key, the same bytes", async () => {
    const own = await send({}, (hit) => hit.res.writeHead(500).end("no"), { "Idempotency-Key": "job-42" });
    expect(own.hits.map((h) => h.headers["idempotency-key"])).toEqual(["job-42", "job-42", "job-42"]);
    expect(own.hits.map((h) => h.body)).toEqual([body, body, body]);
    P.reset();
    const gen = await send({ retry: { idempotencyKey: true } }, reset);
    expect(gen.hits).toHaveLength(3);
    const keys = new Set(gen.hits.map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(gen.hits.map((h) => h.body)).toEqual([body, body, body]);
    expect(gen.hits.every((h) => h.headers.authorization === `Bearer ${KEY}`)).toBe(true);
  });
});

describe("axios: a Request body past maxReplayBytes, and axios's own timeout", () => {
  it("a keyed 4 KiB POST past maxReplayBytes (1 KiB) is sent once, whole, on a 503, with a replay event", async () => {
    P.on((hit) => hit.res.writeHead(503).end("busy"));
    const layer = createResilience({ retry: fast, maxReplayBytes: 1024 });
    const seen = record(layer);
    const big = "x".repeat(4096);
    const e = await caught(
      axiosOn(layer).post("/uploads", big, {
        headers: { "content-type": "text/plain", "idempotency-key": "big-1" },
      }),
    );
    expect((e as AxiosError).response?.status).toBe(503);
    expect(P.hits).toHaveLength(1);
    expect(P.hits[0]?.body).toBe(big);
    expect(seen.filter((s) => s.name === "replay")).toHaveLength(1);
    expect(seen.filter((s) => s.name === "retry")).toHaveLength(0);
  });

  it("axios's timeout on a hung attempt: one request, the upstream closed, counted by no breaker or total", async () => {
    P.on(() => {}); // never answers
    const layer = createResilience({ retry: fast });
    const e = await caught(axiosOn(layer).get("/models", { timeout: 40 }));
    expect(e).toBeInstanceOf(AxiosError);
    expect((e as AxiosError).code).toMatch(/ECONNABORTED|ETIMEDOUT/);
    expect(await within((P.hits[0] as Hit).closed, 1_000)).not.toBe("late");
    expect(P.hits).toHaveLength(1);
    const debug = layer.debugInfo() as { totals: { calls: number }; recentErrors: unknown[] };
    expect(debug.totals.calls).toBe(0);
    expect(debug.recentErrors).toEqual([]);
    expect(layer.health().breakers[P.host]?.consecutiveFailures ?? 0).toBe(0);
  });
});

describe("ofetch: a stream body goes once on every path", () => {
  it("a ReadableStream body (duplex: half) answered 503 is sent once even with a key; no replay event", async () => {
    for (const options of [{}, { retry: { ...fast, idempotencyKey: true } }] as ResilienceOptions[]) {
      P.reset();
      P.on((hit) => hit.res.writeHead(503).end("busy"));
      const layer = createResilience({ retry: fast, ...options });
      const seen = record(layer);
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("part-1;"));
          c.enqueue(new TextEncoder().encode("part-2"));
          c.close();
        },
      });
      const e = await caught(
        ofetchOn(layer)(`${P.base}/v1/uploads`, {
          method: "POST",
          body: stream,
          headers: { "content-type": "application/octet-stream", "idempotency-key": "upload-1" },
        }),
      );
      expect(e).toBeInstanceOf(FetchError);
      expect((e as FetchError).statusCode).toBe(503);
      expect(P.hits).toHaveLength(1);
      expect(P.hits[0]?.body).toBe("part-1;part-2");
      expect(seen.filter((s) => s.name === "replay")).toHaveLength(0);
      expect(seen.filter((s) => s.name === "retry")).toHaveLength(0);
    }
  });
});

describe("a caller's abort in the layer's backoff, through axios and ofetch", () => {
  it("settles before any clock advance, no timer left, one request", async () => {
    const clients: Array<[string, (layer: Resilience, signal: AbortSignal) => Promise<unknown>]> = [
      ["axios", (layer, signal) => axiosOn(layer).get("/models", { signal })],
      ["ofetch", (layer, signal) => ofetchOn(layer)(`${P.base}/v1/models`, { signal })],
    ];
    for (const [name, call] of clients) {
      P.reset();
      P.on((hit) => hit.res.writeHead(503).end("busy"));
      const clock = new TestClock();
      const layer = createResilience({ clock, retry: { initialDelay: 5_000, maxDelay: 5_000, jitter: "none" } });
      const seen = record(layer);
      const controller = new AbortController();
      const pending = caught(call(layer, controller.signal));
      await P.nth(1);
      await clock.waitForTimers(1);
      const reason = new Error(`${name}: user left`);
      controller.abort(reason);
      const e = await within(pending, 500);
      expect(e, name).not.toBe("late");
      if (name === "axios") expect(axios.isCancel(e), name).toBe(true);
      else expect((e as FetchError).cause, name).toBe(reason);
      expect(clock.pending(), name).toBe(0);
      expect(P.hits, name).toHaveLength(1);
      expect(
        seen.filter((s) => s.name === "breaker"),
        name,
      ).toHaveLength(0);
      expect(layer.health().breakers[P.host]?.consecutiveFailures, name).toBe(1);
    }
  });
});

describe("resilientProxy mounted in a Hono app (app.mount, app.fetch), openai as its client", () => {
  const makeApp = () => {
    const proxy = resilientProxy<Record<string, unknown>>({
      routes: [
        { path: "/v1", upstream: `${P.base}/v1?api_key=${QKEY}` },
        {
          path: "/alt",
          chain: {
            name: "alt",
            endpoints: [
              { name: "p", url: `${P.base}/alt` },
              { name: "q", url: `${Q.base}/alt`, headers: { authorization: `Bearer ${SPARE}` } },
            ],
          },
        },
      ],
      resilience: { retry: fast },
    });
    const app = new Hono();
    app.mount("/ai", proxy.fetch);
    return app;
  };
  const client = (app: Hono, path: string) =>
    new OpenAI({
      apiKey: KEY,
      baseURL: `http://worker.test/ai${path}`,
      maxRetries: 0,
      fetch: (url, init) => Promise.resolve(app.fetch(new Request(url as string, init as RequestInit))),
    });

  it("the prefix is cut, the upstream keeps its query key, SSE reaches the SDK before the upstream ends", async () => {
    const app = makeApp();
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("first"));
    });
    const stream = await client(app, "/v1").chat.completions.create({ ...ask, stream: true });
    const events = stream[Symbol.asyncIterator]() as AsyncIterator<Chunk>;
    expect(content(await events.next())).toBe("first");
    const hit = await P.nth(1);
    expect(hit.path).toBe(`/v1/chat/completions?api_key=${QKEY}`);
    expect(hit.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.parse(hit.body)).toMatchObject(ask);
    hit.res.write(chunk("second"));
    expect(content(await events.next())).toBe("second");
    hit.res.end(DONE);
    expect((await events.next()).done).toBe(true);
  });

  it("a chain route's cross-origin spare gets its own key, not the SDK's; the health JSON holds neither key", async () => {
    const app = makeApp();
    P.on((hit) => sendJson(hit, 503, { error: { message: "busy" } }));
    Q.on((hit) => sendJson(hit, 200, completion("spare")));
    const res = await client(app, "/alt").chat.completions.create(ask).withResponse();
    expect(res.data.choices[0]?.message.content).toBe("spare");
    expect(res.response.headers.get("x-resilience-endpoint")).toBe("q");
    expect(P.hits).toHaveLength(3);
    expect(Q.hits).toHaveLength(1);
    expect(Q.hits[0]?.headers.authorization).toBe(`Bearer ${SPARE}`);
    expect(Object.keys(Q.hits[0]?.headers ?? {}).filter((h) => h.startsWith("x-stainless"))).toEqual([]);
    expect(Q.hits[0]?.body).toBe(P.hits[0]?.body);

    // the /v1 route fails too (reset), so the health report has something of it to tell
    P.reset();
    P.on(reset);
    const failed = await caught(client(app, "/v1").models.list());
    expect((failed as { status?: number }).status).toBe(502);
    // No env, as Hono hands on when given no bindings: no token set, the report open (written in, sixty-sixth session).
    const guide = readFileSync(new URL("../../docs/cloudflare.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain("or with no `env` at all, as Hono's `app.fetch(request)` hands on when given no bindings");
    const health = await app.fetch(new Request("http://worker.test/ai/__resilience/health"));
    expect(health.status).toBe(200);
    const text = await health.text();
    expect(text).toContain(P.host);
    expect(text).not.toContain(QKEY);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(SPARE);
  });
});
