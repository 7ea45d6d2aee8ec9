/**
 * Outside-in attack on docs/recipes.md (and the README sentences it relies on), each recipe taken as a user copies
 * it, on the paths a plain call does not take: a `Request` input, a redirect (to another path, to another 127.0.0.1
 * port), a fallback chain, a degradation rewrite, `resilientProxy`, the ky client, and the README's global install.
 *
 * Docs:
 * - README.md: "To send every `fetch` of an app or an SDK through the layer, install it: `globalThis.fetch =
 *   resilience.fetch` (before the SDK is made: some keep the fetch they find then). It then sends through the fetch
 *   that was global when it was made, never through itself, unless a wrapper installed over it calls it back after
 *   an `await` or with a URL it changes anew each time (a request id in the query)".
 * - docs/options.md, `fetch` (default "`globalThis.fetch` at call time"): "a layer found there, installed with
 *   `globalThis.fetch = resilience.fetch` as a drop-in, is passed for the fetch that was global when that layer was
 *   made, so a layer never calls itself, nor another through the global fetch".
 * - docs/recipes.md: "`overloadedAs503(options)` returns a layer whose transport shows it a 529 as a 503 (retried,
 *   counted by the breaker) and `sdkFetch`, which hands the SDK its 529 back"; point 1 "Turn the client's own retries
 *   off. Otherwise retries multiply"; "The route maps what the layer throws with `failureResponse` from
 *   `@storycore/resilient-fetch/cloudflare`, the proxy's own mapping"; the table's Hono row "open breaker → 503 +
 *   `Retry-After`"; "A hung attempt of a chat completion is not retried without an idempotency key: the call fails
 *   with `APIConnectionTimeoutError`, whose `cause` is the layer's `TimeoutError` (`phase: "attempt"`). With `retry:
 *   { idempotencyKey: true }` it is retried with the same key"; "A fallback to a second OpenAI-compatible deployment
 *   sets that deployment's `authorization` in its endpoint `headers` (credentials are never carried to another
 *   origin)"; Replicate: "once the layer has settled a request with a failed response or an error, the repeats get
 *   that outcome back without calling the layer"; the table's replicate row "`ApiError` (`response.status`)".
 * - examples/recipes/hono-worker.ts (the recipe's JSDoc): "every circuit open becomes a 503 with `Retry-After` (the
 *   first breaker's `retryAt`)", "`layerFor` makes the isolate's layer (tests pass one on a test clock)";
 *   src/cloudflare/failure-response.ts: "@param now the clock the layer runs on, to turn `retryAt` into seconds".
 * - docs/retry.md: "Nor after a redirect: the server that answered it may have done the work"; "From the first hop
 *   to another origin on … only the cross-origin allowlist is sent (… `idempotency-key`, `user-agent` …), and
 *   nothing dropped is put back, even if a later hop returns to the first origin"; "Every field of the caller's
 *   `init` (… `priority` …, and runtime extensions such as `cf` …) reaches the transport on every path".
 * - docs/fallback.md: "`Authorization`, `Cookie`, Azure's `api-key`, Anthropic's `x-api-key` … and any other header
 *   stay home"; "The rest of the path and the query are rebased onto each endpoint's `url` (an endpoint's own
 *   query, `?key=…`, stays on it …)".
 *
 * How: the recipes as written (examples/recipes: `overloadedAs503`, `createAnthropic`, `createOpenAI`,
 * `resilienceCause`, `createReplicate`, `createKy`, `createAxios`, `createApp`, `layerOptions`; the package name
 * mocked to ../../src), `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), each its own origin. Every wait of a layer is on a `TestClock`. Where the
 * recipe's layer calls itself, the global `fetch` is installed behind a getter that hands the layer out 20 times,
 * then a fetch that rejects, so the endless loop ends (and the test stays cheap); one read is all a call that does
 * not loop needs.
 *
 * Paths: plain call, README's global install (the layer itself, and another layer), `Request` input (axios), a
 * followed 307 (same origin another path, another port, a spare's 307 back to the first origin), fallback chain
 * (cross-origin spare with its own key and its own query), degradation rewrite, the ky client, `resilientProxy`,
 * the Hono route as workerd calls it.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-third session, so plain
 * `it`):
 * 1. README "install it: `globalThis.fetch = resilience.fetch` … It then sends through the fetch that was global
 *    when it was made, never through itself" and docs/options.md "so a layer never calls itself, nor another through
 *    the global fetch", for the Anthropic recipe's layer (`overloadedAs503(options)` without `options.fetch`, whose
 *    transport stands in for the default, "`globalThis.fetch` at call time"). Observed: (a) that layer installed as
 *    the README says calls itself without end: no request reaches the API, and the call rejects with a
 *    `RetryExhaustedError` nested once per turn of the loop (unbounded, the stack overflows: about 660 deep and 25 s
 *    of CPU on this machine, "this runtime refuses the call: Maximum call stack size exceeded" at the bottom); (b)
 *    with the app's own default layer installed (README), every SDK request goes through both layers: a GET
 *    (`models.list()`) to an API that stays at 503 is sent 9 times, not 3 (the multiplication recipes.md point 1
 *    warns of). Cause: examples/recipes/anthropic.ts's default transport `(input, init) => fetch(input, init)` reads
 *    the global fetch at call time; the layer passes an installed layer over only on its own default path
 *    (src/http/global-fetch.ts `found()`), never for a `fetch` option, and `sdkFetch`'s layer has one.
 *    Fixed: the recipe's transport is now a bare layer (no retries, no breaker), which reaches the global fetch as
 *    any layer without a `fetch` option does, past installed layers, its own and the app's (3 requests); the README
 *    says the rule holds for a layer without a `fetch` option (a `fetch` you pass is called as it is).
 * 2. examples/recipes/hono-worker.ts "every circuit open becomes a 503 with `Retry-After` (the first breaker's
 *    `retryAt`)", with a layer on a test clock as its `createApp(layerFor)` invites, and recipes.md "the proxy's own
 *    mapping". Observed: the route answers `Retry-After: 1` for a breaker that reopens in 30 s on the layer's clock
 *    (a `new TestClock()`, the way README's and docs/testing.md's examples make one), where `resilientProxy` on the
 *    same layer options answers 30. Cause: the route calls `failureResponse(error)` without `now`, so `retryAt` (on
 *    the layer's clock) is read against `Date.now()`; the proxy passes its layer's `clock.now()`. Fixed: the route
 *    passes `resilience.health().time`, the layer's clock.
 *
 * Held (plain `it`):
 * - A default layer installed as the global fetch and another default layer: a 503 API gets 3 requests (the other
 *   layer passes the installed one over); `overloadedAs503({ fetch })` given the platform's fetch and installed:
 *   one request, 200.
 * - `resilientProxy` with a breaker open 30 s on its layer's `TestClock`: 503, `Retry-After: 30`, nothing sent.
 * - OpenAI chain whose cross-origin spare 307s back to the first origin: the first origin's second request carries
 *   neither the caller's key nor the spare's; the spare got its own key; the body replayed unchanged.
 * - OpenAI with `idempotencyKey` through a 307 to another port whose first answer hangs: retried from the first
 *   host with one key on all four requests, the caller's `authorization` only at the first origin; without a key
 *   the same hang is `APIConnectionTimeoutError` whose `resilienceCause` is `TimeoutError` (phase `attempt`), sent
 *   once to each origin.
 * - Replicate through a chain whose endpoints both stay at 503: 3 requests each (not × 6), `ApiError` with
 *   `response.status` 503, the layer asked once.
 * - Anthropic `sdkFetch` through a same-origin 307 whose target answers 529: not retried (after a redirect),
 *   `OverloadedError`; through a cross-origin chain: the primary's 529 retried 3 times as a 503, the spare gets its
 *   own `x-api-key`, not the caller's key nor any other header of the SDK's (`anthropic-version`, `x-stainless-*`).
 * - ky (`createKy`) through a chain with `idempotencyKey`: the spare gets its own query first, then the caller's
 *   `seed`, its own `authorization`, the same key as the primary's three attempts; `cf` and `priority` given to a
 *   ky call reach the transport on the plain, chain, redirect and degraded paths.
 * - axios (a `Request` input) with `idempotencyKey` through a same-origin 307 whose target hangs once: retried,
 *   one key, the caller's `authorization` on every hop, the body replayed byte for byte; the degraded body
 *   (`steps` 30) on every request.
 *
 * Docs-silent (not pinned):
 * - A layer whose `fetch` option reads `globalThis.fetch` at call time (`fetch: (i, n) => fetch(i, n)`, the way MSW
 *   users write it) loops the same way once installed; docs/options.md says only "stack layers by passing `fetch:
 *   other.fetch`".
 * - The Hono route passes a redirect target's `503` (and its `Retry-After`) on to its client after a keyless POST
 *   the first upstream had; `resilientProxy` answers the same `502` ("a passed-on answer cannot say it followed a
 *   redirect"). recipes.md says the route maps what the layer throws as the proxy does, and passes answers through.
 * - A cross-origin Anthropic spare gets no `anthropic-version` (not on the allowlist): a real Anthropic-compatible
 *   API refuses such a request (400); the recipe does not say to put it in the endpoint's `headers`.
 * - The Hono route drops the provider's `statusText` ("status, body and headers").
 */
import { AxiosError } from "axios";
import { describe, expect, it, vi } from "vitest";
import { createAnthropic, overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { createAxios } from "../../examples/recipes/axios.ts";
import { createApp, type Env } from "../../examples/recipes/hono-worker.ts";
import { createKy } from "../../examples/recipes/ky.ts";
import { createOpenAI, resilienceCause } from "../../examples/recipes/openai.ts";
import { createReplicate } from "../../examples/recipes/replicate.ts";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isTimeoutError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

vi.mock("@storycore/resilient-fetch", () => import("../../src/index.ts"));
vi.mock("@storycore/resilient-fetch/cloudflare", () => import("../../src/cloudflare/index.ts"));
vi.mock("@storycore/resilient-fetch/fallback", () => import("../../src/fallback/index.ts"));
vi.mock("@storycore/resilient-fetch/ky", () => import("../../src/ky/index.ts"));

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const json =
  (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json", ...headers });
    hit.res.end(JSON.stringify(body));
  };
const completion = json({ id: "chatcmpl-1", object: "chat.completion", created: 0, model: "m", choices: [] });
const message = json({
  id: "msg_1",
  type: "message",
  role: "assistant",
  content: [],
  model: "m",
  stop_reason: "end_turn",
  usage: { input_tokens: 1, output_tokens: 1 },
});
const overloaded = json({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, 529);
const apiDown = json({ type: "error", error: { type: "api_error", message: "down" } }, 503);
const redirectTo =
  (location: string, status = 307) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { location });
    hit.res.end();
  };
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** What a call settled with: its status, or its error. */
const outcome = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    (value) => (value instanceof Response ? value.status : value),
    (error: unknown) => error,
  );

/**
 * Installs `layer` as the global fetch for the length of `run`, as README says (`globalThis.fetch =
 * resilience.fetch`), behind a getter that hands it out `limit` times and then a fetch that rejects: a layer that
 * calls itself through the global fetch ends there instead of overflowing the stack. A call that does not loop
 * reads it once at most.
 */
async function installed<T>(layer: Fetch, run: () => Promise<T>, limit = 20): Promise<{ result: T; reads: number }> {
  const original = Object.getOwnPropertyDescriptor(globalThis, "fetch");
  let reads = 0;
  const stop: Fetch = () => Promise.reject(new Error("the test ended a loop through the global fetch"));
  Object.defineProperty(globalThis, "fetch", {
    configurable: true,
    enumerable: true,
    get: () => (++reads > limit ? stop : layer),
    set() {},
  });
  try {
    return { result: await run(), reads };
  } finally {
    if (original) Object.defineProperty(globalThis, "fetch", original);
  }
}

describe("defect 1: the Anthropic recipe's transport reads the global fetch at call time, past the layer's guard", () => {
  it("README install: overloadedAs503()'s layer installed as the global fetch sends once, not through itself", async () => {
    a.on(message);
    const { resilience, sdkFetch } = overloadedAs503({ clock: new TestClock(), retry: false });
    const { result, reads } = await installed(resilience.fetch, () =>
      outcome(sdkFetch(`${a.base}/v1/messages`, { method: "POST", body: "{}" })),
    );
    // Observed: no request, a RetryExhaustedError nested once per turn of the loop (the getter's 20, here).
    expect(result).toBe(200);
    expect(a.hits).toHaveLength(1);
    // Read a few times (the recipe's bare layer beneath reads it as it finds and guards it), never the 20 of a loop.
    // (Before the bare layer this asserted one read at most.)
    expect(reads).toBeLessThan(5);
  });

  // Before the fix this asserted README's old sentence for `overloadedAs503({ clock })` (no `fetch`): 3 requests with
  // the app's layer installed; it sent 9, each of the recipe layer's 3 attempts retried 3 times by the installed
  // one. The recipe's transport is now a bare layer, which passes an installed layer over as every layer without a
  // `fetch` option does (recipes.md); a recipe's layer given the platform's fetch passes it by too.
  it("recipes.md: with the app's layer installed, the recipe's layer does not call it: 3 requests, not 9, with or without `fetch`", async () => {
    a.on(apiDown);
    const clock = new TestClock();
    const app = createResilience({ clock });
    const platform = globalThis.fetch;
    const { sdkFetch } = overloadedAs503({ clock, fetch: platform });
    const anthropic = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: a.base });
    const { result } = await installed(app.fetch, () => clock.run(outcome(anthropic.models.list())), 1_000);
    expect(result).toMatchObject({ status: 503 });
    expect(a.hits).toHaveLength(3);

    a.reset();
    a.on(apiDown);
    const bare = overloadedAs503({ clock });
    const called = createAnthropic(bare.sdkFetch, { apiKey: "sk-ant", baseURL: a.base });
    const passed = await installed(app.fetch, () => clock.run(outcome(called.models.list())), 1_000);
    expect(passed.result).toMatchObject({ status: 503 });
    expect(a.hits).toHaveLength(3);
  });

  it("control: another default layer passes an installed one over (3 requests); overloadedAs503({ fetch }) installed sends once", async () => {
    a.on(apiDown);
    const clock = new TestClock();
    const app = createResilience({ clock });
    const other = createResilience({ clock });
    const { result } = await installed(app.fetch, () => clock.run(outcome(other.fetch(`${a.base}/v1/models`))), 1_000);
    expect(result).toBe(503);
    expect(a.hits).toHaveLength(3);

    a.reset();
    a.on(message);
    const platform = globalThis.fetch;
    const { resilience, sdkFetch } = overloadedAs503({ clock, retry: false, fetch: (i, n) => platform(i, n) });
    const installedRun = await installed(resilience.fetch, () =>
      outcome(sdkFetch(`${a.base}/v1/messages`, { method: "POST", body: "{}" })),
    );
    expect(installedRun.result).toBe(200);
    expect(a.hits).toHaveLength(1);
  });
});

describe("defect 2: the Hono route counts Retry-After on the wall clock, not on its layer's", () => {
  const env = (): Env => ({ IMAGES_URL: a.base, IMAGES_KEY: "k-images", SPARE_URL: a.base, SPARE_KEY: "k-spare" });
  const generate = () => new Request("https://worker.example/generate", { method: "POST", body: '{"prompt":"a cat"}' });
  const breaker = { failureThreshold: 1, timeout: 30_000 };

  it("an open breaker: 503 with Retry-After 30, the breaker's own reopening on the layer's clock", async () => {
    a.on(json({ error: "down" }, 503));
    const clock = new TestClock();
    const app = createApp(() => createResilience({ clock, retry: false, breaker }));
    await clock.run(Promise.resolve(app.fetch(generate(), env())));
    const response = await clock.run(Promise.resolve(app.fetch(generate(), env())));
    expect(response.status).toBe(503);
    expect(a.hits).toHaveLength(1);
    // Observed: "1", `retryAt` (30 000 on the layer's clock) read against Date.now().
    expect(response.headers.get("retry-after")).toBe("30");
  });

  it("control: resilientProxy with the same layer options answers 503 with Retry-After 30, nothing sent", async () => {
    a.on(json({ error: "down" }, 503));
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/generate", upstream: `${a.base}/v1/images` }],
      resilience: { clock, retry: false, breaker },
    });
    await clock.run(proxy.fetch(generate(), {}, ctx));
    const response = await clock.run(proxy.fetch(generate(), {}, ctx));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("30");
    expect(await response.json()).toEqual({ error: "upstream circuit open" });
    expect(a.hits).toHaveLength(1);
  });
});

describe("OpenAI recipe on redirects and chains", () => {
  it("a chain whose cross-origin spare 307s back to the first origin: that hop carries no key at all", async () => {
    a.on((hit) => (hit.path.startsWith("/v1/") ? json({ error: "busy" }, 503)(hit) : completion(hit)));
    b.on(redirectTo(`${a.base}/back/chat/completions`));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "oa",
          endpoints: [
            { name: "primary", url: `${a.base}/v1` },
            { name: "spare", url: `${b.base}/v1`, headers: { authorization: "Bearer sk-spare" } },
          ],
        },
      ]),
    });
    const openai = createOpenAI(resilience, { apiKey: "sk-caller", baseURL: `${a.base}/v1` });
    const result = await clock.run(outcome(openai.chat.completions.create({ model: "m", messages: [] })));
    expect(result).toMatchObject({ id: "chatcmpl-1" });
    expect(a.hits.map((h) => [h.path, h.headers.authorization])).toEqual([
      ["/v1/chat/completions", "Bearer sk-caller"],
      ["/back/chat/completions", undefined],
    ]);
    expect(b.hits.map((h) => h.headers.authorization)).toEqual(["Bearer sk-spare"]);
    expect(new Set([...a.hits, ...b.hits].map((h) => h.body))).toEqual(new Set(['{"model":"m","messages":[]}']));
  });

  it("idempotencyKey through a 307 to another port whose first answer hangs: retried with one key; keyless: not retried", async () => {
    const held: Hit[] = [];
    try {
      a.on(redirectTo(`${b.base}/v1/chat/completions`));
      b.on((hit) => (hit.n === 1 ? held.push(hit) : completion(hit)));
      const clock = new TestClock();
      const keyed = createResilience({
        clock,
        retry: { idempotencyKey: true, initialDelay: 100, jitter: "none" },
        timeout: { attempt: 1_000 },
      });
      const openai = createOpenAI(keyed, { apiKey: "sk-caller", baseURL: `${a.base}/v1` });
      const call = outcome(openai.chat.completions.create({ model: "m", messages: [] }));
      await b.nth(1);
      await clock.advance(1_000); // the hung attempt times out
      for (let step = 0; step < 10 && a.hits.length < 2; step++) await clock.advance(50); // the backoff
      expect(await call).toMatchObject({ id: "chatcmpl-1" });
      const all = [...a.hits, ...b.hits];
      expect(all).toHaveLength(4);
      expect(new Set(all.map((h) => h.headers["idempotency-key"])).size).toBe(1);
      expect(all[0]?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(a.hits.map((h) => h.headers.authorization)).toEqual(["Bearer sk-caller", "Bearer sk-caller"]);
      expect(b.hits.map((h) => h.headers.authorization)).toEqual([undefined, undefined]);

      a.reset();
      b.reset();
      a.on(redirectTo(`${b.base}/v1/chat/completions`));
      b.on((hit) => held.push(hit));
      const keyless = createResilience({ clock, timeout: { attempt: 1_000 } });
      const plain = createOpenAI(keyless, { apiKey: "sk-caller", baseURL: `${a.base}/v1` });
      const hung = outcome(plain.chat.completions.create({ model: "m", messages: [] }));
      await b.nth(1);
      await clock.advance(1_000);
      const error = await hung;
      expect(error).toBeInstanceOf((await import("openai")).default.APIConnectionTimeoutError);
      const cause = resilienceCause(error);
      expect(isTimeoutError(cause) && cause.phase).toBe("attempt");
      expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    } finally {
      for (const hit of held) hit.res.end();
    }
  });
});

describe("Replicate and Anthropic recipes on chains and redirects", () => {
  it("replicate through a chain whose endpoints both stay at 503: 3 requests each, ApiError 503, the layer asked once", async () => {
    a.on(json({ detail: "down" }, 503));
    b.on(json({ detail: "down" }, 503));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      fallback: fallback([
        {
          name: "r",
          endpoints: [
            { name: "primary", url: `${a.base}/v1` },
            { name: "spare", url: `${b.base}/v1`, headers: { authorization: "Bearer r-spare" } },
          ],
        },
      ]),
    });
    let asked = 0;
    resilience.on("request", () => asked++);
    const replicate = createReplicate(resilience, { auth: "r-caller", baseUrl: `${a.base}/v1` });
    const error = (await clock.run(outcome(replicate.predictions.get("p1")))) as { name: string; response: Response };
    expect(error.name).toBe("ApiError");
    expect(error.response.status).toBe(503);
    expect([a.hits.length, b.hits.length]).toEqual([3, 3]);
    expect(asked).toBe(1);
    expect(new Set(b.hits.map((h) => h.headers.authorization))).toEqual(new Set(["Bearer r-spare"]));
  });

  it("sdkFetch through a same-origin 307 whose target answers 529: not retried after the redirect, OverloadedError", async () => {
    a.on((hit) => (hit.path === "/v1/messages" ? redirectTo("/moved/v1/messages")(hit) : overloaded(hit)));
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({ clock });
    const anthropic = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: a.base });
    const error = await clock.run(outcome(anthropic.messages.create({ model: "m", max_tokens: 1, messages: [] })));
    expect(error).toMatchObject({ name: "OverloadedError", status: 529 });
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/messages", "/moved/v1/messages"]);
    expect(a.hits[1]?.body).toBe(a.hits[0]?.body);
  });

  it("sdkFetch through a cross-origin chain: 529 retried as 503, the spare gets its own key and none of the SDK's others", async () => {
    a.on(overloaded);
    b.on(message);
    const clock = new TestClock();
    const { sdkFetch } = overloadedAs503({
      clock,
      fallback: fallback([
        {
          name: "claude",
          endpoints: [
            { name: "primary", url: `${a.base}/v1` },
            { name: "spare", url: `${b.base}/v1`, headers: { "x-api-key": "sk-spare" } },
          ],
        },
      ]),
    });
    const anthropic = createAnthropic(sdkFetch, { apiKey: "sk-ant", baseURL: a.base });
    const result = await clock.run(outcome(anthropic.messages.create({ model: "m", max_tokens: 1, messages: [] })));
    expect(result).toMatchObject({ id: "msg_1" });
    expect(a.hits).toHaveLength(3);
    expect(a.hits[0]?.headers["anthropic-version"]).toBeDefined();
    const spare = b.hits[0]?.headers ?? {};
    expect(spare["x-api-key"]).toBe("sk-spare");
    expect(spare.authorization).toBeUndefined();
    expect(spare["anthropic-version"]).toBeUndefined();
    expect(Object.keys(spare).filter((name) => name.startsWith("x-stainless"))).toEqual([]);
  });
});

describe("ky and axios recipes on chains, redirects, degradation", () => {
  it("ky through a chain with idempotencyKey: the spare's own query first, the caller's seed, its own key, one key", async () => {
    a.on(json({ error: "busy" }, 503));
    b.on(json({ id: "job" }));
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      retry: { idempotencyKey: true },
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "primary", url: `${a.base}/v1` },
            { name: "spare", url: `${b.base}/v2?key=own`, headers: { authorization: "Bearer spare" } },
          ],
        },
      ]),
    });
    const api = createKy(resilience, `${a.base}/v1`);
    const body = await clock.run(
      api
        .post("jobs", { json: { prompt: "x" }, searchParams: { seed: 7 }, headers: { authorization: "Bearer caller" } })
        .json(),
    );
    expect(body).toEqual({ id: "job" });
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/jobs?seed=7", "/v1/jobs?seed=7", "/v1/jobs?seed=7"]);
    expect(b.hits.map((h) => [h.path, h.headers.authorization])).toEqual([["/v2/jobs?key=own&seed=7", "Bearer spare"]]);
    const keys = new Set([...a.hits, ...b.hits].map((h) => h.headers["idempotency-key"]));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  for (const path of ["plain", "chain", "redirect", "degraded"] as const) {
    it(`ky: a call's cf and priority reach the transport (${path})`, async () => {
      a.on(
        path === "chain"
          ? json({}, 503)
          : path === "redirect"
            ? (hit) => (hit.path === "/v1/x" ? redirectTo(`${b.base}/v1/x`)(hit) : json({})(hit))
            : json({ ok: 1 }),
      );
      b.on(json({ ok: 2 }));
      const clock = new TestClock();
      const seen: Array<RequestInit | undefined> = [];
      const transport: Fetch = (input, init) => {
        seen.push(init);
        return globalThis.fetch(input, init);
      };
      const resilience = createResilience({
        clock,
        fetch: transport,
        retry: false,
        ...(path === "chain"
          ? {
              fallback: fallback([
                {
                  name: "c",
                  endpoints: [
                    { name: "p", url: `${a.base}/v1` },
                    { name: "s", url: `${b.base}/v1` },
                  ],
                },
              ]),
            }
          : {}),
        ...(path === "degraded" ? { degradation: degradation({}) } : {}),
      });
      resilience.degradation?.setLevel("medium");
      const api = createKy(resilience, `${a.base}/v1`);
      await clock.run(api.post("x", { json: { steps: 50 }, cf: { cacheTtl: 5 }, priority: "low" } as never).json());
      expect(seen.length).toBe(path === "plain" || path === "degraded" ? 1 : 2);
      for (const init of seen) expect(init).toMatchObject({ cf: { cacheTtl: 5 }, priority: "low" });
      if (path === "degraded") expect(JSON.parse(a.hits[0]?.body ?? "{}")).toEqual({ steps: 30 });
    });
  }

  it("axios (a Request input), idempotencyKey, degraded: a same-origin 307 whose target hangs once is retried with one key", async () => {
    const held: Hit[] = [];
    try {
      let moved = 0;
      a.on((hit) => {
        if (hit.path === "/v1/jobs") return redirectTo("/moved/jobs")(hit);
        moved++;
        return moved === 1 ? void held.push(hit) : json({ id: "job" })(hit);
      });
      const clock = new TestClock();
      const resilience = createResilience({
        clock,
        retry: { idempotencyKey: true, initialDelay: 100, jitter: "none" },
        timeout: { attempt: 1_000 },
        degradation: degradation({}),
      });
      resilience.degradation?.setLevel("medium");
      const axios = createAxios(resilience, `${a.base}/v1`);
      const call = axios
        .post("/jobs", { steps: 50, prompt: "x" }, { headers: { authorization: "Bearer caller" } })
        .then(
          (r) => r.data,
          (e: unknown) => e,
        );
      await a.nth(2);
      await clock.advance(1_000); // the hung hop times out
      for (let step = 0; step < 10 && a.hits.length < 3; step++) await clock.advance(50); // the backoff
      const data = await call;
      expect(data).not.toBeInstanceOf(AxiosError);
      expect(data).toEqual({ id: "job" });
      expect(a.hits.map((h) => h.path)).toEqual(["/v1/jobs", "/moved/jobs", "/v1/jobs", "/moved/jobs"]);
      expect(new Set(a.hits.map((h) => h.headers["idempotency-key"])).size).toBe(1);
      expect(a.hits[0]?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Set(a.hits.map((h) => h.headers.authorization))).toEqual(new Set(["Bearer caller"]));
      for (const hit of a.hits) expect(JSON.parse(hit.body)).toEqual({ steps: 30, prompt: "x" });
    } finally {
      for (const hit of held) hit.res.end();
    }
  });
});
