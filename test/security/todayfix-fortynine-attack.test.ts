/**
 * Outside-in attack on today's fixes (CHANGELOG "### Fixed", top entries; commits f6a1363 and 999e2b0), varied along
 * the paths each fix did not name: the browser build's `mode: "no-cors"` (keyless, no hint) and `mode: "same-origin"`
 * (refused first) in a real Chromium; workerd's `retryable` errors as network errors (Node, a `fetch` of my own);
 * `durableObjectStore`'s wait after an unanswered report; `BreakerStateObject`'s stored thresholds and cut reason.
 *
 * Docs:
 * - docs/browsers-and-cors.md "## `no-cors` and `same-origin` calls": "So the page's build adds no key to such a call
 *   and takes a POST as keyless whatever its headers say: it is not sent again after a 500, a reset or a timeout";
 *   "A failed `no-cors` call gets no CORS hint (there was no CORS check to fail)"; "A call with `mode: "same-origin"`
 *   to another origin is refused by the browser before anything is sent. The page's build refuses it first, with a
 *   `TypeError` that names both origins: the caller's mistake, so it is not retried and no host's breaker hears of
 *   it"; the intro: a relative URL "is read where fetch reads it, against the document's base URL (a `<base href>`
 *   moves it off the page's address, and a sandboxed page, whose origin is `null`, still resolves against its own
 *   address)". SECURITY.md: "a page's build leaves the `init` fields to the browser, which refuses a bad one only
 *   when the call is sent: that refusal is retried and counted as a network error".
 * - docs/retry.md "## Idempotency": a POST without a key ("so is any key on a page's `mode: "no-cors"` call") "is sent
 *   again … only when it surely was not processed … After a 500, a reset connection … it is not sent again"; "Retry
 *   events name a failure … (… Deno's and workerd's messages): `connection refused`, `connection reset`"; "A
 *   caller's abort is never a failure"; docs/breakers.md "Network errors … are failures"; docs/fallback.md "An
 *   endpoint is left for the next one on a network error", "When every endpoint failed, the call resolves with the
 *   last response any endpoint gave …, or rejects with `FallbackExhaustedError` … if an endpoint tried after it may
 *   have processed a request that is not safe to send twice"; CHANGELOG: "an error workerd marks `retryable` is now a
 *   network error (outside pages), named `connection reset` as before".
 * - docs/cloudflare.md: "`durableObjectStore` sends outcomes in batches (every `flushInterval`, at once when
 *   `flushThreshold` failures wait, or on a local trip) … After a report the object did not answer (an error, a
 *   refusal, no answer within `timeout`), the next routine report waits a `flushInterval`: an overloaded object is not
 *   sent one report per call"; "[`BreakerStateObject`] writes its storage on transitions and when the leases it has
 *   out change …, never for batched counts alone. With the state it stores the thresholds the isolates last sent,
 *   once and when they change, so an object evicted and built again still runs its alarm: open goes half-open, and a
 *   dead probe's lease counts as a failure at its expiry (an object stored by an older version, with no thresholds,
 *   applies the `breaker` defaults). A reason longer than isolates read (300 characters), stored by another version,
 *   is cut in the verdict". SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their
 *   userinfo (a password holding spaces too), query string and fragment … before they reach any of them".
 *
 * How: the BUILT browser bundle (`dist/browser`, `npm run build` first; the browser suites are skipped, saying so,
 * when it is missing) in Debian's Chromium through test/helpers/library-page.ts, whose server also serves a ky page
 * (import map), a page with a `<base href>` of another origin, and records requests to the page's own origin; two
 * node:http APIs on other 127.0.0.1 ports recording every request (method, `Idempotency-Key`, body bytes; `reset=n`
 * cuts a request once read, every answer closes its connection so Chromium never resends on a reused socket), the
 * first also serving a sandboxed page (CSP `sandbox allow-scripts`, origin `null`) and the build with
 * `Access-Control-Allow-Origin: *`. In Node: `createResilience`, `fallback`, `createClient`, `durableObjectStore`,
 * `BreakerStateObject`, `TestClock`, two servers from test/helpers/http-upstream.ts, a transport that sends for real
 * then throws `Object.assign(new Error("Network connection lost."), { retryable: true })`, a Durable Object namespace
 * of my own whose stub is a real object or one that answers 500, throws, answers junk or hangs, and a storage of my
 * own (puts and alarms recorded; eviction = a new object over the same storage).
 *
 * Paths: plain call, `Request` input (and `init` overriding its `mode`), ky client (GET, POST, PATCH), fallback chain
 * (endpoints on other origins, the caller's URL relative or the page's own), hedge, degradation rewrite (level header
 * and query rule), `transform` adding a key, a layer installed as the global fetch and one stacked on it, `<base
 * href>`, a sandboxed page, a redirect the browser follows; in Node: plain call, chain, ky client, a store's error, a
 * `respond`, a caller's abort.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since (1: the refusal comes first in the attempt; 2: the layer's own refusal reads as not sent in the page's build; 3: the page's origin is read from its location unless `self.origin` is "null"; 4: changed thresholds are stored while an alarm is due; 5: a stored reason's URLs are cut before the reason is), so plain `it`, so plain `it`):
 * 1. browsers-and-cors.md "The page's build refuses it first, with a `TypeError` that names both origins".
 *    Observed: a same-origin call to an origin whose breaker is open rejects with `CircuitOpenError` ("open until …",
 *    a `retryAt` for a call that can never go); with that host's bulkhead full, `BulkheadRejectedError`. Cause:
 *    src/http/send/send-attempt.ts `sendAttempt` calls `refuseOtherOrigin` inside the attempt, after the bulkhead,
 *    `breaker.tryAcquire()` and the probe lease (so a coordinating store is asked for a lease first, see docs-silent).
 * 2. fallback.md "the call resolves with the last response any endpoint gave …, or rejects with
 *    `FallbackExhaustedError` … if an endpoint tried after it may have processed a request that is not safe to send
 *    twice"; browsers-and-cors.md "refused … before anything is sent". Observed: a keyless same-origin POST whose
 *    first endpoint (the page's origin) declined it with 503 three times and whose second endpoint (another origin)
 *    the layer refused unsent rejects with `FallbackExhaustedError` 'stopped after "b", which may have processed the
 *    request (the answer "a" gave before it is not returned …)'. Cause: src/http/send/failure-reason.ts `reasonOf`
 *    checks `isPlatformRefusal` only outside the browser build, so the layer's own refusal reads "network error",
 *    `notSent: false`, and src/fallback/try-endpoints.ts `served` (`mayMoveOn` → `maySendAgain`) takes b as having
 *    had the request.
 * 3. browsers-and-cors.md "A call with `mode: "same-origin"` to another origin is refused … The page's build refuses
 *    it first … not retried and no host's breaker hears of it". Observed on a page whose script says `var origin =
 *    "<the API's origin>"` (window.origin is [Replaceable]): a same-origin call to the page's own origin is refused
 *    with 'cannot fetch <page> from a page of <api>' (the browser's own fetch sends it, 200), and a same-origin call to
 *    the API goes to the browser, which refuses it: 3 attempts, 3 failures on the API's breaker. Cause:
 *    src/core/page-base.ts `pageOrigin` trusts `self.origin`, replaced by any global `origin` string.
 * 4. cloudflare.md "it stores the thresholds the isolates last sent, once and when they change, so an object evicted
 *    and built again still runs its alarm". Observed: a report whose thresholds differ but that moves nothing (half-
 *    open, a lease out) leaves the old thresholds in storage until the next transition; evicted, the object's alarm
 *    at the dead lease's expiry re-opens the host for the old `timeout` (60 s) where the object not evicted re-opens
 *    for the new one (10 s). Cause: src/cloudflare/breaker-state-object.ts `#apply` puts the policy only inside the
 *    "transition or lease change" branch.
 * 5. SECURITY.md "URLs lose their userinfo … before they reach any of them" (`health()`, events, `debugInfo()`), and
 *    the earlier fix "A breaker that adopts an open … spell from shared state … cuts the secrets of any URL in that
 *    spell's reason". Observed: a stored reason over 300 characters whose URL's userinfo spans the 300th character is
 *    cut to "… https://admin:hunter2-very-se" (no `@` left), which no redaction recognises: the isolate's `breaker`
 *    event, `health()` (`reason`, `lastError`) and `debugInfo()` show the password's first characters (before the
 *    fix the verdict was refused whole). Cause: src/cloudflare/breaker-state-object.ts `#verdict` slices the reason
 *    before any redaction.
 *
 * Held (plain `it`):
 * - no-cors: `init` over a `Request` decides the mode both ways (no-cors over cors: one keyless POST, no hint; cors
 *   over no-cors: keyed, retried under one key); a degradation rewrite (level header, query rule), a hedged chain (no
 *   hedge), a `transform` that sets a key (the chain stops at a), a relative caller URL whose own-origin endpoint
 *   answers 503 (moves on, keyless), a layer installed as the global fetch, one found there, one stacked: each one
 *   keyless send after a reset; no CORS hint for a `Request`, `init` over a `Request`, an inherited `init`, ky; a
 *   no-cors PATCH, refused by Chromium, goes once, counted once (as SECURITY.md says of such refusals).
 * - same-origin: `Request` input (own mode, or `init`'s), ky PATCH, degradation rewrite, the installed global fetch,
 *   a layer that finds it, a stacked layer: the TypeError naming both origins, nothing sent, no breaker counts; a
 *   half-open host stays half-open, its probe slot free, and the error rate stays 0; under `<base href>` of another
 *   origin a relative URL is refused naming it, the page's own absolute URL goes; a sandboxed page names "null" for
 *   its own URL and a relative one; a chain moves a GET past a refused endpoint (one `fallback` event, no count); a
 *   hedge refused at another origin loses to the first endpoint's answer.
 * - workerd `retryable`: a GET retried, `retry` and `breaker` events and `lastError` say "connection reset"; a keyless
 *   POST the server read is sent once and counted once; a keyed POST is retried under one key; the ky client retries;
 *   a chain moves a GET on after its retries and stops a keyless POST at the endpoint that read it. Not retried: a
 *   caller's abort whose reason carries `retryable` (rejects with it, no count), a store's `record` throwing one, a
 *   `respond` throwing one (once, the chain answers the earlier 500), an error whose `retryable` getter throws, a
 *   `retryOn.error` that says no.
 * - durableObjectStore (object answering 500, throwing, answering junk, hanging): 20 calls in 2 s send no report
 *   after the unanswered one, the next goes a `flushInterval` after it (each with its `store` event); a local trip
 *   during the wait goes at once with its hold, calls refused while open send none, a half-open probe still asks
 *   `/probe`.
 * - BreakerStateObject: evicted, its alarm moves open to half-open under the stored thresholds; counts alone and the
 *   same thresholds write nothing, a trip writes state and thresholds once, an alarm the state alone; a stored policy
 *   that is missing, of the wrong kind, with an unknown field, a rate out of range or a string gives the defaults
 *   (re-open 30 s); a stored reason of 450 characters is cut to 300 and adopted (no `store` event); one within 300 has
 *   its URL's userinfo and query cut.
 *
 * Docs-silent (not pinned; recorded in plain `it`s):
 * - A keyless same-origin POST refused at a chain's first endpoint does not move on to the next (the page's own
 *   origin): it rejects with the TypeError, though nothing was sent (defect 2's cause; Node's platform refusal is
 *   "not sent").
 * - A same-origin call that the page's own server redirects to another origin is refused by Chromium after the server
 *   had it: retried 3 times and counted on the page's own host.
 * - The refusal comes after the breaker admits the call: to a half-open host, a coordinating store is asked for a
 *   probe lease (`acquireProbe`) and given it back (`releaseProbe`) for a call that could never go.
 * - A transport's own `AbortError` marked `retryable`, or a thrown `{ retryable: true }`, is now retried and counted.
 * - durableObjectStore: on a call's outcome the wait counts from the unanswered report's send, not from when it was
 *   known unanswered (a hung report's next goes at 5 000 ms, 250 ms before `peek` would ask); batches of
 *   `flushThreshold` failures still go at once during the wait, so `flushThreshold: 1` sends an erring object one
 *   report per failed call (12 before the local trip).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BreakerStateObject, durableObjectStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, createResilience, isRetryExhaustedError, type StoreEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage } from "../helpers/library-page.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILT =
  existsSync(resolve(ROOT, "dist/browser/index.js")) && existsSync(resolve(ROOT, "dist/browser/ky/index.js"));
const SKIP = BUILT ? "" : " (SKIPPED: dist/browser is missing, run `npm run build` first)";

interface Seen {
  api: string;
  method: string;
  path: string;
  origin?: string | undefined;
  acrh?: string | undefined;
  key?: string | undefined;
  bytes: number;
}
const seen: Seen[] = [];
const counters = new Map<string, number>();

/** A recording API: `reset=n` cuts the first n requests of a path once read, `seq`, `delay` (ms), `redirect`, `allow`. */
function recorder(name: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    const q = url.searchParams;
    const h = req.headers;
    let bytes = 0;
    try {
      for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
    } catch {}
    if (url.pathname === "/favicon.ico") return void res.writeHead(404).end();
    const counted = `${name}${url.pathname}${req.method}`;
    const n = (counters.get(counted) ?? 0) + 1;
    counters.set(counted, n);
    seen.push({
      api: name,
      method: req.method ?? "",
      path: url.pathname,
      origin: h.origin,
      acrh: h["access-control-request-headers"],
      key: h["idempotency-key"] as string | undefined,
      bytes,
    });
    const cors = { "access-control-allow-origin": "*" };
    const close = { connection: "close" };
    if (req.method === "OPTIONS" && h["access-control-request-method"]) {
      return void res
        .writeHead(204, {
          ...cors,
          ...close,
          "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
          "access-control-allow-headers": q.get("allow") ?? "",
          "access-control-max-age": "0",
        })
        .end();
    }
    if (Number(q.get("reset") ?? 0) >= n) return void req.socket.destroy();
    const delay = Number(q.get("delay") ?? 0);
    if (delay > 0) await new Promise((done) => setTimeout(done, delay));
    const redirect = q.get("redirect");
    if (redirect) return void res.writeHead(307, { ...cors, ...close, location: redirect }).end();
    const seq = (q.get("seq") ?? "200").split(",");
    const status = Number(seq[Math.min(n, seq.length) - 1]);
    res.writeHead(status, { ...cors, ...close, "content-type": "text/plain" }).end(`${name} ${status}`);
  };
}

const KY_PAGE = `<!doctype html>
<meta charset="utf-8" />
<script type="importmap">
  { "imports": {
    "@storycore/resilient-fetch": "/dist/browser/index.js",
    "@storycore/resilient-fetch/fallback": "/dist/browser/fallback/index.js",
    "@storycore/resilient-fetch/degradation": "/dist/browser/degradation/index.js",
    "@storycore/resilient-fetch/ky": "/dist/browser/ky/index.js",
    "ky": "/node_modules/ky/distribution/index.js"
  } }
</script>
<script type="module">
  import * as root from "@storycore/resilient-fetch";
  import * as chains from "@storycore/resilient-fetch/fallback";
  import * as levels from "@storycore/resilient-fetch/degradation";
  import * as kyEntry from "@storycore/resilient-fetch/ky";
  window.lib = { ...root, ...chains, ...levels, ...kyEntry };
</script>`;

/** A page whose `<base href>` names another origin (`base` in the query). */
const basePage = (base: string) => `<!doctype html>
<meta charset="utf-8" />
<base href="${base}" />
<script type="module">
  import * as root from "/dist/browser/index.js";
  import * as chains from "/dist/browser/fallback/index.js";
  window.lib = { ...root, ...chains };
</script>`;

/** A sandboxed page (opaque origin): the modules come with `Access-Control-Allow-Origin: *`. */
const SANDBOX_PAGE = `<!doctype html>
<meta charset="utf-8" />
<script type="module">
  import * as root from "./dist/browser/index.js";
  window.lib = { ...root };
</script>`;

async function serveFile(
  prefix: string,
  path: string,
  res: ServerResponse,
  headers: Record<string, string> = {},
): Promise<void> {
  const file = resolve(ROOT, `.${path}`);
  if (!file.startsWith(resolve(ROOT, prefix))) return void res.writeHead(404).end();
  await readFile(file).then(
    (text) => void res.writeHead(200, { "content-type": "text/javascript", connection: "close", ...headers }).end(text),
    () => void res.writeHead(404).end(),
  );
}

const pageRecorder = recorder("page");
async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  const path = url.pathname;
  if (path === "/ky.html") return void res.writeHead(200, { "content-type": "text/html" }).end(KY_PAGE);
  if (path === "/base.html")
    return void res.writeHead(200, { "content-type": "text/html" }).end(basePage(url.searchParams.get("base") ?? ""));
  if (path.startsWith("/node_modules/ky/")) return serveFile("node_modules/ky", path, res);
  await pageRecorder(req, res);
}

const apiRecorder = recorder("api");
async function apiHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/sandbox.html")
    return void res
      .writeHead(200, {
        "content-type": "text/html",
        "content-security-policy": "sandbox allow-scripts",
        connection: "close",
      })
      .end(SANDBOX_PAGE);
  if (path.startsWith("/dist/browser/"))
    return serveFile("dist/browser", path, res, { "access-control-allow-origin": "*" });
  await apiRecorder(req, res);
}

let opened: LibraryPage | undefined;
let page: Page;
let servers: Server[] = [];
let PAGE = "";
let API = "";
let API2 = "";

const listen = (server: Server) =>
  new Promise<string>((done) =>
    server.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

async function goto(path: string): Promise<void> {
  await page.goto(path);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
}

beforeAll(async () => {
  if (!BUILT) return;
  opened = await openLibraryPage(pageHandler);
  PAGE = new URL(opened.page.url()).origin;
  page = opened.page;
  const api = createServer(apiHandler);
  const api2 = createServer(recorder("api2"));
  servers = [api, api2];
  [API, API2] = await Promise.all([listen(api), listen(api2)]);
}, 60_000);

afterAll(async () => {
  await opened?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

beforeEach(() => {
  seen.length = 0;
  counters.clear();
});

/** Runs `body` in the page as an async function of (lib, api, api2, page, settle). */
function inPage<T>(body: string): Promise<T> {
  return page.evaluate(
    async ({ body, api, api2, pageOrigin }) => {
      const { lib } = window as unknown as { lib: unknown };
      const settle = (p: Promise<Response>) =>
        p.then(
          async (res: Response) => ({
            ok: true,
            status: res.status,
            type: res.type,
            text: res.type === "opaque" ? "" : await res.text(),
          }),
          (e: Error & { attempts?: number }) => ({
            ok: false,
            name: String(e?.name),
            message: String(e?.message),
            attempts: e?.attempts,
            cause: e?.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}` : String(e?.cause),
          }),
        );
      const fn = new Function("lib", "api", "api2", "page", "settle", `return (async () => { ${body} })();`);
      return fn(lib, api, api2, pageOrigin, settle);
    },
    { body, api: API, api2: API2, pageOrigin: PAGE },
  ) as Promise<T>;
}

interface Settled {
  ok: boolean;
  status?: number;
  type?: string;
  text?: string;
  name?: string;
  message?: string;
  attempts?: number;
  cause?: string;
}

const FAST = `retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" }`;
const FAST_KEYED = `retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none", idempotencyKey: true }`;
const at = (path: string, method?: string) =>
  seen.filter((s) => s.path === path && (method === undefined || s.method === method));
const refusal = (target: string, from: string) =>
  `resilience.fetch: mode "same-origin" cannot fetch ${target} from a page of ${from}`;

const hostOf = (url: string) => new URL(url).host;
/** Each breaker's failure count, by host. */
const FAILURES = `Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k, v.failureCount]))`;

describe.skipIf(!BUILT)(`browser build: mode "same-origin" to another origin${SKIP}`, () => {
  beforeAll(async () => {
    await goto(`${PAGE}/ky.html`);
  });

  it("defect 1: refused with the TypeError naming both origins even when the API's breaker is open", async () => {
    const out = await inPage<{ trip: Settled; mistake: Settled }>(
      `const r = lib.createResilience({ ${FAST}, breaker: { failureThreshold: 1 } });
       const trip = await settle(r.fetch(api + "/d1/trip?seq=503"));
       const mistake = await settle(r.fetch(api + "/d1/so", { mode: "same-origin" }));
       return { trip, mistake };`,
    );
    expect(out.trip).toMatchObject({ ok: true, status: 503 });
    expect(at("/d1/so")).toEqual([]);
    // Documented: "The page's build refuses it first, with a `TypeError` that names both origins". Observed:
    // CircuitOpenError "circuit for … is open until …" (nothing sent, a retryAt: a call that can never go).
    expect(out.mistake).toMatchObject({ ok: false, name: "TypeError", message: refusal(new URL(API).origin, PAGE) });
  });

  it("defect 1: refused with the TypeError naming both origins even when the API's bulkhead is full", async () => {
    const out = await inPage<{ mistake: Settled; slow: Settled }>(
      `const r = lib.createResilience({ ${FAST}, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
       const slow = settle(r.fetch(api + "/d1b/slow?delay=300"));
       await new Promise((done) => setTimeout(done, 50));
       const mistake = await settle(r.fetch(api + "/d1b/so", { mode: "same-origin" }));
       return { mistake, slow: await slow };`,
    );
    expect(out.slow).toMatchObject({ ok: true, status: 200 });
    expect(at("/d1b/so")).toEqual([]);
    // Observed: BulkheadRejectedError "bulkhead for … is full".
    expect(out.mistake).toMatchObject({ ok: false, name: "TypeError", message: refusal(new URL(API).origin, PAGE) });
  });

  it("defect 2: a chain whose next endpoint is refused unsent answers with the earlier 503, not 'may have processed'", async () => {
    const out = await inPage<Settled>(
      `const r = lib.createResilience({ ${FAST}, fallback: lib.fallback([{ name: "c", endpoints: [{ name: "a", url: page + "/d2" }, { name: "b", url: api + "/d2" }] }]) });
       return settle(r.fetch("/d2/job?seq=503", { mode: "same-origin", method: "POST", body: "job" }));`,
    );
    // The page's own origin declined the keyless POST three times (503 may be sent again); b got nothing.
    expect(at("/d2/job").map((s) => [s.api, s.method])).toEqual([
      ["page", "POST"],
      ["page", "POST"],
      ["page", "POST"],
    ]);
    // Documented (docs/fallback.md): the call "resolves with the last response any endpoint gave …, or rejects with
    // FallbackExhaustedError … if an endpoint tried after it may have processed a request that is not safe to send
    // twice"; b never had it. Observed: FallbackExhaustedError 'stopped after "b", which may have processed the
    // request (the answer "a" gave before it is not returned, as it would have the request sent again)'.
    expect(out).toMatchObject({ ok: true, status: 503, text: "page 503" });
  });

  describe("a page whose script holds a global `var origin` (the API's address)", () => {
    beforeAll(async () => {
      await goto(`${PAGE}/ky.html`);
      await page.addScriptTag({ content: `var origin = ${JSON.stringify(API)};` });
    });
    afterAll(async () => {
      await goto(`${PAGE}/ky.html`);
    });

    it("defect 3: a same-origin call to the page's own origin is sent, as fetch sends it", async () => {
      const out = await inPage<{ layer: Settled; plain: Settled; seenOrigin: string }>(
        `const r = lib.createResilience({ ${FAST} });
         const plain = await settle(fetch("/d3/plain", { mode: "same-origin" }));
         const layer = await settle(r.fetch("/d3/own", { mode: "same-origin" }));
         return { layer, plain, seenOrigin: self.origin };`,
      );
      expect(out.seenOrigin).toBe(API);
      // The browser's own fetch sends it (the page's origin is the server's).
      expect(out.plain).toMatchObject({ ok: true, status: 200 });
      // Observed: TypeError 'mode "same-origin" cannot fetch <page> from a page of <api>', nothing sent.
      expect(out.layer).toMatchObject({ ok: true, status: 200, text: "page 200" });
    });

    it("defect 3: a same-origin call to the API is refused at once, not retried, no breaker told", async () => {
      const out = await inPage<{ call: Settled; failures: Record<string, number> }>(
        `const r = lib.createResilience({ ${FAST} });
         const call = await settle(r.fetch(api + "/d3/api", { mode: "same-origin" }));
         return { call, failures: ${FAILURES} };`,
      );
      expect(at("/d3/api")).toEqual([]);
      // Observed: RetryExhaustedError after 3 attempts (Chromium's "Failed to fetch"), 3 failures on the API's host.
      expect(out.failures[hostOf(API)] ?? 0).toBe(0);
      expect(out.call).toMatchObject({ ok: false, name: "TypeError" });
    });
  });

  it("held: Request input, ky PATCH, degradation rewrite, a layer installed as the global fetch and one stacked on it", async () => {
    const out = await inPage<{ results: Array<Settled | string>; failures: Record<string, number>; inner: number }>(
      `const r = lib.createResilience({ ${FAST}, degradation: lib.degradation({ levelHeader: "x-level", rules: [{ match: api + "/h1", params: { steps: { query: "steps" } } }] }) });
       r.degradation.setLevel("low");
       const results = [];
       results.push(await settle(r.fetch(new Request(api + "/h1/req", { mode: "same-origin" }))));
       results.push(await settle(r.fetch(new Request(api + "/h1/req"), { mode: "same-origin" })));
       results.push(await settle(r.fetch(api + "/h1/dg?steps=50", { mode: "same-origin", method: "POST", body: "{}" })));
       const k = lib.createClient({ resilience: r });
       results.push(await k.patch(api + "/h1/ky", { mode: "same-origin", body: "x" }).then((x) => "ok " + x.status, (e) => e.name + ": " + e.message));
       const inner = lib.createResilience({ ${FAST} });
       const original = window.fetch;
       window.fetch = inner.fetch;
       try {
         results.push(await settle(fetch(api + "/h1/global", { mode: "same-origin" })));
         const outer = lib.createResilience({ ${FAST} });
         results.push(await settle(outer.fetch(api + "/h1/outer", { mode: "same-origin" })));
         const stacked = lib.createResilience({ ${FAST}, fetch: inner.fetch });
         results.push(await settle(stacked.fetch(api + "/h1/stacked", { mode: "same-origin" })));
       } finally { window.fetch = original; }
       const failures = ${FAILURES};
       return { results, failures, inner: inner.health().breakers[new URL(api).host]?.failureCount ?? 0 };`,
    );
    const message = refusal(new URL(API).origin, PAGE);
    for (const result of out.results)
      expect(result).toEqual(
        typeof result === "string" ? `TypeError: ${message}` : expect.objectContaining({ name: "TypeError", message }),
      );
    expect(out.results).toHaveLength(7);
    expect(seen.filter((s) => s.path.startsWith("/h1"))).toEqual([]);
    expect(out.failures[hostOf(API)] ?? 0).toBe(0);
    expect(out.inner).toBe(0);
  });

  it("held: a half-open host stays half-open, its probe slot free; the degradation triggers and error rate hear nothing", async () => {
    const out = await inPage<{ before: string; mistake: Settled; after: string; probe: Settled; errorRate: number }>(
      `const r = lib.createResilience({ ${FAST}, breaker: { failureThreshold: 1, timeout: 100, halfOpenMaxCalls: 1, successThreshold: 1 } });
       await settle(r.fetch(api + "/h2/fail?seq=500"));
       await new Promise((done) => setTimeout(done, 150));
       const before = r.health().breakers[new URL(api).host].state;
       const m = lib.createResilience({ ${FAST} });
       for (let i = 0; i < 5; i++) await settle(m.fetch(api + "/h2/so", { mode: "same-origin" }));
       const mistake = await settle(r.fetch(api + "/h2/so", { mode: "same-origin" }));
       const after = r.health().breakers[new URL(api).host].state;
       const probe = await settle(r.fetch(api + "/h2/ok"));
       return { before, mistake, after, probe, errorRate: m.health().errorRate };`,
    );
    expect(out.before).toBe("half_open");
    expect(out.mistake).toMatchObject({ name: "TypeError" });
    expect(out.after).toBe("half_open");
    expect(out.probe).toMatchObject({ ok: true, status: 200 });
    expect(out.errorRate).toBe(0);
    expect(at("/h2/so")).toEqual([]);
  });

  it("held: <base href> of another origin: a relative same-origin call is refused naming that origin; the page's own URL goes", async () => {
    await goto(`${PAGE}/base.html?base=${encodeURIComponent(`${API}/b/`)}`);
    try {
      const out = await inPage<{ rel: Settled; own: Settled; failures: Record<string, number> }>(
        `const r = lib.createResilience({ ${FAST} });
         const rel = await settle(r.fetch("h3", { mode: "same-origin" }));
         const own = await settle(r.fetch(page + "/h3/own", { mode: "same-origin" }));
         return { rel, own, failures: ${FAILURES} };`,
      );
      expect(out.rel).toMatchObject({ name: "TypeError", message: refusal(new URL(API).origin, PAGE) });
      expect(out.own).toMatchObject({ ok: true, status: 200, text: "page 200" });
      expect(seen.filter((s) => s.api === "api")).toEqual([]);
      expect(out.failures[hostOf(API)] ?? 0).toBe(0);
    } finally {
      await goto(`${PAGE}/ky.html`);
    }
  });

  it("held: a sandboxed page (origin null): its own URL is another origin, named from a page of null; no-cors stays keyless", async () => {
    await goto(`${API}/sandbox.html`);
    try {
      const out = await inPage<{
        own: Settled;
        rel: Settled;
        nc: Settled;
        origin: string;
        failures: Record<string, number>;
      }>(
        `const r = lib.createResilience({ ${FAST_KEYED} });
         const own = await settle(r.fetch(api + "/h4/own", { mode: "same-origin" }));
         const rel = await settle(r.fetch("/h4/rel", { mode: "same-origin" }));
         const nc = await settle(r.fetch(api2 + "/h4/nc?reset=1", { method: "POST", body: "job", mode: "no-cors" }));
         return { own, rel, nc, origin: self.origin, failures: ${FAILURES} };`,
      );
      expect(out.origin).toBe("null");
      expect(out.own).toMatchObject({ name: "TypeError", message: refusal(new URL(API).origin, "null") });
      expect(out.rel).toMatchObject({ name: "TypeError", message: refusal(new URL(API).origin, "null") });
      expect(out.failures[hostOf(API)] ?? 0).toBe(0);
      expect(at("/h4/own")).toEqual([]);
      expect(at("/h4/rel")).toEqual([]);
      // The no-cors POST: one send, keyless, not sent again after the reset.
      expect(at("/h4/nc").map((s) => [s.method, s.key ?? null])).toEqual([["POST", null]]);
      expect(out.nc).toMatchObject({ ok: false, name: "RetryExhaustedError", attempts: 1 });
    } finally {
      await goto(`${PAGE}/ky.html`);
    }
  });

  it("held: chains: a GET moves past the refused endpoint (event, no count); a hedge refused at another origin loses to the first", async () => {
    const out = await inPage<{
      get: Settled;
      events: Array<{ from: string; next: string; reason: string }>;
      hedged: Settled;
      hedgeEvents: Array<{ from: string }>;
      failures: Record<string, number>;
    }>(
      `const r = lib.createResilience({ ${FAST}, fallback: lib.fallback([
         { name: "c", endpoints: [{ name: "a", url: api + "/h5" }, { name: "b", url: page + "/h5" }] },
         { name: "h", hedge: { delay: 30 }, endpoints: [{ name: "a", url: page + "/h5h" }, { name: "b", url: api + "/h5h" }] },
       ]) });
       const events = []; r.on("fallback", (e) => events.push({ from: e.from, next: e.next, reason: e.reason }));
       const get = await settle(r.fetch(api + "/h5/x", { mode: "same-origin" }));
       const hedgeEvents = events.splice(0);
       const hedged = await settle(r.fetch(page + "/h5h/x?delay=300", { mode: "same-origin" }));
       return { get, events: hedgeEvents, hedged, hedgeEvents: events, failures: ${FAILURES} };`,
    );
    expect(out.get).toMatchObject({ ok: true, status: 200, text: "page 200" });
    expect(out.events).toEqual([{ from: "a", next: "b", reason: `TypeError: ${refusal(new URL(API).origin, PAGE)}` }]);
    expect(out.hedged).toMatchObject({ ok: true, status: 200, text: "page 200" });
    expect(out.hedgeEvents.map((e) => e.from)).toEqual(["b"]);
    expect(seen.filter((s) => s.api === "api")).toEqual([]);
    expect(out.failures[hostOf(API)] ?? 0).toBe(0);
    expect(out.failures[hostOf(PAGE)] ?? 0).toBe(0);
  });

  // Found docs-silent (it rejected with the TypeError, nothing sent); since the fix of defect 2 the refusal reads
  // as "not sent", so the chain moves on, as after any refusal before sending.
  it("a keyless POST refused at the chain's first endpoint moves on to the next, nothing sent to the first", async () => {
    const out = await inPage<Settled>(
      `const r = lib.createResilience({ ${FAST}, fallback: lib.fallback([{ name: "c", endpoints: [{ name: "a", url: api + "/s1" }, { name: "b", url: page + "/s1" }] }]) });
       return settle(r.fetch(api + "/s1/job", { mode: "same-origin", method: "POST", body: "job" }));`,
    );
    expect(out).toMatchObject({ ok: true });
    expect(at("/s1/job").map((s) => [s.api, s.method])).toEqual([["page", "POST"]]);
  });

  it("docs-silent: a same-origin call the page's own server redirects elsewhere is retried and counted on the page's host", async () => {
    const out = await inPage<{ call: Settled; failures: Record<string, number> }>(
      `const r = lib.createResilience({ ${FAST} });
       const call = await settle(r.fetch("/s2/own?redirect=" + encodeURIComponent(api + "/s2/target"), { mode: "same-origin" }));
       return { call, failures: ${FAILURES} };`,
    );
    expect(at("/s2/own").map((s) => s.method)).toEqual(["GET", "GET", "GET"]);
    expect(at("/s2/target")).toEqual([]);
    expect(out.call).toMatchObject({
      ok: false,
      name: "RetryExhaustedError",
      attempts: 3,
      cause: "TypeError: Failed to fetch",
    });
    expect(out.failures[hostOf(PAGE)]).toBe(3);
  });

  // Found docs-silent (the store was asked for a lease, then given it back); since the fix of defect 1 the refusal
  // comes before the breaker, so the store hears nothing of it.
  it("refused before the breaker: a coordinating store is not asked for a probe lease", async () => {
    const out = await inPage<{ calls: string[]; mistake: Settled }>(
      `const calls = [];
       const store = { name: "mine", publish() {}, peek() { return undefined; }, record(k, failed) { calls.push("record " + failed); },
         acquireProbe() { calls.push("acquireProbe"); return Promise.resolve("lease-1"); }, releaseProbe(k, lease) { calls.push("releaseProbe " + lease); } };
       const r = lib.createResilience({ ${FAST}, store, breaker: { failureThreshold: 1, timeout: 100 } });
       await settle(r.fetch(api + "/s3/fail?seq=500"));
       await new Promise((done) => setTimeout(done, 150));
       calls.length = 0;
       const mistake = await settle(r.fetch(api + "/s3/so", { mode: "same-origin" }));
       return { calls, mistake };`,
    );
    expect(out.mistake).toMatchObject({ name: "TypeError" });
    expect(out.calls).toEqual([]);
  });
});

describe.skipIf(!BUILT)(`browser build: mode "no-cors" stays keyless on every path${SKIP}`, () => {
  beforeAll(async () => {
    await goto(`${PAGE}/ky.html`);
  });

  it("held: init overriding a Request's mode decides (no-cors over cors: keyless, once; cors over no-cors: keyed, retried)", async () => {
    const out = await inPage<{ x: Settled; y: Settled }>(
      `const r = lib.createResilience({ ${FAST_KEYED} });
       const x = await settle(r.fetch(new Request(api + "/n1/a?reset=1", { method: "POST", body: "job" }), { mode: "no-cors" }));
       const y = await settle(r.fetch(new Request(api + "/n1/b?reset=1&allow=idempotency-key", { method: "POST", body: "job", mode: "no-cors" }), { mode: "cors" }));
       return { x, y };`,
    );
    expect(at("/n1/a").map((s) => [s.method, s.key ?? null])).toEqual([["POST", null]]);
    expect(out.x).toMatchObject({ ok: false, name: "RetryExhaustedError", attempts: 1 });
    expect(out.x.message).not.toContain("probably");
    const posts = at("/n1/b", "POST");
    expect(posts).toHaveLength(2);
    expect(posts[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(posts[1]?.key).toBe(posts[0]?.key);
    expect(out.y).toMatchObject({ ok: true, status: 200 });
  });

  it("held: degradation rewrite, a hedged chain, a transform that adds a key, a relative caller URL, global and stacked layers", async () => {
    const out = await inPage<Record<string, Settled>>(
      `const out = {};
       const d = lib.createResilience({ ${FAST_KEYED}, degradation: lib.degradation({ levelHeader: "x-level", rules: [{ match: api + "/n2/dg", params: { steps: { query: "steps" } } }] }) });
       d.degradation.setLevel("low");
       out.dg = await settle(d.fetch(api + "/n2/dg?reset=1&steps=50", { method: "POST", body: "job", mode: "no-cors" }));
       const h = lib.createResilience({ ${FAST_KEYED}, fallback: lib.fallback([{ name: "h", hedge: { delay: 30 }, endpoints: [{ name: "a", url: api + "/n2/hg" }, { name: "b", url: api2 + "/n2/hg" }] }]) });
       out.hg = await settle(h.fetch(api + "/n2/hg?delay=300", { method: "POST", body: "job", mode: "no-cors" }));
       const t = lib.createResilience({ ${FAST}, fallback: lib.fallback([{ name: "t", endpoints: [{ name: "a", url: api + "/n2/tk", transform: (q) => { q.headers.set("idempotency-key", "from-transform"); return q; } }, { name: "b", url: api2 + "/n2/tk" }] }]) });
       out.tk = await settle(t.fetch(api + "/n2/tk?reset=1", { method: "POST", body: "job", mode: "no-cors" }));
       const c = lib.createResilience({ ${FAST_KEYED}, fallback: lib.fallback([{ name: "p", endpoints: [{ name: "a", url: page + "/n2/cp" }, { name: "b", url: api + "/n2/cp" }, { name: "c", url: api2 + "/n2/cp" }] }]) });
       out.cp = await settle(c.fetch("/n2/cp?seq=503", { method: "POST", body: "job", mode: "no-cors" }));
       const inner = lib.createResilience({ ${FAST_KEYED} });
       const original = window.fetch;
       window.fetch = inner.fetch;
       try {
         out.global = await settle(fetch(api + "/n2/global?reset=1", { method: "POST", body: "job", mode: "no-cors" }));
         out.outer = await settle(lib.createResilience({ ${FAST_KEYED} }).fetch(api + "/n2/outer?reset=1", { method: "POST", body: "job", mode: "no-cors" }));
         out.stacked = await settle(lib.createResilience({ ${FAST_KEYED}, fetch: inner.fetch }).fetch(api + "/n2/stacked?reset=1", { method: "POST", body: "job", mode: "no-cors" }));
       } finally { window.fetch = original; }
       return out;`,
    );
    const once = (path: string) =>
      expect(at(path).map((s) => [s.api, s.method, s.key ?? null])).toEqual([["api", "POST", null]]);
    // Rewritten (level header, query) and cut after the read: one keyless POST.
    once("/n2/dg");
    expect(out.dg).toMatchObject({ ok: false, attempts: 1 });
    // Keyless: no hedge to b while a takes 300 ms.
    once("/n2/hg");
    expect(out.hg).toMatchObject({ ok: true, status: 0, type: "opaque" });
    // The transform's key never leaves the page either: the chain stops at a.
    once("/n2/tk");
    expect(out.tk).toMatchObject({ ok: false, name: "FallbackExhaustedError" });
    expect(out.tk?.message).toContain('stopped after "a"');
    // The page's own origin declined (503) three times: the POST may go on, and b's opaque answer is a success.
    expect(at("/n2/cp").map((s) => [s.api, s.key ?? null])).toEqual([
      ["page", null],
      ["page", null],
      ["page", null],
      ["api", null],
    ]);
    expect(out.cp).toMatchObject({ ok: true, status: 0 });
    for (const path of ["/n2/global", "/n2/outer", "/n2/stacked"]) once(path);
  });

  it("held: no CORS hint for a no-cors call given as a Request, by init over a Request, by an inherited init, or through ky", async () => {
    const out = await inPage<{ results: Array<Settled | string> }>(
      `const r = lib.createResilience({ ${FAST}, breaker: false });
       const results = [];
       results.push(await settle(r.fetch(new Request(api + "/n3/a?reset=9", { mode: "no-cors", headers: { "x-a": "1" } }))));
       results.push(await settle(r.fetch(new Request(api + "/n3/b?reset=9", { headers: { "x-a": "1" } }), { mode: "no-cors" })));
       results.push(await settle(r.fetch(api + "/n3/c?reset=9", Object.create({ mode: "no-cors", headers: { "x-a": "1" } }))));
       const k = lib.createClient({ resilience: r });
       results.push(await k.get(api + "/n3/d?reset=9", { mode: "no-cors", headers: { "x-a": "1" } }).then(() => "ok", (e) => e.name + ": " + e.message));
       return { results };`,
    );
    for (const result of out.results) {
      const text = typeof result === "string" ? result : `${result.name}: ${result.message}`;
      expect(text).toMatch(/^RetryExhaustedError: gave up after 3 attempts to [^ ]+: Failed to fetch$/);
    }
    expect(seen.filter((s) => s.path.startsWith("/n3/")).every((s) => s.method === "GET")).toBe(true);
  });

  it("held (as SECURITY.md says of init the browser refuses): a no-cors PATCH goes nowhere, once, counted once", async () => {
    const out = await inPage<{ call: Settled; failures: Record<string, number> }>(
      `const r = lib.createResilience({ ${FAST_KEYED} });
       const call = await settle(r.fetch(api + "/n4", { method: "PATCH", body: "job", mode: "no-cors" }));
       return { call, failures: ${FAILURES} };`,
    );
    expect(at("/n4")).toEqual([]);
    expect(out.call).toMatchObject({ ok: false, name: "RetryExhaustedError", attempts: 1 });
    expect(out.call.message).toContain("'PATCH' is unsupported in no-cors mode");
    expect(out.failures[hostOf(API)]).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Node: workerd's `retryable` errors, durableObjectStore's wait, BreakerStateObject's stored thresholds.
// ---------------------------------------------------------------------------------------------------------------

const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);

const RETRY = { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" as const };
/** What workerd's fetch rejects with for a refused or reset connection. */
const lost = (): Error => Object.assign(new Error("Network connection lost."), { retryable: true });

/** A transport that sends for real (the server reads the whole request), then fails the first `n` as workerd does. */
function lostAfterSend(n: number, only?: string) {
  let failed = 0;
  const sent: string[] = [];
  const transport = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    sent.push(`${init?.method ?? "GET"} ${new URL(url).pathname}`);
    const res = await fetch(input, init);
    if ((only === undefined || url.startsWith(only)) && failed < n) {
      failed++;
      await res.arrayBuffer();
      throw lost();
    }
    return res;
  };
  return { transport, sent };
}

describe("workerd: an error marked `retryable: true` is a network error (outside pages)", () => {
  it("held: a GET is retried, named `connection reset` in retry and breaker events; the breaker counts it", async () => {
    const { transport } = lostAfterSend(2);
    const r = createResilience({ retry: RETRY, fetch: transport, breaker: { failureThreshold: 3 } });
    const events: unknown[] = [];
    r.on("retry", (e) => events.push(["retry", e.reason]));
    const res = await r.fetch(`${up.base}/w/get`);
    expect(await res.text()).toBe("ok");
    expect(up.hits).toHaveLength(3);
    expect(events).toEqual([
      ["retry", "connection reset"],
      ["retry", "connection reset"],
    ]);
    const tripping = createResilience({
      retry: RETRY,
      fetch: lostAfterSend(9).transport,
      breaker: { failureThreshold: 2 },
    });
    const trips: string[] = [];
    tripping.on("breaker", (e) => trips.push(`${e.to}: ${e.reason}`));
    const failed = await tripping.fetch(`${up.base}/w/trip`).catch((e: unknown) => e);
    expect(isRetryExhaustedError(failed)).toBe(true);
    expect(trips).toEqual(["open: 2 failures in a row (last: connection reset)"]);
    expect(tripping.health().breakers[up.host]).toMatchObject({ state: "open", lastError: "connection reset" });
  });

  it("held: a keyless POST the server read is not sent again; a keyed one is, under its key; the ky client retries a GET", async () => {
    const keyless = lostAfterSend(2);
    const r = createResilience({ retry: RETRY, fetch: keyless.transport });
    const error = await r.fetch(`${up.base}/w/post`, { method: "POST", body: "job" }).catch((e: unknown) => e);
    expect(isRetryExhaustedError(error) && error.attempts).toBe(1);
    expect(up.hits.map((h) => [h.method, h.body])).toEqual([["POST", "job"]]);
    expect(r.health().breakers[up.host]?.failureCount).toBe(1);
    up.reset();
    const keyed = createResilience({ retry: { ...RETRY, idempotencyKey: true }, fetch: lostAfterSend(2).transport });
    expect((await keyed.fetch(`${up.base}/w/keyed`, { method: "POST", body: "job" })).status).toBe(200);
    const keys = up.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    up.reset();
    const api = createClient({ resilience: { retry: RETRY, fetch: lostAfterSend(1).transport } });
    expect(await api.get(`${up.base}/w/ky`).text()).toBe("ok");
    expect(up.hits).toHaveLength(2);
  });

  it("held: a chain moves a GET on after its retries (fallback event); a keyless POST stops where the server read it", async () => {
    const { transport } = lostAfterSend(99, up.base);
    const r = createResilience({
      retry: RETRY,
      fetch: transport,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${up.base}/w/c` },
            { name: "b", url: `${spare.base}/w/c` },
          ],
        },
      ]),
    });
    const events: Array<{ from: string; next: string | undefined }> = [];
    r.on("fallback", (e) => events.push({ from: e.from, next: e.next }));
    expect((await r.fetch(`${up.base}/w/c/x`)).status).toBe(200);
    expect(up.hits.map((h) => h.method)).toEqual(["GET", "GET", "GET"]);
    expect(spare.hits.map((h) => h.method)).toEqual(["GET"]);
    expect(events).toEqual([{ from: "a", next: "b" }]);
    up.reset();
    spare.reset();
    const error = await r.fetch(`${up.base}/w/c/y`, { method: "POST", body: "job" }).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain('stopped after "a", which may have processed the request');
    expect(up.hits.map((h) => h.method)).toEqual(["POST"]);
    expect(spare.hits).toEqual([]);
  });

  it("held: other carriers of `retryable` are not retried: a caller's abort reason, a store's error, a `respond`, a getter that throws, retryOn.error", async () => {
    let sends = 0;
    const controller = new AbortController();
    const aborting = createResilience({
      retry: RETRY,
      fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
        sends++;
        controller.abort(lost());
        throw init?.signal?.reason;
      },
    });
    const reason = await aborting.fetch(`${up.base}/w/abort`, { signal: controller.signal }).catch((e: unknown) => e);
    expect(reason).toBe(controller.signal.reason);
    expect([sends, aborting.health().breakers[up.host]?.failureCount ?? 0]).toEqual([1, 0]);

    sends = 0;
    const store: BreakerStore = {
      name: "mine",
      publish() {},
      peek: () => undefined,
      record() {
        throw lost();
      },
    };
    const storing = createResilience({
      retry: RETRY,
      store,
      fetch: async () => {
        sends++;
        return new Response("down", { status: 500 });
      },
    });
    const stored = await storing.fetch(`${up.base}/w/store`).catch((e: unknown) => e);
    expect(isRetryExhaustedError(stored) && stored.attempts).toBe(1);
    expect(sends).toBe(1);

    let responds = 0;
    const responding = createResilience({
      retry: RETRY,
      fetch: async () => new Response("down", { status: 500 }),
      fallback: fallback([
        {
          name: "r",
          endpoints: [
            { name: "a", url: `${up.base}/w/r` },
            {
              name: "b",
              respond: () => {
                responds++;
                throw lost();
              },
            },
          ],
        },
      ]),
    });
    expect((await responding.fetch(`${up.base}/w/r/x`)).status).toBe(500);
    expect(responds).toBe(1);

    sends = 0;
    const getter = createResilience({
      retry: RETRY,
      fetch: async () => {
        sends++;
        throw Object.defineProperty(new Error("Network connection lost."), "retryable", {
          get() {
            throw new Error("no");
          },
        });
      },
    });
    await getter.fetch(`${up.base}/w/getter`).catch(() => undefined);
    expect(sends).toBe(1);

    sends = 0;
    const own = createResilience({
      retry: { ...RETRY, retryOn: { error: () => false } },
      fetch: async () => {
        sends++;
        throw lost();
      },
    });
    await own.fetch(`${up.base}/w/own`).catch(() => undefined);
    expect(sends).toBe(1);
  });

  // Found docs-silent (both were retried 3 times and counted); since then only a plain `Error` workerd marks
  // `retryable` is a network error.
  it("an AbortError the transport throws (not the caller's) marked retryable, or a bare { retryable: true }, is not retried", async () => {
    let sends = 0;
    const r = createResilience({
      retry: RETRY,
      fetch: async () => {
        sends++;
        throw Object.assign(new DOMException("The operation was aborted.", "AbortError"), { retryable: true });
      },
    });
    const error = await r.fetch(`${up.base}/w/aborterror`).catch((e: unknown) => e);
    expect(isRetryExhaustedError(error) && error.attempts).toBe(1);
    expect(sends).toBe(1);
    sends = 0;
    const bare = createResilience({
      retry: RETRY,
      fetch: async () => {
        sends++;
        throw { retryable: true };
      },
    });
    await bare.fetch(`${up.base}/w/bare`).catch(() => undefined);
    expect(sends).toBe(1);
  });
});

const T0 = 1_700_000_000_000;

/** Durable Object storage of my own: values cloned, each put and alarm recorded. */
class ObjectState {
  readonly values = new Map<string, unknown>();
  readonly alarms: number[] = [];
  readonly puts: string[] = [];
  ready: Promise<unknown> = Promise.resolve();
  readonly storage = {
    get: async <T>(key: string): Promise<T | undefined> => structuredClone(this.values.get(key)) as T | undefined,
    put: async (key: string, value: unknown): Promise<void> => {
      this.puts.push(key);
      this.values.set(key, structuredClone(value));
    },
    setAlarm: async (at: number): Promise<void> => {
      this.alarms.push(at);
    },
  };
  blockConcurrencyWhile = <T>(callback: () => Promise<T>): Promise<T> => {
    const run = callback();
    this.ready = run;
    return run;
  };
}

type ObjectMode = "ok" | "500" | "throw" | "junk" | "hang";

/** A namespace whose one stub I control: a real object, or one that errs (500), throws, answers junk or hangs. */
function objectNamespace(clock: TestClock) {
  const state = new ObjectState();
  let object: BreakerStateObject | undefined;
  const ns = {
    mode: "ok" as ObjectMode,
    asked: [] as Array<{ at: number; path: string; body: Record<string, unknown> }>,
    state,
    idFromName: (name: string) => name,
    get: (_id: never) => ({
      fetch: async (input: string, init?: RequestInit): Promise<Response> => {
        ns.asked.push({ at: clock.now() - T0, path: new URL(input).pathname, body: JSON.parse(String(init?.body)) });
        if (ns.mode === "500") return Response.json({ error: "overloaded" }, { status: 500 });
        if (ns.mode === "throw") throw new Error("Durable Object is overloaded.");
        if (ns.mode === "junk") return Response.json({ hello: 1 });
        if (ns.mode === "hang") return new Promise<Response>(() => {});
        object ??= new BreakerStateObject(state, {}, clock);
        await state.ready;
        return object.fetch(new Request(input, init));
      },
    }),
  };
  return ns;
}

function recordingCtx() {
  const queue: Promise<unknown>[] = [];
  return {
    ctx: { waitUntil: (promise: Promise<unknown>) => void queue.push(promise) },
    async drain() {
      while (queue.length > 0) await Promise.all(queue.splice(0));
    },
  };
}

/** One isolate over `durableObjectStore`; `call` settles one call (a status, or the error's name). */
function isolate(mode: ObjectMode, storeOptions: Record<string, unknown>, breaker: Record<string, unknown>) {
  const clock = new TestClock(T0);
  const ns = objectNamespace(clock);
  ns.mode = mode;
  const context = recordingCtx();
  const store = durableObjectStore(ns, { ctx: context.ctx, clock, ...storeOptions });
  const r = createResilience({ clock, retry: false, store, breaker });
  const events: StoreEvent[] = [];
  r.on("store", (e) => events.push(e));
  const call = async (path = "/ok"): Promise<number | string> => {
    try {
      const res = await r.fetch(`${up.base}${path}`);
      await res.arrayBuffer();
      return res.status;
    } catch (error) {
      return (error as Error).name;
    }
  };
  return { clock, ns, context, r, call, events };
}

const failOnPath = () =>
  up.on((hit) => {
    hit.res.statusCode = hit.path.includes("fail") ? 503 : 200;
    hit.res.end("x");
  });

describe("durableObjectStore: after a report the object did not answer, the next routine report waits a flushInterval", () => {
  for (const mode of ["500", "throw", "junk", "hang"] as const) {
    it(`held (${mode}): 20 calls in 2 s send no report; the next goes a flushInterval after the unanswered one`, async () => {
      const { clock, ns, context, call, events } = isolate(mode, { flushInterval: 5000 }, {});
      const settle = async () => {
        if (mode === "hang") await clock.advance(250);
        await context.drain();
      };
      expect(await call()).toBe(200);
      await settle();
      const skew = mode === "hang" ? 250 : 0;
      for (let i = 0; i < 20; i++) {
        await clock.advance(100);
        expect(await call()).toBe(200);
        await context.drain();
      }
      await clock.advance(3000 - skew - 1);
      await call();
      await context.drain();
      expect(ns.asked.map((a) => a.at)).toEqual([0]);
      await clock.advance(1);
      await call();
      await settle();
      expect(ns.asked.map((a) => [a.at, a.path])).toEqual([
        [0, "/report"],
        [5000, "/report"],
      ]);
      expect(events.map((e) => e.outcome)).toEqual(
        mode === "hang"
          ? ["timeout", "timeout"]
          : mode === "junk"
            ? ["rejected", "rejected"]
            : mode === "500"
              ? ["rejected", "rejected"]
              : ["failed", "failed"],
      );
    });
  }

  it("held: a local trip during the wait goes at once (with its hold); refused calls send nothing; a half-open probe still asks", async () => {
    failOnPath();
    const { clock, ns, context, call } = isolate(
      "500",
      { flushInterval: 60_000 },
      { failureThreshold: 2, timeout: 1000 },
    );
    expect(await call()).toBe(200);
    await context.drain();
    await clock.advance(100);
    expect(await call("/fail")).toBe(503);
    await context.drain();
    await clock.advance(100);
    expect(await call("/fail")).toBe(503);
    await context.drain();
    expect(ns.asked.map((a) => [a.at, a.path, a.body.fail, a.body.holdUntil])).toEqual([
      [0, "/report", 0, undefined],
      [200, "/report", 2, T0 + 1200],
    ]);
    for (let i = 0; i < 5; i++) {
      await clock.advance(100);
      expect(await call()).toBe("CircuitOpenError");
      await context.drain();
    }
    expect(ns.asked).toHaveLength(2);
    await clock.advance(1000);
    expect(await call()).toBe(200);
    await context.drain();
    expect(ns.asked.map((a) => [a.at, a.path])).toEqual([
      [0, "/report"],
      [200, "/report"],
      [1700, "/probe"],
    ]);
  });

  it("docs-silent: the wait counts from the report's send on a call's outcome (a hung report's next goes 250 ms before the wait ends); flushThreshold 1 reports each failure", async () => {
    const hung = isolate("hang", { flushInterval: 5000 }, {});
    expect(await hung.call()).toBe(200);
    await hung.clock.advance(250);
    await hung.context.drain();
    // The report went at 0, unanswered at 250: a routine report "waits a flushInterval" — from 0 here.
    await hung.clock.advance(4750);
    await hung.call();
    await hung.clock.advance(250);
    await hung.context.drain();
    expect(hung.ns.asked.map((a) => a.at)).toEqual([0, 5000]);

    up.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("x");
    });
    const each = isolate("500", { flushInterval: 60_000, flushThreshold: 1 }, { failureThreshold: 12 });
    for (let i = 0; i < 12; i++) {
      await each.clock.advance(100);
      await each.call("/fail");
      await each.context.drain();
    }
    // One report to the erring object per failed call (and the trip), all within 1.2 s.
    expect(each.ns.asked.filter((a) => a.body.fail === 1)).toHaveLength(12);
  });
});

const wire = (p: Record<string, unknown> = {}) => ({
  failureThreshold: 2,
  successThreshold: 1,
  timeout: 60_000,
  halfOpenMaxCalls: 1,
  timeWindow: 30_000,
  probeTimeout: 5_000,
  failureRate: null,
  minimumCalls: 100,
  ...p,
});

async function ask(object: BreakerStateObject, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await object.fetch(
    new Request(`https://breaker-state${path}`, { method: "POST", body: JSON.stringify(body) }),
  );
  return (await res.json()) as Record<string, unknown>;
}

/** An object whose host is half-open with a probe lease out (expiring at T0 + 65 s), under thresholds A. */
async function halfOpenWithLease(clock: TestClock, state: ObjectState): Promise<BreakerStateObject> {
  const object = new BreakerStateObject(state, {}, clock);
  await state.ready;
  expect(await ask(object, "/report", { policy: wire(), ok: 0, fail: 2 })).toMatchObject({ state: "open" });
  await clock.advance(60_000);
  await object.alarm();
  expect(await ask(object, "/probe", { policy: wire() })).toMatchObject({ state: "half_open", lease: T0 + 65_000 });
  return object;
}

describe("BreakerStateObject stores its thresholds beside its state", () => {
  it("held: evicted and built again, its alarm moves open to half-open with the stored thresholds", async () => {
    const clock = new TestClock(T0);
    const state = new ObjectState();
    const object = new BreakerStateObject(state, {}, clock);
    await state.ready;
    await ask(object, "/report", { policy: wire({ timeout: 20_000 }), ok: 0, fail: 2 });
    expect(state.values.get("policy")).toEqual(wire({ timeout: 20_000 }));
    const rebuilt = new BreakerStateObject(state, {}, clock);
    await state.ready;
    await clock.advance(20_000);
    await rebuilt.alarm();
    expect(state.values.get("snapshot")).toMatchObject({ state: "half_open" });
  });

  it("defect 4: thresholds a report changes without a transition are stored, so an evicted object's alarm applies them", async () => {
    const reopen: Record<string, number> = {};
    const stored: Record<string, unknown> = {};
    for (const evicted of [false, true]) {
      const clock = new TestClock(T0);
      const state = new ObjectState();
      let object = await halfOpenWithLease(clock, state);
      // The isolates now send `timeout` 10 s (a new deploy, or the last layer made): no transition follows.
      expect(await ask(object, "/report", { policy: wire({ timeout: 10_000 }), ok: 0, fail: 0 })).toMatchObject({
        state: "half_open",
      });
      stored[String(evicted)] = (state.values.get("policy") as { timeout: number }).timeout;
      if (evicted) {
        object = new BreakerStateObject(state, {}, clock);
        await state.ready;
      }
      // The probe's isolate died: at the lease's expiry the alarm counts it as a failure and re-opens.
      await clock.advance(5_000);
      await object.alarm();
      const snapshot = state.values.get("snapshot") as { state: string; openUntil: number };
      expect(snapshot.state).toBe("open");
      reopen[String(evicted)] = snapshot.openUntil - clock.now();
    }
    // The object not evicted re-opens for the thresholds last sent.
    expect(reopen.false).toBe(10_000);
    // Documented: "it stores the thresholds the isolates last sent, once and when they change, so an object evicted
    // and built again still runs its alarm". Observed: storage keeps `timeout` 60 000 until the next transition, and
    // the evicted object re-opens the host for 60 s where the live one would for 10 s.
    expect(stored).toEqual({ false: 10_000, true: 10_000 });
    expect(reopen.true).toBe(10_000);
  });

  it("held: storage is written on transitions only: counts alone and the same thresholds write nothing", async () => {
    const clock = new TestClock(T0);
    const state = new ObjectState();
    const object = new BreakerStateObject(state, {}, clock);
    await state.ready;
    await ask(object, "/report", { policy: wire({ failureThreshold: 50 }), ok: 5, fail: 3 });
    await ask(object, "/report", { policy: wire({ failureThreshold: 50 }), ok: 7, fail: 1 });
    expect(state.puts).toEqual([]);
    await ask(object, "/report", { policy: wire({ failureThreshold: 50 }), ok: 0, fail: 50 });
    expect(state.puts).toEqual(["snapshot", "policy"]);
    state.puts.length = 0;
    await clock.advance(60_000);
    await object.alarm();
    expect(state.puts).toEqual(["snapshot"]);
  });

  for (const [name, junk] of [
    ["none (an older version)", undefined],
    ["a threshold of the wrong kind", { failureThreshold: "x" }],
    ["a field it does not know", { ...wire(), extra: 1 }],
    ["a rate out of range", { ...wire(), failureRate: 0 }],
    ["a string", "policy"],
  ] as const) {
    it(`held: a stored policy that is ${name}: the evicted object's alarm applies the breaker defaults (re-open 30 s)`, async () => {
      const clock = new TestClock(T0);
      const state = new ObjectState();
      await halfOpenWithLease(clock, state);
      if (junk === undefined) state.values.delete("policy");
      else state.values.set("policy", junk);
      const rebuilt = new BreakerStateObject(state, {}, clock);
      await state.ready;
      await clock.advance(5_000);
      await rebuilt.alarm();
      const snapshot = state.values.get("snapshot") as { state: string; openUntil: number };
      expect([snapshot.state, snapshot.openUntil - clock.now()]).toEqual(["open", 30_000]);
    });
  }

  /** An object whose stored open spell has `reason` (another version wrote it), read by an isolate over the store. */
  async function storedReason(reason: string) {
    const clock = new TestClock(T0);
    const state = new ObjectState();
    const first = new BreakerStateObject(state, {}, clock);
    await state.ready;
    await ask(first, "/report", { policy: wire(), ok: 0, fail: 0, holdUntil: T0 + 60_000, reason: "3 failures" });
    state.values.set("snapshot", { ...(state.values.get("snapshot") as object), reason });
    const object = new BreakerStateObject(state, {}, clock);
    await state.ready;
    const verdict = await ask(object, "/report", { policy: wire(), ok: 0, fail: 0 });
    const ns = {
      idFromName: (name: string) => name,
      get: (_id: never) => ({ fetch: (input: string, init?: RequestInit) => object.fetch(new Request(input, init)) }),
    };
    const context = recordingCtx();
    const r = createResilience({ clock, retry: false, store: durableObjectStore(ns, { ctx: context.ctx, clock }) });
    const seenByIsolate: string[] = [];
    r.on("store", (e) => seenByIsolate.push(`store ${e.outcome}`));
    r.on("breaker", (e) => seenByIsolate.push(`breaker ${e.reason}`));
    await (await r.fetch(`${up.base}/reason`)).arrayBuffer();
    await context.drain();
    const refused = await r.fetch(`${up.base}/reason`).catch((e: unknown) => (e as Error).name);
    return { verdict, r, seenByIsolate, refused, debug: JSON.stringify(r.debugInfo()) };
  }

  const SECRET_URL = "https://admin:hunter2-very-secret@api.example/v1?api_key=sk-live-123";

  it("held: a stored reason over 300 characters is cut to 300 and adopted (no `rejected`); one within 300 has its URL's secrets cut", async () => {
    const long = await storedReason("y".repeat(450));
    expect(String(long.verdict.reason)).toHaveLength(300);
    expect(long.refused).toBe("CircuitOpenError");
    expect(long.seenByIsolate.some((e) => e.startsWith("store"))).toBe(false);
    const whole = await storedReason(`tripped by ${SECRET_URL} failing`);
    expect(whole.refused).toBe("CircuitOpenError");
    expect(whole.debug).toContain("tripped by https://api.example/v1 failing");
    expect(whole.debug).not.toContain("hunter2");
  });

  it("defect 5: a stored reason cut at 300 inside a URL's userinfo puts part of the password in health() and events", async () => {
    // The cut falls inside the password: "… https://admin:hunter2-very-se".
    const reason = `${"x".repeat(270)} ${SECRET_URL}`;
    const { r, seenByIsolate, refused, debug } = await storedReason(reason);
    expect(refused).toBe("CircuitOpenError");
    // Documented (SECURITY.md): "URLs lose their userinfo … before they reach any of them" (events, errors,
    // `health()`, `debugInfo()`); the earlier fix: a breaker adopting a shared spell cuts the secrets of any URL in
    // its reason. Observed: health().breakers[host].reason and lastError, the `breaker` event's reason and
    // debugInfo() end in "https://admin:hunter2-very-se".
    expect(seenByIsolate.join("\n")).not.toContain("hunter2");
    expect(JSON.stringify(r.health())).not.toContain("hunter2");
    expect(debug).not.toContain("hunter2");
  });
});
