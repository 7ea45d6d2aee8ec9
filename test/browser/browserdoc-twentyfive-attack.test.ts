/**
 * Outside-in attack on docs/browsers-and-cors.md (and README.md's browser statements), in real Chromium.
 * Docs: docs/browsers-and-cors.md "What a refusal looks like" (the CORS hint and the headers it names),
 * "How `idempotencyKey` interacts", the preflight table ("your own `x-…` ones"); docs/degradation.md
 * `levelHeader`; README.md "It runs in browsers".
 * How: Debian's Chromium through `launchChromium` (test/runtimes/chromium.ts), a page on 127.0.0.1
 * loading the BUILT browser bundle (`dist/browser`, `npm run build` first) through an import map, an API
 * on another 127.0.0.1 port (preflight allowing the headers named in `?allow=`, a gateway 503 without
 * CORS headers), and a page on an insecure origin (`http://app.test`, served by Playwright's `route`).
 * Paths: plain call to another origin (GET with a caller's header, GET with the degradation level
 * header), a same-origin POST with `retry.idempotencyKey: true` in a page that is no secure context.
 * (Not repeated: what test/browser/browser-promises.test.ts, browser-build-attack.test.ts,
 * cors-differential.test.ts and session-fifteen-browser.test.ts already check: aborts and timeouts
 * leaving no timer, Retry-After exposed or not, redirects, streams, chains' errors.)
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the hint names only headers the browser sends, a key made without randomUUID):
 * 1. docs/browsers-and-cors.md "the error's message ends with a hint that CORS is the likely cause,
 *    naming the request headers the preflight must allow (every one sent but `accept`,
 *    `accept-language`, `content-language`, `content-type` and `range` with safelisted values".
 *    Observed: a GET with `init.headers` `{ "user-agent": "my-app/1.0" }` (or `cookie`) to an API
 *    whose gateway answers 503 without CORS headers: Chromium drops the header, sends the GET with no
 *    preflight at all (the API sees one `GET`, its own HeadlessChrome user-agent, no `OPTIONS`), yet the
 *    error says "must allow the origin … and the request headers user-agent in its preflight (OPTIONS)
 *    answer" (the hint reads the call's own `Headers`, which keep forbidden names, not what the
 *    browser sends), sending the developer to fix a preflight that never happens.
 * 2. docs/browsers-and-cors.md "`retry: { idempotencyKey: true }` adds an `Idempotency-Key` header to
 *    POST and PATCH calls that have none, so they can be retried safely." Observed: in a page that is
 *    no secure context (any `http://` origin but localhost, e.g. a LAN or intranet host;
 *    `isSecureContext` false), `crypto.randomUUID` does not exist, and every POST rejects at once with
 *    `TypeError: crypto.randomUUID is not a function`, nothing sent, while the same POST through plain
 *    `fetch` gets its 200.
 *
 * Held (plain `it`):
 * - the degradation `levelHeader` is a header of the caller's own that forces a preflight (Chromium
 *   asks `x-degradation-level`); a preflight that does not allow it stops the call before the GET is
 *   sent, and the hint names `x-degradation-level`; a preflight that allows it lets the call through.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");

type Lib = typeof import("../../src/index.ts") &
  typeof import("../../src/degradation/index.ts") &
  typeof import("../../src/fallback/index.ts");

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>browserdoc</title>
<script type="importmap">
  { "imports": {
    "@storycore/resilient-fetch": "/dist/browser/index.js",
    "@storycore/resilient-fetch/degradation": "/dist/browser/degradation/index.js",
    "@storycore/resilient-fetch/fallback": "/dist/browser/fallback/index.js",
    "zod/mini": "/node_modules/zod/mini/index.js"
  } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  import * as degradation from "@storycore/resilient-fetch/degradation";
  import * as fallback from "@storycore/resilient-fetch/fallback";
  window.lib = { ...lib, ...degradation, ...fallback };
</script>`;

/** A file of the package (dist/, zod) or the page, for the page server and the routed insecure origin. */
async function asset(path: string): Promise<{ type: string; body: string | Buffer } | undefined> {
  if (path === "/") return { type: "text/html", body: PAGE };
  const file = path.startsWith("/dist/") || path.startsWith("/node_modules/zod/") ? resolve(ROOT, `.${path}`) : "";
  if (!file.startsWith(ROOT)) return undefined;
  try {
    return { type: "text/javascript", body: await readFile(file) };
  } catch {
    return undefined;
  }
}

/** What the API received: method, path, and the request headers. */
const seen: Array<{ method: string; path: string; headers: IncomingMessage["headers"] }> = [];

/**
 * The API, on another origin. Preflights allow the headers named in `?allow=`
 * (none by default). `/gateway/…` answers 503 without any CORS header (a
 * gateway's own error page); anything else answers 200 with CORS `*`.
 */
function apiHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://x");
  seen.push({ method: req.method ?? "", path: url.pathname, headers: req.headers });
  req.resume();
  const cors = { "access-control-allow-origin": "*" };
  if (req.method === "OPTIONS") {
    const allow = url.searchParams.get("allow");
    return void res
      .writeHead(204, {
        ...cors,
        ...(allow ? { "access-control-allow-headers": allow } : {}),
        "access-control-allow-methods": "GET, POST, PATCH",
      })
      .end();
  }
  if (url.pathname.startsWith("/gateway/")) return void res.writeHead(503, { "content-type": "text/html" }).end("503");
  res.writeHead(200, { ...cors, "content-type": "application/json" }).end('{"ok":true}');
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

let pageServer: Server;
let apiServer: Server;
let pageUrl = "";
let apiUrl = "";
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  pageServer = createServer((req, res) => {
    asset((req.url ?? "/").split("?")[0] as string).then(
      (found) =>
        found ? res.writeHead(200, { "content-type": found.type }).end(found.body) : res.writeHead(404).end(),
      () => res.destroy(),
    );
  });
  apiServer = createServer(apiHandler);
  [pageUrl, apiUrl] = await Promise.all([listen(pageServer), listen(apiServer)]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of [pageServer, apiServer]) {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  }
});

/** A new page at `url`, the bundle loaded as `window.lib`; page errors collected. */
async function openPage(url: string, route?: (page: Page) => Promise<void>): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  if (route) await route(page);
  await page.goto(url);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
  return { page, errors };
}

/** Runs `body` in the page as an async function of (lib, api, settle); returns what it returns. */
function inPage<T>(page: Page, body: string): Promise<T> {
  return page.evaluate(
    async ({ body, api }) => {
      const { lib } = window as unknown as { lib: Lib };
      const settle = (p: Promise<Response>) =>
        p.then(
          (res: Response) => ({ ok: true, status: res.status, name: "", message: "", attempts: 0 }),
          (e: Error & { attempts?: number }) => ({
            ok: false,
            status: 0,
            name: String(e?.name),
            message: String(e?.message),
            attempts: e?.attempts ?? 0,
          }),
        );
      const fn = new Function("lib", "api", "settle", `return (async () => { ${body} })();`);
      return fn(lib, api, settle);
    },
    { body, api: apiUrl },
  ) as Promise<T>;
}

interface Settled {
  ok: boolean;
  status: number;
  name: string;
  message: string;
  attempts: number;
}

const runId = () => Math.random().toString(36).slice(2, 8);

describe("the CORS hint names the request headers the preflight must allow", () => {
  it("names no header Chromium drops and never sends (user-agent, cookie): no preflight was even sent", async () => {
    // docs/browsers-and-cors.md: "naming the request headers the preflight must allow (every one sent but
    // `accept`, `accept-language`, `content-language`, `content-type` and `range` with safelisted values"
    const { page, errors } = await openPage(pageUrl);
    const id = runId();
    const out = await inPage<Settled[]>(
      page,
      `const r = lib.createResilience({ retry: false });
       return [
         await settle(r.fetch(api + "/gateway/ua-${id}", { headers: { "user-agent": "my-app/1.0" } })),
         await settle(r.fetch(api + "/gateway/cookie-${id}", { headers: { cookie: "session=1" } })),
       ];`,
    );
    await page.close();
    expect(errors).toEqual([]);
    // What Chromium did: the GET went without a preflight, without the caller's header.
    const received = seen.filter((s) => s.path.endsWith(id));
    expect(received.map((s) => s.method)).toEqual(["GET", "GET"]);
    expect(received[0]?.headers["user-agent"]).not.toBe("my-app/1.0");
    expect(received[1]?.headers.cookie).toBeUndefined();
    // The call failed for the gateway's missing Access-Control-Allow-Origin, and says CORS.
    for (const result of out) {
      expect(result).toMatchObject({ ok: false, name: "RetryExhaustedError", attempts: 1 });
      expect(result.message).toMatch(/Failed to fetch \(probably refused by the browser's CORS rules: /);
    }
    // Documented: only headers the browser sends are named; neither was sent (observed:
    // "… and the request headers user-agent in its preflight (OPTIONS) answer").
    expect(out[0]?.message).not.toMatch(/request headers/);
    expect(out[1]?.message).not.toMatch(/request headers/);
  });

  it("names the degradation level header, which forces a preflight as the docs' table says of your own x-… headers", async () => {
    // docs/browsers-and-cors.md table: "every non-safelisted header you send: … your own `x-…` ones";
    // docs/degradation.md: "`levelHeader: \"x-degradation-level\"` sends the level's name".
    const { page, errors } = await openPage(pageUrl);
    const id = runId();
    const out = await inPage<Settled[]>(
      page,
      `const r = lib.createResilience({ retry: false, degradation: lib.degradation({ levelHeader: "x-degradation-level" }) });
       return [
         await settle(r.fetch(api + "/refused/lvl-${id}")),
         await settle(r.fetch(api + "/allowed/lvl-${id}?allow=x-degradation-level")),
       ];`,
    );
    await page.close();
    expect(errors).toEqual([]);
    const refused = seen.filter((s) => s.path === `/refused/lvl-${id}`);
    expect(refused.map((s) => [s.method, s.headers["access-control-request-headers"]])).toEqual([
      ["OPTIONS", "x-degradation-level"],
    ]);
    expect(out[0]).toMatchObject({ ok: false, name: "RetryExhaustedError" });
    expect(out[0]?.message).toMatch(/and the request headers x-degradation-level in its preflight \(OPTIONS\) answer/);
    expect(out[1]).toMatchObject({ ok: true, status: 200 });
    const allowed = seen.filter((s) => s.path === `/allowed/lvl-${id}` && s.method === "GET");
    expect(allowed.map((s) => s.headers["x-degradation-level"])).toEqual(["full"]);
  });
});

describe("retry.idempotencyKey in a page", () => {
  it("adds an Idempotency-Key to a POST in a page that is no secure context (an http:// intranet host)", async () => {
    // docs/browsers-and-cors.md: "`retry: { idempotencyKey: true }` adds an `Idempotency-Key` header to
    // POST and PATCH calls that have none, so they can be retried safely."
    const keys: Array<string | null> = [];
    const { page, errors } = await openPage("http://app.test/", async (p) => {
      await p.route("http://app.test/**", async (route) => {
        const path = new URL(route.request().url()).pathname;
        if (path.startsWith("/api/")) {
          keys.push((await route.request().headerValue("idempotency-key")) ?? null);
          return route.fulfill({ status: 200, contentType: "application/json", body: '{"id":"img_1"}' });
        }
        const found = await asset(path);
        return found
          ? route.fulfill({ status: 200, contentType: found.type, body: found.body })
          : route.fulfill({ status: 404 });
      });
    });
    const out = await page.evaluate(async () => {
      const { lib } = window as unknown as { lib: Lib };
      const r = lib.createResilience({ retry: { idempotencyKey: true } });
      const plain = await fetch("/api/plain", { method: "POST", body: "{}" }).then(
        (res) => String(res.status),
        (e: Error) => `${e.name}: ${e.message}`,
      );
      const keyed = await r.fetch("/api/images", { method: "POST", body: "{}" }).then(
        (res) => String(res.status),
        (e: Error) => `${e.name}: ${e.message}`,
      );
      return { secure: window.isSecureContext, plain, keyed };
    });
    await page.close();
    expect(errors).toEqual([]);
    expect(out.secure).toBe(false);
    expect(out.plain).toBe("200"); // the page's own fetch works on this origin
    // Documented: the call goes, with a key (observed: "TypeError: crypto.randomUUID is not a function").
    expect(out.keyed).toBe("200");
    expect(keys).toHaveLength(2);
    expect(keys[1]).toMatch(/\S/);
  });
});
