/**
 * Outside-in attack on URL shapes, as a matrix: chain first-endpoint URL forms × call URL forms × paths (chain,
 * spare after a 503, hedge, degradation `match`, Worker proxy routes, breaker keys, redaction).
 * Docs: docs/fallback.md ("A request whose URL starts with a chain's first endpoint `url` goes down that chain
 * (longest prefix wins; `…/v1` does not capture `…/v10` …)", "Both are compared as the URL parser reads them, so
 * `HTTPS://Gen.example:443/v1`, `…/v1/../v10` and a `Request` are routed by what they stand for", "The rest of the
 * path and the query are rebased onto each endpoint's `url` (an endpoint's own query, `?key=…`, stays on it: a call
 * that carries the first endpoint's own parameters … sends them once to that endpoint and to no other)");
 * docs/degradation.md (rules "per URL prefix (`match`, the longest wins, read as a chain's prefix is: both URLs as the
 * URL parser reads them, whole path segments only, so `…/v1` takes `HTTPS://Gen.example/v1/x` but not `…/v1beta`");
 * docs/cloudflare.md ("A route serves its path and everything below it (the path below goes onto the upstream's path,
 * the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…` keeps its key)");
 * docs/breakers.md ("One per host (`url.host`, or `breaker.key(url)`)"); SECURITY.md ("URLs lose their userinfo …,
 * query string and fragment (where keys such as `?api_key=` live) before they reach any of them", "a URL with
 * `user:pass@` is refused at once, in a call or as a fallback endpoint").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `resilientProxy`
 * (./cloudflare, its `fetch` handler called directly in Node); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts) recording the raw request target, one bare server on `::1`. Oracle: plain
 * `fetch` of the same URL to the same server (what the first endpoint must receive), the path below the chain's
 * prefix under the spare's own URL, and a `match` taken iff the call's parsed path lies under the match's by whole
 * segments.
 * Paths: plain call with a chain (first endpoint serves), first endpoint 503 so the spare serves, hedge, `URL` object
 * and `Request` input, degradation rule scoping, proxy upstream and chain routes, `health()` breaker keys (IPv6,
 * upper-case scheme), errors/events/`health()`/`debugInfo()` of a chain whose URLs hold keys.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: an endpoint or upstream URL's closing slash, or backslash, is the first of the path below and only that one):
 * 1. docs/fallback.md "The rest of the path and the query are rebased onto each endpoint's `url`" and "Both are
 *    compared as the URL parser reads them". Observed: a first endpoint whose `url` ends in two slashes
 *    (`http://h/v1//`, a path whose last segment is empty) is sent one slash fewer than the call: `…/v1//x` reaches
 *    it as `/v1/x` (plain fetch of the same URL sends `/v1//x`), `…/v1///x` as `/v1//x`, `…/v1//` + `/` as `/v1//`;
 *    a bare `http://h//` likewise. The same join makes a spare `http://s/sp//` receive `/sp/x` and a proxy upstream
 *    `http://u/up//` receive `/up/x` for the path below `/x` (not under `/up//` at all). Mechanism: the chain router
 *    cuts the call after the parsed prefix (`…/v1//`, src/fallback/chain-router.ts `match`: rest `x`, or `//x` when
 *    the path below starts with `/`), then `rebase` (src/fallback/endpoint-request.ts:19, used by the proxy too,
 *    src/cloudflare/resilient-proxy.ts:321) strips every trailing slash of the endpoint's URL
 *    (`withoutTrailingSlashes`, endpoint-request.ts:31 and :37) before adding one: `…/v1` + `/x`.
 * 2. Same sentences. Observed: a first endpoint written with a trailing backslash (`http://h/v1\`, which the URL
 *    parser, and so the router, reads as `http://h/v1/`) is sent one slash more than the call: the ordinary call
 *    `http://h/v1/x` reaches it as `/v1//x` (plain fetch: `/v1/x`); `http://h:p\` as a bare origin sends `//x` for
 *    `/x`; a proxy upstream `http://u/up\` sends `/up//x` where `http://u/up/` (the same URL to the parser) sends
 *    `/up/x`. Mechanism: `rebase` strips only `/` (char 47) from the end of the raw `url` and appends `/x`, so
 *    `…/v1\` + `/x` is `…/v1\/x`, which the parser reads as `/v1//x`; the router had matched against the parsed
 *    `…/v1/` (rest `x`). `fallback([…])` and `resilientProxy` accept such a URL (no check for `\`).
 *
 * Held (plain `it`):
 * - Matrix (first endpoint: bare origin, `/`, `/v1`, `/v1/`, `/v1/..`, `/x/../v1`, `/v1/.`, `/v1/%2e%2e/v2`,
 *   `/a%2Fb`, `/a%41`, `/é`, upper-case `HTTP://`; call: ``, `/`, `/x`, `//x`, `///x`, `/x//y`, `/x/`, `?q=1`, `?`,
 *   `#f`, `/x?q=1#f`, `/%2F`, `/x/./y`, `/x/%2e%2e/y`, `/é`, `/a%2fb`, `\x`): the first endpoint receives exactly
 *   what plain fetch sends; after its 503 the spare receives the path below the prefix and the query under `/sp`.
 * - `?key=K` on the first endpoint: it gets the key once (merged before the call's query, a call carrying `key=K`
 *   too), the spare never; a `URL` object, a `Request`, a 6,000-character path and a `Request` with `%2e%2e` route
 *   and rebase the same.
 * - IPv6: a chain whose first URL is `http://[0:0::1]:p/v1` takes `http://[::1]:p/v1//x?q` and sends `/v1//x?q`;
 *   `health()` keys are `[::1]:p` (also for `HTTP://[0::1]:p`) and the chain endpoints' hosts.
 * - Hedge: the spare started by the hedge gets the path below and query (no key).
 * - Degradation `match` matrix (11 match forms × 19 calls, with upper-case scheme too): the rule applies exactly when
 *   the parsed call path is under the match's by whole segments (`/v10`, `/v1beta`, `/v1.x`, `/V1/x`, `/a%2fb` vs
 *   `/a%2Fb` not taken; `/x/../v1/y`, `/v1\x`, `/%761/x` for `/v1` taken).
 * - Proxy routes without trailing-slash upstreams: path below and query go onto the upstream's, key kept; chain
 *   routes send the first endpoint what the matching upstream route sends.
 * - Keys in a chain's URLs (`?key=`, `?api_key=`, another query parameter, a fragment) appear nowhere in the
 *   `FallbackExhaustedError` (message, stack, per-endpoint errors and causes), events, `health()` or
 *   `debugInfo()`; a call with `user:pw@` is refused without the password in its message.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { type HttpUpstream, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const once503 = (server: HttpUpstream) =>
  server.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end();
  });

/** The raw request target `server` received for `input` sent with `send` (`undefined`: nothing arrived). */
async function targetOf(
  server: HttpUpstream,
  input: string | URL | Request,
  send: (input: string | URL | Request) => Promise<Response>,
): Promise<string | undefined> {
  server.reset();
  const response = await send(input);
  await response.arrayBuffer();
  return server.hits.at(-1)?.path;
}

function chain(first: string, spare = `${b.base}/sp`) {
  return createResilience({
    retry: { maxAttempts: 1 },
    fallback: fallback([
      {
        name: "c",
        endpoints: [
          { name: "a", url: first },
          { name: "b", url: spare },
        ],
      },
    ]),
  });
}

/** What the first endpoint and the spare got for `call`: A answering, then A answering 503. */
async function viaChain(first: string, call: string, spare?: string) {
  const layer = chain(first, spare);
  const plain = await targetOf(a, call, (i) => fetch(i));
  const toA = await targetOf(a, call, (i) => layer.fetch(i));
  b.reset();
  once503(a);
  await (await layer.fetch(call)).arrayBuffer();
  a.reset();
  return { plain, toA, toB: b.hits.at(-1)?.path };
}

describe("defects", () => {
  it("1. a first endpoint ending in `//` is sent the call's URL (one slash is lost)", async () => {
    for (const rest of ["x", "/x", "/"]) {
      const { plain, toA } = await viaChain(`${a.base}/v1//`, `${a.base}/v1//${rest}`);
      expect(toA).toBe(plain);
    }
    const bare = await viaChain(`${a.base}//`, `${a.base}//x`);
    expect(bare.toA).toBe(bare.plain);
  });

  it("1. (spare and proxy upstream) a URL ending in `//` keeps its empty last segment", async () => {
    const { toB } = await viaChain(`${a.base}/v1`, `${a.base}/v1/x`, `${b.base}/sp//`);
    expect(toB).toBe("/sp//x");
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${a.base}/up//` }] });
    a.reset();
    await (await proxy.fetch(new Request("http://w.example/v1/x"), {}, ctx)).arrayBuffer();
    expect(a.hits[0]?.path.startsWith("/up//")).toBe(true);
  });

  it("2. a first endpoint written `…/v1\\` (the parser's `…/v1/`) is sent the call's URL", async () => {
    const { plain, toA } = await viaChain(`${a.base}/v1\\`, `${a.base}/v1/x`);
    expect(plain).toBe("/v1/x");
    expect(toA).toBe(plain);
    const bare = await viaChain(`${a.base}\\`, `${a.base}/x`);
    expect(bare.toA).toBe("/x");
  });

  it("2. (proxy) an upstream `…/up\\` is sent what `…/up/` is", async () => {
    const sent: Array<string | undefined> = [];
    for (const upstream of [`${a.base}/up/`, `${a.base}/up\\`]) {
      const proxy = resilientProxy({ routes: [{ path: "/v1", upstream }] });
      a.reset();
      await (await proxy.fetch(new Request("http://w.example/v1/x"), {}, ctx)).arrayBuffer();
      sent.push(a.hits[0]?.path);
    }
    expect(sent[1]).toBe(sent[0]);
  });
});

describe("held", () => {
  const firsts = ["", "/", "/v1", "/v1/", "/v1/..", "/x/../v1", "/v1/.", "/v1/%2e%2e/v2", "/a%2Fb", "/a%41", "/é"];
  const calls = [
    "",
    "/",
    "/x",
    "//x",
    "///x",
    "/x//y",
    "/x/",
    "?q=1",
    "?",
    "#f",
    "/x?q=1#f",
    "/%2F",
    "/x/./y",
    "/x/%2e%2e/y",
    "/é",
    "/a%2fb",
    "\\x",
  ];

  it("matrix: the first endpoint gets what fetch sends, the spare the path below and query", async () => {
    let checked = 0;
    for (const first of firsts) {
      for (const scheme of ["http", "HTTP"]) {
        const firstUrl = `${scheme}://${a.host}${first}`;
        const prefixPath = new URL(firstUrl).pathname;
        for (const call of calls) {
          const url = a.base + first + call;
          const { plain, toA, toB } = await viaChain(firstUrl, url);
          expect(toA, `${first} + ${call}`).toBe(plain);
          const sent = new URL(`${a.base}${plain}`);
          const below =
            sent.pathname === prefixPath
              ? ""
              : sent.pathname.slice(prefixPath.endsWith("/") ? prefixPath.length - 1 : prefixPath.length);
          expect(toB, `${first} + ${call}`).toBe(`/sp${below}${sent.search}`);
          checked++;
        }
      }
    }
    expect(checked).toBe(firsts.length * 2 * calls.length);
  }, 60_000);

  it("own `?key=` goes once to the first endpoint, never to the spare, for strings, URLs and Requests", async () => {
    const first = `${a.base}/v1?key=K`;
    const long = `/v1/${"x".repeat(6000)}//y?key=K&q=1`;
    const inputs: Array<[() => string | URL | Request, string, string]> = [
      [() => `${a.base}/v1/x?q=1`, "/v1/x?key=K&q=1", "/sp/x?q=1"],
      [() => `${a.base}/v1?q=1&key=K`, "/v1?key=K&q=1", "/sp?q=1"],
      [() => new URL(`${a.base}/v1//x?key=K`), "/v1//x?key=K", "/sp//x"],
      [() => new Request(`${a.base}/v1/x?q=1&key=K`), "/v1/x?key=K&q=1", "/sp/x?q=1"],
      [() => new Request(`${a.base}/v1/%2e%2e/v1/x`), "/v1/x?key=K", "/sp/x"],
      [() => `${a.base}${long}`, `/v1/${"x".repeat(6000)}//y?key=K&q=1`, `/sp/${"x".repeat(6000)}//y?q=1`],
    ];
    const layer = chain(first);
    for (const [input, toA, toB] of inputs) {
      expect(await targetOf(a, input(), (i) => layer.fetch(i))).toBe(toA);
      b.reset();
      once503(a);
      await (await layer.fetch(input())).arrayBuffer();
      expect(b.hits.at(-1)?.path).toBe(toB);
      a.reset();
    }
  });

  it("IPv6: routed as parsed, sent as fetch sends it; health() keys by host", async () => {
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url ?? "");
      res.statusCode = 503;
      res.end();
    });
    server.listen(0, "::1");
    await once(server, "listening");
    try {
      const port = (server.address() as AddressInfo).port;
      const layer = chain(`http://[0:0::1]:${port}/v1`);
      b.reset();
      const response = await layer.fetch(`http://[::1]:${port}/v1//x?q`);
      await response.arrayBuffer();
      expect(hits).toEqual(["/v1//x?q"]);
      expect(b.hits.map((h) => h.path)).toEqual(["/sp//x?q"]);
      expect(Object.keys(layer.health().breakers).sort()).toEqual([`127.0.0.1:${b.port}`, `[::1]:${port}`].sort());
      const plain = createResilience({ retry: { maxAttempts: 1 } });
      await (await plain.fetch(`HTTP://[0::1]:${port}/z`)).arrayBuffer();
      expect(Object.keys(plain.health().breakers)).toEqual([`[::1]:${port}`]);
    } finally {
      server.close();
    }
  });

  it("hedge: the spare gets the path below and the query, without the first endpoint's key", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 20 },
          endpoints: [
            { name: "a", url: `${a.base}/v1?key=K` },
            { name: "b", url: `${b.base}/sp/` },
          ],
        },
      ]),
    });
    a.on(() => {}); // never answers: the hedge starts b, which wins and aborts a
    const response = await layer.fetch(`${a.base}/v1//x/./y?q=1&key=K`);
    await response.arrayBuffer();
    expect((await a.nth(1)).path).toBe("/v1//x/y?key=K&q=1");
    expect(b.hits.map((h) => h.path)).toEqual(["/sp//x/y?q=1"]);
    await (await a.nth(1)).closed;
  });

  it("degradation `match`: the rule applies exactly when the URL is under it by whole segments", async () => {
    const matches = ["", "/", "/v1", "/v1/", "/v1//", "/x/../v1", "/v1/.", "/a%2Fb", "/é", "/v1\\", "/%761"];
    const dcalls = [
      "/",
      "/v1",
      "/v1/",
      "/v1/x",
      "/v10",
      "/v1beta",
      "/v1.x",
      "//v1/x",
      "/v1//x",
      "/x/../v1/y",
      "/v1/%2e%2e/v10",
      "/V1/x",
      "/a%2Fb/x",
      "/a%2fb/x",
      "/é/x",
      "/%C3%A9/x",
      "/v1\\x",
      "/%761/x",
      "/v1#f",
    ];
    const under = (match: string, call: string) => {
      const m = new URL(match).pathname;
      const c = new URL(call).pathname;
      return c === m || c.startsWith(m.endsWith("/") ? m : `${m}/`);
    };
    let applied = 0;
    let skipped = 0;
    for (const m of matches) {
      for (const scheme of ["http", "HTTP"]) {
        const match = `${scheme}://${a.host}${m}`;
        const layer = createResilience({
          retry: { maxAttempts: 1 },
          degradation: degradation({ rules: [{ match, params: { steps: { query: "steps" } } }] }),
        });
        layer.degradation?.setLevel("minimal");
        for (const c of dcalls) {
          const url = c.includes("#") ? `${a.base}${c.replace("#", "?steps=50#")}` : `${a.base}${c}?steps=50`;
          const path = await targetOf(a, url, (i) => layer.fetch(i));
          const rewritten = path?.includes("steps=10") === true;
          expect(rewritten, `${match} vs ${c}`).toBe(under(match, url));
          if (rewritten) applied++;
          else skipped++;
        }
      }
    }
    expect(applied).toBeGreaterThan(50);
    expect(skipped).toBeGreaterThan(50);
  }, 60_000);

  it("proxy: upstream and chain routes put the path below and the query onto the upstream's", async () => {
    const cases: Array<[string, string, string]> = [
      ["/v1", "/v1/x", "/up/x"],
      ["/v1", "/v1", "/up"],
      ["/v1", "/v1/", "/up/"],
      ["/v1/", "/v1//x", "/up//x"],
      ["/v1", "/v1/%C3%A9?q=1", "/up/%C3%A9?key=K&q=1"],
      ["/", "//x", "/up//x"],
      ["/", "/", "/up/"],
    ];
    for (const [path, incoming, expected] of cases) {
      const wanted = expected.includes("?") ? expected : `${expected}?key=K`;
      const proxy = resilientProxy({
        routes: [
          { path, upstream: `${a.base}/up?key=K` },
          {
            path: `/c${path === "/" ? "" : path}`,
            chain: {
              name: "c",
              endpoints: [
                { name: "p", url: `${a.base}/up?key=K` },
                { name: "s", url: `${b.base}/sp` },
              ],
            },
          },
        ],
        resilience: { retry: { maxAttempts: 1 } },
      });
      a.reset();
      const viaUpstream = await proxy.fetch(new Request(`http://w.example${incoming}`), {}, ctx);
      await viaUpstream.arrayBuffer();
      expect(a.hits.at(-1)?.path, `${path} ${incoming}`).toBe(wanted);
      a.reset();
      const viaChainRoute = await proxy.fetch(new Request(`http://w.example/c${incoming}`), {}, ctx);
      await viaChainRoute.arrayBuffer();
      expect(a.hits.at(-1)?.path, `chain ${path} ${incoming}`).toBe(wanted);
    }
  });

  it("keys in a chain's URLs reach no error, event, health() or debugInfo(); userinfo is refused", async () => {
    const dead = await refusedOrigin();
    const layer = createResilience({
      retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 2, jitter: "none" },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: `${dead}/v1?key=SECRETA` },
            { name: "b", url: `${dead.replace("127.0.0.1", "localhost")}/sp?api_key=SECRETB` },
          ],
        },
      ]),
    });
    const events: unknown[] = [];
    for (const name of ["request", "retry", "breaker", "fallback"] as const) {
      layer.on(name as "request", (event) => events.push(event));
    }
    const error = (await rejection(layer.fetch(`${dead}/v1/x?key=SECRETA&token=SECRETC#t=SECRETD`))) as Error & {
      errors?: Record<string, Error & { cause?: Error }>;
    };
    expect(error.name).toBe("FallbackExhaustedError");
    const inner = Object.values(error.errors ?? {}).map((e) => [e.message, e.stack, e.cause?.message, e.cause?.stack]);
    expect(inner.length).toBe(2);
    const dump = JSON.stringify({
      message: error.message,
      stack: error.stack,
      inner,
      events,
      health: layer.health(),
      debug: layer.debugInfo(),
    });
    for (const secret of ["SECRETA", "SECRETB", "SECRETC", "SECRETD"]) expect(dump).not.toContain(secret);
    const refused = (await rejection(layer.fetch(`http://u:pw9secret@127.0.0.1:1/v1?key=SECRETE`))) as Error;
    expect(refused).toBeInstanceOf(TypeError);
    expect(`${refused.message} ${refused.stack}`).not.toMatch(/pw9secret|SECRETE/);
  });
});
