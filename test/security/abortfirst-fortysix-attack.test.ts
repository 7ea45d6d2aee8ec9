/**
 * Outside-in attack on the two fixes of 787c805: (1) a call whose signal is already aborted is refused for the
 * caller's mistakes first, as fetch refuses them, and rejects with the signal's reason only when none is made;
 * (2) a chain endpoint whose `transform` sends it to a host whose breaker is open is passed over ("circuit open",
 * not counted, nothing sent), as one declared at that host is.
 *
 * Docs:
 * - docs/retry.md "## Bodies": "As fetch builds its `Request` before it looks at the signal, a call whose signal is
 *   already aborted is refused for these mistakes first (an input or `init` of the wrong kind, an invalid URL, a bad
 *   method, header or platform field, a GET or HEAD with a body, a keepalive stream, a `Request` whose body was
 *   read), and rejects with the signal's reason only when none is made; a body's kind (a symbol, shared bytes) is
 *   looked at only once the call goes on"; "The caller's own mistakes reject at once with a `TypeError`, before any
 *   timer starts, and are never retried nor counted against the host's breaker"; "a call that ends without sending
 *   it (…) cancels it, … and any `Request` body given with a signal already aborted"; "A `ReadableStream` given in
 *   `init` … leaves it unread, unlocked and not cancelled (where fetch, rejecting at an abort, cancels it)"; "A page's
 *   build leaves the last two checks out"; "through a chain too, once every endpoint was refused or passed over".
 * - docs/health-and-events.md: "`request` fires once per call the layer started … and not for one refused before it
 *   started (the caller's mistake, a `TypeError`, or a signal already aborted: nothing was tried, and `health()` does
 *   not count it either)"; "`fallback` fires when a chain passes over an endpoint (`chain`, `from`, `reason`, `next`:
 *   a hedge already running that the call carries on with, else the endpoint next in line, …)".
 * - docs/fallback.md: "one whose breaker is open is skipped without a request (the breaker of the host in its
 *   declared `url`, asked before its `transform` runs, then that of the host the `transform` sends it to: either open
 *   passes it over, with reason "circuit open", not counted)"; statistics "one passed over for its open breaker is
 *   not counted"; "an endpoint skipped for its open breaker has that breaker's `CircuitOpenError` there, with
 *   `retryAt`"; `order: "adaptive"`, `hedge: { delay }`.
 * - docs/cloudflare.md: the proxy "answers `503` with `Retry-After` when the circuit is open".
 * - CHANGELOG.md, the first two "### Fixed" entries (the same two promises).
 *
 * How: `createResilience`, `getResilienceInfo`, `memoryStore`, `isCircuitOpenError`, `isFallbackExhaustedError`
 * (root), `fallback` (./fallback), `degradation` (./degradation), `createClient` (./ky), `resilientProxy`,
 * `kvStore` (over a map-backed KV binding), `durableObjectStore` (over test/helpers/object-namespace.ts's real
 * `BreakerStateObject`s) (./cloudflare), `TestClock` and `recordEvents` (./testing); four node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts) counting every request; Node's own `fetch` as the reference; Chromium
 * (test/helpers/library-page.ts on the browser build) with the browser's own `fetch` as the reference there.
 *
 * Paths: plain call, fallback chain, hedge (hedged chains, a hedge started on an endpoint passed over this way, a
 * hedge's slow `transform`), degradation rewrite (a layer with the stage, a query rule at `low`), `Request` input
 * (with `init`, its own aborted signal, a stream body, a read or locked body), `resilientProxy` (a client gone
 * before the call; a chain route whose endpoints are all passed over), ky client, `data:` URLs, shared stores
 * (`memoryStore`, `kvStore`, `durableObjectStore`), half-open hosts, keyless POSTs, Chromium's page build.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; all three fixed since, so plain `it`):
 * 1. docs/fallback.md "the breaker of the host in its declared `url`, asked before its `transform` runs, then that
 *    of the host the `transform` sends it to: either open passes it over, with reason "circuit open", not counted".
 *    Observed: the breaker is asked after the `transform` only when the URL it returned differs from
 *    `call.keyedUrl`, so two endpoints are counted as failed calls (`statistics()` calls 1, `order: "adaptive"`
 *    ranks them down) with the refusal's text as the `fallback` reason ("CircuitOpenError: circuit for … is open
 *    until …"), nothing sent: (a) an async `transform` that keeps the endpoint's URL (reshapes the body, as the
 *    docs' own example does) while its host's breaker opens (another call's 500) — the same `transform` sending to
 *    another host that opens meanwhile is passed over; (b) in a hedged chain, a slow `transform` that resolves to
 *    the URL of the endpoint the hedge passed over meanwhile (its host open): `call.keyedUrl` is shared by every
 *    running entry and `skipReason` set it to that endpoint's URL; unhedged, the same chain passes it over.
 *    Source: src/fallback/try-endpoints.ts `sendToEndpoint` (`if (shaped.url !== call.keyedUrl)` guards
 *    `openRefusal`; `skipReason` writes `call.keyedUrl`/`call.key` per launch, not per entry).
 * 2. docs/health-and-events.md "`next`: a hedge already running that the call carries on with, else the endpoint
 *    next in line". Observed: an endpoint declared at an open host, passed over as a hedge starts it while the
 *    primary still runs, says `next: undefined` (or the endpoint after it, "t", which starts with it), though the
 *    call carries on with the primary, which then serves; the same endpoint passed over once its `transform` sent
 *    it to that host says `next: "p"`. Source: src/policies/fallback-chain.ts `#launchable` calls `#passOver`
 *    without the running entry (`carrying`), which only `#conclude` passes. Fixed for the case with none next in
 *    line (it names the running one); with one next in line, which starts in its place, it names that one ("t"), as
 *    test/security/hedgematrix-thirtyseven-attack.test.ts holds, and docs/health-and-events.md now says so.
 *
 * Held (plain `it`):
 * - Node: with the signal aborted, every listed mistake (a number, `null` or `{ url }` as input; a number or string
 *   as `init`; an invalid or relative URL, port 99999, `user:pass@`; a method not a token, CONNECT, trace, TRACK;
 *   a header name with a space, LF or U+0100 in a value, `headers: null` or a string, a pair of three, a symbol key;
 *   a GET or HEAD with a body, an empty one too; a keepalive stream; `cache`, `mode`, `only-if-cached`, `redirect`,
 *   `credentials`, `referrer`, `referrerPolicy`, `duplex`, `window`; a `Request` with a body `init` makes GET, a bad
 *   header, `cache` or TRACE in `init`, a keepalive stream in `init`, a read or locked body) is a `TypeError` from
 *   Node's fetch and from the layer on the plain, chain, hedged chain, degradation and chain + degradation layers:
 *   nothing sent, no event, no timer on the clock (`timeout.total` and `timeout.attempt` set), no breaker listed,
 *   the budget's tokens, error rate and totals unchanged. A `Request` carrying the aborted signal itself: the same.
 * - A symbol body, shared or resizable bytes: the signal's reason when aborted (fetch: its TypeError, as the docs
 *   say), the TypeError when live, on every path and with a `Request` whose body `init` replaces.
 * - A `Request`'s stream body is cancelled with the reason when the abort wins (its own body, `init.body: null`,
 *   keepalive), left alone when `init` gives another body or a mistake wins, exactly as Node's fetch, on every path,
 *   through ky and through `resilientProxy` (the client's body, upstream and chain routes); a bytes body reads as
 *   used afterwards, as after fetch.
 * - ky client: its own and the layer's mistakes are `TypeError`s under an aborted signal; the abort alone its
 *   reason, no event. `data:` URLs: fetch's own answer (its TypeError for a mistake, else the reason), no event.
 * - Chromium: the page's build and the browser's fetch agree on every mistake but the documented ones (see below).
 * - Transform to an open host, compared with the same endpoint declared there (status, text, `getResilienceInfo`,
 *   events, statistics, budget, requests): plain chain with and without a next endpoint; `order: "adaptive"` over 4
 *   calls (same orders, `calls` 0); hedged chains (the next endpoint starts at once, the winner aborts the primary,
 *   no timer left; with nothing left to start the primary's late answer serves; a first endpoint passed over starts
 *   the next at 0 ms, not after the delay); memoryStore, kvStore and durableObjectStore shared with a layer that
 *   opened the host (passed over, `health()` lists it open); a half-open host (its probe goes and closes it; with
 *   its probe slot taken both ways are refused and counted alike); a keyless POST, a `Request` PUT and a degradation
 *   rule's rewrite reach the next endpoint; a platform's refusal then a pass-over rejects with fetch's TypeError,
 *   counted by nothing; every endpoint passed over: the same `FallbackExhaustedError` (each `CircuitOpenError` with
 *   its `retryAt`), events, `health()`, statistics and totals, and through `resilientProxy` 503 with `Retry-After`.
 *
 * Docs-silent (not pinned):
 * - The layer refuses before the abort what Node's fetch refuses only once it fetches, after its abort check: an
 *   `ftp:` or `wss:` URL, a header value with `\x01` (Node's `Headers` take it): `TypeError` where fetch gives the
 *   reason. In Chromium the layer refuses a number or `{ url }` input (documented), which the browser's fetch reads
 *   as a relative URL (the reason there).
 * - In a page's build a bad `cache`, `mode` or `redirect` with an aborted signal rejects with the reason, where the
 *   browser's fetch rejects with its TypeError: the build leaves these fields to the browser, which never sees an
 *   aborted call (the docs' "A page's build leaves the last two checks out" speaks of sent calls).
 * - A half-open host with every probe slot taken refused a chain endpoint at its send: counted as a failed call, its
 *   `fallback` reason "CircuitOpenError: circuit for … is open until …" though the host is half-open (both ways).
 *   Since made a pass-over, as for an open host (docs/fallback.md), and the test asserts that.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { durableObjectStore, type KvNamespaceLike, kvStore, resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { type EndpointRequest, type FallbackEndpoint, fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  createResilience,
  type FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  isFallbackExhaustedError,
  memoryStore,
  type Resilience,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { type LibraryPage, openLibraryPage, type PageLib } from "../helpers/library-page.ts";
import { objectNamespace } from "../helpers/object-namespace.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
const C = httpUpstream();
const D = httpUpstream();
serveDuringFile(A, B, C, D);

const hits = () => A.hits.length + B.hits.length + C.hits.length + D.hits.length;

/** A signal aborted already, with its own reason. */
const REASON = new Error("gone");
const gone = (): AbortSignal => {
  const controller = new AbortController();
  controller.abort(REASON);
  return controller.signal;
};

type Call = [input: unknown, init: unknown];
/** A resizable `ArrayBuffer` (ES2024, which the test's lib does not name). */
const resizable = (): ArrayBuffer =>
  new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(4, { maxByteLength: 8 });
/** A `ReadableStream` whose source says when it is cancelled, and with what. */
const source = (log: unknown[]): ReadableStream<Uint8Array> =>
  new ReadableStream({
    pull(controller) {
      controller.enqueue(new Uint8Array([1, 2, 3]));
    },
    cancel(reason) {
      log.push(reason);
    },
  });

/**
 * The mistakes docs/retry.md lists as refused first under an aborted signal, each made fresh (a `Request`
 * may be consumed by the call it is given to), at a URL under `base` (a chain's first endpoint when `base`
 * is one). The signal goes in `init` (an `init` that is no object carries none: the case is the `init`).
 */
const mistakes = (base: string): Array<[string, () => Promise<Call> | Call]> => [
  // An input of the wrong kind.
  ["input a number", () => [42, {}]],
  ["input null", () => [null, {}]],
  ["input { url }", () => [{ url: `${base}/x` }, {}]],
  // An `init` of the wrong kind.
  ["init a number", () => [`${base}/x`, 5]],
  ["init a string", () => [`${base}/x`, "GET"]],
  // An invalid URL.
  ["invalid URL", () => ["http://[bad/x", {}]],
  ["relative URL", () => ["/x", {}]],
  ["invalid port", () => ["http://127.0.0.1:99999/x", {}]],
  ["user:pass@", () => [base.replace("http://", "http://u:p@"), {}]],
  // A bad method.
  ["method not a token", () => [`${base}/x`, { method: "GE T" }]],
  ["method CONNECT", () => [`${base}/x`, { method: "CONNECT" }]],
  ["method trace", () => [`${base}/x`, { method: "trace" }]],
  ["method TRACK", () => [`${base}/x`, { method: "TRACK" }]],
  // A bad header.
  ["header name with a space", () => [`${base}/x`, { headers: { "x a": "1" } }]],
  ["header value with LF", () => [`${base}/x`, { headers: { "x-a": "a\nb" } }]],
  ["header value above U+00FF", () => [`${base}/x`, { headers: { "x-a": "a\u0100b" } }]],
  ["headers null", () => [`${base}/x`, { headers: null }]],
  ["headers a string", () => [`${base}/x`, { headers: "x-a: 1" }]],
  ["a pair of three", () => [`${base}/x`, { headers: [["x-a", "1", "2"]] }]],
  ["a symbol key", () => [`${base}/x`, { headers: { [Symbol("k")]: "1" } }]],
  // A GET or HEAD with a body.
  ["GET with a body", () => [`${base}/x`, { body: "x" }]],
  ["GET with an empty body", () => [`${base}/x`, { body: "" }]],
  ["HEAD with a body", () => [`${base}/x`, { method: "HEAD", body: new Uint8Array(1) }]],
  // A keepalive stream.
  ["keepalive stream", () => [`${base}/x`, { method: "POST", body: source([]), duplex: "half", keepalive: true }]],
  // A bad platform field.
  ["cache bogus", () => [`${base}/x`, { cache: "bogus" }]],
  ["mode navigate", () => [`${base}/x`, { mode: "navigate" }]],
  ["cache only-if-cached (cors)", () => [`${base}/x`, { cache: "only-if-cached" }]],
  ["redirect bogus", () => [`${base}/x`, { redirect: "bogus" }]],
  ["credentials bogus", () => [`${base}/x`, { credentials: "bogus" }]],
  ["referrer no URL", () => [`${base}/x`, { referrer: "http://[x" }]],
  ["referrerPolicy bogus", () => [`${base}/x`, { referrerPolicy: "bogus" }]],
  ["duplex full", () => [`${base}/x`, { method: "POST", body: "x", duplex: "full" }]],
  ["window not null", () => [`${base}/x`, { window: {} }]],
  // A `Request` input, with what `init` adds.
  ["Request GET + init body", () => [new Request(`${base}/x`), { body: "x" }]],
  ["Request POST + init GET", () => [new Request(`${base}/x`, { method: "POST", body: "x" }), { method: "GET" }]],
  ["Request + init header with CR", () => [new Request(`${base}/x`), { headers: [["x-a", "a\rb"]] }]],
  ["Request + init cache bogus", () => [new Request(`${base}/x`), { cache: "bogus" }]],
  ["Request + init TRACE", () => [new Request(`${base}/x`), { method: "TRACE" }]],
  [
    "Request + init keepalive stream",
    () => [
      new Request(`${base}/x`, { method: "POST", body: "a" }),
      { keepalive: true, body: source([]), duplex: "half" },
    ],
  ],
  [
    "Request whose body was read",
    async () => {
      const request = new Request(`${base}/x`, { method: "POST", body: "abc" });
      await request.text();
      return [request, {}];
    },
  ],
  [
    "Request whose body a reader holds",
    () => {
      const request = new Request(`${base}/x`, { method: "POST", body: "abc" });
      request.body?.getReader();
      return [request, {}];
    },
  ],
];

/** `init` with the aborted signal, when it is an object (else as given: the mistake is the `init`). */
const withSignal = (init: unknown, signal: AbortSignal): unknown =>
  typeof init === "object" && init !== null ? { ...init, signal } : init;

const show = (error: unknown): string =>
  error === REASON ? "the abort's reason" : error instanceof TypeError ? "TypeError" : `other: ${String(error)}`;

/** The layers of every path, on one clock, with a total and an attempt timeout (timers that could be left). */
function layersOf(clock: TestClock): Record<string, Resilience> {
  const base = { clock, timeout: { total: 5_000, attempt: 1_000 }, breaker: { failureThreshold: 1 } };
  const chain = (hedge?: { delay: number }) =>
    fallback([
      {
        name: "ch",
        ...(hedge ? { hedge } : {}),
        endpoints: [
          { name: "p", url: `${A.base}/v1` },
          { name: "s", url: `${B.base}/v1`, transform: (req) => ({ ...req, url: req.url.replace(B.base, C.base) }) },
        ],
      },
    ]);
  return {
    plain: createResilience(base),
    chain: createResilience({ ...base, fallback: chain() }),
    hedge: createResilience({ ...base, fallback: chain({ delay: 10 }) }),
    degradation: createResilience({
      ...base,
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: { query: "steps" } } }] }),
    }),
    "chain + degradation": createResilience({
      ...base,
      fallback: chain({ delay: 10 }),
      degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: { query: "steps" } } }] }),
    }),
  };
}

describe("1. a signal already aborted and the caller's mistakes (docs/retry.md)", () => {
  it("Node's fetch, the reference: each listed mistake is its TypeError though the signal is aborted", async () => {
    const seen: string[] = [];
    for (const [name, make] of mistakes(`${A.base}/v1`)) {
      const [input, init] = await make();
      const error = await rejection(fetch(input as string, withSignal(init, gone()) as RequestInit));
      seen.push(`${name}: ${show(error)}`);
    }
    expect(seen.filter((line) => !line.endsWith(": TypeError"))).toEqual([]);
    expect(hits()).toBe(0);
  });

  it("the layer refuses each with a TypeError on every path: nothing sent, no event, no timer, no breaker, no budget", async () => {
    const clock = new TestClock();
    const seen: string[] = [];
    for (const [path, layer] of Object.entries(layersOf(clock))) {
      const recorder = recordEvents(layer);
      const tokens = layer.health().budget?.tokens;
      for (const [name, make] of mistakes(`${A.base}/v1`)) {
        const [input, init] = await make();
        const error = await rejection(layer.fetch(input as string, withSignal(init, gone()) as RequestInit));
        if (!(error instanceof TypeError)) seen.push(`${path}/${name}: ${show(error)}`);
        expect([path, name, clock.pending()]).toEqual([path, name, 0]);
      }
      expect([path, recorder.events.map((e) => e.type)]).toEqual([path, []]);
      const health = layer.health();
      expect([path, health.budget?.tokens, Object.keys(health.breakers), health.errorRate]).toEqual([
        path,
        tokens,
        [],
        0,
      ]);
      expect(layer.debugInfo().totals).toMatchObject({ calls: 0 });
    }
    expect(seen).toEqual([]);
    expect(hits()).toBe(0);
  });
});

describe("1. the signal a `Request` carries, and what only the layer refuses", () => {
  it("a `Request` whose own signal is aborted: its mistake in `init` first, else the reason (as fetch)", async () => {
    const layer = createResilience();
    const request = () => new Request(`${A.base}/x`, { signal: gone() });
    for (const f of [fetch, layer.fetch as typeof fetch]) {
      expect(show(await rejection(f(request(), { method: "TRACE" })))).toBe("TypeError");
      expect(show(await rejection(f(request(), { headers: { "x a": "1" } })))).toBe("TypeError");
      expect(show(await rejection(f(request())))).toBe("the abort's reason");
    }
    expect(hits()).toBe(0);
  });

  it("docs-silent: what fetch refuses only once it fetches, the layer refuses before the abort (ftp:, wss:, \\x01)", async () => {
    const layer = createResilience();
    const cases: Array<[string, RequestInit]> = [
      ["ftp://127.0.0.1/x", {}],
      ["wss://127.0.0.1/x", {}],
      [`${A.base}/x`, { headers: { "x-a": "a\x01b" } }],
    ];
    for (const [url, init] of cases) {
      const theirs = show(await rejection(fetch(url, { ...init, signal: gone() })));
      const mine = show(await rejection(layer.fetch(url, { ...init, signal: gone() })));
      expect([url, theirs, mine]).toEqual([url, "the abort's reason", "TypeError"]);
    }
    expect(hits()).toBe(0);
  });
});

describe("1. what is looked at only once the call goes on (docs/retry.md: a symbol, shared bytes)", () => {
  const kinds: Array<[string, () => RequestInit]> = [
    ["a symbol body", () => ({ method: "POST", body: Symbol("s") as unknown as BodyInit })],
    ["shared bytes", () => ({ method: "POST", body: new Uint8Array(new SharedArrayBuffer(4)) as never })],
    ["resizable bytes", () => ({ method: "POST", body: resizable() })],
  ];

  it("aborted: the layer rejects with the signal's reason on every path (fetch: its TypeError); live: the TypeError", async () => {
    const clock = new TestClock();
    const url = `${A.base}/v1/x`;
    for (const [name, make] of kinds) {
      // A URL, and a `Request` whose body `init` replaces.
      for (const input of [() => url, () => new Request(url, { method: "PUT", body: "own" })]) {
        expect([name, show(await rejection(fetch(input(), { ...make(), signal: gone() })))]).toEqual([
          name,
          "TypeError",
        ]);
        for (const [path, layer] of Object.entries(layersOf(clock))) {
          const recorder = recordEvents(layer);
          const aborted = await rejection(layer.fetch(input(), { ...make(), signal: gone() }));
          expect([path, name, show(aborted)]).toEqual([path, name, "the abort's reason"]);
          const live = await rejection(layer.fetch(input(), make()));
          expect([path, name, show(live)]).toEqual([path, name, "TypeError"]);
          expect([path, name, recorder.events.length, clock.pending()]).toEqual([path, name, 0, 0]);
        }
      }
    }
    expect(hits()).toBe(0);
  });
});

describe("1. a `Request`'s body when the abort's reason wins", () => {
  it("its stream is cancelled with the reason on every path, as fetch cancels it; one init replaces is left alone", async () => {
    const clock = new TestClock();
    const url = `${A.base}/v1/x`;
    const post = (log: unknown[]) =>
      new Request(url, { method: "POST", body: source(log), duplex: "half" } as RequestInit);
    const cases: Array<[string, (log: unknown[], f: typeof fetch) => Promise<unknown>]> = [
      ["its own body", (log, f) => f(post(log), { signal: gone() })],
      ["init body: null", (log, f) => f(post(log), { body: null, signal: gone() })],
      ["a keepalive Request", (log, f) => f(post(log), { keepalive: true, signal: gone() })],
      ["init gives another body", (log, f) => f(post(log), { body: "other", signal: gone() })],
      ["init's mistake wins", (log, f) => f(post(log), { headers: { "x a": "1" }, signal: gone() })],
    ];
    const outcome = async (f: typeof fetch): Promise<string[]> => {
      const out: string[] = [];
      for (const [name, call] of cases) {
        const log: unknown[] = [];
        const error = await rejection(call(log, f));
        await new Promise((resolve) => setImmediate(resolve));
        out.push(
          `${name}: ${show(error)}, ${log.length === 0 ? "left alone" : log[0] === REASON ? "cancelled with the reason" : "cancelled"}`,
        );
      }
      return out;
    };
    const reference = await outcome(fetch);
    expect(reference).toEqual([
      "its own body: the abort's reason, cancelled with the reason",
      "init body: null: the abort's reason, cancelled with the reason",
      "a keepalive Request: the abort's reason, cancelled with the reason",
      "init gives another body: the abort's reason, left alone",
      "init's mistake wins: TypeError, left alone",
    ]);
    for (const [path, layer] of Object.entries(layersOf(clock))) {
      expect([path, await outcome(layer.fetch as typeof fetch)]).toEqual([path, reference]);
    }
    // Through ky, whose `Request` carries the stream given as its body.
    const api = createClient({ resilience: createResilience() });
    const log: unknown[] = [];
    const error = await rejection(api.post(url, { body: source(log), signal: gone() }));
    await new Promise((resolve) => setImmediate(resolve));
    expect([show(error), log]).toEqual(["the abort's reason", [REASON]]);
    expect(hits()).toBe(0);
  });

  it("a body of bytes: the Request reads as used afterwards, as after fetch", async () => {
    const layer = createResilience();
    const mine = new Request(`${A.base}/x`, { method: "POST", body: "abc" });
    const theirs = new Request(`${A.base}/x`, { method: "POST", body: "abc" });
    expect(show(await rejection(layer.fetch(mine, { signal: gone() })))).toBe("the abort's reason");
    expect(show(await rejection(fetch(theirs, { signal: gone() })))).toBe("the abort's reason");
    expect(mine.bodyUsed).toBe(theirs.bodyUsed);
  });
});

describe("1. other entries: ky, resilientProxy, data: URLs", () => {
  it("ky client: its mistakes and the layer's are TypeErrors under an aborted signal; the abort alone its reason", async () => {
    const layer = createResilience({ breaker: { failureThreshold: 1 } });
    const recorder = recordEvents(layer);
    const api = createClient({ resilience: layer });
    const url = `${A.base}/x`;
    const calls: Array<[string, () => Promise<unknown>]> = [
      [
        "header value with \\x01 (Node's Headers takes it, the layer does not)",
        () => api.get(url, { headers: { "x-a": "a\x01b" }, signal: gone() }),
      ],
      ["header name", () => api.get(url, { headers: { "x a": "1" }, signal: gone() })],
      ["CONNECT", () => api(url, { method: "CONNECT", signal: gone() })],
      ["GET with a body", () => api.get(url, { body: "x", signal: gone() })],
      ["invalid URL", () => api.get("http://[bad/x", { signal: gone() })],
      ["cache bogus", () => api.get(url, { cache: "bogus" as RequestCache, signal: gone() })],
      ["keepalive stream", () => api.post(url, { body: source([]), keepalive: true, signal: gone() })],
    ];
    // ky throws some at once (its own `Request` refuses them): the same to a caller that awaits.
    for (const [name, call] of calls)
      expect([name, show(await rejection(Promise.resolve().then(call)))]).toEqual([name, "TypeError"]);
    expect(show(await rejection(api.get(url, { signal: gone() })))).toBe("the abort's reason");
    expect(recorder.events).toEqual([]);
    expect(hits()).toBe(0);
  });

  it("resilientProxy: a client gone before the call: rejects with its reason, its body cancelled, nothing sent", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/up", upstream: `${A.base}/v1` },
        {
          path: "/ch",
          chain: {
            name: "pc",
            endpoints: [
              { name: "p", url: `${B.base}/v1` },
              { name: "s", url: `${C.base}/v1` },
            ],
          },
        },
      ],
    });
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    for (const path of ["/up/x", "/ch/x"]) {
      const log: unknown[] = [];
      const request = new Request(`http://proxy.test${path}`, {
        method: "POST",
        body: source(log),
        duplex: "half",
        signal: gone(),
      } as RequestInit);
      const error = await rejection(proxy.fetch(request, {}, ctx));
      await new Promise((resolve) => setImmediate(resolve));
      expect([path, show(error), log]).toEqual([path, "the abort's reason", [REASON]]);
    }
    expect(hits()).toBe(0);
  });

  it("data: URLs go to fetch as they are: its TypeError for a mistake, else the reason; no event", async () => {
    const layer = createResilience({
      fallback: fallback([{ name: "ch", endpoints: [{ name: "p", url: `${A.base}/v1` }] }]),
    });
    const recorder = recordEvents(layer);
    for (const init of [
      { method: "CONNECT" },
      { headers: { "x a": "1" } },
      { body: "x" },
      { cache: "bogus" },
    ] as RequestInit[]) {
      const mine = await rejection(layer.fetch("data:,x", { ...init, signal: gone() }));
      const theirs = await rejection(fetch("data:,x", { ...init, signal: gone() }));
      expect([init, show(mine)]).toEqual([init, show(theirs)]);
      expect(show(mine)).toBe("TypeError");
    }
    expect(show(await rejection(layer.fetch("data:,x", { signal: gone() })))).toBe("the abort's reason");
    expect(recorder.events).toEqual([]);
  });
});

describe("1. in Chromium: the page's build against the browser's own fetch", () => {
  let opened: LibraryPage | undefined;
  const seen: string[] = [];
  beforeAll(async () => {
    opened = await openLibraryPage((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end("ok");
    });
  }, 60_000);
  afterAll(async () => {
    await opened?.close();
  });

  it("each mistake, aborted: the browser's fetch and the layer (plain, chain, degradation) reject alike", async () => {
    const page = (opened as LibraryPage).page;
    const out = await page.evaluate(async () => {
      const { createResilience, fallback, degradation } = (window as unknown as { lib: PageLib }).lib;
      const reason = new Error("gone");
      const gone = () => {
        const controller = new AbortController();
        controller.abort(reason);
        return controller.signal;
      };
      const stream = () => new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array([1])) });
      const url = `${location.origin}/v1/x`;
      const used = async () => {
        const request = new Request(url, { method: "POST", body: "abc" });
        await request.text();
        return request;
      };
      const cases: Array<[string, () => Promise<[unknown, unknown]> | [unknown, unknown]]> = [
        ["input a number", () => [42, {}]],
        ["input { url }", () => [{ url }, {}]],
        ["init a number", () => [url, 5]],
        ["invalid URL", () => ["http://[bad/x", {}]],
        ["invalid port", () => ["http://127.0.0.1:99999/x", {}]],
        ["user:pass@", () => [url.replace("http://", "http://u:p@"), {}]],
        ["method not a token", () => [url, { method: "GE T" }]],
        ["method CONNECT", () => [url, { method: "CONNECT" }]],
        ["method trace", () => [url, { method: "trace" }]],
        ["header name with a space", () => [url, { headers: { "x a": "1" } }]],
        ["header value with LF", () => [url, { headers: { "x-a": "a\nb" } }]],
        ["header value above U+00FF", () => [url, { headers: { "x-a": "a\u0100b" } }]],
        ["headers null", () => [url, { headers: null }]],
        ["GET with a body", () => [url, { body: "x" }]],
        ["HEAD with a body", () => [url, { method: "HEAD", body: "x" }]],
        ["keepalive stream", () => [url, { method: "POST", body: stream(), duplex: "half", keepalive: true }]],
        ["cache bogus", () => [url, { cache: "bogus" }]],
        ["mode navigate", () => [url, { mode: "navigate" }]],
        ["redirect bogus", () => [url, { redirect: "bogus" }]],
        ["Request + init TRACE", () => [new Request(url), { method: "TRACE" }]],
        ["Request POST + init GET", () => [new Request(url, { method: "POST", body: "x" }), { method: "GET" }]],
        ["Request whose body was read", async () => [await used(), {}]],
        ["a symbol body", () => [url, { method: "POST", body: Symbol("s") }]],
        // A page that is not cross-origin isolated has no SharedArrayBuffer: resizable bytes stand for them.
        [
          "resizable bytes",
          () => {
            const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
            return [url, { method: "POST", body: new Resizable(4, { maxByteLength: 8 }) }];
          },
        ],
      ];
      const layers = {
        plain: createResilience({ timeout: { total: 5_000 } }),
        chain: createResilience({
          fallback: fallback([
            {
              name: "ch",
              hedge: { delay: 10 },
              endpoints: [
                { name: "p", url: `${location.origin}/v1` },
                { name: "s", url: `${location.origin}/v2` },
              ],
            },
          ]),
        }),
        degradation: createResilience({ degradation: degradation({}) }),
      };
      const kind = async (call: () => Promise<unknown>): Promise<string> => {
        try {
          await call();
          return "resolved";
        } catch (error) {
          return error === reason ? "reason" : error instanceof TypeError ? "TypeError" : `other ${String(error)}`;
        }
      };
      const rows: string[] = [];
      for (const [name, make] of cases) {
        const withSignal = (init: unknown) =>
          typeof init === "object" && init !== null ? { ...init, signal: gone() } : init;
        const [i0, n0] = await make();
        const row = [`${name}: fetch ${await kind(() => fetch(i0 as string, withSignal(n0) as RequestInit))}`];
        for (const [path, layer] of Object.entries(layers)) {
          const [input, init] = await make();
          row.push(`${path} ${await kind(() => layer.fetch(input as string, withSignal(init) as RequestInit))}`);
        }
        rows.push(row.join(", "));
      }
      return rows;
    });
    const alike = (row: string) => new Set(row.split(", ").map((cell) => cell.split(" ").pop())).size === 1;
    expect(out.filter((row) => !alike(row))).toEqual([
      // The layer refuses what fetch reads as a relative URL in a page (documented: "refused with a TypeError").
      "input a number: fetch reason, plain TypeError, chain TypeError, degradation TypeError",
      "input { url }: fetch reason, plain TypeError, chain TypeError, degradation TypeError",
      // Docs-silent: the page's build leaves the platform fields to the browser, which never sees an aborted call.
      "cache bogus: fetch TypeError, plain reason, chain reason, degradation reason",
      "mode navigate: fetch TypeError, plain reason, chain reason, degradation reason",
      "redirect bogus: fetch TypeError, plain reason, chain reason, degradation reason",
      // Documented: a body's kind is looked at only once the call goes on.
      "a symbol body: fetch TypeError, plain reason, chain reason, degradation reason",
      "resizable bytes: fetch TypeError, plain reason, chain reason, degradation reason",
    ]);
    // Every other listed mistake: the TypeError everywhere.
    expect(out.filter(alike).every((row) => row.endsWith("degradation TypeError"))).toBe(true);
    expect(out.filter(alike).length).toBe(17);
    expect(seen.filter((line) => !line.endsWith("/favicon.ico"))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. A chain endpoint whose `transform` sends it to a host whose breaker is open.
// ---------------------------------------------------------------------------------------------------------------

type Upstream = ReturnType<typeof httpUpstream>;
const answer =
  (status: number, body = "x") =>
  (hit: Hit) => {
    hit.res.writeHead(status);
    hit.res.end(body);
  };
/** Holds every request open until the returned function is called (then answers `status`). */
function holding(server: Upstream, status = 200): () => void {
  const held: Hit[] = [];
  server.on((hit) => held.push(hit));
  return () => {
    for (const hit of held.splice(0)) answer(status, "late")(hit);
  };
}
/** Opens `server`'s host breaker on `layer` (failureThreshold 1) with one 500, then forgets the request. */
async function openHost(layer: Resilience, server: Upstream): Promise<void> {
  server.on(answer(500));
  await (await layer.fetch(`${server.base}/open`)).text();
  expect(layer.health().breakers[server.host]?.state).toBe("open");
  server.reset();
}
/** The endpoint `s`, at `target`: declared there, or declared at B and sent there by its `transform`. */
type Way = "declared" | "transform";
const WAYS: Way[] = ["declared", "transform"];
function endpointAt(name: string, target: Upstream, way: Way, via: Upstream = B): FallbackEndpoint {
  return way === "declared"
    ? { name, url: `${target.base}/v1` }
    : {
        name,
        url: `${via.base}/v1`,
        transform: (req: EndpointRequest) => ({ ...req, url: req.url.replace(via.base, target.base) }),
      };
}
const fallbacks = (r: Resilience) => r.fallback?.chain("ch").statistics().fallbacks ?? {};
const eventsOf = (recorder: ReturnType<typeof recordEvents>) =>
  recorder.of("fallback").map((e) => `${e.from} -> ${e.next}: ${e.reason}`);

describe("2. passed over for the open host its transform sends it to (docs/fallback.md)", () => {
  const layerOf = (way: Way, options: { order?: "adaptive"; third?: boolean } = {}) =>
    createResilience({
      // Time stands still: durations and latencies are 0 on both ways.
      clock: new TestClock(),
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          ...(options.order ? { order: options.order } : {}),
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            endpointAt("s", C, way),
            ...(options.third ? [{ name: "t", url: `${D.base}/v1` }] : []),
          ],
        },
      ]),
    });

  it("plain chain: nothing sent, 'circuit open', not counted; the answer and its info as for the declared one", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      for (const third of [false, true]) {
        const layer = layerOf(way, { third });
        await openHost(layer, C);
        A.on(answer(503));
        D.on(answer(200, "d"));
        const recorder = recordEvents(layer);
        const response = await layer.fetch(`${A.base}/v1/x?q=1`);
        out[`${way}${third ? " + t" : ""}`] = {
          status: response.status,
          text: await response.text(),
          info: getResilienceInfo(response),
          events: eventsOf(recorder),
          s: fallbacks(layer).s,
          sent: [B.hits.length, C.hits.length],
          tokens: layer.health().budget?.tokens,
        };
        A.reset();
        D.reset();
      }
    }
    expect(out.transform).toEqual(out.declared);
    expect(out["transform + t"]).toEqual(out["declared + t"]);
    expect(out.declared).toMatchObject({
      status: 503,
      info: { endpoint: "p", fromFallback: false, attempts: 1 },
      events: ["p -> s: status 503", "s -> undefined: circuit open"],
      s: { calls: 0 },
      sent: [0, 0],
    });
    expect(out["declared + t"]).toMatchObject({
      status: 200,
      text: "d",
      info: { endpoint: "t", fromFallback: true, attempts: 2 },
      events: ["p -> s: status 503", "s -> t: circuit open"],
      s: { calls: 0 },
      sent: [0, 0],
    });
  });

  it('order: "adaptive": never ranked down for it; the order and statistics as for the declared one', async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const layer = layerOf(way, { order: "adaptive", third: true });
      await openHost(layer, C);
      A.on(answer(503));
      D.on(answer(200));
      const orders: string[][] = [];
      for (let i = 0; i < 4; i++) {
        orders.push(layer.fallback?.chain("ch").ordered() ?? []);
        await (await layer.fetch(`${A.base}/v1/x`)).text();
      }
      out[way] = { orders, statistics: layer.fallback?.chain("ch").statistics(), sent: C.hits.length + B.hits.length };
      A.reset();
      D.reset();
    }
    expect(out.transform).toMatchObject({ statistics: { fallbacks: { s: { calls: 0 } } }, sent: 0 });
    expect({ ...(out.transform as object), statistics: undefined }).toEqual({
      ...(out.declared as object),
      statistics: undefined,
    });
    const stats = (way: Way) =>
      (out[way] as { statistics: { fallbacks: object; overallSuccessRate: number } }).statistics;
    expect(stats("transform").overallSuccessRate).toBe(stats("declared").overallSuccessRate);
    expect(Object.fromEntries(Object.entries(stats("transform").fallbacks).map(([k, v]) => [k, v.calls]))).toEqual(
      Object.fromEntries(Object.entries(stats("declared").fallbacks).map(([k, v]) => [k, v.calls])),
    );
  });
});

describe("2. hedged chains", () => {
  const hedgedLayer = (clock: TestClock, endpoints: FallbackEndpoint[]) =>
    createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", hedge: { delay: 100 }, endpoints }]),
    });

  it("a hedge passed over this way starts the next endpoint at once; the winner aborts the primary (p, s, t)", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const layer = hedgedLayer(clock, [
        { name: "p", url: `${A.base}/v1` },
        endpointAt("s", C, way),
        { name: "t", url: `${D.base}/v1` },
      ]);
      await openHost(layer, C);
      const release = holding(A);
      D.on(answer(200, "d"));
      const recorder = recordEvents(layer);
      const call = layer.fetch(`${A.base}/v1/x`);
      const primary = await A.nth(1);
      await clock.advance(100);
      const response = await call;
      await primary.closed;
      out[way] = {
        status: response.status,
        text: await response.text(),
        endpoint: getResilienceInfo(response)?.endpoint,
        at: clock.now(),
        sent: [A.hits.length, B.hits.length, C.hits.length, D.hits.length],
        calls: Object.fromEntries(Object.entries(fallbacks(layer)).map(([k, v]) => [k, [v.calls, v.successes]])),
        pending: clock.pending(),
        events: eventsOf(recorder),
      };
      release();
      A.reset();
      D.reset();
    }
    expect(out.transform).toMatchObject({
      status: 200,
      text: "d",
      endpoint: "t",
      at: 100,
      sent: [1, 0, 0, 1],
      calls: { p: [1, 0], s: [0, 0], t: [1, 1] },
      pending: 0,
    });
    expect({ ...(out.transform as object), events: undefined }).toEqual({
      ...(out.declared as object),
      events: undefined,
    });
    // `next`: for one passed over for its open breaker, the endpoint next in line, else a hedge already running
    // (docs/health-and-events.md), as for the declared one. It named the running p until the forty-seventh
    // session's lastfixes run pinned it.
    expect((out.transform as { events: string[] }).events).toEqual(["s -> t: circuit open"]);
    expect((out.declared as { events: string[] }).events).toEqual(["s -> t: circuit open"]);
  });

  it("with nothing left to start, the call waits for the primary, which answers; nothing is stuck (p, s)", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const layer = hedgedLayer(clock, [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way)]);
      await openHost(layer, C);
      const release = holding(A);
      const recorder = recordEvents(layer);
      const call = layer.fetch(`${A.base}/v1/x`);
      await A.nth(1);
      await clock.advance(100);
      await clock.advance(1_000);
      release();
      const response = await call;
      out[way] = {
        status: response.status,
        text: await response.text(),
        endpoint: getResilienceInfo(response)?.endpoint,
        sent: [A.hits.length, B.hits.length, C.hits.length],
        calls: Object.fromEntries(Object.entries(fallbacks(layer)).map(([k, v]) => [k, [v.calls, v.successes]])),
        pending: clock.pending(),
        events: eventsOf(recorder),
      };
      A.reset();
    }
    expect(out.transform).toMatchObject({
      status: 200,
      text: "late",
      endpoint: "p",
      sent: [1, 0, 0],
      calls: { p: [1, 1], s: [0, 0] },
      pending: 0,
    });
    expect({ ...(out.transform as object), events: undefined }).toEqual({
      ...(out.declared as object),
      events: undefined,
    });
  });

  it("the first endpoint passed over this way: the next one starts at once, not after the hedge's delay", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const layer = hedgedLayer(clock, [endpointAt("p", C, way, A), { name: "s", url: `${D.base}/v1` }]);
      await openHost(layer, C);
      D.on(answer(200, "d"));
      const recorder = recordEvents(layer);
      // The chain is called at its first endpoint's declared `url`.
      const response = await layer.fetch(`${way === "declared" ? C.base : A.base}/v1/x`);
      out[way] = {
        status: response.status,
        at: clock.now(),
        endpoint: getResilienceInfo(response)?.endpoint,
        sent: [A.hits.length, C.hits.length, D.hits.length],
        events: eventsOf(recorder),
        p: fallbacks(layer).p?.calls,
      };
      A.reset();
      D.reset();
    }
    expect(out.transform).toEqual(out.declared);
    expect(out.transform).toEqual({
      status: 200,
      at: 0,
      endpoint: "s",
      sent: [0, 0, 1],
      events: ["p -> s: circuit open"],
      p: 0,
    });
  });
});

/** A KV binding over a map. */
class MapKv implements KvNamespaceLike {
  readonly values = new Map<string, { value: string; metadata: unknown }>();
  async getWithMetadata<M>(key: string): Promise<{ value: string | null; metadata: M | null }> {
    const entry = this.values.get(key);
    return { value: entry?.value ?? null, metadata: (entry?.metadata ?? null) as M | null };
  }
  async put(key: string, value: string, options?: { metadata?: unknown }): Promise<void> {
    this.values.set(key, { value, metadata: options?.metadata });
  }
}
/** A context that keeps what it is given to wait for. */
const keepingCtx = () => {
  const promises: Promise<unknown>[] = [];
  return { promises, waitUntil: (promise: Promise<unknown>) => void promises.push(promise.catch(() => {})) };
};
const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe("2. a chain on a shared store: the host another layer opened", () => {
  const stores = (clock: TestClock): Record<string, () => BreakerStore> => {
    const kv = new MapKv();
    const ns = objectNamespace(clock);
    return {
      memoryStore: () => memoryStore(),
      kvStore: () => kvStore(kv, { ctx: keepingCtx(), clock, publishJitter: 0 }),
      durableObjectStore: () => durableObjectStore(ns, { ctx: keepingCtx(), clock }),
    };
  };

  it("memoryStore, kvStore, durableObjectStore: passed over, 'circuit open', not counted, as the declared one", async () => {
    const out: Record<string, unknown> = {};
    for (const kind of ["memoryStore", "kvStore", "durableObjectStore"]) {
      for (const way of WAYS) {
        const clock = new TestClock(Date.parse("2026-12-01T00:00:00Z"));
        const make = stores(clock)[kind] as () => BreakerStore;
        const shared = kind === "memoryStore" ? make() : undefined;
        const opener = createResilience({
          clock,
          breaker: { failureThreshold: 1 },
          retry: { maxAttempts: 1 },
          store: shared ?? make(),
        });
        const store = shared ?? make();
        const layer = createResilience({
          clock,
          breaker: { failureThreshold: 1 },
          retry: { maxAttempts: 1 },
          store,
          fallback: fallback([
            { name: "ch", endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way)] },
          ]),
        });
        await openHost(opener, C);
        // What the other layer wrote, read by this one's store in the background, as a store reads.
        for (let i = 0; i < 10 && store.peek(C.host, clock.now())?.state !== "open"; i++) {
          await turns();
          await clock.advance(0);
        }
        expect([kind, store.peek(C.host, clock.now())?.state]).toEqual([kind, "open"]);
        A.on(answer(503));
        const recorder = recordEvents(layer);
        const response = await layer.fetch(`${A.base}/v1/x`);
        out[`${kind} ${way}`] = {
          status: response.status,
          events: eventsOf(recorder),
          s: fallbacks(layer).s?.calls,
          sent: [B.hits.length, C.hits.length],
          c: layer.health().breakers[C.host]?.state,
        };
        await response.text();
        A.reset();
      }
      expect([kind, out[`${kind} transform`]]).toEqual([kind, out[`${kind} declared`]]);
      expect([kind, out[`${kind} transform`]]).toEqual([
        kind,
        { status: 503, events: ["p -> s: status 503", "s -> undefined: circuit open"], s: 0, sent: [0, 0], c: "open" },
      ]);
    }
  });
});

describe("2. a transform to a half-open host: only open passes over", () => {
  const layerOf = (clock: TestClock, way: Way) =>
    createResilience({
      clock,
      breaker: { failureThreshold: 1, successThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([{ name: "ch", endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way)] }]),
    });

  it("past its open spell: the call goes there as its probe, which closes it, as the declared one's does", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const layer = layerOf(clock, way);
      await openHost(layer, C);
      await clock.advance(1_000);
      expect(layer.health().breakers[C.host]?.state).toBe("half_open");
      A.on(answer(503));
      C.on(answer(200, "c"));
      const recorder = recordEvents(layer);
      const response = await layer.fetch(`${A.base}/v1/x`);
      out[way] = {
        status: response.status,
        text: await response.text(),
        endpoint: getResilienceInfo(response)?.endpoint,
        events: eventsOf(recorder),
        s: fallbacks(layer).s,
        c: [C.hits.map((h) => h.path), layer.health().breakers[C.host]?.state],
      };
      A.reset();
      C.reset();
    }
    expect(out.transform).toEqual(out.declared);
    expect(out.transform).toMatchObject({
      status: 200,
      text: "c",
      endpoint: "s",
      events: ["p -> s: status 503"],
      c: [["/v1/x"], "closed"],
    });
  });

  it("half-open with its probe slot taken: passed over, as the declared one is (both ways)", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock();
      const layer = layerOf(clock, way);
      await openHost(layer, C);
      await clock.advance(1_000);
      const release = holding(C);
      const probe = layer.fetch(`${C.base}/probe`);
      await C.nth(1);
      A.on(answer(503));
      const recorder = recordEvents(layer);
      const response = await layer.fetch(`${A.base}/v1/x`);
      out[way] = {
        status: response.status,
        endpoint: getResilienceInfo(response)?.endpoint,
        events: eventsOf(recorder).map((e) => e.replace(/"[^"]+"/, "C").replace(/until .*/, "…")),
        s: fallbacks(layer).s?.calls,
        c: C.hits.map((h) => h.path),
      };
      await response.text();
      release();
      await (await probe).text();
      A.reset();
      C.reset();
    }
    expect(out.transform).toEqual(out.declared);
    // Recorded here first as counted, its reason the refusal's text; since the forty-eighth session a
    // busy half-open breaker passes the endpoint over as an open one does (docs/fallback.md): not counted.
    expect(out.transform).toEqual({
      status: 503,
      endpoint: "p",
      events: ["p -> s: status 503", "s -> undefined: circuit open"],
      s: 0,
      c: ["/probe"],
    });
  });
});

describe("2. keyless POSTs, a Request input, degradation rules", () => {
  const layerOf = (way: Way, level?: "low") => {
    const layer = createResilience({
      clock: new TestClock(),
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      ...(level
        ? { degradation: degradation({ rules: [{ match: `${A.base}/v1`, params: { steps: { query: "steps" } } }] }) }
        : {}),
      fallback: fallback([
        {
          name: "ch",
          endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way), { name: "t", url: `${D.base}/v1` }],
        },
      ]),
    });
    if (level) layer.degradation?.setLevel(level);
    return layer;
  };
  const calls: Array<[string, () => [string | Request, RequestInit | undefined], "low" | undefined]> = [
    ["keyless POST", () => [`${A.base}/v1/x`, { method: "POST", body: '{"a":1}' }], undefined],
    [
      "Request input (PUT)",
      () => [new Request(`${A.base}/v1/x`, { method: "PUT", body: "put" }), undefined],
      undefined,
    ],
    ["degradation rule (low)", () => [`${A.base}/v1/x?steps=50`, undefined], "low"],
  ];

  it("each: passed over, 'circuit open', not counted, the next endpoint served with the caller's request", async () => {
    const out: Record<string, unknown> = {};
    for (const [name, call, level] of calls) {
      for (const way of WAYS) {
        const layer = layerOf(way, level);
        await openHost(layer, C);
        A.on(answer(503));
        D.on(answer(200, "d"));
        const recorder = recordEvents(layer);
        const [input, init] = call();
        const response = await layer.fetch(input, init);
        out[`${name} ${way}`] = {
          status: response.status,
          endpoint: getResilienceInfo(response)?.endpoint,
          events: eventsOf(recorder),
          s: fallbacks(layer).s?.calls,
          sent: [B.hits.length, C.hits.length],
          t: D.hits.map((h) => `${h.method} ${h.path} ${h.body}`),
        };
        await response.text();
        A.reset();
        D.reset();
      }
      expect([name, out[`${name} transform`]]).toEqual([name, out[`${name} declared`]]);
      expect([name, out[`${name} transform`]]).toMatchObject([
        name,
        { status: 200, endpoint: "t", events: ["p -> s: status 503", "s -> t: circuit open"], s: 0, sent: [0, 0] },
      ]);
    }
    expect(out["keyless POST transform"]).toMatchObject({ t: ['POST /v1/x {"a":1}'] });
    expect(out["Request input (PUT) transform"]).toMatchObject({ t: ["PUT /v1/x put"] });
    expect(out["degradation rule (low) transform"]).toMatchObject({ t: ["GET /v1/x?steps=20 "] });
  });
});

describe("2. a platform's refusal, then an endpoint passed over this way (docs/retry.md)", () => {
  it("the call rejects with fetch's TypeError, counted by nothing, as with the declared one", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const layer = createResilience({
        clock: new TestClock(),
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        fallback: fallback([{ name: "ch", endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, way)] }]),
      });
      await openHost(layer, C);
      const recorder = recordEvents(layer);
      const totals = layer.debugInfo().totals;
      // A header Node's fetch will not send: refused when the transport is called, nothing sent.
      const error = await rejection(layer.fetch(`${A.base}/v1/x`, { headers: { "keep-alive": "timeout=5" } }));
      out[way] = {
        error: show(error),
        events: eventsOf(recorder).map((e) => e.replace(/: TypeError.*/, ": TypeError")),
        calls: Object.values(fallbacks(layer)).map((v) => v.calls),
        runs: layer.fallback?.chain("ch").statistics().overallSuccessRate,
        totals: [totals, layer.debugInfo().totals],
        sent: hits(),
      };
    }
    expect(out.transform).toEqual(out.declared);
    const same = { calls: 1, failures: 1 };
    expect(out.transform).toMatchObject({ error: "TypeError", calls: [0, 0], totals: [same, same], sent: 0 });
  });
});

describe("2. every endpoint passed over this way", () => {
  const endpoints = (way: Way) => [endpointAt("p", C, way, A), endpointAt("s", D, way, B)];
  const callUrl = (way: Way) => `${way === "declared" ? C.base : A.base}/v1/x`;

  it("the call's error, events, health() and statistics are the declared chain's", async () => {
    const out: Record<string, unknown> = {};
    for (const way of WAYS) {
      const clock = new TestClock(Date.parse("2026-12-01T00:00:00Z"));
      const layer = createResilience({
        clock,
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        fallback: fallback([{ name: "ch", endpoints: endpoints(way) }]),
      });
      await openHost(layer, C);
      await openHost(layer, D);
      await clock.advance(1_000);
      const recorder = recordEvents(layer);
      const tokens = layer.health().budget?.tokens;
      const error = (await rejection(layer.fetch(callUrl(way)))) as FallbackExhaustedError;
      const health = layer.health();
      out[way] = {
        error: [isFallbackExhaustedError(error), error.message, String(error.cause)],
        errors: Object.entries(error.errors).map(([name, e]) => [name, isCircuitOpenError(e) && e.retryAt, String(e)]),
        events: recorder.events.map((e) =>
          e.type === "fallback"
            ? `fallback ${e.from} -> ${e.next}: ${e.reason}`
            : `${e.type} ${JSON.stringify({ ...e, url: undefined })}`,
        ),
        breakers: Object.fromEntries(Object.entries(health.breakers).map(([k, v]) => [k, v.state])),
        statistics: health.fallback.ch,
        tokens: [tokens, health.budget?.tokens],
        errorRate: health.errorRate,
        totals: layer.debugInfo().totals,
        sent: hits(),
      };
    }
    expect(out.transform).toEqual(out.declared);
    expect(out.transform).toMatchObject({
      errors: [
        ["p", Date.parse("2026-12-01T00:00:30Z"), expect.stringContaining(C.host)],
        ["s", Date.parse("2026-12-01T00:00:30Z"), expect.stringContaining(D.host)],
      ],
      statistics: { fallbacks: { p: { calls: 0 }, s: { calls: 0 } } },
      sent: 0,
    });
  });

  it("resilientProxy: 503 with Retry-After for either way, nothing sent", async () => {
    const out: Record<string, unknown> = {};
    const ctx = { waitUntil() {}, passThroughOnException() {} };
    for (const way of WAYS) {
      const clock = new TestClock(Date.parse("2026-12-01T00:00:00Z"));
      const proxy = resilientProxy({
        resilience: { clock, breaker: { failureThreshold: 1 }, retry: { maxAttempts: 1 } },
        routes: [
          { path: "/c", upstream: C.base },
          { path: "/d", upstream: D.base },
          { path: "/ch", chain: { name: "pc", endpoints: endpoints(way) } },
        ],
      });
      C.on(answer(500));
      D.on(answer(500));
      for (const path of ["/c/open", "/d/open"])
        await (await proxy.fetch(new Request(`http://proxy.test${path}`), {}, ctx)).text();
      C.reset();
      D.reset();
      await clock.advance(10_000);
      const response = await proxy.fetch(new Request("http://proxy.test/ch/x"), {}, ctx);
      out[way] = [response.status, response.headers.get("retry-after"), await response.text(), hits()];
    }
    expect(out.transform).toEqual(out.declared);
    expect(out.transform).toEqual([503, "20", '{"error":"upstream circuit open"}', 0]);
  });
});

describe("2. the breaker asked after the transform ran (defect 1)", () => {
  /** A `transform` that waits for `gate`, then sends the call to `target`'s host (or keeps its URL). */
  const slow = (gate: Promise<void>, from: Upstream, target: Upstream) => async (req: EndpointRequest) => {
    await gate;
    return { ...req, url: req.url.replace(from.base, target.base) };
  };
  const gated = () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { gate, open };
  };

  /** p's slow transform sends it to `target`, whose breaker opens while the transform runs; s answers 200. */
  async function openedMeanwhile(target: Upstream) {
    const { gate, open } = gated();
    const layer = createResilience({
      clock: new TestClock(),
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          endpoints: [
            { name: "p", url: `${A.base}/v1`, transform: slow(gate, A, target) },
            { name: "s", url: `${D.base}/v1` },
          ],
        },
      ]),
    });
    D.on(answer(200, "d"));
    const recorder = recordEvents(layer);
    const call = layer.fetch(`${A.base}/v1/x`);
    await openHost(layer, target);
    open();
    const response = await call;
    await response.text();
    return {
      status: response.status,
      events: eventsOf(recorder).map((e) => e.replace(/"[^"]+"/, "HOST").replace(/until .*/, "…")),
      p: fallbacks(layer).p?.calls,
      sent: target.hits.length,
    };
  }

  it("the reference: a transform to another host, opened while it ran, passes the endpoint over", async () => {
    expect(await openedMeanwhile(C)).toEqual({ status: 200, events: ["p -> s: circuit open"], p: 0, sent: 0 });
  });

  it("a transform that keeps its URL, whose host opened while it ran: passed over, not counted", async () => {
    // Observed: `p -> s: CircuitOpenError: circuit for HOST is open …`, p counted (calls 1).
    expect(await openedMeanwhile(A)).toEqual({ status: 200, events: ["p -> s: circuit open"], p: 0, sent: 0 });
  });

  it("hedged: a transform that resolves to the URL of an endpoint passed over meanwhile: passed over, not counted", async () => {
    const out: Record<string, unknown> = {};
    for (const hedge of [false, true]) {
      const clock = new TestClock();
      const { gate, open } = gated();
      const layer = createResilience({
        clock,
        breaker: { failureThreshold: 1 },
        retry: { maxAttempts: 1 },
        fallback: fallback([
          {
            name: "ch",
            ...(hedge ? { hedge: { delay: 100 } } : {}),
            endpoints: [
              { name: "p", url: `${A.base}/v1`, transform: slow(gate, A, B) },
              { name: "s", url: `${B.base}/v1` },
            ],
          },
        ]),
      });
      await openHost(layer, B);
      const recorder = recordEvents(layer);
      const call = rejection(layer.fetch(`${A.base}/v1/x`));
      // The hedge starts s (passed over, B open) while p's transform still runs.
      await clock.advance(100);
      open();
      const error = await call;
      out[hedge ? "hedged" : "unhedged"] = {
        error: isFallbackExhaustedError(error),
        events: eventsOf(recorder).map((e) => e.replace(/"[^"]+"/, "B").replace(/until .*/, "…")),
        p: fallbacks(layer).p?.calls,
        sent: hits(),
      };
    }
    expect(out.unhedged).toEqual({
      error: true,
      events: ["p -> s: circuit open", "s -> undefined: circuit open"],
      p: 0,
      sent: 0,
    });
    // p's own event (s's `next` is defect 2's). Observed: "p -> undefined: CircuitOpenError: circuit for B is
    // open …", p counted (calls 1).
    const hedged = out.hedged as { events: string[] };
    expect({ ...hedged, events: hedged.events.filter((e) => e.startsWith("p ")) }).toEqual({
      error: true,
      events: ["p -> undefined: circuit open"],
      p: 0,
      sent: 0,
    });
  });
});

describe("2. the `fallback` event of an endpoint declared at an open host, passed over beside a running hedge (defect 2)", () => {
  it("its `next` is the hedge already running that the call carries on with", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      breaker: { failureThreshold: 1 },
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "ch",
          hedge: { delay: 100 },
          endpoints: [{ name: "p", url: `${A.base}/v1` }, endpointAt("s", C, "declared")],
        },
      ]),
    });
    await openHost(layer, C);
    const release = holding(A);
    const recorder = recordEvents(layer);
    const call = layer.fetch(`${A.base}/v1/x`);
    await A.nth(1);
    await clock.advance(100);
    const next = recorder.of("fallback").map((e) => [e.from, e.reason, e.next]);
    release();
    const response = await call;
    await response.text();
    // The call carries on with p, which then serves it.
    expect(getResilienceInfo(response)?.endpoint).toBe("p");
    // Observed: [["s", "circuit open", undefined]] (the one its transform sent to C says "p").
    expect(next).toEqual([["s", "circuit open", "p"]]);
  });
});
