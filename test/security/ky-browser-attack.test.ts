/**
 * Outside-in attack on the ky client (`@storycore/resilient-fetch/ky`) and
 * on the browser build, through the public API only.
 *
 * - In Node: ky's own options that ky hands its transport beside the
 *   `Request` (`priority`, runtime extensions such as `cf`), on every path
 *   (plain, chain, redirect, rewrite), against a recording transport.
 * - In a real Chromium page: the BUILT browser entries (`dist/browser/ky`,
 *   `/fallback`, `/degradation`, and ky 2 from node_modules) against APIs on
 *   other origins (other ports of 127.0.0.1): the CORS hint through ky, a
 *   stream upload ky makes for `onUploadProgress`, a chain that must not
 *   send the caller's credentials to another origin, degradation's
 *   `levelHeader` in the hint.
 *
 * Not repeated here: test/ky/ky-client-attack.test.ts,
 * test/browser/browser-*.test.ts, test/security/session-changes.test.ts.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");

// ---------------------------------------------------------------------------
// Node: what ky hands its transport beside the Request

describe("ky client in Node: ky's fetch-only options reach the transport on every path", () => {
  // docs/retry.md ("Bodies"): "Every field of the caller's `init` (… `priority`, …, and runtime
  // extensions such as `cf` or `dispatcher`) reaches the transport on every path". ky hands its
  // transport `(request, { priority, cf, … })`: the fetch-only options beside the Request.
  const marker = { cacheTtl: 5 };
  const ext = { priority: "high", cf: marker } as Record<string, unknown>;
  const initOf = (init: RequestInit | undefined) => {
    const i = init as Record<string, unknown> | undefined;
    return { priority: i?.priority, cf: i?.cf };
  };

  it("plain call, chain spare, library redirect hop, degradation rewrite", async () => {
    const t = recordingFetch((sent) => {
      if (sent.url.startsWith("https://primary.example/")) return new Response("down", { status: 503 });
      if (sent.url === "https://api.example/redirect") {
        return new Response(null, { status: 307, headers: { location: "https://cdn.example/final" } });
      }
      return new Response("{}", { headers: { "content-type": "application/json" } });
    });
    const clock = new TestClock();
    const resilience = createResilience({
      clock,
      fetch: t.fetch,
      redirects: "library",
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: "https://primary.example/v1" },
            { name: "s", url: "https://spare.example/v1" },
          ],
        },
      ]),
      degradation: degradation({ rules: [{ match: "https://api.example/gen", params: { steps: "steps" } }] }),
    });
    resilience.degradation.setLevel("low");
    const api = createClient({ resilience });
    await api.get("https://api.example/plain", ext);
    await api.get("https://primary.example/v1/x", ext);
    await api.get("https://api.example/redirect", ext);
    await api.post("https://api.example/gen", { ...ext, json: { steps: 50 } });
    const seen = t.sent.map((s) => [s.url, initOf(s.init)]);
    expect(seen).toEqual([
      ["https://api.example/plain", { priority: "high", cf: marker }],
      ["https://primary.example/v1/x", { priority: "high", cf: marker }],
      ["https://spare.example/v1/x", { priority: "high", cf: marker }],
      ["https://api.example/redirect", { priority: "high", cf: marker }],
      ["https://cdn.example/final", { priority: "high", cf: marker }],
      ["https://api.example/gen", { priority: "high", cf: marker }],
    ]);
    expect(JSON.parse(t.sent[5]?.body ?? "{}").steps).toBeLessThan(50);
  });
});

// ---------------------------------------------------------------------------
// Chromium: the built browser entries in a page

type PageLib = typeof import("../../src/index.ts") &
  typeof import("../../src/fallback/index.ts") &
  typeof import("../../src/degradation/index.ts") &
  typeof import("../../src/ky/index.ts") & { ky: typeof import("ky").default };
interface PageGlobals {
  lib: PageLib;
}

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>ky and browser attack</title>
<script type="importmap">
  { "imports": {
    "@storycore/resilient-fetch": "/dist/browser/index.js",
    "@storycore/resilient-fetch/fallback": "/dist/browser/fallback/index.js",
    "@storycore/resilient-fetch/degradation": "/dist/browser/degradation/index.js",
    "@storycore/resilient-fetch/ky": "/dist/browser/ky/index.js",
    "ky": "/node_modules/ky/distribution/index.js",
    "zod/mini": "/node_modules/zod/mini/index.js"
  } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  import * as fallback from "@storycore/resilient-fetch/fallback";
  import * as degradation from "@storycore/resilient-fetch/degradation";
  import * as kyEntry from "@storycore/resilient-fetch/ky";
  import ky from "ky";
  window.lib = { ...lib, ...fallback, ...degradation, ...kyEntry, ky };
</script>`;

/** Requests the APIs received (preflights included): method, path, headers, body. */
const seen: Array<{ server: string; method: string; path: string; headers: IncomingMessage["headers"]; body: string }> =
  [];

async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  const ok = ["/dist/", "/node_modules/zod/", "/node_modules/ky/"].some((p) => path.startsWith(p));
  const file = ok ? resolve(ROOT, `.${path}`) : "";
  if (!file.startsWith(ROOT)) return void res.writeHead(404).end();
  try {
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}

/**
 * An API on its own origin. Its preflight allows the request headers named
 * in the path's first segment after `/allow-` (`/allow-content-type+x-trace/…`),
 * none for `/allow-/…`, every method. `…/down` answers 503, `…/hang` never.
 */
function apiHandler(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0] as string;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ server: name, method: req.method ?? "", path, headers: req.headers, body });
      const allow = /^\/allow-([^/]*)\//.exec(path)?.[1]?.split("+").filter(Boolean) ?? [];
      const cors = { "access-control-allow-origin": "*" };
      if (req.method === "OPTIONS") {
        const headers: Record<string, string> = { ...cors, "access-control-allow-methods": "GET, POST, PUT, PATCH" };
        if (allow.length > 0) headers["access-control-allow-headers"] = allow.join(", ");
        return void res.writeHead(204, headers).end();
      }
      if (path.endsWith("/hang")) return;
      if (path.endsWith("/down")) return void res.writeHead(503, cors).end("down");
      res
        .writeHead(200, { ...cors, "content-type": "application/json" })
        .end(JSON.stringify({ served: name, method: req.method, body }));
    });
  };
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

let servers: Server[] = [];
let pageUrl = "";
let apiUrl = "";
let altUrl = "";
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/ky/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  servers = [
    createServer((req, res) => void pageHandler(req, res).catch(() => res.destroy())),
    createServer(apiHandler("api")),
    createServer(apiHandler("alt")),
  ];
  [pageUrl, apiUrl, altUrl] = (await Promise.all(servers.map(listen))) as [string, string, string];
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

async function openPage(): Promise<() => Promise<void>> {
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(pageUrl);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
  return async () => {
    await page.close();
    expect(pageErrors).toEqual([]);
  };
}

/** What a call settled with, in the page. */
interface Settled {
  ok: boolean;
  status?: number;
  text?: string;
  name?: string;
  message?: string;
  attempts?: number | null;
  exhausted?: boolean;
  causeName?: string | null;
}

/** Runs `body` in the page as an async function of (lib, urls, settle); returns what it returns. */
function inPage<T>(body: string): Promise<T> {
  return page.evaluate(
    async ({ body, urls }) => {
      const { lib } = window as unknown as PageGlobals;
      const settle = (p: Promise<Response>) =>
        p.then(
          async (res: Response) => ({ ok: true, status: res.status, text: await res.text() }),
          (e: Error & { attempts?: number }) => ({
            ok: false,
            name: e?.name,
            message: String(e?.message),
            attempts: e?.attempts ?? null,
            exhausted: lib.isRetryExhaustedError(e),
            causeName: e?.cause instanceof Error ? e.cause.name : null,
          }),
        );
      const fn = new Function("lib", "urls", "settle", `return (async () => { ${body} })();`);
      return fn(lib, urls, settle);
    },
    { body, urls: { page: pageUrl, api: apiUrl, alt: altUrl } },
  ) as Promise<T>;
}

const runId = () => Math.random().toString(36).slice(2, 8);
const requests = (server: string, path: string, method?: string) =>
  seen.filter((s) => s.server === server && s.path === path && (method === undefined || s.method === method));

describe("the ky client in a Chromium page (dist/browser/ky)", () => {
  beforeEach(openPage);

  // docs/browsers-and-cors.md: "When such a call rejects with `RetryExhaustedError` in a page and its
  // URL is of another origin, the error's message ends with a hint … naming the request headers the
  // preflight must allow (every one sent but `accept`, …; `content-type` always …)". docs/recipes.md:
  // through ky "the layer's error is the error itself, unwrapped" (ky 2 wraps a raw network
  // TypeError in its own NetworkError).
  it("a ky JSON POST refused by the preflight: the layer's RetryExhaustedError, unwrapped, its hint naming content-type, not accept", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const api = lib.createClient({ resilience: { retry: { initialDelay: 5, jitter: "none" } } });
      return settle(api.post(urls.api + "/allow-/${id}", { json: { prompt: "cat" }, headers: { accept: "application/json" } }));
    `);
    expect(out).toMatchObject({ ok: false, name: "RetryExhaustedError", exhausted: true, attempts: 1 });
    expect(out.message).toMatch(
      /Failed to fetch \(probably refused by the browser's CORS rules: http:\/\/127\.0\.0\.1:\d+ must allow the origin http:\/\/127\.0\.0\.1:\d+ and the request headers content-type in its preflight/,
    );
    expect(requests("api", `/allow-/${id}`, "POST")).toEqual([]);
  });

  // docs/browsers-and-cors.md ("A ReadableStream request body over HTTP/1.1"): "Send bytes … or pass a
  // `Request`: its body, when at most `maxReplayBytes`, is read into bytes and sent as bytes." ky's
  // `onUploadProgress` hands the transport a Request whose body is a stream; plain ky fails over
  // HTTP/1.1 in Chromium, the layer reads it into bytes and sends them.
  it("a ky POST with onUploadProgress over HTTP/1.1: the streamed Request body is read into bytes and sent", async () => {
    const id = runId();
    const out = await inPage<{ layered: Settled; plain: Settled }>(`
      const api = lib.createClient({ resilience: { retry: false } });
      const layered = await settle(api.post(urls.api + "/allow-content-type/${id}", {
        json: { prompt: "cat" }, onUploadProgress: () => {},
      }));
      const plain = await settle(lib.ky.post(urls.api + "/allow-content-type/${id}-plain", {
        json: { prompt: "cat" }, onUploadProgress: () => {}, retry: 0,
      }));
      return { layered, plain };
    `);
    expect(out.plain).toMatchObject({ ok: false });
    expect(out.layered).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(out.layered.text ?? "{}")).toEqual({ served: "api", method: "POST", body: '{"prompt":"cat"}' });
  });

  // SECURITY.md: "Credentials never cross origins: to an origin other than the caller's (a fallback
  // endpoint …) only accept, …, content-type, idempotency-key, user-agent … go". In a page this also
  // decides whether the spare's preflight asks for `authorization` at all.
  it("a ky call down a chain in a page: the spare on another origin gets no authorization nor x-api-key", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const r = lib.createResilience({
        retry: false,
        fallback: lib.fallback([{ name: "c", endpoints: [
          { name: "p", url: urls.api + "/allow-authorization+x-api-key+content-type/${id}/down" },
          { name: "s", url: urls.alt + "/allow-content-type/${id}" },
        ] }]),
      });
      const api = lib.createClient({ resilience: r });
      return settle(api.post(urls.api + "/allow-authorization+x-api-key+content-type/${id}/down", {
        json: { a: 1 }, headers: { authorization: "Bearer SECRET", "x-api-key": "SECRET" },
      }));
    `);
    expect(out).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(out.text ?? "{}")).toMatchObject({ served: "alt", body: '{"a":1}' });
    const spare = requests("alt", `/allow-content-type/${id}`);
    expect(spare.map((s) => s.method)).toEqual(["OPTIONS", "POST"]);
    expect(spare[0]?.headers["access-control-request-headers"]).toBe("content-type");
    expect(spare[1]?.headers.authorization).toBeUndefined();
    expect(spare[1]?.headers["x-api-key"]).toBeUndefined();
  });

  // docs/degradation.md: "`levelHeader` … sends the level's name". docs/browsers-and-cors.md: the
  // hint names "the request headers the preflight must allow (every one sent but …)".
  it("degradation's levelHeader refused by a preflight: the hint names it", async () => {
    const id = runId();
    const out = await inPage<Settled>(`
      const r = lib.createResilience({
        retry: false,
        degradation: lib.degradation({ levelHeader: "x-degradation-level" }),
      });
      r.degradation.setLevel("low");
      return settle(lib.createClient({ resilience: r }).get(urls.api + "/allow-/${id}"));
    `);
    expect(out).toMatchObject({ ok: false, exhausted: true });
    expect(out.message).toMatch(/and the request headers x-degradation-level in its preflight/);
    expect(requests("api", `/allow-/${id}`, "GET")).toEqual([]);
  });
});

describe("the CORS hint in a Chromium page: safelisted names with values that are not", () => {
  beforeEach(openPage);

  /**
   * docs/browsers-and-cors.md ("What the API must allow"): "A cross-origin request … with any header
   * outside the CORS safelist (`accept`, `accept-language`, `content-language`, and `content-type`
   * with a form or `text/plain` value), is preceded by an `OPTIONS` preflight", and ("What a refusal
   * looks like") the hint names "the request headers the preflight must allow (every one sent but
   * `accept`, `accept-language`, `content-language` and `range` …)".
   *
   * The Fetch standard safelists those names only for safe values: an `accept` with a `"` or `:`
   * (JSON:API's `profile="https://…"`), or a `content-language` with `(`, is not safelisted, and
   * Chromium preflights it (this test's API records `Access-Control-Request-Headers: accept`, then
   * `content-language`). The preflight then must allow `accept`, and the hint names no header at all:
   * it tells the API owner to allow the origin only, which it already does (`*`). The docs' parenthetical
   * says these names are never named, so the letter of that sentence holds; what fails is the promise
   * it serves ("naming the request headers the preflight must allow") and the first section's claim that
   * only names outside the list cause a preflight. Cause: src/http/cors-hint.ts, `SAFELISTED` is
   * judged by name, never by value (nor by the 1,024-byte total the standard also sets).
   */
  it("an accept or content-language whose value is not CORS-safe forces a preflight: the hint names it", async () => {
    const id = runId();
    const out = await inPage<{ accept: Settled; language: Settled }>(`
      const api = lib.createClient({ resilience: { retry: false } });
      const accept = await settle(api.get(urls.api + "/allow-/${id}/a", {
        headers: { accept: 'application/vnd.api+json; profile="https://api.example/profiles/v1"' },
      }));
      const language = await settle(api.get(urls.api + "/allow-/${id}/l", { headers: { "content-language": "en (GB)" } }));
      return { accept, language };
    `);
    // The browser asked the API's preflight for exactly these headers, and sent neither GET.
    expect(requests("api", `/allow-/${id}/a`).map((s) => s.headers["access-control-request-headers"])).toEqual([
      "accept",
    ]);
    expect(requests("api", `/allow-/${id}/l`).map((s) => s.headers["access-control-request-headers"])).toEqual([
      "content-language",
    ]);
    expect(out.accept).toMatchObject({ ok: false, exhausted: true });
    expect(out.language).toMatchObject({ ok: false, exhausted: true });
    expect(out.accept.message).toMatch(/and the request headers accept in its preflight/);
    expect(out.language.message).toMatch(/and the request headers content-language in its preflight/);
  });
});
