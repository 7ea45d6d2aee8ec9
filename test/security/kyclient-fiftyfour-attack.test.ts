/**
 * Outside-in attack on the ky client (`createClient` from `@storycore/resilient-fetch/ky`) where it meets the
 * rest of the layer: the retry budget, events, breakers (a redirect's later hop too), cross-origin redirects,
 * hedged chains under ky's own timeout, `onDownloadProgress`, `baseUrl`, a hand-written Standard Schema, `init`
 * hooks, a chain whose every endpoint declines.
 *
 * Docs:
 * - src/ky/index.ts `createClient` JSDoc: "A ky instance whose transport is `resilience.fetch`, with ky's own
 *   retry off so retries happen once, in one place, under the retry budget." "`.json(schema)` validates with any
 *   Standard Schema (zod, valibot, …)." The example `createClient({ prefix: …, resilience: { retry: { maxAttempts:
 *   4 } } })` + `api.post("jobs", { json: { prompt } }).json(JobSchema)`.
 * - docs/retry.md "## ky": "ky's own errors (`HTTPError`, `TimeoutError`) name the URL in their message without
 *   its query, userinfo and fragment"; "an `init` hook that sets either is refused when the call is made (the
 *   client adds its own `init` hook, the last to run, so a call's `hooks: { init: undefined }` no longer clears
 *   the instance's `init` hooks)"; "With ky's retry off, an `afterResponse` hook that returns `ky.retry()` rejects
 *   with ky's `ForceRetryError`, and `beforeRetry` hooks never run."; "`getResilienceInfo` reads the response ky
 *   resolves with …; ky's `afterResponse` hooks get a clone, and `onDownloadProgress` a new response around the
 *   layer's body, which carry none."
 * - docs/retry.md "## Retry budget": "An empty bucket means no retry, never a wait." "earned tokens alone
 *   (`minPerSecond: 0`) let at most 1.1 requests a call reach it".
 * - docs/recipes.md ky row: "the layer's error is | the error itself, unwrapped"; "a final 5xx becomes |
 *   `HTTPError` (`response.status`)".
 * - CHANGELOG.md (Unreleased, Added): "`CircuitOpenError#afterRedirect`: `true` when the breaker refused a
 *   redirect's later hop the library follows … A call refused before anything was sent has no such field."
 * - src/cloudflare/failure-response.ts: "anything else: `502`, a redirect's later hop refused by its open circuit
 *   included".
 * - CHANGELOG.md (migrating from 0.1): "To another origin (… a redirect) only `accept`, `accept-language`,
 *   `content-language`, `content-type`, `idempotency-key`, `user-agent` and the headers you name in
 *   `crossOriginHeaders` go".
 * - docs/fallback.md (hedge): "the first acceptable answer wins and the others are aborted (their upstreams see
 *   the connection closed)"; statistics: "a run its caller aborted … is not counted, nor the endpoint it was
 *   waiting on"; docs/health-and-events.md: "a call its caller aborted is left out, as it is from the error rate".
 * - docs/health-and-events.md: "`retry` fires before each wait"; "`request` fires once per call the layer
 *   started"; debugInfo failures "URLs without their query string".
 *
 * How: `createClient` (./ky), `createResilience`, `getResilienceInfo`, error guards (root), `fallback`
 * (./fallback), `failureResponse` (./cloudflare), `recordEvents` (./testing), zod and a hand-written Standard
 * Schema; two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every request. Backoffs of
 * 1–2 ms, a hedge delay of 5 ms and ky timeouts of 30–40 ms are the only real timers.
 *
 * Paths: plain ky calls (prefix, baseUrl, json POST, searchParams), the layer's retry and budget, a redirect
 * followed by the library (same and other origin, an open breaker on the later hop), a hedged chain, a plain
 * chain, ky hooks (`init`, `afterResponse`, `beforeRetry`), `onDownloadProgress`, `.json(schema)`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found: every claim driven below held.
 *
 * Held (plain `it`):
 * - The JSDoc example: keyless json POST under `prefix`, `maxAttempts: 4`: four requests on 503s, one on a 500.
 * - docs/retry.md "Given to the ky client, it becomes the body of the `Request` ky makes, read ahead as such": a
 *   5-byte `ReadableStream` with a key, answered 503 then 200, is sent twice, whole.
 * - ky calls spend the layer's budget: `minPerSecond: 0`, 20 calls on a dead host reach it 20–22 times (60
 *   without a budget).
 * - Events: a `retry` per layer retry and one `request` per ky call, no query in any event nor in debugInfo;
 *   `beforeRetry` never runs; `afterResponse` returning `ky.retry()` rejects with `ForceRetryError`, one request.
 * - A breaker opened by ky calls refuses the next one with `CircuitOpenError` unwrapped, no `afterRedirect`; a 307
 *   whose later hop's circuit is open rejects with `afterRedirect: true`, and `failureResponse` answers 502.
 * - A 307 to another origin through ky: the json body replayed, `authorization` and `x-trace` kept home,
 *   `idempotency-key` and `content-type` cross.
 * - ky's `timeout` over a hedged chain where both hang: ky's `TimeoutError`, both connections closed, the chain's
 *   statistics, the error rate and the breakers count nothing.
 * - `onDownloadProgress`: the resolved response carries no info (one without it does), progress reported.
 * - `baseUrl` + query + fragment: `HTTPError` and `TimeoutError` message and stack without the query or fragment.
 * - A hand-written async Standard Schema: its output returned; its issues a `SchemaValidationError`.
 * - `hooks: { init: undefined }` on a call keeps the instance's `init` hooks, and one that sets `retry` is
 *   refused with `ConfigError`, nothing sent.
 * - A chain whose every endpoint answers 503: `HTTPError` with the last answer's status, `fromFallback` in its
 *   info; `throwHttpErrors: false` resolves with it.
 *
 * Docs-silent (not pinned):
 * - A `beforeRequest` hook that sets a header value with CR/LF gets the platform's `TypeError` ("Headers.set:
 *   "Bearer …" is an invalid header value"), quoting the value, message and stack: the docs promise the named form
 *   only for `headers` given to a call, `createClient`, `extend` or `create` (all of which held, `Map`, pairs and
 *   `replaceOption` included), and the throw is the caller's own hook's.
 * - The `init` hook refusal is a synchronous throw from `api.get(…)` (as ky's own init hooks throw), not a
 *   rejected promise: a `.catch()` chained on the call never hears it.
 */
import ky, {
  ForceRetryError,
  HTTPError,
  TimeoutError as KyTimeoutError,
  type Options,
  SchemaValidationError,
} from "ky";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { failureResponse } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isConfigError,
  isResilienceError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

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
/** A call that may throw at once or reject: what it ends with, either way. */
const settle = (make: () => Promise<unknown>) => rejection((async () => make())());

describe("retries: the layer's, once, under its budget", () => {
  it("the JSDoc example: a keyless json POST under prefix, maxAttempts 4: four requests on 503s, one on a 500", async () => {
    const JobSchema = z.object({ id: z.string() });
    const api = createClient({ prefix: `${A.base}/v1`, resilience: { retry: { maxAttempts: 4, ...fast } } });
    A.on((h) => (h.n < 4 ? status(503)(h) : json({ id: "j1" })(h)));
    expect(await api.post("jobs", { json: { prompt: "p" } }).json(JobSchema)).toEqual({ id: "j1" });
    expect(A.hits.map((h) => `${h.method} ${h.path} ${h.body}`)).toEqual(Array(4).fill('POST /v1/jobs {"prompt":"p"}'));
    A.reset();
    A.on(status(503));
    const all503 = await rejection(api.post("jobs", { json: { prompt: "p" } }).json(JobSchema));
    expect(all503).toBeInstanceOf(HTTPError);
    expect((all503 as HTTPError).response.status).toBe(503);
    expect(A.hits).toHaveLength(4);
    A.reset();
    A.on(status(500));
    const once500 = await rejection(api.post("jobs", { json: { prompt: "p" } }).json(JobSchema));
    expect((once500 as HTTPError).response.status).toBe(500);
    expect(A.hits).toHaveLength(1);
  });

  it("ky calls spend the layer's retry budget: minPerSecond 0 lets 20 calls reach a dead host 20–22 times", async () => {
    const run = async (budget: false | { ratio: number; minPerSecond: number }) => {
      A.reset();
      A.on(status(503));
      const api = createClient({ resilience: { budget, breaker: false, retry: { maxAttempts: 3, ...fast } } });
      for (let i = 0; i < 20; i++) expect(await rejection(api.get(`${A.base}/b`).text())).toBeInstanceOf(HTTPError);
      return A.hits.length;
    };
    const budgeted = await run({ ratio: 0.1, minPerSecond: 0 });
    expect(budgeted).toBeGreaterThanOrEqual(20);
    expect(budgeted).toBeLessThanOrEqual(22);
    expect(await run(false)).toBe(60);
  });

  it("a small ReadableStream body given to the client is read ahead as a Request's body: replayed after a 503", async () => {
    const api = createClient({ resilience: { retry: { maxAttempts: 3, ...fast } } });
    A.on((h) => (h.n < 2 ? status(503)(h) : status(200, "took")(h)));
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("hello"));
        c.close();
      },
    });
    const res = await api.post(`${A.base}/s`, { body, headers: { "idempotency-key": "k" } });
    expect(await res.text()).toBe("took");
    expect(A.hits.map((h) => h.body)).toEqual(["hello", "hello"]);
  });
});

describe("events and ky's retry hooks", () => {
  it("a retry event per layer retry, one request event, no query anywhere; beforeRetry never runs; ky.retry() is ForceRetryError", async () => {
    const resilience = createResilience({ breaker: false, retry: { maxAttempts: 3, ...fast } });
    const rec = recordEvents(resilience);
    const api = createClient({ resilience });
    let beforeRetry = 0;
    A.on((h) => (h.n < 3 ? status(503)(h) : status(200, "done")(h)));
    const res = await api.get(`${A.base}/e`, {
      searchParams: { key: "SECRET1" },
      hooks: { beforeRetry: [() => void beforeRetry++] },
    });
    expect(await res.text()).toBe("done");
    expect(getResilienceInfo(res)?.attempts).toBe(3);
    expect(A.hits.map((h) => h.path)).toEqual(Array(3).fill("/e?key=SECRET1"));
    expect(rec.of("retry")).toHaveLength(2);
    expect(rec.of("request")).toHaveLength(1);
    expect(rec.of("request")[0]).toMatchObject({ attempts: 3, status: 200 });
    expect(JSON.stringify(rec.events)).not.toContain("SECRET1");
    expect(beforeRetry).toBe(0);

    A.reset();
    A.on(status(500));
    const failed = await rejection(api.get(`${A.base}/f`, { searchParams: { key: "SECRET2" } }).text());
    expect(failed).toBeInstanceOf(HTTPError);
    expect(JSON.stringify(resilience.debugInfo())).not.toContain("SECRET2");
    expect(JSON.stringify(rec.events)).not.toContain("SECRET2");

    A.reset();
    A.on(status(200, "fine"));
    const forced = await rejection(
      api.get(`${A.base}/g`, {
        hooks: { afterResponse: [() => ky.retry()], beforeRetry: [() => void beforeRetry++] },
      }),
    );
    expect(forced).toBeInstanceOf(ForceRetryError);
    expect(A.hits).toHaveLength(1);
    expect(beforeRetry).toBe(0);
    rec.stop();
  });
});

describe("breakers and redirects under the client", () => {
  it("an open circuit refuses the ky call unwrapped; a redirect's later hop refused carries afterRedirect, failureResponse 502", async () => {
    const resilience = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    const api = createClient({ resilience });
    B.on(status(500));
    expect(((await rejection(api.get(`${B.base}/x`).text())) as HTTPError).response.status).toBe(500);
    expect(B.hits).toHaveLength(1);
    expect(resilience.health().status).toBe("unhealthy");

    const seen: unknown[] = [];
    const direct = await rejection(
      api
        .get(`${B.base}/y`, {
          hooks: {
            beforeError: [
              ({ error }) => {
                seen.push(error);
                return error;
              },
            ],
          },
        })
        .text(),
    );
    expect(isCircuitOpenError(direct)).toBe(true);
    expect(seen[0]).toBe(direct);
    expect("afterRedirect" in (direct as object)).toBe(false);
    expect(B.hits).toHaveLength(1);

    A.on(status(307, "", { location: `${B.base}/z` }));
    const hop = await rejection(api.post(`${A.base}/r`, { json: { a: 1 } }).text());
    expect(isCircuitOpenError(hop)).toBe(true);
    expect((hop as { afterRedirect?: boolean }).afterRedirect).toBe(true);
    expect(A.hits).toHaveLength(1);
    expect(B.hits).toHaveLength(1);
    expect(isResilienceError(hop)).toBe(true);
    expect(failureResponse(hop).status).toBe(502);
    expect(failureResponse(direct).status).toBe(503);
  });

  it("a 307 to another origin: the json body replayed; authorization and x-trace stay home, idempotency-key crosses", async () => {
    const api = createClient({
      resilience: { retry: false },
      headers: { authorization: "Bearer SECRET3", "x-trace": "t1" },
    });
    A.on(status(307, "", { location: `${B.base}/there` }));
    B.on(json({ ok: true }));
    const res = await api.post(`${A.base}/here`, { json: { n: 1 }, headers: { "idempotency-key": "k1" } });
    expect(await res.json()).toEqual({ ok: true });
    expect(A.hits[0]?.headers.authorization).toBe("Bearer SECRET3");
    const hop = B.hits[0] as Hit;
    expect(hop.method).toBe("POST");
    expect(hop.body).toBe('{"n":1}');
    expect(hop.headers["idempotency-key"]).toBe("k1");
    expect(hop.headers["content-type"]).toContain("application/json");
    expect(hop.headers.authorization).toBeUndefined();
    expect(hop.headers["x-trace"]).toBeUndefined();
  });
});

describe("ky's timeout over a hedged chain", () => {
  it("both upstreams see the connection closed; the chain's statistics, the error rate and the breakers count nothing", async () => {
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 5 },
          endpoints: [
            { name: "a", url: A.base },
            { name: "b", url: B.base },
          ],
        },
      ]),
    });
    A.on(() => {});
    B.on(() => {});
    const api = createClient({ resilience, timeout: 40 });
    const error = await rejection(api.get(`${A.base}/slow`, { searchParams: { key: "SECRET4" } }).text());
    expect(error).toBeInstanceOf(KyTimeoutError);
    expect(String((error as Error).message)).not.toContain("SECRET4");
    await Promise.all([(await A.nth(1)).closed, (await B.nth(1)).closed]);
    const stats = resilience.fallback.chain("c").statistics();
    expect(Object.values(stats.fallbacks).map((s) => s.calls)).toEqual([0, 0]);
    const health = resilience.health();
    expect(health.errorRate).toBe(0);
    expect(Object.values(health.breakers).map((b) => b.failureCount)).toEqual(
      Object.values(health.breakers).map(() => 0),
    );
  });
});

describe("responses, errors and schemas", () => {
  it("onDownloadProgress: the resolved response carries no info (one without it does), progress reported", async () => {
    const api = createClient({ resilience: { retry: false } });
    A.on(status(200, "0123456789"));
    let progress = 0;
    const withProgress = await api.get(`${A.base}/d`, { onDownloadProgress: () => void progress++ });
    expect(getResilienceInfo(withProgress)).toBeUndefined();
    expect(await withProgress.text()).toBe("0123456789");
    expect(progress).toBeGreaterThan(0);
    const plain = await api.get(`${A.base}/d`);
    expect(getResilienceInfo(plain)?.attempts).toBe(1);
    await plain.arrayBuffer();
  });

  it("baseUrl + query + fragment: HTTPError's and TimeoutError's message and stack keep neither", async () => {
    const api = createClient({ baseUrl: `${A.base}/v1/`, resilience: { retry: false } });
    A.on(status(404));
    const notFound = (await rejection(api.get("items?key=SECRET5#frag=HASH5").text())) as HTTPError;
    expect(notFound).toBeInstanceOf(HTTPError);
    expect(A.hits[0]?.path).toBe("/v1/items?key=SECRET5");
    expect(notFound.message).toContain("/v1/items");
    for (const text of [notFound.message, String(notFound.stack)]) {
      expect(text).not.toContain("SECRET5");
      expect(text).not.toContain("HASH5");
    }
    A.reset();
    A.on(() => {});
    const late = (await rejection(api.get("slow?key=SECRET6#HASH6", { timeout: 30 }).text())) as Error;
    expect(late).toBeInstanceOf(KyTimeoutError);
    expect(late.message).toContain("/v1/slow");
    for (const text of [late.message, String(late.stack)]) {
      expect(text).not.toContain("SECRET6");
      expect(text).not.toContain("HASH6");
    }
    await (await A.nth(1)).closed;
  });

  it(".json(schema) with a hand-written async Standard Schema: its output returned; its issues a SchemaValidationError", async () => {
    const Doubled = {
      "~standard": {
        version: 1 as const,
        vendor: "hand",
        validate: async (value: unknown) => {
          const n = (value as { n?: unknown } | null)?.n;
          return typeof n === "number" ? { value: { n: n * 2 } } : { issues: [{ message: "n must be a number" }] };
        },
      },
    };
    const api = createClient({ resilience: { retry: false } });
    A.on((h) => json(h.n === 1 ? { n: 21 } : { n: "x" })(h));
    expect(await api.get(`${A.base}/s`).json(Doubled)).toEqual({ n: 42 });
    const bad = await rejection(api.get(`${A.base}/s?key=SECRET7`).json(Doubled));
    expect(bad).toBeInstanceOf(SchemaValidationError);
    expect((bad as SchemaValidationError).issues).toEqual([{ message: "n must be a number" }]);
    expect(String((bad as Error).message)).not.toContain("SECRET7");
  });
});

describe("init hooks", () => {
  it("a call's hooks: { init: undefined } keeps the instance's init hooks; one that sets retry is refused, nothing sent", async () => {
    let inits = 0;
    const api = createClient({ resilience: { retry: false }, hooks: { init: [() => void inits++] } });
    A.on(status(200, "a"));
    expect(await api.get(`${A.base}/i`, { hooks: { init: undefined } } as unknown as Options).text()).toBe("a");
    expect(inits).toBe(1);

    const setter = createClient({
      resilience: { retry: false },
      hooks: {
        init: [
          (o) => {
            (o as { retry?: unknown }).retry = 3;
          },
        ],
      },
    });
    const sub = setter.extend({ headers: { "x-sub": "1" } });
    for (const call of [
      () => setter.get(`${A.base}/j`, { hooks: { init: undefined } } as unknown as Options).text(),
      () => setter.post(`${A.base}/j`, { json: {} }).text(),
      () => sub.get(`${A.base}/j`).text(),
    ]) {
      const error = await settle(call);
      expect(isConfigError(error)).toBe(true);
      expect(String((error as Error).message)).toContain("resilience.retry");
    }
    expect(A.hits).toHaveLength(1);
  });
});

describe("a chain whose every endpoint declines", () => {
  it("HTTPError with the last answer's status and fromFallback; throwHttpErrors: false resolves with it", async () => {
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: A.base },
            { name: "b", url: B.base },
          ],
        },
      ]),
    });
    const api = createClient({ resilience });
    A.on(status(503, "from-a"));
    B.on(status(502, "from-b", { "content-type": "text/plain" }));
    const error = (await rejection(api.get(`${A.base}/x`).text())) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(502);
    expect(error.data).toBe("from-b");
    expect(getResilienceInfo(error.response)?.fromFallback).toBe(true);
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
    const res = await api.get(`${A.base}/x`, { throwHttpErrors: false });
    expect(res.status).toBe(502);
    expect(await res.text()).toBe("from-b");
  });
});
