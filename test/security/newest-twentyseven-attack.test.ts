/**
 * Outside-in attack on the fixes of session twenty-seven (what a breaker store throws, a hop's held 503, a
 * chain's `respond` answer checked, the chain's "stopped after" reason, the CORS hint's origin and trim, the
 * redaction's bounds and non-enumerable fields, the proxy's and the kit's quoted URLs).
 * Docs: docs/breakers.md ("Its `publish`, `peek` and `record` run on the request's path: what they throw
 * fails the call, which `health()` counts as a failed call (whatever the error's class)"), docs/fallback.md
 * (`respond` "answers with no `Response` fetch would give (… any other value)"; "a chain that stopped early says
 * after which endpoint and why"; hedge "the others are aborted"), docs/options.md (`fetch`: "an answer that is
 * no `Response` … is a network error"), SECURITY.md ("Nothing outlives its call"; "Objects an error holds"),
 * docs/browsers-and-cors.md (the hint), docs/cloudflare.md (route keys), the testing kit's `upstream()` and
 * `corsPreflight`.
 * How: `createResilience` with a `BreakerStore` of one's own that throws (objects and primitives, per key and
 * operation), `fallback` (./fallback), `resilientProxy` (./cloudflare), `createClient` (./ky), `TestClock`,
 * `upstream`, `corsPreflight` (./testing); real 127.0.0.1 servers for redirects; transports that throw errors
 * shaped to probe the redaction (frozen, non-enumerable, `__proto__` and symbol keys, getters that throw).
 * Paths: plain call, retry (with a `retryOn.error` of one's own), chain, hedged chain, redirect hop to a
 * half-open host (real servers), `Request` input, the proxy's chain route, the ky client, the testing kit.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: all eleven fixed in code: a store's thrown primitive wrapped and known; a hedge's launch that throws aborts the running endpoint; a hop's store failure no failure of the first host; a chain stopped by its store says so; answers need a body to read; redaction defines fields (a __proto__ one, symbol keys) and reads errors once; self.origin read only when a string):
 * 1. docs/breakers.md "Its `publish`, `peek` and `record` run on the request's path: what they throw fails the
 *    call". Observed: a store that throws a primitive (a string, a number, `null`) is moved on from by a chain:
 *    the call is served by the next endpoint (through `resilience.fetch` and the proxy's chain route alike).
 *    `isStoreFailure` (stores/unawaited-store.ts) remembers only objects in a WeakSet (`marked` skips
 *    primitives), so `mayMoveOn` (fallback/try-endpoints.ts) reads the thrown string as any endpoint failure.
 * 2. Same sentence, retry path. Observed: with a `retryOn.error` of one's own that retries every error, a
 *    store whose `record` throws a string once has the attempt retried and the call resolves 200 (a
 *    `TypeError` object is not retried): `decideRetry`'s `isStoreFailure` check misses primitives. (Fixed by
 *    wrapping such a value in an `Error` that holds it as its cause, never quoted: the test reads that message.)
 * 3. docs/fallback.md (`respond`) "so does one that answers with no `Response` fetch would give (`undefined`,
 *    the Cache API's miss; `Response.error()`; any other value)". Observed: a plain object
 *    `{ status: 200, headers: new Headers() }` from `respond` is returned to the caller as the call's answer (no
 *    `Response`, b never tried). `answerOf` (http/send/answer-of.ts) reads an answer by shape only.
 * 4. docs/options.md (`fetch`) "an answer that is no `Response` (or a `Response.error()`) is a network error".
 *    Observed: the same plain object from the transport reaches the caller of a plain call. Same cause.
 * 5. docs/fallback.md (hedge) "the first acceptable answer wins and the others are aborted" and SECURITY.md
 *    "Nothing outlives its call". Observed: in a hedged chain, a store whose `peek` throws for the next
 *    endpoint when the hedge starts ends the call (it rejects), but the endpoint already running is never
 *    aborted: its request runs on after the call settled. The throw leaves `FallbackChain.#hedged` from
 *    `launch()` (`#launchable` → `skip` → `skipReason` → `registry.known` → `peek`) with no `stopHedges`.
 * 6. docs/breakers.md "what they throw fails the call, which `health()` counts as a failed call". Observed: a
 *    store whose `record` throws for a redirect hop's half-open host also counts as a failure of the first
 *    host, which answered its redirect: its breaker (`failureThreshold: 1`) opens, with a `breaker` event and
 *    `lastError` "TypeError", where the same store throw on the first host's own answer touches no breaker.
 *    The hop's throw leaves `follow` (follow-redirects.ts) into `sendAttempt`'s transport `catch`, which
 *    calls `breaker.reportError` on the first host's permit.
 * 7. docs/fallback.md "a chain that stopped early says after which endpoint and why: the request had no
 *    `Idempotency-Key`, or its body could be sent only once". Observed: a GET without a body whose chain a
 *    store's `TypeError` stopped says "which may have processed the request (its body could be sent only
 *    once)"; a keyless POST's says "only one with an Idempotency-Key moves on": neither is why it stopped.
 *    `served` (try-endpoints.ts) picks the reason from the request alone.
 * 8. SECURITY.md "The redaction rewrites an error's message, stack, causes and its own string and `URL`
 *    fields (those defined not enumerable too)". Observed: an own field named `__proto__` (as `JSON.parse` or
 *    `defineProperty` make one) keeps its URL's key: `urlFields` writes it into a plain object, where
 *    `fields.__proto__ = …` sets no own key, so the cut is never applied nor noticed.
 * 9. Same sentence. Observed: an own symbol-keyed string field (`util.inspect` prints it) keeps its key:
 *    `urlFields` walks `Object.getOwnPropertyNames`, not the symbols.
 * 10. SECURITY.md "(an error's causes included …)". Observed: a frozen cause under an error whose `errors`
 *    getter throws keeps its key: the cause's cut copy is made, but the link above is "left as it is" before
 *    the copy is put in (redactOne reads `e.errors` after redacting the cause, and the throw skips the assignment).
 * 11. docs/browsers-and-cors.md "When such a call rejects with `RetryExhaustedError` in a page and its URL is
 *    of another origin, the error's message ends with a hint" (the hint reads `self.origin`, else
 *    `location.origin`). Observed: with `self.origin` replaced by a value that is no string (`var origin = 1`
 *    in a classic script replaces it), no hint at all: `pageOrigin` takes `self.origin ?? location.origin`,
 *    and drops a non-string instead of falling back to `location.origin`.
 *
 * Held (plain `it`):
 * - A store's `TypeError` (from `record`, or `peek` before the attempt) stops a chain (b never sent) on plain,
 *   `Request`-input and hedged runs, and the proxy's chain route; with `retryOn.error` retrying everything it
 *   is not retried; `health()` counts one failed call and one `request` event fires.
 * - Hedged: a store that throws on the hedge's own answer fails the call and aborts the endpoint still running.
 * - The ky client: a store's `TypeError` fails its call after one request.
 * - `respond` answering a `Response` subclass, or a `Proxy` around a `Response`, is served as it is.
 * - Redaction: an `AggregateError` listing itself, a secret 32 causes deep, 999 errors in one
 *   `AggregateError`, a frozen error with a non-enumerable `url` (the replacement carries it cut), a getter
 *   that throws beside a non-enumerable `path`.
 * - CORS hint with `self.origin` "null" (a sandboxed page) names the origin `null`, for the page's own server.
 * - The kit's `corsPreflight().respond` refuses `content-type: text/plain` followed by a vertical tab or a
 *   form feed (both taken by `trim()`, neither by the browser), and lets `text/plain` followed by a tab go.
 * - The proxy's unknown route key and the kit's `upstream()` refusal quote a URL without its query.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { corsPreflight, TestClock, upstream } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

afterEach(() => {
  vi.unstubAllGlobals();
});

const SECRET = "SECRET-k3y";

/** A store of one's own: `thrown(op, key)` is what `op` throws for `key` (`undefined`: nothing). */
function throwingStore(thrown: (op: string, key: string) => unknown): BreakerStore & { throws: number } {
  const self = {
    name: "mine",
    throws: 0,
    publish(key: string) {
      raise("publish", key);
    },
    peek(key: string) {
      raise("peek", key);
      return undefined;
    },
    record(key: string) {
      raise("record", key);
    },
  };
  // A sentinel object for "nothing": a store may well throw `undefined`, which is not tried here.
  function raise(op: string, key: string): void {
    const t = thrown(op, key);
    if (t === NOTHING) return;
    self.throws++;
    throw t;
  }
  return self;
}
const NOTHING = Symbol("nothing");

/** A transport: `https://a.example` answers with `a()`, anything else 200 "b"; every URL sent is logged. */
function twoHosts(a: () => unknown = () => new Response("a")) {
  const sent: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    sent.push(request.url);
    if (request.url.startsWith("https://a.example")) return a() as Response;
    return new Response("b");
  };
  return { fetch, sent };
}

const chainAB = (hedge?: { delay: number }) =>
  fallback([
    {
      name: "c",
      hedge,
      endpoints: [
        { name: "a", url: "https://a.example/v1" },
        { name: "b", url: "https://b.example/v1" },
      ],
    },
  ]);

const outcome = (p: Promise<Response>) =>
  p.then(
    (res) => ({
      status: res.status,
      endpoint: getResilienceInfo(res)?.endpoint,
      error: undefined as string | undefined,
    }),
    (e: unknown) => ({ status: undefined, endpoint: undefined, error: String((e as Error)?.message ?? e) }),
  );

describe("what a breaker store throws fails the call", () => {
  it("a primitive thrown by `record` ends a chain: neither resilience.fetch nor the proxy moves on to b", async () => {
    for (const thrown of ["redis down", 42, null]) {
      const store = throwingStore((op, key) => (op === "record" && key === "a.example" ? thrown : NOTHING));
      const { fetch, sent } = twoHosts();
      const r = createResilience({ fetch, store, retry: false, fallback: chainAB() });
      const out = await outcome(r.fetch("https://a.example/v1/x"));
      expect(out.endpoint).toBeUndefined();
      expect(sent).toEqual(["https://a.example/v1/x"]);

      const viaProxy = twoHosts();
      const proxy = resilientProxy({
        routes: [
          {
            path: "/v1",
            chain: {
              name: "c",
              endpoints: [
                { name: "a", url: "https://a.example/v1" },
                { name: "b", url: "https://b.example/v1" },
              ],
            },
          },
        ],
        store: () => throwingStore((op, key) => (op === "record" && key === "a.example" ? thrown : NOTHING)),
        resilience: { fetch: viaProxy.fetch, retry: false },
      });
      const res = await proxy.fetch(new Request("https://worker.example/v1/x"), {}, { waitUntil: () => {} });
      expect(res.headers.get("x-resilience-endpoint")).not.toBe("b");
      expect(viaProxy.sent).toEqual(["https://a.example/v1/x"]);
    }
  });

  it("a TypeError thrown by `record` or `peek` ends a chain (plain, Request input, hedged): b is never sent", async () => {
    for (const op of ["record", "peek"]) {
      for (const input of ["url", "request", "hedged"] as const) {
        const clock = new TestClock();
        const store = throwingStore((o, key) =>
          o === op && key === "a.example" ? new TypeError("redis down") : NOTHING,
        );
        const { fetch, sent } = twoHosts();
        const r = createResilience({
          clock,
          fetch,
          store,
          retry: false,
          fallback: chainAB(input === "hedged" ? { delay: 10 } : undefined),
        });
        const requests: string[] = [];
        r.on("request", (e) => requests.push(e.outcome));
        const pending = outcome(
          r.fetch(input === "request" ? new Request("https://a.example/v1/x") : "https://a.example/v1/x"),
        );
        await clock.advance(20);
        const out = await pending;
        expect(out.error).toContain("redis down");
        expect(sent.filter((u) => u.startsWith("https://b.example"))).toEqual([]);
        expect(requests).toEqual(["error"]);
        expect(r.health().errorRate).toBe(1);
      }
    }
  });

  it("the proxy's chain route: a store's TypeError does not move on to b", async () => {
    const { fetch, sent } = twoHosts();
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        },
      ],
      store: () =>
        throwingStore((op, key) => (op === "record" && key === "a.example" ? new TypeError("redis down") : NOTHING)),
      resilience: { fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://worker.example/v1/x"), {}, { waitUntil: () => {} });
    expect(res.headers.get("x-resilience-endpoint")).not.toBe("b");
    expect(sent).toEqual(["https://a.example/v1/x"]);
  });

  it("a string thrown once by `record` is not retried, even by a retryOn.error that retries every error", async () => {
    const clock = new TestClock();
    let once = true;
    const store = throwingStore((op) => {
      if (op !== "record" || !once) return NOTHING;
      once = false;
      return "redis down";
    });
    const { fetch, sent } = twoHosts();
    const r = createResilience({
      clock,
      fetch,
      store,
      retry: { maxAttempts: 3, initialDelay: 1, jitter: "none", retryOn: { error: () => true } },
    });
    const pending = outcome(r.fetch("https://a.example/v1/x"));
    for (let k = 0; k < 5; k++) await clock.advance(5);
    const out = await pending;
    // "what they throw fails the call": with the store's error, after the one attempt it failed
    // (a value that is no object is wrapped in an Error, never quoted; it is that Error's cause).
    expect({ sent: sent.length, error: out.error }).toEqual({
      sent: 1,
      error: expect.stringContaining("the breaker store threw a value that is no Error"),
    });
  });

  it("a TypeError thrown once by `record` is not retried by a retryOn.error that retries every error", async () => {
    const clock = new TestClock();
    let once = true;
    const store = throwingStore((op) => {
      if (op !== "record" || !once) return NOTHING;
      once = false;
      return new TypeError("redis down");
    });
    const { fetch, sent } = twoHosts();
    const r = createResilience({
      clock,
      fetch,
      store,
      retry: { maxAttempts: 3, initialDelay: 1, jitter: "none", retryOn: { error: () => true } },
    });
    const pending = outcome(r.fetch("https://a.example/v1/x"));
    for (let k = 0; k < 5; k++) await clock.advance(5);
    const out = await pending;
    expect(out.error).toContain("redis down");
    expect(sent).toHaveLength(1);
  });

  it("the ky client: a store's TypeError fails its call after one request", async () => {
    const { fetch, sent } = twoHosts();
    const r = createResilience({
      fetch,
      store: throwingStore((op) => (op === "record" ? new TypeError("redis down") : NOTHING)),
    });
    const api = createClient({ resilience: r });
    const error = await api.get("https://a.example/v1/x").then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(error?.message)).toContain("redis down");
    expect(sent).toHaveLength(1);
  });
});

describe("hedged chains and a store that throws", () => {
  /** A transport whose requests hang until aborted; `log` says when each started and was aborted. */
  function hanging() {
    const log: string[] = [];
    const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const url = input instanceof Request ? input.url : String(input);
      const host = new URL(url).host;
      log.push(`start ${host}`);
      const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
      if (host === "b.example") return Promise.resolve(new Response("b"));
      return new Promise((_, reject) =>
        signal?.addEventListener("abort", () => {
          log.push(`abort ${host}`);
          reject(signal.reason);
        }),
      );
    };
    return { fetch, log };
  }

  it("a `peek` that throws as the hedge starts ends the call, and the endpoint still running is aborted", async () => {
    const clock = new TestClock();
    const { fetch, log } = hanging();
    let armed = false;
    const store = throwingStore((op, key) =>
      armed && op === "peek" && key === "b.example" ? new TypeError("redis down") : NOTHING,
    );
    const r = createResilience({ clock, fetch, store, retry: false, fallback: chainAB({ delay: 10 }) });
    armed = true;
    let settled = "";
    const pending = outcome(r.fetch("https://a.example/v1/x")).then((o) => {
      settled = o.error ?? String(o.status);
    });
    for (let k = 0; k < 6; k++) await clock.advance(5);
    await pending;
    expect(settled).toContain("redis down");
    // The call settled: "the others are aborted", "Nothing outlives its call".
    expect(log).toContain("abort a.example");
  });

  it("a `record` that throws on the hedge's answer fails the call and aborts the endpoint still running", async () => {
    const clock = new TestClock();
    const { fetch, log } = hanging();
    const store = throwingStore((op, key) =>
      op === "record" && key === "b.example" ? new TypeError("redis down") : NOTHING,
    );
    const r = createResilience({ clock, fetch, store, retry: false, fallback: chainAB({ delay: 10 }) });
    const pending = outcome(r.fetch("https://a.example/v1/x"));
    for (let k = 0; k < 6; k++) await clock.advance(5);
    const out = await pending;
    expect(out.error).toContain("redis down");
    expect(log).toEqual(["start a.example", "start b.example", "abort a.example"]);
  });
});

describe("a redirect hop to a half-open host whose store throws", () => {
  /** Opens B's breaker with one 500, then lets it go half-open; A redirects to B. */
  async function halfOpenB(store: BreakerStore, clock: TestClock) {
    const r = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1, timeout: 1000 } });
    B.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("x");
    });
    await r.fetch(`${B.base}/down`).catch(() => {});
    await clock.advance(1001);
    B.on((hit) => hit.res.end("ok"));
    A.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `${B.base}/there`);
      hit.res.end();
    });
    return r;
  }

  it("the store's throw fails the call, and is no failure of the first host (which answered its redirect)", async () => {
    const clock = new TestClock();
    let throwFor = "";
    const store = throwingStore((op, key) =>
      op === "record" && key === throwFor ? new TypeError("redis down") : NOTHING,
    );
    const r = await halfOpenB(store, clock);
    const changes: string[] = [];
    r.on("breaker", (e) => changes.push(`${e.key} ${e.from}->${e.to}`));
    throwFor = B.host;
    const out = await outcome(r.fetch(`${A.base}/start`));
    expect(out.error).toContain("redis down");
    expect(changes.filter((c) => c.startsWith(A.host))).toEqual([]);
    expect(r.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
  });

  it("the same store throw on the first host's own answer touches no breaker (the contrast)", async () => {
    const clock = new TestClock();
    const store = throwingStore((op, key) =>
      op === "record" && key === A.host ? new TypeError("redis down") : NOTHING,
    );
    const r = createResilience({ clock, store, retry: false, breaker: { failureThreshold: 1, timeout: 1000 } });
    const changes: string[] = [];
    r.on("breaker", (e) => changes.push(`${e.key} ${e.from}->${e.to}`));
    const out = await outcome(r.fetch(`${A.base}/own`));
    expect(out.error).toContain("redis down");
    expect(changes).toEqual([]);
    expect(r.health().breakers[A.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(r.health().errorRate).toBe(1);
  });
});

describe("a chain stopped by a store's throw says why", () => {
  it("a bodiless GET is not said to have stopped for a body sent once, nor a POST for want of a key", async () => {
    const store = throwingStore((op, key) =>
      op === "record" && key === "a.example" ? new TypeError("redis down") : NOTHING,
    );
    const { fetch } = twoHosts();
    const r = createResilience({ fetch, store, retry: false, fallback: chainAB() });
    const get = await outcome(r.fetch("https://a.example/v1/x"));
    expect(get.error).toContain("redis down");
    expect(get.error).not.toContain("its body could be sent only once");
    const post = await outcome(r.fetch("https://a.example/v1/x", { method: "POST", body: "x" }));
    expect(post.error).not.toContain("only one with an Idempotency-Key moves on");
  });
});

describe("a chain's `respond` answer is checked as a transport's", () => {
  const withRespond = (respond: () => unknown) => {
    const { fetch, sent } = twoHosts(() => new Response("busy", { status: 503 }));
    const r = createResilience({
      fetch,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "cache", respond: respond as () => Response },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });
    return { r, sent };
  };

  it("a plain object shaped like a Response from `respond` moves the call on to b", async () => {
    const { r, sent } = withRespond(() => ({ status: 200, type: "default", headers: new Headers() }));
    const res = await r.fetch("https://a.example/v1/x");
    expect(res).toBeInstanceOf(Response);
    expect(sent).toContain("https://b.example/v1/x");
  });

  it("a plain object shaped like a Response from the transport is a network error", async () => {
    const r = createResilience({
      fetch: async () => ({ status: 200, type: "default", headers: new Headers() }) as unknown as Response,
      retry: false,
    });
    const settled = await r.fetch("https://a.example/v1/x").then(
      (res) => res,
      (e: unknown) => e,
    );
    expect(settled).not.toHaveProperty("status", 200);
    expect(settled).toBeInstanceOf(Error);
  });

  it("a Response subclass, or a Proxy around a Response, from `respond` is served as it is", async () => {
    class Cached extends Response {}
    for (const make of [() => new Cached("cached"), () => new Proxy(new Response("cached"), {})]) {
      const { r, sent } = withRespond(make);
      const res = await r.fetch("https://a.example/v1/x");
      expect(getResilienceInfo(res)?.endpoint).toBe("cache");
      expect(await res.text()).toBe("cached");
      expect(sent).toEqual(["https://a.example/v1/x"]);
    }
  });
});

describe("redaction of errors", () => {
  /** What a plain call rejects with when its transport throws `error` (the redacted cause). */
  const causeOf = async (error: unknown) => {
    const r = createResilience({
      fetch: async () => {
        throw error;
      },
      retry: false,
    });
    const thrown = (await r.fetch("https://a.example/v1/x").catch((e: unknown) => e)) as Error;
    return thrown.cause as Record<PropertyKey, unknown>;
  };
  const leak = `https://h.example/p?key=${SECRET}`;

  it("an own field named __proto__ is cut", async () => {
    const error = new TypeError("fetch failed");
    Object.defineProperty(error, "__proto__", { value: leak, enumerable: true, writable: true, configurable: true });
    const cause = await causeOf(error);
    expect(String(Object.getOwnPropertyDescriptor(cause, "__proto__")?.value)).not.toContain(SECRET);
  });

  it("an own symbol-keyed string field is cut", async () => {
    const key = Symbol("url");
    const error = Object.assign(new TypeError("fetch failed"), { [key]: leak });
    const cause = await causeOf(error);
    expect(String(cause[key])).not.toContain(SECRET);
  });

  it("a frozen cause under an error whose `errors` getter throws is cut all the same", async () => {
    const inner = Object.freeze(new Error(`refused at ${leak}`));
    const outer = new TypeError("fetch failed", { cause: inner });
    Object.defineProperty(outer, "errors", {
      get() {
        throw new Error("unreadable");
      },
    });
    const cause = await causeOf(outer);
    expect(String((cause.cause as Error).message)).not.toContain(SECRET);
  });

  it("an AggregateError listing itself, a secret 32 causes deep and 999 errors are all cut", async () => {
    const self = new AggregateError([], "fetch failed");
    (self as { errors: unknown[] }).errors = [self, new Error(`at ${leak}`)];
    const selfCause = await causeOf(self);
    expect(JSON.stringify((selfCause.errors as Error[]).map((e) => e.message))).not.toContain(SECRET);

    // From the caller: thrown.cause is the transport's error; 31 more causes below it.
    let deep: Error = new Error(`at ${leak}`);
    for (let k = 0; k < 31; k++) deep = new Error(`layer ${k}`, { cause: deep });
    let link = (await causeOf(deep)) as unknown as Error;
    for (let k = 0; k < 31; k++) link = link.cause as Error;
    expect(link.message).not.toContain(SECRET);

    const many = new AggregateError(
      Array.from({ length: 999 }, (_, k) => new Error(k === 998 ? `at ${leak}` : "fine")),
      "fetch failed",
    );
    const manyCause = await causeOf(many);
    expect((manyCause.errors as Error[])[998]?.message).not.toContain(SECRET);
  });

  it("a frozen error with a non-enumerable url is replaced by one carrying it cut; a throwing getter beside a non-enumerable path", async () => {
    const frozen = new TypeError("fetch failed");
    Object.defineProperty(frozen, "url", { value: leak, enumerable: false });
    Object.freeze(frozen);
    const replaced = await causeOf(frozen);
    expect(replaced).not.toBe(frozen);
    expect(replaced.name).toBe("TypeError");
    expect(replaced.url).toBe("https://h.example/p");

    const odd = new TypeError("fetch failed");
    Object.defineProperty(odd, "url", {
      get() {
        throw new Error("no");
      },
    });
    Object.defineProperty(odd, "path", { value: leak, enumerable: false, writable: true });
    const cut = await causeOf(odd);
    expect(String(Object.getOwnPropertyDescriptor(cut, "path")?.value)).toBe("https://h.example/p");
  });
});

describe("the CORS hint's origin", () => {
  /** A call in a "page" (a `document` exists) whose transport fails as Chromium's does. */
  const pageCall = async (url: string) => {
    const r = createResilience({
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
      retry: false,
    });
    return ((await r.fetch(url).catch((e: unknown) => e)) as Error).message;
  };

  it("a sandboxed page (self.origin 'null') gets a hint for its own server, naming the origin null", async () => {
    vi.stubGlobal("document", {});
    vi.stubGlobal("origin", "null");
    vi.stubGlobal("location", { origin: "https://app.example" });
    const message = await pageCall("https://app.example/api");
    expect(message).toContain("must allow the origin null");
  });

  it("a self.origin replaced by a value that is no string falls back to location.origin", async () => {
    vi.stubGlobal("document", {});
    vi.stubGlobal("origin", 1);
    vi.stubGlobal("location", { origin: "https://app.example" });
    const message = await pageCall("https://api.example/v1");
    expect(message).toContain("must allow the origin https://app.example");
  });
});

describe("the testing kit and the proxy quote what they refuse", () => {
  it("corsPreflight().respond trims only tabs and spaces around a content-type", async () => {
    const strict = corsPreflight({ allowHeaders: [] });
    const fault = strict.respond(() => new Response("ok"));
    const ask = async (type: string) => {
      const request = new Request("https://api.example/v1", {
        method: "POST",
        body: "x",
        headers: { "content-type": type },
      });
      return (await fault(request, { attempt: 1 })).type;
    };
    expect(await ask("text/plain\u000b")).toBe("error");
    expect(await ask("text/plain\u000c")).toBe("error");
    expect(await ask("text/plain\t;charset=utf-8")).not.toBe("error");
  });

  it("the proxy's unknown route key and upstream()'s refusal quote a URL without its query", () => {
    const key = `https://h.example/p?key=${SECRET}`;
    const refusal = (make: () => unknown) => {
      try {
        make();
      } catch (e) {
        return String((e as Error).message);
      }
      return "not refused";
    };
    const proxyMessage = refusal(() =>
      resilientProxy({ routes: [{ path: "/v1", upstream: "https://a.example", [key]: 1 } as never] }),
    );
    expect(proxyMessage).toContain("https://h.example/p");
    expect(proxyMessage).not.toContain(SECRET);
    const kitMessage = refusal(() => upstream("GET", key, 5 as never));
    expect(kitMessage).toContain("https://h.example/p");
    expect(kitMessage).not.toContain(SECRET);
  });
});
