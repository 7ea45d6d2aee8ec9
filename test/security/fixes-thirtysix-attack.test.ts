/**
 * Outside-in attack on the last fixes: the rest rule of fallback chains, `rebase`'s join of an endpoint's URL and
 * the path below, `resilientProxy` handing its chain the route's path below and targeting the URL under the chain's
 * parsed prefix, and the docs sentences added with them.
 * Docs: docs/fallback.md ("The first endpoint gets the URL called, every slash of it (`…/v1//x` under a chain at
 * `…/v1/` too); on every endpoint, a closing `/` (or `\`, which the parser reads as one) of its `url` is the first
 * slash of the path below, and only that one: `…/v2/` and `/x` is `…/v2/x`, `…/v2//` and `/x` is `…/v2//x`", "an
 * endpoint's own query, `?key=…`, stays on it: a call that carries the first endpoint's own parameters … sends them
 * once to that endpoint and to no other"); docs/cloudflare.md ("A route serves its path and everything below it (the
 * path below goes onto the upstream's path, a closing `/` of the upstream's shared with it as in fallback.md, the
 * query after the upstream's own …)"); docs/degradation.md (rules "per URL prefix (`match` … a `match` with a
 * `?query` is read by whole segments up to it and as text from there, so `…/v1?model=` takes `…/v1?model=sd`, and
 * `…/v1?model=a` takes `…/v1?model=ab` but not `…/v1/x?model=a`", "A call that goes down a fallback chain is
 * rewritten once, by the rule its own URL selects, before the chain"); CHANGELOG.md ("Through `resilientProxy`, a
 * chain route's target is `…/v1/jobs` … so a degradation rule scoped to `…/v1/jobs` applies to it"); docs/retry.md
 * ("read into bytes, it goes with a `content-length`, where fetch would send the `Request`'s stream chunked").
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `resilientProxy`
 * (./cloudflare, its `fetch` handler called directly in Node), `TestClock` (./testing); node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts) recording the raw request target and headers. Oracles: an upstream route
 * to the chain's first URL (what the chain route's first endpoint must receive), a plain layer's call of the URL the
 * first endpoint received (whether a degradation rule applies), plain `fetch` (redirect hops, body framing).
 * Paths: proxy chain route and upstream route, spare after a 503, hedge, `transform`, degradation through the proxy
 * and through a plain chain, 307 redirects from a first endpoint at `…/v1/`, `Request` input with a body.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a proxy chain route's target carries its first endpoint's own query, as an upstream route's does):
 * 1. docs/degradation.md "`…/v1?model=` takes `…/v1?model=sd`" and "A call that goes down a fallback chain is
 *    rewritten once, by the rule its own URL selects", with CHANGELOG.md "a chain route's target is `…/v1/jobs` … so a
 *    degradation rule scoped to `…/v1/jobs` applies to it". Observed: through `resilientProxy`, a chain route whose
 *    first endpoint carries its own query (`…/v1?model=a`, the documented way to tell two chains at one URL apart, or
 *    `…/v1?key=K`) is never rewritten by a rule scoped to that URL (`match: "…/v1?model=a"`): `/r?steps=50` reaches
 *    the first endpoint as `/v1?model=a&steps=50` at a level capping steps to 30, where an upstream route to the very
 *    same URL (`upstream: "…/v1?model=a"`) sends `/v1?model=a&steps=30`, and so does a plain layer's call of the URL
 *    the chain's first endpoint received. Mechanism: the proxy's target for a chain route is
 *    `rebase(parsedPrefix(route.chain), rest)` (src/cloudflare/resilient-proxy.ts:321), and `parsedPrefix` is
 *    `chainPrefix` (src/fallback/chain-router.ts `chainPrefix`: the first URL before its query) parsed, so the
 *    request the layer rewrites carries none of the first endpoint's own parameters; the rule is chosen by that URL
 *    before the chain puts them back (`rebase` for the first endpoint). An upstream route's target keeps its query.
 *
 * Held (plain `it`):
 * - Proxy, 14 first-URL forms (bare origin, `/`, `//`, `\`, `/v1`, `/v1/`, `/v1//`, `/v1\`, `/v1/.`, `/v1/..`,
 *   `/v1/%2e`, `?key=K`, `/?key=K`, empty `?`) × 11 incoming paths (``, `/`, `//`, `/x`, `//x`, `/x/`, `?q=1`, the
 *   key, `%2F`, lower-case escapes): a chain route's first endpoint receives exactly what an upstream route to the same
 *   URL receives, except that it gets the first endpoint's `key=K` once where the upstream route, as documented
 *   ("the query after the upstream's own"), sends the client's again after it.
 * - Degradation through the proxy, rules without a query (`/`, `/v1`, `/v1/`, `/v1//`, `/v1/x`, `/v1//x`, `/x`,
 *   `//x`) against first URLs `…`, `…/`, `…/v1`, `…/v1/`, `…/v1//`, `…/v1\`, `…/v1/..`: applied exactly when a plain
 *   layer's call of the URL the first endpoint received is rewritten.
 * - Spares: `…/v2/` + `/x` is `/v2/x`, `…/v2//` + `/x` is `/v2//x`, `…/v2\` + `/x` is `/v2/x`, and under a chain at
 *   `…/v1/` the call `…/v1//x` reaches the first endpoint as called and the spares with `//x` below them.
 * - Hedge and `transform` through a proxy chain route (first `…/v1/?key=K`, spare `…/sp/`, client `/r//x/?key=K&q=1`):
 *   each `transform` sees the URL then sent; the first endpoint gets the key once, the spare never.
 * - 307 from a first endpoint at `…/v1/` (relative `y`, `./y`, `?q=2`, `/v1//z`, `/v1/../w`) for a call `…/v1//x/w`:
 *   the layer's hops are plain fetch's.
 * - docs/retry.md: a `Request` whose stream body is within `maxReplayBytes` goes with its `content-length` (plain
 *   fetch: chunked); a string or Blob body goes with one either way; a stream past the limit goes chunked, once.
 */
import { describe, expect, it } from "vitest";
import { type ProxyRoute, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const answer503 = (server: HttpUpstream) =>
  server.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end();
  });

/** A chain whose first endpoint is `first` and spare `spare`. */
const chainOf = (first: string, spare = `${b.base}/sp`) => ({
  name: "c",
  endpoints: [
    { name: "p", url: first },
    { name: "s", url: spare },
  ],
});

/** What `server` received as its first request for `path` sent to a proxy with `route` at `/r`. */
async function viaProxy(route: ProxyRoute, path: string): Promise<string | undefined> {
  const proxy = resilientProxy({ routes: [route], resilience: { retry: false } });
  a.reset();
  await (await proxy.fetch(new Request(`http://w.example${path}`), {}, ctx)).arrayBuffer();
  return a.hits[0]?.path;
}

/**
 * A degradation stage at `high` (steps capped to 30) by one failed call through a `/down` upstream route, and the
 * paths the first endpoint received for `paths` (each with `steps=50`) through `route`.
 */
async function degradedViaProxy(route: ProxyRoute, match: string, paths: string[]): Promise<string[]> {
  const proxy = resilientProxy({
    routes: [route, { path: "/down", upstream: `${b.base}/down` }],
    resilience: {
      retry: false,
      breaker: false,
      clock: new TestClock(0),
      degradation: degradedStage(match),
    },
  });
  answer503(b);
  const down = await proxy.fetch(new Request("http://w.example/down"), {}, ctx);
  await down.arrayBuffer();
  expect(down.headers.get("x-degradation-level")).toBe("full");
  a.reset();
  for (const path of paths) {
    const sep = path.includes("?") ? "&" : "?";
    const res = await proxy.fetch(new Request(`http://w.example${path}${sep}steps=50`), {}, ctx);
    await res.arrayBuffer();
    expect(res.headers.get("x-degradation-level")).toBe("high");
  }
  b.reset();
  return a.hits.map((hit) => hit.path);
}

function degradedStage(match: string) {
  return degradation({
    minSamples: 1,
    browserSignals: false,
    levels: { high: { maxSteps: 30 } },
    rules: [{ match, params: { steps: { query: "steps" } } }],
  });
}

describe("defects", () => {
  it("1. a chain route's first URL with its own query: a rule scoped to that URL applies, as on an upstream route", async () => {
    for (const own of ["?model=a", "?key=K"]) {
      const url = `${a.base}/v1${own}`;
      const upstream = await degradedViaProxy({ path: "/r", upstream: url }, url, ["/r"]);
      expect(upstream).toEqual([`/v1${own}&steps=30`]);
      // Plain: the call of the chain's first URL is rewritten by that rule.
      const layer = createResilience({
        retry: false,
        degradation: degradedStage(url),
        fallback: fallback([chainOf(url)]),
      });
      layer.degradation?.setLevel("high");
      a.reset();
      await (await layer.fetch(`${url}&steps=50`)).arrayBuffer();
      expect(a.hits.map((hit) => hit.path)).toEqual([`/v1${own}&steps=30`]);
      // Observed: `/v1?model=a&steps=50`, unrewritten.
      const chain = await degradedViaProxy({ path: "/r", chain: chainOf(url) }, url, ["/r"]);
      expect(chain).toEqual(upstream);
    }
  });
});

describe("held", () => {
  it("proxy: a chain route's first endpoint gets what an upstream route to its URL gets (its own key once)", async () => {
    const firsts = ["", "/", "//", "\\", "/v1", "/v1/", "/v1//", "/v1\\", "/v1/.", "/v1/..", "/v1/%2e"];
    const keyed = ["/v1?key=K", "/v1/?key=K", "/v1?"];
    const incomings = ["/r", "/r/", "/r//", "/r/x", "/r//x", "/r/x/", "/r?q=1", "/r/?key=K", "/r/x?key=K&q", "/r/%2F"];
    let checked = 0;
    for (const first of [...firsts, ...keyed]) {
      for (const path of [...incomings, "/r/%c3%a9"]) {
        const url = a.base + first;
        const chain = await viaProxy({ path: "/r", chain: chainOf(url) }, path);
        const upstream = await viaProxy({ path: "/r", upstream: url }, path);
        expect(chain, `${first} ${path}`).toBeDefined();
        // The upstream route puts the client's query after its own (`key=K&key=K`); the chain sends its key once.
        expect(chain, `${first} ${path}`).toBe(upstream?.replace("key=K&key=K", "key=K"));
        checked++;
      }
    }
    expect(checked).toBe(14 * 11);
  }, 60_000);

  it("proxy: rules without a query apply to a chain route's request as to a plain call of what its first endpoint got", async () => {
    const firsts = ["", "/", "/v1", "/v1/", "/v1//", "/v1\\", "/v1/.."];
    const matches = ["/", "/v1", "/v1/", "/v1//", "/v1/x", "/v1//x", "/x", "//x"];
    const paths = ["/r", "/r/", "/r//", "/r/x", "/r//x"];
    let rewritten = 0;
    let kept = 0;
    for (const first of firsts) {
      for (const match of matches) {
        const got = await degradedViaProxy({ path: "/r", chain: chainOf(a.base + first) }, a.base + match, paths);
        expect(got).toHaveLength(paths.length);
        const layer = createResilience({
          retry: false,
          degradation: degradedStage(a.base + match),
          fallback: fallback([chainOf(a.base + first)]),
        });
        layer.degradation?.setLevel("high");
        for (const sent of got) {
          a.reset();
          await (await layer.fetch(a.base + sent.replace("steps=30", "steps=50"))).arrayBuffer();
          expect(a.hits[0]?.path, `${first} ${match} ${sent}`).toBe(sent);
          if (sent.includes("steps=30")) rewritten++;
          else kept++;
        }
      }
    }
    expect(rewritten).toBeGreaterThan(20);
    expect(kept).toBeGreaterThan(20);
  }, 60_000);

  it("spares: a closing `/` or `\\` is the first slash of the path below, and only that one", async () => {
    const cases: Array<[string, string, string, string, string]> = [
      // [first, spare, call, first gets, spare gets]
      [`${a.base}/v1`, `${b.base}/v2/`, `${a.base}/v1/x`, "/v1/x", "/v2/x"],
      [`${a.base}/v1`, `${b.base}/v2//`, `${a.base}/v1/x`, "/v1/x", "/v2//x"],
      [`${a.base}/v1`, `${b.base}/v2\\`, `${a.base}/v1/x`, "/v1/x", "/v2/x"],
      [`${a.base}/v1/`, `${b.base}/v2/`, `${a.base}/v1//x`, "/v1//x", "/v2//x"],
      [`${a.base}/v1/`, `${b.base}/v2`, `${a.base}/v1//x?q=1`, "/v1//x?q=1", "/v2//x?q=1"],
      [`${a.base}/v1\\`, `${b.base}/v2//`, `${a.base}/v1//x`, "/v1//x", "/v2///x"],
    ];
    for (const [first, spare, call, toA, toB] of cases) {
      const layer = createResilience({ retry: false, fallback: fallback([chainOf(first, spare)]) });
      a.reset();
      await (await fetch(call)).arrayBuffer();
      expect(a.hits[0]?.path).toBe(toA);
      a.reset();
      answer503(a);
      b.reset();
      await (await layer.fetch(call)).arrayBuffer();
      expect([a.hits[0]?.path, b.hits[0]?.path], `${first} ${spare} ${call}`).toEqual([toA, toB]);
    }
  });

  it("proxy: hedge and transform see what is sent; the key goes once to the first endpoint, never to the spare", async () => {
    const seen: string[] = [];
    const look = (who: string) => (request: EndpointRequest) => {
      seen.push(`${who} ${new URL(request.url).pathname}${new URL(request.url).search}`);
      return request;
    };
    const proxy = resilientProxy({
      routes: [
        {
          path: "/r",
          chain: {
            name: "c",
            hedge: { delay: 20 },
            endpoints: [
              { name: "p", url: `${a.base}/v1/?key=K`, transform: look("p") },
              { name: "s", url: `${b.base}/sp/`, transform: look("s") },
            ],
          },
        },
      ],
      resilience: { retry: false },
    });
    a.on((hit) => {
      const timer = setTimeout(() => hit.res.end("slow"), 300);
      void hit.closed.then(() => clearTimeout(timer));
    });
    const res = await proxy.fetch(new Request("http://w.example/r//x/?key=K&q=1"), {}, ctx);
    expect(await res.text()).toBe("ok");
    expect(res.headers.get("x-resilience-endpoint")).toBe("s");
    expect(a.hits.map((hit) => hit.path)).toEqual(["/v1//x/?key=K&q=1"]);
    expect(b.hits.map((hit) => hit.path)).toEqual(["/sp//x/?q=1"]);
    expect(seen).toEqual(["p /v1//x/?key=K&q=1", "s /sp//x/?q=1"]);
    await a.hits[0]?.closed;
  });

  it("307 from a first endpoint at `…/v1/`: the layer's hops are plain fetch's", async () => {
    const layer = createResilience({ retry: false, fallback: fallback([chainOf(`${a.base}/v1/`)]) });
    const call = `${a.base}/v1//x/w`;
    for (const location of ["y", "./y", "?q=2", "/v1//z", "/v1/../w"]) {
      const redirectOnce = () =>
        a.on((hit) => {
          if (hit.n === 1) {
            hit.res.statusCode = 307;
            hit.res.setHeader("location", location);
          }
          hit.res.end("ok");
        });
      a.reset();
      redirectOnce();
      await (await fetch(call)).arrayBuffer();
      const plain = a.hits.map((hit) => hit.path);
      a.reset();
      redirectOnce();
      const res = await layer.fetch(call);
      expect(await res.text()).toBe("ok");
      expect(
        a.hits.map((hit) => hit.path),
        location,
      ).toEqual(plain);
      expect(plain).toHaveLength(2);
    }
  });

  it("docs/retry.md: a `Request` body read into bytes goes with a content-length; past the limit, chunked", async () => {
    const layer = createResilience({ retry: false, maxReplayBytes: 10 });
    const stream = (text: string) =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      });
    const make = (body: BodyInit) =>
      new Request(`${a.base}/x`, { method: "PUT", body, duplex: "half" } as RequestInit & { duplex: "half" });
    const cases: Array<[() => Request, string | undefined, string | undefined]> = [
      // [request, plain fetch's content-length, the layer's]
      [() => make(stream("héllo")), undefined, "6"],
      [() => make(stream("0123456789")), undefined, "10"],
      [() => make("hello"), "5", "5"],
      [() => make(new Blob(["hello"])), "5", "5"],
      [() => make(stream("hello world 123")), undefined, undefined],
    ];
    for (const [request, plain, ours] of cases) {
      a.reset();
      await (await fetch(request())).arrayBuffer();
      await (await layer.fetch(request())).arrayBuffer();
      const [p, l] = a.hits;
      expect(p?.headers["content-length"]).toBe(plain);
      expect(p?.headers["transfer-encoding"]).toBe(plain === undefined ? "chunked" : undefined);
      expect(l?.headers["content-length"]).toBe(ours);
      expect(l?.headers["transfer-encoding"]).toBe(ours === undefined ? "chunked" : undefined);
      expect(l?.body).toBe(p?.body);
    }
  });
});
