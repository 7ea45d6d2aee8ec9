/**
 * Outside-in attack on README.md, "## Why" to "## Status", the sentences the fifty-first session left undriven
 * (installing the layer as the global fetch, the retry budget, an open breaker met on a redirect's hop, the bound
 * `fetch`, `timeout.total` and abort rejections) and the README's vitest + MSW code block run as pasted.
 *
 * Docs (README.md, quoted):
 * - "This library retries what is safe to retry, only as often as a retry budget allows, honours the server's
 *   `Retry-After`, stops calling a host whose breaker is open (save a hop of a redirect a browser follows itself:
 *   [redirects](docs/retry.md#redirects)), and never buffers your streamed responses."
 * - "To send every `fetch` of an app or an SDK through the layer, install it: `globalThis.fetch = resilience.fetch`
 *   … A layer without a `fetch` option then sends through the fetch that was global when it was made, never through
 *   itself (a `fetch` you pass is called as it is: one that reads the global fetch at call time reaches whatever
 *   layer is installed there), unless a wrapper installed over it calls it back after an `await` or with a URL it
 *   changes anew each time (a request id in the query): then the layer runs again on each such call and never
 *   sends, so install the layer after such a wrapper".
 * - "`resilience.fetch` is a bound `(input, init) => Promise<Response>`, so it drops into anything that takes a
 *   custom fetch (ky, SDKs, Hono). It resolves with a response, even a 503, as `fetch` would, whenever it has one
 *   to give (the last attempt's, or in a chain the last answer any endpoint gave, unless a later endpoint may have
 *   processed a request that must not go twice …), and rejects when it has none, or when the call is aborted or
 *   its `timeout.total` passes."
 * - The "In a test suite" block: "shows the image after two 503s" (3 requests, one `idempotency-key` on every
 *   attempt, `recorder.expectRetries(2)`) and "stops calling a dead API, then probes it after the breaker's
 *   timeout" (`rejects.toThrow(/open/i)`, a probe after `clock.advance(10_000)`).
 * - docs/retry.md (budget, the README's link): "Against a dead upstream, earned tokens alone (`minPerSecond: 0`)
 *   let at most 1.1 requests a call reach it"; "A caller's abort … rejects with `signal.reason`".
 *
 * How: `createResilience`, `getResilienceInfo`, the error guards (root), `fallback`, `degradation`, `createClient`
 * (./ky), `resilientProxy` (./cloudflare, a plain handler with a stub `ctx`), `TestClock`, `recordEvents`,
 * `upstream`, `sequence`, `status`, `json`, `corsPreflight` (./testing) with msw/node's `setupServer`; node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts); real backoffs of 1–2 ms where no clock is given.
 *
 * Paths: plain call, `Request` input, followed redirect (307 to another origin), fallback chain, hedged chain,
 * degradation rewrite (level `low`), `resilientProxy` (upstream route), ky client (`createClient`).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour): none found in this pass.
 *
 * Held (plain `it`):
 * - Installed as the global fetch and called as `globalThis.fetch(…)`, a layer sends exactly what it sends when not
 *   installed (same requests per server, same status, one `request` event), on the plain, `Request`, redirect,
 *   chain, hedge and degraded paths; so too under a wrapper installed over it that calls it back at once (a bound
 *   copy, or one that builds a new `Request` as MSW does).
 * - A layer, ky client or proxy made while another layer is installed sends past it (the installed layer's open
 *   breaker does not refuse them, its events stay silent).
 * - A wrapper over it that calls back after an `await`, or with a new request id each time: nothing reaches the
 *   server while the layer re-enters itself; the caller's abort ends the call with its reason.
 * - The retry budget with `minPerSecond: 0`: 20 calls one after another to a dead host, ≤ 1.1 requests a call
 *   (22), against 60 without the budget, on plain, `Request`, redirect, degraded, ky and the proxy; a chain's move to its
 *   backup is no retry (≤ 42 requests over two dead endpoints).
 * - A redirect to a host whose breaker is open: the hop is refused with nothing sent there (`CircuitOpenError`,
 *   `afterRedirect: true`), on plain, `Request`, degraded and ky (the proxy answers a 5xx); a chain and a hedged
 *   chain move on to the backup.
 * - `resilience.fetch` detached (`const { fetch } = resilience`, `Reflect.apply` with a foreign `this`) works.
 * - `timeout.total` passing rejects (a `TimeoutError` of phase `total`, at exactly 5 s on the clock) on plain,
 *   `Request`, redirect, chain, hedge, degraded and ky; the proxy answers 504. An abort rejects with the signal's
 *   reason on the same seven paths.
 * - The README's MSW block runs as written (URLs moved to 127.0.0.1, where a real server answers 418 should MSW
 *   miss a request): both its tests pass.
 *
 * Docs-silent (not pinned):
 * - Not the library's: MSW 3 (msw/node) meets a request as its socket opens, so a request on a keep-alive socket
 *   to the same origin opened before `server.listen()` (by an earlier test of the same file, any fetch) goes past
 *   MSW to the real server; the README's block meets its handlers only on an origin not dialled before.
 * - A wrapper that sets a request id to the same value each time is recognised (3 requests to a dead host, one
 *   pipeline), as docs/options.md says; not asserted here.
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isResilienceError,
  isTimeoutError,
  type Resilience,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { corsPreflight, json, recordEvents, sequence, status, TestClock, upstream } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // the primary
const B = httpUpstream(); // the backup
const R = httpUpstream(); // answers 307 to A (or to B)
// The MSW block's origin, never dialled before MSW listens: MSW 3 meets requests as their sockets open, and one
// kept alive from an earlier test of this file would carry them past it.
const M = httpUpstream();
serveDuringFile(A, B, R, M);

const send =
  (code: number, body = "x", headers: Record<string, string> = {}) =>
  (hit: Hit) => {
    hit.res.writeHead(code, headers);
    hit.res.end(body);
  };
const redirectTo = (target: { base: string }) => (hit: Hit) => {
  hit.res.writeHead(307, { location: `${target.base}${hit.path}` });
  hit.res.end();
};
const turn = () => new Promise((resolve) => setTimeout(resolve, 3));
const ctx = { waitUntil: (_p: Promise<unknown>) => {}, passThroughOnException: () => {} };
const FAST = { initialDelay: 1, maxDelay: 2, jitter: "none" } as const;

type Path = "plain" | "request" | "redirect" | "chain" | "hedge" | "degraded" | "ky" | "proxy";

const chainOf = (hedge: boolean, first: string) =>
  fallback([
    {
      name: "images",
      ...(hedge ? { hedge: { delay: 60_000 } } : {}),
      endpoints: [
        { name: "primary", url: first },
        { name: "backup", url: `${B.base}/v1/images` },
      ],
    },
  ]);

/** A layer for `path`: a chain (primary `first`, A by default) on chain and hedge, level `low` on degraded. */
function layerFor(path: Path, options: ResilienceOptions, first = `${A.base}/v1/images`): Resilience {
  const degraded = path === "degraded" ? degradation({}) : undefined;
  const layer = createResilience({
    ...options,
    ...(path === "chain" || path === "hedge" ? { fallback: chainOf(path === "hedge", first) } : {}),
    ...(degraded ? { degradation: degraded } : {}),
  });
  layer.degradation?.setLevel("low");
  return layer;
}

/** The call of `path` through `fetchImpl` (the layer's fetch, or the global one). */
function callWith(
  path: Path,
  fetchImpl: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>,
  init: RequestInit = {},
  target: { base: string } = A,
): Promise<Response> {
  const url = `${path === "redirect" ? R.base : target.base}/v1/images`;
  if (path === "request") return fetchImpl(new Request(url, init));
  return fetchImpl(url, init);
}

async function outcome(pending: Promise<Response>) {
  try {
    const res = await pending;
    return { status: res.status, body: await res.text(), info: getResilienceInfo(res), error: undefined as unknown };
  } catch (error) {
    return { status: undefined, body: undefined, info: undefined, error };
  }
}

const hits = () => [A.hits.length, B.hits.length, R.hits.length];
const clearHits = () => {
  for (const s of [A, B, R]) s.hits.length = 0;
};

/** Installs `fetch` as the global fetch for the length of `body`. */
async function installed<T>(fetch: typeof globalThis.fetch, body: () => Promise<T>): Promise<T> {
  const before = globalThis.fetch;
  globalThis.fetch = fetch;
  try {
    return await body();
  } finally {
    globalThis.fetch = before;
  }
}

const INSTALL_PATHS: Path[] = ["plain", "request", "redirect", "chain", "hedge", "degraded"];

describe("installed as the global fetch: never through itself", () => {
  const wrappers = {
    none: (layer: Resilience) => layer.fetch,
    "a bound copy over it": (layer: Resilience) => layer.fetch.bind(undefined) as typeof fetch,
    "a wrapper that builds a new Request (as MSW does)": (layer: Resilience) =>
      ((input: RequestInfo | URL, init?: RequestInit) => layer.fetch(new Request(input, init))) as typeof fetch,
  };
  for (const [wrapperName, wrap] of Object.entries(wrappers)) {
    it.each(INSTALL_PATHS)(`sends what it sends uninstalled, wrapper: ${wrapperName} (%s)`, async (path) => {
      A.on(send(503, "busy"));
      B.on(send(503, "busy-b"));
      R.on(redirectTo(A));
      const init = { method: "GET", headers: { "x-run": "1" } };
      const base = layerFor(path, { retry: FAST, breaker: false });
      const baseline = await outcome(callWith(path, base.fetch, init));
      const expected = hits();
      expect(expected[0]).toBeGreaterThan(0);
      clearHits();

      const layer = layerFor(path, { retry: FAST, breaker: false });
      const requests: unknown[] = [];
      layer.on("request", (e) => {
        requests.push(e);
      });
      const out = await installed(layer.fetch, () =>
        installed(wrap(layer), () => outcome(callWith(path, (i, n) => globalThis.fetch(i, n), init))),
      );
      expect(out.error).toBeUndefined();
      expect(out.status).toBe(baseline.status);
      expect(out.body).toBe(baseline.body);
      expect(hits()).toEqual(expected);
      expect(requests.length).toBe(1);
    });
  }

  it("a layer, a ky client and a proxy made while a layer is installed send past it", async () => {
    A.on(send(503, "down"));
    const installedLayer = createResilience({ retry: false, breaker: { failureThreshold: 1 } });
    await (await installedLayer.fetch(`${A.base}/v1/images`)).text(); // opens A in the installed layer
    expect(isCircuitOpenError(await rejection(installedLayer.fetch(`${A.base}/v1/images`)))).toBe(true);
    const seen: string[] = [];
    for (const name of ["request", "retry", "breaker"] as const) installedLayer.on(name, () => seen.push(name));
    A.on(send(200, "fresh"));
    clearHits();
    await installed(installedLayer.fetch, async () => {
      const other = createResilience({ retry: FAST });
      expect(await (await other.fetch(`${A.base}/v1/images`)).text()).toBe("fresh");
      const api = createClient({ resilience: { retry: FAST } });
      expect(await api(`${A.base}/v1/images`).text()).toBe("fresh");
      const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${A.base}/v1` }] });
      const res = await proxy.fetch(new Request("http://proxy.local/v1/images"), {}, ctx);
      expect(await res.text()).toBe("fresh");
    });
    expect(A.hits.length).toBe(3);
    expect(seen).toEqual([]);
  });

  const reentering = {
    "calls it back after an await": (layer: Resilience) => async (input: RequestInfo | URL, init?: RequestInit) => {
      await Promise.resolve();
      return layer.fetch(input, init);
    },
    "adds a new request id each time": (layer: Resilience) => {
      let id = 0;
      return (input: RequestInfo | URL, init?: RequestInit) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        url.searchParams.set("rid", String(++id));
        return layer.fetch(url, init);
      };
    },
  };
  for (const [name, make] of Object.entries(reentering)) {
    it(`a wrapper over it that ${name}: the layer never sends (the caller's abort ends it)`, async () => {
      A.on(send(200, "ok"));
      const layer = createResilience({ retry: false });
      let calls = 0;
      const inner = make(layer);
      const wrapper = ((input: RequestInfo | URL, init?: RequestInit) => {
        calls++;
        // A guard of this test's own: past 200 re-entries, an answer that never comes (until the abort), so
        // no layer level retries a failure of the guard's.
        if (calls > 200)
          return new Promise<Response>((_, reject) =>
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true }),
          );
        return inner(input, init);
      }) as typeof fetch;
      const controller = new AbortController();
      const reason = new Error("caller gave up");
      const before = globalThis.fetch;
      let call: Promise<Response>;
      try {
        globalThis.fetch = layer.fetch;
        globalThis.fetch = wrapper; // installed over the layer, which stays installed for the call's length
        call = globalThis.fetch(`${A.base}/v1/images`, { signal: controller.signal });
        call.catch(() => {});
        for (let i = 0; i < 5; i++) await turn();
      } catch (error) {
        globalThis.fetch = before;
        throw error;
      }
      try {
        expect(calls).toBeGreaterThan(2); // the layer ran again on each such call
        expect(A.hits.length).toBe(0); // and never sent
      } finally {
        controller.abort(reason);
        await call.catch(() => {});
        globalThis.fetch = before;
      }
      expect(await rejection(call)).toBe(reason);
    });
  }
});

describe("only as often as a retry budget allows (minPerSecond: 0)", () => {
  it.each(["plain", "request", "redirect", "degraded", "ky", "chain", "proxy"] as Path[])(
    "20 calls to a dead host one after another (%s)",
    async (path) => {
      A.on(send(503, "down"));
      B.on(send(503, "down-b"));
      R.on(redirectTo(A));
      const run = async (budget: boolean) => {
        clearHits();
        const options = {
          retry: FAST,
          breaker: false,
          budget: budget ? { ratio: 0.1, minPerSecond: 0 } : false,
        } as ResilienceOptions;
        const proxy = resilientProxy({ routes: [{ path: "/v1", upstream: `${A.base}/v1` }], resilience: options });
        const layer = layerFor(path, options);
        const api = createClient({ resilience: layer, throwHttpErrors: false });
        for (let i = 0; i < 20; i++) {
          const res = await (path === "ky"
            ? api(`${A.base}/v1/images`)
            : path === "proxy"
              ? proxy.fetch(new Request("http://proxy.local/v1/images"), {}, ctx)
              : callWith(path, layer.fetch));
          expect(res.status).toBe(503);
          await res.text();
        }
        return A.hits.length + B.hits.length;
      };
      const withBudget = await run(true);
      const endpoints = path === "chain" ? 2 : 1;
      expect(withBudget).toBeLessThanOrEqual(20 * endpoints + 2); // "at most 1.1 requests a call"
      expect(withBudget).toBeGreaterThanOrEqual(20 * endpoints);
      expect(await run(false)).toBe(60 * endpoints); // the budget is what held it back
    },
  );
});

describe("stops calling a host whose breaker is open, on a redirect's hop too", () => {
  it.each(["plain", "request", "degraded", "ky", "chain", "hedge"] as Path[])("(%s)", async (path) => {
    B.on(send(503, "b down"));
    R.on(redirectTo(B));
    A.on(send(200, "backup served"));
    // The chain's primary is R (whose hop goes to B); its backup is… B too in chainOf, so put A there instead.
    const layer =
      path === "chain" || path === "hedge"
        ? createResilience({
            retry: false,
            breaker: { failureThreshold: 1 },
            fallback: fallback([
              {
                name: "images",
                ...(path === "hedge" ? { hedge: { delay: 60_000 } } : {}),
                endpoints: [
                  { name: "primary", url: `${R.base}/v1/images` },
                  { name: "backup", url: `${A.base}/v1/images` },
                ],
              },
            ]),
          })
        : layerFor(path, { retry: false, breaker: { failureThreshold: 1 } });
    await (await layer.fetch(`${B.base}/v1/images`)).text(); // opens B
    clearHits();
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    const url = `${R.base}/v1/images`;
    const pending =
      path === "ky" ? api(url).then((r) => r) : path === "request" ? layer.fetch(new Request(url)) : layer.fetch(url);
    const out = await outcome(pending);
    expect(B.hits.length).toBe(0); // nothing sent to the open host
    expect(R.hits.length).toBe(1);
    if (path === "chain" || path === "hedge") {
      expect(out.status).toBe(200);
      expect(out.body).toBe("backup served");
      expect(out.info?.endpoint).toBe("backup");
      return;
    }
    expect(isCircuitOpenError(out.error)).toBe(true);
    expect((out.error as { afterRedirect: boolean }).afterRedirect).toBe(true);
  });
});

describe("a redirect's hop to an open host, through the proxy", () => {
  it("the hop is refused, nothing sent to the open host", async () => {
    B.on(send(503, "b down"));
    R.on(redirectTo(B));
    const proxy = resilientProxy({
      routes: [
        { path: "/b", upstream: `${B.base}/v1` },
        { path: "/r", upstream: `${R.base}/v1` },
      ],
      resilience: { retry: false, breaker: { failureThreshold: 1 } },
    });
    await (await proxy.fetch(new Request("http://proxy.local/b/images"), {}, ctx)).text(); // opens B
    clearHits();
    const res = await proxy.fetch(new Request("http://proxy.local/r/images"), {}, ctx);
    await res.text();
    expect(R.hits.length).toBe(1);
    expect(B.hits.length).toBe(0);
    expect(res.status).not.toBe(200);
    expect(res.status).toBeGreaterThanOrEqual(500);
  });
});

describe("resilience.fetch is a bound (input, init) => Promise<Response>", () => {
  it("works detached and with a foreign this", async () => {
    A.on(send(200, "bound"));
    const resilience = createResilience({ retry: FAST });
    const { fetch: detached } = resilience;
    expect(await (await detached(`${A.base}/v1/images`)).text()).toBe("bound");
    const other = Reflect.apply(resilience.fetch, { not: "a layer" }, [`${A.base}/v1/images`, { method: "GET" }]);
    expect(await ((await other) as Response).text()).toBe("bound");
    expect(resilience.fetch.length).toBeLessThanOrEqual(2);
    expect(A.hits.length).toBe(2);
  });
});

const REJECT_PATHS: Path[] = ["plain", "request", "redirect", "chain", "hedge", "degraded", "ky"];

describe("rejects when the call is aborted or its timeout.total passes", () => {
  const rigFor = (path: Path, clock: TestClock | undefined) => {
    const layer = layerFor(path, {
      retry: FAST,
      ...(clock ? { clock, timeout: { attempt: 60_000, total: 5_000 } } : {}),
    });
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    return (signal?: AbortSignal) =>
      path === "ky"
        ? api(`${A.base}/v1/images`, signal ? { signal } : {}).then((r) => r)
        : callWith(path, layer.fetch, signal ? { signal } : {});
  };

  it.each(REJECT_PATHS)("timeout.total: a TimeoutError of phase total at 5 s (%s)", async (path) => {
    A.on(() => {}); // hangs
    B.on(() => {});
    R.on(redirectTo(A));
    const clock = new TestClock();
    const pending = outcome(rigFor(path, clock)());
    await A.nth(1);
    await clock.advance(4_999);
    await turn();
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await turn();
    expect(settled).toBe(false);
    await clock.advance(1);
    const out = await pending;
    expect(out.status).toBeUndefined();
    expect(isResilienceError(out.error)).toBe(true);
    expect(isTimeoutError(out.error)).toBe(true);
    expect((out.error as { phase: string }).phase).toBe("total");
    expect(B.hits.length).toBe(0);
  });

  it("timeout.total through the proxy: 504", async () => {
    A.on(() => {});
    const clock = new TestClock();
    const proxy = resilientProxy({
      routes: [{ path: "/v1", upstream: `${A.base}/v1` }],
      resilience: { clock, timeout: { attempt: 60_000, total: 5_000 } },
    });
    const pending = proxy.fetch(new Request("http://proxy.local/v1/images"), {}, ctx);
    await A.nth(1);
    await clock.advance(5_000);
    expect((await pending).status).toBe(504);
  });

  it.each(REJECT_PATHS)("an abort rejects with the signal's reason (%s)", async (path) => {
    A.on(() => {});
    B.on(() => {});
    R.on(redirectTo(A));
    const controller = new AbortController();
    const reason = new Error("user left the page");
    const pending = outcome(rigFor(path, undefined)(controller.signal));
    await A.nth(1);
    controller.abort(reason);
    const out = await pending;
    expect(out.error).toBe(reason);
    expect(B.hits.length).toBe(0);
  });
});

describe("the README's vitest + MSW block, run as pasted", () => {
  // Your code under test: it takes a fetch.
  async function generateImage(fetchImpl: typeof fetch, prompt: string): Promise<{ url: string }> {
    const res = await fetchImpl(`${M.base}/v1/images`, { method: "POST", body: JSON.stringify({ prompt }) });
    return (await res.json()) as { url: string };
  }

  const server = setupServer(corsPreflight()); // a DOM environment (happy-dom) preflights cross-origin requests;
  beforeAll(() => server.listen({ onUnhandledFrame: "bypass" }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());

  it("shows the image after two 503s", async () => {
    M.on(send(418, "MSW missed this request"));
    const api = upstream(
      "POST",
      `${M.base}/v1/images`,
      sequence([status(503, { retryAfter: 1 }), status(503), json({ url: "https://cdn.example/cat.png" })]),
    );
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: { idempotencyKey: true } });
    const recorder = recordEvents(resilience);

    const image = await clock.run(generateImage(resilience.fetch, "a cat")); // backoffs take no real time
    expect(image.url).toBe("https://cdn.example/cat.png");
    expect(api.count()).toBe(3);
    expect(api.header("idempotency-key")).not.toContain(null); // a key on every attempt
    expect(new Set(api.header("idempotency-key")).size).toBe(1); // the same one
    recorder.expectRetries(2);
    expect(M.hits.length).toBe(0);
  });

  it("stops calling a dead API, then probes it after the breaker's timeout", async () => {
    M.on(send(418, "MSW missed this request"));
    const api = upstream("POST", `${M.base}/v1/images`, status(503));
    server.use(api.handler);
    const clock = new TestClock();
    const resilience = createResilience({ clock, retry: false, breaker: { failureThreshold: 2, timeout: 10_000 } });

    for (let i = 0; i < 2; i++) await resilience.fetch(`${M.base}/v1/images`, { method: "POST" });
    await expect(resilience.fetch(`${M.base}/v1/images`, { method: "POST" })).rejects.toThrow(/open/i);
    expect(api.count()).toBe(2);

    await clock.advance(10_000); // the breaker half-opens: the next call is a probe
    await resilience.fetch(`${M.base}/v1/images`, { method: "POST" });
    expect(api.count()).toBe(3);
    expect(M.hits.length).toBe(0);
  });
});
