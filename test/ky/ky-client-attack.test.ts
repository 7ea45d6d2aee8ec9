/**
 * Outside-in attack on the ky client (`createClient` from `src/ky`): every
 * promise the docs make for a `Request` input, checked through ky (which
 * always hands its transport a `Request`), against real node:http servers on
 * 127.0.0.1. Time moves on a `TestClock`; nothing sleeps for real beyond a
 * few ms.
 */
import { HTTPError, TimeoutError as KyTimeoutError, SchemaValidationError } from "ky";
import { beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  CircuitOpenError,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isConfigError,
  isRetryExhaustedError,
  isTimeoutError,
  type RedirectEvent,
  type ReplayEvent,
  type RequestEvent,
  type ResilienceOptions,
  type RetryEvent,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream(); // the primary
const S = httpUpstream(); // a spare, another origin
const C = httpUpstream(); // a CDN, another origin
let REFUSED = "";

serveDuringFile(P, S, C);
beforeAll(async () => {
  REFUSED = await refusedOrigin();
});

const send =
  (code: number, body: unknown = {}, headers: Record<string, string> = {}): Handler =>
  (hit) => {
    hit.res.writeHead(code, { "content-type": "application/json", ...headers });
    hit.res.end(JSON.stringify(body));
  };
const seq =
  (...handlers: Handler[]): Handler =>
  (hit) =>
    (handlers[hit.n - 1] ?? (handlers[handlers.length - 1] as Handler))(hit);
const reset: Handler = (hit) => hit.req.socket.destroy();
const hang: Handler = () => {};
const echo: Handler = (hit) =>
  send(200, {
    method: hit.method,
    path: hit.path,
    body: hit.body,
    type: hit.headers["content-type"] ?? null,
  })(hit);

/** A layer on the real network: no jitter, 100 ms backoff, its own TestClock, events recorded. */
function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const resilience = createResilience({
    clock,
    redirects: "library",
    ...options,
    retry: options.retry === false ? false : { jitter: "none", initialDelay: 100, ...options.retry },
  });
  const events: Array<[string, unknown]> = [];
  for (const name of ["retry", "request", "breaker", "replay", "redirect", "fallback"] as const) {
    resilience.on(name, (e: unknown) => events.push([name, e]));
  }
  const of = <T>(name: string): T[] => events.filter(([n]) => n === name).map(([, e]) => e as T);
  return { clock, resilience, of };
}

const caught = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );

// ---------------------------------------------------------------------------

describe("ky client: retries, Retry-After, idempotency", () => {
  it("a 429 with Retry-After: 2 is retried after exactly 2 s on the layer's clock; one request event", async () => {
    P.on(seq(send(429, {}, { "retry-after": "2" }), send(200, { ok: true })));
    const { clock, resilience, of } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    expect(await clock.run(api.get("jobs").json())).toEqual({ ok: true });
    expect(P.hits).toHaveLength(2);
    expect(of<RetryEvent>("retry").map((e) => [e.delay, e.retryAfter])).toEqual([[2000, true]]);
    expect(of<RequestEvent>("request")).toHaveLength(1);
    expect(of<RequestEvent>("request")[0]).toMatchObject({ status: 200, attempts: 2 });
  });

  it("a ky POST json answered 503 then 429 (declined work) is re-sent without a key, byte for byte", async () => {
    P.on(seq(send(503), send(429), send(201, { id: "j" })));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    expect(await clock.run(api.post("jobs", { json: { prompt: "cat" } }).json())).toEqual({ id: "j" });
    expect(P.hits.map((h) => h.body)).toEqual(Array(3).fill('{"prompt":"cat"}'));
    expect(P.hits.map((h) => h.headers["idempotency-key"])).toEqual([undefined, undefined, undefined]);
  });

  it("a Retry-After beyond maxRetryAfter: the 429 reaches ky as HTTPError at once, then the host is held open", async () => {
    P.on(send(429, { slow: true }, { "retry-after": "120" }));
    const { clock, resilience } = layer({ retry: { maxRetryAfter: 10_000 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const first = await clock.run(caught(api.get("jobs")));
    expect(first).toBeInstanceOf(HTTPError);
    expect((first as HTTPError).response.status).toBe(429);
    expect(clock.now()).toBe(0);
    const second = await clock.run(caught(api.get("jobs")));
    expect(isCircuitOpenError(second)).toBe(true);
    expect(P.hits).toHaveLength(1);
  });

  it("retry.idempotencyKey: true: a ky POST gets one key, the same on every attempt", async () => {
    P.on(seq(send(503), send(502), send(201, { id: "j" })));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    await clock.run(api.post("jobs", { json: { prompt: "cat" } }).json());
    const keys = P.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(3); // a 502 on a POST with a key is retried
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    // a second call gets another key
    P.reset();
    await clock.run(api.post("jobs", { json: { prompt: "cat" } }).text());
    expect(P.hits[0]?.headers["idempotency-key"]).not.toBe(keys[0]);
  });

  it("retry.idempotencyKey: true: a ky POST whose connection was reset is retried with the same key", async () => {
    P.on(seq(reset, send(201, { id: "j" })));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    expect(await clock.run(api.post("jobs", { json: { a: 1 } }).json())).toEqual({ id: "j" });
    expect(P.hits).toHaveLength(2);
    expect(P.hits[0]?.headers["idempotency-key"]).toBe(P.hits[1]?.headers["idempotency-key"]);
    expect(P.hits[1]?.body).toBe('{"a":1}');
  });

  it("a ky POST without a key: a reset is not retried (the server may have done the work); refused is", async () => {
    P.on(reset);
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = await clock.run(caught(api.post("jobs", { json: { a: 1 } })));
    expect(error).not.toBeInstanceOf(HTTPError);
    expect(P.hits).toHaveLength(1);

    const refused = layer();
    const errorRefused = await refused.clock.run(
      caught(createClient({ prefix: REFUSED, resilience: refused.resilience }).post("jobs", { json: { a: 1 } })),
    );
    expect(isRetryExhaustedError(errorRefused)).toBe(true);
    expect((errorRefused as { attempts: number }).attempts).toBe(3);
  });

  it("HTTPError carries the final status after retries (503, 502, then 504), and the data of the last answer", async () => {
    P.on(seq(send(503, { n: 1 }), send(502, { n: 2 }), send(504, { n: 3 })));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = (await clock.run(caught(api.get("jobs")))) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(504);
    expect(error.data).toEqual({ n: 3 });
    expect(getResilienceInfo(error.response)?.attempts).toBe(3);
  });
});

// ---------------------------------------------------------------------------

describe("ky client: bodies", () => {
  it("a body larger than maxReplayBytes is sent once, whole; a replay event says so; no retry on 503", async () => {
    P.on(send(503));
    const { clock, resilience, of } = layer({ maxReplayBytes: 64 });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const big = { prompt: "x".repeat(500) };
    const error = await clock.run(caught(api.post("jobs", { json: big })));
    expect(error).toBeInstanceOf(HTTPError);
    expect(P.hits).toHaveLength(1);
    expect(P.hits[0]?.body).toBe(JSON.stringify(big));
    expect(of<ReplayEvent>("replay")).toHaveLength(1);
  });

  it("a PUT body larger than maxReplayBytes is not retried either (idempotent method, but sent once)", async () => {
    P.on(send(503));
    const { clock, resilience } = layer({ maxReplayBytes: 64 });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const big = "y".repeat(10_000);
    await clock.run(caught(api.put("jobs/1", { body: big })));
    expect(P.hits).toHaveLength(1);
    expect(P.hits[0]?.body).toBe(big);
  });

  it("a FormData body (text and a file) is replayed after a 503 with the same bytes and boundary", async () => {
    P.on(seq(send(503), send(200, { ok: true })));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const form = new FormData();
    form.set("prompt", "a cat");
    form.set("image", new Blob([new Uint8Array([0, 1, 2, 255])], { type: "image/png" }), "cat.png");
    await clock.run(api.put("uploads/1", { body: form }).json());
    expect(P.hits).toHaveLength(2);
    const [a, b] = P.hits as [Hit, Hit];
    expect(a.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(b.headers["content-type"]).toBe(a.headers["content-type"]);
    expect(Buffer.compare(a.bytes, b.bytes)).toBe(0);
    const boundary = String(a.headers["content-type"]).split("boundary=")[1];
    expect(a.body).toContain(`--${boundary}`);
    expect(a.body).toContain("a cat");
    expect(a.bytes.includes(Buffer.from([0, 1, 2, 255]))).toBe(true);
  });

  it("a Blob body keeps its type and is replayed after a 503", async () => {
    P.on(seq(send(503), echo));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const body = await clock.run(
      api.put("blob", { body: new Blob(["hello"], { type: "text/x-custom" }) }).json<{ body: string; type: string }>(),
    );
    expect(body).toMatchObject({ body: "hello", type: "text/x-custom" });
    expect(P.hits[0]?.body).toBe("hello");
  });
});

// ---------------------------------------------------------------------------

describe("ky client: fallback chains", () => {
  it("transform edits the JSON body of a ky POST for the spare; the spare gets JSON with the new shape", async () => {
    P.on(send(503));
    S.on(echo);
    const { clock, resilience } = layer({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            {
              name: "s",
              url: `${S.base}/v2`,
              transform: (req) => ({ ...req, body: { input: req.body?.prompt, extra: true } }),
            },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const answer = await clock.run(api.post("jobs?x=1", { json: { prompt: "cat" } }).json());
    expect(answer).toEqual({
      method: "POST",
      path: "/v2/jobs?x=1",
      body: '{"input":"cat","extra":true}',
      type: "application/json",
    });
  });

  it("respond answers a ky call when the primary is refused; getResilienceInfo says fromFallback", async () => {
    const { clock, resilience } = layer({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${REFUSED}/v1` },
            { name: "cache", respond: () => Response.json({ cached: true }) },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${REFUSED}/v1`, resilience });
    const res = await clock.run(api.get("jobs/1"));
    expect(await res.json()).toEqual({ cached: true });
    expect(getResilienceInfo(res)).toMatchObject({ fromFallback: true, endpoint: "cache" });
  });

  it("validate (zod) turns down the primary's bad 200; ky gets the spare's answer, which its own schema accepts", async () => {
    P.on(send(200, { id: 7 }));
    S.on(send(200, { id: "7" }));
    const Job = z.object({ id: z.string() });
    const { clock, resilience } = layer({
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${P.base}/v1`, validate: Job },
            { name: "s", url: `${S.base}/v1`, validate: Job },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    expect(await clock.run(api.get("jobs/7").json(Job))).toEqual({ id: "7" });
    expect([P.hits.length, S.hits.length]).toEqual([1, 1]);
  });

  it("hedge: a ky GET whose primary hangs past the delay is answered by the spare; the primary's connection closes", async () => {
    P.on(hang);
    S.on(send(200, { from: "spare" }));
    const { clock, resilience } = layer({
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 500 },
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    expect(await clock.run(api.get("jobs/1").json())).toEqual({ from: "spare" });
    await (P.hits[0] as Hit).closed;
    expect(S.hits).toHaveLength(1);
  });

  it("hedge: a ky POST with idempotencyKey: true is hedged, the spare gets the same key and body", async () => {
    P.on(hang);
    S.on(echo);
    const { clock, resilience } = layer({
      retry: { idempotencyKey: true },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 500 },
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const answer = await clock.run(api.post("jobs", { json: { prompt: "cat" } }).json());
    expect(answer).toMatchObject({ body: '{"prompt":"cat"}' });
    expect(S.hits[0]?.headers["idempotency-key"]).toBe(P.hits[0]?.headers["idempotency-key"]);
    expect(S.hits[0]?.headers["idempotency-key"]).toBeTruthy();
  });
});

// ---------------------------------------------------------------------------

describe("ky client: degradation", () => {
  it("rewrites a query parameter of a ky GET (searchParams) at medium", async () => {
    P.on(echo);
    const { clock, resilience } = layer({
      degradation: degradation({
        rules: [{ match: `${P.base}/v1`, params: { steps: { query: "steps" }, model: { header: "x-model" } } }],
      }),
    });
    resilience.degradation?.setLevel("medium");
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const answer = await clock.run(
      api.get("gen", { searchParams: { steps: 50, q: "a" }, headers: { "x-model": "premium" } }).json(),
    );
    expect(answer).toMatchObject({ path: "/v1/gen?steps=30&q=a" });
    expect(P.hits[0]?.headers["x-model"]).toBe("standard");
  });

  it("rewrites a nested JSON body path of a ky POST, keeps content-type JSON, and reports the level", async () => {
    P.on(echo);
    const { clock, resilience } = layer({
      degradation: degradation({
        rules: [{ match: `${P.base}/v1`, params: { steps: "parameters.num_inference_steps" } }],
        levelHeader: "x-degradation-level",
      }),
    });
    resilience.degradation?.setLevel("low");
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const res = await clock.run(
      api.post("gen", { json: { parameters: { num_inference_steps: 50 }, big: 2 ** 53 + 1 } }),
    );
    const answer = (await res.json()) as { body: string; type: string };
    expect(JSON.parse(answer.body)).toMatchObject({ parameters: { num_inference_steps: 20 } });
    expect(answer.type).toMatch(/application\/json/);
    expect(P.hits[0]?.headers["x-degradation-level"]).toBe("low");
    expect(getResilienceInfo(res)?.degradationLevel).toBe("low");
  });
});

// ---------------------------------------------------------------------------

describe("ky client: redirects (library follower)", () => {
  it("303 after a ky POST json: the target gets a GET with no body and no content-type", async () => {
    const { clock, resilience, of } = layer();
    P.on(
      seq((hit) => {
        hit.res.writeHead(303, { location: "/v1/jobs/9" });
        hit.res.end();
      }, echo),
    );
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const res = await clock.run(api.post("jobs", { json: { prompt: "cat" } }));
    expect(await res.json()).toEqual({ method: "GET", path: "/v1/jobs/9", body: "", type: null });
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${P.base}/v1/jobs/9`);
    expect(of<RedirectEvent>("redirect")).toHaveLength(1);
  });

  it("307 to another origin after a ky POST json: body and content-type replayed, x-api-key and authorization dropped", async () => {
    P.on((hit) => {
      hit.res.writeHead(307, { location: `${C.base}/put-here` });
      hit.res.end();
    });
    C.on(echo);
    const { clock, resilience, of } = layer();
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      headers: { "x-api-key": "secret", authorization: "Bearer s", "x-keep": "1" },
    });
    const answer = await clock.run(api.post("jobs", { json: { prompt: "cat" } }).json());
    expect(answer).toEqual({ method: "POST", path: "/put-here", body: '{"prompt":"cat"}', type: "application/json" });
    expect(C.hits[0]?.headers["x-api-key"]).toBeUndefined();
    expect(C.hits[0]?.headers.authorization).toBeUndefined();
    expect(C.hits[0]?.headers["x-keep"]).toBeUndefined();
    expect(of<RedirectEvent>("redirect")[0]).toMatchObject({ status: 307, crossOrigin: true });
  });

  it("crossOriginHeaders lets a named header through a ky redirect to another origin", async () => {
    P.on((hit) => {
      hit.res.writeHead(302, { location: `${C.base}/x` });
      hit.res.end();
    });
    C.on(echo);
    const { clock, resilience } = layer({ crossOriginHeaders: ["x-trace"] });
    const api = createClient({ prefix: `${P.base}/v1`, resilience, headers: { "x-trace": "t", "x-api-key": "k" } });
    await clock.run(api.get("a").json());
    expect(C.hits[0]?.headers["x-trace"]).toBe("t");
    expect(C.hits[0]?.headers["x-api-key"]).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------

describe("ky client: timeouts and abort", () => {
  it("timeout.total ends a ky call with the layer's TimeoutError (phase total), not ky's", async () => {
    P.on(hang);
    const { clock, resilience } = layer({ timeout: { total: 1_000 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = await clock.run(caught(api.get("jobs")));
    expect(isTimeoutError(error)).toBe(true);
    expect(error).not.toBeInstanceOf(KyTimeoutError);
    expect((error as TimeoutError).phase).toBe("total");
    expect(clock.pending()).toBe(0);
  });

  it("timeout.attempt on a ky POST without a key: not retried, the layer's TimeoutError (phase attempt)", async () => {
    P.on(hang);
    const { clock, resilience } = layer({ timeout: { attempt: 1_000 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = await clock.run(caught(api.post("jobs", { json: {} })));
    expect(isTimeoutError(error)).toBe(true);
    expect((error as TimeoutError).phase).toBe("attempt");
    expect(P.hits).toHaveLength(1);
    await (P.hits[0] as Hit).closed;
  });

  it("a signal already aborted: rejects with its reason, nothing sent, no request event", async () => {
    const { clock, resilience, of } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const reason = new Error("gone");
    const error = await clock.run(caught(api.get("jobs", { signal: AbortSignal.abort(reason) })));
    expect(error).toBe(reason);
    expect(P.hits).toHaveLength(0);
    expect(of("request")).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------

describe("ky client: hooks, schemas, health, events, sharing", () => {
  it("beforeRequest, afterResponse and beforeError each run once per call, not per retry", async () => {
    P.on(send(503, { err: true }));
    const { clock, resilience, of } = layer();
    const counts = { before: 0, after: 0, error: 0 };
    let status = 0;
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      hooks: {
        beforeRequest: [() => void counts.before++],
        afterResponse: [() => void counts.after++],
        beforeError: [
          ({ error }) => {
            counts.error++;
            status = (error as HTTPError).response?.status ?? 0;
            return error;
          },
        ],
      },
    });
    const error = await clock.run(caught(api.get("jobs")));
    expect(error).toBeInstanceOf(HTTPError);
    expect(counts).toEqual({ before: 1, after: 1, error: 1 });
    expect(status).toBe(503);
    expect(P.hits).toHaveLength(3);
    expect(of<RequestEvent>("request")).toHaveLength(1);
    expect(of<RetryEvent>("retry")).toHaveLength(2);
  });

  it("beforeError runs once for the layer's own error (RetryExhaustedError), which reaches it unwrapped", async () => {
    const { clock, resilience } = layer();
    const seen: unknown[] = [];
    const api = createClient({
      prefix: REFUSED,
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
    const error = await clock.run(caught(api.get("x")));
    expect(isRetryExhaustedError(error)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(error);
  });

  it("health() counts one call per ky call, whatever the retries", async () => {
    P.on(seq(send(503), send(200, {}), send(200, {})));
    const { clock, resilience, of } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    await clock.run(api.get("a").json());
    await clock.run(api.get("b").json());
    expect(of<RequestEvent>("request").map((e) => [e.status, e.attempts])).toEqual([
      [200, 2],
      [200, 1],
    ]);
    const health = resilience.health();
    expect(health.breakers[P.host]?.state ?? "closed").toBe("closed");
    expect(resilience.debugInfo().totals).toMatchObject({ calls: 2, failures: 0 });
  });

  it("createClient({ resilience: instance }) shares the instance's breakers with instance.fetch", async () => {
    P.on(send(500));
    const { clock, resilience } = layer({ breaker: { failureThreshold: 2 }, retry: { maxAttempts: 1 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    await clock.run(caught(api.get("a")));
    await clock.run(caught(api.get("a")));
    const direct = await clock.run(caught(resilience.fetch(`${P.base}/v1/a`)));
    expect(direct).toBeInstanceOf(CircuitOpenError);
    expect(resilience.health().breakers[P.host]?.state).toBe("open");
    const viaKy = await clock.run(caught(createClient({ resilience }).get(`${P.base}/other`)));
    expect(isCircuitOpenError(viaKy)).toBe(true);
    expect(P.hits).toHaveLength(2);
  });

  it(".json(zod) accepts a good body and refuses a bad one with SchemaValidationError (sent once each)", async () => {
    P.on(seq(send(200, { id: "1", n: 2 }), send(200, { id: 1 })));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const Job = z.object({ id: z.string(), n: z.number().int() });
    expect(await clock.run(api.get("a").json(Job))).toEqual({ id: "1", n: 2 });
    expect(await clock.run(caught(api.get("a").json(Job)))).toBeInstanceOf(SchemaValidationError);
    expect(P.hits).toHaveLength(2);
  });

  it("prefix: a path with a leading slash, a query, and a full URL input all go where ky 2 says", async () => {
    P.on(echo);
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1/`, resilience });
    const a = (await clock.run(api.get("jobs/1?x=1").json())) as { path: string };
    expect(a.path).toBe("/v1/jobs/1?x=1");
    const b = (await clock.run(api.get("/jobs/2").json())) as { path: string };
    expect(b.path).toBe("/v1/jobs/2");
  });
});

// ---------------------------------------------------------------------------

describe("ky client: streaming responses", () => {
  it("a large streamed body reaches the ky caller chunk by chunk, before the server has finished", async () => {
    let finish = (): void => undefined;
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/octet-stream" });
      hit.res.write(Buffer.alloc(256 * 1024, 97));
      finish = () => {
        hit.res.write(Buffer.alloc(256 * 1024, 98));
        hit.res.end();
      };
    });
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const res = await clock.run(api.get("stream"));
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let received = 0;
    while (received < 256 * 1024) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      expect(value?.every((b) => b === 97)).toBe(true);
      received += value?.byteLength ?? 0;
    }
    expect(received).toBe(256 * 1024);
    finish();
    let rest = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value.byteLength;
    }
    expect(rest).toBe(256 * 1024);
  });
});

describe("ky client: what else holds", () => {
  it("a body of exactly maxReplayBytes is replayed after a 503; one byte more is sent once", async () => {
    for (const [size, hits] of [
      [64, 2],
      [65, 1],
    ] as const) {
      P.reset();
      P.on(seq(send(503), send(200, {})));
      const { clock, resilience } = layer({ maxReplayBytes: 64 });
      const api = createClient({ prefix: `${P.base}/v1`, resilience });
      await clock.run(caught(api.put("a", { body: "z".repeat(size) }).json()).catch(() => undefined));
      expect(P.hits).toHaveLength(hits);
      expect(P.hits.every((h) => h.body === "z".repeat(size))).toBe(true);
    }
  });

  it("a stalled stream body of a ky call ends with the layer's TimeoutError at timeout.total, nothing sent", async () => {
    const { clock, resilience } = layer({ timeout: { total: 1_000 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode("abc")),
      pull: () => new Promise<void>(() => {}),
    });
    const error = await clock.run(caught(api.put("a", { body: stream })));
    expect(isTimeoutError(error)).toBe(true);
    expect((error as TimeoutError).phase).toBe("total");
    expect(clock.now()).toBe(1_000);
    expect(P.hits).toHaveLength(0);
  });

  it("ky's own timeout is the caller's abort for the layer: outcome aborted, no breaker count, health stays healthy", async () => {
    P.on(hang);
    const { clock, resilience, of } = layer({ breaker: { failureThreshold: 1 } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience, timeout: 20 });
    const error = await caught(api.get("jobs"));
    expect(error).toBeInstanceOf(KyTimeoutError);
    await (P.hits[0] as Hit).closed;
    await new Promise((r) => setTimeout(r, 5));
    expect(of<RequestEvent>("request").map((e) => e.outcome)).toEqual(["aborted"]);
    expect(of("breaker")).toEqual([]);
    expect(resilience.health().status).toBe("healthy");
    expect(clock.pending()).toBe(0);
  });

  it("a caller's Idempotency-Key is kept with idempotencyKey: true; a PATCH gets one, the same after a reset", async () => {
    P.on(seq(send(503), send(200, {})));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    await clock.run(api.post("a", { json: {}, headers: { "Idempotency-Key": "mine" } }).text());
    expect(P.hits.map((h) => h.headers["idempotency-key"])).toEqual(["mine", "mine"]);
    P.reset();
    P.on(seq(reset, send(200, {})));
    await clock.run(api.patch("a", { json: { a: 1 } }).text());
    const keys = P.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBeTruthy();
    expect(keys[1]).toBe(keys[0]);
  });

  it("a ky POST without a key is not hedged: the spare gets nothing", async () => {
    P.on(hang);
    const { clock, resilience } = layer({
      timeout: { attempt: 2_000 },
      fallback: fallback([
        {
          name: "g",
          hedge: { delay: 500 },
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    await clock.run(caught(api.post("gen", { json: {} })));
    expect([P.hits.length, S.hits.length]).toEqual([1, 0]);
  });

  it("a chain that ends on failed answers: ky's HTTPError carries the last endpoint's status and its info", async () => {
    P.on(send(503));
    S.on(send(502, { from: "s" }));
    const { clock, resilience } = layer({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "g",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v1` },
          ],
        },
      ]),
    });
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const error = (await clock.run(caught(api.get("x")))) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.response.status).toBe(502);
    expect(getResilienceInfo(error.response)).toMatchObject({ endpoint: "s", fromFallback: true });
  });

  it("a ky Request's own properties (cache, referrerPolicy, credentials) reach the transport on the spare, with the degraded query", async () => {
    P.on(send(503));
    S.on(echo);
    const seen: Array<Record<string, unknown>> = [];
    const recording = (input: RequestInfo | URL, init?: RequestInit) => {
      const r = input instanceof Request ? input : undefined;
      seen.push({
        url: r ? r.url : String(input),
        cache: init?.cache ?? r?.cache,
        referrerPolicy: init?.referrerPolicy ?? r?.referrerPolicy,
        credentials: init?.credentials ?? r?.credentials,
      });
      return globalThis.fetch(input, init);
    };
    const { clock, resilience } = layer({
      fetch: recording,
      retry: { maxAttempts: 1 },
      degradation: degradation({ rules: [{ params: { steps: { query: "steps" } } }] }),
      fallback: fallback([
        {
          name: "g",
          endpoints: [
            { name: "p", url: `${P.base}/v1` },
            { name: "s", url: `${S.base}/v2` },
          ],
        },
      ]),
    });
    resilience.degradation?.setLevel("low");
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const answer = await clock.run(
      api
        .get("x", {
          searchParams: { steps: 50 },
          cache: "no-store",
          referrerPolicy: "no-referrer",
          credentials: "omit",
        })
        .json(),
    );
    expect(answer).toMatchObject({ path: "/v2/x?steps=20" });
    const props = { cache: "no-store", referrerPolicy: "no-referrer", credentials: "omit" };
    expect(seen).toEqual([
      { url: `${P.base}/v1/x?steps=20`, ...props },
      { url: `${S.base}/v2/x?steps=20`, ...props },
    ]);
  });
});

// ---------------------------------------------------------------------------
// Defects
// ---------------------------------------------------------------------------

describe("ky client: defects", () => {
  // Were defects, fixed: createClient refused ky's `retry` and `fetch` only at creation; the instance
  // took them per call and through `.extend` without a word. ky then retried the layer's final answer
  // (a GET to a host that stays 503 cost 3 x 3 = 9 requests), or a per-call `fetch` replaced the layer
  // (no retry, no breaker, no request event). docs/retry.md (## ky): "Passing ky's `retry` or `fetch`
  // is a `ConfigError`": now on every way in, at once, with nothing sent.
  it("ky's retry or fetch per call, through extend or create, is a ConfigError at once, with nothing sent", () => {
    P.on(send(503));
    const { resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const own = (i: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(i, init);
    const attempts: Array<[string, () => unknown]> = [
      ["retry", () => api.get("jobs", { retry: { limit: 2, delay: () => 1 } })],
      ["retry", () => api("jobs", { retry: 2 })],
      ["fetch", () => api.post("jobs", { fetch: own })],
      ["retry", () => api.extend({ retry: { limit: 2 } })],
      ["fetch", () => api.extend((parent) => ({ ...parent, fetch: own }))],
      ["retry", () => api.extend({ headers: { a: "1" } }).get("jobs", { retry: 1 })],
      ["fetch", () => api.create({ fetch: own })],
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

  it("every request method refuses ky's retry per call", () => {
    const { resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    for (const method of ["get", "post", "put", "patch", "head", "delete", "query"] as const) {
      expect(() => api[method]("jobs", { retry: 1 }), method).toThrow(/resilience\.retry/);
    }
    expect(P.hits).toHaveLength(0);
  });

  it("what extend and create return still runs on the layer: 3 attempts, one request event", async () => {
    P.on(send(503));
    const { clock, resilience, of } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const extended = api.extend((parent) => ({ ...parent, headers: { "x-from": "extend" } }));
    const created = api.create({ prefix: `${P.base}/v2` });
    for (const client of [extended, created]) {
      const error = await clock.run(caught(client.get("jobs")));
      expect(error).toBeInstanceOf(HTTPError);
    }
    expect(P.hits.map((hit) => hit.path)).toEqual([...Array(3).fill("/v1/jobs"), ...Array(3).fill("/v2/jobs")]);
    expect(P.hits[0]?.headers["x-from"]).toBe("extend");
    expect(of<RequestEvent>("request")).toHaveLength(2);
  });

  // Was a gap in the docs, now written (docs/retry.md, "Bodies"): a `FormData` given to resilience.fetch is
  // sized by its names, values and files; through ky it arrives as a `Request`, whose body is measured in
  // the bytes it sends, the multipart framing included. A form of 20 bytes of names and values, under
  // `maxReplayBytes: 100`, is retried when given directly and sent once (a `replay` event) through ky.
  it("a FormData body: sized by its names and values when given directly, by its multipart bytes through ky", async () => {
    P.on(seq(send(503), send(200, {})));
    const { clock, resilience, of } = layer({ maxReplayBytes: 100 });
    const direct = new FormData();
    direct.set("prompt", "a cat on a mat"); // 6 + 14 = 20 bytes of names and values
    expect((await clock.run(resilience.fetch(`${P.base}/v1/u`, { method: "PUT", body: direct }))).status).toBe(200);
    expect(P.hits).toHaveLength(2);

    P.reset();
    P.on(seq(send(503), send(200, {})));
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const form = new FormData();
    form.set("prompt", "a cat on a mat");
    const res = await clock.run(api.put("u", { body: form, throwHttpErrors: false }));
    expect(res.status).toBe(503);
    expect(P.hits).toHaveLength(1);
    const [replay] = of<ReplayEvent>("replay");
    expect(replay?.limit).toBe(100);
    expect(replay?.bytes).toBeGreaterThan(100);
    expect(P.hits[0]?.body).toContain("a cat on a mat");
  });

  // Was a defect, fixed: rewriting `steps` re-serialised the whole query through URLSearchParams, so
  // every other parameter was re-encoded (`a/b` → `a%2Fb`, `a%20b` → `a+b`, `1:2` → `1%3A2`,
  // `flag` → `flag=`) and a repeated `steps` collapsed to one. Only the named values change now.
  it("a degraded query parameter leaves the other parameters as the caller wrote them", async () => {
    P.on(echo);
    const { clock, resilience } = layer({
      degradation: degradation({ rules: [{ match: `${P.base}/v1`, params: { steps: { query: "steps" } } }] }),
    });
    resilience.degradation?.setLevel("medium");
    const api = createClient({ prefix: `${P.base}/v1`, resilience });
    const answer = await clock.run(api.get("gen?path=a/b&x=a%20b&flag&t=1:2&steps=50").json());
    expect(answer).toMatchObject({ path: "/v1/gen?path=a/b&x=a%20b&flag&t=1:2&steps=30" });
  });

  // Was a silent gap, now documented (docs/recipes.md, "axios, ofetch, ky"): getResilienceInfo reads the
  // Response the layer resolved with; ky hands its afterResponse hooks a clone and, with
  // onDownloadProgress, resolves with a new Response around the layer's body: neither carries it.
  it("getResilienceInfo: on the response ky resolves with, not on the copies ky makes (hooks, onDownloadProgress)", async () => {
    P.on(seq(send(503), send(200, { a: 1 })));
    const { clock, resilience } = layer();
    const inHook: unknown[] = [];
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      hooks: { afterResponse: [({ response }) => void inHook.push(getResilienceInfo(response))] },
    });
    const plain = await clock.run(api.get("x"));
    expect(getResilienceInfo(plain)).toMatchObject({ attempts: 2 });
    expect(inHook).toEqual([undefined]);
    P.reset();
    P.on(send(200, { a: 1 }));
    const progress = await clock.run(api.get("x", { onDownloadProgress: () => {} }));
    expect(await progress.json()).toEqual({ a: 1 });
    expect(getResilienceInfo(progress)).toBeUndefined();
  });
});
