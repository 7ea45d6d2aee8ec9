/**
 * Outside-in attack on docs/runtimes.md (and the README's runtime sentences) where the runtimes' own fetch differs:
 * platform errors and their names, `redirect: "error"`/`"manual"`, async-iterable and failing upload bodies, a
 * string body's `content-type` past the first request, the ky client's keepalive, `require()` and the export
 * conditions, in real Node 22, Deno 2 and Bun 1 running the BUILT package by its name (what the fifty-fourth to
 * fifty-sixth sessions' runtime runs did not drive).
 *
 * Docs:
 * - docs/runtimes.md: "| Deno | 2 (2.9.6) | … | every check; exits on its own |", "| Bun | 1 (1.4.5) | … | every
 *   check; exits on its own |"; "Where runtimes differ from one another, not from the library: …" (Referer, a frozen
 *   `Response`, "Bun sends no `content-type` with a string body …, through the library too, on the first request
 *   and a 307's replay", "Bun's `Request` keeps no `keepalive` … in Bun one over `maxReplayBytes` goes as any
 *   `Request`'s stream does (chunked, once, not rewritten)", Deno's re-sent POST; nothing else).
 * - docs/retry.md: "One read that far, past `maxReplayBytes`, that fails later, while it is sent, fails the call with
 *   fetch's `TypeError` (its `cause` the stream's error; workerd's fetch rejects with the stream's error itself, which
 *   the layer then wraps in a `TypeError`, "the request body stream failed while it was sent"), through a chain too,
 *   counted as no attempt and by nothing (the host's breaker, the error rate, …)"; "A `ReadableStream` given in
 *   `init` … one that fails while it is sent is a network error of that attempt, the host's as far as the layer can
 *   tell"; "a stream body (or an async iterable) given in `init` fails any redirect but a 303, a 301/302 too";
 *   "A `ReadableStream` body, or one larger than `maxReplayBytes`, is sent once on every path"; "Retry events name a
 *   failure … `DNS lookup failed` …"; a keyless POST "is sent again … when it never reached the server (connection
 *   refused, DNS or TLS failure …)"; "a valid port the platform will not dial (fetch's "bad ports", such as 6000 or
 *   6667) is the platform's refusal, which reaches the layer as a network error like any other: retried and
 *   counted"; "Calls with `redirect: "manual"` or `"error"` go to the transport untouched; a `redirect: "error"` call
 *   that meets a redirect is refused by the platform with the `TypeError` of a network failure, … so it is retried
 *   like one and counts against the host's breaker".
 * - README.md: "The package is ES modules only; CommonJS code can `require()` it on Node ≥ 22.12, which loads ES
 *   modules that way"; "Node, Deno, Bun and Workers (the `workerd` and `worker` conditions) get the full build".
 *
 * How: `npm run build` when dist/ is missing; a throw-away project under the OS temp dir whose node_modules links
 * this worktree (and ky), as the earlier runtime runs and test/runtimes/matrix.test.ts spawn their hosts
 * (`process.execPath file`, `deno run -A file`, `bun file`), one child at a time, each printing one JSON line and
 * having to exit 0 on its own. Root, `./fallback`, `./degradation`, `./ky` by name; a `.cjs` file for `require()`;
 * `--conditions=` for the export conditions. Two node:http origins on 127.0.0.1 (test/helpers/http-upstream.ts),
 * every request tagged `?c=<runtime>-<case>`; a `.invalid` host name; port 6000.
 *
 * Paths: plain call (bad port, DNS failure GET and keyless POST, `redirect: "error"` and `"manual"` meeting a 302,
 * async-iterable bodies answered 200/307/303/503, a failing `init` stream), `Request` input (its stream failing past
 * `maxReplayBytes`), redirect hop (library-followed 303 and refused 307), fallback chain (a string body moved on; a
 * failing `Request` stream), degradation rewrite (`medium`), ky client (a 503 retried, a keepalive body over the
 * limit with a rewrite), `require()` of the package.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-seventh session, so plain
 * `it`: the layer now gives Deno's rejection the `TypeError` whose `cause` is what the source threw):
 * 1. docs/retry.md "One read that far, past `maxReplayBytes`, that fails later, while it is sent, fails the call
 *    with fetch's `TypeError` (its `cause` the stream's error …), through a chain too", with runtimes.md's Deno row
 *    ("every check") and its list of differences, which does not name this one. Observed in Deno 2.9.6: the call
 *    rejects with a `TypeError` whose `cause` is not the stream's error but a plain `Error` carrying only its message
 *    (a `RangeError` with an own `tag` arrives as `Error`, no `tag`), on a plain call and through a chain; Deno's own
 *    fetch does the same. Node: the very error; Bun: the very error (the layer wraps Bun's rejection). The layer
 *    knows the source failed (src/http/send/send-attempt.ts `sourceFailed`) and keeps fetch's `TypeError` as it is
 *    when it has a `cause` (`fetchFailure`), so in Deno the caller cannot match its own error.
 *    Test: "deno: a Request stream failing past maxReplayBytes rejects with a TypeError whose cause is that error".
 *
 * Held (plain `it`):
 * - Node, Deno, Bun: a `.invalid` host is retried as `DNS lookup failed` (3 attempts, a keyless POST too);
 *   `redirect: "error"` meeting a 302 is retried as a network error (3 requests, 3 failures on the host's breaker);
 *   `redirect: "manual"` resolves the 302 itself, one attempt; port 6000 is retried and counted (3 failures).
 * - Node, Deno, Bun: an async-iterable POST body reaches the server chunked; answered 307 the call fails with the
 *   follower's `TypeError` ("its body is a stream, sent once"), nothing sent again; 303 followed as a body-less GET;
 *   a PUT answered 503 is not retried (1 request).
 * - Node, Deno, Bun: a `ReadableStream` in `init` that fails while sent ends in a `RetryExhaustedError` of 1 attempt
 *   counted on the host's breaker and in the error rate; a `Request` stream failing past the limit is counted by
 *   nothing (totals, breaker), through a chain too (the spare not asked); `TypeError` everywhere.
 * - Node, Deno, Bun: a string body's `content-type` is the platform's on a 503 retry, a chain's next endpoint, a
 *   rewrite at `medium` (`"steps":30`) and ky's retry: `text/plain;charset=UTF-8` in Node and Deno, none in Bun.
 * - ky `keepalive: true` with a body over `maxReplayBytes` at `medium`: Node and Deno read it whole and rewrite it
 *   (`content-length`, `"steps":30`); Bun sends it chunked, once, unrewritten, as runtimes.md says of a keepalive
 *   `Request` made in Bun (ky makes one).
 * - Node 22 `require()`s the root and `./fallback` with no warning: the same module namespace object `import`
 *   gives (`[object Module]`, no `default`), `./package.json` too, and a call through it works; Node, Deno and Bun
 *   resolve the root to dist/index.js by default and under `--conditions=workerd` / `worker` (full build:
 *   `redirects: "library"` taken).
 *
 * Docs-silent (not pinned):
 * - Bun's fetch dials fetch's "bad ports" (port 6000 here: `connection refused`, ECONNREFUSED) where Node's and
 *   Deno's refuse them ("bad port", "Requests to port 6000 are blocked": `network error`); a server listening on
 *   one is reached from Bun only. runtimes.md's list does not name it.
 * - In Bun a `ReadableStream` `init` body that fails while sent reaches the caller as the stream's own error (the
 *   `RetryExhaustedError`'s `cause`, its message "gave up … : boom"), not a `TypeError`; Node and Deno give fetch's.
 *   Bun's own fetch rejects with the stream's error itself for a `Request` stream too (as retry.md says of workerd);
 *   the layer wraps that one in its "the request body stream failed while it was sent" `TypeError`.
 * - A ky user has no `init` beside ky's `Request` to put runtimes.md's advice ("Pass `keepalive: true` in `init`
 *   beside the `Request`") into; the ky client does not pass it either.
 * - Any runtime run with `--conditions=browser` (Node's, Deno's, Bun's flag) loads dist/browser/, which refuses
 *   `redirects: "library"`: outside a page that build leaves redirects to the platform's follower.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Hit, httpUpstream } from "../helpers/http-upstream.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
type Runtime = "node" | "deno" | "bun";
const RUNTIMES: Runtime[] = ["node", "deno", "bun"];
const HAVE: Record<Runtime, boolean> = {
  node: true,
  deno: existsSync(resolve(BIN, "deno")),
  bun: existsSync(resolve(BIN, "bun")),
};
const TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// Two origins; every request tagged `?c=<runtime>-<case>`
// ---------------------------------------------------------------------------

const api = httpUpstream();
const alt = httpUpstream();
const tagOf = (hit: Hit): string => new URL(hit.path, "http://x").searchParams.get("c") ?? "";
const hitsOf = (rt: Runtime, tag: string): Hit[] =>
  [...api.hits, ...alt.hits].filter((hit) => tagOf(hit) === `${rt}-${tag}`);
const seen = new Set<string>();

function route(hit: Hit): void {
  const url = new URL(hit.path, "http://x");
  const { res } = hit;
  const first = !seen.has(hit.path);
  seen.add(hit.path);
  switch (url.pathname) {
    case "/503":
      return void res.writeHead(503).end("busy");
    case "/503once":
      return void (first ? res.writeHead(503).end("busy") : res.end("ok"));
    case "/redir":
      return void res
        .writeHead(Number(url.searchParams.get("s") ?? 302), { location: `/echo${url.search}` })
        .end("moved");
    default:
      return void res.end("ok");
  }
}

let project = "";

beforeAll(async () => {
  await Promise.all([api.start(), alt.start()]);
  api.on(route);
  alt.on(route);
  if (!existsSync(resolve(ROOT, "dist/ky/index.js")))
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore" });
  project = mkdtempSync(join(tmpdir(), "runtimesdoc-fiftyseven-"));
  mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
  symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
  symlinkSync(resolve(ROOT, "node_modules/ky"), join(project, "node_modules/ky"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "p", type: "module" }));
}, 120_000);

afterAll(() => {
  api.stop();
  alt.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// One child at a time: it prints one JSON line and must exit 0 on its own
// ---------------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: a JSON report
type Report = Record<string, any>;
interface Run {
  code: number | null;
  out: Report;
  stderr: string;
}

function spawnRun(command: string, argv: string[], killAfterMs = 20_000): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(command, argv, { cwd: project, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("{"));
      if (!line) return fail(new Error(`${command} printed no report (exit ${code}): ${stderr.slice(0, 2000)}`));
      done({ code, out: JSON.parse(line) as Report, stderr });
    });
  });
}

const PRELUDE = `
import { createResilience, getResilienceInfo } from "@storycore/resilient-fetch";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { createClient } from "@storycore/resilient-fetch/ky";
const [api, alt, rt] = JSON.parse(globalThis.Deno ? Deno.args.at(-1) : process.argv.at(-1));
const q = (tag) => "?c=" + rt + "-" + tag;
const out = {};
const R = { retry: { initialDelay: 1, jitter: "none" } };
const enc = new TextEncoder();
/** A call's outcome, its retry events and what the layer counted for it. */
async function call(layer, go) {
  const events = [];
  const off = layer.on("retry", (e) => events.push(e.reason));
  const o = { events };
  try {
    const r = await go();
    o.status = r.status;
    o.attempts = getResilienceInfo(r)?.attempts;
    o.location = r.headers.get("location");
    await r.body?.cancel();
  } catch (e) {
    o.error = e?.constructor?.name;
    o.message = String(e?.message).slice(0, 200);
    o.attempts = e?.attempts;
    o.cause = e?.cause ? e.cause.constructor?.name + ": " + String(e.cause.message).slice(0, 200) : null;
    o.thrown = e;
  }
  off();
  const h = layer.health();
  o.failures = Object.values(h.breakers ?? {}).reduce((n, b) => n + (b.failureCount ?? 0), 0);
  o.errorRate = h.errorRate;
  o.totals = layer.debugInfo().totals;
  return o;
}
const report = (o) => { const { thrown, ...rest } = o; return rest; };
`;
const EPILOGUE = `\nconsole.log(JSON.stringify(out));\n`;

/** Each script runs once per runtime, when a test first asks for it (tests run one after another). */
const runs = new Map<string, Promise<Run>>();
function runOf(rt: Runtime, name: string, body: string): Promise<Run> {
  const key = `${rt}-${name}`;
  if (!runs.has(key)) {
    const file = join(project, `${key}.mjs`);
    writeFileSync(file, PRELUDE + body + EPILOGUE);
    const args = JSON.stringify([api.base, alt.base, rt]);
    const [command, argv]: [string, string[]] =
      rt === "node"
        ? [process.execPath, [file, args]]
        : rt === "deno"
          ? [resolve(BIN, "deno"), ["run", "-A", file, args]]
          : [resolve(BIN, "bun"), [file, args]];
    runs.set(key, spawnRun(command, argv));
  }
  return runs.get(key) as Promise<Run>;
}

function expectClean(run: Run): void {
  expect(run.stderr).not.toMatch(/unhandled|uncaught/i);
  expect(run.code).toBe(0);
}

// ---------------------------------------------------------------------------
// 1. Platform errors: DNS, a bad port, redirect "error" and "manual"
// ---------------------------------------------------------------------------

const ERRORS = `
{ const l = createResilience(R); out.dnsGet = report(await call(l, () => l.fetch("http://nohost.invalid/x"))); }
{ const l = createResilience(R); out.dnsPost = report(await call(l, () => l.fetch("http://nohost.invalid/x", { method: "POST", body: "job" }))); }
{ const l = createResilience(R); out.badPort = report(await call(l, () => l.fetch("http://127.0.0.1:6000/x" + q("bad")))); }
{ const l = createResilience(R); out.redirError = report(await call(l, () => l.fetch(api + "/redir" + q("rerr"), { redirect: "error" }))); }
{ const l = createResilience(R); out.redirManual = report(await call(l, () => l.fetch(api + "/redir" + q("rman"), { redirect: "manual" }))); }
`;

describe.each(RUNTIMES)("%s: platform errors through the layer", (rt) => {
  it.skipIf(!HAVE[rt])(
    "a .invalid host is retried as `DNS lookup failed`, a keyless POST too (it never reached a server)",
    async () => {
      const run = await runOf(rt, "errors", ERRORS);
      expectClean(run);
      for (const o of [run.out.dnsGet, run.out.dnsPost]) {
        expect(o).toMatchObject({ error: "RetryExhaustedError", attempts: 3 });
        expect(o.events).toEqual(["DNS lookup failed", "DNS lookup failed"]);
        expect(o.failures).toBe(3);
      }
    },
    TIMEOUT,
  );

  it.skipIf(!HAVE[rt])(
    "redirect: 'error' meeting a 302 is retried like a network error and counted; 'manual' resolves the 302",
    async () => {
      const run = await runOf(rt, "errors", ERRORS);
      expect(run.out.redirError).toMatchObject({ error: "RetryExhaustedError", attempts: 3, failures: 3 });
      expect(run.out.redirError.cause).toMatch(/^TypeError/);
      expect(run.out.redirError.events).toEqual(["network error", "network error"]);
      expect(hitsOf(rt, "rerr").map((h) => new URL(h.path, "http://x").pathname)).toEqual([
        "/redir",
        "/redir",
        "/redir",
      ]);
      expect(run.out.redirManual).toMatchObject({ status: 302, attempts: 1, failures: 0, events: [] });
      expect(run.out.redirManual.location).toBe(`/echo?c=${rt}-rman`);
      expect(hitsOf(rt, "rman")).toHaveLength(1);
    },
    TIMEOUT,
  );

  it.skipIf(!HAVE[rt])(
    "port 6000 (a fetch 'bad port') is retried and counted; Node and Deno refuse to dial it, Bun dials it",
    async () => {
      const run = await runOf(rt, "errors", ERRORS);
      const o = run.out.badPort;
      // Nothing listens on 127.0.0.1:6000 here, so Bun's dial is refused; Node and Deno never dial.
      expect(o).toMatchObject({ error: "RetryExhaustedError", attempts: 3, failures: 3 });
      expect(o.events).toEqual(
        rt === "bun" ? ["connection refused", "connection refused"] : ["network error", "network error"],
      );
      expect(o.message).toMatch(
        rt === "bun" ? /ECONNREFUSED/ : rt === "deno" ? /port 6000 are blocked/ : /fetch failed/,
      );
    },
    TIMEOUT,
  );
});

// ---------------------------------------------------------------------------
// 2. Bodies: async iterables, failing uploads, a string's content-type, ky keepalive
// ---------------------------------------------------------------------------

const BODIES = `
async function* gen() { yield enc.encode("ab"); yield enc.encode("cd"); }
const iter = (m = "POST") => ({ method: m, body: gen(), duplex: "half" });
{ const l = createResilience(R); out.iterPlain = report(await call(l, () => l.fetch(api + "/echo" + q("iter"), iter()))); }
{ const l = createResilience(R); out.iter307 = report(await call(l, () => l.fetch(api + "/redir" + q("iter307") + "&s=307", iter()))); }
{ const l = createResilience(R); out.iter303 = report(await call(l, () => l.fetch(api + "/redir" + q("iter303") + "&s=303", iter()))); }
{ const l = createResilience(R); out.iter503 = report(await call(l, () => l.fetch(api + "/503once" + q("iter503"), iter("PUT")))); }

/** A stream of three 20-byte chunks, then the error (a RangeError with a tag of its own). */
function failing() {
  let i = 0;
  const boom = Object.assign(new RangeError("boom"), { tag: "mine" });
  const stream = new ReadableStream({ pull(c) { if (i++ < 3) c.enqueue(enc.encode("x".repeat(20))); else c.error(boom); } });
  return { boom, stream };
}
const causeOf = (o, boom) => ({ isTheError: o.thrown?.cause === boom, name: o.thrown?.cause?.constructor?.name, tag: o.thrown?.cause?.tag ?? null });
{
  const l = createResilience({ ...R, maxReplayBytes: 10 });
  const { boom, stream } = failing();
  const o = await call(l, () => l.fetch(new Request(api + "/echo" + q("late"), { method: "PUT", body: stream, duplex: "half" })));
  out.late = { ...report(o), causeOf: causeOf(o, boom) };
}
{
  const l = createResilience({ ...R, maxReplayBytes: 10, fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: api + "/echo" }, { name: "b", url: alt + "/echo" }] }]) });
  const { boom, stream } = failing();
  const o = await call(l, () => l.fetch(new Request(api + "/echo" + q("latechain"), { method: "PUT", body: stream, duplex: "half" })));
  out.lateChain = { ...report(o), causeOf: causeOf(o, boom) };
}
{
  // The runtime's own fetch, for reference.
  const { boom, stream } = failing();
  const o = {};
  try { await fetch(new Request(api + "/echo" + q("plainlate"), { method: "PUT", body: stream, duplex: "half" })); } catch (e) { o.thrown = e; }
  out.plainLate = { error: o.thrown?.constructor?.name, isTheError: o.thrown === boom, causeOf: causeOf(o, boom) };
}
{
  const l = createResilience(R);
  const { stream } = failing();
  out.initStream = report(await call(l, () => l.fetch(api + "/echo" + q("initstream"), { method: "PUT", body: stream, duplex: "half" })));
}

{ const l = createResilience(R); out.ctRetry = report(await call(l, () => l.fetch(api + "/503once" + q("ctretry"), { method: "PUT", body: "hello" }))); }
{
  const l = createResilience({ ...R, retry: false, fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: api + "/503" }, { name: "b", url: alt + "/echo" }] }]) });
  out.ctChain = report(await call(l, () => l.fetch(api + "/503" + q("ctchain"), { method: "PUT", body: "hello" })));
}
{
  const l = createResilience({ ...R, degradation: degradation({}) });
  l.degradation.setLevel("medium");
  out.ctRewrite = report(await call(l, () => l.fetch(api + "/echo" + q("ctrewrite"), { method: "POST", body: JSON.stringify({ steps: 50 }) })));
}
{
  const l = createResilience(R);
  const ky = createClient({ resilience: l });
  out.ctKy = report(await call(l, () => ky.put(api + "/503once" + q("ctky"), { body: "hello" })));
}
{
  const l = createResilience({ ...R, maxReplayBytes: 100, degradation: degradation({}) });
  l.degradation.setLevel("medium");
  const ky = createClient({ resilience: l });
  const body = JSON.stringify({ steps: 50, pad: "p".repeat(1000) });
  out.kyKeepalive = report(await call(l, () => ky.post(api + "/echo" + q("kykeep"), { body, keepalive: true, headers: { "content-type": "application/json" } })));
}
`;

const pathsOf = (hits: Hit[]): string[] => hits.map((h) => `${h.method} ${new URL(h.path, "http://x").pathname}`);

describe.each(RUNTIMES)("%s: bodies the runtimes' fetch treat apart", (rt) => {
  it.skipIf(!HAVE[rt])(
    "an async-iterable body goes chunked; 307 refused, 303 followed as a GET, a 503 not retried",
    async () => {
      const run = await runOf(rt, "bodies", BODIES);
      expectClean(run);
      const { iterPlain, iter307, iter303, iter503 } = run.out;
      expect(iterPlain).toMatchObject({ status: 200, attempts: 1 });
      const [plainHit] = hitsOf(rt, "iter");
      expect([plainHit?.body, plainHit?.headers["transfer-encoding"]]).toEqual(["abcd", "chunked"]);
      expect(iter307).toMatchObject({ error: "RetryExhaustedError", attempts: 1, events: [] });
      expect(iter307.cause).toMatch(/^TypeError: .*cannot follow a 307 redirect .*its body is a stream, sent once/);
      expect(pathsOf(hitsOf(rt, "iter307"))).toEqual(["POST /redir"]);
      expect(iter303).toMatchObject({ status: 200, attempts: 1 });
      const hops = hitsOf(rt, "iter303");
      expect(pathsOf(hops)).toEqual(["POST /redir", "GET /echo"]);
      expect(hops[1]?.bytes.length).toBe(0);
      expect(iter503).toMatchObject({ status: 503, attempts: 1, events: [] });
      expect(hitsOf(rt, "iter503")).toHaveLength(1);
    },
    TIMEOUT,
  );

  it.skipIf(!HAVE[rt])(
    "a failing init stream is a counted failure of 1 attempt; a Request stream failing past the limit counts for nothing",
    async () => {
      const run = await runOf(rt, "bodies", BODIES);
      expect(run.out.initStream).toMatchObject({
        error: "RetryExhaustedError",
        attempts: 1,
        failures: 1,
        errorRate: 1,
      });
      expect(run.out.initStream.totals).toEqual({ calls: 1, failures: 1 });
      for (const o of [run.out.late, run.out.lateChain]) {
        expect(o).toMatchObject({ error: "TypeError", failures: 0, errorRate: 0 });
        expect(o.totals).toEqual({ calls: 0, failures: 0 });
      }
      // The runtime's own fetch: Node's cause is the error, Deno's a plain Error copy, Bun rejects with the error.
      expect(run.out.plainLate).toEqual(
        rt === "bun"
          ? { error: "RangeError", isTheError: true, causeOf: { isTheError: false, name: undefined, tag: null } }
          : {
              error: "TypeError",
              isTheError: false,
              causeOf:
                rt === "deno"
                  ? { isTheError: false, name: "Error", tag: null }
                  : { isTheError: true, name: "RangeError", tag: "mine" },
            },
      );
      // The spare never asked.
      expect(alt.hits.filter((h) => tagOf(h) === `${rt}-latechain`)).toHaveLength(0);
    },
    TIMEOUT,
  );

  const expectTheCause = async (): Promise<void> => {
    const run = await runOf(rt, "bodies", BODIES);
    for (const o of [run.out.late, run.out.lateChain]) {
      expect(o.error).toBe("TypeError");
      expect(o.causeOf).toEqual({ isTheError: true, name: "RangeError", tag: "mine" });
    }
  };
  const title = "a Request stream failing past maxReplayBytes rejects with a TypeError whose cause is that error";
  it.skipIf(!HAVE[rt])(`${rt}: ${title} (plain call and chain)`, expectTheCause, TIMEOUT);

  it.skipIf(!HAVE[rt])(
    "a string body's content-type is the platform's on a 503 retry, a chain's next endpoint, a rewrite and ky's retry",
    async () => {
      const run = await runOf(rt, "bodies", BODIES);
      expect(run.out.ctRetry).toMatchObject({ status: 200, attempts: 2 });
      expect(run.out.ctChain).toMatchObject({ status: 200, attempts: 2 });
      expect(run.out.ctRewrite).toMatchObject({ status: 200, attempts: 1 });
      expect(run.out.ctKy).toMatchObject({ status: 200, attempts: 2 });
      const want = rt === "bun" ? undefined : "text/plain;charset=UTF-8";
      for (const tag of ["ctretry", "ctchain", "ctrewrite", "ctky"]) {
        const hits = hitsOf(rt, tag);
        expect(hits.length).toBe(tag === "ctrewrite" ? 1 : 2);
        for (const hit of hits) expect([tag, hit.headers["content-type"]]).toEqual([tag, want]);
      }
      expect(pathsOf(hitsOf(rt, "ctchain"))).toEqual(["PUT /503", "PUT /echo"]);
      expect(hitsOf(rt, "ctrewrite")[0]?.body).toBe('{"steps":30}');
    },
    TIMEOUT,
  );

  it.skipIf(!HAVE[rt])(
    "ky keepalive over maxReplayBytes: read whole and rewritten in Node and Deno, chunked and unrewritten in Bun",
    async () => {
      const run = await runOf(rt, "bodies", BODIES);
      expect(run.out.kyKeepalive).toMatchObject({ status: 200, attempts: 1 });
      const [hit] = hitsOf(rt, "kykeep");
      const steps = (JSON.parse(hit?.body ?? "{}") as { steps?: number }).steps;
      expect({
        length: hit?.headers["content-length"],
        chunked: hit?.headers["transfer-encoding"],
        steps,
      }).toEqual(
        rt === "bun"
          ? { length: undefined, chunked: "chunked", steps: 50 }
          : { length: String(hit?.bytes.length), chunked: undefined, steps: 30 },
      );
    },
    TIMEOUT,
  );
});

// ---------------------------------------------------------------------------
// 3. require() on Node 22, and the export conditions each runtime picks
// ---------------------------------------------------------------------------

const REQUIRE = `
const P = "@storycore/resilient-fetch";
const m = require(P);
const f = require(P + "/fallback");
const pj = require(P + "/package.json");
(async () => {
  const i = await import(P);
  const fi = await import(P + "/fallback");
  const out = {
    tag: Object.prototype.toString.call(m),
    sameNamespace: m === i,
    sameFallback: f === fi,
    hasDefault: "default" in m,
    resolved: require.resolve(P),
    name: pj.name,
  };
  const r = await m.createResilience({ retry: false }).fetch(process.argv[2] + "/echo?c=node-require");
  out.status = r.status;
  out.attempts = m.getResilienceInfo(r).attempts;
  console.log(JSON.stringify(out));
})();
`;

const CONDITION = `
import { createResilience } from "@storycore/resilient-fetch";
const out = { resolved: import.meta.resolve("@storycore/resilient-fetch").replace(/^file:\\/\\//, "") };
try { createResilience({ redirects: "library" }); out.library = "taken"; } catch (e) { out.library = e.constructor.name; }
console.log(JSON.stringify(out));
`;

describe("README: require() on Node 22 and the conditions that get the full build", () => {
  it("CommonJS require() gives the very module namespace import gives, with no warning, and it calls", async () => {
    const file = join(project, "require.cjs");
    writeFileSync(file, REQUIRE);
    const run = await spawnRun(process.execPath, [file, api.base]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.out).toEqual({
      tag: "[object Module]",
      sameNamespace: true,
      sameFallback: true,
      hasDefault: false,
      resolved: resolve(ROOT, "dist/index.js"),
      name: "@storycore/resilient-fetch",
      status: 200,
      attempts: 1,
    });
    expect(hitsOf("node", "require")).toHaveLength(1);
  }, 30_000);

  it("Node, Deno and Bun resolve the root to dist/index.js by default and under workerd and worker", async () => {
    const file = join(project, "condition.mjs");
    writeFileSync(file, CONDITION);
    const seenBy: Record<string, Report> = {};
    for (const rt of RUNTIMES.filter((r) => HAVE[r])) {
      for (const condition of ["", "workerd", "worker"]) {
        const flag = condition ? [`--conditions=${condition}`] : [];
        const run =
          rt === "node"
            ? await spawnRun(process.execPath, [...flag, file])
            : rt === "deno"
              ? await spawnRun(resolve(BIN, "deno"), ["run", "-A", ...flag, file])
              : await spawnRun(resolve(BIN, "bun"), [...flag, file]);
        expect(run.code).toBe(0);
        seenBy[`${rt} ${condition || "default"}`] = run.out;
      }
    }
    for (const [who, out] of Object.entries(seenBy))
      expect([who, out]).toEqual([who, { resolved: resolve(ROOT, "dist/index.js"), library: "taken" }]);
  }, 90_000);
});
