/**
 * Outside-in attack on the library's own redirect follower, differentially: the same request sent three ways
 * (bare `fetch`, i.e. undici's follower, the reference for what fetch users expect; the layer with
 * `redirects: "platform"`; the layer with its default follower, `"library"` in Node), comparing what the servers
 * received on every hop (method, body bytes, every header) and what the caller gets (`status`, `url`,
 * `redirected`, `type`, body, and the same on a `clone()`).
 * Docs: README.md "A drop-in `fetch`"; docs/options.md `redirects`: "who follows the redirects of a
 * `redirect: "follow"` call"; docs/retry.md "Redirects": "Outside browsers (Node, Deno, Bun, workerd) the library
 * follows a `redirect: "follow"` call's redirects itself, hop by hop with `redirect: "manual"`, because the
 * platform's follower only drops the standard credential headers", "From the first hop to another origin on …
 * only the cross-origin allowlist is sent (`accept`, `accept-language`, `content-language`, `content-type`,
 * `idempotency-key`, `user-agent`, and the headers you name in `crossOriginHeaders`), and nothing dropped is put
 * back, even if a later hop returns to the first origin. Everything else is the Fetch standard's: at most 20 hops
 * (then a `TypeError`), http(s) targets only, …, 301/302 turn a POST into a GET and 303 turns anything but
 * GET/HEAD into a GET (body and its headers dropped), 307/308 replay method and body", "a stream body … fails any
 * redirect but a 303, a 301/302 too", "A `Request` input's body is taken as one with a source, whatever its size
 * (read into bytes …)", "Node's fetch applies some policies wrongly (the origin alone under
 * `no-referrer-when-downgrade` without a downgrade)", "a redirect's `Referrer-Policy` rules the hops after it",
 * "The result has `redirected: true` and the last hop's `url`", "Whatever ends a followed redirect … the call
 * rejects … with a `RetryExhaustedError` whose `cause` is that failure", "Calls with `redirect: "manual"` or
 * `"error"` go to the transport untouched", "Several `Location` headers … different ones are followed as
 * `Headers.get` joins them (`/a, /b`), as Node's follower does", "as UTF-8 in Node … (a byte that is not UTF-8
 * becomes U+FFFD, `%EF%BF%BD`)"; docs/retry.md "Bodies": "a `Request` input's body is read into bytes once and
 * replayed"; SECURITY.md "Credentials never follow a redirect to another origin".
 * How: `createResilience` (root), `degradation` (./degradation), `fallback` (./fallback), `createClient`
 * (./ky) against plain `ky.create({ fetch })`; two node:http servers on 127.0.0.1 (two ports = two origins,
 * test/helpers/http-upstream.ts) whose answers are scripted by path.
 * Paths: plain call (every status × GET, HEAD, POST with string, JSON, FormData, Blob, URLSearchParams and
 * stream bodies, PUT, DELETE; same origin, cross origin and back), odd `Location` values, chains of 20 and 21 hops,
 * a loop, `redirect: "manual"` / `"error"`, `referrer` / `referrerPolicy` and a redirect's `Referrer-Policy`,
 * `Request` input (body, signal), a degradation rewrite, a fallback chain endpoint that redirects, the ky client.
 *
 * Defects pinned (first `it.fails`, asserting undici's behaviour or the doc's sentence, on the code they were
 * written against; all fixed since, so plain `it`: with `redirects: "platform"` and the global fetch, a body of
 * bytes goes to it as a `Blob`, which undici sends again on a 307/308; the library's follower reports `"cors"` once
 * a hop left the first URL's origin):
 * 1. README.md "A drop-in `fetch`" and docs/options.md `redirects: "platform"` ("who follows the redirects":
 *    the platform). Observed: in Node, with `redirects: "platform"`, a `Request` input with a body (a string body
 *    included) that meets a 307/308 fails the call (`RetryExhaustedError`, cause `TypeError: fetch failed` ←
 *    "Cannot perform ArrayBuffer.prototype.slice on a detached ArrayBuffer"), where bare `fetch(request)` follows
 *    and replays the body. So does every ky POST/PUT through `createClient({ resilience: { redirects:
 *    "platform" } })` (ky hands its transport a `Request`), and a `Request` routed to a fallback endpoint (the
 *    chain stops: `FallbackExhaustedError`). A PUT is retried, each attempt reaching the server and failing the
 *    same way. Mechanism: the layer reads a `Request` input's body into a `Uint8Array` (src/http/request/
 *    normalize-request.ts, `readForReplay`, docs/retry.md "read into bytes once and replayed") and hands undici
 *    `init.body` = those bytes; undici's own follower cannot replay a BufferSource body (it re-extracts the body
 *    from its source, whose buffer the first send detached: bare `fetch(url, { body: new Uint8Array(…) })` fails a
 *    307 the same way), while a `Request`'s own body, which bare fetch keeps, replays. The library follower does
 *    each hop as a fresh fetch, so it is not hit.
 * 2. docs/retry.md "Everything else is the Fetch standard's" / "The result has `redirected: true` and the last
 *    hop's `url`" (undici, the reference: a cross-origin redirect makes the response `type: "cors"`). Observed:
 *    with the library's follower (the default in Node) a response reached through a hop to another origin says
 *    `type: "basic"` (on `clone()` too), where bare fetch and `redirects: "platform"` say `"cors"` (also after a
 *    hop back to the first origin). Mechanism: each hop is a separate same-origin fetch, whose answer is
 *    `"basic"`; src/http/send/follow-redirects.ts `markRedirected` passes `standIn(response, to, true)` the
 *    transport's own `type`, so the tainting of the cross-origin hop is lost. No doc says the type differs.
 *
 * Held (plain `it`):
 * - Same origin, 301/302/303/307/308 × GET, HEAD, POST (string, JSON, FormData, Blob, URLSearchParams), PUT,
 *   DELETE: every hop the servers receive (method, body bytes, every header, `content-type`, `content-length`,
 *   `content-language`, `authorization`, `cookie`, `idempotency-key`, custom ones) and the caller's `status`,
 *   `url`, `redirected`, `type`, body (and `clone()`'s `url`/`redirected`) are undici's, in both modes.
 * - Cross origin: the hop to the other origin carries exactly undici's headers minus the non-allowlisted ones
 *   undici forwards (`x-api-key`, a custom header); `authorization` and `cookie` gone as in undici; `origin` and
 *   `referer` headers a caller set by hand stay home; a hop back to the first origin restores nothing.
 * - A stream body: 301/302/307/308 fail in all three (the library: `RetryExhaustedError`, cause a `TypeError`
 *   naming the stream), nothing sent past the first hop; a 303 follows as a bodiless GET in all three.
 * - Library follower replays a `Uint8Array`/`ArrayBuffer` body on a 307 where undici's own follower fails.
 * - `Location` values: spaces, raw UTF-8 and a Latin-1 byte (U+FFFD), backslashes (`\\host\x` to the other
 *   origin), protocol-relative, query-only, `../..`, leading spaces, a tab, `HTTP://`, `http:/path`,
 *   `http:host/…` (a path), `%zz`, an absolute URL with a fragment, two different `Location` headers: the same
 *   URL reached in all three. Two identical lines: undici goes to `/a,%20/a`, the library to `/a` (documented:
 *   "Several `Location` headers that say the same are one"). Fragment-only, empty and `http:` loop to the 21st hop; `data:`,
 *   `javascript:`, `ftp:`, `user:pass@`, an invalid URL: all three fail, the library with a `RetryExhaustedError`
 *   whose cause is a `TypeError`.
 * - 20 hops followed, the 21st redirect refused, a loop refused, with the same number of requests as undici; no
 *   redirect status without `Location`, 300/305/306/201 with one, is followed.
 * - `redirect: "manual"` (init and a `Request`'s own) answers undici's 302; `redirect: "error"` fails in all three.
 * - Referrer: the library sends each hop's `Referer` as the Referrer Policy standard says for all eight
 *   policies (where undici sends an origin under `no-referrer`, `no-referrer-when-downgrade` and a same-origin
 *   `origin-when-cross-origin`, and none under a same-origin `same-origin`: the documented deviation), and a
 *   redirect's `Referrer-Policy: no-referrer` removes it from the next hop.
 * - A degradation rewrite (`medium`) is replayed on a 307, same and cross origin, and dropped on a 302 POST, in both
 *   modes; a chain endpoint's 307 to another origin keeps the endpoint's own header home with the library follower.
 * - ky: `createClient` (library follower) sends every hop bare ky sends for a JSON POST 307 (same and cross).
 * - A `Request` input's signal aborted while a hop waits: the call rejects with the reason, the hop's server sees
 *   the connection closed.
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FetchLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

/** How a path answers: a status and `Location` lines (`{A}`, `{B}`, `{Bhost}` filled in), or a handler. */
type Route = { s: number; l?: string[]; h?: Record<string, string> } | ((hit: Hit) => void);
type Make = () => [RequestInfo | URL, RequestInit | undefined];

const fill = (t: string) => t.replaceAll("{A}", A.base).replaceAll("{B}", B.base).replaceAll("{Bhost}", B.host);
const blank = (t: string) =>
  t
    .replaceAll(A.base, "{A}")
    .replaceAll(B.base, "{B}")
    .replaceAll(B.host, "{Bhost}")
    .replace(/formdata-undici-\d+/g, "formdata-undici-N");

/** One request as a server got it: `A POST /to`, its body, and its headers sorted (host and connection left out). */
interface Seen {
  at: string;
  body: string;
  headers: Record<string, string>;
}
interface Outcome {
  hops: Seen[];
  result: string;
  type?: string;
}

function install(routes: Record<string, Route>, hops: Seen[]) {
  for (const [label, server] of [
    ["A", A],
    ["B", B],
  ] as const) {
    server.on((hit) => {
      const headers: Record<string, string> = {};
      for (const name of Object.keys(hit.headers).sort()) {
        if (name === "host" || name === "connection" || name === "keep-alive") continue;
        headers[name] = blank(String(hit.headers[name]));
      }
      hops.push({ at: `${label} ${hit.method} ${blank(hit.path)}`, body: blank(hit.body), headers });
      const route = routes[`${label}${hit.path}`];
      if (typeof route === "function") return route(hit);
      if (!route) {
        hit.res.writeHead(200, { "content-type": "text/plain" });
        return hit.res.end(`final ${label}${hit.path}`);
      }
      const lines: string[] = [];
      for (const l of route.l ?? []) lines.push("location", fill(l));
      for (const [k, v] of Object.entries(route.h ?? {})) lines.push(k, v);
      hit.res.writeHead(route.s, lines as unknown as Record<string, string>);
      hit.res.end(`redirect ${route.s}`);
    });
  }
}

/** The innermost cause's name and message, through `RetryExhaustedError` and fetch's `TypeError`. */
function failure(error: unknown): string {
  let e = error as { name?: string; message?: string; cause?: unknown };
  const names = [e?.name];
  while (e?.cause) {
    e = e.cause as typeof e;
    names.push(e?.name);
  }
  return `THROW ${names.join(" <- ")}: ${blank(String(e?.message))}`;
}

async function send(routes: Record<string, Route>, call: () => Promise<Response>): Promise<Outcome> {
  A.reset();
  B.reset();
  const hops: Seen[] = [];
  install(routes, hops);
  try {
    const r = await call();
    const copy = r.clone();
    const body = await r.text();
    return {
      hops,
      type: r.type,
      result: `${r.status} ${blank(r.url)} redirected=${r.redirected} ${blank(body)} clone=${blank(copy.url)},${copy.redirected},${copy.type}`,
    };
  } catch (error) {
    return { hops, result: failure(error) };
  }
}

const one = { retry: { maxAttempts: 1 } } as const;
const platformLayer = createResilience({ ...one, redirects: "platform" });
const libraryLayer = createResilience(one);
const bare: FetchLike = (input, init) => globalThis.fetch(input, init);

/** The same request three ways, one after the other. */
async function threeWays(routes: Record<string, Route>, make: Make) {
  const undici = await send(routes, () => bare(...make()));
  const platform = await send(routes, () => platformLayer.fetch(...make()));
  const library = await send(routes, () => libraryLayer.fetch(...make()));
  return { undici, platform, library };
}

/** Everything but `type`, which defect 2 is about. */
const sansType = (o: Outcome) => ({ hops: o.hops, result: o.result.replace(/,(basic|cors)$/, "") });

const creds = {
  authorization: "Bearer secret",
  cookie: "session=1",
  "x-api-key": "key",
  "idempotency-key": "ik-1",
  "x-custom": "v",
  "content-language": "fr",
  accept: "text/plain",
};

const bodies: Array<[string, () => RequestInit]> = [
  ["GET", () => ({ headers: creds })],
  ["HEAD", () => ({ method: "HEAD", headers: creds })],
  ["POST string", () => ({ method: "POST", headers: creds, body: "hello" })],
  ["POST JSON", () => ({ method: "POST", headers: { ...creds, "content-type": "application/json" }, body: '{"a":1}' })],
  [
    "POST FormData",
    () => {
      const form = new FormData();
      form.append("a", "1");
      return { method: "POST", headers: creds, body: form };
    },
  ],
  ["POST Blob", () => ({ method: "POST", headers: creds, body: new Blob(["blobby"], { type: "application/x-b" }) })],
  ["POST URLSearchParams", () => ({ method: "POST", headers: creds, body: new URLSearchParams({ q: "1" }) })],
  ["PUT", () => ({ method: "PUT", headers: creds, body: "put" })],
  ["DELETE", () => ({ method: "DELETE", headers: creds })],
];

describe("held: same-origin redirects, every status and body, hop for hop as undici", () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`${status}: platform and library send and answer what undici does`, async () => {
      for (const [name, init] of bodies) {
        const { undici, platform, library } = await threeWays({ "A/from": { s: status, l: ["/to"] } }, () => [
          `${A.base}/from`,
          init(),
        ]);
        expect(undici.hops.length, name).toBe(2);
        expect(undici.result, name).toMatch(/^200 \{A\}\/to redirected=true /);
        expect(platform, name).toEqual(undici);
        expect(library, name).toEqual(undici);
      }
    }, 20_000);
  }
});

describe("held: cross-origin redirects drop the documented headers and only those", () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`${status}: the other origin gets undici's headers minus the non-allowlisted ones undici forwards`, async () => {
      for (const [name, init] of bodies) {
        const { undici, platform, library } = await threeWays({ "A/from": { s: status, l: ["{B}/to"] } }, () => [
          `${A.base}/from`,
          init(),
        ]);
        expect(platform, name).toEqual(undici);
        const [first, second] = undici.hops;
        expect(second?.at, name).toMatch(/^B /);
        // undici drops the standard credentials itself…
        expect(second?.headers, name).not.toHaveProperty("authorization");
        expect(second?.headers, name).not.toHaveProperty("cookie");
        // …and forwards the rest, which the library keeps home (docs/retry.md "Redirects").
        const { "x-api-key": _key, "x-custom": _custom, ...allowed } = second?.headers ?? {};
        expect(library.hops, name).toEqual([first, { ...second, headers: allowed }]);
        expect(sansType(library).result, name).toBe(sansType(undici).result);
      }
    }, 20_000);
  }

  it("a hop back to the first origin restores nothing; hand-set origin and referer stay home", async () => {
    const routes: Record<string, Route> = {
      "A/from": { s: 307, l: ["{B}/mid"] },
      "B/mid": { s: 307, l: ["{A}/back"] },
    };
    const make: Make = () => [
      `${A.base}/from`,
      { method: "PUT", body: "x", headers: { ...creds, origin: "http://o.test", referer: "http://r.test/" } },
    ];
    const { undici, library } = await threeWays(routes, make);
    expect(undici.hops.map((h) => h.at)).toEqual(["A PUT /from", "B PUT /mid", "A PUT /back"]);
    expect(library.hops.map((h) => h.at)).toEqual(["A PUT /from", "B PUT /mid", "A PUT /back"]);
    for (const hop of library.hops.slice(1)) {
      expect(hop.body).toBe("x");
      expect(Object.keys(hop.headers)).toEqual([
        "accept",
        "accept-encoding",
        "accept-language",
        "content-language",
        "content-length",
        "content-type",
        "idempotency-key",
        "sec-fetch-mode",
        "user-agent",
      ]);
    }
    // undici itself sends the hand-set origin and referer on to B.
    expect(undici.hops[1]?.headers.origin).toBe("http://o.test");
  });
});

describe("held: bodies that cannot or can be sent again", () => {
  const streamed = (): RequestInit =>
    ({ method: "POST", body: new Blob(["streamed"]).stream(), duplex: "half" }) as RequestInit;

  it("a stream body fails 301/302/307/308 in all three, nothing sent past the first hop; a 303 follows as a GET", async () => {
    for (const status of [301, 302, 307, 308]) {
      const { undici, platform, library } = await threeWays({ "A/from": { s: status, l: ["/to"] } }, () => [
        `${A.base}/from`,
        streamed(),
      ]);
      for (const o of [undici, platform, library]) expect(o.hops.map((h) => h.at)).toEqual(["A POST /from"]);
      expect(undici.result).toMatch(/^THROW TypeError/);
      expect(library.result).toMatch(/^THROW RetryExhaustedError <- TypeError: .*its body is a stream, sent once$/);
    }
    const { undici, platform, library } = await threeWays({ "A/from": { s: 303, l: ["/to"] } }, () => [
      `${A.base}/from`,
      streamed(),
    ]);
    expect(undici.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A POST /from streamed", "A GET /to "]);
    expect(platform).toEqual(undici);
    expect(library).toEqual(undici);
  });

  it("the library follower replays bytes on a 307 where undici's own follower fails", async () => {
    const routes = { "A/from": { s: 307, l: ["/to"] } };
    for (const body of [() => new TextEncoder().encode("bytes"), () => new TextEncoder().encode("bytes").buffer]) {
      const { undici, library } = await threeWays(routes, () => [`${A.base}/from`, { method: "POST", body: body() }]);
      expect(undici.result).toMatch(/detached ArrayBuffer/);
      expect(library.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A POST /from bytes", "A POST /to bytes"]);
      expect(library.result).toMatch(/^200 /);
    }
  });
});

describe("held: odd Location values lead where undici goes", () => {
  const same: Array<[string, string[], string]> = [
    ["spaces", ["/a b"], "A GET /a%20b"],
    ["raw UTF-8", [Buffer.from("/café", "utf8").toString("latin1")], "A GET /caf%C3%A9"],
    ["a Latin-1 byte", [Buffer.from("/café", "latin1").toString("latin1")], "A GET /caf%EF%BF%BD"],
    ["backslashes to a host", ["\\\\{Bhost}\\x"], "B GET /x"],
    ["a backslash path", ["\\x\\y"], "A GET /x/y"],
    ["protocol-relative", ["//{Bhost}/pr"], "B GET /pr"],
    ["query only", ["?q=1"], "A GET /from?q=1"],
    ["dot segments", ["../../up"], "A GET /up"],
    ["leading spaces", ["  /lead"], "A GET /lead"],
    ["a tab", ["/t\tab"], "A GET /tab"],
    ["upper-case scheme", ["HTTP://{Bhost}/UP"], "B GET /UP"],
    ["http:/path", ["http:/path2"], "A GET /path2"],
    ["http:host (a path)", ["http:{Bhost}/hp"], "A GET /{Bhost}/hp"],
    ["bad percent", ["/%zz"], "A GET /%zz"],
    ["absolute with a fragment", ["{B}/abs#f"], "B GET /abs"],
    ["two different lines", ["/a", "/b"], "A GET /a,%20/b"],
  ];
  for (const [name, lines, reached] of same) {
    it(`${name}: ${reached}`, async () => {
      const { undici, platform, library } = await threeWays({ "A/from": { s: 302, l: lines } }, () => [
        `${A.base}/from`,
        { headers: { "x-api-key": "k" } },
      ]);
      expect(undici.hops[1]?.at).toBe(reached);
      expect(platform).toEqual(undici);
      expect(sansType(library).result).toBe(sansType(undici).result);
      expect(library.hops.map((h) => h.at)).toEqual(undici.hops.map((h) => h.at));
    });
  }

  it("two identical Location lines: undici goes to `/a,%20/a`, the library to `/a` (documented: they are one)", async () => {
    const { undici, platform, library } = await threeWays({ "A/from": { s: 302, l: ["/a", "/a"] } }, () => [
      `${A.base}/from`,
      {},
    ]);
    expect(undici.hops[1]?.at).toBe("A GET /a,%20/a");
    expect(platform).toEqual(undici);
    expect(library.hops[1]?.at).toBe("A GET /a");
  });

  it("fragment-only, empty and `http:` loop to the 21st redirect; bad schemes, userinfo and invalid URLs fail", async () => {
    for (const loc of ["#frag", "", "http:"]) {
      const { undici, platform, library } = await threeWays({ "A/from": { s: 302, l: [loc] } }, () => [
        `${A.base}/from`,
        {},
      ]);
      expect(undici.hops.length, loc).toBe(21);
      expect(platform.hops.length, loc).toBe(21);
      expect(library.hops.length, loc).toBe(21);
      expect(library.result, loc).toMatch(/^THROW RetryExhaustedError <- TypeError: .*more than 20 redirects/);
    }
    for (const loc of [
      "data:text/plain,hi",
      "javascript:alert(1)",
      "ftp://x/",
      "http://u:p@{Bhost}/x",
      "http://[bad",
    ]) {
      const { undici, platform, library } = await threeWays({ "A/from": { s: 302, l: [loc] } }, () => [
        `${A.base}/from`,
        {},
      ]);
      for (const o of [undici, platform, library]) expect(o.hops.length, loc).toBe(1);
      expect(undici.result, loc).toMatch(/^THROW TypeError/);
      expect(library.result, loc).toMatch(/^THROW RetryExhaustedError <- TypeError: resilience\.fetch: a redirect/);
      expect(library.result, loc).not.toContain("u:p");
    }
  });
});

describe("held: hop limit, loops, statuses that are not followed, manual and error", () => {
  const chain = (n: number) => {
    const routes: Record<string, Route> = {};
    for (let i = 0; i < n; i++) routes[`A/c${i}`] = { s: 302, l: [`/c${i + 1}`] };
    return routes;
  };

  it("20 hops followed, the 21st redirect refused, a loop refused: as many requests as undici", async () => {
    const twenty = await threeWays(chain(20), () => [`${A.base}/c0`, {}]);
    expect(twenty.undici.result).toMatch(/^200 \{A\}\/c20 redirected=true/);
    expect(twenty.platform).toEqual(twenty.undici);
    expect(twenty.library).toEqual(twenty.undici);
    const over = await threeWays(chain(21), () => [`${A.base}/c0`, {}]);
    expect(over.undici.hops.length).toBe(21);
    expect(over.library.hops).toEqual(over.undici.hops);
    expect(over.library.result).toMatch(/^THROW RetryExhaustedError <- TypeError: .*more than 20 redirects/);
    const loop = await threeWays({ "A/l": { s: 307, l: ["/l"] } }, () => [`${A.base}/l`, {}]);
    expect(loop.library.hops).toEqual(loop.undici.hops);
  });

  it("no Location, or a status that is no redirect, is answered as it is", async () => {
    for (const [s, l] of [
      [302, []],
      [300, ["/to"]],
      [305, ["/to"]],
      [306, ["/to"]],
      [201, ["/to"]],
    ] as const) {
      const { undici, platform, library } = await threeWays({ "A/from": { s, l: [...l] } }, () => [
        `${A.base}/from`,
        {},
      ]);
      expect(undici.result).toMatch(new RegExp(`^${s} \\{A\\}/from redirected=false`));
      expect(platform).toEqual(undici);
      expect(library).toEqual(undici);
    }
  });

  it('redirect: "manual" answers the 302; redirect: "error" fails in all three', async () => {
    const routes = { "A/from": { s: 302, l: ["/to"] } };
    const manual = await threeWays(routes, () => [`${A.base}/from`, { redirect: "manual", headers: creds }]);
    expect(manual.undici.result).toMatch(/^302 \{A\}\/from redirected=false/);
    expect(manual.platform).toEqual(manual.undici);
    expect(manual.library).toEqual(manual.undici);
    const own = await threeWays(routes, () => [new Request(`${A.base}/from`, { redirect: "manual" }), undefined]);
    expect(own.library).toEqual(own.undici);
    const error = await threeWays(routes, () => [`${A.base}/from`, { redirect: "error" }]);
    expect(error.undici.result).toMatch(/^THROW TypeError/);
    expect(error.library.hops).toEqual(error.undici.hops);
    expect(error.library.result).toMatch(/^THROW RetryExhaustedError <- TypeError/);
  });
});

describe("held: the referrer of each hop, as the Referrer Policy standard says (undici's deviations documented)", () => {
  const full = "{A}/page?x=1";
  const origin = "{A}/";
  // [first request, hop to the same origin, hop to the other origin]
  const table: Array<[ReferrerPolicy, Array<string | undefined>]> = [
    ["no-referrer", [undefined, undefined, undefined]],
    ["no-referrer-when-downgrade", [full, full, full]],
    ["origin", [origin, origin, origin]],
    ["origin-when-cross-origin", [full, full, origin]],
    ["same-origin", [full, full, undefined]],
    ["strict-origin", [origin, origin, origin]],
    ["strict-origin-when-cross-origin", [full, full, origin]],
    ["", [full, full, origin]],
    ["unsafe-url", [full, full, full]],
  ];
  for (const [policy, [first, same, cross]] of table) {
    it(`${policy || "(default)"}`, async () => {
      const make = (): [string, RequestInit] => [
        `${A.base}/from`,
        { referrer: `${A.base}/page?x=1`, referrerPolicy: policy },
      ];
      const toSame = await threeWays({ "A/from": { s: 302, l: ["/to"] } }, make);
      expect(toSame.library.hops.map((h) => h.headers.referer)).toEqual([first, same]);
      const toOther = await threeWays({ "A/from": { s: 302, l: ["{B}/to"] } }, make);
      expect(toOther.library.hops.map((h) => h.headers.referer)).toEqual([first, cross]);
    });
  }

  it("undici sends the origin under no-referrer-when-downgrade without a downgrade (the documented reason)", async () => {
    const { undici } = await threeWays({ "A/from": { s: 302, l: ["/to"] } }, () => [
      `${A.base}/from`,
      { referrer: `${A.base}/page?x=1`, referrerPolicy: "no-referrer-when-downgrade" },
    ]);
    expect(undici.hops.map((h) => h.headers.referer)).toEqual(["{A}/", "{A}/"]);
  });

  it("a redirect's Referrer-Policy rules the next hop", async () => {
    const { library } = await threeWays(
      { "A/from": { s: 302, l: ["/to"], h: { "referrer-policy": "no-referrer" } } },
      () => [`${A.base}/from`, { referrer: `${A.base}/page?x=1` }],
    );
    expect(library.hops.map((h) => h.headers.referer)).toEqual(["{A}/page?x=1", undefined]);
  });
});

describe("held: rewrites, chains, ky and a Request's signal on the library follower", () => {
  it("a degradation rewrite is replayed on a 307 (same and cross origin) and dropped on a 302, in both modes", async () => {
    for (const redirects of ["library", "platform"] as const) {
      const layer = createResilience({ ...one, redirects, degradation: degradation({}) });
      layer.degradation.setLevel("medium");
      const post = (): Promise<Response> =>
        layer.fetch(`${A.base}/gen`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "a" },
          body: JSON.stringify({ steps: 50, quality: 1 }),
        });
      const rewritten = '{"steps":30,"quality":0.8}';
      const same = await send({ "A/gen": { s: 307, l: ["/gen2"] } }, post);
      expect(same.hops.map((h) => `${h.at} ${h.body}`)).toEqual([
        `A POST /gen ${rewritten}`,
        `A POST /gen2 ${rewritten}`,
      ]);
      const cross = await send({ "A/gen": { s: 307, l: ["{B}/gen2"] } }, post);
      expect(cross.hops.map((h) => `${h.at} ${h.body}`)).toEqual([
        `A POST /gen ${rewritten}`,
        `B POST /gen2 ${rewritten}`,
      ]);
      expect(cross.hops[1]?.headers["content-type"]).toBe("application/json");
      const get = await send({ "A/gen": { s: 302, l: ["/gen2"] } }, post);
      expect(get.hops.map((h) => `${h.at} ${h.body}`)).toEqual([`A POST /gen ${rewritten}`, "A GET /gen2 "]);
      expect(get.hops[1]?.headers).not.toHaveProperty("content-type");
    }
  });

  it("a chain endpoint's 307 to another origin keeps the endpoint's own header home", async () => {
    const layer = createResilience({
      ...one,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "e1", url: `${A.base}/ep`, headers: { "x-endpoint-key": "ek" } },
            { name: "e2", url: `${B.base}/ep2` },
          ],
        },
      ]),
    });
    const out = await send({ "A/ep/job": { s: 307, l: ["{B}/moved"] } }, () =>
      layer.fetch(`${A.base}/ep/job`, {
        method: "POST",
        headers: { authorization: "a", "idempotency-key": "k" },
        body: "job",
      }),
    );
    expect(out.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A POST /ep/job job", "B POST /moved job"]);
    expect(out.hops[0]?.headers["x-endpoint-key"]).toBe("ek");
    expect(out.hops[1]?.headers).not.toHaveProperty("x-endpoint-key");
    expect(out.hops[1]?.headers).not.toHaveProperty("authorization");
    expect(out.hops[1]?.headers["idempotency-key"]).toBe("k");
    expect(out.result).toMatch(/^200 \{B\}\/moved redirected=true/);
  });

  it("ky through createClient sends every hop bare ky sends (JSON POST 307, same and cross origin)", async () => {
    for (const to of ["/k2", "{B}/k2"]) {
      const routes = { "A/k": { s: 307, l: [to] } };
      const opts = { json: { a: 1 }, headers: { accept: "application/json" } };
      const plain = await send(routes, () => ky.create({ fetch: bare, retry: 0 }).post(`${A.base}/k`, opts));
      const client = await send(routes, () => createClient({ resilience: one }).post(`${A.base}/k`, opts));
      expect(plain.hops.length).toBe(2);
      expect(client.hops).toEqual(plain.hops);
      expect(sansType(client).result).toBe(sansType(plain).result);
    }
  });

  it("a Request's signal aborted while a hop waits rejects with the reason and closes the hop", async () => {
    let closed: Promise<void> | undefined;
    const controller = new AbortController();
    const routes: Record<string, Route> = {
      "A/s": { s: 307, l: ["{B}/slow"] },
      "B/slow": (hit) => {
        closed = hit.closed;
        controller.abort(new Error("stop"));
      },
    };
    const out = await send(routes, () =>
      libraryLayer.fetch(new Request(`${A.base}/s`, { method: "PUT", body: "sig", signal: controller.signal })),
    );
    expect(out.result).toBe("THROW Error: stop");
    expect(out.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A PUT /s sig", "B PUT /slow sig"]);
    await closed;
  });
});

describe("defects", () => {
  it('1. redirects: "platform": a Request input with a body follows a 307/308 as bare fetch does (and ky too)', async () => {
    const routes = { "A/from": { s: 307, l: ["/to"] } };
    const make: Make = () => [
      new Request(`${A.base}/from`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
      undefined,
    ];
    const { undici, platform } = await threeWays(routes, make);
    expect(undici.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A POST /from {}", "A POST /to {}"]);
    // Observed: "THROW RetryExhaustedError <- TypeError <- TypeError: Cannot perform ArrayBuffer.prototype.slice on a detached ArrayBuffer".
    expect(platform).toEqual(undici);
    const viaKy = await send({ "A/k": { s: 308, l: ["/k2"] } }, () =>
      createClient({ resilience: { ...one, redirects: "platform" } }).put(`${A.base}/k`, { body: "text" }),
    );
    expect(viaKy.hops.map((h) => `${h.at} ${h.body}`)).toEqual(["A PUT /k text", "A PUT /k2 text"]);
  });

  it('2. library follower: a response reached through another origin has type "cors", as undici\'s', async () => {
    const { undici, platform, library } = await threeWays({ "A/from": { s: 302, l: ["{B}/to"] } }, () => [
      `${A.base}/from`,
      {},
    ]);
    expect(undici.type).toBe("cors");
    expect(platform.type).toBe("cors");
    expect(undici.result).toMatch(/,cors$/);
    // Observed: "basic" (and "basic" on clone()).
    expect(library.type).toBe("cors");
    expect(library.result).toBe(undici.result);
  });
});
