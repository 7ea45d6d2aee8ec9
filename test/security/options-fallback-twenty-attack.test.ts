/**
 * Outside-in attack on docs/options.md (each option's check, "a `ConfigError` naming the path", "a value that
 * cannot be read … naming its path too", how options combine) and docs/fallback.md (routing by URL prefix, an
 * endpoint's own query, rebasing, the checks `fallback([…])` makes of an endpoint's own `headers`). How: public
 * entries only (root, `./fallback`, `./ky`); option objects built as a user's config loader builds them
 * (`JSON.parse`, getters, arrays with accessors); `hostFetch` stubs that record each request as the platform
 * builds it, zero retry delays, no sleeps, no timers left. Not repeated: options-differential-attack (random
 * option objects, wrong types and ranges on every entry), guides-sixteen-attack (a getter on an object's key,
 * a revoked Proxy as a group), chain-fixes-attack and chains-levels-nineteen-attack (an endpoint's own `?key=`
 * under one chain, re-encoded, repeated, with a `{ query }` rule).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`):
 * 1. docs/options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError`
 *    naming its path too." A getter that throws on an array element or a record entry is named by its container:
 *    `crossOriginHeaders` (not `crossOriginHeaders.1`), `retry.retryOn.statuses` (not `….statuses.1`),
 *    `fallback.0.endpoints` (not `fallback.0.endpoints.1`) and `fallback.0.endpoints.0.headers` (not
 *    `….headers.authorization`), each "expected a value that can be read, received an array / an object"; a
 *    getter on an object's key is named by its own path. Cause: src/core/options/check-options.ts:107 and 111, the
 *    `rec` and `list` branches of `walkRule` read `v[key]` / `v[i]` as the argument of `walk`, outside that
 *    walk's `try`, so the throw is caught by the container's `walk` (line 91) under the container's path;
 *    `checkObject` (line 155) reads each key in a `try` of its own.
 * 2. docs/fallback.md: "a header value fetch cannot send, one with a control character, is a `TypeError` too,
 *    and in an endpoint's own `headers` a `ConfigError` when the chain is made". An own header named
 *    `__proto__` (what `JSON.parse` makes of a config file's `"__proto__": …`) has its value never checked:
 *    `"caf€"` and `"a\nb"` are accepted by `fallback([…])`; then every call fails the primary before sending
 *    (`Headers.set` throws) and the chain moves on to the spare without a word, so the primary is never
 *    reached. Cause: src/core/options/check-options.ts:105 (`rec`) skips the key `__proto__`, while the
 *    headers' name check (`Object.keys`, src/fallback/fallback-rules.ts:23) and the send
 *    (`Object.entries`, src/fallback/endpoint-request.ts:80 and 95) take it.
 * 3. docs/fallback.md: "A request whose URL starts with a chain's first endpoint `url` goes down that chain
 *    (longest prefix wins …)" and "(an endpoint's own query, `?key=…`, stays on it: a call that carries the
 *    first endpoint's own parameters, wherever in its query and under whatever path, sends them once to that
 *    endpoint and to no other)". Two chains whose first endpoints differ only in their query
 *    (`https://a.test/v1?model=a`, `https://a.test/v1?model=b`): a call to `https://a.test/v1?model=b`, which
 *    starts with the second's URL and not the first's, goes down the first chain; its primary is sent
 *    `?model=a&model=b` (a parameter the caller never wrote, first) and its spare gets `model=b`, the second
 *    chain's own parameter, on another origin. The same with a `Request` input and under a path
 *    (`/v1/x?model=b&seed=1`). Cause: src/fallback/chain-router.ts:132 (`chainPrefix`) cuts the query from the
 *    URL that selects a chain, so both routes get the prefix `https://a.test/v1` and the stable sort by prefix
 *    length (line 64) makes the first declared win; `restAfter`'s branch for a prefix "into the query"
 *    (src/http/request/url-prefix.ts:52) is dead for chains, and `fallback([…])` does not refuse the pair.
 *
 * Held (plain `it`):
 * - a getter on an object's own key (`fallback.0.endpoints.0.url`, `retry.retryOn.methods`) is named by its path;
 * - a bad value under any other header name is a `ConfigError` naming `…headers.<name>`, never quoting the value;
 * - one chain whose first endpoint carries `?model=a`: the call's `model=a` goes once to that endpoint and not
 *   to the spare, the caller's other parameters to both; the ky client goes down the same chain;
 * - `undefined` never wipes a default: a chain whose `order`, `hedge` and `expectedQuality` are `undefined`,
 *   and root options whose groups and fields are `undefined`, behave as the defaults (3 attempts, fixed order).
 *
 * Suspicious, not pinned (no sentence promises otherwise):
 * - `resilience.fallback.chain(name, { order: "adaptive" })` for a chain that exists (configured or made
 *   before with the default order) returns it as it is: the `order` given is checked, then ignored silently;
 * - the adaptive order's tie ("scores within 0.05 counting as a tie broken by `expectedQuality`, then by
 *   configured order") is no order: scores 0.93 / 0.96 / 1.00 of equal quality make a cycle (each neighbour a
 *   tie, the ends not), and `Array#sort` with that comparator puts one pair against the rule whatever it does;
 * - undici drops a header named `__proto__` on the way out (its own header map), so on Node an endpoint's own
 *   `__proto__` header is never sent even when its value is fine.
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

const ok = () => new Response("ok");

function thrown(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** An array whose element `at` is a getter that throws (a lazy config loader's array). */
function arrayThrowingAt<T>(items: T[], at: number): T[] {
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

/** The path and whether it is a ConfigError. */
function pathOf(make: () => unknown): [boolean, string | undefined] {
  const error = thrown(make);
  return [error instanceof ConfigError, (error as ConfigError | undefined)?.path];
}

// ---------------------------------------------------------------------------------------------
describe('options.md: "A value that cannot be read (a getter that throws, a revoked `Proxy`) is a `ConfigError` naming its path too."', () => {
  it("held: a getter on an object's own key is named by that key's path", () => {
    const endpoint = {
      name: "p",
      get url(): string {
        throw new Error("not loaded");
      },
    };
    expect(pathOf(() => fallback([{ name: "c", endpoints: [endpoint] }]))).toEqual([
      true,
      "fallback.0.endpoints.0.url",
    ]);
    const retryOn = {
      get methods(): string[] {
        throw new Error("not loaded");
      },
    };
    expect(pathOf(() => createResilience({ retry: { retryOn } }))).toEqual([true, "retry.retryOn.methods"]);
  });

  // Defect 1. Observed: [true, "crossOriginHeaders"], "expected a value that can be read, received an array".
  it("1a. a getter on crossOriginHeaders[1] is named crossOriginHeaders.1", () => {
    const names = arrayThrowingAt(["x-trace", "x-span"], 1);
    expect(pathOf(() => createResilience({ crossOriginHeaders: names }))).toEqual([true, "crossOriginHeaders.1"]);
  });

  // Observed: [true, "retry.retryOn.statuses"].
  it("1b. a getter on retry.retryOn.statuses[1] is named retry.retryOn.statuses.1", () => {
    const statuses = arrayThrowingAt([503, 504], 1);
    expect(pathOf(() => createResilience({ retry: { retryOn: { statuses } } }))).toEqual([
      true,
      "retry.retryOn.statuses.1",
    ]);
  });

  // Observed: [true, "fallback.0.endpoints"].
  it("1c. fallback([…]): a getter on endpoints[1] is named fallback.0.endpoints.1", () => {
    const endpoints = arrayThrowingAt(
      [
        { name: "p", url: "https://a.test/v1" },
        { name: "s", url: "https://b.test/v1" },
      ],
      1,
    );
    expect(pathOf(() => fallback([{ name: "c", endpoints }]))).toEqual([true, "fallback.0.endpoints.1"]);
  });

  // Observed: [true, "fallback.0.endpoints.0.headers"], "… received an object".
  it("1d. fallback([…]): a getter on headers.authorization is named …headers.authorization", () => {
    const headers: Record<string, string> = { accept: "application/json" };
    Object.defineProperty(headers, "authorization", {
      get() {
        throw new Error("vault locked");
      },
      enumerable: true,
    });
    expect(
      pathOf(() => fallback([{ name: "c", endpoints: [{ name: "p", url: "https://a.test/v1", headers }] }])),
    ).toEqual([true, "fallback.0.endpoints.0.headers.authorization"]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('fallback.md: "a header value fetch cannot send … in an endpoint\'s own `headers` a `ConfigError` when the chain is made"', () => {
  const chainWith = (headers: Record<string, string>) =>
    fallback([
      {
        name: "c",
        endpoints: [
          { name: "p", url: "https://a.test/v1", headers },
          { name: "s", url: "https://b.test/v1" },
        ],
      },
    ]);

  it("held: a value above U+00FF or with a newline under any other name is a ConfigError naming it, not quoting it", () => {
    for (const value of ["caf\u20ac", "a\nb", "a\u0001b"]) {
      const error = thrown(() => chainWith({ "x-api-key": value }));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe("fallback.0.endpoints.0.headers.x-api-key");
      expect((error as Error).message).not.toContain(value);
    }
  });

  // Defect 2. Observed: accepted (no throw); `Object.keys` of a JSON-parsed object lists `__proto__`, the header
  // name check passes it (a token), the value check skips it.
  it("2a. an own header `__proto__` (from JSON.parse) whose value fetch cannot send is a ConfigError", () => {
    for (const value of ["caf\u20ac", "a\nb"]) {
      const headers = JSON.parse(`{"__proto__": ${JSON.stringify(value)}}`) as Record<string, string>;
      expect(Object.keys(headers)).toEqual(["__proto__"]);
      const error = thrown(() => chainWith(headers));
      expect([value, error instanceof ConfigError]).toEqual([value, true]);
    }
  });

  // What follows from 2a being accepted (observed today, and what the documented ConfigError would prevent):
  // every call fails the primary before anything is sent, and the chain serves from the spare without a word.
  it("2b. …so a chain made with it never silently passes its primary over on every call", async () => {
    const headers = JSON.parse('{"__proto__": "caf\u20ac"}') as Record<string, string>;
    const net = hostFetch({ "a.test": ok, "b.test": ok });
    const made = thrown(() => chainWith(headers));
    // The documented outcome: refused when made. Today: made, then every call goes to the spare.
    if (made instanceof ConfigError) return;
    const layer = createResilience({ retry: FAST, fetch: net.fetch, fallback: chainWith(headers) });
    const res = await layer.fetch("https://a.test/v1/jobs");
    expect([getResilienceInfo(res)?.endpoint, net.log.map((r) => new URL(r.url).host)]).toEqual(["p", ["a.test"]]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("fallback.md: routing by URL prefix, and an endpoint's own query sent once to it and to no other", () => {
  /** Two chains whose first endpoints differ only in their query. */
  function twoChains(primary: number) {
    const net = hostFetch({ "a.test": status(primary), "b.test": ok, "c.test": ok });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: 1 },
      fetch: net.fetch,
      fallback: fallback([
        {
          name: "A",
          endpoints: [
            { name: "a1", url: "https://a.test/v1?model=a" },
            { name: "a2", url: "https://b.test/a" },
          ],
        },
        {
          name: "B",
          endpoints: [
            { name: "b1", url: "https://a.test/v1?model=b" },
            { name: "b2", url: "https://c.test/b" },
          ],
        },
      ]),
    });
    return { net, layer };
  }

  it("held: one chain whose first endpoint carries ?model=a sends it once to that endpoint, never to the spare (plain, ky)", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: 1 },
      fetch: net.fetch,
      fallback: fallback([
        {
          name: "A",
          endpoints: [
            { name: "a1", url: "https://a.test/v1?model=a" },
            { name: "a2", url: "https://b.test/a" },
          ],
        },
      ]),
    });
    const res = await layer.fetch("https://a.test/v1/x?seed=1&model=a");
    expect(getResilienceInfo(res)?.endpoint).toBe("a2");
    const viaKy = await createClient({ resilience: layer }).get("https://a.test/v1/x?model=a&seed=2");
    expect(getResilienceInfo(viaKy)?.endpoint).toBe("a2");
    expect(net.log.map((r) => r.url)).toEqual([
      "https://a.test/v1/x?model=a&seed=1",
      "https://b.test/a/x?seed=1",
      "https://a.test/v1/x?model=a&seed=2",
      "https://b.test/a/x?seed=2",
    ]);
  });

  // Defect 3. Observed: endpoint "a1", sent ["https://a.test/v1?model=a&model=b"].
  it("3a. a call to the second chain's exact URL goes down that chain: its primary gets ?model=b alone", async () => {
    const { net, layer } = twoChains(200);
    const res = await layer.fetch("https://a.test/v1?model=b");
    expect([getResilienceInfo(res)?.endpoint, net.log.map((r) => r.url)]).toEqual([
      "b1",
      ["https://a.test/v1?model=b"],
    ]);
  });

  // Observed: a1 then a2: ["https://a.test/v1/x?model=a&model=b&seed=1", "https://b.test/a/x?model=b&seed=1"]:
  // the second chain's own parameter goes to the first chain's spare, on another origin.
  it("3b. a Request under its path, its primary down: model=b goes to b1 once and to no other endpoint", async () => {
    const { net, layer } = twoChains(503);
    const res = await layer.fetch(new Request("https://a.test/v1/x?model=b&seed=1", { method: "PUT", body: "{}" }));
    expect(getResilienceInfo(res)?.endpoint).toBe("b2");
    expect(net.log.map((r) => [r.method, r.url, r.text])).toEqual([
      ["PUT", "https://a.test/v1/x?model=b&seed=1", "{}"],
      ["PUT", "https://c.test/b/x?seed=1", "{}"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('options.md: "`undefined` never wipes a default"', () => {
  it("held: undefined chain fields and root groups act as the defaults (fixed order, 3 attempts per endpoint)", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": status(503, 503, 200) });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: undefined, retryOn: { statuses: undefined, methods: undefined } },
      budget: undefined,
      breaker: undefined,
      timeout: { attempt: undefined, total: undefined },
      crossOriginHeaders: undefined,
      maxReplayBytes: undefined,
      fetch: net.fetch,
      fallback: fallback([
        {
          name: "c",
          order: undefined,
          hedge: undefined,
          endpoints: [
            { name: "p", url: "https://a.test/v1", expectedQuality: undefined, headers: undefined },
            { name: "s", url: "https://b.test/v1", transform: undefined, validate: undefined },
          ],
        },
      ]),
    });
    const res = await layer.fetch("https://a.test/v1/x", { headers: { authorization: "Bearer A" } });
    expect([res.status, getResilienceInfo(res)?.endpoint]).toEqual([200, "s"]);
    expect(net.log.map((r) => new URL(r.url).host)).toEqual([
      "a.test",
      "a.test",
      "a.test",
      "b.test",
      "b.test",
      "b.test",
    ]);
    // The caller's credential stayed with the origin it addressed.
    expect(net.log.map((r) => r.headers.some(([n]) => n === "authorization"))).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(layer.fallback?.chain("c").ordered()).toEqual(["p", "s"]);
  });
});
