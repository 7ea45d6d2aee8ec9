import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";
import { startConformanceServers } from "../runtimes/serve.ts";

/**
 * The browser promises of README.md, docs/retry.md, docs/browsers-and-cors.md,
 * docs/runtimes.md and SECURITY.md, checked in real Chromium against the BUILT
 * bundle (`npm run build` first): dist/browser/index.js (the browser build) loaded as an ES module by a
 * page, calls to other origins (other ports of 127.0.0.1).
 *
 * - the page's origin (`page`): the page, dist/, a same-origin `/drop` (socket
 *   destroyed) and `/hang` (never answers);
 * - a strict API (`strict`): its preflight allows `content-type` only (`/bare`:
 *   no request header at all), `/nocors` is a gateway 503 without CORS
 *   headers, `/hang` never answers (a simple GET, no preflight);
 * - the conformance upstream (`api`, `alt`): permissive CORS, counters and the
 *   idempotency keys it received.
 */
const ROOT = resolve(import.meta.dirname, "../..");

type Lib = typeof import("../../src/index.ts");
interface PageGlobals {
  lib: Lib;
  liveTimers: () => number;
}

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<title>browser promises</title>
<script type="importmap">
  { "imports": { "@storycore/resilient-fetch": "/dist/browser/index.js", "zod/mini": "/node_modules/zod/mini/index.js" } }
</script>
<script type="module">
  import * as lib from "@storycore/resilient-fetch";
  window.lib = lib;
</script>`;

/** Requests a server received, and a promise per path for the next one (and for its connection closing). */
class Seen {
  readonly lines: string[] = [];
  private waiters: Array<{ match: string; resolve: (req: IncomingMessage) => void }> = [];
  record(req: IncomingMessage): void {
    const line = `${req.method} ${(req.url ?? "").split("?")[0]}`;
    this.lines.push(line);
    for (const w of this.waiters.filter((w) => w.match === line)) w.resolve(req);
    this.waiters = this.waiters.filter((w) => w.match !== line);
  }
  next(line: string): Promise<IncomingMessage> {
    return new Promise((resolve) => this.waiters.push({ match: line, resolve }));
  }
}

const held = new Set<ServerResponse>();
const strictSeen = new Seen();

async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] as string;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  if (path === "/drop") return void req.socket.destroy();
  if (path === "/hang") return void held.add(res);
  const base = path.startsWith("/dist/") ? ROOT : path.startsWith("/node_modules/zod/") ? ROOT : undefined;
  const file = base ? resolve(base, `.${path}`) : undefined;
  if (!file?.startsWith(ROOT)) return void res.writeHead(404).end();
  try {
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}

function strictHandler(req: IncomingMessage, res: ServerResponse): void {
  strictSeen.record(req);
  req.resume();
  const path = (req.url ?? "/").split("?")[0];
  const cors = { "access-control-allow-origin": "*" };
  if (req.method === "OPTIONS") {
    const allow = path === "/bare" ? {} : { "access-control-allow-headers": "content-type" };
    res.writeHead(204, { ...cors, ...allow, "access-control-allow-methods": "GET, POST" }).end();
  } else if (path === "/nocors") res.writeHead(503, { "content-type": "text/html" }).end("<h1>503</h1>");
  else if (path === "/hang") held.add(res);
  else res.writeHead(200, { ...cors, "content-type": "application/json" }).end('{"ok":true}');
}

const listen = (server: Server) =>
  new Promise<string>((r) =>
    server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

let conformance: Awaited<ReturnType<typeof startConformanceServers>>;
let pageServer: Server;
let strictServer: Server;
let pageUrl = "";
let strictUrl = "";
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  pageServer = createServer((req, res) => void pageHandler(req, res).catch(() => res.destroy()));
  strictServer = createServer(strictHandler);
  [pageUrl, strictUrl, conformance] = await Promise.all([
    listen(pageServer),
    listen(strictServer),
    startConformanceServers(),
  ]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const res of held) res.destroy();
  await conformance?.close();
  for (const server of [pageServer, strictServer]) {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  }
});

beforeEach(async () => {
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Every timer the page starts, live until it fires or is cleared (installed before the bundle loads).
  await page.addInitScript(() => {
    const live = new Set<unknown>();
    const set = window.setTimeout.bind(window);
    const clear = window.clearTimeout.bind(window);
    window.setTimeout = ((fn: TimerHandler, ms?: number, ...args: unknown[]) => {
      const id = set(
        (...a: unknown[]) => {
          live.delete(id);
          if (typeof fn === "function") (fn as (...x: unknown[]) => void)(...a);
        },
        ms,
        ...args,
      );
      live.add(id);
      return id;
    }) as typeof window.setTimeout;
    window.clearTimeout = ((id?: number) => {
      live.delete(id);
      clear(id);
    }) as typeof window.clearTimeout;
    (window as unknown as { liveTimers: () => number }).liveTimers = () => live.size;
  });
  await page.goto(pageUrl);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
  return async () => {
    await page.close();
    expect(pageErrors).toEqual([]);
  };
});

const runId = () => `bp-${Math.random().toString(36).slice(2, 8)}`;

describe("the built bundle in a Chromium page", () => {
  it("loads as an ES module, picks redirects: 'platform', and the browser follows a redirect to another origin", async () => {
    const out = await page.evaluate(
      async ({ api, alt, id }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: false });
        const res = await r.fetch(`${api}/redirect/${id}?to=${encodeURIComponent(`${alt}/auth/${id}`)}`, {
          headers: { authorization: "Bearer caller-secret" },
        });
        return {
          exports: ["createResilience", "getResilienceInfo", "isRetryExhaustedError", "TimeoutError"].filter(
            (k) => k in lib,
          ),
          redirects: r.debugInfo().options.redirects,
          status: res.status,
          redirected: res.redirected,
          body: await res.json(),
        };
      },
      { api: conformance.api, alt: conformance.alt, id: runId() },
    );
    expect(out.exports).toEqual(["createResilience", "getResilienceInfo", "isRetryExhaustedError", "TimeoutError"]);
    expect(out.redirects).toBe("platform");
    // "library" would have used redirect: "manual", which a page answers with an opaque status-0 response.
    expect(out).toMatchObject({ status: 200, redirected: true });
    expect(out.body).toMatchObject({ authorization: null, served: new URL(conformance.alt).host });
  });

  it("getResilienceInfo describes a retried response, and nothing for a response it did not produce", async () => {
    const out = await page.evaluate(
      async ({ api, id }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
        const res = await r.fetch(`${api}/flaky/${id}`);
        const plain = await fetch(`${api}/echo/${id}`);
        return { status: res.status, info: lib.getResilienceInfo(res), plain: lib.getResilienceInfo(plain) ?? null };
      },
      { api: conformance.api, id: runId() },
    );
    expect(out.status).toBe(200);
    expect(out.info).toMatchObject({
      attempts: 3,
      endpoint: new URL(conformance.api).host,
      fromFallback: false,
      degradationLevel: "full",
    });
    expect(out.info?.durationMs).toBeGreaterThanOrEqual(15); // two waits of 5 and 10 ms
    expect(out.plain).toBeNull();
  });
});

describe("the CORS hint in a Chromium page", () => {
  it("is added to a refused cross-origin call, naming the header the preflight refused; the POST never left", async () => {
    const out = await page.evaluate(
      async ({ strict }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
        const call = (url: string, init?: RequestInit) =>
          r.fetch(url, init).then(
            () => ({ name: "resolved", message: "", attempts: 0, exhausted: false }),
            (e: Error & { attempts?: number }) => ({
              name: e.name,
              message: e.message,
              attempts: e.attempts ?? 0,
              exhausted: lib.isRetryExhaustedError(e),
            }),
          );
        return {
          keyed: await call(`${strict}/images`, {
            method: "POST",
            headers: { "content-type": "application/json", "Idempotency-Key": "k-1" },
            body: "{}",
          }),
          gateway: await call(`${strict}/nocors`),
          origin: location.origin,
        };
      },
      { strict: strictUrl },
    );
    expect(out.keyed.exhausted).toBe(true);
    expect(out.keyed.attempts).toBe(3); // a keyed POST is retried like a GET
    expect(out.keyed.message).toContain(
      `Failed to fetch (probably refused by the browser's CORS rules: ${strictUrl} must allow the origin ${out.origin} and the request headers content-type, idempotency-key in its preflight (OPTIONS) answer`,
    );
    expect(out.keyed.message).toMatch(/\)$/); // the message ends with the hint
    expect(out.gateway.exhausted).toBe(true);
    expect(out.gateway.attempts).toBe(3);
    expect(out.gateway.message).toMatch(/^.*Failed to fetch \(probably refused by the browser's CORS rules: /);
    expect(out.gateway.message).not.toContain("request headers");
    expect(strictSeen.lines.filter((l) => l === "POST /images")).toEqual([]);
    expect(strictSeen.lines.filter((l) => l === "GET /nocors")).toHaveLength(3);
  });

  it("names the Idempotency-Key that retry.idempotencyKey: true adds (the docs' example)", async () => {
    const message = await page.evaluate(
      async ({ strict }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: { idempotencyKey: true, initialDelay: 5, jitter: "none" } });
        return r.fetch(`${strict}/images`, { method: "POST", body: "plain text" }).then(
          () => "resolved",
          (e: Error) => e.message,
        );
      },
      { strict: strictUrl },
    );
    expect(message).toMatch(
      /probably refused by the browser's CORS rules: .* and the request headers idempotency-key in/,
    );
  });

  /**
   * Was a defect, fixed: the hint left out `content-type`, which a JSON POST's
   * preflight must allow (docs/browsers-and-cors.md: "naming the request
   * headers the preflight must allow"). An API whose preflight answers
   * `Access-Control-Allow-Origin: *` and no `Access-Control-Allow-Headers`
   * refuses the call for `content-type` alone: the hint must name it.
   */
  it("names content-type when a JSON POST's preflight refused it", async () => {
    const message = await page.evaluate(
      async ({ strict }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: false });
        return r
          .fetch(`${strict}/bare`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
          .then(
            () => "resolved",
            (e: Error) => e.message,
          );
      },
      { strict: strictUrl },
    );
    expect(message).toMatch(/probably refused by the browser's CORS rules/);
    expect(strictSeen.lines.filter((l) => l === "POST /bare")).toEqual([]); // refused for content-type alone
    expect(message).toMatch(/the request headers content-type/);
  });

  it("is not added to a same-origin network failure, an abort or a timeout", async () => {
    const out = await page.evaluate(
      async ({ strict }) => {
        const { lib } = window as unknown as PageGlobals;
        const settle = (p: Promise<Response>) =>
          p.then(
            () => ({ name: "resolved", message: "", exhausted: false, attempts: 0 }),
            (e: Error & { attempts?: number }) => ({
              name: e.name,
              message: String(e.message),
              exhausted: lib.isRetryExhaustedError(e),
              attempts: e.attempts ?? 0,
            }),
          );
        const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
        const controller = new AbortController();
        const aborted = settle(r.fetch(`${strict}/hang?abort`, { signal: controller.signal }));
        controller.abort();
        return {
          absolute: await settle(r.fetch(`${location.origin}/drop`)),
          relative: await settle(r.fetch("/drop")),
          aborted: await aborted,
          total: await settle(
            lib.createResilience({ retry: false, timeout: { total: 200 } }).fetch(`${strict}/hang?total`),
          ),
          attempt: await settle(
            lib
              .createResilience({ retry: { initialDelay: 5, maxAttempts: 2 }, timeout: { attempt: 100 } })
              .fetch(`${strict}/hang?attempt`),
          ),
        };
      },
      { strict: strictUrl },
    );
    expect(out.absolute).toMatchObject({ exhausted: true, attempts: 3 });
    expect(out.absolute.message).toMatch(/Failed to fetch/);
    expect(out.relative).toMatchObject({ exhausted: true, attempts: 3 });
    expect(out.aborted.name).toBe("AbortError");
    expect(out.total.name).toBe("TimeoutError");
    expect(out.attempt.name).toBe("TimeoutError");
    for (const result of Object.values(out)) expect(result.message).not.toMatch(/CORS/);
  });
});

interface Settled {
  same: boolean;
  name: string;
  message: string;
  phase: string | null;
  /** From the abort (or the call's start, for a timeout) to the rejection, in ms. */
  ms: number;
  /** Timers the page still has pending once the call settled. */
  timers: number;
}

/** Starts a call in the page, kept as `window.pending`; `window.started` is when it began. */
async function startInPage(body: string): Promise<void> {
  await page.evaluate(
    ({ body, strict }) => {
      const w = window as unknown as PageGlobals & Record<string, unknown>;
      const { lib } = w;
      const start = new Function("lib", "strict", "w", body) as (l: Lib, s: string, w: unknown) => Promise<Response>;
      w.started = performance.now();
      w.pending = start(lib, strict, w).then(
        () => ({ name: "resolved", message: "", phase: null }),
        (e: Error & { phase?: string }) => ({ error: e, name: e.name, message: e.message, phase: e.phase ?? null }),
      );
    },
    { body, strict: strictUrl },
  );
}

/** Aborts `window.controller` (when there is one) and waits for the call started by `startInPage`. */
function settleInPage(abort: boolean): Promise<Settled> {
  return page.evaluate(async (abort) => {
    const w = window as unknown as PageGlobals & Record<string, unknown>;
    const reason = new Error("user left");
    let from = w.started as number;
    if (abort) {
      from = performance.now();
      (w.controller as AbortController).abort(reason);
    }
    const result = (await w.pending) as { error?: unknown; name: string; message: string; phase: string | null };
    const ms = performance.now() - from;
    const timers = w.liveTimers();
    return {
      same: result.error === reason,
      name: result.name,
      message: result.message,
      phase: result.phase,
      ms,
      timers,
    };
  }, abort);
}

/** Resolves when the response held for `path` has its connection closed by the browser. */
async function closedByBrowser(arrived: Promise<IncomingMessage>): Promise<void> {
  const req = await arrived;
  if (req.socket.destroyed) return;
  await new Promise((r) => req.socket.once("close", r));
}

describe("aborts and timeout.total in a Chromium page", () => {
  it("an abort during an attempt rejects at once with the reason, cancels the request and leaves no timer", async () => {
    const arrived = strictSeen.next("GET /hang");
    await startInPage(`w.controller = new AbortController();
      const r = lib.createResilience({ timeout: { attempt: 60000, total: 120000 } });
      return r.fetch(strict + "/hang?in-flight", { signal: w.controller.signal });`);
    await arrived;
    const out = await settleInPage(true);
    expect(out).toMatchObject({ same: true, timers: 0 });
    expect(out.ms).toBeLessThan(500);
    await closedByBrowser(arrived);
  });

  it("an abort during a backoff rejects at once with the reason and leaves no timer", async () => {
    await startInPage(`w.controller = new AbortController();
      const r = lib.createResilience({ retry: { initialDelay: 60000, jitter: "none" }, timeout: { total: 120000 } });
      w.retried = new Promise((resolve) => r.on("retry", resolve));
      return r.fetch(strict + "/nocors?backoff", { signal: w.controller.signal });`);
    const retry = await page.evaluate(() => (window as unknown as { retried: Promise<{ delay: number }> }).retried);
    expect(retry.delay).toBe(60_000);
    const out = await settleInPage(true);
    expect(out).toMatchObject({ same: true, timers: 0 });
    expect(out.ms).toBeLessThan(500);
  });

  it("timeout.total ends a hanging call when it passes, cancels the request and leaves no timer", async () => {
    const arrived = strictSeen.next("GET /hang");
    await startInPage(`const r = lib.createResilience({ timeout: { total: 300 } });
      return r.fetch(strict + "/hang?total");`);
    const out = await settleInPage(false);
    expect(out).toMatchObject({ name: "TimeoutError", phase: "total", timers: 0 });
    expect(out.ms).toBeGreaterThanOrEqual(290);
    expect(out.ms).toBeLessThan(1_300);
    await closedByBrowser(arrived);
  });

  it("timeout.total does not start a wait that would end past it", async () => {
    await startInPage(`const r = lib.createResilience({ retry: { initialDelay: 60000, jitter: "none" }, timeout: { total: 5000 } });
      return r.fetch(strict + "/nocors?short");`);
    const out = await settleInPage(false);
    // Nothing to settle with: the one network error, at once, instead of waiting 60 s or 5 s.
    expect(out.name).toBe("RetryExhaustedError");
    expect(out.message).toMatch(/^gave up after 1 attempt to [^:]+:\d+: Failed to fetch/);
    expect(out.timers).toBe(0);
    expect(out.ms).toBeLessThan(2_000);
  });
});

describe("a retried POST with an Idempotency-Key in a Chromium page", () => {
  const count = async (id: string, route: string) =>
    (await (await fetch(`${conformance.api}/__count/${id}?route=${route}`)).json()) as {
      n: number;
      keys: Array<string | null>;
    };

  it("sends the caller's key, the same on every attempt, and resolves with the last 500", async () => {
    const id = runId();
    const out = await page.evaluate(
      async ({ api, id }) => {
        const { lib } = window as unknown as PageGlobals;
        const r = lib.createResilience({ retry: { initialDelay: 5, jitter: "none" } });
        const res = await r.fetch(`${api}/always500/${id}`, {
          method: "POST",
          headers: { "content-type": "application/json", "Idempotency-Key": "k-caller" },
          body: "{}",
        });
        return { status: res.status, attempts: lib.getResilienceInfo(res)?.attempts };
      },
      { api: conformance.api, id },
    );
    expect(out).toEqual({ status: 500, attempts: 3 });
    expect(await count(id, "always500")).toMatchObject({ n: 3, keys: ["k-caller", "k-caller", "k-caller"] });
  });

  it("adds one key per call with idempotencyKey: true, retries with it, and does not retry a POST without one", async () => {
    const id = runId();
    const out = await page.evaluate(
      async ({ api, id }) => {
        const { lib } = window as unknown as PageGlobals;
        const retry = { initialDelay: 5, jitter: "none" } as const;
        const plain = await lib
          .createResilience({ retry })
          .fetch(`${api}/always500/${id}`, { method: "POST", body: "{}" });
        const keyed = lib.createResilience({ retry: { ...retry, idempotencyKey: true } });
        const flaky = await keyed.fetch(`${api}/flaky/${id}`, { method: "POST", body: "{}" });
        return {
          plain: [plain.status, lib.getResilienceInfo(plain)?.attempts],
          flaky: [flaky.status, lib.getResilienceInfo(flaky)?.attempts],
        };
      },
      { api: conformance.api, id },
    );
    expect(out).toEqual({ plain: [500, 1], flaky: [200, 3] });
    expect((await count(id, "always500")).n).toBe(1);
    const { n, keys } = await count(id, "flaky");
    expect(n).toBe(3);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(keys)).toEqual(new Set([keys[0]]));
  });
});
