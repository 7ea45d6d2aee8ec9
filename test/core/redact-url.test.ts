import { describe, expect, it } from "vitest";
import { redactUrl, redactUrlsIn } from "../../src/core/redact-url.ts";
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

describe("redaction of userinfo the URL parser cannot read", () => {
  it("drops everything up to the last @ of text that does not parse, query and fragment too", () => {
    expect(redactUrl("https://apikey:abc/SECRET@api.example/v1?k=1")).toBe("https://api.example/v1");
    expect(redactUrl("https://apikey:SECRET?x@api.example/v1")).toBe("https://api.example/v1");
    expect(redactUrl("https://apikey:SE#CRET@api.example:99999/v1")).toBe("https://api.example:99999/v1");
  });

  it("keeps a parsed URL's path and host when an @ sits in its path or query", () => {
    expect(redactUrl("https://api.example/users/@me?e=a@b")).toBe("https://api.example/users/@me");
    expect(redactUrl("https://api.example/v1?email=a@b.example")).toBe("https://api.example/v1");
  });

  it("cuts userinfo, query and fragment of each URL a platform message quotes", () => {
    expect(
      redactUrlsIn(
        "Request cannot be constructed from a URL that includes credentials: http://user:sk-1@127.0.0.1:80/next?k=2#f",
      ),
    ).toBe("Request cannot be constructed from a URL that includes credentials: http://127.0.0.1:80/next");
  });
});

describe("redaction edges (each kills a surviving mutant of the redaction)", () => {
  it("shows text that does not parse and holds no @ once, cut at its query", () => {
    expect(redactUrl("https://bad host.example/x?k=1")).toBe("https://bad host.example/x");
  });

  it("keeps an @ that starts a parsed URL's path", () => {
    expect(redactUrl("https://api.example/@me")).toBe("https://api.example/@me");
  });

  it("cuts a quoted URL whose scheme holds a digit, and userinfo of a URL without a query", () => {
    expect(redactUrlsIn("at s3://bucket/x?key=1 and http://user:pw@h.example/x")).toBe(
      "at s3://bucket/x and http://h.example/x",
    );
  });
});
