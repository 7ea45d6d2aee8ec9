/**
 * Outside-in attack on today's fixes (the first 12 entries under CHANGELOG.md's first "### Fixed"), on the paths
 * each fix was not tested on, with hostile and edge inputs.
 * Docs: docs/retry.md ("ky's own errors (`HTTPError`, `NetworkError`, `TimeoutError`) name the URL in their
 * message without its query, userinfo and fragment, as the layer's errors do: the client's first `beforeError`
 * hook cuts it, so yours see it cut and one that throws cannot keep it, and its last cuts what yours wrote";
 * "Passing ky's `retry` or `fetch` is a `ConfigError`, at once, to `createClient`, to a call … and to `extend` or
 * `create`"; "Under `execute`'s `breaker`, a last attempt the open breaker refused never ran: the call rejects with
 * that `CircuitOpenError`, with one attempt too"; "With `retry.idempotencyKey: true`, POST and PATCH requests
 * without a key get one"), docs/options.md ("`createClient` refuses only a key one or two letters from
 * `resilience`"; "keep what they read then"), SECURITY.md ("No secret in events, errors, `health()` …: URLs lose
 * their … query string"), docs/browsers-and-cors.md ("the error's message ends with a hint … naming the request
 * headers the preflight must allow (every one sent but `accept`, …)"), docs/cloudflare.md (route keys,
 * `chain: undefined`, `x-resilience-endpoint` for a `breaker.key` with a lone surrogate; `failureResponse`'s
 * `Retry-After`), docs/fallback.md (hedge `delay` at most 2,147,483,647 ms), docs/health-and-events.md (a listener
 * that throws never breaks the request), docs/testing.md (`stream`), README.md / fetch semantics (an aborted call
 * refuses a `Request` whose body was read with fetch's `TypeError`).
 * How: `createResilience`/`ConfigError`/`isCircuitOpenError` (root), `fallback` (./fallback), `resilientProxy`
 * and `failureResponse` (./cloudflare), `createClient` (./ky) with ky's `replaceOption`, `stream` (./testing); a
 * recording transport; `vi.stubGlobal` for a page (`document`, `location`) and a `crypto` without `randomUUID`.
 * Paths: plain call, fallback chain, `Request` input (aborted), `execute` with a breaker (one and several
 * attempts, `fallback` option, abort), the ky client (a call, `extend`, `extend(fn)`, `create`, `createClient`
 * with `replaceOption` hooks, getters and symbol keys), `resilientProxy` (route keys, breaker keys with odd text).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the cut first on every hooks route, body: null is no replacement, execute's refusal cut, the CORS hint judged as the standard does):
 * 1. docs/retry.md "the client's first `beforeError` hook cuts it, so yours see it cut and one that throws cannot
 *    keep it". Observed: a call's own `hooks: replaceOption({ beforeError: [rethrow] })` (ky's documented way to
 *    replace the instance's hooks) drops the client's first hook with the instance's hooks; the throwing hook ends
 *    ky's loop before the last `redactMessage` `lastInit` appends, so the HTTPError reaches the caller as
 *    "… GET http://…/x?key=SECRET". The first hook lives only in the instance's hooks (`onLayer`,
 *    src/ky/index.ts); `lastInit` edits inside the `replaceOption` wrapper but only appends.
 * 2. Same sentence, on `extend`. Observed: `api.extend({ hooks: replaceOption({ beforeError: [rethrow] }) })`
 *    replaces the parent's hooks, the client's first `beforeError` among them, and `guarded`'s `extend` does not
 *    add it back (only `createClient` and `create` go through `onLayer`): every call's HTTPError keeps the query.
 * 3. CHANGELOG/README (fetch semantics): "A call whose signal was aborted before it began refuses a `Request`
 *    whose body was already read with the `TypeError` fetch gives". Observed: with `init.body: null` (which fetch
 *    reads as no replacement: the `Request`'s own body goes, `fetch(usedRequest, { body: null, signal })` throws
 *    "Cannot construct a Request with a Request object that has already been used") the layer rejects with the
 *    abort reason. `startCall` (src/http/resilient-fetch.ts) takes any `init.body !== undefined` as replacing
 *    the body (`init?.body === undefined ? request?.body : undefined`), so `null` hides the used body.
 * 4. SECURITY.md "No secret in events, errors, `health()` …: URLs lose their userinfo …, query string and
 *    fragment … before they reach any of them". Observed: `execute(fn, { breaker: "https://api.example/v1?api_key=
 *    SECRET", retry: false })` on an open breaker now rejects with the raw `CircuitOpenError`, whose message
 *    quotes the name, query and all (before today's fix it was the `RetryExhaustedError` whose cause went through
 *    `redactErrorChain`): `redactExhausted` (src/http/execute.ts) rethrows `error.cause` before any cut. (With
 *    several attempts the first refusal was already raw, and `health().breakers` is keyed by the name whole.)
 *    Not a defect after all: SECURITY.md's "Names you choose" says a named breaker's name is a label shown as
 *    given in events, `health()` and errors, and not to use a URL with a key as one (an earlier run held it,
 *    test/security/breakers-cors-twentyone-attack.test.ts). The test asserts that sentence now.
 * 5. docs/browsers-and-cors.md "naming the request headers the preflight must allow (every one sent but …)" (and
 *    the fix's "The CORS hint names only headers a browser sends"). Observed: `x-http-method-override: TRACE` is a
 *    forbidden request-header (the Fetch standard's X-HTTP-Method(-Override)/X-Method-Override rule: its value
 *    names a forbidden method), which a page's fetch drops, yet the hint names it. `NEVER_SENT`
 *    (src/http/cors-hint.ts) judges names only.
 * 6. Same sentence ("every one sent"). Observed: `access-control-request-foo` is sent by a page's fetch (the
 *    standard forbids only `Access-Control-Request-Headers` and `-Method`), needs the preflight's leave, and the
 *    hint leaves it out: `NEVER_SENT` drops every `access-control-request-.*`.
 *
 * Held (plain `it`):
 * - `createClient({ hooks: replaceOption({ beforeError: [rethrow] }) })`, `create({ hooks: { beforeError: [rethrow]
 *   } })` and `extend(fn)` returning the parent's options with a rethrowing hook: the URL is cut.
 * - ky: a call's `retry: 0` on an `extend`ed and a `create`d instance, `RESILIENCE` and `resilince` to
 *   `createClient`: ConfigError at once, nothing sent; a `searchParams` getter read once, a symbol-keyed
 *   `replaceOption` header object kept (`x-a` only).
 * - An `Idempotency-Key` given in a `Map` (any iterable fetch takes), and pairs naming it twice (first empty)
 *   through a fallback chain: the caller's key reaches both endpoints, no random key.
 * - `retry.idempotencyKey: true` with `crypto.randomUUID` missing, through a chain: one v4 UUID on both endpoints.
 * - `execute` with an open breaker: `retry: false` and `maxAttempts: 3` reject with the `CircuitOpenError` (fn
 *   never runs), `fallback` gets it, an aborted signal rejects with the abort reason without the fallback;
 *   `failureResponse` of it on a fractional clock says `Retry-After: 30`.
 * - A `reportError` that throws with a listener that throws: the call resolves.
 * - `resilientProxy`: a route's `headers` key and `chain: undefined` are ConfigErrors (`routes.0`,
 *   `routes.0.chain`); a route chain's hedge `delay` of 3e9 is one too; breaker keys with CRLF, NUL, spaces, `%`,
 *   an emoji and a lone surrogate answer 200 with `x-resilience-endpoint` reading back (U+FFFD for the lone one).
 * - `stream` refuses a non-string chunk, a non-array and a `contentType` with a line break, when built.
 */
import { replaceOption } from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, isCircuitOpenError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { stream } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";
import { rejection, thrown } from "../helpers/settled.ts";

afterEach(() => {
  vi.unstubAllGlobals();
});

const SECRET_URL = "http://127.0.0.1:9/x?key=SECRET";
const rethrow = ({ error }: { error: Error }): never => {
  throw error;
};
const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const failing = () => recordingFetch(() => new Response("no", { status: 503 }));

describe("ky client: the first beforeError hook cuts the URL", () => {
  it("a call's hooks replaced with replaceOption, a rethrowing beforeError: the message keeps no query", async () => {
    const t = failing();
    const api = createClient({ resilience: { fetch: t.fetch, retry: false } });
    const error = (await rejection(api.get(SECRET_URL, { hooks: replaceOption({ beforeError: [rethrow] }) }))) as Error;
    expect(error.name).toBe("HTTPError");
    expect(error.message).not.toContain("SECRET");
  });

  it("extend with replaceOption hooks and a rethrowing beforeError: the message keeps no query", async () => {
    const t = failing();
    const api = createClient({ resilience: { fetch: t.fetch, retry: false } }).extend({
      hooks: replaceOption({ beforeError: [rethrow] }),
    });
    const error = (await rejection(api.get(SECRET_URL))) as Error;
    expect(error.name).toBe("HTTPError");
    expect(error.message).not.toContain("SECRET");
  });

  it("createClient's replaceOption hooks, create's hooks and extend(fn) with a rethrowing hook: cut", async () => {
    const t = failing();
    const layer = createResilience({ fetch: t.fetch, retry: false });
    const clients = [
      createClient({ resilience: layer, hooks: replaceOption({ beforeError: [rethrow] }) }),
      createClient({ resilience: layer }).create({ hooks: { beforeError: [rethrow] } }),
      createClient({ resilience: layer }).extend((parent) => ({
        ...parent,
        hooks: { beforeError: [rethrow] },
      })),
    ];
    for (const api of clients) {
      const error = (await rejection(api.get(SECRET_URL))) as Error;
      expect(error.name).toBe("HTTPError");
      expect(error.message).toContain("GET http://127.0.0.1:9/x");
      expect(error.message).not.toContain("SECRET");
    }
    expect(t.sent).toHaveLength(3);
  });
});

describe("ky client: retry/fetch per call, a misspelt resilience, options copied", () => {
  it("a call's retry: 0 on extend'ed and create'd instances, RESILIENCE and resilince: ConfigError, nothing sent", () => {
    const t = recordingFetch();
    const api = createClient({ resilience: { fetch: t.fetch } });
    for (const child of [api.extend({ headers: { "x-a": "1" } }), api.create({})]) {
      expect(thrown(() => child.get("http://127.0.0.1:9/x", { retry: 0 }))).toBeInstanceOf(ConfigError);
      expect(thrown(() => child("http://127.0.0.1:9/x", { fetch: t.fetch }))).toBeInstanceOf(ConfigError);
    }
    for (const key of ["RESILIENCE", "resilince"])
      expect(thrown(() => createClient({ [key]: { retry: false } } as never))).toBeInstanceOf(ConfigError);
    expect(t.sent).toHaveLength(0);
  });

  it("a searchParams getter is read once; a replaceOption header object (symbol key) is kept as ky reads it", async () => {
    const t = recordingFetch();
    let reads = 0;
    const api = createClient({
      resilience: { fetch: t.fetch },
      get searchParams() {
        reads++;
        return { n: String(reads) };
      },
      headers: replaceOption({ "x-a": "1" }) as never,
    });
    await api.get("http://127.0.0.1:9/x");
    await api.get("http://127.0.0.1:9/x");
    expect(t.sent.map((s) => new URL(s.url).searchParams.get("n"))).toEqual(["1", "1"]);
    expect([...(t.sent[0]?.headers ?? [])]).toEqual([["x-a", "1"]]);
  });
});

describe("a Request input on an aborted call", () => {
  it("init.body: null leaves the used Request's body in place: refused with fetch's TypeError", async () => {
    const t = recordingFetch();
    const r = createResilience({ fetch: t.fetch });
    const used = new Request("http://127.0.0.1:9/p", { method: "POST", body: "x" });
    await used.text();
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    // fetch itself: `null` is no replacement body, so the used Request is refused first.
    expect(await rejection(fetch(used, { body: null, signal: controller.signal }))).toBeInstanceOf(TypeError);
    const error = await rejection(r.fetch(used, { body: null, signal: controller.signal }));
    expect(error).toBeInstanceOf(TypeError);
    expect(t.sent).toHaveLength(0);
  });
});

describe("execute with a breaker", () => {
  const tripped = async (name: string) => {
    const r = createResilience({ breaker: { failureThreshold: 1 } });
    await rejection(
      r.execute(
        () => {
          throw new Error("down");
        },
        { breaker: name, retry: false },
      ),
    );
    return r;
  };

  it("a breaker named by a URL with a query: the CircuitOpenError names it as given, as SECURITY.md says of names", async () => {
    const r = await tripped("https://api.example/v1?api_key=SECRET");
    const error = (await rejection(
      r.execute(() => 1, { breaker: "https://api.example/v1?api_key=SECRET", retry: false }),
    )) as Error;
    expect(isCircuitOpenError(error)).toBe(true);
    // SECURITY.md "Names you choose": a named breaker's name is a label, shown as given in events, health() and
    // errors (with one attempt or three alike); do not use a URL with a key as a name.
    expect(error.message).toContain("api_key=SECRET");
  });

  it("one or three attempts reject with the CircuitOpenError; fallback gets it; an abort skips the fallback", async () => {
    const r = await tripped("db");
    let ran = 0;
    const work = () => {
      ran++;
      return 1;
    };
    expect(isCircuitOpenError(await rejection(r.execute(work, { breaker: "db", retry: false })))).toBe(true);
    expect(isCircuitOpenError(await rejection(r.execute(work, { breaker: "db", retry: { maxAttempts: 3 } })))).toBe(
      true,
    );
    const seen: unknown[] = [];
    const answer = await r.execute(work, {
      breaker: "db",
      retry: false,
      fallback: (error) => {
        seen.push(error);
        return 7;
      },
    });
    expect(answer).toBe(7);
    expect(isCircuitOpenError(seen[0])).toBe(true);
    const controller = new AbortController();
    const reason = new Error("caller left");
    controller.abort(reason);
    expect(await rejection(r.execute(work, { breaker: "db", signal: controller.signal, fallback: () => 7 }))).toBe(
      reason,
    );
    expect(ran).toBe(0);
    const open = seen[0] as { retryAt: number };
    const response = failureResponse(seen[0], open.retryAt - 30_000.000000000004);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("30");
  });
});

describe("the CORS hint in a page", () => {
  const inPage = (headers: Record<string, string>) => {
    vi.stubGlobal("document", {});
    vi.stubGlobal("location", { origin: "https://app.example" });
    const r = createResilience({
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
      retry: { maxAttempts: 1 },
    });
    return rejection(r.fetch("https://api.example/x", { headers })) as Promise<Error>;
  };

  it("x-http-method-override: TRACE is never sent by a page: the hint does not name it", async () => {
    const error = await inPage({ "x-http-method-override": "TRACE", "x-a": "1" });
    expect(error.message).toContain("the request headers x-a in its preflight");
  });

  it("access-control-request-foo is sent by a page and needs the preflight's leave: the hint names it", async () => {
    const error = await inPage({ "access-control-request-foo": "1", "x-a": "1" });
    expect(error.message).toContain("the request headers access-control-request-foo, x-a in its preflight");
  });

  it("cookie, user-agent and sec-* are left out; x-a is named", async () => {
    const error = await inPage({ cookie: "a=1", "user-agent": "me", "sec-x": "1", "x-a": "1" });
    expect(error.message).toContain("the request headers x-a in its preflight");
  });
});

describe("Idempotency-Key read whole, and made without randomUUID", () => {
  const chain = (fetch: typeof globalThis.fetch) =>
    createResilience({
      fetch,
      retry: { idempotencyKey: true, maxAttempts: 1 },
      breaker: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://a.example/v1" },
            { name: "b", url: "https://b.example/v1" },
          ],
        },
      ]),
    });

  it("a Map and doubled pairs (first empty) through a chain: the caller's key reaches both endpoints", async () => {
    for (const headers of [
      new Map([["Idempotency-Key", "mine"]]),
      [
        ["idempotency-key", " "],
        ["Idempotency-Key", "mine"],
      ],
    ]) {
      const t = recordingFetch((_s, n) => new Response("x", { status: n === 1 ? 503 : 200 }));
      const res = await chain(t.fetch).fetch("https://a.example/v1/x", {
        method: "POST",
        body: "b",
        headers: headers as HeadersInit,
      });
      expect(res.status).toBe(200);
      const keys = t.sent.map((s) => s.headers.get("idempotency-key"));
      expect(keys).toHaveLength(2);
      expect(keys[0]).toMatch(/mine$/);
      expect(keys[1]).toBe(keys[0]);
    }
  });

  it("crypto without randomUUID: one v4 UUID, the same on both endpoints", async () => {
    const real = globalThis.crypto;
    vi.stubGlobal("crypto", { getRandomValues: (a: Uint8Array<ArrayBuffer>) => real.getRandomValues(a) });
    const t = recordingFetch((_s, n) => new Response("x", { status: n === 1 ? 503 : 200 }));
    const res = await chain(t.fetch).fetch("https://a.example/v1/x", { method: "POST", body: "b" });
    expect(res.status).toBe(200);
    const keys = t.sent.map((s) => s.headers.get("idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[1]).toBe(keys[0]);
  });
});

describe("reporting is best effort", () => {
  it("a reportError that throws, a listener that throws: the call resolves", async () => {
    vi.stubGlobal("reportError", () => {
      throw new Error("report broke");
    });
    const t = recordingFetch();
    const r = createResilience({ fetch: t.fetch, breaker: false });
    r.on("request", () => {
      throw new Error("listener broke");
    });
    expect((await r.fetch("https://api.example/x")).status).toBe(200);
  });
});

describe("resilientProxy", () => {
  it("a route's headers key, chain: undefined and a hedge delay past 2^31 - 1 ms are ConfigErrors naming the route", () => {
    const make = (route: object) => () =>
      resilientProxy({ routes: [route as never], resilience: { fetch: recordingFetch().fetch } });
    const headers = thrown(make({ path: "/v1", upstream: "https://api.example", headers: { a: "1" } }));
    expect(headers).toBeInstanceOf(ConfigError);
    expect((headers as ConfigError).path).toBe("routes.0");
    const undef = thrown(make({ path: "/v1", chain: undefined }));
    expect((undef as ConfigError).path).toBe("routes.0.chain");
    const hedge = thrown(
      make({
        path: "/v1",
        chain: { name: "c", hedge: { delay: 3e9 }, endpoints: [{ name: "a", url: "https://a.example" }] },
      }),
    );
    expect(hedge).toBeInstanceOf(ConfigError);
    expect(String((hedge as ConfigError).path)).toContain("hedge.delay");
  });

  it("breaker keys with CRLF, NUL, spaces, %, an emoji and a lone surrogate: 200, the header reads back", async () => {
    const keys = ["a\r\nb", "a\0b", " x ", "%", "\uD83D\uDE00", "a\uD800b"];
    for (const key of keys) {
      const t = recordingFetch();
      const proxy = resilientProxy({
        routes: [{ path: "/v1", upstream: "https://api.example" }],
        resilience: { fetch: t.fetch, breaker: { key: () => key } },
      });
      const res = await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx);
      expect(res.status).toBe(200);
      const shown = decodeURIComponent(res.headers.get("x-resilience-endpoint") ?? "");
      expect(shown).toBe(key === "a\uD800b" ? "a\uFFFDb" : key);
    }
  });
});

describe("testing kit: stream checks when built", () => {
  it("a non-string chunk, a non-array and a contentType with a line break are refused at once", () => {
    expect(thrown(() => stream([1] as never))).toBeInstanceOf(TypeError);
    expect(thrown(() => stream("ab" as never))).toBeInstanceOf(TypeError);
    expect(thrown(() => stream(["a"], { contentType: "text/plain\r\nx-a: 1" }))).toBeInstanceOf(TypeError);
    expect(() => stream(["a"], { contentType: "text/plain; charset=utf-8" })).not.toThrow();
  });
});
