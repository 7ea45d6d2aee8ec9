/**
 * Outside-in checks of the library THROUGH the clients users plug it into:
 * the openai and @anthropic-ai/sdk SDKs (streaming, their own retries,
 * idempotency, errors), the ky client (`createClient`), axios (fetch
 * adapter), ofetch and the Hono Worker recipe. Public API and the recipes in
 * examples/recipes only, against real `node:http` servers on 127.0.0.1.
 * Backoffs and timeouts run on a `TestClock`: nothing sleeps for real.
 * The three defects it found are fixed or their docs corrected (see the
 * comment above each of their tests).
 */
import Anthropic from "@anthropic-ai/sdk";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isRetryExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { createClient } from "@storycore/resilient-fetch/ky";
import { recordEvents, seededRandom, TestClock } from "@storycore/resilient-fetch/testing";
import axios, { AxiosError } from "axios";
import { HTTPError, SchemaValidationError } from "ky";
import { FetchError } from "ofetch";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { createAnthropic, overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { createAxios } from "../../examples/recipes/axios.ts";
import { createApp, type Env, layerOptions } from "../../examples/recipes/hono-worker.ts";
import { createKy } from "../../examples/recipes/ky.ts";
import { createOfetch } from "../../examples/recipes/ofetch.ts";
import { createOpenAI, resilienceCause } from "../../examples/recipes/openai.ts";
import { httpUpstream, refusedOrigin } from "../helpers/http-upstream.ts";
import { ask, chunk, completion, DONE, sendJson, sseHead } from "../helpers/openai-wire.ts";

// ---------------------------------------------------------------------------
// Real HTTP servers on 127.0.0.1 (test/helpers/http-upstream.ts).

const P = httpUpstream(); // the provider the caller addresses
const S = httpUpstream(); // a spare, another origin
let REFUSED = ""; // nothing listens there: connection refused

beforeAll(async () => {
  await Promise.all([P.start(), S.start()]);
  REFUSED = await refusedOrigin();
});
afterAll(() => {
  P.stop();
  S.stop();
});
beforeEach(() => {
  P.reset();
  S.reset();
});

/** A layer on a TestClock, its events recorded. */
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

// ---------------------------------------------------------------------------
// OpenAI / Anthropic payloads.

const message = (text: string) => ({
  id: "msg_1",
  type: "message",
  role: "assistant",
  model: "claude-test",
  content: [{ type: "text", text }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: 3, output_tokens: 1 },
});
const claudeAsk = { model: "claude-test", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };
const event = (type: string, data: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const claudeStart = () =>
  event("message_start", {
    message: { ...message(""), content: [], stop_reason: null, usage: { input_tokens: 3, output_tokens: 0 } },
  }) + event("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
const claudeDelta = (text: string) => event("content_block_delta", { index: 0, delta: { type: "text_delta", text } });
const claudeEnd = () =>
  event("content_block_stop", { index: 0 }) +
  event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 2 } }) +
  event("message_stop", {});

const openai = (resilience: { fetch: typeof fetch } & Parameters<typeof createOpenAI>[0]) =>
  createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${P.base}/v1` });

// ---------------------------------------------------------------------------

describe("streaming through the SDKs (README: 'never buffers your streamed responses')", () => {
  it("OpenAI stream: true: each SSE chunk reaches the SDK before the server sends the next", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("Hel"));
      void released.then(() => hit.res.end(chunk("lo") + DONE));
    });
    const { resilience } = layer({ timeout: { attempt: 5_000, total: 10_000 } });
    const stream = await openai(resilience).chat.completions.create({ ...ask, stream: true });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next(); // would hang if the layer buffered the body
    expect(first.value?.choices[0]?.delta.content).toBe("Hel");
    release();
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.choices[0]?.delta.content ?? "");
    expect(rest).toEqual(["lo"]);
  });

  it("timeout.attempt and timeout.total bound the headers only: a stream open far past both completes", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("a"));
      void released.then(() => hit.res.end(chunk("b") + DONE));
    });
    const { clock, resilience } = layer({ timeout: { attempt: 1_000, total: 2_000 } });
    const stream = await openai(resilience).chat.completions.create({ ...ask, stream: true });
    expect(clock.pending()).toBe(0); // the call's timer is gone once headers arrived
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("a");
    await clock.advance(60_000);
    release();
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.choices[0]?.delta.content ?? "");
    expect(rest).toEqual(["b"]);
  });

  it("a stream that breaks midway is not retried: one request, the chunks seen once, the SDK throws", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("one"), () => setImmediate(() => hit.res.destroy()));
    });
    const { clock, resilience } = layer({ retry: { idempotencyKey: true }, timeout: { attempt: 5_000 } });
    const stream = await openai(resilience).chat.completions.create({ ...ask, stream: true });
    const seen: string[] = [];
    const error = await caught(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? "");
      })(),
    );
    expect(error).toBeInstanceOf(Error);
    expect(seen).toEqual(["one"]);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it("the SDK's abort ends the stream: the server sees the connection closed, no timer is left", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("x"));
    });
    const { clock, resilience } = layer({ timeout: { attempt: 5_000, total: 10_000 } });
    const stream = await openai(resilience).chat.completions.create({ ...ask, stream: true });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("x");
    const hit = await P.nth(1);
    stream.controller.abort();
    await hit.closed;
    // The iteration ends (done) or rejects with the abort: it never yields more.
    const after = await it.next().then(
      (r) => r.done,
      () => true,
    );
    expect(after).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("a caller's AbortSignal passed to the SDK cancels a stream the layer already returned", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("x"));
    });
    const { clock, resilience } = layer({ timeout: { attempt: 5_000, total: 10_000 } });
    const controller = new AbortController();
    const stream = await openai(resilience).chat.completions.create(
      { ...ask, stream: true },
      { signal: controller.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const hit = await P.nth(1);
    controller.abort();
    await hit.closed;
    expect(clock.pending()).toBe(0);
  });

  it("a 503 before the stream is retried by the layer; the stream that follows arrives once", async () => {
    P.on((hit) => {
      if (hit.n === 1) return sendJson(hit, 503, { error: { message: "overloaded" } });
      sseHead(hit);
      hit.res.end(chunk("A") + chunk("B") + DONE);
    });
    const { clock, resilience } = layer();
    const stream = await clock.run(openai(resilience).chat.completions.create({ ...ask, stream: true }));
    const seen: string[] = [];
    for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? "");
    expect(seen).toEqual(["A", "B"]);
    expect(P.hits).toHaveLength(2);
    expect(P.hits.map((h) => h.headers["x-stainless-retry-count"])).toEqual(["0", "0"]);
  });

  it("through a fallback chain: the spare's SSE stream reaches the SDK chunk by chunk", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => sendJson(hit, 503, {}));
    S.on((hit) => {
      sseHead(hit);
      hit.res.write(chunk("sp"));
      void released.then(() => hit.res.end(chunk("are") + DONE));
    });
    const { clock, resilience } = layer({
      fallback: fallback([
        {
          name: "chat",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1`, headers: { authorization: "Bearer sk-spare" } },
          ],
        },
      ]),
    });
    const stream = await clock.run(openai(resilience).chat.completions.create({ ...ask, stream: true }));
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe("sp");
    release();
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.choices[0]?.delta.content ?? "");
    expect(rest).toEqual(["are"]);
    expect(S.hits[0]?.headers.authorization).toBe("Bearer sk-spare");
  });

  it("Anthropic messages.stream through overloadedAs503: a 529 retried, then events arrive one by one", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      if (hit.n === 1) return sendJson(hit, 529, { type: "error", error: { type: "overloaded_error", message: "x" } });
      sseHead(hit);
      hit.res.write(claudeStart() + claudeDelta("Hel"));
      void released.then(() => hit.res.end(claudeDelta("lo") + claudeEnd()));
    });
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, random: seededRandom(1) });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: P.base });
    const stream = client.messages.stream(claudeAsk);
    const firstText = new Promise<string>((resolve) => stream.on("text", (t) => resolve(t)));
    expect(await clock.run(firstText)).toBe("Hel"); // before the server sent the rest
    release();
    const final = await stream.finalMessage();
    expect(final.content[0]?.type === "text" && final.content[0].text).toBe("Hello");
    expect(P.hits).toHaveLength(2);
  });

  it("Anthropic stream dropped midway (with idempotencyKey on) is not re-sent", async () => {
    P.on((hit) => {
      sseHead(hit);
      hit.res.write(claudeStart() + claudeDelta("par"), () => setImmediate(() => hit.res.destroy()));
    });
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, retry: { idempotencyKey: true } });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: P.base });
    const stream = await client.messages.create({ ...claudeAsk, stream: true });
    const texts: string[] = [];
    const error = await caught(
      (async () => {
        for await (const e of stream)
          if (e.type === "content_block_delta" && e.delta.type === "text_delta") texts.push(e.delta.text);
      })(),
    );
    expect(error).toBeInstanceOf(Error);
    expect(texts).toEqual(["par"]);
    expect(P.hits).toHaveLength(1);
  });
});

describe("SDK retries stacked on the layer's (docs/recipes.md point 1)", () => {
  it("openai left at its default maxRetries: a 503 API gets 3 × 3 = 9 requests, as the recipe warns", async () => {
    // retry-after-ms: 0 keeps the SDK's own sleep at 0 ms (no real waiting); the layer ignores it.
    P.on((hit) => sendJson(hit, 503, { error: { message: "down" } }, { "retry-after-ms": "0" }));
    const { clock, resilience, recorder } = layer({ breaker: false });
    const client = new OpenAI({ apiKey: "sk", baseURL: `${P.base}/v1`, fetch: resilience.fetch });
    const error = await clock.run(caught(client.chat.completions.create(ask)));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(P.hits).toHaveLength(9);
    expect(recorder.of("request")).toHaveLength(3);
    expect(P.hits.map((h) => h.headers["x-stainless-retry-count"])).toEqual([
      "0",
      "0",
      "0",
      "1",
      "1",
      "1",
      "2",
      "2",
      "2",
    ]);
  });

  it("anthropic left at its default maxRetries on sdkFetch: a 529 API gets 9 requests", async () => {
    P.on((hit) =>
      sendJson(
        hit,
        529,
        { type: "error", error: { type: "overloaded_error", message: "x" } },
        { "retry-after-ms": "1" },
      ),
    );
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, random: seededRandom(1), breaker: false });
    const client = new Anthropic({ apiKey: "sk-ant", baseURL: P.base, fetch: sdkFetch });
    const error = await clock.run(caught(client.messages.create(claudeAsk)));
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(P.hits).toHaveLength(9);
  });

  it("the recipe's configuration: a 429 with Retry-After is waited out by the layer alone, the SDK sends once", async () => {
    P.on((hit) =>
      hit.n === 1
        ? sendJson(hit, 429, { error: { message: "slow" } }, { "retry-after": "7" })
        : sendJson(hit, 200, completion("ok")),
    );
    const { clock, resilience, recorder } = layer();
    const answer = await clock.run(openai(resilience).chat.completions.create(ask));
    expect(answer.choices[0]?.message.content).toBe("ok");
    expect(P.hits).toHaveLength(2);
    expect(clock.now()).toBe(7_000); // exactly the header, never jittered
    expect(recorder.of("retry")[0]).toMatchObject({ delay: 7_000, retryAfter: true });
    expect(P.hits.map((h) => h.headers["x-stainless-retry-count"])).toEqual(["0", "0"]);
  });
});

describe("idempotency through the SDKs (docs/retry.md#idempotency)", () => {
  it("neither Stainless SDK sends an Idempotency-Key of its own: a 500 on chat.completions / messages is not retried", async () => {
    P.on((hit) => sendJson(hit, 500, { error: { message: "boom" } }));
    const { clock, resilience } = layer();
    const e1 = await clock.run(caught(openai(resilience).chat.completions.create(ask)));
    expect(e1).toBeInstanceOf(OpenAI.InternalServerError);
    const claude = createAnthropic(resilience.fetch, { apiKey: "sk-ant", baseURL: P.base });
    const e2 = await clock.run(caught(claude.messages.create(claudeAsk)));
    expect(e2).toBeInstanceOf(Anthropic.InternalServerError);
    expect(P.hits).toHaveLength(2);
    expect(P.hits.every((h) => h.headers["idempotency-key"] === undefined)).toBe(true);
  });

  it("retry.idempotencyKey: true: a POST that gets 500s is retried, the same key on every attempt, a new key per call", async () => {
    P.on((hit) => sendJson(hit, 500, { error: { message: "boom" } }));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true }, breaker: false });
    const client = openai(resilience);
    await clock.run(caught(client.chat.completions.create(ask)));
    await clock.run(caught(client.chat.completions.create(ask)));
    const keys = P.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(6);
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    expect(new Set(keys.slice(3)).size).toBe(1);
    expect(keys[0]).not.toBe(keys[3]);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a key the caller gives through the SDK's request headers is kept on every retry, not replaced", async () => {
    P.on((hit) => (hit.n < 3 ? sendJson(hit, 500, {}) : sendJson(hit, 200, completion("ok"))));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const answer = await clock.run(
      openai(resilience).chat.completions.create(ask, { headers: { "Idempotency-Key": "mine-1" } }),
    );
    expect(answer.choices[0]?.message.content).toBe("ok");
    expect(P.hits.map((h) => h.headers["idempotency-key"])).toEqual(["mine-1", "mine-1", "mine-1"]);
    expect(new Set(P.hits.map((h) => h.body)).size).toBe(1);
  });

  it("a POST whose connection was reset is not re-sent without a key, and re-sent with one", async () => {
    P.on((hit) => (hit.n === 1 ? hit.req.socket.destroy() : sendJson(hit, 200, completion("ok"))));
    const bare = layer();
    const error = await bare.clock.run(caught(openai(bare.resilience).chat.completions.create(ask)));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(isRetryExhaustedError((error as Error).cause)).toBe(true);
    expect(P.hits).toHaveLength(1);

    P.reset();
    P.on((hit) => (hit.n === 1 ? hit.req.socket.destroy() : sendJson(hit, 200, completion("ok"))));
    const keyed = layer({ retry: { idempotencyKey: true } });
    const answer = await keyed.clock.run(openai(keyed.resilience).chat.completions.create(ask));
    expect(answer.choices[0]?.message.content).toBe("ok");
    expect(P.hits).toHaveLength(2);
    expect(P.hits[1]?.headers["idempotency-key"]).toBe(P.hits[0]?.headers["idempotency-key"]);
  });
});

describe("errors as the SDK sees them (docs/recipes.md point 3)", () => {
  it("a Retry-After above maxRetryAfter: RateLimitError at once, and the next call sees the host held open", async () => {
    P.on((hit) => sendJson(hit, 429, { error: { message: "quota" } }, { "retry-after": "3600" }));
    const { clock, resilience } = layer();
    const client = openai(resilience);
    const first = await clock.run(caught(client.chat.completions.create(ask)));
    expect(first).toBeInstanceOf(OpenAI.RateLimitError);
    expect((first as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
    expect(clock.now()).toBe(0); // not slept through
    const second = await clock.run(caught(client.chat.completions.create(ask)));
    expect(second).toBeInstanceOf(OpenAI.APIConnectionError);
    const cause = resilienceCause(second);
    expect(isCircuitOpenError(cause)).toBe(true);
    expect((cause as unknown as { retryAt: number }).retryAt).toBe(3_600_000);
    expect(P.hits).toHaveLength(1);
  });

  it("connection refused: the POST is retried (never reached the server); APIConnectionError.cause is RetryExhaustedError", async () => {
    const { clock, resilience } = layer();
    const client = createOpenAI(resilience, { apiKey: "sk", baseURL: `${REFUSED}/v1` });
    const error = await clock.run(caught(client.chat.completions.create(ask)));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(error).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const cause = resilienceCause(error);
    expect(isRetryExhaustedError(cause)).toBe(true);
    expect((cause as unknown as { attempts: number }).attempts).toBe(3);
  });

  it("a chain where no endpoint answers: APIConnectionError.cause is FallbackExhaustedError", async () => {
    const { clock, resilience } = layer({
      fallback: fallback([
        {
          name: "chat",
          endpoints: [
            { name: "a", url: `${REFUSED}/v1` },
            { name: "b", url: `${REFUSED}/v2` },
          ],
        },
      ]),
      breaker: false,
    });
    const client = createOpenAI(resilience, { apiKey: "sk", baseURL: `${REFUSED}/v1` });
    const error = await clock.run(caught(client.chat.completions.create(ask)));
    expect(isFallbackExhaustedError(resilienceCause(error))).toBe(true);
  });

  it("timeout.total passing: APIConnectionTimeoutError whose cause is the layer's TimeoutError (phase total)", async () => {
    P.on(() => {}); // hangs
    const { clock, resilience } = layer({ timeout: { total: 4_000 } });
    const call = caught(openai(resilience).chat.completions.create(ask));
    await P.nth(1);
    await clock.advance(4_000);
    const error = await call;
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(resilienceCause(error)).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(clock.pending()).toBe(0);
  });

  // Was a doc defect, fixed in the docs: the recipe said a timeout's APIConnectionTimeoutError carries the
  // layer's error as cause; @anthropic-ai/sdk 1.14 throws it without one. The recipe now says so; this pins it.
  it("Anthropic: a layer timeout reaches you as APIConnectionTimeoutError without a cause, as the recipe now says", async () => {
    P.on(() => {});
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, timeout: { attempt: 5_000 } });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: P.base });
    const call = caught(client.messages.create(claudeAsk));
    await P.nth(1);
    await clock.advance(5_000);
    const error = await call;
    expect(error).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect(P.hits).toHaveLength(1);
    expect((error as Error).cause).toBeUndefined();
  });

  it("Anthropic: an attempt timeout is APIConnectionTimeoutError, the hung POST sent once", async () => {
    P.on(() => {});
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, timeout: { attempt: 5_000 } });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: P.base });
    const call = caught(client.messages.create(claudeAsk));
    await P.nth(1);
    await clock.advance(5_000);
    expect(await call).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it("getResilienceInfo works on the SDK's raw response (withResponse): attempts and endpoint", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, completion("ok"))));
    const { clock, resilience } = layer();
    const { data, response } = await clock.run(openai(resilience).chat.completions.create(ask).withResponse());
    expect(data.choices[0]?.message.content).toBe("ok");
    expect(getResilienceInfo(response)).toMatchObject({ attempts: 2, fromFallback: false });
  });

  it("Anthropic 529 with Retry-After through overloadedAs503: the layer waits exactly the header, then succeeds", async () => {
    P.on((hit) =>
      hit.n === 1
        ? sendJson(
            hit,
            529,
            { type: "error", error: { type: "overloaded_error", message: "x" } },
            { "retry-after": "5" },
          )
        : sendJson(hit, 200, message("ok")),
    );
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock, random: seededRandom(1) });
    const answer = await clock.run(
      createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: P.base }).messages.create(claudeAsk),
    );
    expect(answer.content[0]?.type === "text" && answer.content[0].text).toBe("ok");
    expect(clock.now()).toBe(5_000);
    expect(P.hits).toHaveLength(2);
  });

  it("the caller's abort during the layer's backoff: APIUserAbortError at once, no retry sent, no timer left", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer({ timeout: { total: 60_000 } });
    const controller = new AbortController();
    const call = caught(openai(resilience).chat.completions.create(ask, { signal: controller.signal }));
    await P.nth(1);
    await clock.waitForTimers(2); // the deadline and the backoff
    controller.abort();
    const error = await call;
    expect(error).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(clock.pending()).toBe(0);
    expect(P.hits).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------

describe("ky through createClient (src/ky, examples/recipes/ky.ts)", () => {
  it("a beforeRequest hook's header is on every attempt of the layer; afterResponse runs once, on the final answer", async () => {
    P.on((hit) => (hit.n < 3 ? sendJson(hit, 503, {}) : sendJson(hit, 200, { id: "1" })));
    const { clock, resilience } = layer();
    const statuses: number[] = [];
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      hooks: {
        beforeRequest: [({ request }) => request.headers.set("x-trace", "t-1")],
        afterResponse: [({ response }) => void statuses.push(response.status)],
      },
    });
    expect(await clock.run(api.get("jobs/1").json())).toEqual({ id: "1" });
    expect(P.hits.map((h) => h.headers["x-trace"])).toEqual(["t-1", "t-1", "t-1"]);
    expect(statuses).toEqual([200]);
  });

  it("a POST json body (ky sends a Request) is replayed byte for byte after a 503", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 201, { id: "j" })));
    const { clock, resilience } = layer();
    const api = createKy(resilience, `${P.base}/v1`);
    expect(await clock.run(api.post("jobs", { json: { prompt: "a cat", n: 2 ** 53 + 1 } }).json())).toEqual({
      id: "j",
    });
    expect(P.hits.map((h) => h.body)).toEqual([
      JSON.stringify({ prompt: "a cat", n: 2 ** 53 + 1 }),
      JSON.stringify({ prompt: "a cat", n: 2 ** 53 + 1 }),
    ]);
  });

  it("throwHttpErrors: false hands back the layer's final 503 with its body, after exactly 3 attempts", async () => {
    P.on((hit) => sendJson(hit, 503, { error: "down" }));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience, throwHttpErrors: false });
    const res = await clock.run(api.get("jobs/1"));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "down" });
    expect(P.hits).toHaveLength(3);
  });

  it("the layer's RetryExhaustedError reaches the ky caller unwrapped (not ky's NetworkError)", async () => {
    const { clock, resilience } = layer();
    const api = createKy(resilience, `${REFUSED}/v1`);
    const error = await clock.run(caught(api.get("jobs/1")));
    expect(isRetryExhaustedError(error)).toBe(true);
  });

  it("an abort through ky's signal during a backoff rejects with the reason; nothing more is sent, no timer left", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer();
    const api = createKy(resilience, `${P.base}/v1`);
    const controller = new AbortController();
    const call = caught(api.get("jobs/1", { signal: controller.signal }));
    await P.nth(1);
    await clock.waitForTimers(1);
    const reason = new Error("user left");
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(clock.pending()).toBe(0);
    expect(P.hits).toHaveLength(1);
  });

  it("prefix + searchParams through a chain: the spare gets the rebased path and the query", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    S.on((hit) => sendJson(hit, 200, { from: "spare", path: hit.path }));
    const { clock, resilience } = layer({
      fallback: fallback([
        {
          name: "api",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v2` },
          ],
        },
      ]),
    });
    const api = createKy(resilience, `${P.base}/v1`);
    const body = await clock.run(api.get("jobs/7", { searchParams: { seed: 3, q: "a b" } }).json());
    expect(body).toEqual({ from: "spare", path: "/v2/jobs/7?seed=3&q=a+b" });
  });

  it(".json(zod schema): a 2xx that does not match is ky's SchemaValidationError, sent once", async () => {
    P.on((hit) => sendJson(hit, 200, { id: 7 }));
    const { clock, resilience } = layer();
    const api = createKy(resilience, `${P.base}/v1`);
    const error = await clock.run(caught(api.get("jobs/1").json(z.object({ id: z.string() }))));
    expect(error).toBeInstanceOf(SchemaValidationError);
    expect(P.hits).toHaveLength(1);
  });

  it("ky's own timeout aborts the whole call, retries included: the layer stops, no timer left", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer();
    // ky's timer is real; 30 ms of real time, while the layer waits its (test-clock) backoff.
    const api = createClient({ prefix: `${P.base}/v1`, resilience, timeout: 30 });
    const error = await caught(api.get("jobs/1"));
    expect((error as Error).name).toBe("TimeoutError");
    expect(isTimeoutError(error)).toBe(false); // ky's own, not the layer's
    expect(clock.pending()).toBe(0);
    expect(P.hits).toHaveLength(1);
  });

  it("a final 500 on a POST is ky's HTTPError with the status, not retried", async () => {
    P.on((hit) => sendJson(hit, 500, { error: "boom" }));
    const { clock, resilience } = layer();
    const error = await clock.run(caught(createKy(resilience, `${P.base}/v1`).post("jobs", { json: {} })));
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(500);
    expect(P.hits).toHaveLength(1);
  });
});

describe("axios (fetch adapter) and ofetch on the layer", () => {
  it("axios: a POST's JSON body is replayed after a 503; the server sees the same body twice", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, { ok: true })));
    const { clock, resilience } = layer();
    const res = await clock.run(createAxios(resilience, `${P.base}/v1/`).post("jobs", { prompt: "a cat" }));
    expect(res.data).toEqual({ ok: true });
    expect(P.hits.map((h) => h.body)).toEqual(['{"prompt":"a cat"}', '{"prompt":"a cat"}']);
  });

  it("axios: a POST answered 500 is not retried; AxiosError with response.status 500", async () => {
    P.on((hit) => sendJson(hit, 500, {}));
    const { clock, resilience } = layer();
    const error = await clock.run(caught(createAxios(resilience, `${P.base}/v1/`).post("jobs", { prompt: "x" })));
    expect(error).toBeInstanceOf(AxiosError);
    expect((error as AxiosError).response?.status).toBe(500);
    expect(P.hits).toHaveLength(1);
  });

  it("axios: RetryExhaustedError and the layer's TimeoutError are AxiosError.cause", async () => {
    const { clock, resilience } = layer();
    const refused = await clock.run(caught(createAxios(resilience, `${REFUSED}/v1/`).get("jobs/1")));
    expect(refused).toBeInstanceOf(AxiosError);
    expect(isRetryExhaustedError((refused as AxiosError).cause)).toBe(true);

    P.on(() => {});
    const t = layer({ timeout: { total: 3_000 } });
    const call = caught(createAxios(t.resilience, `${P.base}/v1/`).get("jobs/1"));
    await P.nth(1);
    await t.clock.advance(3_000);
    const timedOut = await call;
    expect(timedOut).toBeInstanceOf(AxiosError);
    expect(isTimeoutError((timedOut as AxiosError).cause)).toBe(true);
  });

  it("axios: an abort through its signal during a backoff is axios's CanceledError; nothing more is sent", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const { clock, resilience } = layer();
    const controller = new AbortController();
    const call = caught(createAxios(resilience, `${P.base}/v1/`).get("jobs/1", { signal: controller.signal }));
    await P.nth(1);
    await clock.waitForTimers(1);
    controller.abort();
    const error = await call;
    expect(axios.isCancel(error)).toBe(true);
    expect(clock.pending()).toBe(0);
    expect(P.hits).toHaveLength(1);
  });

  it("axios responseType 'stream': the first chunk is readable before the server ends the body", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/octet-stream" }).write("first|");
      void released.then(() => hit.res.end("second"));
    });
    const { resilience } = layer({ timeout: { attempt: 5_000 } });
    const res = await createAxios(resilience, `${P.base}/v1/`).get("video", { responseType: "stream" });
    const reader = (res.data as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("first|");
    release();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe("second");
  });

  it("ofetch: a POST body is replayed after a 503 and a 500 is not retried (FetchError.statusCode)", async () => {
    P.on((hit) => (hit.n === 1 ? sendJson(hit, 503, {}) : sendJson(hit, 200, { ok: hit.n })));
    const { clock, resilience } = layer();
    const $f = createOfetch(resilience, `${P.base}/v1/`);
    expect(await clock.run($f("jobs", { method: "POST", body: { prompt: "x" } }))).toEqual({ ok: 2 });
    expect(P.hits.map((h) => h.body)).toEqual(['{"prompt":"x"}', '{"prompt":"x"}']);
    P.reset();
    P.on((hit) => sendJson(hit, 500, {}));
    const error = await clock.run(caught($f("jobs", { method: "POST", body: { prompt: "x" } })));
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).statusCode).toBe(500);
    expect(P.hits).toHaveLength(1);
  });

  it("ofetch: the layer's RetryExhaustedError is FetchError.cause; with retry: 0 the layer is asked once", async () => {
    const { clock, resilience, recorder } = layer();
    const error = await clock.run(caught(createOfetch(resilience, `${REFUSED}/v1/`)("jobs/1")));
    expect(error).toBeInstanceOf(FetchError);
    expect(isRetryExhaustedError((error as FetchError).cause)).toBe(true);
    expect(recorder.of("request")).toHaveLength(1);
  });

  it("ofetch responseType 'stream': a chunked body arrives chunk by chunk", async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/octet-stream" }).write("one|");
      void released.then(() => hit.res.end("two"));
    });
    const { resilience } = layer({ timeout: { attempt: 5_000 } });
    const body = await createOfetch(resilience, `${P.base}/v1/`)("video", { responseType: "stream" });
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("one|");
    release();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe("two");
  });
});

// ---------------------------------------------------------------------------

describe("Hono Worker recipe (examples/recipes/hono-worker.ts): errors become the documented statuses", () => {
  const env = (): Env => ({ IMAGES_URL: P.base, IMAGES_KEY: "k-images", SPARE_URL: S.base, SPARE_KEY: "k-spare" });
  const generate = (app: ReturnType<typeof createApp>, e: Env, signal?: AbortSignal) =>
    Promise.resolve(
      app.fetch(
        new Request("https://worker.example/generate", {
          method: "POST",
          body: JSON.stringify({ prompt: "a cat" }),
          ...(signal ? { signal } : {}),
        }),
        e,
      ),
    );

  it("no fallback: a provider that hangs past timeout.attempt is answered 504", async () => {
    P.on(() => {});
    const clock = new TestClock(Date.now());
    const app = createApp(() => createResilience({ clock, timeout: { attempt: 30_000, total: 90_000 } }));
    const pending = generate(app, env());
    await P.nth(1);
    await clock.advance(30_000);
    const res = await pending;
    expect(res.status).toBe(504);
  });

  // Was a defect, fixed: the recipe mapped only the top-level error, and a chain's FallbackExhaustedError fell to 502.
  it("recipes.md/hono-worker.ts 'timeout → 504' holds through the recipe's own chain: a hung provider and spare answer 504", async () => {
    P.on(() => {});
    S.on(() => {});
    const clock = new TestClock(Date.now());
    const app = createApp((e) => createResilience({ ...layerOptions(e), clock }));
    const pending = generate(app, env());
    await P.nth(1);
    await clock.advance(30_000);
    const res = await pending;
    expect(res.status).toBe(504);
  });

  // Was a defect, fixed with the one above (failureResponse judges a chain by its endpoints' errors).
  it("recipes.md/hono-worker.ts 'open breaker → 503 + Retry-After' holds through the recipe's chain: both breakers open answer 503", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    S.on((hit) => sendJson(hit, 503, {}));
    const clock = new TestClock(Date.now());
    const app = createApp((e) =>
      createResilience({ ...layerOptions(e), timeout: {}, clock, breaker: { failureThreshold: 3 } }),
    );
    await clock.run(generate(app, env())); // 3 + 3 attempts: both breakers open
    const sent = P.hits.length + S.hits.length;
    const res = await clock.run(generate(app, env()));
    expect(P.hits.length + S.hits.length).toBe(sent); // nothing sent: both skipped
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
  });

  it("the recipe's chain: a provider refusing connections falls over to the spare with the spare's key", async () => {
    S.on((hit) => sendJson(hit, 200, { from: "spare" }));
    const clock = new TestClock(Date.now());
    const e: Env = { ...env(), IMAGES_URL: REFUSED };
    const app = createApp((x) => createResilience({ ...layerOptions(x), clock }));
    const res = await clock.run(generate(app, e));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ from: "spare" });
    expect(S.hits[0]?.headers.authorization).toBe("Bearer k-spare");
  });

  it("no fallback: connections refused after every retry are answered 502", async () => {
    const clock = new TestClock(Date.now());
    const app = createApp(() => createResilience({ clock }));
    const res = await clock.run(generate(app, { ...env(), IMAGES_URL: REFUSED }));
    expect(res.status).toBe(502);
  });

  it("the Worker's client hanging up during a backoff stops the retries", async () => {
    P.on((hit) => sendJson(hit, 503, {}));
    const clock = new TestClock(Date.now());
    const app = createApp(() => createResilience({ clock }));
    const controller = new AbortController();
    const pending = caught(generate(app, env(), controller.signal));
    await P.nth(1);
    await clock.waitForTimers(1);
    controller.abort();
    await pending;
    await clock.advance(60_000);
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});
