/**
 * Outside-in attack on today's five newest fixes (CHANGELOG.md, the top of the first `### Fixed` list): a caller's
 * abort heard as the answer comes in; a chain `respond`/`transform` throwing a function that cannot become text; the
 * Anthropic recipe installed as the global fetch; the Hono recipe's `Retry-After` on its layer's clock; and
 * docs/cloudflare.md's corrected sentence on a Durable Object's hold. Each is driven through paths its own run did
 * not take: a 200 (not a 503) when the abort comes, a hedged chain whose winner arrives as the abort fires, a
 * redirect hop, a `Request` input with its own signal, the ky client (with its own `timeout` too), `resilientProxy`
 * (a client's abort), a degradation rewrite; aborts from `breaker` and `degradation` listeners, from a chain's
 * `validate`, `transform` and `respond`, and from a `breaker.key` function.
 *
 * Docs:
 * - CHANGELOG.md (fix 1): "The call now rejects with the caller's reason, as fetch does for an abort before it
 *   resolves, is left out of every count, and the answer's body is let go (signals run)."
 * - `Resilience.fetch` JSDoc (src/http/create-resilience.ts): "Resolves with a Response (even a 503) whenever it has
 *   one to give; rejects when it has none, or on an abort or `timeout.total`."
 * - docs/retry.md: "A caller's abort is never a failure: it stops the wait or the attempt at once and rejects with
 *   `signal.reason`, as the timeouts end theirs, even when the transport ignores its signal (an answer it gives later
 *   is dropped, its body cancelled, a redirect in it not followed)."
 * - docs/health-and-events.md: "`debugInfo()` adds totals (of calls that settled with a response or an error: a call
 *   its caller aborted is left out, as it is from the error rate and the degradation triggers)"; "`request` fires
 *   once per call the layer started, when it settles (`status` or `error`, `attempts`, `durationMs`, `outcome`)".
 * - docs/fallback.md: "a run its caller aborted, or that `timeout.total` ended, is not counted, nor the endpoint it
 *   was waiting on"; hedge: "the first acceptable answer wins and the others are aborted (their upstreams see the
 *   connection closed)"; `respond`: "One that throws or rejects sent nothing, so the call moves on to the next
 *   endpoint whatever its method, as after a `transform` that fails".
 * - CHANGELOG.md (fix 2): "Such a value is now named "a thrown value that cannot be read", and the call moves on".
 * - docs/recipes.md (fix 3): "Without a `fetch` option its layer sends through the global fetch at call time (MSW's
 *   included), passing over its own layer when that is installed there (it then sends through the fetch that was
 *   global when it was made)". README.md: "A layer without a `fetch` option then sends through the fetch that was
 *   global when it was made, never through itself". docs/options.md (`fetch`): "a request handed back to a layer
 *   while a layer sends it, by a wrapper installed over it that calls it at once (MSW's patch, a bound copy), goes
 *   straight to the fetch beneath it".
 * - examples/recipes/hono-worker.ts (fix 4): "every circuit open becomes a 503 with `Retry-After` (the first
 *   breaker's `retryAt`, counted on the layer's clock)".
 * - docs/cloudflare.md (fix 5): "A local trip also holds a closed object open for the local open spell, with the
 *   isolate's reason (an open object keeps its own spell, as a breaker does not lengthen its spell for calls that
 *   failed after it opened; …)".
 *
 * How: `createResilience` (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky),
 * `resilientProxy`, `durableObjectStore`, `BreakerStateObject` (./cloudflare), `TestClock`, `recordEvents`
 * (./testing); the recipes as written (examples/recipes/anthropic.ts `overloadedAs503`, hono-worker.ts `createApp`,
 * `layerOptions`; the package name mocked to ../../src); MSW 3 `setupServer` (msw/node). Three node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts), each its own origin. A transport that wraps the platform's fetch keeps
 * every `Response` it handed the layer, to see each body let go (`bodyUsed`). Every wait is on a `TestClock`; the
 * only real timers are a few ms of polling and ky's own `timeout` (20 ms). Unhandled rejections are collected and
 * fail the test that left one.
 *
 * Paths: plain call, `Request` input (its own signal; and with `init.signal` replacing it), 307 to another port,
 * degradation rewrite (query rule, level `low`), ky client (with and without its own `timeout`), fallback chain,
 * hedged chain (winner arriving as the abort fires, a `respond` winning), `resilientProxy` (upstream route, its
 * redirect, chain route), the Hono route (chain), MSW over an installed layer, a bound copy over one, a Durable
 * Object store across three isolates.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-third session, so plain
 * `it`):
 * 1. Fix 1 ("rejects with the caller's reason, as fetch does for an abort before it resolves, is left out of every
 *    count"), the `Resilience.fetch` JSDoc ("rejects … on an abort") and docs/health-and-events.md ("a call its
 *    caller aborted is left out" of the totals and the error rate), for an abort from a `degradation` listener that
 *    the call's own answer fires (an app that cancels in-flight work when the level drops). Observed: the plain
 *    call, a `Request` input, a chain and the ky client resolve with the 503 after the abort (ky: `HTTPError` 503,
 *    not the reason), the `request` event says `outcome: "response"`, and `debugInfo()` counts one call and one
 *    failure (`errorRate` 1); the body the caller gets rejects with `AbortError` when read. Cause:
 *    src/http/resilient-fetch.ts `send` looks at the caller's signal once, after `sendWithRetries`/the chain and
 *    before `analytics.record` and `levels.observe`, and the `degradation` event fires inside `observe`, after that
 *    look and before the call settles (the `request` event and the promise come after it).
 * 2. docs/recipes.md "Without a `fetch` option its layer sends through the global fetch at call time (MSW's
 *    included), passing over its own layer when that is installed there" and README "never through itself", for
 *    `overloadedAs503()` installed as the README says (`globalThis.fetch = resilience.fetch`) with a wrapper
 *    installed over it that calls it back at once: MSW's `server.listen()` (a request with no handler, passed
 *    through), or a bound copy (`globalThis.fetch = globalThis.fetch.bind(globalThis)`). Observed: the layer runs its
 *    pipeline again on each pass and never sends (no request reaches the API; the call rejects with a
 *    `RetryExhaustedError` nested once per pass, the loop ended here by the test after 40 reads of the global
 *    fetch), where a default `createResilience()` layer under the same wrappers sends once and resolves 200 (held
 *    below). Cause: the recipe's transport passes over `resilience.fetch` only when it is the global fetch itself;
 *    the library's own guard (src/http/global-fetch.ts `own`/`found`, the shared `sending` request) covers only a
 *    layer without a `fetch` option, and the recipe's layer has one. Fixed: every layer, a `fetch` option or none,
 *    sends a request handed back to it while another layer sends it to the fetch beneath it, and the recipe's
 *    transport is a bare layer, which finds the global fetch as the library does (recipes.md rewritten to say so).
 *    Defect 1 fixed: the call's signal is looked at again once the level has taken the answer.
 *
 * Held (plain `it`):
 * - A 200 that closes a half-open breaker, heard by a `breaker` listener that aborts: the plain call, a `Request`'s own
 *   signal, a 307 to another port, a degradation rewrite, the ky client (with and without its own `timeout`), a chain
 *   and a hedged chain (the hedge's winner arriving as the abort fires, the loser's connection closed) all reject
 *   with `signal.reason` (the same object), one `request` event `aborted`, totals and `errorRate` unchanged, the
 *   chain's run and endpoints uncounted, every body the transport gave let go, no timer left on the clock. A
 *   `Request` whose own signal aborts while `init.signal` replaces it resolves with the 200, as fetch does.
 * - A chain's `validate` that aborts on a 200, a `transform` that aborts, a `respond` that aborts (after the first
 *   endpoint's 503, and as a hedge's winner while the primary hangs), a `breaker.key` that aborts on a redirect's
 *   hop or on the next endpoint: the call rejects with the reason, nothing more is sent, the run and the endpoint it
 *   waited on uncounted, every body let go, the hung primary's connection closed.
 * - ky's own `timeout` firing while a chain's `validate` reads the answer: ky's `TimeoutError`, one `request`
 *   `aborted`, nothing counted, the upstream's connection closed, no timer left.
 * - `resilientProxy`: a client's abort as the upstream's 200 arrives, on the upstream route's redirect hop (from
 *   `breaker.key`), and from a chain route's `validate`: the proxy rejects with the client's reason, the answers'
 *   bodies let go, the health path shows `errorRate` 0, no failure on the host, the chain uncounted.
 * - Fix 2 on new paths: a hedged GET whose `respond` throws a revoked Proxy of a function (the next endpoint serves,
 *   the hung primary closed, the `fallback` reason "a thrown value that cannot be read"); a keyless POST at a
 *   degraded level whose `transform` throws a function whose `toString` throws (the next endpoint gets the rewritten
 *   body); a keyless `Request` POST whose `transform` throws a function whose `Symbol.toPrimitive` throws, moving on
 *   to an endpoint that 307s to another port (the hop gets the POST and its body); every endpoint throwing such
 *   values: a readable `FallbackExhaustedError` and `recentErrors`; such a throw after the caller's abort rejects
 *   with the reason, uncounted.
 * - Fix 3's contrast: a default layer under MSW and under a bound copy sends once; the recipe's layer installed
 *   alone sends a `Request` input once.
 * - Fix 4: the Hono route through its chain, both endpoints held open by a `Retry-After` (3600 s and 7200 s) on a
 *   `TestClock`: 503 with `Retry-After: 3000` 600 s later, `1` one second before the first hold ends.
 * - Fix 5: an object open for a longer spell (another isolate's `Retry-After: 120` hold) keeps it when an isolate
 *   trips locally for 30 s: a third isolate is still refused 40 s in, nothing sent.
 *
 * Docs-silent (not pinned):
 * - A `breaker.key` that aborts the call it is asked for (a plain call's first key) rejects it with the reason and
 *   fires no `request` event (as for a signal aborted before the call), while on a chain the same abort, asked for
 *   the first endpoint's key, fires one `request` event `aborted`.
 * - The Hono route rethrows a client's abort (not a `ResilienceError`), which Hono turns into its own 500 and logs:
 *   a client that hangs up is logged as an error.
 * - After a `degradation`-listener abort the caller's 503 body rejects with `AbortError` when read (the transport
 *   had the caller's signal): the answer handed over cannot be used (part of defect 1's observation).
 */
import type { ServerResponse } from "node:http";
import { setupServer } from "msw/node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { overloadedAs503 } from "../../examples/recipes/anthropic.ts";
import { createApp, type Env, layerOptions } from "../../examples/recipes/hono-worker.ts";
import { BreakerStateObject, durableObjectStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type Resilience, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { failOnUnhandledRejections } from "../helpers/unhandled.ts";

vi.mock("@storycore/resilient-fetch", () => import("../../src/index.ts"));
vi.mock("@storycore/resilient-fetch/cloudflare", () => import("../../src/cloudflare/index.ts"));
vi.mock("@storycore/resilient-fetch/fallback", () => import("../../src/fallback/index.ts"));

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** Every `Response` the capturing transport handed a layer in this test. */
const given: Response[] = [];
/** A transport over the platform's fetch that keeps each answer, to see its body let go. */
const capture: Fetch = (input, init) =>
  fetch(input, init).then((res) => {
    given.push(res);
    return res;
  });

/** Exchanges a test held open: answered after it. */
const held: Hit[] = [];
// Every rejection left unhandled fails the test that left it.
failOnUnhandledRejections();
afterEach(async () => {
  for (const hit of held.splice(0)) if (!hit.res.writableEnded) hit.res.end("late");
  given.length = 0;
});

function answer(status: number, headers: Record<string, string> = {}) {
  return (hit: { res: ServerResponse }): void => {
    hit.res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) hit.res.setHeader(k, v);
    hit.res.end(status === 200 ? "ok" : "no");
  };
}
const jsonOk = (hit: Hit): void => {
  hit.res.writeHead(200, { "content-type": "application/json" });
  hit.res.end('{"ok":true}');
};
const hang = (hit: Hit): void => {
  held.push(hit);
};

/** Settles `promise`, firing the test clock's timers one millisecond at a time, only while one is pending. */
async function drive<T>(clock: TestClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  tracked.catch(() => {});
  for (let i = 0; i < 5_000 && !done; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (!done && clock.pending() > 0) await clock.advance(1);
  }
  return tracked;
}

/** What a call settled with: its status, or its error itself. */
async function outcomeOf(call: Promise<unknown>): Promise<{ status: number } | { error: unknown }> {
  return call.then(
    (res) => ({ status: (res as Response).status }),
    (error: unknown) => ({ error }),
  );
}

/** "closed" once the exchange's connection closed, else "open" after a few real ms. */
const closedSoon = (hit: Hit | undefined): Promise<string> =>
  Promise.race([
    (hit as Hit).closed.then(() => "closed"),
    new Promise<string>((resolve) => setTimeout(() => resolve("open"), 100)),
  ]);

/** Every body the transport handed over was read or cancelled (none left holding its connection). */
async function bodiesLetGo(): Promise<boolean[]> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return given.map((res) => res.bodyUsed);
}

/** A plain Standard Schema whose `validate` runs `run` and accepts. */
const schema = (run: () => void) => ({
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (value: unknown) => {
      run();
      return { value };
    },
  },
});

/** Functions that cannot become text. */
function revokedFunction(): () => void {
  const { proxy, revoke } = Proxy.revocable(() => {}, {});
  revoke();
  return proxy;
}
const toStringThrows = (): (() => void) =>
  Object.assign(() => {}, {
    toString() {
      throw new Error("no text");
    },
  });
const toPrimitiveThrows = (): (() => void) =>
  Object.assign(() => {}, {
    [Symbol.toPrimitive]() {
      throw new Error("no primitive");
    },
  });

// ---------------------------------------------------------------------------------------------------------------
// Defect 1: an abort from a `degradation` listener, fired by the call's own answer.

type DegPath = "plain" | "request" | "chain" | "ky";

async function abortedByDegradationListener(path: DegPath) {
  const clock = new TestClock();
  const layer = createResilience({
    clock,
    fetch: capture,
    retry: { ...fast, maxAttempts: 1 },
    fallback: fallback([{ name: "gen", endpoints: [{ name: "p", url: `${a.base}/c` }] }]),
    degradation: degradation({ minSamples: 1, triggers: { errorRate: 0.5, cpuUsage: 1, memoryUsage: 1 } }),
  });
  const controller = new AbortController();
  const reason = new Error("the app cancels in-flight work when the level drops");
  layer.on("degradation", () => controller.abort(reason));
  const recorder = recordEvents(layer);
  a.on(answer(503));
  const { signal } = controller;
  let call: Promise<unknown>;
  if (path === "plain") call = layer.fetch(`${a.base}/x`, { signal });
  else if (path === "request") call = layer.fetch(new Request(`${a.base}/x`, { signal }));
  else if (path === "chain") call = layer.fetch(`${a.base}/c/x`, { signal });
  else call = createClient({ resilience: layer }).get(`${a.base}/x`, { signal });
  const outcome = await outcomeOf(drive(clock, call));
  return {
    reason,
    aborted: signal.aborted,
    outcome,
    levels: recorder.of("degradation").map((e) => e.to),
    requests: recorder.of("request").map((e) => e.outcome),
    totals: layer.debugInfo().totals,
    errorRate: layer.health().errorRate,
  };
}

describe("defect 1: an abort from a `degradation` listener, as the call's own 503 drops the level", () => {
  it("1a. plain call: rejects with signal.reason, `request` outcome aborted", async () => {
    // Observed: resolves with the 503 (its body rejects with AbortError when read), `request` outcome "response".
    const seen = await abortedByDegradationListener("plain");
    expect([seen.aborted, seen.levels]).toEqual([true, ["high"]]);
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect(seen.requests).toEqual(["aborted"]);
  });

  it("1b. `Request` input (its own signal): rejects with signal.reason", async () => {
    const seen = await abortedByDegradationListener("request");
    expect(seen.aborted).toBe(true);
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect(seen.requests).toEqual(["aborted"]);
  });

  it("1c. fallback chain: rejects with signal.reason", async () => {
    const seen = await abortedByDegradationListener("chain");
    expect(seen.aborted).toBe(true);
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect(seen.requests).toEqual(["aborted"]);
  });

  it("1d. ky client: the caller's reason reaches it, not HTTPError 503", async () => {
    // Observed: ky throws HTTPError (the layer resolved with the 503).
    const seen = await abortedByDegradationListener("ky");
    expect(seen.aborted).toBe(true);
    expect(seen.outcome).toEqual({ error: seen.reason });
  });

  it("1e. the aborted call is left out of debugInfo() totals and the error rate", async () => {
    // Observed: totals { calls: 1, failures: 1 }, errorRate 1.
    const seen = await abortedByDegradationListener("plain");
    expect(seen.aborted).toBe(true);
    expect(seen.totals).toEqual({ calls: 0, failures: 0 });
    expect(seen.errorRate).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Defect 2: the Anthropic recipe's layer installed, with a wrapper installed over it that calls it back at once.

/**
 * Makes `make()`'s layer, installs it as README says, lets `over` install a wrapper over it, and sends one POST
 * through the global fetch; the global fetch is read through a getter that hands the wrapper out 40 times, then a
 * fetch that rejects, so a layer that loops through it ends.
 */
async function throughWrapper(make: () => Resilience, over: "msw" | "bound") {
  const original = Object.getOwnPropertyDescriptor(globalThis, "fetch") as PropertyDescriptor;
  const server = setupServer();
  a.on(answer(200));
  let reads = 0;
  try {
    const layer = make();
    globalThis.fetch = layer.fetch;
    if (over === "msw") server.listen({ onUnhandledFrame: "bypass" });
    else globalThis.fetch = globalThis.fetch.bind(globalThis);
    const wrapper = globalThis.fetch;
    const stop: Fetch = () => Promise.reject(new Error("the test ended a loop through the global fetch"));
    Object.defineProperty(globalThis, "fetch", {
      configurable: true,
      enumerable: true,
      get: () => (++reads > 40 ? stop : wrapper),
      set() {},
    });
    const clock = new TestClock();
    const outcome = await outcomeOf(drive(clock, wrapper(`${a.base}/v1/messages`, { method: "POST", body: "{}" })));
    return { outcome: "status" in outcome ? outcome.status : (outcome.error as Error).name, sent: a.hits.length };
  } finally {
    if (over === "msw") server.close();
    Object.defineProperty(globalThis, "fetch", original);
  }
}

const recipeLayer = () => overloadedAs503({ clock: new TestClock(), retry: false }).resilience;
const defaultLayer = () => createResilience({ clock: new TestClock(), retry: false });

describe("defect 2: the Anthropic recipe's layer under a wrapper installed over it", () => {
  it("2a. MSW's server.listen() over the installed layer (a request it passes through): one request, 200", async () => {
    // Observed: { outcome: "RetryExhaustedError", sent: 0 } (the layer ran its pipeline on every pass).
    expect(await throughWrapper(recipeLayer, "msw")).toEqual({ outcome: 200, sent: 1 });
  });

  it("2b. a bound copy over the installed layer: one request, 200", async () => {
    expect(await throughWrapper(recipeLayer, "bound")).toEqual({ outcome: 200, sent: 1 });
  });

  it("held: a default layer under the same MSW patch and the same bound copy sends once", async () => {
    expect(await throughWrapper(defaultLayer, "msw")).toEqual({ outcome: 200, sent: 1 });
    a.reset();
    expect(await throughWrapper(defaultLayer, "bound")).toEqual({ outcome: 200, sent: 1 });
  });

  it("held: the recipe's layer installed alone sends a `Request` input through sdkFetch once", async () => {
    const original = Object.getOwnPropertyDescriptor(globalThis, "fetch") as PropertyDescriptor;
    a.on(answer(200));
    try {
      const { resilience, sdkFetch } = overloadedAs503({ clock: new TestClock(), retry: false });
      globalThis.fetch = resilience.fetch;
      const res = await sdkFetch(new Request(`${a.base}/v1/messages`, { method: "POST", body: "{}" }));
      expect([res.status, await res.text(), a.hits.length, a.hits[0]?.body]).toEqual([200, "ok", 1, "{}"]);
    } finally {
      Object.defineProperty(globalThis, "fetch", original);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Held: a 200 closing a half-open breaker, heard by a `breaker` listener that aborts the caller.

type ClosePath = "plain" | "request" | "redirect" | "degraded" | "ky" | "kyTimeout" | "chain" | "hedge";

async function abortedOnClose(path: ClosePath) {
  const clock = new TestClock();
  const layer = createResilience({
    clock,
    fetch: capture,
    retry: { ...fast, maxAttempts: 1 },
    breaker: { failureThreshold: 1, timeout: 1_000, successThreshold: 1 },
    fallback: fallback([
      { name: "gen", endpoints: [{ name: "p", url: `${a.base}/c` }] },
      {
        name: "hed",
        hedge: { delay: 50 },
        endpoints: [
          { name: "hp", url: `${b.base}/h` },
          { name: "hs", url: `${a.base}/h` },
        ],
      },
    ]),
    degradation: degradation({
      triggers: { cpuUsage: 1, memoryUsage: 1 },
      rules: [{ params: { quality: { query: "q" } } }],
    }),
  });
  // The host's breaker opens on a 503, then goes half-open.
  a.on(answer(503));
  await drive(
    clock,
    layer.fetch(`${a.base}/trip`).then((res) => res.text()),
  );
  await clock.advance(1_000);
  const before = { totals: layer.debugInfo().totals, errorRate: layer.health().errorRate };
  given.length = 0;
  a.on((hit) =>
    path === "redirect" && hit.path.startsWith("/x") ? answer(307, { location: `${c.base}/t` })(hit) : jsonOk(hit),
  );
  c.on(jsonOk);
  b.on(hang);
  const controller = new AbortController();
  const reason = new Error("the app cancels what is in flight when a breaker moves");
  layer.on("breaker", (event) => {
    if (event.to === "closed") controller.abort(reason);
  });
  const recorder = recordEvents(layer);
  if (path === "degraded") layer.degradation.setLevel("low");
  const { signal } = controller;
  const url = path === "chain" ? `${a.base}/c/x` : path === "hedge" ? `${b.base}/h/x` : `${a.base}/x`;
  let call: Promise<unknown>;
  if (path === "request") call = layer.fetch(new Request(url, { signal }));
  else if (path === "ky") call = createClient({ resilience: layer }).get(url, { signal });
  else if (path === "kyTimeout") call = createClient({ resilience: layer, timeout: 5_000 }).get(url, { signal });
  else call = layer.fetch(path === "degraded" ? `${url}?q=100` : url, { signal });
  const outcome = await outcomeOf(drive(clock, call));
  return {
    reason,
    outcome,
    closes: recorder.of("breaker").filter((e) => e.to === "closed").length,
    requests: recorder.of("request").map((e) => e.outcome),
    before,
    after: { totals: layer.debugInfo().totals, errorRate: layer.health().errorRate },
    chains: layer.health().fallback,
    bodies: await bodiesLetGo(),
    pending: clock.pending(),
  };
}

function expectLeftOut(seen: Awaited<ReturnType<typeof abortedOnClose>>): void {
  expect(seen.closes).toBe(1);
  expect(seen.outcome).toEqual({ error: seen.reason });
  expect(seen.requests).toEqual(["aborted"]);
  expect(seen.after).toEqual(seen.before);
  expect(seen.bodies.length).toBeGreaterThan(0);
  expect(seen.bodies.every(Boolean)).toBe(true);
  expect(seen.pending).toBe(0);
}

describe("held: a 200 that closes the breaker, heard by a listener that aborts the caller", () => {
  it("plain call, `Request` input (its own signal), 307 to another port, degradation rewrite: reject, uncounted", async () => {
    for (const path of ["plain", "request", "redirect", "degraded"] as const) {
      const seen = await abortedOnClose(path);
      expectLeftOut(seen);
      if (path === "redirect") expect([seen.bodies.length, c.hits.length]).toEqual([2, 1]);
      // Rewritten at `low` (the rule's query parameter), not sent as the caller wrote it.
      if (path === "degraded") expect(a.hits.at(-1)?.path).toMatch(/^\/x\?q=(?!100$)\d+$/);
      a.reset();
      c.reset();
    }
  });

  it("ky client, with and without its own `timeout`: the caller's reason, uncounted", async () => {
    for (const path of ["ky", "kyTimeout"] as const) {
      const seen = await abortedOnClose(path);
      expectLeftOut(seen);
    }
  });

  it("chain and hedged chain (the winner arrives as the abort fires): reject, run and endpoints uncounted, loser closed", async () => {
    const chain = await abortedOnClose("chain");
    expectLeftOut(chain);
    expect(chain.chains.gen?.fallbacks.p?.calls).toBe(0);
    const hedge = await abortedOnClose("hedge");
    expectLeftOut(hedge);
    expect(hedge.chains.hed?.overallSuccessRate).toBe(0);
    expect(Object.values(hedge.chains.hed?.fallbacks ?? {}).map((e) => e.calls)).toEqual([0, 0]);
    // The primary, still hanging when the hedge's 200 came, was aborted.
    expect(b.hits).toHaveLength(1);
    expect(await closedSoon(b.hits[0])).toBe("closed");
  });

  it("a `Request` whose own signal aborts while `init.signal` replaces it resolves with the 200, as fetch does", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1, timeout: 1_000, successThreshold: 1 },
    });
    a.on(answer(503));
    await drive(
      clock,
      layer.fetch(`${a.base}/trip`).then((res) => res.text()),
    );
    await clock.advance(1_000);
    a.on(answer(200));
    const own = new AbortController();
    layer.on("breaker", (event) => {
      if (event.to === "closed") own.abort();
    });
    const res = await drive(
      clock,
      layer.fetch(new Request(`${a.base}/x`, { signal: own.signal }), { signal: new AbortController().signal }),
    );
    expect([own.signal.aborted, res.status, await res.text()]).toEqual([true, 200, "ok"]);
    expect(layer.debugInfo().totals).toEqual({ calls: 2, failures: 1 });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Held: a chain's own code (and `breaker.key`) aborting as the answer comes in.

type CodePath = "validate" | "transform" | "respond" | "respondHedge" | "keyHop" | "keyNext";

async function abortedByChainCode(path: CodePath) {
  const clock = new TestClock();
  const controller = new AbortController();
  const reason = new Error("the caller left");
  const abort = () => controller.abort(reason);
  const answered: Response[] = [];
  const layer = createResilience({
    clock,
    fetch: capture,
    retry: { ...fast, maxAttempts: 1 },
    breaker: {
      key: (url: URL) => {
        if ((path === "keyHop" && url.pathname === "/hop") || (path === "keyNext" && url.port === String(b.port)))
          abort();
        return url.host;
      },
    },
    fallback: fallback([
      {
        name: "gen",
        hedge: path === "respondHedge" ? { delay: 10 } : undefined,
        endpoints: [
          {
            name: "p",
            url: `${a.base}/c`,
            validate: path === "validate" ? schema(abort) : undefined,
            transform:
              path === "transform"
                ? (request) => {
                    abort();
                    return request;
                  }
                : undefined,
          },
          path === "respond" || path === "respondHedge"
            ? {
                name: "s",
                respond: () => {
                  const res = new Response("local");
                  answered.push(res);
                  abort();
                  return res;
                },
              }
            : { name: "s", url: `${b.base}/c` },
        ],
      },
    ]),
  });
  if (path === "respondHedge") a.on(hang);
  else if (path === "respond" || path === "keyNext") a.on(answer(503));
  else if (path === "keyHop")
    a.on((hit) => (hit.path === "/hop" ? jsonOk(hit) : answer(307, { location: "/hop" })(hit)));
  else a.on(jsonOk);
  b.on(jsonOk);
  const recorder = recordEvents(layer);
  const url = path === "keyHop" ? `${a.base}/x` : `${a.base}/c/x`;
  const outcome = await outcomeOf(drive(clock, layer.fetch(url, { signal: controller.signal })));
  return {
    reason,
    outcome,
    requests: recorder.of("request").map((e) => e.outcome),
    totals: layer.debugInfo().totals,
    stats: layer.health().fallback.gen,
    bodies: await bodiesLetGo(),
    local: answered.map((res) => res.bodyUsed),
    sentA: a.hits.map((hit) => hit.path),
    sentB: b.hits.length,
    pending: clock.pending(),
  };
}

describe("held: `validate`, `transform`, `respond` and `breaker.key` aborting as the answer comes in", () => {
  it("`validate` aborting on a 200: rejects with the reason, the body let go, nothing counted, the next not sent", async () => {
    const seen = await abortedByChainCode("validate");
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect([seen.requests, seen.totals, seen.sentB, seen.pending]).toEqual([
      ["aborted"],
      { calls: 0, failures: 0 },
      0,
      0,
    ]);
    expect(seen.bodies).toEqual([true]);
    expect(seen.stats?.fallbacks.p?.calls).toBe(0);
  });

  it("`transform` aborting: nothing sent anywhere, rejects with the reason, uncounted", async () => {
    const seen = await abortedByChainCode("transform");
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect([seen.sentA, seen.sentB, seen.bodies, seen.requests, seen.totals]).toEqual([
      [],
      0,
      [],
      ["aborted"],
      { calls: 0, failures: 0 },
    ]);
  });

  it("`respond` aborting after the first endpoint's 503: rejects, its Response and the 503 let go; the run uncounted", async () => {
    const seen = await abortedByChainCode("respond");
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect([seen.local, seen.bodies, seen.requests, seen.totals]).toEqual([
      [true],
      [true],
      ["aborted"],
      { calls: 0, failures: 0 },
    ]);
    // The 503 had been judged before: counted for `p`; the run and `s` not.
    expect([seen.stats?.fallbacks.p?.calls, seen.stats?.fallbacks.s?.calls, seen.stats?.overallSuccessRate]).toEqual([
      1, 0, 0,
    ]);
  });

  it("a hedge's `respond` winning as it aborts, the primary hanging: rejects; the primary's connection closed", async () => {
    const seen = await abortedByChainCode("respondHedge");
    expect(seen.outcome).toEqual({ error: seen.reason });
    expect([seen.local, seen.requests, seen.totals, seen.pending]).toEqual([
      [true],
      ["aborted"],
      { calls: 0, failures: 0 },
      0,
    ]);
    expect(Object.values(seen.stats?.fallbacks ?? {}).map((e) => e.calls)).toEqual([0, 0]);
    expect(await closedSoon(a.hits[0])).toBe("closed");
  });

  it("`breaker.key` aborting when asked for a redirect's hop, or for the next endpoint: nothing more is sent", async () => {
    const hop = await abortedByChainCode("keyHop");
    expect(hop.outcome).toEqual({ error: hop.reason });
    expect([hop.sentA, hop.bodies, hop.requests, hop.totals]).toEqual([
      ["/x"],
      [true],
      ["aborted"],
      { calls: 0, failures: 0 },
    ]);
    a.reset();
    given.length = 0;
    const next = await abortedByChainCode("keyNext");
    expect(next.outcome).toEqual({ error: next.reason });
    expect([next.sentA, next.sentB, next.bodies, next.requests, next.totals]).toEqual([
      ["/c/x"],
      0,
      [true],
      ["aborted"],
      { calls: 0, failures: 0 },
    ]);
  });
});

describe("held: ky's own `timeout` while a chain's `validate` reads the answer", () => {
  it("ky's TimeoutError; one `request` aborted, nothing counted, the upstream's connection closed, no timer left", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/c`, validate: schema(() => {}) },
            { name: "s", url: `${b.base}/c` },
          ],
        },
      ]),
    });
    a.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"a":');
      held.push(hit);
    });
    const recorder = recordEvents(layer);
    const outcome = await outcomeOf(createClient({ resilience: layer, timeout: 20 }).get(`${a.base}/c/x`));
    expect((outcome as { error: Error }).error?.name).toBe("TimeoutError");
    expect(await closedSoon(a.hits[0])).toBe("closed");
    expect(recorder.of("request").map((e) => e.outcome)).toEqual(["aborted"]);
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
    expect(Object.values(layer.health().fallback.gen?.fallbacks ?? {}).map((e) => e.calls)).toEqual([0, 0]);
    expect([b.hits.length, clock.pending()]).toEqual([0, 0]);
  });
});

describe("held: resilientProxy, a client's abort as the answer comes in", () => {
  async function proxied(mode: "transport" | "keyHop" | "validate") {
    const clock = new TestClock();
    const client = new AbortController();
    const reason = new Error("client hung up");
    const proxy = resilientProxy({
      routes: [
        { path: "/u", upstream: `${a.base}/up` },
        {
          path: "/ch",
          chain: {
            name: "ch",
            endpoints: [
              { name: "p", url: `${a.base}/c`, validate: schema(() => client.abort(reason)) },
              { name: "s", url: `${b.base}/c` },
            ],
          },
        },
      ],
      resilience: {
        clock,
        retry: false,
        breaker: {
          key: (url: URL) => {
            if (mode === "keyHop" && url.pathname === "/hop") client.abort(reason);
            return url.host;
          },
        },
        fetch: (input, init) =>
          capture(input, init).then((res) => {
            if (mode === "transport") client.abort(reason);
            return res;
          }),
      } as ResilienceOptions,
    });
    a.on((hit) =>
      mode === "keyHop" && hit.path.startsWith("/up") ? answer(307, { location: "/hop" })(hit) : jsonOk(hit),
    );
    b.on(jsonOk);
    const request = new Request(`https://worker.example${mode === "validate" ? "/ch/x" : "/u/x"}`, {
      signal: client.signal,
    });
    const outcome = await outcomeOf(drive(clock, proxy.fetch(request, {}, ctx)));
    const bodies = await bodiesLetGo();
    const health = await (await proxy.fetch(new Request("https://worker.example/__resilience/health"), {}, ctx)).json();
    return { reason, outcome, bodies, health, sentA: a.hits.map((hit) => hit.path), sentB: b.hits.length };
  }

  it("a 200 arriving as the client aborts, a redirect hop keyed as it aborts, a chain `validate` aborting", async () => {
    for (const mode of ["transport", "keyHop", "validate"] as const) {
      const seen = await proxied(mode);
      expect(seen.outcome).toEqual({ error: seen.reason });
      expect(seen.bodies).toEqual([true]);
      expect(seen.sentA).toEqual([mode === "validate" ? "/c/x" : "/up/x"]);
      expect(seen.sentB).toBe(0);
      expect(seen.health.errorRate).toBe(0);
      expect(seen.health.breakers[a.host]).toMatchObject({ state: "closed", failureCount: 0 });
      expect(seen.health.fallback.ch.fallbacks.p.calls).toBe(0);
      a.reset();
      given.length = 0;
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fix 2 on new paths: a `respond` or `transform` throwing a function that cannot become text.

describe("held: a `respond`/`transform` throwing a function that cannot become text moves on", () => {
  it("hedged GET: a `respond` throwing a revoked Proxy of a function at the hedge delay; the third serves", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 10 },
          endpoints: [
            { name: "p", url: `${a.base}/c` },
            {
              name: "r",
              respond: () => {
                throw revokedFunction();
              },
            },
            { name: "s", url: `${b.base}/c` },
          ],
        },
      ]),
    });
    a.on(hang);
    b.on(answer(200));
    const recorder = recordEvents(layer);
    const res = await drive(clock, layer.fetch(`${a.base}/c/x`));
    expect([res.status, await res.text()]).toEqual([200, "ok"]);
    expect(recorder.of("fallback")).toContainEqual({
      chain: "gen",
      from: "r",
      reason: 'Error: fallback endpoint "r": respond(request) threw a thrown value that cannot be read',
      // The hedge already running, which the call carries on with; the next in line starts at once beside it.
      next: "p",
    });
    expect(b.hits).toHaveLength(1);
    expect(await closedSoon(a.hits[0])).toBe("closed");
    expect(layer.health().fallback.gen?.fallbacks.s?.successes).toBe(1);
  });

  it("a keyless POST at level `low`: a `transform` throwing a function whose toString throws; the next gets the rewritten body", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/c`,
              transform: () => {
                throw toStringThrows();
              },
            },
            { name: "s", url: `${b.base}/c` },
          ],
        },
      ]),
      degradation: degradation({ triggers: { cpuUsage: 1, memoryUsage: 1 } }),
    });
    layer.degradation.setLevel("low");
    b.on(answer(200));
    const res = await drive(
      clock,
      layer.fetch(`${a.base}/c/x`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "cat", steps: 50 }),
      }),
    );
    expect(res.status).toBe(200);
    expect(a.hits).toHaveLength(0);
    expect(b.hits).toHaveLength(1);
    expect(JSON.parse(b.hits[0]?.body ?? "{}").steps).toBeLessThan(50);
  });

  it("a keyless `Request` POST: a `transform` throwing a function whose Symbol.toPrimitive throws; the next 307s to another port", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/c`,
              transform: () => {
                throw toPrimitiveThrows();
              },
            },
            { name: "s", url: `${b.base}/c` },
          ],
        },
      ]),
    });
    b.on(answer(307, { location: `${c.base}/there` }));
    c.on(answer(200));
    const res = await drive(
      clock,
      layer.fetch(new Request(`${a.base}/c/x`, { method: "POST", body: '{"prompt":"cat"}' })),
    );
    expect([res.status, a.hits.length, b.hits.length]).toEqual([200, 0, 1]);
    expect([c.hits[0]?.method, c.hits[0]?.body]).toEqual(["POST", '{"prompt":"cat"}']);
  });

  it("every endpoint throwing such values: a readable FallbackExhaustedError and recentErrors", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/c`,
              transform: () => {
                throw revokedFunction();
              },
            },
            {
              name: "r",
              respond: () => Promise.reject(toStringThrows()),
            },
          ],
        },
      ]),
    });
    const outcome = await outcomeOf(drive(clock, layer.fetch(`${a.base}/c/x`, { method: "POST", body: "x" })));
    const error = (outcome as { error: Error }).error;
    expect(error.name).toBe("FallbackExhaustedError");
    expect(error.message).toContain("a thrown value that cannot be read");
    expect(a.hits).toHaveLength(0);
    expect(JSON.stringify(layer.debugInfo().recentErrors)).toContain("FallbackExhaustedError");
    expect(layer.debugInfo().totals).toEqual({ calls: 1, failures: 1 });
  });

  it("such a throw after the caller's abort rejects with the caller's reason, uncounted", async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const reason = new Error("gone");
    const layer = createResilience({
      clock,
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            {
              name: "p",
              url: `${a.base}/c`,
              transform: () => {
                controller.abort(reason);
                throw revokedFunction();
              },
            },
            { name: "s", url: `${b.base}/c` },
          ],
        },
      ]),
    });
    const recorder = recordEvents(layer);
    const outcome = await outcomeOf(drive(clock, layer.fetch(`${a.base}/c/x`, { signal: controller.signal })));
    expect(outcome).toEqual({ error: reason });
    expect([a.hits.length, b.hits.length]).toEqual([0, 0]);
    expect(recorder.of("request").map((e) => e.outcome)).toEqual(["aborted"]);
    expect(layer.debugInfo().totals).toEqual({ calls: 0, failures: 0 });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fix 4: the Hono route's Retry-After on its layer's clock, both endpoints held by a Retry-After.

describe("held: the Hono route's `Retry-After` counts down on its layer's clock", () => {
  it("both endpoints held by `Retry-After` (3600 s, 7200 s): 3000 at 600 s, 1 at 3599 s, nothing sent", async () => {
    const clock = new TestClock();
    const env: Env = { IMAGES_URL: a.base, IMAGES_KEY: "k1", SPARE_URL: b.base, SPARE_KEY: "k2" };
    const layer = createResilience({ ...layerOptions(env), clock, retry: { ...fast, maxAttempts: 1 } });
    const app = createApp(() => layer);
    a.on(answer(503, { "retry-after": "3600" }));
    b.on(answer(503, { "retry-after": "7200" }));
    const call = () =>
      drive(
        clock,
        Promise.resolve(
          app.fetch(new Request("https://worker.example/generate", { method: "POST", body: "{}" }), env, ctx as never),
        ),
      );
    const first = await call();
    expect([first.status, first.headers.get("retry-after")]).toEqual([503, "7200"]);
    await clock.advance(600_000);
    const later = await call();
    expect([later.status, later.headers.get("retry-after")]).toEqual([503, "3000"]);
    await clock.advance(2_999_000);
    const last = await call();
    expect([last.status, last.headers.get("retry-after")]).toEqual([503, "1"]);
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fix 5: an open Durable Object keeps its own (longer) spell when an isolate trips locally.

/** A Durable Object namespace whose stubs hand each request to a real `BreakerStateObject` on a Map storage. */
function memDo(clock: TestClock) {
  const objects = new Map<string, { object: BreakerStateObject; ready: Promise<unknown> }>();
  return {
    idFromName: (name: string) => ({ name }),
    get: (id: never) => {
      const { name } = id as { name: string };
      return {
        fetch: async (input: string, init?: RequestInit): Promise<Response> => {
          const request = new Request(input, init);
          let entry = objects.get(name);
          if (!entry) {
            const values = new Map<string, unknown>();
            let ready: Promise<unknown> = Promise.resolve();
            const state = {
              storage: {
                get: async <T>(key: string) => structuredClone(values.get(key)) as T | undefined,
                put: async (key: string, value: unknown) => {
                  values.set(key, structuredClone(value));
                },
                setAlarm: async () => {},
              },
              blockConcurrencyWhile: <T>(callback: () => Promise<T>): Promise<T> => {
                const run = callback();
                ready = run;
                return run;
              },
            };
            entry = { object: new BreakerStateObject(state, {}, clock), ready };
            objects.set(name, entry);
          }
          await entry.ready;
          return entry.object.fetch(request);
        },
      };
    },
  };
}

describe("held: docs/cloudflare.md, an open object keeps its own spell", () => {
  it("held open 120 s by one isolate's `Retry-After`; another's local 30 s trip does not shorten it: refused at 40 s", async () => {
    const T0 = 1_000_000;
    const clock = new TestClock(T0);
    const env = { DO: memDo(clock) };
    const tasks: Promise<unknown>[] = [];
    const context = { waitUntil: (p: Promise<unknown>) => void tasks.push(p), passThroughOnException() {} };
    const make = (failureThreshold: number) =>
      resilientProxy<typeof env>({
        routes: [{ path: "/", upstream: a.base }],
        resilience: { clock, retry: false, breaker: { failureThreshold, timeout: 30_000 } },
        store: (e) => durableObjectStore(e.DO as never, { clock }),
      });
    const ask = async (proxy: ReturnType<typeof make>) => {
      const res = await proxy.fetch(new Request(`https://worker.example/x`), env, context);
      await res.text();
      for (let i = 0; i < 3; i++) await Promise.allSettled(tasks);
      return [res.status, res.headers.get("retry-after")];
    };
    const one = make(3);
    const two = make(1);
    const three = make(3);
    a.on(answer(503, { "retry-after": "120" }));
    expect(await ask(one)).toEqual([503, "120"]); // one holds the host (and the object) until T0 + 120 s
    await clock.advance(1_000);
    a.on(answer(503));
    expect((await ask(two))[0]).toBe(503); // two's first call goes out: its own trip, open until T0 + 31 s
    expect((await ask(three))[0]).toBe(503); // three's first call goes local too; it then reads the object
    await clock.advance(39_000);
    a.on(answer(200));
    const sent = a.hits.length;
    const atForty = await ask(three);
    expect(atForty[0]).toBe(503);
    expect(Number(atForty[1])).toBeGreaterThan(70);
    expect(a.hits.length).toBe(sent);
  });
});
