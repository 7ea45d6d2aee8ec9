/**
 * Outside-in attack on the recipes of docs/recipes.md and examples/recipes
 * THROUGH the clients they are written for, on the parts earlier attacks
 * (test/recipes/sdk-attack.test.ts, through-clients.test.ts, the recipe
 * tests) left alone: the `replicate` 1.4 client (`run` with a `signal`,
 * `Prefer: wait`, file uploads, its own repeats on 429, `stream`, the breaker
 * over repeated calls), ofetch 1.5 (its `onResponseError`, its `timeout`
 * during the layer's backoff, its parsing of a retried response, `raw`),
 * ky 2.1 through `createClient` (message redaction, `getResilienceInfo` past
 * an `afterResponse` hook, `ky.retry()`, an `init` hook setting `retry`) and
 * through a plain `ky.create({ fetch })`, axios's fetch adapter with
 * `responseType: "stream"` and a `signal`, and the Hono Worker recipe under
 * its own fallback chain. Real node:http servers on 127.0.0.1; public
 * entries only (src/index.ts, src/fallback, src/ky, src/cloudflare,
 * src/testing); the recipes are inlined as written (they import the package
 * by its built name). Backoffs run on a TestClock: nothing sleeps.
 *
 * Defects pinned (first `it.fails`, each asserting what the docs said, on
 * the code they were written against; both fixed since, so plain `it`: 1 in
 * the docs, which now say what `run` does with its signal, and its tests
 * hold that; 2 in the recipe, which this file now imports as it is):
 * 1. docs/recipes.md (Replicate): "The client has no timeout: pass a
 *    `signal` (`AbortSignal.timeout(ms)`) to bound a call." and
 *    examples/recipes/replicate.ts: "pass `signal` (e.g.
 *    `AbortSignal.timeout(ms)`) to bound a whole call". Observed: through
 *    the client's main call, `replicate.run(ref, { input, signal })`, the
 *    signal bounds nothing: aborted before the call (or while the
 *    `Prefer: wait` create hangs), the create is still sent (and left to
 *    hang), then a poll, then a cancel, and `run` RESOLVES (with the
 *    canceled prediction's `null` output) instead of rejecting. Cause: in the
 *    client, not src: replicate 1.4's `run()` takes `signal` out of its
 *    options and passes it neither to `predictions.create` nor to `wait()`'s
 *    `predictions.get`; it only checks it between polls and then cancels the
 *    prediction. The recipe's sentence holds for `predictions.create/get`
 *    (held below), not for `run`, and says nothing of the difference.
 * 2. examples/recipes/hono-worker.ts: "A provider's final answer (even a
 *    503) is passed through as is." (docs/recipes.md table, Hono: "a final
 *    5xx becomes: passed through to your client"). Observed: the status
 *    and body pass, but every header except `content-type` is dropped:
 *    the provider's `Retry-After` (and `x-request-id`, …) never reach the
 *    Worker's client, so the Worker's clients do not back off on a
 *    provider's 503/429, while the same recipe adds `Retry-After` to its own
 *    open-breaker 503 "so the Worker's own clients back off too". The
 *    layer keeps them (held below). Cause: the recipe's route builds
 *    `new Response(upstream.body, { status, headers: { "content-type": … } })`,
 *    copying one header.
 *
 * Held (plain `it`):
 * - replicate `predictions.create({ signal })` aborted while a
 *   `Prefer: wait=60` create hangs: rejects with the caller's reason, the
 *   upstream connection is closed, the create sent once;
 * - replicate `files.create` (FormData) answered 503: re-sent whole by the
 *   layer (same parts), the client's ApiError never seen;
 * - replicate GET answered 429 `Retry-After: 2`: waited exactly 2 s by the
 *   layer alone, 2 requests;
 * - replicate POST answered 429 every time: the layer's 3 attempts, not
 *   6 × 3, ApiError 429;
 * - replicate on a dead host: four calls of 3 attempts, then the breaker is
 *   open and the fifth call is `CircuitOpenError` unwrapped, nothing sent
 *   ("A dead host opens within four calls", docs/breakers.md);
 * - replicate `stream()`: the prediction's SSE arrives event by event;
 * - ofetch (`retry: 0`): a final 503 is one `onResponseError`, `FetchError`
 *   with `statusCode` 503 and the last attempt's body; ofetch's `timeout`
 *   during the layer's backoff ends the call, nothing more sent, no timer
 *   left; a POST body retried after a 503 is parsed from the final answer;
 *   `ofetch.raw` keeps `getResilienceInfo`; the layer's `TimeoutError` is
 *   `FetchError.cause`;
 * - ky: a plain `ky.create({ fetch: resilience.fetch })` multiplies retries
 *   as docs/recipes.md point 1 warns (9 requests; ky's own
 *   backoff set to 0), `retry: 0` gives the
 *   layer's 3; `createClient`: `HTTPError` message without the query,
 *   `getResilienceInfo` on the resolved response and on `HTTPError.response`
 *   past an `afterResponse` hook, `ky.retry()` rejecting with
 *   `ForceRetryError` and no `beforeRetry` run, an `init` hook setting
 *   `retry` refused with `ConfigError`, nothing sent;
 * - axios fetch adapter, `responseType: "stream"` + `signal`: the first
 *   chunk readable before the body ends, the abort closes the upstream.
 */
import { createResilience as createBuiltResilience } from "@storycore/resilient-fetch";
import axios from "axios";
import ky, { type HTTPError } from "ky";
import { type FetchError, ofetch } from "ofetch";
import { describe, expect, it } from "vitest";
import { createApp, type Env, layerOptions } from "../../examples/recipes/hono-worker.ts";
import { createReplicate as createRecipeReplicate } from "../../examples/recipes/replicate.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, seededRandom, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream();
const S = httpUpstream();
serveDuringFile(P, S);

function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock();
  const resilience = createResilience({ clock, random: seededRandom(1), ...options });
  return { clock, resilience, recorder: recordEvents(resilience) };
}
const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const json = (hit: Hit, status: number, body: unknown, headers: Record<string, string> = {}) =>
  hit.res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));

// examples/recipes/replicate.ts itself (its types are all it takes from the package).
const createReplicate = (resilience: Resilience) =>
  createRecipeReplicate(resilience, { auth: "r8_test", baseUrl: `${P.base}/v1` });

// examples/recipes/ofetch.ts and axios.ts, as written.
const createOfetch = (resilience: Resilience, timeout = 120_000) =>
  ofetch.create({ baseURL: `${P.base}/v1`, retry: 0, timeout }, { fetch: resilience.fetch });
const createAxios = (resilience: Resilience) =>
  axios.create({ baseURL: `${P.base}/v1`, adapter: "fetch", env: { fetch: resilience.fetch }, timeout: 120_000 });

// examples/recipes/hono-worker.ts itself (its fix is what the Hono tests hold), on the package as built.
const env = (): Env => ({ IMAGES_URL: P.base, IMAGES_KEY: "k-images", SPARE_URL: S.base, SPARE_KEY: "k-spare" });
/** The recipe's layer on a TestClock, without its timeouts (they would fire while real I/O is under way). */
const recipeLayer = (e: Env, clock: TestClock) => {
  const { timeout: _, ...options } = layerOptions(e);
  return createBuiltResilience({ ...options, clock });
};

const prediction = (status: string, extra: Record<string, unknown> = {}) => ({
  id: "p1",
  version: "v1",
  status,
  input: { prompt: "a cat" },
  output: status === "succeeded" ? ["https://replicate.delivery/p1/out.png"] : null,
  urls: { get: `${P.base}/v1/predictions/p1`, cancel: `${P.base}/v1/predictions/p1/cancel` },
  ...extra,
});
/** A Replicate API: create answers "starting", a poll "starting", a cancel "canceled". */
const replicateApi = (hit: Hit) =>
  hit.path.endsWith("/cancel")
    ? json(hit, 200, prediction("canceled"))
    : json(hit, hit.method === "POST" ? 201 : 200, prediction("starting"));

describe("replicate on replicateFetch (examples/recipes/replicate.ts)", () => {
  // Defect 1 was the docs' sentence; they now say what run() does with its signal, and these hold it.
  it("defect 1: run() with an aborted signal bounds nothing: the create is sent, then cancelled; run resolves null", async () => {
    P.on(replicateApi);
    const { resilience } = layer();
    const client = createReplicate(resilience);

    const result = await client.run("owner/model:v1", { input: { prompt: "a cat" }, signal: AbortSignal.abort() });

    expect(result).toBeNull();
    expect(P.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "POST /v1/predictions",
      "GET /v1/predictions/p1",
      "POST /v1/predictions/p1/cancel",
    ]);
  });

  it("defect 1: run() whose signal is aborted while the Prefer: wait create hangs: the create runs to its answer, run resolves null", async () => {
    P.on((hit) => {
      if (hit.n > 1) replicateApi(hit); // the create (hit 1) is answered by the test
    });
    const { resilience } = layer();
    const client = createReplicate(resilience);
    const controller = new AbortController();
    const result = client.run("owner/model:v1", { input: { prompt: "a cat" }, signal: controller.signal });
    const create = await P.nth(1);
    expect(create.headers.prefer).toBe("wait");

    controller.abort(new Error("caller gave up"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(create.res.destroyed).toBe(false); // the signal never reached the create
    replicateApi(create);

    expect(await result).toBeNull();
    expect(P.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "POST /v1/predictions",
      "GET /v1/predictions/p1",
      "POST /v1/predictions/p1/cancel",
    ]);
  });

  it("predictions.create({ signal }) aborted while a Prefer: wait=60 create hangs: rejects with the reason, upstream closed, sent once", async () => {
    P.on(() => {});
    const { resilience } = layer();
    const controller = new AbortController();
    const pending = caught(
      createReplicate(resilience).predictions.create({
        version: "v1",
        input: { prompt: "a cat" },
        wait: 60,
        signal: controller.signal,
      }),
    );
    const hit = await P.nth(1);
    const reason = new Error("stop");
    controller.abort(reason);

    expect(await pending).toBe(reason);
    await hit.closed;
    expect(hit.headers.prefer).toBe("wait=60");
    expect(P.hits).toHaveLength(1);
  });

  it("files.create (FormData) answered 503: re-sent whole by the layer", async () => {
    P.on((hit) => (hit.n === 1 ? json(hit, 503, { detail: "down" }) : json(hit, 201, { id: "f1" })));
    const { clock, resilience, recorder } = layer();

    const file = await clock.run(createReplicate(resilience).files.create(Buffer.from("hello world bytes"), { a: 1 }));

    expect(file).toEqual({ id: "f1" });
    expect(P.hits).toHaveLength(2);
    expect(recorder.of("retry")).toHaveLength(1);
    const parts = (h: Hit) => h.body.split(/-+formdata[\w-]*/).slice(1);
    expect(parts(P.hits[1] as Hit)).toEqual(parts(P.hits[0] as Hit));
    expect(P.hits[1]?.body).toContain("hello world bytes");
    expect(P.hits[1]?.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
  });

  it("a GET answered 429 Retry-After: 2 is waited out by the layer alone: 2 requests, 2 s", async () => {
    P.on((hit) =>
      hit.n === 1
        ? json(hit, 429, { detail: "slow down" }, { "retry-after": "2" })
        : json(hit, 200, prediction("succeeded")),
    );
    const { clock, resilience } = layer();

    const done = await clock.run(createReplicate(resilience).predictions.get("p1"));

    expect(done.status).toBe("succeeded");
    expect(P.hits).toHaveLength(2);
    expect(clock.now()).toBe(2000);
  });

  it("a create answered 429 every time: the layer's 3 attempts, not 6 × 3; ApiError 429", async () => {
    P.on((hit) => json(hit, 429, { detail: "slow down" }));
    const { clock, resilience } = layer({ breaker: false });

    const error = await caught(clock.run(createReplicate(resilience).predictions.create({ version: "v1", input: {} })));

    expect((error as Error).name).toBe("ApiError");
    expect((error as { response: Response }).response.status).toBe(429);
    expect(P.hits).toHaveLength(3);
  });

  it("a dead host: four calls of 3 attempts, then CircuitOpenError unwrapped, nothing sent", async () => {
    P.on((hit) => json(hit, 503, { detail: "down" }));
    const { clock, resilience } = layer();
    const client = createReplicate(resilience);
    const errors: unknown[] = [];
    for (let i = 0; i < 5; i++) errors.push(await caught(clock.run(client.predictions.get("p1"))));

    expect(errors.slice(0, 4).map((e) => (e as Error).name)).toEqual(["ApiError", "ApiError", "ApiError", "ApiError"]);
    expect(isCircuitOpenError(errors[4])).toBe(true);
    expect(P.hits).toHaveLength(12);
  });

  it("stream(): the prediction's events arrive one by one through the layer", async () => {
    let release: () => void = () => {};
    P.on((hit) => {
      if (hit.method === "POST")
        return json(hit, 201, prediction("starting", { urls: { stream: `${P.base}/stream/p1`, get: "", cancel: "" } }));
      hit.res.writeHead(200, { "content-type": "text/event-stream" });
      hit.res.write("event: output\ndata: one\n\n");
      release = () => hit.res.end("event: output\ndata: two\n\nevent: done\ndata: {}\n\n");
    });
    const { resilience } = layer();
    const seen: string[] = [];
    for await (const event of createReplicate(resilience).stream("owner/model:v1", {
      input: {},
      useFileOutput: false,
    })) {
      seen.push(`${event.event}:${event.data}`);
      // The second event is only sent once the first was read.
      if (seen.length === 1) release();
    }
    expect(seen).toEqual(["output:one", "output:two", "done:{}"]);
  });
});

describe("ofetch with retry: 0 (examples/recipes/ofetch.ts)", () => {
  it("a final 503: onResponseError once, FetchError statusCode 503 with the last attempt's body", async () => {
    P.on((hit) => json(hit, 503, { attempt: hit.n }));
    const { clock, resilience } = layer();
    let hooks = 0;
    const error = await caught(
      clock.run(
        createOfetch(resilience)("jobs/1", {
          onResponseError: () => {
            hooks++;
          },
        }),
      ),
    );
    expect((error as FetchError).statusCode).toBe(503);
    expect((error as FetchError).data).toEqual({ attempt: 3 });
    expect(hooks).toBe(1);
    expect(P.hits).toHaveLength(3);
  });

  it("ofetch's timeout during the layer's backoff ends the whole call: nothing more sent, no timer left", async () => {
    P.on((hit) => json(hit, 503, {}));
    const { clock, resilience } = layer();
    // The backoff waits on the TestClock, which never moves: only ofetch's own (real) timeout ends it.
    const error = await caught(createOfetch(resilience, 30)("jobs/1"));
    expect((error as FetchError).cause).toMatchObject({ name: "TimeoutError" });
    expect(P.hits).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it("a POST retried after a 503 is parsed from the final answer; raw keeps getResilienceInfo", async () => {
    P.on((hit) => (hit.n === 1 ? json(hit, 503, {}) : json(hit, 200, { got: JSON.parse(hit.body) })));
    const { clock, resilience } = layer();
    const raw = await clock.run(createOfetch(resilience).raw("jobs", { method: "POST", body: { a: 1 } }));
    expect(raw._data).toEqual({ got: { a: 1 } });
    expect(P.hits.map((h) => h.body)).toEqual(['{"a":1}', '{"a":1}']);
    expect(getResilienceInfo(raw)?.attempts).toBe(2);
  });

  it("the layer's TimeoutError is FetchError.cause", async () => {
    P.on(() => {});
    const { clock, resilience } = layer({ timeout: { attempt: 1000 } });
    const error = await caught(clock.run(createOfetch(resilience)("jobs/1")));
    const cause = (error as FetchError).cause;
    expect(isTimeoutError(cause)).toBe(true);
    expect(cause).toMatchObject({ phase: "attempt", attempts: 3 });
  });
});

describe("ky on the layer", () => {
  it("a plain ky.create({ fetch }) multiplies retries as recipes.md point 1 warns; retry: 0 gives the layer's 3", async () => {
    P.on((hit) => json(hit, 503, {}));
    const { clock, resilience } = layer({ breaker: false });
    // ky's own retry left on (limit 2), its real backoff set to 0.
    const stacked = ky.create({ prefix: `${P.base}/v1`, fetch: resilience.fetch, retry: { limit: 2, delay: () => 0 } });
    expect((await caught(clock.run(stacked.get("jobs/1").json()))) as Error).toMatchObject({ name: "HTTPError" });
    expect(P.hits).toHaveLength(9);

    P.reset();
    P.on((hit) => json(hit, 503, {}));
    const single = ky.create({ prefix: `${P.base}/v1`, fetch: resilience.fetch, retry: 0 });
    await caught(clock.run(single.get("jobs/1").json()));
    expect(P.hits).toHaveLength(3);
  });

  it("createClient: HTTPError's message has no query; getResilienceInfo past an afterResponse hook, on both paths", async () => {
    P.on((hit) => (hit.n === 1 ? json(hit, 503, {}) : json(hit, hit.method === "POST" ? 500 : 200, { ok: true })));
    const { clock, resilience } = layer();
    const api = createClient({ prefix: `${P.base}/v1`, resilience, hooks: { afterResponse: [() => undefined] } });

    const response = await clock.run(Promise.resolve(api.get("jobs/1", { searchParams: { key: "secret" } })));
    expect(getResilienceInfo(response)?.attempts).toBe(2);

    const error = (await caught(
      clock.run(Promise.resolve(api.post("jobs", { searchParams: { key: "secret" } }))),
    )) as HTTPError;
    expect(error.name).toBe("HTTPError");
    expect(error.message).not.toContain("secret");
    expect(error.response.status).toBe(500);
    expect(getResilienceInfo(error.response)?.attempts).toBe(1);
  });

  it("createClient: ky.retry() from afterResponse is ForceRetryError, beforeRetry never runs, sent once", async () => {
    P.on((hit) => json(hit, 200, { ok: true }));
    const { clock, resilience } = layer();
    let beforeRetry = 0;
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      hooks: {
        afterResponse: [() => ky.retry()],
        beforeRetry: [
          () => {
            beforeRetry++;
          },
        ],
      },
    });
    const error = await caught(clock.run(Promise.resolve(api.get("jobs/1").json())));
    expect((error as Error).name).toBe("ForceRetryError");
    expect(beforeRetry).toBe(0);
    expect(P.hits).toHaveLength(1);
  });

  it("createClient: an init hook that sets retry is refused with ConfigError, nothing sent", async () => {
    const { resilience } = layer();
    const api = createClient({
      prefix: `${P.base}/v1`,
      resilience,
      hooks: {
        init: [
          (options) => {
            options.retry = 2;
          },
        ],
      },
    });
    const error = await caught(Promise.resolve().then(() => api.get("jobs/1").json()));
    expect((error as Error).name).toBe("ConfigError");
    expect(P.hits).toHaveLength(0);
  });
});

describe("axios fetch adapter (examples/recipes/axios.ts)", () => {
  it("responseType 'stream' + signal: the first chunk before the body ends; the abort closes the upstream", async () => {
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain" });
      hit.res.write("first");
    });
    const { resilience } = layer();
    const controller = new AbortController();
    const response = await createAxios(resilience).get("big", { responseType: "stream", signal: controller.signal });
    const reader = (response.data as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("first");

    controller.abort();
    await P.hits[0]?.closed;
    await expect(reader.read()).rejects.toBeDefined();
  });
});

describe("Hono Worker recipe under its chain (examples/recipes/hono-worker.ts)", () => {
  const generate = (app: ReturnType<typeof createApp>) =>
    Promise.resolve(
      app.fetch(
        new Request("https://worker.example/generate", {
          method: "POST",
          body: JSON.stringify({ prompt: "a cat" }),
        }),
        env(),
      ),
    );
  const bothDown = () => {
    P.on((hit) => json(hit, 503, { from: "provider" }, { "retry-after": "1", "x-request-id": `p${hit.n}` }));
    S.on((hit) => json(hit, 503, { from: "spare" }, { "retry-after": "1", "x-request-id": `s${hit.n}` }));
  };

  it("control: the layer's own final answer keeps the spare's Retry-After and x-request-id", async () => {
    bothDown();
    const clock = new TestClock(Date.now());
    const response = await clock.run(
      recipeLayer(env(), clock).fetch(`${P.base}/v1/images`, { method: "POST", body: "{}" }),
    );
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(response.headers.get("x-request-id")).toBe("s3");
  });

  it("defect 2: the provider's final 503 is passed through as is: its Retry-After reaches the Worker's client", async () => {
    bothDown();
    const clock = new TestClock(Date.now());
    const app = createApp((e) => recipeLayer(e, clock));

    const response = await clock.run(generate(app));

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ from: "spare" });
    expect(P.hits).toHaveLength(3);
    expect(S.hits).toHaveLength(3);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(response.headers.get("x-request-id")).toBe("s3");
  });
});
