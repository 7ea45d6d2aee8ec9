/**
 * Passing `resilience.fetch` as the custom `fetch` of an SDK. Most generation
 * SDKs (OpenAI's, Replicate's, Anthropic's …) accept one; this file uses a
 * minimal SDK-shaped client so the example runs without any of them.
 * Run: node examples/sdk-fetch/index.ts
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createResilience, getResilienceInfo } from "@storycore/resilient-fetch";

/** The shape of a typical SDK: a base URL, an API key and an injectable fetch. */
class ImageApiClient {
  readonly #options: { baseURL: string; apiKey: string; fetch: typeof fetch };
  constructor(options: { baseURL: string; apiKey: string; fetch?: typeof fetch }) {
    this.#options = { ...options, fetch: options.fetch ?? globalThis.fetch };
  }
  async generate(prompt: string): Promise<{ id: string; url: string }> {
    const res = await this.#options.fetch(`${this.#options.baseURL}/images`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.#options.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt }),
    });
    if (!res.ok) throw new Error(`image API answered ${res.status}`);
    console.log("served after", getResilienceInfo(res)?.attempts, "attempt(s)");
    return (await res.json()) as { id: string; url: string };
  }
}

// A local API that declines the first two requests with 429 + Retry-After: 0.
let seen = 0;
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    seen++;
    if (seen <= 2) {
      res.writeHead(429, { "retry-after": "0" }).end();
      return;
    }
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ id: "img_1", url: "https://cdn.example/img_1.png" }));
  });
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const { port } = server.address() as AddressInfo;

const resilience = createResilience({ retry: { maxAttempts: 4, idempotencyKey: true } });
const client = new ImageApiClient({
  baseURL: `http://127.0.0.1:${port}/v1`,
  apiKey: "sk-test",
  fetch: resilience.fetch,
});
console.log(await client.generate("a red fox in snow"));
server.close();
