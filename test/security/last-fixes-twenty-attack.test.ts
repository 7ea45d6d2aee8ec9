/**
 * Outside-in attack on the fixes of the last commit (CHANGELOG.md "### Fixed", first entries): chains at one
 * URL told apart by their first endpoint's query (docs/fallback.md), a shared store's lapsed open taken as
 * half-open (docs/breakers.md "Shared breaker state", docs/cloudflare.md), options named by their own path
 * inside lists and records (docs/options.md), an empty `Idempotency-Key` is none (docs/retry.md "Idempotency",
 * SECURITY.md "A paid request is never processed twice"), falsy and listener-less signals refused (docs/retry.md).
 * How: public entries only (root, `./fallback`, `./degradation`, `./ky`, `./testing`, `./cloudflare`); `hostFetch`
 * stubs that record each request as the platform builds it; chains declared in every order (a chain on another
 * host between two at one URL, a third without a query), queries written with `%xx`, `+`/`%2B`, a trailing `&`,
 * a bare name, a fragment; `Request` inputs, hedged chains, the ky client, a `{ query }` degradation rule, the
 * Worker proxy run in Node with a `Request`; two layers sharing one `memoryStore()` under one `TestClock`, many
 * calls at once to a host that just lapsed, a store whose `peek` hands back a fresh copy of an old open on every
 * read; getters that throw in lists and records of every entry's options. Zero retry delays, no sleeps.
 * Not repeated: test/security/fixes-twenty-attack.test.ts, test/security/options-fallback-twenty-attack.test.ts.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. docs/fallback.md: "chains whose first endpoints differ only in their query, `…/v1?model=a` and
 *    `…/v1?model=b`, are told apart by it: a call goes down the one whose every parameter it carries". Declared
 *    as [A `https://a.test/v1?model=a`, X `https://x.test/v1`, B `https://a.test/v1?model=b`] (X any chain whose
 *    prefix has the same length), a call to `https://a.test/v1?model=b` goes down A: a1 is sent
 *    `?model=a&model=b` and A's spare, on another origin, gets `?model=b`; `getResilienceInfo(res).endpoint` is
 *    `a2`, the `fallback` event names chain A. The same with a hedged chain. Cause: src/fallback/chain-router.ts:89,
 *    `if (found && route.prefix !== found.route.prefix) break;` assumes the routes of one prefix are adjacent, but
 *    the sort (line 71) orders by prefix length only, stable, so X (same length, declared between) splits them.
 * 2. Same sentence ("told apart by it"): `?model=a+b` (a form reads "a b") and `?model=a%2Bb` ("a+b") are two
 *    queries any server tells apart, but a call to the exact URL of the second chain goes down the first
 *    (first declared), whose primary is sent `model=a+b`: the caller's "a+b" arrives as "a b"; and declared the
 *    other way, a call `?model=a+b` goes down the `%2B` chain, sent `model=a%2Bb`. Cause:
 *    src/fallback/chain-router.ts:134-139 (`carriedPairs`) counts a pair as carried when either of its two
 *    `readings` (form or URL decoding, line 143) matches, so both chains "carry" the call and the tie goes to
 *    the first declared; `restOf` (line 128) then swaps the caller's pair for the chain's own.
 * 3. Same sentence, "every parameter it carries": a first endpoint written with a trailing `&`
 *    (`…/v1?model=b&`) is never chosen for `…/v1?model=b`, which carries its one parameter: the call goes down the
 *    other chain and its `model=b` reaches that chain's spare. Cause: src/fallback/chain-router.ts:60,
 *    `query.split("&")` keeps the empty piece after the `&` as a pair of its own, which `carriedPairs` (line 138)
 *    then requires the call to carry.
 *
 * Held (plain `it`):
 * - chains at one URL: `%xx` in a name or value, a parameter's order, a fragment (and `#model=b`, no query), a
 *   third chain without a query (chosen for a call without the parameter, never for one with it), a `Request`
 *   input with a body, the ky client (GET, POST with a key): the right chain, own parameter once, to its primary
 *   only; the Worker proxy's two chain routes starting at one URL, and an upstream route at that URL;
 * - two layers sharing `memoryStore()`: a lapsed open elsewhere makes the other layer's closed breaker half-open
 *   (`health()` and one `breaker` event say so); of 5 calls at once only `halfOpenMaxCalls` (1) go; once its
 *   probes close it, a store handing back a fresh copy of the old open on every read never pushes it half-open
 *   again (nor does health());
 * - an empty or blank `Idempotency-Key` is none on a plain call, a `Request`, the ky client, a chain, a hedged
 *   chain (no hedge), a `transform` that blanks the key (dropped stays dropped) or makes a POST of a GET with a
 *   blank one (replaced with `idempotencyKey: true`);
 * - a getter that throws is named by its own path in `degradation.models.0.1`, `degradation.rules.1`,
 *   `….params.steps`, `fallback.1`, `retry.retryOn.methods.1`, `routes.0.chain.endpoints.1` and
 *   `crossOriginHeaders.1` of `resilientProxy`; a `__proto__` header of a proxy route's chain is checked;
 * - `signal: 0`, `false`, `""` and listener-less objects refused at once on a plain call and down a chain.
 *
 * Suspicious, not pinned:
 * - a `{ query }` degradation rule edits the query after the chain was chosen by the call's URL: at `medium`,
 *   `?model=premium` down chains `?model=premium` / `?model=standard` goes down the premium chain, whose primary
 *   is sent `?model=premium&model=standard` (its own parameter first, the level's value after) and whose spare
 *   gets `model=standard`; docs/degradation.md ("rewritten once, by the rule its own URL selects, before the
 *   chain") can be read either way;
 * - the ky client never hands a bad signal to the layer: ky itself drops `0`, `false`, `""` and wraps a
 *   listener-less object, so such a call runs (ky's own behaviour, as plain ky does);
 * - `resilientProxy({ routes })` with a getter that throws on `routes[1]` throws the getter's raw `Error`, not a
 *   `ConfigError` naming `routes.1` (its route checks are documented as `TypeError`s; docs/options.md's sentence
 *   names `createResilience`'s options);
 * - with `memoryStore()` each layer grants its own `halfOpenMaxCalls` for a host that lapsed elsewhere (two layers,
 *   two probes); only `durableObjectStore` is documented to coordinate them.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type FallbackChainOptions, fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  ConfigError,
  createResilience,
  getResilienceInfo,
  memoryStore,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Answer, header, hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";
import { turns } from "../helpers/unhandled.ts";

const ok: Answer = () => new Response("ok");

type Chain = FallbackChainOptions;
const A: Chain = {
  name: "A",
  endpoints: [
    { name: "a1", url: "https://a.test/v1?model=a" },
    { name: "a2", url: "https://b.test/a" },
  ],
};
const B: Chain = {
  name: "B",
  endpoints: [
    { name: "b1", url: "https://a.test/v1?model=b" },
    { name: "b2", url: "https://c.test/b" },
  ],
};
/** A chain on another host whose prefix has the length of A's and B's. */
const X: Chain = { name: "X", endpoints: [{ name: "x1", url: "https://x.test/v1" }] };
/** A third chain at the same URL, without a query. */
const N: Chain = {
  name: "N",
  endpoints: [
    { name: "n1", url: "https://a.test/v1" },
    { name: "n2", url: "https://d.test/n" },
  ],
};

/** A layer over `chains` whose a.test answers `primary`: one attempt per endpoint, every request recorded. */
function chainsLayer(chains: Chain[], primary = 503, extra: ResilienceOptions = {}) {
  const net = hostFetch({ "a.test": status(primary), "b.test": ok, "c.test": ok, "d.test": ok, "x.test": ok });
  const layer = createResilience({
    retry: { ...FAST, maxAttempts: 1 },
    fetch: net.fetch,
    fallback: fallback(chains),
    ...extra,
  });
  const chainsTaken: string[] = [];
  layer.on("fallback", (event) => chainsTaken.push(event.chain));
  return { net, layer, chainsTaken };
}

async function route(chains: Chain[], input: string | Request, primary = 503) {
  const { net, layer, chainsTaken } = chainsLayer(chains, primary);
  const res = await layer.fetch(input);
  await res.text();
  return { endpoint: getResilienceInfo(res)?.endpoint, urls: net.log.map((r) => r.url), chainsTaken };
}

// ---------------------------------------------------------------------------------------------
describe('fallback.md: "chains whose first endpoints differ only in their query … are told apart by it"', () => {
  it("held: %xx in a name or value, order, a fragment, a third chain without a query, a Request with a body", async () => {
    expect(await route([A, B], "https://a.test/v1?%6Dodel=%62")).toEqual({
      endpoint: "b2",
      urls: ["https://a.test/v1?model=b", "https://c.test/b"],
      chainsTaken: ["B"],
    });
    expect((await route([A, B], "https://a.test/v1/x?seed=1&model=b#f")).urls).toEqual([
      "https://a.test/v1/x?model=b&seed=1#f",
      "https://c.test/b/x?seed=1#f",
    ]);
    // `#model=b` is no query: the first declared.
    expect((await route([A, B], "https://a.test/v1#model=b")).endpoint).toBe("a2");
    // A third chain at that URL without a query: for a call without the parameter, never one with it.
    expect((await route([N, A, B], "https://a.test/v1?model=b")).endpoint).toBe("b2");
    expect(await route([A, B, N], "https://a.test/v1?seed=2")).toEqual({
      endpoint: "n2",
      urls: ["https://a.test/v1?seed=2", "https://d.test/n?seed=2"],
      chainsTaken: ["N"],
    });
    const { net, layer } = chainsLayer([A, B]);
    const res = await layer.fetch(new Request("https://a.test/v1/j?model=b", { method: "PUT", body: "{}" }));
    expect([getResilienceInfo(res)?.endpoint, net.log.map((r) => [r.method, r.url, r.text])]).toEqual([
      "b2",
      [
        ["PUT", "https://a.test/v1/j?model=b", "{}"],
        ["PUT", "https://c.test/b/j", "{}"],
      ],
    ]);
  });

  it("held: the ky client, a GET and a keyed POST, goes down the chain it names", async () => {
    const { net, layer } = chainsLayer([A, B]);
    const ky = createClient({ resilience: layer });
    const got = await ky.get("https://a.test/v1?model=b");
    const posted = await ky.post("https://a.test/v1?model=b", { json: { a: 1 }, headers: { "idempotency-key": "k" } });
    expect([getResilienceInfo(got)?.endpoint, getResilienceInfo(posted)?.endpoint]).toEqual(["b2", "b2"]);
    expect(net.log.map((r) => `${r.method} ${r.url}`)).toEqual([
      "GET https://a.test/v1?model=b",
      "GET https://c.test/b",
      "POST https://a.test/v1?model=b",
      "POST https://c.test/b",
    ]);
  });

  it("held: the Worker proxy's routes: two chains and an upstream starting at one URL, each by its route", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok, "c.test": ok });
    const proxy = resilientProxy({
      routes: [
        { path: "/a", chain: A },
        { path: "/b", chain: B },
        { path: "/raw", upstream: "https://a.test/v1" },
      ],
      resilience: { retry: { ...FAST, maxAttempts: 1 }, fetch: net.fetch },
    });
    const ctx = { waitUntil: () => {} };
    const viaB = await proxy.fetch(
      new Request("https://proxy.example/b/x?seed=1", { method: "PUT", body: "{}" }),
      {},
      ctx,
    );
    const viaA = await proxy.fetch(new Request("https://proxy.example/a/x?seed=2"), {}, ctx);
    const raw = await proxy.fetch(new Request("https://proxy.example/raw?model=b"), {}, ctx);
    expect([viaB, viaA, raw].map((r) => [r.status, r.headers.get("x-resilience-endpoint")])).toEqual([
      [200, "b2"],
      [200, "a2"],
      [503, "a.test"],
    ]);
    expect(net.log.map((r) => `${r.method} ${r.url} ${r.text}`)).toEqual([
      "PUT https://a.test/v1/x?model=b&seed=1 {}",
      "PUT https://c.test/b/x?seed=1 {}",
      "GET https://a.test/v1/x?model=a&seed=2 ",
      "GET https://b.test/a/x?seed=2 ",
      "GET https://a.test/v1?model=b ",
    ]);
  });

  // Defect 1. Observed: { endpoint: "a2", urls: ["https://a.test/v1?model=a&model=b", "https://b.test/a?model=b"],
  // chainsTaken: ["A"] }.
  it("1a. declared [A, X, B] (X a chain elsewhere, same prefix length): a call to B's URL goes down B", async () => {
    expect(await route([A, X, B], "https://a.test/v1?model=b")).toEqual({
      endpoint: "b2",
      urls: ["https://a.test/v1?model=b", "https://c.test/b"],
      chainsTaken: ["B"],
    });
  });

  // Observed: endpoint "a2": chain A's endpoints are sent model=b (a1 with model=a before it).
  it("1b. the same with hedged chains and a Request: model=b never reaches chain A's endpoints", async () => {
    const hedged = (c: Chain): Chain => ({ ...c, hedge: { delay: 0 } });
    const { net, layer } = chainsLayer([hedged(A), X, hedged(B)]);
    const res = await layer.fetch(new Request("https://a.test/v1/j?model=b"));
    await res.text();
    expect(getResilienceInfo(res)?.endpoint).toBe("b2");
    expect(net.log.map((r) => r.url).filter((u) => !u.startsWith("https://c.test/"))).toEqual([
      "https://a.test/v1/j?model=b",
    ]);
  });

  // Defect 2. Observed: p2, sent "https://a.test/v1?model=a+b" (the caller's "a+b" sent as "a b").
  it("2. `?model=a+b` and `?model=a%2Bb` are told apart: a call to the second's URL goes down the second", async () => {
    const plus: Chain = {
      name: "plus",
      endpoints: [
        { name: "p1", url: "https://a.test/v1?model=a+b" },
        { name: "p2", url: "https://b.test/p" },
      ],
    };
    const encoded: Chain = {
      name: "encoded",
      endpoints: [
        { name: "q1", url: "https://a.test/v1?model=a%2Bb" },
        { name: "q2", url: "https://c.test/q" },
      ],
    };
    const toEncoded = await route([plus, encoded], "https://a.test/v1?model=a%2Bb");
    const toPlus = await route([encoded, plus], "https://a.test/v1?model=a+b");
    expect([toEncoded.endpoint, toEncoded.urls[0], toPlus.endpoint, toPlus.urls[0]]).toEqual([
      "q2",
      "https://a.test/v1?model=a%2Bb",
      "p2",
      "https://a.test/v1?model=a+b",
    ]);
  });

  // Defect 3. Observed: { endpoint: "a2", urls: ["https://a.test/v1?model=a&model=b", "https://b.test/a?model=b"] }.
  it("3. a first endpoint written `…/v1?model=b&` is chosen for a call carrying model=b", async () => {
    const trailing: Chain = {
      name: "T",
      endpoints: [
        { name: "t1", url: "https://a.test/v1?model=b&" },
        { name: "t2", url: "https://c.test/t" },
      ],
    };
    const got = await route([A, trailing], "https://a.test/v1?model=b");
    expect([got.endpoint, got.urls.at(-1)]).toEqual(["t2", "https://c.test/t"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('breakers.md "Shared breaker state": a closed breaker takes a lapsed open elsewhere as half-open', () => {
  const policy = { failureThreshold: 2, successThreshold: 2, halfOpenMaxCalls: 1, timeout: 30_000 };

  /** A host that answers 503 until `state.mode` says otherwise; "hang" holds its answers in `held`. */
  function host() {
    const state = { mode: "fail" as "fail" | "ok" | "hang", sent: 0 };
    const held: Array<(r: Response) => void> = [];
    const fetch = async (): Promise<Response> => {
      state.sent++;
      if (state.mode === "fail") return new Response("busy", { status: 503 });
      if (state.mode === "ok") return new Response("ok");
      return new Promise<Response>((resolve) => held.push(resolve));
    };
    return { state, held, fetch };
  }

  it("held: of 5 calls at once from the other layer, halfOpenMaxCalls go; health() and one breaker event say half-open", async () => {
    const clock = new TestClock(1_000_000);
    const store = memoryStore();
    const h = host();
    const opts = { retry: { ...FAST, maxAttempts: 1 }, breaker: policy, fetch: h.fetch, store, clock };
    const one = createResilience(opts);
    const two = createResilience(opts);
    const changes: string[] = [];
    two.on("breaker", (e) => changes.push(`${e.from}->${e.to}`));
    h.state.mode = "ok";
    await (await two.fetch("https://h.test/")).text(); // two's breaker exists, closed
    h.state.mode = "fail";
    for (let i = 0; i < 2; i++) await (await one.fetch("https://h.test/")).text();
    await clock.advance(31_000);
    expect(two.health().breakers["h.test"]?.state).toBe("half_open");
    h.state.mode = "hang";
    h.state.sent = 0;
    const calls = Array.from({ length: 5 }, () =>
      two.fetch("https://h.test/").then(
        (r) => r.status,
        (e: Error) => e.name,
      ),
    );
    await turns(3);
    expect(h.state.sent).toBe(1);
    for (const resolve of h.held.splice(0)) resolve(new Response("ok"));
    expect(await Promise.all(calls)).toEqual([
      200,
      "CircuitOpenError",
      "CircuitOpenError",
      "CircuitOpenError",
      "CircuitOpenError",
    ]);
    expect(changes).toEqual(["closed->half_open"]);
  });

  it("held: after its probes close it, a store handing back a fresh copy of the old open never makes it half-open again", async () => {
    const clock = new TestClock(1_000_000);
    const inner = memoryStore();
    // A store that deserialises what it holds: a new object on every read, as one read back from elsewhere is.
    const store: BreakerStore = {
      name: "copying",
      publish: (key, snapshot) => inner.publish(key, snapshot),
      peek: (key, now) => {
        const s = inner.peek(key, now);
        return s === undefined ? undefined : structuredClone(s);
      },
    };
    const h = host();
    const opts = { retry: { ...FAST, maxAttempts: 1 }, breaker: policy, fetch: h.fetch, clock };
    // An open, kept as the stale snapshot the copying store hands back for ever.
    const stale = memoryStore();
    const opener = createResilience({ ...opts, store: stale });
    for (let i = 0; i < 2; i++) await (await opener.fetch("https://h.test/")).text();
    const old = stale.peek("h.test", clock.now());
    expect(old?.state).toBe("open");
    const two = createResilience({ ...opts, store });
    const changes: string[] = [];
    two.on("breaker", (e) => changes.push(`${e.from}->${e.to}`));
    inner.publish("h.test", old as NonNullable<typeof old>);
    await clock.advance(31_000);
    h.state.mode = "ok";
    for (let i = 0; i < 2; i++) await (await two.fetch("https://h.test/")).text();
    expect(two.health().breakers["h.test"]?.state).toBe("closed");
    // Two's close went to the store; the old open comes back, again and again.
    for (let i = 0; i < 3; i++) {
      inner.publish("h.test", old as NonNullable<typeof old>);
      await clock.advance(1_000);
      two.health();
      await (await two.fetch("https://h.test/")).text();
    }
    expect(changes).toEqual(["closed->half_open", "half_open->closed"]);
    expect(two.health().breakers["h.test"]?.state).toBe("closed");
  });
});

// ---------------------------------------------------------------------------------------------
describe('retry.md "Idempotency": an empty Idempotency-Key (or one of spaces) is none', () => {
  it("held: plain, Request, ky, a chain and a hedged chain: a POST answered 500 is sent once", async () => {
    const net = hostFetch({ "a.test": status(500), "b.test": ok });
    const chain = (hedge: boolean): Chain => ({
      name: "c",
      ...(hedge ? { hedge: { delay: 0 } } : {}),
      endpoints: [
        { name: "a", url: "https://a.test/v" },
        { name: "b", url: "https://b.test/v" },
      ],
    });
    const plain = createResilience({ retry: FAST, fetch: net.fetch });
    const chained = createResilience({ retry: FAST, fetch: net.fetch, fallback: fallback([chain(false)]) });
    const hedged = createResilience({ retry: FAST, fetch: net.fetch, fallback: fallback([chain(true)]) });
    const post = (key: string) => ({ method: "POST", body: "{}", headers: { "idempotency-key": key } });
    const statuses = [
      await plain.fetch("https://a.test/x", post("")),
      await plain.fetch(new Request("https://a.test/x", post(" \t "))),
      await chained.fetch("https://a.test/v", post("")),
      await hedged.fetch(new Request("https://a.test/v", post("  "))),
    ].map((r) => r.status);
    const ky = await createClient({ resilience: hedged })
      .post("https://a.test/v", { json: {}, headers: { "idempotency-key": "" } })
      .then(
        (r) => r.status,
        (e: Error) => e.name,
      );
    expect([...statuses, ky]).toEqual([500, 500, 500, 500, "HTTPError"]);
    expect(net.log.map((r) => `${r.method} ${r.url}`)).toEqual(
      Array(5).fill("POST https://a.test/x").fill("POST https://a.test/v", 2),
    );
  });

  it("held: a transform that blanks the key drops it (sent once); one that makes a POST of a GET with a blank key gets a generated one", async () => {
    const blank =
      (method?: string) =>
      (req: { method: string; headers: Headers }): typeof req => {
        const headers = new Headers(req.headers);
        headers.set("idempotency-key", " ");
        return { ...req, method: method ?? req.method, headers };
      };
    const layerWith = (transform: ReturnType<typeof blank>) => {
      const net = hostFetch({ "a.test": status(500), "b.test": ok });
      const layer = createResilience({
        retry: { ...FAST, maxAttempts: 2, idempotencyKey: true },
        fetch: net.fetch,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "a", url: "https://a.test/v", transform: transform as never },
              { name: "b", url: "https://b.test/v" },
            ],
          },
        ]),
      });
      return { net, layer };
    };
    const dropped = layerWith(blank());
    expect((await dropped.layer.fetch("https://a.test/v", { method: "POST", body: "{}" })).status).toBe(500);
    expect(dropped.net.log.map((r) => [r.url, header(r, "idempotency-key")])).toEqual([["https://a.test/v", ""]]);
    const made = layerWith(blank("POST"));
    const res = await made.layer.fetch("https://a.test/v");
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    const keys = made.net.log.slice(0, 2).map((r) => header(r, "idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('options.md: "A value that cannot be read … is a ConfigError naming its path too"', () => {
  function throwingAt<T>(items: T[], at: number): T[] {
    const out = [...items];
    Object.defineProperty(out, at, {
      get() {
        throw new Error("not loaded");
      },
      enumerable: true,
      configurable: true,
    });
    return out;
  }
  const pathOf = (make: () => unknown): [boolean, string | undefined] => {
    try {
      make();
    } catch (error) {
      return [error instanceof ConfigError, (error as ConfigError).path];
    }
    return [false, undefined];
  };

  it("held: lists and records of every entry, and a proxy route chain's __proto__ header", () => {
    const unreadable = Object.defineProperty({}, "steps", {
      get() {
        throw new Error("not loaded");
      },
      enumerable: true,
    });
    const ep = (url: string) => ({ name: url, url });
    expect(
      [
        () => degradation({ models: [throwingAt(["a", "b"], 1)] }),
        () => degradation({ rules: [{ match: "https://a.test/", params: unreadable as never }] }),
        () =>
          fallback(
            throwingAt(
              [
                { name: "c", endpoints: [ep("https://a.test/v")] },
                { name: "d", endpoints: [ep("https://b.test/v")] },
              ],
              1,
            ),
          ),
        () => createResilience({ retry: { retryOn: { methods: throwingAt(["GET", "PUT"], 1) } } }),
        () =>
          resilientProxy({
            routes: [
              {
                path: "/a",
                chain: { name: "c", endpoints: throwingAt([ep("https://a.test/v"), ep("https://b.test/v")], 1) },
              },
            ],
          }),
        () =>
          resilientProxy({
            routes: [{ path: "/a", upstream: "https://a.test" }],
            resilience: { crossOriginHeaders: throwingAt(["x-a", "x-b"], 1) },
          }),
        () =>
          resilientProxy({
            routes: [
              {
                path: "/a",
                chain: JSON.parse(
                  '{"name":"c","endpoints":[{"name":"a","url":"https://a.test/v","headers":{"__proto__":"a\\nb"}}]}',
                ),
              },
            ],
          }),
      ].map(pathOf),
    ).toEqual([
      [true, "degradation.models.0.1"],
      [true, "degradation.rules.0.params.steps"],
      [true, "fallback.1"],
      [true, "retry.retryOn.methods.1"],
      [true, "routes.0.chain.endpoints.1"],
      [true, "resilience.crossOriginHeaders.1"],
      [true, "routes.0.chain.endpoints.0.headers.__proto__"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('retry.md: "an init.signal that is no AbortSignal" is refused at once with a TypeError', () => {
  it("held: 0, false, '' and listener-less objects, on a plain call and down a chain: nothing sent", async () => {
    const { net, layer } = chainsLayer([A], 200);
    const bad: unknown[] = [
      0,
      false,
      "",
      { aborted: false, addEventListener() {} },
      { aborted: false, addEventListener() {}, removeEventListener: 1 },
    ];
    const results: string[] = [];
    for (const signal of bad) {
      for (const url of ["https://a.test/v1?model=a", "https://h.test/"]) {
        results.push(
          await layer.fetch(url, { signal: signal as AbortSignal }).then(
            () => "sent",
            (e: Error) => e.name,
          ),
        );
      }
    }
    expect(results).toEqual(Array(10).fill("TypeError"));
    expect(net.log).toEqual([]);
  });
});
