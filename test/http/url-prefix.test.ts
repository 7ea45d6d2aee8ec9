import { describe, expect, it } from "vitest";
import { queryStart, restAfter, UrlPrefixes } from "../../src/http/request/url-prefix.ts";

describe("UrlPrefixes: URLs read as the URL parser reads them, http(s) only", () => {
  it("writes the part before the query as the parser does and keeps the query and fragment as given", () => {
    const urls = new UrlPrefixes();
    expect(urls.canonical("HTTPS://Gen.example:443/v1/../v2?Q=A#F")).toBe("https://gen.example/v2?Q=A#F");
    expect(urls.canonical("https://gen.example/v1#f?x")).toBe("https://gen.example/v1#f?x");
    // Asked twice, the same (the second from its cache).
    expect(urls.canonical("HTTP://A.example/x")).toBe("http://a.example/x");
    expect(urls.canonical("HTTP://A.example/x")).toBe("http://a.example/x");
  });

  it("selects nothing of another scheme, or what does not parse", () => {
    const urls = new UrlPrefixes();
    for (const url of ["ftp://a.example/v1", "data:,x", "mailto:a@b.example", "https://[bad/v1", "/v1", "?x"]) {
      expect(urls.canonical(url), url).toBeUndefined();
    }
  });

  it("queryStart finds the first of ? and #, whichever comes first", () => {
    expect(queryStart("a?b#c")).toBe(1);
    expect(queryStart("a#b?c")).toBe(1);
    expect(queryStart("ab?c")).toBe(2);
    expect(queryStart("ab#c")).toBe(2);
    expect(queryStart("?x")).toBe(0);
    expect(queryStart("abc")).toBe(-1);
  });

  it("restAfter takes whole path segments only", () => {
    expect(restAfter("https://a.example/v1/x", "https://a.example/v1")).toBe("/x");
    expect(restAfter("https://a.example/v10", "https://a.example/v1")).toBeUndefined();
    expect(restAfter("https://a.example/v1?q", "https://a.example/v1")).toBe("?q");
    expect(restAfter("https://a.example/v1", "https://a.example/v1")).toBe("");
  });
});
