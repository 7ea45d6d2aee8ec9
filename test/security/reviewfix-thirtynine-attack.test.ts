/**
 * Outside-in attack on the review session's fixes (0125089..830e291): a degradation query rule that trims a
 * URL's ends in one pass and keeps an unedited URL as written, `RetryBudget#deposit`'s check and return value,
 * `validate`'s read under `timeout.total` alone, and a `durableObjectStore`'s own `policy` next to each layer's
 * local breaker.
 * Docs: CHANGELOG.md "A degradation query rule reads a string URL with a long run of spaces or control characters
 * inside it in one pass … and leaves a URL none of whose values it changed as the caller wrote it";
 * docs/degradation.md
 * ("Only the named parameters' values change", "the other query parameters, stay as you wrote them", "The breaker key
 * … is taken from the URL the caller asked for, before the rewrite", "A call that goes down a fallback chain is
 * rewritten once … before the chain"); CHANGELOG.md "`RetryBudget#deposit(count)` refuses a count that is not a
 * finite number … and returns 0, not `NaN`, with a `ratio` of 0"; src/policies/retry-budget.ts JSDoc of `deposit`
 * ("Returns how many were kept: fewer, or none, as the budget reaches its most (or 0), so that taking back that many
 * undoes exactly what was kept"); docs/retry.md "Retry budget" ("Every call earns its deposit once it is read, calls
 * later refused by a breaker or a bulkhead, or aborted (whatever the reason), included; only a call that failed for
 * its own request earns nothing: one the transport refused before sending anything"); docs/fallback.md ("`validate`
 * reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else 30 s): a body that stalls or never ends
 * fails validation (under `timeout.total` alone, the read goes on until the deadline, which then rejects the call
 * with
 * its `TimeoutError`: the chain does not move on at its deadline)"); docs/cloudflare.md ("the store's own `policy`
 * … which the object then applies for every layer sharing it (each isolate's local breaker keeps its own layer's
 * `breaker` thresholds, and opens the host for all when they trip first)", and the table's "an isolate's first calls
 * to a host, before its first verdict …, go under its local breaker").
 * How: `createResilience`, `getResilienceInfo`, `isTimeoutError`, `isCircuitOpenError` (root), `degradation`
 * (./degradation), `fallback` (./fallback), `RetryBudget` (./policies), `durableObjectStore`, `resilientProxy`
 * (./cloudflare), `createClient` (./ky), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), transports of the test's own that keep the exact input they were given, and the
 * fake namespace over the real `BreakerStateObject` (test/helpers/object-namespace.ts).
 * Paths: plain call, chain (rebasing onto an endpoint with its own query), hedge, redirect, degradation rewrite,
 * `Request` input, resilientProxy, ky client; `RetryBudget` alone; two "isolates" (two stores, two layers) over one
 * object namespace.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: 1):
 * 1. `RetryBudget#deposit` JSDoc: "Returns how many were kept … so that taking back that many undoes exactly what was
 *    kept". Observed (ratio 0.1): after `deposit(1)`, `deposit(2)` keeps both requests (nothing near the cap) but
 *    returns 2.0000000000000004, and `deposit(-2.0000000000000004)` leaves 0.09999999999999998 tokens, not the 0.1 of
 *    before; the same drift for 3, 6, 7 … and near the cap (0.6 tokens, `deposit(100)` → 94, taken back →
 * 0.5999999999999996).
 *    From src/policies/retry-budget.ts `deposit`: the earned tokens are kept as a float sum and the count is read
 * back
 *    as `(after - before) / ratio`, neither of which is exact in binary (even `deposit(1)` after `deposit(3)` returns
 *    0.9999999999999998; the layer's own `deposit()` of 1 and its take-back happen to round back, a caller's count of
 *    more does not).
 *
 * Docs-silent (not pinned):
 * - Two parameters of one rule at one query key (`{ steps: { query: "n" }, quality: { query: "n" } }`), or at one
 *   header name (`x-n` and `X-N`), are accepted and both edit the one value in turn, where the same pair at one body
 *   path is a `ConfigError` ("two edits of one value have no order a provider could rely on"); the docs speak of body
 *   paths only.
 * - `RetryBudget#deposit("1")` and `deposit(1n)` were refused with "count must be a finite number, got 1", which
 *   cannot be told from the number 1 it accepts (named with its type since: "got string 1", tested in
 *   test/policies/retry-budget.test.ts).
 * - The `request` event's `url` of an edited URL is the trimmed one (`http://…/p`), of an unedited one the URL as
 *   written (`  \t http://…/p`, its leading spaces kept by `redactUrl`).
 *
 * Held (plain `it`):
 * - An unedited URL with spaces and control characters at its ends reaches the transport as the very string the
 * caller
 *   passed, and its breaker key, `request` event, `health()` and `getResilienceInfo` (but the level) are those of the
 *   same call without the rule; fetch then sends it trimmed (a real server sees `/p?steps=5`).
 * - An edited URL with such ends is sent trimmed with only the named value changed (`q=a%20b`, `flag`, `x=a/b` kept).
 * - A chain (and a hedge) rebases an unedited URL with such ends exactly as without the rule, an endpoint's own query
 *   kept on it; an edited one has the value changed at every endpoint.
 * - A run of 100,000 spaces, control characters or tabs inside a URL (edited or not, plain call and chain) takes well
 *   under 3 s, as 1,000 does.
 * - A query in the fragment is left alone; `?` inside a value (`q=a?steps=50`) and `??steps=50` (the name `?steps`)
 *   are not the rule's parameter, as the URL parser reads them; two rules with their own `match` on one key each
 *   edit only their URLs, once.
 * - `Request` input, a redirect, resilientProxy and the ky client: an unedited query reaches the upstream as written;
 *   an edited one has only its value changed.
 * - `RetryBudget#deposit` refuses NaN, ±Infinity and null with a `TypeError` naming `count`, its snapshot unchanged;
 *   with `ratio: 0` it returns 0 and keeps nothing; at the cap it returns 0; `deposit(1)` and its take-back are
 * exact.
 * - The layer's budget through `health()`: a call earns 0.1 (plain, chain, hedge, redirect); a call the transport
 *   refused (a `transfer-encoding` or `expect` header) earns nothing (plain, redirect, ky); a call its caller aborted
 *   mid-way with a `TypeError` keeps its 0.1; one aborted before it began is never read and earns nothing.
 * - `validate` under `timeout.total` alone (plain chain, `Request` input, hedge, async transform): the stalled read
 * goes on
 *   until the deadline, which rejects the call with its `TimeoutError` (phase `total`) and the second endpoint
 *   is never asked; under a 60 s total it is still reading at 30 s; with `timeout.attempt` (alone or with a total)
 * the
 *   stalled body fails validation at the attempt's bound and the chain moves on; with neither, at 30 s.
 * - `durableObjectStore(ns, { policy: { failureThreshold: 5 } })`: the object opens the host after 5 failures of a
 *   layer whose local threshold is 100 (without the policy, the last layer's 10 applies and 8 failures leave it
 *   closed); a layer whose local threshold is 2 trips after 2 and, after the first call of the other isolate (under
 *   its local breaker, as documented), the other isolate is refused too.
 */
import ky from "ky";
import { describe, expect, it } from "vitest";
import { durableObjectStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { defaultLevels, degradation, type LevelName } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isTimeoutError,
  type RequestEvent,
  type Resilience,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { RetryBudget } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { objectNamespace } from "../helpers/object-namespace.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const stepsRule = () => degradation({ rules: [{ params: { steps: { query: "steps" } } }] });
const busy = (h: { res: { statusCode: number; end(body: string): void } }) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};

/** A transport that keeps the exact first argument it was given (a string stays a string), and answers `answer`. */
function rawTransport(answer: (url: string) => Response = () => new Response("ok")) {
  const inputs: unknown[] = [];
  const urls: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    inputs.push(input);
    const url = new Request(input, init).url;
    urls.push(url);
    return answer(url);
  };
  return { fetch, inputs, urls };
}

function withEvents(layer: Resilience) {
  const events: RequestEvent[] = [];
  layer.on("request", (e) => events.push(e));
  return events;
}

function info(res: Response) {
  const { durationMs: _d, degradationLevel: _l, ...rest } = getResilienceInfo(res) ?? {};
  return rest;
}

describe("a degradation query rule", () => {
  it("sends an unedited URL with spaces and control characters at its ends as the caller wrote it, as without the rule", async () => {
    const url = "  \t\u0001 http://x.test/p?steps=5&flag&x=a/b \n\u0000 ";
    const runs = [];
    for (const rule of [false, true]) {
      const t = rawTransport();
      const layer = createResilience({ fetch: t.fetch, retry: false, degradation: rule ? stepsRule() : undefined });
      layer.degradation?.setLevel("medium");
      const events = withEvents(layer);
      const res = await layer.fetch(url);
      const health = layer.health();
      runs.push({
        input: t.inputs[0],
        info: info(res),
        events: events.map(({ durationMs: _d, ...e }) => e),
        breakers: Object.keys(health.breakers),
        level: getResilienceInfo(res)?.degradationLevel,
      });
    }
    const [plain, ruled] = runs;
    expect(ruled?.input).toBe(url);
    expect(plain?.input).toBe(url);
    expect(ruled?.info).toEqual(plain?.info);
    expect(ruled?.events).toEqual(plain?.events);
    expect(ruled?.breakers).toEqual(["x.test"]);
    expect(ruled?.level).toBe("medium");
    // What fetch then does with it: trims its ends, as the URL parser does.
    const layer = createResilience({ retry: false, degradation: stepsRule() });
    layer.degradation?.setLevel("medium");
    const res = await layer.fetch(`  \t ${a.base}/p?steps=5&flag&x=a/b \n `);
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.path)).toEqual(["/p?steps=5&flag&x=a/b"]);
  });

  it("sends an edited URL trimmed, only the named value changed", async () => {
    const layer = createResilience({ retry: false, degradation: stepsRule() });
    layer.degradation?.setLevel("medium");
    const res = await layer.fetch(` \u0001 ${a.base}/p?q=a%20b&steps=50&flag&x=a/b \t `);
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.path)).toEqual(["/p?q=a%20b&steps=30&flag&x=a/b"]);
    expect(Object.keys(layer.health().breakers)).toEqual([a.host]);
  });

  for (const hedge of [false, true]) {
    it(`rebases onto a chain's endpoints as without the rule${hedge ? " (hedged)" : ""}`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const rule of [false, true]) {
        for (const steps of ["5", "50"]) {
          a.reset();
          b.reset();
          a.on(busy);
          const layer = createResilience({
            retry: false,
            degradation: rule ? stepsRule() : undefined,
            fallback: fallback([
              {
                name: "c",
                ...(hedge ? { hedge: { delay: 1 } } : {}),
                endpoints: [
                  { name: "p", url: `${a.base}/v1` },
                  { name: "q", url: `${b.base}/v2?key=K` },
                ],
              },
            ]),
          });
          layer.degradation?.setLevel("medium");
          const res = await layer.fetch(`  \t ${a.base}/v1/x?steps=${steps}&q=a \n `);
          expect(res.status).toBe(200);
          expect(getResilienceInfo(res)?.endpoint).toBe("q");
          seen[`${rule} ${steps}`] = [a.hits.map((h) => h.path), b.hits.map((h) => h.path)];
        }
      }
      expect(seen["true 5"]).toEqual(seen["false 5"]);
      expect(seen["false 5"]).toEqual([["/v1/x?steps=5&q=a"], ["/v2/x?key=K&steps=5&q=a"]]);
      expect(seen["true 50"]).toEqual([["/v1/x?steps=30&q=a"], ["/v2/x?key=K&steps=30&q=a"]]);
    });
  }

  it("reads a long run of spaces or control characters inside a URL quickly (1k vs 100k), plain and chain", async () => {
    for (const chain of [false, true]) {
      for (const ch of [" ", "\u0001", "\t"]) {
        const times: number[] = [];
        for (const n of [1_000, 100_000]) {
          const t = rawTransport((url) => new Response("x", { status: url.startsWith("http://a.test") ? 503 : 200 }));
          const layer = createResilience({
            fetch: t.fetch,
            retry: false,
            degradation: stepsRule(),
            fallback: chain
              ? fallback([
                  {
                    name: "c",
                    endpoints: [
                      { name: "p", url: "http://a.test/v1" },
                      { name: "q", url: "http://b.test/v2" },
                    ],
                  },
                ])
              : undefined,
          });
          layer.degradation?.setLevel("medium");
          const pad = ch.repeat(n);
          const started = performance.now();
          for (const steps of ["50", "5"]) {
            const res = await layer.fetch(`${pad}http://a.test/v1/x?q=a${pad}b&steps=${steps}${pad}#f${pad}`);
            expect(res.status).toBe(chain ? 200 : 503);
          }
          times.push(performance.now() - started);
          const sent = t.urls.filter((u) => u.startsWith(chain ? "http://b.test" : "http://a.test"));
          expect(sent).toHaveLength(2);
          // Spaces around a number (and tabs, which the parser drops) leave it a number: edited, the run with
          // it; a control character makes it no number (`50\u0001…`): left as written.
          if (ch === "\u0001") expect(sent[0]?.includes("&steps=50%01%01")).toBe(true);
          else expect(sent[0]?.endsWith("b&steps=30#f")).toBe(true);
          expect(sent[1]?.includes("&steps=5")).toBe(true);
        }
        expect(times[1]).toBeLessThan(3_000);
      }
    }
  });

  it("leaves a query in the fragment, `?` inside a value and the name `?steps` alone", async () => {
    const t = rawTransport();
    const layer = createResilience({ fetch: t.fetch, retry: false, degradation: stepsRule() });
    layer.degradation?.setLevel("medium");
    const urls = [
      "http://x.test/p#a?steps=50",
      "http://x.test/p?q=1#?steps=50",
      "http://x.test/p?q=a?steps=50",
      "http://x.test/p??steps=50",
      "http://x.test/p?q=a?steps=50&steps=50&steps=50?",
    ];
    for (const url of urls) await layer.fetch(url);
    expect(t.inputs.slice(0, 4)).toEqual(urls.slice(0, 4));
    expect(t.urls[4]).toBe("http://x.test/p?q=a?steps=50&steps=30&steps=50?");
    // As the URL parser reads them.
    expect(new URL(urls[2] as string).searchParams.get("steps")).toBeNull();
    expect(new URL(urls[3] as string).searchParams.get("?steps")).toBe("50");
  });

  it("two rules with their own `match` on one key each edit only their URLs, once", async () => {
    const t = rawTransport();
    const layer = createResilience({
      fetch: t.fetch,
      retry: false,
      degradation: degradation({
        rules: [
          { match: "http://x.test/v1", params: { steps: { query: "n" } } },
          { match: "http://x.test/v1/deep", params: { quality: { query: "n" } } },
        ],
      }),
    });
    layer.degradation?.setLevel("medium");
    await layer.fetch("http://x.test/v1/a?n=50");
    await layer.fetch("http://x.test/v1/deep/a?n=50");
    await layer.fetch("http://x.test/v2?n=50");
    expect(t.urls).toEqual(["http://x.test/v1/a?n=30", "http://x.test/v1/deep/a?n=40", "http://x.test/v2?n=50"]);
  });

  it("`Request` input, a redirect and the ky client: an unedited query as written, an edited one with its value changed", async () => {
    a.on((h) => {
      if (h.path.startsWith("/r")) {
        h.res.statusCode = 302;
        h.res.setHeader("location", `${b.base}/t${h.path.slice(2)}`);
        h.res.end();
      } else h.res.end("ok");
    });
    const layer = createResilience({ retry: false, degradation: stepsRule() });
    layer.degradation?.setLevel("medium");
    const client = createClient({ resilience: layer });
    await layer.fetch(new Request(`${a.base}/p?x=a%2Fb&steps=5&flag`));
    await layer.fetch(new Request(`${a.base}/p?x=a%2Fb&steps=50&flag`));
    await layer.fetch(`${a.base}/r?x=a/b&steps=5`);
    await layer.fetch(`${a.base}/r?x=a/b&steps=50`);
    await client.get(`${a.base}/k?x=a%2Fb&steps=5`);
    await client.get(`${a.base}/k?x=a%2Fb&steps=50`);
    expect(a.hits.map((h) => h.path)).toEqual([
      "/p?x=a%2Fb&steps=5&flag",
      "/p?x=a%2Fb&steps=30&flag",
      "/r?x=a/b&steps=5",
      "/r?x=a/b&steps=30",
      "/k?x=a%2Fb&steps=5",
      "/k?x=a%2Fb&steps=30",
    ]);
    expect(b.hits.map((h) => h.path)).toEqual(["/t?x=a/b&steps=5", "/t?x=a/b&steps=30"]);
  });

  it("resilientProxy: an unedited query reaches the upstream as written, an edited one with its value changed", async () => {
    const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
    const clock = new TestClock(1_000_000);
    const proxy = resilientProxy({
      routes: [{ path: "/", upstream: `${a.base}/` }],
      resilience: {
        clock,
        retry: false,
        breaker: { failureThreshold: 100 },
        degradation: degradation({
          levelHeader: "x-level",
          minSamples: 1,
          stepInterval: 0,
          triggers: { errorRate: 0.1, memoryUsage: 1, cpuUsage: 1 },
          rules: [{ params: { quality: { query: "quality" } } }],
        }),
      },
    });
    a.on((h) => {
      h.res.statusCode = h.path.startsWith("/fail") ? 500 : 200;
      h.res.end("x");
    });
    for (let i = 0; i < 2; i++) {
      await proxy.fetch(new Request("http://proxy.local/fail"), {}, ctx);
      await clock.advance(1_000);
    }
    a.reset();
    const unedited = await proxy.fetch(new Request("http://proxy.local/p?quality=0&x=a%2Fb&flag"), {}, ctx);
    const edited = await proxy.fetch(new Request("http://proxy.local/p?quality=1&x=a%2Fb&flag"), {}, ctx);
    expect([unedited.status, edited.status]).toEqual([200, 200]);
    // The error-rate trigger goes on stepping down: each call names its own level.
    const [first, second] = a.hits;
    const level = second?.headers["x-level"] as LevelName;
    expect(level).not.toBe("full");
    expect(first?.path).toBe("/p?quality=0&x=a%2Fb&flag");
    expect(second?.path).toBe(`/p?quality=${defaultLevels[level].qualityMultiplier}&x=a%2Fb&flag`);
  });
});

describe("RetryBudget#deposit", () => {
  it("refuses a count that is not a finite number with a TypeError naming it, its snapshot unchanged", () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 1 }, new TestClock());
    budget.deposit(3);
    const before = budget.snapshot();
    for (const count of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null]) {
      expect(() => budget.deposit(count as number)).toThrow(TypeError);
      expect(() => budget.deposit(count as number)).toThrow(/count/);
    }
    expect(budget.snapshot()).toEqual(before);
    expect(budget.deposit(1)).toBeCloseTo(1, 9); // still earning (not NaN for good)
    expect(budget.snapshot().tokens).toBeCloseTo(1.4, 9);
  });

  it("returns 0 with `ratio: 0` and keeps nothing; at its most returns 0; one and its take-back are exact", () => {
    const none = new RetryBudget({ ratio: 0, minPerSecond: 1 }, new TestClock());
    for (const count of [1, 5, -5, 0]) expect(Object.is(none.deposit(count), 0)).toBe(true);
    expect(none.snapshot().tokens).toBe(1);
    const full = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new TestClock());
    full.deposit(100);
    expect(full.snapshot().tokens).toBe(10);
    expect(full.deposit(1)).toBe(0);
    const ones = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new TestClock());
    for (let i = 0; i < 300; i++) {
      const before = ones.snapshot().tokens;
      ones.deposit(-ones.deposit(1));
      expect(ones.snapshot().tokens).toBe(before);
      ones.deposit(1);
      if (i % 7 === 3) ones.tryRetry();
    }
  });

  it("returns how many requests it kept, and taking that many back undoes the deposit exactly", () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new TestClock());
    budget.deposit(1);
    const before = budget.snapshot().tokens;
    expect(before).toBe(0.1);
    const kept = budget.deposit(2); // far from the cap of 10 tokens: both kept
    budget.deposit(-kept);
    expect([kept, budget.snapshot().tokens]).toEqual([2, before]);
  });
});

describe("the layer's retry budget through health()", () => {
  const layerOn = (kind: "plain" | "chain" | "hedge") =>
    createResilience({
      budget: { ratio: 0.1, minPerSecond: 0 },
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      fallback:
        kind === "plain"
          ? undefined
          : fallback([
              {
                name: "c",
                ...(kind === "hedge" ? { hedge: { delay: 1 } } : {}),
                endpoints: [
                  { name: "p", url: `${a.base}/v1` },
                  { name: "q", url: `${b.base}/v2` },
                ],
              },
            ]),
    });
  const earned = async (layer: Resilience, call: () => Promise<unknown>) => {
    const tokens = () => layer.health().budget?.tokens ?? Number.NaN;
    const before = tokens();
    await call().catch(() => {});
    return Math.round((tokens() - before) * 1e9) / 1e9;
  };

  it("a call earns 0.1; one the transport refused earns nothing; a caller's abort keeps its 0.1; one aborted before it began none", async () => {
    a.on((h) => {
      if (h.path.startsWith("/r")) {
        h.res.statusCode = 302;
        h.res.setHeader("location", `${b.base}/t`);
        h.res.end();
      } else h.res.end("ok");
    });
    const plain = layerOn("plain");
    expect(await earned(plain, () => plain.fetch(`${a.base}/x`))).toBe(0.1);
    expect(await earned(plain, () => plain.fetch(`${a.base}/r`))).toBe(0.1);
    for (const headers of [{ "transfer-encoding": "chunked" }, { expect: "100-continue" }]) {
      expect(await earned(plain, () => plain.fetch(`${a.base}/x`, { headers }))).toBe(0);
      expect(await earned(plain, () => plain.fetch(`${a.base}/r`, { headers }))).toBe(0);
      const client = createClient({ resilience: plain });
      expect(await earned(plain, () => client.get(`${a.base}/x`, { headers }))).toBe(0);
      const bare = ky.create({ fetch: plain.fetch, retry: 0 });
      expect(await earned(plain, () => bare.get(`${a.base}/x`, { headers }))).toBe(0);
    }
    expect(
      await earned(plain, () => plain.fetch(`${a.base}/x`, { signal: AbortSignal.abort(new TypeError("x")) })),
    ).toBe(0);
    const controller = new AbortController();
    expect(
      await earned(plain, () => {
        const pending = plain.fetch(`${a.base}/x`, { signal: controller.signal });
        controller.abort(new TypeError("mid"));
        return pending;
      }),
    ).toBe(0.1);
    for (const kind of ["chain", "hedge"] as const) {
      const layer = layerOn(kind);
      expect(await earned(layer, () => layer.fetch(`${a.base}/v1/x`))).toBe(0.1);
      const ac = new AbortController();
      expect(
        await earned(layer, () => {
          const pending = layer.fetch(`${a.base}/v1/x`, { signal: ac.signal });
          ac.abort(new TypeError("mid"));
          return pending;
        }),
      ).toBe(0.1);
    }
  });
});

describe("validate's read under the call's timeouts (test clock)", () => {
  const schema = { "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) } };
  const stalled = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('{"a":'));
        },
      }),
    );

  async function scenario(
    timeout: { total?: number; attempt?: number } | undefined,
    options: { hedge?: boolean; request?: boolean; transform?: boolean } = {},
  ) {
    const clock = new TestClock(0);
    const t = rawTransport((url) => (url.startsWith("https://p.test") ? stalled() : Response.json({ ok: 1 })));
    const layer = createResilience({
      fetch: t.fetch,
      clock,
      timeout,
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "c",
          ...(options.hedge ? { hedge: { delay: 100_000 } } : {}),
          endpoints: [
            {
              name: "p",
              url: "https://p.test/v1",
              validate: schema,
              ...(options.transform ? { transform: async (req: unknown) => req as never } : {}),
            },
            { name: "q", url: "https://q.test/v1" },
          ],
        },
      ]),
    });
    const url = "https://p.test/v1/x";
    let settled: { at: number; status?: number; error?: unknown } | undefined;
    layer.fetch(options.request ? new Request(url) : url).then(
      (res) => {
        settled = { at: clock.now(), status: res.status };
      },
      (error: unknown) => {
        settled = { at: clock.now(), error };
      },
    );
    const at = async (ms: number) => {
      await clock.advance(ms - clock.now());
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
      return { settled, sent: t.urls.length };
    };
    return { at, t };
  }

  for (const options of [{}, { request: true }, { hedge: true }, { transform: true }]) {
    it(`under timeout.total alone the read goes on until the deadline rejects the call ${JSON.stringify(options)}`, async () => {
      const s = await scenario({ total: 10_000 }, options);
      expect(await s.at(9_999)).toEqual({ settled: undefined, sent: 1 });
      const end = await s.at(10_000);
      expect(end.sent).toBe(1);
      expect(end.settled?.status).toBeUndefined();
      expect(isTimeoutError(end.settled?.error)).toBe(true);
      expect((end.settled?.error as TimeoutError | undefined)?.phase).toBe("total");
      expect((await s.at(40_000)).sent).toBe(1); // the chain never moved on
    });
  }

  it("under a 60 s total alone the read is still going at 30 s and ends with the deadline", async () => {
    const s = await scenario({ total: 60_000 });
    expect(await s.at(30_000)).toEqual({ settled: undefined, sent: 1 });
    expect(await s.at(59_999)).toEqual({ settled: undefined, sent: 1 });
    const end = await s.at(60_000);
    expect(isTimeoutError(end.settled?.error)).toBe(true);
    expect(end.sent).toBe(1);
  });

  for (const timeout of [{ attempt: 5_000 }, { attempt: 5_000, total: 10_000 }, undefined]) {
    it(`with ${JSON.stringify(timeout ?? "neither")} a stalled body fails validation and the chain moves on`, async () => {
      const bound = timeout ? 5_000 : 30_000;
      const s = await scenario(timeout, {});
      expect(await s.at(bound - 1)).toEqual({ settled: undefined, sent: 1 });
      const moved = await s.at(bound);
      expect(moved.sent).toBe(2);
      expect(s.t.urls[1]).toBe("https://q.test/v1/x");
      expect(moved.settled?.status).toBe(200);
    });
  }
});

describe("a durableObjectStore's own policy and each isolate's local breaker", () => {
  function isolates(policy: { failureThreshold: number } | undefined, localA: number, localB: number) {
    const clock = new TestClock(1_000_000);
    const ns = objectNamespace(clock);
    const waits: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void waits.push(p) };
    const sent = { A: 0, B: 0 };
    const make = (threshold: number, name: "A" | "B") =>
      createResilience({
        clock,
        retry: { maxAttempts: 1 },
        breaker: { failureThreshold: threshold },
        store: durableObjectStore(ns, { clock, ctx, ...(policy ? { policy } : {}) }),
        fetch: async () => {
          sent[name]++;
          return new Response("down", { status: 500 });
        },
      });
    const A = make(localA, "A");
    const B = make(localB, "B");
    const settle = async () => {
      for (let i = 0; i < 5; i++) {
        await Promise.allSettled(waits.splice(0));
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    const call = async (layer: Resilience) => {
      const outcome = await layer.fetch("https://h.test/x").then(
        (res) => res.status,
        (error: unknown) => (isCircuitOpenError(error) ? "open" : error),
      );
      await settle();
      await clock.advance(10);
      return outcome;
    };
    return { A, B, call, sent, clock, settle };
  }

  it("the object opens the host by the store's policy (5), not by the layer's local threshold (100)", async () => {
    const s = isolates({ failureThreshold: 5 }, 1_000, 100);
    const outcomes = [];
    for (let i = 0; i < 8; i++) outcomes.push(await s.call(s.B));
    // Reported in batches of 3 failures (flushThreshold): the object hears 6 > 5, and opens.
    expect(outcomes).toEqual([500, 500, 500, 500, 500, 500, "open", "open"]);
    expect(s.sent.B).toBe(6);
    expect(s.B.health().breakers["h.test"]?.reason).toMatch(/^shared: 5 failures in a row/);
    // Without a policy, the last layer made (B, 10) gives the thresholds: 8 failures leave it closed.
    const t = isolates(undefined, 1_000, 10);
    const closed = [];
    for (let i = 0; i < 8; i++) closed.push(await t.call(t.B));
    expect(closed).toEqual([500, 500, 500, 500, 500, 500, 500, 500]);
  });

  it("an isolate's local breaker keeps its layer's threshold (2) and, tripping first, opens the host for all", async () => {
    const s = isolates({ failureThreshold: 5 }, 2, 100);
    const outA = [];
    for (let i = 0; i < 4; i++) outA.push(await s.call(s.A));
    expect(outA).toEqual([500, 500, "open", "open"]);
    expect(s.sent.A).toBe(2);
    // B's first call goes under its local breaker (no verdict read yet, as documented); then it is refused.
    const outB = [];
    for (let i = 0; i < 4; i++) outB.push(await s.call(s.B));
    expect(outB).toEqual([500, "open", "open", "open"]);
    expect(s.sent.B).toBe(1);
    expect(s.B.health().breakers["h.test"]?.state).toBe("open");
  });
});
