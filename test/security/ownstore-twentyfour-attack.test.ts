/**
 * Outside-in attack on a breaker store written by the user from the exported
 * `BreakerStore` type, and on the Proxy the layer now wraps every store in
 * (a promise `publish`, `record` or `releaseProbe` returns that rejects
 * becomes a `store` event). Docs: src/stores/breaker-store.ts JSDoc (the
 * contract); docs/breakers.md "Shared breaker state" and its paragraph "A
 * store of your own implements `BreakerStore` …"; SECURITY.md rows "The
 * library's stores cannot break or stall a request" and "No secret in
 * events, errors, `health()` or `debugInfo()`"; CHANGELOG.md's newest
 * "Fixed" entry on async store methods.
 * How: `createResilience` and `memoryStore` (root), `fallback` (…/fallback),
 * `createClient` (…/ky), `resilientProxy` (…/cloudflare), `TestClock`
 * (…/testing); class stores with private fields, a `name` getter and
 * arrow-function methods; object-literal stores, frozen or not; async and
 * thenable-returning methods; `process.on("unhandledRejection")` via
 * test/helpers/unhandled.ts.
 * Paths: plain call, fallback chain, hedge (a half-open probe's lease given
 * back when the hedge wins), a redirect the library follows, the ky client,
 * `resilientProxy` with `store`, two layers sharing one store.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the layer's view of a store is a plain object of bound methods (no Proxy), calls
 * a thenable's `then` through `Promise.resolve`, reads an async `peek` as no snapshot with a `store` event (SECURITY.md
 * now says `peek` must answer at once; 3 asserts that sentence), and a store event's `detail` is the error's text
 * with URLs cut, or a plain sentence for an error that has no text):
 * 1. SECURITY.md "The library's stores cannot break or stall a request";
 *    docs/breakers.md "`store: memoryStore()` shares transitions between
 *    `Resilience` instances of one process, tab or isolate (pass the same
 *    store to each)". Observed: a frozen store (`Object.freeze(memoryStore())`,
 *    or any frozen object-literal store) makes every call reject at once with
 *    `TypeError: 'get' on proxy: property 'peek' is a read-only and
 *    non-configurable data property on the proxy target but the proxy did not
 *    return its actual value`: the new Proxy returns `value.bind(target)`,
 *    which breaks the Proxy invariant. The upstream is never called. A
 *    regression of commit 324342a: the same test passes on its parent.
 * 2. docs/breakers.md "what it rejects with becomes a `store` event (`write`,
 *    `report` or `probe`, outcome `failed`), never an unhandled rejection,
 *    which would end a Node process." Observed: an async `publish` rejecting
 *    with a value `String()` cannot convert (`Object.create(null)`) leaves an
 *    unhandled rejection `TypeError: Cannot convert object to primitive
 *    value` (thrown by `String(error)` inside the wrapper's handler), and no
 *    `store` event.
 * 3. SECURITY.md "its `publish`, `peek` and `record` run on the request's
 *    path, and what they throw fails the call; a promise one of them (or
 *    `releaseProbe`) returns is not awaited, and what it rejects with becomes
 *    a `store` event, never an unhandled rejection". Observed: an async `peek`
 *    that rejects ("peek down") is an unhandled rejection and no `store`
 *    event (only publish/record/releaseProbe are wrapped).
 * 4. breaker-store.ts "A promise that `publish`, `record` or `releaseProbe`
 *    returns (a method written `async`) is not awaited". Observed: a `publish`
 *    returning a thenable that is not a Promise (`{ then(resolve) { resolve() } }`,
 *    which `await` and `Promise.resolve` accept) fails the call with
 *    `RetryExhaustedError: gave up after 1 attempt to api.example: resolve is
 *    not a function`: the wrapper calls `then(undefined, onRejected)`.
 *    The store threw nothing; the same test passes on 324342a's parent.
 * 5. SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`":
 *    "URLs lose their userinfo …, query string and fragment (where keys such
 *    as `?api_key=` live) before they reach any of them". Observed: a user
 *    store's rejection quoting its REST URL (Deno's "error sending request for
 *    url (https://kv.example/set/api.example?token=SECRET123)") reaches the
 *    `store` event's `detail` whole, `?token=SECRET123` included.
 *
 * Held (plain `it`):
 * - A class store (private fields, `name` getter, arrow `publish`, async
 *   methods rejecting): each rejection is one `store` event with `store`,
 *   `key`, `operation`, `outcome` "failed" and `detail`, none unhandled, no
 *   timer left, on the plain call, a fallback chain, a hedge that gives a
 *   probe's lease back (`releaseProbe` → "probe"), a redirect the library
 *   follows, the ky client and `resilientProxy` (whose `bindContext` gets the
 *   request's ctx and its release runs); `connect`, `configure`,
 *   `acquireProbe` run on the store itself with their arguments;
 *   `debugInfo().store` names it; a synchronous throw still fails the call.
 * - A store shared by two layers (`memoryStore()`, and a user's async store
 *   whose writes land late): a host one layer opened is open for the other.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerSnapshot,
  type BreakerStore,
  CircuitOpenError,
  createResilience,
  memoryStore,
  type ResolvedBreakerPolicy,
  type StoreEvent,
  type StoreEventListener,
  type WaitUntilLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { flush } from "../helpers/flush.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const status = (code: number) => async () => new Response("x", { status: code });
const urlOf = (input: RequestInfo | URL) => (input instanceof Request ? input.url : String(input));

/** A Redis-like store: private state, a `name` getter, an arrow `publish`, async methods that may reject. */
class RedisLikeStore implements BreakerStore {
  readonly #label: string;
  readonly #snapshots = new Map<string, BreakerSnapshot>();
  fail = true;
  readonly calls: string[] = [];
  constructor(label: string) {
    this.#label = label;
  }
  get name(): string {
    return this.#label;
  }
  publish = async (key: string, snapshot: BreakerSnapshot): Promise<void> => {
    this.calls.push(`publish ${key} ${snapshot.state}`);
    this.#snapshots.set(key, snapshot);
    if (this.fail) throw new Error(`publish ${key}: connection lost`);
  };
  peek(key: string): BreakerSnapshot | undefined {
    return this.#snapshots.get(key);
  }
  async record(key: string, failed: boolean, now: number, probe?: string): Promise<void> {
    this.calls.push(`record ${key} ${failed} ${typeof now} ${probe}`);
    if (this.fail) throw new Error(`record ${key}: connection lost`);
  }
  async acquireProbe(key: string, now: number): Promise<string> {
    this.calls.push(`acquire ${key} ${typeof now}`);
    return `lease-${this.#label}`;
  }
  async releaseProbe(key: string, probe: string): Promise<void> {
    this.calls.push(`release ${key} ${probe}`);
    if (this.fail) throw new Error(`release ${key}: connection lost`);
  }
  connect(listener: StoreEventListener): () => void {
    this.calls.push(`connect ${this.#label} ${typeof listener}`);
    return () => {};
  }
  configure(policy: ResolvedBreakerPolicy): void {
    this.calls.push(`configure ${this.#label} ${policy.failureThreshold}`);
  }
  bindContext(ctx: WaitUntilLike): () => void {
    this.calls.push(`bind ${this.#label} ${typeof ctx.waitUntil}`);
    return () => this.calls.push(`unbind ${this.#label}`);
  }
}

const brief = (events: StoreEvent[]) =>
  events.map((e) => `${e.store} ${e.key} ${e.operation} ${e.outcome} ${e.detail}`);

describe("a user's store: what held", () => {
  it("class store: rejections are store events on the plain call, chain, hedge, redirect, ky and proxy; none unhandled, no timer", async () => {
    const { value, unhandled } = await watchUnhandled(async () => {
      const seen: Record<string, string[]> = {};
      // Plain call.
      const plainStore = new RedisLikeStore("redis");
      const clock = new TestClock();
      const plain = createResilience({
        fetch: status(503),
        clock,
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 1 },
        store: plainStore,
      });
      const plainEvents: StoreEvent[] = [];
      plain.on("store", (e) => plainEvents.push(e));
      expect((await plain.fetch("https://api.example/x")).status).toBe(503);
      await flush();
      seen.plain = brief(plainEvents);
      // Changed in the thirtieth session: a layer connects to its store when
      // it gets its first `store` listener (it connected when it was made, and
      // the store kept every layer for its life), so after `configure`.
      expect(plainStore.calls).toEqual([
        "configure redis 1",
        "connect redis function",
        "record api.example true number undefined",
        "publish api.example open",
      ]);
      expect(plain.debugInfo().store).toBe("redis");
      expect(clock.pending()).toBe(0);

      // Fallback chain with a hedge: a fails and opens; later its half-open probe
      // hangs with a lease, b (hedged after 100 ms) wins, a's lease goes back.
      const chainStore = new RedisLikeStore("chain");
      const chainClock = new TestClock();
      let aHangs = false;
      const chained = createResilience({
        clock: chainClock,
        store: chainStore,
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 1, timeout: 1_000 },
        fetch: (input, init) => {
          if (urlOf(input).startsWith("https://b.example")) return Promise.resolve(new Response("ok-b"));
          if (!aHangs) return Promise.resolve(new Response("x", { status: 503 }));
          return new Promise<Response>((_resolve, reject) =>
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
          );
        },
        fallback: fallback([
          {
            name: "gen",
            hedge: { delay: 100 },
            endpoints: [
              { name: "a", url: "https://a.example/v1" },
              { name: "b", url: "https://b.example/v1" },
            ],
          },
        ]),
      });
      const chainEvents: StoreEvent[] = [];
      chained.on("store", (e) => chainEvents.push(e));
      expect((await chained.fetch("https://a.example/v1/x")).status).toBe(200);
      await chainClock.advance(1_000);
      aHangs = true;
      const hedged = chained.fetch("https://a.example/v1/y");
      await flush();
      await chainClock.advance(100);
      expect(await (await hedged).text()).toBe("ok-b");
      await flush();
      seen.chain = brief(chainEvents);
      expect(chainStore.calls).toContain("acquire a.example number");
      expect(chainStore.calls).toContain("release a.example lease-chain");
      expect(chainClock.pending()).toBe(0);

      // A redirect the library follows.
      const redirectStore = new RedisLikeStore("redir");
      const redirected = createResilience({
        clock: new TestClock(),
        store: redirectStore,
        redirects: "library",
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 1 },
        fetch: async (input) =>
          urlOf(input).startsWith("https://a.example")
            ? new Response(null, { status: 302, headers: { location: "https://b.example/y" } })
            : new Response("x", { status: 503 }),
      });
      const redirectEvents: StoreEvent[] = [];
      redirected.on("store", (e) => redirectEvents.push(e));
      expect((await redirected.fetch("https://a.example/x")).status).toBe(503);
      await flush();
      seen.redirect = brief(redirectEvents).map((line) => line.split(" ").slice(2, 4).join(" "));

      // The ky client on a layer with the store.
      const kyStore = new RedisLikeStore("ky");
      const kyLayer = createResilience({
        store: kyStore,
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 1 },
        fetch: status(503),
      });
      const kyEvents: StoreEvent[] = [];
      kyLayer.on("store", (e) => kyEvents.push(e));
      const api = createClient({ resilience: kyLayer });
      await expect(api.get("https://api.example/x")).rejects.toThrow(/503/);
      await flush();
      seen.ky = brief(kyEvents).map((line) => line.split(" ").slice(2, 4).join(" "));

      // resilientProxy with `store`.
      const proxyStore = new RedisLikeStore("proxy");
      const proxy = resilientProxy({
        routes: [{ path: "/v1", upstream: "https://up.example/v1" }],
        store: () => proxyStore,
        resilience: { retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 }, fetch: status(503) },
      });
      const answer = await proxy.fetch(new Request("https://proxy.example/v1/x"), {}, { waitUntil: () => {} });
      await flush();
      expect(answer.status).toBe(503);
      // Changed in the thirtieth session: the proxy's layer has no `store`
      // listener, so it no longer connects to the store (see above).
      expect(proxyStore.calls).toEqual([
        "configure proxy 1",
        "bind proxy function",
        "record up.example true number undefined",
        "publish up.example open",
        "unbind proxy",
      ]);
      return seen;
    });
    expect(unhandled).toEqual([]);
    expect(value.plain).toEqual([
      "redis api.example report failed Error: record api.example: connection lost",
      "redis api.example write failed Error: publish api.example: connection lost",
    ]);
    expect(value.chain).toContain("chain a.example probe failed Error: release a.example: connection lost");
    expect(value.chain).toContain("chain b.example report failed Error: record b.example: connection lost");
    expect(value.redirect).toEqual(["report failed", "write failed"]);
    expect(value.ky).toEqual(["report failed", "write failed"]);
  });

  it("a synchronous throw still fails the call, as the contract says", async () => {
    const store: BreakerStore = {
      name: "sync",
      publish: () => {},
      peek() {
        throw new Error("peek boom");
      },
    };
    const layer = createResilience({ fetch: status(200), retry: { maxAttempts: 1 }, store });
    await expect(layer.fetch("https://api.example/x")).rejects.toThrow(/peek boom/);
  });

  it("a store shared by two layers (memoryStore, and a user's async store writing late) spreads an open host", async () => {
    for (const make of [
      () => memoryStore(),
      () => {
        const snapshots = new Map<string, BreakerSnapshot>();
        return {
          name: "late",
          // Resolves a turn later, as a network write would.
          publish: async (key: string, snapshot: BreakerSnapshot) => {
            await Promise.resolve();
            snapshots.set(key, snapshot);
          },
          peek: (key: string) => snapshots.get(key),
        } satisfies BreakerStore;
      },
    ]) {
      const store = make();
      const clock = new TestClock();
      let calls = 0;
      const fetch = async () => {
        calls++;
        return new Response("x", { status: 503 });
      };
      const options = { fetch, clock, store, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 } };
      const first = createResilience(options);
      const second = createResilience(options);
      const { unhandled } = await watchUnhandled(async () => {
        await first.fetch("https://api.example/x");
        await flush();
        await expect(second.fetch("https://api.example/y")).rejects.toBeInstanceOf(CircuitOpenError);
      });
      expect(unhandled).toEqual([]);
      expect(calls).toBe(1);
      expect(second.debugInfo().store).toBe(store.name);
    }
  });
});

describe("a user's store: defects", () => {
  it('SECURITY.md "The library\'s stores cannot break or stall a request": a frozen memoryStore() fails every call', async () => {
    const store = Object.freeze(memoryStore());
    let calls = 0;
    const layer = createResilience({
      fetch: async () => {
        calls++;
        return new Response("ok");
      },
      retry: { maxAttempts: 1 },
      store,
    });
    const outcome = await layer.fetch("https://api.example/x").then(
      (response) => response.status,
      (error: unknown) => String(error),
    );
    // Observed: "TypeError: 'get' on proxy: property 'peek' is a read-only and non-configurable data property …", 0 calls.
    expect(outcome).toBe(200);
    expect(calls).toBe(1);
  });

  it('docs/breakers.md "what it rejects with becomes a `store` event …, never an unhandled rejection": a rejection String() cannot convert', async () => {
    const store: BreakerStore = {
      name: "odd",
      publish: async () => {
        throw Object.create(null);
      },
      peek: () => undefined,
    };
    const layer = createResilience({
      fetch: status(503),
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      store,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (e) => events.push(e));
    const { value, unhandled } = await watchUnhandled(async () => {
      const response = await layer.fetch("https://api.example/x");
      await flush();
      return response.status;
    });
    expect(value).toBe(503);
    // Observed: [TypeError: Cannot convert object to primitive value] and no event.
    expect(unhandled).toEqual([]);
    expect(events.map((e) => `${e.store} ${e.key} ${e.operation} ${e.outcome}`)).toEqual([
      "odd api.example write failed",
    ]);
  });

  it('SECURITY.md "`peek` must answer at once (a promise from it is no snapshot, and a `store` event says so)": an async peek that rejects', async () => {
    const store = {
      name: "async-peek",
      publish: () => {},
      peek: async (): Promise<BreakerSnapshot | undefined> => {
        throw new Error("peek down");
      },
    } as unknown as BreakerStore;
    const layer = createResilience({ fetch: status(200), retry: { maxAttempts: 1 }, store });
    const events: StoreEvent[] = [];
    layer.on("store", (e) => events.push(e));
    const { unhandled } = await watchUnhandled(async () => {
      await layer.fetch("https://api.example/x").catch(() => undefined);
      await flush();
    });
    // Observed first: [Error: peek down] unhandled, no store event.
    expect(unhandled).toEqual([]);
    const seen = events.map((e) => `${e.store} ${e.key} ${e.operation} ${e.outcome} ${e.detail}`);
    expect(seen).toContain("async-peek api.example read skipped peek returned a promise: it must answer at once");
    expect(seen).toContain("async-peek api.example read failed Error: peek down");
  });

  it('breaker-store.ts "A promise that `publish`, `record` or `releaseProbe` returns … is not awaited": a thenable that resolves fails the call', async () => {
    // A thenable `await` and `Promise.resolve` accept: it calls back its first argument.
    // biome-ignore lint/suspicious/noThenProperty: the thenable under test
    const thenable = { then: (resolve: () => void) => resolve() };
    const store = {
      name: "thenable",
      publish: () => thenable,
      peek: () => undefined,
    } as unknown as BreakerStore;
    const layer = createResilience({
      fetch: status(503),
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      store,
    });
    const outcome = await layer.fetch("https://api.example/x").then(
      (response) => response.status,
      (error: unknown) => String(error),
    );
    // Observed: "RetryExhaustedError: gave up after 1 attempt to api.example: resolve is not a function".
    expect(outcome).toBe(503);
  });

  it('SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`": a store rejection quoting its URL keeps ?token= in the event', async () => {
    const store: BreakerStore = {
      name: "rest-kv",
      publish: async (key) => {
        // What Deno's fetch rejects with when a REST KV with a key in its query is down.
        throw new TypeError(
          `error sending request for url (https://kv.example/set/${key}?token=SECRET123): connection refused`,
        );
      },
      peek: () => undefined,
    };
    const layer = createResilience({
      fetch: status(503),
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      store,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (e) => events.push(e));
    await layer.fetch("https://api.example/x");
    await flush();
    expect(events).toHaveLength(1);
    expect(events[0]?.detail).toContain("https://kv.example/set/api.example");
    // Observed: detail "TypeError: error sending request for url (https://kv.example/set/api.example?token=SECRET123): connection refused".
    expect(events[0]?.detail).not.toContain("SECRET123");
  });
});
