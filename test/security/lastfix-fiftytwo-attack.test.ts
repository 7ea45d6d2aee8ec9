/**
 * Outside-in attack on the newest fixes on main (CHANGELOG.md, the top entry under the first "### Fixed": unknown
 * options looked for among every name an options object answers to, by every constructor; a Standard Schema written
 * as a plain object kept as given), and on the `validate` fix below it through ky and `resilientProxy`.
 *
 * Docs:
 * - docs/options.md: "unknown keys are an error too, so a typo never silently does nothing: options are read by
 *   name, so a key defined not enumerable and a class's getter are read, and checked, as a plain key is."
 * - docs/options.md: "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and `resilientProxy`
 *   check their options when they are made and keep what they read then, so an edit to your objects afterwards
 *   changes nothing (plain objects and arrays are copied; functions, clocks, schemas, a Standard Schema written as a
 *   plain object included, and other objects are kept as given)." "A plain object is copied by the keys it lists: a
 *   `Proxy` that answers names it does not list (through its `get` trap alone) is checked as it answers but copied
 *   without them".
 * - CHANGELOG.md: "Every name an options object answers to is checked now, so such a typo is refused as a plain one
 *   is (an object of a built-in class, a `Map` as `retry`, is refused too, where it was taken as `{}`)." "A Standard
 *   Schema written as a plain object (a chain's `validate`) … is kept as given, as the docs say." "A `validate`
 *   schema that threw or rejected with a value that cannot become text … So did a schema's result that throws when
 *   looked at … The body fails as for any thrown error now, named as "a thrown value that cannot be read" (or "a
 *   result that cannot be read")."
 * - docs/fallback.md: "So does a 2xx that fails `validate`: the endpoint took the job, and the call resolves with
 *   that answer as it is"; "An endpoint is left for the next one on … a 2xx whose JSON fails `validate`".
 *
 * How: `createResilience`, `ConfigError` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` with `extend`/`create` (./ky), `resilientProxy`, `kvStore`, `durableObjectStore` (./cloudflare),
 * `retry`, `CircuitBreaker`, `FallbackChain` (./policies), `TestClock`, `recordEvents` (./testing). Two node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts); fake KV and Durable Object namespaces (construction only);
 * options rebuilt in nine forms, all the way down: `JSON.parse`, `structuredClone`, `Object.create(null)`, a
 * `node:vm` realm's objects and arrays, deep-frozen, class instances (a class extending a base) with getters, a Symbol
 * key beside each object's keys, half the keys on a plain prototype object, keys defined not enumerable.
 *
 * Paths: plain call, fallback chain (GET, keyless POST, `validate`), hedged chain, degradation, ky client (instance,
 * `extend`, `create`), `resilientProxy` (upstream route, chain route, `resilience`), `execute`, named breakers, the
 * policies and stores on their own.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-second session, so plain
 * `it`):
 * 1. docs/options.md "unknown keys are an error too, so a typo never silently does nothing". Observed: an options
 *    object with an own key `isPrototypeOf` (a JSON config, `JSON.parse('{"maxAttemps":1,"isPrototypeOf":0}')`) has
 *    every unknown key beside it taken without a word, by every constructor: `createResilience`, `createClient({
 *    resilience })`, `resilientProxy({ resilience })` (a 500 sent 3 times, the default, where the same typo alone is
 *    `retry: unknown option "maxAttemps"`), the ky client's `resilence`, a proxy route's `headers`, `retry(fn)`,
 *    `execute`, `breaker(name)`, `CircuitBreaker`, `FallbackChain` and its `add`, a chain's endpoint and `hedge`,
 *    `degradation({…})`, `kvStore` and `durableObjectStore`; so is a typo beside one on a plain prototype object
 *    (`Object.create({ isPrototypeOf: 0, maxAttemps: 1 })`). Cause:
 *    src/core/options/option-keys.ts stops its walk at the first object with an own `isPrototypeOf` (meant for a
 *    realm's `Object.prototype`), the options object itself included, so it lists no names at all; the `for…in` it
 *    replaced listed them (a regression of this fix).
 * 2. docs/options.md "plain objects and arrays are copied; … a Standard Schema written as a plain object included,
 *    … kept as given". Observed: a chain endpoint's `headers` record holding a header named `~standard` (an HTTP
 *    token) is kept as given by `fallback([…])` and by `resilientProxy`'s route chain: `x-key` edited after the
 *    call goes out edited ("new", not "old"). Cause: src/core/plain-copy.ts keeps any plain object `"~standard" in`,
 *    a schema or not.
 * 3. The same sentence, the ky client: a `searchParams` record with a `~standard` key is kept by reference, so
 *    `page` edited after `createClient` is sent edited (`?%7Estandard=v1&page=2`).
 *
 * Held (plain `it`):
 * - Legitimate options in each of the nine forms are taken by all 16 ways in (root, ky instance/`extend`/`create`,
 *   proxy routes and resilience, `retry(fn)`, `execute`, `breaker`, `CircuitBreaker`, `FallbackChain`, `add`,
 *   `fallback([…])` with `hedge` and `headers`, `degradation({…})`, `kvStore`, `durableObjectStore`), and honoured at
 *   a real server (`maxAttempts: 1`: one request on root, ky and proxy, each form).
 * - A typo in each form (a getter of the class, a hidden key, one on the prototype, in another realm, …) is refused
 *   naming its path by every constructor (`ConfigError`, or the documented `TypeError` for `add` and the stores).
 * - ky's own options of other shapes (`hooks`, `headers` as `Headers`, `searchParams` as `URLSearchParams`, a class
 *   instance as `json`) on `createClient`, `extend` and `create`: taken and sent as given.
 * - A `Map` where options belong is refused naming its path on every way in (`retry`, `resilience.retry`,
 *   `execute.retry`, `breaker("n")`, `kvStore`).
 * - A plain-object Standard Schema is kept as given in a chain and a proxy route chain (its `this` is the caller's:
 *   state it keeps moves, an edit of it afterwards takes effect); the rest of the chain is still copied (url,
 *   headers, endpoints list, names edited afterwards change nothing).
 * - `validate` rejecting a null-prototype object, answering an issue whose `path` is a revoked Proxy or whose
 *   `issues` getter throws, or answering a revoked Proxy: a GET moves on, a keyless POST keeps its 200, through the
 *   ky client (reasons "invalid body: validate failed (a thrown value that cannot be read)", "invalid body: validate
 *   gave a result that cannot be read") and a `resilientProxy` chain route.
 *
 * Docs-silent (not pinned):
 * - Refusals of a built-in object list its class's method names as unknown options: a `Map` as `retry` reads
 *   `retry: unknown options "get", "set", "has", "delete", "clear", "entries", "forEach", "keys", "size", "values"`
 *   (`retry(fn, new Map())`: `unknown option "get"`), a `Date` as `timeout` 46 names; never what was given.
 * - A chain's `hedge` given as a get-trap Proxy passes the check (its `delay` read by name) and is copied as `{}`:
 *   the chain then never hedges, without a word (the doc's sentence names only degradation's and a chain's fate).
 * - A `validate` whose whole result is a revoked Proxy fails the body with the platform's words ("invalid body:
 *   validate failed (TypeError: Cannot perform 'get' on a proxy that has been revoked)"), not "a result that cannot
 *   be read" (the CHANGELOG's example is a revoked Proxy in an issue's path); the answer is kept all the same.
 * - A get-trap Proxy with a typo (`retry: lazy({ maxAttemps: 1 })`) is taken: it lists no names to check.
 * - Options given as an object whose prototype is a plain options object are no plain object to the copy: a chain so
 *   written is kept as given (its endpoint's `url` edited afterwards sends the call there); ky's own options inherited
 *   so (`headers`) are dropped by `createClient`, which hands ky own keys only.
 */
import vm from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { durableObjectStore, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type StandardSchemaLike } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain, retry } from "../../src/policies/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { failOnUnhandledRejections } from "../helpers/unhandled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

// Every rejection left unhandled fails the test that left it.
failOnUnhandledRejections();
const held: Hit[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) hit.res.end("late");
});

const ctx = { waitUntil() {}, passThroughOnException() {} };
const status =
  (code: number, body = `{"status":${code}}`) =>
  (hit: Hit): void => {
    hit.res.writeHead(code, { "content-type": "application/json" }).end(body);
  };

/** How a construction (or a call) ended: "taken", or the error's class and message. */
async function outcome(run: () => unknown): Promise<string> {
  try {
    await run();
    return "taken";
  } catch (error) {
    return error instanceof ConfigError ? `ConfigError ${error.message}` : `${(error as Error).name}: ${String(error)}`;
  }
}

// ---------------------------------------------------------------------------
// Nine forms of one options object, applied all the way down (a header record stays a plain record).

type O = Record<string, unknown>;
const isLiteral = (v: unknown): v is O =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const RECORDS = new Set(["headers"]);

function deep(v: unknown, obj: (o: O) => unknown, arr: (a: unknown[]) => unknown = (a) => a, key?: string): unknown {
  if (Array.isArray(v)) return arr(v.map((x) => deep(x, obj, arr)));
  if (!isLiteral(v) || (key !== undefined && RECORDS.has(key))) return v;
  const inner: O = {};
  for (const [k, x] of Object.entries(v)) inner[k] = deep(x, obj, arr, k);
  return obj(inner);
}

const realm = vm.createContext({});
class Base {}
const forms: Record<string, (o: O) => unknown> = {
  json: (o) => JSON.parse(JSON.stringify(o)),
  structuredClone: (o) => structuredClone(o),
  nullProto: (o) => deep(o, (x) => Object.assign(Object.create(null), x)),
  vm: (o) =>
    deep(
      o,
      (x) => Object.assign(vm.runInContext("({})", realm), x),
      (a) => {
        const list = vm.runInContext("[]", realm) as unknown[];
        list.push(...a);
        return list;
      },
    ),
  frozen: (o) =>
    deep(
      o,
      (x) => Object.freeze(x),
      (a) => Object.freeze(a),
    ),
  classGetters: (o) =>
    deep(o, (x) => {
      class Options extends Base {}
      for (const [k, value] of Object.entries(x))
        Object.defineProperty(Options.prototype, k, { get: () => value, configurable: true });
      return new Options();
    }),
  symbols: (o) => deep(o, (x) => Object.assign(x, { [Symbol("note")]: 1 })),
  protoChain: (o) =>
    deep(o, (x) => {
      const keys = Object.keys(x);
      const half = Math.ceil(keys.length / 2);
      const parent: O = {};
      for (const k of keys.slice(0, half)) parent[k] = x[k];
      const child = Object.create(parent) as O;
      for (const k of keys.slice(half)) child[k] = x[k];
      return child;
    }),
  hidden: (o) =>
    deep(o, (x) => {
      const y = {};
      for (const [k, value] of Object.entries(x)) Object.defineProperty(y, k, { value, enumerable: false });
      return y;
    }),
};

const NOWHERE = "http://127.0.0.1:9/";
const kvNs = { getWithMetadata: async () => ({ value: null, metadata: null }), put: async () => {} };
const doNs = { idFromName: () => ({}), get: () => ({ fetch: async () => new Response("{}") }) };
const layerOptions = {
  retry: { maxAttempts: 2, jitter: "none", retryOn: { statuses: [500], methods: ["GET"] } },
  timeout: { attempt: 1000 },
  breaker: { failureThreshold: 3 },
  bulkhead: { maxConcurrent: 2, maxQueue: 1 },
  budget: { ratio: 0.5 },
  crossOriginHeaders: ["x-a"],
};
const policy = {
  failureThreshold: 1,
  successThreshold: 1,
  timeout: 1000,
  halfOpenMaxCalls: 1,
  timeWindow: 1000,
  probeTimeout: 1000,
  minimumCalls: 10,
  failureRate: 0.5,
};
// biome-ignore lint/suspicious/noExplicitAny: each way in takes its own options type; the forms erase it.
type Make = (x: any) => unknown;

const legit: Record<string, [O, Make]> = {
  createResilience: [layerOptions, (x) => createResilience(x)],
  createClient: [{ resilience: layerOptions, timeout: 1000, headers: { "x-a": "1" } }, (x) => createClient(x)],
  clientExtend: [{ headers: { "x-a": "1" }, timeout: 1000 }, (x) => createClient().extend(x)],
  clientCreate: [{ headers: { "x-a": "1" }, timeout: 1000 }, (x) => createClient().create(x)],
  resilientProxy: [
    {
      routes: [
        { path: "/a", upstream: NOWHERE },
        { path: "/b", chain: { name: "c", endpoints: [{ name: "e", url: NOWHERE }] } },
      ],
      resilience: layerOptions,
      healthPath: "/h",
    },
    (x) => resilientProxy(x),
  ],
  retryFn: [{ maxAttempts: 1, initialDelay: 0, jitter: "none", retryOn: {} }, (x) => retry(async () => 1, x)],
  execute: [{ retry: { maxAttempts: 1 }, breaker: "n" }, (x) => createResilience().execute(async () => 1, x)],
  breaker: [{ failureThreshold: 2, timeout: 10 }, (x) => createResilience().breaker("n", x)],
  CircuitBreaker: [policy, (x) => new CircuitBreaker("k", x, new TestClock(0))],
  FallbackChain: [{ order: "adaptive" }, (x) => new FallbackChain("x", x)],
  add: [{ name: "a", expectedQuality: 0.5 }, (x) => new FallbackChain("x").add(async () => 1, x)],
  fallback: [
    {
      list: [
        {
          name: "c",
          order: "fixed",
          hedge: { delay: 10 },
          endpoints: [
            { name: "e", url: NOWHERE, headers: { "x-a": "1" }, expectedQuality: 0.9 },
            { name: "f", url: NOWHERE },
          ],
        },
      ],
    },
    (x) => createResilience({ fallback: fallback(x.list) }),
  ],
  degradation: [
    {
      levels: { low: { percentage: 50, features: ["a"] } },
      triggers: { errorRate: 0.5 },
      rules: [{ match: NOWHERE, params: { model: { query: "model" }, quality: "q" } }],
      minSamples: 5,
    },
    (x) => createResilience({ degradation: degradation(x) }),
  ],
  kvStore: [{ scope: "s", minPublishInterval: 5000 }, (x) => kvStore(kvNs as never, x)],
  durableObjectStore: [{ scope: "s", flushInterval: 10 }, (x) => durableObjectStore(doNs as never, x)],
};

/** Each way in with a typo somewhere in its options, and the words that must name it. */
const typos: Record<string, [O, Make, string]> = {
  createResilience: [
    { ...layerOptions, retry: { maxAttempts: 2, retryOn: { statusses: [500] } } },
    (x) => createResilience(x),
    'ConfigError retry.retryOn: unknown option "statusses"',
  ],
  createClient: [
    { resilience: { retry: { maxAttemps: 1 } }, timeout: 1000 },
    (x) => createClient(x),
    'ConfigError resilience.retry: unknown option "maxAttemps"',
  ],
  "createClient resilence": [
    { resilence: { retry: { maxAttempts: 1 } }, timeout: 1000 },
    (x) => createClient(x),
    'ConfigError resilence: unknown option "resilence", did you mean "resilience"?',
  ],
  "proxy route": [
    { routes: [{ path: "/a", upstream: NOWHERE, headers: {} }] },
    (x) => resilientProxy(x),
    'ConfigError routes.0: unknown option "headers"',
  ],
  "proxy resilience": [
    { routes: [{ path: "/a", upstream: NOWHERE }], resilience: { timeout: { atempt: 5 } } },
    (x) => resilientProxy(x),
    'ConfigError resilience.timeout: unknown option "atempt"',
  ],
  "proxy chain": [
    { routes: [{ path: "/a", chain: { name: "c", endpoints: [{ name: "e", url: NOWHERE, expectedQualty: 1 }] } }] },
    (x) => resilientProxy(x),
    'ConfigError routes.0.chain.endpoints.0: unknown option "expectedQualty"',
  ],
  retryFn: [
    { maxAttempts: 1, retryOn: { statuses: [500] } },
    (x) => retry(async () => 1, x),
    'ConfigError retry.retryOn: unknown option "statuses"',
  ],
  execute: [
    { retry: { maxAttemps: 1 } },
    (x) => createResilience().execute(async () => 1, x),
    'ConfigError execute.retry: unknown option "maxAttemps"',
  ],
  breaker: [
    { failureTreshold: 2 },
    (x) => createResilience().breaker("n", x),
    'ConfigError breaker("n"): unknown option "failureTreshold"',
  ],
  CircuitBreaker: [
    { ...policy, probeTimout: 5 },
    (x) => new CircuitBreaker("k", x, new TestClock(0)),
    'ConfigError CircuitBreaker: unknown option "probeTimout"',
  ],
  FallbackChain: [
    { ordr: "adaptive" },
    (x) => new FallbackChain("x", x),
    'ConfigError FallbackChain: unknown option "ordr"',
  ],
  add: [
    { name: "a", expectedQualty: 0.5 },
    (x) => new FallbackChain("x").add(async () => 1, x),
    'TypeError: TypeError: fallbackChain("x").add: unknown option "expectedQualty"',
  ],
  fallback: [
    { list: [{ name: "c", hedge: { delay: 10, dealy: 1 }, endpoints: [{ name: "e", url: NOWHERE }] }] },
    (x) => fallback(x.list),
    'ConfigError fallback.0.hedge: unknown option "dealy"',
  ],
  degradation: [
    { levels: { low: { percentag: 50 } } },
    (x) => degradation(x),
    'ConfigError degradation.levels.low: unknown option "percentag"',
  ],
  kvStore: [
    { scope: "s", writeBudgt: 1 },
    (x) => kvStore(kvNs as never, x),
    'TypeError: TypeError: kvStore: unknown option "writeBudgt"',
  ],
  durableObjectStore: [
    { scope: "s", flushIntervall: 10 },
    (x) => durableObjectStore(doNs as never, x),
    'TypeError: TypeError: durableObjectStore: unknown option "flushIntervall"',
  ],
};

describe("(a) unknown options are looked for among every name an options object answers to", () => {
  it("held: legitimate options in nine forms are taken by every way in", async () => {
    const refused: string[] = [];
    for (const [way, [options, make]] of Object.entries(legit))
      for (const [form, shape] of Object.entries(forms)) {
        const result = await outcome(() => make(shape(options)));
        if (result !== "taken") refused.push(`${way} ${form}: ${result}`);
      }
    expect(refused).toEqual([]);
  });

  it("held: options taken in each form are honoured at a real server (root, ky, proxy)", async () => {
    const ways: Record<string, (options: unknown) => () => Promise<unknown>> = {
      createResilience: (options) => {
        const layer = createResilience(options as never);
        return () => layer.fetch(`${A.base}/r`).then((r) => r.arrayBuffer());
      },
      createClient: (options) => {
        const api = createClient({ resilience: options as never });
        return () => api.get(`${A.base}/r`, { throwHttpErrors: false }).then((r) => r.arrayBuffer());
      },
      resilientProxy: (options) => {
        const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: options as never });
        return () => proxy.fetch(new Request("https://worker.example/r"), {}, ctx).then((r) => r.arrayBuffer());
      },
    };
    const sent: string[] = [];
    for (const [way, make] of Object.entries(ways))
      for (const [form, shape] of Object.entries(forms)) {
        A.reset();
        A.on(status(500));
        // Not honoured, the default 3 attempts would show (after real waits of at most 1.5 s).
        await make(shape({ retry: { maxAttempts: 1 }, timeout: { attempt: 5000 } }))();
        sent.push(`${way} ${form}: ${A.hits.length}`);
      }
    expect(sent.filter((line) => !line.endsWith(": 1"))).toEqual([]);
    expect(sent).toHaveLength(27);
  });

  it("held: a typo in each form is refused, naming its path, by every way in", async () => {
    const wrong: string[] = [];
    for (const [way, [options, make, words]] of Object.entries(typos))
      for (const [form, shape] of Object.entries(forms)) {
        const result = await outcome(() => make(shape(options)));
        // The stores go on with the names they know (`expected one of …`).
        if (!result.startsWith(words)) wrong.push(`${way} ${form}: ${result}`);
      }
    expect(wrong).toEqual([]);
  });

  it("defect 1: an own `isPrototypeOf` key makes the layer take a typo (root, ky, proxy: 3 requests)", async () => {
    // A JSON config; `random: () => 0` so that the default retries a taken typo leaves run without waiting.
    const config = () => ({ ...JSON.parse('{"retry":{"maxAttemps":1,"isPrototypeOf":0}}'), random: () => 0 });
    const ways: Record<string, () => () => Promise<unknown>> = {
      createResilience: () => {
        const layer = createResilience(config());
        return () => layer.fetch(`${A.base}/r`).then((r) => r.arrayBuffer());
      },
      createClient: () => {
        const api = createClient({ resilience: config() });
        return () => api.get(`${A.base}/r`, { throwHttpErrors: false }).then((r) => r.arrayBuffer());
      },
      resilientProxy: () => {
        const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: config() });
        return () => proxy.fetch(new Request("https://worker.example/r"), {}, ctx).then((r) => r.arrayBuffer());
      },
    };
    const seen: Record<string, string> = {};
    for (const [way, make] of Object.entries(ways)) {
      A.reset();
      A.on(status(500));
      seen[way] = await outcome(async () => {
        await make()();
        throw new Error(`taken, ${A.hits.length} requests`);
      });
    }
    expect(seen).toEqual({
      createResilience: 'ConfigError retry: unknown options "maxAttemps", "isPrototypeOf"',
      createClient: 'ConfigError resilience.retry: unknown options "maxAttemps", "isPrototypeOf"',
      resilientProxy: 'ConfigError resilience.retry: unknown options "maxAttemps", "isPrototypeOf"',
    });
  });

  it("defect 1: an own (or inherited) `isPrototypeOf` key hides a typo from every other way in", async () => {
    const withKey = (o: O): O => ({ ...o, isPrototypeOf: 0 });
    const seen: Record<string, boolean> = {};
    for (const [way, [options, make, words]] of Object.entries(typos)) {
      // The object holding the typo gets the key beside it (or, for the nested ones, on its prototype too).
      const given = JSON.parse(JSON.stringify(options), (_key, value) =>
        isLiteral(value) && Object.keys(value).some((k) => words.includes(`"${k}"`)) ? withKey(value) : value,
      );
      const result = await outcome(() => make(given));
      seen[way] = result.includes(words.slice(words.indexOf("unknown option") + 15));
    }
    // Inherited: the typo and `isPrototypeOf` on a plain prototype object (the typo alone there is refused).
    const inherited = Object.assign(Object.create({ isPrototypeOf: 0, maxAttemps: 1 }), { initialDelay: 0 });
    seen.inherited = (await outcome(() => createResilience({ retry: inherited }))).includes('"maxAttemps"');
    expect(Object.entries(seen).filter(([, refused]) => !refused)).toEqual([]);
  });

  it("held: ky's own options of other shapes are taken by createClient, extend and create, and sent as given", async () => {
    A.on(status(200));
    class Payload {
      readonly prompt: string;
      readonly n: number;
      constructor(prompt: string, n: number) {
        this.prompt = prompt;
        this.n = n;
      }
    }
    const shaped = (tag: string) => ({
      headers: new Headers({ [`x-${tag}`]: tag }),
      searchParams: new URLSearchParams({ [tag]: "1" }),
      hooks: {
        beforeRequest: [
          ({ request }: { request: Request }) => {
            request.headers.set(`x-hook-${tag}`, "1");
          },
        ],
      },
    });
    const api = createClient({ resilience: { retry: false }, ...shaped("c") });
    const clients = { createClient: api, extend: api.extend(shaped("e")), create: api.create(shaped("r")) };
    const got: Record<string, unknown> = {};
    for (const [way, client] of Object.entries(clients)) {
      A.reset();
      A.on(status(200));
      await client.post(`${A.base}/p`, { json: new Payload("a cat", 2) }).arrayBuffer();
      const hit = A.hits[0] as Hit;
      got[way] = {
        path: hit.path,
        body: hit.body,
        headers: Object.keys(hit.headers)
          .filter((k) => k.startsWith("x-"))
          .sort(),
      };
    }
    expect(got).toEqual({
      createClient: { path: "/p?c=1", body: '{"prompt":"a cat","n":2}', headers: ["x-c", "x-hook-c"] },
      extend: {
        path: "/p?c=1&e=1",
        body: '{"prompt":"a cat","n":2}',
        headers: ["x-c", "x-e", "x-hook-c", "x-hook-e"],
      },
      create: { path: "/p?r=1", body: '{"prompt":"a cat","n":2}', headers: ["x-hook-r", "x-r"] },
    });
  });

  it("held: a Map where options belong is refused naming its path on every way in", async () => {
    const map = () => new Map([["maxAttempts", 1]]) as never;
    const names = '"get", "set", "has", "delete", "clear", "entries", "forEach", "keys", "size", "values"';
    expect({
      root: await outcome(() => createResilience({ retry: map() })),
      ky: await outcome(() => createClient({ resilience: { retry: map() } })),
      proxy: await outcome(() =>
        resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: { retry: map() } }),
      ),
      execute: await outcome(() => createResilience().execute(async () => 1, { retry: map() })),
      breaker: await outcome(() => createResilience().breaker("n", map())),
      retryFn: await outcome(() => retry(async () => 1, map())),
      kvStore: await outcome(() => kvStore(kvNs as never, map())),
    }).toEqual({
      root: `ConfigError retry: unknown options ${names}`,
      ky: `ConfigError resilience.retry: unknown options ${names}`,
      proxy: `ConfigError resilience.retry: unknown options ${names}`,
      execute: `ConfigError execute.retry: unknown options ${names}`,
      breaker: `ConfigError breaker("n"): unknown options ${names}`,
      retryFn: 'ConfigError retry: unknown option "get"',
      kvStore: expect.stringMatching(/^TypeError: TypeError: kvStore: unknown option "get"/),
    });
  });

  it("docs-silent: a chain's `hedge` given as a get-trap Proxy is copied as {}: the chain never hedges", async () => {
    const lazy = (o: O) => new Proxy({}, { get: (_t, k) => o[k as string] });
    const hedged: Record<string, number> = {};
    for (const [name, hedge] of [
      ["plain", { delay: 1000 }],
      ["proxy", lazy({ delay: 1000 })],
    ] as const) {
      A.reset();
      B.reset();
      A.on((hit) => held.push(hit));
      B.on(status(200));
      const clock = new TestClock(1_000_000);
      const layer = createResilience({
        clock,
        retry: false,
        fallback: fallback([
          {
            name: "c",
            hedge: hedge as { delay: number },
            endpoints: [
              { name: "a", url: A.base },
              { name: "b", url: B.base },
            ],
          },
        ]),
      });
      const call = layer.fetch(`${A.base}/x`);
      await A.nth(1);
      await clock.advance(1000);
      await new Promise((resolve) => setTimeout(resolve, 30));
      hedged[name] = B.hits.length;
      for (const hit of held.splice(0)) hit.res.end("late");
      await (await call).arrayBuffer();
    }
    expect(hedged).toEqual({ plain: 1, proxy: 0 });
  });
});

// ---------------------------------------------------------------------------
// (b) A Standard Schema written as a plain object is kept; the rest is copied.

/** A hand-written schema keeping its state in `this` (its `~standard` object): calls counted, a switch to refuse. */
function statefulSchema() {
  const standard = {
    version: 1 as const,
    vendor: "hand",
    calls: 0,
    allow: true,
    validate(this: { calls: number; allow: boolean }, value: unknown) {
      this.calls++;
      return this.allow ? { value } : { issues: [{ message: "refused" }] };
    },
  };
  return { schema: { "~standard": standard } as unknown as StandardSchemaLike, standard };
}

describe("(b) a Standard Schema written as a plain object is kept as given; the rest is copied", () => {
  it("held: kept as given in a fallback chain and a resilientProxy route chain", async () => {
    A.on(status(200, '{"from":"a"}'));
    B.on(status(200, '{"from":"b"}'));
    const seen: Record<string, unknown> = {};
    for (const way of ["fallback", "resilientProxy"] as const) {
      const { schema, standard } = statefulSchema();
      const chain = {
        name: `c-${way}`,
        endpoints: [
          { name: "a", url: A.base, validate: schema },
          { name: "b", url: B.base },
        ],
      };
      let send: () => Promise<string>;
      if (way === "fallback") {
        const layer = createResilience({ retry: false, fallback: fallback([chain]) });
        send = () => layer.fetch(`${A.base}/x`).then((r) => r.text());
      } else {
        const proxy = resilientProxy({ routes: [{ path: "/", chain }], resilience: { retry: false } });
        send = () => proxy.fetch(new Request("https://worker.example/x"), {}, ctx).then((r) => r.text());
      }
      const first = await send();
      const callsAfterFirst = standard.calls;
      standard.allow = false;
      const second = await send();
      seen[way] = [first, callsAfterFirst, second, standard.calls];
    }
    expect(seen).toEqual({
      fallback: ['{"from":"a"}', 1, '{"from":"b"}', 2],
      resilientProxy: ['{"from":"a"}', 1, '{"from":"b"}', 2],
    });
  });

  it("held: the rest of a chain is still copied: url, headers, endpoints and names edited afterwards change nothing", async () => {
    A.on(status(200, '{"from":"a"}'));
    B.on(status(200, '{"from":"b"}'));
    const seen: Record<string, unknown> = {};
    for (const way of ["fallback", "resilientProxy"] as const) {
      A.reset();
      B.reset();
      A.on(status(200, '{"from":"a"}'));
      B.on(status(200, '{"from":"b"}'));
      const { schema } = statefulSchema();
      const headers: Record<string, string> = { "x-key": "old" };
      const endpoints: Array<{ name: string; url: string; headers?: Record<string, string>; validate?: unknown }> = [
        { name: "a", url: A.base, headers, validate: schema },
      ];
      const chain = { name: `c-${way}`, endpoints };
      let send: () => Promise<string>;
      if (way === "fallback") {
        const layer = createResilience({ retry: false, fallback: fallback([chain as never]) });
        send = () => layer.fetch(`${A.base}/x`).then((r) => r.text());
      } else {
        const proxy = resilientProxy({ routes: [{ path: "/", chain: chain as never }], resilience: { retry: false } });
        send = () => proxy.fetch(new Request("https://worker.example/x"), {}, ctx).then((r) => r.text());
      }
      headers["x-key"] = "new";
      (endpoints[0] as { name: string }).name = "renamed";
      (endpoints[0] as { url: string }).url = B.base;
      endpoints.unshift({ name: "z", url: B.base });
      const body = await send();
      seen[way] = [body, A.hits.length, B.hits.length, A.hits[0]?.headers["x-key"]];
    }
    expect(seen).toEqual({
      fallback: ['{"from":"a"}', 1, 0, "old"],
      resilientProxy: ['{"from":"a"}', 1, 0, "old"],
    });
  });

  it("defect 2: an endpoint's headers record with a `~standard` header is kept as given (fallback, proxy)", async () => {
    A.on(status(200));
    const seen: Record<string, unknown> = {};
    for (const way of ["fallback", "resilientProxy"] as const) {
      A.reset();
      A.on(status(200));
      // `~` is a tchar: `~standard` is a header name fetch sends.
      const headers: Record<string, string> = { "~standard": "v1", "x-key": "old" };
      const chain = { name: `h-${way}`, endpoints: [{ name: "a", url: A.base, headers }] };
      let send: () => Promise<unknown>;
      if (way === "fallback") {
        const layer = createResilience({ retry: false, fallback: fallback([chain]) });
        send = () => layer.fetch(`${A.base}/x`).then((r) => r.arrayBuffer());
      } else {
        const proxy = resilientProxy({ routes: [{ path: "/", chain }], resilience: { retry: false } });
        send = () => proxy.fetch(new Request("https://worker.example/x"), {}, ctx).then((r) => r.arrayBuffer());
      }
      headers["x-key"] = "new";
      await send();
      seen[way] = [A.hits[0]?.headers["~standard"], A.hits[0]?.headers["x-key"]];
    }
    expect(seen).toEqual({ fallback: ["v1", "old"], resilientProxy: ["v1", "old"] });
  });

  it("defect 3: the ky client keeps a `searchParams` record with a `~standard` key by reference", async () => {
    A.on(status(200));
    const searchParams: Record<string, string> = { "~standard": "v1", page: "1" };
    const api = createClient({ searchParams, resilience: { retry: false } });
    searchParams.page = "2";
    await api.get(`${A.base}/k`).arrayBuffer();
    expect(A.hits[0]?.path).toBe("/k?%7Estandard=v1&page=1");
  });
});

// ---------------------------------------------------------------------------
// (c) `validate` with what cannot be read, through ky and resilientProxy.

function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

describe("(c) a validate that rejects or answers what cannot be read, through ky and resilientProxy", () => {
  const schemas: Array<[string, () => unknown, string]> = [
    [
      "rejects null-proto",
      () => Promise.reject(Object.create(null)),
      "invalid body: validate failed (a thrown value that cannot be read)",
    ],
    [
      "issue path revoked",
      () => ({ issues: [{ message: "m", path: revoked() }] }),
      "invalid body: validate gave a result that cannot be read",
    ],
    [
      "issues getter throws",
      () => ({
        get issues(): never {
          throw Object.create(null);
        },
      }),
      "invalid body: validate gave a result that cannot be read",
    ],
    // Docs-silent wording: the whole result a revoked Proxy is read by the promise machinery (its `then`) first.
    [
      "answers revoked",
      () => revoked(),
      "invalid body: validate failed (TypeError: Cannot perform 'get' on a proxy that has been revoked)",
    ],
  ];

  it("held: a GET moves on, a keyless POST keeps its 200 (ky with its reason, proxy)", async () => {
    const seen: Record<string, unknown> = {};
    for (const [what, validate, reason] of schemas) {
      const chain = () => ({
        name: "v",
        endpoints: [
          {
            name: "a",
            url: A.base,
            validate: { "~standard": { version: 1, vendor: "t", validate } } as unknown as StandardSchemaLike,
          },
          { name: "b", url: B.base },
        ],
      });
      A.reset();
      B.reset();
      A.on(status(200, '{"from":"a"}'));
      B.on(status(200, '{"from":"b"}'));
      const layer = createResilience({ retry: false, fallback: fallback([chain()]) });
      const recorder = recordEvents(layer);
      const api = createClient({ resilience: layer });
      const kyGet = await api.get(`${A.base}/x`).text();
      const kyPost = await api.post(`${A.base}/x`, { json: { prompt: "a cat" } }).text();
      const reasons = recorder.of("fallback").map((e) => e.reason);
      const proxy = resilientProxy({ routes: [{ path: "/", chain: chain() }], resilience: { retry: false } });
      const proxyGet = await (await proxy.fetch(new Request("https://worker.example/x"), {}, ctx)).text();
      const proxyPost = await (
        await proxy.fetch(new Request("https://worker.example/x", { method: "POST", body: "{}" }), {}, ctx)
      ).text();
      seen[what] = { kyGet, kyPost, reasons, proxyGet, proxyPost, expected: reason };
    }
    for (const [what, , reason] of schemas)
      expect(seen[what]).toEqual({
        kyGet: '{"from":"b"}',
        kyPost: '{"from":"a"}',
        reasons: [reason],
        proxyGet: '{"from":"b"}',
        proxyPost: '{"from":"a"}',
        expected: reason,
      });
  });
});
