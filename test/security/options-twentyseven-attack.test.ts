/**
 * Outside-in attack on docs/options.md (every sentence above the table, its defaults, "What validates what") and the
 * options parts of README.md, on every entry that takes options.
 * Docs: docs/options.md "`createResilience`, `fallback([…])`, `degradation({…})`, the ky client and `resilientProxy`
 * check their options when they are made and keep what they read then, so an edit to your objects afterwards
 * changes nothing (plain objects and arrays are copied; …)", "A value that cannot be read (a getter that throws, a
 * revoked `Proxy`) is a `ConfigError` naming its path too", "`createClient` refuses only a key one or two letters
 * from `resilience` (`resilence`)", "Options are code you wrote, checked when you pass them", the table's defaults
 * (`breaker.failureRate` / `minimumCalls`, `breaker.maxHosts`, the breaker numbers, `redirects`); docs/retry.md
 * "Both check all their options before the first attempt (a `ConfigError` naming the path …)"; SECURITY.md "an
 * option's `ConfigError` included (a misspelt option's name …)"; docs/cloudflare.md "a route key other than `path`,
 * `upstream` and `chain` … is one too, `routes.1`".
 * How: `createResilience`, `fallback([…])`, `degradation({…})`, ky's `createClient`, `resilientProxy` (fake ctx),
 * `retry(fn)` and `resilience.breaker(name, options)`; `recordingFetch` transports that answer at once, the
 * `./testing` TestClock; option objects made in another realm (`node:vm`, as an iframe's or a sandbox's config),
 * with a key hidden from enumeration, deep-frozen, or behind a Proxy.
 * Paths: plain call, fallback chain, degradation rewrite, the Worker proxy (route and chain), the ky client.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: all six fixed in code: plain objects of any realm copied, and keys defined not enumerable; the route key quoted cut; ky naming a nested unreadable value's path; retry(fn) refusing arrays; a named breaker's options checked whenever given):
 * 1. docs/options.md "check their options when they are made and keep what they read then, so an edit to your
 *    objects afterwards changes nothing (plain objects and arrays are copied …)". Observed: plain objects made in
 *    another realm (a `node:vm` context, an iframe) are checked as plain but kept by reference, so a later edit
 *    changes what runs, unchecked: a `fallback([…])` spare's `url` edited to another host is called there; a
 *    `degradation({…})` rule edited to another body field rewrites that field; a `resilientProxy` route's
 *    `upstream` edited to `https://evil.test/x?key=1` is where requests go (the query a route's upstream may not
 *    carry, never checked); the proxy's `resilience.retry.maxAttempts` edited from 1 to 4 makes 4 attempts; a ky
 *    client's `searchParams` edited adds `key=leak` to every call. Cause: src/core/plain-copy.ts copies an object
 *    only when its prototype is this realm's `Object.prototype` (or null), while the checker's `isPlainObject`
 *    (src/core/options/check-options.ts) takes another realm's as plain; arrays (`Array.isArray`) are copied, their
 *    objects not.
 * 2. docs/options.md "check their options when they are made and keep what they read then". Observed:
 *    `resilientProxy({ resilience })` whose `retry` is an own key hidden from enumeration (`Object.defineProperty`,
 *    or a Proxy whose `ownKeys` leaves it out) is checked (`resolveOptions` reads `o.retry` by name) and then dropped
 *    by the copy (`plainCopy` walks `Reflect.ownKeys` and enumerable keys), so the layer runs 3 attempts where
 *    `createResilience` and `createClient({ resilience })`, given the same object, run the 1 that was checked
 *    (src/cloudflare/resilient-proxy.ts, `plainCopy(options.resilience)` after `resolveOptions`).
 * 3. SECURITY.md "No secret in … errors …: URLs lose their userinfo … query string … an option's `ConfigError`
 *    included (a misspelt option's name …)". Observed: `resilientProxy` quotes an unknown route key whole:
 *    `routes.0: unknown option "https://u:pw@x.test/?key=SECRET"` (src/cloudflare/resilient-proxy.ts,
 *    `unknown option ${JSON.stringify(key)}`), where the root's checker cuts a misspelt key (`quoted`).
 * 4. docs/options.md "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`
 *    naming its path too" (and "The ky client's `createClient({ resilience })` … name these options as their
 *    callers wrote them"). Observed: `createClient({ headers: { get authorization() { throw } } })` (or a getter
 *    deep in `json`) is refused as `options: expected a value that can be read`, path `options`, not `headers` /
 *    `headers.authorization`: `plainCopy` throws below the top level and `unreadableKey` (src/ky/index.ts) only
 *    tries each top-level value's prototype, so it finds none and falls back to `options`.
 * 5. docs/retry.md "Both check all their options before the first attempt (a `ConfigError` naming the path …)".
 *    Observed: `retry(fn, { retryOn: [] })` and `retry(fn, [])` run `fn` and resolve, where `execute(fn, { retry:
 *    { retryOn: [] } })` and `createResilience` refuse `retry.retryOn` ("expected object, received an array"):
 *    src/policies/retry.ts `checkOptions` tests `typeof retryOn !== "object"` and `Object(options) !== options`,
 *    which an array passes.
 * 6. docs/options.md "What validates what": "**Options** (`createResilience`, `execute(fn, { retry })`,
 *    `breaker(name, options)`, …) … Options are code you wrote, checked when you pass them." Observed: once a named
 *    breaker exists, `resilience.breaker("gpu", { failureThreshold: -1, failureTreshold: 3 })` returns it without a
 *    word: the options are checked only inside the registry's create callback (src/http/named-breakers.ts), and
 *    docs/breakers.md says "options are read on first use only" but not that a bad value then passes.
 *
 * Held (plain `it`):
 * - ky `createClient` refuses `resilence`, `Resilience`, `RESILIENCE`, `resiliance`, `resilienc`, `resilience `
 *   (one or two edits) with a `ConfigError` whose path is the key, also beside a correct `resilience`; it passes
 *   `credentials`, `cf`, `next`, `dispatcher`, `resilienceOptions` to ky.
 * - a misspelt key under `resilience`, for both ky and the proxy, is named under `resilience` and cut when it is a
 *   URL; a revoked Proxy as `resilience` is `resilience: expected a value that can be read`.
 * - defaults by behaviour: `breaker.failureRate` / `minimumCalls` 0.5 / 100 (alternate 200/503: 99 attempts leave
 *   it closed, the 100th, the 50th failure, opens it); `breaker.maxHosts` 1000 (1,001 hosts keep 1,000 breakers);
 *   `debugInfo().options` shows 12 / 2 / 30000 / 3 / 30000 / 30000 / 0.5 / 100 / 1000, no timeouts and
 *   `redirects: "library"` in Node.
 * - deep-frozen options are taken by every entry (root, fallback, degradation, ky, proxy) and run.
 */
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const ctx = { waitUntil() {} };

/** The `ConfigError` `fn` throws, or `undefined` when it returns. */
function refusal(fn: () => unknown): ConfigError | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  return undefined;
}

/** `value` made in a realm of its own (a `node:vm` context, as an iframe's or sandbox's config). */
function foreign<T>(source: string): T {
  return vm.runInNewContext(`(${source})`) as T;
}

describe("1. options made in another realm are kept by reference, not copied", () => {
  it("foreign objects are what the checker takes as plain (the premise)", () => {
    // The checker refuses a class instance as a record (`headers`), but takes another realm's plain object.
    const headers = foreign<Record<string, string>>(`{ "x-a": "1" }`);
    expect(
      refusal(() => fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.test/v1", headers }] }])),
    ).toBeUndefined();
  });

  it("fallback([…]): a spare's url edited afterwards is not called", async () => {
    const chains = foreign<Array<{ name: string; endpoints: Array<{ name: string; url: string }> }>>(
      `[{ name: "c", endpoints: [{ name: "a", url: "https://a.test/v1" }, { name: "b", url: "https://b.test/v1" }] }]`,
    );
    const { fetch, sent } = recordingFetch(() => new Response("x", { status: 503 }));
    const r = createResilience({ fetch, retry: false, breaker: false, fallback: fallback(chains as never) });
    (chains[0]?.endpoints[1] as { url: string }).url = "https://evil.test/v1";
    await r.fetch("https://a.test/v1/x");
    expect(sent.map((s) => s.url)).toEqual(["https://a.test/v1/x", "https://b.test/v1/x"]);
  });

  it("degradation({…}): a rule edited afterwards changes nothing", async () => {
    const options = foreign<{ rules: Array<{ params: { steps: string } }> }>(
      `{ rules: [{ params: { steps: "steps" } }] }`,
    );
    const stage = degradation(options as never);
    (options.rules[0] as { params: { steps: string } }).params.steps = "other";
    const { fetch, sent } = recordingFetch();
    const r = createResilience({ fetch, degradation: stage });
    r.degradation.setLevel("low");
    await r.fetch("https://a.test/v1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ steps: 50, other: 50 }),
    });
    const body = JSON.parse(sent[0]?.body ?? "{}") as { steps: number; other: number };
    expect(body.other).toBe(50);
    expect(body.steps).toBeLessThan(50);
  });

  it("resilientProxy: a route's upstream edited afterwards is not where requests go", async () => {
    const routes = foreign<Array<{ path: string; upstream: string }>>(
      `[{ path: "/v1", upstream: "https://a.test/v1" }]`,
    );
    const { fetch, sent } = recordingFetch();
    const proxy = resilientProxy({ routes, resilience: { fetch } });
    (routes[0] as { upstream: string }).upstream = "https://evil.test/x?key=1";
    await proxy.fetch(new Request("https://w.test/v1/jobs"), {}, ctx);
    expect(sent.map((s) => s.url)).toEqual(["https://a.test/v1/jobs"]);
  });

  it("resilientProxy: its resilience options edited afterwards change nothing", async () => {
    const { fetch, sent } = recordingFetch(() => new Response("x", { status: 500 }));
    const resilience = foreign<{ retry: { maxAttempts: number }; fetch?: unknown }>(
      `{ retry: { maxAttempts: 1, initialDelay: 0 }, breaker: false }`,
    );
    resilience.fetch = fetch;
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://a.test/v1" }],
      resilience: resilience as never,
    });
    resilience.retry.maxAttempts = 4;
    await proxy.fetch(new Request("https://w.test/v1/jobs"), {}, ctx);
    expect(sent).toHaveLength(1);
  });

  it("ky createClient: searchParams edited afterwards change nothing", async () => {
    const { fetch, sent } = recordingFetch();
    const searchParams = foreign<Record<string, string>>(`{ model: "a" }`);
    const api = createClient({ prefix: "https://a.test", searchParams, resilience: { fetch } });
    searchParams.model = "b";
    searchParams.key = "leak";
    await api.get("x");
    expect(sent.map((s) => s.url)).toEqual(["https://a.test/x?model=a"]);
  });

  it("the same edits on this realm's objects change nothing (fallback, proxy route, ky)", async () => {
    const chains = [
      {
        name: "c",
        endpoints: [
          { name: "a", url: "https://a.test/v1" },
          { name: "b", url: "https://b.test/v1" },
        ],
      },
    ];
    const one = recordingFetch(() => new Response("x", { status: 503 }));
    const r = createResilience({ fetch: one.fetch, retry: false, breaker: false, fallback: fallback(chains) });
    (chains[0]?.endpoints[1] as { url: string }).url = "https://evil.test/v1";
    await r.fetch("https://a.test/v1/x");
    expect(one.sent.map((s) => s.url)).toEqual(["https://a.test/v1/x", "https://b.test/v1/x"]);

    const routes = [{ path: "/v1", upstream: "https://a.test/v1" }];
    const two = recordingFetch();
    const proxy = resilientProxy({ routes, resilience: { fetch: two.fetch } });
    (routes[0] as { upstream: string }).upstream = "https://evil.test/x";
    await proxy.fetch(new Request("https://w.test/v1/jobs"), {}, ctx);
    expect(two.sent.map((s) => s.url)).toEqual(["https://a.test/v1/jobs"]);

    const three = recordingFetch();
    const searchParams: Record<string, string> = { model: "a" };
    const api = createClient({ prefix: "https://a.test", searchParams, resilience: { fetch: three.fetch } });
    searchParams.model = "b";
    await api.get("x");
    expect(three.sent.map((s) => s.url)).toEqual(["https://a.test/x?model=a"]);
  });
});

describe("2. resilientProxy keeps what it checked", () => {
  const hidden = (fetch: typeof globalThis.fetch) => {
    const options: Record<string, unknown> = { fetch, breaker: false, budget: false };
    Object.defineProperty(options, "retry", { value: { maxAttempts: 1 }, enumerable: false });
    return options;
  };

  it("createResilience and createClient run the retry they read from a key hidden from enumeration", async () => {
    const one = recordingFetch(() => new Response("x", { status: 503 }));
    await createResilience(hidden(one.fetch)).fetch("https://a.test/");
    expect(one.sent).toHaveLength(1);
    const two = recordingFetch(() => new Response("x", { status: 503 }));
    await createClient({ resilience: hidden(two.fetch), throwHttpErrors: false }).get("https://a.test/");
    expect(two.sent).toHaveLength(1);
  });

  it("resilientProxy runs the retry it checked, not the default", async () => {
    const { fetch, sent } = recordingFetch(() => new Response("x", { status: 503 }));
    const clock = new TestClock();
    const resilience = hidden(fetch);
    resilience.clock = clock;
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: "https://a.test/v1" }],
      resilience: resilience as never,
    });
    await clock.run(proxy.fetch(new Request("https://w.test/v1/jobs"), {}, ctx));
    expect(sent).toHaveLength(1);
  });
});

describe("3. option errors quote no URL's userinfo or query", () => {
  const pasted = "https://u:pw@x.test/?key=SECRET";

  it("the root's checker cuts a misspelt key that is a URL", () => {
    const error = refusal(() => createResilience({ retry: { [pasted]: 1 } as never }));
    expect(error?.message).toContain("unknown option");
    expect(error?.message).not.toMatch(/pw|SECRET/);
    const proxyError = refusal(() =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://a.test" }], resilience: { [pasted]: 1 } as never }),
    );
    expect(proxyError?.path).toBe("resilience");
    expect(proxyError?.message).not.toMatch(/pw|SECRET/);
  });

  it("resilientProxy: an unknown route key is refused without quoting its userinfo or query", () => {
    const error = refusal(() =>
      resilientProxy({ routes: [{ path: "/", upstream: "https://a.test", [pasted]: 1 } as never] }),
    );
    expect(error?.path).toBe("routes.0");
    expect(error?.message).not.toMatch(/pw|SECRET/);
  });
});

describe("4. a value that cannot be read is named by its path", () => {
  it("ky createClient: a getter that throws at the top level, or inside resilience, is named by its path", () => {
    const top = refusal(() =>
      createClient({
        get headers(): Record<string, string> {
          throw new Error("no");
        },
      }),
    );
    expect(top?.path).toBe("headers");
    const inner = refusal(() =>
      createClient({
        resilience: {
          get retry(): { maxAttempts: number } {
            throw new Error("no");
          },
        },
      }),
    );
    expect(inner?.path).toBe("resilience.retry");
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(refusal(() => createClient({ resilience: proxy }))?.path).toBe("resilience");
  });

  it("ky createClient: a getter that throws inside headers is named under headers", () => {
    const error = refusal(() =>
      createClient({
        headers: {
          get authorization(): string {
            throw new Error("no");
          },
        },
      }),
    );
    expect(error?.path).toMatch(/^headers/);
  });
});

describe("5. retry(fn) refuses an array where an object is expected", () => {
  it("execute refuses retry.retryOn: []", async () => {
    const r = createResilience();
    // Changed in the thirty-third session: execute rejects with it (it threw at once).
    const error = await r.execute(() => 1, { retry: { retryOn: [] as never } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("execute.retry.retryOn");
  });

  it("retry(fn, { retryOn: [] }) rejects with a ConfigError before fn runs", async () => {
    let ran = 0;
    const outcome = await retry(() => ++ran, { retryOn: [] as never }).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ConfigError);
    expect((outcome as ConfigError).path).toBe("retry.retryOn");
    expect(ran).toBe(0);
  });

  it("retry(fn, []) rejects with a ConfigError before fn runs", async () => {
    let ran = 0;
    const outcome = await retry(() => ++ran, [] as never).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ConfigError);
    expect(ran).toBe(0);
  });
});

describe("6. breaker(name, options) checks the options it is passed", () => {
  it("on first use a bad value is a ConfigError naming its path", () => {
    const r = createResilience();
    const error = refusal(() => r.breaker("gpu", { failureThreshold: -1 }));
    expect(error?.path).toBe('breaker("gpu").failureThreshold');
  });

  it("later, a bad value or a typo is still a ConfigError", () => {
    const r = createResilience();
    r.breaker("gpu");
    const error = refusal(() => r.breaker("gpu", { failureThreshold: -1, failureTreshold: 3 } as never));
    expect(error?.path).toMatch(/^breaker\("gpu"\)/);
  });
});

describe("held: ky refuses a misspelt resilience key, and only that", () => {
  it("keys one or two edits from resilience are a ConfigError naming the key", () => {
    for (const key of ["resilence", "Resilience", "RESILIENCE", "resiliance", "resilienc", "resilience "]) {
      const error = refusal(() => createClient({ [key]: { retry: false } } as never));
      expect(error?.path, key).toBe(key);
      expect(error?.message, key).toContain('did you mean "resilience"');
    }
    const both = refusal(() => createClient({ resilience: { retry: false }, resilence: {} } as never));
    expect(both?.path).toBe("resilence");
  });

  it("other keys are ky's, passed on", () => {
    for (const key of ["credentials", "cf", "next", "dispatcher", "resilienceOptions", "priority"]) {
      expect(
        refusal(() => createClient({ [key]: undefined } as never)),
        key,
      ).toBeUndefined();
    }
  });
});

describe("held: defaults in effect", () => {
  it("breaker.failureRate / minimumCalls 0.5 / 100: the 100th attempt, the 50th failure, opens", async () => {
    const clock = new TestClock();
    const { fetch } = recordingFetch((_, n) => new Response("x", { status: n % 2 === 0 ? 503 : 200 }));
    const r = createResilience({ fetch, clock, retry: false });
    for (let i = 0; i < 99; i++) await r.fetch("https://a.test/");
    expect(r.health().breakers["a.test"]?.state).toBe("closed");
    await r.fetch("https://a.test/");
    expect(r.health().breakers["a.test"]?.state).toBe("open");
    expect(r.health().breakers["a.test"]?.consecutiveFailures).toBeLessThan(12);
  });

  it("breaker.maxHosts 1000: 1,001 hosts keep 1,000 breakers", async () => {
    const { fetch } = recordingFetch();
    const r = createResilience({ fetch, retry: false });
    for (let i = 0; i <= 1000; i++) await r.fetch(`https://h${i}.test/`);
    expect(r.debugInfo().breakerCount).toBe(1000);
  });

  it("debugInfo().options shows the documented breaker numbers, no timeouts, library redirects", () => {
    const options = createResilience().debugInfo().options;
    expect(options.breaker).toEqual({
      failureThreshold: 12,
      successThreshold: 2,
      timeout: 30_000,
      halfOpenMaxCalls: 3,
      timeWindow: 30_000,
      probeTimeout: 30_000,
      failureRate: 0.5,
      minimumCalls: 100,
      maxHosts: 1000,
    });
    expect(options.timeout).toEqual({ attempt: undefined, total: undefined });
    expect(options.redirects).toBe("library");
  });
});

describe("held: deep-frozen options", () => {
  const deepFreeze = <T>(value: T): T => {
    if (typeof value === "object" && value !== null) {
      for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
      Object.freeze(value);
    }
    return value;
  };

  it("every entry takes them and runs", async () => {
    const { fetch, sent } = recordingFetch();
    const r = createResilience(
      deepFreeze({
        fetch,
        retry: { maxAttempts: 2, retryOn: { statuses: [503], methods: ["get"] } },
        crossOriginHeaders: ["X-Trace"],
        fallback: fallback(
          deepFreeze([{ name: "c", endpoints: [{ name: "a", url: "https://a.test/v1", headers: { "x-a": "1" } }] }]),
        ),
        degradation: degradation(deepFreeze({ rules: [{ params: { steps: "steps" } }], levels: { low: {} } })),
      }),
    );
    await r.fetch("https://a.test/v1/x");
    await createClient(deepFreeze({ resilience: { fetch, retry: { maxAttempts: 1 } }, headers: { a: "b" } })).get(
      "https://b.test/",
    );
    await resilientProxy(
      deepFreeze({ routes: [{ path: "/v1", upstream: "https://c.test/v1" }], resilience: { fetch, retry: false } }),
    ).fetch(new Request("https://w.test/v1/j"), {}, ctx);
    expect(sent.map((s) => s.url)).toEqual(["https://a.test/v1/x", "https://b.test/", "https://c.test/v1/j"]);
  });
});
