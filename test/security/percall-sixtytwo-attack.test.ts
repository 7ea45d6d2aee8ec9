/**
 * Outside-in attack on the per-call options against the layer option rows of docs/options.md: what a call (or an
 * `execute`) gives of its own, over what the layer was made with, on every way in.
 *
 * Docs:
 * - docs/options.md: "throws `ConfigError` naming the path and the expected value"; "`undefined` never wipes a
 *   default"; rows `retry` "`false` for single attempts", `retry.retryOn.methods` "a name no method has (`"POST "`,
 *   `"POST,PUT"`) is a `ConfigError`", `retry.retryOn.error` "predicate over thrown errors", `retry.maxDelay` "cap on
 *   any computed delay", `retry.exponentialBase` "growth factor per retry", `redirects` "who follows the redirects
 *   of a `redirect: "follow"` call".
 * - docs/retry.md "## Generic work": "`resilience.execute(fn, { retry, signal })` runs any async function under the
 *   instance's retry options, clock and shared budget"; "`execute` takes the layer's whole `retry` shape, those four
 *   included, checked as the layer checks them"; "a bad option … rejects the call, never throws"; "The delay before
 *   retry _n_ is `min(maxDelay, initialDelay × exponentialBase^(n−1))`, then jittered"; JSDoc of
 *   `ExecuteOptions.retry`: "Retry options for this work, over the instance's; `false` for one attempt".
 * - docs/retry.md "## Redirects": "Calls with `redirect: "manual"` or `"error"` go to the transport untouched; a
 *   `redirect: "error"` call that meets a redirect is refused by the platform with the `TypeError` of a network
 *   failure, which the library cannot tell apart …, so it is retried like one and counts against the host's
 *   breaker"; docs/cloudflare.md: "The proxy sends with `redirect: "follow"` whatever the incoming request says".
 * - docs/retry.md: "The caller's own mistakes reject at once with a `TypeError`, before any timer starts, and are
 *   never retried nor counted against the host's breaker"; SECURITY.md: "a signal that is no `AbortSignal`, an `init`
 *   field the runtime's `Request` refuses (`redirect: "bogus"` …) … reject at once with a `TypeError`: never retried,
 *   never counted".
 * - docs/options.md (head): "`createClient` refuses only ky's `retry` and `fetch` … and a key one or two letters
 *   from `resilience` (`resilence`), which would leave the client on a default layer"; docs/retry.md "## ky":
 *   "Passing ky's `retry` or `fetch` is a `ConfigError`, at once, to `createClient`, to a call".
 *
 * How: `createResilience`, `ConfigError`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `resilientProxy` (./cloudflare, a fake `ctx`), `TestClock` (./testing);
 * two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts): A answers `/r…` with a 307 to `/done`, `/hang`
 * never, anything else 200; B answers 200.
 *
 * Paths: plain call, `Request` input (with and without a body, with its own `redirect` and `signal`), a chain, a
 * hedged chain, a degradation rewrite (level `low`), a redirect (manual, and followed by the layer and by the
 * platform), the ky client, the Worker proxy, and `execute`.
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found: every sentence driven below held on the paths tried.
 *
 * Held (plain `it`):
 * - `execute`'s per-call `retry` is checked as the layer's: the four HTTP-only fields (`retryOn.methods` "POST ",
 *   `retryOn.statuses` 99, `maxRetryAfter` -1, `idempotencyKey` "yes"), and `null`/`true` for `retry`, reject (never
 *   throw) with a `ConfigError` at `execute.retry.…` whose words after the path are the layer's for the same value;
 *   `fn` never runs.
 * - Per call over the layer: `retry: false` is one attempt on a layer of 5; `maxAttempts: 3` is three on a layer of
 *   `retry: false`; `jitter: "none"`, `initialDelay`, `exponentialBase` and `maxDelay` given per call set the waits
 *   (100, 300, 500, 500 ms: the cap) while fields not given keep the layer's (its `full` jitter and `random`: 50,
 *   100 ms); a per-call `retryOn` without `error` keeps the layer's `retryOn.error`, and one with `error` replaces it.
 * - A call's own `redirect: "manual"` returns the 307 untouched on the plain, `Request` (its own `redirect`), chain,
 *   hedge, degraded and ky paths and under `redirects: "platform"`; `init.redirect: "follow"` over a `Request`'s
 *   `manual` is followed; the proxy follows whatever the incoming request says.
 * - `redirect: "error"` meeting a 307: retried as a network error and counted (plain: `RetryExhaustedError`, 2
 *   requests, 2 failures on the host's breaker); in a chain the next endpoint serves.
 * - Bad per-call `init` values (`redirect: "bogus"`, method `"BAD M"`, a number as `signal`, a header value with a
 *   newline) reject at once with a `TypeError` on every path, nothing sent, no breaker hearing of them.
 * - A `Request` whose own signal was aborted, given `init.signal: null`, is sent (fetch's rule: `init.signal`
 *   replaces the `Request`'s), and one whose signal aborts mid-call under an `init.signal` of its own is unaffected;
 *   with no `init.signal`, the `Request`'s own signal aborting mid-call rejects with its reason on every path.
 * - ky: a per-call `resilience` is a `ConfigError` (path `resilience`) before anything is sent.
 *
 * Docs-silent (not pinned):
 * - A ky call's misspelt `resilence: {…}` was taken silently (refused since the sixty-third session; handed to the layer's fetch as an `init` extension, and
 *   to the platform's), where `createClient` refuses that key and a call's `resilience` is refused.
 * - A `425` (retried by default, `retry.retryOn.statuses`) ends a chain after the endpoint's retries rather than
 *   moving on (docs/fallback.md lists 5xx, 429 and 408 as moving on, so this follows the words).
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const ctx = { waitUntil() {}, passThroughOnException() {} };

/** A: `/r…` a 307 to `/done`, `/hang` never answers (until the client hangs up), anything else 200. */
function serveA(): void {
  A.on((hit: Hit) => {
    if (hit.path.startsWith("/r")) {
      hit.res.writeHead(307, { location: "/done" });
      hit.res.end();
      return;
    }
    if (hit.path.startsWith("/hang")) return;
    hit.res.end(`ok:${hit.path}`);
  });
}

const paths = (hits: Hit[]): string[] => hits.map((hit) => hit.path);

type PathName = "plain" | "request" | "requestBody" | "chain" | "hedge" | "degraded" | "ky";
const PATHS: PathName[] = ["plain", "request", "requestBody", "chain", "hedge", "degraded", "ky"];

interface Way {
  layer: Resilience;
  /** Sends `path` on A with `init` (for the `Request` paths, `init` builds the `Request`; `extra` is the call's). */
  send(path: string, init?: RequestInit, extra?: RequestInit): Promise<Response>;
}

/** One way in, on a fresh layer: chains route A's `/r`, `/hang` and `/x` to A first, then B. */
function way(name: PathName, options: ResilienceOptions = {}): Way {
  const base: ResilienceOptions = { retry: { maxAttempts: 2, initialDelay: 1 }, ...options };
  const chain = (hedge?: number) =>
    fallback(
      ["/r", "/hang", "/x"].map((p, i) => ({
        name: `c${i}`,
        ...(hedge === undefined ? {} : { hedge: { delay: hedge } }),
        endpoints: [
          { name: "a", url: `${A.base}${p}` },
          { name: "b", url: `${B.base}${p}` },
        ],
      })),
    );
  const url = (p: string) => `${A.base}${p}`;
  switch (name) {
    case "plain": {
      const layer = createResilience(base);
      return { layer, send: (p, init, extra) => layer.fetch(url(p), { ...init, ...extra }) };
    }
    case "request":
    case "requestBody": {
      const layer = createResilience(base);
      const body = name === "requestBody" ? { method: "PUT", body: "payload" } : {};
      return { layer, send: (p, init, extra) => layer.fetch(new Request(url(p), { ...body, ...init }), extra) };
    }
    case "chain":
    case "hedge": {
      const layer = createResilience({ ...base, fallback: chain(name === "hedge" ? 60_000 : undefined) });
      return { layer, send: (p, init, extra) => layer.fetch(url(p), { ...init, ...extra }) };
    }
    case "degraded": {
      const layer = createResilience({ ...base, degradation: degradation({ levelHeader: "x-level" }) });
      layer.degradation.setLevel("low");
      return { layer, send: (p, init, extra) => layer.fetch(url(p), { ...init, ...extra }) };
    }
    case "ky": {
      const layer = createResilience(base);
      const api = createClient({ resilience: layer, throwHttpErrors: false });
      return { layer, send: (p, init, extra) => api(url(p), { ...init, ...extra } as never) as Promise<Response> };
    }
  }
}

/** The failures every breaker of `layer` heard. */
const failures = (layer: Resilience): number =>
  Object.values(layer.health().breakers).reduce((sum, b) => sum + (b as { failureCount: number }).failureCount, 0);

describe("execute: a per-call retry is checked as the layer's", () => {
  const cases: Array<[string, unknown, string]> = [
    ["retryOn.methods", { retryOn: { methods: ["POST "] } }, "retry.retryOn.methods.0"],
    ["retryOn.methods list", { retryOn: { methods: ["POST,PUT"] } }, "retry.retryOn.methods.0"],
    ["retryOn.statuses", { retryOn: { statuses: [99] } }, "retry.retryOn.statuses.0"],
    ["maxRetryAfter", { maxRetryAfter: -1 }, "retry.maxRetryAfter"],
    ["idempotencyKey", { idempotencyKey: "yes" }, "retry.idempotencyKey"],
    ["retry null", null, "retry"],
    ["retry true", true, "retry"],
    ["retryOn typo", { retryOn: { status: [500] } }, "retry.retryOn"],
  ];
  it.each(cases)("%s: rejects with the layer's words under execute.…, fn never runs", async (_, retry, path) => {
    const layerError = (() => {
      try {
        createResilience({ retry } as never);
      } catch (error) {
        return error as ConfigError;
      }
      throw new Error("the layer took it");
    })();
    expect(layerError).toBeInstanceOf(ConfigError);
    expect(layerError.path).toBe(path);
    const layer = createResilience();
    let ran = 0;
    let call: Promise<unknown> | undefined;
    expect(() => {
      call = layer.execute(
        async () => {
          ran++;
        },
        { retry } as never,
      );
    }).not.toThrow();
    const error = (await rejection(call as Promise<unknown>)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.path).toBe(`execute.${path}`);
    expect(error.message).toBe(`execute.${layerError.message}`);
    expect(ran).toBe(0);
  });
});

describe("execute: a per-call retry over the layer's", () => {
  /** Runs failing work under `per`, on a layer of `layerRetry`; the attempts and each wait's `delay`. */
  async function run(layerRetry: ResilienceOptions["retry"], per: object, error = new Error("boom")) {
    const clock = new TestClock();
    const layer = createResilience({ clock, random: () => 0.5, retry: layerRetry, budget: false });
    const delays: number[] = [];
    layer.on("retry", (e) => delays.push(e.delay));
    let attempts = 0;
    const settled = await clock.run(
      layer
        .execute(async () => {
          attempts++;
          throw error;
        }, per)
        .then(
          () => "resolved",
          (e: unknown) => (e as Error).name,
        ),
    );
    return { attempts, delays, settled };
  }

  it("retry: false is one attempt on a layer of 5; maxAttempts 3 is three on a layer of retry: false", async () => {
    expect(await run({ maxAttempts: 5, initialDelay: 10 }, { retry: false })).toEqual({
      attempts: 1,
      delays: [],
      settled: "RetryExhaustedError",
    });
    expect(await run(false, { retry: { maxAttempts: 3 } })).toMatchObject({
      attempts: 3,
      settled: "RetryExhaustedError",
    });
    // No per-call retry: the layer's `false` is one attempt.
    expect(await run(false, {})).toMatchObject({ attempts: 1 });
    // `undefined` never wipes: the layer's 4 stays.
    expect(await run({ maxAttempts: 4, initialDelay: 1 }, { retry: { maxAttempts: undefined } })).toMatchObject({
      attempts: 4,
    });
  });

  it("the numbers given per call set the waits; the rest stay the layer's (jitter, random)", async () => {
    const layer = { maxAttempts: 5, initialDelay: 1000, maxDelay: 60_000, jitter: "full" as const };
    const per = { retry: { jitter: "none", initialDelay: 100, exponentialBase: 3, maxDelay: 500 } };
    expect((await run(layer, per)).delays).toEqual([100, 300, 500, 500]);
    // Only `initialDelay` and `maxAttempts` per call: the layer's full jitter at random 0.5 halves each computed wait.
    expect((await run(layer, { retry: { initialDelay: 100, maxAttempts: 3 } })).delays).toEqual([50, 100]);
    // Per-call `maxDelay` below the layer's `initialDelay`: every computed wait is capped by it.
    expect((await run({ ...layer, jitter: "none" }, { retry: { maxDelay: 40, maxAttempts: 3 } })).delays).toEqual([
      40, 40,
    ]);
  });

  it("a per-call retryOn without error keeps the layer's retryOn.error; one with error replaces it", async () => {
    const never = { maxAttempts: 3, initialDelay: 1, retryOn: { error: () => false } };
    expect(await run(never, { retry: { retryOn: { statuses: [500] } } })).toMatchObject({ attempts: 1 });
    expect(await run(never, { retry: { retryOn: { error: undefined } } })).toMatchObject({ attempts: 1 });
    expect(await run(never, { retry: { retryOn: { error: () => true } } })).toMatchObject({ attempts: 3 });
    // The layer's default for HTTP (network errors and timeouts) is not execute's: any thrown error is retried.
    expect(await run({ maxAttempts: 3, initialDelay: 1 }, {})).toMatchObject({ attempts: 3 });
  });
});

describe("a call's own redirect over the layer's redirects", () => {
  it.each(PATHS)(
    "%s: redirect manual returns the 307 untouched; init follow over a Request's manual is followed",
    async (name) => {
      serveA();
      const w = way(name);
      const manual = await w.send("/r", { redirect: "manual" });
      expect(manual.status).toBe(307);
      expect(manual.redirected).toBe(false);
      expect(manual.headers.get("location")).toBe("/done");
      await manual.arrayBuffer();
      expect(paths(A.hits)).toEqual(["/r"]);
      expect(B.hits).toHaveLength(0);
      A.hits.length = 0;
      // The call's own `redirect` wins over what the input says (a `Request`'s, or ky's).
      const followed = await w.send("/r", { redirect: "manual" }, { redirect: "follow" });
      expect(followed.status).toBe(200);
      expect(followed.redirected).toBe(true);
      expect(await followed.text()).toBe("ok:/done");
      expect(paths(A.hits)).toEqual(["/r", "/done"]);
    },
  );

  it('under redirects: "platform" a manual call is untouched too, a follow call followed by the platform', async () => {
    serveA();
    const layer = createResilience({ redirects: "platform", retry: false });
    expect(layer.debugInfo().options.redirects).toBe("platform");
    const manual = await layer.fetch(`${A.base}/r`, { redirect: "manual" });
    expect(manual.status).toBe(307);
    await manual.arrayBuffer();
    const followed = await layer.fetch(`${A.base}/r`);
    expect([followed.status, followed.redirected, await followed.text()]).toEqual([200, true, "ok:/done"]);
    expect(paths(A.hits)).toEqual(["/r", "/r", "/done"]);
  });

  it("the proxy follows whatever the incoming request says", async () => {
    serveA();
    const proxy = resilientProxy({ routes: [{ path: "/p", upstream: `${A.base}/r` }] });
    const res = await proxy.fetch(new Request("http://w.example/p", { redirect: "manual" }), {}, ctx);
    expect([res.status, await res.text()]).toEqual([200, "ok:/done"]);
    expect(paths(A.hits)).toEqual(["/r", "/done"]);
  });

  it('redirect "error" meeting a 307: retried as a network error and counted; a chain moves on', async () => {
    serveA();
    const plain = way("plain");
    const error = (await rejection(plain.send("/r", { redirect: "error" }))) as Error;
    expect(error.name).toBe("RetryExhaustedError");
    expect(paths(A.hits)).toEqual(["/r", "/r"]);
    expect(failures(plain.layer)).toBe(2);
    A.hits.length = 0;
    const chain = way("chain");
    const res = await chain.send("/r", { redirect: "error" });
    expect([res.status, await res.text()]).toEqual([200, "ok"]);
    expect(paths(A.hits)).toEqual(["/r", "/r"]);
    expect(paths(B.hits)).toEqual(["/r"]);
  });
});

describe("a call's own bad init values are the caller's mistakes, on every path", () => {
  const bad: Array<[string, RequestInit]> = [
    ["redirect bogus", { redirect: "bogus" as RequestRedirect }],
    ["method BAD M", { method: "BAD M" }],
    ["signal 5", { signal: 5 as unknown as AbortSignal }],
    ["header newline", { headers: { "x-k": "a\nb" } }],
  ];
  for (const name of PATHS) {
    it.each(bad)(`${name}: %s rejects at once with a TypeError, nothing sent, nothing counted`, async (_, init) => {
      serveA();
      const w = way(name);
      // For the `Request` paths the bad value is the call's own `init`, over a good `Request`.
      // ky builds its `Request` when the call is made, so a value its `Request` refuses throws there (ky's own way).
      let thrownAtCall: unknown;
      let call: Promise<Response> | undefined;
      try {
        call = name.startsWith("request") ? w.send("/x", {}, init) : w.send("/x", init);
      } catch (e) {
        thrownAtCall = e;
      }
      if (name !== "ky") expect(thrownAtCall).toBeUndefined();
      const error = (call ? await rejection(call) : thrownAtCall) as Error;
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).not.toContain("a\nb");
      expect(error).not.toBeInstanceOf(ConfigError);
      expect(A.hits).toHaveLength(0);
      expect(B.hits).toHaveLength(0);
      expect(failures(w.layer)).toBe(0);
    });
  }
});

describe("a Request's own signal against the call's init.signal", () => {
  const REQUEST_PATHS = ["request", "requestBody"] as const;

  it.each(REQUEST_PATHS)(
    "%s: an aborted Request given init.signal null is sent (init.signal replaces it)",
    async (name) => {
      serveA();
      const w = way(name);
      const gone = new AbortController();
      gone.abort(new Error("gone"));
      const res = await w.send("/x", { signal: gone.signal }, { signal: null });
      expect([res.status, await res.text()]).toEqual([200, "ok:/x"]);
      expect(A.hits).toHaveLength(1);
    },
  );

  it.each(REQUEST_PATHS)(
    "%s: the Request's signal aborting mid-call under an init.signal changes nothing",
    async (name) => {
      A.on((hit) => setTimeout(() => hit.res.end("late"), 20));
      const w = way(name);
      const own = new AbortController();
      const call = w.send("/x", { signal: own.signal }, { signal: new AbortController().signal });
      await A.nth(1);
      own.abort(new Error("own"));
      const res = await call;
      expect([res.status, await res.text()]).toEqual([200, "late"]);
    },
  );

  /** The chain, hedge and degraded ways, given a `Request` (with its own signal) instead of a URL. */
  const onLayer = (name: "chain" | "hedge" | "degraded", body: boolean) => (signal: AbortSignal) =>
    way(name).layer.fetch(new Request(`${A.base}/hang`, body ? { method: "PUT", body: "p", signal } : { signal }));
  const cases: Array<[string, (signal: AbortSignal) => Promise<Response>]> = [
    ["request", (signal) => way("request").send("/hang", { signal })],
    ["requestBody", (signal) => way("requestBody").send("/hang", { signal })],
    ["chain", onLayer("chain", false)],
    ["chain with body", onLayer("chain", true)],
    ["hedge", onLayer("hedge", false)],
    ["hedge with body", onLayer("hedge", true)],
    ["degraded with body", onLayer("degraded", true)],
    [
      "ky",
      (signal) => {
        const api = createClient({ resilience: { retry: false }, throwHttpErrors: false });
        return api(new Request(`${A.base}/hang`, { signal })) as unknown as Promise<Response>;
      },
    ],
  ];
  it.each(cases)(
    "%s: with no init.signal, the Request's own signal aborting mid-call rejects with its reason",
    async (_, send) => {
      serveA();
      const own = new AbortController();
      const call = send(own.signal);
      const hit = await A.nth(1);
      const reason = new Error("caller left");
      own.abort(reason);
      expect(await rejection(call)).toBe(reason);
      await hit.closed;
      expect(B.hits).toHaveLength(0);
    },
  );
});

describe("ky: the layer is the client's, not a call's", () => {
  it("a per-call resilience is a ConfigError before anything is sent; a misspelt one too (passed on silently until the sixty-third session)", async () => {
    serveA();
    const api = createClient({ resilience: { retry: false } });
    const error = (() => {
      try {
        api.get(`${A.base}/x`, { resilience: { retry: { maxAttempts: 9 } } } as never);
      } catch (e) {
        return e;
      }
      return undefined;
    })() as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.path).toBe("resilience");
    expect(A.hits).toHaveLength(0);
    // First seen docs-silent: `resilence` (refused by `createClient`) was taken per call; options.md now says a
    // call refuses it too.
    expect(() => createClient({ resilence: {} } as never)).toThrow(ConfigError);
    expect(() => api.get(`${A.base}/x`, { resilence: { retry: false } } as never)).toThrow(ConfigError);
    expect(A.hits).toHaveLength(0);
  });
});
