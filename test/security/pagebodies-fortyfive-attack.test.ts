/**
 * Outside-in attack on the browser build's new handling of `Request` input bodies (52c30b6): in a real Chromium
 * page the layer now reads a `Request`'s body whole, as it reads a keepalive one, keeps it for replay only within
 * `maxReplayBytes`, and sends the bytes once past the limit. Every case is set beside what Chromium's own `fetch`
 * sends for the same `Request`.
 *
 * Docs:
 * - docs/retry.md "Bodies": "a `Request` input's body is read into bytes once and replayed (… replayed only within
 *   `maxReplayBytes`; read into bytes, it goes with a `content-length`, where fetch would send the `Request`'s stream
 *   chunked)"; "… except in a page's build, which reads a `Request`'s body whole, as it reads a keepalive one (to its
 *   end when the `Request` was made of a stream, under the same signal and `timeout.total`, its source cancelled at
 *   an abort), and sends the bytes once past the limit"; "A body stream that fails during that read fails the call
 *   with a `TypeError` ("the request body could not be read"), its `cause` the stream's error (one that yields a
 *   chunk other than a `Uint8Array` fails it with a `TypeError` saying "a request body stream must yield bytes"):
 *   nothing was sent, retried or counted."; "A `ReadableStream` body, or one larger than `maxReplayBytes`, is sent
 *   once on every path: no retry, no next endpoint, no hedge, no 307/308, whatever rules or a `transform` rewrite
 *   it; … (a `Request`'s body, and so every body sent through ky, which hands its transport a `Request`, is measured
 *   in the bytes it sends, framing included)"; "in a page's build a `keepalive` call whose body passes 64 KiB" is
 *   refused at once with a `TypeError`.
 * - docs/browsers-and-cors.md "A `ReadableStream` request body over HTTP/1.1": "The library sends a stream once, as
 *   given, and the hint then names the streamed body first …"; "pass a `Request`: its body, when at most
 *   `maxReplayBytes`, is read into bytes and sent as bytes, and past that the page's build reads it whole all the
 *   same (to its end when the `Request` was made of a stream) and sends the bytes once. That is what ky hands its
 *   transport, so an upload through the ky client goes over HTTP/1.1 too."; "A `keepalive` request body over 64 KiB"
 *   (`browsers send a keepalive request body of 64 KiB at most, got 70000 bytes`, "not retried nor counted").
 * - docs/degradation.md: "a keepalive one is read whole, as a keepalive request cannot send a stream, and so is any
 *   in a page's build, which sends no stream of its making, and each is rewritten as any body in memory is";
 *   "`levelHeader: "x-degradation-level"` sends the level's name".
 * - docs/fallback.md: "A body sent once (a stream, or larger than `maxReplayBytes`) goes to one endpoint only.";
 *   `transform(req)` "receives `{ method, url, headers, body, endpoint }` with `body` the parsed JSON object (typed
 *   `JsonObject | undefined`: `undefined` for a body that is no JSON object, or bytes labelled with a charset other
 *   than UTF-8 or that are no valid UTF-8, which are sent as written; …)"; `EndpointRequest.body` JSDoc (src/fallback
 *   /fallback-options.ts): "The parsed body when the request carries a JSON object …; `undefined` when there is
 *   none, or it is not a JSON object (those bodies are sent as they are)".
 * - docs/health-and-events.md: a call whose `Request` body could not be read fires `request` ("an `error` of
 *   `TypeError`, `attempts: 0`") "but nothing counts it: not `health()`, analytics, the degradation triggers nor
 *   the retry budget"; `replay` "when a body was too large to keep for retries".
 *
 * How: the BUILT browser entries (`dist/browser/` root, `./fallback`, `./degradation`, `./ky` with ky 2 from
 * node_modules through an import map; `npm run build` first), all in ONE Chromium page (test/runtimes/chromium.ts)
 * served by a node:http server on 127.0.0.1 that also records every request it gets (method, path, content-type,
 * content-length, transfer-encoding, body bytes); a second node:http server on another port for another origin (CORS
 * open, but `…refuse…` paths send no `access-control-allow-origin`). Public entries only: `createResilience`,
 * `getResilienceInfo`, `fallback`, `degradation`, `createClient`. Chromium's own `fetch` is the reference.
 *
 * Paths: `Request` input (string, FormData, URLSearchParams, typed Blob, stream with `duplex: "half"`; within and
 * past `maxReplayBytes`), plain call with retries, keepalive, caller abort, the `Request`'s own signal,
 * `timeout.total`, fallback chain (next endpoint, `transform`), hedge, degradation rewrite (JSON body, level header),
 * redirects Chromium follows (307, 303), ky client (`json`, `body` string/stream/FormData, `onUploadProgress`), the
 * CORS hint (an `init.body` stream, a `Request` given with one, a `Request` on a stream refused by CORS).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since: a transform gets the parsed JSON of any body in memory, so plain `it`):
 * 1. docs/fallback.md `transform` "receives … `body` the parsed JSON object (… `undefined` for a body that is no
 *    JSON object, or bytes labelled with a charset other than UTF-8 or that are no valid UTF-8 …)" and the
 *    `EndpointRequest.body` JSDoc ("The parsed body when the request carries a JSON object"). Observed in the page: a
 *    `Request` whose JSON body (3,036 bytes, `content-type: application/json`, UTF-8) passes `maxReplayBytes`
 *    (1,024) is read whole into bytes (a degradation rule rewrites that very body, as docs/degradation.md says it
 *    must), but `transform` gets `body: undefined`; the docs' own pattern `({ ...req, body: { ...req.body, model } })`
 *    then sends `{"model":"b"}` alone: the caller's `prompt` and `steps` never reach the endpoint. (The same holds for
 *    a string past the limit given in `init`, in any build.) Where: src/fallback/endpoint-request.ts `jsonOnce`
 *    parses only when `request.replay.allowed`, and a body past the limit is never allowed, though it is in memory
 *    (normalize-request.ts `readRequestBody` builds it with `allowed` false).
 *
 * Held (plain `it`):
 * - FormData (the `content-type` boundary is the one in the bytes sent, as Chromium's own fetch's), URLSearchParams
 *   (`application/x-www-form-urlencoded;charset=UTF-8`), a Blob typed `Application/Octet-Stream;X=1` (sent as
 *   Chromium lower-cases it), a stream (no `content-type`): the bytes Chromium sends for the same `Request`, each with
 *   a `content-length`, never chunked; within 1,024 bytes replayed on a 503, past it sent once (the 503 returned,
 *   attempts 1), 1,024 bytes exactly replayed and 1,025 not, the `replay` event giving 1,025; Chromium's own fetch of
 *   the stream `Request` fails over HTTP/1.1 ("Failed to fetch"), the layer sends it.
 * - A stream failing mid-read, below and past the limit, with an `Error`, a `DOMException` or a plain string:
 *   `TypeError` "the request body could not be read", `cause` exactly the stream's error; a chunk that is a string:
 *   "a request body stream must yield bytes"; nothing sent; `request` events with `TypeError`, attempts 0; no
 *   breaker, `errorRate` 0, `debugInfo()` totals 0; through a chain: the same `TypeError`, chain statistics at 0.
 * - Abort during the read (the caller's signal, the `Request`'s own signal, with and without `timeout.total`): the
 *   call rejects with the reason itself and the source's `cancel` gets that same reason (as Chromium's own fetch
 *   cancels it); `timeout.total`: `TimeoutError` phase `total`, the source cancelled with it; nothing sent.
 * - keepalive: a FormData `Request` whose framing takes it past 64 KiB (65,632 bytes) and a string of 65,537 are
 *   refused at once with the quota's `TypeError` (Chromium's own fetch: bare "Failed to fetch"), no breaker counts
 *   them; one of 5,000 bytes past `maxReplayBytes` goes once.
 * - ky (`createClient`): `json`, `body` strings and `body` streams within the limit retried (3 sends), past it sent
 *   once, with their bytes and `content-length`; `onUploadProgress` uploads (a JSON one retried within the limit,
 *   one past it once; a FormData one whose boundary matches its bytes) go over HTTP/1.1 where plain ky's fails.
 * - Chains: a `Request` on a stream within the limit reaches the next endpoint with the same bytes; past it, the
 *   first endpoint's 503 is the answer and the next gets nothing. Hedges: within the limit the hedge starts and
 *   wins with the same bytes; past it none starts.
 * - Degradation at `low` with `levelHeader`: a `Request` JSON body within and past the limit, and one made of a
 *   stream, rewritten (`"steps":20`) with the level header; past the limit still sent once, and so is one a rule
 *   shortened from 1,026 to 1,024 bytes.
 * - `transform`: within the limit it sees the parsed body and the next endpoint the caller's bytes; past the limit
 *   the body goes to one endpoint only.
 * - The CORS hint: an `init.body` stream (with a URL, or replacing a `Request`'s body) still goes as a stream and
 *   fails with the streamed-body hint (and the CORS one across origins); a `Request` on a stream refused by CORS
 *   gets the CORS hint alone (it went as bytes), naming its `x-a`; a cross-origin POST of a `Request` on a stream
 *   goes as bytes, without a preflight.
 *
 * Docs-silent (not pinned):
 * - A 307 to a `Request` body past the limit: Chromium follows it and sends the bytes again (as its own fetch does
 *   for a `Request` of a string), where retry.md's "sent once on every path: … no 307/308" reads as a general rule
 *   (the Redirects section says only that the browser follows; for a `Request` made of a stream Chromium's own
 *   follower would refuse the 307). A 303 goes as a GET without the body, as Chromium's.
 * - An open breaker does not fail such a call fast in a page: the body is read whole first (a slow finite stream
 *   is refused with `CircuitOpenError` only once it ended; an endless one is pulled and buffered until the caller
 *   aborts), where Node stops at `maxReplayBytes`.
 * - `timeout.total` passing while the page reads a slow `Request` body (nothing sent) counts as a failure in
 *   `health().errorRate` (1) and `debugInfo()` (a body that could not be read counts nowhere).
 * - ky's `onUploadProgress` reports the layer's read of the body (all of it, once, before a byte is sent), not the
 *   upload, and not again on a retry.
 * - A `Request` whose body a reader holds (locked, not read) is refused with Chromium's `getReader` `TypeError`, not
 *   the library's "already read (bodyUsed)" one; `init.headers` over a FormData `Request` drops its multipart
 *   `content-type`, as Chromium's own fetch does.
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

/** What `window.lib` holds in the page. */
type PageLib = typeof import("../../src/index.ts") &
  typeof import("../../src/fallback/index.ts") &
  typeof import("../../src/degradation/index.ts") &
  typeof import("../../src/ky/index.ts") & { ky: typeof import("ky").default };

const PAGE = `<!doctype html>
<meta charset="utf-8" />
<script type="importmap">
  { "imports": { "ky": "/node_modules/ky/distribution/index.js" } }
</script>
<script type="module">
  import * as root from "/dist/browser/index.js";
  import * as chains from "/dist/browser/fallback/index.js";
  import * as levels from "/dist/browser/degradation/index.js";
  import * as kyEntry from "/dist/browser/ky/index.js";
  import ky from "ky";
  window.lib = { ...root, ...chains, ...levels, ...kyEntry, ky };
</script>`;

interface Received {
  origin: "page" | "other";
  method: string;
  path: string;
  type: string | undefined;
  length: string | undefined;
  chunked: boolean;
  level: string | undefined;
  /** The body's bytes, as latin1 text (one character a byte). */
  body: string;
}
const received: Received[] = [];

/**
 * Records each request, then answers by the path's first segment: `…hang…` never, `…slow…` after 300 ms,
 * `…503…` with a 503, else 200 with the body's size; `?loc=` redirects there (`&code=`, else 307). Paths with
 * `refuse` get no `access-control-allow-origin`.
 */
function recorder(origin: "page" | "other") {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks).toString("latin1");
    received.push({
      origin,
      method: req.method ?? "",
      path: url.pathname,
      type: req.headers["content-type"],
      length: req.headers["content-length"],
      chunked: req.headers["transfer-encoding"] === "chunked",
      level: req.headers["x-level"] as string | undefined,
      body,
    });
    const cors: Record<string, string> = url.pathname.includes("refuse") ? {} : { "access-control-allow-origin": "*" };
    if (req.method === "OPTIONS") {
      return void res
        .writeHead(204, { ...cors, "access-control-allow-methods": "*", "access-control-allow-headers": "*" })
        .end();
    }
    const first = url.pathname.split("/")[1] ?? "";
    if (first.includes("hang")) return;
    if (first.includes("slow")) await new Promise((done) => setTimeout(done, 300));
    const location = url.searchParams.get("loc");
    if (location) return void res.writeHead(Number(url.searchParams.get("code") ?? 307), { ...cors, location }).end();
    res
      .writeHead(first.includes("503") ? 503 : 200, { ...cors, "content-type": "text/plain" })
      .end(String(body.length));
  };
}

let servers: Server[] = [];
let browser: Browser | undefined;
let page: Page;
let other = "";
const pageErrors: string[] = [];

async function serveFile(path: string, res: ServerResponse): Promise<void> {
  const file = resolve(ROOT, `.${path}`);
  const ok = ["/dist/browser/", "/node_modules/ky/"].some((p) => path.startsWith(p)) && file.startsWith(ROOT);
  if (!ok) return void res.writeHead(404).end();
  try {
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/browser/ky/index.js")))
    throw new Error("run `npm run build` first: the page loads dist/browser/");
  const record = recorder("page");
  const recordOther = recorder("other");
  servers = [
    createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0] as string;
      if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      if (path.startsWith("/dist/") || path.startsWith("/node_modules/")) return void serveFile(path, res);
      void record(req, res);
    }),
    createServer((req, res) => void recordOther(req, res)),
  ];
  const [origin, otherOrigin] = await Promise.all(
    servers.map(
      (s) =>
        new Promise<string>((done) =>
          s.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
        ),
    ),
  );
  other = otherOrigin as string;
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
  expect(pageErrors).toEqual([]);
});

const at = (path: string, origin: "page" | "other" = "page") =>
  received.filter((r) => r.path === path && r.origin === origin);
/** What a request looked like, its multipart boundary (if any) replaced by `B`. */
const shape = (r: Received) => {
  const boundary = /boundary=(.+)$/.exec(r.type ?? "")?.[1];
  const swap = (text: string) => (boundary ? text.split(boundary).join("B") : text);
  return { method: r.method, type: swap(r.type ?? ""), length: r.length, chunked: r.chunked, body: swap(r.body) };
};

describe("a Request input in a Chromium page (the browser build, one page)", () => {
  it("FormData, URLSearchParams, a typed Blob, a stream: the bytes Chromium sends, with a content-length; replayed within the limit, once past it", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience, getResilienceInfo } = (window as unknown as { lib: PageLib }).lib;
      const replays: unknown[] = [];
      const layer = createResilience({
        maxReplayBytes: 1024,
        retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 2, jitter: "none" },
        breaker: { failureThreshold: 100 },
      });
      layer.on("replay", (e) => replays.push(e.bytes));
      const settle = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status} attempts ${getResilienceInfo(r)?.attempts ?? "-"}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const form = (n: number) => {
        const f = new FormData();
        f.append("prompt", "p".repeat(n));
        f.append("file", new Blob(["b".repeat(n)], { type: "image/png" }), "a.png");
        return f;
      };
      const stream = (n: number) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new Uint8Array(n / 2).fill(65));
            c.enqueue(new Uint8Array(n / 2).fill(66));
            c.close();
          },
        });
      const req = (path: string, body: BodyInit) =>
        new Request(path, { method: "PUT", body, duplex: "half" } as RequestInit);
      const results: Record<string, string> = {};
      const kinds: Array<[string, (n: number) => BodyInit]> = [
        ["form", form],
        ["params", (n) => new URLSearchParams({ q: "é".repeat(n / 2) })],
        ["blob", (n) => new Blob(["x".repeat(n)], { type: "Application/Octet-Stream;X=1" })],
        ["stream", stream],
      ];
      for (const [name, make] of kinds) {
        for (const n of [200, 4000]) {
          results[`${name}-${n}`] = await settle(layer.fetch(req(`/k503/${name}-${n}`, make(n))));
          results[`${name}-${n}-native`] = await settle(fetch(req(`/k/${name}-${n}`, make(n))));
        }
      }
      results.exactly = await settle(
        layer.fetch(new Request("/k503/exactly", { method: "PUT", body: "a".repeat(1024) })),
      );
      results.oneMore = await settle(
        layer.fetch(new Request("/k503/one-more", { method: "PUT", body: "a".repeat(1025) })),
      );
      return { results, replays };
    });
    for (const name of ["form", "params", "blob"]) {
      for (const n of [200, 4000]) {
        expect(out.results[`${name}-${n}`]).toBe(n === 200 ? "503 attempts 2" : "503 attempts 1");
        expect(out.results[`${name}-${n}-native`]).toBe("200 attempts -");
        const layered = at(`/k503/${name}-${n}`);
        const [native] = at(`/k/${name}-${n}`);
        expect(layered).toHaveLength(n === 200 ? 2 : 1);
        // The same request Chromium's own fetch sends for that Request (the boundary aside, each form has its own).
        for (const sent of layered) expect(shape(sent)).toEqual(shape(native as Received));
      }
    }
    // The multipart label names the boundary the bytes use.
    for (const sent of [...at("/k503/form-200"), ...at("/k503/form-4000")]) {
      const boundary = /boundary=(.+)$/.exec(sent.type ?? "")?.[1] as string;
      expect(sent.type).toMatch(/^multipart\/form-data; boundary=/);
      expect(sent.body.startsWith(`--${boundary}\r\n`)).toBe(true);
      expect(sent.body.endsWith(`\r\n--${boundary}--\r\n`)).toBe(true);
    }
    expect(at("/k503/params-200")[0]?.type).toBe("application/x-www-form-urlencoded;charset=UTF-8");
    expect(at("/k503/blob-200")[0]?.type).toBe("application/octet-stream;x=1");
    // A stream: Chromium's own fetch cannot send it over HTTP/1.1; the layer sends its bytes, with their length.
    expect(out.results["stream-200"]).toBe("503 attempts 2");
    expect(out.results["stream-4000"]).toBe("503 attempts 1");
    expect(out.results["stream-200-native"]).toBe("TypeError: Failed to fetch");
    expect(out.results["stream-4000-native"]).toBe("TypeError: Failed to fetch");
    for (const n of [200, 4000]) {
      const sent = at(`/k503/stream-${n}`).map(shape);
      const body = "A".repeat(n / 2) + "B".repeat(n / 2);
      const one = { method: "PUT", type: "", length: String(n), chunked: false, body };
      expect(sent).toEqual(n === 200 ? [one, one] : [one]);
      expect(at(`/k/stream-${n}`)).toEqual([]);
    }
    expect([out.results.exactly, out.results.oneMore]).toEqual(["503 attempts 2", "503 attempts 1"]);
    expect(out.replays).toContain(1025);
    expect(out.replays).not.toContain(1024);
  });

  it("a stream failing mid-read, below and past the limit: the TypeError, its cause the stream's error; nothing sent or counted", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience, fallback } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const events: string[] = [];
      const layer = createResilience({
        maxReplayBytes: 1024,
        retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" },
      });
      layer.on("request", (e) => events.push(`${e.error} ${e.attempts} ${e.outcome}`));
      const errors = { plain: "plain string", dom: new DOMException("gone", "NotReadableError"), err: new Error("x") };
      const failing = (sizes: number[], error: unknown) => {
        let i = 0;
        return new ReadableStream<Uint8Array>({
          pull(c) {
            if (i < sizes.length) c.enqueue(new Uint8Array(sizes[i++] as number));
            else c.error(error);
          },
        });
      };
      const req = (path: string, body: unknown) =>
        new Request(`${O}${path}`, { method: "PUT", body, duplex: "half" } as RequestInit);
      const describe = (p: Promise<Response>, error: unknown) =>
        p.then(
          (r) => `resolved ${r.status}`,
          (e: Error) => `${e.name}: ${e.message}; cause ${e.cause === error ? "the stream's error" : String(e.cause)}`,
        );
      const results = {
        belowPlain: await describe(layer.fetch(req("/f/below-plain", failing([500], errors.plain))), errors.plain),
        pastDom: await describe(layer.fetch(req("/f/past-dom", failing([800, 800, 800], errors.dom))), errors.dom),
        pastError: await describe(layer.fetch(req("/f/past-err", failing([800, 800], errors.err))), errors.err),
        strings: await describe(
          layer.fetch(
            req(
              "/f/strings",
              new ReadableStream({
                start(c) {
                  c.enqueue("abc");
                  c.close();
                },
              }),
            ),
          ),
          "no cause",
        ),
      };
      const health = layer.health();
      const chain = createResilience({
        maxReplayBytes: 1024,
        retry: false,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "c1", url: `${O}/fc1` },
              { name: "c2", url: `${O}/fc2` },
            ],
          },
        ]),
      });
      const chained = await describe(chain.fetch(req("/fc1/x", failing([800, 800], errors.err))), errors.err);
      const stats = chain.fallback?.chain("c")?.statistics();
      return {
        results,
        events,
        breakers: health.breakers,
        errorRate: health.errorRate,
        totals: layer.debugInfo().totals,
        chained,
        calls: Object.values(stats?.fallbacks ?? {}).map((s) => s.calls),
        chainTotals: chain.debugInfo().totals,
      };
    });
    const documented = "TypeError: resilience.fetch: the request body could not be read; cause the stream's error";
    expect(out.results).toEqual({
      belowPlain: documented,
      pastDom: documented,
      pastError: documented,
      strings: expect.stringMatching(
        /^TypeError: resilience\.fetch: a request body stream must yield bytes \(Uint8Array\), got string; cause undefined$/,
      ),
    });
    expect(out.events).toEqual(Array(4).fill("TypeError 0 error"));
    expect([out.breakers, out.errorRate, out.totals]).toEqual([{}, 0, { calls: 0, failures: 0 }]);
    expect(out.chained).toBe(documented);
    expect(out.calls).toEqual([0, 0]);
    expect(out.chainTotals).toEqual({ calls: 0, failures: 0 });
    expect(received.filter((r) => r.path.startsWith("/f/") || r.path.startsWith("/fc"))).toEqual([]);
  });

  it("an abort (the caller's, the Request's own) or timeout.total during the read: the reason kept, the source cancelled with it, as Chromium's fetch cancels it", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));
      /** 1,600 bytes (past the 1,024 limit), then nothing, ever. */
      const stalled = () => {
        let pulls = 0;
        let cancelled: unknown = "not cancelled";
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (pulls++ < 2) c.enqueue(new Uint8Array(800));
            else return new Promise<void>(() => {});
          },
          cancel(reason) {
            cancelled = reason;
          },
        });
        return { body, pulls: () => pulls, cancelled: () => cancelled };
      };
      const reason = new Error("left the page");
      const named = (value: unknown) =>
        value === reason ? "the reason" : value instanceof Error ? `${value.name}: ${value.message}` : String(value);
      const results: Record<string, string> = {};
      const runs: Array<[string, "init" | "request" | "native", number | undefined]> = [
        ["caller", "init", undefined],
        ["callerWithTotal", "init", 10_000],
        ["ownSignal", "request", undefined],
        ["native", "native", undefined],
      ];
      for (const [name, where, total] of runs) {
        const layer = createResilience({
          maxReplayBytes: 1024,
          retry: false,
          ...(total ? { timeout: { total } } : {}),
        });
        const s = stalled();
        const controller = new AbortController();
        const init = { method: "PUT", body: s.body, duplex: "half" } as RequestInit;
        if (where === "request") init.signal = controller.signal;
        const request = new Request(`${O}/abort/${name}`, init);
        const pending =
          where === "native"
            ? fetch(request, { signal: controller.signal })
            : layer.fetch(request, where === "init" ? { signal: controller.signal } : undefined);
        const settled = pending.then(
          () => "resolved",
          (e: unknown) => named(e),
        );
        // Aborted while the read waits for more (Chromium's own fetch at once: it cannot send a stream over HTTP/1.1).
        while (where !== "native" && s.pulls() < 3) await pause(5);
        controller.abort(reason);
        results[name] = await settled;
        await pause(20);
        results[`${name}Cancel`] = named(s.cancelled());
      }
      const s = stalled();
      const timed = createResilience({ maxReplayBytes: 1024, retry: false, timeout: { total: 150 } });
      results.total = await timed
        .fetch(new Request(`${O}/abort/total`, { method: "PUT", body: s.body, duplex: "half" } as RequestInit))
        .then(
          () => "resolved",
          (e: Error & { phase?: string; attempts?: number }) => `${named(e)}; phase ${e.phase}; attempts ${e.attempts}`,
        );
      await pause(20);
      results.totalCancel = named(s.cancelled());
      return results;
    });
    expect(out).toMatchObject({
      caller: "the reason",
      callerCancel: "the reason",
      callerWithTotal: "the reason",
      callerWithTotalCancel: "the reason",
      ownSignal: "the reason",
      ownSignalCancel: "the reason",
      nativeCancel: "the reason",
      total: "TimeoutError: total timeout of 150 ms exceeded; phase total; attempts 0",
      totalCancel: "TimeoutError: total timeout of 150 ms exceeded",
    });
    expect(received.filter((r) => r.path.startsWith("/abort/") && r.path !== "/abort/native")).toEqual([]);
  });

  it("keepalive: a Request past 64 KiB (a FormData with its framing too) refused at once with the quota's TypeError, where Chromium says 'Failed to fetch'", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience, getResilienceInfo } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const layer = createResilience({ maxReplayBytes: 1024, retry: { maxAttempts: 3, initialDelay: 1 } });
      const settle = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status} attempts ${getResilienceInfo(r)?.attempts ?? "-"}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const form = new FormData();
      form.append("a", "k".repeat(65_500));
      const keepalive = (path: string, body: BodyInit) =>
        new Request(`${O}${path}`, { method: "POST", body, keepalive: true });
      const results = {
        form: await settle(layer.fetch(keepalive("/ka/form", form))),
        formNative: await settle(fetch(keepalive("/ka/form-native", form))),
        text: await settle(layer.fetch(keepalive("/ka/text", "k".repeat(65_537)))),
      };
      const refusedCounted = Object.keys(layer.health().breakers).length;
      const mid = await settle(layer.fetch(keepalive("/ka503/mid", "k".repeat(5000))));
      return { ...results, refusedCounted, mid };
    });
    const quota = "TypeError: resilience.fetch: browsers send a keepalive request body of 64 KiB at most, got";
    expect(out.form).toBe(`${quota} 65632 bytes`);
    expect(out.formNative).toBe("TypeError: Failed to fetch");
    expect(out.text).toBe(`${quota} 65537 bytes`);
    expect(out.refusedCounted).toBe(0);
    expect(out.mid).toBe("503 attempts 1");
    expect(at("/ka503/mid").map((r) => [r.length, r.chunked])).toEqual([["5000", false]]);
    expect([...at("/ka/form"), ...at("/ka/text"), ...at("/ka/form-native")]).toEqual([]);
  });

  it("the ky client in the page: json, body and onUploadProgress uploads go over HTTP/1.1, retried within the limit, once past it", async () => {
    const out = await page.evaluate(async () => {
      const { createClient, ky } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const api = createClient({
        resilience: {
          maxReplayBytes: 1024,
          retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" },
          breaker: { failureThreshold: 100 },
        },
      });
      const settle = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status}`,
          (e: Error & { response?: Response }) => `${e.name}: ${e.response?.status ?? e.message}`,
        );
      const stream = (n: number) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new Uint8Array(n).fill(67));
            c.close();
          },
        });
      const small = { steps: 50 };
      const big = { steps: 50, pad: "x".repeat(3000) };
      const progress: Record<string, number[]> = { small: [], big: [], form: [], plain: [] };
      const form = new FormData();
      form.append("prompt", "p".repeat(3000));
      form.append("file", new Blob(["b".repeat(100)], { type: "image/png" }), "a.png");
      return {
        jsonSmall: await settle(api.put(`${O}/ky503/json-small`, { json: small })),
        jsonBig: await settle(api.put(`${O}/ky503/json-big`, { json: big })),
        bodySmall: await settle(api.put(`${O}/ky503/body-small`, { body: "s".repeat(100) })),
        bodyBig: await settle(api.put(`${O}/ky503/body-big`, { body: "s".repeat(3000) })),
        streamSmall: await settle(api.put(`${O}/ky503/stream-small`, { body: stream(100) })),
        streamBig: await settle(api.put(`${O}/ky503/stream-big`, { body: stream(3000) })),
        progSmall: await settle(
          api.put(`${O}/ky503/prog-small`, { json: small, onUploadProgress: (p) => progress.small?.push(p.percent) }),
        ),
        progBig: await settle(
          api.put(`${O}/ky503/prog-big`, { json: big, onUploadProgress: (p) => progress.big?.push(p.percent) }),
        ),
        progForm: await settle(
          api.post(`${O}/ky/prog-form`, { body: form, onUploadProgress: (p) => progress.form?.push(p.percent) }),
        ),
        plain: await settle(
          ky.put(`${O}/ky/plain`, { json: small, retry: 0, onUploadProgress: (p) => progress.plain?.push(p.percent) }),
        ),
        progress,
      };
    });
    expect(out).toMatchObject({
      jsonSmall: "HTTPError: 503",
      jsonBig: "HTTPError: 503",
      bodySmall: "HTTPError: 503",
      bodyBig: "HTTPError: 503",
      streamSmall: "HTTPError: 503",
      streamBig: "HTTPError: 503",
      progSmall: "HTTPError: 503",
      progBig: "HTTPError: 503",
      progForm: "200",
    });
    // Plain ky's progress upload is a stream: Chromium refuses it over HTTP/1.1.
    expect(out.plain).toMatch(/^NetworkError: /);
    expect(at("/ky/plain")).toEqual([]);
    const sends = (path: string) => at(path).map((r) => `${r.type ?? "-"} ${r.length} ${r.chunked} ${r.body.length}`);
    const json = (body: object) => JSON.stringify(body).length;
    expect(sends("/ky503/json-small")).toEqual(Array(3).fill(`application/json ${json({ steps: 50 })} false 12`));
    expect(sends("/ky503/json-big")).toEqual([
      `application/json 3021 false ${json({ steps: 50, pad: "x".repeat(3000) })}`,
    ]);
    expect(sends("/ky503/body-small")).toEqual(Array(3).fill("text/plain;charset=UTF-8 100 false 100"));
    expect(sends("/ky503/body-big")).toEqual(["text/plain;charset=UTF-8 3000 false 3000"]);
    expect(sends("/ky503/stream-small")).toEqual(Array(3).fill("- 100 false 100"));
    expect(sends("/ky503/stream-big")).toEqual(["- 3000 false 3000"]);
    expect(sends("/ky503/prog-small")).toEqual(Array(3).fill("application/json 12 false 12"));
    expect(sends("/ky503/prog-big")).toEqual(["application/json 3021 false 3021"]);
    const [formSent] = at("/ky/prog-form");
    const boundary = /boundary=(.+)$/.exec(formSent?.type ?? "")?.[1] as string;
    expect(formSent?.body.startsWith(`--${boundary}\r\n`)).toBe(true);
    expect(formSent?.body.endsWith(`\r\n--${boundary}--\r\n`)).toBe(true);
    expect(formSent?.length).toBe(String(formSent?.body.length));
    expect(out.progress.big?.at(-1)).toBe(1);
    expect(out.progress.form?.at(-1)).toBe(1);
  });

  it("chains and hedges: within the limit the next endpoint (and a hedge) get the same bytes; past it one endpoint only", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience, fallback, getResilienceInfo } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const settle = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status} ${getResilienceInfo(r)?.endpoint}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const stream = (text: string) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            const bytes = new TextEncoder().encode(text);
            c.enqueue(bytes.slice(0, 10));
            c.enqueue(bytes.slice(10));
            c.close();
          },
        });
      const req = (url: string, text: string) =>
        new Request(url, { method: "PUT", body: stream(text), duplex: "half" } as RequestInit);
      const layer = createResilience({
        maxReplayBytes: 1024,
        retry: false,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "c1", url: `${O}/c1-503` },
              { name: "c2", url: `${O}/c2` },
            ],
          },
          {
            name: "h",
            hedge: { delay: 20 },
            endpoints: [
              { name: "h1", url: `${O}/h1-hang` },
              { name: "h2", url: `${O}/h2` },
            ],
          },
          {
            name: "hb",
            hedge: { delay: 20 },
            endpoints: [
              { name: "hb1", url: `${O}/hb1-slow` },
              { name: "hb2", url: `${O}/hb2` },
            ],
          },
        ]),
      });
      const small = JSON.stringify({ steps: 50, prompt: "cat" });
      const big = JSON.stringify({ steps: 50, prompt: "cat", pad: "x".repeat(3000) });
      return {
        chainSmall: await settle(layer.fetch(req(`${O}/c1-503/small`, small))),
        chainBig: await settle(layer.fetch(req(`${O}/c1-503/big`, big))),
        hedgeSmall: await settle(layer.fetch(req(`${O}/h1-hang/small`, small))),
        hedgeBig: await settle(layer.fetch(req(`${O}/hb1-slow/big`, big))),
      };
    });
    expect(out).toEqual({ chainSmall: "200 c2", chainBig: "503 c1", hedgeSmall: "200 h2", hedgeBig: "200 hb1" });
    const bodies = (path: string) => at(path).map((r) => `${r.length} ${r.chunked} ${r.body.length}`);
    expect([bodies("/c1-503/small"), bodies("/c2/small")]).toEqual([["27 false 27"], ["27 false 27"]]);
    expect([bodies("/c1-503/big"), bodies("/c2/big")]).toEqual([["3036 false 3036"], []]);
    expect(at("/c2/small")[0]?.body).toBe(at("/c1-503/small")[0]?.body);
    expect([bodies("/h1-hang/small"), bodies("/h2/small")]).toEqual([["27 false 27"], ["27 false 27"]]);
    expect([bodies("/hb1-slow/big"), bodies("/hb2/big")]).toEqual([["3036 false 3036"], []]);
  });

  it("degradation: a Request JSON body within and past the limit (and one made of a stream) rewritten, with the level header; past the limit still sent once", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience, degradation, getResilienceInfo } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const settle = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status} attempts ${getResilienceInfo(r)?.attempts} ${getResilienceInfo(r)?.degradationLevel}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const layer = createResilience({
        maxReplayBytes: 1024,
        retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
        degradation: degradation({ levelHeader: "x-level" }),
      });
      layer.degradation?.setLevel("low");
      const json = { "content-type": "application/json" };
      const small = JSON.stringify({ steps: 50, prompt: "cat" });
      const big = JSON.stringify({ steps: 50, prompt: "cat", pad: "x".repeat(3000) });
      // 1,026 bytes, 1,024 once `steps` is capped at 20.
      const edge = JSON.stringify({ steps: 1000, pad: "y".repeat(1003) });
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      });
      return {
        small: await settle(layer.fetch(new Request(`${O}/d503/small`, { method: "PUT", body: small, headers: json }))),
        big: await settle(layer.fetch(new Request(`${O}/d503/big`, { method: "PUT", body: big, headers: json }))),
        stream: await settle(
          layer.fetch(
            new Request(`${O}/d503/stream`, {
              method: "PUT",
              body: stream,
              headers: json,
              duplex: "half",
            } as RequestInit),
          ),
        ),
        edge: await settle(layer.fetch(new Request(`${O}/d503/edge`, { method: "PUT", body: edge, headers: json }))),
        edgeLength: edge.length,
      };
    });
    expect(out).toEqual({
      small: "503 attempts 2 low",
      big: "503 attempts 1 low",
      stream: "503 attempts 1 low",
      edge: "503 attempts 1 low",
      edgeLength: 1026,
    });
    const sends = (path: string) => at(path).map((r) => `${r.level} ${r.length} ${r.body.slice(0, 11)}`);
    expect(sends("/d503/small")).toEqual(Array(2).fill('low 27 {"steps":20'));
    expect(sends("/d503/big")).toEqual(['low 3036 {"steps":20']);
    expect(sends("/d503/stream")).toEqual(['low 3036 {"steps":20']);
    expect(sends("/d503/edge")).toEqual(['low 1024 {"steps":20']);
  });

  describe("a fallback transform", () => {
    /** Runs a chain whose first endpoint (503) has the docs' `transform` pattern; returns what it saw. */
    const run = (size: "small" | "big") =>
      page.evaluate(async (size) => {
        const { createResilience, fallback, getResilienceInfo } = (window as unknown as { lib: PageLib }).lib;
        const O = location.origin;
        const seen: unknown[] = [];
        const layer = createResilience({
          maxReplayBytes: 1024,
          retry: false,
          fallback: fallback([
            {
              name: `t-${size}`,
              endpoints: [
                {
                  name: "t1",
                  url: `${O}/t1-503-${size}`,
                  transform: (req) => {
                    seen.push(req.body === undefined ? "undefined" : Object.keys(req.body));
                    return { ...req, body: { ...req.body, model: "b" } };
                  },
                },
                { name: "t2", url: `${O}/t2-${size}` },
              ],
            },
          ]),
        });
        const body = JSON.stringify({ steps: 50, prompt: "cat", ...(size === "big" ? { pad: "x".repeat(3000) } : {}) });
        const res = await layer.fetch(
          new Request(`${O}/t1-503-${size}/jobs`, {
            method: "PUT",
            body,
            headers: { "content-type": "application/json" },
          }),
        );
        return { seen, answer: `${res.status} ${getResilienceInfo(res)?.endpoint}` };
      }, size);

    it("within the limit it sees the parsed body, the next endpoint the caller's bytes; past the limit one endpoint only", async () => {
      const small = await run("small");
      expect(small).toEqual({ seen: [["steps", "prompt"]], answer: "200 t2" });
      expect(at("/t1-503-small/jobs").map((r) => r.body)).toEqual(['{"steps":50,"prompt":"cat","model":"b"}']);
      expect(at("/t2-small/jobs").map((r) => r.body)).toEqual(['{"steps":50,"prompt":"cat"}']);
      const big = await run("big");
      expect(big.answer).toBe("503 t1");
      expect(at("/t1-503-big/jobs")).toHaveLength(1);
      expect(at("/t2-big/jobs")).toEqual([]);
    });

    // Defect 1: a JSON object body past the limit, read whole into memory in the page (and rewritten there by a
    // degradation rule), is handed to `transform` as `undefined`; the docs' pattern then drops the caller's fields.
    it("past the limit, a Request JSON body the page read whole reaches transform parsed, and its fields the endpoint", async () => {
      const big = await run("big");
      // Observed: ["undefined"].
      expect(big.seen).toEqual([["steps", "prompt", "pad"]]);
      // Observed: '{"model":"b"}' alone.
      expect(at("/t1-503-big/jobs").at(-1)?.body.startsWith('{"steps":50,"prompt":"cat","pad":"x')).toBe(true);
    });
  });

  it("redirects: Chromium follows them itself, as its own fetch follows the same Request (307 sends the bytes again, 303 goes as a GET)", async () => {
    const out = await page.evaluate(async () => {
      const { createResilience } = (window as unknown as { lib: PageLib }).lib;
      const layer = createResilience({ maxReplayBytes: 1024, retry: false });
      const big = "z".repeat(3000);
      const stream = () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(big));
            c.close();
          },
        });
      const req = (path: string, body: BodyInit) =>
        new Request(path, { method: "PUT", body, duplex: "half" } as RequestInit);
      const status = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status} ${new URL(r.url).pathname} ${r.redirected}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      return [
        await status(layer.fetch(req("/r/307?loc=/r/307-to", stream()))),
        await status(fetch(req("/r/307-native?loc=/r/307-native-to", big))),
        await status(layer.fetch(req("/r/303?loc=/r/303-to&code=303", stream()))),
        await status(fetch(req("/r/303-native?loc=/r/303-native-to&code=303", big))),
      ];
    });
    expect(out).toEqual([
      "200 /r/307-to true",
      "200 /r/307-native-to true",
      "200 /r/303-to true",
      "200 /r/303-native-to true",
    ]);
    const hops = (from: string, to: string) => [...at(from), ...at(to)].map((r) => `${r.method} ${r.body.length}`);
    // Docs-silent: the bytes past the limit go twice, as Chromium's own fetch sends a Request of a string.
    expect(hops("/r/307", "/r/307-to")).toEqual(["PUT 3000", "PUT 3000"]);
    expect(hops("/r/307-native", "/r/307-native-to")).toEqual(["PUT 3000", "PUT 3000"]);
    expect(hops("/r/303", "/r/303-to")).toEqual(["PUT 3000", "GET 0"]);
    expect(hops("/r/303-native", "/r/303-native-to")).toEqual(["PUT 3000", "GET 0"]);
  });

  it("the CORS hint: an init.body stream is still a stream (its hint first); a Request on a stream went as bytes (the CORS hint alone, no preflight for a POST)", async () => {
    const out = await page.evaluate(async (other) => {
      const { createResilience } = (window as unknown as { lib: PageLib }).lib;
      const O = location.origin;
      const layer = createResilience({ maxReplayBytes: 1024, retry: false });
      const stream = (text: string) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(text));
            c.close();
          },
        });
      const message = (p: Promise<Response>) =>
        p.then(
          (r) => `${r.status}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const streamed = { method: "PUT", body: stream("abc"), duplex: "half" } as RequestInit;
      return {
        initSame: await message(layer.fetch(`${O}/cors/init`, streamed)),
        initOther: await message(
          layer.fetch(`${other}/cors/init-other`, {
            method: "PUT",
            body: stream("abc"),
            duplex: "half",
          } as RequestInit),
        ),
        requestWithInitStream: await message(
          layer.fetch(new Request(`${O}/cors/request-init`, { method: "PUT", body: "own" }), {
            body: stream("abc"),
            duplex: "half",
          } as RequestInit),
        ),
        requestRefused: await message(
          layer.fetch(
            new Request(`${other}/cors/refuse`, {
              method: "PUT",
              body: stream("x".repeat(3000)),
              headers: { "x-a": "1" },
              duplex: "half",
            } as RequestInit),
          ),
        ),
        crossPost: await message(
          layer.fetch(
            new Request(`${other}/cors/post`, { method: "POST", body: stream("hi"), duplex: "half" } as RequestInit),
          ),
        ),
        crossPostNative: await message(
          fetch(
            new Request(`${other}/cors/post-native`, {
              method: "POST",
              body: stream("hi"),
              duplex: "half",
            } as RequestInit),
          ),
        ),
      };
    }, other);
    const streamHint = "(probably the streamed request body (Chromium streams uploads over HTTP/2+ only)";
    expect(out.initSame).toMatch(
      /^RetryExhaustedError: gave up after 1 attempt to .*: Failed to fetch \(probably the streamed/,
    );
    expect(out.initSame).toContain(`${streamHint})`);
    expect(out.requestWithInitStream).toContain(`${streamHint})`);
    expect(out.initOther).toContain(
      `${streamHint}; or refused by the browser's CORS rules: ${other} must allow the origin`,
    );
    expect(out.requestRefused).toMatch(
      /Failed to fetch \(probably refused by the browser's CORS rules: .* and the request headers x-a in its preflight/,
    );
    expect(out.requestRefused).not.toContain("streamed");
    expect(out.crossPost).toBe("200");
    expect(out.crossPostNative).toBe("TypeError: Failed to fetch");
    expect(at("/cors/post", "other").map((r) => `${r.method} ${r.body}`)).toEqual(["POST hi"]);
    const sent = [...at("/cors/init"), ...at("/cors/request-init"), ...at("/cors/init-other", "other")];
    expect(sent.filter((r) => r.method !== "OPTIONS")).toEqual([]);
  });
});
