/**
 * Outside-in attack on docs/runtimes.md sentence by sentence and on docs/architecture.md's claims about what
 * differs per runtime: the BUILT package (dist/, the Node build) driven in Node 22, Deno 2, Bun 1 and workerd with
 * real sockets on 127.0.0.1; two copies of the package in one realm; a global object that takes no property.
 *
 * Docs:
 * - docs/runtimes.md: "One conformance suite (… retry with backoff and `Retry-After`, idempotency, … a cross-origin
 *   redirect that must not carry credentials, … abort during a backoff …) runs against the **built** package … in
 *   every runtime it claims"; the table (Node, Deno, Bun, workerd rows: "every check"); "Where runtimes differ from
 *   one another, not from the library: …".
 * - docs/architecture.md: "dist/ for Node, Deno, Bun and workerd, and dist/browser/ … without what only runs
 *   outside browsers"; "`send/`: … what failed (classify.ts, failure-reason.ts)"; "What a layer of another copy of
 *   the package (an SDK's own) must read too lives in `core/realm-shared.ts`, one object per realm under a
 *   registered symbol, made at first use: the marks … and … a `WeakMap` (`beneath`: a layer's `fetch` to the fetch
 *   beneath it …)"; "`getResilienceInfo` reads a registered symbol as well".
 * - docs/retry.md: "Retried by default: network errors, attempt timeouts and statuses …"; "Retry events name a
 *   failure the way people do, from the platform's error codes where the runtime exposes them (undici's and Bun's
 *   codes, Deno's and workerd's messages): `connection refused`, `connection reset`, `DNS lookup failed`, …
 *   `attempt timeout`"; Idempotency: a keyless POST "is sent again … when it never reached the server (connection
 *   refused, DNS …)", "After a 500, a reset connection or an attempt … timeout it is not sent again"; "The marks a
 *   layer in front reads … live in one object per realm, so they hold too when the layer below comes from another
 *   copy of the package …, unless the global object cannot keep it (frozen, …): each copy then reads its own marks
 *   only"; `Retry-After` "replaces the computed delay and is never jittered", "A `Retry-After` longer than
 *   `maxRetryAfter` is not slept through: the call resolves with that response at once …, and the host is held
 *   open until then"; "A caller's abort … rejects with `signal.reason`"; Bodies: "`duplex: "half"` is added for
 *   stream bodies where the caller left it out", "A `ReadableStream` body … is sent once on every path: no retry,
 *   …, no 307/308", "a stream body … given in `init` fails any redirect but a 303, a 301/302 too (a `TypeError`…)",
 *   "a `Request` input's body is read into bytes once and replayed … it goes with a `content-length`"; Redirects:
 *   "Outside browsers (Node, Deno, Bun, workerd) the library follows … itself", "only the cross-origin allowlist is
 *   sent", "at most 20 hops (then a `TypeError`)", "`type` `\"cors\"` once a hop left the first URL's origin", "A
 *   `redirect` event reports each hop (… the _names_ of the headers dropped)", "Calls with `redirect: \"manual\"`
 *   or `\"error\"` go to the transport untouched; a `redirect: \"error\"` call that meets a redirect is refused
 *   by the platform with the `TypeError` of a network failure, … so it is retried like one", "workerd refuses
 *   `redirect: \"error\"` on every call … fails at once with the runtime's `TypeError` (\"this runtime refuses
 *   the call: …\"), never sent, retried or counted".
 * - docs/options.md `fetch` row: "a layer never calls itself, nor another through the global fetch (one of another
 *   copy of the package, an SDK's own, included, unless the global object is frozen)".
 * - docs/fallback.md: "An endpoint is left for the next one on a network error".
 *
 * How: `npm run build` once (this file never builds: without dist/ or a runtime's binary its tests are skipped,
 * saying why). dist/ (less dist/browser and the .d.ts) copied four times under the OS temp dir (copies a, b, c, d:
 * each its own files, so its own module instances, as an app's copy and an SDK's). One script body run against copy
 * a's root and `./fallback` entries in Node (process.execPath), Deno (`node_modules/.bin/deno run -A`), Bun
 * (`node_modules/.bin/bun`) and workerd (`node_modules/.bin/workerd test`, the body and copy a bundled by esbuild
 * into one module, compatibility date 2025-09-01, outbound through a network service that allows 127.0.0.1), each
 * printing one JSON report; two more scripts per spawned runtime for the realm (copies a–d). Servers: two
 * node:http origins on 127.0.0.1 (test/helpers/http-upstream.ts `httpUpstream`: 503, 500-then-503, `Retry-After`,
 * redirects of any status, a 21-hop redirect chain, a socket destroyed on arrival, an answer that never comes, an
 * echo) and a closed port (`refusedOrigin`). Every request is tagged `?c=<runtime>-<case>` and counted here. 7
 * runtime processes in all, each about a second.
 *
 * Paths: plain call (GET, keyless POST), fallback chain (a refused endpoint, then a spare), followed redirect (301,
 * 302, 303, 307, 308 with a stream body; a 307 across origins from a `Request` made of a stream with credentials;
 * 20 and 21 hops; `redirect: "manual"` and `"error"`; `Retry-After` on 503; an `AbortSignal.timeout` in an attempt
 * and in a backoff), `Request` input, a layer of one copy installed as the global fetch under a layer of another,
 * a layer of one copy as another copy's transport, `getResilienceInfo` across copies; a sealed, then frozen global.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed since, 1 in the code (an error workerd marks `retryable` is a network error), 2 in the docs (a sealed global is named with a frozen one), so plain `it`):
 * 1. docs/retry.md "Retried by default: network errors …" and "Retry events name a failure the way people do, from
 *    the platform's error codes where the runtime exposes them (… Deno's and workerd's messages): `connection
 *    refused`, `connection reset`, …"; docs/runtimes.md's workerd row ("every check"). Observed in workerd
 *    2026-11-02 (compatibility date 2025-09-01) over real sockets: fetch to a closed 127.0.0.1 port and to a server
 *    that destroys the socket rejects with a plain `Error` ("Network connection lost.", `retryable: true`), not a
 *    `TypeError`; the layer makes one attempt, fires no `retry` event and rejects with `RetryExhaustedError`
 *    (`attempts` 1), where Node, Deno and Bun retry the same GET and name it `connection refused` / `connection
 *    reset` (the server got 1 request from workerd, 2 from each other runtime). Source:
 *    src/http/send/classify.ts `isNetworkError` (the default `retryOn.error`, `isRetryableError`) takes only a
 *    `TypeError` or an error named `TypeError`/`NetworkError`; its JSDoc says workerd throws a `TypeError`, and the
 *    workerd tests (test/workers/workerd-thirtyone-attack.test.ts) throw `new TypeError("Network connection lost.")`
 *    of their own instead of meeting a real socket (upstreams go through Miniflare's outbound service). A chain
 *    does leave such an endpoint (held below): only the retry loop misses it.
 * 2. docs/options.md `fetch` row: "a layer never calls itself, nor another through the global fetch (one of another
 *    copy of the package, an SDK's own, included, unless the global object is frozen)". Observed in Node, Deno and
 *    Bun: with `Object.seal(globalThis)` (not frozen: `globalThis.fetch = a.fetch` still works), copy B's layer
 *    with the global fetch sends through copy A's installed layer: a GET to a host answering 503 reaches it 9 times
 *    (3 × 3), not 3. Source: src/core/realm-shared.ts `realm()` (the registered-symbol property cannot be added to a
 *    global that is not extensible, so each copy keeps its own object) read by src/http/global-fetch.ts
 *    `pastLayers`, which finds another copy's layer in no `beneath` of its own. A sealed or non-extensible global is
 *    exactly "cannot keep it" in docs/retry.md's wording, but options.md names "frozen" only (and a frozen global
 *    cannot have a layer installed at all).
 *
 * Held (plain `it`):
 * - Node, Deno, Bun: a refused connection, a reset, a DNS failure (`no-such-host.invalid`) and an attempt timeout
 *   are retried and named `connection refused`, `connection reset`, `DNS lookup failed`, `attempt timeout` alike
 *   (Deno's `TypeError` says only "fetch failed", its cause the rest); a keyless POST is re-sent after a refusal and
 *   a DNS failure, not after a reset or an attempt timeout. workerd: `attempt timeout` alike; a chain leaves a
 *   refused endpoint for the next (`getResilienceInfo(res).endpoint` the spare), everywhere.
 * - All four: `Retry-After: 0` is the delay (0, `retryAfter: true`, `status 503`); `Retry-After: 30` over
 *   `maxRetryAfter: 1000` settles at once with the 503 and the host's next call is a `CircuitOpenError` with
 *   nothing sent.
 * - All four: an `AbortSignal.timeout(150)` ends the call with that very `signal.reason` (a `DOMException`
 *   `TimeoutError`, which `isTimeoutError` does not take for the layer's), during an attempt and during a 20 s
 *   backoff, one request each.
 * - All four: a `ReadableStream` body without `duplex` is sent (Node's own fetch refuses it); a stream body meeting
 *   a 503 is not retried; 301/302/307/308 with a stream body reject with `RetryExhaustedError` (1 attempt) whose
 *   cause is the follower's `TypeError`, the target never asked; a 303 follows as a GET without a body; a `Request`
 *   made of a stream with `x-api-key` and `authorization` meets a 307 to another origin: POST and body replayed with
 *   `content-length: 8`, both credentials dropped and named in the `redirect` event, `type: "cors"`, the target's
 *   URL, `redirected: true`.
 * - All four: 20 hops followed; the 21st a `TypeError` ("more than 20 redirects"), the GET retried (63 requests);
 *   `redirect: "manual"` gets the 302 untouched; `redirect: "error"` is retried as a network failure (3 requests) in
 *   Node, Deno and Bun, and refused at once in workerd ("this runtime refuses the call: …", nothing sent).
 * - Node, Deno, Bun, two copies in one realm: importing puts nothing on the global; the first `createResilience`
 *   adds `Symbol(@storycore/resilient-fetch/realm@1)`; B's layer passes over A's layer installed as the global fetch
 *   (3 requests); `getResilienceInfo` of A reads B's answer; B's keyless POST over A's keyed layer that got 500
 *   then 503 is not sent again (2 requests, one key); the global frozen after the object was made, copies loaded
 *   then still share it.
 * - Sealed then frozen global: no key on it, each copy keeps its own (the layered keyless POST is sent again, 6
 *   requests under 3 keys, as docs/retry.md allows); copies loaded after the freeze retry a 503 (3 requests), answer
 *   200 and read each other's `getResilienceInfo` (a registered symbol on the answer, not on the global).
 *
 * Docs-silent (not pinned):
 * - README.md's "Where it runs" Chromium row says "import map to `dist/`" where docs/runtimes.md says
 *   "`dist/browser/` (the browser build)"; test/runtimes/page.html maps to `/dist/browser/`. The README is stale.
 * - workerd names a refused connection and a reset alike ("Network connection lost."), so once such an error is
 *   retried it can only be named `connection reset` (src/http/send/failure-reason.ts reads "connection lost" so):
 *   a keyless POST refused in workerd will never be re-sent, unlike in Node, Deno and Bun; docs/retry.md lists
 *   workerd's messages among those that name `connection refused`. A DNS failure in local workerd is `Error:
 *   internal error; reference = …`: not retried, named nothing.
 * - A global that keeps no shared object weakens SECURITY.md's "A paid request is never processed twice" row
 *   (which names no exception): a keyless POST through an SDK copy's layer over an app copy's keyed layer reached
 *   a 500-then-503 API 6 times under 3 keys. Only docs/retry.md states the exception.
 * - The runtimes themselves, not the library: Node's fetch must have been called once before the global is sealed
 *   or frozen (undici defines a global dispatcher at its first call: "Cannot define property
 *   Symbol(undici.globalDispatcher.1), object is not extensible"); Deno exits 1 at unload with a sealed or frozen
 *   global ("Cannot add property Symbol(Deno.isUnloadDispatched)").
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Hit, httpUpstream, refusedOrigin } from "../helpers/http-upstream.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (file: string): string => readFileSync(resolve(ROOT, file), "utf8");
const BIN = resolve(ROOT, "node_modules/.bin");
const DIST = resolve(ROOT, "dist");
const HAVE_DIST = existsSync(join(DIST, "index.js")) && existsSync(join(DIST, "fallback/index.js"));
const HAVE = {
  deno: existsSync(resolve(BIN, "deno")),
  bun: existsSync(resolve(BIN, "bun")),
  workerd: existsSync(resolve(BIN, "workerd")),
};
const NO_DIST = "skipped: dist/ is missing (run `npm run build` first; this file never builds)";
type Runtime = "node" | "deno" | "bun" | "workerd";
const SPAWNED: Runtime[] = ["node", "deno", "bun"];
const TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// Two origins on 127.0.0.1 and a closed port; each request tagged `?c=<runtime>-<case>`
// ---------------------------------------------------------------------------

const api = httpUpstream();
const alt = httpUpstream();
let dead = "";

const tagOf = (hit: Hit) => new URL(hit.path, "http://x").searchParams.get("c") ?? "";
/** The requests both servers got for one case of one runtime. */
const hitsOf = (rt: Runtime, tag: string): Hit[] =>
  [...api.hits, ...alt.hits].filter((hit) => tagOf(hit) === `${rt}-${tag}`);

function route(hit: Hit): void {
  const url = new URL(hit.path, "http://x");
  const q = (name: string) => url.searchParams.get(name) ?? "";
  const { res } = hit;
  switch (url.pathname) {
    case "/503":
      res.writeHead(503);
      return void res.end("busy");
    case "/alt": {
      // 500, then 503, then 500 … per case: a keyed retry after a 500 meets a 503.
      const n = api.hits.filter((h) => tagOf(h) === tagOf(hit)).length;
      res.writeHead(n % 2 ? 500 : 503);
      return void res.end(`answer ${n}`);
    }
    case "/ra": {
      const n = api.hits.filter((h) => tagOf(h) === tagOf(hit)).length;
      if (n === 1) {
        res.writeHead(503, { "retry-after": q("v") });
        return void res.end("wait");
      }
      return void res.end("ok");
    }
    case "/to":
      res.writeHead(Number(q("s") || 307), { location: q("l") });
      return void res.end();
    case "/hops": {
      const n = Number(q("n"));
      if (n === 0) return void res.end("landed");
      res.writeHead(302, { location: `/hops?c=${q("c")}&n=${n - 1}` });
      return void res.end();
    }
    case "/reset":
      return void hit.req.socket.destroy();
    case "/hang":
      return; // never answered; the connection is closed when the client gives up (or in afterAll)
    default:
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: hit.method, headers: hit.headers, body: hit.body }));
  }
}

let dir = "";
beforeAll(async () => {
  await Promise.all([api.start(), alt.start()]);
  api.on(route);
  alt.on(route);
  dead = await refusedOrigin();
  dir = mkdtempSync(join(tmpdir(), "rtdoc49-"));
  if (!HAVE_DIST) return;
  // Four copies of the built package (the Node build), each its own files: two copies of one package in one realm,
  // as an app's own and the one an SDK bundles.
  for (const copy of ["a", "b", "c", "d"])
    cpSync(DIST, join(dir, copy), {
      recursive: true,
      filter: (src) => !src.includes("/browser") && !src.endsWith(".d.ts"),
    });
  writeFileSync(join(dir, "body.mjs"), BODY);
  writeFileSync(join(dir, "realm.mjs"), REALM);
  writeFileSync(join(dir, "sealed.mjs"), SEALED);
  writeFileSync(join(dir, "wire.mjs"), WIRE_HOST);
  writeFileSync(join(dir, "worker.mjs"), WORKER);
});
afterAll(() => {
  api.stop();
  alt.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// The scripts. BODY runs in all four runtimes against copy `a` of dist/ (root and ./fallback).
// ---------------------------------------------------------------------------

const BODY = `
export async function run(lib, fb, base, alt, dead, rt) {
  const { createResilience, isTimeoutError, isCircuitOpenError, getResilienceInfo } = lib;
  const out = {};
  const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" };
  const c = (t) => "c=" + rt + "-" + t;
  const enc = encodeURIComponent;
  const err = (e) => ({ name: e?.name, attempts: e?.attempts ?? null, phase: e?.phase ?? null,
    message: String(e?.message ?? ""), cause: e?.cause?.name ?? null, causeMessage: String(e?.cause?.message ?? "") });
  async function call(url, init = {}, options = {}) {
    const r = createResilience({ retry: { ...fast, maxAttempts: 2 }, breaker: false, ...options });
    const retries = [];
    r.on("retry", (e) => retries.push({ reason: e.reason, delay: e.delay, retryAfter: e.retryAfter }));
    const res = { retries };
    try { const a = await r.fetch(url, init); res.status = a.status; res.text = (await a.text()).slice(0, 60); res.redirected = a.redirected; }
    catch (e) { res.error = err(e); }
    return res;
  }
  const POST = { method: "POST", body: "job" };
  // (1) failures named alike
  out.refusedGet = await call(dead + "/x?" + c("x"));
  out.refusedPost = await call(dead + "/x?" + c("x"), POST);
  out.resetGet = await call(base + "/reset?" + c("reset-get"));
  out.resetPost = await call(base + "/reset?" + c("reset-post"), POST);
  out.dnsGet = await call("http://no-such-host.invalid/x");
  out.dnsPost = await call("http://no-such-host.invalid/x", POST);
  out.timeoutGet = await call(base + "/hang?" + c("hang-get"), {}, { timeout: { attempt: 150 } });
  out.timeoutPost = await call(base + "/hang?" + c("hang-post"), POST, { timeout: { attempt: 150 } });
  try { await fetch(dead + "/x"); } catch (e) { out.plainRefused = { name: e.name, isTypeError: e instanceof TypeError, message: String(e.message) }; }
  try { await fetch(base + "/reset?" + c("reset-plain")); } catch (e) { out.plainReset = { name: e.name, isTypeError: e instanceof TypeError, message: String(e.message) }; }
  // a chain whose first endpoint refuses the connection
  {
    const r = createResilience({ retry: { ...fast, maxAttempts: 1 }, breaker: false,
      fallback: fb.fallback([{ name: "gen", endpoints: [{ name: "down", url: dead + "/v1" }, { name: "spare", url: alt + "/v1" }] }]) });
    try { const a = await r.fetch(dead + "/v1/echo?" + c("chain")); await a.text(); out.chain = { status: a.status, endpoint: getResilienceInfo(a)?.endpoint ?? null }; }
    catch (e) { out.chain = err(e); }
  }
  // (2) Retry-After
  out.retryAfter0 = await call(base + "/ra?" + c("ra0") + "&v=0");
  {
    const r = createResilience({ retry: { ...fast, maxRetryAfter: 1000 } });
    let retries = 0;
    r.on("retry", () => retries++);
    const a = await r.fetch(base + "/ra?" + c("ra30") + "&v=30");
    await a.text();
    const held = { status: a.status, retries };
    try { const b = await r.fetch(base + "/echo?" + c("ra30-next")); held.next = b.status; await b.text(); }
    catch (e) { held.next = { name: e.name, circuit: isCircuitOpenError(e), retryAt: typeof e.retryAt }; }
    out.retryAfter30 = held;
  }
  // (3) AbortSignal.timeout as the caller's signal: during an attempt, during a backoff
  {
    const r = createResilience({ retry: { ...fast }, breaker: false });
    const signal = AbortSignal.timeout(150);
    try { await r.fetch(base + "/hang?" + c("ast"), { signal }); out.abortTimeout = "resolved"; }
    catch (e) { out.abortTimeout = { same: e === signal.reason, name: e?.name, ours: isTimeoutError(e) }; }
    const slow = createResilience({ retry: { initialDelay: 20000, maxDelay: 20000, jitter: "none" }, breaker: false });
    const later = AbortSignal.timeout(150);
    const t0 = Date.now();
    try { await slow.fetch(base + "/503?" + c("ast-wait"), { signal: later }); out.abortTimeoutWait = "resolved"; }
    catch (e) { out.abortTimeoutWait = { same: e === later.reason, name: e?.name, quick: Date.now() - t0 < 10000 }; }
  }
  // (4) streams as request bodies
  const stream = (text) => new ReadableStream({ start(ctl) { ctl.enqueue(new TextEncoder().encode(text)); ctl.close(); } });
  {
    const r = createResilience({ retry: { ...fast }, breaker: false });
    try { const a = await r.fetch(base + "/echo?" + c("st"), { method: "POST", body: stream("streamed") }); out.streamNoDuplex = (await a.json()).body; }
    catch (e) { out.streamNoDuplex = err(e); }
    try { const a = await fetch(base + "/echo?" + c("st-plain"), { method: "POST", body: stream("streamed") }); out.plainStreamNoDuplex = (await a.json()).body; }
    catch (e) { out.plainStreamNoDuplex = { name: e.name, message: String(e.message) }; }
    const a = await r.fetch(base + "/503?" + c("st503"), { method: "PUT", body: stream("x"), duplex: "half" });
    await a.text();
    out.stream503 = a.status;
    for (const s of [301, 302, 303, 307, 308]) {
      try {
        const b = await r.fetch(base + "/to?" + c("st" + s) + "&s=" + s + "&l=" + enc(base + "/echo?" + c("st" + s)), { method: "POST", body: stream("x"), duplex: "half" });
        const j = await b.json();
        out["stream" + s] = { method: j.method, body: j.body, redirected: b.redirected };
      } catch (e) { out["stream" + s] = err(e); }
    }
    const drops = [];
    r.on("redirect", (e) => drops.push({ status: e.status, crossOrigin: e.crossOrigin, dropped: e.dropped }));
    const req = new Request(base + "/to?" + c("rq") + "&s=307&l=" + enc(alt + "/echo?" + c("rq")), { method: "POST",
      body: stream("req-body"), duplex: "half", headers: { "x-api-key": "k", authorization: "Bearer t", "content-type": "text/plain" } });
    const b = await r.fetch(req);
    out.request307 = { ...(await b.json()), type: b.type, url: b.url, redirected: b.redirected, events: drops };
  }
  // (5) redirects
  {
    const r = createResilience({ retry: { ...fast }, breaker: false });
    const get = async (url, init) => { try { const a = await r.fetch(url, init); await a.text(); return { status: a.status, redirected: a.redirected }; } catch (e) { return err(e); } };
    out.hops20 = await get(base + "/hops?" + c("h20") + "&n=20");
    out.hops21 = await get(base + "/hops?" + c("h21") + "&n=21");
    out.manual = await get(base + "/to?" + c("manual") + "&s=302&l=" + enc(base + "/echo?" + c("manual-t")), { redirect: "manual" });
    out.error = await get(base + "/to?" + c("error") + "&s=302&l=" + enc(base + "/echo?" + c("error-t")), { redirect: "error" });
  }
  return out;
}
`;

/** Node, Deno and Bun: copy `a` of dist/ by file URL. */
const WIRE_HOST = `import { run } from "./body.mjs";
const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const lib = await import("./a/index.js");
const fb = await import("./a/fallback/index.js");
console.log(JSON.stringify(await run(lib, fb, ...args)));
`;

/** workerd: the same body, bundled with copy `a` into one module, run by \`workerd test\`. */
const WORKER = `import { run } from "./body.mjs";
import * as lib from "./a/index.js";
import * as fb from "./a/fallback/index.js";
export default { async test(ctrl, env) {
  const a = JSON.parse(env.ARGS);
  console.log("REPORT " + JSON.stringify(await run(lib, fb, ...a)));
} };
`;

const CAPNP = (date: string) => `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .w),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
);
const w :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker-bundle.js") ],
  compatibilityDate = "${date}",
  bindings = [ (name = "ARGS", fromEnvironment = "RT_ARGS") ],
  globalOutbound = "internet",
);
`;

/**
 * Two copies in one realm whose global object keeps the shared object: A's layer installed as the global fetch,
 * B's layer with the global fetch; B's layer over A's (keyless POST); then the global frozen and two more copies.
 */
const REALM = `
const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const [base, rt] = args;
const c = (t) => "c=" + rt + "-" + t;
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" };
const ours = () => Object.getOwnPropertySymbols(globalThis).map(String).filter((s) => s.includes("storycore"));
const out = { before: ours() };
const A = await import("./a/index.js");
const B = await import("./b/index.js");
out.distinct = A.createResilience !== B.createResilience;
out.afterImport = ours();
const a = A.createResilience({ retry: fast, breaker: false });
out.afterFirstUse = ours();
const original = globalThis.fetch;
globalThis.fetch = a.fetch;
const b = B.createResilience({ retry: fast, breaker: false });
const r1 = await b.fetch(base + "/503?" + c("installed"));
await r1.text();
out.installed = r1.status;
globalThis.fetch = original;
out.infoAcross = A.getResilienceInfo(r1)?.attempts ?? null;
const inner = A.createResilience({ retry: { ...fast, idempotencyKey: true, maxAttempts: 2 }, breaker: false });
const outer = B.createResilience({ retry: fast, breaker: false, fetch: inner.fetch });
let outerRetries = 0;
outer.on("retry", () => outerRetries++);
const r2 = await outer.fetch(base + "/alt?" + c("layered"), { method: "POST", body: "job" });
await r2.text();
out.layered = { status: r2.status, outerRetries };
// the global frozen once the shared object is there: copies loaded later still find it
Object.freeze(globalThis);
const C = await import("./c/index.js");
const D = await import("./d/index.js");
const innerC = C.createResilience({ retry: { ...fast, idempotencyKey: true, maxAttempts: 2 }, breaker: false });
const outerD = D.createResilience({ retry: fast, breaker: false, fetch: innerC.fetch });
const r3 = await outerD.fetch(base + "/alt?" + c("frozen-later"), { method: "POST", body: "job" });
await r3.text();
out.frozenLater = r3.status;
console.log(JSON.stringify(out));
`;

/**
 * A global object that takes no new property: sealed before any copy made a layer (fetch itself stays
 * writable, so a layer can be installed there), then frozen before two more copies load.
 */
const SEALED = `
const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const [base, rt] = args;
const c = (t) => "c=" + rt + "-" + t;
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" };
const ours = () => Object.getOwnPropertySymbols(globalThis).map(String).filter((s) => s.includes("storycore"));
// Node's fetch defines a global of its own at its first call: made before the seal.
await (await fetch(base + "/echo?" + c("warm"))).text();
Object.seal(globalThis);
const out = {};
const A = await import("./a/index.js");
const B = await import("./b/index.js");
const a = A.createResilience({ retry: fast, breaker: false });
const original = globalThis.fetch;
globalThis.fetch = a.fetch;
out.installedThere = globalThis.fetch === a.fetch;
const b = B.createResilience({ retry: fast, breaker: false });
const r1 = await b.fetch(base + "/503?" + c("sealed-installed"));
await r1.text();
out.installed = r1.status;
globalThis.fetch = original;
const inner = A.createResilience({ retry: { ...fast, idempotencyKey: true, maxAttempts: 2 }, breaker: false });
const outer = B.createResilience({ retry: fast, breaker: false, fetch: inner.fetch });
const r2 = await outer.fetch(base + "/alt?" + c("sealed-layered"), { method: "POST", body: "job" });
await r2.text();
out.layered = r2.status;
out.sealedKey = ours();
Object.freeze(globalThis);
const C = await import("./c/index.js");
const D = await import("./d/index.js");
const cc = C.createResilience({ retry: fast, breaker: false });
const r3 = await cc.fetch(base + "/503?" + c("frozen-retry"));
await r3.text();
const r4 = await cc.fetch(base + "/echo?" + c("frozen-ok"));
out.frozen = { retried: r3.status, ok: r4.status, info: D.getResilienceInfo(r4)?.attempts ?? null, key: ours() };
await r4.text();
console.log(JSON.stringify(out));
`;

// ---------------------------------------------------------------------------
// Running them (each script once per runtime, cached)
// ---------------------------------------------------------------------------

const runs = new Map<string, Promise<Record<string, unknown>>>();

function spawnReport(command: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, argv, {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let out = "";
    let errText = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      errText += d.toString();
    });
    const kill = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("error", fail);
    child.on("close", () => {
      clearTimeout(kill);
      done(`${out}\n${errText}`);
    });
  });
}

function lastJson(text: string, prefix = ""): Record<string, unknown> {
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => (prefix ? l.includes(prefix) : l.startsWith("{")))
    .pop();
  if (!line) throw new Error(`no report in:\n${text.slice(0, 3000)}`);
  return JSON.parse(prefix ? line.slice(line.indexOf(prefix) + prefix.length) : line) as Record<string, unknown>;
}

function report<T>(rt: Runtime, script: "wire" | "realm" | "sealed"): Promise<T> {
  const key = `${rt}:${script}`;
  let pending = runs.get(key);
  if (!pending) {
    if (rt === "workerd") {
      const bundle = buildSync({
        entryPoints: [join(dir, "worker.mjs")],
        bundle: true,
        format: "esm",
        platform: "neutral",
        target: "es2022",
        write: false,
        logLevel: "silent",
      }).outputFiles[0]?.text as string;
      writeFileSync(join(dir, "worker-bundle.js"), bundle);
      writeFileSync(join(dir, "worker.capnp"), CAPNP("2025-09-01"));
      const args = JSON.stringify([api.base, alt.base, dead, "workerd"]);
      pending = spawnReport(resolve(BIN, "workerd"), ["test", "worker.capnp"], { RT_ARGS: args }).then((t) =>
        lastJson(t, "REPORT "),
      );
    } else {
      const file = { wire: "wire.mjs", realm: "realm.mjs", sealed: "sealed.mjs" }[script];
      const args = script === "wire" ? [api.base, alt.base, dead, rt] : [api.base, rt];
      const [command, argv] =
        rt === "node"
          ? [process.execPath, [file, ...args]]
          : rt === "deno"
            ? [resolve(BIN, "deno"), ["run", "-A", "--no-lock", file, ...args]]
            : [resolve(BIN, "bun"), [file, ...args]];
      pending = spawnReport(command, argv).then((t) => lastJson(t));
    }
    runs.set(key, pending);
  }
  return pending as Promise<T>;
}

// ---------------------------------------------------------------------------
// What the scripts report
// ---------------------------------------------------------------------------

interface Failure {
  name: string;
  attempts: number | null;
  phase: string | null;
  message: string;
  cause: string | null;
  causeMessage: string;
}
interface Called {
  retries: Array<{ reason: string; delay: number; retryAfter: boolean }>;
  status?: number;
  text?: string;
  redirected?: boolean;
  error?: Failure;
}
interface Wire {
  refusedGet: Called;
  refusedPost: Called;
  resetGet: Called;
  resetPost: Called;
  dnsGet: Called;
  dnsPost: Called;
  timeoutGet: Called;
  timeoutPost: Called;
  plainRefused: { name: string; isTypeError: boolean; message: string };
  plainReset: { name: string; isTypeError: boolean; message: string };
  chain: { status: number; endpoint: string | null };
  retryAfter0: Called;
  retryAfter30: { status: number; retries: number; next: { name: string; circuit: boolean; retryAt: string } | number };
  abortTimeout: { same: boolean; name: string; ours: boolean };
  abortTimeoutWait: { same: boolean; name: string; quick: boolean };
  streamNoDuplex: string | Failure;
  plainStreamNoDuplex: string | { name: string; message: string };
  stream503: number;
  stream301: Failure;
  stream302: Failure;
  stream303: { method: string; body: string; redirected: boolean };
  stream307: Failure;
  stream308: Failure;
  request307: {
    method: string;
    headers: Record<string, string>;
    body: string;
    type: string;
    url: string;
    redirected: boolean;
    events: Array<{ status: number; crossOrigin: boolean; dropped: string[] }>;
  };
  hops20: { status: number; redirected: boolean };
  hops21: Failure;
  manual: { status: number; redirected: boolean };
  error: Failure;
}
interface Realm {
  before: string[];
  distinct: boolean;
  afterImport: string[];
  afterFirstUse: string[];
  installed: number;
  infoAcross: number | null;
  layered: { status: number; outerRetries: number };
  frozenLater: number;
}
interface Sealed {
  installedThere: boolean;
  installed: number;
  layered: number;
  sealedKey: string[];
  frozen: { retried: number; ok: number; info: number | null; key: string[] };
}

const ALL: Runtime[] = ["node", "deno", "bun", "workerd"];
const available = (rt: Runtime) => HAVE_DIST && (rt === "node" || HAVE[rt]);
const named = (rt: Runtime, what: string) =>
  !HAVE_DIST
    ? `${rt}: ${what} (${NO_DIST})`
    : available(rt)
      ? `${rt}: ${what}`
      : `${rt}: ${what} (skipped: node_modules/.bin/${rt} is missing)`;
const wire = (rt: Runtime) => report<Wire>(rt, "wire");
const count = (rt: Runtime, tag: string) => hitsOf(rt, tag).length;
const REALM_KEY = "Symbol(@storycore/resilient-fetch/realm@1)";

describe("(1) a failure is named alike in every runtime (real sockets on 127.0.0.1)", () => {
  for (const rt of SPAWNED) {
    it.skipIf(!available(rt))(
      named(rt, "refused, reset, DNS and attempt timeout: retried, named, a keyless POST re-sent only when not sent"),
      async () => {
        const w = await wire(rt);
        // the platform's own error, for the record: a TypeError in all three
        expect(w.plainRefused.isTypeError && w.plainReset.isTypeError).toBe(true);
        const once = (c: Called, reason: string) => {
          expect(c.retries.map((r) => r.reason)).toEqual([reason]);
          expect(c.error?.name).toBe("RetryExhaustedError");
          expect(c.error?.attempts).toBe(2);
        };
        once(w.refusedGet, "connection refused");
        once(w.refusedPost, "connection refused"); // surely not sent: re-sent
        once(w.resetGet, "connection reset");
        once(w.dnsGet, "DNS lookup failed");
        once(w.dnsPost, "DNS lookup failed");
        expect(w.resetPost).toMatchObject({ retries: [], error: { name: "RetryExhaustedError", attempts: 1 } });
        expect(w.timeoutGet.retries.map((r) => r.reason)).toEqual(["attempt timeout"]);
        expect(w.timeoutGet.error).toMatchObject({ name: "TimeoutError", phase: "attempt", attempts: 2 });
        expect(w.timeoutPost).toMatchObject({ retries: [], error: { name: "TimeoutError", attempts: 1 } });
        expect([
          count(rt, "reset-get"),
          count(rt, "reset-post"),
          count(rt, "hang-get"),
          count(rt, "hang-post"),
        ]).toEqual([2, 1, 2, 1]);
        // a chain leaves an endpoint whose connection is refused for the next
        expect(w.chain).toEqual({ status: 200, endpoint: "spare" });
      },
      TIMEOUT,
    );
  }

  it.skipIf(!available("workerd"))(
    named("workerd", "an attempt timeout is named and retried; a chain leaves a refused endpoint for the next"),
    async () => {
      const w = await wire("workerd");
      expect(w.timeoutGet.retries.map((r) => r.reason)).toEqual(["attempt timeout"]);
      expect(w.timeoutGet.error).toMatchObject({ name: "TimeoutError", phase: "attempt", attempts: 2 });
      expect(w.timeoutPost).toMatchObject({ retries: [], error: { name: "TimeoutError", attempts: 1 } });
      expect(w.chain).toEqual({ status: 200, endpoint: "spare" });
      expect(count("workerd", "chain")).toBe(1);
      // what workerd's own fetch throws for a refused connection and a reset: a plain Error, not a TypeError
      expect(w.plainRefused).toEqual({ name: "Error", isTypeError: false, message: "Network connection lost." });
      expect(w.plainReset).toEqual({ name: "Error", isTypeError: false, message: "Network connection lost." });
    },
    TIMEOUT,
  );

  // Defect 1: docs/retry.md "Retried by default: network errors …" and "Retry events name a failure … (… Deno's
  // and workerd's messages)"; docs/runtimes.md's workerd row "every check".
  (available("workerd") ? it : it.skip)(
    named("workerd", "a refused connection and a reset connection are network errors: a GET is retried and named"),
    async () => {
      const w = await wire("workerd");
      for (const c of [w.refusedGet, w.resetGet]) {
        expect(c.error?.attempts).toBe(2);
        expect(c.retries).toHaveLength(1);
        expect(["connection refused", "connection reset", "network error"]).toContain(c.retries[0]?.reason);
      }
      expect(count("workerd", "reset-get")).toBe(2);
    },
    TIMEOUT,
  );
});

describe("(2) Retry-After in every runtime", () => {
  for (const rt of ALL) {
    it.skipIf(!available(rt))(
      named(
        rt,
        "`Retry-After: 0` is the delay, not jittered; one past `maxRetryAfter` settles at once and holds the host",
      ),
      async () => {
        const w = await wire(rt);
        expect(w.retryAfter0).toMatchObject({
          status: 200,
          retries: [{ reason: "status 503", delay: 0, retryAfter: true }],
        });
        expect(count(rt, "ra0")).toBe(2);
        expect(w.retryAfter30).toEqual({
          status: 503,
          retries: 0,
          next: { name: "CircuitOpenError", circuit: true, retryAt: "number" },
        });
        expect([count(rt, "ra30"), count(rt, "ra30-next")]).toEqual([1, 0]);
      },
      TIMEOUT,
    );
  }
});

describe("(3) `AbortSignal.timeout` as the caller's signal in every runtime", () => {
  for (const rt of ALL) {
    it.skipIf(!available(rt))(
      named(rt, "rejects with that very `signal.reason` during an attempt and during a backoff"),
      async () => {
        const w = await wire(rt);
        expect(w.abortTimeout).toEqual({ same: true, name: "TimeoutError", ours: false });
        expect(w.abortTimeoutWait).toEqual({ same: true, name: "TimeoutError", quick: true });
        expect([count(rt, "ast"), count(rt, "ast-wait")]).toEqual([1, 1]);
      },
      TIMEOUT,
    );
  }
});

describe("(4) streams as request bodies in every runtime", () => {
  for (const rt of ALL) {
    it.skipIf(!available(rt))(
      named(rt, "`duplex` added, sent once, no redirect but a 303; a `Request` of a stream replayed on a 307"),
      async () => {
        const w = await wire(rt);
        expect(w.streamNoDuplex).toBe("streamed");
        if (rt === "node")
          expect(w.plainStreamNoDuplex).toMatchObject({ name: "TypeError", message: expect.stringMatching(/duplex/) });
        expect(w.stream503).toBe(503);
        expect(count(rt, "st503")).toBe(1);
        for (const s of [301, 302, 307, 308] as const) {
          const e = w[`stream${s}`];
          expect(e).toMatchObject({ name: "RetryExhaustedError", attempts: 1, cause: "TypeError" });
          expect(e.causeMessage).toContain(`cannot follow a ${s} redirect`);
          expect(count(rt, `st${s}`)).toBe(1);
        }
        expect(w.stream303).toEqual({ method: "GET", body: "", redirected: true });
        const r = w.request307;
        expect([r.method, r.body, r.headers["content-length"], r.type, r.redirected]).toEqual([
          "POST",
          "req-body",
          "8",
          "cors",
          true,
        ]);
        expect(r.headers["x-api-key"] ?? r.headers.authorization).toBeUndefined();
        expect(r.url).toBe(`${alt.base}/echo?c=${rt}-rq`);
        expect(r.events).toEqual([{ status: 307, crossOrigin: true, dropped: ["authorization", "x-api-key"] }]);
      },
      TIMEOUT,
    );
  }
});

describe("(5) redirects the library follows, per runtime", () => {
  for (const rt of ALL) {
    it.skipIf(!available(rt))(
      named(rt, "20 hops followed, a 21st a `TypeError` (GET retried), `manual` untouched, `error` as documented"),
      async () => {
        const w = await wire(rt);
        expect(w.hops20).toEqual({ status: 200, redirected: true });
        expect(w.hops21).toMatchObject({ name: "RetryExhaustedError", attempts: 3, cause: "TypeError" });
        expect(w.hops21.causeMessage).toContain("more than 20 redirects");
        expect([count(rt, "h20"), count(rt, "h21")]).toEqual([21, 63]);
        expect(w.manual).toEqual({ status: 302, redirected: false });
        expect([count(rt, "manual"), count(rt, "manual-t")]).toEqual([1, 0]);
        if (rt === "workerd") {
          // "workerd refuses `redirect: "error"` on every call … fails at once with the runtime's `TypeError`
          // ("this runtime refuses the call: …"), never sent, retried or counted"
          expect(w.error).toMatchObject({ name: "TypeError", attempts: null });
          expect(w.error.message).toContain("this runtime refuses the call");
          expect(count(rt, "error")).toBe(0);
        } else {
          // "a `redirect: "error"` call that meets a redirect is refused by the platform with the `TypeError` of a
          // network failure, … so it is retried like one"
          expect(w.error).toMatchObject({ name: "RetryExhaustedError", attempts: 3, cause: "TypeError" });
          expect(count(rt, "error")).toBe(3);
        }
        expect(count(rt, "error-t")).toBe(0);
      },
      TIMEOUT,
    );
  }
});

describe("(6) two copies of the package in one realm (dist/ copied twice, each its own files)", () => {
  for (const rt of SPAWNED) {
    it.skipIf(!available(rt))(
      named(rt, "one object per realm, made at first use: an installed layer passed over, marks read across copies"),
      async () => {
        const r = await report<Realm>(rt, "realm");
        expect(r.distinct).toBe(true);
        expect([r.before, r.afterImport, r.afterFirstUse]).toEqual([[], [], [REALM_KEY]]);
        // B's layer, with the global fetch, passes over A's layer installed there: 3 requests, not 3 × 3
        expect(r.installed).toBe(503);
        expect(count(rt, "installed")).toBe(3);
        // getResilienceInfo of one copy reads the other's answer
        expect(r.infoAcross).toBe(3);
        // B's keyless POST over A's keyed layer (500, then 503): the 503 followed another request; not sent again
        expect(r.layered).toEqual({ status: 503, outerRetries: 0 });
        const layered = hitsOf(rt, "layered");
        expect(layered).toHaveLength(2);
        expect(new Set(layered.map((h) => h.headers["idempotency-key"])).size).toBe(1);
        // the global frozen after the object was made: copies loaded later still share it
        expect(r.frozenLater).toBe(503);
        expect(count(rt, "frozen-later")).toBe(2);
      },
      TIMEOUT,
    );

    it.skipIf(!available(rt))(
      named(rt, "a global that takes no property: each copy keeps its own, and calls still work"),
      async () => {
        const r = await report<Sealed>(rt, "sealed");
        expect(r.installedThere).toBe(true);
        expect(r.sealedKey).toEqual([]);
        // docs/retry.md: "unless the global object cannot keep it …: each copy then reads its own marks only"
        expect(r.layered).toBe(503);
        expect(count(rt, "sealed-layered")).toBe(6);
        // frozen: a copy loaded then works, retries, and reads another copy's info (a registered symbol on the answer)
        expect(r.frozen).toEqual({ retried: 503, ok: 200, info: 1, key: [] });
        expect([count(rt, "frozen-retry"), count(rt, "frozen-ok")]).toEqual([3, 1]);
      },
      TIMEOUT,
    );

    // Defect 2: docs/options.md `fetch` row: "a layer never calls itself, nor another through the global fetch (one
    // of another copy of the package, an SDK's own, included, unless the global object is frozen)". Observed: a
    // sealed global (a layer can be installed, the shared object cannot be added) lets another copy's layer send
    // through the installed one (9 requests for 3). Fixed in the docs: the exception is a global that takes no new
    // property, as docs/retry.md says of the marks.
    (available(rt) ? it : it.skip)(
      named(
        rt,
        "a sealed (not frozen) global: a layer of another copy sends through the installed layer, as documented",
      ),
      async () => {
        const r = await report<Sealed>(rt, "sealed");
        expect(r.installedThere).toBe(true);
        expect(r.installed).toBe(503);
        expect(count(rt, "sealed-installed")).toBe(9);
        expect(read("docs/options.md").replace(/\s+/g, " ")).toContain(
          "unless the global object takes no new property: frozen, sealed or made non-extensible, where a layer of another copy sends through one installed there",
        );
      },
      TIMEOUT,
    );
  }
});
