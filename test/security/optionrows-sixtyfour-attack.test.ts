/**
 * Outside-in attack on docs/options.md's rows on the paths earlier runs drove least: the ky client (`createClient({
 * resilience })`, a call's own options, `extend`, `create`), the Cloudflare `resilientProxy` called directly with a
 * `Request` in node, `execute(fn, options)` and `resilience.breaker(name, options)`; and CHANGELOG Unreleased's
 * `fallback: false` / `degradation: false` on each of them.
 *
 * Docs:
 * - CHANGELOG.md Unreleased: "`fallback: false` and `degradation: false` mean none, as leaving the option out does,
 *   and as `false` turns off `retry`, `budget` and `breaker`"; docs/options.md: "The root checks only that the
 *   `fallback` and `degradation` options are what those return, or `false` for none, as leaving them out is";
 *   "`undefined` never wipes a default"; "A call, `extend` and `create` refuse such a key too …, and `resilience`
 *   itself: they run on the client's layer".
 * - docs/options.md rows: `timeout.attempt` "ms to response headers, per attempt", `timeout.total`, `maxReplayBytes`
 *   "largest body kept for retries, measured as the caller sent it …; larger ones go once", `crossOriginHeaders` "`[]`
 *   | headers that may go to another origin besides `accept`, …, `content-language`, …, `idempotency-key` …; every
 *   other caller header stays with the origin addressed", `redirects` "`"platform"` in browsers …, else `"library"` |
 *   who follows the redirects of a `redirect: "follow"` call", `retry.idempotencyKey` "`false` | add an
 *   `Idempotency-Key` to POST/PATCH".
 * - docs/retry.md "## ky": "ky's 10 s timeout off unless you pass one (use `resilience.timeout`)"; "## Idempotency":
 *   "(an empty one, or one of spaces, is none …)", "the same on every retry of that call and on every endpoint, hedge
 *   and redirect hop"; "## Generic work": "a bad option … rejects the call, never throws"; ExecuteOptions.retry JSDoc
 *   "Retry options for this work, over the instance's; `false` for one attempt".
 * - docs/cloudflare.md: "the layer's options in `resilience` (where a `fallback` is refused: a proxy's chains go in
 *   its routes)"; "`502` … a redirect's target's own `429` or `503`, whatever the method …; and a `429` or `503` that
 *   came after another request of the call … for a client's POST or PATCH without a key, when
 *   `retry.idempotencyKey` is on"; "`x-resilience-endpoint` (… the breaker's key of the host first called, after
 *   redirects too"; "The proxy sends with `redirect: "follow"` … the layer follows an upstream's redirects itself".
 * - docs/breakers.md: "options are applied on first use only (passed again, they are checked all the same: a bad
 *   value or a typo is a `ConfigError` every time). They are the layer's `breaker` options"; named-breakers.ts JSDoc
 *   "or to the defaults when per-host breakers are off".
 *
 * How: root (`createResilience`, `getResilienceInfo`, errors), ./ky `createClient`, ./cloudflare `resilientProxy`
 * (a fake `ctx`, `Request`s built in node), ./fallback, ./testing `TestClock`; two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), A and B, each its own origin.
 *
 * Paths: ky client (options, a given layer, a call's options, `extend`, `extend(fn)`, `create`), ky on a fallback
 * chain A → B, the proxy (upstream route, chain route, an upstream redirect A → B under `redirects` library and
 * platform), root, `execute`, named breakers.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-fourth session it was fixed, so
 * plain `it`; docs/cloudflare.md now says `fallback: false` is taken):
 * 1. CHANGELOG Unreleased "`fallback: false` and `degradation: false` mean none, as leaving the option out does".
 *    Observed: `resilientProxy({ routes, resilience: { fallback: false } })` throws `ConfigError
 *    resilience.fallback: a proxy's chains go in its routes ({ path, chain })`, where leaving it out (or
 *    `undefined`) is taken and `degradation: false` is taken. Cause: src/cloudflare/resilient-proxy.ts refuses any
 *    `fallback !== undefined`. (cloudflare.md's "a `fallback` is refused" can be read either way; a `false` that
 *    asks for no chain gets a message telling where chains go.) Test "defect 1: …".
 *
 * Held (plain `it`):
 * - `fallback: false, degradation: false`: root handles `undefined`, calls retried with no chain; ky from options and
 *   on such a layer (and its `extend`); the proxy's `degradation: false` on a chain route (`x-degradation-level`
 *   full). `null` for either is a ConfigError at once naming `degradation` / `resilience.fallback` /
 *   `resilience.degradation`; `resilience` in `create` or `extend(fn)` is refused.
 * - ky: `timeout.attempt` ends each attempt on the layer's TestClock (19 999 ms: one request; 40 000 ms: the
 *   layer's `TimeoutError` phase `attempt`, two requests); `timeout.total` through `extend` with a call's `timeout:
 *   undefined` (phase `total`); a call's own ky `timeout: 60` still applies (ky's TimeoutError, the socket closed).
 * - ky `json` body of exactly `maxReplayBytes` (20) retried 3 times, 21 bytes sent once, on `create` and `extend`.
 * - ky on chain A → B: `x-api-key`, `x-trace`, `authorization` stay with A, `content-language` crosses; with
 *   `crossOriginHeaders: ["X-Api-Key"]` the key crosses too; on a call's headers, `extend` and `create` alike.
 * - Proxy redirects: default and `"library"` keep `x-api-key` home on the cross-origin 307, `crossOriginHeaders`
 *   lets it go, `"platform"` sends it (the platform follows); the POST body follows; `x-resilience-endpoint` is A's
 *   host after the redirect; the hop carries the call's one `Idempotency-Key`; B's 503 is the proxy's 502 in both
 *   modes, A asked once; `redirects: "follow"` a ConfigError at once naming `resilience.redirects`.
 * - `retry.idempotencyKey`: ky POST (json, through `extend`) one UUID on 3 attempts; ky PATCH on a chain (through
 *   `create`) one key on all 5 requests at A and B. Proxy, upstream and chain routes: keyless POST keyed, its
 *   503 after retries answered 502; a client's key kept and its 503 passed on; a key of spaces is none (keyed, 502);
 *   `false` or left out: no key, 503 passed on.
 * - `execute`: `retry: false` one run over a layer's 4, `undefined` (and `maxAttempts: undefined`) the layer's 4,
 *   an own retry over a layer's `retry: false` applies (3 runs); bad values reject (never throw) before `fn` runs,
 *   naming `execute.retry.maxAttempts`, `.idempotencyKey`, `.retryOn.methods.0`, `.jitter`, `execute.retry` (null),
 *   `execute` (a typo).
 * - `breaker(name, options)`: refusals thrown at once naming `breaker("n").failureThreshold` etc.; the layer's
 *   `failureThreshold: 2` by default and for `undefined`; own options on first use, checked again later and not
 *   applied; with `breaker: false` the default 12.
 *
 * Docs-silent (not pinned):
 * - `execute(fn, { fallback: false })` is refused (`execute.fallback: expected a function, received false`); the
 *   root's `fallback: false` now means none, `execute`'s `fallback` (a function, in its type, not in retry.md) does not.
 * - A string option left empty is refused as `expected a value >= 1, received ""` (`execute.breaker`, chain names):
 *   the number rule's words for a length (pinned so in test/core/option-messages.test.ts).
 * - A proxy chain route retries each endpoint `maxAttempts` times (6 requests for two endpoints at 3).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  ConfigError,
  createResilience,
  getResilienceInfo,
  type ResilienceOptions,
  RetryExhaustedError,
  TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };
/** No wait between retries, on the real clock. */
const quick = { initialDelay: 0 } as const;
const answer =
  (status: number, headers: Record<string, string> = {}) =>
  (hit: { res: import("node:http").ServerResponse }) => {
    hit.res.writeHead(status, headers);
    hit.res.end(String(status));
  };
/** Answers `statuses` in turn, the last for every request after. */
const inTurn =
  (...statuses: number[]) =>
  (hit: { n: number; res: import("node:http").ServerResponse }) => {
    const status = statuses[Math.min(hit.n, statuses.length) - 1] as number;
    hit.res.writeHead(status);
    hit.res.end(String(status));
  };
const chainAB = () =>
  fallback([
    {
      name: "c",
      endpoints: [
        { name: "a", url: A.base },
        { name: "b", url: B.base },
      ],
    },
  ]);
const refusal = (make: () => unknown) => {
  const error = thrown(make);
  expect(error).toBeInstanceOf(ConfigError);
  return `${(error as ConfigError).path} | ${(error as Error).message}`;
};

describe("fallback: false and degradation: false mean none", () => {
  it("held: root, ky (options and a given layer) take them, calls run with retries and no chain", async () => {
    A.on(inTurn(503, 200));
    const layer = createResilience({ fallback: false, degradation: false, retry: quick });
    expect(layer.fallback).toBeUndefined();
    expect(layer.degradation).toBeUndefined();
    expect((await layer.fetch(`${A.base}/r`)).status).toBe(200);
    A.reset();
    A.on(inTurn(503, 200));
    const api = createClient({ resilience: { fallback: false, degradation: false, retry: quick } });
    expect((await api.get(`${A.base}/k`)).status).toBe(200);
    A.reset();
    A.on(inTurn(503, 200));
    const onLayer = createClient({ resilience: layer }).extend({ headers: { "x-e": "1" } });
    expect((await onLayer.get(`${A.base}/e`)).status).toBe(200);
    expect(A.hits.map((h) => h.headers["x-e"])).toEqual(["1", "1"]);
  });

  it("held: the proxy takes degradation: false and serves its routes, chains included", async () => {
    A.on(answer(503));
    B.on(answer(200));
    const proxy = resilientProxy({
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
      resilience: { degradation: false, retry: false },
    });
    const res = await proxy.fetch(new Request("https://w.example/x"), {}, ctx);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-resilience-endpoint")).toBe("b");
    expect(res.headers.get("x-degradation-level")).toBe("full");
  });

  it("defect 1: resilientProxy({ resilience: { fallback: false } }) is taken as leaving it out", async () => {
    A.on(answer(200));
    // CHANGELOG: "`fallback: false` … mean none, as leaving the option out does"; the proxy takes it left out.
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: A.base }],
      // Outside the proxy's type (its chains go in routes), taken at run time: a layer's options shared with one.
      resilience: { fallback: false, retry: false } as never,
    });
    expect((await proxy.fetch(new Request("https://w.example/x"), {}, ctx)).status).toBe(200);
  });

  it("held: null for either is refused at once on root, ky and the proxy, naming the path", () => {
    const routes = [{ path: "/", upstream: "https://a.example" }];
    expect(refusal(() => createResilience({ degradation: null as never }))).toMatch(/^degradation \| /);
    expect(refusal(() => createClient({ resilience: { fallback: null as never } }))).toMatch(
      /^resilience\.fallback \| /,
    );
    expect(refusal(() => createClient({ resilience: { degradation: null as never } }))).toMatch(
      /^resilience\.degradation \| /,
    );
    expect(refusal(() => resilientProxy({ routes, resilience: { degradation: null as never } }))).toMatch(
      /^resilience\.degradation \| /,
    );
    // left out, or undefined ("`undefined` never wipes a default"), the proxy takes it
    expect(() => resilientProxy({ routes, resilience: { fallback: undefined } as never })).not.toThrow();
    // ky's extend and create run on the client's layer: a `resilience` there is refused, `{ fallback: false }` too.
    const api = createClient({});
    expect(refusal(() => api.create({ resilience: { fallback: false } } as never))).toMatch(/^resilience \| /);
    expect(refusal(() => api.extend(() => ({ resilience: { degradation: false } }) as never))).toMatch(
      /^resilience \| /,
    );
  });
});

describe("timeout through the ky client, whose own timeout is off", () => {
  it("held: timeout.attempt ends each attempt on the layer's clock; the call rejects with the layer's TimeoutError", async () => {
    A.on(() => {});
    const clock = new TestClock();
    const api = createClient({
      resilience: { clock, random: () => 0, timeout: { attempt: 20_000 }, retry: { maxAttempts: 2 } },
    });
    const settled = rejection(api.get(`${A.base}/slow`));
    await A.nth(1);
    await clock.advance(19_999);
    expect(A.hits).toHaveLength(1);
    await clock.advance(1);
    await A.nth(2);
    const first = A.hits[0];
    await first?.closed;
    await clock.advance(20_000);
    const error = await settled;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).phase).toBe("attempt");
    expect(clock.now()).toBe(40_000);
    expect(A.hits).toHaveLength(2);
  });
  it("held: a call's own ky timeout still applies over the layer (ky's TimeoutError, the attempt closed)", async () => {
    A.on(() => {});
    const api = createClient({ resilience: { retry: false } });
    const error = await rejection(api.get(`${A.base}/slow`, { timeout: 60 }));
    expect((error as Error).name).toBe("TimeoutError");
    expect(error).not.toBeInstanceOf(TimeoutError);
    await A.hits[0]?.closed;
    expect(A.hits).toHaveLength(1);
  });
});

describe("timeout.total, maxReplayBytes through ky's extend and create", () => {
  it("held: timeout.total through an extended client whose call sets timeout: undefined", async () => {
    A.on(() => {});
    const clock = new TestClock();
    const api = createClient({ resilience: { clock, timeout: { total: 5_000 } } }).extend({ headers: { "x-e": "1" } });
    const settled = rejection(api.get(`${A.base}/slow`, { timeout: undefined } as never));
    await A.nth(1);
    await clock.advance(5_000);
    const error = await settled;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).phase).toBe("total");
  });

  it("held: a ky json body over maxReplayBytes goes once, one at it is retried, on create and extend", async () => {
    A.on(answer(503));
    const api = createClient({ resilience: { maxReplayBytes: 20, retry: quick } });
    const small = { p: "123456789012" }; // {"p":"123456789012"} is 20 bytes
    const large = { p: "1234567890123" };
    for (const client of [api.create({ throwHttpErrors: false }), api.extend({ throwHttpErrors: false })]) {
      A.reset();
      A.on(answer(503));
      expect((await client.post(`${A.base}/j`, { json: small })).status).toBe(503);
      expect(A.hits.map((h) => h.body)).toEqual(Array(3).fill(JSON.stringify(small)));
      A.reset();
      A.on(answer(503));
      expect((await client.post(`${A.base}/j`, { json: large })).status).toBe(503);
      expect(A.hits.map((h) => h.body)).toEqual([JSON.stringify(large)]);
    }
  });
});

describe("crossOriginHeaders on a ky call to a fallback endpoint of another origin", () => {
  const headers = { "x-api-key": "k", "x-trace": "t", authorization: "Bearer s", "content-language": "fr" };
  it("held: by default only the allowlist crosses; a named header crosses too (call, extend, create)", async () => {
    for (const named of [[], ["X-Api-Key"]]) {
      const api = createClient({
        resilience: { fallback: chainAB(), retry: false, crossOriginHeaders: named },
        throwHttpErrors: false,
      });
      const ways = [
        () => api.get(`${A.base}/p`, { headers }),
        () => api.extend({ headers }).get(`${A.base}/p`),
        () => api.create({ headers }).get(`${A.base}/p`),
      ];
      for (const way of ways) {
        A.reset();
        B.reset();
        A.on(answer(503));
        const res = await way();
        expect(res.status).toBe(200);
        expect(A.hits[0]?.headers["x-api-key"]).toBe("k");
        const atB = B.hits[0]?.headers ?? {};
        expect([atB["x-api-key"], atB["x-trace"], atB.authorization, atB["content-language"]]).toEqual([
          named.length ? "k" : undefined,
          undefined,
          undefined,
          "fr",
        ]);
        expect(getResilienceInfo(res)?.endpoint).toBe("b");
      }
    }
  });
});

describe("redirects through the proxy", () => {
  const target =
    (status = 307) =>
    (hit: { res: import("node:http").ServerResponse }) => {
      hit.res.writeHead(status, { location: `${B.base}/landed` });
      hit.res.end();
    };
  const send = (proxy: ReturnType<typeof resilientProxy>) =>
    proxy.fetch(
      new Request("https://w.example/go", { method: "POST", body: "x", headers: { "x-api-key": "k" } }),
      {},
      ctx,
    );
  it("held: library by default and when named (a client header stays home), platform when named (it goes)", async () => {
    const cases: Array<[ResilienceOptions, string | undefined]> = [
      [{}, undefined],
      [{ redirects: "library" }, undefined],
      [{ redirects: "library", crossOriginHeaders: ["x-api-key"] }, "k"],
      [{ redirects: "platform" }, "k"],
      [{ retry: { idempotencyKey: true } }, undefined],
    ];
    for (const [resilience, key] of cases) {
      A.reset();
      B.reset();
      A.on(target());
      const res = await send(resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience }));
      expect(res.status).toBe(200);
      // "the breaker's key of the host first called, after redirects too"
      expect(res.headers.get("x-resilience-endpoint")).toBe(A.host);
      expect(B.hits.map((h) => [h.method, h.path, h.headers["x-api-key"], h.body])).toEqual([
        ["POST", "/landed", key, "x"],
      ]);
      // idempotency-key crosses origins: the hop carries the call's one key
      expect(B.hits[0]?.headers["idempotency-key"]).toBe(A.hits[0]?.headers["idempotency-key"]);
      if (resilience.retry) expect(B.hits[0]?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("held: a redirect's target's 503 is the proxy's 502 whoever follows; a bad value is refused at once", async () => {
    for (const redirects of ["library", "platform"] as const) {
      A.reset();
      B.reset();
      A.on(target());
      B.on(answer(503));
      const res = await send(resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: { redirects } }));
      expect(res.status).toBe(502);
      expect(A.hits).toHaveLength(1);
    }
    expect(
      refusal(() =>
        resilientProxy({ routes: [{ path: "/", upstream: A.base }], resilience: { redirects: "follow" as never } }),
      ),
    ).toBe('resilience.redirects | resilience.redirects: expected one of "library", "platform", received "follow"');
  });
});

describe("retry.idempotencyKey through ky and the proxy", () => {
  const keys = (server: typeof A) => server.hits.map((h) => h.headers["idempotency-key"]);
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  it("held: ky POST (json) and PATCH on a chain carry one key on every attempt and endpoint", async () => {
    A.on(inTurn(503, 503, 200));
    const api = createClient({ resilience: { retry: { ...quick, idempotencyKey: true } } });
    await api.extend({ headers: { "x-e": "1" } }).post(`${A.base}/j`, { json: { a: 1 } });
    expect(new Set(keys(A)).size).toBe(1);
    expect(keys(A)).toHaveLength(3);
    expect(keys(A)[0]).toMatch(uuid);
    A.reset();
    A.on(answer(503));
    B.on(inTurn(503, 200));
    const chained = createClient({ resilience: { fallback: chainAB(), retry: { ...quick, idempotencyKey: true } } });
    expect((await chained.create({}).patch(`${A.base}/j`, { json: { a: 1 } })).status).toBe(200);
    const all = [...keys(A), ...keys(B)];
    expect(all).toHaveLength(5);
    expect(new Set(all).size).toBe(1);
    expect(all[0]).toMatch(uuid);
  });

  it("held: the proxy keys a keyless POST, answers 502 for the 503 after its retries, passes a client-keyed 503", async () => {
    const upstream = { path: "/", upstream: A.base };
    const chain = {
      path: "/",
      chain: {
        name: "c",
        endpoints: [
          { name: "a", url: A.base },
          { name: "b", url: B.base },
        ],
      },
    };
    for (const route of [upstream, chain]) {
      for (const [idempotencyKey, own, status] of [
        [true, undefined, 502],
        [true, "mine", 503],
        [true, " ", 502], // "an empty one, or one of spaces, is none"
        [false, undefined, 503],
        [undefined, undefined, 503],
      ] as const) {
        A.reset();
        B.reset();
        A.on(answer(503));
        B.on(answer(503));
        const proxy = resilientProxy({ routes: [route], resilience: { retry: { ...quick, idempotencyKey } } });
        const request = new Request("https://w.example/go", {
          method: "POST",
          body: "x",
          headers: own ? { "idempotency-key": own } : {},
        });
        const res = await proxy.fetch(request, {}, ctx);
        expect(res.status).toBe(status);
        const all = [...keys(A), ...keys(B)];
        expect(all).toHaveLength(route === chain ? 6 : 3);
        expect(new Set(all).size).toBe(1);
        if (own?.trim()) expect(all[0]).toBe(own);
        else if (idempotencyKey) expect(all[0]).toMatch(uuid);
        else expect(all[0]).toBeUndefined();
      }
    }
  });
});

describe("execute(fn, options) and breaker(name, options)", () => {
  const failing = () => {
    const runs: number[] = [];
    return {
      runs,
      fn: () => {
        runs.push(runs.length + 1);
        throw new Error("boom");
      },
    };
  };
  it("held: retry false is one run, undefined the layer's, an own retry over a layer's retry: false", async () => {
    const layer = createResilience({ retry: { ...quick, maxAttempts: 4 } });
    for (const [retry, runs] of [
      [false, 1],
      [undefined, 4],
      [{ maxAttempts: 2 }, 2],
      [{ maxAttempts: undefined }, 4],
    ] as const) {
      const work = failing();
      const error = await rejection(layer.execute(work.fn, { retry }));
      expect(work.runs).toHaveLength(runs);
      if (runs > 1) expect(error).toBeInstanceOf(RetryExhaustedError);
    }
    const off = createResilience({ retry: false });
    const once = failing();
    await rejection(off.execute(once.fn));
    expect(once.runs).toHaveLength(1);
    const over = failing();
    await rejection(off.execute(over.fn, { retry: { ...quick, maxAttempts: 3 } }));
    expect(over.runs).toHaveLength(3);
  });

  it("held: a bad option rejects (never throws) naming execute's path, before fn runs", async () => {
    const layer = createResilience({});
    const cases: Array<[object, string]> = [
      [{ retry: { maxAttempts: 0 } }, "execute.retry.maxAttempts"],
      [{ retry: { idempotencyKey: "yes" } }, "execute.retry.idempotencyKey"],
      [{ retry: { retryOn: { methods: ["POST "] } } }, "execute.retry.retryOn.methods.0"],
      [{ retry: { jitter: "half" } }, "execute.retry.jitter"],
      [{ retry: null }, "execute.retry"],
      [{ retrys: 2 }, "execute"],
    ];
    for (const [options, path] of cases) {
      const work = failing();
      let call: Promise<unknown> | undefined;
      expect(() => {
        call = layer.execute(work.fn, options as never);
      }).not.toThrow();
      const error = await rejection(call as Promise<unknown>);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
      expect(work.runs).toHaveLength(0);
    }
  });

  it("held: breaker(name, options) throws at once naming its path; options apply on first use; layer's by default", async () => {
    const layer = createResilience({ breaker: { failureThreshold: 2 } });
    expect(refusal(() => layer.breaker("n", { failureThreshold: 0 }))).toBe(
      'breaker("n").failureThreshold | breaker("n").failureThreshold: expected a value >= 1, received 0',
    );
    expect(refusal(() => layer.breaker("n", { timeout: -1 }))).toMatch(/^breaker\("n"\)\.timeout \| /);
    expect(refusal(() => layer.breaker("n", null as never))).toMatch(/^breaker\("n"\) \| /);
    const opensAfter = async (name: string, options?: object) => {
      const breaker = layer.breaker(name, options as never);
      let n = 0;
      while (breaker.state !== "open" && n < 20) {
        n++;
        await rejection(
          breaker.execute(async () => {
            throw new Error("boom");
          }),
        );
      }
      return n;
    };
    expect(await opensAfter("dflt")).toBe(2);
    expect(await opensAfter("undef", { failureThreshold: undefined })).toBe(2);
    expect(await opensAfter("own", { failureThreshold: 3 })).toBe(3);
    // passed again: checked all the same, applied never
    expect(refusal(() => layer.breaker("own", { failureThreshold: 0 }))).toMatch(/^breaker\("own"\)\.failureThreshold/);
    layer.breaker("own").reset();
    expect(await opensAfter("own", { failureThreshold: 9 })).toBe(3);
    const off = createResilience({ breaker: false });
    const breaker = off.breaker("x");
    let n = 0;
    while (breaker.state !== "open" && n < 20) {
      n++;
      await rejection(breaker.execute(() => Promise.reject(new Error("boom"))));
    }
    expect(n).toBe(12);
  });
});
