import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hostOf } from "../../src/http/request/host-key.ts";

describe("hostOf", () => {
  it.each([
    "https://api.example/v1/x?q=1",
    "https://API.Example:443/v1",
    "http://api.example:80/",
    "http://api.example:8080/v1",
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

  it.each([
    ["https://a.example:/", "a.example"],
    ["http://a.example:0080/", "a.example"],
    ["http://[0:0::1]/", "[::1]"],
    ["http://bücher.example/", "xn--bcher-kva.example"],
    ["http://127.1/", "127.0.0.1"],
    ["http://0x7f.0.0.1/", "127.0.0.1"],
    ["http://a.example.:8080/", "a.example.:8080"],
  ])("gives %s the URL parser's host, %s: one host written two ways is one breaker", (url, host) => {
    expect(new URL(url).host).toBe(host);
    expect(hostOf(url)).toBe(host);
  });

  it.each([
    "http://a b.example/x",
    "http://a<b.example/",
    "http://exa^mple/",
    "http://a.example:99999/",
    "http://1.2.3.999/",
  ])("refuses the invalid host of %s at once, as the URL parser does", (url) => {
    expect(() => new URL(url)).toThrow();
    expect(() => hostOf(url)).toThrow(TypeError);
  });

  it("agrees with the URL parser on hosts made of any characters: the same host, or both refuse (property)", () => {
    const piece = fc.constantFrom(
      ..."aZ09-._~:[]@%!$&'()*+,;= <>^|`{}\\\"ü1x".split(""),
      "xn--",
      "0x",
      "127",
      "::1",
      ":80",
    );
    fc.assert(
      fc.property(fc.constantFrom("http", "https", "HTTP"), fc.array(piece, { maxLength: 12 }), (scheme, parts) => {
        const url = `${scheme}://${parts.join("")}/path`;
        let expected: string | undefined;
        try {
          const parsed = new URL(url);
          expected = parsed.username === "" && parsed.password === "" ? parsed.host : undefined;
        } catch {
          expected = undefined;
        }
        if (expected === undefined) expect(() => hostOf(url), url).toThrow(TypeError);
        else expect(hostOf(url), url).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it("names a URL it cannot parse", () => {
    expect(() => hostOf("not a url")).toThrow(/invalid URL "not a url"/);
  });
});

describe("hostOf's fast path", () => {
  afterEach(() => vi.unstubAllGlobals());

  /** Counts URL constructions: the fast path exists to avoid them (about 1 µs each). */
  function countingUrl(): { count: () => number } {
    let n = 0;
    const Original = URL;
    vi.stubGlobal(
      "URL",
      class extends Original {
        constructor(url: string | URL, base?: string | URL) {
          n++;
          super(url, base);
        }
      },
    );
    return { count: () => n };
  }

  it("reads plain http(s) hosts without the URL parser", () => {
    const parser = countingUrl();
    const cases: [string, string][] = [
      ["https://api.example/v1", "api.example"],
      ["http://api.example", "api.example"],
      ["HTTPS://API.Example:8443?x", "api.example:8443"],
      ["https://api.example:443#f", "api.example"],
      ["http://api.example:80\\x", "api.example"],
      ["http://api.example:8080/", "api.example:8080"],
      ["https://api.example:80/", "api.example:80"],
      ["http://api.example:443/", "api.example:443"],
      ["http://127.0.0.1:8080/v1", "127.0.0.1:8080"],
      ["https://10.0.0.255/", "10.0.0.255"],
    ];
    for (const [url, host] of cases) expect(hostOf(url), url).toBe(host);
    expect(parser.count()).toBe(0);
  });

  it("hands userinfo, percent-encoding, empty hosts and other schemes to the parser", () => {
    const parser = countingUrl();
    expect(() => hostOf("https://user:pw@api.example/x?k=s")).toThrow(
      /^resilience\.fetch: https:\/\/api\.example\/x includes credentials \(user:pass@\)/,
    );
    expect(hostOf("https://%61pi.example/")).toBe("api.example");
    // Other schemes are refused since the twenty-ninth session (fetch sends none of them).
    expect(() => hostOf("ws://api.example/socket")).toThrow(/is no http\(s\) URL/);
    expect(hostOf("https:///api.example/")).toBe("api.example");
    expect(() => hostOf("httpx://api.example/")).toThrow(/is no http\(s\) URL/);
    expect(parser.count()).toBe(5);
  });
});
