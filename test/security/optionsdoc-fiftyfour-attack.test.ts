/**
 * Outside-in attack on docs/options.md's rows (default, range, refusal, effect) through the ways in other than
 * `createResilience` (`createClient({ resilience })`, `resilientProxy({ resilience })`, a `Request` input, a
 * redirect, a fallback chain and a proxy chain route), with option values of other shapes (frozen, `Proxy`,
 * revoked `Proxy`, class getters, getters answering `undefined`) and the defaults as `debugInfo()` shows them.
 *
 * Docs:
 * - docs/options.md: "throws `ConfigError` naming the path and the expected value"; "A value that cannot be read
 *   (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too. `undefined` never wipes a
 *   default. The ky client's `createClient({ resilience })` and `resilientProxy({ resilience })` name these options
 *   as their callers wrote them: `resilience.retry.maxAttempts`."
 * - docs/options.md rows: `retry.maxDelay` "cap on any computed delay"; `retry.retryOn.methods` "methods retried on
 *   any retryable outcome, in any case; a name no method has (`"POST "`, `"POST,PUT"`) is a `ConfigError`";
 *   `retry.maxRetryAfter` "`60000` ms" "longest `Retry-After` slept through"; `retry.idempotencyKey` "add an
 *   `Idempotency-Key` to POST/PATCH"; `budget.minPerSecond` "(a fraction too: `0.5` is one every 2 s)";
 *   `timeout.attempt` "at most 2,147,483,647"; `breaker.*` defaults (`12`, `2`, `30000`, `3`, `30000`, `30000`,
 *   `0.5` / `100`, `1000`); `breaker.isFailure` "(responses: 5xx and 429)"; `bulkhead.maxConcurrent` / `maxQueue`
 *   "off / `0`" "with `breaker: false` it is a `ConfigError`"; `store` "its optional methods, functions when given";
 *   `fallback[].hedge.delay` "at most 2,147,483,647"; `crossOriginHeaders` "every other caller header stays with the
 *   origin addressed; each entry a header name (one that is not, such as a header pasted whole, is a `ConfigError`
 *   that does not quote it)"; `redirects` "`"platform"` in browsers …, else `"library"`"; `maxReplayBytes` "largest
 *   body kept for retries, … larger ones go once".
 * - docs/degradation.md: "`levelHeader: "x-degradation-level"` sends the level's name … to another origin (a fallback
 *   endpoint, a redirect) it goes, like the caller's own headers, only when named in `crossOriginHeaders`".
 * - src/http/resilience-options.ts: `redirects` "@default "platform" in browsers … else "library""; `maxReplayBytes`
 *   "A larger one is sent once, without retries".
 *
 * How: root, ./ky `createClient`, ./cloudflare `resilientProxy` (fake `ctx`), ./fallback, ./degradation,
 * ./testing `TestClock`; two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts).
 *
 * Paths: plain call, `Request` input, ky client, Worker proxy (upstream route and chain route), root fallback chain,
 * library redirect A → B (cross-origin), ky chain.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found: every sentence driven below held on every path.
 *
 * Held (plain `it`):
 * - Each row's refusal has the same words on root, ky and proxy under `resilience.` (bulkhead without breakers,
 *   bulkhead without `maxConcurrent`, `timeout.attempt` 2^31, `"POST "` / `"POST,PUT"`, a store's `record: 5`,
 *   `maxReplayBytes: -1`); a header pasted whole into `crossOriginHeaders` or `levelHeader` is never quoted;
 *   `hedge.delay` 2^31 is refused under `fallback.0` and `routes.0.chain`.
 * - A revoked `Proxy` at any depth (`options`, `retry`, `retry.retryOn`, `statuses`, `crossOriginHeaders`, `clock`,
 *   `store`, `timeout`, `bulkhead`, a chain, an endpoint, `degradation.levels`) is a ConfigError naming its path.
 * - `debugInfo()` shows every documented breaker default and `redirects: "library"` in Node, with `undefined`, a
 *   class getter, a frozen object, a get-trap Proxy and a hidden key each changing only what they set.
 * - On root, `Request`, ky, proxy and a chain alike: `methods: ["post"]` retries a POST after a 500; a `Retry-After`
 *   of 60 s is slept through and one of 61 s resolves at once; `decorrelated` jitter never waits past `maxDelay`; a
 *   body over `maxReplayBytes` goes once and one at it is retried; `idempotencyKey` puts one key on every attempt.
 * - `crossOriginHeaders` (plain, frozen or a Proxy array, mixed case) and `levelHeader` cross to B on a redirect and
 *   a chain (root, `Request`, ky, proxy), where `x-api-key` does not.
 * - `minPerSecond: 0.5` gives 5 retries in 10 s; a 429 counts toward the breaker and a 404 does not; `maxQueue` 0
 *   refuses a second call at once; a getter answering `undefined` keeps the default (3 attempts) — on root, ky, proxy.
 *
 * Docs-silent (not pinned):
 * - `resilientProxy` answers a `BulkheadRejectedError` with `502` (the layer's callers get the error); cloudflare.md
 *   lists 503 (open circuit), 504, 400 and "502 when no endpoint answered otherwise", nothing for a full bulkhead.
 * - `debugInfo().options.timeout` is `{ attempt: undefined, total: undefined }` without a timeout, so its JSON is `{}`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
const START = 1_000_000;

afterEach(() => {
  A.reset();
  B.reset();
});

/** How a construction ended: "taken", or the error's class and message. */
async function outcome(run: () => unknown): Promise<string> {
  try {
    await run();
    return "taken";
  } catch (error) {
    return error instanceof ConfigError ? `ConfigError ${error.message}` : `${(error as Error).name}: ${String(error)}`;
  }
}

/** The three constructors that take the layer's options, each made with `options`. */
function makers(options: unknown): Record<"root" | "ky" | "proxy", () => unknown> {
  return {
    root: () => createResilience(options as never),
    ky: () => createClient({ resilience: options as never }),
    proxy: () =>
      resilientProxy({ routes: [{ path: "/", upstream: "http://127.0.0.1:1" }], resilience: options as never }),
  };
}

async function refusals(options: () => unknown): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ["root", "ky", "proxy"] as const) out[name] = await outcome(makers(options())[name]);
  return out;
}

const status = async (p: Promise<Response>): Promise<number | string> => {
  try {
    const r = await p;
    await r.arrayBuffer();
    return r.status;
  } catch (error) {
    return (error as Error).name;
  }
};

type Init = { method: string; body?: string };
type Send = (init: Init) => Promise<number | string>;

/** Five ways one call reaches A: a plain call, a `Request`, the ky client, the Worker proxy and a one-endpoint chain. */
function senders(options: Record<string, unknown>): Record<string, Send> {
  const layer = createResilience(options as never);
  const api = createClient({ resilience: options as never, throwHttpErrors: false, timeout: false });
  const proxy = resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: options as never });
  const chained = createResilience({
    ...options,
    fallback: fallback([{ name: "c", endpoints: [{ name: "a", url: A.base }] }]),
  } as never);
  return {
    root: (init) => status(layer.fetch(`${A.base}/x`, init)),
    request: (init) => status(layer.fetch(new Request(`${A.base}/x`, init))),
    ky: (init) => status(api(`${A.base}/x`, init) as unknown as Promise<Response>),
    proxy: (init) => status(proxy.fetch(new Request("https://w.example/x", init), {}, ctx)),
    chain: (init) => status(chained.fetch(`${A.base}/x`, init)),
  };
}

type Seen = { status: number | string; at: number[]; keys: unknown[]; bytes: number[] };

/** Runs one call per way on a fresh `TestClock`, A answering with `handler`. */
async function everyWay(
  options: (clock: TestClock) => Record<string, unknown>,
  init: Init,
  handler: (hit: Hit) => void,
): Promise<Record<string, Seen>> {
  const out: Record<string, Seen> = {};
  for (const way of ["root", "request", "ky", "proxy", "chain"]) {
    A.reset();
    const clock = new TestClock(START);
    const at: number[] = [];
    A.on((hit) => {
      at.push(clock.now() - START);
      handler(hit);
    });
    const send = senders(options(clock))[way] as Send;
    const result = await clock.run(send(init));
    out[way] = {
      status: result,
      at,
      keys: A.hits.map((h) => h.headers["idempotency-key"] ?? null),
      bytes: A.hits.map((h) => h.bytes.length),
    };
  }
  return out;
}

const same = <T>(value: T): Record<string, T> =>
  Object.fromEntries(["root", "request", "ky", "proxy", "chain"].map((w) => [w, value]));

// ---------------------------------------------------------------------------

describe("refusals: each row's words, on root, ky and proxy", () => {
  it("held: the documented refusals read alike under `resilience.` on the ky client and the proxy", async () => {
    const rows: Array<[unknown, string]> = [
      [
        { bulkhead: { maxConcurrent: 1 }, breaker: false },
        "bulkhead: needs per-host breakers (a bulkhead lives beside each host's breaker); remove `breaker: false` or the bulkhead",
      ],
      [{ bulkhead: {} }, "bulkhead.maxConcurrent: expected number, received undefined"],
      [{ timeout: { attempt: 2_147_483_648 } }, "timeout.attempt: expected a value <= 2147483647, received 2147483648"],
      [
        { retry: { retryOn: { methods: ["POST "] } } },
        'retry.retryOn.methods.0: expected a method name, received "POST "',
      ],
      [
        { retry: { retryOn: { methods: ["POST,PUT"] } } },
        'retry.retryOn.methods.0: expected a method name, received "POST,PUT"',
      ],
      [{ store: { name: "s", publish() {}, peek() {}, record: 5 } }, "store.record: expected a function, received 5"],
      [{ maxReplayBytes: -1 }, "maxReplayBytes: expected a value >= 0, received -1"],
      [{ retry: { maxAttempts: 0 } }, "retry.maxAttempts: expected a value >= 1, received 0"],
    ];
    for (const [options, words] of rows) {
      expect(await refusals(() => structuredCloneish(options))).toEqual({
        root: `ConfigError ${words}`,
        ky: `ConfigError resilience.${words}`,
        proxy: `ConfigError resilience.${words}`,
      });
    }
  });

  it("held: a header pasted whole is refused and never quoted, in crossOriginHeaders and levelHeader", async () => {
    const pasted = "Authorization: Bearer sk-live-0123";
    const words = "crossOriginHeaders.0: expected a header name, received a string";
    expect(await refusals(() => ({ crossOriginHeaders: [pasted] }))).toEqual({
      root: `ConfigError ${words}`,
      ky: `ConfigError resilience.${words}`,
      proxy: `ConfigError resilience.${words}`,
    });
    const level = await outcome(() => degradation({ levelHeader: "X-Level: sk-live-0123" }));
    expect(level).toBe(
      "ConfigError degradation.levelHeader: expected an HTTP header name (a token), received a string",
    );
    expect(level).not.toContain("sk-live");
  });

  it("held: hedge.delay past 2^31 - 1 is refused by fallback([…]) and by a proxy's chain route, by path", async () => {
    const chain = {
      name: "c",
      hedge: { delay: 2_147_483_648 },
      endpoints: [
        { name: "a", url: A.base },
        { name: "b", url: B.base },
      ],
    };
    expect(await outcome(() => fallback([chain]))).toBe(
      "ConfigError fallback.0.hedge.delay: expected a value <= 2147483647, received 2147483648",
    );
    expect(await outcome(() => resilientProxy({ routes: [{ path: "/", chain }] }))).toBe(
      "ConfigError routes.0.chain.hedge.delay: expected a value <= 2147483647, received 2147483648",
    );
    expect(await outcome(() => fallback([{ ...chain, hedge: { delay: 2_147_483_647 } }]))).toBe("taken");
  });

  it("held: a revoked Proxy at any depth is a ConfigError naming its path, on root, ky and proxy", async () => {
    const revoked = (target: object = {}): object => {
      const r = Proxy.revocable(target, {});
      r.revoke();
      return r.proxy;
    };
    const unreadable = "expected a value that can be read, received a value that cannot be read";
    const at: Array<[string, () => unknown, string]> = [
      [
        "retry",
        () => ({ retry: revoked() }),
        "expected false or a value that can be read, received a value that cannot be read",
      ],
      ["retry.retryOn", () => ({ retry: { retryOn: revoked() } }), unreadable],
      ["retry.retryOn.statuses", () => ({ retry: { retryOn: { statuses: revoked([]) } } }), unreadable],
      ["crossOriginHeaders", () => ({ crossOriginHeaders: revoked([]) }), unreadable],
      ["clock", () => ({ clock: revoked() }), unreadable],
      ["store", () => ({ store: revoked() }), unreadable],
      ["timeout", () => ({ timeout: revoked() }), unreadable],
      ["bulkhead", () => ({ bulkhead: revoked() }), unreadable],
    ];
    for (const [path, options, words] of at) {
      expect(await refusals(options)).toEqual({
        root: `ConfigError ${path}: ${words}`,
        ky: `ConfigError resilience.${path}: ${words}`,
        proxy: `ConfigError resilience.${path}: ${words}`,
      });
    }
    expect(await refusals(() => revoked())).toEqual({
      root: `ConfigError options: ${unreadable}`,
      ky: `ConfigError resilience: ${unreadable}`,
      proxy: `ConfigError resilience: ${unreadable}`,
    });
    expect({
      levels: await outcome(() => degradation({ levels: revoked() as never })),
      endpoint: await outcome(() => fallback([{ name: "c", endpoints: [revoked() as never] }])),
      routeEndpoint: await outcome(() =>
        resilientProxy({ routes: [{ path: "/", chain: { name: "c", endpoints: [revoked() as never] } }] }),
      ),
      routeChain: await outcome(() => resilientProxy({ routes: [{ path: "/", chain: revoked() as never }] })),
    }).toEqual({
      levels: `ConfigError degradation.levels: ${unreadable}`,
      endpoint: `ConfigError fallback.0.endpoints.0: ${unreadable}`,
      routeEndpoint: `ConfigError routes.0.chain.endpoints.0: ${unreadable}`,
      routeChain: `ConfigError routes.0.chain: ${unreadable}`,
    });
  });
});

/** A deep copy of plain test data (functions kept), so each constructor gets its own object. */
function structuredCloneish<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(structuredCloneish) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneish(v)])) as T;
}

// ---------------------------------------------------------------------------

describe("defaults, as debugInfo() shows them", () => {
  const defaults = {
    failureThreshold: 12,
    successThreshold: 2,
    timeout: 30_000,
    halfOpenMaxCalls: 3,
    timeWindow: 30_000,
    probeTimeout: 30_000,
    failureRate: 0.5,
    minimumCalls: 100,
    maxHosts: 1000,
  };

  it("held: every breaker default, and redirects 'library' outside a browser", () => {
    const info = createResilience().debugInfo().options;
    expect(info.breaker).toEqual(defaults);
    expect(info.redirects).toBe("library");
    expect(info.timeout).toEqual({ attempt: undefined, total: undefined });
    expect(createResilience({ breaker: false }).debugInfo().options.breaker).toBeNull();
    expect(createResilience({ redirects: "platform" }).debugInfo().options.redirects).toBe("platform");
  });

  it("held: undefined, a class getter, a frozen object, a get-trap Proxy and a hidden key change only what they set", () => {
    class Held {
      get timeout(): number {
        return 5;
      }
    }
    const given: Array<[unknown, Record<string, number>]> = [
      [{ failureThreshold: undefined, timeout: undefined }, {}],
      [new Held(), { timeout: 5 }],
      [Object.freeze({ maxHosts: 7 }), { maxHosts: 7 }],
      [new Proxy({}, { get: (_t, k) => (k === "failureThreshold" ? 4 : undefined) }), { failureThreshold: 4 }],
      [Object.defineProperty({}, "minimumCalls", { value: 9 }), { minimumCalls: 9 }],
    ];
    for (const [breaker, changed] of given) {
      expect(createResilience({ breaker: breaker as never }).debugInfo().options.breaker).toEqual({
        ...defaults,
        ...changed,
      });
    }
    expect(createResilience({ timeout: Object.freeze({ attempt: 5 }) }).debugInfo().options.timeout).toEqual({
      attempt: 5,
      total: undefined,
    });
  });
});

// ---------------------------------------------------------------------------

describe("retry rows, on root, Request, ky, proxy and a chain", () => {
  it("held: `retryOn.methods` in any case: methods ['post'] retries a POST after a 500, body and all", async () => {
    const seen = await everyWay(
      (clock) => ({ clock, random: () => 0.5, retry: { retryOn: { methods: ["post"] } } }),
      { method: "POST", body: "abc" },
      (hit) => hit.res.writeHead(500).end(),
    );
    expect(seen).toEqual(same({ status: 500, at: [0, 500, 1500], keys: [null, null, null], bytes: [3, 3, 3] }));
  });

  it("held: maxRetryAfter 60000 by default: 60 s is slept through, 61 s resolves at once", async () => {
    const at60 = await everyWay(
      (clock) => ({ clock, random: () => 0.5 }),
      { method: "GET" },
      (hit) => hit.res.writeHead(503, { "retry-after": hit.n === 1 ? "60" : "0" }).end(),
    );
    expect(at60).toEqual(same({ status: 503, at: [0, 60_000, 60_000], keys: [null, null, null], bytes: [0, 0, 0] }));
    const at61 = await everyWay(
      (clock) => ({ clock, random: () => 0.5 }),
      { method: "GET" },
      (hit) => hit.res.writeHead(503, { "retry-after": "61" }).end(),
    );
    expect(at61).toEqual(same({ status: 503, at: [0], keys: [null], bytes: [0] }));
  });

  it("held: maxDelay caps every computed delay, decorrelated jitter included", async () => {
    const seen = await everyWay(
      (clock) => ({ clock, random: () => 0.999, retry: { maxAttempts: 4, jitter: "decorrelated", maxDelay: 1500 } }),
      { method: "GET" },
      (hit) => hit.res.writeHead(500).end(),
    );
    expect(seen).toEqual(
      same({ status: 500, at: [0, 1500, 3000, 4500], keys: [null, null, null, null], bytes: [0, 0, 0, 0] }),
    );
  });

  it("held: maxReplayBytes: a body over it goes once, one at it is retried", async () => {
    const over = await everyWay(
      (clock) => ({ clock, random: () => 0.5, maxReplayBytes: 4 }),
      { method: "PUT", body: "0123456789" },
      (hit) => hit.res.writeHead(503).end(),
    );
    expect(over).toEqual(same({ status: 503, at: [0], keys: [null], bytes: [10] }));
    const at = await everyWay(
      (clock) => ({ clock, random: () => 0.5, maxReplayBytes: 4 }),
      { method: "PUT", body: "0123" },
      (hit) => hit.res.writeHead(503).end(),
    );
    expect(at).toEqual(same({ status: 503, at: [0, 500, 1500], keys: [null, null, null], bytes: [4, 4, 4] }));
  });

  it("held: idempotencyKey adds one key to a PATCH, the same on every attempt", async () => {
    const seen = await everyWay(
      (clock) => ({ clock, random: () => 0.5, retry: { idempotencyKey: true } }),
      { method: "PATCH", body: "x" },
      (hit) => hit.res.writeHead(500).end(),
    );
    for (const [way, s] of Object.entries(seen)) {
      expect({ way, status: s.status, at: s.at, distinct: new Set(s.keys).size }).toEqual({
        way,
        status: 500,
        at: [0, 500, 1500],
        distinct: 1,
      });
      expect(s.keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

// ---------------------------------------------------------------------------

describe("crossOriginHeaders and levelHeader across origins", () => {
  it("held: named (plain, frozen or a Proxy array, any case), they cross on a redirect and a chain; x-api-key does not", async () => {
    const headers = { "x-api-key": "k", "x-trace": "t" };
    const layerOptions = (names: unknown) => ({
      crossOriginHeaders: names as string[],
      retry: false as const,
      degradation: degradation({ levelHeader: "X-Level" }),
    });
    const chainOf = () =>
      fallback([
        {
          name: "c",
          endpoints: [
            { name: "a", url: A.base },
            { name: "b", url: B.base },
          ],
        },
      ]);
    const lists: Record<string, () => unknown> = {
      plain: () => ["X-Trace", "x-level"],
      frozen: () => Object.freeze(["X-Trace", "x-level"]),
      proxied: () => new Proxy(["X-Trace", "x-level"], {}),
    };
    const seen: Record<string, unknown> = {};
    for (const [kind, list] of Object.entries(lists)) {
      const runs: Record<string, () => Promise<unknown>> = {
        rootRedirect: async () =>
          (await createResilience(layerOptions(list())).fetch(`${A.base}/r`, { headers })).text(),
        requestRedirect: async () =>
          (await createResilience(layerOptions(list())).fetch(new Request(`${A.base}/r`, { headers }))).text(),
        kyRedirect: () =>
          createClient({ resilience: layerOptions(list()) })
            .get(`${A.base}/r`, { headers })
            .text(),
        proxyRedirect: async () =>
          (
            await resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: layerOptions(list()) }).fetch(
              new Request("https://w.example/r", { headers }),
              {},
              ctx,
            )
          ).text(),
        rootChain: async () =>
          (
            await createResilience({ ...layerOptions(list()), fallback: chainOf() }).fetch(`${A.base}/f`, { headers })
          ).text(),
        kyChain: () =>
          createClient({ resilience: { ...layerOptions(list()), fallback: chainOf() } })
            .get(`${A.base}/f`, { headers })
            .text(),
        proxyChain: async () =>
          (
            await resilientProxy({
              routes: [
                {
                  path: "/",
                  chain: {
                    name: "c",
                    endpoints: [
                      { name: "a", url: A.base },
                      { name: "b", url: B.base },
                    ],
                  },
                },
              ],
              resilience: layerOptions(list()),
            }).fetch(new Request("https://w.example/f", { headers }), {}, ctx)
          ).text(),
      };
      for (const [run, go] of Object.entries(runs)) {
        A.reset();
        B.reset();
        A.on((hit) =>
          hit.path.startsWith("/r")
            ? hit.res.writeHead(302, { location: `${B.base}/to` }).end()
            : hit.res.writeHead(503).end(),
        );
        const how = await outcome(go);
        const of = (h: Hit) => [
          h.headers["x-api-key"] ?? null,
          h.headers["x-trace"] ?? null,
          h.headers["x-level"] ?? null,
        ];
        seen[`${kind} ${run}`] = { how, A: A.hits.map(of), B: B.hits.map(of) };
      }
    }
    for (const [name, value] of Object.entries(seen)) {
      expect({ name, value }).toEqual({
        name,
        value: { how: "taken", A: [["k", "t", "full"]], B: [[null, "t", "full"]] },
      });
    }
  });
});

// ---------------------------------------------------------------------------

describe("budget, breaker and bulkhead rows, on root, ky and proxy", () => {
  const three = (options: Record<string, unknown>) => {
    const all = senders(options);
    return { root: all.root as Send, ky: all.ky as Send, proxy: all.proxy as Send };
  };

  it("held: minPerSecond 0.5 is one retry every 2 s (20 failing calls over 10 s reach the server 25 times)", async () => {
    const reached: Record<string, number> = {};
    for (const way of ["root", "ky", "proxy"] as const) {
      A.reset();
      A.on((hit) => hit.res.writeHead(500).end());
      const clock = new TestClock(START);
      const send = three({
        clock,
        budget: { ratio: 0, minPerSecond: 0.5 },
        retry: { maxAttempts: 2, initialDelay: 0, jitter: "none" },
        breaker: false,
      })[way];
      for (let i = 0; i < 20; i++) {
        await clock.run(send({ method: "GET" }));
        await clock.advance(500);
      }
      reached[way] = A.hits.length;
    }
    expect(reached).toEqual({ root: 25, ky: 25, proxy: 25 });
  });

  it("held: a 429 counts toward the breaker (responses: 5xx and 429), a 404 does not", async () => {
    const seen: Record<string, unknown> = {};
    for (const way of ["root", "ky", "proxy"] as const) {
      for (const code of [429, 404]) {
        A.reset();
        A.on((hit) => hit.res.writeHead(code).end());
        const send = three({ clock: new TestClock(START), retry: false, breaker: { failureThreshold: 2 } })[way];
        const out: unknown[] = [];
        for (let i = 0; i < 3; i++) out.push(await send({ method: "GET" }));
        seen[`${way} ${code}`] = { out, reached: A.hits.length };
      }
    }
    expect(seen).toEqual({
      "root 429": { out: [429, 429, "CircuitOpenError"], reached: 2 },
      "root 404": { out: [404, 404, 404], reached: 3 },
      "ky 429": { out: [429, 429, "CircuitOpenError"], reached: 2 },
      "ky 404": { out: [404, 404, 404], reached: 3 },
      "proxy 429": { out: [429, 429, 503], reached: 2 },
      "proxy 404": { out: [404, 404, 404], reached: 3 },
    });
  });

  it("held: bulkhead maxQueue 0 by default: a second call to a busy host is refused at once", async () => {
    const seen: Record<string, unknown> = {};
    for (const way of ["root", "ky", "proxy"] as const) {
      A.reset();
      const held: Hit[] = [];
      A.on((hit) => held.push(hit));
      const send = three({ clock: new TestClock(START), retry: false, bulkhead: { maxConcurrent: 1 } })[way];
      const first = send({ method: "GET" });
      await A.nth(1);
      const second = await send({ method: "GET" });
      held[0]?.res.end("ok");
      seen[way] = { second, first: await first, reached: A.hits.length };
    }
    expect(seen).toEqual({
      root: { second: "BulkheadRejectedError", first: 200, reached: 1 },
      ky: { second: "BulkheadRejectedError", first: 200, reached: 1 },
      proxy: { second: 502, first: 200, reached: 1 },
    });
  });

  it("held: undefined never wipes a default: a `retry` getter answering undefined keeps 3 attempts", async () => {
    const reached: Record<string, number> = {};
    for (const way of ["root", "ky", "proxy"] as const) {
      A.reset();
      A.on((hit) => hit.res.writeHead(500).end());
      const clock = new TestClock(START);
      const options = {
        clock,
        random: () => 0.5,
        get retry() {
          return undefined;
        },
        maxReplayBytes: undefined,
        crossOriginHeaders: undefined,
      };
      await clock.run(three(options)[way]({ method: "GET" }));
      reached[way] = A.hits.length;
    }
    expect(reached).toEqual({ root: 3, ky: 3, proxy: 3 });
  });
});
