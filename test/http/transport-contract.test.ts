import { describe, expect, it } from "vitest";
import { createResilience, RetryExhaustedError } from "../../src/index.ts";

/**
 * A `fetch` option that breaks fetch's contract a little (throws instead of
 * rejecting, or answers with a Response instead of a promise of one) still
 * gives a call that settles like fetch: a promise, never a synchronous throw.
 */
describe("the transport's contract, loosely kept", () => {
  for (const redirects of ["library", "platform"] as const) {
    it(`a transport that throws makes the call reject, not throw (redirects: "${redirects}")`, async () => {
      const boom = new TypeError("boom");
      const resilience = createResilience({
        redirects,
        retry: { maxAttempts: 1 },
        fetch: () => {
          throw boom;
        },
      });
      let call: Promise<Response> | undefined;
      expect(() => {
        call = resilience.fetch("https://api.example/x");
      }).not.toThrow();
      const error = await call?.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RetryExhaustedError);
      expect((error as RetryExhaustedError).cause).toBe(boom);
      expect((error as RetryExhaustedError).attempts).toBe(1);
    });

    it(`a transport that answers with a Response, not a promise, is awaited like one (redirects: "${redirects}")`, async () => {
      const answer = new Response("ok", { status: 200 });
      const resilience = createResilience({
        redirects,
        fetch: (() => answer) as unknown as typeof fetch,
      });
      const response = await resilience.fetch("https://api.example/x");
      expect(response).toBe(answer);
      expect(await response.text()).toBe("ok");
    });
  }
});

describe("a Response of another make", () => {
  // `answerOf` knows a Response by `headers.get` (and its body and readers):
  // the follower reads a redirect's `Location` with that reader alone, so an
  // answer whose headers have no `has()` is followed, not a bare TypeError.
  it("a redirect whose headers have only get() is followed", async () => {
    const shaped = (status: number, location: string | null, text: string): Response => {
      const real = new Response(text);
      return {
        status,
        type: "basic",
        body: real.body,
        headers: { get: (name: string) => (name.toLowerCase() === "location" ? location : null) },
        clone: () => real.clone(),
        text: () => real.text(),
        json: () => real.json(),
        arrayBuffer: () => real.arrayBuffer(),
        blob: () => real.blob(),
      } as unknown as Response;
    };
    const seen: string[] = [];
    const resilience = createResilience({
      redirects: "library",
      retry: { maxAttempts: 1 },
      fetch: (async (input: RequestInfo | URL) => {
        const url = String(input);
        seen.push(url);
        return url.endsWith("/from") ? shaped(302, "/to", "") : new Response("arrived");
      }) as typeof fetch,
    });
    const response = await resilience.fetch("https://api.example/from");
    expect(seen).toEqual(["https://api.example/from", "https://api.example/to"]);
    expect(await response.text()).toBe("arrived");
  });
});
