import { afterEach, describe, expect, it, vi } from "vitest";
import { corsHint } from "../../src/http/cors-hint.ts";

const page = { inBrowser: true, origin: "https://app.example" };
const failed = () => new TypeError("Failed to fetch");

/** `error` as the cause of `depth` wrapping errors. */
function wrapped(error: Error, depth: number): Error {
  let current = error;
  for (let i = 0; i < depth; i++) current = new Error(`wrap ${i}`, { cause: current });
  return current;
}

describe("corsHint's wording", () => {
  it("is one exact sentence when the request has only safelisted headers", () => {
    expect(corsHint(failed(), "https://api.example/v1", page)).toBe(
      "probably refused by the browser's CORS rules: https://api.example must allow the origin https://app.example " +
        "in its preflight (OPTIONS) answer, and send Access-Control-Allow-Origin on every answer, errors and " +
        "gateway 5xx included, as must any origin it redirects to (which sees the origin null); the browser console names the exact cause",
    );
  });

  it("names a streamed request body, which Chromium refuses over HTTP/1.1 on any origin", () => {
    const stream = "probably the streamed request body (Chromium streams uploads over HTTP/2+ only)";
    expect(corsHint(failed(), "https://app.example/v1", { ...page, stream: true })).toBe(stream);
    const both = corsHint(failed(), "https://api.example/v1", { ...page, stream: true });
    expect(both?.startsWith(`${stream}; or refused by the browser's CORS rules: https://api.example must`)).toBe(true);
    expect(corsHint(failed(), "https://app.example/v1", { ...page, stream: false })).toBeUndefined();
    expect(corsHint(new TypeError("other"), "https://app.example/v1", { ...page, stream: true })).toBeUndefined();
  });
});

describe("corsHint's search through causes", () => {
  it("finds the browser's TypeError up to four wrappings deep, not five", () => {
    expect(corsHint(wrapped(failed(), 4), "https://api.example/x", page)).toMatch(/^probably/);
    expect(corsHint(wrapped(failed(), 5), "https://api.example/x", page)).toBeUndefined();
    expect(corsHint(wrapped(failed(), 6), "https://api.example/x", page)).toBeUndefined();
  });

  it("ends on an error that is its own cause", () => {
    const loop = new Error("loop");
    loop.cause = loop;
    expect(corsHint(loop, "https://api.example/x", page)).toBeUndefined();
  });
});

describe("corsHint's page origin from location", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("reads location.origin when no origin is given", () => {
    vi.stubGlobal("location", { origin: "https://app.example" });
    expect(corsHint(failed(), "https://api.example/x", { inBrowser: true })).toContain(
      "allow the origin https://app.example ",
    );
  });

  it('names the opaque origin a sandboxed page sends ("null"), from self.origin before location.origin', () => {
    vi.stubGlobal("location", { origin: "https://app.example" });
    vi.stubGlobal("origin", "null");
    expect(corsHint(failed(), "https://api.example/x", { inBrowser: true })).toContain("allow the origin null ");
    // Its own server's URL is another origin there too.
    expect(corsHint(failed(), "https://app.example/x", { inBrowser: true })).toContain("allow the origin null ");
  });

  // Until the forty-ninth session self.origin was read first: a page script's `var origin` then misled the
  // same-origin check (the todayfix-fortynine run).
  it("reads location.origin before a self.origin a page's script replaced", () => {
    vi.stubGlobal("location", { origin: "https://app.example" });
    vi.stubGlobal("origin", "https://other.example");
    expect(corsHint(failed(), "https://other.example/x", { inBrowser: true })).toContain(
      "allow the origin https://app.example ",
    );
    expect(corsHint(failed(), "https://app.example/x", { inBrowser: true })).toBeUndefined();
  });

  it("reads self.origin where location.origin is null (an about:blank or srcdoc frame inherits its parent's)", () => {
    vi.stubGlobal("location", { origin: "null" });
    vi.stubGlobal("origin", "https://app.example");
    expect(corsHint(failed(), "https://app.example/x", { inBrowser: true })).toBeUndefined();
    expect(corsHint(failed(), "https://api.example/x", { inBrowser: true })).toContain(
      "allow the origin https://app.example ",
    );
  });

  it("says nothing when location.origin is not a string, even one that reads as a URL", () => {
    vi.stubGlobal("location", { origin: new URL("https://app.example") });
    expect(corsHint(failed(), "https://api.example/x", { inBrowser: true })).toBeUndefined();
  });
});

describe("corsHint's safelist, judged by value as the Fetch standard does", () => {
  const named = (headers: Record<string, string>) =>
    /and the request headers (.*) in its preflight/.exec(
      corsHint(failed(), "https://api.example/v1", { ...page, headers: new Headers(headers) }) ?? "",
    )?.[1];

  it("leaves out safelisted names whose values are safe", () => {
    expect(
      named({ accept: "application/json, */*;q=0.8", "accept-language": "en-GB,en;q=0.9", range: "bytes=0-99" }),
    ).toBeUndefined();
    expect(named({ "content-language": "de-DE", range: "bytes=5-" })).toBeUndefined();
    // Only a range is read as first-last: a language tag's hyphens are not; a one-byte range is a range.
    expect(named({ "accept-language": "zh-Hant-TW", range: "bytes=5-5" })).toBeUndefined();
    expect(named({ accept: "a".repeat(128) })).toBeUndefined();
  });

  it("names a safelisted name whose value is not safe", () => {
    expect(named({ accept: 'application/vnd.api+json; profile="x"' })).toBe("accept");
    expect(named({ accept: "text/html?" })).toBe("accept");
    expect(named({ "accept-language": "en_GB" })).toBe("accept-language");
    expect(named({ "content-language": "en (GB)" })).toBe("content-language");
    expect(named({ range: "bytes=5-3" })).toBe("range");
    expect(named({ range: "bytes=0-1,5-6" })).toBe("range");
    expect(named({ range: "items=0-1" })).toBe("range");
    expect(named({ accept: "a".repeat(129) })).toBe("accept");
  });
});

describe("corsHint's content-type, judged by value as the Fetch standard does", () => {
  const named = (value: string) =>
    corsHint(failed(), "https://api.example/v1", {
      ...page,
      headers: new Headers({ "content-type": value }),
    })?.includes("the request headers content-type") ?? false;

  it("leaves out a form's or plain text's, and names any other", () => {
    expect(named("text/plain")).toBe(false);
    expect(named("text/plain;charset=UTF-8")).toBe(false);
    expect(named("Multipart/Form-Data; boundary=x")).toBe(false);
    expect(named("application/x-www-form-urlencoded")).toBe(false);
    expect(named("application/json")).toBe(true);
    expect(named('text/plain; charset="utf-8"')).toBe(true); // quotes are unsafe bytes
    expect(named(`text/plain; x=${"a".repeat(120)}`)).toBe(true); // past 128 bytes
  });
});
