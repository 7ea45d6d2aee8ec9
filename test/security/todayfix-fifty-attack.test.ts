/**
 * Outside-in attack on the fixes made on main today (a84b720..HEAD), each new promise of the CHANGELOG's newest
 * "Fixed" entries driven through the public entries on every path it applies to: `resilientProxy` behind a real
 * node:http server (curl-like `expect: 100-continue` uploads, refused and failed client bodies, real upstream
 * failures), redirects at a degraded level keyed by the attempt's breaker key, Blob and bytes bodies labelled as
 * neither JSON nor text, copies of answers that list their headers (with and without MSW 3), the ky client's
 * `Headers`, and the `./policies` fixes (`CircuitBreaker.hold`, a hedged run after an abort, frozen constants).
 *
 * Docs:
 * - CHANGELOG.md (Fixed): "`resilientProxy` … now drops `expect` … A request the runtime refuses unsent (a
 *   `content-length` that is no number), or whose client body stream fails while it goes, is now answered `400` by
 *   the proxy and `failureResponse`, not a `502` that a client layer in front retries and counts against the proxy";
 *   "The follower now compares each hop with the key the attempt went out under"; "A body labelled as neither JSON
 *   nor text (`image/png`, `application/octet-stream`) is now taken as no JSON, unread, and an unlabelled Blob is
 *   read only when its first bytes open an object or an array"; "The copies now list the headers. The ky client
 *   hands ky a `Headers` given as `headers` as its list of entries"; "A past hold now holds nothing, and
 *   `hold(NaN)` is a `TypeError`"; "No hedge timer is armed after the abort"; "`LEVEL_NAMES` and `systemClock` are
 *   frozen"; "`resilience.degradation.settings()` … They are frozen now".
 * - docs/cloudflare.md: "answers `503` with `Retry-After` when the circuit is open, `504` on a timeout, `400` when the
 *   request failed of the client's own making at every endpoint tried (the runtime refused it unsent, as Node's
 *   fetch does a `content-length` that is no number, or the client's body stream failed while it went) and `502`
 *   when no endpoint answered otherwise"; "adds `x-resilience-endpoint` … to the responses the upstreams gave"; "The
 *   proxy forwards neither the hop's headers (… and the client's `proxy-authorization` and `expect`, whose
 *   `100-continue` the server before the proxy answered)". `failureResponse` JSDoc: "the caller's own body stream
 *   failed while it was sent: `400`".
 * - docs/degradation.md: "The breaker key (`url.host`, or `breaker.key(url)`) is taken from the URL the caller asked
 *   for, before the rewrite: a call keeps its host's breaker at every level, and a `breaker.key` that reads a query
 *   parameter a rule rewrites reads the caller's value"; "non-JSON bodies are left alone (bytes or a Blob labelled as
 *   neither JSON nor text, such as `image/png` or `application/octet-stream`, are taken as such unread, so a file
 *   upload is never read into memory at a degraded level; so is a Blob under another label whose first bytes are no
 *   `{` or `[`)"; "The default rule reads the usual parameter names … at the top level of any JSON body"; the Blob's
 *   type "its parameters read as fetch's MIME parser reads them".
 * - docs/fallback.md: `transform` "receives `{ method, url, headers, body, endpoint }` with `body` the parsed JSON
 *   object (… `undefined` for a body that is no JSON object, bytes or a Blob labelled as neither JSON nor text …)";
 *   "the breaker of the host in its declared `url`, asked before its `transform` runs, then that of the host the
 *   `transform` sends it to"; `validate`: "one whose body `validate` stopped reading, too large or too slow, comes,
 *   if the call resolves with it, as a new `Response` … with the endpoint's status, headers, `url` and `redirected`".
 * - docs/retry.md: "a hop back to the first host is part of the attempt its breaker admitted"; "A hop to another
 *   host whose breaker refuses calls … is refused … with a `CircuitOpenError` naming that host".
 * - docs/testing.md: "so do the answers it hands back as copies (one it kept while a retry waited, one `validate`
 *   read, every answer of `resilientProxy`): a route that passes one on with `new Headers(answer.headers)` keeps its
 *   `Retry-After`. The ky client hands ky a `Headers` you pass as `headers` (per call or to `createClient`) as the
 *   list of its entries."
 * - JSDoc: `CircuitBreaker.hold` ("a time already past holds nothing. A `until` that is no number (`NaN` …) is a
 *   `TypeError`"); `GracefulDegradation.settings` ("frozen"); `ChainRunOptions.hedgeDelay`.
 *
 * How: `createResilience`, `getResilienceInfo`, `isCircuitOpenError` (root), `resilientProxy`, `failureResponse`
 * (./cloudflare), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky) with ky's
 * `replaceOption`, `CircuitBreaker`, `FallbackChain`, `transition`, `LEVEL_NAMES`, `systemClock` (./policies),
 * `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts, one reached as
 * `localhost` for another origin), a node:http server in front of the proxy that builds a `Request` from each
 * incoming message (its raw headers, `Readable.toWeb(req)` as the body) and a node:http client that uploads as curl
 * does (`expect: 100-continue`, body after the `100`), a raw node:net server for a reason phrase; MSW 3.0.5
 * `setupServer` (unhandled requests bypassed to the real servers) for the copies and the ky client.
 *
 * Paths: plain call (bytes, Blob, File from `fs.openAsBlob`), `Request` input, fallback chain (`transform`,
 * `validate`), redirect (307 back to the attempt's own key, through a layer used as another's fetch), degradation
 * rewrite, ky client (per call, `createClient`, `extend`, `extend(fn)`, `create`, `replaceOption`),
 * `resilientProxy` (upstream and chain routes, behind a node:http server and called directly), `failureResponse`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; 2-7 fixed in the fiftieth session, 1 corrected in docs/cloudflare.md and failureResponse's JSDoc, so plain `it`):
 * 1. docs/cloudflare.md "`400` when the request failed of the client's own making at every endpoint tried (… or the
 *    client's body stream failed while it went)", `failureResponse` JSDoc "the caller's own body stream failed while
 *    it was sent: `400`". Observed: a curl-like upload (`expect: 100-continue`, `content-length: 4096`, above
 *    `maxReplayBytes`) whose client hangs up after 200 bytes, once the upstream had the request: the proxy answers
 *    `502` "upstream unavailable". Directly, a `Request` with that `content-length` and a stream that errors: the
 *    same, and the upstream's breaker counts a failure. Only a body with no `content-length` (read ahead past the
 *    limit, then sent) gets the `400`. Source: src/http/request/normalize-request.ts sends a `Request` body
 *    announced larger than `maxReplayBytes` "as it is", never wrapped by src/http/request/replay-body.ts `resume`,
 *    so `sourceFailed` is false in src/http/send/send-attempt.ts and `markBodyFailure` never marks the error
 *    (docs/retry.md calls such a failure "the host's as far as the layer can tell"; the proxy knows it is the
 *    client's).
 * 2. Same sentences. Observed: a body whose client stream fails within `maxReplayBytes` (read ahead by the layer,
 *    nothing sent): the proxy answers `502` "upstream unavailable" (behind the node:http server: a client that
 *    announced 30 bytes and hung up after 10). Source: replay-body.ts `readForReplay` throws `bodyReadError` (a
 *    `TypeError` "the request body could not be read"), which src/http/send/failure-reason.ts `isCallersFailure`
 *    does not know, so src/cloudflare/failure-response.ts falls through to `502`.
 * 3. docs/degradation.md "a call keeps its host's breaker at every level, and a `breaker.key` that reads a query
 *    parameter a rule rewrites reads the caller's value" (with docs/fallback.md "then that of the host the
 *    `transform` sends it to"). Observed: `breaker.key` = host + `model`, a `{ model: { query: "model" } }` rule, a
 *    chain endpoint whose `transform` sends the call to `localhost`: at `full` a call for `?model=premium` goes under
 *    "localhost premium"; at `medium` under "localhost standard", so with "localhost standard" open (and "localhost
 *    premium" closed) the `medium` call is passed over unsent and the chain fails. The attempt key today's redirect
 *    fix compares hops with is that rewritten key too. Source: src/fallback/try-endpoints.ts `sendToEndpoint` keys a
 *    URL the `transform` changed with `parts.keyOf(shaped.url)`, the rewritten query (degradation runs before the
 *    chain), where `keyUrl` uses the caller's (`call.keyRest`).
 * 4. docs/degradation.md "The default rule reads the usual parameter names … at the top level of any JSON body" and
 *    the Blob type's "parameters read as fetch's MIME parser reads them"; docs/fallback.md `transform`'s `body` "the
 *    parsed JSON object". Observed (a regression of today's fix: at a84b720 each was rewritten): bytes or a Blob
 *    labelled `Application/JSON` (or `APPLICATION/JSON; charset=UTF-8`, `application/vnd.api+JSON`) holding
 *    `{"steps":50}` are sent as written at `medium`, through a plain call and a `Request`, and a chain's `transform`
 *    gets `body: undefined`. Source: src/http/request/json-body.ts `readJsonBody`: `label.includes("json")` is
 *    case-sensitive, and `/^(?!text\/)[^\s;]/i` then takes a JSON label in capitals for "neither JSON nor text".
 * 5. docs/degradation.md "bytes or a Blob labelled as neither JSON nor text, such as `image/png` or
 *    `application/octet-stream`, are taken as such unread, so a file upload is never read into memory". Observed: a
 *    Blob sent with `content-type: application/octet-stream; name="steps.json"` is read whole (`arrayBuffer()`
 *    called) and rewritten at `medium`. Source: json-body.ts `readJsonBody`: `label.includes("json")` looks at the
 *    whole header, parameters included, not at the MIME type's essence.
 * 6. docs/cloudflare.md "`502` when no endpoint answered otherwise" (and "adds … to the responses the upstreams
 *    gave"); docs/fallback.md `validate` "comes … as a new `Response` … with the endpoint's status, headers". Observed:
 *    an upstream answering `HTTP/1.1 200 ОК €` (a reason phrase Node's fetch reads as UTF-8, characters above
 *    U+00FF): a plain call resolves 200; the proxy answers `502` "upstream unavailable"; a chain whose `validate`
 *    stopped reading a body larger than `maxReplayBytes` rejects with `RetryExhaustedError` ("Cannot convert
 *    argument to a ByteString"). Source: src/http/request/headers.ts `sameStatusAndHeaders` copies `statusText` as it
 *    is into `new Response(…)` (src/cloudflare/resilient-proxy.ts, src/fallback/validate-response.ts
 *    `answerToGive`), and the `Response` constructor refuses it.
 * 7. docs/testing.md "The ky client hands ky a `Headers` you pass as `headers` (per call or to `createClient`) as the
 *    list of its entries". Observed under MSW: a `Headers` made before `server.listen()` and passed inside ky's
 *    `replaceOption(…)` (per call, to `createClient`, `extend` or `create`) reaches the server with only what was set
 *    on it after `listen()` (`authorization`, `x-team` lost); passed bare it keeps all, and with MSW closed the
 *    wrapped one keeps all. Source: src/ky/header-values.ts `listedHeaders` lists only a bare `Headers`
 *    (`instanceof Headers`); src/ky/index.ts (`onLayer`, `withHeadersChecked`, `lastInit`) hands ky the
 *    `replaceOption` marker with the `Headers` still inside, though `badHeader` beside it looks inside that marker.
 *
 * Held (plain `it`):
 * - Behind a node:http server, curl-like uploads with `expect: 100-continue` (`content-length` below and above
 *   `maxReplayBytes`, and chunked) reach the upstream whole, without `expect`, answered 200; on a chain route a small
 *   one moves on from the primary's 503 to the spare with the same body, neither seeing `expect`.
 * - A `content-length` that is no number: `400`, nothing sent, no breaker failure, on an upstream route and a chain
 *   route whose endpoints share an origin; a body with no `content-length` failing past the read-ahead: `400`. Real upstream failures still get their
 *   answers: connection refused `502`, a reset mid-upload `502` (counted), an open circuit `503` with `Retry-After`,
 *   an attempt timeout `504` (on a `TestClock`).
 * - A layer used as another's `fetch` (`redirects: "platform"` on the outer one, which rewrites at `medium`): the
 *   inner layer's half-open probe follows its 307 back to its own key (the outer's attempt key does not leak in).
 * - Bodies at `medium`: `image/png`, `video/mp4` and `application/octet-stream` Blobs unread (no `arrayBuffer`,
 *   `slice` or `text` call) and sent as written; `application/octet-stream` bytes sent as written; an untyped Blob
 *   sniffed then rewritten; `text/plain` (any case) and `+json` rewritten; a `File` from `fs.openAsBlob` typed
 *   `video/mp4` sent as written; an empty Blob sent empty; a chain's `transform` gets `undefined` for `image/png`.
 * - Copies with and without MSW: the proxy's and `validate`'s copies (200, 503, 204, 304) keep status, statusText,
 *   both `set-cookie` lines, 120 other headers and `Retry-After` through `new Headers(answer.headers)`;
 *   `validate`'s copy of a redirected answer keeps `url`, `redirected` and `type`.
 * - ky under MSW: a pre-`listen()` `Headers` per call, to `createClient`, `extend`, `extend(fn)` and `create` keeps
 *   every entry.
 * - `CircuitBreaker.hold`: a past time, now and `-Infinity` hold nothing; `NaN` and a string are `TypeError`s;
 *   `Infinity` opens; a failure carrying a past hold stays below `failureThreshold`; `transition` gives the same
 *   object for a second failure while open in the same millisecond. A hedged `FallbackChain.run` aborted while its
 *   entry ignores the signal leaves no timer once its armed one fired and starts no other entry. `LEVEL_NAMES`,
 *   `systemClock` and `settings()` (and its `features`) refuse writes; a caller's own `levels` objects stay unfrozen.
 *
 * Docs-silent (not pinned):
 * - (Since fixed: refused.) `hold(Infinity)` opens for good, but its snapshot's `openUntil` is `Infinity`, which JSON (a KV store, a Durable
 *   Object's storage) writes as `null`: a breaker adopting that snapshot reads `half_open` at once.
 * - A `Request` whose `content-length` is a number that does not match its body (3 or 9 for 5 bytes) is no
 *   "refusal": Node's fetch fails it with `UND_ERR_REQ_CONTENT_LENGTH_MISMATCH` (after sending the headers, for a
 *   shorter body) or hangs (for a longer one); the proxy answers `502` and the upstream's breaker counts it.
 * - An aborted hedged run whose entry answers after the abort reports `{ ok: false, errors: {}, tried: [] }`: the
 *   entry that ran is not listed in `tried`.
 * - On a chain route whose spare is on another origin, a `content-length` that is no number is refused unsent at the
 *   primary, and the spare gets the call without it (no cross-origin header) and answers: the client gets `200`.
 * - An untyped Blob whose JSON starts after 256 bytes of white space is taken as no JSON (only its first 256 bytes
 *   are looked at); before today it was rewritten.
 */
import { once } from "node:events";
import { openAsBlob, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { replaceOption } from "ky";
import { http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import {
  CircuitBreaker,
  FallbackChain,
  initialBreakerState,
  LEVEL_NAMES,
  systemClock,
  transition,
} from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

const ctx = { waitUntil() {} };
/** Triggers that read only error rate and latency, whatever machine runs the test. */
const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;
const modelKey = (u: URL): string => `${u.host} ${u.searchParams.get("model") ?? ""}`;
const modelRules = [{ params: { model: { query: "model" } } }];
const enc = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
const J = '{"steps":50}';
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
}
const breakerFailures = (layerHealth: { breakers: Record<string, { failureCount: number }> }) =>
  Object.values(layerHealth.breakers).reduce((sum, b) => sum + b.failureCount, 0);

type Proxy = ReturnType<typeof resilientProxy>;

async function listening(server: Server | ReturnType<typeof createNetServer>): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A stream that gives `head` bytes, then fails (or ends). */
function clientBody(head: number, fail = true): ReadableStream<Uint8Array> {
  let given = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!given) {
        given = true;
        controller.enqueue(new Uint8Array(head).fill(97));
      } else if (fail) controller.error(new TypeError("the client went away"));
      else controller.close();
    },
  });
}

/**
 * A node:http server in front of a proxy, as a Node adapter would be: each incoming message becomes a `Request`
 * (its raw headers, its body as a web stream); the proxy's answer is written back, and its status kept in `answers`.
 */
function frontOf(proxy: Proxy) {
  const answers: number[] = [];
  let entered = 0;
  const server = createServer((req: IncomingMessage, res) => {
    entered++;
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
      duplex: "half",
    } as RequestInit);
    proxy.fetch(request, {}, ctx).then(
      async (answer) => {
        answers.push(answer.status);
        const body = Buffer.from(await answer.arrayBuffer());
        if (res.destroyed) return;
        res.writeHead(answer.status, [...answer.headers].flat());
        res.end(body);
      },
      () => {
        answers.push(-1);
        res.destroy();
      },
    );
  });
  return {
    server,
    answers,
    entered: () => entered,
    async start() {
      const base = await listening(server);
      return Number(new URL(base).port);
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Uploads as curl does: with `expect: 100-continue`, the body written once the server said `100 Continue`. */
function curlUpload(
  port: number,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; continued: boolean }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = httpRequest({ host: "127.0.0.1", port, method: "POST", path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), continued }));
    });
    req.on("error", reject);
    req.on("continue", () => {
      continued = true;
      req.end(body);
    });
  });
}

describe("resilientProxy behind a node:http server: expect, refused and failed client bodies", () => {
  let proxy: Proxy;
  let chainProxy: Proxy;
  let front: ReturnType<typeof frontOf>;
  let chainFront: ReturnType<typeof frontOf>;
  let port = 0;
  let chainPort = 0;
  beforeAll(async () => {
    proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${up.base}/api` }],
      resilience: { retry: false, maxReplayBytes: 64 },
    });
    chainProxy = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${up.base}/api` },
              { name: "spare", url: `http://localhost:${other.port}/api` },
            ],
          },
        },
      ],
      resilience: { retry: false, maxReplayBytes: 64 },
    });
    front = frontOf(proxy);
    chainFront = frontOf(chainProxy);
    port = await front.start();
    chainPort = await chainFront.start();
  });
  afterAll(() => {
    front.stop();
    chainFront.stop();
  });
  const health = async (p: Proxy) =>
    (await (await p.fetch(new Request("http://proxy.example/__resilience/health"), {}, ctx)).json()) as {
      breakers: Record<string, { failureCount: number }>;
    };

  it("curl-like uploads with expect: 100-continue reach the upstream whole, without expect", async () => {
    up.on((hit) => hit.res.end(`got ${hit.bytes.length} ${hit.headers.expect ?? "no expect"}`));
    const outcomes = [];
    for (const size of [10, 4096]) {
      const body = Buffer.alloc(size, 97);
      outcomes.push(await curlUpload(port, "/v1/up", body, { expect: "100-continue", "content-length": String(size) }));
      outcomes.push(await curlUpload(port, "/v1/up", body, { expect: "100-continue", "transfer-encoding": "chunked" }));
    }
    expect(outcomes.map((o) => [o.status, o.text, o.continued])).toEqual([
      [200, "got 10 no expect", true],
      [200, "got 10 no expect", true],
      [200, "got 4096 no expect", true],
      [200, "got 4096 no expect", true],
    ]);
    expect(up.hits.every((hit) => hit.path === "/api/up")).toBe(true);
  });

  it("on a chain route, a small expect upload moves on from the primary's 503 to the spare, neither sees expect", async () => {
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    other.on((hit) => hit.res.end(`spare got ${hit.body}`));
    const out = await curlUpload(chainPort, "/v1/up", Buffer.from("0123456789"), {
      expect: "100-continue",
      "content-length": "10",
    });
    expect([out.status, out.text]).toEqual([200, "spare got 0123456789"]);
    expect([up.hits[0]?.body, up.hits[0]?.headers.expect, other.hits[0]?.headers.expect]).toEqual([
      "0123456789",
      undefined,
      undefined,
    ]);
  });

  it("a content-length that is no number: 400, nothing sent, no breaker failure (upstream and chain routes)", async () => {
    const refused = (p: Proxy) =>
      p.fetch(
        new Request("http://proxy.example/v1/x", {
          method: "POST",
          body: "hello",
          headers: { "content-length": "abc" },
        }),
        {},
        ctx,
      );
    // A chain whose spare shares the primary's origin: a spare on another origin gets the call without the
    // caller's content-length (it is no allowlisted header) and answers it.
    const sameOrigin = resilientProxy({
      routes: [
        {
          path: "/v1",
          chain: {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${up.base}/api` },
              { name: "spare", url: `${up.base}/spare` },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    const plain = await refused(proxy);
    const chained = await refused(sameOrigin);
    expect([plain.status, chained.status, await plain.json()]).toEqual([
      400,
      400,
      { error: "the client's request failed" },
    ]);
    await chained.text();
    expect([up.hits.length, other.hits.length]).toEqual([0, 0]);
    expect(breakerFailures(await health(proxy)) + breakerFailures(await health(sameOrigin))).toBe(0);
  });

  it("a body with no content-length failing past the read-ahead: 400", async () => {
    up.on((hit) => hit.res.end("ok"));
    const answer = await proxy.fetch(
      new Request("http://proxy.example/v1/x", {
        method: "POST",
        body: clientBody(1_000),
        duplex: "half",
      } as RequestInit),
      {},
      ctx,
    );
    expect(answer.status).toBe(400);
    await answer.text();
  });

  // First pinned as "400, uncounted", as docs/cloudflare.md said; the doc now says what docs/retry.md does: a body
  // announced larger than `maxReplayBytes` goes to fetch unread, and its failure is the host's as far as the layer
  // can tell (a 502, counted).
  it("a curl-like upload (content-length above maxReplayBytes) whose client hangs up mid-body: 502, the host's", async () => {
    // An upstream that signals when the request reached it, and reads what comes.
    let reached!: () => void;
    const started = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const slow = createServer((req) => {
      req.on("data", () => {});
      req.on("error", () => {});
      reached();
    });
    const slowBase = await listening(slow);
    const p = resilientProxy({ routes: [{ path: "/v1", upstream: slowBase }], resilience: { maxReplayBytes: 64 } });
    const f = frontOf(p);
    const fPort = await f.start();
    try {
      const client = httpRequest({
        host: "127.0.0.1",
        port: fPort,
        method: "POST",
        path: "/v1/up",
        headers: { expect: "100-continue", "content-length": "4096" },
      });
      client.on("error", () => {});
      client.on("continue", () => client.write(Buffer.alloc(200, 97)));
      client.flushHeaders();
      await started;
      client.destroy();
      await until(() => f.answers.length > 0);
      // The same, called directly: a Request with that content-length and a stream that errors.
      const direct = await p.fetch(
        new Request("http://proxy.example/v1/up", {
          method: "POST",
          body: clientBody(200),
          duplex: "half",
          headers: { "content-length": "4096" },
        } as RequestInit),
        {},
        ctx,
      );
      await direct.text();
      expect([f.answers[0], direct.status]).toEqual([502, 502]);
      expect(breakerFailures(await health(p))).toBeGreaterThan(0);
    } finally {
      f.stop();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it("a client body that fails within maxReplayBytes (read ahead, nothing sent): 400", async () => {
    const client = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/v1/up",
      headers: { "content-length": "30" },
    });
    client.on("error", () => {});
    const before = front.answers.length;
    const entered = front.entered();
    client.write(Buffer.alloc(10, 97));
    await until(() => front.entered() > entered);
    await turns(5);
    client.destroy();
    await until(() => front.answers.length > before);
    const direct = await proxy.fetch(
      new Request("http://proxy.example/v1/x", { method: "POST", body: clientBody(10), duplex: "half" } as RequestInit),
      {},
      ctx,
    );
    const body = await direct.json();
    expect(up.hits).toHaveLength(0);
    // Observed: 502 both ways, { error: "upstream unavailable" }.
    expect([front.answers[before], direct.status, body]).toEqual([400, 400, { error: "the client's request failed" }]);
  });

  it("real upstream failures keep their answers: refused 502, reset mid-upload 502, open 503, timeout 504", async () => {
    const dead = await refusedOrigin();
    const refusedProxy = resilientProxy({ routes: [{ path: "/v1", upstream: dead }], resilience: { retry: false } });
    const refused = await refusedProxy.fetch(
      new Request("http://proxy.example/v1/x", { method: "POST", body: "x" }),
      {},
      ctx,
    );
    await refused.text();

    const resetting = createServer((req) => {
      req.once("data", () => req.socket.destroy());
    });
    const resetBase = await listening(resetting);
    const resetProxy = resilientProxy({
      routes: [{ path: "/v1", upstream: resetBase }],
      resilience: { retry: false, maxReplayBytes: 64 },
    });
    let sent = 0;
    const upload = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent++ >= 64) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 2));
        controller.enqueue(new Uint8Array(1_000).fill(97));
      },
    });
    const reset = await resetProxy.fetch(
      new Request("http://proxy.example/v1/x", { method: "POST", body: upload, duplex: "half" } as RequestInit),
      {},
      ctx,
    );
    await reset.text();
    const resetFailures = breakerFailures(await health(resetProxy));
    resetting.closeAllConnections();
    resetting.close();

    const clock = new TestClock();
    const timing = resilientProxy({
      routes: [{ path: "/v1", upstream: `${up.base}/api` }],
      resilience: { clock, retry: false, timeout: { attempt: 1_000 }, breaker: { failureThreshold: 1 } },
    });
    up.on(() => {}); // never answers
    const pending = timing.fetch(new Request("http://proxy.example/v1/slow"), {}, ctx);
    await until(() => clock.pending() > 0);
    await clock.advance(1_000);
    const timedOut = await pending;
    await timedOut.text();
    const open = await timing.fetch(new Request("http://proxy.example/v1/slow"), {}, ctx);
    await open.text();
    expect([refused.status, reset.status, resetFailures, timedOut.status, open.status]).toEqual([
      502, 502, 1, 504, 503,
    ]);
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});

describe("redirects at a degraded level: the attempt's breaker key", () => {
  it("a layer used as another's fetch: the inner probe's 307 back to its own key is followed", async () => {
    const clock = new TestClock();
    const inner = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 1, successThreshold: 1, halfOpenMaxCalls: 1, timeout: 1_000, key: modelKey },
    });
    const outer = createResilience({
      clock,
      retry: false,
      fetch: inner.fetch,
      redirects: "platform",
      breaker: { key: modelKey },
      degradation: degradation({ ...calm, rules: modelRules }),
    });
    up.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("down");
      } else if (hit.path.startsWith("/gen")) {
        hit.res.writeHead(307, { location: "/done?model=standard" });
        hit.res.end();
      } else hit.res.end("ok");
    });
    await (await inner.fetch(`${up.base}/gen?model=standard`)).text();
    await clock.advance(1_500);
    expect(inner.health().breakers[`${up.host} standard`]?.state).toBe("half_open");
    outer.degradation.setLevel("medium");
    const outcome = await outer.fetch(`${up.base}/gen?model=premium`).then(
      (r) => r.text(),
      (e: unknown) => e,
    );
    expect(outcome).toBe("ok");
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=standard", "/gen?model=standard", "/done?model=standard"]);
    expect(inner.health().breakers[`${up.host} standard`]?.state).toBe("closed");
  });

  /** A chain whose endpoint's `transform` sends the call to `localhost`, keyed by host + model. */
  function transformedChain() {
    return createResilience({
      clock: new TestClock(),
      retry: false,
      breaker: { failureThreshold: 1, key: modelKey },
      degradation: degradation({ ...calm, rules: modelRules }),
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "moved",
              url: `${up.base}/gen`,
              transform: (req) => ({ ...req, url: req.url.replace(up.base, `http://localhost:${other.port}`) }),
            },
          ],
        },
      ]),
    });
  }

  it("held: at `full`, a call for ?model=premium through the transform goes under localhost's premium key", async () => {
    const layer = transformedChain();
    other.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("down");
      } else hit.res.end("ok");
    });
    await (await layer.fetch(`${up.base}/gen?model=standard`)).text();
    expect(layer.health().breakers[`localhost:${other.port} standard`]?.state).toBe("open");
    const res = await layer.fetch(`${up.base}/gen?model=premium`);
    expect([res.status, await res.text()]).toEqual([200, "ok"]);
  });

  it("at `medium`, the same call keeps the caller's premium key, not the rewritten standard one", async () => {
    const layer = transformedChain();
    other.on((hit) => {
      if (hit.n === 1) {
        hit.res.statusCode = 503;
        hit.res.end("down");
      } else hit.res.end("ok");
    });
    await (await layer.fetch(`${up.base}/gen?model=standard`)).text();
    expect(layer.health().breakers[`localhost:${other.port} standard`]?.state).toBe("open");
    layer.degradation.setLevel("medium");
    const outcome = await layer.fetch(`${up.base}/gen?model=premium`).then(
      async (r) => [r.status, await r.text()],
      (e: unknown) => (e instanceof Error ? e.message : e),
    );
    // Observed: FallbackExhaustedError (moved: circuit open), nothing sent: the call is keyed "localhost standard".
    expect(outcome).toEqual([200, "ok"]);
    expect(other.hits.map((h) => h.path)).toEqual(["/gen?model=standard", "/gen?model=standard"]);
  });
});

/** A Blob that records every way it is read. */
class Watched extends Blob {
  reads: string[] = [];
  override arrayBuffer() {
    this.reads.push("arrayBuffer");
    return super.arrayBuffer();
  }
  override text() {
    this.reads.push("text");
    return super.text();
  }
  override slice(...args: Parameters<Blob["slice"]>) {
    this.reads.push("slice");
    return super.slice(...args);
  }
}

describe("bodies labelled as neither JSON nor text, at a degraded level and for a chain's transform", () => {
  function mediumLayer() {
    const layer = createResilience({ retry: false, degradation: degradation({ ...calm }) });
    layer.degradation.setLevel("medium");
    return layer;
  }
  async function sent(layer: ReturnType<typeof mediumLayer>, input: string | Request, init?: RequestInit) {
    up.reset();
    up.on((hit) => hit.res.end("ok"));
    await (await layer.fetch(input, init)).text();
    return up.hits[0]?.body;
  }

  it("held: image, video and octet-stream uploads go unread and as written; text and +json are rewritten", async () => {
    const layer = mediumLayer();
    const out: Array<[string, unknown, string[]]> = [];
    for (const type of ["image/png", "video/mp4", "application/octet-stream", ""]) {
      const blob = new Watched([J], { type });
      out.push([type, await sent(layer, `${up.base}/x`, { method: "POST", body: blob }), blob.reads]);
    }
    expect(out).toEqual([
      ["image/png", J, []],
      ["video/mp4", J, []],
      ["application/octet-stream", J, []],
      ["", '{"steps":30}', ["slice", "arrayBuffer"]],
    ]);
    const label = (type: string): RequestInit => ({ method: "POST", body: enc(J), headers: { "content-type": type } });
    expect([
      await sent(layer, `${up.base}/x`, label("application/octet-stream")),
      await sent(layer, `${up.base}/x`, label("text/plain")),
      await sent(layer, `${up.base}/x`, label("TEXT/PLAIN; charset=utf-8")),
      await sent(layer, `${up.base}/x`, label("application/vnd.api+json")),
      await sent(layer, `${up.base}/x`, { method: "POST", body: new Blob([]) }),
    ]).toEqual([J, '{"steps":30}', '{"steps":30}', '{"steps":30}', ""]);
    const path = join(tmpdir(), `todayfix-${process.pid}.json`);
    writeFileSync(path, J);
    try {
      const video = await openAsBlob(path, { type: "video/mp4" });
      const file = await openAsBlob(path);
      expect([
        await sent(layer, `${up.base}/x`, { method: "POST", body: video }),
        await sent(layer, `${up.base}/x`, { method: "POST", body: file }),
      ]).toEqual([J, '{"steps":30}']);
    } finally {
      rmSync(path);
    }
  });

  it("bytes or a Blob labelled JSON in capitals are JSON: rewritten (plain call, Request)", async () => {
    const layer = mediumLayer();
    const bodies = [
      await sent(layer, `${up.base}/x`, {
        method: "POST",
        body: enc(J),
        headers: { "content-type": "Application/JSON" },
      }),
      await sent(layer, `${up.base}/x`, {
        method: "POST",
        body: enc(J),
        headers: { "content-type": "APPLICATION/JSON; charset=UTF-8" },
      }),
      await sent(layer, `${up.base}/x`, {
        method: "POST",
        body: new Blob([J]),
        headers: { "content-type": "Application/Json" },
      }),
      await sent(layer, `${up.base}/x`, {
        method: "POST",
        body: enc(J),
        headers: { "content-type": "application/vnd.api+JSON" },
      }),
      await sent(
        layer,
        new Request(`${up.base}/x`, { method: "POST", body: J, headers: { "content-type": "Application/JSON" } }),
      ),
    ];
    // Observed: each sent as written, {"steps":50} (at a84b720 each was rewritten).
    expect(bodies).toEqual(Array(5).fill('{"steps":30}'));
  });

  it("a chain's transform gets the parsed body of bytes and a Blob labelled JSON in capitals", async () => {
    const seen: unknown[] = [];
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            {
              name: "a",
              url: `${up.base}/a`,
              transform: (req) => {
                seen.push(req.body);
                return req;
              },
            },
          ],
        },
      ]),
    });
    up.on((hit) => hit.res.end("ok"));
    for (const body of [enc(J), new Blob([J]), new Blob([J], { type: "image/png" })]) {
      await (
        await layer.fetch(`${up.base}/a`, {
          method: "POST",
          body,
          headers: body instanceof Blob && body.type ? {} : { "content-type": "Application/JSON" },
        })
      ).text();
    }
    // Observed: [undefined, undefined, undefined] (the held part: image/png is undefined).
    expect(seen).toEqual([{ steps: 50 }, { steps: 50 }, undefined]);
  });

  it("a Blob labelled application/octet-stream with a parameter naming .json goes unread", async () => {
    const layer = mediumLayer();
    const blob = new Watched([J]);
    const body = await sent(layer, `${up.base}/x`, {
      method: "POST",
      body: blob,
      headers: { "content-type": 'application/octet-stream; name="steps.json"' },
    });
    // Observed: ["arrayBuffer"] and {"steps":30}: read whole and rewritten.
    expect([blob.reads, body]).toEqual([[], J]);
  });
});

describe("an answer whose reason phrase holds characters above U+00FF", () => {
  let base = "";
  const raw = createNetServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => {
      const body = `{"a":"${"x".repeat(200)}"}`;
      socket.end(
        Buffer.concat([
          Buffer.from("HTTP/1.1 200 "),
          Buffer.from("ОК €", "utf8"),
          Buffer.from(
            `\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
          ),
        ]),
      );
    });
  });
  beforeAll(async () => {
    base = await listening(raw);
  });
  afterAll(() => {
    raw.close();
  });
  const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) } };

  it("held: a plain call resolves with it", async () => {
    const res = await createResilience({}).fetch(`${base}/x`);
    expect([res.status, res.statusText, (await res.text()).length]).toEqual([200, "ОК €", 208]);
  });

  it("the proxy passes it on, and a chain's validate copy resolves with it", async () => {
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: base }] });
    const passed = await proxy.fetch(new Request("http://proxy.example/x"), {}, ctx);
    const layer = createResilience({
      maxReplayBytes: 64,
      fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: base, validate: schema }] }]),
    });
    const validated = await layer.fetch(`${base}/x`).then(
      async (r) => [r.status, (await r.text()).length],
      (e: unknown) => (e instanceof Error ? e.message : e),
    );
    // Observed: 502 "upstream unavailable"; "gave up after 1 attempt to c: Cannot convert argument to a ByteString …".
    expect([passed.status, (await passed.text()).length, validated]).toEqual([200, 208, [200, 208]]);
  });
});

/** Made at module scope, before `server.listen()`, as a test file's shared `Headers` is. */
const early = new Headers({ authorization: "Bearer early", "x-team": "t1" });

function answerOf(kind: string): Response {
  const headers = new Headers({ "x-a": "1", "retry-after": "7" });
  headers.append("set-cookie", "a=1; Path=/");
  headers.append("set-cookie", "b=2; Path=/");
  for (let i = 0; i < 120; i++) headers.set(`x-many-${i}`, String(i));
  if (kind === "204") return new Response(null, { status: 204, statusText: "Nada", headers });
  if (kind === "304") return new Response(null, { status: 304, statusText: "Not Modified", headers });
  headers.set("content-type", "application/json");
  return new Response('{"ok":1}', { status: kind === "503" ? 503 : 200, statusText: "Custom Text", headers });
}

async function seenThrough(res: Response) {
  const copy = new Headers(res.headers);
  return {
    status: res.status,
    statusText: res.statusText,
    cookies: copy.getSetCookie(),
    retryAfter: copy.get("retry-after"),
    many: [...copy.keys()].filter((name) => name.startsWith("x-many-")).length,
    body: await res.text(),
  };
}

const msw = setupServer(
  http.all("https://h.example/*", ({ request }) => answerOf(new URL(request.url).pathname.split("/").pop() ?? "")),
);

for (const withMsw of [false, true]) {
  describe(`answers the layer copies list their headers (${withMsw ? "under MSW 3" : "real servers"})`, () => {
    beforeAll(() => {
      if (withMsw) msw.listen({ onUnhandledFrame: "bypass" });
    });
    afterAll(() => {
      if (withMsw) msw.close();
    });
    const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) } };

    it("the proxy's and validate's copies keep status, statusText, set-cookie, many headers and Retry-After", async () => {
      up.on((hit) => {
        const kind = hit.path.split("/").pop() ?? "";
        if (hit.path.startsWith("/moved/")) {
          hit.res.writeHead(307, { location: `/v/${kind}` });
          hit.res.end();
          return;
        }
        const a = answerOf(kind);
        hit.res.writeHead(a.status, a.statusText, [...a.headers].flat());
        void a.text().then((text) => hit.res.end(text));
      });
      const bases = withMsw ? ["https://h.example", up.base] : [up.base];
      for (const base of bases) {
        for (const kind of ["200", "503", "204", "304"]) {
          const proxy = resilientProxy({ routes: [{ path: "/p", upstream: base }], resilience: { retry: false } });
          const passed = await proxy.fetch(new Request(`http://proxy.example/p/${kind}`), {}, ctx);
          const layer = createResilience({
            retry: false,
            maxReplayBytes: 4,
            fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: `${base}/v`, validate: schema }] }]),
          });
          const validated = await layer.fetch(`${base}/v/${kind}`);
          const expected = {
            status: Number(kind),
            statusText: kind === "204" ? "Nada" : kind === "304" ? "Not Modified" : "Custom Text",
            cookies: ["a=1; Path=/", "b=2; Path=/"],
            retryAfter: "7",
            many: 120,
            body: kind === "204" || kind === "304" ? "" : '{"ok":1}',
          };
          expect(await seenThrough(passed)).toEqual(expected);
          expect(await seenThrough(validated)).toEqual(expected);
        }
      }
    });

    it("validate's copy of a redirected answer keeps url, redirected and type", async () => {
      up.on((hit) => {
        if (hit.path.startsWith("/moved/")) {
          hit.res.writeHead(307, { location: "/v/200" });
          hit.res.end();
        } else {
          const a = answerOf("200");
          hit.res.writeHead(200, [...a.headers].flat());
          hit.res.end(`{"big":"${"y".repeat(100)}"}`);
        }
      });
      const layer = createResilience({
        retry: false,
        maxReplayBytes: 4,
        fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: up.base, validate: schema }] }]),
      });
      const res = await layer.fetch(`${up.base}/moved/200`);
      expect([res.url, res.redirected, res.type, new Headers(res.headers).getSetCookie().length]).toEqual([
        `${up.base}/v/200`,
        true,
        "basic",
        2,
      ]);
      await res.text();
    });

    if (withMsw) {
      const ky = () => createClient({ resilience: createResilience({ retry: false }) });
      const heard = async (call: () => Promise<unknown>) => {
        up.reset();
        up.on((hit) => hit.res.end("ok"));
        await call();
        const h = up.hits[0]?.headers;
        return [h?.authorization, h?.["x-team"], h?.["x-trace"]];
      };
      const whole = ["Bearer early", "t1", "t-msw"];

      it("ky: a pre-listen Headers per call, to createClient, extend, extend(fn) and create keeps every entry", async () => {
        early.set("x-trace", "t-msw");
        const url = `${up.base}/x`;
        const api = ky();
        expect([
          await heard(() => api.post(url, { body: "b", headers: early }).text()),
          await heard(() =>
            createClient({ resilience: createResilience({}), headers: early })
              .post(url, { body: "b" })
              .text(),
          ),
          await heard(() => api.extend({ headers: early }).post(url, { body: "b" }).text()),
          await heard(() =>
            api
              .extend(() => ({ headers: early }))
              .post(url, { body: "b" })
              .text(),
          ),
          await heard(() => api.create({ headers: early }).post(url, { body: "b" }).text()),
        ]).toEqual([whole, whole, whole, whole, whole]);
      });

      it("ky: that Headers inside replaceOption (per call, createClient, extend, create) keeps every entry", async () => {
        early.set("x-trace", "t-msw");
        const url = `${up.base}/x`;
        const api = ky();
        const got = [
          await heard(() => api.post(url, { body: "b", headers: replaceOption(early) }).text()),
          await heard(() =>
            createClient({ resilience: createResilience({}), headers: replaceOption(early) })
              .post(url, { body: "b" })
              .text(),
          ),
          await heard(() =>
            api
              .extend({ headers: replaceOption(early) })
              .post(url, { body: "b" })
              .text(),
          ),
          await heard(() =>
            api
              .create({ headers: replaceOption(early) })
              .post(url, { body: "b" })
              .text(),
          ),
        ];
        // Observed: [undefined, undefined, "t-msw"] each time.
        expect(got).toEqual([whole, whole, whole, whole]);
      });
    } else {
      it("ky: with MSW closed, that Headers inside replaceOption reaches the server whole", async () => {
        early.set("x-trace", "t-msw");
        up.on((hit) => hit.res.end("ok"));
        await createClient({ resilience: createResilience({}) })
          .post(`${up.base}/x`, { body: "b", headers: replaceOption(early) })
          .text();
        const h = up.hits.at(-1)?.headers;
        expect([h?.authorization, h?.["x-team"], h?.["x-trace"]]).toEqual(["Bearer early", "t1", "t-msw"]);
      });
    }
  });
}

describe("./policies: hold, a hedged run after an abort, frozen constants", () => {
  const policy = {
    failureThreshold: 3,
    successThreshold: 1,
    timeout: 1_000,
    halfOpenMaxCalls: 1,
    timeWindow: 30_000,
    probeTimeout: 30_000,
    failureRate: 0.5,
    minimumCalls: 100,
  };

  // "Infinity opens" until the docs-silent finding below was fixed: Infinity is a TypeError too since.
  it("hold: past, now and -Infinity hold nothing; NaN, a string and Infinity throw", () => {
    const clock = new TestClock(10_000);
    const outcome = (until: unknown) => {
      const breaker = new CircuitBreaker("k", policy, clock);
      try {
        breaker.hold(until as number, "r");
        return breaker.state;
      } catch (error) {
        return (error as Error).name;
      }
    };
    expect(
      [9_999, 10_000, Number.NEGATIVE_INFINITY, -0, Number.NaN, "20000", Number.POSITIVE_INFINITY].map(outcome),
    ).toEqual(["closed", "closed", "closed", "closed", "TypeError", "TypeError", "TypeError"]);
    const held = new CircuitBreaker("k", policy, clock);
    held.hold(9_000, "past");
    expect([held.tryAcquire(), held.tryAcquire(), held.tryAcquire(), held.tryAcquire()].every(Boolean)).toBe(true);
    const failing = new CircuitBreaker("k", policy, clock);
    failing.failure(failing.acquire(), "x", { until: 5_000, reason: "past" });
    expect(failing.state).toBe("closed");
  });

  // Since fixed (the docs-silent finding): a hold until Infinity, which JSON writes as null and a store's reader
  // then took as half-open, is refused at once.
  it("a hold until Infinity is refused, naming the argument", () => {
    const breaker = new CircuitBreaker("k", policy, new TestClock(10_000));
    expect(() => breaker.hold(Number.POSITIVE_INFINITY, "forever")).toThrow(
      /breaker\.hold\(until\): expected a time in ms, got Infinity/,
    );
    expect(breaker.state).toBe("closed");
  });

  it("transition: a second failure while open in the same millisecond gives the same object", () => {
    const clock = new TestClock(10_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    breaker.hold(20_000, "held");
    const open = breaker.toJSON();
    const failure = { type: "failure" as const, lease: null, gen: open.gen, reason: "x" };
    const first = transition(open, failure, 10_500, policy).state;
    const second = transition(first, failure, 10_500, policy).state;
    expect([first.state, second === first]).toEqual(["open", true]);
    expect(transition(initialBreakerState(0), { type: "tick" }, 0, policy).state.state).toBe("closed");
  });

  it("a hedged run aborted while its entry ignores the signal: no timer once the armed one fired, no other entry", async () => {
    const clock = new TestClock();
    const chain = new FallbackChain<string, string>("c", { clock });
    let answer!: (value: string) => void;
    let others = 0;
    chain.add(
      () =>
        new Promise<string>((resolve) => {
          answer = resolve;
        }),
      { name: "a" },
    );
    chain.add(
      async () => {
        others++;
        return "b";
      },
      { name: "b" },
    );
    const controller = new AbortController();
    const run = chain.run("in", { signal: controller.signal, hedgeDelay: 100 });
    await turns(1);
    expect(clock.pending()).toBe(1);
    controller.abort();
    for (let i = 0; i < 5; i++) await clock.advance(100);
    expect([clock.pending(), others]).toEqual([0, 0]);
    answer("a");
    const result = await run;
    expect(result.ok).toBe(false);
  });

  it("LEVEL_NAMES, systemClock and settings() refuse writes; a caller's own levels stay theirs", () => {
    const writes = [
      () => (LEVEL_NAMES as string[]).push("x"),
      () => {
        (systemClock as { now: () => number }).now = () => 0;
      },
    ];
    const threw = writes.map((write) => {
      try {
        write();
        return false;
      } catch (error) {
        return error instanceof TypeError;
      }
    });
    const features = ["core", "x"];
    const medium = { maxSteps: 5, features };
    const layer = createResilience({ degradation: degradation({ ...calm, levels: { medium } }) });
    layer.degradation.setLevel("medium");
    const settings = layer.degradation.settings();
    expect([...threw, Object.isFrozen(settings), Object.isFrozen(settings.features)]).toEqual([true, true, true, true]);
    expect([Object.isFrozen(features), Object.isFrozen(medium), settings.maxSteps, settings.features]).toEqual([
      false,
      false,
      5,
      ["core", "x"],
    ]);
  });
});
