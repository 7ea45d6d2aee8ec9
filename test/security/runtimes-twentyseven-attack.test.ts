/**
 * Outside-in attack on where the library runs and on its testing kit.
 * Docs: docs/runtimes.md (every sentence: the conformance checks "in every runtime it claims", the table's
 * Node / Deno / Bun rows, "imported by its name", "exits on its own"); README.md ("It runs in browsers,
 * Cloudflare Workers, Node, Deno and Bun", "CommonJS code can `require()` it on Node ≥ 22.12", "Node, Deno,
 * Bun and Workers … get the full build", the browser build "without … the redirect follower … the platform
 * error codes", the "Where it runs" table); the runtime-specific sentences they lead to in docs/retry.md
 * ("Retry events name a failure the way people do, from the platform's error codes where the runtime exposes
 * them (undici's and Bun's codes, Deno's and workerd's messages): `connection refused`, `connection reset`,
 * …, `TLS failure` …"; Idempotency: a POST "is sent again … when it never reached the server (connection
 * refused, DNS or TLS failure, …)"; Redirects: "Outside browsers (Node, Deno, Bun, workerd) the library
 * follows … itself", "only the cross-origin allowlist is sent", "307/308 replay method and body", "a
 * redirect's `Referrer-Policy` rules the hops after it (where a referrer is sent at all)", "the browser
 * build … refuses `redirects: \"library\"` with a `ConfigError`"); docs/testing.md (every sentence; new here:
 * the kit's real-timer waits under vitest's fake timers with MSW 3, "Without a `clock` option the layer
 * reads `Date.now()` as it is, so vitest's fake timers and `vi.setSystemTime` set its time", "a streamed body
 * its reader cancels stops waiting for its next chunk, on any clock", an abort ending a `latency` wait).
 * How: the BUILT package (`npm run build`; built here when dist/ is missing), imported by its name from a
 * throw-away project under the OS temp dir whose node_modules links to this worktree, in Node 22
 * (process.execPath), Deno and Bun (node_modules/.bin/deno, node_modules/.bin/bun), each its own short
 * process, as test/runtimes/matrix.test.ts spawns them; node:http servers on 127.0.0.1 (one reached as
 * `https://` to make a TLS handshake fail, one port opened and closed for a refused connection); in this
 * process the root and `./testing` entries from src with MSW 3's `setupServer` (msw/node, through test/helpers/msw.ts) and vitest's fake
 * timers, and a `setTimeout` wrapper that counts only the timers set from src/ (undici's and MSW's own are
 * left out).
 * Paths: plain call (GET, POST without a key), retries on refused / reset / failed-handshake connections,
 * a followed 307 and 302 from a `Request` input carrying credentials to another origin, a redirect naming a
 * `Referrer-Policy`, the browser build's options, `require()` of every entry, fake-timer MSW runs of `status`
 * with `retryAfter`, `latency`, `stream` and `hang` through the layer and plain `fetch`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: both fixed in code: rustls's words for a peer that speaks no TLS read as a TLS failure, and each hop's referrer worked out under the redirect's policy before it is sent):
 * 1. docs/retry.md "Retry events name a failure the way people do, from the platform's error codes where
 *    the runtime exposes them (undici's and Bun's codes, Deno's and workerd's messages): `connection
 *    refused`, `connection reset`, `DNS lookup failed`, `TLS failure`, …" with its Idempotency section (a POST
 *    without a key "is sent again … when it never reached the server (connection refused, DNS or TLS
 *    failure, …)"). Observed in Deno 2.9 only: `https://` to a server that does not speak TLS fails the
 *    handshake with "client error (Connect): received corrupt message of type InvalidContentType"; the retry
 *    event says `network error` and a keyless POST is not sent again. Node (ERR_SSL_WRONG_VERSION_NUMBER) and
 *    Bun (EPROTO, "The TLS handshake failed") name it `TLS failure` and re-send the POST. Cause:
 *    src/http/send/failure-reason.ts reads Deno's TLS failures from its messages by the words
 *    certificate/tls/ssl/handshake only; rustls's "received corrupt message" (and the "(Connect)" phase
 *    Deno names) match none, so it falls to `network error`, notSent false.
 * 2. docs/retry.md (Redirects) "Everything else is the Fetch standard's: … a redirect's `Referrer-Policy`
 *    rules the hops after it (where a referrer is sent at all)". Observed in Node 22: a call with a
 *    `referrer` meets a 302 carrying `Referrer-Policy: no-referrer`; the hop after it still carries
 *    `Referer: http://127.0.0.1:<port>/` (the Fetch standard sends none under `no-referrer`). Cause:
 *    src/http/send/follow-redirects.ts works out only the referrer the hop that answered carried
 *    (`sentReferrer(…, hop.url)`) and hands the redirect's policy to the transport as `referrerPolicy`;
 *    undici sends the origin under `no-referrer` (plain `fetch(url, { referrer, referrerPolicy:
 *    "no-referrer" })` does the same), so the library's own follower inherits undici's mistake. Deno and
 *    Bun send no `Referer` at all.
 *
 * Held (plain `it`):
 * - Node, Deno and Bun each import the package by its name (package.json `exports`, no import map) and get
 *   the full build (`redirects: "library"`); a retry event names `connection refused` (and the keyless POST
 *   is re-sent) and `connection reset` (the keyless POST is not) in all three.
 * - Node and Bun name a failed TLS handshake `TLS failure` and re-send a keyless POST (Bun no longer re-sends it
 *   since the forty-ninth session: its `EPROTO` comes after the request went too).
 * - Deno and Bun follow a 307 from a `Request` input (POST, body, `Authorization`, `x-api-key`) to another
 *   origin: method and body replayed, both credentials dropped, the event names them, `redirected: true`;
 *   a 302 after a POST turns into a GET without a body.
 * - Node: the default policy trims a referrer to its origin on a cross-origin hop.
 * - The browser build, loaded in Node, refuses `redirects: "library"` with a ConfigError, defaults to
 *   `platform`, and names a refused connection no more than `network error` (a keyless POST not re-sent).
 * - Node 22 `require()`s every entry of the package (ES modules only).
 * - Under `vi.useFakeTimers()` with MSW 3 and no `clock`: a 503 with `retryAfter: 1` is retried at exactly
 *   1 000 ms of fake time; `latency(500, …)` answers at 500 ms of fake time and an abort mid-wait ends the
 *   request with no kit timer left; a `stream` with an interval or a pending break, cancelled by its
 *   reader, leaves no kit timer; a `hang()` under `timeout.attempt` ends as a TimeoutError with no library
 *   timer left; `vi.setSystemTime` moves an open breaker to its probe.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createResilience } from "../../src/index.ts";
import { hang, json, latency, recordEvents, sequence, status, stream, upstream } from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");
type Runtime = "node" | "deno" | "bun";

// ---------------------------------------------------------------------------
// Local servers (127.0.0.1) for the spawned runtimes and for this process
// ---------------------------------------------------------------------------

type Route = (req: IncomingMessage, res: ServerResponse, body: string, url: URL) => void;

async function listen(route: Route): Promise<{ server: Server; base: string; port: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => route(req, res, Buffer.concat(chunks).toString("utf8"), new URL(req.url ?? "/", "http://x")));
  });
  // A TLS ClientHello is no HTTP: node's own answer (a plain-text 400) is what the `https://` probes read.
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}`, port };
}

const echo: Route = (req, res, body) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ method: req.method, body, headers: req.headers }));
};

const mainRoute: Route = (req, res, body, url) => {
  if (url.pathname === "/reset") return void req.socket.destroy();
  if (url.pathname === "/to") {
    const headers: Record<string, string> = { location: url.searchParams.get("l") ?? "/" };
    const policy = url.searchParams.get("p");
    if (policy) headers["referrer-policy"] = policy;
    res.writeHead(Number(url.searchParams.get("s") ?? 302), headers);
    return void res.end("moved");
  }
  echo(req, res, body, url);
};

let main: Awaited<ReturnType<typeof listen>>;
let alt: Awaited<ReturnType<typeof listen>>;
let deadPort = 0;
let project = "";
const reports = new Map<Runtime, Promise<Report>>();

interface Outcome {
  outcome: string | number;
  reasons: string[];
}
interface Report {
  build: string;
  refusedPost: Outcome;
  resetGet: Outcome;
  resetPost: Outcome;
  tlsGet: Outcome;
  tlsPost: Outcome;
  cross307: {
    method: string;
    body: string;
    authorization: string | null;
    apiKey: string | null;
    redirected: boolean;
    dropped: string[];
  };
  post302: { method: string; body: string };
}

/** One child, run in each runtime: the package imported by its name, as a user's project would. */
const CHILD = `
import { createResilience } from "@storycore/resilient-fetch";
const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const { main, alt, dead, tls } = JSON.parse(args[0]);
const out = { build: createResilience().debugInfo().options.redirects };
const reasons = async (url, init) => {
  const r = createResilience({ retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" } });
  const seen = [];
  r.on("retry", (e) => seen.push(e.reason));
  let outcome;
  try { const res = await r.fetch(url, init); outcome = res.status; await res.text(); } catch (e) { outcome = e.name; }
  return { outcome, reasons: seen };
};
out.refusedPost = await reasons("http://127.0.0.1:" + dead + "/x", { method: "POST", body: "a" });
out.resetGet = await reasons(main + "/reset");
out.resetPost = await reasons(main + "/reset", { method: "POST", body: "a" });
out.tlsGet = await reasons(tls + "/x");
out.tlsPost = await reasons(tls + "/x", { method: "POST", body: "a" });
{
  const r = createResilience({ retry: false });
  const dropped = [];
  r.on("redirect", (e) => dropped.push(...e.dropped));
  const req = new Request(main + "/to?s=307&l=" + encodeURIComponent(alt + "/echo"), {
    method: "POST", body: "payload",
    headers: { authorization: "Bearer caller-secret", "x-api-key": "k-caller", "content-type": "text/plain" },
  });
  const res = await r.fetch(req);
  const seen = await res.json();
  out.cross307 = { method: seen.method, body: seen.body, authorization: seen.headers.authorization ?? null,
    apiKey: seen.headers["x-api-key"] ?? null, redirected: res.redirected, dropped };
}
{
  const r = createResilience({ retry: false });
  const res = await r.fetch(main + "/to?s=302&l=/echo", { method: "POST", body: "payload" });
  const seen = await res.json();
  out.post302 = { method: seen.method, body: seen.body };
}
console.log(JSON.stringify(out));
`;

/** The browser build, loaded in Node by its file (what a bundler picks for pages). */
const BROWSER_CHILD = `
const lib = await import(process.argv[2]);
const out = {};
try { lib.createResilience({ redirects: "library" }); out.library = "taken"; } catch (e) { out.library = e.name; }
out.defaultMode = lib.createResilience().debugInfo().options.redirects;
const r = lib.createResilience({ retry: { maxAttempts: 2, initialDelay: 1 } });
const seen = [];
r.on("retry", (e) => seen.push(e.reason));
try { await r.fetch("http://127.0.0.1:" + process.argv[3] + "/x", { method: "POST", body: "a" }); } catch (e) { out.post = e.name; }
out.reasons = seen;
console.log(JSON.stringify(out));
`;

const REQUIRE_CHILD = `
const out = {};
for (const e of ["", "/fallback", "/degradation", "/policies", "/ky", "/cloudflare", "/testing", "/testing/clock"]) {
  try { out[e || "."] = typeof require("@storycore/resilient-fetch" + e); } catch (error) { out[e || "."] = String(error); }
}
console.log(JSON.stringify(out));
`;

/** Runs a short child process and reads the last line it printed as JSON. */
function runChild(command: string, args: string[], cwd: string): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(kill);
      try {
        resolvePromise(JSON.parse(out.trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`${command} printed no report (exit ${code}): ${out}\n${err}`));
      }
    });
  });
}

const RUNTIME_COMMAND: Record<Runtime, (script: string) => [string, string[]]> = {
  node: (script) => [process.execPath, [script]],
  deno: (script) => [resolve(BIN, "deno"), ["run", "-A", "--no-lock", script]],
  bun: (script) => [resolve(BIN, "bun"), [script]],
};

function report(runtime: Runtime): Promise<Report> {
  const cached = reports.get(runtime);
  if (cached) return cached;
  const [command, args] = RUNTIME_COMMAND[runtime](join(project, "child.mjs"));
  const config = JSON.stringify({
    main: main.base,
    alt: alt.base,
    dead: deadPort,
    tls: main.base.replace("http:", "https:"),
  });
  const started = runChild(command, [...args, config], project) as Promise<Report>;
  reports.set(runtime, started);
  return started;
}

beforeAll(async () => {
  if (!existsSync(resolve(ROOT, "dist/index.js")) || !existsSync(resolve(ROOT, "dist/browser/index.js"))) {
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "ignore", timeout: 170_000 });
  }
  main = await listen(mainRoute);
  alt = await listen(echo);
  const closed = await listen(echo);
  deadPort = closed.port;
  await new Promise((r) => closed.server.close(r));
  project = mkdtempSync(join(tmpdir(), "rt27-"));
  mkdirSync(join(project, "node_modules/@storycore"), { recursive: true });
  symlinkSync(ROOT, join(project, "node_modules/@storycore/resilient-fetch"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(project, "child.mjs"), CHILD);
  writeFileSync(join(project, "browser-child.mjs"), BROWSER_CHILD);
  writeFileSync(join(project, "require-child.cjs"), REQUIRE_CHILD);
  // The three runtimes start together: each is its own short process.
  for (const runtime of ["node", "deno", "bun"] as const) report(runtime).catch(() => {});
}, 180_000);

afterAll(async () => {
  for (const s of [main?.server, alt?.server]) {
    s?.closeAllConnections();
    await new Promise((r) => (s ? s.close(r) : r(undefined)));
  }
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("Node, Deno and Bun: the built package imported by its name", () => {
  it("each gets the full build (the library follows redirects)", async () => {
    for (const runtime of ["node", "deno", "bun"] as const)
      expect((await report(runtime)).build, runtime).toBe("library");
  }, 30_000);

  it("each names a refused and a reset connection; the refused keyless POST is sent again, the reset one not", async () => {
    for (const runtime of ["node", "deno", "bun"] as const) {
      const r = await report(runtime);
      expect(r.refusedPost.reasons, runtime).toEqual(["connection refused"]);
      expect(r.resetGet.reasons, runtime).toEqual(["connection reset"]);
      expect(r.resetPost.reasons, runtime).toEqual([]);
    }
  }, 30_000);

  // Since the forty-ninth session Bun's `EPROTO`, which it gives for any TLS error, one after the request went
  // too (the securitymd-fortynine run), is "may have been sent": Bun no longer sends the keyless POST again.
  it("Node and Bun name a failed TLS handshake `TLS failure`; Node sends the keyless POST again, Bun does not", async () => {
    for (const runtime of ["node", "bun"] as const) {
      const r = await report(runtime);
      expect(r.tlsGet.reasons, runtime).toEqual(["TLS failure"]);
      expect(r.tlsPost.reasons, runtime).toEqual(runtime === "node" ? ["TLS failure"] : []);
    }
  }, 30_000);

  // docs/retry.md: "(undici's and Bun's codes, Deno's and workerd's messages): … `TLS failure`"; a POST is
  // sent again when "it never reached the server (connection refused, DNS or TLS failure, …)".
  it("Deno names a failed TLS handshake `TLS failure` and sends the keyless POST again", async () => {
    const r = await report("deno");
    expect(r.tlsGet.reasons).toEqual(["TLS failure"]);
    expect(r.tlsPost.reasons).toEqual(["TLS failure"]);
  }, 30_000);

  it("Deno and Bun follow a 307 from a Request input to another origin without its credentials", async () => {
    for (const runtime of ["deno", "bun"] as const) {
      const r = await report(runtime);
      expect(r.cross307, runtime).toEqual({
        method: "POST",
        body: "payload",
        authorization: null,
        apiKey: null,
        redirected: true,
        dropped: ["authorization", "x-api-key"],
      });
      expect(r.post302, runtime).toEqual({ method: "GET", body: "" });
    }
  }, 30_000);
});

describe("README: the browser build, and require() on Node 22", () => {
  it("the browser build refuses redirects: library, follows none itself and names no platform code", async () => {
    const file = pathToFileURL(resolve(ROOT, "dist/browser/index.js")).href;
    const out = (await runChild(
      process.execPath,
      [join(project, "browser-child.mjs"), file, String(deadPort)],
      project,
    )) as { library: string; defaultMode: string; post: string; reasons: string[] };
    expect(out).toEqual({ library: "ConfigError", defaultMode: "platform", post: "RetryExhaustedError", reasons: [] });
  }, 30_000);

  it("CommonJS code require()s every entry on Node 22", async () => {
    const out = await runChild(process.execPath, [join(project, "require-child.cjs")], project);
    expect(Object.values(out as Record<string, string>)).toEqual(Array(8).fill("object"));
  }, 30_000);
});

describe("Node: a redirect's Referrer-Policy", () => {
  /** The Referer the hop after `main`'s redirect (Referrer-Policy `policy`, if any) carried to `target`. */
  async function refererAfter(policy: string | undefined, target: string): Promise<string | null> {
    const r = createResilience({ retry: false });
    const to = `${main.base}/to?l=${encodeURIComponent(target)}${policy ? `&p=${policy}` : ""}`;
    const res = await r.fetch(to, { referrer: `${main.base}/page?q=1` });
    const seen = (await res.json()) as { headers: Record<string, string | undefined> };
    return seen.headers.referer ?? null;
  }

  it("control: with no policy, a cross-origin hop carries the referrer's origin only", async () => {
    expect(await refererAfter(undefined, `${alt.base}/echo`)).toBe(`${main.base}/`);
  });

  // docs/retry.md: "a redirect's `Referrer-Policy` rules the hops after it (where a referrer is sent at all)".
  it("a redirect saying Referrer-Policy: no-referrer leaves the next hop without a Referer", async () => {
    expect(await refererAfter("no-referrer", `${main.base}/echo`)).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// docs/testing.md: the kit under vitest's fake timers, with MSW 3 in Node
// ---------------------------------------------------------------------------

describe("the kit and the layer under vi.useFakeTimers() with MSW 3", () => {
  const server = useMswServer();
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Live timers set from src/ (the library's and the kit's), not undici's or MSW's own. */
  function srcTimers(): Map<unknown, number> {
    const live = new Map<unknown, number>();
    const set = globalThis.setTimeout;
    const clear = globalThis.clearTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const fromSrc = /\/src\//.test(new Error().stack ?? "");
      const handle = set(() => {
        live.delete(handle);
        fn();
      }, ms);
      if (fromSrc) live.set(handle, ms ?? 0);
      return handle;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
      live.delete(handle);
      clear(handle);
    }) as typeof clearTimeout;
    return live;
  }

  it("a 503 with retryAfter: 1 is retried after exactly 1 000 ms of fake time, nothing left", async () => {
    vi.useFakeTimers();
    const live = srcTimers();
    const api = upstream("GET", "https://gen.example/ra", sequence([status(503, { retryAfter: 1 }), json({ ok: 1 })]));
    server.use(api.handler);
    const resilience = createResilience();
    const recorder = recordEvents(resilience);
    const call = resilience.fetch("https://gen.example/ra");
    await vi.advanceTimersByTimeAsync(999);
    expect(api.count()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const res = await call;
    expect(res.status).toBe(200);
    expect(api.count()).toBe(2);
    recorder.expectRetries(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect([...live.values()]).toEqual([]);
  });

  it("latency() waits on fake time; an abort mid-wait ends the request and clears the wait", async () => {
    vi.useFakeTimers();
    const live = srcTimers();
    server.use(upstream("GET", "https://gen.example/lat", latency(500, json({ ok: 1 }))).handler);
    const t0 = Date.now();
    const first = fetch("https://gen.example/lat");
    await vi.advanceTimersByTimeAsync(500);
    expect((await first).status).toBe(200);
    expect(Date.now() - t0).toBe(500);
    const controller = new AbortController();
    const second = fetch("https://gen.example/lat", { signal: controller.signal }).catch((e: Error) => e.name);
    await vi.advanceTimersByTimeAsync(100);
    expect([...live.values()]).toEqual([500]);
    controller.abort();
    expect(await second).toBe("AbortError");
    await vi.advanceTimersByTimeAsync(0);
    expect([...live.values()]).toEqual([]);
  });

  it("a streamed body its reader cancels stops waiting for its next chunk or its break", async () => {
    vi.useFakeTimers();
    const live = srcTimers();
    server.use(
      upstream("GET", "https://gen.example/s1", stream(["a", "b", "c"], { interval: 100 })).handler,
      upstream("GET", "https://gen.example/s2", stream(["a", "b", "c"], { breakAfter: 1, interval: 500 })).handler,
    );
    for (const [path, wait] of [
      ["s1", 100],
      ["s2", 500],
    ] as const) {
      const pending = fetch(`https://gen.example/${path}`);
      await vi.advanceTimersByTimeAsync(0);
      const reader = (await pending).body?.getReader();
      expect(new TextDecoder().decode((await reader?.read())?.value)).toBe("a");
      expect([...live.values()], path).toEqual([wait]);
      await reader?.cancel();
      await vi.advanceTimersByTimeAsync(0);
      expect([...live.values()], path).toEqual([]);
    }
  });

  it("hang() under timeout.attempt ends as a TimeoutError with no library timer left", async () => {
    vi.useFakeTimers();
    const live = srcTimers();
    server.use(upstream("GET", "https://gen.example/hang", hang()).handler);
    const resilience = createResilience({ retry: false, timeout: { attempt: 1_000 } });
    const call = resilience.fetch("https://gen.example/hang").catch((e: Error) => e.name);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await call).toBe("TimeoutError");
    expect([...live.values()]).toEqual([]);
  });

  it("vi.setSystemTime moves an open breaker (no clock option) to its probe", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.parse("2026-12-01T00:00:00Z"));
    const api = upstream("GET", "https://gen.example/down", status(503));
    server.use(api.handler);
    const resilience = createResilience({ retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });
    for (let i = 0; i < 2; i++) await (await resilience.fetch("https://gen.example/down")).text();
    await expect(resilience.fetch("https://gen.example/down")).rejects.toThrow(/open/i);
    vi.setSystemTime(Date.now() + 9_999);
    await expect(resilience.fetch("https://gen.example/down")).rejects.toThrow(/open/i);
    vi.setSystemTime(Date.now() + 1);
    await (await resilience.fetch("https://gen.example/down")).text();
    expect(api.count()).toBe(3);
  });
});
