/**
 * Outside-in attack on the newest fixes (CHANGELOG.md, the top entries under the first "### Fixed": a chain
 * `transform`'s keyed query, the error guards, a polyfill's signal, a signal that throws when listened to), driven
 * through the paths the last run did not drive them through: `resilientProxy` with chain routes, and the ky client
 * (`createClient`) on a layer with a chain; and docs/cloudflare.md's promises about `resilientProxy`, sentence by
 * sentence, on chain routes.
 *
 * Docs:
 * - docs/degradation.md: "The breaker key (`url.host`, or `breaker.key(url)`) is taken from the URL the caller asked
 *   for, before the rewrite: a call keeps its host's breaker at every level, and a `breaker.key` that reads a query
 *   parameter a rule rewrites reads the caller's value (on a chain endpoint whose `transform` changes the URL too,
 *   each parameter the `transform` left at the rule's value is keyed with the caller's, as the caller wrote it and
 *   in its place; …)". CHANGELOG: "A chain `transform`'s URL, keyed with the caller's value of a parameter a
 *   degradation rule rewrote, had that parameter moved to the end and every other parameter re-encoded (`a%20cat` as
 *   `a+cat`): a `breaker.key` that reads the query named another breaker at a degraded level. The caller's pairs now
 *   go back as written, in their place." and "A chain endpoint's `transform` that changed the query as well as the
 *   host (added `api-version=2`, as Azure asks) …".
 * - src/core/errors.ts `isResilienceError`: "True for any error raised by this library, across realms. … a name
 *   other code also uses (ky's own `TimeoutError`, …) is not taken for one of ours." `failureResponse` JSDoc: "every
 *   circuit open: `503` with `Retry-After` for the first to reopen …; every attempt timed out (or its circuit open):
 *   `504`; anything else: `502`, a redirect's later hop refused by its open circuit included". CHANGELOG (Added):
 *   "`CircuitOpenError#afterRedirect`: `true` when the breaker refused a redirect's later hop".
 * - docs/cloudflare.md: "answers `503` with `Retry-After` when the circuit is open, `504` on a timeout, `400` when
 *   the request failed of the client's own making at every endpoint tried …, and `502` when no endpoint answered
 *   otherwise (… a `429` or `503` that came after another request of the call (a retry, an endpoint before it) for
 *   a client's POST or PATCH without a key, when `retry.idempotencyKey` is on …)"; "a chain route counts as open
 *   when every endpoint's circuit is, `Retry-After` then naming the first to reopen, and as timed out when every
 *   endpoint it tried timed out and the rest were open"; "adds `x-resilience-endpoint` (the endpoint's name,
 *   percent-encoded when it holds what a header cannot, such as `—`, a space at either end or a `%`, so
 *   `decodeURIComponent` reads any name back; …), `x-resilience-attempts` and `x-degradation-level` to the responses
 *   the upstreams gave (its own 502, 503 and 504 carry none of the three)"; "A route serves its path and everything
 *   below it (… the query after the upstream's own …); `"/"` is a catch-all, and the longest matching route wins
 *   (…; of two routes that match alike, such as `/v1` and `/v1/`, the first listed). The route decides alone …";
 *   "The proxy forwards neither the hop's headers (…), either way, nor what Cloudflare's edge or a proxy before it
 *   says about the end user (`cf-*`, `x-forwarded-*`, `forwarded`, `x-real-ip`, `x-client-ip`,
 *   `true-client-ip`)"; "A `store` factory that throws … makes the request reject with its error … and is called
 *   again on the next request."; "`GET /__resilience/health` returns `health()` as JSON (`HEAD` the same without
 *   the body; … any other method is answered 405 with `Allow: GET, HEAD`; the path matches as written, so
 *   `/__resilience/health/` … is an ordinary path …); when the env var `RESILIENCE_HEALTH_TOKEN` holds a value (text,
 *   a number …), it requires `Authorization: Bearer <token>` (the scheme in any case, and one or more spaces before
 *   the token …)"; "`resilientProxy` checks its options when it is made … (a `ConfigError` naming the route, …; a
 *   chain name two routes share too, `routes.1.chain.name`; a route key other than `path`, `upstream` and `chain`,
 *   such as `headers`, is one too, `routes.1`) … a chain endpoint's name no encoding can carry, with a lone
 *   surrogate, is a `ConfigError` when the proxy is made".
 * - docs/retry.md: "one of that shape that is not the platform's own, a polyfill's or an SDK's, … is followed by
 *   one of the platform's … (a `createClient` call's `signal` too …); one that throws when listened to rejects the
 *   call with what it threw before anything is sent or run, on every entry that takes a signal"; "the signal such
 *   a call hands its transport follows yours after the call settled, as fetch's own does, so aborting then still
 *   cancels a body being read".
 *
 * How: `createResilience`, the guards (root), `fallback` (./fallback), `degradation` (./degradation; its stage
 * wrapped to reach the proxy's level, as a `DegradationStage` is joined as given), `createClient` (./ky),
 * `resilientProxy` and `failureResponse` (./cloudflare), `TestClock` and `recordEvents` (./testing). Three node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts) and a refused origin. Requests handed to `proxy.fetch` as a
 * Worker gets them (a `Request`, an env, a `ctx`); a polyfill's signal reaches the proxy through a `Request` subclass
 * whose `signal` is that object (a middleware's wrapped request).
 *
 * Paths: `resilientProxy` chain routes (transform, degradation rewrite, `breaker.key`, hedge, POST with
 * `retry.idempotencyKey`, holds, timeouts, health, routing), upstream routes (routing), ky client on a layer with a
 * chain (string URL, `searchParams`, polyfill signals, errors; a redirect to an open host), `Request` input down a
 * chain.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-second session, so plain
 * `it`):
 * 1. docs/degradation.md "a call keeps its host's breaker at every level" with the CHANGELOG's "a `breaker.key`
 *    that reads the query named another breaker at a degraded level. The caller's pairs now go back as written, in
 *    their place". Observed, `breaker.key = host + url.search`, a chain endpoint whose `transform` adds
 *    `api-version=2` with `url.searchParams.set` (the Azure case the CHANGELOG names), a model written as such
 *    names are (`model=openai/gpt-4o`, `org/model` as Together, OpenRouter and Hugging Face write them): at `full`
 *    the send is keyed `…?model=openai%2Fgpt-4o&n=1&api-version=2` (the transform's re-encoding: nothing to put
 *    back), at `medium` `…?model=openai/gpt-4o&n=1&api-version=2` (the caller's pair put back as written): another
 *    breaker. Through `resilientProxy` the circuit a 503 at `full` opened does not refuse the same client request at
 *    `medium`: it is sent to the provider again and B's 503 passed on; through the ky client a second breaker opens
 *    (`recordEvents`). A value with nothing to re-encode (`premium`), or ky's `searchParams` (which writes `%2F`
 *    itself), is keyed alike. Source:
 *    src/fallback/try-endpoints.ts `withAskedQuery` puts the caller's pairs back only for a parameter the rule
 *    rewrote; at `full` (no rewrite) the transform's own spelling of the same pairs is keyed.
 *
 * Held (plain `it`):
 * - Proxy chain route and ky (string URL and `searchParams`) with a template transform (`api-version=2&` + the
 *   caller's query): `a%20cat`, a repeated `model` with another pair between, `%70remium` (proxy): the 503 at `full` opens a
 *   breaker that refuses the same request at `medium` (proxy: its own 503 with `Retry-After`, nothing sent; ky: a
 *   `FallbackExhaustedError` of a `CircuitOpenError`, `failureResponse` 503); the provider got the rewritten value.
 * - ky errors and the guards: `CircuitOpenError` (503 + `Retry-After`), `FallbackExhaustedError` of open circuits
 *   (503), the layer's `TimeoutError` (504), `RetryExhaustedError` and a chain of refused origins (502), a
 *   redirect's hop refused by its open circuit (`afterRedirect: true`, 502); ky's own `TimeoutError` and
 *   `HTTPError` are not ours; a platform refusal (`content-length: abc`) is not ours and `failureResponse` says 400.
 * - Proxy chain answers: every circuit held open → 503, `Retry-After` of the first to reopen, JSON, none of the
 *   three headers, nothing sent; timed out + open → 504; timed out + refused → 502; keyless POST with
 *   `retry.idempotencyKey`, 503/429 after the endpoint before (plain and hedged) → 502; with the client's key the
 *   503 goes on with its headers; a client's `content-length: abc` at every endpoint → 400, nothing sent.
 * - `x-resilience-endpoint` for chain names with `—`, a trailing space, `%`: percent-encoded, read back; routing
 *   (longest wins, `/v1` before `/v1/`, `/` catch-all, the query after the first endpoint's own, the route decides
 *   alone); hop and end-user headers dropped on a chain route both ways; health GET/HEAD/POST/`…/health/`/token;
 *   a throwing `store` factory rejects (not one of our errors) and is called again; the construction refusals.
 * - Signals: a polyfill's signal aborted during a chain's backoff (ky per call and instance-wide; the proxy through
 *   a `Request` subclass) ends the call with its reason, the spare never called, no timer left; aborted after the
 *   headers, the body read fails with its reason (ky, proxy); a signal that throws when listened to: ky per call
 *   and `extend`, and `Request` input down a chain, refuse it with its throw, nothing sent, no breaker moved.
 *
 * Docs-silent (not pinned):
 * - A `Request` handed to `proxy.fetch` whose `signal` throws when listened to is answered `502` "upstream
 *   unavailable" with nothing sent (the layer rejected with the signal's throw, which `failureResponse` reads as no
 *   endpoint answering), where a throwing `store` factory rejects so that Workers log it.
 * - `createClient({ signal })` with a signal that throws when listened to throws that error at once, when the client
 *   is made (not a `ConfigError`, and no call to reject).
 * - A 429 with a `Retry-After` at most `maxRetryAfter` holds nothing: a chain route passes it on, its `Retry-After`
 *   included, and the next request goes to that endpoint again (docs/retry.md documents the threshold).
 */
import { afterEach, describe, expect, it } from "vitest";
import { failureResponse, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type ConfigError,
  createResilience,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
serveDuringFile(A, B, C);

const pending: Promise<unknown>[] = [];
afterEach(async () => {
  await Promise.allSettled(pending.splice(0));
});

const ctx = {
  waitUntil(p: Promise<unknown>) {
    pending.push(p);
  },
  passThroughOnException() {},
};

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const status =
  (code: number, headers: Record<string, string> = {}) =>
  (hit: Hit): void => {
    hit.res.writeHead(code, { "content-type": "text/plain", ...headers }).end(`s${code}`);
  };

async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** What a promise settles with, without awaiting it forever: "pending" after a few real ms. */
async function settledSoon(p: Promise<unknown>): Promise<unknown> {
  const marker = Symbol("pending");
  const out = await Promise.race([p, turns(15).then(() => marker)]);
  return out === marker ? "pending" : out;
}

const worker = (path: string, init?: RequestInit) => new Request(`https://worker.example${path}`, init);
const the3 = (r: Response) =>
  ["x-resilience-endpoint", "x-resilience-attempts", "x-degradation-level"].map((h) => r.headers.get(h));

// ---------------------------------------------------------------------------
// (a) A transform's keyed query, through the proxy and through ky.

type Transform = NonNullable<Parameters<typeof fallback>[0][number]["endpoints"][number]["transform"]>;

/** To B under `/v3`, the provider's own parameter first, then the caller's query byte for byte. */
const template: Transform = (req) => {
  const asked = new URL(req.url);
  return { ...req, url: `${B.base}/v3${asked.pathname.slice("/v2".length)}?api-version=2&${asked.search.slice(1)}` };
};

/** To B under `/v3`, `api-version=2` added as Azure's SDKs add it: `url.searchParams.set`. */
const azure: Transform = (req) => {
  const to = new URL(req.url.replace(`${A.base}/v2`, `${B.base}/v3`));
  to.searchParams.set("api-version", "2");
  return { ...req, url: to.href };
};

const models = [
  ["premium", "standard", "basic"],
  ["openai/gpt-4o", "openai/gpt-4o-mini"],
];

/** A degradation stage for `model` in the query, with a handle on the level of the layer it joins. */
function levelled() {
  const stage = degradation({ models, rules: [{ params: { model: { query: "model" } } }] });
  const held: { setLevel?: (name: string) => void } = {};
  const wrapped = {
    ...stage,
    join(parts: Parameters<typeof stage.join>[0]) {
      const joined = stage.join(parts);
      held.setLevel = (name) => (joined.handle as { setLevel(n: string): void }).setLevel(name);
      return joined;
    },
  };
  return { wrapped, held };
}

/**
 * A proxy whose `/gen` route is a chain of one endpoint (A `/v2`, sent to B by `transform`), keyed by host and
 * query: the client's request at `full` (B answers 503: the breaker opens), then the same request at `medium`.
 */
async function proxyAtTwoLevels(query: string, transform: Transform) {
  const { wrapped, held } = levelled();
  const proxy = resilientProxy<object>({
    routes: [{ path: "/gen", chain: { name: "gen", endpoints: [{ name: "a", url: `${A.base}/v2`, transform }] } }],
    resilience: {
      clock: new TestClock(0),
      retry: false,
      breaker: { key: (u: URL) => `${u.host}${u.search}`, failureThreshold: 1 },
      degradation: wrapped as unknown as ResilienceOptions["degradation"],
    },
  });
  B.on(busy);
  const full = await proxy.fetch(worker(`/gen/x?${query}`), {}, ctx);
  await full.text();
  const sentAtFull = B.hits.map((h) => h.path);
  held.setLevel?.("medium");
  const medium = await proxy.fetch(worker(`/gen/x?${query}`), {}, ctx);
  const body = await medium.text();
  return {
    full: full.status,
    sentAtFull,
    medium: medium.status,
    mediumBody: body,
    retryAfter: medium.headers.get("retry-after"),
    sentAfter: B.hits.slice(sentAtFull.length).map((h) => h.path),
  };
}

/** The same through ky on a layer with the chain: what the call at `medium` ends with, and what B got. */
async function kyAtTwoLevels(path: string, transform: Transform, searchParams?: Record<string, string>) {
  const clock = new TestClock(0);
  const layer = createResilience({
    clock,
    retry: false,
    breaker: { key: (u: URL) => `${u.host}${u.search}`, failureThreshold: 1 },
    degradation: degradation({ models, rules: [{ params: { model: { query: "model" } } }] }),
    fallback: fallback([{ name: "gen", endpoints: [{ name: "a", url: `${A.base}/v2`, transform }] }]),
  });
  const recorder = recordEvents(layer);
  const api = createClient({ prefix: `${A.base}/v2`, resilience: layer, throwHttpErrors: false });
  B.on(busy);
  const options = searchParams ? { searchParams } : {};
  const full = await api.get(path, options);
  await full.text();
  layer.degradation?.setLevel("medium");
  const error = await api
    .get(path, options)
    .then(async (r) => `answered ${r.status} ${await r.text()}`)
    .catch((e: unknown) => e);
  const opened = recorder
    .of("breaker")
    .filter((e) => e.to === "open")
    .map((e) => e.key);
  return { error, opened, sent: B.hits.map((h) => h.path), pending: clock.pending() };
}

describe("(a) a chain transform's keyed query at a degraded level, through the proxy and ky", () => {
  it("held: proxy chain route, template transform: the breaker opened at full refuses the same request at medium", async () => {
    for (const query of ["prompt=a%20cat&model=premium&n=1", "model=premium&n=1&model=premium", "model=%70remium"]) {
      B.reset();
      const out = await proxyAtTwoLevels(query, template);
      expect([query, out.full, out.sentAtFull]).toEqual([query, 503, [`/v3/x?api-version=2&${query}`]]);
      // Refused by the open breaker: the proxy's own 503, nothing sent.
      expect([query, out.medium, out.sentAfter]).toEqual([query, 503, []]);
      expect(out.mediumBody).toBe('{"error":"upstream circuit open"}');
      expect(Number(out.retryAfter)).toBeGreaterThanOrEqual(1);
    }
  });

  it("held: proxy chain route at medium sends the rewritten value, each place of a repeated parameter", async () => {
    const { wrapped, held } = levelled();
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/gen", chain: { name: "gen", endpoints: [{ name: "a", url: `${A.base}/v2`, transform: template }] } },
      ],
      resilience: { retry: false, degradation: wrapped as unknown as ResilienceOptions["degradation"] },
    });
    await (await proxy.fetch(worker("/gen/warm"), {}, ctx)).text();
    held.setLevel?.("medium");
    const res = await proxy.fetch(worker("/gen/x?model=premium&n=1&model=premium"), {}, ctx);
    await res.text();
    expect(B.hits.map((h) => h.path)).toEqual([
      "/v3/warm?api-version=2&",
      "/v3/x?api-version=2&model=standard&n=1&model=standard",
    ]);
    expect(the3(res)).toEqual(["a", "1", "medium"]);
  });

  it("held: ky on a chain, template transform (string URL and searchParams): refused at medium as at full", async () => {
    const cases: Array<[string, Record<string, string> | undefined]> = [
      ["gen?prompt=a%20cat&model=premium&n=1", undefined],
      ["gen?model=premium&n=1&model=premium", undefined],
      ["gen", { prompt: "a cat", model: "premium", n: "1" }],
    ];
    for (const [path, searchParams] of cases) {
      B.reset();
      const out = await kyAtTwoLevels(path, template, searchParams);
      expect([path, out.sent.length]).toEqual([path, 1]);
      expect(out.opened).toHaveLength(1);
      expect(isFallbackExhaustedError(out.error)).toBe(true);
      const errors = isFallbackExhaustedError(out.error) ? Object.values(out.error.errors) : [];
      expect(errors.map(isCircuitOpenError)).toEqual([true]);
      expect(failureResponse(out.error, 0).status).toBe(503);
      expect(out.pending).toBe(0);
    }
  });

  // Defect 1.
  it("defect 1: proxy chain route, searchParams transform, `model=openai/gpt-4o`: refused at medium as at full", async () => {
    const out = await proxyAtTwoLevels("model=openai/gpt-4o&n=1", azure);
    expect(out.full).toBe(503);
    expect(out.sentAtFull).toEqual(["/v3/x?model=openai%2Fgpt-4o&n=1&api-version=2"]);
    // Observed: sent again, `/v3/x?model=openai%2Fgpt-4o-mini&n=1&api-version=2`, and B's own 503 `busy` passed on:
    // keyed `…?model=openai/gpt-4o&n=1&api-version=2` where the call at full was keyed `…?model=openai%2Fgpt-4o…`.
    expect(out.sentAfter).toEqual([]);
    expect(out.mediumBody).toBe('{"error":"upstream circuit open"}');
  });

  it("defect 1 through ky: the same request at medium opens no second breaker", async () => {
    const out = await kyAtTwoLevels("gen?model=openai/gpt-4o&n=1", azure);
    // Observed: opened [`…?model=openai%2Fgpt-4o&n=1&api-version=2`, `…?model=openai/gpt-4o&n=1&api-version=2`],
    // B got the medium request, and the call answered 503 from B.
    // One breaker, keyed with the caller's pair as written at both levels (as first pinned, this asserted the
    // `transform`'s own spelling, `openai%2Fgpt-4o`, the key at `full` before the fix).
    expect(out.opened).toEqual([`${B.host}?model=openai/gpt-4o&n=1&api-version=2`]);
    expect(out.sent).toHaveLength(1);
    expect(isFallbackExhaustedError(out.error)).toBe(true);
  });

  it("held (control for defect 1): a value no transform re-encodes is keyed alike with the same transform", async () => {
    const out = await proxyAtTwoLevels("model=premium&n=1", azure);
    expect(out.sentAtFull).toEqual(["/v3/x?model=premium&n=1&api-version=2"]);
    expect([out.medium, out.sentAfter]).toEqual([503, []]);
    // ky's `searchParams` writes `openai%2Fgpt-4o` itself: nothing for the transform to re-encode.
    B.reset();
    const viaKy = await kyAtTwoLevels("gen", azure, { model: "openai/gpt-4o", n: "1" });
    expect(viaKy.opened).toEqual([`${B.host}?model=openai%2Fgpt-4o&n=1&api-version=2`]);
    expect(viaKy.sent).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------
// (b) Errors ky hands on, and the guards.

describe("(b) the guards on what the ky client throws", () => {
  it("held: open circuits, a chain of open circuits, the layer's timeout, refused origins; ky's own are not ours", async () => {
    const clock = new TestClock(0);
    const options = { clock, retry: false as const, breaker: { failureThreshold: 1 }, timeout: { attempt: 1000 } };
    const chained = createClient({
      resilience: {
        ...options,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "a", url: `${A.base}/c` },
              { name: "b", url: `${B.base}/c` },
            ],
          },
        ]),
      },
    });
    A.on(busy);
    B.on(busy);
    await chained.get(`${A.base}/c/x`).catch((e: unknown) => e);
    const openChain = await chained.get(`${A.base}/c/x`).catch((e: unknown) => e);
    expect([isResilienceError(openChain), isFallbackExhaustedError(openChain), isCircuitOpenError(openChain)]).toEqual([
      true,
      true,
      false,
    ]);
    const chainAnswer = failureResponse(openChain, clock.now());
    expect([chainAnswer.status, chainAnswer.headers.get("retry-after")]).toEqual([503, "30"]);

    const plain = createClient({ resilience: options });
    C.on(busy);
    await plain.get(`${C.base}/p`).catch((e: unknown) => e);
    const open = await plain.get(`${C.base}/p?key=SECRET`).catch((e: unknown) => e);
    expect([isResilienceError(open), isCircuitOpenError(open)]).toEqual([true, true]);
    expect(String((open as Error).message)).not.toContain("SECRET");
    expect(failureResponse(open, clock.now()).status).toBe(503);

    C.reset();
    C.on(() => {});
    const slow = createClient({ resilience: { clock, retry: false, timeout: { attempt: 1000 } } });
    const late = slow.get(`${C.base}/t`).catch((e: unknown) => e);
    await C.nth(1);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const timedOut = await late;
    expect([isResilienceError(timedOut), isTimeoutError(timedOut)]).toEqual([true, true]);
    expect(failureResponse(timedOut).status).toBe(504);

    const dead = await refusedOrigin();
    const refused = await createClient({ resilience: { retry: false } })
      .get(`${dead}/x`)
      .catch((e: unknown) => e);
    expect([isRetryExhaustedError(refused), failureResponse(refused).status]).toEqual([true, 502]);

    // ky's own: its timeout and its HTTPError are no errors of ours.
    const kyTimeout = await createClient({ timeout: 5, resilience: { retry: false } })
      .get(`${C.base}/k`)
      .catch((e: unknown) => e);
    expect((kyTimeout as Error).name).toBe("TimeoutError");
    expect([isResilienceError(kyTimeout), isTimeoutError(kyTimeout)]).toEqual([false, false]);
    A.reset();
    A.on(busy);
    const httpError = await createClient({ resilience: { retry: false } })
      .get(`${A.base}/h`)
      .catch((e: unknown) => e);
    expect([(httpError as Error).name, isResilienceError(httpError)]).toEqual(["HTTPError", false]);
    // A platform refusal (a content-length that is no number) is the caller's: not ours, and 400.
    const bad = await createClient({ resilience: { retry: false } })
      .post(`${A.base}/b`, { body: "x", headers: { "content-length": "abc" } })
      .catch((e: unknown) => e);
    expect([(bad as Error).name, isResilienceError(bad), failureResponse(bad).status]).toEqual([
      "TypeError",
      false,
      400,
    ]);
  });

  it("held: a redirect's hop refused by its open circuit: a CircuitOpenError with afterRedirect, 502 not 503", async () => {
    const clock = new TestClock(0);
    const api = createClient({ resilience: { clock, retry: false, breaker: { failureThreshold: 1 } } });
    B.on(busy);
    await api.get(`${B.base}/open`).catch((e: unknown) => e);
    A.on((hit) => hit.res.writeHead(302, { location: `${B.base}/target` }).end());
    const error = await api.get(`${A.base}/start`).catch((e: unknown) => e);
    expect([isCircuitOpenError(error), (error as { afterRedirect?: boolean }).afterRedirect]).toEqual([true, true]);
    expect(B.hits).toHaveLength(1);
    const answer = failureResponse(error, clock.now());
    expect([answer.status, answer.headers.get("retry-after")]).toEqual([502, null]);
  });
});

// ---------------------------------------------------------------------------
// (b) The proxy's answers on chain routes, sentence by sentence.

function chainProxy(resilience: ResilientOptions, extra: Partial<Parameters<typeof fallback>[0][number]> = {}) {
  return resilientProxy<object>({
    routes: [
      {
        path: "/v1",
        chain: {
          name: "c",
          endpoints: [
            { name: "a", url: `${A.base}/a` },
            { name: "b", url: `${B.base}/b` },
          ],
          ...extra,
        },
      },
    ],
    resilience,
  });
}
type ResilientOptions = NonNullable<Parameters<typeof resilientProxy>[0]["resilience"]>;

describe("(b) resilientProxy's own answers on a chain route", () => {
  it("held: every circuit held open: 503, Retry-After of the first to reopen, JSON, none of the three headers", async () => {
    const clock = new TestClock(0);
    const proxy = chainProxy({ clock, retry: false, breaker: { failureThreshold: 5 } });
    A.on(status(503, { "retry-after": "70" }));
    B.on(status(503, { "retry-after": "100" }));
    const first = await proxy.fetch(worker("/v1/x"), {}, ctx);
    // The upstream's own answer: passed on with its Retry-After and the three headers.
    expect([first.status, first.headers.get("retry-after"), ...the3(first)]).toEqual([503, "100", "b", "2", "full"]);
    await first.text();
    await clock.advance(5000);
    const open = await proxy.fetch(worker("/v1/x"), {}, ctx);
    expect([open.status, open.headers.get("retry-after"), ...the3(open)]).toEqual([503, "65", null, null, null]);
    expect(open.headers.get("content-type")).toBe("application/json");
    expect(await open.json()).toEqual({ error: "upstream circuit open" });
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
  });

  it("held: timed out where tried, open elsewhere: 504; timed out and refused: 502; none of the three", async () => {
    const clock = new TestClock(0);
    const proxy = chainProxy({ clock, retry: false, breaker: { failureThreshold: 5 }, timeout: { attempt: 1000 } });
    A.on(busy);
    B.on(status(503, { "retry-after": "100" }));
    await (await proxy.fetch(worker("/v1/x"), {}, ctx)).text();
    A.on(() => {});
    const waiting = proxy.fetch(worker("/v1/x"), {}, ctx);
    await A.nth(2);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const timedOut = await waiting;
    expect([timedOut.status, ...the3(timedOut)]).toEqual([504, null, null, null]);
    expect(await timedOut.json()).toEqual({ error: "upstream timed out" });
    expect(B.hits).toHaveLength(1);

    const dead = await refusedOrigin();
    const mixed = resilientProxy<object>({
      routes: [
        {
          path: "/",
          chain: {
            name: "m",
            endpoints: [
              { name: "a", url: A.base },
              { name: "d", url: dead },
            ],
          },
        },
      ],
      resilience: { clock, retry: false, timeout: { attempt: 1000 } },
    });
    const pendingMixed = mixed.fetch(worker("/y"), {}, ctx);
    await A.nth(3);
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const answer = await pendingMixed;
    expect([answer.status, ...the3(answer)]).toEqual([502, null, null, null]);
    expect(clock.pending()).toBe(0);
  });

  it("held: a keyless POST under retry.idempotencyKey, declined after the endpoint before it: 502 (plain, hedged)", async () => {
    for (const [code, hedged] of [
      [503, false],
      [429, false],
      [503, true],
    ] as const) {
      A.reset();
      B.reset();
      A.on(busy);
      B.on(status(code, { "retry-after": "2" }));
      const proxy = chainProxy(
        { clock: new TestClock(0), retry: { maxAttempts: 1, idempotencyKey: true } },
        hedged ? { hedge: { delay: 10 } } : {},
      );
      const res = await proxy.fetch(worker("/v1/x", { method: "POST", body: "{}" }), {}, ctx);
      expect([code, hedged, res.status, res.headers.get("retry-after"), ...the3(res)]).toEqual([
        code,
        hedged,
        502,
        null,
        null,
        null,
        null,
      ]);
      await res.text();
      // The layer's own key went to both.
      expect(A.hits[0]?.headers["idempotency-key"]).toBeTruthy();
      expect(B.hits[0]?.headers["idempotency-key"]).toBe(A.hits[0]?.headers["idempotency-key"]);
    }
    // With the client's own key, B's 503 goes on as the upstream gave it.
    A.reset();
    B.reset();
    A.on(busy);
    B.on(status(503, { "retry-after": "2" }));
    const keyed = await chainProxy({ retry: { maxAttempts: 1, idempotencyKey: true } }).fetch(
      worker("/v1/x", { method: "POST", body: "{}", headers: { "idempotency-key": "k1" } }),
      {},
      ctx,
    );
    expect([keyed.status, keyed.headers.get("retry-after"), ...the3(keyed)]).toEqual([503, "2", "b", "2", "full"]);
    await keyed.text();
  });

  it("held: the client's own content-length at every endpoint: 400, nothing sent", async () => {
    // Both endpoints on one origin: a cross-origin one gets only the allowlist of the client's headers.
    const proxy = resilientProxy<object>({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "o",
            endpoints: [
              { name: "a", url: `${A.base}/a` },
              { name: "b", url: `${A.base}/b` },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    const res = await proxy.fetch(
      worker("/v1/x", { method: "POST", body: "abc", headers: { "content-length": "abc" } }),
      {},
      ctx,
    );
    expect([res.status, ...the3(res)]).toEqual([400, null, null, null]);
    expect(await res.json()).toEqual({ error: "the client's request failed" });
    expect([A.hits.length, B.hits.length]).toEqual([0, 0]);
  });

  it("held: x-resilience-endpoint percent-encodes a chain name a header cannot carry as written", async () => {
    for (const name of ["primary — EU", "spare ", "50% off", "plain name"]) {
      const proxy = resilientProxy<object>({
        routes: [{ path: "/", chain: { name: "n", endpoints: [{ name, url: A.base }] } }],
        resilience: { retry: false },
      });
      const res = await proxy.fetch(worker("/z"), {}, ctx);
      await res.text();
      const header = res.headers.get("x-resilience-endpoint") ?? "";
      expect([name, decodeURIComponent(header)]).toEqual([name, name]);
      expect([name, header === name]).toEqual([name, name === "plain name"]);
    }
  });
});

// ---------------------------------------------------------------------------
// (b) Routing, headers, health, store factory, construction.

describe("(b) resilientProxy: routes, headers, health, store, construction", () => {
  it("held: longest route wins, `/v1` before `/v1/`, `/` catch-all, the query after the first endpoint's own", async () => {
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/", upstream: `${C.base}/root` },
        {
          path: "/v1",
          chain: {
            name: "one",
            endpoints: [
              { name: "a", url: `${A.base}/one?key=K1` },
              { name: "b", url: `${B.base}/s?key=K2` },
            ],
          },
        },
        { path: "/v1/", upstream: `${C.base}/never` },
        { path: "/v1/jobs", upstream: `${A.base}/jobs` },
      ],
      resilience: { retry: false },
    });
    A.on((hit) => (hit.path.startsWith("/one") ? busy(hit) : hit.res.end("ok")));
    for (const path of ["/v1/x?q=1", "/v1/jobs/7", "/other", "/v1"])
      await (await proxy.fetch(worker(path), {}, ctx)).text();
    expect(A.hits.map((h) => h.path)).toEqual(["/one/x?key=K1&q=1", "/jobs/7", "/one?key=K1"]);
    expect(B.hits.map((h) => h.path)).toEqual(["/s/x?key=K2&q=1", "/s?key=K2"]);
    expect(C.hits.map((h) => h.path)).toEqual(["/root/other"]);
  });

  it("held: the route decides alone: an upstream route under a chain's URL never falls back", async () => {
    const proxy = resilientProxy<object>({
      routes: [
        { path: "/plain", upstream: `${A.base}/v2` },
        {
          path: "/chain",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: `${A.base}/v2` },
              { name: "b", url: `${B.base}/v2` },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    A.on(busy);
    const plain = await proxy.fetch(worker("/plain/x"), {}, ctx);
    expect([plain.status, plain.headers.get("x-resilience-endpoint")]).toEqual([503, A.host]);
    await plain.text();
    expect(B.hits).toHaveLength(0);
    const chained = await proxy.fetch(worker("/chain/x"), {}, ctx);
    expect([chained.status, chained.headers.get("x-resilience-endpoint")]).toEqual([200, "b"]);
    await chained.text();
  });

  it("held: hop and end-user headers are dropped on a chain route, both ways", async () => {
    const proxy = chainProxy({ retry: false });
    A.on(busy);
    B.on((hit) =>
      hit.res
        .writeHead(200, { connection: "x-private", "x-private": "1", "keep-alive": "timeout=5", "x-kept": "yes" })
        .end("ok"),
    );
    const res = await proxy.fetch(
      worker("/v1/x", {
        headers: {
          connection: "x-hop",
          "x-hop": "1",
          "proxy-authorization": "Basic cA==",
          te: "trailers",
          "cf-connecting-ip": "203.0.113.9",
          "x-forwarded-for": "203.0.113.9",
          forwarded: "for=203.0.113.9",
          "x-real-ip": "203.0.113.9",
          "x-client-ip": "203.0.113.9",
          "true-client-ip": "203.0.113.9",
          "x-app": "kept",
        },
      }),
      {},
      ctx,
    );
    await res.text();
    for (const hit of [A.hits[0], B.hits[0]]) {
      const sent = Object.keys(hit?.headers ?? {});
      for (const name of [
        "x-hop",
        "proxy-authorization",
        "te",
        "cf-connecting-ip",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
      ])
        expect([name, sent.includes(name)]).toEqual([name, false]);
    }
    // The client's own header goes to the first endpoint; the spare, another origin, gets the allowlist only.
    expect([A.hits[0]?.headers["x-app"], B.hits[0]?.headers["x-app"]]).toEqual(["kept", undefined]);
    expect([res.headers.get("x-private"), res.headers.get("keep-alive"), res.headers.get("x-kept")]).toEqual([
      null,
      null,
      "yes",
    ]);
  });

  it("held: health GET, HEAD, other methods 405, `/__resilience/health/` routed, a token in any scheme case", async () => {
    const proxy = resilientProxy<{ RESILIENCE_HEALTH_TOKEN?: unknown }>({
      routes: [{ path: "/", chain: { name: "h", endpoints: [{ name: "a", url: A.base }] } }],
      resilience: { retry: false },
    });
    const open = await proxy.fetch(worker("/__resilience/health"), {}, ctx);
    expect([open.status, open.headers.get("cache-control")]).toEqual([200, "no-store"]);
    expect(await open.json()).toHaveProperty("breakers");
    const head = await proxy.fetch(worker("/__resilience/health", { method: "HEAD" }), {}, ctx);
    expect([head.status, await head.text()]).toEqual([200, ""]);
    const post = await proxy.fetch(worker("/__resilience/health", { method: "POST", body: "x" }), {}, ctx);
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    await post.text();
    expect(A.hits).toHaveLength(0);
    const slash = await proxy.fetch(worker("/__resilience/health/"), {}, ctx);
    await slash.text();
    expect(A.hits.map((h) => h.path)).toEqual(["/__resilience/health/"]);
    const env = { RESILIENCE_HEALTH_TOKEN: 1234 };
    const none = await proxy.fetch(worker("/__resilience/health"), env, ctx);
    expect([none.status, none.headers.get("www-authenticate")]).toEqual([401, "Bearer"]);
    await none.text();
    const good = await proxy.fetch(
      worker("/__resilience/health", { headers: { authorization: "bEaReR   1234" } }),
      env,
      ctx,
    );
    expect(good.status).toBe(200);
    await good.text();
    const wrong = await proxy.fetch(
      worker("/__resilience/health", { headers: { authorization: "Bearer 12345" } }),
      env,
      ctx,
    );
    expect(wrong.status).toBe(401);
    await wrong.text();
  });

  it("held: a store factory that throws rejects the request with its own error, and is called again", async () => {
    let calls = 0;
    const missing = new Error("BREAKERS binding missing");
    const proxy = resilientProxy<{ BREAKERS?: unknown }>({
      routes: [{ path: "/", chain: { name: "s", endpoints: [{ name: "a", url: A.base }] } }],
      store: () => {
        calls++;
        throw missing;
      },
    });
    for (let i = 0; i < 2; i++) {
      const error = await proxy.fetch(worker("/x"), {}, ctx).catch((e: unknown) => e);
      expect(error).toBe(missing);
      expect(isResilienceError(error)).toBe(false);
    }
    expect(calls).toBe(2);
    expect(A.hits).toHaveLength(0);
  });

  it("held: construction refusals name their path", () => {
    const refusal = (routes: unknown, resilience?: unknown): unknown => {
      try {
        resilientProxy({ routes, resilience } as Parameters<typeof resilientProxy>[0]);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const chain = (name: string, endpoint = "a") => ({ name, endpoints: [{ name: endpoint, url: A.base }] });
    const cases: Array<[unknown, unknown, string]> = [
      [[{ path: "/", chain: chain("x", "bad\uD800") }], undefined, "routes.0.chain.endpoints.0.name"],
      [
        [
          { path: "/a", chain: chain("x") },
          { path: "/b", chain: chain("x") },
        ],
        undefined,
        "routes.1.chain.name",
      ],
      [
        [
          { path: "/a", chain: chain("x") },
          { path: "/b", upstream: A.base, headers: {} },
        ],
        undefined,
        "routes.1",
      ],
      [
        [{ path: "/a", chain: { name: "x", endpoints: [{ name: "a", url: "ftp://h" }] } }],
        undefined,
        "routes.0.chain.endpoints.0.url",
      ],
      [[{ path: "/a", upstream: A.base }], { fallback: fallback([chain("y")]) }, "resilience.fallback"],
    ];
    for (const [routes, resilience, path] of cases) {
      const error = refusal(routes, resilience);
      expect([path, isConfigError(error), (error as ConfigError).path]).toEqual([path, true, path]);
    }
    for (const routes of [
      [{ path: "/a", upstream: A.base, chain: chain("x") }],
      [{ path: "/a", upstream: `${A.base}/v1#f` }],
      [{ path: "/a", upstream: `http://u:p@${A.host}/v1` }],
      [{ path: "/vidéo", upstream: A.base }],
    ]) {
      const error = refusal(routes);
      expect([JSON.stringify(routes[0]?.path), error instanceof TypeError]).toEqual([
        JSON.stringify(routes[0]?.path),
        true,
      ]);
      expect(String((error as Error).message)).not.toContain("u:p");
    }
  });
});

// ---------------------------------------------------------------------------
// (c) A polyfill's signal, and one that throws when listened to.

/** A polyfill's signal that can be aborted, honouring `{ once: true }`; `live` counts its listeners. */
function abortable() {
  const listeners = new Set<(event: unknown) => void>();
  let aborted = false;
  let reason: unknown;
  const self = {
    get aborted() {
      return aborted;
    },
    get reason() {
      return reason;
    },
    addEventListener(_type: string, listener: (event: unknown) => void) {
      listeners.add(listener);
    },
    removeEventListener(_type: string, listener: (event: unknown) => void) {
      listeners.delete(listener);
    },
    abort(why: unknown) {
      aborted = true;
      reason = why;
      for (const listener of [...listeners]) {
        listeners.delete(listener);
        listener.call(self, { type: "abort", target: self });
      }
    },
  };
  return self;
}

/** A polyfill's signal whose `addEventListener` throws `thrown`. */
const deaf = (thrown: Error) =>
  ({
    aborted: false,
    reason: undefined,
    addEventListener() {
      throw thrown;
    },
    removeEventListener() {},
  }) as unknown as AbortSignal;

/** A `Request` whose `signal` is `signal` (a middleware's wrapped request). */
function requestWith(signal: unknown, url: string, init?: RequestInit): Request {
  class Wrapped extends Request {
    override get signal(): AbortSignal {
      return signal as AbortSignal;
    }
  }
  return new Wrapped(url, init);
}

const backoff = { maxAttempts: 3, initialDelay: 5000, jitter: "none" as const };

describe("(c) a polyfill's signal through the proxy and the ky client, down a chain", () => {
  it("held: aborted during a chain's backoff, ky per call and instance-wide: its reason, the spare never called", async () => {
    for (const where of ["call", "instance"] as const) {
      A.reset();
      B.reset();
      A.on(busy);
      const clock = new TestClock(0);
      const signal = abortable();
      const given = signal as unknown as AbortSignal;
      const api = createClient({
        ...(where === "instance" ? { signal: given } : {}),
        resilience: {
          clock,
          retry: backoff,
          fallback: fallback([
            {
              name: "k",
              endpoints: [
                { name: "a", url: `${A.base}/k` },
                { name: "b", url: `${B.base}/k` },
              ],
            },
          ]),
        },
      });
      const call = api.get(`${A.base}/k/x`, where === "call" ? { signal: given } : {}).then(
        () => "resolved",
        (e: unknown) => e,
      );
      await A.nth(1);
      await clock.waitForTimers(1);
      const reason = new Error(`left (${where})`);
      signal.abort(reason);
      expect(await settledSoon(call)).toBe(reason);
      expect([where, A.hits.length, B.hits.length, clock.pending()]).toEqual([where, 1, 0, 0]);
    }
  });

  it("held: a proxied Request whose signal is a polyfill: aborted in the backoff, the proxy rejects with its reason", async () => {
    A.on(busy);
    const clock = new TestClock(0);
    const proxy = chainProxy({ clock, retry: backoff });
    const signal = abortable();
    const answer = proxy.fetch(requestWith(signal, "https://worker.example/v1/x"), {}, ctx).then(
      (r) => `answered ${r.status}`,
      (e: unknown) => e,
    );
    await A.nth(1);
    await clock.waitForTimers(1);
    const reason = new Error("client went away");
    signal.abort(reason);
    expect(await settledSoon(answer)).toBe(reason);
    expect([A.hits.length, B.hits.length, clock.pending()]).toEqual([1, 0, 0]);
  });

  it("held: aborted after the headers, the body being read fails with its reason (ky, proxy)", async () => {
    const hang = (hit: Hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain" });
      hit.res.write("part");
    };
    A.on(hang);
    const api = createClient({
      resilience: { retry: false, fallback: fallback([{ name: "b", endpoints: [{ name: "a", url: `${A.base}/b` }] }]) },
    });
    const kySignal = abortable();
    const kyRes = await api.get(`${A.base}/b/x`, { signal: kySignal as unknown as AbortSignal });
    const kyText = kyRes.text().catch((e: unknown) => e);
    const kyReason = new Error("ky: stop reading");
    kySignal.abort(kyReason);
    expect(await settledSoon(kyText)).toBe(kyReason);

    const proxy = chainProxy({ retry: false });
    const proxySignal = abortable();
    const res = await proxy.fetch(requestWith(proxySignal, "https://worker.example/v1/x"), {}, ctx);
    expect(res.status).toBe(200);
    const text = res.text().catch((e: unknown) => e);
    const reason = new Error("proxy: client gone");
    proxySignal.abort(reason);
    expect(await settledSoon(text)).toBe(reason);
  });

  it("held: a signal that throws when listened to: ky per call and extend, Request input down a chain; nothing sent", async () => {
    const thrown = new Error("listening refused");
    const clock = new TestClock(0);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "t",
          endpoints: [
            { name: "a", url: `${A.base}/t` },
            { name: "b", url: `${B.base}/t` },
          ],
        },
      ]),
    });
    const recorder = recordEvents(layer);
    const api = createClient({ resilience: layer });
    const outcomes: unknown[] = [];
    try {
      outcomes.push(await api.get(`${A.base}/t/x`, { signal: deaf(thrown) }).text());
    } catch (error) {
      outcomes.push(error);
    }
    try {
      outcomes.push(api.extend({ signal: deaf(thrown) }));
    } catch (error) {
      outcomes.push(error);
    }
    outcomes.push(await layer.fetch(new Request(`${A.base}/t/x`), { signal: deaf(thrown) }).catch((e: unknown) => e));
    expect(outcomes).toEqual([thrown, thrown, thrown]);
    expect([A.hits.length, B.hits.length]).toEqual([0, 0]);
    expect(recorder.of("breaker")).toEqual([]);
    expect(Object.values(layer.health().breakers).map((b) => b.state)).not.toContain("open");
    // Through the proxy, nothing is sent either (its answer is docs-silent: a 502).
    const proxy = chainProxy({ retry: false });
    const res = await proxy.fetch(requestWith(deaf(thrown), "https://worker.example/v1/x"), {}, ctx);
    await res.text();
    expect([A.hits.length, B.hits.length]).toEqual([0, 0]);
  });
});
