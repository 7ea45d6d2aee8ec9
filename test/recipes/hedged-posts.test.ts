/**
 * recipes.md, point 2: the `Idempotency-Key` that lets a hung POST be
 * retried also decides hedging. The SDKs' calls are POSTs, so a hedged
 * chain under the OpenAI recipe starts its second endpoint only when the
 * layer adds a key (`retry: { idempotencyKey: true }`).
 */
import { readFileSync } from "node:fs";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { describe, expect, it } from "vitest";
import { createOpenAI } from "../../examples/recipes/openai.ts";
import type { Answer } from "./fake-api.ts";
import { layer, until, useFakeApis } from "./harness.ts";

const completion: Answer = {
  status: 200,
  json: {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1_700_000_000,
    model: "gpt-test",
    choices: [{ index: 0, message: { role: "assistant", content: "from the spare" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
  },
};
const ask = { model: "gpt-test", messages: [{ role: "user" as const, content: "hi" }] };
const CHAT = "POST /v1/chat/completions";
const fakeApi = useFakeApis();

async function hedgedChat(retry: { idempotencyKey: boolean }) {
  const primary = await fakeApi(() => "hang");
  const spare = await fakeApi(() => completion);
  const { clock, resilience } = layer({
    retry,
    fallback: fallback([
      {
        name: "chat",
        hedge: { delay: 50 },
        endpoints: [
          { name: "primary", url: `${primary.url}/v1` },
          { name: "spare", url: `${spare.url}/v1` },
        ],
      },
    ]),
  });
  const client = createOpenAI(resilience, { apiKey: "sk-test", baseURL: `${primary.url}/v1` });
  const controller = new AbortController();
  const answer = client.chat.completions.create(ask, { signal: controller.signal });
  answer.catch(() => {});
  await until(() => primary.count(CHAT) === 1);
  await clock.advance(50);
  return { answer, primary, spare, controller };
}

describe("recipes: a hedged chain under an SDK's POSTs", () => {
  it("says so in recipes.md", () => {
    const recipes = readFileSync(new URL("../../docs/recipes.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(recipes).toContain(
      "The same key decides hedging: a chain's `hedge` never starts a second endpoint for a POST without one, so under these SDKs a hedged chain hedges only with `retry: { idempotencyKey: true }` (or a key you set).",
    );
  });

  it("starts no second endpoint for a chat completion without a key", async () => {
    const { answer, spare, controller } = await hedgedChat({ idempotencyKey: false });
    // Long enough for a hedge to reach the spare (the keyed case below sees it within these turns).
    let turns = 0;
    await until(() => ++turns > 200);
    expect(spare.count(CHAT)).toBe(0);
    controller.abort();
    await expect(answer).rejects.toThrow();
    expect(spare.count(CHAT)).toBe(0);
  });

  it("hedges it to the spare once the layer adds the key", async () => {
    const { answer, spare } = await hedgedChat({ idempotencyKey: true });
    const reply = await answer;
    expect(reply.choices[0]?.message.content).toBe("from the spare");
    expect(spare.count(CHAT)).toBe(1);
    expect(spare.requests[0]?.headers["idempotency-key"]).toMatch(/\S/);
  });
});
