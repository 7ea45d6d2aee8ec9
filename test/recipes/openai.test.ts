import { isCircuitOpenError } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { createAzureOpenAI, createOpenAI, resilienceCause } from "../../examples/recipes/openai.ts";
import type { Answer, FakeApi } from "./fake-api.ts";
import { layer, until, useFakeApis } from "./harness.ts";

const completion = (content: string): Answer => ({
  status: 200,
  json: {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1_700_000_000,
    model: "gpt-test",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
  },
});
const overloaded: Answer = { status: 503, json: { error: { message: "overloaded", type: "server_error" } } };
const ask = { model: "gpt-test", messages: [{ role: "user" as const, content: "hi" }] };
const CHAT = "POST /v1/chat/completions";

const fakeApi = useFakeApis();
const api = (answer: (n: number) => Answer): Promise<FakeApi> => fakeApi((_, n) => answer(n));

describe("recipe: openai", () => {
  it("retries a 503 once, in the layer: the SDK sends each attempt as its first", async () => {
    const server = await api((n) => (n === 1 ? overloaded : completion("hello")));
    const { clock, resilience, recorder } = layer();
    const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${server.url}/v1` });

    const answer = await clock.run(client.chat.completions.create(ask));

    expect(answer.choices[0]?.message.content).toBe("hello");
    expect(server.count(CHAT)).toBe(2);
    expect(recorder.of("retry")).toHaveLength(1);
    expect(server.requests.map((r) => r.headers["x-stainless-retry-count"])).toEqual(["0", "0"]);
  });

  it("an API that stays down gets the layer's 3 attempts, not 3 × the SDK's, then the SDK's status error", async () => {
    const server = await api(() => overloaded);
    const { clock, resilience } = layer();
    const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${server.url}/v1` });

    const error = await clock.run(client.chat.completions.create(ask)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(server.count(CHAT)).toBe(3);
  });

  it("falls back to a second OpenAI-compatible deployment, with that deployment's own key", async () => {
    const primary = await api(() => overloaded);
    const secondary = await api(() => completion("from the spare"));
    const { clock, resilience, recorder } = layer({
      fallback: fallback([
        {
          name: "chat",
          endpoints: [
            { name: "primary", url: `${primary.url}/v1` },
            { name: "spare", url: `${secondary.url}/v1`, headers: { authorization: "Bearer sk-spare" } },
          ],
        },
      ]),
    });
    const client = createOpenAI(resilience, { apiKey: "sk-primary", baseURL: `${primary.url}/v1` });

    const answer = await clock.run(client.chat.completions.create(ask));

    expect(answer.choices[0]?.message.content).toBe("from the spare");
    expect(primary.count(CHAT)).toBe(3);
    expect(secondary.count(CHAT)).toBe(1);
    expect(secondary.requests[0]?.headers.authorization).toBe("Bearer sk-spare");
    recorder.expectFallback("primary", "spare");
  });

  it("an open breaker reaches the caller as APIConnectionError whose cause is CircuitOpenError; nothing is sent", async () => {
    const server = await api(() => overloaded);
    const { clock, resilience } = layer({ breaker: { failureThreshold: 3 } });
    const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${server.url}/v1` });
    await clock.run(client.chat.completions.create(ask)).catch(() => undefined);
    expect(server.count(CHAT)).toBe(3);

    const error = await clock.run(client.chat.completions.create(ask)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(isCircuitOpenError((error as Error).cause)).toBe(true);
    expect(resilienceCause(error)?.name).toBe("CircuitOpenError");
    expect(server.count(CHAT)).toBe(3);
  });

  // Attempt timeouts on a TestClock are fired by hand once the fake API holds
  // the request: clock.run would fire them while real I/O is still under way.
  it("a hung POST is not retried without an idempotency key: APIConnectionTimeoutError, the layer's TimeoutError as cause", async () => {
    const server = await api(() => "hang");
    const { clock, resilience } = layer({ timeout: { attempt: 5_000 } });
    const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${server.url}/v1` });

    const call = client.chat.completions.create(ask).catch((e: unknown) => e);
    await until(() => server.count(CHAT) === 1);
    await clock.advance(5_000);
    const error = await call;

    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(resilienceCause(error)).toMatchObject({ name: "TimeoutError", phase: "attempt" });
    expect(server.count(CHAT)).toBe(1);
  });

  it("with idempotencyKey, a hung POST is retried with the same key", async () => {
    const server = await api((n) => (n === 1 ? "hang" : completion("after the hang")));
    const { clock, resilience } = layer({
      timeout: { attempt: 5_000 },
      retry: { idempotencyKey: true, initialDelay: 1_000, jitter: "none" },
    });
    const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${server.url}/v1` });

    const call = client.chat.completions.create(ask);
    await until(() => server.count(CHAT) === 1);
    await clock.advance(5_000); // the first attempt times out
    await clock.advance(1_000); // the backoff before the second
    const answer = await call;

    expect(answer.choices[0]?.message.content).toBe("after the hang");
    expect(server.count(CHAT)).toBe(2);
    const keys = server.requests.map((r) => r.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/./);
    expect(keys[1]).toBe(keys[0]);
  });
});

describe("recipe: Azure OpenAI", () => {
  it("retries a 503 in the layer, keeps the api-key header and the api-version query", async () => {
    const server = await api((n) => (n === 1 ? overloaded : completion("from azure")));
    const { clock, resilience, recorder } = layer();
    const client = createAzureOpenAI(resilience, {
      apiKey: "azure-key",
      endpoint: server.url,
      deployment: "gpt-test",
      apiVersion: "2024-10-21",
    });

    const answer = await clock.run(client.chat.completions.create(ask));

    expect(answer.choices[0]?.message.content).toBe("from azure");
    expect(server.count("POST /openai/deployments/gpt-test/chat/completions")).toBe(2);
    expect(server.requests.map((r) => r.headers["api-key"])).toEqual(["azure-key", "azure-key"]);
    expect(recorder.of("retry")).toHaveLength(1);
  });
});
