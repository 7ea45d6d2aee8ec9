import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

/**
 * The sentences the docs gained in the fifteenth session, checked from
 * outside in real Chromium (Debian's /usr/bin/chromium) against the BUILT
 * browser bundle dist/browser/index.js (`npm run build` first), through the
 * public API `createResilience` only. Skipped (not failed) when Chromium or
 * the build is missing.
 *
 * Set-up: the page on one 127.0.0.1 port; host A and host B on two others
 * (two origins, two breaker keys). Both answer CORS (`*`, preflights, and
 * `Access-Control-Expose-Headers: Retry-After`). A answers `/redirect` with a
 * 302 to B; B answers `/busy` with 503 and `Retry-After: 7200`, `/down` with
 * a plain 503, anything else with 200. Every request a host receives is recorded.
 *
 * Checked:
 * 1. docs/retry.md "Redirects": "a `Retry-After` hold on the final answer
 *    holds the host that sent it, not the first one (that one also where the
 *    browser follows, which it does without asking the library: there a hop
 *    to an open host is sent)": A→B, B's 503 `Retry-After: 7200` holds B
 *    (not A); a direct call to B is refused, nothing sent; a direct call to A
 *    is sent; with B held, a call to A that redirects to B is sent to B by
 *    Chromium, and what the library then does with B's answer is recorded.
 * 2. docs/breakers.md "A clock set back" and docs/testing.md "Without a
 *    `clock` option the layer reads `Date.now()` as it is": `Date.now`
 *    overridden in the page, a day back after a breaker opened
 *    (failureThreshold 1, timeout 30000); the first look (`health()`, or a
 *    call) re-anchors `openUntil` at the stepped now + 30000, and the host is
 *    probed 30 s of stepped `Date.now` later (not before).
 * 3. docs/options.md "A value that cannot be read (a getter that throws, a
 *    revoked `Proxy`) is a `ConfigError` naming its path too."
 * (docs/cloudflare.md is not for browsers: not checked here.)
 *
 * Failures: none. Every sentence above held in Chromium.
 *
 * Recorded, not failures (the docs say nothing against them):
 * - The redirected call's final 503 also counts as a failure against A's
 *   breaker ("the final status counts against the first host's breaker"):
 *   A stays closed under the default threshold, but a redirector whose target
 *   is held keeps collecting failures for it.
 * - With B held, Chromium sends the hop to B; B's 503 is handed to the caller
 *   (not a `CircuitOpenError`) and renews B's hold from now; a 200 from B is
 *   handed to the caller and leaves B's breaker open as it was.
 * - After the step back, `health()` still shows `lastFailureTime` at the
 *   pre-step (now future) instant.
 */
const ROOT = resolve(import.meta.dirname, "../..");

type Lib = typeof import("../../src/index.ts");
interface PageGlobals {
  lib: Lib;
}

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>session fifteen</title>
<script type="importmap">
  { "imports": { "@storycore/resilient-fetch": "/dist/browser/index.js", "zod/mini": "/node_modules/zod/mini/index.js" } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  window.lib = lib;
</script>`;

const CORS = { "access-control-allow-origin": "*", "access-control-expose-headers": "Retry-After" };
const PREFLIGHT = {
  ...CORS,
  "access-control-allow-methods": "GET, POST, PUT, DELETE, PATCH",
  "access-control-allow-headers": "*",
  "access-control-max-age": "0",
};

async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  const allowed = path.startsWith("/dist/") || path.startsWith("/node_modules/zod/");
  const file = allowed ? resolve(ROOT, `.${path}`) : undefined;
  if (!file?.startsWith(ROOT)) return void res.writeHead(404).end();
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return void res.writeHead(404).end();
  }
  res.writeHead(200, { "content-type": "text/javascript" }).end(body);
}

/** `METHOD /path?query` of every request a host received. */
const seenA: string[] = [];
const seenB: string[] = [];
let urlA = "";
let urlB = "";
let pageUrl = "";

function hostA(req: IncomingMessage, res: ServerResponse): void {
  seenA.push(`${req.method} ${req.url}`);
  req.resume();
  const url = new URL(req.url ?? "/", "http://a");
  if (req.method === "OPTIONS") return void res.writeHead(204, PREFLIGHT).end();
  if (url.pathname.startsWith("/redirect")) {
    return void res.writeHead(302, { ...CORS, location: `${urlB}${url.searchParams.get("to") ?? "/busy"}` }).end();
  }
  res.writeHead(200, { ...CORS, "content-type": "text/plain" }).end("A");
}

function hostB(req: IncomingMessage, res: ServerResponse): void {
  seenB.push(`${req.method} ${req.url}`);
  req.resume();
  const path = new URL(req.url ?? "/", "http://b").pathname;
  if (req.method === "OPTIONS") return void res.writeHead(204, PREFLIGHT).end();
  if (path.startsWith("/busy")) return void res.writeHead(503, { ...CORS, "retry-after": "7200" }).end("busy");
  if (path.startsWith("/down")) return void res.writeHead(503, CORS).end("down");
  res.writeHead(200, { ...CORS, "content-type": "text/plain" }).end("B");
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

const runId = () => `s15-${Math.random().toString(36).slice(2, 8)}`;

// Nothing is skipped, as in the other browser tests: without the build or Chromium the run fails and says why.
describe("session fifteen's docs in a Chromium page (dist/browser)", () => {
  let servers: Server[] = [];
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(resolve(ROOT, "dist/browser/index.js")))
      throw new Error("run `npm run build` first: the page loads dist/browser/");
    servers = [
      createServer((req, res) => void pageHandler(req, res).catch(() => res.destroy())),
      createServer(hostA),
      createServer(hostB),
    ];
    const [p, a, b] = await Promise.all(servers.map(listen));
    [pageUrl, urlA, urlB] = [p ?? "", a ?? "", b ?? ""];
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
    return async () => {
      await page.close();
      expect(pageErrors).toEqual([]);
    };
  });

  describe("docs/retry.md Redirects: a Retry-After hold on a followed redirect's final answer (redirects: 'platform')", () => {
    it("holds the host that sent it (B), not the first one (A); a direct call to B is refused and sends nothing, one to A is sent", async () => {
      const id = runId();
      const out = await page.evaluate(
        async ({ a, b, id }) => {
          const { lib } = window as unknown as PageGlobals;
          const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
          const settle = (p: Promise<Response>) =>
            p.then(
              (res) => ({
                status: res.status,
                redirected: res.redirected,
                url: res.url,
                retryAfter: res.headers.get("retry-after"),
                name: "",
                key: "",
              }),
              (e: Error & { key?: string }) => ({
                status: 0,
                redirected: false,
                url: "",
                retryAfter: null,
                name: e.name,
                key: e.key ?? "",
              }),
            );
          const before = Date.now();
          const first = await settle(r.fetch(`${a}/redirect/${id}?to=${encodeURIComponent(`/busy/${id}`)}`));
          const after = Date.now();
          const breakers = r.health().breakers;
          const directB = await settle(r.fetch(`${b}/direct/${id}`));
          const directA = await settle(r.fetch(`${a}/direct/${id}`));
          return {
            redirects: r.debugInfo().options.redirects,
            before,
            after,
            first,
            a: breakers[new URL(a).host],
            b: breakers[new URL(b).host],
            directB,
            directA,
          };
        },
        { a: urlA, b: urlB, id },
      );
      expect(out.redirects).toBe("platform");
      // Chromium followed the 302 itself; the page could read B's Retry-After (exposed).
      expect(out.first).toMatchObject({
        status: 503,
        redirected: true,
        url: `${urlB}/busy/${id}`,
        retryAfter: "7200",
      });
      // B held open for the 7200 s it asked (beyond the default maxRetryAfter of 60 s)…
      expect(out.b?.state).toBe("open");
      expect(out.b?.reason).toMatch(/Retry-After/);
      expect(out.b?.openUntil).toBeGreaterThanOrEqual(out.before + 7_200_000);
      expect(out.b?.openUntil).toBeLessThanOrEqual(out.after + 7_200_000);
      // …and A not held (its redirect's final status counts against it, as documented, but opens nothing).
      expect(out.a?.state).toBe("closed");
      expect(out.a?.openUntil).toBeNull();
      expect(out.a?.reason ?? "").not.toMatch(/Retry-After/);
      // A direct call to B is refused before anything is sent; one to A is sent.
      expect(out.directB).toMatchObject({ name: "CircuitOpenError", key: new URL(urlB).host });
      expect(seenB.filter((l) => l.includes(id))).toEqual([`GET /busy/${id}`]);
      expect(out.directA).toMatchObject({ status: 200, name: "" });
      expect(seenA.filter((l) => l.includes(id))).toEqual([
        `GET /redirect/${id}?to=${encodeURIComponent(`/busy/${id}`)}`,
        `GET /direct/${id}`,
      ]);
    });

    it("where the browser follows, a hop to a held host is sent: B's answer reaches the caller (recorded: a 503 renews B's hold, a 200 leaves B open)", async () => {
      const id = runId();
      const out = await page.evaluate(
        async ({ a, b, id }) => {
          const { lib } = window as unknown as PageGlobals;
          const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
          const hostB = new URL(b).host;
          const hostA = new URL(a).host;
          const settle = (p: Promise<Response>) =>
            p.then(
              (res) => ({ status: res.status, url: res.url, attempts: lib.getResilienceInfo(res)?.attempts, name: "" }),
              (e: Error) => ({ status: 0, url: "", attempts: undefined, name: e.name }),
            );
          const via = (to: string) => `${a}/redirect/${id}?to=${encodeURIComponent(to)}`;
          await settle(r.fetch(via(`/busy/${id}/1`)));
          const held = r.health().breakers[hostB];
          const heldA = r.health().breakers[hostA];
          const refused = await settle(r.fetch(`${b}/direct/${id}`));
          // B is held: the browser follows A's redirect to it all the same.
          const before = Date.now();
          const busyAgain = await settle(r.fetch(via(`/busy/${id}/2`)));
          const after = Date.now();
          const renewed = r.health().breakers[hostB];
          const aAfterBusy = r.health().breakers[hostA];
          const fine = await settle(r.fetch(via(`/fine/${id}`)));
          const afterFine = r.health().breakers[hostB];
          return { held, heldA, refused, before, after, busyAgain, renewed, aAfterBusy, fine, afterFine };
        },
        { a: urlA, b: urlB, id },
      );
      expect(out.held?.state).toBe("open");
      expect(out.refused.name).toBe("CircuitOpenError");
      // The sentence: "there a hop to an open host is sent".
      expect(seenB.filter((l) => l.includes(id))).toEqual([
        `GET /busy/${id}/1`,
        `GET /busy/${id}/2`,
        `GET /fine/${id}`,
      ]);
      // What the library does with B's 503 (Retry-After 7200) on a hop it could not refuse:
      // hands it to the caller, not retried, and renews B's hold from now.
      expect(out.busyAgain).toMatchObject({ status: 503, url: `${urlB}/busy/${id}/2`, attempts: 1, name: "" });
      expect(out.renewed?.state).toBe("open");
      expect(out.renewed?.reason).toMatch(/Retry-After/);
      expect(out.renewed?.openUntil).toBeGreaterThanOrEqual(out.before + 7_200_000);
      expect(out.renewed?.openUntil).toBeLessThanOrEqual(out.after + 7_200_000);
      expect(out.renewed?.gen).toBeGreaterThan(out.held?.gen ?? 0);
      // A is still not held; the final 503 counted as one more failure of A's (documented).
      expect(out.aAfterBusy).toMatchObject({ state: "closed", openUntil: null });
      expect(out.aAfterBusy?.failureCount).toBe((out.heldA?.failureCount ?? 0) + 1);
      // A 200 from the held B reaches the caller, and B's breaker stays as it was (open, same spell).
      expect(out.fine).toMatchObject({ status: 200, url: `${urlB}/fine/${id}`, name: "" });
      expect(out.afterFine).toMatchObject({ state: "open", openUntil: out.renewed?.openUntil, gen: out.renewed?.gen });
    });
  });

  describe("docs/breakers.md A clock set back; docs/testing.md 'Without a `clock` option the layer reads `Date.now()` as it is'", () => {
    const DAY = 86_400_000;

    it("health() as the first look after a day's step back re-anchors openUntil at now + timeout; the host is probed 30 s of Date.now later, not before", async () => {
      const id = runId();
      const out = await page.evaluate(
        async ({ b, id, DAY }) => {
          const { lib } = window as unknown as PageGlobals;
          let now = Date.now();
          Date.now = () => now;
          const key = new URL(b).host;
          const r = lib.createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 30_000 } });
          const settle = (p: Promise<Response>) =>
            p.then(
              (res) => ({ status: res.status, name: "" }),
              (e: Error) => ({ status: 0, name: e.name }),
            );
          const opening = await settle(r.fetch(`${b}/down/${id}`));
          const opened = r.health().breakers[key];
          const openedAt = now;
          now -= DAY;
          const stepped = now;
          const look = r.health().breakers[key];
          now = stepped + 29_999;
          const early = await settle(r.fetch(`${b}/early/${id}`));
          now = stepped + 30_000;
          const probe = await settle(r.fetch(`${b}/probe/${id}`));
          return { opening, opened, openedAt, stepped, look, early, probe };
        },
        { b: urlB, id, DAY },
      );
      expect(out.opening.status).toBe(503);
      expect(out.opened).toMatchObject({ state: "open", openUntil: out.openedAt + 30_000 });
      // The layer read the page's Date.now as it is (no clock option): the opening is dated by it.
      expect(out.opened?.lastFailureTime).toBe(out.openedAt);
      expect(out.look).toMatchObject({ state: "open", openUntil: out.stepped + 30_000 });
      expect(out.early.name).toBe("CircuitOpenError");
      expect(out.probe).toMatchObject({ status: 200, name: "" });
      expect(seenB.filter((l) => l.includes(id))).toEqual([`GET /down/${id}`, `GET /probe/${id}`]);
    });

    it("a call as the first look after the step is refused, re-anchors openUntil at now + timeout, and the probe goes 30 s later", async () => {
      const id = runId();
      const out = await page.evaluate(
        async ({ b, id, DAY }) => {
          const { lib } = window as unknown as PageGlobals;
          let now = Date.now();
          Date.now = () => now;
          const key = new URL(b).host;
          const r = lib.createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 30_000 } });
          const settle = (p: Promise<Response>) =>
            p.then(
              (res) => ({ status: res.status, name: "", retryAt: 0 }),
              (e: Error & { retryAt?: number }) => ({ status: 0, name: e.name, retryAt: e.retryAt ?? 0 }),
            );
          await settle(r.fetch(`${b}/down/${id}`));
          now -= DAY;
          const stepped = now;
          const first = await settle(r.fetch(`${b}/first/${id}`));
          const look = r.health().breakers[key];
          now = stepped + 29_999;
          const early = await settle(r.fetch(`${b}/early/${id}`));
          now = stepped + 30_000;
          const probe = await settle(r.fetch(`${b}/probe/${id}`));
          return { stepped, first, look, early, probe };
        },
        { b: urlB, id, DAY },
      );
      expect(out.first).toMatchObject({ name: "CircuitOpenError", retryAt: out.stepped + 30_000 });
      expect(out.look).toMatchObject({ state: "open", openUntil: out.stepped + 30_000 });
      expect(out.early.name).toBe("CircuitOpenError");
      expect(out.probe).toMatchObject({ status: 200, name: "" });
      expect(seenB.filter((l) => l.includes(id))).toEqual([`GET /down/${id}`, `GET /probe/${id}`]);
    });
  });

  describe("docs/options.md: 'A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too.'", () => {
    it("a getter that throws and a revoked Proxy as retry are ConfigErrors naming their paths", async () => {
      const out = await page.evaluate(() => {
        const { lib } = window as unknown as PageGlobals;
        const attempt = (options: () => unknown) => {
          try {
            lib.createResilience(options() as Parameters<Lib["createResilience"]>[0]);
            return { created: true, name: "", path: "", message: "", isConfigError: false };
          } catch (e) {
            const error = e as Error & { path?: string };
            return {
              created: false,
              name: error.name,
              path: error.path ?? "",
              message: error.message,
              isConfigError: e instanceof lib.ConfigError,
            };
          }
        };
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return {
          getter: attempt(() => ({
            retry: {
              get maxAttempts(): number {
                throw new Error("x");
              },
            },
          })),
          revoked: attempt(() => ({ retry: proxy })),
        };
      });
      expect(out.getter).toMatchObject({ created: false, name: "ConfigError", isConfigError: true });
      expect(out.getter.path).toBe("retry.maxAttempts");
      expect(out.getter.message).toMatch(/^retry\.maxAttempts: .*cannot be read/);
      expect(out.revoked).toMatchObject({ created: false, name: "ConfigError", isConfigError: true, path: "retry" });
      expect(out.revoked.message).toMatch(/^retry: .*cannot be read/);
    });
  });
});
