import { afterEach, describe, expect, it, vi } from "vitest";
import { durableObjectStore, kvStore, type ProxyRoute, resilientProxy } from "../../src/cloudflare/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";

/**
 * Session nineteen, the edge: `resilientProxy`, `kvStore` and
 * `durableObjectStore` attacked from outside, through the public
 * `…/cloudflare` entry and `createResilience`, in Node (upstreams are stubs
 * given as the layer's `fetch` option; a fake `ctx`; nothing sleeps).
 *
 * Attacked: routing between several routes when their upstreams or chains'
 * first endpoints share a URL prefix (same provider, one route with a
 * fallback chain, another without, or two chains over one provider), route
 * paths the URL parser writes otherwise (non-ASCII, a space), `..` written
 * percent-encoded, the query after an upstream's own key, the health
 * endpoint's JSON after failures on keyed URLs, misspelt proxy options, and
 * which timers a store leaves behind once its call settled.
 *
 * Defects pinned (first `it.fails`, each asserting the documented
 * behaviour, on the code they were written against; all fixed since, so
 * plain `it`: the proxy now tells the layer which chain a route chose, or
 * none; a route path the URL parser writes otherwise is a `TypeError` when
 * the proxy is made; a background report's bound is an `unref`'d timer):
 * 1. A plain `upstream` route is served through another route's chain when
 *    its upstream lies under that chain's first endpoint (a "premium only"
 *    route beside a premium→standard chain). docs/cloudflare.md: "A route
 *    serves its path and everything below it (the path below goes onto the
 *    upstream's path, …)"; src/cloudflare/resilient-proxy.ts (`ProxyRoute`):
 *    "A path served by the proxy: one upstream, or a fallback chain".
 *    Observed: premium's 503 is not the answer; the request goes on to the
 *    chain's spare (`standard.example`) carrying the spare's own
 *    `authorization`, and the client hears `x-resilience-endpoint: standard`.
 *    Cause: resilient-proxy.ts:184-195 forgets the route once it has a
 *    target URL: it hands `rebase(upstream, …)` to the layer's `fetch`,
 *    whose ChainRouter (src/fallback/chain-router.ts:65-72, `match`) picks a
 *    chain by URL prefix alone.
 * 2. A chain route's request goes down another route's chain: (a) two chain
 *    routes whose first endpoints are one provider's URL (`/video` and
 *    `/image`, each with its own spare): `/image/x` goes down the video chain
 *    to the video spare; (b) a chain whose first endpoint lies under another
 *    chain's (`…/v1` and `…/v1/images`): `/video/images/x` goes to the image
 *    spare. Same sentences, and "each route's chain" (docs/cloudflare.md).
 *    Cause: the same (resilient-proxy.ts:184 targets `chainPrefix(chain)`,
 *    the layer re-selects the chain by the URL's longest prefix; fallback()
 *    refuses only equal chain names, src/fallback/fallback-rules.ts).
 * 3. A route path the URL parser writes otherwise (`/vidéo`, `/a b`) is
 *    accepted and serves nothing: a request for `/vidéo/x` answers 404
 *    (its pathname is `/vid%C3%A9o/x`). docs/cloudflare.md: "`resilientProxy`
 *    checks its options when it is made … its routes (a `TypeError`: a path
 *    that starts with `/` …)" and "A route serves its path and everything
 *    below it". Cause: resilient-proxy.ts:104 checks only the leading `/`,
 *    and `routeMatches` (resilient-proxy.ts:220-222) compares the raw path
 *    with the parsed, percent-encoded `url.pathname`. (The test accepts
 *    either fix: a TypeError when made, or the request served.)
 * 4. `durableObjectStore` leaves a `ref`'d timer behind its call: the
 *    background report's 250 ms bound is a plain `setTimeout` that outlives
 *    the call it was made for (an object that does not answer keeps a Node
 *    process alive for it). SECURITY.md, "Nothing outlives its call": "every
 *    timer is cleared when its call settles, but housekeeping, under
 *    `unref`'d timers that never hold a process". Cause:
 *    src/cloudflare/durable-object-store.ts:103 takes `storeClock(…)` (the
 *    system clock's `realTimer`, never unref'd) and :149 arms the bound
 *    with it for background reports too; kvStore uses `housekeepingClock`.
 *    (Minor: bounded by `timeout`, and workerd has no process to hold.)
 *
 * Held (plain `it`):
 * - a route whose requests lie under no other route's upstream or chain goes
 *   to its own chain (controls for 1 and 2);
 * - `..` written `%2e%2e` is resolved before matching: `/v1/text/%2e%2e/admin`
 *   is not served by `/v1/text`;
 * - the client's query goes after the upstream's own `?key=`;
 * - after failures on endpoints and upstreams whose URLs hold keys (and a
 *   spare's `authorization`), neither the 502 nor `/__resilience/health`
 *   holds any of them;
 * - a misspelt proxy option (`healthpath`) and a misspelt `resilience`
 *   option are a ConfigError when the proxy is made;
 * - kvStore's background write leaves only an `unref`'d timer (its jitter).
 *
 * Noted in the run's report, not pinned, and fixed since (the last test): the
 * health endpoint refused `bearer` in lower case (RFC 9110 reads the scheme
 * case-insensitively), and its comparison returned at once on a length
 * mismatch, so its timing could tell the token's length; it now compares
 * over the token's length whatever is given.
 */

const ctx = { waitUntil: () => {} };

/** A transport that records every request it got (as fetch would build it) and answers by `answer`. */
function recording(answer: (request: Request) => Response = () => new Response("ok")) {
  const seen: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    seen.push(request);
    return answer(request);
  };
  return { seen, fetch };
}

const hostsOf = (seen: Request[]) => seen.map((r) => new URL(r.url).host);

describe("1. an upstream route beside a chain over the same provider", () => {
  const routes = (): ProxyRoute[] => [
    {
      path: "/v1/video",
      chain: {
        name: "video",
        endpoints: [
          { name: "premium", url: "https://premium.example/v1/video" },
          { name: "standard", url: "https://standard.example/v2/video", headers: { authorization: "Bearer STD" } },
        ],
      },
    },
    { path: "/premium-only", upstream: "https://premium.example/v1/video" },
  ];
  const premiumDown = (r: Request) =>
    new URL(r.url).host === "premium.example" ? new Response("down", { status: 503 }) : new Response("spare");

  it("the upstream route answers its upstream's own 503 and never reaches the chain's spare", async () => {
    const up = recording(premiumDown);
    const proxy = resilientProxy({ routes: routes(), resilience: { fetch: up.fetch, retry: false } });
    const res = await proxy.fetch(new Request("https://proxy.example/premium-only/jobs/1"), {}, ctx);
    // Observed: 200 "spare" from standard.example, which got `authorization: Bearer STD`.
    expect(hostsOf(up.seen)).toEqual(["premium.example"]);
    expect(up.seen.some((r) => r.headers.get("authorization") === "Bearer STD")).toBe(false);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("down");
  });

  it("control: the chain route itself fails over to its spare, with the spare's own header", async () => {
    const up = recording(premiumDown);
    const proxy = resilientProxy({ routes: routes(), resilience: { fetch: up.fetch, retry: false } });
    const res = await proxy.fetch(new Request("https://proxy.example/v1/video/jobs/1"), {}, ctx);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("standard");
    expect(up.seen.map((r) => r.url)).toEqual([
      "https://premium.example/v1/video/jobs/1",
      "https://standard.example/v2/video/jobs/1",
    ]);
  });
});

describe("2. two chain routes over one provider", () => {
  const providerDown = (r: Request) =>
    new URL(r.url).host === "p.example" ? new Response("down", { status: 503 }) : new Response("spare");
  const chainRoute = (path: string, name: string, first: string, spare: string): ProxyRoute => ({
    path,
    chain: {
      name,
      endpoints: [
        { name: `${name}-provider`, url: first },
        { name: `${name}-spare`, url: spare },
      ],
    },
  });

  it("(a) same first endpoint: /image/x goes down the image chain, to the image spare", async () => {
    const up = recording(providerDown);
    const proxy = resilientProxy({
      routes: [
        chainRoute("/video", "video", "https://p.example/v1", "https://vspare.example/v1"),
        chainRoute("/image", "image", "https://p.example/v1", "https://ispare.example/v1"),
      ],
      resilience: { fetch: up.fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/image/x"), {}, ctx);
    // Observed: x-resilience-endpoint "video-spare", the request sent to vspare.example.
    expect(res.headers.get("x-resilience-endpoint")).toBe("image-spare");
    expect(hostsOf(up.seen)).toEqual(["p.example", "ispare.example"]);
  });

  it("(b) nested first endpoints: /video/images/x goes down the video chain, to the video spare", async () => {
    const up = recording(providerDown);
    const proxy = resilientProxy({
      routes: [
        chainRoute("/video", "video", "https://p.example/v1", "https://vspare.example/v1"),
        chainRoute("/image", "image", "https://p.example/v1/images", "https://ispare.example/v1/images"),
      ],
      resilience: { fetch: up.fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/video/images/x"), {}, ctx);
    // Observed: x-resilience-endpoint "image-spare", https://ispare.example/v1/images/x.
    expect(res.headers.get("x-resilience-endpoint")).toBe("video-spare");
    expect(up.seen.map((r) => r.url)).toEqual(["https://p.example/v1/images/x", "https://vspare.example/v1/images/x"]);
  });

  it("control: with distinct providers each route keeps its own chain", async () => {
    const up = recording((r) =>
      ["p.example", "q.example"].includes(new URL(r.url).host)
        ? new Response("down", { status: 503 })
        : new Response("spare"),
    );
    const proxy = resilientProxy({
      routes: [
        chainRoute("/video", "video", "https://p.example/v1", "https://vspare.example/v1"),
        chainRoute("/image", "image", "https://q.example/v1", "https://ispare.example/v1"),
      ],
      resilience: { fetch: up.fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/image/x"), {}, ctx);
    expect(res.headers.get("x-resilience-endpoint")).toBe("image-spare");
    expect(hostsOf(up.seen)).toEqual(["q.example", "ispare.example"]);
  });
});

describe("3. route paths the URL parser writes otherwise", () => {
  /** The documented outcome either way: refused with a TypeError when made, or the request served. */
  async function servedOrRefused(path: string, requested: string): Promise<string> {
    const up = recording();
    let proxy: ReturnType<typeof resilientProxy>;
    try {
      proxy = resilientProxy({
        routes: [{ path, upstream: "https://u.example/base" }],
        resilience: { fetch: up.fetch, retry: false },
      });
    } catch (error) {
      return error instanceof TypeError ? "refused" : `threw ${String(error)}`;
    }
    const res = await proxy.fetch(new Request(`https://proxy.example${requested}`), {}, ctx);
    return res.status === 200 && up.seen.length === 1 ? "served" : `answered ${res.status}`;
  }

  it("a non-ASCII route path (/vidéo) serves /vidéo/x, or is refused when made", async () => {
    // Observed: accepted, then "answered 404" for every request.
    expect(["served", "refused"]).toContain(await servedOrRefused("/vidéo", "/vidéo/x"));
  });

  it("a route path with a space (/a b) serves /a b/x, or is refused when made", async () => {
    expect(["served", "refused"]).toContain(await servedOrRefused("/a b", "/a b/x"));
  });

  it("control: the same path written percent-encoded is served", async () => {
    expect(await servedOrRefused("/vid%C3%A9o", "/vidéo/x")).toBe("served");
  });
});

describe("routing and forwarding that held", () => {
  it("`..` written %2e%2e is resolved before matching: the route above it does not serve it", async () => {
    const up = recording();
    const proxy = resilientProxy({
      routes: [{ path: "/v1/text", upstream: "https://text.example/v1" }],
      resilience: { fetch: up.fetch, retry: false },
    });
    const res = await proxy.fetch(new Request("https://proxy.example/v1/text/%2e%2e/admin"), {}, ctx);
    expect(res.status).toBe(404);
    expect(up.seen).toHaveLength(0);
  });

  it("the client's query goes after the upstream's own key", async () => {
    const up = recording();
    const proxy = resilientProxy({
      routes: [{ path: "/t", upstream: "https://text.example/v1?key=K" }],
      resilience: { fetch: up.fetch, retry: false },
    });
    await proxy.fetch(new Request("https://proxy.example/t/jobs?a=1&b=2"), {}, ctx);
    expect(up.seen.map((r) => r.url)).toEqual(["https://text.example/v1/jobs?key=K&a=1&b=2"]);
  });

  it("after failures on keyed URLs, neither the 502 nor the health JSON holds a key or a header", async () => {
    const proxy = resilientProxy({
      routes: [
        {
          path: "/v1/video",
          chain: {
            name: "video",
            endpoints: [
              { name: "premium", url: "https://premium.example/v1/video?key=SECRETA" },
              {
                name: "standard",
                url: "https://standard.example/v2/video?api_key=SECRETB",
                headers: { authorization: "Bearer SECRETC" },
              },
            ],
          },
        },
        { path: "/t", upstream: "https://text.example/v1?key=SECRETD" },
      ],
      resilience: {
        retry: false,
        fetch: async (input) => {
          throw new TypeError(`fetch failed for ${input instanceof Request ? input.url : String(input)}`);
        },
      },
    });
    const bodies: string[] = [];
    for (const path of ["/v1/video/x?token=SECRETE", "/t/y?token=SECRETF"]) {
      const res = await proxy.fetch(new Request(`https://proxy.example${path}`), {}, ctx);
      expect(res.status).toBe(502);
      bodies.push(await res.text());
    }
    const health = await proxy.fetch(new Request("https://proxy.example/__resilience/health"), {}, ctx);
    expect(health.status).toBe(200);
    bodies.push(await health.text());
    expect(bodies.join("\n")).not.toMatch(/SECRET/);
    expect(bodies[2]).toContain("premium.example");
  });

  it("a misspelt proxy option or resilience option is a ConfigError when made", () => {
    const routes: ProxyRoute[] = [{ path: "/x", upstream: "https://u.example" }];
    expect(() => resilientProxy({ routes, healthpath: "/h" } as never)).toThrow(ConfigError);
    expect(() => resilientProxy({ routes, resilience: { retri: 1 } } as never)).toThrow(ConfigError);
  });
});

describe("4. timers a store leaves behind its call", () => {
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Records the timers made while `work` runs: those neither fired nor cleared when it ends, and whether each holds the process. */
  async function timersLeftBy(work: () => Promise<void>): Promise<Array<{ ms: number; holds: boolean }>> {
    const live = new Map<NodeJS.Timeout, number>();
    vi.spyOn(globalThis, "setTimeout").mockImplementation(((fn: () => void, ms?: number) => {
      const handle: NodeJS.Timeout = realSetTimeout(() => {
        live.delete(handle);
        fn();
      }, ms);
      live.set(handle, ms ?? 0);
      return handle;
    }) as never);
    vi.spyOn(globalThis, "clearTimeout").mockImplementation(((handle: NodeJS.Timeout) => {
      live.delete(handle);
      realClearTimeout(handle);
    }) as never);
    await work();
    const left = [...live].map(([handle, ms]) => ({ ms, holds: handle.hasRef() }));
    vi.restoreAllMocks();
    return left;
  }

  it("durableObjectStore: an object that does not answer leaves no ref'd timer once the call settled", async () => {
    const namespace = {
      idFromName: (name: string) => name,
      get: () => ({ fetch: () => new Promise<Response>(() => {}) }),
    };
    const left = await timersLeftBy(async () => {
      const store = durableObjectStore(namespace, { ctx });
      const resilience = createResilience({ store, retry: false, fetch: async () => new Response("ok") });
      const res = await resilience.fetch("https://h.example/x");
      expect(res.status).toBe(200);
      await res.text();
    });
    // Observed: [{ ms: 250, holds: true }], the background report's bound.
    expect(left.filter((t) => t.holds)).toEqual([]);
  });

  it("kvStore: a trip's background write leaves only an unref'd timer (its jitter)", async () => {
    const kv = {
      getWithMetadata: () => new Promise<never>(() => {}),
      put: () => new Promise<void>(() => {}),
    };
    const left = await timersLeftBy(async () => {
      const store = kvStore(kv, { ctx });
      const resilience = createResilience({
        store,
        retry: false,
        breaker: { failureThreshold: 1 },
        fetch: async () => new Response("down", { status: 500 }),
      });
      const res = await resilience.fetch("https://h.example/x");
      expect(res.status).toBe(500);
      await res.text();
    });
    expect(left.length).toBeGreaterThan(0);
    expect(left.filter((t) => t.holds)).toEqual([]);
  });
});

describe("fixed since: a healthPath the URL parser writes otherwise", () => {
  it("is a ConfigError naming healthPath when the proxy is made; the parsed form is taken", () => {
    const routes: ProxyRoute[] = [{ path: "/v1", upstream: "https://u.example/v1" }];
    for (const healthPath of ["/héalth", "/a b", "/h?x=1", "/x/../health", "//"]) {
      expect(() => resilientProxy({ routes, healthPath })).toThrow(ConfigError);
      expect(() => resilientProxy({ routes, healthPath })).toThrow(/healthPath/);
    }
    expect(() => resilientProxy({ routes, healthPath: "/h%C3%A9alth" })).not.toThrow();
  });
});

describe("fixed since (noted, not pinned): the health token's scheme and length", () => {
  const proxy = () =>
    resilientProxy({
      routes: [{ path: "/v1", upstream: "https://u.example/v1" }],
      resilience: { fetch: async () => new Response("ok"), retry: false },
    });
  const env = { RESILIENCE_HEALTH_TOKEN: "s3cret-token" };
  const status = async (authorization: string | undefined) =>
    (
      await proxy().fetch(
        new Request("https://proxy.example/__resilience/health", {
          headers: authorization === undefined ? {} : { authorization },
        }),
        env,
        ctx,
      )
    ).status;

  it("takes the Bearer scheme in any case, and only the whole token", async () => {
    expect(await status("Bearer s3cret-token")).toBe(200);
    expect(await status("bearer s3cret-token")).toBe(200);
    expect(await status("BEARER s3cret-token")).toBe(200);
    // RFC 9110's credentials: the scheme, then one or more spaces (`1*SP`).
    expect(await status("Bearer   s3cret-token")).toBe(200);
    for (const refused of [
      undefined,
      "Bearer s3cret-toke",
      "Bearer s3cret-token-",
      "Bearer s3cret-tokeN",
      "Bearer\ts3cret-token",
      "Bearer  s3cret-token x",
      "Basic s3cret-token",
      "Bearers3cret-token",
      "s3cret-token",
      "",
    ]) {
      expect(await status(refused)).toBe(401);
    }
  });
});
