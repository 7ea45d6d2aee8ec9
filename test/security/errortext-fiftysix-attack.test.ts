/**
 * Outside-in attack on how the layer turns thrown values into text on every path (transports, `transform`s,
 * `validate`s, `respond`s, `execute` work, ky hooks, the Worker proxy), with errors whose `name`, `stack`, `cause`
 * or `errors` are hostile: a Symbol `name` (V8 then throws when the stack is first read), getters that throw,
 * cycles, a `message` that is a `String` object, all quoting a URL with userinfo and a key in its query. Aimed at
 * what policiesdoc-fiftysix (a `message` that is no string) and hostileup-fortyone (hostile bytes) did not drive.
 *
 * Docs:
 * - SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their userinfo …, query
 *   string and fragment … before they reach any of them (an error's causes included, an `AggregateError`'s errors,
 *   … a platform error that quotes the URL has it cut, and so does a `fallback` event's reason, and `execute`'s
 *   `RetryExhaustedError` when its work's error names a URL)"; Limits, "Objects an error holds": "The redaction
 *   rewrites an error's message, stack, causes and its own string and `URL` fields … Other objects an error holds
 *   … and a thrown object that is no error (no string `message` or `stack`), kept as the `cause`: the message that
 *   quotes it is cut, its own `toString()` is not."
 * - docs/retry.md's error table: "`RetryExhaustedError` | the last attempt failed without a response (a network
 *   error) … | `attempts`, `endpoint` …, `cause`"; ky: "The layer's errors reach you as they are".
 * - docs/fallback.md: "rejects with `FallbackExhaustedError` (`errors` per endpoint …)"; "When every endpoint
 *   failed, the call resolves with the last response any endpoint gave".
 * - docs/health-and-events.md: "`request` fires once per call the layer started, when it settles (`status` or
 *   `error`, …)"; "A listener that throws … never breaks the request".
 * - src/ky/index.ts JSDoc of `createClient`: "A ky instance whose transport is `resilience.fetch`, with ky's own
 *   retry off …"; src/core/errors.ts JSDoc of `unlessThrows`: "Work and transports may throw anything (a revoked
 *   Proxy, an error whose `name` getter throws): looking at such a value must not end, or change, the call that
 *   met it."
 * - src/cloudflare/failure-response.ts JSDoc: "anything else: `502`".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy` and `failureResponse` (./cloudflare), `TestClock` and `recordEvents` (./testing). Two node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts). The `fetch` option is a transport of the test's own that
 * sends with the real fetch (the server sees the request), then throws a hostile error quoting the URL it was given,
 * as a client wrapper does. `maxAttempts: 1` everywhere: no wait, no timer.
 *
 * Paths: plain GET, a `Request` input (PUT with a body), a redirect hop the layer follows, a degradation rewrite,
 * a fallback chain (`transform` throwing, a hedge whose transport throws, `validate` and `respond` throwing),
 * `execute(fn)`, the ky client (transport and a `beforeRequest` hook), `resilientProxy` (502 body, headers, its
 * health endpoint), `failureResponse(error)` called directly.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-sixth session, so plain `it`):
 * 1. SECURITY.md "URLs lose their userinfo …, query string … before they reach any of them (an error's causes
 *    included …)". Observed: a transport's `Error` whose `name` is a Symbol (or whose `name` getter throws) and whose
 *    message quotes `https://user:pw@…?key=…` reaches the caller as the `RetryExhaustedError`'s `cause` with that
 *    message whole (the error's own message is cut), on the plain call, a `Request` input, a redirect hop, a
 *    degradation rewrite and the ky client. Cause: src/core/redact-url.ts `redactOne` reads `e.stack`, which V8
 *    formats on first read through `Error.prototype.toString`, which throws on a Symbol name; `redactLink` then
 *    leaves the whole link "as it is". One unreadable field keeps every readable one uncut.
 * 2. Same sentence and docs/fallback.md "`errors` per endpoint". Observed: a `transform` that throws an error whose
 *    `cause` getter throws, and a hedged chain whose transport throws one whose `stack` getter throws or whose
 *    `errors` list has an item getter that throws: the `FallbackExhaustedError`'s `errors.<name>.message` (and its
 *    `cause`) keep the key (same cause: the `cause` read, the `stack` read, the spread of `errors`, all unguarded
 *    in `redactOne`).
 * 3. SECURITY.md "… and `execute`'s `RetryExhaustedError` when its work's error names a URL". Observed: work that
 *    throws such an error (Symbol `name`) rejects with a `RetryExhaustedError` whose `cause.message` keeps the key.
 * 4. `createClient` JSDoc "A ky instance whose transport is `resilience.fetch`" and `unlessThrows`' "looking at such
 *    a value must not end, or change, the call that met it". Observed: a `beforeRequest` hook that throws an error
 *    whose `name` getter throws: plain ky rejects with the hook's error, the client with the getter's error.
 *    Cause: src/ky/index.ts `redactMessage` (the client's first `beforeError` hook, which ky 2 runs for every
 *    error) calls `isNetworkError(error)`, which reads `error.name`, outside any guard.
 *
 * Held (plain `it`):
 * - Every hostile kind on the plain call rejects with `RetryExhaustedError` (`attempts` 1) whose own message and
 *   stack hold no key (a chain's `FallbackExhaustedError` message too, its `fallback` events `a → b`, `b → none`);
 *   one `request` event (`error` "RetryExhaustedError"), no `retry` event; events, `health()` and `debugInfo()`
 *   are read whole and hold no key; a throwing listener breaks nothing.
 * - An `AggregateError` listing itself and an error quoting the URL, an `errors` Proxy whose `ownKeys` throws, a
 *   `cause` that is a string quoting the URL: all cut, no hang.
 * - `validate` and `respond` throwing hostile errors: the `fallback` events' reasons hold no key and the call
 *   resolves with the answer `validate` turned down, as documented.
 * - `resilientProxy`: each hostile transport error is a 502 `{"error":"upstream unavailable"}` with no key in
 *   body or headers; its health endpoint holds none. `failureResponse` of a Symbol, a revoked Proxy, a
 *   null-prototype object, an error whose `name` getter throws: 502, no throw.
 *
 * Docs-silent (not pinned):
 * - A `fallback` event's reason for an error whose `name` is a Symbol reads "a thrown value that cannot be read":
 *   its message (cut, it would say something) is lost.
 * - An abort reason whose `name` getter throws: the ky client rejects with the getter's error, and so does plain
 *   ky 2.1 (ky's own abort path reads it); the plain layer rejects with the reason.
 * - An `Error` whose `message` is a `String` object quoting the URL: the layer's message is cut, the `cause`'s
 *   `message` object keeps the key (an "other object" of SECURITY.md's Limits).
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, FallbackExhaustedError, RetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const SECRET = "sk-live-errortext-0123456789";
const ctx = { waitUntil() {}, passThroughOnException() {} };
const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);

/** Where a secret lies in `value`: the paths of every string holding the key or the password, read by guarded walks. */
function secretPaths(value: unknown): string[] {
  const found: string[] = [];
  const seen = new Set<object>();
  const read = (from: object, key: PropertyKey): unknown => {
    try {
      return (from as Record<PropertyKey, unknown>)[key];
    } catch {
      return undefined;
    }
  };
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v === "string" || v instanceof String) {
      if (String(v).includes(SECRET) || String(v).includes(":pw@")) found.push(path);
      return;
    }
    if (typeof v !== "object" || v === null || depth > 8 || seen.has(v)) return;
    seen.add(v);
    let keys: PropertyKey[];
    try {
      keys = Reflect.ownKeys(v);
    } catch {
      return;
    }
    for (const key of new Set<PropertyKey>([...keys, "message", "stack", "cause", "errors"]))
      walk(read(v, key), `${path}.${String(key)}`, depth + 1);
  };
  walk(value, "error", 0);
  return [...new Set(found)];
}

/** What a client wrapper throws: an `Error` quoting the URL it was given (userinfo and key included), made hostile. */
const HOSTILE: Record<string, (href: string) => Error> = {
  "a Symbol name": (href) => Object.assign(new Error(`request to ${href} failed`), { name: Symbol("wrapped") }),
  "a name getter that throws": (href) =>
    Object.defineProperty(new Error(`request to ${href} failed`), "name", {
      get() {
        throw new Error("name unreadable");
      },
    }),
  "a cause getter that throws": (href) =>
    Object.defineProperty(new Error(`request to ${href} failed`), "cause", {
      get() {
        throw new Error("cause unreadable");
      },
    }),
  "a stack getter that throws": (href) =>
    Object.defineProperty(new Error(`request to ${href} failed`), "stack", {
      get() {
        throw new Error("stack unreadable");
      },
    }),
  "an errors item getter that throws": (href) => {
    // Set after construction: `new AggregateError` reads its list at once.
    const list: unknown[] = [];
    Object.defineProperty(list, 0, {
      enumerable: true,
      get() {
        throw new Error("item unreadable");
      },
    });
    return Object.assign(new AggregateError([], `request to ${href} failed`), { errors: list });
  },
};

/** The URL a client wrapper names: the caller's, with a password it added (as a proxy URL or a logged config would). */
const quoted = (href: string): string => href.replace("http://", "http://user:pw@");

const hrefOf = (input: RequestInfo | URL): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url;

/** Sends with the real fetch (the server sees the request), then throws `make`'s error where `when` says. */
function throwingTransport(make: (href: string) => unknown, when: (href: string) => boolean = () => true) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const href = hrefOf(input);
    const res = await fetch(input, init);
    if (!when(href)) return res;
    await res.body?.cancel();
    throw make(quoted(href));
  };
}

const one = { maxAttempts: 1 } as const;

describe("a transport's hostile error on the plain call", () => {
  it("rejects with RetryExhaustedError whose own message holds no key; events, health() and debugInfo() hold none", async () => {
    for (const [kind, make] of Object.entries(HOSTILE)) {
      const clock = new TestClock(0);
      const layer = createResilience({ clock, budget: false, retry: one, fetch: throwingTransport(make) });
      const recorder = recordEvents(layer);
      layer.on("request", () => {
        throw new Error("a listener that throws");
      });
      const error = await rejection(layer.fetch(`${up.base}/jobs?key=${SECRET}`));
      expect(error, kind).toBeInstanceOf(RetryExhaustedError);
      const exhausted = error as RetryExhaustedError;
      expect(exhausted.attempts, kind).toBe(1);
      expect(exhausted.message, kind).toContain("request to http://127.0.0.1");
      expect(secretPaths({ message: exhausted.message, stack: exhausted.stack }), kind).toEqual([]);
      expect(
        recorder.of("request").map((e) => e.error),
        kind,
      ).toEqual(["RetryExhaustedError"]);
      expect(recorder.of("retry"), kind).toEqual([]);
      expect(secretPaths([recorder.events, layer.health(), layer.debugInfo()]), kind).toEqual([]);
      recorder.stop();
    }
    expect(up.hits).toHaveLength(Object.keys(HOSTILE).length);
  });

  it("no key in the RetryExhaustedError's cause: plain GET, Request input, redirect hop, degradation rewrite, ky (Symbol name, name getter)", async () => {
    const make = HOSTILE["a Symbol name"] as (href: string) => Error;
    const leaks: Record<string, string[]> = {};
    const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(make) });
    leaks.plain = secretPaths(await rejection(layer.fetch(`${up.base}/jobs?key=${SECRET}`)));
    const getter = createResilience({
      budget: false,
      retry: one,
      fetch: throwingTransport(HOSTILE["a name getter that throws"] as (href: string) => Error),
    });
    leaks.nameGetter = secretPaths(await rejection(getter.fetch(`${up.base}/jobs?key=${SECRET}`)));
    leaks.request = secretPaths(
      await rejection(layer.fetch(new Request(`${up.base}/jobs?key=${SECRET}`, { method: "PUT", body: "x" }))),
    );
    up.on((hit) => {
      hit.res.writeHead(302, { location: `${spare.base}/next?key=${SECRET}` }).end();
    });
    const redirecting = createResilience({
      budget: false,
      retry: one,
      fetch: throwingTransport(make, (href) => href.startsWith(spare.base)),
    });
    leaks.redirect = secretPaths(await rejection(redirecting.fetch(`${up.base}/start`)));
    up.reset();
    const degrading = createResilience({
      budget: false,
      retry: one,
      degradation: degradation({ rules: [{ match: `${up.base}/gen`, params: { steps: "steps" } }] }),
      fetch: throwingTransport(make),
    });
    degrading.degradation.setLevel("medium");
    leaks.rewrite = secretPaths(
      await rejection(
        degrading.fetch(`${up.base}/gen?key=${SECRET}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ steps: 50 }),
        }),
      ),
    );
    const api = createClient({ resilience: { budget: false, retry: one, fetch: throwingTransport(make) } });
    leaks.ky = secretPaths(await rejection(api.get(`${up.base}/jobs?key=${SECRET}`)));
    // Every path was driven (the rewrite went out rewritten, the redirect's second hop was sent).
    expect(spare.hits.map((h) => h.path)).toEqual([`/next?key=${SECRET}`]);
    expect(JSON.parse(up.hits.find((h) => h.path.startsWith("/gen"))?.body ?? "{}")).toEqual({ steps: 30 });
    expect(leaks).toEqual({ plain: [], nameGetter: [], request: [], redirect: [], rewrite: [], ky: [] });
  });

  it("an AggregateError listing itself, an errors Proxy whose ownKeys throws, a string cause: all cut", async () => {
    const makers: Array<(href: string) => Error> = [
      (href) => {
        const agg = new AggregateError([], `mirrors failed for ${href}`);
        Object.assign(agg, { errors: [agg, new Error(`mirror ${href} refused`)] });
        return agg;
      },
      (href) =>
        Object.assign(new Error(`request to ${href} failed`), {
          errors: new Proxy([], {
            ownKeys() {
              throw new Error("keys unreadable");
            },
          }),
        }),
      (href) => new Error("request failed", { cause: `socket to ${href} closed` }),
    ];
    for (const make of makers) {
      const layer = createResilience({ budget: false, retry: one, fetch: throwingTransport(make) });
      const error = await rejection(layer.fetch(`${up.base}/jobs?key=${SECRET}`));
      expect(error).toBeInstanceOf(RetryExhaustedError);
      expect(secretPaths(error)).toEqual([]);
    }
  });
});

describe("a fallback chain meeting hostile errors", () => {
  const chainOf = (endpoints: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) =>
    fallback([{ name: "gen", endpoints, ...extra }] as unknown as Parameters<typeof fallback>[0]);

  it("no key in FallbackExhaustedError's errors: a transform's cause getter, a hedge's stack getter and errors item", async () => {
    const leaks: Record<string, string[]> = {};
    const cause = HOSTILE["a cause getter that throws"] as (href: string) => Error;
    const transforming = createResilience({
      budget: false,
      retry: one,
      fallback: chainOf([
        {
          name: "a",
          url: `${up.base}/v1`,
          transform: (req: { url: string }) => {
            throw cause(quoted(req.url));
          },
        },
        {
          name: "b",
          url: `${spare.base}/v1`,
          transform: (req: { url: string }) => {
            throw cause(quoted(req.url));
          },
        },
      ]),
    });
    const first = await rejection(transforming.fetch(`${up.base}/v1/jobs?key=${SECRET}`));
    expect(first).toBeInstanceOf(FallbackExhaustedError);
    leaks.transform = secretPaths(first);
    for (const kind of ["a stack getter that throws", "an errors item getter that throws"]) {
      const clock = new TestClock(0);
      const hedged = createResilience({
        clock,
        budget: false,
        retry: one,
        fetch: throwingTransport(HOSTILE[kind] as (href: string) => Error),
        fallback: chainOf(
          [
            { name: "a", url: `${up.base}/v1` },
            { name: "b", url: `${spare.base}/v1` },
          ],
          { hedge: { delay: 50 } },
        ),
      });
      const error = await rejection(hedged.fetch(`${up.base}/v1/jobs?key=${SECRET}`));
      expect(error, kind).toBeInstanceOf(FallbackExhaustedError);
      expect(Object.keys((error as FallbackExhaustedError).errors), kind).toEqual(["a", "b"]);
      leaks[kind] = secretPaths(error);
    }
    expect(leaks).toEqual({ transform: [], "a stack getter that throws": [], "an errors item getter that throws": [] });
  });

  it("the chain's own message and the fallback events hold no key for any hostile kind", async () => {
    for (const [kind, make] of Object.entries(HOSTILE)) {
      const layer = createResilience({
        budget: false,
        retry: one,
        fetch: throwingTransport(make),
        fallback: chainOf([
          { name: "a", url: `${up.base}/v1` },
          { name: "b", url: `${spare.base}/v1` },
        ]),
      });
      const recorder = recordEvents(layer);
      const error = await rejection(layer.fetch(`${up.base}/v1/jobs?key=${SECRET}`));
      expect(error, kind).toBeInstanceOf(FallbackExhaustedError);
      expect((error as Error).message, kind).toMatch(/^every endpoint of fallback chain "gen" failed \(a: /);
      expect(secretPaths({ message: (error as Error).message }), kind).toEqual([]);
      expect(
        recorder.of("fallback").map((e) => [e.from, e.next]),
        kind,
      ).toEqual([
        ["a", "b"],
        ["b", undefined],
      ]);
      expect(secretPaths([recorder.events, layer.health(), layer.debugInfo()]), kind).toEqual([]);
    }
  });

  it("validate and respond throwing hostile errors: reasons cut, the turned-down answer is the caller's", async () => {
    up.on((hit) => hit.res.writeHead(200, { "content-type": "application/json" }).end('{"job":1}'));
    for (const kind of ["a Symbol name", "a cause getter that throws", "a stack getter that throws"]) {
      const make = HOSTILE[kind] as (href: string) => Error;
      const href = quoted(`${up.base}/v1/jobs?key=${SECRET}`);
      const layer = createResilience({
        budget: false,
        retry: one,
        fallback: chainOf([
          {
            name: "a",
            url: `${up.base}/v1`,
            validate: {
              "~standard": {
                version: 1,
                vendor: "errortext",
                validate: () => {
                  throw make(href);
                },
              },
            },
          },
          {
            name: "b",
            respond: () => {
              throw make(href);
            },
          },
        ]),
      });
      const recorder = recordEvents(layer);
      const res = await layer.fetch(`${up.base}/v1/jobs?key=${SECRET}`);
      expect(res.status, kind).toBe(200);
      expect(await res.json(), kind).toEqual({ job: 1 });
      expect(
        recorder.of("fallback").map((e) => e.from),
        kind,
      ).toEqual(["a", "b"]);
      expect(secretPaths(recorder.events), kind).toEqual([]);
    }
  });
});

describe("execute(fn) work that throws a hostile error", () => {
  it("execute's RetryExhaustedError holds no key when its work's error (Symbol name) names a URL", async () => {
    const layer = createResilience({ budget: false });
    const work = HOSTILE["a Symbol name"] as (href: string) => Error;
    const error = await rejection(
      layer.execute(
        async () => {
          throw work(`https://user:pw@api.example/v1/jobs?key=${SECRET}`);
        },
        { retry: one },
      ),
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(secretPaths(error)).toEqual([]);
  });

  it("the same work's error with a plain name is cut; debugInfo() and health() hold no key after a Symbol-named one", async () => {
    const layer = createResilience({ budget: false });
    const plain = await rejection(
      layer.execute(
        async () => {
          throw new Error(`request to https://user:pw@api.example/v1?key=${SECRET} failed`);
        },
        { retry: one },
      ),
    );
    expect(secretPaths(plain)).toEqual([]);
    await rejection(
      layer.execute(
        async () => {
          throw (HOSTILE["a Symbol name"] as (href: string) => Error)("https://api.example/v1");
        },
        { retry: one },
      ),
    );
    expect(secretPaths([layer.debugInfo(), layer.health()])).toEqual([]);
    expect(layer.debugInfo().recentErrors.map((r) => r.error)).toEqual(["RetryExhaustedError", "RetryExhaustedError"]);
  });
});

describe("the ky client", () => {
  const nameThrows = (): Error =>
    Object.defineProperty(new Error("hook refused the call"), "name", {
      get() {
        throw new Error("name unreadable");
      },
    });

  it("a beforeRequest hook's error whose name getter throws reaches the caller as plain ky gives it", async () => {
    const thrown = nameThrows();
    const api = createClient({ resilience: { budget: false, retry: one } });
    const got = await rejection(
      api.get(`${up.base}/jobs`, {
        hooks: {
          beforeRequest: [
            () => {
              throw thrown;
            },
          ],
        },
      }),
    );
    // Compared by identity: a failing `toBe` would print the value, reading the getter.
    expect(got === thrown, `rejected with "${(got as Error).message}"`).toBe(true);
  });

  it("plain ky rejects with that hook's error itself (what defect 4 compares with)", async () => {
    const thrown = nameThrows();
    const got = await rejection(
      ky.get(`${up.base}/jobs`, {
        retry: 0,
        hooks: {
          beforeRequest: [
            () => {
              throw thrown;
            },
          ],
        },
      }),
    );
    expect(got).toBe(thrown);
    expect(up.hits).toHaveLength(0);
  });
});

describe("resilientProxy and failureResponse", () => {
  it("each hostile transport error is a 502 with no key in body or headers; the health endpoint holds none", async () => {
    for (const [kind, make] of Object.entries(HOSTILE)) {
      const proxy = resilientProxy({
        routes: [{ path: "/api", upstream: `${up.base}/v1` }],
        resilience: { budget: false, retry: one, fetch: throwingTransport(make) },
      });
      const res = await proxy.fetch(new Request(`http://worker.test/api/jobs?key=${SECRET}`), {}, ctx);
      expect(res.status, kind).toBe(502);
      const text = await res.text();
      expect(JSON.parse(text), kind).toEqual({ error: "upstream unavailable" });
      expect(secretPaths([text, [...res.headers]]), kind).toEqual([]);
      const health = await proxy.fetch(new Request("http://worker.test/__resilience/health"), {}, ctx);
      expect(health.status, kind).toBe(200);
      expect(secretPaths(await health.text()), kind).toEqual([]);
    }
    expect(up.hits.map((h) => h.path)).toEqual(Object.keys(HOSTILE).map(() => `/v1/jobs?key=${SECRET}`));
  });

  it("failureResponse of values that cannot be read is a 502, never a throw", async () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const nullProto = Object.assign(Object.create(null) as object, { message: `https://x.example/?key=${SECRET}` });
    const values: unknown[] = [
      Symbol("thrown"),
      revoked.proxy,
      nullProto,
      (HOSTILE["a name getter that throws"] as (href: string) => Error)("https://x.example/"),
      undefined,
    ];
    for (const value of values) {
      const res = failureResponse(value, 0);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ error: "upstream unavailable" });
    }
  });
});
