/**
 * Outside-in attack on the sixty-second session's two fixes: a `clock` of yours whose `now()` answers no finite
 * number is refused, and the Cloudflare stores take the clock of the first layer they are given to
 * (`configure(policy, clock)`) and read only their own.
 *
 * Docs:
 * - docs/options.md `clock`: "`now()` must answer a finite number of milliseconds: a reading that is not one (NaN,
 *   text, a `Date`) is refused as a `TypeError` naming it (`clock.now() must answer a finite number, got NaN`), at
 *   once by `createResilience` and `resilientProxy`, which read the clock when they are made, and later as a throw of
 *   the clock is"; "ends the call with its error even with an answer in hand ...: the call rejects (never throws)".
 * - docs/cloudflare.md: "answers `503` ..., `504` on a timeout, ... and `502` when no endpoint answered otherwise";
 *   "A store made without a `clock` runs on the clock of the first layer it is given to (a layer on a `TestClock`
 *   drives its store's pacing too), and the real clock until then"; "so a trip reaches KV at most
 *   `minPublishInterval` + `publishJitter` after it, even if the isolate never calls that host again".
 * - docs/breakers.md: "When the layer is made it calls your store's `configure(policy, clock)`, if it has one, with
 *   its breaker thresholds and its clock".
 * - SECURITY.md: "a body the layer drops (a response retried past, a redirect followed, a losing hedge) is drained in
 *   the background for at most 1 s"; "KV and Durable Object work runs in the background through `ctx.waitUntil`; ...
 *   errors become `store` events".
 *
 * How: root `createResilience`, ./fallback, ./degradation, ./ky `createClient`, ./cloudflare (`resilientProxy`,
 * `kvStore`), ./policies `FallbackChain`, ./testing `TestClock`; clocks over a `TestClock`'s
 * timers whose readings go wrong on demand (NaN, a BigInt, an object with `valueOf`, alternating, -0, negative, 1e17,
 * a getter `now`); an in-memory fake of a KV namespace; two real servers on 127.0.0.1.
 *
 * Paths: plain call, `Request` input, chain (adaptive order, hedge), degradation rewrite, a redirect the layer
 * follows, `execute` with named breakers (made and not yet made), ky, `health()`, `resilientProxy` (route, health
 * path, store factory), `FallbackChain` (adaptive), a `kvStore` shared, behind `breaker: false`,
 * a store of one's own with `configure`, one whose `configure` throws.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-second session 2 was fixed, an
 * answer in hand let go after any throw, and 1 and 3 in part: once its layer is made the proxy answers a clock's
 * failure 502, and a store's background work that fails is a `store` event; the rest of 1, 3 and 4 is answered by
 * the docs, which now say that a first request rejects, that the work is lost, and that only a layer with breakers
 * hands a store its clock; all plain `it`):
 * 1. cloudflare.md "`502` when no endpoint answered otherwise". Observed: a proxy whose clock turns NaN after it was
 *    made: a route's request makes `proxy.fetch` reject with the TypeError (its catch reads the broken clock again
 *    for `failureResponse(error, clock.now())`), so the Worker answers its own exception, not the proxy's 502.
 *    Test "defect 1: ...".
 * 2. SECURITY.md "a body the layer drops ... is drained in the background for at most 1 s". Observed: a clock that
 *    turns NaN once the answer is in hand ends the call with the TypeError (as documented), but the answer's body is
 *    never drained nor cancelled: a streaming upstream's connection is still open 1.3 s later (plain call).
 *    Test "defect 2: ...".
 * 3. SECURITY.md "errors become `store` events"; cloudflare.md "a trip reaches KV at most `minPublishInterval` +
 *    `publishJitter` after it, even if the isolate never calls that host again". Observed: a `kvStore` on its
 *    layer's clock (adopted), the clock NaN while the trip's jittered write wakes: the write is lost without a word
 *    (Background.run swallows the rejection: no `store` event, no unhandled rejection) and the trip never reaches KV
 *    once the clock mends. Test "defect 3: ...".
 * 4. cloudflare.md "runs on the clock of the first layer it is given to"; breakers.md "When the layer is made it calls
 *    your store's `configure(policy, clock)`". Observed: a layer made with `breaker: false` never calls `configure`:
 *    a `kvStore` given to it first runs on the next layer's clock (its jitter armed there), and a store of one's own
 *    hears nothing from it. Test "defect 4: ..." (the docs could answer it: "the first layer with breakers").
 *
 * Held (plain `it`):
 * - NaN, a BigInt, an object with `valueOf`, an alternating reading, behind a getter `now`, turning bad after
 *   construction: plain, `Request`, chain (adaptive, hedged), degradation rewrite, library redirect, `execute` with a
 *   named breaker made or not, ky: each rejects with the documented TypeError, no unhandled rejection, no timer left
 *   (the call's first reading already fails, so the hedge and the redirect's hop are never reached).
 * - -0, a negative time (-5e12) and 1e17: a breaker opens and refuses, and half-opens after its timeout.
 * - A clock bad only at the proxy's making is refused there; one mending before the request serves.
 * - `configure(policy, clock)` on a store of one's own: the layer's clock, checked (NaN is refused there too), the
 *   real clock when the layer has none; one `kvStore` shared by two layers on different clocks runs on the first's.
 * - `FallbackChain` (adaptive) with a clock bad from its 1st to 6th reading: serves or rejects with the TypeError,
 *   never hangs, no timer left.
 *
 * Docs-silent (not pinned):
 * - `health()` throws the TypeError synchronously, and the proxy's health path rejects with it.
 * - A store whose `configure` throws: `createResilience` throws that error as it is; the proxy rejects each request
 *   and calls its store factory again each time.
 * - The message named a reading that is no number only by its type ("got type bigint" for `5n`, "got type object"
 *   for `{ valueOf: () => 5 }`); since the sixty-third session it shows it as the layer's refusals do ("got a bigint",
 *   "got an object").
 * - A finite reading near `Number.MAX_VALUE` is taken, but `now + timeout === now` there: a tripped breaker refuses
 *   nothing. From the source, not run here: a store's own `clock` option and `outage({ clock })` of ./testing do not
 *   check that readings are finite (`outage` would answer `otherwise` for a NaN clock).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type KvNamespaceLike, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { type BreakerStore, CircuitOpenError, type Clock, createResilience, type StoreEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { turns, watchUnhandled } from "../helpers/unhandled.ts";

const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);
const ctx = { waitUntil: (_promise: Promise<unknown>) => {} };
const nanError = new TypeError("clock.now() must answer a finite number, got NaN");

/** A clock on `time`'s timers whose reading `bad()` decides, behind a getter `now` (read anew each time). */
function badClock(time: TestClock, bad: (n: number) => unknown): Clock {
  let n = 0;
  return {
    get now() {
      return () => {
        const reading = bad(++n);
        return (reading === undefined ? time.now() : reading) as number;
      };
    },
    setTimer: (fn, ms) => time.setTimer(fn, ms),
  };
}

const settledSoon = (call: Promise<unknown>): Promise<unknown> =>
  Promise.race([
    call.then(
      () => "resolved",
      (error: unknown) => error,
    ),
    new Promise((resolve) => setTimeout(() => resolve("pending"), 400)),
  ]);

/** KV in a Map; `put`s recorded on `now`. */
class FakeKv implements KvNamespaceLike {
  readonly puts: { at: number; state: string }[] = [];
  readonly now: () => number;
  constructor(now: () => number) {
    this.now = now;
  }
  async getWithMetadata<M>(): Promise<{ value: string | null; metadata: M | null }> {
    return { value: null, metadata: null };
  }
  async put(_key: string, _value: string, options?: { metadata?: unknown }): Promise<void> {
    this.puts.push({ at: this.now(), state: (options?.metadata as { s: string } | undefined)?.s ?? "none" });
  }
}

let failing = true;
const stub = async (): Promise<Response> => new Response(failing ? "down" : "ok", { status: failing ? 500 : 200 });
const flapping = { failureThreshold: 1, timeout: 1_000, successThreshold: 1 };

describe("a clock whose readings go wrong after it was taken", () => {
  const readings: [string, (n: number) => unknown, string][] = [
    ["NaN", () => Number.NaN, "got NaN"],
    ["a BigInt", () => 5n, "got a bigint"],
    ["an object with valueOf", () => ({ valueOf: () => 5 }), "got an object"],
    ["alternating", (n) => (n % 2 ? Number.NaN : undefined), "got NaN"],
  ];
  it.each(readings)(
    "%s: every path rejects with the TypeError, nothing unhandled, no timer left",
    async (_, wrong, shown) => {
      const time = new TestClock(1_000);
      let bad = false;
      const clock = badClock(time, (n) => (bad ? wrong(n) : undefined));
      up.on((hit) =>
        hit.path.startsWith("/redir")
          ? hit.res.writeHead(302, { location: `${spare.base}/to` }).end()
          : hit.res.end("up"),
      );
      spare.on((hit) => hit.res.end("spare"));
      const layer = createResilience({
        clock,
        redirects: "library",
        timeout: { attempt: 5_000, total: 20_000 },
        fallback: fallback([
          {
            name: "c",
            order: "adaptive",
            hedge: { delay: 100 },
            endpoints: [
              { name: "a", url: `${up.base}/chain` },
              { name: "b", url: `${spare.base}/chain` },
            ],
          },
        ]),
        degradation: degradation({ rules: [{ match: `${up.base}/deg`, params: { steps: "steps" } }] }),
      });
      await layer.execute(async () => "made", { breaker: "made" });
      const ky = createClient({ resilience: { clock, timeout: { attempt: 5_000 } } });
      const json = { "content-type": "application/json" };
      const { value, unhandled } = await watchUnhandled(async () => {
        bad = true;
        return Promise.all([
          rejection(layer.fetch(`${up.base}/p`)),
          rejection(layer.fetch(new Request(`${up.base}/p`, { method: "POST", body: "x" }))),
          rejection(layer.fetch(`${up.base}/chain`)),
          rejection(layer.fetch(`${up.base}/deg`, { method: "POST", body: '{"steps":50}', headers: json })),
          rejection(layer.fetch(`${up.base}/redir`)),
          rejection(layer.execute(async () => "work", { breaker: "made" })),
          rejection(layer.execute(async () => "work", { breaker: "not-yet-made" })),
          rejection(ky.get(`${up.base}/p`)),
        ]);
      });
      for (const error of value)
        expect(error).toEqual(new TypeError(`clock.now() must answer a finite number, ${shown}`));
      expect(unhandled).toEqual([]);
      expect(time.pending()).toBe(0);
    },
  );

  it("-0, a negative time and 1e17 are finite: a breaker opens, refuses, and half-opens after its timeout", async () => {
    for (const base of [-0, -5e12, 1e17]) {
      const time = new TestClock(0);
      const layer = createResilience({
        clock: badClock(time, () => base + time.now()),
        retry: false,
        breaker: { failureThreshold: 1, timeout: 10_000 },
        fetch: async () => new Response("down", { status: 503 }),
      });
      expect((await layer.fetch("https://h.example/")).status).toBe(503);
      expect(await rejection(layer.fetch("https://h.example/"))).toBeInstanceOf(CircuitOpenError);
      await time.advance(5_000);
      expect(await rejection(layer.fetch("https://h.example/"))).toBeInstanceOf(CircuitOpenError);
      await time.advance(5_000);
      expect(layer.health().breakers["h.example"]?.state).toBe("half_open");
    }
  });

  it("FallbackChain (adaptive), the clock bad from its Nth reading: serves or rejects with the TypeError, never hangs", async () => {
    let refused = 0;
    for (let from = 1; from <= 6; from++) {
      const time = new TestClock(1_000);
      const clock = badClock(time, (n) => (n >= from ? Number.NaN : undefined));
      const { value, unhandled } = await watchUnhandled(async () => {
        const chain = new FallbackChain<void, string>("c", { order: "adaptive", clock })
          .add(async () => Promise.reject(new Error("a down")), { name: "a" })
          .add(async () => "b", { name: "b" });
        return settledSoon(chain.execute(undefined));
      });
      expect(unhandled).toEqual([]);
      if (value !== "resolved") {
        expect(value).toEqual(nanError);
        refused++;
      }
      expect(time.pending()).toBe(0);
    }
    expect(refused).toBeGreaterThan(0); // the run's own readings met the broken one
  });

  it("the proxy: a clock bad only when it is made is refused there; mended before a request, it serves", async () => {
    up.on((hit) => hit.res.end("up"));
    let bad = true;
    const clock = badClock(new TestClock(1_000), () => (bad ? Number.NaN : undefined));
    const make = () => resilientProxy({ routes: [{ path: "/v1", upstream: up.base }], resilience: { clock } });
    expect(make).toThrow(nanError);
    bad = false;
    const proxy = make();
    const answer = await proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx);
    expect([answer.status, await answer.text()]).toEqual([200, "up"]);
  });

  it("defect 1: the proxy answers 502 when the clock turns NaN after its layer was made; a first request rejects, as cloudflare.md says", async () => {
    up.on((hit) => hit.res.end("up"));
    let bad = false;
    const clock = badClock(new TestClock(1_000), () => (bad ? Number.NaN : undefined));
    const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: up.base }], resilience: { clock, retry: false } });
    const statusOf = () =>
      proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx).then(
        (answer) => answer.status,
        (error: unknown) => error,
      );
    // The layer is made on the first request: a clock reading wrong then is a setup mistake, rejected.
    bad = true;
    const first = await watchUnhandled(statusOf);
    expect(first.unhandled).toEqual([]);
    expect(first.value).toEqual(nanError);
    bad = false;
    expect(await statusOf()).toBe(200);
    // Once it is made, the call the clock fails is answered as any other failure (first: a rejection, as the
    // proxy's own reading of the clock for `failureResponse` threw again).
    bad = true;
    const later = await watchUnhandled(statusOf);
    expect(later.unhandled).toEqual([]);
    expect(later.value).toBe(502);
    const doc = readFileSync(new URL("../../docs/cloudflare.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "so does a clock of yours that reads wrong when the proxy makes its layer, on the first request (the layer is made again on the next). Once the layer is made, a clock reading wrong fails the call it meets, which the proxy answers as any other failure (a `502`).",
    );
  });

  it("defect 2: a served answer the clock's error drops has its body let go within about 1 s", async () => {
    // How many readings a call takes on a fresh layer: the last is the layer's, after the answer came.
    let count = 0;
    let badAt = Number.POSITIVE_INFINITY;
    const clock = badClock(new TestClock(1_000), () => (++count >= badAt ? Number.NaN : undefined));
    up.on((hit) => hit.res.end("ok"));
    await (await createResilience({ clock, retry: false }).fetch(`${up.base}/count`)).text();
    badAt = count;
    count = 0;
    up.on((hit) => {
      // Announced larger than the layer drains (64 KiB): a body let go is cancelled at once, so no real wait.
      hit.res.writeHead(200, { "content-type": "text/plain", "content-length": String(1_000_000) });
      hit.res.write("part of a stream that never ends");
    });
    const layer = createResilience({ clock, retry: false });
    expect(await rejection(layer.fetch(`${up.base}/stream`))).toEqual(nanError);
    const hit = await up.nth(2);
    let bound: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      hit.closed.then(() => "closed"),
      new Promise((resolve) => {
        bound = setTimeout(() => resolve("still open"), 1_300);
      }),
    ]);
    clearTimeout(bound);
    expect(closed).toBe("closed"); // observed: "still open"
  });
});

describe("stores on their layer's clock", () => {
  it("a store of one's own: configure gets the layer's clock, checked; the real clock without one", () => {
    const seen: { policy: unknown; now: number }[] = [];
    let given: Clock | undefined;
    const mine = {
      name: "mine",
      peek: () => undefined,
      publish() {},
      configure(policy: unknown, clock?: Clock) {
        given = clock;
        seen.push({ policy, now: clock?.now() ?? Number.NaN });
      },
    } satisfies BreakerStore;
    const before = Date.now();
    createResilience({ store: mine });
    expect(seen[0]?.now).toBeGreaterThanOrEqual(before);
    let bad = false;
    const time = new TestClock(5);
    createResilience({ store: mine, clock: badClock(time, () => (bad ? Number.NaN : undefined)) });
    expect(seen[1]?.now).toBe(5);
    expect(seen[1]?.policy).toMatchObject({ failureThreshold: expect.any(Number) });
    bad = true;
    expect(() => given?.now()).toThrow(nanError);
  });

  it("one kvStore shared by two layers on different clocks runs on the first's", async () => {
    const first = new TestClock(0);
    const second = new TestClock(0);
    const kv = new FakeKv(() => second.now());
    const store = kvStore(kv, { ctx, random: () => 0.5 });
    createResilience({ clock: first, store, breaker: flapping, fetch: stub });
    const layer = createResilience({ clock: second, store, retry: false, breaker: flapping, fetch: stub });
    failing = true;
    await (await layer.fetch("https://h.example/")).text();
    await turns(3);
    // The trip's write waits its 500 ms jitter on the first layer's clock.
    expect([first.pending(), second.pending()]).toEqual([1, 0]);
    await second.advance(10_000);
    await turns(3);
    expect(kv.puts).toEqual([]);
    await first.advance(500);
    await turns(3);
    expect(kv.puts.map((put) => put.state)).toEqual(["open"]);
  });

  it("a store whose configure throws: createResilience throws it; the proxy rejects and tries again next request", async () => {
    const boom = new Error("configure broke");
    const throwing = {
      name: "t",
      peek: () => undefined,
      publish() {},
      configure() {
        throw boom;
      },
    } satisfies BreakerStore;
    expect(() => createResilience({ store: throwing })).toThrow(boom);
    let made = 0;
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://a.example" }],
      store: () => {
        made++;
        return throwing;
      },
      resilience: { fetch: stub },
    });
    expect(await rejection(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx))).toBe(boom);
    expect(await rejection(proxy.fetch(new Request("https://w.example/v1/x"), {}, ctx))).toBe(boom);
    expect(made).toBe(2);
  });

  it("defect 3: a kvStore whose (adopted) clock is NaN when its write wakes: a store event, the write lost, as cloudflare.md says", async () => {
    const time = new TestClock(0);
    let bad = false;
    const kv = new FakeKv(() => time.now());
    const store = kvStore(kv, { ctx, random: () => 0.5 });
    const layer = createResilience({
      clock: badClock(time, () => (bad ? Number.NaN : undefined)),
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 60_000 },
      fetch: stub,
    });
    const events: StoreEvent[] = [];
    layer.on("store", (event) => events.push(event));
    const { unhandled } = await watchUnhandled(async () => {
      failing = true;
      await (await layer.fetch("https://h.example/")).text();
      bad = true;
      await time.advance(500); // the jitter's wait runs out while the clock is broken
      await turns(3);
      bad = false;
      await time.advance(10_000); // past minPublishInterval + publishJitter; no call to the host meanwhile
      await turns(3);
    });
    expect(unhandled).toEqual([]);
    // First observed: no event at all, and no put. Now the lost write is a `background` event; the trip is not
    // written later (a clock of yours must not read wrong: cloudflare.md says the work is lost, never silently).
    expect(events.map((event) => [event.operation, event.outcome, event.detail])).toEqual([
      ["background", "failed", "TypeError: clock.now() must answer a finite number, got NaN"],
    ]);
    expect(kv.puts).toEqual([]);
    const doc = readFileSync(new URL("../../docs/cloudflare.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(
      "Background work that fails past its own handling (a write whose wait reads a clock of yours that answers NaN) is a `store` event too (`background`, `failed`): the work is lost, never silently.",
    );
  });

  it("defect 4, answered by the docs: a layer with breaker: false calls no configure, and its store takes the next layer's clock", async () => {
    const first = new TestClock(0);
    const second = new TestClock(0);
    const kv = new FakeKv(() => second.now());
    const store = kvStore(kv, { ctx, random: () => 0.5 });
    const heard: unknown[] = [];
    let asked = 0;
    const mine = {
      name: "mine",
      peek: () => void asked++,
      publish: () => void asked++,
      configure: (p: unknown) => heard.push(p),
    };
    createResilience({ clock: first, store, breaker: false, fetch: stub });
    const off = createResilience({ clock: first, store: mine, breaker: false, retry: false, fetch: stub });
    await (await off.fetch("https://h.example/")).text();
    expect(asked).toBe(0);
    const layer = createResilience({ clock: second, store, retry: false, breaker: flapping, fetch: stub });
    failing = true;
    await (await layer.fetch("https://h.example/")).text();
    await turns(3);
    // First pinned expecting configure heard and the first layer's clock; breakers.md and cloudflare.md now say
    // that only a layer with breakers hands a store its clock.
    expect(heard).toHaveLength(0);
    expect([first.pending(), second.pending()]).toEqual([0, 1]);
    const read = (doc: string) =>
      readFileSync(new URL(`../../docs/${doc}`, import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(read("cloudflare.md")).toContain(
      "A store made without a `clock` runs on the clock of the first layer with breakers it is given to (a layer on a `TestClock` drives its store's pacing too; one with `breaker: false` asks no store), and the real clock until then.",
    );
    expect(read("breakers.md")).toContain(
      "the library's stores made without a `clock` take the first such layer's; a layer with `breaker: false` asks no store, and calls no `configure`",
    );
  });
});
