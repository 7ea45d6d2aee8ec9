import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/http/request/redact-url.ts";
import { createResilience } from "../../src/index.ts";

describe("redactUrl", () => {
  it("cuts a query or fragment even at the very start", () => {
    expect(redactUrl("?key=secret")).toBe("");
    expect(redactUrl("#token=secret")).toBe("");
  });

  it("cuts the userinfo of a scheme-relative URL", () => {
    expect(redactUrl("//user:secret@api.example/x?key=1")).toBe("//api.example/x");
  });

  it("leaves text without an authority (no //) as it is, up to its query", () => {
    expect(redactUrl("mailto:someone@api.example?subject=x")).toBe("mailto:someone@api.example");
  });

  it("keeps the key out of the error for an invalid URL that is only a query", async () => {
    const resilience = createResilience({ fetch: async () => new Response("never") });
    const error = await resilience.fetch("?key=secret").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('resilience.fetch: invalid URL ""');
  });
});
