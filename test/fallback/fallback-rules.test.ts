import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";

const one = (url: string, extra: object = {}) => [{ name: "c", endpoints: [{ name: "a", url, ...extra }] }];

describe("fallback endpoint checks", () => {
  it("accepts http and https endpoint URLs", () => {
    expect(() => fallback(one("http://a.example/v1"))).not.toThrow();
    expect(() => fallback(one("HTTPS://a.example/v1"))).not.toThrow();
  });

  it("refuses an endpoint URL of another scheme, even one that mentions https: later", () => {
    expect(() => fallback(one("ftp://a.example/https://b"))).toThrow(ConfigError);
    expect(() => fallback(one("ftp://a.example/https://b"))).toThrow(
      /fallback\.0\.endpoints\.0\.url: expected an absolute http\(s\) URL/,
    );
  });

  it("refuses endpoint headers unless every name is an HTTP token, the whole name", () => {
    expect(() => fallback(one("https://a.example/v1", { headers: {} }))).not.toThrow();
    expect(() => fallback(one("https://a.example/v1", { headers: { "x-key": "1" } }))).not.toThrow();
    expect(() => fallback(one("https://a.example/v1", { headers: { "x-key": "1", "x bad": "2" } }))).toThrow(
      /fallback\.0\.endpoints\.0\.headers: expected header names that are HTTP tokens/,
    );
  });

  it("refuses an endpoint header value fetch cannot send, naming it as a string, never quoting it", () => {
    // Changed in the thirtieth session: the value had a trailing line
    // break, which fetch trims and sends; now one inside it, which it refuses.
    expect(() =>
      fallback(one("https://a.example/v1", { headers: { authorization: "Bearer s3cret\r\n" } })),
    ).not.toThrow();
    const headers = { authorization: "Bearer s3\ncret" };
    const error = (() => {
      try {
        fallback(one("https://a.example/v1", { headers }));
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect([error instanceof ConfigError, error?.message]).toEqual([
      true,
      "fallback.0.endpoints.0.headers.authorization: expected a header value (Latin-1, no control character but a tab), received a string",
    ]);
  });

  it("names an endpoint option that cannot be read, without running the checks that would read it", () => {
    const endpoint = Object.defineProperty({ name: "a", url: "https://a.example/v1" }, "respond", {
      get() {
        throw new Error("boom");
      },
      enumerable: true,
    });
    const error = (() => {
      try {
        fallback([{ name: "c", endpoints: [endpoint] }] as never);
      } catch (e) {
        return e as Error;
      }
    })();
    expect([error instanceof ConfigError, error?.message]).toEqual([
      true,
      "fallback.0.endpoints.0.respond: expected a value that can be read, received a value that cannot be read",
    ]);
  });

  it("refuses an endpoint URL with a user alone or a password alone, never quoting them", () => {
    for (const url of ["https://user@a.example/v1", "https://:pass@a.example/v1"]) {
      expect(() => fallback(one(url)), url).toThrow(
        "fallback.0.endpoints.0.url: expected a URL without credentials (a user or password goes in `headers`), " +
          'received "https://a.example/v1" (credentials, query and fragment cut)',
      );
    }
  });

  it("refuses a validate that is not an object with a ConfigError, not a crash", () => {
    for (const validate of [null, "zod", 5]) {
      expect(() => fallback(one("https://a.example/v1", { validate })), String(validate)).toThrow(
        /fallback\.0\.endpoints\.0\.validate: expected a Standard Schema/,
      );
    }
  });

  it("accepts a schema that is a function carrying ~standard (ArkType's types are callable), and uses it", async () => {
    const hasUrl = Object.assign((value: unknown) => value, {
      "~standard": {
        version: 1 as const,
        vendor: "callable",
        validate: (value: unknown) =>
          typeof value === "object" && value !== null && "url" in value
            ? { value }
            : { issues: [{ message: "no url" }] },
      },
    });
    const chains = fallback([
      {
        name: "images",
        endpoints: [
          { name: "primary", url: "https://a.example/v1", validate: hasUrl },
          { name: "alternate", url: "https://b.example/v1" },
        ],
      },
    ]);
    const resilience = createResilience({
      fallback: chains,
      fetch: async (input) =>
        String(input).startsWith("https://a.example")
          ? Response.json({ nothing: true })
          : Response.json({ url: "https://cdn.example/1.png" }),
    });
    const response = await resilience.fetch("https://a.example/v1/images");
    expect(await response.json()).toEqual({ url: "https://cdn.example/1.png" });
    expect(getResilienceInfo(response)?.endpoint).toBe("alternate");
    // A function without ~standard is still refused.
    expect(() => fallback(one("https://a.example/v1", { validate: () => true }))).toThrow(/expected a Standard Schema/);
  });
});
