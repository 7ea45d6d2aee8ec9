/**
 * Outside-in attack on the edges of the re-entry rule of src/http/global-fetch.ts (commit 32e4cbe): a layer with no
 * `fetch` option sends through the global fetch at call time, past a layer installed there; a call handed back to a
 * layer synchronously while it sends (a wrapper installed over it that calls it at once: MSW 3's patch after
 * `listen()`, `resilience.fetch.bind(globalThis)`, an arrow, instrumentation) goes straight to the fetch beneath it.
 * test/http/global-install.test.ts and test/security/globalinstall-fortysix-attack.test.ts (plain installs, MSW's
 * `listen()` after the install with one layer) are not repeated: here every install has a wrapper over it.
 *
 * Docs:
 * - README.md: "To send every `fetch` of an app or an SDK through the layer, install it: `globalThis.fetch =
 *   resilience.fetch` … It then sends through the fetch that was global when it was made, never through itself
 *   ([with MSW](docs/testing.md))."
 * - docs/options.md, `fetch` row: "a layer found there, installed with `globalThis.fetch = resilience.fetch` as a
 *   drop-in, is passed for the fetch that was global when that layer was made, so a layer never calls itself, nor
 *   another through the global fetch: stack layers by passing `fetch: other.fetch`; a call handed back to a layer
 *   while it sends, by a wrapper installed over it that calls it at once, MSW's patch or a bound copy, goes straight
 *   to the fetch beneath it; a wrapper that calls it back only after an await is not recognised: install the layer
 *   after such a wrapper".
 * - docs/testing.md: "installed before it, MSW's patch wraps it, and the layer, handed its own request back by the
 *   patch, passes it straight to the fetch beneath it, where MSW meets it."
 * - CHANGELOG.md, "### Fixed": "A layer with the default transport passes any installed layer over; pass `fetch:
 *   other.fetch` to stack layers. A call handed back to a layer while it sends, by a wrapper over it that calls it
 *   at once, goes straight to the fetch beneath it." (and the "module run again" case it names).
 * - docs/retry.md: "Retried by default: network errors, attempt timeouts and statuses 408, 425, 429, 500, 502, 503,
 *   504." docs/health-and-events.md: "`request` fires once per call the layer started".
 *
 * How: `createResilience`/`getResilienceInfo` (root), `fallback` (./fallback), `createClient` (./ky),
 * `resilientProxy` (./cloudflare), `upstream`/`status`/`TestClock` (./testing) under MSW 3's `setupServer`
 * (msw/node); two node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) counting every request; a counting
 * stand-in for the platform fetch installed before each layer is made; wrappers over the installed layer (an arrow
 * that counts its entries, a bound copy, MSW's patch, an instrumentation that fires a beacon); Chromium on the
 * browser build (test/helpers/library-page.ts, `npm run build` first).
 *
 * Paths: plain call, retries (TestClock backoff), hedged fallback chain (two attempts in flight, both re-entered),
 * redirects `"library"` (each hop through the wrapper), a wrapper that throws synchronously, layers installed and
 * uninstalled in turns with calls in flight, `execute` whose work calls the wrapped global fetch, the ky client (on
 * the installed layer, and `createClient()` with its own), `resilientProxy`, a layer made inside the wrapper's call,
 * a module run again over the wrapper, a wrapper that calls back after an `await`, Chromium's `window.fetch`.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; all fixed since: the request being sent is known module-wide, and a layer entered with that URL while it is sent goes to the fetch beneath it, so plain `it`):
 * 1. options.md "so a layer never calls itself, nor another through the global fetch: stack layers by passing
 *    `fetch: other.fetch`"; CHANGELOG "A layer with the default transport passes any installed layer over".
 *    Observed: once anything wraps the installed layer A (MSW's patch after `listen()`, as docs/testing.md
 *    describes; a bound copy; an arrow or instrumentation wrapper), every other layer B with the default transport
 *    sends through A's whole pipeline: B → wrapper → A (A is not sending, so it starts a call of its own) → wrapper
 *    → A (now re-entered) → platform. A's retries run inside each of B's attempts (a steady 503: B's 2 × A's 3 = 6
 *    requests where B alone sends 2), A's `request` event fires for B's attempts, A's breaker counts B's failures.
 *    Seen with a plain layer under MSW, `createClient()` (the ky client's own layer) under a bound install,
 *    `resilientProxy`'s layer under an instrumentation wrapper, a layer made inside the wrapper's call, a module run
 *    again over the wrapper (the CHANGELOG's case: the new layer's fetch beneath is the wrapper over the old layer),
 *    and in Chromium (`window.fetch` = an arrow over the layer, a second layer in the page). Source:
 *    src/http/global-fetch.ts: `pastLayers` knows a layer only when it is itself the global fetch (by identity in
 *    `beneathOf`), and `sending` is per layer (`globalFetch()`'s closure), so A, entered from B's send, cannot tell
 *    it is being handed B's request.
 * 2. options.md/CHANGELOG: only "a call handed back to a layer while it sends" goes straight to the fetch beneath;
 *    retry.md "Retried by default: … 503"; health-and-events.md "`request` fires once per call". Observed: an
 *    instrumentation wrapper over the installed layer that fires a beacon (another URL) through the layer when it
 *    sees a request: the beacon fired while the layer's own send passes through the wrapper is taken for the call
 *    handed back: sent once past the layer, a 503 not retried, no `request` event, no breaker (the beacon fired on
 *    the app's entry into the wrapper gets all of them). Source: src/http/global-fetch.ts `own()`: `!sending ?
 *    fetch(input, init) : beneath(input, init)` looks only at the flag, never at which request comes back.
 *
 * Held (plain `it`):
 * - With an arrow wrapper over the installed layer, each request goes out once per attempt, the wrapper is entered
 *   once by the app and once per attempt, the `request` event fires once per call, no timer is left on the
 *   TestClock, no unhandled rejection: retries 503, 503, 200 (TestClock backoff; `retry` events 1, 2; info
 *   `attempts: 3`); a hedged chain (both attempts re-entered, the loser aborted, `attempts: 2`); redirects
 *   `"library"` (each hop through the wrapper with `redirect: "manual"`, one `redirect` event, `res.redirected`).
 * - A wrapper that throws synchronously when the layer sends through it: that attempt is a network error and is
 *   retried (GET); one that always throws: `RetryExhaustedError`, nothing sent, one `request` event.
 * - Layers A and B installed and uninstalled in turns (plain installs) with calls in flight and retries after the
 *   turns: each request once per attempt through the platform, each layer's events only for its own calls.
 * - `execute` whose work calls the wrapped global fetch: once through the layer. The ky client on the installed
 *   (wrapped) layer: once.
 * - Chromium: `window.fetch = resilience.fetch`, an arrow over it: the page's `fetch()` goes out once, the wrapper
 *   is entered twice, one `request` event.
 *
 * Docs-silent (not pinned):
 * - A wrapper over the installed layer runs twice per call (the app's call, then the layer's send): an
 *   instrumentation counts each request twice, a beacon wrapper fires two beacons per call (see defect 2), a
 *   non-idempotent rewrite (append a header value, prefix a path) is applied twice.
 * - A wrapper that calls back after an `await` (documented as not recognised): an unbounded loop of layer calls,
 *   nothing sent, and made only of microtasks: the event loop never turns (no timer fires, so no `timeout` of the
 *   layer's ends it; a `setImmediate` queued before the call has not run by the 20th entry). Left alone, a call's
 *   rejection message also grows per level ("gave up after 1 attempt to …: gave up after …"), quadratic in depth.
 * - A wrapper that makes a layer per call (`globalThis.fetch = (i, o) => createResilience(opts).fetch(i, o)`): each
 *   layer's fetch beneath is the wrapper (global when it was made), so the call recurses synchronously until the
 *   stack overflows; nothing is sent.
 * - A module run again over a wrapper keeps the first layer alive through the wrapper (the new layer's fetch
 *   beneath), beside the CHANGELOG's "Layers replaced while installed are not kept alive by the newest".
 */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type RequestEvent, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { status, TestClock, upstream } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

const native = globalThis.fetch;
const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);
afterEach(() => {
  globalThis.fetch = native;
});

/** No waits between retries. */
const quick = { initialDelay: 0, maxDelay: 0, jitter: "none" } as const;

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** What a request names: its method and path (with the query). */
function named(input: RequestInfo | URL, init?: RequestInit): string {
  const url = new URL(input instanceof Request ? input.url : String(input));
  return `${input instanceof Request ? input.method : (init?.method ?? "GET")} ${url.pathname}${url.search}`;
}

/** A counting stand-in for the platform fetch, installed as the global one: what a layer made now finds beneath it. */
function countingPlatform(): string[] {
  const sent: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    sent.push(named(input, init));
    return native(input, init);
  }) as typeof fetch;
  return sent;
}

/** A layer and its `request` events (one per call it settled). */
function layer(options: ResilienceOptions = {}) {
  const resilience = createResilience({ retry: quick, ...options });
  const events: RequestEvent[] = [];
  resilience.on("request", (event) => {
    events.push(event);
  });
  return { resilience, events };
}

/** Installs an arrow over `fetch` as the global fetch (an instrumentation): what it is entered with, in order. */
function wrapOver(fetch: Fetch): string[] {
  const entries: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    entries.push(`${named(input, init)}${init?.redirect === "manual" ? " manual" : ""}`);
    return fetch(input, init);
  }) as typeof fetch;
  return entries;
}

const settle = (promise: Promise<Response>) =>
  promise.then(
    async (res) => ({ status: res.status, text: await res.text() }),
    (error: unknown) => ({ error }),
  );

describe("held: a wrapper over the installed layer that calls it at once, on each path", () => {
  it("retries after re-entered attempts (TestClock backoff): 503, 503, 200 is three requests, one call, no timer left", async () => {
    const sent = countingPlatform();
    const clock = new TestClock(0);
    const { resilience, events } = layer({
      clock,
      retry: { maxAttempts: 3, initialDelay: 100, maxDelay: 100, jitter: "none" },
    });
    const retries: number[] = [];
    resilience.on("retry", (event) => {
      retries.push(event.attempt);
    });
    globalThis.fetch = resilience.fetch;
    const entries = wrapOver(resilience.fetch);
    a.on((hit) => (hit.n < 3 ? hit.res.writeHead(503).end() : hit.res.end("third")));
    const { value: res, unhandled } = await watchUnhandled(async () => {
      const call = fetch(`${a.base}/flaky`);
      await a.nth(1);
      await clock.advance(100);
      await a.nth(2);
      await clock.advance(100);
      return call;
    });
    expect(await res.text()).toBe("third");
    expect(getResilienceInfo(res)?.attempts).toBe(3);
    expect(retries).toEqual([1, 2]);
    // The app's entry, then one per attempt (handed back, straight to the platform; Node's default redirects
    // "library" sends each with `redirect: "manual"`).
    expect(entries).toEqual(["GET /flaky", "GET /flaky manual", "GET /flaky manual", "GET /flaky manual"]);
    expect(sent).toEqual(["GET /flaky", "GET /flaky", "GET /flaky"]);
    expect(a.hits).toHaveLength(3);
    expect(events).toHaveLength(1);
    expect(clock.pending()).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it("a hedged chain: two attempts in flight, both through the wrapper and handed back; the loser aborted", async () => {
    const sent = countingPlatform();
    const clock = new TestClock(0);
    const { resilience, events } = layer({
      clock,
      fallback: fallback([
        {
          name: "hedged",
          hedge: { delay: 1_000 },
          endpoints: [
            { name: "slow", url: `${a.base}/h` },
            { name: "fast", url: `${b.base}/h` },
          ],
        },
      ]),
    });
    globalThis.fetch = resilience.fetch;
    const entries = wrapOver(resilience.fetch);
    a.on(() => {}); // never answers
    b.on((hit) => hit.res.end("fast"));
    const { value: res, unhandled } = await watchUnhandled(async () => {
      const call = fetch(`${a.base}/h/x`);
      await a.nth(1);
      await clock.advance(1_000);
      return call;
    });
    expect(await res.text()).toBe("fast");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, endpoint: "fast", fromFallback: true });
    await (await a.nth(1)).closed; // the losing attempt is aborted
    expect(entries).toHaveLength(3);
    expect(sent).toEqual(["GET /h/x", "GET /h/x"]);
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(events).toHaveLength(1);
    expect(clock.pending()).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it('redirects: "library": each hop goes through the wrapper with `redirect: "manual"` and is sent once', async () => {
    const sent = countingPlatform();
    const { resilience, events } = layer({ redirects: "library" });
    const redirects: string[] = [];
    resilience.on("redirect", (event) => {
      redirects.push(`${new URL(event.from).pathname} -> ${new URL(event.to).pathname}`);
    });
    globalThis.fetch = resilience.fetch;
    const entries = wrapOver(resilience.fetch);
    a.on((hit) => hit.res.writeHead(302, { location: `${b.base}/landed` }).end());
    b.on((hit) => hit.res.end("landed"));
    const res = await fetch(`${a.base}/moved`);
    expect(await res.text()).toBe("landed");
    expect(res.redirected).toBe(true);
    expect(entries).toEqual(["GET /moved", "GET /moved manual", "GET /landed manual"]);
    expect(sent).toEqual(["GET /moved", "GET /landed"]);
    expect(redirects).toEqual(["/moved -> /landed"]);
    expect([a.hits.length, b.hits.length]).toEqual([1, 1]);
    expect(events).toHaveLength(1);
  });

  it("a wrapper that throws synchronously as the layer sends: a network error, retried; one that always throws: nothing sent", async () => {
    const sent = countingPlatform();
    const { resilience, events } = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = resilience.fetch;
    let entries = 0;
    let throwFrom = 2; // the app's entry passes; the layer's first send through it throws
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      entries++;
      if (entries === throwFrom || (throwFrom === 0 && entries > 1)) throw new TypeError("instrumentation broke");
      return resilience.fetch(input, init);
    }) as typeof fetch;
    const { value: once, unhandled } = await watchUnhandled(() => settle(fetch(`${a.base}/throws-once`)));
    expect(once).toEqual({ status: 200, text: "ok" });
    expect(entries).toBe(3);
    expect(sent).toEqual(["GET /throws-once"]);
    expect(events.map((event) => event.attempts)).toEqual([2]);
    expect(unhandled).toEqual([]);

    entries = 0;
    throwFrom = 0; // every send through it throws
    const { value: always, unhandled: later } = await watchUnhandled(() => settle(fetch(`${a.base}/throws-always`)));
    expect((always as { error: Error }).error.name).toBe("RetryExhaustedError");
    expect(entries).toBe(4);
    expect(sent).toEqual(["GET /throws-once"]);
    expect(events).toHaveLength(2);
    expect(later).toEqual([]);
  });

  it("layers installed and uninstalled in turns, calls in flight, retries after the turns: each request once per attempt, each layer's events its own", async () => {
    const sent = countingPlatform();
    const A = layer({ retry: { ...quick, maxAttempts: 2 } });
    const B = layer({ retry: { ...quick, maxAttempts: 2 } });
    const platform = globalThis.fetch;
    // Each path's first request is a 503 (retried after all the turns below), its second a 200.
    a.on((hit) =>
      a.hits.filter((other) => other.path === hit.path).length === 1
        ? hit.res.writeHead(503).end()
        : hit.res.end(hit.path),
    );
    globalThis.fetch = A.resilience.fetch;
    const p1 = fetch(`${a.base}/1`); // A
    globalThis.fetch = B.resilience.fetch;
    const p2 = fetch(`${a.base}/2`); // B
    const p3 = A.resilience.fetch(`${a.base}/3`); // A, passing B over
    globalThis.fetch = platform;
    const p4 = B.resilience.fetch(`${a.base}/4`); // B, uninstalled
    globalThis.fetch = A.resilience.fetch;
    const p5 = B.resilience.fetch(`${a.base}/5`); // B, passing A over
    const p6 = fetch(`${a.base}/6`); // A
    const { value: out, unhandled } = await watchUnhandled(() =>
      Promise.all([p1, p2, p3, p4, p5, p6].map(async (p) => (await p).text())),
    );
    expect(out).toEqual(["/1", "/2", "/3", "/4", "/5", "/6"]);
    expect(sent.toSorted()).toEqual(
      ["/1", "/1", "/2", "/2", "/3", "/3", "/4", "/4", "/5", "/5", "/6", "/6"].map((p) => `GET ${p}`),
    );
    const paths = (events: RequestEvent[]) => events.map((event) => new URL(event.url).pathname).toSorted();
    expect(paths(A.events)).toEqual(["/1", "/3", "/6"]);
    expect(paths(B.events)).toEqual(["/2", "/4", "/5"]);
    expect([...A.events, ...B.events].every((event) => event.attempts === 2)).toBe(true);
    expect(unhandled).toEqual([]);
  });

  it("`execute` whose work calls the wrapped global fetch, and the ky client on the installed layer: once each", async () => {
    const sent = countingPlatform();
    const { resilience, events } = layer();
    globalThis.fetch = resilience.fetch;
    const entries = wrapOver(resilience.fetch);
    const text = await resilience.execute(async () => (await fetch(`${a.base}/work`)).text());
    expect(text).toBe("ok");
    const api = createClient({ resilience });
    expect(await api.get(`${a.base}/ky-on`).text()).toBe("ok");
    expect(sent).toEqual(["GET /work", "GET /ky-on"]);
    // The work's call enters it, then its send; ky calls the layer, whose send enters it once.
    expect(entries).toEqual(["GET /work", "GET /work manual", "GET /ky-on manual"]);
    expect(events).toHaveLength(2);
  });
});

describe("defect 1: another layer with the default transport goes through an installed layer a wrapper covers", () => {
  it("MSW's `listen()` after the install (docs/testing.md's order): a second layer passes the installed one over", async () => {
    const installed = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = installed.resilience.fetch; // the app's module
    const api = upstream("GET", "https://gen.example/v1/busy", status(503));
    const server = setupServer(api.handler);
    server.listen({ onUnhandledFrame: "error" }); // beforeAll
    try {
      const other = layer({ retry: { ...quick, maxAttempts: 2 } }); // an SDK's own layer, a test's
      const { value: res, unhandled } = await watchUnhandled(() =>
        other.resilience.fetch("https://gen.example/v1/busy"),
      );
      expect(res.status).toBe(503);
      expect(unhandled).toEqual([]);
      expect(other.events).toHaveLength(1);
      // options.md: "so a layer never calls itself, nor another through the global fetch"; CHANGELOG: "A layer with
      // the default transport passes any installed layer over". Observed: 6 requests (2 × the installed layer's 3),
      // and the installed layer's `request` event fires twice, for the other layer's attempts.
      expect(api.count()).toBe(2);
      expect(installed.events).toHaveLength(0);
    } finally {
      server.close();
    }
  });

  it("`createClient()` (the ky client's own layer) beside an installed layer a bound copy of it covers", async () => {
    const sent = countingPlatform();
    const installed = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = installed.resilience.fetch.bind(globalThis);
    a.on((hit) => hit.res.writeHead(503).end());
    const api = createClient({ resilience: { retry: { ...quick, maxAttempts: 2 } }, throwHttpErrors: false });
    const res = await api.get(`${a.base}/ky-own`);
    expect(res.status).toBe(503);
    // Observed: 6 requests, the installed layer's `request` event twice.
    expect(sent).toEqual(["GET /ky-own", "GET /ky-own"]);
    expect(installed.events).toHaveLength(0);
  });

  it("`resilientProxy` in a Worker whose installed layer an instrumentation wraps: the proxy's layer passes it over", async () => {
    const sent = countingPlatform();
    const installed = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = installed.resilience.fetch; // the Worker's module scope
    wrapOver(installed.resilience.fetch); // its tracing, installed after
    a.on((hit) => hit.res.writeHead(503).end());
    const proxy = resilientProxy<Record<string, never>>({
      routes: [{ path: "/api", upstream: `${a.base}/v1` }],
      resilience: { retry: { ...quick, maxAttempts: 2 } },
    });
    const res = await proxy.fetch(new Request("https://worker.example/api/jobs"), {}, { waitUntil: () => {} });
    await res.body?.cancel();
    expect(res.status).toBe(503);
    // Observed: 6 requests upstream, the installed layer's `request` event twice.
    expect(sent).toEqual(["GET /v1/jobs", "GET /v1/jobs"]);
    expect(installed.events).toHaveLength(0);
  });

  it("a layer made inside the wrapper's call (an SDK made lazily on the first request) passes the installed one over", async () => {
    const sent = countingPlatform();
    const installed = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = installed.resilience.fetch;
    let lazy: ReturnType<typeof layer> | undefined;
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      lazy ??= layer({ retry: { ...quick, maxAttempts: 2 } });
      return installed.resilience.fetch(input, init);
    }) as typeof fetch;
    expect((await fetch(`${a.base}/first`)).status).toBe(200);
    a.on((hit) => hit.res.writeHead(503).end());
    const res = await (lazy as ReturnType<typeof layer>).resilience.fetch(`${a.base}/lazy`);
    expect(res.status).toBe(503);
    // Observed: the lazy layer's fetch beneath is the wrapper (global when it was made): 6 requests, and the
    // installed layer's `request` event fires for its attempts.
    expect(sent).toEqual(["GET /first", "GET /lazy", "GET /lazy"]);
    expect(installed.events).toHaveLength(1);
  });

  it("a module run again over an instrumentation wrapper (the CHANGELOG's case): the new layer goes through neither", async () => {
    const sent = countingPlatform();
    const first = layer({ retry: { ...quick, maxAttempts: 3 } });
    globalThis.fetch = first.resilience.fetch; // the app's module
    wrapOver(first.resilience.fetch); // instrumentation, installed once at startup
    const second = layer({ retry: { ...quick, maxAttempts: 2 } }); // the module run again
    globalThis.fetch = second.resilience.fetch;
    a.on((hit) => hit.res.writeHead(503).end());
    const res = await fetch(`${a.base}/again`);
    expect(res.status).toBe(503);
    expect(second.events).toHaveLength(1);
    // Observed: 6 requests; the replaced layer runs (its `request` event twice) under the newest.
    expect(sent).toEqual(["GET /again", "GET /again"]);
    expect(first.events).toHaveLength(0);
  });
});

describe("defect 2: a wrapper's own call for another URL, made while the layer sends, is taken for the call handed back", () => {
  it("an instrumentation's beacon through the layer is retried and counted whenever it is fired", async () => {
    const sent = countingPlatform();
    const { resilience, events } = layer({ retry: { ...quick, maxAttempts: 2 } });
    globalThis.fetch = resilience.fetch;
    const beacons: Array<Promise<unknown>> = [];
    let seq = 0;
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      // A beacon for every request it sees, through the layer (retried like any GET of the app's).
      if (url.pathname !== "/beacon") beacons.push(settle(resilience.fetch(`${b.base}/beacon?n=${++seq}`)));
      return resilience.fetch(input, init);
    }) as typeof fetch;
    // Each beacon's first request is a 503, its second a 200.
    b.on((hit) =>
      b.hits.filter((other) => other.path === hit.path).length === 1 ? hit.res.writeHead(503).end() : hit.res.end("ok"),
    );
    const { value: res, unhandled } = await watchUnhandled(async () => {
      const answer = await fetch(`${a.base}/app`);
      await Promise.all(beacons);
      return answer;
    });
    expect(res.status).toBe(200);
    expect(unhandled).toEqual([]);
    expect(sent.filter((line) => line === "GET /app")).toEqual(["GET /app"]);
    // Two beacons (the wrapper is entered by the app, then by the layer's send: docs-silent).
    expect(seq).toBe(2);
    // retry.md "Retried by default: … 503"; health-and-events.md "`request` fires once per call". Observed: the
    // second beacon, fired while the layer sent `/app` through the wrapper, went straight to the platform: one
    // request, its 503 kept, no `request` event.
    expect(b.hits.map((hit) => hit.path).toSorted()).toEqual([
      "/beacon?n=1",
      "/beacon?n=1",
      "/beacon?n=2",
      "/beacon?n=2",
    ]);
    expect(events.map((event) => new URL(event.url).pathname).toSorted()).toEqual(["/app", "/beacon", "/beacon"]);
  });
});

describe("docs-silent: wrappers the rule does not recognise (characterised, loops stopped by a counter)", () => {
  it("a wrapper that calls back after an `await` (documented as not recognised): a loop of microtasks, nothing sent, the event loop never turns", async () => {
    const { resilience, events } = layer({ retry: { ...quick, maxAttempts: 1 } });
    globalThis.fetch = resilience.fetch;
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    let entries = 0;
    let turnedAtStop: boolean | undefined;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      await null;
      if (++entries > 20) {
        turnedAtStop = turned;
        throw new TypeError("loop stopped by the test");
      }
      return resilience.fetch(input, init);
    }) as typeof fetch;
    const { value: outcome, unhandled } = await watchUnhandled(() => settle(fetch(`${a.base}/loop`)));
    expect((outcome as { error: Error }).error.name).toBe("RetryExhaustedError");
    expect(entries).toBe(21);
    expect(turnedAtStop).toBe(false);
    expect(a.hits).toHaveLength(0);
    expect(events).toHaveLength(20); // one layer call per level
    expect(unhandled).toEqual([]);
  });

  it("a wrapper that makes a layer per call: each layer's fetch beneath is the wrapper; synchronous recursion, nothing sent", async () => {
    countingPlatform();
    let entries = 0;
    let depthAtStop = 0;
    let depth = 0;
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      if (++entries > 20) {
        depthAtStop = depth;
        return Promise.reject(new TypeError("loop stopped by the test"));
      }
      depth++;
      try {
        return createResilience({ retry: false }).fetch(input, init);
      } finally {
        depth--;
      }
    }) as typeof fetch;
    const { value: outcome, unhandled } = await watchUnhandled(() => settle(fetch(`${a.base}/per-call`)));
    expect((outcome as { error: Error }).error.name).toBe("RetryExhaustedError");
    expect(depthAtStop).toBe(20); // every level still on the stack
    expect(a.hits).toHaveLength(0);
    expect(unhandled).toEqual([]);
  });
});

describe("in Chromium (the browser build): `window.fetch = resilience.fetch` with an arrow over it", () => {
  let opened: LibraryPage;
  const hits: string[] = [];
  beforeAll(async () => {
    opened = await openLibraryPage((req, res) => {
      const url = req.url ?? "";
      hits.push(url);
      if (url.startsWith("/busy")) return void res.writeHead(503).end();
      res.writeHead(200, { "content-type": "text/plain" }).end(`page ${url}`);
    });
  }, 60_000);
  afterAll(async () => {
    await opened?.close();
  });

  /** In the page: a layer installed, an arrow over it; `other` makes a second layer and calls `/busy` (503s). */
  const run = (other: boolean) =>
    opened.page.evaluate(async (withOther) => {
      const { createResilience } = (window as unknown as { lib: PageLib }).lib;
      const original = window.fetch;
      const make = (maxAttempts: number) => {
        const resilience = createResilience({ retry: { maxAttempts, initialDelay: 0, maxDelay: 0, jitter: "none" } });
        const calls = { n: 0 };
        resilience.on("request", () => {
          calls.n++;
        });
        return { resilience, calls };
      };
      const installed = make(3);
      window.fetch = installed.resilience.fetch;
      const inner = window.fetch;
      let entries = 0;
      window.fetch = (input, init) => {
        entries++;
        return inner(input, init);
      };
      try {
        if (!withOther) {
          const text = await (await fetch("/plain")).text();
          return { text, entries, installed: installed.calls.n, other: 0 };
        }
        const second = make(2);
        const res = await second.resilience.fetch("/busy");
        return { text: String(res.status), entries, installed: installed.calls.n, other: second.calls.n };
      } finally {
        window.fetch = original;
      }
    }, other);

  it("the page's `fetch()` goes out once, the wrapper entered twice, one `request` event", async () => {
    hits.length = 0;
    expect(await run(false)).toEqual({ text: "page /plain", entries: 2, installed: 1, other: 0 });
    expect(hits.filter((url) => url === "/plain")).toHaveLength(1);
  });

  it("defect 1 in a page: a second layer passes the installed one over (2 requests, not 2 × 3)", async () => {
    hits.length = 0;
    const out = await run(true);
    expect(out.text).toBe("503");
    expect(out.other).toBe(1);
    // Observed: 6 requests to `/busy`, the installed layer's `request` event twice.
    expect(hits.filter((url) => url === "/busy")).toHaveLength(2);
    expect(out.installed).toBe(0);
  });
});
