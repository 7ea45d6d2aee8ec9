/**
 * Outside-in attack on the thirty-fifth session's own fixes (commit "A request the platform refuses before sending
 * ..."): a request Node's fetch refuses before sending is the caller's mistake; an input fetch turns into its URL
 * text is sent; integrity-checked and kept answers are the transport's own response.
 * Docs: docs/retry.md "A request Node's fetch refuses before sending anything (a header it will not send:
 * `keep-alive`, `transfer-encoding`, `upgrade`, `connection` other than `close` or `keep-alive`, `expect`, a
 * `content-length` that is no number …) is the caller's mistake too …: the call rejects with that `TypeError` (no
 * retry, no attempt counted, the host's breaker and the error rate hear nothing), through a chain too, once every
 * endpoint it tried was refused (an endpoint that answered before gives its answer, as in any chain)"; "The input
 * may be a string, a `URL`, a `Request`, or anything fetch turns into its URL text: a `String` object, a URL of
 * another realm or library, any object with a `toString` of its own"; "The body of a response nobody will read (one
 * the layer retries past, …) is drained in the background when it is small (up to 64 KiB, within 1 s), so the
 * connection goes back to the keep-alive pool, and cancelled otherwise. A response the layer retries past is read
 * that way at once, and kept in memory when its body is that small: when the layer itself refuses the retry (the
 * host's breaker opened during the wait …), the call settles with that response, body intact (one too large or too
 * slow to keep is not: the call then rejects with the refusal)"; CHANGELOG.md Fixed, first three entries ("the
 * host's breaker, the error rate and the attempts count hear nothing"; "resolve with the transport's own response,
 * its headers immutable as fetch makes them"); docs/health-and-events.md (`request` fires for a call the layer
 * started; a caller's mistake is not counted by `health()`).
 * How: `createResilience`, `getResilienceInfo`, `memoryStore` (root), `fallback` (./fallback), `degradation`
 * (./degradation), `createClient` (./ky), `TestClock` (./testing); Node 22's own fetch against node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts), so undici itself refuses the headers.
 * Paths: plain call, `Request` input (streamed POST), chain (first endpoint refused and the second served; a
 * `respond` endpoint; every endpoint refused; one refused and the next passed over), hedged chain, degradation
 * rewrite at `medium`, nested layers, ky client, `timeout.attempt`/`timeout.total`, half-open probe with a shared
 * store, the library's redirect follower (integrity after a cross-origin hop, a kept 503 a redirect led to),
 * a caller's abort while an integrity-checked body is read, bodies above 64 KiB (1 MiB, 4 MiB, 70 KiB streamed).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the kept answer a copy again (1, 2: this session's own regression, undone), a chain whose endpoints were refused or passed over rejects with the TypeError and leaves its statistics alone, any object fetch can make text of is taken):
 * 1. docs/retry.md "one too large or too slow to keep is not: the call then rejects with the refusal". Observed (a
 *    regression of this commit; the code before it passes): a 503 with a streamed (chunked) body over 64 KiB, kept
 *    while the first call waits to retry, the host's breaker opened by another call meanwhile: the call never
 *    settles (until the caller aborts). Mechanism: `keepBody` now reads a `clone()` of the response; `readSmall`
 *    (src/http/send/discard-body.ts:84) `await`s `reader.cancel()` on that tee branch once 64 KiB passed, and a tee
 *    branch's cancel resolves only once both branches are cancelled; the other branch is cancelled by `drop()`
 *    (line 51) only after `readSmall` returns: a deadlock, so `keptNow` never resolves.
 * 2. docs/retry.md "The body of a response nobody will read (one the layer retries past …) is drained … when it is
 *    small (up to 64 KiB, within 1 s) … and cancelled otherwise". Observed (a regression of this commit): a 503
 *    with a streamed 4 MiB body that the layer retries past (the retry answers 200) is never cancelled: 1.5 s later
 *    the server's socket is still open (before this commit it closed at once). Same mechanism as 1: every
 *    response a retry is decided on goes through `keepBody`, whose tee deadlocks on a streamed body over 64 KiB,
 *    so neither branch nor the source is cancelled and the connection stays held (the stream, referenced from the
 *    socket, keeps the response from being collected).
 * 3. docs/retry.md "through a chain too, once every endpoint it tried was refused". Observed: a chain whose first
 *    endpoint the platform refused and whose next endpoint was passed over (its breaker open, nothing sent there)
 *    rejects with `FallbackExhaustedError`, not the caller's `TypeError`, and `debugInfo()` counts it as a failure
 *    (the error rate hears it). Mechanism: src/fallback/try-endpoints.ts:113 demands `errors.every(isPlatformRefusal)`,
 *    but the chain records a passed-over endpoint's `CircuitOpenError` in `errors` too.
 * 4. docs/retry.md "(no retry, no attempt counted, … hear nothing), through a chain too"; CHANGELOG "is the
 *    caller's mistake". Observed: a chain whose every endpoint was refused counts the run and each endpoint as failed
 *    in `resilience.fallback.chain(name).statistics()` and `health().fallback` (`overallSuccessRate` 1 → 0.5,
 *    endpoint `calls` +1 each, `successRate` down; with `order: "adaptive"` this reorders the chain), as it does not
 *    for a caller's abort. Mechanism: src/policies/fallback-chain.ts:416 (`stats.record(false, …)`) and :451
 *    (`#runs++`) know only aborts; the refusal is judged only after the run, in `served`.
 * 5. docs/retry.md "anything fetch turns into its URL text … any object with a `toString` of its own". Observed:
 *    an object without a prototype whose text comes from `Symbol.toPrimitive` (or `valueOf`), which Node's fetch
 *    sends, is refused with "expected a URL string, URL or Request, got object". Mechanism:
 *    src/http/resilient-fetch.ts:289 requires a `toString` function before calling `String(input)`.
 *
 * Held (plain `it`):
 * - Plain call, each of the six refused headers: fetch's `TypeError` with undici's code, nothing reaches the server,
 *   no `retry` or `breaker` event, one `request` event each (attempts 0, `TypeError`, "error"), `health()` error
 *   rate 0, no breaker failure, `debugInfo()` totals 0 (with `failureThreshold: 1`).
 * - `Request` input (a plain GET, a streamed POST with `expect`): the same.
 * - Chain: first endpoint refused, the second (another origin, which gets only the allowlisted headers; or a
 *   `transform` that drops the header) serves, `attempts: 1`, one `fallback` event, the first host's breaker clean;
 *   a `respond` endpoint answers after a refusal (`attempts: 0`). Hedged chain whose every endpoint was refused:
 *   the `TypeError`, nothing sent, no breaker, error rate 0; a slow first endpoint wins over a hedge its
 *   `transform` made refused, the hedge's host clean.
 * - Degradation at `medium` rewriting a JSON body: the `TypeError`, the degradation window gets no sample.
 * - Nested layers (outer's transport the inner's `fetch`): the `TypeError` through both, no retry in either, both
 *   healthy, the next call served.
 * - ky client: the layer's `TypeError` (ky's `NetworkError` around it, unwrapped since fortyfour), nothing counted.
 * - `timeout.attempt` + `timeout.total`: the `TypeError` at once, not a `TimeoutError`.
 * - Half-open with one probe slot and a shared store: the refused call frees the slot (the next call probes and
 *   closes the breaker) and the store records no outcome (it hears only the open → half-open move the call made).
 * - A `String` object and a URL-like object are sent to their text, routed down the chain their text matches; a
 *   relative text is refused as fetch refuses it, uncounted.
 * - Integrity: a 1 MiB body, the transport's own response (immutable headers, `url`/`redirected`/`type` as plain
 *   fetch's), it and its `clone()` read whole; after a cross-origin redirect the marks are fetch's on `clone()`
 *   too; the caller's abort while a slow body is checked rejects with its reason at once, the server sees the
 *   connection close, nothing counted; a mismatch over 300 KiB is the integrity error.
 * - A small kept 503 (breaker opened during the wait): written against the transport's own response with immutable
 *   headers; once that change was undone (defects 1, 2), the copy docs/retry.md names, headers changeable, body and
 *   `clone()` intact, `getResilienceInfo` attempts 1; one a redirect led to keeps `url` and `redirected` on clones.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type BreakerStore,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  memoryStore,
  type RequestEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

/** The headers Node's fetch refuses before sending anything, with undici's code for each. */
const REFUSED: Array<[string, Record<string, string>, string]> = [
  ["keep-alive", { "keep-alive": "timeout=5" }, "UND_ERR_INVALID_ARG"],
  ["transfer-encoding", { "transfer-encoding": "chunked" }, "UND_ERR_INVALID_ARG"],
  ["upgrade", { upgrade: "websocket" }, "UND_ERR_INVALID_ARG"],
  ["connection: upgrade", { connection: "upgrade" }, "UND_ERR_INVALID_ARG"],
  ["expect", { expect: "100-continue" }, "UND_ERR_NOT_SUPPORTED"],
  ["content-length: abc", { "content-length": "abc" }, "UND_ERR_INVALID_ARG"],
];

function codeOf(error: unknown): unknown {
  return (error as { cause?: { code?: unknown } }).cause?.code;
}

function sri(text: string | Buffer): string {
  return `sha256-${createHash("sha256").update(text).digest("base64")}`;
}

/** A store that tells what it was told. */
function spyStore(): { store: BreakerStore; told: string[] } {
  const inner = memoryStore() as BreakerStore;
  const told: string[] = [];
  const store: BreakerStore = {
    name: "spy",
    publish: (key, snapshot) => {
      told.push(`publish ${key} ${snapshot.state}`);
      inner.publish(key, snapshot);
    },
    peek: (key, now) => inner.peek(key, now),
    record: (key, failed) => {
      told.push(`record ${key} ${failed}`);
    },
  };
  return { store, told };
}

describe("refused by the platform", () => {
  it("plain call: every refused header rejects with fetch's TypeError, nothing sent, nothing counted", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("no");
    });
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const events: string[] = [];
    layer.on("retry", () => events.push("retry"));
    layer.on("breaker", () => events.push("breaker"));
    const requests: RequestEvent[] = [];
    layer.on("request", (e) => requests.push(e));
    for (const [, headers, code] of REFUSED) {
      const error = await rejection(layer.fetch(`${a.base}/p`, { headers }));
      expect(error).toBeInstanceOf(TypeError);
      expect(codeOf(error)).toBe(code);
    }
    expect(a.hits).toHaveLength(0);
    expect(events).toEqual([]);
    expect(requests.map((r) => [r.attempts, r.error, r.outcome])).toEqual(
      Array(REFUSED.length).fill([0, "TypeError", "error"]),
    );
    const health = layer.health();
    expect(health.errorRate).toBe(0);
    expect(health.breakers[a.host]?.failureCount ?? 0).toBe(0);
    expect(layer.debugInfo().totals).toMatchObject({ calls: 0, failures: 0 });
  });
});

describe("refused: paths", () => {
  it("Request input (a streamed POST too): rejects with the TypeError, the body's source closed, nothing sent", async () => {
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const plain = await rejection(layer.fetch(new Request(`${a.base}/r`, { headers: { "keep-alive": "1" } })));
    expect(codeOf(plain)).toBe("UND_ERR_INVALID_ARG");
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("job"));
        c.close();
      },
    });
    const streamed = await rejection(
      layer.fetch(
        new Request(`${a.base}/r`, {
          method: "POST",
          body,
          headers: { expect: "100-continue" },
          duplex: "half",
        } as RequestInit),
      ),
    );
    expect(codeOf(streamed)).toBe("UND_ERR_NOT_SUPPORTED");
    expect(a.hits).toHaveLength(0);
    expect(layer.health().errorRate).toBe(0);
  });

  it("chain: first endpoint refused, second one's transform removes the header: served there, attempts 1", async () => {
    b.on((hit) => hit.res.end(`b:${hit.headers["keep-alive"] ?? "none"}`));
    const layer = createResilience({
      retry: fast,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            {
              name: "two",
              url: `${b.base}/v1`,
              transform: (req) => {
                const headers = new Headers(req.headers);
                headers.delete("keep-alive");
                return { ...req, headers };
              },
            },
          ],
        },
      ]),
    });
    const fallbacks: unknown[] = [];
    layer.on("fallback", (e) => fallbacks.push(e));
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } });
    expect(await res.text()).toBe("b:none");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 1, endpoint: "two", fromFallback: true });
    expect(a.hits).toHaveLength(0);
    expect(layer.health().breakers[a.host]?.failureCount ?? 0).toBe(0);
    expect(fallbacks).toHaveLength(1);
  });

  it("chain: first refused, second a `respond` endpoint: its answer", async () => {
    const layer = createResilience({
      retry: fast,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "cache", respond: () => new Response("cached") },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`, { headers: { upgrade: "h2c" } });
    expect(await res.text()).toBe("cached");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 0, endpoint: "cache" });
  });

  it("hedged chain, every endpoint refused: the TypeError, no breaker, no error rate", async () => {
    const layer = createResilience({
      retry: fast,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 5 },
          // Same origin: a header goes on to another origin only when named in `crossOriginHeaders`.
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${a.base}/v2` },
          ],
        },
      ]),
    });
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "transfer-encoding": "chunked" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(a.hits.length + b.hits.length).toBe(0);
    const health = layer.health();
    expect(health.errorRate).toBe(0);
    expect(health.breakers[a.host]?.failureCount ?? 0).toBe(0);
    expect(layer.fallback.chain("h").statistics().fallbacks.one?.calls).toBeDefined();
  });

  it("hedged chain: a slow first endpoint wins over a hedge its transform made refused", async () => {
    a.on((hit) => setTimeout(() => hit.res.end("slow a"), 40));
    const layer = createResilience({
      retry: fast,
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "h",
          hedge: { delay: 5 },
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            {
              name: "two",
              url: `${b.base}/v1`,
              transform: (req) => {
                const headers = new Headers(req.headers);
                headers.set("keep-alive", "1");
                return { ...req, headers };
              },
            },
          ],
        },
      ]),
    });
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect(await res.text()).toBe("slow a");
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 1, endpoint: "one" });
    expect(layer.health().breakers[b.host]?.failureCount ?? 0).toBe(0);
  });

  it("degradation rewrite: a rewritten JSON call with a refused header is the TypeError, the window hears nothing", async () => {
    const layer = createResilience({ retry: fast, degradation: degradation({}) });
    layer.degradation.setLevel("medium");
    const error = await rejection(
      layer.fetch(`${a.base}/gen`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "upgrade" },
        body: JSON.stringify({ steps: 50 }),
      }),
    );
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(a.hits).toHaveLength(0);
    expect(layer.debugInfo().degradation?.window.samples).toBe(0);
  });

  it("nested layers: the inner layer's refusal is the outer's TypeError, neither counts it", async () => {
    const inner = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const outer = createResilience({ retry: fast, breaker: { failureThreshold: 1 }, fetch: inner.fetch });
    const retries: unknown[] = [];
    outer.on("retry", (e) => retries.push(e));
    inner.on("retry", (e) => retries.push(e));
    for (let i = 0; i < 3; i++) {
      const error = await rejection(outer.fetch(`${a.base}/n`, { headers: { "keep-alive": "1" } }));
      expect(error).toBeInstanceOf(TypeError);
      expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    }
    expect(retries).toEqual([]);
    for (const layer of [inner, outer]) {
      const health = layer.health();
      expect(health.errorRate).toBe(0);
      expect(health.breakers[a.host]?.failureCount ?? 0).toBe(0);
    }
    expect((await outer.fetch(`${a.base}/n`)).status).toBe(200);
  });

  it("ky client: the TypeError, ky retries nothing, the layer counts nothing", async () => {
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 1 } });
    const api = createClient({ resilience: layer, prefix: a.base });
    const error = await rejection(api.get("k", { headers: { "keep-alive": "1" } }));
    // ky wraps a network TypeError in its own NetworkError; the client hands on the layer's TypeError
    // itself (unwrapped since fortyfour, as docs/recipes.md says).
    expect(error).toBeInstanceOf(TypeError);
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(a.hits).toHaveLength(0);
    expect(layer.health().errorRate).toBe(0);
    expect(layer.health().breakers[a.host]?.failureCount ?? 0).toBe(0);
    expect(await api.get("k").text()).toBe("ok");
  });

  it("timeout.attempt and timeout.total: the TypeError at once, not a TimeoutError", async () => {
    const layer = createResilience({
      retry: fast,
      timeout: { attempt: 200, total: 400 },
      breaker: { failureThreshold: 1 },
    });
    const started = Date.now();
    const error = await rejection(layer.fetch(`${a.base}/t`, { headers: { expect: "100-continue" } }));
    expect(Date.now() - started).toBeLessThan(150);
    expect(error).toBeInstanceOf(TypeError);
    expect(codeOf(error)).toBe("UND_ERR_NOT_SUPPORTED");
    expect(layer.health().errorRate).toBe(0);
  });

  it("half-open: a refused call that took the only probe slot frees it; a shared store is told nothing", async () => {
    const clock = new TestClock(0);
    const { store, told } = spyStore();
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("down");
    });
    const layer = createResilience({
      clock,
      store,
      retry: false,
      breaker: { failureThreshold: 1, timeout: 1_000, halfOpenMaxCalls: 1, successThreshold: 1 },
    });
    expect((await layer.fetch(`${a.base}/h`)).status).toBe(503);
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    await clock.advance(1_000);
    a.on((hit) => hit.res.end("up"));
    told.length = 0;
    const error = await rejection(layer.fetch(`${a.base}/h`, { headers: { "keep-alive": "1" } }));
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    // The call moved the breaker to half-open as it arrived (published), but no outcome was recorded.
    expect(told.filter((t) => t.startsWith("record"))).toEqual([]);
    expect(layer.health().breakers[a.host]?.state).toBe("half_open");
    const res = await layer.fetch(`${a.base}/h`);
    expect(await res.text()).toBe("up");
    expect(layer.health().breakers[a.host]?.state).toBe("closed");
  });
});

describe("refused: chains, what else hears it", () => {
  const sameOrigin = () =>
    fallback([
      {
        name: "c",
        endpoints: [
          { name: "one", url: `${a.base}/v1` },
          { name: "two", url: `${a.base}/v2` },
        ],
      },
    ]);

  it("a chain whose every endpoint was refused leaves the chain's statistics as they were", async () => {
    const layer = createResilience({ retry: fast, fallback: sameOrigin() });
    expect((await layer.fetch(`${a.base}/v1/x`)).status).toBe(200);
    const before = layer.fallback.chain("c").statistics();
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(layer.health().errorRate).toBe(0);
    const after = layer.fallback.chain("c").statistics();
    const counts = (st: typeof before) => [
      st.overallSuccessRate,
      st.fallbacks.one?.calls,
      st.fallbacks.one?.successes,
      st.fallbacks.two?.calls,
    ];
    expect(counts(after)).toEqual(counts(before));
  });

  it("a chain: first endpoint refused, the next passed over (its breaker open): still the caller's TypeError", async () => {
    a.on((hit) => {
      if (hit.path.startsWith("/v2")) hit.res.statusCode = 503;
      hit.res.end("x");
    });
    const layer = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, key: (url: URL) => url.pathname.slice(0, 3) },
      fallback: sameOrigin(),
    });
    // Opens "/v2"'s breaker.
    expect((await layer.fetch(`${a.base}/v2/open`)).status).toBe(503);
    expect(layer.health().breakers["/v2"]?.state).toBe("open");
    const hitsBefore = a.hits.length;
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    expect(a.hits.length).toBe(hitsBefore);
    expect(error).toBeInstanceOf(TypeError);
    expect(codeOf(error)).toBe("UND_ERR_INVALID_ARG");
    expect(layer.debugInfo().totals.failures).toBe(1);
  });
});

describe("inputs fetch turns into their URL text", () => {
  it("a String object and a URL-like object go where their text says, down a chain too", async () => {
    const layer = createResilience({
      retry: fast,
      fallback: fallback([{ name: "c", endpoints: [{ name: "one", url: `${a.base}/v1` }] }]),
    });
    class Link {
      readonly href: string;
      constructor(href: string) {
        this.href = href;
      }
      toString(): string {
        return this.href;
      }
    }
    const first = await layer.fetch(new String(`${a.base}/s?q=1`) as unknown as string);
    const second = await layer.fetch(new Link(`${a.base}/v1/chained`) as unknown as string);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(getResilienceInfo(second)?.endpoint).toBe("one");
    expect(a.hits.map((h) => h.path)).toEqual(["/s?q=1", "/v1/chained"]);
  });

  it("a relative text is refused as fetch refuses it: a TypeError, nothing counted", async () => {
    const layer = createResilience({ retry: fast });
    const plain = await rejection(fetch(new String("/relative") as unknown as string));
    expect(plain).toBeInstanceOf(TypeError);
    const error = await rejection(layer.fetch(new String("/relative") as unknown as string));
    expect(error).toBeInstanceOf(TypeError);
    expect(layer.debugInfo().totals.calls).toBe(0);
  });

  it("an object without a prototype whose text comes from Symbol.toPrimitive is sent, as fetch sends it", async () => {
    const url = `${a.base}/prim`;
    const make = () => Object.assign(Object.create(null), { [Symbol.toPrimitive]: () => url }) as string;
    expect((await fetch(make())).status).toBe(200);
    const layer = createResilience({ retry: fast });
    const res = await layer.fetch(make());
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.path)).toEqual(["/prim", "/prim"]);
  });
});

describe("integrity: the transport's own response", () => {
  it("a 1 MiB body: headers immutable, the body whole, clone() reads the same, marks as fetch's", async () => {
    const big = Buffer.alloc(1024 * 1024, 7);
    a.on((hit) => hit.res.end(big));
    const layer = createResilience({ retry: fast });
    const res = await layer.fetch(`${a.base}/big`, { integrity: sri(big) });
    const plain = await fetch(`${a.base}/big`, { integrity: sri(big) });
    expect(() => res.headers.set("x", "1")).toThrow(TypeError);
    expect([res.url, res.redirected, res.type]).toEqual([plain.url, plain.redirected, plain.type]);
    const copy = res.clone();
    const [one, two] = await Promise.all([res.arrayBuffer(), copy.arrayBuffer()]);
    expect(Buffer.from(one).equals(big)).toBe(true);
    expect(Buffer.from(two).equals(big)).toBe(true);
    await plain.arrayBuffer();
  });

  it("after a redirect to another origin: url, redirected and type as fetch's, on clone() too", async () => {
    const body = "final";
    a.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `${b.base}/end`);
      hit.res.end();
    });
    b.on((hit) => hit.res.end(body));
    const layer = createResilience({ retry: fast });
    const res = await layer.fetch(`${a.base}/start`, { integrity: sri(body) });
    const plain = await fetch(`${a.base}/start`, { integrity: sri(body) });
    const marks = (r: Response) => [r.url, r.redirected, r.type];
    expect(marks(res)).toEqual(marks(plain));
    expect(marks(res.clone())).toEqual(marks(plain));
    expect(() => res.headers.set("x", "1")).toThrow(TypeError);
    expect(await res.text()).toBe(body);
    await plain.text();
  });

  it("the caller's abort while a slow body is checked rejects with its reason at once", async () => {
    a.on((hit) => {
      hit.res.writeHead(200, { "content-type": "text/plain" });
      hit.res.write("part");
    });
    const layer = createResilience({ retry: fast });
    const controller = new AbortController();
    const reason = new Error("caller gone");
    const call = layer.fetch(`${a.base}/slow`, { integrity: sri("partrest"), signal: controller.signal });
    const hit = await a.nth(1);
    setTimeout(() => controller.abort(reason), 30);
    const started = Date.now();
    expect(await rejection(call)).toBe(reason);
    expect(Date.now() - started).toBeLessThan(500);
    await hit.closed;
    expect(layer.debugInfo().totals.calls).toBe(0);
  });

  it("a mismatch over a large body: fetch's TypeError, the connection released", async () => {
    const big = Buffer.alloc(300 * 1024, 1);
    a.on((hit) => hit.res.end(big));
    const layer = createResilience({ retry: false });
    const error = await rejection(layer.fetch(`${a.base}/big`, { integrity: sri("other") }));
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message) + String((error as Error).cause)).toMatch(/integrity/);
  });
});

describe("the answer kept across a refused retry", () => {
  /** Two calls at a host answering 503: the second opens the breaker while the first waits to retry. */
  async function keptOne(size: number, path = "/k", signal?: AbortSignal) {
    const body = "x".repeat(size);
    a.on((hit) => {
      if (hit.path === "/k" || hit.path === "/k2" || hit.path === "/other") {
        hit.res.writeHead(503, { "x-why": "busy", "content-type": "text/plain" });
        hit.res.end(hit.path === "/other" ? "no" : body);
      } else {
        hit.res.statusCode = 302;
        hit.res.setHeader("location", `${a.base}/k2`);
        hit.res.end();
      }
    });
    const layer = createResilience({
      retry: { initialDelay: 300, maxDelay: 300, jitter: "none" },
      breaker: { failureThreshold: 2 },
    });
    const first = layer.fetch(`${a.base}${path}`, signal ? { signal } : {}).then(
      (r) => ({ r, e: undefined }),
      (e: unknown) => ({ r: undefined, e }),
    );
    await a.nth(path === "/k" ? 1 : 2);
    await new Promise((r) => setTimeout(r, 20));
    const second = await layer.fetch(`${a.base}/other`);
    await second.text();
    // Bounded: a kept body is read within 1 s (DRAIN_MAX_MS) or given up.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      first,
      new Promise<{ r: undefined; e: string }>((resolve) => {
        timer = setTimeout(() => resolve({ r: undefined, e: "pending" }), 2_500);
      }),
    ]);
    clearTimeout(timer);
    return { ...settled, body, layer };
  }

  it("a small kept 503: a copy (docs/retry.md: its headers can be changed), body intact, clone() too", async () => {
    const { r, e, body, layer } = await keptOne(1000);
    expect(e).toBeUndefined();
    const res = r as Response;
    expect(res.status).toBe(503);
    expect(res.headers.get("x-why")).toBe("busy");
    // The copy docs/retry.md names (reading the answer through a clone instead broke the release of bodies).
    expect(() => res.headers.set("x", "1")).not.toThrow();
    const copy = res.clone();
    expect(await copy.text()).toBe(body);
    expect(await res.text()).toBe(body);
    expect(getResilienceInfo(res)?.attempts).toBe(1);
    expect(layer.health().breakers[a.host]?.state).toBe("open");
  });

  it("a streamed 503 over 64 KiB is not kept: the call rejects with the refusal", async () => {
    const controller = new AbortController();
    try {
      const { e } = await keptOne(70 * 1024, "/k", controller.signal);
      expect(e).not.toBe("pending");
      expect(isCircuitOpenError(e)).toBe(true);
    } finally {
      controller.abort();
    }
  }, 8_000);

  it("a streamed 4 MiB 503 the layer retries past is cancelled: its connection closes", async () => {
    a.on((hit) => {
      if (hit.n === 1) {
        hit.res.writeHead(503, { "content-type": "text/plain" });
        hit.res.end("y".repeat(4 * 1024 * 1024));
      } else hit.res.end("ok");
    });
    const layer = createResilience({ retry: fast });
    const res = await layer.fetch(`${a.base}/big503`);
    expect(await res.text()).toBe("ok");
    const first = await a.nth(1);
    const until = Date.now() + 1_500;
    while (!first.req.socket.destroyed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(first.req.socket.destroyed).toBe(true);
  }, 8_000);

  it("a kept 503 a redirect led to: its url and redirected as fetch would report them", async () => {
    const { r, e, body } = await keptOne(100, "/redir");
    expect(e).toBeUndefined();
    const res = r as Response;
    expect([res.status, res.url, res.redirected]).toEqual([503, `${a.base}/k2`, true]);
    expect([res.clone().url, res.clone().redirected]).toEqual([`${a.base}/k2`, true]);
    expect(await res.text()).toBe(body);
  });
});
