import { describe, expect, it } from "vitest";
import { hostOf } from "../../src/http/request/host-key.ts";
import { createResilience } from "../../src/index.ts";

describe("hostOf and credentials in the URL", () => {
  it.each(["https://user@api.example/x", "https://:secret@api.example/x", "https://user:secret@api.example/x"])(
    "refuses %s, naming the URL without them",
    (url) => {
      expect(() => hostOf(url)).toThrow(
        "resilience.fetch: https://api.example/x includes credentials (user:pass@); send them in a header",
      );
    },
  );
});

describe("hostOf and ports", () => {
  it.each(["https://api.example:000443/", "https://api.example:008443/", "http://api.example:0000080/"])(
    "agrees with new URL(%s).host for a port of more than five digits",
    (url) => {
      expect(hostOf(url)).toBe(new URL(url).host);
    },
  );
});

describe("the breaker key of a call with a custom breaker.key", () => {
  it("still refuses a URL with credentials before anything is sent", async () => {
    let sent = 0;
    const resilience = createResilience({
      breaker: { key: (url) => url.hostname },
      fetch: async () => {
        sent++;
        return new Response("ok");
      },
    });
    await expect(resilience.fetch("https://user:secret@api.example/x")).rejects.toThrow(
      "resilience.fetch: https://api.example/x includes credentials (user:pass@); send them in a header",
    );
    expect(sent).toBe(0);
  });
});

describe("a call to an invalid host", () => {
  it.each(["http://a b.example/x", "http://a<b.example/x", "https://1.2.3.999/x"])(
    "%s is refused at once: nothing sent, nothing retried, no breaker counts it",
    async (url) => {
      let sent = 0;
      const resilience = createResilience({
        fetch: async () => {
          sent++;
          return new Response("ok");
        },
      });
      const error = await resilience.fetch(url).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/^resilience\.fetch: invalid URL/);
      expect(sent).toBe(0);
      expect(resilience.health().breakers).toEqual({});
    },
  );
});

describe("hostOf and schemes that only look like http(s)", () => {
  // Until the twenty-ninth session hostOf gave such a URL the parser's host (`API.Example:443`): fetch sends
  // none of them, and the platform's network error then counted against a host named like the https one.
  it.each([["httpsx://API.Example:443/x"], ["abcd://API.Example:80/x"]])(
    "refuses %s: no http(s) URL, which fetch sends",
    (url) => {
      expect(() => hostOf(url)).toThrow(/is no http\(s\) URL, which fetch sends/);
    },
  );
});

describe("hostOf and names ending in a number", () => {
  it.each([
    ["http://1./", "0.0.0.1"],
    ["http://1.2.3.4./", "1.2.3.4"],
    ["http://1.2.3./", "1.2.0.3"],
    ["http://010.0.0.1/", "8.0.0.1"],
  ])("gives %s the URL parser's IPv4 address, %s", (url, host) => {
    expect(new URL(url).host).toBe(host);
    expect(hostOf(url)).toBe(host);
  });

  it.each(["http://a.1/", "http://a.1./", "http://a.2.3.4/"])(
    "refuses %s, whose last label is a number but which is no IPv4 address, as the URL parser does",
    (url) => {
      expect(() => new URL(url)).toThrow();
      expect(() => hostOf(url)).toThrow(/^resilience\.fetch: invalid URL/);
    },
  );
});
