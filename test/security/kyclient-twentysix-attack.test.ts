/**
 * Outside-in attack on the ky client (`createClient` from `@storycore/resilient-fetch/ky`).
 * Docs: docs/retry.md "## ky" (every sentence); docs/recipes.md (ky row, "axios, ofetch, ky"); docs/options.md
 * (the createClient lines, "unknown keys are an error too", "keep what they read then"); README.md ("drops into
 * anything that takes a custom fetch (ky, …)", rejects when aborted); SECURITY.md ("the message of ky's own
 * errors through `createClient`", "a URL with `user:pass@` is refused at once, in a call"); the recipe
 * examples/recipes/ky.ts ("what the layer throws … reaches you as is, not wrapped").
 * How: `createClient` (./ky), `createResilience`/`getResilienceInfo`/`isConfigError` (root), `fallback`
 * (./fallback), `degradation` (./degradation), `TestClock` (./testing); a real node:http server on 127.0.0.1
 * (test/helpers/http-upstream.ts), a refused origin, a recording transport; vi fake timers for ky's own timers.
 * Paths: plain call, `prefix` + `searchParams` + `json`, a fallback chain, degradation rewriting a JSON body,
 * redirects: "library", hooks (`init`, `beforeRequest`, `afterResponse`, `beforeError`), `extend`/`create`,
 * `.json(zod)`, ky's `timeout`/`totalTimeout`, an abort, a `Request` input.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the first beforeError hook cuts, a call's own retry and fetch refused, a misspelt resilience refused, options copied; 5 by the docs):
 * 1. docs/retry.md "ky's own errors (`HTTPError`, `NetworkError`, `TimeoutError`) name the URL in their message
 *    without its query, userinfo and fragment, as the layer's errors do (a last `beforeError` hook cuts it;
 *    yours run before it)" (and SECURITY.md "and so does the message of ky's own errors through
 *    `createClient`"). Observed: a caller's `beforeError` hook that throws (`throw error`, a logger's rethrow)
 *    instead of returning ends ky's hook loop (`Ky.#throwProcessedError` awaits each hook in turn), so the
 *    client's last hook (`redactMessage`, src/ky/index.ts) never runs: the HTTPError reaches the caller as
 *    "… GET http://127.0.0.1:…/x?key=SECRET#frag". The cut lives only in a hook, not on the promise the client
 *    returns (`redacting` cuts synchronous throws only).
 * 2. docs/retry.md "Passing ky's `retry` or `fetch` is a `ConfigError`, at once, to `createClient`, to a call
 *    (`api.get(url, { retry })`) and to `extend` or `create`". Observed: `api.get(url, { retry: 0 })` (and
 *    `{ fetch: resilience.fetch }`) is taken and sent, while `createClient({ retry: 0 })` and
 *    `extend({ retry: 0 })` are refused: per call only the merged value is checked (`lastInit`'s `check`:
 *    `merged.retry !== 0`), not whether the caller passed the key (`refuseOwn` runs on createClient/extend/create).
 * 3. docs/options.md "unknown keys are an error too, so a typo never silently does nothing" (with "The ky
 *    client's `createClient({ resilience })` … name[s] these options as their callers wrote them").
 *    Observed: `createClient({ resilence: { retry: { maxAttempts: 1 } } })` is accepted without a word; the
 *    calls run on a default layer (three attempts against a 503), and ky forwards `resilence` to the layer's
 *    fetch as an unknown init key on every call. `createClient` takes every key but `resilience` as ky's
 *    options and only `retry`/`fetch` are checked among them (src/ky/index.ts `createClient`, `refuseOwn`).
 * 4. docs/options.md "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and
 *    `resilientProxy` check their options when they are made and keep what they read then, so an edit to your
 *    objects afterwards changes nothing (plain objects and arrays are copied …)". Observed: a plain
 *    `searchParams` object (or `[[k, v]]` array) and a `json` object given to `createClient` are kept by
 *    reference (ky's `deepMerge` keeps the first source's `searchParams` "as-is" and a `json` value not yet in
 *    the result): editing them after `createClient` changes the query and the body of every later call.
 *    (`headers` and hook arrays are copied and held.) `createClient` hands its options to `ky.create` uncopied.
 * 5. docs/retry.md "ky still waits up to 10 s (or its `timeout`, or what is left of its `totalTimeout`) for an
 *    error response's body before it throws `HTTPError` (it reads the body into `error.data`)". Observed: when
 *    what is left of ky's `totalTimeout` is what bounds the wait, ky throws its `TimeoutError`, not `HTTPError`
 *    (ky: "If `totalTimeout` expires while populating `error.data`, Ky throws `TimeoutError` instead of
 *    `HTTPError`"; `Ky.#getResponseData`, `fromTotalTimeout`): the 503 and its `error.response` are lost.
 *    Made exact in docs/retry.md instead (ky's documented behaviour): the test asserts the TimeoutError.
 *
 * Held (plain `it`):
 * - Plain call with `prefix`, `searchParams` (a secret in it) and `json`: sent as ky says; HTTPError's message
 *   names the URL without query or fragment, `error.request.url` keeps it; `getResilienceInfo` on the resolved
 *   response and on `error.response` (an `afterResponse` hook present, `throwHttpErrors: false` too).
 * - A layer's own error (refused origin, `retry: false`) reaches the caller unwrapped (no NetworkError).
 * - ky's `timeout` TimeoutError and ky's `.json()` body-read timeout: messages cut.
 * - A `user:pass@` URL in a call: refused synchronously, the password not in the message.
 * - `retry`/`fetch` to createClient (`{ retry: 0 }` too), to a call (`{ retry: 2 }`), to `extend` (`{ retry: 0 }`
 *   too), `extend(fn)` changing it, `create`,
 *   an `init` hook: ConfigError thrown synchronously, nothing sent; a call's `hooks: { init: undefined }` keeps
 *   the instance's `init` hooks; `afterResponse` returning `ky.retry()` rejects with ForceRetryError and
 *   `beforeRetry` never runs.
 * - A fallback chain ending on a spare's 502: HTTPError with the spare's status, info fromFallback, message cut.
 * - Degradation rewriting a ky POST's JSON body, answered 503: HTTPError whose response carries the level.
 * - redirects: "library": a 302 to a 404 with a secret query: HTTPError message without either query.
 * - `.json(zod)`: a good body parsed, a bad one SchemaValidationError (no URL in it).
 * - An abort mid-call: rejects with the caller's reason, the server's connection closes.
 * - A `Request` input (POST with a body and a secret query): sent whole; its HTTPError message cut.
 * - An error body that never ends with ky's `timeout: 3000`: HTTPError after 3 s, not 10 s.
 */
import { ForceRetryError, HTTPError, TimeoutError as KyTimeoutError, SchemaValidationError } from "ky";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import * as z from "zod";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, isConfigError, isRetryExhaustedError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Handler, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const P = httpUpstream();
const S = httpUpstream();
let REFUSED = "";
serveDuringFile(P, S);
beforeAll(async () => {
  REFUSED = await refusedOrigin();
});
afterEach(() => {
  vi.useRealTimers();
});

const send =
  (code: number, body: unknown = {}, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, { "content-type": "application/json", ...headers });
    hit.res.end(JSON.stringify(body));
  };
const echo: Handler = (hit) => send(200, { method: hit.method, path: hit.path, body: hit.body })(hit);

/** The rejection of `promise` (a resolution fails the test). */
const caught = (promise: Promise<unknown>): Promise<Error> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error as Error,
  );

/** What a synchronous call throws (undefined when it returns). */
function thrown(make: () => unknown): unknown {
  try {
    const out = make();
    // A call that was not refused at once: keep its rejection from going unhandled.
    if (out instanceof Promise) out.catch(() => {});
  } catch (error) {
    return error;
  }
  return undefined;
}

/** A layer that does not retry, on the real network. */
const once = () => createResilience({ retry: false, redirects: "library" });

describe("ky's own errors: the message names the URL without query, userinfo or fragment", () => {
  it("a caller's beforeError hook that rethrows: the HTTPError still reaches the caller cut", async () => {
    P.on(send(404));
    const api = createClient({
      resilience: once(),
      hooks: {
        beforeError: [
          ({ error }) => {
            // A logger's hook that rethrows instead of returning.
            throw error;
          },
        ],
      },
    });
    const error = await caught(api.get(`${P.base}/x?key=SECRET#frag`));
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.message).not.toContain("SECRET");
  });

  it("a plain call (prefix, searchParams with a secret, json): cut message, request kept, info on error.response", async () => {
    P.on(send(404, { nope: true }));
    const api = createClient({ prefix: `${P.base}/v1`, resilience: once(), hooks: { afterResponse: [() => {}] } });
    const error = (await caught(
      api.post("jobs#frag", { searchParams: { api_key: "SECRET" }, json: { prompt: "cat" } }),
    )) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.message).toBe(`Request failed with status code 404 Not Found: POST ${P.base}/v1/jobs`);
    expect(error.request.url).toContain("api_key=SECRET");
    expect(error.data).toEqual({ nope: true });
    expect(getResilienceInfo(error.response)).toMatchObject({ attempts: 1, endpoint: P.host });
    expect(P.hits[0]).toMatchObject({ method: "POST", path: "/v1/jobs?api_key=SECRET", body: '{"prompt":"cat"}' });
    // throwHttpErrors: false resolves with the layer's own response, info and all.
    const res = await api.get("jobs", { throwHttpErrors: false });
    expect(res.status).toBe(404);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 1 });
  });

  it("the layer's own error (refused origin) reaches the caller unwrapped, its URL cut", async () => {
    const api = createClient({ resilience: once() });
    const error = await caught(api.get(`${REFUSED}/x?key=SECRET`));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect(error.message).not.toContain("SECRET");
  });

  it("ky's timeout and its .json() body-read timeout: TimeoutError, cut", async () => {
    P.on(() => {});
    const api = createClient({ resilience: once(), timeout: 50 });
    const first = await caught(api.get(`${P.base}/slow?key=SECRET`));
    expect(first).toBeInstanceOf(KyTimeoutError);
    expect(first.message).toBe(`Request timed out: GET ${P.base}/slow`);
    // Headers at once, then a body that never ends: ky's body read times out.
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write("{");
    });
    const second = await caught(api.get(`${P.base}/body?key=SECRET`).json());
    expect(second).toBeInstanceOf(KyTimeoutError);
    expect(second.message).toBe(`Request timed out: GET ${P.base}/body`);
  });

  it("a user:pass@ URL in a call is refused at once, without the password", () => {
    const api = createClient({ resilience: once() });
    const error = thrown(() => api.get(`http://user:hunter2@${P.host}/x`)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(`${error.message} ${error.stack}`).not.toContain("hunter2");
    expect(P.hits).toHaveLength(0);
  });
});

describe("ky's retry and fetch: a ConfigError at once", () => {
  it("a call's { retry: 0 } is refused as createClient's is", () => {
    const { fetch, sent } = recordingFetch();
    const api = createClient({ resilience: { fetch } });
    // docs/retry.md: "to a call (`api.get(url, { retry })`)".
    expect(isConfigError(thrown(() => api.get("https://api.example/x", { retry: 0 })))).toBe(true);
    expect(sent).toHaveLength(0);
  });

  it("retry/fetch per call, to extend, extend(fn), create and from an init hook: thrown at once, nothing sent", () => {
    const { fetch, sent } = recordingFetch();
    const api = createClient({ resilience: { fetch } });
    const url = "https://api.example/x";
    const refusals = [
      () => createClient({ retry: 0 } as never),
      () => api.extend({ retry: 0 } as never),
      () => api.get(url, { retry: 2 }),
      () => api.post(url, { fetch: globalThis.fetch }),
      () => api.extend({ retry: 1 } as never),
      () => api.extend((parent) => ({ ...parent, retry: 3 })),
      () => api.create({ fetch: globalThis.fetch } as never),
      () =>
        api.extend({
          hooks: {
            init: [
              (o) => {
                o.retry = 2;
              },
            ],
          },
        })(url),
      () =>
        api(url, {
          hooks: {
            init: [
              (o) => {
                o.fetch = globalThis.fetch;
              },
            ],
          },
        }),
    ];
    expect(refusals.map((make) => isConfigError(thrown(make)))).toEqual(refusals.map(() => true));
    expect(sent).toHaveLength(0);
  });

  it("a call's hooks: { init: undefined } keeps the instance's init hooks; ky.retry() is ForceRetryError", async () => {
    const { fetch, sent } = recordingFetch();
    const api = createClient({
      resilience: { fetch },
      hooks: {
        init: [
          (o) => {
            o.headers = { ...(o.headers as object), "x-init": "1" };
          },
        ],
      },
    });
    await api.get("https://api.example/x", { hooks: { init: undefined } as never });
    expect(sent[0]?.headers.get("x-init")).toBe("1");
    let beforeRetry = 0;
    const error = await caught(
      api.get("https://api.example/x", {
        hooks: {
          afterResponse: [() => api.retry()],
          beforeRetry: [() => void beforeRetry++],
        },
      }),
    );
    expect(error).toBeInstanceOf(ForceRetryError);
    expect(beforeRetry).toBe(0);
    expect(sent).toHaveLength(2);
  });
});

describe("createClient's own options", () => {
  it("a misspelt resilience (`resilence`) is a ConfigError, not a silent default layer", async () => {
    const error = thrown(() => createClient({ resilence: { retry: { maxAttempts: 1 } } } as never));
    expect(isConfigError(error)).toBe(true);
  });

  it("an edit to searchParams or json after createClient changes nothing", async () => {
    const { fetch, sent } = recordingFetch();
    const searchParams: Record<string, string> = { page: "1" };
    const json: Record<string, unknown> = { prompt: "cat" };
    const api = createClient({ resilience: { fetch }, searchParams, json, method: "post" });
    searchParams.page = "2";
    json.prompt = "EDITED";
    await api("https://api.example/jobs");
    expect([sent[0]?.url, sent[0]?.body]).toEqual(["https://api.example/jobs?page=1", '{"prompt":"cat"}']);
  });

  it("an edit to headers or a hooks array after createClient changes nothing", async () => {
    const { fetch, sent } = recordingFetch();
    const headers: Record<string, string> = { "x-a": "1" };
    const beforeRequest: Array<() => void> = [];
    const api = createClient({ resilience: { fetch }, headers, hooks: { beforeRequest } });
    let ran = 0;
    headers["x-a"] = "2";
    beforeRequest.push(() => void ran++);
    await api("https://api.example/jobs");
    expect([sent[0]?.headers.get("x-a"), ran]).toEqual(["1", 0]);
  });

  it("the layer's options are named as the caller wrote them", () => {
    const error = thrown(() => createClient({ resilience: { retry: { maxAttempts: 0 } } })) as Error;
    expect(error.message).toBe("resilience.retry.maxAttempts: expected a value >= 1, received 0");
  });
});

describe("ky's wait for an error body", () => {
  const endless = () =>
    new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), {
      status: 503,
      headers: { "content-type": "application/json" },
    });

  it("what is left of ky's totalTimeout bounds the wait, then ky's TimeoutError, without the response", async () => {
    vi.useFakeTimers();
    const api = createClient({ resilience: { retry: false, fetch: async () => endless() }, totalTimeout: 2000 });
    let settled: unknown;
    const call = caught(api.get("https://gen.example/v1/jobs?key=SECRET")).then((error) => (settled = error));
    await vi.advanceTimersByTimeAsync(1990);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(110);
    const error = await call;
    // docs/retry.md (made exact): ky throws its TimeoutError then, and the response is not on it.
    expect(error).toBeInstanceOf(KyTimeoutError);
    expect("response" in error && error.response !== undefined).toBe(false);
    expect(error.message).not.toContain("SECRET");
  });

  it("ky's timeout bounds the wait: HTTPError after 3 s, not 10 s", async () => {
    vi.useFakeTimers();
    const api = createClient({ resilience: { retry: false, fetch: async () => endless() }, timeout: 3000 });
    let settled: unknown;
    const call = caught(api.get("https://gen.example/v1/jobs")).then((error) => (settled = error));
    await vi.advanceTimersByTimeAsync(2990);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(20);
    const error = (await call) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(503);
  });
});

describe("the other paths", () => {
  it("a fallback chain ending on the spare's 502: HTTPError with its status and info, message cut", async () => {
    P.on(send(503));
    S.on(send(502));
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = (await caught(api.get("jobs?key=SECRET"))) as HTTPError;
    expect(error.response.status).toBe(502);
    expect(getResilienceInfo(error.response)).toMatchObject({ fromFallback: true, endpoint: "s" });
    expect(error.message).not.toContain("SECRET");
    expect(S.hits[0]?.path).toBe("/v1/jobs?key=SECRET");
  });

  it("degradation rewrites a ky POST's JSON body; the final 503's HTTPError carries the level", async () => {
    P.on(send(503));
    const resilience = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: `${P.base}/v1`, params: { steps: "steps" } }] }),
    });
    resilience.degradation?.setLevel("low");
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = (await caught(api.post("gen", { json: { steps: 50, prompt: "cat" } }))) as HTTPError;
    expect(JSON.parse(P.hits[0]?.body ?? "")).toEqual({ steps: 20, prompt: "cat" });
    expect(getResilienceInfo(error.response)?.degradationLevel).toBe("low");
  });

  it('redirects: "library": a 302 to a 404, both with a secret query: the message keeps neither', async () => {
    P.on((hit) => {
      if (hit.n === 1) {
        hit.res.writeHead(302, { location: "/there?token=SECRET2" });
        hit.res.end();
      } else send(404)(hit);
    });
    const api = createClient({ resilience: once() });
    const error = (await caught(api.get(`${P.base}/here?key=SECRET1`))) as HTTPError;
    expect(error.response.status).toBe(404);
    expect(P.hits.map((h) => h.path)).toEqual(["/here?key=SECRET1", "/there?token=SECRET2"]);
    expect(error.message).not.toMatch(/SECRET/);
  });

  it(".json(zod): a good body parsed, a bad one SchemaValidationError without the URL", async () => {
    const Job = z.object({ id: z.string() });
    P.on(send(200, { id: "j" }));
    const api = createClient({ resilience: once() });
    expect(await api.get(`${P.base}/j?key=SECRET`).json(Job)).toEqual({ id: "j" });
    P.on(send(200, { id: 7 }));
    const error = await caught(api.get(`${P.base}/j?key=SECRET`).json(Job));
    expect(error).toBeInstanceOf(SchemaValidationError);
    expect(`${error.message}${error.stack}`).not.toContain("SECRET");
  });

  it("an abort mid-call rejects with the caller's reason; the server's connection closes", async () => {
    P.on(() => {});
    const api = createClient({ resilience: once() });
    const controller = new AbortController();
    const call = caught(api.get(`${P.base}/slow`, { signal: controller.signal }));
    const hit = await P.nth(1);
    const reason = new Error("user left");
    controller.abort(reason);
    expect(await call).toBe(reason);
    await hit.closed;
  });

  it("a Request input: sent whole (method, body); its HTTPError message cut", async () => {
    P.on((hit) => (hit.n === 1 ? send(404)(hit) : echo(hit)));
    const api = createClient({ resilience: once() });
    const request = () => new Request(`${P.base}/r?key=SECRET#f`, { method: "POST", body: "hello" });
    const error = await caught(api(request()));
    expect(error.message).toBe(`Request failed with status code 404 Not Found: POST ${P.base}/r`);
    expect(await api(request()).json()).toEqual({ method: "POST", path: "/r?key=SECRET", body: "hello" });
  });
});
