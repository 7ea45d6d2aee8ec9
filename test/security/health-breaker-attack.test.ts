/**
 * Outside-in attack on the promises of docs/health-and-events.md,
 * docs/breakers.md and the README's sentences on health(), events, per-host
 * and named breakers, bulkheads and `memoryStore`. Public entries only; the
 * transport is a stub (the host names under test are not dialable) and time
 * moves only on a `TestClock`. Each `it.fails` pins a defect: it asserts the
 * documented behaviour and fails while the defect exists.
 */
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createResilience, isCircuitOpenError, memoryStore } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

/** A transport that records each URL and answers with `answer(n)` (1-based). */
function stub(answer: (n: number) => Response | Promise<Response>) {
  const urls: string[] = [];
  const fetch = (input: RequestInfo | URL): Promise<Response> => {
    urls.push(input instanceof Request ? input.url : String(input));
    return Promise.resolve(answer(urls.length));
  };
  return { urls, fetch };
}

const unavailable = (headers: Record<string, string> = {}) => new Response("busy", { status: 503, headers });
const ONE_HOUR = { "retry-after": "3600" };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("health(): every breaker listed, whatever its key", () => {
  // docs/health-and-events.md: "`health()` returns plain JSON: `status` (`unhealthy` when a
  // breaker is open, …), … every breaker (`state`, `failureCount`, …)". A host named
  // `__proto__` is a valid URL host (the URL parser keeps it), so a caller fetching a
  // user-given URL can meet it: its breaker is assigned into a plain object literal, where
  // `__proto__` is the prototype setter, so it vanishes from health() and its JSON, and an
  // open one no longer makes the layer unhealthy.
  it("lists an open breaker of the host `__proto__` and reports the layer unhealthy", async () => {
    const clock = new TestClock(0);
    const t = stub(() => unavailable());
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 1 }, fetch: t.fetch });
    await clock.run(resilience.fetch("http://__proto__/a"));
    // The breaker is open: the next call is refused without being sent.
    expect(isCircuitOpenError(await rejection(clock.run(resilience.fetch("http://__proto__/a"))))).toBe(true);
    expect(t.urls).toHaveLength(1);
    const health = resilience.health();
    expect(Object.keys(health.breakers)).toEqual(["__proto__"]);
    expect(JSON.stringify(health.breakers)).toContain('"__proto__":{"state":"open"');
    expect(health.status).toBe("unhealthy");
  });

  // docs/breakers.md: "Named breakers share `health().breakers` with the per-host ones".
  it("lists a named breaker called `__proto__`", () => {
    const resilience = createResilience({ clock: new TestClock(0) });
    resilience.breaker("__proto__");
    resilience.breaker("upscaler");
    expect(Object.keys(resilience.health().breakers).sort()).toEqual(["__proto__", "upscaler"]);
  });
});

describe("Retry-After holds (docs/breakers.md)", () => {
  // docs/breakers.md: "A 429/503 whose `Retry-After` exceeds `maxRetryAfter` holds the host
  // open until then." The hold is only taken while deciding on a retry, so a call made with
  // `retry: false` never holds the host: the next call is sent into the hour-long wait.
  it("holds the host open after a 503 Retry-After: 3600 with retry: false", async () => {
    const clock = new TestClock(0);
    const t = stub(() => unavailable(ONE_HOUR));
    const resilience = createResilience({ clock, retry: false, fetch: t.fetch });
    const res = await clock.run(resilience.fetch("http://api.example/a"));
    expect(res.status).toBe(503);
    expect(resilience.health().breakers["api.example"]).toMatchObject({ state: "open", openUntil: 3_600_000 });
    expect(await rejection(clock.run(resilience.fetch("http://api.example/a")))).toBeInstanceOf(CircuitOpenError);
    expect(t.urls).toHaveLength(1);
  });

  // Same sentence: the last attempt of a retried call is never considered for a retry,
  // so its Retry-After is ignored too.
  it("holds the host open when the Retry-After comes on the call's last attempt", async () => {
    const clock = new TestClock(0);
    const t = stub((n) => (n === 1 ? unavailable() : unavailable(ONE_HOUR)));
    const resilience = createResilience({ clock, retry: { maxAttempts: 2, jitter: "none" }, fetch: t.fetch });
    const res = await clock.run(resilience.fetch("http://api.example/a"));
    expect(res.status).toBe(503);
    expect(t.urls).toHaveLength(2);
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
    expect(await rejection(clock.run(resilience.fetch("http://api.example/a")))).toBeInstanceOf(CircuitOpenError);
    expect(t.urls).toHaveLength(2);
  });

  // A plain `it`: the hold does happen when a retry is being decided (the promise's main path).
  it("holds the host open when the Retry-After comes on a first attempt with retries left", async () => {
    const clock = new TestClock(0);
    const t = stub(() => unavailable(ONE_HOUR));
    const resilience = createResilience({ clock, fetch: t.fetch });
    await clock.run(resilience.fetch("http://api.example/a"));
    expect(await rejection(clock.run(resilience.fetch("http://api.example/a")))).toBeInstanceOf(CircuitOpenError);
    expect(t.urls).toHaveLength(1);
  });
});

describe("secrets and clear errors under a custom breaker.key", () => {
  // SECURITY.md: "No secret in events, errors, `health()` or `debugInfo()` | URLs lose their
  // userinfo, query string and fragment (where keys such as `?api_key=` live) before they
  // reach any of them"; docs/retry.md: "Messages never show the URL's userinfo, query or
  // fragment". The check of `breaker.key(url)`'s result quotes the raw URL.
  it("a breaker.key returning '' is refused without quoting the URL's query key", async () => {
    const t = stub(() => new Response("ok"));
    const resilience = createResilience({ clock: new TestClock(0), breaker: { key: () => "" }, fetch: t.fetch });
    const error = await rejection(resilience.fetch("http://api.example/a?api_key=SECRET-KEY"));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain("breaker.key");
    expect(inspect(error)).not.toContain("SECRET-KEY");
    expect(t.urls).toEqual([]);
  });

  // docs/retry.md: "The caller's own mistakes reject at once with a `TypeError` … an invalid
  // URL …; Messages never show the URL's userinfo, query or fragment". With a custom key the
  // URL parser's own error escapes: message "Invalid URL" (no library prefix, unlike the
  // default path's `resilience.fetch: invalid URL "…"`) and an `input` property holding the
  // whole URL, query key and all.
  it("an invalid URL under a custom breaker.key is refused clearly, with no query key on the error", async () => {
    const t = stub(() => new Response("ok"));
    const resilience = createResilience({
      clock: new TestClock(0),
      breaker: { key: (url) => url.hostname },
      fetch: t.fetch,
    });
    const error = await rejection(resilience.fetch("http://api exa mple/a?api_key=SECRET-KEY"));
    expect(error).toBeInstanceOf(TypeError);
    expect(inspect(error)).not.toContain("SECRET-KEY");
    expect((error as Error).message).toMatch(/^resilience\.fetch: invalid URL/);
    expect(t.urls).toEqual([]);
  });
});

describe("named breakers: execute(fn)", () => {
  // docs/breakers.md: "`resilience.breaker(name, options?)` gives a named breaker for any async
  // work (`execute(fn)`, …)"; docs/retry.md: "The caller's own mistakes reject at once with a
  // `TypeError` … and are never retried nor counted against the host's breaker", as
  // `resilience.execute(42)` is refused at once. `breaker.execute(undefined)` takes a permit,
  // then calls the non-function: the TypeError counts as a failure and opens the breaker.
  it("refuses a non-function at once, without counting it against the breaker", async () => {
    const clock = new TestClock(0);
    const resilience = createResilience({ clock });
    const changes: unknown[] = [];
    resilience.on("breaker", (event) => changes.push(event));
    const breaker = resilience.breaker("upscaler", { failureThreshold: 1 });
    const error = await rejection(Promise.resolve().then(() => breaker.execute(undefined as never)));
    expect(error).toBeInstanceOf(TypeError);
    expect(breaker.state).toBe("closed");
    expect(resilience.health().breakers.upscaler).toMatchObject({ state: "closed", consecutiveFailures: 0 });
    expect(changes).toEqual([]);
    expect(await breaker.execute(() => "upscaled")).toBe("upscaled");
  });
});

describe("memoryStore with a bulkhead (docs/breakers.md)", () => {
  // docs/breakers.md: "`store: memoryStore()` shares transitions between `Resilience`
  // instances …: a host one opened is open for all" and "OPEN fails fast with
  // `CircuitOpenError` and sends nothing". Instance B reads the store only after its
  // bulkhead granted a slot: with its slot held by a slow call, a call to the host that A
  // opened (and that B's own health() already shows open) waits in B's queue for as long as
  // the slow call lasts, instead of failing fast.
  it("a call to a host another instance opened fails fast even while the bulkhead is full", async () => {
    const clock = new TestClock(0);
    const store = memoryStore();
    const a = createResilience({
      clock,
      retry: false,
      store,
      breaker: { failureThreshold: 1 },
      fetch: async () => unavailable(),
    });
    const pending: Array<(response: Response) => void> = [];
    let sent = 0;
    const b = createResilience({
      clock,
      retry: false,
      store,
      breaker: { failureThreshold: 1 },
      bulkhead: { maxConcurrent: 1, maxQueue: 5 },
      fetch: () => {
        sent++;
        return new Promise<Response>((resolve) => pending.push(resolve));
      },
    });
    const slow = b.fetch("http://api.example/slow");
    await clock.advance(0);
    expect(sent).toBe(1);
    await a.fetch("http://api.example/a");
    expect(a.health().breakers["api.example"]?.state).toBe("open");
    let outcome: unknown = "pending";
    const second = b.fetch("http://api.example/b").then(
      (res) => res.status,
      (error: unknown) => error,
    );
    void second.then((value) => {
      outcome = value;
    });
    try {
      await clock.advance(0);
      expect(b.health().breakers["api.example"]?.state).toBe("open");
      expect(outcome).toBeInstanceOf(CircuitOpenError);
      expect(b.health().breakers["api.example"]?.queued).toBe(0);
    } finally {
      // Settle everything, whatever the assertions found.
      for (const resolve of pending.splice(0)) resolve(new Response("ok"));
      await (await slow).text();
      await second;
    }
    expect(sent).toBe(1);
  });
});
