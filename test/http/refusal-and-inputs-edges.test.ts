/**
 * The edges of three rules the thirty-fifth session added, each pinned
 * where a mutation run (`docs/mutation.md`) found no test holding it: which
 * transport errors are the platform's refusal (undici's codes read whole,
 * from a string code only), what a refusal undoes (a stream body not sent
 * still goes to the next endpoint, no attempt counted), the inputs fetch
 * makes text of (an object whose text merely contains `[object …]`, one
 * whose type has no name), an
 * integrity mismatch on an answer without a body, and the ky client's
 * reading of `replaceOption` by its own symbol only.
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { isPlatformRefusal } from "../../src/http/send/failure-reason.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";

const withCause = (cause: unknown): TypeError => new TypeError("fetch failed", { cause });

describe("which transport errors are the platform's refusal", () => {
  it("undici's two codes, read whole, from a string code on a TypeError's cause", () => {
    expect(isPlatformRefusal(withCause({ code: "UND_ERR_INVALID_ARG" }))).toBe(true);
    expect(isPlatformRefusal(withCause({ code: "UND_ERR_NOT_SUPPORTED" }))).toBe(true);
    for (const code of ["UND_ERR_INVALID_ARGUMENT", "X_UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED_YET"]) {
      expect(isPlatformRefusal(withCause({ code })), code).toBe(false);
    }
    // A code that only becomes the text: not undici's.
    expect(isPlatformRefusal(withCause({ code: { toString: () => "UND_ERR_INVALID_ARG" } }))).toBe(false);
    expect(isPlatformRefusal(withCause(null))).toBe(false);
    expect(isPlatformRefusal(new Error("fetch failed", { cause: { code: "UND_ERR_INVALID_ARG" } }))).toBe(false);
  });

  it("a chain moves past a refused endpoint with its stream body unsent: the next one gets it, one attempt counted", async () => {
    const received: string[] = [];
    const clock = new TestClock(0);
    const resilience = createResilience({
      clock,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        if (request.url.startsWith("https://a.example")) {
          throw withCause(Object.assign(new Error("invalid keep-alive header"), { code: "UND_ERR_INVALID_ARG" }));
        }
        received.push(await request.text());
        return new Response("ok");
      },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    const body = new Blob(["the prompt"]).stream();
    const res = await clock.run(
      resilience.fetch("https://a.example/v1/jobs", { method: "POST", body, duplex: "half" } as RequestInit),
    );
    expect(await res.text()).toBe("ok");
    expect(received).toEqual(["the prompt"]);
    expect(getResilienceInfo(res)?.attempts).toBe(1);
  });
});

describe("inputs fetch makes text of", () => {
  const seen: Array<{ url: string; method: string; body: string }> = [];
  const resilience = createResilience({
    retry: false,
    fetch: async (input, init) => {
      const request = new Request(input, init);
      seen.push({ url: request.url, method: request.method, body: await request.text() });
      return new Response("ok");
    },
  });

  it("an object whose text only contains `[object …]` is sent to it", async () => {
    seen.length = 0;
    await resilience.fetch({ toString: () => "https://gen.example/a?tag=[object Foo]" } as unknown as string);
    expect(seen.map((s) => s.url)).toEqual(["https://gen.example/a?tag=[object%20Foo]"]);
    // One that starts with it is URL text too (relative, which Node's parser refuses, as fetch's does), no type named.
    const relative = await resilience
      .fetch({ toString: () => "[object Foo]/x" } as unknown as string)
      .catch((e: unknown) => e);
    expect(relative).toBeInstanceOf(TypeError);
    expect((relative as Error).message).not.toContain("expected a URL string");
  });

  it("an object with no text of its own, whose type has no name or will not say it, is refused as an `object`", async () => {
    const message = "resilience.fetch(input): expected a URL string, URL or Request, got object";
    await expect(resilience.fetch({ constructor: {} } as unknown as string)).rejects.toThrow(message);
    const hiding = {
      get constructor(): never {
        throw new Error("no");
      },
    };
    await expect(resilience.fetch(hiding as unknown as string)).rejects.toThrow(message);
  });
});

describe("an integrity mismatch on an answer without a body", () => {
  it("is fetch's network error, the mismatch named", async () => {
    const resilience = createResilience({ retry: false, fetch: async () => new Response(null, { status: 200 }) });
    const error = await resilience
      .fetch("https://gen.example/a", { integrity: "sha256-AAAAeyBcFs4y7UIAlCuLix4mLfxw2byfvHfElpmk8d8=" })
      .catch((e: unknown) => e);
    expect(String(((error as Error).cause as Error | undefined)?.message ?? (error as Error).message)).toContain(
      "integrity mismatch",
    );
  });
});

describe("the ky client reads replaceOption by its own symbol", () => {
  it("a headers record with another symbol key is checked as a record", async () => {
    const api = createClient({ resilience: { retry: false, fetch: async () => new Response("ok") } });
    const headers = { [Symbol("tag")]: true, value: "ignored", "x-bad": "a\nb" };
    await expect(
      (async () => api.get("https://gen.example/a", { headers: headers as unknown as HeadersInit }))(),
    ).rejects.toThrow('ky: header "x-bad" has a control character');
  });
});
