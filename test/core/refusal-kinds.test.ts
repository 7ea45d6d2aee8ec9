/**
 * SECURITY.md: a refusal of a value of the wrong kind, where a function or an
 * object was wanted, names only the kind it got, never the value (a key
 * passed where a listener belongs stays out of the message).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { retry } from "../../src/policies/index.ts";

const KEY = "sk_live_0123456789abcdef";

describe("refusals of a value of the wrong kind", () => {
  it("name the kind they got, never the value", async () => {
    const security = readFileSync(new URL("../../SECURITY.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(security).toContain(
      'A refusal of a value of the wrong kind, where a function or an object was wanted, names only the kind it got (`on("retry", listener): listener must be a function, got string`), never the value.',
    );
    const layer = createResilience({ fetch: async () => new Response("ok") });
    expect(() => layer.on("retry", KEY as never)).toThrow(
      new TypeError('on("retry", listener): listener must be a function, got string'),
    );
    await expect(retry(KEY as never)).rejects.toThrow(new TypeError("retry(fn): fn must be a function, got string"));
    const refused = await layer.fetch("https://api.example/x", KEY as never).catch((error: unknown) => error);
    expect(refused).toEqual(new TypeError("resilience.fetch: init must be an object, got string"));
    expect(String(refused)).not.toContain(KEY);
  });
});
