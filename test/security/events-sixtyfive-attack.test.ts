/**
 * Outside-in attack on docs/health-and-events.md, on paths earlier event runs (sixtytwo, fiftynine, fiftyone, fifty)
 * drove least: redirects by every status (301/302/303 of a POST beside 307/308), a hop that takes a half-open host's
 * probe slot, a breaker that opens or a budget that refuses mid-call, `replay` on `Request` input and chains, errors
 * with odd names on the `execute` and custom-`fetch` paths, ky's `extend`/`create` instances on one layer, listeners
 * added by a listener that then sets off a nested event, and the Cloudflare `resilientProxy`'s health after a
 * redirect and a chain route.
 *
 * Docs:
 * - docs/health-and-events.md: "`retry` fires before each wait (`key`, `url`, `attempt`, `delay`, `reason`,
 *   `retryAfter`; …), `execute`'s too (`key` its `breaker`'s name, else `"execute"`; `url` empty; `reason` the thrown
 *   error's name, as `debugInfo()` lists it; `retryAfter` false)"; "`request` fires once per call the layer started,
 *   when it settles (`status` or `error`, `attempts`, `durationMs`, `outcome`), and not for one refused before it
 *   started (the caller's mistake, a `TypeError`, or a signal already aborted: nothing was tried, and `health()` does
 *   not count it either). A call whose `Request` body could not be read fires it (an `error` of `TypeError`,
 *   `attempts: 0`) … but nothing counts it"; "`breaker` fires on every state change (`key`, `from`, `to`, `reason`,
 *   `gen`, `openUntil`) when a call makes it (`open` → `half_open` when the first call after `timeout` arrives …)";
 *   "`replay` when a body was too large to keep for retries"; "`redirect` for each redirect the library follows, told
 *   as it turns to the next hop, before that hop's host is asked"; "A listener that throws, or an async one whose
 *   promise rejects, is reported (`reportError` or `console.error`) and never breaks the request"; "As with the DOM's
 *   `EventTarget`, an event goes to the listeners subscribed when it fired, less any unsubscribed meanwhile: one that
 *   subscribes again while it runs, or adds another, is not called again for that event. An event a listener sets off
 *   (a `breaker(name).reset()` from a `breaker` listener) is heard out at once, as `EventTarget` nests it".
 * - docs/retry.md: "A `redirect` event reports each hop (`from`, `to`, `status`, `crossOrigin`, and the _names_ of the
 *   credential headers dropped at a change of origin; the body headers a 301, 302 or 303 drops with the body are not
 *   listed, as they follow from the new method)"; "a hop to a half-open host with a free slot takes it, as that host's
 *   probe …: its own answer settles the slot"; "The hops are one attempt … the final status counts against the first
 *   host's breaker"; "`execute`'s waits fire the layer's `retry` events"; ky: "`extend` or `create`, whose instances run
 *   on the same layer".
 * - docs/cloudflare.md: "adds `x-resilience-endpoint` …, `x-resilience-attempts` … to the responses the upstreams gave
 *   (its own 502, 503 and 504 carry none of the three)"; "`GET /__resilience/health` returns `health()` as JSON".
 * - SECURITY.md: "No secret in events, errors, `health()` or `debugInfo()`: URLs lose their userinfo …, query string
 *   and fragment … before they reach any of them".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts); a custom `fetch` that throws odd errors; `console.error` spied for reports.
 *
 * Paths: plain call, `Request` input (bytes, stream, unreadable, already aborted), chain (retries per endpoint, a
 * half-open probe, every endpoint failing), redirect (301, 302, 303, 307, 308 across origins; a hop into a half-open
 * host), `execute` (plain and under a named breaker), ky (`createClient`, `extend`, `create` on one layer),
 * `resilientProxy` (a redirecting upstream route and a chain route, then its health path).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found; every sentence driven held.
 *
 * Held (plain `it`):
 * - A POST redirected across origins by 301, 302, 303 goes on as a GET and its `redirect` event names only the
 *   credential/off-allowlist headers (`authorization`, `x-api-key`), never a body header (`content-encoding` is not
 *   listed though dropped); by 307/308 it stays a POST and `content-encoding` (off the allowlist) is named. Events
 *   carry no `?key=`/`?tok=`; the hop's host is never listed in `health()`.
 * - A 307 into a half-open host takes its probe: `redirect`, then that host's `open` → `half_open` and `half_open` →
 *   `closed` ("1 successful probe"), then `request`; a 503 from the probe re-opens it and the first host counts the
 *   failure, one attempt.
 * - A breaker opening on the first attempt, or a budget refusing the retry, fires no `retry` event (no wait) and
 *   ends the call with one attempt; a chain whose endpoints fail gives `breaker`/`fallback` events in order and
 *   `attempts` equal to the requests sent; `execute` under a named breaker fires `breaker` with `key` its name.
 * - `replay` fires once per call with `bytes`, `limit` and the URL without its query on string, `Request` (bytes and
 *   stream body) and chain paths; the body goes once.
 * - Odd thrown values (a name holding a URL with a key, a symbol, a number, a name getter that throws, a string):
 *   `execute`'s `retry` reason is the name cut or the value's kind, the call rejects with `RetryExhaustedError`, and
 *   nothing secret reaches events, errors or `debugInfo()`.
 * - ky `createClient`/`extend`/`create` on one layer: one `request` and the `retry` events per call, totals per call,
 *   a throwing `request` listener reported through `console.error`, ky's `HTTPError` unchanged.
 * - Refused before start (`Request` with an aborted signal, an aborted `init.signal`, a GET with a body) fire
 *   nothing; an unreadable `Request` body to a chain fires `request` (`TypeError`, `attempts: 0`) and counts nowhere,
 *   not in the chain's statistics either.
 * - A listener added by a listener is not called for the event being dispatched, but hears a nested event that
 *   listener sets off (`breaker(name).reset()`), as `EventTarget` does.
 * - `resilientProxy`: a redirect whose target answers 503 twice is a 502 without the three headers, the first host's
 *   breaker counts both attempts; a chain route's answer carries `x-resilience-attempts` equal to the requests sent;
 *   the health JSON lists per-host counts, `errorRate` 0.5, the chain's statistics, and no `SECRET`.
 *
 * Docs-silent (not pinned):
 * - `on(name)` converted its name to a property key first: an object whose `toString` gave `"retry"` subscribed to
 *   `retry`, and one whose `toString` threw made `on` throw that error, not the `TypeError` listing the eight. In the
 *   sixty-fifth session docs/health-and-events.md was written in ("anything but a string ... is refused") and the
 *   layer made to match: test "a name that is no string is refused, never converted".
 * - A chain's endpoint statistics count an endpoint's run once however many attempts it made (`calls: 1` for two
 *   requests), where its host's breaker counts each attempt.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type Resilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);
afterEach(() => {
  vi.restoreAllMocks();
});

const T0 = 1_000_000;
const names = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;
const ctx = { waitUntil() {}, passThroughOnException() {} };

type Seen = [string, Record<string, unknown>];
function recordAll(layer: Pick<Resilience, "on">): Seen[] {
  const seen: Seen[] = [];
  for (const name of names) layer.on(name, (e) => seen.push([name, { ...(e as object) }]));
  return seen;
}
const answer = (status: number) => (hit: Hit) => {
  hit.res.statusCode = status;
  hit.res.end("x");
};
const chainOf = () =>
  fallback([
    {
      name: "gen",
      endpoints: [
        { name: "p", url: `${a.base}/c` },
        { name: "q", url: `${b.base}/c` },
      ],
    },
  ]);

describe("redirects by every status", () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`a POST redirected by ${status} across origins: one redirect event, names only, no body header listed`, async () => {
      const layer = createResilience({ retry: { maxAttempts: 1 } });
      a.on((hit) => {
        hit.res.writeHead(status, { location: `${b.base}/t?tok=SECRET` });
        hit.res.end();
      });
      const seen = recordAll(layer);
      const res = await layer.fetch(`${a.base}/p?key=SECRET`, {
        method: "POST",
        body: "x",
        headers: {
          authorization: "Bearer SECRET",
          "x-api-key": "SECRET",
          "content-type": "application/json",
          "content-encoding": "identity",
        },
      });
      expect(res.status).toBe(200);
      const changes = status !== 307 && status !== 308;
      expect(b.hits.map((h) => [h.method, h.headers.authorization, h.headers["x-api-key"]])).toEqual([
        [changes ? "GET" : "POST", undefined, undefined],
      ]);
      expect(b.hits[0]?.headers["content-encoding"]).toBeUndefined();
      expect(seen.map(([n]) => n)).toEqual(["redirect", "request"]);
      expect(seen[0]?.[1]).toEqual({
        from: `${a.base}/p`,
        to: `${b.base}/t`,
        status,
        crossOrigin: true,
        dropped: changes ? ["authorization", "x-api-key"] : ["authorization", "content-encoding", "x-api-key"],
      });
      expect(seen[1]?.[1]).toMatchObject({ key: a.host, url: `${a.base}/p`, method: "POST", status: 200, attempts: 1 });
      expect(Object.keys(layer.health().breakers)).toEqual([a.host]);
      expect(JSON.stringify([seen, layer.debugInfo()])).not.toContain("SECRET");
    });
  }

  it("a 307 into a half-open host takes its probe: redirect, open → half_open, half_open → closed, request", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, successThreshold: 1 },
    });
    b.on(answer(503));
    expect((await layer.fetch(`${b.base}/x`)).status).toBe(503);
    await clock.advance(1_500);
    b.on(answer(200));
    a.on((hit) => {
      hit.res.writeHead(307, { location: `${b.base}/t` });
      hit.res.end();
    });
    const seen = recordAll(layer);
    expect((await layer.fetch(`${a.base}/p`)).status).toBe(200);
    expect(seen).toEqual([
      ["redirect", { from: `${a.base}/p`, to: `${b.base}/t`, status: 307, crossOrigin: true, dropped: [] }],
      ["breaker", { key: b.host, from: "open", to: "half_open", reason: "timeout elapsed", gen: 2, openUntil: null }],
      [
        "breaker",
        { key: b.host, from: "half_open", to: "closed", reason: "1 successful probe", gen: 3, openUntil: null },
      ],
      [
        "request",
        {
          key: a.host,
          url: `${a.base}/p`,
          method: "GET",
          status: 200,
          error: undefined,
          attempts: 1,
          durationMs: 0,
          outcome: "response",
        },
      ],
    ]);
    const h = layer.health().breakers;
    expect(h[b.host]).toMatchObject({ state: "closed", gen: 3, failureCount: 0, lastFailureTime: null });
    expect(h[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
  });

  it("a 503 from that probe re-opens the hop's host, and the first host counts the one attempt", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2, timeout: 1_000 },
    });
    b.on(answer(503));
    await layer.fetch(`${b.base}/x`);
    await layer.fetch(`${b.base}/x`);
    await clock.advance(1_500);
    a.on((hit) => {
      hit.res.writeHead(307, { location: `${b.base}/t` });
      hit.res.end();
    });
    const seen = recordAll(layer);
    expect((await layer.fetch(`${a.base}/p`)).status).toBe(503);
    expect(seen.map(([n, e]) => [n, e.key, e.from, e.to, e.reason])).toEqual([
      ["redirect", undefined, `${a.base}/p`, `${b.base}/t`, undefined],
      ["breaker", b.host, "open", "half_open", "timeout elapsed"],
      ["breaker", b.host, "half_open", "open", "probe failed: status 503"],
      ["request", a.host, undefined, undefined, undefined],
    ]);
    expect(seen.at(-1)?.[1]).toMatchObject({ status: 503, attempts: 1 });
    const h = layer.health();
    expect(h.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 1, consecutiveFailures: 1 });
    expect(h.breakers[b.host]).toMatchObject({ state: "open", openUntil: T0 + 2_500 });
    expect(h.status).toBe("unhealthy");
  });
});

describe("no wait, no retry event", () => {
  it("a breaker that opens on the first attempt, or a budget that refuses, ends the call with no retry event", async () => {
    const clock = new TestClock(T0);
    const tripping = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 100, jitter: "none" },
      breaker: { failureThreshold: 1 },
    });
    const broke = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 100, jitter: "none" },
      budget: { ratio: 0, minPerSecond: 0 },
    });
    a.on(answer(503));
    for (const layer of [tripping, broke]) {
      const seen = recordAll(layer);
      const res = await clock.run(layer.fetch(`${a.base}/x`));
      expect(getResilienceInfo(res)?.attempts).toBe(1);
      expect(seen.filter(([n]) => n === "retry")).toEqual([]);
      expect(seen.at(-1)).toEqual(["request", expect.objectContaining({ status: 503, attempts: 1 })]);
      expect(clock.pending()).toBe(0);
    }
    expect(a.hits).toHaveLength(2);
    expect(tripping.health().budget?.retriesAllowed).toBe(0);
    expect(broke.health().budget).toMatchObject({ retriesAllowed: 0, retriesDenied: 1 });
  });

  it("a chain: probe failure, pass-over, the spare's trip, the last pass-over, then request with attempts sent", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 3, initialDelay: 100, jitter: "none" },
      breaker: { failureThreshold: 1, timeout: 50 },
      fallback: chainOf(),
    });
    a.on(answer(503));
    b.on(answer(503));
    await layer.fetch(`${a.base}/x`);
    await clock.advance(1_000);
    const seen = recordAll(layer);
    const res = await clock.run(layer.fetch(`${a.base}/c/y?key=SECRET`));
    expect(res.status).toBe(503);
    expect(seen.map(([n, e]) => [n, e.key ?? e.chain, e.from, e.to ?? e.next, e.reason])).toEqual([
      ["breaker", a.host, "open", "half_open", "timeout elapsed"],
      ["breaker", a.host, "half_open", "open", "probe failed: status 503"],
      ["fallback", "gen", "p", "q", "status 503"],
      ["breaker", b.host, "closed", "open", "1 failure in a row (last: status 503)"],
      ["fallback", "gen", "q", undefined, "status 503"],
      ["request", "gen", undefined, undefined, undefined],
    ]);
    expect(seen.at(-1)?.[1]).toMatchObject({ url: `${a.base}/c/y`, status: 503, attempts: 2 });
    expect(a.hits.length + b.hits.length).toBe(3);
    expect(JSON.stringify(seen)).not.toContain("SECRET");

    await clock.advance(1_000);
    const work = layer.execute(
      () => {
        throw new Error("w");
      },
      { breaker: "svc" },
    );
    expect(String(await clock.run(rejection(work)))).toBe("Error: w");
    expect(seen.slice(6)).toEqual([
      [
        "breaker",
        {
          key: "svc",
          from: "closed",
          to: "open",
          reason: "1 failure in a row (last: Error)",
          gen: 1,
          openUntil: T0 + 2_050,
        },
      ],
    ]);
  });
});

describe("replay", () => {
  it("fires once a call on string, Request (bytes and stream) and chain bodies; the body goes once", async () => {
    const layer = createResilience({
      retry: { maxAttempts: 3, initialDelay: 1, jitter: "none" },
      maxReplayBytes: 4,
      fallback: chainOf(),
    });
    a.on(answer(503));
    b.on(answer(503));
    const seen = recordAll(layer);
    const body = "0123456789";
    const stream = () =>
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(body));
          c.close();
        },
      });
    const calls = [
      () => layer.fetch(`${a.base}/x?key=SECRET`, { method: "PUT", body }),
      () => layer.fetch(new Request(`${a.base}/x?key=SECRET`, { method: "PUT", body })),
      () =>
        layer.fetch(
          new Request(`${a.base}/x?key=SECRET`, { method: "PUT", body: stream(), duplex: "half" } as RequestInit),
        ),
      () => layer.fetch(`${a.base}/c/x?key=SECRET`, { method: "PUT", body }),
    ];
    for (const call of calls) {
      const res = await call();
      expect([res.status, getResilienceInfo(res)?.attempts]).toEqual([503, 1]);
    }
    expect(seen.map(([n, e]) => [n, e.url, e.bytes ?? e.attempts, e.limit ?? e.status])).toEqual([
      ["replay", `${a.base}/x`, 10, 4],
      ["request", `${a.base}/x`, 1, 503],
      ["replay", `${a.base}/x`, 10, 4],
      ["request", `${a.base}/x`, 1, 503],
      ["replay", `${a.base}/x`, 10, 4],
      ["request", `${a.base}/x`, 1, 503],
      ["replay", `${a.base}/c/x`, 10, 4],
      ["request", `${a.base}/c/x`, 1, 503],
    ]);
    expect(a.hits.map((h) => h.body)).toEqual([body, body, body, body]);
    expect(b.hits).toHaveLength(0);
    expect(layer.debugInfo().totals).toEqual({ calls: 4, failures: 4 });
  });
});

describe("odd thrown values", () => {
  const named = (name: unknown) => {
    const e = new Error("boom https://u:p@h.example/p?key=SECRET");
    Object.defineProperty(e, "name", { value: name, configurable: true, writable: true });
    return e;
  };
  const cases: [string, () => unknown, string][] = [
    ["a name holding a URL", () => named("Fail https://h.example/p?key=SECRET#frag"), "Fail https://h.example/p"],
    ["a symbol name", () => named(Symbol("s")), "symbol"],
    ["a number name", () => named(42), "number"],
    [
      "a name getter that throws",
      () =>
        Object.defineProperty(new Error("m"), "name", {
          get() {
            throw new Error("no name");
          },
        }),
      "object",
    ],
    ["a string", () => "plain https://h.example/?key=SECRET", "string"],
  ];
  for (const [label, make, reason] of cases) {
    it(`${label}: execute's retry reason is "${reason}", calls reject with RetryExhaustedError, nothing secret`, async () => {
      const clock = new TestClock(T0);
      const layer = createResilience({
        clock,
        retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
        fetch: async () => {
          throw make();
        },
      });
      const seen = recordAll(layer);
      const fetched = (await clock.run(rejection(layer.fetch("http://h.example/x?key=SECRET")))) as Error;
      const executed = (await clock.run(
        rejection(
          layer.execute(() => {
            throw make();
          }),
        ),
      )) as Error;
      expect([fetched.name, executed.name]).toEqual(["RetryExhaustedError", "RetryExhaustedError"]);
      expect(seen).toEqual([
        [
          "request",
          expect.objectContaining({ key: "h.example", url: "http://h.example/x", error: "RetryExhaustedError" }),
        ],
        ["retry", { key: "execute", url: "", attempt: 1, delay: 1, reason, retryAfter: false }],
      ]);
      const info = layer.debugInfo();
      expect(info.recentErrors.map((r) => [r.key, r.url, r.error])).toEqual([
        ["h.example", "http://h.example/x", "RetryExhaustedError"],
        ["execute", "", "RetryExhaustedError"],
      ]);
      const text = JSON.stringify([seen, info, fetched.message, executed.message, fetched.stack, executed.stack]);
      expect(text).not.toContain("SECRET");
      expect(text).not.toContain("u:p@");
    });
  }
});

describe("ky instances on one layer", () => {
  it("createClient, extend and create: one request event per call, a throwing listener reported, totals per call", async () => {
    const layer = createResilience({ retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" } });
    let n = 0;
    a.on((hit) => {
      n++;
      hit.res.statusCode = n % 2 ? 503 : 200;
      hit.res.end("x");
    });
    const seen = recordAll(layer);
    const api = createClient({ resilience: layer, prefix: a.base });
    const clients = [api, api.extend({ headers: { "x-a": "1" } }), api.create({ prefix: a.base })];
    for (const client of clients) expect(await client.get("x?key=SECRET").text()).toBe("x");
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    layer.on("request", () => {
      throw new Error("listener boom");
    });
    a.on(answer(404));
    const error = (await rejection(api.get("y?key=SECRET").text())) as Error;
    expect(error.name).toBe("HTTPError");
    expect(error.message).toContain(`${a.base}/y`);
    expect(error.message).not.toContain("SECRET");
    expect(reported).toHaveBeenCalledTimes(1);
    expect(String(reported.mock.calls[0]?.at(-1))).toContain("listener boom");
    const retry = { key: a.host, url: `${a.base}/x`, attempt: 1, delay: 1, reason: "status 503", retryAfter: false };
    expect(seen.map(([name, e]) => (name === "retry" ? [name, e] : [name, e.url, e.status, e.attempts]))).toEqual([
      ["retry", retry],
      ["request", `${a.base}/x`, 200, 2],
      ["retry", retry],
      ["request", `${a.base}/x`, 200, 2],
      ["retry", retry],
      ["request", `${a.base}/x`, 200, 2],
      ["request", `${a.base}/y`, 404, 1],
    ]);
    expect(a.hits).toHaveLength(7);
    expect(layer.debugInfo().totals).toEqual({ calls: 4, failures: 0 });
    expect(layer.health().budget?.retriesAllowed).toBe(3);
    expect(layer.health().breakers[a.host]).toMatchObject({ failureCount: 3, consecutiveFailures: 0 });
  });
});

describe("refused before start, and unreadable bodies", () => {
  it("an aborted Request, an aborted init signal and a GET with a body fire nothing; an unreadable body counts nowhere", async () => {
    const layer = createResilience({ retry: { maxAttempts: 1 }, fallback: chainOf() });
    a.on(answer(200));
    const seen = recordAll(layer);
    const ctl = new AbortController();
    ctl.abort(new Error("gone"));
    expect(String(await rejection(layer.fetch(new Request(`${a.base}/c/x`, { signal: ctl.signal }))))).toBe(
      "Error: gone",
    );
    expect(String(await rejection(layer.fetch(`${a.base}/x`, { signal: ctl.signal })))).toBe("Error: gone");
    expect(await rejection(layer.fetch(`${a.base}/c/x`, { method: "GET", body: "x" }))).toBeInstanceOf(TypeError);
    expect(seen).toEqual([]);
    const broken = new ReadableStream({ pull: (c) => c.error(new TypeError("broke")) });
    const init = { method: "PUT", body: broken, duplex: "half" } as RequestInit;
    expect(await rejection(layer.fetch(new Request(`${a.base}/c/x?key=SECRET`, init)))).toBeInstanceOf(TypeError);
    expect(seen).toEqual([
      ["request", expect.objectContaining({ key: "gen", url: `${a.base}/c/x`, error: "TypeError", attempts: 0 })],
    ]);
    expect(a.hits.length + b.hits.length).toBe(0);
    const h = layer.debugInfo();
    expect([h.totals, h.errorRate, h.recentErrors, h.budget?.retriesAllowed]).toEqual([
      { calls: 0, failures: 0 },
      0,
      [],
      0,
    ]);
    expect(h.fallback.gen?.fallbacks).toMatchObject({ p: { calls: 0 }, q: { calls: 0 } });
  });
});

describe("listeners added during an emit", () => {
  it("a listener added by a listener misses the event being dispatched but hears a nested one it sets off", async () => {
    const clock = new TestClock(T0);
    const layer = createResilience({ clock, retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1 } });
    const heard: string[] = [];
    let added = false;
    layer.on("breaker", (e) => {
      heard.push(`first ${e.from}>${e.to}`);
      if (added) return;
      added = true;
      layer.on("breaker", (late) => heard.push(`late ${late.from}>${late.to}`));
      layer.breaker("svc").reset();
    });
    layer.on("breaker", (e) => heard.push(`second ${e.from}>${e.to}`));
    const work = layer.execute(
      () => {
        throw new Error("w");
      },
      { breaker: "svc", retry: false },
    );
    // Reset by the listener, the breaker no longer stands open: the one attempt ran out as any would.
    expect(String(await rejection(work))).toBe("RetryExhaustedError: gave up after 1 attempt: w");
    expect(heard).toEqual([
      "first closed>open",
      "first open>closed",
      "second open>closed",
      "late open>closed",
      "second closed>open",
    ]);
    expect(layer.health().breakers.svc?.state).toBe("closed");
  });
});

describe("resilientProxy health after a redirect route and a chain route", () => {
  it("counts attempts against the first host, the chain's per endpoint, and quotes no key", async () => {
    const clock = new TestClock(T0);
    const proxy = resilientProxy({
      routes: [
        { path: "/up", upstream: `${a.base}/v1?key=SECRET` },
        {
          path: "/gen",
          chain: {
            name: "gen",
            endpoints: [
              { name: "p", url: `${a.base}/c` },
              { name: "q", url: `${b.base}/c` },
            ],
          },
        },
      ],
      resilience: { clock, retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" } },
    });
    a.on((hit) => {
      if (hit.path.startsWith("/v1/r")) {
        hit.res.writeHead(307, { location: `${b.base}/t?tok=SECRET` });
        hit.res.end();
        return;
      }
      answer(503)(hit);
    });
    b.on((hit) => answer(hit.path.startsWith("/t") ? 503 : 200)(hit));
    const go = async (path: string) => {
      const r = await clock.run(proxy.fetch(new Request(`https://w.example${path}`), {}, ctx));
      return [r.status, r.headers.get("x-resilience-attempts"), r.headers.get("x-resilience-endpoint")];
    };
    expect(await go("/up/r")).toEqual([502, null, null]);
    expect(await go("/gen/z")).toEqual([200, "3", "q"]);
    expect(a.hits.map((h) => h.path)).toEqual(["/v1/r?key=SECRET", "/v1/r?key=SECRET", "/c/z", "/c/z"]);
    expect(b.hits.map((h) => h.path)).toEqual(["/t?tok=SECRET", "/t?tok=SECRET", "/c/z"]);
    const res = await proxy.fetch(new Request("https://w.example/__resilience/health"), {}, ctx);
    const text = await res.text();
    expect(text).not.toContain("SECRET");
    const h = JSON.parse(text);
    expect(h.errorRate).toBe(0.5);
    expect(h.status).toBe("degraded");
    expect(h.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 4, consecutiveFailures: 4 });
    expect(h.breakers[b.host]).toMatchObject({ state: "closed", failureCount: 0 });
    expect(h.budget.retriesAllowed).toBe(2);
    expect(h.fallback.gen).toMatchObject({
      lastSuccessfulFallback: "q",
      fallbacks: { p: { calls: 1, successes: 0 }, q: { calls: 1, successes: 1 } },
    });
  });
});

describe("on(name) with a name that is no string", () => {
  it("a name that is no string is refused, never converted", () => {
    const layer = createResilience({ retry: false });
    const saysRetry = { toString: () => "retry" };
    const throwsOnRead = {
      toString() {
        throw new Error("toString ran");
      },
    };
    for (const name of [saysRetry, throwsOnRead, Symbol("retry")]) {
      expect(() => layer.on(name as never, () => {})).toThrow(
        new TypeError(
          `on(${typeof name === "symbol" ? "a symbol" : "an object"}, listener): unknown event, expected one of ${names.join(", ")}`,
        ),
      );
    }
  });
});
