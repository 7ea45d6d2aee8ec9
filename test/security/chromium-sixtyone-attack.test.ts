/**
 * Outside-in attack on docs/browsers-and-cors.md and README.md's browser sentences in a real Chromium on the browser
 * build, on what earlier runs (cors-differential, browsercors-fortyfive, pagecors-fiftythree, corsdoc-fortynine,
 * corsdoc-fiftyseven, browserdoc-fiftyfive) left aside: the preflight caused by every header the layer adds at once
 * (`Idempotency-Key`, the degradation level header, a rule's rewritten header and Blob body) beside a caller's
 * `traceparent`, compared attempt by attempt with the hint's list on the plain call, a `Request` and the ky client;
 * what a chain's and a hedge's other origin is asked to allow; what a browser-followed redirect carries; no-cors on a
 * hedge.
 *
 * Docs:
 * - docs/browsers-and-cors.md: "A JSON POST already needs a preflight (its `content-type` is not safelisted);
 *   `idempotency-key` only adds a name to the list it must allow."; "In a browser that header must be in the API's
 *   `Access-Control-Allow-Headers`, or **every** keyed call fails, not only the retried ones: the first attempt's
 *   preflight is already refused."; "the error's message ends with a hint that CORS is the likely cause, naming the
 *   request headers the preflight must allow (every one sent but `accept`, … with safelisted values, as above; a
 *   `Blob` body's type counts as the `content-type` fetch sends for it when the call sets none)"; "A GET, or a POST
 *   with an `Idempotency-Key`, is retried, and each attempt is refused the same way: … its `cause` the `TypeError`. A
 *   POST without a key makes one attempt"; the curl example's `Access-Control-Request-Headers:
 *   content-type,idempotency-key`; "The hint also says that any origin the API redirects to must allow the page … A
 *   request that another origin redirects to a different origin … arrives there with `Origin: null`"; "A fallback
 *   chain's `FallbackExhaustedError` carries no hint (…): its message lists each endpoint's `Failed to fetch`."; "So
 *   the page's build adds no key to such a call and takes a POST as keyless whatever its headers say"; "From another
 *   origin its answer is opaque …: the call resolves with it, it is never retried, and the host's breaker counts it
 *   as a success".
 * - README.md: "A browser page must be allowed by the API's CORS policy to send the headers you add (an
 *   `Idempotency-Key` included)"; the layer "stops calling a host whose breaker is open (save a hop of a redirect a
 *   browser follows itself". SECURITY.md Limits: the browser "forwards a custom header such as `x-api-key` when the
 *   new origin's CORS preflight allows it".
 * - docs/fallback.md: "To an origin other than the one the caller addressed, only an allowlist of the caller's
 *   headers goes: … `idempotency-key` … and what you name in `crossOriginHeaders`"; "The same holds for hedges";
 *   `hedge` is "for idempotent requests or requests with an `Idempotency-Key` only". docs/degradation.md: the rewritten
 *   body keeps "its kind: … a Blob of the same type, so the `content-type` fetch derives from it is the same"; the
 *   level header goes to another origin "only when named in `crossOriginHeaders`".
 *
 * How: root, ./fallback, ./degradation and ./ky of the BUILT browser entries (`dist/browser`, `npm run build` first,
 * else skipped), with ky, through an import map on a page served from 127.0.0.1 (origin "page"), in Debian's Chromium
 * (test/runtimes/chromium.ts: /usr/bin/chromium, headless, offline flags); two node:http servers on other 127.0.0.1
 * ports ("api", "api2"), all three recording method, path, `Origin`, `Access-Control-Request-Headers`,
 * `Idempotency-Key`, `traceparent`, the level header, `x-model`, `content-type` and the body. Query knobs in
 * `recorder`. Preflights are never cached (`Access-Control-Max-Age: 0`), so each attempt asks again.
 *
 * Paths: plain call, `Request` input, ky client (`createClient`), degradation rewrite (`setLevel("medium")`, a JSON
 * Blob body rule and a header rule, `levelHeader`), fallback chain and hedge across two origins (with and without
 * `crossOriginHeaders`), a 307 the browser follows to another origin, `mode: "no-cors"` on a hedge, `mode:
 * "same-origin"` redirected.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found; every sentence driven held.
 *
 * Held (plain `it`):
 * - A keyed JSON POST with `traceparent` and the level header (`idempotencyKey: true`), on plain, `Request` and ky:
 *   an API allowing `content-type` only, or everything but `idempotency-key`, gets one `OPTIONS` per attempt asking
 *   `content-type,idempotency-key,traceparent,x-degradation-level` and never the POST; `RetryExhaustedError` after 3,
 *   cause `TypeError: Failed to fetch`, the hint naming exactly those four, the API's and the page's origins. Keyless:
 *   one attempt, the hint naming the three sent. Allowed: a 503 then 200, both POSTs with one key, the trace and
 *   `full`.
 * - A degradation rewrite at `medium` of a JSON Blob PUT and an `x-model` header: the preflight asks
 *   `content-type,x-degradation-level,x-model` (the Blob's type), as the hint names; allowed, `{"steps":30}` arrives
 *   as `application/json` with `x-model: standard` and level `medium`, on all three paths.
 * - A chain and a hedge from "api" to "api2": "api2"'s preflight asks `content-type,idempotency-key` only; its POST
 *   carries the key "api" got and neither `traceparent` nor the level header; with `crossOriginHeaders` (any case)
 *   it asks all four and gets them; both origins refusing: `FallbackExhaustedError` "(a: Failed to fetch; b: Failed
 *   to fetch)", no hint.
 * - A 307 from "api" to "api2": "api2" is asked, from `Origin: null`, for all four headers (the browser applies no
 *   allowlist); allowing the page's origin refuses (3 keyed attempts, one key, the hint naming the four); allowing
 *   `null` serves it with the trace, the level and the key. A hop reaches "api2" while its breaker is open (a direct
 *   call is `CircuitOpenError`, unsent).
 * - A keyed no-cors POST on a hedged chain goes to the first endpoint only, keyless, though it answers after the
 *   hedge delay; a no-cors GET is hedged, resolves opaque, no failure counted, no preflight.
 *
 * Docs-silent (not pinned; recorded in a plain `it`, and written into docs/browsers-and-cors.md in the sixty-first
 * session, asserted there):
 * - A `mode: "same-origin"` call to the page's own origin that its server redirects to another origin: Chromium
 *   refuses the hop (Failed to fetch); the layer retries it (3 GETs to the page's server, none to the other origin),
 *   counts 3 failures on the page's own host and gives no hint: the guide's early refusal covers only a URL of
 *   another origin, so a healthy same-origin server's breaker hears of the caller's mode.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILT =
  existsSync(resolve(ROOT, "dist/browser/index.js")) && existsSync(resolve(ROOT, "dist/browser/ky/index.js"));
const T = 60_000;

type Name = "page" | "api" | "api2";
/** One request as a server received it. */
interface Seen {
  at: Name;
  method: string;
  path: string;
  origin: string | undefined;
  acrh: string | undefined;
  key: string | undefined;
  trace: string | undefined;
  level: string | undefined;
  model: string | undefined;
  type: string | undefined;
  body: string;
}
const seen: Seen[] = [];
const counters = new Map<string, number>();

/**
 * A recording server. Query knobs (a `_<name>` suffix aims one at one server): `allow` (the preflight's
 * `Access-Control-Allow-Headers`, default none), `acao` (`none`: no CORS header; default `*`), `seq` (statuses in
 * turn), `redirect` (a 307 to it). Every answer closes its connection; preflights are never cached (`max-age=0`).
 */
function recorder(name: Name) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    const knob = (k: string) => url.searchParams.get(`${k}_${name}`) ?? url.searchParams.get(k);
    const h = req.headers;
    let body = "";
    for await (const chunk of req) body += String(chunk);
    if (url.pathname === "/favicon.ico") return void res.writeHead(404).end();
    const counter = `${name}${url.pathname}${req.method}`;
    const n = (counters.get(counter) ?? 0) + 1;
    counters.set(counter, n);
    seen.push({
      at: name,
      method: req.method ?? "",
      path: url.pathname,
      origin: h.origin,
      acrh: h["access-control-request-headers"],
      key: h["idempotency-key"] as string | undefined,
      trace: h.traceparent as string | undefined,
      level: h["x-degradation-level"] as string | undefined,
      model: h["x-model"] as string | undefined,
      type: h["content-type"],
      body,
    });
    const acao = knob("acao") ?? "*";
    const cors: Record<string, string> = acao === "none" ? {} : { "access-control-allow-origin": acao };
    const close = { connection: "close", "cache-control": "no-store" };
    if (req.method === "OPTIONS" && h["access-control-request-method"]) {
      return void res
        .writeHead(204, {
          ...cors,
          ...close,
          "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
          "access-control-allow-headers": knob("allow") ?? "",
          "access-control-max-age": "0",
        })
        .end();
    }
    const delay = Number(knob("delay") ?? 0);
    if (delay > 0) await new Promise((done) => setTimeout(done, delay));
    const redirect = knob("redirect");
    if (redirect) return void res.writeHead(307, { ...cors, ...close, location: redirect }).end();
    const seq = (knob("seq") ?? "200").split(",");
    const status = Number(seq[Math.min(n, seq.length) - 1]);
    const text = `${name} ${status}`;
    res.writeHead(status, { ...cors, ...close, "content-type": "text/plain" }).end(text);
  };
}

/** The page: the browser build's entries and ky through an import map, their exports on `window.lib`. */
const HTML = `<!doctype html>
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

const pageRecorder = recorder("page");
async function pageHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(HTML);
  for (const dir of ["dist/browser", "node_modules/ky"]) {
    if (!path.startsWith(`/${dir}/`)) continue;
    const file = resolve(ROOT, `.${path}`);
    if (!file.startsWith(resolve(ROOT, dir))) return void res.writeHead(404).end();
    return void readFile(file).then(
      (text) => res.writeHead(200, { "content-type": "text/javascript" }).end(text),
      () => res.writeHead(404).end(),
    );
  }
  await pageRecorder(req, res);
}

let browser: Browser | undefined;
let page: Page;
let servers: Server[] = [];
let PAGE = "";
let API = "";
let API2 = "";

const listen = (server: Server) =>
  new Promise<string>((done) =>
    server.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

beforeAll(async () => {
  if (!BUILT) return;
  servers = [createServer(pageHandler), createServer(recorder("api")), createServer(recorder("api2"))];
  [PAGE, API, API2] = (await Promise.all(servers.map(listen))) as [string, string, string];
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(`${PAGE}/`);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

beforeEach(() => {
  seen.length = 0;
  counters.clear();
});

/** In the page: `settle`, `failuresOf`, `FAST`, `call(path, r, url, init)` on the plain, `Request` or ky path. */
const PRELUDE = `
  const lib = window.lib;
  const settle = (p) => p.then(
    (r) => ({ ok: true, status: r.status, type: r.type, attempts: lib.getResilienceInfo(r)?.attempts }),
    (e) => ({ ok: false, name: String(e && e.name), message: String(e && e.message), attempts: e && e.attempts,
      cause: e && e.cause ? String(e.cause.name) + ": " + String(e.cause.message) : undefined }));
  const failuresOf = (r) => Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k, v.failureCount]));
  const FAST = { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" };
  const call = (path, r, url, init = {}) => {
    if (path === "request") return r.fetch(new Request(url, init));
    if (path === "ky") return lib.createClient({ resilience: r })(url, init)
      .catch((e) => { if (e && e.name === "HTTPError") return e.response; throw e; });
    return r.fetch(url, init);
  };
`;

/** Runs `body` in the page as an async function with `api`, `api2`, `origin` and the prelude in scope. */
function inPage<R>(body: string): Promise<R> {
  return page.evaluate(
    async ({ code, api, api2, origin }) => {
      const fn = new Function("api", "api2", "origin", `return (async () => { ${code} })();`);
      return fn(api, api2, origin);
    },
    { code: `${PRELUDE}\n${body}`, api: API, api2: API2, origin: PAGE },
  ) as Promise<R>;
}

interface Settled {
  ok: boolean;
  status?: number;
  type?: string;
  attempts?: number;
  name?: string;
  message?: string;
  cause?: string;
}

/** The page's origin and the headers a hint names, as a preflight writes them (`a,b`); `null` for no hint. */
function hinted(message: string | undefined): { origin: string; target: string; headers: string } | null {
  const m = message?.match(
    /Failed to fetch \(probably refused by the browser's CORS rules: (\S+) must allow the origin (\S+?)(?: and the request headers (.*?))? in its preflight \(OPTIONS\) answer, and send Access-Control-Allow-Origin on every answer, errors and gateway 5xx included, as must any origin it redirects to \(which sees the origin null\); the browser console names the exact cause\)$/,
  );
  return m ? { target: m[1] ?? "", origin: m[2] ?? "", headers: (m[3] ?? "").split(", ").join(",") } : null;
}

const at = (where: Name, method: string, path: string) =>
  seen.filter((s) => s.at === where && s.method === method && s.path === path);

const PATHS = ["plain", "request", "ky"] as const;
const ALL4 = "content-type,idempotency-key,traceparent,x-degradation-level";

describe.skipIf(!BUILT)("headers the layer adds, on the plain call, a `Request` and the ky client", () => {
  /*
   * "A JSON POST already needs a preflight (its `content-type` is not safelisted); `idempotency-key` only adds a name
   * to the list it must allow." "In a browser that header must be in the API's `Access-Control-Allow-Headers`, or
   * **every** keyed call fails, not only the retried ones". The hint names "every one sent but" the safelisted ones.
   */
  it(
    "each keyed attempt's preflight asks exactly what the hint names; refused on every attempt, the POST never sent",
    async () => {
      const out = await inPage<Record<string, Settled>>(`
      const res = {};
      for (const [allow, keyed] of [["content-type", true], ["content-type,traceparent,x-degradation-level", true], ["content-type", false]]) {
        for (const path of ["plain", "request", "ky"]) {
          const r = lib.createResilience({ retry: { ...FAST, idempotencyKey: keyed },
            degradation: lib.degradation({ levelHeader: "x-degradation-level" }) });
          const tag = path + "-" + (keyed ? "k" : "n") + allow.length;
          res[tag] = await settle(call(path, r, api + "/m/" + tag + "?allow=" + allow, { method: "POST",
            headers: { "content-type": "application/json", traceparent: "00-abc-def-01" }, body: '{"steps":50}' }));
        }
      }
      return res;
    `);
      for (const path of PATHS) {
        for (const [tag, attempts, asked] of [
          [`${path}-k12`, 3, ALL4],
          [`${path}-k44`, 3, ALL4],
          [`${path}-n12`, 1, "content-type,traceparent,x-degradation-level"],
        ] as const) {
          const result = out[tag];
          const preflights = at("api", "OPTIONS", `/m/${tag}`);
          expect({ tag, name: result?.name, attempts: result?.attempts, cause: result?.cause }).toEqual({
            tag,
            name: "RetryExhaustedError",
            attempts,
            cause: "TypeError: Failed to fetch",
          });
          // What Chromium asked (the form of the guide's curl example: lower case, comma-separated) is what the hint names.
          expect(preflights.map((s) => s.acrh)).toEqual(Array(attempts).fill(asked));
          expect(hinted(result?.message)).toEqual({ target: API, origin: PAGE, headers: asked });
          expect(at("api", "POST", `/m/${tag}`)).toEqual([]);
        }
      }
    },
    T,
  );

  it(
    "allowed, the POST goes with the layer's key, the level header and the caller's traceparent; one key for every retry",
    async () => {
      const out = await inPage<Record<string, Settled>>(`
      const res = {};
      for (const path of ["plain", "request", "ky"]) {
        const r = lib.createResilience({ retry: { ...FAST, idempotencyKey: true },
          degradation: lib.degradation({ levelHeader: "x-degradation-level" }) });
        res[path] = await settle(call(path, r, api + "/ok/" + path + "?seq=503,200&allow=${ALL4}", { method: "POST",
          headers: { "content-type": "application/json", traceparent: "00-abc-def-01" }, body: "{}" }));
      }
      return res;
    `);
      for (const path of PATHS) {
        expect(out[path]).toMatchObject({ ok: true, status: 200, attempts: 2 });
        const posts = at("api", "POST", `/ok/${path}`);
        expect(posts.map((s) => [s.trace, s.level, s.type])).toEqual(
          Array(2).fill(["00-abc-def-01", "full", "application/json"]),
        );
        expect(posts[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
        expect(posts[1]?.key).toBe(posts[0]?.key);
        expect(at("api", "OPTIONS", `/ok/${path}`).map((s) => s.acrh)).toEqual(Array(2).fill(ALL4));
      }
    },
    T,
  );
});

describe.skipIf(!BUILT)("a degradation rewrite", () => {
  /*
   * The hint names the headers sent, "a `Blob` body's type counts as the `content-type` fetch sends for it when the
   * call sets none"; degradation.md: the rewritten body keeps "its kind: … a Blob of the same type, so the
   * `content-type` fetch derives from it is the same".
   */
  it(
    "a rewritten Blob body and header rule: the preflight asks what the hint names; allowed, the rewrite arrives",
    async () => {
      const out = await inPage<Record<string, Settled>>(`
      const res = {};
      for (const allow of ["x-degradation-level", "content-type,x-degradation-level,x-model"]) {
        for (const path of ["plain", "request", "ky"]) {
          const r = lib.createResilience({ retry: FAST, degradation: lib.degradation({ levelHeader: "x-degradation-level",
            rules: [{ match: api + "/d", params: { steps: "steps", model: { header: "x-model" } } }] }) });
          r.degradation.setLevel("medium");
          const tag = path + allow.length;
          res[tag] = await settle(call(path, r, api + "/d/" + tag + "?allow=" + allow, { method: "PUT",
            headers: { "x-model": "premium" }, body: new Blob(['{"steps":50}'], { type: "application/json" }) }));
        }
      }
      return res;
    `);
      for (const path of PATHS) {
        const refused = out[`${path}19`];
        expect(refused).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
        expect(at("api", "OPTIONS", `/d/${path}19`).map((s) => s.acrh)).toEqual(
          Array(3).fill("content-type,x-degradation-level,x-model"),
        );
        expect(hinted(refused?.message)?.headers).toBe("content-type,x-degradation-level,x-model");
        expect(out[`${path}40`]).toMatchObject({ ok: true, status: 200, attempts: 1 });
        expect(at("api", "PUT", `/d/${path}40`).map((s) => [s.body, s.model, s.level, s.type])).toEqual([
          ['{"steps":30}', "standard", "medium", "application/json"],
        ]);
      }
    },
    T,
  );
});

describe.skipIf(!BUILT)("a chain and a hedge across origins", () => {
  /*
   * fallback.md: "To an origin other than the one the caller addressed, only an allowlist of the caller's headers
   * goes: … `idempotency-key` … and what you name in `crossOriginHeaders`"; "The same holds for hedges";
   * degradation.md: the level header goes to another origin "only when named in `crossOriginHeaders`". So the other
   * origin's preflight must allow less. browsers-and-cors.md: "A fallback chain's `FallbackExhaustedError` carries no
   * hint (…): its message lists each endpoint's `Failed to fetch`."
   */
  it(
    "the other origin is asked for the allowlist only (more with crossOriginHeaders), the same key; no hint",
    async () => {
      const out = await inPage<Record<string, Settled>>(`
      const mk = (hedge, cross) => lib.createResilience({ retry: { ...FAST, idempotencyKey: true },
        ...(cross ? { crossOriginHeaders: ["Traceparent", "X-Degradation-Level"] } : {}),
        degradation: lib.degradation({ levelHeader: "x-degradation-level" }),
        fallback: lib.fallback([{ name: "c", ...(hedge ? { hedge: { delay: 30 } } : {}),
          endpoints: [{ name: "a", url: api + "/c" }, { name: "b", url: api2 + "/c" }] }]) });
      const init = { method: "POST", headers: { "content-type": "application/json", traceparent: "00-t-01" }, body: "{}" };
      const q = "allow_api=${ALL4}&allow_api2=content-type,idempotency-key";
      return {
        chain: await settle(mk(false, false).fetch(api + "/c/chain?seq_api=503&" + q, init)),
        hedge: await settle(mk(true, false).fetch(api + "/c/hedge?delay_api=400&" + q, init)),
        cross: await settle(mk(false, true).fetch(api + "/c/cross?" + q.replace("${ALL4}", "content-type"), init)),
        crossOk: await settle(mk(false, true).fetch(api + "/c/crossok?seq_api=503&allow=${ALL4}", init)),
      };
    `);
      for (const tag of ["chain", "hedge"]) {
        expect(out[tag]).toMatchObject({ ok: true, status: 200 });
        const first = at("api", "POST", `/c/${tag}`);
        const second = at("api2", "POST", `/c/${tag}`);
        expect(first.map((s) => [s.trace, s.level])).toEqual(Array(first.length).fill(["00-t-01", "full"]));
        expect(second.map((s) => [s.trace, s.level, s.key])).toEqual([[undefined, undefined, first[0]?.key]]);
        expect(at("api2", "OPTIONS", `/c/${tag}`).map((s) => s.acrh)).toEqual(["content-type,idempotency-key"]);
      }
      // Both refusing: each endpoint's Failed to fetch, no hint.
      expect(out.cross).toMatchObject({
        name: "FallbackExhaustedError",
        message: 'every endpoint of fallback chain "c" failed (a: Failed to fetch; b: Failed to fetch)',
      });
      expect(at("api2", "OPTIONS", "/c/cross").map((s) => s.acrh)).toEqual(Array(3).fill(ALL4));
      expect(out.crossOk).toMatchObject({ ok: true, status: 200 });
      expect(at("api2", "POST", "/c/crossok").map((s) => [s.trace, s.level])).toEqual([["00-t-01", "full"]]);
    },
    T,
  );
});

describe.skipIf(!BUILT)("a redirect the browser follows", () => {
  /*
   * "The hint also says that any origin the API redirects to must allow the page … A request that another origin
   * redirects to a different origin … arrives there with `Origin: null`". SECURITY.md: the browser "forwards a
   * custom header such as `x-api-key` when the new origin's CORS preflight allows it". README: the layer "stops
   * calling a host whose breaker is open (save a hop of a redirect a browser follows itself".
   */
  it(
    "the target is asked for every header the call sent (no allowlist), from origin null; the hint says so",
    async () => {
      const out = await inPage<Record<string, Settled>>(`
      const mk = () => lib.createResilience({ retry: { ...FAST, idempotencyKey: true },
        degradation: lib.degradation({ levelHeader: "x-degradation-level" }) });
      const init = { method: "POST", headers: { "content-type": "application/json", traceparent: "00-t-01" }, body: "{}" };
      const hop = (path, acao) => api + "/r/" + path + "?allow=${ALL4}&redirect=" + encodeURIComponent(api2 + "/t/" + path + "?allow=${ALL4}&acao=" + acao);
      return {
        page: await settle(mk().fetch(hop("page", encodeURIComponent(origin)), init)),
        nul: await settle(mk().fetch(hop("null", "null"), init)),
      };
    `);
      expect(out.page).toMatchObject({ name: "RetryExhaustedError", attempts: 3 });
      expect(hinted(out.page?.message)).toEqual({ target: API, origin: PAGE, headers: ALL4 });
      expect(at("api2", "OPTIONS", "/t/page").map((s) => [s.origin, s.acrh])).toEqual(Array(3).fill(["null", ALL4]));
      const keys = at("api", "POST", "/r/page").map((s) => s.key);
      expect(keys).toHaveLength(3);
      expect(new Set(keys).size).toBe(1);
      expect(out.nul).toMatchObject({ ok: true, status: 200, attempts: 1 });
      expect(at("api2", "POST", "/t/null").map((s) => [s.origin, s.trace, s.level, s.key])).toEqual([
        ["null", "00-t-01", "full", at("api", "POST", "/r/null")[0]?.key],
      ]);
    },
    T,
  );

  it(
    "a hop reaches a host whose breaker is open, while a call to it is refused unsent",
    async () => {
      const out = await inPage<Record<string, unknown>>(`
      const r = lib.createResilience({ retry: { ...FAST, maxAttempts: 1 }, breaker: { failureThreshold: 1 } });
      const refused = await settle(r.fetch(api2 + "/b/refused?acao=none"));
      const blocked = await settle(r.fetch(api2 + "/b/blocked"));
      const hop = await settle(r.fetch(api + "/b/hop?redirect=" + encodeURIComponent(api2 + "/b/target")));
      const states = Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k, v.state]));
      return { refused, blocked, hop, states };
    `);
      const host = (url: string) => new URL(url).host;
      expect(out.refused).toMatchObject({ name: "RetryExhaustedError", attempts: 1 });
      expect(hinted((out.refused as Settled).message)).toEqual({ target: API2, origin: PAGE, headers: "" });
      expect(out.blocked).toMatchObject({ name: "CircuitOpenError" });
      expect(at("api2", "GET", "/b/blocked")).toEqual([]);
      expect(out.hop).toMatchObject({ ok: true, status: 200 });
      expect(at("api2", "GET", "/b/target").map((s) => s.origin)).toEqual(["null"]);
      expect(out.states).toEqual({ [host(API2)]: "open", [host(API)]: "closed" });
    },
    T,
  );
});

describe.skipIf(!BUILT)("no-cors on a hedge", () => {
  /*
   * "So the page's build adds no key to such a call and takes a POST as keyless whatever its headers say";
   * fallback.md: a hedge is "for idempotent requests or requests with an `Idempotency-Key` only"; "From another
   * origin its answer is opaque …: the call resolves with it, it is never retried, and the host's breaker counts it
   * as a success".
   */
  it(
    "a keyed no-cors POST is not hedged (the key never leaves); a GET is, and resolves opaque, nothing failed",
    async () => {
      const out = await inPage<Record<string, unknown>>(`
      const r = lib.createResilience({ retry: { ...FAST, idempotencyKey: true }, breaker: { failureThreshold: 1 },
        fallback: lib.fallback([{ name: "h", hedge: { delay: 30 },
          endpoints: [{ name: "a", url: api + "/n" }, { name: "b", url: api2 + "/n" }] }]) });
      const post = await settle(r.fetch(api + "/n/post?delay_api=300&seq=503", { method: "POST", mode: "no-cors",
        headers: { "idempotency-key": "k-own" }, body: "job" }));
      const get = await settle(r.fetch(api + "/n/get?delay_api=300&seq=503", { mode: "no-cors" }));
      return { post, get, failures: failuresOf(r) };
    `);
      expect(out.post).toMatchObject({ ok: true, status: 0, type: "opaque", attempts: 1 });
      expect(at("api", "POST", "/n/post").map((s) => s.key)).toEqual([undefined]);
      expect(at("api2", "POST", "/n/post")).toEqual([]);
      expect(out.get).toMatchObject({ ok: true, status: 0, type: "opaque" });
      expect(at("api2", "GET", "/n/get")).toHaveLength(1);
      expect(Object.values(out.failures as Record<string, number>).every((n) => n === 0)).toBe(true);
      expect(seen.filter((s) => s.method === "OPTIONS")).toEqual([]);
    },
    T,
  );
});

describe.skipIf(!BUILT)("docs-silent (written into browsers-and-cors.md in the sixty-first session)", () => {
  it(
    "a same-origin-mode call to the page's own origin, redirected away: retried, counted on the page's host, no hint",
    async () => {
      const out = await inPage<{ result: Settled; failures: Record<string, number> }>(`
      const r = lib.createResilience({ retry: FAST });
      const result = await settle(r.fetch(origin + "/so?redirect=" + encodeURIComponent(api + "/so-target"), { mode: "same-origin" }));
      return { result, failures: failuresOf(r) };
    `);
      expect(out.result).toMatchObject({
        name: "RetryExhaustedError",
        attempts: 3,
        cause: "TypeError: Failed to fetch",
      });
      expect(out.result.message).toBe(`gave up after 3 attempts to ${new URL(PAGE).host}: Failed to fetch`);
      expect(at("page", "GET", "/so")).toHaveLength(3);
      expect(at("api", "GET", "/so-target")).toEqual([]);
      expect(out.failures).toEqual({ [new URL(PAGE).host]: 3 });
      // Written into the guide since: the layer cannot tell this refusal from a network error.
      const guide = readFileSync(new URL("../../docs/browsers-and-cors.md", import.meta.url), "utf8").replace(
        /\s+/g,
        " ",
      );
      expect(guide).toContain(
        'is refused by the browser at the redirect, and page code sees only "Failed to fetch", as for a network error: the layer cannot tell the two apart, so it is retried and counted by your own host\'s breaker, with no CORS hint.',
      );
    },
    T,
  );
});
