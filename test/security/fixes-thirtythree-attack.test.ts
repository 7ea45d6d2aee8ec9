/**
 * Outside-in attack on the thirty-third session's fixes, each taken down every path it applies to: a `transform`'s
 * cross-origin headers, a redirect hop's probe aborted with a `TimeoutError`, rebuilt responses' `type`, the
 * browser build's keepalive quota, policy clocks, `execute`'s rejections, the breaker key under a rewrite.
 * Docs: docs/fallback.md ("Credentials never cross origins … headers a `transform` sets itself (`headers.set`, or in
 * a `Headers` of its own, to a value that does not hold the caller's), are the endpoint's and are sent; a caller's
 * header the transform keeps or extends … stays home, whole"); CHANGELOG "A header given twice (`set-cookie`) is
 * held back whole"; docs/breakers.md ("a caller's abort is neither"), docs/retry.md ("A caller's abort is never a
 * failure"), CHANGELOG ("A redirect hop that is a half-open host's probe, aborted by the caller … frees the probe's
 * slot as any caller's abort does"); CHANGELOG ("A response the layer rebuilds … reports the `type` of the one it
 * replaces"); docs/browsers-and-cors.md ("The page's build measures the body first and refuses one that alone
 * passes 64 KiB at once with a `TypeError` that says so …, not retried nor counted against the host"), docs/retry.md
 * ("in a page's build a `keepalive` call whose body passes 64 KiB"); CHANGELOG (`new RetryBudget(options, clock)`,
 * `new CircuitBreaker(key, policy, clock)`: a bad clock "is a `ConfigError` naming `….clock.now` at once");
 * docs/retry.md ("a bad option, or an `fn` that is no function, rejects the call, never throws"); docs/degradation.md
 * ("The breaker key … is taken from the URL the caller asked for, before the rewrite").
 * How: `createResilience`, `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `RetryBudget`, `CircuitBreaker` (./policies), `TestClock` (./testing); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); a real Chromium (test/runtimes/chromium.ts) on a page served from 127.0.0.1
 * loading dist/browser (run `npm run build` first), with a second origin answering CORS.
 * Paths: chain (plain call, `Request` input, hedge, ky client), transform, redirect within and out of a provider's
 * origin, a redirect hop as a half-open probe (plain caller, sibling reason, outer layer through ky), direct probe,
 * retry kept answer and chain's last answer in a page, keepalive bodies (string, Blob, URLSearchParams, FormData,
 * `Request` input, `init` body over a `Request`, a degradation rewrite, a chain's transform), execute, policies.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: each of a repeated header's values, and any part of the caller's value, held back; a hop told its own attempt's timeout by the attempt's signal; the keepalive quota checked again on a rewritten or transformed body):
 * 1. docs/fallback.md "a caller's header the transform keeps … stays home, whole"; CHANGELOG "A header given twice
 *    (`set-cookie`) is held back whole". Observed: a transform that copies the caller's headers the common way,
 *    `new Headers({ ...Object.fromEntries(req.headers), "x-api-key": KEY })`, sends the caller's last `Set-Cookie`
 *    value (`refresh=caller-secret-2`) to the other origin; so does one that keeps one of two values
 *    (`delete`, then `append` the first). A regression of this session's fix: before 96b94f0 each `set-cookie`
 *    value was compared apart and an exact one was held back. Mechanism: src/fallback/endpoint-request.ts:133-137
 *    compares the sent value with the caller's values joined (`caller.get(name)`, "a, b") by `sent.includes(theirs)`:
 *    one value of several never includes the joined whole. The same holds for any header the caller gave twice
 *    (`x-api-key: k1` and `k2`: `k1` reaches the other origin).
 * 2. docs/breakers.md "a caller's abort is neither"; CHANGELOG "aborted by the caller … frees the probe's slot as
 *    any caller's abort does". Observed: a caller that aborts its call with the `TimeoutError` a sibling call of the
 *    same layer rejected with (the fail-fast pattern: abort the group with the first error) while the call's
 *    redirect hop is a half-open host's probe re-opens that host (`half_open>open`, "probe failed"); the same abort
 *    of a direct probe frees the slot. Mechanism: src/http/send/send-attempt.ts:99 takes any abort whose reason is
 *    in `ownTimeouts` for the layer's own timeout, but the set holds every attempt timeout the layer ever fired
 *    (send-attempt.ts:347), not the one of this attempt: the sibling's error handed back is "its own".
 * 3. docs/browsers-and-cors.md "refuses one that alone passes 64 KiB at once with a `TypeError` … not retried nor
 *    counted against the host". Observed in Chromium: a keepalive JSON body of 65,536 bytes that a `medium` level
 *    rewrites (`premium` → `standard`) to 65,537 goes to the browser, which refuses it with "Failed to fetch": the
 *    call rejects with `RetryExhaustedError … Failed to fetch` and the host's breaker counts a failure. Mechanism:
 *    the quota is checked only when the call's request is built (src/http/request/normalize-request.ts:210,
 *    `refuseOverQuota` in `build`), never on the body the layer sends after a rewrite.
 * 4. The same sentence, on a chain: a `transform` that returns a 70,000-byte body for a keepalive call sends it to
 *    the browser, which refuses it; the endpoint's host (another origin) counts a network failure. Same mechanism
 *    (the transform's body, src/fallback/endpoint-request.ts `transformedRequest`, is never measured).
 *
 * Held (plain `it`):
 * - (1) An identity transform and `new Headers(req.headers)` send no repeated header; names in other cases,
 *   delete-then-append of the caller's value, a brand-new `Headers` extending it, and an appended `x-api-key` stay
 *   home; a header the transform `set`s (any case of name, even to the caller's value) is sent, an empty caller
 *   value extended is no secret; a `Request` input, a hedge and the ky client hold back an extended cookie; a
 *   transform's own key follows a redirect within its provider's origin and is dropped on one to a third origin.
 * - (2) The same sibling reason aborting a direct probe frees its slot; the layer's own attempt timeout on a hop
 *   re-opens the host; a plain abort reason and an outer layer's attempt timeout (through ky) free the hop's slot.
 * - (3) In Chromium, a cross-origin answer kept past a retry the opening breaker ended, and a chain's last answer,
 *   say `type: "cors"`, on their clones too.
 * - (4) Blob, URLSearchParams and FormData bodies, a keepalive `Request`'s Blob and `init`'s body over a `Request`
 *   are refused at once, nothing sent, no breaker made; a rewritten body at exactly 64 KiB goes.
 * - (5) `null`, `{}`, a clock without `now` or `setTimer`, a number or a string are `ConfigError`s naming the clock,
 *   for both constructors, and a breaker without a clock; a `TestClock` and a frozen clock work.
 * - (6) `execute` with bad options, `null` or a string as options, or no function: a rejection, never a throw,
 *   and nothing runs or counts.
 * - (7) A plain call, a `Request` input and the ky client keep the breaker of the caller's URL while the query
 *   leaves rewritten.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, fallback } from "../../src/fallback/index.ts";
import {
  type BreakerEvent,
  ConfigError,
  createResilience,
  isTimeoutError,
  type Resilience,
  type TimeoutError,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { CircuitBreaker, type ResolvedBreakerPolicy, RetryBudget } from "../../src/policies/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

function status503(hit: Hit): void {
  hit.res.statusCode = 503;
  hit.res.end("busy");
}

/** A chain whose first endpoint (on `a`, the caller's origin) declines, so the call goes on to `b`, another origin. */
function chainTo(transform: (req: EndpointRequest) => EndpointRequest | Promise<EndpointRequest>, hedge = false) {
  a.on(status503);
  return createResilience({
    retry: false,
    fallback: fallback([
      {
        name: "jobs",
        ...(hedge ? { hedge: { delay: 5 } } : {}),
        endpoints: [
          { name: "home", url: `${a.base}/v1` },
          { name: "away", url: `${b.base}/v2`, transform },
        ],
      },
    ]),
  });
}

describe("(1) a transform sending to another origin: the caller's headers it kept stay home", () => {
  // Two Set-Cookie values in the caller's request (a Worker passing on what a backend set, say).
  const twoCookies: [string, string][] = [
    ["set-cookie", "sid=caller-secret-1"],
    ["set-cookie", "refresh=caller-secret-2"],
    ["authorization", "Bearer caller-token"],
  ];

  it("a transform copying the headers through Object.fromEntries keeps one of the caller's Set-Cookie values: it stays home", async () => {
    // A common way to add a provider key: spread the caller's headers into a new object.
    const r = chainTo((req) => ({
      ...req,
      headers: new Headers({ ...Object.fromEntries(req.headers), "x-api-key": "provider-key" }),
    }));
    const res = await r.fetch(`${a.base}/v1/jobs`, { headers: twoCookies });
    await res.text();
    const hit = b.hits[0] as Hit;
    expect(hit.headers["x-api-key"]).toBe("provider-key");
    expect(hit.headers.authorization).toBeUndefined();
    // Documented: a caller's header the transform keeps stays home, a repeated one whole.
    expect(hit.headers["set-cookie"]).toBeUndefined();
  });

  it("a transform keeping one of two values of a caller's repeated header (delete, then append one): it stays home", async () => {
    const r = chainTo((req) => {
      const first = req.headers.getSetCookie()[0] as string;
      req.headers.delete("set-cookie");
      req.headers.append("set-cookie", first);
      return req;
    });
    const res = await r.fetch(`${a.base}/v1/jobs`, { headers: twoCookies });
    await res.text();
    expect((b.hits[0] as Hit).headers["set-cookie"]).toBeUndefined();
  });

  it("held: an identity transform, or one that copies all of a repeated header, sends none of it", async () => {
    for (const transform of [
      (req: EndpointRequest) => req,
      (req: EndpointRequest) => ({ ...req, headers: new Headers(req.headers) }),
    ]) {
      b.reset();
      const r = chainTo(transform);
      await (await r.fetch(`${a.base}/v1/jobs`, { headers: twoCookies })).text();
      const hit = b.hits[0] as Hit;
      expect(hit.headers["set-cookie"]).toBeUndefined();
      expect(hit.headers.authorization).toBeUndefined();
    }
  });

  it("held: header names in other cases, delete-then-append of the caller's value, a brand-new Headers extending it", async () => {
    const transforms: Array<(req: EndpointRequest) => EndpointRequest> = [
      (req) => {
        req.headers.append("COOKIE", "provider=1");
        return req;
      },
      (req) => {
        const mine = req.headers.get("Cookie") as string;
        req.headers.delete("cookie");
        req.headers.append("Cookie", mine);
        return req;
      },
      (req) => ({ ...req, headers: new Headers({ Cookie: `a=1; ${req.headers.get("cookie")}; z=2` }) }),
      (req) => {
        const h = new Headers(req.headers);
        h.append("x-api-key", "provider");
        return { ...req, headers: h };
      },
    ];
    for (const transform of transforms) {
      b.reset();
      const r = chainTo(transform);
      await (
        await r.fetch(`${a.base}/v1/jobs`, { headers: { Cookie: "sid=caller-secret", "X-Api-Key": "caller-key" } })
      ).text();
      const hit = b.hits[0] as Hit;
      expect(hit.headers.cookie ?? "").not.toContain("caller-secret");
      expect(hit.headers["x-api-key"] ?? "").not.toContain("caller-key");
    }
  });

  it("held: a header the transform sets is its own, even to the caller's value, in any case of name; an empty caller value is no secret", async () => {
    const r = chainTo((req) => {
      req.headers.set("X-API-KEY", req.headers.get("x-api-key") as string);
      req.headers.set("x-request-id", "trace-1");
      req.headers.append("x-empty", "provider");
      return req;
    });
    await (
      await r.fetch(`${a.base}/v1/jobs`, { headers: { "x-api-key": "same-value", "x-request-id": "t", "x-empty": "" } })
    ).text();
    const hit = b.hits[0] as Hit;
    expect(hit.headers["x-api-key"]).toBe("same-value");
    expect(hit.headers["x-request-id"]).toBe("trace-1");
    expect(hit.headers["x-empty"]).toBe(", provider");
  });

  it("held: a Request input, a hedge, and the ky client carry no kept caller header to the other origin", async () => {
    const extend = (req: EndpointRequest): EndpointRequest => {
      req.headers.append("cookie", "provider=1");
      return req;
    };
    const plain = chainTo(extend);
    await (await plain.fetch(new Request(`${a.base}/v1/jobs`, { headers: { cookie: "sid=caller-secret" } }))).text();
    const hedged = chainTo(extend, true);
    a.on(() => {}); // the home endpoint hangs: the hedge starts `away`
    await (await hedged.fetch(`${a.base}/v1/jobs`, { headers: { cookie: "sid=caller-secret" } })).text();
    a.on(status503);
    const client = createClient({
      resilience: {
        retry: false,
        fallback: fallback([
          {
            name: "jobs",
            endpoints: [
              { name: "home", url: `${a.base}/v1` },
              { name: "away", url: `${b.base}/v2`, transform: extend },
            ],
          },
        ]),
      },
    });
    await client.get(`${a.base}/v1/jobs`, { headers: { cookie: "sid=caller-secret" }, throwHttpErrors: false }).text();
    expect(b.hits).toHaveLength(3);
    for (const hit of b.hits) expect(hit.headers.cookie ?? "").not.toContain("caller-secret");
  });

  it("held: a transform's own key goes on a redirect within its provider's origin, not to a third origin", async () => {
    b.on((hit) => {
      if (hit.path.startsWith("/v2")) {
        hit.res.writeHead(307, { location: hit.path.endsWith("away") ? `${c.base}/elsewhere` : `${b.base}/moved` });
        hit.res.end();
      } else hit.res.end("moved-ok");
    });
    const r = chainTo((req) => {
      req.headers.set("authorization", "Bearer provider-key");
      return req;
    });
    await (await r.fetch(`${a.base}/v1/jobs`, { headers: { authorization: "Bearer caller" } })).text();
    expect((b.hits[1] as Hit).path).toBe("/moved");
    expect((b.hits[1] as Hit).headers.authorization).toBe("Bearer provider-key");
    await (await r.fetch(`${a.base}/v1/away`, { headers: { authorization: "Bearer caller" } })).text();
    expect((c.hits[0] as Hit).headers.authorization).toBeUndefined();
  });
});

describe("(2) a redirect hop that is a half-open host's probe, aborted by its caller", () => {
  /** A layer whose breaker for `b` is half-open (opened by one 503, `timeout` 50 ms), `a` redirecting to `b/hang`. */
  async function halfOpen(attempt: number): Promise<{ r: Resilience; changes: BreakerEvent[] }> {
    b.on((hit) => {
      if (hit.path === "/fail") status503(hit);
    });
    a.on((hit) => {
      hit.res.writeHead(302, { location: `${b.base}/hang` });
      hit.res.end();
    });
    c.on(() => {}); // hangs
    const r = createResilience({ retry: false, breaker: { failureThreshold: 1, timeout: 50 }, timeout: { attempt } });
    const changes: BreakerEvent[] = [];
    r.on("breaker", (e) => {
      if (e.key === b.host) changes.push(e);
    });
    await (await r.fetch(`${b.base}/fail`)).text();
    await sleep(70);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
    return { r, changes };
  }

  it("aborted with the reason a sibling call rejected with (this layer's attempt TimeoutError), it frees the slot", async () => {
    const { r, changes } = await halfOpen(60);
    // A sibling call times out: its TimeoutError is what a fail-fast group aborts the others with.
    const sibling = (await rejection(r.fetch(`${c.base}/slow`))) as TimeoutError;
    expect(isTimeoutError(sibling) && sibling.phase).toBe("attempt");
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
    const group = new AbortController();
    const call = rejection(r.fetch(`${a.base}/x`, { signal: group.signal }));
    await b.nth(2); // the hop reached b: it is b's probe
    group.abort(sibling);
    expect(await call).toBe(sibling);
    await sleep(5);
    // Documented: a caller's abort is neither success nor failure; the probe's slot is freed.
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open"]);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
  });

  it("held: the same reason aborting a direct probe frees its slot; the layer's own attempt timeout on the hop re-opens the host", async () => {
    const { r, changes } = await halfOpen(60);
    const sibling = await rejection(r.fetch(`${c.base}/slow`));
    const group = new AbortController();
    const call = rejection(r.fetch(`${b.base}/hang`, { signal: group.signal }));
    await b.nth(2);
    group.abort(sibling);
    await call;
    await sleep(5);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
    // Its own timeout on the hop: the hop hung, b failed its probe.
    const own = (await rejection(r.fetch(`${a.base}/x`))) as TimeoutError;
    expect(own.phase).toBe("attempt");
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open", "half_open>open"]);
  });

  it("held: a plain caller's TimeoutError-free abort, and an outer layer's attempt timeout through ky, free the hop's slot", async () => {
    const { r, changes } = await halfOpen(1_000);
    const group = new AbortController();
    const call = rejection(r.fetch(`${a.base}/x`, { signal: group.signal }));
    await b.nth(2);
    group.abort(new Error("user left"));
    await call;
    const outer = createClient({
      resilience: { fetch: r.fetch, retry: false, breaker: false, redirects: "platform", timeout: { attempt: 40 } },
    });
    const error = await rejection(outer.get(`${a.base}/y`).text());
    expect(isTimeoutError(error)).toBe(true);
    await sleep(5);
    expect(b.hits.map((hit) => hit.path)).toEqual(["/fail", "/hang", "/hang"]);
    expect(changes.map((e) => `${e.from}>${e.to}`)).toEqual(["closed>open", "open>half_open"]);
    expect(r.health().breakers[b.host]?.state).toBe("half_open");
  });
});

describe("(5) RetryBudget and CircuitBreaker refuse a clock that is not one", () => {
  const policy: ResolvedBreakerPolicy = {
    failureThreshold: 2,
    successThreshold: 1,
    timeout: 1_000,
    halfOpenMaxCalls: 1,
    timeWindow: 30_000,
    probeTimeout: 30_000,
    failureRate: undefined,
    minimumCalls: 1,
  };
  const budget = { ratio: 0.1, minPerSecond: 1 };
  const bad: unknown[] = [
    null,
    {},
    { now: () => 0 },
    { setTimer: () => () => {} },
    { now: 0, setTimer: () => () => {} },
    5,
    "clock",
  ];

  it("held: each bad clock is a ConfigError naming the clock, at construction", () => {
    for (const clock of bad) {
      const e1 = thrown(() => new RetryBudget(budget, clock as never));
      expect(e1).toBeInstanceOf(ConfigError);
      expect((e1 as ConfigError).message).toContain("RetryBudget.clock");
      const e2 = thrown(() => new CircuitBreaker("k", policy, clock as never));
      expect(e2).toBeInstanceOf(ConfigError);
      expect((e2 as ConfigError).message).toContain("CircuitBreaker.clock");
    }
    expect(
      thrown(() => new (CircuitBreaker as unknown as new (k: string, p: unknown) => unknown)("k", policy)),
    ).toBeInstanceOf(ConfigError);
  });

  it("held: a TestClock (methods on its prototype), a frozen plain clock and the default work", async () => {
    const clock = new TestClock(1_000);
    const breaker = new CircuitBreaker("k", policy, clock);
    breaker.reportError(breaker.tryAcquire() as never, new Error("x"), false);
    breaker.reportError(breaker.tryAcquire() as never, new Error("x"), false);
    expect(breaker.state).toBe("open");
    expect(breaker.tryAcquire()).toBeUndefined();
    await clock.advance(1_000);
    expect(breaker.tryAcquire()).toBeDefined();
    const frozen = Object.freeze({ now: () => 0, setTimer: () => () => {} });
    expect(new RetryBudget(budget, frozen).tryRetry()).toBe(true);
    expect(new RetryBudget(budget).tryRetry()).toBe(true);
  });
});

describe("(6) resilience.execute rejects, never throws, on a bad option", () => {
  it("held: bad options, a null options object and a non-function fn reject; fn never runs", async () => {
    const r = createResilience({ retry: false });
    let ran = 0;
    const fn = async () => {
      ran++;
      return 1;
    };
    const cases: Array<() => Promise<unknown>> = [
      () => r.execute(fn, { retry: { maxAttempts: 0 } }),
      () => r.execute(fn, { breaker: "" }),
      () => r.execute(fn, { signal: {} as AbortSignal }),
      () => r.execute(fn, { fallback: 1 as never }),
      () => r.execute(fn, { nope: 1 } as never),
      () => r.execute(fn, null as never),
      () => r.execute(fn, "x" as never),
      () => r.execute(1 as never),
    ];
    for (const call of cases) {
      let result: Promise<unknown> | undefined;
      expect(() => {
        result = call();
      }).not.toThrow();
      const error = await rejection(result as Promise<unknown>);
      expect(error instanceof ConfigError || error instanceof TypeError).toBe(true);
    }
    expect(ran).toBe(0);
    expect(r.health().errorRate).toBe(0);
  });
});

describe("(7) the breaker key is read from the caller's URL, before a degradation rewrite", () => {
  it("held: a plain call, a Request input and the ky client keep the breaker of the URL the caller asked for", async () => {
    const r = createResilience({
      retry: false,
      breaker: { key: (url) => `${url.host} q=${url.searchParams.get("q")}` },
      degradation: degradation({ rules: [{ params: { quality: { query: "q" } } }] }),
    });
    r.degradation.setLevel("minimal", "test");
    await (await r.fetch(`${a.base}/x?q=1`)).text();
    await (await r.fetch(new Request(`${a.base}/x?q=1`))).text();
    await createClient({ resilience: r }).get(`${a.base}/x?q=1`).text();
    expect(a.hits.map((hit) => new URL(hit.path, a.base).searchParams.get("q"))).toEqual(["0.4", "0.4", "0.4"]);
    expect(Object.keys(r.health().breakers)).toEqual([`${a.host} q=1`]);
  });
});

describe("(3), (4) in a real Chromium page on the browser build", () => {
  type Lib = PageLib;
  /** What reached the page's origin and the API's (another port: another origin, CORS open). */
  const received: Array<{ path: string; bytes: number }> = [];
  let home: LibraryPage;
  let api: Server;
  let apiOrigin = "";
  let page: Page;

  function serve(cors: boolean) {
    return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const path = (req.url ?? "/").split("?")[0] as string;
      if (cors) {
        res.setHeader("access-control-allow-origin", "*");
        res.setHeader("access-control-allow-headers", "*");
        res.setHeader("access-control-allow-methods", "*");
        if (req.method === "OPTIONS") return void res.writeHead(204).end();
      }
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
      received.push({ path, bytes });
      if (path.startsWith("/503")) return void res.writeHead(503, { "content-type": "text/plain" }).end("busy");
      res.writeHead(200, { "content-type": "text/plain" }).end(String(bytes));
    };
  }

  beforeAll(async () => {
    api = createServer(serve(true));
    await new Promise<void>((done) => api.listen(0, "127.0.0.1", done));
    apiOrigin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    home = await openLibraryPage(serve(false));
    page = home.page;
  }, 60_000);

  afterAll(async () => {
    await home?.close();
    api?.closeAllConnections();
    await new Promise((done) => api?.close(done));
  });

  it('held (3): a cross-origin answer the layer rebuilt says type "cors", on its clone too: kept past a retry, and a chain\'s last', async () => {
    const types = await page.evaluate(async (apiO) => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const direct = (await fetch(`${apiO}/ok`)).type;
      // The breaker opens at the first 503: the retry's wait ends, the call settles with the 503 it kept.
      const kept = await lib
        .createResilience({
          breaker: { failureThreshold: 1, minimumCalls: 1 },
          retry: { maxAttempts: 2, initialDelay: 50, maxDelay: 50, jitter: "none" },
        })
        .fetch(`${apiO}/503/kept`);
      const chained = await lib
        .createResilience({
          retry: false,
          fallback: lib.fallback([
            {
              name: "c",
              endpoints: [
                { name: "x", url: `${apiO}/503` },
                { name: "y", url: "http://127.0.0.1:1/refused" },
              ],
            },
          ]),
        })
        .fetch(`${apiO}/503/chain`);
      return {
        direct,
        kept: [kept.status, kept.type, kept.clone().type],
        chained: [chained.status, chained.type, chained.clone().type],
      };
    }, apiOrigin);
    expect(types).toEqual({ direct: "cors", kept: [503, "cors", "cors"], chained: [503, "cors", "cors"] });
  });

  it("held (4): Blob, URLSearchParams, FormData bodies, a keepalive Request's Blob and init's body over a Request are refused at once", async () => {
    received.length = 0;
    const results = await page.evaluate(async () => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const r = lib.createResilience({ retry: false });
      const big = "z".repeat(70_000);
      const form = new FormData();
      form.append("f", big);
      const outcome = (p: Promise<Response>) =>
        p.then(
          (res) => `status ${res.status}`,
          (e: Error) => `${e.name}: ${e.message}`,
        );
      const post = (body: BodyInit) => ({ method: "POST", keepalive: true, body });
      return {
        outcomes: [
          await outcome(r.fetch("/blob", post(new Blob([big])))),
          await outcome(r.fetch("/params", post(new URLSearchParams({ q: big })))),
          await outcome(r.fetch("/form", post(form))),
          await outcome(r.fetch(new Request("/request-blob", post(new Blob([big]))))),
          await outcome(r.fetch(new Request("/request", post("small")), { body: big })),
        ],
        breakers: Object.keys(r.health().breakers).length,
      };
    });
    for (const outcome of results.outcomes)
      expect(outcome).toMatch(
        /^TypeError: resilience\.fetch: browsers send a keepalive request body of 64 KiB at most/,
      );
    expect(results.breakers).toBe(0);
    expect(received).toEqual([]);
  });

  it("(4) a keepalive body a degradation rewrite grows past 64 KiB is refused at once, counted against no host", async () => {
    received.length = 0;
    const result = await page.evaluate(async () => {
      const lib = (window as unknown as { lib: Lib }).lib;
      // A JSON body of `size` bytes whose `model` a `medium` level rewrites from "premium" to "standard" (one byte more).
      const body = (size: number): string => {
        const base = JSON.stringify({ model: "premium", pad: "" });
        return JSON.stringify({ model: "premium", pad: "x".repeat(size - base.length) });
      };
      const r = lib.createResilience({ retry: false, degradation: lib.degradation({}) });
      r.degradation.setLevel("medium", "test");
      const send = (path: string, size: number) =>
        r
          .fetch(path, {
            method: "POST",
            keepalive: true,
            body: body(size),
            headers: { "content-type": "application/json" },
          })
          .then(
            // Read whole: Chromium counts a keepalive request's bytes against the page's quota until its answer ends.
            async (res) => {
              await res.text();
              return `status ${res.status}`;
            },
            (e: Error) => `${e.name}: ${e.message}`,
          );
      // One byte under: the rewritten body is 65,536 bytes, at the cap, and goes.
      const atCap = await send("/at-cap", 65_535);
      const over = await send("/over", 65_536);
      const failures = Object.values(r.health().breakers).map((b) => b.failureCount);
      return { atCap, over, failures };
    });
    expect(result.atCap).toBe("status 200");
    expect(received).toEqual([{ path: "/at-cap", bytes: 65_536 }]);
    // Documented: refused at once with the TypeError naming the limit, not counted against the host.
    expect(result.failures).toEqual([0]);
    expect(result.over).toMatch(
      /^TypeError: resilience\.fetch: browsers send a keepalive request body of 64 KiB at most/,
    );
  });

  it("(4) a keepalive body a chain's transform grows past 64 KiB is refused, the endpoint's host not counted", async () => {
    received.length = 0;
    const result = await page.evaluate(async (apiO) => {
      const lib = (window as unknown as { lib: Lib }).lib;
      const r = lib.createResilience({
        retry: false,
        fallback: lib.fallback([
          {
            name: "c",
            endpoints: [
              { name: "home", url: `${location.origin}/503` },
              { name: "away", url: `${apiO}/grow`, transform: (req) => ({ ...req, body: "y".repeat(70_000) }) },
            ],
          },
        ]),
      });
      const res = await r.fetch("/503/job", {
        method: "POST",
        keepalive: true,
        body: "small",
        headers: { "idempotency-key": "k-1" },
      });
      return { status: res.status, apiFailures: r.health().breakers[new URL(apiO).host]?.failureCount ?? 0 };
    }, apiOrigin);
    expect(result.status).toBe(503);
    expect(received.map((hit) => hit.path)).toEqual(["/503/job"]);
    // Documented: a body over 64 KiB is refused by the layer before anything is sent, blaming no host.
    expect(result.apiFailures).toBe(0);
  });
});
