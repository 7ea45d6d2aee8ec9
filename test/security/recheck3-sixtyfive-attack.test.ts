/**
 * Outside-in attack on the three newest fixes (CHANGELOG Unreleased, Fixed, top three): a layer whose `fetch` reads
 * the global fetch, installed there; an endpoint's own header "only as it was set"; the ky client naming a refused
 * method or `init` field from every level `a string`, the longest value first.
 *
 * Docs:
 * - README.md: "(a `fetch` you pass is called as it is: one that reads the global fetch at call time reaches whatever
 *   layer is installed there; this layer, handed back the request it is handing your `fetch`, sends it to the fetch
 *   beneath it), unless a wrapper installed over it calls it back after an `await` or with a URL it changes anew each
 *   time (a request id in the query): then the layer runs again on each such call and never sends".
 * - docs/options.md, `timeout.total`: "ms for the whole call up to its response headers, waits included".
 * - CHANGELOG (Fixed): "a request handed back to it goes to the fetch beneath it, once, as one a wrapper installed
 *   over it hands back does. Another layer installed there still runs."
 * - docs/fallback.md: "An endpoint's own `headers`, and a header the `transform` writes with `headers.set` on the
 *   request it is given, are the endpoint's and are sent, whatever the value (…), as long as it is sent as it was
 *   set: one the transform then `append`s to, or gives another value in a `Headers` of its own, is judged as any
 *   other header below."
 * - SECURITY.md, Limits, "A key given as an option's value": "… the runtime's own for an `init` field or method its
 *   `Request` refuses, `mode: "sk_live_…"`, on the ky client's calls too) … text that is no plain word … is named
 *   `a string`". docs/retry.md (ky): "a value that is no plain word is named `a string` there too". CHANGELOG: "The
 *   fields are now read as ky built its `Request` with them … the longest values are now named first."
 *
 * How: root `createResilience`, ./fallback `fallback`, ./ky `createClient` (call, `extend`, `create`, `init` hook),
 * ./cloudflare `resilientProxy` (its `fetch` called as a plain function); two node:http servers on 127.0.0.1
 * (httpUpstream), requests counted per path. Everything where a layer is installed as the global fetch runs in a
 * child Node process (async `execFile`, the server stays in this process), `--stack-size=100` where it recurses.
 *
 * Paths: plain call, `Request` input (POST retried), chain, hedge, library-followed redirects, two layers, a token
 * fetch inside the passed `fetch`, an MSW-like wrapper, the ky client, `resilientProxy` (upstream route and chain
 * route) for the global fetch; plain, `Request`, hedge, ky and proxy chains for headers; ky call, `createClient`,
 * `extend` (object and function), `create`, `init` hook for naming.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-fifth session all three were
 * answered by the docs: README.md now says such a loop has no end of its own, what it does (a starved event loop,
 * a stack overflow on `timeout.total`'s abort, rejections no one handles) and how to avoid it, so the tests assert
 * that):
 * 1. options.md `timeout.total` "ms for the whole call". Observed: a passed `fetch` that awaits a settled promise
 *    before reading the global fetch (`async (i, o) => { await token; return globalThis.fetch(i, o) }`, the layer
 *    installed there) runs the pipeline again in microtasks only: the event loop is starved, `timeout.total: 200`
 *    (and any caller's timer) never fires, the call never settles, the heap grows by ~150 MB/s until the process
 *    dies. README admits "runs again … never sends" for a wrapper; not a process hang. Test "defect 1: …".
 * 2. Same, `timeout.total`. Observed: with a real wait in that `fetch` (a 1 ms timer) the levels pile up until the
 *    total timeout fires, whose abort then runs through every level's linked signal at once and overflows the stack:
 *    an uncaught `RangeError` (thrown from Node's `AbortSignal` dispatch) kills the process (default stack with
 *    `total: 3000`, `--stack-size=100` with 200). A caller's own abort ends the same loop cleanly. Test "defect 2".
 * 3. README "then the layer runs again on each such call and never sends" (a URL changed anew each time). Observed:
 *    with a caller's `signal` (one that never aborts), the call rejects with a `RetryExhaustedError` nesting "gave up
 *    after 1 attempt" per level once the stack gives out (16 s of CPU on the default stack), and ~25 other
 *    `RetryExhaustedError`s are left unhandled: a plain Node process exits 1 on the first
 *    (`--unhandled-rejections=throw`). Without a signal none is left. Test "defect 3: …".
 *
 * Held (plain `it`):
 * - A layer installed over itself with `fetch: (i, o) => globalThis.fetch(i, o)` sends each retry once (3 hits, 3
 *   calls), each redirect hop once (302 → 307 → 200), a chain's two endpoints and a hedge's two requests once each;
 *   a `Request` POST retried sends its body each time; a sync token fetch in that `fetch` goes through the pipeline
 *   and sends once; an MSW-like wrapper over it (a new `Request`) sees the call twice, the server once; another
 *   layer installed there (with or without such a `fetch`) runs its pipeline (its retries, its `request` event); the
 *   ky client and `resilientProxy` with such a `fetch` reach the installed layer (its retries). With a `fetch` that
 *   awaits a timer, a caller's abort ends the endless loop (nothing sent, nothing unhandled); with one that changes
 *   the URL and no caller signal, the call rejects when the stack gives out, nothing unhandled.
 * - Endpoint headers, on plain, `Request`, hedge, ky and proxy chains: untouched, `set` (any value, the caller's key
 *   too), `set` back after an `append`, a `Headers` of its own with the same value, an own value that holds the key:
 *   sent; `append` of the key (any case of the name), delete then `append`, a `Headers` of its own holding the key
 *   (`x-goog-api-key`, `authorization: Bearer <key>`): the header stays home; `append` of a non-secret goes.
 * - ky: a method in lower case (ky upper-cases it) at call, `createClient`, `extend`, `init` hook level; fields
 *   spread over levels with a shorter non-plain value inside the key: `a string`, no part of the key. Nothing of a
 *   call that threw (bad `mode`, a throwing `init` hook, a throwing `beforeRequest`) shows in the next call's error.
 *
 * Docs-silent (not pinned):
 * - A transform returning `headers` as a plain object or an array (not a `Headers`) fails that endpoint; the chain
 *   answers with the first endpoint's 503, without a word in the docs on the shape. In the sixty-fifth session
 *   docs/fallback.md was written in ("its `headers` a `Headers` … a plain object or an array there is a `TypeError`,
 *   that endpoint's failure"), which the tests that pin the refusal's message hold.
 * - ky: a non-plain value that is also text of the platform's message (`mode: ":"`) is replaced there too, as the
 *   shown-values helper says ("a one-character value may take text around it too").
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

/** The child: a layer installed as the global fetch, given a `fetch` that reads it. One JSON line per run. */
const CHILD = [
  "const [root, base, mode] = process.argv.slice(2);",
  'const { createResilience } = await import(root + "/src/index.ts");',
  'const { fallback } = await import(root + "/src/fallback/index.ts");',
  'const { createClient } = await import(root + "/src/ky/index.ts");',
  'const { resilientProxy } = await import(root + "/src/cloudflare/index.ts");',
  "let unhandled = 0;",
  'process.on("unhandledRejection", () => { unhandled++; });',
  "const real = globalThis.fetch;",
  "let calls = 0; let n = 0;",
  "const passing = (i, o) => { calls++; return globalThis.fetch(i, o); };",
  "const reading = (i, o) => globalThis.fetch(i, o);",
  'const settle = (p) => p.then(async (r) => r.status + " " + (await r.text()), (e) => "rejected " + e?.name);',
  'const FAST = { maxAttempts: 3, initialDelay: 1, maxDelay: 1, jitter: "none", retryOn: { methods: ["GET", "POST"] } };',
  "const install = (opts) => { globalThis.fetch = real; const l = createResilience(opts); globalThis.fetch = l.fetch; return l; };",
  "const out = {};",
  "const one = async (name, run) => { calls = 0; const got = await run(); out[name] = { out: got, calls }; globalThis.fetch = real; };",
  'const chain = (hedge) => fallback([{ name: "c", ...(hedge ? { hedge: { delay: 5 } } : {}), endpoints: [{ name: "p", url: base + (hedge ? "/hp" : "/p") }, { name: "q", url: base + (hedge ? "/hq" : "/q") }] }]);',
  'if (mode === "paths") {',
  '  await one("retries", () => settle(install({ retry: FAST, fetch: passing }).fetch(base + "/r")));',
  '  await one("redirects", () => settle(install({ retry: false, redirects: "library", fetch: passing }).fetch(base + "/a")));',
  '  await one("chain", () => settle(install({ retry: false, fetch: passing, fallback: chain(false) }).fetch(base + "/p")));',
  '  await one("hedge", () => settle(install({ retry: false, fetch: passing, fallback: chain(true) }).fetch(base + "/hp")));',
  '  await one("post", () => settle(install({ retry: FAST, fetch: passing }).fetch(new Request(base + "/flaky-post", { method: "POST", body: "hi" }))));',
  '  await one("token", async () => { let tok; const l = install({ retry: false, fetch: (i, o) => { calls++; if (!String(i?.url ?? i).endsWith("/token")) tok = globalThis.fetch(base + "/token"); return globalThis.fetch(i, o); } }); return [await settle(l.fetch(base + "/t")), await settle(tok)].join(" "); });',
  '  await one("msw", async () => { install({ retry: false, fetch: passing }); const under = globalThis.fetch; let wrapped = 0; globalThis.fetch = (i, o) => { wrapped++; return under(new Request(i, o)); }; return (await settle(globalThis.fetch(base + "/w"))) + " wrapped " + wrapped; });',
  '  for (const own of [undefined, reading]) await one(own ? "two-passing" : "two", async () => { const inst = install({ retry: FAST, ...(own ? { fetch: own } : {}) }); let heard = 0; inst.on("request", () => heard++); const l = createResilience({ retry: false, fetch: passing }); return (await settle(l.fetch(base + (own ? "/r3" : "/r2")))) + " heard " + heard; });',
  '  await one("ky", () => { install({ retry: FAST, fetch: passing }); return createClient({ resilience: { retry: false, fetch: reading } }).post(base + "/flaky-ky", { json: { a: 1 } }).text(); });',
  '  await one("proxy", async () => { install({ retry: FAST, fetch: passing }); const p = resilientProxy({ routes: [{ path: "/v1", upstream: base + "/flaky-proxy" }], resilience: { retry: false, fetch: reading } }); return settle(p.fetch(new Request("http://w.example/v1/x", { method: "POST", body: "hi" }), {}, { waitUntil() {}, passThroughOnException() {} })); });',
  "} else {",
  "  const opts = { retry: false };",
  '  if (mode === "micro") opts.fetch = async (i, o) => { calls++; await null; return globalThis.fetch(i, o); };',
  '  if (mode.startsWith("macro")) opts.fetch = async (i, o) => { calls++; await new Promise((r) => setTimeout(r, 1)); return globalThis.fetch(i, o); };',
  '  if (mode.startsWith("url")) opts.fetch = (i, o) => { calls++; return globalThis.fetch(String(i?.url ?? i).split("?")[0] + "?rid=" + n++, o); };',
  '  if (mode !== "macro-abort" && !mode.startsWith("url")) opts.timeout = { total: 200 };',
  "  const l = install(opts);",
  '  const signal = mode === "macro-abort" ? AbortSignal.timeout(300) : mode === "url" ? new AbortController().signal : undefined;',
  '  await one(mode, () => l.fetch(base + "/loop", { signal }).then((r) => "status " + r.status, (e) => "rejected " + e?.name));',
  "  await new Promise((r) => setTimeout(r, 20));",
  "}",
  "console.log(JSON.stringify({ ...out, unhandled }));",
].join("\n");

let dir = "";
let script = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "recheck3-"));
  script = join(dir, "child.ts");
  writeFileSync(script, CHILD);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Ran = Record<string, { out: string; calls: number }> & { unhandled: number };
/** Runs the child in `mode`; rejects when it dies or outlives `timeout`. */
async function child(mode: string, flags: string[], timeout: number): Promise<Ran> {
  const ran = await promisify(execFile)(process.execPath, [...flags, script, ROOT, a.base, mode], {
    encoding: "utf8",
    timeout,
    killSignal: "SIGKILL",
  });
  return JSON.parse(ran.stdout.trim().split("\n").at(-1) ?? "") as Ran;
}
const countBy = (hits: Hit[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const hit of hits) counts[hit.path] = (counts[hit.path] ?? 0) + 1;
  return counts;
};
/** The paths the child uses: 503s, a redirect, a slow hedge primary, endpoints that fail twice then answer. */
function routes(): void {
  const failed = new Map<string, number>();
  a.on((hit) => {
    const { path, res } = hit;
    if (["/r", "/r2", "/r3", "/p"].includes(path)) return void res.writeHead(503).end("busy");
    if (path === "/a") return void res.writeHead(302, { location: "/b" }).end();
    if (path === "/b") return void res.writeHead(307, { location: "/c" }).end();
    if (path === "/hp") return void setTimeout(() => res.end("p"), 150).unref();
    if (path.startsWith("/flaky")) {
      failed.set(path, (failed.get(path) ?? 0) + 1);
      return void ((failed.get(path) ?? 0) < 3 ? res.writeHead(503).end("busy") : res.end("done"));
    }
    res.end({ "/c": "end", "/q": "q", "/hq": "q", "/token": "T", "/t": "data" }[path] ?? "ok");
  });
}

describe("README: a layer whose fetch reads the global fetch, installed there (child process, small stack)", () => {
  it("every path sends each request once; another layer installed there runs its pipeline", async () => {
    routes();
    const ran = await child("paths", ["--stack-size=100"], 20_000);
    expect(ran).toEqual({
      retries: { out: "503 busy", calls: 3 },
      redirects: { out: "200 end", calls: 3 },
      chain: { out: "200 q", calls: 2 },
      hedge: { out: "200 q", calls: 2 },
      post: { out: "200 done", calls: 3 },
      token: { out: "200 data 200 T", calls: 2 },
      msw: { out: "200 ok wrapped 2", calls: 1 },
      two: { out: "503 busy heard 1", calls: 1 },
      "two-passing": { out: "503 busy heard 1", calls: 1 },
      ky: { out: "done", calls: 3 },
      proxy: { out: "200 done", calls: 3 },
      unhandled: 0,
    });
    expect(countBy(a.hits)).toEqual({
      "/r": 3,
      "/a": 1,
      "/b": 1,
      "/c": 1,
      "/p": 1,
      "/q": 1,
      "/hp": 1,
      "/hq": 1,
      "/flaky-post": 3,
      "/t": 1,
      "/token": 1,
      "/w": 1,
      "/r2": 3,
      "/r3": 3,
      "/flaky-ky": 3,
      "/flaky-proxy/x": 3,
    });
    expect(
      a.hits.filter((hit) => hit.method === "POST").every((hit) => hit.body === "hi" || hit.body === '{"a":1}'),
    ).toBe(true);
  });

  it("a fetch that awaits a timer before reading it: a caller's abort ends the loop, nothing sent, nothing left", async () => {
    const ran = await child("macro-abort", ["--stack-size=100"], 10_000);
    expect(ran).toEqual({ "macro-abort": { out: "rejected TimeoutError", calls: expect.any(Number) }, unhandled: 0 });
    expect(ran["macro-abort"]?.calls).toBeGreaterThan(10);
    expect(a.hits).toEqual([]);
  });

  it("defect 1, answered by the docs: a fetch that awaits a settled promise first starves the loop: no timeout fires, the child never reports", async () => {
    // README: "awaiting only promises it starves the event loop (no timer fires, `timeout.total` included, and the
    // process hangs)": the child, killed at its time bound or out of memory, prints no result.
    await expect(child("micro", ["--max-old-space-size=256"], 4_000)).rejects.toBeDefined();
    expect(a.hits).toEqual([]);
  });

  it("defect 2, answered by the docs: a fetch that awaits a timer first: timeout.total's abort overflows the stack, the child crashes", async () => {
    // README: "or `timeout.total`'s abort overflowing the stack and crashing the process".
    const crashed = await child("macro", ["--stack-size=100"], 10_000).then(
      () => undefined,
      (error: { stderr?: string }) => error,
    );
    expect(crashed?.stderr).toContain("RangeError");
    expect(a.hits).toEqual([]);
  });

  it("a fetch that changes the URL each time, no caller signal: rejects once the stack gives out, nothing left", async () => {
    const ran = await child("url-bare", ["--stack-size=100"], 20_000);
    expect(ran).toEqual({
      "url-bare": { out: "rejected RetryExhaustedError", calls: expect.any(Number) },
      unhandled: 0,
    });
    expect(a.hits).toEqual([]);
  });

  it("defect 3, answered by the docs: the same with a caller's signal: the call rejects beside rejections no one handles", async () => {
    // README: "it ends when the stack gives out, the call rejecting beside rejections no one handles".
    const ran = await child("url", ["--stack-size=100"], 20_000);
    expect(ran.url?.out).toBe("rejected RetryExhaustedError");
    expect(a.hits).toEqual([]);
    expect(ran.unhandled).toBeGreaterThan(0);
  });
});

const KEY = "sk-ant-SECRET-42";
type View = { url: string; method: string; headers: Headers };
type Via = "plain" | "request" | "hedge" | "ky" | "proxy";
const ctx = { waitUntil() {}, passThroughOnException() {} };
/** What `b` (another origin) received from the chain's second endpoint, its `headers` given, after `a`'s 503. */
async function sentToB(via: Via, transform: (req: View) => unknown, headers: Record<string, string>) {
  b.reset();
  a.on((hit) => hit.res.writeHead(503).end());
  const chain = {
    name: "h",
    ...(via === "hedge" ? { hedge: { delay: 1 } } : {}),
    endpoints: [
      { name: "p", url: `${a.base}/p` },
      { name: "q", url: `${b.base}/q`, transform: transform as never, headers },
    ],
  };
  const caller = { headers: { "x-api-key": KEY } };
  let status: number;
  if (via === "ky") {
    const api = createClient({ resilience: { retry: false, fallback: fallback([chain]) } });
    status = (await api.get(`${a.base}/p`, caller)).status;
  } else if (via === "proxy") {
    const proxy = resilientProxy({ routes: [{ path: "/v1", chain }], resilience: { retry: false } });
    status = (await proxy.fetch(new Request("http://w.example/v1/p", caller), {}, ctx as never)).status;
  } else {
    const layer = createResilience({ retry: false, fallback: fallback([chain]) });
    const input = via === "request" ? new Request(`${a.base}/p`, caller) : `${a.base}/p`;
    status = (await layer.fetch(input, via === "request" ? undefined : caller)).status;
  }
  expect(status).toBe(200);
  const got = b.hits[0]?.headers ?? {};
  return [got["x-meta"], got["x-goog-api-key"], got.authorization, got["x-api-key"]].filter((v) => v !== undefined);
}
const edit =
  (change: (headers: Headers) => void) =>
  (req: View): View => {
    change(req.headers);
    return req;
  };
const meta = { "x-meta": "mine" };
const VIAS: Via[] = ["plain", "request", "hedge", "ky", "proxy"];

describe("fallback.md: an endpoint's own header is its own only as it was set", () => {
  it.each(VIAS)("%s: untouched, set (any value), a Headers of its own with the same value: sent", async (via) => {
    expect(await sentToB(via, (req) => req, meta)).toEqual(["mine"]);
    expect(await sentToB(via, (req) => req, { "x-meta": KEY })).toEqual([KEY]);
    expect(
      await sentToB(
        via,
        edit((h) => h.set("x-meta", KEY)),
        meta,
      ),
    ).toEqual([KEY]);
    expect(
      await sentToB(
        via,
        edit((h) => h.set("x-meta", "mine")),
        meta,
      ),
    ).toEqual(["mine"]);
    expect(await sentToB(via, (req) => ({ ...req, headers: new Headers(meta) }), meta)).toEqual(["mine"]);
    const setBack = edit((h) => {
      h.append("x-meta", KEY);
      h.set("x-meta", "mine");
    });
    expect(await sentToB(via, setBack, meta)).toEqual(["mine"]);
    expect(
      await sentToB(
        via,
        edit((h) => h.append("x-meta", "extra")),
        meta,
      ),
    ).toEqual(["mine, extra"]);
  });

  it.each(VIAS)("%s: the caller's key appended, or in a Headers of the transform's own: stays home", async (via) => {
    const cases: Array<[(req: View) => unknown, Record<string, string>]> = [
      [edit((h) => h.append("x-meta", KEY)), meta],
      [edit((h) => h.append("x-meta", h.get("x-api-key") ?? "")), meta],
      [edit((h) => h.append("X-META", KEY)), { "X-Meta": "mine" }],
      [
        edit((h) => {
          h.delete("x-meta");
          h.append("x-meta", KEY);
        }),
        meta,
      ],
      [(req) => ({ ...req, headers: new Headers({ "x-meta": KEY }) }), meta],
      [(req) => ({ ...req, headers: new Headers({ "x-goog-api-key": KEY }) }), { "x-goog-api-key": "placeholder" }],
      [(req) => ({ ...req, headers: new Headers({ authorization: `Bearer ${KEY}` }) }), { authorization: "Bearer x" }],
    ];
    for (const [transform, headers] of cases) expect(await sentToB(via, transform, headers)).toEqual([]);
  });
});

const K = "sk/live+SECRET==";
/** What a ky call did: thrown at once, rejected, or resolved; its message (and causes'). */
async function kyText(call: () => Promise<Response>): Promise<string> {
  const text = (e: unknown): string => {
    const parts: string[] = [];
    for (let at = e as { message?: unknown; cause?: unknown } | undefined, i = 0; at && i < 6; i++) {
      parts.push(String(at.message));
      at = at.cause as typeof at;
    }
    return parts.join(" | ");
  };
  try {
    return await call().then(
      (res) => `status ${res.status}`,
      (error: unknown) => text(error),
    );
  } catch (error) {
    return text(error);
  }
}
const base = { resilience: { retry: false } } as const;
const MODE =
  "Request constructor: a string is not an accepted type. Expected one of navigate, same-origin, no-cors, cors.";
const CACHE =
  "Request constructor: a string is not an accepted type. Expected one of default, no-store, reload, no-cache, force-cache, only-if-cached.";

describe("SECURITY Limits: through ky, a refused value from any level is named `a string`, longest first", () => {
  it("a method in lower case (ky upper-cases it), at call, createClient, extend and init-hook level", async () => {
    const lower = "sk/live+secret==";
    const api = createClient(base);
    const hook = (options: Record<string, unknown>) => {
      options.method = lower;
    };
    const texts = [
      await kyText(() => api(`${a.base}/k`, { method: lower })),
      await kyText(() => createClient({ ...base, method: lower } as never)(`${a.base}/k`)),
      await kyText(() => api.extend({ method: lower })(`${a.base}/k`)),
      await kyText(() => createClient({ ...base, hooks: { init: [hook] } } as never)(`${a.base}/k`)),
    ];
    expect(texts).toEqual(Array(4).fill("'a string' is not a valid HTTP method."));
    expect(a.hits).toEqual([]);
  });

  it("values over levels, a shorter non-plain one inside the key: no part of the key is left", async () => {
    const api = createClient(base);
    const setMode = (options: Record<string, unknown>) => {
      options.mode = K;
    };
    const setReferrer = (options: Record<string, unknown>) => {
      options.referrer = "sk!live+SECRET";
    };
    const texts = [
      await kyText(() =>
        createClient({ ...base, referrer: "sk!live+SECRET" } as never).extend({ cache: "!" } as never)(`${a.base}/k`, {
          method: "!",
        }),
      ),
      await kyText(() =>
        createClient({ ...base, cache: "/" } as never).extend({ mode: K } as never)(`${a.base}/k`, { referrer: "k/" }),
      ),
      await kyText(() => createClient({ ...base, cache: "+", hooks: { init: [setMode] } } as never)(`${a.base}/k`)),
      await kyText(() =>
        createClient({ ...base, method: "!", hooks: { init: [setReferrer] } } as never)(`${a.base}/k`),
      ),
      await kyText(() =>
        api.create({ credentials: "/" } as never).extend(() => ({ mode: [K] }) as never)(`${a.base}/k`),
      ),
    ];
    for (const text of texts) {
      expect(text).toContain("a string");
      expect(text).not.toMatch(/live|SECRET|sk[/!]/);
    }
    expect(a.hits).toEqual([]);
  });

  it("nothing of a call that threw shows in the next call's error", async () => {
    const api = createClient(base);
    const throwing = () => {
      throw new Error("hook failed");
    };
    expect(await kyText(() => api.get(`${a.base}/k`, { cache: "/" } as never))).toBe(CACHE);
    // A bad mode, a throwing init hook and a throwing beforeRequest hook, each followed by a call of its own.
    expect(await kyText(() => api.get(`${a.base}/k`, { mode: K } as never))).toBe(MODE);
    expect(await kyText(() => api.get(`${a.base}/k`, { cache: "/" } as never))).toBe(CACHE);
    expect(await kyText(() => api.get(`${a.base}/k`, { mode: "c/", hooks: { init: [throwing] } } as never))).toBe(
      "hook failed",
    );
    expect(await kyText(() => api.get(`${a.base}/k`, { referrer: "x/y" }))).toBe(
      'Referrer "a string" is not a valid URL.',
    );
    const before = { credentials: "/", hooks: { beforeRequest: [throwing] } };
    expect(await kyText(() => api.get(`${a.base}/k`, before as never))).toContain("a string is not an accepted type");
    expect(await kyText(() => api.get(`${a.base}/k`))).toBe("status 200");
    expect(await kyText(() => api(`${a.base}/k`, { method: "sk live" }))).toBe("'sk live' is not a valid HTTP method.");
    expect(a.hits.map((hit) => hit.path)).toEqual(["/k"]);
  });
});
