/**
 * Outside-in attack on the layer under real SDKs and HTTP clients (openai 7.59, @anthropic-ai/sdk 1.14, axios 1.21
 * fetch adapter, hono 4 `proxy` in an app served on node:http), on paths the recipe tests and earlier attacks left
 * alone: redirects an API answers to an SDK's POST, the SDK's abort and the breaker, a globally installed layer,
 * axios's own `Request`s (upload progress, `maxRedirects: 0`, `fetchOptions`), and a Hono proxy on node:http.
 *
 * Docs:
 * - README.md: "To send every `fetch` of an app or an SDK through the layer, install it: `globalThis.fetch =
 *   resilience.fetch` (before the SDK is made …). A layer without a `fetch` option then sends through the fetch that
 *   was global when it was made, never through itself"; "… and never buffers your streamed responses."
 * - docs/recipes.md: "Turn the client's own retries off. Otherwise retries multiply"; "the layer's error is
 *   `APIConnectionError.cause`"; "A client's or SDK's own `timeout` aborts the whole call, retries included: the layer
 *   sees the caller's abort and stops."
 * - docs/retry.md#idempotency: "Nor after a redirect: the server that answered it may have done the work"; "With
 *   `retry.idempotencyKey: true`, POST and PATCH requests without a key get one …, the same on every retry of that
 *   call".
 * - docs/retry.md#redirects: "From the first hop to another origin on … only the cross-origin allowlist is sent
 *   (`accept`, …, `content-type`, `idempotency-key`, `user-agent`, …)"; "307/308 replay method and body"; "A hop to
 *   another host whose breaker refuses calls … is refused … with a `CircuitOpenError` naming that host and nothing
 *   sent there, its `afterRedirect` `true`"; "Outside browsers … the library follows a `redirect: "follow"` call's
 *   redirects itself".
 * - docs/fallback.md: "`Authorization`, `Cookie`, Azure's `api-key`, Anthropic's `x-api-key` … stay home. … The same
 *   holds for hedges and redirects".
 * - docs/breakers.md: "a caller's abort is neither [a failure nor a success]".
 * - docs/retry.md#bodies: "a `Request` input's body is read into bytes once and replayed".
 *
 * How: `createResilience` (root); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts): P the API, Q
 * another origin; a Hono app served through a small node:http adapter; backoffs of 1–2 ms (jitter none).
 *
 * Paths: plain call, same-origin/cross-origin 307 and 302 after an SDK's POST, `retry.idempotencyKey`, a caller's
 * own `Idempotency-Key`, an open breaker on a redirect's target, a caller's abort repeated past the threshold, a
 * layer installed as `globalThis.fetch`, axios `Request` inputs (stream body, `redirect: "manual"`, a
 * null-prototype `init`), Hono `proxy` (`Request` input) with SSE and a redirect.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * (none found)
 *
 * Held (plain `it`):
 * - openai: a cross-origin 307 after a chat POST replays the body without `authorization`/`x-stainless-*`; the
 *   target's 503 is not re-sent (POST after a redirect) and is the SDK's `InternalServerError`.
 * - `retry.idempotencyKey: true`: the target's 503 is retried, one generated key on every request and hop; a
 *   caller's own `Idempotency-Key` (SDK request headers) crosses a 308 and stays on every retry.
 * - a 302 after a chat POST is followed as a GET without body or `content-type`.
 * - anthropic: a cross-origin 307: `x-api-key` and `authorization` stay home, the body is replayed.
 * - a redirect target's open breaker: `APIConnectionError` whose cause is `CircuitOpenError` (`afterRedirect`),
 *   nothing sent there; a breaker opened by attempt timeouts: `APIConnectionError` (not the timeout subclass) for
 *   both SDKs, cause `CircuitOpenError` (its message names no timeout).
 * - 13 chat calls aborted by the caller while the API hangs open no breaker (the 14th is sent); the SDK's own
 *   `timeout` ends the layer's call (one request, the upstream closed).
 * - `globalThis.fetch = resilience.fetch`, SDKs made after it without `fetch`: the layer's 3 attempts, no loop.
 * - axios: `onUploadProgress` (a `Request` with a stream body) replayed byte for byte after a 503;
 *   `maxRedirects: 0` (`redirect: "manual"`) hands back the 302, its target gets nothing; `fetchOptions` (a
 *   null-prototype `init` beside the `Request`) retried with headers kept; a final 503 is `response.status`.
 * - Hono `proxy` on node:http: a 503 retried, then SSE events reach the end client one by one (unbuffered); the
 *   end client hanging up closes the upstream; a cross-origin 307 drops `authorization` and `cookie`.
 *
 * - through a cross-origin 307 the Anthropic SDK's `anthropic-version` header stays home too (it is not on the
 *   allowlist); `crossOriginHeaders: ["anthropic-version"]` carries it, the key still home. (Docs-silent when
 *   found; docs/recipes.md's Anthropic section now says so.)
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import axios, { AxiosError } from "axios";
import { Hono } from "hono";
import { proxy } from "hono/proxy";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import {
  createResilience,
  isCircuitOpenError,
  isResilienceError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { ask, chunk, completion, DONE, sendJson, sseHead } from "../helpers/openai-wire.ts";

const P = httpUpstream(); // the API
const Q = httpUpstream(); // another origin (a redirect's target)
serveDuringFile(P, Q);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const layer = (options: ResilienceOptions = {}): Resilience =>
  createResilience({ ...options, retry: { ...fast, ...(options.retry as object | undefined) } });
const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const openai = (r: Resilience, base = P.base) =>
  new OpenAI({ apiKey: "sk-openai-KEY-123456", baseURL: `${base}/v1`, fetch: r.fetch, maxRetries: 0 });
const anthropic = (r: Resilience) =>
  new Anthropic({ apiKey: "sk-ant-KEY-123456", baseURL: P.base, fetch: r.fetch, maxRetries: 0 });
const message = {
  id: "msg_1",
  type: "message",
  role: "assistant",
  model: "claude-test",
  content: [{ type: "text", text: "hi" }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: 1, output_tokens: 1 },
};
/** P answers a 307 to the same path on Q. */
const redirectToQ =
  (status = 307) =>
  (hit: Hit) => {
    hit.res.writeHead(status, { location: `${Q.base}${hit.path}` }).end();
  };
const tick = () => new Promise<void>((r) => setImmediate(r));

describe("redirects an API answers to an SDK's POST (docs/retry.md#redirects, #idempotency)", () => {
  it("openai: a cross-origin 307 replays the body, carries no authorization; the target's 503 is not retried (POST after a redirect)", async () => {
    P.on(redirectToQ());
    Q.on((hit) => sendJson(hit, 503, { error: { message: "busy" } }));
    const r = layer();
    const error = await caught(openai(r).chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(P.hits).toHaveLength(1);
    expect(Q.hits).toHaveLength(1); // not re-sent: the first server may have done the work
    const [first] = P.hits;
    const [hop] = Q.hits;
    expect(first?.headers.authorization).toBe("Bearer sk-openai-KEY-123456");
    expect(hop?.method).toBe("POST");
    expect(hop?.body).toBe(first?.body);
    expect(JSON.parse(hop?.body ?? "{}")).toEqual(ask);
    expect(hop?.headers.authorization).toBeUndefined();
    expect(
      Object.keys(hop?.headers ?? {}).filter((n) => n.startsWith("x-stainless") || n.startsWith("openai")),
    ).toEqual([]);
    expect(hop?.headers["content-type"]).toBe("application/json");
  });

  it("openai + retry.idempotencyKey: the 503 after the redirect is retried, one key on every request and hop", async () => {
    P.on(redirectToQ());
    Q.on((hit) =>
      hit.n === 1 ? sendJson(hit, 503, { error: { message: "busy" } }) : sendJson(hit, 200, completion("ok")),
    );
    const r = layer({ retry: { idempotencyKey: true } });
    const done = await openai(r).chat.completions.create(ask);
    expect(done.choices[0]?.message.content).toBe("ok");
    expect(P.hits).toHaveLength(2);
    expect(Q.hits).toHaveLength(2);
    const keys = new Set([...P.hits, ...Q.hits].map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    for (const hop of Q.hits) expect(hop.headers.authorization).toBeUndefined();
    for (const h of [...P.hits, ...Q.hits]) expect(h.headers["x-stainless-retry-count"] ?? "0").toBe("0");
  });

  it("openai: the caller's own Idempotency-Key (request headers) crosses the redirect unchanged on every retry", async () => {
    P.on(redirectToQ(308));
    Q.on((hit) =>
      hit.n < 3 ? sendJson(hit, 500, { error: { message: "oops" } }) : sendJson(hit, 200, completion("ok")),
    );
    const r = layer({ retry: { idempotencyKey: true } });
    await openai(r).chat.completions.create(ask, { headers: { "Idempotency-Key": "caller-key-1" } });
    expect(Q.hits).toHaveLength(3);
    for (const h of [...P.hits, ...Q.hits]) expect(h.headers["idempotency-key"]).toBe("caller-key-1");
  });

  it("openai: a 302 after a chat POST is followed as a GET without the body (301/302 turn a POST into a GET)", async () => {
    P.on(redirectToQ(302));
    Q.on((hit) => sendJson(hit, 200, completion("got")));
    const r = layer();
    const done = await openai(r).chat.completions.create(ask);
    expect(done.choices[0]?.message.content).toBe("got");
    expect(Q.hits[0]?.method).toBe("GET");
    expect(Q.hits[0]?.body).toBe("");
    expect(Q.hits[0]?.headers["content-type"]).toBeUndefined();
  });

  it("anthropic: a cross-origin 307 on messages.create: x-api-key stays home, the body is replayed", async () => {
    P.on(redirectToQ());
    Q.on((hit) => sendJson(hit, 200, message));
    const r = layer();
    const done = await anthropic(r).messages.create(
      { model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] },
      { headers: { "x-api-key": "sk-ant-XKEY-99999" } },
    );
    expect(done.id).toBe("msg_1");
    expect(P.hits[0]?.headers["x-api-key"]).toBe("sk-ant-XKEY-99999");
    expect(P.hits[0]?.headers.authorization).toBe("Bearer sk-ant-KEY-123456");
    expect(Q.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(Q.hits[0]?.headers.authorization).toBeUndefined();
    // docs/recipes.md (Anthropic): "`x-api-key` and `authorization` stay home, and so does `anthropic-version`".
    expect(P.hits[0]?.headers["anthropic-version"]).toBeTypeOf("string");
    expect(Q.hits[0]?.headers["anthropic-version"]).toBeUndefined();
    expect(Q.hits[0]?.body).toBe(P.hits[0]?.body);
  });

  it('anthropic: crossOriginHeaders: ["anthropic-version"] carries that header across a 307, the key still home', async () => {
    P.on(redirectToQ());
    Q.on((hit) => sendJson(hit, 200, message));
    const r = layer({ crossOriginHeaders: ["anthropic-version"] });
    const done = await anthropic(r).messages.create(
      { model: "claude-test", max_tokens: 8, messages: [{ role: "user", content: "hi" }] },
      { headers: { "x-api-key": "sk-ant-XKEY-99999" } },
    );
    expect(done.id).toBe("msg_1");
    expect(Q.hits[0]?.headers["anthropic-version"]).toBe(P.hits[0]?.headers["anthropic-version"]);
    expect(Q.hits[0]?.headers["anthropic-version"]).toBeTypeOf("string");
    expect(Q.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(Q.hits[0]?.headers.authorization).toBeUndefined();
  });

  it("openai: the redirect target's open breaker is APIConnectionError whose cause is CircuitOpenError (afterRedirect), nothing sent there", async () => {
    Q.on((hit) => sendJson(hit, 503, {}));
    const r = layer();
    // 4 GET calls × 3 attempts: Q's breaker opens after 12 failures in a row.
    for (let i = 0; i < 4; i++) await (await r.fetch(`${Q.base}/down`)).arrayBuffer();
    expect(Q.hits).toHaveLength(12);
    P.on(redirectToQ());
    const error = await caught(openai(r).chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    const cause = (error as Error).cause;
    expect(isCircuitOpenError(cause)).toBe(true);
    expect((cause as { afterRedirect?: boolean }).afterRedirect).toBe(true);
    expect(P.hits).toHaveLength(1);
    expect(Q.hits).toHaveLength(12);
  });
});

describe("an open breaker as the SDKs show it (docs/recipes.md table)", () => {
  it("a breaker opened by attempt timeouts: both SDKs throw APIConnectionError (not ...TimeoutError), cause CircuitOpenError, nothing sent", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock, retry: false, timeout: { attempt: 100 } });
    P.on(() => {});
    for (let i = 0; i < 12; i++) {
      const call = caught(r.fetch(`${P.base}/v1/models`));
      await P.nth(i + 1);
      await clock.advance(100);
      await call;
    }
    const o = await caught(openai(r).models.list());
    expect(o).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(o).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(isCircuitOpenError((o as Error).cause)).toBe(true);
    const a = await caught(anthropic(r).models.list());
    expect(a).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(a).not.toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect(isCircuitOpenError((a as Error).cause)).toBe(true);
    expect(P.hits).toHaveLength(12);
  });
});

describe("an SDK's abort and the breaker (docs/breakers.md, docs/recipes.md point 2)", () => {
  it("13 chat calls the caller aborts while the API hangs open no breaker: the 14th is sent", async () => {
    const r = layer();
    const client = openai(r);
    P.on(() => {}); // hang
    for (let i = 1; i <= 13; i++) {
      const ac = new AbortController();
      const call = caught(client.chat.completions.create(ask, { signal: ac.signal }));
      await P.nth(i);
      ac.abort();
      expect(await call).toBeInstanceOf(OpenAI.APIUserAbortError);
    }
    P.on((hit) => sendJson(hit, 200, completion("fine")));
    const done = await client.chat.completions.create(ask);
    expect(done.choices[0]?.message.content).toBe("fine");
    expect(P.hits).toHaveLength(14);
  });

  it("the SDK's own timeout on a hung GET ends the layer's call: one request, APIConnectionTimeoutError", async () => {
    const r = layer({ timeout: { attempt: 5_000 } });
    const client = new OpenAI({ apiKey: "k", baseURL: `${P.base}/v1`, fetch: r.fetch, maxRetries: 0, timeout: 30 });
    P.on(() => {});
    const error = await caught(client.models.list());
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await (P.hits[0]?.closed ?? Promise.reject(new Error("no request")));
    expect(P.hits).toHaveLength(1);
  });
});

describe("a layer installed as globalThis.fetch (README)", () => {
  it("an SDK made after the install, with no fetch option: a 503 API gets the layer's 3 attempts, never a loop", async () => {
    const original = globalThis.fetch;
    const r = layer();
    globalThis.fetch = r.fetch;
    try {
      P.on((hit) => sendJson(hit, 503, { error: { message: "down" } }));
      const client = new OpenAI({ apiKey: "k", baseURL: `${P.base}/v1`, maxRetries: 0 });
      const error = await caught(client.chat.completions.create(ask));
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(P.hits).toHaveLength(3);
      const ant = new Anthropic({ apiKey: "k", baseURL: P.base, maxRetries: 0 });
      P.on((hit) => sendJson(hit, 200, message));
      const done = await ant.messages.create({ model: "m", max_tokens: 1, messages: [{ role: "user", content: "x" }] });
      expect(done.id).toBe("msg_1");
      expect(P.hits).toHaveLength(4);
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe("axios (fetch adapter) Requests (docs/retry.md#bodies, #redirects)", () => {
  const ax = (r: Resilience, extra: Record<string, unknown> = {}) =>
    axios.create({ baseURL: P.base, adapter: "fetch", env: { fetch: r.fetch }, ...extra });

  it("onUploadProgress (a Request with a stream body) after a 503: replayed byte for byte", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, { ok: true })));
    const r = layer();
    const payload = { prompt: "x".repeat(5_000) };
    const progress: number[] = [];
    const res = await ax(r).post("/jobs", payload, { onUploadProgress: (e) => progress.push(e.loaded) });
    expect(res.data).toEqual({ ok: true });
    expect(P.hits).toHaveLength(2);
    expect(P.hits[1]?.body).toBe(JSON.stringify(payload));
    expect(P.hits[0]?.body).toBe(P.hits[1]?.body);
  });

  it("maxRedirects: 0 (a Request with redirect 'manual'): the 302 comes back, its target gets nothing", async () => {
    P.on(redirectToQ(302));
    const r = layer();
    const error = await caught(ax(r, { maxRedirects: 0 }).get("/file"));
    expect(error).toBeInstanceOf(AxiosError);
    expect((error as AxiosError).response?.status).toBe(302);
    expect(Q.hits).toHaveLength(0);
  });

  it("fetchOptions (a null-prototype init beside the Request): a 503 GET is retried, the option reaches nothing wrong", async () => {
    P.on((hit) => (hit.n < 3 ? sendJson(hit, 503, {}) : sendJson(hit, 200, { n: hit.n })));
    const r = layer();
    const res = await ax(r, { fetchOptions: { cache: "no-store", priority: "high" } }).get("/jobs/1", {
      headers: { authorization: "Bearer axios-KEY-123456" },
    });
    expect(res.data).toEqual({ n: 3 });
    expect(P.hits).toHaveLength(3);
    for (const h of P.hits) expect(h.headers.authorization).toBe("Bearer axios-KEY-123456");
  });

  it("a final 503 after the layer's 3: AxiosError.response.status, no layer error in between", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const r = layer();
    const error = await caught(ax(r).get("/x"));
    expect((error as AxiosError).response?.status).toBe(503);
    expect(isResilienceError((error as AxiosError).cause)).toBe(false);
    expect(P.hits).toHaveLength(3);
  });
});

/** Serves a Hono app on node:http: the incoming request as a `Request` whose signal aborts when the client goes. */
async function serveHono(app: Hono): Promise<{ base: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const ac = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) ac.abort(new Error("client gone"));
    });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method ?? "GET",
      headers,
      body: hasBody ? new Uint8Array(Buffer.concat(chunks)) : null,
      signal: ac.signal,
    });
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

describe("a Hono app on node:http proxying through the layer (hono/proxy, customFetch)", () => {
  const proxyApp = (r: Resilience) => {
    const app = new Hono();
    app.all("/v1/*", (c) =>
      proxy(`${P.base}${c.req.path}`, {
        raw: c.req.raw,
        headers: { ...c.req.header(), host: undefined },
        customFetch: r.fetch,
      }),
    );
    return app;
  };

  it("a 503 then an SSE stream: retried once, each event reaches the end client before the next is sent", async () => {
    const r = layer();
    const { base, server } = await serveHono(proxyApp(r));
    let release: () => void = () => {};
    const second = new Promise<void>((resolve) => {
      release = resolve;
    });
    P.on((hit) => {
      if (hit.n === 1) return sendJson(hit, 503, {});
      sseHead(hit);
      hit.res.write(chunk("one"));
      void second.then(() => hit.res.end(`${chunk("two")}${DONE}`));
    });
    try {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer hono-KEY-123456" },
        body: JSON.stringify({ ...ask, stream: true }),
      });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('"one"');
      expect(P.hits).toHaveLength(2);
      release();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toContain('"two"');
      expect(P.hits[0]?.body).toBe(P.hits[1]?.body);
      expect(P.hits[1]?.headers.authorization).toBe("Bearer hono-KEY-123456");
    } finally {
      release();
      server.closeAllConnections();
      server.close();
    }
  });

  it("the end client hanging up mid-stream closes the upstream connection", async () => {
    const r = layer();
    const { base, server } = await serveHono(proxyApp(r));
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("one"));
    });
    try {
      const ac = new AbortController();
      const res = await fetch(`${base}/v1/stream`, { signal: ac.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      ac.abort();
      await caught(reader.read());
      await (P.hits[0]?.closed ?? Promise.reject(new Error("no request")));
      expect(P.hits).toHaveLength(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("the app's proxied Request redirected to another origin: the client's authorization and cookie stay home", async () => {
    const r = layer();
    const { base, server } = await serveHono(proxyApp(r));
    P.on(redirectToQ(307));
    Q.on((hit) => sendJson(hit, 200, { at: "Q" }));
    try {
      const res = await fetch(`${base}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer hono-KEY-123456", cookie: "s=abcdefgh1" },
        body: '{"a":1}',
      });
      expect(await res.json()).toEqual({ at: "Q" });
      expect(P.hits[0]?.headers.authorization).toBe("Bearer hono-KEY-123456");
      expect(Q.hits[0]?.headers.authorization).toBeUndefined();
      expect(Q.hits[0]?.headers.cookie).toBeUndefined();
      expect(Q.hits[0]?.body).toBe('{"a":1}');
      await tick();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
