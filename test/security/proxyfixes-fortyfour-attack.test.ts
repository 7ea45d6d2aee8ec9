/**
 * Outside-in attack on two recent changes: `resilientProxy` building its layer from the `resilience` options read
 * by name (groups copied, a clock, store, `fetch`, `random` and the stages kept as given), with the browser build's
 * `redirects: "library"` refusal named as the caller wrote it; and the mark on an answer that came after another
 * request of its call, which a layer in front (or the proxy) must not take as "declined" for a keyless POST, driven
 * here down the hedge path.
 * Docs: docs/options.md "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and
 * `resilientProxy` check their options when they are made and keep what they read then, so an edit to your objects
 * afterwards changes nothing (plain objects and arrays are copied; functions, clocks, schemas and other objects are
 * kept as given)", "unknown keys are an error too, so a typo never silently does nothing", "The ky client's
 * `createClient({ resilience })` and `resilientProxy({ resilience })` name these options as their callers wrote
 * them: `resilience.retry.maxAttempts`", the row `redirects` "(the browser build: only `"platform"`)";
 * docs/cloudflare.md "`resilientProxy` checks its options when it is made, not on each request: … the layer's
 * options in `resilience` (where a `fallback` is refused: a proxy's chains go in its routes)", "`502` when no
 * endpoint answered otherwise (… and a `429` or `503` that came after another request of the call (a retry, an
 * endpoint before it) for a client's POST or PATCH without a key, when `retry.idempotencyKey` is on …)";
 * SECURITY.md "A paid request is never processed twice | without an `Idempotency-Key` … a POST or PATCH is sent
 * again … only when it surely was not processed: 429, 503 …; hedging needs a key"; docs/fallback.md "`hedge: {
 * delay }`, for idempotent requests or requests with an `Idempotency-Key` only … the first acceptable answer wins
 * and the others are aborted".
 * How: `createResilience`, `getResilienceInfo`, `ConfigError` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, a fake `ctx` recording `waitUntil`);
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every request received; the browser
 * build's switch `globalThis.__RESILIENT_FETCH_BROWSER__` stubbed as test/core/browser-global.test.ts does.
 * Paths: plain call, proxy (upstream route and chain route), hedged chain as the inner layer under an outer layer,
 * an outer chain and the ky client, `Request` input rebuilt by the proxy.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the proxy copies its layer's options once, every group's fields read by name into
 * objects of its own, and checks that copy, the fallback refusal included):
 * 1. docs/options.md "… and `resilientProxy` check their options when they are made and keep what they read then,
 *    so an edit to your objects afterwards changes nothing", docs/cloudflare.md "checks its options when it is
 *    made, not on each request". Observed: a group given as an object that is not plain (`retry:
 *    Object.create({ maxAttempts: 1 })`, a class instance `{ maxAttempts = 1 }`), which the check accepts (it reads
 *    options by name), is held by reference until the first request makes the layer: setting `maxAttempts` to 3
 *    after the proxy was made sends a 500 three times (`createResilience` and `createClient({ resilience })`, given
 *    the same object and the same edit, send it once: they resolve it when made); an edit to 0 makes every
 *    request's `proxy.fetch` reject with `ConfigError` "retry.maxAttempts: …" (not even `resilience.…`), a check on
 *    each request. Cause: src/cloudflare/resilient-proxy.ts `layerCopy` copies the groups with `plainCopy`, which
 *    keeps a non-plain object as it is; `init` resolves them (`createResilience(layerOptions)`) on the first
 *    request only.
 * 2. docs/cloudflare.md "the layer's options in `resilience` (where a `fallback` is refused: a proxy's chains go in
 *    its routes)", docs/options.md "keep what they read then". Observed: `resilience: { get fallback() }` that
 *    reads `undefined` first and a `fallback([…])` stage next is taken, and the proxy's upstream route then runs
 *    down that chain: a 503 of the route's upstream is answered by the chain's spare (200, `x-resilience-endpoint:
 *    q`). Cause: src/cloudflare/resilient-proxy.ts checks `resilience.fallback` on the first copy (`options =
 *    plainCopy(options)`), but builds the layer from `layerCopy(layerGiven)`, a second read of every option, and
 *    the check repeated on that copy (`resolveOptions`) accepts any `fallback` stage; `init` keeps it when no route
 *    has a chain. (The same two reads let `resilience` as a getter hand the check `{}` and the layer `{ retyr: … }`:
 *    `layerCopy` drops the misspelt key without a word.)
 *
 * Held (plain `it`):
 * - Edits after the proxy is made to plain groups (`retry`, `timeout`, `breaker`, `crossOriginHeaders`, nested
 *   `retryOn.statuses`) change nothing: a 500 still sent once, `authorization` still kept home on a redirect.
 * - A getter that changes between reads never hands the layer an unchecked value: a `retry` getter whose later
 *   read is `maxAttempts: 0` is refused when the proxy is made, as `resilience.retry.maxAttempts`.
 * - A class-instance `resilience`, `Object.create(defaults)` and hidden (non-enumerable) options are read by name
 *   by the root, ky and the proxy alike (a 500 sent once; `idempotencyKey: true` from an inherited `retry` puts a
 *   key on the upstream's POST).
 * - Unknown keys and misspellings are refused by all three with the path the caller wrote: `resilience`
 *   ("unknown option "retyr""), `resilience.retry` for `maxAttemps`, an inherited misspelling too; the root names
 *   them without the prefix (`options` for a top-level one).
 * - A plain-object store keeping its state in `this`, as `resilience.store` (no factory) and returned by
 *   `options.store`: the layer publishes to the caller's object; a factory's `bindContext` is called with each
 *   request's `ctx`. A `degradation({…})` stage is joined as given (its `join` sees the caller's object as `this`),
 *   its `levelHeader` reaches the upstream.
 * - Browser build: `redirects: "library"` refused at once as `resilience.redirects` by ky and the proxy (inherited
 *   or hidden too), `redirects` by the root; nothing sent.
 * - Hedge path: an outer layer (3 attempts) over an inner layer with `retry.idempotencyKey: true` and a hedged chain
 *   `[p, q]`, keyless POST: p slow and q answering 503 (p answering 503/500 or resetting), both sent once under one
 *   key, the outer layer never sends again (each server hit once, the outer call's `attempts` 1); an outer
 *   chain over the pair does not move on to its spare; the ky client over the pair sends once; the proxy with the
 *   same hedged chain route answers 502 for the marked 503/429 (p and q hit once each) and passes a 500 through.
 *
 * Docs-silent (not pinned):
 * - A misspelt option defined not enumerable (`Object.defineProperty(o, "retyr", { value, enumerable: false })`) is
 *   refused by none of the three (the checker lists unknown keys with `for…in`).
 * - `resilience.store` (outside the proxy's `resilience` type, where `fallback` is refused at run time) is taken
 *   and used when no `store` factory gives one, but its `bindContext` was never called: the proxy bound only the
 *   factory's store. Since changed: it is bound to each request's `ctx` too (the plain-object store test).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

afterEach(() => {
  vi.unstubAllGlobals();
});

const contexts: unknown[] = [];
const ctx = {
  waitUntil(p: Promise<unknown>) {
    contexts.push(p);
  },
  passThroughOnException() {},
};
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const answer = (status: number) => (h: Hit) => {
  h.res.statusCode = status;
  h.res.end("x");
};
const later = (ms: number, then: (h: Hit) => void) => (h: Hit) => {
  setTimeout(() => then(h), ms);
};
const reset = (h: Hit) => h.res.socket?.destroy();

type ProxyResilience = Parameters<typeof resilientProxy>[0]["resilience"];

function proxyOn(resilience: unknown, store?: (env: object) => never) {
  const proxy = resilientProxy<object>({
    routes: [{ path: "/", upstream: a.base }],
    resilience: resilience as ProxyResilience,
    ...(store ? { store } : {}),
  });
  return (path: string, init?: RequestInit) => proxy.fetch(new Request(`https://worker.example${path}`, init), {}, ctx);
}

function refusal(fn: () => unknown): ConfigError | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  return undefined;
}

describe("defects", () => {
  it("1. an edit after the proxy is made to a non-plain group changes nothing (as for root and ky)", async () => {
    a.on(answer(500));
    // Controls: the root and ky resolve such a group when made; the edit afterwards changes nothing.
    for (const make of ["root", "ky"] as const) {
      const base = { maxAttempts: 1, ...fast };
      const retry = Object.create(base) as typeof base;
      if (make === "root") {
        const r = createResilience({ retry });
        base.maxAttempts = 3;
        expect((await r.fetch(`${a.base}/root`)).status).toBe(500);
      } else {
        const api = createClient({ resilience: { retry }, throwHttpErrors: false });
        base.maxAttempts = 3;
        expect((await api.get(`${a.base}/ky`)).status).toBe(500);
      }
    }
    expect(a.hits.length).toBe(2);
    a.reset();
    a.on(answer(500));

    const base = { maxAttempts: 1, ...fast };
    const call = proxyOn({ retry: Object.create(base) });
    base.maxAttempts = 3; // after the proxy was made
    expect((await call("/x")).status).toBe(500);
    expect(a.hits.length).toBe(1); // observed: 3

    class Retry {
      maxAttempts = 1;
    }
    const own = new Retry();
    const second = proxyOn({ retry: own });
    own.maxAttempts = 0;
    const settled = await second("/y").then(
      (res) => res.status,
      (error: unknown) => error,
    );
    expect(settled).toBe(500); // observed: ConfigError "retry.maxAttempts: expected a value >= 1, received 0"
  });

  it("2. a resilience.fallback a getter hands over on its second read is refused, not run", async () => {
    a.on(answer(503));
    b.on(answer(200));
    const stage = fallback([
      {
        name: "staged",
        endpoints: [
          { name: "p", url: a.base },
          { name: "q", url: b.base },
        ],
      },
    ]);
    let reads = 0;
    const resilience = {
      retry: false as const,
      get fallback() {
        reads++;
        return reads > 1 ? stage : undefined;
      },
    };
    let made: ReturnType<typeof proxyOn> | undefined;
    const error = refusal(() => {
      made = proxyOn(resilience);
    });
    if (made) {
      const res = await made("/x");
      expect(res.headers.get("x-resilience-endpoint")).not.toBe("q"); // observed: "q"
      expect(res.status).toBe(503); // observed: 200, from the staged chain's spare
      expect(b.hits.length).toBe(0); // observed: 1
    } else {
      expect(error?.path).toBe("resilience.fallback");
    }
  });
});

describe("the proxy's layer options: copies, reads by name, refusals", () => {
  it("edits to plain groups after the proxy is made change nothing", async () => {
    a.on((h) => {
      if (h.path === "/go") {
        h.res.statusCode = 307;
        h.res.setHeader("location", `${b.base}/landed`);
        h.res.end();
      } else answer(500)(h);
    });
    b.on(answer(200));
    const retry = { maxAttempts: 1, ...fast, retryOn: { statuses: [500] } };
    const breaker = { failureThreshold: 5 };
    const timeout = { attempt: 5_000 };
    const crossOriginHeaders = ["x-trace"];
    const call = proxyOn({ retry, breaker, timeout, crossOriginHeaders, redirects: "library" });
    retry.maxAttempts = 3;
    retry.retryOn.statuses.push(503);
    breaker.failureThreshold = 1;
    timeout.attempt = 1;
    crossOriginHeaders.push("authorization");
    expect((await call("/x")).status).toBe(500);
    expect((await call("/x")).status).toBe(500); // a breaker with threshold 1 would have opened: 503 unsent
    expect(a.hits.length).toBe(2);
    const res = await call("/go", { headers: { authorization: "Bearer s3cret", "x-trace": "t1" } });
    expect(res.status).toBe(200);
    expect(b.hits[0]?.headers.authorization).toBeUndefined();
    expect(b.hits[0]?.headers["x-trace"]).toBe("t1");
  });

  it("a getter whose later read is invalid is refused when the proxy is made, by its path", () => {
    let reads = 0;
    const resilience = {
      get retry() {
        reads++;
        return { maxAttempts: reads > 1 ? 0 : 1 };
      },
    };
    const error = refusal(() => proxyOn(resilience));
    expect(error?.path).toBe("resilience.retry.maxAttempts");
  });

  it("a class instance, Object.create(defaults) and hidden options are read by name by root, ky and the proxy", async () => {
    a.on(answer(500));
    class Config {
      random = () => 0;
      get retry() {
        return { maxAttempts: 1, idempotencyKey: true };
      }
    }
    const inherited = () =>
      Object.assign(Object.create({ retry: { maxAttempts: 1, idempotencyKey: true } }) as ResilienceOptions, {
        random: () => 0,
      });
    const hidden = () =>
      Object.defineProperty({ random: () => 0 }, "retry", {
        value: { maxAttempts: 1, idempotencyKey: true },
        enumerable: false,
      }) as ResilienceOptions;
    for (const make of [() => new Config() as ResilienceOptions, inherited, hidden]) {
      expect((await createResilience(make()).fetch(`${a.base}/r`, { method: "POST", body: "1" })).status).toBe(500);
      const api = createClient({ resilience: make(), throwHttpErrors: false });
      expect((await api.post(`${a.base}/k`, { body: "2" })).status).toBe(500);
      expect((await proxyOn(make())("/p", { method: "POST", body: "3" })).status).toBe(500);
    }
    expect(a.hits.length).toBe(9);
    for (const hit of a.hits) expect(hit.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("unknown keys and misspellings are refused with the path the caller wrote", () => {
    const shapes: [unknown, string, string][] = [
      [{ retyr: { maxAttempts: 1 } }, "", 'unknown option "retyr"'],
      [{ retry: { maxAttemps: 1 } }, "retry", 'unknown option "maxAttemps"'],
      [Object.create({ timout: { total: 1 } }), "", 'unknown option "timout"'],
      [
        new (class {
          breakr = {};
        })(),
        "",
        'unknown option "breakr"',
      ],
    ];
    for (const [given, path, words] of shapes) {
      const root = refusal(() => createResilience(given as ResilienceOptions));
      expect(root?.path).toBe(path || "options");
      expect(root?.message).toContain(words);
      const prefixed = path ? `resilience.${path}` : "resilience";
      expect(refusal(() => createClient({ resilience: given as ResilienceOptions }))?.path).toBe(prefixed);
      const proxied = refusal(() => proxyOn(given));
      expect(proxied?.path).toBe(prefixed);
      expect(proxied?.message).toContain(words);
    }
  });

  it("a plain-object store keeping its state in `this`: as resilience.store and from options.store", async () => {
    a.on(answer(503));
    const plainStore = () => ({
      name: "mine",
      published: 0,
      bound: [] as unknown[],
      snapshots: {} as Record<string, unknown>,
      publish(key: string, snapshot: unknown) {
        this.published++;
        this.snapshots[key] = snapshot;
      },
      peek(key: string) {
        return this.snapshots[key] as never;
      },
      bindContext(context: unknown) {
        this.bound.push(context);
      },
    });
    const given = plainStore();
    const first = proxyOn({ store: given, retry: false, breaker: { failureThreshold: 1 } });
    expect((await first("/x")).status).toBe(503);
    expect(given.published).toBe(1); // the caller's object was told the trip
    expect(Object.keys(given.snapshots)).toEqual([a.host]);
    expect(given.bound).toEqual([ctx]); // bound to the request's ctx as a factory's store is (since fixed)

    const made = plainStore();
    const second = proxyOn({ retry: false, breaker: { failureThreshold: 1 } }, () => made as never);
    expect((await second("/y")).status).toBe(503);
    expect(made.published).toBe(1);
    expect(made.bound).toEqual([ctx]);
    const refused = await second("/y");
    expect(refused.headers.get("retry-after")).not.toBeNull(); // open: nothing sent
    expect(a.hits.length).toBe(2);
  });

  it("a degradation stage is joined as given and its levelHeader reaches the upstream", async () => {
    const stage = degradation({ levelHeader: "x-level" });
    let joinedWith: unknown;
    const spied = {
      ...stage,
      join(parts: Parameters<typeof stage.join>[0]) {
        joinedWith = this;
        return stage.join(parts);
      },
    };
    const call = proxyOn({ degradation: spied, retry: false });
    const res = await call("/x");
    expect(res.status).toBe(200);
    expect(joinedWith).toBe(spied);
    expect(res.headers.get("x-degradation-level")).toBe("full");
    expect(a.hits[0]?.headers["x-level"]).toBe("full");
  });

  it('browser build: redirects "library" is refused at once, resilience.redirects by ky and proxy', () => {
    vi.stubGlobal("__RESILIENT_FETCH_BROWSER__", true);
    const shapes = [
      () => ({ redirects: "library" }),
      () => Object.create({ redirects: "library" }) as object,
      () => Object.defineProperty({}, "redirects", { value: "library", enumerable: false }),
    ];
    for (const make of shapes) {
      expect(refusal(() => createResilience(make() as ResilienceOptions))?.path).toBe("redirects");
      expect(refusal(() => createClient({ resilience: make() as ResilienceOptions }))?.path).toBe(
        "resilience.redirects",
      );
      const proxied = refusal(() => proxyOn(make()));
      expect(proxied?.path).toBe("resilience.redirects");
      expect(proxied?.message).toContain('expected "platform"');
    }
    expect(a.hits.length).toBe(0);
  });
});

describe("a keyless POST down a hedged chain, under a layer in front", () => {
  const hedged = (spare = `${b.base}/v1`) =>
    [
      {
        name: "jobs",
        hedge: { delay: 20 },
        endpoints: [
          { name: "p", url: `${a.base}/v1` },
          { name: "q", url: spare },
        ],
      },
    ] as const;
  const innerLayer = () =>
    createResilience({
      retry: { ...fast, maxAttempts: 1, idempotencyKey: true },
      fallback: fallback(hedged().map((chain) => ({ ...chain, endpoints: [...chain.endpoints] }))),
    });
  const cases: [string, (h: Hit) => void, (h: Hit) => void, number][] = [
    ["p slow then 503, q 503 at once", later(60, answer(503)), answer(503), 503],
    ["p slow then reset, q 503 at once", later(60, reset), answer(503), 503],
    ["p slow then 500, q 503 at once", later(60, answer(500)), answer(503), 500],
    ["p slow then 503, q 500 at once", later(60, answer(503)), answer(500), 503],
    ["p slow then 429, q slower 429", later(40, answer(429)), later(60, answer(429)), 429],
  ];

  for (const [label, onP, onQ, status] of cases) {
    it(`${label}: both sent once under one key, the outer layer sends nothing again`, async () => {
      a.on(onP);
      b.on(onQ);
      const outer = createResilience({ retry: { ...fast, maxAttempts: 3 }, fetch: innerLayer().fetch });
      const res = await outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "job" });
      expect(res.status).toBe(status);
      expect(a.hits.length).toBe(1);
      expect(b.hits.length).toBe(1);
      expect(a.hits[0]?.headers["idempotency-key"]).toBeDefined();
      expect(b.hits[0]?.headers["idempotency-key"]).toBe(a.hits[0]?.headers["idempotency-key"]);
      expect(getResilienceInfo(res)?.attempts).toBe(1); // the outer call's: it sent once
    });

    it(`${label}: the proxy with that hedged route is conservative`, async () => {
      a.on(onP);
      b.on(onQ);
      const proxy = resilientProxy({
        routes: [{ path: "/v1", chain: { ...hedged()[0], endpoints: [...hedged()[0].endpoints] } }],
        resilience: { retry: { ...fast, maxAttempts: 1, idempotencyKey: true } },
      });
      const res = await proxy.fetch(
        new Request("https://worker.example/v1/jobs", { method: "POST", body: "job" }),
        {},
        ctx,
      );
      // A marked 429/503 of a keyless POST is the proxy's 502; a 500 goes through as it came.
      expect(res.status).toBe(status === 500 ? 500 : 502);
      expect(a.hits.length).toBe(1);
      expect(b.hits.length).toBe(1);
    });
  }

  it("an outer chain over the pair does not move on to its spare; ky sends once", async () => {
    a.on(later(60, answer(503)));
    b.on(answer(503));
    c.on(answer(200));
    const outer = createResilience({
      retry: { ...fast, maxAttempts: 2 },
      fetch: innerLayer().fetch,
      fallback: fallback([
        {
          name: "front",
          endpoints: [
            { name: "inner", url: `${a.base}/v1` },
            { name: "spare", url: `${c.base}/v1` },
          ],
        },
      ]),
    });
    const res = await outer.fetch(`${a.base}/v1/jobs`, { method: "POST", body: "job" });
    expect(res.status).toBe(503);
    expect(c.hits.length).toBe(0);
    expect(a.hits.length + b.hits.length).toBe(2);

    const api = createClient({
      resilience: createResilience({ retry: { ...fast, maxAttempts: 3 }, fetch: innerLayer().fetch }),
      throwHttpErrors: false,
    });
    expect((await api.post(`${a.base}/v1/jobs`, { body: "job" })).status).toBe(503);
    expect(a.hits.length + b.hits.length).toBe(4);
  });
});
