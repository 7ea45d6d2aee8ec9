/**
 * Outside-in attack on docs/runtimes.md (with the README's "Where it runs" rows) in real Deno 2 and Bun 1.
 *
 * Docs:
 * - docs/runtimes.md: rows "Deno | 2 (2.9.6) | … | every check; exits on its own", "Bun | 1 (1.4.5) | … | every
 *   check; exits on its own"; "Deno's and Bun's `fetch` send no `Referer` at all (… and Bun's `Request` keeps no
 *   `referrer`)"; "Deno's `Response` cannot be read once frozen …, so a transport that freezes its answers there
 *   gets the network error any unreadable answer gets; Node and Bun serve it"; "Bun sends no `content-type` with a
 *   string body (… Node and Deno send `text/plain;charset=UTF-8`), through the library too, on the first request
 *   and a 307's replay"; "Bun's `Request` keeps no `keepalive` … in Bun one over `maxReplayBytes` goes as any
 *   `Request`'s stream does (chunked, once, not rewritten) … Pass `keepalive: true` in `init` beside the `Request`,
 *   which the layer sees"; the conformance list ("a fallback chain with credential hygiene, a cross-origin
 *   redirect that must not carry credentials, … a streamed response read chunk by chunk, abort during a backoff,
 *   no timer left behind").
 * - SECURITY.md "Nothing outlives its call": "every timer is cleared when its call settles, but housekeeping,
 *   under `unref`'d timers that never hold a process: a body the layer drops (a response retried past, a redirect
 *   followed, a losing hedge) is drained in the background for at most 1 s".
 * - docs/retry.md Redirects: "nothing dropped is put back, even if a later hop returns to the first origin";
 *   "The library reads one as the runtime's own follower reads it, so both go to the same URL: as UTF-8 in Node
 *   and Bun (a byte that is not UTF-8 becomes U+FFFD, `%EF%BF%BD`), byte by byte (as Latin-1) in Deno";
 *   "different ones are followed as `Headers.get` joins them (`/a, /b`), …, where Deno's takes the first, Bun's
 *   the last"; "one header whose text is a URL repeated that way (`/a, /a`) reads as that URL".
 * - docs/fallback.md "Credentials never cross origins": the allowlist only; "An endpoint's own `headers` … are
 *   sent"; a caller's value "copied into a `Headers` of its own (one value of a header given twice …)" or "Under
 *   another name (… `x-goog-api-key` holding the caller's `x-api-key` …)" stays home.
 *
 * How: `npm run build` (tsup, this worktree's dist/); two scripts written to a temp dir (removed in afterAll),
 * importing dist/index.js and dist/fallback/index.js by file URL, run by `deno run -A --no-lock --no-config` and
 * `bun run` (node_modules/.bin), one process per exit path and one for the differences; each prints one JSON
 * line and must then exit 0 on its own (killed and failed after 10 s; its lag from the report to its exit is
 * measured). Two node:http origins on 127.0.0.1 started here record every request (path, headers, body, and
 * whether the client cut the connection before the answer ended), tagged `?c=<runtime>-<case>`.
 *
 * Paths: plain call (retried 503s, a stalled 503 body and a 1 MiB-announced one retried past, an unread body, a
 * Retry-After of 30 s aborted, an open breaker for an hour, a referrer, a freezing transport, string bodies on a
 * 307 and a 503 retry, keepalive `Request`s), a followed redirect A → B → A with credentials and raw, repeated
 * `Location`s (library and the runtime's own fetch), a fallback chain (a 60 s backoff aborted; a hedge whose spare
 * lost; a frozen primary; a spare with its own `authorization` and one behind a `transform` copying the caller's
 * values into a `Headers` of its own), streamed bodies after a retry and down a hedged chain, cancelled and
 * aborted mid-body.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found; every sentence driven held in
 * Deno 2.9.6 and Bun 1.4.5.
 *
 * Held (plain `it`):
 * - Deno, Bun: after a call retried (3 attempts), an unread body, an abort in a 30 s Retry-After wait or in a
 *   chain's 60 s backoff (rejected with the very reason within 2 s), a hedge that lost (its connection cut) and a
 *   breaker open for an hour, the process exits 0 within 800 ms of its report (measured 2-17 ms).
 * - A 503 body that stalls, retried past, holds the process about 1 s (the drain's bound: measured 990-1000 ms),
 *   then is cut; one announcing 1 MiB is cut at once (exit within 800 ms).
 * - No `Referer` through the library or plain fetch; Bun's `Request` has `referrer` "", Deno's keeps it.
 * - A freezing transport: Deno's answer is the layer's network error ("the transport answered with no Response
 *   fetch would give") and a chain moves on to its spare; Bun serves it (plain and chain).
 * - String bodies: Bun sends no `content-type` on the first request, both sides of a 307 and a 503's retry (and
 *   plain fetch); Deno sends `text/plain;charset=UTF-8` on each.
 * - Bun: `new Request(u, { keepalive: true }).keepalive` is undefined; 1000 bytes over `maxReplayBytes: 100` go
 *   chunked; with `keepalive: true` in `init` beside it, `content-length: 1000`. Deno: `content-length` both ways.
 * - A → B → A: B and the hop back to A get `accept-language` and `idempotency-key` only (no `authorization`,
 *   `cookie`, `x-api-key`, custom header).
 * - A raw UTF-8 é and a Latin-1 byte in `Location`: the library lands where the runtime's own follower lands
 *   (Bun `%C3%A9`, `%EF%BF%BD`; Deno `%C3%83%C2%A9`, `%C3%A9`); two `Location`s go to the joined text (Deno's own
 *   follower to the first, Bun's to the last); one holding a URL twice goes to that URL.
 * - A chain's spare on another origin: its own `authorization` and `accept-language` only; a `transform`'s
 *   `Headers` copying the caller's (and `x-goog-api-key` holding `x-api-key`, `x-one` holding one value of a
 *   header given twice) sends none of them.
 * - Streams arrive chunk by chunk (the second after the first was read) after a retry and down a hedged chain; a
 *   reader's cancel and an abort mid-body cut the upstream connection, the read rejecting with the reason.
 *
 * Docs-silent (not pinned; both written in during the sixty-third session, retry.md and SECURITY.md, asserted in the
 * drain test and the last test; Node exits up to 1 s late too):
 * - retry.md says a `Location` holding one URL twice (`/a, /a`) sends Node's follower to `/a,%20/a`; Deno's and
 *   Bun's own followers do the same (the library goes to `/a`), which the page does not say of them.
 * - A dropped body that stalls keeps a Deno or Bun process alive for the drain's 1 s (the pending read holds it,
 *   not the unref'd timer); SECURITY.md's "never hold a process" is true of the timer, but a short script still
 *   waits that second to exit.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
/** A document of the repository, its whitespace folded, to find a sentence in. */
const flat = (file: string): string => readFileSync(resolve(ROOT, file), "utf8").replace(/\s+/g, " ");
const BIN = resolve(ROOT, "node_modules/.bin");
const DIST = pathToFileURL(resolve(ROOT, "dist")).href;

// ---------------------------------------------------------------- servers (127.0.0.1)

interface Seen {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The connection closed before the answer was written in full (the client hung up). */
  cut: boolean;
}
const seen = new Map<string, Seen[]>();
const heals = new Map<string, () => void>();
const held: ServerResponse[] = [];
const hitsOf = (c: string): Seen[] => seen.get(c) ?? [];

function origin(): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://x");
      const c = u.searchParams.get("c") ?? "";
      const rec: Seen = {
        path: req.url ?? "",
        method: req.method ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        cut: false,
      };
      seen.set(c, [...hitsOf(c), rec]);
      res.on("close", () => {
        rec.cut = !res.writableFinished;
      });
      const n = hitsOf(c).length;
      const route = u.pathname.split("/")[1];
      const hold = () => held.push(res);
      switch (route) {
        case "flaky":
          return n <= Number(u.searchParams.get("n")) ? res.writeHead(503).end("busy") : res.end("done");
        case "stall503":
          if (n > 1) return res.end("done");
          res.writeHead(503, { "content-type": "text/plain" });
          res.write("partial");
          return hold();
        case "big503":
          if (n > 1) return res.end("done");
          res.writeHead(503, { "content-length": String(1 << 20) });
          res.write("x".repeat(1000));
          return hold();
        case "retryafter":
          return res.writeHead(503, { "retry-after": "30" }).end("later");
        case "slow":
          return void setTimeout(() => res.end("slow"), Number(u.searchParams.get("ms")));
        case "hold":
          return hold();
        case "fail":
        case "c503":
          return res.writeHead(route === "fail" ? 500 : 503).end("no");
        case "redir":
          return res
            .writeHead(Number(u.searchParams.get("s") ?? 302), { location: u.searchParams.get("to") ?? "/" })
            .end();
        case "rawloc": {
          const kind = u.pathname.split("/")[2];
          const q = `?c=${c}`;
          // Latin-1 strings are written byte for byte: "\xc3\xa9" is é in UTF-8, "\xe9" no UTF-8 at all.
          const loc: Record<string, string | string[]> = {
            utf8: `/landed/\xc3\xa9${q}`,
            latin1: `/landed/\xe9${q}`,
            dup: [`/landed/a${q}`, `/landed/b${q}`],
            dupsame: `/landed/a${q}, /landed/a${q}`,
          };
          res.setHeader("location", loc[kind ?? ""] ?? "/");
          return res.writeHead(302).end();
        }
        case "stream":
          if (u.searchParams.get("fail") === "1" && n === 1) return res.writeHead(503).end("busy");
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("chunk-1;");
          if (u.searchParams.get("endless") === "1") return hold();
          heals.set(c, () => res.end("chunk-2"));
          return hold();
        case "heal":
          heals.get(c)?.();
          return res.end("healed");
        default:
          return res.end(route === "freeze" ? "frozen-ok" : "ok");
      }
    });
  });
}

const servers = [origin(), origin()];
let api = "";
let alt = "";
let dir = "";

// ---------------------------------------------------------------- scripts run in Deno and Bun

const PRELUDE = `
const lib = await import("${DIST}/index.js");
const { fallback } = await import("${DIST}/fallback/index.js");
const { createResilience, getResilienceInfo } = lib;
const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const [api, alt, which, rt] = args;
const out = {};
const settle = (p) => p.then((v) => ({ ok: v }), (e) => ({ name: e?.name, message: String(e?.message ?? e), e }));
const t0 = Date.now();
`;

/** One path per process: it prints its report and must then exit on its own. */
const EXIT_SCRIPT = `${PRELUDE}
const c = rt + "-" + which;
if (which === "retried") {
  const r = createResilience({ retry: { initialDelay: 20, jitter: "none" } });
  const res = await r.fetch(api + "/flaky?n=2&c=" + c);
  Object.assign(out, { status: res.status, attempts: getResilienceInfo(res).attempts, text: await res.text() });
}
if (which === "dropped") {
  // A 503 whose body sends a chunk and stalls: retried past, its body dropped by the layer.
  const r = createResilience({ retry: { initialDelay: 10, jitter: "none" } });
  const res = await r.fetch(api + "/stall503?c=" + c);
  Object.assign(out, { status: res.status, attempts: getResilienceInfo(res).attempts, text: await res.text() });
}
if (which === "abortBackoff") {
  const r = createResilience({ retry: { maxRetryAfter: 60000 } });
  const ctl = new AbortController();
  const reason = new Error("user left");
  setTimeout(() => ctl.abort(reason), 80);
  const s = await settle(r.fetch(api + "/retryafter?c=" + c, { signal: ctl.signal }));
  Object.assign(out, { same: s.e === reason, elapsed: Date.now() - t0 });
}
if (which === "hedgeLost") {
  const r = createResilience({
    retry: false,
    fallback: fallback([{ name: "h", hedge: { delay: 30 }, endpoints: [
      { name: "p", url: api + "/slow" }, { name: "s", url: alt + "/hold" }] }]),
  });
  const res = await r.fetch(api + "/slow?ms=250&c=" + c);
  Object.assign(out, { status: res.status, endpoint: getResilienceInfo(res).endpoint, text: await res.text() });
}
if (which === "droppedBig") {
  // A 503 announcing 1 MiB and stalling after 1000 bytes: past the drain's limit, cancelled at once.
  const r = createResilience({ retry: { initialDelay: 10, jitter: "none" } });
  const res = await r.fetch(api + "/big503?c=" + c);
  Object.assign(out, { status: res.status, attempts: getResilienceInfo(res).attempts, text: await res.text() });
}
if (which === "unread") {
  const r = createResilience({ retry: false });
  const res = await r.fetch(api + "/ok?c=" + c);
  out.status = res.status;
}
if (which === "chainBackoff") {
  const r = createResilience({ retry: { initialDelay: 60000, jitter: "none" }, fallback: fallback([{ name: "b",
    endpoints: [{ name: "p", url: api + "/c503" }, { name: "s", url: alt + "/ok" }] }]) });
  const ctl = new AbortController();
  const reason = new Error("user left");
  setTimeout(() => ctl.abort(reason), 80);
  const s = await settle(r.fetch(api + "/c503/x?c=" + c, { signal: ctl.signal }));
  Object.assign(out, { same: s.e === reason, elapsed: Date.now() - t0 });
}
if (which === "openBreaker") {
  const r = createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 3600000 } });
  const first = await r.fetch(api + "/fail?c=" + c);
  await first.text();
  const second = await settle(r.fetch(api + "/fail?c=" + c));
  Object.assign(out, { first: first.status, second: second.name, state: Object.values(r.health().breakers)[0]?.state });
}
out.settledAfter = Date.now() - t0;
console.log(JSON.stringify(out));
`;

/** The runtime differences and the library's promises, one case after another in one process. */
const DIFF_SCRIPT = `${PRELUDE}
const tag = (k) => "c=" + rt + "-" + k;
// Referer: the library hands a referrer on; the runtime's fetch decides what is sent.
{
  const r = createResilience({ retry: false });
  await (await r.fetch(api + "/ok?" + tag("ref-lib"), { referrer: api + "/page?x=1", referrerPolicy: "unsafe-url" })).text();
  await (await fetch(api + "/ok?" + tag("ref-plain"), { referrer: api + "/page?x=1", referrerPolicy: "unsafe-url" })).text();
  out.requestReferrer = new Request(api + "/ok", { referrer: api + "/page" }).referrer;
}
// A transport that freezes its answers: a plain call, and down a chain (frozen primary, plain spare).
{
  const freezing = (i, init) => fetch(i, init).then((res) => (String(i.url ?? i).includes("/freeze") ? Object.freeze(res) : res));
  const r = createResilience({ retry: false, fetch: freezing });
  const s = await settle(r.fetch(api + "/freeze?" + tag("frz")).then(async (res) => res.status + ":" + (await res.text())));
  out.frozen = s.ok ?? s.name + ": " + s.message.slice(0, 160);
  const chain = createResilience({ retry: false, fetch: freezing, fallback: fallback([{ name: "f",
    endpoints: [{ name: "p", url: api + "/freeze" }, { name: "s", url: alt + "/ok" }] }]) });
  const cs = await settle(chain.fetch(api + "/freeze/x?" + tag("frz-chain")).then(async (res) =>
    getResilienceInfo(res).endpoint + ":" + (await res.text())));
  out.frozenChain = cs.ok ?? cs.name;
}
// A string body's content-type: first request, a 307's replay, a 503's retry.
{
  const r = createResilience({ retry: { initialDelay: 5, jitter: "none" } });
  await (await r.fetch(api + "/ok?" + tag("ct-first"), { method: "POST", body: "hi" })).text();
  const to = encodeURIComponent(api + "/ok?" + tag("ct-307b"));
  await (await r.fetch(api + "/redir?s=307&to=" + to + "&" + tag("ct-307a"), { method: "POST", body: "hi" })).text();
  await (await r.fetch(api + "/flaky?n=1&" + tag("ct-503"), { method: "POST", body: "hi", headers: { "idempotency-key": "k-1" } })).text();
  out.plainCt = (await fetch(api + "/ok?" + tag("ct-plain"), { method: "POST", body: "hi" }).then((x) => x.text()), "sent");
}
// A keepalive Request over maxReplayBytes, alone and with keepalive: true beside it in init.
{
  const r = createResilience({ retry: false, maxReplayBytes: 100 });
  const mk = (k) => new Request(api + "/ok?" + tag(k), { method: "POST", body: "x".repeat(1000), keepalive: true });
  out.requestKeepalive = mk("none").keepalive ?? "undefined";
  await (await r.fetch(mk("ka-alone"))).text();
  await (await r.fetch(mk("ka-init"), { keepalive: true })).text();
}
// Redirects the library follows: A -> B -> A with credentials; nothing dropped comes back.
{
  const r = createResilience({ retry: false });
  const back = api + "/ok?" + tag("hop3");
  const viaB = alt + "/redir?to=" + encodeURIComponent(back) + "&" + tag("hop2");
  const res = await r.fetch(api + "/redir?to=" + encodeURIComponent(viaB) + "&" + tag("hop1"), { headers: {
    authorization: "Bearer caller-secret", cookie: "sid=caller-session", "x-api-key": "k-caller-key",
    "accept-language": "fr", "idempotency-key": "idem-1", "x-trace": "t-1" } });
  out.hops = { status: res.status, redirected: res.redirected, url: new URL(res.url).pathname };
  await res.text();
}
// A Location the runtime's own follower reads one way: the library goes to the same URL.
{
  const r = createResilience({ retry: false });
  out.loc = {};
  for (const kind of ["utf8", "latin1", "dup", "dupsame"]) {
    const where = async (x) => (await x.text(), new URL(x.url).pathname + new URL(x.url).search);
    const lib = await settle(r.fetch(api + "/rawloc/" + kind + "?c=" + kind).then(where));
    const own = await settle(fetch(api + "/rawloc/" + kind + "?c=" + kind).then(where));
    out.loc[kind] = { lib: lib.ok ?? lib.name, own: own.ok ?? own.name };
  }
}
// A chain's credential hygiene: a 503 primary, a spare on another origin (its own header, and a transform's copy).
{
  const headers = [["authorization", "Bearer caller-secret"], ["cookie", "sid=caller-session"], ["x-api-key", "k-caller-key"],
    ["proxy-authorization", "Basic cHJveHk6c2VjcmV0"], ["x-tok", "alpha-secret-1"], ["x-tok", "beta-secret-2"], ["accept-language", "de"]];
  const r = createResilience({ retry: false, fallback: fallback([
    { name: "own", endpoints: [{ name: "p", url: api + "/c503" }, { name: "s", url: alt + "/ok", headers: { authorization: "Bearer spare-own" } }] },
    { name: "copy", endpoints: [{ name: "p", url: api + "/fail" }, { name: "s", url: alt + "/ok", transform: (req) => {
      const h = new Headers(req.headers);
      h.set("x-goog-api-key", req.headers.get("x-api-key") ?? "none");
      h.set("x-one", "beta-secret-2");
      return { ...req, headers: h };
    } }] },
  ]) });
  const a = await r.fetch(api + "/c503/x?" + tag("chain-own"), { headers });
  const b = await r.fetch(api + "/fail/x?" + tag("chain-copy"), { headers });
  out.chain = [getResilienceInfo(a).endpoint, a.status, getResilienceInfo(b).endpoint, b.status];
  await a.text(); await b.text();
}
// Streams: chunk by chunk after a retry and down a hedged chain; a cancel and an abort mid-body reach the server.
{
  const r = createResilience({ retry: { initialDelay: 5, jitter: "none" }, fallback: fallback([{ name: "st",
    hedge: { delay: 2000 }, endpoints: [{ name: "p", url: api + "/stream" }, { name: "s", url: alt + "/stream" }] }]) });
  const dec = new TextDecoder();
  out.streams = {};
  for (const [k, url] of [["st-retry", api + "/stream/x?fail=1&"], ["st-chain", api + "/stream/y?"]]) {
    const res = await r.fetch(url + tag(k));
    const reader = res.body.getReader();
    const first = dec.decode((await reader.read()).value);
    await (await fetch(api + "/heal?" + tag(k))).text();
    let rest = "";
    for (;;) { const { done, value } = await reader.read(); if (done) break; rest += dec.decode(value); }
    out.streams[k] = first + "|" + rest + "|" + getResilienceInfo(res).attempts;
  }
  const cancelled = await r.fetch(api + "/stream/z?endless=1&" + tag("st-cancel"));
  const cr = cancelled.body.getReader();
  await cr.read();
  await cr.cancel();
  const ctl = new AbortController();
  const reason = new Error("left mid-body");
  const aborted = await r.fetch(api + "/stream/w?endless=1&" + tag("st-abort"), { signal: ctl.signal });
  const ar = aborted.body.getReader();
  await ar.read();
  ctl.abort(reason);
  const read = await settle(ar.read());
  out.streams.abortSame = read.e === reason;
  await new Promise((done) => setTimeout(done, 150));
}
out.settledAfter = Date.now() - t0;
console.log(JSON.stringify(out));
`;

type Report = Record<string, unknown> & { settledAfter: number };
interface Run {
  report: Report;
  code: number | null;
  exitLagMs: number;
  stderr: string;
}

/** Spawns a script; kills it and fails when it does not exit on its own within 10 s. */
function run(runtime: "deno" | "bun", script: string, which: string): Promise<Run> {
  const argv = [api, alt, which, runtime];
  const [cmd, args] =
    runtime === "deno"
      ? [resolve(BIN, "deno"), ["run", "-A", "--no-lock", "--no-config", script, ...argv]]
      : [resolve(BIN, "bun"), ["run", script, ...argv]];
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let reportedAt = 0;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) reportedAt = Date.now();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`${runtime} ${which}: did not exit on its own within 10 s; stdout ${out} stderr ${err}`));
    }, 10_000);
    child.on("exit", (code) => {
      clearTimeout(killer);
      try {
        const report = JSON.parse(out.trim().split("\n").pop() ?? "") as Report;
        done({ report, code, exitLagMs: Date.now() - reportedAt, stderr: err });
      } catch {
        fail(new Error(`${runtime} ${which}: no report (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/index.js"))) throw new Error("run `npm run build` first: the matrix needs dist/");
  for (const s of servers) s.listen(0, "127.0.0.1");
  await Promise.all(servers.map((s) => new Promise((r) => s.once("listening", r))));
  [api, alt] = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`) as [string, string];
  dir = mkdtempSync(join(tmpdir(), "runtimes-sixtythree-"));
  writeFileSync(join(dir, "exit.mjs"), EXIT_SCRIPT);
  writeFileSync(join(dir, "diff.mjs"), DIFF_SCRIPT);
});

afterAll(async () => {
  for (const res of held) res.destroy();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const EXIT_PATHS = [
  "retried",
  "dropped",
  "droppedBig",
  "unread",
  "abortBackoff",
  "chainBackoff",
  "hedgeLost",
  "openBreaker",
] as const;
const header = (h: Seen | undefined, name: string) => h?.headers[name];

describe.each(["deno", "bun"] as const)("%s, the built package", (rt) => {
  const exits = new Map<string, Run>();
  let diff: Run;
  beforeAll(async () => {
    for (const which of EXIT_PATHS) exits.set(which, await run(rt, join(dir, "exit.mjs"), which));
    diff = await run(rt, join(dir, "diff.mjs"), "diff");
  }, 120_000);
  const exit = (which: string): Run => exits.get(which) as Run;

  it("exits on its own at once after a call that retried, was aborted in a backoff, lost a hedge, met an open breaker", () => {
    for (const which of ["retried", "unread", "abortBackoff", "chainBackoff", "hedgeLost", "openBreaker"]) {
      expect([which, exit(which).code], exit(which).stderr).toEqual([which, 0]);
      expect(exit(which).exitLagMs, which).toBeLessThan(800);
    }
    expect(exit("retried").report).toMatchObject({ status: 200, attempts: 3, text: "done" });
    expect(hitsOf(`${rt}-retried`)).toHaveLength(3);
    expect(exit("unread").report).toMatchObject({ status: 200 });
    // A Retry-After of 30 s and a 60 s backoff between a chain's attempts: the abort settles the call at once.
    for (const which of ["abortBackoff", "chainBackoff"]) {
      expect(exit(which).report).toMatchObject({ same: true });
      expect(exit(which).report.elapsed as number).toBeLessThan(2_000);
    }
    expect(hitsOf(`${rt}-chainBackoff`).map((h) => h.path)).toEqual([`/c503/x?c=${rt}-chainBackoff`]);
    // The hedge that lost (the spare, started 30 ms in, never answering) is cancelled: its connection is cut.
    expect(exit("hedgeLost").report).toMatchObject({ status: 200, endpoint: "p", text: "slow" });
    expect(hitsOf(`${rt}-hedgeLost`).map((h) => [h.path.split("?")[0], h.cut])).toEqual([
      ["/slow", false],
      ["/hold", true],
    ]);
    // A breaker open for an hour holds no timer.
    expect(exit("openBreaker").report).toMatchObject({ first: 500, second: "CircuitOpenError", state: "open" });
    expect(hitsOf(`${rt}-openBreaker`)).toHaveLength(1);
  });

  it("a body the layer drops is drained for at most 1 s, then cut; one past the drain's limit is cut at once", () => {
    expect(exit("dropped").report).toMatchObject({ status: 200, attempts: 2, text: "done" });
    expect(exit("dropped").code).toBe(0);
    expect(exit("dropped").exitLagMs).toBeLessThan(2_500);
    expect(hitsOf(`${rt}-dropped`).map((h) => h.cut)).toEqual([true, false]);
    expect(exit("droppedBig").report).toMatchObject({ status: 200, attempts: 2, text: "done" });
    expect(exit("droppedBig").code).toBe(0);
    expect(exit("droppedBig").exitLagMs).toBeLessThan(800);
    expect(hitsOf(`${rt}-droppedBig`).map((h) => h.cut)).toEqual([true, false]);
    // Written in since: the drain's read, an open connection, holds a short script up to its 1 s.
    expect(exit("dropped").exitLagMs).toBeGreaterThan(500);
    expect(flat("SECURITY.md")).toContain(
      "(its read under way, an open connection, holds a short script for that second at most: Node, Deno and Bun exit up to 1 s after such a call)",
    );
    expect(flat("docs/retry.md")).toContain(
      "a short script whose last call dropped a body that stalls exits up to 1 s after that call (Node, Deno and Bun alike).",
    );
  });

  it("the run of every case below exits 0 on its own", () => {
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.exitLagMs).toBeLessThan(800);
  });

  it("sends no Referer, through the library as through its own fetch; Bun's Request keeps no referrer", () => {
    expect(header(hitsOf(`${rt}-ref-lib`)[0], "referer")).toBeUndefined();
    expect(header(hitsOf(`${rt}-ref-plain`)[0], "referer")).toBeUndefined();
    expect(diff.report.requestReferrer).toBe(rt === "bun" ? "" : `${api}/page`);
  });

  it("a transport's frozen Response: Deno's is the network error (a chain moves on), Bun's is served", () => {
    if (rt === "deno") {
      expect(diff.report.frozen).toMatch(/^RetryExhaustedError: .*network error/);
      expect(diff.report.frozenChain).toBe("s:ok");
    } else {
      expect(diff.report.frozen).toBe("200:frozen-ok");
      expect(diff.report.frozenChain).toBe("p:frozen-ok");
    }
  });

  it("a string body's content-type: none in Bun, text/plain;charset=UTF-8 in Deno, first, 307 replay, retry", () => {
    const want = rt === "bun" ? undefined : "text/plain;charset=UTF-8";
    const sent = ["ct-first", "ct-307a", "ct-307b", "ct-503", "ct-plain"].flatMap((k) => hitsOf(`${rt}-${k}`));
    expect(sent).toHaveLength(6);
    for (const h of sent) expect([h.path, header(h, "content-type"), h.body]).toEqual([h.path, want, "hi"]);
  });

  it("a keepalive Request over maxReplayBytes: read whole in Deno, streamed once in Bun; keepalive in init works in both", () => {
    expect(diff.report.requestKeepalive).toBe(rt === "bun" ? "undefined" : true);
    const [alone] = hitsOf(`${rt}-ka-alone`);
    const [init] = hitsOf(`${rt}-ka-init`);
    expect(alone?.body).toHaveLength(1000);
    expect(header(alone, "content-length")).toBe(rt === "bun" ? undefined : "1000");
    expect(header(alone, "transfer-encoding")).toBe(rt === "bun" ? "chunked" : undefined);
    expect([header(init, "content-length"), init?.body.length]).toEqual(["1000", 1000]);
  });

  it("a followed redirect to another origin and back: only the allowlist goes, nothing dropped comes back", () => {
    expect(diff.report.hops).toEqual({ status: 200, redirected: true, url: "/ok" });
    const [one] = hitsOf(`${rt}-hop1`);
    expect(header(one, "authorization")).toBe("Bearer caller-secret");
    for (const k of ["hop2", "hop3"]) {
      const [h] = hitsOf(`${rt}-${k}`);
      for (const name of ["authorization", "cookie", "x-api-key", "x-trace"])
        expect([k, header(h, name)]).toEqual([k, undefined]);
      expect([header(h, "accept-language"), header(h, "idempotency-key")]).toEqual(["fr", "idem-1"]);
    }
  });

  it("a raw Location goes where the runtime's own follower goes (UTF-8 in Bun, Latin-1 in Deno); several are joined", () => {
    const loc = diff.report.loc as Record<string, { lib: string; own: string }>;
    const enc = rt === "bun" ? { utf8: "%C3%A9", latin1: "%EF%BF%BD" } : { utf8: "%C3%83%C2%A9", latin1: "%C3%A9" };
    expect(loc.utf8).toEqual({ lib: `/landed/${enc.utf8}?c=utf8`, own: `/landed/${enc.utf8}?c=utf8` });
    expect(loc.latin1).toEqual({ lib: `/landed/${enc.latin1}?c=latin1`, own: `/landed/${enc.latin1}?c=latin1` });
    // retry.md: different ones are followed as Headers.get joins them, where Deno's takes the first, Bun's the last.
    expect(loc.dup).toEqual({
      lib: "/landed/a?c=dup,%20/landed/b?c=dup",
      own: rt === "bun" ? "/landed/b?c=dup" : "/landed/a?c=dup",
    });
    // One header holding a URL twice reads as that URL (each runtime's own follower goes to the joined text).
    expect(loc.dupsame).toEqual({ lib: "/landed/a?c=dupsame", own: "/landed/a?c=dupsame,%20/landed/a?c=dupsame" });
    expect(flat("docs/retry.md")).toContain(
      "(`/a, /a`) reads as that URL, where Node's, Deno's and Bun's own followers go to `/a,%20/a`.",
    );
  });

  it("a chain's credential hygiene: the spare on another origin gets its own header and the allowlist only", () => {
    expect(diff.report.chain).toEqual(["s", 200, "s", 200]);
    for (const k of ["chain-own", "chain-copy"]) {
      const [first, spare] = hitsOf(`${rt}-${k}`);
      expect(header(first, "x-api-key")).toBe("k-caller-key");
      expect(header(spare, "authorization")).toBe(k === "chain-own" ? "Bearer spare-own" : undefined);
      for (const name of ["cookie", "x-api-key", "proxy-authorization", "x-tok", "x-goog-api-key", "x-one"])
        expect([k, name, header(spare, name)]).toEqual([k, name, undefined]);
      expect(header(spare, "accept-language")).toBe("de");
    }
  });

  it("streams chunk by chunk after a retry and down a hedged chain; a cancel and an abort mid-body cut the upstream", () => {
    expect(diff.report.streams).toEqual({
      "st-retry": "chunk-1;|chunk-2|2",
      "st-chain": "chunk-1;|chunk-2|1",
      abortSame: true,
    });
    expect(hitsOf(`${rt}-st-cancel`).map((h) => h.cut)).toEqual([true]);
    expect(hitsOf(`${rt}-st-abort`).map((h) => h.cut)).toEqual([true]);
  });
});
