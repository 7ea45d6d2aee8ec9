/**
 * `npm run bench` builds each library's variant as a user would configure it
 * (bench/variants.ts). A variant whose options the layer refuses (a `match`
 * the URL parser cannot read became a `ConfigError`) breaks the benchmark
 * only when it runs, which no other test does: each variant is built here
 * and makes one call on a stub transport.
 */
import { describe, expect, it } from "vitest";
import { variants } from "../../bench/variants.ts";

describe("bench/variants.ts", () => {
  it.each(Object.keys(variants))("%s builds and answers one call", async (name) => {
    const sent: string[] = [];
    const transport = async (input: RequestInfo | URL): Promise<Response> => {
      sent.push(input instanceof Request ? input.url : String(input));
      return new Response("ok");
    };
    const make = variants[name];
    if (!make) throw new Error(`no variant ${name}`);
    const call = make(transport, { breakerTimeout: 2_000 });
    const result = await call("http://127.0.0.1:1/gen/x");
    // Each answers with the stub's response, or its body where the library parses it (ofetch).
    expect(result instanceof Response ? result.status : result).toSatisfy((r) => r === 200 || r === "ok");
    expect(sent.length).toBeGreaterThan(0);
  });
});
