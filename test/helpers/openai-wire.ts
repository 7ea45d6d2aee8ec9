import type { Hit } from "./http-upstream.ts";

/**
 * What an OpenAI-compatible server sends, for tests that put the real SDKs
 * in front of a node:http upstream.
 */

/** Answers `hit` with a JSON body. */
export const sendJson = (hit: Hit, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  hit.res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
};

/** A chat completion whose one choice says `content`. */
export const completion = (content: string): Record<string, unknown> => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "gpt-test",
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

/** One server-sent event of a streamed completion. */
export const chunk = (content: string): string =>
  `data: ${JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: "gpt-test",
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;

/** The event that ends a stream. */
export const DONE = "data: [DONE]\n\n";

/** The smallest chat request. */
export const ask = { model: "gpt-test", messages: [{ role: "user" as const, content: "hi" }] };

/** Starts a stream's answer: headers sent, body to come. */
export const sseHead = (hit: Hit): void => {
  hit.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" }).flushHeaders();
};
