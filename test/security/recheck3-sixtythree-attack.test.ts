/**
 * Outside-in attack on the last sixty-third-session fixes (22b61cbd): a store's `configure` handed the thresholds
 * alone, the stores' defaults through `withDefaults` (`null` refused), a BigInt shown by its kind, and the ky client
 * copying a class instance's getters.
 *
 * Docs:
 * - docs/breakers.md: "it calls your store's `configure(policy, clock)`, if it has one, with its breaker thresholds
 *   (the numbers alone, never your `isFailure` or `key`, so a store may hand them on by `postMessage`) and its clock";
 *   docs/cloudflare.md: "The object applies the thresholds each report carries: the `breaker` options of the layer
 *   made with the store".
 * - CHANGELOG.md: "they now apply defaults as the layer does (`withDefaults`: only `undefined` takes the default), so
 *   `null` is refused as any value out of range is."; docs/cloudflare.md: "Both check their options when they are
 *   made, with a `TypeError` naming the store and the option"; "`memoryStore` checks its options the same way";
 *   "the rest the `breaker` defaults, `failureRate: undefined` turning the rate rule off"; durable-object-store.ts
 *   JSDoc of `policy`: "as the `breaker` option takes them".
 * - CHANGELOG.md: "A BigInt was shown by its digits in refusals …; it is now named by its kind (`a bigint`)";
 *   docs/testing.md: "The kit's messages show a refused value as the layer's own refusals do".
 * - CHANGELOG.md: "The ky client … now copies what ky reads, getters too."; docs/options.md: "options are read by name,
 *   so a key defined not enumerable and a class's getter are read, and checked, as a plain key is. A value that cannot
 *   be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too."; docs/retry.md: "Passing
 *   ky's `retry` or `fetch` is a `ConfigError`, at once, to `createClient`, to a call … and to `extend` or `create`";
 *   "A header value no request can carry is a `TypeError` naming the header, never quoting the value".
 *
 * How: root (`createResilience`, `memoryStore`), ./cloudflare (`kvStore` over a Map KV, `durableObjectStore` over a
 * namespace whose stubs run real `BreakerStateObject`s on a Map storage), ./testing (`TestClock`, `latency`, `status`),
 * ./ky (`createClient`) beside plain ky 2 on the same options; one node:http server on 127.0.0.1 (httpUpstream).
 *
 * Paths: layer creation with stores of our own (structuredClone, freeze, every key, BroadcastChannel) and breaker
 * `isFailure`/`key`; plain calls tripping a breaker; two layers over one Durable Object; kvStore reads; every option
 * of the three stores and every key of the DO `policy`; refusals of createResilience, createClient, stores, kit,
 * clock readings; ky call, `extend`, `extend(fn)`, `create`, `createClient` with class-instance options.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-third session both were fixed,
 * so plain `it`: durableObjectStore refuses `policy.failureRate: null` and reads `undefined` from a class's getter as
 * from a key; createClient looks for the unreadable option among a class's getters too):
 * 1. CHANGELOG "`null` is refused as any value out of range is" / the `policy` JSDoc "as the `breaker` option takes
 *    them". Observed: `durableObjectStore(ns, { policy: { failureRate: null } })` is made, and every report carries
 *    `failureRate: null`: the rate rule is silently off (the layer's `breaker: { failureRate: null }` is a
 *    ConfigError). Test "defect 1: …".
 * 2. options.md "a class's getter [is] read, and checked, as a plain key is. A value that cannot be read (a getter that
 *    throws …) is a `ConfigError` naming its path too". Observed: `createClient(new (class { get headers() { throw }
 *    }))` is a ConfigError at `options`, where an own or hidden `headers` getter is named `headers` (and
 *    createResilience names a class getter's path). Test "defect 2: …".
 *
 * Held (plain `it`):
 * - configure gets a new plain object of the 8 threshold numbers, resolved; structuredClone, BroadcastChannel
 *   postMessage and Object.freeze of it break nothing; `isFailure` and `key` still apply; kvStore still keys by `key`.
 * - Two layers (failureThreshold 2, local breakers below it) on one Durable Object: the object trips after one failure
 *   from each, the next call refused without reaching the server; at 3 it does not.
 * - Every option of memoryStore/kvStore/durableObjectStore and every numeric `policy` key: `null` refused naming the
 *   option, `undefined` the default, a hidden key and a class getter read (once) and checked, a throwing getter named.
 *   `policy: { failureRate: undefined }` sends `failureRate: null` (rule off); left out, 0.5.
 * - A BigInt is `a bigint`, never its digits, in createResilience, createClient, the stores, TestClock, the kit and a
 *   clock reading.
 * - ky: class getters `headers`/`hooks` reach the server on call, extend, extend(fn), create and createClient, exactly
 *   as plain ky sends the same instance (`searchParams`, `json`, `prefix` getters ignored by both); a throwing getter
 *   throws its own error on a call/extend/create, nothing sent; methods named `headers`/`hooks`/`json`/`timeout`
 *   ignored as in ky; a `retry` getter, a `fetch` method, a `resilence` getter and a class `init` hook setting `retry`
 *   refused on all four ways, nothing sent; a getter alternating a good and a CR/LF header: what is sent is what was
 *   checked, the value never quoted.
 *
 * Docs-silent (not pinned):
 * - `extend` reads a class's `headers` getter 2 to 4 times (a call, `create` and `createClient` once); options.md allows it ("a getter
 *   in them may be read more than once"), though src/ky's `optionsCopy` comment says "each is read once".
 * - A `policy` whose `failureRate` is a class getter answering `undefined` keeps the rate rule on (0.5): only an own
 *   key turns it off, where options.md reads a class's getter "as a plain key is".
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { BreakerStateObject, durableObjectStore, kvStore } from "../../src/cloudflare/index.ts";
import { type BreakerStore, createResilience, memoryStore, type ResolvedBreakerPolicy } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { latency, status, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const up = httpUpstream();
serveDuringFile(up);

const POLICY_KEYS = [
  "failureRate",
  "failureThreshold",
  "halfOpenMaxCalls",
  "minimumCalls",
  "probeTimeout",
  "successThreshold",
  "timeWindow",
  "timeout",
];
const message = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : "no error");
const settle = async () => {
  for (let i = 0; i < 15; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};

/** A KV stand-in on a Map, recording the keys read. */
function fakeKv() {
  const reads: string[] = [];
  return {
    reads,
    getWithMetadata: async (key: string) => {
      reads.push(key);
      return { value: null, metadata: null };
    },
    put: async () => {},
  };
}

/** A Durable Object namespace whose stubs run real `BreakerStateObject`s; every body sent recorded. */
function fakeNamespace(clock?: TestClock) {
  const objects = new Map<string, BreakerStateObject>();
  const sent: Array<{ path: string; body: { policy: Record<string, unknown>; fail: number } }> = [];
  const ns = {
    idFromName: (name: string) => name,
    get: (id: never) => ({
      fetch: async (url: string, init?: RequestInit) => {
        sent.push({ path: new URL(url).pathname, body: JSON.parse(String(init?.body)) });
        let object = objects.get(id);
        if (!object) {
          const storage = new Map<string, unknown>();
          object = new BreakerStateObject(
            {
              storage: {
                get: async <T>(key: string) => storage.get(key) as T | undefined,
                put: async (key: string, value: unknown) => void storage.set(key, value),
                setAlarm: async () => {},
              },
              blockConcurrencyWhile: (callback) => callback(),
            },
            {},
            clock,
          );
          objects.set(id, object);
        }
        return object.fetch(new Request(url, init));
      },
    }),
  };
  return { ns, sent };
}

/** An instance of a class whose prototype holds `getters` and `methods` (not enumerable, as a class writes them). */
function classed(getters: Record<string, () => unknown>, methods: Record<string, () => unknown> = {}): object {
  class Options {}
  for (const [key, get] of Object.entries(getters)) Object.defineProperty(Options.prototype, key, { get });
  for (const [key, value] of Object.entries(methods)) Object.defineProperty(Options.prototype, key, { value });
  return new Options();
}

function ownStore(onConfigure: (policy: ResolvedBreakerPolicy) => void): BreakerStore & { keys: string[] } {
  const keys: string[] = [];
  return {
    name: "own",
    keys,
    publish: (key) => void keys.push(key),
    peek: (key) => void keys.push(key),
    configure: (policy) => onConfigure(policy),
  };
}

describe("configure gets the thresholds alone", () => {
  it("stores that clone, post, freeze or read every key get the 8 resolved numbers; isFailure and key still apply", async () => {
    const got: ResolvedBreakerPolicy[] = [];
    const channel = new BroadcastChannel("recheck3");
    const stores = [
      ownStore((p) => void got.push(structuredClone(p))),
      ownStore((p) => channel.postMessage(p)),
      ownStore((p) => void got.push(Object.freeze(p))),
      ownStore((p) => {
        for (const key of Reflect.ownKeys(p))
          expect(typeof (p as unknown as Record<PropertyKey, unknown>)[key]).toBe("number");
        got.push(p);
      }),
    ];
    const judged: unknown[] = [];
    try {
      for (const store of stores) {
        const layer = createResilience({
          store,
          retry: { maxAttempts: 1 },
          breaker: {
            failureThreshold: 2,
            maxHosts: 7,
            key: () => "shared-key",
            isFailure: (error) => {
              judged.push(error);
              return true;
            },
          },
        });
        up.on((hit) => {
          hit.res.statusCode = 503;
          hit.res.end();
        });
        const before = up.hits.length;
        await layer.fetch(up.base);
        await layer.fetch(up.base);
        // Tripped at 2: the third never reaches the server.
        expect((await rejection(layer.fetch(up.base))) as Error).toHaveProperty("name", "CircuitOpenError");
        expect(up.hits.length - before).toBe(2);
        expect(store.keys).toContain("shared-key");
        expect(store.keys.every((key) => key === "shared-key")).toBe(true);
      }
    } finally {
      channel.close();
    }
    expect(got).toHaveLength(3);
    for (const policy of got) {
      expect(Object.keys(policy).sort()).toEqual(POLICY_KEYS);
      expect(policy).toMatchObject({ failureThreshold: 2, successThreshold: 2, failureRate: 0.5, minimumCalls: 100 });
    }
    // A thrown error is still judged by isFailure: a refused connection.
    const layer = createResilience({
      store: ownStore(() => {}),
      retry: { maxAttempts: 1 },
      breaker: { isFailure: (error) => void judged.push(error) === undefined },
    });
    const count = judged.length;
    await rejection(layer.fetch("http://127.0.0.1:1/"));
    expect(judged.length).toBeGreaterThan(count);
  });

  it("kvStore keys its reads by the layer's `key` after configure", async () => {
    const kv = fakeKv();
    const layer = createResilience({
      store: kvStore(kv),
      retry: { maxAttempts: 1 },
      breaker: { key: () => "by-key", isFailure: () => true },
    });
    expect((await layer.fetch(up.base)).status).toBe(200);
    await settle();
    expect(kv.reads).toEqual(["cb:v1:default:by-key"]);
  });

  it("two layers on one Durable Object: failureThreshold 2 trips the object after one failure from each", async () => {
    up.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end();
    });
    for (const [threshold, tripped] of [
      [2, true],
      [3, false],
    ] as const) {
      const clock = new TestClock(1_000_000);
      const { ns, sent } = fakeNamespace(clock);
      const layer = () =>
        createResilience({
          clock,
          retry: { maxAttempts: 1 },
          store: durableObjectStore(ns, { flushThreshold: 1, verdictTtl: 0 }),
          breaker: { failureThreshold: threshold, isFailure: () => true, key: () => "one-host" },
        });
      const [a, b] = [layer(), layer()];
      const before = up.hits.length;
      expect((await a.fetch(up.base)).status).toBe(503);
      await settle();
      expect((await b.fetch(up.base)).status).toBe(503);
      await settle();
      const third = await b.fetch(up.base).then(
        (response) => response.status,
        (error: Error) => error.name,
      );
      expect(third).toBe(tripped ? "CircuitOpenError" : 503);
      expect(up.hits.length - before).toBe(tripped ? 2 : 3);
      for (const { body } of sent) {
        expect(Object.keys(body.policy).sort()).toEqual(POLICY_KEYS);
        expect(body.policy.failureThreshold).toBe(threshold);
      }
    }
  });
});

const kv = fakeKv();
const { ns } = fakeNamespace();
const makers: Record<string, [(options: object) => unknown, string[]]> = {
  memoryStore: [(o) => memoryStore(o as never), ["maxKeys"]],
  kvStore: [
    (o) => kvStore(kv, o as never),
    ["ctx", "scope", "minPublishInterval", "refreshInterval", "publishJitter", "writeBudget", "clock", "random"],
  ],
  durableObjectStore: [
    (o) => durableObjectStore(ns, o as never),
    ["ctx", "scope", "flushInterval", "flushThreshold", "verdictTtl", "timeout", "policy", "clock"],
  ],
};

describe("store options: null refused, undefined the default, hidden keys and getters read", () => {
  for (const [store, [make, options]] of Object.entries(makers)) {
    it(`${store}: every option`, () => {
      for (const option of options) {
        const named = (error: unknown) => {
          expect(error).toBeInstanceOf(TypeError);
          expect(message(error)).toContain(store);
          expect(message(error)).toContain(option);
        };
        named(thrown(() => make({ [option]: null })));
        expect(() => make({ [option]: undefined })).not.toThrow();
        const hidden = {};
        Object.defineProperty(hidden, option, { value: null, enumerable: false });
        named(thrown(() => make(hidden)));
        let reads = 0;
        class WithGetter {}
        Object.defineProperty(WithGetter.prototype, option, {
          get: () => {
            reads++;
            return null;
          },
        });
        named(thrown(() => make(new WithGetter())));
        expect(reads).toBe(1);
        named(
          thrown(() =>
            make(
              Object.defineProperty({}, option, {
                enumerable: true,
                get: () => {
                  throw new Error("x");
                },
              }),
            ),
          ),
        );
      }
    });
  }

  it("durableObjectStore: every numeric policy key given null is refused naming it", () => {
    for (const key of POLICY_KEYS.filter((k) => k !== "failureRate")) {
      expect(message(thrown(() => durableObjectStore(ns, { policy: { [key]: null } as never })))).toContain(
        `policy.${key}`,
      );
      expect(() => durableObjectStore(ns, { policy: { [key]: undefined } })).not.toThrow();
    }
  });

  it("durableObjectStore: failureRate undefined turns the rate rule off; left out it is 0.5", async () => {
    const rates: unknown[] = [];
    for (const policy of [{ failureRate: undefined }, {}, { failureRate: 0.25 }]) {
      const clock = new TestClock(0);
      const { ns: own, sent } = fakeNamespace(clock);
      const layer = createResilience({ clock, retry: { maxAttempts: 1 }, store: durableObjectStore(own, { policy }) });
      await layer.fetch(up.base);
      await settle();
      rates.push(sent[0]?.body.policy.failureRate);
    }
    expect(rates).toEqual([null, 0.5, 0.25]);
  });

  it("defect 1: durableObjectStore refuses policy.failureRate null, as breaker.failureRate null is refused", () => {
    expect(message(thrown(() => createResilience({ breaker: { failureRate: null as never } })))).toContain(
      "breaker.failureRate",
    );
    const error = thrown(() => durableObjectStore(ns, { policy: { failureRate: null as never } }));
    expect(message(error)).toContain("policy.failureRate");
  });
});

describe("a BigInt is shown as `a bigint`", () => {
  const big = 987654321n as never;
  const shown = (error: unknown) => {
    expect(message(error)).toContain("a bigint");
    expect(message(error)).not.toContain("987654321");
  };
  it("in createResilience, createClient, the stores, the kit and a clock reading", async () => {
    shown(thrown(() => createResilience({ retry: { maxAttempts: big } })));
    shown(thrown(() => createResilience(classed({ breaker: () => ({ failureThreshold: big }) }) as never)));
    shown(thrown(() => createClient({ resilience: { timeout: { attempt: big } } })));
    shown(thrown(() => memoryStore({ maxKeys: big })));
    shown(thrown(() => kvStore(kv, { writeBudget: big })));
    shown(thrown(() => durableObjectStore(ns, { timeout: big })));
    shown(thrown(() => new TestClock(big)));
    shown(await rejection(Promise.resolve().then(() => new TestClock(0).advance(big))));
    shown(thrown(() => latency(big, status(200))));
    shown(thrown(() => status(503, { retryAfter: big })));
    const clock = { now: () => big, setTimer: (_fn: () => void, _ms: number) => () => {} };
    shown(thrown(() => createResilience({ clock })));
    // kvStore reads its clock when made (the day of its write budget).
    shown(thrown(() => kvStore(kv, { clock })));
  });
});

const given = () =>
  classed({
    headers: () => ({ "x-a": "1" }),
    hooks: () => ({ beforeRequest: [({ request }: { request: Request }) => void request.headers.set("x-hook", "y")] }),
    searchParams: () => ({ q: "1" }),
    json: () => ({ a: 1 }),
    prefix: () => `${up.base}/p`,
  });
const throwing = () => {
  throw new Error("getter boom");
};
/** What `run` settles with: "sent", or the error it threw or rejected with. */
const outcome = (run: () => unknown): Promise<unknown> =>
  Promise.resolve()
    .then(run)
    .then(
      () => "sent",
      (error: unknown) => error,
    );

describe("ky: options written as a class instance", () => {
  const api = createClient({ resilience: { retry: { maxAttempts: 1 } } });
  const url = () => `${up.base}/x`;
  const sent = () => {
    const hit = up.hits.at(-1);
    return hit && `${hit.method} ${hit.path} a=${hit.headers["x-a"]} hook=${hit.headers["x-hook"]} body=${hit.body}`;
  };
  const ways = (options: () => object) =>
    ({
      call: () => api.post(url(), options() as never),
      extend: () => api.extend(options() as never).post(url()),
      extendFn: () => api.extend(() => options() as never).post(url()),
      create: () => api.create(options() as never).post(url()),
      createClient: () =>
        createClient(Object.assign(options(), { resilience: { retry: { maxAttempts: 1 } } }) as never).post(url()),
    }) as Record<string, () => Promise<unknown>>;

  it("headers and hooks getters reach the server on every way, as plain ky sends the same instance", async () => {
    await ky.post(url(), given() as never);
    const plain = sent();
    expect(plain).toBe("POST /x a=1 hook=y body=");
    for (const [way, run] of Object.entries(ways(given))) {
      await run();
      expect([way, sent()]).toEqual([way, plain]);
    }
  });

  it("a getter that throws: the getter's own error on a call, extend, create; nothing sent", () => {
    const throws = () => classed({ headers: throwing }) as never;
    for (const run of [() => api.get(url(), throws()), () => api.extend(throws()), () => api.create(throws())])
      expect(message(thrown(run))).toBe("Error: getter boom");
    expect(message(thrown(() => createClient(throws())))).toMatch(/^ConfigError/);
    expect(up.hits).toHaveLength(0);
  });

  it("defect 2: createClient names a class getter that throws by its path, as an own getter's", () => {
    const own = Object.defineProperty({}, "headers", { get: throwing, enumerable: true });
    expect(thrown(() => createClient(own))).toHaveProperty("path", "headers");
    expect(thrown(() => createClient(classed({ headers: throwing }) as never))).toHaveProperty("path", "headers");
  });

  it("a getter alternating a good and a CR/LF header: what is sent is what was checked, never quoted", async () => {
    let reads = 0;
    const alternating = () => classed({ headers: () => ({ "x-a": ++reads % 2 ? "fine" : "sec\r\nret" }) });
    for (const [way, run] of Object.entries(ways(alternating))) {
      for (const start of [0, 1]) {
        reads = start;
        const count = up.hits.length;
        const result = await outcome(run);
        if (result === "sent") expect([way, up.hits.at(-1)?.headers["x-a"]]).toEqual([way, "fine"]);
        else {
          expect([way, message(result), up.hits.length]).toEqual([way, expect.stringContaining('"x-a"'), count]);
          expect(message(result)).not.toContain("sec");
        }
      }
    }
  });

  it("methods named like ky options are ignored as in plain ky; retry, fetch, resilence and an init setting retry refused", async () => {
    const one = () => 1;
    const methods = () => classed({}, { headers: () => ({ "x-a": "m" }), hooks: one, json: one, timeout: one });
    await ky.post(url(), methods() as never);
    expect(sent()).toBe("POST /x a=undefined hook=undefined body=");
    for (const [way, run] of Object.entries(ways(methods))) {
      await run();
      expect([way, sent()]).toEqual([way, "POST /x a=undefined hook=undefined body="]);
    }
    up.reset();
    const setsRetry = (options: Record<string, unknown>) => void Object.assign(options, { retry: 3 });
    for (const [label, make, path] of [
      ["retry getter", () => classed({ retry: () => 2 }), "retry"],
      ["fetch method", () => classed({}, { fetch: one }), "fetch"],
      ["resilence getter", () => classed({ resilence: () => ({}) }), "resilence"],
      ["init hook", () => classed({ hooks: () => ({ init: [setsRetry] }) }), "retry"],
    ] as const) {
      for (const [way, run] of Object.entries(ways(make))) {
        const error = await outcome(run);
        expect([label, way, (error as Error)?.name, (error as { path?: string })?.path]).toEqual([
          label,
          way,
          "ConfigError",
          path,
        ]);
      }
    }
    expect(up.hits).toHaveLength(0);
  });
});
