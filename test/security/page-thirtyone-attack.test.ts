/**
 * Outside-in attack on the browser build (`dist/browser`, what a page's bundler picks through the package's
 * `browser` export condition) in a real Chromium page, after the latest changes (a chain no longer answers with
 * an earlier endpoint's 503 after a later one may have processed a keyless POST; `keepWhile`; one trim of a
 * header value).
 * Docs: docs/retry.md ("the layer also stops listening when a call settles, but for one listener it keeps on a
 * signal it links a timeout or a hedge to, however many calls that signal serves"; "the signal such a call hands
 * its transport follows yours after the call settled, as fetch's own does, so aborting then still cancels a body
 * being read, and it costs no memory per call on a signal that lives long … a page's build uses the browser's
 * own `AbortSignal.any`"; "a header name or value that is not valid (a control character other than a tab in a
 * value, CR, LF and NUL among them … in a page's build too …; the spaces, tabs and line breaks around a value are
 * no part of it: fetch trims them"; "Calls with `redirect: \"manual\"` or `\"error\"` go to the transport
 * untouched; a `redirect: \"error\"` call that meets a redirect is refused by the platform with the `TypeError`
 * of a network failure … so it is retried like one and counts against the host's breaker"; the browser build
 * "has no follower at all"); docs/fallback.md ("or rejects with `FallbackExhaustedError` … if an endpoint tried
 * after it may have processed a request that is not safe to send twice (a keyless POST whose connection dropped
 * once it went out …)"; "Credentials never cross origins"); docs/degradation.md (`levelHeader`, a rule's
 * `{ header }`, "to another origin (a fallback endpoint …) it goes … only when named in `crossOriginHeaders`");
 * docs/options.md (`crossOriginHeaders` "each entry a header name (one that is not … is a `ConfigError`)",
 * `redirects` "the browser build: only `\"platform\"`"); docs/browsers-and-cors.md (the hint, "A fallback
 * chain's `FallbackExhaustedError` carries no hint"); SECURITY.md rows "No secret in events, errors, `health()`
 * or `debugInfo()`" ("URLs lose their userinfo … query string and fragment … before they reach any of them";
 * "a URL percent-encoded into text, `https%3A%2F%2F…`, is cut as a plain one") and "The caller's mistakes never
 * trip a breaker" ("an `init` field the runtime's `Request` refuses (`redirect: \"bogus\"`, `duplex: \"full\"`, a
 * `referrer` that is no URL…) … reject at once with a `TypeError`: never retried, never counted").
 * How: Debian's Chromium (/usr/bin/chromium, never a downloaded one) through `launchChromium`
 * (test/runtimes/chromium.ts); a page on 127.0.0.1 importing the BUILT browser entries (`npm run build` first)
 * through an import map; two APIs on other 127.0.0.1 ports (other origins, CORS `*`, every header allowed),
 * recording every request; the second (`b`) closes every connection after its answer, so Chromium reuses none
 * of its sockets. CDP (`page.context().newCDPSession`): `HeapProfiler.collectGarbage`, and
 * `Runtime.queryObjects(AbortSignal.prototype)` to count the page's live `AbortSignal`s (a precise count where
 * `Runtime.getHeapUsage` moves by ~300 bytes per plain `fetch` of Chromium's own); the caller's signal's
 * `addEventListener`/`removeEventListener` wrapped to count the listeners the layer leaves on it.
 * Paths: plain call, `timeout.total`, `timeout.attempt`, a chain (with timeouts), a hedged chain (the primary
 * winning, the hedge winning), a `transform` to another path, degradation's header rules and level header, a
 * caller's `init` fields the browser refuses, `redirect: "error"` and `"follow"` against a 302.
 * (Not repeated: what test/browser/*.test.ts and test/security/cors-twentyseven-attack.test.ts check: the
 * `redirects: "library"` ConfigError, `redirect: "manual"`, streams, Retry-After through CORS, the hint's
 * headers and origin, a refused connection's redaction of the call's own query.)
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * since, plain `it`: 2 fixed, an encoded URL in a call's own URL is cut in events and `debugInfo()` too; 1 made exact in SECURITY.md):
 * 1. SECURITY.md "The caller's mistakes never trip a breaker": "… an `init` field the runtime's `Request`
 *    refuses (`redirect: \"bogus\"`, `duplex: \"full\"`, a `referrer` that is no URL…) … reject at once with a
 *    `TypeError`: never retried, never counted". Observed in the browser build: `referrer: "http://[::1/"`
 *    (and `redirect: "bogus"`, `mode: "navigate"`, `cache: "only-if-cached"` across origins) reaches
 *    Chromium's `fetch`, which throws `TypeError("Failed to execute 'fetch' on 'Window': Referrer … is not a
 *    valid URL.")`; the layer takes it for a network failure: retried (3 attempts, `RetryExhaustedError`),
 *    counted, and four such calls open the host's breaker (12 failures in a row), so the caller's next, valid
 *    call is refused with `CircuitOpenError` and never sent. docs/retry.md says so of the page's build ("A
 *    page's build leaves the last two checks out to keep its bytes: … retried and counted"); SECURITY.md's
 *    guarantee makes no such exception. Cause: the check is folded out of the browser build
 *    (`__RESILIENT_FETCH_BROWSER__`), and nothing classifies Chromium's synchronous `Failed to execute 'fetch'`
 *    TypeErrors (which no network failure says) as the caller's mistake.
 * 2. SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": "URLs lose their userinfo …, query
 *    string and fragment (where keys such as `?api_key=` live) before they reach any of them (… a URL
 *    percent-encoded into text, `https%3A%2F%2F…`, is cut as a plain one …)". Observed: a call whose URL's path
 *    carries a percent-encoded URL (`/cb/https%3A%2F%2Fu%3Apw%40h.example%2Fx%3Fkey%3DSECRET`, what
 *    `encodeURIComponent` makes of a callback or a proxied URL), or a fallback `transform` that sends such a
 *    path, shows that encoded URL's password and key whole in every `retry` event's `url` and in
 *    `debugInfo().recentErrors[].url`, while the same text inside an error's message is cut. Cause: events and
 *    `recentErrors` show the call's URL through `redactUrl` (src/core/redact-url.ts), which cuts the URL's own
 *    userinfo, query and fragment only, not the `redactUrlsIn` pass that reads encoded URLs in text.
 *
 * Held (plain `it`):
 * - Signals: 300 calls each with `timeout.total`, `timeout.attempt`, a chain with both timeouts and a hedged
 *   chain (the hedge starting on every call), all on one caller's signal: no listener left on it after each
 *   batch; the page's live `AbortSignal` count after a GC is the same after the batch as before (while a
 *   control keeping `AbortSignal.any([signal])` results grows it by one per call). An abort after the
 *   response arrived (after two GCs through CDP) still cancels the body being read, the reader rejecting with
 *   the caller's own reason and the server seeing the connection close, on the plain path, under
 *   `timeout.total`, `timeout.attempt`, a chain with timeouts, and a hedged chain whose hedge won (the losing
 *   primary closed when the hedge won).
 * - Header values: spaces, tabs, CR/LF around a value are trimmed before the server (`"  v1  "` → `v1`,
 *   `"v2\r\n"` → `v2`, a value of only whitespace → empty); CR, LF, NUL, \u0001, DEL, \v inside, or a character
 *   above U+00FF, a `TypeError` naming the header and not quoting the value, nothing sent, the host's breaker
 *   untouched (Chromium's own fetch lets \u0001, DEL and \v through to the network); a tab and Latin-1 inside,
 *   and a no-break space around, go as written. A header name with a space: a `TypeError` that does not quote it.
 * - Degradation: `levelHeader` with a space or a line break, and `crossOriginHeaders` entry `" x-trace "`,
 *   are `ConfigError`s; rule headers `"  50  "` and `" premium\r\n"` are read trimmed and sent adjusted
 *   (`20`, `basic` at `low`); in a chain to another origin, only the level header and `x-trace` named in
 *   `crossOriginHeaders` (named in capitals) cross, `authorization` and `x-other` stay home.
 * - A keyless POST answered 503 by the first endpoint whose second endpoint drops the connection after
 *   receiving it (or holds it past `timeout.attempt`): `FallbackExhaustedError` "stopped after \"second\",
 *   which may have processed the request", not the 503; the second server saw the job once, the first
 *   three times (503 is retried). Chromium itself resends a POST on a reused keep-alive connection that
 *   closes without an answer (seen 2 times for one library attempt): the layer's transport is called once.
 * - Redaction in Chromium's wording: its `Referrer '…' is not a valid URL.` quotes the referrer; the query,
 *   fragment, userinfo and a percent-encoded URL in it (once and twice encoded) are cut from the message, the
 *   cause, the chain's `errors` and the `fallback` event's reason; a URL with userinfo (percent-encoded too) is
 *   refused at once without quoting it; an invalid port quoted without its query.
 * - docs/retry.md's exception for a page's build ("there a bad value is refused by the browser when the call is
 *   sent, which the library cannot tell from a network failure (retried and counted)"): a `referrer` that is no
 *   URL and `redirect: "bogus"` are retried 3 times and counted; four such calls open the host (defect 1).
 * - `redirects`: the page's build reports `"platform"`; a followed 302 gives no `redirect` event and the
 *   first host as `endpoint`; `redirect: "error"` against a 302 is retried as a network failure (3 requests,
 *   3 failures on the breaker), with the CORS hint (docs: the library cannot tell it apart).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>page attack</title>
<script type="importmap">
  { "imports": {
    "@storycore/resilient-fetch": "/dist/browser/index.js",
    "@storycore/resilient-fetch/fallback": "/dist/browser/fallback/index.js",
    "@storycore/resilient-fetch/degradation": "/dist/browser/degradation/index.js",
    "zod/mini": "/node_modules/zod/mini/index.js"
  } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  import * as fallback from "@storycore/resilient-fetch/fallback";
  import * as degradation from "@storycore/resilient-fetch/degradation";
  window.lib = { ...lib, ...fallback, ...degradation };
</script>`;

/** What an API received. */
interface Seen {
  api: string;
  method: string;
  path: string;
  body: string;
  headers: IncomingMessage["headers"];
}
const seen: Seen[] = [];
/** Paths whose answer's connection closed (a body cancelled, a request aborted). */
const closed: string[] = [];

const CORS = { "access-control-allow-origin": "*" };

/**
 * An API on another origin. Every preflight allows every method and header. `b` closes every connection
 * after its answer (Chromium then reuses none of its sockets). Routes: `/f503` 503; `/drop` reads the
 * request and destroys the socket; `/hang` never answers; `/stream` sends headers and "first", then hangs;
 * `/slow` answers after 30 ms; `/redirect` 302 to `/ok`; `/echo` the request headers as JSON; else 200 "ok".
 */
function apiHandler(name: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const close = name === "b" ? { connection: "close" } : {};
    if (req.method === "OPTIONS") {
      return void res
        .writeHead(204, {
          ...CORS,
          ...close,
          "access-control-allow-headers": "*",
          "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
        })
        .end();
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const body = Buffer.concat(chunks).toString("latin1");
    seen.push({ api: name, method: req.method ?? "", path, body, headers: req.headers });
    res.on("close", () => {
      if (!res.writableFinished) closed.push(`${name}${path}`);
    });
    if (path.startsWith("/f503")) return void res.writeHead(503, { ...CORS, ...close }).end("busy");
    if (path.startsWith("/drop")) return void req.socket.destroy();
    if (path.startsWith("/hang")) return;
    if (path.startsWith("/stream")) {
      res.writeHead(200, { ...CORS, "content-type": "text/plain" });
      res.write("first");
      return;
    }
    if (path.startsWith("/slow")) await new Promise((r) => setTimeout(r, 30));
    if (path.startsWith("/redirect")) return void res.writeHead(302, { ...CORS, ...close, location: "/ok" }).end();
    if (path.startsWith("/echo"))
      return void res
        .writeHead(200, { ...CORS, ...close, "content-type": "application/json" })
        .end(JSON.stringify(req.headers));
    res.writeHead(200, { ...CORS, ...close }).end("ok");
  };
}

async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  const file = path.startsWith("/dist/") || path.startsWith("/node_modules/zod/") ? resolve(ROOT, `.${path}`) : "";
  let body: Buffer;
  try {
    if (!file.startsWith(ROOT)) throw new Error("outside");
    body = await readFile(file);
  } catch {
    return void res.writeHead(404).end();
  }
  res.writeHead(200, { "content-type": "text/javascript" }).end(body);
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

let servers: Server[] = [];
let pageUrl = "";
let aUrl = "";
let bUrl = "";
let browser: Browser;
let page: Page;
let cdp: CDPSession;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  const pageServer = createServer((req, res) => void pageHandler(req, res).catch(() => res.destroy()));
  const a = createServer((req, res) => void apiHandler("a")(req, res).catch(() => res.destroy()));
  const b = createServer((req, res) => void apiHandler("b")(req, res).catch(() => res.destroy()));
  servers = [pageServer, a, b];
  [pageUrl, aUrl, bUrl] = await Promise.all([listen(pageServer), listen(a), listen(b)]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

beforeEach(async () => {
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(pageUrl);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
  cdp = await page.context().newCDPSession(page);
  return async () => {
    await cdp.detach();
    await page.close();
    expect(pageErrors).toEqual([]);
  };
});

/** Runs `body` in the page as an async function of (lib, urls, show); returns what it returns. */
function inPage<T>(body: string): Promise<T> {
  return page.evaluate(
    async ({ body, urls }) => {
      const { lib } = window as unknown as { lib: unknown };
      // An error as text: name, message, cause, a chain's errors and the stack's first line.
      const show = (e: Error & { cause?: unknown; errors?: Record<string, Error> }) =>
        [
          `${e?.name}: ${e?.message}`,
          e?.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}` : String(e?.cause ?? ""),
          e?.errors
            ? Object.entries(e.errors)
                .map(([k, v]) => `${k}=${v?.message}`)
                .join("; ")
            : "",
          String(e?.stack).split("\n")[0],
        ].join(" | ");
      const fn = new Function("lib", "urls", "show", `return (async () => { ${body} })();`);
      return fn(lib, urls, show);
    },
    { body, urls: { page: pageUrl, a: aUrl, b: bUrl } },
  ) as Promise<T>;
}

const runId = () => Math.random().toString(36).slice(2, 8);
const requests = (api: string, path: string) => seen.filter((s) => s.api === api && s.path === path);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) await cdp.send("HeapProfiler.collectGarbage");
}

/** The page's live `AbortSignal` objects after a full GC. */
async function liveSignals(): Promise<number> {
  await collectGarbage();
  const proto = await cdp.send("Runtime.evaluate", { expression: "AbortSignal.prototype" });
  const found = await cdp.send("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId as string });
  const length = await cdp.send("Runtime.callFunctionOn", {
    objectId: found.objects.objectId as string,
    functionDeclaration: "function () { return this.length; }",
    returnByValue: true,
  });
  await cdp.send("Runtime.releaseObject", { objectId: found.objects.objectId as string });
  await cdp.send("Runtime.releaseObject", { objectId: proto.result.objectId as string });
  return length.result.value as number;
}

describe("a caller's long-lived signal in a page", () => {
  /** Page setup: one shutdown signal whose listeners are counted, and one layer per path. */
  const SETUP = `
    window.shutdown = new AbortController();
    const s = window.shutdown.signal;
    const live = new Set();
    const add = s.addEventListener.bind(s), remove = s.removeEventListener.bind(s);
    s.addEventListener = (type, f, o) => { live.add(f); return add(type, f, o); };
    s.removeEventListener = (type, f, o) => { live.delete(f); return remove(type, f, o); };
    window.listeners = () => live.size;
    window.kept = [];
    window.layers = {
      total: lib.createResilience({ timeout: { total: 5000 } }),
      attempt: lib.createResilience({ timeout: { attempt: 5000 } }),
      chain: lib.createResilience({ timeout: { attempt: 5000, total: 9000 }, fallback: lib.fallback([{ name: "c",
        endpoints: [{ name: "x", url: urls.a + "/chain" }, { name: "y", url: urls.b + "/chain" }] }]) }),
      hedge: lib.createResilience({ fallback: lib.fallback([{ name: "h", hedge: { delay: 5 },
        endpoints: [{ name: "x", url: urls.a + "/slow" }, { name: "y", url: urls.b + "/slow" }] }]) }),
    };
    window.run = async (kind, n) => {
      for (let i = 0; i < n; i++) {
        if (kind === "control") { kept.push(AbortSignal.any([s])); continue; }
        const url = urls.a + (kind === "hedge" ? "/slow/h" : kind === "chain" ? "/chain/c" : "/ok");
        const res = await layers[kind].fetch(url, { signal: s });
        await res.text();
      }
      return listeners();
    };
  `;

  it("300 calls each under timeout.total, timeout.attempt, a chain and a hedged chain leave no listener and no signal behind", async () => {
    await inPage(SETUP);
    const grown: Record<string, number> = {};
    const left: Record<string, number> = {};
    for (const [kind, n] of [
      ["control", 300],
      ["total", 300],
      ["attempt", 300],
      ["chain", 300],
      ["hedge", 100],
    ] as const) {
      await inPage(`await run("${kind}", 10)`);
      const before = await liveSignals();
      left[kind] = await inPage<number>(`return run("${kind}", ${n})`);
      grown[kind] = (await liveSignals()) - before;
    }
    // The control keeps what it makes: the count sees every signal.
    expect(grown.control).toBe(300);
    // Each path: none kept per call (a few in flight at the count at most).
    for (const kind of ["total", "attempt", "chain", "hedge"]) expect(grown[kind]).toBeLessThanOrEqual(3);
    expect(left).toEqual({ control: 0, total: 0, attempt: 0, chain: 0, hedge: 0 });
    // The hedge did start: both hosts were asked.
    expect(requests("b", "/slow/h").length).toBeGreaterThan(50);
  }, 60_000);

  it("an abort after the response arrived cancels the body being read, with the caller's reason, on every path", async () => {
    const out: Record<string, string> = {};
    for (const kind of ["plain", "total", "attempt", "chain", "hedge"] as const) {
      const id = `${kind}-${runId()}`;
      const first = await inPage<string>(`
        window.ctl = new AbortController();
        const kind = "${kind}";
        const r = kind === "plain" ? lib.createResilience({})
          : kind === "total" ? lib.createResilience({ timeout: { total: 5000 } })
          : kind === "attempt" ? lib.createResilience({ timeout: { attempt: 5000 } })
          : kind === "chain" ? lib.createResilience({ timeout: { attempt: 5000, total: 5000 }, fallback: lib.fallback([{ name: "c",
              endpoints: [{ name: "x", url: urls.a + "/stream" }, { name: "y", url: urls.b + "/stream" }] }]) })
          : lib.createResilience({ fallback: lib.fallback([{ name: "h", hedge: { delay: 20 },
              endpoints: [{ name: "x", url: urls.a + "/hang" }, { name: "y", url: urls.b + "/stream" }] }]) });
        const url = kind === "hedge" ? urls.a + "/hang/${id}" : urls.a + "/stream/${id}";
        const res = await r.fetch(url, { signal: ctl.signal });
        window.reader = res.body.getReader();
        const chunk = await window.reader.read();
        return new TextDecoder().decode(chunk.value) + " from " + lib.getResilienceInfo(res).endpoint;
      `);
      await collectGarbage();
      await pause(20);
      await collectGarbage();
      const read = await inPage<string>(`
        const reason = new Error("shutdown");
        const next = reader.read().then((c) => "read on: done " + c.done, (e) => e === reason ? "rejected with the reason" : "rejected: " + e);
        ctl.abort(reason);
        return Promise.race([next, new Promise((r) => setTimeout(() => r("still reading after 1 s"), 1000))]);
      `);
      await pause(50);
      const host = kind === "hedge" ? "b" : "a";
      out[kind] = `${first}; ${read}; ${closed.includes(`${host}/stream/${id}`) ? "closed" : "open"}`;
      if (kind === "hedge") expect(closed).toContain(`a/hang/${id}`); // the losing primary, aborted when the hedge won
    }
    expect(out).toEqual({
      plain: `first from ${new URL(aUrl).host}; rejected with the reason; closed`,
      total: `first from ${new URL(aUrl).host}; rejected with the reason; closed`,
      attempt: `first from ${new URL(aUrl).host}; rejected with the reason; closed`,
      chain: "first from x; rejected with the reason; closed",
      hedge: "first from y; rejected with the reason; closed",
    });
  }, 30_000);
});

describe("header values and names in a page: what reaches the server", () => {
  it("trims whitespace around values, refuses control characters inside without sending or counting, sends the rest as written", async () => {
    const id = runId();
    const out = await inPage<{ results: Record<string, string>; plain: Record<string, string>; failures: number }>(`
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
      const tries = {
        lead: "  v1  ", trail: "v2\\r\\n", blank: " \\t\\r\\n ", tab: "a\\tb", latin: "a\\u00e9b", nbsp: "\\u00a0v\\u00a0",
        lf: "a\\nb", cr: "a\\rb", crlfsp: "a\\r\\n b", nul: "a\\u0000b", ctl: "a\\u0001b", del: "a\\u007fb", vt: " \\u000bv ",
        high: "a\\u0100b",
      };
      const results = {}, plain = {};
      for (const [k, v] of Object.entries(tries)) {
        results[k] = await r.fetch(urls.a + "/echo/${id}/" + k, { headers: { ["x-" + k]: v } })
          .then(async (res) => "sent " + JSON.stringify((await res.json())["x-" + k]), (e) => e.name + ": " + e.message);
        plain[k] = await fetch(urls.a + "/echo/${id}/plain-" + k, { headers: { ["x-" + k]: v } })
          .then(async (res) => "sent", (e) => e.name);
      }
      results.name = await r.fetch(urls.a + "/echo/${id}/name", { headers: { "x-SECRET y": "1" } }).then(() => "sent", (e) => e.name + ": " + e.message);
      const breaker = r.health().breakers[new URL(urls.a).host];
      return { results, plain, failures: breaker ? breaker.failureCount : -1 };
    `);
    const refused = (h: string) =>
      `TypeError: resilience.fetch: header "x-${h}" has a control character (CR, LF, NUL…) or a character above U+00FF in its value`;
    expect(out.results).toEqual({
      lead: 'sent "v1"',
      trail: 'sent "v2"',
      blank: 'sent ""',
      tab: 'sent "a\\tb"',
      latin: 'sent "aéb"', // Node reads the byte 0xE9 as Latin-1
      nbsp: 'sent "\u00a0v\u00a0"',
      lf: refused("lf"),
      cr: refused("cr"),
      crlfsp: refused("crlfsp"),
      nul: refused("nul"),
      ctl: refused("ctl"),
      del: refused("del"),
      vt: refused("vt"),
      high: refused("high"),
      name: 'TypeError: resilience.fetch: invalid header name (" " at 8)',
    });
    expect(out.failures).toBe(0);
    // Chromium's own fetch sends three of them (as "Failed to fetch" here: the server echoes them raw).
    expect(Object.entries(out.plain).filter(([, v]) => v === "TypeError").length).toBeGreaterThanOrEqual(6);
    for (const k of ["lf", "cr", "crlfsp", "nul", "ctl", "del", "vt", "high", "name"])
      expect(requests("a", `/echo/${id}/${k}`)).toHaveLength(0);
  });

  it("degradation's header names are checked; its header rules read values trimmed; only the named headers cross origins", async () => {
    const id = runId();
    const out = await inPage<Record<string, unknown>>(`
      const config = (d, extra = {}) => { try { lib.createResilience({ degradation: lib.degradation(d), ...extra }); return "ok"; } catch (e) { return e.name + ": " + e.message; } };
      const o = {
        space: config({ levelHeader: " x-level" }),
        newline: config({ levelHeader: "x-level\\n" }),
        cross: config({}, { crossOriginHeaders: [" x-trace "] }),
      };
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" }, crossOriginHeaders: ["X-Degradation-Level", "X-Trace"],
        degradation: lib.degradation({ browserSignals: false, levelHeader: "X-Degradation-Level",
          rules: [{ params: { steps: { header: "x-steps" }, model: { header: "x-model" } } }] }),
        fallback: lib.fallback([{ name: "c", endpoints: [{ name: "p", url: urls.a + "/f503" }, { name: "q", url: urls.b + "/ok" }] }]) });
      for (let i = 0; i < 3; i++) r.degradation.degrade("test");
      const res = await r.fetch(urls.a + "/f503/${id}", { headers: {
        "x-steps": "  50  ", "x-model": " premium\\r\\n", "x-trace": " t1 ", authorization: "Bearer SECRET", "x-other": "o" } });
      o.status = res.status;
      o.info = lib.getResilienceInfo(res);
      return o;
    `);
    expect(out).toMatchObject({
      // Quoted until the fiftieth session; described since, as crossOriginHeaders' are (a header pasted whole holds its secret).
      space: "ConfigError: degradation.levelHeader: expected an HTTP header name (a token), received a string",
      newline: "ConfigError: degradation.levelHeader: expected an HTTP header name (a token), received a string",
      cross: "ConfigError: crossOriginHeaders.0: expected a header name, received a string",
      status: 200,
      info: { endpoint: "q", fromFallback: true, degradationLevel: "low" },
    });
    const pick = (h: IncomingMessage["headers"]) =>
      Object.fromEntries(Object.entries(h).filter(([k]) => /^x-|^authorization$/.test(k)));
    const first = requests("a", `/f503/${id}`);
    expect(first).toHaveLength(3);
    expect(pick(first[0]?.headers ?? {})).toEqual({
      "x-steps": "20",
      "x-model": "basic",
      "x-trace": "t1",
      "x-other": "o",
      authorization: "Bearer SECRET",
      "x-degradation-level": "low",
    });
    expect(pick(requests("b", `/ok/${id}`)[0]?.headers ?? {})).toEqual({
      "x-trace": "t1",
      "x-degradation-level": "low",
    });
  });
});

describe("a keyless POST down a chain in a page", () => {
  const chain = (id: string, second: string, extra = "") => `
    const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" }, ${extra}
      fallback: lib.fallback([{ name: "jobs", endpoints: [{ name: "first", url: urls.a + "/f503" }, { name: "second", url: urls.b + "${second}" }] }]) });
    const events = [];
    r.on("fallback", (e) => events.push(e.from + ": " + e.reason));
    const settled = await r.fetch(urls.a + "/f503/${id}?api_key=SECRET", { method: "POST", headers: { "content-type": "application/json" }, body: '{"job":1}' })
      .then((res) => "answered " + res.status, show);
    return { settled, events };
  `;

  it("503, then a dropped connection: FallbackExhaustedError 'which may have processed the request', the second server saw the job once", async () => {
    const id = runId();
    const out = await inPage<{ settled: string; events: string[] }>(chain(id, "/drop"));
    expect(out.settled).toMatch(
      /^FallbackExhaustedError: fallback chain "jobs" stopped after "second", which may have processed the request \(the answer "first" gave before it is not returned, as it would have the request sent again\) \(first: status 503; second: Failed to fetch\) \|/,
    );
    expect(out.settled).not.toContain("SECRET");
    expect(out.events).toEqual(["first: status 503"]);
    expect(requests("a", `/f503/${id}`)).toHaveLength(3);
    expect(requests("b", `/drop/${id}`).map((s) => s.body)).toEqual(['{"job":1}']);
  });

  it("503, then a second endpoint that holds the job past timeout.attempt: the same error, the job sent once", async () => {
    const id = runId();
    const out = await inPage<{ settled: string }>(chain(id, "/hang", "timeout: { attempt: 300 },"));
    expect(out.settled).toMatch(
      /^FallbackExhaustedError: fallback chain "jobs" stopped after "second", which may have processed the request .*second: attempt timeout of 300 ms exceeded\)/,
    );
    expect(requests("b", `/hang/${id}`)).toHaveLength(1);
  });

  it("a dropped keep-alive connection: the layer's transport is called once (Chromium itself resends the POST on a reused socket)", async () => {
    const id = runId();
    const out = await inPage<{ calls: number; settled: string }>(`
      let calls = 0;
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" }, fetch: (...args) => { calls++; return fetch(...args); } });
      await (await fetch(urls.a + "/ok")).text(); // a warm keep-alive socket to the API
      const settled = await r.fetch(urls.a + "/drop/${id}", { method: "POST", body: "job" }).then((res) => "answered " + res.status, show);
      return { calls, settled };
    `);
    expect(out.calls).toBe(1);
    expect(out.settled).toMatch(/^RetryExhaustedError: gave up after 1 attempt to 127\.0\.0\.1:\d+: Failed to fetch/);
    // Observed: 2 (Chromium's network stack resends a request whose reused connection closed unanswered).
    expect(requests("a", `/drop/${id}`).length).toBeGreaterThanOrEqual(1);
  });
});

describe("redaction as Chromium words its failures", () => {
  it("a referrer Chromium refuses is quoted without its query, fragment, userinfo or the encoded URL in it, in errors, causes, chains and events", async () => {
    const out = await inPage<{ texts: string[]; events: string; userinfo: string[]; port: string }>(`
      const r = lib.createResilience({ retry: { initialDelay: 1, jitter: "none" }, breaker: { failureThreshold: 1000 },
        fallback: lib.fallback([{ name: "c", endpoints: [{ name: "p", url: urls.a + "/f503" }, { name: "q", url: urls.b + "/ok" }] }]) });
      const events = [];
      r.on("fallback", (e) => events.push(e));
      const texts = [];
      for (const referrer of [
        "http://[::1/?api_key=SECRET1#frag",
        "http://u:SECRET2@[::1/",
        "http://[::1/" + encodeURIComponent("https://u:SECRET3@h.example/x?key=SECRET4"),
        "http://[::1/" + encodeURIComponent(encodeURIComponent("https://u:SECRET5@h.example/x?key=SECRET6")),
      ]) {
        texts.push(await r.fetch(urls.a + "/ok?api_key=SECRET7", { referrer }).then(() => "answered", show));
        texts.push(await r.fetch(urls.a + "/f503/x?api_key=SECRET8", { referrer }).then(() => "answered", show));
      }
      const userinfo = [
        await r.fetch("http://user:SECRET9@127.0.0.1:1/x?api_key=SECRET10").then(() => "answered", show),
        await r.fetch("http://user:p%40SECRET11@127.0.0.1:1/x").then(() => "answered", show),
      ];
      const port = await r.fetch("http://127.0.0.1:99999/x?api_key=SECRET12").then(() => "answered", show);
      return { texts, events: JSON.stringify(events), userinfo, port };
    `);
    for (const text of [...out.texts, out.events, ...out.userinfo, out.port]) expect(text).not.toMatch(/SECRET|frag/);
    expect(out.texts[0]).toMatch(
      /^RetryExhaustedError: gave up after 3 attempts to 127\.0\.0\.1:\d+: Failed to execute 'fetch' on 'Window': Referrer 'http:\/\/\[::1\/' is not a valid URL\. \| TypeError: /,
    );
    expect(out.texts[4]).toContain("Referrer 'http://[::1/https%3A%2F%2Fh.example%2Fx' is not a valid URL.");
    expect(out.texts[5]).toMatch(
      /^FallbackExhaustedError: every endpoint of fallback chain "c" failed \(p: Failed to execute/,
    );
    expect(out.userinfo).toEqual([
      "TypeError: resilience.fetch: http://127.0.0.1:1/x includes credentials (user:pass@); send them in a header |  |  | TypeError: resilience.fetch: http://127.0.0.1:1/x includes credentials (user:pass@); send them in a header",
      "TypeError: resilience.fetch: http://127.0.0.1:1/x includes credentials (user:pass@); send them in a header |  |  | TypeError: resilience.fetch: http://127.0.0.1:1/x includes credentials (user:pass@); send them in a header",
    ]);
    expect(out.port).toMatch(/^TypeError: resilience\.fetch: invalid URL "http:\/\/127\.0\.0\.1:99999\/x"/);
  });

  // Defect 2 (see the header).
  it("a percent-encoded URL in a call's path loses its userinfo and key in retry events and debugInfo, as in error text", async () => {
    const out = await inPage<{ events: string; recent: string; message: string }>(`
      const r = lib.createResilience({ retry: { initialDelay: 1, jitter: "none" },
        fallback: lib.fallback([{ name: "c", endpoints: [
          { name: "p", url: urls.a + "/f503" },
          { name: "q", url: "http://127.0.0.1:1/t", transform: (req) => ({ ...req, url: "http://127.0.0.1:1/cb/" + encodeURIComponent("https://u:PW2@h.example/x?key=SECRET2") }) },
        ] }]) });
      const events = [];
      r.on("retry", (e) => events.push(e));
      const message = await r.fetch("http://127.0.0.1:1/cb/" + encodeURIComponent("https://u:PW1@h.example/x?key=SECRET1")).then(() => "answered", show);
      await r.fetch(urls.a + "/f503/j").then(() => "answered", show);
      return { events: JSON.stringify(events), recent: JSON.stringify(r.debugInfo().recentErrors), message };
    `);
    // The error's text never quoted the path; the event and debugInfo do.
    expect(out.message).not.toMatch(/PW1|SECRET1/);
    expect(out.events).toContain("/cb/https%3A%2F%2Fh.example%2Fx"); // the encoded URL, cut as a plain one
    expect(out.events).not.toMatch(/PW1|SECRET1|PW2|SECRET2/);
    expect(out.recent).not.toMatch(/PW1|SECRET1/);
  });
});

describe("the caller's mistakes in a page", () => {
  // Defect 1 (see the header), made exact in SECURITY.md instead: its row now says that a page's build leaves
  // the `init` fields to the browser, whose refusal is retried and counted as a network error. This holds it.
  it("an init field Chromium refuses is retried and counted, as SECURITY.md and docs/retry.md say of a page's build", async () => {
    const id = runId();
    const out = await inPage<{ first: string; failures: number; after: string; bogus: string }>(`
      const r = lib.createResilience({ retry: { initialDelay: 1, jitter: "none" } });
      const first = await r.fetch(urls.a + "/ok/${id}", { referrer: "http://[::1/" }).then(() => "answered", show);
      for (let i = 0; i < 3; i++) await r.fetch(urls.a + "/ok/${id}", { referrer: "http://[::1/" }).catch(() => {});
      const failures = r.health().breakers[new URL(urls.a).host]?.failureCount ?? 0;
      const after = await r.fetch(urls.a + "/ok/${id}-valid").then((res) => "answered " + res.status, show);
      const other = lib.createResilience({ retry: { initialDelay: 1, jitter: "none" } });
      const bogus = await other.fetch(urls.a + "/ok/${id}", { redirect: "bogus" }).then(() => "answered", show);
      return { first, failures, after, bogus };
    `);
    expect(out.first).toMatch(/^RetryExhaustedError: gave up after 3 attempts/);
    expect(out.failures).toBe(12);
    expect(out.after).toMatch(/^CircuitOpenError: /);
    expect(out.bogus).toMatch(/^RetryExhaustedError: gave up after 3 attempts.*RequestRedirect/);
    expect(requests("a", `/ok/${id}-valid`)).toHaveLength(0);
  });
});

describe("redirects in the page's build", () => {
  it("reports 'platform'; the browser follows a 302 unseen; redirect: 'error' is retried as a network failure and counted", async () => {
    const id = runId();
    const out = await inPage<{ mode: unknown; followed: string; events: number; error: string; failures: number }>(`
      const r = lib.createResilience({ retry: { initialDelay: 1, jitter: "none" } });
      let events = 0;
      r.on("redirect", () => events++);
      const followed = await r.fetch(urls.b + "/redirect/${id}").then(async (res) =>
        res.status + " " + (await res.text()) + " redirected " + res.redirected + " endpoint " + lib.getResilienceInfo(res).endpoint, show);
      const error = await r.fetch(urls.a + "/redirect/${id}-error", { redirect: "error" }).then((res) => "answered " + res.status, show);
      return { mode: r.debugInfo().options.redirects, followed, events, error, failures: r.health().breakers[new URL(urls.a).host]?.failureCount ?? -1 };
    `);
    expect(out.mode).toBe("platform");
    expect(out.followed).toBe(`200 ok redirected true endpoint ${new URL(bUrl).host}`);
    expect(out.events).toBe(0);
    expect(out.error).toMatch(
      /^RetryExhaustedError: gave up after 3 attempts to 127\.0\.0\.1:\d+: Failed to fetch \(probably refused by the browser's CORS rules/,
    );
    expect(out.failures).toBe(3);
    expect(requests("a", `/redirect/${id}-error`)).toHaveLength(3);
  });
});
