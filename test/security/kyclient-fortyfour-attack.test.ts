/**
 * Outside-in attack on the ky client (`createClient` from `@storycore/resilient-fetch/ky`): every promise the docs
 * and the JSDoc make about it, driven against real servers and counted by the requests they received.
 * Docs: src/ky/index.ts `createClient` JSDoc ("A ky instance whose transport is `resilience.fetch`, with ky's own
 * retry off so retries happen once, in one place, under the retry budget. ky's 10 s `timeout` is off too unless
 * given", "`.json(schema)` validates with any Standard Schema", "ky's `retry` and `fetch` are refused with a
 * `ConfigError` here, per call, by `extend` and `create`, and when an `init` hook sets them, so no call leaves the
 * layer or retries twice"); docs/retry.md "## ky" ("ky's own errors (`HTTPError`, `NetworkError`, `TimeoutError`)
 * name the URL in their message without its query, userinfo and fragment, as the layer's errors do: the client's
 * first `beforeError` hook cuts it, so yours see it cut and one that throws cannot keep it, and its last cuts what
 * yours wrote", "Passing ky's `retry` or `fetch` is a `ConfigError`, at once, to `createClient`, to a call … and to
 * `extend` or `create`, whose instances run on the same layer", "`getResilienceInfo` reads the response ky
 * resolves with (or `error.response` of its `HTTPError`)"), "## Idempotency" ("A POST or PATCH without an
 * `Idempotency-Key` … is sent again … only when it surely was not processed: on 429 and 503 … After a 500, a reset
 * connection … it is not sent again"), "## Fetch semantics are kept" ("A caller's abort … rejects with
 * `signal.reason`"), "## Bodies" (a call Node's fetch refuses before sending anything "is the caller's mistake too
 * … the call rejects with that `TypeError`"); docs/recipes.md (ky row: "the layer's error is | the error itself,
 * unwrapped"), examples/recipes/ky.ts ("what the layer throws (`CircuitOpenError`, …) reaches you as is, not
 * wrapped"); docs/options.md ("`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and
 * `resilientProxy` check their options when they are made and keep what they read then, so an edit to your objects
 * afterwards changes nothing (plain objects and arrays are copied …)"); docs/fallback.md ("Credentials never cross
 * origins", `transform`); docs/degradation.md (`{ query: "q" }` rules, the default JSON rule).
 * How: `createClient` (./ky), `createResilience`/`getResilienceInfo`/`isCircuitOpenError`/`isTimeoutError`/
 * `isConfigError` (root), `fallback` (./fallback), `degradation` (./degradation), `recordEvents` (./testing), `zod`
 * schemas; node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every request; a transport that
 * never answers under vi's fake timers for ky's own 10 s timer.
 * Paths: ky client (plain call, `prefix` + `searchParams` + `json`, methods, `extend` object and function,
 * `create`, hooks `init`/`beforeRequest`/`afterResponse`/`beforeError`, `.json(zod)`, ky's `timeout`, a caller's
 * `signal`), a `Resilience` instance as `resilience`, a fallback chain (`transform`, another origin), degradation
 * (query rule and JSON body), the layer's bulkhead refusing a retry.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the client's hooks unwrap ky's NetworkError to the layer's error, a beforeError
 * hook that throws has its ky error cut, and extend(fn)'s options are copied as extend({…})'s):
 * 1. docs/recipes.md ky row "the layer's error is | the error itself, unwrapped" and examples/recipes/ky.ts "what
 *    the layer throws … reaches you as is, not wrapped"; docs/retry.md "## Bodies" (a request Node's fetch refuses
 *    before sending anything "is the caller's mistake too …: the call rejects with that `TypeError`"). Observed:
 *    `api.get(url, { headers: { "keep-alive": "timeout=5" } })` (nothing sent) rejects with ky's `NetworkError`
 *    ("Request failed due to a network error: GET …"), the layer's `TypeError: fetch failed` only its `cause`,
 *    where `resilience.fetch` rejects with that `TypeError` itself. ky wraps any rejection of its transport that
 *    looks like a raw network error (`TypeError` "fetch failed"/"terminated": ky's `isRawNetworkError` in
 *    `Ky.#fetch`), and the layer passes the platform's refusals through as they are; the client unwraps nothing
 *    (src/ky/index.ts: `redactMessage` only edits the message). A caller that tells its own mistakes by
 *    `instanceof TypeError`, as the docs say the layer's fetch rejects, gets a `NetworkError` it reads as an outage.
 * 2. docs/retry.md "## ky" ("the client's first `beforeError` hook cuts it, so yours see it cut and one that throws
 *    cannot keep it, and its last cuts what yours wrote"); SECURITY.md ("No secret in … errors … and so does the
 *    message of ky's own errors through `createClient`"). Observed: a caller's `beforeError` hook that adds the
 *    request's URL to ky's message and rethrows (a logger's annotate-and-rethrow) leaves `?key=SECRET` in the
 *    `HTTPError`'s message and stack: its throw ends ky's hook loop (`Ky.#throwProcessedError` awaits each hook), so
 *    the client's last hook, the one that "cuts what yours wrote" (`lastInit` in src/ky/index.ts appends
 *    `redactMessage`), never runs; the cut lives only in hooks, not on the promise the client hands back
 *    (`redacting` cuts synchronous throws only). A hook that returns instead of throwing is cut (held below).
 * 3. docs/options.md "the ky client … check their options when they are made and keep what they read then, so an
 *    edit to your objects afterwards changes nothing (plain objects and arrays are copied …)". Observed:
 *    `api.extend(() => ({ searchParams, json }))` keeps both plain objects by reference: editing them after `extend`
 *    changes the query and the body of every later call of the sub-client, while `api.extend({ searchParams, json })`
 *    (the object form) copies them and is unaffected. `client.extend` in src/ky/index.ts runs the object form
 *    through `plainCopy` but not what the function returns (`cutFirst(refuseChanged(…(options(parent))))`), and ky's
 *    `deepMerge` keeps a first `searchParams` and a new `json` "as-is".
 *
 * Held (plain `it`):
 * - ky's `retry` and `fetch`: `ConfigError` at once to `createClient`, a call, `extend` (object and function),
 *   `create` and from an `init` hook; nothing sent.
 * - `prefix` + object `searchParams` + `json` POST answered 503, 503, 200: three identical requests (the layer's
 *   retry, ky's off), `getResilienceInfo(res).attempts` 3; `extend` and `create` run on the same layer (3 requests
 *   on a 503 GET each, `HTTPError` whose `response` carries the info and whose message lacks the query).
 * - A keyless POST `json`: one request after a 500 and after a reset once received; with
 *   `retry.idempotencyKey: true`, a 500 then 200 is two requests with one key.
 * - ky's timeout: off by default (a transport that never answers is still pending after 11 s of ky's timers, and the
 *   caller's abort ends it with its reason); `timeout: 10_000` given rejects with ky's `TimeoutError` at 10 s. ky's
 *   `timeout` against a hung server: `TimeoutError` with the query cut, the upstream connection closed, the layer's
 *   breaker counts nothing; the layer's `timeout.attempt` reaches the caller as the layer's `TimeoutError`.
 * - Hooks: `beforeRequest` runs once per call whatever the layer retries; `afterResponse` gets a clone without
 *   the info while the resolved response has it; a `beforeError` hook sees the message already cut, and one that
 *   writes the URL and returns has it cut by the client's last hook; one that throws the error unchanged cannot
 *   keep ky's URL.
 * - `.json(zod)`: a valid body parsed, an invalid one `SchemaValidationError`, the query in neither message.
 * - A caller's abort during the layer's retry wait and during `.json()`'s body read: rejects with the caller's
 *   reason; one request.
 * - A `Resilience` instance as `resilience`: its events record the ky calls, a breaker it opened through its own
 *   `fetch` refuses the ky call with `CircuitOpenError` unwrapped (nothing sent), seen by the caller's hook.
 * - The layer's bulkhead refusing a retry: ky's `HTTPError` carries the kept 503 with its body in `data` and the
 *   info on `error.response`.
 * - A fallback chain under the client: a keyless POST declined (503) by the first endpoint goes once to the next
 *   one on another origin, `transform`ed, without `authorization`/`x-api-key`; `fromFallback` in the info;
 *   `.json(zod)` of the spare's answer.
 * - Degradation at `medium`: a `{ query }` rule rewrites ky's `searchParams`, the default rule a `json` body; the
 *   level in the info.
 * - For comparison with defect 1: plain ky wraps the same refusal in `NetworkError` too (the client inherits it).
 *
 * Docs-silent (not pinned):
 * - ky 2's `query()` (HTTP QUERY, safe and idempotent by its draft) is treated as a keyless POST: a 500 is not
 *   retried. docs/retry.md lists only GET, HEAD, OPTIONS, PUT and DELETE as retried freely.
 * - An `afterResponse` hook that returns the clone it was given (`return response`) makes ky resolve with that
 *   clone, which carries no `getResilienceInfo`; the docs say the hooks' clones carry none.
 * - A `beforeError` hook that returns an error of its own class (not ky's) with the URL in it is not cut: the
 *   docs speak of ky's own errors.
 */
import ky, { HTTPError, isNetworkError, TimeoutError as KyTimeoutError, SchemaValidationError } from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isConfigError,
  isTimeoutError,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const status =
  (code: number, body = "x", headers: Record<string, string> = {}) =>
  (h: Hit) => {
    h.res.writeHead(code, headers);
    h.res.end(body);
  };
const json = (value: unknown) => status(200, JSON.stringify(value), { "content-type": "application/json" });
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.useRealTimers();
});

describe("defects", () => {
  it("a request the platform refuses before sending rejects with the layer's TypeError, not ky's NetworkError", async () => {
    const resilience = createResilience({ retry: fast });
    const headers = { "keep-alive": "timeout=5" };
    const direct = await rejection(resilience.fetch(`${A.base}/x`, { headers }));
    expect(direct).toBeInstanceOf(TypeError); // what the layer throws
    const api = createClient({ resilience });
    const error = await rejection(api.get(`${A.base}/x?key=SECRET`, { headers }));
    expect(A.hits.length).toBe(0); // nothing sent, nothing retried
    expect(`${(error as Error).message}`).not.toContain("SECRET");
    // Documented: the layer's error itself, unwrapped. Observed: ky's NetworkError, the TypeError its cause.
    expect(isNetworkError(error)).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("a beforeError hook that adds the URL and rethrows does not keep the query in the message", async () => {
    A.on(status(404));
    const api = createClient({
      resilience: { retry: false },
      hooks: {
        beforeError: [
          ({ error, request }) => {
            error.message = `${error.message} [${request.url}]`; // a logger's annotate-and-rethrow
            throw error;
          },
        ],
      },
    });
    const error = (await rejection(api.get(`${A.base}/jobs?key=SECRET#frag`))) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.message).toContain(`${A.base}/jobs`);
    // Documented: "its last cuts what yours wrote". Observed: "… [http://127.0.0.1:…/jobs?key=SECRET#frag]".
    expect(`${error.message}\n${error.stack}`).not.toContain("SECRET");
  });

  it("extend(fn) keeps what it read then: later edits to its searchParams and json change nothing", async () => {
    const api = createClient({ resilience: { retry: false } });
    const searchParams = { tag: "one" };
    const body = { prompt: "cat" };
    const byObject = api.extend({ searchParams, json: body });
    const byFunction = api.extend(() => ({ searchParams, json: body }));
    searchParams.tag = "two";
    body.prompt = "dog";
    await byObject.post(`${A.base}/object`);
    await byFunction.post(`${A.base}/function`);
    expect(A.hits[0]).toMatchObject({ path: "/object?tag=one", body: '{"prompt":"cat"}' }); // copied
    // Observed: "/function?tag=two", '{"prompt":"dog"}'.
    expect(A.hits[1]).toMatchObject({ path: "/function?tag=one", body: '{"prompt":"cat"}' });
  });
});

describe("ky's retry and fetch are the layer's", () => {
  it("refuses them at once everywhere, nothing sent", async () => {
    const api = createClient({ resilience: { retry: fast } });
    const refusals: unknown[] = [
      thrown(() => createClient({ retry: 2 } as never)),
      thrown(() => createClient({ fetch: globalThis.fetch } as never)),
      thrown(() => api.get(`${A.base}/x`, { retry: 2 })),
      thrown(() => api.post(`${A.base}/x`, { fetch: globalThis.fetch })),
      thrown(() => api.extend({ retry: 1 })),
      thrown(() => api.extend((parent) => ({ ...parent, fetch: globalThis.fetch }))),
      thrown(() => api.create({ retry: 1 })),
      thrown(() =>
        api.get(`${A.base}/x`, {
          hooks: {
            init: [
              (o) => {
                o.retry = 3;
              },
            ],
          },
        }),
      ),
    ];
    expect(refusals.map((e) => isConfigError(e))).toEqual(refusals.map(() => true));
    await wait(10);
    expect(A.hits.length).toBe(0);
  });
});

describe("retried and replayed by the layer", () => {
  it("replays prefix, searchParams and a json body whole; one layer retries", async () => {
    let n = 0;
    A.on((h) => (++n < 3 ? status(503)(h) : json({ ok: true })(h)));
    const api = createClient({ prefix: `${A.base}/v1`, resilience: { retry: fast } });
    const res = await api.post("jobs", { json: { prompt: "cat" }, searchParams: { seed: 7 } });
    expect(await res.json()).toEqual({ ok: true });
    expect(A.hits.map((h) => `${h.method} ${h.path} ${h.body} ${h.headers["content-type"]}`)).toEqual(
      Array(3).fill(`POST /v1/jobs?seed=7 {"prompt":"cat"} application/json`),
    );
    expect(getResilienceInfo(res)?.attempts).toBe(3);
  });

  it("extend and create run on the same layer: HTTPError with the info, message without the query", async () => {
    A.on(status(503, "busy"));
    const api = createClient({ resilience: { retry: fast } });
    for (const sub of [api.extend({ headers: { "x-sub": "1" } }), api.extend(() => ({})), api.create({})]) {
      A.reset();
      A.on(status(503, "busy"));
      const error = (await rejection(sub.get(`${A.base}/x?key=SECRET`))) as HTTPError;
      expect(error).toBeInstanceOf(HTTPError);
      expect(A.hits.length).toBe(3);
      expect(getResilienceInfo(error.response)?.attempts).toBe(3);
      expect(error.data).toBe("busy");
      expect(error.message).toContain(`${A.base}/x`);
      expect(error.message).not.toContain("SECRET");
    }
  });

  it("never sends a keyless POST twice after a 500 or a reset, and keeps one key when it adds one", async () => {
    const api = createClient({ resilience: { retry: fast } });
    A.on(status(500));
    await rejection(api.post(`${A.base}/jobs`, { json: { prompt: "cat" } }));
    expect(A.hits.length).toBe(1);
    A.reset();
    A.on((h) => h.res.socket?.destroy()); // received whole, then the connection goes
    await rejection(api.post(`${A.base}/jobs`, { json: { prompt: "cat" } }));
    expect(A.hits.length).toBe(1);
    A.reset();
    let n = 0;
    A.on((h) => (++n === 1 ? status(500)(h) : json({ id: "j" })(h)));
    const keyed = createClient({ resilience: { retry: { ...fast, idempotencyKey: true } } });
    expect(await keyed.post(`${A.base}/jobs`, { json: { prompt: "cat" } }).json()).toEqual({ id: "j" });
    const keys = A.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys.length).toBe(2);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
  });
});

describe("timeouts", () => {
  function neverAnswers(): { resilience: Resilience; signals: AbortSignal[] } {
    const signals: AbortSignal[] = [];
    const resilience = createResilience({
      retry: false,
      fetch: (input) =>
        new Promise<Response>((_, reject) => {
          const signal = (input as Request).signal;
          signals.push(signal);
          signal.addEventListener("abort", () => reject(signal.reason));
        }),
    });
    return { resilience, signals };
  }

  it("ky's 10 s timeout is off unless given", async () => {
    vi.useFakeTimers();
    const { resilience } = neverAnswers();
    const api = createClient({ resilience });
    const controller = new AbortController();
    let settled: unknown = "pending";
    const call = api.get("https://api.example/x", { signal: controller.signal }).then(
      () => (settled = "resolved"),
      (e: unknown) => (settled = e),
    );
    await vi.advanceTimersByTimeAsync(11_000);
    expect(settled).toBe("pending");
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await call;
    expect(settled).toBe(reason);

    const given = neverAnswers();
    let timedOut: unknown;
    const second = createClient({ resilience: given.resilience })
      .get("https://api.example/x?key=SECRET", { timeout: 10_000 })
      .catch((e: unknown) => (timedOut = e));
    await vi.advanceTimersByTimeAsync(9_990);
    expect(timedOut).toBeUndefined();
    await vi.advanceTimersByTimeAsync(20);
    await second;
    expect(timedOut).toBeInstanceOf(KyTimeoutError);
    expect((timedOut as Error).message).not.toContain("SECRET");
    expect(given.signals[0]?.aborted).toBe(true);
  });

  it("ky's timeout over a hung server closes the connection and counts nothing; the layer's timeout is its own", async () => {
    A.on(() => {});
    const resilience = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const api = createClient({ resilience });
    const error = await rejection(api.get(`${A.base}/slow?key=SECRET`, { timeout: 40 }));
    expect(error).toBeInstanceOf(KyTimeoutError);
    expect((error as Error).message).not.toContain("SECRET");
    await (A.hits[0] as Hit).closed;
    expect(A.hits.length).toBe(1);
    expect(Object.values(resilience.health().breakers).map((b) => b.state)).not.toContain("open");
    A.reset();
    A.on(() => {});
    const layered = createClient({ resilience: { retry: false, timeout: { attempt: 40 } } });
    const own = await rejection(layered.get(`${A.base}/slow`));
    expect(isTimeoutError(own)).toBe(true);
    expect(own).not.toBeInstanceOf(KyTimeoutError);
  });
});

describe("hooks", () => {
  it("beforeRequest once per call, afterResponse a clone without info, the resolved response with it", async () => {
    let n = 0;
    A.on((h) => (++n === 1 ? status(503)(h) : json({ ok: 1 })(h)));
    const seen: string[] = [];
    const api = createClient({
      resilience: { retry: fast },
      hooks: {
        beforeRequest: [({ request }) => void seen.push(`before ${request.method}`)],
        afterResponse: [({ response }) => void seen.push(`after ${response.status} ${!!getResilienceInfo(response)}`)],
      },
    });
    const res = await api.get(`${A.base}/x`);
    expect(A.hits.length).toBe(2);
    expect(seen).toEqual(["before GET", "after 200 false"]);
    expect(getResilienceInfo(res)?.attempts).toBe(2);
  });

  it("beforeError sees the message cut; what it writes and returns is cut; a plain rethrow cannot keep ky's URL", async () => {
    A.on(status(404));
    const seen: string[] = [];
    const writes = createClient({
      resilience: { retry: false },
      hooks: {
        beforeError: [
          ({ error, request }) => {
            seen.push(error.message);
            error.message = `${error.message} [${request.url}]`;
            return error;
          },
        ],
      },
    });
    const a = (await rejection(writes.get(`${A.base}/a?key=SECRET#f`))) as HTTPError;
    expect(seen[0]).toContain(`${A.base}/a`);
    expect(seen[0]).not.toContain("SECRET");
    expect(a.message).toContain(`[${A.base}/a]`);
    expect(`${a.message}${a.stack}`).not.toContain("SECRET");
    expect(a.request.url).toContain("key=SECRET"); // ky's request, as documented

    const rethrows = createClient({
      resilience: { retry: false },
      hooks: {
        beforeError: [
          ({ error }) => {
            throw error;
          },
        ],
      },
    });
    const b = (await rejection(rethrows.get(`${A.base}/b?key=SECRET`))) as HTTPError;
    expect(b).toBeInstanceOf(HTTPError);
    expect(`${b.message}${b.stack}`).not.toContain("SECRET");
  });
});

describe(".json(schema)", () => {
  it("parses a valid body and refuses an invalid one with SchemaValidationError, the query nowhere", async () => {
    const Job = z.object({ id: z.string() });
    const api = createClient({ resilience: { retry: false } });
    A.on(json({ id: "j1" }));
    expect(await api.get(`${A.base}/j?key=SECRET`).json(Job)).toEqual({ id: "j1" });
    A.on(json({ id: 7 }));
    const error = await rejection(api.get(`${A.base}/j?key=SECRET`).json(Job));
    expect(error).toBeInstanceOf(SchemaValidationError);
    expect(`${(error as Error).message}${(error as Error).stack}`).not.toContain("SECRET");
  });
});

describe("aborts", () => {
  it("an abort during the layer's retry wait rejects with the caller's reason, one request", async () => {
    A.on(status(503, "busy", { "retry-after": "5" }));
    const api = createClient({ resilience: { retry: fast } });
    const controller = new AbortController();
    const call = rejection(api.get(`${A.base}/x`, { signal: controller.signal }));
    await A.nth(1);
    await wait(20);
    const reason = new Error("mine");
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(A.hits.length).toBe(1);
  });

  it("an abort while .json() reads the body rejects with the caller's reason", async () => {
    A.on((h) => {
      h.res.writeHead(200, { "content-type": "application/json" });
      h.res.write('{"a":');
    });
    const api = createClient({ resilience: { retry: fast } });
    const controller = new AbortController();
    const call = rejection(api.get(`${A.base}/x`, { signal: controller.signal }).json());
    await A.nth(1);
    await wait(20);
    const reason = new Error("mine");
    controller.abort(reason);
    expect(await call).toBe(reason);
    await (A.hits[0] as Hit).closed;
  });
});

describe("a Resilience instance as resilience", () => {
  it("runs the ky calls on it: its events, and its open breaker refusing the call unwrapped", async () => {
    A.on(status(503));
    const resilience = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    const recorder = recordEvents(resilience);
    const seen: unknown[] = [];
    const api = createClient({
      resilience,
      hooks: {
        beforeError: [
          ({ error }) => {
            seen.push(error);
            return error;
          },
        ],
      },
    });
    expect((await resilience.fetch(`${A.base}/x`)).status).toBe(503); // opens the host's breaker
    const error = await rejection(api.get(`${A.base}/x?key=SECRET`));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(seen).toEqual([error]);
    expect(A.hits.length).toBe(1);
    expect(recorder.events.filter((e) => e.type === "request").length).toBe(2);
    expect(`${(error as Error).message}`).not.toContain("SECRET");
    recorder.stop();
  });

  it("a retry the bulkhead refuses: HTTPError with the kept 503, its body and its info", async () => {
    const held: Hit[] = [];
    A.on((h) => (h.path === "/slow" ? void held.push(h) : status(503, "busy body")(h)));
    const resilience = createResilience({
      retry: { initialDelay: 40, maxDelay: 40, jitter: "none" },
      bulkhead: { maxConcurrent: 1 },
    });
    const api = createClient({ resilience });
    const call = rejection(api.get(`${A.base}/busy`));
    await A.nth(1);
    await wait(10);
    const other = resilience.fetch(`${A.base}/slow`); // holds the host's only slot through the retry wait
    await A.nth(2);
    const error = (await call) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(503);
    expect(error.data).toBe("busy body");
    expect(getResilienceInfo(error.response)?.attempts).toBe(1);
    expect(A.hits.length).toBe(2);
    for (const h of held) h.res.end("done");
    await other;
  });
});

describe("chains and degradation under the client", () => {
  it("a keyless POST declined by p goes once to q on another origin, transformed, credentials home", async () => {
    A.on(status(503, "busy"));
    B.on((h) => json({ id: "j", got: JSON.parse(h.body) })(h));
    const resilience = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "q", url: `${B.base}/v2`, transform: (req) => ({ ...req, body: { wrapped: req.body } }) },
          ],
        },
      ]),
    });
    const api = createClient({
      prefix: `${A.base}/v1`,
      headers: { authorization: "Bearer SECRETKEY", "x-api-key": "SECRETKEY2" },
      resilience,
    });
    const res = await api.post("jobs", { json: { prompt: "cat" }, searchParams: { seed: 7 } });
    expect(await res.clone().json()).toEqual({ id: "j", got: { wrapped: { prompt: "cat" } } });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
    expect(A.hits.map((h) => h.body)).toEqual(['{"prompt":"cat"}', '{"prompt":"cat"}']); // 503: declined, retried
    expect(A.hits[0]?.headers.authorization).toBe("Bearer SECRETKEY");
    expect(B.hits.length).toBe(1);
    expect(B.hits[0]?.path).toBe("/v2/jobs?seed=7");
    expect(JSON.stringify(B.hits[0]?.headers)).not.toContain("SECRETKEY");
    B.reset();
    B.on(json({ id: "k" }));
    expect(await api.post("jobs", { json: { prompt: "dog" } }).json(z.object({ id: z.string() }))).toEqual({
      id: "k",
    });
  });

  it("degradation rewrites ky's searchParams by a query rule and a json body by the default rule", async () => {
    A.on(json({}));
    const byQuery = createResilience({
      retry: false,
      degradation: degradation({ rules: [{ match: A.base, params: { steps: { query: "steps" } } }] }),
    });
    byQuery.degradation?.setLevel("medium");
    const res = await createClient({ prefix: A.base, resilience: byQuery }).get("gen", {
      searchParams: { steps: 50, q: "x" },
    });
    expect(A.hits[0]?.path).toBe("/gen?steps=30&q=x");
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    const byBody = createResilience({ retry: false, degradation: degradation({}) });
    byBody.degradation?.setLevel("medium");
    await createClient({ prefix: A.base, resilience: byBody }).post("gen", {
      json: { steps: 50, quality: 1, resolution: "1080p", seed: 3 },
    });
    expect(JSON.parse(A.hits[1]?.body ?? "")).toEqual({ steps: 30, quality: 0.8, resolution: "720p", seed: 3 });
  });
});

describe("plain ky for comparison", () => {
  it("plain ky wraps the same refusal in NetworkError too (the client inherits it)", async () => {
    const error = await rejection(ky.get(`${A.base}/x`, { headers: { "keep-alive": "timeout=5" }, retry: 0 }));
    expect(isNetworkError(error)).toBe(true);
  });
});
