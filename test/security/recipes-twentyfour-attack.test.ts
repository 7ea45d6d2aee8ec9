/**
 * Outside-in attack on docs/recipes.md, every paragraph, as a user copying it
 * with the real clients. Docs: docs/recipes.md (the three points, the table,
 * "OpenAI and Azure OpenAI", "Anthropic", "Replicate", "Hono in a Worker",
 * "axios, ofetch, ky"), the JSDoc of examples/recipes/*.ts.
 * How: the recipes in examples/recipes (createOpenAI + resilienceCause,
 * overloadedAs503 + createAnthropic, createReplicate/replicateFetch,
 * createApp from hono-worker.ts) and a bare ofetch, on this checkout's
 * sources (the package name is mocked to ../../src), against fake APIs on
 * 127.0.0.1 (test/recipes/harness.ts); backoffs and timeouts on a TestClock.
 * Paths: plain call, fallback chain (a hung primary then a refused spare,
 * with `retry.idempotencyKey`), hedge, degradation rewriting the model in the
 * SDK's JSON body, the caller's AbortSignal, `timeout.total`, an open breaker,
 * the Worker route passing a final 503 through.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: 1 by making the table exact (the SDK reads any error whose text says "timeout"
 * as one, and drops its cause), 2 in the recipe, which drops every hop-by-hop header now):
 * 1. docs/recipes.md table, `@anthropic-ai/sdk` row: "the layer's error is
 *    `APIConnectionError.cause` (a timeout: `APIConnectionTimeoutError`,
 *    without a `cause`)". Observed: a chain whose primary timed out and whose
 *    spare refused the connection (`FallbackExhaustedError`, last error a
 *    connection-refused `TypeError`; `failureResponse` itself answers it 502, not 504)
 *    reaches the Anthropic caller as `APIConnectionTimeoutError` with
 *    `cause === undefined`: the SDK (1.14) calls any error whose text says
 *    "timeout" a timeout, so the layer's error is lost though it is no timeout.
 * 2. docs/recipes.md "Hono in a Worker": "(status, body and headers, its
 *    `Retry-After` with them; only `content-encoding`, `content-length` and
 *    the hop-by-hop headers are left to the runtime, since fetch has decoded
 *    the body)". Observed: the route drops only `transfer-encoding` and
 *    `connection`; the upstream's `keep-alive: timeout=5` (node's default),
 *    `upgrade: h2c` and a header its `connection` names (`x-hop`) reach the
 *    Worker's client (the library's own `resilientProxy` drops all three).
 *
 * Held (plain `it`):
 * - `resilienceCause(error)` (OpenAI): undefined for a status error and the
 *   caller's abort; the `CircuitOpenError` of an open breaker (nothing sent);
 *   the `FallbackExhaustedError` of the mixed chain above.
 * - sdkFetch through a hedged chain with degradation: the spare wins with its
 *   own `x-api-key` (the caller's `authorization` not carried), both endpoints got the degraded model.
 * - replicateFetch through a chain under `timeout.total`: `TimeoutError`
 *   unwrapped, the layer asked once (not 6 times), no timer left.
 * - ofetch's default retry repeats an open breaker's error: the layer is
 *   asked twice, `FetchError.cause` is `CircuitOpenError`.
 */
import { readFileSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import { ofetch } from "ofetch";
import OpenAI from "openai";
import { describe, expect, it, vi } from "vitest";
import { createAnthropic, overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { createApp, type Env } from "../../examples/recipes/hono-worker.ts";
import { createOpenAI, resilienceCause } from "../../examples/recipes/openai.ts";
import { createReplicate } from "../../examples/recipes/replicate.ts";
import { failureResponse } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { recordEvents, seededRandom, TestClock } from "../../src/testing/index.ts";
import { refusedOrigin } from "../helpers/http-upstream.ts";
import type { FakeApi } from "../recipes/fake-api.ts";
import { until, useFakeApis } from "../recipes/harness.ts";

// The recipes import the package by name: run them on this checkout's sources.
vi.mock("@storycore/resilient-fetch", () => import("../../src/index.ts"));
vi.mock("@storycore/resilient-fetch/cloudflare", () => import("../../src/cloudflare/index.ts"));
vi.mock("@storycore/resilient-fetch/fallback", () => import("../../src/fallback/index.ts"));
vi.mock("@storycore/resilient-fetch/testing", () => import("../../src/testing/index.ts"));

const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

const claudeAsk = { model: "claude-big", max_tokens: 16, messages: [{ role: "user" as const, content: "hi" }] };
const ask = { model: "gpt-test", messages: [{ role: "user" as const, content: "hi" }] };
const message = {
  id: "msg_1",
  type: "message",
  role: "assistant",
  model: "claude-small",
  content: [{ type: "text", text: "spare" }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: 1, output_tokens: 1 },
};

const api = useFakeApis();

/** A chain whose primary hangs past `timeout.attempt` and whose spare refuses connections; POSTs carry a key, so the chain moves on. */
async function hungThenRefused(clock: TestClock): Promise<{ hung: FakeApi; options: ResilienceOptions }> {
  const hung = await api(() => "hang");
  const refused = await refusedOrigin();
  return {
    hung,
    options: {
      clock,
      random: seededRandom(1),
      timeout: { attempt: 5_000 },
      retry: { maxAttempts: 1, idempotencyKey: true },
      breaker: false,
      fallback: fallback([
        {
          name: "chat",
          endpoints: [
            { name: "primary", url: `${hung.url}/v1` },
            { name: "spare", url: `${refused}/v1` },
          ],
        },
      ]),
    },
  };
}

describe("the layer's error behind the SDKs' errors (recipes.md point 3 and table)", () => {
  it("control: the mixed chain rejects with FallbackExhaustedError, which failureResponse calls 502 (no timeout), and OpenAI keeps it as cause", async () => {
    const clock = new TestClock();
    const { hung, options } = await hungThenRefused(clock);
    const resilience = createResilience(options);
    const direct = await clock.run(caught(resilience.fetch(`${hung.url}/v1/x`, { method: "POST", body: "{}" })));
    expect(isFallbackExhaustedError(direct)).toBe(true);
    const errors = (direct as { errors: Record<string, unknown> }).errors;
    expect(isTimeoutError(errors.primary)).toBe(true);
    expect(errors.spare).toBeInstanceOf(TypeError); // connection refused: no timeout
    expect(isTimeoutError((direct as Error).cause)).toBe(false);
    expect(failureResponse(direct).status).toBe(502);

    const client = createOpenAI(resilience, { apiKey: "sk", baseURL: `${hung.url}/v1` });
    const error = await clock.run(caught(client.chat.completions.create(ask)));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(isFallbackExhaustedError(resilienceCause(error))).toBe(true);
  });

  // docs/recipes.md table, @anthropic-ai/sdk row: "`APIConnectionError.cause` (a timeout: `APIConnectionTimeoutError`, without a `cause`)"
  it('Anthropic: "an error whose text says "timeout" or "timed out" (a chain\'s with one endpoint timed out too): `APIConnectionTimeoutError`, without a `cause`"', async () => {
    const table = readFileSync(new URL("../../docs/recipes.md", import.meta.url), "utf8");
    expect(table).toContain(
      'an error whose text says "timeout" or "timed out" (a chain\'s with one endpoint timed out too): `APIConnectionTimeoutError`, without a `cause`',
    );
    const clock = new TestClock();
    const { hung, options } = await hungThenRefused(clock);
    const { sdkFetch } = overloadedAs503(options);
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: `${hung.url}/v1` });
    const error = await clock.run(caught(client.messages.create(claudeAsk)));
    // A chain whose primary timed out and whose spare refused: no timeout as
    // `failureResponse` judges it (502), but its message quotes the timeout.
    expect(error).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    expect((error as Error).cause).toBeUndefined();
  });

  it("resilienceCause: undefined for a status error and the caller's abort; CircuitOpenError for an open breaker, nothing sent", async () => {
    const down = await api(() => ({ status: 503, json: { error: "down" } }));
    const clock = new TestClock();
    const resilience = createResilience({ clock, random: seededRandom(1), breaker: { failureThreshold: 3 } });
    const client = createOpenAI(resilience, { apiKey: "sk", baseURL: `${down.url}/v1` });

    const status = await clock.run(caught(client.chat.completions.create(ask)));
    expect(status).toBeInstanceOf(OpenAI.InternalServerError);
    expect(resilienceCause(status)).toBeUndefined();
    expect(down.requests).toHaveLength(3);

    const open = await clock.run(caught(client.chat.completions.create(ask)));
    expect(open).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(isCircuitOpenError(resilienceCause(open))).toBe(true);
    expect(down.requests).toHaveLength(3);

    const controller = new AbortController();
    controller.abort();
    const aborted = await clock.run(caught(client.chat.completions.create(ask, { signal: controller.signal })));
    expect(aborted).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(resilienceCause(aborted)).toBeUndefined();
    expect(clock.pending()).toBe(0);
  });
});

describe("sdkFetch and replicateFetch on chains (recipes.md Anthropic, Replicate)", () => {
  it("sdkFetch through a hedged chain with degradation: the spare wins with its own key; both got the degraded model", async () => {
    const primary = await api(() => "hang");
    const spare = await api(() => ({ status: 200, json: message }));
    const clock = new TestClock();
    const { sdkFetch, resilience } = overloadedAs503({
      clock,
      random: seededRandom(1),
      retry: { idempotencyKey: true }, // a POST is hedged only with a key
      degradation: degradation({ models: [["claude-big", "claude-small"]] }),
      fallback: fallback([
        {
          name: "messages",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "primary", url: primary.url },
            { name: "spare", url: spare.url, headers: { "x-api-key": "sk-spare" } },
          ],
        },
      ]),
    });
    resilience.degradation?.setLevel("medium");
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: primary.url });
    const call = client.messages.create(claudeAsk);
    await until(() => primary.requests.length === 1);
    await clock.advance(1_000);
    const out = await call;
    expect(out.content[0]).toMatchObject({ text: "spare" });
    expect(spare.requests[0]?.headers["x-api-key"]).toBe("sk-spare");
    expect(JSON.parse(primary.requests[0]?.body ?? "{}").model).toBe("claude-small");
    expect(JSON.parse(spare.requests[0]?.body ?? "{}").model).toBe("claude-small");
    expect(primary.requests[0]?.headers.authorization).toBe("Bearer sk-ant");
    expect(spare.requests[0]?.headers.authorization).toBeUndefined();
  });

  it("replicateFetch through a chain under timeout.total: TimeoutError unwrapped, the layer asked once, no timer left", async () => {
    const primary = await api(() => ({ status: 503, json: { detail: "down" } }));
    const spare = await api(() => "hang");
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      random: seededRandom(1),
      breaker: false,
      retry: { maxAttempts: 1 }, // no backoff timers: only the total's runs on the clock
      timeout: { total: 10_000 },
      fallback: fallback([
        {
          name: "replicate",
          endpoints: [
            { name: "primary", url: `${primary.url}/v1` },
            { name: "spare", url: `${spare.url}/v1` },
          ],
        },
      ]),
    });
    const recorder = recordEvents(resilience);
    const client = createReplicate(resilience, { auth: "r8", baseUrl: `${primary.url}/v1` });
    const call = caught(client.predictions.get("p1"));
    await until(() => spare.requests.length === 1);
    await clock.advance(10_000);
    const error = await call;
    expect(error).toMatchObject({ name: "TimeoutError", phase: "total" });
    expect(primary.requests).toHaveLength(1);
    expect(spare.requests).toHaveLength(1);
    expect(recorder.of("request")).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("ofetch's default retry (recipes.md 'axios, ofetch, ky')", () => {
  it("repeats an open breaker's error: the layer is asked twice per call, FetchError.cause is CircuitOpenError", async () => {
    const server = await api(() => ({ status: 503, json: {} }));
    const clock = new TestClock();
    const resilience = createResilience({ clock, random: seededRandom(1), breaker: { failureThreshold: 3 } });
    const recorder = recordEvents(resilience);
    const bare = ofetch.create({ baseURL: `${server.url}/v1/` }, { fetch: resilience.fetch });
    await clock.run(caught(bare("jobs/1")));
    const asked = recorder.of("request").length;
    const error = await clock.run(caught(bare("jobs/1")));
    expect(recorder.of("request").length - asked).toBe(2);
    expect(isCircuitOpenError((error as Error).cause)).toBe(true);
    expect(server.requests).toHaveLength(3);
  });
});

describe("Hono in a Worker (examples/recipes/hono-worker.ts)", () => {
  // docs/recipes.md: "(status, body and headers, its `Retry-After` with them; only `content-encoding`,
  // `content-length` and the hop-by-hop headers are left to the runtime, since fetch has decoded the body)"
  it("the last 503 passes through with its Retry-After, but no hop-by-hop header (keep-alive, upgrade, those connection names)", async () => {
    const images = await api(() => ({
      status: 503,
      json: { error: "down" },
      headers: { "retry-after": "7", upgrade: "h2c", connection: "keep-alive, x-hop", "x-hop": "one-hop" },
    }));
    const plain = await api(() => ({ status: 503, json: { error: "down" } }));
    const env: Env = { IMAGES_URL: images.url, IMAGES_KEY: "k", SPARE_URL: images.url, SPARE_KEY: "k" };
    const clock = new TestClock();
    const generate = (e: Env) =>
      clock.run(
        Promise.resolve(
          createApp(() => createResilience({ clock, random: seededRandom(1) })).fetch(
            new Request("https://worker.example/generate", { method: "POST", body: "{}" }),
            e,
          ),
        ),
      );
    const named = await generate(env);
    const nodeDefault = await generate({ ...env, IMAGES_URL: plain.url });
    expect(named.status).toBe(503);
    expect(named.headers.get("retry-after")).toBe("7");
    expect(await named.json()).toEqual({ error: "down" });
    expect(nodeDefault.status).toBe(503);
    // Observed: "timeout=5", "h2c" and "one-hop" reach the Worker's client.
    expect({
      keepAlive: nodeDefault.headers.get("keep-alive"),
      upgrade: named.headers.get("upgrade"),
      xHop: named.headers.get("x-hop"),
    }).toEqual({ keepAlive: null, upgrade: null, xHop: null });
  });
});
