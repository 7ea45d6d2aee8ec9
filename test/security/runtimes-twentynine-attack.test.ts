/**
 * Outside-in attack on this session's changes as they behave in Deno and Bun (Node as the reference where it
 * helps).
 * Docs: docs/retry.md "Redirects" ("301/302 turn a POST into a GET", "a stream body fails any redirect but a
 * 303, a 301/302 too (a `TypeError`, as the standard says of a body with no source; a `Request` input's body,
 * read into bytes as below, is no stream, so it is replayed or dropped as any other)") and its error table
 * (`RetryExhaustedError` "or a breaker store of your own threw"); docs/breakers.md ("One per host (`url.host`
 * …)", "the last call out of each host past the bound evicts it unless its breaker is open or half-open (that
 * one goes when a new host needs the room)", a store of your own: "it rejects with `RetryExhaustedError`, the
 * store's error as its `cause` (`attempts` 0 when it threw before anything was sent), and a chain stops at the
 * endpoint that met it"); docs/cloudflare.md (the proxy answers "`502` when … a breaker store of your own
 * threw"); SECURITY.md "Nothing outlives its call" ("as a `durableObjectStore` report waits for the object's
 * answer (250 ms at most) and so does its ask for a probe's lease once the probe's caller gave up", under
 * "`unref`'d timers that never hold a process"); CHANGELOG.md (this session's "### Fixed" entries: a
 * `Location` read with `headers.get` only, a `Map`'s headers, the host of the URL called last kept, the
 * answer check reading by name); docs/runtimes.md (what it says of Deno and Bun).
 * How: short scripts spawned in Deno (`deno run -A --no-lock`, import map for `zod/mini`) and Bun (and Node 22
 * with `--experimental-strip-types` for the plain-fetch reference), importing `src/index.ts`,
 * `src/fallback/index.ts` and `src/cloudflare/index.ts` by file URL, each printing one JSON line; a node:http
 * server on 127.0.0.1 started here records what reached it (path, method, body, content-type) and answers
 * redirects of any status; the probe script's exit time is measured against the time it printed.
 * Paths: plain call with a stream body, a string body over `maxReplayBytes`, a `Request` input (string, stream,
 * over `maxReplayBytes`) answered 301/302/303/307; a transport's answer of another make (headers with `get`
 * only, a `Map`, a runtime `Response` whose `headers.has` throws); the runtime's own `Response`s (constructed,
 * `Response.json`, a subclass, `Response.redirect`, `Response.error`, fetched, null, bytes and Blob bodies); the
 * breaker key of URLs written in many ways (case, default and other ports, IPv6, IDN, `127.1`, trailing dot,
 * backslash) called twice in a row (the kept host), with refused URLs between; a `Request` input's key;
 * eviction past `maxHosts` with calls held in flight; a store of one's own throwing (an Error, each of the
 * library's classes, a `TypeError`, a string) from `peek`, `record` and `publish`, in a plain call, a chain and
 * the Worker proxy; a half-open probe whose caller aborts while `durableObjectStore` asks for the lease.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a Request's body carried on past the limit follows a 301/302 as a GET):
 * 1. docs/retry.md "a `Request` input's body, read into bytes as below, is no stream, so it is replayed or
 *    dropped as any other" (and "301/302 turn a POST into a GET"; "as the standard says of a body with no
 *    source"). Observed in Deno and Bun (and Node): a `Request` input whose body (a string, so it has a source)
 *    is larger than `maxReplayBytes`, answered 301 or 302, fails the call with "cannot follow a 302 redirect
 *    …: its body is a stream, sent once" (a `RetryExhaustedError`, nothing sent to the `Location`), while the
 *    same body given in `init` is dropped and the redirect followed as a GET, and each runtime's own `fetch`
 *    follows that very `Request` as a GET. Cause: the layer reads at most `maxReplayBytes` ahead and then hands
 *    the rest on as a stream (docs/retry.md: "what was read and the rest of the stream are sent once, as one
 *    stream"); `followingFetch` takes `request.body`/that stream as the hop's body and the new check in
 *    src/http/send/follow-redirects.ts (`status !== 303 && body != null && !isReplayable(body)`) refuses it
 *    before the 301/302 method change that would have dropped it. With the default 8 MiB limit, any larger
 *    upload given as a `Request` (ky's client always hands one) and answered 302 fails where fetch follows.
 *
 * Held (plain `it`):
 * - Deno and Bun: a POST whose `init` body is a `ReadableStream`, answered 301, 302 or 307, fails with the
 *   follower's `TypeError` (the call's `RetryExhaustedError`), nothing sent to the `Location`; 303 is followed as
 *   a GET without body. Each runtime's own `fetch` refuses the stream's 302 too (Node "fetch failed", Deno "Can
 *   not redeliver a streaming request body", Bun "cannot be replayed for this redirect").
 * - A `Request` input's body within `maxReplayBytes` (a string, or a stream the Request was made with) follows
 *   301/302/303 as a GET and is replayed on 307; a string `init` body over the limit is dropped on 301/302/303
 *   and refused on 307 ("larger than maxReplayBytes").
 * - A transport's answer whose headers have `get` only, or are a `Map`, is followed; a `Map` without
 *   `location` on a 301 is returned as it is; a runtime `Response` whose `headers.has` throws is followed (the
 *   follower reads `get` only).
 * - The answer check takes each runtime's own `Response` (constructed, `Response.json`, a subclass, a null, bytes
 *   or Blob body, fetched) and follows `Response.redirect`; `Response.error()` is the layer's network error.
 * - The breaker key is `new URL(u).host` in each runtime for every URL tried, on the first call and on the
 *   second in a row (the kept host); refused URLs (credentials, port 99999, a space, invalid Punycode) are
 *   refused every time, before and after a valid URL is kept, nothing sent; a `Request` input's key is its URL's.
 * - Eviction past `maxHosts` (2): four hosts held in flight are all listed; as their calls settle the closed
 *   ones past the bound go, the one whose breaker opened stays and refuses the next call (nothing sent), and the
 *   next new host takes the LRU closed one's room.
 * - A store of one's own that throws from `peek`, `record` or `publish` (an Error, a `CircuitOpenError`, a
 *   `TimeoutError`, a `FallbackExhaustedError`, a `TypeError`) fails the call with a `RetryExhaustedError`
 *   holding that very error (`attempts` 0 from `peek`, nothing sent; 1 after the answer); a string is wrapped;
 *   a chain stops at its first endpoint (`FallbackExhaustedError`, "the breaker store threw"); the proxy
 *   answers 502; the answer a throwing `record` met is read to its end.
 * - `durableObjectStore`: a probe's caller that aborts while the object is asked for the lease (the object
 *   never answers, `timeout` 1500 ms) settles at once and the process exits within a few ms in Deno
 *   (`Deno.unrefTimer`) and Bun; a caller that waits keeps the process for the bound (the control).
 * - Runtime differences docs/runtimes.md does not state (pinned as they are, no library promise broken): Bun's
 *   `Request` made with a string body has no `content-type` header and Bun's `fetch` sends none for a string
 *   body (Node and Deno send `text/plain;charset=UTF-8`), so a string body reaches the server without one
 *   through the library too, on the first request and a 307's replay alike.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
const SRC = (entry: string) => pathToFileURL(resolve(ROOT, "src", entry)).href;
type Runtime = "node" | "deno" | "bun";
const RUNTIMES = ["deno", "bun"] as const;
const TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// A server on 127.0.0.1: records what reached it; `/seen?c=tag` hands back (and forgets) what carried `c=tag`
// ---------------------------------------------------------------------------

interface Seen {
  path: string;
  method: string;
  body: string;
  ct: string | null;
}
const seen: (Seen & { tag: string })[] = [];
let server: Server;
let base = "";
let dir = "";

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const tag = url.searchParams.get("c") ?? "";
      if (url.pathname === "/seen") {
        const mine = seen.filter((s) => s.tag === tag);
        for (const s of mine) seen.splice(seen.indexOf(s), 1);
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify(mine.map(({ tag: _, ...s }) => s)));
      }
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ tag, path: url.pathname, method: req.method ?? "", body, ct: req.headers["content-type"] ?? null });
      const status = url.searchParams.get("s");
      if (status) {
        res.writeHead(Number(status), { location: url.searchParams.get("l") ?? `/echo?c=${tag}` });
        return void res.end("moved");
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), "rt29-"));
  const imports = { "zod/mini": pathToFileURL(resolve(ROOT, "node_modules/zod/mini/index.js")).href };
  writeFileSync(join(dir, "import-map.json"), JSON.stringify({ imports }));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// The scripts (each prints one JSON line last)
// ---------------------------------------------------------------------------

const ARGS = `const [main, rt, mode] = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const out = {};
const seenOf = async (tag) => (await fetch(main + "/seen?c=" + tag)).json();
const stream = (text) => new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } });
const outcome = async (promise) => {
  try {
    const res = await promise;
    return { status: res.status, redirected: res.redirected, body: await res.text() };
  } catch (e) {
    return { error: e.name, message: String(e.message), cause: e.cause?.name ?? null };
  }
};`;

const SCRIPTS = {
  redirects: `import { createResilience } from "${SRC("index.ts")}";
${ARGS}
const run = async (tag, make, options = {}) => {
  const r = createResilience({ retry: false, ...options });
  const [input, init] = make(main + "/r?c=" + tag);
  const res = await outcome(r.fetch(input, init));
  out[tag] = { res, seen: await seenOf(tag) };
};
const big = "0123456789abcdef";
for (const s of [301, 302, 303, 307]) {
  await run("stream" + s, (u) => [u + "&s=" + s, { method: "POST", body: stream("abc"), duplex: "half" }]);
  await run("reqString" + s, (u) => [new Request(u + "&s=" + s, { method: "POST", body: "abc" })]);
  await run("reqStream" + s, (u) => [new Request(u + "&s=" + s, { method: "POST", body: stream("abc"), duplex: "half" })]);
  await run("reqLarge" + s, (u) => [new Request(u + "&s=" + s, { method: "POST", body: big })], { maxReplayBytes: 8 });
  await run("initLarge" + s, (u) => [u + "&s=" + s, { method: "POST", body: big }], { maxReplayBytes: 8 });
}
// The runtime's own fetch, as the reference.
out.plainLarge302 = { res: await outcome(fetch(new Request(main + "/r?c=plainLarge302&s=302", { method: "POST", body: big }))),
  seen: await seenOf("plainLarge302") };
out.plainStream302 = { res: await outcome(fetch(main + "/r?c=plainStream302&s=302", { method: "POST", body: stream("abc"), duplex: "half" })),
  seen: await seenOf("plainStream302") };
await (await fetch(main + "/echo?c=plainString", { method: "POST", body: "abc" })).text();
out.plainString = await seenOf("plainString");
out.requestContentType = new Request(main, { method: "POST", body: "abc" }).headers.get("content-type");
// A transport's answer of another make, or the runtime's own with a "has" that throws.
const other = (status, headers) => {
  const r = new Response("moved");
  return { status, statusText: "", ok: false, redirected: false, url: "", type: "basic", headers, body: r.body, bodyUsed: false,
    clone: () => other(status, headers), text: () => r.text(), json: () => r.json(), arrayBuffer: () => r.arrayBuffer(), blob: () => r.blob() };
};
const first = (answer) => { let n = 0; return (input, init) => (n++ === 0 ? Promise.resolve(answer()) : fetch(input, init)); };
const answered = async (tag, answer) => {
  const r = createResilience({ retry: false, fetch: first(answer) });
  out[tag] = { res: await outcome(r.fetch(main + "/x?c=" + tag)), seen: await seenOf(tag) };
};
const to = (tag) => main + "/echo?c=" + tag;
await answered("getOnly", () => other(302, { get: (n) => (n.toLowerCase() === "location" ? to("getOnly") : null) }));
await answered("map302", () => other(302, new Map([["location", to("map302")]])));
await answered("map301none", () => other(301, new Map()));
await answered("hasThrows", () => {
  const res = new Response(null, { status: 302, headers: { location: to("hasThrows") } });
  Object.defineProperty(res.headers, "has", { value: () => { throw new Error("has() read"); } });
  return res;
});
console.log(JSON.stringify(out));
`,
  layer: `import { createResilience, CircuitOpenError, TimeoutError, FallbackExhaustedError, RetryExhaustedError, getResilienceInfo } from "${SRC("index.ts")}";
import { fallback } from "${SRC("fallback/index.ts")}";
import { resilientProxy } from "${SRC("cloudflare/index.ts")}";
${ARGS}
// (a) The breaker key, on a first call and on the next one in a row (the host kept from the last URL).
{
  const urls = ["http://API.Example/a", "http://api.example:80/a", "https://api.example:443/", "HTTPS://API.EXAMPLE:8443/x",
    "http://[::1]:8080/", "http://[0:0:0:0:0:0:0:1]/", "http://bücher.example/", "http://xn--bcher-kva.example/", "http://127.1/",
    "http://0x7f.1/", "http://EXAMPLE.com./", "http://a.example:0080/", "http://a.example:/", "http://ß.example/", "http://a%41.example/",
    "http://a.example\\\\@b.example/", "http://a.example:65535/"];
  const refused = ["http://user:pw@api.example/", "http://api.example:99999/", "http://ex ample/", "http://xn--a.example/"];
  const keys = {};
  let sent = 0;
  const r = createResilience({ retry: false, breaker: { failureThreshold: 1 }, fetch: async () => (sent++, new Response("x", { status: 503 })) });
  const keyOf = async (input) => {
    try { await r.fetch(input); return "answered"; } catch (e) { return e instanceof CircuitOpenError ? e.key : e.name + ": " + e.message; }
  };
  for (const u of urls) {
    const first = await r.fetch(u).then((res) => res.status, (e) => e.name);
    const refusedBefore = [];
    for (const bad of refused) refusedBefore.push(await keyOf(bad));
    keys[u] = { parsed: new URL(u).host, first, again: await keyOf(u), againInRow: await keyOf(u), refusedBefore };
  }
  const before = sent;
  const again = [];
  for (const bad of refused) again.push(await keyOf(bad), await keyOf(bad));
  keys.refusedSent = sent - before;
  keys.refusedAgain = again;
  keys.request = await keyOf(new Request("http://[::1]:8080/q"));
  out.keys = keys;
}
// (b) Eviction past maxHosts, with calls held in flight.
{
  const gates = new Map();
  let sent = [];
  const r = createResilience({ retry: false, breaker: { maxHosts: 2, failureThreshold: 1, timeout: 60_000 },
    fetch: (input) => { const u = String(input); sent.push(u); return new Promise((ok) => gates.set(new URL(u).host, (s) => ok(new Response("x", { status: s })))); } });
  const listed = () => Object.keys(r.health().breakers).sort();
  const hosts = ["h1.test", "h2.test", "h3.test", "h4.test"];
  const calls = hosts.map((h) => r.fetch("http://" + h + "/").then((res) => res.status, (e) => e.name));
  await new Promise((ok) => setTimeout(ok, 10));
  const eviction = { inFlight: listed(), after: [] };
  for (const [h, s] of [["h1.test", 200], ["h3.test", 503], ["h2.test", 200], ["h4.test", 200]]) {
    gates.get(h)(s);
    await calls[hosts.indexOf(h)];
    eviction.after.push(listed());
  }
  eviction.states = Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k, v.state]));
  sent = [];
  eviction.openAgain = await r.fetch("http://h3.test/again").then((res) => res.status, (e) => e.name);
  eviction.openAgainSent = sent.length;
  const h5 = r.fetch("http://h5.test/");
  await new Promise((ok) => setTimeout(ok, 10));
  gates.get("h5.test")(200);
  await h5;
  eviction.afterNew = listed();
  out.eviction = eviction;
}
// (c) A breaker store of one's own that throws.
{
  const thrown = {
    error: () => new Error("redis down"),
    circuitOpen: () => new CircuitOpenError("redis", Date.now() + 60_000),
    timeout: () => new TimeoutError("total", 50, 1),
    fallbackExhausted: () => new FallbackExhaustedError("redis-chain", { a: new Error("x") }),
    typeError: () => new TypeError("bad"),
    string: () => "boom",
  };
  const store = {};
  for (const [name, make] of Object.entries(thrown)) {
    for (const where of ["peek", "record", "publish"]) {
      const value = make();
      let sent = 0;
      const mine = { name: "mine", publish() { if (where === "publish") throw value; }, peek() { if (where === "peek") throw value; return undefined; },
        record() { if (where === "record") throw value; } };
      const r = createResilience({ retry: false, store: mine, breaker: { failureThreshold: 1 },
        fetch: async () => (sent++, new Response("x", { status: where === "publish" ? 503 : 200 })) });
      try {
        const res = await r.fetch("http://store.test/");
        store[name + "." + where] = { status: res.status, sent };
      } catch (e) {
        store[name + "." + where] = { error: e.name, retryExhausted: e instanceof RetryExhaustedError, attempts: e.attempts,
          sameCause: e.cause === value, causeName: e.cause?.name ?? typeof e.cause, sent };
      }
    }
  }
  const value = new CircuitOpenError("redis", Date.now() + 60_000);
  const chained = createResilience({ retry: false, store: { name: "mine", publish() {}, peek() { throw value; } },
    fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: main + "/echo?c=chainA" }, { name: "b", url: main + "/echo?c=chainB" }] }]) });
  try { await chained.fetch(main + "/echo?c=chainA"); store.chain = "answered"; }
  catch (e) { store.chain = { name: e.name, message: e.message, tried: Object.keys(e.errors ?? {}), sameCause: e.errors?.a === value }; }
  store.chainSeen = [...(await seenOf("chainA")), ...(await seenOf("chainB"))];
  const proxy = resilientProxy({ routes: [{ path: "/", upstream: main }], resilience: { retry: false },
    store: () => ({ name: "mine", publish() {}, peek() { throw new TimeoutError("total", 10, 0); } }) });
  const res = await proxy.fetch(new Request("http://worker.test/echo?c=proxy"), {}, { waitUntil() {} });
  store.proxy = { status: res.status, body: await res.text() };
  // The answer a throwing record met is let go: read to its end (or cancelled).
  let pulled = 0;
  let cancelled = false;
  const body = new ReadableStream({ pull(c) { pulled++; if (pulled > 3) c.close(); else c.enqueue(new TextEncoder().encode("chunk")); },
    cancel() { cancelled = true; } }, { highWaterMark: 0 });
  const r = createResilience({ retry: false, store: { name: "mine", publish() {}, peek() {}, record() { throw new Error("redis down"); } },
    fetch: async () => new Response(body) });
  store.recordThrew = await outcome(r.fetch("http://store.test/body"));
  await new Promise((ok) => setTimeout(ok, 50));
  store.released = { pulled, cancelled };
  out.store = store;
}
// (d) The runtime's own Responses from a transport.
{
  class Mine extends Response {}
  const serve = async (answer) => {
    let n = 0;
    const r = createResilience({ retry: false, fetch: (input, init) => (n++ === 0 ? Promise.resolve(answer()) : fetch(input, init)) });
    try {
      const res = await r.fetch(main + "/a?c=answers");
      return { status: res.status, text: await res.text(), redirected: res.redirected, attempts: getResilienceInfo(res)?.attempts ?? null, calls: n };
    } catch (e) { return { error: e.name, message: e.message, calls: n }; }
  };
  out.answers = {
    json: await serve(() => Response.json({ a: 1 })),
    subclass: await serve(() => new Mine("mine")),
    noBody: await serve(() => new Response(null, { status: 204 })),
    bytes: await serve(() => new Response(new Uint8Array([104, 105]))),
    blob: await serve(() => new Response(new Blob(["blob"]))),
    fetched: await serve(() => fetch(main + "/echo?c=answers")),
    redirect: await serve(() => Response.redirect(main + "/echo?c=answers", 302)),
    error: await serve(() => Response.error()),
  };
  await seenOf("answers");
}
console.log(JSON.stringify(out));
`,
  probe: `import { createResilience } from "${SRC("index.ts")}";
import { durableObjectStore } from "${SRC("cloudflare/index.ts")}";
${ARGS}
const answers = { status: 503 };
const objectCalls = [];
// An object that answers reports at once and never answers a probe's ask (nor hears any signal).
const namespace = { idFromName: (n) => n, get: () => ({ fetch: (url) => {
  const path = new URL(url).pathname;
  objectCalls.push(path);
  if (path === "/probe") return new Promise(() => {});
  return Promise.resolve(Response.json({ state: "closed", gen: 0, openUntil: null, reason: null }));
} }) };
const r = createResilience({ retry: false, store: durableObjectStore(namespace, { ctx: { waitUntil() {} }, timeout: 1500 }),
  breaker: { failureThreshold: 1, timeout: 50, halfOpenMaxCalls: 1 }, fetch: async () => new Response("x", answers) });
await (await r.fetch("https://api.example/trip")).text();
out.tripped = r.health().breakers["api.example"]?.state;
await new Promise((ok) => setTimeout(ok, 80));
answers.status = 200;
const controller = new AbortController();
const probe = r.fetch("https://api.example/probe", { signal: controller.signal });
await new Promise((ok) => setTimeout(ok, 20));
out.asked = objectCalls.includes("/probe");
if (mode === "abort") {
  const started = Date.now();
  controller.abort(new Error("the probe's caller left"));
  out.outcome = await probe.then((res) => res.status, (e) => e.message);
  out.settleMs = Date.now() - started;
} else {
  out.outcome = "waiting";
}
out.at = Date.now();
console.log(JSON.stringify(out));
`,
};
type Script = keyof typeof SCRIPTS;

interface Run<T> {
  report: T;
  /** ms from the script's last print to the process's exit, as seen here. */
  exitAfter: number;
}
const runs = new Map<string, Promise<Run<unknown>>>();

/** Runs one script in one runtime (once per mode), resolving with what it printed and when it exited. */
function report<T>(runtime: Runtime, script: Script, mode = ""): Promise<Run<T>> {
  const key = `${runtime}:${script}:${mode}`;
  let pending = runs.get(key);
  if (!pending) {
    const file = join(dir, `${script}.ts`);
    writeFileSync(file, SCRIPTS[script]);
    const args = [base, runtime, mode];
    const [command, argv] =
      runtime === "node"
        ? [process.execPath, ["--experimental-strip-types", "--no-warnings", file, ...args]]
        : runtime === "deno"
          ? [
              resolve(BIN, "deno"),
              ["run", "-A", "--no-lock", `--import-map=${join(dir, "import-map.json")}`, file, ...args],
            ]
          : [resolve(BIN, "bun"), [file, ...args]];
    pending = new Promise((resolvePromise, reject) => {
      const proc = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      proc.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      proc.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      const kill = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      proc.on("error", reject);
      proc.on("exit", (code) => {
        const exited = Date.now();
        clearTimeout(kill);
        try {
          const report = JSON.parse(out.trim().split("\n").pop() ?? "") as T & { at?: number };
          resolvePromise({ report, exitAfter: exited - (report.at ?? exited) });
        } catch {
          reject(new Error(`${runtime} ${script} printed no report (exit ${code}): ${out}\n${err}`));
        }
      });
    });
    runs.set(key, pending);
  }
  return pending as Promise<Run<T>>;
}

// ---------------------------------------------------------------------------
// (1) Redirects followed by the library
// ---------------------------------------------------------------------------

interface Outcome {
  status?: number;
  redirected?: boolean;
  body?: string;
  error?: string;
  message?: string;
  cause?: string | null;
}
interface Hop {
  res: Outcome;
  seen: Seen[];
}
type RedirectsReport = Record<string, Hop> & { plainString: Seen[]; requestContentType: string | null };

const redirects = async (runtime: Runtime) => (await report<RedirectsReport>(runtime, "redirects")).report;
const followedAsGet = (hop: Hop | undefined, body: string) => {
  expect(hop?.res).toMatchObject({ status: 200, redirected: true });
  expect(hop?.seen.map((s) => [s.path, s.method, s.body])).toEqual([
    ["/r", "POST", body],
    ["/echo", "GET", ""],
  ]);
};

describe("(1) redirects in Deno and Bun", () => {
  for (const runtime of RUNTIMES) {
    it(
      `${runtime}: a stream body fails a 301, 302 and 307 (nothing sent on), a 303 drops it`,
      async () => {
        const r = await redirects(runtime);
        for (const s of [301, 302, 307]) {
          const hop = r[`stream${s}`];
          expect(hop?.res.error, String(s)).toBe("RetryExhaustedError");
          expect(hop?.res.cause).toBe("TypeError");
          expect(hop?.res.message).toContain(`cannot follow a ${s} redirect`);
          expect(hop?.seen.map((x) => x.path)).toEqual(["/r"]);
        }
        followedAsGet(r.stream303, "abc");
        // The runtime's own fetch refuses it too.
        expect(r.plainStream302?.res.error).toBe("TypeError");
        expect(r.plainStream302?.seen.map((x) => x.path)).toEqual(["/r"]);
      },
      TIMEOUT,
    );

    it(
      `${runtime}: a Request input's body within maxReplayBytes follows 301/302/303 as a GET and is replayed on 307`,
      async () => {
        const r = await redirects(runtime);
        for (const kind of ["reqString", "reqStream"]) {
          for (const s of [301, 302, 303]) followedAsGet(r[`${kind}${s}`], "abc");
          expect(r[`${kind}307`]?.res).toMatchObject({ status: 200, redirected: true });
          expect(r[`${kind}307`]?.seen.map((x) => [x.path, x.method, x.body])).toEqual([
            ["/r", "POST", "abc"],
            ["/echo", "POST", "abc"],
          ]);
        }
        // A string init body over the limit: dropped on 301/302/303, refused on 307.
        for (const s of [301, 302, 303]) followedAsGet(r[`initLarge${s}`], "0123456789abcdef");
        expect(r.initLarge307?.res.message).toContain("larger than maxReplayBytes");
      },
      TIMEOUT,
    );

    it(
      `${runtime}: a redirect answered by headers with get() only, a Map, or a Response whose has() throws`,
      async () => {
        const r = await redirects(runtime);
        for (const tag of ["getOnly", "map302", "hasThrows"]) {
          expect(r[tag]?.res, tag).toMatchObject({ status: 200, redirected: true });
          expect(r[tag]?.seen.map((x) => [x.path, x.method])).toEqual([["/echo", "GET"]]);
        }
        expect(r.map301none?.res).toMatchObject({ status: 301, redirected: false, body: "moved" });
      },
      TIMEOUT,
    );

    it(
      `${runtime}: a string body's content-type is the runtime's (Bun's sends none, plain fetch and library alike)`,
      async () => {
        const r = await redirects(runtime);
        const type = runtime === "bun" ? null : "text/plain;charset=UTF-8";
        expect(r.requestContentType).toBe(type);
        expect(r.plainString.map((x) => x.ct)).toEqual([type]);
        expect(r.reqString307?.seen.map((x) => x.ct)).toEqual([type, type]);
      },
      TIMEOUT,
    );
  }

  it(
    "Deno and Bun: a Request input's string body over maxReplayBytes, answered 301/302, is dropped as fetch drops it",
    async () => {
      for (const runtime of RUNTIMES) {
        const r = await redirects(runtime);
        // The runtime's own fetch follows that very Request as a GET.
        followedAsGet(r.plainLarge302, "0123456789abcdef");
        // docs/retry.md: "a `Request` input's body … is no stream, so it is replayed or dropped as any other"
        // (the same body in `init` is dropped, above). Observed: "cannot follow a 302 redirect …: its body is
        // a stream, sent once".
        for (const s of [301, 302]) followedAsGet(r[`reqLarge${s}`], "0123456789abcdef");
      }
    },
    TIMEOUT,
  );
});

// ---------------------------------------------------------------------------
// (2) The layer: breaker keys, eviction, a store that throws, the runtime's own Responses
// ---------------------------------------------------------------------------

interface LayerReport {
  keys: Record<
    string,
    { parsed: string; first: number; again: string; againInRow: string; refusedBefore: string[] }
  > & {
    refusedSent: number;
    refusedAgain: string[];
    request: string;
  };
  eviction: {
    inFlight: string[];
    after: string[][];
    states: Record<string, string>;
    openAgain: string | number;
    openAgainSent: number;
    afterNew: string[];
  };
  store: Record<string, Record<string, unknown>> & {
    chainSeen: Seen[];
    released: { pulled: number; cancelled: boolean };
  };
  answers: Record<string, Record<string, unknown>>;
}
const layer = async (runtime: Runtime) => (await report<LayerReport>(runtime, "layer")).report;
const KEY_URLS = 17;

describe("(2) the layer in Deno and Bun", () => {
  for (const runtime of RUNTIMES) {
    it(
      `${runtime}: each URL's breaker is its url.host, the second call in a row too; refused URLs every time`,
      async () => {
        const { keys } = await layer(runtime);
        const { refusedSent, refusedAgain, request, ...perUrl } = keys;
        expect(Object.keys(perUrl)).toHaveLength(KEY_URLS);
        // One layer for all: a host written again another way finds its breaker open already (one breaker).
        const firstOfHost = new Set<string>();
        for (const [url, k] of Object.entries(perUrl)) {
          expect(k.first, url).toBe(firstOfHost.has(k.parsed) ? "CircuitOpenError" : 503);
          firstOfHost.add(k.parsed);
          expect([k.again, k.againInRow], url).toEqual([k.parsed, k.parsed]);
          for (const refused of k.refusedBefore) expect(refused, url).toMatch(/^TypeError: resilience\.fetch: /);
        }
        // A sample of what each runtime's parser gives (and so the breaker).
        expect(perUrl["http://API.Example/a"]?.parsed).toBe("api.example");
        expect(perUrl["HTTPS://API.EXAMPLE:8443/x"]?.parsed).toBe("api.example:8443");
        expect(perUrl["http://[0:0:0:0:0:0:0:1]/"]?.parsed).toBe("[::1]");
        expect(perUrl["http://bücher.example/"]?.parsed).toBe("xn--bcher-kva.example");
        expect(perUrl["http://127.1/"]?.parsed).toBe("127.0.0.1");
        expect(perUrl["http://a.example:0080/"]?.parsed).toBe("a.example");
        expect(refusedSent).toBe(0);
        expect(refusedAgain).toHaveLength(8);
        for (const refused of refusedAgain) expect(refused).toMatch(/^TypeError: resilience\.fetch: /);
        expect(request).toBe("[::1]:8080");
      },
      TIMEOUT,
    );

    it(
      `${runtime}: past maxHosts the last call out evicts a closed host, an open one stays and refuses`,
      async () => {
        const { eviction } = await layer(runtime);
        expect(eviction.inFlight).toEqual(["h1.test", "h2.test", "h3.test", "h4.test"]);
        expect(eviction.after).toEqual([
          ["h2.test", "h3.test", "h4.test"],
          ["h2.test", "h3.test", "h4.test"],
          ["h3.test", "h4.test"],
          ["h3.test", "h4.test"],
        ]);
        expect(eviction.states).toEqual({ "h3.test": "open", "h4.test": "closed" });
        expect(eviction.openAgain).toBe("CircuitOpenError");
        expect(eviction.openAgainSent).toBe(0);
        expect(eviction.afterNew).toEqual(["h3.test", "h5.test"]);
      },
      TIMEOUT,
    );

    it(
      `${runtime}: a store of one's own that throws fails the call with a RetryExhaustedError holding its error`,
      async () => {
        const { store } = await layer(runtime);
        for (const name of ["error", "circuitOpen", "timeout", "fallbackExhausted", "typeError"]) {
          expect(store[`${name}.peek`], name).toMatchObject({
            error: "RetryExhaustedError",
            retryExhausted: true,
            attempts: 0,
            sameCause: true,
            sent: 0,
          });
          for (const where of ["record", "publish"]) {
            expect(store[`${name}.${where}`], `${name}.${where}`).toMatchObject({
              error: "RetryExhaustedError",
              attempts: 1,
              sameCause: true,
              sent: 1,
            });
          }
        }
        expect(store["string.peek"]).toMatchObject({ error: "RetryExhaustedError", causeName: "Error", sent: 0 });
        expect(store.chain).toMatchObject({ name: "FallbackExhaustedError", tried: ["a"], sameCause: true });
        expect(store.chain?.message).toContain('stopped after "a": the breaker store threw');
        expect(store.chainSeen).toEqual([]);
        expect(store.proxy).toMatchObject({ status: 502 });
        expect(store.recordThrew).toMatchObject({ error: "RetryExhaustedError" });
        expect(store.released.pulled > 3 || store.released.cancelled).toBe(true);
      },
      TIMEOUT,
    );

    it(
      `${runtime}: the runtime's own Responses pass the answer check, Response.error() does not`,
      async () => {
        const { answers } = await layer(runtime);
        expect(answers.json).toMatchObject({ status: 200, text: '{"a":1}', attempts: 1, calls: 1 });
        expect(answers.subclass).toMatchObject({ status: 200, text: "mine", attempts: 1 });
        expect(answers.noBody).toMatchObject({ status: 204, text: "", attempts: 1 });
        expect(answers.bytes).toMatchObject({ status: 200, text: "hi" });
        expect(answers.blob).toMatchObject({ status: 200, text: "blob" });
        expect(answers.fetched).toMatchObject({ status: 200, attempts: 1 });
        expect(answers.redirect).toMatchObject({ status: 200, redirected: true, calls: 2 });
        expect(answers.error).toMatchObject({ error: "RetryExhaustedError", calls: 1 });
        expect(answers.error?.message).toMatch(/no Response fetch would give/);
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// (3) durableObjectStore: the probe's lease asked, its caller gone, the process free to exit
// ---------------------------------------------------------------------------

interface ProbeReport {
  tripped: string;
  asked: boolean;
  outcome: string | number;
  settleMs?: number;
}

describe("(3) a probe's lease asked of durableObjectStore, its caller aborted", () => {
  for (const runtime of RUNTIMES) {
    it(
      `${runtime}: the call settles at once and the process exits promptly (a waiting caller holds it)`,
      async () => {
        const aborted = await report<ProbeReport>(runtime, "probe", "abort");
        expect(aborted.report).toMatchObject({ tripped: "open", asked: true, outcome: "the probe's caller left" });
        expect(aborted.report.settleMs).toBeLessThan(200);
        // The store's 1500 ms bound runs on unref'd (Deno.unrefTimer in Deno): nothing holds the process.
        expect(aborted.exitAfter).toBeLessThan(700);
        // The control: a caller that waits keeps the process for the bound, so the measure can tell.
        const waiting = await report<ProbeReport>(runtime, "probe", "wait");
        expect(waiting.report).toMatchObject({ tripped: "open", asked: true, outcome: "waiting" });
        expect(waiting.exitAfter).toBeGreaterThan(1000);
      },
      TIMEOUT,
    );
  }
});
