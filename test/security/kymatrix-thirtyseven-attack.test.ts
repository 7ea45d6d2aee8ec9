/**
 * Outside-in attack on the ky client, as a differential matrix: the same options and call through plain ky 2
 * (`ky.create`) and through `createClient`, against one recording server on 127.0.0.1, crossing what a user passes
 * (`prefix`, `searchParams`, `json`, a `Request` input, instance and call `headers`, every hook, `throwHttpErrors`,
 * `timeout`, `parseJson`, body shortcuts, `signal`) with how the server answers (200, 404, 500, 503 with and without
 * `Retry-After`, a reset before and during the body, a hang), comparing what arrived (method, URL, headers, body,
 * requests) and what the caller got (value, error class, message, `response`, `request`, `data`, hooks run and
 * with what).
 * Docs: src/ky/index.ts `createClient` JSDoc ("A ky instance whose transport is `resilience.fetch`, with ky's own
 * retry off so retries happen once, in one place"); docs/retry.md "## ky" ("ky's own errors (`HTTPError`,
 * `NetworkError`, `TimeoutError`) name the URL in their message without its query …: the client's first
 * `beforeError` hook cuts it, so yours see it cut", "With ky's retry off, … `beforeRetry` hooks never run") and
 * "Fetch semantics are kept" ("A caller's abort is never a failure: it stops the wait or the attempt at once and
 * rejects with `signal.reason`"); examples/recipes/ky.ts ("A `timeout` you pass aborts the whole call, retries
 * included", "what the layer throws (`CircuitOpenError`, …) reaches you as is, not wrapped"); docs/recipes.md
 * (ky row: "the layer's error is: the error itself, unwrapped"; "a final 5xx becomes `HTTPError`").
 * How: `createClient` (./ky), `isRetryExhaustedError`/`isTimeoutError` (root) beside plain `ky.create` from the `ky`
 * package (2.1); a node:http server (test/helpers/http-upstream.ts) that records every request.
 * Paths: ky client (get/post, a `Request` input, `extend`), plain ky for comparison; the layer's retry, its attempt
 * timeout; ky's `timeout`; a caller's `signal` (call, instance, `Request`'s own).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: an abort reason ky takes for its own by name (a DOMException TimeoutError) goes to
 * the caller as it is, its beforeError hooks run):
 * 1. docs/retry.md "A caller's abort is never a failure: it … rejects with `signal.reason`" and "## ky" ("the
 *    client's first `beforeError` hook cuts it, so yours see it cut"); plain ky rejects with the reason and runs
 *    the caller's `beforeError` hooks. Observed: when the caller's signal is `AbortSignal.timeout(ms)` (or any
 *    abort whose reason is a `DOMException` named `TimeoutError`), on a call, on the instance or on a `Request`
 *    input, while the server hangs, during the layer's `Retry-After` wait, or already aborted, the client rejects
 *    with `TypeError: Cannot set property message of  which has only a getter`: the reason is lost and the
 *    caller's `beforeError` hooks never run. Mechanism: the client's first `beforeError` hook, `redactMessage`
 *    (src/ky/index.ts, `if (isKyError(error)) error.message = redactUrlsIn(error.message)`), takes the DOMException
 *    for ky's `TimeoutError` (ky's `isKyError` → `isTimeoutError` matches by `name === "TimeoutError"`) and assigns
 *    `message`, an accessor without a setter on `DOMException.prototype`: the assignment throws in module code,
 *    the throw ends ky's hook loop (`Ky.#throwProcessedError`) and becomes the rejection.
 *
 * Held (plain `it`):
 * - 503 (`Retry-After: 0`) then 200 with `prefix`, a string `searchParams`, instance + call headers: the same
 *   value, two identical requests either way; the client runs `beforeRequest` and `afterResponse` once (on the
 *   200), `beforeRetry` never; plain ky runs `afterResponse` per attempt and `beforeRetry` once.
 * - 503 always and 500 then 200: HTTPError alike (status, data, `request.url` with its query; the message
 *   without the query through the client, as documented), three requests each;
 *   a 404 read by `.text()`, `parseJson` shaping `error.data`: alike, one request.
 * - A reset GET: three requests either way; plain ky throws `NetworkError`, the client the layer's
 *   `RetryExhaustedError` unwrapped (no NetworkError), which the caller's `beforeError` hook saw. A reset keyless
 *   POST: one request either way. A reset during the body: the same `TypeError: terminated` from `.text()`.
 * - A keyless POST `json` answered 503 then 200, and a POST `Request` input (own header, own query, a body):
 *   the client's layer re-sends it whole (503 is a decline) and resolves; plain ky throws HTTPError after one
 *   request (POST is not in its retry methods). A `searchParams` added to a POST `Request` input: ky itself
 *   rebuilds the Request from the URL and drops the body, through plain ky and the client alike (not pinned: ky's).
 * - `throwHttpErrors: false` on a 503: both resolve with the 503 (the client after the layer's three attempts).
 * - ky's `timeout` on a hang: the same ky `TimeoutError` and `request` (message cut); ky's `timeout` bounds the whole
 *   client call, the layer's `Retry-After` wait included. The layer's own attempt timeout reaches the caller as
 *   the layer's `TimeoutError`, unwrapped.
 * - An abort with `AbortController.abort()` (AbortError) or a custom reason: the caller's reason either way, the
 *   caller's `beforeError` hook run with it.
 * - `extend({ headers })` on the client: the instance's hooks and headers kept, the layer's retry under it.
 */
import ky, { HTTPError, type KyInstance, TimeoutError as KyTimeoutError, NetworkError, type Options } from "ky";
import { describe, expect, it } from "vitest";
import { isRetryExhaustedError, isTimeoutError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const S = httpUpstream();
serveDuringFile(S);

const fastLayer = { retry: { initialDelay: 1, maxDelay: 2, jitter: "none" as const } };
const fastKy = { limit: 2, delay: () => 1 };

/** Hooks that record each run (name, what they got) into `log`. */
function recordingHooks(log: string[]): NonNullable<Options["hooks"]> {
  return {
    beforeRequest: [
      ({ request, retryCount }) => {
        log.push(`beforeRequest ${request.method} ${retryCount}`);
      },
    ],
    afterResponse: [
      ({ response, retryCount }) => {
        log.push(`afterResponse ${response.status} ${retryCount}`);
      },
    ],
    beforeRetry: [
      ({ error, retryCount }) => {
        log.push(`beforeRetry ${error.name} ${retryCount}`);
      },
    ],
    beforeError: [
      ({ error, request }) => {
        log.push(`beforeError ${error.name} ${request.method}`);
        return error;
      },
    ],
  };
}

interface Seen {
  /** The value, or the error's shape. */
  out: Record<string, unknown>;
  /** The error itself, to compare by identity. */
  error: unknown;
  hooks: string[];
  hits: string[];
}

async function observe(
  make: (hooks: NonNullable<Options["hooks"]>) => KyInstance,
  call: (api: KyInstance) => Promise<unknown>,
  handler: Handler,
): Promise<Seen> {
  S.reset();
  S.on(handler);
  const hooks: string[] = [];
  const api = make(recordingHooks(hooks));
  let out: Record<string, unknown>;
  let caught: unknown;
  try {
    out = { value: await call(api) };
  } catch (error) {
    caught = error;
    const e = error as Error & { response?: Response; data?: unknown; request?: Request };
    out = {
      error: e.name,
      message: e.message.replaceAll(S.base, "B"),
      status: e.response?.status,
      data: e.data,
      request: e.request?.url.replaceAll(S.base, "B"),
    };
  }
  const hits = S.hits.map(
    (h) =>
      `${h.method} ${h.path} ${h.body} a=${h.headers["x-a"] ?? ""} b=${h.headers["x-b"] ?? ""} ct=${h.headers["content-type"] ?? ""}`,
  );
  return { out, error: caught, hooks, hits };
}

/** The same options and call through plain ky (fast retries) and through the client (a fast layer). */
async function both(
  options: Options,
  call: (api: KyInstance) => Promise<unknown>,
  handler: Handler,
  layer: object = fastLayer,
): Promise<{ plain: Seen; client: Seen }> {
  const plain = await observe((hooks) => ky.create({ retry: fastKy, ...options, hooks }), call, handler);
  const client = await observe(
    (hooks) => createClient({ ...(options as object), hooks, resilience: layer } as never),
    call,
    handler,
  );
  return { plain, client };
}

/** `out` without its message: ky's messages keep the query, the client's cut it (documented). */
const noMessage = ({ message: _, ...rest }: Record<string, unknown>) => rest;

const send =
  (status: number, body = '{"a":1}', headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(status, { "content-type": "application/json", ...headers });
    hit.res.end(body);
  };
const firstThen =
  (first: Handler, then: Handler): Handler =>
  (hit) =>
    hit.n === 1 ? first(hit) : then(hit);
const reset: Handler = (hit) => hit.req.socket.destroy();
/** Never answers; the client gives up (the server's connections close at the end of the file). */
const hang: Handler = () => {};

describe("the same call through plain ky and the client: what arrived and what the caller got", () => {
  it("503 (Retry-After: 0) then 200, prefix + searchParams + merged headers: the same value and requests; hooks once per call", async () => {
    const { plain, client } = await both(
      { prefix: S.base, headers: { "x-a": "inst" } },
      (api) => api.get("v1/a", { searchParams: "q=1", headers: { "x-b": "call" } }).json(),
      firstThen(send(503, '{"e":1}', { "retry-after": "0" }), send(200)),
    );
    expect(client.out).toEqual({ value: { a: 1 } });
    expect(client.out).toEqual(plain.out);
    expect(client.hits).toEqual(plain.hits);
    expect(client.hits).toEqual(["GET /v1/a?q=1  a=inst b=call ct=", "GET /v1/a?q=1  a=inst b=call ct="]);
    expect(plain.hooks).toEqual([
      "beforeRequest GET 0",
      "afterResponse 503 0",
      "beforeRetry HTTPError 1",
      "afterResponse 200 1",
    ]);
    expect(client.hooks).toEqual(["beforeRequest GET 0", "afterResponse 200 0"]);
  });

  it("503 always and 500 then 200: HTTPError alike (status, data, request), three requests each", async () => {
    const down = await both({}, (api) => api.get(`${S.base}/a?k=s`).json(), send(503, '{"e":1}'));
    expect(down.client.error).toBeInstanceOf(HTTPError);
    expect(noMessage(down.client.out)).toEqual(noMessage(down.plain.out));
    expect(down.client.out).toMatchObject({
      message: "Request failed with status code 503 Service Unavailable: GET B/a",
    });
    expect(down.client.out).toMatchObject({ status: 503, data: { e: 1 }, request: "B/a?k=s" });
    expect(down.client.hits).toHaveLength(3);
    expect(down.plain.hits).toHaveLength(3);
    expect(down.client.hooks).toEqual(["beforeRequest GET 0", "afterResponse 503 0", "beforeError HTTPError GET"]);

    const flaky = await both({}, (api) => api.get(`${S.base}/a`).json(), firstThen(send(500), send(200)));
    expect(flaky.client.out).toEqual({ value: { a: 1 } });
    expect(flaky.client.out).toEqual(flaky.plain.out);
    expect(flaky.client.hits).toEqual(flaky.plain.hits);
  });

  it("a 404 read by .text(), and parseJson shaping error.data: alike, one request", async () => {
    const text = await both({}, (api) => api.get(`${S.base}/a`).text(), send(404, '{"e":1}'));
    expect(text.client.out).toEqual(text.plain.out);
    expect(text.client.out).toMatchObject({ error: "HTTPError", status: 404, data: { e: 1 } });
    expect(text.client.hits).toHaveLength(1);
    const parsed = await both(
      { parseJson: (t: string) => ({ wrapped: t }) },
      (api) => api.get(`${S.base}/a`).json(),
      send(404, '{"e":1}'),
    );
    expect(parsed.client.out).toEqual(parsed.plain.out);
    expect(parsed.client.out).toMatchObject({ data: { wrapped: '{"e":1}' } });
  });

  it("a reset GET: three requests either way; the client's error is the layer's RetryExhaustedError, unwrapped, seen by beforeError", async () => {
    const { plain, client } = await both({}, (api) => api.get(`${S.base}/a`).json(), reset);
    expect(plain.error).toBeInstanceOf(NetworkError);
    expect(isRetryExhaustedError(client.error)).toBe(true);
    expect(client.error).not.toBeInstanceOf(NetworkError);
    expect(client.hits).toHaveLength(3);
    expect(plain.hits).toHaveLength(3);
    expect(client.hooks).toEqual(["beforeRequest GET 0", "beforeError RetryExhaustedError GET"]);
  });

  it("a reset keyless POST is sent once either way; a reset during the body is the same TypeError", async () => {
    const post = await both({}, (api) => api.post(`${S.base}/a`, { json: { p: 1 } }).json(), reset);
    expect(post.client.hits).toEqual(['POST /a {"p":1} a= b= ct=application/json']);
    expect(post.plain.hits).toEqual(post.client.hits);
    expect(isRetryExhaustedError(post.client.error)).toBe(true);

    const midBody: Handler = (hit) => {
      hit.res.writeHead(200, { "content-length": "100" });
      hit.res.write("abc");
      setTimeout(() => hit.req.socket.destroy(), 20);
    };
    const body = await both({}, (api) => api.get(`${S.base}/a`).text(), midBody);
    expect(body.client.out).toEqual(body.plain.out);
    expect(body.client.out).toMatchObject({ error: "TypeError", message: "terminated" });
  });

  it("a keyless POST (json, and a Request input with a searchParams added) answered 503: the layer re-sends it whole", async () => {
    const json = await both(
      {},
      (api) => api.post(`${S.base}/a`, { json: { p: 1 } }).json(),
      firstThen(send(503), send(200)),
    );
    expect(json.plain.out).toMatchObject({ error: "HTTPError", status: 503 });
    expect(json.plain.hits).toHaveLength(1);
    expect(json.client.out).toEqual({ value: { a: 1 } });
    expect(json.client.hits).toEqual([json.plain.hits[0], json.plain.hits[0]]);

    const req = await both(
      {},
      (api) => api(new Request(`${S.base}/r?s=1`, { method: "POST", body: "xyz", headers: { "x-a": "r" } })).text(),
      firstThen(send(503), send(200)),
    );
    expect(req.plain.hits).toEqual(["POST /r?s=1 xyz a=r b= ct=text/plain;charset=UTF-8"]);
    expect(req.client.hits).toEqual([req.plain.hits[0], req.plain.hits[0]]);
    expect(req.client.out).toEqual({ value: '{"a":1}' });

    // A `searchParams` added to a `Request` input: ky rebuilds the Request from the URL and drops its body, plain
    // ky as the client (ky's own behaviour, not the client's): what arrives is alike.
    const added = await both(
      {},
      (api) =>
        api(new Request(`${S.base}/r?s=1`, { method: "POST", body: "xyz", headers: { "x-a": "r" } }), {
          searchParams: { t: 2 },
        }).text(),
      send(200),
    );
    expect(added.client.hits).toEqual(added.plain.hits);
    expect(added.client.hits).toEqual(["POST /r?s=1&t=2  a=r b= ct=text/plain;charset=UTF-8"]);
  });

  it("throwHttpErrors: false on a 503: both resolve with the 503 (the client after the layer's attempts)", async () => {
    const { plain, client } = await both(
      { throwHttpErrors: false },
      async (api) => (await api.get(`${S.base}/a`)).status,
      send(503),
    );
    expect(plain.out).toEqual({ value: 503 });
    expect(client.out).toEqual({ value: 503 });
    expect(plain.hits).toHaveLength(1);
    expect(client.hits).toHaveLength(3);
  });

  it("ky's timeout on a hang: the same ky TimeoutError, request and hooks; one request", async () => {
    const { plain, client } = await both({ timeout: 80 }, (api) => api.get(`${S.base}/a?k=s`).json(), hang);
    expect(client.error).toBeInstanceOf(KyTimeoutError);
    expect(noMessage(client.out)).toEqual(noMessage(plain.out));
    expect(client.out).toMatchObject({ message: "Request timed out: GET B/a", request: "B/a?k=s" });
    expect(client.hooks).toEqual(plain.hooks);
    expect(client.hits).toHaveLength(1);
  });

  it("ky's timeout bounds the whole client call, the layer's Retry-After wait included", async () => {
    const seen = await observe(
      (hooks) => createClient({ timeout: 150, hooks, resilience: fastLayer }),
      (api) => api.get(`${S.base}/a`).json(),
      send(503, "{}", { "retry-after": "5" }),
    );
    expect(seen.error).toBeInstanceOf(KyTimeoutError);
    expect(seen.hits).toHaveLength(1);
  });

  it("the layer's attempt timeout reaches the caller as the layer's TimeoutError, unwrapped", async () => {
    const seen = await observe(
      (hooks) =>
        createClient({
          hooks,
          resilience: { ...fastLayer, timeout: { attempt: 40 }, retry: { ...fastLayer.retry, maxAttempts: 2 } },
        }),
      (api) => api.get(`${S.base}/a`).json(),
      hang,
    );
    expect(isTimeoutError(seen.error)).toBe(true);
    expect(seen.error).not.toBeInstanceOf(KyTimeoutError);
    expect(seen.hits).toHaveLength(2);
    expect(seen.hooks).toEqual(["beforeRequest GET 0", "beforeError TimeoutError GET"]);
  });

  it("an abort (AbortError, or a custom reason) on a hang: the caller's reason either way, beforeError run with it", async () => {
    for (const reason of [undefined, new Error("mine")]) {
      const controllers: AbortController[] = [];
      const call = (api: KyInstance) => {
        const c = new AbortController();
        controllers.push(c);
        setTimeout(() => c.abort(reason), 40);
        return api.get(`${S.base}/a`, { signal: c.signal }).json();
      };
      const { plain, client } = await both({}, call, hang);
      expect(plain.error).toBe(controllers[0]?.signal.reason);
      expect(client.error).toBe(controllers[1]?.signal.reason);
      expect(client.hooks).toEqual(plain.hooks);
    }
  });

  it("extend({ headers }) on the client keeps the instance's hooks and headers, the layer's retry under it", async () => {
    const seen = await observe(
      (hooks) => createClient({ headers: { "x-a": "inst" }, hooks, resilience: fastLayer }),
      (api) =>
        api
          .extend({ headers: { "x-b": "ext" } })
          .get(`${S.base}/a`)
          .json(),
      firstThen(send(503), send(200)),
    );
    expect(seen.out).toEqual({ value: { a: 1 } });
    expect(seen.hits).toEqual(["GET /a  a=inst b=ext ct=", "GET /a  a=inst b=ext ct="]);
    expect(seen.hooks).toEqual(["beforeRequest GET 0", "afterResponse 200 0"]);
  });
});

describe("defect: an abort whose reason is named TimeoutError (AbortSignal.timeout)", () => {
  it("AbortSignal.timeout on a call, the instance, a Request input, during a Retry-After wait, pre-aborted: the caller's reason, beforeError run", async () => {
    const cases: Array<
      [string, (signal: AbortSignal) => Options, (api: KyInstance, s: AbortSignal) => Promise<unknown>, Handler]
    > = [
      ["call, hang", () => ({}), (api, s) => api.get(`${S.base}/a`, { signal: s }).json(), hang],
      ["instance, hang", (s) => ({ signal: s }), (api) => api.get(`${S.base}/a`).json(), hang],
      ["Request input, hang", () => ({}), (api, s) => api(new Request(`${S.base}/a`, { signal: s })).json(), hang],
      [
        "call, Retry-After wait",
        () => ({}),
        (api, s) => api.get(`${S.base}/a`, { signal: s }).json(),
        send(503, "{}", { "retry-after": "5" }),
      ],
    ];
    const results: Array<[string, unknown, unknown]> = [];
    for (const [name, options, call, handler] of cases) {
      for (const side of ["plain", "client"] as const) {
        const signal = AbortSignal.timeout(60);
        const seen = await observe(
          (hooks) =>
            side === "plain"
              ? ky.create({ retry: fastKy, ...options(signal), hooks })
              : createClient({ ...options(signal), hooks, resilience: fastLayer }),
          (api) => call(api, signal),
          handler,
        );
        results.push([`${side} ${name}`, seen.error === signal.reason, seen.hooks.at(-1)]);
      }
    }
    const pre = new AbortController();
    pre.abort(new DOMException("stop", "TimeoutError"));
    const preSeen = await observe(
      (hooks) => createClient({ hooks, resilience: fastLayer }),
      (api) => api.get(`${S.base}/a`, { signal: pre.signal }).json(),
      hang,
    );
    results.push(["client pre-aborted", preSeen.error === pre.signal.reason, preSeen.hooks.at(-1)]);
    expect(results).toEqual([
      ["plain call, hang", true, "beforeError TimeoutError GET"],
      ["client call, hang", true, "beforeError TimeoutError GET"],
      ["plain instance, hang", true, "beforeError TimeoutError GET"],
      ["client instance, hang", true, "beforeError TimeoutError GET"],
      ["plain Request input, hang", true, "beforeError TimeoutError GET"],
      ["client Request input, hang", true, "beforeError TimeoutError GET"],
      ["plain call, Retry-After wait", true, "beforeError TimeoutError GET"],
      ["client call, Retry-After wait", true, "beforeError TimeoutError GET"],
      ["client pre-aborted", true, "beforeError TimeoutError GET"],
    ]);
  });

  it("the simplest form: api.get(url, { signal: AbortSignal.timeout(50) }) on a hang rejects with the signal's reason", async () => {
    const api = createClient({ resilience: fastLayer });
    S.on(hang);
    const signal = AbortSignal.timeout(50);
    const error = await api
      .get(`${S.base}/a`, { signal })
      .json()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBe(signal.reason);
  });
});
