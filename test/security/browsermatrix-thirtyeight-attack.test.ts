/**
 * Outside-in attack on the browser build in a real Chromium page: a differential matrix of calls (GET, POST JSON, a
 * GET with a custom header that needs a preflight, keepalive POSTs at and past 64 KiB, a `Request` input, relative
 * URLs, streamed bodies) × situations (200, 503 then 200, 429 with `Retry-After` exposed or not, 302/307 redirects
 * the
 * browser follows to the same and another origin, a closed port, an answer without `Access-Control-Allow-Origin`, a
 * refused preflight, a gateway 503 without CORS headers, `redirect: "error"`, the caller's abort, attempt timeouts) ×
 * ways (the browser's own `fetch` as the control, `createResilience().fetch`, a fallback chain, a hedge, a
 * degradation
 * rewrite), each compared with plain fetch and with what the docs promise.
 * Docs: docs/browsers-and-cors.md "A relative URL (`/v1/images`, `images`) is read where fetch reads it, against the
 * document's base URL (a `<base href>` moves it off the page's address …): its host's breaker, the events and the
 * CORS
 * hint are those of the origin the browser sends it to", "When such a call rejects with `RetryExhaustedError` in a
 * page and its URL is of another origin, the error's message ends with a hint that CORS is the likely cause, naming
 * the request headers the preflight must allow (every one sent but `accept`, `accept-language`, `content-language`,
 * `content-type` and `range` with safelisted values …; a `Blob` body's type counts as the `content-type` …)", "A
 * fallback chain's `FallbackExhaustedError` carries no hint … its message lists each endpoint's `Failed to fetch`",
 * "A GET, or a POST with an `Idempotency-Key`, is retried, and each attempt is refused the same way: the call rejects
 * with `RetryExhaustedError` after `retry.maxAttempts` attempts, its `cause` the `TypeError`. A POST without a key
 * makes one attempt", "the request itself is never sent (the API never sees it …)", "A gateway 503 without CORS
 * headers … The call is retried as a network error (so a POST without a key is not retried …)", "Without it,
 * `response.headers.get("retry-after")` is `null` in the page … it waits its own computed backoff instead of the
 * server's `Retry-After`, and a `maxRetryAfter` limit cannot apply", "A `ReadableStream` request body over HTTP/1.1 …
 * the hint then names the streamed body first (`probably the streamed request body (…); or refused by the browser's
 * CORS rules: …` across origins)", "A `keepalive` request body over 64 KiB … The page's build measures the body first
 * (and again a body a degradation rewrite or a fallback `transform` made) and refuses one that alone passes 64 KiB at
 * once with a `TypeError` that says so (`browsers send a keepalive request body of 64 KiB at most, got 70000 bytes`),
 * not retried nor counted against the host (from a `transform`, it fails that endpoint as a `transform` that throws
 * does, and the chain moves on)"; docs/retry.md "A caller's abort is never a failure: it … rejects with
 * `signal.reason`", "Retried by default: network errors, attempt timeouts and statuses … 503", "a browser's 'Failed
 * to
 * fetch' says nothing more, so it stays `network error`", "a `redirect: "error"` call that meets a redirect is
 * refused
 * by the platform with the `TypeError` of a network failure … so it is retried like one", "Where the browser follows
 * redirects itself, the hold goes to that host too", "replayed only within `maxReplayBytes`" (a keepalive `Request`);
 * SECURITY.md "Redirects in browsers. … Chromium drops `Authorization` on a cross-origin redirect, but forwards a
 * custom header such as `x-api-key` when the new origin's CORS preflight allows it"; docs/fallback.md "Credentials
 * never
 * cross origins … The same holds for hedges"; docs/health-and-events.md `debugInfo()` "the last 50 failures (URLs
 * without their query string, which may hold keys)".
 * How: `createResilience`, `fallback`, `degradation` from the browser build (dist/browser) in one Chromium page
 * (test/helpers/library-page.ts, which serves the page's origin), a second node:http server on 127.0.0.1 for the
 * other
 * origin (CORS allowed, no `Access-Control-Allow-Origin`, a preflight without `Access-Control-Allow-Headers`, a
 * gateway 503 without CORS, `Retry-After` exposed or not), and a closed port; both servers count what arrived.
 * Paths: plain call (same and other origin, relative, under a `<base href>` added to the page), fallback chain,
 * hedge,
 * degradation rewrite (level `medium`), chain `transform`, `Request` input (keepalive), redirects the browser follows
 * (302, 307 POST across origins, `redirect: "error"`), streamed bodies, keepalive bodies of every kind.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the keepalive refusal counts a string's UTF-8 bytes):
 * 1. docs/browsers-and-cors.md: the page's build refuses a keepalive body that passes 64 KiB "with a `TypeError` that
 *    says so (`browsers send a keepalive request body of 64 KiB at most, got 70000 bytes`)". Observed: a string body
 *    of 70,000 `é` (140,000 bytes in UTF-8, what fetch would send) is refused with "… got 70000 bytes": the message
 *    gives the string's length in UTF-16 code units as its bytes. A string of 40,000 `é` is reported rightly as 80000
 *    bytes, so the number depends on which side of the cap the character count falls. Mechanism:
 *    src/http/request/replay-body.ts `byteSize` returns `body.length` at once when the length alone passes the limit
 *    (enough to decide the refusal, not to measure it), and src/http/request/normalize-request.ts `refuseOverQuota`
 *    prints that number as bytes. Minor: the refusal itself is right.
 *
 * Held (plain `it`):
 * - CORS refusals across origins (no `Access-Control-Allow-Origin`, a refused preflight, a gateway 503 without CORS,
 * a
 *   closed port): plain fetch rejects with the bare `TypeError: Failed to fetch`; the layer with
 * `RetryExhaustedError`
 *   after `maxAttempts` (GET, keyed POST) or 1 (keyless POST) attempts, `cause` that `TypeError`, the API origin,
 * page
 *   origin and exactly the non-safelisted request headers named (`idempotency-key` the layer added, a `Blob` body's
 *   type as `content-type`); a refused preflight never sends the request; retry events say `network error`.
 * - The header list of the hint follows the safelist by name and value (a JSON:API `accept`, a quoted charset, a
 *   multi-range, a 129-byte `accept` named; one byte range, `cookie`, `user-agent` not).
 * - Same-origin failures (`redirect: "error"` meeting a redirect) carry no hint and are retried; a stream body's hint
 *   names the stream first, and CORS second only across origins.
 * - A chain's `FallbackExhaustedError` over CORS-refused endpoints has no hint and lists each `Failed to fetch`.
 * - 503 then 200 across origins: plain fetch sees the 503, the layer resolves with the 200 after one retry.
 * - `Retry-After` exposed: a value past `maxRetryAfter` resolves with the 429 at once and holds the host; not
 * exposed:
 *   computed backoff, retried to the 200, host left closed. After a 302 the browser follows, the hold goes to the
 *   redirect's target host.
 * - Keepalive: 65,536 bytes go through both; 65,537 (string, bytes, `Blob`, `URLSearchParams`, a `Request`) are
 * refused
 *   by plain fetch with `Failed to fetch` and by the layer with the documented `TypeError`, nothing sent, no retry
 *   event, `health()` clean; a degradation rewrite that grows a 65,536-byte body by one byte is refused the same way,
 *   and a `transform` that makes one fails that endpoint and the chain moves on. A keepalive `Request` past
 *   `maxReplayBytes` is sent once, as fetch sends it.
 * - Relative URLs (with and without a leading slash) go where fetch sends them, through the layer, a chain and a
 *   degradation rule; a `<base href>` to the other origin moves the breaker and the hint there; `debugInfo()` keeps
 * no
 *   query of a relative URL.
 * - The caller's abort rejects with `signal.reason`, as fetch does; an attempt timeout gives `TimeoutError` after
 *   `maxAttempts` attempts.
 * - A hedge that moves from the other origin to the page's keeps `authorization` home; a 307 POST the browser follows
 *   across origins reaches the target as plain fetch's does (`authorization` dropped, `x-api-key` forwarded: the
 *   documented limit).
 *
 * Docs-silent (not pinned):
 * - The `url` of `retry` and `request` events and of `debugInfo()` failures is a relative URL's text as written
 *   (`nowhere/../gw503x`, `thing` under a `<base href>` to another origin), not the URL fetch resolved; `key` is
 * right.
 * - A keepalive body past 64 KiB refused at once from `init` fires no `request` event; the same refusal on a
 * `Request`
 *   input (after its body is read) or on a degradation rewrite fires one (`TypeError`, `attempts: 0`), uncounted.
 * - A same-origin URL whose redirect leads to an origin that refuses CORS gets no hint, as documented ("its URL is of
 *   another origin"), though CORS is the cause there.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";

/** What each server received: `${side} ${method} ${path}`. */
const hits: string[] = [];
const seen = new Map<string, number>();
const lastHeaders = new Map<string, Record<string, string>>();

function serve(side: "b" | "x") {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://h");
    const path = url.pathname;
    hits.push(`${side} ${req.method} ${path}`);
    lastHeaders.set(`${side} ${req.method} ${path}`, { ...(req.headers as Record<string, string>) });
    const n = (seen.get(`${side} ${req.method} ${path}`) ?? 0) + 1;
    seen.set(`${side} ${req.method} ${path}`, n);
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      side === "x" && !path.includes("/noacao/")
        ? {
            "access-control-allow-origin": origin ?? "*",
            "access-control-allow-credentials": "true",
            ...(url.searchParams.get("expose") === "0" ? {} : { "access-control-expose-headers": "retry-after" }),
          }
        : {};
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
      const refuse = path.includes("/nopre/");
      res.writeHead(204, {
        ...cors,
        "access-control-allow-methods": "GET, POST, PUT",
        ...(refuse ? {} : { "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "" }),
        "access-control-max-age": "0",
      });
      return void res.end();
    }
    const redirect = /\/redir\/(\d+)$/.exec(path);
    if (redirect) {
      res.writeHead(Number(redirect[1]), { ...cors, location: url.searchParams.get("to") ?? "/" });
      return void res.end();
    }
    if (path.includes("/hang")) return; // never answers
    if (path.includes("/gw503")) return void res.writeHead(503).end("gateway");
    if (path.includes("/flaky/") && n === 1) return void res.writeHead(503, cors).end("busy");
    if (path.includes("/r429/") && n === 1)
      return void res.writeHead(429, { ...cors, "retry-after": url.searchParams.get("ra") ?? "1" }).end("slow down");
    if (path.includes("/always503")) return void res.writeHead(503, cors).end("down");
    res.writeHead(200, { ...cors, "content-type": "text/plain", "cache-control": "no-store" });
    const text = Buffer.concat(chunks).toString();
    res.end(`${side}:${req.method}:${path}:${Buffer.concat(chunks).length}:${text.length < 200 ? text : ""}`);
  };
}

/** What a call gave, as plain data: a response, or an error with its fields. */
interface Outcome {
  kind: "res" | "err";
  status?: number;
  url?: string;
  text?: string;
  name?: string;
  message?: string;
  cause?: string | undefined;
  attempts?: number | undefined;
  endpoint?: string | undefined;
}

type W = { lib: PageLib; outcome: (p: Promise<Response>) => Promise<Outcome> };

const other = createServer(serve("x"));
let lp: LibraryPage;
let B = "";
let X = "";
let DEAD = "";

/** Hits since `mark()`: each `${side} ${method} ${path}`. */
let from = 0;
const mark = (): void => {
  from = hits.length;
};
const since = (): string[] => hits.slice(from);
const count = (entry: string): number => since().filter((h) => h === entry).length;

beforeAll(async () => {
  await new Promise<void>((done) => other.listen(0, "127.0.0.1", done));
  X = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  const dead = createServer();
  await new Promise<void>((done) => dead.listen(0, "127.0.0.1", done));
  DEAD = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise((done) => dead.close(done));
  lp = await openLibraryPage(serve("b"));
  B = new URL(lp.page.url()).origin;
  await lp.page.evaluate(() => {
    (window as unknown as W).outcome = async (p): Promise<Outcome> => {
      try {
        const res = await p;
        return { kind: "res", status: res.status, url: res.url, text: await res.text() };
      } catch (e) {
        const err = e as Error & { cause?: Error; attempts?: number; endpoint?: string };
        return {
          kind: "err",
          name: err.name,
          message: err.message,
          cause: err.cause ? `${err.cause.name}: ${err.cause.message}` : undefined,
          attempts: err.attempts,
          endpoint: err.endpoint,
        };
      }
    };
  });
}, 60_000);

afterAll(async () => {
  await lp?.close();
  other.closeAllConnections();
  await new Promise((done) => other.close(done));
});

const HINT_TAIL =
  "in its preflight (OPTIONS) answer, and send Access-Control-Allow-Origin on every answer, errors and gateway 5xx " +
  "included, as must any origin it redirects to (which sees the origin null); the browser console names the exact cause";

describe("browser build against Chromium's own fetch", () => {
  it("CORS refusals: plain fetch's bare TypeError, the layer's RetryExhaustedError with the hint, retried as documented", async () => {
    mark();
    const r = await lp.page.evaluate(
      async ({ X, DEAD }) => {
        const { lib, outcome } = window as unknown as W;
        const quick = { maxAttempts: 3, initialDelay: 1, maxDelay: 5, jitter: "none" } as const;
        const reasons: string[] = [];
        const layer = (extra: object = {}) => {
          const l = lib.createResilience({ retry: { ...quick, ...extra } });
          l.on("retry", (e) => reasons.push(e.reason));
          return l;
        };
        const json = { method: "POST", headers: { "content-type": "application/json" }, body: "{}" };
        const out: Record<string, Outcome> = {};
        out.plainNoAcao = await outcome(fetch(`${X}/noacao/m1`));
        out.noAcao = await outcome(layer().fetch(`${X}/noacao/m1`));
        out.plainPre = await outcome(fetch(`${X}/nopre/m2`, { headers: { "x-custom": "1" } }));
        out.pre = await outcome(layer().fetch(`${X}/nopre/m2`, { headers: { "x-custom": "1" } }));
        out.prePost = await outcome(layer().fetch(`${X}/nopre/m3`, json));
        out.preKeyed = await outcome(layer({ idempotencyKey: true }).fetch(`${X}/nopre/m4`, json));
        out.preBlob = await outcome(
          layer().fetch(`${X}/nopre/m5`, { method: "POST", body: new Blob(["{}"], { type: "application/json" }) }),
        );
        out.gw = await outcome(layer().fetch(`${X}/gw503/m6`));
        out.gwPost = await outcome(layer().fetch(`${X}/gw503/m7`, { method: "POST", body: "x" }));
        out.plainDead = await outcome(fetch(`${DEAD}/m8`));
        out.dead = await outcome(layer().fetch(`${DEAD}/m8`));
        return { out, reasons: [...new Set(reasons)], origin: location.origin };
      },
      { X, DEAD },
    );
    const { out, origin } = r;
    for (const plain of [out.plainNoAcao, out.plainPre, out.plainDead])
      expect(plain).toMatchObject({ kind: "err", name: "TypeError", message: "Failed to fetch" });
    const hint = (target: string, headers: string) =>
      `(probably refused by the browser's CORS rules: ${target} must allow the origin ${origin}${headers} ${HINT_TAIL})`;
    const expectRefused = (o: Outcome | undefined, attempts: number, target: string, headers = "") => {
      expect(o).toMatchObject({
        kind: "err",
        name: "RetryExhaustedError",
        attempts,
        cause: "TypeError: Failed to fetch",
      });
      expect(o?.message?.endsWith(`Failed to fetch ${hint(target, headers)}`)).toBe(true);
    };
    expectRefused(out.noAcao, 3, X);
    expectRefused(out.pre, 3, X, " and the request headers x-custom");
    expectRefused(out.prePost, 1, X, " and the request headers content-type");
    expectRefused(out.preKeyed, 3, X, " and the request headers content-type, idempotency-key");
    expectRefused(out.preBlob, 1, X, " and the request headers content-type");
    expectRefused(out.gw, 3, X);
    expectRefused(out.gwPost, 1, X);
    expectRefused(out.dead, 3, DEAD);
    expect(r.reasons).toEqual(["network error"]);
    // What reached the servers: the request after an answer without CORS, never after a refused preflight.
    expect(count("x GET /noacao/m1")).toBe(4);
    expect(count("x OPTIONS /nopre/m2")).toBe(4);
    expect(count("x GET /nopre/m2")).toBe(0);
    expect(count("x OPTIONS /nopre/m3")).toBe(1);
    expect(count("x OPTIONS /nopre/m4")).toBe(3);
    expect(since().filter((h) => / (?:POST|GET) \/nopre\//.test(h))).toEqual([]);
    expect(count("x GET /gw503/m6")).toBe(3);
    expect(count("x POST /gw503/m7")).toBe(1);
  }, 60_000);

  it("the hint's header list follows the safelist by name and value", async () => {
    const named = await lp.page.evaluate(
      async ({ X }) => {
        const { lib, outcome } = window as unknown as W;
        const cases: [string, Record<string, string>][] = [
          ["jsonapi", { accept: 'application/vnd.api+json; profile="x"' }],
          ["quoted", { "content-type": 'text/plain; charset="utf-8"' }],
          ["oneRange", { range: "bytes=0-99" }],
          ["twoRanges", { range: "bytes=0-99,200-300" }],
          ["longAccept", { accept: "a".repeat(129) }],
          ["forbidden", { cookie: "a=b", "user-agent": "me", "x-ok": "1" }],
        ];
        const out: Record<string, string> = {};
        for (const [name, headers] of cases) {
          const o = await outcome(
            lib.createResilience({ retry: { maxAttempts: 1 } }).fetch(`${X}/noacao/h`, { headers }),
          );
          out[name] =
            /request headers (\S+(?:, \S+)*) in its preflight/.exec(o.message ?? "")?.[1] ??
            (o.message?.includes("(probably refused") ? "" : "no hint");
        }
        return out;
      },
      { X },
    );
    expect(named).toEqual({
      jsonapi: "accept",
      quoted: "content-type",
      oneRange: "",
      twoRanges: "range",
      longAccept: "accept",
      forbidden: "x-ok",
    });
  }, 60_000);

  it("same-origin failures carry no hint; a stream body's hint names the stream, then CORS across origins", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X, B }) => {
        const { lib, outcome } = window as unknown as W;
        const layer = () => lib.createResilience({ retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 5 } });
        const stream = () =>
          ({ method: "POST", body: new Blob(["xx"]).stream(), duplex: "half" }) as RequestInit & { duplex: string };
        return {
          plainError: await outcome(fetch(`${B}/redir/302?to=/ok/z`, { redirect: "error" })),
          error: await outcome(layer().fetch(`${B}/redir/302?to=/ok/z`, { redirect: "error" })),
          plainStream: await outcome(fetch(`${B}/ok/s1`, stream())),
          stream: await outcome(layer().fetch(`${B}/ok/s1`, stream())),
          streamX: await outcome(layer().fetch(`${X}/ok/s2`, stream())),
        };
      },
      { X, B },
    );
    expect(out.plainError).toMatchObject({ kind: "err", name: "TypeError", message: "Failed to fetch" });
    expect(out.error).toMatchObject({ name: "RetryExhaustedError", attempts: 3, cause: "TypeError: Failed to fetch" });
    expect(out.error.message).not.toContain("probably");
    expect(count("b GET /redir/302")).toBe(4);
    expect(out.plainStream).toMatchObject({ kind: "err", name: "TypeError", message: "Failed to fetch" });
    expect(out.stream).toMatchObject({ name: "RetryExhaustedError", attempts: 1 });
    expect(out.stream.message).toMatch(
      /Failed to fetch \(probably the streamed request body \(Chromium streams uploads over HTTP\/2\+ only\)\)$/,
    );
    expect(out.streamX.message).toContain(
      "(probably the streamed request body (Chromium streams uploads over HTTP/2+ only); or refused by the browser's CORS rules: ",
    );
  }, 60_000);

  it("a chain over CORS-refused endpoints rejects with FallbackExhaustedError, no hint; a hedge keeps credentials home", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X, B }) => {
        const { lib, outcome } = window as unknown as W;
        const layer = lib.createResilience({
          retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 5 },
          fallback: lib.fallback([
            {
              name: "xx",
              endpoints: [
                { name: "p", url: `${X}/noacao/c` },
                { name: "q", url: `${X}/nopre/c` },
              ],
            },
            {
              name: "hh",
              hedge: { delay: 20 },
              endpoints: [
                { name: "p", url: `${X}/hang` },
                { name: "q", url: `${B}/ok/h` },
              ],
            },
          ]),
        });
        return {
          chain: await outcome(layer.fetch(`${X}/noacao/c/1`, { headers: { "x-k": "1" } })),
          hedge: await outcome(layer.fetch(`${X}/hang/1`, { headers: { authorization: "Bearer secret-token-123" } })),
        };
      },
      { X, B },
    );
    expect(out.chain).toMatchObject({
      kind: "err",
      name: "FallbackExhaustedError",
      message: 'every endpoint of fallback chain "xx" failed (p: Failed to fetch; q: Failed to fetch)',
      cause: "TypeError: Failed to fetch",
    });
    expect(out.hedge).toMatchObject({ kind: "res", status: 200, url: `${B}/ok/h/1` });
    expect(lastHeaders.get("x GET /hang/1")?.authorization).toBe("Bearer secret-token-123");
    expect(lastHeaders.get("b GET /ok/h/1")).not.toHaveProperty("authorization");
  }, 60_000);

  it("503 then 200, and Retry-After exposed or hidden by CORS, across origins and after a followed redirect", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X, B }) => {
        const { lib, outcome } = window as unknown as W;
        const layer = () =>
          lib.createResilience({ retry: { maxRetryAfter: 100, initialDelay: 1, maxDelay: 5, jitter: "none" } });
        const flakyPlain = await outcome(fetch(`${X}/flaky/r1`));
        const flaky = await outcome(layer().fetch(`${X}/flaky/r2`));
        const shown = layer();
        const exposed = await outcome(shown.fetch(`${X}/r429/r3?ra=5`));
        const hidden = layer();
        const unexposed = await outcome(hidden.fetch(`${X}/r429/r4?ra=5&expose=0`));
        const moved = layer();
        const redirected = await outcome(moved.fetch(`${B}/redir/302?to=${encodeURIComponent(`${X}/r429/r5?ra=5`)}`));
        const state = (l: ReturnType<typeof layer>) =>
          Object.fromEntries(Object.entries(l.health().breakers).map(([k, v]) => [k, v.state]));
        return {
          flakyPlain,
          flaky,
          exposed,
          unexposed,
          redirected,
          shown: state(shown),
          hidden: state(hidden),
          moved: state(moved),
        };
      },
      { X, B },
    );
    const xHost = new URL(X).host;
    const bHost = new URL(B).host;
    expect(out.flakyPlain).toMatchObject({ kind: "res", status: 503 });
    expect(out.flaky).toMatchObject({ kind: "res", status: 200 });
    expect(count("x GET /flaky/r2")).toBe(2);
    expect(out.exposed).toMatchObject({ kind: "res", status: 429 });
    expect(count("x GET /r429/r3")).toBe(1);
    expect(out.shown[xHost]).toBe("open");
    expect(out.unexposed).toMatchObject({ kind: "res", status: 200 });
    expect(count("x GET /r429/r4")).toBe(2);
    expect(out.hidden[xHost]).toBe("closed");
    expect(out.redirected).toMatchObject({ kind: "res", status: 429, url: `${X}/r429/r5?ra=5` });
    expect(out.moved[xHost]).toBe("open");
    expect(out.moved[bHost]).toBe("closed");
  }, 60_000);

  it("keepalive: 64 KiB goes, past it the layer refuses with its TypeError where fetch says Failed to fetch", async () => {
    mark();
    const r = await lp.page.evaluate(
      async ({ B }) => {
        const { lib, outcome } = window as unknown as W;
        const retries: string[] = [];
        const layer = lib.createResilience({ retry: { initialDelay: 1, maxDelay: 5 } });
        layer.on("retry", (e) => retries.push(e.url));
        const bodies: [string, () => BodyInit][] = [
          ["string", () => "a".repeat(65537)],
          ["bytes", () => new Uint8Array(65537)],
          ["blob", () => new Blob([new Uint8Array(65537)])],
          ["params", () => new URLSearchParams({ a: "b".repeat(65535) })],
        ];
        const out: Record<string, Outcome> = {};
        out.plainAtCap = await outcome(
          fetch(`${B}/ok/k0`, { method: "POST", keepalive: true, body: "a".repeat(65536) }),
        );
        out.atCap = await outcome(
          layer.fetch(`${B}/ok/k0`, { method: "POST", keepalive: true, body: "a".repeat(65536) }),
        );
        for (const [name, body] of bodies) {
          out[`plain ${name}`] = await outcome(fetch(`${B}/ok/k1`, { method: "POST", keepalive: true, body: body() }));
          out[name] = await outcome(layer.fetch(`${B}/flaky/k1`, { method: "POST", keepalive: true, body: body() }));
        }
        const request = () => new Request(`${B}/flaky/k2`, { method: "PUT", body: "a".repeat(70000), keepalive: true });
        out["plain request"] = await outcome(fetch(request()));
        out.request = await outcome(layer.fetch(request()));
        // A degradation rewrite that grows a body at the cap by one byte (premium → standard).
        const levels = lib.createResilience({ degradation: lib.degradation({}) });
        levels.degradation?.setLevel("medium");
        const base = JSON.stringify({ model: "premium", pad: "" });
        const atCap = JSON.stringify({ model: "premium", pad: "a".repeat(65536 - base.length) });
        const json = { "content-type": "application/json" };
        out["plain rewrite"] = await outcome(
          fetch(`${B}/ok/k3`, { method: "POST", keepalive: true, headers: json, body: atCap }),
        );
        out.rewrite = await outcome(
          levels.fetch(`${B}/flaky/k3`, { method: "POST", keepalive: true, headers: json, body: atCap }),
        );
        // A transform that makes a body past the cap: that endpoint fails, the chain moves on.
        const chained = lib.createResilience({
          fallback: lib.fallback([
            {
              name: "big",
              endpoints: [
                { name: "p", url: `${B}/big`, transform: (r) => ({ ...r, body: { pad: "a".repeat(70000) } }) },
                { name: "q", url: `${B}/ok/big` },
              ],
            },
          ]),
        });
        const passes: string[] = [];
        chained.on("fallback", (e) => passes.push(`${e.from}>${e.next}: ${e.reason}`));
        out.transform = await outcome(
          chained.fetch(`${B}/big/1`, { method: "POST", keepalive: true, headers: json, body: "{}" }),
        );
        // Past maxReplayBytes but under the cap: a keepalive Request is sent once, as fetch sends it.
        const small = lib.createResilience({ maxReplayBytes: 100, retry: { initialDelay: 1, maxDelay: 5 } });
        const once = () => new Request(`${B}/flaky/k4`, { method: "PUT", body: "z".repeat(2000), keepalive: true });
        out.once = await outcome(small.fetch(once()));
        const health = (l: { health(): { breakers: Record<string, { failureCount: number }> } }) =>
          Object.values(l.health().breakers).map((b) => b.failureCount);
        return { out, retries, passes, health: [...health(layer), ...health(levels)] };
      },
      { B },
    );
    const refused = (bytes: number) => ({
      kind: "err",
      name: "TypeError",
      message: `resilience.fetch: browsers send a keepalive request body of 64 KiB at most, got ${bytes} bytes`,
    });
    const { out } = r;
    expect(out.plainAtCap).toMatchObject({ kind: "res", status: 200, text: "b:POST:/ok/k0:65536:" });
    expect(out.atCap).toMatchObject({ kind: "res", status: 200, text: "b:POST:/ok/k0:65536:" });
    for (const name of ["string", "bytes", "blob", "params", "request"])
      expect(out[`plain ${name}`], name).toMatchObject({ kind: "err", name: "TypeError", message: "Failed to fetch" });
    // Plain fetch sends the caller's body at the cap; the layer's rewrite made it one byte longer.
    expect(out["plain rewrite"]).toMatchObject({ kind: "res", status: 200 });
    expect(out.string).toMatchObject(refused(65537));
    expect(out.bytes).toMatchObject(refused(65537));
    expect(out.blob).toMatchObject(refused(65537));
    expect(out.params).toMatchObject(refused(65537));
    expect(out.request).toMatchObject(refused(70000));
    expect(out.rewrite).toMatchObject(refused(65537));
    expect(out.transform).toMatchObject({ kind: "res", status: 200, text: "b:POST:/ok/big/1:2:{}" });
    expect(r.passes).toEqual([
      "p>q: TypeError: resilience.fetch: browsers send a keepalive request body of 64 KiB at most, got 70010 bytes",
    ]);
    expect(out.once).toMatchObject({ kind: "res", status: 503 });
    expect(count("b PUT /flaky/k4")).toBe(1);
    // Nothing refused went out, nothing was retried or counted against the host.
    expect(since().filter((h) => / \/(?:flaky\/k[123]|big\/)/.test(h))).toEqual([]);
    expect(r.retries).toEqual([]);
    expect(r.health.every((n) => n === 0)).toBe(true);
  }, 60_000);

  it("keepalive: the refusal names the body's bytes, not its string length (70,000 é are 140,000 bytes)", async () => {
    const out = await lp.page.evaluate(
      async ({ B }) => {
        const { lib, outcome } = window as unknown as W;
        const layer = lib.createResilience();
        const body = "é".repeat(70000);
        return {
          bytes: new TextEncoder().encode(body).byteLength,
          plain: await outcome(fetch(`${B}/ok/k5`, { method: "POST", keepalive: true, body })),
          layer: await outcome(layer.fetch(`${B}/ok/k5`, { method: "POST", keepalive: true, body })),
        };
      },
      { B },
    );
    expect(out.bytes).toBe(140000);
    expect(out.plain).toMatchObject({ kind: "err", message: "Failed to fetch" });
    expect(out.layer).toMatchObject({ kind: "err", name: "TypeError" });
    // Observed: "… got 70000 bytes".
    expect(out.layer.message).toBe(
      "resilience.fetch: browsers send a keepalive request body of 64 KiB at most, got 140000 bytes",
    );
  }, 60_000);

  it("relative URLs go where fetch sends them; a <base href> to the other origin moves the breaker and the hint", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X, B }) => {
        const { lib, outcome } = window as unknown as W;
        const quick = { maxAttempts: 2, initialDelay: 1, maxDelay: 5 };
        const plain = lib.createResilience({ retry: quick });
        const flaky = await outcome(plain.fetch("flaky/rel"));
        const slash = await outcome(plain.fetch("/ok/rel?api_key=SECRET"));
        const down = await outcome(plain.fetch("always503?api_key=SECRET#frag"));
        const debug = JSON.stringify(plain.debugInfo().recentErrors);
        const hosts = Object.keys(plain.health().breakers);
        const levels = lib.createResilience({
          degradation: lib.degradation({ rules: [{ match: `${B}/ok/dgm`, params: { steps: "p.steps" } }] }),
        });
        levels.degradation?.setLevel("medium");
        const steps = { method: "POST", headers: { "content-type": "application/json" }, body: '{"p":{"steps":50}}' };
        const rewritten = await outcome(levels.fetch("ok/dgm/1", steps));
        const base = document.createElement("base");
        base.href = `${X}/noacao/`;
        document.head.append(base);
        try {
          const moved = lib.createResilience({ retry: quick });
          const plainMoved = await outcome(fetch("thing"));
          const refused = await outcome(moved.fetch("thing", { headers: { "x-h": "1" } }));
          const movedHosts = Object.keys(moved.health().breakers);
          base.href = `${X}/ok/`;
          const chained = lib.createResilience({
            retry: quick,
            fallback: lib.fallback([
              {
                name: "bc",
                endpoints: [
                  { name: "p", url: `${X}/ok/c` },
                  { name: "q", url: `${B}/ok/q` },
                ],
              },
            ]),
          });
          const chain = await outcome(chained.fetch("c/always503"));
          return { flaky, slash, down, debug, hosts, rewritten, plainMoved, refused, movedHosts, chain };
        } finally {
          base.remove();
        }
      },
      { X, B },
    );
    const bHost = new URL(B).host;
    const xHost = new URL(X).host;
    expect(out.flaky).toMatchObject({ kind: "res", status: 200, url: `${B}/flaky/rel` });
    expect(count("b GET /flaky/rel")).toBe(2);
    expect(out.slash).toMatchObject({ kind: "res", status: 200, url: `${B}/ok/rel?api_key=SECRET` });
    expect(out.down).toMatchObject({ kind: "res", status: 503 });
    expect(out.hosts).toEqual([bHost]);
    expect(out.debug).not.toContain("SECRET");
    expect(out.debug).not.toContain("frag");
    expect(out.rewritten).toMatchObject({ kind: "res", text: 'b:POST:/ok/dgm/1:18:{"p":{"steps":30}}' });
    expect(out.plainMoved).toMatchObject({ kind: "err", message: "Failed to fetch" });
    expect(count("x GET /noacao/thing")).toBe(1);
    expect(count("x OPTIONS /noacao/thing")).toBe(2);
    expect(out.refused).toMatchObject({ name: "RetryExhaustedError", attempts: 2, endpoint: xHost });
    expect(out.refused.message).toContain(
      `(probably refused by the browser's CORS rules: ${X} must allow the origin ${B} and the request headers x-h in`,
    );
    expect(out.movedHosts).toEqual([xHost]);
    expect(out.chain).toMatchObject({ kind: "res", status: 503, url: `${B}/ok/q/always503` });
    expect(count("x GET /ok/c/always503")).toBe(2);
  }, 60_000);

  it("the caller's abort rejects with signal.reason as fetch does; attempt timeouts are retried to a TimeoutError", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X }) => {
        const { lib, outcome } = window as unknown as W;
        const reason = new Error("mine");
        const abortAfter = (ms: number) => {
          const c = new AbortController();
          setTimeout(() => c.abort(reason), ms);
          return c.signal;
        };
        const settle = (p: Promise<Response>) =>
          p.then(
            () => "resolved",
            (e: unknown) => e === reason,
          );
        const layer = lib.createResilience({ retry: { initialDelay: 1, maxDelay: 5 } });
        const events: string[] = [];
        layer.on("request", (e) => events.push(e.outcome));
        const plain = await settle(fetch(`${X}/hang/a1`, { signal: abortAfter(30) }));
        const viaLayer = await settle(layer.fetch(`${X}/hang/a2`, { signal: abortAfter(30) }));
        const timed = lib.createResilience({
          retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 5 },
          timeout: { attempt: 40 },
        });
        const timeout = await outcome(timed.fetch(`${X}/hang/t1`));
        return { plain, viaLayer, events, errorRate: layer.health().errorRate, timeout };
      },
      { X },
    );
    expect(out.plain).toBe(true);
    expect(out.viaLayer).toBe(true);
    expect(out.events).toEqual(["aborted"]);
    expect(out.errorRate).toBe(0);
    expect(out.timeout).toMatchObject({ kind: "err", name: "TimeoutError", attempts: 3 });
    expect(count("x GET /hang/t1")).toBe(3);
  }, 60_000);

  it("a 307 POST the browser follows across origins reaches the target as plain fetch's does", async () => {
    mark();
    const out = await lp.page.evaluate(
      async ({ X, B }) => {
        const { lib, outcome } = window as unknown as W;
        const init = () => ({
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-api-key": "k-123456789",
            authorization: "Bearer abcdefghij",
          },
          body: "{}",
        });
        const to = (n: string) => `${B}/redir/307?to=${encodeURIComponent(`${X}/ok/${n}`)}`;
        return {
          plain: await outcome(fetch(to("p307"), init())),
          layer: await outcome(lib.createResilience().fetch(to("l307"), init())),
        };
      },
      { X, B },
    );
    expect(out.plain).toMatchObject({ kind: "res", status: 200, text: "x:POST:/ok/p307:2:{}" });
    expect(out.layer).toMatchObject({ kind: "res", status: 200, text: "x:POST:/ok/l307:2:{}" });
    const plain = lastHeaders.get("x POST /ok/p307");
    const layer = lastHeaders.get("x POST /ok/l307");
    for (const headers of [plain, layer]) {
      expect(headers).not.toHaveProperty("authorization");
      expect(headers?.["x-api-key"]).toBe("k-123456789");
    }
    expect(count("b POST /redir/307")).toBe(2);
  }, 60_000);
});
