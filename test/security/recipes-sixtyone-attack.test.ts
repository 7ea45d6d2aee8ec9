/**
 * Outside-in attack on docs/recipes.md: each recipe copied as written (only its URLs pointed at 127.0.0.1), then
 * pushed onto paths the earlier recipe runs (twentyfour, twentyeight, fortythree, fortyfive, fiftyone, fiftythree,
 * fiftynine) and test/recipes did not take: a caller's own `Idempotency-Key` under the OpenAI SDK, Azure down a
 * cross-origin chain, the Anthropic recipe's own layer (its bare transport) under `crossOriginHeaders`,
 * `redirects: "platform"`, a hedge, a chain that meets a redirect, a `Request` input; Replicate's `paginate` down a
 * chain; ofetch's default retry list; ky's `prefixUrl`; `resilientProxy` and the Hono route where the Worker recipe
 * applies; and the overlap with README.md and docs/options.md.
 *
 * Docs:
 * - docs/recipes.md: "`createOpenAI` and `createAzureOpenAI` in the recipe do exactly this" (the block's
 *   `fetch: resilience.fetch`, `maxRetries: 0`, `timeout: 120_000`); point 2 "a POST whose attempt hung is only
 *   retried when it carries an `Idempotency-Key` (`retry: { idempotencyKey: true }`)"; "A fallback to a second
 *   OpenAI-compatible deployment sets that deployment's `authorization` in its endpoint `headers` (credentials are
 *   never carried to another origin)"; "a fallback endpoint on another origin gets no `x-stainless-*` header at all".
 * - docs/recipes.md, Anthropic: "`overloadedAs503(options)` returns a layer whose transport shows it a 529 as a 503
 *   (retried, counted by the breaker; the layer's events say 503 too …)"; "A 529 reached through a redirect that the
 *   platform followed (`redirects: "platform"`) stays a 529 and is not retried, since the host that redirected may
 *   have done the work"; "Without a `fetch` option its layer sends through a bare layer (no retries, no breaker)";
 *   "A redirect to another origin carries only the cross-origin allowlist (see [Redirects](retry.md#redirects)):
 *   `x-api-key` and `authorization` stay home, and so does `anthropic-version`. … name it in
 *   `crossOriginHeaders: ["anthropic-version"]` (the key still stays home …)".
 * - docs/retry.md "## Redirects": "the platform's follower only drops the standard credential headers: undici sends
 *   an `x-api-key` on to whatever origin a redirect names"; "## Idempotency": "Nor after a redirect …" (one rule for
 *   a retry and a chain's next endpoint).
 * - docs/recipes.md, ofetch: "by default it retries a GET once on 408, 409, 425, 429, 500, 502, 503 and 504"; the
 *   ky row "done by `createClient`"; "ky through `createClient` … with ky 2's `prefix`"; docs/options.md "ky's own
 *   options are ky's to judge"; docs/retry.md "## ky": "Passing ky's `retry` … is a `ConfigError`, at once, … to
 *   `extend`".
 * - docs/recipes.md, Hono: "`failureResponse` …, the proxy's own mapping, … a redirect's later hop refused by its
 *   open circuit: 502, since the first upstream had the request"; "the last 503 passed through … (status, body and
 *   headers …)".
 * - Overlap: recipes.md "the host's breaker opens after 12 failures in a row" = options.md `breaker.failureThreshold`
 *   "`12` failed attempts in a row" = README "counts failures in a row (12)"; recipes.md "The layer retries a POST
 *   only on 429 and 503 without an idempotency key" = retry.md "## Idempotency" (which adds connections refused, as
 *   the Anthropic section does); recipes.md "`timeout.total` bounds the whole call" = options.md "for the whole call
 *   up to its response headers" (a body after the headers is bounded by neither: see fortythree). They agree.
 *
 * How: examples/recipes (`createOpenAI`, `createAzureOpenAI`, `overloadedAs503`, `createAnthropic`,
 * `createReplicate`, `createOfetch`, `createKy`, `createApp`; the package name mocked to ../../src as the earlier
 * runs do) over openai, @anthropic-ai/sdk, replicate, ofetch and ky; `createResilience` (root), `fallback`
 * (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts), each its own origin. Waits run on a `TestClock`.
 *
 * Paths: plain call (SDK), fallback chain (cross-origin spare, Azure's query, a chain meeting a 307), hedge (through
 * the Anthropic recipe's bare transport), redirect (library and platform follower, cross-origin), `Request` input
 * (to `sdkFetch`), the ky client, `resilientProxy`, the Hono route as workerd calls it.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every sentence driven held on every path.
 *
 * Held (plain `it`):
 * - `createOpenAI` / `createAzureOpenAI` carry exactly the block's `maxRetries: 0`, `timeout: 120_000` and the
 *   layer's `fetch`.
 * - A caller's own `Idempotency-Key` header given through the OpenAI SDK (no `retry.idempotencyKey`): the hung
 *   attempt is retried under that key and the completion returned.
 * - Azure down a cross-origin chain: 3 attempts at the primary with the caller's `api-key`, the spare gets its own
 *   `api-key`, the same deployment path and `api-version`, and no `x-stainless-*` header.
 * - The Anthropic recipe's layer (bare transport): `crossOriginHeaders: ["anthropic-version"]` carries that header
 *   across a cross-origin 307 (one `redirect` event), the keys stay home; with `redirects: "platform"` the
 *   platform's follower carries `x-api-key` there, as retry.md says undici does (no `redirect` event).
 * - A hedge through the bare transport: 14 calls whose primary hangs and loses, the primary's breaker counts none
 *   of them (closed, 0 failures) and still gets every call.
 * - A chain through `sdkFetch`: the primary's 529s are retried and the `fallback` event says "status 503"; the spare
 *   answers with its own key. A chain whose primary 307s to a 529 or 503 (library and platform follower): not sent
 *   again, the spare never asked, the SDK's `OverloadedError` / 503 error.
 * - A `Request` input to `sdkFetch`: its body replayed after a 529, and through a platform-followed 307.
 * - ofetch's default: a GET answered 409 (not the layer's) is sent twice, once under the recipe; a POST at 503 gets
 *   the layer's 3 only (ofetch retries GETs alone).
 * - The `createKy` client extended with ky 1's `prefixUrl`: ky's own error (not the layer's), nothing sent;
 *   `extend(fn)` setting `retry`: `ConfigError`.
 * - `resilientProxy`: a redirect whose later hop's circuit is open answers 502 (not 503), the hop not sent.
 * - The Hono route passes two `set-cookie` lines and `retry-after` of a final 503 through.
 *
 * Docs-silent (not pinned; all three written into docs/recipes.md in the sixty-first session, asserted beside the
 * tests that show them):
 * - Replicate's `paginate` follows the absolute `next` URL a page gives: after the spare served page 1 down a
 *   chain, page 2 is a call the client addresses to the spare's origin, so it carries the caller's `Bearer r8_…`
 *   there (the library's rule is kept: it is the origin addressed). recipes.md's "a fallback … with that endpoint's
 *   own key" does not say a spare's absolute links lead the caller's key to it.
 * - The OpenAI SDK's `idempotencyKey` request option sends no header (openai 7.59 sets no `idempotencyHeader`): the
 *   hung POST is not retried. Only a header the caller writes, or `retry.idempotencyKey`, counts.
 * - recipes.md's Anthropic redirect paragraph says `x-api-key` stays home without naming `redirects: "platform"`,
 *   which the paragraph before offers; there the key crosses (retry.md gives the reason, asserted above).
 */

import { readFileSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import { ofetch } from "ofetch";
import OpenAI from "openai";
import { describe, expect, it, vi } from "vitest";
import { createAnthropic, overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { createApp, type Env, layerOptions } from "../../examples/recipes/hono-worker.ts";
import { createKy } from "../../examples/recipes/ky.ts";
import { createOfetch } from "../../examples/recipes/ofetch.ts";
import { CALL_TIMEOUT_MS, createAzureOpenAI, createOpenAI } from "../../examples/recipes/openai.ts";
import { createReplicate } from "../../examples/recipes/replicate.ts";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isConfigError, type RedirectEvent, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

vi.mock("@storycore/resilient-fetch", () => import("../../src/index.ts"));
vi.mock("@storycore/resilient-fetch/cloudflare", () => import("../../src/cloudflare/index.ts"));
vi.mock("@storycore/resilient-fetch/fallback", () => import("../../src/fallback/index.ts"));
vi.mock("@storycore/resilient-fetch/ky", () => import("../../src/ky/index.ts"));

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const json =
  (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(status, { "content-type": "application/json", ...headers });
    hit.res.end(JSON.stringify(body));
  };
const hang = (_hit: Hit): void => {};
const redirectTo = (location: string) => (hit: Hit) => {
  hit.res.writeHead(307, { location });
  hit.res.end();
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
const overloaded = (status = 529) =>
  json({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, status);
const ask = { model: "m", max_tokens: 1, messages: [] };
const settle = <T>(p: Promise<T>): Promise<T | unknown> =>
  p.then(
    (v) => v,
    (e: unknown) => e,
  );
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Yields real turns until `check()` holds (a server got its request). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await pause(1);
  expect(check()).toBe(true);
}

/** A chain from `a` on A to `b` on B under `path`, `b` with its own headers; hedged when `hedge` is given. */
function chain(path: string, spareHeaders: Record<string, string>, hedge?: number): ResilienceOptions["fallback"] {
  return fallback([
    {
      name: "gen",
      ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
      endpoints: [
        { name: "a", url: `${A.base}${path}` },
        { name: "b", url: `${B.base}${path}`, headers: spareHeaders },
      ],
    },
  ]);
}

const stainless = (hit: Hit | undefined) => Object.keys(hit?.headers ?? {}).filter((k) => k.startsWith("x-stainless"));

/** docs/recipes.md with its line breaks as spaces. */
const recipesDoc = () => readFileSync(new URL("../../docs/recipes.md", import.meta.url), "utf8").replace(/\s+/g, " ");

describe("OpenAI and Azure: the code block, a caller's own key, a cross-origin deployment", () => {
  it("createOpenAI and createAzureOpenAI carry exactly the block's maxRetries 0, timeout 120_000 and the layer's fetch", () => {
    const resilience = createResilience({ timeout: { attempt: 60_000 } });
    const openai = createOpenAI(resilience, { apiKey: "sk", baseURL: `${A.base}/v1` });
    const azure = createAzureOpenAI(resilience, {
      apiKey: "az",
      endpoint: A.base,
      deployment: "dep",
      apiVersion: "2024-10-21",
    });
    expect(CALL_TIMEOUT_MS).toBe(120_000);
    for (const client of [openai, azure]) {
      expect([client.maxRetries, client.timeout]).toEqual([0, 120_000]);
      expect((client as unknown as { fetch: unknown }).fetch).toBe(resilience.fetch);
    }
  });

  it("a caller's own Idempotency-Key header (no retry.idempotencyKey): the hung attempt is retried under it", async () => {
    A.on((hit) => (hit.n === 1 ? hang(hit) : completion(hit)));
    const clock = new TestClock(0);
    const layer = createResilience({ clock, timeout: { attempt: 1000 }, retry: { jitter: "none", initialDelay: 100 } });
    const openai = createOpenAI(layer, { apiKey: "sk", baseURL: `${A.base}/v1` });
    const call = settle(
      openai.chat.completions.create(
        { model: "m", messages: [{ role: "user", content: "hi" }] },
        { headers: { "Idempotency-Key": "caller-key-1" } },
      ),
    );
    await until(() => A.hits.length === 1);
    await clock.advance(1000);
    await until(() => clock.pending() > 0);
    await clock.advance(100);
    expect(await call).toMatchObject({ id: "chatcmpl-1" });
    expect(A.hits.map((h) => h.headers["idempotency-key"])).toEqual(["caller-key-1", "caller-key-1"]);
    expect(clock.pending()).toBe(0);
  });

  it("the SDK's idempotencyKey option sends no header: the hung POST is sent once (written into recipes.md since)", async () => {
    A.on(hang);
    const clock = new TestClock(0);
    const layer = createResilience({ clock, timeout: { attempt: 1000 } });
    const openai = createOpenAI(layer, { apiKey: "sk", baseURL: `${A.base}/v1` });
    const call = settle(openai.chat.completions.create({ model: "m", messages: [] }, { idempotencyKey: "sdk-key" }));
    await until(() => A.hits.length === 1);
    await clock.advance(1000);
    const out = await call;
    expect(out).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(A.hits.map((h) => h.headers["idempotency-key"])).toEqual([undefined]);
    expect(clock.pending()).toBe(0);
    expect(recipesDoc()).toContain(
      "the SDK's own `idempotencyKey` request option does not, as openai sends no header for it",
    );
  });

  it("Azure down a cross-origin chain: the spare gets its own api-key, the deployment path and api-version, no x-stainless-*", async () => {
    A.on(json({ error: { message: "busy" } }, 503));
    B.on(completion);
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      fallback: chain("/openai/deployments/dep", { "api-key": "spare-key" }),
    });
    const azure = createAzureOpenAI(layer, {
      apiKey: "caller-key",
      endpoint: A.base,
      deployment: "dep",
      apiVersion: "2024-10-21",
    });
    const out = await clock.run(azure.chat.completions.create({ model: "dep", messages: [] }));
    expect(out.id).toBe("chatcmpl-1");
    const path = "/openai/deployments/dep/chat/completions?api-version=2024-10-21";
    expect(A.hits.map((h) => [h.path, h.headers["api-key"]])).toEqual(Array(3).fill([path, "caller-key"]));
    expect(B.hits.map((h) => [h.path, h.headers["api-key"]])).toEqual([[path, "spare-key"]]);
    expect(stainless(A.hits[0]).length).toBeGreaterThan(0);
    expect(stainless(B.hits[0])).toEqual([]);
    expect(B.hits[0]?.body).toBe(A.hits[0]?.body);
  });
});

describe("Anthropic: the recipe's own layer and its bare transport", () => {
  const anthropicOver = (sdkFetch: typeof fetch) =>
    new Anthropic({
      apiKey: "sk-ant-caller",
      baseURL: A.base,
      fetch: sdkFetch,
      maxRetries: 0,
      defaultHeaders: { "x-api-key": "sk-ant-x" },
    });

  it('crossOriginHeaders: ["anthropic-version"] carries it across a 307 through the bare transport; keys stay home', async () => {
    A.on(redirectTo(`${B.base}/v1/messages`));
    B.on(message);
    const { resilience, sdkFetch } = overloadedAs503({ crossOriginHeaders: ["anthropic-version"] });
    const redirects: RedirectEvent[] = [];
    resilience.on("redirect", (e) => redirects.push(e));
    const out = await anthropicOver(sdkFetch).messages.create(ask);
    expect(out.id).toBe("msg_1");
    const [a, b] = [A.hits[0], B.hits[0]];
    expect(b?.headers["anthropic-version"]).toBe(a?.headers["anthropic-version"]);
    expect(b?.headers["anthropic-version"]).toBeTypeOf("string");
    expect([b?.headers["x-api-key"], b?.headers.authorization]).toEqual([undefined, undefined]);
    expect(a?.headers["x-api-key"]).toBe("sk-ant-x");
    expect(redirects).toHaveLength(1);
  });

  it('redirects: "platform": undici carries x-api-key across the 307, as retry.md says (no redirect event)', async () => {
    A.on(redirectTo(`${B.base}/v1/messages`));
    B.on(message);
    const { resilience, sdkFetch } = overloadedAs503({ redirects: "platform" });
    const redirects: RedirectEvent[] = [];
    resilience.on("redirect", (e) => redirects.push(e));
    const out = await anthropicOver(sdkFetch).messages.create(ask);
    expect(out.id).toBe("msg_1");
    expect(B.hits.map((h) => h.headers["x-api-key"])).toEqual(["sk-ant-x"]);
    expect(B.hits[0]?.headers.authorization).toBeUndefined();
    expect(redirects).toHaveLength(0);
    expect(recipesDoc()).toContain(
      '(under `redirects: "platform"`, Node\'s follower drops only `authorization`, where this SDK sends its key, and carries an `x-api-key` you set yourself',
    );
  });

  it("a hedge through the bare transport: the hung primary loses 14 times and its breaker counts none", async () => {
    A.on(hang);
    B.on(json({ data: [], has_more: false }));
    const clock = new TestClock(0);
    const { resilience, sdkFetch } = overloadedAs503({ clock, fallback: chain("/v1", {}, 100) });
    const client = createAnthropic(sdkFetch, { apiKey: "k", baseURL: A.base });
    for (let i = 0; i < 14; i++) {
      const call = settle(client.models.list());
      await until(() => A.hits.length === i + 1);
      await clock.advance(100);
      expect(await call).not.toBeInstanceOf(Error);
      await A.hits[i]?.closed;
    }
    expect([A.hits.length, B.hits.length]).toEqual([14, 14]);
    const primary = resilience.health().breakers[A.host];
    expect(primary).toMatchObject({ state: "closed", failureCount: 0, consecutiveFailures: 0 });
    expect(clock.pending()).toBe(0);
  });

  it("a chain through sdkFetch: the primary's 529s retried, the fallback event says status 503, the spare's own key", async () => {
    A.on(overloaded());
    B.on(message);
    const clock = new TestClock(0);
    const { resilience, sdkFetch } = overloadedAs503({ clock, fallback: chain("/v1", { "x-api-key": "spare" }) });
    const moves: unknown[] = [];
    resilience.on("fallback", (e) => moves.push(e));
    const out = await clock.run(createAnthropic(sdkFetch, { apiKey: "k", baseURL: A.base }).messages.create(ask));
    expect(out.id).toBe("msg_1");
    expect(moves).toEqual([{ chain: "gen", from: "a", reason: "status 503", next: "b" }]);
    expect(A.hits).toHaveLength(3);
    expect(B.hits.map((h) => [h.headers["x-api-key"], h.headers.authorization])).toEqual([["spare", undefined]]);
  });

  for (const redirects of ["library", "platform"] as const) {
    for (const status of [529, 503]) {
      it(`a chain whose primary 307s to a ${status} (${redirects} follower): not sent again, the spare never asked`, async () => {
        A.on((hit) => (hit.path === "/v1/messages" ? redirectTo(`${A.base}/v1/moved`)(hit) : overloaded(status)(hit)));
        B.on(message);
        const clock = new TestClock(0);
        const { sdkFetch } = overloadedAs503({ clock, redirects, fallback: chain("/v1", { "x-api-key": "spare" }) });
        const out = await clock.run(
          settle(createAnthropic(sdkFetch, { apiKey: "k", baseURL: A.base }).messages.create(ask)),
        );
        expect(out).toBeInstanceOf(Anthropic.APIError);
        expect((out as Error).constructor.name).toBe(status === 529 ? "OverloadedError" : "ServiceUnavailableError");
        expect((out as { status: number }).status).toBe(status);
        expect(A.hits.map((h) => h.path)).toEqual(["/v1/messages", "/v1/moved"]);
        expect(B.hits).toHaveLength(0);
      });
    }
  }

  it("a Request input to sdkFetch: its body replayed after a 529, and through a platform-followed 307", async () => {
    const body = JSON.stringify({ model: "m", n: 1 });
    const request = () =>
      new Request(`${A.base}/v1/messages`, { method: "POST", body, headers: { "content-type": "application/json" } });
    A.on((hit) => (hit.n === 1 ? overloaded()(hit) : message(hit)));
    const clock = new TestClock(0);
    const retried = await clock.run(overloadedAs503({ clock }).sdkFetch(request()));
    expect(retried.status).toBe(200);
    expect(A.hits.map((h) => [h.method, h.body])).toEqual([
      ["POST", body],
      ["POST", body],
    ]);
    A.reset();
    A.on((hit) => (hit.n === 1 ? redirectTo(`${A.base}/v1/moved`)(hit) : message(hit)));
    const followed = await overloadedAs503({ redirects: "platform" }).sdkFetch(request());
    expect([followed.status, followed.redirected]).toEqual([200, true]);
    expect(A.hits.map((h) => [h.method, h.path, h.body])).toEqual([
      ["POST", "/v1/messages", body],
      ["POST", "/v1/moved", body],
    ]);
  });
});

describe("Replicate: paginate down a chain", () => {
  it("page 2 follows the spare's absolute next URL: the caller's key goes there (the origin addressed)", async () => {
    A.on(json({ detail: "down" }, 503));
    B.on((hit) =>
      hit.path.includes("cursor=")
        ? json({ results: [{ id: "p2" }], next: null })(hit)
        : json({ results: [{ id: "p1" }], next: `${B.base}/v1/predictions?cursor=c2` })(hit),
    );
    const clock = new TestClock(0);
    const layer = createResilience({ clock, fallback: chain("/v1", { authorization: "Bearer spare" }) });
    const replicate = createReplicate(layer, { auth: "r8_caller", baseUrl: `${A.base}/v1` });
    const pages: unknown[] = [];
    await clock.run(
      (async () => {
        for await (const page of replicate.paginate(() => replicate.predictions.list())) pages.push(page);
      })(),
    );
    expect(pages).toEqual([[{ id: "p1" }], [{ id: "p2" }]]);
    expect(A.hits).toHaveLength(3);
    expect(B.hits.map((h) => [h.path, h.headers.authorization])).toEqual([
      ["/v1/predictions", "Bearer spare"],
      ["/v1/predictions?cursor=c2", "Bearer r8_caller"],
    ]);
    expect(recipesDoc()).toContain(
      "after a chain's spare served the first page, the client itself addresses the spare's origin, so your own `authorization` goes there",
    );
  });
});

describe("ofetch and ky", () => {
  it("ofetch's default retries a GET at 409 (not the layer's) once; the recipe sends it once; a POST gets the layer's 3", async () => {
    A.on(json({ error: "conflict" }, 409));
    const clock = new TestClock(0);
    const layer = createResilience({ clock });
    const bare = ofetch.create({ baseURL: A.base }, { fetch: layer.fetch });
    expect(await clock.run(settle(bare("/x")))).toMatchObject({ statusCode: 409 });
    expect(A.hits).toHaveLength(2);
    A.reset();
    A.on(json({ error: "conflict" }, 409));
    expect(await clock.run(settle(createOfetch(layer, A.base)("/x")))).toMatchObject({ statusCode: 409 });
    expect(A.hits).toHaveLength(1);
    A.reset();
    A.on(json({ error: "busy" }, 503));
    expect(await clock.run(settle(bare("/jobs", { method: "POST", body: { a: 1 } })))).toMatchObject({
      statusCode: 503,
    });
    expect(A.hits).toHaveLength(3);
  });

  it("createKy extended with ky 1's prefixUrl is ky's own error, nothing sent; extend(fn) setting retry is a ConfigError", async () => {
    const layer = createResilience({});
    const api = createKy(layer, `${A.base}/v1`);
    const old = await settle(
      Promise.resolve().then(() =>
        api
          .extend({ prefixUrl: A.base } as never)("x")
          .text(),
      ),
    );
    expect(String(old)).toMatch(/prefixUrl.*renamed.*prefix/);
    expect(isConfigError(old)).toBe(false);
    const again = await settle(
      Promise.resolve().then(() =>
        api
          .extend((o) => ({ ...o, retry: 2 }))("x")
          .text(),
      ),
    );
    expect(isConfigError(again)).toBe(true);
    expect(A.hits).toHaveLength(0);
  });
});

describe("Workers: resilientProxy and the Hono route", () => {
  it("resilientProxy: a redirect's later hop refused by its open circuit answers 502, not 503; the hop not sent", async () => {
    const clock = new TestClock(0);
    A.on(redirectTo(`${B.base}/b/y`));
    B.on(json({ error: "down" }, 503));
    const proxy = resilientProxy({
      resilience: { clock, retry: false, breaker: { failureThreshold: 1 } },
      routes: [
        { path: "/v1", upstream: `${A.base}/v1` },
        { path: "/b", upstream: `${B.base}/b` },
      ],
    });
    const opened = await proxy.fetch(new Request("http://worker.example/b/y"), {}, ctx);
    expect(opened.status).toBe(503);
    expect(B.hits).toHaveLength(1);
    const res = await proxy.fetch(new Request("http://worker.example/v1/x"), {}, ctx);
    expect([res.status, res.headers.get("retry-after"), await res.json()]).toEqual([
      502,
      null,
      { error: "upstream unavailable" },
    ]);
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
  });

  it("the Hono route passes a final 503 through with both set-cookie lines and its retry-after", async () => {
    for (const up of [A, B])
      up.on((hit) => {
        hit.res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Path=/"]);
        json({ error: "busy" }, 503, { "retry-after": "7" })(hit);
      });
    const clock = new TestClock(0);
    const env: Env = { IMAGES_URL: A.base, IMAGES_KEY: "img", SPARE_URL: B.base, SPARE_KEY: "spare" };
    const app = createApp((e) =>
      createResilience({ ...layerOptions(e), clock, retry: { maxRetryAfter: 10_000, jitter: "none" } }),
    );
    const res = await clock.run(
      Promise.resolve(app.fetch(new Request("http://w/generate", { method: "POST", body: "{}" }), env)),
    );
    expect([res.status, res.headers.get("retry-after"), await res.json()]).toEqual([503, "7", { error: "busy" }]);
    expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    expect([A.hits.length, B.hits.length]).toEqual([3, 3]);
    expect(B.hits[0]?.headers.authorization).toBe("Bearer spare");
  });
});
