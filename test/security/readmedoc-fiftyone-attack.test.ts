/**
 * Outside-in attack on README.md read top to bottom as a newcomer's first hour: every sentence a promise, driven
 * from outside against real servers on 127.0.0.1 on every path it applies to.
 *
 * Docs (README.md, quoted):
 * - "A drop-in `fetch` … retries with backoff and a retry budget, a circuit breaker per host, fallback to other
 *   providers, and graceful degradation of the parameters you send"; "This library retries what is safe to retry
 *   …, honours the server's `Retry-After`, stops calling a host whose breaker is open …, and never buffers your
 *   streamed responses."
 * - The front-end quick start, run with its options as written (`retry: { maxAttempts: 4, initialDelay: 500 }`,
 *   `timeout: { attempt: 30_000, total: 120_000 }`, the chain `images` of `primary` and `backup`
 *   (`expectedQuality: 0.8`), a keyless JSON POST `{ prompt, steps: 50, resolution: "1080p" }`):
 *   `getResilienceInfo(res); // { attempts, endpoint, fromFallback, degradationLevel, … }` and its catch: "No
 *   response at all: every endpoint failed, was skipped by its open breaker, or timed out, or the chain stopped
 *   where this POST may have been processed (with no Idempotency-Key, a dropped connection does not move on to the
 *   backup: set `retry: { idempotencyKey: true }` if your API honours the header, and a job that moved on may then
 *   run at both providers)", with `isResilienceError(error)`.
 * - "`resilience.fetch` … resolves with a response, even a 503, as `fetch` would, whenever it has one to give (the
 *   last attempt's, or in a chain the last answer any endpoint gave, …), and rejects when it has none, or when the
 *   call is aborted or its `timeout.total` passes."
 * - "Upgrading from 0.1: wrap the 0.1 `fallback` array and `degradation` object in `fallback([…])` and
 *   `degradation({…})` from their entries (the old shapes are a `ConfigError` that says so), … rename
 *   `sensitiveHeaders` to `crossOriginHeaders` (listing what may cross, the opposite sense), and note the breaker's
 *   new defaults: `failureThreshold` counts failures in a row (12), beside a 50% failure-rate rule."
 * - The Worker quick start: "a proxy with a fallback chain, breaker state shared between isolates through KV, and a
 *   health endpoint" (two isolates, each with the README's `proxy ??= resilientProxy<Env>(…)`, one KV).
 * - The entries table: root "`createResilience`: retry (jitter, `Retry-After`, idempotency keys, budget), per-host
 *   breakers …, events, `health()` …; `getResilienceInfo`, `memoryStore`, the errors".
 * - The demo section (`npm run demo`, run once by hand in this worktree, not by this file): "plays the same
 *   scripted day … through plain `fetch` (one request, a 6 s timeout) and through the library, side by side",
 *   "`--seconds N` (5 to 600), `--seed N` (an integer) … a bad one is refused in one line".
 *
 * How: `createResilience`, `getResilienceInfo`, `isResilienceError`, `isConfigError`, `isFallbackExhaustedError`,
 * `isCircuitOpenError`, `isTimeoutError` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky), `resilientProxy`, `kvStore` (./cloudflare, run in Node as a plain handler with a stub
 * `ctx` whose `waitUntil` promises the test settles), `TestClock` (./testing) wrapped in a clock of this file's
 * that lists the delays armed, so the test advances by exactly a backoff once it is armed (never a 30 s attempt,
 * 60 s hedge or 120 s total timer while a request is out); node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts).
 *
 * Paths: plain call, `Request` input, fallback chain, hedged chain, followed redirect (307 to another origin),
 * degradation rewrite (level `low`), `resilientProxy` (upstream route and chain route), ky client (`createClient`
 * over a layer).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none. Every README sentence driven here held.
 *
 * Held (plain `it`):
 * - The quick start as written, primary answering 503 four times: the primary gets exactly 4 requests, the backup
 *   1, and the call resolves 200 with `{ attempts: 5, endpoint: "backup", fromFallback: true }` (the level `low`
 *   on the degraded chain, whose both bodies are rewritten to `steps: 20`, `resolution: "720p"`), on a chain, a
 *   hedged chain, a `Request`, a degraded chain, the ky client and a proxy chain route (`x-resilience-endpoint:
 *   backup`, `x-resilience-attempts: 5`).
 * - Its catch: a keyless POST whose connection drops at the primary rejects with a `FallbackExhaustedError` that
 *   `isResilienceError` accepts, one request sent, nothing to the backup (the proxy: 502); with
 *   `retry: { idempotencyKey: true }` the primary gets 4 attempts under one key and the backup that same key (the
 *   job reached both). A primary that hangs: after `timeout.attempt` (30 s on the clock) the keyless call rejects,
 *   `errors.primary` a `TimeoutError` of phase `attempt`, the backup untouched (the proxy: 504 "upstream timed
 *   out"). Both breakers open: the next call rejects at once with `CircuitOpenError`s per endpoint and nothing
 *   sent (proxy: 503 with `Retry-After`).
 * - "even a 503 … the last attempt's": defaults, a 503-only host: 3 requests and the 503 itself on the plain call,
 *   `Request`, degraded call and ky; through a 307 the POST is not sent again (1 request, the 503 kept); the proxy
 *   passes the 503 on with `x-resilience-attempts: 3`.
 * - `Retry-After: 2` then `3` then 200: requests at exactly 0, 2000 and 5000 ms on the clock on all eight paths,
 *   `retry` events `{ attempt, delay: 2000/3000, reason: "status 503"/"status 429", retryAfter: true }` and a
 *   `request` event `{ status: 200, attempts: 3, durationMs: 5000 }`.
 * - Streamed answers are not buffered: a chunk written before the server waits for the test reaches the caller
 *   first, on all eight paths and a proxy chain route.
 * - 0.1 migration: the 0.1 `fallback` array and `degradation` object are a `ConfigError` naming `fallback(…)` /
 *   `degradation(…)` and their import path, at `fallback` / `degradation` (`resilience.…` through `createClient`
 *   and `resilientProxy`, where a chain in `resilience.fallback` is refused with "a proxy's chains go in its
 *   routes"); `sensitiveHeaders` is a `ConfigError` ("unknown option"); `crossOriginHeaders: ["x-trace"]` lets
 *   `x-trace` cross while `authorization` stays home, on a chain, a hedge (that fired), a redirect, the ky client
 *   and a proxy chain route.
 * - The breaker's defaults: 503 and 200 alternating (never 12 in a row), one attempt a call: the 101st attempt (51
 *   failures of 101) opens the host, the 102nd call is refused with nothing sent, on the plain call, `Request`,
 *   redirect (counted on the first host), degraded call and ky; a chain moves on to the backup from then on;
 *   the proxy answers 503 "upstream circuit open".
 * - The Worker quick start with two isolates sharing a KV: the first opens `premium` (4 calls of 3 attempts), the
 *   second's first call reaches `premium` once and then goes on what KV said (its retry refused), its next calls
 *   skip `premium` with nothing sent, served by `standard` with its `Bearer` key; the upstream route answers 503
 *   "upstream circuit open"; the health endpoint (no token set) answers `unhealthy`.
 *
 * Docs-silent (not pinned):
 * - The ky client with a caller's signal of the right shape that is not the platform's own (a polyfill's): ky 2
 *   hands it to Node's `AbortSignal.any`, which takes it without a word and never follows it, so an abort neither
 *   ends the call nor a body read (both hang), where `resilience.fetch` follows such a signal (its reason,
 *   at once, one listener per signal). docs/retry.md says the layer follows such signals, and says nothing of ky.
 * - A 0.1 `sensitiveHeaders` is refused as `unknown option "sensitiveHeaders"` (path `options`, or `resilience`
 *   through ky and the proxy), without naming `crossOriginHeaders`, unlike the 0.1 chain and degradation shapes,
 *   whose error says what to do. (Since the fifty-first session it names `crossOriginHeaders`; asserted.)
 * - A chain's `fallback` event names a network failure raw (`reason: "TypeError: fetch failed"`) where the `retry`
 *   events of the same attempts say `connection refused`, and a status plainly (`status 503`).
 * - A chain endpoint on a port fetch will not dial (`:9`, a "bad port") is a network error that may have been
 *   processed: after a 503 from the first endpoint, a keyless POST stops there and the call rejects instead of
 *   resolving with that 503, though nothing was sent (consistent with retry.md, which says bad ports are retried
 *   and counted like any network error, but a surprise next to "connection refused", which resolves with the 503).
 * - The demo: `--seed -3` (an integer) is refused ("argument is ambiguous", as Node's `parseArgs` reads `-3` as an
 *   option; `--seed=-3` is taken), and every refusal is two lines (the reason, then the usage), where the README
 *   said one. (The README now says both.) The one run here matched the README's table (plain fetch about 61% served, the library 100%,
 *   `standard` last at 30 steps @ 720p, the SVG written under `demo/out/`) and needed no internet.
 * - CHANGELOG.md says the commands stop "On a Node older than 22.12" while scripts/check-node.cjs (and the
 *   README) require 22.18; `engines` says `>=22`, so `npm ci` on 22.0–22.17 is not what refuses.
 */
import { describe, expect, it } from "vitest";
import { kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type Clock,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isConfigError,
  isFallbackExhaustedError,
  isResilienceError,
  isTimeoutError,
  type ResilienceInfo,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const A = httpUpstream(); // the primary (premium)
const B = httpUpstream(); // the backup (standard)
const R = httpUpstream(); // answers 307 to A
serveDuringFile(A, B, R);

const send =
  (code: number, body = "x", headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(body);
  };
const seq =
  (...handlers: Array<(hit: Hit) => void>) =>
  (hit: Hit) =>
    (handlers[hit.n - 1] ?? (handlers[handlers.length - 1] as (hit: Hit) => void))(hit);
const redirectToA = (hit: Hit) => {
  hit.res.writeHead(307, { location: `${A.base}${hit.path}` });
  hit.res.end();
};
const turn = () => new Promise((resolve) => setTimeout(resolve, 5));
const ctx = { waitUntil: (_p: Promise<unknown>) => {}, passThroughOnException: () => {} };

/**
 * A TestClock that lists the delays armed and not yet fired or cancelled, so a test advances by exactly a
 * backoff once it is armed, and never fires the long attempt, hedge or total timers while a request is out.
 */
class WatchedClock implements Clock {
  readonly inner = new TestClock();
  readonly live = new Set<{ ms: number }>();
  now(): number {
    return this.inner.now();
  }
  setTimer(callback: () => void, ms: number): () => void {
    const rec = { ms };
    this.live.add(rec);
    const cancel = this.inner.setTimer(() => {
      this.live.delete(rec);
      callback();
    }, ms);
    return () => {
      this.live.delete(rec);
      cancel();
    };
  }
  /** Waits (real turns, at most ~3 s) for a timer shorter than `below` ms, and returns its delay. */
  async armed(below = 25_000): Promise<number> {
    for (let i = 0; i < 600; i++) {
      const short = [...this.live].filter((t) => t.ms < below);
      if (short.length > 0) return Math.min(...short.map((t) => t.ms));
      await turn();
    }
    throw new Error("no short timer was armed");
  }
  /** Advances by the next short timer's delay, once armed. */
  async step(below = 25_000): Promise<number> {
    const ms = await this.armed(below);
    await this.inner.advance(ms);
    return ms;
  }
  advance(ms: number): Promise<void> {
    return this.inner.advance(ms);
  }
}

type Path = "plain" | "request" | "chain" | "hedge" | "redirect" | "degraded" | "proxy" | "ky";
const PATHS: Path[] = ["plain", "request", "chain", "hedge", "redirect", "degraded", "proxy", "ky"];

interface Outcome {
  status?: number;
  error?: unknown;
  body?: string;
  info?: ResilienceInfo | undefined;
  headers?: Headers;
}

interface Rig {
  /** One call of `init` on this path (the URL below `/v1/images`). */
  call(init: RequestInit & { method: string }, sub?: string): Promise<Response>;
  events: Array<[string, Record<string, unknown>]>;
}

const chainOf = (hedge: boolean) => ({
  name: "images",
  ...(hedge ? { hedge: { delay: 60_000 } } : {}),
  endpoints: [
    { name: "primary", url: `${A.base}/v1/images` },
    { name: "backup", url: `${B.base}/v1/images`, expectedQuality: 0.8 },
  ],
});

/**
 * The path's call. `chained`: the plain, `Request`, degraded, ky and proxy paths go down the quick start's chain
 * too (the proxy through a chain route), for the quick-start tests.
 */
function rig(path: Path, options: ResilienceOptions, chained = false): Rig {
  const events: Array<[string, Record<string, unknown>]> = [];
  if (path === "proxy") {
    const proxy = resilientProxy({
      routes: chained ? [{ path: "/v1/images", chain: chainOf(false) }] : [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: options,
    });
    return {
      events,
      call: (init, sub = "") => proxy.fetch(new Request(`http://proxy.local/v1/images${sub}`, init), {}, ctx),
    };
  }
  const withChain = chained || path === "chain" || path === "hedge";
  const degraded = degradation({});
  const layer = createResilience({
    ...options,
    ...(withChain ? { fallback: fallback([chainOf(path === "hedge")]) } : {}),
    ...(path === "degraded" ? { degradation: degraded } : {}),
  });
  if (path === "degraded") layer.degradation?.setLevel("low");
  for (const name of ["retry", "request", "fallback", "redirect"] as const) {
    layer.on(name, (event) => {
      events.push([name, { ...event }]);
    });
  }
  const api = createClient({ resilience: layer, throwHttpErrors: false });
  return {
    events,
    call: (init, sub = "") => {
      const url = `${path === "redirect" ? R.base : A.base}/v1/images${sub}`;
      if (path === "request") return layer.fetch(new Request(url, init));
      if (path === "ky")
        return api(url, { method: init.method, body: init.body as BodyInit, headers: init.headers as HeadersInit });
      return layer.fetch(url, init);
    },
  };
}

async function outcome(pending: Promise<Response>): Promise<Outcome> {
  try {
    const res = await pending;
    return { status: res.status, body: await res.text(), info: getResilienceInfo(res), headers: res.headers };
  } catch (error) {
    return { error };
  }
}

const json = (value: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});
const quickStartBody = { prompt: "a lighthouse at dusk", steps: 50, resolution: "1080p" };
const quickStart = (clock: Clock, extra: Partial<ResilienceOptions> = {}): ResilienceOptions => ({
  retry: { maxAttempts: 4, initialDelay: 500 },
  timeout: { attempt: 30_000, total: 120_000 },
  clock,
  ...extra,
});

/** The quick start's chain on the paths it applies to (the proxy through a chain route). */
const CHAIN_PATHS: Path[] = ["chain", "hedge", "request", "degraded", "ky", "proxy"];

describe("README quick start, run as written against 127.0.0.1", () => {
  it.each(CHAIN_PATHS)("primary 503 four times: 4 requests, then the backup serves (%s)", async (path) => {
    A.on(send(503, "busy"));
    B.on(send(200, '{"url":"https://cdn.example/cat.png"}', { "content-type": "application/json" }));
    const clock = new WatchedClock();
    const r = rig(path, quickStart(clock), true);
    const pending = outcome(r.call(json(quickStartBody)));
    for (let n = 1; n <= 3; n++) {
      await A.nth(n);
      const ms = await clock.step();
      expect(ms).toBeLessThanOrEqual(500 * 2 ** (n - 1)); // full jitter under the exponential cap
    }
    const out = await pending;
    expect(out.status).toBe(200);
    expect(out.body).toContain("cat.png");
    expect(A.hits.length).toBe(4); // maxAttempts counts all attempts, the first included
    expect(B.hits.length).toBe(1);
    if (path === "proxy") {
      expect(out.headers?.get("x-resilience-endpoint")).toBe("backup");
      expect(out.headers?.get("x-resilience-attempts")).toBe("5");
    } else {
      expect(out.info).toMatchObject({ attempts: 5, endpoint: "backup", fromFallback: true });
      expect(out.info?.degradationLevel).toBe(path === "degraded" ? "low" : "full");
    }
    const bodies = [...A.hits, ...B.hits].map((h) => JSON.parse(h.body) as typeof quickStartBody);
    for (const body of bodies) {
      if (path === "degraded") expect(body).toMatchObject({ steps: 20, resolution: "720p" });
      else expect(body).toEqual(quickStartBody);
    }
  });

  it.each(CHAIN_PATHS)("a keyless POST dropped by the primary does not move on to the backup (%s)", async (path) => {
    A.on((hit) => hit.req.socket.destroy());
    B.on(send(200, "ok"));
    const clock = new WatchedClock();
    const out = await outcome(rig(path, quickStart(clock), true).call(json(quickStartBody)));
    expect(A.hits.length).toBe(1);
    expect(B.hits.length).toBe(0);
    if (path === "proxy") {
      expect(out.status).toBe(502);
    } else {
      expect(out.error).toBeDefined();
      expect(isResilienceError(out.error)).toBe(true); // the quick start's catch rethrows "generation unavailable"
      expect(isFallbackExhaustedError(out.error)).toBe(true);
    }
  });

  it.each(CHAIN_PATHS)(
    "with retry.idempotencyKey the dropped job moves on, one key at both providers (%s)",
    async (path) => {
      A.on((hit) => hit.req.socket.destroy());
      B.on(send(200, "ok"));
      const clock = new WatchedClock();
      const r = rig(
        path,
        quickStart(clock, { retry: { maxAttempts: 4, initialDelay: 500, idempotencyKey: true } }),
        true,
      );
      const pending = outcome(r.call(json(quickStartBody)));
      for (let n = 1; n <= 3; n++) {
        await A.nth(n);
        await clock.step();
      }
      const out = await pending;
      expect(out.status).toBe(200);
      expect(A.hits.length).toBe(4);
      expect(B.hits.length).toBe(1);
      const keys = [...A.hits, ...B.hits].map((h) => h.headers["idempotency-key"]);
      expect(keys.every((k) => typeof k === "string" && k.length > 0)).toBe(true);
      expect(new Set(keys).size).toBe(1); // "a job that moved on may then run at both providers"
    },
  );

  it.each(CHAIN_PATHS)(
    "a primary that hangs: the keyless call times out after timeout.attempt, the backup untouched (%s)",
    async (path) => {
      A.on(() => {}); // never answers
      B.on(send(200, "ok"));
      const clock = new WatchedClock();
      const pending = outcome(rig(path, quickStart(clock), true).call(json(quickStartBody)));
      await A.nth(1);
      await clock.armed(Number.POSITIVE_INFINITY);
      await clock.advance(30_000);
      const out = await pending;
      expect(A.hits.length).toBe(1);
      expect(B.hits.length).toBe(0);
      if (path === "proxy") {
        expect(out.status).toBe(504); // "504 on a timeout"
        expect(out.body).toBe('{"error":"upstream timed out"}');
        return;
      }
      expect(isResilienceError(out.error)).toBe(true);
      expect(isFallbackExhaustedError(out.error)).toBe(true);
      const first = (out.error as { errors: Record<string, unknown> }).errors.primary;
      expect(isTimeoutError(first)).toBe(true);
      expect((first as { phase: string }).phase).toBe("attempt");
      expect(clock.now()).toBe(30_000);
      expect(A.hits.length).toBe(1);
      expect(B.hits.length).toBe(0);
    },
  );

  it.each(CHAIN_PATHS)("both endpoints skipped by their open breakers: rejected, nothing sent (%s)", async (path) => {
    A.on(send(503, "a"));
    B.on(send(503, "b"));
    const clock = new WatchedClock();
    const r = rig(path, quickStart(clock, { retry: false, breaker: { failureThreshold: 1 } }), true);
    const first = await outcome(r.call(json(quickStartBody)));
    expect(first.status).toBe(503); // in a chain the last answer any endpoint gave
    expect(first.body).toBe("b");
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
    const second = await outcome(r.call(json(quickStartBody)));
    expect([A.hits.length, B.hits.length]).toEqual([1, 1]);
    if (path === "proxy") {
      expect(second.status).toBe(503);
      expect(second.headers?.get("retry-after")).toBe("30");
    } else {
      expect(isResilienceError(second.error)).toBe(true);
      expect(isFallbackExhaustedError(second.error)).toBe(true);
      const errors = (second.error as { errors: Record<string, unknown> }).errors;
      expect(isCircuitOpenError(errors.primary)).toBe(true);
      expect(isCircuitOpenError(errors.backup)).toBe(true);
      expect(String((second.error as Error).message)).toMatch(/open/i);
    }
  });
});

describe("resolves with a response, even a 503 (the last attempt's)", () => {
  it.each(["plain", "request", "redirect", "degraded", "proxy", "ky"] as Path[])("%s", async (path) => {
    A.on(send(503, "busy"));
    R.on(redirectToA);
    const r = rig(path, { retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } });
    const out = await outcome(r.call(json(quickStartBody)));
    expect(out.status).toBe(503);
    expect(out.body).toBe("busy");
    // A keyless POST after a redirect is not sent again: the server that answered it may have done the work.
    expect(A.hits.length).toBe(path === "redirect" ? 1 : 3);
    if (path === "proxy") expect(out.headers?.get("x-resilience-attempts")).toBe("3");
    else expect(out.info?.attempts).toBe(path === "redirect" ? 1 : 3);
  });
});

describe("honours the server's Retry-After, with the events the README's table names", () => {
  it.each(PATHS)("503 Retry-After: 2, 429 Retry-After: 3, then 200 (%s)", async (path) => {
    R.on(redirectToA);
    const at: number[] = [];
    const clock = new WatchedClock();
    A.on((hit) => {
      at.push(clock.now());
      seq(send(503, "x", { "retry-after": "2" }), send(429, "x", { "retry-after": "3" }), send(200, "done"))(hit);
    });
    const r = rig(path, { clock, retry: { initialDelay: 100, jitter: "none" } });
    const pending = outcome(r.call({ method: "PUT", headers: { "content-type": "application/json" }, body: "{}" }));
    await A.nth(1);
    expect(await clock.step()).toBe(2_000);
    await A.nth(2);
    expect(await clock.step()).toBe(3_000);
    const out = await pending;
    expect(out.status).toBe(200);
    expect(out.body).toBe("done");
    expect(at).toEqual([0, 2_000, 5_000]);
    if (path === "proxy") {
      expect(out.headers?.get("x-resilience-attempts")).toBe("3");
      return;
    }
    expect(out.info).toMatchObject({ attempts: 3, durationMs: 5_000 });
    const retries = r.events.filter(([name]) => name === "retry").map(([, e]) => e);
    expect(retries).toMatchObject([
      { attempt: 1, delay: 2_000, reason: "status 503", retryAfter: true },
      { attempt: 2, delay: 3_000, reason: "status 429", retryAfter: true },
    ]);
    const requests = r.events.filter(([name]) => name === "request").map(([, e]) => e);
    expect(requests).toMatchObject([{ status: 200, attempts: 3, durationMs: 5_000, outcome: "response" }]);
  });
});

describe("never buffers your streamed responses", () => {
  it.each([...PATHS, "proxy chain" as const])("%s", async (path) => {
    R.on(redirectToA);
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    A.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/x-ndjson" });
      hit.res.write('{"a":1}\n');
      void gate.then(() => hit.res.end('{"b":2}\n'));
    });
    const r = path === "proxy chain" ? rig("proxy", {}, true) : rig(path, {});
    const res = await r.call({ method: "GET" });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read(); // arrives while the server still holds the rest back
    expect(new TextDecoder().decode(first.value)).toBe('{"a":1}\n');
    release();
    let rest = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(rest).toBe('{"b":2}\n');
  });
});

describe("Upgrading from 0.1", () => {
  const chains01 = [{ name: "images", endpoints: [{ name: "primary", url: "https://gen.example/v1/images" }] }];
  const degradation01 = { levelHeader: "x-degradation-level" };

  it("the 0.1 shapes are a ConfigError that says so, on every entry that takes layer options", () => {
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => createResilience({ fallback: chains01 } as never), "fallback", /fallback\(…\).*\/fallback/],
      [
        () => createResilience({ degradation: degradation01 } as never),
        "degradation",
        /degradation\(…\).*\/degradation/,
      ],
      [() => createClient({ resilience: { fallback: chains01 } as never }), "resilience.fallback", /fallback\(…\)/],
      [
        () => createClient({ resilience: { degradation: degradation01 } as never }),
        "resilience.degradation",
        /degradation\(…\)/,
      ],
      [
        () =>
          resilientProxy({
            routes: [{ path: "/v1", upstream: A.base }],
            resilience: { degradation: degradation01 } as never,
          }),
        "resilience.degradation",
        /degradation\(…\)/,
      ],
      [
        () =>
          resilientProxy({ routes: [{ path: "/v1", upstream: A.base }], resilience: { fallback: chains01 } as never }),
        "resilience.fallback",
        /a proxy's chains go in its routes/,
      ],
    ];
    for (const [make, path, message] of cases) {
      const error = thrown(make);
      expect(isConfigError(error)).toBe(true);
      expect((error as { path: string }).path).toBe(path);
      expect((error as Error).message).toMatch(message);
    }
  });

  it("sensitiveHeaders is refused (a ConfigError), never silently ignored", () => {
    for (const make of [
      () => createResilience({ sensitiveHeaders: ["x-api-key"] } as never),
      () => createClient({ resilience: { sensitiveHeaders: ["x-api-key"] } as never }),
      () =>
        resilientProxy({
          routes: [{ path: "/v1", upstream: A.base }],
          resilience: { sensitiveHeaders: ["x-api-key"] } as never,
        }),
    ]) {
      const error = thrown(make);
      expect(isConfigError(error)).toBe(true);
      expect((error as Error).message).toContain('unknown option "sensitiveHeaders"');
      // Added with the fix of this docs-silent finding (fifty-first session): the error names the new option.
      expect((error as Error).message).toContain('(after 0.1.0: "crossOriginHeaders", the headers that may cross)');
    }
  });

  it.each(["chain", "hedge", "redirect", "ky", "proxy"] as Path[])(
    "crossOriginHeaders lists what may cross: x-trace goes to the other origin, authorization stays (%s)",
    async (path) => {
      R.on(redirectToA);
      const clock = new WatchedClock();
      const hedged = path === "hedge";
      let answerA = () => {};
      if (hedged) {
        // The primary holds its answer until the hedge has started and been answered.
        const held = new Promise<void>((resolve) => {
          answerA = resolve;
        });
        A.on((hit) => {
          void held.then(() => send(200, "late")(hit));
        });
      } else {
        A.on(path === "redirect" ? send(200, "ok") : send(503, "busy"));
      }
      B.on(send(200, "ok"));
      const options: ResilienceOptions = { clock, retry: false, crossOriginHeaders: ["x-trace"] };
      const headers = { authorization: "Bearer sk-caller", "x-trace": "t-1", "content-type": "application/json" };
      const init = { method: "PUT", headers, body: "{}" };
      let pending: Promise<Outcome>;
      if (path === "proxy") {
        const proxy = resilientProxy({ routes: [{ path: "/v1/images", chain: chainOf(false) }], resilience: options });
        pending = outcome(proxy.fetch(new Request("http://proxy.local/v1/images", init), {}, ctx));
      } else if (path === "ky") {
        const layer = createResilience({ ...options, fallback: fallback([chainOf(false)]) });
        pending = outcome(createClient({ resilience: layer, throwHttpErrors: false }).put(`${A.base}/v1/images`, init));
      } else {
        pending = outcome(rig(path, options).call(init));
      }
      if (hedged) {
        await A.nth(1);
        await clock.advance(60_000); // the hedge's delay
        await B.nth(1);
      }
      const out = await pending;
      answerA();
      expect(out.status).toBe(200);
      const crossed = path === "redirect" ? (A.hits[0] as Hit) : (B.hits[0] as Hit);
      expect(crossed.headers["x-trace"]).toBe("t-1");
      expect(crossed.headers.authorization).toBeUndefined();
      if (path !== "redirect")
        expect(A.hits[0]?.headers.authorization).toBe("Bearer sk-caller"); // the origin addressed
      else expect(R.hits[0]?.headers.authorization).toBe("Bearer sk-caller");
    },
  );

  it.each(["plain", "request", "chain", "redirect", "degraded", "proxy", "ky"] as Path[])(
    "the breaker's defaults: 12 in a row, beside a 50%% failure rate (never 12 in a row here) (%s)",
    async (path) => {
      R.on(redirectToA);
      A.on((hit) => send(hit.n % 2 === 1 ? 503 : 200)(hit));
      B.on(send(200, "spare"));
      const clock = new WatchedClock();
      const r = rig(path, { clock, retry: false });
      const seen: Array<number | string> = [];
      for (let i = 0; i < 103; i++) {
        const out = await outcome(r.call({ method: "GET" }));
        seen.push(out.status ?? (out.error as Error).name);
      }
      expect(A.hits.length).toBe(101); // the 101st attempt, a failure, makes 51 of 101: the host opens
      if (path === "chain") {
        expect(seen.slice(101)).toEqual([200, 200]); // moved on to the spare, nothing sent to the open host
        expect(B.hits.length).toBe(51 + 2);
      } else if (path === "proxy") {
        expect(seen.slice(100)).toEqual([503, 503, 503]);
      } else {
        expect(seen.slice(99)).toEqual([200, 503, "CircuitOpenError", "CircuitOpenError"]);
      }
    },
  );
});

describe("the Worker quick start: breaker state shared between isolates through KV", () => {
  it("the second isolate skips the premium provider the first one opened", async () => {
    A.on(send(503, "down"));
    B.on((hit) => send(200, JSON.stringify({ auth: hit.headers.authorization ?? null }))(hit));
    const kv = new Map<string, { value: string; metadata: unknown }>();
    const namespace = {
      getWithMetadata: async (key: string) => ({
        value: kv.get(key)?.value ?? null,
        metadata: (kv.get(key)?.metadata ?? null) as never,
      }),
      put: async (key: string, value: string, options?: { metadata?: unknown }) => {
        kv.set(key, { value, metadata: options?.metadata });
      },
    };
    interface Env {
      BREAKERS: typeof namespace;
      STANDARD_KEY: string;
    }
    const isolate = () => {
      let proxy: ReturnType<typeof resilientProxy<Env>> | undefined;
      const background: Array<Promise<unknown>> = [];
      const context = { waitUntil: (p: Promise<unknown>) => void background.push(p), passThroughOnException() {} };
      const env: Env = { BREAKERS: namespace, STANDARD_KEY: "sk-standard" };
      return {
        async fetch(path: string, init?: RequestInit): Promise<Response> {
          proxy ??= resilientProxy<Env>({
            routes: [
              {
                path: "/v1/video",
                chain: {
                  name: "video",
                  endpoints: [
                    { name: "premium", url: `${A.base}/v1/video` },
                    {
                      name: "standard",
                      url: `${B.base}/v2/video`,
                      headers: { authorization: `Bearer ${env.STANDARD_KEY}` },
                    },
                  ],
                },
              },
              { path: "/v1/text", upstream: `${A.base}/v1` },
            ],
            store: (e) => kvStore(e.BREAKERS),
            resilience: { retry: { initialDelay: 1, maxDelay: 2, jitter: "none" } },
          });
          return proxy.fetch(new Request(`http://worker.local${path}`, init), env, context);
        },
        async settle() {
          await Promise.allSettled(background.splice(0));
        },
      };
    };
    const one = isolate();
    const two = isolate();
    const job = () => ({ method: "POST", body: '{"prompt":"waves"}' });
    for (let i = 0; i < 4; i++) {
      const res = await one.fetch("/v1/video/jobs", job());
      expect(res.headers.get("x-resilience-endpoint")).toBe("standard");
      await res.text();
      await one.settle();
    }
    expect(A.hits.length).toBe(12); // 4 calls of 3 attempts: 12 in a row opened premium in the first isolate
    const first = await two.fetch("/v1/video/jobs", job());
    expect(await first.json()).toEqual({ auth: "Bearer sk-standard" });
    await two.settle();
    expect(A.hits.length).toBeLessThanOrEqual(13); // at most the call it started before its first KV read
    const before = A.hits.length;
    for (let i = 0; i < 2; i++) {
      const res = await two.fetch("/v1/video/jobs", job());
      expect(res.status).toBe(200);
      expect(res.headers.get("x-resilience-endpoint")).toBe("standard");
      expect(res.headers.get("x-resilience-attempts")).toBe("1");
      await res.text();
      await two.settle();
    }
    const text = await two.fetch("/v1/text/x");
    expect(text.status).toBe(503);
    expect(await text.json()).toEqual({ error: "upstream circuit open" });
    expect(A.hits.length).toBe(before); // nothing more reached premium from the second isolate
    const health = await two.fetch("/__resilience/health");
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe("unhealthy");
    await two.settle();
  });
});

describe("the root entry holds what the table says", () => {
  it("createResilience, getResilienceInfo, memoryStore and the errors with their guards", async () => {
    const root = await import("../../src/index.ts");
    const names = Object.keys(root).sort();
    expect(names).toEqual(
      [
        "BulkheadRejectedError",
        "CircuitOpenError",
        "ConfigError",
        "FallbackExhaustedError",
        "ResilienceError",
        "RetryExhaustedError",
        "TimeoutError",
        "createResilience",
        "getResilienceInfo",
        "isBulkheadRejectedError",
        "isCircuitOpenError",
        "isConfigError",
        "isFallbackExhaustedError",
        "isResilienceError",
        "isRetryExhaustedError",
        "isTimeoutError",
        "memoryStore",
      ].sort(),
    );
    const error = await rejection(createResilience({ retry: false }).fetch("ftp://127.0.0.1/x"));
    expect(error).toBeInstanceOf(TypeError); // the caller's mistake: no error of the layer's, nothing counted
  });
});
