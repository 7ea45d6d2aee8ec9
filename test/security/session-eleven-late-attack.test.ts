/**
 * Outside-in attack on d95a941 (the fix of the session-eleven fixes): a trip
 * and its Retry-After hold as one `transition`; a breaker's reason as the
 * error's name ("thrown <type>" otherwise); the redaction's field scan
 * (throwing getters skipped, one-word fields read as URLs only when they
 * start like one, paths without userinfo); `redactUrlsIn` cutting a relative
 * URL's query/fragment and a `//user:pass@` in any text; option errors
 * (`ConfigError`) cutting only a URL the string starts with or a word from a
 * slash on; ky's synchronous errors through the whole error-chain redaction;
 * and docs/cloudflare.md's paragraph on store staleness and retries. Public
 * entries only, stub `fetch`, `TestClock`, the fakes of test/cloudflare.
 *
 * Tried and held (not kept): a 503 that trips (failureThreshold 2) with a
 * Retry-After longer than breaker.timeout is one `breaker` event, open until
 * the hold, gen 1, health() counts 2 in a row; with a timeout longer than the
 * hold, one event until the trip's time; under `durableObjectStore` the hold
 * that extended the trip reaches the object (`holdUntil`, its reason starts
 * with "Retry-After") and one that did not leaves the trip to the reported
 * failures (the object opens until the same time); a named breaker whose
 * work throws a string has reason "thrown string"; `/v1?key=`, `'/v1?key='`,
 * `[/v1?key=`, a tab or newline before it, `//user:pass@host` and
 * `https:\\user:pass@host` are cut; stack lines, `a/b`, `1/2`, Windows paths,
 * `// comment` and IPv6 URLs stay as written; `" /a".repeat(…)`, `" //a@"…`
 * and `"<//"…` stay linear; ky's sync TypeError for `/v1?key=` keeps its
 * class and identity (cut in place).
 *
 * Defects (each an `it.fails` on the code it was written against, asserting
 * the expected behaviour; all fixed):
 * 1. ky's synchronous TypeError for a relative URL that does not start with a
 *    slash (`api.get("jobs?api_key=…")`, a host without its scheme) keeps the
 *    key in its message, stack and `cause.input`, while `resilience.fetch`
 *    names the same URL as `invalid URL "jobs"` (SECURITY.md: "No secret in …
 *    errors … and so does the message of ky's own errors through
 *    createClient").
 * 2. Regression: a ConfigError for a fallback endpoint URL written without
 *    scheme or path (`"api.example?api_key=…"`) quotes the key whole; before
 *    d95a941 every word holding `?` was cut (SECURITY.md: "an option's
 *    ConfigError included (a relative or scheme-relative URL too)").
 * 3. `redactUrlsIn` is quadratic on text where every slash follows one of
 *    the characters its relative-URL pattern starts after (`"=/".repeat(…)`,
 *    also `(/`, `,/`, `"/`, `[/`, `'\`): a 50 KB error message from the
 *    transport holds `resilience.fetch` for about 1.5 s (100 KB: ~6 s)
 *    instead of < 250 ms (the pattern's own comment: "any text is read in
 *    linear time").
 * 4. A relative URL's query after a character the new pattern does not
 *    accept before it (a backtick, as in "`/v1/jobs?api_key=…`", or a colon,
 *    "url:/v1/jobs?api_key=…") reaches the caller whole in the
 *    RetryExhaustedError's message, stack and cause (SECURITY.md: "No secret
 *    in events, errors …").
 * 5. Error text that holds no query is changed: a question ending on a path
 *    ("is the socket at /var/run/docker.sock?") loses its `?` in the cause
 *    and the RetryExhaustedError (an empty query holds no key; the cut
 *    changes what the message says).
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const SECRET = "K3Y_SECRET_42";

/** The error a caller of `resilience.fetch` gets when the transport throws `make()`. */
async function transportError(make: () => Error): Promise<Error & { cause?: Error }> {
  const clock = new TestClock(0);
  const resilience = createResilience({
    clock,
    retry: false,
    fetch: async () => {
      throw make();
    },
  });
  return (await rejection(clock.run(resilience.fetch("https://h.example/")))) as Error & { cause?: Error };
}

/** Everything a logger would print of an error and its cause. */
function printed(error: Error & { cause?: Error }): string {
  const cause = error.cause;
  return JSON.stringify([error.message, error.stack, cause?.message, cause?.stack, { ...cause }]);
}

describe("ky's synchronous errors (defect 1)", () => {
  it("ky names a relative URL without a leading slash without its query, as resilience.fetch does", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, fetch: async () => new Response("{}") });
    const direct = (await rejection(resilience.fetch(`jobs?api_key=${SECRET}`))) as Error;
    expect(direct.message).not.toContain(SECRET); // the layer's own check cuts it
    const api = createClient({ resilience });
    for (const input of [`jobs?api_key=${SECRET}`, `api.example/v1/jobs?api_key=${SECRET}`]) {
      // ky throws this one synchronously, before any promise: caught as a rejection here.
      const error = (await rejection((async () => api.get(input))())) as Error & { cause?: { input?: string } };
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).not.toContain(SECRET);
      expect(error.stack ?? "").not.toContain(SECRET);
      expect(String(error.cause?.input)).not.toContain(SECRET);
    }
  });
});

describe("option errors (defect 2)", () => {
  it("a ConfigError for an endpoint URL written without its scheme does not quote its key", () => {
    const error = thrown(() =>
      fallback([{ name: "images", endpoints: [{ name: "a", url: `api.example?api_key=${SECRET}` }] }]),
    ) as Error;
    expect(error.name).toBe("ConfigError");
    expect(error.message).toContain("fallback.0.endpoints.0.url");
    expect(error.message).not.toContain(SECRET);
  });
});

describe("redaction of the transport's error text (defects 3-5)", () => {
  it("a 50 KB crafted error message is redacted in linear time (< 250 ms)", async () => {
    const junk = "=/".repeat(25_000); // 50 KB: every slash after a character a relative URL may follow
    const started = performance.now();
    const error = await transportError(() => {
      const e = new TypeError(junk);
      e.stack = "TypeError: fetch failed"; // the message alone is scanned twice (cause and wrapper)
      return e;
    });
    const elapsed = performance.now() - started;
    expect(error.name).toBe("RetryExhaustedError");
    expect(elapsed).toBeLessThan(250);
  }, 30_000);

  it("a relative URL quoted in backticks or after a colon loses its query", async () => {
    for (const message of [
      `request to \`/v1/jobs?api_key=${SECRET}\` failed`,
      `upstream refused url:/v1/jobs?api_key=${SECRET}`,
    ]) {
      const error = await transportError(() => new TypeError(message));
      expect(error.name).toBe("RetryExhaustedError");
      expect(printed(error)).not.toContain(SECRET);
    }
  });

  it("error text with no query (a question ending on a path) is left as written", async () => {
    const message = "is the socket at /var/run/docker.sock?";
    const error = await transportError(() => new TypeError(message));
    expect(error.cause?.message).toBe(message);
    expect(error.message.endsWith(message)).toBe(true);
  });
});
