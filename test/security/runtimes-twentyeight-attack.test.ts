/**
 * Outside-in attack on this session's fixes as they behave in Deno and Bun (Node as the reference where it helps).
 * Docs: CHANGELOG.md (the first "### Fixed" entries); docs/retry.md "Redirects" ("Each request's referrer, the
 * first's and every later hop's, is worked out by the library, as the Referrer Policy standard determines it,
 * and handed to the transport as it is (with `referrerPolicy: \"unsafe-url\"`, which a transport of your own
 * sees)", "the referrer each hop carries is where the next starts (a redirect can only trim it further) and a
 * redirect's `Referrer-Policy` rules the hops after it (where a `referrer` is sent at all …)"); docs/runtimes.md
 * (the Deno and Bun rows; it says nothing of the `Referer` those runtimes send); docs/retry.md "ky" and
 * docs/options.md (the ky client's options "kept as read"); docs/cloudflare.md (the health path: "`HEAD` the
 * same without the body; the path is the proxy's own, so no route gets it, and any other method is answered 405
 * with `Allow: GET, HEAD`", escapes in any case).
 * How: short scripts, one per check, spawned in Deno (`deno run -A --no-lock`) and Bun (and Node 22 with
 * `--experimental-strip-types` for the referrer), importing the src entries (`src/index.ts`, `src/ky/index.ts`,
 * `src/cloudflare/index.ts`) by their file URL, each printing one JSON line; node:http servers on 127.0.0.1
 * started here record what reached them (path, `Referer`, headers, body).
 * Paths: a followed 302 to another origin and to the same origin (default policy, `unsafe-url`, a redirect's
 * `Referrer-Policy: no-referrer`), a `Request` input carrying a referrer, plain `fetch` with a referrer; a
 * transport's own Response, a frozen Response (plain call and the last hop of a redirect), an object shaped
 * like a Response without `blob()`; ky's `createClient` with a non-enumerable `headers` option, a
 * non-enumerable header inside `headers` and a non-enumerable `json` field, each against ky alone; the
 * proxy's health path under every method (lower-case `head` too), with and without a token, and with
 * percent-escapes in the other case.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - Deno and Bun: the library hands its transport each request's referrer as the standard determines it (the
 *   first request the caller's full URL, a cross-origin hop the origin under the default policy, the full URL
 *   under `unsafe-url`, none after `Referrer-Policy: no-referrer`), each with `referrerPolicy: "unsafe-url"`.
 * - Deno's and Bun's own fetch send no `Referer` at all (plain `fetch` with `unsafe-url` included), so the
 *   server never sees one through the library either: never a wider one than handed. Node's fetch sends what
 *   it is handed, hop by hop. docs/retry.md covers this only by "where a `referrer` is sent at all";
 *   docs/runtimes.md does not say it (a gap in the guide, no broken promise).
 * - Deno's `Request` keeps its `referrer` and the library carries it (origin on the cross-origin hop); Bun's
 *   `Request` drops it at construction (`referrer` is ""), so nothing is handed on: no referrer invented.
 * - Each runtime's own Response from a transport is served (status, body, resilience info); a last hop that
 *   takes no property (`Object.preventExtensions`) is served as a copy with `redirected: true` and the hop's
 *   URL, its info kept aside; in Bun a frozen one too, on a plain call and as a last hop. An object with status,
 *   headers, body, clone/text/json/arrayBuffer but no `blob()` is the layer's network error, never served.
 * - Deno: a frozen Response cannot be read by anyone (Deno's Response writes lazy symbol fields on first read,
 *   so `headers`, `body`, `text()` and `clone()` throw "Cannot assign to read only property"); the layer fails
 *   such an answer as a network error, as docs/retry.md says of one "whose `headers` property throws". So the
 *   CHANGELOG line "A frozen `Response` from a transport is served" holds in Node and Bun only (no guide
 *   sentence promises it; noted, not pinned).
 * - ky's client sends a non-enumerable `headers` option as ky alone does, leaves a non-enumerable header
 *   inside `headers` and a non-enumerable `json` field out as ky alone does, in both runtimes.
 * - The proxy's health path under Deno's and Bun's `Request`: `GET` 200 with JSON, `HEAD` (and `head`) 200
 *   with the same headers and no body, `POST`/`PUT`/`DELETE`/`OPTIONS`/`patch` 405 with `Allow: GET, HEAD`,
 *   none of them reaching the catch-all route's upstream (no `authorization` leaked); with a token, a
 *   `HEAD` without it is 401 and with it 200; a health path written `%C3%A9` answers `%c3%a9`.
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
const KY = pathToFileURL(resolve(ROOT, "node_modules/ky/distribution/index.js")).href;
type Runtime = "node" | "deno" | "bun";
const TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// Servers on 127.0.0.1: what reached them, by the `c` query tag
// ---------------------------------------------------------------------------

interface Seen {
  port: number;
  path: string;
  method: string;
  referer: string | null;
  authorization: string | null;
}
const seen: Seen[] = [];

async function listen(): Promise<{ server: Server; base: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const port = (server.address() as AddressInfo).port;
      seen.push({
        port,
        path: `${url.pathname}${url.search}`,
        method: req.method ?? "",
        referer: req.headers.referer ?? null,
        authorization: req.headers.authorization ?? null,
      });
      if (url.pathname === "/to") {
        const headers: Record<string, string> = { location: url.searchParams.get("l") ?? "/" };
        const policy = url.searchParams.get("p");
        if (policy) headers["referrer-policy"] = policy;
        res.writeHead(302, headers);
        return void res.end("moved");
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let main: Awaited<ReturnType<typeof listen>>;
let alt: Awaited<ReturnType<typeof listen>>;
let dir = "";

beforeAll(async () => {
  main = await listen();
  alt = await listen();
  dir = mkdtempSync(join(tmpdir(), "rt28-"));
  // Deno resolves the src files' bare imports through a map (as test/runtimes does), to the packages installed here.
  const imports = { "zod/mini": pathToFileURL(resolve(ROOT, "node_modules/zod/mini/index.js")).href, ky: KY };
  writeFileSync(join(dir, "import-map.json"), JSON.stringify({ imports }));
});
afterAll(async () => {
  for (const { server } of [main, alt]) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const seenWith = (tag: string) => seen.filter((s) => new URL(s.path, "http://x").searchParams.get("c") === tag);

// ---------------------------------------------------------------------------
// The scripts (each prints one JSON line)
// ---------------------------------------------------------------------------

const ARGS = `const [main, alt, rt] = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const enc = encodeURIComponent;
const out = {};`;

const SCRIPTS = {
  referrer: `import { createResilience } from "${SRC("index.ts")}";
${ARGS}
const handed = [];
const transport = (input, init) => {
  handed.push({ url: typeof input === "string" ? input : String(input.url ?? input),
    referrer: init?.referrer ?? null, policy: init?.referrerPolicy ?? null });
  return fetch(input, init);
};
const r = createResilience({ retry: false, fetch: transport });
const page = main + "/page?q=1";
const run = async (name, input, init) => {
  handed.length = 0;
  const res = await r.fetch(input, init);
  await res.text();
  out[name] = { handed: [...handed], redirected: res.redirected };
};
await run("default", main + "/to?c=" + rt + "-rdef&l=" + enc(alt + "/echo?c=" + rt + "-rdef"), { referrer: page });
await run("unsafe", main + "/to?c=" + rt + "-runs&l=" + enc(alt + "/echo?c=" + rt + "-runs"), { referrer: page, referrerPolicy: "unsafe-url" });
await run("noReferrer", main + "/to?c=" + rt + "-rnr&p=no-referrer&l=" + enc(main + "/echo?c=" + rt + "-rnr"), { referrer: page });
await run("request", new Request(main + "/to?c=" + rt + "-rreq&l=" + enc(alt + "/echo?c=" + rt + "-rreq"), { referrer: page }));
await run("requestUndefined", new Request(main + "/to?c=" + rt + "-rundef&l=" + enc(main + "/echo?c=" + rt + "-rundef"),
  { referrer: page, referrerPolicy: "origin" }), { referrer: undefined, referrerPolicy: undefined });
await run("spaced", main + "/to?c=" + rt + "-rsp&l=" + enc(alt + "/echo?c=" + rt + "-rsp"), { referrer: " \thttp://127.0.0.1:1/p?q " });
out.requestReferrer = new Request(main + "/", { referrer: page }).referrer;
await (await fetch(main + "/echo?c=" + rt + "-rplain", { referrer: page, referrerPolicy: "unsafe-url" })).text();
console.log(JSON.stringify(out));
`,
  answers: `import { createResilience, getResilienceInfo } from "${SRC("index.ts")}";
${ARGS}
const serve = async (answers) => {
  let n = 0;
  const r = createResilience({ retry: false, fetch: async () => answers[n++] });
  try {
    const res = await r.fetch(main + "/a");
    return { status: res.status, text: await res.text(), redirected: res.redirected, url: res.url,
      attempts: getResilienceInfo(res)?.attempts ?? null, calls: n };
  } catch (e) { return { error: e.name, message: String(e.message), calls: n }; }
};
out.own = await serve([new Response("own", { headers: { "x-own": "1" } })]);
out.ctor = (await fetch(main + "/echo?c=actor")).constructor === Response;
out.real = await serve([await fetch(main + "/echo?c=areal")]);
out.frozen = await serve([Object.freeze(new Response("frozen"))]);
out.frozenHop = await serve([new Response(null, { status: 302, headers: { location: "/b" } }), Object.freeze(new Response("hop"))]);
out.lockedHop = await serve([new Response(null, { status: 302, headers: { location: "/b" } }), Object.preventExtensions(new Response("hop"))]);
const frozen = Object.freeze(new Response("f"));
try { frozen.headers; out.frozenReadable = true; } catch { out.frozenReadable = false; }
const r = new Response("x");
out.noBlob = await serve([{ status: 200, statusText: "", ok: true, headers: new Headers(), body: r.body,
  clone: () => r.clone(), text: () => r.text(), json: () => r.json(), arrayBuffer: () => r.arrayBuffer() }]);
console.log(JSON.stringify(out));
`,
  ky: `import { createClient } from "${SRC("ky/index.ts")}";
import ky from "${KY}";
${ARGS}
const hidden = (key, value, into = {}) => Object.defineProperty(into, key, { value, enumerable: false });
const cases = {
  headersOption: () => hidden("headers", { "x-hidden": "1" }),
  innerHeader: () => ({ headers: hidden("x-inner", "1", { "x-shown": "1" }) }),
  jsonField: () => ({ method: "post", json: hidden("secret", "s", { shown: 1 }) }),
};
for (const [name, make] of Object.entries(cases)) {
  const viaClient = await createClient(make())(main + "/echo?c=ky-" + name + "-client").json();
  const viaKy = await ky.create(make())(main + "/echo?c=ky-" + name + "-ky").json();
  const pick = (seen) => ({ hidden: seen.headers["x-hidden"] ?? null, inner: seen.headers["x-inner"] ?? null,
    shown: seen.headers["x-shown"] ?? null, body: seen.body });
  out[name] = { client: pick(viaClient), ky: pick(viaKy) };
}
console.log(JSON.stringify(out));
`,
  proxy: `import { resilientProxy } from "${SRC("cloudflare/index.ts")}";
${ARGS}
const proxy = resilientProxy({ routes: [{ path: "/", upstream: main }], resilience: { retry: false } });
const escaped = resilientProxy({ routes: [{ path: "/", upstream: main }], healthPath: "/st%C3%A9tus" });
const ask = async (method, path, env = {}, headers = {}, p = proxy) => {
  const res = await p.fetch(new Request("http://worker.test" + path, { method, headers }), env, {});
  const body = await res.text();
  return { status: res.status, allow: res.headers.get("allow"), type: res.headers.get("content-type"),
    cache: res.headers.get("cache-control"), body };
};
const H = "/__resilience/health?c=health";
const auth = { authorization: "Bearer leaked-token" };
for (const method of ["GET", "HEAD", "head", "POST", "PUT", "DELETE", "OPTIONS", "patch"]) out[method] = await ask(method, H, {}, auth);
const env = { RESILIENCE_HEALTH_TOKEN: "tok" };
out.tokenNone = await ask("HEAD", H, env);
out.tokenGood = await ask("HEAD", H, env, { authorization: "Bearer tok" });
out.escaped = await ask("GET", "/st%c3%a9tus?c=health", {}, {}, escaped);
out.routed = await ask("GET", "/echo?c=proxied");
console.log(JSON.stringify(out));
`,
};
type Script = keyof typeof SCRIPTS;

const runs = new Map<string, Promise<Record<string, unknown>>>();

/** Runs one script in one runtime (once), resolving with what it printed. */
function report<T>(runtime: Runtime, script: Script): Promise<T> {
  const key = `${runtime}:${script}`;
  let pending = runs.get(key);
  if (!pending) {
    const file = join(dir, `${script}.ts`);
    writeFileSync(file, SCRIPTS[script]);
    const args = [main.base, alt.base, runtime];
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
      const kill = setTimeout(() => proc.kill("SIGKILL"), 45_000);
      proc.on("error", reject);
      proc.on("exit", (code) => {
        clearTimeout(kill);
        try {
          resolvePromise(JSON.parse(out.trim().split("\n").pop() ?? ""));
        } catch {
          reject(new Error(`${runtime} ${script} printed no report (exit ${code}): ${out}\n${err}`));
        }
      });
    });
    runs.set(key, pending);
  }
  return pending as Promise<T>;
}

// ---------------------------------------------------------------------------
// (1) The redirect follower's referrer
// ---------------------------------------------------------------------------

interface Handed {
  url: string;
  referrer: string | null;
  policy: string | null;
}
interface ReferrerReport {
  default: { handed: Handed[]; redirected: boolean };
  unsafe: { handed: Handed[]; redirected: boolean };
  noReferrer: { handed: Handed[]; redirected: boolean };
  request: { handed: Handed[]; redirected: boolean };
  requestUndefined: { handed: Handed[]; redirected: boolean };
  spaced: { handed: Handed[]; redirected: boolean };
  requestReferrer: string;
}

const refererSeen = (runtime: Runtime, tag: string) => seenWith(`${runtime}-${tag}`).map((s) => s.referer);

describe("(1) the referrer of each request of a followed redirect", () => {
  for (const runtime of ["deno", "bun", "node"] as const) {
    it(
      `${runtime}: the transport is handed the standard's referrer for the first request and each hop`,
      async () => {
        const r = await report<ReferrerReport>(runtime, "referrer");
        const page = `${main.base}/page?q=1`;
        // Default policy (strict-origin-when-cross-origin): full URL to the same origin, origin across.
        expect(r.default.handed.map((h) => [h.referrer, h.policy])).toEqual([
          [page, "unsafe-url"],
          [`${main.base}/`, "unsafe-url"],
        ]);
        expect(r.default.redirected).toBe(true);
        expect(r.unsafe.handed.map((h) => [h.referrer, h.policy])).toEqual([
          [page, "unsafe-url"],
          [page, "unsafe-url"],
        ]);
        // After `Referrer-Policy: no-referrer` the hop carries none.
        expect(r.noReferrer.handed[0]?.referrer).toBe(page);
        expect(r.noReferrer.handed[1]?.referrer ?? "").toBe("");
        // A referrer written with spaces and a tab around it is the URL fetch reads (default policy: an
        // origin of another port is another origin, so the first request and the hop carry the origin).
        expect(r.spaced.handed.map((h) => h.referrer)).toEqual(["http://127.0.0.1:1/", "http://127.0.0.1:1/"]);
      },
      TIMEOUT,
    );

    it(
      `${runtime}: what the server saw is what was handed or nothing, never wider`,
      async () => {
        const r = await report<ReferrerReport>(runtime, "referrer");
        const page = `${main.base}/page?q=1`;
        const sends = runtime === "node";
        // The runtime's own fetch, handed `unsafe-url`: Node sends it, Deno and Bun send no Referer at all.
        expect(refererSeen(runtime, "rplain")).toEqual([sends ? page : null]);
        expect(refererSeen(runtime, "rdef")).toEqual(sends ? [page, `${main.base}/`] : [null, null]);
        expect(refererSeen(runtime, "runs")).toEqual(sends ? [page, page] : [null, null]);
        expect(refererSeen(runtime, "rnr")).toEqual(sends ? [page, null] : [null, null]);
        // A `Request` input's referrer: carried where the runtime's Request keeps it (Bun's drops it).
        const kept = r.requestReferrer === page;
        expect(r.requestReferrer).toBe(runtime === "bun" ? "" : page);
        expect(r.request.handed.map((h) => h.referrer || null)).toEqual(kept ? [page, `${main.base}/`] : [null, null]);
        expect(refererSeen(runtime, "rreq")).toEqual(sends && kept ? [page, `${main.base}/`] : [null, null]);
        // `init` members that are `undefined` leave the Request's own referrer and policy (`origin`).
        expect(r.requestUndefined.handed.map((h) => h.referrer || null)).toEqual(
          kept ? [`${main.base}/`, `${main.base}/`] : [null, null],
        );
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// (2) and (3) A transport's answer: the runtime's own Response, a frozen one
// ---------------------------------------------------------------------------

interface Served {
  status?: number;
  text?: string;
  redirected?: boolean;
  url?: string;
  attempts?: number | null;
  error?: string;
  message?: string;
  calls: number;
}
interface AnswersReport {
  own: Served;
  ctor: boolean;
  real: Served;
  frozen: Served;
  frozenHop: Served;
  lockedHop: Served;
  frozenReadable: boolean;
  noBlob: Served;
}

describe("(2)(3) a transport's answer in Deno and Bun", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(
      `${runtime}: its own Response (made or fetched) is served with the layer's info`,
      async () => {
        const r = await report<AnswersReport>(runtime, "answers");
        expect(r.own).toMatchObject({ status: 200, text: "own", attempts: 1, calls: 1 });
        expect(r.ctor).toBe(true);
        expect(r.real).toMatchObject({ status: 200, attempts: 1, calls: 1 });
        expect(JSON.parse(r.real.text ?? "{}")).toHaveProperty("headers");
      },
      TIMEOUT,
    );

    it(
      `${runtime}: a frozen Response is served where it can be read, on a plain call and as a last hop`,
      async () => {
        const r = await report<AnswersReport>(runtime, "answers");
        const hop = { status: 200, text: "hop", redirected: true, url: `${main.base}/b`, attempts: 1, calls: 2 };
        // One that takes no property (its info kept aside, its redirect marks on a copy).
        expect(r.lockedHop).toMatchObject(hop);
        if (runtime === "bun") {
          expect(r.frozenReadable).toBe(true);
          expect(r.frozen).toMatchObject({ status: 200, text: "frozen", attempts: 1 });
          expect(r.frozenHop).toMatchObject(hop);
        } else {
          // Deno's Response writes its own lazy fields on first read: frozen, its `headers` and `body`
          // throw, so no one can read it, and the layer takes it as docs/retry.md says of an answer
          // "whose `headers` property throws": a network error.
          expect(r.frozenReadable).toBe(false);
          expect(r.frozen.message).toMatch(/no Response fetch would give/);
          expect(r.frozenHop.message).toMatch(/no Response fetch would give/);
        }
      },
      TIMEOUT,
    );

    it(
      `${runtime}: an object shaped like a Response without blob() is a network error`,
      async () => {
        const r = await report<AnswersReport>(runtime, "answers");
        expect(r.noBlob.status).toBeUndefined();
        expect(r.noBlob.message).toMatch(/no Response fetch would give/);
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// (4) ky's client with options defined not enumerable
// ---------------------------------------------------------------------------

interface Pick {
  hidden: string | null;
  inner: string | null;
  shown: string | null;
  body: string;
}
type KyReport = Record<"headersOption" | "innerHeader" | "jsonField", { client: Pick; ky: Pick }>;

describe("(4) ky's createClient sends hidden options as ky alone does", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(
      `${runtime}: a hidden headers option, a hidden header, a hidden json field`,
      async () => {
        const r = await report<KyReport>(runtime, "ky");
        expect(r.headersOption.ky.hidden).toBe("1");
        expect(r.headersOption.client).toEqual(r.headersOption.ky);
        expect(r.innerHeader.ky).toMatchObject({ shown: "1", inner: null });
        expect(r.innerHeader.client).toEqual(r.innerHeader.ky);
        expect(r.jsonField.ky.body).toBe('{"shown":1}');
        expect(r.jsonField.client).toEqual(r.jsonField.ky);
      },
      TIMEOUT,
    );
  }
});

// ---------------------------------------------------------------------------
// (5) resilientProxy's health path under Deno's and Bun's Request
// ---------------------------------------------------------------------------

interface Asked {
  status: number;
  allow: string | null;
  type: string | null;
  cache: string | null;
  body: string;
}
type ProxyReport = Record<string, Asked>;

describe("(5) resilientProxy's health path", () => {
  for (const runtime of ["deno", "bun"] as const) {
    it(
      `${runtime}: GET and HEAD answer, any other method is 405, none reaches the route`,
      async () => {
        const r = await report<ProxyReport>(runtime, "proxy");
        expect(r.GET).toMatchObject({ status: 200, cache: "no-store" });
        // Bun's Response.json says `;charset=utf-8`.
        expect(r.GET?.type).toMatch(/^application\/json/);
        expect(JSON.parse(r.GET?.body ?? "null")).toHaveProperty("breakers");
        for (const head of ["HEAD", "head"]) {
          expect(r[head], head).toEqual({ ...r.GET, body: "" });
        }
        for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "patch"]) {
          expect(r[method], method).toMatchObject({ status: 405, allow: "GET, HEAD" });
        }
        expect(r.tokenNone?.status).toBe(401);
        expect(r.tokenGood).toMatchObject({ status: 200, body: "" });
        expect(r.escaped?.status).toBe(200);
        expect(JSON.parse(r.escaped?.body ?? "null")).toHaveProperty("breakers");
        // The route works, and the health path never went upstream (nor its authorization).
        expect(r.routed?.status).toBe(200);
        expect(seenWith("proxied").length).toBeGreaterThan(0);
        expect(seenWith("health")).toEqual([]);
        expect(seen.filter((s) => s.authorization !== null)).toEqual([]);
      },
      TIMEOUT,
    );
  }
});
