/**
 * Outside-in attack on `resilience.fetch` as a drop-in `fetch`, differentially: every call shape sent through the
 * platform's own `fetch` and through the layer, against a real server that records what arrived.
 * Docs: README.md "A drop-in `fetch`", "make one layer and call its `fetch` as you would call `fetch`",
 * "`resilience.fetch` is a bound `(input, init) => Promise<Response>`, so it drops into anything that takes a
 * custom fetch", "It resolves with a response, even a 503, as `fetch` would"; JSDoc of `Resilience.fetch` "A bound,
 * fetch-compatible function"; docs/retry.md "Fetch semantics are kept", "Bodies" ("Strings, bytes, `Blob`, `FormData`
 * and `URLSearchParams` bodies are taken as they are when the call is made, as fetch takes them", "a `Request` input's
 * body is read into bytes once and replayed", "A number or boolean body goes as its text, as fetch sends it",
 * "`duplex: "half"` is added for stream bodies where the caller left it out", "Every field of the caller's `init`
 * (`redirect`, `credentials`, `cache`, `mode`, `keepalive`, `referrer`, `referrerPolicy`, `integrity`, `priority`,
 * `duplex` …) reaches the transport on every path", "A method goes as fetch normalises it, on every path alike",
 * "The caller's own mistakes reject at once with a `TypeError`, before any timer starts, and are never retried nor
 * counted against the host's breaker: an invalid URL …, a header name or value that is not valid …"), "Redirects"
 * ("`integrity`, which is checked on the final answer as fetch checks it", "Node's fetch applies some policies
 * wrongly"); SECURITY.md "The caller's mistakes never trip a breaker"; docs/fallback.md ("The rest of the path and
 * the query are rebased onto each endpoint's `url` … and the body is replayed", "A body sent once … goes to one
 * endpoint only"); docs/degradation.md (query rules, "the other query parameters, stay as you wrote them").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation); one node:http server on
 * 127.0.0.1 (test/helpers/http-upstream.ts) recording method, path and query, raw header lines and body bytes; the
 * global `fetch` (Node's undici) as the reference. A corpus of about 140 call shapes (URL strings in odd forms, URL
 * objects, `Request`s built every way with every body kind, `Request` + `init` overrides, header forms, body kinds,
 * methods in odd case, every `init` field, bad input) is sent both ways; compared: what arrived (method, path,
 * every header line, body bytes; a multipart boundary, random per send, masked) and what the caller got (status,
 * statusText, headers but `date`, body, `url`, `redirected`, `type`, the same on a `clone()`, whether the headers
 * can be changed), or the rejection's class.
 * Paths: plain call; a fallback chain whose first endpoint serves; a fallback chain whose first endpoint answers 503
 * so the second (same origin, another path) serves the rebased request; a degradation rewrite (a `steps` query rule
 * at level `medium`, `steps=50` sent as `steps=30`); the library's redirect follower (301/302/303/307 hops, `manual`).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: refused headers are the caller's mistake, URL-text inputs are sent, an integrity-checked answer keeps fetch's immutable headers):
 * 1. SECURITY.md "The caller's mistakes never trip a breaker"; docs/retry.md "The caller's own mistakes reject at
 *    once with a `TypeError`, before any timer starts, and are never retried nor counted against the host's
 *    breaker: … a header name or value that is not valid". Observed: a header Node's fetch refuses before sending
 *    (`keep-alive`, `transfer-encoding`, `upgrade`, `expect`, `connection: upgrade`, a `content-length` that is no
 *    number or does not match the body; plain `fetch` rejects each at once with `TypeError: fetch failed`, cause
 *    undici's `InvalidArgumentError` "invalid keep-alive header" …, nothing reaches the server) goes through the
 *    layer as a network failure: a GET or PUT is retried (3 attempts, nothing sent by any; a keyless POST once),
 *    rejects with `RetryExhaustedError`, and each attempt counts against the host's breaker: four such calls (a Node
 *    proxy that forwards a client's `keep-alive` or `transfer-encoding: chunked` headers, the hop-by-hop headers the
 *    Worker proxy strips) open the breaker of a healthy host, and the next well-formed call is refused with
 *    `CircuitOpenError`, nothing sent (`health()`: open, "12 failures in a row (last: TypeError)", for
 *    `breaker.timeout`). Mechanism: src/http/request/check-request.ts `snapshotHeaders`/`checkValue` only refuse what
 *    the `Headers` grammar refuses (control characters, bytes past U+00FF); undici's dispatcher refuses these names and
 *    values when the request is dispatched, with the `TypeError` every network error has, which
 *    src/http/send/send-attempt.ts then counts as a failure of the host.
 * 2. README.md "A drop-in `fetch`" / "call its `fetch` as you would call `fetch`"; docs/retry.md lists as the
 *    caller's mistakes "an invalid URL or port …", no other kind of input. Observed: an input fetch turns into its
 *    URL string (a `String` object, any object with a `toString`, such as a URL class of another library or
 *    realm) is refused with `TypeError: resilience.fetch(input): expected a URL string, URL or Request, got
 *    String`, where plain `fetch` stringifies it (WebIDL `USVString`) and sends the request. Mechanism:
 *    src/http/resilient-fetch.ts `startCall`: `typeof input === "string" ? … : input instanceof URL ? … :
 *    request?.url`, else the `TypeError`.
 * 3. docs/retry.md "`integrity`, which is checked on the final answer as fetch checks it"; README.md "A drop-in
 *    `fetch`". Observed: a call with a matching `integrity` (plain, chain or rewrite path; the library follows
 *    redirects in Node, so it checks every such call itself) resolves with a `Response` whose headers can be
 *    changed (`res.headers.set("x", "1")` succeeds and shows in `res.headers`), where fetch's own answer, the one
 *    plain `fetch` gives for the same call, has immutable headers (`TypeError: immutable`). Mechanism:
 *    src/http/send/integrity.ts `checkIntegrity` answers with `new Response(bytes, { status, statusText, headers
 *    })`, whose headers guard is "response", not fetch's "immutable".
 *
 * Held (plain `it`):
 * - URL forms (a URL object, a fragment, spaces around, a tab inside the scheme, an upper-case scheme, dot segments,
 *   a non-ASCII and spaced query, a backslash, `127.1`, `0x7f.0.0.1`, a port with a leading zero, a trailing-dot
 *   host): what arrives and what the caller gets are fetch's, on the plain, both chain and the rewrite paths.
 * - Methods (`get`, `Post`, `pAtch` sent as written, `purge`, `M-SEARCH`, `delete`, `options`, `head`) and header forms
 *   (`Headers`, pairs repeating a name in two casings, a record with `X-A` and `x-a`, a `Map`, a generator, a `Set`
 *   pair, an array-like record, values with spaces around, empty, a number, `undefined`, Latin-1; `host`,
 *   `connection: close`, `te`, `cookie`/`origin`/`referer`, `accept-encoding`, `user-agent`, a custom
 *   `content-type`, a correct `content-length`): the same request on every path.
 * - Bodies (string, empty string, `Uint8Array`, a subarray, `Uint16Array`, `Float64Array`, a `BigInt64Array`
 *   subarray, a `DataView` window, `ArrayBuffer` (empty too), `Buffer`, typed/untyped/sliced/empty `Blob`, `File`,
 *   `FormData` with a file (and empty), `URLSearchParams` (and empty), a `duplex` stream, an async iterable, a
 *   number, a boolean, a bigint, a plain object, an array, `null`, a 3 MB string, a body on DELETE and OPTIONS): the
 *   same bytes and headers arrive (one-shot bodies on the paths that send them once).
 * - `Request` inputs (GET, string/bytes/Blob/FormData/URLSearchParams/empty bodies, lower-case `post`/`patch`, a
 *   `Request` of a `Request`, a clone, a `Request` from a URL object, a 3 MB body, its own `content-type` over the
 *   body's; `init` replacing headers (also with `{}`), method, body, `body: null`, `undefined` members, `keepalive`,
 *   `signal: null` over an aborted own signal; own `keepalive`, `cache` no-store/reload/no-cache, `referrer` (URL,
 *   empty), `referrerPolicy`, `mode: "no-cors"`, `credentials`, `redirect: "manual"`), an `init` that is itself a
 *   `Request`: the same request arrives, the same answer.
 * - `init` fields: `redirect: "manual"` (against a 307), `credentials`, `keepalive` (GET and POST), a live and a
 *   `null` signal, `duplex` on a GET, `referrer` (cross-origin URL, same-origin URL, empty, `about:client`),
 *   `referrerPolicy: "origin"`, `cache`, `mode: "same-origin"`, `priority`, `window: null`, an unknown field.
 * - Redirects the library follows: 307 POST (body and headers replayed), 302 POST (GET, body headers dropped), 303
 *   after a `Request` PUT, `redirect: "manual"`, a `referrer` across a hop: the same hops arrive, the same answer
 *   with `redirected: true` and the last URL, on a `clone()` too.
 * - Bad input: the same class (`TypeError`) from both for a relative or empty URL, no input, `init` a string, a
 *   `GET`/`HEAD` with a body, `TRACE`, an empty method, `"GET "`, a bad header name, CR or a control character in a
 *   value, a 3-item pair, a symbol key, a symbol body, a used `Request`, `init` + `Request` turning a POST into a GET,
 *   `headers: null`, `redirect`, `cache` or `referrerPolicy` values fetch does not know, `mode: "navigate"`,
 *   `PUT` in `no-cors`, `only-if-cached`, `window: 1`, a relative or invalid `referrer`, `duplex: "full"`, a keepalive
 *   stream, a signal that is no `AbortSignal`; `about:`, `file:`, `ws:` URLs; an aborted signal rejects with its reason.
 * - The divergences the docs state: a stream body without `duplex` is sent (fetch refuses it); a `Request` built on a
 *   stream arrives with a `content-length` (read into bytes; fetch sends it chunked); `referrerPolicy:
 *   "no-referrer"` sends no `Referer` where Node's fetch sends the referrer's origin; an `integrity` mismatch rejects
 *   with `RetryExhaustedError` whose cause is a `TypeError` (fetch: that `TypeError`); a port fetch will not dial
 *   (6000) and `redirect: "error"` meeting a 307 are a `RetryExhaustedError` (fetch: a `TypeError`); `data:` URLs go
 *   to fetch as they are.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, isResilienceError } from "../../src/index.ts";
import { type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const api = httpUpstream();
serveDuringFile(api);

/** `sha256` of "ok", the body every success carries. */
const OK_SRI = "sha256-Jok2eyBcFs4y7UIAlCuLix4mLfxw2byfvHfElpmk8d8=";

function answer(server: HttpUpstream): void {
  server.on((h) => {
    if (h.path.startsWith("/fail")) {
      h.res.statusCode = 503;
      h.res.end("no");
      return;
    }
    for (const status of [301, 302, 303, 307]) {
      if (h.path.includes(`/r${status}`)) {
        h.res.writeHead(status, { location: "/landed" });
        h.res.end();
        return;
      }
    }
    h.res.setHeader("set-cookie", ["a=1", "b=2"]);
    h.res.setHeader("x-a", "1");
    h.res.end("ok");
  });
}

type Fetch = (input: unknown, init?: unknown) => Promise<Response>;
type Shape = (url: string) => [unknown, unknown?];

/** What one request looked like on arrival; a multipart boundary, random per send, masked. */
interface Arrival {
  method: string;
  path: string;
  lines: string[];
  body: string;
}

const mask = (text: string) => text.replace(/-{4,}[\w-]+/g, "--BOUNDARY");

function arrivals(server: HttpUpstream): Arrival[] {
  return server.hits
    .filter((h) => !h.path.startsWith("/fail"))
    .map((h) => {
      const lines: string[] = [];
      const raw = h.req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]?.toLowerCase()}: ${mask(raw[i + 1] ?? "")}`);
      return { method: h.method, path: h.path, lines: lines.sort(), body: mask(h.bytes.toString("latin1")) };
    });
}

/** What the caller got: the answer as fetch reports it, or the rejection's class. */
async function got(call: () => Promise<Response>): Promise<Record<string, unknown>> {
  try {
    const res = await call();
    let headersFrozen = true;
    try {
      res.headers.set("x-probe", "1");
      headersFrozen = false;
    } catch {}
    const copy = res.clone();
    return {
      status: res.status,
      statusText: res.statusText,
      headers: [...res.headers].filter(([name]) => name !== "date"),
      body: await res.text(),
      url: res.url,
      redirected: res.redirected,
      type: res.type,
      headersFrozen,
      clone: [copy.url, copy.redirected, copy.type],
    };
  } catch (error) {
    return { rejects: (error as Error)?.constructor?.name };
  }
}

async function exchange(send: Fetch, [input, init]: [unknown, unknown?], hasInit: boolean) {
  api.reset();
  answer(api);
  const outcome = await got(() => (hasInit ? send(input, init) : send(input)));
  // A stream body may still be arriving when a rejection settles: one tick for the server's record.
  await new Promise((resolve) => setTimeout(resolve, 2));
  return { outcome, arrived: arrivals(api) };
}

/** The layers of each path, made once the server has its port. */
function paths(base: string) {
  const once = { retry: { maxAttempts: 1 }, breaker: false as const, budget: false as const };
  const plain = createResilience(once);
  const chains = createResilience({
    ...once,
    fallback: fallback([
      {
        name: "first",
        endpoints: [
          { name: "one", url: `${base}/one` },
          { name: "two", url: `${base}/two` },
        ],
      },
      {
        name: "second",
        endpoints: [
          { name: "down", url: `${base}/fail` },
          { name: "up", url: `${base}/ok` },
        ],
      },
    ]),
  });
  const rewrite = createResilience({
    ...once,
    degradation: degradation({ rules: [{ match: `${base}/dg`, params: { steps: { query: "steps" } } }] }),
  });
  rewrite.degradation?.setLevel("medium");
  return [
    { path: "plain", send: plain.fetch as Fetch, sent: `${base}/p?q=1`, reached: `${base}/p?q=1`, oneShot: true },
    {
      path: "chain",
      send: chains.fetch as Fetch,
      sent: `${base}/one/c?q=1`,
      reached: `${base}/one/c?q=1`,
      oneShot: true,
    },
    {
      path: "fallback",
      send: chains.fetch as Fetch,
      sent: `${base}/fail/c?q=1`,
      reached: `${base}/ok/c?q=1`,
      oneShot: false,
    },
    {
      path: "rewrite",
      send: rewrite.fetch as Fetch,
      sent: `${base}/dg/x?steps=50`,
      reached: `${base}/dg/x?steps=30`,
      oneShot: true,
    },
  ];
}

/**
 * Sends each shape through fetch (to the URL the layer's request ends at) and through the layer on each path, and
 * lists every difference, as `shape [path]`.
 */
async function differences(shapes: Record<string, Shape>, opts: { oneShot?: boolean; only?: string[] } = {}) {
  const found: Record<string, unknown> = {};
  for (const { path, send, sent, reached, oneShot } of paths(api.base)) {
    if (opts.only && !opts.only.includes(path)) continue;
    if (opts.oneShot && !oneShot) continue;
    for (const [name, shape] of Object.entries(shapes)) {
      const reference = shape(reached);
      const ref = await exchange(fetch as Fetch, reference, reference.length > 1);
      const given = shape(sent);
      const mine = await exchange(send, given, given.length > 1);
      const text = JSON.stringify(mine).replaceAll(sent, reached);
      if (text !== JSON.stringify(ref)) found[`${name} [${path}]`] = { fetch: ref, layer: JSON.parse(text) };
    }
  }
  return found;
}

function stream(text = "stream-body"): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

function form(): FormData {
  const f = new FormData();
  f.append("a", "1");
  f.append("f", new Blob(["xyz"], { type: "image/png" }), "x.png");
  return f;
}

const at = (url: string, hop: string) => url.replace(/(\/\/[^/]+\/[^/?]*)/, `$1/${hop}`);

describe("the same call through fetch and through the layer", () => {
  it("URL forms reach the same place and answer the same", async () => {
    const shapes: Record<string, Shape> = {
      string: (u) => [u],
      "URL object": (u) => [new URL(u)],
      fragment: (u) => [`${u}#frag`],
      "spaces around": (u) => [`  ${u}\n `],
      "tab in scheme": (u) => [u.replace("://", ":\t//")],
      "upper-case scheme": (u) => [u.replace("http", "HTTP")],
      "dot segments": (u) => [u.replace(/(\/\/[^/]+)\//, "$1/a/../")],
      "non-ASCII query": (u) => [`${u}&z=a b&é=ü`],
      backslash: (u) => [u.replace(/(\/\/[^/]+)\//, "$1\\")],
      "127.1": (u) => [u.replace("127.0.0.1", "127.1")],
      "hex IPv4": (u) => [u.replace("127.0.0.1", "0x7f.0.0.1")],
      "port with leading zero": (u) => [u.replace(/:(\d+)\//, ":0$1/")],
      "trailing-dot host": (u) => [u.replace("127.0.0.1", "127.0.0.1.")],
      "null init": (u) => [u, null],
      "array init": (u) => [u, []],
    };
    expect(await differences(shapes)).toEqual({});
  });

  it("methods in odd case and header forms arrive the same", async () => {
    const shapes: Record<string, Shape> = {
      get: (u) => [u, { method: "get" }],
      Post: (u) => [u, { method: "Post", body: "hi" }],
      pAtch: (u) => [u, { method: "pAtch", body: "hi" }],
      purge: (u) => [u, { method: "purge" }],
      "M-SEARCH": (u) => [u, { method: "M-SEARCH" }],
      delete: (u) => [u, { method: "delete" }],
      options: (u) => [u, { method: "options" }],
      head: (u) => [u, { method: "head" }],
      Headers: (u) => [u, { headers: new Headers({ "X-Key": "k", Accept: "a/b" }) }],
      "pairs, one name in two casings": (u) => [
        u,
        {
          headers: [
            ["X-D", "1"],
            ["x-d", "2"],
            ["X-D", "3"],
          ],
        },
      ],
      "record X-A and x-a": (u) => [u, { headers: { "X-A": "1", "x-a": "2" } }],
      Map: (u) => [u, { headers: new Map([["x-m", "1"]]) }],
      generator: (u) => [
        u,
        {
          headers: (function* () {
            yield ["x-g", "1"];
            yield ["x-g", "2"];
          })(),
        },
      ],
      "Set pair": (u) => [u, { headers: [new Set(["x-s", "1"])] }],
      "array-like record": (u) => [u, { headers: { 0: ["x", "1"], length: 1 } }],
      "spaces around a value": (u) => [u, { headers: { "x-s": "  v  v \t" } }],
      "empty value": (u) => [u, { headers: { "x-e": "" } }],
      "number value": (u) => [u, { headers: { "x-n": 5 } }],
      "undefined value": (u) => [u, { headers: { "x-u": undefined } }],
      "Latin-1 value": (u) => [u, { headers: { "x-l": "café" } }],
      host: (u) => [u, { headers: { host: "example.com" } }],
      "connection: close": (u) => [u, { headers: { connection: "close" } }],
      te: (u) => [u, { headers: { te: "trailers" } }],
      "cookie, origin, referer": (u) => [u, { headers: { cookie: "c=1", origin: "http://x", referer: "http://x/y" } }],
      "accept-encoding": (u) => [u, { headers: { "accept-encoding": "identity" } }],
      "user-agent": (u) => [u, { headers: { "user-agent": "me" } }],
      "custom content-type": (u) => [u, { method: "POST", body: "x", headers: { "content-type": "application/json" } }],
      "correct content-length": (u) => [u, { method: "POST", body: "abc", headers: { "content-length": "3" } }],
    };
    expect(await differences(shapes)).toEqual({});
  });

  it("every body kind arrives as the same bytes and headers", async () => {
    const post =
      (body: unknown): Shape =>
      (u) => [u, { method: "POST", body }];
    const replayable: Record<string, Shape> = {
      string: post("héllo"),
      "empty string": post(""),
      Uint8Array: (u) => post(new Uint8Array([1, 2, 3]))(u),
      subarray: (u) => post(new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4))(u),
      Uint16Array: (u) => post(new Uint16Array([0x4142, 0x4344]))(u),
      Float64Array: (u) => post(new Float64Array([1.5]))(u),
      "BigInt64Array subarray": (u) => post(new BigInt64Array([1n, 2n]).subarray(1))(u),
      "DataView window": (u) => post(new DataView(new Uint8Array([65, 66, 67, 68]).buffer, 1, 2))(u),
      ArrayBuffer: (u) => post(new Uint8Array([65, 66]).buffer)(u),
      "empty ArrayBuffer": (u) => post(new ArrayBuffer(0))(u),
      Buffer: (u) => post(Buffer.from("buf"))(u),
      "typed Blob": (u) => post(new Blob(["b"], { type: "Text/Weird; X=1" }))(u),
      "untyped Blob": (u) => post(new Blob(["b"]))(u),
      "sliced Blob": (u) => post(new Blob(["abcdef"], { type: "a/b" }).slice(1, 3))(u),
      "empty Blob on PUT": (u) => [u, { method: "PUT", body: new Blob([]) }],
      File: (u) => post(new File(["f"], "f.txt", { type: "text/plain" }))(u),
      FormData: (u) => post(form())(u),
      "empty FormData": (u) => post(new FormData())(u),
      URLSearchParams: (u) => post(new URLSearchParams({ a: "1 2", b: "é" }))(u),
      "empty URLSearchParams": (u) => post(new URLSearchParams())(u),
      number: post(42),
      boolean: post(false),
      bigint: post(10n),
      null: post(null),
      "3 MB string": post("x".repeat(3_000_000)),
      "DELETE with a body": (u) => [u, { method: "DELETE", body: "d" }],
      "OPTIONS with a body": (u) => [u, { method: "OPTIONS", body: "o" }],
      "JSON with its type": (u) => [
        u,
        { method: "POST", body: JSON.stringify({ steps: 50 }), headers: { "content-type": "application/json" } },
      ],
    };
    expect(await differences(replayable)).toEqual({});
    // Sent once (docs/retry.md), so not down the chain that falls back: the other paths send them as fetch does.
    const oneShot: Record<string, Shape> = {
      "stream with duplex": (u) => [u, { method: "POST", body: stream(), duplex: "half" }],
      "async iterable": (u) => [
        u,
        {
          method: "POST",
          body: (async function* () {
            yield new TextEncoder().encode("it");
          })(),
          duplex: "half",
        },
      ],
      "plain object": post({ a: 1 }),
      array: post([1, 2]),
    };
    expect(await differences(oneShot, { oneShot: true })).toEqual({});
  });

  it("Request inputs built every way, with init over them, arrive the same", async () => {
    const shapes: Record<string, Shape> = {
      GET: (u) => [new Request(u)],
      "string body": (u) => [new Request(u, { method: "POST", body: "rq", headers: { "x-r": "1" } })],
      "lower-case post": (u) => [new Request(u, { method: "post", body: "rq" })],
      "lower-case patch": (u) => [new Request(u, { method: "patch", body: "rq" })],
      bytes: (u) => [new Request(u, { method: "PUT", body: new Uint8Array([1, 2]) })],
      "typed Blob": (u) => [new Request(u, { method: "POST", body: new Blob(["b"], { type: "x/y" }) })],
      FormData: (u) => [new Request(u, { method: "POST", body: form() })],
      URLSearchParams: (u) => [new Request(u, { method: "POST", body: new URLSearchParams("a=1") })],
      "empty body": (u) => [new Request(u, { method: "POST", body: "" })],
      "3 MB body": (u) => [new Request(u, { method: "POST", body: "y".repeat(3_000_000) })],
      "own content-type over the body's": (u) => [
        new Request(u, { method: "POST", body: new URLSearchParams("a=1"), headers: { "content-type": "text/x" } }),
      ],
      "Request of a Request": (u) => [new Request(new Request(u, { method: "POST", body: "rr" }))],
      clone: (u) => [new Request(u, { method: "POST", body: "cl" }).clone()],
      "from a URL object": (u) => [new Request(new URL(u), { method: "DELETE" })],
      "init headers": (u) => [
        new Request(u, { method: "POST", body: "x", headers: { "x-r": "1" } }),
        { headers: { "x-i": "2" } },
      ],
      "init headers {}": (u) => [new Request(u, { method: "POST", body: "x" }), { headers: {} }],
      "init method": (u) => [new Request(u, { method: "POST", body: "x" }), { method: "PUT" }],
      "init body": (u) => [new Request(u, { method: "POST", body: "x" }), { body: new URLSearchParams("b=2") }],
      "init body null": (u) => [new Request(u, { method: "POST", body: "x" }), { body: null }],
      "GET + init POST body": (u) => [new Request(u), { method: "POST", body: "late" }],
      "init undefined members": (u) => [
        new Request(u, { headers: { "x-r": "1" } }),
        { headers: undefined, method: undefined, body: undefined },
      ],
      "init keepalive": (u) => [new Request(u, { method: "POST", body: "x" }), { keepalive: true }],
      "init signal null over an aborted own": (u) => [
        new Request(u, { signal: AbortSignal.abort() }),
        { signal: null },
      ],
      keepalive: (u) => [new Request(u, { method: "POST", body: "k", keepalive: true })],
      "cache no-store": (u) => [new Request(u, { cache: "no-store" })],
      "cache reload": (u) => [new Request(u, { cache: "reload" })],
      "cache no-cache": (u) => [new Request(u, { cache: "no-cache" })],
      referrer: (u) => [new Request(u, { referrer: "http://127.0.0.1:1/page?q" })],
      "empty referrer": (u) => [new Request(u, { referrer: "" })],
      referrerPolicy: (u) => [new Request(u, { referrer: "http://127.0.0.1:1/page?q", referrerPolicy: "unsafe-url" })],
      "no-cors POST": (u) => [new Request(u, { mode: "no-cors", method: "POST", body: "n" })],
      "credentials omit": (u) => [new Request(u, { credentials: "omit" })],
      "redirect manual": (u) => [new Request(u, { redirect: "manual" })],
      "init is a Request": (u) => [u, new Request(u, { headers: { "x-r": "1" } })],
    };
    expect(await differences(shapes)).toEqual({});
  });

  it("every init field reaches the server as fetch sends it", async () => {
    const ref = "http://127.0.0.1:1/page?q";
    const shapes: Record<string, Shape> = {
      "redirect manual on a 307": (u) => [at(u, "r307"), { redirect: "manual" }],
      "credentials include": (u) => [u, { credentials: "include" }],
      "keepalive GET": (u) => [u, { keepalive: true }],
      "keepalive POST": (u) => [u, { method: "POST", body: "k", keepalive: true }],
      "live signal": (u) => [u, { signal: new AbortController().signal }],
      "null signal": (u) => [u, { signal: null }],
      "duplex on a GET": (u) => [u, { duplex: "half" }],
      "cross-origin referrer": (u) => [u, { referrer: ref }],
      "same-origin referrer": (u) => [u, { referrer: new URL("/page?q", u).href }],
      "empty referrer": (u) => [u, { referrer: "" }],
      "about:client": (u) => [u, { referrer: "about:client" }],
      "referrerPolicy origin": (u) => [u, { referrer: ref, referrerPolicy: "origin" }],
      "cache no-store": (u) => [u, { cache: "no-store" }],
      "mode same-origin": (u) => [u, { mode: "same-origin" }],
      "priority high": (u) => [u, { priority: "high" }],
      "window null": (u) => [u, { window: null }],
      "unknown field": (u) => [u, { foo: 1 }],
      "307 POST": (u) => [at(u, "r307"), { method: "POST", body: "rb", headers: { "x-k": "1" } }],
      "302 POST": (u) => [
        at(u, "r302"),
        { method: "POST", body: "rb", headers: { "content-type": "x/y", "content-language": "fr" } },
      ],
      "301 GET": (u) => [at(u, "r301")],
      "303 after a Request PUT": (u) => [new Request(at(u, "r303"), { method: "PUT", body: "rb" })],
      "referrer across a 307": (u) => [at(u, "r307"), { referrer: ref }],
    };
    expect(await differences(shapes)).toEqual({});
  });

  it("bad input is refused with fetch's class of error, nothing sent", async () => {
    const symbolKeyed: Record<symbol, string> = { [Symbol("s")]: "1" };
    const shapes: Record<string, Shape> = {
      relative: () => ["/p"],
      empty: () => [""],
      "no input": () => [undefined],
      "init a string": (u) => [u, "POST"],
      "GET with a body": (u) => [u, { body: "x" }],
      "HEAD with an empty body": (u) => [u, { method: "HEAD", body: "" }],
      TRACE: (u) => [u, { method: "trace" }],
      "empty method": (u) => [u, { method: "" }],
      "GET ": (u) => [u, { method: "GET " }],
      "bad header name": (u) => [u, { headers: { "x y": "1" } }],
      "CR in a value": (u) => [u, { headers: { "x-c": "a\rb" } }],
      "control character in a value": (u) => [u, { headers: { "x-c": "a\x01b" } }],
      "3-item pair": (u) => [u, { headers: [["x", "1", "2"]] }],
      "symbol key": (u) => [u, { headers: symbolKeyed }],
      "headers null": (u) => [new Request(u), { headers: null }],
      "symbol body": (u) => [u, { method: "POST", body: Symbol("s") }],
      "used Request": (u) => {
        const r = new Request(u, { method: "POST", body: "u" });
        void r.text();
        return [r];
      },
      "init GET over a POST Request": (u) => [new Request(u, { method: "POST", body: "x" }), { method: "GET" }],
      "redirect bogus": (u) => [u, { redirect: "bogus" }],
      "cache bogus": (u) => [u, { cache: "bogus" }],
      "only-if-cached": (u) => [u, { cache: "only-if-cached" }],
      "mode navigate": (u) => [u, { mode: "navigate" }],
      "PUT in no-cors": (u) => [u, { mode: "no-cors", method: "PUT", body: "x" }],
      "referrerPolicy bogus": (u) => [u, { referrerPolicy: "bogus" }],
      "window 1": (u) => [u, { window: 1 }],
      "relative referrer": (u) => [u, { referrer: "/rel" }],
      "invalid referrer": (u) => [u, { referrer: "http://[" }],
      "duplex full": (u) => [u, { method: "POST", body: "x", duplex: "full" }],
      "keepalive stream": (u) => [u, { method: "POST", body: stream(), keepalive: true, duplex: "half" }],
      "signal no AbortSignal": (u) => [u, { signal: {} }],
      "about:blank": () => ["about:blank"],
      "file:": () => ["file:///etc/hostname"],
      "ws:": (u) => [u.replace("http", "ws")],
      "aborted signal": (u) => [u, { signal: AbortSignal.abort(new RangeError("why")) }],
      "aborted Request signal": (u) => [new Request(u, { signal: AbortSignal.abort(new RangeError("why")) })],
    };
    const found = await differences(shapes);
    expect(found).toEqual({});
    // And each is a rejection indeed, with nothing sent.
    const plain = createResilience();
    for (const [name, shape] of Object.entries(shapes)) {
      const [input, init] = shape(`${api.base}/p`);
      api.reset();
      const error = await rejection((plain.fetch as Fetch)(input, init));
      expect([name, (error as Error).constructor.name]).toEqual([
        name,
        name.includes("aborted") ? "RangeError" : "TypeError",
      ]);
      expect(api.hits).toEqual([]);
    }
    expect(plain.health().breakers).toEqual({});
  });
});

describe("the divergences the docs state", () => {
  it("a stream without duplex is sent, a Request's stream arrives with a length, no-referrer sends none, data: goes as is", async () => {
    const shapes: Record<string, Shape> = {
      "stream without duplex": (u) => [u, { method: "POST", body: stream() }],
      "Request on a stream": (u) => [new Request(u, { method: "POST", body: stream(), duplex: "half" } as RequestInit)],
      "no-referrer": (u) => [u, { referrer: "http://127.0.0.1:1/page", referrerPolicy: "no-referrer" }],
    };
    const found = (await differences(shapes, { only: ["plain"] })) as Record<
      string,
      { fetch: { outcome: Record<string, unknown>; arrived: Arrival[] }; layer: { arrived: Arrival[] } }
    >;
    expect(Object.keys(found)).toEqual([
      "stream without duplex [plain]",
      "Request on a stream [plain]",
      "no-referrer [plain]",
    ]);
    // fetch refuses a stream without duplex; the layer adds it (docs/retry.md "Bodies").
    expect(found["stream without duplex [plain]"]?.fetch.outcome).toEqual({ rejects: "TypeError" });
    expect(found["stream without duplex [plain]"]?.layer.arrived[0]?.body).toBe("stream-body");
    // Read into bytes (docs/retry.md): a content-length instead of chunked, the same bytes.
    const streamed = found["Request on a stream [plain]"];
    expect(streamed?.fetch.arrived[0]?.lines).toContain("transfer-encoding: chunked");
    expect(streamed?.layer.arrived[0]?.lines).toContain("content-length: 11");
    expect(streamed?.layer.arrived[0]?.body).toBe(streamed?.fetch.arrived[0]?.body);
    // Node's fetch sends the origin under no-referrer ("applies some policies wrongly"); the layer sends none.
    expect(found["no-referrer [plain]"]?.fetch.arrived[0]?.lines).toContain("referer: http://127.0.0.1:1/");
    expect(found["no-referrer [plain]"]?.layer.arrived[0]?.lines.some((l) => l.startsWith("referer:"))).toBe(false);

    const data = await createResilience().fetch("data:text/plain,hello");
    expect([await data.text(), data.url]).toEqual(["hello", "data:text/plain,hello"]);
  });

  it("an integrity mismatch, a port fetch will not dial and redirect: error meeting a 307 reject as network errors", async () => {
    answer(api);
    const layer = createResilience({ retry: { maxAttempts: 1 } });
    const bad = "sha256-AAAAeyBcFs4y7UIAlCuLix4mLfxw2byfvHfElpmk8d8=";
    expect(await got(() => fetch(`${api.base}/p`, { integrity: bad }))).toEqual({ rejects: "TypeError" });
    const error = await rejection(layer.fetch(`${api.base}/p`, { integrity: bad }));
    expect([(error as Error).name, (error as Error).cause instanceof TypeError]).toEqual(["RetryExhaustedError", true]);
    const port = await rejection(layer.fetch("http://127.0.0.1:6000/"));
    // And `redirect: "error"` meeting a redirect: "the TypeError of a network failure, which the library cannot tell apart".
    expect(await got(() => fetch(`${api.base}/r307`, { redirect: "error" }))).toEqual({ rejects: "TypeError" });
    const redirected = await rejection(layer.fetch(`${api.base}/r307`, { redirect: "error" }));
    expect((redirected as Error).name).toBe("RetryExhaustedError");
    expect((port as Error).name).toBe("RetryExhaustedError");
    // A matching one resolves with the body, URL and status fetch gives.
    const ok = await layer.fetch(`${api.base}/p`, { integrity: OK_SRI });
    expect([ok.status, await ok.text(), ok.url, ok.redirected, ok.type]).toEqual([
      200,
      "ok",
      `${api.base}/p`,
      false,
      "basic",
    ]);
  });
});

describe("defects", () => {
  it("a header Node's fetch refuses is a TypeError at once, never retried nor counted against the host", async () => {
    answer(api);
    const refused: Record<string, Record<string, string>> = {
      "keep-alive": { "keep-alive": "timeout=5" },
      "transfer-encoding": { "transfer-encoding": "chunked" },
      upgrade: { upgrade: "websocket" },
      expect: { expect: "100-continue" },
      "connection: upgrade": { connection: "upgrade" },
      "content-length x": { "content-length": "x" },
    };
    // The reference: plain fetch refuses each at once, nothing reaches the server.
    for (const headers of Object.values(refused)) {
      expect(await got(() => fetch(`${api.base}/p`, { method: "POST", body: "abc", headers }))).toEqual({
        rejects: "TypeError",
      });
    }
    expect(api.hits).toEqual([]);

    const layer = createResilience({ retry: { initialDelay: 1, maxDelay: 1, jitter: "none" } });
    // A Node proxy forwarding a client's hop-by-hop header, four times.
    for (let i = 0; i < 4; i++) {
      const error = await rejection(layer.fetch(`${api.base}/p`, { headers: { "keep-alive": "timeout=5" } }));
      expect(isResilienceError(error)).toBe(false); // observed: RetryExhaustedError after 3 attempts
      expect(error).toBeInstanceOf(TypeError);
    }
    // The host's breaker heard nothing: a well-formed call goes through.
    const next = await got(() => layer.fetch(`${api.base}/p`));
    expect(next.status).toBe(200); // observed: rejects with CircuitOpenError, nothing sent
    expect(api.hits.length).toBe(1);
  });

  it("an input fetch turns into its URL string is sent as fetch sends it", async () => {
    answer(api);
    const layer = createResilience();
    const url = `${api.base}/p?q=1`;
    const urlLike = { toString: () => url };
    // The reference: fetch stringifies both.
    expect((await got(() => fetch(urlLike as never))).status).toBe(200);
    expect((await got(() => fetch(new String(url) as never))).status).toBe(200);
    api.reset();
    answer(api);
    const fromObject = await got(() => layer.fetch(urlLike as never));
    const fromString = await got(() => layer.fetch(new String(url) as never));
    // observed: { rejects: "TypeError" } ("expected a URL string, URL or Request, got Object" / "got String")
    expect([fromObject.status, fromString.status]).toEqual([200, 200]);
    expect(api.hits.map((h) => h.path)).toEqual(["/p?q=1", "/p?q=1"]);
  });

  it("a call with a matching integrity resolves with fetch's immutable headers", async () => {
    answer(api);
    const plain = await fetch(`${api.base}/p`, { integrity: OK_SRI });
    expect(() => plain.headers.set("x-probe", "1")).toThrow(TypeError);
    const layer = createResilience();
    const res = await layer.fetch(`${api.base}/p`, { integrity: OK_SRI });
    expect(await res.text()).toBe("ok");
    // observed: no throw; the header is added to the response the caller holds.
    expect(() => res.headers.set("x-probe", "1")).toThrow(TypeError);
  });
});
