/**
 * Outside-in attack on this session's fixes: a degradation rule that rewrites a query parameter the first endpoint
 * of a fallback chain names in its own `url` (that endpoint now gets the rewritten value once, in place of its own);
 * a query rule whose model name holds a lone surrogate (written as U+FFFD); an unsubscribe returned by
 * `resilience.on` ending its own subscription only; `resilientProxy` copying its `resilience` options once, every
 * group's fields read by name, and checking and running that copy (a clock kept as given; the browser build's
 * `redirects: "library"` refused when made as `resilience.redirects`).
 * Docs: docs/degradation.md ("A call that goes down a fallback chain is rewritten once, by the rule its own URL
 * selects, before the chain: every endpoint gets that request (a rewritten parameter that the first endpoint's own
 * `url` names, `…/v1?model=premium`, goes to that endpoint once, with the rewritten value in its place)", "The
 * breaker
 * key (`url.host`, or `breaker.key(url)`) is taken from the URL the caller asked for, before the rewrite: a call
 * keeps
 * its host's breaker at every level, and a `breaker.key` that reads a query parameter a rule rewrites reads the
 * caller's value", "(a query writes a lone surrogate as the URL parser does, as U+FFFD; a JSON body as its `\u`
 * escape)", "A rule that puts `model` in a header needs `models` a header can carry … another name is a
 * `ConfigError` when the stage is made"); docs/fallback.md ("an endpoint's own query, `?key=…`, stays on it: a call
 * that carries the first endpoint's own parameters, wherever in its query and under whatever path, sends them once
 * to that endpoint and to no other"); docs/cloudflare.md (a route: "the path below goes onto the upstream's path, …
 * the query after the upstream's own, so an upstream such as `https://api.example/v1?key=…` keeps its key", "The
 * route decides alone: a chain route's request goes down that route's chain"); docs/health-and-events.md
 * ("`resilience.on(name, listener)` returns an unsubscribe function, which ends that subscription only: one called
 * late, after the same listener subscribed again (an effect's cleanup), leaves the newer subscription be. A listener
 * subscribed twice at once is registered once"); CHANGELOG.md ("`resilientProxy` … The options are now copied once,
 * every group's fields read by name, and that copy is what is checked and what runs", "keeps a clock, a store,
 * `fetch`, `random` and the stages as given", "In the browser build, `redirects: \"library\"` … is refused as
 * `resilience.redirects`, and by the proxy when it is made").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky) and plain `ky.create({ fetch })`, `resilientProxy` (./cloudflare, a fake `ctx`),
 * `TestClock` (./testing); node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts). The proxy's layer is
 * brought to `medium` by the browser floor (`navigator.connection.effectiveType: "3g"`, stubbed), which applies
 * once a first call settled; the browser build's switch `globalThis.__RESILIENT_FETCH_BROWSER__` stubbed as
 * test/core/browser-global.test.ts does.
 * Paths: chain (own `?key=K&model=premium`, several spellings of the call, a path below), two chains at one URL told
 * apart by their query, hedge, `transform` on the first endpoint, per-host breakers with a custom `breaker.key`
 * (open breaker skipping the first endpoint), redirect followed by the library, `Request` input, ky client
 * (`createClient` and plain ky), proxy chain routes and an upstream route with degradation.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the chain reads which pairs were the first endpoint's own from the URL before the
 * rewrite, place for place, so the proxy's target (own query included) is read as a direct call's; an own parameter,
 * rewritten or not, goes to the first endpoint once and to no other):
 * 1. docs/degradation.md "a rewritten parameter that the first endpoint's own `url` names, `…/v1?model=premium`, goes
 *    to that endpoint once, with the rewritten value in its place" (and docs/fallback.md "sends them once to that
 *    endpoint"). Observed through `resilientProxy`: a chain route whose first endpoint is `…/v1?key=K&model=premium`,
 *    a client's `GET /gen` at `medium` reaches that endpoint as `/v1?key=K&model=premium&model=standard`: the own
 *    value first, the degraded call still asks for the premium model (the fix of this session does not reach the
 *    proxy; a direct call to `…/v1?key=K&model=premium` is sent `?key=K&model=standard`, held below). The proxy's
 *    upstream route does it right (`/up?key=K&model=standard`). Where: src/cloudflare/resilient-proxy.ts `serve`
 *    makes the layer's request at `rebase(matched.base, rest)` (the first endpoint's own query included, which the
 *    rule rewrites) but hands the chain `chosenChains` `{ rest }` without it; src/fallback/chain-router.ts
 *    `endpointsFor` looks for the own pairs in `match.rest` (the client's rest), finds none "carried", keeps
 *    `model=premium` on the endpoint, while `restOf` keeps the rewritten `model=standard` (no own pair any more):
 *    `rebase` sends both. Two routes whose chains start at one URL (`/x` → `…/v1?model=premium`, `/y` →
 *    `…/v1?model=standard`) are hit the same way (`?model=standard&model=basic` for `/y`).
 * 2. Same doc sentences. Observed: the client's `GET /gen?model=premium` (the parameter written once) at `medium`
 *    reaches the first endpoint as `?key=K&model=standard&model=standard`, and the spare (to which, at `full`, the
 *    own parameter goes not at all) as `/v2?model=standard&model=standard`; at `full` the first endpoint gets
 *    `?key=K&model=premium` once. Where: the proxy's target carries the own `model=premium` and the client's, both
 *    rewritten; `endpointsFor` drops the own pair (the client's rest carried it), and `restOf` keeps both rewritten
 *    pairs (src/cloudflare/resilient-proxy.ts `serve`, src/fallback/chain-router.ts `restOf`/`endpointsFor`).
 *
 * Held (plain `it`):
 * - Direct chain call at `medium`, first endpoint `…/v1?key=K&model=premium`: the call written as the endpoint,
 *   reordered with another parameter, under a path with `pre%6Dium`, with `+` against the endpoint's `%20` and
 *   `%20` against its `+`: the first endpoint gets `key=K` once and `model=standard` once, in the own pairs'
 *   order; the spare neither (an own parameter, rewritten or not, goes to no other endpoint, as at `full`; the
 *   spares got `model=standard` when this file was written, changed with the fix of the defects below).
 * - Two chains at one URL with their own keys (`?key=KA&model=premium`, `?key=KB&model=standard`): each call goes
 *   down the chain its query selects, its key once to its first endpoint, to no spare, the other key never.
 * - Hedge (first endpoint slow), `transform` on the first endpoint (sees the rewritten URL, key once), redirect the
 *   library follows (the first hop sent once with the rewritten value), `Request` input, `createClient` and plain
 *   ky with `searchParams`: the same single own key and rewritten model; spares without either.
 * - A custom `breaker.key` reads the caller's `model=premium` at `medium`; the first endpoint's breaker that a
 *   `medium` call opened is the one a `full` call meets (skipped, nothing sent); the spare is keyed alike at every
 *   level and never gets the key.
 * - The proxy's upstream route `…/up?key=K&model=premium` at `medium`: `?key=K&model=standard`.
 * - A ladder `["premium", "std\ud800"]` through a chain: sent as `std%EF%BF%BD` once to the first endpoint, the call
 *   answered at `medium`; the same ladder with a header rule is a `ConfigError` when the stage is made.
 * - `on`: a late unsubscribe leaves the newer subscription; subscribing twice at once registers once (and one
 *   unsubscribe ends it); another listener's unsubscribe leaves this one; a `store` listener's late unsubscribe keeps
 *   the store connected and its events heard.
 * - Proxy options: a `retry.retryOn` group inherited from a prototype is read by name, and the caller's
 *   `statuses` list edited after the proxy was made changes nothing; a `TestClock` (private fields) is kept as
 *   given, so moving it reopens the proxy's breaker; a `retry.maxAttempts` getter whose later reads change is what
 *   was checked, at every request. Browser build: `redirects: "library"` from a class instance's getter or nested
 *   under a prototype is refused when the proxy is made as `resilience.redirects` (nothing sent); `"platform"` works.
 *
 * Docs-silent (not pinned):
 * - A chain call that does not carry the first endpoint's own `model=premium` sends it at every level, never
 *   rewritten (noted before by degradeodd-fortyfour).
 * - A caller's `model=premium` rewritten to the value the first endpoint owns (`…/v1?model=standard`) is dropped for
 *   the spares (they got `model=premium` at `full`, nothing at `medium`): fallback.md's "to no other" read literally.
 * - A ladder name with a lone surrogate (`\ud800x`) is never matched by a query value (the URL parser reads the
 *   caller's `?model=\ud800x` as U+FFFD): such a rung is not stepped down from.
 */
import ky from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  ConfigError,
  createResilience,
  getResilienceInfo,
  type StoreEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

afterEach(() => {
  vi.unstubAllGlobals();
});

const ctx = { waitUntil() {}, passThroughOnException() {} };
const answer = (status: number) => (h: Hit) => {
  h.res.statusCode = status;
  h.res.end("x");
};
const busyFirst = () => a.on(answer(503));
const modelInQuery = { rules: [{ params: { model: { query: "model" } } }] };
const paths = (server: typeof a) => server.hits.map((h) => h.path);
const params = (hit: Hit | undefined) => new URL(hit?.path ?? "", "http://x").searchParams;

function chainLayer(first: string, extra: Parameters<typeof createResilience>[0] = {}, hedge?: number) {
  const resilience = createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "A",
        ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
        endpoints: [
          { name: "p", url: `${a.base}${first}` },
          { name: "q", url: `${b.base}/v2` },
        ],
      },
    ]),
    degradation: degradation({
      ...modelInQuery,
      models: [
        ["premium", "standard", "basic"],
        ["pre mium", "standard"],
      ],
    }),
    ...extra,
  });
  const { degradation: level } = resilience;
  if (!level) throw new Error("the layer has no degradation handle");
  level.setLevel("medium");
  return Object.assign(resilience, { degradation: level });
}

/** A proxy whose layer is at `medium` from its second request on (the browser floor of a 3g connection). */
async function mediumProxy(routes: Parameters<typeof resilientProxy>[0]["routes"]) {
  vi.stubGlobal("navigator", { connection: { effectiveType: "3g" } });
  const proxy = resilientProxy<object>({
    routes,
    resilience: { retry: false, degradation: degradation(modelInQuery) },
  });
  const call = async (path: string) => {
    const res = await proxy.fetch(new Request(`https://worker.example${path}`), {}, ctx);
    await res.text();
    return res;
  };
  await call(routes[0]?.path ?? "/"); // at full: it sets the floor for the next
  a.reset();
  b.reset();
  return call;
}

describe("defects", () => {
  it("1. proxy chain route at medium: the first endpoint's own model goes once, rewritten (not premium first)", async () => {
    const call = await mediumProxy([
      {
        path: "/gen",
        chain: {
          name: "A",
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=K&model=premium` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      },
    ]);
    busyFirst();
    const res = await call("/gen");
    expect(res.headers.get("x-degradation-level")).toBe("medium");
    expect(params(a.hits[0]).getAll("key")).toEqual(["K"]);
    expect(b.hits[0]?.path).toBe("/v2"); // the own parameter goes to no other endpoint, as at full
    // Observed: ["premium", "standard"] (`/v1?key=K&model=premium&model=standard`).
    expect(params(a.hits[0]).getAll("model")).toEqual(["standard"]);
  });

  it("2. proxy chain route at medium: a client's ?model=premium goes once, to the first endpoint only", async () => {
    const call = await mediumProxy([
      {
        path: "/gen",
        chain: {
          name: "A",
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=K&model=premium` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      },
    ]);
    busyFirst();
    const res = await call("/gen?model=premium");
    expect(res.headers.get("x-degradation-level")).toBe("medium");
    expect(params(a.hits[0]).getAll("key")).toEqual(["K"]);
    expect(params(b.hits[0]).getAll("key")).toEqual([]);
    // Observed: ["standard", "standard"] at both. The client's own-parameter copy goes to no spare, as at full.
    expect(params(a.hits[0]).getAll("model")).toEqual(["standard"]);
    expect(params(b.hits[0]).getAll("model")).toEqual([]);
  });
});

describe("held: a chain whose first endpoint owns ?key=K&model=…, at medium", () => {
  // The own parameter, rewritten, goes in its own place on the first endpoint and to no spare (as at `full`).
  const cases: Array<[own: string, call: string, first: string, spare: string]> = [
    ["/v1?key=K&model=premium", "/v1?key=K&model=premium", "/v1?key=K&model=standard", "/v2"],
    ["/v1?key=K&model=premium", "/v1?model=premium&key=K&seed=1", "/v1?key=K&model=standard&seed=1", "/v2?seed=1"],
    ["/v1?key=K&model=premium", "/v1/x?model=pre%6Dium", "/v1/x?key=K&model=standard", "/v2/x"],
    ["/v1?key=K&model=pre+mium", "/v1?model=pre%20mium", "/v1?key=K&model=standard", "/v2"],
    ["/v1?key=K&model=pre%20mium", "/v1?model=pre+mium", "/v1?key=K&model=standard", "/v2"],
    ["/v1?model=premium&key=K", "/v1?key=K&model=premium", "/v1?model=standard&key=K", "/v2"],
  ];
  for (const [own, called, first, spare] of cases) {
    it(`${own} called as ${called}`, async () => {
      const resilience = chainLayer(own);
      busyFirst();
      const res = await resilience.fetch(`${a.base}${called}`);
      await res.text();
      expect(getResilienceInfo(res)?.endpoint).toBe("q");
      expect(paths(a)).toEqual([first]);
      expect(paths(b)).toEqual([spare]);
    });
  }

  it("two chains at one URL with their own keys: each key once, to its own first endpoint only", async () => {
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "A",
          endpoints: [
            { name: "pA", url: `${a.base}/v1?key=KA&model=premium` },
            { name: "qA", url: `${b.base}/a` },
          ],
        },
        {
          name: "B",
          endpoints: [
            { name: "pB", url: `${a.base}/v1?key=KB&model=standard` },
            { name: "qB", url: `${b.base}/b` },
          ],
        },
      ]),
      degradation: degradation(modelInQuery),
    });
    resilience.degradation.setLevel("medium");
    for (const [query, spare, first, sparePath] of [
      ["?key=KA&model=premium", "qA", "/v1?key=KA&model=standard", "/a"],
      ["?key=KB&model=standard", "qB", "/v1?key=KB&model=basic", "/b"],
    ] as const) {
      a.reset();
      b.reset();
      busyFirst();
      const res = await resilience.fetch(`${a.base}/v1${query}`);
      await res.text();
      expect(getResilienceInfo(res)?.endpoint).toBe(spare);
      expect(paths(a)).toEqual([first]);
      expect(paths(b)).toEqual([sparePath]);
    }
  });

  it("hedged: the slow first endpoint gets the key and the rewritten model once, the hedge neither", async () => {
    const resilience = chainLayer("/v1?key=K&model=premium", {}, 5);
    a.on((h) => setTimeout(() => h.res.end("late"), 40));
    const res = await resilience.fetch(`${a.base}/v1?key=K&model=premium`);
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    expect(paths(a)).toEqual(["/v1?key=K&model=standard"]);
    expect(paths(b)).toEqual(["/v2"]);
  });

  it("a transform on the first endpoint sees the rewritten URL with its key once", async () => {
    const seen: string[] = [];
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "A",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/v1?key=K&model=premium`,
              transform: (request) => {
                seen.push(request.url);
                request.headers.set("x-shaped", "1");
                return request;
              },
            },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
      degradation: degradation(modelInQuery),
    });
    resilience.degradation.setLevel("medium");
    busyFirst();
    await (await resilience.fetch(`${a.base}/v1?key=K&model=premium`)).text();
    expect(seen).toEqual([`${a.base}/v1?key=K&model=standard`]);
    expect(paths(a)).toEqual(["/v1?key=K&model=standard"]);
    expect(a.hits[0]?.headers["x-shaped"]).toBe("1");
    expect(paths(b)).toEqual(["/v2"]);
  });

  it("a custom breaker.key reads the caller's value; the breaker a medium call opened skips a full call", async () => {
    const keyed: string[] = [];
    const resilience = chainLayer("/v1?key=K&model=premium", {
      breaker: {
        failureThreshold: 1,
        key: (url: URL) => {
          keyed.push(url.href);
          return `${url.host}|${url.searchParams.get("model")}`;
        },
      },
    });
    busyFirst();
    await (await resilience.fetch(`${a.base}/v1?key=K&model=premium`)).text();
    await (await resilience.fetch(`${a.base}/v1?key=K&model=premium`)).text();
    resilience.degradation.setLevel("full");
    const res = await resilience.fetch(`${a.base}/v1?key=K&model=premium`);
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("q");
    expect(paths(a)).toEqual(["/v1?key=K&model=standard"]); // only the first call reached it
    expect(paths(b)).toEqual(["/v2", "/v2", "/v2"]);
    expect(new Set(keyed)).toEqual(new Set([`${a.base}/v1?key=K&model=premium`, `${b.base}/v2`]));
    expect(resilience.health().breakers?.[`${a.host}|premium`]?.state).toBe("open");
    expect(Object.keys(resilience.health().breakers ?? {}).some((k) => k.endsWith("|standard"))).toBe(false);
  });

  it("a redirect the library follows: the first hop once with the rewritten value, the spare keyless", async () => {
    const resilience = chainLayer("/v1?key=K&model=premium", { redirects: "library" });
    a.on((h) => {
      if (h.path.startsWith("/v1")) {
        h.res.statusCode = 307;
        h.res.setHeader("location", `${b.base}/moved`);
        h.res.end();
      } else answer(503)(h);
    });
    b.on((h) => (h.path.startsWith("/moved") ? answer(503)(h) : h.res.end("ok")));
    const res = await resilience.fetch(`${a.base}/v1?key=K&model=premium`);
    await res.text();
    expect(res.status).toBe(200);
    expect(paths(a)).toEqual(["/v1?key=K&model=standard"]);
    expect(paths(b)).toEqual(["/moved", "/v2"]);
  });

  it("Request input, createClient and plain ky: the same single key and rewritten model", async () => {
    const resilience = chainLayer("/v1?key=K&model=premium");
    busyFirst();
    await (await resilience.fetch(new Request(`${a.base}/v1?key=K&model=premium`))).text();
    const searchParams = { key: "K", model: "premium" };
    const api = createClient({ resilience: chainLayer("/v1?key=K&model=premium"), throwHttpErrors: false });
    await api.get(`${a.base}/v1`, { searchParams }).text();
    await ky.create({ fetch: resilience.fetch, retry: 0 }).get(`${a.base}/v1`, { searchParams }).text();
    expect(paths(a)).toEqual(Array(3).fill("/v1?key=K&model=standard"));
    expect(paths(b)).toEqual(Array(3).fill("/v2"));
  });

  it("the proxy's upstream route rewrites its own model in place", async () => {
    const call = await mediumProxy([{ path: "/up", upstream: `${a.base}/up?key=K&model=premium` }]);
    const res = await call("/up");
    expect(res.headers.get("x-degradation-level")).toBe("medium");
    expect(paths(a)).toEqual(["/up?key=K&model=standard"]);
  });
});

describe("held: a lone surrogate in a model name", () => {
  it("goes as U+FFFD once to the first endpoint that owns it, and the call is answered at its level", async () => {
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "A",
          endpoints: [
            { name: "p", url: `${a.base}/v1?key=K&model=premium` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
      degradation: degradation({ ...modelInQuery, models: [["premium", "std\ud800"]] }),
    });
    resilience.degradation.setLevel("medium");
    busyFirst();
    const res = await resilience.fetch(`${a.base}/v1?key=K&model=premium`);
    await res.text();
    expect(res.status).toBe(200);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expect(paths(a)).toEqual(["/v1?key=K&model=std%EF%BF%BD"]);
    expect(paths(b)).toEqual(["/v2"]); // an own parameter, rewritten or not, goes to no spare
    expect(resilience.health().errorRate).toBeLessThan(1);
  });

  it("is a ConfigError when made for a header rule", () => {
    expect(() =>
      degradation({ models: [["premium", "std\ud800"]], rules: [{ params: { model: { header: "x-model" } } }] }),
    ).toThrow(ConfigError);
  });
});

describe("held: resilience.on's unsubscribe ends its own subscription only", () => {
  it("late, twice at once, and another listener's", async () => {
    const resilience = createResilience({ retry: false });
    const heard: string[] = [];
    const one = () => heard.push("one");
    const two = () => heard.push("two");
    const stale = resilience.on("request", one);
    stale();
    const fresh = resilience.on("request", one);
    stale(); // late: an effect's cleanup
    const again = resilience.on("request", one); // twice at once: registered once
    const other = resilience.on("request", two);
    other();
    await (await resilience.fetch(`${a.base}/x`)).text();
    expect(heard).toEqual(["one"]);
    again(); // ends the one registration both calls made
    await (await resilience.fetch(`${a.base}/x`)).text();
    expect(heard).toEqual(["one"]);
    fresh();
    const back = resilience.on("request", two);
    other(); // another subscription's late unsubscribe of the same listener
    await (await resilience.fetch(`${a.base}/x`)).text();
    expect(heard).toEqual(["one", "two"]);
    back();
  });

  it("a store listener's late unsubscribe keeps the store connected and its events heard", () => {
    const told: Array<(event: StoreEvent) => void> = [];
    let disconnects = 0;
    const store: BreakerStore = {
      name: "own",
      publish() {},
      peek: () => undefined,
      connect(listener) {
        told.push(listener);
        return () => {
          disconnects++;
        };
      },
    };
    const resilience = createResilience({ store });
    const heard: StoreEvent[] = [];
    const listener = (event: StoreEvent) => heard.push(event);
    const stale = resilience.on("store", listener);
    stale();
    resilience.on("store", listener);
    stale();
    expect(disconnects).toBe(1);
    told.at(-1)?.({ store: "own", key: "k", operation: "write", outcome: "ok" });
    expect(heard).toHaveLength(1);
  });
});

describe("held: resilientProxy's layer options, copied once and read by name", () => {
  it("an inherited retryOn is read, and edits to the caller's statuses after the proxy is made change nothing", async () => {
    a.on(answer(500));
    const statuses = [500];
    const retryOn = Object.create({ statuses }) as { statuses: number[] };
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { retry: { maxAttempts: 2, initialDelay: 1, maxDelay: 1, jitter: "none", retryOn } },
    });
    statuses.length = 0;
    statuses.push(418);
    const res = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    await res.text();
    expect(res.status).toBe(500);
    expect(a.hits).toHaveLength(2);
  });

  it("a TestClock (private fields) is kept as given: moving it reopens the proxy's breaker", async () => {
    const clock = new TestClock(1_000_000);
    a.on(answer(500));
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: a.base }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1, timeout: 5_000 } },
    });
    const call = async () => {
      const res = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
      await res.text();
      return res.status;
    };
    expect(await call()).toBe(500);
    expect(await call()).toBe(503); // open: nothing sent
    expect(a.hits).toHaveLength(1);
    await clock.advance(5_000);
    a.on(answer(200));
    expect(await call()).toBe(200);
    expect(a.hits).toHaveLength(2);
  });

  it("a getter whose later reads change runs as checked, at every request", async () => {
    a.on(answer(500));
    let reads = 0;
    const retry = {
      initialDelay: 1,
      maxDelay: 1,
      jitter: "none" as const,
      get maxAttempts() {
        reads++;
        return reads <= 2 ? 2 : 5;
      },
    };
    const proxy = resilientProxy<object>({ routes: [{ path: "/", upstream: a.base }], resilience: { retry } });
    const readsWhenMade = reads;
    for (let i = 0; i < 2; i++) await (await proxy.fetch(new Request("https://worker.example/x"), {}, ctx)).text();
    expect(a.hits).toHaveLength(4);
    expect(reads).toBe(readsWhenMade);
  });

  it("browser build: redirects library from a getter or a prototype is refused when made, as resilience.redirects", async () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    class Options {
      get redirects() {
        return "library" as const;
      }
    }
    const shapes = [
      () => new Options(),
      () => Object.create({ redirects: "library", retry: false }) as object,
      () => Object.create(Object.create({ redirects: "library" })) as object,
    ];
    for (const make of shapes) {
      let error: unknown;
      try {
        resilientProxy<object>({
          routes: [{ path: "/", upstream: a.base }],
          resilience: make() as Parameters<typeof resilientProxy>[0]["resilience"],
        });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe("resilience.redirects");
    }
    const proxy = resilientProxy<object>({
      routes: [{ path: "/", upstream: a.base }],
      resilience: Object.create({ redirects: "platform" }) as object,
    });
    const res = await proxy.fetch(new Request("https://worker.example/ok"), {}, ctx);
    await res.text();
    expect(res.status).toBe(200);
    expect(paths(a)).toEqual(["/ok"]);
  });
});
