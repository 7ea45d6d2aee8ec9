import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError } from "../../src/index.ts";

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

  it("refuses a validate that is not an object with a ConfigError, not a crash", () => {
    for (const validate of [null, "zod", 5]) {
      expect(() => fallback(one("https://a.example/v1", { validate })), String(validate)).toThrow(
        /fallback\.0\.endpoints\.0\.validate: expected a Standard Schema/,
      );
    }
  });
});
