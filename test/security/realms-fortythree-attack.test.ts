/**
 * Outside-in attack on values of another realm (a same-origin `about:blank` iframe's `Headers`, `AbortController` /
 * `AbortSignal`, `URL`, `Request`, `Response`, `Blob`, `FormData`, `URLSearchParams`, `ReadableStream`, `TextEncoder`
 * bytes, `Error` / `TypeError`, and a second copy of the library loaded in that iframe) given to every public entry
 * that takes one, in a real Chromium on the browser build, each compared with what native `fetch` does with it.
 * Docs:
 * - docs/retry.md "Bodies": "Strings, bytes, `Blob`, `FormData` and `URLSearchParams` bodies (of any realm: a
 *   same-origin iframe's are known by their built-in kind, as fetch knows them) are taken as they are when the call
 * is
 *   made, as fetch takes them, and re-sent so on each retry"; "The input may be a string, a `URL`, a `Request` (one
 * of
 *   another realm, a same-origin iframe's, is copied into one of this realm, as fetch reads it), or anything fetch
 *   turns into its URL text: … a URL of another realm"; "a `Request` input's body is read into bytes once and
 *   replayed"; "a header value fetch cannot send, one with a control character, is a `TypeError`".
 * - docs/retry.md: "A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with
 *   `signal.reason` … Each class has a cross-realm guard (`isRetryExhaustedError(e)` …) that works across bundles and
 *   iframes"; "Retried by default: network errors …"; "`resilience.execute(fn, { retry, signal })` runs any async
 *   function"; "`retry(fn, options)` … is the same loop on its own"; "Both retry every thrown error except an abort".
 * - docs/breakers.md: "`resilience.breaker(name, options?)` gives a named breaker for any async work
 *   (`execute(fn, signal?)` …) … `execute` refuses a `fn` that is no function or a `signal` that is no `AbortSignal`
 *   at once, and with a signal aborted already it rejects with its reason without running `fn`".
 * - docs/options.md `fetch`: "an answer that is no `Response` (or a `Response.error()`) is a network error (one of
 *   another realm or copy of fetch is known by its shape …)".
 * - docs/fallback.md: "Credentials never cross origins. To an origin other than the one the caller addressed, only an
 *   allowlist of the caller's headers goes: … `content-type`, `idempotency-key` … `Authorization` … Anthropic's
 *   `x-api-key` … stay home"; docs/degradation.md: "A call that goes down a fallback chain is rewritten once …",
 *   "`{ header: "x-model" }`", "a string, bytes or a Blob of the same type".
 * - docs/browsers-and-cors.md: "When such a call rejects with `RetryExhaustedError` in a page and its URL is of
 *   another origin, the error's message ends with a hint that CORS is the likely cause".
 * - SECURITY.md: URLs lose their query "before they reach any of them (… an error of another realm and a thrown
 *   string among them …)".
 * How: `createResilience`, `getResilienceInfo`, `health`, `execute`, `breaker`, the `is…Error` guards (root),
 * `fallback` (./fallback), `degradation` (./degradation) of the BUILT browser bundle in Debian's Chromium
 * (test/helpers/library-page.ts, `npm run build` first), `retry` and `FallbackChain` of `dist/browser/policies`
 * imported into the page; the page's own server and a second node:http server on another 127.0.0.1 port (another
 * origin, CORS open unless `?nocors`) recording method, path, `authorization`, `x-api-key`, `idempotency-key`,
 * `content-type` and body; custom transports returning the iframe's `Response` or throwing its errors, and the
 * iframe's own `fetch` as a transport; a second copy of the root loaded as a module inside the iframe.
 * Paths: plain call (same origin, other origin), `Request` input (string body, stream body, own signal), URL object
 * input, chain across two origins (and a hedge), degradation rewrite (JSON body as Blob, bytes, `Request`; a header
 * rule), custom transport, a layer over a layer of the iframe's copy, `execute` / named breaker / `retry(fn)` /
 * `FallbackChain`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: signals read by their shape (src/core/kind-of.ts isAbortSignal), the hint's errors
 * by their tag, execute's error cut whole):
 * 1. docs/breakers.md "`execute` refuses … a `signal` that is no `AbortSignal`" and docs/retry.md "`execute(fn, {
 *    retry, signal })`", "`retry(fn, options)` … the same loop", "A caller's abort … rejects with `signal.reason`".
 *    Observed: an iframe's `AbortSignal`, which native `fetch`, `AbortSignal.any`, `resilience.fetch`'s `init.signal`
 *    and `Bulkhead#acquire` all take as the AbortSignal it is, is refused by the other four entries that take a
 *    signal: `execute` rejects with `ConfigError: execute.signal: expected an AbortSignal, received an object`,
 *    `breaker(name).execute(fn, signal)` with `TypeError: … signal must be an AbortSignal, got object`, `retry(fn, {
 *    signal })` with `ConfigError: retry.signal: …`, `FallbackChain#execute(input, { signal })` with `TypeError: …
 *    expected an AbortSignal, got object`; the work never runs and the abort can never be used. Cause: `instanceof
 *    AbortSignal` of this realm in src/core/options/option-rules.ts (`signal` rule, `execute`), src/policies/
 *    circuit-breaker.ts `execute`, src/policies/retry.ts `checkOptions`, src/policies/fallback-chain.ts `execute`,
 *    where src/http/resilient-fetch.ts `startCall` reads a signal by its shape.
 * 2. docs/browsers-and-cors.md "When such a call rejects with `RetryExhaustedError` in a page and its URL is of
 *    another origin, the error's message ends with a hint that CORS is the likely cause". Observed: a layer whose
 *    `fetch` option is the iframe's own `fetch` (the usual way a page gets an unpatched fetch), calling an API that
 *    sends no `Access-Control-Allow-Origin`: Chromium refuses each attempt with the iframe's `TypeError: Failed to
 *    fetch`, the call is retried as a network error (3 GETs reach the API), and rejects with `RetryExhaustedError:
 *    gave up after 3 attempts to 127.0.0.1:…: TypeError: Failed to fetch`, no hint, where the page's own fetch gives
 *    "… Failed to fetch (probably refused by the browser's CORS rules: …)". Cause: src/http/cors-hint.ts
 *    `isBrowserNetworkError` walks the chain only while `current instanceof Error` of this realm (and the message
 *    quotes `TypeError: ` because src/core/errors.ts reads `error.message` only for `instanceof Error`).
 * 3. SECURITY.md "No secret in events, errors …: URLs lose their … query string … before they reach any of them (an
 *    error's causes included, … an error of another realm and a thrown string among them …, and `execute`'s
 *    `RetryExhaustedError` when its work's error names a URL)". Observed (found on the iframe-error path, but of
 * every
 *    realm): in Chromium, the `RetryExhaustedError` `execute` rejects with has its `message` and `cause` cut, but its
 *    `stack` still begins `RetryExhaustedError: gave up after 3 attempts: bad https://x.example/v1?key=SECRET1`, for
 *    a work error of this realm, of the iframe's, a thrown string, and under a named breaker; an error reporter that
 *    reads `stack` (most do) gets the key. Cause: src/policies/retry.ts builds the error from the uncut cause
 *    (`new RetryExhaustedError(attempts, outcome.error)`), and src/http/execute.ts `redactExhausted` then cuts
 *    `message` and `cause` but not `stack`; Chromium's V8 fixes the stack's first line when the error is made (Node
 *    formats it when first read, after the cut, so the Node suites do not see it). `resilience.fetch`'s own
 *    `RetryExhaustedError` is built from a cause cut first, and its stack is clean.
 *
 * Docs-silent (not pinned):
 * - `getResilienceInfo` of the page's copy gives `undefined` for a `Response` the iframe's copy of the library made
 *   (its info sits under that copy's own symbol); its JSDoc says "`undefined` for a response it did not produce".
 * - An error of another realm is quoted in a `RetryExhaustedError`'s message with its name (`… : TypeError: Failed to
 *   fetch`, `…: Error: bad …`), one of this realm by its message alone (src/core/errors.ts reads `message` only for
 *   `instanceof Error`).
 * - A `Headers` of either realm holding a control character (`\x01`) is refused with the layer's `TypeError`, as
 *   docs/fallback.md says; Chromium's own fetch sends it (the node:http server answers 400).
 *
 * Held (plain `it`):
 * - An iframe's `Headers` as `init.headers`: `authorization`, `idempotency-key` and `content-type` reach the server
 * on
 *   the first attempt and the retry after a 503, as with native fetch; its `Idempotency-Key` is seen (a keyed POST
 *   whose attempts fail as network errors is sent 3 times, a keyless one once), and `idempotencyKey: true` keeps the
 *   caller's key rather than adding one.
 * - An iframe's `AbortSignal` as `init.signal`: aborted mid-call it rejects with the caller's reason (plain call,
 *   chain, hedge, a `timeout.total` layer), aborted before it rejects at once with nothing sent, an iframe
 * `Request`'s
 *   own signal stops the call; no breaker counts a failure. `timeout.total` still fires with such a signal.
 * - An iframe's `URL` as input, and an iframe's `Request` (string body retried on 503 with its `authorization`; a
 *   stream body read into bytes and sent again to a chain's next endpoint).
 * - A chain across two origins: iframe `Headers` with `authorization` and `x-api-key` stay home, `idempotency-key`
 * and
 *   `content-type` go; iframe `Blob`, `FormData`, `URLSearchParams` and an iframe `Request` reach the second endpoint
 *   whole.
 * - Degradation at `medium`: JSON bodies as an iframe `Blob`, iframe bytes and an iframe `Request` have `steps`
 *   capped to 30, the Blob's `content-type` kept; an iframe `Headers`' `x-model: premium` becomes `standard`.
 * - A transport returning the iframe's `Response`: a 503 is retried, the 200 carries `getResilienceInfo`; the
 * iframe's
 *   `Response.error()` is a network error.
 * - A transport throwing the iframe's `TypeError` is retried as a network error (3 attempts; a keyless POST once);
 * its
 *   message's URL query (`?api_key=`) is cut from the error, its cause and stack; `execute`'s work throwing an iframe
 *   `Error` is retried and ends in `RetryExhaustedError` without the query.
 * - Errors made by the iframe's copy of the library (`CircuitOpenError`, `RetryExhaustedError`, `TimeoutError`,
 *   `ConfigError`) satisfy the page copy's `is…Error` guards; a layer over the iframe copy's layer passes its open
 *   breaker on as that `CircuitOpenError`, not retried.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";

/** One request as a server received it. */
interface Seen {
  api: "page" | "api";
  method: string;
  path: string;
  auth?: string | undefined;
  xkey?: string | undefined;
  key?: string | undefined;
  type?: string | undefined;
  model?: string | undefined;
  body: string;
}
const seen: Seen[] = [];
const counters = new Map<string, number>();

/**
 * A recording server, CORS open (the preflight allows what it is asked). Query: `seq` (the page's server) and `aseq`
 * (the other) the statuses of successive answers on that path (the last repeats); `hang` never answers; `nocors`
 * answers without CORS headers.
 */
function recorder(name: "page" | "api") {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/favicon.ico") return void res.writeHead(404).end();
    const q = url.searchParams;
    const h = req.headers;
    const cors = {
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
      "access-control-allow-headers": String(h["access-control-request-headers"] ?? ""),
      "access-control-max-age": "600",
    };
    if (req.method === "OPTIONS") return void res.writeHead(204, cors).end();
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {}
    seen.push({
      api: name,
      method: req.method ?? "",
      path: url.pathname,
      auth: h.authorization,
      xkey: h["x-api-key"] as string | undefined,
      key: h["idempotency-key"] as string | undefined,
      type: h["content-type"],
      model: h["x-model"] as string | undefined,
      body: Buffer.concat(chunks).toString(),
    });
    if (q.has("hang")) return;
    if (q.has("nocors")) return void res.writeHead(200, { "content-type": "text/plain" }).end("no cors");
    const n = (counters.get(url.pathname) ?? 0) + 1;
    counters.set(url.pathname, n);
    // A chain sends the caller's query to every endpoint: `seq` is the page server's, `aseq` the other's.
    const seq = (q.get(name === "page" ? "seq" : "aseq") ?? "200").split(",");
    const status = Number(seq[Math.min(n, seq.length) - 1]);
    res.writeHead(status, { ...cors, "content-type": "text/plain" }).end(`${name} ${status}`);
  };
}

let opened: LibraryPage;
let page: Page;
let other: Server;
let PAGE = "";
let API = "";

/** The page's globals: the library, the iframe's realm, and the policies entry. */
type Win = { lib: PageLib; W: typeof globalThis; policies: typeof import("../../src/policies/index.ts") };

beforeAll(async () => {
  opened = await openLibraryPage(recorder("page"));
  page = opened.page;
  PAGE = new URL(page.url()).origin;
  other = createServer(recorder("api"));
  await new Promise<void>((done) => other.listen(0, "127.0.0.1", done));
  API = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  await page.evaluate(async (origin) => {
    const frame = document.createElement("iframe");
    document.body.append(frame);
    const win = window as unknown as Win;
    win.W = frame.contentWindow as unknown as typeof globalThis;
    // Imported by the page itself (a dynamic import written here would be rewritten by the test runner).
    const load = new Function("u", "return import(u)") as (u: string) => Promise<Win["policies"]>;
    win.policies = await load(`${origin}/dist/browser/policies/index.js`);
  }, PAGE);
}, 60_000);

afterAll(async () => {
  await opened?.close();
  other?.closeAllConnections();
  await new Promise((done) => other?.close(done));
});

beforeEach(() => {
  seen.length = 0;
  counters.clear();
});

const requests = (path: string) => seen.filter((s) => s.path === path);

describe("an iframe's Headers as init.headers", () => {
  it("carries authorization, idempotency-key and content-type on every attempt, as native fetch does", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const headers = () =>
        new W.Headers({ authorization: "Bearer s", "idempotency-key": "k1", "content-type": "application/json" });
      const r = lib.createResilience({ retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } });
      const layer = await r.fetch("/h-layer?seq=503,200", { method: "POST", headers: headers(), body: "{}" });
      const native = await fetch("/h-native", { method: "POST", headers: headers(), body: "{}" });
      return { layer: layer.status, native: native.status };
    });
    expect(out).toEqual({ layer: 200, native: 200 });
    const sent = { auth: "Bearer s", key: "k1", type: "application/json", body: "{}" };
    expect(requests("/h-layer")).toEqual([expect.objectContaining(sent), expect.objectContaining(sent)]);
    expect(requests("/h-native")).toEqual([expect.objectContaining(sent)]);
  });

  it("has its Idempotency-Key seen: a keyed POST is retried on network errors, a keyless one is not", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const keys: Array<string | null> = [];
      const r = lib.createResilience({
        retry: { initialDelay: 1, maxDelay: 2, jitter: "none" },
        fetch: async (_input, init) => {
          keys.push(new Headers(init?.headers).get("idempotency-key"));
          throw new TypeError("Failed to fetch");
        },
      });
      const post = (headers: HeadersInit) =>
        r.fetch("/k", { method: "POST", headers, body: "job" }).then(
          () => "resolved",
          (e: Error) => e.name,
        );
      const keyed = await post(new W.Headers({ "idempotency-key": "k-frame" }));
      const keyedKeys = keys.splice(0);
      const keyless = await post(new W.Headers({ "x-other": "1" }));
      const keylessKeys = keys.splice(0);
      const adding = lib.createResilience({ retry: { idempotencyKey: true } });
      await adding.fetch("/k-added", {
        method: "POST",
        headers: new W.Headers({ "idempotency-key": "mine" }),
        body: "j",
      });
      return { keyed, keyedKeys, keyless, keylessKeys };
    });
    expect(out).toEqual({
      keyed: "RetryExhaustedError",
      keyedKeys: ["k-frame", "k-frame", "k-frame"],
      keyless: "RetryExhaustedError",
      keylessKeys: [null],
    });
    expect(requests("/k-added").map((s) => s.key)).toEqual(["mine"]);
  });
});

describe("an iframe's AbortSignal as init.signal, URL and Request as input", () => {
  it("aborts a plain call, a chain, a hedge and a timed layer with the caller's reason, no failure counted", async () => {
    const out = await page.evaluate(
      async ([api, origin]) => {
        const { lib, W } = window as unknown as Win;
        const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
        const r = lib.createResilience({
          retry: fast,
          fallback: lib.fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: `${origin}/ca` },
                { name: "b", url: `${api}/cb` },
              ],
            },
            {
              name: "h",
              hedge: { delay: 5 },
              endpoints: [
                { name: "a", url: `${origin}/ha` },
                { name: "b", url: `${api}/hb` },
              ],
            },
          ]),
        });
        const timed = lib.createResilience({ retry: fast, timeout: { total: 5_000 } });
        const reasonOf = async (run: (signal: AbortSignal) => Promise<Response>) => {
          const controller = new W.AbortController();
          const reason = new W.Error("stop");
          setTimeout(() => controller.abort(reason), 30);
          return run(controller.signal).then(
            (res) => `resolved ${res.status}`,
            (e: unknown) => (e === reason ? "the caller's reason" : String(e)),
          );
        };
        const pre = new W.AbortController();
        const before = new W.Error("before");
        pre.abort(before);
        return {
          plain: await reasonOf((signal) => r.fetch("/s-plain?hang", { signal })),
          chain: await reasonOf((signal) => r.fetch(`${origin}/ca/x?hang`, { signal })),
          hedge: await reasonOf((signal) => r.fetch(`${origin}/ha/x?hang`, { signal })),
          timed: await reasonOf((signal) => timed.fetch("/s-timed?hang", { signal })),
          request: await reasonOf((signal) => r.fetch(new W.Request(`${origin}/s-request?hang`, { signal }))),
          native: await reasonOf((signal) => fetch("/s-native?hang", { signal })),
          before: await r.fetch("/s-before", { signal: pre.signal }).then(
            () => "resolved",
            (e: unknown) => (e === before ? "the caller's reason" : String(e)),
          ),
          failures: [r, timed].flatMap((l) => Object.values(l.health().breakers).map((b) => b.failureCount)),
          deadline: await lib
            .createResilience({ retry: fast, timeout: { total: 40 } })
            .fetch("/s-deadline?hang", { signal: new W.AbortController().signal })
            .then(
              () => "resolved",
              (e: Error) => `${e.name} ${lib.isTimeoutError(e)}`,
            ),
        };
      },
      [API, PAGE],
    );
    expect(out).toEqual({
      plain: "the caller's reason",
      chain: "the caller's reason",
      hedge: "the caller's reason",
      timed: "the caller's reason",
      request: "the caller's reason",
      native: "the caller's reason",
      before: "the caller's reason",
      failures: out.failures.map(() => 0),
      deadline: "TimeoutError true",
    });
    expect(requests("/s-before")).toEqual([]);
    expect(requests("/s-plain").length).toBe(1);
    expect(requests("/s-request").length).toBe(1);
  });

  it("takes an iframe's URL and Request (string body retried, stream body replayed to a chain's next endpoint)", async () => {
    const out = await page.evaluate(
      async ([api, origin]) => {
        const { lib, W } = window as unknown as Win;
        const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
        const r = lib.createResilience({
          retry: { ...fast, maxAttempts: 2 },
          fallback: lib.fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: `${origin}/ra` },
                { name: "b", url: `${api}/rb` },
              ],
            },
          ]),
        });
        const stream = new W.ReadableStream({
          start(c) {
            c.enqueue(new W.TextEncoder().encode("streamed"));
            c.close();
          },
        });
        const url = await r.fetch(new W.URL("/r-url?x=1", origin) as unknown as URL);
        const request = await r.fetch(
          new W.Request(`${origin}/r-request?seq=503,200`, {
            method: "PUT",
            body: "abc",
            headers: { authorization: "Bearer r" },
          }),
        );
        const streamed = await r.fetch(
          new W.Request(`${origin}/ra/s?seq=503`, {
            method: "POST",
            headers: { "idempotency-key": "k-s" },
            body: stream,
            duplex: "half",
          } as RequestInit),
        );
        return {
          url: url.status,
          request: request.status,
          streamed: [streamed.status, lib.getResilienceInfo(streamed)?.endpoint],
        };
      },
      [API, PAGE],
    );
    expect(out).toEqual({ url: 200, request: 200, streamed: [200, "b"] });
    expect(requests("/r-url").length).toBe(1);
    expect(requests("/r-request").map((s) => [s.method, s.auth, s.body])).toEqual([
      ["PUT", "Bearer r", "abc"],
      ["PUT", "Bearer r", "abc"],
    ]);
    expect(requests("/ra/s").map((s) => s.body)).toEqual(["streamed", "streamed"]);
    expect(requests("/rb/s").map((s) => [s.api, s.body, s.key])).toEqual([["api", "streamed", "k-s"]]);
  });
});

describe("bodies and headers of another realm on a chain and a degradation rewrite", () => {
  it("a chain across origins keeps credentials home and sends the iframe's Blob, FormData, URLSearchParams whole", async () => {
    await page.evaluate(
      async ([api, origin]) => {
        const { lib, W } = window as unknown as Win;
        const r = lib.createResilience({
          retry: { initialDelay: 1, maxDelay: 2, jitter: "none", maxAttempts: 1 },
          fallback: lib.fallback([
            {
              name: "c",
              endpoints: [
                { name: "a", url: `${origin}/ca` },
                { name: "b", url: `${api}/cb` },
              ],
            },
          ]),
        });
        const form = new W.FormData();
        form.append("a", "1");
        const secret = () =>
          new W.Headers({ authorization: "Bearer s", "x-api-key": "sk-secret-1234", "idempotency-key": "k2" });
        await r.fetch(`${origin}/ca/blob?seq=503`, {
          method: "POST",
          headers: secret(),
          body: new W.Blob(['{"prompt":"cat"}'], { type: "application/json" }),
        });
        await r.fetch(`${origin}/ca/form?seq=503`, { method: "POST", headers: secret(), body: form });
        await r.fetch(`${origin}/ca/params?seq=503`, {
          method: "POST",
          headers: secret(),
          body: new W.URLSearchParams({ q: "1" }),
        });
        await r.fetch(new W.Request(`${origin}/ca/req?seq=503`, { method: "POST", headers: secret(), body: "req" }));
      },
      [API, PAGE],
    );
    for (const name of ["blob", "form", "params", "req"]) {
      const [first, second] = [requests(`/ca/${name}`), requests(`/cb/${name}`)].map((list) => list[0]);
      expect(first).toMatchObject({ api: "page", auth: "Bearer s", xkey: "sk-secret-1234", key: "k2" });
      expect(second).toMatchObject({ api: "api", auth: undefined, xkey: undefined, key: "k2" });
      expect(second?.type?.split(";")[0]).toBe(first?.type?.split(";")[0]);
      expect(second?.body.replace(/-+WebKitFormBoundary\w+/g, "B")).toBe(
        first?.body.replace(/-+WebKitFormBoundary\w+/g, "B"),
      );
    }
    expect(requests("/ca/blob")[0]?.body).toBe('{"prompt":"cat"}');
    expect(requests("/ca/blob")[0]?.type).toBe("application/json");
    expect(requests("/cb/form")[0]?.body).toContain('name="a"\r\n\r\n1');
    expect(requests("/cb/params")[0]?.body).toBe("q=1");
  });

  it("a degradation rewrite caps steps in an iframe's Blob, bytes and Request, and moves an iframe header's model", async () => {
    await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const degraded = lib.createResilience({
        retry: { initialDelay: 1, maxDelay: 2, jitter: "none" },
        degradation: lib.degradation({
          rules: [
            { params: { steps: "steps" } },
            { match: `${location.origin}/deg-header`, params: { model: { header: "x-model" } } },
          ],
        }),
      });
      degraded.degradation?.degrade("busy");
      degraded.degradation?.degrade("busy");
      const json = '{"steps":50,"width":1024}';
      await degraded.fetch("/deg-blob", {
        method: "POST",
        headers: new W.Headers({ authorization: "Bearer d" }),
        body: new W.Blob([json], { type: "application/json" }),
      });
      await degraded.fetch("/deg-bytes", {
        method: "POST",
        headers: new W.Headers({ "content-type": "application/json" }),
        body: new W.TextEncoder().encode(json),
      });
      await degraded.fetch(
        new W.Request(`${location.origin}/deg-req`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: json,
        }),
      );
      await degraded.fetch("/deg-header", { headers: new W.Headers({ "x-model": "premium" }) });
    });
    const capped = '{"steps":30,"width":1024}';
    expect(requests("/deg-blob")).toEqual([
      expect.objectContaining({ body: capped, type: "application/json", auth: "Bearer d" }),
    ]);
    expect(requests("/deg-bytes")).toEqual([expect.objectContaining({ body: capped })]);
    expect(requests("/deg-req")).toEqual([expect.objectContaining({ body: capped })]);
    expect(requests("/deg-header").map((s) => s.model)).toEqual(["standard"]);
  });
});

describe("transports and errors of another realm", () => {
  it("a transport's iframe Response is retried on 503 and carries its info; its Response.error() is a network error", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
      let n = 0;
      const r = lib.createResilience({
        retry: fast,
        fetch: async () => {
          n++;
          return n === 1
            ? new W.Response("busy", { status: 503, headers: { "retry-after": "0" } })
            : new W.Response("fine", { status: 200 });
        },
      });
      const res = await r.fetch("/t-response");
      let m = 0;
      const broken = lib.createResilience({
        retry: fast,
        fetch: async () => {
          m++;
          return W.Response.error();
        },
      });
      const error = await broken.fetch("/t-error").catch((e: Error) => e);
      return {
        status: res.status,
        text: await res.text(),
        attempts: lib.getResilienceInfo(res)?.attempts,
        n,
        error: [(error as Error).name, String((error as Error).cause)],
        m,
      };
    });
    expect(out).toEqual({
      status: 200,
      text: "fine",
      attempts: 2,
      n: 2,
      error: [
        "RetryExhaustedError",
        "TypeError: network error: the transport answered with no Response fetch would give",
      ],
      m: 3,
    });
  });

  it("an iframe TypeError from the transport is a network error, retried, and its URL's query is cut", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
      let n = 0;
      const r = lib.createResilience({
        retry: fast,
        fetch: async () => {
          n++;
          throw new W.TypeError("connect failed to https://api.example/v1?api_key=SECRET123");
        },
      });
      const get = await r.fetch("/x?token=SECRET456").catch((e: Error) => e);
      const gets = n;
      n = 0;
      const post = await r.fetch("/x", { method: "POST", body: "job" }).catch((e: Error) => e);
      const work = await r
        .execute(async () => {
          throw new W.Error("bad https://x.example/?key=SECRET789");
        })
        .catch((e: Error) => e);
      const text = (e: unknown) => {
        const x = e as Error & { cause?: Error };
        return [x.message, x.stack, String(x.cause), x.cause?.message, x.cause?.stack].join("\n");
      };
      const workCause = (work as Error & { cause?: Error }).cause;
      return {
        get: [(get as Error).name, gets, lib.isRetryExhaustedError(get)],
        post: [(post as Error).name, n],
        work: [(work as Error).name, (work as { attempts?: number }).attempts],
        // `execute`'s own stack is defect 3.
        text: [text(get), text(post), (work as Error).message, String(workCause), workCause?.stack].join("\n"),
      };
    });
    expect(out.get).toEqual(["RetryExhaustedError", 3, true]);
    expect(out.post).toEqual(["RetryExhaustedError", 1]);
    expect(out.work).toEqual(["RetryExhaustedError", 3]);
    expect(out.text).toContain("https://api.example/v1");
    expect(out.text).toContain("https://x.example/");
    expect(out.text).not.toMatch(/SECRET|api_key|token=|key=/);
  });

  it("errors of the iframe's copy of the library satisfy the page's guards; a layer over it passes its open breaker on", async () => {
    const out = await page.evaluate(async (origin) => {
      const { lib, W } = window as unknown as Win;
      const frameWin = W as typeof globalThis & { lib?: PageLib };
      if (!frameWin.lib)
        await new Promise<void>((done) => {
          const script = W.document.createElement("script");
          script.type = "module";
          script.textContent = `import * as root from "${origin}/dist/browser/index.js"; window.lib = root; window.dispatchEvent(new Event("ready"));`;
          W.addEventListener("ready", () => done(), { once: true });
          W.document.head.append(script);
        });
      const F = frameWin.lib as PageLib;
      const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
      const opened = F.createResilience({ retry: false, breaker: { failureThreshold: 1 } });
      await opened.fetch("/g-open?seq=503");
      const open = await opened.fetch("/g-open").catch((e: unknown) => e);
      const exhausted = await F.createResilience({
        retry: { ...fast, maxAttempts: 2 },
        fetch: async () => {
          throw new TypeError("Failed to fetch");
        },
      })
        .fetch("/g-x")
        .catch((e: unknown) => e);
      const timedOut = await F.createResilience({ retry: fast, timeout: { total: 10 } })
        .fetch("/g-hang?hang")
        .catch((e: unknown) => e);
      let config: unknown;
      try {
        F.createResilience({ retry: { maxAttempts: 0 } });
      } catch (e) {
        config = e;
      }
      const outer = lib.createResilience({
        retry: { ...fast, maxAttempts: 3 },
        fetch: F.createResilience({ retry: false, breaker: { failureThreshold: 1 } }).fetch,
      });
      const first = await outer.fetch("/g-outer?seq=503");
      const second = await outer.fetch("/g-outer").catch((e: unknown) => e);
      return {
        copy: F.createResilience !== lib.createResilience && !(open instanceof lib.ResilienceError),
        open: [lib.isCircuitOpenError(open), lib.isResilienceError(open)],
        exhausted: [lib.isRetryExhaustedError(exhausted), lib.isResilienceError(exhausted)],
        timedOut: [lib.isTimeoutError(timedOut), lib.isResilienceError(timedOut)],
        config: [lib.isConfigError(config), lib.isResilienceError(config)],
        outer: [first.status, lib.isCircuitOpenError(second)],
      };
    }, PAGE);
    expect(out).toEqual({
      copy: true,
      open: [true, true],
      exhausted: [true, true],
      timedOut: [true, true],
      config: [true, true],
      outer: [503, true],
    });
    expect(requests("/g-open").length).toBe(1);
    expect(requests("/g-outer").length).toBe(1);
  });
});

describe("defects", () => {
  it("1. execute, breaker(name).execute, retry(fn) and FallbackChain take an iframe's AbortSignal", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W, policies } = window as unknown as Win;
      const r = lib.createResilience({ retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } });
      const chain = new policies.FallbackChain<number, string>("c").add(async () => "ok", { name: "a" });
      const outcome = (p: Promise<unknown>) =>
        p.then(
          (v) => String(v),
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const signal = () => new W.AbortController().signal;
      // An abort mid-work settles `execute` with the caller's reason.
      const controller = new W.AbortController();
      const reason = new W.Error("stop");
      setTimeout(() => controller.abort(reason), 20);
      const aborted = await r
        .execute(() => new Promise<string>(() => {}), { signal: controller.signal })
        .then(
          () => "resolved",
          (e: unknown) => (e === reason ? "the caller's reason" : `${(e as Error).name}: ${(e as Error).message}`),
        );
      return {
        // What the platform and the layer's fetch do with the same signal.
        platform: [AbortSignal.any([signal()]).aborted, await outcome(r.fetch("/sig-fetch", { signal: signal() }))],
        bulkhead: await outcome(
          Promise.resolve(new policies.Bulkhead("k", 1, 1).acquire(signal())).then(() => "acquired"),
        ),
        execute: await outcome(r.execute(async () => "ok", { signal: signal() })),
        breaker: await outcome(r.breaker("named").execute(async () => "ok", signal())),
        retry: await outcome(policies.retry(async () => "ok", { signal: signal() })),
        chain: await outcome(chain.execute(1, { signal: signal() })),
        aborted,
      };
    });
    // Held: Chromium, the layer's fetch and a bulkhead take it.
    expect(out.platform).toEqual([false, "[object Response]"]);
    expect(out.bulkhead).toBe("acquired");
    // Observed: "ConfigError: execute.signal: expected an AbortSignal, received an object", "TypeError:
    // breaker("named").execute(fn, signal): signal must be an AbortSignal, got object", "ConfigError: retry.signal:
    // …", "TypeError: fallbackChain("c").execute(input, { signal }): expected an AbortSignal, got object".
    expect(out).toMatchObject({
      execute: "ok",
      breaker: "ok",
      retry: "ok",
      chain: "ok",
      aborted: "the caller's reason",
    });
  });

  it("2. the CORS hint is given when the transport is the iframe's fetch refused by CORS", async () => {
    const out = await page.evaluate(async (api) => {
      const { lib, W } = window as unknown as Win;
      const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
      const message = (r: ReturnType<typeof lib.createResilience>, path: string) =>
        r.fetch(`${api}${path}?nocors`).then(
          () => "resolved",
          (e: Error) => `${e.name}: ${e.message}`,
        );
      return {
        own: await message(lib.createResilience({ retry: fast }), "/cors-own"),
        frame: await message(
          lib.createResilience({ retry: fast, fetch: (i, init) => W.fetch(i, init) }),
          "/cors-frame",
        ),
      };
    }, API);
    // Held: both are network errors, retried (3 GETs each reach the API, whose answer Chromium then hides).
    expect(requests("/cors-own").length).toBe(3);
    expect(requests("/cors-frame").length).toBe(3);
    expect(out.own).toMatch(/^RetryExhaustedError: gave up after 3 attempts .*Failed to fetch \(probably refused by/);
    // Observed: "RetryExhaustedError: gave up after 3 attempts to 127.0.0.1:…: TypeError: Failed to fetch", no hint.
    expect(out.frame).toContain(`(probably refused by the browser's CORS rules: ${API} must allow the origin ${PAGE}`);
  });

  it("3. execute's RetryExhaustedError keeps no URL query in its stack (Chromium), whatever realm the work's error is of", async () => {
    const out = await page.evaluate(async () => {
      const { lib, W } = window as unknown as Win;
      const r = lib.createResilience({ retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } });
      const exhausted = (thrown: () => unknown) =>
        r
          .execute(async () => {
            throw thrown();
          })
          .catch((e: Error) => ({ name: e.name, message: e.message, stack: String(e.stack).split("\n")[0] }));
      return {
        own: await exhausted(() => new Error("bad https://x.example/v1?key=SECRET1")),
        frame: await exhausted(() => new W.Error("bad https://x.example/v1?key=SECRET2")),
        string: await exhausted(() => "bad https://x.example/v1?key=SECRET3"),
        named: await r
          .execute(
            async () => {
              throw new Error("bad https://x.example/v1?key=SECRET4");
            },
            { breaker: "upscaler" },
          )
          .catch((e: Error) => ({ name: e.name, message: e.message, stack: String(e.stack).split("\n")[0] })),
      };
    });
    for (const each of Object.values(out)) {
      // Held: the name and the message are cut.
      expect(each.name).toBe("RetryExhaustedError");
      expect(each.message).toMatch(/^gave up after 3 attempts: (Error: )?bad https:\/\/x\.example\/v1$/);
      // Observed: "RetryExhaustedError: gave up after 3 attempts: bad https://x.example/v1?key=SECRET1" (the message
      // as it was built, before it was cut).
      expect(each.stack).not.toContain("SECRET");
    }
  });
});
