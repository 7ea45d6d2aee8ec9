/**
 * Outside-in attack on the fifty-ninth session's changes: `FallbackChain#run(input, options)` checking its options
 * before any entry runs, `resilientProxy` naming a route's misspelt key before its path or upstream, and
 * docs/breakers.md's new sentences on a named breaker's `hold` and its `key`/`maxHosts`.
 *
 * Docs:
 * - docs/fallback.md: "`.run(input, options)` (resolves with what happened …; its options, `signal`, `hedgeDelay`
 *   and the hooks such as `accept`, `skip` and `onFallback`, are checked before any entry runs: a misspelt one, or
 *   one of the wrong type, rejects with a `ConfigError` naming it, `fallbackChain("c").run.hedgeDelay`)", said of
 *   "`resilience.fallback.chain(name)` … a new chain for any async work … (without a layer, `new
 *   FallbackChain(name)`)"; "its `execute` and `run` reject with it" (a chain from `fallback([…])`).
 * - JSDoc `FallbackChain#run`: "Its options are checked first: a misspelt one, or one of the wrong type, rejects
 *   with a `ConfigError` naming it, and no entry runs."
 * - CHANGELOG.md Fixed: "`FallbackChain#run(input, options)` (`./policies`) checks its options before any entry
 *   runs …"; "`resilientProxy` names a route's misspelt key (`pth`, `upstrem`) as an unknown option, `routes.0`".
 * - docs/options.md: "options are read by name, so a key defined not enumerable and a class's getter are read, and
 *   checked, as a plain key is. A value that cannot be read (a getter that throws, a revoked `Proxy`) is a
 *   `ConfigError` naming its path too."
 * - SECURITY.md: URLs lose userinfo, query and fragment in errors, "an option's `ConfigError` included (a misspelt
 *   option's name … too)"; "A named breaker's name, a chain's and an endpoint's are labels, shown as given".
 * - docs/cloudflare.md: "a route key other than `path`, `upstream` and `chain` … is one too, `routes.1`, named before
 *   the route's path or upstream is judged: a misspelt `pth` or `upstrem` is named as such".
 * - docs/breakers.md: "They are the layer's `breaker` options: `key` and `maxHosts`, which only the per-host
 *   registry reads, are taken and do nothing here. Its `hold(until, reason)` keeps it open until `until` (epoch ms),
 *   taken as your code's word, with no cap (a `Retry-After` or a store's state holds a host a day at most); a time
 *   already past (`-Infinity` too) holds nothing, `NaN` or `Infinity` is a `TypeError`, and `reset()` ends a hold
 *   early." JSDoc `CircuitBreaker#hold`: "The caller's word, with no cap …; `reset()` ends it early."
 *
 * How: root `createResilience`, `memoryStore`, `ConfigError`; ./fallback (`fallback`), ./policies (`FallbackChain`,
 * `CircuitBreaker`), ./ky (`createClient`), ./cloudflare (`resilientProxy`), ./testing (`TestClock`,
 * `recordEvents`). Two node:http servers on 127.0.0.1; `node:vm` for objects of another realm; Proxies, class
 * instances, getters; `process.getActiveResourcesInfo()` for real timers.
 *
 * Paths: `new FallbackChain` run/execute (plain, hedged, aborted); `resilience.fallback.chain(name)` run; a chain of
 * `fallback([…])` through plain call, `Request`, ky, a library redirect, a hedge and a `resilientProxy` chain route;
 * proxy route checks and upstream routes serving; named breakers' `hold`, `health()`, `debugInfo()`, events, a
 * shared `memoryStore`, a host's store state and `Retry-After`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-ninth session, so plain `it`):
 * 1. docs/fallback.md "a misspelt one … rejects with a `ConfigError` naming it" (and options.md "a key defined not
 *    enumerable and a class's getter are read, and checked, as a plain key is"). Observed: on a chain from
 *    `resilience.fallback.chain(name)` (a `LayerChain`, which spreads the caller's options into a new object before
 *    `FallbackChain#run` checks them), a misspelt `hedgDelay` that is inherited, defined not enumerable or a class's
 *    getter is dropped unseen and the entry runs; the same objects are refused on `new FallbackChain`. (So a valid
 *    `hedgeDelay` given as a class's getter is dropped too: that run goes unhedged.)
 * 2. docs/options.md "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming
 *    its path too", with fallback.md's "checked … a `ConfigError` naming it". Observed: on
 *    `resilience.fallback.chain(name).run`, a getter that throws rejects with the getter's own error (its text, a URL
 *    with `?key=` included, whole), and a revoked Proxy with the engine's `TypeError` ("Cannot perform 'ownKeys' on a
 *    proxy that has been revoked"); `new FallbackChain(…).run` gives `fallbackChain("c").run.accept: expected a value
 *    that can be read` and `fallbackChain("c").run: expected a value that can be read`.
 *
 * Held (plain `it`):
 * - `new FallbackChain().run`: every one of the twelve options with a wrong type is a `ConfigError` naming
 *   `fallbackChain("c").run.<name>` (its `path` too); nothing runs, statistics untouched, no `TestClock` timer and no
 *   real timer left, also beside a valid `hedgeDelay`; several problems are all listed.
 * - A typo in another realm's object, a class getter, hidden, inherited, null-prototype, `__proto__`, `toString`, a
 *   class's method: refused; spelt right (another realm's object, a class's getters) taken and honoured (it hedges).
 * - A getter that throws (quoting a URL), a revoked Proxy, an `ownKeys` trap that throws: `ConfigError` by path, no
 *   secret. A misspelt key quoting a URL, in each shape of SECURITY.md's row: cut. A chain's name is shown as given.
 * - `execute(input, { signal })`: a caller's abort settles at once; a signal that is none is a `TypeError`; `run`
 *   hedged after 50 ms as before; a chain of `fallback([…])` refuses `run` (bad options or not), `execute`, `add`
 *   with the documented `TypeError`; plain-key typos on a layer chain are refused.
 * - The layer's own chain runs: a 503 passed over on plain, `Request` and ky; a library redirect; a hedge at 50 ms; a
 *   proxy chain route (`x-resilience-endpoint`): all served as before, with a caller's bad `run` refused meanwhile.
 * - Proxy: a misspelt route key hidden, a getter (one that throws too), inherited, another realm's, a class getter,
 *   `__proto__`, a Proxy's `ownKeys`, on a chain route and a second route, over a bad path or upstream: named
 *   `routes.N: unknown option "…"`; URL keys cut. Upstream routes as `Object.create`, another realm's object, a
 *   class instance, hidden keys: served.
 * - Named `hold`: 30 days uncapped in the event, `health()`, `debugInfo()`, `CircuitOpenError.retryAt`, past a day
 *   of store syncs; a shared `memoryStore` neither carries nor caps it; `reset()` ends it (event); a time past
 *   (`-Infinity`) on a closed or a tripped breaker changes nothing; `NaN`/`Infinity` `TypeError`s change nothing. A
 *   host's store state of 30 days and a `Retry-After` of 2 days hold a day. `key` (one that throws) and `maxHosts: 1`
 *   do nothing to three named breakers, nor to the per-host registry; so with per-host breakers off.
 *
 * Docs-silent (not pinned; the first item and `execute`'s typo and `null` fixed with the defects, asserted in
 * test/fallback/layer-chain-options.test.ts; the shorter `hold` now in docs/breakers.md and asserted in
 * test/http/named-breaker-hold.test.ts):
 * - On a layer chain `run(input, null)` rejects with the engine's "Cannot read properties of null"; `5`, `[]` and a
 *   function are taken as no options; `"ab"` is refused as `unknown options "0", "1"`; `{ onFallback: null }` is
 *   taken (the layer's own hook replaces it). `new FallbackChain` refuses each as "expected object" / a function.
 * - A symbol-keyed option (`{ [Symbol("hedgDelay")]: 5 }`) or route key is taken silently (`optionKeys` lists
 *   string names only), on `run` and on a proxy route alike.
 * - `run` reads its options again after the check: an `accept` getter that answers a function to the check and `"x"`
 *   later makes every entry fail and counts the failures (the CHANGELOG's old `accept: "x"` behaviour); a
 *   `hedgeDelay` getter answering `-1` later is used as is. `execute(input, { hedgDelay: 5 })` is taken silently and
 *   `execute(input, null)` throws the engine's destructuring `TypeError`.
 * - A route with a `path` getter that throws and a misspelt `upstrem` is refused as `routes.0.path` cannot be read,
 *   not by its typo (reading comes before the key check).
 * - A shorter `hold` on a breaker open longer already does not shorten it.
 */
import vm from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, ConfigError, createResilience, memoryStore } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, FallbackChain } from "../../src/policies/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const spare = httpUpstream();
serveDuringFile(up, spare);
const held: Hit[] = [];
const pending: Promise<unknown>[] = [];
afterEach(async () => {
  for (const hit of held.splice(0)) hit.res.destroy();
  await Promise.allSettled(pending.splice(0));
});

const SECRET = "sk-recheck59-0123456789";
const DAY = 86_400_000;
/** Every URL shape of SECURITY.md's row, each with a secret that must go. */
const SHAPES = [
  `https://u:pw@x.test/p?key=${SECRET}#frag`,
  `upstream https://admin:hunter 2@h.test/p failed`,
  `GET https://h.test/p#access_token=${SECRET} failed`,
  `cb /cb/https%3A%2F%2Fu%3Apw%40h.test%2F%3Fkey%3D${SECRET}`,
  `cb /cb/https%253A%252F%252Fu%253Apw%2540h.test%252F%253Fkey%253D${SECRET}`,
  `cb https:%2F%2Fu:pw@h.test%2F%3Fkey%3D${SECRET}`,
  `go //u:pw@h.test/p?key=${SECRET}`,
  `relative /api/jobs?key=${SECRET} failed`,
  `/v1?key=${SECRET}`,
];
const leaks = (text: string): boolean => /sk-recheck59|hunter|u:pw@|%3Apw|:pw%|#frag|access_token/.test(text);
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
const foreign = <T>(source: string): T => vm.runInNewContext(`(${source})`) as T;
const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p), passThroughOnException() {} };

/** A chain whose two entries log their calls: `a` fails, `b` answers `input` (or hangs, when told). */
function counted(chain: FallbackChain<number, number>, hangA = false) {
  const log: string[] = [];
  chain
    .add(
      (_n, { signal }) => {
        log.push("a");
        return hangA
          ? new Promise<number>((_, fail) => signal?.addEventListener("abort", fail))
          : Promise.reject(new Error("a down"));
      },
      { name: "a" },
    )
    .add(
      async (n) => {
        log.push("b");
        return n;
      },
      { name: "b" },
    );
  return { chain, log, calls: () => Object.values(chain.statistics().fallbacks).reduce((s, f) => s + f.calls, 0) };
}

/** The forms a misspelt `hedgDelay` may take besides a plain key. */
function typoForms(): object[] {
  class Getter {
    get hedgDelay() {
      return 5;
    }
  }
  return [
    Object.create({ hedgDelay: 5 }),
    Object.defineProperty({}, "hedgDelay", { value: 5, enumerable: false }),
    new Getter(),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// 1. FallbackChain#run from ./policies

describe("new FallbackChain(…).run(input, options): checked before any entry runs", () => {
  const WRONG: Array<[string, unknown, string]> = [
    ["signal", "x", 'expected an AbortSignal, received "x"'],
    ["signal", { aborted: false }, "expected an AbortSignal, received an object"],
    ["hedgeDelay", -1, "expected a value >= 0, received -1"],
    ["hedgeDelay", Number.NaN, "expected number, received NaN"],
    ["hedgeDelay", "5", 'expected number, received "5"'],
    ["hedgeDelay", 10n, "expected number, received a bigint"],
    ...["accept", "skip", "passedOver", "mayHedge", "heldBack", "uncounted", "started", "moveOn", "discard"].map(
      (name) => [name, {}, "expected a function, received an object"] as [string, unknown, string],
    ),
    ["onFallback", null, "expected a function, received null"],
    ["accept", `https://u:pw@x.test/?key=${SECRET}`, 'expected a function, received "https://x.test/" (credentials'],
  ];

  it("each option with a wrong type: a ConfigError naming it; nothing runs, nothing counted, no timer armed", async () => {
    for (const [name, value, expected] of WRONG) {
      for (const extra of [{}, { hedgeDelay: 10 }]) {
        const clock = new TestClock(0);
        const { chain, log, calls } = counted(new FallbackChain<number, number>("c", { clock }));
        const before = timers();
        const refused = (await rejection(chain.run(1, { ...extra, [name]: value } as never))) as ConfigError;
        expect(refused).toBeInstanceOf(ConfigError);
        expect(refused.message).toContain(`fallbackChain("c").run.${name}: ${expected}`);
        expect(refused.path).toBe(`fallbackChain("c").run.${name}`);
        expect(leaks(refused.message)).toBe(false);
        expect([log, calls(), clock.pending(), timers() - before]).toEqual([[], 0, 0, 0]);
      }
    }
    const { chain } = counted(new FallbackChain<number, number>("c"));
    const many = (await rejection(chain.run(1, { accept: 1, skip: 2, hedgDelay: 3 } as never))) as Error;
    expect(many.message).toBe(
      'fallbackChain("c").run.accept: expected a function, received 1; fallbackChain("c").run.skip: expected a function, received 2; fallbackChain("c").run: unknown option "hedgDelay"',
    );
  });

  it("a typo in any form is refused; spelt right, another realm's object and a class's getters are honoured", async () => {
    class Method {
      hedgeDelay = 5;
      method() {}
    }
    const typos: Array<[object, string]> = [
      ...typoForms().map((o) => [o, "hedgDelay"] as [object, string]),
      [foreign("{ hedgDelay: 5 }"), "hedgDelay"],
      [Object.assign(Object.create(null), { hedgDelay: 5 }), "hedgDelay"],
      [JSON.parse('{"__proto__": {"hedgeDelay": 5}}'), "__proto__"],
      [{ toString: () => "x" }, "toString"],
      [new Method(), "method"],
    ];
    for (const [options, key] of typos) {
      const { chain, log } = counted(new FallbackChain<number, number>("c"));
      const refused = (await rejection(chain.run(1, options as never))) as Error;
      expect([refused?.name, refused?.message, log]).toEqual([
        "ConfigError",
        `fallbackChain("c").run: unknown option "${key}"`,
        [],
      ]);
    }
    class Hedged {
      get hedgeDelay() {
        return 50;
      }
      get onFallback() {
        return (e: { from: string }) => void seen.push(e.from);
      }
    }
    const seen: string[] = [];
    for (const options of [new Hedged(), foreign<object>("{ hedgeDelay: 50 }")]) {
      const clock = new TestClock(0);
      const { chain, log } = counted(new FallbackChain<number, number>("c", { clock }), true);
      const run = chain.run(7, options as never);
      await clock.advance(49);
      expect(log).toEqual(["a"]);
      await clock.advance(1);
      expect(await run).toMatchObject({ ok: true, value: 7, name: "b" });
      expect([log, clock.pending()]).toEqual([["a", "b"], 0]);
    }
    expect(seen).toEqual([]); // a hedge that wins passes over nothing
  });

  it("a value that cannot be read, or a misspelt key quoting a URL: named by path, no secret; a chain's name as given", async () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const unreadable: Array<[unknown, string]> = [
      [
        {
          get accept() {
            throw new Error(`mine https://u:pw@x.test/?key=${SECRET}`);
          },
        },
        'fallbackChain("c").run.accept: expected a value that can be read, received a value that cannot be read',
      ],
      [proxy, 'fallbackChain("c").run: expected a value that can be read, received a value that cannot be read'],
      [
        new Proxy(
          {},
          {
            ownKeys: () => {
              throw new Error("no");
            },
          },
        ),
        'fallbackChain("c").run: expected a value that can be read',
      ],
    ];
    for (const [options, message] of unreadable) {
      const { chain, log } = counted(new FallbackChain<number, number>("c"));
      const refused = (await rejection(chain.run(1, options as never))) as Error;
      expect(refused).toBeInstanceOf(ConfigError);
      expect(refused.message.startsWith(message)).toBe(true);
      expect([leaks(refused.message), log]).toEqual([false, []]);
    }
    for (const shape of SHAPES) {
      const { chain } = counted(new FallbackChain<number, number>("c"));
      const refused = (await rejection(chain.run(1, { [shape]: 1 } as never))) as Error;
      expect(refused.message).toMatch(
        /^fallbackChain\("c"\)\.run: unknown option ".*" \(credentials, query and fragment cut\)$/,
      );
      expect(leaks(refused.message)).toBe(false);
    }
    // A chain's name is a label (SECURITY.md), shown as given.
    const named = new FallbackChain<number, number>("https://x.test/?label=1").add(async (n) => n, { name: "a" });
    expect(((await rejection(named.run(1, { hedgDelay: 1 } as never))) as Error).message).toBe(
      'fallbackChain("https://x.test/?label=1").run: unknown option "hedgDelay"',
    );
  });

  it("execute(input, { signal }) and hedged runs work as before; a chain of fallback([…]) still refuses run", async () => {
    const clock = new TestClock(0);
    const { chain, log } = counted(new FallbackChain<number, number>("c", { clock }), true);
    const controller = new AbortController();
    const executing = chain.execute(3, { signal: controller.signal });
    await clock.advance(0);
    controller.abort(new Error("caller gone"));
    expect(((await rejection(executing)) as Error).message).toBe("caller gone");
    expect(log).toEqual(["a"]);
    expect(await counted(new FallbackChain<number, number>("e")).chain.execute(4)).toBe(4);
    const bad = (await rejection(chain.execute(1, { signal: {} } as never))) as Error;
    // A ConfigError since the recheck: execute checks its options as run does (a typo refused too).
    expect([bad.name, bad.message]).toEqual([
      "ConfigError",
      'fallbackChain("c").execute.signal: expected an AbortSignal, received an object',
    ]);
    const typo = (await rejection(chain.execute(1, { hedgDelay: 5 } as never))) as Error;
    expect([typo.name, typo.message]).toEqual([
      "ConfigError",
      'fallbackChain("c").execute: unknown option "hedgDelay"',
    ]);
    // A configured chain: run, execute and add refuse with the documented TypeError, whatever the options.
    const r = createResilience({
      fallback: fallback([{ name: "cfg", endpoints: [{ name: "a", url: `${up.base}/cfg` }] }]),
    });
    const cfg = r.fallback.chain<number, number>("cfg");
    const only = 'fallbackChain("cfg").run: a chain from fallback([…]) runs through resilience.fetch only';
    for (const options of [{}, { hedgDelay: 5 }, { accept: "x" }])
      expect(((await rejection(cfg.run(1, options as never))) as Error).message).toBe(only);
    expect(((await rejection(cfg.execute(1))) as Error).message).toContain("runs through resilience.fetch only");
    expect(() => cfg.add(async (n) => n, { name: "x" })).toThrow(TypeError);
    // A layer's new chain: plain-key typos and wrong types refused by the same check.
    const adhoc = counted(r.fallback.chain<number, number>("adhoc"));
    for (const [options, message] of [
      [{ hedgDelay: 5 }, 'fallbackChain("adhoc").run: unknown option "hedgDelay"'],
      [foreign("{ hedgDelay: 5 }"), 'fallbackChain("adhoc").run: unknown option "hedgDelay"'],
      [{ signal: {} }, 'fallbackChain("adhoc").run.signal: expected an AbortSignal, received an object'],
      [{ accept: "x" }, 'fallbackChain("adhoc").run.accept: expected a function, received "x"'],
    ] as const)
      expect(((await rejection(adhoc.chain.run(1, options as never))) as Error).message).toBe(message);
    expect([adhoc.log, adhoc.calls(), up.hits.length]).toEqual([[], 0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. The same check on a layer's chain, resilience.fallback.chain(name)

describe("resilience.fallback.chain(name).run: the options its LayerChain spreads before the check", () => {
  const layer = () =>
    createResilience({ fallback: fallback([{ name: "cfg", endpoints: [{ name: "a", url: `${up.base}/cfg` }] }]) });

  it("a misspelt option inherited, defined not enumerable or a class's getter is refused, nothing run", async () => {
    const r = layer();
    for (const [i, options] of typoForms().entries()) {
      const { chain, log } = counted(r.fallback.chain<number, number>(`adhoc${i}`));
      const refused = (await rejection(chain.run(1, options as never))) as Error;
      expect(refused).toBeInstanceOf(ConfigError);
      expect(refused.message).toBe(`fallbackChain("adhoc${i}").run: unknown option "hedgDelay"`);
      expect(log).toEqual([]);
    }
  });

  it("a getter that throws and a revoked Proxy are ConfigErrors naming their path, as on new FallbackChain", async () => {
    const r = layer();
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const throwing = {
      get accept(): never {
        throw new Error(`mine https://u:pw@x.test/?key=${SECRET}`);
      },
    };
    const cases: Array<[string, unknown, string]> = [
      ["t", throwing, 'fallbackChain("t").run.accept: expected a value that can be read'],
      ["p", proxy, 'fallbackChain("p").run: expected a value that can be read'],
    ];
    for (const [name, options, message] of cases) {
      const { chain, log } = counted(r.fallback.chain<number, number>(name));
      const refused = (await rejection(chain.run(1, options as never))) as Error;
      expect(log).toEqual([]);
      expect(refused).toBeInstanceOf(ConfigError);
      expect(refused.message.startsWith(message)).toBe(true);
      expect(leaks(refused.message)).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. The layer's own chain runs: not checked as a caller's, unaffected

describe("a chain of fallback([…]) run by the layer: plain, Request, ky, redirect, hedge, proxy route", () => {
  it("each served as before, while a caller's bad run is refused beside it", async () => {
    up.on((hit: Hit) => {
      if (hit.path.startsWith("/g/down")) return void hit.res.writeHead(503).end();
      if (hit.path.startsWith("/g/moved"))
        return void hit.res.writeHead(302, { location: `${spare.base}/g/there` }).end();
      if (hit.path.startsWith("/g/hang")) return void held.push(hit);
      hit.res.end("from a");
    });
    spare.on((hit: Hit) => hit.res.end(`from b ${hit.path}`));
    const endpoints = [
      { name: "a", url: `${up.base}/g` },
      { name: "b", url: `${spare.base}/g` },
    ];
    const clock = new TestClock(0);
    const r = createResilience({
      clock,
      redirects: "library",
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "g", endpoints, hedge: { delay: 50 } }]),
    });
    const events = recordEvents(r);
    const ky = createClient({ resilience: r });
    const mine = counted(new FallbackChain<number, number>("mine"));
    const sends: Array<[() => Promise<Response>, string]> = [
      [() => r.fetch(`${up.base}/g/down`), "from b /g/down"],
      [() => r.fetch(new Request(`${up.base}/g/down`, { method: "PUT", body: "x" })), "from b /g/down"],
      [() => ky.get(`${up.base}/g/down`), "from b /g/down"],
      [() => r.fetch(`${up.base}/g/moved`), "from b /g/there"],
      [() => r.fetch(new Request(`${up.base}/g/hang`)), "from b /g/hang"],
    ];
    for (const [send, body] of sends) {
      const response = clock.run(send());
      expect(((await rejection(mine.chain.run(1, { hedgDelay: 1 } as never))) as Error).name).toBe("ConfigError");
      const res = await response;
      expect([res.status, await res.text()]).toEqual([200, body]);
    }
    expect(mine.log).toEqual([]);
    expect(events.of("fallback").map((e) => e.from)).toEqual(["a", "a", "a"]);
    const stats = r.health().fallback.g?.fallbacks;
    expect([stats?.a?.successes, stats?.b?.successes]).toEqual([1, 4]); // the redirect's answer is a's
    const proxy = resilientProxy({
      routes: [{ path: "/api", chain: { name: "g", endpoints } }],
      resilience: { retry: { maxAttempts: 1 } },
    });
    const res = await proxy.fetch(new Request("https://w.example/api/down"), {}, ctx);
    expect([res.status, await res.text(), res.headers.get("x-resilience-endpoint")]).toEqual([
      200,
      "from b /g/down",
      "b",
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. resilientProxy: a route's misspelt key named first

describe("resilientProxy names a route's misspelt key before its path or upstream", () => {
  const refusal = (routes: object[]): string => {
    try {
      resilientProxy({ routes: routes as never });
      return "taken";
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  };

  it("every form of the key, on a chain route and a second route, over a bad path or upstream", () => {
    const upstream = `${up.base}/v`;
    class ClassKey {
      path = "/v1";
      upstream = upstream;
      get upstrem() {
        return upstream;
      }
    }
    const liar = new Proxy(
      { path: "/v1", upstream },
      {
        ownKeys: () => ["path", "upstream", "pth"],
        getOwnPropertyDescriptor: (t, k) =>
          k === "pth" ? { value: "/v1", enumerable: true, configurable: true } : Reflect.getOwnPropertyDescriptor(t, k),
      },
    );
    const cases: Array<[object[], string]> = [
      [
        [Object.defineProperty({ upstream }, "pth", { value: "/v1", enumerable: false })],
        'routes.0: unknown option "pth"',
      ],
      [
        [
          {
            upstream,
            get pth() {
              return "/v1";
            },
          },
        ],
        'routes.0: unknown option "pth"',
      ],
      [
        [
          {
            upstream,
            get pth(): string {
              throw new Error("no");
            },
          },
        ],
        'routes.0: unknown option "pth"',
      ],
      [[Object.assign(Object.create({ pth: "/v1" }), { upstream })], 'routes.0: unknown option "pth"'],
      [[foreign(`{ path: "/v1", upstrem: ${JSON.stringify(upstream)} }`)], 'routes.0: unknown option "upstrem"'],
      [[new ClassKey()], 'routes.0: unknown option "upstrem"'],
      [[JSON.parse(`{"path":"/v1","upstream":"${upstream}","__proto__":{}}`)], 'routes.0: unknown option "__proto__"'],
      [[liar], 'routes.0: unknown option "pth"'],
      [
        [{ pth: "/v1", chain: { name: "c", endpoints: [{ name: "a", url: upstream }] } }],
        'routes.0: unknown option "pth"',
      ],
      [[{ path: "/v1", chian: { name: "c", endpoints: [] } }], 'routes.0: unknown option "chian"'],
      [[{ path: "v1", upstrem: "not a url" }], 'routes.0: unknown option "upstrem"'],
      [[{ pth: 5, upstream: "ftp://x" }], 'routes.0: unknown option "pth"'],
      [
        [
          { path: "/a", upstream },
          { path: "/b", upstream, headers: {} },
        ],
        'routes.1: unknown option "headers"',
      ],
    ];
    for (const [routes, message] of cases) expect(refusal(routes)).toBe(`ConfigError: ${message}`);
    for (const shape of SHAPES) {
      const shown = refusal([{ path: "/v1", upstream, [shape]: 1 }]);
      expect(shown).toMatch(/^ConfigError: routes\.0: unknown option ".*" \(credentials, query and fragment cut\)$/);
      expect(leaks(shown)).toBe(false);
    }
  });

  it("well-formed upstream routes still serve: inherited keys, another realm's object, a class instance, hidden keys", async () => {
    up.on((hit: Hit) => hit.res.end(`up ${hit.path}`));
    const upstream = `${up.base}/v`;
    class Route {
      path = "/c";
      upstream = upstream;
    }
    const routes = [
      Object.create({ path: "/a", upstream }),
      foreign(`{ path: "/b", upstream: ${JSON.stringify(upstream)} }`),
      new Route(),
      Object.defineProperties({}, { path: { value: "/d" }, upstream: { value: upstream } }),
    ];
    const proxy = resilientProxy({ routes: routes as never, resilience: { retry: { maxAttempts: 1 } } });
    for (const p of ["a", "b", "c", "d"]) {
      const res = await proxy.fetch(new Request(`https://w.example/${p}/x?q=1`), {}, ctx);
      expect([res.status, await res.text()]).toEqual([200, "up /v/x?q=1"]);
    }
    expect(up.hits).toHaveLength(4);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. docs/breakers.md: a named breaker's hold, key and maxHosts

describe("a named breaker's hold (docs/breakers.md, the hold JSDoc)", () => {
  it("30 days, uncapped in events, health(), debugInfo() and the error; a shared store neither carries nor caps it; reset() ends it", async () => {
    up.on((hit: Hit) => hit.res.end("ok"));
    const clock = new TestClock(1_000_000);
    const store = memoryStore();
    const r = createResilience({ clock, store, retry: { maxAttempts: 1 } });
    const other = createResilience({ clock, store, retry: { maxAttempts: 1 } });
    const events = recordEvents(r);
    const gpu = r.breaker("gpu");
    const until = clock.now() + 30 * DAY;
    gpu.hold(until, "maintenance window");
    expect(events.of("breaker")).toEqual([
      { key: "gpu", from: "closed", to: "open", reason: "maintenance window", gen: 1, openUntil: until },
    ]);
    for (const seen of [r.health(), r.debugInfo()]) {
      expect(seen.breakers.gpu).toMatchObject({ state: "open", openUntil: until, reason: "maintenance window" });
      expect(seen.status).toBe("unhealthy");
    }
    expect(store.peek("gpu", clock.now())).toBeUndefined();
    expect(other.health().breakers.gpu).toBeUndefined();
    for (let week = 0; week < 4; week++) {
      await clock.advance(7 * DAY);
      expect((await r.fetch(`${up.base}/x`)).status).toBe(200); // the layer reads its store on each call
      expect(r.health().breakers.gpu).toMatchObject({ state: "open", openUntil: until });
      const refused = await rejection(gpu.execute(async () => "ran"));
      expect(refused).toBeInstanceOf(CircuitOpenError);
      expect((refused as CircuitOpenError).retryAt).toBe(until);
    }
    gpu.reset();
    expect(events.of("breaker").at(-1)).toMatchObject({ key: "gpu", from: "open", to: "closed", reason: "reset" });
    expect([gpu.state, await gpu.execute(async () => "ran"), r.health().status]).toEqual(["closed", "ran", "healthy"]);
  });

  it("a time past holds nothing, on a closed or a tripped breaker; NaN and Infinity are TypeErrors that change nothing", async () => {
    const clock = new TestClock(1_000_000);
    const r = createResilience({ clock });
    const events = recordEvents(r);
    const closed = r.breaker("closed");
    const tripped = r.breaker("tripped", { failureThreshold: 1, timeout: 1_000 });
    await rejection(tripped.execute(async () => Promise.reject(new Error("down"))));
    const before = JSON.stringify([closed.toJSON(), tripped.toJSON(), r.health().breakers]);
    for (const b of [closed, tripped]) {
      b.hold(Number.NEGATIVE_INFINITY, "past");
      b.hold(clock.now() - 1, "past");
      b.hold(-Number.MAX_VALUE, "past");
      for (const until of [Number.NaN, Number.POSITIVE_INFINITY])
        expect(() => b.hold(until, "bad")).toThrow(
          new TypeError(`breaker.hold(until): expected a time in ms, got ${until}`),
        );
    }
    expect(JSON.stringify([closed.toJSON(), tripped.toJSON(), r.health().breakers])).toBe(before);
    expect(events.of("breaker").map((e) => `${e.key} ${e.to}`)).toEqual(["tripped open"]);
    await clock.advance(1_000);
    expect([closed.state, tripped.state]).toEqual(["closed", "half_open"]);
  });

  it("a host's store state of 30 days and a Retry-After of 2 days hold it a day (the cap a named hold lacks)", async () => {
    const clock = new TestClock(1_000_000);
    const store = memoryStore();
    const policy = { failureThreshold: 1, successThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, timeWindow: 10 };
    const base = new CircuitBreaker(
      "x",
      { ...policy, probeTimeout: 10, minimumCalls: 1, failureRate: undefined },
      clock,
    );
    store.publish(up.host, {
      ...base.toJSON(),
      state: "open",
      gen: 3,
      openUntil: clock.now() + 30 * DAY,
      reason: "held",
    });
    const r = createResilience({ clock, store, retry: { maxAttempts: 1 } });
    const refused = (await rejection(r.fetch(`${up.base}/x`))) as CircuitOpenError;
    expect([refused.name, refused.retryAt - clock.now(), up.hits.length]).toEqual(["CircuitOpenError", DAY, 0]);
    await clock.advance(DAY);
    expect((await r.fetch(`${up.base}/x`)).status).toBe(200);
    spare.on((hit: Hit) => hit.res.writeHead(503, { "retry-after": String(2 * 86_400) }).end());
    expect((await r.fetch(`${spare.base}/y`)).status).toBe(503);
    expect(r.health().breakers[spare.host]?.openUntil).toBe(clock.now() + DAY);
  });

  it("key and maxHosts do nothing to a named breaker, nor to the per-host registry; per-host breakers off too", async () => {
    let keyCalls = 0;
    const key = () => {
      keyCalls++;
      throw new Error("never asked");
    };
    const clock = new TestClock(0);
    const r = createResilience({ clock, retry: { maxAttempts: 1 }, breaker: { maxHosts: 3 } });
    for (const name of ["n1", "n2", "n3"]) {
      const b = r.breaker(name, { maxHosts: 1, key, failureThreshold: 1 });
      await rejection(b.execute(async () => Promise.reject(new Error("down"))));
      b.hold(clock.now() + 40 * DAY, "held");
    }
    expect((await r.fetch(`${up.base}/a`)).status).toBe(200);
    expect((await r.fetch(`${spare.base}/b`)).status).toBe(200);
    const listed = r.health().breakers;
    expect(Object.keys(listed).sort()).toEqual([up.host, spare.host, "n1", "n2", "n3"].sort());
    expect(["n1", "n2", "n3"].map((n) => listed[n]?.openUntil)).toEqual(Array(3).fill(40 * DAY));
    expect(keyCalls).toBe(0);
    const off = createResilience({ clock, breaker: false });
    const gpu = off.breaker("gpu", { maxHosts: 1, key, failureThreshold: 1 });
    await rejection(gpu.execute(async () => Promise.reject(new Error("down"))));
    expect([gpu.state, keyCalls]).toEqual(["open", 0]);
    gpu.hold(clock.now() + 40 * DAY, "held");
    await clock.advance(39 * DAY);
    expect(await rejection(gpu.execute(async () => "ran"))).toBeInstanceOf(CircuitOpenError);
  });
});
