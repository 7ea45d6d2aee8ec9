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

  it("cuts userinfo written without // too, as the URL parser reads it (https:user:pass@host)", () => {
    expect(redactUrl("https:user:secret@[bad/x?k=1")).toBe("https:[bad/x");
    expect(redactUrl("https:\\\\user:secret@api.example\\x")).toBe("https:\\\\api.example\\x");
    expect(redactUrl("mailto:someone@api.example?subject=x")).toBe("mailto:api.example");
  });

  it("cuts an empty userinfo too (https://@host), as the URL parser does", () => {
    expect(new URL("https://@api.example/x").href).toBe("https://api.example/x");
    expect(redactUrl("https://@api.example/x")).toBe("https://api.example/x");
  });

  it("leaves an @ after the authority (in the path) alone", () => {
    expect(redactUrl("https://api.example/users/@me")).toBe("https://api.example/users/@me");
    expect(redactUrl("https://api.example")).toBe("https://api.example");
  });

  it("keeps the secret of an unparsable URL written without // out of the error", async () => {
    const resilience = createResilience({ fetch: async () => new Response("never") });
    const error = await resilience.fetch("https:user:secret@[bad/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toContain("secret");
    expect((error as Error).message).toBe('resilience.fetch: invalid URL "https:[bad/x"');
  });

  it("keeps the key out of the error for an invalid URL that is only a query", async () => {
    const resilience = createResilience({ fetch: async () => new Response("never") });
    const error = await resilience.fetch("?key=secret").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('resilience.fetch: invalid URL ""');
  });
});
