/**
 * Outside-in attack on the opt-in entries in a real Chromium page (`./degradation`, `./fallback`, `./ky` of the
 * BROWSER build, `dist/browser`, what a bundler picks for a page): levels and rules, the level machine fed by
 * Chromium's own signals, chains across three 127.0.0.1 origins with CORS, and the ky client on a chain.
 *
 * Docs:
 * - docs/browsers-and-cors.md: "The page's build measures the body first (and again a body a degradation rewrite or a
 *   fallback `transform` made) and refuses one that alone passes 64 KiB at once with a `TypeError` that says so";
 *   "(from a `transform`, it fails that endpoint as a `transform` that throws does, and the chain moves on)"; "A
 *   fallback chain's `FallbackExhaustedError` carries no hint"; "When such a call rejects with `RetryExhaustedError`
 *   in a page and its URL is of another origin, the error's message ends with a hint".
 * - docs/degradation.md: "fetch takes U+0080 to U+00FF, … and trims spaces and tabs at either end, so `" std"`
 *   arrives as `std`"; "a query writes a lone surrogate as the URL parser does, as U+FFFD"; "to another origin (a
 *   fallback endpoint, a redirect) it goes, like the caller's own headers, only when named in `crossOriginHeaders`";
 *   "in browsers, `navigator.connection` and `navigator.deviceMemory` set a floor (slow-2g → minimal; 2g or Save-Data
 *   → low; 3g or ≤ 1 GiB → medium; …), read as the signals are, when a call settles: the first call goes at the level
 *   before it"; "memory and CPU where the runtime tells (Chromium's `performance.memory`; Node's …)"; "Stepping up
 *   needs the signals to be clearly healthy … for a whole `restoreAfter` (60 s), one level at a time".
 * - docs/fallback.md: "The rest of the path and the query are rebased onto each endpoint's `url` (an endpoint's own
 *   query, `?key=…`, stays on it …)"; "a POST without an `Idempotency-Key` goes to the next endpoint only when it
 *   surely was not processed"; "So does a 2xx that fails `validate`: … the call resolves with that answer as it is";
 *   "one whose body `validate` stopped reading … comes … as a new `Response` that pipes on the rest of its body …
 *   with the endpoint's status, headers, `url` and `redirected`, and whose headers, unlike fetch's, can be changed";
 *   "the first acceptable answer wins and the others are aborted (their upstreams see the connection closed)"; "An
 *   abort … rejects the call with the caller's reason"; "a run its caller aborted … is not counted, nor the endpoint
 *   it was waiting on"; "`order: \"adaptive\"` ranks endpoints by a decaying recent success rate"; `transform`'s
 *   `body` is "`undefined` for … bytes or a Blob labelled as neither JSON nor text (`image/png` …)".
 * - docs/retry.md (ky): "The layer's errors reach you as they are: one that ky would wrap in its `NetworkError` …
 *   comes unwrapped".
 *
 * How: the built `dist/browser` root, `./fallback`, `./degradation`, `./ky` (ky 2 through an import map) and
 * `testing/clock.js` in ONE Debian Chromium page (test/runtimes/chromium.ts) served from 127.0.0.1 (origin "page"),
 * plus two more node:http origins ("api", "api2"); each records method, path, query, preflight's requested headers,
 * key, `x-level`, `x-model`, content-type, body bytes, and whether the client cut it; query knobs choose statuses,
 * a JSON or large body, a 302, a hang, or no CORS header at all. Chromium's signals set through CDP
 * (`Network.overrideNetworkState`, `Emulation.setDataSaverOverride`): real `navigator.connection`, not a stub.
 *
 * Paths: degradation rewrite (JSON body, header rule, query rule, level header) on plain calls and a chain,
 * keepalive, the trigger machine (connection floor, Save-Data, memory, CPU, restore), chains across three origins
 * (GET, keyless text POST, keyed JSON POST), relative URL rebasing, `validate` (small and past `maxReplayBytes`,
 * after a 302), hedge (TestClock), abort from the page, adaptive order, FormData and Blob bodies with `transform`,
 * ky `createClient` on a chain and plain.
 *
 * Defects pinned: none found this session.
 *
 * Held (plain `it`):
 * - `high` turning `"quality":1` into `0.9` takes a 65,535-byte keepalive JSON past 64 KiB: refused at once, "got
 *   65537 bytes", nothing sent, no breaker counts it; at `full` the same body goes. A `transform` padding a keepalive
 *   body past 64 KiB fails its endpoint; the next gets the caller's `{"x":1}`.
 * - Header rule: `" std"` arrives `std`, `café` as the Latin-1 byte; level header with it. Query rule: a lone surrogate
 *   goes as `%EF%BF%BD`, the other parameter in place.
 * - Level header to a chain's other origin: absent (and not asked for at the preflight) without `crossOriginHeaders`,
 *   present and asked for with it; the rewritten body reaches both origins.
 * - Chromium's real slow-2g → minimal, 3g → medium, Save-Data → low; the first call goes at `full`, the next at the
 *   floor. After the network recovers the level climbs one rung at a time, the first after ≥ 60 s of healthy calls.
 * - `performance.memory` is read (a 0.0001 threshold steps down once per second of calls); `cpuUsage: 0` never trips.
 * - Three origins, the middle refusing CORS: a GET moves on (3 failures on that host's breaker), served by the third;
 *   a keyless text POST that reached the middle ends the chain with `FallbackExhaustedError` ("stopped after "b",
 *   which may have processed the request …", "Failed to fetch", no hint), the third never sees it; a keyed JSON POST
 *   refused at the preflight reaches the third once, with the caller's key.
 * - A relative URL is rebased onto another origin's `…/v2/?key=k`: `/v2/x/y`, `key`, `q` and the rest kept.
 * - `validate`: a keyed POST moves on, a keyless one resolves with the failing answer. Past `maxReplayBytes` after a
 *   302: a new `Response` with status 200, the redirect target as `url`, `redirected: true`, settable headers, the
 *   whole 5,000-byte body (the unexposed `x-extra` invisible, as to any page code).
 * - A hedge (TestClock, 50 ms) serves from the other origin; the hung loser's upstream sees its connection closed;
 *   both counted. An abort from the page rejects with the very reason object; the hung request is cut; not counted.
 * - `order: "adaptive"`: an endpoint CORS keeps refusing drops below the one that serves.
 * - `transform` gets `undefined` for a FormData and for an image/png Blob; the image bytes go unread as image/png.
 * - ky on a chain: a GET served by the third origin, `endpoint` "b"; a keyless JSON POST rejects with the chain's
 *   `FallbackExhaustedError` (no hint); off a chain, the layer's error with the CORS hint, not ky's `NetworkError`.
 *
 * Docs-silent (not pinned):
 * - A `FormData` goes with a new multipart boundary on every send (each retry, and the next endpoint), its
 *   `content-type` matching: the bytes differ from send to send, where fallback.md says "the body is replayed" and
 *   "an unchanged body is sent as the caller's bytes" (the caller never had bytes; Chromium frames each fetch anew).
 * - The floor lifted: no level moves at once; the first rung back comes at the call after 60 s of healthy calls
 *   (the 90 s call here, calls every 30 s), not the 60 s one.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import type { Browser, CDPSession, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchChromium } from "../runtimes/chromium.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILT = ["dist/browser/index.js", "dist/browser/ky/index.js", "dist/browser/testing/clock.js"].every((f) =>
  existsSync(resolve(ROOT, f)),
);
const SKIP = BUILT ? "" : " (SKIPPED: run `npm run build` first)";

const HTML = `<!doctype html>
<meta charset="utf-8" />
<script type="importmap">{ "imports": { "ky": "/node_modules/ky/distribution/index.js" } }</script>
<script type="module">
  import * as root from "/dist/browser/index.js";
  import * as chains from "/dist/browser/fallback/index.js";
  import * as levels from "/dist/browser/degradation/index.js";
  import * as kyEntry from "/dist/browser/ky/index.js";
  import { TestClock } from "/dist/browser/testing/clock.js";
  window.lib = { ...root, ...chains, ...levels, ...kyEntry, TestClock };
</script>`;

type Name = "page" | "api" | "api2";
interface Seen {
  api: Name;
  method: string;
  path: string;
  search: string;
  acrh: string | undefined;
  key: string | undefined;
  level: string | undefined;
  model: string | undefined;
  type: string | undefined;
  body: string;
  cut: boolean;
}
const seen: Seen[] = [];
const counters = new Map<string, number>();

/**
 * Knobs in the query, `k_<name>` before `k`: `seq` (statuses), `nocors` (no CORS header on any answer, preflight
 * included), `hang`, `json` (a JSON body), `big` (a JSON body of that many bytes, with an unexposed `x-extra`),
 * `loc` (a 302 there).
 */
function recorder(name: Name) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    const q = url.searchParams;
    const knob = (k: string) => q.get(`${k}_${name}`) ?? q.get(k);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {}
    if (url.pathname === "/favicon.ico") return void res.writeHead(404).end();
    const h = req.headers;
    const entry: Seen = {
      api: name,
      method: req.method ?? "",
      path: url.pathname,
      search: url.search,
      acrh: h["access-control-request-headers"],
      key: h["idempotency-key"] as string | undefined,
      level: h["x-level"] as string | undefined,
      model: h["x-model"] as string | undefined,
      type: h["content-type"],
      body: Buffer.concat(chunks).toString("latin1"),
      cut: false,
    };
    seen.push(entry);
    res.on("close", () => {
      if (!res.writableFinished) entry.cut = true;
    });
    const cors: Record<string, string> = knob("nocors") === null ? { "access-control-allow-origin": "*" } : {};
    if (req.method === "OPTIONS" && h["access-control-request-method"]) {
      return void res
        .writeHead(204, { ...cors, "access-control-allow-methods": "*", "access-control-allow-headers": "*" })
        .end();
    }
    if (knob("hang") !== null) return;
    const loc = knob("loc");
    if (loc) return void res.writeHead(302, { ...cors, location: loc }).end();
    const counter = `${name}${url.pathname}${req.method}`;
    const n = (counters.get(counter) ?? 0) + 1;
    counters.set(counter, n);
    const seq = (knob("seq") ?? "200").split(",");
    const status = Number(seq[Math.min(n, seq.length) - 1]);
    const big = Number(knob("big") ?? 0);
    if (big > 0) {
      const text = `{"ok":false,"pad":"${"p".repeat(big - 21)}"}`;
      return void res.writeHead(status, { ...cors, "content-type": "application/json", "x-extra": "1" }).end(text);
    }
    const json = knob("json");
    if (json) return void res.writeHead(status, { ...cors, "content-type": "application/json" }).end(json);
    res.writeHead(status, { ...cors, "content-type": "text/plain" }).end(`${name} ${status}`);
  };
}

let browser: Browser | undefined;
let page: Page;
let cdp: CDPSession;
let servers: Server[] = [];
const O: Record<Name, string> = { page: "", api: "", api2: "" };
const pageErrors: string[] = [];

async function serveFile(path: string, res: ServerResponse): Promise<void> {
  const file = resolve(ROOT, `.${path}`);
  if (!file.startsWith(resolve(ROOT, "dist/browser")) && !file.startsWith(resolve(ROOT, "node_modules/ky/")))
    return void res.writeHead(404).end();
  try {
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
}

beforeAll(async () => {
  if (!BUILT) return;
  const onPage = recorder("page");
  servers = [
    createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0] as string;
      if (path === "/") return void res.writeHead(200, { "content-type": "text/html" }).end(HTML);
      if (path.startsWith("/dist/") || path.startsWith("/node_modules/")) return void serveFile(path, res);
      void onPage(req, res);
    }),
    createServer((req, res) => void recorder("api")(req, res)),
    createServer((req, res) => void recorder("api2")(req, res)),
  ];
  const origins = await Promise.all(
    servers.map(
      (s) =>
        new Promise<string>((done) =>
          s.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
        ),
    ),
  );
  [O.page, O.api, O.api2] = origins as [string, string, string];
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  cdp = await page.context().newCDPSession(page);
  await page.goto(`${O.page}/`);
  await page.waitForFunction(() => "lib" in window, undefined, { timeout: 10_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
  expect(pageErrors).toEqual([]);
});

beforeEach(() => {
  seen.length = 0;
  counters.clear();
});
afterEach(() => {
  for (const server of servers) server.closeAllConnections();
});

/** In scope: `lib`, `settle`, `failuresOf`, `FAST`, `chain(name, ...[origin, path, extra])`, `page`, `api`, `api2`. */
const PRELUDE = `
  const lib = window.lib;
  const settle = (p) => p.then(
    async (r) => ({ ok: true, status: r.status, text: await r.text(), info: lib.getResilienceInfo(r) ?? null }),
    (e) => ({ ok: false, name: String(e && e.name), message: String(e && e.message) }));
  const failuresOf = (r) => Object.fromEntries(Object.entries(r.health().breakers).map(([k, v]) => [k.split(":")[1] ?? k, v.failureCount]));
  const FAST = { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" };
  const ep = (o, path, extra) => ({ name: "", url: o + path, ...extra });
  const chain = (extra, ...eps) => lib.fallback([{ name: "c", ...extra, endpoints: eps.map((e, i) => ({ ...e, name: "abc"[i] })) }]);
`;

function inPage<T>(body: string): Promise<T> {
  return page.evaluate(
    async ({ code, o }) =>
      new Function("page", "api", "api2", `return (async () => { ${code} })();`)(o.page, o.api, o.api2),
    { code: `${PRELUDE}\n${body}`, o: O },
  ) as Promise<T>;
}

const at = (api: Name, method?: string) => seen.filter((s) => s.api === api && (!method || s.method === method));
const HINT = "probably refused by the browser's CORS rules";
const portOf = (origin: string) => new URL(origin).port;

describe.skipIf(!BUILT)(`degradation in the page's build${SKIP}`, () => {
  it("a rewrite that takes a keepalive body past 64 KiB is refused at once; at `full` the same body goes", async () => {
    const out = await inPage<{
      high: { ok: boolean; name?: string; message?: string };
      full: unknown;
      failures: unknown;
    }>(
      `const r = lib.createResilience({ retry: FAST, degradation: lib.degradation() });
       const body = '{"quality":1,"pad":"' + "x".repeat(65535 - 22) + '"}';
       const init = { method: "POST", keepalive: true, headers: { "content-type": "application/json" }, body };
       r.degradation.setLevel("high");
       const high = await settle(r.fetch(page + "/ka", init));
       r.degradation.setLevel("full");
       const full = await settle(r.fetch(page + "/ka", init));
       return { high, full, failures: failuresOf(r), len: body.length };`,
    );
    expect(out.high).toMatchObject({ ok: false, name: "TypeError" });
    expect(out.high.message).toContain("64 KiB at most, got 65537 bytes");
    expect(out.full).toMatchObject({ ok: true, status: 200 });
    expect(at("page", "POST").map((s) => s.body.length)).toEqual([65535]);
    expect(Object.values(out.failures as Record<string, number>).every((n) => n === 0)).toBe(true);
  });

  it("a keepalive body a `transform` takes past 64 KiB fails that endpoint; the chain moves on with the caller's body", async () => {
    const out = await inPage(
      `const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(page, "/ta", { transform: (req) => ({ ...req, body: { ...req.body, pad: "y".repeat(70000) } }) }), ep(page, "/tb")) });
       return settle(r.fetch(page + "/ta/job", { method: "POST", keepalive: true, headers: { "content-type": "application/json" }, body: '{"x":1}' }));`,
    );
    expect(out).toMatchObject({ ok: true, status: 200, info: { endpoint: "b", fromFallback: true } });
    expect(at("page", "POST").map((s) => [s.path, s.body])).toEqual([["/tb/job", '{"x":1}']]);
  });

  it("header and query rules in the page: ` std` arrives as `std`, `café` as Latin-1, a lone surrogate as U+FFFD", async () => {
    await inPage(
      `const h = lib.createResilience({ degradation: lib.degradation({ levelHeader: "x-level", models: [["premium", " std", "caf\\u00e9"]],
         rules: [{ match: page + "/h", params: { model: { header: "x-model" } } }] }) });
       for (const level of ["medium", "low"]) { h.degradation.setLevel(level); await (await h.fetch(page + "/h", { headers: { "x-model": "premium" } })).text(); }
       const q = lib.createResilience({ degradation: lib.degradation({ models: [["premium", "s\\ud800"]],
         rules: [{ match: page + "/q", params: { model: { query: "m" } } }] }) });
       q.degradation.setLevel("medium");
       await (await q.fetch(page + "/q?z=1&m=premium")).text();`,
    );
    expect(at("page").map((s) => [s.path, s.model, s.level, s.search])).toEqual([
      ["/h", "std", "medium", ""],
      ["/h", "caf\u00e9", "low", ""],
      ["/q", undefined, undefined, "?z=1&m=s%EF%BF%BD"],
    ]);
  });

  it("the level header crosses to a chain's other origin only when named in `crossOriginHeaders` (asked for at its preflight)", async () => {
    for (const cross of [[], ["x-level"]]) {
      const out = await inPage(
        `const r = lib.createResilience({ retry: FAST, crossOriginHeaders: ${JSON.stringify(cross)}, degradation: lib.degradation({ levelHeader: "x-level" }),
           fallback: chain({}, ep(page, "/m"), ep(api, "/m")) });
         r.degradation.setLevel("medium");
         return settle(r.fetch(page + "/m/x${cross.length}?seq_page=503", { method: "POST", headers: { "content-type": "application/json" }, body: '{"steps":50}' }));`,
      );
      expect(out).toMatchObject({ ok: true, status: 200, info: { endpoint: "b", degradationLevel: "medium" } });
      expect(at("page", "POST").map((s) => [s.level, s.body])).toEqual(Array(3).fill(["medium", '{"steps":30}']));
      expect(at("api", "OPTIONS").map((s) => s.acrh)).toEqual([cross.length ? "content-type,x-level" : "content-type"]);
      expect(at("api", "POST").map((s) => [s.level, s.body])).toEqual([[cross[0] && "medium", '{"steps":30}']]);
      seen.length = 0;
      counters.clear();
    }
  });
});

describe.skipIf(!BUILT)(`the level machine on Chromium's own signals${SKIP}`, () => {
  const net = (latency: number, throughput: number) =>
    cdp.send(
      "Network.overrideNetworkState" as never,
      {
        offline: false,
        latency,
        downloadThroughput: throughput,
        uploadThroughput: throughput,
      } as never,
    );
  afterEach(async () => {
    await net(20, 10e6);
    await cdp.send("Emulation.setDataSaverOverride" as never, { dataSaverEnabled: false } as never);
  });

  it("navigator.connection (slow-2g, 3g) and Save-Data set a floor, read when a call settles: the first call goes at the level before", async () => {
    const run = () =>
      inPage<{ sent: string[]; after: string; et: string; sd: boolean }>(
        `const r = lib.createResilience({ clock: new lib.TestClock(), degradation: lib.degradation({ levelHeader: "x-level" }) });
         const sent = [];
         for (let i = 0; i < 2; i++) sent.push(lib.getResilienceInfo(await r.fetch(page + "/sig")).degradationLevel);
         return { sent, after: r.health().degradationLevel, et: navigator.connection.effectiveType, sd: navigator.connection.saveData };`,
      );
    await net(3000, 5000);
    expect(await run()).toEqual({ sent: ["full", "minimal"], after: "minimal", et: "slow-2g", sd: false });
    await net(400, 100_000);
    expect(await run()).toEqual({ sent: ["full", "medium"], after: "medium", et: "3g", sd: false });
    await net(20, 10e6);
    await cdp.send("Emulation.setDataSaverOverride" as never, { dataSaverEnabled: true } as never);
    expect(await run()).toEqual({ sent: ["full", "low"], after: "low", et: "4g", sd: true });
    expect(at("page").map((s) => s.level)).toEqual(["full", "minimal", "full", "medium", "full", "low"]);
  });

  it("once the connection recovers, the level climbs back one rung per healthy `restoreAfter` (60 s), never at once", async () => {
    await net(3000, 5000);
    await inPage(
      `const clock = new lib.TestClock();
       const r = lib.createResilience({ clock, degradation: lib.degradation() });
       const levels = [];
       const call = async () => { await (await r.fetch(page + "/sig")).text(); levels.push(r.health().degradationLevel); };
       await call(); await call();
       window.lift = async () => { for (let i = 0; i < 8; i++) { await call(); await clock.advance(30000); } await call(); return levels; };`,
    );
    await net(20, 10e6);
    const levels = await page.evaluate(() => (window as unknown as { lift(): Promise<string[]> }).lift());
    expect(levels.slice(0, 5)).toEqual(Array(5).fill("minimal")); // two under slow-2g, then 0 s, 30 s and 60 s healthy
    expect(levels.filter((l, i) => l !== levels[i - 1])).toEqual(["minimal", "low", "medium", "high"]);
  });

  it("`performance.memory` is read (a threshold below Chromium's heap share steps down); CPU is not (`cpuUsage: 0` never trips)", async () => {
    const out = await inPage<{ mem: string[]; cpu: string[]; share: number }>(
      `const run = async (triggers) => {
         const clock = new lib.TestClock();
         const r = lib.createResilience({ clock, degradation: lib.degradation({ triggers: { memoryUsage: 1, cpuUsage: 1, ...triggers }, stepInterval: 0 }) });
         const levels = [];
         for (let i = 0; i < 4; i++) { await (await r.fetch(page + "/mem")).text(); levels.push(r.health().degradationLevel); await clock.advance(1500); }
         return levels;
       };
       const m = performance.memory;
       return { mem: await run({ memoryUsage: 0.0001 }), cpu: await run({ cpuUsage: 0 }), share: m.usedJSHeapSize / m.jsHeapSizeLimit };`,
    );
    expect(out.share).toBeGreaterThan(0.0001);
    expect(out.mem).toEqual(["high", "medium", "low", "minimal"]);
    expect(out.cpu).toEqual(["full", "full", "full", "full"]);
  });
});

describe.skipIf(!BUILT)(`a chain across three origins, the middle one refused by CORS${SKIP}`, () => {
  const three = `chain({}, ep(page, "/m"), ep(api, "/m"), ep(api2, "/m"))`;

  it("a GET moves on past the refusal (counted on that host) to the third origin", async () => {
    const out = await inPage<{ out: unknown; failures: Record<string, number> }>(
      `const r = lib.createResilience({ retry: FAST, fallback: ${three} });
       return { out: await settle(r.fetch(page + "/m/g?seq_page=503&nocors_api=1")), failures: failuresOf(r) };`,
    );
    expect(out.out).toMatchObject({
      ok: true,
      status: 200,
      text: "api2 200",
      info: { endpoint: "c", fromFallback: true },
    });
    expect(at("api", "GET")).toHaveLength(3);
    expect(out.failures[portOf(O.api)]).toBe(3);
  });

  it("a keyless text POST the other origin received but the page may not read ends the chain: FallbackExhaustedError, no hint", async () => {
    const out = await inPage<{ ok: boolean; name: string; message: string }>(
      `const r = lib.createResilience({ retry: FAST, fallback: ${three} });
       return settle(r.fetch(page + "/m/p?seq_page=503&nocors_api=1", { method: "POST", body: "job" }));`,
    );
    expect(out).toMatchObject({ ok: false, name: "FallbackExhaustedError" });
    expect(out.message).toContain("Failed to fetch");
    expect(out.message).not.toContain(HINT);
    expect(out.message).toMatch(
      /^fallback chain "c" stopped after "b", which may have processed the request \(the answer "a" gave/,
    );
    expect(at("api", "POST")).toHaveLength(1);
    expect(at("api2")).toEqual([]);
  });

  it("a keyed JSON POST whose preflight is refused reaches the third origin, once, with the caller's key", async () => {
    const out = await inPage(
      `const r = lib.createResilience({ retry: FAST, fallback: ${three} });
       return settle(r.fetch(page + "/m/k?seq_page=503&nocors_api=1", { method: "POST", headers: { "content-type": "application/json", "idempotency-key": "k-1" }, body: "{}" }));`,
    );
    expect(out).toMatchObject({ ok: true, status: 200, info: { endpoint: "c" } });
    expect(at("api", "POST")).toEqual([]);
    expect(at("api2", "POST").map((s) => s.key)).toEqual(["k-1"]);
  });

  it("a relative URL is rebased onto another origin's endpoint, its own `?key=` kept", async () => {
    const out = await inPage(
      `const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(page, "/v1"), ep(api, "/v2/?key=k")) });
       return settle(r.fetch("/v1/x/y?q=1&seq_page=503"));`,
    );
    expect(out).toMatchObject({ ok: true, info: { endpoint: "b" } });
    expect(at("page").map((s) => s.path)).toEqual(["/v1/x/y", "/v1/x/y", "/v1/x/y"]);
    const [sent] = at("api");
    expect(sent?.path).toBe("/v2/x/y");
    expect(Object.fromEntries(new URLSearchParams(sent?.search))).toEqual({ key: "k", q: "1", seq_page: "503" });
  });
});

describe.skipIf(!BUILT)(`validate, hedges, aborts and adaptive order across origins${SKIP}`, () => {
  const SCHEMA = `({ "~standard": { version: 1, vendor: "t", validate: (v) => v && v.ok === true ? { value: v } : { issues: [{ message: "not ok" }] } } })`;

  it("a 2xx failing `validate` moves a keyed POST on, and ends a keyless one with that answer as it is", async () => {
    const out = await inPage<unknown[]>(
      `const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(api, "/m", { validate: ${SCHEMA} }), ep(api2, "/m", { validate: ${SCHEMA} })) });
       const url = api + '/m/v?json_api={"ok":false}&json_api2={"ok":true}';
       return [await settle(r.fetch(url, { method: "POST", headers: { "idempotency-key": "k" }, body: "j" })),
               await settle(r.fetch(url, { method: "POST", body: "j" }))];`,
    );
    expect(out).toMatchObject([
      { ok: true, status: 200, text: '{"ok":true}', info: { endpoint: "b" } },
      { ok: true, status: 200, text: '{"ok":false}', info: { endpoint: "a" } },
    ]);
  });

  it("an answer `validate` stopped reading comes as a new Response: the endpoint's status, `url`, `redirected`, headers that can be changed, the whole body", async () => {
    const out = await inPage<Record<string, unknown>>(
      `const r = lib.createResilience({ retry: FAST, maxReplayBytes: 1024, fallback: chain({}, ep(api, "/m", { validate: ${SCHEMA} }), ep(api2, "/m")) });
       const land = api + "/m/land?big=5000";
       const url = api + "/m/r?loc=" + encodeURIComponent(land);
       const plain = await fetch(url, { method: "POST", body: "j" });
       const res = await r.fetch(url, { method: "POST", body: "j" });
       let settable = true; try { res.headers.set("x-mine", "1"); } catch { settable = false; }
       const text = await res.text();
       return { status: res.status, url: res.url, redirected: res.redirected, plainUrl: plain.url, plainRedirected: plain.redirected,
         settable, length: text.length, extra: res.headers.get("x-extra"), type: res.headers.get("content-type"), endpoint: lib.getResilienceInfo(res)?.endpoint, land };`,
    );
    expect(out).toMatchObject({
      status: 200,
      settable: true,
      length: 5000,
      extra: null,
      type: "application/json",
      endpoint: "a",
    });
    expect(out.url).toBe(out.land);
    expect(out.plainUrl).toBe(out.land);
    expect(out.redirected).toBe(true);
    expect(at("api2")).toEqual([]);
  });

  it("a hedge on the TestClock starts the other origin after `delay`; the hung loser's upstream sees the connection closed", async () => {
    await inPage(
      `const clock = new lib.TestClock();
       const r = lib.createResilience({ clock, retry: FAST, fallback: chain({ hedge: { delay: 50 } }, ep(api, "/m"), ep(api2, "/m")) });
       window.t = { clock, r, p: settle(r.fetch(api + "/m/h?hang_api=1")) };`,
    );
    await expect.poll(() => at("api", "GET").length, { timeout: 5_000 }).toBe(1);
    const out = await inPage<{ out: unknown; stats: Record<string, { calls: number; successes: number }> }>(
      `await window.t.clock.advance(50); const out = await window.t.p;
       return { out, stats: window.t.r.fallback.chain("c").statistics().fallbacks };`,
    );
    expect(out.out).toMatchObject({ ok: true, status: 200, info: { endpoint: "b" } });
    await expect.poll(() => at("api", "GET")[0]?.cut, { timeout: 5_000 }).toBe(true);
    expect(out.stats).toMatchObject({ a: { calls: 1, successes: 0 }, b: { calls: 1, successes: 1 } });
  });

  it("an abort from the page while the other origin is out rejects with the caller's reason, cuts that request, and does not count it", async () => {
    await inPage(
      `const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(page, "/m"), ep(api, "/m")) });
       const c = new AbortController(); const reason = new Error("mine");
       window.t = { c, reason, r, p: r.fetch(page + "/m/a?seq_page=503&hang_api=1", { signal: c.signal }).then(() => "resolved", (e) => e) };`,
    );
    await expect.poll(() => at("api", "GET").length, { timeout: 5_000 }).toBe(1);
    const out = await inPage<{ same: boolean; b: unknown }>(
      `window.t.c.abort(window.t.reason); const e = await window.t.p;
       return { same: e === window.t.reason, b: window.t.r.fallback.chain("c").statistics().fallbacks.b };`,
    );
    expect(out.same).toBe(true);
    expect(out.b).toMatchObject({ calls: 0 });
    await expect.poll(() => at("api", "GET")[0]?.cut, { timeout: 5_000 }).toBe(true);
  });

  it('`order: "adaptive"` moves an endpoint the browser\'s CORS keeps refusing below the one that serves', async () => {
    const out = await inPage<{ before: string[]; after: string[]; served: string[] }>(
      `const r = lib.createResilience({ retry: FAST, breaker: false, fallback: chain({ order: "adaptive" }, ep(api, "/m"), ep(api2, "/m")) });
       const c = r.fallback.chain("c"); const before = c.ordered(); const served = [];
       for (let i = 0; i < 3; i++) served.push(lib.getResilienceInfo(await r.fetch(api + "/m/ad?nocors_api=1")).endpoint);
       return { before, after: c.ordered(), served };`,
    );
    expect(out).toEqual({ before: ["a", "b"], after: ["b", "a"], served: ["b", "b", "b"] });
  });
});

describe.skipIf(!BUILT)(`bodies down a chain, and the ky client, in the page${SKIP}`, () => {
  it("a FormData goes to the next origin as the same multipart bytes; an image Blob reaches `transform` as `undefined` and goes unread", async () => {
    const out = await inPage<boolean[]>(
      `const seenBodies = [];
       const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(page, "/m"), ep(api, "/m", { transform: (req) => { seenBodies.push(req.body === undefined); return req; } })) });
       const fd = new FormData(); fd.append("prompt", "cat"); fd.append("file", new Blob(["PNG"], { type: "image/png" }), "a.png");
       await (await r.fetch(page + "/m/f?seq_page=503", { method: "POST", body: fd })).text();
       await (await r.fetch(page + "/m/b?seq_page=503", { method: "POST", body: new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" }) })).text();
       return seenBodies;`,
    );
    expect(out).toEqual([true, true]);
    const swap = (s?: Seen) => {
      const boundary = /boundary=(.+)$/.exec(s?.type ?? "")?.[1] ?? "none";
      return { boundary, body: s?.body.split(boundary).join("B"), type: s?.type?.split(boundary).join("B") };
    };
    const forms = at("page", "POST")
      .filter((s) => s.path === "/m/f")
      .concat(at("api", "POST").filter((s) => s.path === "/m/f"));
    expect(new Set(forms.map((f) => JSON.stringify({ ...swap(f), boundary: 0 }))).size).toBe(1);
    expect(forms.map((f) => f.body.includes(`--${swap(f).boundary}\r\n`))).toEqual([true, true, true, true]);
    const ab = at("api", "POST").find((s) => s.path === "/m/b");
    expect([ab?.type, ab?.body]).toEqual(["image/png", "\x89PNG"]);
  });

  it("ky on a chain: a GET served by the third origin past a CORS refusal; a keyless JSON POST's chain error reaches the caller unwrapped", async () => {
    const out = await inPage<{
      get: unknown;
      post: { name: string; message: string };
      plain: { name: string; message: string };
    }>(
      `const r = lib.createResilience({ retry: FAST, fallback: chain({}, ep(api, "/m"), ep(api2, "/m")) });
       const client = lib.createClient({ resilience: r });
       const res = await client.get(api + "/m/ky?nocors_api=1");
       const get = { text: await res.text(), endpoint: lib.getResilienceInfo(res)?.endpoint };
       const fail = (e) => ({ name: e.name, message: e.message });
       const post = await client.post(api + "/m/ky?nocors_api=1", { json: { a: 1 } }).then(() => null, fail);
       const plain = await lib.createClient({ resilience: { retry: FAST } }).post(api + "/x?nocors_api=1", { json: { a: 1 } }).then(() => null, fail);
       return { get, post, plain };`,
    );
    expect(out.get).toEqual({ text: "api2 200", endpoint: "b" });
    expect(out.post.name).toBe("FallbackExhaustedError");
    expect(out.post.message).not.toContain(HINT);
    expect(out.plain.name).not.toBe("NetworkError");
    expect(out.plain.message).toContain(HINT);
    expect(at("api2", "POST")).toEqual([]);
  });
});
