import { describe, expect, it } from "vitest";
import { redactErrorChain, redactUrl, redactUrlsIn } from "../../src/core/redact-url.ts";
import { createResilience } from "../../src/index.ts";

describe("redactUrl", () => {
  it("cuts a query or fragment even at the very start", () => {
    expect(redactUrl("?key=secret")).toBe("");
    expect(redactUrl("#token=secret")).toBe("");
  });

  it("cuts a URL percent-encoded into the URL's path, and leaves an encoded colon that is no URL", () => {
    const callback = encodeURIComponent("https://u:pw@cb.example/x?key=SECRET");
    expect(redactUrl(`https://api.example/v1/cb/${callback}?token=t`)).toBe(
      "https://api.example/v1/cb/https%3A%2F%2Fcb.example%2Fx",
    );
    expect(redactUrl("https://api.example/v1/models/gpt%3Alatest")).toBe("https://api.example/v1/models/gpt%3Alatest");
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

describe("redaction of a URL inside another's text (each kills a surviving mutant of INNER_USERINFO)", () => {
  it("cuts the userinfo of a URL with a special scheme and no slashes in another URL's path", () => {
    // The URL parser reads the outer URL whole: only the pass for inner userinfo finds these.
    expect(redactUrlsIn("https://h.example/cb/http:u:pw@evil.example")).toBe("https://h.example/cb/http:evil.example");
    expect(redactUrlsIn("https://h.example/cb/https:u:pw@evil.example")).toBe(
      "https://h.example/cb/https:evil.example",
    );
    expect(redactUrlsIn("https://h.example/cb/ws:u:pw@evil.example")).toBe("https://h.example/cb/ws:evil.example");
  });

  it("cuts the userinfo after a // that follows a path's own characters", () => {
    expect(redactUrlsIn("https://a.example/p//svc:pw@b.example/")).toBe("https://a.example/p//b.example/");
    expect(redactUrlsIn("/api/proxy//svc:pw@b.example")).toBe("/api/proxy//b.example");
  });

  it("cuts a password with spaces (one or several, and punctuation) after //", () => {
    expect(redactUrlsIn("upstream //admin:hunter 2@db.example/x failed")).toBe("upstream //db.example/x failed");
    expect(redactUrlsIn('{"u":"\\/\\/admin:hunter 2@db.example\\/x"}')).toBe('{"u":"\\/\\/db.example\\/x"}');
    expect(redactUrlsIn("at //admin:2024! spring@x.example")).toBe("at //x.example");
    expect(redactUrlsIn("text //admin:correct horse battery@h.example/x")).toBe("text //h.example/x");
    expect(redactUrlsIn("https://admin:correct horse battery@h.example/")).toBe("https://h.example/");
    expect(redactUrlsIn("xx //admin:p w@x.example%40")).toBe("xx //x.example%40");
  });

  it("keeps a host and port that a phrase goes on from (no userinfo), with or without punctuation", () => {
    for (const text of [
      "see //host:8080 or bob@x.example",
      "see //host:8080, or bob@x.example",
      "see //host:8080. or bob@x.example",
      "see //host:8080.) or bob@x.example",
    ]) {
      expect(redactUrlsIn(text)).toBe(text);
    }
  });
});

describe("redaction of encoded URLs (each kills a surviving mutant of ENCODED_AFTER_SCHEME or ENCODED_URL)", () => {
  it("reads only a scheme at the very start as an encoded URL's: a query with an encoded slash is still cut", () => {
    expect(redactUrl("https://api.example/v1?key=sk:%2Fsecret")).toBe("https://api.example/v1");
    expect(redactUrl("https://u:p@h.example/x:%2F")).toBe("https://h.example/x:%2F");
  });

  it("keeps a path segment with one encoded slash: only two start a scheme-relative URL", () => {
    expect(redactUrlsIn("https://h.example/a%2Fb%3Fkey%3Dsk")).toBe("https://h.example/a%2Fb%3Fkey%3Dsk");
  });
});

describe("redactUrlsIn: a URL may hold ) and '", () => {
  it.each([
    ["a parenthesis in the path", "see https://h/wiki/A_(b)?api_key=S now", "see https://h/wiki/A_(b) now"],
    ["an apostrophe in the path", "x https://h/o'brien?api_key=S", "x https://h/o'brien"],
    ["a parenthesis in the query", "q https://h/x?q=a)&api_key=S end", "q https://h/x end"],
    [
      "a URL closing a parenthesis: the closing kept",
      "for url (https://a.example/v1/x?api_key=S): client error",
      "for url (https://a.example/v1/x): client error",
    ],
    ["userinfo and a fragment before a full stop", "at https://u:p@h/x#frag.", "at https://h/x."],
  ])("%s", (_what, text, expected) => {
    expect(redactUrlsIn(text)).toBe(expected);
  });
});

describe("redactErrorChain", () => {
  it("cuts the message, a stack already formatted and the causes; replaces what cannot be set", () => {
    const inner = new DOMException("failed for https://h/x?k=S", "NetworkError");
    const outer = new TypeError("fetch https://h/x?k=S", { cause: inner });
    void outer.stack; // formatted now: it quotes the message as it was
    const kept = redactErrorChain(outer) as Error;
    expect(kept).toBe(outer);
    expect(outer.message).toBe("fetch https://h/x");
    expect(outer.stack).not.toContain("k=S");
    const cause = outer.cause as Error;
    expect(cause).not.toBe(inner); // a DOMException's message cannot be set: a copy says it
    expect([cause.name, cause.message]).toEqual(["NetworkError", "failed for https://h/x"]);
    const frozen = Object.freeze(new Error("at https://h/?k=S"));
    expect((redactErrorChain(frozen) as Error).message).toBe("at https://h/");
    const clean = new Error("nothing to cut");
    expect(redactErrorChain(clean)).toBe(clean);
  });

  it("redactUrlsIn cuts a relative URL's query and fragment, keeping the path and what closes it", () => {
    expect(redactUrlsIn("Failed to parse URL from /api/jobs?api_key=K")).toBe("Failed to parse URL from /api/jobs");
    expect(redactUrlsIn('POST "/v1/images?key=K#f" failed (//cdn.example/x?sig=S).')).toBe(
      'POST "/v1/images" failed (//cdn.example/x).',
    );
    expect(redactUrlsIn("a/b and 1/2 and /v1/x stay as written")).toBe("a/b and 1/2 and /v1/x stay as written");
    expect(redactUrlsIn("via //svc:pw@proxy.example/x, then")).toBe("via //proxy.example/x, then");
  });

  it("redactUrlsIn cuts http(s): URLs without slashes and a password holding @, in linear time", () => {
    expect(redactUrlsIn("refused https:user:pass@h.example/x?api_key=K now")).toBe("refused https:h.example/x now");
    expect(redactUrlsIn("for url (https://proxy:p@ss@proxy.example/): refused")).toBe(
      "for url (https://proxy.example/): refused",
    );
    expect(redactUrlsIn("status http: 500")).toBe("status http: 500");
    for (const junk of [
      "a.".repeat(20_000),
      `https://x/?${".".repeat(40_000)}a`,
      "https:a.".repeat(5_000),
      ` /${"a/".repeat(40_000)}`,
      " /a".repeat(20_000),
      ` //${"a@".repeat(40_000)}`,
    ]) {
      const started = performance.now();
      redactUrlsIn(junk);
      expect(performance.now() - started).toBeLessThan(250);
    }
  });
});

describe("redactUrlsIn: a URL percent-encoded into text", () => {
  const url = "https://u:pw@api.example/v1?api_key=SECRET#frag";
  const once = encodeURIComponent(url);

  it("is cut as a plain one is, and encoded again", () => {
    expect(redactUrlsIn(`fetch failed for ${once}`)).toBe("fetch failed for https%3A%2F%2Fapi.example%2Fv1");
    expect(redactUrlsIn(`fetch failed for ${once.toLowerCase()}`)).not.toMatch(/secret|pw/i);
  });

  it("encoded twice or three times, keeps its encoding; deeper, or not decodable, keeps only its scheme", () => {
    const twice = encodeURIComponent(once);
    const thrice = encodeURIComponent(twice);
    expect(redactUrlsIn(`a ${twice} b`)).toBe(`a ${encodeURIComponent("https%3A%2F%2Fapi.example%2Fv1")} b`);
    expect(redactUrlsIn(`a ${thrice} b`)).not.toMatch(/SECRET|pw/);
    expect(redactUrlsIn(`a ${thrice} b`)).toContain("api.example");
    expect(redactUrlsIn(`a ${encodeURIComponent(thrice)} b`)).not.toMatch(/SECRET|pw|api\.example/);
    expect(redactUrlsIn("a https%3A%2F%2Fu%3Apw%40h%E0%A4%A b")).toBe("a https%3A%2F%2F b");
  });

  it("with its colon raw before encoded slashes (a path segment's encoding), or scheme-relative, is cut too", () => {
    const segment = "https:%2F%2Fu:pw@evil.example%2Fx%3Fkey=SECRET";
    expect(redactUrlsIn(`callback ${segment} failed`)).toBe("callback https%3A%2F%2Fevil.example%2Fx failed");
    expect(redactUrl(`https://api.example/cb/${segment}`)).toBe(
      "https://api.example/cb/https%3A%2F%2Fevil.example%2Fx",
    );
    expect(redactUrlsIn("via %2F%2Fu%3Apw%40cdn.example%2Fx%3Fsig%3DS now")).toBe("via %2F%2Fcdn.example%2Fx now");
    expect(redactUrlsIn("a %2F%2Fu%3Apw%40h%E0%A4%A b")).toBe("a %2F%2F b");
    expect(redactUrlsIn("ratio:%2Fx and a%2F%2Fb stay")).toBe("ratio:%2Fx and a%2F%2Fb stay");
    // Encoded twice as a path segment; and a plain URL whose password is encoded loses it whole.
    expect(redactUrlsIn("cb https:%252F%252Fu:pw@host%252Fx%253Fkey=K")).toBe("cb https%253A%252F%252Fhost%252Fx");
    expect(redactUrl("https:%2F%2Fu:pw@evil.example%2Fx%3Fkey=S")).toBe("https%3A%2F%2Fevil.example%2Fx");
    expect(redactUrlsIn("GET https://admin:p%40ss%3Aword@api.example/v1?key=K")).toBe("GET https://api.example/v1");
  });

  it("leaves one without secrets, and text that only looks encoded, as it is", () => {
    expect(redactUrlsIn("see https%3A%2F%2Fapi.example%2Fv1 now")).toBe("see https%3A%2F%2Fapi.example%2Fv1 now");
    expect(redactUrlsIn("100%3A 50%2F")).toBe("100%3A 50%2F");
  });
});

describe("redactErrorChain: a message set to a URL", () => {
  it("is cut as a URL field is", () => {
    const error = new TypeError("x");
    (error as { message: unknown }).message = new URL("https://u:pw@api.example/v1?api_key=SECRET");
    const cut = redactErrorChain(error) as { message: unknown };
    expect(String(cut.message)).toBe("https://api.example/v1");
  });

  it("in a frozen error, is cut in the copy", () => {
    const error = new TypeError("x");
    (error as { message: unknown }).message = new URL("https://api.example/v1?api_key=SECRET");
    Object.freeze(error);
    const cut = redactErrorChain(error) as Error;
    expect(cut).not.toBe(error);
    expect(cut.message).toBe("https://api.example/v1");
  });
});
