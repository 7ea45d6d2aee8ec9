/**
 * Outside-in attack on this session's last fixes, down every path: the `is…Error` guards and the retry messages
 * facing a thrown value that throws when looked at; a shared open state adopted through `kvStore` or
 * `durableObjectStore`; the ky client refusing options that are no object; bytes sent as a `Blob` to the global
 * fetch under `redirects: "platform"`.
 * Docs: CHANGELOG.md ("the is…Error guards and RetryExhaustedError's message survive a thrown value that throws
 * when looked at, so execute retries it"); JSDoc of the guards ("True for … across realms"); docs/retry.md ("It
 * rejects only when there is no Response to give, with a `ResilienceError` subclass whose `cause` is the underlying
 * error"; "Both [`execute` and `retry(fn)`] retry every thrown error except an abort … both reject with
 * `RetryExhaustedError` when attempts run out"; "With `redirects: "platform"` outside a browser and the global
 * `fetch`, a body of bytes … goes to fetch as a `Blob` of those bytes"); docs/breakers.md ("Network errors,
 * attempt timeouts, 5xx and 429 are failures"; "Any probe failure re-opens") and JSDoc of `BreakerOptions.isFailure`
 * ("@default every error except the caller's abort"); docs/fallback.md ("a `transform` that fails sends nothing,
 * so the chain may move on"; "`respond(req)` … One that throws or rejects sent nothing, so the call moves on to the
 * next endpoint whatever its method"; "An endpoint is left for the next one on a network error"; "When every
 * endpoint failed, the call resolves with the last response any endpoint gave"; FallbackChain "`.execute(input)`
 * (rejects with `FallbackExhaustedError`)"); docs/health-and-events.md ("`lastFailureTime` is when the last failed
 * attempt counted, `null` before any and again once a spell ends in a close"; "Work run through `execute(fn)` counts
 * there too"); docs/retry.md ky ("as ky refuses them", CHANGELOG.md: "ky client: options that are no object refused
 * as ky refuses them, naming what they are").
 * How: `createResilience`, `health`, `debugInfo`, `on`, `execute`, the seven guards (root); `retry`, `FallbackChain`
 * (./policies); `fallback` (./fallback); `createClient` (./ky) beside plain `ky`; `kvStore` over an in-file KV
 * namespace and `durableObjectStore` over test/cloudflare/fake-durable-object.ts (./cloudflare); `node:vm` for
 * other realms; `WallClock` (test/helpers) for clocks set back; node:http servers on 127.0.0.1. Outside this file,
 * the built package was run under Node, Deno and Bun (node_modules/.bin/deno, node_modules/.bin/bun) with
 * `redirects: "platform"` against a 307: a `Request` with text and with bytes, and bytes and an ArrayBuffer in
 * `init`, arrived whole at the target in all three (bare Node fetch fails the bytes ones: "fetch failed").
 * Paths: guards; `execute` (plain, named breaker); `retry(fn)`; plain call (breaker on and off); redirect hop;
 * chain (transport, `transform`, `respond`, `validate`), hedge; a layer as another's fetch; ky client;
 * `FallbackChain.execute`; KV and Durable Object stores across two layers with a clock set back; ky's `extend`,
 * `extend(fn)`, `create`, `get`/`post`/`put`/`patch`/`head`/`delete` and the bare call; `Request` and `init` bytes.
 *
 * Hostile values used: a revoked `Proxy`; an `Error` (and a `TypeError("fetch failed")`) whose `name` getter
 * throws; a Proxy of an `Error` whose `getPrototypeOf` trap throws; and, for the chains, a plain
 * `Object.create(null)` (readable, but `String()` of it throws).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: every place that looks at a thrown value (the breaker's reason, the network-error test, the chain's and the call's messages and choices, the request event's name) reads it through `unlessThrows`, so such a value counts, moves a chain on and is the call's `cause`):
 * 1. docs/breakers.md "Network errors … are failures" / JSDoc `isFailure` "@default every error except the caller's
 *    abort". Observed: a transport that throws a revoked Proxy or an `Error` whose `name` getter throws fails every
 *    attempt, yet the host's breaker counts nothing (`failureCount` 0, `lastFailureTime` null, never opens however
 *    many calls fail; a `TypeError("fetch failed")` whose name getter throws is not even retried). The same for
 *    `execute` under a named `breaker`. Mechanism: `CircuitBreaker.reportError` (src/policies/circuit-breaker.ts:265)
 *    reads `error instanceof Error ? error.name : …` unguarded to name the failure; the throw escapes before
 *    `failure(permit, …)` runs, so neither a failure nor a success is recorded, and the throw replaces the thrown
 *    value for the rest of the call. Also docs/breakers.md "Any probe failure re-opens": a half-open probe that
 *    fails so leaves the breaker half-open with the probe's permit never given back: the next call is refused
 *    (`CircuitOpenError`) until `probeTimeout` (30 s) expires the lease, and only then does it read open.
 * 2. docs/retry.md "rejects … with a `ResilienceError` subclass whose `cause` is the underlying error". Observed:
 *    for such a value thrown by the transport, `RetryExhaustedError.cause` is the engine's `TypeError` ("Cannot
 *    perform 'getPrototypeOf' on a proxy that has been revoked") or the getter's own error, not what the transport
 *    threw; with `breaker: false` too. Mechanism: (1) with a breaker; without one `isNetworkError`
 *    (src/http/send/classify.ts:15, `error instanceof TypeError`, then `.name`) throws from the retry decision.
 * 3. docs/fallback.md "a `transform` that fails sends nothing, so the chain may move on" and "`respond` … One that
 *    throws or rejects sent nothing, so the call moves on to the next endpoint whatever its method". Observed: a
 *    `transform` or `respond` that throws a revoked Proxy or `Object.create(null)` does not move the chain on: the
 *    chain run itself throws, the layer retries the whole chain (a 503 first endpoint is sent 3 times) and rejects
 *    with `RetryExhaustedError` "to c" (the chain's name) whose cause is the engine's `TypeError`; a `respond` that
 *    is the last endpoint does not give back the earlier endpoint's 503. Mechanism: `describe`
 *    (src/policies/fallback-chain.ts:525-527, `error instanceof Error ? … : String(error)`, not guarded as the
 *    fixed one in src/core/errors.ts is) is called on the endpoint's raw error by `#conclude` (line 442) for the
 *    `onFallback` reason.
 * 4. docs/fallback.md "An endpoint is left for the next one on a network error". Observed: a transport that throws
 *    `Object.create(null)` on endpoint p (a `TypeError` or a revoked Proxy there moves on to q) ends the chain:
 *    `RetryExhaustedError` "to c: Cannot convert object to primitive value", q never asked; a hedge the same. Same
 *    mechanism as 3.
 * 5. docs/fallback.md FallbackChain "`.execute(input)` (rejects with `FallbackExhaustedError`)". Observed:
 *    `new FallbackChain("c")` (./policies) whose first entry throws a revoked Proxy, an `Error` with a throwing
 *    `name`, or `Object.create(null)` never runs the second entry (which would return "ok"), and rejects with the
 *    engine's `TypeError` (or the getter's error), not `FallbackExhaustedError`, when both throw. Same mechanism.
 *
 * Held (plain `it`):
 * - The seven guards answer `false` for every hostile value, and still recognise errors made in a `node:vm`
 *   context by name (`isTimeoutError` only with a string `phase`); a plain object with the name is none.
 * - `execute` and `retry(fn)` retry each hostile value on every attempt and reject with `RetryExhaustedError`
 *   whose cause is the value thrown; its message says "a thrown value that cannot be read" where neither the
 *   message nor the value can be read; `retry` events name it by its kind; `health()`/`debugInfo()` do not throw.
 * - The same values thrown by a transport on a plain call, a redirect hop, a chain endpoint (moves on to q), a
 *   hedge, a `validate` that throws or rejects (moves on), a layer used as another's fetch and the ky client: every
 *   call settles (no hang, no unhandled rejection), with `RetryExhaustedError` (or the next endpoint's answer), and
 *   `health()`, `debugInfo()` and listeners see nothing that throws.
 * - `kvStore`: a layer that counted a failure and adopts the open spell another layer shared keeps its
 *   `lastFailureTime`, with its clock set back an hour; half-open after the spell, a probe that closes it makes
 *   it `null`. `durableObjectStore`: the adopting layer's `lastFailureTime` is its own last failure (counted on
 *   the set-back clock), `null` after the probe closes the spell.
 * - ky: `extend`, `extend(fn)`, `create`, every call method and the bare call refuse a number, string, boolean,
 *   symbol, bigint, `null`, an array and a function with a `TypeError` naming what they got, where plain ky
 *   refuses them too; `undefined` means none.
 * - `redirects: "platform"`: a global fetch installed after the layer was made gets a `Blob` for bytes (a
 *   `Request`'s and `init`'s); a `fetch` option gets the bytes; Node's own follower delivers `Request` bytes and
 *   `init` bytes through a 307 and 308 where bare fetch fails.
 */
import { runInNewContext } from "node:vm";
import ky from "ky";
import { afterEach, describe, expect, it, vi } from "vitest";
import { durableObjectStore, type KvNamespaceLike, kvStore } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isRetryExhaustedError,
  isTimeoutError,
  type Resilience,
  RetryExhaustedError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { FallbackChain, retry } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { FakeNamespace, fakeCtx } from "../cloudflare/fake-durable-object.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";
import { WallClock } from "../helpers/wall-clock.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

afterEach(() => {
  vi.unstubAllGlobals();
});

const FAST = { initialDelay: 0, maxDelay: 0, jitter: "none" as const };

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}
function throwingName(make: () => Error = () => new Error("x")): Error {
  const error = make();
  Object.defineProperty(error, "name", {
    get() {
      throw new Error("name getter");
    },
  });
  return error;
}
function protoTrap(): object {
  return new Proxy(new Error("p"), {
    getPrototypeOf() {
      throw new Error("proto trap");
    },
  });
}
const nullProto = (): object => Object.create(null) as object;

/** The values that throw when looked at. */
const HOSTILE: Array<[string, () => unknown]> = [
  ["revoked Proxy", revokedProxy],
  ["Error with a throwing name", () => throwingName()],
  ["Proxy with a throwing getPrototypeOf", protoTrap],
];

/** A transport that throws `make()` for `host`'s requests and sends the others with the platform's fetch. */
function throwingFor(host: string, make: () => unknown) {
  const thrown: unknown[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    if (new URL(url).host === host) {
      const value = make();
      thrown.push(value);
      return Promise.reject(value);
    }
    return globalThis.fetch(input, init);
  };
  return { fetch, thrown };
}

/** `health()`, `debugInfo()` and JSON of both: none of them may throw. */
function looksFine(layer: Resilience): void {
  expect(() => JSON.stringify([layer.health(), layer.debugInfo()])).not.toThrow();
}

const status =
  (code: number, body = "") =>
  (hit: Hit) => {
    hit.res.statusCode = code;
    hit.res.end(body);
  };

describe("the guards and the retry loops facing a value that throws when looked at", () => {
  it("every guard answers false for a hostile value, and still knows another realm's errors", () => {
    const guards = [
      isCircuitOpenError,
      isRetryExhaustedError,
      isTimeoutError,
      isFallbackExhaustedError,
      isBulkheadRejectedError,
      isConfigError,
      isResilienceError,
    ];
    const values = [
      ...HOSTILE.map(([, make]) => make()),
      throwingName(() => new TypeError("fetch failed")),
      nullProto(),
    ];
    for (const guard of guards) for (const value of values) expect(guard(value)).toBe(false);
    const foreign = (name: string, extra = "") =>
      runInNewContext(`const e = new Error("x"); e.name = ${JSON.stringify(name)}; ${extra}; e`) as unknown;
    // Since the fifty-first session a name alone is not enough: the fields its class sets are asked for too.
    expect(isCircuitOpenError(foreign("CircuitOpenError", 'e.key = "k"; e.retryAt = 1'))).toBe(true);
    expect(isCircuitOpenError(foreign("CircuitOpenError"))).toBe(false);
    expect(isRetryExhaustedError(foreign("RetryExhaustedError", "e.attempts = 2"))).toBe(true);
    expect(isFallbackExhaustedError(foreign("FallbackExhaustedError", 'e.chain = "c"; e.errors = {}'))).toBe(true);
    expect(isBulkheadRejectedError(foreign("BulkheadRejectedError", 'e.key = "k"'))).toBe(true);
    expect(isConfigError(foreign("ConfigError", 'e.path = "retry"'))).toBe(true);
    expect(isResilienceError(foreign("CircuitOpenError", 'e.key = "k"; e.retryAt = 1'))).toBe(true);
    expect(isTimeoutError(foreign("TimeoutError", 'e.phase = "total"'))).toBe(true);
    expect(isTimeoutError(foreign("TimeoutError"))).toBe(false);
    expect(isCircuitOpenError({ name: "CircuitOpenError" })).toBe(false);
    // A foreign error whose name getter throws is none either.
    const foreignHostile = runInNewContext(
      'const e = new Error("x"); Object.defineProperty(e, "name", { get() { throw new Error("no"); } }); e',
    ) as unknown;
    for (const guard of guards) expect(guard(foreignHostile)).toBe(false);
  });

  it("execute and retry(fn) retry every hostile value and reject with RetryExhaustedError", async () => {
    for (const [label, make] of [...HOSTILE, ["null-prototype object", nullProto] as [string, () => unknown]]) {
      const layer = createResilience({ retry: FAST });
      const reasons: string[] = [];
      layer.on("retry", (event) => reasons.push(event.reason));
      const thrown: unknown[] = [];
      const error = await rejection(
        layer.execute(() => {
          const value = make();
          thrown.push(value);
          throw value;
        }),
      );
      expect(thrown, label).toHaveLength(3);
      expect(error, label).toBeInstanceOf(RetryExhaustedError);
      expect((error as RetryExhaustedError).cause, label).toBe(thrown[2]);
      expect(reasons, label).toHaveLength(2);
      looksFine(layer);
      let runs = 0;
      const alone = await rejection(
        retry(() => {
          runs++;
          throw make();
        }, FAST),
      );
      expect(runs, label).toBe(3);
      expect(alone, label).toBeInstanceOf(RetryExhaustedError);
    }
    const unreadable = await rejection(retry(() => Promise.reject(revokedProxy()), FAST));
    expect((unreadable as Error).message).toBe("gave up after 3 attempts: a thrown value that cannot be read");
  });
});

describe("the same values thrown by a transport, on every path", () => {
  it("every call settles with the documented class; health, debugInfo and events never throw", async () => {
    for (const [label, make] of HOSTILE) {
      a.reset();
      b.reset();
      const { value: outcomes, unhandled } = await watchUnhandled(async () => {
        const out: Record<string, unknown> = {};
        const settle = async (name: string, layer: Resilience, call: () => Promise<Response>) => {
          const events: string[] = [];
          for (const kind of ["request", "retry", "breaker", "fallback", "redirect"] as const)
            layer.on(kind, () => {
              events.push(kind);
            });
          out[name] = await call().then(
            async (response) => `${response.status} ${await response.text()}`,
            (error: unknown) => (isRetryExhaustedError(error) ? "RetryExhaustedError" : error),
          );
          looksFine(layer);
          expect(events, `${label}: ${name}`).toContain("request");
        };
        // Plain call.
        const plain = createResilience({ retry: FAST, fetch: throwingFor(a.host, make).fetch });
        await settle("plain", plain, () => plain.fetch(`${a.base}/x`));
        // A redirect hop to the host whose transport throws.
        b.on((hit) => {
          hit.res.statusCode = 307;
          hit.res.setHeader("location", `${a.base}/target`);
          hit.res.end();
        });
        const hop = throwingFor(a.host, make);
        const redirecting = createResilience({ retry: FAST, redirects: "library", fetch: hop.fetch });
        await settle("redirect hop", redirecting, () =>
          redirecting.fetch(`${b.base}/go`, { method: "POST", body: "job", headers: { "idempotency-key": "k" } }),
        );
        // A chain: p's transport throws, q answers.
        b.on(status(200, "q"));
        const chainFetch = throwingFor(a.host, make);
        const chained = createResilience({
          retry: FAST,
          fetch: chainFetch.fetch,
          fallback: fallback([
            {
              name: "c",
              endpoints: [
                { name: "p", url: `${a.base}/v1` },
                { name: "q", url: `${b.base}/v1` },
              ],
            },
          ]),
        });
        await settle("chain", chained, () => chained.fetch(`${a.base}/v1/x`));
        // A hedge: p throws after q started; q answers later.
        const hedgeFetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
          String(input).startsWith(a.base)
            ? new Promise((_, reject) => setTimeout(() => reject(make()), 20))
            : globalThis.fetch(input, init);
        b.on((hit) => {
          setTimeout(() => hit.res.end("q late"), 40);
        });
        const hedged = createResilience({
          retry: FAST,
          fetch: hedgeFetch,
          fallback: fallback([
            {
              name: "h",
              hedge: { delay: 5 },
              endpoints: [
                { name: "p", url: `${a.base}/v1` },
                { name: "q", url: `${b.base}/v1` },
              ],
            },
          ]),
        });
        await settle("hedge", hedged, () => hedged.fetch(`${a.base}/v1/h`));
        // `validate` that throws, and one that rejects: the chain moves on.
        a.on((hit) => {
          hit.res.setHeader("content-type", "application/json");
          hit.res.end('{"a":1}');
        });
        b.on(status(200, "q"));
        for (const [kind, validate] of [
          [
            "throws",
            () => {
              throw make();
            },
          ],
          ["rejects", () => Promise.reject(make())],
        ] as const) {
          const validated = createResilience({
            retry: FAST,
            fallback: fallback([
              {
                name: "v",
                endpoints: [
                  {
                    name: "p",
                    url: `${a.base}/v1`,
                    validate: { "~standard": { version: 1, vendor: "test", validate } },
                  },
                  { name: "q", url: `${b.base}/v1` },
                ],
              },
            ]),
          });
          await settle(`validate ${kind}`, validated, () => validated.fetch(`${a.base}/v1/y`));
        }
        // A layer used as another's fetch.
        const inner = createResilience({ retry: FAST, fetch: throwingFor(a.host, make).fetch });
        const outer = createResilience({ retry: FAST, fetch: inner.fetch });
        await settle("layer as fetch", outer, () => outer.fetch(`${a.base}/z`));
        looksFine(inner);
        // The ky client.
        const layer = createResilience({ retry: FAST, fetch: throwingFor(a.host, make).fetch });
        const api = createClient({ resilience: layer });
        out.ky = await api
          .get(`${a.base}/k`)
          .text()
          .then(
            (text) => text,
            (error: unknown) => (isRetryExhaustedError(error) ? "RetryExhaustedError" : error),
          );
        looksFine(layer);
        return out;
      });
      expect(unhandled, label).toEqual([]);
      expect(outcomes, label).toEqual({
        plain: "RetryExhaustedError",
        "redirect hop": "RetryExhaustedError",
        chain: "200 q",
        hedge: "200 q late",
        "validate throws": "200 q",
        "validate rejects": "200 q",
        "layer as fetch": "RetryExhaustedError",
        ky: "RetryExhaustedError",
      });
    }
  });

  it("a host whose transport throws such values counts the failures, and its breaker opens", async () => {
    for (const make of [revokedProxy, () => throwingName()]) {
      const transport = throwingFor(a.host, make);
      const layer = createResilience({
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: 2 },
        fetch: transport.fetch,
      });
      await rejection(layer.fetch(`${a.base}/x`));
      expect(layer.health().breakers[a.host]).toMatchObject({ failureCount: 1 });
      expect(layer.health().breakers[a.host]?.lastFailureTime).not.toBeNull();
      await rejection(layer.fetch(`${a.base}/x`));
      expect(layer.health().breakers[a.host]?.state).toBe("open");
      expect(isCircuitOpenError(await rejection(layer.fetch(`${a.base}/x`)))).toBe(true);
      expect(transport.thrown).toHaveLength(2);
    }
  });

  it("a half-open probe that fails with such a value re-opens the breaker at once", async () => {
    const clock = new TestClock(1_000);
    let sent = 0;
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      fetch: () => {
        sent++;
        return Promise.reject(sent === 1 ? new TypeError("fetch failed") : revokedProxy());
      },
    });
    await rejection(layer.fetch("http://a.test/x"));
    await clock.advance(1_000);
    expect(layer.health().breakers["a.test"]?.state).toBe("half_open");
    expect(await rejection(layer.fetch("http://a.test/x"))).toBeInstanceOf(RetryExhaustedError);
    // "Any probe failure re-opens": open for `timeout` from now, not half-open with the probe's slot still taken.
    expect(layer.health().breakers["a.test"]).toMatchObject({ state: "open", openUntil: clock.now() + 1_000 });
  });

  it("execute under a named breaker counts such values as failures", async () => {
    const layer = createResilience({ retry: FAST, breaker: { failureThreshold: 3 } });
    await rejection(
      layer.execute(
        () => {
          throw revokedProxy();
        },
        { breaker: "db" },
      ),
    );
    expect(layer.health().breakers.db).toMatchObject({ state: "open", failureCount: 3 });
  });

  it("the call's cause is what the transport threw (breaker on and off)", async () => {
    for (const breaker of [undefined, false as const]) {
      for (const make of [revokedProxy, () => throwingName(), protoTrap]) {
        const transport = throwingFor(a.host, make);
        const layer = createResilience({ retry: { ...FAST, maxAttempts: 1 }, breaker, fetch: transport.fetch });
        const error = await rejection(layer.fetch(`${a.base}/x`));
        expect(error).toBeInstanceOf(RetryExhaustedError);
        expect(Object.is((error as RetryExhaustedError).cause, transport.thrown[0])).toBe(true);
      }
    }
  });

  it("a TypeError and a revoked Proxy thrown for p move a chain on to q (the control of the next tests)", async () => {
    b.on(status(200, "q"));
    for (const make of [() => new TypeError("fetch failed"), revokedProxy]) {
      const layer = createResilience({
        retry: FAST,
        fetch: throwingFor(a.host, make).fetch,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              { name: "q", url: `${b.base}/v1` },
            ],
          },
        ]),
      });
      expect(await (await layer.fetch(`${a.base}/v1/x`)).text()).toBe("q");
    }
    // A transform and a respond that throw an Error move on.
    a.on(status(503, "busy"));
    const layer = createResilience({
      retry: FAST,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            {
              name: "t",
              url: `${b.base}/v1`,
              transform: () => {
                throw new Error("no");
              },
            },
            {
              name: "r",
              respond: () => {
                throw new Error("no");
              },
            },
            { name: "s", respond: () => new Response("spare") },
          ],
        },
      ]),
    });
    expect(await (await layer.fetch(`${a.base}/v1/x`)).text()).toBe("spare");
    expect(a.hits).toHaveLength(3);
  });

  it("a transform or respond that throws a value that cannot be read moves the chain on", async () => {
    for (const make of [revokedProxy, nullProto]) {
      a.reset();
      b.reset();
      a.on(status(503, "busy"));
      const layer = createResilience({
        retry: FAST,
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: `${a.base}/v1` },
              {
                name: "t",
                url: `${b.base}/v1`,
                transform: () => {
                  throw make();
                },
              },
              {
                name: "r",
                respond: () => {
                  throw make();
                },
              },
              { name: "s", respond: () => new Response("spare") },
            ],
          },
          {
            name: "last",
            endpoints: [
              { name: "p2", url: `${a.base}/v2` },
              { name: "r2", respond: () => Promise.reject(make()) },
            ],
          },
        ]),
      });
      const served = await layer.fetch(`${a.base}/v1/x`);
      expect(await served.text()).toBe("spare");
      expect(a.hits).toHaveLength(3);
      // The respond that rejects was the last endpoint: the call resolves with p2's 503.
      const last = await layer.fetch(`${a.base}/v2/x`);
      expect(last.status).toBe(503);
      await last.text();
    }
  });

  it("a transport that throws a null-prototype object for p moves the chain on to q", async () => {
    b.on(status(200, "q"));
    const layer = createResilience({
      retry: FAST,
      fetch: throwingFor(a.host, nullProto).fetch,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/v1` },
            { name: "q", url: `${b.base}/v1` },
          ],
        },
      ]),
    });
    const response = await layer.fetch(`${a.base}/v1/x`);
    expect(await response.text()).toBe("q");
  });

  it("FallbackChain.execute moves past an entry that throws such a value", async () => {
    for (const make of [revokedProxy, () => throwingName(), nullProto]) {
      const chain = new FallbackChain<number, string>("c");
      chain
        .add(
          () => {
            throw make();
          },
          { name: "a" },
        )
        .add(() => "ok", { name: "b" });
      expect(await chain.execute(1)).toBe("ok");
      const none = new FallbackChain<number, string>("d");
      none
        .add(
          () => {
            throw make();
          },
          { name: "a" },
        )
        .add(
          () => {
            throw make();
          },
          { name: "b" },
        );
      expect(isFallbackExhaustedError(await rejection(none.execute(1)))).toBe(true);
    }
  });
});

describe("an open state shared through kvStore or durableObjectStore, adopted", () => {
  const turns = async () => {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  const breaker = { failureThreshold: 3, timeout: 5_000, successThreshold: 1 };

  it("kvStore: the adopting layer keeps the failure time it counted, clock set back; null once a probe closes", async () => {
    let code = 503;
    a.on((hit) => {
      hit.res.statusCode = code;
      hit.res.end();
    });
    const data = new Map<string, { value: string; metadata: unknown }>();
    const namespace: KvNamespaceLike = {
      getWithMetadata: async <M>(key: string) => {
        const stored = data.get(key);
        return { value: stored?.value ?? null, metadata: (stored?.metadata ?? null) as M | null };
      },
      put: async (key, value, options) => {
        data.set(key, { value, metadata: options?.metadata ?? null });
      },
    };
    const start = Date.parse("2026-03-01T00:00:00Z");
    const hereClock = new WallClock(start);
    const thereClock = new WallClock(start + 50);
    const isolate = (clock: WallClock) =>
      createResilience({
        clock,
        retry: { maxAttempts: 1 },
        breaker,
        store: kvStore(namespace, { clock, publishJitter: 0, refreshInterval: 1_000, minPublishInterval: 1_000 }),
      });
    const here = isolate(hereClock);
    const there = isolate(thereClock);
    await (await here.fetch(`${a.base}/x`)).text();
    expect(here.health().breakers[a.host]).toMatchObject({ state: "closed", lastFailureTime: start });
    for (let i = 0; i < 3; i++) await (await there.fetch(`${a.base}/x`)).text();
    await turns();
    expect(there.health().breakers[a.host]?.state).toBe("open");
    hereClock.step(-3_600_000);
    await hereClock.advance(1_500);
    here.health();
    await turns();
    expect(here.health().breakers[a.host]).toMatchObject({ state: "open", lastFailureTime: start });
    await hereClock.advance(6_000);
    expect(here.health().breakers[a.host]).toMatchObject({ state: "half_open", lastFailureTime: start });
    code = 200;
    await (await here.fetch(`${a.base}/x`)).text();
    expect(here.health().breakers[a.host]).toMatchObject({ state: "closed", lastFailureTime: null });
    expect(a.hits).toHaveLength(5);
  });

  it("durableObjectStore: the adopting layer's lastFailureTime is its own last failure; null after the close", async () => {
    let code = 503;
    a.on((hit) => {
      hit.res.statusCode = code;
      hit.res.end();
    });
    const clock = new WallClock(Date.parse("2026-03-01T00:00:00Z"));
    const namespace = new FakeNamespace(clock);
    const ctx = fakeCtx();
    const isolate = () =>
      createResilience({
        clock,
        retry: { maxAttempts: 1 },
        breaker,
        // Each failure goes to the object at once: the store runs on the layer's clock, which moves 10 ms here,
        // not a flush interval. (On the real clock, each call read as a clock set back and flushed: the cfstores
        // run of the sixty-second session.)
        store: durableObjectStore(namespace, { ctx, flushInterval: 1_000, flushThreshold: 1 }),
      });
    const here = isolate();
    const there = isolate();
    await (await here.fetch(`${a.base}/x`)).text();
    await ctx.settle();
    expect(here.health().breakers[a.host]?.lastFailureTime).toBe(clock.now());
    await clock.advance(10);
    // The object counts here's failure with there's: its third call finds the host open.
    const outcomes: unknown[] = [];
    for (let i = 0; i < 3; i++)
      outcomes.push(await there.fetch(`${a.base}/x`).then((r) => r.text(), isCircuitOpenError));
    expect(outcomes).toEqual(["", "", true]);
    await ctx.settle();
    await turns();
    clock.step(-3_600_000);
    await clock.advance(1_500);
    const failedAt = clock.now();
    await (await here.fetch(`${a.base}/x`)).text();
    await ctx.settle();
    await turns();
    expect(here.health().breakers[a.host]).toMatchObject({ state: "open", lastFailureTime: failedAt });
    await clock.advance(6_000);
    expect(here.health().breakers[a.host]).toMatchObject({ state: "half_open", lastFailureTime: failedAt });
    code = 200;
    await (await here.fetch(`${a.base}/x`)).text();
    await ctx.settle();
    expect(here.health().breakers[a.host]).toMatchObject({ state: "closed", lastFailureTime: null });
  });
});

describe("ky client: options that are no object", () => {
  it("are refused with a TypeError naming what they are, wherever plain ky refuses them; undefined is none", async () => {
    const api = createClient({ resilience: { fetch: async () => new Response("ok") } });
    const plain = ky.create({ fetch: async () => new Response("ok") });
    const url = `${a.base}/x`;
    const values: Array<[unknown, string]> = [
      [5, "number"],
      ["s", "string"],
      [true, "boolean"],
      [Symbol("s"), "symbol"],
      [10n, "bigint"],
      [null, "null"],
      [[], "an array"],
      [() => ({}), "function"],
    ];
    const refusal = async (make: () => unknown): Promise<unknown> => {
      try {
        await make();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    type Loose = ((url: string, options?: unknown) => Promise<Response>) &
      Record<string, (...args: unknown[]) => unknown>;
    for (const [value, named] of values) {
      for (const client of [api, plain] as unknown as Loose[]) {
        const ours = client === (api as unknown);
        const attempts: Array<() => unknown> = [
          // A function given to `extend` is ky's `extend(fn)`: what it returns is judged.
          ...(typeof value === "function" ? [] : [() => client.extend?.(value)]),
          () => client.extend?.(() => value),
          () => client.create?.(value),
          ...["get", "post", "put", "patch", "head", "delete"].map((method) => () => client[method]?.(url, value)),
          () => client(url, value),
        ];
        for (const attempt of attempts) {
          const error = await refusal(attempt);
          expect(error, `${named} ${ours ? "ours" : "ky"}`).toBeInstanceOf(TypeError);
          if (ours)
            expect((error as Error).message).toBe(`ky: the \`options\` argument must be an object, got ${named}`);
        }
      }
    }
    expect(await (api.extend as (options?: unknown) => typeof api)(undefined).get(url, undefined).text()).toBe("ok");
    expect(await (api as unknown as Loose)(url, undefined).then((response) => response.text())).toBe("ok");
  });
});

describe('redirects: "platform": bytes to the global fetch as a Blob', () => {
  it("a global fetch installed after the layer gets a Blob; a fetch option the bytes; Node follows 307/308", async () => {
    b.on((hit) => {
      if (hit.path.startsWith("/r")) {
        hit.res.statusCode = hit.path === "/r8" ? 308 : 307;
        hit.res.setHeader("location", "/t");
        hit.res.end();
        return;
      }
      hit.res.end(`${hit.method} ${hit.headers["content-type"] ?? "-"} ${hit.headers["content-length"]} ${hit.body}`);
    });
    const layer = createResilience({ redirects: "platform", retry: { maxAttempts: 1 } });
    for (const path of ["/r", "/r8"]) {
      const viaRequest = await layer.fetch(
        new Request(`${b.base}${path}`, { method: "POST", body: new TextEncoder().encode("hi") }),
      );
      expect(await viaRequest.text()).toBe("POST - 2 hi");
      const viaInit = await layer.fetch(`${b.base}${path}`, {
        method: "PUT",
        body: new TextEncoder().encode("yo!").buffer,
      });
      expect(await viaInit.text()).toBe("PUT - 3 yo!");
      const text = await layer.fetch(
        new Request(`${b.base}${path}`, { method: "POST", body: "x=1", headers: { "content-type": "text/plain" } }),
      );
      expect(await text.text()).toBe("POST text/plain 3 x=1");
    }
    const bodies: unknown[] = [];
    const platform = globalThis.fetch;
    vi.stubGlobal("fetch", (input: RequestInfo | URL, init?: RequestInit) => {
      bodies.push(init?.body);
      return platform(input, init);
    });
    const response = await layer.fetch(
      new Request(`${b.base}/r`, { method: "POST", body: new Uint8Array([104, 105]) }),
    );
    expect(await response.text()).toBe("POST - 2 hi");
    expect(bodies[0]).toBeInstanceOf(Blob);
    expect((bodies[0] as Blob).type).toBe("");
    vi.unstubAllGlobals();
    const given: unknown[] = [];
    const own = createResilience({
      redirects: "platform",
      fetch: (input, init) => {
        given.push(init?.body);
        return platform(input, init);
      },
    });
    await (await own.fetch(`${b.base}/t`, { method: "POST", body: new Uint8Array([1]) })).text();
    expect(given[0]).toBeInstanceOf(Uint8Array);
  });
});
