import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryExhaustedError } from "../../src/core/errors.ts";
import { corsHint } from "../../src/http/cors-hint.ts";
import { launchChromium } from "../runtimes/chromium.ts";

const page = { inBrowser: true, origin: "https://app.example" };

describe("corsHint", () => {
  it("names a cross-origin 'Failed to fetch' in a browser as probably CORS, with the headers to allow", () => {
    const hint = corsHint(new TypeError("Failed to fetch"), "https://api.example/v1/images", {
      ...page,
      headers: new Headers({ "content-type": "application/json", "idempotency-key": "k1", "x-team": "a" }),
    });
    expect(hint).toMatch(/^probably refused by the browser's CORS rules: https:\/\/api\.example must allow/);
    expect(hint).toContain("the origin https://app.example");
    expect(hint).toContain("the request headers content-type, idempotency-key, x-team"); // a JSON content-type needs the preflight too
    expect(hint).toContain("Access-Control-Allow-Origin");
  });

  it("reads Firefox's and Safari's wording too, and looks through the library's wrapping errors", () => {
    const firefox = new TypeError("NetworkError when attempting to fetch resource.");
    expect(corsHint(firefox, "https://api.example/x", page)).toMatch(/^probably/);
    expect(corsHint(new TypeError("Load failed"), "https://api.example/x", page)).toMatch(/^probably/);
    const wrapped = new RetryExhaustedError(3, new TypeError("Failed to fetch"));
    expect(corsHint(wrapped, "https://api.example/x", page)).toMatch(/^probably/);
    expect(corsHint(wrapped, "https://api.example/x", page)).not.toContain("request headers");
  });

  it("says nothing outside a browser, for the page's own origin, or for other errors", () => {
    const failed = new TypeError("Failed to fetch");
    expect(corsHint(failed, "https://api.example/x", { ...page, inBrowser: false })).toBeUndefined();
    // Node: no document, so not a browser by default.
    expect(corsHint(failed, "https://api.example/x", { origin: page.origin })).toBeUndefined();
    expect(corsHint(failed, "https://app.example/api/x", page)).toBeUndefined();
    expect(corsHint(failed, "/api/x", page)).toBeUndefined();
    expect(corsHint(new TypeError("fetch failed"), "https://api.example/x", page)).toBeUndefined();
    expect(corsHint(new Error("Failed to fetch"), "https://api.example/x", page)).toBeUndefined();
    expect(corsHint("Failed to fetch", "https://api.example/x", page)).toBeUndefined();
    expect(corsHint(failed, "https://api.example/x", { inBrowser: true })).toBeUndefined();
    expect(corsHint(failed, "http://[bad", page)).toBeUndefined();
  });
});

/**
 * Real refusals in Chromium: a page on one port, an API on another (another
 * origin) that allows only content-type in its preflight and answers one path
 * with a gateway 503 carrying no CORS header. The page runs corsHint itself.
 */
describe("corsHint in Chromium", () => {
  let pageServer: Server;
  let apiServer: Server;
  let pageUrl = "";
  let apiUrl = "";
  let hintModule = "";
  const seen: string[] = [];

  const listen = (server: Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
    );

  beforeAll(async () => {
    // The module and the ones it imports, as one script for the page: imports cut, exports kept local.
    const parts = await Promise.all(
      [
        "../../src/core/trim.ts",
        "../../src/core/kind-of.ts",
        "../../src/core/cors-safelist.ts",
        "../../src/core/page-base.ts",
        "../../src/http/cors-hint.ts",
      ].map(async (path) => {
        const source = await readFile(new URL(path, import.meta.url), "utf8");
        return ts.transpileModule(source, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText;
      }),
    );
    hintModule = parts
      .join("\n")
      .replace(/^import .*$/gm, "")
      .replace(/^export /gm, "");
    pageServer = createServer((req, res) => {
      if (req.url === "/drop") req.socket.destroy();
      else res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>page</title>");
    });
    apiServer = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      const cors = { "access-control-allow-origin": "*" };
      if (req.method === "OPTIONS") {
        res.writeHead(204, { ...cors, "access-control-allow-headers": "content-type" }).end();
      } else if (req.url?.startsWith("/retry-after")) {
        const expose = req.url.endsWith("exposed") ? { "access-control-expose-headers": "Retry-After" } : {};
        res.writeHead(503, { ...cors, ...expose, "retry-after": "2" }).end("busy");
      } else if (req.url === "/gateway-503") {
        res.writeHead(503, { "content-type": "text/html" }).end("<h1>503 Service Temporarily Unavailable</h1>");
      } else {
        res.writeHead(200, { ...cors, "content-type": "application/json" }).end('{"ok":true}');
      }
    });
    pageUrl = await listen(pageServer);
    apiUrl = await listen(apiServer);
  });

  afterAll(async () => {
    for (const server of [pageServer, apiServer]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("hints at CORS for a refused preflight and a gateway 503 without CORS headers, not for a same-origin failure; hides an unexposed Retry-After", async () => {
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      await tab.goto(pageUrl);
      // The module as the page's own script (vitest would rewrite an import() inside evaluate).
      await tab.addScriptTag({ type: "module", content: `${hintModule}\nwindow.corsHint = corsHint;` });
      await tab.waitForFunction(() => "corsHint" in window);
      const results = await tab.evaluate(
        async ({ api, self }) => {
          const { corsHint } = window as unknown as { corsHint: typeof import("../../src/http/cors-hint.ts").corsHint };
          const attempt = async (url: string, init: RequestInit = {}) => {
            try {
              const response = await fetch(url, init);
              return { status: response.status, hint: undefined, message: undefined };
            } catch (error) {
              const headers = new Headers(init.headers);
              return { status: 0, message: String((error as Error).message), hint: corsHint(error, url, { headers }) };
            }
          };
          return {
            allowed: await attempt(`${api}/images`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: "{}",
            }),
            keyed: await attempt(`${api}/images`, {
              method: "POST",
              headers: { "content-type": "application/json", "idempotency-key": "k1" },
              body: "{}",
            }),
            gateway: await attempt(`${api}/gateway-503`),
            sameOrigin: await attempt(`${self}/drop`),
            retryAfter: {
              hidden: (await fetch(`${api}/retry-after-hidden`)).headers.get("retry-after"),
              exposed: (await fetch(`${api}/retry-after-exposed`)).headers.get("retry-after"),
            },
          };
        },
        { api: apiUrl, self: pageUrl },
      );
      expect(results.allowed).toMatchObject({ status: 200 });
      expect(results.keyed.message).toBe("Failed to fetch");
      expect(results.keyed.hint).toContain(`${apiUrl} must allow the origin ${pageUrl}`);
      expect(results.keyed.hint).toContain("the request headers content-type, idempotency-key");
      expect(results.gateway.message).toBe("Failed to fetch");
      expect(results.gateway.hint).toMatch(/^probably refused by the browser's CORS rules/);
      expect(results.sameOrigin.message).toBe("Failed to fetch");
      expect(results.sameOrigin.hint).toBeUndefined();
      // Retry-After reaches page code only when the API exposes it.
      expect(results.retryAfter).toEqual({ hidden: null, exposed: "2" });
      // The keyed POST never left the browser: its preflight was refused.
      expect(seen.filter((line) => line === "POST /images")).toHaveLength(1);
      expect(seen).toContain("GET /gateway-503");
    } finally {
      await browser.close();
    }
  }, 60_000);
});
