/**
 * Outside-in attack on the layer under real SDKs and clients (openai 7.59, @anthropic-ai/sdk 1.14, replicate 1.4,
 * the ky client) on paths earlier SDK runs left alone: the SDKs as end clients of a `resilientProxy` mounted in a
 * Hono app on node:http (streamed request body, SSE answer, the SDK's abort), the recipes' helpers
 * (`overloadedAs503`'s breaker, bare transport and redirects; `replicateFetch` with a caller's signal), a chain
 * one of whose endpoints timed out, and an SSE answer through `createClient`.
 *
 * Docs:
 * - docs/retry.md#idempotency: "Nor after a redirect: the server that answered it may have done the work (a 303
 *   after a POST says so), whatever the redirect's target then answers or however reaching it fails."
 * - SECURITY.md: "A paid request is never processed twice | without an `Idempotency-Key` …, a POST or PATCH is sent
 *   again … only when it surely was not processed".
 * - docs/recipes.md: "`overloadedAs503(options)` returns a layer whose transport shows it a 529 as a 503 (retried,
 *   counted by the breaker) and `sdkFetch`, which hands the SDK its 529 back"; "The bare layer's failure is handed
 *   on as fetch's own (a refused connection's `TypeError`), so the recipe's layer retries it as any network
 *   error"; examples/recipes/anthropic.ts: "It follows redirects as this layer asks it to (`redirects: "platform"`
 *   hands them to the platform's fetch)".
 * - docs/recipes.md: "pass a `signal` (`AbortSignal.timeout(ms)`) to `predictions.create` and `predictions.get` to
 *   bound a call"; the table: anthropic "an error whose text says "timeout" or "timed out" (a chain's with one
 *   endpoint timed out too): `APIConnectionTimeoutError`, without a `cause`", openai "`APIConnectionError.cause`
 *   (`APIConnectionTimeoutError` when its text says "timeout" or "timed out")"; "`resilienceCause(error)` returns
 *   the layer's error behind an SDK error".
 * - docs/cloudflare.md: "answers `503` with `Retry-After` when the circuit is open"; "adds `x-resilience-endpoint`
 *   …, `x-resilience-attempts` and `x-degradation-level` to the responses the upstreams gave (its own 502, 503 and
 *   504 carry none of the three)"; "A request for a route whose client went away (its `signal` aborted) gets no
 *   answer: the proxy's `fetch` rejects with the signal's reason"; "The client's body goes on as a stream: the
 *   layer reads at most `maxReplayBytes` of it ahead, so a small body is retried and a larger one is sent once";
 *   "`502` … a `429` or `503` that came after another request of the call … for a client's POST or PATCH without a
 *   key, when `retry.idempotencyKey` is on"; docs/retry.md#bodies: "a `Request` body announced larger than
 *   `maxReplayBytes` by its `content-length` (a client upload the Worker proxy forwards), go to fetch as they are
 *   (so the length goes with the body …)".
 * - README.md / docs/retry.md: "… and never buffers your streamed responses."
 *
 * How: `createResilience`, guards (root), `fallback` (./fallback), `resilientProxy` (./cloudflare), `createClient`
 * (./ky), `TestClock` (./testing); the recipes as written (examples/recipes `overloadedAs503`, `resilienceCause`,
 * `replicateFetch`, the package name mocked to ../../src); node:http servers on 127.0.0.1 (P the API, Q another
 * origin; test/helpers/http-upstream.ts); a Hono app served on node:http by a small adapter that hands the app the
 * incoming body as a stream and aborts the `Request`'s signal when the client goes. Backoffs of 1–2 ms (jitter
 * none); `Retry-After` waits, breaker timeouts and attempt timeouts on a `TestClock`.
 *
 * Paths: plain call (SDK `fetch`), `resilientProxy` upstream route behind Hono (`Request` input with a stream body,
 * SSE, the SDK's signal and `controller.abort()`, an open circuit, `retry.idempotencyKey`, a multipart upload past
 * `maxReplayBytes`), a redirect followed by the layer and by the platform (`redirects: "platform"`), a fallback chain
 * (hung endpoint, refused endpoint), the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-sixth session, so plain `it`):
 * 1. docs/retry.md "Nor after a redirect: … whatever the redirect's target then answers" (SECURITY.md "A paid
 *    request is never processed twice"), for the Anthropic recipe's layer with `redirects: "platform"`, which its
 *    comment offers. Observed: a keyless `messages.create` that P answers 307 to Q, which answers 529, is sent 3
 *    times to P and 3 times to Q (a plain layer with `redirects: "platform"` sends it once, for a 529 and a 503
 *    alike). The transport re-labels the 529 as a 503 in `new Response(…)`, whose `redirected` is `false`, so the
 *    layer takes it for P's own "declined" and re-sends the POST.
 *    Test: "defect 1: overloadedAs503({ redirects: 'platform' }): a keyless POST 307'd to an overloaded host is sent
 *    once".
 *
 * Held (plain `it`):
 * - resilientProxy behind Hono, openai as its client: a chat POST's 503 retried with the same streamed body,
 *   `x-resilience-attempts: 2`, `x-stainless-retry-count` `0` both times; SSE events reach the SDK one by one; the
 *   SDK's `controller.abort()` mid-stream closes the upstream; the SDK's signal aborted in the proxy's `Retry-After`
 *   wait: `APIUserAbortError`, `proxy.fetch` rejects with the reason, nothing more sent; an open circuit: the SDK's
 *   `InternalServerError` with `retry-after: 30` and no `x-resilience-*`, nothing sent; an upload past
 *   `maxReplayBytes` sent once with its `content-length`; with `retry.idempotencyKey`, 500 then 503s under one key
 *   is a 502, a 503 that was the only request passes through; Anthropic's 529 passed through once,
 *   `OverloadedError`.
 * - overloadedAs503: 529s open the breaker after four calls (12 requests), the fifth `APIConnectionError` with
 *   `CircuitOpenError`, unsent; a refused connection retried to 3 attempts, a reset POST sent once; a 307 to a 529
 *   in the default redirect mode sent once.
 * - replicateFetch: `predictions.get({ signal })` aborted in the layer's `Retry-After` wait rejects with the reason,
 *   one request.
 * - A chain (hung endpoint, refused endpoint): openai `APIConnectionTimeoutError` whose cause `resilienceCause`
 *   finds (`FallbackExhaustedError`); anthropic `APIConnectionTimeoutError` without a cause.
 * - createClient: a 503 retried, then SSE events readable one by one.
 *
 * Docs-silent (not pinned):
 * - The Anthropic SDK (1.14) given `apiKey` sends `authorization: Bearer …`, not `x-api-key`; the layer's
 *   cross-origin rules treat both alike, so nothing changes, but docs/fallback.md names `x-api-key` only.
 * - Neither Stainless SDK sends an `Idempotency-Key` (openai 7.59 has `idempotencyHeader` unset): the recipes'
 *   `retry.idempotencyKey` is the only way a hung chat POST is retried.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import Anthropic from "@anthropic-ai/sdk";
import { Hono } from "hono";
import OpenAI from "openai";
import Replicate from "replicate";
import { describe, expect, it, vi } from "vitest";
import { overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { resilienceCause } from "../../examples/recipes/openai.ts";
import { replicateFetch } from "../../examples/recipes/replicate.ts";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { ask, chunk, completion, DONE, sendJson, sseHead } from "../helpers/openai-wire.ts";

vi.mock("@storycore/resilient-fetch", () => import("../../src/index.ts"));

const P = httpUpstream(); // the API
const Q = httpUpstream(); // another origin
serveDuringFile(P, Q);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil() {}, passThroughOnException() {} };
const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const flush = () => new Promise<void>((r) => setImmediate(r));

/**
 * Serves a Hono app on node:http as a runtime does: the incoming body as a stream (not read first), the
 * request's `signal` aborted when the client goes, the answer written chunk by chunk as it comes.
 */
async function serveHono(app: Hono): Promise<{ base: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const ac = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) ac.abort(new Error("client gone"));
    });
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method ?? "GET",
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
      signal: ac.signal,
      duplex: "half",
    } as RequestInit);
    try {
      const response = await app.fetch(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.flushHeaders();
      if (response.body) for await (const c of response.body) res.write(c);
      res.end();
    } catch {
      res.destroy();
    }
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A Hono app that hands `/v1/*` to a `resilientProxy` (an upstream route to P), keeping what `proxy.fetch` settled with. */
function proxyApp(resilience: ResilienceOptions = { retry: fast }) {
  const proxy = resilientProxy<Record<string, never>>({
    routes: [{ path: "/v1", upstream: `${P.base}/v1` }],
    resilience,
  });
  const settled: Array<Promise<unknown>> = [];
  const app = new Hono();
  app.onError((error) => {
    throw error; // no 500 of Hono's own: the adapter drops the connection, as a runtime does for a rejected handler
  });
  app.all("/v1/*", (c) => {
    const p = proxy.fetch(c.req.raw, {}, ctx);
    settled.push(caught(p));
    return p;
  });
  return { app, settled };
}

async function withProxy<T>(
  resilience: ResilienceOptions | undefined,
  body: (base: string, settled: Array<Promise<unknown>>) => Promise<T>,
): Promise<T> {
  const { app, settled } = proxyApp(resilience);
  const { base, server } = await serveHono(app);
  try {
    return await body(base, settled);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe("the SDKs as clients of a resilientProxy mounted in Hono (docs/cloudflare.md)", () => {
  it("openai chat POST answered 503 then 200: retried by the proxy, the same body twice, x-resilience-attempts 2", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, completion("ok"))));
    await withProxy(undefined, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const { data, response } = await sdk.chat.completions.create(ask).withResponse();
      expect(data.choices[0]?.message.content).toBe("ok");
      expect(response.headers.get("x-resilience-attempts")).toBe("2");
      expect(P.hits).toHaveLength(2);
      expect(P.hits[1]?.body).toBe(P.hits[0]?.body);
      expect(JSON.parse(P.hits[0]?.body ?? "{}")).toEqual(ask);
      expect(P.hits.map((h) => h.headers["x-stainless-retry-count"])).toEqual(["0", "0"]);
      expect(P.hits[1]?.headers.authorization).toBe("Bearer sk-proxy-KEY-123456");
    });
  });

  it("openai stream: true: each SSE chunk reaches the SDK through the proxy before the upstream sends the next", async () => {
    let release: () => void = () => {};
    const later = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("one"));
      void later.then(() => hit.res.end(`${chunk("two")}${DONE}`));
    });
    await withProxy(undefined, async (base) => {
      try {
        const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
        const stream = await sdk.chat.completions.create({ ...ask, stream: true });
        const it = stream[Symbol.asyncIterator]();
        const first = await it.next();
        expect(first.value?.choices[0]?.delta.content).toBe("one");
        release();
        const second = await it.next();
        expect(second.value?.choices[0]?.delta.content).toBe("two");
        expect((await it.next()).done).toBe(true);
      } finally {
        release();
      }
    });
  });

  it("openai stream aborted by the SDK after the first event: the proxy's upstream connection is closed", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("one"));
    });
    await withProxy(undefined, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const stream = await sdk.chat.completions.create({ ...ask, stream: true });
      const it = stream[Symbol.asyncIterator]();
      expect((await it.next()).value?.choices[0]?.delta.content).toBe("one");
      stream.controller.abort();
      const hit = await P.nth(1);
      const closed = await Promise.race([
        hit.closed.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      expect(closed).toBe(true);
    });
  });

  it("files.create past maxReplayBytes: sent once with its content-length, the 503 passed through as InternalServerError", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    await withProxy({ retry: fast, maxReplayBytes: 1_024 }, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const file = new File([new Uint8Array(8_192).fill(97)], "data.jsonl");
      const error = await caught(sdk.files.create({ file, purpose: "batch" }));
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(P.hits).toHaveLength(1);
      const hit = P.hits[0] as Hit;
      expect(hit.bytes.length).toBeGreaterThan(8_192);
      expect(hit.headers["content-length"]).toBe(String(hit.bytes.length));
      expect(hit.headers["transfer-encoding"]).toBeUndefined();
    });
  });

  it("the SDK's signal aborted during the proxy's Retry-After wait: proxy.fetch rejects with the reason, nothing more sent", async () => {
    const clock = new TestClock();
    P.on((hit) => sendJson(hit, 503, {}, { "retry-after": "5" }));
    await withProxy({ clock, retry: fast }, async (base, settled) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const ac = new AbortController();
      const call = caught(sdk.models.list({ signal: ac.signal }));
      await P.nth(1);
      await clock.waitForTimers(1);
      ac.abort(new Error("user left"));
      expect((await call)?.constructor.name).toBe("APIUserAbortError");
      const reason = await settled[0];
      expect((reason as Error).message).toBe("client gone");
      await clock.advance(10_000);
      await flush();
      expect(P.hits).toHaveLength(1);
    });
  });

  it("an open circuit: the proxy's 503 with Retry-After is the SDK's InternalServerError, without x-resilience-*, nothing sent", async () => {
    const clock = new TestClock();
    P.on((hit) => sendJson(hit, 503, {}));
    await withProxy({ clock, retry: false, breaker: { failureThreshold: 1, timeout: 30_000 } }, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const first = await caught(sdk.models.list());
      expect((first as InstanceType<typeof OpenAI.InternalServerError>).headers?.get("x-resilience-attempts")).toBe(
        "1",
      );
      const error = await caught(sdk.models.list());
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      const headers = (error as InstanceType<typeof OpenAI.InternalServerError>).headers;
      expect(headers?.get("retry-after")).toBe("30");
      expect(headers?.get("x-resilience-attempts")).toBeNull();
      expect(P.hits).toHaveLength(1);
    });
  });

  it("anthropic messages.create answered 529: passed through once (a POST), OverloadedError with the proxy's headers", async () => {
    P.on((hit) => sendJson(hit, 529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
    await withProxy(undefined, async (base) => {
      const sdk = new Anthropic({ apiKey: "sk-ant-proxy-123456", baseURL: base, maxRetries: 0 });
      const error = await caught(
        sdk.messages.create({ model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
      );
      expect(error).toBeInstanceOf(Anthropic.OverloadedError);
      expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
      expect(P.hits).toHaveLength(1);
      expect(P.hits[0]?.headers.authorization).toBe("Bearer sk-ant-proxy-123456");
    });
  });

  it("retry.idempotencyKey on: a keyless chat POST answered 500 then 503 is the proxy's 502, not the later 503", async () => {
    P.on((hit) => sendJson(hit, hit.n === 1 ? 500 : 503, {}));
    await withProxy({ retry: { ...fast, idempotencyKey: true } }, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const error = await caught(sdk.chat.completions.create(ask));
      expect(P.hits).toHaveLength(3);
      const keys = P.hits.map((h) => h.headers["idempotency-key"]);
      expect(new Set(keys).size).toBe(1);
      expect(keys[0]).toBeTruthy();
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    });
  });

  it("retry.idempotencyKey on: a 503 that was the call's only request is passed through as it came", async () => {
    P.on((hit) => sendJson(hit, 503, { e: 1 }, { "retry-after": "0" }));
    await withProxy({ retry: { ...fast, maxAttempts: 1, idempotencyKey: true } }, async (base) => {
      const sdk = new OpenAI({ apiKey: "sk-proxy-KEY-123456", baseURL: `${base}/v1`, maxRetries: 0 });
      const error = await caught(sdk.chat.completions.create(ask));
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect(P.hits).toHaveLength(1);
    });
  });
});

describe("the recipes' helpers under the SDKs (docs/recipes.md)", () => {
  it("overloadedAs503: 529s are counted by the breaker: four calls of 3 attempts, then CircuitOpenError, nothing sent", async () => {
    P.on((hit) => sendJson(hit, 529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
    const { sdkFetch } = overloadedAs503({ retry: fast });
    const sdk = new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: sdkFetch, maxRetries: 0 });
    const create = () =>
      caught(sdk.messages.create({ model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }));
    for (let i = 0; i < 4; i++) expect(await create()).toBeInstanceOf(Anthropic.OverloadedError);
    expect(P.hits).toHaveLength(12);
    const error = await create();
    expect(error).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(isCircuitOpenError((error as Error).cause)).toBe(true);
    expect(P.hits).toHaveLength(12);
  });

  it("overloadedAs503's bare transport: a refused connection is retried as a network error (3 attempts), a reset POST is not", async () => {
    const refused = await refusedOrigin();
    const { sdkFetch } = overloadedAs503({ retry: fast });
    const create = (base: string) =>
      caught(
        new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: base, fetch: sdkFetch, maxRetries: 0 }).messages.create({
          model: "claude-test",
          max_tokens: 8,
          messages: [{ role: "user", content: "hi" }],
        }),
      );
    const gone = await create(refused);
    expect(gone).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(isRetryExhaustedError((gone as Error).cause)).toBe(true);
    expect(((gone as Error).cause as { attempts: number }).attempts).toBe(3);

    P.on((hit) => hit.res.socket?.destroy());
    const reset = await create(P.base);
    expect(reset).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(((reset as Error).cause as { attempts: number }).attempts).toBe(1);
    expect(P.hits).toHaveLength(1);
  });

  it("overloadedAs503: a keyless messages.create 307'd to an overloaded host is not sent again (after a redirect)", async () => {
    P.on((hit) => hit.res.writeHead(307, { location: `${Q.base}${hit.path}` }).end());
    Q.on((hit) => sendJson(hit, 529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
    const { sdkFetch } = overloadedAs503({ retry: fast });
    const sdk = new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: sdkFetch, maxRetries: 0 });
    const error = await caught(
      sdk.messages.create({ model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(error).toBeInstanceOf(Anthropic.OverloadedError);
    expect([P.hits.length, Q.hits.length]).toEqual([1, 1]);
  });

  it("control: a plain layer with redirects: 'platform' sends a keyless POST 307'd to a 529 or 503 once", async () => {
    for (const status of [529, 503]) {
      P.reset();
      Q.reset();
      P.on((hit) => hit.res.writeHead(307, { location: `${Q.base}${hit.path}` }).end());
      Q.on((hit) =>
        sendJson(hit, status, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }),
      );
      const r = createResilience({ retry: fast, redirects: "platform" });
      const sdk = new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: r.fetch, maxRetries: 0 });
      const error = await caught(
        sdk.messages.create({ model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
      );
      expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(status);
      expect([P.hits.length, Q.hits.length]).toEqual([1, 1]);
    }
  });

  it("defect 1: overloadedAs503({ redirects: 'platform' }): a keyless POST 307'd to an overloaded host is sent once", async () => {
    P.on((hit) => hit.res.writeHead(307, { location: `${Q.base}${hit.path}` }).end());
    Q.on((hit) => sendJson(hit, 529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
    const { sdkFetch } = overloadedAs503({ retry: fast, redirects: "platform" });
    const sdk = new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: sdkFetch, maxRetries: 0 });
    const error = await caught(
      sdk.messages.create({ model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(error).toBeInstanceOf(Anthropic.OverloadedError);
    // Observed: [3, 3]: the 529 re-labelled 503 is a new Response whose `redirected` is false, so the layer takes
    // it for the first host's own "declined" and sends the keyless POST again, through the redirect, twice more.
    expect([P.hits.length, Q.hits.length]).toEqual([1, 1]);
  });

  it("replicate predictions.get with a signal aborted during the layer's Retry-After wait: rejects with the reason, sent once", async () => {
    const clock = new TestClock();
    P.on((hit) => sendJson(hit, 503, { detail: "busy" }, { "retry-after": "5" }));
    const resilience = createResilience({ clock, retry: fast });
    const replicate = new Replicate({
      auth: "r8_KEY_123456",
      baseUrl: `${P.base}/v1`,
      fetch: replicateFetch(resilience),
    });
    const ac = new AbortController();
    const call = caught(replicate.predictions.get("p1", { signal: ac.signal }));
    await P.nth(1);
    await clock.waitForTimers(1);
    const reason = new Error("caller gave up");
    ac.abort(reason);
    expect(await call).toBe(reason);
    await clock.advance(10_000);
    await flush();
    expect(P.hits).toHaveLength(1);
  });
});

describe("a chain one of whose endpoints timed out, under the SDKs (docs/recipes.md's table)", () => {
  const chainLayer = async (clock: TestClock) => {
    const refused = await refusedOrigin();
    return createResilience({
      clock,
      retry: false,
      timeout: { attempt: 1_000 },
      fallback: fallback([
        {
          name: "llm",
          endpoints: [
            { name: "hung", url: `${P.base}/v1` },
            { name: "gone", url: `${refused}/v1` },
          ],
        },
      ]),
    });
  };

  it("openai: APIConnectionTimeoutError whose cause is the FallbackExhaustedError (resilienceCause finds it)", async () => {
    const clock = new TestClock();
    P.on(() => {}); // hangs
    const resilience = await chainLayer(clock);
    const sdk = new OpenAI({
      apiKey: "sk-KEY-123456",
      baseURL: `${P.base}/v1`,
      fetch: resilience.fetch,
      maxRetries: 0,
    });
    const call = caught(sdk.models.list());
    await P.nth(1);
    await clock.advance(1_000);
    const error = await call;
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(isFallbackExhaustedError(resilienceCause(error))).toBe(true);
  });

  it("anthropic: APIConnectionTimeoutError without a cause", async () => {
    const clock = new TestClock();
    P.on(() => {});
    const resilience = await chainLayer(clock);
    const sdk = new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: resilience.fetch, maxRetries: 0 });
    const call = caught(sdk.models.list());
    await P.nth(1);
    await clock.advance(1_000);
    const error = await call;
    expect(error).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect((error as Error).cause).toBeUndefined();
  });
});

describe("the ky client (createClient) on an SSE answer", () => {
  it("a 503 retried, then each event is readable before the server sends the next (never buffered)", async () => {
    let release: () => void = () => {};
    const later = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      if (hit.n === 1) return sendJson(hit, 503, {});
      sseHead(hit);
      hit.res.write(chunk("one"));
      void later.then(() => hit.res.end(DONE));
    });
    try {
      const api = createClient({ prefix: `${P.base}/v1`, resilience: { retry: fast } });
      const res = await api.get("events");
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('"one"');
      expect(P.hits).toHaveLength(2);
      release();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toBe(DONE);
    } finally {
      release();
    }
  });
});
