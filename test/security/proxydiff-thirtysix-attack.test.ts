/**
 * Outside-in attack on `resilientProxy` (the Worker proxy), compared differentially with a plain pass-through
 * handler `(request) => fetch(new Request(upstreamBase + path + search, request))`.
 * Docs: docs/cloudflare.md ("A route serves its path and everything below it (the path below goes onto the
 * upstream's path, the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…` keeps
 * its key)", "The route decides alone: a chain route's request goes down that route's chain", "The proxy forwards
 * neither the hop's headers (`connection` and every header it names, `keep-alive`, `transfer-encoding`, `upgrade`,
 * `te`, `trailer`, `host`, and the client's `proxy-authorization`), either way, nor what Cloudflare's edge or a proxy
 * before it says about the end user (`cf-*`, `x-forwarded-*`, `forwarded`, `x-real-ip`, `x-client-ip`,
 * `true-client-ip`)", "The client's body goes on as a stream: the layer reads at most `maxReplayBytes` of it ahead,
 * so a small body is retried and a larger one is sent once, and a whole upload is never held in the isolate's
 * memory", "answers `503` with `Retry-After` when the circuit is open, `504` on a timeout and `502` when no endpoint
 * answered otherwise", "adds `x-resilience-endpoint` …, `x-resilience-attempts` and `x-degradation-level` to the
 * responses the upstreams gave (its own 502, 503 and 504 carry none of the three)", the health endpoint's "any other
 * method is answered 405 with `Allow: GET, HEAD`"); the JSDoc of `resilientProxy`, `ProxyRoute`,
 * `ResilientProxyOptions` ("the longest matching `path` wins") and `failureResponse` ("as one upstream would answer
 * when it failed that way"); docs/architecture.md ("The route passes the incoming request's `signal`, so a client
 * that hangs up stops the retries"); docs/retry.md (Idempotency: "A POST or PATCH without an `Idempotency-Key` … is
 * sent again … only when it surely was not processed: on 429 and 503 … After a 500, a reset connection … it is not
 * sent again"; Redirects: the library follows a `redirect: "follow"` call's redirects itself); docs/fallback.md
 * ("The rest of the path and the query are rebased onto each endpoint's `url`", "Credentials never cross origins");
 * SECURITY.md (rows "Credentials never cross origins", "Credentials never follow a redirect to another origin",
 * "Buffered bodies are bounded", "The Worker health endpoint reveals nothing without its token").
 * How: `resilientProxy` (./cloudflare) called directly in Node with a `Request`, an env and a ctx; the plain handler
 * over Node's global `fetch`; node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts, raw header lines read
 * from `hit.req.rawHeaders`; bare servers of its own for the streamed uploads), `refusedOrigin`.
 * Paths: proxy upstream routes and chain routes (several routes, fallback to a spare with its own key), bodies of
 * every kind (none, empty, string, JSON, bytes, Blob, FormData, URLSearchParams, streams small and over
 * `maxReplayBytes`), hop-by-hop and end-user headers both ways, odd paths and queries, upstream answers (204/304,
 * 3xx followed, 4xx/5xx, multiple set-cookie, streamed, truncated, reset), retries of non-idempotent methods,
 * client aborts (waiting, during backoff, mid-body, mid-upload), failures (refused, open, timed out), health.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a chain route whose first endpoint is a bare origin keeps the path below whole):
 * 1. docs/cloudflare.md "A route serves its path and everything below it (the path below goes onto the upstream's
 *    path …)" and "a chain route's request goes down that route's chain"; docs/fallback.md "The rest of the path and
 *    the query are rebased onto each endpoint's `url`". Observed: a chain route whose first endpoint is written as a
 *    bare origin (`http://127.0.0.1:port`, no path) loses one slash of a path below that starts with `//`:
 *    `/v1//x///y` reaches that endpoint as `/x///y` and the spare (`…/sv`) as `/sv/x///y`, where an upstream route to
 *    the same URLs sends `//x///y` and `/sv//x///y` (and a chain whose first URL is `http://…:port/` sends `//x`).
 *    Mechanism: the proxy builds the target from the chain's prefix as written (`chainPrefix(route.chain) + rest`,
 *    src/cloudflare/resilient-proxy.ts:322: `http://h:p` + `//x///y`), but the chain router matches the call against
 *    the prefix as the URL parser writes it (src/fallback/chain-router.ts:68 `prefix: this.#urls.head(head)`:
 *    `http://h:p/`, a slash added to a bare origin), so `restAfter` (src/http/request/url-prefix.ts:50) hands each
 *    endpoint `/x///y`: the prefix's added slash ate the first slash of the path below.
 *
 * Held (plain `it`):
 * - Differential corpus (methods in odd case, HEAD/OPTIONS/DELETE with and without bodies, bodies of every kind and
 *   size, encoded and odd paths, `%2F`, `..`, `%2e%2e`, `//`, unicode, a 12 KB query, repeated and empty query
 *   parameters, a fragment): the upstream gets the same method, path and query, the same body bytes and the same
 *   header lines as from the plain handler (in sorted order, as a copied `Headers` iterates), save framing (`content-length` for a body the layer read ahead, where
 *   fetch sends a stream `chunked`); the client gets the same status, body and headers, save the hop's
 *   (`connection`, `keep-alive`, `transfer-encoding`) and the three `x-resilience`/`x-degradation` headers added.
 * - Hop-by-hop headers dropped both ways (the fixed ones, `connection`'s names in any case, over two `Connection`
 *   lines, an upstream's own `x-resilience-attempts` replaced), end-user headers dropped (`cf-*`, `x-forwarded-*`,
 *   `forwarded`, `x-real-ip`, `x-client-ip`, `true-client-ip`); `host` is the upstream's; headers outside the lists
 *   (`proxy-foo`, `via`, `cdn-loop`, cookies, authorization) go on, where the plain handler fails outright on
 *   `connection`/`upgrade` (undici refuses them).
 * - Upstream answers: 204 and 304 keep their headers, two `set-cookie` stay two, 4xx bodies pass, a chunked body
 *   streams, a truncated body errors on the client's read as through the plain handler.
 * - Retries: a GET 503 is retried (3 requests), a keyless POST on 503 and 429 too (declined), a keyless POST on 500,
 *   a PATCH on 502 and a POST whose connection reset are sent once; a reset GET is retried, then 502.
 * - A body over `maxReplayBytes` is streamed (the upstream has the request and its first bytes while the client's
 *   stream is still held back) and sent once on a 503; the upstream gets every byte.
 * - Client aborts: waiting for the upstream (rejects with the client's reason, the upstream connection closes, no
 *   502), during a backoff (no further attempt), mid-response-body (the read rejects, the upstream connection
 *   closes), mid-upload (rejects, upstream connection closes); a body the client cancels closes the upstream.
 * - Routes: the longest wins, the upstream's `?key=` stays first with the client's query after; a chain route moves
 *   a POST on to the spare after 503s with the spare's own `authorization`, and the client's `authorization`,
 *   `cookie` and `x-api-key` stay home; a path no route serves is a 404 naming only the client's path.
 * - Failures: refused → 502 `{"error":"upstream unavailable"}`, open → 503 `{"error":"upstream circuit open"}` with
 *   `Retry-After`, timed out → 504 `{"error":"upstream timed out"}`, none with the three info headers, none naming
 *   the upstream's host, path or `?key=`.
 * - Redirects are followed by the layer (documented for a `redirect: "follow"` call; the proxy's outgoing request is
 *   one, whatever the client's `Request.redirect` was: the client gets the final answer where the plain handler
 *   passes a `redirect: "manual"` client's 302 through; docs/cloudflare.md says nothing either way, so noted, not
 *   pinned); a 307 POST is sent again to the same origin with its body; a hop to another origin drops the client's
 *   `authorization` and `cookie`.
 * - `POST /__resilience/health` with a bearer token: 405 `Allow: GET, HEAD`, nothing forwarded.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { type ProxyRoute, resilientProxy } from "../../src/cloudflare/index.ts";
import type { ResilienceOptions } from "../../src/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const ctx = { waitUntil: () => {} };
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const INFO = ["x-degradation-level", "x-resilience-attempts", "x-resilience-endpoint"];

type Handler = (request: Request) => Promise<Response>;

function proxyOf(routes: ProxyRoute[], resilience: ResilienceOptions = { retry: fast }): Handler {
  const proxy = resilientProxy({ routes, resilience });
  return (request) => proxy.fetch(request, {}, ctx);
}

/** The plain pass-through handler the proxy is compared with. */
const plainTo =
  (base: string): Handler =>
  (request) => {
    const url = new URL(request.url);
    return fetch(new Request(base + url.pathname + url.search, request));
  };

/** A header line as received (name in lower case), `host` left out (each handler's is the upstream's). */
function lines(hit: Hit): string[] {
  const raw = hit.req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase();
    if (name !== "host") out.push(`${name}: ${raw[i + 1]}`);
  }
  return out;
}

interface Exchange {
  status: number;
  headers: string[];
  body: string;
  hits: { method: string; path: string; lines: string[]; bytes: Buffer }[];
}

/** One request through `handler` to `a`, answered by `answer`: what arrived upstream and what the client got. */
async function exchange(handler: Handler, request: Request, answer?: (hit: Hit) => void): Promise<Exchange> {
  a.reset();
  if (answer) a.on(answer);
  const res = await handler(request);
  const body = await res.text().catch((error: Error) => `read failed: ${error.name}`);
  return {
    status: res.status,
    headers: [...res.headers].filter(([name]) => name !== "date").map(([name, value]) => `${name}: ${value}`),
    body,
    hits: a.hits.map((hit) => ({ method: hit.method, path: hit.path, lines: lines(hit), bytes: hit.bytes })),
  };
}

/** Header lines without the framing ones a body read ahead changes (`content-length` for `chunked`). */
const unframed = (list: string[]) =>
  list.filter((line) => !line.startsWith("content-length:") && !line.startsWith("transfer-encoding:"));
/** Response headers without the hop's and the proxy's three. */
const passed = (list: string[]) =>
  list.filter(
    (line) =>
      !/^(connection|keep-alive|transfer-encoding):/.test(line) && !INFO.some((name) => line.startsWith(`${name}:`)),
  );

function streamOf(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}
const bytes = (n: number, seed = 7) => new Uint8Array(n).map((_, i) => (i * seed + (i >> 8)) % 256);
const closedWithin = (hit: Hit, ms = 500) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void hit.closed.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });

describe("resilientProxy against a plain pass-through: what arrives upstream and what the client gets", () => {
  const big = bytes(200_000);
  const shapes: Array<[string, string, () => RequestInit]> = [
    ["GET with a query", "/a?x=1", () => ({})],
    ["get in lower case", "/a", () => ({ method: "get" })],
    ["delete in lower case with a body", "/a", () => ({ method: "delete", body: "d" })],
    ["HEAD", "/a", () => ({ method: "HEAD" })],
    ["OPTIONS", "/a", () => ({ method: "OPTIONS" })],
    ["OPTIONS with a body", "/a", () => ({ method: "OPTIONS", body: "o" })],
    ["PUT", "/a", () => ({ method: "put", body: "p" })],
    ["POST without a body", "/a", () => ({ method: "POST" })],
    ["POST of an empty string", "/a", () => ({ method: "POST", body: "" })],
    [
      "POST of JSON",
      "/a",
      () => ({ method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" } }),
    ],
    [
      "POST with its content-length",
      "/a",
      () => ({ method: "POST", body: "hello", headers: { "content-length": "5" } }),
    ],
    ["POST of 200 KB of bytes", "/a", () => ({ method: "POST", body: big })],
    [
      "POST of a stream",
      "/a",
      () => ({ method: "POST", body: streamOf(bytes(2), bytes(3, 3)), duplex: "half" }) as RequestInit,
    ],
    ["POST of an empty stream", "/a", () => ({ method: "POST", body: streamOf(), duplex: "half" }) as RequestInit],
    [
      "POST of a 200 KB stream in two parts",
      "/a",
      () =>
        ({ method: "POST", body: streamOf(big.slice(0, 70_000), big.slice(70_000)), duplex: "half" }) as RequestInit,
    ],
    [
      "POST of a stream with its content-length",
      "/a",
      () =>
        ({
          method: "POST",
          body: streamOf(bytes(3)),
          duplex: "half",
          headers: { "content-length": "3" },
        }) as RequestInit,
    ],
    ["POST of URLSearchParams", "/a", () => ({ method: "POST", body: new URLSearchParams("a=1&b=%20") })],
    ["POST of a typed Blob", "/a", () => ({ method: "POST", body: new Blob(["x"], { type: "text/x-custom" }) })],
    [
      "cookies, authorization, a key, accept",
      "/a",
      () => ({
        headers: {
          cookie: "a=1; b=2",
          authorization: "Bearer c",
          "x-api-key": "k",
          accept: "text/plain",
          "accept-encoding": "br",
          "user-agent": "client/1",
        },
      }),
    ],
    ["%2F in the path", "/a%2Fb/c%2fd", () => ({})],
    ["dot segments", "/a/../b/./c", () => ({})],
    ["encoded dot segments", "/a/%2e%2e/b", () => ({})],
    ["doubled slashes", "//a//b/", () => ({})],
    ["unicode", "/vidéo/ü?q=é", () => ({})],
    ["a 12 KB query", `/a?${"q=x&".repeat(3000)}`, () => ({})],
    ["repeated and empty query parameters", "/a?a=1&a=2&b=%20&c=+&&d", () => ({})],
    ["an empty query", "/a?", () => ({})],
    ["a fragment", "/a?x=1#frag", () => ({})],
  ];

  it.each(shapes)("%s: the same request upstream and the same answer", async (_, path, init) => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request(`http://proxy.test${path}`, init()),
    );
    const viaPlain = await exchange(plainTo(a.base), new Request(`http://proxy.test${path}`, init()));
    expect(viaProxy.hits).toHaveLength(1);
    expect(viaPlain.hits).toHaveLength(1);
    const [p, q] = [viaProxy.hits[0], viaPlain.hits[0]] as [Exchange["hits"][0], Exchange["hits"][0]];
    expect([p.method, p.path]).toEqual([q.method, q.path]);
    expect(Buffer.compare(p.bytes, q.bytes)).toBe(0);
    // The same lines, framing apart (in another order: the proxy's copy is a `Headers`, iterated sorted).
    expect(unframed(p.lines).sort()).toEqual(unframed(q.lines).sort());
    expect(viaProxy.status).toBe(viaPlain.status);
    expect(viaProxy.body).toBe(viaPlain.body);
    expect(passed(viaProxy.headers)).toEqual(passed(viaPlain.headers));
    expect(viaProxy.headers.filter((line) => INFO.some((name) => line.startsWith(name))).length).toBe(3);
  });

  it("FormData: the same fields arrive, under the boundary fetch writes", async () => {
    const form = () => {
      const data = new FormData();
      data.set("prompt", "waves");
      data.set("file", new Blob(["abc"], { type: "image/png" }), "f.png");
      return data;
    };
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", { method: "POST", body: form() }),
    );
    const hit = viaProxy.hits[0] as Exchange["hits"][0];
    const type = hit.lines.find((line) => line.startsWith("content-type:")) as string;
    const boundary = type.split("boundary=")[1] as string;
    const text = hit.bytes.toString("utf8");
    expect(text).toContain(`--${boundary}`);
    expect(text).toContain('name="prompt"\r\n\r\nwaves');
    expect(text).toContain('filename="f.png"\r\nContent-Type: image/png\r\n\r\nabc');
  });
});

describe("headers both ways", () => {
  it("drops the hop's headers and the end user's, keeps the rest, where the plain handler fails on them", async () => {
    const headers = new Headers({
      "x-one": "1",
      "x-two": "2",
      "keep-alive": "timeout=5",
      te: "trailers",
      upgrade: "websocket",
      trailer: "x-t",
      "proxy-authorization": "Basic c2VjcmV0",
      "proxy-foo": "kept",
      host: "evil.example",
      "cf-connecting-ip": "203.0.113.7",
      "CF-Ray": "r",
      "cf-ipcountry": "FR",
      "x-forwarded-for": "203.0.113.7",
      "X-Forwarded-Proto": "https",
      forwarded: "for=203.0.113.7",
      "x-real-ip": "203.0.113.7",
      "x-client-ip": "203.0.113.7",
      "true-client-ip": "203.0.113.7",
      via: "1.1 edge",
      "cdn-loop": "cloudflare",
      authorization: "Bearer for-the-provider",
      cookie: "s=1",
    });
    headers.append("connection", "X-One");
    headers.append("Connection", "x-two");
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", { headers }),
    );
    const hit = a.hits[0] as Hit;
    expect(hit.headers.host).toBe(a.host);
    expect(viaProxy.hits[0]?.lines).toEqual([
      "connection: keep-alive",
      "authorization: Bearer for-the-provider",
      "cdn-loop: cloudflare",
      "cookie: s=1",
      "proxy-foo: kept",
      "via: 1.1 edge",
      "accept: */*",
      "accept-language: *",
      "sec-fetch-mode: cors",
      "user-agent: node",
      "accept-encoding: gzip, deflate",
    ]);
    await expect(plainTo(a.base)(new Request("http://proxy.test/a", { headers }))).rejects.toThrow(TypeError);
  });

  it("drops the upstream's hop headers and those its Connection names, and sets its own info headers", async () => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a"),
      (hit) => {
        hit.res.setHeader("connection", ["X-Secret", "x-other"]);
        hit.res.setHeader("x-secret", "s");
        hit.res.setHeader("x-other", "o");
        hit.res.setHeader("keep-alive", "timeout=9");
        hit.res.setHeader("trailer", "x-t");
        hit.res.setHeader("upgrade", "h2c");
        hit.res.setHeader("x-resilience-attempts", "99");
        hit.res.setHeader("x-kept", "k");
        hit.res.end("ok");
      },
    );
    expect(viaProxy.headers.filter((line) => !line.startsWith("content-length"))).toEqual([
      "x-degradation-level: full",
      "x-kept: k",
      "x-resilience-attempts: 1",
      `x-resilience-endpoint: ${a.host}`,
    ]);
  });
});

describe("upstream answers of every kind", () => {
  const answers: Array<[string, (hit: Hit) => void]> = [
    ["204 with headers", (hit) => hit.res.writeHead(204, { etag: '"e"', "x-h": "1" }).end()],
    ["304 with headers", (hit) => hit.res.writeHead(304, { etag: '"e"', "cache-control": "max-age=1" }).end()],
    ["404 with a body", (hit) => hit.res.writeHead(404, { "content-type": "text/plain" }).end("nope")],
    [
      "two set-cookie",
      (hit) => {
        hit.res.setHeader("set-cookie", ["a=1; Path=/", "b=2; HttpOnly"]);
        hit.res.end("ok");
      },
    ],
    [
      "a chunked body",
      (hit) => {
        hit.res.write("a");
        setTimeout(() => hit.res.end("bc"), 10);
      },
    ],
    [
      "a truncated body",
      (hit) => {
        hit.res.writeHead(200, { "content-length": "100" }).write("abc");
        setTimeout(() => hit.res.destroy(), 10);
      },
    ],
    ["a gzip body", (hit) => hit.res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync("zipped"))],
  ];
  it.each(answers)("%s: the same status, body and headers as through the plain handler", async (_, answer) => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a"),
      answer,
    );
    const viaPlain = await exchange(plainTo(a.base), new Request("http://proxy.test/a"), answer);
    expect(viaProxy.status).toBe(viaPlain.status);
    expect(viaProxy.body).toBe(viaPlain.body);
    expect(passed(viaProxy.headers)).toEqual(passed(viaPlain.headers));
  });

  it("a truncated body fails the client's read, as it does through the plain handler", async () => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a"),
      (hit) => {
        hit.res.writeHead(200, { "content-length": "100" }).write("abc");
        setTimeout(() => hit.res.destroy(), 10);
      },
    );
    expect(viaProxy.body).toMatch(/^read failed/);
  });

  it("two set-cookie stay two lines", async () => {
    a.on((hit) => {
      hit.res.setHeader("set-cookie", ["a=1", "b=2"]);
      hit.res.end();
    });
    const again = await proxyOf([{ path: "/", upstream: a.base }])(new Request("http://proxy.test/a"));
    expect(again.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
  });
});

describe("retries: what goes again", () => {
  const cases: Array<[string, RequestInit, (hit: Hit) => void, number, number]> = [
    ["GET on 503", {}, (hit) => hit.res.writeHead(503).end("busy"), 3, 503],
    [
      "keyless POST on 503 (declined)",
      { method: "POST", body: "j" },
      (hit) => hit.res.writeHead(503).end("busy"),
      3,
      503,
    ],
    [
      "keyless POST on 429 (declined)",
      { method: "POST", body: "j" },
      (hit) => hit.res.writeHead(429, { "retry-after": "0" }).end(),
      3,
      429,
    ],
    ["keyless POST on 500", { method: "POST", body: "j" }, (hit) => hit.res.writeHead(500).end("boom"), 1, 500],
    ["keyless PATCH on 502", { method: "PATCH", body: "j" }, (hit) => hit.res.writeHead(502).end("boom"), 1, 502],
    ["keyless POST whose connection reset", { method: "POST", body: "j" }, (hit) => hit.res.destroy(), 1, 502],
    ["GET whose connection reset", {}, (hit) => hit.res.destroy(), 3, 502],
  ];
  it.each(cases)("%s", async (_, init, answer, requests, status) => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", init),
      answer,
    );
    expect(viaProxy.hits).toHaveLength(requests);
    expect(viaProxy.status).toBe(status);
    for (const hit of viaProxy.hits) expect(hit.bytes.toString()).toBe(init.body ?? "");
  });
});

describe("bodies over maxReplayBytes", () => {
  it("streams the client's body: the upstream has the request while the client's stream is still held back", async () => {
    let received = 0;
    let arrived!: () => void;
    const started = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const server = createServer((req, res) => {
      req.on("data", (chunk: Buffer) => {
        received += chunk.length;
        arrived();
      });
      req.on("end", () => res.end("ok"));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let pulls = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          pulls++;
          if (pulls === 5) await gate;
          if (pulls > 8) return controller.close();
          controller.enqueue(new Uint8Array(1024).fill(pulls));
        },
      });
      const pending = proxyOf([{ path: "/", upstream: base }], { maxReplayBytes: 1500 })(
        new Request("http://proxy.test/up", { method: "POST", body, duplex: "half" } as RequestInit),
      );
      await started;
      expect(received).toBeGreaterThan(0);
      expect(pulls).toBeLessThanOrEqual(5);
      release();
      expect((await pending).status).toBe(200);
      expect(received).toBe(8 * 1024);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("sends a body past maxReplayBytes once on a 503, whole", async () => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }], { retry: fast, maxReplayBytes: 10 }),
      new Request("http://proxy.test/a", { method: "PUT", body: "x".repeat(100) }),
      (hit) => hit.res.writeHead(503).end(),
    );
    expect(viaProxy.hits).toHaveLength(1);
    expect(viaProxy.hits[0]?.bytes.toString()).toBe("x".repeat(100));
    const small = await exchange(
      proxyOf([{ path: "/", upstream: a.base }], { retry: fast, maxReplayBytes: 10 }),
      new Request("http://proxy.test/a", { method: "PUT", body: "x".repeat(5) }),
      (hit) => hit.res.writeHead(503).end(),
    );
    expect(small.hits).toHaveLength(3);
  });
});

describe("client aborts", () => {
  it("while the upstream works: rejects with the client's reason, the upstream sees the connection closed", async () => {
    a.on(() => {}); // never answers: only the client's abort ends the exchange
    const client = new AbortController();
    const pending = proxyOf([{ path: "/", upstream: a.base }])(
      new Request("http://proxy.test/a", { signal: client.signal }),
    );
    const hit = await a.nth(1);
    const reason = new Error("client gone");
    client.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(await closedWithin(hit)).toBe(true);
  });

  it("during a backoff: no further attempt", async () => {
    a.on((hit) => hit.res.writeHead(503, { "retry-after": "1" }).end());
    const client = new AbortController();
    const pending = proxyOf(
      [{ path: "/", upstream: a.base }],
      {},
    )(new Request("http://proxy.test/a", { signal: client.signal }));
    await a.nth(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    client.abort(new Error("client gone"));
    await rejection(pending);
    expect(a.hits).toHaveLength(1);
  });

  it("mid-body: the client's read rejects and the upstream sees the connection closed; a cancel closes it too", async () => {
    a.on((hit) => hit.res.writeHead(200).write("first"));
    const client = new AbortController();
    const res = await proxyOf([{ path: "/", upstream: a.base }])(
      new Request("http://proxy.test/a", { signal: client.signal }),
    );
    const reader = res.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    client.abort(new Error("client gone"));
    await expect(reader.read()).rejects.toThrow("client gone");
    expect(await closedWithin(await a.nth(1))).toBe(true);
    a.reset();
    a.on((hit) => hit.res.writeHead(200).write("first"));
    const cancelled = await proxyOf([{ path: "/", upstream: a.base }])(new Request("http://proxy.test/a"));
    await cancelled.body?.cancel();
    expect(await closedWithin(await a.nth(1))).toBe(true);
  });

  it("mid-upload: rejects, the upstream sees the connection closed", async () => {
    let closed = false;
    const server = createServer((req) => {
      req.resume();
      req.on("close", () => {
        closed = true;
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let pulls = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (++pulls > 3) await new Promise(() => {}); // the client's upload stalls here
          controller.enqueue(new Uint8Array(1024));
        },
      });
      const client = new AbortController();
      const pending = proxyOf([{ path: "/", upstream: base }], { maxReplayBytes: 100 })(
        new Request("http://proxy.test/up", {
          method: "POST",
          body,
          duplex: "half",
          signal: client.signal,
        } as RequestInit),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const reason = new Error("client gone");
      client.abort(reason);
      expect(await rejection(pending)).toBe(reason);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(closed).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("routes", () => {
  it("the longest wins, the upstream's key stays first, a chain moves a POST to its spare with the spare's key", async () => {
    a.on((hit) => hit.res.writeHead(503).end("premium busy"));
    b.on((hit) => hit.res.end(`b saw ${hit.method} ${hit.path}`));
    const proxy = proxyOf([
      { path: "/v1", upstream: `${b.base}/base?key=SECRET` },
      {
        path: "/v1/video",
        chain: {
          name: "video",
          endpoints: [
            { name: "premium", url: `${a.base}/pv` },
            { name: "standard", url: `${b.base}/sv?k=1`, headers: { authorization: "Bearer SPARE" } },
          ],
        },
      },
    ]);
    const job = await proxy(
      new Request("http://proxy.test/v1/video/jobs?q=1", {
        method: "POST",
        body: "job",
        headers: { authorization: "Bearer CLIENT", cookie: "s=1", "x-api-key": "CK" },
      }),
    );
    expect(await job.text()).toBe("b saw POST /sv/jobs?k=1&q=1");
    expect(job.headers.get("x-resilience-endpoint")).toBe("standard");
    expect(a.hits.map((hit) => [hit.path, hit.headers.authorization, hit.body])).toEqual(
      Array(3).fill(["/pv/jobs?q=1", "Bearer CLIENT", "job"]),
    );
    const spare = b.hits[0] as Hit;
    expect([spare.headers.authorization, spare.headers.cookie, spare.headers["x-api-key"], spare.body]).toEqual([
      "Bearer SPARE",
      undefined,
      undefined,
      "job",
    ]);
    const text = await proxy(new Request("http://proxy.test/v1/text/x?q=2"));
    expect(await text.text()).toBe("b saw GET /base/text/x?key=SECRET&q=2");
    const none = await proxy(new Request("http://proxy.test/v1video"));
    expect([none.status, await none.text()]).toEqual([404, '{"error":"no route for /v1video"}']);
  });

  it("a chain route whose first endpoint is a bare origin keeps the path below whole (`//x`), as an upstream route does", async () => {
    a.on((hit) => hit.res.writeHead(503).end());
    const retry = { ...fast, maxAttempts: 1 };
    const upstreams = proxyOf(
      [
        { path: "/v1", upstream: a.base },
        { path: "/v2", upstream: `${b.base}/sv` },
      ],
      { retry },
    );
    await upstreams(new Request("http://proxy.test/v1//x///y"));
    await upstreams(new Request("http://proxy.test/v2//x///y"));
    // The path below as an upstream route sends it.
    expect([a.hits[0]?.path, b.hits[0]?.path]).toEqual(["//x///y", "/sv//x///y"]);
    a.reset();
    b.reset();
    a.on((hit) => hit.res.writeHead(503).end());
    const chain = proxyOf(
      [
        {
          path: "/v1",
          chain: {
            name: "bare",
            endpoints: [
              { name: "first", url: a.base },
              { name: "spare", url: `${b.base}/sv` },
            ],
          },
        },
      ],
      { retry },
    );
    const res = await chain(new Request("http://proxy.test/v1//x///y"));
    expect(res.status).toBe(200);
    // Observed: ["/x///y", "/sv/x///y"].
    expect([a.hits[0]?.path, b.hits[0]?.path]).toEqual(["//x///y", "/sv//x///y"]);
  });

  it("a chain route whose first endpoint ends in `/` keeps the path below whole", async () => {
    a.on((hit) => hit.res.writeHead(503).end());
    const chain = proxyOf(
      [
        {
          path: "/v1",
          chain: {
            name: "slashed",
            endpoints: [
              { name: "first", url: `${a.base}/` },
              { name: "spare", url: `${b.base}/sv` },
            ],
          },
        },
      ],
      { retry: { ...fast, maxAttempts: 1 } },
    );
    expect((await chain(new Request("http://proxy.test/v1//x///y"))).status).toBe(200);
    expect([a.hits[0]?.path, b.hits[0]?.path]).toEqual(["//x///y", "/sv//x///y"]);
  });
});

describe("failures: the documented shapes, nothing about the upstream", () => {
  it("refused → 502, then open → 503 with Retry-After; timed out → 504", async () => {
    const dead = await refusedOrigin();
    const proxy = proxyOf([{ path: "/", upstream: `${dead}/hidden/path?key=SECRET` }], {
      retry: fast,
      breaker: { failureThreshold: 3 },
    });
    const refused = await proxy(new Request("http://proxy.test/x?token=T"));
    const open = await proxy(new Request("http://proxy.test/x?token=T"));
    a.on(() => {}); // never answers: the layer's timeout ends it
    const slow = await proxyOf([{ path: "/", upstream: `${a.base}/hidden/path?key=SECRET` }], {
      retry: { ...fast, maxAttempts: 1 },
      timeout: { attempt: 50, total: 100 },
    })(new Request("http://proxy.test/x"));
    const seen = [];
    for (const res of [refused, open, slow]) {
      const headers = [...res.headers];
      const body = await res.text();
      seen.push([res.status, body, headers.map(([name]) => name)]);
      const all = `${body} ${JSON.stringify(headers)}`;
      for (const secret of ["SECRET", "hidden", "127.0.0.1", dead.slice(7), a.host]) expect(all).not.toContain(secret);
    }
    expect(seen).toEqual([
      [502, '{"error":"upstream unavailable"}', ["content-type"]],
      [503, '{"error":"upstream circuit open"}', ["content-type", "retry-after"]],
      [504, '{"error":"upstream timed out"}', ["content-type"]],
    ]);
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("POST /__resilience/health with a token: 405 Allow: GET, HEAD, nothing forwarded", async () => {
    const res = await proxyOf([{ path: "/", upstream: a.base }])(
      new Request("http://proxy.test/__resilience/health", {
        method: "POST",
        body: "x",
        headers: { authorization: "Bearer t" },
      }),
    );
    expect([res.status, res.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    expect(a.hits).toHaveLength(0);
  });
});

describe("redirects", () => {
  const moved = (to: string) => (hit: Hit) => {
    if (hit.path === "/a") hit.res.writeHead(302, { location: to }).end("moved");
    else hit.res.end(`at ${hit.path}`);
  };

  it("the layer follows a redirect whatever the client's redirect mode (the plain handler passes a manual client's 302)", async () => {
    const viaProxy = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", { redirect: "manual" }),
      moved("/b"),
    );
    const viaPlain = await exchange(
      plainTo(a.base),
      new Request("http://proxy.test/a", { redirect: "manual" }),
      moved("/b"),
    );
    expect([viaProxy.status, viaProxy.body, viaProxy.hits.map((hit) => hit.path)]).toEqual([
      200,
      "at /b",
      ["/a", "/b"],
    ]);
    expect([viaPlain.status, viaPlain.body]).toEqual([302, "moved"]);
  });

  it("a 307 POST goes again with its body; a hop to another origin drops the client's credentials", async () => {
    const post = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", { method: "POST", body: "job" }),
      (hit) => (hit.path === "/a" ? hit.res.writeHead(307, { location: "/b" }).end() : hit.res.end("done")),
    );
    expect(post.hits.map((hit) => [hit.method, hit.path, hit.bytes.toString()])).toEqual([
      ["POST", "/a", "job"],
      ["POST", "/b", "job"],
    ]);
    b.on((hit) => hit.res.end("elsewhere"));
    const away = await exchange(
      proxyOf([{ path: "/", upstream: a.base }]),
      new Request("http://proxy.test/a", { headers: { authorization: "Bearer C", cookie: "s=1", "x-api-key": "k" } }),
      moved(`${b.base}/c`),
    );
    expect(away.body).toBe("elsewhere");
    const there = b.hits[0] as Hit;
    expect([there.headers.authorization, there.headers.cookie, there.headers["x-api-key"]]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});
