/**
 * Outside-in attack on this session's changes: the guarded ky client
 * (`createClient`), query-parameter degradation that edits only the named
 * parameter (`editQuery`), the browser hint's stream and redirect wording,
 * and `FallbackEndpoint` as a union type. Real node:http servers on
 * 127.0.0.1; time on a `TestClock`.
 */
import ky, { ForceRetryError, HTTPError, type KyInstance, type Options, type ResponsePromise, replaceOption } from "ky";
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import * as z from "zod";
import { degradation } from "../../src/degradation/index.ts";
import {
  type FallbackChainOptions,
  type FallbackEndpoint,
  type FallbackEndpointCommon,
  fallback,
} from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isConfigError,
  type ResilienceOptions,
  RetryExhaustedError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream();
const S = httpUpstream();

serveDuringFile(P, S);

const send =
  (code: number, body: unknown = {}, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, { "content-type": "application/json", ...headers });
    hit.res.end(JSON.stringify(body));
  };

/** A layer on the real network: 3 attempts, no jitter, 100 ms backoff, on its own TestClock. */
function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const resilience = createResilience({
    clock,
    redirects: "library",
    breaker: false,
    ...options,
    retry: { jitter: "none", initialDelay: 100, maxAttempts: 3 },
  });
  return { clock, resilience };
}

const caught = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );

// ---------------------------------------------------------------------------
// (1) the guarded ky client
// ---------------------------------------------------------------------------

describe("guarded ky client: what a ky user does still works", () => {
  it("ResponsePromise helpers: .json(), .text(), .blob(), .arrayBuffer(), .json(schema)", async () => {
    P.on(send(200, { id: 7, name: "x" }));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: P.base, resilience });
    expect(await clock.run(api.get("a").json())).toEqual({ id: 7, name: "x" });
    expect(await clock.run(api.get("a").text())).toBe('{"id":7,"name":"x"}');
    expect((await clock.run(api.get("a").blob())).size).toBe(19);
    expect((await clock.run(api.get("a").arrayBuffer())).byteLength).toBe(19);
    const schema = z.object({ id: z.number() });
    expect(await clock.run(api.get("a").json(schema))).toEqual({ id: 7 });
    expect(P.hits.every((h) => h.headers.accept?.includes("application/json") || h.headers.accept)).toBe(true);
  });

  it("api.query (ky 2.1's QUERY method) goes through the layer, retried like any idempotent call", async () => {
    let n = 0;
    P.on((hit) => (++n === 1 ? send(503)(hit) : send(200, { method: hit.method, body: hit.body })(hit)));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: P.base, resilience });
    const res = await clock.run(api.query("search", { json: { q: "cat" } }));
    expect(await res.json()).toEqual({ method: "QUERY", body: '{"q":"cat"}' });
    expect(P.hits).toHaveLength(2);
    expect(getResilienceInfo(res)?.attempts).toBe(2);
  });

  it("keeps ky's instance surface: the same keys, api.stop and api.retry are ky's", () => {
    const api = createClient();
    expect(typeof api).toBe("function");
    expect(Object.keys(api).sort()).toEqual(Object.keys(ky).sort());
    expect(api.stop).toBe(ky.stop);
    expect(api.retry).toBe(ky.retry);
    const child = api.extend({ headers: { a: "1" } }).create({});
    expect(Object.keys(child).sort()).toEqual(Object.keys(ky).sort());
  });

  it("types: still a KyInstance; generics on api.get<T>() and .json<T>() type the result", () => {
    const api = createClient();
    const k: KyInstance = api;
    expectTypeOf(api).toEqualTypeOf<KyInstance>();
    expectTypeOf(k.extend({})).toEqualTypeOf<KyInstance>();
    type Job = { id: string };
    const call = () => api.get<Job>("x").json();
    expectTypeOf(call).returns.resolves.toEqualTypeOf<Job>();
    expectTypeOf(() => api.post("x")).returns.toEqualTypeOf<ResponsePromise<unknown>>();
    // @ts-expect-error createClient refuses ky's retry at the type level too
    expect(() => createClient({ retry: 2 })).toThrow();
  });

  it("refuses retry: undefined and fetch: undefined per call: ky would otherwise fall back to its 2 retries or globalThis.fetch", () => {
    const api = createClient();
    // ky's merge keeps an explicit undefined: `retry` back to ky's default (limit 2), `fetch` to the global one.
    // A project without exactOptionalPropertyTypes (tsc's default) may write these literally.
    const noRetry = { retry: undefined } as unknown as Options;
    const noFetch = { fetch: undefined } as unknown as Options;
    expect(() => api.get("http://127.0.0.1:1/", noRetry)).toThrow(/resilience\.retry/);
    expect(() => api("http://127.0.0.1:1/", noFetch)).toThrow(/resilience\.fetch/);
    expect(() => api.extend(noRetry)).toThrow(/resilience\.retry/);
    expect(() => api.create(noFetch)).toThrow(/resilience\.fetch/);
    let thrown: unknown;
    try {
      void api.query("http://127.0.0.1:1/", { retry: 1 });
    } catch (error) {
      thrown = error;
    }
    expect(isConfigError(thrown)).toBe(true);
  });

  it("extend(fn): { ...parent }, { ...parent, retry: parent.retry } and an object without the keys are accepted and stay on the layer", async () => {
    P.on(send(503));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: P.base, resilience });
    const a = api.extend((parent) => ({ ...parent }));
    const b = api.extend((parent) => ({ ...parent, retry: parent.retry, fetch: parent.fetch }) as Options);
    const c = api.extend(() => ({ headers: { "x-c": "1" } }));
    for (const client of [a, b, c]) {
      P.reset();
      P.on(send(503));
      const error = await clock.run(caught(client.get("x")));
      expect(error).toBeInstanceOf(HTTPError);
      expect(P.hits).toHaveLength(3); // the layer's 3 attempts, not 3 × ky's
    }
    expect(P.hits[0]?.headers["x-c"]).toBe("1");
    expect(() => api.extend((parent) => ({ ...parent, retry: 2 }))).toThrow(/resilience\.retry/);
    expect(() => api.extend((parent) => ({ ...parent, fetch: globalThis.fetch }))).toThrow(/resilience\.fetch/);
  });

  it("hooks merge through extend (parent's then child's), replaceOption replaces them, create starts afresh on the layer", async () => {
    P.on((hit) => send(200, { tags: hit.headers["x-tag"] ?? null })(hit));
    const { clock, resilience } = layer();
    const tag =
      (t: string) =>
      ({ request }: { request: Request }) => {
        request.headers.set("x-tag", [request.headers.get("x-tag"), t].filter(Boolean).join(","));
      };
    const api = createClient({ prefix: P.base, resilience, hooks: { beforeRequest: [tag("root")] } });
    const merged = api.extend({ hooks: { beforeRequest: [tag("child")] } });
    const replaced = api.extend({ hooks: replaceOption({ beforeRequest: [tag("only")] }) });
    const fresh = merged.create({ prefix: P.base });
    expect(await clock.run(merged.get("x").json())).toEqual({ tags: "root,child" });
    expect(await clock.run(replaced.get("x").json())).toEqual({ tags: "only" });
    expect(await clock.run(fresh.get("x").json())).toEqual({ tags: null });
    const res = await clock.run(fresh.get("x"));
    expect(getResilienceInfo(res)?.attempts).toBe(1); // create's instance runs on the layer
  });

  it("two clients on one layer share it (one event stream, both counted)", async () => {
    P.on(send(200, {}));
    const { clock, resilience } = layer();
    const seen: string[] = [];
    resilience.on("request", (e) => seen.push(e.url));
    const a = createClient({ prefix: P.base, resilience });
    const b = createClient({ prefix: P.base, resilience }).extend({ headers: { x: "1" } });
    await clock.run(a.get("a"));
    await clock.run(b.get("b"));
    expect(seen).toEqual([`${P.base}/a`, `${P.base}/b`]);
  });

  // Surprising but defensible, and not in docs/retry.md: the layer turns ky's
  // retry off (limit 0), so ky's own documented pattern "afterResponse returns
  // ky.retry() to retry with a fresh token" never retries: ky rejects with
  // ForceRetryError ("retry limit exceeded") after the first answer.
  it("afterResponse returning ky.retry() rejects with ky's ForceRetryError after one request (retry limit 0)", async () => {
    P.on(send(401, { error: "token expired" }));
    const { clock, resilience } = layer();
    const api = createClient({
      prefix: P.base,
      resilience,
      throwHttpErrors: false,
      hooks: { afterResponse: [({ response }) => (response.status === 401 ? ky.retry() : undefined)] },
    });
    const error = await clock.run(caught(api.get("x")));
    expect(error).toBeInstanceOf(ForceRetryError);
    expect(P.hits).toHaveLength(1);
  });

  it("beforeRetry hooks never run and api.stop is never consulted (ky never retries)", async () => {
    P.on(send(503));
    const { clock, resilience } = layer();
    const beforeRetry = vi.fn((): typeof ky.stop => ky.stop);
    const api = createClient({ prefix: P.base, resilience, hooks: { beforeRetry: [beforeRetry] } });
    expect(await clock.run(caught(api.get("x")))).toBeInstanceOf(HTTPError);
    expect(beforeRetry).not.toHaveBeenCalled();
    expect(P.hits).toHaveLength(3);
  });

  // Were defects, fixed: ky's `init` hooks receive the merged options (retry: 0 and the layer's fetch
  // included) and may mutate them; one that set `options.retry` made ky retry the layer's final answer
  // (9 requests for 3), one that set `options.fetch` sent the call past the layer. The client now adds
  // a last init hook that refuses both with a ConfigError, thrown by the call at once, nothing sent.
  it("an init hook that sets options.retry or options.fetch is a ConfigError at once, per call, on the instance or through extend", () => {
    P.on(send(503));
    const { resilience } = layer();
    const setRetry = (options: Options) => {
      options.retry = { limit: 2, delay: () => 1 };
    };
    const setFetch = (options: Options) => {
      options.fetch = (input, init) => globalThis.fetch(input, init);
    };
    const api = createClient({ prefix: P.base, resilience });
    const attempts: Array<[string, () => unknown]> = [
      ["retry", () => api.get("x", { hooks: { init: [setRetry] } })],
      ["fetch", () => api.post("x", { hooks: { init: [setFetch] } })],
      ["retry", () => createClient({ prefix: P.base, resilience, hooks: { init: [setRetry] } }).get("x")],
      ["fetch", () => api.extend({ hooks: { init: [setFetch] } }).get("x")],
      ["retry", () => api.get("x", { hooks: replaceOption({ init: [setRetry] }) })],
    ];
    for (const [key, attempt] of attempts) {
      let thrown: unknown;
      try {
        attempt();
      } catch (error) {
        thrown = error;
      }
      expect(isConfigError(thrown) && thrown.path).toBe(key);
    }
    expect(P.hits).toHaveLength(0);
  });

  it("init hooks that leave retry and fetch alone still run, and the call goes through the layer", async () => {
    P.on(send(503));
    const { clock, resilience } = layer();
    const api = createClient({
      prefix: P.base,
      resilience,
      throwHttpErrors: false,
      hooks: {
        init: [
          (options: Options) => {
            options.headers = { "x-from-init": "1" };
          },
        ],
      },
    });
    const res = await clock.run(api.get("x"));
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 3 });
    expect(P.hits.map((hit) => hit.headers["x-from-init"])).toEqual(["1", "1", "1"]);
  });
});

// ---------------------------------------------------------------------------
// (2) query-parameter degradation
// ---------------------------------------------------------------------------

describe("degradation of a query parameter: only its values change", () => {
  type Level = "high" | "medium" | "low" | "minimal";
  function degraded(level: Level, params: Record<string, { query: string }>, options: ResilienceOptions = {}) {
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      breaker: false,
      degradation: degradation({ rules: [{ params }] }),
      ...options,
    });
    resilience.degradation?.setLevel(level, "test");
    return { clock, resilience };
  }

  const pathAt = async (
    level: Level,
    path: string,
    params: Record<string, { query: string }> = { steps: { query: "steps" } },
  ) => {
    P.reset();
    const { clock, resilience } = degraded(level, params);
    const res = await clock.run(resilience.fetch(`${P.base}${path}`));
    await res.text();
    return P.hits[0]?.path;
  };

  it("edits an encoded name, keeps + and ? in other values, a fragment is not sent, no query is untouched", async () => {
    expect(await pathAt("medium", "/g?st%65ps=50&p=a+b&q=x?y")).toBe("/g?st%65ps=30&p=a+b&q=x?y");
    expect(await pathAt("medium", "/g?p=a/b&steps=50#frag")).toBe("/g?p=a/b&steps=30");
    expect(await pathAt("medium", "/g")).toBe("/g");
  });

  it("repeated params each from their own value; empty, bare and non-numeric values are left alone", async () => {
    expect(await pathAt("medium", "/g?steps=50&a=1&steps=20&steps=40")).toBe("/g?steps=30&a=1&steps=20&steps=30");
    expect(await pathAt("medium", "/g?steps=&steps&steps=abc&steps=Infinity")).toBe(
      "/g?steps=&steps&steps=abc&steps=Infinity",
    );
    expect(await pathAt("medium", "/g?steps=%2B50&x=%7e")).toBe("/g?steps=30&x=%7e");
  });

  it("a features list: a change is written (comma encoded), an unchanged list keeps its bytes", async () => {
    const f = { features: { query: "f" } };
    expect(await pathAt("medium", "/g?f=core,enhancements,extra", f)).toBe("/g?f=core");
    expect(await pathAt("high", "/g?f=core,enhancements,extra", f)).toBe("/g?f=core%2Cenhancements");
    expect(await pathAt("high", "/g?f=core,enhancements", f)).toBe("/g?f=core,enhancements");
    expect(await pathAt("high", "/g?f=core%2Cenhancements", f)).toBe("/g?f=core%2Cenhancements");
  });

  // Was a minor defect, fixed (values compared as text). editQuery's contract: "a value `edit` leaves as it was keeps
  // its own spelling"; docs/degradation.md: "Only the values a rule changes are
  // rewritten". At `high` the list `core, enhancements` keeps both tiers, yet it
  // is re-spelt `core%2Cenhancements` (the comparison is on the trimmed,
  // re-joined text, not on the list).
  it("a features list the level keeps whole is not re-spelt (spaces after commas)", async () => {
    expect(await pathAt("high", "/g?f=core,%20enhancements", { features: { query: "f" } })).toBe(
      "/g?f=core,%20enhancements",
    );
  });

  // Was a defect (edge), fixed (each pair read after a `&`). Names are meant to match "as URLSearchParams reads them",
  // but each pair is parsed alone with `new URLSearchParams(pair)`, which
  // strips a leading `?`: in `?a=1&?steps=50` the parameter a server reads as
  // `?steps` (new URL(u).searchParams.get("?steps") === "50") is degraded as
  // if it were `steps`, and `?steps` is not.
  it("a parameter named ?steps (a stray ? in the query) is not taken for steps", async () => {
    const url = `${P.base}/g?a=1&?steps=50`;
    expect(new URL(url).searchParams.get("steps")).toBeNull();
    expect(await pathAt("medium", "/g?a=1&?steps=50")).toBe("/g?a=1&?steps=50");
  });

  it("a fallback chain still finds its prefix and rebases the rest, edited query included", async () => {
    P.on(send(503));
    S.on((hit) => send(200, { path: hit.path })(hit));
    const { clock, resilience } = degraded(
      "medium",
      { steps: { query: "steps" } },
      {
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "p", url: `${P.base}/v1` },
              { name: "s", url: `${S.base}/v2` },
            ],
          },
        ]),
      },
    );
    const res = await clock.run(resilience.fetch(`${P.base}/v1/img?p=a/b&steps=50&q=%20`));
    expect(await res.json()).toEqual({ path: "/v2/img?p=a/b&steps=30&q=%20" });
    expect(P.hits[0]?.path).toBe("/v1/img?p=a/b&steps=30&q=%20");
  });

  it("a Request input through resilience.fetch, and a ky call with searchParams", async () => {
    P.on(send(200, {}));
    const { clock, resilience } = degraded("low", { steps: { query: "steps" }, model: { query: "m" } });
    await clock.run(resilience.fetch(new Request(`${P.base}/g?st%65ps=50&x=a b&m=premium`)));
    expect(P.hits[0]?.path).toBe("/g?st%65ps=20&x=a%20b&m=basic");
    const api = createClient({ prefix: P.base, resilience });
    await clock.run(api.get("g", { searchParams: { steps: 50, p: "a/b", m: "standard" } }));
    expect(P.hits[1]?.path).toBe("/g?steps=20&p=a%2Fb&m=basic");
  });
});

// ---------------------------------------------------------------------------
// (3) the browser hint
// ---------------------------------------------------------------------------

describe("browser hint on RetryExhaustedError (document and location stubbed)", () => {
  beforeEach(() => {
    vi.stubGlobal("document", {});
    vi.stubGlobal("location", { origin: "https://app.example" });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  const failing = (options: ResilienceOptions = {}) => {
    const seen: Array<{ body: unknown }> = [];
    const resilience = createResilience({
      clock: new TestClock(),
      retry: false,
      breaker: false,
      redirects: "platform",
      fetch: async (input, init) => {
        seen.push({ body: init?.body ?? (input instanceof Request ? input.body : undefined) });
        throw new TypeError("Failed to fetch");
      },
      ...options,
    });
    return { resilience, seen };
  };
  const stream = (text = "hello") =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(text));
        c.close();
      },
    });

  it("same origin, stream body: names the streamed body only", async () => {
    const { resilience } = failing();
    const error = await caught(
      resilience.fetch("https://app.example/up", { method: "PUT", body: stream(), duplex: "half" } as RequestInit),
    );
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).message).toMatch(/\(probably the streamed request body \(Chromium[^)]*\)\)$/);
    expect((error as Error).message).not.toMatch(/CORS/);
  });

  it("cross origin, stream body: the stream first, then CORS, which names redirect targets too", async () => {
    const { resilience } = failing();
    const error = await caught(
      resilience.fetch("https://api.example/up", { method: "PUT", body: stream(), duplex: "half" } as RequestInit),
    );
    const message = (error as Error).message;
    expect(message.indexOf("streamed request body")).toBeGreaterThan(-1);
    expect(message.indexOf("streamed request body")).toBeLessThan(message.indexOf("CORS"));
    expect(message).toMatch(/; or refused by the browser's CORS rules: https:\/\/api\.example must allow/);
    expect(message).toMatch(/as must any origin it redirects to/);
  });

  it("cross origin, bytes body: CORS only, redirect targets named", async () => {
    const { resilience } = failing();
    const error = await caught(resilience.fetch("https://api.example/up", { method: "PUT", body: "x" }));
    expect((error as Error).message).toMatch(
      /\(probably refused by the browser's CORS rules: .*redirects to \(which sees the origin null\);/,
    );
    expect((error as Error).message).not.toMatch(/stream/);
  });

  it("a Request with a small stream body is read into bytes: sent as bytes, no stream hint (same origin: no hint)", async () => {
    const { resilience, seen } = failing();
    const request = new Request("https://app.example/up", {
      method: "PUT",
      body: stream(),
      duplex: "half",
    } as RequestInit);
    const error = await caught(resilience.fetch(request));
    expect(seen[0]?.body).not.toBeInstanceOf(ReadableStream);
    expect((error as Error).message).toBe("gave up after 1 attempt to app.example: Failed to fetch");
  });

  // docs/retry.md: for a Request body larger than maxReplayBytes "what was read
  // and the rest of the stream are sent once, as one stream"; docs/browsers-and-cors.md:
  // a stream is what Chromium refuses over HTTP/1.1, and the hint names it first.
  it("a Request whose body exceeds maxReplayBytes is sent as a stream, and the hint says so", async () => {
    const { resilience, seen } = failing({ maxReplayBytes: 4 });
    const request = new Request("https://app.example/up", {
      method: "PUT",
      body: stream("more than four bytes"),
      duplex: "half",
    } as RequestInit);
    const error = await caught(resilience.fetch(request));
    expect(seen[0]?.body).toBeInstanceOf(ReadableStream);
    expect((error as Error).message).toMatch(/probably the streamed request body/);
  });

  it("a chain's FallbackExhaustedError carries no hint, as documented", async () => {
    const { resilience } = failing({
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: "https://api.example/v1" },
            { name: "b", url: "https://spare.example/v1" },
          ],
        },
      ]),
    });
    const error = await caught(
      resilience.fetch("https://api.example/v1/up", { method: "PUT", body: stream(), duplex: "half" } as RequestInit),
    );
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as Error).message).not.toMatch(/probably/);
  });
});

// ---------------------------------------------------------------------------
// (4) FallbackEndpoint as a union
// ---------------------------------------------------------------------------

describe("FallbackEndpoint union: common user code still compiles", () => {
  it("map, conditional url/respond, spread base, as const, satisfies", () => {
    const urls = ["https://a.example", "https://b.example"];
    const mapped: FallbackEndpoint[] = urls.map((url, i) => ({ name: `e${i}`, url }));
    const cache = (): Response => new Response("cached");
    const useCache = urls.length > 1;
    const conditional: FallbackEndpoint = useCache ? { name: "c", respond: cache } : { name: "c", url: "https://c" };
    const base: FallbackEndpointCommon = { name: "base", headers: { authorization: "k" }, expectedQuality: 0.5 };
    const spread: FallbackEndpoint = { ...base, name: "s", url: "https://s.example" };
    const consts = [
      { name: "x", url: "https://x.example" },
      { name: "y", respond: cache },
    ] as const;
    const chain = {
      name: "chain",
      endpoints: [...mapped, conditional, spread, ...consts],
    } satisfies FallbackChainOptions;
    const chain2 = { name: "chain2", endpoints: consts } satisfies FallbackChainOptions;
    const explicitUndefined: FallbackEndpoint = { name: "u", url: undefined, respond: cache };
    const chain3 = { name: "z", endpoints: [{ name: "z0", url: "https://z.example" }, explicitUndefined] };
    expect(() => fallback([chain, chain2, chain3])).not.toThrow();

    // @ts-expect-error neither url nor respond
    const neither: FallbackEndpoint = { name: "n" };
    // @ts-expect-error both url and respond
    const both: FallbackEndpoint = { name: "b", url: "https://b", respond: cache };
    const maybe: string | undefined = urls[5];
    // @ts-expect-error a url that may be undefined (was accepted before the union)
    const loose: FallbackEndpoint = { name: "l", url: maybe };
    expect([neither, both, loose]).toHaveLength(3);

    // narrowing on the union works
    const describeEndpoint = (e: FallbackEndpoint) => (e.respond ? "respond" : e.url);
    expectTypeOf(describeEndpoint).returns.toEqualTypeOf<string>();
    expect(describeEndpoint(spread)).toBe("https://s.example");
  });

  it("conditional spread of { url } or { respond } builds a valid endpoint", () => {
    const offline = Math.random() > 2;
    const cache = (): Response => new Response("x");
    const ep: FallbackEndpoint = { name: "d", ...(offline ? { respond: cache } : { url: "https://d.example" }) };
    expect(ep.url).toBe("https://d.example");
  });
});
