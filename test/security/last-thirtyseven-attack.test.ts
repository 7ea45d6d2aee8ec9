/**
 * Outside-in attack on this session's latest fixes: the generic chain's `fallback` events, Durable Object verdicts
 * dated ahead and stored holds, `kvStore`'s report of a value without metadata, and when a `redirect` event is told.
 * Docs: docs/fallback.md "a new chain for any async work, reported in `health().fallback` beside the others (an entry
 * it passes over is a `fallback` event, as an endpoint is)"; docs/health-and-events.md "`fallback` … (`chain`, `from`,
 * `reason`, `next`)", "`redirect` for each redirect the library follows, told as it turns to the next hop, before
 * that hop's host is asked (a hop whose breaker refuses it has its event too, and the call's `CircuitOpenError` then
 * names that host)"; docs/breakers.md "A clock set back" (an open state dated ahead "waits its own length from now
 * too"); docs/cloudflare.md "A hold from the object is cut to 24 hours at most"; SECURITY.md "a foreign, corrupt or
 * hostile value … is ignored with a `store` event".
 * How: `createResilience`, `on("fallback" | "redirect" | "store")`, `health()` (root); `fallback([…])` and
 * `resilience.fallback.chain(name)` with `add`/`execute`/`run` (./fallback); `createClient` (./ky); `kvStore`,
 * `durableObjectStore`, `BreakerStateObject` over a fake `state.storage` and a namespace stub, each object on its own
 * `TestClock` (./cloudflare, ./testing). Real upstreams on 127.0.0.1 (test/helpers/http-upstream.ts).
 * Paths: generic chain (execute, run with skip/accept/own onFallback/hedgeDelay), HTTP chain, plain call, ky client,
 * redirect hops refused by a breaker, by userinfo, by `ftp:` and past 20 hops; isolates on skewed clocks.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a caller's onFallback left undefined gives no hook, so the layer's event fires):
 * 1. docs/fallback.md "an entry it passes over is a `fallback` event, as an endpoint is". Observed: `run(input,
 *    { onFallback: undefined })` on a chain of `resilience.fallback.chain(name)` (options spread from a config whose
 *    hook is unset, `{ signal, onFallback: undefined }`) fires no `fallback` event at all. `LayerChain.run`
 *    (src/fallback/layer-chain.ts:35) builds `{ onFallback: this.#onFallback, ...options }`: the caller's own key,
 *    present but `undefined`, overwrites the layer's emitter ("the caller's own `onFallback`, when it gives one,
 *    instead" is read as "when the key is there").
 *
 * Held (plain `it`):
 * - Generic chain events: `chain`, `from`, `next` (the next entry; `undefined` after the last one failed), `reason`
 *   with the URL's query and userinfo cut (a message's `?key=`, a `u:pw@`); an entry `skip` passes over and a value
 *   `accept` turns down are events, with their reasons cut; a caller's own `onFallback` gets them instead of the
 *   layer; a listener that throws is reported and the run goes on; `off()` during a run stops later events; a hedged
 *   `run()` tells one event for an entry that failed beside a running hedge, naming that hedge as `next`.
 * - An HTTP chain (503 on the first endpoint) fires exactly one event per endpoint passed over (no double).
 * - durableObjectStore: no skew, an isolate an hour behind and an hour ahead of the object all refuse within the
 *   spell, show a hold of 30 s at most and send again 29-45 s after the trip (the object grants the probe); a
 *   verdict dated an hour ahead read again and again holds 30 s, then every call goes; a closed verdict dated ahead
 *   does not outrank the isolate's own later trip; an object restarted with a stored one-hour hold keeps it, one
 *   stored until 1e300 is cut to a day and then probed.
 * - kvStore: a missing key and the store's own writes (trips, refreshes) are never reported; a key holding a value
 *   without metadata is reported (`validate`/`rejected`) and calls go on (the docs promise no once-per-value: it is
 *   reported at refreshes, as garbage metadata is).
 * - redirect: a hop whose breaker is open has its event (plain call, HTTP chain, ky) and the error names that host,
 *   nothing sent there; a Location with userinfo or `ftp:` is refused with no event and nothing sent (no redirect
 *   is followed); 20 hops each have their event and the 21st is refused before any.
 */
import { describe, expect, it } from "vitest";
import { durableObjectStore, type KvNamespaceLike, kvStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  CircuitOpenError,
  createResilience,
  type FallbackEvent,
  type RedirectEvent,
  type StoreEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { objectNamespace, Storage } from "../helpers/object-namespace.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

const T0 = Date.parse("2026-12-01T00:00:00Z");
const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------------------------
// 1. fallback events of a chain made by resilience.fallback.chain(name)
// ---------------------------------------------------------------------------------------------------------------

function layerWithChain() {
  const resilience = createResilience({
    retry: false,
    fallback: fallback([{ name: "http", endpoints: [{ name: "never", url: "http://127.0.0.1:1/never" }] }]),
  });
  const events: FallbackEvent[] = [];
  const off = resilience.on("fallback", (e) => events.push(e));
  const chain = resilience.fallback.chain<string, string>("work");
  return { resilience, events, off, chain };
}

describe("generic chain: fallback events", () => {
  it("fields: chain, from, reason with the URL's key cut, next; the last entry's failure has next undefined", async () => {
    const { chain, events } = layerWithChain();
    chain
      .add(
        async () => {
          throw new Error("GET https://api.example/v1?key=SECRET123&x=1 failed");
        },
        { name: "a" },
      )
      .add(
        async () => {
          throw new TypeError("boom https://u:pw@b.example/p?token=SECRET456");
        },
        { name: "b" },
      );
    await expect(chain.execute("in")).rejects.toThrow();
    expect(events.map((e) => [e.chain, e.from, e.next])).toEqual([
      ["work", "a", "b"],
      ["work", "b", undefined],
    ]);
    const text = JSON.stringify(events);
    expect(text).not.toContain("SECRET123");
    expect(text).not.toContain("SECRET456");
    expect(text).not.toContain("pw@");
    expect(events[0]?.reason).toContain("api.example");
  });

  it("a value run() rejects with accept and an entry skipped are events too; a served run tells only what it passed", async () => {
    const { chain, events } = layerWithChain();
    chain
      .add(async () => "x", { name: "a" })
      .add(async () => "y", { name: "b" })
      .add(async () => "z", { name: "c" });
    const result = await chain.run("in", {
      skip: (name) =>
        name === "a" ? { reason: "skipped https://h.example/?key=K1", error: new Error("s") } : undefined,
      accept: (v) => (v === "y" ? "bad value" : undefined),
    });
    expect(result.ok && result.value).toBe("z");
    expect(events.map((e) => `${e.from}>${e.next}:${e.reason}`)).toEqual([
      "a>b:skipped https://h.example/",
      "b>c:bad value",
    ]);
  });

  it("run() with the caller's own onFallback: theirs instead, the layer's event not fired", async () => {
    const { chain, events } = layerWithChain();
    chain.add(async () => Promise.reject(new Error("no")), { name: "a" }).add(async () => "ok", { name: "b" });
    const mine: FallbackEvent[] = [];
    await chain.run("in", { onFallback: (e) => mine.push(e) });
    expect(mine.map((e) => e.from)).toEqual(["a"]);
    expect(events).toEqual([]);
  });

  it("run() whose options carry `onFallback: undefined` (no hook of the caller's) still fires the layer's event", async () => {
    const { chain, events } = layerWithChain();
    chain.add(async () => Promise.reject(new Error("no")), { name: "a" }).add(async () => "ok", { name: "b" });
    // e.g. options spread from a caller's config whose hook is unset
    await chain.run("in", { signal: undefined, onFallback: undefined });
    expect(events.map((e) => e.from)).toEqual(["a"]);
  });

  it("a listener that throws does not end the run; no listener: nothing breaks; off during a run stops later events", async () => {
    const { resilience, chain, events, off } = layerWithChain();
    const reported: unknown[] = [];
    const onError = (e: unknown) => reported.push(e);
    process.on("uncaughtException", onError);
    const prior = globalThis.reportError;
    globalThis.reportError = onError;
    try {
      const throwing = resilience.on("fallback", () => {
        throw new Error("listener broke");
      });
      chain
        .add(
          async () => {
            off(); // off during the run: the next pass is not told to this listener
            throw new Error("a failed");
          },
          { name: "a" },
        )
        .add(async () => Promise.reject(new Error("b failed")), { name: "b" })
        .add(async () => "ok", { name: "c" });
      expect(await chain.execute("in")).toBe("ok");
      expect(events).toEqual([]);
      expect(reported.length).toBe(2);
      throwing();
      expect(await chain.execute("in")).toBe("ok");
    } finally {
      globalThis.reportError = prior;
      process.off("uncaughtException", onError);
    }
  });

  it("hedged run(): a failing entry beside a running hedge names the hedge as next", async () => {
    const { chain, events } = layerWithChain();
    const timers: NodeJS.Timeout[] = [];
    const settleAfter = <T>(ms: number, settle: () => T) =>
      new Promise<T>((resolve, reject) =>
        timers.push(
          setTimeout(() => {
            try {
              resolve(settle());
            } catch (error) {
              reject(error);
            }
          }, ms),
        ),
      );
    chain
      .add(
        () =>
          settleAfter(30, () => {
            throw new Error("a failed https://a.example/?key=HEDGEKEY");
          }),
        { name: "a" },
      )
      .add(() => settleAfter(60, () => "b"), { name: "b" })
      .add(() => settleAfter(300, () => "c"), { name: "c" });
    const result = await chain.run("in", { hedgeDelay: 10 });
    for (const t of timers) clearTimeout(t);
    expect(result.ok && result.value).toBe("b");
    // a fails while b and c run: one event, naming the hedge the run carries on with (b), its key cut
    expect(events.map((e) => `${e.chain}:${e.from}>${e.next}`)).toEqual(["work:a>b"]);
    expect(JSON.stringify(events)).not.toContain("HEDGEKEY");
  });

  it("an HTTP chain still fires exactly one event per endpoint passed over", async () => {
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "api",
          endpoints: [
            { name: "one", url: `${up.base}/v1` },
            { name: "two", url: `${other.base}/v1` },
          ],
        },
      ]),
    });
    const events: FallbackEvent[] = [];
    resilience.on("fallback", (e) => events.push(e));
    const res = await resilience.fetch(`${up.base}/v1/x?key=SECRET`);
    expect(res.status).toBe(200);
    await res.text();
    expect(events.map((e) => `${e.chain}:${e.from}>${e.next}`)).toEqual(["api:one>two"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Shared state helpers: a KV namespace (one location) and a Durable Object namespace of real BreakerStateObjects.
// ---------------------------------------------------------------------------------------------------------------

class MiniKv {
  readonly data = new Map<string, { value: string; metadata: unknown }>();
  readonly puts: unknown[] = [];
  readonly ns: KvNamespaceLike = {
    getWithMetadata: async <M>(key: string) => {
      const found = this.data.get(key);
      return {
        value: found ? found.value : null,
        metadata: (found ? structuredClone(found.metadata) : null) as M | null,
      };
    },
    put: async (key: string, value: string, options?: { metadata?: unknown }) => {
      this.puts.push(options?.metadata);
      this.data.set(key, { value, metadata: structuredClone(options?.metadata ?? null) });
    },
  } as KvNamespaceLike;
}

type Outcome = number | "open" | string;

function isolate(
  clock: TestClock,
  makeStore: (ctx: { waitUntil(p: Promise<unknown>): void }) => BreakerStore,
  breaker: Record<string, unknown> = { failureThreshold: 2, failureRate: undefined, timeout: 30_000 },
) {
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
  const store = makeStore(ctx);
  const resilience = createResilience({ clock, store, retry: false, breaker: breaker as never });
  const storeEvents: StoreEvent[] = [];
  resilience.on("store", (e) => storeEvents.push(e));
  const outcome = (call: Promise<Response>): Promise<Outcome> =>
    call.then(
      async (r) => {
        await r.arrayBuffer();
        return r.status;
      },
      (e: unknown) => (e instanceof CircuitOpenError ? "open" : e instanceof Error ? e.name : String(e)),
    );
  const settle = async (): Promise<void> => {
    const work = pending.splice(0);
    await clock.run(Promise.race([Promise.all(work), new Promise((r) => setTimeout(r, 50))]));
  };
  const call = async (path = "/x"): Promise<Outcome> => {
    const result = await clock.run(outcome(resilience.fetch(`${up.base}${path}`)));
    await settle();
    return result;
  };
  const health = () => resilience.health().breakers[up.host];
  return { resilience, call, health, storeEvents };
}

const failing = () =>
  up.on((hit) => {
    hit.res.statusCode = 503;
    hit.res.end("down");
  });

// ---------------------------------------------------------------------------------------------------------------
// 2. durableObjectStore: verdicts dated ahead or behind; BreakerStateObject's stored hold
// ---------------------------------------------------------------------------------------------------------------

describe("durableObjectStore and BreakerStateObject under skew", () => {
  for (const [label, skewB] of [
    ["no skew", 0],
    ["B an hour behind the object", -HOUR],
    ["B an hour ahead of the object", HOUR],
  ] as const) {
    it(`${label}: B refuses within the spell and sends again about 30 s after the trip`, async () => {
      const objectClock = new TestClock(T0);
      const clockA = new TestClock(T0);
      const clockB = new TestClock(T0 + skewB);
      const ns = objectNamespace(objectClock);
      const a = isolate(clockA, (ctx) => durableObjectStore(ns, { ctx, clock: clockA }));
      const b = isolate(clockB, (ctx) => durableObjectStore(ns, { ctx, clock: clockB }), {
        failureThreshold: 1000,
        failureRate: undefined,
        timeout: 30_000,
      });
      const tick = async (ms: number) => {
        await objectClock.advance(ms);
        await clockA.advance(ms);
      };
      expect([await a.call(), await b.call()]).toEqual([200, 200]);
      failing();
      await a.call();
      await a.call();
      const tripB = clockB.now();
      let refusedAfter: number | undefined;
      while (clockB.now() - tripB < 20_000) {
        await tick(SECOND);
        await clockB.advance(SECOND);
        if ((await b.call()) === "open") {
          refusedAfter = clockB.now() - tripB;
          break;
        }
      }
      expect(refusedAfter).toBeDefined();
      // its hold as B shows it: at most the spell's length
      expect((b.health()?.openUntil ?? 0) - clockB.now()).toBeLessThanOrEqual(30_000);
      up.reset();
      let sentAfter: number | undefined;
      while (clockB.now() - tripB < 2 * 60_000) {
        await tick(SECOND);
        await clockB.advance(SECOND);
        if ((await b.call()) !== "open") {
          sentAfter = clockB.now() - tripB;
          break;
        }
      }
      expect(sentAfter).toBeDefined();
      expect(sentAfter as number).toBeLessThanOrEqual(45_000);
      expect(sentAfter as number).toBeGreaterThanOrEqual(29_000);
    });
  }

  it("B an hour behind: the same verdict read again much later does not hold the host again", async () => {
    const objectClock = new TestClock(T0 + HOUR);
    const clockB = new TestClock(T0);
    const storage = new Storage();
    // an open state the object reads at start: changed now by its clock, a 30 s hold
    storage.values.set("snapshot", {
      v: 1,
      state: "open",
      gen: 3,
      failures: [],
      lastFailureTime: null,
      openUntil: T0 + HOUR + 30_000,
      leases: [],
      successes: 0,
      reason: "5 failures",
      changedAt: T0 + HOUR,
    });
    const ns = objectNamespace(objectClock, storage);
    const b = isolate(clockB, (ctx) => durableObjectStore(ns, { ctx, clock: clockB }));
    await b.call();
    expect(await b.call()).toBe("open");
    expect((b.health()?.openUntil ?? 0) - clockB.now()).toBeLessThanOrEqual(30_000);
    // object and isolate move on together: sent again about 30 s on, then every call goes for minutes
    const seen: Outcome[] = [];
    for (let i = 0; i < 40; i++) {
      await clockB.advance(5 * SECOND);
      await objectClock.advance(5 * SECOND);
      seen.push(await b.call());
    }
    expect(seen.slice(0, 5)).toContain("open");
    expect(seen.slice(8)).toEqual(Array(32).fill(200));
  });

  it("an object restarted with a stored open state of an hour keeps it; one of 1e300 is cut to a day, then probed", async () => {
    for (const [hold, refusedFor] of [
      [T0 + HOUR, HOUR],
      [1e300, DAY],
    ] as const) {
      up.reset();
      const clock = new TestClock(T0);
      const storage = new Storage();
      storage.values.set("snapshot", {
        v: 1,
        state: "open",
        gen: 7,
        failures: [],
        lastFailureTime: null,
        openUntil: hold,
        leases: [],
        successes: 0,
        reason: "stored",
        changedAt: T0 - SECOND,
      });
      const ns = objectNamespace(clock, storage);
      const layer = isolate(clock, (ctx) => durableObjectStore(ns, { ctx, clock }));
      await layer.call();
      expect(await layer.call()).toBe("open");
      await clock.advance(refusedFor - 10 * SECOND);
      expect(await layer.call()).toBe("open");
      await clock.advance(20 * SECOND);
      expect(await layer.call()).toBe(200);
    }
  });

  it("a closed verdict dated ahead does not outrank this isolate's own later trip", async () => {
    const objectClock = new TestClock(T0 + HOUR);
    const clockB = new TestClock(T0);
    const ns = objectNamespace(objectClock);
    const b = isolate(clockB, (ctx) => durableObjectStore(ns, { ctx, clock: clockB }));
    expect([await b.call(), await b.call()]).toEqual([200, 200]);
    failing();
    await b.call();
    await b.call();
    expect(await b.call()).toBe("open");
    expect(b.health()?.state).toBe("open");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. kvStore: a value without metadata
// ---------------------------------------------------------------------------------------------------------------

describe("kvStore: a key holding a value without metadata", () => {
  it("a missing key is not reported; the store's own writes never are; a foreign value is, on refreshes", async () => {
    const clock = new TestClock(T0);
    const kv = new MiniKv();
    const layer = isolate(clock, (ctx) => kvStore(kv.ns, { ctx, clock, publishJitter: 0 }));
    expect([await layer.call(), await layer.call()]).toEqual([200, 200]);
    await clock.advance(31 * SECOND);
    await layer.call();
    expect(layer.storeEvents.filter((e) => e.operation === "validate")).toEqual([]);
    failing();
    await layer.call();
    await layer.call();
    expect(kv.puts.length).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) {
      await clock.advance(31 * SECOND);
      await layer.call();
    }
    expect(layer.storeEvents.filter((e) => e.operation === "validate")).toEqual([]);

    const clock2 = new TestClock(T0);
    const kv2 = new MiniKv();
    kv2.data.set(`cb:v1:default:${up.host}`, { value: "foreign", metadata: null });
    up.reset();
    const other2 = isolate(clock2, (ctx) => kvStore(kv2.ns, { ctx, clock: clock2, publishJitter: 0 }));
    expect([await other2.call(), await other2.call()]).toEqual([200, 200]);
    const rejected = () =>
      other2.storeEvents.filter((e) => e.operation === "validate" && e.outcome === "rejected").length;
    expect(rejected()).toBe(1);
    await clock2.advance(31 * SECOND);
    await other2.call();
    await other2.call();
    // reported again at the next refresh (no doc promises once per value; the same as garbage metadata)
    expect(rejected()).toBeGreaterThanOrEqual(1);
    expect(other2.health()?.state).toBe("closed");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. redirect events: before the hop's host is asked, on every path
// ---------------------------------------------------------------------------------------------------------------

describe("redirect events told before the hop's host is asked", () => {
  const redirectTo = (location: string) =>
    up.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", location);
      hit.res.end();
    });

  async function tripOther(resilience: ReturnType<typeof createResilience>) {
    other.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    for (let i = 0; i < 3; i++) await (await resilience.fetch(`${other.base}/trip`)).text();
    other.reset();
    expect(resilience.health().breakers[other.host]?.state).toBe("open");
  }

  it("a hop refused by its breaker has its event (plain call, chain, ky) and the error names that host", async () => {
    for (const path of ["plain", "chain", "ky"] as const) {
      up.reset();
      const resilience = createResilience({
        retry: false,
        breaker: { failureThreshold: 3, failureRate: undefined },
        ...(path === "chain"
          ? { fallback: fallback([{ name: "api", endpoints: [{ name: "only", url: `${up.base}/api` }] }]) }
          : {}),
      });
      await tripOther(resilience);
      const redirects: RedirectEvent[] = [];
      resilience.on("redirect", (e) => redirects.push(e));
      redirectTo(`${other.base}/landing?key=SECRET`);
      const url = `${up.base}/${path === "chain" ? "api/x" : "x"}`;
      let error: unknown;
      if (path === "ky") {
        const ky = createClient({ resilience });
        error = await ky.get(url).then(
          () => undefined,
          (e: unknown) => e,
        );
      } else {
        error = await resilience.fetch(url).then(
          () => undefined,
          (e: unknown) => e,
        );
      }
      expect(other.hits.length, path).toBe(0);
      expect(
        redirects.map((e) => e.to),
        path,
      ).toEqual([`${other.base}/landing`]);
      expect(JSON.stringify(error) + String(error), path).toContain(other.host);
    }
  });

  it("a Location with userinfo, an ftp: one, or the 21st hop: refused with no event for the refused hop, nothing sent there", async () => {
    const resilience = createResilience({ retry: false });
    const redirects: RedirectEvent[] = [];
    resilience.on("redirect", (e) => redirects.push(e));
    for (const location of [`http://u:p@${other.host}/in`, "ftp://127.0.0.1/file"]) {
      redirectTo(location);
      await expect(resilience.fetch(`${up.base}/x`)).rejects.toThrow(/credentials|ftp:/);
    }
    expect(redirects).toEqual([]);
    expect(other.hits.length).toBe(0);
    up.reset();
    up.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `/loop${hit.n}`);
      hit.res.end();
    });
    await expect(resilience.fetch(`${up.base}/x`)).rejects.toThrow(/more than 20 redirects/);
    // 20 hops followed, each told; the 21st is refused before any event
    expect(redirects.length).toBe(20);
    expect(up.hits.length).toBe(21);
  });
});
