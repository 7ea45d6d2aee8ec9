import Anthropic from "@anthropic-ai/sdk";
import { createResilience, isCircuitOpenError, type ResilienceOptions } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { recordEvents, seededRandom, TestClock } from "@storycore/resilient-fetch/testing";
import { describe, expect, it } from "vitest";
import { createAnthropic, overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import type { Answer, FakeApi } from "./fake-api.ts";
import { useFakeApis } from "./harness.ts";

const message = (text: string): Answer => ({
  status: 200,
  json: {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-test",
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 3, output_tokens: 1 },
  },
});
const overloaded: Answer = {
  status: 529,
  json: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
};
const ask = { model: "claude-test", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };
const MESSAGES = "POST /v1/messages";

const fakeApi = useFakeApis();
const api = (answer: (n: number) => Answer): Promise<FakeApi> => fakeApi((_, n) => answer(n));

function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const { resilience, sdkFetch } = overloadedAs503({ clock, random: seededRandom(1), ...options });
  return { clock, resilience, sdkFetch, recorder: recordEvents(resilience) };
}
const text = (m: Anthropic.Message) => (m.content[0]?.type === "text" ? m.content[0].text : undefined);

describe("recipe: anthropic", () => {
  it("retries a 529 once, in the layer (seen as 503), never in the SDK", async () => {
    const server = await api((n) => (n === 1 ? overloaded : message("hello")));
    const { clock, sdkFetch, recorder } = layer();
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: server.url });

    const answer = await clock.run(client.messages.create(ask));

    expect(text(answer)).toBe("hello");
    expect(server.count(MESSAGES)).toBe(2);
    expect(recorder.of("retry").map((e) => e.reason)).toEqual(["status 503"]);
    expect(server.requests.map((r) => r.headers["x-stainless-retry-count"])).toEqual(["0", "0"]);
  });

  it("without overloadedAs503, a 529 on messages.create is not retried (a POST, not a 429 or 503)", async () => {
    const server = await api((n) => (n === 1 ? overloaded : message("never")));
    const clock = new TestClock();
    const resilience = createResilience({ clock });
    const client = createAnthropic(resilience.fetch, { apiKey: "sk-ant", baseURL: server.url });

    const error = await clock.run(client.messages.create(ask)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(server.count(MESSAGES)).toBe(1);
  });

  it("an API that stays overloaded gets the layer's 3 attempts, then the SDK's 529 error", async () => {
    const server = await api(() => overloaded);
    const { clock, sdkFetch } = layer();
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: server.url });

    const error = await clock.run(client.messages.create(ask)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(JSON.stringify((error as InstanceType<typeof Anthropic.APIError>).error)).toContain("overloaded_error");
    expect(error).toBeInstanceOf(Anthropic.OverloadedError);
    expect(server.count(MESSAGES)).toBe(3);
  });

  it("falls back to a second endpoint with its own key when the first stays overloaded", async () => {
    const primary = await api(() => overloaded);
    const spare = await api(() => message("from the spare"));
    const { clock, sdkFetch, recorder } = layer({
      fallback: fallback([
        {
          name: "claude",
          endpoints: [
            { name: "primary", url: `${primary.url}/v1` },
            { name: "spare", url: `${spare.url}/v1`, headers: { "x-api-key": "sk-spare" } },
          ],
        },
      ]),
    });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: primary.url });

    const answer = await clock.run(client.messages.create(ask));

    expect(text(answer)).toBe("from the spare");
    expect(primary.count(MESSAGES)).toBe(3);
    expect(spare.count(MESSAGES)).toBe(1);
    expect(spare.requests[0]?.headers["x-api-key"]).toBe("sk-spare");
    recorder.expectFallback("primary", "spare");
  });

  it("an open breaker reaches the caller as APIConnectionError whose cause is CircuitOpenError", async () => {
    const server = await api(() => overloaded);
    const { clock, sdkFetch } = layer({ breaker: { failureThreshold: 3 } });
    const client = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: server.url });
    await clock.run(client.messages.create(ask)).catch(() => undefined);

    const error = await clock.run(client.messages.create(ask)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(isCircuitOpenError((error as Error).cause)).toBe(true);
    expect(server.count(MESSAGES)).toBe(3);
  });
});
