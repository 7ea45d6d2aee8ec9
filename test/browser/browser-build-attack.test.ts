import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

/**
 * The browser build (`dist/browser`, what a page's bundler picks through the
 * package's `browser` export condition) attacked from a real Chromium page.
 * Promises checked: README.md, docs/browsers-and-cors.md, docs/retry.md
 * ("Redirects", "Bodies", "Idempotency") and docs/options.md (`redirects`).
 * Not repeated here: what test/browser/browser-promises.test.ts,
 * test/http/cors-hint.test.ts and the runtime matrix already check.
 *
 * - the page's origin (`page`): the page and dist/;
 * - the API (`api`, another port): preflight allows `content-type`,
 *   `idempotency-key` and `x-trace`; routes below;
 * - a second API (`alt`): CORS `*` on every answer except `/nocors`;
 * - a closed port (`dead`): nothing listens there.
 */
const ROOT = resolve(import.meta.dirname, "../..");

type Lib = typeof import("../../src/index.ts") & typeof import("../../src/fallback/index.ts");
interface PageGlobals {
  lib: Lib;
}

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>browser build attack</title>
<script type="importmap">
  { "imports": {
    "@storycore/resilient-fetch": "/dist/browser/index.js",
    "@storycore/resilient-fetch/fallback": "/dist/browser/fallback/index.js",
    "zod/mini": "/node_modules/zod/mini/index.js"
  } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  import * as fallback from "@storycore/resilient-fetch/fallback";
  window.lib = { ...lib, ...fallback };
</script>`;

/** Per-route request log of the API: method, path, idempotency key and body. */
const apiSeen: Array<{ method: string; path: string; key: string | null; body: string }> = [];
const counters = new Map<string, number>();

async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  const file = path.startsWith("/dist/") || path.startsWith("/node_modules/zod/") ? resolve(ROOT, `.${path}`) : "";
  if (!file.startsWith(ROOT)) return void res.writeHead(404).end();
  try {
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}

const CORS = { "access-control-allow-origin": "*" };

async function apiHandler(req: IncomingMessage, res: ServerResponse, alt: () => string): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  const path = url.pathname;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString("utf8");
  if (req.method === "OPTIONS") {
    return void res
      .writeHead(204, {
        ...CORS,
        "access-control-allow-headers": "content-type, idempotency-key, x-trace",
        "access-control-allow-methods": "GET, POST, PUT",
      })
      .end();
  }
  const key = typeof req.headers["idempotency-key"] === "string" ? req.headers["idempotency-key"] : null;
  apiSeen.push({ method: req.method ?? "", path, key, body });
  const n = (counters.get(path) ?? 0) + 1;
  counters.set(path, n);
  if (path.startsWith("/retry-after/")) {
    const expose = path.endsWith("/exposed") ? { "access-control-expose-headers": "Retry-After" } : {};
    return void res.writeHead(503, { ...CORS, ...expose, "retry-after": "100" }).end("busy");
  }
  if (path.startsWith("/flaky/")) {
    if (n < 3) return void res.writeHead(503, CORS).end("busy");
    return void res.writeHead(200, { ...CORS, "content-type": "application/json" }).end(JSON.stringify({ n, body }));
  }
  if (path.startsWith("/redirect/")) {
    const to = url.searchParams.get("to") ?? `${alt()}/echo`;
    const status = Number(url.searchParams.get("status") ?? "307");
    return void res.writeHead(status, { ...CORS, location: to }).end();
  }
  res
    .writeHead(200, { ...CORS, "content-type": "application/json" })
    .end(JSON.stringify({ method: req.method, path, body }));
}

function altHandler(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0] as string;
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    if (req.method === "OPTIONS") {
      return void res
        .writeHead(204, { ...CORS, "access-control-allow-headers": "*", "access-control-allow-methods": "*" })
        .end();
    }
    if (path === "/nocors") return void res.writeHead(200, { "content-type": "text/plain" }).end("hidden");
    if (path === "/down") return void res.writeHead(503, CORS).end("alt down");
    res
      .writeHead(200, { ...CORS, "content-type": "application/json" })
      .end(JSON.stringify({ served: "alt", method: req.method, body: Buffer.concat(chunks).toString("utf8") }));
  });
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

let pageServer: Server;
let apiServer: Server;
let altServer: Server;
let pageUrl = "";
let apiUrl = "";
let altUrl = "";
let deadUrl = "";
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  pageServer = createServer((req, res) => void pageHandler(req, res).catch(() => res.destroy()));
  apiServer = createServer((req, res) => void apiHandler(req, res, () => altUrl).catch(() => res.destroy()));
  altServer = createServer(altHandler);
  // A port nothing listens on: listen, note it, close.
  const dead = createServer();
  deadUrl = await listen(dead);
  await new Promise((r) => dead.close(r));
  [pageUrl, apiUrl, altUrl] = await Promise.all([listen(pageServer), listen(apiServer), listen(altServer)]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of [pageServer, apiServer, altServer]) {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  }
});

beforeEach(async () => {
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(pageUrl);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
  return async () => {
    await page.close();
    expect(pageErrors).toEqual([]);
  };
});

/** Runs `body` in the page as an async function of (lib, urls); returns what it returns. */
function inPage<T>(body: string): Promise<T> {
  return page.evaluate(
    async ({ body, urls }) => {
      const { lib } = window as unknown as PageGlobals;
      const settle = (p: Promise<Response>) =>
        p.then(
          async (res: Response) => ({
            ok: true,
            status: res.status,
            type: res.type,
            redirected: res.redirected,
            url: res.url,
            text: await res.text().catch((e: Error) => `unreadable: ${e.message}`),
            attempts: lib.getResilienceInfo(res)?.attempts ?? null,
          }),
          (e: Error & { attempts?: number; cause?: unknown }) => ({
            ok: false,
            name: e?.name,
            message: String(e?.message),
            attempts: e?.attempts ?? null,
            cause:
              e?.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}` : e?.cause ? String(e.cause) : null,
            exhausted: lib.isRetryExhaustedError(e),
          }),
        );
      const fn = new Function("lib", "urls", "settle", `return (async () => { ${body} })();`);
      return fn(lib, urls, settle);
    },
    { body, urls: { page: pageUrl, api: apiUrl, alt: altUrl, dead: deadUrl } },
  ) as Promise<T>;
}

const runId = () => Math.random().toString(36).slice(2, 8);

/** What `settle` returns in the page. */
interface Settled {
  ok: boolean;
  status?: number;
  type?: string;
  redirected?: boolean;
  url?: string;
  text?: string;
  name?: string;
  message?: string;
  attempts: number | null;
  cause?: string | null;
  exhausted?: boolean;
}

const count = (path: string) => apiSeen.filter((s) => s.path === path);

describe("redirects in the browser build, in a page", () => {
  it("refuses redirects: 'library' with a ConfigError; redirect: 'manual' answers the opaque redirect once, not a breaker failure", async () => {
    const id = runId();
    const out = await inPage<{ library: string; manual: Settled; failures: number }>(`
      let library = "created";
      try { lib.createResilience({ redirects: "library" }); } catch (e) { library = e.name + ": " + e.message; }
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
      const manual = await settle(r.fetch(urls.api + "/redirect/${id}?status=302", { redirect: "manual" }));
      const breaker = r.health().breakers[new URL(urls.api).host];
      return { library, manual, failures: breaker ? breaker.failureCount : -1 };
    `);
    expect(out.library).toBe(
      'ConfigError: redirects: expected "platform" (the browser build leaves redirects to the browser), received "library"',
    );
    // docs/retry.md: 'Calls with redirect: "manual" or "error" go to the transport untouched.'
    expect(out.manual).toMatchObject({ ok: true, status: 0, type: "opaqueredirect", attempts: 1 });
    expect(out.failures).toBe(0);
    expect(count(`/redirect/${id}`)).toHaveLength(1);
  });

  it("a JSON POST answered 307 to another origin is followed by the browser with its body, as one attempt", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
      return settle(r.fetch(urls.api + "/redirect/${id}", {
        method: "POST", headers: { "content-type": "application/json" }, body: '{"a":1}',
      }));
    `);
    expect(out).toMatchObject({ ok: true, status: 200, redirected: true, url: `${altUrl}/echo`, attempts: 1 });
    expect(JSON.parse(out.text ?? "")).toEqual({ served: "alt", method: "POST", body: '{"a":1}' });
  });

  // Was a defect, fixed: after a redirect the browser followed to another origin that sends no CORS
  // headers, the hint told the first API (whose every answer carried Access-Control-Allow-Origin) that
  // it "must allow the origin" of the page, and nothing else. The browser hides the redirect, so the
  // hint now says the origins it redirects to must allow the page too.
  it("after a redirect to an origin without CORS, the hint does not blame the API that allowed the call alone", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const r = lib.createResilience({ retry: false });
      return settle(r.fetch(urls.api + "/redirect/${id}?to=" + encodeURIComponent(urls.alt + "/nocors")));
    `);
    expect(out).toMatchObject({ ok: false, exhausted: true });
    expect(count(`/redirect/${id}`)).toHaveLength(1); // the API answered, with its CORS headers
    expect(out.message).toMatch(/probably refused by the browser's CORS rules/);
    expect(out.message).toMatch(/as must any origin it redirects to/);
  });
});

describe("bodies in a page", () => {
  it("a Request input's JSON body is replayed on every retry, with its Idempotency-Key", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
      return settle(r.fetch(new Request(urls.api + "/flaky/${id}", {
        method: "POST", headers: { "content-type": "application/json", "idempotency-key": "k-req" }, body: '{"req":1}',
      })));
    `);
    expect(out).toMatchObject({ ok: true, status: 200, attempts: 3 });
    expect(count(`/flaky/${id}`).map((s) => [s.key, s.body])).toEqual([
      ["k-req", '{"req":1}'],
      ["k-req", '{"req":1}'],
      ["k-req", '{"req":1}'],
    ]);
  });

  it("a Request input with a ReadableStream body is read into bytes and sent (which Chromium's own fetch refuses over HTTP/1.1)", async () => {
    const id = runId();
    const out = await inPage<{ library: Settled; plain: string }>(`
      const stream = () => new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } });
      const r = lib.createResilience({ retry: false });
      const library = await settle(r.fetch(new Request(urls.api + "/echo/${id}", { method: "POST", body: stream(), duplex: "half" })));
      const plain = await fetch(urls.api + "/echo/${id}-plain", { method: "POST", body: stream(), duplex: "half" })
        .then((res) => String(res.status), (e) => e.name + ": " + e.message);
      return { library, plain };
    `);
    expect(out.library).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(out.library.text ?? "").body).toBe("streamed");
    expect(out.plain).toBe("TypeError: Failed to fetch");
  });

  // Was a defect, fixed: in Chromium a streamed upload needs HTTP/2 or later, so over HTTP/1.1 every
  // call with a ReadableStream body in `init` rejects with "Failed to fetch", as Chromium's own fetch
  // does; the library's message blamed CORS although the API allows the page. It now names the
  // streamed body first (docs/browsers-and-cors.md says so); a `Request` input's stream is read into
  // bytes and works (the test above).
  it("a ReadableStream body in init over HTTP/1.1: fails as Chromium's fetch does, and the hint names the stream first", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } });
      const r = lib.createResilience({ retry: false });
      return settle(r.fetch(urls.api + "/echo/${id}", { method: "POST", body: stream }));
    `);
    expect(out).toMatchObject({ ok: false, exhausted: true });
    expect(out.message).toContain(
      "Failed to fetch (probably the streamed request body (Chromium streams uploads over HTTP/2+ only); or refused by the browser's CORS rules",
    );
  });
});

describe("Retry-After through CORS, in a page", () => {
  it("unexposed: the library waits its own backoff and retries; exposed and above maxRetryAfter: settles at once with the 503", async () => {
    const id = runId();
    const out = await inPage<{
      hidden: Settled;
      exposed: Settled;
      events: Array<{ url: string; retryAfter: boolean; delay: number }>;
    }>(`
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none", maxRetryAfter: 1000 } });
      const events = [];
      r.on("retry", (e) => events.push(e));
      const hidden = await settle(r.fetch(urls.api + "/retry-after/${id}/hidden"));
      const exposed = await settle(r.fetch(urls.api + "/retry-after/${id}/exposed"));
      return { hidden, exposed, events };
    `);
    // docs/browsers-and-cors.md: "it waits its own computed backoff instead of the server's Retry-After,
    // and a maxRetryAfter limit cannot apply."
    expect(out.hidden).toMatchObject({ ok: true, status: 503, attempts: 3, text: "busy" });
    expect(out.events.map((e) => [e.retryAfter, e.delay])).toEqual([
      [false, 5],
      [false, 10],
    ]);
    expect(out.exposed).toMatchObject({ ok: true, status: 503, attempts: 1, text: "busy" });
    expect(count(`/retry-after/${id}/exposed`)).toHaveLength(1);
  });
});

describe("network failures in a page", () => {
  it("a refused connection: 'network error' in events, a GET retried, a POST without a key sent once; no query anywhere", async () => {
    const out = await inPage<{ get: Settled; post: Settled; events: string; debug: string }>(`
      const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
      const events = [];
      r.on("retry", (e) => events.push(e));
      const get = await settle(r.fetch(urls.dead + "/v1/x?api_key=SECRET#frag"));
      const post = await settle(r.fetch(urls.dead + "/v1/y?api_key=SECRET", { method: "POST", body: "x" }));
      return { get, post, events: JSON.stringify(events), debug: JSON.stringify(r.debugInfo()) };
    `);
    expect(out.get).toMatchObject({ ok: false, exhausted: true, attempts: 3, cause: "TypeError: Failed to fetch" });
    expect(out.get.message).toMatch(/^gave up after 3 attempts to 127\.0\.0\.1:\d+: Failed to fetch/);
    expect(out.post).toMatchObject({ ok: false, exhausted: true, attempts: 1 });
    expect(JSON.parse(out.events).map((e: { reason: string }) => e.reason)).toEqual(["network error", "network error"]);
    for (const text of [out.get.message, out.post.message, out.events, out.debug]) {
      expect(text).not.toContain("SECRET");
      expect(text).not.toContain("frag");
    }
  });

  // Was a comment that claimed too much: src/http/cors-hint.ts said the hint looks through
  // FallbackExhaustedError. A chain's endpoints can be of several origins and the hint names one, so a
  // chain's error carries no hint: its message lists each endpoint's "Failed to fetch", as
  // docs/browsers-and-cors.md now says.
  it("a chain whose endpoints all refuse the page: the error lists each endpoint's browser message, with no hint", async () => {
    const out = await inPage<Settled>(`
      const r = lib.createResilience({
        retry: false,
        fallback: lib.fallback([{ name: "c", endpoints: [
          { name: "a", url: urls.alt + "/nocors" },
          { name: "b", url: urls.alt + "/nocors" },
        ] }]),
      });
      return settle(r.fetch(urls.alt + "/nocors"));
    `);
    expect(out).toMatchObject({ ok: false, name: "FallbackExhaustedError" });
    expect(out.message).toMatch(/\(a: Failed to fetch; b: Failed to fetch\)$/);
    expect(out.message).not.toMatch(/CORS/);
  });
});
