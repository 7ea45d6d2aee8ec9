/**
 * Outside-in attack on the layer THROUGH the clients users hand
 * `resilience.fetch` to (openai 7.59, @anthropic-ai/sdk 1.14, axios 1.21 with
 * its fetch adapter, Hono 4), against real node:http servers on 127.0.0.1.
 * Public entries only (src/index.ts, src/fallback, src/degradation,
 * src/testing, src/cloudflare); the recipes of examples/recipes are inlined
 * (they import the package by its built name). Backoffs and timeouts run on
 * a TestClock.
 *
 * Attacked: SSE streams through hedged chains, fallbacks and same-origin
 * redirects (chunk by chunk, past `timeout.attempt`/`total`, a caller's abort
 * closing the upstream that serves the body), bulkheads with open streams,
 * multipart uploads from the OpenAI SDK (FormData retried, above
 * `maxReplayBytes` or a streaming file sent once), degradation rewriting SDK
 * JSON bodies (alone, before a chain's `transform`, with a stale
 * `content-length` from axios or a `Request`), the SDK error classes around
 * CircuitOpenError / TimeoutError, `failureResponse` for retried timeouts in
 * the Hono route, `init` extensions (`dispatcher`, `priority`) reaching the
 * transport on every path, axios's own timeout during a backoff, a Hono
 * client hanging up mid-stream, a 503 whose body never ends.
 *
 * Defects found: none. Every probe below held, and is kept as a control.
 *
 * Questionable, not pinned (the docs are silent):
 * - the OpenAI SDK probes FormData support with `fetch("data:,")` through
 *   the layer before every first upload: `health().breakers` then lists a
 *   breaker keyed "" (a data: URL has no host) and a `request` event for
 *   `data:,` is emitted (since changed: such URLs go to fetch as they are,
 *   test/http/resilient-fetch.test.ts);
 * - `retry-after-ms` (sent by OpenAI/Azure, honoured by both Stainless SDKs)
 *   is ignored: a 429 carrying only `retry-after-ms: 20000` is retried after
 *   the computed backoff (~0.6 s with the defaults);
 * - `x-should-retry: false` (which both SDKs obey) is ignored: a 503 with it
 *   is retried by the layer;
 * - a `RetryExhaustedError` after refused connections says "fetch failed",
 *   not "connection refused" (the retry events name it; the error does not).
 */
import Anthropic from "@anthropic-ai/sdk";
import axios from "axios";
import OpenAI, { toFile, toStreamingFile } from "openai";
import { describe, expect, it } from "vitest";
import { createAnthropic } from "../../examples/recipes/anthropic.ts";
import { createApp } from "../../examples/recipes/hono-worker.ts";
import { createOpenAI } from "../../examples/recipes/openai.ts";
import { failureResponse } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { recordEvents, seededRandom, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { ask, chunk, completion, DONE, sendJson, sseHead } from "../helpers/openai-wire.ts";

const P = httpUpstream();
const S = httpUpstream();
serveDuringFile(P, S);

function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const resilience = createResilience({ clock, random: seededRandom(1), ...options });
  return { clock, resilience, recorder: recordEvents(resilience) };
}
const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
const openai = (resilience: Resilience, base = P.base) =>
  createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${base}/v1` });
function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}
/** A chain from P to S under /v1. */
const chainOf = (): ResilienceOptions => ({
  fallback: fallback([
    {
      name: "chat",
      endpoints: [
        { name: "p", url: `${P.base}/v1` },
        { name: "s", url: `${S.base}/v1` },
      ],
    },
  ]),
});
const fileObject = { id: "file-1", object: "file", bytes: 10, created_at: 1, filename: "a.jsonl", purpose: "batch" };

describe("SSE streams through chains, hedges and redirects (README: 'never buffers your streamed responses')", () => {
  it("hedged chain: the spare's stream wins, the hung primary is closed, the stream outlives both timeouts", async () => {
    P.on(() => {}); // never answers
    const more = gate();
    S.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("a"));
      void more.wait.then(() => hit.res.end(chunk("b") + DONE));
    });
    const { clock, resilience } = layer({
      retry: { idempotencyKey: true },
      timeout: { attempt: 5_000, total: 10_000 },
      fallback: fallback([
        {
          name: "chat",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const pending = openai(resilience).chat.completions.create({ ...ask, stream: true });
    const primary = await P.nth(1);
    await clock.advance(1_000); // the hedge starts
    const stream = await pending;
    await primary.closed; // docs/fallback.md: "the other is aborted (its upstream sees the connection closed)"
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("a");
    await clock.advance(60_000); // far past timeout.attempt and timeout.total
    more.open();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("b");
    // the same Idempotency-Key went to both (allowlisted across origins)
    expect(S.hits[0]?.headers["idempotency-key"]).toBe(primary.headers["idempotency-key"]);
    expect(clock.pending()).toBe(0);
  });

  it("fallback after a 503: the caller's abort mid-stream closes the spare's connection", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    S.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("a"));
    });
    const { clock, resilience } = layer({ timeout: { attempt: 5_000, total: 10_000 }, ...chainOf() });
    const controller = new AbortController();
    const stream = await clock.run(
      openai(resilience).chat.completions.create({ ...ask, stream: true }, { signal: controller.signal }),
    );
    await stream[Symbol.asyncIterator]().next();
    const spare = await S.nth(1);
    controller.abort();
    await spare.closed;
    expect(clock.pending()).toBe(0);
  });

  it("raw fetch: the caller's abort after headers errors the body and closes the upstream", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write("data: x\n\n");
    });
    const { resilience } = layer({ timeout: { attempt: 5_000, total: 10_000 } });
    const controller = new AbortController();
    const res = await resilience.fetch(`${P.base}/v1/x`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort(new Error("mine"));
    expect(await caught(reader.read())).toBeInstanceOf(Error);
    await (await P.nth(1)).closed;
  });

  it("a same-origin 307 followed by the layer: the stream flows past both timeouts, abort closes the last hop", async () => {
    const more = gate();
    P.on((hit) => {
      if (hit.path.startsWith("/v1/")) return hit.res.writeHead(307, { location: `/v2${hit.path.slice(3)}` }).end();
      sseHead(hit);
      hit.res.write(chunk("r1"));
      void more.wait.then(() => hit.res.write(chunk("r2")));
    });
    const { clock, resilience } = layer({ timeout: { attempt: 1_000, total: 2_000 } });
    const controller = new AbortController();
    const stream = await openai(resilience).chat.completions.create(
      { ...ask, stream: true },
      { signal: controller.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("r1");
    await clock.advance(10_000);
    more.open();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("r2");
    const hop = await P.nth(2);
    expect(JSON.parse(hop.body).stream).toBe(true); // 307 replays the body
    controller.abort();
    await hop.closed;
    expect(clock.pending()).toBe(0);
  });

  // docs/breakers.md: "a slot is held until response headers arrive (a streamed body does not hold it)"
  it("bulkhead maxConcurrent 1: an open stream does not block the next call", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("a"));
      if (hit.n === 2) hit.res.end(DONE);
    });
    const { resilience } = layer({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const client = openai(resilience);
    const first = await client.chat.completions.create({ ...ask, stream: true });
    const second = await client.chat.completions.create({ ...ask, stream: true });
    const got: string[] = [];
    for await (const c of second) got.push(c.choices[0]?.delta.content ?? "");
    expect(got).toEqual(["a"]);
    first.controller.abort();
    await (await P.nth(1)).closed;
  });

  it("a 503 whose SSE body never ends is retried past at once (the drain does not hold the retry)", async () => {
    P.on((hit) => {
      if (hit.n === 1) {
        hit.res.writeHead(503, { "content-type": "text/event-stream" }).flushHeaders();
        hit.res.write("data: err\n\n");
        return;
      }
      sendJson(hit, 200, completion("ok"));
    });
    const { clock, resilience } = layer();
    const out = await clock.run(openai(resilience).chat.completions.create(ask));
    expect(out.choices[0]?.message.content).toBe("ok");
    expect(P.hits).toHaveLength(2);
  });

  it("Hono route: the upstream's SSE passes through; the Worker's client hanging up mid-stream closes it", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write("data: one\n\n");
    });
    const clock = new TestClock(Date.now());
    const app = createApp(() => createResilience({ clock, timeout: { attempt: 30_000, total: 90_000 } }));
    const res = await app.fetch(new Request("https://worker.example/generate", { method: "POST", body: "{}" }), {
      IMAGES_URL: P.base,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("one");
    await reader.cancel();
    await (await P.nth(1)).closed;
    expect(clock.pending()).toBe(0);
  });
});

describe("uploads through the OpenAI SDK (docs/retry.md#bodies)", () => {
  // docs/retry.md: "Strings, bytes, Blob, FormData and URLSearchParams bodies are re-sent as they are on each retry"
  it("files.create (FormData) after a 503: re-sent whole", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, fileObject)));
    const { clock, resilience } = layer();
    const file = await toFile(Buffer.from("hello-file-content"), "a.jsonl");
    const out = await clock.run(openai(resilience).files.create({ file, purpose: "batch" }));
    expect(out.id).toBe("file-1");
    expect(P.hits.map((h) => h.path)).toEqual(["/v1/files", "/v1/files"]);
    expect(P.hits.every((h) => h.body.includes("hello-file-content"))).toBe(true);
  });

  // docs/retry.md: "A ReadableStream body, or one larger than maxReplayBytes, is sent once on every path"
  it("files.create above maxReplayBytes: sent once, the 503 is the SDK's InternalServerError", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, fileObject)));
    const { clock, resilience } = layer({ maxReplayBytes: 100 });
    const file = await toFile(Buffer.from("x".repeat(500)), "a.jsonl");
    const error = await clock.run(caught(openai(resilience).files.create({ file, purpose: "batch" })));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(P.hits).toHaveLength(1);
  });

  it("toStreamingFile (a multipart ReadableStream): sent once, whole", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, fileObject)));
    const { clock, resilience } = layer();
    const data = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("streamed-content"));
        c.close();
      },
    });
    const file = toStreamingFile(data, "a.jsonl");
    const error = await clock.run(caught(openai(resilience).files.create({ file, purpose: "batch" })));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(P.hits).toHaveLength(1);
    expect(P.hits[0]?.body).toContain("streamed-content");
  });
});

describe("degradation rewriting what clients send (docs/degradation.md)", () => {
  const models = degradation({ models: [["gpt-big", "gpt-mid", "gpt-small"]], levelHeader: "x-level" });

  it("an OpenAI streaming body: model moved down one rung, every other field kept, level header sent", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.end(chunk("ok") + DONE);
    });
    const { resilience } = layer({ degradation: models });
    resilience.degradation?.setLevel("medium");
    const { data: stream, response } = await openai(resilience)
      .chat.completions.create({ ...ask, model: "gpt-big", stream: true })
      .withResponse();
    for await (const _ of stream) {
      // drain
    }
    const sent = JSON.parse(P.hits[0]?.body ?? "{}");
    expect(sent).toEqual({ ...ask, model: "gpt-mid", stream: true });
    expect(P.hits[0]?.headers["x-level"]).toBe("medium");
    expect(P.hits[0]?.headers["content-type"]).toBe("application/json");
    expect(getResilienceInfo(response)?.degradationLevel).toBe("medium");
  });

  // docs/degradation.md: "rewritten once ... before the chain: every endpoint gets that request, and an endpoint's transform reshapes it"
  it("before a chain: the spare's transform sees the degraded model, the primary got it too", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    S.on((hit) => sendJson(hit, 200, completion("spare")));
    const seen: unknown[] = [];
    const { clock, resilience } = layer({
      degradation: degradation({ models: [["gpt-big", "gpt-mid", "gpt-small"]] }),
      fallback: fallback([
        {
          name: "chat",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            {
              name: "s",
              url: `${S.base}/v1`,
              transform: (req) => {
                seen.push(req.body?.model);
                return { ...req, body: { ...req.body, model: `spare-${String(req.body?.model)}` } };
              },
            },
          ],
        },
      ]),
    });
    resilience.degradation?.setLevel("medium");
    const out = await clock.run(openai(resilience).chat.completions.create({ ...ask, model: "gpt-big" }));
    expect(out.choices[0]?.message.content).toBe("spare");
    expect(seen).toEqual(["gpt-mid"]);
    expect(JSON.parse(P.hits[0]?.body ?? "{}").model).toBe("gpt-mid");
    expect(JSON.parse(S.hits[0]?.body ?? "{}").model).toBe("spare-gpt-mid");
  });

  // docs/degradation.md: "a content-length that came with the old body ... is dropped for fetch to count the new one"
  it("axios (fetch adapter, a Request input) with a stale content-length: the shorter body arrives whole", async () => {
    P.on((hit) => sendJson(hit, 200, { got: hit.body }));
    const { clock, resilience } = layer({ degradation: degradation({ models: [["premium-model-xl", "std"]] }) });
    resilience.degradation?.setLevel("medium");
    const client = axios.create({ baseURL: P.base, adapter: "fetch", env: { fetch: resilience.fetch } });
    const body = { model: "premium-model-xl", steps: 50, prompt: "x" };
    const res = await clock.run(
      client.post("/v1/gen", body, { headers: { "content-length": String(JSON.stringify(body).length) } }),
    );
    expect(JSON.parse(res.data.got)).toEqual({ model: "std", steps: 30, prompt: "x" });
    expect(P.hits[0]?.headers["content-length"]).toBe(String(P.hits[0]?.bytes.length));
  });
});

describe("errors as the clients see them (docs/recipes.md table)", () => {
  it("Anthropic: an open breaker is APIConnectionError whose cause is CircuitOpenError; nothing sent", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer({ retry: false, breaker: { failureThreshold: 1 } });
    const client = createAnthropic(resilience.fetch, { apiKey: "k", baseURL: P.base });
    const claudeAsk = { model: "c", max_tokens: 5, messages: [{ role: "user" as const, content: "hi" }] };
    await clock.run(caught(client.messages.create(claudeAsk)));
    const error = await clock.run(caught(client.messages.create(claudeAsk)));
    expect(error).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(isCircuitOpenError((error as Error).cause)).toBe(true);
    expect(P.hits).toHaveLength(1);
  });

  it("OpenAI: a hung attempt is APIConnectionTimeoutError whose cause is the layer's TimeoutError (attempt)", async () => {
    P.on(() => {});
    const { clock, resilience } = layer({ timeout: { attempt: 1_000 } });
    const pending = caught(openai(resilience).chat.completions.create(ask));
    await P.nth(1);
    await clock.advance(1_000);
    const error = await pending;
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const cause = (error as Error).cause;
    expect(isTimeoutError(cause) && cause.phase).toBe("attempt");
    expect(P.hits).toHaveLength(1);
  });

  it("a GET whose every attempt hung rejects with TimeoutError, which failureResponse answers 504", async () => {
    P.on(() => {});
    const { clock, resilience } = layer({ timeout: { attempt: 1_000 } });
    const error = await clock.run(caught(resilience.fetch(`${P.base}/v1/x`)));
    expect(isTimeoutError(error)).toBe(true);
    expect(P.hits).toHaveLength(3);
    expect(failureResponse(error).status).toBe(504);
  });

  // docs/recipes.md (Hono): "timeout → 504"
  it("Hono route with idempotencyKey: a POST hung on every attempt is retried 3 times, then answered 504", async () => {
    P.on(() => {});
    const clock = new TestClock(Date.now());
    const app = createApp(() =>
      createResilience({ clock, retry: { idempotencyKey: true }, timeout: { attempt: 30_000, total: 90_000 } }),
    );
    const res = await clock.run(
      Promise.resolve(
        app.fetch(new Request("https://w.example/generate", { method: "POST", body: "{}" }), { IMAGES_URL: P.base }),
      ),
    );
    expect(res.status).toBe(504);
    expect(P.hits).toHaveLength(3);
  });

  // docs/recipes.md: axios's "timeout is the caller's deadline"; point 2: "the layer sees the caller's abort and stops"
  it("axios's own timeout during the layer's backoff: ETIMEDOUT, nothing more sent, no timer left", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer();
    const client = axios.create({ baseURL: P.base, adapter: "fetch", env: { fetch: resilience.fetch }, timeout: 50 });
    const error = await caught(client.get("/v1/x")); // 50 ms of real time: the backoff is on the TestClock
    expect(axios.isAxiosError(error) && error.code).toBe("ETIMEDOUT");
    await clock.advance(60_000);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("init fields on every path (docs/retry.md#bodies)", () => {
  // docs/retry.md: "Every field of the caller's init (... runtime extensions such as cf or dispatcher) reaches the transport on every path"
  it("the SDK's fetchOptions (dispatcher, priority) reach the transport through degradation, a redirect, a hedge and a transform", async () => {
    P.on((hit) => {
      if (hit.path.startsWith("/v1/")) return hit.res.writeHead(307, { location: `/v2${hit.path.slice(3)}` }).end();
      sendJson(hit, 503, {});
    });
    S.on((hit) => sendJson(hit, 200, completion("spare")));
    const seen: Array<{ dispatcher: unknown; priority: unknown }> = [];
    const transport: Fetch = (input, init) => {
      const { dispatcher, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      seen.push({ dispatcher, priority: init?.priority });
      return fetch(input, rest);
    };
    const { clock, resilience } = layer({
      fetch: transport,
      retry: { idempotencyKey: true },
      degradation: degradation({ models: [["gpt-big", "gpt-mid"]] }),
      fallback: fallback([
        {
          name: "chat",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1`, transform: (req) => ({ ...req, body: { ...req.body, x: 1 } }) },
          ],
        },
      ]),
    });
    resilience.degradation?.setLevel("medium");
    const client = new OpenAI({
      apiKey: "k",
      baseURL: `${P.base}/v1`,
      fetch: resilience.fetch,
      maxRetries: 0,
      fetchOptions: { dispatcher: "MARK", priority: "high" } as unknown as NonNullable<
        ConstructorParameters<typeof OpenAI>[0]
      >["fetchOptions"],
    });
    const out = await clock.run(client.chat.completions.create({ ...ask, model: "gpt-big" }));
    expect(out.choices[0]?.message.content).toBe("spare");
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.every((s) => s.dispatcher === "MARK" && s.priority === "high")).toBe(true);
    expect(JSON.parse(S.hits[0]?.body ?? "{}")).toMatchObject({ model: "gpt-mid", x: 1 });
  });
});
