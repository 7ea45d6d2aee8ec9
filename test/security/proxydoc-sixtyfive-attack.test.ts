/**
 * Outside-in attack on docs/cloudflare.md, the `resilientProxy` part, sentence by sentence (with SECURITY.md's health
 * endpoint row and README.md's Worker quick start), aimed at what the earlier proxy runs left undriven.
 *
 * Docs:
 * - docs/cloudflare.md: "When it holds a value (text, a number as wrangler's `[vars]` may give it, …; spaces, tabs or
 *   a newline around the token are not part of it, …; any other value, a number that is not finite, text of spaces
 *   alone, … keeps the endpoint closed), it requires `Authorization: Bearer <token>` (the scheme in any case, and one
 *   or more spaces before the token, as RFC 9110 reads credentials; compared in constant time, over the token's
 *   length whatever the length given …)"; "any other method is answered 405 with `Allow: GET, HEAD`".
 * - SECURITY.md: "URLs lose their userinfo, …, query string and fragment … before they reach any of them (events,
 *   errors, `health()` …)"; "any other method there is a 405 and never goes to a route, so the token is not forwarded
 *   upstream"; "its JSON holds no headers or keys".
 * - docs/cloudflare.md: "answers `503` with `Retry-After` when the circuit is open, `504` on a timeout, … and `502`
 *   when no endpoint answered otherwise"; "(its own 502, 503 and 504 carry none of the three)"; "adds
 *   `x-resilience-endpoint` (the endpoint's name, else the breaker's key of the host first called, after redirects
 *   too, …)"; "`400` when the request failed of the client's own making … (… the client's body stream failed while
 *   the layer read it ahead or, past `maxReplayBytes`, while it went …)".
 * - "The client's body goes on as a stream: the layer reads at most `maxReplayBytes` of it ahead, so … a whole upload
 *   is never held in the isolate's memory."; "A request for a route whose client went away (its `signal` aborted) gets
 *   no answer: the proxy's `fetch` rejects with the signal's reason"; "the upstream's connection is closed all the
 *   same and no breaker counts it".
 * - "its routes (…, a path that starts with `/`, written as the URL parser writes a request's path, which is what it
 *   is matched against (`/vid%C3%A9o`, not `/vidéo`; no query, no `..`)"; "A route serves its path and everything
 *   below it (the path below goes onto the upstream's path, …)"; "the longest matching route wins (its path's length
 *   without trailing slashes …)".
 * - "The proxy sends with `redirect: "follow"` whatever the incoming request says …, so the layer follows an
 *   upstream's redirects itself, … (from the first hop to another origin on, only the cross-origin allowlist of
 *   headers goes), and the client gets where the redirect leads."; docs/fallback.md "Credentials never cross origins
 *   … An endpoint's own `headers` … are the endpoint's and are sent".
 * - "`fallback: false`, none, is taken at run time, as on `createResilience`, so a layer's options can be shared with
 *   the proxy"; "(where a `fallback` is refused: a proxy's chains go in its routes …)".
 *
 * How: `resilientProxy` (../../src/cloudflare/index.ts), `createResilience` (../../src/index.ts),
 * `fallback` (../../src/fallback/index.ts), `TestClock` (../../src/testing/index.ts); two node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts), a refused origin, and one raw node:http server that counts upload bytes
 * as they arrive. Requests handed to `proxy.fetch` as a Worker gets them (a `Request`, an env, a `ctx`).
 *
 * Paths: `resilientProxy` upstream routes and chain routes: health endpoint, routing, forwarding, redirects, error
 * answers, streamed uploads, client aborts, shared layer options, a `memoryStore` factory.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found.
 *
 * Held (plain `it`):
 * - Health token: text with spaces/tab/newline around it, `bearer`/`BEARER` and several spaces; a tab after the
 *   scheme, no space, a prefix, a longer value, another scheme → 401; a finite number is a token, `NaN`, `Infinity`
 *   and text of spaces alone keep it closed; `null`, `""` and unset leave it open; `healthTokenVar` names another var;
 *   the 401 carries no health data; POST/PUT/DELETE/OPTIONS → 405 `Allow: GET, HEAD`, nothing reaches the catch-all.
 * - `health()` JSON: no upstream `?key=`, no chain endpoint's key or header, no client query (default breaker key); with
 *   `breaker.key = (u) => u.href` the key is shown as given, as SECURITY.md's Limits say.
 * - 502 / 504 / 503 answers for an upstream with `?key=`: JSON bodies, none of the three headers, no key anywhere,
 *   503's `Retry-After` the breaker's spell.
 * - Forwarding: HEAD and OPTIONS go upstream as such; PATCH, DELETE and a custom method with their bodies byte for byte; the upstream's own `host`; the
 *   client's credentials to an upstream route; a chain endpoint's own `authorization` replaces the client's, the spare
 *   on another origin gets its own and none of the client's; a `connection`-named header both ways.
 * - A 307 to another origin: followed under `redirect: "manual"`, the client's `authorization` left home,
 *   `x-resilience-endpoint` the first host's key.
 * - Routing: `..` and `%2e%2e` resolved before matching, `%2f` not a separator, a `//host` path stays on the upstream,
 *   a route `/v1/` serves `/v1` onto the upstream as written, longest wins.
 * - An upload past `maxReplayBytes` reaches the upstream while the client is still sending; a body stream that fails
 *   before and past `maxReplayBytes` → 400 and no breaker counts it; one announced past it by its `content-length`
 *   that fails while sent → 502; a client that aborts mid-upload: rejects with its
 *   reason, the upstream's connection closes, the next request goes (threshold 1).
 * - Shared options: `fallback: false` taken by both, a chain route still falls back; a `fallback` stage is a
 *   `ConfigError` at `resilience.fallback`.
 *
 * Docs-silent (not pinned; in the sixty-fifth session both were written in, SECURITY.md's "Names you choose" and
 * docs/cloudflare.md's health paragraph, and the tests named in "Held" cover them):
 * - SECURITY.md's Limits say a `breaker.key` is "shown as given in events, `health()` and errors"; through the proxy
 *   it also goes to every client of the Worker in `x-resilience-endpoint` (percent-encoded): `u.href` as key hands the
 *   upstream's `?key=` to the end user, a wider audience than logs. Neither doc names the response header there.
 * - The health 401 carries `www-authenticate: Bearer` and `{ "error": "unauthorized" }`; no doc sentence says so.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil(_p: Promise<unknown>) {}, passThroughOnException() {} };
const worker = (path: string, init?: RequestInit) => new Request(`https://worker.example${path}`, init);
const answer =
  (status: number, body = `s${status}`, headers: Record<string, string> = {}) =>
  (hit: Hit) =>
    hit.res.writeHead(status, { "content-type": "text/plain", ...headers }).end(body);
const threeHeaders = (res: Response) =>
  ["x-resilience-endpoint", "x-resilience-attempts", "x-degradation-level"].map((n) => res.headers.get(n));
const allHeaders = (res: Response) => [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
/** What a promise settles with, or "pending" after a few real ms. */
const soon = <T>(p: Promise<T>, ms = 2000): Promise<T | "pending"> =>
  Promise.race([p, new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), ms).unref())]);

// A raw server that counts upload bytes as they arrive (httpUpstream records a request only once it ended).
let received = 0;
let onBytes: () => void = () => {};
let uploadClosed: Promise<void> = Promise.resolve();
const raw = createServer((req, res) => {
  uploadClosed = new Promise((resolve) => req.on("close", () => resolve()));
  req.on("error", () => {}); // a client that left: "aborted", expected here
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    onBytes();
  });
  req.on("end", () => res.end(`got ${received}`));
});
let RAW = "";
beforeAll(async () => {
  raw.listen(0, "127.0.0.1");
  await once(raw, "listening");
  RAW = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
});
afterAll(() => {
  raw.closeAllConnections();
  raw.close();
});

describe("health endpoint: token rules (SECURITY.md row, docs/cloudflare.md)", () => {
  const proxy = () =>
    resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/", upstream: A.base }],
      resilience: { retry: false },
    });
  const health = async (env: Record<string, unknown>, authorization?: string, method = "GET") =>
    (
      await proxy().fetch(
        worker("/__resilience/health", { method, headers: authorization === undefined ? {} : { authorization } }),
        env,
        ctx,
      )
    ).status;

  it("held: text with spaces around it, the scheme in any case, one or more spaces; anything else is 401", async () => {
    const env = { RESILIENCE_HEALTH_TOKEN: " \ts3cret-token\n" };
    const cases: Array<[string | undefined, number]> = [
      ["Bearer s3cret-token", 200],
      ["bearer s3cret-token", 200],
      ["BEARER    s3cret-token", 200],
      ["Bearer\ts3cret-token", 401],
      ["Bearers3cret-token", 401],
      ["s3cret-token", 401],
      ["Basic s3cret-token", 401],
      ["Bearer s3cret-toke", 401],
      ["Bearer s3cret-token2", 401],
      ["Bearer s3cret-token, Bearer x", 401],
      [undefined, 401],
    ];
    const got = [];
    for (const [auth] of cases) got.push(await health(env, auth));
    expect(got).toEqual(cases.map(([, s]) => s));
    expect(A.hits).toHaveLength(0);
  });

  it("held: a finite number is a token; NaN, Infinity and spaces alone keep it closed; null, empty, unset are open", async () => {
    expect([
      await health({ RESILIENCE_HEALTH_TOKEN: 12345 }, "Bearer 12345"),
      await health({ RESILIENCE_HEALTH_TOKEN: 12345 }),
    ]).toEqual([200, 401]);
    expect(await health({ RESILIENCE_HEALTH_TOKEN: 1.5 }, "Bearer 1.5")).toBe(200);
    expect(await health({ RESILIENCE_HEALTH_TOKEN: Number.NaN }, "Bearer NaN")).toBe(401);
    expect(await health({ RESILIENCE_HEALTH_TOKEN: Number.POSITIVE_INFINITY }, "Bearer Infinity")).toBe(401);
    expect(await health({ RESILIENCE_HEALTH_TOKEN: "   \t " })).toBe(401);
    expect(await health({ RESILIENCE_HEALTH_TOKEN: "   \t " }, "Bearer  ")).toBe(401);
    expect([
      await health({ RESILIENCE_HEALTH_TOKEN: null }),
      await health({ RESILIENCE_HEALTH_TOKEN: "" }),
      await health({}),
    ]).toEqual([200, 200, 200]);
  });

  it("held: `healthTokenVar` names another var; a 401 says nothing of health; other methods 405, nothing routed", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/", upstream: A.base }],
      healthTokenVar: "MY_HEALTH",
    });
    const env = { MY_HEALTH: "tok-123", RESILIENCE_HEALTH_TOKEN: "" };
    const denied = await p.fetch(worker("/__resilience/health"), env, ctx);
    expect([denied.status, denied.headers.get("www-authenticate")]).toEqual([401, "Bearer"]);
    expect(await denied.json()).toEqual({ error: "unauthorized" });
    const ok = await p.fetch(
      worker("/__resilience/health", { headers: { authorization: "Bearer tok-123" } }),
      env,
      ctx,
    );
    expect(ok.status).toBe(200);
    expect(Object.keys(await ok.json()).length).toBeGreaterThan(0);
    const head = await p.fetch(worker("/__resilience/health", { method: "HEAD" }), env, ctx);
    expect([head.status, await head.text()]).toEqual([401, ""]);
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const res = await p.fetch(
        worker("/__resilience/health", {
          method,
          headers: { authorization: "Bearer tok-123" },
          ...(method === "OPTIONS" || method === "DELETE" ? {} : { body: "x" }),
        }),
        env,
        ctx,
      );
      expect([method, res.status, res.headers.get("allow")]).toEqual([method, 405, "GET, HEAD"]);
    }
    expect(A.hits).toHaveLength(0);
  });
});

describe("what the proxy tells its client: health JSON and its own error answers", () => {
  const twoRoutes = (resilience: object) =>
    resilientProxy<Record<string, unknown>>({
      routes: [
        { path: "/t", upstream: `${A.base}/v1?key=SEKRET-Q1` },
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "one", url: `${B.base}/x?api_key=SEKRET-Q2`, headers: { authorization: "Bearer SEKRET-H3" } },
            ],
          },
        },
      ],
      resilience: { retry: false, ...resilience },
    });

  it("held: health() names no upstream key, chain key, endpoint header or client query", async () => {
    const p = twoRoutes({});
    B.on(answer(503));
    const t = await p.fetch(worker("/t/a?user=SEKRET-U4"), {}, ctx);
    const c = await p.fetch(worker("/c/a"), {}, ctx);
    expect([t.status, c.status, t.headers.get("x-resilience-endpoint")]).toEqual([200, 503, A.host]);
    expect(A.hits[0]?.path).toBe("/v1/a?key=SEKRET-Q1&user=SEKRET-U4");
    const text = await (await p.fetch(worker("/__resilience/health"), {}, ctx)).text();
    expect(text).not.toMatch(/SEKRET/);
    expect(text).toContain(A.host);
  });

  it("held (SECURITY.md Limits: a breaker.key is shown as given): `u.href` as key shows the query in health() and in x-resilience-endpoint", async () => {
    const p = twoRoutes({ breaker: { key: (u: URL) => u.href } });
    const t = await p.fetch(worker("/t/a"), {}, ctx);
    expect(decodeURIComponent(t.headers.get("x-resilience-endpoint") ?? "")).toBe(`${A.base}/v1/a?key=SEKRET-Q1`);
    const text = await (await p.fetch(worker("/__resilience/health"), {}, ctx)).text();
    expect(text).toContain("SEKRET-Q1");
  });

  it("held: 502, 504 and 503 are JSON, carry none of the three headers, and name no upstream key", async () => {
    const refused = await refusedOrigin();
    const clock = new TestClock(1_000_000);
    const p = resilientProxy<Record<string, unknown>>({
      routes: [
        { path: "/down", upstream: `${refused}/v1?key=SEKRET-R` },
        { path: "/slow", upstream: `${A.base}/v1?key=SEKRET-S` },
        { path: "/bad", upstream: `${B.base}/v1?key=SEKRET-B` },
      ],
      resilience: {
        clock,
        retry: false,
        timeout: { attempt: 1000 },
        breaker: { failureThreshold: 1, timeout: 30_000 },
      },
    });
    const down = await p.fetch(worker("/down/x"), {}, ctx);
    A.on(() => {});
    const slowP = p.fetch(worker("/slow/x"), {}, ctx);
    await A.nth(1);
    await clock.advance(1000);
    const slow = await slowP;
    for (const hit of A.hits) hit.res.end("late");
    B.on(answer(500, "boom SEKRET-BODY"));
    const first = await p.fetch(worker("/bad/x"), {}, ctx);
    expect(first.status).toBe(500); // passed on as the upstream gave it
    await first.text();
    const open = await p.fetch(worker("/bad/x"), {}, ctx);
    const got = [];
    for (const res of [down, slow, open]) {
      const body = await res.text();
      got.push([res.status, res.headers.get("content-type"), threeHeaders(res), /SEKRET/.test(body + allHeaders(res))]);
    }
    const none = [null, null, null];
    expect(got).toEqual([
      [502, "application/json", none, false],
      [504, "application/json", none, false],
      [503, "application/json", none, false],
    ]);
    expect(open.headers.get("retry-after")).toBe("30");
    expect(B.hits).toHaveLength(1);
  });
});

describe("what is forwarded", () => {
  it("held: methods and bodies byte for byte, the upstream's own host, the client's credentials on an upstream route", async () => {
    const p = resilientProxy<Record<string, unknown>>({ routes: [{ path: "/api", upstream: `${A.base}/v2/` }] });
    const bytes = new Uint8Array(256).map((_, i) => i);
    const head = await p.fetch(worker("/api/h", { method: "HEAD" }), {}, ctx);
    const options = await p.fetch(worker("/api/o", { method: "OPTIONS" }), {}, ctx);
    expect([head.status, await head.text(), options.status]).toEqual([200, "", 200]);
    expect(A.hits.splice(0).map((h) => [h.method, h.path])).toEqual([
      ["HEAD", "/v2/h"],
      ["OPTIONS", "/v2/o"],
    ]);
    for (const method of ["PATCH", "DELETE", "PURGE"]) {
      const res = await p.fetch(
        worker("/api/item?q=1", {
          method,
          body: bytes,
          headers: {
            authorization: "Bearer client-key",
            cookie: "s=1",
            "x-api-key": "client-x",
            connection: "x-hop-only",
            "x-hop-only": "1",
            host: "worker.example",
          },
        }),
        {},
        ctx,
      );
      expect(res.status).toBe(200);
    }
    expect(A.hits.map((h) => [h.method, h.path, Buffer.compare(h.bytes, Buffer.from(bytes))])).toEqual([
      ["PATCH", "/v2/item?q=1", 0],
      ["DELETE", "/v2/item?q=1", 0],
      ["PURGE", "/v2/item?q=1", 0],
    ]);
    const h = A.hits[0]?.headers ?? {};
    expect([h.host, h.authorization, h.cookie, h["x-api-key"], h["x-hop-only"]]).toEqual([
      A.host,
      "Bearer client-key",
      "s=1",
      "client-x",
      undefined,
    ]);
  });

  it("held: a chain endpoint's own authorization replaces the client's; the spare elsewhere gets its own, none of the client's", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "first", url: `${A.base}/v1`, headers: { authorization: "Bearer FIRST" } },
              { name: "spare", url: `${B.base}/v9`, headers: { authorization: "Bearer SPARE" } },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    A.on(answer(503, "busy", { connection: "x-up-hop", "x-up-hop": "secret-hop" }));
    B.on(answer(200, "spare-ok", { connection: "x-up-hop", "x-up-hop": "secret-hop" }));
    const res = await p.fetch(
      worker("/gen/jobs", {
        method: "PUT",
        body: "{}",
        headers: { authorization: "Bearer CLIENT", cookie: "sess=CLIENTCOOKIE", "x-api-key": "CLIENTKEY" },
      }),
      {},
      ctx,
    );
    expect([
      res.status,
      await res.text(),
      res.headers.get("x-resilience-endpoint"),
      res.headers.get("x-up-hop"),
    ]).toEqual([200, "spare-ok", "spare", null]);
    const a = A.hits[0]?.headers ?? {};
    const b = B.hits[0]?.headers ?? {};
    expect([a.authorization, a.cookie, a["x-api-key"]]).toEqual(["Bearer FIRST", "sess=CLIENTCOOKIE", "CLIENTKEY"]);
    expect([b.authorization, b.cookie, b["x-api-key"], B.hits[0]?.path]).toEqual([
      "Bearer SPARE",
      undefined,
      undefined,
      "/v9/jobs",
    ]);
  });

  it("held: a 307 to another origin is followed under redirect: manual, the client's authorization left home, the first host named", async () => {
    const p = resilientProxy<Record<string, unknown>>({ routes: [{ path: "/", upstream: A.base }] });
    A.on((hit) => hit.res.writeHead(307, { location: `${B.base}/landed` }).end());
    B.on(answer(200, "landed"));
    const res = await p.fetch(
      worker("/start", {
        method: "POST",
        body: "payload",
        redirect: "manual",
        headers: { authorization: "Bearer CLIENT", "content-type": "text/plain" },
      }),
      {},
      ctx,
    );
    expect([res.status, await res.text(), res.headers.get("x-resilience-endpoint")]).toEqual([200, "landed", A.host]);
    expect([
      B.hits[0]?.method,
      B.hits[0]?.body,
      B.hits[0]?.headers.authorization,
      B.hits[0]?.headers["content-type"],
    ]).toEqual(["POST", "payload", undefined, "text/plain"]);
  });
});

describe("route matching", () => {
  it("held: `..` and `%2e%2e` resolve before matching, `%2f` is no separator, `//host` stays on the upstream", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [
        { path: "/v1", upstream: `${A.base}/base` },
        { path: "/admin", upstream: `${B.base}/adm` },
      ],
    });
    const status = async (path: string) => (await p.fetch(worker(path), {}, ctx)).status;
    expect(await status("/v1/../admin/x")).toBe(200);
    expect(await status("/v1/%2e%2E/admin/y")).toBe(200);
    expect(await status("/v1/.%2e/.%2E/admin")).toBe(200);
    expect(B.hits.map((h) => h.path)).toEqual(["/adm/x", "/adm/y", "/adm"]);
    expect(await status("/v1/%2e%2e%2fadmin")).toBe(200);
    expect(await status("/v1%2Fadmin")).toBe(404);
    expect(await status("/V1/x")).toBe(404);
    expect(await status("/v1//evil.example/z")).toBe(200);
    expect(A.hits.map((h) => [h.path, h.headers.host])).toEqual([
      ["/base/%2e%2e%2fadmin", A.host],
      ["/base//evil.example/z", A.host],
    ]);
    expect(B.hits).toHaveLength(3);
  });

  it("held: a route `/v1/` serves `/v1` onto the upstream as written; the longest path wins, trailing slashes aside", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [
        { path: "/v1/", upstream: `${A.base}/one?k=1` },
        { path: "/v1/video//", upstream: `${B.base}/vid` },
        { path: "/", upstream: `${A.base}/root/` },
      ],
    });
    for (const path of ["/v1", "/v1/", "/v1/video", "/v1/videos", "/v1/video/a", "/x"])
      await p.fetch(worker(path), {}, ctx);
    expect(A.hits.map((h) => h.path)).toEqual(["/one?k=1", "/one/?k=1", "/one/videos?k=1", "/root/x"]);
    expect(B.hits.map((h) => h.path)).toEqual(["/vid", "/vid/a"]);
  });
});

describe("streamed uploads, failed bodies, a client that leaves", () => {
  const chunk = (n: number, byte = 0x61) => new Uint8Array(n).fill(byte);

  it("held: an upload past maxReplayBytes reaches the upstream while the client is still sending", async () => {
    received = 0;
    const p = resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/up", upstream: RAW }],
      resilience: { maxReplayBytes: 1024 },
    });
    const arrived = new Promise<void>((resolve) => {
      onBytes = () => received >= 8192 && resolve();
    });
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        step++;
        if (step === 1) controller.enqueue(chunk(8192));
        else if (step === 2) {
          // The rest only once the first 8 KiB reached the upstream: a proxy holding the upload would wait forever.
          expect(await soon(arrived)).toBeUndefined();
          controller.enqueue(chunk(4096));
        } else controller.close();
      },
    });
    const res = await p.fetch(worker("/up", { method: "POST", body, duplex: "half" } as RequestInit), {}, ctx);
    expect([res.status, await res.text()]).toEqual([200, "got 12288"]);
  });

  it("held: a body stream that fails before or past maxReplayBytes is a 400, and no breaker counts it", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/up", upstream: RAW }],
      resilience: { retry: false, maxReplayBytes: 1024, breaker: { failureThreshold: 1 } },
    });
    const failing = (before: number) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(chunk(before));
          setTimeout(() => controller.error(new Error("client stream broke")), 5);
        },
      });
    for (const before of [100, 4096]) {
      const res = await p.fetch(
        worker("/up", { method: "POST", body: failing(before), duplex: "half" } as RequestInit),
        {},
        ctx,
      );
      expect([before, res.status, await res.json(), threeHeaders(res)]).toEqual([
        before,
        400,
        { error: "the client's request failed" },
        [null, null, null],
      ]);
    }
    const next = await p.fetch(worker("/up", { method: "POST", body: "fine" }), {}, ctx);
    expect(next.status).toBe(200);
  });

  it("held: a body announced past maxReplayBytes by its content-length goes unread, and its failure is a 502", async () => {
    const p = resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/up", upstream: RAW }],
      resilience: { retry: false, maxReplayBytes: 1024 },
    });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk(2048));
        setTimeout(() => controller.error(new Error("client stream broke")), 5);
      },
    });
    const init = { method: "POST", body, duplex: "half", headers: { "content-length": "4096" } } as RequestInit;
    const res = await p.fetch(worker("/up", init), {}, ctx);
    expect([res.status, await res.json(), threeHeaders(res)]).toEqual([
      502,
      { error: "upstream unavailable" },
      [null, null, null],
    ]);
  });

  it("held: a client that leaves mid-upload: rejects with its reason, the upstream's connection closes, no breaker counts it", async () => {
    received = 0;
    const p = resilientProxy<Record<string, unknown>>({
      routes: [{ path: "/up", upstream: RAW }],
      resilience: { retry: false, maxReplayBytes: 1024, breaker: { failureThreshold: 1 } },
    });
    const arrived = new Promise<void>((resolve) => {
      onBytes = () => received >= 4096 && resolve();
    });
    const client = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk(4096));
      },
    });
    const pending = p.fetch(
      worker("/up", { method: "POST", body, duplex: "half", signal: client.signal } as RequestInit),
      {},
      ctx,
    );
    expect(await soon(arrived)).toBeUndefined();
    const reason = new Error("client left");
    client.abort(reason);
    expect(
      await pending.then(
        () => "answered",
        (e: unknown) => e,
      ),
    ).toBe(reason);
    expect(await soon(uploadClosed)).toBeUndefined();
    const next = await p.fetch(worker("/up", { method: "POST", body: "again" }), {}, ctx);
    expect(next.status).toBe(200);
  });
});

describe("layer options shared with the proxy", () => {
  it("held: `fallback: false` is taken by both, a chain route still falls back; a fallback stage is refused at resilience.fallback", async () => {
    const shared = { retry: false as const, fallback: false as const };
    expect(() => createResilience(shared)).not.toThrow();
    const p = resilientProxy<Record<string, unknown>>({
      routes: [
        {
          path: "/c",
          chain: {
            name: "c",
            endpoints: [
              { name: "a", url: A.base },
              { name: "b", url: B.base },
            ],
          },
        },
      ],
      resilience: shared,
    });
    A.on(answer(503));
    const res = await p.fetch(worker("/c/x"), {}, ctx);
    expect([res.status, res.headers.get("x-resilience-endpoint")]).toEqual([200, "b"]);
    const stage = fallback([{ name: "z", endpoints: [{ name: "z1", url: A.base }] }]);
    expect(() =>
      resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: { fallback: stage } as never }),
    ).toThrow(expect.objectContaining({ name: "ConfigError", path: "resilience.fallback" }));
  });
});
