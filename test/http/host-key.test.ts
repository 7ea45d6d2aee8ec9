import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hostOf } from "../../src/http/host-key.ts";

describe("hostOf", () => {
  it.each([
    "https://api.example/v1/x?q=1",
    "https://API.Example:443/v1",
    "http://api.example:80/",
    "http://api.example:8080/v1",
    "https://user:pw@api.example/v1",
    "https://api.example?x",
    "https://api.example#frag",
    "https://[::1]:8443/x",
    "https://xn--bcher-kva.example/",
    "HTTPS://api.example/",
  ])("matches new URL(%s).host", (url) => {
    expect(hostOf(url)).toBe(new URL(url).host);
  });

  it("agrees with new URL for generated http(s) URLs (property)", () => {
    fc.assert(
      fc.property(
        fc.webUrl({ validSchemes: ["http", "https"], withQueryParameters: true, withFragments: true }),
        (url) => {
          return hostOf(url) === new URL(url).host;
        },
      ),
    );
  });

  it("names a URL it cannot parse", () => {
    expect(() => hostOf("not a url")).toThrow(/invalid URL "not a url"/);
  });
});
