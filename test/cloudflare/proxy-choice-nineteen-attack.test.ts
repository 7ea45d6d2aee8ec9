/**
 * Session nineteen, the proxy's route choice: `resilientProxy` now tells its
 * layer which chain a route chose (or none, for an upstream route) through a
 * module-wide `WeakMap<Request, string | null>` (`chosenChains`), instead of
 * letting the layer pick a chain again by the target URL; route paths must
 * be written as the URL parser writes them; a JSON body of bytes that are no
 * UTF-8 is read with a fatal decoder. Attacked from outside, through the
 * public `…/cloudflare`, `…/fallback`, `…/degradation`, `…/ky` and root
 * entries, in Node: upstreams are `hostFetch` stubs given as the layer's
 * `fetch` (or another layer's `fetch`), a fake `ctx`, a `TestClock`, no
 * sleeps.
 *
 * How: a route's `Request` handed on by the proxy's layer to its transport
 * when that transport is another layer (the choice is keyed on the object,
 * not on the layer); a chain whose first endpoint URL ends in `//`, so the
 * proxy's target for a path below the route is rebased out of the chain's
 * prefix; health and breaker keys per route over a shared provider; a
 * redirect from an upstream into another route's chain's URL; a degradation
 * rule matching the shared provider's URL prefix; route paths with `%2e%2e`,
 * `/.`, `#`, `?`, `\`, a control character, `%2F` and lowercase escapes;
 * bodies with a BOM then a surrogate encoded as bytes (ED A0 80) or an
 * overlong `/` (C0 AF), labelled `charset=utf-8`, through a chain route with
 * a `transform` at a degraded level; the ky client over a chain.
 *
 * Defects pinned (first `it.fails`, each asserting the documented
 * behaviour, on the code they were written against; both fixed since, so
 * plain `it`: the layer that reads a route's choice removes it, so the
 * `Request` reaches any later layer without one, and the proxy leaves no
 * choice at all when it has no chains; a chain route's target is its
 * chain's prefix as written, with the path below after it):
 * 1. A route's choice leaks into another layer. docs/fallback.md: "A request
 *    whose URL starts with a chain's first endpoint `url` goes down that
 *    chain (longest prefix wins …). Both are compared as the URL parser
 *    reads them, so … and a `Request` are routed by what they stand for."
 *    Observed: a proxy whose `resilience.fetch` is another layer's `fetch`
 *    (that layer with its own chain over the same provider) hands that layer
 *    the very `Request` it made; the inner layer reads the proxy's choice
 *    from the shared WeakMap and (a) for an upstream route (`null`) sends the
 *    call straight to the provider, its own chain never consulted (the 503 is
 *    the answer, the inner spare is never tried), (b) for a chain route
 *    (`"video"`, a name the inner layer has no chain of) does the same, so
 *    the proxy's chain moves on to its own spare. The same inner layer, given
 *    a `Request` built by the caller for the same URL, goes down its chain.
 *    Cause: src/fallback/chain-router.ts:33 `chosenChains` is one module-wide
 *    WeakMap read by every layer (src/fallback/fallback-stage.ts:49
 *    `router.match(url, request && chosenChains.get(request))`); the proxy
 *    sets it on `outgoing` (src/cloudflare/resilient-proxy.ts:221) and never
 *    deletes it, and an unchanged request goes to the transport as the
 *    caller's own `(input, init)` (src/http/request/normalize-request.ts:92
 *    `original`, src/http/request/call-request.ts:107 `fetchArguments`), the
 *    `Request` object included.
 * 2. A chain route whose chain's first endpoint URL ends in `//` (accepted:
 *    docs/fallback.md asks only for an absolute http(s) URL without a
 *    fragment, spaces, control characters or credentials) does not send
 *    requests for paths below the route down its chain. docs/cloudflare.md:
 *    "The route decides alone: a chain route's request goes down that
 *    route's chain". Observed: `/video/x` goes straight to
 *    `https://p.example/v1/x` under the host's key (`x-resilience-endpoint:
 *    p.example`), its 503 is the answer and the spare is never tried;
 *    `/video` itself, and a direct call of the layer to `…/v1//x`, do go
 *    down the chain. Cause: resilient-proxy.ts:206-207 builds the target with
 *    `rebase(chainPrefix(chain), rest)`, which drops every trailing slash of
 *    the base (src/fallback/endpoint-request.ts:30,36 `withoutTrailingSlashes`),
 *    so the target lies outside the chain's prefix; and
 *    `ChainRouter.match` (chain-router.ts:74-81) still requires
 *    `restAfter(canonical, prefix)` for the chosen chain, and finds none.
 *
 * Held (plain `it`):
 * - the inner layer of 1 routes a `Request` the caller built by its URL;
 * - health per route over a shared provider: the chain's statistics count
 *   only the chain route's call, the upstream route's 503s go on the host's
 *   breaker;
 * - a 307 from an upstream into another route's chain's URL is followed as a
 *   hop to that host, not down the chain;
 * - a degradation rule matching the shared provider's URL applies to the
 *   upstream route and to the chain route, whose spare gets the rewritten
 *   body; a rule on the spare's own URL does not apply to it;
 * - route paths with `%2e%2e`, `/.`, `/%2E`, `#`, `?`, `\` or a control
 *   character are a TypeError when made; `%2F` and lowercase escapes are
 *   taken and serve a request written so;
 * - a JSON body of bytes with a BOM then ED A0 80, or C0 AF, labelled
 *   `charset=utf-8`, through a chain route at a degraded level: both
 *   endpoints get the caller's bytes and the spare's `transform` sees
 *   `body: undefined`; a valid body is rewritten;
 * - the ky client over a chain: the URL decides (no choice is made for it).
 */
import { describe, expect, it } from "vitest";
import { type ProxyRoute, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch, status } from "../helpers/host-fetch.ts";

const ctx = { waitUntil: () => {} };
const hosts = (log: Array<{ url: string }>) => log.map((r) => new URL(r.url).host);

/** A layer with its own chain over p.example, its spare ispare.example. */
function innerLayer(fetch: ReturnType<typeof hostFetch>["fetch"]) {
  return createResilience({
    retry: false,
    fetch,
    fallback: fallback([
      {
        name: "inner",
        endpoints: [
          { name: "inner-p", url: "https://p.example/v1" },
          { name: "inner-spare", url: "https://ispare.example/v1" },
        ],
      },
    ]),
  });
}

describe("1. a route's choice reaches another layer given the proxy's Request", () => {
  const answers = () =>
    hostFetch({ "p.example": status(503), "ispare.example": status(200), "vspare.example": status(200) });

  it("(a) upstream route: the inner layer still sends p.example's URL down its own chain", async () => {
    const up = answers();
    const inner = innerLayer(up.fetch);
    const proxy = resilientProxy({
      routes: [{ path: "/t", upstream: "https://p.example/v1" }],
      resilience: { retry: false, fetch: (input, init) => inner.fetch(input, init) },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/t/x"), {}, ctx);
    // Observed: 503 from p.example, ispare.example never tried.
    expect(hosts(up.log)).toEqual(["p.example", "ispare.example"]);
    expect(res.status).toBe(200);
  });

  it("(b) chain route: the inner layer's chain serves the first endpoint's URL, not the proxy's spare", async () => {
    const up = answers();
    const inner = innerLayer(up.fetch);
    const proxy = resilientProxy({
      routes: [
        {
          path: "/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "p", url: "https://p.example/v1" },
              { name: "vspare", url: "https://vspare.example/v1" },
            ],
          },
        },
      ],
      resilience: { retry: false, fetch: (input, init) => inner.fetch(input, init) },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/video/x"), {}, ctx);
    // Observed: ["p.example", "vspare.example"], x-resilience-endpoint "vspare".
    expect(hosts(up.log)).toEqual(["p.example", "ispare.example"]);
    expect(res.headers.get("x-resilience-endpoint")).toBe("p");
  });

  it("control: the inner layer routes a Request the caller built by its URL", async () => {
    const up = answers();
    const inner = innerLayer(up.fetch);
    const res = await inner.fetch(new Request("https://p.example/v1/x"));
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.endpoint).toBe("inner-spare");
    expect(hosts(up.log)).toEqual(["p.example", "ispare.example"]);
  });
});

describe("2. a chain whose first endpoint URL ends in //", () => {
  const chain = {
    name: "video",
    endpoints: [
      { name: "p", url: "https://p.example/v1//" },
      { name: "s", url: "https://s.example/v1" },
    ],
  };
  const answers = () => hostFetch({ "p.example": status(503), "s.example": status(200) });

  it("a path below the route goes down the route's chain, to the spare", async () => {
    const up = answers();
    const proxy = resilientProxy({
      routes: [{ path: "/video", chain }],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/video/x"), {}, ctx);
    // Observed: 503, x-resilience-endpoint "p.example", only https://p.example/v1/x asked.
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("s");
    expect(hosts(up.log)).toEqual(["p.example", "s.example"]);
  });

  it("control: the route's own path, and the layer called directly under the prefix, go down the chain", async () => {
    const up = answers();
    const proxy = resilientProxy({
      routes: [{ path: "/video", chain }],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/video"), {}, ctx);
    expect(res.headers.get("x-resilience-endpoint")).toBe("s");
    const direct = hostFetch({ "p.example": status(503), "s.example": status(200) });
    const layer = createResilience({ retry: false, fetch: direct.fetch, fallback: fallback([chain]) });
    const answer = await layer.fetch("https://p.example/v1//x");
    expect(getResilienceInfo(answer)?.endpoint).toBe("s");
  });
});

describe("held: routes sharing a provider", () => {
  const routes = (): ProxyRoute[] => [
    {
      path: "/video",
      chain: {
        name: "video",
        endpoints: [
          { name: "p", url: "https://p.example/v1" },
          { name: "s", url: "https://s.example/v1" },
        ],
      },
    },
    { path: "/p", upstream: "https://p.example/v1" },
  ];

  it("health: the chain counts only the chain route's call; the upstream route's 503s go on the host", async () => {
    const up = hostFetch({ "p.example": status(503), "s.example": status(200) });
    const proxy = resilientProxy({
      routes: routes(),
      resilience: { retry: false, fetch: up.fetch, breaker: { failureThreshold: 100 } },
    });
    for (const path of ["/p/x", "/p/y", "/video/x"])
      await (await proxy.fetch(new Request(`https://proxy.example${path}`), {}, ctx)).text();
    const health = await (await proxy.fetch(new Request("https://proxy.example/__resilience/health"), {}, ctx)).json();
    expect(health.fallback.video.fallbacks.p.calls).toBe(1);
    expect(health.fallback.video.fallbacks.s.calls).toBe(1);
    expect(health.breakers["p.example"].failureCount).toBe(3);
    expect(hosts(up.log)).toEqual(["p.example", "p.example", "p.example", "s.example"]);
  });

  it("a 307 from an upstream into the chain's URL is followed as a hop, not down the chain", async () => {
    const up = hostFetch({
      "u.example": () => new Response(null, { status: 307, headers: { location: "https://p.example/v1/x" } }),
      "p.example": status(503),
      "s.example": status(200),
    });
    const proxy = resilientProxy({
      routes: [...routes(), { path: "/u", upstream: "https://u.example/v1" }],
      resilience: { retry: false, fetch: up.fetch },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/u/x"), {}, ctx);
    // The hop's target declined: the proxy's own 502 (the first upstream had the request), not its 503.
    expect(res.status).toBe(502);
    expect(hosts(up.log)).toEqual(["u.example", "p.example"]);
  });

  it("a degradation rule on the shared provider's URL applies to both routes; the spare's rule does not", async () => {
    const up = hostFetch({ "p.example": status(503), "s.example": status(200), "d.example": status(503) });
    const proxy = resilientProxy({
      routes: [...routes(), { path: "/down", upstream: "https://d.example/v1" }],
      resilience: {
        retry: false,
        clock: new TestClock(0),
        fetch: up.fetch,
        breaker: { failureThreshold: 100 },
        degradation: degradation({
          minSamples: 1,
          browserSignals: false,
          levels: { high: { maxSteps: 30 } },
          rules: [
            { match: "https://p.example/v1", params: { steps: "steps" } },
            { match: "https://s.example/v1", params: { steps: "other.steps" } },
          ],
        }),
      },
    });
    // One failure steps the level down to `high` (maxSteps 30 here).
    await (await proxy.fetch(new Request("https://proxy.example/down"), {}, ctx)).text();
    up.log.length = 0;
    const init = {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k" },
      body: '{"steps":50}',
    };
    const chained = await proxy.fetch(new Request("https://proxy.example/video/x", init), {}, ctx);
    const upstream = await proxy.fetch(new Request("https://proxy.example/p/x", init), {}, ctx);
    expect(chained.headers.get("x-degradation-level")).toBe("high");
    expect(chained.headers.get("x-resilience-endpoint")).toBe("s");
    expect(upstream.status).toBe(503);
    expect(up.log.map((r) => `${new URL(r.url).host} ${r.text}`)).toEqual([
      'p.example {"steps":30}',
      's.example {"steps":30}',
      'p.example {"steps":30}',
    ]);
  });
});

describe("held: route paths as the URL parser writes them", () => {
  it("%2e%2e, /., /%2E, #, ?, \\ and a control character are refused when made", () => {
    for (const path of ["/%2e%2e/x", "/a/.", "/a/%2E", "/a#b", "/a?b", "/a\\b", "/a\u0001", "/a/.%2E"]) {
      expect(() => resilientProxy({ routes: [{ path, upstream: "https://u.example/v1" }] }), path).toThrow(TypeError);
    }
  });

  it("%2F and lowercase escapes are taken as written and serve a request written so", async () => {
    for (const [path, requested] of [
      ["/a%2Fb", "/a%2Fb/x"],
      ["/vid%c3%a9o", "/vid%c3%a9o/x"],
    ]) {
      const up = hostFetch({ "u.example": status(200) });
      const proxy = resilientProxy({
        routes: [{ path: path as string, upstream: "https://u.example/v1" }],
        resilience: { retry: false, fetch: up.fetch },
      });
      const res = await proxy.fetch(new Request(`https://proxy.example${requested}`), {}, ctx);
      expect(res.status).toBe(200);
      expect(up.log.map((r) => r.url)).toEqual(["https://u.example/v1/x"]);
    }
  });
});

describe("held: bytes that are no UTF-8 through a chain route at a degraded level", () => {
  const enc = (s: string): number[] => [...new TextEncoder().encode(s)];
  const cases: Array<[string, Uint8Array<ArrayBuffer>]> = [
    [
      "BOM then a surrogate as bytes",
      new Uint8Array([0xef, 0xbb, 0xbf, ...enc('{"steps":50,"p":"'), 0xed, 0xa0, 0x80, ...enc('"}')]),
    ],
    ["an overlong /", new Uint8Array([...enc('{"steps":50,"p":"'), 0xc0, 0xaf, ...enc('"}')])],
  ];

  for (const [name, bytes] of cases) {
    it(`${name}: both endpoints get the caller's bytes, the transform sees no body`, async () => {
      const seen: unknown[] = [];
      const up = hostFetch({ "p.example": status(503), "s.example": status(200), "d.example": status(503) });
      const proxy = resilientProxy({
        routes: [
          {
            path: "/video",
            chain: {
              name: "video",
              endpoints: [
                { name: "p", url: "https://p.example/v1" },
                {
                  name: "s",
                  url: "https://s.example/v1",
                  transform: (req) => {
                    seen.push(req.body);
                    return req;
                  },
                },
              ],
            },
          },
          { path: "/down", upstream: "https://d.example/v1" },
        ],
        resilience: {
          retry: false,
          clock: new TestClock(0),
          fetch: up.fetch,
          degradation: degradation({ minSamples: 1, browserSignals: false, levels: { high: { maxSteps: 30 } } }),
        },
      });
      await (await proxy.fetch(new Request("https://proxy.example/down"), {}, ctx)).text();
      up.log.length = 0;
      const res = await proxy.fetch(
        new Request("https://proxy.example/video/x", {
          method: "PUT",
          headers: { "content-type": "application/json; charset=utf-8" },
          body: bytes,
        }),
        {},
        ctx,
      );
      expect(res.headers.get("x-degradation-level")).toBe("high");
      expect(res.headers.get("x-resilience-endpoint")).toBe("s");
      expect(up.log.map((r) => [...(r.bytes ?? [])])).toEqual([[...bytes], [...bytes]]);
      expect(seen).toEqual([undefined]);
    });
  }
});

describe("held: the ky client over a chain", () => {
  it("the URL decides: a call under the chain's prefix goes down it", async () => {
    const up = hostFetch({ "p.example": status(503), "s.example": status(200) });
    const api = createClient({
      prefix: "https://p.example/v1",
      resilience: {
        retry: false,
        fetch: up.fetch,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: "https://p.example/v1" },
              { name: "s", url: "https://s.example/v1" },
            ],
          },
        ]),
      },
    });
    expect(await api.get("x").text()).toBe("answer 1");
    expect(up.log.map((r) => r.url)).toEqual(["https://p.example/v1/x", "https://s.example/v1/x"]);
  });
});
