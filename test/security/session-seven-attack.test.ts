/**
 * Outside-in attack on today's changes (b2d00a3..HEAD): the PLAIN_HOST
 * breaker key, Retry-After holds taken inside each attempt, the bulkhead's
 * open-breaker refusal, `breaker.key(url)` errors, chains matched as the URL
 * parser reads the URL (with a per-layer cache of parsed heads) and the
 * first endpoint's own `?key=`, `fallback()`'s refusal of `#fragment` and
 * `user:pass@`, and option messages that cut `user:pass@`. Public entries
 * only; the transport is a stub (the host names are not dialable) and time
 * moves only on a `TestClock`.
 *
 * Each `it.fails` pins a defect: it asserts the documented (or claimed)
 * behaviour, quoted above it, and fails while the library does otherwise.
 */
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, isCircuitOpenError, memoryStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A transport that records each URL it is given and answers with `answer(url)`. */
function stub(answer: (url: string) => Response) {
  const urls: string[] = [];
  const fetch = (input: RequestInfo | URL): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    urls.push(url);
    return Promise.resolve(answer(url));
  };
  return { urls, fetch };
}

/** The error `fn` throws (synchronously). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** Everything a caller or a log could see of an error. */
function everything(error: unknown): string {
  const e = error as { message?: unknown; path?: unknown };
  return [String(e.message), String(e.path), inspect(error)].join("\n");
}

const unavailableFor = (seconds: string) => new Response("busy", { status: 503, headers: { "retry-after": seconds } });

describe("chains matched as the URL parser reads the URL: the per-layer cache of parsed heads", () => {
  // Claim (src/fallback/chain-router.ts, docs/fallback.md): a call is matched "as the URL
  // parser reads it", and "a relative URL is read against the page's address, which may
  // change: never cached". But `http:/v1/x` is cached as "absolute" (it has a scheme),
  // although for the parser it is relative whenever the page is on http: (a special scheme
  // without `//` is resolved against a base of the same scheme). After the page's address
  // changes, the cached head still names the old host: the call is sent down a chain of a
  // host it no longer addresses (gen.example and its spare get the request, and the
  // caller's headers), while the breaker key and a browser's fetch both read other.example.
  it("a scheme-relative-looking URL (http:/v1/x) is re-read after the page's address changes", async () => {
    const g = globalThis as { location?: { href: string } };
    const clock = new TestClock(0);
    const t = stub((url) => new Response("x", { status: url.includes("gen.example") ? 503 : 200 }));
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "http://gen.example/v1" },
            { name: "spare", url: "http://spare.example/v1" },
          ],
        },
      ]),
    });
    try {
      g.location = { href: "http://gen.example/app/" };
      await clock.run(resilience.fetch("http:/v1/x"));
      // Read against gen.example, the URL is the chain's: primary, then spare.
      expect(t.urls).toEqual(["http://gen.example/v1/x", "http://spare.example/v1/x"]);
      g.location = { href: "http://other.example/app/" };
      await clock.run(resilience.fetch("http:/v1/x"));
      // Now it is http://other.example/v1/x: no chain, no request to gen.example or its spare.
      const second = t.urls.slice(2);
      expect(second).toHaveLength(1);
      expect(second.some((u) => u.includes("gen.example") || u.includes("spare.example"))).toBe(false);
      expect(Object.keys(resilience.health().breakers)).toContain("other.example");
    } finally {
      delete g.location;
    }
  });
});

describe("the first endpoint's own ?key= (docs/fallback.md)", () => {
  // docs/fallback.md: "Both are compared as the URL parser reads them, so … a `Request` are
  // routed by what they stand for. … (an endpoint's own query, `?key=…`, stays on it: a call
  // to the first endpoint's whole URL sends its key once, and to no other endpoint)". The
  // own query is compared as raw text with the call's query: a `Request` (or a `URL`, or a
  // ky call) of that very URL carries the query as the parser writes it (`'` becomes %27),
  // so the key is not recognised: the primary gets it twice and the spare gets the primary's
  // key. A string URL of the same address behaves as documented.
  it("a Request for the first endpoint's whole URL sends its key once, and not to the spare", async () => {
    const clock = new TestClock(0);
    const t = stub((url) => new Response("x", { status: url.includes("gen.example") ? 503 : 200 }));
    const resilience = createResilience({
      clock,
      retry: false,
      fetch: t.fetch,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://gen.example/v1?key=K'1" },
            { name: "spare", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    // The string form is handled: the key once, to the primary only.
    await clock.run(resilience.fetch("https://gen.example/v1?key=K'1"));
    expect(t.urls).toEqual(["https://gen.example/v1?key=K'1", "https://spare.example/v1"]);
    t.urls.length = 0;
    await clock.run(resilience.fetch(new Request("https://gen.example/v1?key=K'1")));
    const [primary, spare] = t.urls;
    expect(new URL(primary as string).searchParams.getAll("key")).toHaveLength(1);
    expect(spare).toBe("https://spare.example/v1");
  });
});

describe("fallback() refuses endpoint urls with user:pass@ (docs/fallback.md)", () => {
  // docs/fallback.md: "An endpoint `url` must be an absolute http(s) URL … without
  // `user:pass@` (credentials go in its `headers`): `fallback([…])` refuses either with a
  // `ConfigError`." The check looks for `//…@`, but the URL parser reads `https:user:pass@host`
  // and `https:\\user:pass@host` as URLs with credentials too: both are accepted, and every
  // call that reaches that endpoint then fails with fetch's credentials TypeError.
  it("refuses https:user:pass@host and https:\\\\user:pass@host like https://user:pass@host", () => {
    for (const url of ["https:user:pass@gen.example/v1", "https:\\\\user:pass@gen.example/v1"]) {
      expect(new URL(url).password).toBe("pass");
      expect(thrown(() => fallback([{ name: "gen", endpoints: [{ name: "primary", url }] }]))).toBeInstanceOf(
        ConfigError,
      );
    }
  });
});

describe("no secret in a ConfigError (docs/retry.md, option messages)", () => {
  // docs/retry.md: "Messages never show the URL's userinfo, query or fragment"; today's
  // claim: option messages "cut user:pass@ from the values they quote". The cut is
  // /\/\/[^/?#@]*@/: it stops at the first `@`, so a password holding `@` (the URL parser
  // takes the last `@` of the authority) leaves its tail in the message: "https://ss@…".
  it("a password holding @ is cut whole from the message", () => {
    const error = thrown(() =>
      fallback([{ name: "gen", endpoints: [{ name: "primary", url: "https://user:p@ssw0rd@gen.example/v1" }] }]),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(everything(error)).not.toContain("ssw0rd");
  });

  // Same sentence. The cut needs `//`: a URL the parser reads with credentials but written
  // without slashes (`https:user:pass@host`), refused for another reason (here its
  // #fragment), is quoted with its password.
  it("a password in https:user:pass@host is cut from the message too", () => {
    const error = thrown(() =>
      fallback([{ name: "gen", endpoints: [{ name: "primary", url: "https:user:hunter2@gen.example/v1#top" }] }]),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(everything(error)).not.toContain("hunter2");
  });

  // Same sentence, and docs/fallback.md names the endpoint's own `?key=…` as the place for
  // its API key. An endpoint url refused for its #fragment or its user:pass@ is quoted
  // with its query: the API key is in the ConfigError's message and stack.
  it("an endpoint url refused for a #fragment or user:pass@ is quoted without its ?key=", () => {
    for (const url of ["https://gen.example/v1?key=SECRET#top", "https://user:pass@gen.example/v1?key=SECRET"]) {
      const error = thrown(() => fallback([{ name: "gen", endpoints: [{ name: "primary", url }] }]));
      expect(error).toBeInstanceOf(ConfigError);
      expect(everything(error)).not.toContain("SECRET");
      expect(everything(error)).not.toContain("pass@");
    }
  });

  // docs/fallback.md: credentials "go in its `headers`". A header value refused (a token
  // read from a file or an environment variable with its trailing newline: the commonest
  // way to get one wrong) is quoted whole: the bearer token is in the ConfigError.
  it("a refused endpoint header value is not quoted (it is a credential)", () => {
    const error = thrown(() =>
      fallback([
        {
          name: "gen",
          endpoints: [
            // Changed in the thirtieth session: a line break around a value is trimmed, as fetch trims it; inside, refused.
            { name: "primary", url: "https://gen.example/v1", headers: { authorization: "Bearer sk-LIVE-123\nX" } },
          ],
        },
      ]),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("fallback.0.endpoints.0.headers.authorization");
    expect(everything(error)).not.toContain("sk-LIVE-123");
  });
});

describe("breaker.key(url): its errors name the URL redacted", () => {
  // Today's claim: "its bad return value's error shows the URL redacted"; docs/retry.md:
  // "Messages never show the URL's userinfo, query or fragment". The most natural mistake,
  // returning the URL object itself, is quoted with JSON.stringify, which calls URL#toJSON:
  // the message carries the whole href, ?key= included.
  it("a breaker.key returning the URL object is refused without the URL's query", async () => {
    const t = stub(() => new Response("ok"));
    const resilience = createResilience({
      clock: new TestClock(0),
      fetch: t.fetch,
      breaker: { key: ((url: URL) => url) as unknown as (url: URL) => string },
    });
    const error = await rejection(resilience.fetch("https://gen.example/v1?key=SECRET"));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/breaker\.key\(url\) must return a non-empty string/);
    expect(everything(error)).not.toContain("SECRET");
    expect(t.urls).toHaveLength(0);
  });
});

describe("Retry-After holds taken inside each attempt: what held", () => {
  // docs/breakers.md: "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host
  // open until then"; MAX_HOLD_MS: at most a day. Each header form, with retry: false.
  it("holds for a long delay or date (capped at a day), never for a bad, past, 2xx or 500 one", async () => {
    const T0 = 1_000_000;
    const DAY = 86_400_000;
    const cases: Array<[number, string, number | null]> = [
      [503, "3600", T0 + 3_600_000],
      [503, " 3600 ", T0 + 3_600_000],
      [503, "99999999999", T0 + DAY],
      [503, "9".repeat(400), T0 + DAY],
      [429, "Fri, 31 Dec 9999 23:59:59 GMT", T0 + DAY],
      [429, "Sunday, 06-Nov-94 08:49:37 GMT", T0 + DAY],
      [503, "Sun Nov  6 08:49:37 2094", T0 + DAY],
      [503, "-5", null],
      [503, "3600, 3600", null],
      [503, "Thu, 01 Jan 1970 00:00:00 GMT", null],
      [503, "60", null],
      [200, "3600", null],
      [500, "3600", null],
    ];
    for (const [status, header, openUntil] of cases) {
      const clock = new TestClock(T0);
      const t = stub(() => new Response("x", { status, headers: { "retry-after": header } }));
      const resilience = createResilience({ clock, retry: false, fetch: t.fetch });
      await clock.run(resilience.fetch("http://api.example/x"));
      expect([status, header, resilience.health().breakers["api.example"]?.openUntil]).toEqual([
        status,
        header,
        openUntil,
      ]);
    }
  });

  it("a hold during a half-open probe keeps the host open for the whole Retry-After; events say so", async () => {
    const clock = new TestClock(0);
    let n = 0;
    const t = stub(() => (++n === 1 ? new Response("x", { status: 500 }) : unavailableFor("3600")));
    const resilience = createResilience({ clock, retry: false, fetch: t.fetch, breaker: { failureThreshold: 1 } });
    const events: Array<{ from: string; to: string; openUntil: number | null }> = [];
    resilience.on("breaker", (e) => events.push({ from: e.from, to: e.to, openUntil: e.openUntil }));
    await clock.run(resilience.fetch("http://api.example/x"));
    await clock.advance(30_000);
    expect((await clock.run(resilience.fetch("http://api.example/x"))).status).toBe(503);
    // One opening for the probe's answer, until the Retry-After time (no second open→open event).
    expect(events.at(-1)).toEqual({ from: "half_open", to: "open", openUntil: 3_630_000 });
    expect(events.filter((e) => e.from === "open" && e.to === "open")).toEqual([]);
    await clock.advance(3_000_000);
    expect(isCircuitOpenError(await rejection(clock.run(resilience.fetch("http://api.example/x"))))).toBe(true);
    expect(t.urls).toHaveLength(2);
    expect(resilience.health()).toMatchObject({ status: "unhealthy", breakers: { "api.example": { state: "open" } } });
  });

  it("a hold on a chain's primary is shared through memoryStore() and skipped by the next call", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const t = stub((url) => (url.includes("gen.example") ? unavailableFor("3600") : new Response("ok")));
    const chains = () =>
      fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "http://gen.example/v1" },
            { name: "spare", url: "http://spare.example/v1" },
          ],
        },
      ]);
    const a = createResilience({ clock, retry: false, fetch: t.fetch, store, fallback: chains() });
    const b = createResilience({ clock, retry: false, fetch: t.fetch, store, fallback: chains() });
    expect((await clock.run(a.fetch("http://gen.example/v1/x"))).status).toBe(200);
    expect((await clock.run(a.fetch("http://gen.example/v1/x"))).status).toBe(200);
    expect((await clock.run(b.fetch("http://gen.example/v1/x"))).status).toBe(200);
    expect(t.urls).toEqual(["http://gen.example/v1/x", ...Array(3).fill("http://spare.example/v1/x")]);
    expect(b.health().breakers["gen.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
  });
});
