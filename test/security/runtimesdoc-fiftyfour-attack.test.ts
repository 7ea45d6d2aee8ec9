/**
 * Outside-in attack on docs/runtimes.md and the README's "Where it runs" (with the sentences of docs/retry.md,
 * docs/degradation.md and the README that say what differs per runtime): a polyfill's signal on every path, a late
 * abort, listeners kept, keepalive bodies, the platform's follower and the export conditions, in real Node 22,
 * Deno 2 and Bun 1 running the BUILT package by its name.
 *
 * Docs:
 * - docs/runtimes.md / README.md "Where it runs": rows "Deno | … | every check; exits on its own", "Bun | … | every
 *   check; exits on its own"; "Where runtimes differ from one another, not from the library: Deno's and Bun's
 *   `fetch` send no `Referer` at all (… and Bun's `Request` keeps no `referrer`), …" (nothing about `keepalive`).
 * - docs/retry.md: "one of that shape that is not the platform's own, a polyfill's or an SDK's, which Deno's, Bun's
 *   and browsers' fetch refuse, is followed by one of the platform's, made once per signal, so it works in every
 *   runtime as it does in Node (a `createClient` call's `signal` too, …)"; "the layer also stops listening when a
 *   call settles, but for one listener it keeps on a signal it links a timeout or a hedge to, however many calls
 *   that signal serves"; "the signal such a call hands its transport follows yours after the call settled, as
 *   fetch's own does, so aborting then still cancels a body being read"; "a `Request` input's body is read into
 *   bytes once and replayed (a `keepalive` `Request`'s whole, … since the `init` the layer sends it with cannot hold
 *   a keepalive stream; replayed only within `maxReplayBytes`; read into bytes, it goes with a `content-length`,
 *   where fetch would send the `Request`'s stream chunked)"; "a `keepalive` or `no-cors` call whose `init.body` is
 *   a stream (fetch refuses all three everywhere …)"; "With `redirects: "platform"` outside a browser and the
 *   global `fetch`, a body of bytes (a `Request` input's, …, or your own) goes to fetch as a `Blob` of those bytes".
 * - docs/degradation.md: "a `Request` body larger than `maxReplayBytes` that is not `keepalive`, outside a page: a
 *   keepalive one is read whole, as a keepalive request cannot send a stream, … and each is rewritten as any body
 *   in memory is".
 * - README.md: "a bundler building for browsers picks `dist/browser` through the package's `browser` export
 *   condition …. Node, Deno, Bun and Workers (the `workerd` and `worker` conditions) get the full build."
 *
 * How: `npm run build` when dist/ is missing; a throw-away project under the OS temp dir whose node_modules links
 * to this worktree; two scripts run in Node (process.execPath), Deno (`node_modules/.bin/deno run -A`) and Bun
 * (`node_modules/.bin/bun`), each printing one JSON report; the root, `./fallback`, `./degradation` and `./ky`
 * entries by name. A polyfill signal of the documented shape (`aborted`, `reason`, `addEventListener`,
 * `removeEventListener`, its listeners counted). Two node:http origins on 127.0.0.1 (test/helpers/http-upstream.ts):
 * ok, echo (method, content-length, body), 503, redirects of any status, an answer that never comes, a body that
 * stalls after its first chunk; every request tagged `?c=<runtime>-<case>`. esbuild's `buildSync` (metafile) and
 * `bun build --target` for the export conditions.
 *
 * Paths: plain call (no timeout, attempt timeout, total timeout), `Request` input, cross-origin 302, chain (503
 * then spare), hedge, degradation rewrite (`medium`), ky client; each answered and aborted 150 ms in; a late abort
 * while the body is read; 30 calls on one polyfill; keepalive string, stream and `Request` bodies within and over
 * `maxReplayBytes`, plain and rewritten; 307/308 under `redirects: "platform"` and `"library"`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; the sentence corrected in the fifty-fourth
 * session, so a plain `it` asserting the corrected one):
 * 1. docs/retry.md "a `keepalive` `Request`'s whole … read into bytes, it goes with a `content-length`" and
 *    docs/degradation.md "a keepalive one is read whole … and each is rewritten as any body in memory is", with
 *    docs/runtimes.md's Bun row ("every check") and its list of runtime differences, which names Bun's `Request`
 *    dropping `referrer` only. Observed in Bun 1.4.5: `new Request(url, { keepalive: true, … })` keeps no
 *    `keepalive` (the property is `undefined`), so the layer takes it for a Request that is not keepalive: a
 *    1000-byte body over `maxReplayBytes: 100` reaches the server chunked (`transfer-encoding: chunked`, no
 *    `content-length`), and at level `medium` its `"steps":50` goes unrewritten (Node and Deno: `content-length:
 *    1000`, and `"steps":30` with `content-length: 224`). Within the limit Bun too rewrites and replays it.
 *    The layer cannot see a flag the platform's `Request` dropped: docs/runtimes.md now names it beside Bun's
 *    `referrer`, with the advice to pass `keepalive: true` in `init` beside the `Request` (held in all three).
 *    Test: "…a keepalive Request over maxReplayBytes is read whole and rewritten, but in Bun … streamed once".
 *
 * Held (plain `it`):
 * - Node, Deno, Bun: a polyfill's signal with no timeout, with `timeout.attempt`, on a `Request` input, a
 *   cross-origin 302, a chain, a hedge, a rewrite and the ky client (with ky's `timeout`): answered 200 with no
 *   retry; aborted 150 ms in, each rejects with that very reason within 2 s, no retry, the connection closed.
 * - Node, Deno, Bun: aborting after the call resolved (native controller or polyfill; no timeout, attempt or total)
 *   rejects the next body read with the reason, as plain fetch does; 30 calls on one polyfill (no timeout, attempt
 *   timeout, hedged chain) leave exactly one listener on it.
 * - Node, Deno, Bun: keepalive or no-cors with a stream body is a `TypeError` at once, nothing sent; a keepalive
 *   string body is sent; a keepalive `Request` within `maxReplayBytes` is replayed on 503 (3 requests, 50 bytes
 *   with `content-length` each) and rewritten; over the limit it is sent once.
 * - Node, Deno, Bun: `redirects: "platform"` and `"library"` alike send a `Request`'s body (307), bytes (308) and
 *   a Blob (307) again to another origin, `redirected: true`.
 * - esbuild for the browser platform bundles dist/browser/; with wrangler's conditions (workerd, worker, browser)
 *   and for Node, dist/; `bun build --target=browser` bundles dist/browser/, `--target=bun` dist/.
 *
 * Docs-silent (not pinned):
 * - ky's `keepalive: true` builds a `Request` with it, so in Bun the ky client's keepalive calls lose it too (not
 *   run); whether Bun's fetch honours keepalive at all no doc says.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
const HAVE = { node: true, deno: existsSync(resolve(BIN, "deno")), bun: existsSync(resolve(BIN, "bun")) };
type Runtime = "node" | "deno" | "bun";
const RUNTIMES: Runtime[] = ["node", "deno", "bun"];
const TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// Two origins on 127.0.0.1; every request tagged `?c=<runtime>-<case>`
// ---------------------------------------------------------------------------

const api = httpUpstream();
const alt = httpUpstream();
const tagOf = (hit: Hit): string => new URL(hit.path, "http://x").searchParams.get("c") ?? "";
const hitsOf = (rt: Runtime, tag: string): Hit[] =>
  [...api.hits, ...alt.hits].filter((hit) => tagOf(hit) === `${rt}-${tag}`);

function route(hit: Hit): void {
  const url = new URL(hit.path, "http://x");
  const { res } = hit;
  switch (url.pathname) {
    case "/hang":
      return; // never answers; the client's abort closes it
    case "/slow":
      // Headers and a first chunk, then nothing until the client hangs up.
      res.writeHead(200, { "content-type": "text/plain" });
      return void res.write("first");
    case "/503":
      return void res.writeHead(503).end("busy");
    case "/json":
      return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    case "/echo":
      return void res.end(`${hit.method} ${hit.headers["content-length"] ?? "-"} ${hit.body}`);
    case "/redir":
      return void res
        .writeHead(Number(url.searchParams.get("s") ?? 302), { location: url.searchParams.get("to") ?? "/" })
        .end();
    default:
      return void res.end("ok");
  }
}

// A throw-away project that imports the BUILT package by its name (node_modules links to this worktree).
let project = "";

beforeAll(async () => {
  await Promise.all([api.start(), alt.start()]);
  api.on(route);
  alt.on(route);
  if (!existsSync(resolve(ROOT, "dist/index.js")) || !existsSync(resolve(ROOT, "dist/browser/index.js")))
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore" });
  project = mkdtempSync(join(tmpdir(), "runtimesdoc-fiftyfour-"));
  mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
  symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "p", type: "module", dependencies: { "@storycore/resilient-fetch": "*" } }),
  );
}, 120_000);

afterAll(() => {
  api.stop();
  alt.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` (written into the project) in a runtime, with both origins as its last argument. */
function runScript(runtime: Runtime, name: string, script: string, ms = 30_000): Promise<Exit> {
  const file = join(project, `${runtime}-${name}.mjs`);
  writeFileSync(file, script);
  const args = JSON.stringify([api.base, alt.base, runtime]);
  const [command, argv] =
    runtime === "node"
      ? [process.execPath, [file, args]]
      : runtime === "deno"
        ? [resolve(BIN, "deno"), ["run", "-A", file, args]]
        : [resolve(BIN, "bun"), [file, args]];
  return new Promise((done) => {
    const child = spawn(command, argv, { cwd: project, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

// biome-ignore lint/suspicious/noExplicitAny: a JSON report
const report = (exit: Exit): Record<string, any> => {
  const line = exit.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`no report: ${exit.stderr.slice(0, 2000)}`);
  return JSON.parse(line);
};

/** A signal of the documented shape (`aborted`, `reason`, `addEventListener`, `removeEventListener`), no native one. */
const POLY = `
class Poly {
  aborted = false; reason = undefined; #l = new Set();
  addEventListener(type, fn) { if (type === "abort" && fn) this.#l.add(fn); }
  removeEventListener(type, fn) { if (type === "abort") this.#l.delete(fn); }
  get live() { return this.#l.size; }
  abort(reason) {
    if (this.aborted) return;
    this.aborted = true; this.reason = reason;
    for (const fn of [...this.#l]) typeof fn === "function" ? fn.call(this, { type: "abort" }) : fn.handleEvent({ type: "abort" });
  }
}
`;

// ---------------------------------------------------------------------------
// 1. A polyfill's signal on every path: "so it works in every runtime as it does in Node"
// ---------------------------------------------------------------------------

const PATHS_SCRIPT = `
import { createResilience } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { createClient } from "@storycore/resilient-fetch/ky";
${POLY}
const [api, alt, rt] = JSON.parse(process.argv.at(-1));
const q = (tag) => "?c=" + rt + "-" + tag;
const chain = (name, first, second, hedge) => fallback([{ name, ...(hedge ? { hedge: { delay: hedge } } : {}),
  endpoints: [{ name: "p", url: api + first }, { name: "s", url: alt + second }] }]);
// Each path: how to make its layer and its call for a target path ("/ok" or "/hang").
const paths = {
  plain: (t) => [createResilience({ retry: { initialDelay: 1 } }), (r, s) => r.fetch(api + t + q("plain" + t), { signal: s })],
  attemptTimeout: (t) => [createResilience({ retry: { initialDelay: 1 }, timeout: { attempt: 600000 } }), (r, s) => r.fetch(api + t + q("attempt" + t), { signal: s })],
  request: (t) => [createResilience({ retry: { initialDelay: 1 } }), (r, s) => r.fetch(new Request(api + (t === "/ok" ? "/echo" : t) + q("request" + t), { method: "POST", body: "hi", headers: { "idempotency-key": "k" } }), { signal: s })],
  redirect: (t) => [createResilience({ retry: { initialDelay: 1 } }), (r, s) => r.fetch(api + "/redir" + q("redirect" + t) + "&to=" + encodeURIComponent(alt + t + q("redirect" + t)), { signal: s })],
  chain: (t) => [createResilience({ retry: false, fallback: chain("c" + t, "/503", t) }), (r, s) => r.fetch(api + "/503" + q("chain" + t), { signal: s })],
  hedge: (t) => [createResilience({ fallback: chain("h" + t, "/hang", t, 20) }), (r, s) => r.fetch(api + "/hang" + q("hedge" + t), { signal: s })],
  rewrite: (t) => {
    const r = createResilience({ retry: { initialDelay: 1 }, degradation: degradation() });
    r.degradation.setLevel("medium");
    return [r, (r, s) => r.fetch(api + (t === "/ok" ? "/echo" : t) + q("rewrite" + t), { method: "POST", headers: { "content-type": "application/json" }, body: '{"steps":50}', signal: s })];
  },
  ky: (t) => [createResilience({ retry: { initialDelay: 1 } }), (r, s) => createClient({ resilience: r }).get(api + t + q("ky" + t), { signal: s, timeout: 600000, throwHttpErrors: false })],
};
const out = {};
for (const [name, make] of Object.entries(paths)) {
  // Not aborted: the call is answered.
  {
    const [r, call] = make("/ok");
    let retries = 0; r.on("retry", () => retries++);
    const settled = await call(r, new Poly()).then(async (res) => res.status + " " + (await res.text()), (e) => "rejected " + e?.name + ": " + e?.message);
    out[name] = { settled, retries };
  }
  // Aborted 150 ms in: the call ends with the polyfill's reason.
  {
    const [r, call] = make("/hang");
    let retries = 0; r.on("retry", () => retries++);
    const s = new Poly();
    const reason = new Error("stop " + name);
    const t0 = Date.now();
    setTimeout(() => s.abort(reason), 150);
    const settled = await Promise.race([
      call(r, s).then(() => "resolved", (e) => (e === reason ? "the reason" : "rejected " + e?.name + ": " + e?.message)),
      new Promise((done) => setTimeout(() => done("still pending after 3 s"), 3000)),
    ]);
    out[name + " aborted"] = { settled, retries, fast: Date.now() - t0 < 2000 };
  }
}
console.log(JSON.stringify(out));
// Not waiting for the races' 3 s timers: whether a process exits on its own is the runtime matrix's check.
process.exit(0);
`;

describe("a polyfill's signal on every path", () => {
  for (const rt of RUNTIMES) {
    (HAVE[rt] ? it : it.skip)(
      `${rt}: plain, attempt timeout, Request, redirect, chain, hedge, rewrite, ky: answered, and aborted with its reason`,
      async () => {
        const out = report(await runScript(rt, "paths", PATHS_SCRIPT));
        const names = ["plain", "attemptTimeout", "request", "redirect", "chain", "hedge", "rewrite", "ky"];
        const answers: Record<string, string> = {
          request: "200 POST 2 hi",
          rewrite: '200 POST 12 {"steps":30}',
          chain: "200 ok",
        };
        for (const name of names) {
          expect(out[name], name).toEqual({ settled: answers[name] ?? "200 ok", retries: 0 });
          expect(out[`${name} aborted`], name).toEqual({ settled: "the reason", retries: 0, fast: true });
        }
        // Answered calls were sent once each (the chain: its 503 first endpoint, then the spare; the hedge: its
        // hanging first endpoint and the spare); the redirect reached its target across origins.
        expect(hitsOf(rt, "plain/ok")).toHaveLength(1);
        expect(hitsOf(rt, "redirect/ok").map((h) => h.path.split("?")[0])).toEqual(["/redir", "/ok"]);
        expect(hitsOf(rt, "chain/ok").map((h) => h.path.split("?")[0])).toEqual(["/503", "/ok"]);
        // Each aborted call's connection is closed by the abort, as fetch's abort closes it.
        for (const name of ["plain", "attempt", "request", "rewrite", "ky"]) {
          const hit = hitsOf(rt, `${name}/hang`)[0];
          expect(hit, name).toBeDefined();
          await hit?.closed;
        }
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// 2. After the call, keepalive, the platform's follower
// ---------------------------------------------------------------------------

const MORE_SCRIPT = `
import { createResilience } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { degradation } from "@storycore/resilient-fetch/degradation";
${POLY}
const [api, alt, rt] = JSON.parse(process.argv.at(-1));
const q = (tag) => "?c=" + rt + "-" + tag;
const later = (ms, v) => new Promise((done) => setTimeout(() => done(v), ms));
const out = {};
const dec = new TextDecoder();
const settle = (p, reason) => Promise.race([
  p.then((v) => "resolved " + (v?.status ?? JSON.stringify(v)), (e) => (reason && e === reason ? "the reason" : "rejected " + e?.name + ": " + e?.message)),
  later(2000, "pending after 2 s"),
]);
// (a) "aborting then still cancels a body being read": a native controller and a polyfill, with and without a timeout.
const makers = { native: () => { const c = new AbortController(); return [c.signal, (r) => c.abort(r)]; }, poly: () => { const p = new Poly(); return [p, (r) => p.abort(r)]; } };
{
  const [signal, abort] = makers.native();
  const res = await fetch(api + "/slow" + q("late-control"), { signal });
  const reader = res.body.getReader();
  const first = dec.decode((await reader.read()).value);
  const reason = new Error("late");
  abort(reason);
  out["late: plain fetch"] = first + " then " + (await settle(reader.read(), reason));
}
for (const kind of ["native", "poly"]) {
  for (const [tname, timeout] of [["none", undefined], ["attempt", { attempt: 600000 }], ["total", { total: 600000 }]]) {
    const [signal, abort] = makers[kind]();
    const r = createResilience({ timeout });
    const res = await r.fetch(api + "/slow" + q("late-" + kind + "-" + tname), { signal });
    const reader = res.body.getReader();
    const first = dec.decode((await reader.read()).value);
    const reason = new Error("late");
    abort(reason);
    out["late: " + kind + " " + tname] = first + " then " + (await settle(reader.read(), reason));
  }
}
// (b) One polyfill serving many calls: "made once per signal"; the layer keeps at most one listener on it.
for (const [name, opts] of [["none", {}], ["attempt", { timeout: { attempt: 600000 } }], ["hedge", { fallback: fallback([{ name: "h", hedge: { delay: 600000 }, endpoints: [{ name: "p", url: api + "/ok" }, { name: "s", url: alt + "/ok" }] }]) }]]) {
  const p = new Poly();
  const r = createResilience(opts);
  for (let i = 0; i < 30; i++) await (await r.fetch(api + "/ok" + q("many-" + name), { signal: p })).text();
  out["listeners after 30: " + name] = p.live;
}
// (c) keepalive.
{
  const r = createResilience({ retry: { initialDelay: 1 }, maxReplayBytes: 100 });
  let retries = 0; r.on("retry", () => retries++);
  const stream = () => new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("abc")); c.close(); } });
  out["keepalive + stream body"] = await settle(r.fetch(api + "/echo" + q("ka-stream"), { method: "POST", keepalive: true, body: stream(), duplex: "half" }));
  out["no-cors + stream body"] = await settle(r.fetch(api + "/echo" + q("nocors-stream"), { method: "POST", mode: "no-cors", body: stream(), duplex: "half" }));
  out["keepalive string"] = await r.fetch(api + "/echo" + q("ka-string"), { method: "POST", keepalive: true, body: "hello" }).then((res) => res.text(), (e) => "rejected " + e?.name + ": " + e?.message);
  let req;
  try { req = new Request(api + "/503" + q("ka-big"), { method: "POST", keepalive: true, body: "x".repeat(1000) }); out["Request keepalive kept"] = req.keepalive; } catch (e) { out["Request keepalive kept"] = "threw " + e?.message; }
  if (req) out["keepalive Request over the limit, 503"] = await settle(r.fetch(req));
  const small = new Request(api + "/503" + q("ka-small"), { method: "POST", keepalive: true, body: "y".repeat(50), headers: { "idempotency-key": "k1" } });
  out["keepalive Request within the limit, 503"] = await settle(r.fetch(small));
  out["keepalive retries"] = retries;
  // The same Request through a rule at "medium" (steps capped at 30), over the limit and (the control) within it.
  for (const [name, limit] of [["over", 100], ["within", 100000]]) {
    const rd = createResilience({ maxReplayBytes: limit, degradation: degradation() });
    rd.degradation.setLevel("medium");
    const body = JSON.stringify({ steps: 50, prompt: "p".repeat(200) });
    const res = await rd.fetch(new Request(api + "/echo" + q("ka-rewrite-" + name), { method: "POST", keepalive: true, headers: { "content-type": "application/json" }, body }));
    out["keepalive Request rewrite, " + name] = (await res.text()).match(/"steps":(\\d+)/)?.[1];
  }
  // docs/runtimes.md's advice for Bun: keepalive given in init beside the Request, which the layer sees.
  {
    const rd = createResilience({ maxReplayBytes: 100, degradation: degradation() });
    rd.degradation.setLevel("medium");
    const body = JSON.stringify({ steps: 50, prompt: "p".repeat(200) });
    const res = await rd.fetch(new Request(api + "/echo" + q("ka-init-over"), { method: "POST", headers: { "content-type": "application/json" }, body }), { keepalive: true });
    out["keepalive in init beside a Request, over"] = (await res.text()).match(/"steps":(\\d+)/)?.[1];
  }
}
// (d) redirects: "platform" outside a browser: a body of bytes on a 307/308, a Request's and the caller's own.
for (const mode of ["platform", "library"]) {
  const r = createResilience({ redirects: mode });
  const to = (tag) => "&to=" + encodeURIComponent(alt + "/echo" + q(tag));
  const a = await r.fetch(new Request(api + "/redir" + q("r307-" + mode) + "&s=307" + to("r307-" + mode), { method: "POST", body: "payload" }));
  out[mode + " 307 Request"] = a.status + " " + (await a.text()) + " " + a.redirected;
  const b = await r.fetch(api + "/redir" + q("r308-" + mode) + "&s=308" + to("r308-" + mode), { method: "PUT", body: new TextEncoder().encode("bytes!") });
  out[mode + " 308 bytes"] = b.status + " " + (await b.text()) + " " + b.redirected;
  const c = await r.fetch(api + "/redir" + q("r307b-" + mode) + "&s=307" + to("r307b-" + mode), { method: "POST", body: new Blob(["blob"]) });
  out[mode + " 307 Blob"] = c.status + " " + (await c.text()) + " " + c.redirected;
}
console.log(JSON.stringify(out));
// Not waiting for the races' 3 s timers: whether a process exits on its own is the runtime matrix's check.
process.exit(0);
`;

const more = new Map<Runtime, Promise<Record<string, unknown>>>();
const moreOf = (rt: Runtime) => {
  if (!more.has(rt)) more.set(rt, runScript(rt, "more", MORE_SCRIPT).then(report));
  return more.get(rt) as Promise<Record<string, unknown>>;
};
/** What the server got for a case: path, content-length, transfer-encoding, bytes. */
const wire = (rt: Runtime, tag: string) =>
  hitsOf(rt, tag).map((h) => [h.headers["content-length"], h.headers["transfer-encoding"], h.bytes.length]);

describe("after the call, one listener, keepalive, the platform's follower", () => {
  for (const rt of RUNTIMES) {
    (HAVE[rt] ? it : it.skip)(
      `${rt}: aborting after the call still cancels the body being read (native and polyfill, any timeout)`,
      async () => {
        const out = await moreOf(rt);
        expect(out["late: plain fetch"]).toBe("first then the reason");
        for (const kind of ["native", "poly"])
          for (const t of ["none", "attempt", "total"])
            expect(out[`late: ${kind} ${t}`], `${kind} ${t}`).toBe("first then the reason");
      },
      TIMEOUT,
    );

    (HAVE[rt] ? it : it.skip)(
      `${rt}: one polyfill serving 30 calls keeps one listener (no timeout, attempt timeout, hedge)`,
      async () => {
        const out = await moreOf(rt);
        for (const name of ["none", "attempt", "hedge"]) expect(out[`listeners after 30: ${name}`], name).toBe(1);
      },
      TIMEOUT,
    );

    (HAVE[rt] ? it : it.skip)(
      `${rt}: keepalive or no-cors with a stream body refused at once; keepalive string and Request bodies sent`,
      async () => {
        const out = await moreOf(rt);
        expect(out["keepalive + stream body"]).toBe(
          "rejected TypeError: resilience.fetch: a keepalive request cannot have a stream body",
        );
        expect(out["no-cors + stream body"]).toBe(
          "rejected TypeError: resilience.fetch: a no-cors request cannot have a stream body",
        );
        expect(hitsOf(rt, "ka-stream")).toEqual([]);
        expect(hitsOf(rt, "nocors-stream")).toEqual([]);
        expect(out["keepalive string"]).toBe("POST 5 hello");
        // Within the limit: replayed on each retry, with its length.
        expect(out["keepalive Request within the limit, 503"]).toBe("resolved 503");
        expect(out["keepalive retries"]).toBe(2);
        expect(wire(rt, "ka-small")).toEqual([
          ["50", undefined, 50],
          ["50", undefined, 50],
          ["50", undefined, 50],
        ]);
        expect(out["keepalive Request rewrite, within"]).toBe("30");
        // Over the limit: sent once.
        expect(out["keepalive Request over the limit, 503"]).toBe("resolved 503");
        expect(hitsOf(rt, "ka-big")).toHaveLength(1);
      },
      TIMEOUT,
    );

    // Defect 1 in Bun: its `Request` keeps no `keepalive`, so the layer takes the Request for one that is not.
    // The pinned `it.fails` asserted retry.md's and degradation.md's sentence in every runtime (read whole, sent
    // with its content-length, rewritten); docs/runtimes.md now names Bun's exception, asserted here.
    (HAVE[rt] ? it : it.skip)(
      `${rt}: a keepalive Request over maxReplayBytes is read whole and rewritten, but in Bun (no keepalive kept) streamed once`,
      async () => {
        const out = await moreOf(rt);
        if (rt === "bun") {
          expect(out["Request keepalive kept"]).toBeUndefined();
          expect(wire(rt, "ka-big")).toEqual([[undefined, "chunked", 1000]]);
          expect(out["keepalive Request rewrite, over"]).toBe("50");
          expect(wire(rt, "ka-rewrite-over")).toEqual([[undefined, "chunked", 224]]);
        } else {
          expect(wire(rt, "ka-big")).toEqual([["1000", undefined, 1000]]);
          expect(out["keepalive Request rewrite, over"]).toBe("30");
          expect(wire(rt, "ka-rewrite-over")).toEqual([["224", undefined, 224]]);
        }
        // runtimes.md's advice: `keepalive: true` in init beside the Request is seen everywhere, Bun too.
        expect(out["keepalive in init beside a Request, over"]).toBe("30");
        expect(wire(rt, "ka-init-over")).toEqual([["224", undefined, 224]]);
      },
      TIMEOUT,
    );

    (HAVE[rt] ? it : it.skip)(
      `${rt}: redirects "platform" sends a Request's, bytes' and a Blob's body again on 307/308, as the library does`,
      async () => {
        const out = await moreOf(rt);
        for (const mode of ["platform", "library"]) {
          expect(out[`${mode} 307 Request`], mode).toBe("200 POST 7 payload true");
          expect(out[`${mode} 308 bytes`], mode).toBe("200 PUT 6 bytes! true");
          expect(out[`${mode} 307 Blob`], mode).toBe("200 POST 4 blob true");
        }
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// 3. The export conditions: which build a bundler picks
// ---------------------------------------------------------------------------

describe("export conditions", () => {
  const ENTRY = `import { createResilience } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { createClient } from "@storycore/resilient-fetch/ky";
console.log(createResilience, fallback, createClient);
`;
  /** The package's entry files esbuild put in the bundle, relative to the package. */
  const bundled = (options: Parameters<typeof buildSync>[0]): string[] => {
    writeFileSync(join(project, "entry.mjs"), ENTRY);
    const result = buildSync({
      entryPoints: ["entry.mjs"],
      bundle: true,
      write: false,
      metafile: true,
      format: "esm",
      absWorkingDir: project,
      logLevel: "silent",
      ...options,
    });
    return Object.keys(result.metafile?.inputs ?? {})
      .filter((k) => /dist\/.*index\.js$/.test(k))
      .map((k) => k.replace(/.*(dist\/)/, "$1"))
      .sort();
  };

  it("esbuild for browsers picks dist/browser; with wrangler's conditions (workerd, worker, browser) the full build", () => {
    expect(bundled({ platform: "browser" })).toEqual([
      "dist/browser/fallback/index.js",
      "dist/browser/index.js",
      "dist/browser/ky/index.js",
    ]);
    const full = ["dist/fallback/index.js", "dist/index.js", "dist/ky/index.js"];
    expect(bundled({ platform: "browser", conditions: ["workerd", "worker", "browser"] })).toEqual(full);
    expect(bundled({ platform: "node" })).toEqual(full);
  });

  (HAVE.bun ? it : it.skip)("bun build --target=browser picks dist/browser; --target=bun the full build", () => {
    writeFileSync(join(project, "entry.mjs"), ENTRY);
    const build = (target: string): string => {
      const file = join(project, `out-${target}.js`);
      execFileSync(resolve(BIN, "bun"), ["build", "entry.mjs", `--target=${target}`, `--outfile=${file}`], {
        cwd: project,
        stdio: "ignore",
      });
      return readFileSync(file, "utf8");
    };
    const browser = build("browser");
    const server = build("bun");
    expect(browser).toMatch(/dist\/browser\/ky\/index\.js/);
    expect(server).not.toMatch(/dist\/browser\//);
    expect(server).toMatch(/dist\/ky\/index\.js/);
  });
});
