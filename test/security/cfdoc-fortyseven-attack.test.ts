/**
 * Outside-in attack on docs/cloudflare.md and the JSDoc of `src/cloudflare/index.ts`'s exports (session
 * fortyseven): `resilientProxy` driven as a plain handler in Node in front of real 127.0.0.1 upstreams, with
 * `kvStore` and `durableObjectStore` over fakes written to the documented binding shapes (`KvNamespaceLike`:
 * `getWithMetadata`/`put`, with stale reads; `DurableObjectNamespaceLike`: `idFromName`/`get` → a stub with
 * `fetch`), their failure behaviour and their `waitUntil` use.
 * Docs:
 * - docs/cloudflare.md: "Both check their options when they are made, with a `TypeError` naming the store and the
 *   option: … a `clock` that is no `{ now(), setTimer() }`, a `scope` that is no string, a `ctx` without
 *   `waitUntil`, … a value that cannot be read (a getter that throws, a revoked `Proxy`)."
 * - docs/cloudflare.md: "Remote values are validated with zod and a foreign or corrupt one is ignored";
 *   "`kvStore` and `durableObjectStore` share a compact state (state, until when, when and why)"
 *   (docs/health-and-events.md); SECURITY.md "No secret in events, errors, `health()` or `debugInfo()` | URLs lose
 *   their userinfo …, query string and fragment (where keys such as `?api_key=` live) before they reach any of
 *   them", "Remote state is validated, never trusted", "The Worker health endpoint … its JSON holds no headers or
 *   keys".
 * - docs/cloudflare.md: "toward closed only when it closed after the local breaker last changed, so a late, older
 *   `closed` is ignored"; "(a new isolate's first trip is generation 1)"; "An isolate idle … sends the calls it
 *   starts before that refresh comes back on what it last saw"; "`kvStore` writes only on open, close and probe
 *   results, … after a random `publishJitter` (≤ 1 s), inside `ctx.waitUntil`"; "Open keys expire on their own
 *   (TTL 60 s past `openUntil`)"; "answers `503` with `Retry-After` when the circuit is open".
 * - docs/cloudflare.md: "A store that errs or is slow is ignored … and the request goes on under the local
 *   breaker"; "Only a half-open probe waits for the object"; the `durableObjectStore` JSDoc "an unreachable or slow
 *   object leaves the request under the local breaker".
 * - docs/cloudflare.md: "each route's chain (a `ConfigError` naming the route, `routes.1.chain.endpoints.0.url`; …
 *   a route key other than `path`, `upstream` and `chain` …, `routes.1`)"; SECURITY.md "an option's `ConfigError`
 *   included (a misspelt option's name … too)".
 * - docs/cloudflare.md: "Run in Node as a plain handler, the proxy answers as a plain `fetch` pass-through does,
 *   the label over the decoded body".
 * How: `resilientProxy`, `kvStore`, `durableObjectStore` (../../src/cloudflare/index.ts), `ConfigError`
 * (../../src/index.ts), `TestClock` (../../src/testing/index.ts); node:http upstreams on 127.0.0.1
 * (test/helpers/http-upstream.ts); a KV binding of my own whose reads answer what the test sets (stale on purpose:
 * a write never changes what is read) and which records every `put`; Durable Object stubs of my own that answer
 * a fixed verdict, garbage, throw or hang; contexts whose `waitUntil` records each promise and how it settled.
 * Paths: `resilientProxy` (upstream routes and a chain route; its health endpoint), the stores made as the
 * proxy's `store` factory, the stores' factories called directly.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; both fixed in the same session, so plain `it`):
 * 1. docs/cloudflare.md "Both check their options when they are made, with a `TypeError` naming the store and the
 *    option: … a `ctx` without `waitUntil`, … a value that cannot be read (a getter that throws, a revoked
 *    `Proxy`)". Observed: `kvStore(kv, { ctx })` and `durableObjectStore(ns, { ctx })` with a `ctx` whose
 *    `waitUntil` getter throws rethrow the getter's own `Error("boom")` (no `TypeError`, no store or option named);
 *    with a revoked `Proxy` as `ctx` they throw the engine's bare "Cannot perform 'get' on a proxy that has been
 *    revoked". The same values as `clock` are refused as documented ("kvStore: clock must be …"). Cause:
 *    src/stores/store-options.ts `checkScopeAndContext` reads `ctx.waitUntil` outside any `try` (`storeClock` in
 *    src/stores/store-clock.ts guards the same read for `clock`).
 * 2. SECURITY.md "No secret in events, errors, `health()` or `debugInfo()`: URLs lose their userinfo …, query
 *    string and fragment … before they reach any of them", "Remote state is validated, never trusted", and the
 *    health row "its JSON holds no headers or keys". Observed: a shared value read from KV (`r` of the metadata)
 *    or a Durable Object verdict (`reason`) that quotes `https://user:pw@h.example/v1?api_key=…#frag` passes the
 *    zod schema, and the proxy's `GET /__resilience/health` answers it word for word as the breaker's `reason`
 *    and `lastError` ("shared: GET https://user:pw@h.example/v1?api_key=SECRET… failed"); the layer's `breaker`
 *    event and `debugInfo()` carry it too (seen with `createResilience` over the same `kvStore`). A local reason
 *    never holds a URL (the breaker keeps an error's name, never its text), so only a foreign writer (another
 *    app or version on the namespace, a hostile value) puts one there, and nothing cuts it. Cause:
 *    src/stores/shared-snapshot.ts `fromShared` (KV) and src/cloudflare/durable-object-store.ts `adoptVerdict`
 *    take the remote reason as it is; src/policies/breaker-state.ts `adopt` writes it into the local reason
 *    (`shared: ${remote.reason}`) without `redactUrlsIn`.
 *
 * Held (plain `it`):
 * - Store options: a revoked `Proxy` or a throwing getter as `clock`, a throwing `scope` getter, revoked options,
 *   a numeric string, `NaN`/`Infinity`, a fractional budget or threshold, an unknown name: each a `TypeError`
 *   naming the store (and the option); `durableObjectStore`'s `policy` that cannot be read or that the object
 *   would refuse, named `policy…`.
 * - KV with stale reads through the proxy: a trip (failureThreshold 1) is written once, inside the request's
 *   `waitUntil`, after the jitter, as generation 1 dated at the trip, with `expirationTtl` 90 (30 s open + 60);
 *   an older `closed` read afterwards is ignored (503, `Retry-After` 28, nothing sent); a `closed` dated after the
 *   trip is adopted once its background read came back: the call that started that read is still refused, the
 *   next one goes through. Every `waitUntil` promise settles, none rejects.
 * - Durable Object stubs that throw synchronously, reject, answer 500, answer text, answer a verdict with a
 *   `__proto__` key, or hang: every proxy request is answered by the upstream without the clock moving (a closed
 *   call never waits for the object); the hanging report's `waitUntil` promise settles once 250 ms pass on the
 *   clock; none rejects.
 * - Proxy `ConfigError`s name the path and cut the secrets: a chain endpoint URL with `user:pass@` and `?key=`
 *   (`routes.0.chain.endpoints.0.url`, the URL quoted without them), an unknown route key that is a keyed URL
 *   (`routes.0`, cut), a route path with a query (`TypeError`, the query not quoted), a misspelt proxy option
 *   (`ConfigError`), `resilience.fallback` (`resilience.fallback`).
 * - Node pass-through of a gzip upstream: the proxy's answer keeps `content-encoding: gzip` over the decoded body,
 *   with the three `x-resilience-*` headers, and the upstream's hop headers (and those its `Connection` names)
 *   are dropped.
 *
 * Docs-silent (not pinned):
 * - A `breaker.key` that returns no non-empty string (a setup mistake, as a missing binding is) makes every proxy
 *   request a quiet `502` with nothing sent, where a throwing `store` factory rejects so that Workers log it.
 * - A health token with a space or line break at either end (a secret pasted with its newline) or with a
 *   character outside Latin-1 can never be matched (a header value loses its ends, and carries bytes): the
 *   endpoint stays closed for good, with no word. A `bigint` or `NaN` env value is taken as the token "…"/"NaN".
 * - A misspelt store option that is inherited or not enumerable (`Object.create({ refreshIntervl: 5 })`) is taken
 *   without a word by `kvStore`, `durableObjectStore` and `memoryStore`; so is a symbol key.
 * - A namespace whose `getWithMetadata` (or `get`) getter throws, or a revoked `Proxy` as the binding, rethrows
 *   the raw error rather than the store's "expected a KV namespace binding" `TypeError`.
 */
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import {
  type DurableObjectNamespaceLike,
  durableObjectStore,
  type KvNamespaceLike,
  kvStore,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import { ConfigError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
serveDuringFile(up);

const T0 = 1_700_000_000_000;
const LEAK = /SECRET|user:pw|FRAGX/;
const LEAKY_REASON = "GET https://user:pw@h.example/v1?api_key=SECRET1#FRAGX failed";

/** A context recording each promise handed to `waitUntil`, and how it settled. */
function recordingCtx() {
  const handed: Promise<unknown>[] = [];
  const settled: Array<"fulfilled" | "rejected"> = [];
  const ctx = {
    waitUntil(promise: Promise<unknown>) {
      handed.push(promise);
      promise.then(
        () => settled.push("fulfilled"),
        () => settled.push("rejected"),
      );
    },
  };
  /** Lets every promise handed so far (and those they hand on) settle. */
  const drain = async () => {
    for (let round = 0; round < 5; round++) {
      await Promise.allSettled(handed);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  };
  return { ctx, handed, settled, drain };
}

const revokedProxy = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};

const quietKv: KvNamespaceLike = {
  getWithMetadata: async () => ({ value: null, metadata: null }),
  put: async () => {},
};
const quietNamespace: DurableObjectNamespaceLike = {
  idFromName: (name: string) => name,
  get: () => ({ fetch: async () => Response.json({}) }),
};

/** What a call throws, as `[constructor name, message]`. */
function thrown(make: () => unknown): [string, string] | undefined {
  try {
    make();
  } catch (error) {
    return [(error as Error).constructor.name, String((error as Error).message)];
  }
  return undefined;
}

describe("store options are checked when the store is made", () => {
  it("defect 1: a ctx whose waitUntil cannot be read is a TypeError naming the store and ctx", () => {
    const throwingGetter = {
      get waitUntil(): never {
        throw new Error("boom");
      },
    };
    for (const ctx of [throwingGetter, revokedProxy()]) {
      const kv = thrown(() => kvStore(quietKv, { ctx: ctx as never }));
      expect(kv?.[0]).toBe("TypeError");
      expect(kv?.[1]).toMatch(/^kvStore: ctx/);
      const object = thrown(() => durableObjectStore(quietNamespace, { ctx: ctx as never }));
      expect(object?.[0]).toBe("TypeError");
      expect(object?.[1]).toMatch(/^durableObjectStore: ctx/);
    }
  });

  it("control: the same unreadable values as clock, and other unreadable or wrong options, are named", () => {
    const throwingNow = {
      get now(): never {
        throw new Error("boom");
      },
      setTimer: () => () => {},
    };
    for (const clock of [revokedProxy(), throwingNow]) {
      expect(thrown(() => kvStore(quietKv, { clock: clock as never }))).toEqual([
        "TypeError",
        "kvStore: clock must be { now(), setTimer(fn, ms) }, got an object",
      ]);
      expect(thrown(() => durableObjectStore(quietNamespace, { clock: clock as never }))).toEqual([
        "TypeError",
        "durableObjectStore: clock must be { now(), setTimer(fn, ms) }, got an object",
      ]);
    }
    const throwingScope = {
      get scope(): never {
        throw new Error("boom");
      },
    };
    expect(thrown(() => kvStore(quietKv, throwingScope))).toEqual(["TypeError", "kvStore: scope cannot be read"]);
    expect(thrown(() => durableObjectStore(quietNamespace, throwingScope))).toEqual([
      "TypeError",
      "durableObjectStore: scope cannot be read",
    ]);
    expect(thrown(() => kvStore(quietKv, revokedProxy() as never))).toEqual([
      "TypeError",
      "kvStore: expected options that can be read, got a value that cannot be read",
    ]);
    expect(thrown(() => kvStore(quietKv, { ctx: {} as never }))?.[1]).toMatch(/^kvStore: ctx must be/);
    expect(thrown(() => kvStore(quietKv, { refreshInterval: "30000" as never }))?.[1]).toMatch(
      /^kvStore: refreshInterval must be/,
    );
    expect(thrown(() => kvStore(quietKv, { minPublishInterval: Number.NaN }))?.[1]).toMatch(
      /^kvStore: minPublishInterval must be/,
    );
    expect(thrown(() => kvStore(quietKv, { publishJitter: Number.POSITIVE_INFINITY }))?.[1]).toMatch(
      /^kvStore: publishJitter must be/,
    );
    expect(thrown(() => kvStore(quietKv, { writeBudget: 1.5 }))?.[1]).toMatch(/^kvStore: writeBudget must be/);
    expect(thrown(() => kvStore(quietKv, { refreshIntervl: 5 } as never))?.[1]).toMatch(
      /^kvStore: unknown option "refreshIntervl"/,
    );
    expect(thrown(() => durableObjectStore(quietNamespace, { flushThreshold: 2.5 }))?.[1]).toMatch(
      /^durableObjectStore: flushThreshold must be a whole number/,
    );
    expect(thrown(() => durableObjectStore(quietNamespace, { policy: revokedProxy() as never }))).toEqual([
      "TypeError",
      "durableObjectStore: policy: expected options that can be read, got a value that cannot be read",
    ]);
    expect(thrown(() => durableObjectStore(quietNamespace, { policy: { failureThreshold: 0 } }))?.[1]).toMatch(
      /^durableObjectStore: policy\.failureThreshold is out of range/,
    );
  });
});

describe("a remote reason that quotes a keyed URL, through the proxy's health endpoint", () => {
  afterEach(() => up.reset());

  /** Two requests (the first starts the store's read), then the health JSON. */
  async function healthAfterRemoteOpen(
    store: () => ReturnType<typeof kvStore> | ReturnType<typeof durableObjectStore>,
    clock: TestClock,
  ) {
    const { ctx, drain, settled } = recordingCtx();
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: up.base }],
      resilience: { clock, retry: false },
      store,
    });
    const first = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    expect(first.status).toBe(200);
    await first.text();
    await drain();
    const second = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    // The shared open was adopted: the host is refused, nothing sent.
    expect(second.status).toBe(503);
    await second.text();
    expect(up.hits).toHaveLength(1);
    const health = await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx);
    expect(health.status).toBe(200);
    const text = await health.text();
    const breaker = (JSON.parse(text) as { breakers: Record<string, { state: string }> }).breakers[up.host];
    expect(breaker?.state).toBe("open");
    await drain();
    expect(settled).not.toContain("rejected");
    return text;
  }

  it("defect 2 (KV): the shared reason's userinfo, query and fragment never reach the health JSON", async () => {
    const clock = new TestClock(T0);
    const kv: KvNamespaceLike = {
      getWithMetadata: async () => ({
        value: "",
        metadata: { v: 1, s: "open", g: 1, u: clock.now() + 60_000, w: clock.now() - 1, r: LEAKY_REASON } as never,
      }),
      put: async () => {},
    };
    const text = await healthAfterRemoteOpen(() => kvStore(kv, { clock }), clock);
    expect(text).not.toMatch(LEAK);
  });

  it("defect 2 (Durable Object): a verdict's reason is cut the same way", async () => {
    const clock = new TestClock(T0);
    const ns: DurableObjectNamespaceLike = {
      idFromName: (name: string) => name,
      get: () => ({
        fetch: async () =>
          Response.json({
            state: "open",
            gen: 1,
            openUntil: clock.now() + 60_000,
            reason: LEAKY_REASON,
            changedAt: clock.now() - 1,
            lease: null,
          }),
      }),
    };
    const text = await healthAfterRemoteOpen(() => durableObjectStore(ns, { clock }), clock);
    expect(text).not.toMatch(LEAK);
  });

  it("control: the same open without a URL in its reason shows as documented (`shared: …`, counts of 0)", async () => {
    const clock = new TestClock(T0);
    const kv: KvNamespaceLike = {
      getWithMetadata: async () => ({
        value: "",
        metadata: {
          v: 1,
          s: "open",
          g: 1,
          u: clock.now() + 60_000,
          w: clock.now() - 1,
          r: "3 failures in a row",
        } as never,
      }),
      put: async () => {},
    };
    const text = await healthAfterRemoteOpen(() => kvStore(kv, { clock }), clock);
    const breaker = (JSON.parse(text) as { breakers: Record<string, Record<string, unknown>> }).breakers[up.host];
    expect(breaker).toMatchObject({
      lastError: "shared: 3 failures in a row",
      failureCount: 0,
      consecutiveFailures: 0,
      failureRate: null,
    });
  });
});

describe("kvStore with stale reads, through the proxy", () => {
  afterEach(() => up.reset());

  it("a trip is written once in waitUntil; an older closed read later is ignored, a newer one adopted", async () => {
    const clock = new TestClock(T0);
    let stored: unknown = { v: 1, s: "closed", g: 4, u: null, w: T0 - 10_000, r: null };
    const puts: Array<{ key: string; options: { expirationTtl?: number; metadata?: unknown } | undefined }> = [];
    let reads = 0;
    const kv: KvNamespaceLike = {
      // Stale on purpose: what is read is what the test says, whatever was written.
      getWithMetadata: async () => {
        reads++;
        return { value: "", metadata: stored as never };
      },
      put: async (key, _value, options) => {
        puts.push({ key, options });
      },
    };
    const { ctx, handed, settled, drain } = recordingCtx();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${up.base}/api` }],
      resilience: { clock, retry: false, breaker: { failureThreshold: 1, timeout: 30_000 } },
      store: () => kvStore(kv, { clock, refreshInterval: 1_000, random: () => 0.5 }),
    });
    up.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("down");
    });
    const tripped = await proxy.fetch(new Request("https://worker.example/v1/jobs"), {}, ctx);
    expect(tripped.status).toBe(500);
    expect(tripped.headers.get("x-resilience-endpoint")).toBe(up.host);
    await tripped.text();
    // The write waits its jitter (0.5 × 1 s) inside a promise this request's waitUntil holds.
    expect(handed.length).toBeGreaterThan(0);
    expect(puts).toHaveLength(0);
    await clock.advance(500);
    await drain();
    expect(puts).toHaveLength(1);
    expect(puts[0]?.key).toBe(`cb:v1:default:${up.host}`);
    expect(puts[0]?.options).toMatchObject({
      expirationTtl: 90,
      metadata: { v: 1, s: "open", g: 1, u: T0 + 30_000, w: T0 },
    });

    // The older closed, read again: ignored, the local open stands.
    await clock.advance(1_500);
    const refused = await proxy.fetch(new Request("https://worker.example/v1/jobs"), {}, ctx);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("28");
    expect(refused.headers.get("x-resilience-endpoint")).toBeNull();
    await refused.text();
    await drain();
    expect(up.hits).toHaveLength(1);

    // Another isolate's probes closed it after this trip: the call that starts the read goes on what it saw.
    stored = { v: 1, s: "closed", g: 2, u: null, w: T0 + 2_500, r: null };
    up.on((hit) => hit.res.end("back"));
    await clock.advance(1_000);
    const readsBefore = reads;
    const stillOpen = await proxy.fetch(new Request("https://worker.example/v1/jobs"), {}, ctx);
    expect(stillOpen.status).toBe(503);
    await stillOpen.text();
    expect(reads).toBe(readsBefore + 1);
    await drain();
    const after = await proxy.fetch(new Request("https://worker.example/v1/jobs"), {}, ctx);
    expect(after.status).toBe(200);
    expect(await after.text()).toBe("back");
    expect(up.hits.map((hit) => hit.path)).toEqual(["/api/jobs", "/api/jobs"]);
    await drain();
    expect(settled).not.toContain("rejected");
    expect(settled).toHaveLength(handed.length);
  });
});

describe("durableObjectStore over objects that misbehave, through the proxy", () => {
  afterEach(() => up.reset());

  const stubs: Record<string, () => Promise<Response>> = {
    "throws synchronously": () => {
      throw new Error("no such object");
    },
    rejects: async () => {
      throw new Error("network lost");
    },
    "answers 500": async () => new Response("overloaded", { status: 500 }),
    "answers text": async () => new Response("not json"),
    "answers a verdict with __proto__": async () =>
      new Response('{"state":"closed","gen":0,"openUntil":null,"reason":null,"__proto__":{"x":1}}'),
    "answers an open verdict with a bad gen": async () =>
      Response.json({ state: "open", gen: -1, openUntil: T0 + 60_000, reason: null }),
    hangs: () => new Promise<Response>(() => {}),
  };

  for (const [behaviour, stubFetch] of Object.entries(stubs)) {
    it(`an object that ${behaviour}: every call answered by the upstream at once, no waitUntil promise rejects`, async () => {
      const clock = new TestClock(T0);
      const ns: DurableObjectNamespaceLike = {
        idFromName: (name: string) => name,
        get: () => ({ fetch: stubFetch }),
      };
      const { ctx, handed, settled, drain } = recordingCtx();
      const proxy = resilientProxy({
        routes: [{ path: "/", upstream: up.base }],
        resilience: { clock, retry: false },
        store: () => durableObjectStore(ns, { clock }),
      });
      for (let i = 0; i < 3; i++) {
        const answer = await proxy.fetch(new Request(`https://worker.example/n${i}`), {}, ctx);
        expect(answer.status).toBe(200);
        expect(await answer.text()).toBe("ok");
      }
      expect(clock.now()).toBe(T0);
      expect(up.hits).toHaveLength(3);
      expect(handed.length).toBeGreaterThan(0);
      await clock.advance(250);
      await drain();
      expect(settled).toHaveLength(handed.length);
      expect(settled).not.toContain("rejected");
    });
  }
});

describe("proxy refusals name the path and keep secrets out", () => {
  it("ConfigErrors and TypeErrors when made, with credentials, queries and fragments cut", () => {
    const chainUrl = thrown(() =>
      resilientProxy({
        routes: [
          {
            path: "/a",
            chain: { name: "c", endpoints: [{ name: "e", url: "https://u:SECRET@h.example/v1?key=SECRET#FRAGX" }] },
          },
        ],
      }),
    );
    expect(chainUrl?.[0]).toBe("ConfigError");
    expect(chainUrl?.[1]).toMatch(/^routes\.0\.chain\.endpoints\.0\.url: /);
    expect(chainUrl?.[1]).toContain('"https://h.example/v1"');
    expect(chainUrl?.[1]).not.toMatch(/SECRET|FRAGX/);

    const keyedKey = thrown(() =>
      resilientProxy({
        routes: [
          { path: "/a", upstream: "https://h.example/v1", "https://u:SECRET@x.example/?key=SECRET": 1 } as never,
        ],
      }),
    );
    expect(keyedKey?.[0]).toBe("ConfigError");
    expect(keyedKey?.[1]).toMatch(/^routes\.0: unknown option/);
    expect(keyedKey?.[1]).not.toMatch(/SECRET/);

    const queried = thrown(() =>
      resilientProxy({ routes: [{ path: "/a?key=SECRET", upstream: "https://h.example" }] }),
    );
    expect(queried?.[0]).toBe("TypeError");
    expect(queried?.[1]).toMatch(/would never match/);
    expect(queried?.[1]).not.toMatch(/SECRET/);

    let misspelt: unknown;
    try {
      resilientProxy({ routes: [{ path: "/a", upstream: "https://h.example" }], healthpath: "/h" } as never);
    } catch (error) {
      misspelt = error;
    }
    expect(misspelt).toBeInstanceOf(ConfigError);
    expect(String((misspelt as Error).message)).toMatch(/unknown option "healthpath"/);

    expect(
      thrown(() =>
        resilientProxy({
          routes: [{ path: "/a", upstream: "https://h.example" }],
          resilience: { fallback: [] } as never,
        }),
      ),
    ).toEqual(["ConfigError", "resilience.fallback: a proxy's chains go in its routes ({ path, chain })"]);
  });
});

describe("Node pass-through", () => {
  afterEach(() => up.reset());

  it("a gzip upstream's answer keeps its label over the decoded body; the hop's headers are dropped", async () => {
    up.on((hit) => {
      hit.res.writeHead(200, {
        connection: "keep-alive, X-Hop",
        "x-hop": "1",
        "keep-alive": "timeout=5",
        "content-encoding": "gzip",
        "x-kept": "yes",
      });
      hit.res.end(gzipSync("hello world"));
    });
    const { ctx } = recordingCtx();
    const proxy = resilientProxy({ routes: [{ path: "/", upstream: up.base }] });
    const answer = await proxy.fetch(new Request("https://worker.example/x"), {}, ctx);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-encoding")).toBe("gzip");
    expect(await answer.text()).toBe("hello world");
    expect(answer.headers.get("x-kept")).toBe("yes");
    for (const name of ["connection", "x-hop", "keep-alive", "transfer-encoding"])
      expect(answer.headers.has(name)).toBe(false);
    expect(answer.headers.get("x-resilience-endpoint")).toBe(up.host);
    expect(answer.headers.get("x-resilience-attempts")).toBe("1");
    expect(answer.headers.get("x-degradation-level")).toBe("full");
  });
});
